//! The dispatcher Lambda: SQS FIFO batches of delivery jobs, answered with
//! partial batch failures (`ReportBatchItemFailures`).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::flows::dispatch_batch;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let pipeline = telehook::wiring::lambda_init().await?.pipeline;
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    let pipeline = &pipeline;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, std::convert::Infallible>(dispatch_batch(pipeline, event.payload).await)
    }))
    .await
}
