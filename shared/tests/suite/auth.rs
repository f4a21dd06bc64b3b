//! The JWT attack suite. Each hostile token is checked twice: the verifier
//! must refuse it for the expected reason (so the test cannot pass by
//! accident, say because the JWKS was unreachable), and the ingress handler
//! must answer it with 401.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use telehook::api::{IngressDeps, telehook};
use telehook::auth::{AuthError, Authenticator};
use telehook::testkit::RecordingDelivery;
use telehook::testkit::dev_issuer::{DevKey, TokenClaims};

struct Fixture {
    issuer: TestIssuer,
    deps: IngressDeps,
}

impl Fixture {
    async fn new() -> Self {
        Self::with(&[]).await
    }

    async fn with(extra: &[(&str, &str)]) -> Self {
        let issuer = TestIssuer::start().await;
        let deps = IngressDeps::new(
            &issuer.config_with(extra),
            Arc::new(RecordingDelivery::new()),
        )
        .unwrap();
        Fixture { issuer, deps }
    }

    async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let Authenticator::OAuth(v) = &self.deps.auth else {
            panic!("oauth mode")
        };
        v.verify(token).await.map(|_| ())
    }

    async fn status_with_header(&self, authorization: &str) -> i64 {
        telehook(&self.deps, proxy_event(&sms_body(), Some(authorization)))
            .await
            .status_code
    }

    /// Asserts the exact refusal and the 401.
    async fn refuses(&self, token: &str, expected: AuthError) {
        assert_eq!(
            self.verify(token).await,
            Err(expected.clone()),
            "verifier reason"
        );
        assert_eq!(
            self.status_with_header(&format!("Bearer {token}")).await,
            401,
            "{expected}"
        );
    }

    fn claims(&self) -> serde_json::Value {
        serde_json::to_value(self.issuer.claims()).unwrap()
    }

    fn rs256(&self) -> Header {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(self.issuer.key.kid().to_owned());
        h
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        self.issuer.key.sign_raw(&self.rs256(), claims).unwrap()
    }
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_good_token_is_accepted() {
    let f = Fixture::new().await;
    assert_eq!(f.verify(&f.issuer.token()).await, Ok(()));
    assert_eq!(
        f.status_with_header(&format!("Bearer {}", f.issuer.token()))
            .await,
        200
    );
}

#[tokio::test]
async fn scheme_matching_is_case_insensitive() {
    let f = Fixture::new().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let status = f
            .status_with_header(&format!("{scheme} {}", f.issuer.token()))
            .await;
        assert_eq!(status, 200, "{scheme}");
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = Fixture::new().await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": f.issuer.key.kid()});
    let unsigned = format!("{}.{}.", b64(&header), b64(&f.claims()));
    f.refuses(&unsigned, AuthError::AlgorithmNotAllowed("none".into()))
        .await;
    // Same with a junk signature, and with the spelling variants.
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "kid": f.issuer.key.kid()});
        let token = format!("{}.{}.c2ln", b64(&header), b64(&f.claims()));
        f.refuses(&token, AuthError::AlgorithmNotAllowed(alg.into()))
            .await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let f = Fixture::new().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(f.issuer.key.kid().to_owned());
    let public_pem = f.issuer.key.public_pem();
    let token = jsonwebtoken::encode(
        &header,
        &f.claims(),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    f.refuses(&token, AuthError::AlgorithmNotAllowed("HS256".into()))
        .await;
    // The JWK's modulus as the HMAC secret is the other classic variant.
    let n = f.issuer.key.jwk()["n"].as_str().unwrap().to_owned();
    let token = jsonwebtoken::encode(
        &header,
        &f.claims(),
        &EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    f.refuses(&token, AuthError::AlgorithmNotAllowed("HS256".into()))
        .await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_refused() {
    let f = Fixture::new().await;
    let mut c = f.claims();
    c["exp"] = json!(now() - 3600);
    c["iat"] = json!(now() - 7200);
    f.refuses(&f.sign(&c), AuthError::Expired).await;

    let mut c = f.claims();
    c["nbf"] = json!(now() + 3600);
    f.refuses(&f.sign(&c), AuthError::NotYetValid).await;

    let mut c = f.claims();
    c["iat"] = json!(now() + 3600);
    f.refuses(&f.sign(&c), AuthError::IssuedInFuture).await;
}

#[tokio::test]
async fn small_clock_skew_is_within_leeway() {
    let f = Fixture::new().await;
    let mut c = f.claims();
    c["exp"] = json!(now() - 20);
    c["nbf"] = json!(now() + 20);
    c["iat"] = json!(now() + 20);
    assert_eq!(f.verify(&f.sign(&c)).await, Ok(()));
}

#[tokio::test]
async fn wrong_issuer_and_audience_are_refused() {
    let f = Fixture::new().await;
    let mut c = f.claims();
    c["iss"] = json!("https://evil.example.com/oauth2/default");
    f.refuses(&f.sign(&c), AuthError::WrongIssuer).await;

    let mut c = f.claims();
    c["aud"] = json!("api://something-else");
    f.refuses(&f.sign(&c), AuthError::WrongAudience).await;

    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("aud");
    f.refuses(&f.sign(&c), AuthError::MissingClaim("aud")).await;
}

/// The claims are read in one pass by our own reader: the shapes servers
/// send (arrays or strings, escapes) and the registered claims' rules.
#[tokio::test]
async fn claims_of_every_shape_are_read_by_the_registered_rules() {
    let f = Fixture::new().await;
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = f.claims();
        edit(&mut c);
        f.sign(&c)
    };
    // Arrays for aud and iss, a space-separated scp, escaped strings.
    let aud = f.claims()["aud"].clone();
    let iss = f.claims()["iss"].clone();
    let cid = f.claims()["cid"].as_str().unwrap().to_owned();
    for token in [
        with(&|c| c["aud"] = json!(["api://other", aud.clone()])),
        with(&|c| c["iss"] = json!([iss.clone()])),
        with(&|c| c["scp"] = json!(format!("openid {SCOPE} profile"))),
        // JSON escapes: the same text, read through the owned path.
        {
            let payload = serde_json::to_string(&f.claims()).unwrap().replace(
                &format!("\"{cid}\""),
                &format!("\"\\u00{:x}{}\"", cid.as_bytes()[0], &cid[1..]),
            );
            assert!(payload.contains("\\u00"), "{payload}");
            f.issuer
                .key
                .sign_raw(
                    &f.rs256(),
                    &serde_json::from_str::<serde_json::Value>(&payload).unwrap(),
                )
                .unwrap()
        },
    ] {
        assert_eq!(f.verify(&token).await, Ok(()));
    }
    for (name, token, expected) in [
        (
            "no exp",
            with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            AuthError::MissingClaim("exp"),
        ),
        (
            "no iss",
            with(&|c| drop(c.as_object_mut().unwrap().remove("iss"))),
            AuthError::MissingClaim("iss"),
        ),
        (
            "exp a string",
            with(&|c| c["exp"] = json!("4102444800")),
            AuthError::Malformed,
        ),
        (
            "exp a fraction",
            with(&|c| c["exp"] = json!(4102444800.5)),
            AuthError::Malformed,
        ),
        (
            "nbf negative",
            with(&|c| c["nbf"] = json!(-1)),
            AuthError::Malformed,
        ),
        (
            "aud empty",
            with(&|c| c["aud"] = json!([])),
            AuthError::WrongAudience,
        ),
        (
            "iss of another case",
            with(&|c| c["iss"] = json!(iss.as_str().unwrap().to_uppercase())),
            AuthError::WrongIssuer,
        ),
        (
            "scp a number",
            with(&|c| c["scp"] = json!(7)),
            AuthError::Malformed,
        ),
    ] {
        assert_eq!(f.verify(&token).await, Err(expected), "{name}");
    }
    // The signed part is what is verified: claims swapped after signing fail.
    let good = f.sign(&f.claims());
    let (head, rest) = good.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let mut c = f.claims();
    c["cid"] = json!("0oaSomeOtherApp");
    let swapped = format!("{head}.{}.{signature}", b64(&c));
    f.refuses(&swapped, AuthError::BadSignature).await;
}

#[tokio::test]
async fn cid_missing_or_not_allowed_is_refused() {
    let f = Fixture::new().await;
    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("cid");
    f.refuses(&f.sign(&c), AuthError::MissingClaim("cid")).await;

    let mut c = f.claims();
    c["cid"] = json!("0oaSomeOtherApp");
    f.refuses(&f.sign(&c), AuthError::ClientNotAllowed).await;
}

#[tokio::test]
async fn scp_missing_or_without_the_scope_is_refused() {
    let f = Fixture::new().await;
    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("scp");
    f.refuses(&f.sign(&c), AuthError::MissingClaim("scp")).await;

    let mut c = f.claims();
    c["scp"] = json!(["openid", "profile"]);
    f.refuses(&f.sign(&c), AuthError::MissingScope).await;

    // `scope` is not `scp`: Okta's claim is scp.
    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("scp");
    c["scope"] = json!(SCOPE);
    f.refuses(&f.sign(&c), AuthError::MissingClaim("scp")).await;

    // A prefix of the scope is not the scope.
    let mut c = f.claims();
    c["scp"] = json!(["telephony"]);
    f.refuses(&f.sign(&c), AuthError::MissingScope).await;
}

#[tokio::test]
async fn unknown_kid_and_foreign_signatures_are_refused() {
    let f = Fixture::new().await;
    let other = DevKey::generate().unwrap();
    let token = other.sign(&f.issuer.claims()).unwrap();
    f.refuses(&token, AuthError::UnknownKid).await;

    // Signed by another key but claiming our kid: the signature fails.
    let token = other.sign_raw(&f.rs256(), &f.claims()).unwrap();
    f.refuses(&token, AuthError::BadSignature).await;

    // No kid at all.
    let token = f
        .issuer
        .key
        .sign_raw(&Header::new(Algorithm::RS256), &f.claims())
        .unwrap();
    f.refuses(&token, AuthError::MissingKid).await;
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let f = Fixture::new().await;
    let good = f.issuer.token();
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{good}.extra"),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", b64(&json!("not an object")), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], "bm90IGpzb24", parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], "%%%"),
    ];
    for token in cases {
        let got = f.verify(&token).await;
        assert!(
            matches!(
                got,
                Err(AuthError::Malformed) | Err(AuthError::BadSignature)
            ),
            "{token}: {got:?}"
        );
        assert_eq!(f.status_with_header(&format!("Bearer {token}")).await, 401);
    }
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_parsing() {
    let f = Fixture::new().await;
    let mut c = f.claims();
    c["padding"] = json!("x".repeat(9000));
    let token = f.sign(&c);
    assert!(token.len() > 8 * 1024);
    f.refuses(&token, AuthError::TokenTooLarge).await;
    assert_eq!(
        f.issuer.jwks_fetches().await,
        0,
        "no key lookup for an oversized token"
    );
}

#[tokio::test]
async fn missing_or_non_bearer_credentials_are_refused() {
    let f = Fixture::new().await;
    let token = f.issuer.token();
    for header in [
        format!("Basic {token}"),
        token.clone(),
        format!("Token {token}"),
        "Bearer".into(),
        "".into(),
    ] {
        assert_eq!(f.status_with_header(&header).await, 401, "{header:.20}");
    }
    let resp = telehook(&f.deps, proxy_event(&sms_body(), None)).await;
    assert_eq!(resp.status_code, 401);
    assert_eq!(resp.headers.get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(
        response_json(&resp),
        json!({"error": {"errorSummary": "Unauthorized"}})
    );
}

#[tokio::test]
async fn unknown_kids_in_one_cooldown_cause_at_most_one_fetch() {
    let f = Fixture::new().await;
    // Cold cache, twenty concurrent tokens with made-up kids.
    let tokens: Vec<String> = (0..20)
        .map(|i| {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(format!("made-up-kid-{i}"));
            f.issuer.key.sign_raw(&h, &f.claims()).unwrap()
        })
        .collect();
    let results = futures::future::join_all(tokens.iter().map(|t| f.verify(t))).await;
    assert!(
        results.iter().all(|r| *r == Err(AuthError::UnknownKid)),
        "{results:?}"
    );
    assert_eq!(f.issuer.jwks_fetches().await, 1);

    // Twenty more, sequentially, through the handler: still one fetch.
    for t in &tokens {
        assert_eq!(f.status_with_header(&format!("Bearer {t}")).await, 401);
    }
    assert_eq!(f.issuer.jwks_fetches().await, 1);
    // And the known key still works from the cache.
    assert_eq!(f.verify(&f.issuer.token()).await, Ok(()));
    assert_eq!(f.issuer.jwks_fetches().await, 1);
}

#[tokio::test]
async fn rotated_keys_are_picked_up_after_the_cooldown() {
    // The shortest cool-down there is; the wait below outlasts it.
    let f = Fixture::with(&[("JWKS_REFRESH_COOLDOWN_SECONDS", "5")]).await;
    assert_eq!(f.verify(&f.issuer.token()).await, Ok(()));
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    // The issuer rotates to a new key.
    let new_key = DevKey::generate().unwrap();
    f.issuer.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(new_key.jwks()))
        .mount(&f.issuer.server)
        .await;
    let token = new_key.sign(&f.issuer.claims()).unwrap();
    assert_eq!(f.verify(&token).await, Ok(()));
    assert_eq!(f.issuer.jwks_fetches().await, 1, "one refresh after reset");
}

/// A key set larger than the cap is refused, whether its length is
/// announced or it arrives chunked without one.
#[tokio::test]
async fn an_oversized_key_set_is_refused_while_it_streams() {
    for chunked in [false, true] {
        let issuer = TestIssuer::start().await;
        issuer.server.reset().await;
        let mut big = issuer.key.jwks();
        big["padding"] = serde_json::Value::String("x".repeat(300 * 1024));
        let body = serde_json::to_vec(&big).unwrap();
        let mut response =
            wiremock::ResponseTemplate::new(200).insert_header("content-type", "application/json");
        response = if chunked {
            response
                .insert_header("transfer-encoding", "chunked")
                .set_body_raw(body, "application/json")
        } else {
            response.set_body_bytes(body)
        };
        wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
            .respond_with(response)
            .mount(&issuer.server)
            .await;
        let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
        let resp = telehook(
            &deps,
            proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
        )
        .await;
        assert_eq!(resp.status_code, 401, "chunked: {chunked}");
    }
}

#[tokio::test]
async fn keys_unavailable_is_a_401_not_a_crash() {
    let issuer = TestIssuer::start().await;
    issuer.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&issuer.server)
        .await;
    let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
    let resp = telehook(
        &deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
    )
    .await;
    assert_eq!(resp.status_code, 401);
    // One retry on a 5xx, then the cooldown holds further attempts back.
    assert_eq!(issuer.jwks_fetches().await, 2);
    let resp = telehook(
        &deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
    )
    .await;
    assert_eq!(resp.status_code, 401);
    assert_eq!(issuer.jwks_fetches().await, 2);
}

#[tokio::test]
async fn a_slow_jwks_endpoint_costs_at_most_its_timeout() {
    let issuer = TestIssuer::start().await;
    issuer.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(issuer.key.jwks())
                .set_delay(std::time::Duration::from_secs(5)),
        )
        .mount(&issuer.server)
        .await;
    let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
    // The keys would arrive after 5 s; without the client's timeout this
    // request would succeed late instead of being refused.
    let resp = telehook(
        &deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
    )
    .await;
    assert_eq!(resp.status_code, 401, "no keys in time: refused, not hung");
    let Authenticator::OAuth(v) = &deps.auth else {
        panic!("oauth")
    };
    assert!(matches!(
        v.verify(&issuer.token()).await,
        Err(AuthError::KeysUnavailable(_))
    ));
}

/// Okta's org authorization server: issuer `https://{org}`, keys at
/// `https://{org}/oauth2/v1/keys`, audience the org URL.
#[tokio::test]
async fn the_org_authorization_server_is_supported() {
    let issuer = TestIssuer::start_org().await;
    let org = issuer.server.uri();
    let deps = IngressDeps::new(
        &issuer.config_with(&[("OKTA_AUDIENCE", &org)]),
        Arc::new(RecordingDelivery::new()),
    )
    .unwrap();
    let claims = TokenClaims::new(&org, &org, CLIENT_ID, &[SCOPE], 300);
    let token = issuer.key.sign(&claims).unwrap();
    let resp = telehook(
        &deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(issuer.jwks_fetches().await, 1);
    // A custom server's token is not the org server's.
    let other = TokenClaims::new(
        &format!("{org}/oauth2/default"),
        &org,
        CLIENT_ID,
        &[SCOPE],
        300,
    );
    let token = issuer.key.sign(&other).unwrap();
    let resp = telehook(
        &deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(resp.status_code, 401);
}

/// A secrets client that is never called: OAuth mode reads no secret.
fn unused_secrets_client() -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

async fn lambda_deps(issuer: &TestIssuer) -> IngressDeps {
    IngressDeps::for_lambda(
        &issuer.config(),
        Arc::new(RecordingDelivery::new()),
        &unused_secrets_client(),
    )
    .await
    .unwrap()
}

async fn first_hook(issuer: &TestIssuer, deps: &IngressDeps) -> i64 {
    telehook(
        deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
    )
    .await
    .status_code
}

#[tokio::test]
async fn lambda_init_loads_the_keys_so_the_first_hook_fetches_nothing() {
    let issuer = TestIssuer::start().await;
    let deps = lambda_deps(&issuer).await;
    assert_eq!(issuer.jwks_fetches().await, 1, "fetched at init");
    assert_eq!(first_hook(&issuer, &deps).await, 200);
    assert_eq!(issuer.jwks_fetches().await, 1, "the first hook used them");
}

#[tokio::test]
async fn an_issuer_down_at_init_leaves_the_fetch_to_the_first_hook() {
    let issuer = TestIssuer::start().await;
    issuer.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&issuer.server)
        .await;
    // Init succeeds without keys.
    let deps = lambda_deps(&issuer).await;
    let at_init = issuer.jwks_fetches().await;
    assert!(at_init >= 1, "tried at init");
    // The issuer is back: the first hook fetches at once, with no cool-down
    // left over from the failed try at init.
    issuer.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(issuer.key.jwks()))
        .mount(&issuer.server)
        .await;
    assert_eq!(first_hook(&issuer, &deps).await, 200);
    assert_eq!(
        issuer.jwks_fetches().await,
        1,
        "one fetch, by the first hook"
    );
}

/// Tokio's clock is paused, so the wait is virtual and exact: init gives up
/// at its deadline, before the key client's own timeout (900 ms, then one
/// retry) would have ended it.
#[tokio::test(start_paused = true)]
async fn a_slow_issuer_at_init_costs_at_most_the_init_deadline() {
    let issuer = TestIssuer::start().await;
    issuer.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::path(JWKS_PATH))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(issuer.key.jwks())
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .mount(&issuer.server)
        .await;
    let started = tokio::time::Instant::now();
    let deps = lambda_deps(&issuer).await;
    let waited = started.elapsed();
    assert!(
        waited >= telehook::api::JWKS_INIT_DEADLINE
            && waited < std::time::Duration::from_millis(900),
        "{waited:?}"
    );
    let Authenticator::OAuth(v) = &deps.auth else {
        panic!("oauth")
    };
    assert!(
        matches!(
            v.verify(&issuer.token()).await,
            Err(AuthError::KeysUnavailable(_))
        ),
        "no keys yet; the first request tried again"
    );
}
