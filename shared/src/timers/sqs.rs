//! Timers on an SQS standard queue: each check is a message with a
//! delivery delay. In AWS the receipts Lambda reads the queue as an event
//! source; [`Timers::arrived`] is for `telehook serve --aws`.

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use super::{Arrived, Check, Timers, delay_for};
use crate::queue::QueueError;
use crate::queue::sqs::queue_error as timer_error;

#[derive(Debug, Clone)]
pub struct SqsTimers {
    client: Client,
    url: String,
}

impl SqsTimers {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        SqsTimers {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl Timers for SqsTimers {
    async fn schedule(&self, check: &Check, now_ms: i64) -> Result<(), QueueError> {
        let delay = i32::try_from(delay_for(check.due_ms(), now_ms).as_secs()).unwrap_or(900);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(check.encode())
            .delay_seconds(delay)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| timer_error(&e))
    }

    async fn arrived(&self, max: usize) -> Result<Vec<Arrived>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| timer_error(&e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Arrived {
                    handle: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    async fn done(&self, handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| timer_error(&e))
    }
}
