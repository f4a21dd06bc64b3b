//! The event-source poller local mode and `serve --aws` run: it long-polls
//! and backs off when idle (every receive is a billed request against SQS),
//! and still picks up a job as soon as one arrives.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::flow::*;
use async_trait::async_trait;
use telehook::domain::channel::Channel;
use telehook::flows::{PollerSettings, run_poller};
use telehook::queue::{JobQueue, OutgoingMessage, QueueDepth, QueueError, ReceivedMessage};
use tokio::time::Instant;

/// Counts the receives (the requests SQS would bill) of the queue it wraps.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn JobQueue>,
    receives: AtomicUsize,
}

#[async_trait]
impl JobQueue for Counting {
    async fn send(&self, m: OutgoingMessage) -> Result<String, QueueError> {
        self.inner.send(m).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.receives.fetch_add(1, Ordering::SeqCst);
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, r: &str) -> Result<(), QueueError> {
        self.inner.delete(r).await
    }
    async fn set_visibility(&self, r: &str, t: Duration) -> Result<(), QueueError> {
        self.inner.set_visibility(r, t).await
    }
    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        self.inner.depth().await
    }
    fn arn(&self) -> String {
        self.inner.arn()
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_poller_makes_a_few_requests_a_minute_and_still_answers_at_once() {
    let h = harness(false);
    let counting = Arc::new(Counting {
        inner: h.queue.clone(),
        receives: AtomicUsize::new(0),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = {
        let (queue, pipeline) = (counting.clone(), h.pipeline.clone());
        tokio::spawn(async move {
            run_poller(
                queue.as_ref(),
                &pipeline,
                PollerSettings::default(),
                stopped,
            )
            .await;
        })
    };
    // Ten idle minutes.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let idle = counting.receives.load(Ordering::SeqCst);
    // A 20 s long poll and a pause of up to 5 s: at most 30 in ten minutes
    // (the busy loop this replaces made about 200,000).
    assert!(
        (20..=30).contains(&idle),
        "{idle} receives in ten idle minutes"
    );

    // A job arriving now is sent within the long poll, not after a pause.
    let req = request(&h, "poller-1", "+14155550801", Channel::Sms);
    h.pipeline.handle_hook(req, Instant::now()).await;
    // The harness queue delays new messages by 5 s (its delivery delay).
    h.clock.advance(chrono::Duration::seconds(6));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.messenger.accepted().len(), 1);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), poller)
        .await
        .expect("the poller stops at once, even inside a long poll")
        .unwrap();
}
