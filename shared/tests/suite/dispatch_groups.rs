//! The dispatcher sends the message groups of one batch concurrently and
//! each group's records strictly in order; a failed record holds back the
//! rest of its group only, and the report lists the failures in batch order.
//!
//! The provider here takes a different time per destination, so the groups
//! interleave; tokio's paused clock makes that interleaving the same on
//! every run. Nothing is timed: the checks are the order of the sends and
//! the most calls the provider saw at once.

#![allow(clippy::unwrap_used)]

use crate::support::flow::*;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use telehook::domain::channel::Channel;
use telehook::flows::{Pipeline, PipelineSettings, dispatch_batch};
use telehook::ledger::{InMemoryLedger, Status};
use telehook::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};
use telehook::queue::JobQueue;

/// A provider that takes 10–50 ms by destination, counts the calls in
/// flight, and refuses (retryably) the events it is told to.
#[derive(Debug, Default)]
struct Provider {
    in_flight: AtomicUsize,
    most_at_once: AtomicUsize,
    sent: Mutex<Vec<(String, String)>>,
    throttle: HashSet<String>,
}

#[async_trait]
impl Messenger for Provider {
    async fn send(&self, m: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let last = m.to.e164().bytes().last().unwrap() - b'0';
        tokio::time::sleep(Duration::from_millis(10 + u64::from(last * 7 % 5) * 10)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.throttle.contains(m.event_id.as_str()) {
            return Err(SendError::Retryable {
                code: "ThrottlingException".into(),
            });
        }
        self.sent
            .lock()
            .unwrap()
            .push((m.to.e164().to_owned(), m.event_id.to_string()));
        Ok(SendReceipt {
            message_id: format!("msg-{}", m.event_id),
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

const GROUPS: [&str; 4] = [
    "+14155552671",
    "+14155552672",
    "+14155552673",
    "+14155552674",
];

/// Ten records over four destinations, interleaved as a FIFO batch
/// arrives: destination 0 has four, 1 three, 2 two, 3 one.
fn batch(h: &Harness) -> (Vec<(String, usize)>, aws_lambda_events::sqs::SqsEvent) {
    let layout = [0, 1, 2, 3, 0, 1, 2, 0, 1, 0];
    let mut seen = [0; 4];
    let mut ids = Vec::new();
    let mut jobs = Vec::new();
    for (i, g) in layout.into_iter().enumerate() {
        seen[g] += 1;
        let event = format!("evt-g{g}-n{}", seen[g]);
        ids.push((format!("m{i}"), g));
        jobs.push((format!("m{i}"), request(h, &event, GROUPS[g], Channel::Sms)));
    }
    let refs: Vec<(&str, _)> = jobs
        .iter()
        .map(|(id, r)| (id.as_str(), r.clone()))
        .collect();
    (ids, sqs_event(h, &refs))
}

/// The harness's clock, queue and settings, with this provider and a
/// dispatch limit.
fn pipeline(h: &Harness, provider: std::sync::Arc<Provider>, limit: Option<usize>) -> Pipeline {
    Pipeline::builder(
        std::sync::Arc::new(InMemoryLedger::new()),
        h.queue.clone() as std::sync::Arc<dyn JobQueue>,
        provider,
    )
    .clock(h.clock.clone())
    .settings(PipelineSettings {
        hash_key: h.pipeline.settings.hash_key.clone(),
        dispatch_concurrency: limit.and_then(NonZeroUsize::new),
        ..Default::default()
    })
    .build()
}

fn sends_by_destination(p: &Provider) -> HashMap<String, Vec<String>> {
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for (to, event) in p.sent.lock().unwrap().iter() {
        by.entry(to.clone()).or_default().push(event.clone());
    }
    by
}

#[tokio::test(start_paused = true)]
async fn groups_go_at_once_and_each_group_in_order() {
    for (limit, most) in [(None, 4), (Some(2), 2), (Some(1), 1)] {
        let h = harness(false);
        let provider = std::sync::Arc::new(Provider::default());
        let p = pipeline(&h, provider.clone(), limit);
        let (_, event) = batch(&h);
        let resp = dispatch_batch(&p, event).await;
        assert!(resp.batch_item_failures.is_empty(), "{limit:?}");
        assert_eq!(
            provider.most_at_once.load(Ordering::SeqCst),
            most,
            "limit {limit:?}: one call per group at once, never more than the limit"
        );
        let by = sends_by_destination(&provider);
        for (g, to) in GROUPS.iter().enumerate() {
            let expected: Vec<String> = (1..=4 - g).map(|n| format!("evt-g{g}-n{n}")).collect();
            assert_eq!(
                by[*to], expected,
                "limit {limit:?}: group {g} in batch order"
            );
        }
        let all: Vec<String> = provider
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.1.clone())
            .collect();
        if limit != Some(1) {
            assert_ne!(
                all,
                [0, 1, 2, 3, 0, 1, 2, 0, 1, 0]
                    .iter()
                    .scan([0; 4], |seen, &g| {
                        seen[g] += 1;
                        Some(format!("evt-g{g}-n{}", seen[g]))
                    })
                    .collect::<Vec<_>>(),
                "the groups interleave, so this is not the batch order"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_holds_back_its_group_only_and_is_reported_in_batch_order() {
    let h = harness(false);
    let provider = std::sync::Arc::new(Provider {
        // The second record of destination 0 and the first of destination 1.
        throttle: ["evt-g0-n2", "evt-g1-n1"].map(String::from).into(),
        ..Provider::default()
    });
    let p = pipeline(&h, provider.clone(), None);
    let (ids, event) = batch(&h);
    let resp = dispatch_batch(&p, event).await;
    let reported: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // Destination 0: n2 (m4) failed, so n3 (m7) and n4 (m9) wait behind it.
    // Destination 1: n1 (m1) failed, so n2 (m5) and n3 (m8) wait.
    let expected: Vec<&str> = ids
        .iter()
        .filter(|(id, _)| ["m1", "m4", "m5", "m7", "m8", "m9"].contains(&id.as_str()))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(reported, expected);
    let by = sends_by_destination(&provider);
    assert_eq!(by[GROUPS[0]], ["evt-g0-n1"]);
    assert!(!by.contains_key(GROUPS[1]));
    assert_eq!(by[GROUPS[2]], ["evt-g2-n1", "evt-g2-n2"]);
    assert_eq!(by[GROUPS[3]], ["evt-g3-n1"]);
    // The held-back records were never tried, and nothing is marked sent
    // that was not.
    let ledger = p.ledger.claims.clone();
    for (event, status) in [
        ("evt-g0-n1", Some(Status::Sent)),
        ("evt-g0-n3", None),
        ("evt-g1-n2", None),
        ("evt-g2-n2", Some(Status::Sent)),
    ] {
        let rec = ledger
            .get(&telehook::domain::EventId::parse(event).unwrap())
            .await
            .unwrap();
        assert_eq!(rec.map(|r| r.status), status, "{event}");
    }
}
