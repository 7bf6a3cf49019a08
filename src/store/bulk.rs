//! Batch helpers for loading a lot at once (the demo generator, imports): the workflow verbs
//! and agent messages inside the CALLER's transaction, so thousands of them share one commit,
//! and connection settings that make a large load fast.
//!
//! Each verb writes exactly what its interactive twin on [`Store`] writes (the row change and
//! its event); only the transaction is the caller's.

use super::events::{self, EventKind, EventRefs};
use super::messages::{NewMessage, insert_message};
use super::{Result, Store, StoreError};
use crate::model::{
    Channel, ContactId, ConversationId, Delivery, Direction, MessageId, Millis, Priority, Status,
};
use rusqlite::Connection;

/// An agent's message written straight to the timeline: a reply that was already delivered
/// (history) or an internal note.
pub(crate) struct AgentMessage<'a> {
    pub conversation: ConversationId,
    pub contact: ContactId,
    pub channel: Channel,
    /// `Out` (a delivered reply) or `Note`.
    pub direction: Direction,
    pub author: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub at: Millis,
}

/// Insert an agent's reply (delivery `sent`) or note, with its event. A reply moves an open
/// conversation to pending, as [`Store::queue_reply`] does.
pub(crate) fn agent_message(conn: &Connection, m: &AgentMessage<'_>) -> Result<MessageId> {
    let out = match m.direction {
        Direction::Out => true,
        Direction::Note => false,
        Direction::In => {
            return Err(StoreError::Invalid(
                "customer messages go through ingest".into(),
            ));
        }
    };
    let id = insert_message(
        conn,
        &NewMessage {
            conversation: m.conversation,
            contact: m.contact,
            channel: m.channel,
            account: "",
            external_id: None,
            direction: m.direction,
            author: m.author,
            subject: m.subject,
            body: m.body,
            created_at: m.at,
            stored_at: m.at,
            delivery: out.then_some(Delivery::Sent),
            meta: None,
        },
    )?;
    if out {
        conn.prepare_cached(
            "UPDATE conversations SET status = 'pending' WHERE id = ?1 AND status = 'open'",
        )?
        .execute([m.conversation])?;
    }
    events::append(
        conn,
        m.at,
        m.author,
        if out {
            EventKind::MessageOut
        } else {
            EventKind::Note
        },
        EventRefs {
            conversation: Some(m.conversation),
            contact: Some(m.contact),
            message: Some(id),
        },
        None,
    )?;
    Ok(id)
}

fn refs(conv: ConversationId, contact: ContactId) -> EventRefs {
    EventRefs {
        conversation: Some(conv),
        contact: Some(contact),
        message: None,
    }
}

/// [`Store::set_status`] inside the caller's transaction.
pub(crate) fn set_status(
    conn: &Connection,
    conv: ConversationId,
    contact: ContactId,
    status: Status,
    snoozed_until: Option<Millis>,
    actor: &str,
    at: Millis,
) -> Result<()> {
    if status == Status::Snoozed && snoozed_until.is_none() {
        return Err(StoreError::Invalid("snooze needs a time".into()));
    }
    conn.prepare_cached(
        "UPDATE conversations SET status = ?2,
            snoozed_until = CASE WHEN ?2 = 'snoozed' THEN ?3 ELSE NULL END,
            resolved_at = CASE WHEN ?2 = 'resolved' THEN ?4 ELSE NULL END
         WHERE id = ?1",
    )?
    .execute((conv, status, snoozed_until, at))?;
    events::append(
        conn,
        at,
        actor,
        EventKind::StatusChanged,
        refs(conv, contact),
        Some(&serde_json::json!({ "status": status, "snoozed_until": snoozed_until })),
    )?;
    Ok(())
}

/// [`Store::assign`] inside the caller's transaction.
pub(crate) fn assign(
    conn: &Connection,
    conv: ConversationId,
    contact: ContactId,
    assignee: Option<&str>,
    actor: &str,
    at: Millis,
) -> Result<()> {
    conn.prepare_cached("UPDATE conversations SET assignee = ?2 WHERE id = ?1")?
        .execute((conv, assignee))?;
    events::append(
        conn,
        at,
        actor,
        EventKind::Assigned,
        refs(conv, contact),
        Some(&serde_json::json!({ "assignee": assignee })),
    )?;
    Ok(())
}

/// [`Store::set_priority`] inside the caller's transaction.
pub(crate) fn set_priority(
    conn: &Connection,
    conv: ConversationId,
    contact: ContactId,
    priority: Priority,
    actor: &str,
    at: Millis,
) -> Result<()> {
    conn.prepare_cached("UPDATE conversations SET priority = ?2 WHERE id = ?1")?
        .execute((conv, priority))?;
    events::append(
        conn,
        at,
        actor,
        EventKind::PriorityChanged,
        refs(conv, contact),
        Some(&serde_json::json!({ "priority": priority })),
    )?;
    Ok(())
}

/// Add a tag ([`Store::tag`] inside the caller's transaction). True if it was new.
pub(crate) fn add_tag(
    conn: &Connection,
    conv: ConversationId,
    contact: ContactId,
    tag: &str,
    actor: &str,
    at: Millis,
) -> Result<bool> {
    let tag = super::conversations::normalize_tag(tag)?;
    let changed = conn
        .prepare_cached("INSERT OR IGNORE INTO tags(conversation_id, tag) VALUES (?1, ?2)")?
        .execute((conv, &tag))?;
    if changed > 0 {
        events::append(
            conn,
            at,
            actor,
            EventKind::TagAdded,
            refs(conv, contact),
            Some(&serde_json::json!({ "tag": tag })),
        )?;
    }
    Ok(changed > 0)
}

/// [`Store::set_vip`] inside the caller's transaction.
pub(crate) fn set_vip(
    conn: &Connection,
    contact: ContactId,
    vip: bool,
    actor: &str,
    at: Millis,
) -> Result<()> {
    conn.prepare_cached("UPDATE contacts SET vip = ?2 WHERE id = ?1")?
        .execute((contact, vip))?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ContactUpdated,
        EventRefs {
            contact: Some(contact),
            ..Default::default()
        },
        Some(&serde_json::json!({ "vip": vip })),
    )?;
    Ok(())
}

/// FTS5's default pending-terms budget (bytes) before it flushes a segment.
const FTS_DEFAULT_HASHSIZE: i64 = 1024 * 1024;
/// During a bulk load: flush far less often, so the index is written in few large segments.
const FTS_BULK_HASHSIZE: i64 = 256 * 1024 * 1024;

impl Store {
    /// True if the store holds no contact and no message (a fresh file).
    pub(crate) fn is_empty(&self) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM contacts) AND NOT EXISTS (SELECT 1 FROM messages)",
            [],
            |r| r.get(0),
        )?)
    }

    /// Settings for a large load on this connection: no fsync per commit (a crash mid-load
    /// leaves a half-built workspace to throw away, never a corrupt one: WAL still protects
    /// the file), a big page cache, and FTS5 flushing in large segments. Undo with
    /// [`Store::end_bulk_load`].
    pub(crate) fn begin_bulk_load(&mut self) -> Result<()> {
        self.conn().execute_batch(
            "PRAGMA synchronous=OFF;
             PRAGMA cache_size=-262144;
             PRAGMA wal_autocheckpoint=100000;",
        )?;
        self.conn().execute(
            "INSERT INTO messages_fts(messages_fts, rank) VALUES ('hashsize', ?1)",
            [FTS_BULK_HASHSIZE],
        )?;
        Ok(())
    }

    /// Back to the normal settings; merge the full-text index and checkpoint the WAL into the
    /// main file, so the next process starts on a compact store.
    pub(crate) fn end_bulk_load(&mut self) -> Result<()> {
        self.conn().execute(
            "INSERT INTO messages_fts(messages_fts, rank) VALUES ('hashsize', ?1)",
            [FTS_DEFAULT_HASHSIZE],
        )?;
        self.conn().execute_batch(
            "PRAGMA synchronous=NORMAL;
             PRAGMA cache_size=-16000;
             PRAGMA wal_autocheckpoint=1000;
             PRAGMA optimize;",
        )?;
        if self.path().is_some() {
            let _: (i64, i64, i64) =
                self.conn()
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
        }
        Ok(())
    }
}
