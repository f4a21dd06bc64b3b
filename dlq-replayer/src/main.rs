//! The DLQ replayer Lambda: drains the dead-letter queue on demand. Invoked
//! directly (`{"maxMessages": N, "dryRun": bool}`) or by the `DlqReplay`
//! state machine; answers with the replay report.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::aws::{AwsClients, load_sdk_config};
use telehook::config::PipelineConfig;
use telehook::flows::replay::{ReplayRequest, replay_dlq};
use telehook::queue::SqsQueue;
use telehook::wiring::aws_pipeline;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let config = PipelineConfig::from_env()?;
    let dlq_url = config.dlq_url.clone().ok_or("DLQ_URL is not set")?;
    let clients = AwsClients::new(&load_sdk_config().await);
    let (pipeline, dlq) = (
        aws_pipeline(&clients, &config),
        SqsQueue::new(clients.sqs.clone(), dlq_url),
    );
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    let (pipeline, dlq) = (&pipeline, &dlq);
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let request: ReplayRequest = serde_json::from_value(event.payload)
                .map_err(|e| format!("invalid replay request: {e}"))?;
            Ok::<_, Error>(replay_dlq(pipeline, dlq, &request).await?)
        },
    ))
    .await
}
