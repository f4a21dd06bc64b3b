//! Wiring: the one place a [`Pipeline`] is put together.
//!
//! [`PipelineBuilder`] takes the three ports every pipeline needs (ledger,
//! queue, messenger) and defaults for the rest (built-in templates in
//! English, the system clock, default settings). [`aws_pipeline`] builds the
//! Lambdas' pipeline from typed configuration and the SDK clients; local
//! mode and the tests use the builder with in-memory adapters.

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::auth::settings::IngressConfig;
use crate::aws::{AwsClients, SdkConfig};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Problems};
use crate::domain::Locale;
use crate::domain::Route;
use crate::domain::phone::Region;
use crate::flows::guard::AllowedCountries;
use crate::flows::settings::PipelineConfig;
use crate::flows::{Pipeline, PipelineSettings};
use crate::ledger::{DynamoLedger, Ledger, Parts};
use crate::messenger::Messenger;
use crate::messenger::eum::EndUserMessaging;
use crate::messenger::notify::Notify;
use crate::messenger::routes::Routes;
use crate::queue::{JobQueue, SqsQueue};
use crate::telemetry::metrics::{Metrics, StdoutSink};
use crate::templates::{DynamoTemplateStore, TemplateStore, Templates};
use crate::timers::{InMemoryTimers, SqsTimers, Timers};

/// Builds a [`Pipeline`]; see the module docs for the defaults.
#[derive(Debug)]
pub struct PipelineBuilder {
    ledger: Parts,
    queue: Arc<dyn JobQueue>,
    routes: Routes,
    templates: Option<Templates>,
    clock: Arc<dyn Clock>,
    timers: Option<Arc<dyn Timers>>,
    settings: PipelineSettings,
}

impl Pipeline {
    /// Starts a pipeline over these ports; `messenger` is the own route
    /// (see [`PipelineBuilder::routes`] for others).
    pub fn builder(
        ledger: Arc<dyn Ledger>,
        queue: Arc<dyn JobQueue>,
        messenger: Arc<dyn Messenger>,
    ) -> PipelineBuilder {
        PipelineBuilder {
            ledger: Parts::of(ledger),
            queue,
            routes: Routes::one(Route::Own, messenger),
            templates: None,
            clock: Arc::new(SystemClock),
            timers: None,
            settings: PipelineSettings::default(),
        }
    }
}

impl PipelineBuilder {
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = Some(templates);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where expiry checks wait; in memory on the pipeline's clock unless
    /// given.
    pub fn timers(mut self, timers: Arc<dyn Timers>) -> Self {
        self.timers = Some(timers);
        self
    }

    /// Replaces some of the ledger's capabilities, keeping the rest: for
    /// a test whose ledger misbehaves in one way only.
    pub fn ledger_parts(mut self, replace: impl FnOnce(&mut Parts)) -> Self {
        replace(&mut self.ledger);
        self
    }

    /// The routes messages go by, replacing the own route given to
    /// [`Pipeline::builder`].
    pub fn routes(mut self, routes: Routes) -> Self {
        self.routes = routes;
        self
    }

    pub fn settings(mut self, settings: PipelineSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Puts fault injection between the flows and every port (see
    /// `testkit::chaos`). Whoever reads the queue as an event source keeps
    /// the real one.
    #[cfg(any(test, feature = "testkit"))]
    pub fn chaos(mut self, spec: &crate::testkit::chaos::ChaosSpec) -> Self {
        use crate::testkit::chaos::{ChaosLedger, ChaosMessenger, ChaosQueue};
        self.ledger = Parts::of(Arc::new(ChaosLedger::new(
            self.ledger,
            spec.ledger.clone(),
            spec.seed,
        )));
        self.queue = Arc::new(ChaosQueue::new(
            self.queue,
            spec.queue.clone(),
            spec.seed + 1,
        ));
        self.routes = self.routes.map(|route, messenger| {
            let (faults, seed) = match route {
                Route::Own => (spec.provider.clone(), spec.seed + 2),
                Route::Notify => (spec.notify.clone(), spec.seed + 3),
            };
            Arc::new(ChaosMessenger::new(messenger, faults, seed)) as Arc<dyn Messenger>
        });
        self
    }

    pub fn build(self) -> Pipeline {
        let templates = self.templates.unwrap_or_else(|| {
            let english = Locale::parse("en").unwrap_or_else(|_| unreachable!("en is a locale"));
            Templates::new(None, english, "Okta")
        });
        let timers = self
            .timers
            .unwrap_or_else(|| Arc::new(InMemoryTimers::new(self.clock.clone())));
        Pipeline::from_parts(
            self.ledger,
            self.queue,
            self.routes,
            templates,
            self.clock,
            timers,
            self.settings,
        )
    }
}

/// The pipeline on the AWS adapters, as the Lambdas run it. It reads a hash
/// key given by ARN
/// (`HASH_KEY_SECRET_ARN`) through Secrets Manager: the only network call
/// at init, and only when an ARN is configured.
pub async fn aws_pipeline(
    clients: &AwsClients,
    config: &PipelineConfig,
) -> Result<Pipeline, ConfigError> {
    let hash_key =
        crate::secrets::resolve(&config.hash_key, &clients.secrets, "HASH_KEY_SECRET_ARN").await?;
    if config.settings.guard.countries == AllowedCountries::All {
        tracing::warn!(
            "ALLOWED_COUNTRIES=*: codes may go to any country; SMS pumping is on the table"
        );
    }
    let store = config.templates_table.as_ref().map(|t| {
        Arc::new(DynamoTemplateStore::new(
            clients.dynamodb.clone(),
            t,
            config.template_cache_ttl,
        )) as Arc<dyn TemplateStore>
    });
    Ok(Pipeline::builder(
        Arc::new(DynamoLedger::new(
            clients.dynamodb.clone(),
            &config.ledger_table,
        )),
        Arc::new(SqsQueue::new(clients.sqs.clone(), &config.queue_url)),
        Arc::new(EndUserMessaging::new(
            clients.sms_voice.clone(),
            config.eum.clone(),
        )),
    )
    .routes(aws_routes(clients, config))
    .templates(Templates::new(
        store,
        config.default_locale.clone(),
        &config.org_name,
    ))
    .timers(match &config.expiry_queue_url {
        Some(url) => Arc::new(SqsTimers::new(clients.sqs.clone(), url)) as Arc<dyn Timers>,
        // Conversions off (the config requires the queue otherwise): no
        // check is ever scheduled.
        None => Arc::new(InMemoryTimers::new(Arc::new(SystemClock))),
    })
    .settings(PipelineSettings {
        hash_key: hash_key.expose_secret().as_bytes().to_vec().into(),
        metrics: Metrics::new(Arc::new(StdoutSink)),
        ..config.settings.clone()
    })
    .build())
}

/// The messengers of the routes `ROUTES` names: End User Messaging from
/// the org's identities, Notify through its configuration.
fn aws_routes(clients: &AwsClients, config: &PipelineConfig) -> Routes {
    let messenger = |route| -> Arc<dyn Messenger> {
        match (route, &config.eum.notify) {
            (Route::Notify, Some(notify)) => {
                Arc::new(Notify::new(clients.sms_voice.clone(), notify.clone()))
            }
            // The settings require a Notify configuration when Notify is
            // used; without one this is the own route.
            _ => Arc::new(EndUserMessaging::new(
                clients.sms_voice.clone(),
                config.eum.clone(),
            )),
        }
    };
    let plan = config.eum.routes;
    let routes = Routes::one(plan.first, messenger(plan.first));
    match plan.second {
        Some(second) => routes.then(second, messenger(second)),
        None => routes,
    }
}

/// What every Lambda builds at init, from the normal SDK environment and
/// the process environment.
#[derive(Debug)]
pub struct LambdaInit {
    pub pipeline: Pipeline,
    pub clients: AwsClients,
    pub config: PipelineConfig,
}

/// The SDK clients and the pipeline on them. The only network I/O is
/// reading a hash key given by ARN. Every configuration problem is named
/// at once, a missing region included.
pub async fn lambda_init() -> Result<LambdaInit, ConfigError> {
    let mut problems = Problems::default();
    let config = problems.take(PipelineConfig::from_env());
    let phone = PhonePrep::start(config.as_ref(), None);
    let sdk = load_sdk(&mut problems).await;
    match config {
        Some(config) if problems.is_empty() => lambda_init_from(&sdk, config, phone).await,
        _ => Err(problems.into_error()),
    }
    .inspect_err(log_init_error)
}

/// The runtime prints a failed init's error in its debug form; the log
/// gets the readable list, one problem per line.
fn log_init_error(e: &ConfigError) {
    tracing::error!("the function cannot start: {e}");
}

/// How long the ingress's start-up waits for its routes to be ready.
pub const ROUTES_INIT_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

/// As [`lambda_init`], for the ingress: its own settings (authentication,
/// hook defaults) are checked together with the pipeline's, so one failed
/// start lists every problem of both; the routes are warmed (Notify's
/// catalog read) within [`ROUTES_INIT_DEADLINE`].
pub async fn ingress_init() -> Result<(IngressConfig, LambdaInit), ConfigError> {
    let mut problems = Problems::default();
    let ingress = problems.take(IngressConfig::from_env());
    let config = problems.take(PipelineConfig::from_env());
    let home = ingress.as_ref().map(|i| i.defaults.region);
    let phone = PhonePrep::start(config.as_ref(), home);
    let sdk = load_sdk(&mut problems).await;
    match (ingress, config) {
        (Some(ingress), Some(config)) if problems.is_empty() => {
            let init = lambda_init_from(&sdk, config, phone).await?;
            // The hook's 3 seconds should not pay for Notify's catalog.
            init.pipeline.routes.warm(ROUTES_INIT_DEADLINE).await;
            Ok((ingress, init))
        }
        _ => Err(problems.into_error()),
    }
    .inspect_err(log_init_error)
}

/// The SDK configuration and the pipeline's settings from the environment,
/// their problems added to `problems`. Without a region every AWS call
/// fails, so a hook would only hear "could not deliver"; that is a
/// configuration problem at start instead.
pub async fn load_settings(problems: &mut Problems) -> (SdkConfig, Option<PipelineConfig>) {
    let config = problems.take(PipelineConfig::from_env());
    (load_sdk(problems).await, config)
}

/// The SDK configuration (which reads the trust roots), its problems added
/// to `problems`.
async fn load_sdk(problems: &mut Problems) -> SdkConfig {
    problems.take(trust_roots(std::env::var_os("SSL_CERT_FILE")));
    let sdk = crate::aws::load_sdk_config().await;
    problems.take(region_of(&sdk));
    sdk
}

/// The phone-number metadata for the countries the allow-list reaches (and
/// `home`, the region of numbers written without `+`), built on a thread of
/// its own from the moment the settings are read: the SDK's set-up (trust
/// roots included) and a secret read by ARN (a network round trip) go on
/// meanwhile, and init ends when both are done, so the first hook never
/// pays for it.
#[derive(Debug)]
pub struct PhonePrep(Option<std::thread::JoinHandle<()>>);

impl PhonePrep {
    pub fn start(config: Option<&PipelineConfig>, home: Option<Region>) -> Self {
        PhonePrep(config.map(|c| {
            let reach = c.settings.guard.countries.reach(home);
            std::thread::spawn(move || crate::domain::phone::prepare(&reach))
        }))
    }

    fn finish(self) {
        if let Some(Err(panic)) = self.0.map(std::thread::JoinHandle::join) {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The trust-root bundle the template names (`SSL_CERT_FILE`) must be a
/// file: the TLS clients read only it, and without it they would trust no
/// server, so every AWS call would fail; better a failed start that says so.
fn trust_roots(file: Option<std::ffi::OsString>) -> Result<(), ConfigError> {
    match file {
        Some(path) if !path.is_empty() && !std::path::Path::new(&path).is_file() => {
            Err(ConfigError::Invalid {
                var: "SSL_CERT_FILE",
                reason: format!(
                    "{} is not a file; the TLS clients would trust no server",
                    std::path::Path::new(&path).display()
                ),
            })
        }
        _ => Ok(()),
    }
}

/// `Missing { var: "AWS_REGION" }` when the SDK found no region (neither
/// `AWS_REGION`, `AWS_DEFAULT_REGION` nor a profile's).
pub fn region_of(sdk: &SdkConfig) -> Result<(), ConfigError> {
    match sdk.region() {
        Some(_) => Ok(()),
        None => Err(ConfigError::Missing { var: "AWS_REGION" }),
    }
}

/// The clients and the pipeline from checked settings, once the phone
/// metadata `phone` is building is ready too.
pub async fn lambda_init_from(
    sdk: &SdkConfig,
    config: PipelineConfig,
    phone: PhonePrep,
) -> Result<LambdaInit, ConfigError> {
    let clients = AwsClients::new(sdk);
    let pipeline = aws_pipeline(&clients, &config).await;
    phone.finish();
    Ok(LambdaInit {
        pipeline: pipeline?,
        clients,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trust_root_bundle_that_is_not_a_file_stops_the_start() {
        assert!(trust_roots(None).is_ok());
        assert!(trust_roots(Some("".into())).is_ok());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert!(trust_roots(Some(manifest.into())).is_ok());
        let err = trust_roots(Some("/nonexistent/ca-bundle.crt".into())).unwrap_err();
        assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
        assert!(
            trust_roots(Some(env!("CARGO_MANIFEST_DIR").into())).is_err(),
            "a folder"
        );
    }
}
