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
