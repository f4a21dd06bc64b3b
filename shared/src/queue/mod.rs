//! The `JobQueue` port: an SQS FIFO queue of delivery jobs (and, for the
//! replayer, its dead-letter queue), plus [`InMemoryFifo`], which keeps the
//! SQS FIFO semantics the flows depend on:
//!
//! - ordering within a message group, and group locking: while a message of
//!   a group is in flight, no later message of that group is handed out;
//! - a delivery delay on every new message;
//! - a visibility timeout after each receive;
//! - a receive count, and redrive to the dead-letter queue once a message is
//!   received more than `max_receive_count` times;
//! - deduplication on the deduplication id for five minutes.

pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sqs;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use thiserror::Error;

pub use memory::{FifoSettings, InMemoryFifo};
#[cfg(feature = "sqlite")]
pub use sqlite::{QueueFile, SqliteFifo};
pub use sqs::SqsQueue;

/// A message to send.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub group_id: String,
    pub dedup_id: String,
}

impl std::fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("group_id", &self.group_id)
            .field("dedup_id", &self.dedup_id)
            .finish_non_exhaustive()
    }
}

/// A received message. The body holds a job (with its OTP), so `Debug`
/// leaves it and the receipt handle out.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub group_id: String,
    pub dedup_id: Option<String>,
    pub receive_count: u32,
    pub sent_at_ms: i64,
}

impl std::fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("message_id", &self.message_id)
            .field("group_id", &self.group_id)
            .field("receive_count", &self.receive_count)
            .finish_non_exhaustive()
    }
}

impl ReceivedMessage {
    /// The record Lambda's SQS event source would build for this message.
    pub fn to_sqs_message(&self, queue_arn: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(self.message_id.clone());
        m.receipt_handle = Some(self.receipt_handle.clone());
        m.body = Some(self.body.clone());
        m.event_source = Some("aws:sqs".to_owned());
        m.event_source_arn = Some(queue_arn.to_owned());
        let mut attrs = HashMap::new();
        attrs.insert("MessageGroupId".to_owned(), self.group_id.clone());
        attrs.insert(
            "ApproximateReceiveCount".to_owned(),
            self.receive_count.to_string(),
        );
        attrs.insert("SentTimestamp".to_owned(), self.sent_at_ms.to_string());
        if let Some(d) = &self.dedup_id {
            attrs.insert("MessageDeduplicationId".to_owned(), d.clone());
        }
        m.attributes = attrs;
        m
    }
}

/// What SQS refuses in a send to a FIFO queue: no group id, or a dedup id
/// that is empty or over 128 characters.
pub(crate) fn check_ids(msg: &OutgoingMessage) -> Result<(), QueueError> {
    if msg.group_id.is_empty() || msg.dedup_id.is_empty() || msg.dedup_id.len() > 128 {
        return Err(QueueError::Rejected(
            "group id and dedup id (1-128 chars) are required".into(),
        ));
    }
    Ok(())
}

/// A receive that waits up to `wait` for something, trying every `step`:
/// the embedded queues' long poll.
pub(crate) async fn poll(
    wait: Duration,
    step: Duration,
    mut try_receive: impl FnMut() -> Result<Vec<ReceivedMessage>, QueueError>,
) -> Result<Vec<ReceivedMessage>, QueueError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let got = try_receive()?;
        if !got.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(got);
        }
        tokio::time::sleep(step.min(wait)).await;
    }
}

/// What a receive does with one stored message ([`pick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Hand it out (the caller gives it a receipt and hides it).
    HandOut(usize),
    /// Past `maxReceiveCount`: move it to the dead-letter queue.
    Redrive(usize),
}

/// A stored message as the receive rule sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub group: &'a str,
    pub visible_at_ms: i64,
    pub in_flight_receipt: bool,
    pub receive_count: u32,
}

/// SQS FIFO's receive rule, for the embedded queues: over a queue's
/// messages in send order, which to hand out and which to redrive. A
/// group is locked while any of its messages is in flight; a group whose
/// head is not visible yet (delayed, or waiting out its visibility) holds
/// back the rest of the group; a message received `max_receive_count`
/// times goes to the DLQ instead of out, when there is one.
pub(crate) fn pick(
    slots: &[Slot<'_>],
    now_ms: i64,
    max: usize,
    settings: &FifoSettings,
    has_dlq: bool,
) -> Vec<Pick> {
    let max_receive_count = settings.max_receive_count;
    use std::collections::HashSet;
    let locked: HashSet<&str> = slots
        .iter()
        .filter(|m| m.in_flight_receipt && m.visible_at_ms > now_ms)
        .map(|m| m.group)
        .collect();
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    let mut handed = 0;
    for (i, m) in slots.iter().enumerate() {
        if handed >= max.min(10) {
            break;
        }
        if locked.contains(m.group) || blocked.contains(m.group) {
            continue;
        }
        if m.visible_at_ms > now_ms {
            blocked.insert(m.group);
            continue;
        }
        if has_dlq && max_receive_count.is_some_and(|n| m.receive_count >= n) {
            out.push(Pick::Redrive(i));
            continue;
        }
        out.push(Pick::HandOut(i));
        handed += 1;
    }
    out
}

/// Approximate counts, as SQS reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    /// Counts a stored message of an embedded queue: in flight (received,
    /// still hidden), delayed (never received, not visible yet) or visible.
    pub(crate) fn count(&mut self, slot: &Slot<'_>, now_ms: i64) {
        match (slot.in_flight_receipt, slot.visible_at_ms > now_ms) {
            (true, true) => self.in_flight += 1,
            (false, true) => self.delayed += 1,
            _ => self.visible += 1,
        }
    }
}

/// An embedded queue's ARN, as local mode names it.
pub(crate) fn local_arn(name: &str) -> String {
    format!("arn:aws:sqs:local:000000000000:{name}")
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue refused the request: {0}")]
    Rejected(String),
    #[error("receipt handle is no longer valid")]
    InvalidReceipt,
}

#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Sends a message; returns its id (the earlier id for a duplicate).
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError>;
    /// Receives up to `max` (at most 10) messages, waiting up to `wait`.
    async fn receive(&self, max: usize, wait: Duration)
    -> Result<Vec<ReceivedMessage>, QueueError>;
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Sets how long a received message stays invisible, from now: the
    /// dispatcher's retry backoff. Zero makes it visible at once.
    async fn set_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError>;
    /// Makes a received message visible again at once (visibility 0).
    async fn release(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.set_visibility(receipt_handle, Duration::ZERO).await
    }
    async fn depth(&self) -> Result<QueueDepth, QueueError>;
    /// The queue's ARN, for the `eventSourceARN` of built events.
    fn arn(&self) -> String;
}
