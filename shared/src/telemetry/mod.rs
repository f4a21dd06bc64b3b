//! Telemetry: log setup here, delivery metrics in [`metrics`]. Lambdas log
//! JSON lines to stdout (CloudWatch parses them); the CLI logs readable text
//! to stderr. `RUST_LOG` overrides the level.
//!
//! What goes into a log line is decided at the call sites, and the newtypes
//! make the safe thing the easy thing: `PhoneNumber` prints masked and `Otp`
//! prints nothing.

pub mod metrics;

use tracing_subscriber::EnvFilter;

/// JSON logs for Lambda. Safe to call more than once.
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line itself.
        .try_init();
}

/// Human-readable logs on stderr for the CLI. The SDK's own warnings (a
/// region or credentials looked for in IMDS, with raw header values) are
/// left out: the command says in one line what is missing.
pub fn init_text() {
    let quiet_sdk =
        || EnvFilter::new("info,aws_config=error,aws_smithy_runtime=error,aws_runtime=error");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| quiet_sdk()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Set `TELEHOOK_EXIT_AFTER_INIT` to make a Lambda binary exit right after
/// its init, before it would poll the runtime API: that is how init time is
/// measured side by side with a hello-world binary (see BENCHMARKS.md).
pub fn exit_after_init() -> bool {
    std::env::var_os("TELEHOOK_EXIT_AFTER_INIT").is_some()
}
