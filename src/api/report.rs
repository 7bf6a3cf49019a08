//! Reports: what a client asks (`braid report`, the `g R` view) and what the server answers.
//!
//! The metrics are defined once, in README ("Reports: what each figure means"), and computed
//! by the server from reporting facts it keeps as conversations change (`store/reports.rs`),
//! never by reading the messages table. The figures a client gets are already scoped to the
//! agent's role: an agent their own, a supervisor their teams', an admin everyone's.

use crate::model::Millis;
use serde::{Deserialize, Serialize};

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Slice {
    #[default]
    Channel,
    Agent,
    Team,
    Tag,
    Day,
    Week,
    Month,
}

impl Slice {
    pub const ALL: &'static [Slice] = &[
        Slice::Channel,
        Slice::Agent,
        Slice::Team,
        Slice::Tag,
        Slice::Day,
        Slice::Week,
        Slice::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Slice::Channel => "channel",
            Slice::Agent => "agent",
            Slice::Team => "team",
            Slice::Tag => "tag",
            Slice::Day => "day",
            Slice::Week => "week",
            Slice::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Slice> {
        Slice::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// Rows are periods of time (sorted by time, with a backlog per row).
    pub fn is_time(self) -> bool {
        matches!(self, Slice::Day | Slice::Week | Slice::Month)
    }
}

/// A family of figures (`--metric`). Each gives one or more columns ([`Report::columns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The customer's first message of a conversation (or of its reopening) to the first
    /// reply by a person, on any channel.
    FirstResponse,
    /// Each later customer message we had not answered yet to our next reply by a person.
    NextResponse,
    /// Opened (or reopened) to resolved.
    Resolution,
    /// Our reply (by a person) to the customer's next message, or to resolution.
    CustomerWait,
    /// Conversations opened, reopened and resolved.
    Volume,
    /// Messages in (customers) and out (replies by people and by rules), notes apart.
    Messages,
    /// SLA targets met and missed, per policy.
    Sla,
    /// Satisfaction surveys: sent, answered, average, distribution.
    Csat,
}

impl Metric {
    pub const ALL: &'static [Metric] = &[
        Metric::FirstResponse,
        Metric::NextResponse,
        Metric::Resolution,
        Metric::CustomerWait,
        Metric::Volume,
        Metric::Messages,
        Metric::Sla,
        Metric::Csat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::NextResponse => "next_response",
            Metric::Resolution => "resolution",
            Metric::CustomerWait => "customer_wait",
            Metric::Volume => "volume",
            Metric::Messages => "messages",
            Metric::Sla => "sla",
            Metric::Csat => "csat",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// A duration metric (median, p90, mean; wall clock and business hours).
    pub fn is_duration(self) -> bool {
        matches!(
            self,
            Metric::FirstResponse
                | Metric::NextResponse
                | Metric::Resolution
                | Metric::CustomerWait
        )
    }
}

/// A report request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQuery {
    /// The range, `[from, to)` in ms since the epoch (the client turns dates into instants).
    pub from: Millis,
    pub to: Millis,
    pub by: Slice,
    /// The figures to compute; empty: all of them.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The IANA time zone days, weeks and months are cut in (None: the workspace's, else UTC).
    #[serde(default)]
    pub tz: Option<String>,
    /// The range as dates instead, first and last included (`2026-11-01`, `2026-11-30`):
    /// whole days in `tz`, else in the workspace's zone, which the server knows. `from` and
    /// `to` are then ignored. Whole days in the workspace's zone are what the server reads
    /// fastest (its daily totals).
    #[serde(default)]
    pub days: Option<(String, String)>,
}

impl ReportQuery {
    /// The days `first..=last` (YYYY-MM-DD) in the workspace's zone.
    pub fn dates(first: &str, last: &str, by: Slice, metrics: Vec<Metric>) -> ReportQuery {
        ReportQuery {
            from: 0,
            to: 0,
            by,
            metrics,
            tz: None,
            days: Some((first.to_string(), last.to_string())),
        }
    }

    pub fn wants(&self, m: Metric) -> bool {
        self.metrics.is_empty() || self.metrics.contains(&m)
    }
}

/// Durations of one metric in one slice, in ms. `business`: within the team's business
/// hours (the workspace's `[[hours]]` of the conversation's team; no hours: the wall clock).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    pub count: i64,
    pub median: Option<Millis>,
    pub p90: Option<Millis>,
    pub mean: Option<Millis>,
    pub median_business: Option<Millis>,
    pub p90_business: Option<Millis>,
    pub mean_business: Option<Millis>,
}

/// SLA targets met and missed (one per target a conversation had).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaFigures {
    pub met: i64,
    pub missed: i64,
}

impl SlaFigures {
    /// The share met, in percent (None when nothing was due).
    pub fn met_pct(&self) -> Option<f64> {
        let n = self.met + self.missed;
        (n > 0).then(|| 100.0 * self.met as f64 / n as f64)
    }
}

/// Satisfaction surveys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsatFigures {
    pub sent: i64,
    pub answered: i64,
    /// How many answers gave 1, 2, 3, 4, 5.
    pub scores: [i64; 5],
}

impl CsatFigures {
    pub fn average(&self) -> Option<f64> {
        let sum: i64 = self
            .scores
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1) * n)
            .sum();
        (self.answered > 0).then(|| sum as f64 / self.answered as f64)
    }

    /// Answered per survey sent, in percent.
    pub fn response_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| 100.0 * self.answered as f64 / self.sent as f64)
    }
}

/// The figures of one row (a channel, an agent, a day...) or of the whole range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub first_response: Durations,
    pub next_response: Durations,
    pub resolution: Durations,
    pub customer_wait: Durations,
    pub opened: i64,
    pub reopened: i64,
    pub resolved: i64,
    pub messages_in: i64,
    pub messages_out: i64,
    pub sla: SlaFigures,
    /// Per policy, sorted by name.
    #[serde(default)]
    pub sla_policies: Vec<(String, SlaFigures)>,
    pub csat: CsatFigures,
    /// For a time slice: conversations open at the end of the period (opened and reopened
    /// minus resolved, from the start of the store).
    #[serde(default)]
    pub backlog: Option<i64>,
}

impl Figures {
    pub fn durations(&self, m: Metric) -> Option<&Durations> {
        match m {
            Metric::FirstResponse => Some(&self.first_response),
            Metric::NextResponse => Some(&self.next_response),
            Metric::Resolution => Some(&self.resolution),
            Metric::CustomerWait => Some(&self.customer_wait),
            _ => None,
        }
    }
}

/// One row: its key (the channel, the agent, `2026-11-03`...) and its figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    pub key: String,
    pub figures: Figures,
}

/// A report: rows in order (time slices by time, others by volume), and the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub query: ReportQuery,
    /// Whose figures these are: "everyone", "teams billing, sales", "your own (bob)".
    pub scope: String,
    /// The time zone the days were cut in.
    pub tz: String,
    pub rows: Vec<ReportRow>,
    /// Across the rows; a conversation with two tags counts once here.
    pub total: Figures,
    /// How long the server took, in ms.
    #[serde(default)]
    pub took_ms: i64,
}

/// One column of a report in CSV / JSON / table form: a stable name (spreadsheets and cron
/// jobs rely on it) and how to read it from a row's figures.
pub struct Column {
    pub name: String,
    pub metric: Metric,
    get: ColumnValue,
}

#[derive(Clone)]
enum ColumnValue {
    Dur(Metric, fn(&Durations) -> Option<i64>),
    DurCount(Metric),
    Count(fn(&Figures) -> i64),
    Ratio(fn(&Figures) -> Option<f64>),
    CsatScore(usize),
    Policy(String, bool),
}

/// A cell: a whole number, a number with decimals, or nothing (no data).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    Int(i64),
    Num(f64),
    Empty,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Int(n) => write!(f, "{n}"),
            Cell::Num(x) => write!(f, "{x:.1}"),
            Cell::Empty => Ok(()),
        }
    }
}

impl Column {
    pub fn value(&self, f: &Figures) -> Cell {
        match &self.get {
            ColumnValue::Dur(m, get) => match f.durations(*m).and_then(get) {
                Some(ms) => Cell::Int(ms / 1000),
                None => Cell::Empty,
            },
            ColumnValue::DurCount(m) => Cell::Int(f.durations(*m).map_or(0, |d| d.count)),
            ColumnValue::Count(get) => Cell::Int(get(f)),
            ColumnValue::Ratio(get) => get(f).map_or(Cell::Empty, Cell::Num),
            ColumnValue::CsatScore(i) => Cell::Int(f.csat.scores.get(*i).copied().unwrap_or(0)),
            ColumnValue::Policy(name, met) => {
                let p = f.sla_policies.iter().find(|(n, _)| n == name);
                Cell::Int(p.map_or(0, |(_, s)| if *met { s.met } else { s.missed }))
            }
        }
    }

    /// Durations are whole seconds (`_s`); the table form prints them as `4m 12s`.
    pub fn is_seconds(&self) -> bool {
        matches!(self.get, ColumnValue::Dur(..))
    }
}

impl Report {
    /// The columns of this report, in a stable order: per metric asked, its figures. Column
    /// names never change meaning; new ones are only ever added.
    pub fn columns(&self) -> Vec<Column> {
        let mut out = Vec::new();
        let metrics: Vec<Metric> = Metric::ALL
            .iter()
            .copied()
            .filter(|m| self.query.wants(*m))
            .collect();
        for m in metrics {
            let n = m.as_str();
            let col = |name: String, get| Column {
                name,
                metric: m,
                get,
            };
            if m.is_duration() {
                out.push(col(format!("{n}_count"), ColumnValue::DurCount(m)));
                for (suffix, get) in [
                    (
                        "median_s",
                        (|d: &Durations| d.median) as fn(&Durations) -> Option<i64>,
                    ),
                    ("p90_s", |d: &Durations| d.p90),
                    ("mean_s", |d: &Durations| d.mean),
                    ("median_business_s", |d: &Durations| d.median_business),
                    ("p90_business_s", |d: &Durations| d.p90_business),
                    ("mean_business_s", |d: &Durations| d.mean_business),
                ] {
                    out.push(col(format!("{n}_{suffix}"), ColumnValue::Dur(m, get)));
                }
                continue;
            }
            match m {
                Metric::Volume => {
                    out.push(col("opened".into(), ColumnValue::Count(|f| f.opened)));
                    out.push(col("reopened".into(), ColumnValue::Count(|f| f.reopened)));
                    out.push(col("resolved".into(), ColumnValue::Count(|f| f.resolved)));
                    if self.query.by.is_time() {
                        out.push(col(
                            "backlog".into(),
                            ColumnValue::Count(|f| f.backlog.unwrap_or(0)),
                        ));
                    }
                }
                Metric::Messages => {
                    out.push(col(
                        "messages_in".into(),
                        ColumnValue::Count(|f| f.messages_in),
                    ));
                    out.push(col(
                        "messages_out".into(),
                        ColumnValue::Count(|f| f.messages_out),
                    ));
                }
                Metric::Sla => {
                    out.push(col("sla_met".into(), ColumnValue::Count(|f| f.sla.met)));
                    out.push(col(
                        "sla_missed".into(),
                        ColumnValue::Count(|f| f.sla.missed),
                    ));
                    out.push(col(
                        "sla_met_pct".into(),
                        ColumnValue::Ratio(|f| f.sla.met_pct()),
                    ));
                    let mut names: Vec<&str> = self
                        .total
                        .sla_policies
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect();
                    names.sort_unstable();
                    names.dedup();
                    for p in names {
                        let key: String = p
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() {
                                    c.to_ascii_lowercase()
                                } else {
                                    '_'
                                }
                            })
                            .collect();
                        out.push(col(
                            format!("sla_{key}_met"),
                            ColumnValue::Policy(p.into(), true),
                        ));
                        out.push(col(
                            format!("sla_{key}_missed"),
                            ColumnValue::Policy(p.into(), false),
                        ));
                    }
                }
                Metric::Csat => {
                    out.push(col("csat_sent".into(), ColumnValue::Count(|f| f.csat.sent)));
                    out.push(col(
                        "csat_answered".into(),
                        ColumnValue::Count(|f| f.csat.answered),
                    ));
                    out.push(col(
                        "csat_average".into(),
                        ColumnValue::Ratio(|f| f.csat.average()),
                    ));
                    out.push(col(
                        "csat_response_pct".into(),
                        ColumnValue::Ratio(|f| f.csat.response_rate()),
                    ));
                    for i in 0..5 {
                        out.push(col(format!("csat_{}", i + 1), ColumnValue::CsatScore(i)));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// A duration the way a report prints it: `45s`, `4m 12s`, `2h 05m`, `3d 4h`.
pub fn human(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// The columns a table shows when no `--metric` is given: the figures a lead reads first.
pub const SUMMARY_COLUMNS: &[&str] = &[
    "opened",
    "resolved",
    "messages_in",
    "messages_out",
    "first_response_median_s",
    "first_response_p90_s",
    "next_response_median_s",
    "resolution_median_s",
    "sla_met_pct",
    "csat_average",
    "csat_response_pct",
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_at_two_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(45_000), "45s");
        assert_eq!(human(252_000), "4m 12s");
        assert_eq!(human(2 * 3_600_000 + 5 * 60_000), "2h 05m");
        assert_eq!(human(3 * 86_400_000 + 4 * 3_600_000 + 59_000), "3d 4h");
        assert_eq!(human(-5), "0s");
    }

    fn report(by: Slice, metrics: Vec<Metric>) -> Report {
        let total = Figures {
            sla_policies: vec![("vip".into(), SlaFigures { met: 3, missed: 1 })],
            ..Default::default()
        };
        Report {
            query: ReportQuery {
                from: 0,
                to: 1,
                by,
                metrics,
                tz: None,
                days: None,
            },
            scope: "everyone".into(),
            tz: "UTC".into(),
            rows: vec![],
            total,
            took_ms: 0,
        }
    }

    /// The column names are a contract (spreadsheets and cron jobs read them): this list
    /// changes only by adding.
    #[test]
    fn column_names_are_stable() {
        let names: Vec<String> = report(Slice::Day, vec![])
            .columns()
            .into_iter()
            .map(|c| c.name)
            .collect();
        let want = "first_response_count first_response_median_s first_response_p90_s \
            first_response_mean_s first_response_median_business_s first_response_p90_business_s \
            first_response_mean_business_s next_response_count next_response_median_s \
            next_response_p90_s next_response_mean_s next_response_median_business_s \
            next_response_p90_business_s next_response_mean_business_s resolution_count \
            resolution_median_s resolution_p90_s resolution_mean_s resolution_median_business_s \
            resolution_p90_business_s resolution_mean_business_s customer_wait_count \
            customer_wait_median_s customer_wait_p90_s customer_wait_mean_s \
            customer_wait_median_business_s customer_wait_p90_business_s \
            customer_wait_mean_business_s opened reopened resolved backlog messages_in \
            messages_out sla_met sla_missed sla_met_pct sla_vip_met sla_vip_missed csat_sent \
            csat_answered csat_average csat_response_pct csat_1 csat_2 csat_3 csat_4 csat_5";
        assert_eq!(names.join(" "), want);
        for s in SUMMARY_COLUMNS {
            assert!(names.iter().any(|n| n == s), "{s}");
        }
        // Only the metrics asked for; no backlog outside a time slice.
        let names: Vec<String> = report(Slice::Channel, vec![Metric::Volume])
            .columns()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["opened", "reopened", "resolved"]);
    }

    #[test]
    fn cells_read_the_figures() {
        let mut f = Figures::default();
        f.first_response.median = Some(90_500);
        f.csat.answered = 2;
        f.csat.sent = 4;
        f.csat.scores = [0, 0, 1, 0, 1];
        let r = report(Slice::Channel, vec![]);
        let cols = r.columns();
        let get = |n: &str| cols.iter().find(|c| c.name == n).unwrap().value(&f);
        assert_eq!(get("first_response_median_s"), Cell::Int(90));
        assert_eq!(get("first_response_p90_s"), Cell::Empty);
        assert_eq!(get("csat_average"), Cell::Num(4.0));
        assert_eq!(get("csat_response_pct"), Cell::Num(50.0));
        assert_eq!(get("csat_5"), Cell::Int(1));
        assert_eq!(get("sla_vip_met"), Cell::Int(0));
    }
}
