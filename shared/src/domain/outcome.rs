//! How a delivery ended, in the three words Okta understands.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionStatus {
    Successful,
    Pending,
    Failed,
}

impl ActionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionStatus::Successful => "SUCCESSFUL",
            ActionStatus::Pending => "PENDING",
            ActionStatus::Failed => "FAILED",
        }
    }
}

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
    /// `summary` is safe to show an end user; `cause` says why, in words
    /// safe to send to Okta.
    Failed {
        summary: String,
        cause: FailureCause,
    },
}

/// Why a code was not delivered, as one of Okta's `errorCauses`. Every
/// text here is fixed, so nothing from the request can leak through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCause {
    pub summary: &'static str,
    /// A stable code for dashboards and Okta's System Log.
    pub reason: &'static str,
    /// `body` when `location` is a request field, `delivery` otherwise.
    pub location_type: &'static str,
    pub location: &'static str,
    /// Who can act: `request`, `policy` (our guard), `provider`, `service`.
    pub domain: &'static str,
}

const PHONE: &str = "data.messageProfile.phoneNumber";

impl FailureCause {
    /// A cause located at a field of Okta's request.
    const fn body(
        summary: &'static str,
        reason: &'static str,
        location: &'static str,
        domain: &'static str,
    ) -> Self {
        FailureCause {
            summary,
            reason,
            location_type: "body",
            location,
            domain,
        }
    }

    /// A cause in our own delivery machinery, not in the request.
    const fn delivery(summary: &'static str, reason: &'static str, domain: &'static str) -> Self {
        FailureCause {
            summary,
            reason,
            location_type: "delivery",
            location: "delivery",
            domain,
        }
    }

    pub const EXPIRED: Self = Self::body(
        "The code had expired when the request arrived",
        "OTP_EXPIRED",
        "data.messageProfile.otpExpires",
        "request",
    );
    pub const COUNTRY: Self = Self::body(
        "Codes are not sent to this country",
        "COUNTRY_NOT_ALLOWED",
        PHONE,
        "policy",
    );
    pub const NUMBER_TYPE: Self = Self::body(
        "This kind of number cannot receive the code",
        "NUMBER_TYPE_NOT_ALLOWED",
        PHONE,
        "policy",
    );
    pub const LEARNED_BLOCK: Self = Self::body(
        "Codes to this number range are paused",
        "RANGE_BLOCKED",
        PHONE,
        "policy",
    );
    pub const GUARD_UNAVAILABLE: Self = Self::delivery(
        "The fraud guard could not check the request",
        "GUARD_UNAVAILABLE",
        "service",
    );
    pub const PROVIDER_REFUSED: Self = Self::body(
        "The messaging provider refused the message",
        "PROVIDER_REFUSED",
        PHONE,
        "provider",
    );
    pub const NOT_QUEUED: Self = Self::delivery(
        "The code could be neither sent nor queued",
        "NOT_QUEUED",
        "service",
    );
    pub const LEDGER_UNAVAILABLE: Self = Self::delivery(
        "Delivery state is unavailable",
        "LEDGER_UNAVAILABLE",
        "service",
    );
    pub const ALREADY_ENDED: Self = Self::body(
        "This request already ended without a send",
        "ALREADY_ENDED",
        "eventId",
        "request",
    );

    /// A rate limit, located at the field its counter is keyed on.
    pub const fn rate(scope: &str) -> Self {
        let location = match scope.as_bytes() {
            b"usr" => "data.userProfile.userId",
            b"ip" => "data.context.request.ipAddress",
            // The org's ceiling: no one field of the request is to blame.
            b"all" => "data",
            _ => PHONE,
        };
        Self::body(
            "Too many codes were requested",
            "RATE_LIMITED",
            location,
            "policy",
        )
    }
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
