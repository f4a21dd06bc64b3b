//! Conversions on DynamoDB: noting sends, matching Okta's events by the
//! `byUser` index, and deciding each send once.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::*;

#[async_trait]
impl Conversions for DynamoLedger {
    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %note.event_id))]
    async fn note_send(&self, note: &SendNote<'_>) -> Result<(), LedgerError> {
        let mut set = String::from(
            "SET #sentAt = :sent, #otpExp = :otpExp, #prefix = :prefix, #guard = :guard",
        );
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(note.event_id))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#sentAt", "sentAt")
            .expression_attribute_names("#otpExp", "otpExpiresAt")
            .expression_attribute_names("#prefix", "prefix")
            .expression_attribute_names("#guard", "guardJudged")
            .expression_attribute_values(":sent", n(note.sent_ms))
            .expression_attribute_values(":otpExp", n(note.otp_expires_ms))
            .expression_attribute_values(":prefix", s(note.prefix))
            .expression_attribute_values(":guard", AttributeValue::Bool(note.guard));
        if let Some(signal) = note.signal {
            set.push_str(", #signal = :signal");
            update = update
                .expression_attribute_names("#signal", "signal")
                .expression_attribute_values(":signal", s(signal.as_str()));
        }
        if let Some(uc) = note.index_key() {
            set.push_str(", #uc = :uc");
            update = update
                .expression_attribute_names("#uc", "userChannel")
                .expression_attribute_values(":uc", s(&uc));
        }
        let result = update.update_expression(set).send().await;
        // A record that is gone (its TTL ran) takes nothing.
        conditional(result, Ok(()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(signal = sign_in.signal.as_str()))]
    async fn convert(&self, sign_in: &SignIn<'_>) -> Result<SignInMatch, LedgerError> {
        // Per channel it may be, the latest send at or before the event.
        let mut latest: Option<Item> = None;
        for uc in sign_in.index_keys() {
            let found = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_USER_INDEX)
                .key_condition_expression("#uc = :uc AND #sentAt <= :at")
                .expression_attribute_names("#uc", "userChannel")
                .expression_attribute_names("#sentAt", "sentAt")
                .expression_attribute_values(":uc", s(&uc))
                .expression_attribute_values(":at", n(sign_in.at_ms))
                .scan_index_forward(false)
                .limit(1)
                .send()
                .await
                .map_err(|e| ledger_error(&e))?;
            if let Some(item) = found.items().first() {
                let newer = latest
                    .as_ref()
                    .is_none_or(|l| get_n(item, "sentAt") > get_n(l, "sentAt"));
                if newer {
                    latest = Some(item.clone());
                }
            }
        }
        let Some(latest) = latest else {
            return Ok(SignInMatch::NoSend);
        };
        let latest = &latest;
        let Some(pk) = get_s(latest, "pk") else {
            return Ok(SignInMatch::NoSend);
        };
        if get_n(latest, "otpExpiresAt").is_some_and(|e| e < sign_in.at_ms) {
            return Ok(SignInMatch::Expired);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #conv = :conv, #convAt = :at, #updated = :at")
            .condition_expression("#s = :sent AND attribute_not_exists(#conv)")
            .expression_attribute_names("#conv", "conversion")
            .expression_attribute_names("#convAt", "convertedAt")
            .expression_attribute_names("#updated", "updatedAt")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":conv", s(Conversion::Converted.as_str()))
            .expression_attribute_values(":at", n(sign_in.at_ms))
            .expression_attribute_values(":sent", s(Status::Sent.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes()
                .and_then(resolution_from_item)
                .map_or(SignInMatch::AlreadyResolved, SignInMatch::Converted)),
            Err(e) if is_condition_failure(&e) => Ok(SignInMatch::AlreadyResolved),
            Err(e) => Err(ledger_error(&e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn judge(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError> {
        let result = self
            .record_update(event_id)
            .update_expression("SET #judged = :now, #updated = :now")
            .condition_expression(
                "#s = :sent AND #guard = :yes AND attribute_not_exists(#conv) \
                 AND attribute_not_exists(#judged)",
            )
            .expression_attribute_names("#judged", "judgedAt")
            .expression_attribute_names("#guard", "guardJudged")
            .expression_attribute_names("#conv", "conversion")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":sent", s(Status::Sent.as_str()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            // As it was before: `was_judged` is about earlier judgements.
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        decided(result)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn first_sight(&self, uuid: &str, expires_at: i64) -> Result<bool, LedgerError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("evh#{uuid}")))
            .item("expiresAt", n(expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        put_if(result)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn mark_unused(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError> {
        let result = self
            .record_update(event_id)
            .update_expression("SET #conv = :conv, #convAt = :now, #updated = :now")
            .condition_expression("#s = :sent AND attribute_not_exists(#conv) AND #otpExp <= :now")
            .expression_attribute_names("#conv", "conversion")
            .expression_attribute_names("#convAt", "convertedAt")
            .expression_attribute_names("#otpExp", "otpExpiresAt")
            .expression_attribute_values(":conv", s(Conversion::Unused.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":sent", s(Status::Sent.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        decided(result)
    }
}
