//! Tasks: to-dos on a contact or a conversation (call back, send the contract, check the
//! refund) with a due time, an assignee, a team and a state (`open`, `done`, `cancelled`).
//!
//! Every change is audited in the same transaction: `task_created`, `task_due` (once, when the
//! due sweep first sees it due: `notified_at`), `task_closed` (by hand, or by an event: a call
//! log for the contact closes its open `call` tasks). The notification of a due task is derived
//! from its `task_due` event like every other notification ([`super::notifications`]).
//!
//! Create and close are callable inside a caller's transaction ([`Tx::create_task`],
//! [`Tx::close_task`]) with any actor (`rule:ID` for the rules engine), or on a [`Store`].

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, Tx};
use crate::model::{ContactId, ConversationId, Millis};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The kind of task a call log closes.
pub const CALL: &str = "call";
/// The derivation cursor of closing tasks by events (`derivations` row).
const CURSOR: &str = "tasks";
/// Events read per transaction by [`Store::close_tasks_by_events`].
const BATCH: usize = 500;
/// The most tasks one page carries.
pub const MAX_PAGE: usize = 500;

/// A task to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// "call", "todo", "email"... (one lowercase word; empty: "todo").
    pub kind: String,
    pub title: String,
    pub due_at: Option<Millis>,
    pub assignee: Option<String>,
    /// None: the conversation's team (if any).
    pub team: Option<String>,
    /// None with a conversation: the conversation's contact.
    pub contact: Option<ContactId>,
    pub conversation: Option<ConversationId>,
}

/// How a task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEnd {
    Done,
    Cancelled,
}

impl TaskEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskEnd::Done => "done",
            TaskEnd::Cancelled => "cancelled",
        }
    }
}

/// One task as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub due_at: Option<Millis>,
    pub assignee: Option<String>,
    pub team: Option<String>,
    /// `open`, `done`, `cancelled`.
    pub state: String,
    pub contact_id: Option<ContactId>,
    pub conversation_id: Option<ConversationId>,
    /// The contact's name now ("" without a contact).
    pub contact_name: String,
    pub created_by: String,
    pub created_at: Millis,
    pub closed_at: Option<Millis>,
    pub closed_by: Option<String>,
    /// When the due sweep marked it due (None: not yet).
    pub notified_at: Option<Millis>,
}

impl TaskRow {
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
    /// Open and due before `now`.
    pub fn is_overdue(&self, now: Millis) -> bool {
        self.is_open() && self.due_at.is_some_and(|d| d <= now)
    }
}

/// Which tasks a list shows (open ones, soonest due first; no due time last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskWindow {
    /// Assigned to this agent.
    Mine(String),
    /// Due before `now` (any assignee the scope sees).
    Overdue(Millis),
    /// Of this team.
    Team(String),
    /// Every open task the scope sees.
    Open,
    /// Of this contact.
    Contact(ContactId),
    /// Of this conversation.
    Conversation(ConversationId),
}

/// Where a page starts: after this (sort key, id) of the previous page's last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCursor {
    pub due: i64,
    pub id: i64,
}

/// Where a page of tasks starts, in list order (soonest due first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskAt {
    /// The first tasks.
    Top,
    /// The last tasks (returned in list order, the last one last).
    Bottom,
    /// The tasks after this row.
    After(TaskCursor),
    /// The tasks before this row (returned in list order).
    Before(TaskCursor),
}

/// The sort key: the due time, no due time last.
fn sort_key(due: Option<Millis>) -> i64 {
    due.unwrap_or(i64::MAX)
}

impl TaskRow {
    /// The cursor of the page after this row.
    pub fn cursor(&self) -> TaskCursor {
        TaskCursor {
            due: sort_key(self.due_at),
            id: self.id,
        }
    }
}

const COLUMNS: &str = "t.id, t.kind, t.title, t.due_at, t.assignee, t.team, t.state,
    t.contact_id, t.conversation_id, coalesce(ct.name, ''), t.created_by, t.created_at,
    t.closed_at, t.closed_by, t.notified_at";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        title: r.get(2)?,
        due_at: r.get(3)?,
        assignee: r.get(4)?,
        team: r.get(5)?,
        state: r.get(6)?,
        contact_id: r.get(7)?,
        conversation_id: r.get(8)?,
        contact_name: r.get(9)?,
        created_by: r.get(10)?,
        created_at: r.get(11)?,
        closed_at: r.get(12)?,
        closed_by: r.get(13)?,
        notified_at: r.get(14)?,
    })
}

/// A restricted scope sees the tasks of its teams, of no team, and its own.
const SCOPE_COND: &str =
    " AND (t.team IS NULL OR t.team IN (SELECT team FROM temp.braid_scope_teams)
     OR t.assignee = (SELECT agent FROM temp.braid_scope_agent))";

fn get(conn: &Connection, id: i64) -> Result<Option<TaskRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tasks t LEFT JOIN contacts ct ON ct.id = t.contact_id
             WHERE t.id = ?1"
        ))?
        .query_row([id], task_row)
        .optional()?)
}

fn refs(t: &TaskRow) -> EventRefs {
    EventRefs {
        conversation: t.conversation_id,
        contact: t.contact_id,
        message: None,
    }
}

/// Create a task inside the caller's transaction; audited `task_created` by `actor`.
pub(crate) fn create(conn: &Connection, t: &NewTask, actor: &str, at: Millis) -> Result<TaskRow> {
    let kind = crate::sanitize::line(t.kind.trim()).to_lowercase();
    let kind = if kind.is_empty() { "todo".into() } else { kind };
    if kind.split_whitespace().count() != 1 {
        return Err(StoreError::Invalid(format!(
            "a task kind is one word (call, todo, email), not '{kind}'"
        )));
    }
    let title = crate::sanitize::line(t.title.trim());
    let title = title.trim();
    if title.is_empty() {
        return Err(StoreError::Invalid(
            "a task needs a title (what to do: call back about the refund)".into(),
        ));
    }
    let (contact, conv_team) = match t.conversation {
        Some(conv) => {
            let (contact, team): (ContactId, Option<String>) = conn
                .prepare_cached("SELECT contact_id, team FROM conversations WHERE id = ?1")?
                .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or(StoreError::NoConversation(conv.0))?;
            if t.contact.is_some_and(|c| c != contact) {
                return Err(StoreError::Invalid(format!(
                    "conversation #{} is not of contact #{}; give one or the other",
                    conv.0,
                    t.contact.map(|c| c.0).unwrap_or_default()
                )));
            }
            (Some(contact), team)
        }
        None => {
            let Some(c) = t.contact else {
                return Err(StoreError::Invalid(
                    "a task is on a contact or a conversation: give one".into(),
                ));
            };
            let exists = conn
                .prepare_cached("SELECT 1 FROM contacts WHERE id = ?1")?
                .exists([c])?;
            if !exists {
                return Err(StoreError::NoContact(c.0));
            }
            (Some(c), None)
        }
    };
    let team = t.team.clone().or(conv_team);
    conn.prepare_cached(
        "INSERT INTO tasks(contact_id, conversation_id, kind, title, due_at, assignee, team,
            created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute((
        contact,
        t.conversation,
        &kind,
        title,
        t.due_at,
        &t.assignee,
        &team,
        actor,
        at,
    ))?;
    let id = conn.last_insert_rowid();
    let row = get(conn, id)?.ok_or_else(|| StoreError::Invalid("task vanished".into()))?;
    events::append(
        conn,
        at,
        actor,
        EventKind::TaskCreated,
        refs(&row),
        Some(&serde_json::json!({
            "task": id, "kind": row.kind, "title": row.title, "due_at": row.due_at,
            "assignee": row.assignee, "team": row.team,
        })),
    )?;
    Ok(row)
}

/// Close an open task inside the caller's transaction; audited `task_closed` by `actor`
/// (`by`: what closed it when not a person's hand, e.g. the call log's message id). Closing
/// a closed task is refused (it says how it ended).
pub(crate) fn close(
    conn: &Connection,
    id: i64,
    end: TaskEnd,
    actor: &str,
    at: Millis,
    by: Option<&serde_json::Value>,
) -> Result<TaskRow> {
    let Some(before) = get(conn, id)? else {
        return Err(StoreError::Invalid(format!(
            "no task #{id} (braid tasks lists them)"
        )));
    };
    if !before.is_open() {
        return Err(StoreError::Invalid(format!(
            "task #{id} is already {} (by {})",
            before.state,
            before.closed_by.as_deref().unwrap_or("?")
        )));
    }
    conn.prepare_cached(
        "UPDATE tasks SET state = ?2, closed_at = ?3, closed_by = ?4 WHERE id = ?1",
    )?
    .execute((id, end.as_str(), at, actor))?;
    let mut data = serde_json::json!({
        "task": id, "kind": before.kind, "title": before.title, "state": end.as_str(),
    });
    if let (Some(by), Some(obj)) = (by, data.as_object_mut()) {
        obj.insert("by".into(), by.clone());
    }
    events::append(
        conn,
        at,
        actor,
        EventKind::TaskClosed,
        refs(&before),
        Some(&data),
    )?;
    get(conn, id)?.ok_or_else(|| StoreError::Invalid("task vanished".into()))
}

fn cursor(conn: &Connection) -> Result<Option<i64>> {
    Ok(super::derivations::cursor(conn, CURSOR)?.map(|e| e.0))
}

fn set_cursor(conn: &Connection, to: i64) -> Result<()> {
    super::derivations::set_cursor(conn, CURSOR, crate::model::EventId(to))
}

impl Tx<'_> {
    /// [`Store::create_task`] inside this transaction (the rules engine: `actor = "rule:ID"`).
    pub fn create_task(&self, t: &NewTask, actor: &str, at: Millis) -> Result<TaskRow> {
        create(self.conn(), t, actor, at)
    }

    /// [`Store::close_task`] inside this transaction.
    pub fn close_task(&self, id: i64, end: TaskEnd, actor: &str, at: Millis) -> Result<TaskRow> {
        close(self.conn(), id, end, actor, at, None)
    }
}

impl Store {
    /// Create a task on a contact or a conversation (audited `task_created` by `actor`). A
    /// restricted scope creates only on conversations and contacts it sees.
    pub fn create_task(&mut self, t: &NewTask, actor: &str, at: Millis) -> Result<TaskRow> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            if let Some(conv) = t.conversation {
                super::scope::conversation_contact(tx, conv, scoped)?;
            } else if let Some(c) = t.contact {
                super::scope::check_contact(tx, c, scoped)?;
            }
            create(tx, t, actor, at)
        })
    }

    /// Close (done) or cancel an open task (audited `task_closed` by `actor`).
    pub fn close_task(
        &mut self,
        id: i64,
        end: TaskEnd,
        actor: &str,
        at: Millis,
    ) -> Result<TaskRow> {
        let cond = if self.scoped() { SCOPE_COND } else { "" };
        self.write_with(|tx| {
            let visible = tx
                .prepare_cached(&format!("SELECT 1 FROM tasks t WHERE t.id = ?1{cond}"))?
                .exists([id])?;
            if !visible {
                return Err(StoreError::Invalid(format!(
                    "no task #{id} (braid tasks lists them)"
                )));
            }
            close(tx, id, end, actor, at, None)
        })
    }

    /// One task the scope sees.
    pub fn task(&self, id: i64) -> Result<Option<TaskRow>> {
        let cond = if self.scoped() { SCOPE_COND } else { "" };
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM tasks t LEFT JOIN contacts ct ON ct.id = t.contact_id
                 WHERE t.id = ?1{cond}"
            ))?
            .query_row([id], task_row)
            .optional()?)
    }

    /// A page of open tasks of a window at `at`, in list order (soonest due first, no due
    /// time last), and whether more exist beyond it in the direction asked (below for
    /// Top/After, above for Bottom/Before). One range of the order, whatever the number of rows.
    pub fn tasks_page(
        &self,
        window: &TaskWindow,
        at: TaskAt,
        limit: usize,
    ) -> Result<(Vec<TaskRow>, bool)> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (filter, arg): (&str, rusqlite::types::Value) = match window {
            TaskWindow::Mine(a) => ("t.assignee = ?3", a.clone().into()),
            TaskWindow::Overdue(now) => ("t.due_at <= ?3", (*now).into()),
            TaskWindow::Team(team) => ("t.team = ?3", team.clone().into()),
            TaskWindow::Open => ("?3 IS NULL", rusqlite::types::Value::Null),
            TaskWindow::Contact(c) => ("t.contact_id = ?3", c.0.into()),
            TaskWindow::Conversation(c) => ("t.conversation_id = ?3", c.0.into()),
        };
        let cond = if self.scoped() { SCOPE_COND } else { "" };
        let (cmp, dir, (due, id)) = match at {
            TaskAt::Top => (">", "ASC", (i64::MIN, i64::MIN)),
            TaskAt::After(c) => (">", "ASC", (c.due, c.id)),
            TaskAt::Bottom => ("<", "DESC", (i64::MAX, i64::MAX)),
            TaskAt::Before(c) => ("<", "DESC", (c.due, c.id)),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks t LEFT JOIN contacts ct ON ct.id = t.contact_id
             WHERE t.state = 'open' AND {filter}{cond}
               AND (coalesce(t.due_at, {max}), t.id) {cmp} (?1, ?2)
             ORDER BY coalesce(t.due_at, {max}) {dir}, t.id {dir} LIMIT ?4",
            max = i64::MAX
        );
        let mut rows: Vec<TaskRow> = self
            .conn()
            .prepare_cached(&sql)?
            .query_map(
                rusqlite::params![due, id, arg, (limit + 1) as i64],
                task_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        if dir == "DESC" {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// How many open tasks the scope sees are due before `now`.
    pub fn overdue_tasks(&self, now: Millis) -> Result<i64> {
        let cond = if self.scoped() { SCOPE_COND } else { "" };
        Ok(self.conn().query_row(
            &format!(
                "SELECT count(*) FROM tasks t WHERE t.state = 'open' AND t.due_at <= ?1{cond}"
            ),
            [now],
            |r| r.get(0),
        )?)
    }

    /// Mark the open tasks that are due at `now` and not yet marked: each gets `notified_at`
    /// and a `task_due` event (the assignee's notification derives from it), once: a task is
    /// never marked twice, across restarts. Returns the tasks marked.
    pub fn sweep_due_tasks(&mut self, now: Millis) -> Result<Vec<TaskRow>> {
        self.write_with(|tx| {
            let due: Vec<TaskRow> = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM tasks t LEFT JOIN contacts ct ON ct.id = t.contact_id
                     WHERE t.state = 'open' AND t.due_at <= ?1 AND t.notified_at IS NULL
                     ORDER BY t.due_at, t.id LIMIT ?2"
                ))?
                .query_map((now, MAX_PAGE as i64), task_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(due.len());
            for mut t in due {
                tx.prepare_cached("UPDATE tasks SET notified_at = ?2 WHERE id = ?1")?
                    .execute((t.id, now))?;
                events::append(
                    tx,
                    now,
                    "server",
                    EventKind::TaskDue,
                    refs(&t),
                    Some(&serde_json::json!({
                        "task": t.id, "kind": t.kind, "title": t.title, "due_at": t.due_at,
                        "assignee": t.assignee,
                    })),
                )?;
                t.notified_at = Some(now);
                out.push(t);
            }
            Ok(out)
        })
    }

    /// Close the open `call` tasks of each contact a call log (a `phone` message, in or out)
    /// arrived for, following the events table from a durable cursor (a store without one
    /// starts at its newest event). Each is audited `task_closed` by `event:call` with the
    /// message's id. Returns the tasks closed.
    pub fn close_tasks_by_events(&mut self, at: Millis) -> Result<Vec<TaskRow>> {
        let mut closed = Vec::new();
        loop {
            let (rows, more) = self.write_with(|tx| {
                let Some(from) = cursor(tx)? else {
                    let newest: Option<i64> =
                        tx.query_row("SELECT max(id) FROM events", [], |r| r.get(0))?;
                    set_cursor(tx, newest.unwrap_or(0))?;
                    return Ok((Vec::new(), false));
                };
                let calls: Vec<(i64, ContactId, i64, Millis)> = tx
                    .prepare_cached(
                        "SELECT e.id, m.contact_id, m.id, m.created_at FROM events e
                         JOIN messages m ON m.id = e.message_id
                         WHERE e.id > ?1 AND e.kind IN ('message_in', 'message_out')
                           AND m.channel = 'phone'
                         ORDER BY e.id LIMIT ?2",
                    )?
                    .query_map((from, BATCH as i64), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let last_event: i64 = if calls.len() == BATCH {
                    calls.last().map(|c| c.0).unwrap_or(from)
                } else {
                    tx.query_row("SELECT coalesce(max(id), ?1) FROM events", [from], |r| {
                        r.get(0)
                    })?
                };
                let mut rows = Vec::new();
                for (_, contact, message, msg_at) in &calls {
                    let open: Vec<i64> = tx
                        .prepare_cached(
                            "SELECT id FROM tasks WHERE contact_id = ?1 AND state = 'open'
                               AND kind = ?2 AND created_at <= ?3 ORDER BY id",
                        )?
                        .query_map((contact, CALL, msg_at), |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    for id in open {
                        rows.push(close(
                            tx,
                            id,
                            TaskEnd::Done,
                            "event:call",
                            at,
                            Some(&serde_json::json!({ "message": message })),
                        )?);
                    }
                }
                set_cursor(tx, last_event)?;
                Ok((rows, calls.len() == BATCH))
            })?;
            closed.extend(rows);
            if !more {
                return Ok(closed);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "tasks_tests.rs"]
mod tests;
