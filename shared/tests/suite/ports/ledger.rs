//! The ledger's behaviour suites, one per capability, each run on the
//! in-memory ledger, on SQLite (local mode's file) and on DynamoDB over
//! the wire.

use super::*;
use telehook::domain::{DeliveryVerdict, Receipt};
use telehook::ledger::{
    Claim, ClaimOutcome, Claims, DeliveryRecorded, DynamoLedger, EndClaim, GuardBook,
    InMemoryLedger, Ledger, LedgerError, RateCount, RateCounts, RateDecision, SqliteLedger, Status,
};

/// A capability's suite on the three adapters: `$suite` takes the whole ledger
/// (a receipt or a conversion lands on a claimed record) and uses its part.
macro_rules! on_every_adapter {
    ($suite:ident) => {
        #[tokio::test]
        async fn in_memory() {
            $suite(Arc::new(InMemoryLedger::new())).await;
        }

        #[tokio::test]
        async fn on_sqlite() {
            let file = sqlite_file();
            $suite(Arc::new(SqliteLedger::open(&file, 0).unwrap())).await;
            let _ = std::fs::remove_dir_all(file.parent().unwrap());
        }

        #[tokio::test]
        async fn on_dynamodb() {
            let (_guard, m) = moto().await;
            let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&m.url).await);
            let r = create_resources(&m.url, QueueTimings::default()).await;
            $suite(Arc::new(DynamoLedger::new(ddb, &r.ledger_table))).await;
        }
    };
}

/// A fresh ledger file of its own for one test.
pub(crate) fn sqlite_file() -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!(
            "telehook-ledger-{}",
            telehook::crypto::random_hex(8)
        ))
        .join("ledger.sqlite")
}

pub(crate) fn claim<'a>(e: &'a EventId, owner: &'a str, now_ms: i64) -> Claim<'a> {
    Claim {
        event_id: e,
        channel: Channel::Sms,
        owner,
        correlation_id: Some("reqPortSuite"),
        country: Some("US"),
        destination: Some("dest-hash-1"),
        now_ms,
        lease_ms: 10_000,
        expires_at: now_ms / 1000 + 86_400,
        sends: true,
    }
}

pub(crate) fn receipt(event: &str, delivery: DeliveryVerdict, event_type: &str) -> Receipt {
    Receipt {
        event_id: eid(event),
        message_id: format!("mid-{event}"),
        channel: Channel::Sms,
        delivery,
        event_type: event_type.into(),
        status: Some("status".into()),
        description: Some("what the carrier said".into()),
        mcc: Some("310".into()),
        mnc: Some("260".into()),
        country: Some("US".into()),
        delivery_ms: Some(4200),
        reported_at_ms: 1_700_000_004_200,
    }
}

/// A sent and noted record, as the pipeline leaves it: an MFA code the
/// guard does not judge, unless said otherwise.
async fn sent_and_noted(
    ledger: &dyn Ledger,
    event: &str,
    user: Option<&str>,
    channel: Channel,
    sent_ms: i64,
) -> EventId {
    noted(
        ledger,
        event,
        user,
        channel,
        UseSignal::SignIn,
        false,
        sent_ms,
    )
    .await
}

async fn noted(
    ledger: &dyn Ledger,
    event: &str,
    user: Option<&str>,
    channel: Channel,
    signal: UseSignal,
    guard: bool,
    sent_ms: i64,
) -> EventId {
    use telehook::ledger::SendNote;
    let e = eid(event);
    ledger.claim(&claim(&e, "a", sent_ms)).await.unwrap();
    ledger
        .mark_sent(&telehook::ledger::SendConfirmed {
            event_id: &e,
            message_id: &format!("mid-{event}"),
            route: telehook::domain::Route::Own,
            now_ms: sent_ms,
        })
        .await
        .unwrap();
    ledger
        .note_send(&SendNote {
            event_id: &e,
            user_key: user,
            channel,
            signal: Some(signal),
            guard,
            prefix: "1415555",
            sent_ms,
            otp_expires_ms: sent_ms + 300_000,
        })
        .await
        .unwrap();
    e
}

/// Claims: conditional, one holder at a time, terminal states that stay.
mod claims {
    use super::*;

    /// Claims are conditional: one holder at a time, a lease that runs out,
    /// releases only by the holder, terminal states that stay terminal.
    async fn claims_are_conditional(ledger: &dyn Claims) {
        let e = eid("evt-wire-1");
        let t0 = 1_700_000_000_000;
        assert_eq!(
            ledger.claim(&claim(&e, "a", t0)).await,
            Ok(ClaimOutcome::Claimed { attempts: 1 })
        );
        // A conflicting claim while the lease holds sees the holder's lease.
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
            ledger
                .end_claim(&EndClaim {
                    event_id: &e,
                    owner: "a",
                    end: telehook::ledger::ClaimEnd::Released,
                    reason: "x",
                    now_ms: t0 + 10_001
                })
                .await,
            Err(LedgerError::LostClaim)
        );
        ledger
            .end_claim(&EndClaim {
                event_id: &e,
                owner: "b",
                end: telehook::ledger::ClaimEnd::Released,
                reason: "retryable:ThrottlingException",
                now_ms: t0 + 10_002,
            })
            .await
            .unwrap();
        assert_eq!(
            ledger.claim(&claim(&e, "c", t0 + 10_003)).await,
            Ok(ClaimOutcome::Claimed { attempts: 3 })
        );
        assert_eq!(
            ledger
                .end_claim(&EndClaim {
                    event_id: &e,
                    owner: "b",
                    end: telehook::ledger::ClaimEnd::Failed,
                    reason: "x",
                    now_ms: t0 + 10_004
                })
                .await,
            Err(LedgerError::LostClaim)
        );
        ledger
            .mark_sent(&telehook::ledger::SendConfirmed {
                event_id: &e,
                message_id: "m-1",
                route: telehook::domain::Route::Own,
                now_ms: t0 + 10_005,
            })
            .await
            .unwrap();
        ledger
            .mark_sent(&telehook::ledger::SendConfirmed {
                event_id: &e,
                message_id: "m-2",
                route: telehook::domain::Route::Own,
                now_ms: t0 + 10_006,
            })
            .await
            .unwrap();
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
        assert_eq!(rec.failure, None, "an earlier try's failure is cleared");
        assert_eq!(
            (rec.destination.as_deref(), rec.country.as_deref()),
            (Some("dest-hash-1"), Some("US")),
            "the claim keeps the destination's hash and country"
        );
        assert_eq!(ledger.get(&eid("evt-never")).await.unwrap(), None);

        // Claims that only hand a job over (the ingress with the fast path
        // off, once per duplicate hook) hold the event but are not tries.
        let q = eid("evt-wire-q");
        for (i, owner) in ["q1", "q2", "q3"].into_iter().enumerate() {
            let now = t0 + i as i64 * 100;
            let handover = Claim {
                sends: false,
                ..claim(&q, owner, now)
            };
            assert_eq!(
                ledger.claim(&handover).await,
                Ok(ClaimOutcome::Claimed { attempts: 0 })
            );
            ledger
                .end_claim(&EndClaim {
                    event_id: &q,
                    owner,
                    end: telehook::ledger::ClaimEnd::Released,
                    reason: "queued",
                    now_ms: now + 1,
                })
                .await
                .unwrap();
        }
        assert_eq!(
            ledger.claim(&claim(&q, "dispatcher", t0 + 1_000)).await,
            Ok(ClaimOutcome::Claimed { attempts: 1 }),
            "the first send is the first try"
        );

        // Failed and expired are terminal too.
        let f = eid("evt-wire-f");
        ledger.claim(&claim(&f, "a", t0)).await.unwrap();
        ledger
            .end_claim(&EndClaim {
                event_id: &f,
                owner: "a",
                end: telehook::ledger::ClaimEnd::Failed,
                reason: "permanent:ConflictException",
                now_ms: t0 + 1,
            })
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

        // Blocked (a guard refusal answered so Okta does not fall back) is
        // terminal, only the holder may block, and the record keeps Okta's
        // request id for correlation.
        let b = eid("evt-wire-b");
        ledger.claim(&claim(&b, "a", t0)).await.unwrap();
        assert_eq!(
            ledger
                .end_claim(&EndClaim {
                    event_id: &b,
                    owner: "z",
                    end: telehook::ledger::ClaimEnd::Blocked,
                    reason: "guard:country",
                    now_ms: t0 + 1
                })
                .await,
            Err(LedgerError::LostClaim)
        );
        ledger
            .end_claim(&EndClaim {
                event_id: &b,
                owner: "a",
                end: telehook::ledger::ClaimEnd::Blocked,
                reason: "guard:country",
                now_ms: t0 + 1,
            })
            .await
            .unwrap();
        assert_eq!(
            ledger.claim(&claim(&b, "b", t0 + 99_000_000)).await,
            Ok(ClaimOutcome::AlreadyBlocked {
                reason: Some("guard:country".into())
            })
        );
        let rec = ledger.get(&b).await.unwrap().unwrap();
        assert_eq!(
            (
                rec.status,
                rec.correlation_id.as_deref(),
                rec.country.as_deref()
            ),
            (Status::Blocked, Some("reqPortSuite"), Some("US"))
        );
    }

    async fn concurrent_claims_have_one_winner(ledger: Arc<dyn Claims>) {
        let e = eid("evt-race");
        let owners: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
        let now = 1_700_000_000_000;
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

    async fn behaves(ledger: Arc<dyn Ledger>) {
        claims_are_conditional(ledger.as_ref()).await;
        concurrent_claims_have_one_winner(ledger).await;
    }

    on_every_adapter!(behaves);
}

/// Rate counts: an event counted once per window, the limit exact under a race.
mod rates {
    use super::*;

    fn count(e: &EventId, window: i64) -> RateCount<'_> {
        RateCount {
            scope: "dst",
            key: "5f2c9e",
            window,
            limit: 5,
            event_id: e,
            expires_at: 1_727_400_000,
        }
    }

    /// Twelve at once against a limit of five: exactly five get through. A
    /// counted event is allowed again without counting; a new window starts
    /// from zero.
    async fn rate_counters_count_an_event_once(ledger: Arc<dyn RateCounts>) {
        let ids: Vec<EventId> = (0..12).map(|i| eid(&format!("evt-rate-{i}"))).collect();
        let decisions = futures::future::join_all(ids.iter().map(|e| {
            let ledger = ledger.clone();
            let c = count(e, 2_879_000);
            async move { ledger.count(&c).await.unwrap() }
        }))
        .await;
        let allowed: Vec<&EventId> = ids
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| matches!(d, RateDecision::Allowed { .. }))
            .map(|(e, _)| e)
            .collect();
        assert_eq!(allowed.len(), 5, "{decisions:?}");
        assert!(
            decisions.iter().all(|d| matches!(
                d,
                RateDecision::Allowed { .. } | RateDecision::Refused { count: 5 }
            )),
            "{decisions:?}"
        );
        assert_eq!(
            ledger.count(&count(allowed[0], 2_879_000)).await.unwrap(),
            RateDecision::Allowed { count: 5 }
        );
        assert_eq!(
            ledger.count(&count(&ids[0], 2_879_001)).await.unwrap(),
            RateDecision::Allowed { count: 1 }
        );
    }

    async fn behaves(ledger: Arc<dyn Ledger>) {
        rate_counters_count_an_event_once(ledger).await;
    }

    on_every_adapter!(behaves);
}

/// Receipts: the first final receipt stands, and only one about our message; the one fallback.
mod receipts {
    use super::*;

    /// A receipt lands on an existing record once, whatever its status (a
    /// receipt may beat `mark_sent`, which then keeps it, as does a later
    /// claim); an unknown event gets no record; the first receipt stands.
    async fn receipts_are_recorded_once(ledger: &dyn Ledger) {
        use telehook::ledger::DeliveryRecord;
        let t0 = 1_700_000_000_000;
        let early = receipt("evt-rcpt-1", DeliveryVerdict::Delivered, "TEXT_DELIVERED");
        assert_eq!(
            ledger.record_delivery(&early, t0).await,
            Ok(DeliveryRecorded::UnknownEvent)
        );
        assert_eq!(
            ledger.get(&early.event_id).await,
            Ok(None),
            "nothing created"
        );
        ledger
            .claim(&claim(&early.event_id, "a", t0))
            .await
            .unwrap();
        assert_eq!(
            ledger.record_delivery(&early, t0 + 1).await,
            Ok(DeliveryRecorded::Recorded),
            "before the send is marked"
        );
        ledger
            .mark_sent(&telehook::ledger::SendConfirmed {
                event_id: &early.event_id,
                message_id: "mid-evt-rcpt-1",
                route: telehook::domain::Route::Own,
                now_ms: t0 + 2,
            })
            .await
            .unwrap();
        let late = receipt("evt-rcpt-1", DeliveryVerdict::Undelivered, "TEXT_UNKNOWN");
        assert_eq!(
            ledger.record_delivery(&late, t0 + 3).await,
            Ok(DeliveryRecorded::Duplicate)
        );
        let record = ledger.get(&early.event_id).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Sent);
        assert_eq!(record.message_id.as_deref(), Some("mid-evt-rcpt-1"));
        assert_eq!(record.delivery, Some(DeliveryRecord::from(&early)));
        // Optional fields stay absent when the provider gave none.
        let bare = Receipt {
            status: None,
            description: None,
            mcc: None,
            mnc: None,
            delivery_ms: None,
            ..receipt(
                "evt-rcpt-2",
                DeliveryVerdict::Undelivered,
                "VOICE_NO_ANSWER",
            )
        };
        ledger.claim(&claim(&bare.event_id, "a", t0)).await.unwrap();
        assert_eq!(
            ledger.record_delivery(&bare, t0).await,
            Ok(DeliveryRecorded::Recorded)
        );
        let record = ledger.get(&bare.event_id).await.unwrap().unwrap();
        assert_eq!(record.delivery, Some(DeliveryRecord::from(&bare)));
    }

    /// A receipt about another message than the one the event was sent as
    /// changes nothing.
    async fn receipts_must_name_our_message(ledger: &dyn Ledger) {
        let t0 = 1_700_000_400_000;
        let e = sent_and_noted(ledger, "evt-om-1", Some("uk-om"), Channel::Sms, t0).await;
        let forged = Receipt {
            message_id: "someone-elses".into(),
            ..receipt("evt-om-1", DeliveryVerdict::Undelivered, "TEXT_UNREACHABLE")
        };
        assert_eq!(
            ledger.record_delivery(&forged, t0 + 1).await,
            Ok(DeliveryRecorded::OtherMessage)
        );
        assert_eq!(ledger.get(&e).await.unwrap().unwrap().delivery, None);
        let ours = Receipt {
            message_id: "mid-evt-om-1".into(),
            ..forged
        };
        assert_eq!(
            ledger.record_delivery(&ours, t0 + 2).await,
            Ok(DeliveryRecorded::Recorded)
        );
    }

    async fn behaves(ledger: Arc<dyn Ledger>) {
        receipts_are_recorded_once(ledger.as_ref()).await;
        receipts_must_name_our_message(ledger.as_ref()).await;
    }

    on_every_adapter!(behaves);
}

/// Conversions: each send decided once, matched by its own kind of event.
mod conversions {
    use super::*;

    fn sign_in(user: &str, channel: Option<Channel>, at_ms: i64) -> telehook::ledger::SignIn<'_> {
        telehook::ledger::SignIn {
            user_key: user,
            signal: UseSignal::SignIn,
            channel,
            at_ms,
        }
    }

    /// A sign-in converts the user's latest send on its channel once; a
    /// send whose code expired is not converted but marked unused, once;
    /// an unknown user or channel matches nothing.
    async fn conversions_are_decided_once(ledger: &dyn Ledger) {
        use telehook::domain::Conversion;
        use telehook::ledger::SignInMatch;
        let t0 = 1_700_000_100_000;
        let older = sent_and_noted(ledger, "evt-cv-1", Some("uk1"), Channel::Sms, t0).await;
        let newer = sent_and_noted(ledger, "evt-cv-2", Some("uk1"), Channel::Sms, t0 + 1_000).await;
        sent_and_noted(ledger, "evt-cv-3", None, Channel::Sms, t0).await;
        assert_eq!(
            ledger
                .convert(&sign_in("uk1", Some(Channel::Voice), t0 + 2_000))
                .await,
            Ok(SignInMatch::NoSend)
        );
        assert_eq!(
            ledger
                .convert(&sign_in("uk2", Some(Channel::Sms), t0 + 2_000))
                .await,
            Ok(SignInMatch::NoSend)
        );
        match ledger
            .convert(&sign_in("uk1", Some(Channel::Sms), t0 + 2_000))
            .await
        {
            Ok(SignInMatch::Converted(r)) => {
                assert_eq!(r.event_id, "evt-cv-2");
                assert_eq!(r.message_id.as_deref(), Some("mid-evt-cv-2"));
                assert_eq!(r.prefix.as_deref(), Some("1415555"));
                assert_eq!(r.sent_ms, t0 + 1_000);
                assert_eq!(r.otp_expires_ms, t0 + 301_000);
                assert_eq!(r.channel, Some(Channel::Sms));
                assert_eq!(r.signal, Some(UseSignal::SignIn));
                assert!(!r.guard && !r.was_judged);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ledger
                .convert(&sign_in("uk1", Some(Channel::Sms), t0 + 3_000))
                .await,
            Ok(SignInMatch::AlreadyResolved)
        );
        // Not expired yet: not unused.
        assert_eq!(ledger.mark_unused(&older, t0 + 1_000).await, Ok(None));
        let unused = ledger.mark_unused(&older, t0 + 400_000).await.unwrap();
        assert_eq!(unused.unwrap().message_id.as_deref(), Some("mid-evt-cv-1"));
        assert_eq!(ledger.mark_unused(&older, t0 + 400_001).await, Ok(None));
        assert_eq!(ledger.mark_unused(&newer, t0 + 400_000).await, Ok(None));
        assert_eq!(
            ledger.mark_unused(&eid("evt-cv-none"), t0 + 400_000).await,
            Ok(None)
        );
        let conv = |r: Option<telehook::ledger::LedgerRecord>| {
            r.unwrap().sent.unwrap().conversion.map(|c| c.0)
        };
        assert_eq!(
            conv(ledger.get(&newer).await.unwrap()),
            Some(Conversion::Converted)
        );
        assert_eq!(
            conv(ledger.get(&older).await.unwrap()),
            Some(Conversion::Unused)
        );
        // A sign-in after the latest code expired.
        let late = sent_and_noted(ledger, "evt-cv-4", Some("uk3"), Channel::Voice, t0).await;
        assert_eq!(
            ledger
                .convert(&sign_in("uk3", Some(Channel::Voice), t0 + 300_001))
                .await,
            Ok(SignInMatch::Expired)
        );
        let record = ledger.get(&late).await.unwrap().unwrap();
        assert_eq!(
            record.sent.unwrap().user_channel.as_deref(),
            Some("uk3#mfa#voice")
        );
        // One voice fallback per sent event, none for an unknown one.
        assert_eq!(ledger.claim_fallback(&late, t0 + 10).await, Ok(true));
        assert_eq!(ledger.claim_fallback(&late, t0 + 11).await, Ok(false));
        assert_eq!(
            ledger.claim_fallback(&eid("evt-cv-none"), t0).await,
            Ok(false)
        );
        let record = ledger.get(&late).await.unwrap().unwrap();
        assert_eq!(record.fallback_ms, Some(t0 + 10));
    }

    /// Each kind of code is matched by its own kind of event only; an
    /// event matches only a send made before it; an event that names no
    /// channel takes the latest of either.
    async fn each_kind_is_matched_by_its_own_event(ledger: &dyn Ledger) {
        use telehook::ledger::{SignIn, SignInMatch};
        let t0 = 1_700_000_200_000;
        let user = Some("uk-kinds");
        noted(
            ledger,
            "evt-k-mfa",
            user,
            Channel::Sms,
            UseSignal::SignIn,
            false,
            t0,
        )
        .await;
        noted(
            ledger,
            "evt-k-enrol-sms",
            user,
            Channel::Sms,
            UseSignal::Enrollment,
            true,
            t0,
        )
        .await;
        noted(
            ledger,
            "evt-k-enrol-voice",
            user,
            Channel::Voice,
            UseSignal::Enrollment,
            true,
            t0 + 1_000,
        )
        .await;
        let later = noted(
            ledger,
            "evt-k-reset",
            user,
            Channel::Sms,
            UseSignal::PasswordReset,
            false,
            t0 + 60_000,
        )
        .await;
        let event = |signal, channel, at_ms| SignIn {
            user_key: "uk-kinds",
            signal,
            channel,
            at_ms,
        };
        // An unlock code was never sent: an unlock matches nothing, even
        // with other kinds pending.
        assert_eq!(
            ledger
                .convert(&event(UseSignal::Unlock, None, t0 + 2_000))
                .await,
            Ok(SignInMatch::NoSend)
        );
        // A reset published before the reset code was sent is not its use
        // (a replay of an older event must not take a newer code).
        assert_eq!(
            ledger
                .convert(&event(UseSignal::PasswordReset, None, t0 + 59_999))
                .await,
            Ok(SignInMatch::NoSend)
        );
        // Identity Engine's "Phone": the latest enrollment code of either
        // channel.
        match ledger
            .convert(&event(UseSignal::Enrollment, None, t0 + 2_000))
            .await
        {
            Ok(SignInMatch::Converted(r)) => {
                assert_eq!(r.event_id, "evt-k-enrol-voice");
                assert_eq!(r.signal, Some(UseSignal::Enrollment));
                assert!(r.guard);
            }
            other => panic!("{other:?}"),
        }
        // The MFA code is still open: the enrollment did not take it.
        match ledger
            .convert(&event(UseSignal::SignIn, Some(Channel::Sms), t0 + 3_000))
            .await
        {
            Ok(SignInMatch::Converted(r)) => assert_eq!(r.event_id, "evt-k-mfa"),
            other => panic!("{other:?}"),
        }
        match ledger
            .convert(&event(UseSignal::PasswordReset, None, t0 + 70_000))
            .await
        {
            Ok(SignInMatch::Converted(r)) => assert_eq!(r.event_id, later.as_str()),
            other => panic!("{other:?}"),
        }
    }

    /// The guard judges a pending code it counts once, and never one it
    /// does not count; a judged code can still be used, and says it was
    /// judged; Okta's events are seen once by uuid.
    async fn judging_leaves_the_code_open(ledger: &dyn Ledger) {
        use telehook::domain::Conversion;
        use telehook::ledger::{SignIn, SignInMatch};
        let t0 = 1_700_000_300_000;
        let judged = noted(
            ledger,
            "evt-j-1",
            Some("uk-j"),
            Channel::Sms,
            UseSignal::Enrollment,
            true,
            t0,
        )
        .await;
        let not_counted = noted(
            ledger,
            "evt-j-2",
            Some("uk-j2"),
            Channel::Sms,
            UseSignal::PasswordReset,
            false,
            t0,
        )
        .await;
        assert_eq!(ledger.judge(&not_counted, t0 + 60_000).await, Ok(None));
        let first = ledger.judge(&judged, t0 + 60_000).await.unwrap().unwrap();
        assert_eq!(first.event_id, "evt-j-1");
        assert!(first.guard && !first.was_judged);
        assert_eq!(ledger.judge(&judged, t0 + 61_000).await, Ok(None), "once");
        assert_eq!(ledger.judge(&eid("evt-j-none"), t0).await, Ok(None));
        let record = ledger.get(&judged).await.unwrap().unwrap();
        let sent = record.sent.unwrap();
        assert_eq!(sent.judged_ms, Some(t0 + 60_000));
        assert_eq!(sent.conversion, None, "judging decides nothing");
        match ledger
            .convert(&SignIn {
                user_key: "uk-j",
                signal: UseSignal::Enrollment,
                channel: Some(Channel::Sms),
                at_ms: t0 + 90_000,
            })
            .await
        {
            Ok(SignInMatch::Converted(r)) => assert!(r.was_judged),
            other => panic!("{other:?}"),
        }
        let record = ledger.get(&judged).await.unwrap().unwrap();
        assert_eq!(
            record.sent.unwrap().conversion.map(|c| c.0),
            Some(Conversion::Converted)
        );
        // A used code is not judged afterwards.
        assert_eq!(ledger.judge(&judged, t0 + 120_000).await, Ok(None));
        assert_eq!(ledger.first_sight("uuid-1", 1_900_000_000).await, Ok(true));
        assert_eq!(ledger.first_sight("uuid-1", 1_900_000_000).await, Ok(false));
        assert_eq!(ledger.first_sight("uuid-2", 1_900_000_000).await, Ok(true));
    }

    async fn behaves(ledger: Arc<dyn Ledger>) {
        conversions_are_decided_once(ledger.as_ref()).await;
        each_kind_is_matched_by_its_own_event(ledger.as_ref()).await;
        judging_leaves_the_code_open(ledger.as_ref()).await;
    }

    on_every_adapter!(behaves);
}

/// The guard's book: counts per window, blocks learning may or may not replace.
mod guard {
    use super::*;

    /// Counts add up per window; a learned block does not replace a pin,
    /// an allow or an unexpired lift, and replaces an expired block.
    async fn guard_counts_and_blocks(ledger: &dyn GuardBook) {
        use telehook::ledger::{BlockKind, GuardBlock, StatBump, StatCounts};
        let bump = |judged, conversions, window| StatBump {
            scope: "pfx",
            key: "6281234",
            window,
            judged,
            conversions,
            expires_at: 1_900_000_000,
        };
        ledger.bump(&bump(1, 0, 7)).await.unwrap();
        assert_eq!(
            ledger.bump(&bump(1, 1, 7)).await,
            Ok(StatCounts {
                judged: 2,
                conversions: 1
            })
        );
        assert_eq!(
            ledger.bump(&bump(1, 0, 8)).await,
            Ok(StatCounts {
                judged: 1,
                conversions: 0
            })
        );
        let block = |scope: &str, key: &str, kind, until_ms| GuardBlock {
            scope: scope.to_owned(),
            key: key.to_owned(),
            kind,
            until_ms,
            reason: "0 of 25 codes used".to_owned(),
            judged: 25,
            conversions: 0,
            since_ms: 1_000,
        };
        let learned = block("pfx", "6281234", BlockKind::Learned, Some(5_000));
        assert_eq!(ledger.learn_block(&learned, 1_000).await, Ok(true));
        assert_eq!(
            ledger
                .learn_block(
                    &block("pfx", "6281234", BlockKind::Learned, Some(9_000)),
                    2_000
                )
                .await,
            Ok(false),
            "a live block stands"
        );
        assert_eq!(
            ledger
                .learn_block(
                    &block("pfx", "6281234", BlockKind::Learned, Some(9_000)),
                    5_000
                )
                .await,
            Ok(true),
            "an expired one is replaced"
        );
        ledger
            .set_block(&block("cty", "ID", BlockKind::Pinned, None))
            .await
            .unwrap();
        ledger
            .set_block(&block("pfx", "1415555", BlockKind::Allowed, None))
            .await
            .unwrap();
        ledger
            .set_block(&block("pfx", "4477009", BlockKind::Lifted, Some(8_000)))
            .await
            .unwrap();
        for (scope, key) in [("cty", "ID"), ("pfx", "1415555"), ("pfx", "4477009")] {
            assert_eq!(
                ledger
                    .learn_block(&block(scope, key, BlockKind::Learned, Some(99_000)), 7_000)
                    .await,
                Ok(false),
                "{scope} {key}"
            );
        }
        assert_eq!(
            ledger
                .learn_block(
                    &block("pfx", "4477009", BlockKind::Learned, Some(99_000)),
                    8_000
                )
                .await,
            Ok(true),
            "a lift holds off learning until it ends"
        );
        let found = ledger
            .blocks(&[("pfx", "6281234"), ("cty", "ID"), ("cty", "NONE")])
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|b| b.blocks(6_000)));
        let all = ledger.list_blocks().await.unwrap();
        let keys: Vec<(&str, &str, BlockKind)> = all
            .iter()
            .map(|b| (b.scope.as_str(), b.key.as_str(), b.kind))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("cty", "ID", BlockKind::Pinned),
                ("pfx", "1415555", BlockKind::Allowed),
                ("pfx", "4477009", BlockKind::Learned),
                ("pfx", "6281234", BlockKind::Learned),
            ]
        );
        assert_eq!(
            all[3],
            block("pfx", "6281234", BlockKind::Learned, Some(9_000))
        );
    }

    async fn behaves(ledger: Arc<dyn Ledger>) {
        guard_counts_and_blocks(ledger.as_ref()).await;
    }

    on_every_adapter!(behaves);
}

/// Resends: the last send to a person is remembered and replaced.
mod resends {
    use super::*;
    use telehook::domain::Route;
    use telehook::ledger::{LastSend, Resends};

    async fn the_last_send_is_remembered(ledger: &dyn Resends) {
        assert_eq!(ledger.last_send("person-1").await, Ok(None));
        let first = LastSend {
            event_id: "evt-l1".into(),
            route: Route::Own,
            sent_ms: 1_700_000_000_000,
        };
        ledger
            .note_last_send("person-1", &first, 1_700_000_400)
            .await
            .unwrap();
        assert_eq!(ledger.last_send("person-1").await, Ok(Some(first)));
        let second = LastSend {
            event_id: "evt-l2".into(),
            route: Route::Notify,
            sent_ms: 1_700_000_030_000,
        };
        ledger
            .note_last_send("person-1", &second, 1_700_000_430)
            .await
            .unwrap();
        assert_eq!(ledger.last_send("person-1").await, Ok(Some(second)));
        assert_eq!(ledger.last_send("person-2").await, Ok(None));
    }

    async fn behaves(ledger: Arc<dyn Ledger>) {
        the_last_send_is_remembered(ledger.as_ref()).await;
    }

    on_every_adapter!(behaves);
}

/// What only the SQLite file adds: it outlives the process, and two
/// handles on one file (two processes: `serve`, and `guard` beside it)
/// share one set of conditions.
mod sqlite_file {
    use super::*;
    use telehook::ledger::{BlockKind, GuardBlock, SendConfirmed};

    #[tokio::test]
    async fn a_reopened_file_keeps_sends_and_pins() {
        let file = sqlite_file();
        let e = eid("evt-restart");
        {
            let ledger = SqliteLedger::open(&file, 0).unwrap();
            ledger.claim(&claim(&e, "a", 1_000)).await.unwrap();
            let sent = SendConfirmed {
                event_id: &e,
                message_id: "mid-restart",
                route: telehook::domain::Route::Own,
                now_ms: 1_100,
            };
            ledger.mark_sent(&sent).await.unwrap();
        }
        let again = SqliteLedger::open(&file, 2).unwrap();
        assert_eq!(
            again.claim(&claim(&e, "b", 2_000)).await.unwrap(),
            ClaimOutcome::AlreadySent {
                message_id: Some("mid-restart".into())
            }
        );
        // A pin written through one handle is read through another at once.
        let pin = GuardBlock {
            scope: "pfx".into(),
            key: "1650555".into(),
            kind: BlockKind::Pinned,
            until_ms: None,
            reason: "pinned by an operator".into(),
            judged: 0,
            conversions: 0,
            since_ms: 2_000,
        };
        SqliteLedger::open(&file, 2)
            .unwrap()
            .set_block(&pin)
            .await
            .unwrap();
        assert_eq!(again.blocks(&[("pfx", "1650555")]).await, Ok(vec![pin]));
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_handles_racing_for_one_claim_give_it_once() {
        let file = sqlite_file();
        let handles: Vec<Arc<SqliteLedger>> = (0..4)
            .map(|_| Arc::new(SqliteLedger::open(&file, 0).unwrap()))
            .collect();
        for round in 0..25 {
            let e = eid(&format!("evt-race-{round}"));
            let tries = handles.iter().enumerate().map(|(i, l)| {
                let (l, e) = (l.clone(), e.clone());
                tokio::spawn(async move {
                    let owner = format!("owner-{i}");
                    l.claim(&claim(&e, &owner, 5_000)).await.unwrap()
                })
            });
            let outcomes = futures::future::join_all(tries).await;
            let claimed = outcomes
                .into_iter()
                .filter(|o| matches!(o.as_ref().unwrap(), ClaimOutcome::Claimed { .. }))
                .count();
            assert_eq!(claimed, 1, "round {round}");
        }
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }
}
