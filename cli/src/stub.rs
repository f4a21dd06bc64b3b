//! `telehook sms-stub`: a stand-alone stand-in for AWS End User Messaging SMS
//! and voice v2 (`pinpoint-sms-voice-v2`), which local AWS emulators lack.
//!
//! It speaks the service's JSON protocol (`POST /`, `application/x-amz-json-1.0`,
//! the operation in `X-Amz-Target`), so the real SDK client and the real
//! adapter talk to it as to AWS. `SendTextMessage` and `SendVoiceMessage`
//! check the fields the service requires and answer with a `MessageId`, or
//! with one of the service's errors when a fault is scheduled;
//! `PutMessageFeedback` checks its two fields and records the feedback; any
//! other operation is answered as AWS answers an unknown one. Each accepted message
//! is appended to an outbox file in the same format as local mode's, so it is
//! the stand-in for the handset; the console shows a masked line.
//!
//! Faults are scheduled from the command line (`--faults throttle,internal`)
//! or at run time: `POST /_stub/faults` with `["throttle", ...]` queues them
//! for the next sends, in order, and `DELETE /_stub/faults` drops those not
//! used yet (a provider outage, then its end). `GET /_stub/requests` lists
//! every request received (operation, destination, context; feedback with
//! its message id and status), without message bodies.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use telehook::crypto::random_hex;
use telehook::messenger::outbox::OutboxLine;

use crate::local::Error;

#[derive(clap::Args, Debug)]
pub struct StubArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the chosen URL is printed).
    #[arg(long, default_value_t = 4567)]
    pub port: u16,
    /// Where accepted messages go, one JSON line each.
    #[arg(long, default_value = ".telehook/sms-stub-outbox.jsonl")]
    pub outbox: PathBuf,
    /// Faults for the first sends, in order: throttle, internal,
    /// validation, opted-out (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = Fault::parse)]
    pub faults: Vec<Fault>,
}

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
}

impl Fault {
    pub fn parse(s: &str) -> Result<Fault, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "throttle" => Ok(Fault::Throttle),
            "internal" => Ok(Fault::Internal),
            "validation" => Ok(Fault::Validation),
            "opted-out" => Ok(Fault::OptedOut),
            other => Err(format!(
                "unknown fault {other:?}: expected throttle, internal, validation or opted-out"
            )),
        }
    }

    fn response(self) -> Response {
        match self {
            Fault::Throttle => aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded (stub)",
                json!({}),
            ),
            Fault::Internal => aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "Internal failure (stub)",
                json!({}),
            ),
            Fault::Validation => aws_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Invalid parameter (stub)",
                json!({"Reason": "INVALID_PARAMETER", "Fields": []}),
            ),
            Fault::OptedOut => aws_error(
                StatusCode::BAD_REQUEST,
                "ConflictException",
                "The destination opted out (stub)",
                json!({"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                       "ResourceType": "opt-out-list", "ResourceId": "Default"}),
            ),
        }
    }
}

struct Stub {
    outbox: Mutex<std::fs::File>,
    faults: Mutex<VecDeque<Fault>>,
    received: Mutex<Vec<Value>>,
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
fn channel_of(target: &str) -> Option<&'static str> {
    match target {
        "PinpointSMSVoiceV2.SendTextMessage" => Some("sms"),
        "PinpointSMSVoiceV2.SendVoiceMessage" => Some("voice"),
        _ => None,
    }
}

async fn api(State(stub): State<Arc<Stub>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target == "PinpointSMSVoiceV2.PutMessageFeedback" {
        return feedback(&stub, &body);
    }
    let Some(channel) = channel_of(target) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("the stub does not implement {target:?}"),
            json!({}),
        );
    };
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "the body is not a JSON object",
            json!({}),
        );
    };
    let text = |k: &str| req.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let to = text("DestinationPhoneNumber");
    let missing: Vec<&str> = [
        ("DestinationPhoneNumber", to.is_some_and(is_e164)),
        ("OriginationIdentity", text("OriginationIdentity").is_some()),
        ("MessageBody", text("MessageBody").is_some()),
    ]
    .into_iter()
    .filter_map(|(name, ok)| (!ok).then_some(name))
    .collect();
    let context = req.get("Context").cloned().unwrap_or(Value::Null);
    lock(&stub.received).push(json!({
        "operation": target.trim_start_matches("PinpointSMSVoiceV2."),
        "destination": to.map(mask),
        "originationIdentity": text("OriginationIdentity"),
        "configurationSetName": text("ConfigurationSetName"),
        "context": context,
    }));
    if !missing.is_empty() {
        return validation(&missing);
    }
    if let Some(fault) = lock(&stub.faults).pop_front() {
        notice(&format!(
            "{channel} to {} answered {fault:?}",
            mask(to.unwrap_or_default())
        ));
        return fault.response();
    }
    let message_id = format!("stub-{}", random_hex(16));
    let line = OutboxLine {
        event_id: context
            .get("eventId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        channel: channel.to_owned(),
        to: to.unwrap_or_default().to_owned(),
        body: text("MessageBody").unwrap_or_default().to_owned(),
        voice_id: text("VoiceId").map(str::to_owned),
        message_id: message_id.clone(),
        sent_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    if let Err(e) = append(&stub.outbox, &line) {
        // The message is lost if we cannot keep it: say so as the service
        // would say it failed, so the sender retries.
        return aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            &format!("the stub could not write its outbox: {e}"),
            json!({}),
        );
    }
    notice(&format!(
        "{channel} to {} accepted ({message_id}, event {})",
        mask(&line.to),
        line.event_id
    ));
    aws_response(StatusCode::OK, &json!({"MessageId": message_id}), None)
}

/// `PutMessageFeedback`: a message id and `RECEIVED` or `FAILED`, as the
/// service requires; recorded in the request list.
fn feedback(stub: &Stub, body: &[u8]) -> Response {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = req["MessageId"].as_str().filter(|s| !s.is_empty());
    let status = req["MessageFeedbackStatus"]
        .as_str()
        .filter(|s| matches!(*s, "RECEIVED" | "FAILED"));
    lock(&stub.received).push(json!({
        "operation": "PutMessageFeedback",
        "messageId": id,
        "messageFeedbackStatus": status,
    }));
    let (Some(id), Some(status)) = (id, status) else {
        return validation(&["MessageId", "MessageFeedbackStatus"]);
    };
    notice(&format!("feedback {status} for {id}"));
    aws_response(
        StatusCode::OK,
        &json!({"MessageId": id, "MessageFeedbackStatus": status}),
        None,
    )
}

/// One console line per send; a closed console must not fail a send.
fn notice(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "sms-stub: {text}");
}

fn append(outbox: &Mutex<std::fs::File>, line: &OutboxLine) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut file = lock(outbox);
    file.write_all(text.as_bytes())?;
    file.flush()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `+1******0100`: the console never shows a whole number.
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
    let names: Vec<String> = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "expected a JSON list such as [\"throttle\", \"internal\"]\n",
            )
                .into_response();
        }
    };
    let faults: Result<Vec<Fault>, String> = names.iter().map(|n| Fault::parse(n)).collect();
    match faults {
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

async fn requests(State(stub): State<Arc<Stub>>) -> Response {
    axum::Json(Value::Array(lock(&stub.received).clone())).into_response()
}

/// Runs the stub until Ctrl-C.
pub async fn sms_stub(args: StubArgs) -> Result<(), Error> {
    if let Some(dir) = args.outbox.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let outbox = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.outbox)
        .map_err(|e| format!("{}: {e}", args.outbox.display()))?;
    let stub = Arc::new(Stub {
        outbox: Mutex::new(outbox),
        faults: Mutex::new(args.faults.into_iter().collect()),
        received: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr: SocketAddr = listener.local_addr()?;
    let router = Router::new()
        .route("/", post(api))
        .route("/_stub/faults", post(schedule).delete(clear))
        .route("/_stub/requests", get(requests))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(stub);
    outln!("sms-stub listening on http://{addr}");
    outln!(
        "export AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2=http://{addr}  # outbox {}",
        args.outbox.display()
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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
