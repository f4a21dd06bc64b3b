//! The idempotency ledger: one record per Okta `eventId`, claimed by
//! conditional write so that a code is sent by one worker at a time and never
//! again once a send was confirmed.
//!
//! Record life: `IN_PROGRESS` (claimed, with a lease in epoch milliseconds)
//! then `SENT`, `FAILED` or `EXPIRED`, all terminal. A claim succeeds when
//! there is no record, or the record is `IN_PROGRESS` with a lease that has
//! run out. Releasing a claim after a retryable failure sets the lease to 0,
//! so the dispatcher can claim it at once; `attempts` counts claims.
//! Expiry is enforced by these conditions, never by the TTL attribute
//! (DynamoDB deletes expired items late).
//!
//! Rate-limit records live in the same table: `rate#<scope>#<key>#<window>`
//! with a count, the set of event ids counted, and a TTL. Counting is one
//! conditional write, and an event id already in the set is not counted
//! again, so a replayed hook never counts twice.
//!
//! A final delivery receipt from the provider is added to the event's record
//! (`delivery` and the fields beside it), once: the first one stands.
//!
//! After a send, the record also takes what conversion needs
//! ([`SendNote`]): when it was sent, when its code expires, the number's
//! prefix, the kind of code (`signal`: which Okta event shows it used),
//! whether the learning guard judges it (`guardJudged`) and, as
//! `userChannel`, the keyed hash of the Okta user id with the signal and
//! the channel (the key of the `byUser` index a sign-in is matched by).
//! Then, once, `CONVERTED` (Okta's event matched it) or `UNUSED` (its code
//! expired first). The guard may judge a pending code unused earlier
//! (`judgedAt`), without deciding it: a later sign-in still converts it.
//!
//! The learning guard keeps its counts here too: `stat#<scope>#<key>#<window>`
//! (codes judged and codes used per prefix or country and window, with a
//! TTL), and its blocks as `blk#<scope>#<key>` ([`GuardBlock`]). Okta's
//! event hook events are remembered by uuid (`evh#<uuid>`, with a TTL), so
//! a batch delivered twice counts once.
//!
//! The ledger never holds the OTP or the phone number (rate keys are keyed
//! hashes; a prefix keeps at least four digits back).

pub mod dynamo;
pub mod memory;

pub use dynamo::DynamoLedger;
pub use memory::InMemoryLedger;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::channel::Channel;
use crate::domain::{Conversion, DeliveryVerdict, EventId, Receipt, UseSignal};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub event_id: String,
    pub status: Status,
    /// Epoch ms until which the current claim holds; 0 once released.
    pub lease_until_ms: i64,
    pub attempts: u32,
    pub channel: Option<Channel>,
    pub message_id: Option<String>,
    pub failure: Option<String>,
    /// Random token of the current claim holder.
    pub owner: Option<String>,
    /// Okta's request id (`data.context.request.id`), to follow one sign-in
    /// from Okta's System Log to this record.
    pub correlation_id: Option<String>,
    /// The destination's ISO country, when known.
    pub country: Option<String>,
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

/// What the ledger keeps of a confirmed send for conversion and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub sent_ms: i64,
    pub otp_expires_ms: i64,
    /// The number's first digits ([`crate::domain::prefix_of`]).
    pub prefix: String,
    /// `<keyed hash of the Okta user id>#<signal>#<channel>`, when the hook
    /// named a user and a kind of code Okta shows used.
    pub user_channel: Option<String>,
    /// Which Okta event shows this code used, if any.
    pub signal: Option<UseSignal>,
    /// Whether the learning guard judges this code.
    pub guard: bool,
    /// When the guard judged it unused while it was still pending.
    pub judged_ms: Option<i64>,
    /// `CONVERTED` or `UNUSED`, and when it was decided (epoch ms).
    pub conversion: Option<(Conversion, i64)>,
}

/// A confirmed send, noted for conversion and the learning guard.
#[derive(Debug, Clone)]
pub struct SendNote<'a> {
    pub event_id: &'a EventId,
    /// Keyed hash of the Okta user id.
    pub user_key: Option<&'a str>,
    pub channel: Channel,
    /// Which Okta event shows the code used (none: it cannot be matched).
    pub signal: Option<UseSignal>,
    /// Whether the learning guard judges it.
    pub guard: bool,
    pub prefix: &'a str,
    pub sent_ms: i64,
    pub otp_expires_ms: i64,
}

impl SendNote<'_> {
    /// The `byUser` index key, when the send can be matched at all.
    pub fn index_key(&self) -> Option<String> {
        Some(user_channel(self.user_key?, self.signal?, self.channel))
    }
}

/// The index key a send is found by: user, kind of code, channel.
pub fn user_channel(user_key: &str, signal: UseSignal, channel: Channel) -> String {
    format!("{user_key}#{}#{}", signal.as_str(), channel.as_str())
}

/// Okta's word that a code was used (a sign-in, a finished enrollment, a
/// reset or an unlock), to be matched to the send it used.
#[derive(Debug, Clone)]
pub struct SignIn<'a> {
    pub user_key: &'a str,
    pub signal: UseSignal,
    /// `None` when Okta does not say (Identity Engine's phone
    /// authenticator covers both): the latest send on either.
    pub channel: Option<Channel>,
    /// When it happened (epoch ms). Only a send made at or before it, whose
    /// code was still valid then, can be the one used.
    pub at_ms: i64,
}

impl SignIn<'_> {
    /// The index keys to look under, one per channel it may be.
    pub fn index_keys(&self) -> Vec<String> {
        let channels = match self.channel {
            Some(c) => vec![c],
            None => vec![Channel::Sms, Channel::Voice],
        };
        channels
            .into_iter()
            .map(|c| user_channel(self.user_key, self.signal, c))
            .collect()
    }
}

/// A send whose conversion was just decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub event_id: String,
    pub message_id: Option<String>,
    pub country: Option<String>,
    pub prefix: Option<String>,
    pub channel: Option<Channel>,
    pub sent_ms: i64,
    pub otp_expires_ms: i64,
    pub signal: Option<UseSignal>,
    /// Whether the learning guard judges this code.
    pub guard: bool,
    /// Whether the guard had judged it before this decision (so it was
    /// counted then, and must not be counted as judged again).
    pub was_judged: bool,
}

/// What matching a sign-in found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInMatch {
    /// The user's latest send of that kind before it, now `CONVERTED`.
    Converted(Resolution),
    /// No send of that kind to this user before it is on record.
    NoSend,
    /// The latest send's code had expired before the sign-in.
    Expired,
    /// The latest send was already decided (a replayed event, or a second
    /// sign-in with the same code).
    AlreadyResolved,
}

/// Codes judged (used, or judged unused) and codes used, of one prefix or
/// country in one window. Pending codes are in neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatCounts {
    pub judged: u32,
    pub conversions: u32,
}

/// Adds to the counts of one prefix or country in one window.
#[derive(Debug, Clone)]
pub struct StatBump<'a> {
    /// `pfx` or `cty`.
    pub scope: &'a str,
    pub key: &'a str,
    pub window: i64,
    pub judged: u32,
    pub conversions: u32,
    /// TTL attribute, epoch seconds.
    pub expires_at: i64,
}

impl StatBump<'_> {
    pub fn record_key(&self) -> String {
        format!("stat#{}#{}#{}", self.scope, self.key, self.window)
    }
}

/// The key and window of a `stat#<scope>#<key>#<window>` record key of
/// this scope.
pub fn stat_key_parts(record_key: &str, scope: &str) -> Option<(String, i64)> {
    let rest = record_key.strip_prefix("stat#")?.strip_prefix(scope)?;
    let rest = rest.strip_prefix('#')?;
    let (key, window) = rest.rsplit_once('#')?;
    Some((key.to_owned(), window.parse().ok()?))
}

/// What a guard block entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Learned from the counts; holds until `until_ms`.
    Learned,
    /// Set by an operator; holds until lifted.
    Pinned,
    /// Lifted by an operator: nothing is blocked, and the guard does not
    /// learn a new block before `until_ms` (the counts that made the old
    /// one are still in the window).
    Lifted,
    /// Set by an operator: never blocked by learning.
    Allowed,
}

impl BlockKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BlockKind::Learned => "LEARNED",
            BlockKind::Pinned => "PINNED",
            BlockKind::Lifted => "LIFTED",
            BlockKind::Allowed => "ALLOWED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "LEARNED" => BlockKind::Learned,
            "PINNED" => BlockKind::Pinned,
            "LIFTED" => BlockKind::Lifted,
            "ALLOWED" => BlockKind::Allowed,
            _ => return None,
        })
    }
}

/// One entry of the guard's block list, for a prefix (`pfx`) or a country
/// (`cty`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardBlock {
    pub scope: String,
    pub key: String,
    pub kind: BlockKind,
    /// Until when it holds (epoch ms); `None` for pinned and allowed.
    pub until_ms: Option<i64>,
    /// Why, in words an operator reads (counts and rates, never a number).
    pub reason: String,
    /// The window's counts when it was written: codes judged, codes used.
    pub judged: u32,
    pub conversions: u32,
    pub since_ms: i64,
}

impl GuardBlock {
    pub fn record_key(&self) -> String {
        block_key(&self.scope, &self.key)
    }

    /// Whether it stops sends at `now_ms`.
    pub fn blocks(&self, now_ms: i64) -> bool {
        match self.kind {
            BlockKind::Pinned => true,
            BlockKind::Learned => self.until_ms.is_some_and(|u| u > now_ms),
            BlockKind::Lifted | BlockKind::Allowed => false,
        }
    }

    /// Whether learning may replace it at `now_ms`.
    pub fn learnable(&self, now_ms: i64) -> bool {
        match self.kind {
            BlockKind::Pinned | BlockKind::Allowed => false,
            BlockKind::Learned | BlockKind::Lifted => self.until_ms.is_none_or(|u| u <= now_ms),
        }
    }
}

pub fn block_key(scope: &str, key: &str) -> String {
    format!("blk#{scope}#{key}")
}

/// What the ledger keeps of a final delivery receipt (never the number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub delivery: DeliveryVerdict,
    /// The provider's event type and status, and its description.
    pub event_type: String,
    pub status: Option<String>,
    pub description: Option<String>,
    pub mcc: Option<String>,
    pub mnc: Option<String>,
    /// From the send request to the report, in milliseconds.
    pub delivery_ms: Option<i64>,
    /// The provider's message id the receipt is about.
    pub message_id: String,
    /// When the provider reported it (epoch ms).
    pub reported_at_ms: i64,
}

impl From<&Receipt> for DeliveryRecord {
    fn from(r: &Receipt) -> Self {
        DeliveryRecord {
            delivery: r.delivery,
            event_type: r.event_type.clone(),
            status: r.status.clone(),
            description: r.description.clone(),
            mcc: r.mcc.clone(),
            mnc: r.mnc.clone(),
            delivery_ms: r.delivery_ms,
            message_id: r.message_id.clone(),
            reported_at_ms: r.reported_at_ms,
        }
    }
}

/// What recording a receipt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryRecorded {
    /// The first final receipt of the event, now on its record.
    Recorded,
    /// The receipt names a message other than the one the record was sent
    /// as: not applied (a receipt must be about our send to change it).
    OtherMessage,
    /// The record already holds a final receipt (SNS delivers at least
    /// once, and a call can be both answered and completed): the first
    /// one stands.
    Duplicate,
    /// No record of the event: not one of our sends, or one whose record
    /// has expired. Nothing is written.
    UnknownEvent,
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

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// Throttling, timeouts, 5xx: worth retrying.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// Access denied, missing table, bad request: retrying will not help.
    #[error("ledger refused the request: {0}")]
    Rejected(String),
    /// The caller's claim was taken over (its lease ran out).
    #[error("the claim is no longer held")]
    LostClaim,
}

/// How a claim ends when no send was confirmed ([`Ledger::end_claim`]).
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

impl LedgerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::Unavailable(_))
    }
}

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

#[async_trait]
pub trait Ledger: Send + Sync + std::fmt::Debug {
    /// Counts the event in its window unless the window is full; an event
    /// already counted in this window is allowed without counting again.
    async fn count(&self, c: &RateCount<'_>) -> Result<RateDecision, LedgerError>;

    async fn claim(&self, claim: &Claim<'_>) -> Result<ClaimOutcome, LedgerError>;

    /// Records a confirmed send. Succeeds whoever holds the claim (the
    /// provider accepted the message, which is the fact that matters), but
    /// never overwrites an earlier `SENT`.
    async fn mark_sent(
        &self,
        event_id: &EventId,
        message_id: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError>;

    /// Ends the claim without a send, as `end` says, keeping `reason`:
    /// FAILED or BLOCKED for good, or released for the next try. Only the
    /// claim's holder may; anyone else gets [`LedgerError::LostClaim`].
    async fn end_claim(
        &self,
        event_id: &EventId,
        owner: &str,
        end: ClaimEnd,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError>;

    /// Records that the OTP expired unsent. Never overwrites SENT or FAILED.
    async fn mark_expired(
        &self,
        event_id: &EventId,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), LedgerError>;

    async fn get(&self, event_id: &EventId) -> Result<Option<LedgerRecord>, LedgerError>;

    /// Records a final delivery receipt on the event's record, whatever
    /// its status (a receipt can arrive before the send is marked SENT;
    /// marking it later keeps the receipt). The first final receipt stands;
    /// an event without a record gets none, and a record sent as another
    /// message than the receipt's is left alone.
    async fn record_delivery(
        &self,
        receipt: &Receipt,
        now_ms: i64,
    ) -> Result<DeliveryRecorded, LedgerError>;

    /// Notes a confirmed send for conversion (once it is `SENT`; a record
    /// that is gone takes nothing).
    async fn note_send(&self, note: &SendNote<'_>) -> Result<(), LedgerError>;

    /// Matches Okta's event to the user's latest send of that kind made at
    /// or before it (on its channel, or either when it names none) and
    /// marks it `CONVERTED`, unless its code had expired by then or it was
    /// decided.
    async fn convert(&self, sign_in: &SignIn<'_>) -> Result<SignInMatch, LedgerError>;

    /// Judges a pending send unused for the learning guard (`judgedAt`),
    /// once; `None` when it is converted, decided, judged before, not one
    /// the guard judges, or gone. The send stays open to a conversion.
    async fn judge(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError>;

    /// Remembers one of Okta's event hook events by its `uuid` until
    /// `expires_at` (epoch seconds); `false` when it was seen before.
    async fn first_sight(&self, uuid: &str, expires_at: i64) -> Result<bool, LedgerError>;

    /// Marks a sent code `UNUSED` once it has expired without a
    /// conversion; `None` when it was converted, decided, never sent, or
    /// has not expired yet.
    async fn mark_unused(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError>;

    /// Adds to a window's counts; returns the counts after.
    async fn bump(&self, bump: &StatBump<'_>) -> Result<StatCounts, LedgerError>;

    /// The block entries of these `(scope, key)` pairs that exist.
    async fn blocks(&self, keys: &[(&str, &str)]) -> Result<Vec<GuardBlock>, LedgerError>;

    /// Writes a learned block unless an entry that learning may not
    /// replace is there; `false` when it was not written.
    async fn learn_block(&self, block: &GuardBlock, now_ms: i64) -> Result<bool, LedgerError>;

    /// Writes an operator's entry (pin, allow, lift) over whatever is there.
    async fn set_block(&self, block: &GuardBlock) -> Result<(), LedgerError>;

    /// Every block entry.
    async fn list_blocks(&self) -> Result<Vec<GuardBlock>, LedgerError>;

    /// Takes the one voice fallback a sent event may have; `false` when it
    /// was taken before, or the event is not `SENT`.
    async fn claim_fallback(&self, event_id: &EventId, now_ms: i64) -> Result<bool, LedgerError>;
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
