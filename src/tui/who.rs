//! `:who`: everyone online on the server and where, in a [`crate::tui::sheet`], asked fresh
//! from the server ([`Request::Who`]). Enter opens the conversation of the selected line.
//! The list is whole (one line per connected terminal; a team is at most a few hundred): it
//! is not paged.

use crate::api::{PresenceEntry, Request, Response};
use crate::model::Millis;
use crate::tui::sheet::{PageAt, SheetPage, SheetRow, SheetSource, SheetTarget};
use std::sync::atomic::{AtomicU64, Ordering};

/// The sheet's name for [`SheetSource::name`].
pub const NAME: &str = "who";

/// The `:who` list.
pub struct WhoView {
    /// This agent: their own terminals are marked "(you)".
    pub agent: String,
    pub now: Millis,
    /// The `seq` of the last request: the answer ([`Response::Online`]) does not carry one.
    asked: AtomicU64,
    asked_at: std::sync::Mutex<PageAt>,
}

impl WhoView {
    pub fn new(agent: &str, now: Millis) -> WhoView {
        WhoView {
            agent: agent.to_string(),
            now,
            asked: AtomicU64::new(0),
            asked_at: std::sync::Mutex::new(PageAt::Top),
        }
    }
}

/// One line: who, what they do and where, since when. Escaped (display names are config text).
pub fn line(e: &PresenceEntry, me: &str, now: Millis) -> String {
    let you = if e.agent == me { " (you)" } else { "" };
    let what = match e.conversation {
        Some(c) => format!("{} #{c}", e.activity.describe()),
        None => "online".to_string(),
    };
    let text = format!(
        "{:<24} {:<30} since {}",
        format!("{}{you}", e.display),
        what,
        crate::tui::time::short(e.since, now)
    );
    crate::sanitize::for_terminal_line(&text).into_owned()
}

impl SheetSource for WhoView {
    fn title(&self) -> String {
        "who is online".into()
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, seq: u64, at: PageAt, _limit: usize) -> Request {
        self.asked.store(seq, Ordering::Relaxed);
        if let Ok(mut a) = self.asked_at.lock() {
            *a = at;
        }
        Request::Who
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Online(online) = resp else {
            return None;
        };
        let mut agents: Vec<&str> = online.iter().map(|e| e.agent.as_str()).collect();
        agents.sort_unstable();
        agents.dedup();
        let at = self.asked_at.lock().map(|a| *a).unwrap_or(PageAt::Top);
        // The whole list answers a first load; a page before or after it has nothing more.
        let rows = match at {
            PageAt::Top | PageAt::Bottom => online
                .iter()
                .enumerate()
                .map(|(i, e)| SheetRow {
                    key: i as i64,
                    text: line(e, &self.agent, self.now),
                    marked: e.agent != self.agent && e.activity != crate::api::Activity::Viewing,
                    target: e.conversation.map(|c| SheetTarget {
                        conversation: c,
                        message: None,
                    }),
                })
                .collect(),
            PageAt::After(_) | PageAt::Before(_) => Vec::new(),
        };
        Some(SheetPage {
            seq: self.asked.load(Ordering::Relaxed),
            at,
            rows,
            more: false,
            footer: Some(format!(
                "{} agent{} online · ● typing · Enter opens the conversation",
                agents.len(),
                if agents.len() == 1 { "" } else { "s" }
            )),
        })
    }

    fn empty(&self) -> String {
        "nobody is online".into()
    }
}
