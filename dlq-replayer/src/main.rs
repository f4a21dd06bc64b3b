//! The DLQ replayer Lambda: drains the dead-letter queue on demand. Invoked
//! directly (`{"maxMessages": N, "dryRun": bool}`) or by the `DlqReplay`
//! state machine; answers with the replay report.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::flows::replay::{ReplayRequest, replay_dlq};
use telehook::queue::SqsQueue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let init = telehook::wiring::lambda_init().await?;
    let dlq_url = init.config.dlq_url.clone().ok_or("DLQ_URL is not set")?;
    let (pipeline, dlq) = (
        &init.pipeline,
        &SqsQueue::new(init.clients.sqs.clone(), dlq_url),
    );
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let request: ReplayRequest = serde_json::from_value(event.payload)
                .map_err(|e| format!("invalid replay request: {e}"))?;
            Ok::<_, Error>(replay_dlq(pipeline, dlq, &request).await?)
        },
    ))
    .await
}
