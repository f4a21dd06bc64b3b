//! The job queue on SQS FIFO (the main queue and its dead-letter queue).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use crate::aws::classify;
use crate::queue::{JobQueue, OutgoingMessage, QueueDepth, QueueError, ReceivedMessage};

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    arn: String,
}

/// An SDK error as the queue ports report it (the timers' adapter too).
pub(crate) fn queue_error<E>(
    e: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let c = classify(e);
    if c.retryable {
        QueueError::Unavailable(c.detail)
    } else {
        QueueError::Rejected(c.detail)
    }
}

/// `https://sqs.<region>.amazonaws.com/<account>/<name>` → the queue's ARN.
/// Derived, not fetched, so that building the adapter needs no network.
pub fn arn_from_url(url: &str, region: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    format!("arn:aws:sqs:{region}:{account}:{name}")
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        let url = url.into();
        let region = client
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        SqsQueue {
            arn: arn_from_url(&url, &region),
            client,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    #[tracing::instrument(level = "debug", skip_all, fields(group = %msg.group_id))]
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(msg.body)
            .message_group_id(msg.group_id)
            .message_deduplication_id(msg.dedup_id)
            .send()
            .await
            .map_err(|e| queue_error(&e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    /// A long poll: the attempt may take `wait` (up to 20 s) with nothing
    /// wrong, so this call's timeouts are that much longer than the
    /// hot path's.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(i32::try_from(wait.min(MAX_WAIT).as_secs()).unwrap_or(0))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .customize()
            .config_override(long_poll_timeouts(wait.min(MAX_WAIT)))
            .send()
            .await
            .map_err(|e| queue_error(&e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attr = |name: MessageSystemAttributeName| {
                    m.attributes().and_then(|a| a.get(&name)).cloned()
                };
                ReceivedMessage {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    group_id: attr(MessageSystemAttributeName::MessageGroupId).unwrap_or_default(),
                    dedup_id: attr(MessageSystemAttributeName::MessageDeduplicationId),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                    sent_at_ms: attr(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                }
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteMessageError::ReceiptHandleIsInvalid(_))
                ) =>
            {
                Err(QueueError::InvalidReceipt)
            }
            Err(e) => Err(queue_error(&e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn set_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        // SQS takes whole seconds (rounded to the nearest), at most 12 hours.
        let secs =
            i32::try_from(((timeout.as_millis() + 500) / 1000).min(43_200)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| queue_error(&e))
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| queue_error(&e))?;
        let get = |n: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&n))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    fn arn(&self) -> String {
        self.arn.clone()
    }
}

/// SQS holds a long poll open for up to 20 seconds.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// The hot path's attempt timeout (1.5 s) would cut every long poll short,
/// so a poller that waits 20 s for work would see a timeout instead of an
/// empty answer, every time. A receive's attempt may last the wait plus a
/// margin for the answer. The margin is generous: an answer the client gives
/// up on may already hold messages, which SQS then hides for the queue's
/// visibility timeout (minutes for a code that lives five).
fn long_poll_timeouts(wait: Duration) -> aws_sdk_sqs::config::Builder {
    aws_sdk_sqs::config::Builder::default().timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(800))
            .operation_attempt_timeout(wait + Duration::from_secs(10))
            .operation_timeout(wait + Duration::from_secs(25))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn arn_from_queue_url() {
        assert_eq!(
            super::arn_from_url(
                "https://sqs.eu-west-1.amazonaws.com/123456789012/telehook-jobs.fifo",
                "eu-west-1"
            ),
            "arn:aws:sqs:eu-west-1:123456789012:telehook-jobs.fifo"
        );
    }
}
