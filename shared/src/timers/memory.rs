//! Timers in memory, on the pipeline's clock, with SQS's semantics: a
//! message arrives after its delay (capped at [`MAX_DELAY`]), is hidden for
//! a visibility timeout once received, and comes back unless deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Arrived, Check, Timers, delay_for};
use crate::clock::Clock;
use crate::crypto::random_hex;
use crate::queue::QueueError;

#[derive(Debug)]
struct Pending {
    handle: String,
    body: String,
    visible_at_ms: i64,
}

#[derive(Debug)]
pub struct InMemoryTimers {
    clock: Arc<dyn Clock>,
    visibility: Duration,
    pending: Mutex<Vec<Pending>>,
}

impl InMemoryTimers {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        InMemoryTimers {
            clock,
            visibility: Duration::from_secs(30),
            pending: Mutex::default(),
        }
    }

    /// Checks scheduled and not yet deleted.
    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Timers for InMemoryTimers {
    async fn schedule(&self, check: &Check, now_ms: i64) -> Result<(), QueueError> {
        let delay = delay_for(check.due_ms(), now_ms);
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Pending {
                handle: random_hex(8),
                body: check.encode(),
                visible_at_ms: now_ms + millis(delay),
            });
        Ok(())
    }

    async fn arrived(&self, max: usize) -> Result<Vec<Arrived>, QueueError> {
        let now = self.clock.now_ms();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for p in pending.iter_mut().filter(|p| p.visible_at_ms <= now) {
            if out.len() == max {
                break;
            }
            p.visible_at_ms = now + millis(self.visibility);
            // A new handle per receive, as SQS gives.
            p.handle = random_hex(8);
            out.push(Arrived {
                handle: p.handle.clone(),
                body: p.body.clone(),
            });
        }
        Ok(out)
    }

    async fn done(&self, handle: &str) -> Result<(), QueueError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let before = pending.len();
        pending.retain(|p| p.handle != handle);
        if pending.len() == before {
            return Err(QueueError::InvalidReceipt);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testkit::ManualClock;
    use crate::timers::ExpiryCheck;

    #[tokio::test]
    async fn arrives_when_due_hides_and_comes_back_unless_done() {
        let clock = Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp_millis(1_000_000).unwrap(),
        ));
        let t = InMemoryTimers::new(clock.clone());
        t.schedule(&ExpiryCheck::new("e1", 1_060_000).into(), 1_000_000)
            .await
            .unwrap();
        // Due in an hour: arrives after the 15-minute cap.
        t.schedule(&ExpiryCheck::new("e2", 4_600_000).into(), 1_000_000)
            .await
            .unwrap();
        assert!(t.arrived(10).await.unwrap().is_empty());
        clock.advance(chrono::Duration::seconds(60));
        let got = t.arrived(10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(t.arrived(10).await.unwrap().is_empty(), "hidden");
        clock.advance(chrono::Duration::seconds(31));
        let again = t.arrived(10).await.unwrap();
        assert_eq!(again.len(), 1, "not deleted: comes back");
        assert!(t.done(&got[0].handle).await.is_err(), "old handle");
        t.done(&again[0].handle).await.unwrap();
        clock.advance(chrono::Duration::seconds(900));
        let capped = t.arrived(10).await.unwrap();
        assert_eq!(ExpiryCheck::decode(&capped[0].body).unwrap().event_id, "e2");
    }
}
