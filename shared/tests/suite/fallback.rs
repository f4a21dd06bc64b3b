//! The voice fallback over the in-memory adapters: a landline gets a call
//! instead of an SMS; an SMS reported unreachable within the window gets
//! one call with the same code while it is still valid; anything else gets
//! none. Off by default.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use telehook::clock::Clock;
use telehook::domain::channel::Channel;
use telehook::domain::{DeliveryOutcome, DeliveryVerdict};
use telehook::flows::conversion::run_due_checks;
use telehook::flows::guard::{AllowedCountries, GuardSettings};
use telehook::flows::{Pipeline, PipelineSettings};
use telehook::testkit::ManualClock;
use tokio::time::Instant;

use crate::ports::ledger::receipt;
use crate::support::LogCapture;
use crate::support::flow::*;
use telehook::testkit::redaction::contains_standalone;

/// A pipeline with the fallback on (a 60-second window), any country.
fn with_fallback(on: bool) -> Harness {
    let h = harness_guarded(
        Arc::new(ManualClock::at_hour_start()),
        true,
        None,
        None,
        GuardSettings {
            countries: AllowedCountries::All,
            ..GuardSettings::default()
        },
    );
    let mut settings: PipelineSettings = h.pipeline.settings.clone();
    settings.voice_fallback = on.then_some(Duration::from_secs(60));
    let pipeline = Pipeline::builder(h.ledger.clone(), h.queue.clone(), h.messenger.clone())
        .clock(h.clock.clone())
        .settings(settings)
        .build();
    Harness { pipeline, ..h }
}

/// A London fixed line (Ofcom's range for drama), which cannot take an SMS.
const LANDLINE: &str = "+442079460958";

#[tokio::test(start_paused = true)]
async fn a_landline_gets_a_call_instead_of_an_sms_only_with_the_fallback_on() {
    let h = with_fallback(true);
    let out = h
        .pipeline
        .handle_hook(
            request(&h, "evt-fb-land", LANDLINE, Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    let sent = h.messenger.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].rendered.channel, Channel::Voice);
    assert_eq!(h.record("evt-fb-land").await.channel, Some(Channel::Voice));

    let off = with_fallback(false);
    let out = off
        .pipeline
        .handle_hook(
            request(&off, "evt-fb-land", LANDLINE, Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(
        matches!(out, DeliveryOutcome::Failed { .. }),
        "refused: {out:?}"
    );
    assert!(off.messenger.accepted().is_empty());
}

async fn sms(h: &Harness, event: &str) {
    let out = h
        .pipeline
        .handle_hook(
            request(h, event, "+14155552671", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
}

/// The provider's final receipt about the message the event was sent as.
async fn bounce(h: &Harness, event: &str, event_type: &str, delivery: DeliveryVerdict) {
    let message_id = h.record(event).await.message_id.unwrap();
    let r = telehook::domain::Receipt {
        message_id,
        ..receipt(event, delivery, event_type)
    };
    h.ledger
        .record_delivery(&r, h.clock.now_ms())
        .await
        .unwrap();
}

/// A receipt that names the event but another message (forged, or about
/// another send) triggers no call.
#[tokio::test(start_paused = true)]
async fn a_receipt_about_another_message_rings_nobody() {
    let h = with_fallback(true);
    sms(&h, "evt-fb-forged").await;
    let forged = receipt(
        "evt-fb-forged",
        DeliveryVerdict::Undelivered,
        "TEXT_UNREACHABLE",
    );
    assert_eq!(
        h.ledger.record_delivery(&forged, h.clock.now_ms()).await,
        Ok(telehook::ledger::DeliveryRecorded::OtherMessage)
    );
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    assert_eq!(h.messenger.accepted().len(), 1, "no call");
}

/// A fallback call goes through the guard again: a range pinned since the
/// SMS gets no call, and one number gets at most three calls an hour.
#[tokio::test(start_paused = true)]
async fn a_fallback_call_is_checked_by_the_guard() {
    use telehook::flows::conversion::{CheckOutcome, check_due};
    use telehook::flows::fallback::{CALLS_PER_DESTINATION, FallbackOutcome};
    use telehook::flows::guard::Learning;
    use telehook::ledger::{BlockKind, GuardBlock};
    let mut h = with_fallback(true);
    h.pipeline.settings.guard.learning = Learning::on();
    // Pinned after the SMS went out.
    sms(&h, "evt-fb-pin").await;
    bounce(
        &h,
        "evt-fb-pin",
        "TEXT_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    h.ledger
        .set_block(&GuardBlock {
            scope: "pfx".into(),
            key: "1415555".into(),
            kind: BlockKind::Pinned,
            until_ms: None,
            reason: "fraud report".into(),
            judged: 0,
            conversions: 0,
            since_ms: h.clock.now_ms(),
        })
        .await
        .unwrap();
    h.clock.advance(chrono::Duration::seconds(61));
    run_due_checks(&h.pipeline).await;
    assert_eq!(h.messenger.accepted().len(), 1, "no call to a pinned range");
    assert_eq!(h.record("evt-fb-pin").await.fallback_ms, None);

    // Many bounced SMS to one number: three calls, then no more.
    let mut outcomes = Vec::new();
    for i in 0..5 {
        let event = format!("evt-fb-many-{i}");
        let req = request(&h, &event, "+16505550123", Channel::Sms);
        let job = telehook::domain::Job::from_request(
            &req,
            telehook::crypto::keyed(&h.pipeline.settings.hash_key),
        );
        h.pipeline.handle_hook(req, Instant::now()).await;
        bounce(&h, &event, "TEXT_UNREACHABLE", DeliveryVerdict::Undelivered).await;
        let check = telehook::timers::Check::Fallback(telehook::timers::FallbackCheck {
            v: 1,
            event_id: event.clone(),
            due_ms: h.clock.now_ms(),
            job: job.encode(),
        });
        outcomes.push(check_due(&h.pipeline, &check.encode()).await.unwrap());
    }
    let called = outcomes
        .iter()
        .filter(|o| **o == CheckOutcome::Fallback(FallbackOutcome::Called))
        .count();
    assert_eq!(called, CALLS_PER_DESTINATION as usize, "{outcomes:?}");
    assert_eq!(
        outcomes.last(),
        Some(&CheckOutcome::Fallback(FallbackOutcome::Refused))
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_sms_gets_one_call_with_the_same_code() {
    let h = with_fallback(true);
    sms(&h, "evt-fb-1").await;
    h.clock.advance(chrono::Duration::seconds(5));
    bounce(
        &h,
        "evt-fb-1",
        "TEXT_CARRIER_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    // Not before the window ends.
    assert_eq!(run_due_checks(&h.pipeline).await, 0);
    h.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    let sent = h.messenger.accepted();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].rendered.channel, Channel::Voice);
    assert_eq!(sent[1].event_id, sent[0].event_id);
    // The same code, read out digit by digit (the SSML tags left out).
    let mut spoken = String::new();
    let mut in_tag = false;
    for c in sent[1].rendered.body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && c.is_ascii_digit() => spoken.push(c),
            _ => {}
        }
    }
    assert!(spoken.contains(OTP), "{}", sent[1].rendered.body);
    assert!(h.record("evt-fb-1").await.fallback_ms.is_some());
    // At most once: the same check again (SQS delivers at least once).
    let job = telehook::domain::Job::from_request(
        &request(&h, "evt-fb-1", "+14155552671", Channel::Sms),
        telehook::crypto::keyed(&h.pipeline.settings.hash_key),
    );
    let again = telehook::timers::Check::Fallback(telehook::timers::FallbackCheck {
        v: 1,
        event_id: "evt-fb-1".into(),
        due_ms: h.clock.now_ms(),
        job: job.encode(),
    });
    telehook::flows::conversion::check_due(&h.pipeline, &again.encode())
        .await
        .unwrap();
    assert_eq!(h.messenger.accepted().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn no_call_for_a_delivered_blocked_late_or_nearly_expired_sms() {
    let h = with_fallback(true);
    // Delivered; blocked (not a reachability problem); no receipt in time.
    sms(&h, "evt-fb-ok").await;
    bounce(
        &h,
        "evt-fb-ok",
        "TEXT_DELIVERED",
        DeliveryVerdict::Delivered,
    )
    .await;
    sms(&h, "evt-fb-blocked").await;
    bounce(
        &h,
        "evt-fb-blocked",
        "TEXT_BLOCKED",
        DeliveryVerdict::Undelivered,
    )
    .await;
    sms(&h, "evt-fb-late").await;
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(run_due_checks(&h.pipeline).await, 3);
    bounce(
        &h,
        "evt-fb-late",
        "TEXT_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    assert_eq!(run_due_checks(&h.pipeline).await, 0);
    // Unreachable, but the code has less than half a minute left.
    let mut req = request(&h, "evt-fb-short", "+14155552671", Channel::Sms);
    req.otp_expires = h.clock.now() + chrono::Duration::seconds(80);
    h.pipeline.handle_hook(req, Instant::now()).await;
    bounce(
        &h,
        "evt-fb-short",
        "TEXT_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    assert!(
        h.messenger
            .accepted()
            .iter()
            .all(|m| m.rendered.channel == Channel::Sms),
        "no call"
    );
}

#[tokio::test(start_paused = true)]
async fn off_by_default_and_the_logs_hold_no_code() {
    let Some(capture) = LogCapture::isolated(crate::test_path!(
        "off_by_default_and_the_logs_hold_no_code"
    )) else {
        return;
    };
    let plain = harness(true);
    sms(&plain, "evt-fb-off").await;
    bounce(
        &plain,
        "evt-fb-off",
        "TEXT_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    plain.clock.advance(chrono::Duration::seconds(120));
    assert_eq!(
        run_due_checks(&plain.pipeline).await,
        0,
        "nothing scheduled"
    );

    let h = with_fallback(true);
    sms(&h, "evt-fb-log").await;
    bounce(
        &h,
        "evt-fb-log",
        "TEXT_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    h.clock.advance(chrono::Duration::seconds(61));
    run_due_checks(&h.pipeline).await;
    let text = capture.text();
    assert!(text.contains("the code was called in instead"), "{text}");
    for secret in [OTP, "4155552671"] {
        assert!(
            !contains_standalone(&text, secret),
            "the logs hold {secret}"
        );
    }
}

/// The call is checked against the allow-list again: a country taken off
/// it after the SMS went out gets no call.
#[tokio::test(start_paused = true)]
async fn a_fallback_call_to_a_country_no_longer_allowed_is_refused() {
    let mut h = with_fallback(true);
    sms(&h, "evt-fb-country").await;
    bounce(
        &h,
        "evt-fb-country",
        "TEXT_UNREACHABLE",
        DeliveryVerdict::Undelivered,
    )
    .await;
    h.pipeline.settings.guard.countries = AllowedCountries::Only(["CA"].map(str::to_owned).into());
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(run_due_checks(&h.pipeline).await, 1);
    assert_eq!(h.messenger.accepted().len(), 1, "no call");
    assert_eq!(h.record("evt-fb-country").await.fallback_ms, None);
}
