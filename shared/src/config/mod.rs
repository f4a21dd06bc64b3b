//! The environment reader every owner's settings are parsed with.
//!
//! Every error names the variable that is missing or wrong, and never echoes a
//! secret's value. Lookups go through a function so tests (and the local CLI)
//! can supply values without touching the process environment. Each owner
//! parses its own settings beside its code: the ingress's authentication
//! (`auth::settings`), the pipeline's (`flows::settings`), the guard's policy
//! (`flows::guard::settings`) and End User Messaging's
//! (`messenger::settings`); this module holds what they share.

use std::time::Duration;

use secrecy::SecretString;
use thiserror::Error;

use crate::domain::locale::Locale;
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
pub(crate) fn secret_setting(
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

pub(crate) struct Env<'a>(pub(crate) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-blank value.
    pub(crate) fn opt(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn req(&self, var: &'static str) -> Result<String, ConfigError> {
        self.opt(var).ok_or(ConfigError::Missing { var })
    }

    /// `DEFAULT_LOCALE`, or English.
    pub(crate) fn default_locale(&self) -> Result<Locale, ConfigError> {
        let raw = self.opt("DEFAULT_LOCALE");
        Locale::parse(raw.as_deref().unwrap_or("en"))
            .map_err(|_| invalid("DEFAULT_LOCALE", "not a language tag such as en or en-US"))
    }

    /// `OTP_LIFE_SECONDS`: Okta's OTP life, 5 minutes unless the org says
    /// otherwise. Assumed for a hook without `otpExpires`, and the most a
    /// message claims the code is valid for.
    pub(crate) fn otp_life(&self) -> Result<Duration, ConfigError> {
        let life = self.secs("OTP_LIFE_SECONDS", DEFAULT_OTP_LIFE.as_secs())?;
        if !(30..=3600).contains(&life.as_secs()) {
            return Err(invalid("OTP_LIFE_SECONDS", "expected 30 to 3600 seconds"));
        }
        Ok(life)
    }

    /// An optional ARN of `service` (`arn:PARTITION:service:…`).
    pub(crate) fn arn(
        &self,
        var: &'static str,
        service: &str,
    ) -> Result<Option<String>, ConfigError> {
        match self.opt(var) {
            None => Ok(None),
            Some(v) if v.split(':').nth(2) == Some(service) && v.starts_with("arn:") => Ok(Some(v)),
            Some(_) => Err(invalid(var, &format!("expected an {service} ARN"))),
        }
    }

    pub(crate) fn secs(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        match self.opt(var) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| invalid(var, "expected a whole number of seconds")),
        }
    }

    /// Seconds within `range`; `reason` says the range to the operator.
    pub(crate) fn secs_within(
        &self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        reason: &str,
    ) -> Result<Duration, ConfigError> {
        let d = self.secs(var, default)?;
        if range.contains(&d.as_secs()) {
            Ok(d)
        } else {
            Err(invalid(var, reason))
        }
    }

    /// One of `choices`, named case-insensitively; `default` when unset.
    pub(crate) fn choice<T: Copy>(
        &self,
        var: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(v) = self.opt(var) else {
            return Ok(default);
        };
        if let Some((_, t)) = choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&v))
        {
            return Ok(*t);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let listed = match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(invalid(var, &format!("expected {listed}")))
    }

    /// `on` or `off`, `default` when unset.
    pub(crate) fn on_off(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.choice(var, default, &[("on", true), ("off", false)])
    }

    /// A whole number within `range`, `default` when unset.
    pub(crate) fn number(
        &self,
        var: &'static str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        let Some(v) = self.opt(var) else {
            return Ok(default);
        };
        v.parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                let (from, to) = (range.start(), range.end());
                invalid(var, &format!("expected a whole number from {from} to {to}"))
            })
    }
}

pub(crate) fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

/// `OTP_LIFE_SECONDS` alone, for local mode's pipeline.
pub fn otp_life_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    Env(&get).otp_life()
}
