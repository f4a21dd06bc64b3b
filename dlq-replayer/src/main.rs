//! The DLQ replayer Lambda: on-demand drain of the dead-letter queue.
//!
//! Replay is not part of this build yet; an invocation fails loudly rather
//! than reporting a drain that did not happen.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    run(service_fn(
        |_event: LambdaEvent<serde_json::Value>| async move {
            Err::<serde_json::Value, Error>("DLQ replay is not available in this build".into())
        },
    ))
    .await
}
