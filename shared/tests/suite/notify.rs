//! The Notify adapter over the wire, against the End User Messaging
//! stand-in: the request it sends, the template it picks, what it refuses
//! before a call, and a route failure of the own route sent by Notify
//! through the real pipeline.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::{DeliveryOutcome, Route};
use telehook::ledger::{Claims, InMemoryLedger};
use telehook::messenger::eum::EndUserMessaging;
use telehook::messenger::notify::{NOT_SERVED, Notify};
use telehook::messenger::routes::Routes;
use telehook::messenger::settings::{EumSettings, NotifySettings, OriginationIdentities};
use telehook::messenger::{Messenger, OutboundMessage};
use telehook::queue::InMemoryFifo;
use tokio::time::Instant;

use crate::support::sms_voice_stub::{Fault, SmsVoiceStub};

async fn notify(stub: &SmsVoiceStub) -> Notify {
    Notify::new(
        stub.client().await,
        NotifySettings {
            configuration_id: "nc-0123456789abcdef0".into(),
            configuration_set: Some("otp-events".into()),
        },
    )
}

async fn message(channel: Channel, to: &str, locale: &str) -> OutboundMessage {
    let mut m = crate::eum::message(channel, to, 287).await;
    m.locale = Locale::parse(locale).unwrap();
    m
}

fn sends(stub: &SmsVoiceStub) -> Vec<(String, serde_json::Value)> {
    stub.requests()
        .into_iter()
        .filter(|(op, _)| op.starts_with("SendNotify"))
        .collect()
}

#[tokio::test]
async fn the_code_goes_as_the_template_variable_in_the_persons_language() {
    let stub = SmsVoiceStub::start().await;
    let n = notify(&stub).await;
    let receipt = n
        .send(&message(Channel::Sms, "+14155552671", "es-MX").await)
        .await
        .unwrap();
    assert!(receipt.message_id.starts_with("stub-"));
    let sent = sends(&stub);
    assert_eq!(sent[0].0, "SendNotifyTextMessage");
    assert_eq!(
        sent[0].1,
        json!({
            "NotifyConfigurationId": "nc-0123456789abcdef0",
            "DestinationPhoneNumber": "+14155552671",
            "TemplateId": "stub-code-es",
            "TemplateVariables": {"code": "482913"},
            "TimeToLive": 287,
            "Context": {"eventId": "evt-eum-1", "requestType": "mfa-verification"},
            "ConfigurationSetName": "otp-events",
            "MessageFeedbackEnabled": true
        })
    );
    // Brazilian Portuguese has its own template; Japanese falls back to
    // English; French has no voice template, so a French call is English.
    for (locale, channel, to, template) in [
        ("pt-BR", Channel::Sms, "+5511987654321", "stub-code-pt-br"),
        ("ja-JP", Channel::Sms, "+14155552671", "stub-code-en"),
        ("fr-FR", Channel::Voice, "+33612345678", "stub-code-en"),
    ] {
        n.send(&message(channel, to, locale).await).await.unwrap();
        let last = sends(&stub).pop().unwrap();
        assert_eq!(last.1["TemplateId"], template, "{locale} {channel:?}");
    }
    assert_eq!(sends(&stub).last().unwrap().0, "SendNotifyVoiceMessage");
    // The catalog and the configuration were read once for all four.
    let reads = |op: &str| stub.requests().iter().filter(|(o, _)| o == op).count();
    assert_eq!(reads("DescribeNotifyTemplates"), 1);
    assert_eq!(reads("DescribeNotifyConfigurations"), 1);
}

#[tokio::test]
async fn a_country_the_configuration_does_not_serve_fails_before_any_call() {
    let stub = SmsVoiceStub::start().await;
    let n = notify(&stub).await;
    let err = n
        .send(&message(Channel::Sms, "+6281234567890", "id").await)
        .await
        .unwrap_err();
    assert_eq!(err.code(), NOT_SERVED);
    assert!(err.is_route_failure());
    assert!(sends(&stub).is_empty());
}

#[tokio::test]
async fn the_services_route_errors_are_route_failures_and_a_throttle_is_not() {
    let stub = SmsVoiceStub::start().await;
    let n = notify(&stub).await;
    let m = message(Channel::Sms, "+14155552671", "en").await;
    stub.script_for(Route::Notify, [Fault::CountryNotEnabled]);
    let err = n.send(&m).await.unwrap_err();
    assert!(err.is_route_failure(), "{err:?}");
    stub.script_for(Route::Notify, [Fault::Throttle; 3]);
    let err = n.send(&m).await.unwrap_err();
    assert!(err.is_retryable() && !err.is_route_failure(), "{err:?}");
    stub.script_for(Route::Notify, [Fault::OptedOut]);
    let err = n.send(&m).await.unwrap_err();
    assert!(!err.is_route_failure(), "{err:?}");
}

/// The own route's registration is not complete: the hook's code goes out
/// by Notify, once, and the ledger says so.
#[tokio::test]
async fn an_unregistered_own_route_falls_over_to_notify_through_the_pipeline() {
    let stub = SmsVoiceStub::start().await;
    let own = Arc::new(EndUserMessaging::new(
        stub.client().await,
        EumSettings {
            origination: OriginationIdentities::parse(r#"{"default":"+12065550100"}"#).unwrap(),
            configuration_set: Some("otp-events".into()),
            ..EumSettings::default()
        },
    ));
    // The harness's clock for the pipeline too: the request's code lives
    // five minutes from that clock's now.
    let mut h = crate::support::flow::harness(true);
    let ledger = Arc::new(InMemoryLedger::new());
    let clock: Arc<dyn telehook::clock::Clock> = h.clock.clone();
    let queue = Arc::new(InMemoryFifo::new(
        "jobs.fifo",
        clock.clone(),
        Default::default(),
        None,
    ));
    h.pipeline = telehook::flows::Pipeline::builder(ledger.clone(), queue, own.clone())
        .routes(Routes::one(Route::Own, own).then(Route::Notify, Arc::new(notify(&stub).await)))
        .clock(clock)
        .build();
    stub.script_for(Route::Own, [Fault::NotRegistered]);
    let req = crate::support::flow::request(&h, "evt-notify-fo", "+14155552671", Channel::Sms);
    let out = h.pipeline.handle_hook(req, Instant::now()).await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    let ops: Vec<String> = stub
        .requests()
        .into_iter()
        .map(|(op, _)| op)
        .filter(|op| op.starts_with("Send"))
        .collect();
    assert_eq!(ops, ["SendTextMessage", "SendNotifyTextMessage"]);
    let record = ledger
        .get(&telehook::domain::EventId::parse("evt-notify-fo").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.route, Some(Route::Notify));
}

/// A failover and a Notify send, over the wire at TRACE: the logs (the
/// SDK's included) hold no code and no whole number.
#[tokio::test]
async fn route_logs_hold_no_number_and_no_code() {
    use crate::support::LogCapture;
    use crate::support::flow::OTP;
    use telehook::testkit::redaction::contains_standalone;
    let Some(capture) =
        LogCapture::isolated(crate::test_path!("route_logs_hold_no_number_and_no_code"))
    else {
        return;
    };
    let stub = SmsVoiceStub::start().await;
    let own = Arc::new(EndUserMessaging::new(
        stub.client().await,
        EumSettings {
            origination: OriginationIdentities::parse(r#"{"default":"+12065550100"}"#).unwrap(),
            ..EumSettings::default()
        },
    ));
    let mut h = crate::support::flow::harness(true);
    h.pipeline.routes =
        Routes::one(Route::Own, own).then(Route::Notify, Arc::new(notify(&stub).await));
    stub.script_for(Route::Own, [Fault::NotRegistered]);
    for id in ["evt-logs-1", "evt-logs-2"] {
        let req = crate::support::flow::request(&h, id, "+14155552671", Channel::Sms);
        let out = h.pipeline.handle_hook(req, Instant::now()).await;
        assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
        h.clock.advance(chrono::Duration::seconds(20));
    }
    let text = capture.text();
    assert!(text.contains("trying the other route"), "{text}");
    assert!(text.contains("a resend"), "{text}");
    for secret in ["4155552671", OTP] {
        assert!(
            !contains_standalone(&text, secret),
            "the logs hold {secret}"
        );
    }
}

/// Warming the routes at start-up reads Notify's catalog then, so the
/// first hook's send makes one call.
#[tokio::test]
async fn warming_reads_the_catalog_before_the_first_send() {
    let stub = SmsVoiceStub::start().await;
    let routes = Routes::one(Route::Notify, Arc::new(notify(&stub).await));
    routes.warm(std::time::Duration::from_secs(5)).await;
    let ops = |stub: &SmsVoiceStub| -> Vec<String> {
        stub.requests().into_iter().map(|(op, _)| op).collect()
    };
    assert_eq!(
        ops(&stub),
        ["DescribeNotifyTemplates", "DescribeNotifyConfigurations"]
    );
    routes
        .first()
        .send(&message(Channel::Sms, "+14155552671", "en").await)
        .await
        .unwrap();
    assert_eq!(ops(&stub).len(), 3, "{:?}", ops(&stub));
}
