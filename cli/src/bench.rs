//! `telehook bench`: a load test of `telehook serve`.
//!
//! It starts the real server as a child process (so its memory is its own),
//! fires N hooks at concurrency C with a minted token, each for a distinct
//! user and number (the toll-fraud guard rightly refuses bursts to one; the
//! org's ceiling, `RATE_LIMIT_TOTAL`, is off for the run), and
//! then reconciles: every eventId answered, delivered exactly once in the
//! outbox, and SENT in the ledger. It prints throughput, latency
//! percentiles, errors, duplicates and lost hooks, and the server's peak RSS.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use telehook::messenger::outbox::{OutboxLine, OutboxMessenger};
use telehook::testkit::invariants::{self, InvariantReport, RunRecord};

use crate::local::{self, Error, OnOff};

/// One request's index, its answer (HTTP status and Okta status) or the
/// transport error, and its latency in milliseconds.
type Outcome = (usize, Result<(u16, String), String>, f64);

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// How many hooks to send.
    #[arg(long, default_value_t = 5000)]
    pub n: usize,
    /// How many requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Artificial provider latency in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub provider_latency_ms: u64,
    /// Whether the server tries to send inside each hook call (off: every
    /// hook is answered PENDING and the dispatcher sends).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub fast_path: OnOff,
    /// Run the server with fault injection (see serve --chaos); the run is
    /// then judged by the invariant checker instead of "every hook
    /// SUCCESSFUL".
    #[arg(long)]
    pub chaos: Option<String>,
}

impl BenchArgs {
    fn fast_path(&self) -> bool {
        self.fast_path == OnOff::On
    }
}

/// A distinct, allow-listed number for hook `i` (NANP 555 numbers across
/// area codes, so up to 80,000 of them).
fn number(i: usize) -> String {
    const AREAS: [u16; 8] = [415, 650, 212, 303, 416, 604, 206, 617];
    format!(
        "+1{}555{:04}",
        AREAS[(i / 10_000) % AREAS.len()],
        i % 10_000
    )
}

fn body(i: usize) -> String {
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    serde_json::json!({
        "eventId": format!("bench-{i:07}"),
        "eventTime": chrono::Utc::now().to_rfc3339(),
        "eventType": "com.okta.telephony.provider",
        "requestType": "com.okta.user.telephony.mfa-verification",
        "data": {
            "userProfile": {"userId": format!("00ubench{i:07}")},
            "messageProfile": {
                "phoneNumber": number(i),
                "otpCode": format!("{:06}", (i * 7919) % 1_000_000),
                "otpExpires": expires,
                "deliveryChannel": if i.is_multiple_of(5) { "voice call" } else { "SMS" },
                "locale": "en-US"
            }
        }
    })
    .to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The peak resident set of a live process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `serve` as a child process, its port, and a thread that keeps reading
/// its output so it never blocks on a full pipe.
struct Server {
    child: std::process::Child,
    port: u16,
    tail: std::thread::JoinHandle<Vec<String>>,
}

fn start_server(args: &BenchArgs, state_dir: &Path) -> Result<Server, Error> {
    let mut child = Command::new(std::env::current_exe()?)
        // Jobs that keep failing reach the DLQ after five visibility
        // timeouts (30 s each locally); the drain waits for that.
        .args(["serve", "--port", "0", "--quiet", "--drain-timeout", "400"])
        // A load run reconciles the in-memory ledger's snapshot.
        .args(["--store", "memory"])
        .arg("--state-dir")
        .arg(state_dir)
        .args([
            "--provider-latency-ms",
            &args.provider_latency_ms.to_string(),
        ])
        .args(["--fast-path", if args.fast_path() { "on" } else { "off" }])
        .args(
            args.chaos
                .iter()
                .flat_map(|c| ["--chaos".to_owned(), c.clone()]),
        )
        .env_remove("TELEHOOK_BACKEND")
        // A load run sends far past the org's hourly ceiling on purpose.
        .env("RATE_LIMIT_TOTAL", "off")
        // Thousands of codes to a few ranges, typed by nobody: the learning
        // guard would say "would block" all run long. Unless asked for.
        .env(
            "LEARNED_GUARD",
            std::env::var("LEARNED_GUARD").unwrap_or_else(|_| "off".to_owned()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        // Its warnings (chaos makes many) go to a file the summary counts,
        // not over the progress bar.
        .stderr(std::fs::File::create(state_dir.join(SERVE_LOG))?)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout from serve")?;
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = loop {
        let line = lines.next().ok_or("serve exited before listening")??;
        if let Some(p) = line.strip_prefix("listening on http://127.0.0.1:") {
            break p.trim().parse()?;
        }
    };
    let tail = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    Ok(Server { child, port, tail })
}

/// Where the server's stderr goes, in the run's state directory.
const SERVE_LOG: &str = "serve.log";

/// A bar on stderr (drawn only on a terminal).
fn progress(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Fires every hook at the given concurrency; returns each outcome.
async fn fire(args: &BenchArgs, url: &str, token: &str) -> Result<Vec<Outcome>, Error> {
    let bar = progress(
        args.n as u64,
        "hooks {bar:40} {pos}/{len} {per_sec} eta {eta}",
    );
    let concurrency = args.concurrency.max(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let bodies: Vec<String> = (0..args.n).map(body).collect();
    Ok(futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, b)| {
            let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
            async move {
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await;
                let r = match r {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let json: serde_json::Value = resp.json().await.unwrap_or_default();
                        let answer = json["commands"][0]["value"][0]["status"]
                            .as_str()
                            .unwrap_or("ERROR_OBJECT")
                            .to_owned();
                        Ok((status, answer))
                    }
                    Err(e) => Err(e.to_string()),
                };
                (i, r, t.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(concurrency)
        .inspect(|_| bar.inc(1))
        .collect()
        .await)
}

/// Counts of the server's log lines by level.
fn log_levels(state_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(state_dir.join(SERVE_LOG)).unwrap_or_default();
    let count = |level: &str| text.lines().filter(|l| l.contains(level)).count();
    serde_json::json!({"warnings": count(" WARN "), "errors": count(" ERROR ")})
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

pub async fn bench(args: BenchArgs) -> Result<(), Error> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let state_dir =
        std::env::temp_dir().join(format!("telehook-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&state_dir)?;
    let key = local::load_or_create_key(&state_dir)?;
    let Server {
        mut child,
        port,
        tail,
    } = start_server(&args, &state_dir)?;
    let token = local::local_token(&key, &local::issuer_for_port(port), 3600)?;
    let url = format!("http://127.0.0.1:{port}/okta/telephony");
    if cfg!(debug_assertions) {
        eprintln!(
            "note: this telehook is a debug build (no optimisations); its figures are not comparable with BENCHMARKS.md (cargo run --release -p telehook-cli -- bench)"
        );
    }
    let started = Instant::now();
    let results = fire(&args, &url, &token).await?;
    let answered = started.elapsed();

    let peak_kib = peak_rss_kib(child.id());
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    if !kill.success() {
        return Err("could not signal serve".into());
    }
    // The server drains its queue before it exits: what was queued is only
    // sent by then, so the run's wall time includes it.
    let draining = progress(0, "{spinner} draining the queue {elapsed}");
    draining.enable_steady_tick(Duration::from_millis(200));
    let exit = child.wait()?;
    draining.finish_and_clear();
    let wall = started.elapsed();
    let serve_lines = tail.join().unwrap_or_default();
    let run = Reconciled::of(&results, &state_dir)?;
    let report = serde_json::json!({
        "hooks": args.n,
        "concurrency": args.concurrency.max(1),
        "fastPath": args.fast_path(),
        "providerLatencyMs": args.provider_latency_ms,
        "optimised": !cfg!(debug_assertions),
        "answerSeconds": seconds(answered),
        "drainSeconds": seconds(wall - answered),
        "wallSeconds": seconds(wall),
        "throughputPerSecond": (args.n as f64 / answered.as_secs_f64()).round(),
        "endToEndPerSecond": (args.n as f64 / wall.as_secs_f64()).round(),
        "latencyMs": run.latency_ms(),
        "answers": run.answers,
        "errors": run.errors,
        "outboxLines": run.outbox_lines,
        "duplicated": run.duplicated,
        "lost": run.lost,
        "ledgerNotSent": run.not_sent,
        "servePeakRssMiB": peak_kib.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0),
        "serveExit": exit.code(),
        "serveLog": log_levels(&state_dir),
        "chaos": args.chaos,
        "invariants": run.invariants,
    });
    outln!("{}", serde_json::to_string_pretty(&report)?);
    let verdict = run.verdict(args.chaos.is_some(), exit.success(), &serve_lines);
    // A failed run keeps its state: the server's log is the first thing to read.
    if verdict.is_err() || std::env::var_os("TELEHOOK_BENCH_KEEP").is_some() {
        eprintln!(
            "state kept in {} (the server's log is {SERVE_LOG})",
            state_dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    verdict
}

/// What a run's answers, outbox, ledger and queues add up to.
struct Reconciled {
    answers: HashMap<String, usize>,
    errors: usize,
    latencies: Vec<f64>,
    outbox_lines: usize,
    duplicated: usize,
    lost: usize,
    not_sent: usize,
    invariants: InvariantReport,
}

impl Reconciled {
    fn of(results: &[Outcome], state_dir: &Path) -> Result<Self, Error> {
        let mut answers: HashMap<String, usize> = HashMap::new();
        let mut errors = 0usize;
        let mut accepted: HashSet<String> = HashSet::new();
        let mut latencies: Vec<f64> = results.iter().map(|(_, _, ms)| *ms).collect();
        latencies.sort_by(f64::total_cmp);
        for (i, r, _) in results {
            match r {
                Ok((200, answer)) => {
                    *answers.entry(answer.clone()).or_default() += 1;
                    if answer == "SUCCESSFUL" || answer == "PENDING" {
                        accepted.insert(format!("bench-{i:07}"));
                    } else {
                        errors += 1;
                    }
                }
                _ => errors += 1,
            }
        }
        let outbox = OutboxMessenger::read(&local::default_outbox(state_dir))?;
        let mut per_event: HashMap<&str, usize> = HashMap::new();
        for line in &outbox {
            *per_event.entry(line.event_id.as_str()).or_default() += 1;
        }
        // Serve writes its ledger at shutdown; without it nothing can be checked.
        let snapshot: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(state_dir.join("ledger-snapshot.json"))?)?;
        let not_sent = snapshot
            .iter()
            .filter(|r| {
                accepted.contains(r["eventId"].as_str().unwrap_or_default())
                    && r["status"] != "SENT"
            })
            .count();
        let record = run_record(results, &snapshot, &outbox, state_dir)?;
        Ok(Reconciled {
            answers,
            errors,
            latencies,
            outbox_lines: outbox.len(),
            duplicated: per_event.values().filter(|&&n| n > 1).count(),
            lost: accepted
                .iter()
                .filter(|e| !per_event.contains_key(e.as_str()))
                .count(),
            not_sent,
            invariants: invariants::check(&record),
        })
    }

    fn latency_ms(&self) -> serde_json::Value {
        let l = &self.latencies;
        serde_json::json!({
            "p50": (percentile(l, 50.0) * 100.0).round() / 100.0,
            "p99": (percentile(l, 99.0) * 100.0).round() / 100.0,
            "max": (l.last().copied().unwrap_or(0.0) * 100.0).round() / 100.0,
        })
    }

    /// Under faults, FAILED answers (Okta falls back) and unconfirmed
    /// repeats are expected; losing an accepted hook or sending after a
    /// confirmed send is not. Without faults, every hook must be delivered
    /// exactly once.
    fn verdict(&self, chaos: bool, serve_ok: bool, serve_lines: &[String]) -> Result<(), Error> {
        if chaos {
            if !self.invariants.holds() || !serve_ok {
                return Err(format!(
                    "invariants broken: lost {:?}, sent after confirmed {:?}",
                    self.invariants.lost, self.invariants.sends_after_confirmed
                )
                .into());
            }
        } else if self.errors > 0
            || self.lost > 0
            || self.duplicated > 0
            || self.not_sent > 0
            || !serve_ok
        {
            return Err(format!(
                "reconciliation failed: {} errors, {} lost, {} duplicated, {} not SENT; serve: {}",
                self.errors,
                self.lost,
                self.duplicated,
                self.not_sent,
                serve_lines.join(" | ")
            )
            .into());
        }
        Ok(())
    }
}

/// The whole run, for the invariant checker: answers, ledger, sends and
/// what is left in the queues.
fn run_record(
    results: &[Outcome],
    snapshot: &[serde_json::Value],
    outbox: &[OutboxLine],
    state_dir: &Path,
) -> Result<RunRecord, Error> {
    let queues: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("queue-snapshot.json"))?)?;
    Ok(RunRecord {
        answers: results
            .iter()
            .map(|(i, r, _)| {
                let status = match r {
                    Ok((200, a)) if a == "SUCCESSFUL" || a == "PENDING" => a.clone(),
                    _ => "FAILED".to_owned(),
                };
                (format!("bench-{i:07}"), status)
            })
            .collect(),
        ledger: snapshot
            .iter()
            .filter_map(crate::report::record_from_snapshot)
            .collect(),
        sent: outbox
            .iter()
            .map(|l| (l.event_id.clone(), l.message_id.clone()))
            .collect(),
        dead_lettered: serde_json::from_value(queues["deadLettered"].clone())?,
        still_queued: queues["stillQueued"].as_u64().unwrap_or(u64::MAX),
    })
}
