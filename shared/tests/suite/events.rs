//! Runs every `events/ingress-*.json` file through the ingress handler and
//! checks its expected outcome, while capturing all tracing output to prove
//! that no OTP, bearer token or full phone number reaches the logs.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::support::*;
use base64::Engine;
use serde_json::Value;
use telehook::api::{IngressDeps, telehook};
use telehook::domain::channel::Channel;
use telehook::testkit::RecordingDelivery;
use telehook::testkit::redaction::{contains_standalone, unmistakable_code, with_code};

enum Expect {
    /// SUCCESSFUL, delivered as (channel, locale, E.164).
    Delivered(Channel, &'static str, &'static str),
    /// HTTP 200 with Okta's error object naming this location and reason.
    Refused(&'static str, &'static str),
    Unauthorized,
    /// Okta's event hook: the verification echoed back.
    Verified(&'static str),
    /// Okta's event hook: a batch with this many uses of a code, this many
    /// other events, and this many failed telephony hook calls.
    SignIns(usize, usize, usize),
}

fn expectations() -> BTreeMap<&'static str, Expect> {
    use Expect::*;
    BTreeMap::from([
        (
            "ingress-sms.json",
            Delivered(Channel::Sms, "en-US", "+14155552671"),
        ),
        (
            "ingress-voice.json",
            Delivered(Channel::Voice, "es-MX", "+16135550147"),
        ),
        (
            "ingress-preview.json",
            Delivered(Channel::Sms, "en", "+19876543210"),
        ),
        (
            "ingress-pre-enrollment.json",
            Delivered(Channel::Voice, "fr-CA", "+16475550192"),
        ),
        (
            "ingress-account-unlock.json",
            Delivered(Channel::Voice, "en", "+12125550178"),
        ),
        (
            "ingress-password-reset.json",
            Delivered(Channel::Sms, "de", "+13035550136"),
        ),
        (
            "ingress-base64-body.json",
            Delivered(Channel::Voice, "ja", "+14165550163"),
        ),
        (
            "ingress-malformed-json.json",
            Refused("body", "MALFORMED_JSON"),
        ),
        (
            "ingress-wrong-event-type.json",
            Refused("eventType", "INVALID_VALUE"),
        ),
        (
            "ingress-bad-phone.json",
            Refused("data.messageProfile.phoneNumber", "INVALID_VALUE"),
        ),
        (
            "ingress-non-digit-otp.json",
            Refused("data.messageProfile.otpCode", "INVALID_VALUE"),
        ),
        (
            "ingress-missing-message-profile.json",
            Refused("data.messageProfile", "MISSING_FIELD"),
        ),
        (
            "ingress-oversized-body.json",
            Refused("body", "BODY_TOO_LARGE"),
        ),
        ("ingress-missing-token.json", Unauthorized),
        (
            "ingress-event-hook-verification.json",
            Verified("Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg"),
        ),
        ("ingress-event-hook-sign-ins.json", SignIns(2, 2, 0)),
        // Every kind of code used, Okta's record of a failed hook call,
        // and a sign-in without a phone: over 8 KB, as real batches are.
        ("ingress-event-hook-batch.json", SignIns(6, 1, 1)),
        // Bodies shaped like those real orgs, Okta's docs and its Preview
        // tab send (docs/how-it-works.md, "What Okta may send").
        (
            "ingress-typed-envelope.json",
            Delivered(Channel::Sms, "en-US", "+14155552672"),
        ),
        (
            "ingress-numeric-user-id.json",
            Delivered(Channel::Sms, "en-US", "+14155552673"),
        ),
        (
            "ingress-missing-request-type.json",
            Delivered(Channel::Sms, "en-US", "+14155552674"),
        ),
        (
            "ingress-missing-otp-expires.json",
            Delivered(Channel::Sms, "en-US", "+14155552675"),
        ),
        (
            "ingress-national-number.json",
            Delivered(Channel::Sms, "en-US", "+16594821993"),
        ),
        (
            "ingress-international-without-plus.json",
            Delivered(Channel::Sms, "en-US", "+447400123456"),
        ),
        (
            "ingress-byte-order-mark.json",
            Delivered(Channel::Sms, "en-US", "+14155552676"),
        ),
        (
            "ingress-null-context.json",
            Delivered(Channel::Sms, "en-US", "+14155552677"),
        ),
        (
            "ingress-ipv6-client.json",
            Delivered(Channel::Sms, "en-US", "+14155552678"),
        ),
    ])
}

/// The Okta hook body inside an event, decoded if base64.
fn hook_body(event_text: &str) -> String {
    let v: Value = serde_json::from_str(event_text).unwrap();
    let body = v["body"].as_str().unwrap_or_default();
    if v["isBase64Encoded"].as_bool().unwrap_or(false) {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
        .unwrap()
    } else {
        body.to_owned()
    }
}

/// The event with its hook's code swapped for one that cannot turn up in
/// the logs by chance (the files' own are as short as 4 digits), so the
/// check that no code reached the logs is exact. A code that is not all
/// digits gets a letter that no hex id holds, so it stays invalid. The
/// malformed body, which is not JSON, has its code swapped by hand.
fn recoded(event_text: &str, n: u32) -> String {
    let mut v: Value = serde_json::from_str(event_text).unwrap();
    let base64 = v["isBase64Encoded"].as_bool().unwrap_or(false);
    let body = hook_body(event_text);
    let mut code = unmistakable_code(n);
    let new_body = match secrets_in(&body).into_iter().find(|s| is_code_of(&body, s)) {
        Some(old) => {
            if !old.bytes().all(|b| b.is_ascii_digit()) {
                code.replace_range(2..3, "x");
            }
            with_code(&body, &code).unwrap_or_else(|| {
                assert_eq!(body.matches(old.as_str()).count(), 1, "{body}");
                body.replace(old.as_str(), &code)
            })
        }
        None => return event_text.to_owned(),
    };
    v["body"] = Value::String(if base64 {
        base64::engine::general_purpose::STANDARD.encode(new_body)
    } else {
        new_body
    });
    v.to_string()
}

fn is_code_of(body: &str, candidate: &str) -> bool {
    body.contains(&format!("\"otpCode\": \"{candidate}\""))
}

/// Secrets in a hook body: the OTP and every spelling of the phone number.
/// The malformed body is not JSON, so its values are picked out by hand.
fn secrets_in(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parsed = serde_json::from_str::<Value>(body.trim_start_matches('\u{feff}')).ok();
    if let Some(v) = &parsed {
        // The raw user id (string or number) and the raw client IP: logs
        // carry neither, only keyed hashes and the IP's network.
        match &v["data"]["userProfile"]["userId"] {
            Value::String(s) if s.len() >= 6 => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        }
        if let Some(ip) = v["data"]["context"]["request"]["ipAddress"].as_str() {
            out.push(ip.to_owned());
        }
    }
    let mp = parsed.map(|v| v["data"]["messageProfile"].clone());
    match mp {
        Some(mp) if mp.is_object() => {
            if let Some(otp) = mp["otpCode"].as_str() {
                out.push(otp.to_owned());
            }
            if let Some(phone) = mp["phoneNumber"].as_str() {
                let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                out.push(phone.to_owned());
                if digits.len() >= 7 {
                    out.push(digits.clone());
                }
                // The national part (without the leading 1) as well.
                if digits.len() == 11 {
                    out.push(digits[1..].to_owned());
                }
            }
        }
        _ => {
            if let Some(i) = body.find("\"otpCode\": \"") {
                out.push(body[i + 12..i + 18].to_owned());
            }
        }
    }
    out
}

#[tokio::test]
async fn every_event_file_has_its_expected_outcome_and_logs_hold_no_secrets() {
    let Some(capture) = LogCapture::isolated(crate::test_path!(
        "every_event_file_has_its_expected_outcome_and_logs_hold_no_secrets"
    )) else {
        return;
    };

    let issuer = TestIssuer::start().await;
    let recorder = Arc::new(RecordingDelivery::new());
    let config = issuer.config_with(&[("EVENT_HOOK_SECRET", "local-event-hook-secret")]);
    let deps = IngressDeps::new(&config, recorder.clone()).unwrap();
    let expectations = expectations();

    let events = ingress_events();
    assert_eq!(
        events.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        expectations.keys().copied().collect::<Vec<_>>(),
        "every ingress event file needs an expectation, and every expectation a file"
    );

    let mut secrets = Vec::new();
    let mut tokens = Vec::new();
    let mut delivered = 0;
    for (n, (name, text)) in (0..).zip(&events) {
        let text = &recoded(text, n);
        let token = issuer.token();
        tokens.push(token.clone());
        secrets.extend(secrets_in(&hook_body(text)));

        let before = recorder.requests().len();
        let resp = telehook(&deps, event_with_token(text, &token)).await;
        let body = response_json(&resp);
        match &expectations[name.as_str()] {
            Expect::Delivered(channel, locale, e164) => {
                assert_eq!(resp.status_code, 200, "{name}");
                assert_eq!(
                    body["commands"][0]["type"], "com.okta.telephony.action",
                    "{name}"
                );
                assert_eq!(
                    body["commands"][0]["value"][0]["status"], "SUCCESSFUL",
                    "{name}"
                );
                assert!(
                    body["commands"][0]["value"][0]["transactionId"].is_string(),
                    "{name}"
                );
                let req = recorder.requests().pop().unwrap();
                assert_eq!(req.channel, *channel, "{name}");
                assert_eq!(req.locale.as_str(), *locale, "{name}");
                assert_eq!(req.phone.e164(), *e164, "{name}");
                delivered += 1;
            }
            Expect::Refused(location, reason) => {
                assert_eq!(resp.status_code, 200, "{name}");
                assert_eq!(
                    body["error"]["errorSummary"], "The telephony request was not valid",
                    "{name}"
                );
                assert_eq!(
                    body["error"]["errorCauses"][0]["location"], *location,
                    "{name}"
                );
                assert_eq!(body["error"]["errorCauses"][0]["reason"], *reason, "{name}");
                assert_eq!(
                    recorder.requests().len(),
                    before,
                    "{name}: nothing delivered"
                );
            }
            Expect::Unauthorized => {
                assert_eq!(resp.status_code, 401, "{name}");
                assert_eq!(
                    recorder.requests().len(),
                    before,
                    "{name}: nothing delivered"
                );
            }
            Expect::Verified(challenge) => {
                assert_eq!(resp.status_code, 200, "{name}");
                assert_eq!(body, serde_json::json!({ "verification": challenge }));
            }
            Expect::SignIns(sign_ins, skipped, fallbacks) => {
                assert_eq!(resp.status_code, 200, "{name}");
                let batch = recorder.batches().pop().unwrap();
                assert_eq!(batch.sign_ins.len(), *sign_ins, "{name}");
                assert_eq!(batch.skipped.len(), *skipped, "{name}");
                assert_eq!(batch.okta_fallbacks.len(), *fallbacks, "{name}");
                assert_eq!(body["converted"], *sign_ins, "{name}");
                // The user id is in the body; it must stay out of the logs.
                secrets.push("00uyxxSknGtK8022w0g3".to_owned());
                secrets.push("local-event-hook-secret".to_owned());
            }
        }
        // The answer to Okta never echoes a secret either.
        let answer = serde_json::to_string(&body).unwrap();
        for s in secrets_in(&hook_body(text)) {
            assert!(!answer.contains(&s), "{name}: answer echoes a secret");
        }
    }
    assert_eq!(delivered, 16);

    let logs = capture.text();
    assert!(secrets.len() >= 20, "{}", secrets.len());
    for s in &secrets {
        assert!(
            !contains_standalone(&logs, s),
            "a secret of length {} leaked into the logs",
            s.len()
        );
    }

    // The capture must really hold the run, or the checks above prove nothing.
    assert_eq!(
        logs.matches("hook accepted").count(),
        delivered,
        "capture holds every accepted hook"
    );
    // The new context fields reach the logs in their safe forms only.
    assert!(logs.contains("reqRgSk8IBBRhuo0YdlEDTmUw"), "correlation id");
    assert!(logs.contains("203.0.113.0/24"), "the IPv4 network");
    assert!(logs.contains("2001:db8:85a3::/48"), "the IPv6 network");
    assert!(
        logs.contains("+1******1993") && logs.contains("read nationally"),
        "the ambiguous number, masked"
    );
    assert!(logs.contains("hook rejected") && logs.contains("hook not authenticated"));
    assert!(logs.contains("+1******2671"), "masked numbers are logged");
    assert!(
        logs.contains("data.messageProfile.otpCode"),
        "rejections name the field"
    );
    for t in &tokens {
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(t.as_str()) && !logs.contains(signature),
            "a bearer token leaked"
        );
    }
}
