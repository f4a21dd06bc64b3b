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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::config::{AuthConfig, HeaderSecretConfig, OAuthConfig};

/// Bearer tokens from Okta are around 1 KiB; anything past this is refused
/// before any parsing or key lookup.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// A JWKS document is a few KiB. The cap keeps a hostile or broken endpoint
/// from filling memory.
const MAX_JWKS_BYTES: usize = 256 * 1024;

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

/// The configured authentication mode, ready to check requests.
#[derive(Debug)]
pub enum Authenticator {
    OAuth(Box<JwtVerifier>),
    HeaderSecret(HeaderSecret),
}

impl Authenticator {
    /// Builds the authenticator. No network I/O happens here: the JWKS is
    /// fetched on the first request that needs it, which keeps cold starts
    /// short.
    pub fn from_config(config: &AuthConfig) -> Result<Self, reqwest::Error> {
        Ok(match config {
            AuthConfig::OAuth(c) => Authenticator::OAuth(Box::new(JwtVerifier::new(c)?)),
            AuthConfig::HeaderSecret(c) => Authenticator::HeaderSecret(HeaderSecret::new(c)),
        })
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match self {
            Authenticator::OAuth(v) => {
                let value = header_str(headers, &http::header::AUTHORIZATION)?;
                let token = bearer_token(value)?;
                v.verify(token).await
            }
            Authenticator::HeaderSecret(h) => h.check(headers),
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

// ------------------------------------------------------------------ JWT

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims beyond the registered ones that jsonwebtoken checks for us.
#[derive(Deserialize)]
struct OktaClaims {
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    scp: Option<Scopes>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Okta sends `scp` as an array; some servers send a space-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Spaced(String),
}

impl Scopes {
    fn contains(&self, scope: &str) -> bool {
        match self {
            Scopes::List(v) => v.iter().any(|s| s == scope),
            Scopes::Spaced(s) => s.split(' ').any(|s| s == scope),
        }
    }
}

/// Verifies Okta access tokens.
#[derive(Debug)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    client_ids: Vec<String>,
    required_scope: String,
    leeway: Duration,
    validation: Validation,
    jwks: JwksCache,
}

impl JwtVerifier {
    pub fn new(config: &OAuthConfig) -> Result<Self, reqwest::Error> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(JwtVerifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            client_ids: config.client_ids.clone(),
            required_scope: config.required_scope.clone(),
            leeway: config.leeway,
            validation,
            jwks: JwksCache::new(
                config.jwks_url.clone(),
                config.jwks_ttl,
                config.jwks_refresh_cooldown,
            )?,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLarge);
        }
        // The header is read by hand before anything else so that the
        // algorithm check does not depend on which algorithms the JWT library
        // happens to know: `none`, `HS256` and friends stop here.
        let mut segments = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(AuthError::Malformed);
        };
        if h.is_empty() || p.is_empty() {
            return Err(AuthError::Malformed);
        }
        let header_bytes = URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|_| AuthError::Malformed)?;
        let header: JoseHeader =
            serde_json::from_slice(&header_bytes).map_err(|_| AuthError::Malformed)?;
        if header.alg != "RS256" {
            // Only a short, printable prefix: the header is attacker data.
            let alg = header
                .alg
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect();
            return Err(AuthError::AlgorithmNotAllowed(alg));
        }
        if s.is_empty() {
            return Err(AuthError::Malformed);
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::MissingKid)?;
        let key = self.jwks.key(&kid).await?;

        let data =
            jsonwebtoken::decode::<OktaClaims>(token, &key, &self.validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidSignature => AuthError::BadSignature,
                    K::ExpiredSignature => AuthError::Expired,
                    K::ImmatureSignature => AuthError::NotYetValid,
                    K::InvalidIssuer => AuthError::WrongIssuer,
                    K::InvalidAudience => AuthError::WrongAudience,
                    K::MissingRequiredClaim(c) => AuthError::MissingClaim(match c.as_str() {
                        "exp" => "exp",
                        "iss" => "iss",
                        "aud" => "aud",
                        _ => "required",
                    }),
                    K::InvalidAlgorithm => AuthError::AlgorithmNotAllowed("RS256 mismatch".into()),
                    _ => AuthError::Malformed,
                }
            })?;
        let claims = data.claims;

        if let Some(iat) = claims.iat {
            let now = chrono::Utc::now().timestamp();
            if iat > now + self.leeway.as_secs() as i64 {
                return Err(AuthError::IssuedInFuture);
            }
        }
        let cid = claims.cid.ok_or(AuthError::MissingClaim("cid"))?;
        if !self.client_ids.iter().any(|c| c == &cid) {
            return Err(AuthError::ClientNotAllowed);
        }
        let scp = claims.scp.ok_or(AuthError::MissingClaim("scp"))?;
        if !scp.contains(&self.required_scope) {
            return Err(AuthError::MissingScope);
        }
        Ok(Principal::Client { client_id: cid })
    }
}

// ----------------------------------------------------------------- JWKS

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The issuer's signing keys, cached per process.
///
/// Keys are fetched on first use and again after `ttl`. A token with an
/// unknown `kid` (Okta rotated its keys) triggers a refresh, but at most one
/// per `cooldown`: a flood of tokens with made-up `kid`s must not turn into a
/// flood of requests to the issuer. Refreshes are single-flight. When a
/// refresh fails, the keys already held keep working.
pub struct JwksCache {
    url: reqwest::Url,
    client: reqwest::Client,
    ttl: Duration,
    cooldown: Duration,
    state: RwLock<JwksState>,
    refresh: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url.as_str())
            .field("ttl", &self.ttl)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl JwksCache {
    pub fn new(
        url: reqwest::Url,
        ttl: Duration,
        cooldown: Duration,
    ) -> Result<Self, reqwest::Error> {
        // Okta allows 3 s for the whole hook; a key fetch gets a small share.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_millis(900))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("telehook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(JwksCache {
            url,
            client,
            ttl,
            cooldown,
            state: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
            fetches: Default::default(),
        })
    }

    /// How many JWKS fetches this cache has attempted (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lookup(&self, kid: &str) -> (Option<Arc<DecodingKey>>, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
        (state.keys.get(kid).cloned(), fresh)
    }

    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let (Some(key), true) = self.lookup(kid) {
            return Ok(key);
        }
        let _single_flight = self.refresh.lock().await;
        // Another task may have refreshed while this one waited.
        let (found, fresh) = self.lookup(kid);
        if let (Some(key), true) = (&found, fresh) {
            return Ok(key.clone());
        }
        let may_fetch = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state
                .last_attempt
                .is_none_or(|t| t.elapsed() >= self.cooldown)
        };
        let mut fetch_error = None;
        if may_fetch {
            self.fetches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let result = self.fetch().await;
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            state.last_attempt = Some(Instant::now());
            match result {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "issuer JWKS loaded");
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, kept = state.keys.len(), "issuer JWKS fetch failed");
                    fetch_error = Some(e);
                }
            }
        }
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        match (fetch_error, state.fetched_at) {
            (Some(e), None) => Err(AuthError::KeysUnavailable(e)),
            (None, None) => Err(AuthError::KeysUnavailable(
                "waiting for refresh cooldown".into(),
            )),
            _ => Err(AuthError::UnknownKid),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let attempt = || async {
            let resp = self
                .client
                .get(self.url.clone())
                .header("accept", "application/json")
                .send()
                .await?;
            let resp = resp.error_for_status()?;
            resp.bytes().await
        };
        let body = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_times(1),
            )
            .when(|e: &reqwest::Error| {
                e.is_timeout() || e.is_connect() || e.status().is_some_and(|s| s.is_server_error())
            })
            .await
            .map_err(|e| {
                // reqwest's Display includes the URL, which is configuration,
                // not a secret; keep the status when there is one.
                match e.status() {
                    Some(s) => format!("HTTP {s}"),
                    None if e.is_timeout() => "timed out".to_owned(),
                    None => "connection failed".to_owned(),
                }
            })?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("JWKS document too large".to_owned());
        }
        let raw: RawJwks =
            serde_json::from_slice(&body).map_err(|_| "JWKS is not a JSON key set".to_owned())?;
        let mut keys = HashMap::new();
        for value in raw.keys {
            // One odd key (another key type, say) must not hide the others.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let Some((kid, key)) = usable_rs256_key(&jwk) {
                keys.insert(kid, Arc::new(key));
            }
        }
        if keys.is_empty() {
            return Err("JWKS has no usable RS256 signing key".to_owned());
        }
        Ok(keys)
    }
}

fn usable_rs256_key(jwk: &Jwk) -> Option<(String, DecodingKey)> {
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if jwk
        .common
        .key_algorithm
        .is_some_and(|alg| alg != jsonwebtoken::jwk::KeyAlgorithm::RS256)
    {
        return None;
    }
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return None;
    };
    let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
    Some((kid, key))
}

// -------------------------------------------------------- header secret

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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn header_secret_constant_time_match() {
        let h = HeaderSecret::new(&HeaderSecretConfig {
            header: HeaderName::from_static("x-okta-secret"),
            secret: secret("correct horse battery staple"),
        });
        let mut headers = HeaderMap::new();
        assert_eq!(h.check(&headers), Err(AuthError::MissingCredentials));
        headers.insert(
            "X-Okta-Secret",
            "correct horse battery stapl".parse().unwrap(),
        );
        assert_eq!(h.check(&headers), Err(AuthError::BadSecret));
        headers.insert(
            "X-OKTA-SECRET",
            "correct horse battery staple".parse().unwrap(),
        );
        assert_eq!(h.check(&headers), Ok(Principal::SharedSecret));
        assert!(!format!("{h:?}").contains("staple"));
    }
}
