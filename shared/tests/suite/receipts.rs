//! Delivery receipts through the flow, from the SNS events in `events/`:
//! each final verdict recorded on the hook's ledger record, every odd
//! order and odd event acknowledged without loss or loop, the metrics, a
//! ledger that cannot be written failing the invocation (so SNS retries),
//! and logs and records without the number or the code.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::Value;
use telehook::domain::channel::Channel;
use telehook::domain::{DeliveryOutcome, DeliveryVerdict, EventId};
use telehook::flows::receipts::{ReceiptReport, record_sns_receipts};
use telehook::ledger::{InMemoryLedger, LedgerError, ReceiptLog, Status};
use telehook::telemetry::metrics::Metrics;
use telehook::testkit::MemorySink;
use tokio::time::Instant;

use crate::support::LogCapture;
use crate::support::flow::*;
use telehook::testkit::Scripted;
use telehook::testkit::redaction::contains_standalone;

/// The event id every `events/receipts-*.json` names in its context.
const EVENT: &str = "uS5871kJThSsU8qlA1LTcg";

fn event_file(name: &str) -> Value {
    let path = crate::support::events_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The message id every `events/receipts-*.json` names.
const MESSAGE_ID: &str = "0c1b7f2e-8c59-4a43-9a4e-2d1e5example";

/// A hook for `EVENT` sent on the fast path, as the message the receipt
/// files name.
async fn sent(h: &Harness, channel: Channel) {
    h.messenger.script([Scripted::AcceptAs(MESSAGE_ID.into())]);
    let outcome = h
        .pipeline
        .handle_hook(request(h, EVENT, "+14155552671", channel), Instant::now())
        .await;
    assert!(
        matches!(outcome, DeliveryOutcome::Successful { .. }),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_final_receipt_is_recorded_on_the_hooks_record() {
    for (file, channel, verdict, event_type) in [
        (
            "receipts-delivered.json",
            Channel::Sms,
            DeliveryVerdict::Delivered,
            "TEXT_DELIVERED",
        ),
        (
            "receipts-carrier-unreachable.json",
            Channel::Sms,
            DeliveryVerdict::Undelivered,
            "TEXT_CARRIER_UNREACHABLE",
        ),
        (
            "receipts-voice-no-answer.json",
            Channel::Voice,
            DeliveryVerdict::Undelivered,
            "VOICE_NO_ANSWER",
        ),
    ] {
        let sink = Arc::new(MemorySink::default());
        let mut h = harness(true);
        h.pipeline.settings.metrics = Metrics::new(sink.clone());
        sent(&h, channel).await;
        let report = record_sns_receipts(&h.pipeline, &event_file(file))
            .await
            .unwrap();
        assert_eq!(
            report,
            ReceiptReport {
                recorded: 1,
                ..Default::default()
            },
            "{file}"
        );
        let record = h.record(EVENT).await;
        assert_eq!(record.status, Status::Sent, "{file}");
        let delivery = record.delivery.clone().unwrap();
        assert_eq!(delivery.delivery, verdict, "{file}");
        assert_eq!(delivery.event_type, event_type, "{file}");
        assert_eq!(delivery.delivery_ms, Some(4380), "{file}");
        assert!(
            delivery.status.is_some() && delivery.description.is_some(),
            "{file}"
        );
        if channel == Channel::Sms {
            assert_eq!(
                (delivery.mcc.as_deref(), delivery.mnc.as_deref()),
                (Some("310"), Some("260"))
            );
        }
        // The record holds neither the number nor the code.
        let text = format!("{record:?}");
        assert!(
            !text.contains("4155552671") && !text.contains(OTP),
            "{file}: {text}"
        );
        // Metrics: the verdict by channel and country, the reason of an
        // undelivered one, the time to delivery.
        let lines = sink.lines().join("\n");
        assert!(lines.contains("\"Receipts\":1.0"), "{file}: {lines}");
        assert!(
            lines.contains(&format!("\"delivery\":\"{}\"", verdict.as_str())),
            "{file}"
        );
        assert!(lines.contains("\"country\":\"US\""), "{file}");
        assert!(lines.contains("\"TimeToDelivery\":4380.0"), "{file}");
        assert_eq!(
            lines.contains(&format!("\"reason\":\"{event_type}\"")),
            verdict == DeliveryVerdict::Undelivered,
            "{file}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn odd_orders_and_odd_events_are_acknowledged_without_loss() {
    let h = harness(true);
    // Before any hook: the ledger does not know the event; nothing is made.
    let delivered = event_file("receipts-delivered.json");
    let report = record_sns_receipts(&h.pipeline, &delivered).await.unwrap();
    assert_eq!(report.unknown_events, 1);
    assert_eq!(
        h.ledger.get(&EventId::parse(EVENT).unwrap()).await,
        Ok(None)
    );
    // After the send: recorded; the same receipt again (SNS delivers at
    // least once) and a later contradicting one are duplicates.
    sent(&h, Channel::Sms).await;
    assert_eq!(
        record_sns_receipts(&h.pipeline, &delivered)
            .await
            .unwrap()
            .recorded,
        1
    );
    assert_eq!(
        record_sns_receipts(&h.pipeline, &delivered)
            .await
            .unwrap()
            .duplicates,
        1
    );
    let late = event_file("receipts-carrier-unreachable.json");
    assert_eq!(
        record_sns_receipts(&h.pipeline, &late)
            .await
            .unwrap()
            .duplicates,
        1
    );
    assert_eq!(
        h.record(EVENT).await.delivery.unwrap().delivery,
        DeliveryVerdict::Delivered,
        "the first final receipt stands"
    );
    // Interim, another sender's, a body that is not an event, and
    // envelopes that are not SNS's: counted and acknowledged.
    for (file, field) in [
        ("receipts-interim.json", "interim"),
        ("receipts-not-ours.json", "notOurs"),
        ("receipts-malformed.json", "malformed"),
    ] {
        let report = record_sns_receipts(&h.pipeline, &event_file(file))
            .await
            .unwrap();
        assert_eq!(serde_json::to_value(&report).unwrap()[field], 1, "{file}");
    }
    for payload in [
        serde_json::json!({}),
        serde_json::json!({"Records": [{"Sns": {}}]}),
        serde_json::json!([1, 2]),
    ] {
        let report = record_sns_receipts(&h.pipeline, &payload).await.unwrap();
        assert_eq!(report.malformed, 1, "{payload}");
    }
    // A batch of several: each counted.
    let mut batch = event_file("receipts-interim.json");
    let second = event_file("receipts-not-ours.json")["Records"][0].clone();
    batch["Records"].as_array_mut().unwrap().push(second);
    let report = record_sns_receipts(&h.pipeline, &batch).await.unwrap();
    assert_eq!((report.interim, report.not_ours), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_receipt_from_another_topic_is_dropped() {
    let sink = Arc::new(MemorySink::default());
    let mut h = harness(true);
    h.pipeline.settings.metrics = Metrics::new(sink.clone());
    let delivered = event_file("receipts-delivered.json");
    let ours = delivered["Records"][0]["Sns"]["TopicArn"]
        .as_str()
        .unwrap()
        .to_owned();
    h.pipeline.settings.sources.receipts_topic = Some(ours);
    sent(&h, Channel::Sms).await;
    // A well-formed receipt for our message, from a topic that is not
    // ours (or from no topic): it could forge a delivery, so it is dropped.
    for topic in [Some("arn:aws:sns:us-east-1:123456789012:forged"), None] {
        let mut forged = delivered.clone();
        let sns = forged["Records"][0]["Sns"].as_object_mut().unwrap();
        match topic {
            Some(t) => sns.insert("TopicArn".into(), t.into()),
            None => sns.remove("TopicArn"),
        };
        let report = record_sns_receipts(&h.pipeline, &forged).await.unwrap();
        assert_eq!(
            report,
            ReceiptReport {
                other_topics: 1,
                ..Default::default()
            },
            "{topic:?}"
        );
        assert_eq!(h.record(EVENT).await.delivery, None);
    }
    assert!(sink.lines().iter().any(|l| l.contains("OTHER_TOPIC")));
    // From our topic: recorded.
    let report = record_sns_receipts(&h.pipeline, &delivered).await.unwrap();
    assert_eq!(report.recorded, 1);
}

#[tokio::test(start_paused = true)]
async fn a_receipt_before_the_send_is_marked_survives_the_marking() {
    let h = harness(false);
    // The ingress claimed the event and queued it; the dispatcher's send
    // has gone out but is not recorded yet when the receipt arrives.
    let outcome = h
        .pipeline
        .handle_hook(
            request(&h, EVENT, "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(outcome, DeliveryOutcome::Pending { .. }));
    let report = record_sns_receipts(&h.pipeline, &event_file("receipts-delivered.json"))
        .await
        .unwrap();
    assert_eq!(report.recorded, 1);
    h.drain().await;
    let record = h.record(EVENT).await;
    assert_eq!(record.status, Status::Sent);
    assert_eq!(
        record.delivery.unwrap().delivery,
        DeliveryVerdict::Delivered
    );
}

/// A receipt log that cannot be written now: the invocation fails, so SNS
/// retries it; nothing else fails one.
#[derive(Debug)]
struct DownReceipts(Arc<InMemoryLedger>);

#[async_trait::async_trait]
impl ReceiptLog for DownReceipts {
    async fn record_delivery(
        &self,
        _: &telehook::domain::Receipt,
        _: i64,
    ) -> Result<telehook::ledger::DeliveryRecorded, LedgerError> {
        Err(LedgerError::Unavailable("ThrottlingException".into()))
    }
    async fn claim_fallback(&self, e: &EventId, now_ms: i64) -> Result<bool, LedgerError> {
        self.0.claim_fallback(e, now_ms).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_ledger_that_cannot_be_written_fails_the_invocation_for_a_retry() {
    let h = harness_with(
        true,
        Some(|inner, parts| parts.receipts = Arc::new(DownReceipts(inner))),
        None,
    );
    sent(&h, Channel::Sms).await;
    let err = record_sns_receipts(&h.pipeline, &event_file("receipts-delivered.json")).await;
    assert_eq!(
        err,
        Err(LedgerError::Unavailable("ThrottlingException".into()))
    );
    // What cannot be retried into success is still acknowledged.
    let ok = record_sns_receipts(&h.pipeline, &event_file("receipts-interim.json")).await;
    assert_eq!(ok.unwrap().interim, 1);
}

#[tokio::test(start_paused = true)]
async fn receipt_logs_hold_no_number_and_no_code() {
    let Some(capture) =
        LogCapture::isolated(crate::test_path!("receipt_logs_hold_no_number_and_no_code"))
    else {
        return;
    };
    let h = harness(true);
    sent(&h, Channel::Sms).await;
    for file in [
        "receipts-delivered.json",
        "receipts-carrier-unreachable.json",
        "receipts-voice-no-answer.json",
        "receipts-interim.json",
        "receipts-not-ours.json",
        "receipts-malformed.json",
    ] {
        record_sns_receipts(&h.pipeline, &event_file(file))
            .await
            .unwrap();
    }
    let text = capture.text();
    assert!(text.contains("delivery receipt recorded"), "{text}");
    for secret in ["4155552671", "2065550152", OTP] {
        assert!(
            !contains_standalone(&text, secret),
            "the logs hold {secret}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn each_event_goes_to_its_own_consumer() {
    use telehook::flows::receipts::Consumer;
    let h = harness(true);
    sent(&h, Channel::Sms).await;
    let sns = event_file("receipts-delivered.json");
    assert_eq!(Consumer::of(&sns), Consumer::Receipts);
    let answer = Consumer::handle(&h.pipeline, &sns).await.unwrap();
    assert_eq!(answer["recorded"], 1, "{answer}");
    let sqs = serde_json::json!({"Records": [{
        "eventSource": "aws:sqs", "messageId": "m1", "body": "not a check"
    }]});
    assert_eq!(Consumer::of(&sqs), Consumer::Timers);
    let answer = Consumer::handle(&h.pipeline, &sqs).await.unwrap();
    assert!(answer.get("batchItemFailures").is_some(), "{answer}");
    // Neither kind: read as SNS's envelope, counted malformed, acknowledged.
    let odd = serde_json::json!({"hello": "world"});
    assert_eq!(Consumer::of(&odd), Consumer::Receipts);
    let answer = Consumer::handle(&h.pipeline, &odd).await.unwrap();
    assert_eq!(answer["malformed"], 1, "{answer}");
}
