//! Typed configuration read from the environment once per process.
//!
//! Every error names the variable that is missing or wrong, and never echoes a
//! secret's value. Lookups go through a function so tests (and the local CLI)
//! can supply values without touching the process environment.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use http::HeaderName;
use secrecy::SecretString;
use thiserror::Error;

use crate::domain::UseSignal;
use crate::domain::locale::Locale;
use crate::domain::phone::Region;
use crate::okta::HookDefaults;
use crate::okta::validate::DEFAULT_OTP_LIFE;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
    /// More than one problem: all of them, so one run shows every fix to
    /// make (never more than one error variant of each kind nested).
    #[error("{} configuration problems:{}", .0.len(), list(.0))]
    Several(Vec<ConfigError>),
}

fn list(problems: &[ConfigError]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl ConfigError {
    /// Each single problem (one for `Missing`/`Invalid`).
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several(all) => all.iter().collect(),
            one => vec![one],
        }
    }

    /// The variables named, in order.
    pub fn vars(&self) -> Vec<&'static str> {
        self.problems()
            .into_iter()
            .filter_map(|p| match p {
                ConfigError::Missing { var } | ConfigError::Invalid { var, .. } => Some(*var),
                ConfigError::Several(_) => None,
            })
            .collect()
    }
}

/// Collects configuration problems instead of stopping at the first, so a
/// start-up names every missing or wrong variable at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    /// The value, or `None` with its problems kept.
    pub fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    /// Adds `e`'s problems. A variable both the ingress and the pipeline
    /// read (`DEFAULT_LOCALE`, `OTP_LIFE_SECONDS`) is named once.
    pub fn push(&mut self, e: ConfigError) {
        match e {
            ConfigError::Several(all) => all.into_iter().for_each(|one| self.push(one)),
            one if self.0.contains(&one) => {}
            one => self.0.push(one),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems as one error: the single one as it is, or `Several`.
    /// An empty collection is an internal error (a value was missing
    /// without a problem), named as such.
    pub fn into_error(mut self) -> ConfigError {
        match self.0.len() {
            0 => ConfigError::Invalid {
                var: "configuration",
                reason: "incomplete".into(),
            },
            1 => self.0.remove(0),
            _ => ConfigError::Several(self.0),
        }
    }

    /// `Ok` if nothing was collected.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

/// Everything the ingress needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub auth: AuthConfig,
    pub defaults: HookDefaults,
    /// The Okta event hook's header secret (`EVENT_HOOK_SECRET` or
    /// `EVENT_HOOK_SECRET_ARN`, header `EVENT_HOOK_HEADER_NAME`); `None`
    /// turns the event hook route off. Okta's event hooks only send a
    /// header (no OAuth), so this is its own secret in either auth mode.
    pub event_hook: Option<HeaderSecretConfig>,
}

#[derive(Debug, Clone)]
pub enum AuthConfig {
    OAuth(OAuthConfig),
    HeaderSecret(HeaderSecretConfig),
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub issuer: String,
    pub jwks_url: reqwest::Url,
    pub audience: String,
    pub client_ids: Vec<String>,
    pub required_scope: String,
    pub leeway: Duration,
    pub jwks_ttl: Duration,
    pub jwks_refresh_cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct HeaderSecretConfig {
    pub header: HeaderName,
    pub secret: SecretSetting,
}

/// A secret given by value (`HASH_KEY`: local mode and tests) or by the ARN
/// of a Secrets Manager secret (`HASH_KEY_SECRET_ARN`: Lambda). An ARN keeps
/// the value out of the function's environment, where anyone allowed
/// `lambda:GetFunctionConfiguration` could read it; `secrets` reads it
/// through the SDK at init.
#[derive(Clone)]
pub enum SecretSetting {
    Value(SecretString),
    Arn(String),
}

impl SecretSetting {
    /// The value, once given or read.
    pub fn value(&self) -> Option<&SecretString> {
        match self {
            SecretSetting::Value(v) => Some(v),
            SecretSetting::Arn(_) => None,
        }
    }
}

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSetting::Value(_) => f.write_str("Value(<redacted>)"),
            SecretSetting::Arn(arn) => write!(f, "Arn({arn})"),
        }
    }
}

/// `var` (the value) or `arn_var` (a Secrets Manager ARN), not both.
fn secret_setting(
    env: &Env<'_>,
    var: &'static str,
    arn_var: &'static str,
) -> Result<SecretSetting, ConfigError> {
    // Not trimmed: a secret is exactly what was pasted.
    let value = (env.0)(var).filter(|s| !s.is_empty());
    match (value, env.opt(arn_var)) {
        (Some(_), Some(_)) => Err(invalid(
            arn_var,
            &format!("set {var} or {arn_var}, not both"),
        )),
        (None, Some(arn)) if arn.starts_with("arn:") && arn.contains(":secretsmanager:") => {
            Ok(SecretSetting::Arn(arn))
        }
        (None, Some(_)) => Err(invalid(arn_var, "not a Secrets Manager secret ARN")),
        (Some(v), None) if v.len() < MIN_SECRET_LEN => {
            Err(invalid(var, "shorter than 16 characters"))
        }
        (Some(v), None) => Ok(SecretSetting::Value(SecretString::from(v))),
        (None, None) => Err(ConfigError::Missing { var }),
    }
}

/// Shorter secrets are guessable; Okta lets admins paste any length. Also
/// checked on values read from Secrets Manager.
pub const MIN_SECRET_LEN: usize = 16;

/// Okta's own verifiers accept up to two minutes of clock skew.
const MAX_LEEWAY_SECS: u64 = 120;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let mut p = Problems::default();
        let auth = p.take(
            match env
                .opt("AUTH_MODE")
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("oauth") => oauth(&env).map(AuthConfig::OAuth),
                Some("header") => header_secret(
                    &env,
                    "AUTH_HEADER_NAME",
                    "AUTH_HEADER_SECRET",
                    "AUTH_HEADER_SECRET_ARN",
                )
                .map(AuthConfig::HeaderSecret),
                Some(_) => Err(invalid("AUTH_MODE", "expected oauth or header")),
            },
        );
        let locale = p.take(env.default_locale());
        let region = p.take(match env.opt("DEFAULT_REGION") {
            None => "US"
                .parse::<Region>()
                .map_err(|_| invalid("DEFAULT_REGION", "built-in default")),
            Some(s) => s
                .parse::<Region>()
                .map_err(|_| invalid("DEFAULT_REGION", "not an ISO 3166 region code such as US")),
        });
        let otp_life = p.take(env.otp_life());
        let event_hook = if env.opt("EVENT_HOOK_SECRET").is_some()
            || env.opt("EVENT_HOOK_SECRET_ARN").is_some()
        {
            p.take(header_secret(
                &env,
                "EVENT_HOOK_HEADER_NAME",
                "EVENT_HOOK_SECRET",
                "EVENT_HOOK_SECRET_ARN",
            ))
        } else {
            None
        };
        let okta_sms_text = p.take(
            match env
                .opt("SMS_TEXT")
                .map(|v| v.to_ascii_lowercase())
                .as_deref()
            {
                None | Some("templates") => Ok(false),
                Some("okta") => Ok(true),
                Some(_) => Err(invalid("SMS_TEXT", "expected templates or okta")),
            },
        );
        let (Some(auth), Some(locale), Some(region), Some(otp_life), Some(okta_sms_text)) =
            (auth, locale, region, otp_life, okta_sms_text)
        else {
            return Err(p.into_error());
        };
        let mut defaults = HookDefaults::new(locale, region);
        defaults.otp_life = otp_life;
        defaults.okta_sms_text = okta_sms_text;
        Ok(Config {
            auth,
            defaults,
            event_hook,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-blank value.
    fn opt(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn req(&self, var: &'static str) -> Result<String, ConfigError> {
        self.opt(var).ok_or(ConfigError::Missing { var })
    }

    /// `DEFAULT_LOCALE`, or English.
    fn default_locale(&self) -> Result<Locale, ConfigError> {
        let raw = self.opt("DEFAULT_LOCALE");
        Locale::parse(raw.as_deref().unwrap_or("en"))
            .map_err(|_| invalid("DEFAULT_LOCALE", "not a language tag such as en or en-US"))
    }

    /// `OTP_LIFE_SECONDS`: Okta's OTP life, 5 minutes unless the org says
    /// otherwise. Assumed for a hook without `otpExpires`, and the most a
    /// message claims the code is valid for.
    fn otp_life(&self) -> Result<Duration, ConfigError> {
        let life = self.secs("OTP_LIFE_SECONDS", DEFAULT_OTP_LIFE.as_secs())?;
        if !(30..=3600).contains(&life.as_secs()) {
            return Err(invalid("OTP_LIFE_SECONDS", "expected 30 to 3600 seconds"));
        }
        Ok(life)
    }

    /// An optional ARN of `service` (`arn:PARTITION:service:…`).
    fn arn(&self, var: &'static str, service: &str) -> Result<Option<String>, ConfigError> {
        match self.opt(var) {
            None => Ok(None),
            Some(v) if v.split(':').nth(2) == Some(service) && v.starts_with("arn:") => Ok(Some(v)),
            Some(_) => Err(invalid(var, &format!("expected an {service} ARN"))),
        }
    }

    fn secs(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        match self.opt(var) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| invalid(var, "expected a whole number of seconds")),
        }
    }
}

fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

/// Where Okta publishes an issuer's keys. A custom authorization server
/// (`https://{org}/oauth2/{id}`) serves them at `{issuer}/v1/keys`; the org
/// authorization server (issuer `https://{org}`, no path) at
/// `https://{org}/oauth2/v1/keys`. Both are fixed by Okta, so no discovery
/// request is needed at start; `OKTA_JWKS_URL` overrides.
fn default_jwks_url(issuer: &reqwest::Url) -> Result<reqwest::Url, ConfigError> {
    let base = issuer.as_str().trim_end_matches('/');
    let url = if issuer.path().trim_matches('/').is_empty() {
        format!("{base}/oauth2/v1/keys")
    } else {
        format!("{base}/v1/keys")
    };
    reqwest::Url::parse(&url).map_err(|_| invalid("OKTA_ISSUER", "not a URL"))
}

fn oauth(env: &Env<'_>) -> Result<OAuthConfig, ConfigError> {
    let mut p = Problems::default();
    let issuer = p.take(env.req("OKTA_ISSUER").and_then(|issuer| {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&issuer).map_err(|_| invalid("OKTA_ISSUER", "not a URL"))?;
        check_transport("OKTA_ISSUER", &url)?;
        Ok((issuer, url))
    }));
    let jwks_url = match (env.opt("OKTA_JWKS_URL"), &issuer) {
        (Some(u), _) => p.take(
            reqwest::Url::parse(&u)
                .map_err(|_| invalid("OKTA_JWKS_URL", "not a URL"))
                .and_then(|url| check_transport("OKTA_JWKS_URL", &url).map(|()| url)),
        ),
        (None, Some((_, issuer_url))) => p.take(default_jwks_url(issuer_url)),
        (None, None) => None,
    };
    let client_ids = p.take(env.req("OKTA_CLIENT_IDS").and_then(|ids| {
        let ids: Vec<String> = ids
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if ids.is_empty() {
            Err(invalid("OKTA_CLIENT_IDS", "no client id listed"))
        } else {
            Ok(ids)
        }
    }));
    let leeway = p.take(env.secs("JWT_LEEWAY_SECONDS", 60).and_then(|l| {
        if l.as_secs() > MAX_LEEWAY_SECS {
            Err(invalid("JWT_LEEWAY_SECONDS", "at most 120"))
        } else {
            Ok(l)
        }
    }));
    // Floors: a TTL or cool-down of 0 would fetch the issuer's keys on
    // every hook, or on every unknown `kid` an attacker sends.
    let bounded = |var: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
        env.secs(var, default).and_then(|d| {
            if range.contains(&d.as_secs()) {
                Ok(d)
            } else {
                Err(invalid(
                    var,
                    &format!("expected {} to {} seconds", range.start(), range.end()),
                ))
            }
        })
    };
    let jwks_ttl = p.take(bounded("JWKS_CACHE_TTL_SECONDS", 3600, 60..=86_400));
    let jwks_refresh_cooldown = p.take(bounded("JWKS_REFRESH_COOLDOWN_SECONDS", 30, 5..=3600));
    let required_scope = p.take(env.req("OKTA_REQUIRED_SCOPE"));
    let (
        Some((issuer, _)),
        Some(jwks_url),
        Some(client_ids),
        Some(leeway),
        Some(jwks_ttl),
        Some(jwks_refresh_cooldown),
        Some(required_scope),
    ) = (
        issuer,
        jwks_url,
        client_ids,
        leeway,
        jwks_ttl,
        jwks_refresh_cooldown,
        required_scope,
    )
    else {
        return Err(p.into_error());
    };
    Ok(OAuthConfig {
        issuer,
        jwks_url,
        audience: env
            .opt("OKTA_AUDIENCE")
            .unwrap_or_else(|| "api://default".to_owned()),
        client_ids,
        required_scope,
        leeway,
        jwks_ttl,
        jwks_refresh_cooldown,
    })
}

/// Keys must come over HTTPS. Plain HTTP is allowed to loopback only, for
/// the local issuer of `telehook serve` and for tests.
fn check_transport(var: &'static str, url: &reqwest::Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(invalid(
            var,
            "must be an https URL (http only for loopback)",
        )),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A header secret from `name_var` (the header, `Authorization` unless
/// set) and `var` or `arn_var` (the secret).
fn header_secret(
    env: &Env<'_>,
    name_var: &'static str,
    var: &'static str,
    arn_var: &'static str,
) -> Result<HeaderSecretConfig, ConfigError> {
    let mut p = Problems::default();
    let name = env
        .opt(name_var)
        .unwrap_or_else(|| "authorization".to_owned());
    let header = p.take(
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid(name_var, "not a valid HTTP header name")),
    );
    let secret = p.take(secret_setting(env, var, arn_var));
    let (Some(header), Some(secret)) = (header, secret) else {
        return Err(p.into_error());
    };
    Ok(HeaderSecretConfig { header, secret })
}

/// The topic and the queue the receipts function takes events from. A
/// receipt can trigger a voice call and an expiry check can mark a code
/// UNUSED (and so feed the guard), so an event from anywhere else (another
/// topic subscribed by mistake, a hand-made invocation) is acknowledged
/// and dropped. `None` trusts every source: local mode, whose events are
/// its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSources {
    /// `RECEIPTS_TOPIC_ARN`: the only `TopicArn` a receipt may carry.
    pub receipts_topic: Option<String>,
    /// `EXPIRY_QUEUE_ARN`: the only `eventSourceARN` a check may carry.
    pub expiry_queue: Option<String>,
}

impl EventSources {
    /// Whether an event from `source` is one of ours.
    pub fn trusts(want: Option<&String>, source: Option<&str>) -> bool {
        want.is_none_or(|w| source == Some(w.as_str()))
    }
}

/// Everything the delivery pipeline needs (ingress and dispatcher).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub ledger_table: String,
    pub templates_table: Option<String>,
    pub queue_url: String,
    pub dlq_url: Option<String>,
    /// `EXPIRY_QUEUE_URL`: the standard queue expiry checks wait on;
    /// required with `CONVERSIONS=on`.
    pub expiry_queue_url: Option<String>,
    /// `RECEIPTS_TOPIC_ARN` and `EXPIRY_QUEUE_ARN`: the only sources the
    /// receipts function takes events from (unset: any, as in local mode).
    pub sources: EventSources,
    pub fast_path: bool,
    pub fast_path_budget: Duration,
    pub hash_key: SecretSetting,
    pub org_name: String,
    pub default_locale: Locale,
    pub template_cache_ttl: Duration,
    /// How long a ledger record is kept after its OTP expires (its TTL).
    pub retention: Duration,
    /// `OTP_LIFE_SECONDS`: the most a message says a code is valid for.
    pub otp_life: Duration,
    pub eum: EumSettings,
    pub guard: GuardSettings,
    /// `DISPATCH_CONCURRENCY`: message groups of one batch sent at once;
    /// `None` is the whole batch.
    pub dispatch_concurrency: Option<std::num::NonZeroUsize>,
    /// `VOICE_FALLBACK=on`: the window (`VOICE_FALLBACK_WINDOW_SECONDS`) in
    /// which an SMS's undeliverable receipt leads to a call; `None` is off.
    pub voice_fallback: Option<Duration>,
}

/// `VOICE_FALLBACK` (off by default) and its window, 60 seconds unless
/// `VOICE_FALLBACK_WINDOW_SECONDS` says otherwise (10 to 600).
pub fn voice_fallback_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<Duration>, ConfigError> {
    let env = Env(&get);
    let on = match env
        .opt("VOICE_FALLBACK")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("off") => false,
        Some("on") => true,
        Some(_) => return Err(invalid("VOICE_FALLBACK", "expected on or off")),
    };
    let window = env.secs("VOICE_FALLBACK_WINDOW_SECONDS", 60)?;
    if !(10..=600).contains(&window.as_secs()) {
        return Err(invalid(
            "VOICE_FALLBACK_WINDOW_SECONDS",
            "expected 10 to 600 seconds",
        ));
    }
    Ok(on.then_some(window))
}

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
    match env
        .opt("GUARD_REFUSAL")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("fallback") => g.on_refusal = RefusalAnswer::Fallback,
        Some("block") => g.on_refusal = RefusalAnswer::Block,
        Some(_) => p.push(invalid("GUARD_REFUSAL", "expected fallback or block")),
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
    match env
        .opt("CONVERSIONS")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("off") => {}
        Some("on") => l.conversions = true,
        Some(_) => p.push(invalid("CONVERSIONS", "expected on or off")),
    }
    // The guard learns from conversions, so it follows them unless told.
    let default_mode = if l.conversions {
        LearnMode::Block
    } else {
        LearnMode::Off
    };
    l.mode = match env
        .opt("LEARNED_GUARD")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None => default_mode,
        Some("off") => LearnMode::Off,
        Some("monitor") => LearnMode::Monitor,
        Some("block") => LearnMode::Block,
        Some(_) => {
            p.push(invalid("LEARNED_GUARD", "expected off, monitor or block"));
            default_mode
        }
    };
    if l.mode != LearnMode::Off && !l.conversions {
        p.push(invalid(
            "LEARNED_GUARD",
            "needs CONVERSIONS=on (and the Okta event hook): without conversions every range would look unused",
        ));
    }
    let number = |var: &'static str, default: u32, range: std::ops::RangeInclusive<u32>| {
        let v = match env.opt(var) {
            None => return Ok(default),
            Some(v) => v,
        };
        v.parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                invalid(
                    var,
                    &format!(
                        "expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    };
    if let Some(d) = p.take(number("LEARNED_GUARD_PREFIX_DIGITS", 7, 6..=8)) {
        l.prefix_digits = usize::try_from(d).unwrap_or(7);
    }
    if let Some(n) = p.take(number(
        "LEARNED_GUARD_MIN_SENDS",
        l.min_sends,
        5..=1_000_000,
    )) {
        l.min_sends = n;
    }
    if let Some(n) = p.take(number(
        "LEARNED_GUARD_COUNTRY_MIN_SENDS",
        l.country_min_sends,
        5..=10_000_000,
    )) {
        l.country_min_sends = n;
    }
    if let Some(n) = p.take(number("LEARNED_GUARD_MIN_CONVERSION_PERCENT", 20, 1..=100)) {
        l.min_conversion_percent = n;
    }
    if let Some(v) = env.opt("LEARNED_GUARD_REQUEST_TYPES") {
        match judged_types(&v) {
            Ok(judged) => l.judged = judged,
            Err(why) => p.push(invalid("LEARNED_GUARD_REQUEST_TYPES", why)),
        }
    }
    l.country_mode = match env
        .opt("LEARNED_GUARD_COUNTRY")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("monitor") => LearnMode::Monitor,
        Some("off") => LearnMode::Off,
        Some("block") => LearnMode::Block,
        Some(_) => {
            p.push(invalid(
                "LEARNED_GUARD_COUNTRY",
                "expected off, monitor or block",
            ));
            LearnMode::Monitor
        }
    };
    let judge_after = env
        .secs("LEARNED_GUARD_JUDGE_AFTER_SECONDS", 60)
        .and_then(|d| {
            if (10..=3600).contains(&d.as_secs()) {
                Ok(d)
            } else {
                Err(invalid(
                    "LEARNED_GUARD_JUDGE_AFTER_SECONDS",
                    "expected 10 seconds to 1 hour",
                ))
            }
        });
    if let Some(d) = p.take(judge_after) {
        l.judge_after = d;
    }
    for (var, slot) in [
        ("LEARNED_GUARD_WINDOW_SECONDS", &mut l.window),
        ("LEARNED_GUARD_COOL_DOWN_SECONDS", &mut l.cool_down),
    ] {
        let default = slot.as_secs();
        let d = env.secs(var, default).and_then(|d| {
            if (60..=7 * 86_400).contains(&d.as_secs()) {
                Ok(d)
            } else {
                Err(invalid(var, "expected 60 seconds to 7 days"))
            }
        });
        if let Some(d) = p.take(d) {
            *slot = d;
        }
    }
    p.finish().map(|()| l)
}

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

/// `OTP_LIFE_SECONDS` alone, for local mode's pipeline.
pub fn otp_life_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    Env(&get).otp_life()
}

/// Okta waits 3 s; the fast path must leave time to answer.
const MAX_FAST_PATH_BUDGET_MS: u64 = 2800;

impl PipelineConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let mut p = Problems::default();
        let fast_path = p.take(
            match env
                .opt("FAST_PATH")
                .map(|v| v.to_ascii_lowercase())
                .as_deref()
            {
                None | Some("on") | Some("true") | Some("1") => Ok(true),
                Some("off") | Some("false") | Some("0") => Ok(false),
                Some(_) => Err(invalid("FAST_PATH", "expected on or off")),
            },
        );
        let budget_ms = p.take(match env.opt("FAST_PATH_BUDGET_MS") {
            None => Ok(2000),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=MAX_FAST_PATH_BUDGET_MS).contains(ms))
                .ok_or_else(|| invalid("FAST_PATH_BUDGET_MS", "expected 1 to 2800 milliseconds")),
        });
        let hash_key = p.take(secret_setting(&env, "HASH_KEY", "HASH_KEY_SECRET_ARN"));
        let eum = p.take(eum_settings(&env));
        let ledger_table = p.take(env.req("LEDGER_TABLE"));
        let queue_url = p.take(env.req("QUEUE_URL"));
        let default_locale = p.take(env.default_locale());
        let template_cache_ttl = p.take(env.secs("TEMPLATE_CACHE_TTL_SECONDS", 300));
        let retention = p.take(env.secs("LEDGER_RETENTION_SECONDS", 86_400));
        let otp_life = p.take(env.otp_life());
        let guard = p.take(guard_from_lookup(&get));
        let expiry_queue_url = env.opt("EXPIRY_QUEUE_URL");
        let sources = EventSources {
            receipts_topic: p.take(env.arn("RECEIPTS_TOPIC_ARN", "sns")).flatten(),
            expiry_queue: p.take(env.arn("EXPIRY_QUEUE_ARN", "sqs")).flatten(),
        };
        let voice_fallback = p.take(voice_fallback_from_lookup(&get));
        let timers_needed = guard.as_ref().is_some_and(|g| g.learning.conversions)
            || voice_fallback.is_some_and(|f| f.is_some());
        if timers_needed && expiry_queue_url.is_none() {
            p.push(ConfigError::Missing {
                var: "EXPIRY_QUEUE_URL",
            });
        }
        let dispatch_concurrency = p.take(match env.opt("DISPATCH_CONCURRENCY") {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| invalid("DISPATCH_CONCURRENCY", "expected a whole number from 1")),
        });
        let (
            Some(fast_path),
            Some(budget_ms),
            Some(hash_key),
            Some(eum),
            Some(ledger_table),
            Some(queue_url),
            Some(default_locale),
            Some(template_cache_ttl),
            Some(retention),
            Some(otp_life),
            Some(guard),
            Some(dispatch_concurrency),
            Some(voice_fallback),
        ) = (
            fast_path,
            budget_ms,
            hash_key,
            eum,
            ledger_table,
            queue_url,
            default_locale,
            template_cache_ttl,
            retention,
            otp_life,
            guard,
            dispatch_concurrency,
            voice_fallback,
        )
        else {
            return Err(p.into_error());
        };
        // Problems that leave no value missing (a required companion
        // variable, a malformed optional one) fail the start all the same.
        if !p.is_empty() {
            return Err(p.into_error());
        }
        Ok(PipelineConfig {
            ledger_table,
            templates_table: env.opt("TEMPLATES_TABLE"),
            queue_url,
            dlq_url: env.opt("DLQ_URL"),
            expiry_queue_url,
            sources,
            fast_path,
            fast_path_budget: Duration::from_millis(budget_ms),
            hash_key,
            org_name: env.opt("ORG_NAME").unwrap_or_else(|| "Okta".to_owned()),
            default_locale,
            template_cache_ttl,
            retention,
            otp_life,
            eum,
            guard,
            dispatch_concurrency,
            voice_fallback,
        })
    }
}

/// End User Messaging's controls: origination identities, configuration
/// set, protect configuration, price caps.
fn eum_settings(env: &Env<'_>) -> Result<EumSettings, ConfigError> {
    let mut p = Problems::default();
    let origination = p.take(env.req("ORIGINATION_IDENTITIES").and_then(|v| {
        OriginationIdentities::parse(&v).map_err(|reason| ConfigError::Invalid {
            var: "ORIGINATION_IDENTITIES",
            reason,
        })
    }));
    let price = |var: &'static str| -> Result<Option<String>, ConfigError> {
        match env.opt(var) {
            None => Ok(None),
            Some(v) if v.parse::<f64>().is_ok_and(|p| p > 0.0 && p.is_finite()) => Ok(Some(v)),
            Some(_) => Err(invalid(
                var,
                "expected a positive price in USD such as 0.10",
            )),
        }
    };
    let max_price = p.take(price("MAX_PRICE"));
    let max_price_per_minute = p.take(price("MAX_PRICE_PER_MINUTE"));
    let (Some(origination), Some(max_price), Some(max_price_per_minute)) =
        (origination, max_price, max_price_per_minute)
    else {
        return Err(p.into_error());
    };
    Ok(EumSettings {
        origination,
        configuration_set: env.opt("CONFIGURATION_SET_NAME"),
        protect_configuration_id: env.opt("PROTECT_CONFIGURATION_ID"),
        max_price,
        max_price_per_minute,
    })
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

/// Origination identity (phone number, sender id, pool, or their ARNs) per
/// destination country, with a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginationIdentities {
    default: Option<String>,
    by_region: HashMap<String, String>,
}

impl OriginationIdentities {
    /// Parses `{"default": "...", "US": "...", "CA": "..."}`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let map: HashMap<String, String> = serde_json::from_str(json)
            .map_err(|_| "expected a JSON object of strings".to_owned())?;
        let mut out = OriginationIdentities::default();
        for (k, v) in map {
            if v.trim().is_empty() {
                return Err(format!("empty identity for {k}"));
            }
            if k.eq_ignore_ascii_case("default") {
                out.default = Some(v);
            } else if k.len() == 2 && k.bytes().all(|b| b.is_ascii_alphabetic()) {
                out.by_region.insert(k.to_ascii_uppercase(), v);
            } else {
                return Err(format!("{k} is not an ISO country code or \"default\""));
            }
        }
        if out.default.is_none() && out.by_region.is_empty() {
            return Err("no identity given".into());
        }
        Ok(out)
    }

    pub fn for_region(&self, region: Option<&str>) -> Option<&str> {
        region
            .and_then(|r| self.by_region.get(r))
            .or(self.default.as_ref())
            .map(String::as_str)
    }
}

/// Provider controls from configuration.
#[derive(Debug, Clone, Default)]
pub struct EumSettings {
    pub origination: OriginationIdentities,
    pub configuration_set: Option<String>,
    pub protect_configuration_id: Option<String>,
    /// Price cap per SMS part, in USD, as the API takes it (`"0.10"`).
    pub max_price: Option<String>,
    /// Price cap per voice minute, in USD.
    pub max_price_per_minute: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    const OK: &[(&str, &str)] = &[
        ("OKTA_ISSUER", "https://example.okta.com/oauth2/default/"),
        ("OKTA_CLIENT_IDS", "0oa1, 0oa2"),
        ("OKTA_REQUIRED_SCOPE", "okta.telephony.hook"),
    ];

    #[test]
    fn oauth_defaults() {
        let c = cfg(OK).unwrap();
        let AuthConfig::OAuth(o) = c.auth else {
            panic!("oauth")
        };
        assert_eq!(o.issuer, "https://example.okta.com/oauth2/default");
        assert_eq!(
            o.jwks_url.as_str(),
            "https://example.okta.com/oauth2/default/v1/keys"
        );
        assert_eq!(o.audience, "api://default");
        assert_eq!(o.client_ids, vec!["0oa1", "0oa2"]);
        assert_eq!(c.defaults.locale.as_str(), "en");
        assert_eq!(c.defaults.region.as_str(), "US");
        assert_eq!(c.defaults.otp_life, Duration::from_secs(300));
        assert!(!c.defaults.okta_sms_text);
    }

    #[test]
    fn secrets_by_value_or_by_arn_not_both() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook-AbCdEf";
        let base = [("AUTH_MODE", "header")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            cfg(&v)
        };
        let c = with(&[("AUTH_HEADER_SECRET_ARN", arn)]).unwrap();
        let AuthConfig::HeaderSecret(h) = c.auth else {
            panic!("header")
        };
        assert!(matches!(&h.secret, SecretSetting::Arn(a) if a == arn));
        assert!(
            !format!(
                "{:?}",
                SecretSetting::Value("0123456789abcdef-x".to_owned().into())
            )
            .contains("0123")
        );
        for (extra, var) in [
            (
                vec![
                    ("AUTH_HEADER_SECRET", "0123456789abcdef-x"),
                    ("AUTH_HEADER_SECRET_ARN", arn),
                ],
                "AUTH_HEADER_SECRET_ARN",
            ),
            (
                vec![("AUTH_HEADER_SECRET_ARN", "alias/x")],
                "AUTH_HEADER_SECRET_ARN",
            ),
            (vec![("AUTH_HEADER_SECRET", "short")], "AUTH_HEADER_SECRET"),
        ] {
            assert!(
                matches!(with(&extra), Err(ConfigError::Invalid { var: v, .. }) if v == var),
                "{extra:?}"
            );
        }
        assert_eq!(
            with(&[]).unwrap_err(),
            ConfigError::Missing {
                var: "AUTH_HEADER_SECRET"
            }
        );
    }

    #[test]
    fn org_and_custom_authorization_servers_have_their_own_key_urls() {
        for (issuer, keys) in [
            (
                "https://acme.okta.com",
                "https://acme.okta.com/oauth2/v1/keys",
            ),
            (
                "https://acme.okta.com/",
                "https://acme.okta.com/oauth2/v1/keys",
            ),
            (
                "https://acme.okta.com/oauth2/aus1abc",
                "https://acme.okta.com/oauth2/aus1abc/v1/keys",
            ),
            (
                "https://login.acme.example/oauth2/default",
                "https://login.acme.example/oauth2/default/v1/keys",
            ),
        ] {
            let mut v = OK.to_vec();
            v[0] = ("OKTA_ISSUER", issuer);
            let AuthConfig::OAuth(o) = cfg(&v).unwrap().auth else {
                panic!("oauth")
            };
            assert_eq!(o.jwks_url.as_str(), keys, "{issuer}");
            assert_eq!(o.issuer, issuer.trim_end_matches('/'));
        }
    }

    #[test]
    fn compatibility_settings() {
        let mut v = OK.to_vec();
        v.extend([("OTP_LIFE_SECONDS", "600"), ("SMS_TEXT", "okta")]);
        let c = cfg(&v).unwrap();
        assert_eq!(c.defaults.otp_life, Duration::from_secs(600));
        assert!(c.defaults.okta_sms_text);
        for (var, bad) in [("OTP_LIFE_SECONDS", "5"), ("SMS_TEXT", "both")] {
            let mut v = OK.to_vec();
            v.push((var, bad));
            assert!(matches!(cfg(&v), Err(ConfigError::Invalid { var: got, .. }) if got == var));
        }
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
    fn every_problem_is_listed_at_once() {
        let err = pipe(&[
            ("FAST_PATH", "maybe"),
            ("RATE_LIMIT_PER_USER", "lots"),
            ("RATE_LIMIT_PER_IP", "5"),
            ("GUARD_REFUSAL", "drop"),
            ("MAX_PRICE", "free"),
            ("LEDGER_TABLE", " "),
        ])
        .unwrap_err();
        assert_eq!(
            err.vars(),
            [
                "FAST_PATH",
                "MAX_PRICE",
                "LEDGER_TABLE",
                "RATE_LIMIT_PER_USER",
                "RATE_LIMIT_PER_IP",
                "GUARD_REFUSAL"
            ]
        );
        let text = err.to_string();
        assert!(text.starts_with("6 configuration problems:"), "{text}");
        assert_eq!(text.lines().count(), 7, "{text}");
        assert!(text.contains("\n  - LEDGER_TABLE is not set"), "{text}");
        let err = cfg(&[
            ("AUTH_MODE", "header"),
            ("AUTH_HEADER_NAME", "bad header"),
            ("DEFAULT_REGION", "Narnia"),
            ("SMS_TEXT", "mine"),
        ])
        .unwrap_err();
        assert_eq!(
            err.vars(),
            [
                "AUTH_HEADER_NAME",
                "AUTH_HEADER_SECRET",
                "DEFAULT_REGION",
                "SMS_TEXT"
            ]
        );
        // Problems nest flat: a list inside a list is one list.
        let mut p = Problems::default();
        p.push(err);
        p.push(ConfigError::Missing { var: "AWS_REGION" });
        p.push(ConfigError::Missing { var: "AWS_REGION" });
        assert_eq!(p.into_error().problems().len(), 5);
        assert!(Problems::default().finish().is_ok());
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            cfg(&[]).unwrap_err().vars(),
            ["OKTA_ISSUER", "OKTA_CLIENT_IDS", "OKTA_REQUIRED_SCOPE"]
        );
        let mut v = OK.to_vec();
        v.retain(|(k, _)| *k != "OKTA_REQUIRED_SCOPE");
        assert_eq!(
            cfg(&v).unwrap_err(),
            ConfigError::Missing {
                var: "OKTA_REQUIRED_SCOPE"
            }
        );
        for (var, bad) in [
            ("OKTA_ISSUER", "http://example.okta.com/oauth2/default"),
            ("OKTA_JWKS_URL", "ftp://x"),
            ("JWT_LEEWAY_SECONDS", "600"),
            ("DEFAULT_LOCALE", "english!"),
            ("DEFAULT_REGION", "XX"),
            ("AUTH_MODE", "magic"),
            // A key fetch on every hook, or on every made-up `kid`.
            ("JWKS_CACHE_TTL_SECONDS", "0"),
            ("JWKS_CACHE_TTL_SECONDS", "59"),
            ("JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
            ("JWKS_REFRESH_COOLDOWN_SECONDS", "4"),
        ] {
            let mut v = OK.to_vec();
            v.push((var, bad));
            let err = cfg(&v).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: got, .. } if got == var),
                "{var}: {err}"
            );
        }
    }

    const PIPE: &[(&str, &str)] = &[
        ("LEDGER_TABLE", "ledger"),
        (
            "QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/jobs.fifo",
        ),
        ("HASH_KEY", "0123456789abcdef0123"),
        ("ORIGINATION_IDENTITIES", r#"{"default":"pool-1"}"#),
    ];

    fn pipe(extra: &[(&str, &str)]) -> Result<PipelineConfig, ConfigError> {
        let mut v = PIPE.to_vec();
        v.extend_from_slice(extra);
        let m: HashMap<String, String> = v
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PipelineConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn pipeline_defaults_and_errors() {
        let c = pipe(&[]).unwrap();
        assert!(c.fast_path);
        assert_eq!(c.fast_path_budget, Duration::from_millis(2000));
        assert_eq!(c.org_name, "Okta");
        assert_eq!(c.retention, Duration::from_secs(86_400));
        assert_eq!(
            pipe(&[("LEDGER_RETENTION_SECONDS", "3600")])
                .unwrap()
                .retention,
            Duration::from_secs(3600)
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
        assert!(!pipe(&[("FAST_PATH", "off")]).unwrap().fast_path);
        assert_eq!(c.dispatch_concurrency, None);
        let four = pipe(&[("DISPATCH_CONCURRENCY", "4")]).unwrap();
        assert_eq!(four.dispatch_concurrency.map(|n| n.get()), Some(4));
        for (var, bad) in [
            ("FAST_PATH", "maybe"),
            ("FAST_PATH_BUDGET_MS", "3000"),
            ("LEDGER_RETENTION_SECONDS", "a day"),
            ("HASH_KEY", "short"),
            ("ORIGINATION_IDENTITIES", "{}"),
            ("MAX_PRICE", "-1"),
            ("MAX_PRICE_PER_MINUTE", "cheap"),
            ("DISPATCH_CONCURRENCY", "0"),
            ("DISPATCH_CONCURRENCY", "all"),
        ] {
            let err = pipe(&[(var, bad)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: got, .. } if got == var),
                "{var}: {err}"
            );
        }
        let m: HashMap<String, String> = HashMap::new();
        assert_eq!(
            PipelineConfig::from_lookup(|k| m.get(k).cloned())
                .unwrap_err()
                .vars(),
            [
                "HASH_KEY",
                "ORIGINATION_IDENTITIES",
                "LEDGER_TABLE",
                "QUEUE_URL"
            ]
        );
        let g = pipe(&[
            ("ALLOWED_COUNTRIES", "*"),
            ("RATE_LIMIT_PER_USER", "off"),
            ("RATE_LIMIT_PER_COUNTRY", "300/60"),
        ])
        .unwrap()
        .guard;
        assert_eq!(g.countries, AllowedCountries::All);
        assert_eq!(g.per_user, None);
        assert_eq!(g.per_country.map(|l| l.max), Some(300));
        assert_eq!(c.guard.total, Some(DEFAULT_TOTAL_LIMIT));
        // The receipts function's sources: unset trusts any; set, each
        // must be an ARN of its service.
        assert_eq!(c.sources, EventSources::default());
        let topic = "arn:aws:sns:us-east-1:123456789012:telehook-receipts";
        let queue = "arn:aws-cn:sqs:cn-north-1:123456789012:telehook-expiry";
        let sourced = pipe(&[("RECEIPTS_TOPIC_ARN", topic), ("EXPIRY_QUEUE_ARN", queue)]).unwrap();
        assert_eq!(sourced.sources.receipts_topic.as_deref(), Some(topic));
        assert_eq!(sourced.sources.expiry_queue.as_deref(), Some(queue));
        let err = pipe(&[
            ("RECEIPTS_TOPIC_ARN", queue),
            ("EXPIRY_QUEUE_ARN", "telehook-expiry"),
        ])
        .unwrap_err();
        assert_eq!(err.vars(), ["RECEIPTS_TOPIC_ARN", "EXPIRY_QUEUE_ARN"]);
        // A companion variable's absence fails the start too, though every
        // value it needs was read.
        let err = pipe(&[("CONVERSIONS", "on")]).unwrap_err();
        assert_eq!(err.vars(), ["EXPIRY_QUEUE_URL"]);
        let g = pipe(&[("RATE_LIMIT_TOTAL", "off")]).unwrap().guard;
        assert_eq!(g.total, None);
        let g = pipe(&[("RATE_LIMIT_TOTAL", "50000/86400")]).unwrap().guard;
        assert_eq!(
            g.total.map(|l| (l.max, l.window.as_secs())),
            Some((50000, 86400))
        );
        assert_eq!(c.guard, GuardSettings::default());
        for (var, bad) in [
            ("ALLOWED_COUNTRIES", "USA"),
            ("RATE_LIMIT_PER_DESTINATION", "5"),
        ] {
            let err = pipe(&[(var, bad)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: got, .. } if got == var),
                "{var}: {err}"
            );
        }
    }

    #[test]
    fn loopback_http_is_allowed() {
        let mut v = OK.to_vec();
        v[0] = ("OKTA_ISSUER", "http://127.0.0.1:8080/oauth2/default");
        assert!(cfg(&v).is_ok());
    }

    #[test]
    fn header_mode_never_echoes_the_secret() {
        let c = cfg(&[
            ("AUTH_MODE", "header"),
            ("AUTH_HEADER_SECRET", "s3cr3t-s3cr3t-s3cr3t"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let err = cfg(&[("AUTH_MODE", "HEADER"), ("AUTH_HEADER_SECRET", "tiny-val")]).unwrap_err();
        assert!(!err.to_string().contains("tiny-val"), "{err}");
        assert_eq!(
            err,
            invalid("AUTH_HEADER_SECRET", "shorter than 16 characters")
        );
        assert_eq!(
            cfg(&[("AUTH_MODE", "header")]).unwrap_err(),
            ConfigError::Missing {
                var: "AUTH_HEADER_SECRET"
            }
        );
    }

    #[test]
    fn origination_by_country_with_default() {
        let o = OriginationIdentities::parse(
            r#"{"default":"pool-1","us":"+12065550100","CA":"+14165550100"}"#,
        )
        .unwrap();
        assert_eq!(o.for_region(Some("US")), Some("+12065550100"));
        assert_eq!(o.for_region(Some("CA")), Some("+14165550100"));
        assert_eq!(o.for_region(Some("DE")), Some("pool-1"));
        assert_eq!(o.for_region(None), Some("pool-1"));
        let o = OriginationIdentities::parse(r#"{"US":"+12065550100"}"#).unwrap();
        assert_eq!(o.for_region(Some("DE")), None);
        assert!(OriginationIdentities::parse("{}").is_err());
        assert!(OriginationIdentities::parse(r#"{"USA":"x"}"#).is_err());
        assert!(OriginationIdentities::parse("[]").is_err());
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
