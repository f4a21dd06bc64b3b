//! The unit tests of `okta::events`.

#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn oie(method: &str, result: &str) -> Value {
    json!({
        "uuid": "u1", "published": "2026-12-03T09:59:58.123Z",
        "eventType": AUTH_VIA_MFA,
        "actor": {"id": "00uABC", "type": "User", "alternateId": "a@example.com"},
        "outcome": {"result": result, "reason": null},
        "target": [
            {"id": "00uABC", "type": "User", "detailEntry": null},
            {"id": "paeX", "type": "AuthenticatorEnrollment", "displayName": "Phone",
             "detailEntry": {"methodTypeUsed": method, "methodUsedVerifiedProperties": "[]"}}
        ]
    })
}

fn batch(events: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "eventType": "com.okta.event_hook", "eventTypeVersion": "1.0",
        "data": {"events": events}
    }))
    .unwrap()
}

#[test]
fn identity_engine_and_classic_phone_sign_ins_are_read() {
    let classic = json!({
        "eventType": AUTH_VIA_MFA, "outcome": {"result": "SUCCESS"},
        "actor": {"id": "00uDEF", "type": "User"},
        "debugContext": {"debugData": {"factor": "CALL_FACTOR"}}
    });
    let b = read_batch(
        &batch(vec![
            oie("SMS", "SUCCESS"),
            oie("Voice call", "SUCCESS"),
            classic,
        ]),
        now(),
    )
    .unwrap();
    let got: Vec<(&str, Option<Channel>)> = b
        .sign_ins
        .iter()
        .map(|s| (s.user_id.as_str(), s.channel))
        .collect();
    assert_eq!(
        got,
        vec![
            ("00uABC", Some(Channel::Sms)),
            ("00uABC", Some(Channel::Voice)),
            ("00uDEF", Some(Channel::Voice))
        ]
    );
    assert!(b.sign_ins.iter().all(|s| s.signal == UseSignal::SignIn));
    assert_eq!(b.sign_ins[0].uuid.as_deref(), Some("u1"));
    assert_eq!(b.sign_ins[0].at.timestamp_millis() % 1000, 123);
    // No `published`: the arrival time.
    assert_eq!(b.sign_ins[2].at, now());
    assert!(!format!("{:?}", b.sign_ins[0]).contains("00uABC"));
}

#[test]
fn everything_else_is_skipped_with_a_reason() {
    let mut no_user = oie("SMS", "SUCCESS");
    no_user["actor"] = json!({"id": 5, "type": "User"});
    no_user["target"][0] = json!({"type": "AppInstance"});
    let b = read_batch(
        &batch(vec![
            oie("SMS", "FAILURE"),
            oie("Get a push notification", "SUCCESS"),
            oie("Password", "SUCCESS"),
            json!({"eventType": "user.session.start", "outcome": {"result": "SUCCESS"}}),
            no_user,
            json!("not an event"),
        ]),
        now(),
    )
    .unwrap();
    assert!(b.sign_ins.is_empty());
    assert_eq!(
        b.skipped,
        vec![
            Skipped::NotSuccess,
            Skipped::NotPhone,
            Skipped::NotPhone,
            Skipped::OtherType,
            Skipped::Malformed,
            Skipped::Malformed
        ]
    );
}

#[test]
fn each_kind_of_code_has_its_own_event() {
    let admin = json!({"id": "00uADMIN", "type": "User"});
    let user = json!({"id": "00uUSER", "type": "User"});
    let ok = json!({"result": "SUCCESS"});
    let classic_enrol = json!({
        "uuid": "e1", "eventType": "user.mfa.factor.activate", "outcome": ok,
        "actor": user, "target": [user],
        "debugContext": {"debugData": {"factor": "SMS_FACTOR"}}
    });
    let oie_enrol = json!({
        "uuid": "e2", "eventType": "user.mfa.factor.activate", "outcome": ok,
        "actor": user,
        "target": [user, {"id": "pae1", "type": "AuthenticatorEnrollment", "displayName": "Phone"}]
    });
    let voice_enrol = json!({
        "eventType": "user.mfa.factor.activate", "outcome": ok, "actor": user,
        "target": [user], "debugContext": {"debugData": {"factorType": "call"}}
    });
    let push_enrol = json!({
        "eventType": "user.mfa.factor.activate", "outcome": ok, "actor": user,
        "target": [user, {"type": "AuthenticatorEnrollment", "displayName": "Okta Verify"}]
    });
    // A self-service reset: Okta acts, the user is the target.
    let reset = json!({
        "eventType": "user.account.reset_password", "outcome": ok,
        "actor": {"id": "0oaSYS", "type": "SystemPrincipal"}, "target": [user]
    });
    let unlock = json!({
        "eventType": "user.account.unlock", "outcome": ok, "actor": admin, "target": [user]
    });
    let b = read_batch(
        &batch(vec![
            classic_enrol,
            oie_enrol,
            voice_enrol,
            push_enrol,
            reset,
            unlock,
        ]),
        now(),
    )
    .unwrap();
    let got: Vec<(&str, UseSignal, Option<Channel>)> = b
        .sign_ins
        .iter()
        .map(|s| (s.user_id.as_str(), s.signal, s.channel))
        .collect();
    assert_eq!(
        got,
        vec![
            ("00uUSER", UseSignal::Enrollment, Some(Channel::Sms)),
            ("00uUSER", UseSignal::Enrollment, None),
            ("00uUSER", UseSignal::Enrollment, Some(Channel::Voice)),
            ("00uUSER", UseSignal::PasswordReset, None),
            ("00uUSER", UseSignal::Unlock, None),
        ]
    );
    assert_eq!(b.skipped, vec![Skipped::NotPhone]);
}

#[test]
fn failed_hook_calls_are_okta_taking_over() {
    let failed = |target: Value| {
        json!({
            "uuid": "h1", "eventType": INLINE_HOOK_EXECUTED,
            "outcome": {"result": "FAILURE", "reason": "timeout"},
            "target": target
        })
    };
    let b = read_batch(
        &batch(vec![
            failed(json!([{"id": "cal1", "type": "InlineHook", "detailEntry": {"hookType": "com.okta.telephony.provider"}}])),
            failed(json!([{"id": "cal2", "type": "InlineHook"}])),
            failed(json!([{"id": "cal3", "type": "InlineHook", "detailEntry": {"hookType": "com.okta.oauth2.tokens.transform"}}])),
            json!({"eventType": INLINE_HOOK_EXECUTED, "outcome": {"result": "SUCCESS"}}),
        ]),
        now(),
    )
    .unwrap();
    let hooks: Vec<FailedHook> = b.okta_fallbacks.iter().map(|f| f.hook).collect();
    assert_eq!(hooks, [FailedHook::Telephony, FailedHook::Unnamed]);
    assert_eq!(b.skipped, [Skipped::OtherHook, Skipped::NotSuccess]);
    assert!(b.sign_ins.is_empty());
}

/// The subscription the Okta setup guide tells operators to make holds
/// every event this module reads, and names each one.
#[test]
fn the_subscription_lists_every_event_read() {
    for s in UseSignal::ALL {
        assert!(SUBSCRIBED_EVENT_TYPES.contains(&s.event_type()), "{s:?}");
    }
    assert!(SUBSCRIBED_EVENT_TYPES.contains(&INLINE_HOOK_EXECUTED));
    let readme = include_str!("../../../../docs/okta-setup.md");
    for t in SUBSCRIBED_EVENT_TYPES {
        assert!(readme.contains(&format!("(`{t}`)")), "{t}");
    }
}

#[test]
fn bodies_that_are_not_batches_name_a_position_only() {
    assert_eq!(
        read_batch(b"{\"data\": {\"events\": {}}}", now()),
        Err(InvalidBatch::NoEvents)
    );
    assert!(matches!(
        read_batch(b"{\"00uSECRET\"", now()),
        Err(InvalidBatch::NotJson { .. })
    ));
    let e = read_batch(b"{\"00uSECRET\"", now()).unwrap_err();
    assert!(!e.to_string().contains("SECRET"));
    assert_eq!(verification_answer("abc"), json!({"verification": "abc"}));
}
