//! Header-secret mode: a configured header must carry a configured secret,
//! compared in constant time.

use http::{HeaderMap, HeaderName};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::{AuthError, Principal, header_str};
use crate::config::HeaderSecretConfig;

/// Header-secret mode: the configured header must equal the secret.
pub struct HeaderSecret {
    header: HeaderName,
    digest: [u8; 32],
}

impl std::fmt::Debug for HeaderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderSecret")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl HeaderSecret {
    pub fn new(config: &HeaderSecretConfig) -> Self {
        HeaderSecret {
            header: config.header.clone(),
            digest: sha256(config.secret.expose_secret().as_bytes()),
        }
    }

    /// Compares SHA-256 digests in constant time, so neither the content nor
    /// the length of the secret leaks through timing.
    pub fn check(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = header_str(headers, &self.header)?;
        let given = sha256(value.as_bytes());
        if bool::from(given.ct_eq(&self.digest)) {
            Ok(Principal::SharedSecret)
        } else {
            Err(AuthError::BadSecret)
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Wraps a header secret from configuration.
pub fn secret(s: impl Into<String>) -> SecretString {
    SecretString::from(s.into())
}
