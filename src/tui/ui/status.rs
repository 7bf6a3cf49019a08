//! The status line (mode, agent, view, counters, worker, pending keys) and the message line
//! below it (prompt, last message or error, key hints generated from the keymap).

use super::esc;
use crate::tui::app::{App, Level, Mode, Pane};
use crate::tui::keymap::Mode as KeyMode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw_status(f: &mut Frame<'_>, app: &App, area: Rect) {
    let t = &app.theme;
    let base = Style::default().bg(t.status_bg).fg(t.status_fg);
    let mode_style = match app.mode {
        Mode::Normal => Style::default()
            .bg(t.accent)
            .fg(ratatui::style::Color::Black),
        Mode::Compose(_) => Style::default().bg(t.ok).fg(ratatui::style::Color::Black),
        _ => Style::default().bg(t.warn).fg(ratatui::style::Color::Black),
    }
    .add_modifier(Modifier::BOLD);
    let c = &app.counts;
    let (queued, failed) = app.outbox;
    // Segments with a rank: when the line is too narrow, the highest ranks go first.
    let visual = app
        .queue
        .visual_range()
        .filter(|_| matches!(app.mode, Mode::Normal));
    let mode_name = if visual.is_some() {
        "VISUAL"
    } else {
        app.mode.name()
    };
    let mut segments: Vec<(u8, Span)> = vec![
        (0, Span::styled(format!(" {mode_name} "), mode_style)),
        (
            1,
            Span::styled(
                format!(" {} ", esc(&app.whoami)),
                base.add_modifier(Modifier::BOLD),
            ),
        ),
        (
            0,
            Span::styled(
                format!(
                    "│ open {} unassigned {} mine {} ",
                    c.open, c.unassigned, c.mine
                ),
                base,
            ),
        ),
    ];
    if let Some((a, b)) = visual {
        segments.push((
            0,
            Span::styled(
                format!("│ {} selected ", b - a + 1),
                base.fg(t.accent).add_modifier(Modifier::BOLD),
            ),
        ));
    }
    if app.notifications_unread > 0 {
        let n = app.notifications_unread;
        segments.push((
            1,
            Span::styled(
                format!("│ {n} notification{} ", if n == 1 { "" } else { "s" }),
                base.fg(t.accent).add_modifier(Modifier::BOLD),
            ),
        ));
    }
    let online = app.online_agents();
    if online > 1 {
        segments.push((
            2,
            Span::styled(format!("│ {online} online "), base.fg(t.ok)),
        ));
    }
    if c.pending > 0 || c.snoozed > 0 {
        segments.push((
            4,
            Span::styled(
                format!("pending {} snoozed {} ", c.pending, c.snoozed),
                base.fg(t.dim),
            ),
        ));
    }
    if queued > 0 {
        segments.push((
            2,
            Span::styled(format!("│ outbox {queued} "), base.fg(t.warn)),
        ));
    }
    if failed > 0 {
        segments.push((
            1,
            Span::styled(format!("│ {failed} failed "), base.fg(t.error)),
        ));
    }
    segments.push((3, Span::styled(format!("│ {} ", esc(&app.worker)), base)));
    let budget = (area.width as usize).saturating_sub(app.pending_keys().chars().count() + 2);
    for drop_rank in [4u8, 3, 2, 1] {
        let width: usize = segments.iter().map(|(_, s)| s.width()).sum();
        if width <= budget {
            break;
        }
        // The worker's status is cut to the room left (with an ellipsis) before it goes:
        // its start says what matters ("worker: email ... refused").
        if drop_rank == 3
            && let Some(i) = segments.iter().position(|(rank, _)| *rank == 3)
        {
            let others = width - segments[i].1.width();
            let room = budget.saturating_sub(others);
            if room >= 12 {
                let text = super::fit(segments[i].1.content.as_ref(), room);
                segments[i].1.content = text.into();
                continue;
            }
        }
        segments.retain(|(rank, _)| *rank < drop_rank);
    }
    let mut spans: Vec<Span> = segments.into_iter().map(|(_, s)| s).collect();
    let pending = app.pending_keys();
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let right = if pending.is_empty() {
        String::new()
    } else {
        format!(" {pending} ")
    };
    let fill = (area.width as usize).saturating_sub(used + right.chars().count());
    spans.push(Span::styled(" ".repeat(fill), base));
    if !right.is_empty() {
        spans.push(Span::styled(
            right,
            base.fg(t.accent).add_modifier(Modifier::BOLD),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(base), area);
}

pub fn draw_message(f: &mut Frame<'_>, app: &App, area: Rect) {
    let t = &app.theme;
    if let Mode::Prompt(p) = &app.mode {
        let question;
        let lead = match p.kind {
            crate::tui::app::PromptKind::Command => ":",
            crate::tui::app::PromptKind::Search => "/",
            crate::tui::app::PromptKind::Confirm => {
                question = format!("{} [y/N] ", p.question.as_deref().unwrap_or("sure?"));
                question.as_str()
            }
        };
        let mut spans = vec![Span::styled(
            lead,
            Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
        )];
        let before: String = p.input.chars().take(p.cursor).collect();
        let at: String = p.input.chars().skip(p.cursor).take(1).collect();
        let after: String = p.input.chars().skip(p.cursor + 1).collect();
        spans.push(Span::raw(before));
        spans.push(Span::styled(
            if at.is_empty() { " ".to_string() } else { at },
            Style::default().add_modifier(Modifier::REVERSED),
        ));
        spans.push(Span::raw(after));
        if p.completions.len() > 1 {
            spans.push(Span::raw("   "));
            for (i, c) in p.completions.iter().enumerate() {
                let st = if Some(i) == p.completion_index {
                    Style::default()
                        .fg(t.accent)
                        .add_modifier(Modifier::BOLD | Modifier::REVERSED)
                } else {
                    Style::default().fg(t.dim)
                };
                spans.push(Span::styled(c.clone(), st));
                if let Some(mark) = app.completion_mark(&p.input, c) {
                    spans.push(Span::styled(mark, Style::default().fg(t.dim)));
                }
                spans.push(Span::raw(" "));
            }
        } else if p.kind == crate::tui::app::PromptKind::Search && p.input.is_empty() {
            spans.push(Span::styled(
                "  words, \"a phrase\", pre*, from:ann channel:email is:note after:2026-01-01",
                Style::default().fg(t.dim),
            ));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    }
    let pending = app.pending_keys();
    if !pending.is_empty() {
        let mut spans = vec![Span::styled(
            format!("{pending} → "),
            Style::default().fg(t.accent),
        )];
        for (k, cmd) in app.continuations() {
            spans.push(Span::styled(
                k,
                Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!(" {cmd}  "),
                Style::default().fg(t.dim),
            ));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    }
    if let Some((msg, level, _)) = &app.status {
        let st = match level {
            Level::Info => Style::default().fg(t.fg),
            Level::Error => Style::default().fg(t.error).add_modifier(Modifier::BOLD),
        };
        // Errors quote servers and files: escaped (sanitize.rs).
        f.render_widget(
            Paragraph::new(Span::styled(esc(msg).into_owned(), st)),
            area,
        );
        return;
    }
    // The reports view's keys (its own keymap section).
    if matches!(app.mode, Mode::Reports(_)) {
        f.render_widget(Paragraph::new(super::reports::keys_line(app)), area);
        return;
    }
    // Hints, generated from the keymap so they never lie about a rebinding.
    let names: &[&str] = match (&app.mode, app.focus) {
        (Mode::Compose(_), _) => &["send", "edit_external", "cancel"],
        (_, Pane::Queue) => &[
            "reply",
            "note",
            "resolve",
            "assign_me",
            "snooze",
            "search",
            "command_line",
            "help",
        ],
        _ => &[
            "reply",
            "reply_via",
            "note",
            "toggle_quoted",
            "focus_next",
            "help",
        ],
    };
    let mode = if matches!(app.mode, Mode::Compose(_)) {
        KeyMode::Compose
    } else {
        KeyMode::Normal
    };
    let mut spans = Vec::new();
    for name in names {
        if let Some(k) = app.keymap.key_for(mode, name) {
            spans.push(Span::styled(
                k,
                Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!(" {} ", name.replace('_', " ")),
                Style::default().fg(t.dim),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
