//! The validated request to deliver one code, whatever door it came in by
//! (a hook, a queued job, a replayed job), and what Okta told us about the
//! sign-in that asked for it.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::{Channel, EventId, Locale, Otp, PhoneNumber, RequestType};

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
    /// Who asked: Okta's user id at the ingress, its keyed hash once the
    /// request has been queued. For per-user limits and conversion matching.
    pub user_id: Option<UserRef>,
    /// The sign-in's context: correlation id, client IP, Okta's own text.
    pub context: SignInContext,
}

/// The user a code is for. Okta's user id is not personal data on its own,
/// but it names a person in the org's directory, so it is only ever logged
/// or stored as its keyed hash: the ingress reads the id, and a queued job
/// (which sits in the queue and, failing, in the dead-letter queue) carries
/// only the hash. Both answer the same [`UserRef::key`], so a limit counted
/// at the ingress and a send matched after the dispatcher agree.
#[derive(Clone, PartialEq, Eq)]
pub enum UserRef {
    /// `data.userProfile.userId`, as Okta sent it.
    Okta(String),
    /// The keyed hash of the id, as a queued job carries it.
    Keyed(String),
}

impl UserRef {
    /// The keyed hash every counter and index is keyed by; `hash` is the
    /// keyed hash (`crypto::keyed`), applied only to a raw id.
    pub fn key(&self, hash: impl FnOnce(&str) -> String) -> String {
        match self {
            UserRef::Okta(id) => hash(id),
            UserRef::Keyed(key) => key.clone(),
        }
    }
}

impl fmt::Debug for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Okta(_) => f.write_str("UserRef::Okta(..)"),
            UserRef::Keyed(_) => f.write_str("UserRef::Keyed(..)"),
        }
    }
}

impl From<&str> for UserRef {
    fn from(id: &str) -> Self {
        UserRef::Okta(id.to_owned())
    }
}

impl From<String> for UserRef {
    fn from(id: String) -> Self {
        UserRef::Okta(id)
    }
}

/// What Okta tells us about the sign-in beyond the code itself, and how the
/// request was read. All optional: a body without them is still delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInContext {
    /// `data.context.request.id`: the id of the Okta request that asked for
    /// the code, as it appears in Okta's System Log. Safe to log and store.
    pub correlation_id: Option<String>,
    /// `data.context.request.ipAddress`: the end user's address. Used for
    /// the per-IP limit (keyed hash) and logged only as its network.
    pub client_ip: Option<IpAddr>,
    /// Okta's `msgTemplate`, kept only when the SMS is to be sent as Okta
    /// wrote it (`SMS_TEXT=okta`) and it holds the code.
    pub okta_text: Option<OktaText>,
    /// How the request was read, for the compatibility metrics.
    pub notes: ReadNotes,
}

/// Things worth counting about how a request was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadNotes {
    /// The number had no `+` and was valid both nationally and with a
    /// leading country code; the national reading was taken.
    pub phone_ambiguous: bool,
    /// `otpExpires` was missing; the configured OTP life was assumed.
    pub expiry_assumed: bool,
    /// `otpExpires` lay further ahead than the longest code life; capped.
    pub expiry_capped: bool,
    /// `requestType` was present but not an Okta telephony type (or not a
    /// string); delivered as `unknown`.
    pub request_type_unreadable: bool,
}

/// Okta's own SMS text. It holds the code: `Debug` hides it, and only the
/// message to the provider (and the local outbox) ever sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct OktaText(String);

impl OktaText {
    /// Okta's own texts take one part, two in some languages; more is a
    /// text someone changed to cost more per code.
    pub const MAX_PARTS: usize = 2;

    /// Keeps Okta's text only when it is usable as the whole message: it
    /// holds the code, takes at most [`Self::MAX_PARTS`] SMS parts, and
    /// carries no link (a code message with a link is what phishing looks
    /// like, and carriers filter it). Otherwise our own template is sent.
    pub fn new(text: &str, otp: &Otp) -> Option<Self> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let link = lower.contains("://") || lower.contains("www.");
        (text.contains(otp.expose()) && !link && super::sms::sms_parts(text) <= Self::MAX_PARTS)
            .then(|| OktaText(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OktaText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OktaText(<redacted>)")
    }
}

/// The network an address belongs to, for logs: the /24 of an IPv4 address,
/// the /48 of an IPv6 one. Enough to see a pumping campaign's origin, not
/// enough to name a user.
pub fn ip_network(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_hide_the_host() {
        assert_eq!(
            ip_network(&"203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            ip_network(&"2001:db8:85a3:8d3:1319:8a2e:370:7348".parse().unwrap()),
            "2001:db8:85a3::/48"
        );
    }

    #[test]
    fn okta_text_needs_the_code() {
        let otp = Otp::parse("739201").unwrap();
        assert!(OktaText::new("Your code is 739201", &otp).is_some());
        assert!(OktaText::new("Your code is 111111", &otp).is_none());
        // Two parts at most: 306 GSM-7 septets, 134 UCS-2 units.
        let long = format!("Your code is 739201.{}", " ".repeat(280));
        assert!(OktaText::new(&format!("{long}x"), &otp).is_some());
        assert!(OktaText::new(&format!("{long}{}", "x".repeat(10)), &otp).is_none());
        assert!(OktaText::new(&format!("認証コード 739201{}", "認".repeat(120)), &otp).is_some());
        assert!(OktaText::new(&format!("認証コード 739201{}", "認".repeat(130)), &otp).is_none());
        // No links, whatever their case.
        for linked in [
            "Your code is 739201. Sign in at https://example.com",
            "Your code is 739201 HTTP://evil.example",
            "739201 is your code. www.example.com",
        ] {
            assert!(OktaText::new(linked, &otp).is_none(), "{linked}");
        }
        let t = OktaText::new("Your code is 739201", &otp).unwrap();
        assert!(!format!("{t:?}").contains("739201"));
    }
}
