//! The help screen: generated from the keymap and the command table, never typed by hand.

use crate::tui::action::{Args, COMMANDS};
use crate::tui::app::App;
use crate::tui::keymap::Mode as KeyMode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};

pub fn lines(app: &App) -> Vec<Line<'static>> {
    let t = &app.theme;
    let head = |s: &str| {
        Line::from(Span::styled(
            s.to_string(),
            Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
        ))
    };
    let mut out = Vec::new();
    for (mode, title) in [
        (KeyMode::Normal, "Keys"),
        (KeyMode::Compose, "Composer keys"),
        (
            KeyMode::Sheet,
            "List keys (notifications and other full-screen lists)",
        ),
        (
            KeyMode::Reports,
            "Reports keys (g R; ranges: 7 days, 30 days, 90 days, a year)",
        ),
    ] {
        out.push(head(title));
        for b in app.keymap.bindings(mode) {
            out.push(Line::from(vec![
                Span::styled(format!("  {:<12}", b.keys), Style::default().fg(t.accent)),
                Span::styled(format!("{:<16}", b.command), Style::default().fg(t.fg)),
                Span::styled(b.doc.to_string(), Style::default().fg(t.dim)),
            ]));
        }
        out.push(Line::from(""));
    }
    out.push(head("Commands (type : then the name; Tab completes)"));
    for c in COMMANDS {
        let arg = match c.args {
            Args::None => String::new(),
            Args::Optional(a) => format!(" [{a}]"),
        };
        out.push(Line::from(vec![
            Span::styled(format!("  :{}", c.name), Style::default().fg(t.accent)),
            Span::styled(arg, Style::default().fg(t.fg)),
            Span::styled(format!("  {}", c.doc), Style::default().fg(t.dim)),
        ]));
    }
    out.push(Line::from(""));
    out.push(head("Queue markers"));
    for (mark, what) in [
        (
            "● ◐ z ✓",
            "open, pending (waiting on the customer), snoozed, resolved",
        ),
        ("‼ ↑ ↓", "urgent, high or low priority"),
        ("★", "VIP contact"),
        (
            "┃",
            "selected with V (a verb then applies to every selected row)",
        ),
        (
            "⏱42m ⏱-5m",
            "SLA time left (business hours): yellow when near, red when breached",
        ),
        (
            "order",
            "[queue] order = \"triage\": breached SLA, urgent, VIP, SLA due soonest, oldest waiting, newest; \"activity\": newest first",
        ),
        ("◇B", "another agent (initials) is viewing the conversation"),
        (
            "◆B",
            "another agent is typing a reply or note in it (the timeline's title says who)",
        ),
        ("↩ ✎", "the last message was our reply, or an internal note"),
    ] {
        out.push(Line::from(vec![
            Span::styled(format!("  {mark:<12}"), Style::default().fg(t.accent)),
            Span::styled(what.to_string(), Style::default().fg(t.dim)),
        ]));
    }
    out.push(Line::from(""));
    out.push(head("Canned replies and macros"));
    for line in [
        "  :template NAME inserts a canned reply into the composer ({{contact.first_name}}... filled in); Tab lists",
        "  canned replies (canned) and WhatsApp templates (WhatsApp). A {{...}} left unfilled is named, and the first",
        "  send of a reply that still holds one asks again. :macro NAME runs a macro's steps; :suggest drafts a reply.",
    ] {
        out.push(Line::from(Span::styled(line, Style::default().fg(t.dim))));
    }
    for m in &app.macros {
        out.push(Line::from(vec![
            Span::styled(
                format!("  :macro {}", crate::sanitize::for_terminal_line(&m.name)),
                Style::default().fg(t.accent),
            ),
            Span::styled(
                format!(
                    "  {}",
                    crate::sanitize::for_terminal_line(&m.steps.join(" · "))
                ),
                Style::default().fg(t.dim),
            ),
        ]));
    }
    out.push(Line::from(""));
    out.push(head("Search (/ or :search)"));
    out.push(Line::from(Span::styled(
        "  words, \"a phrase\", prefix*, from:NAME-OR-ADDRESS, channel:email|telegram|webchat|whatsapp|instagram|messenger|sms|phone|event, is:in|out|note, after:YYYY-MM-DD, before:YYYY-MM-DD",
        Style::default().fg(t.dim),
    )));
    out.push(Line::from(""));
    out.push(head("Times (:snooze, :send-at, :task; your local time)"));
    out.push(Line::from(Span::styled(
        format!("  {}", crate::when::EXAMPLES),
        Style::default().fg(t.dim),
    )));
    out.push(Line::from(Span::styled(
        "  :task [KIND] WHEN [-- TITLE]   e.g. :task call tomorrow 10:00 -- ask about the refund",
        Style::default().fg(t.dim),
    )));
    out
}

pub fn draw(f: &mut Frame<'_>, app: &App, area: Rect, scroll: u16) {
    let w = area.width.saturating_sub(4).min(120);
    let h = area.height.saturating_sub(2);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + 1,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(Style::default().fg(app.theme.accent))
        .title(" help: j/k gg/G Ctrl-d/u scroll · Esc closes ");
    let lines = lines(app);
    let max = (lines.len() as u16).saturating_sub(h.saturating_sub(2));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(max), 0)),
        r,
    );
}
