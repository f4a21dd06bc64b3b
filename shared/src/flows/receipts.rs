//! Delivery receipts: End User Messaging's events about messages it
//! accepted, as its configuration set's SNS destination delivers them
//! ([`record_receipts`]). A final event is recorded on the event's ledger
//! record (DELIVERED or UNDELIVERED, the provider's status, the carrier,
//! the time to delivery) and counted; everything else is counted and
//! acknowledged.
//!
//! Nothing here may loop: SNS retries a failed invocation, so only a
//! passing ledger failure fails it. A malformed event, an interim one, one
//! from another sender, a duplicate, or one for an event the ledger does not
//! know are acknowledged, with a log line and a metric. A receipt that
//! arrives before the send is marked SENT is recorded all the same: the
//! record exists from the claim on, and marking it SENT keeps the receipt.

use serde::Serialize;
use tracing::Instrument;

use super::{EventSources, Pipeline};
use crate::domain::Receipt;
use crate::ledger::{DeliveryRecorded, LedgerError};
use crate::messenger::receipts::{Reading, read_event};

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptReport {
    pub recorded: u32,
    pub duplicates: u32,
    pub unknown_events: u32,
    /// Receipts naming the event but not the message it was sent as.
    pub other_messages: u32,
    pub interim: u32,
    pub not_ours: u32,
    /// Events from a topic other than ours (`RECEIPTS_TOPIC_ARN`).
    pub other_topics: u32,
    pub malformed: u32,
}

/// The two consumers the receipts function hosts, each a named handler:
/// [`record_sns_receipts`] for End User Messaging's delivery events (SNS)
/// and [`super::conversion::check_sqs_timers`] for the timers queue's
/// checks (SQS). They share one function because they share its pipeline,
/// its permissions and its ledger writes; which one an event is for is
/// read from the event itself, as Lambda gives no other sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// SNS's delivery events, answered with a [`ReceiptReport`].
    Receipts,
    /// The timers queue's checks, answered with `batchItemFailures` so
    /// undecided checks come back.
    Timers,
}

impl Consumer {
    /// An SQS batch goes to the timers; anything else is read as SNS's
    /// envelope, which counts what it cannot read as malformed.
    pub fn of(payload: &serde_json::Value) -> Self {
        match payload
            .pointer("/Records/0/eventSource")
            .and_then(|s| s.as_str())
        {
            Some("aws:sqs") => Consumer::Timers,
            _ => Consumer::Receipts,
        }
    }

    /// Runs the consumer the event is for, under a span that names it.
    pub async fn handle(
        pipeline: &Pipeline,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, LedgerError> {
        match Consumer::of(payload) {
            Consumer::Timers => Ok(super::conversion::check_sqs_timers(pipeline, payload)
                .instrument(tracing::info_span!("timers"))
                .await),
            Consumer::Receipts => {
                let report = record_sns_receipts(pipeline, payload)
                    .instrument(tracing::info_span!("receipts"))
                    .await?;
                Ok(serde_json::to_value(report).unwrap_or_default())
            }
        }
    }
}

/// The receipts Lambda's event: SNS's envelope (`Records[].Sns.Message`,
/// each the text of one delivery event). Read as plain JSON, so an
/// envelope of the wrong shape is counted as malformed and acknowledged,
/// not retried forever.
pub async fn record_sns_receipts(
    pipeline: &Pipeline,
    payload: &serde_json::Value,
) -> Result<ReceiptReport, LedgerError> {
    let records = payload.get("Records").and_then(|r| r.as_array());
    let topic = pipeline.settings.sources.receipts_topic.as_ref();
    let (ours, foreign): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = records
        .map(|rs| rs.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .partition(|r| {
            EventSources::trusts(topic, r.pointer("/Sns/TopicArn").and_then(|t| t.as_str()))
        });
    let other_topics = u32::try_from(foreign.len()).unwrap_or(u32::MAX);
    if other_topics > 0 {
        // Only our configuration set publishes to our topic; anything else
        // could forge a delivery (and so a call, or a conversion verdict).
        tracing::warn!(other_topics, "delivery events from another topic; dropped");
        for _ in 0..other_topics {
            pipeline.settings.metrics.receipt_ignored("OTHER_TOPIC");
        }
    }
    let messages: Vec<Option<&str>> = ours
        .into_iter()
        .map(|r| r.pointer("/Sns/Message").and_then(|m| m.as_str()))
        .collect();
    let unreadable = u32::try_from(
        messages.iter().filter(|m| m.is_none()).count() + usize::from(records.is_none()),
    )
    .unwrap_or(u32::MAX);
    if unreadable > 0 {
        tracing::warn!(unreadable, "an SNS envelope without a message; dropped");
        for _ in 0..unreadable {
            pipeline.settings.metrics.receipt_ignored("MALFORMED");
        }
    }
    let mut report = record_receipts(pipeline, messages.into_iter().flatten()).await?;
    report.malformed += unreadable;
    report.other_topics = other_topics;
    Ok(report)
}

/// The delivery events in one message of the receipts' dead-letter queue,
/// as End User Messaging published them: from Lambda's on-failure record
/// (`requestPayload` is the SNS event the function failed on) or from the
/// subscription's redrive (the SNS notification itself). `None` for a
/// message of neither kind.
pub fn dead_lettered_events(body: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let Some(records) = v
        .pointer("/requestPayload/Records")
        .and_then(|r| r.as_array())
    {
        let events: Vec<String> = records
            .iter()
            .filter_map(|r| r.pointer("/Sns/Message").and_then(|m| m.as_str()))
            .map(str::to_owned)
            .collect();
        return (!events.is_empty()).then_some(events);
    }
    if v.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
        return v
            .get("Message")
            .and_then(|m| m.as_str())
            .map(|m| vec![m.to_owned()]);
    }
    None
}

/// Records each event (the text of one SNS message). Fails only when the
/// ledger cannot be written now, so the invocation is retried; what was
/// recorded before stands, and its retry is a duplicate.
pub async fn record_receipts<'a>(
    pipeline: &Pipeline,
    events: impl IntoIterator<Item = &'a str>,
) -> Result<ReceiptReport, LedgerError> {
    let mut report = ReceiptReport::default();
    for text in events {
        let reading = match read_event(text) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "a delivery event that cannot be read; dropped");
                pipeline.settings.metrics.receipt_ignored("MALFORMED");
                report.malformed += 1;
                continue;
            }
        };
        match reading {
            Reading::Final(receipt) => {
                let span = tracing::info_span!(
                    "receipt",
                    event_id = %receipt.event_id,
                    message_id = %receipt.message_id,
                );
                let recorded = record_one(pipeline, &receipt).instrument(span).await?;
                match recorded {
                    DeliveryRecorded::Recorded => report.recorded += 1,
                    DeliveryRecorded::Duplicate => report.duplicates += 1,
                    DeliveryRecorded::UnknownEvent => report.unknown_events += 1,
                    DeliveryRecorded::OtherMessage => report.other_messages += 1,
                }
            }
            Reading::Interim { event_type } => {
                tracing::debug!(event_type, "an interim delivery event");
                pipeline.settings.metrics.receipt_ignored("INTERIM");
                report.interim += 1;
            }
            Reading::NotOurs { event_type } => {
                tracing::info!(event_type, "a delivery event for a message we did not send");
                pipeline.settings.metrics.receipt_ignored("NOT_OURS");
                report.not_ours += 1;
            }
        }
    }
    Ok(report)
}

async fn record_one(
    pipeline: &Pipeline,
    receipt: &Receipt,
) -> Result<DeliveryRecorded, LedgerError> {
    let outcome = pipeline
        .record("record_delivery", || {
            pipeline
                .ledger
                .receipts
                .record_delivery(receipt, pipeline.clock.now_ms())
        })
        .await
        .inspect_err(|e| tracing::error!(error = %e, "the receipt could not be recorded"))?;
    let metrics = &pipeline.settings.metrics;
    match outcome {
        DeliveryRecorded::Recorded => {
            tracing::info!(
                delivery = receipt.delivery.as_str(),
                event_type = receipt.event_type,
                status = receipt.status.as_deref().unwrap_or("-"),
                country = receipt.country.as_deref().unwrap_or("-"),
                delivery_ms = receipt.delivery_ms,
                "delivery receipt recorded"
            );
            metrics.receipt(receipt);
        }
        DeliveryRecorded::Duplicate => {
            tracing::debug!("a second final receipt; the first stands");
            metrics.receipt_ignored("DUPLICATE");
        }
        DeliveryRecorded::UnknownEvent => {
            tracing::info!("a receipt for an event the ledger does not hold");
            metrics.receipt_ignored("UNKNOWN_EVENT");
        }
        DeliveryRecorded::OtherMessage => {
            // Only the message we sent may change its record: a receipt
            // that names the event but not its message (a forged one, or
            // one about another send) could otherwise trigger a call.
            tracing::warn!("a receipt for the event but another message; not applied");
            metrics.receipt_ignored("OTHER_MESSAGE");
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_lettered_receipts_are_read_in_both_shapes() {
        let event = r#"{"eventType":"TEXT_DELIVERED","context":{"eventId":"e1"}}"#;
        let sns = serde_json::json!({"EventSource": "aws:sns", "Sns": {"Message": event}});
        let on_failure = serde_json::json!({
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": {"Records": [sns.clone(), sns]},
            "responsePayload": {"errorMessage": "ledger unavailable"}
        });
        assert_eq!(
            dead_lettered_events(&on_failure.to_string()),
            Some(vec![event.to_owned(), event.to_owned()])
        );
        let redriven = serde_json::json!({
            "Type": "Notification", "MessageId": "m1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:receipts", "Message": event
        });
        assert_eq!(
            dead_lettered_events(&redriven.to_string()),
            Some(vec![event.to_owned()])
        );
        for other in ["not json", "{}", r#"{"requestPayload": {"Records": []}}"#] {
            assert_eq!(dead_lettered_events(other), None, "{other}");
        }
    }
}
