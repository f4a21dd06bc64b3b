//! The ledger on DynamoDB: one table, `pk` as the only key.
//!
//! Event records are `pk = "evt#<eventId>"` with `status`, `leaseUntil`
//! (epoch ms), `attempts`, `channel`, `messageId`, `route` (once sent),
//! `failure`, `owner`,
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
//! event uuids already seen are `evh#…` items; the last send to each person
//! (resends) is an `lst#…` item with `eventId`, `route` and `sentAt`.

mod claims;
mod conversions;
mod guard;
mod rates;
mod receipts;
mod resends;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::classify;
use crate::domain::EventId;
use crate::domain::channel::Channel;
use crate::domain::{Conversion, DeliveryVerdict, Receipt, Route, UseSignal};
use crate::ledger::{
    BlockKind, Claim, ClaimOutcome, Claims, Conversions, DeliveryRecord, DeliveryRecorded,
    EndClaim, GuardBlock, GuardBook, LastSend, LedgerError, LedgerRecord, RateCount, RateCounts,
    RateDecision, ReceiptLog, Resends, Resolution, SendConfirmed, SendNote, SentRecord, SignIn,
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
        route: get_s(item, "route").and_then(|r| Route::parse(&r)),
        failure: get_s(item, "failure"),
        owner: get_s(item, "owner"),
        correlation_id: get_s(item, "oktaRequest"),
        country: get_s(item, "country"),
        destination: get_s(item, "destination"),
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
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let c = classify(e);
    if c.retryable {
        LedgerError::Unavailable(c.detail)
    } else {
        LedgerError::Rejected(c.detail)
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

/// A put made only if its condition holds: `false` when it did not.
fn put_if(
    result: Result<
        aws_sdk_dynamodb::operation::put_item::PutItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::put_item::PutItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<bool, LedgerError> {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    match result {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
            _ => Err(ledger_error(&e)),
        },
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

    /// An update of an event record naming its status and update time
    /// (DynamoDB refuses names an expression does not use, so the lease is
    /// added by [`Self::update`] only).
    fn record_update(
        &self,
        event_id: &EventId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(event_id))
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#updated", "updatedAt")
    }

    /// An update of a claim: status, lease and update time.
    fn update(
        &self,
        event_id: &EventId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.record_update(event_id)
            .expression_attribute_names("#lease", "leaseUntil")
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
