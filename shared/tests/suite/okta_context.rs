//! What Okta tells us beyond the code, through the flows: the correlation
//! id on the ledger record, in the answer and through the dispatcher; the
//! per-IP limit; guard refusals answered as blocked; Okta's own SMS text
//! through the queue; and the compatibility metrics.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::support::flow::*;
use telehook::domain::channel::Channel;
use telehook::domain::{DeliveryOutcome, OktaText, RequestType, SignInContext};
use telehook::flows::guard::{GuardSettings, RateLimit, RefusalAnswer};
use telehook::ledger::Status;
use telehook::telemetry::metrics::Metrics;
use telehook::testkit::MemorySink;
use tokio::time::Instant;

fn with_context(
    h: &Harness,
    event_id: &str,
    phone: &str,
    correlation: &str,
    ip: &str,
) -> telehook::domain::DeliveryRequest {
    let mut r = request(h, event_id, phone, Channel::Sms);
    r.context = SignInContext {
        correlation_id: Some(correlation.to_owned()),
        client_ip: Some(ip.parse().unwrap()),
        ..Default::default()
    };
    r
}

#[tokio::test(start_paused = true)]
async fn the_correlation_id_reaches_the_ledger_the_answer_and_the_dispatcher() {
    let h = harness(true);
    let r = with_context(
        &h,
        "ctx-fast",
        "+14155550101",
        "reqFastPath01",
        "203.0.113.9",
    );
    match h.pipeline.handle_hook(r, Instant::now()).await {
        DeliveryOutcome::Successful { metadata, .. } => {
            assert_eq!(
                metadata.as_deref(),
                Some("channel=sms; attempt=1; okta_request=reqFastPath01")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.record("ctx-fast").await.correlation_id.as_deref(),
        Some("reqFastPath01")
    );

    // Through the queue: the dispatcher's claim keeps the id.
    let h = harness(false);
    let r = with_context(
        &h,
        "ctx-queued",
        "+14155550102",
        "reqQueued01",
        "203.0.113.9",
    );
    let out = h.pipeline.handle_hook(r, Instant::now()).await;
    assert_eq!(
        out,
        DeliveryOutcome::Pending {
            metadata: Some("channel=sms; queued; okta_request=reqQueued01".into())
        }
    );
    h.drain().await;
    let rec = h.record("ctx-queued").await;
    assert_eq!(
        (rec.status, rec.correlation_id.as_deref()),
        (Status::Sent, Some("reqQueued01"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_per_ip_limit_is_off_by_default_and_counts_when_set() {
    let mut h = harness(true);
    h.pipeline.settings.guard = GuardSettings::open();
    for i in 0..5 {
        let r = with_context(
            &h,
            &format!("ip-off-{i}"),
            &format!("+1415555020{i}"),
            "r",
            "198.51.100.4",
        );
        let out = h.pipeline.handle_hook(r, Instant::now()).await;
        assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    }
    h.pipeline.settings.guard.per_ip = Some(RateLimit {
        max: 2,
        window: std::time::Duration::from_secs(600),
    });
    let mut answers = Vec::new();
    for i in 0..3 {
        // Different numbers and users, one address.
        let mut r = with_context(
            &h,
            &format!("ip-on-{i}"),
            &format!("+1415555030{i}"),
            "r",
            "198.51.100.4",
        );
        r.user_id = Some(format!("00uip{i}").into());
        answers.push(h.pipeline.handle_hook(r, Instant::now()).await);
    }
    assert!(matches!(answers[1], DeliveryOutcome::Successful { .. }));
    match &answers[2] {
        DeliveryOutcome::Failed { cause, .. } => {
            assert_eq!(cause.reason, "RATE_LIMITED");
            assert_eq!(cause.location, "data.context.request.ipAddress");
        }
        other => panic!("{other:?}"),
    }
    // Another address is not affected.
    let r = with_context(&h, "ip-other", "+14155550399", "r", "198.51.100.5");
    assert!(matches!(
        h.pipeline.handle_hook(r, Instant::now()).await,
        DeliveryOutcome::Successful { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn block_mode_answers_pending_records_blocked_and_repeats_itself() {
    let sink = Arc::new(MemorySink::default());
    let mut h = harness(true);
    h.pipeline.settings.metrics = Metrics::new(sink.clone());
    h.pipeline.settings.guard = GuardSettings {
        on_refusal: RefusalAnswer::Block,
        ..GuardSettings::default()
    };
    // A premium-rate number: refused by the number-type check.
    let r = with_context(&h, "blk-1", "+19002001234", "reqBlocked01", "203.0.113.9");
    let first = h.pipeline.handle_hook(r.clone(), Instant::now()).await;
    let expected = DeliveryOutcome::Pending {
        metadata: Some(
            "channel=sms; blocked by the toll-fraud guard; not sent; okta_request=reqBlocked01"
                .into(),
        ),
    };
    assert_eq!(first, expected);
    let rec = h.record("blk-1").await;
    assert_eq!(rec.status, Status::Blocked);
    assert_eq!(
        rec.failure.as_deref(),
        Some("guard:NUMBER_TYPE_NOT_ALLOWED")
    );
    assert_eq!(h.pipeline.handle_hook(r, Instant::now()).await, expected);
    assert!(h.messenger.accepted().is_empty(), "nothing sent");
    assert!(h.queue.is_empty(), "nothing queued");
    let blocked = sink
        .lines()
        .iter()
        .filter(|l| l.contains("\"Blocked\":1"))
        .count();
    assert_eq!(blocked, 2);
}

#[tokio::test(start_paused = true)]
async fn okta_text_goes_through_the_queue_and_voice_keeps_our_template() {
    let h = harness(false);
    let mut r = request(&h, "okta-text", "+14155550501", Channel::Sms);
    r.context.okta_text = OktaText::new(&format!("Acme: your code is {OTP}"), &r.otp);
    h.pipeline.handle_hook(r, Instant::now()).await;
    h.drain().await;
    let mut r = request(&h, "okta-text-voice", "+14155550502", Channel::Voice);
    r.context.okta_text = OktaText::new(&format!("Acme: your code is {OTP}"), &r.otp);
    h.pipeline.handle_hook(r, Instant::now()).await;
    h.drain().await;
    let sent = h.messenger.accepted();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].rendered.body, format!("Acme: your code is {OTP}"));
    assert!(
        sent[1].rendered.body.starts_with("<speak>"),
        "voice: our SSML"
    );
}

#[tokio::test(start_paused = true)]
async fn compatibility_notes_are_counted() {
    let sink = Arc::new(MemorySink::default());
    let mut h = harness(true);
    h.pipeline.settings.metrics = Metrics::new(sink.clone());
    let mut r = request(&h, "notes-1", "+14155550601", Channel::Sms);
    r.request_type = RequestType::Unknown;
    r.context.notes.phone_ambiguous = true;
    r.context.notes.expiry_assumed = true;
    h.pipeline.handle_hook(r, Instant::now()).await;
    let mut r = request(&h, "notes-2", "+14155550602", Channel::Sms);
    r.request_type = RequestType::parse("com.okta.user.telephony.future-flow").unwrap();
    h.pipeline.handle_hook(r, Instant::now()).await;
    let mut r = request(&h, "notes-3", "+14155550603", Channel::Sms);
    r.request_type = RequestType::Unknown;
    r.context.notes.request_type_unreadable = true;
    h.pipeline.handle_hook(r, Instant::now()).await;
    let notes: Vec<String> = sink
        .lines()
        .iter()
        .filter(|l| l.contains("HookReadNotes"))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["note"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        notes,
        [
            "AMBIGUOUS_NUMBER",
            "ASSUMED_EXPIRY",
            "REQUEST_TYPE_MISSING",
            "REQUEST_TYPE_NEW",
            "REQUEST_TYPE_UNREADABLE"
        ]
    );
}
