//! Operations against a deployed stack: DLQ replay through the `DlqReplay`
//! state machine, queue depths, and the templates table.
//!
//! Resource names come from the stack's outputs (`--stack`) or are given
//! explicitly. The AWS SDK reads the normal environment, so `AWS_PROFILE`,
//! `AWS_REGION` and `AWS_ENDPOINT_URL` (the local emulator) all apply.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use telehook::aws::SdkConfig;
use telehook::queue::JobQueue;
use telehook::queue::SqsQueue;
use telehook::templates::DynamoTemplateStore;
use telehook::templates::{TemplateFile, TemplateStore};

use crate::local::Error;

#[derive(clap::Subcommand, Debug)]
pub enum ReplayCommand {
    /// Start a DlqReplay execution (and with --follow, wait for it to end).
    Start {
        /// Most messages to replay in this execution.
        #[arg(long, default_value_t = 100)]
        max: u32,
        /// Count what would happen, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait for the execution to end, showing progress.
        #[arg(long)]
        follow: bool,
        /// With --follow, stop waiting after this many seconds (the
        /// execution goes on; `replay status` shows the queues).
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Find the state machine from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The DlqReplay state machine's ARN [or --stack, or
        /// REPLAY_STATE_MACHINE_ARN].
        #[arg(long)]
        state_machine_arn: Option<String>,
    },
    /// Show the depth of the main queue and of the dead-letter queue.
    Status {
        /// Find the queues from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The job queue's URL [or --stack, or QUEUE_URL].
        #[arg(long)]
        queue_url: Option<String>,
        /// The dead-letter queue's URL [or --stack, or DLQ_URL].
        #[arg(long)]
        dlq_url: Option<String>,
    },
    /// Move the checks (code expiry, voice fallback) that failed five times
    /// from the timers' dead-letter queue back to the timers queue.
    Checks {
        /// Most checks to move.
        #[arg(long, default_value_t = 1000)]
        max: u32,
        /// Find the queues from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The timers queue's URL [or --stack, or EXPIRY_QUEUE_URL].
        #[arg(long)]
        expiry_queue_url: Option<String>,
        /// The timers' dead-letter queue's URL [or --stack, or
        /// EXPIRY_DLQ_URL].
        #[arg(long)]
        expiry_dlq_url: Option<String>,
    },
    /// Publish the delivery receipts in the receipts' dead-letter queue to
    /// the receipts topic again.
    Receipts {
        /// Most dead-lettered messages to handle.
        #[arg(long, default_value_t = 1000)]
        max: u32,
        /// Find the queue and the topic from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The receipts' dead-letter queue's URL [or --stack, or
        /// RECEIPTS_DLQ_URL].
        #[arg(long)]
        receipts_dlq_url: Option<String>,
        /// The receipts topic's ARN [or --stack, or RECEIPTS_TOPIC_ARN].
        #[arg(long)]
        topic_arn: Option<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum TemplatesCommand {
    /// Load every <locale>.json file of DIR into the templates table.
    Push {
        /// Directory of template files (templates/ in this repository).
        dir: std::path::PathBuf,
        #[command(flatten)]
        table: TableArgs,
    },
    /// Show the templates table.
    List {
        #[command(flatten)]
        table: TableArgs,
    },
}

/// Which templates table: named, or found in a stack's outputs.
#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// Find the table from this stack's outputs.
    #[arg(long)]
    stack: Option<String>,
    /// The templates table's name [or --stack, or TEMPLATES_TABLE].
    #[arg(long)]
    table: Option<String>,
}

/// `telehook replay start|status`.
pub async fn replay(command: ReplayCommand) -> Result<(), Error> {
    let sdk = sdk().await?;
    match command {
        ReplayCommand::Start {
            max,
            dry_run,
            follow,
            timeout,
            stack,
            state_machine_arn,
        } => {
            let arn = resolve(
                &sdk,
                state_machine_arn,
                stack.as_deref(),
                REPLAY_STATE_MACHINE_ARN,
            )
            .await?;
            let start = ReplayStart {
                max,
                dry_run,
                follow,
                timeout: Duration::from_secs(timeout),
                state_machine_arn: arn,
            };
            replay_start(&sdk, start).await
        }
        ReplayCommand::Status {
            stack,
            queue_url,
            dlq_url,
        } => {
            let stack = stack.as_deref();
            let queue = resolve(&sdk, queue_url, stack, QUEUE_URL).await?;
            let dlq = resolve(&sdk, dlq_url, stack, DLQ_URL).await?;
            replay_status(&sdk, &queue, &dlq).await
        }
        ReplayCommand::Checks {
            max,
            stack,
            expiry_queue_url,
            expiry_dlq_url,
        } => {
            replay_checks_cmd(
                &sdk,
                max,
                stack.as_deref(),
                expiry_queue_url,
                expiry_dlq_url,
            )
            .await
        }
        ReplayCommand::Receipts {
            max,
            stack,
            receipts_dlq_url,
            topic_arn,
        } => replay_receipts_cmd(&sdk, max, stack.as_deref(), receipts_dlq_url, topic_arn).await,
    }
}

/// `replay checks`: the timers' dead letters back onto the timers queue.
async fn replay_checks_cmd(
    sdk: &SdkConfig,
    max: u32,
    stack: Option<&str>,
    expiry_queue_url: Option<String>,
    expiry_dlq_url: Option<String>,
) -> Result<(), Error> {
    let queue = resolve(sdk, expiry_queue_url, stack, EXPIRY_QUEUE_URL).await?;
    let dlq = resolve(sdk, expiry_dlq_url, stack, EXPIRY_DLQ_URL).await?;
    let client = telehook::aws::SqsClient::new(sdk);
    let report = telehook::flows::replay::replay_checks(
        &telehook::timers::SqsTimers::new(client.clone(), dlq),
        &telehook::timers::SqsTimers::new(client, queue),
        chrono::Utc::now().timestamp_millis(),
        max,
    )
    .await
    .map_err(|e| e.to_string())?;
    outln!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// `replay receipts`: the receipts' dead letters published to the topic again.
async fn replay_receipts_cmd(
    sdk: &SdkConfig,
    max: u32,
    stack: Option<&str>,
    receipts_dlq_url: Option<String>,
    topic_arn: Option<String>,
) -> Result<(), Error> {
    let dlq = resolve(sdk, receipts_dlq_url, stack, RECEIPTS_DLQ_URL).await?;
    let topic = resolve(sdk, topic_arn, stack, RECEIPTS_TOPIC_ARN).await?;
    let r = replay_receipts(sdk, &dlq, &topic, max).await?;
    outln!(
        "{}",
        serde_json::json!({"published": r.published, "messages": r.messages, "unreadable": r.unreadable})
    );
    Ok(())
}

/// What `replay receipts` did.
#[derive(Debug, Default)]
pub struct ReceiptReplay {
    /// Delivery events published to the topic again.
    pub published: u32,
    /// Dead-lettered messages handled (and deleted).
    pub messages: u32,
    /// Messages that hold no delivery event: left in the queue.
    pub unreadable: u32,
}

/// Publishes every delivery event of the receipts' dead-letter queue to the
/// receipts topic, where the receipts function records it as any other;
/// a message is deleted only once all its events are published again. The
/// receipts flow keeps the first final receipt of an event, so a receipt
/// published twice (a failure between publishing and deleting) changes
/// nothing the second time.
pub async fn replay_receipts(
    sdk: &SdkConfig,
    dlq_url: &str,
    topic_arn: &str,
    max: u32,
) -> Result<ReceiptReplay, Error> {
    let sqs = telehook::aws::SqsClient::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let mut report = ReceiptReplay::default();
    while report.messages + report.unreadable < max {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the receipts' dead-letter queue: {}",
                    telehook::aws::classify(&e).detail
                )
            })?;
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let Some(events) =
                telehook::flows::receipts::dead_lettered_events(m.body().unwrap_or_default())
            else {
                report.unreadable += 1;
                continue;
            };
            for event in &events {
                sns.publish()
                    .topic_arn(topic_arn)
                    .message(event)
                    .send()
                    .await
                    .map_err(|e| {
                        format!("the receipts topic: {}", telehook::aws::classify(&e).detail)
                    })?;
                report.published += 1;
            }
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "the receipts' dead-letter queue: {}",
                        telehook::aws::classify(&e).detail
                    )
                })?;
            report.messages += 1;
        }
    }
    Ok(report)
}

/// `telehook templates push|list`.
pub async fn templates(command: TemplatesCommand) -> Result<(), Error> {
    let sdk = sdk().await?;
    let (dir, which) = match command {
        TemplatesCommand::Push { dir, table } => (Some(dir), table),
        TemplatesCommand::List { table } => (None, table),
    };
    let table = resolve(&sdk, which.table, which.stack.as_deref(), TEMPLATES_TABLE).await?;
    match dir {
        Some(dir) => templates_push(&sdk, &dir, &table).await,
        None => templates_list(&sdk, &table).await,
    }
}

/// An SDK error as one console line: what failed, then the error with its
/// causes.
fn failed<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {}", aws_sdk_sfn::error::DisplayErrorContext(e))
}

/// Stack outputs by key, from CloudFormation.
pub async fn stack_outputs(sdk: &SdkConfig, stack: &str) -> Result<HashMap<String, String>, Error> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| -> Error {
            use aws_sdk_cloudformation::error::ProvideErrorMetadata;
            // CloudFormation answers a stack it does not know with a
            // ValidationError; say that, not the raw response.
            if e.code() == Some("ValidationError") {
                let region = sdk
                    .region()
                    .map_or("the configured region".to_owned(), |r| r.to_string());
                format!(
                    "stack {stack} not found in {region}: {}",
                    e.message().unwrap_or("it does not exist")
                )
                .into()
            } else {
                failed(&format!("cannot describe stack {stack}"))(e).into()
            }
        })?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {stack} not found"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// Where a resource's name comes from, first match wins: its flag, the
/// output of the stack given with `--stack`, then the environment variable
/// the Lambdas use for it (what the emulator setup exports).
pub struct Source<'a> {
    pub flag: &'a str,
    pub output: &'a str,
    pub env: &'a str,
}

impl<'a> Source<'a> {
    pub const fn new(flag: &'a str, output: &'a str, env: &'a str) -> Self {
        Source { flag, output, env }
    }
}

/// The resources the operations commands find.
const REPLAY_STATE_MACHINE_ARN: Source<'static> = Source::new(
    "--state-machine-arn",
    "ReplayStateMachineArn",
    "REPLAY_STATE_MACHINE_ARN",
);
const QUEUE_URL: Source<'static> = Source::new("--queue-url", "JobQueueUrl", "QUEUE_URL");
const DLQ_URL: Source<'static> = Source::new("--dlq-url", "DeadLetterQueueUrl", "DLQ_URL");
const EXPIRY_QUEUE_URL: Source<'static> =
    Source::new("--expiry-queue-url", "ExpiryQueueUrl", "EXPIRY_QUEUE_URL");
const EXPIRY_DLQ_URL: Source<'static> = Source::new(
    "--expiry-dlq-url",
    "ExpiryDeadLetterQueueUrl",
    "EXPIRY_DLQ_URL",
);
const RECEIPTS_DLQ_URL: Source<'static> = Source::new(
    "--receipts-dlq-url",
    "ReceiptsDeadLetterQueueUrl",
    "RECEIPTS_DLQ_URL",
);
const RECEIPTS_TOPIC_ARN: Source<'static> =
    Source::new("--topic-arn", "ReceiptsTopicArn", "RECEIPTS_TOPIC_ARN");
const TEMPLATES_TABLE: Source<'static> =
    Source::new("--table", "TemplatesTableName", "TEMPLATES_TABLE");

pub async fn resolve(
    sdk: &SdkConfig,
    explicit: Option<String>,
    stack: Option<&str>,
    source: Source<'_>,
) -> Result<String, Error> {
    if let Some(v) = explicit {
        return Ok(v);
    }
    if let Some(stack) = stack {
        let output = source.output;
        return stack_outputs(sdk, stack)
            .await?
            .remove(output)
            .ok_or_else(|| format!("stack {stack} has no output {output}").into());
    }
    match std::env::var(source.env) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(format!("give {}, set {}, or give --stack", source.flag, source.env).into()),
    }
}

pub struct ReplayStart {
    pub max: u32,
    pub dry_run: bool,
    pub follow: bool,
    pub timeout: Duration,
    pub state_machine_arn: String,
}

/// How an execution ended, with Step Functions' error and cause when it
/// failed, timed out or was aborted: the reason an operator needs.
fn ending(status: &ExecutionStatus, error: Option<&str>, cause: Option<&str>) -> String {
    let mut out = format!("status {}", status.as_str());
    if let Some(e) = error.filter(|e| !e.is_empty()) {
        out.push_str(&format!("\nerror {e}"));
    }
    if let Some(c) = cause.filter(|c| !c.is_empty()) {
        out.push_str(&format!("\ncause {c}"));
    }
    out
}

/// Starts a `DlqReplay` execution; with `follow`, waits for it to end.
pub async fn replay_start(sdk: &SdkConfig, args: ReplayStart) -> Result<(), Error> {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    let input = serde_json::json!({
        "max": args.max,
        "batchSize": args.max.min(100),
        "dryRun": args.dry_run,
    });
    let started = sfn
        .start_execution()
        .state_machine_arn(&args.state_machine_arn)
        .name(format!(
            "replay-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")
        ))
        .input(input.to_string())
        .send()
        .await
        .map_err(failed("cannot start the replay"))?;
    let arn = started.execution_arn().to_owned();
    outln!("execution {arn}");
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(failed("cannot read the execution"))?;
        let status = d.status().clone();
        bar.set_message(format!("status {}", status.as_str()));
        if status == ExecutionStatus::Running
            && args.follow
            && tokio::time::Instant::now() >= deadline
        {
            bar.finish_and_clear();
            return Err(format!(
                "still running after {}s; the execution goes on (telehook replay status shows the queues)",
                args.timeout.as_secs()
            )
            .into());
        }
        if status != ExecutionStatus::Running || !args.follow {
            bar.finish_and_clear();
            outln!("{}", ending(&status, d.error(), d.cause()));
            if let Some(output) = d.output() {
                outln!("{output}");
            }
            return match status {
                ExecutionStatus::Running
                | ExecutionStatus::Succeeded
                | ExecutionStatus::PendingRedrive => Ok(()),
                other => Err(format!("replay ended {}", other.as_str()).into()),
            };
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Prints the depth of the main queue and the DLQ.
pub async fn replay_status(sdk: &SdkConfig, queue_url: &str, dlq_url: &str) -> Result<(), Error> {
    let sqs = telehook::aws::SqsClient::new(sdk);
    for (name, url) in [("queue", queue_url), ("dead-letter queue", dlq_url)] {
        let d = SqsQueue::new(sqs.clone(), url).depth().await?;
        outln!(
            "{name}: {} visible, {} in flight, {} delayed",
            d.visible,
            d.in_flight,
            d.delayed
        );
    }
    Ok(())
}

/// Loads every `templates/*.json` file into the templates table.
pub async fn templates_push(sdk: &SdkConfig, dir: &Path, table: &str) -> Result<(), Error> {
    let store = DynamoTemplateStore::new(
        telehook::aws::DynamoDbClient::new(sdk),
        table,
        Duration::ZERO,
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no template files in {}", dir.display()).into());
    }
    // Parse everything first, so a bad file stops the push before any write.
    let mut templates = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        let file = TemplateFile::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        templates.extend(file.templates());
    }
    for t in &templates {
        store.put(t).await?;
        outln!("pushed {} {}", t.locale, t.channel);
    }
    outln!(
        "{} templates from {} files into {table}",
        templates.len(),
        files.len()
    );
    Ok(())
}

pub async fn templates_list(sdk: &SdkConfig, table: &str) -> Result<(), Error> {
    let store = DynamoTemplateStore::new(
        telehook::aws::DynamoDbClient::new(sdk),
        table,
        Duration::ZERO,
    );
    for t in store.list().await? {
        let voice = t.voice_id.as_deref().unwrap_or("-");
        let preview: String = t.body.chars().take(60).collect();
        outln!(
            "{:<8} {:<6} {:<5} {:<8} {preview}",
            t.locale,
            t.channel.as_str(),
            t.text_type.as_str(),
            voice
        );
    }
    Ok(())
}

/// Operator commands are not on the 3-second hook path, so they use the
/// SDK's default timeouts rather than the Lambdas' tight ones.
/// The SDK configuration for a command that talks to AWS, once it is
/// known to have a region and credentials: without them every call fails
/// with the SDK's own words (`DispatchFailure`, warnings about IMDS), so the
/// command says instead, in one line, what to set.
pub async fn sdk() -> Result<SdkConfig, Error> {
    use aws_sdk_sfn::config::ProvideCredentials;
    let sdk = telehook::aws::load_sdk_config().await;
    if sdk.region().is_none() {
        return Err(
            "no AWS region: set AWS_REGION (or AWS_PROFILE naming a profile with a region)".into(),
        );
    }
    let found = match sdk.credentials_provider() {
        Some(p) => p
            .provide_credentials()
            .await
            .map(|_| ())
            .map_err(|e| telehook::aws::causes(&e)),
        None => Err("no credentials provider".to_owned()),
    };
    if let Err(why) = found {
        return Err(format!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE ({why})"
        )
        .into());
    }
    Ok(sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_execution_says_why() {
        assert_eq!(
            ending(
                &ExecutionStatus::Failed,
                Some("Lambda.Unknown"),
                Some("The replayer timed out")
            ),
            "status FAILED\nerror Lambda.Unknown\ncause The replayer timed out"
        );
        assert_eq!(
            ending(&ExecutionStatus::Succeeded, None, Some("")),
            "status SUCCEEDED"
        );
    }
}
