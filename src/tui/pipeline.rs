//! `g p` / `:pipeline`: contacts per lifecycle stage ([`Request::Pipeline`]), in a
//! [`crate::tui::sheet`]. The title counts every stage; the list is the selected stage's
//! contacts by lead score, highest first, keyset paged however many there are; `Tab` moves to
//! the next stage (the workspace's `[pipeline]` order, then "no stage"); Enter opens the
//! contact's newest conversation.

use crate::api::{Request, Response};
use crate::model::Millis;
use crate::tui::action::Action;
use crate::tui::sheet::{PageAt, SheetEnter, SheetPage, SheetRow, SheetSource, SheetTarget};
use std::sync::Mutex;

/// The sheet's name for [`SheetSource::name`].
pub const NAME: &str = "pipeline";

/// What the view asked last (the answer echoes only `seq`).
#[derive(Debug, Default)]
struct Asked {
    seq: u64,
    at: Option<PageAt>,
}

pub struct PipelineView {
    pub now: Millis,
    /// The stage listed (None: contacts with no stage yet).
    stage: Option<String>,
    /// The stages in the workspace's order with their counts (from the last answer).
    counts: Vec<(Option<String>, i64)>,
    /// The keyset after the last loaded row (None: no more).
    next: Option<(i64, crate::model::ContactId)>,
    /// Rows loaded so far: keys are positions in this list.
    loaded: i64,
    asked: Mutex<Asked>,
    reload: bool,
}

impl PipelineView {
    /// The view on `stage` (None: the workspace's first stage, once the counts are known).
    pub fn new(now: Millis, stage: Option<String>) -> PipelineView {
        PipelineView {
            now,
            stage,
            counts: Vec::new(),
            next: None,
            loaded: 0,
            asked: Mutex::new(Asked::default()),
            reload: false,
        }
    }

    fn label(stage: &Option<String>) -> String {
        stage.clone().unwrap_or_else(|| "no stage".into())
    }
}

impl SheetSource for PipelineView {
    fn title(&self) -> String {
        if self.counts.is_empty() {
            return "pipeline".into();
        }
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| {
                let l = Self::label(s);
                if *s == self.stage {
                    format!("[{l} {n}]")
                } else {
                    format!("{l} {n}")
                }
            })
            .collect();
        crate::sanitize::for_terminal_line(&format!("pipeline · {}", parts.join(" · ")))
            .into_owned()
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, seq: u64, at: PageAt, limit: usize) -> Request {
        if let Ok(mut a) = self.asked.lock() {
            *a = Asked { seq, at: Some(at) };
        }
        let after = match at {
            PageAt::After(_) => self.next,
            _ => None,
        };
        Request::Pipeline {
            seq,
            stage: self.stage.clone(),
            after,
            limit,
        }
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Pipeline { seq, pipeline } = resp else {
            return None;
        };
        let at = self
            .asked
            .lock()
            .ok()
            .and_then(|a| (a.seq == *seq).then_some(a.at).flatten())
            .unwrap_or(PageAt::Top);
        let first_answer = self.counts.is_empty();
        self.counts = pipeline.counts.clone();
        // Opened without a stage: start at the workspace's first one.
        if first_answer
            && self.stage.is_none()
            && let Some((Some(first), _)) = self.counts.first()
        {
            self.stage = Some(first.clone());
            self.reload = true;
        }
        if matches!(at, PageAt::Top | PageAt::Bottom) {
            self.loaded = 0;
        }
        // Only forward pages exist (a stage's contacts by score): a page above is empty.
        if matches!(at, PageAt::Before(_)) {
            return Some(SheetPage {
                seq: *seq,
                at,
                rows: Vec::new(),
                more: false,
                footer: None,
            });
        }
        self.next = pipeline.next;
        let rows = pipeline
            .rows
            .iter()
            .map(|r| {
                self.loaded += 1;
                SheetRow {
                    key: self.loaded,
                    text: crate::sanitize::for_terminal_line(&format!(
                        "{:>5}  {}  {:<7} last seen {}",
                        r.score,
                        crate::tui::ui::pad(&r.name, 28),
                        format!("#{}", r.contact),
                        crate::tui::time::short(r.last_seen, self.now)
                    ))
                    .into_owned(),
                    marked: false,
                    target: r.conversation.map(|conversation| SheetTarget {
                        conversation,
                        message: None,
                    }),
                }
            })
            .collect();
        let total = self
            .counts
            .iter()
            .find(|(s, _)| *s == self.stage)
            .map_or(0, |(_, n)| *n);
        Some(SheetPage {
            seq: *seq,
            at: if matches!(at, PageAt::Bottom) {
                PageAt::Top
            } else {
                at
            },
            rows,
            more: pipeline.next.is_some(),
            footer: Some(format!(
                "{}: {total} contact(s), highest score first · Tab next stage · Enter opens",
                Self::label(&self.stage)
            )),
        })
    }

    fn commands(&self) -> &'static [&'static str] {
        &["next_stage"]
    }

    fn action(&mut self, action: &Action, _selected: Option<&SheetRow>) -> Option<SheetEnter> {
        if *action != Action::NextStage {
            return None;
        }
        if self.counts.is_empty() {
            return Some(SheetEnter::default());
        }
        let i = self
            .counts
            .iter()
            .position(|(s, _)| *s == self.stage)
            .map_or(0, |i| (i + 1) % self.counts.len());
        self.stage = self.counts[i].0.clone();
        self.next = None;
        self.reload = true;
        Some(SheetEnter {
            info: Some(format!("pipeline: {}", Self::label(&self.stage))),
            ..SheetEnter::default()
        })
    }

    fn take_reload(&mut self) -> bool {
        std::mem::take(&mut self.reload)
    }

    fn empty(&self) -> String {
        format!(
            "no contact in {} (:stage NAME sets one's stage; Tab shows the next stage)",
            Self::label(&self.stage)
        )
    }
}
