//! Tasks in the TUI: the tasks view (`g t`, `:tasks [mine|overdue|team NAME|all]`) in a
//! [`crate::tui::sheet`], soonest due first, overdue ones marked; Enter opens the task's
//! conversation, `x` (`close_task`) marks it done, `v` (`tasks_cycle`) switches mine → overdue
//! → all. And the grammar of `:task [KIND] WHEN [--] [TITLE]`.

use crate::api::{Request, Response, TaskView};
use crate::api::{TaskAt, TaskCursor, TaskEnd, TaskRow};
use crate::model::Millis;
use crate::tui::action::Action;
use crate::tui::sheet::{PageAt, SheetEnter, SheetPage, SheetRow, SheetSource, SheetTarget};
use std::collections::HashMap;

/// The sheet's name for [`SheetSource::name`].
pub const NAME: &str = "tasks";

/// A task as `:task` typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLine {
    pub kind: String,
    pub due_at: Millis,
    /// Empty: the caller names it (the kind and the contact).
    pub title: String,
}

/// Parse `:task [KIND] WHEN [--] [TITLE]`: "call tomorrow 10:00", "call tomorrow 10:00 --
/// ask about the refund", "todo 2h send the contract", "monday 9:00 check the refund".
/// `parse_when` reads a time phrase ([`crate::when::parse`] in the app). The longest time
/// phrase wins ("tomorrow 10:00 check" is "tomorrow 10:00" and the title "check").
pub fn parse_task(
    arg: &str,
    parse_when: &dyn Fn(&str) -> Result<Millis, String>,
) -> Result<TaskLine, String> {
    let (head, title) = match arg.split_once("--") {
        Some((h, t)) => (h.trim(), Some(t.trim())),
        None => (arg.trim(), None),
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    if words.is_empty() {
        return Err(format!(
            "task: say when (and what): :task call tomorrow 10:00 -- ask about the refund (times: {})",
            crate::when::EXAMPLES
        ));
    }
    let mut last_err = String::new();
    for start in 0..words.len().min(2) {
        for end in (start + 1..=words.len()).rev() {
            // With a `--`, the time runs up to it.
            if title.is_some() && end != words.len() {
                continue;
            }
            match parse_when(&words[start..end].join(" ")) {
                Ok(due_at) => {
                    let kind = if start == 1 { words[0] } else { "todo" };
                    let rest = words[end..].join(" ");
                    let title = title.map(str::to_string).unwrap_or(rest);
                    return Ok(TaskLine {
                        kind: kind.to_lowercase(),
                        due_at,
                        title,
                    });
                }
                Err(e) => {
                    if end == start + 1 || last_err.is_empty() {
                        last_err = e;
                    }
                }
            }
        }
    }
    Err(format!(
        "task: no time in '{head}' (:task [KIND] WHEN [-- TITLE]; {last_err})"
    ))
}

/// One task as a row: due, kind, conversation, contact, title, assignee.
pub fn line(t: &TaskRow, now: Millis) -> String {
    let due = match t.due_at {
        Some(d) if d <= now => format!("overdue {}", crate::tui::time::age(d, now)),
        Some(d) => crate::when::label(d, now),
        None => "no due time".into(),
    };
    let conv = t
        .conversation_id
        .map(|c| format!("#{c}"))
        .unwrap_or_default();
    let text = format!(
        "{:>16}  {:<6} {:>6} {:<18} {}{}",
        due,
        t.kind,
        conv,
        t.contact_name,
        t.title,
        t.assignee
            .as_deref()
            .map(|a| format!("  → {a}"))
            .unwrap_or_default()
    );
    crate::sanitize::for_terminal_line(&text).into_owned()
}

/// The tasks list.
pub struct TasksView {
    /// The clock when the list opened (times are shown against it).
    pub now: Millis,
    pub view: TaskView,
    /// The agent's first team (the cycle's "team" stop), if any.
    pub team: Option<String>,
    /// The cursor of each loaded row (the sheet keys rows by task id).
    cursors: HashMap<i64, TaskCursor>,
    reload: bool,
}

impl TasksView {
    pub fn new(now: Millis, view: TaskView, team: Option<String>) -> TasksView {
        TasksView {
            now,
            view,
            team,
            cursors: HashMap::new(),
            reload: false,
        }
    }

    /// `:tasks ARG`: mine (default), overdue, all, team NAME.
    pub fn parse_view(arg: &str) -> Result<TaskView, String> {
        let arg = arg.trim();
        Ok(match arg.split_once(char::is_whitespace) {
            Some(("team", t)) if !t.trim().is_empty() => TaskView::Team(t.trim().to_string()),
            _ => match arg {
                "" | "mine" => TaskView::Mine,
                "overdue" => TaskView::Overdue,
                "all" => TaskView::All,
                other => {
                    return Err(format!(
                        "tasks: no view '{other}' (mine, overdue, team NAME, all)"
                    ));
                }
            },
        })
    }

    fn next_view(&self) -> TaskView {
        match (&self.view, &self.team) {
            (TaskView::Mine, _) => TaskView::Overdue,
            (TaskView::Overdue, Some(t)) => TaskView::Team(t.clone()),
            (TaskView::Overdue, None) => TaskView::All,
            (TaskView::Team(_), _) => TaskView::All,
            _ => TaskView::Mine,
        }
    }
}

impl SheetSource for TasksView {
    fn title(&self) -> String {
        format!(
            "tasks: {} (soonest due first · v: mine/overdue/team/all)",
            self.view.label()
        )
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, seq: u64, at: PageAt, limit: usize) -> Request {
        let cursor = |k: i64| self.cursors.get(&k).copied();
        let at = match at {
            PageAt::Top => TaskAt::Top,
            PageAt::Bottom => TaskAt::Bottom,
            PageAt::After(k) => cursor(k).map(TaskAt::After).unwrap_or(TaskAt::Top),
            PageAt::Before(k) => cursor(k).map(TaskAt::Before).unwrap_or(TaskAt::Top),
        };
        Request::Tasks {
            seq,
            view: self.view.clone(),
            at,
            limit,
        }
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Tasks {
            seq,
            view,
            at,
            rows,
            more,
        } = resp
        else {
            return None;
        };
        if *view != self.view {
            return None;
        }
        for r in rows {
            self.cursors.insert(r.id, r.cursor());
        }
        let key_of = |c: &TaskCursor| c.id;
        let at = match at {
            TaskAt::Top => PageAt::Top,
            TaskAt::Bottom => PageAt::Bottom,
            TaskAt::After(c) => PageAt::After(key_of(c)),
            TaskAt::Before(c) => PageAt::Before(key_of(c)),
        };
        let overdue = rows.iter().filter(|r| r.is_overdue(self.now)).count();
        Some(SheetPage {
            seq: *seq,
            at,
            rows: rows
                .iter()
                .map(|r| SheetRow {
                    key: r.id,
                    text: line(r, self.now),
                    marked: r.is_overdue(self.now),
                    target: r.conversation_id.map(|c| SheetTarget {
                        conversation: c,
                        message: None,
                    }),
                })
                .collect(),
            more: *more,
            footer: Some(match overdue {
                0 => "x: done · Enter: open".to_string(),
                n => format!("{n} overdue · x: done · Enter: open"),
            }),
        })
    }

    fn commands(&self) -> &'static [&'static str] {
        &["close_task", "tasks_cycle"]
    }

    fn action(&mut self, action: &Action, selected: Option<&SheetRow>) -> Option<SheetEnter> {
        match action {
            Action::CloseTask => Some(match selected {
                Some(row) => SheetEnter {
                    requests: vec![Request::TaskClose {
                        id: row.key,
                        end: TaskEnd::Done,
                    }],
                    ..SheetEnter::default()
                },
                None => SheetEnter {
                    info: Some("no task selected".into()),
                    ..SheetEnter::default()
                },
            }),
            Action::TasksCycle => {
                self.view = self.next_view();
                self.cursors.clear();
                self.reload = true;
                Some(SheetEnter::default())
            }
            _ => None,
        }
    }

    fn take_reload(&mut self) -> bool {
        std::mem::take(&mut self.reload)
    }

    fn empty(&self) -> String {
        "no open tasks here: :task call tomorrow 10:00 -- TITLE makes one on the conversation"
            .into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn task_lines() {
        let now = 1_000_000;
        let when = |s: &str| crate::when::parse_in(s, now, &|_| 0, None);
        let p = |s: &str| parse_task(s, &when);
        let t = p("call tomorrow 10:00").unwrap();
        assert_eq!((t.kind.as_str(), t.title.as_str()), ("call", ""));
        assert_eq!(t.due_at, when("tomorrow 10:00").unwrap());
        let t = p("call tomorrow 10:00 -- ask about the refund").unwrap();
        assert_eq!(
            (t.kind.as_str(), t.title.as_str()),
            ("call", "ask about the refund")
        );
        let t = p("call tomorrow 10:00 check the refund").unwrap();
        assert_eq!(
            (t.kind.as_str(), t.title.as_str(), t.due_at),
            ("call", "check the refund", when("tomorrow 10:00").unwrap())
        );
        let t = p("2h send the contract").unwrap();
        assert_eq!(
            (t.kind.as_str(), t.title.as_str()),
            ("todo", "send the contract")
        );
        let t = p("Email monday 9am -- the contract").unwrap();
        assert_eq!(
            (t.kind.as_str(), t.title.as_str()),
            ("email", "the contract")
        );
        let e = p("call whenever").unwrap_err();
        assert!(e.contains("no time") && e.contains("tomorrow 10:00"), "{e}");
        assert!(p("").unwrap_err().contains(":task call tomorrow"));
        // With `--`, the time is everything before it.
        assert!(p("call tomorrow later -- x").is_err());
    }

    #[test]
    fn views_parse_and_cycle() {
        assert_eq!(TasksView::parse_view("").unwrap(), TaskView::Mine);
        assert_eq!(TasksView::parse_view("overdue").unwrap(), TaskView::Overdue);
        assert_eq!(
            TasksView::parse_view("team billing").unwrap(),
            TaskView::Team("billing".into())
        );
        assert!(TasksView::parse_view("soon").is_err());
        let mut v = TasksView::new(0, TaskView::Mine, Some("billing".into()));
        let mut seen = Vec::new();
        for _ in 0..4 {
            v.action(&Action::TasksCycle, None);
            assert!(v.take_reload());
            seen.push(v.view.clone());
        }
        assert_eq!(
            seen,
            vec![
                TaskView::Overdue,
                TaskView::Team("billing".into()),
                TaskView::All,
                TaskView::Mine
            ]
        );
    }
}
