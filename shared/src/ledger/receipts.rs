//! Receipts: the provider's final delivery receipt on an event's record,
//! the first one standing, and the one voice fallback a sent event may
//! take after it.

use async_trait::async_trait;

use super::LedgerError;
use crate::domain::{DeliveryVerdict, EventId, Receipt};

/// What the ledger keeps of a final delivery receipt (never the number).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryRecord {
    pub delivery: DeliveryVerdict,
    /// The provider's event type and status, and its description.
    pub event_type: String,
    pub status: Option<String>,
    pub description: Option<String>,
    pub mcc: Option<String>,
    pub mnc: Option<String>,
    /// From the send request to the report, in milliseconds.
    pub delivery_ms: Option<i64>,
    /// The provider's message id the receipt is about.
    pub message_id: String,
    /// When the provider reported it (epoch ms).
    pub reported_at_ms: i64,
}

impl From<&Receipt> for DeliveryRecord {
    fn from(r: &Receipt) -> Self {
        DeliveryRecord {
            delivery: r.delivery,
            event_type: r.event_type.clone(),
            status: r.status.clone(),
            description: r.description.clone(),
            mcc: r.mcc.clone(),
            mnc: r.mnc.clone(),
            delivery_ms: r.delivery_ms,
            message_id: r.message_id.clone(),
            reported_at_ms: r.reported_at_ms,
        }
    }
}

/// What recording a receipt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryRecorded {
    /// The first final receipt of the event, now on its record.
    Recorded,
    /// The receipt names a message other than the one the record was sent
    /// as: not applied (a receipt must be about our send to change it).
    OtherMessage,
    /// The record already holds a final receipt (SNS delivers at least
    /// once, and a call can be both answered and completed): the first
    /// one stands.
    Duplicate,
    /// No record of the event: not one of our sends, or one whose record
    /// has expired. Nothing is written.
    UnknownEvent,
}

/// What the provider reported of a send, and the fallback it allowed.
#[async_trait]
pub trait ReceiptLog: Send + Sync + std::fmt::Debug {
    /// Records a final delivery receipt on the event's record, whatever
    /// its status (a receipt can arrive before the send is marked SENT;
    /// marking it later keeps the receipt). The first final receipt stands;
    /// an event without a record gets none, and a record sent as another
    /// message than the receipt's is left alone.
    async fn record_delivery(
        &self,
        receipt: &Receipt,
        now_ms: i64,
    ) -> Result<DeliveryRecorded, LedgerError>;

    /// Takes the one voice fallback a sent event may have; `false` when it
    /// was taken before, or the event is not `SENT`.
    async fn claim_fallback(&self, event_id: &EventId, now_ms: i64) -> Result<bool, LedgerError>;
}
