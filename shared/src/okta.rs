//! Okta's telephony inline hook on the wire: the request Okta POSTs, the
//! command or error object we answer with, and the validation that turns a
//! request into a [`DeliveryRequest`].
//!
//! Parsing is two steps. Serde reads the body into loosely typed wire structs
//! (every field optional, unknown fields ignored, because Okta adds fields over
//! time). Then [`parse_hook`] checks each field and normalises it through the
//! newtypes. Every refusal is an [`InvalidHook`] naming the field's JSON path
//! and the problem, never the value: values include the OTP and the number.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::Channel;
use crate::locale::Locale;
use crate::otp::Otp;
use crate::phone::{PhoneNumber, Region};

pub const EVENT_TYPE: &str = "com.okta.telephony.provider";
pub const COMMAND_TYPE: &str = "com.okta.telephony.action";
pub const PROVIDER_NAME: &str = "AWS End User Messaging";
const REQUEST_TYPE_PREFIX: &str = "com.okta.user.telephony.";

/// What Okta may show an end user when we refuse a hook. Generic on purpose.
pub const SUMMARY_INVALID: &str = "The telephony request was not valid";
pub const SUMMARY_NOT_DELIVERED: &str = "Could not deliver the code";

// ---------------------------------------------------------------- newtypes

/// Okta's `eventId`: unique per hook call and our idempotency key. It becomes
/// a DynamoDB key and an SQS deduplication id, so it is held to that alphabet:
/// 1–128 printable ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        if raw.is_empty() {
            return Err(Problem::Missing);
        }
        if raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Problem::Invalid("must be 1-128 printable ASCII characters"));
        }
        Ok(EventId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = Problem;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EventId::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(e: EventId) -> Self {
        e.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why Okta is asking for a code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestType {
    PreEnrollment,
    MfaVerification,
    AccountUnlock,
    PasswordReset,
    /// A `com.okta.user.telephony.*` value this build does not know yet.
    /// Accepted (Okta adds flows) and logged.
    Other(String),
}

impl RequestType {
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Problem::Missing);
        }
        let Some(rest) = raw.strip_prefix(REQUEST_TYPE_PREFIX) else {
            return Err(Problem::Invalid("is not an Okta telephony request type"));
        };
        Ok(match rest {
            "pre-enrollment" => RequestType::PreEnrollment,
            "mfa-verification" => RequestType::MfaVerification,
            "account-unlock" => RequestType::AccountUnlock,
            "password-reset" => RequestType::PasswordReset,
            other
                if !other.is_empty()
                    && other.len() <= 64
                    && other.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
                    }) =>
            {
                RequestType::Other(raw.to_owned())
            }
            _ => return Err(Problem::Invalid("is not an Okta telephony request type")),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            RequestType::PreEnrollment => "com.okta.user.telephony.pre-enrollment",
            RequestType::MfaVerification => "com.okta.user.telephony.mfa-verification",
            RequestType::AccountUnlock => "com.okta.user.telephony.account-unlock",
            RequestType::PasswordReset => "com.okta.user.telephony.password-reset",
            RequestType::Other(s) => s,
        }
    }

    /// The short name (`mfa-verification`), for logs, metrics and `Context`.
    pub fn short(&self) -> &str {
        self.as_str().trim_start_matches(REQUEST_TYPE_PREFIX)
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, RequestType::Other(_))
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ------------------------------------------------------------ wire request

/// The hook request as Okta sends it. Every field is optional here so that a
/// missing field is reported by name in [`parse_hook`], not as a serde error.
/// No `Debug`: the message profile carries the OTP and the number.
#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_event_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<HookData>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_profile: Option<UserProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_profile: Option<MessageProfile>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageProfile {
    /// Okta's own SMS text. It contains the code; we never use or log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

// These Debug impls exist so wire values can sit in structs that derive
// Debug; they show what is safe (ids, types, channel) and hide the rest.
impl fmt::Debug for HookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookRequest")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("request_type", &self.request_type)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for HookData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookData")
            .field("user_profile", &self.user_profile)
            .field("message_profile", &self.message_profile)
            .finish()
    }
}

impl fmt::Debug for UserProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserProfile")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MessageProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageProfile")
            .field("delivery_channel", &self.delivery_channel)
            .field("locale", &self.locale)
            .field("otp_expires", &self.otp_expires)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------- wire response

/// What we answer Okta with: either `commands` or `error`, always HTTP 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<Command>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Vec<ActionValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionValue {
    pub status: ActionStatus,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_metadata: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionStatus {
    Successful,
    Pending,
    Failed,
}

impl ActionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionStatus::Successful => "SUCCESSFUL",
            ActionStatus::Pending => "PENDING",
            ActionStatus::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    pub error_summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_causes: Vec<ErrorCause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCause {
    pub error_summary: String,
    pub reason: String,
    pub location: String,
}

impl HookResponse {
    /// A `com.okta.telephony.action` command with one status value.
    pub fn action(
        status: ActionStatus,
        transaction_id: Option<String>,
        transaction_metadata: Option<String>,
    ) -> Self {
        HookResponse {
            commands: Some(vec![Command {
                kind: COMMAND_TYPE.to_owned(),
                value: vec![ActionValue {
                    status,
                    provider: PROVIDER_NAME.to_owned(),
                    transaction_id,
                    transaction_metadata,
                }],
            }]),
            error: None,
        }
    }

    /// Okta's error object. `summary` may reach end users: keep it generic.
    pub fn error(summary: &str, causes: Vec<ErrorCause>) -> Self {
        HookResponse {
            commands: None,
            error: Some(ErrorObject {
                error_summary: summary.to_owned(),
                error_causes: causes,
            }),
        }
    }

    /// The status of the first action, if this is a command response.
    pub fn status(&self) -> Option<ActionStatus> {
        self.commands
            .as_ref()?
            .first()?
            .value
            .first()
            .map(|v| v.status)
    }
}

// --------------------------------------------------------------- validation

/// What is wrong with one field. The texts are safe to send to Okta.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("is missing")]
    Missing,
    #[error("has the wrong JSON type")]
    WrongType,
    #[error("{0}")]
    Invalid(&'static str),
}

impl Problem {
    /// A stable machine-readable reason for logs and `errorCauses`.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::Missing => "MISSING_FIELD",
            Problem::WrongType => "WRONG_TYPE",
            Problem::Invalid(_) => "INVALID_VALUE",
        }
    }
}

/// A refused hook: which field (JSON path) and why. Holds no request values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidHook {
    #[error("body is not valid JSON ({category} at line {line}, column {column})")]
    Malformed {
        category: &'static str,
        line: usize,
        column: usize,
    },
    #[error("body is empty")]
    EmptyBody,
    #[error("body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body is not valid base64")]
    BadEncoding,
    #[error("{field} {problem}")]
    Field { field: String, problem: Problem },
}

impl InvalidHook {
    fn field(field: &str, problem: Problem) -> Self {
        InvalidHook::Field {
            field: field.to_owned(),
            problem,
        }
    }

    /// The JSON path of the offending field, or `body`.
    pub fn location(&self) -> &str {
        match self {
            InvalidHook::Field { field, .. } => field,
            _ => "body",
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            InvalidHook::Malformed { .. } => "MALFORMED_JSON",
            InvalidHook::EmptyBody => "EMPTY_BODY",
            InvalidHook::TooLarge { .. } => "BODY_TOO_LARGE",
            InvalidHook::BadEncoding => "BAD_ENCODING",
            InvalidHook::Field { problem, .. } => problem.reason(),
        }
    }

    /// Okta's error object for this refusal. The cause names the field and
    /// the rule it broke; it never echoes a value.
    pub fn to_response(&self) -> HookResponse {
        HookResponse::error(
            SUMMARY_INVALID,
            vec![ErrorCause {
                error_summary: self.to_string(),
                reason: self.reason().to_owned(),
                location: self.location().to_owned(),
            }],
        )
    }
}

/// Settings that shape normalisation.
#[derive(Debug, Clone)]
pub struct HookDefaults {
    /// Used when `locale` is missing or is not a language tag.
    pub locale: Locale,
    /// Region for phone numbers that are neither E.164 nor E.164 minus `+`.
    pub region: Region,
}

/// A validated, normalised request to deliver one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRequest {
    pub event_id: EventId,
    pub request_type: RequestType,
    pub phone: PhoneNumber,
    pub otp: Otp,
    pub otp_expires: DateTime<Utc>,
    pub channel: Channel,
    pub locale: Locale,
    /// Whether `locale` came from the request (false: the default was used).
    pub locale_from_request: bool,
    /// Okta's user id, for per-user limits. Not personal data on its own.
    pub user_id: Option<String>,
}

const P_EVENT_ID: &str = "eventId";
const P_EVENT_TYPE: &str = "eventType";
const P_REQUEST_TYPE: &str = "requestType";
const P_MESSAGE_PROFILE: &str = "data.messageProfile";
const P_PHONE: &str = "data.messageProfile.phoneNumber";
const P_OTP: &str = "data.messageProfile.otpCode";
const P_EXPIRES: &str = "data.messageProfile.otpExpires";
const P_CHANNEL: &str = "data.messageProfile.deliveryChannel";
const P_LOCALE: &str = "data.messageProfile.locale";

/// Reads and validates a hook body.
pub fn parse_hook(body: &[u8], defaults: &HookDefaults) -> Result<DeliveryRequest, InvalidHook> {
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(InvalidHook::EmptyBody);
    };
    // Serde would read a struct from a JSON array positionally; a hook is
    // always an object.
    if body[first] != b'{' {
        return Err(InvalidHook::Malformed {
            category: "not a JSON object",
            line: 1,
            column: first + 1,
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let wire: HookRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde's own message can quote the offending value (an OTP sent as a
        // number, say), so only the category and position are kept.
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                InvalidHook::field(&path, Problem::WrongType)
            }
            category => InvalidHook::Malformed {
                category: match category {
                    serde_json::error::Category::Io => "io error",
                    serde_json::error::Category::Syntax => "syntax error",
                    serde_json::error::Category::Data => "not a JSON object",
                    serde_json::error::Category::Eof => "unexpected end of input",
                },
                line: inner.line(),
                column: inner.column(),
            },
        }
    })?;
    validate(wire, defaults)
}

/// Validates the wire struct field by field, in a fixed order so that the
/// same bad body always names the same field.
pub fn validate(
    wire: HookRequest,
    defaults: &HookDefaults,
) -> Result<DeliveryRequest, InvalidHook> {
    let event_type = required(wire.event_type.as_deref(), P_EVENT_TYPE)?;
    if event_type != EVENT_TYPE {
        return Err(InvalidHook::field(
            P_EVENT_TYPE,
            Problem::Invalid("is not com.okta.telephony.provider"),
        ));
    }
    let event_id = EventId::parse(required(wire.event_id.as_deref(), P_EVENT_ID)?)
        .map_err(|p| InvalidHook::field(P_EVENT_ID, p))?;
    let request_type = RequestType::parse(required(wire.request_type.as_deref(), P_REQUEST_TYPE)?)
        .map_err(|p| InvalidHook::field(P_REQUEST_TYPE, p))?;

    let data = wire.data.unwrap_or_default();
    let user_id = data
        .user_profile
        .and_then(|u| u.user_id)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()));
    let Some(mp) = data.message_profile else {
        return Err(InvalidHook::field(P_MESSAGE_PROFILE, Problem::Missing));
    };

    let phone = PhoneNumber::parse(
        required(mp.phone_number.as_deref(), P_PHONE)?,
        defaults.region,
    )
    .map_err(|e| {
        InvalidHook::field(
            P_PHONE,
            match e {
                crate::phone::PhoneError::Missing => Problem::Missing,
                crate::phone::PhoneError::BadCharacters => {
                    Problem::Invalid("contains characters other than digits and a leading '+'")
                }
                crate::phone::PhoneError::TooLong => Problem::Invalid("is too long"),
                crate::phone::PhoneError::Invalid => {
                    Problem::Invalid("is not a valid phone number")
                }
            },
        )
    })?;

    let otp = Otp::parse(required(mp.otp_code.as_deref(), P_OTP)?).map_err(|e| {
        InvalidHook::field(
            P_OTP,
            match e {
                crate::otp::OtpError::Missing => Problem::Missing,
                crate::otp::OtpError::NotDigits => Problem::Invalid("must contain only digits"),
                crate::otp::OtpError::Length => Problem::Invalid("must be 4 to 10 digits long"),
            },
        )
    })?;

    let otp_expires =
        DateTime::parse_from_rfc3339(required(mp.otp_expires.as_deref(), P_EXPIRES)?.trim())
            .map_err(|_| {
                InvalidHook::field(P_EXPIRES, Problem::Invalid("is not an RFC 3339 timestamp"))
            })?
            .with_timezone(&Utc);

    let channel =
        Channel::parse(required(mp.delivery_channel.as_deref(), P_CHANNEL)?).map_err(|e| {
            InvalidHook::field(
                P_CHANNEL,
                match e {
                    crate::channel::ChannelError::Missing => Problem::Missing,
                    crate::channel::ChannelError::Unknown => {
                        Problem::Invalid("is not SMS or voice")
                    }
                },
            )
        })?;

    // A missing or unreadable locale is not worth failing a login over: the
    // default language still gets the code through.
    let (locale, locale_from_request) = match mp.locale.as_deref().map(str::trim) {
        None | Some("") => (defaults.locale.clone(), false),
        Some(raw) => match Locale::parse(raw) {
            Ok(l) => (l, true),
            Err(_) => {
                tracing::warn!(
                    field = P_LOCALE,
                    "locale is not a language tag; using the default"
                );
                (defaults.locale.clone(), false)
            }
        },
    };

    if !request_type.is_known() {
        tracing::warn!(
            field = P_REQUEST_TYPE,
            request_type = request_type.as_str(),
            "unknown Okta telephony request type accepted"
        );
    }

    Ok(DeliveryRequest {
        event_id,
        request_type,
        phone,
        otp,
        otp_expires,
        channel,
        locale,
        locale_from_request,
        user_id,
    })
}

fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, InvalidHook> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(InvalidHook::field(field, Problem::Missing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> HookDefaults {
        HookDefaults {
            locale: Locale::parse("en").unwrap(),
            region: "US".parse().unwrap(),
        }
    }

    fn body(mp: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "eventId": "uS5871kJThSsU8qlA1LTcg",
            "eventTime": "2022-01-28T21:43:40.000Z",
            "eventType": "com.okta.telephony.provider",
            "requestType": "com.okta.user.telephony.mfa-verification",
            "data": { "userProfile": { "userId": "00uyxxSknGtK8022w0g3" }, "messageProfile": mp }
        }))
        .unwrap()
    }

    fn mp() -> serde_json::Value {
        json!({
            "msgTemplate": "Your code is 48213",
            "phoneNumber": "+14155552671",
            "otpExpires": "2022-01-28T21:48:34.321Z",
            "deliveryChannel": "SMS",
            "otpCode": "48213",
            "locale": "EN-US"
        })
    }

    fn with(key: &str, value: serde_json::Value) -> Vec<u8> {
        let mut m = mp();
        m[key] = value;
        body(m)
    }

    fn field_of(err: InvalidHook) -> String {
        err.location().to_owned()
    }

    #[test]
    fn parses_the_documented_example() {
        let r = parse_hook(&body(mp()), &defaults()).unwrap();
        assert_eq!(r.event_id.as_str(), "uS5871kJThSsU8qlA1LTcg");
        assert_eq!(r.request_type, RequestType::MfaVerification);
        assert_eq!(r.phone.e164(), "+14155552671");
        assert_eq!(r.otp.expose(), "48213");
        assert_eq!(r.channel, Channel::Sms);
        assert_eq!(r.locale.as_str(), "en-US");
        assert!(r.locale_from_request);
        assert_eq!(r.user_id.as_deref(), Some("00uyxxSknGtK8022w0g3"));
        assert_eq!(r.otp_expires.to_rfc3339(), "2022-01-28T21:48:34.321+00:00");
    }

    #[test]
    fn every_channel_and_locale_variant() {
        for (ch, want) in [
            ("SMS", Channel::Sms),
            ("sms", Channel::Sms),
            ("CALL", Channel::Voice),
            ("call", Channel::Voice),
            ("voice call", Channel::Voice),
            ("Voice", Channel::Voice),
            ("VOICE", Channel::Voice),
        ] {
            let r = parse_hook(&with("deliveryChannel", json!(ch)), &defaults()).unwrap();
            assert_eq!(r.channel, want, "{ch}");
        }
        for (loc, want) in [("EN-US", "en-US"), ("en", "en"), ("es-MX", "es-MX")] {
            let r = parse_hook(&with("locale", json!(loc)), &defaults()).unwrap();
            assert_eq!(r.locale.as_str(), want);
        }
        let mut m = mp();
        m.as_object_mut().unwrap().remove("locale");
        let r = parse_hook(&body(m), &defaults()).unwrap();
        assert_eq!(r.locale.as_str(), "en");
        assert!(!r.locale_from_request);
        let r = parse_hook(&with("locale", json!("not a locale")), &defaults()).unwrap();
        assert_eq!(r.locale.as_str(), "en");
    }

    #[test]
    fn phone_variants() {
        for p in [
            "+14155552671",
            "14155552671",
            "+1 415-555-2671",
            "415 555 2671",
        ] {
            let r = parse_hook(&with("phoneNumber", json!(p)), &defaults()).unwrap();
            assert_eq!(r.phone.e164(), "+14155552671", "{p}");
        }
    }

    #[test]
    fn request_types() {
        for (t, known) in [
            ("com.okta.user.telephony.pre-enrollment", true),
            ("com.okta.user.telephony.mfa-verification", true),
            ("com.okta.user.telephony.account-unlock", true),
            ("com.okta.user.telephony.password-reset", true),
            ("com.okta.user.telephony.something-new", false),
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
            v["requestType"] = json!(t);
            let r = parse_hook(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
            assert_eq!(r.request_type.as_str(), t);
            assert_eq!(r.request_type.is_known(), known);
        }
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["requestType"] = json!("com.example.other");
        let err = parse_hook(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap_err();
        assert_eq!(field_of(err), "requestType");
    }

    #[test]
    fn each_refusal_names_its_field() {
        let d = defaults();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (with("phoneNumber", json!("12")), P_PHONE),
            (with("phoneNumber", json!(null)), P_PHONE),
            (with("otpCode", json!("12ab5")), P_OTP),
            (with("otpCode", json!(48213)), P_OTP),
            (with("otpExpires", json!("tomorrow")), P_EXPIRES),
            (with("deliveryChannel", json!("fax")), P_CHANNEL),
            (body(json!(null)), P_MESSAGE_PROFILE),
        ];
        for (b, field) in cases {
            assert_eq!(field_of(parse_hook(&b, &d).unwrap_err()), field);
        }
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["eventType"] = json!("com.okta.event_hook");
        assert_eq!(
            field_of(parse_hook(&serde_json::to_vec(&v).unwrap(), &d).unwrap_err()),
            P_EVENT_TYPE
        );
        v["eventType"] = json!(EVENT_TYPE);
        v["eventId"] = json!("has space");
        assert_eq!(
            field_of(parse_hook(&serde_json::to_vec(&v).unwrap(), &d).unwrap_err()),
            P_EVENT_ID
        );
    }

    #[test]
    fn refusals_never_quote_values() {
        let d = defaults();
        for b in [
            with("otpCode", json!(48213)),
            with("otpCode", json!("48x13")),
            with("phoneNumber", json!(14155552671u64)),
        ] {
            let err = parse_hook(&b, &d).unwrap_err();
            let text = format!(
                "{err} {err:?} {}",
                serde_json::to_string(&err.to_response()).unwrap()
            );
            assert!(
                !text.contains("48213") && !text.contains("48x13") && !text.contains("4155552671"),
                "{text}"
            );
        }
        let err = parse_hook(b"\"48213\"", &d).unwrap_err();
        assert!(matches!(err, InvalidHook::Malformed { .. }));
        assert!(!format!("{err:?}").contains("48213"));
    }

    #[test]
    fn malformed_and_empty() {
        let d = defaults();
        assert_eq!(parse_hook(b"  ", &d).unwrap_err(), InvalidHook::EmptyBody);
        assert!(matches!(
            parse_hook(b"{\"eventId\":", &d).unwrap_err(),
            InvalidHook::Malformed { .. }
        ));
        assert!(matches!(
            parse_hook(b"[1,2]", &d).unwrap_err(),
            InvalidHook::Malformed { .. }
        ));
    }

    #[test]
    fn response_shapes() {
        let ok = HookResponse::action(ActionStatus::Successful, Some("m-1".into()), None);
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"commands":[{"type":"com.okta.telephony.action","value":[{"status":"SUCCESSFUL","provider":"AWS End User Messaging","transactionId":"m-1"}]}]})
        );
        let err = HookResponse::error(SUMMARY_NOT_DELIVERED, vec![]);
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"error":{"errorSummary":"Could not deliver the code"}})
        );
    }
}
