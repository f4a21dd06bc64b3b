//! The library's integration tests, in one binary: linking the AWS SDK once
//! instead of once per file is most of the suite's build time on a small
//! machine. Each module is one area; `support` holds the shared harness
//! (issuer, events, log capture, the emulator and the SMS/voice stub).
//!
//! One area: `cargo test -p telehook --test suite -- pipeline::`.

mod support;

mod auth;
mod aws;
mod conversion;
mod deploy_template;
mod dispatch_groups;
mod dispatcher_events;
mod eum;
mod events;
mod fallback;
mod fuzz;
mod ingress;
mod layout;
mod notify;
mod okta_context;
mod phone_golden;
mod phone_table;
mod pipeline;
mod pipeline_logs;
mod poller;
mod ports;
mod pumping;
mod receipts;
mod reliability;
mod replay;
mod replay_machine;
mod retry_timing;
mod routes;
mod sam_template;
mod templates;
