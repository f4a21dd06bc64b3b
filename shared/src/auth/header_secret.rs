//! Header-secret mode: a configured header must carry a configured secret,
//! compared in constant time. A secret given by ARN is re-read when a
//! request's header stops matching (at most once per cooldown), so a
//! rotated secret works without a redeploy.

use std::sync::RwLock;

use http::{HeaderMap, HeaderName};
use secrecy::SecretString;
use subtle::ConstantTimeEq;

use super::{AuthError, Principal, header_str};
use crate::config::{ConfigError, HeaderSecretConfig, SecretSetting};
use crate::secrets::{Refresher, digest};

/// Header-secret mode: the configured header must equal the secret.
pub struct HeaderSecret {
    header: HeaderName,
    digest: RwLock<[u8; 32]>,
    refresher: Option<Refresher>,
}

impl std::fmt::Debug for HeaderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderSecret")
            .field("header", &self.header)
            .field("refreshes", &self.refresher.is_some())
            .finish_non_exhaustive()
    }
}

impl HeaderSecret {
    /// From a secret given by value. One given by ARN has to be read first
    /// (`IngressDeps::for_lambda` does), and this says so.
    pub fn new(config: &HeaderSecretConfig) -> Result<Self, ConfigError> {
        match &config.secret {
            SecretSetting::Value(v) => Ok(Self::with_value(config.header.clone(), v, None)),
            SecretSetting::Arn(_) => Err(ConfigError::Invalid {
                var: "AUTH_HEADER_SECRET_ARN",
                reason: "the secret has not been read".into(),
            }),
        }
    }

    /// From a value already read, re-read through `refresher` on mismatch.
    pub fn with_value(
        header: HeaderName,
        value: &SecretString,
        refresher: Option<Refresher>,
    ) -> Self {
        HeaderSecret {
            header,
            digest: RwLock::new(digest(value)),
            refresher,
        }
    }

    fn matches(&self, given: &[u8; 32]) -> bool {
        let current = *self.digest.read().unwrap_or_else(|p| p.into_inner());
        bool::from(given.ct_eq(&current))
    }

    /// Compares SHA-256 digests in constant time, so neither the content nor
    /// the length of the secret leaks through timing.
    pub async fn check(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = header_str(headers, &self.header)?;
        let given = digest(&SecretString::from(value.to_owned()));
        if self.matches(&given) {
            return Ok(Principal::SharedSecret);
        }
        if let Some(fresh) = match &self.refresher {
            Some(r) => r.reread().await,
            None => None,
        } {
            *self.digest.write().unwrap_or_else(|p| p.into_inner()) = digest(&fresh);
            if self.matches(&given) {
                tracing::info!("header secret was rotated; using the new value");
                return Ok(Principal::SharedSecret);
            }
        }
        Err(AuthError::BadSecret)
    }
}

/// Wraps a header secret from configuration.
pub fn secret(s: impl Into<String>) -> SecretSetting {
    SecretSetting::Value(SecretString::from(s.into()))
}
