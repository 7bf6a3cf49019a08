//! Drawing a sheet (see [`crate::tui::sheet`]): a full-screen box over the panes with the
//! view's title, its rows (the selected one highlighted, marked ones bold with a dot) and a
//! footer with the view's status and the keys of the `[sheet]` keymap.

use super::{fit, pad};
use crate::tui::app::App;
use crate::tui::keymap::Mode as KeyMode;
use crate::tui::sheet::Sheet;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};

/// Commands of the `[sheet]` keymap that move; the footer hints at the others.
const MOVES: &[&str] = &[
    "move_down",
    "move_up",
    "top",
    "bottom",
    "half_page_down",
    "half_page_up",
];

pub fn draw(f: &mut Frame<'_>, app: &App, sheet: &Sheet, area: Rect) {
    let t = &app.theme;
    f.render_widget(Clear, area);
    let more = match (sheet.more_above, sheet.more_below) {
        (true, true) => " · more above and below",
        (true, false) => " · more above",
        (false, true) => " · more below",
        (false, false) => "",
    };
    let loading = if sheet.loading { " …" } else { "" };
    let title = format!(" {}{more}{loading} ", sheet.source.title());
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(Style::default().fg(t.border_focused))
        .title(Span::styled(
            fit(&title, area.width.saturating_sub(4) as usize),
            Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [list, footer] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let width = list.width as usize;
    if sheet.rows.is_empty() {
        let msg = if sheet.loading {
            "loading…".to_string()
        } else {
            sheet.source.empty()
        };
        f.render_widget(
            Paragraph::new(Span::styled(
                fit(&format!(" {msg}"), width),
                Style::default().fg(t.dim),
            )),
            list,
        );
    } else {
        let height = list.height as usize;
        let first = crate::tui::ui::queue::first_visible(
            sheet.selected,
            sheet.scroll,
            height,
            sheet.rows.len(),
        );
        let lines: Vec<Line> = sheet.rows[first..(first + height).min(sheet.rows.len())]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let selected = first + i == sheet.selected;
                let base = if selected {
                    Style::default().bg(t.selected_bg).fg(t.selected_fg)
                } else {
                    Style::default().fg(t.fg)
                };
                let text_style = if r.marked {
                    base.add_modifier(Modifier::BOLD)
                } else {
                    base
                };
                Line::from(vec![
                    Span::styled(if selected { "▌" } else { " " }, base.fg(t.accent)),
                    Span::styled(if r.marked { "● " } else { "  " }, base.fg(t.accent)),
                    Span::styled(pad(&r.text, width.saturating_sub(3)), text_style),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), list);
    }
    // Footer: the view's status, then the keys (from the keymap, so a rebinding shows).
    let mut spans = Vec::new();
    if !sheet.footer.is_empty() {
        spans.push(Span::styled(
            format!("{}  ", super::esc(&sheet.footer)),
            Style::default().fg(t.fg),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for b in app.keymap.bindings(KeyMode::Sheet) {
        let name = b.command.split(' ').next().unwrap_or_default().to_string();
        let generic = matches!(name.as_str(), "open" | "cancel" | "help");
        if MOVES.contains(&name.as_str())
            || seen.contains(&name)
            || !(generic || sheet.source.commands().contains(&name.as_str()))
        {
            continue;
        }
        seen.push(name);
        spans.push(Span::styled(
            b.keys,
            Style::default().fg(t.accent).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(
            format!(" {} ", b.command.replace('_', " ")),
            Style::default().fg(t.dim),
        ));
    }
    spans.push(Span::styled(
        "j/k gg/G ^d/^u move",
        Style::default().fg(t.dim),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), footer);
}
