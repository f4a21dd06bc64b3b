//! The dispatcher Lambda: SQS FIFO batches of delivery jobs, answered with
//! partial batch failures (`ReportBatchItemFailures`).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::aws::{AwsClients, load_sdk_config};
use telehook::config::PipelineConfig;
use telehook::flows::dispatch_batch;
use telehook::wiring::aws_pipeline;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let pipeline = aws_pipeline(
        &AwsClients::new(&load_sdk_config().await),
        &PipelineConfig::from_env()?,
    );
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    let pipeline = &pipeline;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, std::convert::Infallible>(dispatch_batch(pipeline, event.payload).await)
    }))
    .await
}
