//! The reports view (`g R`, `:reports`): median first response per channel, volume and backlog
//! over time, an agent table and a main table sliced by channel, agent, team, tag, day, week
//! or month, for a date range; the figures are the server's ([`crate::api::report`]), already
//! scoped to the agent's role.
//!
//! One screen takes several reports (by channel, by day or week, by agent, and the main
//! table's slicing): they are asked for at once, each as a [`Request::Report`], and drawn as
//! they arrive (a loading mark for the rest). An answer is matched to what it answers by the
//! query the server echoes (`report.query`): one for a range or a slicing that is no longer
//! shown is dropped.
//!
//! Keys (the `[reports]` section of the keymap): `h`/`l` move the range back/forward by its
//! length (not past today), `[`/`]` (or `-`/`+`) pick its length (7 days, 30 days, 90 days, a
//! year), `Tab` the main table's slicing, `b` wall clock or business hours, `j`/`k` (`gg`,
//! `G`, `Ctrl-d`/`Ctrl-u`) scroll the main table, `r` reloads, `Esc`/`q` back to the queue. Drawing: [`crate::tui::ui::reports`].

use crate::api::report::{Report, ReportQuery, Slice};
use crate::api::{Request, Response};
use crate::model::Millis;
use crate::tui::action::Action;

const DAY: Millis = 86_400_000;

/// The range lengths `[`/`]` step through, in days.
pub const LENGTHS: &[i64] = &[7, 30, 90, 365];

/// One report the screen needs: its query, and its answer once it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub query: ReportQuery,
    pub report: Option<Box<Report>>,
    /// Asked and not answered yet (a reload keeps the old answer drawn meanwhile).
    pub loading: bool,
}

/// The state of the reports view.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportsView {
    /// The range's last day (included), as days since 1970-01-01 (a local date).
    pub last: i64,
    /// Its length in days (one of [`LENGTHS`]).
    pub days: i64,
    /// The main table's slicing.
    pub by: Slice,
    /// Durations in business hours (else wall clock).
    pub business: bool,
    /// Today (local), in the same count: the latest `last` may be.
    pub today: i64,
    pub parts: Vec<Part>,
    /// Why the last requests failed (drawn in place of what did not arrive).
    pub error: Option<String>,
    /// The main table's first row shown (j/k scroll it).
    pub scroll: usize,
    /// Rows the main table shows at once (set by the app from the screen's size).
    pub page: usize,
}

/// The furthest a table of `len` rows scrolls in `room` lines: its last rows shown under
/// the "N above" line.
pub fn max_scroll(len: usize, room: usize) -> usize {
    if len <= room {
        0
    } else {
        len - room.saturating_sub(1).max(1)
    }
}

/// What a key in the view asks the app to do.
#[derive(Debug, Default, PartialEq)]
pub struct ReportsOutcome {
    pub requests: Vec<Request>,
    pub close: bool,
    pub help: bool,
    pub info: Option<String>,
    pub error: Option<String>,
}

/// The local date holding `now` as days since 1970-01-01 (`offset_ms`: the local UTC offset).
pub fn local_day(now: Millis, offset_ms: Millis) -> i64 {
    (now + offset_ms).div_euclid(DAY)
}

/// `2026-11-03` for a day counted from 1970-01-01.
pub fn day_date(day: i64) -> String {
    jiff::Timestamp::from_second(day.saturating_mul(86_400))
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}

/// The date (`2026-11-03`) of an instant in a zone (None: an unknown zone).
fn date_in(at: Millis, tz: &str) -> Option<String> {
    let zone = jiff::tz::TimeZone::get(tz).ok()?;
    let t = jiff::Timestamp::from_millisecond(at).ok()?;
    Some(t.to_zoned(zone).date().to_string())
}

/// Whether `got` (the query a report echoes, its dates resolved by the server into instants
/// of its zone) answers `sent`.
pub fn answers(sent: &ReportQuery, got: &ReportQuery) -> bool {
    if sent.by != got.by || sent.metrics != got.metrics {
        return false;
    }
    match &sent.days {
        None => sent == got,
        Some((first, last)) => {
            let tz = got.tz.as_deref().unwrap_or("UTC");
            got.days.as_ref() == Some(&(first.clone(), last.clone()))
                || (date_in(got.from, tz).as_ref() == Some(first)
                    && date_in(got.to - 1, tz).as_ref() == Some(last))
        }
    }
}

/// A duration the way the view shows it: `45s`, `4m`, `2h 5m`, `3d 4h`.
pub fn dur(ms: Millis) -> String {
    let s = (ms / 1000).max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// What a length is called: "7 days", "a year".
pub fn length_name(days: i64) -> String {
    match days {
        365 => "a year".into(),
        n => format!("{n} days"),
    }
}

impl ReportsView {
    /// The last 30 days up to today (local dates).
    pub fn new(now: Millis) -> ReportsView {
        let offset = crate::tui::time::local_offset_secs(now) * 1000;
        let today = local_day(now, offset);
        ReportsView {
            last: today,
            days: 30,
            by: Slice::Channel,
            business: false,
            today,
            parts: Vec::new(),
            error: None,
            scroll: 0,
            page: 10,
        }
    }

    /// The range's first day.
    pub fn first(&self) -> i64 {
        self.last - self.days + 1
    }

    /// The slicing of the volume and backlog chart: days up to 90 days, weeks beyond.
    pub fn time_slice(&self) -> Slice {
        if self.days > 90 {
            Slice::Week
        } else {
            Slice::Day
        }
    }

    fn query_by(&self, by: Slice) -> ReportQuery {
        // Whole days in the workspace's zone: what the server reads fastest (its daily
        // totals), cut where its other reports cut them.
        ReportQuery::dates(
            &day_date(self.first()),
            &day_date(self.last),
            by,
            Vec::new(),
        )
    }

    /// The reports the screen draws: by channel (the bars), by day or week (volume and
    /// backlog), by agent (the agent table) and the main table's slicing; each once.
    pub fn wanted(&self) -> Vec<ReportQuery> {
        let mut out: Vec<ReportQuery> = Vec::new();
        for by in [Slice::Channel, self.time_slice(), Slice::Agent, self.by] {
            let q = self.query_by(by);
            if !out.contains(&q) {
                out.push(q);
            }
        }
        out
    }

    /// Ask for everything the screen shows (the range or the slicing changed, or a reload):
    /// answers already here for a query still wanted stay drawn until the new ones come.
    pub fn load(&mut self) -> Vec<Request> {
        let wanted = self.wanted();
        let mut parts = Vec::new();
        for q in wanted {
            let report = self
                .parts
                .iter_mut()
                .find(|p| p.query == q)
                .and_then(|p| p.report.take());
            parts.push(Part {
                query: q,
                report,
                loading: true,
            });
        }
        self.parts = parts;
        self.error = None;
        self.parts
            .iter()
            .map(|p| Request::Report(p.query.clone()))
            .collect()
    }

    /// Offer a response: true when it was a report this view was waiting for. A report for a
    /// range or slicing no longer shown is dropped (and counts as taken: nobody else asks).
    pub fn answer(&mut self, resp: &Response) -> bool {
        let Response::Report(r) = resp else {
            return false;
        };
        if let Some(p) = self.parts.iter_mut().find(|p| answers(&p.query, &r.query)) {
            p.report = Some(r.clone());
            p.loading = false;
        }
        true
    }

    /// A request failed: stop waiting (the screen says why where figures are missing).
    pub fn failed(&mut self, why: &str) {
        if self.parts.iter().any(|p| p.loading) {
            self.error = Some(crate::sanitize::for_terminal_line(why).into_owned());
        }
        for p in &mut self.parts {
            p.loading = false;
        }
    }

    /// The part for a slicing (None when the screen does not ask for it).
    pub fn part(&self, by: Slice) -> Option<&Part> {
        self.parts.iter().find(|p| p.query.by == by)
    }

    /// The report for a slicing, if it arrived.
    pub fn report(&self, by: Slice) -> Option<&Report> {
        self.part(by).and_then(|p| p.report.as_deref())
    }

    /// The figures asked for and not here yet.
    pub fn loading(&self) -> bool {
        self.parts.iter().any(|p| p.loading)
    }

    /// A key of the `[reports]` keymap (`count`: a count typed before it, `5j`).
    pub fn dispatch(&mut self, action: &Action, count: Option<usize>) -> ReportsOutcome {
        let mut out = ReportsOutcome::default();
        let rows = self.report(self.by).map_or(0, |r| r.rows.len());
        let max = max_scroll(rows, self.page);
        let n = count.unwrap_or(1).max(1);
        let half = (self.page / 2).max(1) * n;
        if matches!(
            action,
            Action::ReportBack
                | Action::ReportForward
                | Action::ReportLonger
                | Action::ReportShorter
                | Action::ReportSlice
        ) {
            self.scroll = 0;
        }
        match action {
            Action::MoveDown => self.scroll = (self.scroll.min(max) + n).min(max),
            Action::MoveUp => self.scroll = self.scroll.min(max).saturating_sub(n),
            Action::HalfPageDown => self.scroll = (self.scroll.min(max) + half).min(max),
            Action::HalfPageUp => self.scroll = self.scroll.min(max).saturating_sub(half),
            Action::Top => self.scroll = 0,
            Action::Bottom => self.scroll = max,
            Action::ReportBack => {
                self.last -= self.days;
                out.requests = self.load();
            }
            Action::ReportForward => {
                if self.last >= self.today {
                    out.info = Some("the range already ends today".into());
                } else {
                    self.last = (self.last + self.days).min(self.today);
                    out.requests = self.load();
                }
            }
            Action::ReportLonger | Action::ReportShorter => {
                let i = LENGTHS.iter().position(|d| *d == self.days).unwrap_or(1);
                let j = if *action == Action::ReportLonger {
                    (i + 1).min(LENGTHS.len() - 1)
                } else {
                    i.saturating_sub(1)
                };
                if i == j {
                    out.info = Some(format!(
                        "the range is {} already (7 days, 30 days, 90 days or a year)",
                        length_name(self.days)
                    ));
                } else {
                    self.days = LENGTHS[j];
                    out.requests = self.load();
                }
            }
            Action::ReportSlice => {
                let i = Slice::ALL.iter().position(|s| *s == self.by).unwrap_or(0);
                self.by = Slice::ALL[(i + 1) % Slice::ALL.len()];
                out.requests = self.load();
            }
            Action::ReportBusiness => {
                self.business = !self.business;
                out.info = Some(if self.business {
                    "durations in business hours".into()
                } else {
                    "durations in wall-clock time".into()
                });
            }
            Action::Refresh => out.requests = self.load(),
            Action::Cancel | Action::Quit => out.close = true,
            Action::Help => out.help = true,
            other => {
                out.error = Some(format!(
                    "{} does nothing in the reports view (Esc goes back to the queue)",
                    other.name()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::report::Figures;

    const NOW: Millis = 1_763_900_000_000; // 2025-11-23 12:13 UTC

    fn view() -> ReportsView {
        crate::tui::time::set_fixed_offset(0);
        ReportsView::new(NOW)
    }

    fn queries(reqs: &[Request]) -> Vec<(String, String, Slice)> {
        reqs.iter()
            .map(|r| match r {
                Request::Report(q) => {
                    let (a, b) = q.days.clone().unwrap();
                    (a, b, q.by)
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn d(s: &str) -> String {
        s.to_string()
    }

    /// What the server echoes for `q`: its dates as instants of its zone.
    fn resolved(q: &ReportQuery, tz: &str) -> ReportQuery {
        let (a, b) = q.days.clone().unwrap();
        let zone = jiff::tz::TimeZone::get(tz).unwrap();
        let midnight = |s: &str| {
            let date: jiff::civil::Date = s.parse().unwrap();
            date.to_zoned(zone.clone())
                .unwrap()
                .timestamp()
                .as_millisecond()
        };
        let mut out = q.clone();
        out.from = midnight(&a);
        out.to = midnight(&b) + DAY;
        out.tz = Some(tz.into());
        out.days = None;
        out
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(dur(45_000), "45s");
        assert_eq!(dur(4 * 60_000 + 12_000), "4m");
        assert_eq!(dur(2 * 3_600_000), "2h");
        assert_eq!(dur(2 * 3_600_000 + 5 * 60_000), "2h 5m");
        assert_eq!(dur(3 * DAY + 4 * 3_600_000), "3d 4h");
        assert_eq!(dur(-5), "0s");
    }

    #[test]
    fn the_first_screen_asks_channel_day_and_agent_once_each() {
        let mut v = view();
        let reqs = v.load();
        let (a, b) = (d("2025-10-25"), d("2025-11-23"));
        assert_eq!(
            queries(&reqs),
            vec![
                (a.clone(), b.clone(), Slice::Channel),
                (a.clone(), b.clone(), Slice::Day),
                (a, b, Slice::Agent)
            ]
        );
        assert!(v.loading());
    }

    #[test]
    fn an_answer_is_matched_by_its_dates_in_the_servers_zone() {
        let mut v = view();
        let reqs = v.load();
        let Request::Report(q) = &reqs[0] else {
            panic!()
        };
        for tz in [
            "UTC",
            "Europe/Berlin",
            "America/Los_Angeles",
            "Asia/Kolkata",
        ] {
            assert!(answers(q, &resolved(q, tz)), "{tz}");
        }
        let mut other = resolved(q, "Europe/Berlin");
        other.from -= DAY;
        assert!(!answers(q, &other), "a day earlier");
        let mut other = resolved(q, "UTC");
        other.by = Slice::Team;
        assert!(!answers(q, &other));
        let mut other = resolved(q, "UTC");
        other.tz = Some("Nowhere/Atlantis".into());
        assert!(!answers(q, &other));
    }

    #[test]
    fn h_l_move_by_the_length_tab_slices_and_stale_answers_are_dropped() {
        let mut v = view();
        let first = v.load();
        let today = v.last;
        let out = v.dispatch(&Action::ReportBack, None);
        assert_eq!(v.last, today - 30);
        assert_eq!(
            queries(&out.requests)[0],
            (d("2025-09-25"), d("2025-10-24"), Slice::Channel)
        );
        // The answer to the first screen's query arrives late: not drawn.
        let Request::Report(old) = &first[0] else {
            panic!()
        };
        let stale = Report {
            query: resolved(old, "Europe/Berlin"),
            scope: "everyone".into(),
            tz: "UTC".into(),
            rows: Vec::new(),
            total: Figures::default(),
            took_ms: 1,
        };
        assert!(v.answer(&Response::Report(Box::new(stale.clone()))));
        assert!(v.report(Slice::Channel).is_none());
        // Forward again, then not past today.
        v.dispatch(&Action::ReportForward, None);
        assert_eq!(v.last, today);
        let out = v.dispatch(&Action::ReportForward, None);
        assert!(out.requests.is_empty());
        assert_eq!(out.info.as_deref(), Some("the range already ends today"));
        // Now it is current again.
        assert!(v.answer(&Response::Report(Box::new(stale))));
        assert!(v.report(Slice::Channel).is_some());
        // ] then a year: weeks for the chart.
        v.dispatch(&Action::ReportLonger, None);
        assert_eq!(v.days, 90);
        let out = v.dispatch(&Action::ReportLonger, None);
        assert_eq!(v.days, 365);
        assert_eq!(
            queries(&out.requests)
                .iter()
                .map(|q| q.2)
                .collect::<Vec<_>>(),
            vec![Slice::Channel, Slice::Week, Slice::Agent]
        );
        assert!(v.dispatch(&Action::ReportLonger, None).info.is_some());
        // Tab: agent (already asked: no fourth request), then team.
        let out = v.dispatch(&Action::ReportSlice, None);
        assert_eq!(v.by, Slice::Agent);
        assert_eq!(out.requests.len(), 3);
        let out = v.dispatch(&Action::ReportSlice, None);
        assert_eq!(v.by, Slice::Team);
        assert_eq!(queries(&out.requests)[3].2, Slice::Team);
        // b needs no request; Esc closes.
        assert!(
            v.dispatch(&Action::ReportBusiness, None)
                .requests
                .is_empty()
        );
        assert!(v.business);
        assert!(v.dispatch(&Action::Cancel, None).close);
    }

    #[test]
    fn a_failure_stops_the_loading_marks_and_says_why() {
        let mut v = view();
        v.load();
        v.failed("reports: not yet\u{1b}[2J");
        assert!(!v.loading());
        assert!(!v.error.as_deref().unwrap().contains('\u{1b}'));
    }
}
