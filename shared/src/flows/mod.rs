//! The flows, as pure orchestration over the ports:
//!
//! - [`hook`]: the ingress flow ([`Pipeline::handle_hook`]): guard, claim,
//!   enqueue, fast path;
//! - [`dispatch`]: the dispatcher flow ([`dispatch::dispatch_batch`]) and
//!   [`dispatch::poll_once`], which plays Lambda's SQS event source for local
//!   mode and tests;
//! - [`replay`]: draining the dead-letter queue on demand;
//! - [`receipts`]: the provider's delivery receipts onto the ledger;
//! - [`conversion`]: what follows a confirmed send (noted for conversion,
//!   an expiry check, the learning guard's counts), sign-ins from Okta's
//!   event hook marking sends `CONVERTED`, and expiry checks marking them
//!   `UNUSED`;
//! - [`fallback`]: the optional voice call for an SMS that cannot arrive;
//! - [`guard`]: the toll-fraud checks the ingress runs first.
//!
//! This module owns the [`Pipeline`] (the ports and settings every flow
//! shares, built by `wiring`), the [`Delivery`] port the HTTP edge hands
//! requests to, and the steps the flows share: render and send once, record
//! a terminal state, queue a job.
//!
//! The invariant (ARCHITECTURE.md, RELIABILITY.md): SUCCESSFUL only after the provider
//! accepted the message; PENDING only after the job is durably queued;
//! otherwise Okta is told to use its fallback. No accepted OTP is lost, and
//! no OTP is sent twice once a send was confirmed.

pub mod conversion;
pub mod dispatch;
pub mod fallback;
pub mod guard;
pub mod hook;
pub mod receipts;
pub mod replay;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::crypto::keyed_hash;
use crate::domain::Channel;
use crate::domain::Route;
use crate::domain::{DeliveryOutcome, DeliveryRequest, EventId, FailureCause, Job, PhoneNumber};
use crate::ledger::LastSend;
use crate::ledger::{ClaimEnd, EndClaim, LedgerError, Parts, SendConfirmed};
use crate::messenger::routes::Routes;
use crate::messenger::{OutboundMessage, SendError, SendReceipt};
use crate::okta::SUMMARY_NOT_DELIVERED;
use crate::okta::events::EventBatch;
use crate::queue::{JobQueue, OutgoingMessage, QueueError};
use crate::templates::{Rendered, Templates};
use crate::timers::Timers;

pub use conversion::SignInReport;
pub use dispatch::{PollReport, PollerSettings, dispatch_batch, poll_once, run_poller};
pub use guard::GuardSettings;
pub use settings::{EventSources, PipelineConfig, PipelineSettings};

/// What the HTTP edge hands a validated request to. The pipeline is the
/// real one; the test kit has a recording double.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// `arrived` is when the hook request arrived; budgets count from it.
    async fn deliver(&self, request: DeliveryRequest, arrived: Instant) -> DeliveryOutcome;

    /// An authenticated event hook batch's sign-ins, matched to sends.
    async fn sign_ins(&self, batch: &EventBatch) -> Result<SignInReport, LedgerError>;
}

/// Everything the flows need, built once per process by
/// `wiring::PipelineBuilder` (`non_exhaustive` keeps it the only way).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pipeline {
    /// The ledger, by capability: each flow uses only its part.
    pub ledger: Parts,
    pub queue: Arc<dyn JobQueue>,
    /// The routes messages go by, each with its messenger.
    pub routes: Routes,
    pub templates: Templates,
    pub clock: Arc<dyn Clock>,
    /// Where expiry checks wait (conversion tracking).
    pub timers: Arc<dyn Timers>,
    pub settings: PipelineSettings,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The FIFO message group id of a destination.
pub fn destination_hash(key: &crate::crypto::HashKey, phone: &PhoneNumber) -> String {
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
    /// Assembles a pipeline from its parts; `wiring::PipelineBuilder` is the
    /// public way in.
    pub(crate) fn from_parts(
        ledger: Parts,
        queue: Arc<dyn JobQueue>,
        routes: Routes,
        templates: Templates,
        clock: Arc<dyn Clock>,
        timers: Arc<dyn Timers>,
        settings: PipelineSettings,
    ) -> Self {
        Pipeline {
            ledger,
            queue,
            routes,
            templates,
            clock,
            timers,
            settings,
        }
    }

    /// The TTL of a ledger record: the OTP's expiry plus the retention.
    pub(crate) fn expires_at(&self, otp_expires: DateTime<Utc>) -> i64 {
        otp_expires.timestamp() + i64::try_from(self.settings.retention.as_secs()).unwrap_or(86_400)
    }

    fn failed(cause: FailureCause) -> DeliveryOutcome {
        DeliveryOutcome::Failed {
            summary: SUMMARY_NOT_DELIVERED.to_owned(),
            cause,
        }
    }

    /// What the message says the code is valid for, in whole minutes: the
    /// time left, but never more than the OTP's configured life, so a far
    /// future `otpExpires` does not make the text claim days.
    fn minutes_left(&self, remaining_secs: i64) -> i64 {
        let life = i64::try_from(self.settings.otp_life.as_secs()).unwrap_or(300);
        (remaining_secs.min(life).max(1) + 59) / 60
    }

    /// The message for a request: Okta's own SMS text when it came with the
    /// request (`SMS_TEXT=okta`), our template otherwise.
    async fn message_for(
        &self,
        req: &DeliveryRequest,
        remaining_secs: i64,
    ) -> Result<Rendered, SendError> {
        if let (Some(text), Channel::Sms) = (&req.context.okta_text, req.channel) {
            return Ok(Rendered::okta_sms(text, &req.locale));
        }
        self.templates
            .render(
                &req.locale,
                req.channel,
                &req.otp,
                self.minutes_left(remaining_secs),
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "no template renders for this request");
                SendError::Permanent {
                    code: "TemplateError".into(),
                    reason: None,
                }
            })
    }

    /// Renders and sends one message by the first route that can take it,
    /// and times each provider call. With two routes, a route failure of
    /// the first (see [`SendError::is_route_failure`]) sends by the second
    /// at once; a throttle or an outage does not (the same route is tried
    /// again later), so no code goes out twice by one route. A resend (the
    /// same person asking again within the window) starts with the route
    /// the last code did not take. The code is only in the message.
    async fn send_once(&self, req: &DeliveryRequest) -> Result<(Route, SendReceipt), SendError> {
        let now = self.clock.now();
        let remaining = (req.otp_expires - now).num_seconds().max(0);
        let message = OutboundMessage {
            event_id: req.event_id.clone(),
            request_type: req.request_type.short().to_owned(),
            to: req.phone.clone(),
            rendered: self.message_for(req, remaining).await?,
            code: req.otp.clone(),
            locale: req.locale.clone(),
            ttl_seconds: remaining,
        };
        let plan = self.routes.plan();
        let order = plan.order(self.resent_after(req).await);
        let mut last = None;
        for (i, route) in order.iter().enumerate() {
            let Some(messenger) = self.routes.messenger(*route) else {
                continue;
            };
            let started = Instant::now();
            let result = messenger.send(&message).await;
            self.time_call(req, *route, &result, started);
            match result {
                Ok(receipt) => return Ok((*route, receipt)),
                Err(e) if e.is_route_failure() && i + 1 < order.len() => {
                    tracing::warn!(route = %route, error = %e, "the route cannot deliver this code; trying the other route");
                    self.settings
                        .metrics
                        .route_failover(*route, req.channel, e.code());
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(SendError::Permanent {
            code: "NoRoute".into(),
            reason: None,
        }))
    }

    fn time_call(
        &self,
        req: &DeliveryRequest,
        route: Route,
        result: &Result<SendReceipt, SendError>,
        started: Instant,
    ) {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match result {
            Ok(_) => "ACCEPTED",
            Err(e) if e.is_retryable() => "RETRYABLE",
            Err(_) => "PERMANENT",
        };
        let country = req.phone.region().map(|r| r.as_str()).unwrap_or("unknown");
        self.settings
            .metrics
            .provider_latency(req.channel, country, outcome, elapsed_ms);
        tracing::debug!(
            elapsed_ms = elapsed_ms.round() as u64,
            outcome,
            route = %route,
            "provider call"
        );
    }

    /// Who the last-send memory knows a person by: a keyed hash of the
    /// number and the Okta user (the number alone when Okta named none).
    fn person_key(&self, req: &DeliveryRequest) -> String {
        let user = req
            .user_id
            .as_ref()
            .map(|u| u.key(crate::crypto::keyed(&self.settings.hash_key)))
            .unwrap_or_default();
        keyed_hash(
            &self.settings.hash_key,
            &format!("{}#{user}", req.phone.e164()),
        )
    }

    /// The route of the last code this person got, when this request is a
    /// new one for them within the resend window (with two routes only: one
    /// route has nothing to switch to). A lost read sends as usual.
    async fn resent_after(&self, req: &DeliveryRequest) -> Option<Route> {
        let window = self.settings.resend_window?;
        self.routes.plan().second?;
        let last = match self.ledger.resends.last_send(&self.person_key(req)).await {
            Ok(last) => last?,
            Err(e) => {
                tracing::warn!(error = %e, "last send unknown; the first route goes first");
                return None;
            }
        };
        let since = self.clock.now_ms() - last.sent_ms;
        let resend = last.event_id != req.event_id.as_str()
            && (0..=i64::try_from(window.as_millis()).unwrap_or(i64::MAX)).contains(&since);
        if resend {
            tracing::info!(last_route = %last.route, "a resend; the other route goes first");
            self.settings.metrics.resend(last.route, req.channel);
        }
        resend.then_some(last.route)
    }

    /// Remembers a confirmed send for the resend rule (two routes only).
    async fn note_last_send(&self, req: &DeliveryRequest, route: Route) {
        let Some(window) = self.settings.resend_window else {
            return;
        };
        if self.routes.plan().second.is_none() {
            return;
        }
        let now_ms = self.clock.now_ms();
        let last = LastSend {
            event_id: req.event_id.as_str().to_owned(),
            route,
            sent_ms: now_ms,
        };
        let expires_at = now_ms / 1000 + i64::try_from(window.as_secs()).unwrap_or(3600) + 60;
        if let Err(e) = self
            .ledger
            .resends
            .note_last_send(&self.person_key(req), &last, expires_at)
            .await
        {
            tracing::warn!(error = %e, "the last send was not remembered; a resend takes the first route");
        }
    }

    /// Writes a terminal state, retrying passing ledger errors a few times
    /// with short backoff: a send that went out but was never recorded is a
    /// send someone may repeat.
    async fn record<T, F, Fut>(&self, what: &'static str, write: F) -> Result<T, LedgerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LedgerError>>,
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

    /// Records a confirmed send and its route (with retries), and
    /// remembers it for the resend rule.
    async fn record_sent(
        &self,
        req: &DeliveryRequest,
        route: Route,
        receipt: &SendReceipt,
    ) -> Result<(), LedgerError> {
        self.record("mark_sent", || async {
            let sent = SendConfirmed {
                event_id: &req.event_id,
                message_id: &receipt.message_id,
                route,
                now_ms: self.clock.now_ms(),
            };
            self.ledger.claims.mark_sent(&sent).await
        })
        .await?;
        self.note_last_send(req, route).await;
        Ok(())
    }

    /// Records a permanent failure (with retries).
    async fn record_failed(
        &self,
        event_id: &EventId,
        owner: &str,
        why: &str,
    ) -> Result<(), LedgerError> {
        self.record("end_claim", || async {
            let ending = EndClaim {
                event_id,
                owner,
                end: ClaimEnd::Failed,
                reason: why,
                now_ms: self.clock.now_ms(),
            };
            self.ledger.claims.end_claim(&ending).await
        })
        .await
    }

    /// Hands the claim back after a send that did not happen, so the next
    /// try need not wait for the lease. A failure here only costs that wait.
    async fn release(&self, event_id: &EventId, owner: &str, why: &str) {
        if let Err(e) = self
            .ledger
            .claims
            .end_claim(&EndClaim {
                event_id,
                owner,
                end: ClaimEnd::Released,
                reason: why,
                now_ms: self.clock.now_ms(),
            })
            .await
        {
            tracing::warn!(error = %e, "could not release the claim; the next try waits for the lease");
        }
    }

    /// Queues the job for the dispatcher; the eventId is the dedup id.
    /// Queues the job; its message group is `destination`, the number's
    /// keyed hash ([`destination_hash`]).
    async fn enqueue(
        &self,
        req: &DeliveryRequest,
        destination: &str,
    ) -> Result<String, QueueError> {
        self.queue
            .send(OutgoingMessage {
                body: Job::from_request(req, crate::crypto::keyed(&self.settings.hash_key))
                    .encode(),
                group_id: destination.to_owned(),
                dedup_id: req.event_id.as_str().to_owned(),
            })
            .await
    }
}
