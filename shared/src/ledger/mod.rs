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
//! A confirmed send records its route (`own` or `notify`). With two routes,
//! the last send to each person is kept as `lst#<key>` (a keyed hash of the
//! number and the user) for the resend window ([`Resends`]).
//!
//! The ledger never holds the OTP or the phone number (rate keys are keyed
//! hashes; a prefix keeps at least four digits back).

//!
//! The ledger is one table, but a flow reaches only the capability it
//! uses: [`Claims`], [`RateCounts`], [`ReceiptLog`], [`Conversions`] and
//! [`GuardBook`] and [`Resends`], each in its own file with its types. [`Ledger`] joins
//! them for the adapters; [`Parts`] hands them to the pipeline one by one,
//! so a test can replace one capability and keep the others.

pub mod claims;
pub mod conversions;
pub mod dynamo;
pub mod guard;
pub mod memory;
pub mod rates;
pub mod receipts;
pub mod resends;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod tables;

pub use claims::{
    Claim, ClaimEnd, ClaimOutcome, Claims, EndClaim, LedgerRecord, SendConfirmed, Status,
    claimable, outcome_of_conflict,
};
pub use conversions::{
    Conversions, Resolution, SendNote, SentRecord, SignIn, SignInMatch, user_channel,
};
pub use dynamo::DynamoLedger;
pub use guard::{
    BlockKind, GuardBlock, GuardBook, StatBump, StatCounts, block_key, stat_key_parts,
};
pub use memory::InMemoryLedger;
pub use rates::{RateCount, RateCounts, RateDecision};
pub use receipts::{DeliveryRecord, DeliveryRecorded, ReceiptLog};
pub use resends::{LastSend, Resends};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteLedger;

use std::sync::Arc;

use thiserror::Error;

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

impl LedgerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::Unavailable(_))
    }
}

/// Every capability of the ledger: what an adapter is.
pub trait Ledger: Claims + RateCounts + ReceiptLog + Conversions + GuardBook + Resends {}

impl<T: Claims + RateCounts + ReceiptLog + Conversions + GuardBook + Resends> Ledger for T {}

/// The ledger's capabilities, one handle each, as the pipeline holds them.
/// [`Parts::of`] takes them all from one adapter; a test that needs one
/// capability to misbehave replaces that field alone.
#[derive(Debug, Clone)]
pub struct Parts {
    pub claims: Arc<dyn Claims>,
    pub rates: Arc<dyn RateCounts>,
    pub receipts: Arc<dyn ReceiptLog>,
    pub conversions: Arc<dyn Conversions>,
    pub guard: Arc<dyn GuardBook>,
    pub resends: Arc<dyn Resends>,
}

impl Parts {
    pub fn of(ledger: Arc<dyn Ledger>) -> Self {
        Parts {
            claims: ledger.clone(),
            rates: ledger.clone(),
            receipts: ledger.clone(),
            conversions: ledger.clone(),
            guard: ledger.clone(),
            resends: ledger,
        }
    }
}
