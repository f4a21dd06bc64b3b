//! Claims: the conditional writes that let one worker at a time send an
//! event's code, and never again once a send was confirmed; the event's
//! record as it is read back.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{DeliveryRecord, LedgerError, SentRecord};
use crate::domain::channel::Channel;
use crate::domain::{EventId, Route};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    InProgress,
    Sent,
    Failed,
    Expired,
    /// Refused by the guard and answered so that Okta does not fall back
    /// (`GUARD_REFUSAL=block`). Terminal.
    Blocked,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::InProgress => "IN_PROGRESS",
            Status::Sent => "SENT",
            Status::Failed => "FAILED",
            Status::Expired => "EXPIRED",
            Status::Blocked => "BLOCKED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "IN_PROGRESS" => Status::InProgress,
            "SENT" => Status::Sent,
            "FAILED" => Status::Failed,
            "EXPIRED" => Status::Expired,
            "BLOCKED" => Status::Blocked,
            _ => return None,
        })
    }
}

/// One event's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerRecord {
    pub event_id: String,
    pub status: Status,
    /// Epoch ms until which the current claim holds; 0 once released.
    pub lease_until_ms: i64,
    pub attempts: u32,
    pub channel: Option<Channel>,
    pub message_id: Option<String>,
    /// The route the confirmed send took.
    pub route: Option<Route>,
    pub failure: Option<String>,
    /// Random token of the current claim holder.
    pub owner: Option<String>,
    /// Okta's request id (`data.context.request.id`), to follow one sign-in
    /// from Okta's System Log to this record.
    pub correlation_id: Option<String>,
    /// The destination's ISO country, when known.
    pub country: Option<String>,
    /// A keyed hash of the destination number (the job's message group),
    /// to tell an event id reused for another number. Never the number.
    #[serde(default)]
    pub destination: Option<String>,
    pub updated_at_ms: i64,
    /// TTL attribute, epoch seconds.
    pub expires_at: i64,
    /// The provider's final delivery receipt, once one came.
    pub delivery: Option<DeliveryRecord>,
    /// What the send left for conversion, once it was noted.
    pub sent: Option<SentRecord>,
    /// When a voice fallback was placed for it (epoch ms), if one was.
    pub fallback_ms: Option<i64>,
}

/// A request to claim an event.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub event_id: &'a EventId,
    pub channel: Channel,
    pub owner: &'a str,
    /// Okta's request id, stored on the record when known.
    pub correlation_id: Option<&'a str>,
    /// The destination's ISO country (never the number), for reports by
    /// country.
    pub country: Option<&'a str>,
    /// The keyed hash of the destination number, stored on the record.
    pub destination: Option<&'a str>,
    pub now_ms: i64,
    pub lease_ms: i64,
    /// When the record may be deleted (epoch seconds).
    pub expires_at: i64,
    /// Whether the claim is for a send, counted in `attempts`. The ingress
    /// with the fast path off claims only to queue the job and hand it
    /// over, so Okta's retries of one hook do not count as tries.
    pub sends: bool,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the claim; `attempts` counts this one.
    Claimed {
        attempts: u32,
    },
    /// Already sent: answer with the stored message id, send nothing.
    AlreadySent {
        message_id: Option<String>,
    },
    AlreadyFailed {
        reason: Option<String>,
    },
    AlreadyExpired,
    /// Refused by the guard earlier and answered as blocked.
    AlreadyBlocked {
        reason: Option<String>,
    },
    /// Someone else holds a live lease.
    Busy {
        lease_until_ms: i64,
    },
}

/// A send the provider accepted ([`Claims::mark_sent`]): its message id
/// and the route it took.
#[derive(Debug, Clone)]
pub struct SendConfirmed<'a> {
    pub event_id: &'a EventId,
    pub message_id: &'a str,
    pub route: Route,
    pub now_ms: i64,
}

/// A claim ended without a send ([`Claims::end_claim`]): by its holder,
/// how, and why.
#[derive(Debug, Clone)]
pub struct EndClaim<'a> {
    pub event_id: &'a EventId,
    /// The holder's token; anyone else's ending is refused.
    pub owner: &'a str,
    pub end: ClaimEnd,
    pub reason: &'a str,
    pub now_ms: i64,
}

/// How a claim ends when no send was confirmed ([`Claims::end_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimEnd {
    /// A permanent failure: FAILED.
    Failed,
    /// A guard refusal answered as blocked: BLOCKED.
    Blocked,
    /// A retryable failure: still IN_PROGRESS, its lease given up so the
    /// next try need not wait for it.
    Released,
}

impl ClaimEnd {
    /// The status the record ends in; `None` keeps IN_PROGRESS.
    pub fn status(self) -> Option<Status> {
        match self {
            ClaimEnd::Failed => Some(Status::Failed),
            ClaimEnd::Blocked => Some(Status::Blocked),
            ClaimEnd::Released => None,
        }
    }
}

/// Claiming an event, ending the claim, and reading the record.
#[async_trait]
pub trait Claims: Send + Sync + std::fmt::Debug {
    async fn claim(&self, claim: &Claim<'_>) -> Result<ClaimOutcome, LedgerError>;

    /// Records a confirmed send. Succeeds whoever holds the claim (the
    /// provider accepted the message, which is the fact that matters), but
    /// never overwrites an earlier `SENT`.
    async fn mark_sent(&self, sent: &SendConfirmed<'_>) -> Result<(), LedgerError>;

    /// Ends the claim without a send, as `end` says, keeping `reason`:
    /// FAILED or BLOCKED for good, or released for the next try. Only the
    /// claim's holder may; anyone else gets [`LedgerError::LostClaim`].
    async fn end_claim(&self, ending: &EndClaim<'_>) -> Result<(), LedgerError>;

    /// Records that the OTP expired unsent. Never overwrites SENT or FAILED.
    async fn mark_expired(
        &self,
        event_id: &EventId,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), LedgerError>;

    async fn get(&self, event_id: &EventId) -> Result<Option<LedgerRecord>, LedgerError>;
}

/// What a claim attempt should report when the condition fails, given the
/// record that made it fail. Shared by the adapters so they agree exactly.
pub fn outcome_of_conflict(existing: &LedgerRecord) -> ClaimOutcome {
    match existing.status {
        Status::Sent => ClaimOutcome::AlreadySent {
            message_id: existing.message_id.clone(),
        },
        Status::Failed => ClaimOutcome::AlreadyFailed {
            reason: existing.failure.clone(),
        },
        Status::Expired => ClaimOutcome::AlreadyExpired,
        Status::Blocked => ClaimOutcome::AlreadyBlocked {
            reason: existing.failure.clone(),
        },
        Status::InProgress => ClaimOutcome::Busy {
            lease_until_ms: existing.lease_until_ms,
        },
    }
}

/// The claim condition, stated once: no record, or an in-progress record
/// whose lease ran out.
pub fn claimable(existing: Option<&LedgerRecord>, now_ms: i64) -> bool {
    match existing {
        None => true,
        Some(r) => r.status == Status::InProgress && r.lease_until_ms <= now_ms,
    }
}
