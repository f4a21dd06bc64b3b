//! The toll-fraud guard, checked before any claim or send.
//!
//! SMS pumping is how an OTP endpoint costs its owner money: a fraudster
//! drives sign-ins to premium or far-away numbers and collects a share of
//! the termination fees. Okta rate-limits too, but the bill is ours. In order:
//!
//! 1. **Country allow-list** (`ALLOWED_COUNTRIES`, ISO codes, default
//!    `US,CA`; `*` allows all).
//! 2. **Number type**: where the metadata can tell, SMS to a fixed line (it
//!    cannot receive one) and anything to a premium-rate number is refused.
//!    Numbers whose type is unknown pass: refusing them would refuse real
//!    users whose ranges the metadata lags behind.
//! 3. **Windowed rate limits**, as atomic counters in the ledger: per
//!    destination (keyed hash of the number), per Okta user (keyed hash of the
//!    user id), and optionally per country. A replayed eventId counts once.
//!
//! When the ledger fails: a non-retryable error (access denied, missing
//! table) refuses, because a misconfigured guard must not open the gates; a
//! retryable one (throttling, timeouts) lets the request through to the claim,
//! which needs the same ledger and fails closed on its own. So a brief
//! outage cannot lock users out, and a broken setup cannot be abused.

use std::collections::BTreeSet;
use std::time::Duration;

use phonenumber::Type;

use crate::crypto::keyed_hash;
use crate::domain::{Channel, DeliveryRequest};
use crate::ledger::{Ledger, LedgerError, RateCount, RateDecision};
use crate::telemetry::metrics::RefusalKind;

/// Which destination countries may receive codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedCountries {
    All,
    Only(BTreeSet<String>),
}

impl AllowedCountries {
    /// `*`, or a comma-separated list of ISO 3166 alpha-2 codes.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(AllowedCountries::All);
        }
        let mut set = BTreeSet::new();
        for code in s.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let region: crate::domain::phone::Region = code
                .parse()
                .map_err(|_| format!("{code} is not an ISO country code"))?;
            set.insert(region.as_str().to_owned());
        }
        if set.is_empty() {
            return Err("no country listed (use * to allow all)".into());
        }
        Ok(AllowedCountries::Only(set))
    }

    pub fn allows(&self, region: Option<&str>) -> bool {
        match self {
            AllowedCountries::All => true,
            AllowedCountries::Only(set) => region.is_some_and(|r| set.contains(r)),
        }
    }
}

/// At most `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    /// `"5/600"` (5 per 600 seconds); `"off"` or `"0"` for no limit.
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s == "0" {
            return Ok(None);
        }
        let (max, secs) = s
            .split_once('/')
            .ok_or("expected COUNT/SECONDS, e.g. 5/600, or off")?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| "COUNT is not a whole number")?;
        let secs: u64 = secs
            .trim()
            .parse()
            .map_err(|_| "SECONDS is not a whole number")?;
        if max == 0 || secs == 0 {
            return Err("COUNT and SECONDS must be positive".into());
        }
        Ok(Some(RateLimit {
            max,
            window: Duration::from_secs(secs),
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSettings {
    pub countries: AllowedCountries,
    pub per_destination: Option<RateLimit>,
    pub per_user: Option<RateLimit>,
    /// Off by default: a legitimate morning login wave must not be refused.
    pub per_country: Option<RateLimit>,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            countries: AllowedCountries::Only(
                ["US", "CA"].iter().map(|s| (*s).to_owned()).collect(),
            ),
            per_destination: Some(RateLimit {
                max: 5,
                window: Duration::from_secs(600),
            }),
            per_user: Some(RateLimit {
                max: 10,
                window: Duration::from_secs(3600),
            }),
            per_country: None,
        }
    }
}

impl GuardSettings {
    /// No country, type or rate checks: for tests that exercise other parts.
    pub fn open() -> Self {
        GuardSettings {
            countries: AllowedCountries::All,
            per_destination: None,
            per_user: None,
            per_country: None,
        }
    }
}

/// Why a request was refused. Safe to log: no number, no user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Country { region: Option<String> },
    NumberType { kind: &'static str },
    Rate { scope: &'static str, count: u32 },
    GuardUnavailable { error: String },
}

impl Refusal {
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Country { .. } => RefusalKind::Country,
            Refusal::NumberType { .. } => RefusalKind::NumberType,
            Refusal::Rate { .. } | Refusal::GuardUnavailable { .. } => RefusalKind::Rate,
        }
    }
}

fn type_refusal(channel: Channel, kind: Type) -> Option<&'static str> {
    match (channel, kind) {
        (_, Type::PremiumRate) => Some("premium-rate"),
        (Channel::Sms, Type::FixedLine) => Some("fixed-line (cannot receive SMS)"),
        _ => None,
    }
}

/// Runs every check for one request. `now_ms` picks the windows.
pub async fn check(
    settings: &GuardSettings,
    ledger: &dyn Ledger,
    hash_key: &[u8],
    req: &DeliveryRequest,
    now_ms: i64,
) -> Result<(), Refusal> {
    let region = req.phone.region().map(|r| r.as_str().to_owned());
    if !settings.countries.allows(region.as_deref()) {
        return Err(Refusal::Country { region });
    }
    if let Some(kind) = type_refusal(req.channel, req.phone.number_type()) {
        return Err(Refusal::NumberType { kind });
    }

    let mut counters: Vec<(&'static str, String, RateLimit)> = Vec::new();
    if let Some(limit) = settings.per_destination {
        counters.push(("dst", keyed_hash(hash_key, req.phone.e164()), limit));
    }
    if let (Some(limit), Some(user)) = (settings.per_user, req.user_id.as_deref()) {
        counters.push(("usr", keyed_hash(hash_key, user), limit));
    }
    if let (Some(limit), Some(region)) = (settings.per_country, region.as_deref()) {
        // A country code is not personal data; no need to hash it.
        counters.push(("cty", region.to_owned(), limit));
    }
    for (scope, key, limit) in counters {
        let window_ms = i64::try_from(limit.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let window = now_ms.div_euclid(window_ms);
        let count = RateCount {
            scope,
            key: &key,
            window,
            limit: limit.max,
            event_id: &req.event_id,
            // Kept one window past its end, then the TTL removes it.
            expires_at: ((window + 2) * window_ms) / 1000,
        };
        match ledger.count(&count).await {
            Ok(RateDecision::Allowed { .. }) => {}
            Ok(RateDecision::Refused { count }) => return Err(Refusal::Rate { scope, count }),
            Err(e @ LedgerError::Unavailable(_)) => {
                tracing::warn!(scope, error = %e, "rate counter unavailable; the claim decides");
            }
            Err(e) => {
                return Err(Refusal::GuardUnavailable {
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_countries_and_limits() {
        assert_eq!(AllowedCountries::parse("*").unwrap(), AllowedCountries::All);
        let c = AllowedCountries::parse(" us, ca ,GB").unwrap();
        assert!(
            c.allows(Some("GB"))
                && c.allows(Some("US"))
                && !c.allows(Some("NG"))
                && !c.allows(None)
        );
        assert!(AllowedCountries::parse("USA").is_err());
        assert!(AllowedCountries::parse(" , ").is_err());
        assert_eq!(
            RateLimit::parse("5/600").unwrap(),
            Some(RateLimit {
                max: 5,
                window: Duration::from_secs(600)
            })
        );
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        assert!(
            RateLimit::parse("5").is_err()
                && RateLimit::parse("0/60").is_err()
                && RateLimit::parse("a/b").is_err()
        );
    }

    #[test]
    fn number_types() {
        assert_eq!(
            type_refusal(Channel::Sms, Type::FixedLine),
            Some("fixed-line (cannot receive SMS)")
        );
        assert_eq!(type_refusal(Channel::Voice, Type::FixedLine), None);
        assert!(type_refusal(Channel::Voice, Type::PremiumRate).is_some());
        assert_eq!(type_refusal(Channel::Sms, Type::FixedLineOrMobile), None);
        assert_eq!(type_refusal(Channel::Sms, Type::Unknown), None);
    }
}
