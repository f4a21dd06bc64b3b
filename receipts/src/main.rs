//! The receipts Lambda: End User Messaging's delivery events, published by
//! its configuration set to SNS, recorded on the ledger and counted. The
//! logic is `telehook::flows::receipts`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::flows::receipts::record_sns_receipts;

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
            Ok::<_, Error>(serde_json::to_value(
                record_sns_receipts(pipeline, &event.payload).await?,
            )?)
        },
    ))
    .await
}
