//! [`InMemoryFifo`]: an SQS FIFO queue in memory, for flow tests and local
//! mode, with the semantics the flows depend on (see the port's docs).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    JobQueue, OutgoingMessage, Pick, QueueDepth, QueueError, ReceivedMessage, Slot, check_ids,
    local_arn, pick, poll,
};
use crate::clock::Clock;

#[derive(Debug, Clone)]
pub struct FifoSettings {
    pub delay: Duration,
    pub visibility: Duration,
    /// Redrive after this many receives; `None` for a queue without a DLQ.
    pub max_receive_count: Option<u32>,
    pub dedup_window: Duration,
}

impl FifoSettings {
    /// A dead-letter queue's: no delay, no redrive of its own.
    pub fn dead_letter(visibility: Duration) -> Self {
        FifoSettings {
            delay: Duration::ZERO,
            visibility,
            max_receive_count: None,
            dedup_window: Duration::from_secs(300),
        }
    }
}

impl Default for FifoSettings {
    fn default() -> Self {
        FifoSettings {
            delay: Duration::from_secs(5),
            visibility: Duration::from_secs(180),
            max_receive_count: Some(5),
            dedup_window: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    group: String,
    dedup: Option<String>,
    visible_at_ms: i64,
    receive_count: u32,
    receipt: Option<String>,
    sent_at_ms: i64,
}

impl Stored {
    fn slot(&self) -> Slot<'_> {
        Slot {
            group: &self.group,
            visible_at_ms: self.visible_at_ms,
            in_flight_receipt: self.receipt.is_some(),
            receive_count: self.receive_count,
        }
    }
}

#[derive(Debug, Default)]
struct FifoState {
    seq: u64,
    messages: VecDeque<Stored>,
    dedup: HashMap<String, (i64, String), foldhash::fast::RandomState>,
    /// Dedup ids in the order they were seen, so expired ones are pruned
    /// from the front instead of by scanning the whole map on every send.
    dedup_order: VecDeque<(i64, String)>,
}

/// An SQS FIFO queue in memory. Time comes from the [`Clock`], so tests can
/// move past delays and visibility timeouts without sleeping.
#[derive(Debug)]
pub struct InMemoryFifo {
    name: String,
    clock: Arc<dyn Clock>,
    settings: FifoSettings,
    dlq: Option<Arc<InMemoryFifo>>,
    state: Mutex<FifoState>,
}

impl InMemoryFifo {
    pub fn new(
        name: &str,
        clock: Arc<dyn Clock>,
        settings: FifoSettings,
        dlq: Option<Arc<InMemoryFifo>>,
    ) -> Self {
        InMemoryFifo {
            name: name.to_owned(),
            clock,
            settings,
            dlq,
            state: Mutex::default(),
        }
    }

    /// A dead-letter queue: no delay, no redrive of its own.
    pub fn dead_letter(name: &str, clock: Arc<dyn Clock>, visibility: Duration) -> Self {
        Self::new(name, clock, FifoSettings::dead_letter(visibility), None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FifoState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many messages the queue holds, whatever their state.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_redriven(&self, mut m: Stored) {
        let mut st = self.lock();
        m.receipt = None;
        m.receive_count = 0;
        m.visible_at_ms = self.clock.now_ms();
        st.messages.push_back(m);
    }

    /// Marks a message received: a new receipt, one more receive, hidden
    /// for the visibility timeout.
    fn hand_out(&self, m: &mut Stored, now: i64) -> ReceivedMessage {
        let receipt = format!("{}-{}", self.name, crate::crypto::random_hex(12));
        let visibility = i64::try_from(self.settings.visibility.as_millis()).unwrap_or(i64::MAX);
        m.receive_count += 1;
        m.receipt = Some(receipt.clone());
        m.visible_at_ms = now.saturating_add(visibility);
        ReceivedMessage {
            message_id: m.id.clone(),
            receipt_handle: receipt,
            body: m.body.clone(),
            group_id: m.group.clone(),
            dedup_id: m.dedup.clone(),
            receive_count: m.receive_count,
            sent_at_ms: m.sent_at_ms,
        }
    }

    fn try_receive(&self, max: usize) -> Vec<ReceivedMessage> {
        let now = self.clock.now_ms();
        let mut redriven = Vec::new();
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            let slots: Vec<Slot<'_>> = st.messages.iter().map(Stored::slot).collect();
            let picks = pick(&slots, now, max, &self.settings, self.dlq.is_some());
            let mut gone = Vec::new();
            for p in picks {
                match p {
                    Pick::HandOut(i) => out.push(self.hand_out(&mut st.messages[i], now)),
                    Pick::Redrive(i) => gone.push(i),
                }
            }
            // From the back, so the earlier indices stay right.
            for i in gone.into_iter().rev() {
                if let Some(m) = st.messages.remove(i) {
                    redriven.push(m);
                }
            }
            redriven.reverse();
        }
        if let Some(dlq) = &self.dlq {
            for m in redriven {
                tracing::warn!(queue = %self.name, message_id = %m.id, "message moved to the dead-letter queue");
                dlq.push_redriven(m);
            }
        }
        out
    }
}

#[async_trait]
impl JobQueue for InMemoryFifo {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        check_ids(&msg)?;
        let now = self.clock.now_ms();
        let window = i64::try_from(self.settings.dedup_window.as_millis()).unwrap_or(i64::MAX);
        let mut st = self.lock();
        // Expired ids leave from the front, in the order they came: no scan
        // of the whole map on every send.
        while st
            .dedup_order
            .front()
            .is_some_and(|(at, _)| now - *at >= window)
        {
            if let Some((at, key)) = st.dedup_order.pop_front()
                && st.dedup.get(&key).is_some_and(|(t, _)| *t == at)
            {
                st.dedup.remove(&key);
            }
        }
        if let Some((_, id)) = st.dedup.get(&msg.dedup_id) {
            return Ok(id.clone());
        }
        st.seq += 1;
        // The sequence number makes the id unique; the suffix only makes it
        // look like no other run's.
        let id = format!("{}-{:08}-{:08x}", self.name, st.seq, fastrand::u32(..));
        st.dedup.insert(msg.dedup_id.clone(), (now, id.clone()));
        st.dedup_order.push_back((now, msg.dedup_id.clone()));
        let delay = i64::try_from(self.settings.delay.as_millis()).unwrap_or(0);
        st.messages.push_back(Stored {
            id: id.clone(),
            body: msg.body,
            group: msg.group_id,
            dedup: Some(msg.dedup_id),
            visible_at_ms: now + delay,
            receive_count: 0,
            receipt: None,
            sent_at_ms: now,
        });
        Ok(id)
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        poll(
            wait,
            Duration::from_millis(10),
            || Ok(self.try_receive(max)),
        )
        .await
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        // As in SQS FIFO, a receipt is only good while the message is in
        // flight under it.
        let pos = st
            .messages
            .iter()
            .position(|m| m.receipt.as_deref() == Some(receipt_handle) && m.visible_at_ms > now);
        match pos {
            Some(i) => {
                st.messages.remove(i);
                Ok(())
            }
            None => Err(QueueError::InvalidReceipt),
        }
    }

    async fn set_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        match st
            .messages
            .iter_mut()
            .find(|m| m.receipt.as_deref() == Some(receipt_handle) && m.visible_at_ms > now)
        {
            Some(m) => {
                m.visible_at_ms = now + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
                // As in SQS, the receipt stays valid while the message is
                // in flight, and is spent once it is visible again.
                if timeout.is_zero() {
                    m.receipt = None;
                }
                Ok(())
            }
            None => Err(QueueError::InvalidReceipt),
        }
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let now = self.clock.now_ms();
        let st = self.lock();
        let mut d = QueueDepth::default();
        for m in &st.messages {
            d.count(&m.slot(), now);
        }
        Ok(d)
    }

    fn arn(&self) -> String {
        local_arn(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ManualClock;

    fn msg(group: &str, dedup: &str) -> OutgoingMessage {
        OutgoingMessage {
            body: format!("{group}/{dedup}"),
            group_id: group.into(),
            dedup_id: dedup.into(),
        }
    }

    fn setup() -> (Arc<ManualClock>, Arc<InMemoryFifo>, Arc<InMemoryFifo>) {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let dlq = Arc::new(InMemoryFifo::dead_letter(
            "dlq",
            clock.clone(),
            Duration::from_secs(30),
        ));
        let q = Arc::new(InMemoryFifo::new(
            "jobs",
            clock.clone(),
            FifoSettings {
                delay: Duration::from_secs(5),
                visibility: Duration::from_secs(30),
                max_receive_count: Some(2),
                dedup_window: Duration::from_secs(300),
            },
            Some(dlq.clone()),
        ));
        (clock, q, dlq)
    }

    fn bodies(v: &[ReceivedMessage]) -> Vec<&str> {
        v.iter().map(|m| m.body.as_str()).collect()
    }

    #[tokio::test]
    async fn delay_dedup_order_and_group_lock() {
        let (clock, q, _) = setup();
        let id = q.send(msg("a", "1")).await.unwrap();
        assert_eq!(
            q.send(msg("a", "1")).await.unwrap(),
            id,
            "duplicate returns the first id"
        );
        q.send(msg("a", "2")).await.unwrap();
        q.send(msg("b", "3")).await.unwrap();
        assert!(
            q.receive(10, Duration::ZERO).await.unwrap().is_empty(),
            "delayed"
        );
        clock.advance(chrono::Duration::seconds(5));
        let first = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&first), ["a/1"]);
        // Group a is locked while a/1 is in flight; b goes on.
        let next = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&next), ["b/3"]);
        q.delete(&first[0].receipt_handle).await.unwrap();
        assert_eq!(
            bodies(&q.receive(10, Duration::ZERO).await.unwrap()),
            ["a/2"]
        );
        // After the window, the same dedup id is a new message.
        clock.advance(chrono::Duration::seconds(301));
        assert_ne!(q.send(msg("a", "1")).await.unwrap(), id);
    }

    #[tokio::test]
    async fn visibility_and_redrive() {
        let (clock, q, dlq) = setup();
        q.send(msg("a", "1")).await.unwrap();
        q.send(msg("a", "2")).await.unwrap();
        clock.advance(chrono::Duration::seconds(5));
        for _ in 0..2 {
            let got = q.receive(10, Duration::ZERO).await.unwrap();
            assert_eq!(bodies(&got), ["a/1", "a/2"]);
            clock.advance(chrono::Duration::seconds(31));
        }
        // Third receive: both exceeded maxReceiveCount=2 and move to the DLQ.
        assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
        assert!(q.is_empty());
        let dead = dlq.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&dead), ["a/1", "a/2"]);
        // A stale receipt cannot delete.
        clock.advance(chrono::Duration::seconds(31));
        assert_eq!(
            dlq.delete(&dead[0].receipt_handle).await,
            Err(QueueError::InvalidReceipt)
        );
    }
}
