//! End User Messaging's delivery events, as its configuration set's event
//! destination publishes them (one JSON object per event, in an SNS
//! message), read into a [`Receipt`].
//!
//! Only what the ledger and the metrics need is read: the event type and
//! whether it is final, the message id, our `eventId` from the `Context`
//! every send carries, the carrier codes, the destination's country, the
//! status and its description, and the two timestamps. The destination
//! number in the event is never read, so it cannot reach a record or a log.

use thiserror::Error;

use crate::domain::EventId;
use crate::domain::receipt::{Receipt, verdict_of};

/// The event as JSON. Fields are read leniently, each on its own: a code
/// sent as a number (`"mcc": 310`), a timestamp as a string, or a field of
/// an unexpected type loses that field, never the receipt. Everything not
/// read is ignored, so a new field never breaks reading.
struct Wire(serde_json::Map<String, serde_json::Value>);

impl Wire {
    /// A string, or a number as its decimal text.
    fn text(&self, k: &str) -> Option<String> {
        match self.0.get(k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A whole number, or a string holding one.
    fn int(&self, k: &str) -> Option<i64> {
        match self.0.get(k)? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn flag(&self, k: &str) -> bool {
        match self.0.get(k) {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    /// Our event id, from the `context` every send carries.
    fn event_id(&self) -> Option<EventId> {
        let id = self.0.get("context")?.get("eventId")?.as_str()?;
        EventId::parse(id).ok()
    }
}

/// What one event is to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// A final receipt of one of our sends.
    Final(Receipt),
    /// A step on the way (queued, pending, ringing): nothing to record.
    Interim { event_type: String },
    /// Not from one of our sends: no `eventId` in its context (another
    /// sender on the same configuration set), or no message id.
    NotOurs { event_type: String },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not JSON, or no `eventType`: nothing can be done with it.
    #[error("not a delivery event: {0}")]
    Malformed(String),
}

/// Most a provider field is kept to: they are short codes and sentences.
const MAX_FIELD: usize = 256;

fn short(v: Option<String>) -> Option<String> {
    v.map(|s| s.chars().take(MAX_FIELD).collect::<String>())
        .filter(|s| !s.trim().is_empty())
}

/// Destinations whose messages local mode reports as undeliverable: ISO
/// countries (`GB`) or E.164 prefixes (`+4477`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undeliverable(Vec<String>);

impl Undeliverable {
    /// A comma-separated list of countries and `+`-prefixes.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let ok = match item.strip_prefix('+') {
                Some(digits) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                None => item.len() == 2 && item.bytes().all(|b| b.is_ascii_alphabetic()),
            };
            if !ok {
                return Err(format!(
                    "{item:?} is neither an ISO country (GB) nor an E.164 prefix (+4477)"
                ));
            }
            out.push(item.to_ascii_uppercase());
        }
        Ok(Undeliverable(out))
    }

    pub fn covers(&self, e164: &str, country: Option<&str>) -> bool {
        self.0.iter().any(|item| {
            if item.starts_with('+') {
                e164.starts_with(item.as_str())
            } else {
                country.is_some_and(|c| c.eq_ignore_ascii_case(item))
            }
        })
    }
}

/// The final event End User Messaging would publish for a message, in its
/// format: local mode plays the provider with it, so the receipts flow
/// reads the same text it reads in AWS. The number is in it, as in the
/// service's events, and is never read back.
pub fn local_event(
    message: &crate::messenger::OutboundMessage,
    message_id: &str,
    sent_ms: i64,
    reported_ms: i64,
    undeliverable: &Undeliverable,
) -> String {
    let country = message.to.region().map(|r| r.as_str().to_owned());
    let lost = undeliverable.covers(message.to.e164(), country.as_deref());
    let (event_type, status, description) = match (message.rendered.channel, lost) {
        (crate::domain::Channel::Sms, false) => (
            "TEXT_DELIVERED",
            "DELIVERED",
            "Delivered to the handset (local mode)",
        ),
        (crate::domain::Channel::Sms, true) => (
            "TEXT_CARRIER_UNREACHABLE",
            "CARRIER_UNREACHABLE",
            "The carrier could not reach the handset (local mode)",
        ),
        (crate::domain::Channel::Voice, false) => (
            "VOICE_COMPLETED",
            "COMPLETED",
            "The call was completed (local mode)",
        ),
        (crate::domain::Channel::Voice, true) => (
            "VOICE_NO_ANSWER",
            "NO_ANSWER",
            "The call was not answered (local mode)",
        ),
    };
    serde_json::json!({
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": reported_ms,
        "isFinal": true,
        "destinationPhoneNumber": message.to.e164(),
        "isoCountryCode": country,
        "messageId": message_id,
        "messageRequestTimestamp": sent_ms,
        "messageStatus": status,
        "messageStatusDescription": description,
        "context": {"eventId": message.event_id.as_str(), "requestType": message.request_type},
    })
    .to_string()
}

/// Reads one event (the SNS message's text).
pub fn read_event(text: &str) -> Result<Reading, ReceiptError> {
    // The error names a position only: serde's own message can quote the
    // offending value, and an event holds a phone number.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ReceiptError::Malformed(format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(ReceiptError::Malformed("not a JSON object".into()));
    };
    let wire = Wire(map);
    let Some(event_type) = wire
        .0
        .get("eventType")
        .and_then(|t| t.as_str())
        .map(|t| t.chars().take(64).collect::<String>())
    else {
        return Err(ReceiptError::Malformed("no eventType".into()));
    };
    let Some((channel, delivery)) = verdict_of(&event_type, wire.flag("isFinal")) else {
        return Ok(Reading::Interim { event_type });
    };
    let (Some(event_id), Some(message_id)) = (wire.event_id(), short(wire.text("messageId")))
    else {
        return Ok(Reading::NotOurs { event_type });
    };
    let reported = wire.int("eventTimestamp");
    let delivery_ms = match (wire.int("messageRequestTimestamp"), reported) {
        (Some(sent), Some(reported)) if reported >= sent => Some(reported - sent),
        _ => None,
    };
    let reported_at_ms = reported.unwrap_or(0);
    Ok(Reading::Final(Receipt {
        event_id,
        message_id,
        channel,
        delivery,
        event_type,
        status: short(wire.text("messageStatus")),
        description: short(wire.text("messageStatusDescription")),
        mcc: short(wire.text("mcc")),
        mnc: short(wire.text("mnc")),
        country: short(wire.text("isoCountryCode")).map(|c| c.to_ascii_uppercase()),
        delivery_ms,
        reported_at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::Channel;
    use crate::domain::receipt::DeliveryVerdict;

    fn event(event_type: &str, is_final: bool) -> serde_json::Value {
        serde_json::json!({
            "eventType": event_type, "eventVersion": "1.0",
            "eventTimestamp": 1_700_000_004_500_i64, "isFinal": is_final,
            "originationPhoneNumber": "+12065550152",
            "destinationPhoneNumber": "+14255550156",
            "isoCountryCode": "us", "mcc": "310", "mnc": "800",
            "messageId": "mid-1", "messageRequestTimestamp": 1_700_000_000_000_i64,
            "messageStatus": "DELIVERED", "messageStatusDescription": "Delivered to handset",
            "context": {"eventId": "evt-1", "requestType": "mfa-verification"},
            "totalMessageParts": 1, "totalMessagePrice": 0.00581
        })
    }

    #[test]
    fn a_final_event_is_a_receipt_without_the_number() {
        let Reading::Final(r) = read_event(&event("TEXT_DELIVERED", true).to_string()).unwrap()
        else {
            panic!("final")
        };
        assert_eq!(r.event_id.as_str(), "evt-1");
        assert_eq!(r.channel, Channel::Sms);
        assert_eq!(r.delivery, DeliveryVerdict::Delivered);
        assert_eq!(r.delivery_ms, Some(4500));
        assert_eq!(r.country.as_deref(), Some("US"));
        assert_eq!(
            (r.mcc.as_deref(), r.mnc.as_deref()),
            (Some("310"), Some("800"))
        );
        assert!(!format!("{r:?}").contains("4255550156"));
    }

    #[test]
    fn undeliverable_destinations_are_countries_or_prefixes() {
        let u = Undeliverable::parse("gb, +4477,+1900").unwrap();
        assert!(u.covers("+442071838750", Some("GB")));
        assert!(u.covers("+19005550100", Some("US")));
        assert!(!u.covers("+14155552671", Some("US")));
        assert!(Undeliverable::parse("").unwrap() == Undeliverable::default());
        for bad in ["GBR", "+44a", "+", "4477"] {
            assert!(Undeliverable::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interim_foreign_and_malformed_events_are_told_apart() {
        assert_eq!(
            read_event(&event("TEXT_PENDING", false).to_string()).unwrap(),
            Reading::Interim {
                event_type: "TEXT_PENDING".into()
            }
        );
        let mut foreign = event("TEXT_DELIVERED", true);
        foreign["context"] = serde_json::json!({"account": "bar"});
        assert!(matches!(
            read_event(&foreign.to_string()).unwrap(),
            Reading::NotOurs { .. }
        ));
        let mut no_context = event("VOICE_BUSY", true);
        no_context.as_object_mut().unwrap().remove("context");
        assert!(matches!(
            read_event(&no_context.to_string()).unwrap(),
            Reading::NotOurs { .. }
        ));
        for bad in ["", "null", "[]", "{\"messageId\": 1}", "not json"] {
            assert!(read_event(bad).is_err(), "{bad}");
        }
        // Odd types lose a field, not the receipt, and errors quote no value.
        let mut odd = event("TEXT_DELIVERED", true);
        odd["mcc"] = 310.into();
        odd["mnc"] = serde_json::json!(["260"]);
        odd["eventTimestamp"] = "1700000004500".into();
        let Reading::Final(r) = read_event(&odd.to_string()).unwrap() else {
            panic!("final")
        };
        assert_eq!((r.mcc.as_deref(), r.mnc), (Some("310"), None));
        assert_eq!(r.delivery_ms, Some(4500));
        for hostile in [
            r#"{"eventType": 14155552671}"#,
            r#"{"eventType": "TEXT_DELIVERED", "isFinal": true, "messageId": 4155552671,"#,
        ] {
            let err = read_event(hostile).unwrap_err().to_string();
            assert!(!err.contains("4155552671"), "{err}");
        }
        // A report before its request (clock skew) has no time to delivery.
        let mut skewed = event("TEXT_DELIVERED", true);
        skewed["eventTimestamp"] = 1_600_000_000_000_i64.into();
        let Reading::Final(r) = read_event(&skewed.to_string()).unwrap() else {
            panic!("final")
        };
        assert_eq!(r.delivery_ms, None);
    }
}
