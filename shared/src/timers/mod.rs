//! The `Timers` port: a check that has to happen later ([`Check`]): at a
//! code's expiry (was it used?), or shortly after an SMS (did it bounce, so
//! that a voice call should carry the code instead?). Its adapters are
//! [`SqsTimers`] (an SQS standard queue with a per-message delay, in AWS)
//! and [`InMemoryTimers`] (local mode and flow tests).
//!
//! Why an SQS delay and not a DynamoDB TTL stream: TTL deletes items up to
//! days late, and an `UNUSED` mark should come minutes after the expiry.
//! An SQS delay is at most 15 minutes, so a check due later arrives early
//! and its reader schedules it again for the rest ([`MAX_DELAY`]); Okta's
//! codes live 5 minutes by default, so that is rare.

pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::InMemoryTimers;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteTimers;
pub use sqs::SqsTimers;

use crate::queue::QueueError;

/// The longest delay SQS takes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// A check due when the code of `event_id` expires: was it used? Or,
/// for a code the learning guard judges, due earlier, once a person would
/// have typed it in (`expires_ms` then says when the code expires, and the
/// expiry check follows). Holds no code, number or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryCheck {
    /// Format version.
    pub v: u8,
    pub event_id: String,
    /// When it is due (epoch ms): the code's expiry, or its judgement.
    pub due_ms: i64,
    /// When the code expires, if that is later than `due_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

impl ExpiryCheck {
    pub const VERSION: u8 = 1;

    pub fn new(event_id: &str, due_ms: i64) -> Self {
        ExpiryCheck {
            v: Self::VERSION,
            event_id: event_id.to_owned(),
            due_ms,
            expires_ms: None,
        }
    }

    /// A judgement due at `judge_ms`, for a code that expires at
    /// `expires_ms`; the plain expiry check when the code expires first.
    pub fn judging(event_id: &str, judge_ms: i64, expires_ms: i64) -> Self {
        if judge_ms >= expires_ms {
            return Self::new(event_id, expires_ms);
        }
        ExpiryCheck {
            expires_ms: Some(expires_ms),
            ..Self::new(event_id, judge_ms)
        }
    }

    /// When the code expires.
    pub fn code_expires_ms(&self) -> i64 {
        self.expires_ms.unwrap_or(self.due_ms).max(self.due_ms)
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

/// A voice call to place with the same code if the SMS has a final
/// undeliverable receipt by `due_ms` (`VOICE_FALLBACK`). It carries the
/// queued job, code included, as the job queue does: the ledger never
/// holds a code, and the call needs one. `Debug` leaves the job out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FallbackCheck {
    pub v: u8,
    pub event_id: String,
    pub due_ms: i64,
    /// The job, as the job queue carries it (`Job::encode`).
    pub job: String,
}

impl std::fmt::Debug for FallbackCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackCheck")
            .field("event_id", &self.event_id)
            .field("due_ms", &self.due_ms)
            .finish_non_exhaustive()
    }
}

/// What a timer carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Check {
    // First: only it has a `job`.
    Fallback(FallbackCheck),
    Expiry(ExpiryCheck),
}

impl Check {
    pub fn due_ms(&self) -> i64 {
        match self {
            Check::Fallback(c) => c.due_ms,
            Check::Expiry(c) => c.due_ms,
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for a body that is not a check of a known version.
    pub fn decode(body: &str) -> Option<Self> {
        serde_json::from_str::<Self>(body).ok().filter(|c| match c {
            Check::Fallback(f) => f.v == ExpiryCheck::VERSION && !f.event_id.is_empty(),
            Check::Expiry(e) => e.v == ExpiryCheck::VERSION && !e.event_id.is_empty(),
        })
    }
}

impl From<ExpiryCheck> for Check {
    fn from(c: ExpiryCheck) -> Self {
        Check::Expiry(c)
    }
}

/// An arrived check: its body and the handle to delete it by. `Debug`
/// leaves the body out (a fallback check holds a code).
#[derive(Clone, PartialEq, Eq)]
pub struct Arrived {
    pub handle: String,
    pub body: String,
}

impl std::fmt::Debug for Arrived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrived").finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Timers: Send + Sync + std::fmt::Debug {
    /// Schedules the check to arrive at its due time, or after
    /// [`MAX_DELAY`] if that is sooner.
    async fn schedule(&self, check: &Check, now_ms: i64) -> Result<(), QueueError>;

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
        assert_eq!(ExpiryCheck::decode(&c.encode()), Some(c.clone()));
        let expiry = Check::from(c);
        assert_eq!(Check::decode(&expiry.encode()), Some(expiry));
        let fallback = Check::Fallback(FallbackCheck {
            v: 1,
            event_id: "evt-2".into(),
            due_ms: 7,
            job: r#"{"otp":"123456"}"#.into(),
        });
        assert_eq!(Check::decode(&fallback.encode()), Some(fallback.clone()));
        assert!(!format!("{fallback:?}").contains("123456"));
        let arrived = Arrived {
            handle: "h".into(),
            body: fallback.encode(),
        };
        assert!(!format!("{arrived:?}").contains("123456"));
        assert_eq!(Check::decode(r#"{"v":2,"eventId":"e","dueMs":1}"#), None);
        assert_eq!(ExpiryCheck::decode("{}"), None);
        assert_eq!(
            ExpiryCheck::decode(r#"{"v":9,"eventId":"e","dueMs":1}"#),
            None
        );
        assert_eq!(ExpiryCheck::decode("not json"), None);
    }
}
