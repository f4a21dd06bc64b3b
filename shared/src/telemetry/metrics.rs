//! Delivery metrics in CloudWatch Embedded Metric Format (EMF): one JSON
//! document per event, written to stdout by the Lambdas, which CloudWatch
//! Logs turns into metrics with no API call on the hot path.
//!
//! Namespace `telehook`; dimensions `channel` and `outcome`. The names here
//! are the ones the alarms and the dashboard in `template.yaml` use:
//!
//! | metric | unit | dimensions |
//! |---|---|---|
//! | `HooksReceived` | Count | channel |
//! | `HookAnswers` | Count | outcome; channel+outcome (SUCCESSFUL, PENDING, FAILED) |
//! | `HooksAnswered` | Count | none (the denominator of the PENDING share) |
//! | `Refused` | Count | outcome; channel+outcome (COUNTRY, RATE, NUMBER_TYPE) |
//! | `Expired` | Count | channel |
//! | `Replayed` | Count | channel |
//! | `FastPathLatency` | Milliseconds | channel+outcome |
//! | `ProviderLatency` | Milliseconds | channel+outcome (ACCEPTED, RETRYABLE, PERMANENT); channel+country |
//! | `Receipts` | Count | channel+delivery (DELIVERED, UNDELIVERED); channel+country+delivery |
//! | `Undelivered` | Count | channel+reason (the provider's final event type) |
//! | `TimeToDelivery` | Milliseconds | channel; channel+country |
//! | `ReceiptsIgnored` | Count | kind (INTERIM, NOT_OURS, DUPLICATE, UNKNOWN_EVENT, MALFORMED) |
//!
//! Values are counts, channels and outcome words only: never a number, a
//! code or an id.
//!
//! No EMF crate on crates.io is both maintained and small enough to justify
//! the dependency; the format is a few fields, and the writer is tested
//! against the specification's structure.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::domain::Route;
use crate::domain::channel::Channel;

pub const NAMESPACE: &str = "telehook";

/// Every metric name this module writes.
pub const METRIC_NAMES: &[&str] = &[
    "HooksReceived",
    "HookAnswers",
    "HooksAnswered",
    "Refused",
    "Expired",
    "Replayed",
    "FastPathLatency",
    "ProviderLatency",
    "Receipts",
    "Undelivered",
    "TimeToDelivery",
    "ReceiptsIgnored",
    "Conversions",
    "SignInsIgnored",
    "GuardBlocks",
    "FollowUpErrors",
    "VoiceFallbacks",
    "OktaFallbacks",
];

/// Where EMF documents go.
pub trait MetricsSink: Send + Sync + std::fmt::Debug {
    fn write(&self, line: &str);

    /// False for a sink that drops everything, so no document is built.
    fn enabled(&self) -> bool {
        true
    }
}

/// Standard output, one document per line: what Lambda forwards to
/// CloudWatch Logs.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl MetricsSink for StdoutSink {
    fn write(&self, line: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// Standard error, one document per line: the CLI on the AWS adapters,
/// whose standard output is the command's result (`invoke --aws | jq`).
#[derive(Debug, Default)]
pub struct StderrSink;

impl MetricsSink for StderrSink {
    fn write(&self, line: &str) {
        use std::io::Write;
        let mut out = std::io::stderr().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// Drops everything (local mode's console stays readable).
#[derive(Debug, Default)]
pub struct NullSink;

impl MetricsSink for NullSink {
    fn write(&self, _line: &str) {}

    fn enabled(&self) -> bool {
        false
    }
}

/// Why a hook was refused before any claim or send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    Country,
    Rate,
    NumberType,
    /// A prefix or country the learning guard (or an operator) blocked.
    Learned,
}

impl RefusalKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalKind::Country => "COUNTRY",
            RefusalKind::Rate => "RATE",
            RefusalKind::NumberType => "NUMBER_TYPE",
            RefusalKind::Learned => "LEARNED",
        }
    }
}

/// The metrics writer the flows use.
#[derive(Debug, Clone)]
pub struct Metrics {
    sink: Arc<dyn MetricsSink>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Arc::new(NullSink))
    }
}

struct Directive<'a> {
    dimensions: &'a [&'a [&'a str]],
    metrics: &'a [(&'a str, &'a str)],
}

impl Metrics {
    pub fn new(sink: Arc<dyn MetricsSink>) -> Self {
        Metrics { sink }
    }

    fn emit(&self, directives: &[Directive<'_>], values: &[(&str, f64)], dims: &[(&str, &str)]) {
        if !self.sink.enabled() {
            return;
        }
        let cw: Vec<Value> = directives
            .iter()
            .map(|d| {
                json!({
                    "Namespace": NAMESPACE,
                    "Dimensions": d.dimensions,
                    "Metrics": d.metrics.iter().map(|(n, u)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({"Timestamp": chrono::Utc::now().timestamp_millis(), "CloudWatchMetrics": cw}),
        );
        for (k, v) in dims {
            doc.insert((*k).into(), Value::String((*v).into()));
        }
        for (k, v) in values {
            doc.insert((*k).into(), json!(v));
        }
        self.sink.write(&Value::Object(doc).to_string());
    }

    fn count_by_channel(&self, name: &str, channel: Channel) {
        self.emit(
            &[Directive {
                dimensions: &[&["channel"]],
                metrics: &[(name, "Count")],
            }],
            &[(name, 1.0)],
            &[("channel", channel.as_str())],
        );
    }

    /// A final delivery receipt: the delivery rate per channel and country
    /// is `Receipts` DELIVERED over all `Receipts`; undelivered ones also by
    /// reason; the time to delivery (p50/p99 on the dashboard) when known.
    pub fn receipt(&self, r: &crate::domain::Receipt) {
        let country = r.country.as_deref().unwrap_or("unknown");
        let channel = r.channel.as_str();
        let delivery = r.delivery.as_str();
        self.emit(
            &[Directive {
                dimensions: &[
                    &["channel", "delivery"],
                    &["channel", "country", "delivery"],
                ],
                metrics: &[("Receipts", "Count")],
            }],
            &[("Receipts", 1.0)],
            &[
                ("channel", channel),
                ("country", country),
                ("delivery", delivery),
            ],
        );
        if r.delivery == crate::domain::DeliveryVerdict::Undelivered {
            self.emit(
                &[Directive {
                    dimensions: &[&["channel", "reason"]],
                    metrics: &[("Undelivered", "Count")],
                }],
                &[("Undelivered", 1.0)],
                &[("channel", channel), ("reason", &r.event_type)],
            );
        }
        if let Some(ms) = r.delivery_ms {
            self.emit(
                &[Directive {
                    dimensions: &[&["channel"], &["channel", "country"]],
                    metrics: &[("TimeToDelivery", "Milliseconds")],
                }],
                &[("TimeToDelivery", ms as f64)],
                &[("channel", channel), ("country", country)],
            );
        }
    }

    /// A delivery event that changed nothing, by kind.
    pub fn receipt_ignored(&self, kind: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["kind"]],
                metrics: &[("ReceiptsIgnored", "Count")],
            }],
            &[("ReceiptsIgnored", 1.0)],
            &[("kind", kind)],
        );
    }

    /// A sent code's conversion was decided: `CONVERTED` or `UNUSED`, by
    /// channel and country (the conversion rate is CONVERTED over both),
    /// and by kind of code (`signal`: mfa, enrollment, reset, unlock).
    pub fn conversion(&self, channel: &str, country: &str, signal: &str, conversion: &str) {
        self.emit(
            &[Directive {
                dimensions: &[
                    &["channel", "conversion"],
                    &["channel", "country", "conversion"],
                    &["signal", "conversion"],
                ],
                metrics: &[("Conversions", "Count")],
            }],
            &[("Conversions", 1.0)],
            &[
                ("channel", channel),
                ("country", country),
                ("signal", signal),
                ("conversion", conversion),
            ],
        );
    }

    /// Okta recorded a failed inline hook call (`hook`: telephony, or
    /// unnamed): it sent that code through its own rate-limited providers.
    pub fn okta_fallback(&self, hook: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["hook"], &[]],
                metrics: &[("OktaFallbacks", "Count")],
            }],
            &[("OktaFallbacks", 1.0)],
            &[("hook", hook)],
        );
    }

    /// An Okta event that matched no send (`kind`: NO_SEND, EXPIRED,
    /// ALREADY_RESOLVED, NOT_PHONE, MALFORMED).
    pub fn sign_in_ignored(&self, kind: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["kind"]],
                metrics: &[("SignInsIgnored", "Count")],
            }],
            &[("SignInsIgnored", 1.0)],
            &[("kind", kind)],
        );
    }

    /// The learning guard blocked (or, in monitor mode, would have
    /// blocked) a prefix or a country.
    pub fn guard_block(&self, scope: &str, mode: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["scope", "mode"], &[]],
                metrics: &[("GuardBlocks", "Count")],
            }],
            &[("GuardBlocks", 1.0)],
            &[("scope", scope), ("mode", mode)],
        );
    }

    /// A step after a confirmed send that failed (`step`: note, timer,
    /// stats, feedback): conversion data is lost for that send, the send
    /// itself is not.
    pub fn follow_up_error(&self, step: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["step"]],
                metrics: &[("FollowUpErrors", "Count")],
            }],
            &[("FollowUpErrors", 1.0)],
            &[("step", step)],
        );
    }

    /// A code sent by voice instead of SMS (`reason`: LANDLINE, or
    /// UNREACHABLE after a bounced SMS).
    pub fn voice_fallback(&self, reason: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["reason"]],
                metrics: &[("VoiceFallbacks", "Count")],
            }],
            &[("VoiceFallbacks", 1.0)],
            &[("reason", reason)],
        );
    }

    /// A route could not deliver a code, so the other route took it: by
    /// the route that failed, the channel and the provider's error code.
    pub fn route_failover(&self, from: Route, channel: Channel, code: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["route"], &["route", "channel", "code"]],
                metrics: &[("RouteFailovers", "Count")],
            }],
            &[("RouteFailovers", 1.0)],
            &[
                ("route", from.as_str()),
                ("channel", channel.as_str()),
                ("code", code),
            ],
        );
    }

    /// A person asked for another code within the resend window, so it
    /// went by the other route: by the route the last code took.
    pub fn resend(&self, last: Route, channel: Channel) {
        self.emit(
            &[Directive {
                dimensions: &[&["route"], &["route", "channel"]],
                metrics: &[("Resends", "Count")],
            }],
            &[("Resends", 1.0)],
            &[("route", last.as_str()), ("channel", channel.as_str())],
        );
    }

    pub fn hook_received(&self, channel: Channel) {
        self.count_by_channel("HooksReceived", channel);
    }

    pub fn expired(&self, channel: Channel) {
        self.count_by_channel("Expired", channel);
    }

    pub fn replayed(&self, channel: Channel) {
        self.count_by_channel("Replayed", channel);
    }

    /// The answer given to Okta: SUCCESSFUL, PENDING or FAILED.
    pub fn answered(&self, channel: Channel, outcome: &str) {
        self.emit(
            &[
                Directive {
                    dimensions: &[&["outcome"], &["channel", "outcome"]],
                    metrics: &[("HookAnswers", "Count")],
                },
                Directive {
                    dimensions: &[&[]],
                    metrics: &[("HooksAnswered", "Count")],
                },
            ],
            &[("HookAnswers", 1.0), ("HooksAnswered", 1.0)],
            &[("channel", channel.as_str()), ("outcome", outcome)],
        );
    }

    /// Something worth knowing about how a hook was read: `AMBIGUOUS_NUMBER`
    /// (no `+`, valid both nationally and internationally), `ASSUMED_EXPIRY`
    /// (no `otpExpires`), `REQUEST_TYPE_MISSING`, `REQUEST_TYPE_UNREADABLE`,
    /// `REQUEST_TYPE_NEW`, `EVENT_ID_REUSED` (an event id already sent,
    /// back with another number or channel).
    pub fn read_note(&self, channel: Channel, note: &str) {
        self.emit(
            &[Directive {
                dimensions: &[&["note"]],
                metrics: &[("HookReadNotes", "Count")],
            }],
            &[("HookReadNotes", 1.0)],
            &[("channel", channel.as_str()), ("note", note)],
        );
    }

    /// A guard refusal answered so that Okta does not fall back.
    pub fn blocked(&self, channel: Channel, kind: RefusalKind) {
        self.emit(
            &[Directive {
                dimensions: &[&["outcome"], &["channel", "outcome"]],
                metrics: &[("Blocked", "Count")],
            }],
            &[("Blocked", 1.0)],
            &[("channel", channel.as_str()), ("outcome", kind.as_str())],
        );
    }

    pub fn refused(&self, channel: Channel, kind: RefusalKind) {
        self.emit(
            &[Directive {
                dimensions: &[&["outcome"], &["channel", "outcome"]],
                metrics: &[("Refused", "Count")],
            }],
            &[("Refused", 1.0)],
            &[("channel", channel.as_str()), ("outcome", kind.as_str())],
        );
    }

    /// The time of one provider call, by channel and outcome (ACCEPTED,
    /// RETRYABLE, PERMANENT) and by channel and destination country.
    pub fn provider_latency(&self, channel: Channel, country: &str, outcome: &str, ms: f64) {
        self.emit(
            &[Directive {
                dimensions: &[&["channel", "outcome"], &["channel", "country"]],
                metrics: &[("ProviderLatency", "Milliseconds")],
            }],
            &[("ProviderLatency", ms)],
            &[
                ("channel", channel.as_str()),
                ("outcome", outcome),
                ("country", country),
            ],
        );
    }

    /// A latency in milliseconds, by channel and outcome (`FastPathLatency`).
    pub fn latency(&self, name: &str, channel: Channel, outcome: &str, ms: f64) {
        self.emit(
            &[Directive {
                dimensions: &[&["channel", "outcome"]],
                metrics: &[(name, "Milliseconds")],
            }],
            &[(name, ms)],
            &[("channel", channel.as_str()), ("outcome", outcome)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a document against the EMF specification's structure: `_aws`
    /// with a millisecond `Timestamp` and `CloudWatchMetrics` directives, each
    /// naming its namespace, dimension sets whose keys are root strings, and
    /// metrics whose values are root numbers.
    fn check_emf(line: &str) -> Value {
        let doc: Value = serde_json::from_str(line).unwrap();
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for d in directives {
            assert_eq!(d["Namespace"], NAMESPACE);
            for set in d["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for key in set {
                    assert!(
                        doc[key.as_str().unwrap()].is_string(),
                        "dimension {key} is a root string"
                    );
                }
            }
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(doc[name].is_number(), "metric {name} is a root number");
                assert!(["Count", "Milliseconds"].contains(&m["Unit"].as_str().unwrap()));
            }
        }
        doc
    }

    #[test]
    fn documents_follow_the_emf_structure() {
        let sink = Arc::new(crate::testkit::MemorySink::default());
        let m = Metrics::new(sink.clone());
        m.hook_received(Channel::Sms);
        m.answered(Channel::Voice, "PENDING");
        m.refused(Channel::Sms, RefusalKind::Rate);
        m.expired(Channel::Sms);
        m.replayed(Channel::Voice);
        m.latency("ProviderLatency", Channel::Sms, "ACCEPTED", 12.5);
        let lines = sink.lines();
        assert_eq!(lines.len(), 6);
        for l in &lines {
            check_emf(l);
        }
        let answered = check_emf(&lines[1]);
        assert_eq!(answered["outcome"], "PENDING");
        assert_eq!(answered["HookAnswers"], 1.0);
        assert_eq!(
            answered["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
            json!([[]])
        );
        assert_eq!(check_emf(&lines[5])["ProviderLatency"], 12.5);
    }
}
