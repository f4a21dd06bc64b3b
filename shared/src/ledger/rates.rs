//! Rate counts: windowed counters of events per destination, user,
//! country or the whole org, each event counted once per window.

use async_trait::async_trait;

use super::LedgerError;
use crate::domain::EventId;

/// One event counted against a windowed limit.
#[derive(Debug, Clone)]
pub struct RateCount<'a> {
    /// `dst`, `usr` or `cty`.
    pub scope: &'a str,
    /// A keyed hash, or a country code.
    pub key: &'a str,
    /// Window index: epoch ms divided by the window length.
    pub window: i64,
    pub limit: u32,
    pub event_id: &'a EventId,
    /// TTL attribute, epoch seconds.
    pub expires_at: i64,
}

impl RateCount<'_> {
    pub fn record_key(&self) -> String {
        format!("rate#{}#{}#{}", self.scope, self.key, self.window)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted (or counted before, for a replayed event id).
    Allowed { count: u32 },
    /// The window is full.
    Refused { count: u32 },
}

/// Counting events against windowed limits.
#[async_trait]
pub trait RateCounts: Send + Sync + std::fmt::Debug {
    /// Counts the event in its window unless the window is full; an event
    /// already counted in this window is allowed without counting again.
    async fn count(&self, c: &RateCount<'_>) -> Result<RateDecision, LedgerError>;
}
