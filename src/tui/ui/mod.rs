//! Drawing: a pure function of [`App`]. No I/O, no store access; every pane file renders
//! from the state the update loop prepared.

pub mod help;
mod profile;
pub mod queue;
pub mod reports;
pub mod sheet;
mod status;
pub mod timeline;

use crate::tui::app::{App, Mode, Pane};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};

/// The areas of one frame.
pub struct Areas {
    pub queue: Option<Rect>,
    pub timeline: Option<Rect>,
    pub profile: Option<Rect>,
    pub status: Rect,
    pub message: Rect,
}

/// Compute the layout for a terminal size: three panes from `three_pane_min_width` columns;
/// below, queue + (timeline or profile); below 60 columns, only the focused pane.
pub fn areas(app: &App, area: Rect) -> Areas {
    let [main, status, message] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (mut q, mut t, mut p) = (None, None, None);
    if app.three_panes() {
        let [a, b, c] = Layout::horizontal([
            Constraint::Percentage(38),
            Constraint::Percentage(40),
            Constraint::Percentage(22),
        ])
        .areas(main);
        (q, t, p) = (Some(a), Some(b), Some(c));
    } else if area.width >= 60 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)])
            .areas(main);
        q = Some(a);
        if app.show_profile {
            p = Some(b);
        } else {
            t = Some(b);
        }
    } else {
        match app.focus {
            Pane::Queue => q = Some(main),
            Pane::Timeline if !app.show_profile => t = Some(main),
            _ => p = Some(main),
        }
    }
    Areas {
        queue: q,
        timeline: t,
        profile: p,
        status,
        message,
    }
}

pub fn draw(f: &mut Frame<'_>, app: &App) {
    let a = areas(app, f.area());
    if let Some(r) = a.queue {
        queue::draw(f, app, r);
    }
    if let Some(r) = a.timeline {
        timeline::draw(f, app, r);
    }
    if let Some(r) = a.profile {
        profile::draw(f, app, r);
    }
    status::draw_status(f, app, a.status);
    status::draw_message(f, app, a.message);
    if let Mode::Sheet(sheet) = &app.mode {
        let [main, _, _] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(f.area());
        sheet::draw(f, app, sheet, main);
    }
    if let Mode::Reports(view) = &app.mode {
        let [main, _, _] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(f.area());
        reports::draw(f, app, view, main);
    }
    if let Mode::Help { scroll } = &app.mode {
        help::draw(f, app, f.area(), *scroll);
    }
}

/// A pane's frame: rounded borders, highlighted when focused.
pub(crate) fn pane_block<'a>(app: &App, title: String, focused: bool) -> Block<'a> {
    let t = &app.theme;
    let style = if focused {
        Style::default().fg(t.border_focused)
    } else {
        Style::default().fg(t.border)
    };
    let title_style = if focused {
        Style::default().fg(t.accent).add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(t.fg)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(style)
        .title(ratatui::text::Span::styled(title, title_style))
}

/// Cut `s` to at most `width` terminal columns, with an ellipsis when cut.
/// One line of at most `width` columns, cut with `…`. Text from outside passes the output wall
/// here (sanitize.rs): a control character shows as an escape, never reaches the terminal.
pub(crate) fn fit(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let s = &*esc(s);
    let mut out = String::new();
    let mut w = 0;
    let total: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return s.to_string();
    }
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `s` cut or padded with spaces to exactly `width` columns.
pub(crate) use crate::sanitize::for_terminal_line as esc;

pub(crate) fn pad(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut out = fit(s, width);
    let w = out.width();
    if w < width {
        out.push_str(&" ".repeat(width - w));
    }
    out
}

pub(crate) fn channel_color(app: &App, ch: crate::model::Channel) -> ratatui::style::Color {
    match ch {
        crate::model::Channel::Email => app.theme.email,
        crate::model::Channel::Telegram => app.theme.telegram,
        crate::model::Channel::WebChat => app.theme.webchat,
        crate::model::Channel::WhatsApp => app.theme.whatsapp,
        crate::model::Channel::Instagram | crate::model::Channel::Messenger => app.theme.meta,
        crate::model::Channel::Sms => app.theme.sms,
        crate::model::Channel::Phone | crate::model::Channel::Event => app.theme.event,
    }
}
