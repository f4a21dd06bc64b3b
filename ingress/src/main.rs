//! The ingress Lambda: API Gateway REST proxy events for `POST /okta/telephony`.
//! Everything happens in `telehook::ingress`; this file only wires it up.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use telehook::config::Config;
use telehook::delivery::OktaFallbackDelivery;
use telehook::ingress::{IngressDeps, telehook_json};

// One invocation at a time per instance: the current-thread runtime starts
// faster and needs no cross-thread synchronisation.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telehook::telemetry::init_json();
    let config = Config::from_env()?;
    // Until the delivery pipeline is wired in, hooks are answered so that
    // Okta falls back to its own provider: never a SUCCESSFUL without a send.
    let deps = IngressDeps::new(&config, Arc::new(OktaFallbackDelivery))?;
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, std::convert::Infallible>(telehook_json(deps, event.payload).await)
        },
    ))
    .await
}
