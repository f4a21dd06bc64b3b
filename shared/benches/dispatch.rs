//! The dispatcher's throughput per instance with a provider that takes
//! 50 ms a call: one SQS batch of ten jobs to ten destinations (ten message
//! groups), sent one after another (`DISPATCH_CONCURRENCY=1`, how the
//! dispatcher worked before) and a group at a time each, all at once (the
//! default). `cargo bench -p telehook --bench dispatch`; the ratio of the
//! two medians is the throughput gain recorded in BENCHMARKS.md.
//!
//! The runtime is current-thread, as in the Lambda: the gain is from
//! waiting on the provider concurrently, not from more cores.

#![allow(clippy::unwrap_used)]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use chrono::Utc;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use telehook::clock::SystemClock;
use telehook::domain::channel::Channel;
use telehook::domain::job::Job;
use telehook::domain::locale::Locale;
use telehook::domain::otp::Otp;
use telehook::domain::phone::PhoneNumber;
use telehook::domain::{DeliveryRequest, EventId, RequestType};
use telehook::flows::{Pipeline, PipelineSettings, destination_hash, dispatch_batch};
use telehook::ledger::InMemoryLedger;
use telehook::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};
use telehook::queue::{FifoSettings, InMemoryFifo, ReceivedMessage};

const PROVIDER_LATENCY: Duration = Duration::from_millis(50);
const HASH_KEY: &[u8] = b"bench-hash-key-0123456789";

/// Accepts every message after the provider's latency.
#[derive(Debug)]
struct SlowProvider;

#[async_trait]
impl Messenger for SlowProvider {
    async fn send(&self, m: &OutboundMessage) -> Result<SendReceipt, SendError> {
        tokio::time::sleep(PROVIDER_LATENCY).await;
        Ok(SendReceipt {
            message_id: format!("bench-{}", m.event_id),
        })
    }
    async fn feedback(
        &self,
        _message_id: &str,
        _status: telehook::domain::Feedback,
    ) -> Result<(), SendError> {
        Ok(())
    }
}

fn pipeline(limit: Option<usize>) -> Pipeline {
    let clock = Arc::new(SystemClock);
    Pipeline::builder(
        Arc::new(InMemoryLedger::new()),
        Arc::new(InMemoryFifo::new(
            "bench.fifo",
            clock.clone(),
            FifoSettings::default(),
            None,
        )),
        Arc::new(SlowProvider),
    )
    .clock(clock)
    .settings(PipelineSettings {
        hash_key: HASH_KEY.to_vec().into(),
        dispatch_concurrency: limit.and_then(NonZeroUsize::new),
        ..Default::default()
    })
    .build()
}

/// Ten jobs to ten numbers, as Lambda's SQS event source hands them over.
fn batch(round: u64) -> SqsEvent {
    let key = telehook::crypto::HashKey::from(HASH_KEY.to_vec());
    let mut event = SqsEvent::default();
    event.records = (0..10)
        .map(|i| {
            let req = DeliveryRequest {
                event_id: EventId::parse(&format!("bench-r{round}-j{i}")).unwrap(),
                request_type: RequestType::MfaVerification,
                phone: PhoneNumber::parse(&format!("+1415555260{i}"), "US".parse().unwrap())
                    .unwrap(),
                otp: Otp::parse("739201").unwrap(),
                otp_expires: Utc::now() + chrono::Duration::minutes(5),
                channel: Channel::Sms,
                locale: Locale::parse("en-US").unwrap(),
                locale_from_request: true,
                user_id: Some("00u1".into()),
                context: Default::default(),
            };
            ReceivedMessage {
                message_id: format!("m{i}"),
                receipt_handle: format!("rh-{i}"),
                body: Job::from_request(&req, telehook::crypto::keyed(&key)).encode(),
                group_id: destination_hash(&key, &req.phone),
                dedup_id: Some(req.event_id.to_string()),
                receive_count: 1,
                sent_at_ms: 0,
            }
            .to_sqs_message("arn:aws:sqs:local:000000000000:bench.fifo")
        })
        .collect();
    event
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("dispatch_batch_10_groups_50ms");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(12));
    let mut round = 0u64;
    for (name, limit) in [("sequential", Some(1)), ("concurrent", None)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let p = pipeline(limit);
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let event = batch(round);
                    let started = Instant::now();
                    let resp = rt.block_on(dispatch_batch(&p, event));
                    spent += started.elapsed();
                    assert!(resp.batch_item_failures.is_empty());
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
