//! `u`: undo the last change an agent made to a conversation (status, snooze, assignee,
//! priority, tags, team), server-side and audited.
//!
//! How the change is found: the agent's events, newest first (index `events_actor`), of the
//! undoable kinds, that no `undone` or `refused` event names in `data.undid` (index
//! `events_undid`). One change is one verb's event, or every event of one bulk request (`V` +
//! verb, `:g//`: [`Store::batch`] marks them `data.batch`). Pressing `u` again walks further
//! back (vim's undo, not a toggle).
//!
//! How it is restored: the events record the value before (`from`, and for a status
//! `from_snoozed_until` / `from_resolved_at`; a tag's inverse is itself). Each event is
//! restored only while the field still holds the value the change set; when someone (or
//! something) changed it since, the undo of that conversation is refused (a `refused` event
//! naming the change, so the next `u` walks past it) instead of clobbering their change.
//! Each restored field writes one `undone` event: `{"undid", "kind", "field", "restored",
//! "was"}`.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, scope};
use crate::model::{ConversationId, EventId, Millis, Priority, Status};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};

/// The event kinds `u` reverses.
const UNDOABLE: &str =
    "'assigned', 'status_changed', 'priority_changed', 'tag_added', 'tag_removed', 'team_changed'";

/// What one `u` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UndoReport {
    /// One line per restored field: "#12 status back to open".
    pub restored: Vec<String>,
    /// The conversations whose change could not be undone, and why.
    pub refused: Vec<UndoRefusal>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UndoRefusal {
    pub conversation: ConversationId,
    pub reason: String,
}

impl UndoReport {
    /// Nothing was left to undo.
    pub fn is_empty(&self) -> bool {
        self.restored.is_empty() && self.refused.is_empty()
    }

    /// The one status line: "undone: #12 status back to open" / "undone 18 changes; 2 not
    /// undone (#3: ...)".
    pub fn line(&self) -> String {
        if self.is_empty() {
            return "nothing to undo: you have no change left that u can take back".into();
        }
        let mut out = match self.restored.len() {
            0 => "nothing undone".to_string(),
            1 => format!("undone: {}", self.restored[0]),
            n if n <= 3 => format!("undone: {}", self.restored.join("; ")),
            n => format!("undone {n} changes ({}; ...)", self.restored[0]),
        };
        if !self.refused.is_empty() {
            let first = &self.refused[0];
            out.push_str(&format!(
                "; {} not undone (#{}: {}{})",
                self.refused.len(),
                first.conversation,
                first.reason,
                if self.refused.len() > 1 { "; ..." } else { "" }
            ));
            out.push_str("; u again goes further back");
        }
        out
    }
}

/// One undoable event as read.
struct Change {
    id: EventId,
    kind: String,
    conversation: ConversationId,
    data: Value,
}

impl Store {
    /// Undo `actor`'s newest change not yet undone (see the module doc), in one transaction.
    /// `actor` is an agent (or a rule id, `rule:...`): only its own changes are found. An
    /// empty report: nothing left to undo.
    pub fn undo_last(&mut self, actor: &str, at: Millis) -> Result<UndoReport> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let group = newest_change(tx, actor)?;
            let mut report = UndoReport::default();
            for change in group {
                match restore(tx, &change, actor, at, scoped)? {
                    Ok(line) => report.restored.push(line),
                    Err(reason) => {
                        events::append(
                            tx,
                            at,
                            actor,
                            EventKind::Refused,
                            EventRefs {
                                conversation: Some(change.conversation),
                                contact: super::conversations::contact_of(tx, change.conversation)
                                    .ok(),
                                message: None,
                            },
                            Some(&json!({
                                "action": "undo",
                                "undid": change.id,
                                "reason": reason,
                            })),
                        )?;
                        report.refused.push(UndoRefusal {
                            conversation: change.conversation,
                            reason,
                        });
                    }
                }
            }
            Ok(report)
        })
    }
}

/// The newest not-yet-undone change of `actor`: its events (one verb, or every event of one
/// bulk request: `data.batch`), newest first.
fn newest_change(conn: &Connection, actor: &str) -> Result<Vec<Change>> {
    let not_undone = "NOT EXISTS (SELECT 1 FROM events u
            WHERE json_extract(u.data, '$.undid') = e.id AND u.kind IN ('undone', 'refused'))";
    let columns = "e.id, e.at, e.kind, e.conversation_id, e.data";
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Change> {
        let data: Option<String> = r.get(4)?;
        Ok(Change {
            id: r.get(0)?,
            kind: r.get(2)?,
            conversation: r.get(3)?,
            data: data
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(Value::Null),
        })
    };
    let newest = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM events e
             WHERE e.actor = ?1 AND e.kind IN ({UNDOABLE}) AND e.conversation_id IS NOT NULL
               AND {not_undone}
             ORDER BY e.id DESC LIMIT 1"
        ))?
        .query_row([actor], read)
        .optional()?;
    let Some(newest) = newest else {
        return Ok(Vec::new());
    };
    let Some(batch) = newest.data.get("batch").and_then(Value::as_i64) else {
        return Ok(vec![newest]);
    };
    // The batch's events lie between its first id and this one.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {columns} FROM events e
         WHERE e.actor = ?1 AND e.id BETWEEN ?2 AND ?3 AND e.kind IN ({UNDOABLE})
           AND e.conversation_id IS NOT NULL AND json_extract(e.data, '$.batch') = ?2
           AND {not_undone}
         ORDER BY e.id DESC"
    ))?;
    let rows = stmt.query_map((actor, batch, newest.id), read)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn millis(v: &Value, key: &str) -> Option<Millis> {
    v.get(key).and_then(Value::as_i64)
}

/// Restore one event's field. Ok(Err(reason)): refused (recorded by the caller).
fn restore(
    tx: &Connection,
    c: &Change,
    actor: &str,
    at: Millis,
    scoped: bool,
) -> Result<std::result::Result<String, String>> {
    let id = c.conversation;
    let contact = match scope::conversation_contact(tx, id, scoped) {
        Ok(contact) => contact,
        Err(StoreError::NoConversation(_)) => {
            return Ok(Err(
                "it is no longer in your teams (ask someone who sees it)".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    // Someone else changed the field since (even back to what it was): theirs stands.
    if let Some(by) = changed_by_other(tx, c, actor)? {
        let field = match text(&c.data, "tag") {
            Some(t) => format!("tag {t}"),
            None => c
                .kind
                .trim_end_matches("_changed")
                .replace("assigned", "assignee"),
        };
        return Ok(Err(format!(
            "{by} changed its {field} after you; nothing of theirs was overwritten"
        )));
    }
    let d = &c.data;
    let no_before = || -> String {
        "the change does not record the value before it (it predates undo)".to_string()
    };
    let (field, was, restored): (&str, Value, Value) = match c.kind.as_str() {
        "assigned" => {
            let Some(from) = d.get("from") else {
                return Ok(Err(no_before()));
            };
            let set = text(d, "assignee");
            let now: Option<String> = tx
                .prepare_cached("SELECT assignee FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            if now != set {
                return Ok(Err(overtaken(tx, c, "assignee", now.as_deref())?));
            }
            let from = from.as_str().map(str::to_string);
            tx.prepare_cached("UPDATE conversations SET assignee = ?2 WHERE id = ?1")?
                .execute((id, &from))?;
            ("assignee", json!(set), json!(from))
        }
        "team_changed" => {
            let Some(from) = d.get("from") else {
                return Ok(Err(no_before()));
            };
            let set = text(d, "team");
            let now: Option<String> = tx
                .prepare_cached("SELECT team FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            if now != set {
                return Ok(Err(overtaken(tx, c, "team", now.as_deref())?));
            }
            let from = from.as_str().map(str::to_string);
            tx.prepare_cached("UPDATE conversations SET team = ?2 WHERE id = ?1")?
                .execute((id, &from))?;
            ("team", json!(set), json!(from))
        }
        "priority_changed" => {
            let Some(from) = text(d, "from").and_then(|f| f.parse::<Priority>().ok()) else {
                return Ok(Err(no_before()));
            };
            let set = text(d, "priority");
            let now: Priority = tx
                .prepare_cached("SELECT priority FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            if Some(now.to_string()) != set {
                return Ok(Err(overtaken(tx, c, "priority", Some(&now.to_string()))?));
            }
            tx.prepare_cached("UPDATE conversations SET priority = ?2 WHERE id = ?1")?
                .execute((id, from))?;
            ("priority", json!(set), json!(from))
        }
        "status_changed" => {
            let Some(from) = text(d, "from").and_then(|f| f.parse::<Status>().ok()) else {
                return Ok(Err(no_before()));
            };
            let set = text(d, "status");
            let set_until = millis(d, "snoozed_until");
            let (now, now_until): (Status, Option<Millis>) = tx
                .prepare_cached("SELECT status, snoozed_until FROM conversations WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if Some(now.to_string()) != set || (now == Status::Snoozed && now_until != set_until) {
                return Ok(Err(overtaken(tx, c, "status", Some(&now.to_string()))?));
            }
            // A contact has at most one active conversation (see set_status).
            if from.is_active() && !now.is_active() {
                let other: Option<ConversationId> = tx
                    .prepare_cached(
                        "SELECT id FROM conversations
                         WHERE contact_id = ?1 AND id <> ?2 AND status <> 'resolved' LIMIT 1",
                    )?
                    .query_row((contact, id), |r| r.get(0))
                    .optional()?;
                if let Some(other) = other {
                    return Ok(Err(format!(
                        "the contact has another active conversation now, #{other}"
                    )));
                }
            }
            let until = millis(d, "from_snoozed_until").filter(|_| from == Status::Snoozed);
            let resolved = millis(d, "from_resolved_at").filter(|_| from == Status::Resolved);
            tx.prepare_cached(
                "UPDATE conversations SET status = ?2, snoozed_until = ?3, resolved_at = ?4
                 WHERE id = ?1",
            )?
            .execute((id, from, until, resolved))?;
            // A snooze comes back with its time (the line says "snoozed"; the data has it).
            let restored = match until {
                Some(t) => json!({ "status": from, "snoozed_until": t }),
                None => json!(from),
            };
            ("status", json!(set), restored)
        }
        "tag_added" | "tag_removed" => {
            let Some(tag) = text(d, "tag") else {
                return Ok(Err(no_before()));
            };
            let added = c.kind == "tag_added";
            let has: bool = tx
                .prepare_cached("SELECT 1 FROM tags WHERE conversation_id = ?1 AND tag = ?2")?
                .query_row((id, &tag), |_| Ok(()))
                .optional()?
                .is_some();
            if has != added {
                let now = if has { "on" } else { "off" };
                return Ok(Err(overtaken(tx, c, &format!("tag {tag}"), Some(now))?));
            }
            if added {
                tx.prepare_cached("DELETE FROM tags WHERE conversation_id = ?1 AND tag = ?2")?
                    .execute((id, &tag))?;
            } else {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO tags(conversation_id, tag) VALUES (?1, ?2)",
                )?
                .execute((id, &tag))?;
            }
            let (was, restored) = if added {
                ("added", "removed")
            } else {
                ("removed", "added")
            };
            events::append(
                tx,
                at,
                actor,
                EventKind::Undone,
                EventRefs {
                    conversation: Some(id),
                    contact: Some(contact),
                    message: None,
                },
                Some(&json!({
                    "undid": c.id, "kind": c.kind, "field": "tag", "tag": tag,
                    "was": was, "restored": restored,
                })),
            )?;
            return Ok(Ok(format!("#{id} tag {tag} {restored} again")));
        }
        other => return Ok(Err(format!("a {other} change cannot be undone"))),
    };
    events::append(
        tx,
        at,
        actor,
        EventKind::Undone,
        EventRefs {
            conversation: Some(id),
            contact: Some(contact),
            message: None,
        },
        Some(&json!({
            "undid": c.id, "kind": c.kind, "field": field, "was": was, "restored": restored,
        })),
    )?;
    let shown = match &restored {
        Value::Null => "none".to_string(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        v => v.to_string(),
    };
    Ok(Ok(format!("#{id} {field} back to {shown}")))
}

/// The event kinds that change the same field as `kind`.
fn family(kind: &str) -> (&str, &str) {
    match kind {
        "tag_added" | "tag_removed" => ("tag_added", "tag_removed"),
        k => (k, k),
    }
}

/// Who else changed the field after the agent's change (None: nobody).
fn changed_by_other(tx: &Connection, c: &Change, actor: &str) -> Result<Option<String>> {
    let (k1, k2) = family(&c.kind);
    let tag = text(&c.data, "tag");
    Ok(tx
        .prepare_cached(
            "SELECT actor FROM events
             WHERE conversation_id = ?1 AND id > ?2 AND kind IN (?3, ?4) AND actor <> ?5
               AND (?6 IS NULL OR json_extract(data, '$.tag') = ?6)
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row((c.conversation, c.id, k1, k2, actor, tag), |r| r.get(0))
        .optional()?)
}

/// Why a field cannot be restored: who changed it after the agent's change.
fn overtaken(tx: &Connection, c: &Change, field: &str, now: Option<&str>) -> Result<String> {
    let (k1, k2) = family(&c.kind);
    let by: Option<String> = tx
        .prepare_cached(
            "SELECT actor FROM events WHERE conversation_id = ?1 AND id > ?2 AND kind IN (?3, ?4)
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row((c.conversation, c.id, k1, k2), |r| r.get(0))
        .optional()?;
    let now = now.unwrap_or("none");
    Ok(match by {
        Some(by) => {
            format!("{by} changed its {field} since (now {now}); nothing of theirs was overwritten")
        }
        None => format!("its {field} changed since (now {now}); nothing was overwritten"),
    })
}
