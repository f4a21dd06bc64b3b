//! The DLQ replayer over the in-memory adapters: expired, already sent,
//! live and unreadable jobs, a dry run, and a send failure.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::flow::*;
use telehook::clock::Clock;
use telehook::domain::EventId;
use telehook::domain::channel::Channel;
use telehook::domain::job::Job;
use telehook::flows::replay::{ReplayReport, ReplayRequest, replay_dlq};
use telehook::ledger::Status;
use telehook::queue::{JobQueue, OutgoingMessage};

/// Fills the DLQ with one job of each kind; returns the live job's event id.
async fn fill(h: &Harness) {
    let mut expired = request(h, "evt-r-expired", "+14155552671", Channel::Sms);
    expired.otp_expires = h.clock.now() - chrono::Duration::seconds(5);
    let sent = request(h, "evt-r-sent", "+14165550163", Channel::Sms);
    h.ledger
        .mark_sent(&telehook::ledger::SendConfirmed {
            event_id: &sent.event_id,
            message_id: "m-earlier",
            route: telehook::domain::Route::Own,
            now_ms: h.clock.now_ms(),
        })
        .await
        .unwrap();
    let live = request(h, "evt-r-live", "+12125550178", Channel::Voice);
    for (i, req) in [expired, sent, live].iter().enumerate() {
        h.dlq
            .send(OutgoingMessage {
                body: Job::from_request(
                    req,
                    telehook::crypto::keyed(&h.pipeline.settings.hash_key),
                )
                .encode(),
                group_id: format!("g{i}"),
                dedup_id: req.event_id.to_string(),
            })
            .await
            .unwrap();
    }
    h.dlq
        .send(OutgoingMessage {
            body: "not a job".into(),
            group_id: "g9".into(),
            dedup_id: "junk".into(),
        })
        .await
        .unwrap();
}

fn replay(max: u32, dry_run: bool) -> ReplayRequest {
    ReplayRequest {
        max_messages: max,
        dry_run,
    }
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_counts_and_changes_nothing() {
    let h = harness(true);
    fill(&h).await;
    let report = replay_dlq(&h.pipeline, h.dlq.as_ref(), &replay(50, true))
        .await
        .unwrap();
    assert_eq!(
        report,
        ReplayReport {
            moved: 1,
            expired: 1,
            already_sent: 1,
            failed: 1,
            remaining: 4,
            dry_run: true
        }
    );
    assert_eq!(h.dlq.len(), 4);
    assert_eq!(
        h.dlq.receive(10, Duration::ZERO).await.unwrap().len(),
        4,
        "all visible again"
    );
    assert!(h.queue.is_empty());
    assert!(
        h.ledger
            .get(&EventId::parse("evt-r-expired").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_replay_settles_moves_and_keeps_what_it_must() {
    let mut h = harness(true);
    // Not the default, so a hard-coded retention would show.
    h.pipeline.settings.retention = Duration::from_secs(7 * 86_400);
    fill(&h).await;
    let report = replay_dlq(&h.pipeline, h.dlq.as_ref(), &replay(50, false))
        .await
        .unwrap();
    assert_eq!(
        report,
        ReplayReport {
            moved: 1,
            expired: 1,
            already_sent: 1,
            failed: 1,
            remaining: 1,
            dry_run: false
        }
    );
    let expired = h.record("evt-r-expired").await;
    assert_eq!(expired.status, Status::Expired);
    // Kept for the configured retention past the OTP's expiry.
    let otp_expires = h.clock.now().timestamp() - 5;
    assert_eq!(expired.expires_at, otp_expires + 7 * 86_400);
    // The unreadable one stays, untouched.
    let left = h.dlq.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(
        left.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["not a job"]
    );
    // The live job is back in the main queue with a new dedup id, and the
    // dispatcher sends it once.
    assert_eq!(h.queue.len(), 1);
    h.drain().await;
    let sent: Vec<String> = h
        .messenger
        .accepted()
        .iter()
        .map(|m| m.event_id.to_string())
        .collect();
    assert_eq!(sent, ["evt-r-live"]);
    assert_eq!(h.record("evt-r-live").await.status, Status::Sent);
}

#[tokio::test(start_paused = true)]
async fn max_messages_bounds_one_call() {
    let h = harness(true);
    fill(&h).await;
    let report = replay_dlq(&h.pipeline, h.dlq.as_ref(), &replay(2, false))
        .await
        .unwrap();
    assert_eq!(
        report.moved + report.expired + report.already_sent + report.failed,
        2
    );
    assert_eq!(report.remaining, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_send_keeps_the_job_in_the_dlq() {
    let h = harness_with(true, None, Some(Arc::new(DownQueue)));
    fill(&h).await;
    let report = replay_dlq(&h.pipeline, h.dlq.as_ref(), &replay(50, false))
        .await
        .unwrap();
    assert_eq!((report.moved, report.failed, report.remaining), (0, 2, 2));
    let left: Vec<String> = h
        .dlq
        .receive(10, Duration::ZERO)
        .await
        .unwrap()
        .iter()
        .map(|m| m.body.clone())
        .collect();
    assert!(
        left.iter().any(|b| b.contains("evt-r-live")),
        "the live job is still there"
    );
}
