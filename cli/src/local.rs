//! Local mode's wiring: the state directory, the dev OAuth issuer's key, the
//! ingress configuration that trusts it, and the pipeline on in-memory
//! adapters (or on AWS with `--aws`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use telehook::auth::settings::IngressConfig;
use telehook::clock::SystemClock;
use telehook::config::{ConfigError, Problems};
use telehook::crypto::random_hex;
use telehook::domain::locale::Locale;
use telehook::domain::{Route, RoutePlan};
use telehook::flows::{Pipeline, PipelineSettings};
use telehook::ledger::{InMemoryLedger, LedgerRecord, SqliteLedger};
use telehook::messenger::outbox::{Notices, OutboxMessenger};
use telehook::messenger::receipts::Undeliverable;
use telehook::messenger::routes::Routes;
use telehook::queue::{FifoSettings, InMemoryFifo, JobQueue, QueueFile, SqliteFifo};
use telehook::telemetry::metrics::{Metrics, StderrSink};
use telehook::templates::Templates;
use telehook::testkit::DelayedMessenger;
use telehook::testkit::dev_issuer::{DevKey, TokenClaims};
use telehook::timers::{InMemoryTimers, SqliteTimers, Timers};

pub use telehook::testkit::dev_issuer::{AUDIENCE, CLIENT_ID, SCOPE};
const KEY_FILE: &str = "dev-issuer-key.pem";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where a command's data is: local mode's state directory, or AWS. Every
/// command that could read either takes these same two flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// Local mode's state: the dev issuer's key, the ledger
    /// (ledger.sqlite) and the outbox.
    #[arg(long, env = "TELEHOOK_STATE_DIR", default_value = ".telehook")]
    pub state_dir: PathBuf,
    /// Use AWS instead of local mode (the normal AWS SDK environment,
    /// AWS_ENDPOINT_URL included). A bare --aws, or --aws=local to say
    /// local mode; TELEHOOK_BACKEND=aws|local does the same.
    #[arg(
        long,
        env = "TELEHOOK_BACKEND",
        value_parser = parse_backend,
        default_value = "local",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "aws"
    )]
    pub aws: BackendFlag,
}

impl BackendArgs {
    /// Local mode's ledger file.
    pub fn ledger_path(&self) -> PathBuf {
        ledger_path(&self.state_dir)
    }

    /// Where the command reads, in words, for a line on stderr.
    pub fn source(&self) -> String {
        if self.aws.0 {
            "AWS".to_owned()
        } else {
            format!("local mode's ledger {}", self.ledger_path().display())
        }
    }
}

/// A listening socket on 127.0.0.1, or an error that names the port and
/// the flag that changes it.
pub async fn listen(port: u16, flag: &str) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| port_error(port, flag, &e))
}

/// What to say when a port cannot be listened on.
pub fn port_error(port: u16, flag: &str, e: &std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        format!("port {port} is already in use (another telehook?); choose another with {flag}, or 0 for any free port").into()
    } else {
        format!("cannot listen on 127.0.0.1:{port}: {e} (choose another port with {flag})").into()
    }
}

/// Local mode's ledger file in a state directory.
pub fn ledger_path(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.sqlite")
}

/// Opens (or creates) local mode's ledger file.
pub fn open_ledger(state_dir: &Path) -> Result<SqliteLedger, Error> {
    let now_s = chrono::Utc::now().timestamp();
    Ok(SqliteLedger::open(&ledger_path(state_dir), now_s)?)
}

/// Where local mode keeps its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// <state-dir>/ledger.sqlite: kept across restarts, and shared with
    /// `telehook guard` and `telehook report` while serve runs.
    Sqlite,
    /// In this process only, gone when it stops (load runs).
    Memory,
}

/// The flags `serve` and `invoke` share: where local state lives, the fast
/// path, and which adapters to use.
#[derive(clap::Args, Debug)]
pub struct LocalArgs {
    #[command(flatten)]
    pub at: BackendArgs,
    /// The outbox file [default: <state-dir>/outbox.jsonl].
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// Try to send inside the hook call before answering. Like every
    /// setting: the flag, else the environment (FAST_PATH, as in Lambda),
    /// else the default.
    #[arg(long, value_enum, env = "FAST_PATH", default_value_t = OnOff::On)]
    pub fast_path: OnOff,
    /// Where local mode keeps its ledger.
    #[arg(long, value_enum, env = "TELEHOOK_STORE", default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
}

impl LocalArgs {
    pub fn outbox(&self) -> PathBuf {
        self.outbox
            .clone()
            .unwrap_or_else(|| default_outbox(&self.at.state_dir))
    }

    /// The store (ledger, queues, timers) the local backend uses.
    pub fn store(&self) -> Result<LocalStore, Error> {
        Ok(match self.store {
            StoreKind::Sqlite => LocalStore::Sqlite {
                ledger: Arc::new(open_ledger(&self.at.state_dir)?),
                queues: QueueFile::open(&self.at.state_dir.join("queue.sqlite"))?,
            },
            StoreKind::Memory => LocalStore::Memory(Arc::new(InMemoryLedger::new())),
        })
    }

    pub fn fast_path(&self) -> bool {
        self.fast_path == OnOff::On
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    // The spellings `FAST_PATH` takes in Lambda, so one value works in both.
    #[value(alias = "true", alias = "1")]
    On,
    #[value(alias = "false", alias = "0")]
    Off,
}

/// `--aws`, or `TELEHOOK_BACKEND=aws|local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendFlag(pub bool);

fn parse_backend(s: &str) -> Result<BackendFlag, String> {
    match s.to_ascii_lowercase().as_str() {
        "aws" | "true" | "1" => Ok(BackendFlag(true)),
        "local" | "false" | "0" | "" => Ok(BackendFlag(false)),
        other => Err(format!("backend must be aws or local, not {other:?}")),
    }
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// Local mode's state, where the dev issuer's key is kept.
    #[arg(long, env = "TELEHOOK_STATE_DIR", default_value = ".telehook")]
    state_dir: PathBuf,
    /// The port `telehook serve` listens on (it is part of the issuer).
    #[arg(long, env = "TELEHOOK_PORT", default_value_t = 8080)]
    port: u16,
    /// Issuer claim [default: http://127.0.0.1:<port>/oauth2/default].
    #[arg(long)]
    issuer: Option<String>,
    /// Audience claim (aud): what local mode's ingress expects.
    #[arg(long, default_value = AUDIENCE)]
    audience: String,
    /// Client id claim (cid): the client local mode's ingress trusts.
    #[arg(long, default_value = CLIENT_ID)]
    client_id: String,
    /// Scopes for scp; repeat for more.
    #[arg(long = "scope", default_values_t = [SCOPE.to_owned()])]
    scopes: Vec<String>,
    /// Lifetime in seconds; negative mints an expired token.
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    expires_in: i64,
    /// Print the dev issuer's public key set (JWKS) instead of a token, for
    /// serving it elsewhere.
    #[arg(long, conflicts_with = "event")]
    jwks: bool,
    /// Print this event file (events/ingress-*.json) with the token in place
    /// of its `{{token}}`, for `sam local invoke -e -`.
    #[arg(long)]
    event: Option<PathBuf>,
}

/// Where event files carry a bearer token.
pub const TOKEN_PLACEHOLDER: &str = "{{token}}";

/// `telehook token`: prints a token from the dev issuer.
pub fn token(args: &TokenArgs) -> Result<(), Error> {
    let key = load_or_create_key(&args.state_dir)?;
    if args.jwks {
        outln!("{}", key.jwks());
        return Ok(());
    }
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| issuer_for_port(args.port));
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
    let claims = TokenClaims::new(
        &issuer,
        &args.audience,
        &args.client_id,
        &scopes,
        args.expires_in,
    );
    let token = key.sign(&claims)?;
    match &args.event {
        None => outln!("{token}"),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            if !text.contains(TOKEN_PLACEHOLDER) {
                return Err(
                    format!("{} has no {TOKEN_PLACEHOLDER} to fill", path.display()).into(),
                );
            }
            outln!("{}", text.replace(TOKEN_PLACEHOLDER, &token).trim_end());
        }
    }
    Ok(())
}

/// A token for the dev issuer at `issuer`, with the local audience, client
/// id and scope.
pub fn local_token(key: &DevKey, issuer: &str, lifetime_secs: i64) -> Result<String, Error> {
    Ok(key.sign(&TokenClaims::new(
        issuer,
        AUDIENCE,
        CLIENT_ID,
        &[SCOPE],
        lifetime_secs,
    ))?)
}

pub fn issuer_for_port(port: u16) -> String {
    format!("http://127.0.0.1:{port}/oauth2/default")
}

/// The dev issuer's RSA key: generated on first use, then kept in the state
/// directory (readable by the owner only) so tokens survive restarts.
///
/// `serve` and `token` may start together on a fresh checkout, so creation
/// is atomic: the key is written to a temporary file and hard-linked into
/// place, which fails if another process got there first; then its key is
/// read instead.
pub fn load_or_create_key(state_dir: &Path) -> Result<DevKey, Error> {
    let path = state_dir.join(KEY_FILE);
    let read = |path: &Path| -> Result<DevKey, Error> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(DevKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    if path.exists() {
        return read(&path);
    }
    std::fs::create_dir_all(state_dir)?;
    let key = DevKey::generate()?;
    let tmp = state_dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    write_private(&tmp, key.to_pem().as_bytes())?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// The ingress configuration for local mode: OAuth against the dev issuer,
/// exactly as in AWS. Locale and region defaults come from the environment
/// like in Lambda.
pub fn ingress_config(issuer: &str) -> Result<IngressConfig, ConfigError> {
    let fixed = [
        ("AUTH_MODE", "oauth".to_owned()),
        ("OKTA_ISSUER", issuer.to_owned()),
        ("OKTA_AUDIENCE", AUDIENCE.to_owned()),
        ("OKTA_CLIENT_IDS", CLIENT_ID.to_owned()),
        ("OKTA_REQUIRED_SCOPE", SCOPE.to_owned()),
    ];
    IngressConfig::from_lookup(|k| {
        fixed
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| local_env(k))
    })
}

/// The event hook's secret in local mode, unless `EVENT_HOOK_SECRET` (or
/// its ARN) is set: what `events/ingress-event-hook-*.json` carry.
pub const LOCAL_EVENT_HOOK_SECRET: &str = "local-event-hook-secret";

/// The environment, with local mode's defaults: conversions on (local mode
/// plays the event hook too), the learning guard in monitor mode (a load
/// run sends thousands of codes to one range faster than anyone could type
/// them; `LEARNED_GUARD=block` shows real blocks), and the local event hook
/// secret.
pub fn local_env(k: &str) -> Option<String> {
    let set = |v: &str| std::env::var(v).ok().filter(|s| !s.trim().is_empty());
    set(k).or_else(|| match k {
        "CONVERSIONS" => Some("on".to_owned()),
        "LEARNED_GUARD" => Some("monitor".to_owned()),
        "EVENT_HOOK_SECRET" if set("EVENT_HOOK_SECRET_ARN").is_none() => {
            Some(LOCAL_EVENT_HOOK_SECRET.to_owned())
        }
        _ => None,
    })
}

/// The pipeline and the queue the event-source poller reads.
pub struct Backend {
    pub pipeline: Pipeline,
    pub queue: Arc<dyn JobQueue>,
    /// Local mode's store (for the summary at stop, and the snapshot a
    /// load run reconciles).
    pub store: Option<LocalStore>,
    pub dlq: Option<Arc<dyn JobQueue>>,
    /// Local mode's delivery events, for the receipts flow (serve).
    pub receipts: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
}

/// Local mode's store: the ledger and queue files, or memory.
#[derive(Debug, Clone)]
pub enum LocalStore {
    /// The ledger file, and the queue file beside it (jobs, dead letters,
    /// timers).
    Sqlite {
        ledger: Arc<SqliteLedger>,
        queues: QueueFile,
    },
    Memory(Arc<InMemoryLedger>),
}

impl LocalStore {
    fn parts(&self) -> Arc<dyn telehook::ledger::Ledger> {
        match self {
            LocalStore::Sqlite { ledger, .. } => ledger.clone(),
            LocalStore::Memory(l) => l.clone(),
        }
    }

    pub fn records(&self) -> Result<Vec<LedgerRecord>, Error> {
        Ok(match self {
            LocalStore::Sqlite { ledger, .. } => ledger.records()?,
            LocalStore::Memory(l) => l.records()?,
        })
    }
}

pub fn default_outbox(state_dir: &Path) -> PathBuf {
    state_dir.join("outbox.jsonl")
}

/// What a local backend is made of besides the environment.
pub struct LocalRun<'a> {
    pub outbox: PathBuf,
    pub fast_path: bool,
    pub store: LocalStore,
    /// An artificial provider latency, for load runs.
    pub provider_latency: Duration,
    pub notices: Notices,
    pub chaos: Option<&'a telehook::testkit::chaos::ChaosSpec>,
    /// Local delivery receipts (serve), with what is undeliverable.
    pub receipts: Option<Undeliverable>,
}

impl LocalRun<'_> {
    /// `args`' outbox, fast path and ledger; no latency, faults or
    /// receipts, notices on stderr.
    pub fn of(args: &LocalArgs) -> Result<Self, Error> {
        Ok(LocalRun {
            outbox: args.outbox(),
            fast_path: args.fast_path(),
            store: args.store()?,
            provider_latency: Duration::ZERO,
            notices: Notices::Stderr,
            chaos: None,
            receipts: None,
        })
    }
}

/// The run's ledger, an in-memory FIFO queue (with delay, visibility and
/// DLQ), built-in templates, and the outbox as the messenger. `problems`
/// holds what the caller found already; the start fails with those and
/// this backend's own, all named at once.
pub fn local_backend(run: LocalRun<'_>, mut problems: Problems) -> Result<Backend, Error> {
    let env = local_env;
    // The same guard and code life as in Lambda, from the same variables.
    let guard = problems.take(telehook::flows::guard::guard_from_lookup(env));
    let otp_life = problems.take(telehook::config::otp_life_from_lookup(env));
    let voice_fallback = problems.take(telehook::flows::settings::voice_fallback_from_lookup(env));
    // `ROUTES` as in Lambda; local mode plays Notify with the outbox too.
    let plan = problems.take(match env("ROUTES") {
        None => Ok(RoutePlan::default()),
        Some(v) => RoutePlan::parse(&v).map_err(|reason| ConfigError::Invalid {
            var: "ROUTES",
            reason,
        }),
    });
    let default_locale = problems.take(match std::env::var("DEFAULT_LOCALE") {
        Ok(l) if !l.trim().is_empty() => Locale::parse(&l).map_err(|_| ConfigError::Invalid {
            var: "DEFAULT_LOCALE",
            reason: "not a language tag such as en or en-US".into(),
        }),
        _ => Locale::parse("en").map_err(|_| ConfigError::Invalid {
            var: "DEFAULT_LOCALE",
            reason: "built-in default".into(),
        }),
    });
    let (Some(guard), Some(otp_life), Some(default_locale), Some(voice_fallback), Some(plan)) =
        (guard, otp_life, default_locale, voice_fallback, plan)
    else {
        return Err(problems.into_error().into());
    };
    problems.finish()?;
    // The phone metadata the Lambdas build: the allow-list's countries and
    // the region of numbers without `+` (a bad value is the ingress
    // settings' to report).
    let home = env("DEFAULT_REGION")
        .unwrap_or_else(|| "US".to_owned())
        .parse()
        .ok();
    telehook::domain::phone::prepare(&guard.countries.reach(home));
    let clock = Arc::new(SystemClock);
    let budget = Duration::from_millis(2000);
    let (queue, dlq, timers) = local_queues(&run.store, clock.clone(), budget)?;
    let org = std::env::var("ORG_NAME").unwrap_or_else(|_| "Okta".to_owned());
    let (routes, events) = local_routes(
        plan,
        &run.outbox,
        run.notices,
        run.provider_latency,
        run.receipts,
    )?;
    let mut builder = Pipeline::builder(run.store.parts(), queue.clone(), routes.first().clone())
        .routes(routes)
        .timers(timers)
        .templates(Templates::new(None, default_locale, org))
        .clock(clock)
        .settings(PipelineSettings {
            fast_path: run.fast_path,
            fast_path_budget: budget,
            // One process, one key: group ids only need to be stable here.
            hash_key: random_hex(24).into_bytes().into(),
            guard,
            otp_life,
            voice_fallback,
            ..Default::default()
        });
    if let Some(spec) = run.chaos {
        // Faults go between the flows and the adapters; the event source
        // still reads the real queue.
        builder = builder.chaos(spec);
    }
    let pipeline = builder.build();
    Ok(Backend {
        pipeline,
        queue,
        store: Some(run.store),
        dlq: Some(dlq),
        receipts: events,
    })
}

/// The outbox messengers of `plan`'s routes (each names itself on its
/// lines), and the channel their delivery events come on when local mode
/// plays receipts.
fn local_routes(
    plan: RoutePlan,
    outbox: &Path,
    notices: Notices,
    provider_latency: Duration,
    receipts: Option<Undeliverable>,
) -> Result<(Routes, Option<tokio::sync::mpsc::UnboundedReceiver<String>>), Error> {
    let (tx, events) = match receipts {
        Some(undeliverable) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some((tx, undeliverable)), Some(rx))
        }
        None => (None, None),
    };
    // Each route writes the same outbox, naming itself on each line.
    let messenger = |route: Route| -> Result<Arc<dyn telehook::messenger::Messenger>, Error> {
        let mut outbox = OutboxMessenger::open(outbox, notices)?.for_route(route);
        if let Some((tx, undeliverable)) = &tx {
            outbox = outbox.with_receipts(tx.clone(), undeliverable.clone());
        }
        Ok(if provider_latency.is_zero() {
            Arc::new(outbox)
        } else {
            Arc::new(DelayedMessenger {
                inner: outbox,
                delay: provider_latency,
            })
        })
    };
    let mut routes = Routes::one(plan.first, messenger(plan.first)?);
    if let Some(second) = plan.second {
        routes = routes.then(second, messenger(second)?);
    }
    Ok((routes, events))
}

/// The job queue, its dead-letter queue, and the timers.
type LocalQueues = (Arc<dyn JobQueue>, Arc<dyn JobQueue>, Arc<dyn Timers>);

/// The job queue and its dead-letter queue, timed as in the SAM template
/// (the delivery delay is longer than the fast-path budget), and the
/// timers: in the state directory's queue file beside the ledger, or in
/// memory with the in-memory ledger.
fn local_queues(
    ledger: &LocalStore,
    clock: Arc<SystemClock>,
    budget: Duration,
) -> Result<LocalQueues, Error> {
    const JOBS: &str = "telehook-jobs.fifo";
    const DLQ: &str = "telehook-jobs-dlq.fifo";
    let jobs = FifoSettings {
        delay: budget + Duration::from_secs(1),
        visibility: Duration::from_secs(30),
        max_receive_count: Some(5),
        dedup_window: Duration::from_secs(300),
    };
    let dead = FifoSettings::dead_letter(jobs.visibility);
    Ok(match ledger {
        LocalStore::Sqlite { queues, .. } => (
            Arc::new(SqliteFifo::new(
                queues.clone(),
                JOBS,
                clock.clone(),
                jobs,
                Some(DLQ),
            )),
            Arc::new(SqliteFifo::new(
                queues.clone(),
                DLQ,
                clock.clone(),
                dead,
                None,
            )),
            Arc::new(SqliteTimers::new(queues.clone(), clock)),
        ),
        LocalStore::Memory(_) => {
            let dlq = Arc::new(InMemoryFifo::new(DLQ, clock.clone(), dead, None));
            let queue = Arc::new(InMemoryFifo::new(
                JOBS,
                clock.clone(),
                jobs,
                Some(dlq.clone()),
            ));
            (queue, dlq, Arc::new(InMemoryTimers::new(clock)))
        }
    })
}

/// The AWS adapters, configured from the environment as in Lambda
/// (`AWS_ENDPOINT_URL` and friends included, so the emulator works). The
/// start fails before anything runs if a setting is missing or wrong, the
/// region included, naming every problem (the caller's too) at once.
pub async fn aws_backend(
    fast_path: Option<bool>,
    mut problems: Problems,
) -> Result<Backend, Error> {
    let (sdk, config) = telehook::wiring::load_settings(&mut problems).await;
    let mut config = match config {
        Some(config) if problems.is_empty() => config,
        _ => return Err(problems.into_error().into()),
    };
    if let Some(f) = fast_path {
        config.settings.fast_path = f;
    }
    let clients = telehook::aws::AwsClients::new(&sdk);
    let mut pipeline = telehook::wiring::aws_pipeline(&clients, &config).await?;
    // The metrics Lambda writes to stdout go to stderr here: stdout is the
    // command's result (`invoke --aws ... | jq`).
    pipeline.settings.metrics = Metrics::new(Arc::new(StderrSink));
    Ok(Backend {
        queue: pipeline.queue.clone(),
        pipeline,
        store: None,
        dlq: None,
        receipts: None,
    })
}
