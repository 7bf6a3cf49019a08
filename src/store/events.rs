//! The append-only events table: the audit log (who did what, when) and the change feed that
//! every other process follows to refresh what it shows.

use super::Result;
use crate::model::{ContactId, ConversationId, EventId, MessageId, Millis};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// What happened. The text form is what the table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    MessageIn,
    MessageOut,
    Note,
    DeliveryChanged,
    Assigned,
    StatusChanged,
    PriorityChanged,
    TagAdded,
    TagRemoved,
    ConversationCreated,
    IdentityLinked,
    ContactsMerged,
    ContactUpdated,
    Imported,
    /// The conversation moved to another team (or to none).
    TeamChanged,
    /// An action the actor's role or teams did not allow: nothing changed.
    Refused,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::MessageIn,
        EventKind::MessageOut,
        EventKind::Note,
        EventKind::DeliveryChanged,
        EventKind::Assigned,
        EventKind::StatusChanged,
        EventKind::PriorityChanged,
        EventKind::TagAdded,
        EventKind::TagRemoved,
        EventKind::ConversationCreated,
        EventKind::IdentityLinked,
        EventKind::ContactsMerged,
        EventKind::ContactUpdated,
        EventKind::Imported,
        EventKind::TeamChanged,
        EventKind::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageIn => "message_in",
            EventKind::MessageOut => "message_out",
            EventKind::Note => "note",
            EventKind::DeliveryChanged => "delivery_changed",
            EventKind::Assigned => "assigned",
            EventKind::StatusChanged => "status_changed",
            EventKind::PriorityChanged => "priority_changed",
            EventKind::TagAdded => "tag_added",
            EventKind::TagRemoved => "tag_removed",
            EventKind::ConversationCreated => "conversation_created",
            EventKind::IdentityLinked => "identity_linked",
            EventKind::ContactsMerged => "contacts_merged",
            EventKind::ContactUpdated => "contact_updated",
            EventKind::Imported => "imported",
            EventKind::TeamChanged => "team_changed",
            EventKind::Refused => "refused",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<EventKind, String> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind '{s}'"))
    }
}

/// The condition a restricted scope puts on an event (`" AND CASE ... END"`): the events of
/// the conversations and contacts it sees, of the refusals only its own, and the events that
/// took a conversation out of its view (moved from one of its teams, taken from its agent).
pub(crate) fn scope_condition() -> String {
    let cond = super::scope::AND_COND;
    format!(
        " AND CASE
            WHEN kind = 'refused' THEN actor = (SELECT agent FROM temp.braid_scope_agent)
            WHEN kind = 'team_changed' AND json_valid(data) AND json_extract(data, '$.from')
                IN (SELECT team FROM temp.braid_scope_teams) THEN 1
            WHEN kind = 'assigned' AND json_valid(data) AND json_extract(data, '$.from')
                = (SELECT agent FROM temp.braid_scope_agent) THEN 1
            WHEN conversation_id IS NOT NULL THEN EXISTS (SELECT 1 FROM conversations c
                WHERE c.id = events.conversation_id{cond})
            WHEN contact_id IS NOT NULL THEN EXISTS (SELECT 1 FROM conversations c
                WHERE c.contact_id = events.contact_id{cond})
            ELSE 1 END"
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: EventId,
    pub at: Millis,
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<ConversationId>,
    pub contact_id: Option<ContactId>,
    pub message_id: Option<MessageId>,
    pub data: Option<String>,
}

/// The subject of an event: any of conversation, contact, message.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventRefs {
    pub conversation: Option<ConversationId>,
    pub contact: Option<ContactId>,
    pub message: Option<MessageId>,
}

pub(crate) const EVENT_COLUMNS: &str =
    "id, at, actor, kind, conversation_id, contact_id, message_id, data";

pub(crate) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        kind: r.get(3)?,
        conversation_id: r.get(4)?,
        contact_id: r.get(5)?,
        message_id: r.get(6)?,
        data: r.get(7)?,
    })
}

/// Append one event inside the caller's transaction.
pub(crate) fn append(
    conn: &Connection,
    at: Millis,
    actor: &str,
    kind: EventKind,
    refs: EventRefs,
    data: Option<&serde_json::Value>,
) -> Result<EventId> {
    conn.prepare_cached(
        "INSERT INTO events(at, actor, kind, conversation_id, contact_id, message_id, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        at,
        actor,
        kind.as_str(),
        refs.conversation,
        refs.contact,
        refs.message,
        data.map(|d| d.to_string()),
    ))?;
    Ok(EventId(conn.last_insert_rowid()))
}

impl super::Store {
    /// The newest event id (0 for an empty log): where a new follower starts.
    pub fn last_event_id(&self) -> Result<EventId> {
        let id: Option<i64> = self
            .conn()
            .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(EventId(id.unwrap_or(0)))
    }

    /// Events after `after`, oldest first, at most `limit`. A restricted scope gets the events
    /// of the conversations and contacts it sees, of the refusals only its own, and the
    /// events that took a conversation out of its view (moved from one of its teams, taken
    /// from its agent), so a client drops what it can no longer see.
    pub fn events_since(&self, after: EventId, limit: usize) -> Result<Vec<EventRow>> {
        let scope = if self.scoped() {
            scope_condition()
        } else {
            String::new()
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1{scope} ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map((after, limit as i64), event_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The audit trail of one conversation, newest first.
    pub fn conversation_events(&self, conv: ConversationId, limit: usize) -> Result<Vec<EventRow>> {
        if self.scoped() {
            super::scope::conversation_contact(self.conn(), conv, true)?;
        }
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map((conv, limit as i64), event_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
