//! The smallest `lambda_runtime` function, built with the same profile as
//! the real ones: the yardstick for their init time (BENCHMARKS.md).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if std::env::var_os("TELEHOOK_EXIT_AFTER_INIT").is_some() {
        return Ok(());
    }
    run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) },
    ))
    .await
}
