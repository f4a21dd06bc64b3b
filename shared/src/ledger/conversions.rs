//! Conversions: what a confirmed send leaves for matching, Okta's word
//! that a code was used matched to it, and the one decision (CONVERTED or
//! UNUSED) each send gets; Okta's event hook events remembered once.

use async_trait::async_trait;

use super::LedgerError;
use crate::domain::channel::Channel;
use crate::domain::{Conversion, EventId, UseSignal};

/// What the ledger keeps of a confirmed send for conversion and reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Matching sends to Okta's word that their codes were used.
#[async_trait]
pub trait Conversions: Send + Sync + std::fmt::Debug {
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
}
