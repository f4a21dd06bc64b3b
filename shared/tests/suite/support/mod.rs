//! Test support shared by the integration tests: a local OAuth issuer that
//! serves a JWKS over HTTP, event loading, and log capture.
#![allow(dead_code)]

pub mod flow;
pub mod moto;
pub mod sms_voice_stub;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use telehook::auth::settings::IngressConfig;
use telehook::testkit::dev_issuer::{DevKey, TokenClaims};
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use telehook::testkit::dev_issuer::{AUDIENCE, CLIENT_ID, SCOPE};
pub const JWKS_PATH: &str = "/oauth2/default/v1/keys";

/// An issuer like Okta's: a signing key and its JWKS on a loopback server.
pub struct TestIssuer {
    pub server: MockServer,
    pub key: DevKey,
    pub issuer: String,
    jwks_path: String,
}

impl TestIssuer {
    /// A custom authorization server: `{org}/oauth2/default`, keys at
    /// `{issuer}/v1/keys`.
    pub async fn start() -> Self {
        Self::serving(JWKS_PATH, "/oauth2/default").await
    }

    /// Okta's org authorization server: the issuer is the org URL itself and
    /// its keys are at `{org}/oauth2/v1/keys`.
    pub async fn start_org() -> Self {
        Self::serving("/oauth2/v1/keys", "").await
    }

    async fn serving(jwks_path: &str, issuer_path: &str) -> Self {
        let key = DevKey::generate().expect("key");
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(jwks_path))
            .respond_with(ResponseTemplate::new(200).set_body_json(key.jwks()))
            .mount(&server)
            .await;
        let issuer = format!("{}{issuer_path}", server.uri());
        TestIssuer {
            server,
            key,
            issuer,
            jwks_path: jwks_path.to_owned(),
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OKTA_ISSUER".into(), self.issuer.clone()),
            ("OKTA_CLIENT_IDS".into(), format!("0oaother,{CLIENT_ID}")),
            ("OKTA_REQUIRED_SCOPE".into(), SCOPE.into()),
            ("JWKS_REFRESH_COOLDOWN_SECONDS".into(), "60".into()),
        ]
    }

    pub fn config_with(&self, extra: &[(&str, &str)]) -> IngressConfig {
        let mut env = self.env();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).into(), (*v).into()));
        }
        IngressConfig::from_lookup(|k| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
            .expect("config")
    }

    pub fn config(&self) -> IngressConfig {
        self.config_with(&[])
    }

    pub fn claims(&self) -> TokenClaims {
        TokenClaims::new(&self.issuer, AUDIENCE, CLIENT_ID, &["openid", SCOPE], 300)
    }

    pub fn token(&self) -> String {
        self.key.sign(&self.claims()).expect("sign")
    }

    /// How many times the JWKS has been requested from this issuer.
    pub async fn jwks_fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == self.jwks_path)
            .count()
    }

    pub async fn requests(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .len()
    }
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Every `ingress-*.json` event, by file name.
pub fn ingress_events() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(events_dir())
        .expect("events dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ingress-") && n.ends_with(".json"))
        .map(|n| {
            let text = std::fs::read_to_string(events_dir().join(&n)).expect("read event");
            (n, text)
        })
        .collect();
    out.sort();
    out
}

/// Parses an event, putting `token` where the file says `{{token}}`.
pub fn event_with_token(text: &str, token: &str) -> ApiGatewayProxyRequest {
    serde_json::from_str(&text.replace("{{token}}", token)).expect("event parses")
}

/// A proxy event around `body` with the given Authorization header.
pub fn proxy_event(body: &str, authorization: Option<&str>) -> ApiGatewayProxyRequest {
    let text = std::fs::read_to_string(events_dir().join("ingress-sms.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["body"] = serde_json::Value::String(body.to_owned());
    let headers = v["headers"].as_object_mut().expect("headers");
    headers.remove("Authorization");
    v["multiValueHeaders"]
        .as_object_mut()
        .expect("mvh")
        .remove("Authorization");
    if let Some(a) = authorization {
        v["headers"]["Authorization"] = serde_json::Value::String(a.to_owned());
    }
    serde_json::from_value(v).expect("event")
}

pub fn sms_body() -> String {
    let text = std::fs::read_to_string(events_dir().join("ingress-sms.json")).expect("read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["body"].as_str().expect("body").to_owned()
}

pub fn response_json(
    resp: &aws_lambda_events::apigw::ApiGatewayProxyResponse,
) -> serde_json::Value {
    match &resp.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => {
            serde_json::from_str(t).expect("json body")
        }
        other => panic!("unexpected body {other:?}"),
    }
}

/// Collects everything the tracing subscriber writes, at every level.
///
/// Capture is race-free because each capturing test runs alone in a child
/// process of this test binary: there, the JSON subscriber is installed as
/// the process's global default before any log call site is registered.
/// (A thread-local subscriber shares tracing's call-site interest cache with
/// every other test thread; a site first seen by a thread with no
/// subscriber can stay disabled for the capturing thread.)
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.0.clone())
    }
}

/// Set in the child process that runs one capturing test.
const CAPTURE_CHILD: &str = "TELEHOOK_TEST_CAPTURE_CHILD";

/// The path of a test function inside this test binary, as `--exact` wants
/// it: `test_path!("name")` in module `m` gives `m::name`.
#[macro_export]
macro_rules! test_path {
    ($name:literal) => {
        concat!(module_path!(), "::", $name)
    };
}

impl LogCapture {
    /// In the test process: runs the test `path` (see [`test_path!`]) alone
    /// in a child process, fails if it fails, and returns `None`, so the
    /// caller returns. In that child: installs a JSON subscriber at TRACE
    /// as the global default and returns the capture.
    pub fn isolated(path: &str) -> Option<LogCapture> {
        // module_path! starts with the crate name; libtest names tests without it.
        let name = path.split_once("::").map_or(path, |(_, rest)| rest);
        if std::env::var_os(CAPTURE_CHILD).is_some() {
            let capture = LogCapture::default();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::TRACE)
                .without_time()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(capture.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
            return Some(capture);
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(CAPTURE_CHILD, "1")
            .output()
            .expect("run the capturing test in a child process");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} failed in its child process:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        None
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

/// A generated table under `tests/data`.
pub fn data_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

/// The data rows of a generated CSV table (its `#` comment and its header,
/// the line starting with `header`, skipped), each split into `width`
/// fields.
pub fn data_rows(file: &str, header: &str, width: usize) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(data_path(file)).expect("generated table");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(header))
        .map(|l| {
            let fields: Vec<String> = l.split(',').map(str::to_owned).collect();
            assert_eq!(fields.len(), width, "bad row {l}");
            fields
        })
        .collect()
}

/// The committed table is what its generator writes today: reruns
/// `script --check` with the project's `.venv` (the test command sets it up).
pub fn assert_generated(script: &str, file: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .current_dir(&root)
        .args([script, "--check"])
        .arg(data_path(file))
        .output()
        .unwrap_or_else(|e| panic!("run {script} with the project's .venv: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
