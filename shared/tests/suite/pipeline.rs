//! Flow tests of the ingress and dispatcher over the in-memory adapters:
//! fast path, PENDING hand-over, permanent failures, duplicates, a crash
//! between send and record, FIFO partial failure, poison messages and
//! expiry, with the logs captured and checked for secrets.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use crate::support::flow::*;

use std::sync::Arc;
use std::time::Duration;

use telehook::clock::Clock;
use telehook::domain::DeliveryOutcome;
use telehook::domain::EventId;
use telehook::domain::channel::Channel;
use telehook::flows::dispatch_batch;
use telehook::ledger::{
    Claim, ClaimOutcome, Claims, EndClaim, InMemoryLedger, LedgerError, LedgerRecord, Status,
};
use telehook::queue::{JobQueue, OutgoingMessage};
use telehook::testkit::Scripted;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn fast_path_success_is_successful_with_the_provider_message_id() {
    let h = harness(true);
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-ok", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    let DeliveryOutcome::Successful { transaction_id, .. } = out else {
        panic!("{out:?}")
    };
    let rec = h.record("evt-ok").await;
    assert_eq!(rec.status, Status::Sent);
    assert_eq!(rec.message_id.as_deref(), Some(transaction_id.as_str()));
    assert_eq!(h.messenger.accepted().len(), 1);
    // The queued job reaches the dispatcher later, which sends nothing.
    h.drain().await;
    assert_eq!(h.messenger.attempts(), 1);
    assert!(h.dlq.is_empty());
    // The message itself carries the code; the ledger does not.
    assert!(h.messenger.accepted()[0].rendered.body.contains(OTP));
    assert!(!format!("{rec:?}").contains(OTP) && !format!("{rec:?}").contains("4155552671"));
}

#[tokio::test(start_paused = true)]
async fn throttled_provider_gives_pending_and_the_dispatcher_sends_once() {
    let h = harness(true);
    h.messenger.script([throttled()]);
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-thr", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Pending { .. }), "{out:?}");
    assert_eq!(h.record("evt-thr").await.status, Status::InProgress);
    assert!(h.messenger.accepted().is_empty());
    h.drain().await;
    assert_eq!(h.messenger.accepted().len(), 1, "exactly one send");
    let rec = h.record("evt-thr").await;
    assert_eq!(rec.status, Status::Sent);
    assert_eq!(rec.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_provider_slower_than_the_budget_gives_pending() {
    let h = harness(true);
    h.messenger.script([Scripted::Slow(Duration::from_secs(5))]);
    let arrived = Instant::now();
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-slow", "+14155552671", Channel::Voice),
            arrived,
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Pending { .. }), "{out:?}");
    assert!(
        arrived.elapsed() <= Duration::from_millis(2000),
        "answered inside the budget"
    );
    h.drain().await;
    assert_eq!(h.messenger.accepted().len(), 1);
    assert_eq!(h.record("evt-slow").await.status, Status::Sent);
}

#[tokio::test(start_paused = true)]
async fn permanent_provider_error_fails_and_the_dispatcher_does_not_send() {
    let h = harness(true);
    h.messenger.script([opted_out()]);
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-perm", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Failed { .. }), "{out:?}");
    let rec = h.record("evt-perm").await;
    assert_eq!(rec.status, Status::Failed);
    assert!(
        rec.failure
            .unwrap()
            .contains("DESTINATION_PHONE_NUMBER_OPTED_OUT")
    );
    h.drain().await;
    assert_eq!(
        h.messenger.attempts(),
        1,
        "the dispatcher does not try again"
    );
    assert!(h.dlq.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_same_event_id_is_sent_once_sequentially_and_concurrently() {
    let h = harness(true);
    for _ in 0..10 {
        let out = h
            .pipeline
            .handle_hook(
                request(&h, "evt-seq", "+14155552671", Channel::Sms),
                Instant::now(),
            )
            .await;
        assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    }
    let calls = (0..10).map(|_| {
        h.pipeline.handle_hook(
            request(&h, "evt-conc", "+14165550163", Channel::Sms),
            Instant::now(),
        )
    });
    let outs = futures::future::join_all(calls).await;
    assert!(
        outs.iter()
            .all(|o| !matches!(o, DeliveryOutcome::Failed { .. })),
        "{outs:?}"
    );
    h.drain().await;
    let sends: Vec<String> = h
        .messenger
        .accepted()
        .iter()
        .map(|m| m.event_id.to_string())
        .collect();
    assert_eq!(sends.iter().filter(|e| *e == "evt-seq").count(), 1);
    assert_eq!(sends.iter().filter(|e| *e == "evt-conc").count(), 1);
    assert_eq!(h.record("evt-conc").await.status, Status::Sent);
}

/// Claims whose `mark_sent` fails a given number of times: the process
/// "crashed" between the provider accepting and the record being written.
#[derive(Debug)]
struct ForgetfulClaims {
    inner: Arc<InMemoryLedger>,
    failures: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Claims for ForgetfulClaims {
    async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, LedgerError> {
        self.inner.claim(c).await
    }
    async fn mark_sent(
        &self,
        sent: &telehook::ledger::SendConfirmed<'_>,
    ) -> Result<(), LedgerError> {
        if self.failures.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.failures
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Err(LedgerError::Unavailable("crash".into()));
        }
        self.inner.mark_sent(sent).await
    }
    async fn end_claim(&self, ending: &EndClaim<'_>) -> Result<(), LedgerError> {
        self.inner.end_claim(ending).await
    }
    async fn mark_expired(&self, e: &EventId, now: i64, x: i64) -> Result<(), LedgerError> {
        self.inner.mark_expired(e, now, x).await
    }
    async fn get(&self, e: &EventId) -> Result<Option<LedgerRecord>, LedgerError> {
        self.inner.get(e).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_send_and_record_costs_at_most_one_extra_send() {
    let h = harness_with(
        true,
        Some(|inner, parts| {
            parts.claims = Arc::new(ForgetfulClaims {
                // The first write and its five retries all fail: the
                // process is as good as gone before the send was recorded.
                inner,
                failures: 6.into(),
            });
        }),
        None,
    );
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-crash", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    // The provider accepted, so Okta hears SUCCESSFUL.
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    assert_eq!(h.record("evt-crash").await.status, Status::InProgress);
    h.drain().await;
    let sends = h.messenger.accepted().len();
    assert!((1..=2).contains(&sends), "{sends} sends");
    assert_eq!(h.record("evt-crash").await.status, Status::Sent);
}

#[tokio::test(start_paused = true)]
async fn fifo_partial_failure_holds_back_the_failed_group_only() {
    let h = harness(true);
    let a = "+14155552671";
    let b = "+14165550163";
    h.messenger.script_for(a, [throttled()]);
    let event = sqs_event(
        &h,
        &[
            ("m1", request(&h, "evt-a1", a, Channel::Sms)),
            ("m2", request(&h, "evt-b1", b, Channel::Sms)),
            ("m3", request(&h, "evt-a2", a, Channel::Sms)),
            ("m4", request(&h, "evt-b2", b, Channel::Voice)),
        ],
    );
    let resp = dispatch_batch(&h.pipeline, event).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["m1", "m3"],
        "the throttled message and the later one of its group"
    );
    let sent: Vec<String> = h
        .messenger
        .accepted()
        .iter()
        .map(|m| m.event_id.to_string())
        .collect();
    assert_eq!(
        sent,
        ["evt-b1", "evt-b2"],
        "the other group goes on, in order"
    );
    assert_eq!(h.messenger.attempts(), 3, "m3 was not even tried");
}

#[tokio::test(start_paused = true)]
async fn poison_and_expired_jobs() {
    let h = harness(true);
    // Poison: reported, and after maxReceiveCount it sits in the DLQ as sent.
    let body = "{\"not\": \"a job\"}";
    h.queue
        .send(OutgoingMessage {
            body: body.into(),
            group_id: "g-poison".into(),
            dedup_id: "poison-1".into(),
        })
        .await
        .unwrap();
    h.drain().await;
    let dead = h.dlq.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, body, "moved untouched");

    // Expired before the dispatcher got to it: EXPIRED, no send.
    let req = request(&h, "evt-exp", "+14155552671", Channel::Sms);
    let resp = dispatch_batch(&h.pipeline, sqs_event(&h, &[("m1", req.clone())])).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(h.messenger.attempts(), 1, "a live job is sent");
    let mut stale = request(&h, "evt-stale", "+14155552671", Channel::Sms);
    stale.otp_expires = h.clock.now() - chrono::Duration::seconds(1);
    let resp = dispatch_batch(&h.pipeline, sqs_event(&h, &[("m2", stale)])).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(h.messenger.attempts(), 1, "an expired one is not");
    assert_eq!(h.record("evt-stale").await.status, Status::Expired);
}

#[tokio::test(start_paused = true)]
async fn fast_path_off_answers_pending_and_the_dispatcher_sends() {
    let h = harness(false);
    // Okta retries a hook it got no answer to in time: three copies.
    for _ in 0..3 {
        let out = h
            .pipeline
            .handle_hook(
                request(&h, "evt-off", "+14155552671", Channel::Sms),
                Instant::now(),
            )
            .await;
        assert!(matches!(out, DeliveryOutcome::Pending { .. }), "{out:?}");
    }
    assert_eq!(h.messenger.attempts(), 0);
    assert_eq!(h.record("evt-off").await.attempts, 0, "no try yet");
    h.drain().await;
    assert_eq!(h.messenger.accepted().len(), 1);
    let rec = h.record("evt-off").await;
    assert_eq!(rec.status, Status::Sent);
    assert_eq!(
        rec.attempts, 1,
        "one send, one try; the duplicates are not tries"
    );
}

#[tokio::test(start_paused = true)]
async fn queue_down_still_tries_the_fast_path_and_never_says_pending() {
    let h = harness_with(true, None, Some(Arc::new(DownQueue)));
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-q1", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");

    h.messenger.script([throttled()]);
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-q2", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(
        matches!(out, DeliveryOutcome::Failed { .. }),
        "not queued and not sent: Okta must fall back, {out:?}"
    );

    // Fast path off does not hide a failed enqueue either.
    let h = harness_with(false, None, Some(Arc::new(DownQueue)));
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-q3", "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn an_otp_expired_on_arrival_is_not_sent() {
    let h = harness(true);
    let mut req = request(&h, "evt-late", "+14155552671", Channel::Sms);
    req.otp_expires = h.clock.now() - chrono::Duration::seconds(1);
    let out = h.pipeline.handle_hook(req, Instant::now()).await;
    assert!(matches!(out, DeliveryOutcome::Failed { .. }));
    assert_eq!(h.messenger.attempts(), 0);
}

/// The pipeline behind the real ingress handler: the HTTP answers Okta sees.
#[tokio::test(start_paused = true)]
async fn through_the_ingress_okta_sees_successful_or_an_error_object() {
    use telehook::api::{IngressDeps, telehook};
    use telehook::auth::settings::IngressConfig;
    let h = harness(true);
    let env = [
        ("AUTH_MODE", "header"),
        ("AUTH_HEADER_NAME", "x-hook-secret"),
        ("AUTH_HEADER_SECRET", "0123456789abcdef-pipeline"),
    ];
    let config = IngressConfig::from_lookup(|k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let deps = IngressDeps::new(&config, Arc::new(h.pipeline.clone())).unwrap();
    let event = |body: String| {
        let mut e = crate::support::proxy_event(&body, None);
        e.headers.insert(
            "x-hook-secret",
            "0123456789abcdef-pipeline".parse().unwrap(),
        );
        e
    };
    let body = |event_id: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&crate::support::sms_body()).unwrap();
        v["eventId"] = serde_json::Value::String(event_id.into());
        v["data"]["messageProfile"]["otpExpires"] =
            serde_json::Value::String((h.clock.now() + chrono::Duration::minutes(5)).to_rfc3339());
        v.to_string()
    };

    let resp = telehook(&deps, event(body("evt-http-ok"))).await;
    let json = crate::support::response_json(&resp);
    assert_eq!(resp.status_code, 200);
    assert_eq!(json["commands"][0]["value"][0]["status"], "SUCCESSFUL");
    let rec = h.record("evt-http-ok").await;
    assert_eq!(
        json["commands"][0]["value"][0]["transactionId"],
        rec.message_id.unwrap()
    );

    h.messenger.script([opted_out()]);
    let resp = telehook(&deps, event(body("evt-http-perm"))).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(
        crate::support::response_json(&resp),
        serde_json::json!({"error": {
            "errorSummary": "Could not deliver the code",
            "errorCauses": [{
                "errorSummary": "The messaging provider refused the message",
                "reason": "PROVIDER_REFUSED",
                "locationType": "body",
                "location": "data.messageProfile.phoneNumber",
                "domain": "provider"
            }]
        }}),
        "a safe summary and a fixed cause, nothing of the provider's error"
    );
    assert_eq!(h.record("evt-http-perm").await.status, Status::Failed);

    h.messenger.script([throttled()]);
    let resp = telehook(&deps, event(body("evt-http-pending"))).await;
    assert_eq!(
        crate::support::response_json(&resp)["commands"][0]["value"][0]["status"],
        "PENDING"
    );
}

#[tokio::test(start_paused = true)]
async fn every_provider_call_is_timed_by_channel_outcome_and_country() {
    use telehook::telemetry::metrics::Metrics;
    use telehook::testkit::MemorySink;
    let mut h = harness(true);
    let sink = Arc::new(MemorySink::default());
    h.pipeline.settings.metrics = Metrics::new(sink.clone());
    h.messenger.script([throttled()]);
    let first = request(&h, "evt-timed-1", "+14155552671", Channel::Sms);
    h.pipeline.handle_hook(first, Instant::now()).await;
    let second = request(&h, "evt-timed-2", "+14155552672", Channel::Voice);
    h.pipeline.handle_hook(second, Instant::now()).await;
    let timed: Vec<serde_json::Value> = sink
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d.get("ProviderLatency").is_some())
        .collect();
    let seen: Vec<(&str, &str, &str)> = timed
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
                d["country"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("sms", "RETRYABLE", "US"), ("voice", "ACCEPTED", "US")]
    );
    let dimensions = &timed[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
    assert_eq!(
        dimensions,
        &serde_json::json!([["channel", "outcome"], ["channel", "country"]])
    );
}

/// The dispatcher checks the guard's allow-list and number type again
/// before it sends a queued job: a job to a country no longer allowed (or
/// one put on the queue by anyone but the ingress) is recorded FAILED and
/// never sent, so no retry or replay sends it later either.
#[tokio::test(start_paused = true)]
async fn the_dispatcher_sends_no_job_the_guard_does_not_allow() {
    use telehook::domain::job::Job;
    use telehook::queue::{JobQueue, OutgoingMessage};
    let h = harness(false);
    // The default allow-list is US and CA; this job is to the UK.
    let req = request(&h, "evt-recheck", "+447700900123", Channel::Sms);
    h.queue
        .send(OutgoingMessage {
            body: Job::from_request(&req, telehook::crypto::keyed(&h.pipeline.settings.hash_key))
                .encode(),
            group_id: "g".into(),
            dedup_id: "evt-recheck".into(),
        })
        .await
        .unwrap();
    h.drain().await;
    assert!(h.messenger.accepted().is_empty(), "not sent");
    let rec = h.record("evt-recheck").await;
    assert_eq!(rec.status, Status::Failed);
    assert!(
        rec.failure
            .as_deref()
            .unwrap()
            .contains("refused at dispatch"),
        "{rec:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queued_job_names_its_user_only_by_the_keyed_hash() {
    // What the queue holds is what its dead-letter queue would keep,
    // untouched: Okta's user id must not be in it.
    let h = harness(false);
    let req = request(&h, "evt-user-key", "+14155552671", Channel::Sms);
    let user = req.user_id.clone().unwrap();
    let raw = match &user {
        telehook::domain::UserRef::Okta(id) => id.clone(),
        other => panic!("{other:?}"),
    };
    h.pipeline.handle_hook(req, Instant::now()).await;
    // Past the queue's delivery delay.
    h.clock.advance(chrono::Duration::seconds(61));
    let queued = h.queue.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(queued.len(), 1);
    let body = &queued[0].body;
    assert!(!body.contains(&raw), "{body}");
    let key = user.key(telehook::crypto::keyed(&h.pipeline.settings.hash_key));
    assert!(body.contains(&key), "{body}");
}
