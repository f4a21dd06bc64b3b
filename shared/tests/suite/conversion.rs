//! Conversion over the in-memory adapters: sign-ins from Okta's event hook
//! mark sends CONVERTED with RECEIVED feedback, expiry checks mark the rest
//! UNUSED with FAILED feedback, in every order they can come; and the
//! learning guard blocks pumped prefixes while ordinary traffic goes out.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use telehook::clock::Clock;
use telehook::domain::channel::Channel;
use telehook::domain::{Conversion, DeliveryOutcome, Feedback};
use telehook::flows::conversion::{CheckOutcome, check_due, record_sign_ins, run_due_checks};
use telehook::flows::guard::{AllowedCountries, GuardSettings, Learning};
use telehook::okta::events::{EventBatch, SignInEvent};
use telehook::testkit::ManualClock;
use telehook::timers::ExpiryCheck;
use tokio::time::Instant;

use crate::support::LogCapture;
use crate::support::flow::*;

fn learning_guard() -> GuardSettings {
    GuardSettings {
        learning: Learning::on(),
        ..GuardSettings::default()
    }
}

fn conversions_harness() -> Harness {
    harness_guarded(
        Arc::new(ManualClock::new(Utc::now())),
        true,
        None,
        None,
        learning_guard(),
    )
}

fn sign_in(user: &str, channel: Channel, at: DateTime<Utc>) -> EventBatch {
    EventBatch {
        sign_ins: vec![SignInEvent {
            user_id: user.to_owned(),
            channel,
            at,
        }],
        skipped: vec![],
    }
}

async fn send(h: &Harness, event: &str, phone: &str, channel: Channel) -> String {
    let out = h
        .pipeline
        .handle_hook(request(h, event, phone, channel), Instant::now())
        .await;
    match out {
        DeliveryOutcome::Successful { transaction_id, .. } => transaction_id,
        other => panic!("not sent: {other:?}"),
    }
}

async fn conversion(h: &Harness, event: &str) -> Option<Conversion> {
    h.record(event)
        .await
        .sent
        .and_then(|s| s.conversion)
        .map(|c| c.0)
}

fn later(h: &Harness, secs: i64) -> DateTime<Utc> {
    h.clock.now() + chrono::Duration::seconds(secs)
}

#[tokio::test(start_paused = true)]
async fn a_sign_in_converts_the_send_once_and_gives_received_feedback() {
    let h = conversions_harness();
    let message = send(&h, "evt-c1", "+14155552671", Channel::Sms).await;
    let sent = h.record("evt-c1").await.sent.unwrap();
    assert_eq!(sent.prefix, "1415555");
    assert!(
        !sent.user_channel.as_deref().unwrap().contains("00u1"),
        "a keyed hash, never the user id"
    );
    let batch = sign_in("00u1", Channel::Sms, later(&h, 20));
    let report = record_sign_ins(&h.pipeline, &batch).await.unwrap();
    assert_eq!(report.converted, 1);
    assert_eq!(conversion(&h, "evt-c1").await, Some(Conversion::Converted));
    assert_eq!(
        h.messenger.feedback_given(),
        vec![(message.clone(), Feedback::Received)]
    );
    // Okta delivers a batch at least once.
    let again = record_sign_ins(&h.pipeline, &batch).await.unwrap();
    assert_eq!((again.converted, again.already_resolved), (0, 1));
    // The expiry check finds it decided: no FAILED feedback.
    h.clock.advance(chrono::Duration::minutes(6));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    assert_eq!(conversion(&h, "evt-c1").await, Some(Conversion::Converted));
    assert_eq!(h.messenger.feedback_given().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unused_code_is_marked_at_expiry_with_failed_feedback() {
    let h = conversions_harness();
    let message = send(&h, "evt-u1", "+14155552671", Channel::Voice).await;
    // Not due yet: nothing arrives.
    h.clock.advance(chrono::Duration::minutes(4));
    assert_eq!(run_due_checks(&h.pipeline).await, 0);
    assert_eq!(conversion(&h, "evt-u1").await, None);
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    assert_eq!(conversion(&h, "evt-u1").await, Some(Conversion::Unused));
    assert_eq!(
        h.messenger.feedback_given(),
        vec![(message, Feedback::Failed)]
    );
    // A sign-in after the expiry does not convert it, and a second check
    // changes nothing.
    let late = record_sign_ins(&h.pipeline, &sign_in("00u1", Channel::Voice, h.clock.now()))
        .await
        .unwrap();
    assert_eq!(late.expired, 1);
    let body = ExpiryCheck::new("evt-u1", h.clock.now_ms() - 1).encode();
    assert_eq!(
        check_due(&h.pipeline, &body).await,
        Ok(CheckOutcome::Decided)
    );
    assert_eq!(h.messenger.feedback_given().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn sign_ins_match_the_latest_send_of_that_user_and_channel_only() {
    let h = conversions_harness();
    let first = send(&h, "evt-m1", "+14155552671", Channel::Sms).await;
    h.clock.advance(chrono::Duration::seconds(40));
    let second = send(&h, "evt-m2", "+14155552671", Channel::Sms).await;
    // Another channel, another user: no send to match.
    let voice = record_sign_ins(&h.pipeline, &sign_in("00u1", Channel::Voice, later(&h, 5)))
        .await
        .unwrap();
    let stranger = record_sign_ins(&h.pipeline, &sign_in("00u9", Channel::Sms, later(&h, 5)))
        .await
        .unwrap();
    assert_eq!((voice.no_send, stranger.no_send), (1, 1));
    let r = record_sign_ins(&h.pipeline, &sign_in("00u1", Channel::Sms, later(&h, 10)))
        .await
        .unwrap();
    assert_eq!(r.converted, 1);
    assert_eq!(conversion(&h, "evt-m2").await, Some(Conversion::Converted));
    h.clock.advance(chrono::Duration::minutes(6));
    run_due_checks(&h.pipeline).await;
    assert_eq!(conversion(&h, "evt-m1").await, Some(Conversion::Unused));
    assert_eq!(
        h.messenger.feedback_given(),
        vec![(second, Feedback::Received), (first, Feedback::Failed)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_that_arrives_early_waits_for_the_rest_of_a_long_code_life() {
    let h = conversions_harness();
    let mut req = request(&h, "evt-long", "+14155552671", Channel::Sms);
    req.otp_expires = later(&h, 3600);
    let out = h.pipeline.handle_hook(req, Instant::now()).await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }));
    // SQS delays 15 minutes at most: the check arrives and goes back.
    h.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    assert_eq!(conversion(&h, "evt-long").await, None);
    for _ in 0..3 {
        h.clock.advance(chrono::Duration::minutes(15));
        run_due_checks(&h.pipeline).await;
    }
    assert_eq!(conversion(&h, "evt-long").await, Some(Conversion::Unused));
    assert_eq!(
        check_due(&h.pipeline, "not a check").await,
        Ok(CheckOutcome::Malformed)
    );
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_path_notes_its_sends_too() {
    let h = harness_guarded(
        Arc::new(ManualClock::new(Utc::now())),
        false,
        None,
        None,
        learning_guard(),
    );
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-d1", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Pending { .. }));
    h.drain().await;
    let r = record_sign_ins(&h.pipeline, &sign_in("00u1", Channel::Sms, later(&h, 5)))
        .await
        .unwrap();
    assert_eq!(r.converted, 1);
}

#[tokio::test(start_paused = true)]
async fn with_conversions_off_nothing_is_noted_scheduled_or_fed_back() {
    let h = harness(true);
    send(&h, "evt-off", "+14155552671", Channel::Sms).await;
    assert_eq!(h.record("evt-off").await.sent, None);
    h.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(run_due_checks(&h.pipeline).await, 0);
    let r = record_sign_ins(&h.pipeline, &sign_in("00u1", Channel::Sms, h.clock.now()))
        .await
        .unwrap();
    assert_eq!(r.converted, 0);
    assert!(h.messenger.feedback_given().is_empty());
}

/// A number of a carrier block: `prefix` then `rest`, zero-padded.
fn number(prefix: &str, rest: usize, digits: usize) -> String {
    format!("+{prefix}{rest:0digits$}")
}

/// Valid US area codes, for ordinary traffic spread over many prefixes.
const AREAS: [&str; 10] = [
    "201", "212", "305", "312", "415", "503", "617", "702", "808", "919",
];

#[tokio::test(start_paused = true)]
async fn a_pumping_run_is_blocked_per_prefix_while_ordinary_sends_all_go_out() {
    let Some(capture) = LogCapture::isolated(crate::test_path!(
        "a_pumping_run_is_blocked_per_prefix_while_ordinary_sends_all_go_out"
    )) else {
        return;
    };
    // Indonesian mobile ranges stand for a premium country the org allows.
    let guard = GuardSettings {
        countries: AllowedCountries::Only(["US", "CA", "ID"].map(str::to_owned).into()),
        ..learning_guard()
    };
    let learning = guard.learning.clone();
    // The start of a guard window, so the run stays in one.
    let window_ms = i64::try_from(learning.window.as_millis()).unwrap();
    let start = (Utc::now().timestamp_millis() / window_ms + 1) * window_ms;
    let clock = Arc::new(ManualClock::new(
        DateTime::from_timestamp_millis(start).unwrap(),
    ));
    let h = harness_guarded(clock, true, None, None, guard);
    let pumped_prefixes = ["6281234", "6281345", "6281567", "6285212"];
    let (mut pumped_sent, mut ordinary_sent) = (vec![0u32; 4], 0u32);
    let mut ordinary = 0usize;
    for i in 0..7_000usize {
        // Two pumped hooks in seven, spread over the prefixes.
        let is_pumped = i % 7 < 2;
        let event = format!("run-{i:05}");
        if is_pumped {
            let p = i % 4;
            let phone = number(pumped_prefixes[p], i, 6);
            let mut req = request(&h, &event, &phone, Channel::Sms);
            req.user_id = Some(format!("00upump{i}"));
            let out = h.pipeline.handle_hook(req, Instant::now()).await;
            if matches!(out, DeliveryOutcome::Successful { .. }) {
                pumped_sent[p] += 1;
            }
        } else {
            ordinary += 1;
            let area = AREAS[ordinary % AREAS.len()];
            let phone = format!(
                "+1{area}{:03}{:04}",
                200 + ordinary % 700,
                ordinary % 10_000
            );
            let user = format!("00uok{ordinary}");
            let mut req = request(&h, &event, &phone, Channel::Sms);
            req.user_id = Some(user.clone());
            let out = h.pipeline.handle_hook(req, Instant::now()).await;
            assert!(
                matches!(out, DeliveryOutcome::Successful { .. }),
                "ordinary send {ordinary} refused: {out:?}"
            );
            ordinary_sent += 1;
            // Nine in ten people type the code in, a few seconds later.
            if !ordinary.is_multiple_of(10) {
                let batch = sign_in(&user, Channel::Sms, later(&h, 8));
                assert_eq!(
                    record_sign_ins(&h.pipeline, &batch)
                        .await
                        .unwrap()
                        .converted,
                    1
                );
            }
        }
        h.clock.advance(chrono::Duration::milliseconds(400));
    }
    assert_eq!(ordinary_sent, 5_000);
    for (p, sent) in pumped_sent.iter().enumerate() {
        assert!(
            *sent <= learning.min_sends,
            "prefix {} sent {sent} codes, more than {}",
            pumped_prefixes[p],
            learning.min_sends
        );
        assert!(*sent > 0);
    }
    let blocks = h.ledger.list_blocks().await.unwrap();
    let blocked: Vec<&str> = blocks
        .iter()
        .filter(|b| b.scope == "pfx")
        .map(|b| b.key.as_str())
        .collect();
    assert_eq!(blocked, pumped_prefixes.to_vec(), "{blocks:?}");
    assert!(
        blocks.iter().all(|b| b.key != "US"),
        "the ordinary country is never blocked"
    );
    let text = capture.text();
    assert!(
        text.contains("the learning guard blocked a range"),
        "{text}"
    );
    for secret in [OTP, "00uok17", "00upump3", "628123400"] {
        assert!(!text.contains(secret), "the logs hold {secret}");
    }
}
