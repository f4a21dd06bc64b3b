//! Rate counts on DynamoDB: one conditional `UpdateItem` per window that
//! counts an event id once.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::*;

#[async_trait]
impl RateCounts for DynamoLedger {
    #[tracing::instrument(level = "debug", skip_all, fields(scope = c.scope))]
    async fn count(&self, c: &RateCount<'_>) -> Result<RateDecision, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&c.record_key()))
            .update_expression("ADD #n :one, #ids :idset SET #exp = :exp")
            .condition_expression(
                "attribute_not_exists(pk) OR (NOT contains(#ids, :id) AND #n < :limit)",
            )
            .expression_attribute_names("#n", "count")
            .expression_attribute_names("#ids", "eventIds")
            .expression_attribute_names("#exp", "expiresAt")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":idset",
                AttributeValue::Ss(vec![c.event_id.as_str().to_owned()]),
            )
            .expression_attribute_values(":id", s(c.event_id.as_str()))
            .expression_attribute_values(":limit", n(i64::from(c.limit)))
            .expression_attribute_values(":exp", n(c.expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let count_of = |item: Option<&Item>| {
            item.and_then(|i| get_n(i, "count"))
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        match result {
            Ok(out) => Ok(RateDecision::Allowed {
                count: count_of(out.attributes()),
            }),
            Err(e) => {
                if let Some(UpdateItemError::ConditionalCheckFailedException(ccf)) =
                    e.as_service_error()
                {
                    let old = ccf.item();
                    let counted = old
                        .and_then(|i| i.get("eventIds"))
                        .and_then(|v| v.as_ss().ok())
                        .is_some_and(|ids| ids.iter().any(|id| id == c.event_id.as_str()));
                    let count = count_of(old);
                    return Ok(if counted {
                        RateDecision::Allowed { count }
                    } else {
                        RateDecision::Refused { count }
                    });
                }
                Err(ledger_error(&e))
            }
        }
    }
}
