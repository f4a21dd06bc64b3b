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
use crate::ops::{Source, resolve};

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
        match r.sent.as_ref().and_then(|s| s.conversion).map(|c| c.0) {
            Some(Conversion::Converted) => self.converted += 1,
            Some(Conversion::Unused) => self.unused += 1,
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

const HEADINGS: [&str; 10] = [
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
];

fn cells(row: &Row) -> [String; 10] {
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
    pub okta: OktaTookOver,
}

fn render(report: &Report) -> String {
    let Report {
        rows,
        routes,
        kinds,
        prefixes,
        blocks,
        okta,
    } = report;
    let mut out = line("country", "channel", &headings());
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
    out.push_str(&okta.text());
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of shares (0 to 1), one bar per label.
fn bar_chart(title: &str, bars: &[(String, Option<f64>)]) -> String {
    let height = 24 * bars.len().max(1) + 30;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"560\" height=\"{height}\" role=\"img\">",
        escape(title)
    );
    for (i, (label, share)) in bars.iter().enumerate() {
        let y = 24 * i + 10;
        let w = share.map_or(0.0, |s| (s * 400.0).clamp(0.0, 400.0));
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"110\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"#3b7dd8\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 13,
            escape(label),
            115.0 + w,
            y + 13,
            percent(*share)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn html_table(first: &str, second: &str, rows: &[((String, String), &Row)]) -> String {
    let mut t = format!("<table><tr><th>{first}</th><th>{second}</th>");
    for h in HEADINGS {
        let _ = write!(t, "<th>{h}</th>");
    }
    t.push_str("</tr>");
    for ((a, b), row) in rows {
        let _ = write!(t, "<tr><td>{}</td><td>{}</td>", escape(a), escape(b));
        for c in cells(row) {
            let _ = write!(t, "<td>{}</td>", escape(&c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// The report as one HTML page: tables and inline SVG charts, no scripts
/// and nothing fetched.
pub fn render_html(report: &Report) -> String {
    let by_route: Vec<((String, String), &Row)> =
        report.routes.iter().map(|(k, r)| (k.clone(), r)).collect();
    let by_kind: Vec<((String, String), &Row)> = report
        .kinds
        .iter()
        .map(|(k, r)| ((k.clone(), String::new()), r))
        .collect();
    let by_country: Vec<((String, String), &Row)> =
        report.rows.iter().map(|(k, r)| (k.clone(), r)).collect();
    let by_prefix: Vec<((String, String), &Row)> = report
        .prefixes
        .iter()
        .map(|((p, c), r)| ((format!("+{p}"), c.clone()), r))
        .collect();
    let label = |((a, b), _): &((String, String), &Row)| format!("{a} {b}");
    let delivery: Vec<(String, Option<f64>)> = by_country
        .iter()
        .map(|x| (label(x), x.1.delivery_rate()))
        .collect();
    let conversion: Vec<(String, Option<f64>)> = by_country
        .iter()
        .map(|x| (label(x), x.1.conversion_rate()))
        .collect();
    let prefix_conversion: Vec<(String, Option<f64>)> = by_prefix
        .iter()
        .map(|x| (label(x), x.1.conversion_rate()))
        .collect();
    let mut blocks_html = String::from("<ul>");
    for b in &report.blocks {
        let _ = write!(blocks_html, "<li>{}</li>", escape(&block_text(b)));
    }
    if report.blocks.is_empty() {
        blocks_html.push_str("<li>none</li>");
    }
    blocks_html.push_str("</ul>");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>telehook report</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}</style></head>\
<body><h1>What became of the codes</h1><h2>By country and channel</h2>{}{}{}<h2>By route and country</h2>{}<h2>By kind of code</h2>{}<h2>By prefix</h2>{}{}<h2>Guard blocks</h2>{}<h2>Okta's own sends</h2><p>{}</p></body></html>\n",
        html_table("country", "channel", &by_country),
        bar_chart("Delivery rate", &delivery),
        bar_chart("Conversion rate", &conversion),
        html_table("route", "country", &by_route),
        html_table("kind", "", &by_kind),
        html_table("prefix", "country", &by_prefix),
        bar_chart("Conversion rate by prefix", &prefix_conversion),
        blocks_html,
        escape(report.okta.text().trim_end()),
    )
}

/// `telehook report`.
pub async fn report(args: ReportArgs) -> Result<(), Error> {
    eprintln!("reading {}", args.at.at.source());
    let (records, blocks, okta) = if args.at.aws() {
        let ledger = args.at.table_ledger().await?;
        let blocks = telehook::ledger::GuardBook::list_blocks(&ledger).await?;
        let okta = OktaTookOver::from_stats(
            &ledger
                .stats(telehook::flows::conversion::OKTA_FALLBACK_SCOPE)
                .await?,
        );
        (ledger.event_records().await?, blocks, okta)
    } else {
        let ledger = args.at.local_ledger()?;
        let blocks = telehook::ledger::GuardBook::list_blocks(&ledger).await?;
        let okta = OktaTookOver::from_stats(
            &ledger.stats(telehook::flows::conversion::OKTA_FALLBACK_SCOPE)?,
        );
        (ledger.records()?, blocks, okta)
    };
    let report = Report {
        rows: tally(&records),
        routes: tally_routes(&records),
        kinds: tally_kinds(&records),
        prefixes: tally_prefixes(&records, args.prefixes),
        blocks,
        okta,
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
            okta,
        };
        let text = render(&report);
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
}
