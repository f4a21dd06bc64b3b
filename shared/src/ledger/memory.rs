//! The ledger in memory, for flow tests and local mode. It keeps DynamoDB's
//! conditional-write semantics: the same claim rules, the same counters.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;

/// The ledger in memory, with the same conditional semantics as DynamoDB.
#[derive(Debug, Default)]
pub struct InMemoryLedger {
    records: Mutex<HashMap<String, LedgerRecord>>,
    counters: Mutex<HashMap<String, (u32, std::collections::HashSet<String>)>>,
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

    /// An update only the claim's holder may make: records `reason`, ends
    /// the lease, and moves to `status` when one is given.
    fn holder_update(
        &self,
        event_id: &EventId,
        owner: &str,
        reason: &str,
        now_ms: i64,
        status: Option<Status>,
    ) -> Result<(), LedgerError> {
        self.with(|map| match map.get_mut(event_id.as_str()) {
            Some(r) if r.status == Status::InProgress && r.owner.as_deref() == Some(owner) => {
                r.status = status.unwrap_or(r.status);
                r.failure = Some(reason.to_owned());
                r.lease_until_ms = 0;
                r.updated_at_ms = now_ms;
                Ok(())
            }
            _ => Err(LedgerError::LostClaim),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, LedgerRecord>) -> T) -> T {
        let mut map = self.records.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }
}

#[async_trait]
impl Ledger for InMemoryLedger {
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

    async fn mark_sent(
        &self,
        event_id: &EventId,
        message_id: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.with(|map| {
            let r = map.entry(event_id.as_str().to_owned()).or_insert_with(|| {
                record(
                    event_id,
                    Status::InProgress,
                    1,
                    now_ms,
                    now_ms / 1000 + 86_400,
                )
            });
            if r.status != Status::Sent {
                r.status = Status::Sent;
                r.failure = None;
                r.message_id = Some(message_id.to_owned());
                r.lease_until_ms = 0;
                r.updated_at_ms = now_ms;
            }
            Ok(())
        })
    }

    async fn mark_failed(
        &self,
        event_id: &EventId,
        owner: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.holder_update(event_id, owner, reason, now_ms, Some(Status::Failed))
    }

    async fn mark_blocked(
        &self,
        event_id: &EventId,
        owner: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.holder_update(event_id, owner, reason, now_ms, Some(Status::Blocked))
    }

    async fn release(
        &self,
        event_id: &EventId,
        owner: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.holder_update(event_id, owner, reason, now_ms, None)
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

    async fn record_delivery(
        &self,
        receipt: &Receipt,
        now_ms: i64,
    ) -> Result<DeliveryRecorded, LedgerError> {
        self.with(|map| {
            Ok(match map.get_mut(receipt.event_id.as_str()) {
                None => DeliveryRecorded::UnknownEvent,
                Some(r) if r.delivery.is_some() => DeliveryRecorded::Duplicate,
                Some(r) => {
                    r.delivery = Some(DeliveryRecord::from(receipt));
                    r.updated_at_ms = now_ms;
                    DeliveryRecorded::Recorded
                }
            })
        })
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
        failure: None,
        owner: None,
        correlation_id: None,
        country: None,
        updated_at_ms: now_ms,
        expires_at,
        delivery: None,
    }
}
