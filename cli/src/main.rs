//! `telehook`: the command-line front door. Local mode (`serve`, `token`,
//! `invoke`) runs the same handlers as the Lambdas on one machine; `check`
//! validates a hook body.

mod bench;
mod invoke;
mod local;
mod ops;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use telehook::testkit::dev_issuer::TokenClaims;

#[derive(Parser, Debug)]
#[command(
    name = "telehook",
    version,
    about = "Okta OTPs by SMS and voice through your own AWS account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole pipeline locally: ingress, dev OAuth issuer, queue, dispatcher and an outbox file for messages.
    Serve {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Where the dev issuer's key and the outbox live.
        #[arg(long, default_value = ".telehook")]
        state_dir: PathBuf,
        /// The outbox file [default: <state-dir>/outbox.jsonl].
        #[arg(long)]
        outbox: Option<PathBuf>,
        /// Try to send inside the hook call before answering.
        #[arg(long, value_enum, default_value_t = OnOff::On)]
        fast_path: OnOff,
        /// Use the AWS adapters (normal AWS SDK environment, AWS_ENDPOINT_URL included).
        #[arg(long, env = "TELEHOOK_BACKEND", value_parser = parse_backend, default_value = "local")]
        aws: BackendFlag,
        /// Longest wait for the queue to drain on shutdown, in seconds.
        #[arg(long, default_value_t = 60)]
        drain_timeout: u64,
        /// Artificial provider latency in milliseconds, for load tests.
        #[arg(long, default_value_t = 0)]
        provider_latency_ms: u64,
        /// Do not print a notice per message.
        #[arg(long)]
        quiet: bool,
        /// Inject faults, e.g. provider.throttle=0.3,provider.timeout=0.05,provider.latency-ms=50,ledger.conflict=0.01
        #[arg(long, value_parser = parse_chaos)]
        chaos: Option<Box<telehook::testkit::chaos::ChaosSpec>>,
    },
    /// Load-test `telehook serve`: N hooks at concurrency C, then reconcile answers, outbox and ledger.
    Bench {
        /// How many hooks to send.
        #[arg(long, default_value_t = 5000)]
        n: usize,
        /// How many requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Artificial provider latency in milliseconds.
        #[arg(long, default_value_t = 0)]
        provider_latency_ms: u64,
        #[arg(long, value_enum, default_value_t = OnOff::On)]
        fast_path: OnOff,
        /// Run the server with fault injection (see serve --chaos); the run is then judged by the invariant checker.
        #[arg(long)]
        chaos: Option<String>,
    },
    /// Print a bearer token from the local dev issuer (bad ones too, on purpose).
    Token {
        #[arg(long, default_value = ".telehook")]
        state_dir: PathBuf,
        /// The port `telehook serve` listens on (it is part of the issuer).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Issuer claim [default: http://127.0.0.1:<port>/oauth2/default].
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long, default_value = local::AUDIENCE)]
        audience: String,
        #[arg(long, default_value = local::CLIENT_ID)]
        client_id: String,
        /// Scopes for scp; repeat for more.
        #[arg(long = "scope", default_values_t = [local::SCOPE.to_owned()])]
        scopes: Vec<String>,
        /// Lifetime in seconds; negative mints an expired token.
        #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
        expires_in: i64,
    },
    /// Run one Lambda event through its handler with local adapters and print the JSON response.
    Invoke {
        #[arg(value_enum)]
        function: invoke::Function,
        /// The event file (see events/).
        event: PathBuf,
        #[arg(long, default_value = ".telehook")]
        state_dir: PathBuf,
        /// The outbox file [default: <state-dir>/outbox.jsonl].
        #[arg(long)]
        outbox: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = OnOff::On)]
        fast_path: OnOff,
        /// Use the AWS adapters (normal AWS SDK environment).
        #[arg(long, env = "TELEHOOK_BACKEND", value_parser = parse_backend, default_value = "local")]
        aws: BackendFlag,
    },
    /// Replay the dead-letter queue through the DlqReplay state machine, or show queue depths.
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
    /// Load or show the templates table.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Validate an Okta hook (a hook body, or an API Gateway event from events/) and print the normalised request, with the code and number masked.
    Check {
        /// Path to an Okta telephony hook body or an API Gateway proxy event.
        file: PathBuf,
        /// Region for numbers that are not in international form.
        #[arg(long, default_value = "US")]
        default_region: String,
        /// Locale used when the hook carries none.
        #[arg(long, default_value = "en")]
        default_locale: String,
    },
}

#[derive(Subcommand, Debug)]
enum ReplayCommand {
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
        /// Find the state machine from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The DlqReplay state machine's ARN.
        #[arg(long)]
        state_machine_arn: Option<String>,
    },
    /// Show the depth of the main queue and of the dead-letter queue.
    Status {
        /// Find the queues from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The job queue's URL.
        #[arg(long)]
        queue_url: Option<String>,
        /// The dead-letter queue's URL.
        #[arg(long)]
        dlq_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TemplatesCommand {
    /// Load every <locale>.json file of DIR into the templates table.
    Push {
        /// Directory of template files (templates/ in this repository).
        dir: PathBuf,
        /// Find the table from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The templates table's name.
        #[arg(long)]
        table: Option<String>,
    },
    /// Show the templates table.
    List {
        /// Find the table from this stack's outputs.
        #[arg(long)]
        stack: Option<String>,
        /// The templates table's name.
        #[arg(long)]
        table: Option<String>,
    },
}

fn parse_chaos(s: &str) -> Result<Box<telehook::testkit::chaos::ChaosSpec>, String> {
    telehook::testkit::chaos::ChaosSpec::parse(s)
        .map(Box::new)
        .map_err(|e| e.to_string())
}

/// `--aws` as a flag, or `TELEHOOK_BACKEND=aws|local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BackendFlag(bool);

fn parse_backend(s: &str) -> Result<BackendFlag, String> {
    match s.to_ascii_lowercase().as_str() {
        "aws" | "true" | "1" => Ok(BackendFlag(true)),
        "local" | "false" | "0" | "" => Ok(BackendFlag(false)),
        other => Err(format!("backend must be aws or local, not {other:?}")),
    }
}

fn outbox_path(state_dir: &Path, outbox: Option<PathBuf>) -> PathBuf {
    outbox.unwrap_or_else(|| local::default_outbox(state_dir))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telehook::telemetry::init_text();
    match cli.command {
        Command::Check {
            file,
            default_region,
            default_locale,
        } => check(&file, &default_region, &default_locale),
        Command::Token {
            state_dir,
            port,
            issuer,
            audience,
            client_id,
            scopes,
            expires_in,
        } => {
            let result = local::load_or_create_key(&state_dir).and_then(|key| {
                let issuer = issuer.unwrap_or_else(|| local::issuer_for_port(port));
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                let claims = TokenClaims::new(&issuer, &audience, &client_id, &scopes, expires_in);
                Ok(key.sign(&claims)?)
            });
            report(result.map(|t| println!("{t}")))
        }
        Command::Serve {
            port,
            state_dir,
            outbox,
            fast_path,
            aws,
            drain_timeout,
            provider_latency_ms,
            quiet,
            chaos,
        } => {
            let args = serve::ServeArgs {
                chaos: chaos.map(|c| *c),
                provider_latency: Duration::from_millis(provider_latency_ms),
                notices: !quiet,
                port,
                outbox: outbox_path(&state_dir, outbox),
                state_dir,
                fast_path: fast_path == OnOff::On,
                aws: aws.0,
                drain_timeout: Duration::from_secs(drain_timeout),
            };
            report(runtime().and_then(|rt| rt.block_on(serve::serve(args))))
        }
        Command::Bench {
            n,
            concurrency,
            provider_latency_ms,
            fast_path,
            chaos,
        } => report(runtime().and_then(|rt| {
            rt.block_on(bench::bench(bench::BenchArgs {
                chaos,
                n,
                concurrency: concurrency.max(1),
                provider_latency: Duration::from_millis(provider_latency_ms),
                fast_path: fast_path == OnOff::On,
            }))
        })),
        Command::Replay { command } => {
            report(runtime().and_then(|rt| rt.block_on(replay(command))))
        }
        Command::Templates { command } => {
            report(runtime().and_then(|rt| rt.block_on(templates(command))))
        }
        Command::Invoke {
            function,
            event,
            state_dir,
            outbox,
            fast_path,
            aws,
        } => {
            let args = invoke::InvokeArgs {
                function,
                event,
                outbox: outbox_path(&state_dir, outbox),
                state_dir,
                fast_path: fast_path == OnOff::On,
                aws: aws.0,
            };
            report(
                runtime()
                    .and_then(|rt| rt.block_on(invoke::invoke(args)))
                    .map(|json| {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&json).unwrap_or_default()
                        );
                    }),
            )
        }
    }
}

async fn replay(command: ReplayCommand) -> Result<(), local::Error> {
    let sdk = ops::sdk().await;
    match command {
        ReplayCommand::Start {
            max,
            dry_run,
            follow,
            stack,
            state_machine_arn,
        } => {
            let arn = ops::resolve(
                &sdk,
                state_machine_arn,
                stack.as_deref(),
                "ReplayStateMachineArn",
                "--state-machine-arn",
            )
            .await?;
            ops::replay_start(
                &sdk,
                ops::ReplayStart {
                    max,
                    dry_run,
                    follow,
                    state_machine_arn: arn,
                },
            )
            .await
        }
        ReplayCommand::Status {
            stack,
            queue_url,
            dlq_url,
        } => {
            let queue = ops::resolve(
                &sdk,
                queue_url,
                stack.as_deref(),
                "JobQueueUrl",
                "--queue-url",
            )
            .await?;
            let dlq = ops::resolve(
                &sdk,
                dlq_url,
                stack.as_deref(),
                "DeadLetterQueueUrl",
                "--dlq-url",
            )
            .await?;
            ops::replay_status(&sdk, &queue, &dlq).await
        }
    }
}

async fn templates(command: TemplatesCommand) -> Result<(), local::Error> {
    let sdk = ops::sdk().await;
    match command {
        TemplatesCommand::Push { dir, stack, table } => {
            let table = ops::resolve(
                &sdk,
                table,
                stack.as_deref(),
                "TemplatesTableName",
                "--table",
            )
            .await?;
            ops::templates_push(&sdk, &dir, &table).await
        }
        TemplatesCommand::List { stack, table } => {
            let table = ops::resolve(
                &sdk,
                table,
                stack.as_deref(),
                "TemplatesTableName",
                "--table",
            )
            .await?;
            ops::templates_list(&sdk, &table).await
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, local::Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn report(result: Result<(), local::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &Path, region: &str, locale: &str) -> ExitCode {
    use telehook::okta::{HookDefaults, parse_hook};
    let (Ok(region), Ok(locale)) = (
        region.parse(),
        telehook::domain::locale::Locale::parse(locale),
    ) else {
        eprintln!("error: bad --default-region or --default-locale");
        return ExitCode::from(2);
    };
    let body = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let body = hook_body(body);
    match parse_hook(&body, &HookDefaults { locale, region }) {
        Ok(r) => {
            let out = serde_json::json!({
                "eventId": r.event_id.as_str(),
                "requestType": r.request_type.as_str(),
                "channel": r.channel.as_str(),
                "locale": r.locale.as_str(),
                "to": r.phone.to_string(),
                "country": r.phone.region().map(|c| c.as_str().to_owned()),
                "verifiedNumber": r.phone.is_verified(),
                "otpDigits": r.otp.len(),
                "otpExpires": r.otp_expires.to_rfc3339(),
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&e.to_response()).unwrap_or_default()
            );
            ExitCode::from(1)
        }
    }
}

/// An API Gateway proxy event carries the hook in `body` (maybe base64);
/// anything else is taken to be the hook body itself.
fn hook_body(file: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
    let Ok(serde_json::Value::Object(event)) = serde_json::from_slice::<serde_json::Value>(&file)
    else {
        return file;
    };
    let (Some(_), Some(serde_json::Value::String(body))) =
        (event.get("httpMethod"), event.get("body"))
    else {
        return file;
    };
    if event
        .get("isBase64Encoded")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .unwrap_or_default()
    } else {
        body.clone().into_bytes()
    }
}
