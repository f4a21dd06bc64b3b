//! The ingress flow: one validated hook request in, Okta's answer out.
//!
//! Guard against toll fraud, claim the event in the ledger, queue the job,
//! then try to send inside the fast-path budget. SUCCESSFUL only after the
//! provider accepted; PENDING only once the job is queued; FAILED otherwise,
//! so that Okta falls back to its own provider.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::guard::{Refusal, RefusalAnswer};
use super::{Delivery, Pipeline, destination_hash, failure_text, guard, millis};
use crate::crypto::unique_token;
use crate::domain::{Channel, DeliveryOutcome, DeliveryRequest, FailureCause, RequestType};
use crate::ledger::{Claim, ClaimEnd, ClaimOutcome, EndClaim};
use crate::messenger::SendError;
use crate::telemetry::metrics::Metrics;

impl Pipeline {
    /// The ingress flow: guard, claim, enqueue, then try to send inside the
    /// budget. Counts the hook and its answer in the metrics.
    pub async fn handle_hook(&self, req: DeliveryRequest, arrived: Instant) -> DeliveryOutcome {
        let channel = req.channel;
        let metrics = &self.settings.metrics;
        metrics.hook_received(channel);
        count_read_notes(&self.settings.metrics, &req);
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

    async fn answer_hook(&self, mut req: DeliveryRequest, arrived: Instant) -> DeliveryOutcome {
        let now = self.clock.now();
        super::fallback::landline_to_voice(self, &mut req);
        if req.otp_expires <= now {
            tracing::warn!("OTP already expired on arrival; not sending");
            return Self::failed(FailureCause::EXPIRED);
        }
        let guarded = guard::check(
            &self.settings.guard,
            (self.ledger.rates.as_ref(), self.ledger.guard.as_ref()),
            &self.settings.hash_key,
            &req,
            now.timestamp_millis(),
        )
        .await;
        if let Err(refusal) = guarded {
            tracing::warn!(reason = ?refusal, to = %req.phone, "refused by the toll-fraud guard");
            self.settings.metrics.refused(req.channel, refusal.kind());
            guard::count_refusal(self, &req, &refusal, now.timestamp_millis()).await;
            return match self.settings.guard.on_refusal {
                RefusalAnswer::Fallback => Self::failed(refusal.cause()),
                RefusalAnswer::Block => self.block(&req, &refusal, now).await,
            };
        }
        let owner = unique_token();
        // The number's keyed hash: the claim keeps it, the job's message
        // group is it. Computed once.
        let destination = destination_hash(&self.settings.hash_key, &req.phone);
        let attempts = match self.claim_for_hook(&req, &destination, &owner, now).await {
            Ok(attempts) => attempts,
            Err(answer) => return answer,
        };

        let enqueued = self.enqueue(&req, &destination).await;
        match &enqueued {
            Ok(id) => tracing::info!(queue_message_id = %id, "job queued"),
            Err(e) => tracing::error!(error = %e, "could not queue the job; trying to send inline"),
        }
        let queued = enqueued.is_ok();
        if !self.settings.fast_path && queued {
            // Hand the claim to the dispatcher right away.
            self.release(&req.event_id, &owner, "queued").await;
            return pending(&req, "queued");
        }
        self.fast_path(&req, &owner, attempts, queued, arrived)
            .await
    }

    /// Claims the event for this hook. `Err` carries the answer when the
    /// ledger already knows the event, or cannot be reached.
    async fn claim_for_hook(
        &self,
        req: &DeliveryRequest,
        destination: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, DeliveryOutcome> {
        let claim = Claim {
            event_id: &req.event_id,
            channel: req.channel,
            owner,
            correlation_id: req.context.correlation_id.as_deref(),
            country: req.phone.region().map(|r| r.as_str()),
            destination: Some(destination),
            now_ms: now.timestamp_millis(),
            lease_ms: millis(self.settings.ingress_lease),
            expires_at: self.expires_at(req.otp_expires),
            sends: self.settings.fast_path,
        };
        match self.ledger.claims.claim(&claim).await {
            Ok(ClaimOutcome::Claimed { attempts }) => Ok(attempts),
            Ok(ClaimOutcome::AlreadySent { message_id }) => {
                tracing::info!("event already sent; answering from the ledger");
                let channel = self.sent_channel(req, destination).await;
                Err(DeliveryOutcome::Successful {
                    transaction_id: message_id.unwrap_or_else(|| req.event_id.to_string()),
                    metadata: Some(described(channel, req, "duplicate")),
                })
            }
            Ok(ClaimOutcome::Busy { .. }) => {
                // Another worker holds the event. PENDING is only true once the
                // job is queued, and that worker may have died before queuing
                // it: queue it too. The dedup id (the eventId) makes a second
                // copy vanish, and the ledger makes a second send impossible.
                tracing::info!("event is being delivered by another worker");
                Err(match self.enqueue(req, destination).await {
                    Ok(_) => pending(req, "in progress"),
                    Err(e) => {
                        tracing::error!(error = %e, "event held elsewhere and not queued here; Okta will use its own provider");
                        Self::failed(FailureCause::NOT_QUEUED)
                    }
                })
            }
            Ok(ClaimOutcome::AlreadyFailed { .. }) | Ok(ClaimOutcome::AlreadyExpired) => {
                tracing::info!("event already ended unsent");
                Err(Self::failed(FailureCause::ALREADY_ENDED))
            }
            Ok(ClaimOutcome::AlreadyBlocked { .. }) => {
                tracing::info!("event already blocked by the guard");
                Err(blocked(req))
            }
            Err(e) => {
                // Without the ledger there is no idempotency; let Okta deliver.
                tracing::error!(error = %e, "ledger unavailable; Okta will use its own provider");
                Err(Self::failed(FailureCause::LEDGER_UNAVAILABLE))
            }
        }
    }

    /// The channel an already sent event went by. An event id Okta sends
    /// again carries the same payload; one that comes back with another
    /// number or channel is someone reusing it: nothing is sent, the
    /// answer names what was sent, and the log says so (the number
    /// masked).
    async fn sent_channel(&self, req: &DeliveryRequest, destination: &str) -> Channel {
        let Ok(Some(record)) = self.ledger.claims.get(&req.event_id).await else {
            return req.channel;
        };
        let channel = record.channel.unwrap_or(req.channel);
        let other_number = record
            .destination
            .as_deref()
            .is_some_and(|d| d != destination);
        if channel != req.channel || other_number {
            tracing::warn!(
                to = %req.phone,
                channel = %req.channel,
                sent_channel = %channel,
                other_number,
                "event id reused with a different payload; answered from the send it names, nothing sent"
            );
            self.settings
                .metrics
                .read_note(req.channel, "EVENT_ID_REUSED");
        }
        channel
    }

    /// Sends inline until the deadline and answers from what happened.
    async fn fast_path(
        &self,
        req: &DeliveryRequest,
        owner: &str,
        attempts: u32,
        queued: bool,
        arrived: Instant,
    ) -> DeliveryOutcome {
        let deadline = arrived + self.settings.fast_path_budget;
        let why = match tokio::time::timeout_at(deadline, self.send_once(req)).await {
            Ok(Ok((route, receipt))) => {
                match self.record_sent(req, route, &receipt).await {
                    Ok(()) => self.after_sent(req, Some(arrived)).await,
                    Err(e) => {
                        tracing::error!(error = %e, "sent, but could not record it; the dispatcher may send once more");
                    }
                }
                tracing::info!(provider_message_id = %receipt.message_id, to = %req.phone, route = %route, "sent on the fast path");
                return DeliveryOutcome::Successful {
                    transaction_id: receipt.message_id,
                    metadata: Some(metadata(req, &format!("attempt={attempts}"))),
                };
            }
            Ok(Err(e)) if !e.is_retryable() => return self.refused(req, owner, &e).await,
            Ok(Err(e)) => failure_text(&e),
            Err(_) => "fast-path deadline".to_owned(),
        };
        tracing::info!(reason = %why, queued, "fast path did not confirm a send");
        if queued {
            self.release(&req.event_id, owner, &why).await;
            return pending(req, "queued");
        }
        // Neither queued nor sent: nothing of ours will deliver it.
        let _ = self
            .ledger
            .claims
            .end_claim(&EndClaim {
                event_id: &req.event_id,
                owner,
                end: ClaimEnd::Failed,
                reason: &format!("not queued; {why}"),
                now_ms: self.clock.now_ms(),
            })
            .await;
        Self::failed(FailureCause::NOT_QUEUED)
    }

    /// Answers a guard refusal so that Okta does not fall back, and records
    /// it as BLOCKED. Claiming first keeps a repeated hook's answer the same.
    async fn block(
        &self,
        req: &DeliveryRequest,
        refusal: &Refusal,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        self.settings.metrics.blocked(req.channel, refusal.kind());
        let owner = unique_token();
        let destination = destination_hash(&self.settings.hash_key, &req.phone);
        match self.claim_for_hook(req, &destination, &owner, now).await {
            Ok(_) => {
                let why = format!("guard:{}", refusal.cause().reason);
                if let Err(e) = self
                    .ledger
                    .claims
                    .end_claim(&EndClaim {
                        event_id: &req.event_id,
                        owner: &owner,
                        end: ClaimEnd::Blocked,
                        reason: &why,
                        now_ms: self.clock.now_ms(),
                    })
                    .await
                {
                    tracing::warn!(error = %e, "could not record the block");
                }
                blocked(req)
            }
            // Already sent or already blocked: the ledger's answer stands.
            Err(
                answer @ (DeliveryOutcome::Successful { .. } | DeliveryOutcome::Pending { .. }),
            ) => answer,
            // Nothing of ours will send it, and Okta must not either.
            Err(DeliveryOutcome::Failed { .. }) => blocked(req),
        }
    }

    /// The provider refused the message for good: record it and answer
    /// FAILED, so Okta uses its own provider.
    async fn refused(&self, req: &DeliveryRequest, owner: &str, e: &SendError) -> DeliveryOutcome {
        tracing::warn!(error = %e, "provider refused the message");
        if let Err(le) = self
            .record_failed(&req.event_id, owner, &failure_text(e))
            .await
        {
            tracing::warn!(error = %le, "could not record the failure");
        }
        Self::failed(FailureCause::PROVIDER_REFUSED)
    }
}

/// `transactionMetadata`: the channel, what happened, and Okta's request id,
/// so the answer in Okta's System Log leads to our logs and ledger record.
fn metadata(req: &DeliveryRequest, what: &str) -> String {
    described(req.channel, req, what)
}

/// The answer's metadata: the channel the code went by, what happened,
/// and Okta's request id.
fn described(channel: Channel, req: &DeliveryRequest, what: &str) -> String {
    match &req.context.correlation_id {
        Some(id) => format!("channel={channel}; {what}; okta_request={id}"),
        None => format!("channel={channel}; {what}"),
    }
}

fn pending(req: &DeliveryRequest, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::Pending {
        metadata: Some(metadata(req, why)),
    }
}

/// A guard refusal under `GUARD_REFUSAL=block`: PENDING, which Okta does not
/// fall back on, saying it was blocked.
fn blocked(req: &DeliveryRequest) -> DeliveryOutcome {
    pending(req, "blocked by the toll-fraud guard; not sent")
}

/// Counts what was unusual about how the request was read.
fn count_read_notes(metrics: &Metrics, req: &DeliveryRequest) {
    let notes = req.context.notes;
    let request_type = match req.request_type {
        RequestType::Unknown if notes.request_type_unreadable => Some("REQUEST_TYPE_UNREADABLE"),
        RequestType::Unknown => Some("REQUEST_TYPE_MISSING"),
        RequestType::Other(_) => Some("REQUEST_TYPE_NEW"),
        _ => None,
    };
    for note in [
        notes.phone_ambiguous.then_some("AMBIGUOUS_NUMBER"),
        notes.expiry_assumed.then_some("ASSUMED_EXPIRY"),
        notes.expiry_capped.then_some("CAPPED_EXPIRY"),
        request_type,
    ]
    .into_iter()
    .flatten()
    {
        metrics.read_note(req.channel, note);
    }
}

#[async_trait]
impl Delivery for Pipeline {
    async fn deliver(&self, request: DeliveryRequest, arrived: Instant) -> DeliveryOutcome {
        self.handle_hook(request, arrived).await
    }

    async fn sign_ins(
        &self,
        batch: &crate::okta::events::EventBatch,
    ) -> Result<super::SignInReport, crate::ledger::LedgerError> {
        super::conversion::record_sign_ins(self, batch).await
    }
}
