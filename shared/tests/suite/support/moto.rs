//! The local AWS API emulator (`moto_server`, installed by `scripts/test`
//! into `.venv`). One server per test binary, started on first use on a free
//! loopback port. Tests take a lock and reset it, so each starts from an
//! empty account. The server dies with the test process: it is started under
//! a shell that kills it once our end of its stdin closes.
//!
//! Nothing is skipped: if the emulator is missing or does not come up, the
//! test fails and says why.
#![allow(clippy::unwrap_used)]
// Each test binary uses a different part of this support module.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub struct Moto {
    pub url: String,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static LOCK: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// The emulator's command: `MOTO_SERVER` if set, else the project's
/// `scripts/moto-server.py` (moto with DynamoDB's atomic conditional
/// writes) under the `.venv` Python.
fn moto_command() -> (PathBuf, Vec<PathBuf>) {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return (PathBuf::from(p), Vec::new());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    (
        root.join(".venv/bin/python"),
        vec![root.join("scripts/moto-server.py")],
    )
}

fn start() -> Moto {
    let (bin, script) = moto_command();
    assert!(
        bin.exists(),
        "the AWS emulator is not installed at {}: run ./scripts/test (it installs moto[server] into .venv) or set MOTO_SERVER",
        bin.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("telehook-moto-{port}.log"));
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"port="$1" log="$2"; shift 2; "$@" -H 127.0.0.1 -p "$port" >"$log" 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
        .arg("sh")
        .arg(port.to_string())
        .arg(&log)
        .arg(&bin)
        .args(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                break;
            }
        }
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("moto_server did not start on port {port} within 60 s; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        url,
        _child: Mutex::new(child),
    }
}

/// Exclusive use of a freshly reset emulator.
pub async fn moto() -> (tokio::sync::MutexGuard<'static, ()>, &'static Moto) {
    let guard = LOCK.lock().await;
    let m = MOTO.get_or_init(start);
    let resp = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", m.url))
        .send()
        .await
        .expect("reset the emulator");
    assert!(
        resp.status().is_success(),
        "emulator reset failed: {}",
        resp.status()
    );
    (guard, m)
}

/// The project's SDK settings (its retry policy included), pointed at
/// `url` with dummy credentials, with longer timeouts: the product's
/// 1.5 s attempt timeout is sized for AWS, and the emulator is a Python
/// process sharing two cores with the test build. An attempt that timed
/// out after the emulator had applied it would be retried, and the retry
/// would see the first write (a claim as Busy, a create as a conflict):
/// a failure by chance, not a finding. These tests are about what goes
/// over the wire, not about time.
pub async fn sdk_config(url: &str) -> SdkConfig {
    telehook::aws::sdk_config_loader()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// `sdk` without the hot path's timeouts and retries, for setup calls that
/// are not idempotent (creating secrets, state machines, stacks).
pub fn setup_config(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(aws_config::timeout::TimeoutConfig::disabled())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build()
}

/// The tables and queues, made as every emulator run makes them: by
/// `scripts/emulator.py create`, from template.yaml's own definitions.
#[derive(Debug, Clone)]
pub struct Resources {
    pub ledger_table: String,
    pub templates_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub expiry_queue_url: String,
    pub expiry_dlq_url: String,
    pub receipts_dlq_url: String,
}

/// The job queue's timings a test shortens; the rest is the template's.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueTimings {
    pub visibility_s: Option<u32>,
    pub max_receive: Option<u32>,
    /// The template delays every job a few seconds (so the fast path goes
    /// first); tests of the queue itself start at once.
    pub no_delay: bool,
}

impl QueueTimings {
    /// Redrive after `max_receive` receives, each visible again after
    /// `visibility_s`, with no delay.
    pub fn quick(max_receive: u32, visibility_s: u32) -> Self {
        QueueTimings {
            visibility_s: Some(visibility_s),
            max_receive: Some(max_receive),
            no_delay: true,
        }
    }
}

/// Creates the template's tables and queues on the emulator at `url`.
pub async fn create_resources(url: &str, job_queue: QueueTimings) -> Resources {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sets = Vec::new();
    if let Some(v) = job_queue.visibility_s {
        sets.push(format!("JobQueue.VisibilityTimeout={v}"));
    }
    if let Some(n) = job_queue.max_receive {
        sets.push(format!("JobQueue.RedrivePolicy.maxReceiveCount={n}"));
    }
    if job_queue.no_delay {
        sets.push("JobQueue.DelaySeconds=0".to_owned());
    }
    let mut cmd = Command::new(root.join(".venv/bin/python"));
    cmd.arg(root.join("scripts/emulator.py"))
        .args(["create", "--endpoint", url]);
    for s in &sets {
        cmd.args(["--set", s]);
    }
    // Half a second, once per test: not worth a thread.
    let out = cmd.output().expect("run scripts/emulator.py create");
    assert!(
        out.status.success(),
        "scripts/emulator.py create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let var = |k: &str| vars[k].as_str().unwrap().to_owned();
    Resources {
        ledger_table: var("LEDGER_TABLE"),
        templates_table: var("TEMPLATES_TABLE"),
        queue_url: var("QUEUE_URL"),
        dlq_url: var("DLQ_URL"),
        expiry_queue_url: var("EXPIRY_QUEUE_URL"),
        expiry_dlq_url: var("EXPIRY_DLQ_URL"),
        receipts_dlq_url: var("RECEIPTS_DLQ_URL"),
    }
}
