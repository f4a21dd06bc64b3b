//! The learning guard's counts and blocks on DynamoDB.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::*;

#[async_trait]
impl GuardBook for DynamoLedger {
    #[tracing::instrument(level = "debug", skip_all, fields(scope = bump.scope))]
    async fn bump(&self, bump: &StatBump<'_>) -> Result<StatCounts, LedgerError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&bump.record_key()))
            .update_expression("ADD #judged :s, #conv :c SET #exp = :exp")
            .expression_attribute_names("#judged", "judged")
            .expression_attribute_names("#conv", "conversions")
            .expression_attribute_names("#exp", "expiresAt")
            .expression_attribute_values(":s", n(i64::from(bump.judged)))
            .expression_attribute_values(":c", n(i64::from(bump.conversions)))
            .expression_attribute_values(":exp", n(bump.expires_at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| ledger_error(&e))?;
        let count = |k| {
            out.attributes()
                .and_then(|a| get_n(a, k))
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        Ok(StatCounts {
            judged: count("judged"),
            conversions: count("conversions"),
        })
    }

    async fn blocks(&self, keys: &[(&str, &str)]) -> Result<Vec<GuardBlock>, LedgerError> {
        // One or two keys on the hot path: strongly consistent gets, in
        // parallel, cost less than a batch's retry loop.
        let gets = keys.iter().map(|(scope, k)| {
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(&block_key(scope, k)))
                .send()
        });
        let mut out = Vec::new();
        for got in futures::future::join_all(gets).await {
            let got = got.map_err(|e| ledger_error(&e))?;
            out.extend(got.item().and_then(block_from_item));
        }
        Ok(out)
    }

    async fn learn_block(&self, block: &GuardBlock, now_ms: i64) -> Result<bool, LedgerError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(block_item(block)))
            .condition_expression(
                "attribute_not_exists(pk) OR ((#kind = :learned OR #kind = :lifted) AND #until <= :now)",
            )
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":learned", s(BlockKind::Learned.as_str()))
            .expression_attribute_values(":lifted", s(BlockKind::Lifted.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        put_if(result)
    }

    async fn set_block(&self, block: &GuardBlock) -> Result<(), LedgerError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(block_item(block)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ledger_error(&e))
    }

    async fn list_blocks(&self) -> Result<Vec<GuardBlock>, LedgerError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :blk)")
            .expression_attribute_values(":blk", s("blk#"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ledger_error(&e))?;
            out.extend(page.items().iter().filter_map(block_from_item));
        }
        out.sort_by(|a, b| (&a.scope, &a.key).cmp(&(&b.scope, &b.key)));
        Ok(out)
    }
}
