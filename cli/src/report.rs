//! `telehook report`: what became of the codes, by country and channel:
//! sends, delivered, undelivered, still without a receipt, the delivery
//! rate and the time to delivery (p50, p99). From local mode's ledger
//! snapshot (written by `telehook serve` when it stops) or, with `--aws`,
//! from the ledger table. It reads event records only, which hold a
//! country and never a number.
//!
//! The snapshot's format is also here ([`snapshot_line`],
//! [`record_from_snapshot`]), since `serve` writes it and `bench` reads it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use telehook::domain::DeliveryVerdict;
use telehook::ledger::{DeliveryRecord, LedgerRecord, Status};

use crate::local::Error;
use crate::ops::{Source, resolve};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Where `telehook serve` keeps its state (and its ledger snapshot).
    #[arg(long, default_value = ".telehook")]
    pub state_dir: PathBuf,
    /// Read the ledger table instead (normal AWS SDK environment).
    #[arg(long)]
    pub aws: bool,
    /// With --aws: find the table from this stack's outputs.
    #[arg(long)]
    pub stack: Option<String>,
    /// With --aws: the ledger table [or --stack, or LEDGER_TABLE].
    #[arg(long)]
    pub table: Option<String>,
}

/// The snapshot's line for one record: states, country and receipt; no
/// number, no code.
pub fn snapshot_line(r: &LedgerRecord) -> serde_json::Value {
    let d = r.delivery.as_ref();
    serde_json::json!({
        "eventId": r.event_id, "status": r.status.as_str(), "attempts": r.attempts,
        "messageId": r.message_id, "failure": r.failure,
        "channel": r.channel.map(|c| c.as_str()), "country": r.country,
        "delivery": d.map(|d| d.delivery.as_str()),
        "deliveryEvent": d.map(|d| d.event_type.as_str()),
        "deliveryMs": d.and_then(|d| d.delivery_ms),
    })
}

/// A record read back from the snapshot.
pub fn record_from_snapshot(v: &serde_json::Value) -> Option<LedgerRecord> {
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let delivery = v["delivery"]
        .as_str()
        .and_then(DeliveryVerdict::parse)
        .map(|verdict| DeliveryRecord {
            delivery: verdict,
            event_type: text("deliveryEvent").unwrap_or_default(),
            status: None,
            description: None,
            mcc: None,
            mnc: None,
            delivery_ms: v["deliveryMs"].as_i64(),
            message_id: text("messageId").unwrap_or_default(),
            reported_at_ms: 0,
        });
    Some(LedgerRecord {
        event_id: text("eventId")?,
        status: Status::parse(v["status"].as_str()?)?,
        lease_until_ms: 0,
        attempts: v["attempts"]
            .as_u64()
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0),
        channel: v["channel"]
            .as_str()
            .and_then(|c| telehook::domain::Channel::parse(c).ok()),
        message_id: text("messageId"),
        failure: text("failure"),
        owner: None,
        correlation_id: None,
        country: text("country"),
        updated_at_ms: 0,
        expires_at: 0,
        delivery,
        sent: None,
    })
}

/// One row of the report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Row {
    pub sent: u64,
    pub delivered: u64,
    pub undelivered: u64,
    /// Sent, and no final receipt yet.
    pub awaiting: u64,
    /// Times to delivery of the delivered ones, in ms.
    times: Vec<i64>,
}

impl Row {
    /// Delivered over those with a final receipt.
    pub fn delivery_rate(&self) -> Option<f64> {
        let judged = self.delivered + self.undelivered;
        (judged > 0).then(|| self.delivered as f64 / judged as f64)
    }

    /// The `q` quantile (nearest rank) of the times to delivery.
    pub fn time_quantile(&self, q: f64) -> Option<i64> {
        let mut t = self.times.clone();
        t.sort_unstable();
        let rank = ((q * t.len() as f64).ceil() as usize).clamp(1, t.len().max(1));
        t.get(rank - 1).copied()
    }
}

/// Rows by (country, channel), over the records that were sent.
pub fn tally(records: &[LedgerRecord]) -> BTreeMap<(String, String), Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Sent) {
        let key = (
            r.country.clone().unwrap_or_else(|| "??".into()),
            r.channel.map_or("?", |c| c.as_str()).to_owned(),
        );
        let row = rows.entry(key).or_default();
        row.sent += 1;
        match &r.delivery {
            Some(d) if d.delivery == DeliveryVerdict::Delivered => {
                row.delivered += 1;
                row.times.extend(d.delivery_ms);
            }
            Some(_) => row.undelivered += 1,
            None => row.awaiting += 1,
        }
    }
    rows
}

fn render(rows: &BTreeMap<(String, String), Row>) -> String {
    let mut out = format!(
        "{:<8} {:<7} {:>7} {:>9} {:>11} {:>8} {:>9} {:>9} {:>9}\n",
        "country",
        "channel",
        "sent",
        "delivered",
        "undelivered",
        "awaiting",
        "rate",
        "p50 ms",
        "p99 ms"
    );
    let dash = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    for ((country, channel), row) in rows {
        out.push_str(&format!(
            "{:<8} {:<7} {:>7} {:>9} {:>11} {:>8} {:>9} {:>9} {:>9}\n",
            country,
            channel,
            row.sent,
            row.delivered,
            row.undelivered,
            row.awaiting,
            row.delivery_rate()
                .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
            dash(row.time_quantile(0.5)),
            dash(row.time_quantile(0.99)),
        ));
    }
    if rows.is_empty() {
        out.push_str("(no codes sent)\n");
    }
    out
}

/// `telehook report`.
pub async fn report(args: ReportArgs) -> Result<(), Error> {
    let records = if args.aws {
        let sdk = telehook::aws::load_sdk_config().await;
        let table = resolve(
            &sdk,
            args.table,
            args.stack.as_deref(),
            Source {
                flag: "--table",
                output: "LedgerTableName",
                env: "LEDGER_TABLE",
            },
        )
        .await?;
        telehook::ledger::DynamoLedger::new(telehook::aws::DynamoDbClient::new(&sdk), table)
            .event_records()
            .await?
    } else {
        let path = args.state_dir.join("ledger-snapshot.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (telehook serve writes it when it stops; or use --aws)",
                path.display()
            )
        })?;
        let lines: Vec<serde_json::Value> = serde_json::from_str(&text)?;
        lines.iter().filter_map(record_from_snapshot).collect()
    };
    outln!("{}", render(&tally(&records)).trim_end());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(country: &str, delivery: Option<(DeliveryVerdict, i64)>) -> LedgerRecord {
        let line = serde_json::json!({
            "eventId": "e", "status": "SENT", "attempts": 1, "messageId": "m",
            "channel": "sms", "country": country,
            "delivery": delivery.map(|d| d.0.as_str()), "deliveryEvent": "TEXT_DELIVERED",
            "deliveryMs": delivery.map(|d| d.1),
        });
        record_from_snapshot(&line).unwrap()
    }

    #[test]
    fn rows_count_rates_and_times_by_country() {
        let mut records: Vec<LedgerRecord> = (1..=100)
            .map(|i| rec("US", Some((DeliveryVerdict::Delivered, i * 10))))
            .collect();
        records.push(rec("US", Some((DeliveryVerdict::Undelivered, 0))));
        records.push(rec("GB", None));
        let rows = tally(&records);
        let us = &rows[&("US".to_owned(), "sms".to_owned())];
        assert_eq!(
            (us.sent, us.delivered, us.undelivered, us.awaiting),
            (101, 100, 1, 0)
        );
        assert_eq!(us.time_quantile(0.5), Some(500));
        assert_eq!(us.time_quantile(0.99), Some(990));
        assert!((us.delivery_rate().unwrap() - 100.0 / 101.0).abs() < 1e-9);
        let gb = &rows[&("GB".to_owned(), "sms".to_owned())];
        assert_eq!((gb.awaiting, gb.delivery_rate()), (1, None));
        let text = render(&rows);
        assert!(text.contains("99.0%") && text.contains("GB"), "{text}");
        // A snapshot line round-trips.
        let back = record_from_snapshot(&snapshot_line(&records[0])).unwrap();
        assert_eq!(back.country.as_deref(), Some("US"));
        assert_eq!(back.delivery.unwrap().delivery_ms, Some(10));
    }
}
