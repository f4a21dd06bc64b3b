//! Draining the dead-letter queue on demand: [`replay_dlq`].
//!
//! For each message in the DLQ:
//! - the OTP has expired: the ledger says EXPIRED and the message is
//!   deleted, not resent;
//! - the ledger says SENT (or EXPIRED): the message is deleted;
//! - otherwise it is sent back to the main queue with a new deduplication id
//!   (the event id and the replay count), and deleted from the DLQ only
//!   after that send succeeded;
//! - a message that is not a job, or that cannot be moved, stays.
//!
//! A dry run counts what would happen and changes nothing: messages it looked
//! at are made visible again before it returns. One call handles at most
//! `maxMessages`; the `DlqReplay` state machine calls it until the DLQ is
//! empty or its cap is reached.

use serde::{Deserialize, Serialize};

use tracing::Instrument;

use super::{Pipeline, destination_hash};
use crate::domain::{DeliveryRequest, Job};
use crate::ledger::Status;
use crate::queue::{JobQueue, OutgoingMessage, QueueError, ReceivedMessage};

/// The most one invocation handles, whatever it is asked for.
pub const MAX_PER_CALL: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default = "default_max")]
    pub max_messages: u32,
    #[serde(default)]
    pub dry_run: bool,
}

fn default_max() -> u32 {
    100
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub moved: u64,
    pub expired: u64,
    pub already_sent: u64,
    pub failed: u64,
    /// Messages left in the DLQ afterwards (approximate, as SQS counts).
    pub remaining: u64,
    pub dry_run: bool,
}

/// The deduplication id of a replayed job: SQS allows 128 characters.
fn replay_dedup_id(event_id: &str, replays: u32) -> String {
    let suffix = format!("#replay{replays}");
    let keep = event_id.len().min(128 - suffix.len());
    format!("{}{suffix}", &event_id[..keep])
}

/// Drains up to `maxMessages` from the dead-letter queue (see the module
/// docs) and reports what happened.
pub async fn replay_dlq(
    pipeline: &Pipeline,
    dlq: &dyn JobQueue,
    req: &ReplayRequest,
) -> Result<ReplayReport, QueueError> {
    let max = req.max_messages.clamp(1, MAX_PER_CALL) as usize;
    let mut report = ReplayReport {
        dry_run: req.dry_run,
        ..ReplayReport::default()
    };
    // Receipts of messages that stay: made visible again at the end, so no
    // message is looked at twice in one call.
    let mut keep: Vec<String> = Vec::new();
    let mut seen = 0usize;
    while seen < max {
        let batch = dlq
            .receive((max - seen).min(10), std::time::Duration::ZERO)
            .await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            seen += 1;
            let span = tracing::info_span!("replay", message_id = %m.message_id);
            let stays = replay_one(pipeline, dlq, req.dry_run, &m, &mut report)
                .instrument(span)
                .await;
            if stays {
                keep.push(m.receipt_handle);
            }
        }
    }
    for receipt in keep {
        if let Err(e) = dlq.release(&receipt).await {
            tracing::warn!(error = %e, "could not make a kept message visible again");
        }
    }
    let depth = dlq.depth().await?;
    report.remaining = depth.visible + depth.in_flight + depth.delayed;
    tracing::info!(
        moved = report.moved,
        expired = report.expired,
        already_sent = report.already_sent,
        failed = report.failed,
        remaining = report.remaining,
        dry_run = report.dry_run,
        "dead-letter replay finished"
    );
    Ok(report)
}

/// One message of the DLQ, counted in `report`. True when it stays in the
/// DLQ (unreadable, not movable, or a dry run).
async fn replay_one(
    pipeline: &Pipeline,
    dlq: &dyn JobQueue,
    dry_run: bool,
    m: &ReceivedMessage,
    report: &mut ReplayReport,
) -> bool {
    let decoded = Job::decode(&m.body).and_then(|job| job.to_request().map(|r| (job, r)));
    let (job, request) = match decoded {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "not a job; it stays in the dead-letter queue");
            report.failed += 1;
            return true;
        }
    };
    let settled = if request.otp_expires <= pipeline.clock.now() {
        Some(Status::Expired)
    } else {
        match pipeline.ledger.claims.get(&request.event_id).await {
            Ok(Some(r)) if matches!(r.status, Status::Sent | Status::Expired) => Some(r.status),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(event_id = %request.event_id, error = %e, "ledger unavailable; the job stays");
                report.failed += 1;
                return true;
            }
        }
    };
    match settled {
        Some(_) if dry_run => {
            count_settled(report, settled);
            true
        }
        Some(status) => {
            count_settled(report, settled);
            remove_settled(pipeline, dlq, &request, status, m).await;
            false
        }
        None if dry_run => {
            report.moved += 1;
            true
        }
        None => !move_back(pipeline, dlq, job, &request, m, report).await,
    }
}

fn count_settled(report: &mut ReplayReport, settled: Option<Status>) {
    if settled == Some(Status::Expired) {
        report.expired += 1;
    } else {
        report.already_sent += 1;
    }
}

/// Deletes a job the ledger has settled; an expired one is recorded
/// EXPIRED first.
async fn remove_settled(
    pipeline: &Pipeline,
    dlq: &dyn JobQueue,
    request: &DeliveryRequest,
    status: Status,
    m: &ReceivedMessage,
) {
    let now = pipeline.clock.now();
    if status == Status::Expired {
        pipeline.settings.metrics.expired(request.channel);
    }
    // A job the ledger already holds as EXPIRED needs no second write.
    if status == Status::Expired && request.otp_expires <= now {
        let ttl = pipeline.expires_at(request.otp_expires);
        if let Err(e) = pipeline
            .ledger
            .claims
            .mark_expired(&request.event_id, now.timestamp_millis(), ttl)
            .await
        {
            tracing::warn!(error = %e, "could not record the expiry");
        }
    }
    if let Err(e) = dlq.delete(&m.receipt_handle).await {
        tracing::warn!(error = %e, "could not delete a settled job from the dead-letter queue");
    }
    tracing::info!(event_id = %request.event_id, status = status.as_str(), "settled job removed");
}

/// Sends a job back to the main queue under a new dedup id, then deletes
/// the DLQ copy. True when it moved.
async fn move_back(
    pipeline: &Pipeline,
    dlq: &dyn JobQueue,
    mut job: Job,
    request: &DeliveryRequest,
    m: &ReceivedMessage,
    report: &mut ReplayReport,
) -> bool {
    job.replays += 1;
    let out = OutgoingMessage {
        body: job.encode(),
        group_id: destination_hash(&pipeline.settings.hash_key, &request.phone),
        dedup_id: replay_dedup_id(request.event_id.as_str(), job.replays),
    };
    match pipeline.queue.send(out).await {
        Ok(_) => {
            // Only now is it safe to let the DLQ copy go.
            if let Err(e) = dlq.delete(&m.receipt_handle).await {
                tracing::warn!(error = %e, "moved, but the DLQ copy could not be deleted");
            }
            tracing::info!(event_id = %request.event_id, replays = job.replays, "job moved back to the queue");
            pipeline.settings.metrics.replayed(request.channel);
            report.moved += 1;
            true
        }
        Err(e) => {
            tracing::warn!(event_id = %request.event_id, error = %e, "could not move the job; it stays");
            report.failed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_ids_fit_sqs() {
        assert_eq!(replay_dedup_id("evt-1", 2), "evt-1#replay2");
        let long = "x".repeat(128);
        assert_eq!(replay_dedup_id(&long, 3).len(), 128);
    }

    #[test]
    fn request_defaults_and_strictness() {
        let r: ReplayRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(
            r,
            ReplayRequest {
                max_messages: 100,
                dry_run: false
            }
        );
        assert!(
            serde_json::from_str::<ReplayRequest>(r#"{"maxMessages": 5, "dryrun": true}"#).is_err()
        );
    }
}

/// What moving the timers' dead-letter queue back did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReplayReport {
    /// Checks put back on the timers queue (due at once if their time has
    /// passed) and removed from the dead-letter queue.
    pub moved: u32,
    /// Messages that are not checks: left where they are.
    pub unreadable: u32,
}

/// Moves up to `max` checks from the timers' dead-letter queue (`dlq`)
/// back to the timers queue (`timers`), where the receipts function decides
/// them as it does any check. Each is put back before it is removed, so a
/// failure between the two leaves it in both places at worst, and a check
/// decides its send once however often it arrives (the ledger's
/// conditional writes; a fallback call's claim). Nothing is lost and
/// nothing is done twice.
pub async fn replay_checks(
    dlq: &dyn crate::timers::Timers,
    timers: &dyn crate::timers::Timers,
    now_ms: i64,
    max: u32,
) -> Result<CheckReplayReport, QueueError> {
    use crate::timers::Check;
    let mut report = CheckReplayReport::default();
    let max = max.min(MAX_PER_CALL);
    while report.moved + report.unreadable < max {
        let batch = dlq.arrived(10).await?;
        if batch.is_empty() {
            break;
        }
        for a in batch {
            let Some(check) = Check::decode(&a.body) else {
                tracing::warn!(
                    "a message in the timers' dead-letter queue that is not a check; left there"
                );
                report.unreadable += 1;
                continue;
            };
            timers.schedule(&check, now_ms).await?;
            dlq.done(&a.handle).await?;
            report.moved += 1;
        }
    }
    tracing::info!(
        moved = report.moved,
        unreadable = report.unreadable,
        "timers' dead-letter queue replayed"
    );
    Ok(report)
}
