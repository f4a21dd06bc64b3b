//! What the AWS adapters share: the SDK configuration, the clients, and the
//! classification of SDK errors. The adapters themselves live beside their
//! ports: `ledger::dynamo`, `queue::sqs`, `templates::dynamo`,
//! `messenger::eum`.
//!
//! Clients are built once per process from one `SdkConfig`, which reads the
//! normal AWS environment (region, credentials, `AWS_ENDPOINT_URL` and the
//! service-specific `AWS_ENDPOINT_URL_*`, which is how tests reach the local
//! emulator and the SMS/voice stub). Building them does no network I/O.
//!
//! SDK errors are classified once, here: throttling, timeouts, transport
//! failures and 5xx are retryable; everything else is permanent.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as DynamoDbClient;
pub use aws_sdk_sqs::Client as SqsClient;

/// Loads the shared SDK configuration. Attempts are short because the
/// ingress answers Okta within 3 seconds; the SDK retries throttling and
/// transient errors up to three attempts with jittered backoff.
pub async fn load_sdk_config() -> SdkConfig {
    sdk_config_loader().load().await
}

/// The loader behind [`load_sdk_config`], for callers that add settings
/// (tests pointing at the local emulator, say).
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
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
