//! Resends on DynamoDB: one `lst#<key>` item per person, overwritten by
//! each confirmed send, with a TTL.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl Resends for DynamoLedger {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn last_send(&self, key: &str) -> Result<Option<LastSend>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&LastSend::record_key(key)))
            // A resend comes seconds after the send it follows.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ledger_error(&e))?;
        Ok(out.item().and_then(|item| {
            Some(LastSend {
                event_id: get_s(item, "eventId")?,
                route: Route::parse(&get_s(item, "route")?)?,
                sent_ms: get_n(item, "sentAt")?,
            })
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn note_last_send(
        &self,
        key: &str,
        last: &LastSend,
        expires_at: i64,
    ) -> Result<(), LedgerError> {
        // UpdateItem, which the sending functions may already use; no
        // condition: the latest send is the one to remember.
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&LastSend::record_key(key)))
            .update_expression("SET eventId = :e, #route = :r, sentAt = :t, expiresAt = :x")
            .expression_attribute_names("#route", "route")
            .expression_attribute_values(":e", s(&last.event_id))
            .expression_attribute_values(":r", s(last.route.as_str()))
            .expression_attribute_values(":t", n(last.sent_ms))
            .expression_attribute_values(":x", n(expires_at))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ledger_error(&e))
    }
}
