//! Header-secret mode: a configured header must carry a configured secret,
//! compared in constant time. A secret given by ARN is re-read when a
//! request's header stops matching (at most once per cooldown), so a
//! rotated secret works without a redeploy; while a rotation is young the
//! previous value is accepted too (see `secrets`), so Okta is not refused
//! between putting the new value in Secrets Manager and into Okta.

use std::sync::RwLock;

use http::{HeaderMap, HeaderName};
use secrecy::SecretString;
use subtle::ConstantTimeEq;

use super::{AuthError, Principal, header_str};
use crate::auth::settings::HeaderSecretConfig;
use crate::config::{ConfigError, SecretSetting};
use crate::secrets::{Refresher, SecretVersions, digest};

/// Header-secret mode: the configured header must equal the secret (its
/// current value, or during a rotation the previous one).
pub struct HeaderSecret {
    header: HeaderName,
    digests: RwLock<Vec<[u8; 32]>>,
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
        Self::with_versions(
            header,
            &SecretVersions {
                current: value.clone(),
                previous: None,
            },
            refresher,
        )
    }

    /// From the versions already read (the current value, and the previous
    /// one during a rotation).
    pub fn with_versions(
        header: HeaderName,
        versions: &SecretVersions,
        refresher: Option<Refresher>,
    ) -> Self {
        HeaderSecret {
            header,
            digests: RwLock::new(digests(versions)),
            refresher,
        }
    }

    /// Every accepted digest is compared, so the time taken does not tell
    /// which one (if any) matched.
    fn matches(&self, given: &[u8; 32]) -> bool {
        let accepted = self.digests.read().unwrap_or_else(|p| p.into_inner());
        accepted
            .iter()
            .fold(subtle::Choice::from(0), |any, d| any | given.ct_eq(d))
            .into()
    }

    /// The header the secret comes in.
    pub fn header(&self) -> &HeaderName {
        &self.header
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
            *self.digests.write().unwrap_or_else(|p| p.into_inner()) = digests(&fresh);
            if self.matches(&given) {
                tracing::info!("header secret was rotated; using the new value");
                return Ok(Principal::SharedSecret);
            }
        }
        Err(AuthError::BadSecret)
    }
}

fn digests(v: &SecretVersions) -> Vec<[u8; 32]> {
    std::iter::once(&v.current)
        .chain(v.previous.as_ref())
        .map(digest)
        .collect()
}

/// Wraps a header secret from configuration.
pub fn secret(s: impl Into<String>) -> SecretSetting {
    SecretSetting::Value(SecretString::from(s.into()))
}
