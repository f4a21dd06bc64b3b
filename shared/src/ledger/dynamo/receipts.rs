//! Delivery receipts and the voice fallback's claim on DynamoDB.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::*;

#[async_trait]
impl ReceiptLog for DynamoLedger {
    /// One conditional update: the record exists and has no receipt yet.
    /// A failed condition reads the record back (`ALL_OLD`) to tell an
    /// unknown event from a duplicate receipt.
    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %receipt.event_id))]
    async fn record_delivery(
        &self,
        receipt: &Receipt,
        now_ms: i64,
    ) -> Result<DeliveryRecorded, LedgerError> {
        let mut sets = vec![
            "delivery = :d",
            "deliveryEvent = :e",
            "deliveryMessageId = :m",
            "deliveryReportedAt = :r",
            "updatedAt = :now",
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&receipt.event_id))
            // A record not yet marked sent has no message id to compare.
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(delivery) \
                 AND (attribute_not_exists(messageId) OR messageId = :m)",
            )
            .expression_attribute_values(":d", s(receipt.delivery.as_str()))
            .expression_attribute_values(":e", s(&receipt.event_type))
            .expression_attribute_values(":m", s(&receipt.message_id))
            .expression_attribute_values(":r", n(receipt.reported_at_ms))
            .expression_attribute_values(":now", n(now_ms));
        for (attr, placeholder, value) in [
            ("deliveryStatus", ":st", &receipt.status),
            ("deliveryDescription", ":ds", &receipt.description),
            ("mcc", ":mcc", &receipt.mcc),
            ("mnc", ":mnc", &receipt.mnc),
        ] {
            if let Some(v) = value {
                sets.push(match attr {
                    "deliveryStatus" => "deliveryStatus = :st",
                    "deliveryDescription" => "deliveryDescription = :ds",
                    "mcc" => "mcc = :mcc",
                    _ => "mnc = :mnc",
                });
                update = update.expression_attribute_values(placeholder, s(v));
            }
        }
        if let Some(ms) = receipt.delivery_ms {
            sets.push("deliveryMs = :ms");
            update = update.expression_attribute_values(":ms", n(ms));
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(DeliveryRecorded::Recorded),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    Ok(match ccf.item() {
                        None => DeliveryRecorded::UnknownEvent,
                        Some(old) if old.contains_key("delivery") => DeliveryRecorded::Duplicate,
                        Some(_) => DeliveryRecorded::OtherMessage,
                    })
                }
                _ => Err(ledger_error(&e)),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn claim_fallback(&self, event_id: &EventId, now_ms: i64) -> Result<bool, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(event_id))
            .update_expression("SET #fb = :now")
            .condition_expression("#s = :sent AND attribute_not_exists(#fb)")
            .expression_attribute_names("#fb", "fallbackAt")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":sent", s(Status::Sent.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(ledger_error(&e)),
        }
    }
}
