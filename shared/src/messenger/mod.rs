//! The `Messenger` port: one rendered message to one handset. Its adapters
//! are [`eum::EndUserMessaging`] (AWS End User Messaging, in AWS) and
//! [`outbox::OutboxMessenger`] (a file standing in for the handset, in local
//! mode); the scripted double for flow tests lives in the test kit.
//! Adapters classify their errors once, as retryable or permanent, in
//! [`SendError`]. What the provider later reports about a message is read
//! by [`receipts`].

pub mod eum;
pub mod outbox;
pub mod receipts;
pub mod settings;

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::{EventId, Feedback, PhoneNumber};
use crate::templates::Rendered;

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

    /// Tells the provider whether the person got the message (they signed
    /// in with its code) or not (the code expired unused), for its
    /// conversion metrics. Sends enable feedback, so every message id we
    /// hold takes it.
    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError>;
}
