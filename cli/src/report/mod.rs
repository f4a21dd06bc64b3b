//! `telehook report`: what became of the codes. By country and channel,
//! by kind of code (MFA, enrollment, reset, unlock; `-` for a code Okta
//! logs no use of), and by number prefix: sends, delivered, undelivered,
//! still without a receipt, the delivery rate, the time to delivery (p50,
//! p99), codes used (`CONVERTED`) and left to expire (`UNUSED`) and the
//! conversion rate; the guard's current blocks; and how often Okta took
//! over (it recorded a failed telephony hook call and sent the code through
//! its own providers). From local mode's ledger file (which a running
//! `telehook serve` writes) or, with `--aws`, from the ledger table.
//! It reads event records and block entries only, which hold a country and
//! a prefix, never a number. `--html FILE` writes the same as one
//! self-contained page with bar charts (inline SVG, no scripts).
//!
//! The snapshot a load run reconciles is also here ([`snapshot_line`],
//! [`record_from_snapshot`]): `serve` writes it from its in-memory ledger,
//! `bench` reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use telehook::domain::{Conversion, DeliveryVerdict, UseSignal};
use telehook::ledger::{
    DeliveryRecord, DynamoLedger, GuardBlock, LedgerRecord, SentRecord, Status,
};

use crate::local::{BackendArgs, Error};

mod html;
use crate::ops::{Source, resolve};
pub use html::render_html;

/// Where the ledger is read or changed: local mode's ledger file in the
/// state directory, or with `--aws` the ledger table. `report` and `guard`
/// share it.
#[derive(clap::Args, Debug)]
pub struct LedgerAt {
    #[command(flatten)]
    pub at: BackendArgs,
    /// With --aws: find the table from this stack's outputs.
    #[arg(long)]
    pub stack: Option<String>,
    /// With --aws: the ledger table [or --stack, or LEDGER_TABLE].
    #[arg(long)]
    pub table: Option<String>,
}

impl LedgerAt {
    pub fn aws(&self) -> bool {
        self.at.aws.0
    }

    /// Local mode's ledger file, which must exist already: a report of a
    /// directory `serve` never used is a mistake worth naming.
    pub fn local_ledger(&self) -> Result<telehook::ledger::SqliteLedger, Error> {
        let path = self.at.ledger_path();
        if !path.exists() {
            return Err(format!(
                "no local ledger at {} (telehook serve makes it; --state-dir names another, --aws reads the ledger table)",
                path.display()
            )
            .into());
        }
        crate::local::open_ledger(&self.at.state_dir)
    }

    /// The ledger table, named by `--table`, `--stack` or `LEDGER_TABLE`.
    pub async fn table_ledger(&self) -> Result<DynamoLedger, Error> {
        let sdk = crate::ops::sdk().await?;
        let table = resolve(
            &sdk,
            self.table.clone(),
            self.stack.as_deref(),
            Source::new("--table", "LedgerTableName", "LEDGER_TABLE"),
        )
        .await?;
        Ok(DynamoLedger::new(
            telehook::aws::DynamoDbClient::new(&sdk),
            table,
        ))
    }
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub at: LedgerAt,
    /// How many prefixes to list, busiest first.
    #[arg(long, default_value_t = 20)]
    pub prefixes: usize,
    /// Also write the report as a self-contained HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// The snapshot's line for one record: states, country, prefix, receipt
/// and conversion; no number, no code.
pub fn snapshot_line(r: &LedgerRecord) -> serde_json::Value {
    let d = r.delivery.as_ref();
    let s = r.sent.as_ref();
    serde_json::json!({
        "eventId": r.event_id, "status": r.status.as_str(), "attempts": r.attempts,
        "messageId": r.message_id, "failure": r.failure,
        "route": r.route.map(|x| x.as_str()),
        "channel": r.channel.map(|c| c.as_str()), "country": r.country,
        "delivery": d.map(|d| d.delivery.as_str()),
        "deliveryEvent": d.map(|d| d.event_type.as_str()),
        "deliveryMs": d.and_then(|d| d.delivery_ms),
        "prefix": s.map(|s| s.prefix.as_str()),
        "sentAt": s.map(|s| s.sent_ms),
        "signal": s.and_then(|s| s.signal).map(|u| u.as_str()),
        "conversion": s.and_then(|s| s.conversion).map(|c| c.0.as_str()),
        "fallbackAt": r.fallback_ms,
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
    let sent = v["sentAt"].as_i64().map(|sent_ms| SentRecord {
        sent_ms,
        otp_expires_ms: 0,
        prefix: text("prefix").unwrap_or_default(),
        user_channel: None,
        signal: v["signal"].as_str().and_then(UseSignal::parse),
        guard: false,
        judged_ms: None,
        conversion: v["conversion"]
            .as_str()
            .and_then(Conversion::parse)
            .map(|c| (c, 0)),
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
        route: v["route"].as_str().and_then(telehook::domain::Route::parse),
        failure: text("failure"),
        owner: None,
        correlation_id: None,
        country: text("country"),
        destination: None,
        updated_at_ms: 0,
        expires_at: 0,
        delivery,
        sent,
        fallback_ms: v["fallbackAt"].as_i64(),
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
    pub converted: u64,
    pub unused: u64,
    /// Sent codes of a kind Okta shows used, neither used nor expired
    /// yet: what makes `sent` more than `used` and `unused` together.
    pub open: u64,
    /// Times to delivery of the delivered ones, in ms.
    times: Vec<i64>,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Row {
    /// Delivered over those with a final receipt.
    pub fn delivery_rate(&self) -> Option<f64> {
        ratio(self.delivered, self.delivered + self.undelivered)
    }

    /// Used over those decided (used, or expired unused).
    pub fn conversion_rate(&self) -> Option<f64> {
        ratio(self.converted, self.converted + self.unused)
    }

    /// The `q` quantile (nearest rank) of the times to delivery.
    pub fn time_quantile(&self, q: f64) -> Option<i64> {
        let mut t = self.times.clone();
        t.sort_unstable();
        let rank = ((q * t.len() as f64).ceil() as usize).clamp(1, t.len().max(1));
        t.get(rank - 1).copied()
    }

    fn add(&mut self, r: &LedgerRecord) {
        self.sent += 1;
        match &r.delivery {
            Some(d) if d.delivery == DeliveryVerdict::Delivered => {
                self.delivered += 1;
                self.times.extend(d.delivery_ms);
            }
            Some(_) => self.undelivered += 1,
            None => self.awaiting += 1,
        }
        let tracked = r.sent.as_ref().is_some_and(|s| s.signal.is_some());
        match r.sent.as_ref().and_then(|s| s.conversion).map(|c| c.0) {
            Some(Conversion::Converted) => self.converted += 1,
            Some(Conversion::Unused) => self.unused += 1,
            None if tracked => self.open += 1,
            None => {}
        }
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
        rows.entry(key).or_default().add(r);
    }
    rows
}

/// Rows by route and country (which route works where); a code sent
/// before routes were recorded counts as `own`.
pub fn tally_routes(records: &[LedgerRecord]) -> BTreeMap<(String, String), Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Sent) {
        let key = (
            r.route.map_or("own", |x| x.as_str()).to_owned(),
            r.country.clone().unwrap_or_else(|| "??".into()),
        );
        rows.entry(key).or_default().add(r);
    }
    rows
}

/// Rows by kind of code (`mfa`, `enrollment`, `reset`, `unlock`, or `-`
/// for a code Okta logs no use of, or one sent with conversions off).
pub fn tally_kinds(records: &[LedgerRecord]) -> BTreeMap<String, Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Sent) {
        let kind = r
            .sent
            .as_ref()
            .and_then(|s| s.signal)
            .map_or("-", |s| s.as_str());
        rows.entry(kind.to_owned()).or_default().add(r);
    }
    rows
}

/// Okta's own sends after failed hook calls: per hook kind, the count, and
/// the last hour one happened (epoch hours).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OktaTookOver {
    pub by_hook: BTreeMap<String, u64>,
    pub last_hour: Option<i64>,
}

impl OktaTookOver {
    /// From the ledger's `okta` counts: (hook, hour, counts).
    pub fn from_stats(stats: &[(String, i64, telehook::ledger::StatCounts)]) -> Self {
        let mut out = OktaTookOver::default();
        for (hook, hour, counts) in stats {
            *out.by_hook.entry(hook.clone()).or_default() += u64::from(counts.judged);
            out.last_hour = out.last_hour.max(Some(*hour));
        }
        out
    }

    fn total(&self) -> u64 {
        self.by_hook.values().sum()
    }

    fn text(&self) -> String {
        if self.total() == 0 {
            return "Okta took over: never (no failed telephony hook call on record)\n".to_owned();
        }
        let by: Vec<String> = self
            .by_hook
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let last = self
            .last_hour
            .and_then(|h| chrono::DateTime::from_timestamp(h * 3600, 0))
            .map_or_else(
                || "-".to_owned(),
                |t| t.format("%Y-%m-%d %H:00 UTC").to_string(),
            );
        format!(
            "Okta took over: {} codes sent by Okta's own providers after failed hook calls ({}), last in the hour from {last}\n",
            self.total(),
            by.join(", ")
        )
    }
}

/// Hooks the guard refused, from the ledger's `refused` counts: per
/// country and per prefix, the total and the count of each kind
/// (COUNTRY, RATE, NUMBER_TYPE, LEARNED: a learned block or a pin).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refused {
    pub by_country: BTreeMap<String, BTreeMap<String, u64>>,
    pub by_prefix: BTreeMap<(String, String), BTreeMap<String, u64>>,
}

impl Refused {
    /// From (key, window, counts) of scope `refused`, keys
    /// `<country>:<prefix>:<kind>`.
    pub fn from_stats(stats: &[(String, i64, telehook::ledger::StatCounts)]) -> Self {
        let mut out = Refused::default();
        for (key, _, counts) in stats {
            let mut parts = key.splitn(3, ':');
            let (Some(country), Some(prefix), Some(kind)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let n = u64::from(counts.judged);
            *out.by_country
                .entry(country.to_owned())
                .or_default()
                .entry(kind.to_owned())
                .or_default() += n;
            *out.by_prefix
                .entry((prefix.to_owned(), country.to_owned()))
                .or_default()
                .entry(kind.to_owned())
                .or_default() += n;
        }
        out
    }

    /// Lines: country or prefix, country, total, kinds.
    fn lines(&self) -> Vec<(String, String, u64, String)> {
        let kinds = |k: &BTreeMap<String, u64>| {
            k.iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out: Vec<(String, String, u64, String)> = self
            .by_country
            .iter()
            .map(|(c, k)| (c.clone(), "all".to_owned(), k.values().sum(), kinds(k)))
            .collect();
        let mut prefixes: Vec<_> = self.by_prefix.iter().collect();
        prefixes.sort_by_key(|(_, k)| std::cmp::Reverse(k.values().sum::<u64>()));
        out.extend(
            prefixes
                .into_iter()
                .map(|((p, c), k)| (format!("+{p}"), c.clone(), k.values().sum(), kinds(k))),
        );
        out
    }

    fn text(&self) -> String {
        let mut out = String::from("refused by the guard\n");
        let lines = self.lines();
        if lines.is_empty() {
            out.push_str("(none)\n");
        }
        for (what, country, total, kinds) in lines {
            let _ = writeln!(out, "{what:<10} {country:<7} {total:>8}  {kinds}");
        }
        out
    }
}

/// Rows by (prefix, country), busiest first, at most `limit`; sends
/// without a noted prefix (conversions off) are left out.
pub fn tally_prefixes(records: &[LedgerRecord], limit: usize) -> Vec<((String, String), Row)> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Sent) {
        let Some(prefix) = r.sent.as_ref().map(|s| s.prefix.clone()) else {
            continue;
        };
        let key = (prefix, r.country.clone().unwrap_or_else(|| "??".into()));
        rows.entry(key).or_default().add(r);
    }
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(limit);
    rows
}

fn percent(r: Option<f64>) -> String {
    r.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn dash(v: Option<i64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

const HEADINGS: [&str; 11] = [
    "sent",
    "delivered",
    "undelivered",
    "awaiting",
    "rate",
    "p50 ms",
    "p99 ms",
    "used",
    "unused",
    "conv",
    "open",
];

fn cells(row: &Row) -> [String; 11] {
    [
        row.sent.to_string(),
        row.delivered.to_string(),
        row.undelivered.to_string(),
        row.awaiting.to_string(),
        percent(row.delivery_rate()),
        dash(row.time_quantile(0.5)),
        dash(row.time_quantile(0.99)),
        row.converted.to_string(),
        row.unused.to_string(),
        percent(row.conversion_rate()),
        row.open.to_string(),
    ]
}

fn line(first: &str, second: &str, rest: &[String]) -> String {
    let mut out = format!("{first:<9} {second:<7}");
    for c in rest {
        let _ = write!(out, " {c:>11}");
    }
    out.push('\n');
    out
}

fn headings() -> Vec<String> {
    HEADINGS.iter().map(|h| (*h).to_owned()).collect()
}

/// When a block ends, in words.
fn until(b: &GuardBlock) -> String {
    match b.until_ms {
        None => "until lifted".to_owned(),
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms).map_or_else(
            || "-".to_owned(),
            |t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")),
        ),
    }
}

/// One block as a line of text.
pub fn block_text(b: &GuardBlock) -> String {
    let what = match b.scope.as_str() {
        "pfx" => format!("+{}", b.key),
        _ => b.key.clone(),
    };
    format!(
        "{:<10} {:<8} {:<24} {}",
        what,
        b.kind.as_str(),
        until(b),
        b.reason
    )
}

/// Everything the report shows.
pub struct Report {
    pub rows: BTreeMap<(String, String), Row>,
    /// By route and country.
    pub routes: BTreeMap<(String, String), Row>,
    pub kinds: BTreeMap<String, Row>,
    pub prefixes: Vec<((String, String), Row)>,
    pub blocks: Vec<GuardBlock>,
    pub refused: Refused,
    pub okta: OktaTookOver,
    /// When the report was made, and from what.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub source: String,
}

impl Report {
    fn heading(&self) -> String {
        format!(
            "generated {} from {}",
            self.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.source
        )
    }
}

fn render(report: &Report) -> String {
    let Report {
        rows,
        routes,
        kinds,
        prefixes,
        blocks,
        refused,
        okta,
        ..
    } = report;
    let mut out = format!("{}\n\n", report.heading());
    out.push_str(&line("country", "channel", &headings()));
    for ((country, channel), row) in rows {
        out.push_str(&line(country, channel, &cells(row)));
    }
    if rows.is_empty() {
        out.push_str("(no codes sent)\n");
    }
    if !routes.is_empty() {
        out.push('\n');
        out.push_str(&line("route", "country", &headings()));
        for ((route, country), row) in routes {
            out.push_str(&line(route, country, &cells(row)));
        }
    }
    if !kinds.is_empty() {
        out.push('\n');
        out.push_str(&line("kind", "", &headings()));
        for (kind, row) in kinds {
            out.push_str(&line(kind, "", &cells(row)));
        }
    }
    if !prefixes.is_empty() {
        out.push('\n');
        out.push_str(&line("prefix", "country", &headings()));
        for ((prefix, country), row) in prefixes {
            out.push_str(&line(&format!("+{prefix}"), country, &cells(row)));
        }
    }
    out.push_str("\nguard blocks\n");
    if blocks.is_empty() {
        out.push_str("(none)\n");
    }
    for b in blocks {
        out.push_str(&block_text(b));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&refused.text());
    out.push('\n');
    out.push_str(&okta.text());
    out
}

/// `telehook report`.
pub async fn report(args: ReportArgs) -> Result<(), Error> {
    let source = args.at.at.source();
    eprintln!("reading {source}");
    use telehook::flows::conversion::OKTA_FALLBACK_SCOPE as OKTA;
    use telehook::flows::guard::REFUSED_SCOPE as REFUSED;
    let (records, blocks, okta, refused) = if args.at.aws() {
        let ledger = args.at.table_ledger().await?;
        let blocks = telehook::ledger::GuardBook::list_blocks(&ledger).await?;
        let okta = ledger.stats(OKTA).await?;
        let refused = ledger.stats(REFUSED).await?;
        (ledger.event_records().await?, blocks, okta, refused)
    } else {
        let ledger = args.at.local_ledger()?;
        let blocks = telehook::ledger::GuardBook::list_blocks(&ledger).await?;
        let (okta, refused) = (ledger.stats(OKTA)?, ledger.stats(REFUSED)?);
        (ledger.records()?, blocks, okta, refused)
    };
    let report = Report {
        rows: tally(&records),
        routes: tally_routes(&records),
        kinds: tally_kinds(&records),
        prefixes: tally_prefixes(&records, args.prefixes),
        blocks,
        refused: Refused::from_stats(&refused),
        okta: OktaTookOver::from_stats(&okta),
        generated_at: chrono::Utc::now(),
        source,
    };
    outln!("{}", render(&report).trim_end());
    if let Some(path) = &args.html {
        std::fs::write(path, render_html(&report))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use telehook::ledger::BlockKind;

    fn rec(
        country: &str,
        delivery: Option<(DeliveryVerdict, i64)>,
        conversion: Option<&str>,
    ) -> LedgerRecord {
        let line = serde_json::json!({
            "eventId": "e", "status": "SENT", "attempts": 1, "messageId": "m",
            "channel": "sms", "country": country,
            "delivery": delivery.map(|d| d.0.as_str()), "deliveryEvent": "TEXT_DELIVERED",
            "deliveryMs": delivery.map(|d| d.1),
            "prefix": if country == "US" { "1415555" } else { "4477009" },
            "sentAt": 1, "conversion": conversion,
        });
        record_from_snapshot(&line).unwrap()
    }

    fn learned_block() -> GuardBlock {
        GuardBlock {
            scope: "pfx".into(),
            key: "4477009".into(),
            kind: BlockKind::Learned,
            until_ms: Some(1_800_000_000_000),
            reason: "0 of 25 codes used".into(),
            judged: 25,
            conversions: 0,
            since_ms: 1,
        }
    }

    /// Okta's fallbacks counted in two windows: three for its telephony
    /// provider, one it did not name.
    fn okta_took_over() -> OktaTookOver {
        let counts = |judged| telehook::ledger::StatCounts {
            judged,
            conversions: 0,
        };
        OktaTookOver::from_stats(&[
            ("telephony".to_owned(), 490_000, counts(3)),
            ("unnamed".to_owned(), 490_002, counts(1)),
        ])
    }

    #[test]
    fn rows_count_rates_times_and_conversions() {
        let mut records: Vec<LedgerRecord> = (1..=100)
            .map(|i| {
                let used = if i % 4 == 0 { "UNUSED" } else { "CONVERTED" };
                rec("US", Some((DeliveryVerdict::Delivered, i * 10)), Some(used))
            })
            .collect();
        records.push(rec("US", Some((DeliveryVerdict::Undelivered, 0)), None));
        records.push(rec("GB", None, None));
        let rows = tally(&records);
        let us = &rows[&("US".to_owned(), "sms".to_owned())];
        assert_eq!(
            (us.sent, us.delivered, us.undelivered, us.awaiting),
            (101, 100, 1, 0)
        );
        assert_eq!((us.converted, us.unused), (75, 25));
        assert_eq!(us.time_quantile(0.5), Some(500));
        assert_eq!(us.time_quantile(0.99), Some(990));
        assert!((us.delivery_rate().unwrap() - 100.0 / 101.0).abs() < 1e-9);
        assert!((us.conversion_rate().unwrap() - 0.75).abs() < 1e-9);
        let gb = &rows[&("GB".to_owned(), "sms".to_owned())];
        assert_eq!((gb.awaiting, gb.delivery_rate()), (1, None));
        let prefixes = tally_prefixes(&records, 20);
        assert_eq!(prefixes[0].0, ("1415555".to_owned(), "US".to_owned()));
        assert_eq!(prefixes.len(), 2);
        let block = learned_block();
        let okta = okta_took_over();
        let report = Report {
            routes: tally_routes(&records),
            kinds: tally_kinds(&records),
            rows,
            prefixes,
            blocks: vec![block.clone()],
            refused: Refused::default(),
            okta,
            generated_at: chrono::DateTime::from_timestamp(1_765_000_000, 0).unwrap(),
            source: "a test".into(),
        };
        let text = render(&report);
        assert!(
            text.starts_with("generated 2025-12-06 05:46:40 UTC from a test"),
            "{text}"
        );
        assert!(text.contains("99.0%") && text.contains("GB"), "{text}");
        assert!(
            text.contains("75.0%") && text.contains("+1415555"),
            "{text}"
        );
        assert!(text.contains("+4477009   LEARNED"), "{text}");
        assert!(
            text.contains("Okta took over: 4 codes") && text.contains("telephony 3, unnamed 1"),
            "{text}"
        );
        assert!(text.contains("2025-11-24 18:00 UTC"), "{text}");
        // The fixture's records name no kind: one `-` row.
        assert_eq!(report.kinds.keys().collect::<Vec<_>>(), ["-"]);
        let html = render_html(&report);
        assert!(html.contains("<svg") && html.contains("+4477009"));
        assert!(html.contains("By kind of code") && html.contains("Okta took over"));
        assert!(!html.contains("<script"));
        // Snapshot lines round-trip.
        let back = record_from_snapshot(&snapshot_line(&records[0])).unwrap();
        assert_eq!(back.country.as_deref(), Some("US"));
        assert_eq!(back.delivery.unwrap().delivery_ms, Some(10));
        assert_eq!(back.sent.unwrap().prefix, "1415555");
    }

    /// Codes still open make the rows add up; refusals are counted per
    /// country and prefix; the page marks the worst rows and draws a 0 %
    /// bar.
    #[test]
    fn open_codes_refusals_and_the_worst_rows_show() {
        let open = |country: &str, conversion: Option<&str>| {
            let mut r = rec(country, Some((DeliveryVerdict::Delivered, 10)), conversion);
            if let Some(sent) = r.sent.as_mut() {
                sent.signal = Some(UseSignal::SignIn);
            }
            r
        };
        let records = vec![
            open("US", Some("CONVERTED")),
            open("US", None),
            open("ID", Some("UNUSED")),
            open("ID", None),
        ];
        let rows = tally(&records);
        let us = &rows[&("US".to_owned(), "sms".to_owned())];
        assert_eq!((us.sent, us.converted, us.unused, us.open), (2, 1, 0, 1));
        let counts = |judged| telehook::ledger::StatCounts {
            judged,
            conversions: 0,
        };
        let refused = Refused::from_stats(&[
            ("ID:6281234:LEARNED".to_owned(), 490_000, counts(7)),
            ("ID:6281234:LEARNED".to_owned(), 490_001, counts(3)),
            ("ID:6285555:RATE".to_owned(), 490_001, counts(2)),
            ("not a key".to_owned(), 490_001, counts(9)),
        ]);
        let report = Report {
            routes: tally_routes(&records),
            kinds: tally_kinds(&records),
            prefixes: tally_prefixes(&records, 20),
            rows,
            blocks: vec![learned_block()],
            refused,
            okta: OktaTookOver::default(),
            generated_at: chrono::DateTime::from_timestamp(1_765_000_000, 0).unwrap(),
            source: "a test".into(),
        };
        let text = render(&report);
        let line_of = |what: &str| text.lines().find(|l| l.starts_with(what)).unwrap_or("");
        assert!(
            line_of("US").trim_end().ends_with('1'),
            "open column: {text}"
        );
        assert!(
            line_of("ID         all").contains("12  LEARNED 10, RATE 2"),
            "{text}"
        );
        assert!(
            line_of("+6281234   ID").contains("10  LEARNED 10"),
            "{text}"
        );
        let html = render_html(&report);
        // ID converts 0 %: its row stands out and its bar is drawn.
        assert!(html.contains("<tr class=\"worst\"><td>ID</td>"), "{html}");
        assert!(html.contains("fill=\"#c62828\""), "{html}");
        assert!(
            html.contains("<tr class=\"blocked\"><td>+4477009</td>"),
            "{html}"
        );
        assert!(html.contains("generated 2025-12-06"), "{html}");
    }
}
