//! The ingress Lambda: API Gateway REST proxy events for `POST /okta/telephony`.
//! Everything happens in `telehook`; this file only wires it up.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::api::{IngressDeps, telehook_json};

// One invocation at a time per instance: the current-thread runtime starts
// faster and needs no cross-thread synchronisation.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    // Both the ingress's and the pipeline's settings, every problem at once.
    let (config, init) = telehook::wiring::ingress_init().await?;
    let deps =
        IngressDeps::for_lambda(&config, Arc::new(init.pipeline), &init.clients.secrets).await?;
    if telehook::telemetry::exit_after_init() {
        return Ok(());
    }
    let deps = &deps;
    run(service_fn(
        // The event as text: read once, into the proxy request.
        move |event: LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            Ok::<_, std::convert::Infallible>(telehook_json(deps, event.payload.get()).await)
        },
    ))
    .await
}
