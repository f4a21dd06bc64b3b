//! The operations commands of the real binary against the local AWS API
//! emulator, reached the way an operator's shell reaches AWS: through the
//! SDK environment (`AWS_ENDPOINT_URL`, region, credentials).

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

#[path = "../../../shared/tests/suite/support/moto.rs"]
pub(crate) mod moto;

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_telehook");

/// The command with the emulator as its AWS.
fn command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    cmd
}

fn telehook(url: &str, args: &[&str]) -> Output {
    let out = command(url, args).output().unwrap();
    assert!(
        out.status.success(),
        "telehook {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_push_and_list() {
    let (_guard, m) = moto::moto().await;
    let r = moto::create_resources(&m.url, moto::QueueTimings::default()).await;
    let pushed = telehook(
        &m.url,
        &[
            "templates",
            "push",
            "templates",
            "--table",
            &r.templates_table,
        ],
    );
    assert!(
        stdout(&pushed).contains("26 templates from 13 files"),
        "{}",
        stdout(&pushed)
    );
    // The table from TEMPLATES_TABLE, as the Lambdas name it.
    let listed = command(&m.url, &["templates", "list"])
        .env("TEMPLATES_TABLE", &r.templates_table)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = stdout(&listed);
    assert_eq!(listed.lines().count(), 26, "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("pt-BR") && l.contains("voice") && l.contains("Camila"))
    );
    // `templates list | head -1`: the reader is gone before the first line
    // (its end of the pipe is closed before the command starts), so every
    // write fails with a broken pipe. The output ends; nothing panics.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = command(
        &m.url,
        &["templates", "list", "--table", &r.templates_table],
    )
    .stdout(writer)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_start_runs_an_execution_and_reports_its_status() {
    let (_guard, m) = moto::moto().await;
    let sdk = moto::sdk_config(&m.url).await;
    let sfn = aws_sdk_sfn::Client::new(&moto::setup_config(&sdk));
    let definition = serde_json::json!({
        "StartAt": "Done",
        "States": {"Done": {"Type": "Pass", "End": true}}
    });
    let arn = sfn
        .create_state_machine()
        .name("telehook-DlqReplay")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/telehook-replay")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let out = stdout(&telehook(
        &m.url,
        &[
            "replay",
            "start",
            "--max",
            "25",
            "--state-machine-arn",
            &arn,
        ],
    ));
    assert!(
        out.lines()
            .any(|l| l.starts_with("execution arn:aws:states:")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("status ")), "{out}");
    let executions = sfn
        .list_executions()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(executions.executions().len(), 1);
    let described = sfn
        .describe_execution()
        .execution_arn(executions.executions()[0].execution_arn())
        .send()
        .await
        .unwrap();
    let input: serde_json::Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"max": 25, "batchSize": 25, "dryRun": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_status_finds_the_queues_from_stack_outputs() {
    let (_guard, m) = moto::moto().await;
    let sdk = moto::sdk_config(&m.url).await;
    // Creating a stack takes the emulator a while; the project's hot-path
    // timeouts are too short for this setup call, and a retry would find
    // the stack it had just created.
    let cfn = aws_sdk_cloudformation::Client::new(&moto::setup_config(&sdk));
    let template = serde_json::json!({
        "Resources": {
            "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs.fifo", "FifoQueue": true}},
            "Dead": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs-dlq.fifo", "FifoQueue": true}}
        },
        "Outputs": {
            "JobQueueUrl": {"Value": {"Ref": "Jobs"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "Dead"}}
        }
    });
    cfn.create_stack()
        .stack_name("telehook-test")
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let out = stdout(&telehook(
        &m.url,
        &["replay", "status", "--stack", "telehook-test"],
    ));
    assert!(
        out.contains("queue: 0 visible, 0 in flight, 0 delayed"),
        "{out}"
    );
    assert!(out.contains("dead-letter queue: 0 visible"), "{out}");

    // Without --stack, the variables the Lambdas use (and the emulator
    // setup exports) name the queues.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = |name: &'static str| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_url()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap()
        }
    };
    let listed = command(&m.url, &["replay", "status"])
        .env("QUEUE_URL", url("jobs.fifo").await)
        .env("DLQ_URL", url("jobs-dlq.fifo").await)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(stdout(&listed).contains("dead-letter queue: 0 visible"));
    // Nothing given: say every way to give it.
    let none = command(&m.url, &["replay", "status"])
        .env_remove("QUEUE_URL")
        .env_remove("DLQ_URL")
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr)
            .contains("give --queue-url, set QUEUE_URL, or give --stack"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    // A stack that does not exist: one clear line, not a raw HTTP response.
    let missing = command(&m.url, &["replay", "status", "--stack", "no-such-stack"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        err.contains("stack no-such-stack not found in us-east-1"),
        "{err}"
    );
    assert!(!err.contains("HTTP") && !err.contains("<?xml"), "{err}");
}

/// `replay receipts` publishes every delivery event a dead-lettered message
/// holds (Lambda's on-failure record and SNS's redrive alike) to the
/// receipts topic again, deletes what it published, and leaves what is
/// not a receipt; run again, it publishes nothing twice.
#[tokio::test(flavor = "multi_thread")]
async fn replay_receipts_publishes_dead_lettered_receipts_once() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let (_guard, m) = moto::moto().await;
    let sdk = moto::sdk_config(&m.url).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let queue = |name: &'static str| {
        let sqs = sqs.clone();
        async move {
            sqs.create_queue()
                .queue_name(name)
                .attributes(QueueAttributeName::VisibilityTimeout, "300")
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap()
        }
    };
    let dlq = queue("receipts-dlq").await;
    // What the receipts function would be handed: a queue subscribed to
    // the topic stands in for it.
    let seen = queue("receipts-seen").await;
    let seen_arn = sqs
        .get_queue_attributes()
        .queue_url(&seen)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let topic = sns
        .create_topic()
        .name("receipts")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&seen_arn)
        .send()
        .await
        .unwrap();
    let event = |id: &str| {
        serde_json::json!({"eventType": "TEXT_DELIVERED", "isFinal": true,
                           "messageId": format!("mid-{id}"), "context": {"eventId": id}})
        .to_string()
    };
    let sns_record =
        |id: &str| serde_json::json!({"EventSource": "aws:sns", "Sns": {"Message": event(id)}});
    let on_failure = serde_json::json!({
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"Records": [sns_record("evt-a"), sns_record("evt-b")]},
        "responsePayload": {"errorMessage": "ledger unavailable"}
    });
    let redriven = serde_json::json!({
        "Type": "Notification", "MessageId": "n1", "TopicArn": topic, "Message": event("evt-c")
    });
    for body in [
        on_failure.to_string(),
        redriven.to_string(),
        "not a receipt".to_owned(),
    ] {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let out = telehook(
        &m.url,
        &[
            "replay",
            "receipts",
            "--receipts-dlq-url",
            &dlq,
            "--topic-arn",
            &topic,
        ],
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"published": 3, "messages": 2, "unreadable": 1})
    );
    let mut published = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&seen)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for msg in got.messages() {
            let n: serde_json::Value = serde_json::from_str(msg.body().unwrap()).unwrap();
            published.push(n["Message"].as_str().unwrap().to_owned());
        }
    }
    published.sort();
    assert_eq!(published, [event("evt-a"), event("evt-b"), event("evt-c")]);
    // Only the message that is not a receipt is left (out of sight for its
    // visibility timeout); a second run publishes nothing.
    let again = telehook(
        &m.url,
        &[
            "replay",
            "receipts",
            "--receipts-dlq-url",
            &dlq,
            "--topic-arn",
            &topic,
        ],
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&again).trim()).unwrap();
    assert_eq!(report["published"], 0, "{report}");
}
