//! One behaviour suite per port, written once and run against both twins:
//! the in-memory adapter the flow tests and local mode use, and the AWS
//! adapter over the wire (DynamoDB and SQS on the local emulator, End User
//! Messaging on the SMS/voice stub). If the twins' semantics drift apart,
//! one of each pair fails.
//!
//! What only one twin has (the DynamoDB item's attribute names, the template
//! table's cache, the SDK's request fields) is tested beside that adapter,
//! in `aws.rs` and `eum.rs`.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::moto::{QueueTimings, create_resources, moto, sdk_config};
use telehook::domain::{Channel, EventId, UseSignal};

pub(crate) fn eid(s: &str) -> EventId {
    EventId::parse(s).unwrap()
}

pub(crate) mod ledger;

mod queue {
    use super::*;
    use telehook::clock::Clock;
    use telehook::queue::{FifoSettings, InMemoryFifo, JobQueue, OutgoingMessage, SqsQueue};
    use telehook::testkit::ManualClock;

    fn msg(group: &str, dedup: &str, body: &str) -> OutgoingMessage {
        OutgoingMessage {
            body: body.into(),
            group_id: group.into(),
            dedup_id: dedup.into(),
        }
    }

    /// The embedded twins' job queue: no delay, `maxReceiveCount` 2, a
    /// one-second visibility timeout (the emulator's queue is made so too).
    fn twin_settings() -> FifoSettings {
        FifoSettings {
            delay: Duration::ZERO,
            visibility: Duration::from_secs(1),
            max_receive_count: Some(2),
            dedup_window: Duration::from_secs(300),
        }
    }

    /// A FIFO queue with `maxReceiveCount` 2 and a one-second visibility
    /// timeout, its DLQ, and how to let time pass for it.
    struct Twin {
        queue: Arc<dyn JobQueue>,
        dlq: Arc<dyn JobQueue>,
        clock: Option<Arc<ManualClock>>,
    }

    impl Twin {
        async fn pass(&self, d: Duration) {
            match &self.clock {
                Some(clock) => clock.advance(chrono::Duration::from_std(d).unwrap()),
                None => tokio::time::sleep(d).await,
            }
        }
    }

    /// Deduplication, order within a group, group locking, delete, depth,
    /// and redrive to the DLQ after `maxReceiveCount`.
    async fn behaves(t: Twin) {
        let q = &t.queue;
        assert!(q.arn().ends_with("jobs.fifo"), "{}", q.arn());
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
        // messages out of order after a visibility timeout when several were
        // in flight together, which real SQS does not.
        q.send(msg("r", "d4", "r1")).await.unwrap();
        for expected_count in 1..=2 {
            let got = q.receive(10, Duration::ZERO).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].receive_count, expected_count);
            t.pass(Duration::from_millis(1100)).await;
        }
        assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
        let dead = t.dlq.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["r1"]
        );
        let depth = q.depth().await.unwrap();
        assert_eq!(depth.visible + depth.in_flight + depth.delayed, 0);

        // A released message is visible again at once.
        t.dlq.release(&dead[0].receipt_handle).await.unwrap();
        let again = t.dlq.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].body, "r1");

        // The dispatcher's retry delay: a visibility set on a received
        // message outlasts the main queue's own (one second here), and
        // setting it to zero brings the message back at once.
        q.send(msg("v", "d5", "v1")).await.unwrap();
        let got = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        let receipt = &got[0].receipt_handle;
        q.set_visibility(receipt, Duration::from_secs(30))
            .await
            .unwrap();
        t.pass(Duration::from_millis(1100)).await;
        assert!(
            q.receive(10, Duration::ZERO).await.unwrap().is_empty(),
            "the visibility set on the message applies, not the queue's"
        );
        q.set_visibility(receipt, Duration::ZERO).await.unwrap();
        let back = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].body, "v1");
        q.delete(&back[0].receipt_handle).await.unwrap();
    }

    #[tokio::test]
    async fn in_memory() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let as_clock: Arc<dyn Clock> = clock.clone();
        let dlq = Arc::new(InMemoryFifo::dead_letter(
            "jobs-dlq.fifo",
            as_clock.clone(),
            Duration::from_secs(1),
        ));
        let queue = Arc::new(InMemoryFifo::new(
            "jobs.fifo",
            as_clock,
            twin_settings(),
            Some(dlq.clone()),
        ));
        behaves(Twin {
            queue,
            dlq,
            clock: Some(clock),
        })
        .await;
    }

    #[tokio::test]
    async fn on_sqlite() {
        use telehook::queue::{QueueFile, SqliteFifo};
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let as_clock: Arc<dyn Clock> = clock.clone();
        let path = ledger::sqlite_file().with_file_name("queue.sqlite");
        let file = QueueFile::open(&path).unwrap();
        let dlq = Arc::new(SqliteFifo::new(
            file.clone(),
            "jobs-dlq.fifo",
            as_clock.clone(),
            FifoSettings::dead_letter(Duration::from_secs(1)),
            None,
        ));
        let queue = Arc::new(SqliteFifo::new(
            file,
            "jobs.fifo",
            as_clock,
            twin_settings(),
            Some("jobs-dlq.fifo"),
        ));
        behaves(Twin {
            queue,
            dlq,
            clock: Some(clock),
        })
        .await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn on_sqs() {
        let (_guard, m) = moto().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk_config(&m.url).await);
        let r = create_resources(&m.url, QueueTimings::quick(2, 1)).await;
        let (main_url, dlq_url) = (r.queue_url.clone(), r.dlq_url.clone());
        behaves(Twin {
            queue: Arc::new(SqsQueue::new(sqs.clone(), &main_url)),
            dlq: Arc::new(SqsQueue::new(sqs, &dlq_url)),
            clock: None,
        })
        .await;
    }
}

mod timers {
    use super::*;
    use telehook::testkit::ManualClock;
    use telehook::timers::{ExpiryCheck, InMemoryTimers, SqsTimers, Timers};

    /// A check due now arrives; one due in a minute does not yet; a
    /// handled check is gone; a stale handle is refused or ignored.
    async fn behaves(timers: &dyn Timers, now_ms: i64) {
        let due = ExpiryCheck::new("evt-t-1", now_ms - 1);
        let later = ExpiryCheck::new("evt-t-2", now_ms + 60_000);
        timers.schedule(&due.clone().into(), now_ms).await.unwrap();
        timers.schedule(&later.into(), now_ms).await.unwrap();
        let got = timers.arrived(10).await.unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(ExpiryCheck::decode(&got[0].body), Some(due));
        timers.done(&got[0].handle).await.unwrap();
        assert!(timers.arrived(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn in_memory() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let now = telehook::clock::Clock::now_ms(clock.as_ref());
        behaves(&InMemoryTimers::new(clock), now).await;
    }

    #[tokio::test]
    async fn on_sqlite() {
        use telehook::queue::QueueFile;
        use telehook::timers::SqliteTimers;
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let now = telehook::clock::Clock::now_ms(clock.as_ref());
        let path = ledger::sqlite_file().with_file_name("queue.sqlite");
        let timers = SqliteTimers::new(QueueFile::open(&path).unwrap(), clock);
        behaves(&timers, now).await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn on_sqs() {
        let (_guard, m) = moto().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk_config(&m.url).await);
        let r = create_resources(&m.url, QueueTimings::default()).await;
        let url = r.expiry_queue_url.clone();
        behaves(
            &SqsTimers::new(sqs, url),
            chrono::Utc::now().timestamp_millis(),
        )
        .await;
    }
}

mod messenger {
    use super::*;
    use crate::support::sms_voice_stub::{Fault, SmsVoiceStub};
    use telehook::domain::Feedback;
    use telehook::messenger::eum::EndUserMessaging;
    use telehook::messenger::settings::{EumSettings, OriginationIdentities};
    use telehook::messenger::{Messenger, OutboundMessage, SendError};
    use telehook::testkit::{Scripted, ScriptedMessenger};

    /// How the next send should fail, in the provider's terms.
    #[derive(Debug, Clone, Copy)]
    enum Next {
        Throttled,
        OptedOut,
    }

    /// A messenger and a way to make its provider fail the next send.
    trait Twin {
        fn messenger(&self) -> &dyn Messenger;
        fn fail_next(&self, how: Next);
    }

    struct Scripted_(ScriptedMessenger);

    impl Twin for Scripted_ {
        fn messenger(&self) -> &dyn Messenger {
            &self.0
        }
        fn fail_next(&self, how: Next) {
            self.0.script([Scripted::Fail(match how {
                Next::Throttled => SendError::Retryable {
                    code: "ThrottlingException".into(),
                },
                Next::OptedOut => SendError::Permanent {
                    code: "ConflictException".into(),
                    reason: Some("DESTINATION_PHONE_NUMBER_OPTED_OUT".into()),
                },
            })]);
        }
    }

    struct Eum(EndUserMessaging, SmsVoiceStub);

    impl Twin for Eum {
        fn messenger(&self) -> &dyn Messenger {
            &self.0
        }
        fn fail_next(&self, how: Next) {
            match how {
                // The SDK retries a throttle twice itself; a throttle that
                // persists through all three attempts is what we see.
                Next::Throttled => {
                    self.1
                        .script([Fault::Throttle, Fault::Throttle, Fault::Throttle])
                }
                Next::OptedOut => self.1.script([Fault::OptedOut]),
            }
        }
    }

    struct NotifyTwin(telehook::messenger::notify::Notify, SmsVoiceStub);

    impl Twin for NotifyTwin {
        fn messenger(&self) -> &dyn Messenger {
            &self.0
        }
        fn fail_next(&self, how: Next) {
            let route = crate::support::sms_voice_stub::Route::Notify;
            match how {
                Next::Throttled => self.1.script_for(route, [Fault::Throttle; 3]),
                Next::OptedOut => self.1.script_for(route, [Fault::OptedOut]),
            }
        }
    }

    async fn message(channel: Channel) -> OutboundMessage {
        crate::eum::message(channel, "+14155552671", 300).await
    }

    /// Both channels are accepted with a message id; a throttle is
    /// retryable; an opted-out number is permanent, with the provider's
    /// reason.
    async fn behaves(t: &dyn Twin) {
        let sms = t
            .messenger()
            .send(&message(Channel::Sms).await)
            .await
            .unwrap();
        let voice = t
            .messenger()
            .send(&message(Channel::Voice).await)
            .await
            .unwrap();
        assert!(!sms.message_id.is_empty() && !voice.message_id.is_empty());

        t.fail_next(Next::Throttled);
        let err = t
            .messenger()
            .send(&message(Channel::Sms).await)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(err.code(), "ThrottlingException");

        t.fail_next(Next::OptedOut);
        let err = t
            .messenger()
            .send(&message(Channel::Sms).await)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SendError::Permanent {
                code: "ConflictException".into(),
                reason: Some("DESTINATION_PHONE_NUMBER_OPTED_OUT".into()),
            }
        );
        // A failure is one message's: the next send goes through.
        assert!(
            t.messenger()
                .send(&message(Channel::Voice).await)
                .await
                .is_ok()
        );

        // Feedback on either outcome of a sent message is taken.
        for status in [Feedback::Received, Feedback::Failed] {
            t.messenger()
                .feedback(&sms.message_id, status)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn scripted() {
        behaves(&Scripted_(ScriptedMessenger::new())).await;
    }

    #[tokio::test]
    async fn on_notify() {
        let stub = SmsVoiceStub::start().await;
        let notify = telehook::messenger::notify::Notify::new(
            stub.client().await,
            telehook::messenger::settings::NotifySettings {
                configuration_id: "nc-port-suite".into(),
                configuration_set: Some("otp-events".into()),
            },
        );
        behaves(&NotifyTwin(notify, stub)).await;
    }

    #[tokio::test]
    async fn on_end_user_messaging() {
        let stub = SmsVoiceStub::start().await;
        let settings = EumSettings {
            origination: OriginationIdentities::parse(r#"{"default":"pool-default"}"#).unwrap(),
            ..EumSettings::default()
        };
        let eum = EndUserMessaging::new(stub.client().await, settings);
        let twin = Eum(eum, stub);
        behaves(&twin).await;
        // On the wire: sends enable feedback; feedback names the message.
        let requests = twin.1.requests();
        let sends: Vec<&serde_json::Value> = requests
            .iter()
            .filter(|(op, _)| op.ends_with("Message"))
            .map(|(_, body)| body)
            .collect();
        assert!(!sends.is_empty());
        assert!(
            sends.iter().all(|b| b["MessageFeedbackEnabled"] == true),
            "{sends:?}"
        );
        let feedback: Vec<&serde_json::Value> = requests
            .iter()
            .filter(|(op, _)| op == "PutMessageFeedback")
            .map(|(_, body)| body)
            .collect();
        let statuses: Vec<&str> = feedback
            .iter()
            .map(|b| b["MessageFeedbackStatus"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["RECEIVED", "FAILED"]);
        // Each names a message the stub accepted.
        assert!(
            feedback
                .iter()
                .all(|b| b["MessageId"].as_str().unwrap().starts_with("stub-")),
            "{feedback:?}"
        );
    }
}

mod templates {
    use super::*;
    use telehook::domain::{Locale, Otp};
    use telehook::templates::{
        DynamoTemplateStore, InMemoryTemplateStore, Template, TemplateStore, Templates, TextType,
    };

    fn template(locale: &str, channel: Channel, body: &str) -> Template {
        Template {
            locale: locale.into(),
            channel,
            body: body.into(),
            text_type: TextType::Text,
            voice_id: (channel == Channel::Voice).then(|| "Lupe".to_owned()),
            language_code: None,
        }
    }

    /// Put, get by locale and channel, replace, list in order; and the
    /// lookup chain asks the store before the built-ins.
    async fn behaves(store: Arc<dyn TemplateStore>) {
        assert_eq!(store.get("es-MX", Channel::Sms).await.unwrap(), None);
        store
            .put(&template("es-MX", Channel::Sms, "{{code}} es tu clave"))
            .await
            .unwrap();
        store
            .put(&template(
                "es-MX",
                Channel::Sms,
                "{{code}} es tu clave de {{org}}",
            ))
            .await
            .unwrap();
        store
            .put(&template("de", Channel::Voice, "Ihr Code ist {{code}}"))
            .await
            .unwrap();
        let got = store.get("es-MX", Channel::Sms).await.unwrap().unwrap();
        assert_eq!(
            got,
            template("es-MX", Channel::Sms, "{{code}} es tu clave de {{org}}")
        );
        assert_eq!(store.get("es-MX", Channel::Voice).await.unwrap(), None);
        let listed: Vec<(String, Channel)> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.locale, t.channel))
            .collect();
        assert_eq!(
            listed,
            [
                ("de".to_owned(), Channel::Voice),
                ("es-MX".to_owned(), Channel::Sms)
            ]
        );

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
    }

    #[tokio::test]
    async fn in_memory() {
        behaves(Arc::new(InMemoryTemplateStore::default())).await;
    }

    #[tokio::test]
    async fn on_dynamodb() {
        let (_guard, m) = moto().await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&m.url).await);
        let r = create_resources(&m.url, QueueTimings::default()).await;
        behaves(Arc::new(DynamoTemplateStore::new(
            ddb,
            &r.templates_table,
            Duration::from_secs(300),
        )))
        .await;
    }
}
