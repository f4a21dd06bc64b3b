//! The ledger's fault wrapper: every capability of the inner ledger behind
//! the same dice, a claim also losing a conditional write it would have won.

use async_trait::async_trait;

use super::{Dice, Fault, Faults, before};
use crate::domain::EventId;
use crate::ledger::{
    Claim, ClaimOutcome, Claims, Conversions, EndClaim, GuardBook, LastSend, LedgerError,
    LedgerRecord, Parts, RateCount, RateCounts, RateDecision, ReceiptLog, Resends, SendConfirmed,
};

#[derive(Debug)]
pub struct ChaosLedger {
    inner: Parts,
    faults: Faults,
    dice: Dice,
}

impl ChaosLedger {
    pub fn new(inner: Parts, faults: Faults, seed: u64) -> Self {
        ChaosLedger {
            inner,
            faults,
            dice: Dice::new(seed),
        }
    }
}

fn ledger_fault(fault: Fault) -> Option<LedgerError> {
    match fault {
        Fault::Throttle => Some(LedgerError::Unavailable(
            "ProvisionedThroughputExceededException".into(),
        )),
        Fault::ServerError => Some(LedgerError::Unavailable("InternalServerError".into())),
        Fault::Timeout => Some(LedgerError::Unavailable("Timeout".into())),
        _ => None,
    }
}

macro_rules! chaos_ledger_call {
    ($self:ident, $call:expr) => {{
        let fault = $self.dice.roll(&$self.faults);
        before(&$self.faults, fault).await;
        if let Some(e) = ledger_fault(fault) {
            return Err(e);
        }
        let result = $call.await;
        if fault == Fault::Crash && result.is_ok() {
            return Err(LedgerError::Unavailable("ReplyLost".into()));
        }
        result
    }};
}

#[async_trait]
impl Claims for ChaosLedger {
    async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, LedgerError> {
        let fault = self.dice.roll(&self.faults);
        before(&self.faults, fault).await;
        if let Some(e) = ledger_fault(fault) {
            return Err(e);
        }
        if fault == Fault::Conflict {
            // Another writer got there first (as far as this caller knows).
            return Ok(ClaimOutcome::Busy {
                lease_until_ms: c.now_ms + c.lease_ms,
            });
        }
        let result = self.inner.claims.claim(c).await;
        if fault == Fault::Crash && result.is_ok() {
            return Err(LedgerError::Unavailable("ReplyLost".into()));
        }
        result
    }

    async fn mark_sent(&self, sent: &SendConfirmed<'_>) -> Result<(), LedgerError> {
        chaos_ledger_call!(self, self.inner.claims.mark_sent(sent))
    }

    async fn end_claim(&self, ending: &EndClaim<'_>) -> Result<(), LedgerError> {
        chaos_ledger_call!(self, self.inner.claims.end_claim(ending))
    }

    async fn mark_expired(&self, e: &EventId, now: i64, x: i64) -> Result<(), LedgerError> {
        chaos_ledger_call!(self, self.inner.claims.mark_expired(e, now, x))
    }

    async fn get(&self, e: &EventId) -> Result<Option<LedgerRecord>, LedgerError> {
        chaos_ledger_call!(self, self.inner.claims.get(e))
    }
}

#[async_trait]
impl RateCounts for ChaosLedger {
    async fn count(&self, c: &RateCount<'_>) -> Result<RateDecision, LedgerError> {
        chaos_ledger_call!(self, self.inner.rates.count(c))
    }
}

#[async_trait]
impl ReceiptLog for ChaosLedger {
    async fn record_delivery(
        &self,
        r: &crate::domain::Receipt,
        now_ms: i64,
    ) -> Result<crate::ledger::DeliveryRecorded, LedgerError> {
        chaos_ledger_call!(self, self.inner.receipts.record_delivery(r, now_ms))
    }

    async fn claim_fallback(&self, e: &EventId, now_ms: i64) -> Result<bool, LedgerError> {
        chaos_ledger_call!(self, self.inner.receipts.claim_fallback(e, now_ms))
    }
}

#[async_trait]
impl Conversions for ChaosLedger {
    async fn note_send(&self, note: &crate::ledger::SendNote<'_>) -> Result<(), LedgerError> {
        chaos_ledger_call!(self, self.inner.conversions.note_send(note))
    }

    async fn convert(
        &self,
        sign_in: &crate::ledger::SignIn<'_>,
    ) -> Result<crate::ledger::SignInMatch, LedgerError> {
        chaos_ledger_call!(self, self.inner.conversions.convert(sign_in))
    }

    async fn judge(
        &self,
        e: &EventId,
        now_ms: i64,
    ) -> Result<Option<crate::ledger::Resolution>, LedgerError> {
        chaos_ledger_call!(self, self.inner.conversions.judge(e, now_ms))
    }

    async fn first_sight(&self, uuid: &str, expires_at: i64) -> Result<bool, LedgerError> {
        chaos_ledger_call!(self, self.inner.conversions.first_sight(uuid, expires_at))
    }

    async fn mark_unused(
        &self,
        e: &EventId,
        now_ms: i64,
    ) -> Result<Option<crate::ledger::Resolution>, LedgerError> {
        chaos_ledger_call!(self, self.inner.conversions.mark_unused(e, now_ms))
    }
}

#[async_trait]
impl GuardBook for ChaosLedger {
    async fn bump(
        &self,
        b: &crate::ledger::StatBump<'_>,
    ) -> Result<crate::ledger::StatCounts, LedgerError> {
        chaos_ledger_call!(self, self.inner.guard.bump(b))
    }

    async fn blocks(
        &self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<crate::ledger::GuardBlock>, LedgerError> {
        chaos_ledger_call!(self, self.inner.guard.blocks(keys))
    }

    async fn learn_block(
        &self,
        b: &crate::ledger::GuardBlock,
        now_ms: i64,
    ) -> Result<bool, LedgerError> {
        chaos_ledger_call!(self, self.inner.guard.learn_block(b, now_ms))
    }

    async fn set_block(&self, b: &crate::ledger::GuardBlock) -> Result<(), LedgerError> {
        self.inner.guard.set_block(b).await
    }

    async fn list_blocks(&self) -> Result<Vec<crate::ledger::GuardBlock>, LedgerError> {
        self.inner.guard.list_blocks().await
    }
}

#[async_trait]
impl Resends for ChaosLedger {
    async fn last_send(&self, key: &str) -> Result<Option<LastSend>, LedgerError> {
        chaos_ledger_call!(self, self.inner.resends.last_send(key))
    }

    async fn note_last_send(
        &self,
        key: &str,
        last: &LastSend,
        expires_at: i64,
    ) -> Result<(), LedgerError> {
        chaos_ledger_call!(
            self,
            self.inner.resends.note_last_send(key, last, expires_at)
        )
    }
}
