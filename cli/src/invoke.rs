//! `telehook invoke`: one Lambda event through the same handler, with local
//! adapters, printing the handler's JSON response. The no-Docker twin of
//! `sam local invoke -e events/<file>.json`.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use axum::Router;
use axum::routing::get;
use telehook::api::{IngressDeps, telehook_json};
use telehook::flows::dispatch_batch;
use telehook::testkit::dev_issuer::TokenClaims;

use crate::local::{self, Error};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Function {
    Ingress,
    Dispatcher,
    DlqReplayer,
}

pub struct InvokeArgs {
    pub function: Function,
    pub event: std::path::PathBuf,
    pub state_dir: std::path::PathBuf,
    pub outbox: std::path::PathBuf,
    pub fast_path: bool,
    pub aws: bool,
}

/// The placeholder event files carry where a bearer token goes.
const TOKEN_PLACEHOLDER: &str = "{{token}}";

pub async fn invoke(args: InvokeArgs) -> Result<serde_json::Value, Error> {
    let text = std::fs::read_to_string(&args.event)
        .map_err(|e| format!("{}: {e}", args.event.display()))?;
    let backend = || async {
        if args.aws {
            local::aws_backend(Some(args.fast_path)).await
        } else {
            local::local_backend(&args.outbox, args.fast_path)
        }
    };
    match args.function {
        Function::Ingress => {
            // The ingress fetches keys from its issuer, so the dev issuer's
            // JWKS is served on a loopback port for the life of the call.
            let key = local::load_or_create_key(&args.state_dir)?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            let port = listener.local_addr()?.port();
            let jwks = key.jwks();
            let router = Router::new().route(
                "/oauth2/default/v1/keys",
                get(move || {
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            );
            let server = tokio::spawn(async move { axum::serve(listener, router).await });
            let issuer = local::issuer_for_port(port);
            let text = if text.contains(TOKEN_PLACEHOLDER) {
                let claims = TokenClaims::new(
                    &issuer,
                    local::AUDIENCE,
                    local::CLIENT_ID,
                    &[local::SCOPE],
                    300,
                );
                text.replace(TOKEN_PLACEHOLDER, &key.sign(&claims)?)
            } else {
                text
            };
            let payload: serde_json::Value = serde_json::from_str(&text)?;
            let deps = IngressDeps::new(
                &local::ingress_config(&issuer)?,
                Arc::new(backend().await?.pipeline),
            )?;
            let resp = telehook_json(&deps, payload).await;
            server.abort();
            Ok(serde_json::to_value(resp)?)
        }
        Function::Dispatcher => {
            let event: SqsEvent = serde_json::from_str(&text)?;
            let backend = backend().await?;
            Ok(serde_json::to_value(
                dispatch_batch(&backend.pipeline, event).await,
            )?)
        }
        Function::DlqReplayer => {
            let request: telehook::flows::replay::ReplayRequest = serde_json::from_str(&text)?;
            let backend = backend().await?;
            let dlq: Arc<dyn telehook::queue::JobQueue> = match &backend.dlq {
                Some(dlq) => dlq.clone(),
                None => {
                    let url = telehook::config::PipelineConfig::from_env()?
                        .dlq_url
                        .ok_or("DLQ_URL is not set")?;
                    let sdk = telehook::aws::load_sdk_config().await;
                    Arc::new(telehook::queue::SqsQueue::new(
                        telehook::aws::SqsClient::new(&sdk),
                        url,
                    ))
                }
            };
            let report =
                telehook::flows::replay::replay_dlq(&backend.pipeline, dlq.as_ref(), &request)
                    .await?;
            Ok(serde_json::to_value(report)?)
        }
    }
}
