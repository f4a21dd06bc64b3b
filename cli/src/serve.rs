//! `telehook serve`: the whole pipeline in one process on 127.0.0.1.
//!
//! - `POST /okta/telephony`: the ingress handler, fed the same API Gateway
//!   proxy event the Lambda gets;
//! - `GET`/`POST /okta/events`: Okta's event hook on the same handler
//!   (secret `local-event-hook-secret` unless `EVENT_HOOK_SECRET` is set);
//! - `GET /oauth2/default/v1/keys`: the dev issuer's JWKS, which the ingress
//!   fetches and verifies tokens against, as it does with Okta;
//! - `GET /healthz`;
//! - the dispatcher, driven by the same event-source poller the tests use;
//! - in local mode, the provider's delivery receipts for every message
//!   (`--undeliverable` picks destinations that fail), and a person who
//!   types each delivered code in a moment later: a sign-in POSTed to the
//!   event hook route, unless `--never-converting` covers the destination;
//! - the expiry checks, once a second, marking unused codes.
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
use telehook::api::{
    IngressDeps, IngressError, MAX_BODY_BYTES, http_parts, proxy_event_from_http, telehook,
};
use telehook::config::Problems;
use telehook::flows::{PollerSettings, run_poller};
use telehook::okta::InvalidHook;
use telehook::queue::JobQueue;

use telehook::domain::Job;
use telehook::domain::UseSignal;
use telehook::ledger::Status;
use telehook::testkit::chaos::ChaosSpec;

use crate::local::{self, Backend, Error, LocalArgs, LocalRun, LocalStore};
use telehook::messenger::outbox::Notices;
use telehook::messenger::receipts::Undeliverable;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "TELEHOOK_PORT", default_value_t = 8080)]
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
    /// Destinations whose delivered codes nobody types in (local mode): ISO
    /// countries and E.164 prefixes, e.g. ID,+6281. Every other delivered
    /// code is used to sign in a moment after it arrives.
    #[arg(long, value_parser = parse_undeliverable, default_value = "")]
    pub never_converting: Undeliverable,
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
    /// Each hook's Okta user id and kind of code, by event id, so local
    /// mode's simulated person can use the code as that user, the way Okta
    /// then reports it. In memory only.
    users: std::sync::Mutex<std::collections::HashMap<String, (String, Option<UseSignal>)>>,
}

/// The most users `App::users` remembers; a long load run starts over.
const MAX_REMEMBERED_USERS: usize = 200_000;

impl App {
    fn remember_user(&self, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let user = match &v["data"]["userProfile"]["userId"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return,
        };
        let signal = v["requestType"]
            .as_str()
            .and_then(|t| telehook::domain::RequestType::parse(t).ok())
            .as_ref()
            .and_then(UseSignal::of);
        if let Some(event) = v["eventId"].as_str() {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            if users.len() >= MAX_REMEMBERED_USERS {
                users.clear();
            }
            users.insert(event.to_owned(), (user, signal));
        }
    }

    fn user_of(&self, event_id: &str) -> Option<(String, Option<UseSignal>)> {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(event_id)
            .cloned()
    }
}

async fn hook(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match read_body(body).await {
        Ok(body) => body,
        // Over the read limit, or cut off: answered in Okta's shape, as the
        // handler answers a body over its own cap, never by the framework.
        Err(too_large) => {
            tracing::warn!(too_large, "hook body not read");
            let error = if too_large {
                IngressError::Invalid(InvalidHook::TooLarge {
                    limit: MAX_BODY_BYTES,
                })
            } else {
                IngressError::BadEvent
            };
            return respond(&error.to_response());
        }
    };
    let ip = peer.ip().to_string();
    if uri.path() == "/okta/telephony" {
        app.remember_user(&body);
    }
    let event = proxy_event_from_http(method, uri.path(), &headers, &body, Some(&ip));
    respond(&telehook(&app.deps, event).await)
}

/// The body, up to [`READ_LIMIT`]; a longer one is read to its end and
/// dropped (`Err(true)`), so the client, still sending, gets the answer
/// rather than a reset connection; past [`DRAIN_LIMIT`] (more than API
/// Gateway ever passes) the connection is closed. `Err(false)`: the client
/// stopped sending.
async fn read_body(body: axum::body::Body) -> Result<Bytes, bool> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let (mut kept, mut seen) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| false)?;
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            return Err(true);
        }
        if seen <= READ_LIMIT {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > READ_LIMIT {
        return Err(true);
    }
    Ok(kept.into())
}

fn respond(answer: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> Response {
    let (status, headers, body) = http_parts(answer);
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

/// The most of a body `serve` keeps for the handler (whose cap is far
/// below: a hook is a few KiB).
const READ_LIMIT: usize = 1024 * 1024;

/// The most of a body `serve` reads at all: API Gateway's own limit is
/// 10 MB.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    let state_dir = &args.local.at.state_dir;
    std::fs::create_dir_all(state_dir)?;
    let key = local::load_or_create_key(state_dir)?;
    let listener = local::listen(args.port, "--port or TELEHOOK_PORT").await?;
    let port = listener.local_addr()?.port();
    let issuer = local::issuer_for_port(port);
    let outbox = args.local.outbox();
    let (ingress, mut backend) = start_backend(&args, &issuer).await?;
    let app = Arc::new(App {
        deps: IngressDeps::new(&ingress, Arc::new(backend.pipeline.clone()))?,
        jwks: key.jwks(),
        users: std::sync::Mutex::default(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = spawn_poller(&backend, stopped);
    let receipts = spawn_receipts(
        &mut backend,
        app.clone(),
        args.never_converting.clone(),
        stop.subscribe(),
    );
    let expiries = spawn_expiry_checks(&backend, stop.subscribe());
    let router = Router::new()
        .route("/okta/telephony", post(hook))
        .route("/okta/events", get(hook).post(hook))
        .route("/oauth2/default/v1/keys", get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app);

    println!("listening on http://127.0.0.1:{port}");
    if args.local.at.aws.0 {
        println!("issuer {issuer}  messages through End User Messaging (or its stand-in)");
    } else {
        let ledger = match args.local.store {
            local::StoreKind::Sqlite => args.local.at.ledger_path().display().to_string(),
            local::StoreKind::Memory => "in memory".to_owned(),
        };
        println!(
            "issuer {issuer}  outbox {}  ledger {ledger}",
            outbox.display()
        );
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
        // Every send is done: the task records what is still queued, and
        // the sign-ins it started, then ends.
        let _ = receipts.await;
    }
    let _ = expiries.await;
    write_snapshots(state_dir, &backend, left).await?;
    if left > 0 {
        return Err(format!("{left} jobs were still queued after {drain_timeout:?}").into());
    }
    println!("drained; bye");
    Ok(())
}

/// The ingress's settings and the backend, checked together so a start
/// that fails names every problem at once.
async fn start_backend(
    args: &ServeArgs,
    issuer: &str,
) -> Result<(telehook::auth::settings::IngressConfig, Backend), Error> {
    let mut problems = Problems::default();
    let ingress = problems.take(local::ingress_config(issuer));
    let backend = if args.local.at.aws.0 {
        local::aws_backend(Some(args.local.fast_path()), problems).await?
    } else {
        let run = LocalRun {
            provider_latency: Duration::from_millis(args.provider_latency_ms),
            notices: if args.quiet {
                Notices::Off
            } else {
                Notices::Stdout
            },
            chaos: args.chaos.as_deref(),
            receipts: Some(args.undeliverable.clone()),
            ..LocalRun::of(&args.local)?
        };
        local::local_backend(run, problems)?
    };
    let ingress = ingress.ok_or("the ingress configuration is incomplete")?;
    Ok((ingress, backend))
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

/// How long local mode's simulated person takes to type a delivered code.
const TYPING_TIME: Duration = Duration::from_millis(1500);

/// Local mode's delivery events through the same receipts flow as the
/// receipts Lambda, as they come; for each delivered code, a sign-in a
/// moment later through the event hook route ([`sign_in_later`]).
fn spawn_receipts(
    backend: &mut Backend,
    app: Arc<App>,
    never_converting: Undeliverable,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut events = backend.receipts.take()?;
    let pipeline = backend.pipeline.clone();
    let mut sign_ins = tokio::task::JoinSet::new();
    let record = move |event: String, sign_ins: &mut tokio::task::JoinSet<()>| {
        let pipeline = pipeline.clone();
        let app = app.clone();
        let never_converting = never_converting.clone();
        let recorded = async move {
            if let Err(e) =
                telehook::flows::receipts::record_receipts(&pipeline, [event.as_str()]).await
            {
                tracing::warn!(error = %e, "a local receipt was not recorded");
            }
            sign_in_later(&pipeline, &app, &never_converting, &event)
        };
        sign_ins.spawn(async move {
            if let Some(sign_in) = recorded.await {
                sign_in.await;
            }
        });
    };
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => record(event, &mut sign_ins),
                    None => break,
                },
                // Finished ones are let go as they end, so a long run does
                // not keep them all.
                Some(_) = sign_ins.join_next(), if !sign_ins.is_empty() => {}
                _ = stop.changed() => break,
            }
        }
        // Stopping: what the last sends reported is still recorded, and
        // the sign-ins under way are finished.
        while let Ok(event) = events.try_recv() {
            record(event, &mut sign_ins);
        }
        while sign_ins.join_next().await.is_some() {}
    }))
}

/// The use of a delivered code by the person it reached, if conversions
/// are on and `never_converting` does not cover the destination (its
/// country, or its prefix as the ledger keeps it): an Okta event hook batch
/// POSTed through the handler after [`TYPING_TIME`], holding the event Okta
/// logs for that kind of code ([`okta_event`]); none for a code Okta logs
/// no use of.
fn sign_in_later(
    pipeline: &telehook::flows::Pipeline,
    app: &Arc<App>,
    never_converting: &Undeliverable,
    event: &str,
) -> Option<impl Future<Output = ()> + use<>> {
    use telehook::domain::DeliveryVerdict;
    use telehook::messenger::receipts::{Reading, read_event};
    if !pipeline.settings.guard.learning.conversions {
        return None;
    }
    let Ok(Reading::Final(receipt)) = read_event(event) else {
        return None;
    };
    if receipt.delivery != DeliveryVerdict::Delivered {
        return None;
    }
    let (user, signal) = app.user_of(receipt.event_id.as_str())?;
    let signal = signal?;
    let (app, pipeline) = (app.clone(), pipeline.clone());
    let never_converting = never_converting.clone();
    Some(async move {
        tokio::time::sleep(TYPING_TIME).await;
        // The receipt can beat the send's own bookkeeping (it is reported
        // from inside the send): wait until the send is noted, as a person
        // cannot type a code before it is sent.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let record = loop {
            let record = pipeline
                .ledger
                .claims
                .get(&receipt.event_id)
                .await
                .ok()
                .flatten();
            if record.as_ref().is_some_and(|r| r.sent.is_some())
                || tokio::time::Instant::now() >= deadline
            {
                break record;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let country = record.as_ref().and_then(|r| r.country.clone());
        let prefix = record
            .as_ref()
            .and_then(|r| r.sent.as_ref())
            .map(|s| format!("+{}", s.prefix))
            .unwrap_or_default();
        if never_converting.covers(&prefix, country.as_deref()) {
            return;
        }
        let body = serde_json::json!({
            "eventType": "com.okta.event_hook",
            "data": {"events": [okta_event(signal, &user, receipt.channel)]}
        });
        let secret = local::local_env("EVENT_HOOK_SECRET").unwrap_or_default();
        let mut headers = HeaderMap::new();
        if let Ok(v) = secret.parse() {
            headers.insert(axum::http::header::AUTHORIZATION, v);
        }
        let event = proxy_event_from_http(
            Method::POST,
            "/okta/events",
            &headers,
            body.to_string().as_bytes(),
            Some("127.0.0.1"),
        );
        let resp = telehook(&app.deps, event).await;
        if resp.status_code != 200 {
            tracing::warn!(
                status = resp.status_code,
                "the simulated sign-in was not taken"
            );
        }
    })
}

/// The expiry queue's event source in local mode: arrived checks are
/// handled once a second until `stop`.
fn spawn_expiry_checks(
    backend: &Backend,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let pipeline = backend.pipeline.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    telehook::flows::conversion::run_due_checks(&pipeline).await;
                }
                _ = stop.changed() => return,
            }
        }
    })
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
    match queue.depth().await {
        Ok(d) => {
            let left = d.visible + d.in_flight + d.delayed;
            if left > 0 {
                // Which state they are in tells a job waiting out its
                // visibility timeout from one no poller can see.
                println!(
                    "left in the queue: {} visible, {} in flight, {} delayed",
                    d.visible, d.in_flight, d.delayed
                );
            }
            left
        }
        Err(_) => 0,
    }
}

/// What the ledger holds now; and for a load run on the in-memory ledger
/// (`telehook bench`, which reconciles after the run), its event ids and
/// states (it holds no code and no number), and the event ids left in the
/// queues.
async fn write_snapshots(state_dir: &Path, backend: &Backend, left: u64) -> Result<(), Error> {
    let Some(ledger) = &backend.store else {
        return Ok(());
    };
    let records = ledger.records()?;
    let sent = records.iter().filter(|r| r.status == Status::Sent).count();
    println!("ledger: {} events, {sent} sent", records.len());
    let dead = match &backend.dlq {
        Some(dlq) => dlq.depth().await?,
        None => Default::default(),
    };
    let dead_count = dead.visible + dead.in_flight + dead.delayed;
    if dead_count > 0 {
        println!("dead-letter queue: {dead_count} messages");
    }
    let (LocalStore::Memory(_), Some(dlq)) = (ledger, &backend.dlq) else {
        return Ok(());
    };
    let snapshot: Vec<serde_json::Value> =
        records.iter().map(crate::report::snapshot_line).collect();
    std::fs::write(
        state_dir.join("ledger-snapshot.json"),
        serde_json::to_vec(&snapshot)?,
    )?;
    // Ten at a time, as SQS hands them out; each is hidden once read.
    let mut dead = Vec::new();
    while let Ok(batch) = dlq.receive(10, Duration::ZERO).await
        && !batch.is_empty()
    {
        dead.extend(
            batch
                .iter()
                .filter_map(|m| Job::decode(&m.body).ok().map(|j| j.event_id)),
        );
    }
    let snapshot = serde_json::json!({"deadLettered": dead, "stillQueued": left});
    std::fs::write(
        state_dir.join("queue-snapshot.json"),
        serde_json::to_vec(&snapshot)?,
    )?;
    Ok(())
}

/// The System Log event Okta publishes when a code of this kind is used,
/// shaped as Okta sends it (Identity Engine for sign-ins, Classic's factor
/// names for enrollments, the self-service actor for a reset).
fn okta_event(
    signal: UseSignal,
    user: &str,
    channel: telehook::domain::Channel,
) -> serde_json::Value {
    use telehook::domain::Channel;
    let user_target = serde_json::json!({"id": user, "type": "User"});
    let mut event = serde_json::json!({
        "uuid": telehook::crypto::random_hex(16),
        "eventType": signal.event_type(),
        "published": chrono::Utc::now().to_rfc3339(),
        "outcome": {"result": "SUCCESS"},
        "actor": user_target,
        "target": [user_target],
    });
    match signal {
        UseSignal::SignIn => {
            let method = match channel {
                Channel::Sms => "SMS",
                Channel::Voice => "Voice call",
            };
            event["target"] = serde_json::json!([user_target,
                {"type": "AuthenticatorEnrollment", "displayName": "Phone",
                 "detailEntry": {"methodTypeUsed": method}}]);
        }
        UseSignal::Enrollment => {
            let factor = match channel {
                Channel::Sms => "SMS_FACTOR",
                Channel::Voice => "CALL_FACTOR",
            };
            event["debugContext"] = serde_json::json!({"debugData": {"factor": factor}});
        }
        UseSignal::PasswordReset => {
            event["actor"] =
                serde_json::json!({"id": "0oa0000000system", "type": "SystemPrincipal"});
        }
        UseSignal::Unlock => {}
    }
    event
}
