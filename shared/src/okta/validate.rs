//! Validation: a hook body in, a [`DeliveryRequest`] out.
//!
//! Parsing is two steps. Serde reads the body into the loosely typed wire
//! structs of [`super::wire`]. Then [`parse_hook`] checks each field and
//! normalises it through the domain newtypes. Every refusal is an
//! [`InvalidHook`] naming the field's JSON path and the problem, never the
//! value: values include the OTP and the number.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::wire::{
    ContextRequest, EVENT_TYPE, ErrorCause, HookRequest, HookResponse, SUMMARY_INVALID,
};
use crate::domain::{
    Channel, ChannelError, DeliveryRequest, EventId, Locale, OktaText, Otp, OtpError, PhoneError,
    PhoneNumber, Problem, ReadNotes, Reading, Region, RequestType, SignInContext, UserRef,
};

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
                location_type: "body".to_owned(),
                location: self.location().to_owned(),
                domain: "request".to_owned(),
            }],
        )
    }
}

/// Settings that shape normalisation.
#[derive(Debug, Clone)]
pub struct HookDefaults {
    /// Used when `locale` is missing or is not a language tag.
    pub locale: Locale,
    /// Region for numbers without `+`: their national reading comes first.
    pub region: Region,
    /// Okta's documented OTP life, assumed when `otpExpires` is missing
    /// (`OTP_LIFE_SECONDS`, 5 minutes by default).
    pub otp_life: Duration,
    /// Send Okta's `msgTemplate` as the SMS text when it holds the code
    /// (`SMS_TEXT=okta`); voice always uses our templates.
    pub okta_sms_text: bool,
}

impl HookDefaults {
    /// English, `US`, a 5-minute OTP life, our own templates.
    pub fn new(locale: Locale, region: Region) -> Self {
        HookDefaults {
            locale,
            region,
            otp_life: DEFAULT_OTP_LIFE,
            okta_sms_text: false,
        }
    }
}

/// Okta's documented OTP life for SMS and voice factors.
pub const DEFAULT_OTP_LIFE: Duration = Duration::from_secs(300);

/// The longest life a code gets, from the moment the hook arrived: the
/// most `OTP_LIFE_SECONDS` allows. A later `otpExpires` (a clock that is
/// off, a body someone made up) would otherwise set the ledger's TTL, End
/// User Messaging's `TimeToLive` and the expiry checks days ahead.
pub const MAX_CODE_LIFE: Duration = Duration::from_secs(3600);

/// A UTF-8 byte-order mark, which some proxies and editors put before JSON.
const BOM: &[u8] = b"\xEF\xBB\xBF";

const P_EVENT_ID: &str = "eventId";
const P_EVENT_TYPE: &str = "eventType";
const P_REQUEST_TYPE: &str = "requestType";
const P_MESSAGE_PROFILE: &str = "data.messageProfile";
const P_PHONE: &str = "data.messageProfile.phoneNumber";
const P_OTP: &str = "data.messageProfile.otpCode";
const P_EXPIRES: &str = "data.messageProfile.otpExpires";
const P_CHANNEL: &str = "data.messageProfile.deliveryChannel";
const P_LOCALE: &str = "data.messageProfile.locale";

/// Reads and validates a hook body that arrived at `arrived`.
pub fn parse_hook(
    body: &[u8],
    defaults: &HookDefaults,
    arrived: DateTime<Utc>,
) -> Result<DeliveryRequest, InvalidHook> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
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
    validate(wire, defaults, arrived)
}

/// Validates the wire struct field by field, in a fixed order so that the
/// same bad body always names the same field. Only the fields we use are
/// checked; the envelope's other fields are not even read.
pub fn validate(
    wire: HookRequest,
    defaults: &HookDefaults,
    arrived: DateTime<Utc>,
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
    let mut notes = ReadNotes::default();
    let request_type = request_type(wire.request_type.as_deref(), &mut notes);

    let data = wire.data.unwrap_or_default();
    let user_id = data
        .user_profile
        .and_then(|u| u.user_id)
        .and_then(|s| printable(&s, 64))
        .map(UserRef::Okta);
    let request = data.context.and_then(|c| c.request).unwrap_or_default();
    let Some(mp) = data.message_profile else {
        return Err(InvalidHook::field(P_MESSAGE_PROFILE, Problem::Missing));
    };
    let phone = phone(mp.phone_number.as_deref(), defaults, &mut notes)?;
    let otp = otp(mp.otp_code.as_deref())?;
    let otp_expires = expiry(mp.otp_expires.as_deref(), defaults, arrived, &mut notes)?;
    let channel = channel(mp.delivery_channel.as_deref())?;
    let (locale, locale_from_request) = locale(mp.locale.as_deref(), defaults);
    let okta_text = match (defaults.okta_sms_text, channel, mp.msg_template.as_deref()) {
        (true, Channel::Sms, Some(text)) => OktaText::new(text, &otp).or_else(|| {
            tracing::warn!("msgTemplate does not hold the code; using our template");
            None
        }),
        _ => None,
    };
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
        context: SignInContext {
            correlation_id: request.id.as_deref().and_then(|s| printable(s, 128)),
            client_ip: client_ip(&request),
            okta_text,
            notes,
        },
    })
}

/// The request type never refuses a code: it only labels logs, metrics and
/// the provider's `Context`. Missing or unreadable is `unknown`; a new
/// `com.okta.user.telephony.*` value is kept. Each is logged and counted.
fn request_type(raw: Option<&str>, notes: &mut ReadNotes) -> RequestType {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        tracing::warn!(
            field = P_REQUEST_TYPE,
            "requestType missing; delivering as unknown"
        );
        return RequestType::Unknown;
    };
    match RequestType::parse(raw) {
        Ok(t) => {
            if !t.is_known() {
                tracing::warn!(
                    field = P_REQUEST_TYPE,
                    request_type = t.as_str(),
                    "unknown Okta telephony request type accepted"
                );
            }
            t
        }
        Err(_) => {
            // Not echoed: it is not one of Okta's values, so it could be
            // anything.
            notes.request_type_unreadable = true;
            tracing::warn!(
                field = P_REQUEST_TYPE,
                "requestType is not an Okta telephony type; delivering as unknown"
            );
            RequestType::Unknown
        }
    }
}

/// Text kept only if it is short printable ASCII: it goes into logs, keys
/// and `transactionMetadata`.
fn printable(raw: &str, max: usize) -> Option<String> {
    let s = raw.trim();
    (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

fn client_ip(request: &ContextRequest) -> Option<IpAddr> {
    let raw = request.ip_address.as_deref()?.trim();
    let ip = raw.parse::<IpAddr>().ok();
    if ip.is_none() && !raw.is_empty() {
        tracing::warn!("context ipAddress is not an IP address; no per-IP limit for this request");
    }
    ip
}

fn phone(
    raw: Option<&str>,
    defaults: &HookDefaults,
    notes: &mut ReadNotes,
) -> Result<PhoneNumber, InvalidHook> {
    let read = PhoneNumber::read(required(raw, P_PHONE)?, defaults.region);
    if let Ok((number, Reading::Ambiguous)) = &read {
        notes.phone_ambiguous = true;
        tracing::warn!(
            to = %number,
            default_region = defaults.region.as_str(),
            "number without + is valid nationally and with a country code; read nationally"
        );
    }
    read.map(|(number, _)| number).map_err(|e| {
        InvalidHook::field(
            P_PHONE,
            match e {
                PhoneError::Missing => Problem::Missing,
                PhoneError::BadCharacters => {
                    Problem::Invalid("contains characters other than digits and a leading '+'")
                }
                PhoneError::TooLong => Problem::Invalid("is too long"),
                PhoneError::Invalid => Problem::Invalid("is not a valid phone number"),
            },
        )
    })
}

fn otp(raw: Option<&str>) -> Result<Otp, InvalidHook> {
    Otp::parse(required(raw, P_OTP)?).map_err(|e| {
        InvalidHook::field(
            P_OTP,
            match e {
                OtpError::Missing => Problem::Missing,
                OtpError::NotDigits => Problem::Invalid("must contain only digits"),
                OtpError::Length => Problem::Invalid("must be 4 to 10 digits long"),
            },
        )
    })
}

/// `otpExpires`, or, when Okta leaves it out, its documented OTP life from
/// the hook's arrival.
fn expiry(
    raw: Option<&str>,
    defaults: &HookDefaults,
    arrived: DateTime<Utc>,
    notes: &mut ReadNotes,
) -> Result<DateTime<Utc>, InvalidHook> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        notes.expiry_assumed = true;
        let life = chrono::Duration::from_std(defaults.otp_life)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        return Ok(arrived + life);
    };
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            InvalidHook::field(P_EXPIRES, Problem::Invalid("is not an RFC 3339 timestamp"))
        })?;
    let latest = arrived
        + chrono::Duration::from_std(MAX_CODE_LIFE).unwrap_or_else(|_| chrono::Duration::hours(1));
    if at > latest {
        notes.expiry_capped = true;
        return Ok(latest);
    }
    Ok(at)
}

fn channel(raw: Option<&str>) -> Result<Channel, InvalidHook> {
    Channel::parse(required(raw, P_CHANNEL)?).map_err(|e| {
        InvalidHook::field(
            P_CHANNEL,
            match e {
                ChannelError::Missing => Problem::Missing,
                ChannelError::Unknown => Problem::Invalid("is not SMS or voice"),
            },
        )
    })
}

/// The request's locale, and whether it came from the request. A missing or
/// unreadable locale is not worth failing a login over: the default
/// language still gets the code through.
fn locale(raw: Option<&str>, defaults: &HookDefaults) -> (Locale, bool) {
    match raw.map(str::trim) {
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
    }
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
        HookDefaults::new(Locale::parse("en").unwrap(), "US".parse().unwrap())
    }

    fn arrived() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2022-01-28T21:43:41Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parse(body: &[u8], d: &HookDefaults) -> Result<DeliveryRequest, InvalidHook> {
        parse_hook(body, d, arrived())
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
        let r = parse(&body(mp()), &defaults()).unwrap();
        assert_eq!(r.event_id.as_str(), "uS5871kJThSsU8qlA1LTcg");
        assert_eq!(r.request_type, RequestType::MfaVerification);
        assert_eq!(r.phone.e164(), "+14155552671");
        assert_eq!(r.otp.expose(), "48213");
        assert_eq!(r.channel, Channel::Sms);
        assert_eq!(r.locale.as_str(), "en-US");
        assert!(r.locale_from_request);
        assert_eq!(r.user_id, Some("00uyxxSknGtK8022w0g3".into()));
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
            let r = parse(&with("deliveryChannel", json!(ch)), &defaults()).unwrap();
            assert_eq!(r.channel, want, "{ch}");
        }
        for (loc, want) in [("EN-US", "en-US"), ("en", "en"), ("es-MX", "es-MX")] {
            let r = parse(&with("locale", json!(loc)), &defaults()).unwrap();
            assert_eq!(r.locale.as_str(), want);
        }
        let mut m = mp();
        m.as_object_mut().unwrap().remove("locale");
        let r = parse(&body(m), &defaults()).unwrap();
        assert_eq!(r.locale.as_str(), "en");
        assert!(!r.locale_from_request);
        let r = parse(&with("locale", json!("not a locale")), &defaults()).unwrap();
        assert_eq!(r.locale.as_str(), "en");
        for odd in [json!(7), json!({"lang": "en"}), json!(["en"])] {
            let r = parse(&with("locale", odd), &defaults()).unwrap();
            assert_eq!(r.locale.as_str(), "en");
        }
    }

    #[test]
    fn phone_variants() {
        for p in [
            "+14155552671",
            "14155552671",
            "+1 415-555-2671",
            "415 555 2671",
        ] {
            let r = parse(&with("phoneNumber", json!(p)), &defaults()).unwrap();
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
            let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
            assert_eq!(r.request_type.as_str(), t);
            assert_eq!(r.request_type.is_known(), known);
        }
        for odd in [
            json!("com.example.other"),
            json!(5),
            json!("com.okta.user.telephony.bad value"),
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
            v["requestType"] = odd;
            let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
            assert_eq!(r.request_type, RequestType::Unknown);
            assert!(r.context.notes.request_type_unreadable);
        }
        // Neither text nor a number: as if absent.
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["requestType"] = json!({"x": 1});
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.request_type, RequestType::Unknown);
        assert!(!r.context.notes.request_type_unreadable);
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
            assert_eq!(field_of(parse(&b, &d).unwrap_err()), field);
        }
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["eventType"] = json!("com.okta.event_hook");
        assert_eq!(
            field_of(parse(&serde_json::to_vec(&v).unwrap(), &d).unwrap_err()),
            P_EVENT_TYPE
        );
        v["eventType"] = json!(EVENT_TYPE);
        v["eventId"] = json!("has space");
        assert_eq!(
            field_of(parse(&serde_json::to_vec(&v).unwrap(), &d).unwrap_err()),
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
            let err = parse(&b, &d).unwrap_err();
            let text = format!(
                "{err} {err:?} {}",
                serde_json::to_string(&err.to_response()).unwrap()
            );
            assert!(
                !text.contains("48213") && !text.contains("48x13") && !text.contains("4155552671"),
                "{text}"
            );
        }
        let err = parse(b"\"48213\"", &d).unwrap_err();
        assert!(matches!(err, InvalidHook::Malformed { .. }));
        assert!(!format!("{err:?}").contains("48213"));
    }

    #[test]
    fn malformed_and_empty() {
        let d = defaults();
        assert_eq!(parse(b"  ", &d).unwrap_err(), InvalidHook::EmptyBody);
        assert!(matches!(
            parse(b"{\"eventId\":", &d).unwrap_err(),
            InvalidHook::Malformed { .. }
        ));
        assert!(matches!(
            parse(b"[1,2]", &d).unwrap_err(),
            InvalidHook::Malformed { .. }
        ));
    }

    #[test]
    fn fields_we_do_not_use_are_never_type_checked() {
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["eventTypeVersion"] = json!(1.0);
        v["cloudEventVersion"] = json!(0.1);
        v["source"] = json!({"id": "calz6lVQA77AwFeEe0g3"});
        v["eventTime"] = json!(1643406220);
        v["contentType"] = json!(null);
        v["data"]["userProfile"] = json!({"userId": 12345, "login": 7, "firstName": null});
        v["data"]["context"] = json!({"request": {"id": 99, "url": 5, "ipAddress": ["x"]}});
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.user_id, Some("12345".into()));
        assert_eq!(r.context.correlation_id.as_deref(), Some("99"));
        assert_eq!(r.context.client_ip, None);
        v["data"]["userProfile"] = json!("not an object");
        v["data"]["context"] = json!([1]);
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.user_id, None);
    }

    #[test]
    fn missing_request_type_and_expiry_still_deliver() {
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v.as_object_mut().unwrap().remove("requestType");
        v["data"]["messageProfile"]
            .as_object_mut()
            .unwrap()
            .remove("otpExpires");
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.request_type, RequestType::Unknown);
        assert_eq!(r.request_type.short(), "unknown");
        assert_eq!(r.otp_expires, arrived() + chrono::Duration::minutes(5));
        assert!(r.context.notes.expiry_assumed);
        let mut d = defaults();
        d.otp_life = Duration::from_secs(600);
        let r = parse(&serde_json::to_vec(&v).unwrap(), &d).unwrap();
        assert_eq!(r.otp_expires, arrived() + chrono::Duration::minutes(10));
        // Far in the future: capped at the longest code life from arrival.
        let r = parse(&with("otpExpires", json!("2030-01-28T21:48:34.321Z")), &d).unwrap();
        assert_eq!(r.otp_expires, arrived() + chrono::Duration::hours(1));
        assert!(r.context.notes.expiry_capped);
        let r = parse(&body(mp()), &d).unwrap();
        assert!(!r.context.notes.expiry_capped);
        // Present but not a timestamp is still refused.
        assert_eq!(
            field_of(parse(&with("otpExpires", json!("soon")), &d).unwrap_err()),
            P_EXPIRES
        );
    }

    #[test]
    fn byte_order_mark_is_json() {
        let mut b = b"\xEF\xBB\xBF".to_vec();
        b.extend(body(mp()));
        assert_eq!(parse(&b, &defaults()).unwrap().otp.expose(), "48213");
    }

    #[test]
    fn context_gives_correlation_and_client_ip() {
        let mut v: serde_json::Value = serde_json::from_slice(&body(mp())).unwrap();
        v["data"]["context"] =
            json!({"request": {"id": "reqRgSk8IBBRhuo0YdlEDTmUw", "ipAddress": " 2001:db8::7 "}});
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(
            r.context.correlation_id.as_deref(),
            Some("reqRgSk8IBBRhuo0YdlEDTmUw")
        );
        assert_eq!(r.context.client_ip, Some("2001:db8::7".parse().unwrap()));
        v["data"]["context"]["request"]["id"] = json!("has space");
        let r = parse(&serde_json::to_vec(&v).unwrap(), &defaults()).unwrap();
        assert_eq!(r.context.correlation_id, None);
    }

    #[test]
    fn okta_text_only_when_asked_for_sms_and_holding_the_code() {
        let mut d = defaults();
        let r = parse(&body(mp()), &d).unwrap();
        assert!(r.context.okta_text.is_none());
        d.okta_sms_text = true;
        let r = parse(&body(mp()), &d).unwrap();
        assert_eq!(
            r.context.okta_text.as_ref().map(|t| t.expose()),
            Some("Your code is 48213")
        );
        let r = parse(&with("msgTemplate", json!("Your code is 99999")), &d).unwrap();
        assert!(r.context.okta_text.is_none());
        let r = parse(&with("deliveryChannel", json!("voice")), &d).unwrap();
        assert!(r.context.okta_text.is_none());
    }

    #[test]
    fn ambiguous_numbers_are_noted() {
        let r = parse(&with("phoneNumber", json!("6594821993")), &defaults()).unwrap();
        assert_eq!(r.phone.e164(), "+16594821993");
        assert!(r.context.notes.phone_ambiguous);
        let r = parse(&body(mp()), &defaults()).unwrap();
        assert!(!r.context.notes.phone_ambiguous);
    }
}
