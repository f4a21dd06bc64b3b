//! The AWS adapters over the wire, against the local AWS API emulator:
//! the DynamoDB ledger and template store, the SQS FIFO queue with its
//! dead-letter queue, and the dispatcher end to end through the same
//! event-source poller local mode uses.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::moto::{
    create_ledger_table, create_queues, create_templates_table, moto, sdk_config,
};
use telehook::clock::{Clock, SystemClock};
use telehook::domain::DeliveryOutcome;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::domain::{DeliveryRequest, EventId, RequestType};
use telehook::flows::{Pipeline, PipelineSettings, poll_once};
use telehook::ledger::DynamoLedger;
use telehook::ledger::{Claim, ClaimOutcome, Ledger, LedgerError, Status};
use telehook::queue::SqsQueue;
use telehook::queue::{JobQueue, OutgoingMessage};
use telehook::templates::DynamoTemplateStore;
use telehook::templates::{Template, TemplateStore, Templates, TextType};
use telehook::testkit::ScriptedMessenger;

fn eid(s: &str) -> EventId {
    EventId::parse(s).unwrap()
}

fn claim<'a>(e: &'a EventId, owner: &'a str, now_ms: i64) -> Claim<'a> {
    Claim {
        event_id: e,
        channel: Channel::Sms,
        owner,
        now_ms,
        lease_ms: 10_000,
        expires_at: now_ms / 1000 + 86_400,
    }
}

#[tokio::test]
async fn ledger_claims_are_conditional_writes() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_ledger_table(&ddb, "ledger").await;
    let ledger = DynamoLedger::new(ddb.clone(), "ledger");
    let e = eid("evt-wire-1");
    let t0 = 1_700_000_000_000;

    assert_eq!(
        ledger.claim(&claim(&e, "a", t0)).await,
        Ok(ClaimOutcome::Claimed { attempts: 1 })
    );
    // A conflicting claim while the lease holds: the condition fails and the
    // old record comes back with the failure.
    assert_eq!(
        ledger.claim(&claim(&e, "b", t0 + 500)).await,
        Ok(ClaimOutcome::Busy {
            lease_until_ms: t0 + 10_000
        })
    );
    // The lease runs out: b takes over; a has lost the claim.
    assert_eq!(
        ledger.claim(&claim(&e, "b", t0 + 10_000)).await,
        Ok(ClaimOutcome::Claimed { attempts: 2 })
    );
    assert_eq!(
        ledger.release(&e, "a", "x", t0 + 10_001).await,
        Err(LedgerError::LostClaim)
    );
    ledger
        .release(&e, "b", "retryable:ThrottlingException", t0 + 10_002)
        .await
        .unwrap();
    assert_eq!(
        ledger.claim(&claim(&e, "c", t0 + 10_003)).await,
        Ok(ClaimOutcome::Claimed { attempts: 3 })
    );
    assert_eq!(
        ledger.mark_failed(&e, "b", "x", t0 + 10_004).await,
        Err(LedgerError::LostClaim)
    );
    ledger.mark_sent(&e, "m-1", t0 + 10_005).await.unwrap();
    ledger.mark_sent(&e, "m-2", t0 + 10_006).await.unwrap();
    assert_eq!(
        ledger.claim(&claim(&e, "d", t0 + 99_000_000)).await,
        Ok(ClaimOutcome::AlreadySent {
            message_id: Some("m-1".into())
        })
    );
    ledger.mark_expired(&e, t0 + 99_000_001, 0).await.unwrap();
    let rec = ledger.get(&e).await.unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.message_id.as_deref(), rec.attempts),
        (Status::Sent, Some("m-1"), 3)
    );

    // The stored item holds exactly the documented attributes: no OTP, no number.
    let item = ddb
        .get_item()
        .table_name("ledger")
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("evt#evt-wire-1".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "attempts",
            "channel",
            "expiresAt",
            "failure",
            "leaseUntil",
            "messageId",
            "owner",
            "pk",
            "status",
            "updatedAt"
        ]
    );

    // Failed and expired are terminal too.
    let f = eid("evt-wire-f");
    ledger.claim(&claim(&f, "a", t0)).await.unwrap();
    ledger
        .mark_failed(&f, "a", "permanent:ConflictException", t0 + 1)
        .await
        .unwrap();
    assert_eq!(
        ledger.claim(&claim(&f, "b", t0 + 99_000_000)).await,
        Ok(ClaimOutcome::AlreadyFailed {
            reason: Some("permanent:ConflictException".into())
        })
    );
    let x = eid("evt-wire-x");
    ledger.mark_expired(&x, t0, t0 / 1000).await.unwrap();
    assert_eq!(
        ledger.claim(&claim(&x, "a", t0 + 1)).await,
        Ok(ClaimOutcome::AlreadyExpired)
    );
}

#[tokio::test]
async fn concurrent_claims_have_one_winner() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_ledger_table(&ddb, "ledger").await;
    let ledger = DynamoLedger::new(ddb, "ledger");
    let e = eid("evt-race");
    let owners: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    let now = SystemClock.now_ms();
    let results = futures::future::join_all(owners.iter().map(|o| {
        let ledger = ledger.clone();
        let e = e.clone();
        async move { ledger.claim(&claim(&e, o, now)).await.unwrap() }
    }))
    .await;
    let winners = results
        .iter()
        .filter(|r| matches!(r, ClaimOutcome::Claimed { .. }))
        .count();
    assert_eq!(winners, 1, "{results:?}");
}

#[tokio::test]
async fn templates_table_with_cache_and_fallback() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_templates_table(&ddb, "templates").await;
    let store = Arc::new(DynamoTemplateStore::new(
        ddb.clone(),
        "templates",
        Duration::from_secs(300),
    ));
    store
        .put(&Template {
            locale: "es-MX".into(),
            channel: Channel::Sms,
            body: "{{code}} es tu clave de {{org}}".into(),
            text_type: TextType::Text,
            voice_id: None,
            language_code: None,
        })
        .await
        .unwrap();
    let got = store.get("es-MX", Channel::Sms).await.unwrap().unwrap();
    assert_eq!(got.body, "{{code}} es tu clave de {{org}}");
    assert_eq!(store.get("es-MX", Channel::Voice).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap().len(), 1);

    // Cached per instance: deleting the item does not show until the TTL.
    ddb.delete_item()
        .table_name("templates")
        .key(
            "locale",
            aws_sdk_dynamodb::types::AttributeValue::S("es-MX".into()),
        )
        .key(
            "channel",
            aws_sdk_dynamodb::types::AttributeValue::S("sms".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(
        store.get("es-MX", Channel::Sms).await.unwrap().is_some(),
        "served from cache"
    );
    let fresh = DynamoTemplateStore::new(ddb.clone(), "templates", Duration::ZERO);
    assert!(fresh.get("es-MX", Channel::Sms).await.unwrap().is_none());

    // Through the lookup chain: the table first, then the built-ins.
    let templates = Templates::new(Some(store), Locale::parse("en").unwrap(), "Acme");
    let code = Otp::parse("5521").unwrap();
    let mx = templates
        .render(&Locale::parse("es-MX").unwrap(), Channel::Sms, &code, 5)
        .await
        .unwrap();
    assert_eq!(mx.body, "5521 es tu clave de Acme");
    let es = templates
        .render(&Locale::parse("es").unwrap(), Channel::Voice, &code, 5)
        .await
        .unwrap();
    assert_eq!(es.locale, "es");

    // A missing table is a store error; the built-ins still answer.
    let gone = Arc::new(DynamoTemplateStore::new(
        ddb,
        "no-such-table",
        Duration::from_secs(300),
    ));
    assert!(gone.get("en", Channel::Sms).await.is_err());
    let templates = Templates::new(Some(gone), Locale::parse("en").unwrap(), "Acme");
    assert_eq!(
        templates
            .render(&Locale::parse("fr").unwrap(), Channel::Sms, &code, 5)
            .await
            .unwrap()
            .locale,
        "fr"
    );
}

fn msg(group: &str, dedup: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage {
        body: body.into(),
        group_id: group.into(),
        dedup_id: dedup.into(),
    }
}

#[tokio::test]
async fn sqs_fifo_dedup_order_and_redrive() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (main_url, dlq_url) = create_queues(&sqs, 2, 1).await;
    let q = SqsQueue::new(sqs.clone(), &main_url);
    let dlq = SqsQueue::new(sqs.clone(), &dlq_url);
    assert!(q.arn().ends_with(":jobs.fifo"));

    q.send(msg("a", "d1", "a1")).await.unwrap();
    q.send(msg("a", "d1", "a1-again")).await.unwrap();
    q.send(msg("a", "d2", "a2")).await.unwrap();
    q.send(msg("b", "d3", "b1")).await.unwrap();

    let got = q.receive(10, Duration::ZERO).await.unwrap();
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b.starts_with('a'))
            .copied()
            .collect::<Vec<_>>(),
        ["a1", "a2"],
        "deduplicated, in order"
    );
    assert!(bodies.contains(&"b1"));
    assert!(
        got.iter()
            .all(|m| m.receive_count == 1 && !m.group_id.is_empty())
    );
    // Everything is in flight, and group a is locked: nothing more to receive.
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
    for m in &got {
        q.delete(&m.receipt_handle).await.unwrap();
    }

    // Redrive: received twice without a delete, and on the third receive
    // (past maxReceiveCount = 2) the message moves to the DLQ untouched.
    // One message per group here: the emulator re-delivers a group's
    // messages out of order after a visibility timeout when several were in
    // flight together, which real SQS does not.
    q.send(msg("r", "d4", "r1")).await.unwrap();
    for expected_count in 1..=2 {
        let got = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, expected_count);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
    let dead = dlq.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["r1"]
    );
    let depth = q.depth().await.unwrap();
    assert_eq!(depth.visible + depth.in_flight + depth.delayed, 0);
}

#[tokio::test]
async fn dispatcher_end_to_end_through_the_poller() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    create_ledger_table(&ddb, "ledger").await;
    let (main_url, dlq_url) = create_queues(&sqs, 2, 1).await;
    let queue = Arc::new(SqsQueue::new(sqs.clone(), &main_url));
    let dlq = SqsQueue::new(sqs.clone(), &dlq_url);
    let ledger = Arc::new(DynamoLedger::new(ddb, "ledger"));
    let messenger = Arc::new(ScriptedMessenger::new());
    let pipeline = Pipeline::builder(ledger.clone(), queue.clone(), messenger.clone())
        .settings(PipelineSettings {
            fast_path: false,
            hash_key: b"wire-test-hash-key-0123".to_vec(),
            ..Default::default()
        })
        .build();
    let req = DeliveryRequest {
        event_id: eid("evt-e2e"),
        request_type: RequestType::MfaVerification,
        phone: PhoneNumber::parse("+14155552671", "US".parse().unwrap()).unwrap(),
        otp: Otp::parse("602214").unwrap(),
        otp_expires: chrono::Utc::now() + chrono::Duration::minutes(5),
        channel: Channel::Voice,
        locale: Locale::parse("de").unwrap(),
        locale_from_request: true,
        user_id: None,
    };
    let out = pipeline.handle_hook(req, tokio::time::Instant::now()).await;
    assert!(matches!(out, DeliveryOutcome::Pending { .. }), "{out:?}");
    let poison = "{\"v\": 99, \"junk\": true}";
    queue
        .send(msg("poison-group", "poison-1", poison))
        .await
        .unwrap();

    for _ in 0..10 {
        let depth = queue.depth().await.unwrap();
        if depth.visible + depth.in_flight + depth.delayed == 0 {
            break;
        }
        poll_once(queue.as_ref(), &pipeline, Duration::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let sent = messenger.accepted();
    assert_eq!(sent.len(), 1, "the live job is sent exactly once");
    assert_eq!(sent[0].rendered.locale, "de");
    assert_eq!(
        ledger.get(&eid("evt-e2e")).await.unwrap().unwrap().status,
        Status::Sent
    );
    let dead = dlq.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(dead.len(), 1, "the poison message reached the DLQ");
    assert_eq!(dead[0].body, poison, "untouched");
}

#[tokio::test]
async fn dlq_replay_over_the_wire() {
    use telehook::domain::job::Job;
    use telehook::flows::replay::{ReplayReport, ReplayRequest, replay_dlq};
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    create_ledger_table(&ddb, "ledger").await;
    let (main_url, dlq_url) = create_queues(&sqs, 5, 30).await;
    let ledger = Arc::new(DynamoLedger::new(ddb, "ledger"));
    let pipeline_with = |queue_url: &str| {
        Pipeline::builder(
            ledger.clone(),
            Arc::new(SqsQueue::new(sqs.clone(), queue_url)),
            Arc::new(ScriptedMessenger::new()),
        )
        .settings(PipelineSettings {
            hash_key: b"wire-test-hash-key-0123".to_vec(),
            ..Default::default()
        })
        .build()
    };
    let dlq = SqsQueue::new(sqs.clone(), &dlq_url);
    let job = |id: &str, to: &str, expires_in: i64| DeliveryRequest {
        event_id: eid(id),
        request_type: RequestType::PasswordReset,
        phone: PhoneNumber::parse(to, "US".parse().unwrap()).unwrap(),
        otp: Otp::parse("310754").unwrap(),
        otp_expires: chrono::Utc::now() + chrono::Duration::seconds(expires_in),
        channel: Channel::Sms,
        locale: Locale::parse("en").unwrap(),
        locale_from_request: true,
        user_id: None,
    };
    let fill = || async {
        for (i, req) in [
            job("evt-dlq-expired", "+14155552671", -60),
            job("evt-dlq-sent", "+14165550163", 300),
            job("evt-dlq-live", "+12125550178", 300),
        ]
        .iter()
        .enumerate()
        {
            dlq.send(msg(
                &format!("g{i}"),
                req.event_id.as_str(),
                &Job::from_request(req).encode(),
            ))
            .await
            .unwrap();
        }
        dlq.send(msg("g9", "junk", "not a job")).await.unwrap();
    };
    ledger
        .mark_sent(&eid("evt-dlq-sent"), "m-earlier", SystemClock.now_ms())
        .await
        .unwrap();
    fill().await;

    // Dry run: counts, changes nothing, and leaves every message visible.
    let pipeline = pipeline_with(&main_url);
    let dry = replay_dlq(
        &pipeline,
        &dlq,
        &ReplayRequest {
            max_messages: 50,
            dry_run: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dry,
        ReplayReport {
            moved: 1,
            expired: 1,
            already_sent: 1,
            failed: 1,
            remaining: 4,
            dry_run: true
        }
    );
    assert!(ledger.get(&eid("evt-dlq-expired")).await.unwrap().is_none());

    // A main queue that cannot be sent to: the live job stays in the DLQ.
    let broken = pipeline_with(&format!("{}/000000000000/no-such-queue.fifo", m.url));
    let report = replay_dlq(
        &broken,
        &dlq,
        &ReplayRequest {
            max_messages: 50,
            dry_run: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.remaining, 4);
    let report = replay_dlq(
        &broken,
        &dlq,
        &ReplayRequest {
            max_messages: 50,
            dry_run: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.moved,
            report.expired,
            report.already_sent,
            report.failed
        ),
        (0, 1, 1, 2)
    );
    assert_eq!(
        report.remaining, 2,
        "the live job and the unreadable one stay"
    );
    assert_eq!(
        ledger
            .get(&eid("evt-dlq-expired"))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Expired
    );

    // Now for real: the live job moves back to the main queue.
    let report = replay_dlq(
        &pipeline,
        &dlq,
        &ReplayRequest {
            max_messages: 50,
            dry_run: false,
        },
    )
    .await
    .unwrap();
    assert_eq!((report.moved, report.failed, report.remaining), (1, 1, 1));
    let moved = SqsQueue::new(sqs.clone(), &main_url)
        .receive(10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    let job = Job::decode(&moved[0].body).unwrap();
    assert_eq!((job.event_id.as_str(), job.replays), ("evt-dlq-live", 1));
    assert_eq!(moved[0].dedup_id.as_deref(), Some("evt-dlq-live#replay1"));
}

#[tokio::test]
async fn rate_counters_are_atomic_and_count_an_event_once() {
    use telehook::ledger::{RateCount, RateDecision};
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_ledger_table(&ddb, "ledger").await;
    let ledger = DynamoLedger::new(ddb.clone(), "ledger");
    let ids: Vec<EventId> = (0..12).map(|i| eid(&format!("evt-rate-{i}"))).collect();
    fn count(e: &EventId) -> RateCount<'_> {
        RateCount {
            scope: "dst",
            key: "5f2c9e",
            window: 2_879_000,
            limit: 5,
            event_id: e,
            expires_at: 1_727_400_000,
        }
    }
    // Twelve at once against a limit of five: exactly five get through.
    let decisions = futures::future::join_all(ids.iter().map(|e| {
        let ledger = ledger.clone();
        let c = count(e);
        async move { ledger.count(&c).await.unwrap() }
    }))
    .await;
    let allowed = decisions
        .iter()
        .filter(|d| matches!(d, RateDecision::Allowed { .. }))
        .count();
    assert_eq!(allowed, 5, "{decisions:?}");
    // A replayed event that was counted is allowed again, without counting.
    let first = ids
        .iter()
        .zip(&decisions)
        .find(|(_, d)| matches!(d, RateDecision::Allowed { .. }))
        .unwrap()
        .0;
    assert_eq!(
        ledger.count(&count(first)).await.unwrap(),
        RateDecision::Allowed { count: 5 }
    );
    // The record holds a count, event ids and a TTL: no number.
    let item = ddb
        .get_item()
        .table_name("ledger")
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("rate#dst#5f2c9e#2879000".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["count", "eventIds", "expiresAt", "pk"]);
}
