//! Fault injection: wrappers for every port that fail on purpose, by rate and
//! with a seeded random source, so a run can be repeated.
//!
//! A spec reads like `provider.throttle=0.3,provider.timeout=0.05,
//! provider.latency-ms=50,ledger.conflict=0.01,seed=7`. Each target
//! (`provider`: the own route's messenger; `notify`: the Notify route's;
//! `ledger`, `queue`, `templates`) takes:
//!
//! - `throttle`: fail as throttled (retryable);
//! - `5xx`: fail as a server error (retryable);
//! - `timeout`: hang for `timeout-ms` (default 3000), then fail as a timeout;
//! - `latency-ms`: add this much latency to every call;
//! - `crash`: do the real call, then lose the reply: the side effect happened
//!   and the caller is told it failed;
//! - `conflict` (ledger only): a claim loses a conditional write it would
//!   have won.
//!
//! The provider wrapper remembers which message ids it confirmed to the
//! caller and which it sent but hid, so the invariant checker can tell a
//! repeated unconfirmed send (allowed, and reported) from a second send
//! after a confirmed one (never allowed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

mod ledger;
pub use ledger::ChaosLedger;

use crate::domain::channel::Channel;
use crate::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};
use crate::queue::{JobQueue, OutgoingMessage, QueueDepth, QueueError, ReceivedMessage};
use crate::templates::{Template, TemplateError, TemplateStore};

/// Faults for one port.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
    pub timeout: f64,
    pub timeout_after: Duration,
    pub latency: Duration,
    pub crash: f64,
    pub conflict: f64,
}

impl Faults {
    pub fn is_quiet(&self) -> bool {
        *self
            == Faults {
                timeout_after: self.timeout_after,
                ..Faults::default()
            }
    }
}

/// Faults for every port, and the seed of the random source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChaosSpec {
    pub provider: Faults,
    /// The Notify route's messenger.
    pub notify: Faults,
    pub ledger: Faults,
    pub queue: Faults,
    pub templates: Faults,
    pub seed: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("chaos spec: {0}")]
pub struct ChaosSpecError(String);

impl ChaosSpec {
    pub fn parse(spec: &str) -> Result<Self, ChaosSpecError> {
        let mut out = ChaosSpec {
            seed: 1,
            ..ChaosSpec::default()
        };
        for f in [
            &mut out.provider,
            &mut out.notify,
            &mut out.ledger,
            &mut out.queue,
            &mut out.templates,
        ] {
            f.timeout_after = Duration::from_millis(3000);
        }
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| ChaosSpecError(format!("{item}: expected key=value")))?;
            if key == "seed" {
                out.seed = value
                    .parse()
                    .map_err(|_| ChaosSpecError(format!("{item}: not a number")))?;
                continue;
            }
            let (target, fault) = key
                .split_once('.')
                .ok_or_else(|| ChaosSpecError(format!("{key}: expected target.fault")))?;
            let faults = match target {
                "provider" => &mut out.provider,
                "notify" => &mut out.notify,
                "ledger" => &mut out.ledger,
                "queue" => &mut out.queue,
                "templates" => &mut out.templates,
                other => return Err(ChaosSpecError(format!("{other}: unknown target"))),
            };
            let rate = || -> Result<f64, ChaosSpecError> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| ChaosSpecError(format!("{item}: a rate is 0 to 1")))
            };
            let millis = || -> Result<Duration, ChaosSpecError> {
                value
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| ChaosSpecError(format!("{item}: milliseconds")))
            };
            match fault {
                "throttle" => faults.throttle = rate()?,
                "5xx" => faults.server_error = rate()?,
                "timeout" => faults.timeout = rate()?,
                "timeout-ms" => faults.timeout_after = millis()?,
                "latency-ms" => faults.latency = millis()?,
                "crash" => faults.crash = rate()?,
                "conflict" if target == "ledger" => faults.conflict = rate()?,
                other => return Err(ChaosSpecError(format!("{target}.{other}: unknown fault"))),
            }
        }
        Ok(out)
    }
}

/// What a roll of the dice decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Throttle,
    ServerError,
    Timeout,
    Crash,
    Conflict,
}

/// A seeded random source shared by one wrapper.
#[derive(Debug)]
struct Dice(Mutex<fastrand::Rng>);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(Mutex::new(fastrand::Rng::with_seed(seed)))
    }

    fn roll(&self, f: &Faults) -> Fault {
        let x = self.0.lock().unwrap_or_else(|p| p.into_inner()).f64();
        let mut edge = 0.0;
        for (rate, fault) in [
            (f.throttle, Fault::Throttle),
            (f.server_error, Fault::ServerError),
            (f.timeout, Fault::Timeout),
            (f.crash, Fault::Crash),
            (f.conflict, Fault::Conflict),
        ] {
            edge += rate;
            if x < edge {
                return fault;
            }
        }
        Fault::None
    }
}

async fn before(f: &Faults, fault: Fault) {
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    if fault == Fault::Timeout {
        tokio::time::sleep(f.timeout_after).await;
    }
}

/// Sends per event: which message ids the caller was told about, and which
/// were sent but hidden by a crash.
#[derive(Debug, Default, Clone)]
pub struct SendLog {
    pub confirmed: HashMap<String, Vec<String>>,
    pub hidden: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
pub struct ChaosMessenger {
    inner: Arc<dyn Messenger>,
    faults: Faults,
    dice: Dice,
    log: Arc<Mutex<SendLog>>,
}

impl ChaosMessenger {
    pub fn new(inner: Arc<dyn Messenger>, faults: Faults, seed: u64) -> Self {
        ChaosMessenger {
            inner,
            faults,
            dice: Dice::new(seed),
            log: Arc::default(),
        }
    }

    pub fn log(&self) -> Arc<Mutex<SendLog>> {
        self.log.clone()
    }
}

#[async_trait]
impl Messenger for ChaosMessenger {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let fault = self.dice.roll(&self.faults);
        before(&self.faults, fault).await;
        let retryable = |code: &str| Err(SendError::Retryable { code: code.into() });
        match fault {
            Fault::Throttle => return retryable("ThrottlingException"),
            Fault::ServerError => return retryable("InternalServerException"),
            Fault::Timeout => return retryable("Timeout"),
            _ => {}
        }
        let receipt = self.inner.send(message).await?;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let event = message.event_id.to_string();
        if fault == Fault::Crash {
            log.hidden
                .entry(event)
                .or_default()
                .push(receipt.message_id);
            return retryable("ReplyLost");
        }
        log.confirmed
            .entry(event)
            .or_default()
            .push(receipt.message_id.clone());
        Ok(receipt)
    }

    async fn feedback(
        &self,
        message_id: &str,
        status: crate::domain::Feedback,
    ) -> Result<(), SendError> {
        match self.dice.roll(&self.faults) {
            Fault::Throttle => Err(SendError::Retryable {
                code: "ThrottlingException".into(),
            }),
            _ => self.inner.feedback(message_id, status).await,
        }
    }
}

#[derive(Debug)]
pub struct ChaosQueue {
    inner: Arc<dyn JobQueue>,
    faults: Faults,
    dice: Dice,
}

impl ChaosQueue {
    pub fn new(inner: Arc<dyn JobQueue>, faults: Faults, seed: u64) -> Self {
        ChaosQueue {
            inner,
            faults,
            dice: Dice::new(seed),
        }
    }
}

fn queue_fault(fault: Fault) -> Option<QueueError> {
    match fault {
        Fault::Throttle => Some(QueueError::Unavailable("RequestThrottled".into())),
        Fault::ServerError => Some(QueueError::Unavailable("ServiceUnavailable".into())),
        Fault::Timeout => Some(QueueError::Unavailable("Timeout".into())),
        _ => None,
    }
}

#[async_trait]
impl JobQueue for ChaosQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        let fault = self.dice.roll(&self.faults);
        before(&self.faults, fault).await;
        if let Some(e) = queue_fault(fault) {
            return Err(e);
        }
        let result = self.inner.send(msg).await;
        if fault == Fault::Crash && result.is_ok() {
            return Err(QueueError::Unavailable("ReplyLost".into()));
        }
        result
    }

    // Receiving and deleting stay honest: the event source's own retries are
    // not what these runs are about, and a lost delete is just a redelivery.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(max, wait).await
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt_handle).await
    }

    async fn set_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        self.inner.set_visibility(receipt_handle, timeout).await
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        self.inner.depth().await
    }

    fn arn(&self) -> String {
        self.inner.arn()
    }
}

#[derive(Debug)]
pub struct ChaosTemplates {
    inner: Arc<dyn TemplateStore>,
    faults: Faults,
    dice: Dice,
}

impl ChaosTemplates {
    pub fn new(inner: Arc<dyn TemplateStore>, faults: Faults, seed: u64) -> Self {
        ChaosTemplates {
            inner,
            faults,
            dice: Dice::new(seed),
        }
    }
}

#[async_trait]
impl TemplateStore for ChaosTemplates {
    async fn get(&self, locale: &str, channel: Channel) -> Result<Option<Template>, TemplateError> {
        let fault = self.dice.roll(&self.faults);
        before(&self.faults, fault).await;
        match fault {
            Fault::Throttle | Fault::ServerError | Fault::Timeout | Fault::Crash => {
                Err(TemplateError::Store("injected fault".into()))
            }
            _ => self.inner.get(locale, channel).await,
        }
    }

    async fn put(&self, t: &Template) -> Result<(), TemplateError> {
        self.inner.put(t).await
    }

    async fn list(&self) -> Result<Vec<Template>, TemplateError> {
        self.inner.list().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_spec() {
        let s = ChaosSpec::parse("provider.throttle=0.3,provider.timeout=0.05,provider.latency-ms=50,ledger.conflict=0.01,seed=7")
            .unwrap();
        assert_eq!(s.provider.throttle, 0.3);
        assert_eq!(s.provider.timeout, 0.05);
        assert_eq!(s.provider.latency, Duration::from_millis(50));
        assert_eq!(s.ledger.conflict, 0.01);
        assert_eq!(s.seed, 7);
        assert!(s.queue.is_quiet());
        for bad in [
            "provider.throttle=2",
            "provider",
            "db.throttle=0.1",
            "queue.conflict=0.1",
            "provider.boom=0.1",
        ] {
            assert!(ChaosSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dice_are_seeded_and_follow_the_rates() {
        let f = Faults {
            throttle: 0.25,
            crash: 0.25,
            ..Faults::default()
        };
        let rolls = |seed| {
            let d = Dice::new(seed);
            (0..10_000).map(|_| d.roll(&f)).collect::<Vec<_>>()
        };
        assert_eq!(rolls(3), rolls(3), "same seed, same run");
        let r = rolls(3);
        let throttled = r.iter().filter(|f| **f == Fault::Throttle).count();
        let crashed = r.iter().filter(|f| **f == Fault::Crash).count();
        assert!(
            (2200..2800).contains(&throttled) && (2200..2800).contains(&crashed),
            "{throttled} {crashed}"
        );
    }
}
