//! Reliability under faults, concurrency and hostile input, judged by the
//! invariant checker: a duplicate storm, the fault matrix, clock skew around
//! OTP expiry, and bodies built to hurt the parser.
//!
//! `RELIABILITY_SCALE` scales the runs (CI runs the default; RELIABILITY.md
//! gives the figures of a full run).

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use telehook::clock::Clock;
use telehook::domain::DeliveryOutcome;
use telehook::domain::channel::Channel;
use telehook::domain::job::Job;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::domain::{DeliveryRequest, EventId, RequestType};
use telehook::flows::guard::GuardSettings;
use telehook::flows::{Pipeline, PipelineSettings, poll_once};
use telehook::ledger::InMemoryLedger;
use telehook::queue::{FifoSettings, InMemoryFifo, JobQueue};
use telehook::templates::Templates;
use telehook::testkit::ManualClock;
use telehook::testkit::ScriptedMessenger;
use telehook::testkit::chaos::ChaosSpec;
use telehook::testkit::invariants::{InvariantReport, RunRecord, check};
use tokio::time::Instant;

fn scale() -> usize {
    std::env::var("RELIABILITY_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// The local pipeline with every port wrapped in fault injection, and typed
/// handles on the real adapters underneath for reconciliation.
struct ChaosRun {
    clock: Arc<ManualClock>,
    ledger: Arc<InMemoryLedger>,
    queue: Arc<InMemoryFifo>,
    dlq: Arc<InMemoryFifo>,
    outbox: Arc<ScriptedMessenger>,
    pipeline: Pipeline,
    answers: std::collections::HashMap<String, String>,
}

impl ChaosRun {
    fn new(spec: &str) -> ChaosRun {
        let spec = ChaosSpec::parse(spec).unwrap();
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let dlq = Arc::new(InMemoryFifo::dead_letter(
            "dlq",
            clock.clone(),
            Duration::from_secs(60),
        ));
        let queue = Arc::new(InMemoryFifo::new(
            "jobs",
            clock.clone(),
            FifoSettings {
                delay: Duration::from_secs(3),
                visibility: Duration::from_secs(60),
                max_receive_count: Some(5),
                dedup_window: Duration::from_secs(300),
            },
            Some(dlq.clone()),
        ));
        let ledger = Arc::new(InMemoryLedger::new());
        let outbox = Arc::new(ScriptedMessenger::new());
        let pipeline = Pipeline::builder(ledger.clone(), queue.clone(), outbox.clone())
            .chaos(&spec)
            .templates(Templates::new(None, Locale::parse("en").unwrap(), "Okta"))
            .clock(clock.clone())
            .settings(PipelineSettings {
                hash_key: b"reliability-hash-key-01".to_vec().into(),
                guard: GuardSettings::open(),
                ..Default::default()
            })
            .build();
        ChaosRun {
            clock,
            ledger,
            queue,
            dlq,
            outbox,
            pipeline,
            answers: Default::default(),
        }
    }

    fn request(&self, event: &str, i: usize, expires_in: chrono::Duration) -> DeliveryRequest {
        DeliveryRequest {
            event_id: EventId::parse(event).unwrap(),
            request_type: RequestType::MfaVerification,
            phone: PhoneNumber::parse(&format!("+1650555{:04}", i % 10_000), "US".parse().unwrap())
                .unwrap(),
            otp: Otp::parse("482913").unwrap(),
            otp_expires: self.clock.now() + expires_in,
            channel: if i.is_multiple_of(4) {
                Channel::Voice
            } else {
                Channel::Sms
            },
            locale: Locale::parse("en").unwrap(),
            locale_from_request: true,
            user_id: None,
            context: Default::default(),
        }
    }

    async fn hook(&mut self, req: DeliveryRequest) -> DeliveryOutcome {
        let event = req.event_id.to_string();
        let out = self.pipeline.handle_hook(req, Instant::now()).await;
        // With several answers for one event, the most committal one counts:
        // a single PENDING or SUCCESSFUL is a promise.
        let status = out.status().as_str().to_owned();
        let slot = self.answers.entry(event).or_insert_with(|| status.clone());
        if *slot == "FAILED" {
            *slot = status;
        }
        out
    }

    /// The event source until the queue is empty. SQS time only passes
    /// when nothing is visible (delays, visibility timeouts), so jobs are not
    /// aged by the length of the backlog.
    async fn drain(&self) {
        for _ in 0..5000 {
            if self.queue.is_empty() {
                return;
            }
            match poll_once(self.queue.as_ref(), &self.pipeline, Duration::ZERO).await {
                Ok(r) if r.received > 0 => {}
                _ => self.clock.advance(chrono::Duration::seconds(61)),
            }
        }
    }

    async fn report(&self) -> InvariantReport {
        let dead_lettered = self
            .dlq
            .receive(10_000, Duration::ZERO)
            .await
            .unwrap()
            .iter()
            .filter_map(|m| Job::decode(&m.body).ok().map(|j| j.event_id))
            .collect();
        check(&RunRecord {
            answers: self.answers.clone(),
            ledger: self.ledger.records().expect("the in-memory ledger reads"),
            sent: self
                .outbox
                .accepted()
                .iter()
                .zip(self.outbox.message_ids())
                .map(|(m, id)| (m.event_id.to_string(), id))
                .collect(),
            dead_lettered,
            still_queued: self.queue.len() as u64,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn duplicate_storm_sends_each_event_once() {
    let events = 1000;
    let copies = 10;
    let mut run = ChaosRun::new("");
    let mut calls = Vec::new();
    for i in 0..events {
        for _ in 0..copies {
            calls.push(run.request(&format!("storm-{i:05}"), i, chrono::Duration::minutes(5)));
        }
    }
    let pipeline = run.pipeline.clone();
    let outs = futures::future::join_all(calls.into_iter().map(|r| {
        let p = pipeline.clone();
        async move {
            let e = r.event_id.to_string();
            (e, p.handle_hook(r, Instant::now()).await)
        }
    }))
    .await;
    for (e, out) in outs {
        let status = out.status().as_str().to_owned();
        let slot = run.answers.entry(e).or_insert_with(|| status.clone());
        if *slot == "FAILED" {
            *slot = status;
        }
    }
    run.drain().await;
    let report = run.report().await;
    assert!(report.holds(), "{report:?}");
    assert_eq!(report.sent, events);
    assert_eq!(
        run.outbox.accepted().len(),
        events,
        "exactly one send per event"
    );
    assert_eq!(report.unconfirmed_repeats, 0);
}

/// One row of the fault matrix: hooks through the ingress, then the
/// dispatcher until the queue is empty, then the checker.
async fn fault_row(spec: &str, hooks: usize) -> InvariantReport {
    let mut run = ChaosRun::new(spec);
    for i in 0..hooks {
        let req = run.request(&format!("f-{i:05}"), i, chrono::Duration::minutes(30));
        run.hook(req).await;
        if i % 50 == 49 {
            // Duplicates of recent hooks arrive now and then.
            let dup = run.request(
                &format!("f-{:05}", i - 7),
                i - 7,
                chrono::Duration::minutes(30),
            );
            run.hook(dup).await;
        }
    }
    run.drain().await;
    let report = run.report().await;
    assert!(report.holds(), "{spec}: {report:?}");
    report
}

#[tokio::test(start_paused = true)]
async fn the_fault_matrix_loses_nothing_and_never_sends_after_a_confirmed_send() {
    let hooks = 200 * scale();
    let mut table = Vec::new();
    for spec in [
        "provider.throttle=0.1",
        "provider.throttle=0.5",
        "provider.5xx=0.3",
        "provider.timeout=0.2,provider.timeout-ms=2500",
        "provider.latency-ms=50,provider.throttle=0.3,provider.timeout=0.05",
        "provider.crash=0.2",
        "ledger.conflict=0.1",
        "ledger.throttle=0.1,ledger.crash=0.05",
        "queue.5xx=0.3",
        "queue.crash=0.2",
        "provider.throttle=0.3,provider.crash=0.1,ledger.conflict=0.05,ledger.5xx=0.05,queue.throttle=0.1,seed=42",
    ] {
        let r = fault_row(spec, hooks).await;
        table.push(format!(
            "{spec}: answered {} accepted {} sent {} failed {} expired {} dlq {} lost {} after-confirmed {} unconfirmed-repeats {}",
            r.answered,
            r.accepted,
            r.sent,
            r.failed,
            r.expired,
            r.dead_lettered,
            r.lost.len(),
            r.sends_after_confirmed.len(),
            r.unconfirmed_repeats
        ));
    }
    // Printed for RELIABILITY.md (`cargo test ... -- --nocapture`).
    println!("{}", table.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn clock_skew_around_otp_expiry() {
    // Okta's clock a little ahead: the code has already expired on arrival.
    let mut run = ChaosRun::new("");
    let late = run.request("skew-late", 1, chrono::Duration::seconds(-2));
    assert!(matches!(
        run.hook(late).await,
        DeliveryOutcome::Failed { .. }
    ));

    // The code expires while its job waits in the queue: EXPIRED, no send.
    let mut run = ChaosRun::new("provider.throttle=1");
    let short = run.request("skew-short", 2, chrono::Duration::seconds(2));
    assert!(matches!(
        run.hook(short).await,
        DeliveryOutcome::Pending { .. }
    ));
    run.drain().await;
    assert_eq!(run.report().await.expired, 1);
    assert!(run.outbox.accepted().is_empty());

    // Expiry one second after the dispatcher's turn: still sent.
    let mut run = ChaosRun::new("");
    run.pipeline.settings.fast_path = false;
    let just = run.request("skew-just", 3, chrono::Duration::seconds(62));
    assert!(matches!(
        run.hook(just).await,
        DeliveryOutcome::Pending { .. }
    ));
    run.drain().await;
    assert_eq!(run.outbox.accepted().len(), 1);
    assert!(
        run.outbox.accepted()[0].ttl_seconds <= 1,
        "TimeToLive follows the remaining life"
    );
    assert!(run.report().await.holds());
}

#[tokio::test]
async fn hostile_bodies_get_a_clear_answer() {
    use crate::support::{TestIssuer, proxy_event, response_json};
    use telehook::api::{IngressDeps, telehook};
    use telehook::testkit::RecordingDelivery;
    let issuer = TestIssuer::start().await;
    let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
    let bearer = format!("Bearer {}", issuer.token());
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let nested_in_profile = format!(
        "{{\"eventType\":\"com.okta.telephony.provider\",\"data\":{{\"messageProfile\":{}1{}}}}}",
        "{\"x\":".repeat(20_000),
        "}".repeat(20_000)
    );
    let huge_string = format!("{{\"eventId\":\"{}\"}}", "a".repeat(63_000));
    let oversized = format!("{{\"eventId\":\"{}\"}}", "a".repeat(70_000));
    for (name, body) in [
        ("deep array", deep_array),
        ("deep object", deep_object),
        ("deep profile", nested_in_profile),
        ("huge string", huge_string),
        ("oversized", oversized),
        ("nul bytes", "{\"eventId\":\"\u{0000}\"}".to_owned()),
        ("lone surrogate", "{\"eventId\":\"\\ud800\"}".to_owned()),
    ] {
        let resp = telehook(&deps, proxy_event(&body, Some(&bearer))).await;
        assert_eq!(resp.status_code, 200, "{name}");
        let json = response_json(&resp);
        assert!(json["error"]["errorSummary"].is_string(), "{name}: {json}");
    }
}
