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
//!    of `data.context.request.ipAddress`), then the org's ceiling over
//!    all codes (`RATE_LIMIT_TOTAL`, on by default: what bounds the bill
//!    when everything else is fooled). A replayed eventId counts once.
//!
//! 4. **Learned blocks** (`LEARNED_GUARD`, with `CONVERSIONS=on`): a number
//!    prefix or a country that the guard blocked because codes sent to it
//!    were not used (see [`learn`]), or that an operator pinned with
//!    `telehook guard pin`. Checked before the rate counters, so a blocked
//!    range does not use up anyone's limits.
//!
//! What the learning guard judges, and when:
//! - only the kinds of code in `LEARNED_GUARD_REQUEST_TYPES` (enrollment by
//!   default: the requester types in the number, which is where pumping
//!   goes; reset and unlock codes never, since anyone who knows a username
//!   can ask for one), and only codes sent to a named Okta user (nothing
//!   else can show a code used);
//! - only once a code's fate is known ([`count_judged`]): used (Okta's
//!   event came), expired unused, or older than a person's typing time
//!   (`LEARNED_GUARD_JUDGE_AFTER_SECONDS`) without a use. A pending code
//!   counts for nothing, so a burst of real sign-ins cannot block its own
//!   range; a code judged unused that is used after all counts as used;
//! - a prefix is blocked at its threshold; a country only in
//!   `LEARNED_GUARD_COUNTRY=block`: by default the guard only says it would
//!   (an operator confirms with `telehook guard pin`).
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

pub mod settings;

use crate::crypto::keyed_hash;
use crate::domain::{Channel, DeliveryRequest, FailureCause, NumberType, prefix_of};
use crate::flows::Pipeline;
use crate::ledger::{
    BlockKind, GuardBlock, GuardBook, LedgerError, RateCount, RateCounts, RateDecision, Resolution,
    StatBump, StatCounts,
};
pub use settings::{
    AllowedCountries, GuardSettings, LearnMode, Learning, RateLimit, RefusalAnswer,
    guard_from_lookup,
};

/// The learning guard's scopes: a number prefix, a country.
pub const STAT_PREFIX: &str = "pfx";
pub const STAT_COUNTRY: &str = "cty";

/// The guard's refusals per hour, for `telehook report`: scope `refused`,
/// key `<country>:<prefix>:<kind>`, the count in `judged` (kept 35 days).
pub const REFUSED_SCOPE: &str = "refused";

/// Counts a refusal for the report, by country, prefix and kind. A failed
/// write loses one count, never the answer.
pub(crate) async fn count_refusal(
    pipeline: &Pipeline,
    req: &DeliveryRequest,
    refusal: &Refusal,
    now_ms: i64,
) {
    let prefix = prefix_of(&req.phone, pipeline.settings.guard.learning.prefix_digits);
    let country = req.phone.region().map_or("??", |r| r.as_str());
    let key = format!("{country}:{prefix}:{}", refusal.kind().as_str());
    let bump = StatBump {
        scope: REFUSED_SCOPE,
        key: &key,
        window: now_ms.div_euclid(3_600_000),
        judged: 1,
        conversions: 0,
        expires_at: now_ms / 1000 + 35 * 86_400,
    };
    if let Err(e) = pipeline.ledger.guard.bump(&bump).await {
        tracing::warn!(error = %e, "refusal not counted for the report");
        pipeline.settings.metrics.follow_up_error("stats");
    }
}
use crate::telemetry::metrics::RefusalKind;

/// Why a request was refused. Safe to log: no number, no user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Country {
        region: Option<String>,
    },
    NumberType {
        kind: &'static str,
    },
    Rate {
        scope: &'static str,
        count: u32,
    },
    /// A blocked prefix or country (`scope` is `pfx` or `cty`).
    Learned {
        scope: String,
        key: String,
        kind: BlockKind,
    },
    GuardUnavailable {
        error: String,
    },
}

impl Refusal {
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Country { .. } => RefusalKind::Country,
            Refusal::NumberType { .. } => RefusalKind::NumberType,
            Refusal::Rate { .. } | Refusal::GuardUnavailable { .. } => RefusalKind::Rate,
            Refusal::Learned { .. } => RefusalKind::Learned,
        }
    }

    /// The cause Okta is told about.
    pub fn cause(&self) -> FailureCause {
        match self {
            Refusal::Country { .. } => FailureCause::COUNTRY,
            Refusal::NumberType { .. } => FailureCause::NUMBER_TYPE,
            Refusal::Rate { scope, .. } => FailureCause::rate(scope),
            Refusal::Learned { .. } => FailureCause::LEARNED_BLOCK,
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

/// The checks that need no ledger, run again where a send happens that
/// the hook's check did not see: a queued job the dispatcher takes (the
/// allow-list may have changed since, and a queue is not a place to trust),
/// and a voice fallback call. `None` when the request may still go.
pub fn recheck(settings: &GuardSettings, req: &DeliveryRequest) -> Option<Refusal> {
    let region = req.phone.region().map(|r| r.as_str().to_owned());
    if !settings.countries.allows(region.as_deref()) {
        return Some(Refusal::Country { region });
    }
    type_refusal(req.channel, req.phone.number_type()).map(|kind| Refusal::NumberType { kind })
}

/// Runs every check for one request. `now_ms` picks the windows.
pub async fn check(
    settings: &GuardSettings,
    ledger: (&dyn RateCounts, &dyn GuardBook),
    hash_key: &crate::crypto::HashKey,
    req: &DeliveryRequest,
    now_ms: i64,
) -> Result<(), Refusal> {
    if let Some(refusal) = recheck(settings, req) {
        return Err(refusal);
    }
    let region = req.phone.region().map(|r| r.as_str().to_owned());
    let (rates, book) = ledger;
    check_blocks(settings, book, req, now_ms).await?;

    let mut counters: Vec<(&'static str, String, RateLimit)> = Vec::new();
    if let Some(limit) = settings.per_destination {
        counters.push(("dst", keyed_hash(hash_key, req.phone.e164()), limit));
    }
    if let (Some(limit), Some(user)) = (settings.per_user, req.user_id.as_ref()) {
        counters.push(("usr", user.key(crate::crypto::keyed(hash_key)), limit));
    }
    if let (Some(limit), Some(region)) = (settings.per_country, region.as_deref()) {
        // A country code is not personal data; no need to hash it.
        counters.push(("cty", region.to_owned(), limit));
    }
    if let (Some(limit), Some(ip)) = (settings.per_ip, req.context.client_ip) {
        counters.push(("ip", keyed_hash(hash_key, &ip.to_string()), limit));
    }
    if let Some(limit) = settings.total {
        // Last, so a code another limit refuses does not use up the
        // org's ceiling. One counter per window for the whole org: a
        // DynamoDB item takes far more updates a second than codes come.
        counters.push(("all", "all".to_owned(), limit));
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
        match rates.count(&count).await {
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

/// The learned and pinned blocks of the request's prefix and country
/// (while the learning guard is on). Also run before a voice fallback call.
pub(crate) async fn check_blocks(
    settings: &GuardSettings,
    book: &dyn GuardBook,
    req: &DeliveryRequest,
    now_ms: i64,
) -> Result<(), Refusal> {
    let region = req.phone.region().map(|r| r.as_str().to_owned());
    if settings.learning.mode != LearnMode::Off {
        let prefix = prefix_of(&req.phone, settings.learning.prefix_digits);
        let mut keys = vec![(STAT_PREFIX, prefix.as_str())];
        if let Some(r) = region.as_deref() {
            keys.push((STAT_COUNTRY, r));
        }
        match book.blocks(&keys).await {
            Ok(blocks) => {
                if let Some(b) = blocks.into_iter().find(|b| b.blocks(now_ms)) {
                    return Err(Refusal::Learned {
                        scope: b.scope,
                        key: b.key,
                        kind: b.kind,
                    });
                }
            }
            // Like a rate counter: a passing error lets the claim decide,
            // a refused read refuses.
            Err(e @ LedgerError::Unavailable(_)) => {
                tracing::warn!(error = %e, "guard blocks unavailable; the claim decides");
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

/// The window a time falls in, and when its counts may be deleted.
fn window_of(learning: &Learning, at_ms: i64) -> (i64, i64) {
    let window_ms = i64::try_from(learning.window.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let window = at_ms.div_euclid(window_ms);
    (window, ((window + 2) * window_ms) / 1000)
}

/// Adds to the prefix's and the country's counts of the window of the
/// code's send (so a window's rate is over the same codes); counts that
/// judged a code unused go to [`learn`]. A failed write loses that count
/// only.
async fn count(pipeline: &Pipeline, resolution: &Resolution, judged: u32, conversions: u32) {
    let learning = &pipeline.settings.guard.learning;
    if learning.mode == LearnMode::Off || !resolution.guard || judged + conversions == 0 {
        return;
    }
    let now_ms = pipeline.clock.now_ms();
    let (window, expires_at) = window_of(learning, resolution.sent_ms);
    for (scope, key) in [
        (STAT_PREFIX, resolution.prefix.as_deref()),
        (STAT_COUNTRY, resolution.country.as_deref()),
    ] {
        let Some(key) = key else { continue };
        let bump = StatBump {
            scope,
            key,
            window,
            judged,
            conversions,
            expires_at,
        };
        match pipeline.ledger.guard.bump(&bump).await {
            Ok(counts) if conversions == 0 => learn(pipeline, scope, key, counts, now_ms).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(scope, error = %e, "not counted for the learning guard");
                pipeline.settings.metrics.follow_up_error("stats");
            }
        }
    }
}

/// Counts a code the guard judges as judged unused (it expired unused, or
/// outlived the typing time), and blocks its prefix or country when the
/// rate says so ([`learn`]). A code judged before is not counted again.
pub(crate) async fn count_judged(pipeline: &Pipeline, resolution: &Resolution) {
    if resolution.was_judged {
        return;
    }
    count(pipeline, resolution, 1, 0).await;
}

/// Counts a used code: one more used, and one more judged unless it had
/// been judged unused before (it counted as judged then).
pub(crate) async fn count_conversion(pipeline: &Pipeline, resolution: &Resolution) {
    count(pipeline, resolution, u32::from(!resolution.was_judged), 1).await;
}

/// The judged codes a window needs before its rate counts.
fn min_judged(learning: &Learning, scope: &str) -> u32 {
    if scope == STAT_COUNTRY {
        learning.country_min_sends
    } else {
        learning.min_sends
    }
}

/// Whether these counts call for a block: enough judged codes, too few
/// used.
pub fn should_block(learning: &Learning, scope: &str, counts: StatCounts) -> bool {
    counts.judged >= min_judged(learning, scope)
        && u64::from(counts.conversions) * 100
            < u64::from(learning.min_conversion_percent) * u64::from(counts.judged)
}

/// Blocks a prefix or country for the cool-down when its window's counts
/// call for it ([`should_block`]); in monitor mode (a country's default),
/// says so instead. A block an operator pinned, allowed or recently lifted
/// is left alone.
pub(crate) async fn learn(
    pipeline: &Pipeline,
    scope: &str,
    key: &str,
    counts: StatCounts,
    now_ms: i64,
) {
    let learning = &pipeline.settings.guard.learning;
    if !should_block(learning, scope, counts) {
        return;
    }
    let reason = format!(
        "{} of {} judged codes used in the window ({}%), below {}%",
        counts.conversions,
        counts.judged,
        u64::from(counts.conversions) * 100 / u64::from(counts.judged.max(1)),
        learning.min_conversion_percent
    );
    match learning.mode_for(scope) {
        LearnMode::Off => return,
        LearnMode::Monitor => {
            // Once per `min_judged`, not on every code past the threshold.
            if !counts
                .judged
                .is_multiple_of(min_judged(learning, scope).max(1))
            {
                return;
            }
            if scope == STAT_COUNTRY && learning.mode == LearnMode::Block {
                tracing::warn!(
                    scope,
                    key,
                    reason,
                    "the learning guard would block a whole country; pin it with `telehook guard pin` to confirm"
                );
            } else {
                tracing::warn!(
                    scope,
                    key,
                    reason,
                    "the learning guard would block (monitor mode)"
                );
            }
            pipeline.settings.metrics.guard_block(scope, "monitor");
            return;
        }
        LearnMode::Block => {}
    }
    let block = GuardBlock {
        scope: scope.to_owned(),
        key: key.to_owned(),
        kind: BlockKind::Learned,
        until_ms: Some(
            now_ms + i64::try_from(learning.cool_down.as_millis()).unwrap_or(i64::MAX / 2),
        ),
        reason: reason.clone(),
        judged: counts.judged,
        conversions: counts.conversions,
        since_ms: now_ms,
    };
    match pipeline.ledger.guard.learn_block(&block, now_ms).await {
        Ok(true) => {
            tracing::warn!(scope, key, reason, "the learning guard blocked a range");
            pipeline.settings.metrics.guard_block(scope, "block");
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(scope, error = %e, "learned block not written");
            pipeline.settings.metrics.follow_up_error("block");
        }
    }
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

    #[test]
    fn blocks_need_volume_and_a_low_rate() {
        let l = Learning::on();
        let c = |judged, conversions| StatCounts {
            judged,
            conversions,
        };
        assert!(!should_block(&l, STAT_PREFIX, c(24, 0)), "too few judged");
        assert!(should_block(&l, STAT_PREFIX, c(25, 0)));
        assert!(should_block(&l, STAT_PREFIX, c(25, 4)), "16%");
        assert!(!should_block(&l, STAT_PREFIX, c(25, 5)), "20% is not below");
        assert!(!should_block(&l, STAT_COUNTRY, c(199, 0)));
        assert!(should_block(&l, STAT_COUNTRY, c(200, 0)));
    }
}
