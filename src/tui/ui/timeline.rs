//! The timeline pane: every message of the contact, across all channels and conversations,
//! oldest to newest, with the composer below it while replying.

use super::{channel_color, esc, pane_block};
use crate::model::{Delivery, Direction};
use crate::tui::app::{App, ComposeKind, Mode, Pane};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(f: &mut Frame<'_>, app: &App, area: Rect) {
    let (timeline_area, composer_area) = match &app.mode {
        Mode::Compose(_) => {
            let h = (area.height / 3).clamp(6, 14);
            let [a, b] = Layout::vertical([Constraint::Min(3), Constraint::Length(h)]).areas(area);
            (a, Some(b))
        }
        _ => (area, None),
    };
    let title = match (&app.profile.profile, app.queue.current()) {
        (Some(p), _) => format!(" {} ", esc(&p.contact.name)),
        (None, Some(r)) => format!(" {} ", esc(&r.contact_name)),
        _ => " timeline ".to_string(),
    };
    let mut block = pane_block(
        app,
        title,
        app.focus == Pane::Timeline && composer_area.is_none(),
    );
    // The SLA of the conversation: which target, the time left, colored as it nears.
    if let Some(r) = app.queue.current()
        && let Some((left, level)) = super::queue::sla_left(app, r)
    {
        let t = &app.theme;
        let style = match level {
            super::queue::SlaLevel::Ok => Style::default().fg(t.dim),
            super::queue::SlaLevel::Near => {
                Style::default().fg(t.warn).add_modifier(Modifier::BOLD)
            }
            super::queue::SlaLevel::Breached => {
                Style::default().fg(t.error).add_modifier(Modifier::BOLD)
            }
        };
        let target = r.sla_target.as_deref().unwrap_or("sla").replace('_', " ");
        let text = if level == super::queue::SlaLevel::Breached {
            format!(" ⏱ {target} overdue {} ", left.trim_start_matches('-'))
        } else {
            format!(" ⏱ {target} in {left} ")
        };
        block = block.title(Line::from(Span::styled(text, style)));
    }
    // Who else is in this conversation ("Bob is viewing · Ann is typing a reply").
    let here = match &app.mode {
        Mode::Compose(c) => Some(c.conversation),
        _ => app.queue.current().map(|r| r.id),
    };
    if let Some(line) = here.and_then(|c| app.presence_line(c)) {
        let typing = line.contains("typing");
        let t = &app.theme;
        let style = if typing {
            Style::default().fg(t.warn).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(t.accent)
        };
        let room = (timeline_area.width as usize).saturating_sub(title_width(app) + 6);
        if room >= 8 {
            block = block.title(
                Line::from(Span::styled(
                    format!(" {} ", super::fit(&line, room)),
                    style,
                ))
                .right_aligned(),
            );
        }
    }
    let inner = block.inner(timeline_area);
    f.render_widget(block, timeline_area);
    let lines = lines(app, inner.width as usize);
    let height = inner.height as usize;
    let max_scroll = lines.len().saturating_sub(height);
    let scroll = app.timeline.scroll.min(max_scroll);
    let top = lines.len().saturating_sub(height + scroll);
    let visible: Vec<Line> = lines.into_iter().skip(top).take(height).collect();
    f.render_widget(Paragraph::new(visible), inner);
    if let (Some(area), Mode::Compose(c)) = (composer_area, &app.mode) {
        let t = &app.theme;
        let title = match c.kind {
            ComposeKind::Reply => format!(
                " Reply to {} via {} → {} · #{}{} ",
                esc(&c.contact_name),
                c.channel.map(|c| c.badge()).unwrap_or("?"),
                esc(c.recipient.as_deref().unwrap_or("?")),
                c.conversation,
                c.send_at
                    .map(|at| format!(" · goes out {}", crate::when::label(at, app.now)))
                    .unwrap_or_default(),
            ),
            ComposeKind::Note => format!(
                " Internal note on {} · #{} (never sent to the customer) ",
                c.contact_name, c.conversation
            ),
        };
        let key = |name: &str| {
            app.keymap
                .key_for(crate::tui::keymap::Mode::Compose, name)
                .unwrap_or_default()
        };
        let hint = if c.kind == ComposeKind::Reply && c.channel == Some(crate::model::Channel::Sms)
        {
            // What the text costs, as the agent types.
            format!(
                " {} send · {} · {} close ",
                key("send"),
                crate::segments::segments(&c.text()).label(),
                key("cancel")
            )
        } else {
            format!(
                " {} send · {} $EDITOR · {} close, draft kept ",
                key("send"),
                key("edit_external"),
                key("cancel"),
            )
        };
        // A note naming someone who is no agent: said before it is sent, with what to do.
        let unknown = match c.kind {
            ComposeKind::Note => crate::mentions::unknown(&c.text(), &app.known_agents),
            ComposeKind::Reply => Vec::new(),
        };
        // A reply still holding a canned reply's unfilled variable: flagged before it is sent.
        let unfilled = match c.kind {
            ComposeKind::Reply => crate::canned::unfilled(&c.text()),
            ComposeKind::Note => Vec::new(),
        };
        let (hint, hint_style) = if !unfilled.is_empty() {
            (
                format!(
                    " not filled: {} ",
                    unfilled
                        .iter()
                        .map(|u| format!("{{{{{}}}}}", esc(u)))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Style::default().fg(t.warn).add_modifier(Modifier::BOLD),
            )
        } else if unknown.is_empty() {
            (hint, Style::default().fg(t.dim))
        } else {
            (
                format!(
                    " {} not an agent here: nobody is notified · Tab after @ completes a name ",
                    unknown
                        .iter()
                        .map(|u| format!("@{}", esc(u)))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Style::default().fg(t.warn).add_modifier(Modifier::BOLD),
            )
        };
        let color = match c.kind {
            ComposeKind::Reply => c
                .channel
                .map(|ch| channel_color(app, ch))
                .unwrap_or(t.accent),
            ComposeKind::Note => t.note_fg,
        };
        let block = ratatui::widgets::Block::default()
            .borders(ratatui::widgets::Borders::ALL)
            .border_type(ratatui::widgets::BorderType::Thick)
            .border_style(Style::default().fg(color))
            .title(Span::styled(
                title,
                Style::default().fg(color).add_modifier(Modifier::BOLD),
            ))
            .title_bottom(Span::styled(hint, hint_style));
        let mut area = area;
        // The traffic cop stopped the last send: what changed, above the draft.
        if let Some(stale) = &c.stale {
            let mut lines = vec![Line::from(Span::styled(
                format!(
                    " not sent: #{} changed since you started:",
                    stale.conversation
                ),
                Style::default().fg(t.error).add_modifier(Modifier::BOLD),
            ))];
            for ch in &stale.changes {
                lines.push(Line::from(Span::styled(
                    format!(
                        "  • {} {}",
                        crate::tui::time::age(ch.at, app.now),
                        super::fit(&ch.what, (area.width as usize).saturating_sub(12))
                    ),
                    Style::default().fg(t.warn),
                )));
            }
            lines.push(Line::from(Span::styled(
                format!(
                    " {} send anyway (or edit first) · {} discard · {} keep the draft",
                    app.keymap
                        .key_for(crate::tui::keymap::Mode::Compose, "send")
                        .unwrap_or_default(),
                    app.keymap
                        .key_for(crate::tui::keymap::Mode::Compose, "discard")
                        .unwrap_or_default(),
                    app.keymap
                        .key_for(crate::tui::keymap::Mode::Compose, "cancel")
                        .unwrap_or_default(),
                ),
                Style::default().fg(t.dim),
            )));
            let h = (lines.len() as u16).min(area.height.saturating_sub(4));
            let [top, rest] =
                Layout::vertical([Constraint::Length(h), Constraint::Min(3)]).areas(area);
            f.render_widget(Paragraph::new(lines), top);
            area = rest;
        }
        let inner = block.inner(area);
        f.render_widget(block, area);
        if c.sending {
            f.render_widget(
                Paragraph::new(Span::styled("sending…", Style::default().fg(t.dim))),
                inner,
            );
        } else {
            f.render_widget(&c.textarea, inner);
        }
    }
}

/// The columns of the pane's own title (the contact's name).
fn title_width(app: &App) -> usize {
    use unicode_width::UnicodeWidthStr;
    match (&app.profile.profile, app.queue.current()) {
        (Some(p), _) => esc(&p.contact.name).width() + 2,
        (None, Some(r)) => esc(&r.contact_name).width() + 2,
        _ => 10,
    }
}

/// How many lines the timeline has at this width (for scrolling).
pub fn line_count(app: &App, width: usize) -> usize {
    lines(app, width).len()
}

/// All timeline lines for a pane of `width` columns.
pub fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    lines_and_starts(app, width).0
}

/// The index of the line each message starts on (its header), oldest first.
pub fn message_starts(app: &App, width: usize) -> Vec<(crate::model::MessageId, usize)> {
    lines_and_starts(app, width).1
}

/// The timeline's lines, and the line each message starts on.
#[allow(clippy::type_complexity)]
fn lines_and_starts(
    app: &App,
    width: usize,
) -> (Vec<Line<'static>>, Vec<(crate::model::MessageId, usize)>) {
    let mut starts = Vec::new();
    let out = lines_inner(app, width, &mut starts);
    (out, starts)
}

fn lines_inner(
    app: &App,
    width: usize,
    starts: &mut Vec<(crate::model::MessageId, usize)>,
) -> Vec<Line<'static>> {
    let t = &app.theme;
    let tl = &app.timeline;
    let mut out: Vec<Line<'static>> = Vec::new();
    if tl.rows.is_empty() {
        let msg = if tl.loading {
            "loading…"
        } else if app.queue.current().is_none() {
            "no conversation selected"
        } else {
            "no messages"
        };
        out.push(Line::from(Span::styled(
            format!(" {msg}"),
            Style::default().fg(t.dim),
        )));
        return out;
    }
    if tl.older {
        out.push(Line::from(Span::styled(
            " ↑ older messages: gg loads more",
            Style::default().fg(t.dim),
        )));
    }
    let selected_conv = app.queue.current().map(|r| r.id);
    let body_width = width.saturating_sub(3).max(10);
    let mut prev_conv = None;
    for m in &tl.rows {
        if prev_conv != Some(m.conversation_id) {
            let label = format!("── conversation #{} ", m.conversation_id);
            let mut st = Style::default().fg(t.dim);
            if Some(m.conversation_id) == selected_conv {
                st = Style::default().fg(t.accent);
            }
            let fill = width.saturating_sub(unicode_width::UnicodeWidthStr::width(label.as_str()));
            out.push(Line::from(Span::styled(
                format!("{label}{}", "─".repeat(fill)),
                st,
            )));
            prev_conv = Some(m.conversation_id);
        }
        let in_selected = Some(m.conversation_id) == selected_conv;
        let bar_style = Style::default().fg(if in_selected { t.accent } else { t.border });
        // header
        let ch_style = Style::default()
            .fg(channel_color(app, m.channel))
            .add_modifier(Modifier::BOLD);
        let (arrow, who_style) = match m.direction {
            Direction::In => (
                "←",
                Style::default().fg(t.inbound).add_modifier(Modifier::BOLD),
            ),
            Direction::Out => (
                "→",
                Style::default().fg(t.outbound).add_modifier(Modifier::BOLD),
            ),
            Direction::Note => (
                "✎",
                Style::default().fg(t.note_fg).add_modifier(Modifier::BOLD),
            ),
        };
        starts.push((m.id, out.len()));
        // A note is not on a channel: it carries no badge (its own look, not an email's).
        let mut header = vec![Span::styled("▎", bar_style)];
        if m.direction != Direction::Note {
            header.push(Span::styled(m.channel.badge().to_string(), ch_style));
            header.push(Span::raw(" "));
        }
        header.push(Span::styled(format!("{arrow} "), who_style));
        if m.direction == Direction::Note {
            header.push(Span::styled(
                "NOTE ",
                Style::default()
                    .fg(t.note_fg)
                    .bg(t.note_bg)
                    .add_modifier(Modifier::BOLD),
            ));
        }
        header.push(Span::styled(esc(&m.author).into_owned(), who_style));
        header.push(Span::styled(
            format!(" · {}", crate::tui::time::short(m.created_at, app.now)),
            Style::default().fg(t.dim),
        ));
        // Search matches: the one shown (opened, or reached with n / N) stands out.
        if app.timeline.target == Some(m.id) {
            header.push(Span::styled(
                " ▶ match ",
                Style::default()
                    .fg(t.accent)
                    .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            ));
        } else if app
            .queue
            .search
            .as_ref()
            .is_some_and(|s| s.matches.contains(&m.id))
        {
            header.push(Span::styled(" · match", Style::default().fg(t.accent)));
        }
        match m.delivery {
            Some(Delivery::Queued) if m.scheduled_at.is_some() => header.push(Span::styled(
                format!(
                    " · scheduled for {} (:cancel-send)",
                    crate::when::label(m.scheduled_at.unwrap_or_default(), app.now)
                ),
                Style::default().fg(t.accent),
            )),
            Some(Delivery::Queued) => {
                header.push(Span::styled(" · queued", Style::default().fg(t.warn)))
            }
            Some(Delivery::Cancelled) => header.push(Span::styled(
                " · cancelled (never sent)",
                Style::default().fg(t.warn),
            )),
            Some(Delivery::Sending) => {
                header.push(Span::styled(" · sending…", Style::default().fg(t.warn)))
            }
            Some(Delivery::Sent) if m.direction == Direction::Out => {
                header.push(Span::styled(" · sent ✓", Style::default().fg(t.ok)))
            }
            // The channel's own reports (WhatsApp, Instagram, Messenger, SMS).
            Some(Delivery::Delivered) => {
                header.push(Span::styled(" · delivered ✓✓", Style::default().fg(t.ok)))
            }
            Some(Delivery::Read) => header.push(Span::styled(
                " · read ✓✓",
                Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
            )),
            Some(Delivery::Failed) => header.push(Span::styled(
                format!(
                    " · failed: {} (:retry)",
                    esc(m.delivery_error.as_deref().unwrap_or("unknown error"))
                ),
                Style::default().fg(t.error).add_modifier(Modifier::BOLD),
            )),
            Some(Delivery::Unclear) => header.push(Span::styled(
                format!(
                    " · unclear: {}",
                    esc(m.delivery_error.as_deref().unwrap_or("may have been sent"))
                ),
                Style::default().fg(t.warn).add_modifier(Modifier::BOLD),
            )),
            _ => {}
        }
        out.push(Line::from(header));
        if let Some(s) = &m.subject
            && m.channel == crate::model::Channel::Email
            && m.direction != Direction::Note
        {
            for piece in wrap(s, body_width) {
                out.push(Line::from(vec![
                    Span::styled("▎", bar_style),
                    Span::styled(
                        format!("  {piece}"),
                        Style::default().add_modifier(Modifier::BOLD),
                    ),
                ]));
            }
        }
        let body_style = if m.direction == Direction::Note {
            Style::default().fg(t.note_fg).bg(t.note_bg)
        } else {
            Style::default().fg(t.fg)
        };
        for (text, kind) in fold_body(&m.body, tl.show_quoted) {
            let style = match kind {
                Part::Text => body_style,
                Part::Quote => Style::default().fg(t.dim),
                Part::Folded => Style::default().fg(t.dim).add_modifier(Modifier::ITALIC),
            };
            for piece in wrap(&text, body_width) {
                out.push(Line::from(vec![
                    Span::styled("▎", bar_style),
                    Span::styled(format!("  {piece}"), style),
                ]));
            }
        }
        out.push(Line::from(Span::styled("▎", bar_style)));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Text,
    Quote,
    Folded,
}

/// Split a body into its own text and folded quoted blocks / signatures.
fn fold_body(body: &str, show_quoted: bool) -> Vec<(String, Part)> {
    let mut out: Vec<(String, Part)> = Vec::new();
    let lines: Vec<&str> = body.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let is_quote = l.trim_start().starts_with('>')
            || (l.starts_with("On ") && l.trim_end().ends_with("wrote:"));
        if l == "-- " || l == "--" {
            let n = lines.len() - i;
            if show_quoted {
                for s in &lines[i..] {
                    out.push((s.to_string(), Part::Quote));
                }
            } else {
                out.push((format!("┆ signature, {n} lines (z shows)"), Part::Folded));
            }
            break;
        }
        if is_quote {
            let start = i;
            while i < lines.len()
                && (lines[i].trim_start().starts_with('>')
                    || (lines[i].starts_with("On ") && lines[i].trim_end().ends_with("wrote:"))
                    || (lines[i].trim().is_empty()
                        && lines
                            .get(i + 1)
                            .is_some_and(|n| n.trim_start().starts_with('>'))))
            {
                i += 1;
            }
            if show_quoted {
                for s in &lines[start..i] {
                    out.push((s.to_string(), Part::Quote));
                }
            } else {
                out.push((
                    format!("┆ {} quoted lines (z shows)", i - start),
                    Part::Folded,
                ));
            }
            continue;
        }
        out.push((l.to_string(), Part::Text));
        i += 1;
    }
    // Trim trailing empty lines.
    while out.last().is_some_and(|(s, _)| s.trim().is_empty()) {
        out.pop();
    }
    out
}

/// Wrap text to `width` columns at spaces (hard-cutting words longer than a line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    // Text from outside passes the output wall (sanitize.rs) here, once per drawn line.
    let text = esc(&text.replace('\t', "    ")).into_owned();
    let mut out = Vec::new();
    let mut line = String::new();
    let mut w = 0usize;
    for word in text.split(' ') {
        let ww: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
        let sep = if line.is_empty() { 0 } else { 1 };
        if w + sep + ww <= width {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            w += sep + ww;
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
            w = 0;
        }
        if ww <= width {
            line.push_str(word);
            w = ww;
        } else {
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if w + cw > width {
                    out.push(std::mem::take(&mut line));
                    w = 0;
                }
                line.push(c);
                w += cw;
            }
        }
    }
    out.push(line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words_and_long_tokens() {
        assert_eq!(wrap("hello world foo", 11), vec!["hello world", "foo"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 5), vec![""]);
        assert_eq!(wrap("日本語テキスト", 6), vec!["日本語", "テキス", "ト"]);
    }

    #[test]
    fn folds_quotes_and_signatures() {
        let body = "Thanks!\n\nOn Mon, Ann wrote:\n> one\n> two\n\n-- \nAnn\nACME";
        let parts = fold_body(body, false);
        assert_eq!(parts[0], ("Thanks!".into(), Part::Text));
        assert!(
            parts
                .iter()
                .any(|(s, p)| *p == Part::Folded && s.contains("3 quoted lines"))
        );
        assert!(parts.iter().any(|(s, _)| s.contains("signature, 3 lines")));
        let open = fold_body(body, true);
        assert!(open.iter().any(|(s, p)| *p == Part::Quote && s == "> two"));
    }
}
