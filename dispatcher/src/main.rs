//! The dispatcher Lambda: SQS FIFO batches of delivery jobs, answered with
//! partial batch failures (`ReportBatchItemFailures`).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::aws::{AwsClients, load_sdk_config};
use telehook::config::PipelineConfig;
use telehook::pipeline::dispatch_batch;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let pipeline = AwsClients::new(&load_sdk_config().await).pipeline(&PipelineConfig::from_env()?);
    // Jobs carry numbers that are validated again: build the phone metadata
    // now, at init, not on the first job.
    telehook::phone::warm_up();
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    let pipeline = &pipeline;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, std::convert::Infallible>(dispatch_batch(pipeline, event.payload).await)
    }))
    .await
}
