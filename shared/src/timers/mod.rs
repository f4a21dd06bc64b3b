//! The `Timers` port: a check that has to happen later, at a code's expiry.
//! Its adapters are [`SqsTimers`] (an SQS standard queue with a per-message
//! delay, in AWS) and [`InMemoryTimers`] (local mode and flow tests).
//!
//! Why an SQS delay and not a DynamoDB TTL stream: TTL deletes items up to
//! days late, and an `UNUSED` mark should come minutes after the expiry.
//! An SQS delay is at most 15 minutes, so a check due later arrives early
//! and its reader schedules it again for the rest ([`MAX_DELAY`]); Okta's
//! codes live 5 minutes by default, so that is rare.

pub mod memory;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::InMemoryTimers;
pub use sqs::SqsTimers;

use crate::queue::QueueError;

/// The longest delay SQS takes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// A check due when the code of `event_id` expires: was it used? Holds no
/// code, number or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryCheck {
    /// Format version.
    pub v: u8,
    pub event_id: String,
    /// When the code expires (epoch ms).
    pub due_ms: i64,
}

impl ExpiryCheck {
    pub const VERSION: u8 = 1;

    pub fn new(event_id: &str, due_ms: i64) -> Self {
        ExpiryCheck {
            v: Self::VERSION,
            event_id: event_id.to_owned(),
            due_ms,
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for a body that is not a check of this version.
    pub fn decode(body: &str) -> Option<Self> {
        serde_json::from_str::<Self>(body)
            .ok()
            .filter(|c| c.v == Self::VERSION && !c.event_id.is_empty())
    }
}

/// The delay to ask for: the time left, at most [`MAX_DELAY`], in whole
/// seconds rounded up (a check must never arrive before it is due unless
/// the cap made it).
pub fn delay_for(due_ms: i64, now_ms: i64) -> Duration {
    let left_ms = u64::try_from(due_ms.saturating_sub(now_ms)).unwrap_or(0);
    Duration::from_secs(left_ms.div_ceil(1000)).min(MAX_DELAY)
}

/// An arrived check: its body and the handle to delete it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    pub handle: String,
    pub body: String,
}

#[async_trait]
pub trait Timers: Send + Sync + std::fmt::Debug {
    /// Schedules the check to arrive at its due time, or after
    /// [`MAX_DELAY`] if that is sooner.
    async fn schedule(&self, check: &ExpiryCheck, now_ms: i64) -> Result<(), QueueError>;

    /// Checks that have arrived, at most `max`, each hidden for a while
    /// until [`Timers::done`] (Lambda's SQS event source does this in AWS;
    /// local mode polls).
    async fn arrived(&self, max: usize) -> Result<Vec<Arrived>, QueueError>;

    /// Removes a handled check.
    async fn done(&self, handle: &str) -> Result<(), QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_cap() {
        assert_eq!(delay_for(1_500, 0), Duration::from_secs(2));
        assert_eq!(delay_for(0, 10), Duration::ZERO);
        assert_eq!(delay_for(3_600_000, 0), MAX_DELAY);
    }

    #[test]
    fn checks_round_trip_and_refuse_other_bodies() {
        let c = ExpiryCheck::new("evt-1", 42);
        assert_eq!(ExpiryCheck::decode(&c.encode()), Some(c));
        assert_eq!(ExpiryCheck::decode("{}"), None);
        assert_eq!(
            ExpiryCheck::decode(r#"{"v":9,"eventId":"e","dueMs":1}"#),
            None
        );
        assert_eq!(ExpiryCheck::decode("not json"), None);
    }
}
