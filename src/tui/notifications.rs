//! The notifications view (`g n`, `:notifications`): the agent's notifications newest first in
//! a [`crate::tui::sheet`], unread ones marked. Enter opens the conversation on the message
//! and marks it read; `mark_all_read` (R in lists) reads them all. Also the terminal alerts a
//! new notification may ring (`[notifications]` of the personal config).

use crate::api::{NotificationKind, NotificationPage, NotificationRow, Request, Response};
use crate::config::{DesktopNotify, NotifySettings};
use crate::model::Millis;
use crate::tui::action::Action;
use crate::tui::sheet::{PageAt, SheetEnter, SheetPage, SheetRow, SheetSource, SheetTarget};

/// The sheet's name for [`SheetSource::name`].
pub const NAME: &str = "notifications";

/// The notifications list.
pub struct NotificationsView {
    /// The clock when the list opened (times are shown against it).
    pub now: Millis,
}

/// What the agent is told, as one line: "bob mentioned you", "a new message".
pub fn what(r: &NotificationRow) -> String {
    match r.kind {
        NotificationKind::Mention => format!("{} mentioned you", r.actor),
        NotificationKind::Assigned => format!("{} assigned you", r.actor),
        NotificationKind::Message => "new customer message".to_string(),
        NotificationKind::SlaWarning => "SLA due soon".to_string(),
        NotificationKind::SlaBreach => "SLA breached".to_string(),
        NotificationKind::TaskDue => "task due".to_string(),
        NotificationKind::Rule => format!("rule {}", r.actor.trim_start_matches("rule:")),
        NotificationKind::Other => "notification".to_string(),
    }
}

/// A row of the list: time, what, where, the excerpt. Escaped for the terminal (names and
/// excerpts come from customers and agents).
pub fn line(r: &NotificationRow, now: Millis) -> String {
    let conv = r
        .conversation_id
        .map(|c| format!("#{c}"))
        .unwrap_or_default();
    let text = format!(
        "{:>12}  {:<26} {:>6} {:<18} {}",
        crate::tui::time::short(r.at, now),
        what(r),
        conv,
        r.contact_name,
        r.excerpt
    );
    crate::sanitize::for_terminal_line(&text).into_owned()
}

fn page_of(at: PageAt) -> NotificationPage {
    match at {
        PageAt::Top => NotificationPage::Newest,
        PageAt::Bottom => NotificationPage::Oldest,
        // Newest first: the rows below a row are older, those above newer.
        PageAt::After(k) => NotificationPage::Before(k),
        PageAt::Before(k) => NotificationPage::After(k),
    }
}

fn at_of(page: NotificationPage) -> PageAt {
    match page {
        NotificationPage::Newest => PageAt::Top,
        NotificationPage::Oldest => PageAt::Bottom,
        NotificationPage::Before(k) => PageAt::After(k),
        NotificationPage::After(k) => PageAt::Before(k),
    }
}

/// The footer: the unread count and what R does.
pub fn footer(unread: i64) -> String {
    match unread {
        0 => "all read".to_string(),
        1 => "1 unread".to_string(),
        n => format!("{n} unread"),
    }
}

impl SheetSource for NotificationsView {
    fn title(&self) -> String {
        "notifications (newest first)".into()
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, seq: u64, at: PageAt, limit: usize) -> Request {
        Request::Notifications {
            seq,
            page: page_of(at),
            limit,
            unread_only: false,
        }
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Notifications {
            seq,
            page,
            rows,
            more,
            unread,
        } = resp
        else {
            return None;
        };
        Some(SheetPage {
            seq: *seq,
            at: at_of(*page),
            rows: rows
                .iter()
                .map(|r| SheetRow {
                    key: r.id,
                    text: line(r, self.now),
                    marked: r.read_at.is_none(),
                    target: r.conversation_id.map(|c| SheetTarget {
                        conversation: c,
                        message: r.message_id,
                    }),
                })
                .collect(),
            more: *more,
            footer: Some(footer(*unread)),
        })
    }

    fn enter(&mut self, row: &SheetRow) -> SheetEnter {
        SheetEnter {
            open: row.target,
            close: row.target.is_some(),
            requests: if row.marked {
                vec![Request::MarkNotificationsRead {
                    ids: vec![row.key],
                    all: false,
                }]
            } else {
                Vec::new()
            },
            info: None,
        }
    }

    fn commands(&self) -> &'static [&'static str] {
        &["mark_all_read"]
    }

    fn action(&mut self, action: &Action, _selected: Option<&SheetRow>) -> Option<SheetEnter> {
        match action {
            Action::MarkAllRead => Some(SheetEnter {
                requests: vec![Request::MarkNotificationsRead {
                    ids: Vec::new(),
                    all: true,
                }],
                ..SheetEnter::default()
            }),
            _ => None,
        }
    }

    fn empty(&self) -> String {
        "no notifications yet: @mentions in notes, assignments and customer messages in your conversations land here".into()
    }
}

/// The largest text a desktop notification carries.
const DESKTOP_TEXT: usize = 180;

/// Text for inside an OSC sequence: escaped like everything drawn (sanitize), then without
/// any control character left (BEL or ESC would end or break the sequence), `;` (OSC 777's
/// separator) as `,`, and cut to a sane length.
fn osc_text(s: &str) -> String {
    crate::sanitize::for_terminal_line(s)
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == ';' { ',' } else { c })
        .take(DESKTOP_TEXT)
        .collect()
}

/// What to write to the terminal for a new notification, per the personal config: a BEL, an
/// OSC 9 or OSC 777 desktop notification. Neither prints a character or moves the cursor,
/// so written between two frames it leaves ratatui's screen as drawn.
pub fn alert(settings: &NotifySettings, r: &NotificationRow) -> String {
    let mut out = String::new();
    let body = format!(
        "{} · {}{}",
        what(r),
        r.conversation_id
            .map(|c| format!("#{c} "))
            .unwrap_or_default(),
        r.contact_name
    );
    match settings.desktop {
        DesktopNotify::None => {}
        DesktopNotify::Osc9 => {
            out.push_str(&format!("\x1b]9;braid: {}\x07", osc_text(&body)));
        }
        DesktopNotify::Osc777 => {
            out.push_str(&format!("\x1b]777;notify;braid;{}\x07", osc_text(&body)));
        }
    }
    if settings.bell {
        out.push('\x07');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{ConversationId, EventId};

    fn row(contact: &str, actor: &str) -> NotificationRow {
        NotificationRow {
            id: 7,
            agent: "bob".into(),
            kind: NotificationKind::Mention,
            event_id: EventId(3),
            conversation_id: Some(ConversationId(12)),
            message_id: None,
            actor: actor.into(),
            at: 0,
            read_at: None,
            contact_name: contact.into(),
            excerpt: "see \x1b[31mthis".into(),
        }
    }

    #[test]
    fn alerts_follow_the_config_and_no_escape_of_a_customer_gets_through() {
        let r = row("Evil\x07\x1b]0;pwned\x1b\\;x\u{9c}", "alice");
        let none = NotifySettings::default();
        assert_eq!(alert(&none, &r), "");
        let bell = NotifySettings {
            bell: true,
            desktop: DesktopNotify::None,
        };
        assert_eq!(alert(&bell, &r), "\x07");
        for desktop in [DesktopNotify::Osc9, DesktopNotify::Osc777] {
            let s = alert(
                &NotifySettings {
                    bell: false,
                    desktop,
                },
                &r,
            );
            // One sequence: the ESC that opens it, the BEL that ends it, nothing between.
            assert_eq!(s.matches('\x1b').count(), 1, "{s:?}");
            assert_eq!(s.matches('\x07').count(), 1, "{s:?}");
            assert!(s.starts_with("\x1b]") && s.ends_with('\x07'), "{s:?}");
            let inner = &s[2..s.len() - 1];
            assert!(!inner.chars().any(|c| c.is_control()), "{inner:?}");
            assert!(
                inner.contains("alice mentioned you · #12 Evil"),
                "{inner:?}"
            );
            if desktop == DesktopNotify::Osc777 {
                // The customer's `;` cannot add fields.
                assert_eq!(inner.matches(';').count(), 3, "{inner:?}");
            }
        }
    }

    #[test]
    fn a_line_is_escaped() {
        let l = line(&row("Ann", "alice"), 0);
        assert!(!l.chars().any(|c| c.is_control()), "{l:?}");
        assert!(l.contains("alice mentioned you"));
        assert!(l.contains("#12"));
    }
}
