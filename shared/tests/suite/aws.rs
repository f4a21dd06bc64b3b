//! The AWS adapters over the wire, against the local AWS API emulator:
//! the DynamoDB ledger and template store, the SQS FIFO queue with its
//! dead-letter queue, and the dispatcher end to end through the same
//! event-source poller local mode uses.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::moto::{QueueTimings, create_resources, moto, sdk_config, setup_config};
use telehook::clock::{Clock, SystemClock};
use telehook::domain::DeliveryOutcome;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::domain::{DeliveryRequest, EventId, RequestType};
use telehook::flows::{Pipeline, PipelineSettings, poll_once};
use telehook::ledger::{Claims, Conversions, GuardBook, RateCounts, ReceiptLog, Status};
use telehook::ledger::{DynamoLedger, EndClaim};
use telehook::queue::SqsQueue;
use telehook::queue::{JobQueue, OutgoingMessage};
use telehook::templates::DynamoTemplateStore;
use telehook::templates::{Template, TemplateStore, Templates, TextType};
use telehook::testkit::ScriptedMessenger;

use crate::ports::eid;
use crate::ports::ledger::claim;

/// The conditional-write behaviour is in `ports.rs`; this checks what only
/// DynamoDB shows: the stored item.
#[tokio::test]
async fn ledger_items_hold_only_the_documented_attributes() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::default()).await;
    let ledger = DynamoLedger::new(ddb.clone(), &r.ledger_table);
    let e = eid("evt-wire-1");
    let t0 = 1_700_000_000_000;
    ledger.claim(&claim(&e, "a", t0)).await.unwrap();
    ledger
        .end_claim(&EndClaim {
            event_id: &e,
            owner: "a",
            end: telehook::ledger::ClaimEnd::Released,
            reason: "retryable:ThrottlingException",
            now_ms: t0 + 1,
        })
        .await
        .unwrap();
    ledger.claim(&claim(&e, "b", t0 + 2)).await.unwrap();
    ledger
        .mark_sent(&telehook::ledger::SendConfirmed {
            event_id: &e,
            message_id: "mid-evt-wire-1",
            route: telehook::domain::Route::Own,
            now_ms: t0 + 3,
        })
        .await
        .unwrap();

    // The stored item holds exactly the documented attributes: no OTP, no
    // number (the destination's country only).
    let names =
        |item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            let mut names: Vec<String> = item.into_keys().collect();
            names.sort();
            names
        };
    let item = || async {
        ddb.get_item()
            .table_name(&r.ledger_table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("evt#evt-wire-1".into()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    let sent = [
        "attempts",
        "channel",
        "country",
        // The number's keyed hash, never the number.
        "destination",
        "expiresAt",
        // No `failure`: the released first try's reason is removed
        // once the send is recorded.
        "leaseUntil",
        "messageId",
        "oktaRequest",
        "owner",
        "pk",
        "route",
        "status",
        "updatedAt",
    ];
    assert_eq!(names(item().await), sent);
    // A delivery receipt adds its own, and nothing that names the number.
    let receipt = crate::ports::ledger::receipt(
        "evt-wire-1",
        telehook::domain::DeliveryVerdict::Delivered,
        "TEXT_DELIVERED",
    );
    ledger.record_delivery(&receipt, t0 + 4).await.unwrap();
    let mut with_receipt: Vec<&str> = sent.to_vec();
    with_receipt.extend([
        "delivery",
        "deliveryDescription",
        "deliveryEvent",
        "deliveryMessageId",
        "deliveryMs",
        "deliveryReportedAt",
        "deliveryStatus",
        "mcc",
        "mnc",
    ]);
    with_receipt.sort_unstable();
    assert_eq!(names(item().await), with_receipt);
    // Conversion and a fallback add theirs: a keyed hash of the user, a
    // prefix of the number, times and words.
    ledger
        .note_send(&telehook::ledger::SendNote {
            event_id: &e,
            user_key: Some("0123abcd"),
            channel: Channel::Sms,
            signal: Some(telehook::domain::UseSignal::Enrollment),
            guard: true,
            prefix: "1415555",
            sent_ms: t0 + 3,
            otp_expires_ms: t0 + 300_000,
        })
        .await
        .unwrap();
    ledger.judge(&e, t0 + 60_003).await.unwrap().unwrap();
    ledger.mark_unused(&e, t0 + 300_001).await.unwrap().unwrap();
    assert!(ledger.claim_fallback(&e, t0 + 5).await.unwrap());
    let mut converted = with_receipt.clone();
    converted.extend([
        "conversion",
        "convertedAt",
        "fallbackAt",
        "guardJudged",
        "judgedAt",
        "otpExpiresAt",
        "prefix",
        "sentAt",
        "signal",
        "userChannel",
    ]);
    converted.sort_unstable();
    assert_eq!(names(item().await), converted);
}

#[tokio::test]
async fn templates_table_cache_and_a_missing_table() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::default()).await;
    let store = Arc::new(DynamoTemplateStore::new(
        ddb.clone(),
        &r.templates_table,
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
    assert!(store.get("es-MX", Channel::Sms).await.unwrap().is_some());

    // Cached per instance: deleting the item does not show until the TTL.
    ddb.delete_item()
        .table_name(&r.templates_table)
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
    let fresh = DynamoTemplateStore::new(ddb.clone(), &r.templates_table, Duration::ZERO);
    assert!(fresh.get("es-MX", Channel::Sms).await.unwrap().is_none());

    let code = Otp::parse("5521").unwrap();

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
async fn dispatcher_end_to_end_through_the_poller() {
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::quick(2, 1)).await;
    let (main_url, dlq_url) = (r.queue_url.clone(), r.dlq_url.clone());
    let queue = Arc::new(SqsQueue::new(sqs.clone(), &main_url));
    let dlq = SqsQueue::new(sqs.clone(), &dlq_url);
    let ledger = Arc::new(DynamoLedger::new(ddb, &r.ledger_table));
    let messenger = Arc::new(ScriptedMessenger::new());
    let pipeline = Pipeline::builder(ledger.clone(), queue.clone(), messenger.clone())
        .settings(PipelineSettings {
            fast_path: false,
            hash_key: b"wire-test-hash-key-0123".to_vec().into(),
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
        context: Default::default(),
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

/// The learning guard and conversion on the DynamoDB ledger, through the
/// pipeline: a range whose enrollments finish stays open, one whose
/// enrollments never finish is blocked once its minimum of codes is judged
/// (after the typing time), and the block is an item the next hook reads.
#[tokio::test]
async fn the_learning_guard_blocks_a_range_over_the_wire() {
    use telehook::domain::UseSignal;
    use telehook::flows::conversion::{record_sign_ins, run_due_checks};
    use telehook::flows::guard::{AllowedCountries, GuardSettings, Learning};
    use telehook::okta::events::{EventBatch, SignInEvent};
    use telehook::testkit::ManualClock;
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::quick(2, 1)).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let main_url = r.queue_url.clone();
    let ledger = Arc::new(DynamoLedger::new(ddb, &r.ledger_table));
    let messenger = Arc::new(ScriptedMessenger::new());
    // On the hour: the counts are kept per hour of the send, and the run
    // must not straddle one by chance.
    let clock = Arc::new(ManualClock::at_hour_start());
    let pipeline = Pipeline::builder(
        ledger.clone(),
        Arc::new(SqsQueue::new(sqs, &main_url)),
        messenger.clone(),
    )
    .clock(clock.clone())
    .settings(PipelineSettings {
        hash_key: b"wire-test-hash-key-0123".to_vec().into(),
        guard: GuardSettings {
            countries: AllowedCountries::All,
            per_destination: None,
            per_user: None,
            learning: Learning {
                min_sends: 5,
                ..Learning::on()
            },
            ..GuardSettings::default()
        },
        ..Default::default()
    })
    .build();
    let hook = |i: usize, phone: String| DeliveryRequest {
        event_id: eid(&format!("evt-lg-{i}")),
        request_type: RequestType::PreEnrollment,
        phone: PhoneNumber::parse(&phone, "US".parse().unwrap()).unwrap(),
        otp: Otp::parse("602214").unwrap(),
        otp_expires: clock.now() + chrono::Duration::minutes(5),
        channel: Channel::Sms,
        locale: Locale::parse("en").unwrap(),
        locale_from_request: true,
        user_id: Some(format!("00ulg{i}").into()),
        context: Default::default(),
    };
    for i in 0..5 {
        // Finishing range: each enrollment finishes seconds after its code.
        let out = pipeline
            .handle_hook(
                hook(i, format!("+1206555{:04}", 100 + i)),
                tokio::time::Instant::now(),
            )
            .await;
        assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
        clock.advance(chrono::Duration::seconds(2));
        let batch = EventBatch {
            sign_ins: vec![SignInEvent {
                user_id: format!("00ulg{i}"),
                signal: UseSignal::Enrollment,
                channel: Some(Channel::Sms),
                at: clock.now(),
                uuid: Some(format!("uuid-lg-{i}")),
            }],
            ..EventBatch::default()
        };
        assert_eq!(
            record_sign_ins(&pipeline, &batch).await.unwrap().converted,
            1
        );
        // Pumped range: nobody finishes anything.
        let out = pipeline
            .handle_hook(
                hook(100 + i, format!("+4477009{:05}", i)),
                tokio::time::Instant::now(),
            )
            .await;
        assert!(
            matches!(out, DeliveryOutcome::Successful { .. }),
            "pending codes count for nothing: {out:?}"
        );
    }
    // The typing time passes: the pumped codes are judged unused.
    clock.advance(chrono::Duration::seconds(61));
    run_due_checks(&pipeline).await;
    let mut answers = Vec::new();
    for i in 5..7 {
        for (n, phone) in [
            (i, format!("+1206555{:04}", 100 + i)),
            (100 + i, format!("+4477009{:05}", i)),
        ] {
            let out = pipeline
                .handle_hook(hook(n, phone), tokio::time::Instant::now())
                .await;
            answers.push(matches!(out, DeliveryOutcome::Successful { .. }));
        }
    }
    assert_eq!(answers, [true, false, true, false]);
    let blocks = ledger.list_blocks().await.unwrap();
    let keys: Vec<(&str, &str)> = blocks
        .iter()
        .map(|b| (b.scope.as_str(), b.key.as_str()))
        .collect();
    assert_eq!(keys, [("pfx", "4477009")]);
    assert_eq!(blocks[0].judged, 5);
    assert!(blocks[0].reason.contains("0 of 5"), "{}", blocks[0].reason);
}

#[tokio::test]
async fn dlq_replay_over_the_wire() {
    use telehook::domain::job::Job;
    use telehook::flows::replay::{ReplayReport, ReplayRequest, replay_dlq};
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::quick(5, 30)).await;
    let (main_url, dlq_url) = (r.queue_url.clone(), r.dlq_url.clone());
    let ledger = Arc::new(DynamoLedger::new(ddb, &r.ledger_table));
    let pipeline_with = |queue_url: &str| {
        Pipeline::builder(
            ledger.clone(),
            Arc::new(SqsQueue::new(sqs.clone(), queue_url)),
            Arc::new(ScriptedMessenger::new()),
        )
        .settings(PipelineSettings {
            hash_key: b"wire-test-hash-key-0123".to_vec().into(),
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
        context: Default::default(),
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
                &Job::from_request(
                    req,
                    telehook::crypto::keyed(&b"emulator-key".to_vec().into()),
                )
                .encode(),
            ))
            .await
            .unwrap();
        }
        dlq.send(msg("g9", "junk", "not a job")).await.unwrap();
    };
    ledger
        .mark_sent(&telehook::ledger::SendConfirmed {
            event_id: &eid("evt-dlq-sent"),
            message_id: "m-earlier",
            route: telehook::domain::Route::Own,
            now_ms: SystemClock.now_ms(),
        })
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
async fn rate_records_hold_only_a_count_event_ids_and_a_ttl() {
    use telehook::ledger::RateCount;
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::default()).await;
    let ledger = DynamoLedger::new(ddb.clone(), &r.ledger_table);
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
    ledger.count(&count(&ids[0])).await.unwrap();
    // The record holds a count, event ids and a TTL: no number.
    let item = ddb
        .get_item()
        .table_name(&r.ledger_table)
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

/// Secrets given by ARN: read from Secrets Manager at init (the hash key,
/// the header secret), and the header secret re-read once it stops
/// matching, so a rotation needs no redeploy.
#[tokio::test]
async fn secrets_by_arn_are_read_at_init_and_reread_after_rotation() {
    use telehook::api::{IngressDeps, telehook};
    use telehook::auth::settings::IngressConfig;
    use telehook::flows::PipelineConfig;
    use telehook::testkit::RecordingDelivery;

    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    // Created once, with no retry that could find its own secret.
    let setup = aws_sdk_secretsmanager::Client::new(&setup_config(&sdk));
    let create = |name: &'static str, value: &'static str| {
        let sm = setup.clone();
        async move {
            sm.create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .unwrap()
                .arn
                .unwrap()
        }
    };
    let hash_arn = create("hash-key", "hash-key-from-secrets-manager-0123").await;
    let header_arn = create("header-secret", "first-header-secret-value-0123").await;

    // The hash key: read by aws_pipeline, never from the environment.
    let env = [
        ("LEDGER_TABLE", "ledger".to_owned()),
        ("QUEUE_URL", format!("{}/000000000000/jobs.fifo", m.url)),
        ("HASH_KEY_SECRET_ARN", hash_arn.clone()),
        (
            "ORIGINATION_IDENTITIES",
            r#"{"default":"+15555550100"}"#.to_owned(),
        ),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = PipelineConfig::from_lookup(lookup).unwrap();
    let clients = telehook::aws::AwsClients::new(&sdk);
    let pipeline = telehook::wiring::aws_pipeline(&clients, &config)
        .await
        .unwrap();
    assert_eq!(
        *pipeline.settings.hash_key,
        *b"hash-key-from-secrets-manager-0123"
    );
    // The key never prints, whatever holds it.
    assert!(!format!("{pipeline:?}").contains("hash-key-from"));
    assert!(!format!("{:?}", pipeline.settings).contains("104, 97, 115, 104"));

    // The header secret, then a rotation.
    let env = [
        ("AUTH_MODE", "header".to_owned()),
        ("AUTH_HEADER_NAME", "x-okta-hook-secret".to_owned()),
        ("AUTH_HEADER_SECRET_ARN", header_arn.clone()),
    ];
    let config =
        IngressConfig::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    assert!(
        IngressDeps::new(&config, Arc::new(RecordingDelivery::new())).is_err(),
        "an ARN must be read first"
    );
    let deps = IngressDeps::for_lambda(&config, Arc::new(RecordingDelivery::new()), &sm)
        .await
        .unwrap();
    let call = |secret: &'static str| {
        let mut e = crate::support::proxy_event(&crate::support::sms_body(), None);
        e.headers
            .insert("x-okta-hook-secret", secret.parse().unwrap());
        e
    };
    assert_eq!(
        telehook(&deps, call("first-header-secret-value-0123"))
            .await
            .status_code,
        200
    );
    sm.put_secret_value()
        .secret_id(&header_arn)
        .secret_string("second-header-secret-value-4567")
        .send()
        .await
        .unwrap();
    assert_eq!(
        telehook(&deps, call("second-header-secret-value-4567"))
            .await
            .status_code,
        200,
        "the rotated value works at once"
    );
    assert_eq!(
        telehook(&deps, call("first-header-secret-value-0123"))
            .await
            .status_code,
        200,
        "the old one too, while Okta still sends it"
    );
    // A second rotation; a fresh instance reads the versions at init: the
    // current value and the one before it, not older ones.
    sm.put_secret_value()
        .secret_id(&header_arn)
        .secret_string("third-header-secret-value-89ab")
        .send()
        .await
        .unwrap();
    let cold = IngressDeps::for_lambda(&config, Arc::new(RecordingDelivery::new()), &sm)
        .await
        .unwrap();
    for (secret, status) in [
        ("third-header-secret-value-89ab", 200),
        ("second-header-secret-value-4567", 200),
        ("first-header-secret-value-0123", 401),
        ("not-the-header-secret-value-000", 401),
    ] {
        assert_eq!(
            telehook(&cold, call(secret)).await.status_code,
            status,
            "{secret}"
        );
    }

    // A secret that cannot be read stops the start, naming the variable.
    let env = [
        ("AUTH_MODE", "header".to_owned()),
        (
            "AUTH_HEADER_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf".to_owned(),
        ),
    ];
    let config =
        IngressConfig::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let err = IngressDeps::for_lambda(&config, Arc::new(RecordingDelivery::new()), &sm)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AUTH_HEADER_SECRET_ARN"), "{err}");
}

/// A long poll waits longer than the hot path's 1.5 s attempt timeout: with
/// the product's own SDK settings (not the tests' long ones) an empty
/// queue answers "nothing" after the wait, not a timeout. `serve --aws`
/// used to log "queue unavailable: Timeout" on every idle poll.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_on_the_products_own_settings_is_not_a_timeout() {
    let (_guard, m) = moto().await;
    let main = create_resources(&m.url, QueueTimings::default())
        .await
        .queue_url;
    let product_sdk = telehook::aws::sdk_config_loader()
        .endpoint_url(&m.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&product_sdk), main);
    let got = queue.receive(10, Duration::from_secs(3)).await;
    assert!(matches!(&got, Ok(v) if v.is_empty()), "{got:?}");
}

/// A check the receipts function keeps failing on (its ledger unreachable)
/// reaches the timers' dead-letter queue after five receives, as the
/// template's redrive says; `replay_checks` moves it back, and once the
/// ledger is back it decides the send once: UNUSED, one FAILED feedback,
/// nothing lost and nothing done twice.
#[tokio::test]
async fn a_failing_check_reaches_its_dead_letter_queue_and_is_replayed_once() {
    use aws_sdk_sqs::types::QueueAttributeName;
    use telehook::flows::conversion::check_sqs_timers;
    use telehook::flows::replay::replay_checks;
    use telehook::timers::{Check, ExpiryCheck, SqsTimers, Timers};
    let (_guard, m) = moto().await;
    let sdk = sdk_config(&m.url).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let r = create_resources(&m.url, QueueTimings::default()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // The template's timers queue, with its redrive (five receives, then
    // the dead-letter queue).
    let (queue_url, dlq_url) = (r.expiry_queue_url.clone(), r.expiry_dlq_url.clone());
    let max_receive_count = template_max_receive_count("ExpiryQueue");

    // A sent code whose life is over, and its expiry check on the queue.
    let ledger = Arc::new(DynamoLedger::new(ddb.clone(), &r.ledger_table));
    let e = eid("evt-dlq-check");
    let t0 = chrono::Utc::now().timestamp_millis() - 600_000;
    ledger.claim(&claim(&e, "a", t0)).await.unwrap();
    ledger
        .mark_sent(&telehook::ledger::SendConfirmed {
            event_id: &e,
            message_id: "mid-evt-dlq-check",
            route: telehook::domain::Route::Own,
            now_ms: t0,
        })
        .await
        .unwrap();
    ledger
        .note_send(&telehook::ledger::SendNote {
            event_id: &e,
            user_key: Some("uk-dlq"),
            channel: Channel::Sms,
            signal: Some(telehook::domain::UseSignal::SignIn),
            guard: false,
            prefix: "1415555",
            sent_ms: t0,
            otp_expires_ms: t0 + 300_000,
        })
        .await
        .unwrap();
    let timers = SqsTimers::new(sqs.clone(), &queue_url);
    let check: Check = ExpiryCheck::new(e.as_str(), t0 + 300_000).into();
    timers.schedule(&check, t0 + 300_000).await.unwrap();

    let pipeline_on = |table: &str| {
        let messenger = Arc::new(ScriptedMessenger::new());
        let pipeline = Pipeline::builder(
            Arc::new(DynamoLedger::new(ddb.clone(), table)),
            Arc::new(SqsQueue::new(sqs.clone(), &queue_url)),
            messenger.clone(),
        )
        .settings(PipelineSettings {
            guard: telehook::flows::guard::GuardSettings {
                learning: telehook::flows::guard::Learning {
                    conversions: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        })
        .build();
        (pipeline, messenger)
    };
    // Lambda's SQS event source: receive, hand the batch over, delete what
    // succeeded, and let what failed come back (its visibility ends).
    let event_source_pass = |pipeline: Pipeline| {
        let sqs = sqs.clone();
        let url = queue_url.clone();
        async move {
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let records: Vec<serde_json::Value> = got
                .messages()
                .iter()
                .map(|m| {
                    serde_json::json!({"messageId": m.message_id(), "body": m.body(),
                                       "receiptHandle": m.receipt_handle()})
                })
                .collect();
            let answer =
                check_sqs_timers(&pipeline, &serde_json::json!({"Records": records})).await;
            let failed: Vec<&str> = answer["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap())
                .collect();
            for r in &records {
                let handle = r["receiptHandle"].as_str().unwrap();
                if failed.contains(&r["messageId"].as_str().unwrap()) {
                    sqs.change_message_visibility()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap();
                } else {
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap();
                }
            }
            (records.len(), failed.len())
        }
    };
    let depth = |url: String| {
        let sqs = sqs.clone();
        async move {
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap();
            [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ]
            .iter()
            .map(|k| attrs[&QueueAttributeName::from(*k)].parse::<u32>().unwrap())
            .sum::<u32>()
        }
    };

    // The ledger is unreachable (a table that is not there): every receive
    // fails, as often as the redrive allows; the next receive finds it
    // moved.
    let (broken, _) = pipeline_on("no-such-table");
    let mut failures = 0;
    for _ in 0..=max_receive_count {
        let (seen, failed) = event_source_pass(broken.clone()).await;
        assert_eq!(seen, failed);
        failures += failed;
    }
    assert_eq!(failures, max_receive_count as usize);
    assert_eq!(depth(queue_url.clone()).await, 0);
    assert_eq!(depth(dlq_url.clone()).await, 1, "set aside, not lost");
    assert_eq!(
        ledger
            .get(&e)
            .await
            .unwrap()
            .unwrap()
            .sent
            .unwrap()
            .conversion,
        None
    );

    // Moved back, and decided once the ledger answers.
    let dlq = SqsTimers::new(sqs.clone(), &dlq_url);
    let report = replay_checks(&dlq, &timers, chrono::Utc::now().timestamp_millis(), 100)
        .await
        .unwrap();
    assert_eq!((report.moved, report.unreadable), (1, 0));
    assert_eq!(depth(dlq_url.clone()).await, 0);
    let (healthy, messenger) = pipeline_on(&r.ledger_table);
    assert_eq!(event_source_pass(healthy.clone()).await, (1, 0));
    assert_eq!(
        ledger
            .get(&e)
            .await
            .unwrap()
            .unwrap()
            .sent
            .unwrap()
            .conversion
            .map(|c| c.0),
        Some(telehook::domain::Conversion::Unused)
    );
    assert_eq!(messenger.feedback_given().len(), 1);
    // Nothing left to replay or to decide again.
    let again = replay_checks(&dlq, &timers, chrono::Utc::now().timestamp_millis(), 100)
        .await
        .unwrap();
    assert_eq!(again.moved, 0);
    assert_eq!(event_source_pass(healthy).await, (0, 0));
    assert_eq!(messenger.feedback_given().len(), 1, "once");
}

/// The `maxReceiveCount` of a queue's redrive policy in `template.yaml`:
/// the lines of that resource, up to the next resource.
fn template_max_receive_count(queue: &str) -> u32 {
    let text = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
    )
    .unwrap();
    let head = format!("  {queue}:");
    text.lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("   ") || l.starts_with("  #"))
        .find_map(|l| l.trim().strip_prefix("maxReceiveCount:"))
        .unwrap_or_else(|| panic!("{queue} has no redrive policy in the template"))
        .trim()
        .parse()
        .unwrap()
}
