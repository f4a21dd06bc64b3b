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
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use telehook::api::{IngressDeps, http_parts, proxy_event_from_http, telehook};
use telehook::config::Problems;
use telehook::flows::{PollerSettings, run_poller};
use telehook::queue::JobQueue;

use telehook::domain::Job;
use telehook::ledger::Status;
use telehook::testkit::chaos::ChaosSpec;

use crate::local::{self, Backend, Error, LocalArgs};
use telehook::messenger::outbox::Notices;
use telehook::messenger::receipts::Undeliverable;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    pub local: LocalArgs,
    /// Longest wait for the queue to drain on shutdown, in seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout: u64,
    /// Artificial provider latency in milliseconds, for load tests.
    #[arg(long, default_value_t = 0)]
    pub provider_latency_ms: u64,
    /// Do not print a notice per message.
    #[arg(long)]
    pub quiet: bool,
    /// Destinations whose messages local mode reports as undeliverable:
    /// ISO countries and E.164 prefixes, e.g. GB,+4477. Every other message
    /// gets a "delivered" receipt.
    #[arg(long, value_parser = parse_undeliverable, default_value = "")]
    pub undeliverable: Undeliverable,
    /// Inject faults, e.g. provider.throttle=0.3,provider.timeout=0.05,provider.latency-ms=50,ledger.conflict=0.01
    #[arg(long, value_parser = parse_chaos)]
    pub chaos: Option<Box<ChaosSpec>>,
}

fn parse_undeliverable(s: &str) -> Result<Undeliverable, String> {
    Undeliverable::parse(s)
}

fn parse_chaos(s: &str) -> Result<Box<ChaosSpec>, String> {
    ChaosSpec::parse(s).map(Box::new).map_err(|e| e.to_string())
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

pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    let state_dir = &args.local.state_dir;
    std::fs::create_dir_all(state_dir)?;
    let key = local::load_or_create_key(state_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    let issuer = local::issuer_for_port(port);
    let outbox = args.local.outbox();
    // The ingress's settings are checked with the backend's, so a start
    // that fails names every problem at once.
    let mut problems = Problems::default();
    let ingress = problems.take(local::ingress_config(&issuer));
    let mut backend = if args.local.aws.0 {
        local::aws_backend(Some(args.local.fast_path()), problems).await?
    } else {
        local::local_backend_with_latency(
            &outbox,
            args.local.fast_path(),
            Duration::from_millis(args.provider_latency_ms),
            if args.quiet {
                Notices::Off
            } else {
                Notices::Stdout
            },
            args.chaos.as_deref(),
            Some(args.undeliverable.clone()),
            problems,
        )?
    };
    let ingress = ingress.ok_or("the ingress configuration is incomplete")?;
    let app = Arc::new(App {
        deps: IngressDeps::new(&ingress, Arc::new(backend.pipeline.clone()))?,
        jwks: key.jwks(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = spawn_poller(&backend, stopped);
    let receipts = spawn_receipts(&mut backend, stop.subscribe());
    let router = Router::new()
        .route("/okta/telephony", post(hook))
        .route("/oauth2/default/v1/keys", get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app);

    println!("listening on http://127.0.0.1:{port}");
    if args.local.aws.0 {
        println!("issuer {issuer}  messages through End User Messaging (or its stand-in)");
    } else {
        println!("issuer {issuer}  outbox {}", outbox.display());
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;

    println!("stopping: no new requests; draining the queue");
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let left = drain(backend.queue.as_ref(), drain_timeout).await;
    let _ = stop.send(true);
    let _ = poller.await;
    if let Some(receipts) = receipts {
        // Every send is done: the task records what is still queued, then ends.
        let _ = receipts.await;
    }
    write_snapshots(state_dir, &backend, left).await?;
    if left > 0 {
        return Err(format!("{left} jobs were still queued after {drain_timeout:?}").into());
    }
    println!("drained; bye");
    Ok(())
}

/// The dispatcher: Lambda's SQS event source, played by the poller until
/// `stop` says so. It long-polls and backs off when idle, so an idle
/// `serve --aws` makes a request every 20 s or so, not hundreds a second.
fn spawn_poller(
    backend: &Backend,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (queue, pipeline) = (backend.queue.clone(), backend.pipeline.clone());
    tokio::spawn(async move {
        run_poller(queue.as_ref(), &pipeline, PollerSettings::default(), stop).await;
    })
}

/// Local mode's delivery events through the same receipts flow as the
/// receipts Lambda, as they come.
fn spawn_receipts(
    backend: &mut Backend,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut events = backend.receipts.take()?;
    let pipeline = backend.pipeline.clone();
    let record = move |event: String| {
        let pipeline = pipeline.clone();
        async move {
            if let Err(e) =
                telehook::flows::receipts::record_receipts(&pipeline, [event.as_str()]).await
            {
                tracing::warn!(error = %e, "a local receipt was not recorded");
            }
        }
    };
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => record(event).await,
                    None => return,
                },
                _ = stop.changed() => break,
            }
        }
        // Stopping: what the last sends reported is still recorded.
        while let Ok(event) = events.try_recv() {
            record(event).await;
        }
    }))
}

/// Waits until the queue is empty or the timeout passes; returns how many
/// jobs are left.
async fn drain(queue: &dyn JobQueue, timeout: Duration) -> u64 {
    let depth = || async {
        queue
            .depth()
            .await
            .map(|d| d.visible + d.in_flight + d.delayed)
    };
    let deadline = tokio::time::Instant::now() + timeout;
    while depth().await.map_or(true, |n| n > 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    depth().await.unwrap_or(0)
}

/// For reconciliation after a run (`telehook bench`): the in-memory
/// ledger's event ids and states (it holds no code and no number), and the
/// event ids left in the queues.
async fn write_snapshots(state_dir: &Path, backend: &Backend, left: u64) -> Result<(), Error> {
    if let Some(ledger) = &backend.ledger {
        let records = ledger.records();
        let sent = records.iter().filter(|r| r.status == Status::Sent).count();
        println!("ledger: {} events, {sent} sent", records.len());
        let snapshot: Vec<serde_json::Value> =
            records.iter().map(crate::report::snapshot_line).collect();
        std::fs::write(
            state_dir.join("ledger-snapshot.json"),
            serde_json::to_vec(&snapshot)?,
        )?;
    }
    if let Some(dlq) = &backend.dlq {
        if !dlq.is_empty() {
            println!("dead-letter queue: {} messages", dlq.len());
        }
        let dead: Vec<String> = dlq
            .receive(10_000, Duration::ZERO)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|m| Job::decode(&m.body).ok().map(|j| j.event_id))
            .collect();
        let snapshot = serde_json::json!({"deadLettered": dead, "stillQueued": left});
        std::fs::write(
            state_dir.join("queue-snapshot.json"),
            serde_json::to_vec(&snapshot)?,
        )?;
    }
    Ok(())
}
