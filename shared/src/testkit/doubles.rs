//! Scripted and recording doubles for the ports, for flow tests, local load
//! tests and benchmarks.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::crypto::random_hex;
use crate::domain::{DeliveryOutcome, DeliveryRequest, EventId, Feedback};
use crate::flows::Delivery;
use crate::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};

/// Records every request in memory and reports it delivered.
#[derive(Debug, Default)]
pub struct RecordingDelivery {
    requests: Mutex<Vec<DeliveryRequest>>,
    batches: Mutex<Vec<crate::okta::events::EventBatch>>,
}

impl RecordingDelivery {
    pub fn new() -> Self {
        Self::default()
    }

    /// The event hook batches received so far, oldest first.
    pub fn batches(&self) -> Vec<crate::okta::events::EventBatch> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The requests received so far, oldest first.
    pub fn requests(&self) -> Vec<DeliveryRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl Delivery for RecordingDelivery {
    async fn deliver(&self, request: DeliveryRequest, _arrived: Instant) -> DeliveryOutcome {
        let channel = request.channel;
        let event_id: EventId = request.event_id.clone();
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.push(request);
        DeliveryOutcome::Successful {
            transaction_id: format!("rec-{}-{}", requests.len(), random_hex(8)),
            metadata: Some(format!("channel={channel}; event={event_id}")),
        }
    }

    async fn sign_ins(
        &self,
        batch: &crate::okta::events::EventBatch,
    ) -> Result<crate::flows::SignInReport, crate::ledger::LedgerError> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(batch.clone());
        Ok(crate::flows::SignInReport {
            converted: u32::try_from(batch.sign_ins.len()).unwrap_or(u32::MAX),
            skipped: u32::try_from(batch.skipped.len()).unwrap_or(u32::MAX),
            ..Default::default()
        })
    }
}

/// What a scripted send does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    Accept,
    /// Accepts, with this message id (a test whose receipts name one).
    AcceptAs(String),
    Fail(SendError),
    /// Takes this long, then accepts (for deadline tests).
    Slow(std::time::Duration),
}

/// An in-memory messenger that follows a script and records every message
/// it accepted. Outcomes are taken first from the destination's own script,
/// then from the shared one; with both empty it accepts.
#[derive(Debug, Default)]
pub struct ScriptedMessenger {
    shared: Mutex<VecDeque<Scripted>>,
    per_destination: Mutex<HashMap<String, VecDeque<Scripted>>>,
    accepted: Mutex<Vec<OutboundMessage>>,
    ids: Mutex<Vec<String>>,
    attempts: std::sync::atomic::AtomicUsize,
    feedback: Mutex<Vec<(String, Feedback)>>,
}

impl ScriptedMessenger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn script(&self, outcomes: impl IntoIterator<Item = Scripted>) {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(outcomes);
    }

    pub fn script_for(&self, e164: &str, outcomes: impl IntoIterator<Item = Scripted>) {
        self.per_destination
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(e164.to_owned())
            .or_default()
            .extend(outcomes);
    }

    /// Messages accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<OutboundMessage> {
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The message ids handed out, in the order of [`Self::accepted`].
    pub fn message_ids(&self) -> Vec<String> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The message feedback given so far, oldest first.
    pub fn feedback_given(&self) -> Vec<(String, Feedback)> {
        self.feedback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every call, accepted or not.
    pub fn attempts(&self) -> usize {
        self.attempts.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn next(&self, e164: &str) -> Scripted {
        let mine = self
            .per_destination
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(e164)
            .and_then(VecDeque::pop_front);
        mine.or_else(|| {
            self.shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
        })
        .unwrap_or(Scripted::Accept)
    }
}

#[async_trait]
impl Messenger for ScriptedMessenger {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut given = None;
        match self.next(message.to.e164()) {
            Scripted::Fail(e) => return Err(e),
            Scripted::Slow(d) => tokio::time::sleep(d).await,
            Scripted::AcceptAs(id) => given = Some(id),
            Scripted::Accept => {}
        }
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        accepted.push(message.clone());
        // Two short random groups: a run of ten digits in a log line is how
        // the log tests spot a leaked code or number, and one 12-character
        // hex group is all digits often enough to trip them.
        let message_id = given.unwrap_or_else(|| {
            format!(
                "msg-{:04}-{}-{}",
                accepted.len(),
                random_hex(3),
                random_hex(3)
            )
        });
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message_id.clone());
        Ok(SendReceipt { message_id })
    }

    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError> {
        self.feedback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((message_id.to_owned(), status));
        Ok(())
    }
}

/// Adds a fixed latency before every send: a provider that takes its time,
/// for load tests that measure the fast path's own overhead.
#[derive(Debug)]
pub struct DelayedMessenger<M> {
    pub inner: M,
    pub delay: std::time::Duration,
}

#[async_trait]
impl<M: Messenger> Messenger for DelayedMessenger<M> {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        tokio::time::sleep(self.delay).await;
        self.inner.send(message).await
    }

    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError> {
        self.inner.feedback(message_id, status).await
    }
}
