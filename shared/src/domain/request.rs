//! The validated request to deliver one code, whatever door it came in by
//! (a hook, a queued job, a replayed job).

use chrono::{DateTime, Utc};

use super::{Channel, EventId, Locale, Otp, PhoneNumber, RequestType};

/// A validated, normalised request to deliver one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRequest {
    pub event_id: EventId,
    pub request_type: RequestType,
    pub phone: PhoneNumber,
    pub otp: Otp,
    pub otp_expires: DateTime<Utc>,
    pub channel: Channel,
    pub locale: Locale,
    /// Whether `locale` came from the request (false: the default was used).
    pub locale_from_request: bool,
    /// Okta's user id, for per-user limits. Not personal data on its own.
    pub user_id: Option<String>,
}
