//! Verifying Okta's bearer JWTs: RS256 only, the header checked by hand
//! before anything else, then the signature, then `exp`/`nbf`/`iat`, `iss`,
//! `aud`, `cid`, `scp`.
//!
//! The token is read once: its header and its claims are each decoded and
//! parsed a single time, the claims into one borrowed struct (the JWT
//! library's `decode` parsed the header again and the claims twice, once
//! for its checks and once for ours). The signature is checked with the
//! issuer's key as parsed once per key set fetch (`jwks::VerifyingKey`,
//! aws-lc's RS256 with the JWT library's key sizes); the registered claims
//! are checked here with the JWT library's rules: `exp`, `iss` and `aud`
//! required, `exp` and `nbf` whole seconds, within the leeway.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::jwks::JwksCache;
use super::{AuthError, MAX_TOKEN_BYTES, Principal};
use crate::auth::settings::OAuthConfig;
use crate::json::OneOrMany;

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
}

/// Every claim we check, read in one pass, borrowing from the decoded
/// payload where no escapes forbid it.
#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default, borrow)]
    iss: Option<OneOrMany<'a>>,
    #[serde(default, borrow)]
    aud: Option<OneOrMany<'a>>,
    #[serde(default, borrow)]
    cid: Option<Cow<'a, str>>,
    /// Okta sends `scp` as an array; some servers send a space-separated
    /// string.
    #[serde(default, borrow)]
    scp: Option<OneOrMany<'a>>,
}

/// `scp` as a string is a space-separated list.
fn has_scope(scp: &OneOrMany<'_>, scope: &str) -> bool {
    match scp {
        OneOrMany::One(s) => s.split(' ').any(|s| s == scope),
        OneOrMany::Many(_) => scp.contains(scope),
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
    jwks: JwksCache,
}

impl JwtVerifier {
    pub fn new(config: &OAuthConfig) -> Result<Self, reqwest::Error> {
        Ok(JwtVerifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            client_ids: config.client_ids.clone(),
            required_scope: config.required_scope.clone(),
            leeway: config.leeway,
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
        let parts = Parts::split(token)?;
        let header_bytes = decode_part(parts.header)?;
        let kid = acceptable_kid(&header_bytes, !parts.signature.is_empty())?;
        let key = self.jwks.key(&kid).await?;
        let signed = &token[..parts.header.len() + 1 + parts.claims.len()];
        let signature = URL_SAFE_NO_PAD
            .decode(parts.signature)
            .map_err(|_| AuthError::Malformed)?;
        key.verify_sig(signed.as_bytes(), &signature)
            .map_err(|_| AuthError::BadSignature)?;
        let payload = decode_part(parts.claims)?;
        let claims: Claims<'_> =
            serde_json::from_slice(&payload).map_err(|_| AuthError::Malformed)?;
        self.check(&claims, chrono::Utc::now().timestamp())?;
        let cid = claims.cid.ok_or(AuthError::MissingClaim("cid"))?;
        if !self.client_ids.iter().any(|c| c.as_str() == cid) {
            return Err(AuthError::ClientNotAllowed);
        }
        let scp = claims.scp.ok_or(AuthError::MissingClaim("scp"))?;
        if !has_scope(&scp, &self.required_scope) {
            return Err(AuthError::MissingScope);
        }
        Ok(Principal::Client {
            client_id: cid.into_owned(),
        })
    }

    /// The registered claims, by the JWT library's rules: `exp`, `iss` and
    /// `aud` required; expired when `exp` is more than the leeway past, not
    /// yet valid when `nbf` is more than the leeway ahead; `iss` ours; our
    /// audience among `aud`. Then `iat`, which Okta sets and the library
    /// does not check: not more than the leeway ahead.
    fn check(&self, claims: &Claims<'_>, now: i64) -> Result<(), AuthError> {
        let exp = claims.exp.ok_or(AuthError::MissingClaim("exp"))?;
        let iss = claims.iss.as_ref().ok_or(AuthError::MissingClaim("iss"))?;
        let aud = claims.aud.as_ref().ok_or(AuthError::MissingClaim("aud"))?;
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let now_u = u64::try_from(now).unwrap_or(0);
        let leeway_u = self.leeway.as_secs();
        if exp < now_u.saturating_sub(leeway_u) {
            return Err(AuthError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now_u.saturating_add(leeway_u))
        {
            return Err(AuthError::NotYetValid);
        }
        if !iss.contains(&self.issuer) {
            return Err(AuthError::WrongIssuer);
        }
        if !aud.contains(&self.audience) {
            return Err(AuthError::WrongAudience);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return Err(AuthError::IssuedInFuture);
        }
        Ok(())
    }
}

/// A compact JWS: three base64url parts. An empty header or payload is
/// malformed at once; an empty signature once the header has been read, so
/// that a token signed with another algorithm is named for it.
struct Parts<'a> {
    header: &'a str,
    claims: &'a str,
    signature: &'a str,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str) -> Result<Self, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLarge);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(AuthError::Malformed);
        };
        if header.is_empty() || claims.is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(Parts {
            header,
            claims,
            signature,
        })
    }
}

fn decode_part(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)
}

/// The `kid` of a token whose header is acceptable. The header is read by
/// hand before anything else so that the algorithm check does not depend on
/// which algorithms the JWT library happens to know: `none`, `HS256` and
/// friends stop here.
fn acceptable_kid(header_bytes: &[u8], signed: bool) -> Result<String, AuthError> {
    let header: JoseHeader<'_> =
        serde_json::from_slice(header_bytes).map_err(|_| AuthError::Malformed)?;
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
    if !signed {
        return Err(AuthError::Malformed);
    }
    header
        .kid
        .filter(|k| !k.is_empty())
        .map(Cow::into_owned)
        .ok_or(AuthError::MissingKid)
}
