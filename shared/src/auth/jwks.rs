//! The issuer's signing keys: fetched at init when the issuer answers in
//! time, else on first use; cached, refreshed at most once per cool-down.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use serde::Deserialize;

use super::AuthError;

/// A JWKS document is a few KiB. The cap keeps a hostile or broken endpoint
/// from filling memory.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// An issuer's RS256 key, parsed once when the key set is fetched: RS256
/// with PKCS#1 v1.5 padding, 2048 to 8192 bits (what the JWT library checks
/// for RS256). Verifying with the parsed key skips building the key and its
/// Montgomery context from the modulus on every token (about a tenth of a
/// verify).
pub type VerifyingKey = ParsedPublicKey;

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, Arc<VerifyingKey>>,
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
        })
    }

    fn lookup(&self, kid: &str) -> (Option<Arc<VerifyingKey>>, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
        (state.keys.get(kid).cloned(), fresh)
    }

    /// Loads the keys before the first request needs them (Lambda init),
    /// giving up after `deadline`. A failure changes nothing: no cool-down
    /// starts, so the first request fetches as if this had not run. Returns
    /// whether keys were loaded.
    pub async fn prefetch(&self, deadline: Duration) -> bool {
        let _single_flight = self.refresh.lock().await;
        match tokio::time::timeout(deadline, self.fetch()).await {
            Ok(Ok(keys)) => {
                tracing::info!(keys = keys.len(), "issuer JWKS loaded at init");
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                state.keys = keys;
                state.fetched_at = Some(Instant::now());
                state.last_attempt = state.fetched_at;
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "issuer JWKS not loaded at init; the first hook fetches it");
                false
            }
            Err(_) => {
                tracing::warn!(
                    deadline_ms = deadline.as_millis() as u64,
                    "issuer JWKS not loaded at init in time; the first hook fetches it"
                );
                false
            }
        }
    }

    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, AuthError> {
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

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
        let attempt = || async {
            let resp = self
                .client
                .get(self.url.clone())
                .header("accept", "application/json")
                .send()
                .await?;
            let mut resp = resp.error_for_status()?;
            // Capped while it streams: a body announced or found larger
            // than the cap is dropped before it is all in memory.
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
            {
                return Ok(None);
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if body.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Ok(None);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(body))
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
        let Some(body) = body else {
            return Err("JWKS document too large".to_owned());
        };
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

fn usable_rs256_key(jwk: &Jwk) -> Option<(String, VerifyingKey)> {
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
    let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
    let e = URL_SAFE_NO_PAD.decode(&rsa.e).ok()?;
    let spki = PublicKeyComponents { n, e }.as_der().ok()?;
    let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki.as_ref()).ok()?;
    Some((kid, key))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

    use super::*;

    fn jwk(n: &[u8], e: &[u8]) -> Jwk {
        serde_json::from_value(serde_json::json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
            "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
        }))
        .unwrap()
    }

    #[test]
    fn an_rs256_key_is_parsed_once_and_verifies_only_its_own_signatures() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            b"header.claims",
            &mut signature,
        )
        .unwrap();
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let (kid, key) = usable_rs256_key(&jwk(&public.n, &public.e)).unwrap();
        assert_eq!(kid, "k1");
        assert!(key.verify_sig(b"header.claims", &signature).is_ok());
        assert!(key.verify_sig(b"header.claimz", &signature).is_err());
        signature[10] ^= 1;
        assert!(key.verify_sig(b"header.claims", &signature).is_err());

        // A modulus written with a leading zero is not the JWK encoding.
        let padded = [&[0u8][..], &public.n].concat();
        assert!(usable_rs256_key(&jwk(&padded, &public.e)).is_none());
        // RS256 keys are 2048 to 8192 bits, as the JWT library checks.
        let short = usable_rs256_key(&jwk(&public.n[..128], &public.e));
        assert!(short.is_none_or(|(_, k)| k.verify_sig(b"header.claims", &signature).is_err()));
    }
}
