//! `telehook serve`: the whole pipeline in one process on 127.0.0.1.
//!
//! - `POST /okta/telephony`: the ingress handler, fed the same API Gateway
//!   proxy event the Lambda gets;
//! - `GET /oauth2/default/v1/keys`: the dev issuer's JWKS, which the ingress
//!   fetches and verifies tokens against, as it does with Okta;
//! - `GET /healthz`;
//! - the dispatcher, driven by the same event-source poller the tests use.
//!
//! Ctrl-C or SIGTERM stops taking requests, drains the queue and exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use telehook::api::{IngressDeps, http_parts, proxy_event_from_http, telehook};
use telehook::flows::poll_once;
use telehook::queue::JobQueue;

use crate::local::{self, Backend, Error};

pub struct ServeArgs {
    pub port: u16,
    pub state_dir: std::path::PathBuf,
    pub outbox: std::path::PathBuf,
    pub fast_path: bool,
    pub aws: bool,
    /// Longest wait for the queue to drain at shutdown.
    pub drain_timeout: Duration,
    /// Artificial provider latency (load tests).
    pub provider_latency: Duration,
    /// Print a notice per outbox message (off for load tests).
    pub notices: bool,
    /// Fault injection between the flows and the local adapters.
    pub chaos: Option<telehook::testkit::chaos::ChaosSpec>,
}

struct App {
    deps: IngressDeps,
    jwks: serde_json::Value,
}

async fn hook(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = peer.ip().to_string();
    let event = proxy_event_from_http(method, uri.path(), &headers, &body, Some(&ip));
    let (status, headers, body) = http_parts(&telehook(&app.deps, event).await);
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    resp.headers_mut().extend(headers);
    resp
}

async fn jwks(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.jwks.clone()).into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn queue_is_empty(queue: &dyn JobQueue) -> bool {
    match queue.depth().await {
        Ok(d) => d.visible + d.in_flight + d.delayed == 0,
        Err(_) => false,
    }
}

pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    std::fs::create_dir_all(&args.state_dir)?;
    let key = local::load_or_create_key(&args.state_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    let issuer = local::issuer_for_port(port);
    let config = local::ingress_config(&issuer)?;
    let Backend {
        pipeline,
        queue,
        ledger,
        dlq,
    } = if args.aws {
        local::aws_backend(Some(args.fast_path)).await?
    } else {
        local::local_backend_with_latency(
            &args.outbox,
            args.fast_path,
            args.provider_latency,
            args.notices,
            args.chaos.as_ref(),
        )?
    };
    let app = Arc::new(App {
        deps: IngressDeps::new(&config, Arc::new(pipeline.clone()))?,
        jwks: key.jwks(),
    });

    // The dispatcher: Lambda's SQS event source, played by the poller.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, queue, pipeline) = (stop.clone(), queue.clone(), pipeline.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) =
                    poll_once(queue.as_ref(), &pipeline, Duration::from_millis(200)).await
                {
                    tracing::warn!(error = %e, "polling the job queue failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        })
    };

    let router = Router::new()
        .route("/okta/telephony", post(hook))
        .route("/oauth2/default/v1/keys", get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app);

    println!("listening on http://127.0.0.1:{port}");
    println!("issuer {issuer}  outbox {}", args.outbox.display());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;

    println!("stopping: no new requests; draining the queue");
    let deadline = tokio::time::Instant::now() + args.drain_timeout;
    while !queue_is_empty(queue.as_ref()).await && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = poller.await;
    let left = queue
        .depth()
        .await
        .map(|d| d.visible + d.in_flight + d.delayed)
        .unwrap_or(0);
    if let Some(ledger) = ledger {
        let records = ledger.records();
        let sent = records
            .iter()
            .filter(|r| r.status == telehook::ledger::Status::Sent)
            .count();
        println!("ledger: {} events, {sent} sent", records.len());
        // For reconciliation after a run: event ids and states only (the
        // ledger holds no code and no number).
        let snapshot: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "eventId": r.event_id, "status": r.status.as_str(), "attempts": r.attempts,
                    "messageId": r.message_id, "failure": r.failure,
                })
            })
            .collect();
        std::fs::write(
            args.state_dir.join("ledger-snapshot.json"),
            serde_json::to_vec(&snapshot)?,
        )?;
    }
    if let Some(dlq) = dlq {
        if !dlq.is_empty() {
            println!("dead-letter queue: {} messages", dlq.len());
        }
        let dead: Vec<String> = dlq
            .receive(10_000, Duration::ZERO)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|m| {
                telehook::domain::job::Job::decode(&m.body)
                    .ok()
                    .map(|j| j.event_id)
            })
            .collect();
        let snapshot = serde_json::json!({"deadLettered": dead, "stillQueued": left});
        std::fs::write(
            args.state_dir.join("queue-snapshot.json"),
            serde_json::to_vec(&snapshot)?,
        )?;
    }
    if left > 0 {
        return Err(format!(
            "{left} jobs were still queued after {:?}",
            args.drain_timeout
        )
        .into());
    }
    println!("drained; bye");
    Ok(())
}
