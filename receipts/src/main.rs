//! The receipts Lambda: what became of a sent code. End User Messaging's
//! delivery events (SNS, from its configuration set) are recorded on the
//! ledger and counted (`telehook::flows::receipts`); expiry checks from the
//! expiry queue (SQS) mark unused codes (`telehook::flows::conversion`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::flows::receipts::handle_event;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let pipeline = telehook::wiring::lambda_init().await?.pipeline;
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    let pipeline = &pipeline;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Only a ledger that cannot be written now fails the
            // invocation, so SNS retries it; everything else is answered.
            Ok::<_, Error>(handle_event(pipeline, &event.payload).await?)
        },
    ))
    .await
}
