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
            let attempts = existing.map_or(0, |r| r.attempts) + 1;
            map.insert(
                c.event_id.as_str().to_owned(),
                LedgerRecord {
                    event_id: c.event_id.as_str().to_owned(),
                    status: Status::InProgress,
                    lease_until_ms: c.now_ms + c.lease_ms,
                    attempts,
                    channel: Some(c.channel),
                    message_id: None,
                    failure: existing.and_then(|r| r.failure.clone()),
                    owner: Some(c.owner.to_owned()),
                    updated_at_ms: c.now_ms,
                    expires_at: c.expires_at,
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
            let r = map
                .entry(event_id.as_str().to_owned())
                .or_insert_with(|| LedgerRecord {
                    event_id: event_id.as_str().to_owned(),
                    status: Status::InProgress,
                    lease_until_ms: 0,
                    attempts: 1,
                    channel: None,
                    message_id: None,
                    failure: None,
                    owner: None,
                    updated_at_ms: now_ms,
                    expires_at: now_ms / 1000 + 86_400,
                });
            if r.status != Status::Sent {
                r.status = Status::Sent;
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
        self.with(|map| match map.get_mut(event_id.as_str()) {
            Some(r) if r.status == Status::InProgress && r.owner.as_deref() == Some(owner) => {
                r.status = Status::Failed;
                r.failure = Some(reason.to_owned());
                r.lease_until_ms = 0;
                r.updated_at_ms = now_ms;
                Ok(())
            }
            _ => Err(LedgerError::LostClaim),
        })
    }

    async fn release(
        &self,
        event_id: &EventId,
        owner: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.with(|map| match map.get_mut(event_id.as_str()) {
            Some(r) if r.status == Status::InProgress && r.owner.as_deref() == Some(owner) => {
                r.lease_until_ms = 0;
                r.failure = Some(reason.to_owned());
                r.updated_at_ms = now_ms;
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
                .or_insert_with(|| LedgerRecord {
                    event_id: event_id.as_str().to_owned(),
                    status: Status::Expired,
                    lease_until_ms: 0,
                    attempts: 0,
                    channel: None,
                    message_id: None,
                    failure: None,
                    owner: None,
                    updated_at_ms: now_ms,
                    expires_at,
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(s: &str) -> EventId {
        EventId::parse(s).unwrap()
    }

    fn claim<'a>(e: &'a EventId, owner: &'a str, now_ms: i64) -> Claim<'a> {
        Claim {
            event_id: e,
            channel: Channel::Sms,
            owner,
            now_ms,
            lease_ms: 1000,
            expires_at: 9_999_999_999,
        }
    }

    #[tokio::test]
    async fn claim_lease_release_and_terminal_states() {
        let l = InMemoryLedger::new();
        let e = eid("evt-1");
        assert_eq!(
            l.claim(&claim(&e, "a", 0)).await,
            Ok(ClaimOutcome::Claimed { attempts: 1 })
        );
        assert_eq!(
            l.claim(&claim(&e, "b", 500)).await,
            Ok(ClaimOutcome::Busy {
                lease_until_ms: 1000
            })
        );
        // The lease runs out: b takes over, and a can no longer release.
        assert_eq!(
            l.claim(&claim(&e, "b", 1000)).await,
            Ok(ClaimOutcome::Claimed { attempts: 2 })
        );
        assert_eq!(
            l.release(&e, "a", "x", 1001).await,
            Err(LedgerError::LostClaim)
        );
        l.release(&e, "b", "throttled", 1001).await.unwrap();
        assert_eq!(
            l.claim(&claim(&e, "c", 1002)).await,
            Ok(ClaimOutcome::Claimed { attempts: 3 })
        );
        l.mark_sent(&e, "m-1", 1003).await.unwrap();
        l.mark_sent(&e, "m-2", 1004).await.unwrap();
        assert_eq!(
            l.claim(&claim(&e, "d", 99_999)).await,
            Ok(ClaimOutcome::AlreadySent {
                message_id: Some("m-1".into())
            })
        );
        l.mark_expired(&e, 100_000, 0).await.unwrap();
        assert_eq!(l.get(&e).await.unwrap().unwrap().status, Status::Sent);
    }

    #[tokio::test]
    async fn counters_refuse_past_the_limit_and_count_an_event_once() {
        let l = InMemoryLedger::new();
        let ids: Vec<EventId> = (0..4).map(|i| eid(&format!("e{i}"))).collect();
        async fn count(l: &InMemoryLedger, e: &EventId, window: i64) -> RateDecision {
            let c = RateCount {
                scope: "dst",
                key: "h",
                window,
                limit: 2,
                event_id: e,
                expires_at: 0,
            };
            l.count(&c).await.unwrap()
        }
        assert_eq!(
            count(&l, &ids[0], 1).await,
            RateDecision::Allowed { count: 1 }
        );
        assert_eq!(
            count(&l, &ids[0], 1).await,
            RateDecision::Allowed { count: 1 },
            "replayed"
        );
        assert_eq!(
            count(&l, &ids[1], 1).await,
            RateDecision::Allowed { count: 2 }
        );
        assert_eq!(
            count(&l, &ids[2], 1).await,
            RateDecision::Refused { count: 2 }
        );
        assert_eq!(
            count(&l, &ids[1], 1).await,
            RateDecision::Allowed { count: 2 },
            "counted before"
        );
        assert_eq!(
            count(&l, &ids[3], 2).await,
            RateDecision::Allowed { count: 1 },
            "a new window"
        );
    }
}
