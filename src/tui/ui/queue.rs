//! The queue pane: one line per conversation, a window of the whole view.

use super::{channel_color, fit, pad, pane_block};
use crate::model::{Channel, Direction, Priority, Status};
use crate::tui::app::{App, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(f: &mut Frame<'_>, app: &App, area: Rect) {
    let q = &app.queue;
    let view = q.view.as_ref().map(|v| v.label()).unwrap_or_default();
    let pos = if q.rows.is_empty() {
        "0".to_string()
    } else {
        format!(
            "{}/{}",
            q.offset + q.selected + 1,
            q.total.max(q.rows.len() as i64)
        )
    };
    let loading = if q.loading { " …" } else { "" };
    // A search read a bounded number of matches: say when there are more than shown.
    let more = match &q.search {
        Some(s) if s.more && s.limit < crate::tui::app::SEARCH_MAX => "+ · more below",
        Some(s) if s.more => "+ · more: narrow the search",
        _ => "",
    };
    let title = format!(" {view} · {pos}{more}{loading} ");
    let block = pane_block(app, title, app.focus == Pane::Queue);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    if q.rows.is_empty() {
        let msg = if q.loading {
            "loading…"
        } else {
            "nothing here: :view all, or / to search"
        };
        f.render_widget(
            Paragraph::new(Span::styled(
                format!(" {msg}"),
                Style::default().fg(app.theme.dim),
            )),
            inner,
        );
        return;
    }
    // Keep the selection visible with a few rows of context (scrolloff).
    let first = first_visible(q.selected, q.scroll, height, q.rows.len());
    let width = inner.width as usize;
    let lines: Vec<Line> = q.rows[first..(first + height).min(q.rows.len())]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            row_line(
                app,
                r,
                first + i == q.selected,
                q.in_visual(first + i),
                width,
            )
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// The first visible row: the previous scroll position, moved just enough to show the
/// selection with up to 3 rows of context.
pub fn first_visible(selected: usize, scroll: usize, height: usize, len: usize) -> usize {
    let off = 3.min(height.saturating_sub(1) / 2);
    let mut first = scroll.min(len.saturating_sub(1));
    if selected < first + off {
        first = selected.saturating_sub(off);
    } else if selected + off >= first + height {
        first = (selected + off + 1).saturating_sub(height);
    }
    first.min(len.saturating_sub(height))
}

fn row_line<'a>(
    app: &App,
    r: &crate::api::QueueRow,
    selected: bool,
    visual: bool,
    width: usize,
) -> Line<'a> {
    let t = &app.theme;
    let base = if selected {
        Style::default().bg(t.selected_bg).fg(t.selected_fg)
    } else if visual {
        // `V`: the selected rows, marked in the first column and reversed.
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
    };
    let mut spans: Vec<Span> = Vec::new();
    spans.push(Span::styled(
        match (selected, visual) {
            (true, _) => "▌",
            (false, true) => "┃",
            _ => " ",
        },
        base.fg(t.accent),
    ));
    let (status_glyph, status_color) = match r.status {
        Status::Open => ("●", t.ok),
        Status::Pending => ("◐", t.warn),
        Status::Snoozed => ("z", t.dim),
        Status::Resolved => ("✓", t.dim),
    };
    spans.push(Span::styled(status_glyph, base.fg(status_color)));
    let prio_style = match r.priority {
        Priority::Urgent | Priority::High => base.fg(t.urgent).add_modifier(Modifier::BOLD),
        _ => base.fg(t.dim),
    };
    spans.push(Span::styled(r.priority.marker(), prio_style));
    // ★ a VIP; ⊘ a contact who opted out (of marketing, or of everything).
    spans.push(match (r.vip, r.opted_out) {
        (true, _) => Span::styled("★", base.fg(t.vip)),
        (false, true) => Span::styled("⊘", base.fg(t.dim)),
        (false, false) => Span::styled(" ", base),
    });
    // Presence: a column only while other agents are online (◇ viewing, ◆ typing, then
    // their initials).
    let presence_w =
        if app.online_agents() > usize::from(app.presence.iter().any(|e| e.agent == app.agent)) {
            4
        } else {
            0
        };
    if presence_w > 0 {
        let (cell, typing) = presence_cell(app, r.id);
        let st = if typing {
            base.fg(t.warn).add_modifier(Modifier::BOLD)
        } else {
            base.fg(t.accent)
        };
        spans.push(Span::styled(cell, st));
    }
    // Narrow pane: the preview would be a stub, so the name takes its room instead.
    let fixed = 4 + presence_w + 1 + 3 + 5;
    let name_w = if width >= 70 {
        20
    } else if width >= fixed + 14 + 16 {
        14
    } else {
        width.saturating_sub(fixed).max(6)
    };
    let unread = r.last_direction == Direction::In && r.status == Status::Open;
    let name_style = if unread {
        base.add_modifier(Modifier::BOLD)
    } else {
        base
    };
    spans.push(Span::styled(pad(&r.contact_name, name_w), name_style));
    spans.push(Span::styled(" ", base));
    for ch in channel_cells(&r.channels, r.last_channel) {
        match ch {
            Some(ch) => {
                let mut st = base.fg(channel_color(app, ch));
                if ch == r.last_channel {
                    st = st.add_modifier(Modifier::BOLD);
                }
                spans.push(Span::styled(ch.glyph().to_string(), st));
            }
            None => spans.push(Span::styled(" ", base)),
        }
    }
    let age = crate::tui::time::age(r.last_activity, app.now);
    spans.push(Span::styled(format!(" {age:>3} "), base.fg(t.dim)));
    // SLA: a column only while a loaded row has a deadline ("⏱42m", warn color when near,
    // error when past).
    let sla_w = if app.queue.rows.iter().any(|r| r.sla_due.is_some()) {
        8
    } else {
        0
    };
    if sla_w > 0 {
        match sla_left(app, r) {
            Some((text, level)) => {
                let st = match level {
                    SlaLevel::Ok => base.fg(t.dim),
                    SlaLevel::Near => base.fg(t.warn).add_modifier(Modifier::BOLD),
                    SlaLevel::Breached => base.fg(t.error).add_modifier(Modifier::BOLD),
                };
                spans.push(Span::styled(pad(&format!("⏱{text}"), 7), st));
            }
            None => spans.push(Span::styled(" ".repeat(7), base)),
        }
        spans.push(Span::styled(" ", base));
    }
    let mut used = 1 + 1 + 1 + 1 + presence_w + name_w + 1 + 3 + 5 + sla_w;
    if width >= 70 {
        let who = r.assignee.as_deref().unwrap_or("·");
        spans.push(Span::styled(
            pad(who, 7),
            base.fg(if r.assignee.is_some() { t.fg } else { t.dim }),
        ));
        spans.push(Span::styled(" ", base));
        used += 8;
    }
    let arrow = match r.last_direction {
        Direction::In => "",
        Direction::Out => "↩ ",
        Direction::Note => "✎ ",
    };
    let rest = width.saturating_sub(used);
    if rest < 6 {
        return Line::from(spans);
    }
    // A search result shows the matching message, the match highlighted.
    if let Some((_, snippet)) = app.queue.search.as_ref().and_then(|s| s.first.get(&r.id)) {
        let text = pad(&fit(snippet, rest + 2), rest + 2);
        let mut inside = false;
        for piece in text.split_inclusive(['«', '»']) {
            let (body, mark) = match piece.strip_suffix('«').or_else(|| piece.strip_suffix('»')) {
                Some(b) => (b, true),
                None => (piece, false),
            };
            let st = if inside {
                base.fg(t.accent).add_modifier(Modifier::BOLD)
            } else {
                base.fg(t.fg)
            };
            spans.push(Span::styled(body.to_string(), st));
            if mark {
                inside = !inside;
            }
        }
        return Line::from(spans);
    }
    let preview = format!("{arrow}{}", r.last_preview);
    spans.push(Span::styled(
        pad(&fit(&preview, rest), rest),
        base.fg(if unread { t.fg } else { t.dim }),
    ));
    Line::from(spans)
}

/// How near a conversation's SLA deadline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaLevel {
    Ok,
    /// Within the policy's `warn_before` (the server marked it warned), or 15 minutes.
    Near,
    Breached,
}

/// The time left to a row's SLA deadline ("42m", "-5m") and how near it is; None: no
/// deadline.
pub fn sla_left(app: &App, r: &crate::api::QueueRow) -> Option<(String, SlaLevel)> {
    let due = r.sla_due?;
    let left = due - app.now;
    let level = if left <= 0 || r.sla_state.as_deref() == Some("breached") {
        SlaLevel::Breached
    } else if r.sla_state.as_deref() == Some("warned") || left <= crate::sla::DEFAULT_WARN_BEFORE_MS
    {
        SlaLevel::Near
    } else {
        SlaLevel::Ok
    };
    Some((crate::sla::fmt_left(left), level))
}

/// The presence cell of a row, 4 columns: blank when nobody else is there, else `◇` (viewing)
/// or `◆` (someone types a reply or note) and up to two initials. True when someone types.
pub fn presence_cell(app: &App, conversation: crate::model::ConversationId) -> (String, bool) {
    let others = app.others_in(conversation);
    if others.is_empty() {
        return ("    ".to_string(), false);
    }
    let typing = others
        .iter()
        .any(|e| e.activity != crate::api::Activity::Viewing);
    let mut initials: String = others
        .iter()
        .filter_map(|e| {
            super::esc(&e.display)
                .chars()
                .find(|c| c.is_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
        })
        .take(2)
        .collect();
    while initials.chars().count() < 2 {
        initials.push(' ');
    }
    (
        format!("{}{initials} ", if typing { '◆' } else { '◇' }),
        typing,
    )
}

/// The three cells of the channel column. Email, Telegram and web chat keep their own cell
/// each (✉✈◍ line up down the queue); a conversation on other channels shows the channel
/// the customer last used, then the others, three at most.
fn channel_cells(used: &[Channel], last: Channel) -> [Option<Channel>; 3] {
    const CLASSIC: [Channel; 3] = [Channel::Email, Channel::Telegram, Channel::WebChat];
    if used.iter().all(|c| CLASSIC.contains(c)) {
        return CLASSIC.map(|c| used.contains(&c).then_some(c));
    }
    let mut cells = [None; 3];
    let ordered = std::iter::once(last).filter(|c| used.contains(c)).chain(
        Channel::ALL
            .iter()
            .copied()
            .filter(|c| *c != last && used.contains(c)),
    );
    for (cell, ch) in cells.iter_mut().zip(ordered) {
        *cell = Some(ch);
    }
    cells
}

#[cfg(test)]
mod channel_tests {
    use super::*;

    #[test]
    fn the_classic_channels_keep_their_cells_and_others_lead_with_the_last() {
        use Channel::*;
        assert_eq!(
            channel_cells(&[WebChat], WebChat),
            [None, None, Some(WebChat)]
        );
        assert_eq!(
            channel_cells(&[Email, WebChat], Email),
            [Some(Email), None, Some(WebChat)]
        );
        assert_eq!(
            channel_cells(&[Email, WhatsApp, Sms, Phone], Sms),
            [Some(Sms), Some(Email), Some(WhatsApp)]
        );
        assert_eq!(
            channel_cells(&[WhatsApp], WhatsApp),
            [Some(WhatsApp), None, None]
        );
    }
}
