//! The voice fallback (`VOICE_FALLBACK=on`; off by default): a code that
//! cannot arrive by SMS is read out by a call instead, once per event, while
//! it is still valid.
//!
//! - A landline cannot take an SMS: with the fallback on, an SMS hook to a
//!   number the metadata knows as a fixed line becomes a voice call before
//!   the guard runs (which would refuse the SMS).
//! - After a confirmed SMS, a [`FallbackCheck`] waits for the fallback
//!   window (`VOICE_FALLBACK_WINDOW_SECONDS`). When it arrives, the ledger
//!   says what the provider reported: a final `TEXT_UNREACHABLE` or
//!   `TEXT_CARRIER_UNREACHABLE` by then (and no sign-in) means a call, if
//!   the code still has [`MIN_LIFE_LEFT`]; anything else, nothing.
//!
//! The check carries the job, code included, on the timers queue, as the
//! job queue carries it: the ledger never holds a code, and a call needs
//! one. At most once per event: the ledger's `fallbackAt` is taken by a
//! conditional write before the call.
//!
//! A call costs more than an SMS, and it is a send the guard did not see
//! when the hook came: before it rings, the guard's learned and pinned
//! blocks are checked again, and a number gets at most
//! [`CALLS_PER_DESTINATION`] fallback calls in [`CALLS_WINDOW`]. Only a
//! receipt about the message the ledger recorded can trigger it (see
//! `ReceiptLog::record_delivery`), so a receipt that names our event but not
//! our message cannot make us ring anyone.

use std::time::Duration;

use super::Pipeline;
use super::guard;
use crate::crypto::keyed_hash;
use crate::domain::{Channel, DeliveryRequest, Job, NumberType};
use crate::ledger::{LedgerError, RateCount, RateDecision};
use crate::timers::{Check, ExpiryCheck, FallbackCheck};

/// Less than this left of a code's life, a call would read out a code that
/// expires before anyone can type it.
pub const MIN_LIFE_LEFT: Duration = Duration::from_secs(30);

/// The most fallback calls one number gets in [`CALLS_WINDOW`]: one
/// person's sign-ins in a bad-signal hour, not a pumping run's.
pub const CALLS_PER_DESTINATION: u32 = 3;
pub const CALLS_WINDOW: Duration = Duration::from_secs(3600);

/// The final SMS events that call for a call: the handset or the carrier
/// cannot be reached. Blocked, spam or opted-out numbers are not called.
pub const FALLBACK_EVENTS: [&str; 2] = ["TEXT_UNREACHABLE", "TEXT_CARRIER_UNREACHABLE"];

/// What a fallback check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackOutcome {
    /// The call was placed.
    Called,
    /// The SMS was not reported undeliverable in the window, was used, or
    /// a fallback was taken before: no call.
    NotNeeded,
    /// Too little of the code's life is left.
    TooLate,
    /// The call was refused or failed; not tried again.
    CallFailed,
    /// The guard refused the call: the range is blocked or pinned, or the
    /// number had its fallback calls for the hour.
    Refused,
}

/// Turns an SMS hook to a landline into a call, when the fallback is on.
/// Returns whether it did.
pub(crate) fn landline_to_voice(pipeline: &Pipeline, req: &mut DeliveryRequest) -> bool {
    let landline = req.channel == Channel::Sms
        && pipeline.settings.voice_fallback.is_some()
        && req.phone.number_type() == NumberType::FixedLine;
    if landline {
        tracing::info!(to = %req.phone, "a landline cannot take an SMS: calling instead");
        pipeline.settings.metrics.voice_fallback("LANDLINE");
        req.channel = Channel::Voice;
    }
    landline
}

impl Pipeline {
    /// After a confirmed SMS, with the fallback on: the check that decides
    /// on a call once the window has passed.
    pub(crate) fn fallback_check(&self, req: &DeliveryRequest, now_ms: i64) -> Option<Check> {
        let window = self.settings.voice_fallback?;
        if req.channel != Channel::Sms {
            return None;
        }
        Some(Check::Fallback(FallbackCheck {
            v: ExpiryCheck::VERSION,
            event_id: req.event_id.as_str().to_owned(),
            due_ms: now_ms + i64::try_from(window.as_millis()).unwrap_or(60_000),
            job: Job::from_request(req, crate::crypto::keyed(&self.settings.hash_key)).encode(),
        }))
    }
}

/// A fallback check that has arrived (see the module docs). `Err` only for
/// a ledger that cannot be read or written now: the check comes back.
pub async fn check_fallback(
    pipeline: &Pipeline,
    check: &FallbackCheck,
) -> Result<FallbackOutcome, LedgerError> {
    let Ok(mut req) = Job::decode(&check.job).and_then(|j| j.to_request()) else {
        tracing::warn!("a fallback check whose job cannot be read; dropped");
        return Ok(FallbackOutcome::NotNeeded);
    };
    let now = pipeline.clock.now();
    let left = (req.otp_expires - now).to_std().unwrap_or_default();
    let record = pipeline.ledger.claims.get(&req.event_id).await?;
    // Bounced, and not used after all (a late sign-in would mean it
    // arrived).
    let bounced = record.as_ref().is_some_and(|r| {
        r.delivery
            .as_ref()
            .is_some_and(|d| FALLBACK_EVENTS.contains(&d.event_type.as_str()))
            && r.sent.as_ref().and_then(|s| s.conversion).map(|c| c.0)
                != Some(crate::domain::Conversion::Converted)
    });
    if !bounced {
        return Ok(FallbackOutcome::NotNeeded);
    }
    if left < MIN_LIFE_LEFT {
        tracing::info!("the SMS bounced, but too little of the code's life is left to call");
        return Ok(FallbackOutcome::TooLate);
    }
    let now_ms = now.timestamp_millis();
    req.channel = Channel::Voice;
    if let Some(refusal) = guard::recheck(&pipeline.settings.guard, &req) {
        tracing::warn!(refusal = ?refusal, "the fallback call was refused by the guard");
        pipeline.settings.metrics.voice_fallback("REFUSED");
        return Ok(FallbackOutcome::Refused);
    }
    if let Err(refusal) = guard::check_blocks(
        &pipeline.settings.guard,
        pipeline.ledger.guard.as_ref(),
        &req,
        now_ms,
    )
    .await
    {
        tracing::warn!(refusal = ?refusal, "the fallback call was refused by the guard");
        pipeline.settings.metrics.voice_fallback("REFUSED");
        return Ok(FallbackOutcome::Refused);
    }
    if !calls_left(pipeline, &req, now_ms).await? {
        tracing::warn!(to = %req.phone, "the number had its fallback calls for the hour; no call");
        pipeline.settings.metrics.voice_fallback("REFUSED");
        return Ok(FallbackOutcome::Refused);
    }
    if !pipeline
        .ledger
        .receipts
        .claim_fallback(&req.event_id, now_ms)
        .await?
    {
        return Ok(FallbackOutcome::NotNeeded);
    }
    match pipeline.send_once(&req).await {
        Ok((route, receipt)) => {
            tracing::info!(
                event_id = %req.event_id,
                provider_message_id = %receipt.message_id,
                route = %route,
                to = %req.phone,
                "the SMS could not be delivered: the code was called in instead"
            );
            pipeline.settings.metrics.voice_fallback("UNREACHABLE");
            Ok(FallbackOutcome::Called)
        }
        Err(e) => {
            // The fallback is taken: a second call could ring twice.
            tracing::warn!(error = %e, "the fallback call failed; not tried again");
            Ok(FallbackOutcome::CallFailed)
        }
    }
}

/// Counts this call against the number's fallback calls of the window;
/// `false` when the window is full. A repeated check of one event counts
/// once (the counter keeps event ids). A ledger that cannot count now
/// fails the check, so it comes back: a call is never placed uncounted.
async fn calls_left(
    pipeline: &Pipeline,
    req: &DeliveryRequest,
    now_ms: i64,
) -> Result<bool, LedgerError> {
    let window_ms = i64::try_from(CALLS_WINDOW.as_millis()).unwrap_or(3_600_000);
    let window = now_ms.div_euclid(window_ms);
    let key = keyed_hash(&pipeline.settings.hash_key, req.phone.e164());
    let count = RateCount {
        scope: "vfb",
        key: &key,
        window,
        limit: CALLS_PER_DESTINATION,
        event_id: &req.event_id,
        expires_at: ((window + 2) * window_ms) / 1000,
    };
    Ok(matches!(
        pipeline.ledger.rates.count(&count).await?,
        RateDecision::Allowed { .. }
    ))
}
