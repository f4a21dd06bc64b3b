//! The ingress handler beyond the event files: header-secret mode, the idle
//! cost of a cold handler, and events no client should be able to crash.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::support::*;
use serde_json::json;
use telehook::api::{IngressDeps, telehook, telehook_json};
use telehook::auth::settings::IngressConfig;
use telehook::testkit::RecordingDelivery;

fn header_mode_deps() -> IngressDeps {
    let env = [
        ("AUTH_MODE", "header"),
        ("AUTH_HEADER_NAME", "X-Okta-Hook-Secret"),
        ("AUTH_HEADER_SECRET", "0123456789abcdef-shared"),
    ];
    let config = IngressConfig::from_lookup(|k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    IngressDeps::new(&config, Arc::new(RecordingDelivery::new())).unwrap()
}

fn with_header(name: &str, value: &str) -> aws_lambda_events::apigw::ApiGatewayProxyRequest {
    let mut e = proxy_event(&sms_body(), None);
    e.headers.insert(
        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        value.parse().unwrap(),
    );
    e
}

#[tokio::test]
async fn header_secret_mode() {
    let deps = header_mode_deps();
    for name in [
        "X-Okta-Hook-Secret",
        "x-okta-hook-secret",
        "X-OKTA-HOOK-SECRET",
    ] {
        let resp = telehook(&deps, with_header(name, "0123456789abcdef-shared")).await;
        assert_eq!(resp.status_code, 200, "{name}");
        assert_eq!(
            response_json(&resp)["commands"][0]["value"][0]["status"],
            "SUCCESSFUL"
        );
    }
    for wrong in ["0123456789abcdef-share", "0123456789abcdef-shared ", "x"] {
        assert_eq!(
            telehook(&deps, with_header("X-Okta-Hook-Secret", wrong))
                .await
                .status_code,
            401
        );
    }
    assert_eq!(
        telehook(&deps, proxy_event(&sms_body(), None))
            .await
            .status_code,
        401
    );
    // A bearer token is not the secret.
    assert_eq!(
        telehook(&deps, proxy_event(&sms_body(), Some("Bearer abc")))
            .await
            .status_code,
        401
    );
}

#[tokio::test]
async fn a_cold_handler_does_no_network_io_but_the_jwks_fetch() {
    let issuer = TestIssuer::start().await;
    let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
    assert_eq!(
        issuer.requests().await,
        0,
        "building the handler is free of I/O"
    );

    let resp = telehook(
        &deps,
        proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
    )
    .await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(
        issuer.requests().await,
        1,
        "the first request fetches the JWKS once"
    );
    assert_eq!(issuer.jwks_fetches().await, 1);

    for _ in 0..5 {
        telehook(
            &deps,
            proxy_event(&sms_body(), Some(&format!("Bearer {}", issuer.token()))),
        )
        .await;
    }
    assert_eq!(
        issuer.requests().await,
        1,
        "warm requests are served from the cache"
    );

    // Header-secret mode does no network I/O at all; there is nothing to
    // contact, and the recording delivery is in memory.
    let deps = header_mode_deps();
    let resp = telehook(
        &deps,
        with_header("x-okta-hook-secret", "0123456789abcdef-shared"),
    )
    .await;
    assert_eq!(resp.status_code, 200);
}

#[tokio::test]
async fn responses_are_json_and_never_cached() {
    let issuer = TestIssuer::start().await;
    let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
    for auth in [Some(format!("Bearer {}", issuer.token())), None] {
        let resp = telehook(&deps, proxy_event(&sms_body(), auth.as_deref())).await;
        assert_eq!(
            resp.headers.get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(resp.headers.get("cache-control").unwrap(), "no-store");
    }
}

#[tokio::test]
async fn odd_events_get_clear_answers() {
    let issuer = TestIssuer::start().await;
    let deps = IngressDeps::new(&issuer.config(), Arc::new(RecordingDelivery::new())).unwrap();
    let bearer = format!("Bearer {}", issuer.token());

    // Wrong method.
    let mut e = proxy_event(&sms_body(), Some(&bearer));
    e.http_method = http::Method::GET;
    let resp = telehook(&deps, e).await;
    assert_eq!(resp.status_code, 405);
    assert_eq!(resp.headers.get("allow").unwrap(), "POST");

    // Missing and empty bodies, bad base64, a body that is a JSON string.
    for (body, b64, location) in [
        (None, false, "body"),
        (Some(""), false, "body"),
        (Some("not base64 !!"), true, "body"),
        (Some("\"48213\""), false, "body"),
        (Some("{}"), false, "eventType"),
    ] {
        let mut e = proxy_event("", Some(&bearer));
        e.body = body.map(str::to_owned);
        e.is_base64_encoded = b64;
        let resp = telehook(&deps, e).await;
        assert_eq!(resp.status_code, 200);
        assert_eq!(
            response_json(&resp)["error"]["errorCauses"][0]["location"],
            location,
            "{body:?}"
        );
    }

    // An oversized base64 body is refused before it is decoded.
    let mut e = proxy_event("", Some(&bearer));
    e.body = Some("QUFB".repeat(30_000));
    e.is_base64_encoded = true;
    let resp = telehook(&deps, e).await;
    assert_eq!(
        response_json(&resp)["error"]["errorCauses"][0]["reason"],
        "BODY_TOO_LARGE"
    );

    // A payload that is not a proxy event at all.
    for payload in [
        json!(null),
        json!({"foo": 1}),
        json!([1, 2]),
        json!("x"),
        json!({"httpMethod": 5}),
    ] {
        let resp = telehook_json(&deps, &payload.to_string()).await;
        assert_eq!(resp.status_code, 400);
    }

    // The Lambda path with a real event file works the same as the typed one.
    let text = std::fs::read_to_string(events_dir().join("ingress-sms.json")).unwrap();
    let resp = telehook_json(&deps, &text.replace("{{token}}", &issuer.token())).await;
    assert_eq!(
        response_json(&resp)["commands"][0]["value"][0]["status"],
        "SUCCESSFUL"
    );
}

/// The event hook route in header terms: its own secret, verification,
/// batches, and a clear answer for everything else.
mod event_hook {
    use super::*;
    use telehook::api::EVENTS_PATH;
    use telehook::domain::{DeliveryOutcome, DeliveryRequest};
    use telehook::flows::{Delivery, SignInReport};
    use telehook::ledger::LedgerError;
    use telehook::okta::events::EventBatch;

    const SECRET: &str = "event-hook-secret-0123";

    fn deps(secret: Option<&str>, delivery: Arc<dyn Delivery>) -> IngressDeps {
        let mut env = vec![
            ("AUTH_MODE", "header"),
            ("AUTH_HEADER_SECRET", "0123456789abcdef-shared"),
        ];
        if let Some(s) = secret {
            env.push(("EVENT_HOOK_SECRET", s));
        }
        let config = IngressConfig::from_lookup(|k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        IngressDeps::new(&config, delivery).unwrap()
    }

    fn call(
        method: http::Method,
        auth: Option<&str>,
        challenge: Option<&str>,
        body: Option<&str>,
    ) -> aws_lambda_events::apigw::ApiGatewayProxyRequest {
        let mut e = proxy_event(body.unwrap_or_default(), auth);
        e.http_method = method;
        e.path = Some(format!("/prod{EVENTS_PATH}"));
        e.resource = Some(EVENTS_PATH.to_owned());
        e.body = body.map(str::to_owned);
        if let Some(c) = challenge {
            e.headers
                .insert("x-okta-verification-challenge", c.parse().unwrap());
        }
        e
    }

    fn sign_in_batch() -> String {
        json!({"data": {"events": [{
            "eventType": "user.authentication.auth_via_mfa",
            "outcome": {"result": "SUCCESS"},
            "actor": {"id": "00uEVT", "type": "User"},
            "debugContext": {"debugData": {"factor": "SMS_FACTOR"}}
        }]}})
        .to_string()
    }

    #[tokio::test]
    async fn verification_batches_and_refusals() {
        let recorder = Arc::new(RecordingDelivery::new());
        let d = deps(Some(SECRET), recorder.clone());
        let verify = telehook(
            &d,
            call(http::Method::GET, Some(SECRET), Some("abc-123"), None),
        )
        .await;
        assert_eq!(verify.status_code, 200);
        assert_eq!(response_json(&verify), json!({"verification": "abc-123"}));

        let post = telehook(
            &d,
            call(
                http::Method::POST,
                Some(SECRET),
                None,
                Some(&sign_in_batch()),
            ),
        )
        .await;
        assert_eq!(post.status_code, 200);
        assert_eq!(response_json(&post)["converted"], 1);
        assert_eq!(recorder.batches().len(), 1);

        let cases = [
            // The telephony hook's secret is not the event hook's.
            (
                call(
                    http::Method::POST,
                    Some("0123456789abcdef-shared"),
                    None,
                    Some("{}"),
                ),
                401,
            ),
            (call(http::Method::GET, None, Some("abc"), None), 401),
            (call(http::Method::GET, Some(SECRET), None, None), 400),
            (
                call(http::Method::POST, Some(SECRET), None, Some("not json")),
                400,
            ),
            (
                call(
                    http::Method::POST,
                    Some(SECRET),
                    None,
                    Some(r#"{"data":{}}"#),
                ),
                400,
            ),
            (call(http::Method::PUT, Some(SECRET), None, Some("{}")), 405),
        ];
        for (event, status) in cases {
            let method = event.http_method.clone();
            let resp = telehook(&d, event).await;
            assert_eq!(resp.status_code, status, "{method}");
            let body = response_json(&resp);
            assert!(body["error"]["errorSummary"].is_string(), "{body}");
        }
        let huge = format!(
            r#"{{"data":{{"events":[]}},"pad":"{}"}}"#,
            "x".repeat(telehook::api::MAX_EVENT_BODY_BYTES)
        );
        let resp = telehook(
            &d,
            call(http::Method::POST, Some(SECRET), None, Some(&huge)),
        )
        .await;
        assert_eq!(resp.status_code, 400);
        assert_eq!(recorder.batches().len(), 1, "nothing else reached the flow");
    }

    #[tokio::test]
    async fn without_a_secret_the_route_is_off() {
        let recorder = Arc::new(RecordingDelivery::new());
        let d = deps(None, recorder.clone());
        let resp = telehook(
            &d,
            call(
                http::Method::POST,
                Some(SECRET),
                None,
                Some(&sign_in_batch()),
            ),
        )
        .await;
        assert_eq!(resp.status_code, 404);
        assert!(recorder.batches().is_empty());
    }

    /// A ledger that cannot be written: 503, so Okta delivers again.
    struct Down;

    #[async_trait::async_trait]
    impl Delivery for Down {
        async fn deliver(&self, _: DeliveryRequest, _: tokio::time::Instant) -> DeliveryOutcome {
            unreachable!("no hook in this test")
        }
        async fn sign_ins(&self, _: &EventBatch) -> Result<SignInReport, LedgerError> {
            Err(LedgerError::Unavailable("ThrottlingException".into()))
        }
    }

    #[tokio::test]
    async fn a_batch_the_ledger_cannot_take_is_answered_503() {
        let d = deps(Some(SECRET), Arc::new(Down));
        let resp = telehook(
            &d,
            call(
                http::Method::POST,
                Some(SECRET),
                None,
                Some(&sign_in_batch()),
            ),
        )
        .await;
        assert_eq!(resp.status_code, 503);
    }
}
