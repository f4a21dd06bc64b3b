//! Verifying Okta's bearer JWTs: RS256 only, the header checked by hand
//! before anything else, then `iss`, `aud`, `exp`/`nbf`/`iat`, `cid`, `scp`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::JwksCache;
use super::{AuthError, MAX_TOKEN_BYTES, Principal};
use crate::auth::settings::OAuthConfig;

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

    /// Fetches the issuer's keys ahead of the first token (see
    /// [`JwksCache::prefetch`]).
    pub async fn prefetch_keys(&self, deadline: Duration) -> bool {
        self.jwks.prefetch(deadline).await
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let kid = unverified_kid(token)?;
        let key = self.jwks.key(&kid).await?;
        let claims = jsonwebtoken::decode::<OktaClaims>(token, &key, &self.validation)
            .map_err(|e| jwt_error(&e))?
            .claims;
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

/// The `kid` of a token whose shape and algorithm are acceptable. The
/// header is read by hand before anything else so that the algorithm check
/// does not depend on which algorithms the JWT library happens to know:
/// `none`, `HS256` and friends stop here.
fn unverified_kid(token: &str) -> Result<String, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge);
    }
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
    header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::MissingKid)
}

fn jwt_error(e: &jsonwebtoken::errors::Error) -> AuthError {
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
}
