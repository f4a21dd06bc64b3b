//! The HTTP edge, the ingress Lambda's handler: API Gateway REST proxy event
//! in, proxy response out. Local mode turns plain HTTP into the same event.
//!
//! Authenticate, read the body (base64 or not, at most 64 KiB), validate it
//! into a `DeliveryRequest`, hand it to the delivery port, and answer Okta.
//! Every error becomes a response in one place, [`IngressError::to_response`]:
//! 401 for authentication, HTTP 200 with Okta's error object for a hook we
//! refuse, so that Okta falls back to its own provider.
//!
//! The same handler serves Okta's event hook at [`EVENTS_PATH`] when an
//! event hook secret is configured: the one-time verification GET and the
//! POSTed batches of sign-in events ([`crate::okta::events`]), each
//! authenticated by that secret.

mod event;

use std::borrow::Cow;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, Method};
use thiserror::Error;
use tracing::{Instrument, field};

use crate::auth::settings::{AuthConfig, HeaderSecretConfig, IngressConfig};
use crate::auth::{AuthError, AuthInitError, Authenticator, HeaderSecret};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, SecretSetting};
use crate::crypto::random_hex;
use crate::domain::{ActionStatus, DeliveryOutcome, ip_network};
use crate::flows::Delivery;
use crate::okta::{ErrorCause, HookDefaults, HookResponse, InvalidHook, parse_hook};
use crate::secrets::{REFRESH_COOLDOWN, Refresher, SecretSource, SecretsManagerSecret};
use event::Incoming;

/// Okta's hook bodies are around 1 KiB; 64 KiB leaves room for growth and
/// stops memory abuse.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An event hook batch carries whole System Log events, a few KiB each.
pub const MAX_EVENT_BODY_BYTES: usize = 1024 * 1024;

/// The event hook's route.
pub const EVENTS_PATH: &str = "/okta/events";

/// What the ingress handler needs, built once per process.
pub struct IngressDeps {
    pub auth: Authenticator,
    pub defaults: HookDefaults,
    pub delivery: Arc<dyn Delivery>,
    /// Stamps the arrival time a missing `otpExpires` counts from; the
    /// pipeline's clock, so both agree.
    pub clock: Arc<dyn Clock>,
    /// The event hook's secret; `None` turns the route off.
    pub event_hook: Option<HeaderSecret>,
}

impl std::fmt::Debug for IngressDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressDeps")
            .field("auth", &self.auth)
            .field("defaults", &self.defaults)
            .field("event_hook", &self.event_hook)
            .finish_non_exhaustive()
    }
}

/// How long Lambda init waits for the issuer's keys. Init runs with boosted
/// CPU and outside Okta's budget, but a cold start still delays the hook that
/// caused it: a short wait, then the first request's own fetch takes over.
pub const JWKS_INIT_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

/// A header secret given by ARN: read now (its current value, and the
/// previous one during a rotation), and re-read when a request's header
/// stops matching. An error names `var` and stops the start.
async fn header_secret_by_arn(
    secrets: &aws_sdk_secretsmanager::Client,
    header: &http::HeaderName,
    arn: &str,
    var: &'static str,
) -> Result<HeaderSecret, ConfigError> {
    let source = SecretsManagerSecret::new(secrets.clone(), arn);
    let versions = source
        .read_versions()
        .await
        .map_err(|e| ConfigError::Invalid {
            var,
            reason: e.to_string(),
        })?;
    let refresher = Refresher::new(Arc::new(source), REFRESH_COOLDOWN);
    Ok(HeaderSecret::with_versions(
        header.clone(),
        &versions,
        Some(refresher),
    ))
}

impl IngressDeps {
    /// No network I/O: clients are built, keys are fetched on first use
    /// (the Lambda's [`IngressDeps::for_lambda`] fetches them at init).
    /// The phone-number metadata is built here, at init, not on the first
    /// request.
    pub fn new(config: &IngressConfig, delivery: Arc<dyn Delivery>) -> Result<Self, AuthInitError> {
        Ok(Self::with_auth(
            Authenticator::from_config(&config.auth)?,
            config,
            delivery,
        ))
    }

    /// The Lambda's deps. A header secret given by ARN is read now, through
    /// Secrets Manager, and re-read when a request's header stops matching
    /// (at most once per cooldown), so a rotation needs no redeploy. In
    /// OAuth mode the issuer's keys are fetched now, within
    /// [`JWKS_INIT_DEADLINE`], so the first hook of a cold instance does not
    /// pay for them inside Okta's 3 seconds; if the issuer does not answer
    /// in time, the first hook fetches them as before.
    pub async fn for_lambda(
        config: &IngressConfig,
        delivery: Arc<dyn Delivery>,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self, AuthInitError> {
        let deps = match &config.auth {
            AuthConfig::HeaderSecret(HeaderSecretConfig {
                header,
                secret: SecretSetting::Arn(arn),
            }) => {
                let secret =
                    header_secret_by_arn(secrets, header, arn, "AUTH_HEADER_SECRET_ARN").await?;
                Self::with_auth(Authenticator::HeaderSecret(secret), config, delivery)
            }
            _ => Self::new(config, delivery)?,
        };
        let deps = match &config.event_hook {
            Some(HeaderSecretConfig {
                header,
                secret: SecretSetting::Arn(arn),
            }) => IngressDeps {
                event_hook: Some(
                    header_secret_by_arn(secrets, header, arn, "EVENT_HOOK_SECRET_ARN").await?,
                ),
                ..deps
            },
            _ => deps,
        };
        deps.auth.prefetch(JWKS_INIT_DEADLINE).await;
        Ok(deps)
    }

    fn with_auth(auth: Authenticator, config: &IngressConfig, delivery: Arc<dyn Delivery>) -> Self {
        crate::domain::phone::warm_up();
        IngressDeps {
            auth,
            defaults: config.defaults.clone(),
            delivery,
            clock: Arc::new(SystemClock),
            // A secret by ARN is read by `for_lambda`; by value, here.
            event_hook: config
                .event_hook
                .as_ref()
                .and_then(|c| HeaderSecret::new(c).ok()),
        }
    }

    /// Whether a request header is one the handler reads: the hook's
    /// credentials, and the event hook's secret and challenge when that
    /// route is on. The event keeps only these.
    fn reads_header(&self, name: &str) -> bool {
        let is = |header: &str| name.eq_ignore_ascii_case(header);
        let credentials = match &self.auth {
            Authenticator::OAuth(_) => is(http::header::AUTHORIZATION.as_str()),
            Authenticator::HeaderSecret(secret) => is(secret.header().as_str()),
        };
        credentials
            || self.event_hook.as_ref().is_some_and(|secret| {
                is(secret.header().as_str()) || is(crate::okta::events::VERIFICATION_HEADER)
            })
    }

    /// The same deps reading time from `clock` (the pipeline's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Every way a hook call can go wrong, mapped to a response in one place.
#[derive(Debug, Error)]
pub enum IngressError {
    #[error("not authenticated: {0}")]
    Unauthorized(#[from] AuthError),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("event is not an API Gateway proxy request")]
    BadEvent,
    #[error("invalid hook: {0}")]
    Invalid(#[from] InvalidHook),
}

impl IngressError {
    pub fn to_response(&self) -> ApiGatewayProxyResponse {
        match self {
            IngressError::Unauthorized(_) => {
                let mut r = json_response(401, &HookResponse::error("Unauthorized", vec![]));
                r.headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
                r
            }
            IngressError::MethodNotAllowed => {
                let mut r = json_response(405, &HookResponse::error("Method not allowed", vec![]));
                r.headers
                    .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
                r
            }
            IngressError::BadEvent => {
                json_response(400, &HookResponse::error("Bad request", vec![]))
            }
            IngressError::Invalid(e) => json_response(200, &e.to_response()),
        }
    }
}

/// The Lambda entry point's view: the event's JSON text, read straight into
/// the proxy request (no JSON tree in between). A payload that is not a
/// proxy event (a header value API Gateway would never pass, say) gets a
/// 400 here instead of failing the invocation, and serde's message, which can
/// quote header values, is not logged.
pub async fn telehook_json(deps: &IngressDeps, payload: &str) -> ApiGatewayProxyResponse {
    match Incoming::from_json(payload, |name| deps.reads_header(name)) {
        Ok(event) => serve(deps, event).await,
        Err(e) => {
            tracing::warn!(category = ?e.classify(), "event is not an API Gateway proxy request");
            IngressError::BadEvent.to_response()
        }
    }
}

/// The ingress handler.
pub async fn telehook(
    deps: &IngressDeps,
    event: ApiGatewayProxyRequest,
) -> ApiGatewayProxyResponse {
    serve(
        deps,
        Incoming::from_event(&event, |name| deps.reads_header(name)),
    )
    .await
}

async fn serve(deps: &IngressDeps, event: Incoming<'_>) -> ApiGatewayProxyResponse {
    if is_events_path(&event) {
        return events::handle(deps, event).await;
    }
    let span = tracing::info_span!(
        "hook",
        request_id = %event.request_id,
        event_id = field::Empty,
        okta_request = field::Empty
    );
    async move {
        match handle(deps, event).await {
            Ok(resp) => {
                tracing::info!(status = resp.status().map(|s| s.as_str()).unwrap_or("ERROR"), "hook answered");
                json_response(200, &resp)
            }
            Err(e) => {
                match &e {
                    IngressError::Unauthorized(a) => {
                        tracing::warn!(reason = a.code(), detail = %a, "hook not authenticated")
                    }
                    IngressError::Invalid(i) => {
                        tracing::warn!(field = i.location(), reason = i.reason(), detail = %i, "hook rejected")
                    }
                    other => tracing::error!(error = %other, "hook failed"),
                }
                e.to_response()
            }
        }
    }
    .instrument(span)
    .await
}

async fn handle(deps: &IngressDeps, event: Incoming<'_>) -> Result<HookResponse, IngressError> {
    // Budgets count from the moment the event reached this handler.
    let arrived = tokio::time::Instant::now();
    if event.method != Method::POST {
        return Err(IngressError::MethodNotAllowed);
    }
    deps.auth.authenticate(&event.headers).await?;

    let body = read_body(&event)?;
    let request = parse_hook(&body, &deps.defaults, deps.clock.now())?;
    let span = tracing::Span::current();
    span.record("event_id", request.event_id.as_str());
    if let Some(id) = &request.context.correlation_id {
        span.record("okta_request", id.as_str());
    }
    tracing::info!(
        request_type = request.request_type.short(),
        channel = request.channel.as_str(),
        locale = request.locale.as_str(),
        to = %request.phone,
        country = request.phone.region().map(|r| r.as_str()).unwrap_or("unknown"),
        client_network = request.context.client_ip.as_ref().map(ip_network).as_deref().unwrap_or("unknown"),
        "hook accepted"
    );

    Ok(match deps.delivery.deliver(request, arrived).await {
        DeliveryOutcome::Successful {
            transaction_id,
            metadata,
        } => HookResponse::action(ActionStatus::Successful, Some(transaction_id), metadata),
        DeliveryOutcome::Pending { metadata } => {
            HookResponse::action(ActionStatus::Pending, None, metadata)
        }
        DeliveryOutcome::Failed { summary, cause } => HookResponse::error(
            &summary,
            vec![ErrorCause {
                error_summary: cause.summary.to_owned(),
                reason: cause.reason.to_owned(),
                location_type: cause.location_type.to_owned(),
                location: cause.location.to_owned(),
                domain: cause.domain.to_owned(),
            }],
        ),
    })
}

fn is_events_path(event: &Incoming<'_>) -> bool {
    event
        .path
        .as_deref()
        .or(event.resource.as_deref())
        .is_some_and(|p| p.trim_end_matches('/').ends_with(EVENTS_PATH))
}

/// The event hook route.
mod events {
    use super::*;
    use crate::okta::events::{VERIFICATION_HEADER, read_batch, verification_answer};

    fn error(status: i64, summary: &str) -> ApiGatewayProxyResponse {
        json_response(status, &HookResponse::error(summary, vec![]))
    }

    pub(super) async fn handle(deps: &IngressDeps, event: Incoming<'_>) -> ApiGatewayProxyResponse {
        let span = tracing::info_span!("event_hook", request_id = %event.request_id);
        async move {
            let Some(secret) = &deps.event_hook else {
                tracing::warn!("event hook call, but no event hook secret is configured");
                return error(404, "Not found");
            };
            let headers = &event.headers;
            if let Err(e) = secret.check(headers).await {
                tracing::warn!(reason = e.code(), detail = %e, "event hook call not authenticated");
                return error(401, "Unauthorized");
            }
            match event.method {
                Method::GET => verify(headers),
                Method::POST => batch(deps, &event).await,
                _ => {
                    let mut r = error(405, "Method not allowed");
                    r.headers
                        .insert(http::header::ALLOW, HeaderValue::from_static("GET, POST"));
                    r
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The one-time verification: the challenge header echoed back.
    fn verify(headers: &HeaderMap) -> ApiGatewayProxyResponse {
        let challenge = headers
            .get(VERIFICATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 512);
        match challenge {
            Some(c) => {
                tracing::info!("event hook verified");
                value_response(200, &verification_answer(c))
            }
            None => {
                tracing::warn!("event hook GET without a verification challenge");
                error(400, "Bad request")
            }
        }
    }

    async fn batch(deps: &IngressDeps, event: &Incoming<'_>) -> ApiGatewayProxyResponse {
        let body = match read_body_up_to(event, MAX_EVENT_BODY_BYTES) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(detail = %e, "event hook body unreadable");
                return error(400, "Bad request");
            }
        };
        let batch = match read_batch(&body, deps.clock.now()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(detail = %e, "event hook body is not an event batch");
                return error(400, "Bad request");
            }
        };
        match deps.delivery.sign_ins(&batch).await {
            Ok(report) => {
                tracing::info!(
                    converted = report.converted,
                    no_send = report.no_send,
                    expired = report.expired,
                    already_resolved = report.already_resolved,
                    skipped = report.skipped,
                    "event hook batch recorded"
                );
                value_response(200, &serde_json::to_value(&report).unwrap_or_default())
            }
            Err(e) => {
                // Okta delivers a failed batch once more.
                tracing::error!(error = %e, "event hook batch not recorded; Okta retries it");
                error(503, "Service unavailable")
            }
        }
    }
}

fn read_body<'a>(event: &'a Incoming<'_>) -> Result<Cow<'a, [u8]>, InvalidHook> {
    read_body_up_to(event, MAX_BODY_BYTES)
}

/// The body's bytes: borrowed from the event unless it was base64.
fn read_body_up_to<'a>(
    event: &'a Incoming<'_>,
    limit: usize,
) -> Result<Cow<'a, [u8]>, InvalidHook> {
    let raw = event.body.as_deref().unwrap_or_default();
    let too_large = InvalidHook::TooLarge { limit };
    let bytes = if event.is_base64_encoded {
        // Checked before decoding so a huge body is never decoded.
        if raw.len() > limit.div_ceil(3) * 4 + 4 {
            return Err(too_large);
        }
        Cow::Owned(
            STANDARD
                .decode(raw.trim())
                .map_err(|_| InvalidHook::BadEncoding)?,
        )
    } else {
        Cow::Borrowed(raw.as_bytes())
    };
    if bytes.len() > limit {
        return Err(too_large);
    }
    Ok(bytes)
}

fn value_response(status: i64, body: &serde_json::Value) -> ApiGatewayProxyResponse {
    let mut resp = json_response(status, &HookResponse::error("", vec![]));
    resp.body = Some(Body::Text(body.to_string()));
    resp
}

fn json_response(status: i64, body: &HookResponse) -> ApiGatewayProxyResponse {
    let mut resp = ApiGatewayProxyResponse::default();
    resp.status_code = status;
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Each answer belongs to one user's login; nothing may cache it.
    resp.headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let text = serde_json::to_string(body).unwrap_or_else(|_| {
        r#"{"error":{"errorSummary":"Could not deliver the code"}}"#.to_owned()
    });
    resp.body = Some(Body::Text(text));
    resp
}

/// The API Gateway REST proxy event for a plain HTTP request, shaped as API
/// Gateway builds it. Local mode uses it so the handler sees exactly what
/// it sees in Lambda.
pub fn proxy_event_from_http(
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    source_ip: Option<&str>,
) -> ApiGatewayProxyRequest {
    let mut event = ApiGatewayProxyRequest::default();
    event.http_method = method.clone();
    event.path = Some(path.to_owned());
    event.resource = Some(path.to_owned());
    event.headers = headers.clone();
    event.multi_value_headers = headers.clone();
    match std::str::from_utf8(body) {
        Ok(text) => {
            event.body = (!body.is_empty()).then(|| text.to_owned());
            event.is_base64_encoded = false;
        }
        Err(_) => {
            event.body = Some(STANDARD.encode(body));
            event.is_base64_encoded = true;
        }
    }
    let ctx = &mut event.request_context;
    ctx.request_id = Some(random_hex(16));
    ctx.http_method = method;
    ctx.path = Some(path.to_owned());
    ctx.resource_path = Some(path.to_owned());
    ctx.stage = Some("local".to_owned());
    ctx.identity.source_ip = source_ip.map(str::to_owned);
    event
}

/// The parts of a proxy response, for serving it over plain HTTP.
pub fn http_parts(resp: &ApiGatewayProxyResponse) -> (u16, HeaderMap, Vec<u8>) {
    let status = u16::try_from(resp.status_code).unwrap_or(500);
    let body = match &resp.body {
        Some(Body::Text(t)) => t.clone().into_bytes(),
        Some(Body::Binary(b)) => b.clone(),
        _ => Vec::new(),
    };
    (status, resp.headers.clone(), body)
}
