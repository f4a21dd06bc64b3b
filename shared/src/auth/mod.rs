//! Proving a hook call comes from Okta.
//!
//! Two modes, picked by configuration:
//! - **OAuth** (the default): `Authorization: Bearer <JWT>` minted by the
//!   customer's Okta authorization server with client credentials. RS256
//!   only; keys come from the issuer's JWKS, fetched lazily over HTTPS and
//!   cached; `iss`, `aud`, `exp`/`nbf`/`iat` (with leeway), `cid` and `scp`
//!   are all checked.
//! - **Header secret**: a configured header must carry a configured secret,
//!   compared in constant time.
//!
//! Errors say which check failed so that the reason can be logged; they never
//! hold the token or the secret. Callers answer every failure with the same
//! generic 401.

pub mod header_secret;
pub mod jwks;
pub mod jwt;
pub mod settings;

use http::{HeaderMap, HeaderName};
use thiserror::Error;

use settings::AuthConfig;

pub use header_secret::{HeaderSecret, secret};
pub use jwks::JwksCache;
pub use jwt::JwtVerifier;

/// Bearer tokens from Okta are around 1 KiB; anything past this is refused
/// before any parsing or key lookup.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a request was not authenticated. Safe to log; never sent to callers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("no credentials")]
    MissingCredentials,
    #[error("authorization scheme is not Bearer")]
    NotBearer,
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TokenTooLarge,
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm {0:?} is not allowed (RS256 only)")]
    AlgorithmNotAllowed(String),
    #[error("token header has no kid")]
    MissingKid,
    #[error("no key with this kid in the issuer's JWKS")]
    UnknownKid,
    #[error("issuer keys are unavailable: {0}")]
    KeysUnavailable(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token issuer is not the configured issuer")]
    WrongIssuer,
    #[error("token audience is not the configured audience")]
    WrongAudience,
    #[error("token is missing the {0} claim")]
    MissingClaim(&'static str),
    #[error("token client id (cid) is not allowed")]
    ClientNotAllowed,
    #[error("token scopes (scp) lack the required scope")]
    MissingScope,
    #[error("header secret does not match")]
    BadSecret,
}

impl AuthError {
    /// Stable short code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::NotBearer => "not_bearer",
            AuthError::TokenTooLarge => "token_too_large",
            AuthError::Malformed => "malformed",
            AuthError::AlgorithmNotAllowed(_) => "alg_not_allowed",
            AuthError::MissingKid => "missing_kid",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::IssuedInFuture => "issued_in_future",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::ClientNotAllowed => "client_not_allowed",
            AuthError::MissingScope => "missing_scope",
            AuthError::BadSecret => "bad_secret",
        }
    }
}

/// Who called, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An OAuth client of the customer's Okta org.
    Client { client_id: String },
    /// Header-secret mode: the caller knew the secret.
    SharedSecret,
}

/// Why the authenticator could not be built.
#[derive(Debug, Error)]
pub enum AuthInitError {
    #[error("HTTP client for the issuer's keys: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// The configured authentication mode, ready to check requests.
#[derive(Debug)]
pub enum Authenticator {
    OAuth(Box<JwtVerifier>),
    HeaderSecret(HeaderSecret),
}

impl Authenticator {
    /// Builds the authenticator. No network I/O happens here: the JWKS is
    /// fetched by [`Authenticator::prefetch`] (Lambda init) or by the first
    /// request that needs it.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthInitError> {
        Ok(match config {
            AuthConfig::OAuth(c) => Authenticator::OAuth(Box::new(JwtVerifier::new(c)?)),
            AuthConfig::HeaderSecret(c) => Authenticator::HeaderSecret(HeaderSecret::new(c)?),
        })
    }

    /// Loads what the first request would otherwise fetch inside Okta's
    /// 3 seconds: the issuer's keys, in OAuth mode, within `deadline`. A
    /// failure is logged and left to the first request; nothing else
    /// changes, so init never depends on the issuer being reachable.
    pub async fn prefetch(&self, deadline: std::time::Duration) -> bool {
        match self {
            Authenticator::OAuth(v) => v.prefetch_keys(deadline).await,
            Authenticator::HeaderSecret(_) => true,
        }
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match self {
            Authenticator::OAuth(v) => {
                let value = header_str(headers, &http::header::AUTHORIZATION)?;
                let token = bearer_token(value)?;
                v.verify(token).await
            }
            Authenticator::HeaderSecret(h) => h.check(headers).await,
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a str, AuthError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(AuthError::MissingCredentials)?;
    // Two credentials in one request is never Okta; refuse rather than guess.
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    value.to_str().map_err(|_| AuthError::Malformed)
}

/// Extracts the token from `Bearer <token>`; the scheme is case-insensitive
/// (RFC 7235).
pub fn bearer_token(value: &str) -> Result<&str, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(if value.is_empty() {
        AuthError::MissingCredentials
    } else {
        AuthError::NotBearer
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = rest.trim_start();
    if token.is_empty() {
        return Err(AuthError::MissingCredentials);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::settings::HeaderSecretConfig;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("BEARER   abc"), Ok("abc"));
        assert_eq!(bearer_token("Basic abc"), Err(AuthError::NotBearer));
        assert_eq!(bearer_token("abc"), Err(AuthError::NotBearer));
        assert_eq!(bearer_token("Bearer "), Err(AuthError::NotBearer));
        assert_eq!(bearer_token(""), Err(AuthError::MissingCredentials));
        let big = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(&big), Err(AuthError::TokenTooLarge));
    }

    #[tokio::test]
    async fn header_secret_constant_time_match() {
        let h = HeaderSecret::new(&HeaderSecretConfig {
            header: HeaderName::from_static("x-okta-secret"),
            secret: secret("correct horse battery staple"),
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(h.check(&headers).await, Err(AuthError::MissingCredentials));
        headers.insert(
            "X-Okta-Secret",
            "correct horse battery stapl".parse().unwrap(),
        );
        assert_eq!(h.check(&headers).await, Err(AuthError::BadSecret));
        headers.insert(
            "X-OKTA-SECRET",
            "correct horse battery staple".parse().unwrap(),
        );
        assert_eq!(h.check(&headers).await, Ok(Principal::SharedSecret));
        assert!(!format!("{h:?}").contains("staple"));
    }
}
