//! `:audit [filters]`: the audit log in a sheet, newest first, paged by event id as you scroll
//! (a million events page like a hundred), Enter opens the event's conversation.
//!
//! Filters, any order: `agent:NAME`, `conv:ID` (or `#ID`), `kind:K[,K]`, `since:T`, `until:T`
//! and where to start, `at:50%` (that far into the log, 0% the oldest), `at:2026-11-03` (a
//! date, UTC, or an age like `3d`) or `at:1234` (an event id). Times as `braid audit` takes
//! them. The server decides what this agent may see (see [`crate::api::Request::Audit`]).

use crate::api::{AuditFilter, AuditPosition, Request, Response, describe_event};
use crate::model::{EventId, Millis};
use crate::tui::sheet::{PageAt, SheetPage, SheetRow, SheetSource, SheetTarget};
use std::sync::Mutex;

pub struct AuditView {
    pub filter: AuditFilter,
    /// Where the first page starts (None: the newest event). Used once: `gg` goes to the
    /// newest event.
    pub start: Option<AuditPosition>,
    /// The pages asked for: which way each one walks.
    asked: Mutex<Vec<(u64, PageAt, bool)>>,
    /// The first page was a jump with newer events above it.
    newer_above_top: bool,
    /// A jump asked from inside the sheet (`%`): reload from the new start.
    reload: bool,
}

const KEYS: &str = "agent:NAME conv:ID kind:K since:T until:T at:50%|DATE|ID";

impl AuditView {
    /// The view `:audit ARGS` asks for.
    pub fn parse(args: &str, now: Millis) -> Result<AuditView, String> {
        let mut filter = AuditFilter::default();
        let mut start = None;
        let when = |v: &str| crate::units::parse_instant(v, now);
        for word in args.split_whitespace() {
            if let Some(id) = word.strip_prefix('#') {
                filter.conversation = Some(crate::model::parse_conversation_id(id)?);
                continue;
            }
            let Some((key, value)) = word.split_once(':') else {
                return Err(format!("unknown audit filter '{word}' (use {KEYS})"));
            };
            if value.is_empty() {
                return Err(format!("'{key}:' needs a value (use {KEYS})"));
            }
            match key {
                "agent" | "by" => filter.agent = Some(value.to_string()),
                "conv" | "conversation" => {
                    filter.conversation = Some(crate::model::parse_conversation_id(value)?)
                }
                "kind" => filter
                    .kinds
                    .extend(value.split(',').filter(|k| !k.is_empty()).map(String::from)),
                "since" => filter.since = Some(when(value)?),
                "until" => filter.until = Some(when(value)?),
                "at" => {
                    start = Some(if let Some(p) = value.strip_suffix('%') {
                        let p: f64 = p
                            .parse()
                            .map_err(|_| format!("bad position '{value}' (e.g. at:50%)"))?;
                        AuditPosition::Fraction(p / 100.0)
                    } else if let Ok(id) = value.trim_start_matches('#').parse::<i64>() {
                        AuditPosition::Event(EventId(id))
                    } else {
                        AuditPosition::Time(when(value)?)
                    })
                }
                _ => return Err(format!("unknown audit filter '{key}:' (use {KEYS})")),
            }
        }
        Ok(AuditView {
            filter,
            start,
            asked: Mutex::new(Vec::new()),
            newer_above_top: false,
            reload: false,
        })
    }

    fn position(&self, at: PageAt) -> AuditPosition {
        match at {
            PageAt::Top => self.start.unwrap_or(AuditPosition::Newest),
            // The oldest events: the page above "before the first event".
            PageAt::Bottom => AuditPosition::After(EventId(0)),
            // Below a row: older events.
            PageAt::After(k) => AuditPosition::Before(EventId(k)),
            PageAt::Before(k) => AuditPosition::After(EventId(k)),
        }
    }
}

/// One event as a sheet line: id, local time, who, which conversation, what.
pub fn line(e: &crate::api::EventRow) -> String {
    let conv = e
        .conversation_id
        .map(|c| format!("#{c}"))
        .unwrap_or_else(|| "-".into());
    let who = crate::sanitize::for_terminal_line(&e.actor);
    format!(
        "{:>7}  {}  {:<10} {:<6} {}",
        e.id,
        crate::tui::time::full(e.at),
        who,
        conv,
        describe_event(e)
    )
}

impl SheetSource for AuditView {
    fn title(&self) -> String {
        let f = &self.filter;
        let mut parts = vec!["audit log, newest first".to_string()];
        if let Some(a) = &f.agent {
            parts.push(format!("agent {a}"));
        }
        if let Some(c) = f.conversation {
            parts.push(format!("#{c}"));
        }
        if !f.kinds.is_empty() {
            parts.push(f.kinds.join(","));
        }
        if let Some(t) = f.since {
            parts.push(format!("since {}", crate::tui::time::full(t)));
        }
        if let Some(t) = f.until {
            parts.push(format!("until {}", crate::tui::time::full(t)));
        }
        crate::sanitize::for_terminal_line(&parts.join(" · ")).into_owned()
    }

    fn request(&self, seq: u64, at: PageAt, limit: usize) -> Request {
        let jump = matches!(at, PageAt::Top) && self.start.is_some();
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((seq, at, jump));
        }
        Request::Audit {
            seq,
            filter: self.filter.clone(),
            at: self.position(at),
            limit,
        }
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Audit { seq, page } = resp else {
            return None;
        };
        let (at, jump) = {
            let mut asked = self.asked.lock().ok()?;
            let i = asked.iter().position(|(s, _, _)| s == seq)?;
            let (_, at, jump) = asked.remove(i);
            (at, jump)
        };
        if matches!(at, PageAt::Top) {
            self.newer_above_top = jump && page.newer;
            if jump {
                // Used once: from now on the top of the list is the newest event.
                self.start = None;
            }
        }
        let more = match at {
            PageAt::Top | PageAt::After(_) => page.older,
            PageAt::Bottom | PageAt::Before(_) => page.newer,
        };
        Some(SheetPage {
            seq: *seq,
            at,
            rows: page
                .rows
                .iter()
                .map(|e| SheetRow {
                    key: e.id.0,
                    text: line(e),
                    marked: e.kind == "refused",
                    target: e.conversation_id.map(|c| SheetTarget {
                        conversation: c,
                        message: e.message_id,
                    }),
                })
                .collect(),
            more,
            footer: Some("● refused · :audit at:50% / at:DATE jumps".into()),
        })
    }

    /// A key bound to `audit at:...` in the `[sheet]` section of a keymap (e.g.
    /// `"%" = "audit at:50%"`): jump without leaving the list. Filters stay as they are.
    fn commands(&self) -> &'static [&'static str] {
        &["audit"]
    }

    fn action(
        &mut self,
        action: &crate::tui::action::Action,
        _selected: Option<&SheetRow>,
    ) -> Option<crate::tui::sheet::SheetEnter> {
        let crate::tui::action::Action::Audit(Some(arg)) = action else {
            return None;
        };
        let info = match AuditView::parse(arg, crate::model::now_millis()) {
            Ok(v) if v.start.is_some() => {
                self.start = v.start;
                self.reload = true;
                format!("audit: {arg}")
            }
            Ok(_) => "only a jump (at:50%, at:DATE, at:ID) works inside the list; Esc and :audit for new filters".into(),
            Err(e) => e,
        };
        Some(crate::tui::sheet::SheetEnter {
            info: Some(info),
            ..Default::default()
        })
    }

    fn take_reload(&mut self) -> bool {
        std::mem::take(&mut self.reload)
    }

    fn more_above_top(&self) -> bool {
        self.newer_above_top
    }

    fn empty(&self) -> String {
        "no events (the filters, or your teams, leave none)".into()
    }
}
