//! The toll-fraud guard's policy: the allow-list, the rate limits, the
//! org's ceiling, how a refusal is answered, and the learning guard's
//! settings, read from `ALLOWED_COUNTRIES`, `RATE_LIMIT_*`,
//! `GUARD_REFUSAL`, `CONVERSIONS` and `LEARNED_GUARD*`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::{ConfigError, Env, Problems, invalid};
use crate::domain::UseSignal;
use crate::domain::phone::{Reach, Region};

/// The toll-fraud guard from `ALLOWED_COUNTRIES` and `RATE_LIMIT_PER_*`.
/// Local mode reads it too, so the same settings apply on one machine.
pub fn guard_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<GuardSettings, ConfigError> {
    let env = Env(&get);
    let mut p = Problems::default();
    let mut g = GuardSettings::default();
    let countries = env.opt("ALLOWED_COUNTRIES").map(|v| {
        AllowedCountries::parse(&v).map_err(|reason| ConfigError::Invalid {
            var: "ALLOWED_COUNTRIES",
            reason,
        })
    });
    if let Some(countries) = countries.and_then(|c| p.take(c)) {
        g.countries = countries;
    }
    for (var, slot) in [
        ("RATE_LIMIT_PER_DESTINATION", &mut g.per_destination),
        ("RATE_LIMIT_PER_USER", &mut g.per_user),
        ("RATE_LIMIT_PER_COUNTRY", &mut g.per_country),
        ("RATE_LIMIT_PER_IP", &mut g.per_ip),
        ("RATE_LIMIT_TOTAL", &mut g.total),
    ] {
        let limit = env
            .opt(var)
            .map(|v| RateLimit::parse(&v).map_err(|reason| ConfigError::Invalid { var, reason }));
        if let Some(limit) = limit.and_then(|l| p.take(l)) {
            *slot = limit;
        }
    }
    let refusal = env.choice(
        "GUARD_REFUSAL",
        RefusalAnswer::Fallback,
        &[
            ("fallback", RefusalAnswer::Fallback),
            ("block", RefusalAnswer::Block),
        ],
    );
    if let Some(answer) = p.take(refusal) {
        g.on_refusal = answer;
    }
    if let Some(learning) = p.take(learning(&env)) {
        g.learning = learning;
    }
    p.finish().map(|()| g)
}

/// `CONVERSIONS` and the `LEARNED_GUARD*` settings.
fn learning(env: &Env<'_>) -> Result<Learning, ConfigError> {
    let mut p = Problems::default();
    let mut l = Learning::default();
    if let Some(on) = p.take(env.on_off("CONVERSIONS", false)) {
        l.conversions = on;
    }
    // The guard learns from conversions, so it follows them unless told.
    let default_mode = if l.conversions {
        LearnMode::Block
    } else {
        LearnMode::Off
    };
    l.mode = p
        .take(env.choice("LEARNED_GUARD", default_mode, MODES))
        .unwrap_or(default_mode);
    if l.mode != LearnMode::Off && !l.conversions {
        p.push(invalid(
            "LEARNED_GUARD",
            "needs CONVERSIONS=on (and the Okta event hook): without conversions every range would look unused",
        ));
    }
    if let Some(d) = p.take(env.number("LEARNED_GUARD_PREFIX_DIGITS", 7, 6..=8)) {
        l.prefix_digits = usize::try_from(d).unwrap_or(7);
    }
    for (var, slot, range) in [
        ("LEARNED_GUARD_MIN_SENDS", &mut l.min_sends, 5..=1_000_000),
        (
            "LEARNED_GUARD_COUNTRY_MIN_SENDS",
            &mut l.country_min_sends,
            5..=10_000_000,
        ),
        (
            "LEARNED_GUARD_MIN_CONVERSION_PERCENT",
            &mut l.min_conversion_percent,
            1..=100,
        ),
    ] {
        if let Some(n) = p.take(env.number(var, *slot, range)) {
            *slot = n;
        }
    }
    if let Some(v) = env.opt("LEARNED_GUARD_REQUEST_TYPES") {
        match judged_types(&v) {
            Ok(judged) => l.judged = judged,
            Err(why) => p.push(invalid("LEARNED_GUARD_REQUEST_TYPES", why)),
        }
    }
    l.country_mode = p
        .take(env.choice("LEARNED_GUARD_COUNTRY", LearnMode::Monitor, MODES))
        .unwrap_or(LearnMode::Monitor);
    let judge_after = env.secs_within(
        "LEARNED_GUARD_JUDGE_AFTER_SECONDS",
        60,
        10..=3600,
        "expected 10 seconds to 1 hour",
    );
    if let Some(d) = p.take(judge_after) {
        l.judge_after = d;
    }
    for (var, slot) in [
        ("LEARNED_GUARD_WINDOW_SECONDS", &mut l.window),
        ("LEARNED_GUARD_COOL_DOWN_SECONDS", &mut l.cool_down),
    ] {
        let d = env.secs_within(
            var,
            slot.as_secs(),
            60..=7 * 86_400,
            "expected 60 seconds to 7 days",
        );
        if let Some(d) = p.take(d) {
            *slot = d;
        }
    }
    p.finish().map(|()| l)
}

/// The learning guard's modes, as `LEARNED_GUARD` and
/// `LEARNED_GUARD_COUNTRY` name them.
const MODES: &[(&str, LearnMode)] = &[
    ("off", LearnMode::Off),
    ("monitor", LearnMode::Monitor),
    ("block", LearnMode::Block),
];

/// `LEARNED_GUARD_REQUEST_TYPES`: Okta's request types, with or without
/// the `com.okta.user.telephony.` prefix, comma-separated.
fn judged_types(v: &str) -> Result<Vec<UseSignal>, &'static str> {
    let mut out = Vec::new();
    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let t = t.to_ascii_lowercase();
        let t = t.strip_prefix("com.okta.user.telephony.").unwrap_or(&t);
        let signal = match t {
            "pre-enrollment" => UseSignal::Enrollment,
            "mfa-verification" => UseSignal::SignIn,
            "password-reset" | "account-unlock" => {
                return Err(
                    "password-reset and account-unlock codes cannot be judged: anyone who knows a username can ask for them",
                );
            }
            _ => return Err("expected pre-enrollment and/or mfa-verification"),
        };
        if !out.contains(&signal) {
            out.push(signal);
        }
    }
    if out.is_empty() {
        return Err("expected pre-enrollment and/or mfa-verification");
    }
    Ok(out)
}

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
            let region: Region = code
                .parse()
                .map_err(|_| format!("{code} is not an ISO country code"))?;
            set.insert(region.as_str().to_owned());
        }
        if set.is_empty() {
            return Err("no country listed (use * to allow all)".into());
        }
        Ok(AllowedCountries::Only(set))
    }

    /// The regions a code can go to, for the phone metadata to build:
    /// these, and `home` (the region of numbers written without `+`).
    pub fn reach(&self, home: Option<Region>) -> Reach {
        match self {
            AllowedCountries::All => Reach::Everywhere,
            AllowedCountries::Only(set) => Reach::Regions(
                home.into_iter()
                    .chain(set.iter().filter_map(|c| c.parse().ok()))
                    .collect(),
            ),
        }
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
    /// Per end-user IP (`data.context.request.ipAddress`), as a keyed hash.
    /// Off by default: offices and carrier NAT put many users behind one
    /// address. `RATE_LIMIT_PER_IP=20/600` is a reasonable start.
    pub per_ip: Option<RateLimit>,
    /// Every code, every destination: the spending ceiling that holds when
    /// all else is fooled (a leaked credential, a pumping run spread over
    /// many users and numbers). On by default, sized for an org's busiest
    /// hour with room to spare; a refusal is answered as `on_refusal` says
    /// (by default Okta sends the code through its own providers).
    pub total: Option<RateLimit>,
    /// What Okta hears when the guard refuses.
    pub on_refusal: RefusalAnswer,
    /// Conversion tracking and the guard that learns from it.
    pub learning: Learning,
}

/// Conversion tracking and the learning guard (`CONVERSIONS`,
/// `LEARNED_GUARD*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learning {
    /// Sends are noted, an expiry check is scheduled for each, and
    /// message feedback is given. Needs the Okta event hook: without it
    /// every code would end `UNUSED`. Off by default.
    pub conversions: bool,
    pub mode: LearnMode,
    /// How many leading digits of the E.164 number make a prefix (6 to 8).
    pub prefix_digits: usize,
    /// Sends to one prefix in one window before its conversion rate counts.
    pub min_sends: u32,
    /// The same for a whole country.
    pub country_min_sends: u32,
    /// Below this share of conversions (percent) a prefix or country is
    /// blocked.
    pub min_conversion_percent: u32,
    pub window: Duration,
    /// How long a learned block holds.
    pub cool_down: Duration,
    /// The kinds of code the guard judges (`LEARNED_GUARD_REQUEST_TYPES`):
    /// enrollment by default, the one where the requester types in the
    /// number, which is where pumping goes. MFA codes may be added where
    /// only a signed-in user can ask for one. Reset and unlock codes never:
    /// anyone who knows a username can ask for them, so counting them would
    /// let an outsider block the org's own ranges.
    pub judged: Vec<UseSignal>,
    /// A code is judged unused once it expired unused, or once it is this
    /// old without a sign-in (`LEARNED_GUARD_JUDGE_AFTER_SECONDS`, 60 s:
    /// a person's typing time), whichever comes first. Codes younger than
    /// that are pending and count for nothing; a judged code that is used
    /// after all still counts as used.
    pub judge_after: Duration,
    /// What the guard does at a country's threshold
    /// (`LEARNED_GUARD_COUNTRY`): monitor by default, whatever
    /// `LEARNED_GUARD` says. One country's sign-ins can dip for ordinary
    /// reasons, and a blocked country locks out everyone in it, so a
    /// country block is an operator's decision (`telehook guard pin`)
    /// unless set to `block`.
    pub country_mode: LearnMode,
}

/// What the learning guard does with what it learned (`LEARNED_GUARD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnMode {
    Off,
    /// Logs and counts the blocks it would make; refuses nothing.
    Monitor,
    /// Blocks.
    Block,
}

impl LearnMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            LearnMode::Off => "off",
            LearnMode::Monitor => "monitor",
            LearnMode::Block => "block",
        }
    }
}

impl Default for Learning {
    fn default() -> Self {
        Learning {
            conversions: false,
            mode: LearnMode::Off,
            prefix_digits: 7,
            // A prefix is a carrier's block of thousands of lines: 25 codes
            // to one in an hour is a busy office at most, and one user
            // retrying is stopped far sooner by the per-user limit.
            min_sends: 25,
            country_min_sends: 200,
            min_conversion_percent: 20,
            window: Duration::from_secs(3600),
            cool_down: Duration::from_secs(3600),
            // Where the requester chose the number: enrollment.
            judged: UseSignal::ALL
                .into_iter()
                .filter(UseSignal::requester_chooses_number)
                .collect(),
            judge_after: Duration::from_secs(60),
            country_mode: LearnMode::Monitor,
        }
    }
}

impl Learning {
    /// Whether the guard judges codes of this kind.
    pub fn judges(&self, signal: Option<UseSignal>) -> bool {
        signal.is_some_and(|s| self.judged.contains(&s))
    }

    /// What the guard does at a threshold of this scope: a country never
    /// does more than `country_mode` says.
    pub fn mode_for(&self, scope: &str) -> LearnMode {
        if scope == "cty" && self.country_mode != LearnMode::Block {
            return match self.mode {
                LearnMode::Off => LearnMode::Off,
                _ => self.country_mode,
            };
        }
        self.mode
    }

    /// Conversion tracking with the guard blocking: what an org with the
    /// event hook set up gets.
    pub fn on() -> Self {
        Learning {
            conversions: true,
            mode: LearnMode::Block,
            ..Learning::default()
        }
    }
}

/// How a guard refusal is answered (`GUARD_REFUSAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefusalAnswer {
    /// An error object: Okta falls back to its own providers, so a real
    /// user still gets a code (and a pumping attack moves to Okta's bill
    /// and Okta's own fraud checks). The default.
    #[default]
    Fallback,
    /// PENDING with `blocked` in the metadata, recorded as BLOCKED: Okta
    /// does not fall back, and the sign-in fails rather than pay for a
    /// pumped message.
    Block,
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
            per_ip: None,
            total: Some(DEFAULT_TOTAL_LIMIT),
            on_refusal: RefusalAnswer::Fallback,
            learning: Learning::default(),
        }
    }
}

/// `RATE_LIMIT_TOTAL`'s default: 3,000 codes an hour. A 20,000-person org
/// whose whole staff signs in with a phone factor in one morning hour stays
/// under it; a pumping run is stopped at about US$25 an hour at US prices
/// (and the allow-list keeps dearer countries out).
pub const DEFAULT_TOTAL_LIMIT: RateLimit = RateLimit {
    max: 3000,
    window: Duration::from_secs(3600),
};

impl GuardSettings {
    /// No country, type or rate checks: for tests that exercise other parts.
    pub fn open() -> Self {
        GuardSettings {
            countries: AllowedCountries::All,
            per_destination: None,
            per_user: None,
            per_country: None,
            per_ip: None,
            total: None,
            on_refusal: RefusalAnswer::Fallback,
            learning: Learning::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_refusal_and_the_ip_limit() {
        let g = guard_from_lookup(|k| match k {
            "RATE_LIMIT_PER_IP" => Some("20/600".into()),
            "GUARD_REFUSAL" => Some("block".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(g.per_ip.map(|l| l.max), Some(20));
        assert_eq!(g.on_refusal, RefusalAnswer::Block);
        assert_eq!(GuardSettings::default().per_ip, None);
        assert_eq!(GuardSettings::default().on_refusal, RefusalAnswer::Fallback);
        assert!(guard_from_lookup(|k| (k == "GUARD_REFUSAL").then(|| "drop".into())).is_err());
    }

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
}
