//! The emulator path of docs/local-mode.md, end to end, as a user runs it:
//! `scripts/emulator up` (the AWS emulator, the tables and queues from
//! template.yaml, the End User Messaging stand-in `telehook sms-stub`), its
//! variables exported, then `telehook serve`, `invoke` and `replay` on the
//! AWS adapters. One run covers a fast-path send, a hook with the fast path
//! off, a throttled provider, a poison message and a replay of the
//! dead-letter queue, and checks the logs hold no code, number or token.
//!
//! The script is run with `.venv`'s Python directly and given this test's
//! `telehook` binary: `scripts/emulator` only adds installing the emulator
//! and building the binary, which `scripts/test` has done already.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::local_mode::{events_dir, temp_state_dir};
use telehook::testkit::redaction::contains_standalone;

const BIN: &str = env!("CARGO_BIN_EXE_telehook");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `scripts/emulator.py` with this test's state directory and free ports.
fn emulator(state: &Path, command: &str) -> Output {
    let out = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/emulator.py"))
        .arg(command)
        .arg("--state-dir")
        .arg(state)
        .args(["--port", "0", "--stub-port", "0", "--telehook", BIN])
        // A receive whose answer a busy machine loses (the client gave up
        // after the wait plus its margin, the emulator had already handed
        // the message out) leaves it out of sight for the queue's
        // visibility timeout: SQS's own semantics, the message comes back.
        // With the template's 180 s a run could not tell that from a lost
        // job within its drain; at 30 s it comes back several times over.
        // The dispatcher sets every retry's visibility itself, so nothing
        // else here depends on it.
        .args([
            "--visibility-timeout",
            &JOB_QUEUE_VISIBILITY_SECS.to_string(),
        ])
        // However this test ends, the emulator and the stand-in end with it.
        .args(["--exit-with", &std::process::id().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "emulator {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `export K='V'` lines `up` printed.
fn exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

/// The emulator and the stand-in `scripts/emulator.py up` started, stopped
/// when this is dropped (on success, failure and panic alike), before its
/// state directory, which holds their process ids, is removed.
struct Emulator {
    /// The test's own state directory (the emulator's is `emulator/` in it).
    root: PathBuf,
    state: PathBuf,
    env: Vec<(String, String)>,
    pids: Vec<u32>,
}

impl Emulator {
    fn up(root: &Path) -> Emulator {
        let state = root.join("emulator");
        let up = emulator(&state, "up");
        let pids = std::fs::read_to_string(state.join("pids"))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect::<Vec<u32>>();
        // The emulator, the stand-in and the watchdog that ends them.
        assert_eq!(pids.len(), 3, "{pids:?}");
        Emulator {
            root: root.to_owned(),
            state,
            env: exports(&String::from_utf8(up.stdout).unwrap()),
            pids,
        }
    }

    /// Stops everything `up` started, and returns the processes that are
    /// still running (none, when `down` did its job).
    fn down(&self) -> Vec<u32> {
        let _ = Command::new(root().join(".venv/bin/python"))
            .arg(root().join("scripts/emulator.py"))
            .args(["down", "--state-dir"])
            .arg(&self.state)
            .output();
        self.pids.iter().copied().filter(|p| running(*p)).collect()
    }

    fn var(&self, k: &str) -> String {
        self.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} not exported"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(root())
            .env_remove("AWS_PROFILE")
            .env_remove("FAST_PATH")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn telehook(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "telehook {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn outbox(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("outbox.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn sent(&self, event_id: &str) -> usize {
        self.outbox()
            .iter()
            .filter(|m| m["eventId"] == event_id)
            .count()
    }

    async fn faults(&self, method: reqwest::Method, faults: &[&str]) {
        let url = format!(
            "{}/_stub/faults",
            self.var("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2")
        );
        let resp = reqwest::Client::new()
            .request(method, url)
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }

    async fn sdk(&self) -> aws_config::SdkConfig {
        crate::ops::moto::sdk_config(&self.var("AWS_ENDPOINT_URL")).await
    }

    /// The ledger record's status and attempts, read by the product's own
    /// DynamoDB adapter.
    async fn ledger(&self, event_id: &str) -> (String, u32) {
        use telehook::ledger::Claims as _;
        let ledger = telehook::ledger::DynamoLedger::new(
            aws_sdk_dynamodb::Client::new(&self.sdk().await),
            self.var("LEDGER_TABLE"),
        );
        let record = ledger
            .get(&telehook::domain::EventId::parse(event_id).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no ledger item for {event_id}"));
        (record.status.as_str().to_owned(), record.attempts)
    }

    /// The record's conversion (`CONVERTED`, `UNUSED` or `none`).
    async fn conversion(&self, event_id: &str) -> String {
        use telehook::ledger::Claims as _;
        let ledger = telehook::ledger::DynamoLedger::new(
            aws_sdk_dynamodb::Client::new(&self.sdk().await),
            self.var("LEDGER_TABLE"),
        );
        ledger
            .get(&telehook::domain::EventId::parse(event_id).unwrap())
            .await
            .unwrap()
            .and_then(|r| r.sent)
            .and_then(|s| s.conversion)
            .map_or("none".to_owned(), |c| c.0.as_str().to_owned())
    }

    /// The stand-in's feedback requests: (message id, status).
    async fn feedback(&self) -> Vec<(String, String)> {
        let url = format!(
            "{}/_stub/requests",
            self.var("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2")
        );
        let all: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
        all.iter()
            .filter(|r| r["operation"] == "PutMessageFeedback")
            .map(|r| {
                (
                    r["messageId"].as_str().unwrap_or_default().to_owned(),
                    r["messageFeedbackStatus"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    async fn depth(&self, url_var: &str) -> i64 {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk().await);
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(self.var(url_var))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        .iter()
        .filter_map(|k| attrs.get(&aws_sdk_sqs::types::QueueAttributeName::from(*k)))
        .map(|v| v.parse::<i64>().unwrap())
        .sum()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let left = self.down();
        let _ = std::fs::remove_dir_all(&self.root);
        if !left.is_empty() && !std::thread::panicking() {
            panic!("processes outlived the emulator test: {left:?}");
        }
    }
}

/// Whether `pid` is a live process (a zombie waiting to be reaped is not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which is in parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            after
                .split_whitespace()
                .next()
                .map(|s| s != "Z" && s != "X")
        })
        .unwrap_or(false)
}

/// The job queue's visibility timeout in this run (see `emulator`).
const JOB_QUEUE_VISIBILITY_SECS: u64 = 30;

/// `telehook serve` on the AWS adapters, its output kept for the log check.
struct Serve {
    child: Child,
    port: u16,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Serve {
    fn start(emu: &Emulator, state: &Path) -> Serve {
        let mut child = emu
            // The drain at stop outlasts several visibility timeouts, so
            // only a job that never comes back fails the run.
            .command(&[
                "serve",
                "--port",
                "0",
                "--drain-timeout",
                &(8 * JOB_QUEUE_VISIBILITY_SECS).to_string(),
                "--state-dir",
            ])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let out = output.clone();
        let stdout = child.stdout.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .strip_prefix("listening on http://127.0.0.1:")
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
                out.lock().unwrap().push(line);
            }
        });
        let out = output.clone();
        let stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                out.lock().unwrap().push(line);
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "serve --aws did not start: {:?}",
                    output.lock().unwrap().join("\n")
                )
            });
        Serve {
            child,
            port,
            output,
            readers: vec![out_reader, err_reader],
        }
    }

    fn stop(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        // The readers end at their pipes' end of file, after the last line.
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let text = self.output.lock().unwrap().join("\n");
        assert!(status.success(), "serve exited with {status}: {text}");
        text
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A hook body from `events/ingress-sms.json` with its own event, number,
/// user and code.
fn hook(event_id: &str, phone: &str, otp: &str) -> String {
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("ingress-sms.json")).unwrap(),
    )
    .unwrap();
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body["eventId"] = event_id.into();
    body["data"]["messageProfile"]["phoneNumber"] = phone.into();
    body["data"]["messageProfile"]["otpCode"] = otp.into();
    body["data"]["messageProfile"]["msgTemplate"] = format!("Your code is {otp}").into();
    body["data"]["userProfile"]["userId"] = format!("00u{event_id}").into();
    body.to_string()
}

fn status_of(answer: &Value) -> &str {
    answer["commands"][0]["value"][0]["status"]
        .as_str()
        .unwrap_or("none")
}

/// Waits for `cond`, up to a deadline far beyond what any step needs; a
/// step that never happens fails with `what`.
async fn eventually<F: Future<Output = bool>>(
    logs: &Mutex<Vec<String>>,
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "never happened: {what}; serve's output:\n{}",
            logs.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_emulator_path_runs_hooks_throttles_poison_and_a_replay() {
    let state = temp_state_dir("emulator");
    let emu = Emulator::up(&state);
    // `env` prints the same variables again.
    let again = exports(&String::from_utf8(emulator(&emu.state, "env").stdout).unwrap());
    assert_eq!(again, emu.env);
    let mut serve = Serve::start(&emu, &state.join("serve"));
    let token = emu.telehook(&[
        "token",
        "--port",
        &serve.port.to_string(),
        "--state-dir",
        state.join("serve").to_str().unwrap(),
    ]);
    let client = reqwest::Client::new();
    let post = |body: String| {
        let (client, token, port) = (client.clone(), token.trim().to_owned(), serve.port);
        async move {
            let resp = client
                .post(format!("http://127.0.0.1:{port}/okta/telephony"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };

    // 1. The fast path: sent inside the hook call.
    let answer = post(hook("e2eFast", "+14155550101", "0751010101")).await;
    assert_eq!(status_of(&answer), "SUCCESSFUL", "{answer}");
    assert_eq!(emu.sent("e2eFast"), 1);
    assert_eq!(emu.ledger("e2eFast").await.0, "SENT");

    // 2. The fast path off (`invoke --aws`, FAST_PATH from the environment):
    // PENDING, then the dispatcher (serve's poller) sends it.
    let event = state.join("fast-path-off.json");
    let mut proxy: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("ingress-sms.json")).unwrap(),
    )
    .unwrap();
    proxy["body"] = hook("e2eQueued", "+14155550102", "0752020202").into();
    std::fs::write(&event, proxy.to_string()).unwrap();
    let out = emu
        .command(&["invoke", "ingress", event.to_str().unwrap(), "--state-dir"])
        .arg(state.join("invoke"))
        .env("FAST_PATH", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp: Value = serde_json::from_slice(&out.stdout).unwrap();
    let answer: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(status_of(&answer), "PENDING", "{answer}");
    eventually(&serve.output, "the queued job is sent", || async {
        emu.sent("e2eQueued") == 1
    })
    .await;
    eventually(&serve.output, "the queued job is SENT", || async {
        emu.ledger("e2eQueued").await.0 == "SENT"
    })
    .await;

    // 3. A throttled provider: the fast path gives up (PENDING) and the
    // dispatcher sends it once the provider takes it.
    emu.faults(reqwest::Method::POST, &["throttle", "throttle", "throttle"])
        .await;
    let answer = post(hook("e2eThrottled", "+14155550103", "0753030303")).await;
    assert_eq!(status_of(&answer), "PENDING", "{answer}");
    eventually(&serve.output, "the throttled job is sent", || async {
        emu.sent("e2eThrottled") == 1
    })
    .await;
    let (status, attempts) = emu.ledger("e2eThrottled").await;
    assert_eq!(status, "SENT");
    assert!(
        attempts >= 2,
        "the fast path and the dispatcher: {attempts}"
    );
    emu.faults(reqwest::Method::DELETE, &[]).await;

    // 4. A poison message (not a job) ends in the dead-letter queue,
    // untouched, after the redrive policy's receives.
    let sqs = aws_sdk_sqs::Client::new(&emu.sdk().await);
    sqs.send_message()
        .queue_url(emu.var("QUEUE_URL"))
        .message_body("this is not a job")
        .message_group_id("poison")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();
    eventually(
        &serve.output,
        "the poison message reaches the DLQ",
        || async { emu.depth("DLQ_URL").await == 1 && emu.depth("QUEUE_URL").await == 0 },
    )
    .await;

    // 5. A provider outage outlasts every retry: the job goes to the DLQ.
    // Once the provider is back, a replay sends it, once; the poison stays.
    emu.faults(reqwest::Method::POST, &["throttle"; 200]).await;
    let answer = post(hook("e2eReplayed", "+14155550104", "0754040404")).await;
    assert_eq!(status_of(&answer), "PENDING", "{answer}");
    eventually(
        &serve.output,
        "the undeliverable job reaches the DLQ",
        || async { emu.depth("DLQ_URL").await == 2 && emu.depth("QUEUE_URL").await == 0 },
    )
    .await;
    assert_eq!(emu.sent("e2eReplayed"), 0);
    emu.faults(reqwest::Method::DELETE, &[]).await;
    let status = emu.telehook(&["replay", "status"]);
    assert!(status.contains("dead-letter queue: 2 visible"), "{status}");
    let report: Value = serde_json::from_str(&emu.telehook(&[
        "invoke",
        "dlq-replayer",
        events_dir().join("dlq-replayer.json").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(report["moved"], 1, "{report}");
    assert_eq!(report["failed"], 1, "the poison message stays: {report}");
    eventually(&serve.output, "the replayed job is sent", || async {
        emu.sent("e2eReplayed") == 1
    })
    .await;
    eventually(&serve.output, "the replayed job is SENT", || async {
        emu.ledger("e2eReplayed").await.0 == "SENT"
    })
    .await;
    assert_eq!(emu.depth("DLQ_URL").await, 1);

    // 6. Conversion over the AWS adapters: a sign-in from Okta's event
    // hook converts the fast-path send (index query, conditional update,
    // RECEIVED feedback); a code that expires unused is marked by the
    // expiry check that waited on the SQS delay (FAILED feedback).
    let message_of = |event: &str| {
        emu.outbox()
            .iter()
            .find(|m| m["eventId"] == event)
            .map(|m| m["messageId"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let sign_in = serde_json::json!({"data": {"events": [{
        "eventType": "user.authentication.auth_via_mfa",
        "outcome": {"result": "SUCCESS"},
        "actor": {"id": "00ue2eFast", "type": "User"},
        "target": [{"type": "AuthenticatorEnrollment", "detailEntry": {"methodTypeUsed": "SMS"}}]
    }]}});
    let resp = client
        .post(format!("http://127.0.0.1:{}/okta/events", serve.port))
        .header("authorization", "local-event-hook-secret")
        .json(&sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["converted"], 1, "{report}");
    assert_eq!(emu.conversion("e2eFast").await, "CONVERTED");
    let mut unused: Value =
        serde_json::from_str(&hook("e2eUnused", "+12065550105", "550505")).unwrap();
    unused["data"]["messageProfile"]["otpExpires"] = (chrono::Utc::now()
        + chrono::Duration::seconds(3))
    .to_rfc3339()
    .into();
    let answer = post(unused.to_string()).await;
    assert_eq!(status_of(&answer), "SUCCESSFUL", "{answer}");
    eventually(
        &serve.output,
        "the unused code is marked UNUSED",
        || async { emu.conversion("e2eUnused").await == "UNUSED" },
    )
    .await;
    let feedback = emu.feedback().await;
    assert!(
        feedback.contains(&(message_of("e2eFast"), "RECEIVED".to_owned()))
            && feedback.contains(&(message_of("e2eUnused"), "FAILED".to_owned())),
        "{feedback:?}"
    );

    // 7. An operator pins a range on the table: its next hook is refused;
    // lifted, the range is open again.
    emu.telehook(&["guard", "pin", "+1425555", "--aws", "--reason", "e2e pin"]);
    let listed = emu.telehook(&["guard", "list", "--aws"]);
    assert!(
        listed.contains("+1425555   PINNED") && listed.contains("[blocking]"),
        "{listed}"
    );
    let answer = post(hook("e2ePinned", "+14255550106", "560606")).await;
    assert_eq!(
        answer["error"]["errorCauses"][0]["reason"], "RANGE_BLOCKED",
        "{answer}"
    );
    emu.telehook(&["guard", "lift", "+1425555", "--aws"]);
    let answer = post(hook("e2eLifted", "+14255550107", "570707")).await;
    assert_eq!(status_of(&answer), "SUCCESSFUL", "{answer}");
    assert_eq!(emu.sent("e2ePinned"), 0);

    // Every event went out exactly once.
    for event in ["e2eFast", "e2eQueued", "e2eThrottled", "e2eReplayed"] {
        assert_eq!(emu.sent(event), 1, "{event}");
    }
    // The report reads the ledger table: four US texts sent, none with a
    // receipt yet (the stand-in publishes no delivery events).
    let report = emu.telehook(&["report", "--aws"]);
    let us = report
        .lines()
        .find(|l| l.starts_with("US"))
        .unwrap_or_else(|| panic!("{report}"));
    let cells: Vec<&str> = us.split_whitespace().collect();
    // Six sent (the pinned one was not), one used, one unused.
    assert_eq!(cells[1..6], ["sms", "6", "0", "0", "6"], "{report}");
    assert_eq!(cells[9..12], ["1", "1", "50.0%"], "{report}");
    assert!(
        report.contains("+1425555") && report.contains("LIFTED"),
        "{report}"
    );
    let logs = serve.stop();
    for secret in [
        "0751010101",
        "0752020202",
        "0753030303",
        "0754040404",
        "4155550101",
        "4155550103",
        "4155550104",
        "2065550105",
        "00ue2eFast",
        "local-event-hook-secret",
        token.trim(),
    ] {
        assert!(
            !contains_standalone(&logs, secret),
            "the serve logs hold {secret}"
        );
    }
    // Nothing this test started outlives it.
    assert!(running(emu.pids[0]), "the check below sees live processes");
    assert_eq!(emu.down(), Vec::<u32>::new(), "processes left running");
}
