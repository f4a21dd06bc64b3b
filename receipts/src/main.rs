//! The receipts Lambda: what became of a sent code. It hosts two named
//! consumers (`telehook::flows::receipts::Consumer`): the receipts, End
//! User Messaging's delivery events (SNS, from its configuration set)
//! recorded on the ledger and counted; and the timers, the checks from the
//! timers queue (SQS) that mark unused codes and place voice fallbacks.
//! One binary and one function for both: they need the same pipeline and
//! permissions, and a second function would add a cold start, a role, a log
//! group and alarms for a few events a minute.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::flows::receipts::Consumer;

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
            Ok::<_, Error>(Consumer::handle(pipeline, &event.payload).await?)
        },
    ))
    .await
}
