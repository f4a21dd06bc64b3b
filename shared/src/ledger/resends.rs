//! Resends: the last confirmed send to one person (a keyed hash of the
//! number and the Okta user), kept for the resend window, so that when
//! they ask again the new code can take the other route. Okta's own
//! providers do the same: a code that did not arrive one way may arrive the
//! other.

use async_trait::async_trait;

use super::LedgerError;
use crate::domain::Route;

/// The last send to one person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastSend {
    pub event_id: String,
    pub route: Route,
    pub sent_ms: i64,
}

impl LastSend {
    pub fn record_key(key: &str) -> String {
        format!("lst#{key}")
    }
}

/// Remembering the last send to each person.
#[async_trait]
pub trait Resends: Send + Sync + std::fmt::Debug {
    /// The last send to this person that is still remembered.
    async fn last_send(&self, key: &str) -> Result<Option<LastSend>, LedgerError>;

    /// Remembers a confirmed send to this person until `expires_at` (epoch
    /// seconds), over any earlier one.
    async fn note_last_send(
        &self,
        key: &str,
        last: &LastSend,
        expires_at: i64,
    ) -> Result<(), LedgerError>;
}
