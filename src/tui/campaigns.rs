//! `:campaigns`: every configured campaign with its progress (enrolled, sent per step, left by
//! a reply, excluded, failed), asked fresh from the server ([`CampaignOp::Status`], supervisor
//! role), in a [`crate::tui::sheet`]. Enter on a campaign lists its failures (excluded and
//! failed contacts with the reason); Enter there goes back to the list. `:campaign stop NAME`
//! (admin) stops one. Whole lists (a workspace has a few campaigns; failures are capped at
//! 200 by the server): not paged.

use crate::api::{CampaignAnswer, CampaignOp, CampaignStatus, Request, Response};
use crate::model::Millis;
use crate::tui::sheet::{PageAt, SheetEnter, SheetPage, SheetRow, SheetSource};
use std::sync::atomic::{AtomicU64, Ordering};

/// The sheet's name for [`SheetSource::name`].
pub const NAME: &str = "campaigns";

pub struct CampaignsView {
    pub now: Millis,
    /// The campaign whose failures are shown (None: the list).
    open: Option<String>,
    /// The names of the rows of the list, by key.
    names: Vec<String>,
    reload: bool,
    asked: AtomicU64,
    asked_at: std::sync::Mutex<PageAt>,
}

impl CampaignsView {
    pub fn new(now: Millis) -> CampaignsView {
        CampaignsView {
            now,
            open: None,
            names: Vec::new(),
            reload: false,
            asked: AtomicU64::new(0),
            asked_at: std::sync::Mutex::new(PageAt::Top),
        }
    }
}

/// One campaign's line.
pub fn line(c: &CampaignStatus) -> String {
    let state = if c.running {
        "running"
    } else if c.stopped {
        "stopped"
    } else if c.runs > 0 {
        "finished"
    } else {
        "not started"
    };
    let steps: Vec<String> = c.sent_per_step.iter().map(|n| n.to_string()).collect();
    let text = format!(
        "{:<16} {:<11} enrolled {:>4} · sent per step {} · left {} · excluded {} · failed {}",
        c.name,
        state,
        c.enrolled,
        steps.join("/"),
        c.left_replied,
        c.excluded,
        c.failed
    );
    crate::sanitize::for_terminal_line(&text).into_owned()
}

impl SheetSource for CampaignsView {
    fn title(&self) -> String {
        match &self.open {
            Some(n) => format!("campaign {} · failures", crate::sanitize::line(n)),
            None => "campaigns".into(),
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, seq: u64, at: PageAt, _limit: usize) -> Request {
        self.asked.store(seq, Ordering::Relaxed);
        if let Ok(mut a) = self.asked_at.lock() {
            *a = at;
        }
        Request::Campaign(CampaignOp::Status {
            name: self.open.clone(),
        })
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Campaign(a) = resp else {
            return None;
        };
        let CampaignAnswer::Status { campaigns } = a.as_ref() else {
            return None;
        };
        let at = self.asked_at.lock().map(|a| *a).unwrap_or(PageAt::Top);
        let whole = matches!(at, PageAt::Top | PageAt::Bottom);
        let (rows, footer) = match &self.open {
            None => {
                self.names = campaigns.iter().map(|c| c.name.clone()).collect();
                let rows = campaigns
                    .iter()
                    .enumerate()
                    .filter(|_| whole)
                    .map(|(i, c)| SheetRow {
                        key: i as i64,
                        text: line(c),
                        marked: c.running,
                        target: None,
                    })
                    .collect();
                (
                    rows,
                    format!(
                        "{} campaign{} · ● running · Enter: failures",
                        campaigns.len(),
                        if campaigns.len() == 1 { "" } else { "s" }
                    ),
                )
            }
            Some(_) => {
                let c = campaigns.first();
                let rows = c
                    .map(|c| c.failures.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .filter(|_| whole)
                    .map(|(i, f)| SheetRow {
                        key: i as i64,
                        text: crate::sanitize::for_terminal_line(&format!(
                            "#{:<6} {:<20} {:<8} step {}  {}",
                            f.contact.0,
                            f.name,
                            f.state,
                            f.step + 1,
                            f.reason
                        ))
                        .into_owned(),
                        marked: f.state == "failed",
                        target: None,
                    })
                    .collect();
                (
                    rows,
                    format!(
                        "{} excluded · {} failed · Enter: back to the campaigns",
                        c.map(|c| c.excluded).unwrap_or(0),
                        c.map(|c| c.failed).unwrap_or(0)
                    ),
                )
            }
        };
        Some(SheetPage {
            seq: self.asked.load(Ordering::Relaxed),
            at,
            rows,
            more: false,
            footer: Some(footer),
        })
    }

    fn enter(&mut self, row: &SheetRow) -> SheetEnter {
        self.open = match &self.open {
            Some(_) => None,
            None => self.names.get(row.key as usize).cloned(),
        };
        self.reload = true;
        SheetEnter::default()
    }

    fn take_reload(&mut self) -> bool {
        std::mem::take(&mut self.reload)
    }

    fn empty(&self) -> String {
        match &self.open {
            Some(_) => "no failures · Enter: back".into(),
            None => "no campaigns: add [[campaigns]] to the workspace config".into(),
        }
    }
}
