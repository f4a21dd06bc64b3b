//! telehook: Okta one-time passcodes by SMS and voice through the operator's
//! own AWS account.
//!
//! This crate holds all the logic; the Lambda binaries and the CLI are thin
//! shells that build dependencies once and call the handlers here. The
//! folders follow the design (ARCHITECTURE.md walks one hook through them):
//!
//! - [`domain`]: the values of one delivery, as newtypes that parse and
//!   redact; no I/O, no wire formats.
//! - [`okta`]: the hook on the wire, and its validation into the domain.
//! - [`auth`]: proving a call comes from Okta (JWT with a JWKS cache, or a
//!   header secret).
//! - [`api`]: the HTTP edge: API Gateway proxy event in, proxy response out.
//! - [`flows`]: the ingress, dispatcher and DLQ replay flows and the
//!   toll-fraud guard, over the ports.
//! - [`ledger`], [`queue`], [`messenger`], [`templates`], [`timers`]: each
//!   a port, its in-memory (or local) adapter and its AWS adapter; [`clock`]
//!   is the time port.
//! - [`aws`]: the SDK configuration, clients and error classification the
//!   AWS adapters share.
//! - [`config`]: environment to typed settings; [`wiring`]: the one place
//!   that builds a pipeline.
//! - [`telemetry`]: logs and EMF metrics; [`crypto`]: keyed hashes and
//!   random ids.
//! - `testkit` (cargo feature `testkit`): chaos, invariants, doubles, a
//!   manual clock, the dev OAuth issuer. Never in a Lambda binary.

pub mod api;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod flows;
pub mod json;
pub mod ledger;
pub mod messenger;
pub mod okta;
pub mod queue;
pub mod secrets;
pub mod telemetry;
pub mod templates;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod timers;
pub mod wiring;
