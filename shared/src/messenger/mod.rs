//! The `Messenger` port: one message to one handset, by one route. Its
//! adapters are [`eum::EndUserMessaging`] (AWS End User Messaging from the
//! org's own identities), [`notify::Notify`] (End User Messaging Notify:
//! AWS's identities and pre-approved templates) and
//! [`outbox::OutboxMessenger`] (a file standing in for the handset, in local
//! mode); the scripted double for flow tests lives in the test kit.
//! [`routes::Routes`] holds one messenger per route a deployment uses.
//! Adapters classify their errors once, as retryable or permanent, in
//! [`SendError`], which also says when the route itself cannot deliver
//! ([`SendError::is_route_failure`]). What the provider later reports about
//! a message is read by [`receipts`].

pub mod eum;
pub mod notify;
pub mod outbox;
pub mod receipts;
pub mod routes;
pub mod settings;

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::{EventId, Feedback, Locale, Otp, PhoneNumber};
use crate::templates::Rendered;

/// One message for the provider. `Debug` shows no body and a masked number.
#[derive(Clone)]
pub struct OutboundMessage {
    pub event_id: EventId,
    /// Short request type (`mfa-verification`), sent as provider `Context`.
    pub request_type: String,
    pub to: PhoneNumber,
    pub rendered: Rendered,
    /// The code itself and the person's language, for a route that renders
    /// the message from its own templates (Notify).
    pub code: Otp,
    pub locale: Locale,
    /// The OTP's remaining life in seconds; carriers drop the message after.
    pub ttl_seconds: i64,
}

impl std::fmt::Debug for OutboundMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("event_id", &self.event_id)
            .field("to", &self.to)
            .field("rendered", &self.rendered)
            .field("locale", &self.locale)
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

    /// Whether the route itself cannot deliver this message (no identity or
    /// registration for the country, a country or channel the route does
    /// not serve, the route not set up or not allowed, its quota spent), so
    /// another route may. Never a throttle or an outage (those are retried
    /// on the same route) and never a refusal that is about the person or
    /// the org's own policy (an opt-out, a Protect block, a price cap),
    /// which another route must respect too.
    pub fn is_route_failure(&self) -> bool {
        match self {
            SendError::Retryable { .. } => false,
            SendError::Permanent { code, reason } => {
                ROUTE_FAILURE_CODES.contains(&code.as_str())
                    || reason
                        .as_deref()
                        .is_some_and(|r| ROUTE_FAILURE_REASONS.contains(&r))
            }
        }
    }
}

/// Error codes that mean the route cannot deliver: the service's, and the
/// adapters' own checks before a call.
pub const ROUTE_FAILURE_CODES: &[&str] = &[
    "AccessDeniedException",
    "ResourceNotFoundException",
    "ServiceQuotaExceededException",
    eum::NO_IDENTITY,
    notify::NOT_SERVED,
    notify::NOT_ACTIVE,
];

/// The service's reason codes (`ConflictException`, `ValidationException`)
/// that mean the route cannot deliver to this destination.
pub const ROUTE_FAILURE_REASONS: &[&str] = &[
    "NO_ORIGINATION_IDENTITIES_FOUND",
    "REGISTRATION_NOT_COMPLETE",
    "PHONE_NUMBER_NOT_IN_REGISTRATION_REGION",
    "NOTIFY_CONFIGURATION_NOT_ACTIVE",
    "RESOURCE_NOT_ACTIVE",
    "COUNTRY_NOT_ENABLED",
    "CHANNEL_NOT_ENABLED",
    "DESTINATION_COUNTRY_BLOCKED",
    "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
    "INTERNATIONAL_SENDING_NOT_SUPPORTED",
    "SENDER_ID_NOT_REGISTERED",
    "SENDER_ID_REQUIRES_REGISTRATION",
    "SENDER_ID_NOT_SUPPORTED",
    "VOICE_CAPABILITY_NOT_AVAILABLE",
];

#[async_trait]
pub trait Messenger: Send + Sync + std::fmt::Debug {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError>;

    /// Tells the provider whether the person got the message (they signed
    /// in with its code) or not (the code expired unused), for its
    /// conversion metrics. Sends enable feedback, so every message id we
    /// hold takes it.
    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError>;

    /// Reads at start-up what the first send would otherwise read inside
    /// a hook's budget (Notify's catalog); nothing for most adapters.
    async fn warm(&self) {}
}
