//! `:rules`: the workflow rules the server runs, with how often each matched in the last 7
//! days, in a [`crate::tui::sheet`]. When the rules files have an error the footer says so
//! (the rules listed are the last good ones). The list is whole (a workspace has tens or
//! hundreds of rules): it is not paged.

use crate::api::{Request, Response, RuleLine};
use crate::tui::sheet::{PageAt, SheetPage, SheetRow, SheetSource};
use std::sync::atomic::{AtomicU64, Ordering};

/// The sheet's name for [`SheetSource::name`].
pub const NAME: &str = "rules";

pub struct RulesView {
    asked: AtomicU64,
    asked_at: std::sync::Mutex<PageAt>,
}

impl RulesView {
    pub fn new() -> RulesView {
        RulesView {
            asked: AtomicU64::new(0),
            asked_at: std::sync::Mutex::new(PageAt::Top),
        }
    }
}

impl Default for RulesView {
    fn default() -> Self {
        RulesView::new()
    }
}

/// One line: on/off, matches in 7 days, id, event, what it does. Escaped (the rules are the
/// team's text, but a terminal gets none of its control characters).
pub fn line(r: &RuleLine) -> String {
    let on = match &r.after {
        Some(a) => format!("{} {a}", r.on),
        None => r.on.clone(),
    };
    let text = format!(
        "{} {:>5}  {:<18} {:<26} {}",
        if r.enabled { "●" } else { "○" },
        r.matches_7d,
        r.id,
        on,
        r.actions.join(", ")
    );
    crate::sanitize::for_terminal_line(&text).into_owned()
}

impl SheetSource for RulesView {
    fn title(&self) -> String {
        "rules · matches in the last 7 days".into()
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, seq: u64, at: PageAt, _limit: usize) -> Request {
        self.asked.store(seq, Ordering::Relaxed);
        if let Ok(mut a) = self.asked_at.lock() {
            *a = at;
        }
        Request::Rules
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Rules(report) = resp else {
            return None;
        };
        let at = self.asked_at.lock().map(|a| *a).unwrap_or(PageAt::Top);
        let rows = match at {
            PageAt::Top | PageAt::Bottom => report
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| SheetRow {
                    key: i as i64,
                    text: line(r),
                    marked: !r.enabled,
                    target: None,
                })
                .collect(),
            PageAt::After(_) | PageAt::Before(_) => Vec::new(),
        };
        let enabled = report.rules.iter().filter(|r| r.enabled).count();
        let footer = match &report.error {
            Some(e) => format!(
                "⚠ the rules files have an error; the last good rules run: {}",
                crate::sanitize::for_terminal_line(e.lines().next().unwrap_or(""))
            ),
            None => format!(
                "{enabled} of {} enabled · ● on ○ off · from {} · braid rules test --conversation N",
                report.rules.len(),
                crate::sanitize::for_terminal_line(&report.source)
            ),
        };
        Some(SheetPage {
            seq: self.asked.load(Ordering::Relaxed),
            at,
            rows,
            more: false,
            footer: Some(footer),
        })
    }

    fn empty(&self) -> String {
        "no rules: write rules.toml beside the workspace config (see config/rules.example.toml)"
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RulesReport;

    fn rule(id: &str, enabled: bool, n: i64) -> RuleLine {
        RuleLine {
            id: id.into(),
            name: id.into(),
            enabled,
            on: "waiting_on_us".into(),
            after: Some("4h".into()),
            conditions: 1,
            actions: vec!["set priority high".into(), "notify the assignee".into()],
            matches_7d: n,
            origin: "rules.toml:2".into(),
        }
    }

    #[test]
    fn rows_say_on_off_matches_and_actions_and_the_footer_shows_a_files_error() {
        let mut v = RulesView::new();
        let req = v.request(7, PageAt::Top, 50);
        assert!(matches!(req, Request::Rules));
        let mut report = RulesReport {
            rules: vec![rule("waiting-4h", true, 27), rule("old\u{1b}[2J", false, 0)],
            error: None,
            source: "/etc/braid".into(),
        };
        let page = v.page(&Response::Rules(Box::new(report.clone()))).unwrap();
        assert_eq!(page.seq, 7);
        assert_eq!(
            page.rows[0].text,
            "●    27  waiting-4h         waiting_on_us 4h           set priority high, notify the assignee"
        );
        assert!(!page.rows[0].marked);
        assert!(
            page.rows[1].text.starts_with("○     0  old"),
            "{}",
            page.rows[1].text
        );
        assert!(page.rows[1].marked, "a disabled rule is marked");
        assert!(!page.rows[1].text.contains('\u{1b}'), "escaped");
        assert_eq!(
            page.footer.as_deref(),
            Some(
                "1 of 2 enabled · ● on ○ off · from /etc/braid · braid rules test --conversation N"
            )
        );
        report.error = Some("rules.toml:9: rule 'x': unknown condition 'chanel'\nmore".into());
        let page = v.page(&Response::Rules(Box::new(report))).unwrap();
        assert_eq!(
            page.footer.as_deref(),
            Some(
                "⚠ the rules files have an error; the last good rules run: rules.toml:9: rule 'x': unknown condition 'chanel'"
            )
        );
        assert!(v.page(&Response::Ack).is_none());
    }
}
