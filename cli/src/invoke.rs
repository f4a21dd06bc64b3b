//! `telehook invoke`: one Lambda event through the same handler, with local
//! adapters, printing the handler's JSON response. The no-Docker twin of
//! `sam local invoke -e events/<file>.json`.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use axum::Router;
use axum::routing::get;
use telehook::api::{IngressDeps, telehook_json};
use telehook::config::Problems;
use telehook::flows::PipelineConfig;
use telehook::flows::dispatch_batch;
use telehook::flows::replay::{ReplayRequest, replay_dlq};
use telehook::queue::{JobQueue, SqsQueue};

use crate::local::{self, Error, LocalArgs};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Function {
    /// The hook's front door: an API Gateway proxy event.
    Ingress,
    /// The queue's consumer: an SQS event of jobs.
    Dispatcher,
    /// The dead-letter queue's replayer: `{maxMessages, dryRun}`.
    DlqReplayer,
    /// Delivery receipts (an SNS event) and the timers queue's checks.
    Receipts,
}

#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// Which Lambda's handler runs the event.
    #[arg(value_enum)]
    pub function: Function,
    /// The event file (see events/).
    pub event: std::path::PathBuf,
    #[command(flatten)]
    pub local: LocalArgs,
}

/// Runs the event and prints the handler's JSON response.
pub async fn invoke(args: InvokeArgs) -> Result<(), Error> {
    let text = std::fs::read_to_string(&args.event)
        .map_err(|e| format!("{}: {e}", args.event.display()))?;
    // The ingress's own settings are checked with the backend's (the
    // issuer's port is only known later; it does not change what is valid).
    let mut problems = Problems::default();
    if matches!(args.function, Function::Ingress) {
        problems.take(local::ingress_config(&local::issuer_for_port(8080)));
    }
    let backend = if args.local.at.aws.0 {
        local::aws_backend(Some(args.local.fast_path()), problems).await?
    } else {
        local::local_backend(local::LocalRun::of(&args.local)?, problems)?
    };
    let response = match args.function {
        Function::Ingress => ingress(&args.local, &text, backend).await?,
        Function::Dispatcher => {
            let event: SqsEvent = serde_json::from_str(&text)?;
            serde_json::to_value(dispatch_batch(&backend.pipeline, event).await)?
        }
        Function::Receipts => {
            let payload: serde_json::Value = serde_json::from_str(&text)?;
            serde_json::to_value(
                telehook::flows::receipts::Consumer::handle(&backend.pipeline, &payload).await?,
            )?
        }
        Function::DlqReplayer => {
            let request: ReplayRequest = serde_json::from_str(&text)?;
            let dlq: Arc<dyn JobQueue> = match &backend.dlq {
                Some(dlq) => dlq.clone(),
                None => aws_dlq().await?,
            };
            serde_json::to_value(replay_dlq(&backend.pipeline, dlq.as_ref(), &request).await?)?
        }
    };
    outln!(
        "{}",
        serde_json::to_string_pretty(&response).unwrap_or_default()
    );
    Ok(())
}

/// The ingress fetches keys from its issuer, so the dev issuer's JWKS is
/// served on a loopback port for the life of the call.
async fn ingress(
    local: &LocalArgs,
    text: &str,
    backend: local::Backend,
) -> Result<serde_json::Value, Error> {
    let key = local::load_or_create_key(&local.at.state_dir)?;
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
    let text = if text.contains(local::TOKEN_PLACEHOLDER) {
        text.replace(
            local::TOKEN_PLACEHOLDER,
            &local::local_token(&key, &issuer, 300)?,
        )
    } else {
        text.to_owned()
    };
    // Not JSON at all is the file's problem, said here; JSON that is not a
    // proxy event is the handler's 400, as in Lambda.
    serde_json::from_str::<&serde_json::value::RawValue>(&text)?;
    let deps = IngressDeps::new(&local::ingress_config(&issuer)?, Arc::new(backend.pipeline))?;
    let resp = telehook_json(&deps, &text).await;
    server.abort();
    Ok(serde_json::to_value(resp)?)
}

/// The deployed DLQ, from `DLQ_URL` and the normal SDK environment.
async fn aws_dlq() -> Result<Arc<dyn JobQueue>, Error> {
    let url = PipelineConfig::from_env()?
        .dlq_url
        .ok_or("DLQ_URL is not set")?;
    let sdk = crate::ops::sdk().await?;
    Ok(Arc::new(SqsQueue::new(
        telehook::aws::SqsClient::new(&sdk),
        url,
    )))
}
