//! Okta's event hook, as far as conversion needs it: the one-time
//! verification (a GET whose `X-Okta-Verification-Challenge` header is
//! echoed as `{"verification": "…"}`) and the POSTed batches of System Log
//! events (`{"data": {"events": [...]}}`).
//!
//! Each kind of code has its own event that shows it used
//! ([`UseSignal`]): `user.authentication.auth_via_mfa` for an MFA code
//! (SUCCESS with an SMS or voice factor), `user.mfa.factor.activate` for
//! an enrollment code (a phone factor activated), `user.account.reset_password`
//! for a reset code and `user.account.unlock` for an unlock code. Okta
//! Identity Engine names the factor on the `AuthenticatorEnrollment`
//! target's `detailEntry.methodTypeUsed` (`SMS`, `Voice call`, …) and may
//! name only "Phone", which covers both channels; Classic Engine in
//! `debugContext.debugData.factor` (`SMS_FACTOR`, `CALL_FACTOR`). All are
//! read case-insensitively. The user is the actor for a sign-in and the
//! `User` target for the others (an admin may be the actor there).
//!
//! `inline_hook.executed` with an outcome other than SUCCESS is Okta's own
//! record that an inline hook call failed; for the telephony hook that
//! means Okta sent the code through its own rate-limited providers
//! ([`OktaFallback`]).
//!
//! Like the telephony hook, fields we do not use may vary in type; an
//! event we cannot read is counted, never fatal to its batch.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::{Channel, UseSignal};

/// The event type of a successful (or failed) MFA verification.
pub const AUTH_VIA_MFA: &str = "user.authentication.auth_via_mfa";

/// Okta's record of one inline hook call, failed or not.
pub const INLINE_HOOK_EXECUTED: &str = "inline_hook.executed";

/// Every event type the event hook should be subscribed to.
pub const SUBSCRIBED_EVENT_TYPES: [&str; 5] = [
    AUTH_VIA_MFA,
    "user.mfa.factor.activate",
    "user.account.reset_password",
    "user.account.unlock",
    INLINE_HOOK_EXECUTED,
];

/// The header of the one-time verification request.
pub const VERIFICATION_HEADER: &str = "x-okta-verification-challenge";

/// Okta's word that a code of some kind was used. `Debug` leaves the user
/// id out.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInEvent {
    /// Okta's user id (`00u…`); only ever hashed.
    pub user_id: String,
    pub signal: UseSignal,
    /// `None` when the event does not say which (Identity Engine's phone
    /// authenticator, a reset, an unlock).
    pub channel: Option<Channel>,
    /// `published`, or the time the batch arrived.
    pub at: DateTime<Utc>,
    /// Okta's `uuid` of the event: a batch delivered twice counts once.
    pub uuid: Option<String>,
}

impl std::fmt::Debug for SignInEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInEvent")
            .field("signal", &self.signal)
            .field("channel", &self.channel)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Which inline hook a failed call was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedHook {
    /// The event names the telephony hook.
    Telephony,
    /// The event names no hook type: counted, since an org's telephony
    /// hook may be the one.
    Unnamed,
}

impl FailedHook {
    pub fn as_str(&self) -> &'static str {
        match self {
            FailedHook::Telephony => "telephony",
            FailedHook::Unnamed => "unnamed",
        }
    }
}

/// Okta's record of a failed inline hook call: for the telephony hook,
/// the code went out through Okta's own providers instead, rate-limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaFallback {
    pub hook: FailedHook,
    pub at: DateTime<Utc>,
    pub uuid: Option<String>,
}

/// Why an event of a batch was not one to match.
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
    /// A failed call of an inline hook other than the telephony hook.
    OtherHook,
}

impl Skipped {
    pub fn as_str(&self) -> &'static str {
        match self {
            Skipped::OtherType => "OTHER_TYPE",
            Skipped::NotSuccess => "NOT_SUCCESS",
            Skipped::NotPhone => "NOT_PHONE",
            Skipped::Malformed => "MALFORMED",
            Skipped::OtherHook => "OTHER_HOOK",
        }
    }
}

/// A batch read: the uses to match, Okta's fallbacks, and what was
/// skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBatch {
    pub sign_ins: Vec<SignInEvent>,
    pub okta_fallbacks: Vec<OktaFallback>,
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
            Ok(Read::Use(s)) => batch.sign_ins.push(s),
            Ok(Read::Fallback(f)) => batch.okta_fallbacks.push(f),
            Err(skip) => batch.skipped.push(skip),
        }
    }
    Ok(batch)
}

enum Read {
    Use(SignInEvent),
    Fallback(OktaFallback),
}

fn published(e: &Value, arrived: DateTime<Utc>) -> DateTime<Utc> {
    e.get("published")
        .and_then(Value::as_str)
        .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
        .map_or(arrived, |t| t.with_timezone(&Utc))
}

fn succeeded(e: &Value) -> bool {
    e.pointer("/outcome/result")
        .and_then(Value::as_str)
        .is_some_and(|r| r.eq_ignore_ascii_case("SUCCESS"))
}

fn read_event(e: &Value, arrived: DateTime<Utc>) -> Result<Read, Skipped> {
    if !e.is_object() {
        return Err(Skipped::Malformed);
    }
    let event_type = e.get("eventType").and_then(Value::as_str).unwrap_or("");
    let at = published(e, arrived);
    let uuid = e
        .get("uuid")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|u| !u.is_empty() && u.len() <= 128)
        .map(str::to_owned);
    if event_type == INLINE_HOOK_EXECUTED {
        if succeeded(e) {
            return Err(Skipped::NotSuccess);
        }
        let hook = failed_hook(e).ok_or(Skipped::OtherHook)?;
        return Ok(Read::Fallback(OktaFallback { hook, at, uuid }));
    }
    let signal = UseSignal::ALL
        .into_iter()
        .find(|s| s.event_type() == event_type)
        .ok_or(Skipped::OtherType)?;
    if !succeeded(e) {
        return Err(Skipped::NotSuccess);
    }
    let channel = match signal {
        UseSignal::SignIn => Some(channel_of(e).ok_or(Skipped::NotPhone)?),
        UseSignal::Enrollment => match phone_factor(e) {
            PhoneFactor::Channel(c) => Some(c),
            PhoneFactor::Either => None,
            PhoneFactor::NotPhone => return Err(Skipped::NotPhone),
        },
        UseSignal::PasswordReset | UseSignal::Unlock => None,
    };
    // A sign-in is the user's own act; the others may be an admin's (or
    // Okta's, for a self-service reset), with the user as the target.
    let user_id = match signal {
        UseSignal::SignIn => user_of(e, false),
        _ => user_of(e, true),
    }
    .ok_or(Skipped::Malformed)?;
    Ok(Read::Use(SignInEvent {
        user_id,
        signal,
        channel,
        at,
        uuid,
    }))
}

fn is_type(v: &Value, t: &str) -> bool {
    v.get("type")
        .and_then(Value::as_str)
        .is_some_and(|x| x.eq_ignore_ascii_case(t))
}

fn user_of(e: &Value, target_first: bool) -> Option<String> {
    let id = |v: &Value| {
        v.get("id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let actor = || e.get("actor").filter(|a| is_type(a, "User")).and_then(id);
    let target = || {
        e.get("target")?
            .as_array()?
            .iter()
            .filter(|t| is_type(t, "User"))
            .find_map(id)
    };
    if target_first {
        target().or_else(actor)
    } else {
        actor().or_else(target)
    }
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

enum PhoneFactor {
    Channel(Channel),
    /// A phone factor, channel not named (Identity Engine's "Phone").
    Either,
    NotPhone,
}

/// The factor an activation is about. Classic names it in the debug data
/// (`SMS_FACTOR`, `CALL_FACTOR`, or `factorType` `sms`/`call`); Identity
/// Engine on the enrollment target (`methodTypeUsed`, or a display name
/// such as "Phone", "SMS Authentication", "Voice Call Authentication").
fn phone_factor(e: &Value) -> PhoneFactor {
    if let Some(c) = channel_of(e) {
        return PhoneFactor::Channel(c);
    }
    let debug = e.pointer("/debugContext/debugData");
    let mut names: Vec<String> = Vec::new();
    if let Some(d) = debug {
        for k in ["factor", "factorType", "authenticatorType", "methodType"] {
            if let Some(v) = d.get(k).and_then(Value::as_str) {
                names.push(v.to_ascii_lowercase());
            }
        }
    }
    for t in e
        .get("target")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| !is_type(t, "User"))
    {
        if let Some(v) = t.get("displayName").and_then(Value::as_str) {
            names.push(v.to_ascii_lowercase());
        }
    }
    if let Some(c) = names.iter().find_map(|n| {
        if n == "call" || n.contains("call_factor") {
            Some(Channel::Voice)
        } else {
            channel_of_method(n)
        }
    }) {
        return PhoneFactor::Channel(c);
    }
    if names.iter().any(|n| n.contains("phone")) {
        return PhoneFactor::Either;
    }
    PhoneFactor::NotPhone
}

/// Which hook a failed `inline_hook.executed` was for: the telephony hook
/// when the event names it, another when it names another hook type, and
/// unnamed when it names none.
fn failed_hook(e: &Value) -> Option<FailedHook> {
    let mut text = String::new();
    for part in [e.get("target"), e.pointer("/debugContext/debugData")]
        .into_iter()
        .flatten()
    {
        text.push_str(&part.to_string().to_ascii_lowercase());
    }
    if text.contains("telephony") {
        return Some(FailedHook::Telephony);
    }
    const OTHER_HOOKS: [&str; 6] = [
        "com.okta.import.transform",
        "com.okta.oauth2.tokens.transform",
        "com.okta.saml.tokens.transform",
        "com.okta.user.pre-registration",
        "com.okta.user.credential.password.import",
        "com.okta.user.pre-registration.transform",
    ];
    if OTHER_HOOKS.iter().any(|h| text.contains(h)) {
        return None;
    }
    Some(FailedHook::Unnamed)
}

/// The answer to the one-time verification request.
pub fn verification_answer(challenge: &str) -> Value {
    serde_json::json!({ "verification": challenge })
}

#[cfg(test)]
mod tests;
