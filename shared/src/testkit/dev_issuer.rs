//! A development OAuth issuer: an RSA signing key, its JWKS, and minting of
//! Okta-shaped access tokens.
//!
//! Local mode serves this key's JWKS and `telehook token` mints tokens with
//! it, so the ingress verifies locally exactly as it does against Okta. Tests
//! use it to sign both good tokens and deliberately bad ones.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use thiserror::Error;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;

/// The audience, client id and scope the dev issuer's tokens carry by
/// default, and local mode's ingress requires: one definition for the CLI
/// and the tests.
pub const AUDIENCE: &str = "api://default";
pub const CLIENT_ID: &str = "telehook-local";
pub const SCOPE: &str = "telephony.hook";

#[derive(Debug, Error)]
pub enum DevIssuerError {
    #[error("could not generate an RSA key")]
    KeyGeneration,
    #[error("the key file is not an unencrypted PKCS#8 RSA private key")]
    BadKey,
    #[error("could not sign the token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// An RS256 signing key with its public half in JWK form.
pub struct DevKey {
    kid: String,
    pkcs8_der: Vec<u8>,
    encoding: EncodingKey,
    n: String,
    e: String,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The claims of an Okta access token from the client-credentials flow.
#[derive(Debug, Clone, Serialize)]
pub struct TokenClaims {
    pub iss: String,
    pub aud: String,
    pub cid: String,
    pub sub: String,
    pub scp: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
}

impl TokenClaims {
    /// A token valid now for `expires_in` seconds (negative: already expired).
    pub fn new(
        issuer: &str,
        audience: &str,
        client_id: &str,
        scopes: &[&str],
        expires_in: i64,
    ) -> Self {
        let now = chrono::Utc::now().timestamp();
        TokenClaims {
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            cid: client_id.to_owned(),
            sub: client_id.to_owned(),
            scp: scopes.iter().map(|s| (*s).to_owned()).collect(),
            iat: now.min(now + expires_in),
            exp: now + expires_in,
            nbf: None,
            jti: format!("AT.{}", crate::crypto::random_hex(12)),
        }
    }
}

impl DevKey {
    /// A fresh RSA-2048 key.
    pub fn generate() -> Result<Self, DevIssuerError> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| DevIssuerError::KeyGeneration)?;
        let der = pair.as_der().map_err(|_| DevIssuerError::KeyGeneration)?;
        Self::from_pkcs8_der(der.as_ref())
    }

    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, DevIssuerError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|_| DevIssuerError::BadKey)?;
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let n = URL_SAFE_NO_PAD.encode(&public.n);
        let e = URL_SAFE_NO_PAD.encode(&public.e);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, n.as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]);
        let pem = to_pem(der);
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| DevIssuerError::BadKey)?;
        Ok(DevKey {
            kid,
            pkcs8_der: der.to_vec(),
            encoding,
            n,
            e,
        })
    }

    pub fn from_pem(pem: &str) -> Result<Self, DevIssuerError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----") && !l.is_empty())
            .collect();
        let der = STANDARD.decode(body).map_err(|_| DevIssuerError::BadKey)?;
        Self::from_pkcs8_der(&der)
    }

    /// PKCS#8 PEM of the private key, for the local state directory.
    pub fn to_pem(&self) -> String {
        to_pem(&self.pkcs8_der)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA", "alg": "RS256", "use": "sig",
            "kid": self.kid, "n": self.n, "e": self.e,
        })
    }

    /// The JWKS document an issuer serves at `{issuer}/v1/keys`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk()] })
    }

    /// Signs `claims` with RS256 and this key's `kid`.
    pub fn sign(&self, claims: &TokenClaims) -> Result<String, DevIssuerError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Signs arbitrary JSON claims with an arbitrary header, for tests that
    /// need tokens no honest issuer would mint.
    pub fn sign_raw(
        &self,
        header: &Header,
        claims: &serde_json::Value,
    ) -> Result<String, DevIssuerError> {
        Ok(jsonwebtoken::encode(header, claims, &self.encoding)?)
    }

    /// The public key as PEM (SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        let pair = KeyPair::from_pkcs8(&self.pkcs8_der).ok();
        let der = pair
            .as_ref()
            .and_then(|p| {
                PublicKeyComponents::<Vec<u8>>::from(p.public_key())
                    .as_der()
                    .ok()
            })
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default();
        wrap_pem("PUBLIC KEY", &der)
    }
}

fn to_pem(der: &[u8]) -> String {
    wrap_pem("PRIVATE KEY", der)
}

fn wrap_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_kid() {
        let k = DevKey::generate().unwrap();
        let again = DevKey::from_pem(&k.to_pem()).unwrap();
        assert_eq!(k.kid(), again.kid());
        assert_eq!(k.jwks()["keys"][0]["kid"], k.kid());
        assert!(k.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
