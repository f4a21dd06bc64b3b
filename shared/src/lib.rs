//! telehook: Okta one-time passcodes by SMS and voice through the operator's
//! own AWS account.
//!
//! This crate holds all the logic; the Lambda binaries and the CLI are thin
//! shells that build dependencies once and call the handlers here.
//!
//! - [`okta`]: the hook's wire types, validation into a `DeliveryRequest`,
//!   response builders.
//! - [`auth`]: bearer JWT verification with a JWKS cache, header secrets.
//! - [`phone`], [`otp`], [`locale`], [`channel`]: newtypes that parse,
//!   normalise and redact.
//! - [`ingress`]: the API Gateway handler and its error-to-response mapping.
//! - [`delivery`]: the `Delivery` port the ingress hands requests to, and
//!   the `Messenger` port that sends one message.
//! - [`pipeline`]: the ingress and dispatcher flows over the ports;
//!   [`replay`]: draining the dead-letter queue on demand.
//! - [`ledger`], [`queue`], [`template`], [`clock`]: the other ports, each
//!   with an in-memory adapter; [`job`] is the queued job's format.
//! - [`config`]: typed configuration from the environment.
//! - [`guard`]: the toll-fraud checks; [`metrics`]: CloudWatch EMF lines.
//! - [`chaos`]: fault-injecting wrappers for every port; [`invariants`]: the
//!   after-run reconciliation of answers, ledger, queues and sends.
//! - [`telemetry`]: log setup.
//! - [`dev_issuer`]: a local OAuth signing key for local mode and tests.

pub mod auth;
pub mod aws;
pub mod channel;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod dev_issuer;
pub mod guard;
pub mod ingress;
pub mod invariants;
pub mod job;
pub mod ledger;
pub mod locale;
pub mod metrics;
pub mod okta;
pub mod otp;
pub mod outbox;
pub mod phone;
pub mod pipeline;
pub mod queue;
pub mod replay;
pub mod telemetry;
pub mod template;
