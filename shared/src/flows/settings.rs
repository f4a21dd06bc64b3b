//! The pipeline's settings: the tables and queues it runs on, the fast
//! path, the code life, the voice fallback and the receipts function's
//! trusted sources, read from the environment by the ingress, the
//! dispatcher, the replayer and the receipts function alike.

use std::time::Duration;

use crate::config::{ConfigError, Env, Problems, SecretSetting, invalid, secret_setting};
use crate::crypto::HashKey;
use crate::domain::locale::Locale;
use crate::flows::guard::settings::{GuardSettings, guard_from_lookup};
use crate::messenger::settings::{EumSettings, eum_settings};
use crate::okta::validate::DEFAULT_OTP_LIFE;
use crate::telemetry::metrics::Metrics;

/// A person who asks for another code within five minutes (a code's usual
/// life) did not get the last one.
pub const DEFAULT_RESEND_WINDOW: Duration = Duration::from_secs(300);

/// `RESEND_WINDOW_SECONDS`: `None` when 0 (off).
fn resend_window(env: &Env<'_>) -> Result<Option<Duration>, ConfigError> {
    env.secs_within(
        "RESEND_WINDOW_SECONDS",
        DEFAULT_RESEND_WINDOW.as_secs(),
        0..=3600,
        "expected 0 (off) to 3600 seconds",
    )
    .map(|d| Some(d).filter(|d| !d.is_zero()))
}

/// How the flows behave, read from the environment as it is
/// ([`PipelineConfig::from_lookup`]), but for the two parts only wiring can
/// give: the hash key's bytes (read by ARN at init) and the metrics sink.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Try to send inline before answering Okta.
    pub fast_path: bool,
    /// Deadline for the fast path, counted from request arrival.
    pub fast_path_budget: Duration,
    /// How long an ingress claim holds. Longer than the fast path, shorter
    /// than the time before the dispatcher would retry a busy job.
    pub ingress_lease: Duration,
    /// How long a dispatcher claim holds; longer than one provider call.
    pub dispatcher_lease: Duration,
    /// How long a ledger record is kept after the OTP expires.
    pub retention: Duration,
    /// Okta's OTP life: the most a message says the code is valid for.
    pub otp_life: Duration,
    /// Key for the keyed hash of destinations (message group ids, rate keys).
    pub hash_key: HashKey,
    /// Country allow-list, number-type check and rate limits.
    pub guard: GuardSettings,
    /// Where delivery metrics go (EMF on stdout in Lambda).
    pub metrics: Metrics,
    /// How many message groups of one SQS batch the dispatcher sends at
    /// once; `None` is all of them (the batch size).
    pub dispatch_concurrency: Option<std::num::NonZeroUsize>,
    /// The voice fallback's window; `None` is off (see [`super::fallback`]).
    pub voice_fallback: Option<Duration>,
    /// Where the receipts function's events may come from.
    pub sources: EventSources,
    /// With two routes, a new code asked for by the same person within
    /// this window goes by the route the last one did not take
    /// (`RESEND_WINDOW_SECONDS`, 300 unless set; 0 turns it off).
    pub resend_window: Option<Duration>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            fast_path: true,
            fast_path_budget: Duration::from_millis(2000),
            ingress_lease: Duration::from_secs(15),
            dispatcher_lease: Duration::from_secs(60),
            retention: Duration::from_secs(86_400),
            otp_life: DEFAULT_OTP_LIFE,
            hash_key: HashKey::default(),
            guard: GuardSettings::default(),
            metrics: Metrics::default(),
            dispatch_concurrency: None,
            voice_fallback: None,
            sources: EventSources::default(),
            resend_window: Some(DEFAULT_RESEND_WINDOW),
        }
    }
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
    /// `HASH_KEY` or `HASH_KEY_SECRET_ARN`; wiring puts its bytes into
    /// `settings.hash_key`.
    pub hash_key: SecretSetting,
    pub org_name: String,
    pub default_locale: Locale,
    pub template_cache_ttl: Duration,
    pub eum: EumSettings,
    /// The flows' behaviour: the fast path, the code life, the guard, the
    /// dispatch concurrency, the voice fallback, the trusted sources.
    pub settings: PipelineSettings,
}

/// `VOICE_FALLBACK` (off by default) and its window, 60 seconds unless
/// `VOICE_FALLBACK_WINDOW_SECONDS` says otherwise (10 to 600).
pub fn voice_fallback_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<Duration>, ConfigError> {
    let env = Env(&get);
    let on = env.on_off("VOICE_FALLBACK", false)?;
    let window = env.secs_within(
        "VOICE_FALLBACK_WINDOW_SECONDS",
        60,
        10..=600,
        "expected 10 to 600 seconds",
    )?;
    Ok(on.then_some(window))
}

/// Okta waits 3 s; the fast path must leave time to answer.
const MAX_FAST_PATH_BUDGET_MS: u32 = 2800;

impl PipelineConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let mut p = Problems::default();
        let settings = p.take(PipelineSettings::from_lookup(&get));
        let hash_key = p.take(secret_setting(&env, "HASH_KEY", "HASH_KEY_SECRET_ARN"));
        let eum = p.take(eum_settings(&env));
        let ledger_table = p.take(env.req("LEDGER_TABLE"));
        let queue_url = p.take(env.req("QUEUE_URL"));
        let default_locale = p.take(env.default_locale());
        let template_cache_ttl = p.take(env.secs("TEMPLATE_CACHE_TTL_SECONDS", 300));
        let expiry_queue_url = env.opt("EXPIRY_QUEUE_URL");
        if settings
            .as_ref()
            .is_some_and(PipelineSettings::needs_timers)
            && expiry_queue_url.is_none()
        {
            p.push(ConfigError::Missing {
                var: "EXPIRY_QUEUE_URL",
            });
        }
        let (
            Some(settings),
            Some(hash_key),
            Some(eum),
            Some(ledger_table),
            Some(queue_url),
            Some(default_locale),
            Some(template_cache_ttl),
        ) = (
            settings,
            hash_key,
            eum,
            ledger_table,
            queue_url,
            default_locale,
            template_cache_ttl,
        )
        else {
            return Err(p.into_error());
        };
        // A problem that leaves no value missing (a required companion
        // variable) fails the start all the same.
        p.finish()?;
        Ok(PipelineConfig {
            ledger_table,
            templates_table: env.opt("TEMPLATES_TABLE"),
            queue_url,
            dlq_url: env.opt("DLQ_URL"),
            expiry_queue_url,
            hash_key,
            org_name: env.opt("ORG_NAME").unwrap_or_else(|| "Okta".to_owned()),
            default_locale,
            template_cache_ttl,
            eum,
            settings,
        })
    }
}

impl PipelineSettings {
    /// The flows' behaviour from the environment. The hash key's bytes and
    /// the metrics sink are left at their defaults: wiring gives them.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let mut p = Problems::default();
        let fast_path = env
            .choice(
                "FAST_PATH",
                true,
                &[
                    ("on", true),
                    ("off", false),
                    ("true", true),
                    ("false", false),
                    ("1", true),
                    ("0", false),
                ],
            )
            .map_err(|_| invalid("FAST_PATH", "expected on or off"));
        let fast_path = p.take(fast_path);
        let budget_ms = p.take(
            env.number("FAST_PATH_BUDGET_MS", 2000, 1..=MAX_FAST_PATH_BUDGET_MS)
                .map_err(|_| invalid("FAST_PATH_BUDGET_MS", "expected 1 to 2800 milliseconds")),
        );
        let retention = p.take(env.secs("LEDGER_RETENTION_SECONDS", 86_400));
        let otp_life = p.take(env.otp_life());
        let guard = p.take(guard_from_lookup(&get));
        let sources = EventSources {
            receipts_topic: p.take(env.arn("RECEIPTS_TOPIC_ARN", "sns")).flatten(),
            expiry_queue: p.take(env.arn("EXPIRY_QUEUE_ARN", "sqs")).flatten(),
        };
        let voice_fallback = p.take(voice_fallback_from_lookup(&get));
        let dispatch_concurrency = p.take(match env.opt("DISPATCH_CONCURRENCY") {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| invalid("DISPATCH_CONCURRENCY", "expected a whole number from 1")),
        });
        let resend_window = p.take(resend_window(&env));
        let (
            Some(fast_path),
            Some(budget_ms),
            Some(retention),
            Some(otp_life),
            Some(guard),
            Some(voice_fallback),
            Some(dispatch_concurrency),
            Some(resend_window),
        ) = (
            fast_path,
            budget_ms,
            retention,
            otp_life,
            guard,
            voice_fallback,
            dispatch_concurrency,
            resend_window,
        )
        else {
            return Err(p.into_error());
        };
        p.finish()?;
        Ok(PipelineSettings {
            fast_path,
            fast_path_budget: Duration::from_millis(u64::from(budget_ms)),
            retention,
            otp_life,
            guard,
            dispatch_concurrency,
            voice_fallback,
            sources,
            resend_window,
            ..PipelineSettings::default()
        })
    }

    /// Whether anything schedules checks on the timers queue: conversion
    /// tracking (expiry checks) or the voice fallback.
    pub fn needs_timers(&self) -> bool {
        self.guard.learning.conversions || self.voice_fallback.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::guard::settings::{AllowedCountries, DEFAULT_TOTAL_LIMIT};
    use std::collections::HashMap;

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
                "RATE_LIMIT_PER_USER",
                "RATE_LIMIT_PER_IP",
                "GUARD_REFUSAL",
                "MAX_PRICE",
                "LEDGER_TABLE"
            ]
        );
        let text = err.to_string();
        assert!(text.starts_with("6 configuration problems:"), "{text}");
        assert_eq!(text.lines().count(), 7, "{text}");
        assert!(text.contains("\n  - LEDGER_TABLE is not set"), "{text}");
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
        assert!(c.settings.fast_path);
        assert_eq!(c.settings.fast_path_budget, Duration::from_millis(2000));
        assert_eq!(c.org_name, "Okta");
        assert_eq!(c.settings.retention, Duration::from_secs(86_400));
        assert_eq!(
            pipe(&[("LEDGER_RETENTION_SECONDS", "3600")])
                .unwrap()
                .settings
                .retention,
            Duration::from_secs(3600)
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
        assert!(!pipe(&[("FAST_PATH", "off")]).unwrap().settings.fast_path);
        assert_eq!(c.settings.dispatch_concurrency, None);
        let four = pipe(&[("DISPATCH_CONCURRENCY", "4")]).unwrap();
        assert_eq!(four.settings.dispatch_concurrency.map(|n| n.get()), Some(4));
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
    }

    #[test]
    fn the_guards_policy_is_read_with_the_pipeline() {
        let c = pipe(&[]).unwrap();
        let g = pipe(&[
            ("ALLOWED_COUNTRIES", "*"),
            ("RATE_LIMIT_PER_USER", "off"),
            ("RATE_LIMIT_PER_COUNTRY", "300/60"),
        ])
        .unwrap()
        .settings
        .guard;
        assert_eq!(g.countries, AllowedCountries::All);
        assert_eq!(g.per_user, None);
        assert_eq!(g.per_country.map(|l| l.max), Some(300));
        assert_eq!(c.settings.guard.total, Some(DEFAULT_TOTAL_LIMIT));
        // A companion variable's absence fails the start too, though every
        // value it needs was read.
        let err = pipe(&[("CONVERSIONS", "on")]).unwrap_err();
        assert_eq!(err.vars(), ["EXPIRY_QUEUE_URL"]);
        let g = pipe(&[("RATE_LIMIT_TOTAL", "off")]).unwrap().settings.guard;
        assert_eq!(g.total, None);
        let g = pipe(&[("RATE_LIMIT_TOTAL", "50000/86400")])
            .unwrap()
            .settings
            .guard;
        assert_eq!(
            g.total.map(|l| (l.max, l.window.as_secs())),
            Some((50000, 86400))
        );
        assert_eq!(c.settings.guard, GuardSettings::default());
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
    fn the_receipts_functions_sources_are_arns_of_their_service() {
        let c = pipe(&[]).unwrap();
        // Unset trusts any; set, each must be an ARN of its service.
        assert_eq!(c.settings.sources, EventSources::default());
        let topic = "arn:aws:sns:us-east-1:123456789012:telehook-receipts";
        let queue = "arn:aws-cn:sqs:cn-north-1:123456789012:telehook-expiry";
        let sourced = pipe(&[("RECEIPTS_TOPIC_ARN", topic), ("EXPIRY_QUEUE_ARN", queue)]).unwrap();
        assert_eq!(
            sourced.settings.sources.receipts_topic.as_deref(),
            Some(topic)
        );
        assert_eq!(
            sourced.settings.sources.expiry_queue.as_deref(),
            Some(queue)
        );
        let err = pipe(&[
            ("RECEIPTS_TOPIC_ARN", queue),
            ("EXPIRY_QUEUE_ARN", "telehook-expiry"),
        ])
        .unwrap_err();
        assert_eq!(err.vars(), ["RECEIPTS_TOPIC_ARN", "EXPIRY_QUEUE_ARN"]);
    }
}
