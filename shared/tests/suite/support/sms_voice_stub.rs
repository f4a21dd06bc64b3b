//! A stub of the End User Messaging SMS and voice v2 API
//! (`pinpoint-sms-voice-v2`), which the AWS emulator lacks. It speaks the
//! service's JSON protocol (`application/x-amz-json-1.0`, operation in
//! `X-Amz-Target`), records every request, and answers from a script:
//! success with a `MessageId`, or one of the service's errors.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Debug, Clone)]
pub enum Outcome {
    Accept(&'static str),
    Throttle,
    Validation,
    Conflict(&'static str),
    Internal,
}

#[derive(Clone, Default)]
struct Script(Arc<Mutex<VecDeque<Outcome>>>);

fn error(status: u16, kind: &str, extra: serde_json::Value) -> ResponseTemplate {
    let mut body = json!({"__type": format!("com.amazonaws.pinpointsmsvoicev2#{kind}"), "Message": format!("{kind} from stub")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .insert_header("x-amzn-requestid", "stub-request")
        .set_body_json(body)
}

impl Respond for Script {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let next = self
            .0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Outcome::Accept("stub-message-id"));
        match next {
            Outcome::Accept(id) => ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_json(json!({"MessageId": id})),
            Outcome::Throttle => error(400, "ThrottlingException", json!({})),
            Outcome::Validation => error(
                400,
                "ValidationException",
                json!({"Reason": "INVALID_PARAMETER", "Fields": []}),
            ),
            Outcome::Conflict(reason) => error(
                400,
                "ConflictException",
                json!({"Reason": reason, "ResourceType": "opt-out-list", "ResourceId": "Default"}),
            ),
            Outcome::Internal => {
                error(500, "InternalServerException", json!({"RequestId": "stub"}))
            }
        }
    }
}

pub struct SmsVoiceStub {
    pub server: MockServer,
    script: Script,
}

impl SmsVoiceStub {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let script = Script::default();
        Mock::given(method("POST"))
            .and(header("content-type", "application/x-amz-json-1.0"))
            .respond_with(script.clone())
            .mount(&server)
            .await;
        SmsVoiceStub { server, script }
    }

    pub fn script(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.script.0.lock().unwrap().extend(outcomes);
    }

    /// Every request so far: (operation from `X-Amz-Target`, JSON body).
    pub async fn requests(&self) -> Vec<(String, serde_json::Value)> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let target = r
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                (target, serde_json::from_slice(&r.body).unwrap_or_default())
            })
            .collect()
    }

    /// A client of the real SDK, with the project's retry and timeout
    /// settings, pointed at the stub.
    pub async fn client(&self) -> aws_sdk_pinpointsmsvoicev2::Client {
        let sdk = super::moto::sdk_config(&self.server.uri()).await;
        aws_sdk_pinpointsmsvoicev2::Client::new(&sdk)
    }
}
