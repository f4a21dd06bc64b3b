//! The End User Messaging stand-in: one stub of the SMS and voice v2 API
//! (`pinpoint-sms-voice-v2`), which local AWS emulators lack. `telehook
//! sms-stub` serves it on its own, for emulator runs, the Lambda harness and
//! the docs; the test suites start it in-process on a free port.
//!
//! It speaks the service's JSON protocol (`POST /`,
//! `application/x-amz-json-1.0`, the operation in `X-Amz-Target`), so the
//! real SDK client and the real adapter talk to it as to AWS.
//! `SendTextMessage` and `SendVoiceMessage` check the fields the service
//! requires and answer with a `MessageId`, or with one of the service's
//! errors when a fault is scheduled; `PutMessageFeedback` checks its two
//! fields and records the feedback; any other operation is answered as AWS
//! answers an unknown one. Each accepted message is appended to the outbox
//! file, if there is one, in local mode's format, so it is the stand-in for
//! the handset; the console, when on, shows a masked line.
//!
//! Faults are scheduled at the start, from Rust ([`SmsStub::schedule`]), or
//! over HTTP: `POST /_stub/faults` with `["throttle", ...]` queues them for
//! the next sends, in order, and `DELETE /_stub/faults` drops those not used
//! yet (a provider outage, then its end). `GET /_stub/requests` lists every
//! request received (operation, masked destination, context; feedback with
//! its message id and status), without message bodies. In-process,
//! [`SmsStub::requests`] gives the whole requests, for tests of the fields
//! the adapter sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::crypto::random_hex;
use crate::domain::Route;
use crate::messenger::outbox::{OutboxFile, OutboxLine};

mod notify;

/// One scheduled answer other than success, as End User Messaging gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ThrottlingException` (400): retryable.
    Throttle,
    /// `InternalServerException` (500): retryable.
    Internal,
    /// `ValidationException` (400): permanent.
    Validation,
    /// `ConflictException` with reason `DESTINATION_PHONE_NUMBER_OPTED_OUT`.
    OptedOut,
    /// `ConflictException` with reason `REGISTRATION_NOT_COMPLETE`: the
    /// route cannot deliver (a route failure).
    NotRegistered,
    /// `ValidationException` with reason `COUNTRY_NOT_ENABLED`: the route
    /// does not serve the country (a route failure).
    CountryNotEnabled,
}

/// A fault for the next send of one route (`notify:throttle`) or of any
/// route (`throttle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledFault {
    pub route: Option<Route>,
    pub fault: Fault,
}

impl ScheduledFault {
    pub fn parse(s: &str) -> Result<ScheduledFault, String> {
        match s.split_once(':') {
            Some((route, fault)) => {
                Ok(ScheduledFault {
                    route: Some(Route::parse(route).ok_or_else(|| {
                        format!("unknown route {route:?}: expected own or notify")
                    })?),
                    fault: Fault::parse(fault)?,
                })
            }
            None => Ok(ScheduledFault {
                route: None,
                fault: Fault::parse(s)?,
            }),
        }
    }
}

impl From<Fault> for ScheduledFault {
    fn from(fault: Fault) -> Self {
        ScheduledFault { route: None, fault }
    }
}

impl Fault {
    pub fn parse(s: &str) -> Result<Fault, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "throttle" => Ok(Fault::Throttle),
            "internal" => Ok(Fault::Internal),
            "validation" => Ok(Fault::Validation),
            "opted-out" => Ok(Fault::OptedOut),
            "not-registered" => Ok(Fault::NotRegistered),
            "country-not-enabled" => Ok(Fault::CountryNotEnabled),
            other => Err(format!(
                "unknown fault {other:?}: expected throttle, internal, validation, opted-out, \
                 not-registered or country-not-enabled"
            )),
        }
    }

    fn response(self) -> Response {
        let (status, kind, message, extra) = match self {
            Fault::Throttle => (
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded (stub)",
                json!({}),
            ),
            Fault::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "Internal failure (stub)",
                json!({}),
            ),
            Fault::Validation => (
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Invalid parameter (stub)",
                json!({"Reason": "INVALID_PARAMETER", "Fields": []}),
            ),
            Fault::OptedOut => (
                StatusCode::BAD_REQUEST,
                "ConflictException",
                "The destination opted out (stub)",
                json!({"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                       "ResourceType": "opt-out-list", "ResourceId": "Default"}),
            ),
            Fault::NotRegistered => (
                StatusCode::BAD_REQUEST,
                "ConflictException",
                "The origination identity's registration is not complete (stub)",
                json!({"Reason": "REGISTRATION_NOT_COMPLETE",
                       "ResourceType": "phone-number", "ResourceId": "stub"}),
            ),
            Fault::CountryNotEnabled => (
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "The destination country is not enabled (stub)",
                json!({"Reason": "COUNTRY_NOT_ENABLED", "Fields": []}),
            ),
        };
        aws_error(status, kind, message, extra)
    }
}

/// How the stub starts.
#[derive(Debug, Default)]
pub struct StubOptions<'a> {
    /// Where accepted messages go, one JSON line each; none keeps no file.
    pub outbox: Option<&'a Path>,
    /// Faults for the first sends, in order.
    pub faults: Vec<ScheduledFault>,
    /// One masked line per request on stdout.
    pub console: bool,
}

#[derive(Debug)]
struct Stub {
    outbox: Option<OutboxFile>,
    faults: Mutex<VecDeque<ScheduledFault>>,
    /// What `GET /_stub/requests` lists: no bodies, destinations masked.
    summaries: Mutex<Vec<Value>>,
    /// The requests as sent, for in-process tests only.
    requests: Mutex<Vec<(String, Value)>>,
    console: bool,
}

/// A running stub; it stops when this is dropped.
#[derive(Debug)]
pub struct SmsStub {
    addr: SocketAddr,
    stub: Arc<Stub>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SmsStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SmsStub {
    /// Serves on `addr` (port 0 picks a free one; [`SmsStub::url`] says
    /// which) until dropped.
    pub async fn start(addr: SocketAddr, options: StubOptions<'_>) -> std::io::Result<SmsStub> {
        let stub = Arc::new(Stub {
            outbox: options.outbox.map(OutboxFile::open).transpose()?,
            faults: Mutex::new(options.faults.into_iter().collect()),
            summaries: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            console: options.console,
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/", post(api))
            .route("/_stub/faults", post(schedule).delete(clear))
            .route("/_stub/requests", get(summaries))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(stub.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(SmsStub { addr, stub, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next sends, after those already queued.
    pub fn schedule(&self, faults: impl IntoIterator<Item = ScheduledFault>) {
        lock(&self.stub.faults).extend(faults);
    }

    /// Every request so far: the operation (`SendTextMessage`, …) and the
    /// JSON body as the client sent it.
    pub fn requests(&self) -> Vec<(String, Value)> {
        lock(&self.stub.requests).clone()
    }
}

/// An error as the service's JSON protocol sends it: the type in `__type`
/// and `x-amzn-ErrorType`, a request id header.
fn aws_error(status: StatusCode, kind: &str, message: &str, extra: Value) -> Response {
    let mut body = json!({
        "__type": format!("com.amazonaws.pinpointsmsvoicev2#{kind}"),
        "Message": message,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    aws_response(status, &body, Some(kind))
}

fn aws_response(status: StatusCode, body: &Value, error_type: Option<&str>) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(id) = header::HeaderValue::from_str(&random_hex(16)) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(kind) = error_type.and_then(|k| header::HeaderValue::from_str(k).ok()) {
        headers.insert("x-amzn-errortype", kind);
    }
    resp
}

fn validation(fields: &[&str]) -> Response {
    aws_error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        &format!("missing or invalid: {}", fields.join(", ")),
        json!({"Reason": "MISSING_PARAMETER",
               "Fields": fields.iter().map(|f| json!({"Name": f, "Message": "required"})).collect::<Vec<_>>()}),
    )
}

/// The operations the product calls, and the channel each one is.
fn channel_of(operation: &str) -> Option<&'static str> {
    match operation {
        "SendTextMessage" => Some("sms"),
        "SendVoiceMessage" => Some("voice"),
        _ => None,
    }
}

async fn api(State(stub): State<Arc<Stub>>, headers: HeaderMap, body: Bytes) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("PinpointSMSVoiceV2.")
        .to_owned();
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "the body is not a JSON object",
            json!({}),
        );
    };
    lock(&stub.requests).push((operation.clone(), Value::Object(req.clone())));
    if operation == "PutMessageFeedback" {
        return feedback(&stub, &req);
    }
    match (channel_of(&operation), operation.as_str()) {
        (Some(channel), _) => send(&stub, &operation, channel, &req),
        (None, "SendNotifyTextMessage") => notify::send(&stub, &operation, "sms", &req),
        (None, "SendNotifyVoiceMessage") => notify::send(&stub, &operation, "voice", &req),
        (None, "DescribeNotifyTemplates") => notify::templates(),
        (None, "DescribeNotifyConfigurations") => notify::configurations(&req),
        (None, _) => aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("the stub does not implement {operation:?}"),
            json!({}),
        ),
    }
}

/// `SendTextMessage` or `SendVoiceMessage`: the required fields checked,
/// the next scheduled fault or an accepted message kept in the outbox.
fn send(stub: &Stub, operation: &str, channel: &str, req: &Map<String, Value>) -> Response {
    let text = |k: &str| text(req, k);
    let (to, context) = stub.summarize(operation, req, &["OriginationIdentity"]);
    let missing: Vec<&str> = [
        ("DestinationPhoneNumber", to.is_some_and(is_e164)),
        ("OriginationIdentity", text("OriginationIdentity").is_some()),
        ("MessageBody", text("MessageBody").is_some()),
    ]
    .into_iter()
    .filter_map(|(name, ok)| (!ok).then_some(name))
    .collect();
    if !missing.is_empty() {
        return validation(&missing);
    }
    let to = to.unwrap_or_default();
    if let Some(fault) = stub.next_fault(Route::Own) {
        stub.notice(&format!("{channel} to {} answered {fault:?}", mask(to)));
        return fault.response();
    }
    let body = text("MessageBody").unwrap_or_default();
    stub.accept(&context, channel, to, body, text("VoiceId"), Route::Own)
}

/// A request's non-blank text field.
fn text<'r>(req: &'r Map<String, Value>, k: &str) -> Option<&'r str> {
    req.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `SomeField` as the summaries spell it: `someField`.
fn camel(field: &str) -> String {
    let mut c = field.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

impl Stub {
    /// Lists a send without its body, the number masked, with `fields`
    /// and the configuration set; returns its destination and context.
    fn summarize<'r>(
        &self,
        operation: &str,
        req: &'r Map<String, Value>,
        fields: &[&str],
    ) -> (Option<&'r str>, Value) {
        let to = text(req, "DestinationPhoneNumber");
        let context = req.get("Context").cloned().unwrap_or(Value::Null);
        let mut summary = json!({
            "operation": operation,
            "destination": to.map(mask),
            "configurationSetName": text(req, "ConfigurationSetName"),
            "context": context,
        });
        for f in fields {
            summary[camel(f)] = json!(text(req, f));
        }
        lock(&self.summaries).push(summary);
        (to, context)
    }

    /// The first scheduled fault for `route`, taken off the queue.
    fn next_fault(&self, route: Route) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let at = faults
            .iter()
            .position(|f| f.route.is_none_or(|r| r == route))?;
        faults.remove(at).map(|f| f.fault)
    }

    /// An accepted message: kept in the outbox, answered with its id.
    fn accept(
        &self,
        context: &Value,
        channel: &str,
        to: &str,
        body: &str,
        voice_id: Option<&str>,
        route: Route,
    ) -> Response {
        let line = OutboxLine {
            event_id: context["eventId"].as_str().unwrap_or_default().to_owned(),
            channel: channel.to_owned(),
            to: to.to_owned(),
            body: body.to_owned(),
            voice_id: voice_id.map(str::to_owned),
            message_id: format!("stub-{}", random_hex(16)),
            sent_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            route: Some(route.as_str().to_owned()),
        };
        if let Some(Err(e)) = self.outbox.as_ref().map(|o| o.append(&line)) {
            // The message is lost if we cannot keep it: say so as the service
            // would say it failed, so the sender retries.
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                &format!("the stub could not write its outbox: {e}"),
                json!({}),
            );
        }
        self.notice(&format!(
            "{channel} to {} by {route} accepted ({}, event {})",
            mask(to),
            line.message_id,
            line.event_id
        ));
        aws_response(StatusCode::OK, &json!({"MessageId": line.message_id}), None)
    }
}

/// `PutMessageFeedback`: a message id and `RECEIVED` or `FAILED`, as the
/// service requires; recorded in the request list.
fn feedback(stub: &Stub, req: &Map<String, Value>) -> Response {
    let id = req
        .get("MessageId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let status = req
        .get("MessageFeedbackStatus")
        .and_then(Value::as_str)
        .filter(|s| matches!(*s, "RECEIVED" | "FAILED"));
    lock(&stub.summaries).push(json!({
        "operation": "PutMessageFeedback",
        "messageId": id,
        "messageFeedbackStatus": status,
    }));
    let (Some(id), Some(status)) = (id, status) else {
        return validation(&["MessageId", "MessageFeedbackStatus"]);
    };
    stub.notice(&format!("feedback {status} for {id}"));
    aws_response(
        StatusCode::OK,
        &json!({"MessageId": id, "MessageFeedbackStatus": status}),
        None,
    )
}

impl Stub {
    /// One console line per request; a closed console must not fail a send.
    fn notice(&self, text: &str) {
        use std::io::Write;
        if self.console {
            let _ = writeln!(std::io::stdout().lock(), "sms-stub: {text}");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `+1******0100`: the console never shows a whole number, even one the
/// phone library would not read.
fn mask(number: &str) -> String {
    let n = number.chars().count();
    let keep_head = 2.min(n);
    let keep_tail = if n > 8 { 4 } else { 2.min(n - keep_head) };
    number
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_head || i >= n - keep_tail {
                c
            } else {
                '*'
            }
        })
        .collect()
}

async fn schedule(State(stub): State<Arc<Stub>>, body: Bytes) -> Response {
    let Ok(names) = serde_json::from_slice::<Vec<String>>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected a JSON list such as [\"throttle\", \"internal\"]\n",
        )
            .into_response();
    };
    match names
        .iter()
        .map(|n| ScheduledFault::parse(n))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(faults) => {
            let mut queue = lock(&stub.faults);
            queue.extend(faults);
            axum::Json(json!({"scheduled": queue.len()})).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn clear(State(stub): State<Arc<Stub>>) -> Response {
    let dropped = std::mem::take(&mut *lock(&stub.faults)).len();
    axum::Json(json!({"dropped": dropped})).into_response()
}

async fn summaries(State(stub): State<Arc<Stub>>) -> Response {
    axum::Json(Value::Array(lock(&stub.summaries).clone())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_country_and_the_last_digits() {
        assert_eq!(mask("+15555550100"), "+1******0100");
        assert_eq!(mask("+4420"), "+4*20");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn faults_parse_by_name() {
        assert_eq!(Fault::parse(" Throttle "), Ok(Fault::Throttle));
        assert_eq!(Fault::parse("opted-out"), Ok(Fault::OptedOut));
        assert!(Fault::parse("slow").is_err());
    }
}
