//! Okta's event hook, as far as conversion needs it: the one-time
//! verification (a GET whose `X-Okta-Verification-Challenge` header is
//! echoed as `{"verification": "…"}`) and the POSTed batches of System Log
//! events (`{"data": {"events": [...]}}`), read for successful sign-ins
//! with a phone factor.
//!
//! The event is `user.authentication.auth_via_mfa`. Okta Identity Engine
//! names the factor on the `AuthenticatorEnrollment` target's
//! `detailEntry.methodTypeUsed` (`SMS`, `Voice call`, …); Classic Engine in
//! `debugContext.debugData.factor` (`SMS_FACTOR`, `CALL_FACTOR`). Both are
//! read, case-insensitively. The user is the actor (type `User`), or a
//! `User` target. Like the telephony hook, fields we do not use may vary in
//! type; an event we cannot read is counted, never fatal to its batch.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::Channel;

/// The event type of a successful (or failed) MFA verification.
pub const AUTH_VIA_MFA: &str = "user.authentication.auth_via_mfa";

/// The header of the one-time verification request.
pub const VERIFICATION_HEADER: &str = "x-okta-verification-challenge";

/// A sign-in with a phone factor. `Debug` leaves the user id out.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInEvent {
    /// Okta's user id (`00u…`); only ever hashed.
    pub user_id: String,
    pub channel: Channel,
    /// `published`, or the time the batch arrived.
    pub at: DateTime<Utc>,
}

impl std::fmt::Debug for SignInEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInEvent")
            .field("channel", &self.channel)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Why an event of a batch was not a sign-in to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Another event type (the hook may be subscribed to more).
    OtherType,
    /// A failed or denied verification.
    NotSuccess,
    /// A factor other than SMS or voice.
    NotPhone,
    /// No user id, or not an object.
    Malformed,
}

impl Skipped {
    pub fn as_str(&self) -> &'static str {
        match self {
            Skipped::OtherType => "OTHER_TYPE",
            Skipped::NotSuccess => "NOT_SUCCESS",
            Skipped::NotPhone => "NOT_PHONE",
            Skipped::Malformed => "MALFORMED",
        }
    }
}

/// A batch read: the sign-ins to match, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBatch {
    pub sign_ins: Vec<SignInEvent>,
    pub skipped: Vec<Skipped>,
}

/// Why a body is not an event hook batch at all. Names a position, never
/// a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBatch {
    #[error("body is not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("data.events is not an array")]
    NoEvents,
}

/// Reads a POSTed batch.
pub fn read_batch(body: &[u8], arrived: DateTime<Utc>) -> Result<EventBatch, InvalidBatch> {
    let v: Value = serde_json::from_slice(body).map_err(|e| InvalidBatch::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let events = v
        .pointer("/data/events")
        .and_then(Value::as_array)
        .ok_or(InvalidBatch::NoEvents)?;
    let mut batch = EventBatch::default();
    for e in events {
        match read_event(e, arrived) {
            Ok(s) => batch.sign_ins.push(s),
            Err(skip) => batch.skipped.push(skip),
        }
    }
    Ok(batch)
}

fn read_event(e: &Value, arrived: DateTime<Utc>) -> Result<SignInEvent, Skipped> {
    if !e.is_object() {
        return Err(Skipped::Malformed);
    }
    if e.get("eventType").and_then(Value::as_str) != Some(AUTH_VIA_MFA) {
        return Err(Skipped::OtherType);
    }
    let result = e.pointer("/outcome/result").and_then(Value::as_str);
    if !result.is_some_and(|r| r.eq_ignore_ascii_case("SUCCESS")) {
        return Err(Skipped::NotSuccess);
    }
    let channel = channel_of(e).ok_or(Skipped::NotPhone)?;
    let user_id = user_of(e).ok_or(Skipped::Malformed)?;
    let at = e
        .get("published")
        .and_then(Value::as_str)
        .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
        .map_or(arrived, |t| t.with_timezone(&Utc));
    Ok(SignInEvent {
        user_id,
        channel,
        at,
    })
}

fn is_type(v: &Value, t: &str) -> bool {
    v.get("type")
        .and_then(Value::as_str)
        .is_some_and(|x| x.eq_ignore_ascii_case(t))
}

fn user_of(e: &Value) -> Option<String> {
    let id = |v: &Value| {
        v.get("id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    e.get("actor")
        .filter(|a| is_type(a, "User"))
        .and_then(id)
        .or_else(|| {
            e.get("target")?
                .as_array()?
                .iter()
                .filter(|t| is_type(t, "User"))
                .find_map(id)
        })
}

/// The phone method of a method name: SMS, or a voice call.
fn channel_of_method(m: &str) -> Option<Channel> {
    let m = m.to_ascii_lowercase();
    if m.contains("sms") {
        Some(Channel::Sms)
    } else if m.contains("voice") || m.contains("call") {
        Some(Channel::Voice)
    } else {
        None
    }
}

fn channel_of(e: &Value) -> Option<Channel> {
    let from_target = e
        .get("target")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| is_type(t, "AuthenticatorEnrollment"))
        .filter_map(|t| {
            let d = t.get("detailEntry")?;
            d.get("methodTypeUsed")
                .or_else(|| d.get("MethodTypeUsed"))
                .and_then(Value::as_str)
        })
        .find_map(channel_of_method);
    from_target.or_else(|| {
        match e
            .pointer("/debugContext/debugData/factor")
            .and_then(Value::as_str)?
            .to_ascii_uppercase()
            .as_str()
        {
            "SMS_FACTOR" => Some(Channel::Sms),
            "CALL_FACTOR" => Some(Channel::Voice),
            _ => None,
        }
    })
}

/// The answer to the one-time verification request.
pub fn verification_answer(challenge: &str) -> Value {
    serde_json::json!({ "verification": challenge })
}

#[cfg(test)]
mod tests {
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
        let got: Vec<(&str, Channel)> = b
            .sign_ins
            .iter()
            .map(|s| (s.user_id.as_str(), s.channel))
            .collect();
        assert_eq!(
            got,
            vec![
                ("00uABC", Channel::Sms),
                ("00uABC", Channel::Voice),
                ("00uDEF", Channel::Voice)
            ]
        );
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
}
