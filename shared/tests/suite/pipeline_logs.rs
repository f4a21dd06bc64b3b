//! Log capture over the delivery flows: no OTP and no full phone number may
//! reach the logs. Alone in its binary: tracing's callsite cache does not
//! mix well with a thread-local subscriber while other tests log.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::LogCapture;
use crate::support::flow::*;
use telehook::domain::channel::Channel;
use telehook::domain::job::Job;
use telehook::queue::{JobQueue, OutgoingMessage};
use telehook::testkit::redaction::contains_standalone;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn logs_of_the_flows_hold_no_otp_and_no_full_number() {
    let Some(capture) = LogCapture::isolated(crate::test_path!(
        "logs_of_the_flows_hold_no_otp_and_no_full_number"
    )) else {
        return;
    };
    let h = harness(true);
    h.messenger.script([throttled(), opted_out()]);
    for (i, ch) in [Channel::Sms, Channel::Voice, Channel::Sms]
        .into_iter()
        .enumerate()
    {
        h.pipeline
            .handle_hook(
                request(&h, &format!("evt-log-{i}"), "+14155552671", ch),
                Instant::now(),
            )
            .await;
    }
    h.queue
        .send(OutgoingMessage {
            body: Job::from_request(
                &request(&h, "evt-log-q", "+14165550163", Channel::Voice),
                telehook::crypto::keyed(&h.pipeline.settings.hash_key),
            )
            .encode(),
            group_id: "g".into(),
            dedup_id: "evt-log-q".into(),
        })
        .await
        .unwrap();
    h.queue
        .send(OutgoingMessage {
            body: format!("{{\"poison\": \"{OTP} +14155552671\"}}"),
            group_id: "p".into(),
            dedup_id: "poison".into(),
        })
        .await
        .unwrap();
    h.drain().await;
    let _ = Duration::ZERO;
    let logs = capture.text();
    assert!(
        logs.contains("sent on the fast path") && logs.contains("sent by the dispatcher"),
        "capture works"
    );
    assert!(logs.contains("provider refused the message") && logs.contains("unreadable job"));
    assert!(logs.contains("+1******2671"), "numbers appear masked");
    for secret in [OTP, "4155552671", "4165550163"] {
        assert!(!contains_standalone(&logs, secret), "{secret} leaked");
    }
}

/// An event id that comes back with another number or channel is answered
/// from the send it names (its message id, its channel), nothing more is
/// sent, and the log says so with the new number masked.
#[tokio::test(start_paused = true)]
async fn a_reused_event_id_with_another_payload_is_answered_from_its_send_and_logged() {
    let Some(capture) = LogCapture::isolated(crate::test_path!(
        "a_reused_event_id_with_another_payload_is_answered_from_its_send_and_logged"
    )) else {
        return;
    };
    let h = harness(true);
    let first = h
        .pipeline
        .handle_hook(
            request(&h, "evt-reused", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    let transaction = |o: &telehook::domain::DeliveryOutcome| match o {
        telehook::domain::DeliveryOutcome::Successful {
            transaction_id,
            metadata,
        } => (transaction_id.clone(), metadata.clone().unwrap_or_default()),
        other => panic!("not sent: {other:?}"),
    };
    let (sent_id, _) = transaction(&first);
    for (phone, channel) in [
        ("+14165550163", Channel::Sms),
        ("+14155552671", Channel::Voice),
    ] {
        let again = h
            .pipeline
            .handle_hook(request(&h, "evt-reused", phone, channel), Instant::now())
            .await;
        let (id, metadata) = transaction(&again);
        assert_eq!(id, sent_id);
        assert!(metadata.starts_with("channel=sms; duplicate"), "{metadata}");
    }
    // The same payload again is an ordinary duplicate: nothing logged.
    h.pipeline
        .handle_hook(
            request(&h, "evt-reused", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert_eq!(h.messenger.attempts(), 1, "a reused event id was sent");
    let logs = capture.text();
    assert_eq!(
        logs.matches("event id reused with a different payload")
            .count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("+1******0163"), "the new number, masked");
    for secret in [OTP, "4155552671", "4165550163"] {
        assert!(!contains_standalone(&logs, secret), "{secret} leaked");
    }
}
