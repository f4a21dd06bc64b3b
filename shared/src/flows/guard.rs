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
//!    user id), and optionally per country and per end-user IP (keyed hash
//!    of `data.context.request.ipAddress`). A replayed eventId counts once.
//!
//! A refusal is answered as `on_refusal` says: by default with an error
//! object, so Okta falls back to its own providers; with `block`, so that it
//! does not (see [`RefusalAnswer`]).
//!
//! When the ledger fails: a non-retryable error (access denied, missing
//! table) refuses, because a misconfigured guard must not open the gates; a
//! retryable one (throttling, timeouts) lets the request through to the claim,
//! which needs the same ledger and fails closed on its own. So a brief
//! outage cannot lock users out, and a broken setup cannot be abused.

pub use crate::config::{AllowedCountries, GuardSettings, RateLimit, RefusalAnswer};
use crate::crypto::keyed_hash;
use crate::domain::{Channel, DeliveryRequest, FailureCause, NumberType};
use crate::ledger::{Ledger, LedgerError, RateCount, RateDecision};
use crate::telemetry::metrics::RefusalKind;

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

    /// The cause Okta is told about.
    pub fn cause(&self) -> FailureCause {
        match self {
            Refusal::Country { .. } => FailureCause::COUNTRY,
            Refusal::NumberType { .. } => FailureCause::NUMBER_TYPE,
            Refusal::Rate { scope, .. } => FailureCause::rate(scope),
            Refusal::GuardUnavailable { .. } => FailureCause::GUARD_UNAVAILABLE,
        }
    }
}

fn type_refusal(channel: Channel, kind: NumberType) -> Option<&'static str> {
    match (channel, kind) {
        (_, NumberType::PremiumRate) => Some("premium-rate"),
        (Channel::Sms, NumberType::FixedLine) => Some("fixed-line (cannot receive SMS)"),
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
    if let (Some(limit), Some(ip)) = (settings.per_ip, req.context.client_ip) {
        counters.push(("ip", keyed_hash(hash_key, &ip.to_string()), limit));
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
    fn number_types() {
        assert_eq!(
            type_refusal(Channel::Sms, NumberType::FixedLine),
            Some("fixed-line (cannot receive SMS)")
        );
        assert_eq!(type_refusal(Channel::Voice, NumberType::FixedLine), None);
        assert!(type_refusal(Channel::Voice, NumberType::PremiumRate).is_some());
        assert_eq!(
            type_refusal(Channel::Sms, NumberType::FixedLineOrMobile),
            None
        );
        assert_eq!(type_refusal(Channel::Sms, NumberType::Unknown), None);
    }
}
