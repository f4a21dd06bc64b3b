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
    // Read without tracking the path (a fifth of the read); only a body
    // that fails is read again with it, to name the field.
    let de = &mut serde_json::Deserializer::from_slice(body);
    let wire = match <HookRequest as serde::Deserialize>::deserialize(de) {
        Ok(wire) => wire,
        Err(_) => return Err(located(body)),
    };
    validate(wire, defaults, arrived)
}

/// Why `body` is not a hook request, and where: read again with the path
/// tracked.
fn located(body: &[u8]) -> InvalidHook {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let Err(e) = serde_path_to_error::deserialize::<_, HookRequest>(de) else {
        // The same bytes read the same way failed a moment ago.
        return InvalidHook::Malformed {
            category: "syntax error",
            line: 1,
            column: 1,
        };
    };
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
mod tests;
