//! The dispatcher flow: one SQS FIFO batch of jobs in, the partial batch
//! failures out ([`dispatch_batch`]); and [`poll_once`], which plays Lambda's
//! SQS event source mapping for local mode and tests.
//!
//! Per job: expired → EXPIRED and acknowledged; already settled →
//! acknowledged; otherwise claim, render, send, SENT. A retryable failure
//! releases the claim and reports the job, with every later job of its
//! message group, so FIFO order holds. A job that cannot be read is
//! reported, so the redrive policy moves it to the dead-letter queue
//! untouched.
//!
//! A reported job comes back after the visibility the dispatcher sets on it
//! ([`retry_delay`]: 2, 4, 8, 16 s with jitter, never past the code's
//! expiry), not after the queue's own visibility timeout, which is sized
//! for the function timeout and would outlast most codes.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::{Instrument, field};

use super::{Pipeline, failure_text, millis};
use crate::crypto::unique_token;
use crate::domain::{DeliveryRequest, Job};
use crate::ledger::{Claim, ClaimOutcome, LedgerError};
use crate::queue::{JobQueue, QueueError, ReceivedMessage};

/// Why a job's handling stopped early. `Settled` is acknowledged (the
/// ledger already holds its end); the others are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Settled,
    Retry,
    Poison(&'static str),
}

impl Pipeline {
    /// One job from the queue. `Ok(())` acknowledges it.
    async fn dispatch_one(&self, record: &SqsMessage) -> Result<(), Verdict> {
        let req = read_job(record)?;
        let span = tracing::Span::current();
        span.record("event_id", req.event_id.as_str());
        if let Some(id) = &req.context.correlation_id {
            span.record("okta_request", id.as_str());
        }
        let now = self.clock.now();
        if req.otp_expires <= now {
            return self.expire(&req, now).await;
        }
        let owner = unique_token();
        self.claim_for_dispatch(&req, &owner, now).await?;
        if let Some(refusal) = super::guard::recheck(&self.settings.guard, &req) {
            // Recorded FAILED, so neither Okta's retry nor a replay sends it.
            tracing::warn!(refusal = ?refusal, to = %req.phone, "a queued job the guard does not allow; not sent");
            self.settings.metrics.refused(req.channel, refusal.kind());
            let reason = format!("refused at dispatch: {}", refusal.cause().reason);
            return match self.record_failed(&req.event_id, &owner, &reason).await {
                Ok(()) | Err(LedgerError::LostClaim) => Ok(()),
                Err(_) => Err(Verdict::Retry),
            };
        }
        match self.send_once(&req).await {
            Ok((route, receipt)) => {
                match self.record_sent(&req, route, &receipt).await {
                    Ok(()) => self.after_sent(&req, None).await,
                    // Acknowledged anyway: retrying the job would send again.
                    Err(e) => tracing::error!(error = %e, "sent, but could not record it"),
                }
                tracing::info!(provider_message_id = %receipt.message_id, to = %req.phone, route = %route, "sent by the dispatcher");
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "provider busy; retrying later");
                self.release(&req.event_id, &owner, &failure_text(&e)).await;
                Err(Verdict::Retry)
            }
            Err(e) => {
                tracing::warn!(error = %e, "provider refused the message");
                match self
                    .record_failed(&req.event_id, &owner, &failure_text(&e))
                    .await
                {
                    Ok(()) | Err(LedgerError::LostClaim) => Ok(()),
                    Err(le) => {
                        // Not acknowledged: a later try, after the lease, records it.
                        tracing::warn!(error = %le, "could not record the failure; retrying later");
                        Err(Verdict::Retry)
                    }
                }
            }
        }
    }

    /// An expired job is recorded EXPIRED and acknowledged, never sent.
    async fn expire(&self, req: &DeliveryRequest, now: DateTime<Utc>) -> Result<(), Verdict> {
        tracing::info!("OTP expired before delivery; dropping the job");
        self.settings.metrics.expired(req.channel);
        let ttl = self.expires_at(req.otp_expires);
        let recorded = self
            .record("mark_expired", || {
                self.ledger
                    .claims
                    .mark_expired(&req.event_id, now.timestamp_millis(), ttl)
            })
            .await;
        recorded.map_err(|e| {
            // Not acknowledged: the job comes back and the next try records it.
            tracing::warn!(error = %e, "could not record the expiry; retrying later");
            Verdict::Retry
        })
    }

    /// Claims the event for this job. `Err(Retry)` when someone else holds
    /// it or the ledger cannot be reached; `Ok` for a claim, and the
    /// acknowledgement (`Err(Settled)`) when the event is already settled.
    async fn claim_for_dispatch(
        &self,
        req: &DeliveryRequest,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Verdict> {
        let destination = super::destination_hash(&self.settings.hash_key, &req.phone);
        let claim = Claim {
            correlation_id: req.context.correlation_id.as_deref(),
            country: req.phone.region().map(|r| r.as_str()),
            destination: Some(&destination),
            event_id: &req.event_id,
            channel: req.channel,
            owner,
            now_ms: now.timestamp_millis(),
            lease_ms: millis(self.settings.dispatcher_lease),
            expires_at: self.expires_at(req.otp_expires),
            sends: true,
        };
        match self.ledger.claims.claim(&claim).await {
            Ok(ClaimOutcome::Claimed { attempts }) => {
                tracing::info!(attempts, "job claimed");
                Ok(())
            }
            Ok(ClaimOutcome::Busy { .. }) => {
                tracing::info!("event is held by another worker; retrying later");
                Err(Verdict::Retry)
            }
            Ok(other) => {
                tracing::info!(state = ?other, "event already settled; acknowledging the job");
                Err(Verdict::Settled)
            }
            Err(e) => {
                tracing::warn!(error = %e, "ledger unavailable; retrying later");
                Err(Verdict::Retry)
            }
        }
    }
}

/// The job in a record, or the reason it is poison.
fn read_job(record: &SqsMessage) -> Result<DeliveryRequest, Verdict> {
    let body = record.body.as_deref().ok_or(Verdict::Poison("no body"))?;
    let job = Job::decode(body).map_err(|e| {
        tracing::error!(error = %e, "unreadable job; leaving it for the dead-letter queue");
        Verdict::Poison("not a job")
    })?;
    job.to_request().map_err(|e| {
        tracing::error!(error = %e, "invalid job; leaving it for the dead-letter queue");
        Verdict::Poison("invalid job")
    })
}

/// The first retry waits this long; each later one twice as long, up to
/// [`RETRY_MAX`].
pub const RETRY_BASE: Duration = Duration::from_secs(2);
pub const RETRY_MAX: Duration = Duration::from_secs(16);
/// Each delay is spread by this share either way, so a burst of throttled
/// messages does not come back in step.
pub const RETRY_JITTER: f64 = 0.2;

/// How long a reported job stays invisible before its next try. The
/// `receive_count`-th receive failed (1 for the first); `until_expiry` is
/// what is left of the code's life (a job never waits past it: it is then
/// dropped as expired, not retried); `jitter` is uniform in [0, 1).
pub fn retry_delay(
    receive_count: u32,
    until_expiry: Option<chrono::Duration>,
    jitter: f64,
) -> Duration {
    let doublings = receive_count.clamp(1, 16) - 1;
    let base = (RETRY_BASE.as_secs_f64() * f64::from(1u32 << doublings.min(8)))
        .min(RETRY_MAX.as_secs_f64());
    let spread = 1.0 - RETRY_JITTER + 2.0 * RETRY_JITTER * jitter.clamp(0.0, 1.0);
    let cap = until_expiry.map_or(f64::MAX, |d| d.num_milliseconds().max(0) as f64 / 1000.0);
    // Never panics: a non-finite value (impossible with a finite jitter)
    // falls back to the longest step.
    Duration::try_from_secs_f64((base * spread).min(cap)).unwrap_or(RETRY_MAX)
}

/// The retry delay for a failed record, from its receive count and its
/// job's expiry. A poison record comes back at once: it only has to reach
/// the redrive's receive count to move to the dead-letter queue.
fn delay_for(pipeline: &Pipeline, record: &SqsMessage, poison: bool) -> Duration {
    if poison {
        return Duration::ZERO;
    }
    let receives = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let until_expiry = record
        .body
        .as_deref()
        .and_then(|b| Job::decode(b).ok())
        .map(|j| j.otp_expires - pipeline.clock.now());
    retry_delay(receives, until_expiry, fastrand::f64())
}

/// Sets a reported record's visibility. If that fails, the queue's own
/// visibility timeout brings it back later: slower, not lost.
async fn set_retry_visibility(pipeline: &Pipeline, record: &SqsMessage, delay: Duration) {
    let Some(receipt) = record.receipt_handle.as_deref() else {
        return;
    };
    if let Err(e) = pipeline.queue.set_visibility(receipt, delay).await {
        tracing::warn!(
            message_id = record.message_id.as_deref().unwrap_or_default(),
            error = %e,
            "could not set the retry delay; the queue's visibility timeout applies"
        );
    }
}

/// The dispatcher flow over one SQS FIFO batch. Message groups are
/// dispatched concurrently (at most [`PipelineSettings::dispatch_concurrency`]
/// at once, the whole batch by default), since only messages of one group
/// must keep their order: a provider call takes 50–100 ms, and ten
/// destinations one after another would take a second. Inside a group the
/// records go strictly in order, and a failed record is reported together
/// with every later record of its group, so FIFO order holds; other groups
/// go on. Each reported record gets the retry delay of the first failure in
/// its group. The failures are listed in the batch's record order.
///
/// [`PipelineSettings::dispatch_concurrency`]: super::PipelineSettings::dispatch_concurrency
pub async fn dispatch_batch(pipeline: &Pipeline, event: SqsEvent) -> SqsBatchResponse {
    let groups = group_in_order(&event.records);
    let limit = pipeline
        .settings
        .dispatch_concurrency
        .map_or(groups.len(), NonZeroUsize::get)
        .max(1);
    // Groups travel as indices: a closure over borrowed records would make
    // this future unusable with `tokio::spawn` (a higher-ranked lifetime
    // the compiler cannot prove).
    let records = &event.records;
    let failed: HashSet<String> = stream::iter(groups)
        .map(|group| dispatch_group(pipeline, records, group))
        .buffer_unordered(limit)
        .flat_map(stream::iter)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if failed.contains(&id) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The batch's records (by index) by message group, groups in the order of
/// their first record, records in batch order. A record without a group id
/// (not from a FIFO queue) falls in the one group `""`.
fn group_in_order(records: &[SqsMessage]) -> Vec<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let group = record
            .attributes
            .get("MessageGroupId")
            .map_or("", String::as_str);
        let slot = *index.entry(group).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push(i);
    }
    groups
}

/// One message group's records, strictly in order. Returns the message ids
/// to report: the first failure and everything after it.
async fn dispatch_group(
    pipeline: &Pipeline,
    records: &[SqsMessage],
    group: Vec<usize>,
) -> Vec<String> {
    let mut reported = Vec::new();
    let mut delay: Option<Duration> = None;
    for record in group.into_iter().map(|i| &records[i]) {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!(
            "job",
            message_id = %message_id,
            event_id = field::Empty,
            okta_request = field::Empty
        );
        let verdict = if delay.is_some() {
            span.in_scope(|| {
                tracing::info!("an earlier message of this group failed; keeping order")
            });
            Err(Verdict::Retry)
        } else {
            pipeline.dispatch_one(record).instrument(span).await
        };
        let poison = match verdict {
            Ok(()) | Err(Verdict::Settled) => continue,
            Err(Verdict::Poison(why)) => {
                tracing::error!(message_id = %message_id, reason = why, "poison message reported for redrive");
                true
            }
            Err(Verdict::Retry) => false,
        };
        let delay = *delay.get_or_insert_with(|| delay_for(pipeline, record, poison));
        set_retry_visibility(pipeline, record, delay).await;
        reported.push(message_id);
    }
    reported
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// Plays Lambda's SQS event source mapping once: receive up to 10 messages,
/// build the `SqsEvent`, call the dispatcher handler, delete what succeeded.
/// Reported failures are left to the visibility the dispatcher set on them
/// and the redrive.
pub async fn poll_once(
    queue: &dyn JobQueue,
    pipeline: &Pipeline,
    wait: Duration,
) -> Result<PollReport, QueueError> {
    let messages = queue.receive(10, wait).await?;
    Ok(dispatch_received(queue, pipeline, messages).await)
}

/// Dispatches received messages as one event and deletes the successes.
async fn dispatch_received(
    queue: &dyn JobQueue,
    pipeline: &Pipeline,
    messages: Vec<ReceivedMessage>,
) -> PollReport {
    if messages.is_empty() {
        return PollReport::default();
    }
    let arn = queue.arn();
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(|m| m.to_sqs_message(&arn)).collect();
    let response = dispatch_batch(pipeline, event).await;
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let mut report = PollReport {
        received: messages.len(),
        ..PollReport::default()
    };
    for m in &messages {
        if failed.contains(m.message_id.as_str()) {
            report.failed += 1;
            continue;
        }
        match queue.delete(&m.receipt_handle).await {
            Ok(()) => report.deleted += 1,
            Err(e) => {
                tracing::warn!(message_id = %m.message_id, error = %e, "could not delete a handled message")
            }
        }
    }
    report
}

/// How the event-source poller waits. Every receive is billed, so it long
/// polls (`wait`, up to SQS's 20 s, as Lambda's own event source does), and
/// after an empty receive or an error it pauses too, from `idle_min`
/// doubling to `idle_max`; the next message resets the pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerSettings {
    pub wait: Duration,
    pub idle_min: Duration,
    pub idle_max: Duration,
}

impl Default for PollerSettings {
    fn default() -> Self {
        PollerSettings {
            wait: Duration::from_secs(20),
            idle_min: Duration::from_millis(200),
            idle_max: Duration::from_secs(5),
        }
    }
}

/// Runs the event source until `stop` turns true: what local mode and
/// `serve --aws` use in place of Lambda's SQS event source mapping. A
/// receive in progress is abandoned on stop (nothing is handled yet); a
/// batch being dispatched is always finished.
pub async fn run_poller(
    queue: &dyn JobQueue,
    pipeline: &Pipeline,
    settings: PollerSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut idle = settings.idle_min;
    while !*stop.borrow() {
        let received = tokio::select! {
            _ = stop.changed() => break,
            r = queue.receive(10, settings.wait) => r,
        };
        match received {
            Ok(messages) if !messages.is_empty() => {
                idle = settings.idle_min;
                dispatch_received(queue, pipeline, messages).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "polling the job queue failed"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(idle) => {}
        }
        idle = (idle * 2).min(settings.idle_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn retry_delays_double_to_sixteen_seconds_within_their_jitter() {
        for (receives, base) in [
            (0, 2.0),
            (1, 2.0),
            (2, 4.0),
            (3, 8.0),
            (4, 16.0),
            (5, 16.0),
            (40, 16.0),
        ] {
            let low = secs(retry_delay(receives, None, 0.0));
            let mid = secs(retry_delay(receives, None, 0.5));
            let high = secs(retry_delay(receives, None, 0.999_999));
            assert!((low - base * 0.8).abs() < 1e-6, "{receives}: {low}");
            assert!((mid - base).abs() < 1e-6, "{receives}: {mid}");
            assert!(
                high < base * 1.2 && high > base * 1.19,
                "{receives}: {high}"
            );
        }
    }

    #[test]
    fn retry_delays_stop_at_the_codes_expiry() {
        let left = chrono::Duration::milliseconds(3_000);
        assert_eq!(retry_delay(3, Some(left), 0.5), Duration::from_secs(3));
        assert_eq!(retry_delay(1, Some(left), 0.5), Duration::from_secs(2));
        let gone = chrono::Duration::milliseconds(-5);
        assert_eq!(retry_delay(2, Some(gone), 0.5), Duration::ZERO);
        // A jitter that is not a number cannot panic the dispatcher.
        assert_eq!(retry_delay(1, None, f64::NAN), RETRY_MAX);
        assert_eq!(retry_delay(1, Some(left), f64::NAN), Duration::from_secs(3));
    }
}
