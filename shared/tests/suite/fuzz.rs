//! Property-based fuzzing of the two decoders that take outside input: the
//! Okta hook parser and the queued-job decoder. Arbitrary bytes and
//! structure-aware inputs must never panic, and whatever is accepted must
//! hold the newtypes' invariants.
//!
//! CI runs a short pass. A long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p telehook --test suite -- fuzz::`
//! (figures in RELIABILITY.md). Crash reproducers land in
//! `tests/suite/fuzz.proptest-regressions` and are replayed on every run; the
//! hand-made corpus in `tests/fuzz-corpus/` is replayed too.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use telehook::domain::job::Job;
use telehook::domain::locale::Locale;
use telehook::domain::{DeliveryRequest, OktaText, Otp, SignInContext};
use telehook::okta::{HookDefaults, parse_hook};

fn defaults() -> HookDefaults {
    HookDefaults::new(Locale::parse("en").unwrap(), "US".parse().unwrap())
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES overrides; CI keeps the default short.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// What an accepted request must be, whatever went in.
fn check_accepted(r: &DeliveryRequest) {
    let id = r.event_id.as_str();
    assert!(!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()));
    let code = r.otp.expose();
    assert!((4..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()));
    let e164 = r.phone.e164();
    assert!(
        e164.starts_with('+') && e164[1..].bytes().all(|b| b.is_ascii_digit()) && e164.len() <= 16
    );
    let masked = r.phone.to_string();
    assert!(
        !masked.contains(&e164[1..]),
        "the masked form hides the number"
    );
    // Exact, not lucky: a short code's digits may well turn up elsewhere in
    // the Debug text (a masked number's last four, a timestamp), so the
    // check is that the text does not depend on the code at all.
    let other: String = code
        .bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect();
    let otp = Otp::parse(&other).unwrap();
    let okta_text = r
        .context
        .okta_text
        .as_ref()
        .map(|t| OktaText::new(&t.expose().replace(code, &other), &otp).unwrap());
    let twin = DeliveryRequest {
        otp,
        context: SignInContext {
            okta_text,
            ..r.context.clone()
        },
        ..r.clone()
    };
    assert_eq!(
        format!("{r:?}"),
        format!("{twin:?}"),
        "Debug never shows the code"
    );
    // Whatever was accepted survives the trip through the queue.
    let back = Job::decode(
        &Job::from_request(r, telehook::crypto::keyed(&b"fuzz-key".to_vec().into())).encode(),
    )
    .unwrap()
    .to_request()
    .unwrap();
    assert_eq!(back.event_id, r.event_id);
    assert_eq!(back.phone, r.phone);
}

/// Strings that look like what Okta sends, and things that do not.
fn field() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::from),
        "[0-9]{0,12}".prop_map(Value::from),
        "\\+?[0-9 ()-.]{0,24}".prop_map(Value::from),
        "(SMS|sms|CALL|call|voice call|Voice|VOICE|fax|)".prop_map(Value::from),
        "([a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8}){0,3})?".prop_map(Value::from),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})".prop_map(Value::from),
        "com\\.okta\\.(user\\.)?telephony\\.[a-z.-]{0,20}".prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|v| json!(v)),
        Just(json!({})),
    ]
}

fn hook() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(field(), 12),
        prop::collection::vec(any::<bool>(), 12),
    )
        .prop_map(|(f, keep)| {
            let mut mp = serde_json::Map::new();
            for (i, k) in [
                "phoneNumber",
                "otpCode",
                "otpExpires",
                "deliveryChannel",
                "locale",
                "msgTemplate",
            ]
            .iter()
            .enumerate()
            {
                if keep[i] {
                    mp.insert((*k).into(), f[i].clone());
                }
            }
            let mut root = serde_json::Map::new();
            let top = [
                ("eventId", &f[6]),
                ("eventType", &json!("com.okta.telephony.provider")),
                ("requestType", &f[7]),
                ("eventTime", &f[8]),
            ];
            for (i, (k, v)) in top.iter().enumerate() {
                if keep[6 + i] {
                    root.insert((*k).into(), (*v).clone());
                }
            }
            let user = json!({"userId": f[9].clone()});
            if keep[10] {
                root.insert(
                    "data".into(),
                    json!({"messageProfile": mp, "userProfile": user}),
                );
            } else if keep[11] {
                root.insert("data".into(), f[10].clone());
            }
            Value::Object(root)
        })
}

fn job() -> impl Strategy<Value = Value> {
    prop::collection::vec(field(), 10).prop_map(|f| {
        json!({
            "v": if f[9].is_null() { json!(1) } else { f[9].clone() },
            "eventId": f[0], "requestType": f[1], "to": f[2], "otp": f[3], "otpExpires": f[4],
            "channel": f[5], "locale": f[6], "userId": f[7], "replays": f[8],
        })
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hook_parser_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = parse_hook(&bytes, &defaults(), chrono::Utc::now()) {
            check_accepted(&r);
        }
    }

    #[test]
    fn hook_parser_takes_any_hook_shaped_json(v in hook()) {
        let text = v.to_string();
        if let Ok(r) = parse_hook(text.as_bytes(), &defaults(), chrono::Utc::now()) {
            check_accepted(&r);
        }
    }

    #[test]
    fn job_decoder_takes_any_string(s in ".{0,300}") {
        if let Ok(j) = Job::decode(&s) {
            let _ = j.to_request();
        }
    }

    #[test]
    fn job_decoder_takes_any_job_shaped_json(v in job()) {
        if let Ok(r) = Job::decode(&v.to_string()).and_then(|j| j.to_request()) {
            check_accepted(&r);
        }
    }
}

#[test]
fn the_corpus_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(r) = parse_hook(&bytes, &defaults(), chrono::Utc::now()) {
            check_accepted(&r);
        }
        if let Ok(j) = Job::decode(&String::from_utf8_lossy(&bytes)) {
            let _ = j.to_request();
        }
        n += 1;
    }
    assert!(n >= 9);
}
