//! The test kit: machinery for tests, local mode and load runs, never for
//! a Lambda. It is compiled only with the `testkit` cargo feature (the CLI
//! and the test suites turn it on) and in this crate's own unit tests.
//!
//! - [`chaos`]: fault-injecting wrappers for every port;
//! - [`invariants`]: the after-run reconciliation of answers, ledger,
//!   queues and sends;
//! - [`doubles`]: the scripted messenger, a recording `Delivery`, a delayed
//!   messenger for load tests;
//! - [`clock`]: a clock moved by hand; [`sink`]: a metrics sink that keeps
//!   its documents;
//! - [`dev_issuer`]: a local OAuth signing key and token minting;
//! - [`sms_stub`]: the End User Messaging stand-in (`telehook sms-stub`,
//!   the test suites, the Lambda harness);
//! - [`redaction`]: codes that cannot turn up in logs by chance, and the
//!   matching that makes "no code reached the logs" an exact check.

pub mod chaos;
pub mod clock;
pub mod dev_issuer;
pub mod doubles;
pub mod invariants;
pub mod redaction;
pub mod sink;
pub mod sms_stub;

pub use clock::ManualClock;
pub use doubles::{DelayedMessenger, RecordingDelivery, Scripted, ScriptedMessenger};
pub use sink::MemorySink;
