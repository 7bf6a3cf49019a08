//! The profile pane: who this person is across every channel.

use super::{channel_color, fit, pane_block};
use crate::model::IdentityKind;
use crate::tui::app::{App, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(f: &mut Frame<'_>, app: &App, area: Rect) {
    let t = &app.theme;
    let block = pane_block(app, " contact ".into(), app.focus == Pane::Profile);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(p) = &app.profile.profile else {
        f.render_widget(
            Paragraph::new(Span::styled(" no contact", Style::default().fg(t.dim))),
            inner,
        );
        return;
    };
    let w = inner.width as usize;
    let label = |s: &str| Span::styled(format!("{s:<9}"), Style::default().fg(t.dim));
    let mut lines: Vec<Line> = Vec::new();
    let mut name = vec![Span::styled(
        fit(&p.contact.name, w.saturating_sub(6)),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if p.contact.vip {
        name.push(Span::styled(
            " ★ VIP",
            Style::default().fg(t.vip).add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::from(name));
    lines.push(Line::from(Span::styled(
        "─".repeat(w),
        Style::default().fg(t.border),
    )));
    for kind in IdentityKind::ALL {
        let ids: Vec<_> = p.identities.iter().filter(|i| i.kind == *kind).collect();
        for (i, id) in ids.iter().enumerate() {
            let l = if i == 0 {
                label(kind.as_str())
            } else {
                label("")
            };
            let mut spans = vec![l, Span::raw(fit(&id.value, w.saturating_sub(9)))];
            if id.unreachable.is_some() {
                spans.push(Span::styled(" ✗ unreachable", Style::default().fg(t.error)));
            }
            lines.push(Line::from(spans));
        }
    }
    // Channels the customer said STOP on: nothing goes there until they say START.
    for (channel, value, keyword, _) in &p.opted_out {
        lines.push(Line::from(Span::styled(
            fit(
                &format!("✗ {} opted out ({}) {}", channel.label(), keyword, value),
                w,
            ),
            Style::default().fg(t.error),
        )));
    }
    // Consent across channels: nothing at all, or no marketing anywhere (replies still go).
    let consent = &p.consent;
    let newest = consent.history.iter().rev().find(|h| h.opted_out);
    let how = newest
        .map(|h| match h.channel {
            Some(c) => format!(" ({} on {})", h.source, c.label()),
            None => format!(" ({})", h.source),
        })
        .unwrap_or_default();
    if consent.all_out {
        lines.push(Line::from(Span::styled(
            fit(&format!("✗ no messages at all{how}"), w),
            Style::default().fg(t.error),
        )));
    } else if consent.marketing_out {
        lines.push(Line::from(Span::styled(
            fit(&format!("✗ no marketing{how}"), w),
            Style::default().fg(t.warn),
        )));
    }
    // What the customer typed but nobody verified: never an identity (`:claim link` makes it
    // one). One line when it fits the pane, else the address and "(unverified)" below it.
    let warn = Style::default().fg(t.warn);
    for c in &p.claims {
        let whole = format!("claims to be {} (unverified)", c.value);
        if whole.chars().count() <= w {
            lines.push(Line::from(Span::styled(whole, warn)));
        } else {
            lines.push(Line::from(Span::styled(
                fit(&format!("claims to be {}", c.value), w),
                warn,
            )));
            lines.push(Line::from(Span::styled("  (unverified)", warn)));
        }
    }
    lines.push(Line::from(Span::styled(
        "─".repeat(w),
        Style::default().fg(t.border),
    )));
    // Badges wrap under the label when a customer uses more channels than fit on one line.
    let mut chans = vec![label("channels")];
    let mut used = 9;
    for ch in &p.channels {
        let badge = format!("{} ", ch.badge());
        let bw = unicode_width::UnicodeWidthStr::width(badge.as_str());
        if used + bw > w && chans.len() > 1 {
            lines.push(Line::from(std::mem::replace(&mut chans, vec![label("")])));
            used = 9;
        }
        used += bw;
        chans.push(Span::styled(
            badge,
            Style::default().fg(channel_color(app, *ch)),
        ));
    }
    lines.push(Line::from(chans));
    if let Some(ch) = p.contact.last_channel {
        lines.push(Line::from(vec![
            label("last via"),
            Span::styled(ch.badge(), Style::default().fg(channel_color(app, ch))),
            Span::styled(
                format!(" {}", crate::tui::time::age(p.contact.last_seen, app.now)),
                Style::default().fg(t.dim),
            ),
        ]));
    }
    lines.push(Line::from(vec![
        label("since"),
        Span::raw(crate::tui::time::full(p.first_seen)[..10].to_string()),
    ]));
    lines.push(Line::from(vec![
        label("history"),
        Span::raw(format!(
            "{} conv · {} msg",
            p.conversation_count, p.message_count
        )),
    ]));
    if !p.tags.is_empty() {
        lines.push(Line::from(vec![
            label("tags"),
            Span::styled(
                fit(&p.tags.join(", "), w.saturating_sub(9)),
                Style::default().fg(t.accent),
            ),
        ]));
    }
    // The lifecycle stage and lead score, then the custom fields ([[fields]]).
    if p.contact.stage.is_some() || p.contact.lead_score != 0 || !p.fields.is_empty() {
        let mut spans = vec![label("stage")];
        match &p.contact.stage {
            Some(s) => {
                spans.push(Span::styled(
                    crate::sanitize::for_terminal_line(s).into_owned(),
                    Style::default().fg(t.accent),
                ));
                if !p.stage_configured {
                    spans.push(Span::styled(" (not in config)", Style::default().fg(t.dim)));
                }
            }
            None => spans.push(Span::styled("—", Style::default().fg(t.dim))),
        }
        spans.push(Span::styled(
            format!(" · score {}", p.contact.lead_score),
            Style::default().fg(t.dim),
        ));
        lines.push(Line::from(spans));
    }
    for fld in &p.fields {
        let name = crate::sanitize::for_terminal_line(&fld.label).into_owned();
        let head = if name.chars().count() < 9 {
            label(&name)
        } else {
            Span::styled(format!("{} ", fit(&name, 8)), Style::default().fg(t.dim))
        };
        let mut spans = vec![head];
        match &fld.value {
            Some(v) => {
                let v = crate::sanitize::for_terminal_line(v).into_owned();
                let room = w.saturating_sub(9);
                if fld.configured {
                    spans.push(Span::raw(fit(&v, room)));
                } else {
                    spans.push(Span::raw(fit(&v, room.saturating_sub(16).max(4))));
                    spans.push(Span::styled(" (not in config)", Style::default().fg(t.dim)));
                }
            }
            None => spans.push(Span::styled("—", Style::default().fg(t.dim))),
        }
        lines.push(Line::from(spans));
    }
    // Satisfaction: the latest scores (newest first), the newest comment under them.
    if let Some(newest) = p.csat.first() {
        let mut spans = vec![label("csat")];
        for (i, r) in p.csat.iter().enumerate() {
            let score = r.score.unwrap_or(0);
            let color = match score {
                1 | 2 => t.error,
                3 => t.warn,
                _ => t.accent,
            };
            if i > 0 {
                spans.push(Span::styled(" ", Style::default()));
            }
            spans.push(Span::styled(
                format!("{score}/5"),
                Style::default().fg(color),
            ));
        }
        lines.push(Line::from(spans));
        if let Some(c) = newest.comment.as_deref().filter(|c| !c.is_empty()) {
            lines.push(Line::from(vec![
                label(""),
                Span::styled(
                    fit(
                        &format!("“{}”", crate::sanitize::for_terminal_line(c)),
                        w.saturating_sub(9),
                    ),
                    Style::default().fg(t.dim),
                ),
            ]));
        }
    }
    if !p.open_tasks.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "─ open tasks (g t) ",
            Style::default().fg(t.accent),
        )));
        for task in &p.open_tasks {
            let (due, style) = match task.due_at {
                Some(d) if d <= app.now => (
                    format!("overdue {}", crate::tui::time::age(d, app.now)),
                    Style::default().fg(t.error),
                ),
                Some(d) => (crate::when::label(d, app.now), Style::default().fg(t.warn)),
                None => (String::new(), Style::default().fg(t.dim)),
            };
            let text =
                crate::sanitize::for_terminal_line(&format!("☐ {} {}", task.kind, task.title))
                    .into_owned();
            lines.push(Line::from(Span::raw(fit(&text, w))));
            if !due.is_empty() {
                lines.push(Line::from(Span::styled(fit(&format!("  {due}"), w), style)));
            }
        }
    }
    if let Some(r) = app.queue.current() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            format!("─ conversation #{} ", r.id),
            Style::default().fg(t.accent),
        )));
        lines.push(Line::from(vec![
            label("status"),
            Span::raw(r.status.as_str()),
        ]));
        if let Some(until) = r.snoozed_until {
            lines.push(Line::from(vec![
                label("until"),
                Span::raw(crate::tui::time::full(until)),
            ]));
        }
        lines.push(Line::from(vec![
            label("priority"),
            Span::raw(r.priority.as_str()),
        ]));
        lines.push(Line::from(vec![
            label("assignee"),
            Span::raw(fit(
                r.assignee.as_deref().unwrap_or("nobody"),
                w.saturating_sub(9),
            )),
        ]));
        if let Some(team) = &r.team {
            lines.push(Line::from(vec![
                label("team"),
                Span::raw(fit(team, w.saturating_sub(9))),
            ]));
        }
        if !app.profile.conversation_tags.is_empty() {
            lines.push(Line::from(vec![
                label("tags"),
                Span::styled(
                    fit(
                        &app.profile.conversation_tags.join(", "),
                        w.saturating_sub(9),
                    ),
                    Style::default().fg(t.accent),
                ),
            ]));
        }
        if let Some(s) = &r.subject {
            lines.push(Line::from(vec![
                label("subject"),
                Span::raw(fit(s, w.saturating_sub(9))),
            ]));
        }
    }
    f.render_widget(Paragraph::new(lines), inner);
}
