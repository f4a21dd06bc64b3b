//! An SMS-pumping run of 10,000 hooks against the ingress flow with the
//! default guard: sequential premium-rate numbers, numbers in countries off
//! the allow-list, bursts to one destination and from one user, and real
//! traffic mixed in. Nothing may be sent outside the allow-list or past a
//! limit, every refusal must be counted, and neither the metrics nor the
//! logs may hold a code or a full number. Alone in its binary because it
//! captures the logs.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use crate::support::LogCapture;
use crate::support::flow::*;
use serde_json::Value;
use telehook::clock::Clock;
use telehook::domain::DeliveryOutcome;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::domain::{DeliveryRequest, EventId, RequestType};
use telehook::flows::guard::GuardSettings;
use telehook::telemetry::metrics::Metrics;
use telehook::testkit::MemorySink;
use tokio::time::Instant;

/// Ten digits: the longest code, and one a digit-run scan can find.
const CODE: &str = "8675309412";

fn hook(h: &Harness, i: usize, phone: &str, user: &str, channel: Channel) -> DeliveryRequest {
    DeliveryRequest {
        event_id: EventId::parse(&format!("pump-{i:05}")).unwrap(),
        request_type: RequestType::MfaVerification,
        phone: PhoneNumber::parse(phone, "US".parse().unwrap()).unwrap(),
        otp: Otp::parse(CODE).unwrap(),
        otp_expires: h.clock.now() + chrono::Duration::minutes(5),
        channel,
        locale: Locale::parse("en").unwrap(),
        locale_from_request: true,
        user_id: Some(user.into()),
        context: Default::default(),
    }
}

/// The longest run of ASCII digits in `text`.
fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_pumping_run_is_contained_and_counted() {
    let Some(capture) =
        LogCapture::isolated(crate::test_path!("a_pumping_run_is_contained_and_counted"))
    else {
        return;
    };
    let sink = Arc::new(MemorySink::default());
    let mut h = harness(true);
    h.pipeline.settings.guard = GuardSettings::default();
    h.pipeline.settings.metrics = Metrics::new(sink.clone());

    // (phone, user, channel) for each of 10,000 hooks.
    let mut plan: Vec<(String, String, Channel)> = Vec::new();
    for i in 0..3000 {
        // Sequential US premium-rate numbers (900 area code).
        plan.push((
            format!("+1900200{i:04}"),
            format!("00upremium{i:05}"),
            Channel::Sms,
        ));
    }
    for i in 0..3000 {
        // Sequential numbers in countries off the default allow-list.
        let phone = match i % 3 {
            0 => format!("+447700{:06}", 900_000 + i),
            1 => format!("+23480{:08}", 31_000_000 + i),
            _ => format!("+7912{:07}", 1_000_000 + i),
        };
        plan.push((
            phone,
            format!("00uabroad{i:05}"),
            if i % 2 == 0 {
                Channel::Sms
            } else {
                Channel::Voice
            },
        ));
    }
    for i in 0..2000 {
        // A burst to one destination, from 200 users.
        plan.push((
            "+14155552671".into(),
            format!("00uburst{:03}", i % 200),
            Channel::Sms,
        ));
    }
    for i in 0..1000 {
        // A burst from one user, to distinct US numbers.
        plan.push((
            format!("+1646555{i:04}"),
            "00uonefraudster".into(),
            Channel::Sms,
        ));
    }
    for i in 0..1000 {
        // Real traffic: distinct users and numbers in the US and Canada.
        let phone = if i % 2 == 0 {
            format!("+1650555{i:04}")
        } else {
            format!("+1416555{i:04}")
        };
        plan.push((phone, format!("00ureal{i:05}"), Channel::Sms));
    }
    assert_eq!(plan.len(), 10_000);

    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    let mut real_successes = 0;
    for (i, (phone, user, channel)) in plan.iter().enumerate() {
        let req = hook(&h, i, phone, user, *channel);
        let out = h.pipeline.handle_hook(req, Instant::now()).await;
        let status = out.status().as_str();
        *outcomes.entry(status).or_default() += 1;
        if i >= 9000 && matches!(out, DeliveryOutcome::Successful { .. }) {
            real_successes += 1;
        }
    }
    // Replays of hooks already seen never count twice: the same event ids
    // again change nothing.
    for (i, (phone, user, channel)) in plan.iter().enumerate().skip(9000).take(10) {
        let out = h
            .pipeline
            .handle_hook(hook(&h, i, phone, user, *channel), Instant::now())
            .await;
        assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
    }

    let sent = h.messenger.accepted();
    // Nothing outside the allow-list, nothing premium-rate.
    for m in &sent {
        let region = m.to.region().map(|r| r.as_str().to_owned());
        assert!(
            matches!(region.as_deref(), Some("US") | Some("CA")),
            "sent to {region:?}"
        );
        assert!(
            !m.to.e164().starts_with("+1900"),
            "premium-rate number reached"
        );
    }
    // No destination and no user past its limit.
    let mut per_destination: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        *per_destination.entry(m.to.e164().to_owned()).or_default() += 1;
    }
    assert!(
        per_destination.values().all(|&n| n <= 5),
        "a destination got more than 5"
    );
    assert_eq!(per_destination["+14155552671"], 5);
    let burst_user_sends = sent
        .iter()
        .filter(|m| m.to.e164().starts_with("+1646555"))
        .count();
    assert_eq!(burst_user_sends, 10, "one user gets 10 an hour");
    assert_eq!(real_successes, 1000, "real traffic is not refused");

    // Every refusal is counted, and the counts add up.
    let docs: Vec<Value> = sink
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sum = |metric: &str, outcome: Option<&str>| -> usize {
        docs.iter()
            .filter(|d| d.get(metric).is_some() && outcome.is_none_or(|o| d["outcome"] == o))
            .map(|d| d[metric].as_f64().unwrap() as usize)
            .sum()
    };
    let refused = sum("Refused", None);
    assert_eq!(sum("HooksReceived", None), 10_010);
    assert_eq!(sum("Refused", Some("COUNTRY")), 3000);
    assert_eq!(sum("Refused", Some("NUMBER_TYPE")), 3000);
    assert_eq!(sum("Refused", Some("RATE")), (2000 - 5) + (1000 - 10));
    assert_eq!(
        refused, outcomes["FAILED"],
        "every FAILED answer here is a counted refusal"
    );
    assert_eq!(sum("HookAnswers", Some("FAILED")), refused);
    assert_eq!(sum("HookAnswers", Some("SUCCESSFUL")), sent.len() + 10);
    assert_eq!(sum("HooksAnswered", None), 10_010);

    // No code and no full number in any metric line or log line.
    for line in sink.lines() {
        // EMF's own millisecond timestamp is the one long number allowed.
        let mut doc: Value = serde_json::from_str(&line).unwrap();
        doc["_aws"]["Timestamp"] = Value::Null;
        let text = doc.to_string();
        assert!(
            longest_digit_run(&text) < 10 && !text.contains(CODE),
            "{line}"
        );
    }
    let logs = capture.text();
    assert!(
        logs.contains("refused by the toll-fraud guard"),
        "the capture holds the run"
    );
    for line in logs.lines() {
        assert!(
            longest_digit_run(line) < 10,
            "a code or a full number reached the logs: {line}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn fixed_lines_get_no_sms_but_may_get_a_call() {
    let mut h = harness(true);
    h.pipeline.settings.guard = GuardSettings {
        countries: telehook::flows::guard::AllowedCountries::parse("GB").unwrap(),
        ..GuardSettings::default()
    };
    let london_landline = "+442079460000";
    let sms = h
        .pipeline
        .handle_hook(
            hook(&h, 1, london_landline, "u1", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(sms, DeliveryOutcome::Failed { .. }), "{sms:?}");
    let call = h
        .pipeline
        .handle_hook(
            hook(&h, 2, london_landline, "u1", Channel::Voice),
            Instant::now(),
        )
        .await;
    assert!(
        matches!(call, DeliveryOutcome::Successful { .. }),
        "{call:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_orgs_ceiling_holds_when_every_code_looks_different() {
    // A run spread so thin that no number, user or country limit sees it:
    // only the ceiling over all codes stands between it and the bill.
    let mut h = harness(true);
    h.pipeline.settings.guard = GuardSettings {
        total: Some(telehook::flows::guard::RateLimit {
            max: 50,
            window: std::time::Duration::from_secs(3600),
        }),
        ..GuardSettings::default()
    };
    // Codes another limit refuses do not use up the ceiling: ten to one
    // number, five of them refused per destination.
    for i in 0..10 {
        let user = format!("00urepeat{i}");
        h.pipeline
            .handle_hook(
                hook(&h, i, "+14155552671", &user, Channel::Sms),
                Instant::now(),
            )
            .await;
    }
    assert_eq!(h.messenger.accepted().len(), 5);
    let mut refused = Vec::new();
    for i in 10..210 {
        let phone = format!("+1650555{i:04}");
        let user = format!("00uthin{i:05}");
        let out = h
            .pipeline
            .handle_hook(hook(&h, i, &phone, &user, Channel::Sms), Instant::now())
            .await;
        if let DeliveryOutcome::Failed { cause, .. } = &out {
            refused.push(cause.reason);
        }
    }
    assert_eq!(h.messenger.accepted().len(), 50, "the ceiling is exact");
    assert_eq!(refused.len(), 155);
    assert!(refused.iter().all(|r| *r == "RATE_LIMITED"), "{refused:?}");
    // The next window opens again.
    h.clock.advance(chrono::Duration::hours(1));
    let out = h
        .pipeline
        .handle_hook(
            hook(&h, 999, "+16505559999", "00unextwindow", Channel::Sms),
            Instant::now(),
        )
        .await;
    assert!(matches!(out, DeliveryOutcome::Successful { .. }), "{out:?}");
}
