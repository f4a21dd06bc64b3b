//! `telehook sms-stub`: the End User Messaging stand-in
//! (`telehook::testkit::sms_stub`) on its own, for emulator runs and the
//! Lambda harness, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use telehook::testkit::sms_stub::{ScheduledFault, SmsStub, StubOptions};

use crate::local::Error;

#[derive(clap::Args, Debug)]
pub struct StubArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the chosen URL is printed).
    #[arg(long, default_value_t = 4567)]
    pub port: u16,
    /// Local mode's state directory, where the outbox goes by default.
    #[arg(long, env = "TELEHOOK_STATE_DIR", default_value = ".telehook")]
    pub state_dir: PathBuf,
    /// Where accepted messages go, one JSON line each [default:
    /// <state-dir>/sms-stub-outbox.jsonl].
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// Faults for the first sends, in order: throttle, internal,
    /// validation, opted-out, not-registered, country-not-enabled
    /// (comma-separated; `notify:throttle` or `own:not-registered` for one
    /// route's sends only).
    #[arg(long, value_delimiter = ',', value_parser = ScheduledFault::parse)]
    pub faults: Vec<ScheduledFault>,
}

/// Runs the stub until Ctrl-C.
pub async fn sms_stub(args: StubArgs) -> Result<(), Error> {
    let outbox = args
        .outbox
        .clone()
        .unwrap_or_else(|| args.state_dir.join("sms-stub-outbox.jsonl"));
    let stub = SmsStub::start(
        SocketAddr::from(([127, 0, 0, 1], args.port)),
        StubOptions {
            outbox: Some(&outbox),
            faults: args.faults,
            console: true,
        },
    )
    .await
    .map_err(|e| -> Error {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            crate::local::port_error(args.port, "--port", &e)
        } else {
            format!(
                "sms-stub on port {} with outbox {}: {e}",
                args.port,
                outbox.display()
            )
            .into()
        }
    })?;
    let url = stub.url();
    outln!("sms-stub listening on {url}");
    outln!(
        "export AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2={url}  # outbox {}",
        outbox.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}
