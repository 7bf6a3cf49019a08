//! Drawing the reports view (see [`crate::tui::reports`]): a header with the range, the
//! server's scope and the totals; median first response per channel (bars); volume and
//! backlog over time (a line chart, or labelled sparklines on a plain terminal); the main
//! table in the chosen slicing and the agent table. Below 110x30 the charts fold into text:
//! the header, ASCII bars per channel and the main table.
//!
//! Everything the server sent (channel, agent, team and tag names, the scope) passes the
//! output wall ([`super::esc`], [`super::fit`], [`super::pad`]). On a 16-colour terminal
//! ([`crate::tui::colors::ColorDepth::Plain`]) nothing is told by colour alone: bars are `#`,
//! the time series are sparklines with their names beside them.

use super::{esc, fit, pad};
use crate::api::report::{Durations, Figures, Report, Slice};
use crate::config::Theme;
use crate::tui::app::App;
use crate::tui::keymap::Mode as KeyMode;
use crate::tui::reports::{ReportsView, day_date, dur, length_name};
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Block, BorderType, Borders, Chart, Clear, Dataset, GraphType,
    Paragraph, Sparkline,
};

/// Bars and sparklines on a plain terminal.
const ASCII_BARS: symbols::bar::Set<'static> = symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

/// Colours, or none at all on a plain terminal.
struct Paint<'a> {
    theme: &'a Theme,
    plain: bool,
}

impl Paint<'_> {
    fn fg(&self, c: Color) -> Style {
        if self.plain {
            Style::default()
        } else {
            Style::default().fg(c)
        }
    }
    fn dim(&self) -> Style {
        self.fg(self.theme.dim)
    }
    fn text(&self) -> Style {
        self.fg(self.theme.fg)
    }
    fn head(&self) -> Style {
        self.fg(self.theme.accent).add_modifier(Modifier::BOLD)
    }
}

/// A median (wall clock or business hours), or `-` when nothing was measured.
fn median(d: &Durations, business: bool) -> String {
    let m = if business {
        d.median_business
    } else {
        d.median
    };
    m.map_or_else(|| "-".into(), dur)
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |p| format!("{p:.0}%"))
}

fn avg(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |a| format!("{a:.1}"))
}

/// One column of a table: its title, width, and the cell of a row's figures.
struct Col {
    title: &'static str,
    width: usize,
    cell: fn(&Figures, bool) -> String,
}

macro_rules! col {
    ($t:literal, $w:literal, $f:expr) => {
        Col {
            title: $t,
            width: $w,
            cell: $f,
        }
    };
}

fn main_columns(wide: bool, time: bool) -> Vec<Col> {
    let mut c = vec![
        col!("opened", 7, |f, _| f.opened.to_string()),
        col!("resolved", 9, |f, _| f.resolved.to_string()),
    ];
    if wide {
        c.insert(1, col!("reopened", 9, |f, _| f.reopened.to_string()));
    }
    if time {
        c.push(col!("backlog", 8, |f, _| f
            .backlog
            .map_or_else(|| "-".into(), |b| b.to_string())));
    }
    c.push(col!("1st resp", 9, |f, b| median(&f.first_response, b)));
    if wide {
        c.push(col!("next resp", 10, |f, b| median(&f.next_response, b)));
    }
    c.push(col!("resolution", 11, |f, b| median(&f.resolution, b)));
    if wide {
        c.push(col!("cust wait", 10, |f, b| median(&f.customer_wait, b)));
        c.push(col!("msgs in", 8, |f, _| f.messages_in.to_string()));
        c.push(col!("msgs out", 9, |f, _| f.messages_out.to_string()));
    }
    c.push(col!("SLA met", 8, |f, _| pct(f.sla.met_pct())));
    c.push(col!("CSAT", 5, |f, _| avg(f.csat.average())));
    if wide {
        c.push(col!("answered", 9, |f, _| pct(f.csat.response_rate())));
    }
    c
}

fn agent_columns() -> Vec<Col> {
    vec![
        col!("1st resp", 9, |f, b| median(&f.first_response, b)),
        col!("resolution", 11, |f, b| median(&f.resolution, b)),
        col!("resolved", 9, |f, _| f.resolved.to_string()),
        col!("msgs out", 9, |f, _| f.messages_out.to_string()),
        col!("CSAT", 5, |f, _| avg(f.csat.average())),
        col!("answered", 9, |f, _| pct(f.csat.response_rate())),
        col!("SLA met", 8, |f, _| pct(f.sla.met_pct())),
    ]
}

/// A table as lines: a header, a row per slice (as many as fit, then how many more), the
/// total.
fn table_lines(
    p: &Paint<'_>,
    report: &Report,
    cols: &[Col],
    business: bool,
    width: usize,
    height: usize,
    skip: usize,
) -> Vec<Line<'static>> {
    let fixed: usize = cols.iter().map(|c| c.width + 1).sum();
    let key_w = width.saturating_sub(fixed + 1).clamp(8, 28);
    let row = |key: &str, f: &Figures| {
        let mut s = format!(" {}", pad(key, key_w));
        for c in cols {
            s.push(' ');
            s.push_str(&format!(
                "{:>w$}",
                fit(&(c.cell)(f, business), c.width),
                w = c.width
            ));
        }
        s
    };
    let mut head = format!(" {}", pad(report.query.by.as_str(), key_w));
    for c in cols {
        head.push_str(&format!(" {:>w$}", c.title, w = c.width));
    }
    let mut out = vec![Line::from(Span::styled(fit(&head, width), p.head()))];
    if report.rows.is_empty() {
        out.push(Line::from(Span::styled(" nothing in this range", p.dim())));
        return out;
    }
    // Rows that fit from `skip` on (j/k scroll), keeping a line for the total and one each
    // for "N above" and "N more".
    let len = report.rows.len();
    let mut room = height.saturating_sub(2);
    let skip = skip.min(crate::tui::reports::max_scroll(len, room));
    if skip > 0 {
        out.push(Line::from(Span::styled(
            format!(" … {skip} above (k scrolls up)"),
            p.dim(),
        )));
        room = room.saturating_sub(1);
    }
    let shown = if len - skip > room {
        room.saturating_sub(1)
    } else {
        len - skip
    };
    for r in &report.rows[skip..skip + shown] {
        out.push(Line::from(Span::styled(
            fit(&row(&r.key, &r.figures), width),
            p.text(),
        )));
    }
    if skip + shown < len {
        out.push(Line::from(Span::styled(
            format!(
                " … {} more (j scrolls; braid report --by {} for all)",
                len - skip - shown,
                report.query.by.as_str()
            ),
            p.dim(),
        )));
    }
    out.push(Line::from(Span::styled(
        fit(&row("total", &report.total), width),
        p.text().add_modifier(Modifier::BOLD),
    )));
    out
}

fn boxed<'a>(p: &Paint<'_>, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(p.fg(p.theme.border))
        .title(Span::styled(title, p.text().add_modifier(Modifier::BOLD)))
}

/// " …" while a part is on its way.
fn mark(view: &ReportsView, by: Slice) -> &'static str {
    match view.part(by) {
        Some(part) if part.loading => " …",
        _ => "",
    }
}

/// What to draw where a report has not arrived (or failed).
fn missing(view: &ReportsView) -> String {
    match &view.error {
        Some(e) => format!(" not available: {e}"),
        None => " loading…".into(),
    }
}

fn clock(view: &ReportsView) -> &'static str {
    if view.business {
        "business hours"
    } else {
        "wall clock"
    }
}

/// The header's lines: the range, the scope, the clock, the zone; the totals.
fn header_text(view: &ReportsView, width: usize) -> Vec<String> {
    let any = view.parts.iter().find_map(|x| x.report.as_deref());
    let mut first = vec![format!(
        "{} – {} ({})",
        day_date(view.first()),
        day_date(view.last),
        length_name(view.days)
    )];
    if let Some(r) = any {
        first.push(esc(&r.scope).into_owned());
    }
    first.push(format!("durations: {}", clock(view)));
    if let Some(r) = any {
        first.push(format!("days in {}", esc(&r.tz)));
    }
    let totals = match any {
        None => vec![missing(view).trim().to_string()],
        Some(r) => {
            let t = &r.total;
            vec![
                format!("opened {}", t.opened),
                format!("resolved {}", t.resolved),
                format!(
                    "first response {}",
                    median(&t.first_response, view.business)
                ),
                format!("resolution {}", median(&t.resolution, view.business)),
                match t.csat.sent {
                    0 => "CSAT: no surveys".into(),
                    _ => format!(
                        "CSAT {} ({} answered)",
                        avg(t.csat.average()),
                        pct(t.csat.response_rate())
                    ),
                },
                match t.sla.met_pct() {
                    None => "SLA: nothing due".into(),
                    m => format!("SLA met {}", pct(m)),
                },
            ]
        }
    };
    let mut lines = wrap(&first, width);
    lines.append(&mut wrap(&totals, width));
    lines
}

fn header(p: &Paint<'_>, view: &ReportsView, width: usize) -> Vec<Line<'static>> {
    header_text(view, width)
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let style = if i == 0 { p.head() } else { p.text() };
            Line::from(Span::styled(fit(&l, width), style))
        })
        .collect()
}

/// The keys of the `[reports]` keymap for the message line, from the keymap (a rebinding
/// shows): `h/l range  [/] length  Tab slice  b wall/business  r reload  q queue  ? help`.
pub fn keys_line(app: &App) -> Line<'static> {
    let p = Paint {
        theme: &app.theme,
        plain: app.colors.is_plain(),
    };
    let key = |c: &str| app.keymap.key_for(KeyMode::Reports, c);
    let pair = |a: &str, b: &str| match (key(a), key(b)) {
        (Some(a), Some(b)) => Some(format!("{a}/{b}")),
        (a, b) => a.or(b),
    };
    let mut spans = Vec::new();
    for (keys, what) in [
        (pair("report_back", "report_forward"), "range"),
        (pair("report_shorter", "report_longer"), "length"),
        (key("report_slice"), "slice"),
        (key("report_business"), "wall/business"),
        (key("refresh"), "reload"),
        (key("cancel"), "queue"),
        (key("help"), "help"),
    ] {
        if let Some(k) = keys {
            spans.push(Span::styled(k, p.head()));
            spans.push(Span::styled(format!(" {what}  "), p.dim()));
        }
    }
    Line::from(spans)
}

/// Segments joined with ` · ` into as few lines of `width` as they take.
fn wrap(segments: &[String], width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for s in segments {
        let len = line.chars().count();
        if !line.is_empty() && len + 3 + s.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if line.is_empty() {
            line.push(' ');
            line.push_str(s);
        } else {
            line.push_str(" · ");
            line.push_str(s);
        }
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// Where each part of the view goes in `area` (the screen above the status lines).
pub struct Areas {
    pub top: Rect,
    /// 110x30 inside the border and more: charts and both tables.
    pub wide: bool,
    /// The bars (a chart, or text lines when narrow).
    pub bars: Rect,
    pub series: Option<Rect>,
    pub main: Rect,
    pub agent: Option<Rect>,
}

/// Lines of text bars in the narrow layout: the title and up to 5 channels.
fn narrow_bar_lines(view: &ReportsView) -> u16 {
    let n = view
        .report(Slice::Channel)
        .map_or(1, |r| r.rows.len().clamp(1, 5));
    1 + n as u16
}

pub fn areas(view: &ReportsView, area: Rect) -> Areas {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let wide = inner.width >= 110 && inner.height >= 30;
    let head = header_text(view, inner.width as usize).len() as u16;
    let [top, body] = Layout::vertical([Constraint::Length(head), Constraint::Min(1)]).areas(inner);
    if !wide {
        let [bars, main] = Layout::vertical([
            Constraint::Length(narrow_bar_lines(view)),
            Constraint::Min(2),
        ])
        .areas(body);
        return Areas {
            top,
            wide,
            bars,
            series: None,
            main,
            agent: None,
        };
    }
    let [charts, tables] =
        Layout::vertical([Constraint::Length(13), Constraint::Min(4)]).areas(body);
    let [bars, series] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(charts);
    let (main, agent) = if view.by != Slice::Agent {
        let [a, b] = Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(tables);
        (a, Some(b))
    } else {
        (tables, None)
    };
    Areas {
        top,
        wide,
        bars,
        series: Some(series),
        main,
        agent,
    }
}

/// Lines for rows in the main table (its box, header and total line taken off): what j/k
/// scroll by.
pub fn main_table_rows(view: &ReportsView, area: Rect) -> usize {
    (areas(view, area).main.height as usize).saturating_sub(4)
}

pub fn draw(f: &mut Frame<'_>, app: &App, view: &ReportsView, area: Rect) {
    let p = Paint {
        theme: &app.theme,
        plain: app.colors.is_plain(),
    };
    f.render_widget(Clear, area);
    let title = format!(
        " reports · by {}{} ",
        view.by.as_str(),
        if view.loading() { " …" } else { "" }
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(p.fg(p.theme.border_focused))
        .title(Span::styled(title, p.head()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let a = areas(view, area);
    f.render_widget(
        Paragraph::new(header(&p, view, inner.width as usize)),
        a.top,
    );
    if let Some(series) = a.series {
        draw_bars(f, &p, view, a.bars);
        draw_series(f, &p, view, series);
    } else {
        draw_text_bars(f, &p, view, a.bars);
    }
    draw_table(f, &p, view, view.by, a.main, a.wide);
    if let Some(agent) = a.agent {
        draw_table(f, &p, view, Slice::Agent, agent, true);
    }
}

/// The narrow layout's bars: a line per channel (at most 5).
fn draw_text_bars(f: &mut Frame<'_>, p: &Paint<'_>, view: &ReportsView, area: Rect) {
    let width = area.width as usize;
    // First response per channel as text bars: at most 5 lines.
    let mut lines = vec![Line::from(Span::styled(
        format!(
            " median first response per channel ({}){}",
            clock(view),
            mark(view, Slice::Channel)
        ),
        p.head(),
    ))];
    match view.report(Slice::Channel) {
        None => lines.push(Line::from(Span::styled(missing(view), p.dim()))),
        Some(r) if r.rows.is_empty() => {
            lines.push(Line::from(Span::styled(" nothing in this range", p.dim())))
        }
        Some(r) => {
            let values: Vec<Option<i64>> = r
                .rows
                .iter()
                .map(|row| channel_median(&row.figures, view.business))
                .collect();
            let max = values.iter().flatten().copied().max().unwrap_or(0).max(1);
            let bar_w = width.saturating_sub(24).max(4);
            let full = if p.plain { "#" } else { "█" };
            for (row, v) in r.rows.iter().zip(&values).take(5) {
                let n = v.map_or(0, |v| {
                    ((v as f64 / max as f64) * bar_w as f64).round() as usize
                });
                let label = v.map_or_else(|| "-".into(), dur);
                lines.push(Line::from(vec![
                    Span::styled(format!(" {} ", pad(&row.key, 10)), p.text()),
                    Span::styled(
                        format!("{}{}", full.repeat(n), " ".repeat(bar_w - n.min(bar_w))),
                        p.fg(p.theme.accent),
                    ),
                    Span::styled(format!(" {label}"), p.text()),
                ]));
            }
        }
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn channel_median(f: &Figures, business: bool) -> Option<i64> {
    if business {
        f.first_response.median_business
    } else {
        f.first_response.median
    }
}

fn draw_bars(f: &mut Frame<'_>, p: &Paint<'_>, view: &ReportsView, area: Rect) {
    let block = boxed(
        p,
        format!(
            " median first response per channel ({}){} ",
            clock(view),
            mark(view, Slice::Channel)
        ),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(r) = view.report(Slice::Channel) else {
        f.render_widget(Paragraph::new(Span::styled(missing(view), p.dim())), inner);
        return;
    };
    if r.rows.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(" nothing in this range", p.dim())),
            inner,
        );
        return;
    }
    let bars: Vec<Bar> = r
        .rows
        .iter()
        .map(|row| {
            let v = channel_median(&row.figures, view.business);
            Bar::default()
                .label(Line::from(fit(&row.key, 10)))
                .value(v.map_or(0, |ms| (ms / 1000).max(0) as u64))
                .text_value(v.map_or_else(|| "-".into(), dur))
        })
        .collect();
    let mut chart = BarChart::default()
        .direction(Direction::Horizontal)
        .bar_width(1)
        .bar_gap(if r.rows.len() * 2 <= inner.height as usize {
            1
        } else {
            0
        })
        .bar_style(p.fg(p.theme.accent))
        .value_style(if p.plain {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().fg(p.theme.selected_fg).bg(p.theme.accent)
        })
        .label_style(p.text())
        .data(BarGroup::default().bars(&bars));
    if p.plain {
        chart = chart.bar_set(ASCII_BARS);
    }
    f.render_widget(chart, inner);
}

/// The three series of the time report: (name, values).
fn series_of(r: &Report) -> Vec<(&'static str, Vec<i64>)> {
    let mut out = vec![
        ("opened", r.rows.iter().map(|x| x.figures.opened).collect()),
        (
            "resolved",
            r.rows.iter().map(|x| x.figures.resolved).collect(),
        ),
    ];
    if r.rows.iter().any(|x| x.figures.backlog.is_some()) {
        out.push((
            "backlog",
            r.rows
                .iter()
                .map(|x| x.figures.backlog.unwrap_or(0))
                .collect(),
        ));
    }
    out
}

fn draw_series(f: &mut Frame<'_>, p: &Paint<'_>, view: &ReportsView, area: Rect) {
    let by = view.time_slice();
    let mut block = boxed(
        p,
        format!(" volume and backlog by {}{} ", by.as_str(), mark(view, by)),
    );
    if !p.plain {
        // The legend: each series' name in its line's colour, at the right of the title.
        let mut spans = Vec::new();
        for (name, c) in [
            ("opened", p.theme.accent),
            ("resolved", p.theme.ok),
            ("backlog", p.theme.warn),
        ] {
            spans.push(Span::styled(format!(" ━ {name}"), Style::default().fg(c)));
        }
        spans.push(Span::raw(" "));
        block = block.title(Line::from(spans).right_aligned());
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(r) = view.report(by) else {
        f.render_widget(Paragraph::new(Span::styled(missing(view), p.dim())), inner);
        return;
    };
    if r.rows.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(" nothing in this range", p.dim())),
            inner,
        );
        return;
    }
    let series = series_of(r);
    if p.plain {
        draw_sparklines(f, p, &series, inner);
        return;
    }
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let colors = [p.theme.accent, p.theme.ok, p.theme.warn];
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, v)| {
            v.iter()
                .enumerate()
                .map(|(i, y)| (i as f64, *y as f64))
                .collect()
        })
        .collect();
    let datasets: Vec<Dataset> = series
        .iter()
        .zip(&points)
        .zip(colors)
        .map(|(((name, _), pts), c)| {
            Dataset::default()
                .name(*name)
                .marker(symbols::Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(c))
                .data(pts)
        })
        .collect();
    let first = r
        .rows
        .first()
        .map(|x| esc(&x.key).into_owned())
        .unwrap_or_default();
    let last = r
        .rows
        .last()
        .map(|x| esc(&x.key).into_owned())
        .unwrap_or_default();
    let n = r.rows.len().max(2) as f64 - 1.0;
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([0.0, n])
                .labels(vec![Span::raw(first), Span::raw(last)])
                .style(p.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, max as f64])
                .labels(vec![Span::raw("0"), Span::raw(max.to_string())])
                .style(p.dim()),
        )
        .legend_position(None);
    f.render_widget(chart, inner);
}

/// Plain terminal: one labelled sparkline per series (several points to a column when the
/// range has more points than the width: sums for counts, the last for the backlog; a point
/// several columns wide when it has fewer).
fn draw_sparklines(
    f: &mut Frame<'_>,
    p: &Paint<'_>,
    series: &[(&'static str, Vec<i64>)],
    area: Rect,
) {
    let rows = Layout::vertical(vec![
        Constraint::Ratio(1, series.len() as u32);
        series.len()
    ])
    .split(area);
    for ((name, values), row) in series.iter().zip(rows.iter()) {
        let [label, line] =
            Layout::horizontal([Constraint::Length(18), Constraint::Min(1)]).areas(*row);
        let width = line.width.max(1) as usize;
        let per = values.len().div_ceil(width).max(1);
        let data: Vec<u64> = values
            .chunks(per)
            .map(|c| {
                let v = if *name == "backlog" {
                    c.last().copied().unwrap_or(0)
                } else {
                    c.iter().sum()
                };
                v.max(0) as u64
            })
            .collect();
        let max = data.iter().copied().max().unwrap_or(0);
        // Few points: each as wide as the line allows (the shape reads across the pane).
        let stretch = (width / data.len().max(1)).max(1);
        let data: Vec<u64> = data
            .iter()
            .flat_map(|v| std::iter::repeat_n(*v, stretch))
            .collect();
        f.render_widget(
            Paragraph::new(Span::styled(format!(" {name} (max {max})"), p.text())),
            label,
        );
        f.render_widget(Sparkline::default().data(&data).bar_set(ASCII_BARS), line);
    }
}

fn draw_table(
    f: &mut Frame<'_>,
    p: &Paint<'_>,
    view: &ReportsView,
    by: Slice,
    area: Rect,
    wide: bool,
) {
    let what = if by == view.by && by != Slice::Agent {
        format!(" by {} (Tab: next) ", by.as_str())
    } else if by == Slice::Agent {
        " agents ".to_string()
    } else {
        format!(" by {} ", by.as_str())
    };
    let block = boxed(p, format!("{}{} ", what.trim_end(), mark(view, by)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(r) = view.report(by) else {
        f.render_widget(Paragraph::new(Span::styled(missing(view), p.dim())), inner);
        return;
    };
    let cols = if by == Slice::Agent && wide {
        agent_columns()
    } else {
        main_columns(wide, by.is_time())
    };
    let lines = table_lines(
        p,
        r,
        &cols,
        view.business,
        inner.width as usize,
        inner.height as usize,
        if by == view.by { view.scroll } else { 0 },
    );
    f.render_widget(Paragraph::new(lines), inner);
}
