//! Claims on DynamoDB: every state change of an event record is one
//! conditional `UpdateItem`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::*;

#[async_trait]
impl Claims for DynamoLedger {
    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %c.event_id))]
    async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, LedgerError> {
        let mut set = String::from(
            "SET #s = :inprog, #lease = :lease, #owner = :owner, \
             #attempts = if_not_exists(#attempts, :zero) + :one, \
             #channel = :channel, #updated = :now, #exp = :exp",
        );
        let mut update = self.update(c.event_id);
        if let Some(id) = c.correlation_id {
            set.push_str(", #okta = :okta");
            update = update
                .expression_attribute_names("#okta", "oktaRequest")
                .expression_attribute_values(":okta", s(id));
        }
        if let Some(country) = c.country {
            set.push_str(", #country = :country");
            update = update
                .expression_attribute_names("#country", "country")
                .expression_attribute_values(":country", s(country));
        }
        if let Some(destination) = c.destination {
            set.push_str(", #dest = :dest");
            update = update
                .expression_attribute_names("#dest", "destination")
                .expression_attribute_values(":dest", s(destination));
        }
        let result = update
            .update_expression(set)
            .condition_expression("attribute_not_exists(pk) OR (#s = :inprog AND #lease <= :now)")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#channel", "channel")
            .expression_attribute_names("#exp", "expiresAt")
            .expression_attribute_values(":inprog", s(Status::InProgress.as_str()))
            .expression_attribute_values(":lease", n(c.now_ms + c.lease_ms))
            .expression_attribute_values(":owner", s(c.owner))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(i64::from(c.sends)))
            .expression_attribute_values(":channel", s(c.channel.as_str()))
            .expression_attribute_values(":now", n(c.now_ms))
            .expression_attribute_values(":exp", n(c.expires_at))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let attempts = out
                    .attributes()
                    .and_then(|a| get_n(a, "attempts"))
                    .and_then(|a| u32::try_from(a).ok())
                    .unwrap_or(u32::from(c.sends));
                Ok(ClaimOutcome::Claimed { attempts })
            }
            Err(e) => {
                if let Some(UpdateItemError::ConditionalCheckFailedException(ccf)) =
                    e.as_service_error()
                {
                    let existing = ccf.item().and_then(record_from_item);
                    return Ok(match existing {
                        Some(r) if !claimable(Some(&r), c.now_ms) => outcome_of_conflict(&r),
                        // The condition failed on a record we cannot read:
                        // treat it as held, so nothing is sent twice.
                        _ => ClaimOutcome::Busy { lease_until_ms: 0 },
                    });
                }
                Err(ledger_error(&e))
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %sent.event_id))]
    async fn mark_sent(&self, sent: &SendConfirmed<'_>) -> Result<(), LedgerError> {
        let result = self
            .update(sent.event_id)
            // The failure of an earlier try is history once the send went
            // through: a SENT record must not read as failed.
            .update_expression("SET #s = :sent, #mid = :mid, #route = :route, #lease = :zero, #updated = :now, #exp = if_not_exists(#exp, :exp) REMOVE #failure")
            .condition_expression("attribute_not_exists(pk) OR #s <> :sent")
            .expression_attribute_names("#mid", "messageId")
            .expression_attribute_names("#route", "route")
            .expression_attribute_names("#failure", "failure")
            .expression_attribute_names("#exp", "expiresAt")
            .expression_attribute_values(":sent", s(Status::Sent.as_str()))
            .expression_attribute_values(":mid", s(sent.message_id))
            .expression_attribute_values(":route", s(sent.route.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(sent.now_ms))
            .expression_attribute_values(":exp", n(sent.now_ms / 1000 + 86_400))
            .send()
            .await;
        // Already SENT: the first message id stays.
        conditional(result, Ok(()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %e.event_id))]
    /// Only the claim's holder may; the reason recorded, the lease ended.
    async fn end_claim(&self, e: &EndClaim<'_>) -> Result<(), LedgerError> {
        let update = self
            .update(e.event_id)
            .condition_expression("#s = :inprog AND #owner = :owner")
            .expression_attribute_names("#failure", "failure")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":inprog", s(Status::InProgress.as_str()))
            .expression_attribute_values(":owner", s(e.owner))
            .expression_attribute_values(":why", s(e.reason))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(e.now_ms));
        let update = match e.end.status() {
            Some(status) => update
                .update_expression(
                    "SET #s = :end, #failure = :why, #lease = :zero, #updated = :now",
                )
                .expression_attribute_values(":end", s(status.as_str())),
            // Released: still IN_PROGRESS, the lease given up.
            None => {
                update.update_expression("SET #failure = :why, #lease = :zero, #updated = :now")
            }
        };
        conditional(update.send().await, Err(LedgerError::LostClaim))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn mark_expired(
        &self,
        event_id: &EventId,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), LedgerError> {
        let result = self
            .update(event_id)
            .update_expression("SET #s = :expired, #lease = :zero, #updated = :now, #exp = if_not_exists(#exp, :exp)")
            .condition_expression("attribute_not_exists(pk) OR #s = :inprog")
            .expression_attribute_names("#exp", "expiresAt")
            .expression_attribute_values(":expired", s(Status::Expired.as_str()))
            .expression_attribute_values(":inprog", s(Status::InProgress.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":exp", n(expires_at))
            .send()
            .await;
        // Already SENT, FAILED or EXPIRED: nothing to change.
        conditional(result, Ok(()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn get(&self, event_id: &EventId) -> Result<Option<LedgerRecord>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(event_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ledger_error(&e))?;
        Ok(out.item().and_then(record_from_item))
    }
}
