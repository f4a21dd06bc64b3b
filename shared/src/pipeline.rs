//! The flows, as pure orchestration over the ports: [`Pipeline::handle_hook`]
//! for the ingress, [`dispatch_batch`] for the dispatcher, and
//! [`poll_once`], which plays Lambda's SQS event source for local mode and
//! tests.
//!
//! The invariant, from DESIGN.md: SUCCESSFUL only after the provider
//! accepted the message; PENDING only after the job is durably queued;
//! otherwise Okta is told to use its fallback. No accepted OTP is lost, and
//! no OTP is sent twice once a send was confirmed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::{Instrument, field};

use crate::clock::Clock;
use crate::delivery::{
    Delivery, DeliveryError, DeliveryOutcome, Messenger, OutboundMessage, SendError, SendReceipt,
    random_hex,
};
use crate::guard::{self, GuardSettings};
use crate::job::Job;
use crate::ledger::{Claim, ClaimOutcome, Ledger, LedgerError};
use crate::metrics::Metrics;
use crate::okta::{DeliveryRequest, SUMMARY_NOT_DELIVERED};
use crate::phone::PhoneNumber;
use crate::queue::{JobQueue, OutgoingMessage, QueueError};
use crate::template::Templates;

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Try to send inline before answering Okta.
    pub fast_path: bool,
    /// Deadline for the fast path, counted from request arrival.
    pub fast_path_budget: Duration,
    /// How long an ingress claim holds. Longer than the fast path, shorter
    /// than the time before the dispatcher would retry a busy job.
    pub ingress_lease: Duration,
    /// How long a dispatcher claim holds; longer than one provider call.
    pub dispatcher_lease: Duration,
    /// How long a ledger record is kept after the OTP expires.
    pub retention: Duration,
    /// Key for the keyed hash of destinations (message group ids, rate keys).
    pub hash_key: Vec<u8>,
    /// Country allow-list, number-type check and rate limits.
    pub guard: GuardSettings,
    /// Where delivery metrics go (EMF on stdout in Lambda).
    pub metrics: Metrics,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            fast_path: true,
            fast_path_budget: Duration::from_millis(2000),
            ingress_lease: Duration::from_secs(15),
            dispatcher_lease: Duration::from_secs(60),
            retention: Duration::from_secs(86_400),
            hash_key: Vec::new(),
            guard: GuardSettings::default(),
            metrics: Metrics::default(),
        }
    }
}

/// Everything the flows need, built once per process.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub ledger: Arc<dyn Ledger>,
    pub queue: Arc<dyn JobQueue>,
    pub messenger: Arc<dyn Messenger>,
    pub templates: Templates,
    pub clock: Arc<dyn Clock>,
    pub settings: PipelineSettings,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Keyed hash (HMAC-SHA256, 128 bits in hex): stable across instances,
/// useless to anyone without the key. Message group ids and rate-limit keys
/// are made with it.
pub fn keyed_hash(key: &[u8], value: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, value.as_bytes());
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The FIFO message group id of a destination.
pub fn destination_hash(key: &[u8], phone: &PhoneNumber) -> String {
    keyed_hash(key, phone.e164())
}

/// Why a send was not confirmed, for the ledger and the logs.
fn failure_text(e: &SendError) -> String {
    match e {
        SendError::Retryable { code } => format!("retryable:{code}"),
        SendError::Permanent { code, reason } => match reason {
            Some(r) => format!("permanent:{code}:{r}"),
            None => format!("permanent:{code}"),
        },
    }
}

impl Pipeline {
    fn expires_at(&self, otp_expires: DateTime<Utc>) -> i64 {
        otp_expires.timestamp() + i64::try_from(self.settings.retention.as_secs()).unwrap_or(86_400)
    }

    fn failed() -> DeliveryOutcome {
        DeliveryOutcome::Failed {
            summary: SUMMARY_NOT_DELIVERED.to_owned(),
        }
    }

    /// Renders and sends one message. The code is only in the message.
    async fn send_once(&self, req: &DeliveryRequest) -> Result<SendReceipt, SendError> {
        let now = self.clock.now();
        let remaining = (req.otp_expires - now).num_seconds().max(0);
        let minutes = (remaining + 59) / 60;
        let rendered = self
            .templates
            .render(&req.locale, req.channel, &req.otp, minutes)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "no template renders for this request");
                SendError::Permanent {
                    code: "TemplateError".into(),
                    reason: None,
                }
            })?;
        let started = Instant::now();
        let result = self
            .messenger
            .send(&OutboundMessage {
                event_id: req.event_id.clone(),
                request_type: req.request_type.short().to_owned(),
                to: req.phone.clone(),
                rendered,
                ttl_seconds: remaining,
            })
            .await;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "provider call"
        );
        result
    }

    /// Writes a terminal state, retrying passing ledger errors a few times
    /// with short backoff: a send that went out but was never recorded is a
    /// send someone may repeat.
    async fn record<F, Fut>(&self, what: &'static str, write: F) -> Result<(), LedgerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), LedgerError>>,
    {
        write
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(10))
                    .with_max_delay(Duration::from_millis(200))
                    .with_max_times(5),
            )
            .when(LedgerError::is_retryable)
            .notify(|e, _| tracing::debug!(error = %e, what, "retrying a ledger write"))
            .await
    }

    /// Queues the job for the dispatcher; the eventId is the dedup id.
    async fn enqueue(&self, req: &DeliveryRequest) -> Result<String, QueueError> {
        self.queue
            .send(OutgoingMessage {
                body: Job::from_request(req).encode(),
                group_id: destination_hash(&self.settings.hash_key, &req.phone),
                dedup_id: req.event_id.as_str().to_owned(),
            })
            .await
    }

    /// The ingress flow: guard, claim, enqueue, then try to send inside the
    /// budget. Counts the hook and its answer in the metrics.
    pub async fn handle_hook(&self, req: DeliveryRequest, arrived: Instant) -> DeliveryOutcome {
        let channel = req.channel;
        let metrics = &self.settings.metrics;
        metrics.hook_received(channel);
        let outcome = self.answer_hook(req, arrived).await;
        let status = outcome.status().as_str();
        metrics.answered(channel, status);
        metrics.latency(
            "FastPathLatency",
            channel,
            status,
            arrived.elapsed().as_secs_f64() * 1000.0,
        );
        outcome
    }

    async fn answer_hook(&self, req: DeliveryRequest, arrived: Instant) -> DeliveryOutcome {
        let now = self.clock.now();
        if req.otp_expires <= now {
            tracing::warn!("OTP already expired on arrival; not sending");
            return Self::failed();
        }
        let guarded = guard::check(
            &self.settings.guard,
            self.ledger.as_ref(),
            &self.settings.hash_key,
            &req,
            now.timestamp_millis(),
        )
        .await;
        if let Err(refusal) = guarded {
            tracing::warn!(reason = ?refusal, to = %req.phone, "refused by the toll-fraud guard");
            self.settings.metrics.refused(req.channel, refusal.kind());
            return Self::failed();
        }
        let owner = random_hex(16);
        let claim = Claim {
            event_id: &req.event_id,
            channel: req.channel,
            owner: &owner,
            now_ms: now.timestamp_millis(),
            lease_ms: millis(self.settings.ingress_lease),
            expires_at: self.expires_at(req.otp_expires),
        };
        let attempts = match self.ledger.claim(&claim).await {
            Ok(ClaimOutcome::Claimed { attempts }) => attempts,
            Ok(ClaimOutcome::AlreadySent { message_id }) => {
                tracing::info!("event already sent; answering from the ledger");
                return DeliveryOutcome::Successful {
                    transaction_id: message_id.unwrap_or_else(|| req.event_id.to_string()),
                    metadata: Some(format!("channel={}; duplicate", req.channel)),
                };
            }
            Ok(ClaimOutcome::Busy { .. }) => {
                // Another worker holds the event. PENDING is only true once the
                // job is queued, and that worker may have died before queuing
                // it: queue it too. The dedup id (the eventId) makes a second
                // copy vanish, and the ledger makes a second send impossible.
                tracing::info!("event is being delivered by another worker");
                return match self.enqueue(&req).await {
                    Ok(_) => DeliveryOutcome::Pending {
                        metadata: Some(format!("channel={}; in progress", req.channel)),
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "event held elsewhere and not queued here; Okta will use its own provider");
                        Self::failed()
                    }
                };
            }
            Ok(ClaimOutcome::AlreadyFailed { .. }) | Ok(ClaimOutcome::AlreadyExpired) => {
                tracing::info!("event already ended unsent");
                return Self::failed();
            }
            Err(e) => {
                // Without the ledger there is no idempotency; let Okta deliver.
                tracing::error!(error = %e, "ledger unavailable; Okta will use its own provider");
                return Self::failed();
            }
        };

        let enqueued = self.enqueue(&req).await;
        match &enqueued {
            Ok(id) => tracing::info!(queue_message_id = %id, "job queued"),
            Err(e) => tracing::error!(error = %e, "could not queue the job; trying to send inline"),
        }
        let now_ms = || self.clock.now_ms();

        if !self.settings.fast_path && enqueued.is_ok() {
            // Hand the claim to the dispatcher right away.
            if let Err(e) = self
                .ledger
                .release(&req.event_id, &owner, "queued", now_ms())
                .await
            {
                tracing::warn!(error = %e, "could not release the claim; the dispatcher waits for the lease");
            }
            return DeliveryOutcome::Pending {
                metadata: Some(format!("channel={}; queued", req.channel)),
            };
        }

        let deadline = arrived + self.settings.fast_path_budget;
        let result = tokio::time::timeout_at(deadline, self.send_once(&req)).await;
        match result {
            Ok(Ok(receipt)) => {
                let recorded = self
                    .record("mark_sent", || {
                        self.ledger
                            .mark_sent(&req.event_id, &receipt.message_id, now_ms())
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::error!(error = %e, "sent, but could not record it; the dispatcher may send once more");
                }
                tracing::info!(provider_message_id = %receipt.message_id, to = %req.phone, "sent on the fast path");
                DeliveryOutcome::Successful {
                    transaction_id: receipt.message_id,
                    metadata: Some(format!("channel={}; attempt={attempts}", req.channel)),
                }
            }
            Ok(Err(e)) if !e.is_retryable() => {
                tracing::warn!(error = %e, "provider refused the message");
                let why = failure_text(&e);
                let recorded = self
                    .record("mark_failed", || {
                        self.ledger
                            .mark_failed(&req.event_id, &owner, &why, now_ms())
                    })
                    .await;
                if let Err(le) = recorded {
                    tracing::warn!(error = %le, "could not record the failure");
                }
                Self::failed()
            }
            other => {
                let why = match &other {
                    Ok(Err(e)) => failure_text(e),
                    _ => "fast-path deadline".to_owned(),
                };
                tracing::info!(reason = %why, queued = enqueued.is_ok(), "fast path did not confirm a send");
                if enqueued.is_ok() {
                    if let Err(e) = self
                        .ledger
                        .release(&req.event_id, &owner, &why, now_ms())
                        .await
                    {
                        tracing::warn!(error = %e, "could not release the claim; the dispatcher waits for the lease");
                    }
                    DeliveryOutcome::Pending {
                        metadata: Some(format!("channel={}; queued", req.channel)),
                    }
                } else {
                    // Neither queued nor sent: nothing of ours will deliver it.
                    let _ = self
                        .ledger
                        .mark_failed(
                            &req.event_id,
                            &owner,
                            &format!("not queued; {why}"),
                            now_ms(),
                        )
                        .await;
                    Self::failed()
                }
            }
        }
    }

    /// One job from the queue. `Ok(())` acknowledges it.
    async fn dispatch_one(&self, record: &SqsMessage) -> Result<(), Verdict> {
        let body = record.body.as_deref().ok_or(Verdict::Poison("no body"))?;
        let job = Job::decode(body).map_err(|e| {
            tracing::error!(error = %e, "unreadable job; leaving it for the dead-letter queue");
            Verdict::Poison("not a job")
        })?;
        let req = job.to_request().map_err(|e| {
            tracing::error!(error = %e, "invalid job; leaving it for the dead-letter queue");
            Verdict::Poison("invalid job")
        })?;
        tracing::Span::current().record("event_id", req.event_id.as_str());
        let now = self.clock.now();
        if req.otp_expires <= now {
            tracing::info!("OTP expired before delivery; dropping the job");
            self.settings.metrics.expired(req.channel);
            let ttl = self.expires_at(req.otp_expires);
            let recorded = self
                .record("mark_expired", || {
                    self.ledger
                        .mark_expired(&req.event_id, now.timestamp_millis(), ttl)
                })
                .await;
            if let Err(e) = recorded {
                // Not acknowledged: the job comes back and the next try records it.
                tracing::warn!(error = %e, "could not record the expiry; retrying later");
                return Err(Verdict::Retry);
            }
            return Ok(());
        }
        let owner = random_hex(16);
        let claim = Claim {
            event_id: &req.event_id,
            channel: req.channel,
            owner: &owner,
            now_ms: now.timestamp_millis(),
            lease_ms: millis(self.settings.dispatcher_lease),
            expires_at: self.expires_at(req.otp_expires),
        };
        match self.ledger.claim(&claim).await {
            Ok(ClaimOutcome::Claimed { attempts }) => tracing::info!(attempts, "job claimed"),
            Ok(ClaimOutcome::Busy { .. }) => {
                tracing::info!("event is held by another worker; retrying later");
                return Err(Verdict::Retry);
            }
            Ok(other) => {
                tracing::info!(state = ?other, "event already settled; acknowledging the job");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "ledger unavailable; retrying later");
                return Err(Verdict::Retry);
            }
        }
        let now_ms = || self.clock.now_ms();
        match self.send_once(&req).await {
            Ok(receipt) => {
                let recorded = self
                    .record("mark_sent", || {
                        self.ledger
                            .mark_sent(&req.event_id, &receipt.message_id, now_ms())
                    })
                    .await;
                if let Err(e) = recorded {
                    // Acknowledged anyway: retrying the job would send again.
                    tracing::error!(error = %e, "sent, but could not record it");
                }
                tracing::info!(provider_message_id = %receipt.message_id, to = %req.phone, "sent by the dispatcher");
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "provider busy; retrying later");
                if let Err(le) = self
                    .ledger
                    .release(&req.event_id, &owner, &failure_text(&e), now_ms())
                    .await
                {
                    tracing::warn!(error = %le, "could not release the claim");
                }
                Err(Verdict::Retry)
            }
            Err(e) => {
                tracing::warn!(error = %e, "provider refused the message");
                let why = failure_text(&e);
                let recorded = self
                    .record("mark_failed", || {
                        self.ledger
                            .mark_failed(&req.event_id, &owner, &why, now_ms())
                    })
                    .await;
                match recorded {
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
}

/// Why a job was not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Retry,
    Poison(&'static str),
}

#[async_trait]
impl Delivery for Pipeline {
    async fn deliver(
        &self,
        request: DeliveryRequest,
        arrived: Instant,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        Ok(self.handle_hook(request, arrived).await)
    }
}

/// The dispatcher flow over one SQS FIFO batch, in order. A failed message
/// is reported together with every later message of its group, so FIFO
/// order holds; other groups go on.
pub async fn dispatch_batch(pipeline: &Pipeline, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut failed_groups: HashSet<String> = HashSet::new();
    for record in &event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        let span = tracing::info_span!("job", message_id = %message_id, event_id = field::Empty);
        let verdict = if failed_groups.contains(&group) {
            span.in_scope(|| {
                tracing::info!("an earlier message of this group failed; keeping order")
            });
            Err(Verdict::Retry)
        } else {
            pipeline.dispatch_one(record).instrument(span).await
        };
        if let Err(v) = verdict {
            if let Verdict::Poison(why) = v {
                tracing::error!(message_id = %message_id, reason = why, "poison message reported for redrive");
            }
            failed_groups.insert(group);
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
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
/// Reported failures are left to the visibility timeout and the redrive.
pub async fn poll_once(
    queue: &dyn JobQueue,
    pipeline: &Pipeline,
    wait: Duration,
) -> Result<PollReport, QueueError> {
    let messages = queue.receive(10, wait).await?;
    if messages.is_empty() {
        return Ok(PollReport::default());
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
    Ok(report)
}
