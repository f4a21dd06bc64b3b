//! The End User Messaging adapter over the wire, against the SMS/voice API
//! stub: the exact request fields, the error classification, and the SDK's
//! own retries.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use crate::support::sms_voice_stub::{Fault, SmsVoiceStub};
use serde_json::json;
use telehook::domain::EventId;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::messenger::eum::EndUserMessaging;
use telehook::messenger::settings::{EumSettings, OriginationIdentities};
use telehook::messenger::{Messenger, OutboundMessage, SendError};
use telehook::templates::Templates;

fn settings() -> EumSettings {
    EumSettings {
        origination: OriginationIdentities::parse(
            r#"{"default":"pool-default","US":"+12065550100"}"#,
        )
        .unwrap(),
        configuration_set: Some("otp-events".into()),
        protect_configuration_id: Some("protect-0123".into()),
        max_price: Some("0.10".into()),
        max_price_per_minute: Some("0.05".into()),
        ..EumSettings::default()
    }
}

pub(crate) async fn message(channel: Channel, to: &str, ttl: i64) -> OutboundMessage {
    let templates = Templates::new(None, Locale::parse("en").unwrap(), "Okta");
    let rendered = templates
        .render(
            &Locale::parse("en-US").unwrap(),
            channel,
            &Otp::parse("482913").unwrap(),
            5,
        )
        .await
        .unwrap();
    OutboundMessage {
        event_id: EventId::parse("evt-eum-1").unwrap(),
        request_type: "mfa-verification".into(),
        to: PhoneNumber::parse(to, "US".parse().unwrap()).unwrap(),
        rendered,
        code: Otp::parse("482913").unwrap(),
        locale: Locale::parse("en-US").unwrap(),
        ttl_seconds: ttl,
    }
}

async fn messenger(stub: &SmsVoiceStub) -> EndUserMessaging {
    EndUserMessaging::new(stub.client().await, settings())
}

#[tokio::test]
async fn sms_request_carries_every_field() {
    let stub = SmsVoiceStub::start().await;
    let msg = message(Channel::Sms, "+14155552671", 287).await;
    let receipt = messenger(&stub).await.send(&msg).await.unwrap();
    assert!(
        receipt.message_id.starts_with("stub-"),
        "{}",
        receipt.message_id
    );
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0, "SendTextMessage");
    assert_eq!(
        reqs[0].1,
        json!({
            "DestinationPhoneNumber": "+14155552671",
            "OriginationIdentity": "+12065550100",
            "MessageBody": msg.rendered.body,
            "MessageType": "TRANSACTIONAL",
            "TimeToLive": 287,
            "Context": {"eventId": "evt-eum-1", "requestType": "mfa-verification"},
            "ConfigurationSetName": "otp-events",
            "ProtectConfigurationId": "protect-0123",
            "MessageFeedbackEnabled": true,
            "MaxPrice": "0.10"
        })
    );
}

#[tokio::test]
async fn voice_request_carries_ssml_voice_and_default_identity() {
    let stub = SmsVoiceStub::start().await;
    let msg = message(Channel::Voice, "+14165550163", 120).await;
    let receipt = messenger(&stub).await.send(&msg).await.unwrap();
    assert!(
        receipt.message_id.starts_with("stub-"),
        "{}",
        receipt.message_id
    );
    let reqs = stub.requests();
    assert_eq!(reqs[0].0, "SendVoiceMessage");
    assert_eq!(
        reqs[0].1,
        json!({
            "DestinationPhoneNumber": "+14165550163",
            "OriginationIdentity": "pool-default",
            "MessageBody": msg.rendered.body,
            "MessageBodyTextType": "SSML",
            "VoiceId": "JOANNA",
            "TimeToLive": 120,
            "Context": {"eventId": "evt-eum-1", "requestType": "mfa-verification"},
            "ConfigurationSetName": "otp-events",
            "ProtectConfigurationId": "protect-0123",
            "MessageFeedbackEnabled": true,
            "MaxPricePerMinute": "0.05"
        })
    );
}

#[tokio::test]
async fn time_to_live_is_clamped_to_the_api_bounds() {
    let stub = SmsVoiceStub::start().await;
    let m = messenger(&stub).await;
    m.send(&message(Channel::Sms, "+14155552671", 0).await)
        .await
        .unwrap();
    m.send(&message(Channel::Sms, "+14155552671", 10_000_000).await)
        .await
        .unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs[0].1["TimeToLive"], 5);
    assert_eq!(reqs[1].1["TimeToLive"], 259_200);
}

#[tokio::test]
async fn the_sdk_retries_throttling_before_we_see_it() {
    let stub = SmsVoiceStub::start().await;
    stub.script([Fault::Throttle]);
    let receipt = messenger(&stub)
        .await
        .send(&message(Channel::Sms, "+14155552671", 300).await)
        .await
        .unwrap();
    assert!(
        receipt.message_id.starts_with("stub-"),
        "{}",
        receipt.message_id
    );
    assert_eq!(stub.requests().len(), 2, "one SDK retry");
}

#[tokio::test]
async fn throttling_and_5xx_that_persist_are_retryable() {
    for outcome in [Fault::Throttle, Fault::Internal] {
        let stub = SmsVoiceStub::start().await;
        stub.script([outcome; 3]);
        let err = messenger(&stub)
            .await
            .send(&message(Channel::Voice, "+14155552671", 300).await)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{outcome:?}: {err:?}");
        assert_eq!(stub.requests().len(), 3, "{outcome:?}: three attempts");
    }
}

#[tokio::test]
async fn validation_and_conflict_are_permanent_and_not_retried() {
    let stub = SmsVoiceStub::start().await;
    stub.script([Fault::Validation]);
    let err = messenger(&stub)
        .await
        .send(&message(Channel::Sms, "+14155552671", 300).await)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            code: "ValidationException".into(),
            reason: Some("INVALID_PARAMETER".into())
        }
    );
    assert_eq!(stub.requests().len(), 1);

    let stub = SmsVoiceStub::start().await;
    stub.script([Fault::OptedOut]);
    let err = messenger(&stub)
        .await
        .send(&message(Channel::Sms, "+14155552671", 300).await)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            code: "ConflictException".into(),
            reason: Some("DESTINATION_PHONE_NUMBER_OPTED_OUT".into())
        }
    );
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn no_identity_for_the_country_fails_before_any_call() {
    let stub = SmsVoiceStub::start().await;
    let mut s = settings();
    s.origination = OriginationIdentities::parse(r#"{"CA":"+14165550100"}"#).unwrap();
    let m = EndUserMessaging::new(stub.client().await, s);
    let err = m
        .send(&message(Channel::Sms, "+14155552671", 300).await)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NoOriginationIdentity");
    assert!(!err.is_retryable());
    assert!(stub.requests().is_empty());
}

/// A send that reaches something other than End User Messaging (an emulator
/// without it, a wrong port) fails at once and says so, instead of being
/// retried into a silent PENDING. Each answer stands for a class: an HTML
/// error page, a plain 404, and a typed 501 "not implemented" with a request
/// id (what emulators that know the service's name but not its API send).
#[tokio::test]
async fn an_endpoint_that_is_not_the_service_fails_permanently_and_says_so() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let answers = [
        ResponseTemplate::new(500)
            .insert_header("content-type", "text/html; charset=utf-8")
            .set_body_string("<h1>Internal Server Error</h1>"),
        ResponseTemplate::new(404)
            .insert_header("content-type", "text/plain")
            .set_body_string("not found"),
        ResponseTemplate::new(501)
            .insert_header("content-type", "application/x-amz-json-1.0")
            .insert_header("x-amzn-requestid", "r-1")
            .set_body_json(json!({"__type": "InternalFailure",
                "message": "API for service 'pinpoint-sms-voice-v2' not yet implemented"})),
    ];
    for answer in answers {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(answer.clone())
            .mount(&server)
            .await;
        let sdk = crate::support::moto::sdk_config(&server.uri()).await;
        let m = EndUserMessaging::new(aws_sdk_pinpointsmsvoicev2::Client::new(&sdk), settings());
        for channel in [Channel::Sms, Channel::Voice] {
            let err = m
                .send(&message(channel, "+14155552671", 300).await)
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                telehook::messenger::eum::NOT_THE_SERVICE,
                "{err}"
            );
            assert!(!err.is_retryable());
        }
        // Not retried by us: at most the SDK's own three attempts per send
        // (it retries any 5xx before we see it).
        assert!(server.received_requests().await.unwrap().len() <= 6);
    }
    // The service's own errors are still what they were.
    let stub = SmsVoiceStub::start().await;
    stub.script([Fault::Internal, Fault::Internal, Fault::Internal]);
    let err = messenger(&stub)
        .await
        .send(&message(Channel::Sms, "+14155552671", 300).await)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SendError::Retryable {
            code: "InternalServerException".into()
        }
    );
}

/// The case as a new user meets it: `AWS_ENDPOINT_URL` alone points the SMS
/// client at the AWS emulator, which has no End User Messaging.
#[tokio::test]
async fn the_aws_emulator_is_not_taken_for_the_service() {
    let (_guard, moto) = crate::support::moto::moto().await;
    let sdk = crate::support::moto::sdk_config(&moto.url).await;
    let m = EndUserMessaging::new(aws_sdk_pinpointsmsvoicev2::Client::new(&sdk), settings());
    let err = m
        .send(&message(Channel::Sms, "+14155552671", 300).await)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        telehook::messenger::eum::NOT_THE_SERVICE,
        "{err}"
    );
    assert!(err.to_string().contains("not End User Messaging"), "{err}");
}
