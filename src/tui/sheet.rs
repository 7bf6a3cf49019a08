//! The sheet: a full-screen list overlay (`Mode::Sheet`) that list views reuse (notifications,
//! the audit log, `:who`...). It owns the window of rows, the selection, the keyset paging and
//! the keys; a view supplies only where its rows come from and what Enter does.
//!
//! # How a view plugs in
//!
//! 1. Implement [`SheetSource`] in the view's own file (e.g. `src/tui/notifications.rs`):
//!    - [`SheetSource::request`] builds the api request for one page at a keyset position
//!      ([`PageAt`]: the top, the bottom, or the rows after/before a row's `key`), carrying the
//!      `seq` it is given so the answer can be matched;
//!    - [`SheetSource::page`] reads the server's answer into a [`SheetPage`] (rows in display
//!      order, top to bottom, the `seq` echoed), or None for a response that is not its own;
//!    - optionally [`SheetSource::enter`] (what Enter does; default: open the row's target and
//!      close), [`SheetSource::action`] (the view's own commands, e.g. `mark_all_read`, bound
//!      in the `[sheet]` keymap section) and [`SheetSource::name`] (so the app can tell which
//!      list is open, e.g. to update it on a push).
//! 2. Open it: `app.open_sheet(Box::new(MyView::new(..)))` returns the effects that load the
//!    first page. Esc or q closes it; the screen under it is as it was.
//! 3. Answers reach the sheet by themselves: [`crate::tui::app::App`] offers every response to
//!    the open sheet's source first. A new `Response` variant of the view goes into the "only
//!    the CLI or a sheet asks for these" arm of `App::data`.
//!
//! Rows carry a `key`: a value unique in the list that orders it (an id, or a timestamp folded
//! with an id), so "the rows after key K" is one indexed range read however long the list is:
//! a million rows page as fast as a hundred. The sheet keeps at most [`MAX_ROWS`] rows and
//! drops the far end as it pages. Row text is the view's, pre-formatted and sanitized; the
//! drawing ([`crate::tui::ui::sheet`]) escapes it once more.
//!
//! Keys come from the `[sheet]` section of the keymap: j/k, gg/G, Ctrl-d/Ctrl-u, PgDn/PgUp,
//! Enter (`open`), Esc/q (`cancel`), and view commands such as `R` (`mark_all_read`).

use crate::api::{Request, Response};
use crate::model::{ConversationId, MessageId};
use crate::tui::action::Action;

/// Rows asked for per page.
pub const PAGE_ROWS: usize = 100;
/// The most rows a sheet keeps loaded.
pub const MAX_ROWS: usize = 400;
/// Load the next page when the selection comes this close to an end of the window.
const PREFETCH: usize = 25;

/// What a row points at: Enter opens this conversation (and selects the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetTarget {
    pub conversation: ConversationId,
    pub message: Option<MessageId>,
}

/// One line of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    /// Unique in the list and ordering it (the keyset cursor).
    pub key: i64,
    /// The line as shown: pre-formatted and sanitized by the view.
    pub text: String,
    /// Drawn emphasized with a marker (an unread notification).
    pub marked: bool,
    pub target: Option<SheetTarget>,
}

/// Where a page starts, in display order (top to bottom).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAt {
    /// The first rows of the list.
    Top,
    /// The last rows of the list (returned in display order, the last row last).
    Bottom,
    /// The rows shown below the row whose key is this (not including it).
    After(i64),
    /// The rows shown above the row whose key is this (not including it), in display order.
    Before(i64),
}

/// A page as the view read it from its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetPage {
    /// The `seq` of the request it answers.
    pub seq: u64,
    pub at: PageAt,
    /// In display order.
    pub rows: Vec<SheetRow>,
    /// More rows exist beyond these in the direction asked (below for Top/After, above for
    /// Bottom/Before).
    pub more: bool,
    /// A new footer/status text for the sheet (e.g. "3 unread"), if the answer carries one.
    pub footer: Option<String>,
}

/// What Enter on a row does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SheetEnter {
    /// Open this conversation (and select the message in its timeline).
    pub open: Option<SheetTarget>,
    /// Close the sheet.
    pub close: bool,
    /// Requests to send (e.g. mark the row read).
    pub requests: Vec<Request>,
    /// A line for the status bar.
    pub info: Option<String>,
}

/// A view's side of a sheet. See the module docs.
pub trait SheetSource: Send {
    /// The sheet's title ("notifications").
    fn title(&self) -> String;
    /// A stable name of the view, for code that must know which list is open
    /// ("notifications", "audit", "who").
    fn name(&self) -> &'static str {
        "list"
    }
    /// The request for `limit` rows at `at`, tagged `seq`.
    fn request(&self, seq: u64, at: PageAt, limit: usize) -> Request;
    /// The page in `resp`, or None when it is not an answer of this view.
    fn page(&mut self, resp: &Response) -> Option<SheetPage>;
    /// Enter on `row`. Default: open its target (if any) and close.
    fn enter(&mut self, row: &SheetRow) -> SheetEnter {
        SheetEnter {
            open: row.target,
            close: row.target.is_some(),
            ..SheetEnter::default()
        }
    }
    /// The commands of the `[sheet]` keymap this view answers in [`SheetSource::action`]
    /// (`mark_all_read`): the footer hints at these and the generic ones only.
    fn commands(&self) -> &'static [&'static str] {
        &[]
    }
    /// A command of the sheet's keymap that is not movement, Enter or close (`selected`: the
    /// selected row). `None`: this view has no such command (the sheet says so).
    fn action(&mut self, action: &Action, selected: Option<&SheetRow>) -> Option<SheetEnter> {
        let _ = (action, selected);
        None
    }
    /// Whether rows exist above the first page (a view that opened somewhere in the middle
    /// of its list: the audit log's jumps). Asked when a [`PageAt::Top`] page arrives.
    fn more_above_top(&self) -> bool {
        false
    }
    /// Whether the view's last [`SheetSource::action`] changed where its list starts (the
    /// audit log's jump to the middle): the sheet then loads it again from its top. Reset by
    /// the call.
    fn take_reload(&mut self) -> bool {
        false
    }
    /// The hint shown when the list is empty.
    fn empty(&self) -> String {
        "nothing here".into()
    }
}

/// The state of an open sheet.
pub struct Sheet {
    pub source: Box<dyn SheetSource>,
    pub rows: Vec<SheetRow>,
    /// Index into `rows`.
    pub selected: usize,
    /// The first row drawn (kept by [`Sheet::fix_scroll`]).
    pub scroll: usize,
    /// Rows exist above the first loaded row / below the last.
    pub more_above: bool,
    pub more_below: bool,
    /// The view's status text, drawn at the bottom.
    pub footer: String,
    seq: u64,
    /// The pages asked for and not answered yet.
    pending: Vec<(u64, PageAt)>,
    /// The first load (or a jump to the top or bottom) is on its way.
    pub loading: bool,
    /// Rows visible at once (the drawing area; set by the app from the terminal size).
    pub height: usize,
}

impl std::fmt::Debug for Sheet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sheet")
            .field("title", &self.source.title())
            .field("rows", &self.rows.len())
            .field("selected", &self.selected)
            .finish()
    }
}

/// What a key or an answer asks the app to do.
#[derive(Debug, Default, PartialEq)]
pub struct SheetOutcome {
    pub requests: Vec<Request>,
    pub open: Option<SheetTarget>,
    pub close: bool,
    pub info: Option<String>,
    pub error: Option<String>,
}

impl Sheet {
    /// A sheet on `source`, and the request for its first page.
    pub fn open(source: Box<dyn SheetSource>, height: usize) -> (Sheet, Request) {
        let mut s = Sheet {
            source,
            rows: Vec::new(),
            selected: 0,
            scroll: 0,
            more_above: false,
            more_below: false,
            footer: String::new(),
            seq: 0,
            pending: Vec::new(),
            loading: true,
            height: height.max(1),
        };
        let r = s.ask(PageAt::Top);
        (s, r)
    }

    /// The selected row.
    pub fn current(&self) -> Option<&SheetRow> {
        self.rows.get(self.selected)
    }

    fn ask(&mut self, at: PageAt) -> Request {
        self.seq += 1;
        if matches!(at, PageAt::Top | PageAt::Bottom) {
            // A jump replaces the window: pages asked for the old one are stale.
            self.pending.clear();
            self.loading = true;
        }
        self.pending.push((self.seq, at));
        self.source.request(self.seq, at, PAGE_ROWS)
    }

    fn waiting(&self, below: bool) -> bool {
        self.pending.iter().any(|(_, at)| match at {
            PageAt::Top | PageAt::Bottom => true,
            PageAt::After(_) => below,
            PageAt::Before(_) => !below,
        })
    }

    /// Reload from the top, keeping the selected row selected if it is still there (new rows
    /// arrived, or a view filter changed).
    pub fn reload(&mut self) -> Request {
        self.ask(PageAt::Top)
    }

    /// Offer a response: None when it is not this sheet's.
    pub fn answer(&mut self, resp: &Response) -> Option<SheetOutcome> {
        let page = self.source.page(resp)?;
        let Some(i) = self.pending.iter().position(|(s, _)| *s == page.seq) else {
            return Some(SheetOutcome::default()); // stale: the window moved on
        };
        let (_, at) = self.pending.remove(i);
        if let Some(f) = page.footer {
            self.footer = f;
        }
        let keep = self.current().map(|r| r.key);
        match at {
            PageAt::Top => {
                self.loading = false;
                self.rows = page.rows;
                self.more_above = self.source.more_above_top();
                self.more_below = page.more;
                self.selected = keep
                    .and_then(|k| self.rows.iter().position(|r| r.key == k))
                    .unwrap_or(0);
            }
            PageAt::Bottom => {
                self.loading = false;
                self.rows = page.rows;
                self.more_below = false;
                self.more_above = page.more;
                self.selected = self.rows.len().saturating_sub(1);
            }
            PageAt::After(k) => {
                // Only if the window still ends at that row.
                if self.rows.last().map(|r| r.key) == Some(k) {
                    self.rows.extend(page.rows);
                    self.more_below = page.more;
                    if self.rows.len() > MAX_ROWS {
                        let cut = (self.rows.len() - MAX_ROWS)
                            .min(self.selected.saturating_sub(PREFETCH));
                        if cut > 0 {
                            self.rows.drain(..cut);
                            self.selected -= cut;
                            self.scroll = self.scroll.saturating_sub(cut);
                            self.more_above = true;
                        }
                    }
                }
            }
            PageAt::Before(k) => {
                if self.rows.first().map(|r| r.key) == Some(k) {
                    let n = page.rows.len();
                    self.rows.splice(0..0, page.rows);
                    self.selected += n;
                    self.scroll += n;
                    self.more_above = page.more;
                    if self.rows.len() > MAX_ROWS {
                        let keep_to = (self.selected + PREFETCH + 1)
                            .max(MAX_ROWS)
                            .min(self.rows.len());
                        if keep_to < self.rows.len() {
                            self.rows.truncate(keep_to);
                            self.more_below = true;
                        }
                    }
                }
            }
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        self.fix_scroll();
        // The answer told the view where its list really starts (the pipeline's first stage).
        if self.source.take_reload() {
            return Some(SheetOutcome {
                requests: vec![self.reload()],
                ..SheetOutcome::default()
            });
        }
        Some(SheetOutcome {
            requests: self.prefetch(),
            ..SheetOutcome::default()
        })
    }

    /// A request failed (the app shows why): stop waiting, so the next move asks again.
    pub fn failed(&mut self) {
        self.pending.clear();
        self.loading = false;
    }

    /// Keep the selection on screen with a little context.
    pub fn fix_scroll(&mut self) {
        self.scroll = crate::tui::ui::queue::first_visible(
            self.selected,
            self.scroll,
            self.height,
            self.rows.len(),
        );
    }

    fn prefetch(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        if self.loading {
            return out;
        }
        if self.more_below
            && !self.waiting(true)
            && self.rows.len().saturating_sub(self.selected + 1) < PREFETCH
            && let Some(last) = self.rows.last().map(|r| r.key)
        {
            out.push(self.ask(PageAt::After(last)));
        }
        if self.more_above
            && !self.waiting(false)
            && self.selected < PREFETCH
            && let Some(first) = self.rows.first().map(|r| r.key)
        {
            out.push(self.ask(PageAt::Before(first)));
        }
        out
    }

    fn move_by(&mut self, delta: i64) -> Vec<Request> {
        if self.rows.is_empty() {
            return Vec::new();
        }
        let last = self.rows.len() as i64 - 1;
        self.selected = (self.selected as i64 + delta).clamp(0, last) as usize;
        self.fix_scroll();
        self.prefetch()
    }

    /// Carry out a command of the sheet's keymap.
    pub fn dispatch(&mut self, action: &Action, count: Option<usize>) -> SheetOutcome {
        let n = count.unwrap_or(1).max(1) as i64;
        let half = (self.height / 2).max(1) as i64;
        let requests = match action {
            Action::MoveDown => self.move_by(n),
            Action::MoveUp => self.move_by(-n),
            Action::HalfPageDown => self.move_by(half * n),
            Action::HalfPageUp => self.move_by(-half * n),
            Action::Top => {
                if self.more_above {
                    self.selected = 0;
                    vec![self.ask(PageAt::Top)]
                } else {
                    self.move_by(-(self.selected as i64))
                }
            }
            Action::Bottom => {
                if self.more_below {
                    vec![self.ask(PageAt::Bottom)]
                } else {
                    self.move_by(self.rows.len() as i64)
                }
            }
            Action::Cancel | Action::Quit => {
                return SheetOutcome {
                    close: true,
                    ..SheetOutcome::default()
                };
            }
            Action::Open(_) => {
                let Some(row) = self.current().cloned() else {
                    return SheetOutcome::default();
                };
                let mut e = self.source.enter(&row);
                // The view changed what it lists (`:campaigns` opening one's failures).
                if self.source.take_reload() {
                    e.requests.push(self.reload());
                }
                return SheetOutcome {
                    requests: e.requests,
                    open: e.open,
                    close: e.close,
                    info: e.info,
                    error: None,
                };
            }
            other => {
                let selected = self.rows.get(self.selected).cloned();
                return match self.source.action(other, selected.as_ref()) {
                    Some(mut e) => SheetOutcome {
                        requests: {
                            // The view moved its list (a jump): load it again from its top.
                            if self.source.take_reload() {
                                e.requests.push(self.reload());
                            }
                            e.requests
                        },
                        open: e.open,
                        close: e.close,
                        info: e.info,
                        error: None,
                    },
                    None => SheetOutcome {
                        error: Some(format!(
                            "{} does nothing in this list (Esc closes it)",
                            other.name()
                        )),
                        ..SheetOutcome::default()
                    },
                };
            }
        };
        SheetOutcome {
            requests,
            ..SheetOutcome::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::{Request, Response};

    /// A list of `n` rows keyed n..1 (newest first), paged the way a server would answer:
    /// each page is computed from the key alone, never by walking the list.
    struct Numbers {
        n: i64,
        asked: Vec<PageAt>,
    }

    fn row(k: i64) -> SheetRow {
        SheetRow {
            key: k,
            text: format!("row {k}"),
            marked: k % 2 == 0,
            target: None,
        }
    }

    impl SheetSource for Numbers {
        fn title(&self) -> String {
            "numbers".into()
        }
        fn request(&self, seq: u64, at: PageAt, limit: usize) -> Request {
            // Any request type carries the page through the test: Status is unit, so use
            // Search's string to smuggle (seq, at, limit).
            Request::Search {
                query: format!("{seq} {at:?}"),
                limit,
            }
        }
        fn page(&mut self, resp: &Response) -> Option<SheetPage> {
            let Response::Error(q) = resp else {
                return None;
            };
            let (seq, at) = q.split_once(' ').unwrap();
            let seq: u64 = seq.parse().unwrap();
            let at = match at {
                "Top" => PageAt::Top,
                "Bottom" => PageAt::Bottom,
                s if s.starts_with("After(") => PageAt::After(s[6..s.len() - 1].parse().unwrap()),
                s => PageAt::Before(s[7..s.len() - 1].parse().unwrap()),
            };
            self.asked.push(at);
            let limit = PAGE_ROWS as i64;
            // Display order: n, n-1, ..., 1.
            let (rows, more): (Vec<i64>, bool) = match at {
                PageAt::Top => (
                    (1.max(self.n - limit + 1)..=self.n).rev().collect(),
                    self.n > limit,
                ),
                PageAt::Bottom => ((1..=limit.min(self.n)).rev().collect(), self.n > limit),
                PageAt::After(k) => {
                    let hi = k - 1;
                    let lo = (hi - limit + 1).max(1);
                    ((lo..=hi).rev().collect(), lo > 1)
                }
                PageAt::Before(k) => {
                    let lo = k + 1;
                    let hi = (lo + limit - 1).min(self.n);
                    ((lo..=hi).rev().collect(), hi < self.n)
                }
            };
            Some(SheetPage {
                seq,
                at,
                rows: rows.into_iter().map(row).collect(),
                more,
                footer: Some(format!("{} rows", self.n)),
            })
        }
    }

    /// Answer every request the way the source's server would.
    fn serve(sheet: &mut Sheet, mut reqs: Vec<Request>) {
        while let Some(r) = reqs.pop() {
            let Request::Search { query, .. } = r else {
                panic!("{r:?}")
            };
            let out = sheet.answer(&Response::Error(query)).unwrap();
            reqs.extend(out.requests);
        }
    }

    fn keys(sheet: &Sheet) -> (i64, i64, i64) {
        (
            sheet.rows.first().unwrap().key,
            sheet.current().unwrap().key,
            sheet.rows.last().unwrap().key,
        )
    }

    #[test]
    fn a_million_rows_page_by_key_and_the_window_stays_bounded() {
        let (mut s, first) = Sheet::open(
            Box::new(Numbers {
                n: 1_000_000,
                asked: Vec::new(),
            }),
            20,
        );
        assert!(s.loading);
        serve(&mut s, vec![first]);
        assert!(!s.loading);
        assert_eq!(s.footer, "1000000 rows");
        assert_eq!(keys(&s), (1_000_000, 1_000_000, 1_000_000 - 99));
        assert!(s.more_below && !s.more_above);

        // j moves; near the end of the window the next page is asked for.
        let out = s.dispatch(&Action::MoveDown, Some(80));
        assert_eq!(s.current().unwrap().key, 1_000_000 - 80);
        assert_eq!(out.requests.len(), 1);
        serve(&mut s, out.requests);
        assert_eq!(s.rows.len(), 200);

        // Ctrl-d pages on; the window never holds more than MAX_ROWS.
        for _ in 0..200 {
            let out = s.dispatch(&Action::HalfPageDown, None);
            serve(&mut s, out.requests);
            assert!(s.rows.len() <= MAX_ROWS + PAGE_ROWS, "{}", s.rows.len());
            let w: Vec<i64> = s.rows.iter().map(|r| r.key).collect();
            assert!(w.windows(2).all(|p| p[0] == p[1] + 1), "contiguous");
        }
        assert_eq!(s.current().unwrap().key, 1_000_000 - 80 - 200 * 10);
        assert!(s.more_above && s.more_below);

        // G: one page from the bottom, the last row selected.
        let out = s.dispatch(&Action::Bottom, None);
        assert!(s.loading);
        serve(&mut s, out.requests);
        assert_eq!(keys(&s).1, 1);
        assert_eq!(keys(&s).2, 1);
        assert!(s.more_above && !s.more_below);

        // k near the top of the window loads the rows above it.
        let out = s.dispatch(&Action::HalfPageUp, Some(9));
        serve(&mut s, out.requests);
        assert_eq!(s.current().unwrap().key, 91);
        assert_eq!(s.rows.first().unwrap().key, 200);

        // gg: back to the very top in one page.
        let out = s.dispatch(&Action::Top, None);
        serve(&mut s, out.requests);
        assert_eq!(keys(&s), (1_000_000, 1_000_000, 1_000_000 - 99));
        assert!(!s.more_above);
    }

    #[test]
    fn a_short_list_moves_without_requests_and_esc_closes() {
        let (mut s, first) = Sheet::open(
            Box::new(Numbers {
                n: 5,
                asked: Vec::new(),
            }),
            20,
        );
        serve(&mut s, vec![first]);
        assert_eq!(s.rows.len(), 5);
        assert!(s.dispatch(&Action::Bottom, None).requests.is_empty());
        assert_eq!(s.current().unwrap().key, 1);
        assert!(s.dispatch(&Action::Top, None).requests.is_empty());
        assert_eq!(s.current().unwrap().key, 5);
        assert!(s.dispatch(&Action::MoveUp, None).requests.is_empty());
        assert_eq!(s.current().unwrap().key, 5);
        // A view command the source does not have is an error line, not a crash.
        let out = s.dispatch(&Action::Resolve, None);
        assert!(out.error.unwrap().contains("resolve does nothing"));
        assert!(s.dispatch(&Action::Cancel, None).close);
    }

    #[test]
    fn a_stale_page_is_dropped_and_a_reload_keeps_the_selected_row() {
        let (mut s, first) = Sheet::open(
            Box::new(Numbers {
                n: 50,
                asked: Vec::new(),
            }),
            20,
        );
        serve(&mut s, vec![first]);
        s.dispatch(&Action::MoveDown, Some(3));
        assert_eq!(s.current().unwrap().key, 47);
        // Two rows more arrive at the top: a reload keeps row 47 selected.
        s.source = Box::new(Numbers {
            n: 52,
            asked: Vec::new(),
        });
        let r = s.reload();
        serve(&mut s, vec![r]);
        assert_eq!(s.current().unwrap().key, 47);
        assert_eq!(s.rows.first().unwrap().key, 52);
        // An answer nobody waits for changes nothing.
        let out = s.answer(&Response::Error("999 Top".into())).unwrap();
        assert_eq!(out, SheetOutcome::default());
        assert_eq!(s.rows.first().unwrap().key, 52);
        // Not a sheet answer: handed back.
        assert!(s.answer(&Response::Superseded).is_none());
    }
}
