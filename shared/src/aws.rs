//! What the AWS adapters share: the SDK configuration, the clients, and the
//! classification of SDK errors. The adapters themselves live beside their
//! ports: `ledger::dynamo`, `queue::sqs`, `templates::dynamo`,
//! `messenger::eum`.
//!
//! Clients are built once per process from one `SdkConfig`, which reads the
//! normal AWS environment (region, credentials, `AWS_ENDPOINT_URL` and the
//! service-specific `AWS_ENDPOINT_URL_*`, which is how tests reach the local
//! emulator and the SMS/voice stub). Building them does no network I/O.
//! They share one HTTPS client ([`https_client`]), so the trust roots are
//! parsed once per process rather than once per client.
//!
//! SDK errors are classified once, here: throttling, timeouts, transport
//! failures and 5xx are retryable; everything else is permanent.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::{ConnectorBuilder, proxy::ProxyConfig, tls};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as DynamoDbClient;
pub use aws_sdk_sqs::Client as SqsClient;

/// Loads the shared SDK configuration. Attempts are short because the
/// ingress answers Okta within 3 seconds; the SDK retries throttling and
/// transient errors up to three attempts with jittered backoff.
///
/// The HTTPS client's start-up check, which reads and parses the trust
/// roots (about a millisecond, the largest piece of a Lambda's init), runs
/// on a thread of its own while the configuration loads and the phone
/// metadata builds; the first service client created waits for it.
pub async fn load_sdk_config() -> SdkConfig {
    let https = https_client();
    let check = https.clone();
    std::thread::spawn(move || {
        // Its outcome is kept for the clients (`CheckedOnce`).
        let _ = check.validate_base_client_config(
            &RuntimeComponentsBuilder::new("init"),
            &ConfigBag::base(),
        );
    });
    sdk_config_loader_with(https).load().await
}

/// The loader behind [`load_sdk_config`], for callers that add settings
/// (tests pointing at the local emulator, say).
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    sdk_config_loader_with(https_client())
}

fn sdk_config_loader_with(https: SharedHttpClient) -> aws_config::ConfigLoader {
    let loader = match environment_credentials() {
        Some(env) => aws_config::defaults(BehaviorVersion::latest()).credentials_provider(env),
        None => aws_config::defaults(BehaviorVersion::latest()),
    };
    loader
        .http_client(https)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(800))
                .operation_attempt_timeout(Duration::from_millis(1500))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(500)),
        )
}

/// Credentials given in the environment, which the default chain would
/// take first anyway: on Lambda always (the runtime sets the function
/// role's). Taking them directly spares building the rest of the chain
/// (profiles, SSO, web identity with its own STS client, the container and
/// instance endpoints), which init otherwise pays for on every cold start.
/// Without them (the CLI with a profile, say) the default chain is used.
fn environment_credentials() -> Option<EnvironmentVariableCredentialsProvider> {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"))
        .then(EnvironmentVariableCredentialsProvider::new)
}

/// The HTTPS client for every SDK client a configuration makes (the
/// credential providers' too): the SDK's default, built the same way
/// (rustls with aws-lc, a proxy from the environment's `HTTPS_PROXY` and
/// `NO_PROXY`), but one for all of them.
///
/// Left to itself the SDK gives each service client a client of its own,
/// and each one, when the service client is created, builds a whole TLS
/// connector and drops it, only so the trust roots are read at init rather
/// than on the first request; a Lambda creating four clients (and the
/// credential chain its own) parsed the trust roots six times during init,
/// then once more per service on its first hook. Shared, they are read and
/// checked once at init, and the first request of any service builds the
/// one connector the others reuse (connectors are cached by their timeouts).
pub fn https_client() -> SharedHttpClient {
    let inner =
        aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
            let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ));
            builder.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                builder.set_sleep_impl(components.sleep_impl());
            }
            builder.set_proxy_config(Some(ProxyConfig::from_env()));
            builder.build()
        });
    CheckedOnce {
        inner,
        checked: OnceLock::new(),
    }
    .into_shared()
}

/// An HTTP client whose start-up check (for the SDK's client, building a
/// connector, which reads the trust roots) runs for the first service client
/// only; every other call is passed on.
#[derive(Debug)]
struct CheckedOnce {
    inner: SharedHttpClient,
    checked: OnceLock<Result<(), String>>,
}

impl HttpClient for CheckedOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.checked
            .get_or_init(|| {
                self.inner
                    .validate_base_client_config(components, cfg)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(BoxError::from)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// The SDK clients, created once per process.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sms_voice: aws_sdk_pinpointsmsvoicev2::Client,
    /// For secrets configured by ARN (`*_SECRET_ARN`).
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            sms_voice: aws_sdk_pinpointsmsvoicev2::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

/// Error codes that mean "slow down or try again".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "InternalServerException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSThrottlingException",
];

/// How an SDK call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub retryable: bool,
    /// The service's error code, or the transport failure kind.
    pub code: String,
    /// What a person reads: the service's message, or what could not be
    /// reached and why (the whole cause chain, not `DispatchFailure`).
    pub detail: String,
}

/// Classifies any SDK error. The status code needs the raw response, which
/// every generated client shares the type of.
pub fn classify<E>(err: &SdkError<E, aws_smithy_runtime_api_http::HttpResponse>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let context = || causes(err);
    let (retryable, code, detail) = match err {
        SdkError::TimeoutError(_) => (true, "Timeout".to_owned(), "timed out".to_owned()),
        SdkError::DispatchFailure(_) => (
            true,
            "DispatchFailure".to_owned(),
            format!("could not reach the service ({})", context()),
        ),
        SdkError::ResponseError(_) => (
            true,
            "ResponseError".to_owned(),
            format!("an unreadable answer ({})", context()),
        ),
        SdkError::ConstructionFailure(_) => (
            false,
            "ConstructionFailure".to_owned(),
            format!("could not build the request ({})", context()),
        ),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_owned();
            let status = se.raw().status().as_u16();
            let detail = match se.err().message() {
                Some(m) => format!("{code}: {m}"),
                None => code.clone(),
            };
            (
                status >= 500 || RETRYABLE_CODES.contains(&code.as_str()),
                code,
                detail,
            )
        }
        _ => (true, "Unknown".to_owned(), context()),
    };
    Classified {
        retryable,
        code,
        detail,
    }
}

/// An error and its causes in words, outermost first ("dispatch failure:
/// io error: … Connection refused"), each said once: what a person reads,
/// without the SDK's debug dumps.
pub fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The raw HTTP response type shared by all generated clients.
mod aws_smithy_runtime_api_http {
    pub use aws_sdk_dynamodb::config::http::HttpResponse;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the start-up checks it is asked for; never sends anything.
    #[derive(Debug, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is made")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_clients_of_one_configuration_check_the_http_client_once() {
        let checks = Arc::new(AtomicUsize::new(0));
        let client = CheckedOnce {
            inner: Counting(checks.clone()).into_shared(),
            checked: OnceLock::new(),
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(client)
            .load()
            .await;
        let _clients = AwsClients::new(&sdk);
        let _again = AwsClients::new(&sdk);
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        // Without the wrapper, every client checks its own.
        let checks = Arc::new(AtomicUsize::new(0));
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(Counting(checks.clone()))
            .load()
            .await;
        let _clients = AwsClients::new(&sdk);
        assert!(checks.load(Ordering::SeqCst) >= 4);
    }
}
