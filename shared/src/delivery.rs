//! The port between the ingress and whatever delivers the code.
//!
//! The ingress hands a validated [`DeliveryRequest`] to a [`Delivery`] and
//! turns the [`DeliveryOutcome`] into Okta's answer. [`RecordingDelivery`]
//! is the in-memory implementation: it records each request and reports it
//! delivered, so the hook contract can be exercised end to end without a
//! provider.

use std::sync::Mutex;

use async_trait::async_trait;
use thiserror::Error;

use crate::okta::{ActionStatus, DeliveryRequest, EventId};

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
    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError>;
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
    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError> {
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

/// Delivers nothing and answers FAILED, so that Okta sends the code through
/// its own provider. The safe choice while no provider is configured, and a
/// kill switch for a bad day.
#[derive(Debug, Default)]
pub struct OktaFallbackDelivery;

#[async_trait]
impl Delivery for OktaFallbackDelivery {
    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError> {
        tracing::warn!(event_id = %request.event_id, "no delivery pipeline configured; Okta will use its own provider");
        Ok(DeliveryOutcome::Failed {
            summary: crate::okta::SUMMARY_NOT_DELIVERED.to_owned(),
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
