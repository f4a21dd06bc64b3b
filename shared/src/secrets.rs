//! Secrets given by ARN (`HASH_KEY_SECRET_ARN`, `AUTH_HEADER_SECRET_ARN`):
//! the [`SecretSource`] port, its Secrets Manager adapter, reading at init
//! ([`resolve`]), and [`Refresher`], which re-reads a secret when its cached
//! value stops working, at most once per cooldown, so a rotated secret is
//! picked up without a redeploy.
//!
//! A rotation has two steps: the new value goes into Secrets Manager, then
//! into Okta. Between them Okta still sends the old one, so a header secret
//! accepts the previous version too ([`SecretVersions`]), but only for
//! [`ROTATION_GRACE`] after the current one was created: long enough to
//! finish a rotation, short enough that a leaked value stops working.
//!
//! The value is never logged; errors carry the service's error code only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::classify;
use crate::config::{ConfigError, MIN_SECRET_LEN, SecretSetting};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret unavailable: {0}")]
    Unavailable(String),
    #[error("secret refused: {0}")]
    Rejected(String),
    #[error("secret has no string value")]
    NoString,
    #[error("secret is shorter than {MIN_SECRET_LEN} characters")]
    TooShort,
}

/// How long after a new version is created the previous one still counts.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The values a header secret accepts: the current one, and during a
/// rotation's grace the previous one.
#[derive(Debug, Clone)]
pub struct SecretVersions {
    pub current: SecretString,
    pub previous: Option<SecretString>,
}

/// Where a secret's current value comes from.
#[async_trait]
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    async fn read(&self) -> Result<SecretString, SecretError>;

    /// The current value, and the previous one while a rotation is young.
    /// A source that keeps no versions has no previous value.
    async fn read_versions(&self) -> Result<SecretVersions, SecretError> {
        Ok(SecretVersions {
            current: self.read().await?,
            previous: None,
        })
    }
}

/// A Secrets Manager secret, read with `GetSecretValue` (its current
/// version).
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl SecretsManagerSecret {
    pub fn new(client: aws_sdk_secretsmanager::Client, arn: impl Into<String>) -> Self {
        SecretsManagerSecret {
            client,
            arn: arn.into(),
        }
    }
}

impl SecretsManagerSecret {
    /// One version by its stage: its value and when it was created.
    async fn stage(
        &self,
        stage: &str,
    ) -> Result<(SecretString, Option<std::time::SystemTime>), SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .version_stage(stage)
            .send()
            .await
            .map_err(|e| {
                let c = classify(&e);
                if c.retryable {
                    SecretError::Unavailable(c.detail)
                } else {
                    SecretError::Rejected(c.detail)
                }
            })?;
        let value = out.secret_string().ok_or(SecretError::NoString)?;
        if value.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        let created = out
            .created_date()
            .and_then(|d| std::time::SystemTime::try_from(*d).ok());
        Ok((SecretString::from(value.to_owned()), created))
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSecret {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn read(&self) -> Result<SecretString, SecretError> {
        self.stage("AWSCURRENT").await.map(|(v, _)| v)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn read_versions(&self) -> Result<SecretVersions, SecretError> {
        let (current, created) = self.stage("AWSCURRENT").await?;
        let young = created
            .and_then(|c| c.elapsed().ok())
            .is_some_and(|age| age < ROTATION_GRACE);
        // No previous version (a secret never rotated), or one that cannot
        // be read: the current value alone.
        let previous = if young {
            self.stage("AWSPREVIOUS").await.ok().map(|(v, _)| v)
        } else {
            None
        };
        Ok(SecretVersions { current, previous })
    }
}

/// A setting's value: as given, or read from Secrets Manager. Lambda init
/// calls this; an error names `arn_var` and stops the start, as any other
/// bad configuration does.
pub async fn resolve(
    setting: &SecretSetting,
    client: &aws_sdk_secretsmanager::Client,
    arn_var: &'static str,
) -> Result<SecretString, ConfigError> {
    match setting {
        SecretSetting::Value(v) => Ok(v.clone()),
        SecretSetting::Arn(arn) => SecretsManagerSecret::new(client.clone(), arn)
            .read()
            .await
            .map_err(|e| ConfigError::Invalid {
                var: arn_var,
                reason: e.to_string(),
            }),
    }
}

/// Re-reads a secret when the cached value stopped working, at most once
/// per cooldown: a flood of bad credentials must not become a flood of
/// Secrets Manager calls.
#[derive(Debug)]
pub struct Refresher {
    source: Arc<dyn SecretSource>,
    cooldown: Duration,
    last: Mutex<Option<Instant>>,
}

/// How often a wrong header may trigger a re-read.
pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(30);

impl Refresher {
    pub fn new(source: Arc<dyn SecretSource>, cooldown: Duration) -> Self {
        Refresher {
            source,
            cooldown,
            last: Mutex::new(None),
        }
    }

    /// The accepted values, if a re-read is due and succeeds.
    pub async fn reread(&self) -> Option<SecretVersions> {
        let mut last = self.last.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.cooldown) {
            return None;
        }
        *last = Some(Instant::now());
        match self.source.read_versions().await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the secret; keeping the cached value");
                None
            }
        }
    }
}

/// The SHA-256 of a secret, for constant-time comparison.
pub fn digest(secret: &SecretString) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        secret.expose_secret().as_bytes(),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl SecretSource for Counting {
        async fn read(&self) -> Result<SecretString, SecretError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(SecretString::from(format!("rotated-secret-value-{n}")))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rereads_at_most_once_per_cooldown() {
        let source = Arc::new(Counting::default());
        let r = Refresher::new(source.clone(), Duration::from_secs(30));
        assert!(r.reread().await.is_some());
        for _ in 0..100 {
            assert!(r.reread().await.is_none());
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            r.reread()
                .await
                .map(|v| v.current.expose_secret().to_owned()),
            Some("rotated-secret-value-1".to_owned())
        );
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
    }
}
