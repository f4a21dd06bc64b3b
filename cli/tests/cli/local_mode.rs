//! Local mode end to end: the real `telehook` binary, started as a user
//! would start it, driven over HTTP with tokens from `telehook token`.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use telehook::testkit::redaction;

const BIN: &str = env!("CARGO_BIN_EXE_telehook");

pub(crate) fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

pub(crate) fn temp_state_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("telehook-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Server {
    child: Child,
    port: u16,
    state_dir: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(tag: &str, extra: &[&str]) -> Server {
        Self::start_env(tag, extra, &[])
    }

    /// As `start`, with these variables set for serve.
    fn start_env(tag: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_in(temp_state_dir(tag), extra, env)
    }

    /// Kills this server (SIGKILL: no drain, nothing written at exit) and
    /// starts another on the same state directory.
    fn crash_and_restart(mut self, extra: &[&str]) -> Server {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let state_dir = std::mem::take(&mut self.state_dir);
        Self::start_in(state_dir, extra, &[])
    }

    /// Stops this server and starts another on the same state directory.
    fn restart(mut self, extra: &[&str]) -> Server {
        let (exit, _) = self.terminate();
        assert!(exit.success());
        // The state directory passes to the new server (dropping this one
        // would remove it).
        let state_dir = std::mem::take(&mut self.state_dir);
        Self::start_in(state_dir, extra, &[])
    }

    fn start_in(state_dir: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--state-dir"])
            .arg(&state_dir)
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("TELEHOOK_BACKEND")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let out = child.stdout.take().unwrap();
            let lines = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("listening on http://127.0.0.1:") {
                        let _ = tx.send(url.parse::<u16>().unwrap());
                    }
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the listening line");
        Server {
            child,
            port,
            state_dir,
            stdout,
            reader: Some(reader),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/okta/telephony", self.port)
    }

    fn token(&self, extra: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["token", "--port", &self.port.to_string(), "--state-dir"])
            .arg(&self.state_dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs another command on this server's state directory (`guard`,
    /// `report`); its stdout and stderr, once it succeeded.
    fn cli(&self, args: &[&str]) -> (String, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env_remove("TELEHOOK_BACKEND")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    }

    /// Local mode's ledger file, as `report` reads it.
    fn ledger_records(&self) -> Vec<telehook::ledger::LedgerRecord> {
        let file = self.state_dir.join("ledger.sqlite");
        telehook::ledger::SqliteLedger::open(&file, 0)
            .unwrap()
            .records()
            .unwrap()
    }

    /// The bytes of the ledger's files, as text, for a search for what
    /// must not be there.
    fn ledger_bytes(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(&self.state_dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ledger.sqlite")
            {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
            }
        }
        assert!(!all.is_empty(), "no ledger file");
        all
    }

    fn outbox(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.state_dir.join("outbox.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// SIGTERM, then wait for the exit status. The state dir stays until
    /// the server is dropped.
    fn terminate(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader ends at the pipe's end of file, after the last
                // line: joining it (not sleeping) makes the lines complete.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return (status, self.stdout.lock().unwrap().clone());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        if !self.state_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

/// Valid Okta bodies from events/, with what the outbox must show for each:
/// channel and a phrase of the expected language.
fn valid_bodies() -> Vec<(String, String, &'static str, &'static str)> {
    let expect: HashMap<&str, (&str, &str)> = HashMap::from([
        ("ingress-sms.json", ("sms", "verification code")),
        ("ingress-voice.json", ("voice", "Su clave de acceso")),
        ("ingress-preview.json", ("sms", "verification code")),
        (
            "ingress-pre-enrollment.json",
            ("voice", "Votre code de vérification"),
        ),
        (
            "ingress-account-unlock.json",
            ("voice", "Your verification code"),
        ),
        ("ingress-password-reset.json", ("sms", "Bestätigungscode")),
        ("ingress-base64-body.json", ("voice", "認証コード")),
    ]);
    let mut out = Vec::new();
    for (n, (name, (channel, phrase))) in (0..).zip(expect) {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(events_dir().join(name)).unwrap())
                .unwrap();
        let raw = event["body"].as_str().unwrap();
        let body = if event["isBase64Encoded"].as_bool() == Some(true) {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .unwrap(),
            )
            .unwrap()
        } else {
            raw.to_owned()
        };
        // Codes that cannot turn up in the console by chance, so the
        // redaction check below is exact (the files' own codes are as short
        // as 4 digits).
        let body = redaction::with_code(&body, &redaction::unmistakable_code(n))
            .unwrap_or_else(|| panic!("{name}: no code to replace"));
        let event_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["eventId"]
            .as_str()
            .unwrap()
            .to_owned();
        out.push((event_id, body, channel, phrase));
    }
    out
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let resp = client
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

fn status_of(v: &serde_json::Value) -> &str {
    v["commands"][0]["value"][0]["status"]
        .as_str()
        .unwrap_or("")
}

fn wait_for(mut cond: impl FnMut() -> bool, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_delivers_every_valid_event_once_in_its_language() {
    let mut server = Server::start("serve", &[]);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // `token --jwks` prints the key set the issuer publishes.
    let published: serde_json::Value = client
        .get(format!(
            "http://127.0.0.1:{}/oauth2/default/v1/keys",
            server.port
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&server.token(&["--jwks"])).unwrap();
    assert_eq!(printed, published);
    assert!(printed["keys"][0]["n"].is_string() && printed["keys"][0].get("d").is_none());

    let token = server.token(&[]);
    let bodies = valid_bodies();
    for (event_id, body, _, _) in &bodies {
        let (status, json) = post(&client, &server.url(), &token, body).await;
        assert_eq!(
            (status, status_of(&json)),
            (200, "SUCCESSFUL"),
            "{event_id}: {json}"
        );
    }
    // The same hook again is answered from the ledger, not sent again.
    let (_, again) = post(&client, &server.url(), &token, &bodies[0].1).await;
    assert_eq!(status_of(&again), "SUCCESSFUL");

    let outbox = server.outbox();
    assert_eq!(outbox.len(), bodies.len(), "one line per event");
    for (event_id, body, channel, phrase) in &bodies {
        let lines: Vec<&serde_json::Value> = outbox
            .iter()
            .filter(|l| l["eventId"] == event_id.as_str())
            .collect();
        assert_eq!(lines.len(), 1, "{event_id}");
        assert_eq!(lines[0]["channel"], *channel, "{event_id}");
        assert!(
            lines[0]["body"].as_str().unwrap().contains(phrase),
            "{event_id}: {}",
            lines[0]["body"]
        );
        for key in ["to", "messageId", "sentAt"] {
            assert!(lines[0][key].is_string(), "{event_id}: {key}");
        }
        // The handset gets the code (a voice script paces its digits with
        // SSML breaks), so the console check below looks for something
        // that was really there.
        let code = serde_json::from_str::<serde_json::Value>(body).unwrap()["data"]["messageProfile"]["otpCode"]
            .as_str()
            .unwrap()
            .to_owned();
        let spoken = lines[0]["body"]
            .as_str()
            .unwrap()
            .replace(r#"<break time="400ms"/>"#, "");
        assert!(
            redaction::contains_standalone(&spoken, &code),
            "{event_id}: the code was sent"
        );
    }

    // Bad tokens, minted on purpose.
    for bad in [
        vec!["--expires-in", "-3600"],
        vec!["--scope", "openid"],
        vec!["--audience", "api://elsewhere"],
        vec!["--client-id", "0oaSomeoneElse"],
    ] {
        let (status, _) = post(&client, &server.url(), &server.token(&bad), &bodies[0].1).await;
        assert_eq!(status, 401, "{bad:?}");
    }

    let (status, lines) = server.terminate();
    assert!(status.success(), "{status:?}: {lines:?}");
    assert!(lines.iter().any(|l| l == "drained; bye"), "{lines:?}");
    // The console shows each message masked, never its code.
    let console = lines.join("\n");
    assert!(console.contains("outbox: sms to +1******2671"));
    for (_, body, _, _) in &bodies {
        let otp = serde_json::from_str::<serde_json::Value>(body).unwrap()["data"]["messageProfile"]["otpCode"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            !redaction::contains_standalone(&console, &otp),
            "a code reached the console"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fast_path_off_answers_pending_and_the_dispatcher_fills_the_outbox() {
    let mut server = Server::start("pending", &["--fast-path", "off"]);
    let client = reqwest::Client::new();
    let token = server.token(&[]);
    let bodies = valid_bodies();
    for (event_id, body, _, _) in &bodies {
        let (status, json) = post(&client, &server.url(), &token, body).await;
        assert_eq!(
            (status, status_of(&json)),
            (200, "PENDING"),
            "{event_id}: {json}"
        );
    }
    assert!(
        server.outbox().len() < bodies.len(),
        "nothing is sent inline"
    );
    wait_for(|| server.outbox().len() == bodies.len(), 30);
    let (status, lines) = server.terminate();
    assert!(status.success(), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_hooks_are_each_answered_and_sent_once() {
    let mut server = Server::start("load", &[]);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .build()
        .unwrap();
    let token = server.token(&[]);
    let template: serde_json::Value = serde_json::from_str(&valid_bodies()[0].1).unwrap();
    let n = 1000;
    let requests = (0..n).map(|i| {
        // Distinct users and destinations, as real traffic is: the toll-fraud
        // guard rightly refuses a thousand codes to one number.
        let mut body = template.clone();
        body["eventId"] = serde_json::Value::String(format!("load-{i:05}"));
        body["data"]["userProfile"]["userId"] = serde_json::Value::String(format!("00uload{i:05}"));
        body["data"]["messageProfile"]["phoneNumber"] =
            serde_json::Value::String(format!("+1415555{i:04}"));
        let (client, url, token) = (client.clone(), server.url(), token.clone());
        async move { post(&client, &url, &token, &body.to_string()).await }
    });
    let answers = futures::future::join_all(requests).await;
    assert_eq!(answers.len(), n);
    for (status, json) in &answers {
        assert_eq!(*status, 200);
        assert!(
            ["SUCCESSFUL", "PENDING"].contains(&status_of(json)),
            "{json}"
        );
    }
    let (status, lines) = server.terminate();
    assert!(status.success(), "{lines:?}");
    let ids: Vec<String> = server
        .outbox()
        .iter()
        .map(|l| l["eventId"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), n, "exactly one line per eventId");
    assert_eq!(unique.len(), n, "no line is duplicated");
}

#[test]
fn invoke_runs_every_event_file_and_prints_json() {
    let state_dir = temp_state_dir("invoke");
    let mut files: Vec<PathBuf> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 19);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let function = if name.starts_with("ingress-") {
            "ingress"
        } else if name.starts_with("dispatcher-") {
            "dispatcher"
        } else if name.starts_with("dlq-replayer") {
            "dlq-replayer"
        } else if name.starts_with("receipts-") {
            "receipts"
        } else {
            panic!("{name}: no function for this event file")
        };
        let out = Command::new(BIN)
            .args(["invoke", function])
            .arg(&file)
            // Each event on a fresh ledger: local mode's ledger is a file
            // that remembers the events sent before.
            .arg("--state-dir")
            .arg(state_dir.join(&name))
            .env_remove("TELEHOOK_BACKEND")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // stdout is the handler's JSON response alone (it pipes to `jq`);
        // the outbox notices go to stderr.
        let text = String::from_utf8(out.stdout).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"));
        let notices = String::from_utf8_lossy(&out.stderr);
        if name == "ingress-sms.json" {
            assert!(notices.contains("outbox: sms to +1"), "{name}: {notices}");
        }
        assert!(!text.contains("outbox:"), "{name}");
        match function {
            "ingress" => {
                let code = json["statusCode"].as_i64().unwrap();
                let expected = if name == "ingress-missing-token.json" {
                    401
                } else {
                    200
                };
                assert_eq!(code, expected, "{name}");
            }
            "dispatcher" => assert!(json["batchItemFailures"].is_array(), "{name}"),
            "receipts" if name == "receipts-expiry-checks.json" => {
                // Expiry checks for an event the ledger does not know, and
                // a body that is no check: both decided, none left to retry.
                assert_eq!(json["batchItemFailures"], serde_json::json!([]), "{json}");
            }
            "receipts" => {
                // A fresh local ledger knows no event: a final receipt is
                // an unknown event, the rest are what their names say.
                let kind = match name.as_str() {
                    "receipts-interim.json" => "interim",
                    "receipts-not-ours.json" => "notOurs",
                    "receipts-malformed.json" => "malformed",
                    _ => "unknownEvents",
                };
                assert_eq!(json[kind], 1, "{name}: {json}");
            }
            _ => {
                // A fresh local DLQ is empty: the report says so.
                assert_eq!(json["remaining"], 0, "{name}");
                assert_eq!(json["dryRun"], name.contains("dry-run"), "{name}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(state_dir);
}

#[test]
fn bench_reconciles_and_reports() {
    // Small and with an artificial provider latency: the figures are not
    // asserted (they belong in BENCHMARKS.md), the reconciliation is.
    let out = Command::new(BIN)
        .args([
            "bench",
            "--n",
            "200",
            "--concurrency",
            "16",
            "--provider-latency-ms",
            "5",
        ])
        .env_remove("TELEHOOK_BACKEND")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hooks"], 200);
    assert_eq!(report["answers"]["SUCCESSFUL"], 200);
    assert_eq!(report["outboxLines"], 200);
    for key in ["errors", "lost", "duplicated", "ledgerNotSent"] {
        assert_eq!(report[key], 0, "{key}");
    }
    assert_eq!(report["serveExit"], 0);
    for key in ["throughputPerSecond", "servePeakRssMiB", "answerSeconds"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{key}");
    }
    // The wall time includes the drain after the last answer.
    let (answer, drain, wall) = (
        report["answerSeconds"].as_f64().unwrap(),
        report["drainSeconds"].as_f64().unwrap(),
        report["wallSeconds"].as_f64().unwrap(),
    );
    assert!((answer + drain - wall).abs() < 0.002, "{report}");
    // A debug build (the tests' own profile) says so.
    let debug = cfg!(debug_assertions);
    assert_eq!(report["optimised"], !debug);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.contains("debug build"), debug, "{stderr}");
    assert!(!stderr.contains("would block"), "{stderr}");
    assert_eq!(report["serveLog"]["errors"], 0, "{report}");
    assert!(
        report["latencyMs"]["p99"].as_f64().unwrap()
            >= report["latencyMs"]["p50"].as_f64().unwrap()
    );
}

/// The README's quickstart, as written: the example body, a token from
/// `telehook token`, SUCCESSFUL, and a message that claims Okta's 5-minute
/// life (the example has no `otpExpires`).
#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_example_is_delivered() {
    let mut server = Server::start("quickstart", &[]);
    let body = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/okta-hook-sms.json"),
    )
    .unwrap();
    let (status, json) = post(
        &reqwest::Client::new(),
        &server.url(),
        &server.token(&[]),
        &body,
    )
    .await;
    assert_eq!((status, status_of(&json)), (200, "SUCCESSFUL"), "{json}");
    let lines = server.outbox();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["body"],
        "739201 is your Okta verification code. Valid for 5 min. Never share this code with anyone."
    );
    assert_eq!(
        lines[0]["messageId"],
        json["commands"][0]["value"][0]["transactionId"]
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// A body of any size over the cap is answered by telehook in Okta's
/// error shape (HTTP 200, `BODY_TOO_LARGE`), whether the handler read it
/// or the server stopped reading it; the framework never answers.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_of_every_size_get_okta_s_error() {
    let mut server = Server::start("oversized", &[]);
    let token = server.token(&[]);
    let client = reqwest::Client::new();
    for size in [70_000, 1_100_000, 2 * 1024 * 1024, 12 * 1024 * 1024] {
        let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(size));
        let resp = client
            .post(server.url())
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{size}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            json["error"]["errorCauses"][0]["reason"], "BODY_TOO_LARGE",
            "{size}: {json}"
        );
    }
    assert!(server.outbox().is_empty());
    let (exit, _) = server.terminate();
    assert!(exit.success());
}

/// Local mode's ledger is a file: a restarted `serve` answers the same
/// event from it (no second message), `report` still has the history, and
/// a pin written by `telehook guard` while `serve` runs refuses the next
/// hook to that range.
#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_its_ledger_across_restarts_and_sees_guard_edits_at_once() {
    let server = Server::start("restart", &[]);
    let body = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/okta-hook-sms.json"),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let (_, first) = post(&client, &server.url(), &server.token(&[]), &body).await;
    assert_eq!(status_of(&first), "SUCCESSFUL", "{first}");

    let mut server = server.restart(&[]);
    let (_, again) = post(&client, &server.url(), &server.token(&[]), &body).await;
    assert_eq!(status_of(&again), "SUCCESSFUL", "{again}");
    let id = |v: &serde_json::Value| v["commands"][0]["value"][0]["transactionId"].clone();
    assert_eq!(id(&again), id(&first));
    assert_eq!(server.outbox().len(), 1, "the event was sent again");
    let cli = |args: &[&str]| server.cli(args);
    let (report, source) = cli(&["report"]);
    assert!(source.contains("ledger.sqlite"), "{source}");
    let us = report
        .lines()
        .find(|l| l.starts_with("US"))
        .unwrap_or_default();
    assert_eq!(us.split_whitespace().nth(2), Some("1"), "{report}");

    // A pin while serve runs holds from the next hook.
    cli(&["guard", "pin", "+1650555"]);
    let pinned = body
        .replace("qu1ckstartSms00000000001", "pinnedRange0000000000001")
        .replace("+14155552671", "+16505550199");
    let (status, refused) = post(&client, &server.url(), &server.token(&[]), &pinned).await;
    assert_eq!(status, 200);
    assert!(refused["error"]["errorSummary"].is_string(), "{refused}");
    assert_eq!(server.outbox().len(), 1, "a pinned range was sent to");
    // The report counts the refusal by prefix and country, with its kind.
    let (report, _) = cli(&["report"]);
    let refused = report
        .lines()
        .skip_while(|l| !l.starts_with("refused by the guard"))
        .find(|l| l.starts_with("+1650555"))
        .unwrap_or_default();
    assert!(
        refused.contains("US") && refused.contains("1  LEARNED 1"),
        "{report}"
    );
    let (exit, _) = server.terminate();
    assert!(exit.success());
}

/// A job `serve` accepted (PENDING, queued for the dispatcher) is in the
/// queue file: a server killed before sending it leaves it there, and the
/// next one sends it, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_survives_a_crash_and_is_sent_by_the_next_serve() {
    let server = Server::start("crash", &["--fast-path", "off"]);
    let body = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/okta-hook-sms.json"),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let (_, answer) = post(&client, &server.url(), &server.token(&[]), &body).await;
    assert_eq!(status_of(&answer), "PENDING", "{answer}");
    assert!(server.outbox().is_empty(), "sent before the delivery delay");
    let mut server = server.crash_and_restart(&["--fast-path", "off"]);
    wait_for(|| !server.outbox().is_empty(), 30);
    let (_, again) = post(&client, &server.url(), &server.token(&[]), &body).await;
    assert_eq!(status_of(&again), "SUCCESSFUL", "{again}");
    let (exit, _) = server.terminate();
    assert!(exit.success());
    assert_eq!(server.outbox().len(), 1);
    // The sent job's code is gone from the queue file, not just unlinked.
    let mut files = String::new();
    for entry in std::fs::read_dir(&server.state_dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("queue.sqlite")
        {
            files.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    assert!(
        !files.is_empty() && !files.contains("739201"),
        "the code stayed"
    );
}

/// The quickstart in Notify mode (`ROUTES=notify`, as the README shows
/// it): the example is delivered by the Notify route, and the outbox line
/// says so. With both routes, a number Notify's Basic tier does not serve
/// (Indonesia) goes out by the own route instead, once.
#[tokio::test(flavor = "multi_thread")]
async fn serve_delivers_the_quickstart_by_notify_and_falls_over_to_the_own_route() {
    let body = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/okta-hook-sms.json"),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let mut server = Server::start_env("notify-mode", &[], &[("ROUTES", "notify")]);
    let (status, json) = post(&client, &server.url(), &server.token(&[]), &body).await;
    assert_eq!((status, status_of(&json)), (200, "SUCCESSFUL"), "{json}");
    let lines = server.outbox();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["route"], "notify");
    let (status, stdout) = server.terminate();
    assert!(status.success());
    assert!(stdout.iter().any(|l| l.contains("by notify")), "{stdout:?}");

    let mut server = Server::start_env(
        "two-routes",
        &[],
        &[("ROUTES", "notify,own"), ("ALLOWED_COUNTRIES", "US,CA,ID")],
    );
    let mut hook: serde_json::Value = serde_json::from_str(&body).unwrap();
    hook["data"]["messageProfile"]["phoneNumber"] = "+62812345678".into();
    hook["eventId"] = "evt-notify-not-served".into();
    let (status, json) = post(
        &client,
        &server.url(),
        &server.token(&[]),
        &hook.to_string(),
    )
    .await;
    assert_eq!((status, status_of(&json)), (200, "SUCCESSFUL"), "{json}");
    let lines = server.outbox();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["route"], "own");
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// Local mode plays End User Messaging's delivery events: each outbox
/// message gets a final receipt through the receipts flow, delivered unless
/// `--undeliverable` names its country or prefix; `telehook report` then
/// shows the rates by country from the ledger serve keeps.
#[tokio::test(flavor = "multi_thread")]
async fn serve_reports_receipts_and_report_shows_rates_by_country() {
    let mut server = Server::start("receipts", &["--undeliverable", "CA,+1415555"]);
    let token = server.token(&[]);
    let client = reqwest::Client::new();
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("ingress-sms.json")).unwrap(),
    )
    .unwrap();
    let template: serde_json::Value =
        serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    for (i, phone) in ["+12065550101", "+14155550102", "+14165550103"]
        .into_iter()
        .enumerate()
    {
        let mut body = template.clone();
        body["eventId"] = format!("rcpt-{i}").into();
        body["data"]["messageProfile"]["phoneNumber"] = phone.into();
        body["data"]["userProfile"]["userId"] = format!("00urcpt{i}").into();
        let (status, answer) = post(&client, &server.url(), &token, &body.to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(status_of(&answer), "SUCCESSFUL", "{answer}");
    }
    let (exit, _) = server.terminate();
    assert!(exit.success());
    let records = server.ledger_records();
    let delivery = |id: &str| {
        let r = records.iter().find(|r| r.event_id == id).unwrap();
        (
            r.delivery
                .as_ref()
                .map_or("none", |d| d.delivery.as_str())
                .to_owned(),
            r.country.clone().unwrap_or_else(|| "none".into()),
        )
    };
    assert_eq!(delivery("rcpt-0"), ("DELIVERED".into(), "US".into()));
    assert_eq!(delivery("rcpt-1"), ("UNDELIVERED".into(), "US".into()));
    assert_eq!(delivery("rcpt-2"), ("UNDELIVERED".into(), "CA".into()));
    let out = Command::new(BIN)
        .args(["report", "--state-dir"])
        .arg(&server.state_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |country: &str| {
        text.lines()
            .find(|l| l.starts_with(country))
            .unwrap_or_else(|| panic!("no {country} row in {text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("US")[1..7], ["sms", "2", "1", "1", "0", "50.0%"]);
    assert_eq!(row("CA")[1..7], ["sms", "1", "0", "1", "0", "0.0%"]);
    // The report and the ledger name countries, never numbers.
    let ledger = server.ledger_bytes();
    for n in ["2065550101", "4155550102", "4165550103"] {
        assert!(!text.contains(n) && !ledger.contains(n));
    }
}

/// The whole conversion loop on one machine: delivered codes are used
/// (Okta's event for each kind of code through the event hook route),
/// enrollments to a never-converting country expire unused, the learning
/// guard blocks that country's prefix once its minimum of codes is judged
/// (pending ones count for nothing), and `report` and `guard` show and
/// change it.
#[tokio::test(flavor = "multi_thread")]
async fn serve_converts_expires_and_learns_blocks_that_guard_and_report_show() {
    let mut server = Server::start_env(
        "conversion",
        &["--never-converting", "ID"],
        &[
            ("LEARNED_GUARD", "block"),
            ("LEARNED_GUARD_MIN_SENDS", "5"),
            ("ALLOWED_COUNTRIES", "US,ID"),
        ],
    );
    let token = server.token(&[]);
    let client = reqwest::Client::new();
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("ingress-sms.json")).unwrap(),
    )
    .unwrap();
    let template: serde_json::Value =
        serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    let hook = |id: String, phone: String, user: String, expires: String| {
        let kind = if id.starts_with("conv-us-1") {
            "mfa-verification"
        } else if id.starts_with("conv-us-2") {
            "password-reset"
        } else {
            "pre-enrollment"
        };
        let mut body = template.clone();
        body["eventId"] = id.into();
        body["requestType"] = format!("com.okta.user.telephony.{kind}").into();
        body["data"]["messageProfile"]["phoneNumber"] = phone.into();
        body["data"]["userProfile"]["userId"] = user.into();
        body["data"]["messageProfile"]["otpExpires"] = expires.into();
        body.to_string()
    };
    let in_secs = |s: i64| (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339();
    for i in 0..3 {
        let body = hook(
            format!("conv-us-{i}"),
            format!("+1206555010{i}"),
            format!("00uconvus{i}"),
            in_secs(300),
        );
        let (status, answer) = post(&client, &server.url(), &token, &body).await;
        assert_eq!(
            (status, status_of(&answer)),
            (200, "SUCCESSFUL"),
            "{answer}"
        );
    }
    // Enrollments nobody finishes: pending codes count for nothing, so all
    // go out.
    for i in 0..5 {
        let body = hook(
            format!("conv-id-{i}"),
            format!("+628123400000{i}"),
            format!("00uconvid{i}"),
            in_secs(3),
        );
        let (status, answer) = post(&client, &server.url(), &token, &body).await;
        assert_eq!(
            (status, status_of(&answer)),
            (200, "SUCCESSFUL"),
            "{i}: {answer}"
        );
    }
    // The US codes are used 1.5 s after delivery; the Indonesian ones
    // expire after 3 s and the checks run every second.
    let feedback = server.state_dir.join("feedback.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = std::fs::read_to_string(&feedback).unwrap_or_default();
        if lines.lines().count() >= 8 {
            assert_eq!(lines.matches("RECEIVED").count(), 3, "{lines}");
            assert_eq!(lines.matches("FAILED").count(), 5, "{lines}");
            break;
        }
        assert!(Instant::now() < deadline, "feedback so far: {lines}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Judged: the range is blocked.
    for i in 5..8 {
        let body = hook(
            format!("conv-id-{i}"),
            format!("+628123400000{i}"),
            format!("00uconvid{i}"),
            in_secs(3),
        );
        let (status, answer) = post(&client, &server.url(), &token, &body).await;
        assert_eq!(status, 200);
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"], "RANGE_BLOCKED",
            "{i}: {answer}"
        );
    }
    let (exit, _) = server.terminate();
    assert!(exit.success());

    let run = |args: &[&str]| server.cli(args).0;
    let html = server.state_dir.join("report.html");
    let text = run(&["report", "--html", html.to_str().unwrap()]);
    let row = |first: &str| {
        text.lines()
            .find(|l| l.starts_with(first))
            .unwrap_or_else(|| panic!("no {first} row in {text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // sent, ..., used, unused, conversion rate.
    assert_eq!(row("US")[2], "3");
    assert_eq!(row("US")[9..12], ["3", "0", "100.0%"]);
    assert_eq!(row("ID")[9..12], ["0", "5", "0.0%"]);
    assert_eq!(row("+6281234")[2], "5");
    assert!(text.contains("+6281234   LEARNED"), "{text}");
    // By kind: the US MFA, reset and enrollment codes used, the five
    // Indonesian enrollments not.
    assert_eq!(row("enrollment")[1..2], ["6"], "{text}");
    assert_eq!(row("enrollment")[8..11], ["1", "5", "16.7%"], "{text}");
    assert_eq!(row("mfa")[8..11], ["1", "0", "100.0%"], "{text}");
    assert_eq!(row("reset")[8..11], ["1", "0", "100.0%"], "{text}");
    assert!(text.contains("Okta took over: never"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("+6281234"));

    let listed = run(&["guard", "list"]);
    assert!(
        listed.contains("+6281234") && listed.contains("[blocking]"),
        "{listed}"
    );
    run(&["guard", "lift", "+6281234"]);
    run(&[
        "guard",
        "pin",
        "+4477009",
        "--reason",
        "seen in a fraud report",
    ]);
    let listed = run(&["guard", "list"]);
    assert!(
        listed.contains("LIFTED") && listed.contains("[open]"),
        "{listed}"
    );
    assert!(
        listed.contains("+4477009   PINNED") && listed.contains("fraud report"),
        "{listed}"
    );
    // Numbers and user ids stay out of the report and the ledger.
    let report_page = std::fs::read_to_string(server.state_dir.join("report.html")).unwrap();
    for (name, content) in [("ledger", server.ledger_bytes()), ("report", report_page)] {
        for secret in ["6281234000001", "2065550101", "00uconvus1", "00uconvid2"] {
            assert!(!content.contains(secret), "the {name} holds {secret}");
        }
    }
    assert!(!text.contains("6281234000001"));
}

/// Okta's traffic as an org meets it, black-box through `telehook serve`
/// with the learning guard blocking: codes that cannot be judged (an
/// outsider's resets, unlocks, MFA codes nobody uses, enrollments without
/// a user id) never block their range; a company's burst of 45 enrollments
/// on one carrier block all goes out; and unfinished enrollments to one
/// range, one a second with 30-second codes, are refused well inside two
/// minutes while ordinary enrollments beside them go out.
#[tokio::test(flavor = "multi_thread")]
async fn the_guard_contains_pumping_and_never_turns_on_ordinary_traffic() {
    let mut server = Server::start_env(
        "guard-traffic",
        &["--never-converting", "ID,+1650555"],
        &[("LEARNED_GUARD", "block"), ("ALLOWED_COUNTRIES", "US,ID")],
    );
    let token = server.token(&[]);
    let client = reqwest::Client::new();
    let template: serde_json::Value = serde_json::from_str(
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(events_dir().join("ingress-sms.json")).unwrap(),
        )
        .unwrap()["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let hook = |id: &str, kind: &str, phone: String, user: Option<String>, life_s: i64| {
        let mut body = template.clone();
        body["eventId"] = id.into();
        body["requestType"] = format!("com.okta.user.telephony.{kind}").into();
        body["data"]["messageProfile"]["phoneNumber"] = phone.into();
        body["data"]["userProfile"]["userId"] = user.map_or(serde_json::Value::Null, Into::into);
        body["data"]["messageProfile"]["otpExpires"] = (chrono::Utc::now()
            + chrono::Duration::seconds(life_s))
        .to_rfc3339()
        .into();
        body.to_string()
    };
    let send = |body: String| {
        let (client, url, token) = (client.clone(), server.url(), token.clone());
        async move { post(&client, &url, &token, &body).await }
    };

    // Codes nobody uses that cannot be judged, 30 of each, to one range.
    for i in 0..120usize {
        let (kind, user) = match i % 4 {
            0 => ("password-reset", Some(format!("00ureset{i}"))),
            1 => ("account-unlock", Some(format!("00uunlock{i}"))),
            2 => ("mfa-verification", Some(format!("00umfa{i}"))),
            _ => ("pre-enrollment", None),
        };
        let body = hook(
            &format!("nc-{i}"),
            kind,
            format!("+1650555{:04}", i),
            user,
            3,
        );
        let (status, answer) = send(body).await;
        assert_eq!(
            (status, status_of(&answer)),
            (200, "SUCCESSFUL"),
            "{kind} {i}: {answer}"
        );
    }

    // 9 a.m.: 45 enrollments on one carrier block within two seconds.
    let burst = (0..45usize).map(|i| {
        send(hook(
            &format!("burst-{i}"),
            "pre-enrollment",
            format!("+1415555{:04}", 1000 + i),
            Some(format!("00uburst{i}")),
            300,
        ))
    });
    for (status, answer) in futures::future::join_all(burst).await {
        assert_eq!(
            (status, status_of(&answer)),
            (200, "SUCCESSFUL"),
            "{answer}"
        );
    }

    // Pumping: an unfinished enrollment a second to one range, 30-second
    // codes, with ordinary enrollments beside it.
    let start = Instant::now();
    let mut contained = None;
    let mut pumped_out = 0;
    for i in 0..150usize {
        let tick = start + Duration::from_secs(i as u64);
        tokio::time::sleep_until(tick.into()).await;
        let (status, answer) = send(hook(
            &format!("pump-{i}"),
            "pre-enrollment",
            format!("+6281234{:05}", i),
            Some(format!("00upump{i}")),
            30,
        ))
        .await;
        assert_eq!(status, 200);
        if status_of(&answer) == "SUCCESSFUL" {
            pumped_out += 1;
        } else {
            assert_eq!(
                answer["error"]["errorCauses"][0]["reason"], "RANGE_BLOCKED",
                "{answer}"
            );
            contained.get_or_insert(start.elapsed());
        }
        if i % 3 == 0 {
            let (status, answer) = send(hook(
                &format!("ok-{i}"),
                "pre-enrollment",
                format!("+1206555{:04}", i),
                Some(format!("00uok{i}")),
                300,
            ))
            .await;
            assert_eq!(
                (status, status_of(&answer)),
                (200, "SUCCESSFUL"),
                "ordinary {i}: {answer}"
            );
        }
        if contained.is_some_and(|c| start.elapsed() > c + Duration::from_secs(3)) {
            break;
        }
    }
    let contained = contained.expect("the pumped range was refused");
    println!(
        "pumping one enrollment a second: contained after {} s, {pumped_out} codes out",
        contained.as_secs()
    );
    assert!(contained < Duration::from_secs(120), "{contained:?}");
    let (exit, lines) = server.terminate();
    assert!(exit.success(), "{lines:?}");
    let listed = {
        let out = Command::new(BIN)
            .args(["guard", "list", "--state-dir"])
            .arg(&server.state_dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        listed.contains("+6281234") && listed.contains("LEARNED"),
        "{listed}"
    );
    for open in ["+1650555", "+1415555", "+1206555", " US "] {
        assert!(!listed.contains(open), "{open} blocked: {listed}");
    }
}
