//! `telehook report --html`: the report as one self-contained page, tables
//! and inline SVG bar charts, no scripts and nothing fetched. The worst
//! rows stand out: the lowest delivery rate, the lowest conversion rate,
//! and what the guard blocks now, so the ranges to look at are the most
//! visible, not the least (a 0 % bar is drawn, a row with no rate says so).

use std::fmt::Write as _;

use super::{HEADINGS, Report, Row, block_text, cells, percent};

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The share that stands out in a chart or table: the lowest one below
/// 100 %, if any.
fn worst(shares: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    shares
        .flatten()
        .filter(|s| *s < 1.0)
        .min_by(|a, b| a.total_cmp(b))
}

/// A horizontal bar chart of shares (0 to 1), one bar per label; the
/// lowest share in red, a 0 % share as a red sliver, no share as "no
/// data".
fn bar_chart(title: &str, bars: &[(String, Option<f64>)]) -> String {
    let height = 24 * bars.len().max(1) + 30;
    let lowest = worst(bars.iter().map(|b| b.1));
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"560\" height=\"{height}\" role=\"img\">",
        escape(title)
    );
    for (i, (label, share)) in bars.iter().enumerate() {
        let y = 24 * i + 10;
        let text_y = y + 13;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{text_y}\" font-size=\"12\">{}</text>",
            escape(label)
        );
        let Some(share) = share else {
            let _ = write!(
                svg,
                "<text x=\"115\" y=\"{text_y}\" font-size=\"12\" fill=\"#777\">no data yet</text>"
            );
            continue;
        };
        let w = (share * 400.0).clamp(3.0, 400.0);
        let fill = if Some(*share) == lowest {
            "#c62828"
        } else {
            "#3b7dd8"
        };
        let _ = write!(
            svg,
            "<rect x=\"110\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{text_y}\" font-size=\"12\">{}</text>",
            115.0 + w,
            percent(Some(*share))
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Why a row stands out, if it does.
struct Marks {
    delivery: Option<f64>,
    conversion: Option<f64>,
    blocked: Vec<String>,
}

impl Marks {
    fn of(rows: &[((String, String), &Row)], report: &Report) -> Self {
        let now_ms = report.generated_at.timestamp_millis();
        Marks {
            delivery: worst(rows.iter().map(|r| r.1.delivery_rate())),
            conversion: worst(rows.iter().map(|r| r.1.conversion_rate())),
            blocked: report
                .blocks
                .iter()
                .filter(|b| b.blocks(now_ms))
                .map(|b| match b.scope.as_str() {
                    "pfx" => format!("+{}", b.key),
                    _ => b.key.clone(),
                })
                .collect(),
        }
    }

    fn class(&self, (a, b): &(String, String), row: &Row) -> Option<&'static str> {
        if self.blocked.iter().any(|k| k == a || k == b) {
            return Some("blocked");
        }
        let is = |rate: Option<f64>, worst: Option<f64>| rate.is_some() && rate == worst;
        if is(row.delivery_rate(), self.delivery) || is(row.conversion_rate(), self.conversion) {
            return Some("worst");
        }
        None
    }
}

fn html_table(
    first: &str,
    second: &str,
    rows: &[((String, String), &Row)],
    report: &Report,
) -> String {
    let marks = Marks::of(rows, report);
    let mut t = format!("<table><tr><th>{first}</th><th>{second}</th>");
    for h in HEADINGS {
        let _ = write!(t, "<th>{h}</th>");
    }
    t.push_str("</tr>");
    for (key, row) in rows {
        match marks.class(key, row) {
            Some(class) => {
                let _ = write!(t, "<tr class=\"{class}\">");
            }
            None => t.push_str("<tr>"),
        }
        let _ = write!(t, "<td>{}</td><td>{}</td>", escape(&key.0), escape(&key.1));
        for c in cells(row) {
            let _ = write!(t, "<td>{}</td>", escape(&c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

fn list(items: &[String]) -> String {
    let mut html = String::from("<ul>");
    for item in items {
        let _ = write!(html, "<li>{}</li>", escape(item));
    }
    if items.is_empty() {
        html.push_str("<li>none</li>");
    }
    html.push_str("</ul>");
    html
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em}\
table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
td:first-child,td:nth-child(2){text-align:left}\
tr.worst td{background:#fdecea}tr.blocked td{background:#fff3cd;font-weight:600}\
.legend span{padding:0 6px;margin-right:1em}";

fn pairs(m: &std::collections::BTreeMap<(String, String), Row>) -> Vec<((String, String), &Row)> {
    m.iter().map(|(k, r)| (k.clone(), r)).collect()
}

/// The report as one HTML page.
pub fn render_html(report: &Report) -> String {
    let by_country = pairs(&report.rows);
    let by_route = pairs(&report.routes);
    let by_kind: Vec<((String, String), &Row)> = report
        .kinds
        .iter()
        .map(|(k, r)| ((k.clone(), String::new()), r))
        .collect();
    let by_prefix: Vec<((String, String), &Row)> = report
        .prefixes
        .iter()
        .map(|((p, c), r)| ((format!("+{p}"), c.clone()), r))
        .collect();
    let chart = |rows: &[((String, String), &Row)], rate: fn(&Row) -> Option<f64>| {
        rows.iter()
            .map(|((a, b), r)| (format!("{a} {b}"), rate(r)))
            .collect::<Vec<_>>()
    };
    let blocks: Vec<String> = report.blocks.iter().map(block_text).collect();
    let refused: Vec<String> = report
        .refused
        .lines()
        .into_iter()
        .map(|(what, country, total, kinds)| format!("{what} {country}: {total} ({kinds})"))
        .collect();
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>telehook report</title><style>{STYLE}</style></head><body>\
<h1>What became of the codes</h1><p>{}</p>\
<p class=\"legend\"><span style=\"background:#fdecea\">lowest delivery or conversion</span><span style=\"background:#fff3cd\">blocked by the guard now</span></p>",
        escape(&report.heading())
    );
    let sections = [
        (
            "By country and channel",
            html_table("country", "channel", &by_country, report),
        ),
        (
            "",
            bar_chart("Delivery rate", &chart(&by_country, Row::delivery_rate)),
        ),
        (
            "",
            bar_chart("Conversion rate", &chart(&by_country, Row::conversion_rate)),
        ),
        (
            "By route and country",
            html_table("route", "country", &by_route, report),
        ),
        ("By kind of code", html_table("kind", "", &by_kind, report)),
        (
            "By prefix",
            html_table("prefix", "country", &by_prefix, report),
        ),
        (
            "",
            bar_chart(
                "Conversion rate by prefix",
                &chart(&by_prefix, Row::conversion_rate),
            ),
        ),
        ("Guard blocks", list(&blocks)),
        ("Refused by the guard", list(&refused)),
        (
            "Okta's own sends",
            format!("<p>{}</p>", escape(report.okta.text().trim_end())),
        ),
    ];
    for (heading, body) in sections {
        if !heading.is_empty() {
            let _ = write!(page, "<h2>{heading}</h2>");
        }
        page.push_str(&body);
    }
    page.push_str("</body></html>\n");
    page
}
