//! The dispatcher's retry timing against the in-memory FIFO queue: each
//! failed job comes back after the visibility the dispatcher sets (2, 4, 8,
//! 16, 16 s for attempts 1 to 5, each within ±20 %), never past the code's
//! expiry, and not after the queue's own (much longer) visibility timeout.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::flow::*;
use telehook::clock::Clock;
use telehook::domain::channel::Channel;
use telehook::flows::dispatch::{RETRY_JITTER, poll_once};
use telehook::queue::{FifoSettings, InMemoryFifo, JobQueue};
use telehook::testkit::ManualClock;
use tokio::time::Instant;

/// A harness whose queue has no delivery delay, a 180 s visibility timeout
/// (six times the dispatcher's, as deployed) and room for many receives.
fn harness_for_retries() -> (Harness, Arc<InMemoryFifo>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let queue = Arc::new(InMemoryFifo::new(
        "jobs",
        clock.clone(),
        FifoSettings {
            delay: Duration::ZERO,
            visibility: Duration::from_secs(180),
            max_receive_count: Some(10),
            dedup_window: Duration::from_secs(300),
        },
        None,
    ));
    let h = harness_on(clock, false, None, Some(queue.clone()));
    (h, queue)
}

fn advance_ms(h: &Harness, ms: i64) {
    h.clock.advance(chrono::Duration::milliseconds(ms));
}

async fn visible(queue: &InMemoryFifo) -> u64 {
    queue.depth().await.unwrap().visible
}

#[tokio::test(start_paused = true)]
async fn failed_jobs_come_back_after_2_4_8_16_16_seconds() {
    let (h, queue) = harness_for_retries();
    h.messenger.script((0..5).map(|_| throttled()));
    let req = request(&h, "retry-timing", "+14155550701", Channel::Sms);
    h.pipeline.handle_hook(req, Instant::now()).await;
    for (attempt, secs) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 16)] {
        let report = poll_once(queue.as_ref(), &h.pipeline, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            (report.received, report.failed),
            (1, 1),
            "attempt {attempt}"
        );
        let ms = secs * 1000;
        let early = (ms as f64 * (1.0 - RETRY_JITTER)) as i64 - 1;
        let late = (ms as f64 * (1.0 + RETRY_JITTER)) as i64 + 1;
        advance_ms(&h, early);
        assert_eq!(visible(&queue).await, 0, "attempt {attempt}: too early");
        advance_ms(&h, late - early);
        assert_eq!(
            visible(&queue).await,
            1,
            "attempt {attempt}: back by {late} ms"
        );
    }
    // The sixth try goes through.
    let report = poll_once(queue.as_ref(), &h.pipeline, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.deleted, 1);
    assert_eq!(h.messenger.accepted().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_never_waits_past_the_codes_expiry() {
    let (h, queue) = harness_for_retries();
    h.messenger.script([throttled()]);
    let mut req = request(&h, "retry-expiry", "+14155550702", Channel::Sms);
    // 1.5 s of life left: less than the shortest first delay (1.6 s).
    req.otp_expires = h.clock.now() + chrono::Duration::milliseconds(1500);
    h.pipeline.handle_hook(req, Instant::now()).await;
    poll_once(queue.as_ref(), &h.pipeline, Duration::ZERO)
        .await
        .unwrap();
    advance_ms(&h, 1499);
    assert_eq!(visible(&queue).await, 0);
    advance_ms(&h, 1);
    assert_eq!(
        visible(&queue).await,
        1,
        "back at the expiry, to be dropped"
    );
    let report = poll_once(queue.as_ref(), &h.pipeline, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.deleted, 1, "expired and acknowledged");
    assert!(h.messenger.accepted().is_empty());
}

#[tokio::test(start_paused = true)]
async fn later_jobs_of_a_failed_group_wait_with_it() {
    let (h, queue) = harness_for_retries();
    h.messenger.script([throttled()]);
    for i in 0..3 {
        // One destination, so one message group.
        let req = request(
            &h,
            &format!("retry-group-{i}"),
            "+14155550703",
            Channel::Sms,
        );
        h.pipeline.handle_hook(req, Instant::now()).await;
    }
    let report = poll_once(queue.as_ref(), &h.pipeline, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((report.received, report.failed), (3, 3));
    advance_ms(&h, 1599);
    assert_eq!(visible(&queue).await, 0);
    advance_ms(&h, 801);
    assert_eq!(visible(&queue).await, 3, "the whole group is back together");
    poll_once(queue.as_ref(), &h.pipeline, Duration::ZERO)
        .await
        .unwrap();
    let sent: Vec<String> = h
        .messenger
        .accepted()
        .iter()
        .map(|m| m.event_id.to_string())
        .collect();
    assert_eq!(sent, ["retry-group-0", "retry-group-1", "retry-group-2"]);
}
