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
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;

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

/// Setup calls go through clients without the hot path's timeouts and
/// retries: a create that outlives a 1.5 s attempt on a busy machine would
/// be retried after it succeeded, and fail as "already exists".
fn setup_dynamodb(ddb: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        ddb.config()
            .to_builder()
            .timeout_config(aws_config::timeout::TimeoutConfig::disabled())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// As [`setup_dynamodb`], for SQS.
fn setup_sqs(sqs: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        sqs.config()
            .to_builder()
            .timeout_config(aws_config::timeout::TimeoutConfig::disabled())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// The ledger table as the template declares it: `pk`, and the sparse
/// `byUser` index (`userChannel`, `sentAt`) projecting `otpExpiresAt`.
pub async fn create_ledger_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let attr = |n: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    setup_dynamodb(ddb)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("userChannel", ScalarAttributeType::S))
        .attribute_definitions(attr("sentAt", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(telehook::ledger::dynamo::BY_USER_INDEX)
                .key_schema(key("userChannel", KeyType::Hash))
                .key_schema(key("sentAt", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("otpExpiresAt")
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

pub async fn create_templates_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    setup_dynamodb(ddb)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("locale"))
        .attribute_definitions(attr("channel"))
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("locale")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("channel")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// The standard queue expiry checks wait on; returns its url.
pub async fn create_expiry_queue(sqs: &aws_sdk_sqs::Client) -> String {
    setup_sqs(sqs)
        .create_queue()
        .queue_name("expiry-checks")
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// A FIFO queue with a FIFO dead-letter queue; returns (main url, dlq url).
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    max_receive: u32,
    visibility_s: u32,
) -> (String, String) {
    let sqs = &setup_sqs(sqs);
    let dlq = sqs
        .create_queue()
        .queue_name("jobs-dlq.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
            .to_string();
    let main = sqs
        .create_queue()
        .queue_name("jobs.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_s.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (main, dlq)
}
