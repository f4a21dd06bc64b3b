//! The ledger's rules over plain tables, written once for the two embedded
//! adapters: in memory ([`super::memory`]) and SQLite ([`super::sqlite`]).
//! DynamoDB states the same rules as conditional expressions
//! ([`super::dynamo`]); the port suites hold all three to one behaviour.
//!
//! A [`Store`] runs each operation as one transaction over [`Tables`]:
//! event records (with the `byUser` index's key) and keyed items named as
//! DynamoDB's single table names them (`rate#…`, `stat#…`, `blk#…`,
//! `evh#…`, `lst#…`). What a conditional write checks on DynamoDB is
//! checked here inside the transaction, so two writers (two tasks, or two
//! processes on one SQLite file) cannot both pass it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::{Conversion, EventId, Receipt};

/// One keyed item beside the event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    /// A rate window's count (`rate#<scope>#<key>#<window>`).
    Counter(u32),
    /// An event counted in that window (`<window key>#<event id>`), so a
    /// replayed hook is not counted twice.
    Counted,
    /// A learning-guard window's counts.
    Stat(StatCounts),
    /// A guard block entry.
    Block(GuardBlock),
    /// An Okta event hook event seen (`evh#<uuid>`).
    Seen,
    /// The last send to one person (`lst#<key>`).
    LastSend(LastSend),
}

/// What one transaction can read and write.
pub trait Tables {
    fn record(&mut self, event_id: &str) -> Result<Option<LedgerRecord>, LedgerError>;
    fn put_record(&mut self, record: LedgerRecord) -> Result<(), LedgerError>;
    /// The `byUser` index: the latest send under one of `keys` at or before
    /// `at_ms`.
    fn latest_send(
        &mut self,
        keys: &[String],
        at_ms: i64,
    ) -> Result<Option<LedgerRecord>, LedgerError>;
    /// Every record, in event id order.
    fn records(&mut self) -> Result<Vec<LedgerRecord>, LedgerError>;
    fn item(&mut self, key: &str) -> Result<Option<Item>, LedgerError>;
    /// Writes an item; `expires_at` (epoch s) is when the store may drop it.
    fn put_item(&mut self, key: &str, item: Item, expires_at: i64) -> Result<(), LedgerError>;
    /// Every item whose key starts with `prefix`, in key order.
    fn items_under(&mut self, prefix: &str) -> Result<Vec<(String, Item)>, LedgerError>;
}

/// Runs one operation as one transaction.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// A transaction that only reads.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError>;
    /// A transaction that may write: no other writer runs until it ends.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError>;
}

/// The ledger on a [`Store`].
#[derive(Debug, Default)]
pub struct TableLedger<S> {
    store: S,
}

impl<S: Store> TableLedger<S> {
    pub fn on(store: S) -> Self {
        TableLedger { store }
    }

    /// Every record, for reconciliation and reports.
    pub fn records(&self) -> Result<Vec<LedgerRecord>, LedgerError> {
        self.store.read(|t| t.records())
    }

    /// The counts of one scope (`stat#<scope>#<key>#<window>`), as
    /// (key, window, counts), for reports.
    pub fn stats(&self, scope: &str) -> Result<Vec<(String, i64, StatCounts)>, LedgerError> {
        let items = self
            .store
            .read(|t| t.items_under(&format!("stat#{scope}#")))?;
        Ok(items
            .into_iter()
            .filter_map(|(k, item)| {
                let (key, window) = stat_key_parts(&k, scope)?;
                match item {
                    Item::Stat(c) => Some((key, window, c)),
                    _ => None,
                }
            })
            .collect())
    }

    /// Changes an undecided send (`SENT`, no conversion) that also meets
    /// `when`, as one conditional write would; `None` when it does not.
    fn decide(
        &self,
        event_id: &EventId,
        now_ms: i64,
        when: impl FnOnce(&SentRecord) -> bool,
        change: impl FnOnce(&mut SentRecord),
    ) -> Result<Option<Resolution>, LedgerError> {
        self.store.write(|t| {
            let Some(mut r) = t.record(event_id.as_str())? else {
                return Ok(None);
            };
            let Some(sent) = r.sent.as_mut() else {
                return Ok(None);
            };
            if r.status != Status::Sent || sent.conversion.is_some() || !when(sent) {
                return Ok(None);
            }
            change(sent);
            r.updated_at_ms = now_ms;
            let resolved = resolution(&r);
            t.put_record(r)?;
            Ok(Some(resolved))
        })
    }
}

/// A claim's new record, keeping what the claim does not set, as
/// DynamoDB's update keeps the attributes it does not name.
fn claimed(existing: Option<LedgerRecord>, c: &Claim<'_>, attempts: u32) -> LedgerRecord {
    let fresh = record(
        c.event_id,
        Status::InProgress,
        attempts,
        c.now_ms,
        c.expires_at,
    );
    let old = existing.unwrap_or_else(|| fresh.clone());
    LedgerRecord {
        lease_until_ms: c.now_ms + c.lease_ms,
        channel: Some(c.channel),
        failure: old.failure,
        delivery: old.delivery,
        sent: old.sent,
        fallback_ms: old.fallback_ms,
        owner: Some(c.owner.to_owned()),
        correlation_id: c.correlation_id.map(str::to_owned).or(old.correlation_id),
        country: c.country.map(str::to_owned).or(old.country),
        destination: c.destination.map(str::to_owned).or(old.destination),
        ..fresh
    }
}

#[async_trait]
impl<S: Store> Claims for TableLedger<S> {
    async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, LedgerError> {
        self.store.write(|t| {
            let existing = t.record(c.event_id.as_str())?;
            if !claimable(existing.as_ref(), c.now_ms) {
                // Unwrap-free: not claimable implies a record exists.
                return Ok(existing
                    .as_ref()
                    .map(outcome_of_conflict)
                    .unwrap_or(ClaimOutcome::AlreadyExpired));
            }
            let attempts = existing.as_ref().map_or(0, |r| r.attempts) + u32::from(c.sends);
            t.put_record(claimed(existing, c, attempts))?;
            Ok(ClaimOutcome::Claimed { attempts })
        })
    }

    async fn mark_sent(&self, sent: &SendConfirmed<'_>) -> Result<(), LedgerError> {
        self.store.write(|t| {
            let mut r = t.record(sent.event_id.as_str())?.unwrap_or_else(|| {
                record(
                    sent.event_id,
                    Status::InProgress,
                    1,
                    sent.now_ms,
                    sent.now_ms / 1000 + 86_400,
                )
            });
            if r.status == Status::Sent {
                return Ok(());
            }
            r.status = Status::Sent;
            r.failure = None;
            r.message_id = Some(sent.message_id.to_owned());
            r.route = Some(sent.route);
            r.lease_until_ms = 0;
            r.updated_at_ms = sent.now_ms;
            t.put_record(r)
        })
    }

    /// Only the holder ends a claim: it records the reason, ends the
    /// lease, and moves to the end's status when it has one.
    async fn end_claim(&self, e: &EndClaim<'_>) -> Result<(), LedgerError> {
        self.store.write(|t| match t.record(e.event_id.as_str())? {
            Some(mut r)
                if r.status == Status::InProgress && r.owner.as_deref() == Some(e.owner) =>
            {
                r.status = e.end.status().unwrap_or(r.status);
                r.failure = Some(e.reason.to_owned());
                r.lease_until_ms = 0;
                r.updated_at_ms = e.now_ms;
                t.put_record(r)
            }
            _ => Err(LedgerError::LostClaim),
        })
    }

    async fn mark_expired(
        &self,
        event_id: &EventId,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), LedgerError> {
        self.store.write(|t| match t.record(event_id.as_str())? {
            None => t.put_record(record(event_id, Status::Expired, 0, now_ms, expires_at)),
            Some(mut r) if r.status == Status::InProgress => {
                r.status = Status::Expired;
                r.lease_until_ms = 0;
                r.updated_at_ms = now_ms;
                t.put_record(r)
            }
            Some(_) => Ok(()),
        })
    }

    async fn get(&self, event_id: &EventId) -> Result<Option<LedgerRecord>, LedgerError> {
        self.store.read(|t| t.record(event_id.as_str()))
    }
}

#[async_trait]
impl<S: Store> RateCounts for TableLedger<S> {
    async fn count(&self, c: &RateCount<'_>) -> Result<RateDecision, LedgerError> {
        let key = c.record_key();
        let member = format!("{key}#{}", c.event_id.as_str());
        self.store.write(|t| {
            let n = match t.item(&key)? {
                Some(Item::Counter(n)) => n,
                _ => 0,
            };
            if t.item(&member)?.is_some() {
                return Ok(RateDecision::Allowed { count: n });
            }
            if n >= c.limit {
                return Ok(RateDecision::Refused { count: n });
            }
            t.put_item(&key, Item::Counter(n + 1), c.expires_at)?;
            t.put_item(&member, Item::Counted, c.expires_at)?;
            Ok(RateDecision::Allowed { count: n + 1 })
        })
    }
}

#[async_trait]
impl<S: Store> ReceiptLog for TableLedger<S> {
    async fn record_delivery(
        &self,
        receipt: &Receipt,
        now_ms: i64,
    ) -> Result<DeliveryRecorded, LedgerError> {
        self.store
            .write(|t| match t.record(receipt.event_id.as_str())? {
                None => Ok(DeliveryRecorded::UnknownEvent),
                Some(r) if r.delivery.is_some() => Ok(DeliveryRecorded::Duplicate),
                Some(r)
                    if r.message_id
                        .as_deref()
                        .is_some_and(|m| m != receipt.message_id) =>
                {
                    Ok(DeliveryRecorded::OtherMessage)
                }
                Some(mut r) => {
                    r.delivery = Some(DeliveryRecord::from(receipt));
                    r.updated_at_ms = now_ms;
                    t.put_record(r)?;
                    Ok(DeliveryRecorded::Recorded)
                }
            })
    }

    async fn claim_fallback(&self, event_id: &EventId, now_ms: i64) -> Result<bool, LedgerError> {
        self.store.write(|t| match t.record(event_id.as_str())? {
            Some(mut r) if r.status == Status::Sent && r.fallback_ms.is_none() => {
                r.fallback_ms = Some(now_ms);
                t.put_record(r)?;
                Ok(true)
            }
            _ => Ok(false),
        })
    }
}

#[async_trait]
impl<S: Store> Conversions for TableLedger<S> {
    async fn note_send(&self, note: &SendNote<'_>) -> Result<(), LedgerError> {
        self.store.write(|t| {
            let Some(mut r) = t.record(note.event_id.as_str())? else {
                return Ok(());
            };
            let conversion = r.sent.as_ref().and_then(|s| s.conversion);
            let judged_ms = r.sent.as_ref().and_then(|s| s.judged_ms);
            r.sent = Some(SentRecord {
                sent_ms: note.sent_ms,
                otp_expires_ms: note.otp_expires_ms,
                prefix: note.prefix.to_owned(),
                user_channel: note.index_key(),
                signal: note.signal,
                guard: note.guard,
                judged_ms,
                conversion,
            });
            t.put_record(r)
        })
    }

    async fn convert(&self, sign_in: &SignIn<'_>) -> Result<SignInMatch, LedgerError> {
        let keys = sign_in.index_keys();
        self.store.write(|t| {
            let Some(mut r) = t.latest_send(&keys, sign_in.at_ms)? else {
                return Ok(SignInMatch::NoSend);
            };
            let Some(sent) = r.sent.as_mut() else {
                return Ok(SignInMatch::NoSend);
            };
            if sent.otp_expires_ms < sign_in.at_ms {
                return Ok(SignInMatch::Expired);
            }
            if r.status != Status::Sent || sent.conversion.is_some() {
                return Ok(SignInMatch::AlreadyResolved);
            }
            sent.conversion = Some((Conversion::Converted, sign_in.at_ms));
            r.updated_at_ms = sign_in.at_ms;
            let resolved = resolution(&r);
            t.put_record(r)?;
            Ok(SignInMatch::Converted(resolved))
        })
    }

    async fn judge(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError> {
        let judged = self.decide(
            event_id,
            now_ms,
            |s| s.guard && s.judged_ms.is_none(),
            |s| s.judged_ms = Some(now_ms),
        )?;
        // Reported as before this judgement, as DynamoDB's conditional
        // update tells it.
        Ok(judged.map(|r| Resolution {
            was_judged: false,
            ..r
        }))
    }

    async fn first_sight(&self, uuid: &str, expires_at: i64) -> Result<bool, LedgerError> {
        let key = format!("evh#{uuid}");
        self.store.write(|t| {
            if t.item(&key)?.is_some() {
                return Ok(false);
            }
            t.put_item(&key, Item::Seen, expires_at)?;
            Ok(true)
        })
    }

    async fn mark_unused(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError> {
        self.decide(
            event_id,
            now_ms,
            |s| s.otp_expires_ms <= now_ms,
            |s| s.conversion = Some((Conversion::Unused, now_ms)),
        )
    }
}

#[async_trait]
impl<S: Store> GuardBook for TableLedger<S> {
    async fn bump(&self, bump: &StatBump<'_>) -> Result<StatCounts, LedgerError> {
        let key = bump.record_key();
        self.store.write(|t| {
            let mut c = match t.item(&key)? {
                Some(Item::Stat(c)) => c,
                _ => StatCounts::default(),
            };
            c.judged += bump.judged;
            c.conversions += bump.conversions;
            t.put_item(&key, Item::Stat(c), bump.expires_at)?;
            Ok(c)
        })
    }

    async fn blocks(&self, keys: &[(&str, &str)]) -> Result<Vec<GuardBlock>, LedgerError> {
        self.store.read(|t| {
            let mut found = Vec::new();
            for (scope, key) in keys {
                if let Some(Item::Block(b)) = t.item(&block_key(scope, key))? {
                    found.push(b);
                }
            }
            Ok(found)
        })
    }

    async fn learn_block(&self, block: &GuardBlock, now_ms: i64) -> Result<bool, LedgerError> {
        let key = block.record_key();
        self.store.write(|t| {
            if let Some(Item::Block(old)) = t.item(&key)?
                && !old.learnable(now_ms)
            {
                return Ok(false);
            }
            t.put_item(&key, Item::Block(block.clone()), NEVER)?;
            Ok(true)
        })
    }

    async fn set_block(&self, block: &GuardBlock) -> Result<(), LedgerError> {
        self.store
            .write(|t| t.put_item(&block.record_key(), Item::Block(block.clone()), NEVER))
    }

    async fn list_blocks(&self) -> Result<Vec<GuardBlock>, LedgerError> {
        let items = self.store.read(|t| t.items_under("blk#"))?;
        let mut v: Vec<GuardBlock> = items
            .into_iter()
            .filter_map(|(_, item)| match item {
                Item::Block(b) => Some(b),
                _ => None,
            })
            .collect();
        v.sort_by(|a, b| (&a.scope, &a.key).cmp(&(&b.scope, &b.key)));
        Ok(v)
    }
}

#[async_trait]
impl<S: Store> Resends for TableLedger<S> {
    async fn last_send(&self, key: &str) -> Result<Option<LastSend>, LedgerError> {
        let key = LastSend::record_key(key);
        self.store.read(|t| {
            Ok(match t.item(&key)? {
                Some(Item::LastSend(last)) => Some(last),
                _ => None,
            })
        })
    }

    /// `expires_at` is the store's cleanup; whoever reads judges the window.
    async fn note_last_send(
        &self,
        key: &str,
        last: &LastSend,
        expires_at: i64,
    ) -> Result<(), LedgerError> {
        let key = LastSend::record_key(key);
        self.store
            .write(|t| t.put_item(&key, Item::LastSend(last.clone()), expires_at))
    }
}

/// Guard entries have no TTL (as on DynamoDB): a pin holds until lifted.
const NEVER: i64 = i64::MAX;

/// A record with no lease, owner, channel, message id or failure, as a
/// write that finds no record creates it (DynamoDB's update does the same).
fn record(
    event_id: &EventId,
    status: Status,
    attempts: u32,
    now_ms: i64,
    expires_at: i64,
) -> LedgerRecord {
    LedgerRecord {
        event_id: event_id.as_str().to_owned(),
        status,
        lease_until_ms: 0,
        attempts,
        channel: None,
        message_id: None,
        route: None,
        failure: None,
        owner: None,
        correlation_id: None,
        country: None,
        destination: None,
        updated_at_ms: now_ms,
        expires_at,
        delivery: None,
        sent: None,
        fallback_ms: None,
    }
}

fn resolution(r: &LedgerRecord) -> Resolution {
    Resolution {
        event_id: r.event_id.clone(),
        message_id: r.message_id.clone(),
        country: r.country.clone(),
        prefix: r.sent.as_ref().map(|s| s.prefix.clone()),
        channel: r.channel,
        sent_ms: r.sent.as_ref().map_or(0, |s| s.sent_ms),
        otp_expires_ms: r.sent.as_ref().map_or(0, |s| s.otp_expires_ms),
        signal: r.sent.as_ref().and_then(|s| s.signal),
        guard: r.sent.as_ref().is_some_and(|s| s.guard),
        was_judged: r.sent.as_ref().is_some_and(|s| s.judged_ms.is_some()),
    }
}
