//! What became of a message after the provider accepted it: the final
//! delivery receipt of one send, as the ledger records it and the metrics
//! count it. It names the event, the provider's message id and verdict, the
//! carrier (`mcc`/`mnc`) and the time to delivery; never the number or the
//! code.

use super::channel::Channel;
use super::event::EventId;

/// The final verdict on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DeliveryVerdict {
    /// Reached the handset (SMS) or was answered (voice).
    Delivered,
    /// Will not arrive: invalid or unreachable number, blocked, spam, expired,
    /// busy, unanswered, unknown after the provider gave up waiting.
    Undelivered,
}

impl DeliveryVerdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryVerdict::Delivered => "DELIVERED",
            DeliveryVerdict::Undelivered => "UNDELIVERED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DELIVERED" => Some(DeliveryVerdict::Delivered),
            "UNDELIVERED" => Some(DeliveryVerdict::Undelivered),
            _ => None,
        }
    }
}

/// End User Messaging's final event types, and what each one means. An
/// event type not listed here is interim (queued, pending, ringing…) or not
/// ours to judge, and changes nothing.
pub fn verdict_of(event_type: &str, is_final: bool) -> Option<(Channel, DeliveryVerdict)> {
    use Channel::{Sms, Voice};
    use DeliveryVerdict::{Delivered, Undelivered};
    Some(match event_type {
        "TEXT_DELIVERED" => (Sms, Delivered),
        // "Accepted by the carrier": in some countries the last word the
        // service gets, and then marked final; otherwise a step on the way.
        "TEXT_SUCCESSFUL" if is_final => (Sms, Delivered),
        "TEXT_INVALID"
        | "TEXT_INVALID_MESSAGE"
        | "TEXT_UNREACHABLE"
        | "TEXT_CARRIER_UNREACHABLE"
        | "TEXT_BLOCKED"
        | "TEXT_CARRIER_BLOCKED"
        | "TEXT_SPAM"
        | "TEXT_TTL_EXPIRED"
        | "TEXT_PROTECT_BLOCKED"
        | "TEXT_UNKNOWN" => (Sms, Undelivered),
        "VOICE_COMPLETED" | "VOICE_ANSWERED" => (Voice, Delivered),
        "VOICE_BUSY" | "VOICE_NO_ANSWER" | "VOICE_FAILED" | "VOICE_TTL_EXPIRED" => {
            (Voice, Undelivered)
        }
        _ => return None,
    })
}

/// The final receipt of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub event_id: EventId,
    pub message_id: String,
    pub channel: Channel,
    pub delivery: DeliveryVerdict,
    /// The provider's event type, e.g. `TEXT_CARRIER_UNREACHABLE`.
    pub event_type: String,
    /// The provider's status and its description, as given.
    pub status: Option<String>,
    pub description: Option<String>,
    /// Mobile country and network codes of the carrier, when reported.
    pub mcc: Option<String>,
    pub mnc: Option<String>,
    /// The destination's ISO country, when reported.
    pub country: Option<String>,
    /// From the send request to this report, in milliseconds, when both
    /// times are known.
    pub delivery_ms: Option<i64>,
    /// When the provider reported it (epoch ms).
    pub reported_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_final_type_has_its_verdict_and_interim_ones_none() {
        for t in [
            "TEXT_INVALID",
            "TEXT_INVALID_MESSAGE",
            "TEXT_UNREACHABLE",
            "TEXT_CARRIER_UNREACHABLE",
            "TEXT_BLOCKED",
            "TEXT_CARRIER_BLOCKED",
            "TEXT_SPAM",
            "TEXT_TTL_EXPIRED",
            "TEXT_PROTECT_BLOCKED",
            "TEXT_UNKNOWN",
        ] {
            assert_eq!(
                verdict_of(t, true),
                Some((Channel::Sms, DeliveryVerdict::Undelivered)),
                "{t}"
            );
        }
        assert_eq!(
            verdict_of("TEXT_DELIVERED", true),
            Some((Channel::Sms, DeliveryVerdict::Delivered))
        );
        for t in ["VOICE_COMPLETED", "VOICE_ANSWERED"] {
            assert_eq!(
                verdict_of(t, true),
                Some((Channel::Voice, DeliveryVerdict::Delivered)),
                "{t}"
            );
        }
        for t in [
            "VOICE_BUSY",
            "VOICE_NO_ANSWER",
            "VOICE_FAILED",
            "VOICE_TTL_EXPIRED",
        ] {
            assert_eq!(
                verdict_of(t, true),
                Some((Channel::Voice, DeliveryVerdict::Undelivered)),
                "{t}"
            );
        }
        assert_eq!(
            verdict_of("TEXT_SUCCESSFUL", true),
            Some((Channel::Sms, DeliveryVerdict::Delivered))
        );
        for t in [
            "TEXT_SUCCESSFUL",
            "TEXT_QUEUED",
            "TEXT_PENDING",
            "VOICE_RINGING",
            "VOICE_INITIATED",
        ] {
            assert_eq!(verdict_of(t, false), None, "{t}");
        }
        assert_eq!(verdict_of("MEDIA_DELIVERED", true), None);
        for d in [DeliveryVerdict::Delivered, DeliveryVerdict::Undelivered] {
            assert_eq!(DeliveryVerdict::parse(d.as_str()), Some(d));
        }
    }
}
