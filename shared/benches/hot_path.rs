//! The ingress hot path, piece by piece and whole, beside the floor: one
//! RSA-2048 signature verify. `cargo bench -p telehook --bench hot_path`;
//! figures and the machine they were taken on are in BENCHMARKS.md.

// Bench helpers may unwrap: a panic is a failed run with a location.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

#[path = "../tests/suite/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use telehook::api::{IngressDeps, telehook_json};
use telehook::auth::Authenticator;
use telehook::clock::SystemClock;
use telehook::domain::channel::Channel;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::flows::guard::GuardSettings;
use telehook::flows::{Pipeline, PipelineSettings};
use telehook::ledger::InMemoryLedger;
use telehook::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};
use telehook::okta::{HookDefaults, parse_hook};
use telehook::queue::{FifoSettings, InMemoryFifo};
use telehook::templates::Templates;

/// Accepts instantly and keeps nothing: the provider's own time is not ours.
#[derive(Debug, Default)]
struct ZeroLatencyMessenger(AtomicU64);

#[async_trait]
impl Messenger for ZeroLatencyMessenger {
    async fn send(&self, _m: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(SendReceipt {
            message_id: format!("bench-{n}"),
        })
    }
    async fn feedback(
        &self,
        _message_id: &str,
        _status: telehook::domain::Feedback,
    ) -> Result<(), SendError> {
        Ok(())
    }
}

/// An API Gateway proxy event around an Okta body, as the JSON text the
/// Lambda runtime receives.
fn lambda_event(body: &serde_json::Value, bearer: &str) -> String {
    serde_json::to_string(&support::proxy_event(&body.to_string(), Some(bearer))).unwrap()
}

/// Hooks per block of fresh in-memory state, in both whole-hook passes.
/// The ledger and queue in memory keep every record (nothing drains them
/// here), where the deployed ones are DynamoDB and SQS: a block bounds
/// their growth, so the figure is the handler's and not the cost of ever
/// larger maps (their rehashing, and fresh pages for them).
const BLOCK: u64 = 500;

fn hot_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = rt.block_on(support::TestIssuer::start());
    let token = issuer.token();
    let config = issuer.config();

    // The floor: one RSA-2048 PKCS#1 v1.5 SHA-256 verify, nothing else.
    let (message, signature) = token.rsplit_once('.').unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(issuer.key.jwk()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    c.bench_function("rsa2048_verify_floor", |b| {
        b.iter(|| {
            let ok = jsonwebtoken::crypto::verify(
                signature,
                message.as_bytes(),
                &key,
                jsonwebtoken::Algorithm::RS256,
            );
            assert!(black_box(ok.unwrap()));
        })
    });

    // The same check with the key parsed beforehand, as the handler now
    // holds the issuer's keys: the signature's own cost, without building
    // the key from its modulus and exponent (which the floor above does on
    // every call, as the handler did). Reported beside the floor, so the
    // ratio can be read against either.
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        panic!("an RSA key")
    };
    let b64 = |s: &str| {
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).unwrap()
    };
    let spki = aws_lc_rs::encoding::AsDer::as_der(&aws_lc_rs::rsa::PublicKeyComponents {
        n: b64(&rsa.n),
        e: b64(&rsa.e),
    })
    .unwrap();
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        spki.as_ref(),
    )
    .unwrap();
    let raw_signature = b64(signature);
    c.bench_function("rsa2048_verify_parsed_key", |b| {
        b.iter(|| {
            parsed
                .verify_sig(message.as_bytes(), black_box(&raw_signature))
                .unwrap()
        })
    });

    // JWT verify with the JWKS already cached (the first call fetches it).
    let auth = Authenticator::from_config(&config.auth).unwrap();
    let Authenticator::OAuth(verifier) = &auth else {
        panic!("oauth")
    };
    rt.block_on(verifier.verify(&token)).unwrap();
    c.bench_function("jwt_verify_cached_jwks", |b| {
        b.iter(|| rt.block_on(verifier.verify(black_box(&token))).unwrap())
    });

    // Parse and validate an Okta body.
    let body = support::sms_body();
    let defaults = HookDefaults::new(Locale::parse("en").unwrap(), "US".parse().unwrap());
    c.bench_function("parse_and_validate_hook", |b| {
        b.iter(|| parse_hook(black_box(body.as_bytes()), &defaults, chrono::Utc::now()).unwrap())
    });

    // Template render, SMS and voice (built-ins, locale fallback included).
    let templates = Templates::new(None, Locale::parse("en").unwrap(), "Okta");
    let code = Otp::parse("739201").unwrap();
    let es_mx = Locale::parse("es-MX").unwrap();
    c.bench_function("render_sms_es_mx", |b| {
        b.iter(|| {
            rt.block_on(templates.render(&es_mx, Channel::Sms, &code, 5))
                .unwrap()
        })
    });
    c.bench_function("render_voice_es_mx", |b| {
        b.iter(|| {
            rt.block_on(templates.render(&es_mx, Channel::Voice, &code, 5))
                .unwrap()
        })
    });

    // The whole ingress handler as Lambda runs it: the event's JSON text in
    // (what the runtime hands over), the response's JSON bytes out (what it
    // posts back), with auth, validation, claim, enqueue, render and a
    // zero-latency send in between. Every block of `BLOCK` hooks gets fresh
    // in-memory state (built, and its JWKS cache warmed, outside the timed
    // loop): nothing drains the bench's ledger and queue, and state that
    // only grows would measure the bench, not the handler.
    let template: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {token}");
    let counter = AtomicU64::new(0);
    let fresh_deps = || {
        let clock = Arc::new(SystemClock);
        let pipeline = Pipeline::builder(
            Arc::new(InMemoryLedger::new()),
            Arc::new(InMemoryFifo::new(
                "bench.fifo",
                clock.clone(),
                FifoSettings::default(),
                None,
            )),
            Arc::new(ZeroLatencyMessenger::default()),
        )
        .templates(Templates::new(None, Locale::parse("en").unwrap(), "Okta"))
        .clock(clock)
        .settings(PipelineSettings {
            hash_key: b"bench-hash-key-0123456789".to_vec().into(),
            // Every iteration is a new event to one number; the rate
            // limits would (rightly) refuse all but five, and the org's
            // ceiling all but its first thousands.
            guard: GuardSettings {
                per_destination: None,
                per_user: None,
                total: None,
                ..GuardSettings::default()
            },
            ..Default::default()
        })
        .build();
        let deps = IngressDeps::new(&config, Arc::new(pipeline)).unwrap();
        let Authenticator::OAuth(v) = &deps.auth else {
            panic!("oauth")
        };
        rt.block_on(v.verify(&token)).unwrap();
        deps
    };
    // Events with ids never seen before: each is a new hook to send.
    let new_events = |n: u64, prefix: &str| -> Vec<String> {
        (0..n)
            .map(|_| {
                let mut v = template.clone();
                v["eventId"] = serde_json::Value::String(format!(
                    "{prefix}-{}",
                    counter.fetch_add(1, Ordering::Relaxed)
                ));
                lambda_event(&v, &bearer)
            })
            .collect()
    };
    c.bench_function("handle_hook_whole_in_memory", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let block = left.min(BLOCK);
                left -= block;
                let deps = fresh_deps();
                let events = new_events(block, "bench");
                let started = std::time::Instant::now();
                for event in events {
                    let resp = rt.block_on(telehook_json(&deps, &event));
                    black_box(serde_json::to_vec(&resp).unwrap());
                    assert_eq!(resp.status_code, 200);
                }
                elapsed += started.elapsed();
            }
            elapsed
        })
    });

    // Per call, for the tail: criterion reports means of samples, so the
    // handler's p99 is measured here, each call timed on its own, in
    // blocks alternating with the floor so both see the same machine.
    // Fresh state per block, as in the criterion pass above.
    let (mut floor, mut parsed_floor, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..40 {
        let deps = fresh_deps();
        for _ in 0..BLOCK {
            let started = std::time::Instant::now();
            let ok = jsonwebtoken::crypto::verify(
                signature,
                message.as_bytes(),
                &key,
                jsonwebtoken::Algorithm::RS256,
            );
            floor.push(started.elapsed());
            assert!(black_box(ok.unwrap()));
            let started = std::time::Instant::now();
            let ok = parsed.verify_sig(message.as_bytes(), black_box(&raw_signature));
            parsed_floor.push(started.elapsed());
            ok.unwrap();
        }
        let events = new_events(BLOCK, "tail");
        for event in events {
            let started = std::time::Instant::now();
            let resp = rt.block_on(telehook_json(&deps, &event));
            black_box(serde_json::to_vec(&resp).unwrap());
            whole.push(started.elapsed());
            assert_eq!(resp.status_code, 200);
        }
    }
    let pct = |v: &mut Vec<std::time::Duration>, p: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
    };
    let floor_p50 = pct(&mut floor, 0.5);
    let parsed_p50 = pct(&mut parsed_floor, 0.5);
    let (whole_p50, whole_p99) = (pct(&mut whole, 0.5), pct(&mut whole, 0.99));
    println!(
        "per call, {} each: rsa2048_verify_floor p50 {floor_p50:.1} µs, rsa2048_verify_parsed_key p50 {parsed_p50:.1} µs; handle_hook_whole_in_memory p50 {whole_p50:.1} µs ({:.2}× the floor, {:.2}× the parsed-key verify), p99 {whole_p99:.1} µs ({:.2}× the floor's p50)",
        whole.len(),
        whole_p50 / floor_p50,
        whole_p50 / parsed_p50,
        whole_p99 / floor_p50
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(60).measurement_time(std::time::Duration::from_secs(6));
    targets = hot_path
}
criterion_main!(benches);
