//! The dispatcher Lambda: SQS FIFO batches of delivery jobs.
//!
//! The delivery pipeline is not part of this build yet. Until it is, every
//! record is reported as a batch item failure, so SQS keeps it (and
//! eventually dead-letters it) instead of it being acknowledged unsent.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        let mut response = SqsBatchResponse::default();
        for record in event.payload.records {
            let id = record.message_id.unwrap_or_default();
            tracing::warn!(message_id = %id, "dispatcher not wired yet; leaving the message on the queue");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        Ok::<_, std::convert::Infallible>(response)
    }))
    .await
}
