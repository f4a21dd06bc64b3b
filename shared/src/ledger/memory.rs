//! The ledger in memory, for flow tests and local mode. It keeps DynamoDB's
//! conditional-write semantics: the same claim rules, the same counters.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::domain::{Conversion, EventId, Receipt};

/// The ledger in memory, with the same conditional semantics as DynamoDB.
#[derive(Debug, Default)]
pub struct InMemoryLedger {
    records: Mutex<HashMap<String, LedgerRecord>>,
    counters: Mutex<HashMap<String, (u32, std::collections::HashSet<String>)>>,
    stats: Mutex<HashMap<String, StatCounts>>,
    blocks: Mutex<HashMap<String, GuardBlock>>,
    /// Okta event uuids seen, with when they may be forgotten (epoch s).
    seen: Mutex<HashMap<String, i64>>,
    /// The last send to each person (resends).
    last_sends: Mutex<HashMap<String, LastSend>>,
}

impl InMemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, for reconciliation in tests and local mode.
    pub fn records(&self) -> Vec<LedgerRecord> {
        let map = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<LedgerRecord> = map.values().cloned().collect();
        v.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        v
    }

    /// The counts of one scope (`stat#<scope>#<key>#<window>`), as
    /// (key, window, counts), for reports.
    pub fn stats(&self, scope: &str) -> Vec<(String, i64, StatCounts)> {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, i64, StatCounts)> = stats
            .iter()
            .filter_map(|(k, c)| {
                let (key, window) = stat_key_parts(k, scope)?;
                Some((key, window, *c))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// Changes an undecided send (`SENT`, no conversion) that also meets
    /// `when`, as one conditional write would; `None` when it does not.
    fn decide(
        &self,
        event_id: &EventId,
        now_ms: i64,
        when: impl FnOnce(&SentRecord) -> bool,
        change: impl FnOnce(&mut SentRecord),
    ) -> Option<Resolution> {
        self.with(|map| {
            let r = map.get_mut(event_id.as_str())?;
            let sent = r.sent.as_mut()?;
            if r.status != Status::Sent || sent.conversion.is_some() || !when(sent) {
                return None;
            }
            change(sent);
            r.updated_at_ms = now_ms;
            Some(resolution(r))
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, LedgerRecord>) -> T) -> T {
        let mut map = self.records.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }
}

#[async_trait]
impl Claims for InMemoryLedger {
    async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, LedgerError> {
        self.with(|map| {
            let existing = map.get(c.event_id.as_str());
            if !claimable(existing, c.now_ms) {
                // Unwrap-free: not claimable implies a record exists.
                return Ok(existing
                    .map(outcome_of_conflict)
                    .unwrap_or(ClaimOutcome::AlreadyExpired));
            }
            let attempts = existing.map_or(0, |r| r.attempts) + u32::from(c.sends);
            map.insert(
                c.event_id.as_str().to_owned(),
                LedgerRecord {
                    lease_until_ms: c.now_ms + c.lease_ms,
                    channel: Some(c.channel),
                    failure: existing.and_then(|r| r.failure.clone()),
                    // An update keeps what it does not set, as DynamoDB's.
                    delivery: existing.and_then(|r| r.delivery.clone()),
                    sent: existing.and_then(|r| r.sent.clone()),
                    fallback_ms: existing.and_then(|r| r.fallback_ms),
                    owner: Some(c.owner.to_owned()),
                    correlation_id: c
                        .correlation_id
                        .map(str::to_owned)
                        .or_else(|| existing.and_then(|r| r.correlation_id.clone())),
                    country: c
                        .country
                        .map(str::to_owned)
                        .or_else(|| existing.and_then(|r| r.country.clone())),
                    ..record(
                        c.event_id,
                        Status::InProgress,
                        attempts,
                        c.now_ms,
                        c.expires_at,
                    )
                },
            );
            Ok(ClaimOutcome::Claimed { attempts })
        })
    }

    async fn mark_sent(&self, sent: &SendConfirmed<'_>) -> Result<(), LedgerError> {
        self.with(|map| {
            let r = map
                .entry(sent.event_id.as_str().to_owned())
                .or_insert_with(|| {
                    record(
                        sent.event_id,
                        Status::InProgress,
                        1,
                        sent.now_ms,
                        sent.now_ms / 1000 + 86_400,
                    )
                });
            if r.status != Status::Sent {
                r.status = Status::Sent;
                r.failure = None;
                r.message_id = Some(sent.message_id.to_owned());
                r.route = Some(sent.route);
                r.lease_until_ms = 0;
                r.updated_at_ms = sent.now_ms;
            }
            Ok(())
        })
    }

    /// Only the holder ends a claim: it records the reason, ends the
    /// lease, and moves to the end's status when it has one.
    async fn end_claim(&self, e: &EndClaim<'_>) -> Result<(), LedgerError> {
        self.with(|map| match map.get_mut(e.event_id.as_str()) {
            Some(r) if r.status == Status::InProgress && r.owner.as_deref() == Some(e.owner) => {
                r.status = e.end.status().unwrap_or(r.status);
                r.failure = Some(e.reason.to_owned());
                r.lease_until_ms = 0;
                r.updated_at_ms = e.now_ms;
                Ok(())
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
        self.with(|map| {
            let r = map
                .entry(event_id.as_str().to_owned())
                .or_insert_with(|| record(event_id, Status::Expired, 0, now_ms, expires_at));
            if r.status == Status::InProgress {
                r.status = Status::Expired;
                r.lease_until_ms = 0;
                r.updated_at_ms = now_ms;
            }
            Ok(())
        })
    }

    async fn get(&self, event_id: &EventId) -> Result<Option<LedgerRecord>, LedgerError> {
        Ok(self.with(|map| map.get(event_id.as_str()).cloned()))
    }
}

#[async_trait]
impl RateCounts for InMemoryLedger {
    async fn count(&self, c: &RateCount<'_>) -> Result<RateDecision, LedgerError> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let (n, ids) = counters.entry(c.record_key()).or_default();
        if ids.contains(c.event_id.as_str()) {
            return Ok(RateDecision::Allowed { count: *n });
        }
        if *n >= c.limit {
            return Ok(RateDecision::Refused { count: *n });
        }
        *n += 1;
        ids.insert(c.event_id.as_str().to_owned());
        Ok(RateDecision::Allowed { count: *n })
    }
}

#[async_trait]
impl ReceiptLog for InMemoryLedger {
    async fn record_delivery(
        &self,
        receipt: &Receipt,
        now_ms: i64,
    ) -> Result<DeliveryRecorded, LedgerError> {
        self.with(|map| {
            Ok(match map.get_mut(receipt.event_id.as_str()) {
                None => DeliveryRecorded::UnknownEvent,
                Some(r) if r.delivery.is_some() => DeliveryRecorded::Duplicate,
                Some(r)
                    if r.message_id
                        .as_deref()
                        .is_some_and(|m| m != receipt.message_id) =>
                {
                    DeliveryRecorded::OtherMessage
                }
                Some(r) => {
                    r.delivery = Some(DeliveryRecord::from(receipt));
                    r.updated_at_ms = now_ms;
                    DeliveryRecorded::Recorded
                }
            })
        })
    }

    async fn claim_fallback(&self, event_id: &EventId, now_ms: i64) -> Result<bool, LedgerError> {
        self.with(|map| match map.get_mut(event_id.as_str()) {
            Some(r) if r.status == Status::Sent && r.fallback_ms.is_none() => {
                r.fallback_ms = Some(now_ms);
                Ok(true)
            }
            _ => Ok(false),
        })
    }
}

#[async_trait]
impl Conversions for InMemoryLedger {
    async fn note_send(&self, note: &SendNote<'_>) -> Result<(), LedgerError> {
        self.with(|map| {
            if let Some(r) = map.get_mut(note.event_id.as_str()) {
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
            }
            Ok(())
        })
    }

    async fn convert(&self, sign_in: &SignIn<'_>) -> Result<SignInMatch, LedgerError> {
        let keys = sign_in.index_keys();
        self.with(|map| {
            // The index's order: the latest send at or before the sign-in.
            let latest = map
                .values_mut()
                .filter(|r| {
                    r.sent.as_ref().is_some_and(|s| {
                        s.sent_ms <= sign_in.at_ms
                            && s.user_channel.as_ref().is_some_and(|k| keys.contains(k))
                    })
                })
                .max_by_key(|r| r.sent.as_ref().map_or(0, |s| s.sent_ms));
            let Some(r) = latest else {
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
            Ok(SignInMatch::Converted(resolution(r)))
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
        );
        // Reported as before this judgement, as DynamoDB's conditional
        // update tells it.
        Ok(judged.map(|r| Resolution {
            was_judged: false,
            ..r
        }))
    }

    async fn first_sight(&self, uuid: &str, expires_at: i64) -> Result<bool, LedgerError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(uuid) {
            return Ok(false);
        }
        seen.insert(uuid.to_owned(), expires_at);
        Ok(true)
    }

    async fn mark_unused(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError> {
        Ok(self.decide(
            event_id,
            now_ms,
            |s| s.otp_expires_ms <= now_ms,
            |s| s.conversion = Some((Conversion::Unused, now_ms)),
        ))
    }
}

#[async_trait]
impl GuardBook for InMemoryLedger {
    async fn bump(&self, bump: &StatBump<'_>) -> Result<StatCounts, LedgerError> {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let c = stats.entry(bump.record_key()).or_default();
        c.judged += bump.judged;
        c.conversions += bump.conversions;
        Ok(*c)
    }

    async fn blocks(&self, keys: &[(&str, &str)]) -> Result<Vec<GuardBlock>, LedgerError> {
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .iter()
            .filter_map(|(scope, key)| blocks.get(&block_key(scope, key)).cloned())
            .collect())
    }

    async fn learn_block(&self, block: &GuardBlock, now_ms: i64) -> Result<bool, LedgerError> {
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        let key = block.record_key();
        if blocks.get(&key).is_some_and(|b| !b.learnable(now_ms)) {
            return Ok(false);
        }
        blocks.insert(key, block.clone());
        Ok(true)
    }

    async fn set_block(&self, block: &GuardBlock) -> Result<(), LedgerError> {
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(block.record_key(), block.clone());
        Ok(())
    }

    async fn list_blocks(&self) -> Result<Vec<GuardBlock>, LedgerError> {
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<GuardBlock> = blocks.values().cloned().collect();
        v.sort_by(|a, b| (&a.scope, &a.key).cmp(&(&b.scope, &b.key)));
        Ok(v)
    }
}

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

#[async_trait]
impl Resends for InMemoryLedger {
    async fn last_send(&self, key: &str) -> Result<Option<LastSend>, LedgerError> {
        let map = self.last_sends.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(key).cloned())
    }

    /// `expires_at` is the store's cleanup; whoever reads judges the window.
    async fn note_last_send(
        &self,
        key: &str,
        last: &LastSend,
        _expires_at: i64,
    ) -> Result<(), LedgerError> {
        let mut map = self.last_sends.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key.to_owned(), last.clone());
        Ok(())
    }
}
