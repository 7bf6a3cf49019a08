//! `braid report [--from D] [--to D] [--by channel|agent|team|tag|day|week|month]
//! [--metric M,...] [--format table|csv|json] [--tz ZONE]`: response times, volumes, SLA and
//! CSAT over a date range, through the workspace server (which scopes them to your role).
//! The CSV and JSON column names are stable (`Report::columns`): spreadsheets and cron jobs
//! rely on them.

use super::client::{Client, unexpected};
use super::fmt::Table;
use super::{Globals, write_json};
use crate::api::report::{
    Cell, Column, Metric, Report, ReportQuery, SUMMARY_COLUMNS, Slice, human,
};
use crate::api::{Request, Response};
use crate::model::{Millis, now_millis};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// First day of the range, YYYY-MM-DD [default: 30 days before --to]
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day of the range, included, YYYY-MM-DD [default: today]
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// What the rows are: channel, agent, team, tag, day, week, month
    #[arg(long, value_name = "SLICE", default_value = "channel", value_parser = parse_slice)]
    pub by: Slice,
    /// Only these figures (comma-separated): first_response, next_response, resolution,
    /// customer_wait, volume, messages, sla, csat [default: all; a table shows a summary]
    #[arg(long, value_name = "M,...", value_delimiter = ',', value_parser = parse_metric)]
    pub metric: Vec<Metric>,
    /// table (aligned, durations as 4m 12s), csv or json (whole seconds, stable column names)
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The time zone days are cut in (an IANA name) [default: the workspace's, its first
    /// business hours' zone, else UTC]
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
}

fn parse_slice(s: &str) -> Result<Slice, String> {
    Slice::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Slice::ALL.iter().map(|x| x.as_str()).collect();
        format!("'{s}' is not a slice; use one of {}", names.join(", "))
    })
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    Metric::parse(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|x| x.as_str()).collect();
        format!("'{s}' is not a metric; use one of {}", names.join(", "))
    })
}

/// The range as dates, first and last included: `--from`/`--to`, by default the 30 days
/// up to today (this machine's today).
pub fn dates(
    from: Option<&str>,
    to: Option<&str>,
    now: Millis,
) -> anyhow::Result<(String, String)> {
    use jiff::ToSpan;
    let date = |s: &str, what: &str| -> anyhow::Result<jiff::civil::Date> {
        s.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "--{what} '{}' is not a date: use YYYY-MM-DD",
                crate::sanitize::line(s)
            )
        })
    };
    let today = jiff::Timestamp::from_millisecond(now)?
        .to_zoned(jiff::tz::TimeZone::system())
        .date();
    let last = match to {
        Some(s) => date(s, "to")?,
        None => today,
    };
    let first = match from {
        Some(s) => date(s, "from")?,
        None => last.checked_sub(29.days())?,
    };
    if first > last {
        anyhow::bail!("--from {first} is after --to {last}: give the earlier date first");
    }
    Ok((first.to_string(), last.to_string()))
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (first, last) = dates(args.from.as_deref(), args.to.as_deref(), now_millis())?;
    let mut query = ReportQuery::dates(&first, &last, args.by, args.metric.clone());
    query.tz = args.tz.clone();
    let (client, _config) = Client::open(globals, "report")?;
    let report = match client.call(Request::Report(query))? {
        Response::Report(r) => *r,
        Response::Error(e) | Response::Refused(e) => {
            anyhow::bail!("{}", crate::sanitize::for_terminal_line(&e))
        }
        other => return Err(unexpected("report", &other)),
    };
    drop(client);
    write(&report, args.format, out)
}

/// Print a report in a format.
pub fn write(report: &Report, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let columns = report.columns();
    match format {
        Format::Json => write_json(out, &json(report, &columns)),
        Format::Csv => {
            let mut header = vec![report.query.by.as_str().to_string()];
            header.extend(columns.iter().map(|c| c.name.clone()));
            writeln!(out, "{}", header.join(","))?;
            let rows = report
                .rows
                .iter()
                .map(|r| (r.key.as_str(), &r.figures))
                .chain(std::iter::once(("total", &report.total)));
            for (key, f) in rows {
                let mut line = vec![csv_text(key)];
                line.extend(columns.iter().map(|c| c.value(f).to_string()));
                writeln!(out, "{}", line.join(","))?;
            }
            Ok(())
        }
        Format::Table => {
            let shown: Vec<&Column> = if report.query.metrics.is_empty() {
                columns
                    .iter()
                    .filter(|c| SUMMARY_COLUMNS.contains(&c.name.as_str()))
                    .collect()
            } else {
                columns
                    .iter()
                    .filter(|c| !c.name.contains("mean"))
                    .collect()
            };
            writeln!(
                out,
                "{} to {} ({}), by {}, for {}",
                day(report.query.from, &report.tz),
                day(report.query.to - 1, &report.tz),
                crate::sanitize::for_terminal_line(&report.tz),
                report.query.by.as_str(),
                crate::sanitize::for_terminal_line(&report.scope),
            )?;
            let mut headers: Vec<String> = vec![report.query.by.as_str().to_uppercase()];
            headers.extend(shown.iter().map(|c| format!(">{}", short(&c.name))));
            let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            let mut table = Table::new(&refs);
            let rows = report
                .rows
                .iter()
                .map(|r| (r.key.as_str(), &r.figures))
                .chain(std::iter::once(("total", &report.total)));
            for (key, f) in rows {
                let mut cells = vec![key.to_string()];
                cells.extend(shown.iter().map(|c| match c.value(f) {
                    Cell::Int(s) if c.is_seconds() => human(s * 1000),
                    Cell::Num(x) if c.name.ends_with("_pct") => format!("{x:.0}%"),
                    Cell::Empty => "-".into(),
                    v => v.to_string(),
                }));
                table.row(cells);
            }
            table.write(out)?;
            Ok(())
        }
    }
}

/// A column's name in a table header: without the units and the metric's long prefix.
fn short(name: &str) -> String {
    name.trim_end_matches("_s")
        .replace("first_response", "first")
        .replace("next_response", "next")
        .replace("resolution", "resolve")
        .replace("customer_wait", "cust_wait")
        .replace("messages_", "msg_")
}

fn day(ms: Millis, tz: &str) -> String {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(zone).date().to_string())
        .unwrap_or_default()
}

/// A text cell of a CSV: escaped for the terminal, quoted when it must be, and never read
/// as a formula by a spreadsheet (a leading `=`, `+`, `-`, `@` gets a `'`).
fn csv_text(s: &str) -> String {
    let mut s = crate::sanitize::for_terminal_line(s).into_owned();
    if s.starts_with(['=', '+', '-', '@']) {
        s.insert(0, '\'');
    }
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn json(report: &Report, columns: &[Column]) -> serde_json::Value {
    let row = |key: &str, f| {
        let mut m = serde_json::Map::new();
        m.insert("key".into(), key.into());
        for c in columns {
            let v = match c.value(f) {
                Cell::Int(n) => serde_json::Value::from(n),
                Cell::Num(x) => serde_json::Value::from((x * 10.0).round() / 10.0),
                Cell::Empty => serde_json::Value::Null,
            };
            m.insert(c.name.clone(), v);
        }
        serde_json::Value::Object(m)
    };
    serde_json::json!({
        "from": super::fmt::rfc3339(report.query.from),
        "to": super::fmt::rfc3339(report.query.to),
        "by": report.query.by.as_str(),
        "tz": report.tz,
        "scope": report.scope,
        "columns": columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "rows": report.rows.iter().map(|r| row(&r.key, &r.figures)).collect::<Vec<_>>(),
        "total": row("total", &report.total),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_dates_with_the_last_day_included() {
        let (a, b) = dates(Some("2026-03-28"), Some("2026-03-29"), 0).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("2026-03-28", "2026-03-29"));
        let e = dates(Some("2026-03-30"), Some("2026-03-29"), 0).unwrap_err();
        assert!(e.to_string().contains("give the earlier date first"), "{e}");
        let e = dates(Some("yesterday\x1b[2J"), None, 0).unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD") && !e.to_string().contains('\x1b'));
        // The default: the 30 days up to today.
        let (a, b) = dates(None, Some("2026-12-02"), 0).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("2026-11-03", "2026-12-02"));
    }

    #[test]
    fn csv_cells_cannot_inject_formulas_or_escapes() {
        assert_eq!(csv_text("email"), "email");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert!(!csv_text("\x1b]0;pwned\x07bob").contains('\x1b'));
    }
}
