//! Delivery: the two ports that move a code out of the building.
//!
//! - [`Delivery`] sits between the ingress and the pipeline: the ingress
//!   hands it a validated [`DeliveryRequest`] and turns the
//!   [`DeliveryOutcome`] into Okta's answer. The pipeline implements it;
//!   [`RecordingDelivery`] records requests for contract tests.
//! - [`Messenger`] sends one rendered message to a handset: End User
//!   Messaging in AWS, [`ScriptedMessenger`] in flow tests, an outbox file in
//!   local mode. Adapters classify their errors once, as retryable or
//!   permanent, in [`SendError`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use thiserror::Error;
use tokio::time::Instant;

use crate::okta::{ActionStatus, DeliveryRequest, EventId};
use crate::phone::PhoneNumber;
use crate::template::Rendered;

/// What happened to a request, in the terms Okta understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The provider accepted the message; `transaction_id` is its id.
    Successful {
        transaction_id: String,
        metadata: Option<String>,
    },
    /// Durably queued, not yet confirmed.
    Pending { metadata: Option<String> },
    /// Will not be delivered by us; Okta should use its own provider.
    /// `summary` is safe to show an end user.
    Failed { summary: String },
}

impl DeliveryOutcome {
    pub fn status(&self) -> ActionStatus {
        match self {
            DeliveryOutcome::Successful { .. } => ActionStatus::Successful,
            DeliveryOutcome::Pending { .. } => ActionStatus::Pending,
            DeliveryOutcome::Failed { .. } => ActionStatus::Failed,
        }
    }
}

/// A delivery attempt that could not reach a verdict at all.
#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("delivery backend unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Delivery: Send + Sync {
    /// `arrived` is when the hook request arrived; budgets count from it.
    async fn deliver(
        &self,
        request: DeliveryRequest,
        arrived: Instant,
    ) -> Result<DeliveryOutcome, DeliveryError>;
}

/// Records every request in memory and reports it delivered.
#[derive(Debug, Default)]
pub struct RecordingDelivery {
    requests: Mutex<Vec<DeliveryRequest>>,
}

impl RecordingDelivery {
    pub fn new() -> Self {
        Self::default()
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
    async fn deliver(
        &self,
        request: DeliveryRequest,
        _arrived: Instant,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        let channel = request.channel;
        let event_id: EventId = request.event_id.clone();
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.push(request);
        Ok(DeliveryOutcome::Successful {
            transaction_id: format!("rec-{}-{}", requests.len(), random_hex(8)),
            metadata: Some(format!("channel={channel}; event={event_id}")),
        })
    }
}

/// Lower-case hex of `n` random bytes from the system CSPRNG.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // The system RNG failing is not something a request can recover from;
    // zeros still give a unique-enough local id together with the counter.
    let _ = aws_lc_rs::rand::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

// --------------------------------------------------------------- messenger

/// One message for the provider. `Debug` shows no body and a masked number.
#[derive(Clone)]
pub struct OutboundMessage {
    pub event_id: EventId,
    /// Short request type (`mfa-verification`), sent as provider `Context`.
    pub request_type: String,
    pub to: PhoneNumber,
    pub rendered: Rendered,
    /// The OTP's remaining life in seconds; carriers drop the message after.
    pub ttl_seconds: i64,
}

impl std::fmt::Debug for OutboundMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("event_id", &self.event_id)
            .field("to", &self.to)
            .field("rendered", &self.rendered)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    pub message_id: String,
}

/// A failed send, classified once by the adapter. `code` is the provider's
/// error code, `reason` its reason code where it gives one (for example
/// `DESTINATION_PHONE_NUMBER_OPTED_OUT`); neither holds message content.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("retryable provider error {code}")]
    Retryable { code: String },
    #[error("permanent provider error {code} ({})", reason.as_deref().unwrap_or("-"))]
    Permanent {
        code: String,
        reason: Option<String>,
    },
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    pub fn code(&self) -> &str {
        match self {
            SendError::Retryable { code } | SendError::Permanent { code, .. } => code,
        }
    }
}

#[async_trait]
pub trait Messenger: Send + Sync + std::fmt::Debug {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError>;
}

/// What a scripted send does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    Accept,
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
        match self.next(message.to.e164()) {
            Scripted::Fail(e) => return Err(e),
            Scripted::Slow(d) => tokio::time::sleep(d).await,
            Scripted::Accept => {}
        }
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        accepted.push(message.clone());
        let message_id = format!("msg-{:04}-{}", accepted.len(), random_hex(6));
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message_id.clone());
        Ok(SendReceipt { message_id })
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
}
