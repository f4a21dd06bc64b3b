//! The ledger on DynamoDB: one table, `pk` as the only key.
//!
//! Event records are `pk = "evt#<eventId>"` with `status`, `leaseUntil`
//! (epoch ms), `attempts`, `channel`, `messageId`, `failure`, `owner`,
//! `updatedAt` (epoch ms) and `expiresAt` (epoch s, the table's TTL
//! attribute). Every state change is one `UpdateItem` with a condition, so
//! concurrent workers cannot both win a claim.
//!
//! A noted send adds `sentAt`, `otpExpiresAt`, `prefix`, `signal`,
//! `guardJudged` and `userChannel`; the sparse global secondary index
//! [`BY_USER_INDEX`] (`userChannel`, `sentAt`) finds a user's latest send of
//! a kind for Okta's event. Conversion is `conversion` and `convertedAt`;
//! the guard's early judgement `judgedAt`. Guard counts are `stat#…` items
//! with `judged` and `conversions`; guard blocks are `blk#…` items; Okta
//! event uuids already seen are `evh#…` items.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::aws::classify;
use crate::domain::EventId;
use crate::domain::channel::Channel;
use crate::domain::{Conversion, DeliveryVerdict, Receipt, UseSignal};
use crate::ledger::{
    BlockKind, Claim, ClaimEnd, ClaimOutcome, DeliveryRecord, DeliveryRecorded, GuardBlock, Ledger,
    LedgerError, LedgerRecord, RateCount, RateDecision, Resolution, SendNote, SentRecord, SignIn,
    SignInMatch, StatBump, StatCounts, Status, block_key, claimable, outcome_of_conflict,
};

/// The index a sign-in finds the user's latest send by: partition key
/// `userChannel`, sort key `sentAt`, projecting `otpExpiresAt`. The
/// template declares it; so do the emulator scripts.
pub const BY_USER_INDEX: &str = "byUser";

#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(event_id: &EventId) -> AttributeValue {
    s(&format!("evt#{}", event_id.as_str()))
}

fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads a record; `None` for an item that is not an event record.
pub fn record_from_item(item: &Item) -> Option<LedgerRecord> {
    let pk = get_s(item, "pk")?;
    let event_id = pk.strip_prefix("evt#")?.to_owned();
    Some(LedgerRecord {
        event_id,
        status: Status::parse(&get_s(item, "status")?)?,
        lease_until_ms: get_n(item, "leaseUntil").unwrap_or(0),
        attempts: get_n(item, "attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0),
        channel: get_s(item, "channel").and_then(|c| Channel::parse(&c).ok()),
        message_id: get_s(item, "messageId"),
        failure: get_s(item, "failure"),
        owner: get_s(item, "owner"),
        correlation_id: get_s(item, "oktaRequest"),
        country: get_s(item, "country"),
        updated_at_ms: get_n(item, "updatedAt").unwrap_or(0),
        expires_at: get_n(item, "expiresAt").unwrap_or(0),
        delivery: delivery_from_item(item),
        sent: sent_from_item(item),
        fallback_ms: get_n(item, "fallbackAt"),
    })
}

fn sent_from_item(item: &Item) -> Option<SentRecord> {
    Some(SentRecord {
        sent_ms: get_n(item, "sentAt")?,
        otp_expires_ms: get_n(item, "otpExpiresAt").unwrap_or(0),
        prefix: get_s(item, "prefix").unwrap_or_default(),
        user_channel: get_s(item, "userChannel"),
        signal: get_s(item, "signal").and_then(|v| UseSignal::parse(&v)),
        guard: get_bool(item, "guardJudged"),
        judged_ms: get_n(item, "judgedAt"),
        conversion: get_s(item, "conversion")
            .and_then(|c| Conversion::parse(&c))
            .map(|c| (c, get_n(item, "convertedAt").unwrap_or(0))),
    })
}

fn resolution_from_item(item: &Item) -> Option<Resolution> {
    Some(Resolution {
        event_id: get_s(item, "pk")?.strip_prefix("evt#")?.to_owned(),
        message_id: get_s(item, "messageId"),
        country: get_s(item, "country"),
        prefix: get_s(item, "prefix"),
        channel: get_s(item, "channel").and_then(|c| Channel::parse(&c).ok()),
        sent_ms: get_n(item, "sentAt").unwrap_or(0),
        otp_expires_ms: get_n(item, "otpExpiresAt").unwrap_or(0),
        signal: get_s(item, "signal").and_then(|v| UseSignal::parse(&v)),
        guard: get_bool(item, "guardJudged"),
        was_judged: item.contains_key("judgedAt"),
    })
}

fn get_bool(item: &Item, k: &str) -> bool {
    item.get(k).and_then(|v| v.as_bool().ok()).copied() == Some(true)
}

fn block_from_item(item: &Item) -> Option<GuardBlock> {
    let count = |k| {
        get_n(item, k)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    Some(GuardBlock {
        scope: get_s(item, "scope")?,
        key: get_s(item, "key")?,
        kind: BlockKind::parse(&get_s(item, "kind")?)?,
        until_ms: get_n(item, "until"),
        reason: get_s(item, "reason").unwrap_or_default(),
        judged: count("judged"),
        conversions: count("conversions"),
        since_ms: get_n(item, "since").unwrap_or(0),
    })
}

fn block_item(b: &GuardBlock) -> Item {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(&b.record_key())),
        ("scope".to_owned(), s(&b.scope)),
        ("key".to_owned(), s(&b.key)),
        ("kind".to_owned(), s(b.kind.as_str())),
        ("reason".to_owned(), s(&b.reason)),
        ("judged".to_owned(), n(i64::from(b.judged))),
        ("conversions".to_owned(), n(i64::from(b.conversions))),
        ("since".to_owned(), n(b.since_ms)),
    ]);
    if let Some(u) = b.until_ms {
        item.insert("until".to_owned(), n(u));
    }
    item
}

/// The delivery receipt's attributes, when the record has one.
fn delivery_from_item(item: &Item) -> Option<DeliveryRecord> {
    Some(DeliveryRecord {
        delivery: DeliveryVerdict::parse(&get_s(item, "delivery")?)?,
        event_type: get_s(item, "deliveryEvent").unwrap_or_default(),
        status: get_s(item, "deliveryStatus"),
        description: get_s(item, "deliveryDescription"),
        mcc: get_s(item, "mcc"),
        mnc: get_s(item, "mnc"),
        delivery_ms: get_n(item, "deliveryMs"),
        message_id: get_s(item, "deliveryMessageId").unwrap_or_default(),
        reported_at_ms: get_n(item, "deliveryReportedAt").unwrap_or(0),
    })
}

fn ledger_error<E>(
    e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> LedgerError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    let c = classify(e);
    if c.retryable {
        LedgerError::Unavailable(c.code)
    } else {
        LedgerError::Rejected(c.code)
    }
}

/// A conditional update that decides a send: the record it returned, or
/// `None` when the condition found it decided already.
fn decided(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<Option<Resolution>, LedgerError> {
    match result {
        Ok(out) => Ok(out.attributes().and_then(resolution_from_item)),
        Err(e) if is_condition_failure(&e) => Ok(None),
        Err(e) => Err(ledger_error(&e)),
    }
}

fn is_condition_failure(
    e: &aws_sdk_dynamodb::error::SdkError<
        UpdateItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            table: table.into(),
        }
    }

    /// Every event record, for reports (`telehook report`): a paginated,
    /// eventually consistent scan of the `evt#` items, without the rate
    /// counters. Not for the hot path.
    pub async fn event_records(&self) -> Result<Vec<LedgerRecord>, LedgerError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :evt)")
            .expression_attribute_values(":evt", s("evt#"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ledger_error(&e))?;
            out.extend(page.items().iter().filter_map(record_from_item));
        }
        Ok(out)
    }

    /// The counts of one scope (`stat#<scope>#…` items), as (key, window,
    /// counts), for reports: a paginated scan, not for the hot path.
    pub async fn stats(&self, scope: &str) -> Result<Vec<(String, i64, StatCounts)>, LedgerError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", s(&format!("stat#{scope}#")))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ledger_error(&e))?;
            for item in page.items() {
                let Some((key, window)) =
                    get_s(item, "pk").and_then(|pk| crate::ledger::stat_key_parts(&pk, scope))
                else {
                    continue;
                };
                let count = |k| {
                    get_n(item, k)
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(0)
                };
                out.push((
                    key,
                    window,
                    StatCounts {
                        judged: count("judged"),
                        conversions: count("conversions"),
                    },
                ));
            }
        }
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(out)
    }

    fn update(
        &self,
        event_id: &EventId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(event_id))
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#lease", "leaseUntil")
            .expression_attribute_names("#updated", "updatedAt")
    }

    /// An update only the claim's holder may make, recording `reason`.
    fn holder_update(
        &self,
        event_id: &EventId,
        owner: &str,
        reason: &str,
        now_ms: i64,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.update(event_id)
            .condition_expression("#s = :inprog AND #owner = :owner")
            .expression_attribute_names("#failure", "failure")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":inprog", s(Status::InProgress.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now_ms))
    }
}

/// The outcome of a conditional update. What a failed condition means
/// depends on the write: a terminal write finds the record already settled
/// (`Ok`); a holder's update has lost its claim.
fn conditional<T>(
    result: Result<
        T,
        aws_sdk_dynamodb::error::SdkError<
            UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
    on_conflict: Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failure(&e) => on_conflict,
        Err(e) => Err(ledger_error(&e)),
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
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

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn mark_sent(
        &self,
        event_id: &EventId,
        message_id: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        let result = self
            .update(event_id)
            // The failure of an earlier try is history once the send went
            // through: a SENT record must not read as failed.
            .update_expression("SET #s = :sent, #mid = :mid, #lease = :zero, #updated = :now, #exp = if_not_exists(#exp, :exp) REMOVE #failure")
            .condition_expression("attribute_not_exists(pk) OR #s <> :sent")
            .expression_attribute_names("#mid", "messageId")
            .expression_attribute_names("#failure", "failure")
            .expression_attribute_names("#exp", "expiresAt")
            .expression_attribute_values(":sent", s(Status::Sent.as_str()))
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":exp", n(now_ms / 1000 + 86_400))
            .send()
            .await;
        // Already SENT: the first message id stays.
        conditional(result, Ok(()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn end_claim(
        &self,
        event_id: &EventId,
        owner: &str,
        end: ClaimEnd,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        let update = self.holder_update(event_id, owner, reason, now_ms);
        let update = match end.status() {
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
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(event_id))
            .update_expression("SET #judged = :now, #updated = :now")
            .condition_expression(
                "#s = :sent AND #guard = :yes AND attribute_not_exists(#conv) \
                 AND attribute_not_exists(#judged)",
            )
            .expression_attribute_names("#judged", "judgedAt")
            .expression_attribute_names("#updated", "updatedAt")
            .expression_attribute_names("#s", "status")
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
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_),
                ) => Ok(false),
                _ => Err(ledger_error(&e)),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %event_id))]
    async fn mark_unused(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Resolution>, LedgerError> {
        // Not `self.update`: DynamoDB refuses names an expression does not use.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(event_id))
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#updated", "updatedAt")
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
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_),
                ) => Ok(false),
                _ => Err(ledger_error(&e)),
            },
        }
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
