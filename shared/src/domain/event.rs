//! Okta's identifiers for one hook call: the `eventId` (our idempotency key)
//! and the request type (why Okta wants a code).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Problem;

const REQUEST_TYPE_PREFIX: &str = "com.okta.user.telephony.";

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
    /// Accepted (Okta adds flows), logged and counted.
    Other(String),
    /// No `requestType` at all: some samples and older orgs omit it. The
    /// code is still delivered; the request type is recorded as `unknown`.
    Unknown,
}

/// How an absent request type is written in jobs, logs and `Context`.
pub const UNKNOWN_REQUEST_TYPE: &str = "unknown";

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
            RequestType::Unknown => UNKNOWN_REQUEST_TYPE,
        }
    }

    /// Reads a request type as a job stores it: [`RequestType::as_str`].
    pub fn from_stored(raw: &str) -> Result<Self, Problem> {
        if raw == UNKNOWN_REQUEST_TYPE {
            return Ok(RequestType::Unknown);
        }
        Self::parse(raw)
    }

    /// The short name (`mfa-verification`), for logs, metrics and `Context`.
    pub fn short(&self) -> &str {
        self.as_str().trim_start_matches(REQUEST_TYPE_PREFIX)
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, RequestType::Other(_) | RequestType::Unknown)
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
