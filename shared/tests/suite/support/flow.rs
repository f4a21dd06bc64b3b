//! A pipeline over the in-memory adapters, with a manual clock, for flow tests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use telehook::clock::Clock;
use telehook::domain::channel::Channel;
use telehook::domain::job::Job;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::domain::{DeliveryRequest, EventId, RequestType};
use telehook::flows::guard::GuardSettings;
use telehook::flows::{Pipeline, PipelineSettings, destination_hash, poll_once};
use telehook::ledger::{InMemoryLedger, Ledger, LedgerRecord, Parts};
use telehook::messenger::SendError;
use telehook::queue::{
    FifoSettings, InMemoryFifo, JobQueue, OutgoingMessage, QueueDepth, QueueError, ReceivedMessage,
};
use telehook::templates::Templates;
use telehook::testkit::ManualClock;
use telehook::testkit::{Scripted, ScriptedMessenger};

pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub ledger: Arc<dyn Ledger>,
    pub queue: Arc<InMemoryFifo>,
    pub dlq: Arc<InMemoryFifo>,
    pub messenger: Arc<ScriptedMessenger>,
    pub pipeline: Pipeline,
}

/// Replaces some of the ledger's capabilities with wrappers of the
/// harness's in-memory ledger, for a test whose ledger misbehaves.
pub type LedgerTweak = fn(Arc<InMemoryLedger>, &mut Parts);

pub fn harness_with(
    fast_path: bool,
    ledger: Option<LedgerTweak>,
    queue: Option<Arc<dyn JobQueue>>,
) -> Harness {
    harness_on(
        Arc::new(ManualClock::at_hour_start()),
        fast_path,
        ledger,
        queue,
    )
}

/// A harness on a given clock, for a queue built on the same clock.
pub fn harness_on(
    clock: Arc<ManualClock>,
    fast_path: bool,
    ledger: Option<LedgerTweak>,
    queue: Option<Arc<dyn JobQueue>>,
) -> Harness {
    harness_guarded(clock, fast_path, ledger, queue, GuardSettings::default())
}

/// A harness with these guard settings (conversions and the learning
/// guard are in them).
pub fn harness_guarded(
    clock: Arc<ManualClock>,
    fast_path: bool,
    tweak: Option<LedgerTweak>,
    queue: Option<Arc<dyn JobQueue>>,
    guard: GuardSettings,
) -> Harness {
    let dlq = Arc::new(InMemoryFifo::dead_letter(
        "jobs-dlq",
        clock.clone(),
        Duration::from_secs(60),
    ));
    let fifo = Arc::new(InMemoryFifo::new(
        "jobs",
        clock.clone(),
        FifoSettings {
            delay: Duration::from_secs(5),
            visibility: Duration::from_secs(60),
            max_receive_count: Some(3),
            dedup_window: Duration::from_secs(300),
        },
        Some(dlq.clone()),
    ));
    let memory = Arc::new(InMemoryLedger::new());
    let ledger: Arc<dyn Ledger> = memory.clone();
    let messenger = Arc::new(ScriptedMessenger::new());
    let pipeline = Pipeline::builder(
        ledger.clone(),
        queue.unwrap_or_else(|| fifo.clone()),
        messenger.clone(),
    )
    .templates(Templates::new(None, Locale::parse("en").unwrap(), "Okta"))
    .clock(clock.clone())
    .ledger_parts(|parts| {
        if let Some(tweak) = tweak {
            tweak(memory, parts);
        }
    })
    .settings(PipelineSettings {
        fast_path,
        fast_path_budget: Duration::from_millis(2000),
        hash_key: b"test-hash-key-0123456789".to_vec().into(),
        guard,
        ..Default::default()
    })
    .build();
    Harness {
        clock,
        ledger,
        queue: fifo,
        dlq,
        messenger,
        pipeline,
    }
}

pub fn harness(fast_path: bool) -> Harness {
    harness_with(fast_path, None, None)
}

/// Ten digits with a leading zero (`testkit::redaction`): no log line
/// holds it by chance, so "the logs hold no code" is an exact check.
pub const OTP: &str = "0731415926";

pub fn request(h: &Harness, event_id: &str, phone: &str, channel: Channel) -> DeliveryRequest {
    DeliveryRequest {
        event_id: EventId::parse(event_id).unwrap(),
        request_type: RequestType::MfaVerification,
        phone: PhoneNumber::parse(phone, "US".parse().unwrap()).unwrap(),
        otp: Otp::parse(OTP).unwrap(),
        otp_expires: h.clock.now() + chrono::Duration::minutes(5),
        channel,
        locale: Locale::parse("en-US").unwrap(),
        locale_from_request: true,
        user_id: Some("00u1".into()),
        context: Default::default(),
    }
}

/// An SQS batch of these jobs, as Lambda's event source hands it over:
/// message ids as given, groups the keyed hash of each number.
pub fn sqs_event(h: &Harness, jobs: &[(&str, DeliveryRequest)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = jobs
        .iter()
        .map(|(id, req)| {
            ReceivedMessage {
                message_id: (*id).to_owned(),
                receipt_handle: format!("rh-{id}"),
                body: Job::from_request(
                    req,
                    telehook::crypto::keyed(&h.pipeline.settings.hash_key),
                )
                .encode(),
                group_id: destination_hash(&h.pipeline.settings.hash_key, &req.phone),
                dedup_id: Some(req.event_id.to_string()),
                receive_count: 1,
                sent_at_ms: 0,
            }
            .to_sqs_message("arn:aws:sqs:local:000000000000:jobs")
        })
        .collect();
    event
}

pub fn throttled() -> Scripted {
    Scripted::Fail(SendError::Retryable {
        code: "ThrottlingException".into(),
    })
}

pub fn opted_out() -> Scripted {
    Scripted::Fail(SendError::Permanent {
        code: "ConflictException".into(),
        reason: Some("DESTINATION_PHONE_NUMBER_OPTED_OUT".into()),
    })
}

impl Harness {
    pub async fn record(&self, event_id: &str) -> LedgerRecord {
        self.ledger
            .get(&EventId::parse(event_id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// Runs the event source until the main queue is empty, moving the clock
    /// past delays and visibility timeouts as SQS time would pass.
    pub async fn drain(&self) {
        for _ in 0..50 {
            if self.queue.is_empty() {
                return;
            }
            self.clock.advance(chrono::Duration::seconds(61));
            poll_once(self.queue.as_ref(), &self.pipeline, Duration::ZERO)
                .await
                .unwrap();
        }
        panic!("queue did not drain");
    }
}

/// A queue that is down.
#[derive(Debug)]
pub struct DownQueue;

#[async_trait]
impl JobQueue for DownQueue {
    async fn send(&self, _: OutgoingMessage) -> Result<String, QueueError> {
        Err(QueueError::Unavailable("ServiceUnavailable".into()))
    }
    async fn receive(&self, _: usize, _: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        Err(QueueError::Unavailable("ServiceUnavailable".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("ServiceUnavailable".into()))
    }
    async fn set_visibility(&self, _: &str, _: Duration) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("ServiceUnavailable".into()))
    }
    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        Err(QueueError::Unavailable("ServiceUnavailable".into()))
    }
    fn arn(&self) -> String {
        "arn:aws:sqs:local:000000000000:down".into()
    }
}
