//! The invariant checker: after a run, it reconciles what Okta was told,
//! the ledger, the queues and the messages that reached handsets.
//!
//! The promises it checks:
//! - **Nothing accepted is lost.** Every eventId answered SUCCESSFUL or
//!   PENDING ends as SENT (with a message out), FAILED (with a reason),
//!   EXPIRED, or as a job in the dead-letter queue. SUCCESSFUL also needs a
//!   message out.
//! - **No second send once a send was confirmed.** A send is confirmed when
//!   the ledger records it (SENT, with its message id): that is what every
//!   worker checks before sending. After that message, no further message
//!   for the event may go out.
//!
//! Sends that were never confirmed (the provider took the message, but the
//! reply or the ledger write was lost) may be repeated; they are counted and
//! reported, not failed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::ledger::{LedgerRecord, Status};

/// Everything a run left behind.
#[derive(Debug, Default, Clone)]
pub struct RunRecord {
    /// eventId → the status Okta got (SUCCESSFUL, PENDING, FAILED).
    pub answers: HashMap<String, String>,
    pub ledger: Vec<LedgerRecord>,
    /// (eventId, provider message id) for every message that went out, in
    /// the order they went out.
    pub sent: Vec<(String, String)>,
    /// eventIds of jobs sitting in the dead-letter queue.
    pub dead_lettered: Vec<String>,
    /// Jobs still in the main queue.
    pub still_queued: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InvariantReport {
    pub answered: usize,
    pub accepted: usize,
    pub sent: usize,
    pub failed: usize,
    pub expired: usize,
    pub dead_lettered: usize,
    /// Accepted, and ended in none of the allowed states.
    pub lost: Vec<String>,
    /// A message went out after a confirmed send of the same event.
    pub sends_after_confirmed: Vec<String>,
    /// Events with more than one message, all before any confirmation.
    pub unconfirmed_repeats: usize,
    pub still_queued: u64,
    /// Answers by status.
    pub answers: BTreeMap<String, usize>,
}

impl InvariantReport {
    pub fn holds(&self) -> bool {
        self.lost.is_empty() && self.sends_after_confirmed.is_empty() && self.still_queued == 0
    }
}

/// Sends after the one the ledger confirmed break the promise; repeats
/// where no send was confirmed (its reply was lost) are counted apart.
fn count_repeats(
    messages: &HashMap<&str, Vec<&str>>,
    ledger: &HashMap<&str, &LedgerRecord>,
    report: &mut InvariantReport,
) {
    for (event, ids) in messages {
        let confirmed = ledger.get(event).and_then(|r| r.message_id.as_deref());
        match ids.iter().position(|id| Some(*id) == confirmed) {
            Some(first) if first + 1 < ids.len() => {
                report.sends_after_confirmed.push((*event).to_owned())
            }
            _ if ids.len() > 1 => report.unconfirmed_repeats += 1,
            _ => {}
        }
    }
}

pub fn check(run: &RunRecord) -> InvariantReport {
    let ledger: HashMap<&str, &LedgerRecord> = run
        .ledger
        .iter()
        .map(|r| (r.event_id.as_str(), r))
        .collect();
    let mut messages: HashMap<&str, Vec<&str>> = HashMap::new();
    for (event, id) in &run.sent {
        messages
            .entry(event.as_str())
            .or_default()
            .push(id.as_str());
    }
    let dead: HashSet<&str> = run.dead_lettered.iter().map(String::as_str).collect();

    let mut report = InvariantReport {
        answered: run.answers.len(),
        still_queued: run.still_queued,
        ..InvariantReport::default()
    };
    for status in run.answers.values() {
        *report.answers.entry(status.clone()).or_default() += 1;
    }

    for (event, answer) in &run.answers {
        if answer != "SUCCESSFUL" && answer != "PENDING" {
            continue;
        }
        report.accepted += 1;
        let out = messages.get(event.as_str()).map(Vec::len).unwrap_or(0);
        let state = ledger.get(event.as_str()).map(|r| r.status);
        let ok = match state {
            Some(Status::Sent) => {
                report.sent += 1;
                out > 0
            }
            Some(Status::Failed) => {
                report.failed += 1;
                ledger[event.as_str()].failure.is_some()
            }
            Some(Status::Expired) => {
                report.expired += 1;
                true
            }
            _ if dead.contains(event.as_str()) => {
                report.dead_lettered += 1;
                true
            }
            _ => false,
        };
        let ok = ok && (answer != "SUCCESSFUL" || out > 0);
        if !ok {
            report.lost.push(event.clone());
        }
    }

    count_repeats(&messages, &ledger, &mut report);
    report.lost.sort();
    report.sends_after_confirmed.sort();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, status: Status, message: Option<&str>) -> LedgerRecord {
        LedgerRecord {
            correlation_id: None,
            country: None,
            destination: None,
            event_id: id.into(),
            status,
            lease_until_ms: 0,
            attempts: 1,
            channel: None,
            message_id: message.map(str::to_owned),
            route: None,
            failure: (status == Status::Failed).then(|| "permanent:x".to_owned()),
            owner: None,
            updated_at_ms: 0,
            expires_at: 0,
            delivery: None,
            sent: None,
            fallback_ms: None,
        }
    }

    #[test]
    fn finds_lost_events_and_sends_after_a_confirmation() {
        let run = RunRecord {
            answers: [
                ("a", "SUCCESSFUL"),
                ("b", "PENDING"),
                ("c", "PENDING"),
                ("d", "PENDING"),
                ("e", "FAILED"),
                ("f", "SUCCESSFUL"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            ledger: vec![
                rec("a", Status::Sent, Some("m1")),
                rec("b", Status::Failed, None),
                rec("c", Status::InProgress, None),
                rec("f", Status::Sent, Some("m4")),
            ],
            sent: vec![
                ("a".into(), "m0".into()),
                ("a".into(), "m1".into()),
                ("f".into(), "m4".into()),
                ("f".into(), "m5".into()),
            ],
            dead_lettered: vec!["d".into()],
            still_queued: 0,
        };
        let r = check(&run);
        assert_eq!(r.lost, ["c"], "in progress with nothing queued is lost");
        assert_eq!(
            r.sends_after_confirmed,
            ["f"],
            "m5 went out after m4 was confirmed"
        );
        assert_eq!(r.unconfirmed_repeats, 1, "a: m0 was never confirmed");
        assert_eq!(
            (r.accepted, r.sent, r.failed, r.dead_lettered),
            (5, 2, 1, 1)
        );
        assert!(!r.holds());
    }
}
