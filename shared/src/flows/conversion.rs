//! Conversion: whether a sent code was used.
//!
//! - After a confirmed send ([`Pipeline::after_sent`]), with
//!   `CONVERSIONS=on`: the ledger record is noted for matching (send time,
//!   code expiry, prefix, the kind of code, keyed hash of the user with the
//!   kind and the channel), and a check is scheduled for the code's expiry
//!   (for a code the learning guard judges, for its typing time if that
//!   comes first). A code Okta cannot show used (no user id, or a request
//!   type with no event) gets neither: it is never matched, never `UNUSED`.
//!   These run together, under a short deadline on the ingress's fast
//!   path; a failure loses conversion data for that send (logged,
//!   `FollowUpErrors`), never the send.
//! - Okta's event that a code was used ([`record_sign_ins`]: a sign-in,
//!   a finished enrollment, a reset, an unlock; each event once, by its
//!   `uuid`) marks the user's latest send of that kind made before it
//!   `CONVERTED` if its code was still valid, gives End User Messaging the
//!   `RECEIVED` feedback, and counts the conversion for the guard.
//! - A check ([`check_due`]) at a code's typing time judges it unused for
//!   the learning guard (the guard counts it, and may block its prefix);
//!   at its expiry it marks a send nobody used `UNUSED` and gives the
//!   `FAILED` feedback. A check that arrives early (SQS's 15-minute cap)
//!   is scheduled again for the rest. The same timers carry the voice
//!   fallback's checks ([`super::fallback`]).
//! - Okta's record of a failed telephony hook call (it sent that code
//!   itself) is counted (`OktaFallbacks`) and kept for `telehook report`.
//!
//! Every step is idempotent: a replayed batch or a check delivered twice
//! finds the send already decided and changes nothing.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::Pipeline;
use super::fallback::FallbackOutcome;
use super::guard;
use crate::crypto::keyed_hash;
use crate::domain::{Conversion, DeliveryRequest, EventId, UseSignal, prefix_of};
use crate::ledger::{LedgerError, Resolution, SendNote, SignIn, SignInMatch, StatBump};
use crate::okta::events::EventBatch;
use crate::timers::{Check, ExpiryCheck};

/// The most the dispatcher waits for a send's follow-ups.
const FOLLOW_UP_DEADLINE: Duration = Duration::from_secs(5);

/// Okta's 3 seconds, less a margin for the answer to travel: the latest
/// the fast path's follow-ups may hold the answer.
const ANSWER_BY: Duration = Duration::from_millis(2_850);

impl Pipeline {
    /// The follow-ups of a confirmed, recorded send (see the module docs),
    /// and the voice fallback's check after an SMS ([`super::fallback`]).
    /// `arrived` is when the hook arrived (the fast path: Okta waits), or
    /// `None` (the dispatcher).
    pub(crate) async fn after_sent(&self, req: &DeliveryRequest, arrived: Option<Instant>) {
        let learning = &self.settings.guard.learning;
        let now_ms = self.clock.now_ms();
        let fallback = self.fallback_check(req, now_ms);
        if !learning.conversions && fallback.is_none() {
            return;
        }
        let prefix = prefix_of(&req.phone, learning.prefix_digits);
        let user_key = req
            .user_id
            .as_ref()
            .map(|u| u.key(crate::crypto::keyed(&self.settings.hash_key)));
        let signal = UseSignal::of(&req.request_type);
        // Only a code Okta can show used can be judged unused: without a
        // user id, or for a request type Okta logs no use of, it stays open.
        let matchable = user_key.is_some() && signal.is_some();
        let guard = matchable && learning.mode != guard::LearnMode::Off && learning.judges(signal);
        let note = SendNote {
            event_id: &req.event_id,
            user_key: user_key.as_deref(),
            channel: req.channel,
            signal,
            guard,
            prefix: &prefix,
            sent_ms: now_ms,
            otp_expires_ms: req.otp_expires.timestamp_millis(),
        };
        let conversion_steps = async {
            if !learning.conversions {
                return;
            }
            let judge_ms = if guard {
                now_ms + i64::try_from(learning.judge_after.as_millis()).unwrap_or(60_000)
            } else {
                note.otp_expires_ms
            };
            let check: Check =
                ExpiryCheck::judging(req.event_id.as_str(), judge_ms, note.otp_expires_ms).into();
            let schedule = async {
                if matchable {
                    self.timers.schedule(&check, now_ms).await
                } else {
                    Ok(())
                }
            };
            let (noted, scheduled) =
                tokio::join!(self.ledger.conversions.note_send(&note), schedule);
            if let Err(e) = noted {
                tracing::warn!(error = %e, "send not noted; a sign-in cannot be matched to it");
                self.settings.metrics.follow_up_error("note");
            }
            if let Err(e) = scheduled {
                tracing::warn!(error = %e, "expiry check not scheduled; the send stays undecided");
                self.settings.metrics.follow_up_error("timer");
            }
        };
        let fallback_step = async {
            let Some(check) = &fallback else { return };
            if let Err(e) = self.timers.schedule(check, now_ms).await {
                tracing::warn!(error = %e, "voice fallback check not scheduled");
                self.settings.metrics.follow_up_error("fallback");
            }
        };
        let steps = async {
            tokio::join!(conversion_steps, fallback_step);
        };
        let deadline = match arrived {
            Some(arrived) => (arrived + ANSWER_BY).max(Instant::now() + Duration::from_millis(50)),
            None => Instant::now() + FOLLOW_UP_DEADLINE,
        };
        if tokio::time::timeout_at(deadline, steps).await.is_err() {
            tracing::warn!("follow-ups of a send ran out of time");
            self.settings.metrics.follow_up_error("deadline");
        }
    }

    /// Gives the provider its feedback on a decided send.
    async fn feedback(&self, resolution: &Resolution, conversion: Conversion) {
        let Some(message_id) = resolution.message_id.as_deref() else {
            return;
        };
        if let Err(e) = self
            .routes
            .first()
            .feedback(message_id, conversion.feedback())
            .await
        {
            tracing::warn!(error = %e, conversion = conversion.as_str(), "message feedback not given");
            self.settings.metrics.follow_up_error("feedback");
        }
    }

    fn count_conversion(&self, resolution: &Resolution, conversion: Conversion) {
        self.settings.metrics.conversion(
            resolution.channel.map_or("unknown", |c| c.as_str()),
            resolution.country.as_deref().unwrap_or("unknown"),
            resolution.signal.map_or("unknown", |s| s.as_str()),
            conversion.as_str(),
        );
    }

    /// Whether an Okta event hook event is seen for the first time (by its
    /// `uuid`; one without a uuid always is). A ledger that cannot tell
    /// fails the batch, so Okta delivers it again.
    async fn first_sight(&self, uuid: Option<&str>) -> Result<bool, LedgerError> {
        let Some(uuid) = uuid else { return Ok(true) };
        // Okta delivers a batch again within minutes; a day is plenty.
        let expires_at = self.clock.now_ms() / 1000 + 86_400;
        self.ledger.conversions.first_sight(uuid, expires_at).await
    }
}

/// The ledger's count of Okta's own sends after failed hook calls, per
/// hour: scope `okta`, key the hook (`telephony`, `unnamed`), in
/// `judged` (kept 35 days for `telehook report`).
pub const OKTA_FALLBACK_SCOPE: &str = "okta";

/// What one event hook batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInReport {
    pub converted: u32,
    /// No send to that user on that channel is on record (a code from
    /// Okta's own provider, or conversions were off when it was sent).
    pub no_send: u32,
    pub expired: u32,
    pub already_resolved: u32,
    /// Events delivered before (the same `uuid`).
    pub duplicate: u32,
    /// Okta's records of failed telephony hook calls: codes Okta sent
    /// itself.
    pub okta_fallbacks: u32,
    /// Events that were not of a kind that shows a code used.
    pub skipped: u32,
}

/// Matches a batch's sign-ins to sends. Only a ledger that cannot be read
/// or written fails it (the event hook answers 503 and Okta retries);
/// what was converted before stays converted, and the retry finds it so.
pub async fn record_sign_ins(
    pipeline: &Pipeline,
    batch: &EventBatch,
) -> Result<SignInReport, LedgerError> {
    let mut report = SignInReport {
        skipped: u32::try_from(batch.skipped.len()).unwrap_or(u32::MAX),
        ..SignInReport::default()
    };
    for skip in &batch.skipped {
        pipeline.settings.metrics.sign_in_ignored(skip.as_str());
    }
    if !pipeline.settings.guard.learning.conversions {
        tracing::warn!(
            sign_ins = batch.sign_ins.len(),
            "event hook batch while CONVERSIONS is off; nothing recorded"
        );
        return Ok(report);
    }
    record_okta_fallbacks(pipeline, batch, &mut report).await?;
    for s in &batch.sign_ins {
        if !pipeline.first_sight(s.uuid.as_deref()).await? {
            report.duplicate += 1;
            pipeline.settings.metrics.sign_in_ignored("DUPLICATE");
            continue;
        }
        let user_key = keyed_hash(&pipeline.settings.hash_key, &s.user_id);
        let found = pipeline
            .ledger
            .conversions
            .convert(&SignIn {
                user_key: &user_key,
                signal: s.signal,
                channel: s.channel,
                at_ms: s.at.timestamp_millis(),
            })
            .await?;
        let channel = s.channel.map_or("any", |c| c.as_str());
        let kind = match found {
            SignInMatch::Converted(resolution) => {
                report.converted += 1;
                tracing::info!(
                    event_id = %resolution.event_id,
                    signal = s.signal.as_str(),
                    channel,
                    after_ms = s.at.timestamp_millis() - resolution.sent_ms,
                    "code used"
                );
                pipeline.count_conversion(&resolution, Conversion::Converted);
                pipeline.feedback(&resolution, Conversion::Converted).await;
                guard::count_conversion(pipeline, &resolution).await;
                continue;
            }
            SignInMatch::NoSend => {
                report.no_send += 1;
                "NO_SEND"
            }
            SignInMatch::Expired => {
                report.expired += 1;
                "EXPIRED"
            }
            SignInMatch::AlreadyResolved => {
                report.already_resolved += 1;
                "ALREADY_RESOLVED"
            }
        };
        tracing::debug!(
            kind,
            signal = s.signal.as_str(),
            channel,
            "Okta's event matched no open send"
        );
        pipeline.settings.metrics.sign_in_ignored(kind);
    }
    Ok(report)
}

/// Counts Okta's records of failed telephony hook calls, once each: a
/// metric (and its alarm), a warning, and the ledger's hourly count for
/// `telehook report`.
async fn record_okta_fallbacks(
    pipeline: &Pipeline,
    batch: &EventBatch,
    report: &mut SignInReport,
) -> Result<(), LedgerError> {
    for f in &batch.okta_fallbacks {
        if !pipeline.first_sight(f.uuid.as_deref()).await? {
            report.duplicate += 1;
            continue;
        }
        report.okta_fallbacks += 1;
        tracing::warn!(
            hook = f.hook.as_str(),
            "Okta recorded a failed inline hook call: it sent that code through its own providers"
        );
        pipeline.settings.metrics.okta_fallback(f.hook.as_str());
        let at_ms = f.at.timestamp_millis();
        let bump = StatBump {
            scope: OKTA_FALLBACK_SCOPE,
            key: f.hook.as_str(),
            window: at_ms.div_euclid(3_600_000),
            judged: 1,
            conversions: 0,
            expires_at: at_ms / 1000 + 35 * 86_400,
        };
        if let Err(e) = pipeline.ledger.guard.bump(&bump).await {
            tracing::warn!(error = %e, "Okta's fallback not counted for the report");
            pipeline.settings.metrics.follow_up_error("stats");
        }
    }
    Ok(())
}

/// What a timer's check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Expiry: marked `UNUSED`, feedback given.
    Unused,
    /// Typing time: judged unused for the learning guard; the expiry
    /// check follows.
    Judged,
    /// Expiry: converted, never sent, or gone: nothing to do.
    Decided,
    /// Arrived before it was due; scheduled again.
    Rescheduled,
    /// Not a check; dropped.
    Malformed,
    /// The voice fallback's check, and what it did.
    Fallback(FallbackOutcome),
}

/// One check from the timers (an expiry check or a voice fallback check).
/// `Err` leaves the message for another try.
pub async fn check_due(pipeline: &Pipeline, body: &str) -> Result<CheckOutcome, String> {
    let Some(check) = Check::decode(body) else {
        tracing::warn!("a timer message that is not a check; dropped");
        return Ok(CheckOutcome::Malformed);
    };
    let now_ms = pipeline.clock.now_ms();
    if check.due_ms() > now_ms {
        pipeline
            .timers
            .schedule(&check, now_ms)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(CheckOutcome::Rescheduled);
    }
    let check = match check {
        Check::Fallback(f) => {
            return super::fallback::check_fallback(pipeline, &f)
                .await
                .map(CheckOutcome::Fallback)
                .map_err(|e| e.to_string());
        }
        Check::Expiry(e) => e,
    };
    let Ok(event_id) = EventId::parse(&check.event_id) else {
        tracing::warn!("an expiry check with an event id that is not one; dropped");
        return Ok(CheckOutcome::Malformed);
    };
    let expires_ms = check.code_expires_ms();
    if expires_ms > now_ms {
        // The typing time is up, the code is still valid. The expiry check
        // is queued first: if judging fails, this check comes back, and
        // the second expiry check finds the send decided.
        let expiry: Check = ExpiryCheck::new(&check.event_id, expires_ms).into();
        pipeline
            .timers
            .schedule(&expiry, now_ms)
            .await
            .map_err(|e| e.to_string())?;
        return match pipeline.ledger.conversions.judge(&event_id, now_ms).await {
            Ok(Some(resolution)) => {
                tracing::info!(event_id = %event_id, "code not used within the typing time");
                guard::count_judged(pipeline, &resolution).await;
                Ok(CheckOutcome::Judged)
            }
            Ok(None) => Ok(CheckOutcome::Decided),
            Err(e) => Err(e.to_string()),
        };
    }
    match pipeline
        .ledger
        .conversions
        .mark_unused(&event_id, now_ms)
        .await
    {
        Ok(Some(resolution)) => {
            tracing::info!(event_id = %event_id, "code expired unused");
            pipeline.count_conversion(&resolution, Conversion::Unused);
            pipeline.feedback(&resolution, Conversion::Unused).await;
            guard::count_judged(pipeline, &resolution).await;
            Ok(CheckOutcome::Unused)
        }
        Ok(None) => Ok(CheckOutcome::Decided),
        Err(e) => Err(e.to_string()),
    }
}

/// The receipts Lambda's SQS event from the timers queue: every record
/// checked, the ones that could not be decided now reported in
/// `batchItemFailures` so SQS delivers them again.
pub async fn check_sqs_timers(
    pipeline: &Pipeline,
    payload: &serde_json::Value,
) -> serde_json::Value {
    let mut failures = Vec::new();
    let records = payload
        .get("Records")
        .and_then(|r| r.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let queue = pipeline.settings.sources.expiry_queue.as_ref();
    for r in records {
        let id = r
            .get("messageId")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        let source = r.get("eventSourceARN").and_then(|a| a.as_str());
        if !super::EventSources::trusts(queue, source) {
            // Acknowledged, not failed: failing would only bring it back.
            tracing::warn!("a check from another queue; dropped");
            continue;
        }
        let body = r.get("body").and_then(|b| b.as_str()).unwrap_or_default();
        if let Err(e) = check_due(pipeline, body).await {
            tracing::warn!(error = %e, "check not decided; SQS delivers it again");
            failures.push(serde_json::json!({ "itemIdentifier": id }));
        }
    }
    serde_json::json!({ "batchItemFailures": failures })
}

/// Local mode's stand-in for the timers queue's event source: checks every
/// arrived check once; returns how many were handled.
pub async fn run_due_checks(pipeline: &Pipeline) -> usize {
    let mut handled = 0;
    loop {
        let arrived = match pipeline.timers.arrived(10).await {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => return handled,
            Err(e) => {
                tracing::warn!(error = %e, "expiry checks unavailable");
                return handled;
            }
        };
        for a in arrived {
            if check_due(pipeline, &a.body).await.is_ok() {
                let _ = pipeline.timers.done(&a.handle).await;
                handled += 1;
            }
        }
    }
}
