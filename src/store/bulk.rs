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
use rusqlite::config::DbConfig;

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

/// Insert an agent's reply (delivery `sent`) or note, with its event. As with
/// [`Store::queue_reply`], the conversation's status is left alone.
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
            from_identity: None,
        },
    )?;
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

/// A contact as a history load keeps it in memory until [`insert_contact`].
#[derive(Debug, Clone)]
pub(crate) struct ContactRecord {
    pub id: ContactId,
    pub name: String,
    pub vip: bool,
    pub created_at: Millis,
    pub last_seen: Millis,
    pub last_channel: Option<Channel>,
}

/// A conversation as a history load keeps it in memory until [`insert_conversation`].
#[derive(Debug, Clone)]
pub(crate) struct ConversationRecord {
    pub id: ConversationId,
    pub contact: ContactId,
    pub status: Status,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub subject: Option<String>,
    /// Comma list in first-use order, as `conversations.channels`.
    pub channels: String,
    pub last_channel: Channel,
    pub last_activity: Millis,
    pub last_preview: String,
    pub last_direction: Direction,
    pub message_count: i64,
    pub created_at: Millis,
    pub resolved_at: Option<Millis>,
    pub snoozed_until: Option<Millis>,
    pub team: Option<String>,
}

/// The next free ids of contacts and conversations (a history load allocates them itself).
pub(crate) fn next_ids(conn: &Connection) -> Result<(ContactId, ConversationId)> {
    Ok(conn.query_row(
        "SELECT (SELECT coalesce(max(id), 0) + 1 FROM contacts),
                (SELECT coalesce(max(id), 0) + 1 FROM conversations)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Write a contact row whole. In a history load rows that reference it (identities, messages)
/// may come first: foreign keys are off during a bulk load (see [`Store::begin_bulk_load`]).
pub(crate) fn insert_contact(conn: &Connection, c: &ContactRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO contacts(id, name, vip, created_at, last_seen, last_channel)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        c.id,
        &c.name,
        c.vip,
        c.created_at,
        c.last_seen,
        c.last_channel,
    ))?;
    Ok(())
}

/// Write a conversation row whole, summary columns included (see [`insert_contact`]).
pub(crate) fn insert_conversation(conn: &Connection, c: &ConversationRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO conversations(id, contact_id, status, priority, assignee, subject, channels,
            last_channel, last_activity, last_preview, last_direction, message_count, created_at,
            resolved_at, snoozed_until, team)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(rusqlite::params![
        c.id,
        c.contact,
        c.status,
        c.priority,
        c.assignee,
        c.subject,
        c.channels,
        c.last_channel,
        c.last_activity,
        c.last_preview,
        c.last_direction,
        c.message_count,
        c.created_at,
        c.resolved_at,
        c.snoozed_until,
        c.team,
    ])?;
    Ok(())
}

/// Insert a message row alone; the caller keeps its conversation's summary.
pub(crate) fn insert_message_row(conn: &Connection, m: &NewMessage<'_>) -> Result<MessageId> {
    conn.prepare_cached(
        "INSERT INTO messages(conversation_id, contact_id, channel, account, external_id,
            direction, author, subject, body, created_at, stored_at, delivery, meta, sender)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(rusqlite::params![
        m.conversation,
        m.contact,
        m.channel,
        m.account,
        m.external_id,
        m.direction,
        m.author,
        m.subject,
        m.body,
        m.created_at,
        m.stored_at,
        m.delivery,
        m.meta,
        m.sender_words(),
    ])?;
    Ok(MessageId(conn.last_insert_rowid()))
}

/// Tag a conversation without an event (a history load records one `imported` event instead).
pub(crate) fn insert_tag(conn: &Connection, conv: ConversationId, tag: &str) -> Result<bool> {
    let tag = super::conversations::normalize_tag(tag)?;
    Ok(conn
        .prepare_cached("INSERT OR IGNORE INTO tags(conversation_id, tag) VALUES (?1, ?2)")?
        .execute((conv, &tag))?
        > 0)
}

/// The one event of a history load: what was imported, by whom. The conversations' clocks
/// (`waiting_since`, `last_reply_at`: rows written whole leave them empty) are set from their
/// messages first, as the v11 migration does for an existing store.
pub(crate) fn imported(
    conn: &Connection,
    at: Millis,
    actor: &str,
    data: &serde_json::Value,
) -> Result<()> {
    // sla: the conversations' clocks, as insert_message keeps them one message at a time
    // (the bulk rows are written whole): our last human reply, the oldest customer message
    // after it. The triage order and SLA deadlines read them.
    conn.execute_batch(
        "UPDATE conversations SET last_reply_at = (
             SELECT max(m.created_at) FROM messages m
             WHERE m.conversation_id = conversations.id AND m.direction = 'out'
               AND m.author NOT LIKE 'rule:%');
         UPDATE conversations SET waiting_since = (
             SELECT min(m.created_at) FROM messages m
             WHERE m.conversation_id = conversations.id AND m.direction = 'in'
               AND m.created_at >= coalesce(conversations.last_reply_at, -1)
               AND (conversations.last_reply_at IS NULL OR m.id > (
                   SELECT max(o.id) FROM messages o
                   WHERE o.conversation_id = conversations.id AND o.direction = 'out'
                     AND o.author NOT LIKE 'rule:%')));",
    )?;
    events::append(
        conn,
        at,
        actor,
        EventKind::Imported,
        EventRefs::default(),
        Some(data),
    )?;
    Ok(())
}

/// How many conversations the store holds.
pub(crate) fn count_conversations(conn: &Connection) -> Result<usize> {
    let n: i64 = conn.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))?;
    Ok(n as usize)
}

/// Rows whose foreign keys point nowhere (`PRAGMA foreign_key_check`): 0 after a sound load.
#[cfg(test)]
pub(crate) fn foreign_key_violations(conn: &Connection) -> Result<usize> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// FTS5's default pending-terms budget (bytes) before it flushes a segment.
const FTS_DEFAULT_HASHSIZE: i64 = 1024 * 1024;
/// While rebuilding after a bulk load: flush rarely, so the index is written in few large
/// segments.
const FTS_BULK_HASHSIZE: i64 = 128 * 1024 * 1024;

/// The full-text triggers a bulk load suspends: (name, CREATE statement).
pub(crate) struct SuspendedFts(Vec<(String, String)>);

/// Drop the triggers that keep the full-text tables in step with `messages` and `contacts`,
/// inside the caller's transaction; [`resume_fts`] rebuilds both indexes and puts the triggers
/// back, in the same transaction. Row by row, every insert with a trigger opens a statement
/// savepoint, and FTS5 flushes its pending terms to disk at every savepoint: a bulk load would
/// write one tiny index segment per message and spend its time merging them.
pub(crate) fn suspend_fts(conn: &Connection) -> Result<SuspendedFts> {
    let triggers: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'
               AND tbl_name IN ('messages', 'contacts') AND name LIKE '%\\_fts\\_%' ESCAPE '\\'
             ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (name, _) in &triggers {
        conn.execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))?;
    }
    Ok(SuspendedFts(triggers))
}

/// Rebuild the full-text indexes from their tables and restore the triggers (see
/// [`suspend_fts`]). `messages`: rebuild `messages_fts` too (not when an [`FtsBuilder`] made
/// it).
pub(crate) fn resume_fts(conn: &Connection, suspended: SuspendedFts, messages: bool) -> Result<()> {
    let tables: &[&str] = if messages {
        &["messages_fts", "contacts_fts"]
    } else {
        &["contacts_fts"]
    };
    for table in tables {
        conn.execute(
            &format!("INSERT INTO {table}({table}, rank) VALUES ('hashsize', ?1)"),
            [FTS_BULK_HASHSIZE],
        )?;
        conn.execute_batch(&format!("INSERT INTO {table}({table}) VALUES ('rebuild')"))?;
        conn.execute(
            &format!("INSERT INTO {table}({table}, rank) VALUES ('hashsize', ?1)"),
            [FTS_DEFAULT_HASHSIZE],
        )?;
    }
    for (_, sql) in &suspended.0 {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

/// One message for the [`FtsBuilder`].
struct FtsDoc {
    id: i64,
    subject: Option<String>,
    body: String,
    sender: Option<String>,
}

const FTS_BATCH: usize = 2048;
/// The schema name the builder's file is attached under while its index is copied.
const FTS_SCHEMA: &str = "braid_fts_build";

/// Builds `messages_fts` on another thread while a history load inserts the messages, in a
/// private temporary database with the same FTS5 definition; [`FtsBuilder::install`] then puts
/// that index in place of the (empty) one of the store, inside the load's transaction. On a
/// two-core machine this takes the tokenizing (a fifth of a large load) off the writer.
///
/// Only for a load into an empty `messages` table, with the FTS triggers suspended.
pub(crate) struct FtsBuilder {
    sender: Option<std::sync::mpsc::SyncSender<Vec<FtsDoc>>>,
    batch: Vec<FtsDoc>,
    worker: Option<std::thread::JoinHandle<Result<()>>>,
    file: TempDb,
    create_sql: String,
}

/// A temporary database file, removed (with its journal) on drop.
struct TempDb(std::path::PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut journal = self.0.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
}

impl FtsBuilder {
    pub(crate) fn start(conn: &Connection) -> Result<FtsBuilder> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let create_sql: String = conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'",
            [],
            |r| r.get(0),
        )?;
        let file = TempDb(std::env::temp_dir().join(format!(
            "braid-fts-{}-{}.sqlite3",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )));
        let _ = std::fs::remove_file(&file.0);
        let path = file.0.clone();
        let sql = create_sql.clone();
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<FtsDoc>>(32);
        let worker = std::thread::Builder::new()
            .name("braid-fts-build".into())
            .spawn(move || -> Result<()> {
                let db = Connection::open(&path)?;
                let _: String = db.query_row("PRAGMA journal_mode=OFF", [], |r| r.get(0))?;
                db.execute_batch(&format!(
                    "PRAGMA synchronous=OFF;
                     PRAGMA cache_size=-65536;
                     {sql};
                     BEGIN;"
                ))?;
                db.execute(
                    "INSERT INTO messages_fts(messages_fts, rank) VALUES ('hashsize', ?1)",
                    [FTS_BULK_HASHSIZE],
                )?;
                {
                    let mut insert = db.prepare(
                        "INSERT INTO messages_fts(rowid, subject, body, sender)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    for batch in receiver {
                        for d in batch {
                            insert.execute((d.id, d.subject, d.body, d.sender))?;
                        }
                    }
                }
                // One segment, at the top level. Left as flushed (big segments on level 0),
                // the store's first dozen writes fill level 0 up to FTS5's crisis merge, and
                // one agent's reply then waits while the whole index is merged (4.5 s after a
                // 1,000,000-message build). Here, on the builder's thread, it costs nobody.
                db.execute(
                    "INSERT INTO messages_fts(messages_fts) VALUES ('optimize')",
                    [],
                )?;
                db.execute_batch("COMMIT")?;
                Ok(())
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the index builder: {e}")))?;
        Ok(FtsBuilder {
            sender: Some(sender),
            batch: Vec::with_capacity(FTS_BATCH),
            worker: Some(worker),
            file,
            create_sql,
        })
    }

    /// Index one message (ids as the store gave them, in insertion order).
    pub(crate) fn add(
        &mut self,
        id: MessageId,
        subject: Option<&str>,
        body: &str,
        sender: Option<&str>,
    ) -> Result<()> {
        self.batch.push(FtsDoc {
            id: id.0,
            subject: subject.map(str::to_string),
            body: body.to_string(),
            sender: sender.map(str::to_string),
        });
        if self.batch.len() >= FTS_BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(FTS_BATCH));
        let sent = self.sender.as_ref().map(|s| s.send(batch));
        if !matches!(sent, Some(Ok(()))) {
            // The builder stopped: its error says why.
            self.join()?;
            return Err(StoreError::Invalid("the index builder stopped".into()));
        }
        Ok(())
    }

    fn join(&mut self) -> Result<()> {
        self.sender = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(StoreError::Invalid("the index builder panicked".into())),
            None => Ok(()),
        }
    }

    /// Wait for the builder, then replace the store's `messages_fts` with the built index
    /// (inside the caller's transaction). Call [`Installed::detach`] after the commit.
    pub(crate) fn install(mut self, conn: &Connection) -> Result<Installed> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.join()?;
        conn.execute(
            &format!("ATTACH DATABASE ?1 AS {FTS_SCHEMA}"),
            [self.file.0.to_string_lossy()],
        )?;
        let installed = Installed {
            file: TempDb(std::mem::take(&mut self.file.0)),
        };
        let shadow: Vec<String> = {
            let mut stmt = conn.prepare(&format!(
                "SELECT name FROM {FTS_SCHEMA}.sqlite_master WHERE type = 'table'
                   AND name LIKE 'messages\\_fts\\_%' ESCAPE '\\' AND name <> 'messages_fts_config'"
            ))?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // A fresh virtual table: nothing cached from before the copy. (Its own config row
        // stays: the builder's holds its big flush budget.)
        conn.execute_batch(&format!(
            "DROP TABLE main.messages_fts; {};",
            self.create_sql
        ))?;
        for t in shadow {
            conn.execute_batch(&format!(
                "DELETE FROM main.\"{t}\"; INSERT INTO main.\"{t}\" SELECT * FROM {FTS_SCHEMA}.\"{t}\";"
            ))?;
        }
        Ok(installed)
    }
}

impl Drop for FtsBuilder {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The builder's file, attached to the store's connection until the load commits.
pub(crate) struct Installed {
    file: TempDb,
}

impl Installed {
    /// Detach (after the commit or the rollback) and delete the builder's file.
    pub(crate) fn detach(self, conn: &Connection) -> Result<()> {
        conn.execute_batch(&format!("DETACH DATABASE {FTS_SCHEMA}"))?;
        drop(self.file);
        Ok(())
    }
}

/// Connection settings saved by [`Store::begin_bulk_load`].
#[must_use]
pub(crate) struct BulkLoad {
    qpsg: bool,
    foreign_keys: i64,
    synchronous: i64,
    cache_size: i64,
    busy_timeout: i64,
    journal_mode: String,
}

impl Store {
    /// [`foreign_key_violations`] of this store.
    #[cfg(test)]
    pub(crate) fn foreign_key_violations(&self) -> Result<usize> {
        foreign_key_violations(self.conn())
    }

    /// FTS5's own consistency check of every full-text index against their tables.
    #[cfg(test)]
    pub(crate) fn fts_integrity_check(&self) -> Result<()> {
        self.conn().execute_batch(
            "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1);
             INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1);",
        )?;
        Ok(())
    }

    /// The lowest and highest id of the contacts that are not merged away (to pick one at
    /// random with [`Store::contacts_page`]).
    pub(crate) fn contact_id_span(&self) -> Result<Option<(ContactId, ContactId)>> {
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn().query_row(
            "SELECT min(id), max(id) FROM contacts WHERE merged_into IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(lo.zip(hi).map(|(lo, hi)| (ContactId(lo), ContactId(hi))))
    }

    /// True if the store holds no contact and no message (a fresh file).
    pub(crate) fn is_empty(&self) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM contacts) AND NOT EXISTS (SELECT 1 FROM messages)",
            [],
            |r| r.get(0),
        )?)
    }

    /// Settings for a large load on this connection, in one transaction (all of it or
    /// nothing): no fsync; a rollback journal instead of the WAL when no other connection has
    /// the file open (the store starts empty, so the journal holds next to nothing and every
    /// page is written once, instead of once to the WAL and again at the checkpoint); foreign
    /// keys unchecked (a history load writes contacts and conversations after the rows that
    /// reference them; `foreign_key_violations` checks the result in tests); a page cache big
    /// enough for the hot part of the indexes. [`Store::end_bulk_load`] restores everything.
    pub(crate) fn begin_bulk_load(&mut self) -> Result<BulkLoad> {
        let conn = self.conn();
        let int = |pragma: &str| -> Result<i64> {
            Ok(conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))?)
        };
        let saved = BulkLoad {
            qpsg: conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)?,
            foreign_keys: int("foreign_keys")?,
            synchronous: int("synchronous")?,
            cache_size: int("cache_size")?,
            busy_timeout: int("busy_timeout")?,
            journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        };
        // With SQLite >= 3.47 a statement whose WHERE has `col = ?` is marked "re-plan when
        // rebound", and rusqlite's statement cache clears the bindings of every statement it
        // takes back, which expires it: each cached statement would be compiled again on every
        // use. The query planner stability guarantee turns that re-planning off.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.execute_batch(
            "PRAGMA synchronous=OFF;
             PRAGMA foreign_keys=OFF;
             PRAGMA cache_size=-262144;",
        )?;
        if saved.journal_mode.eq_ignore_ascii_case("wal") {
            // Leaving WAL needs the file to ourselves: try once, without waiting.
            conn.execute_batch("PRAGMA busy_timeout=0")?;
            let switched: rusqlite::Result<String> =
                conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0));
            conn.execute_batch(&format!("PRAGMA busy_timeout={}", saved.busy_timeout))?;
            if let Err(e) = switched {
                tracing::debug!("bulk load stays in WAL mode: {e}");
            }
        }
        Ok(saved)
    }

    /// Restore the settings [`Store::begin_bulk_load`] changed, and leave the file compact.
    pub(crate) fn end_bulk_load(&mut self, load: BulkLoad) -> Result<()> {
        let conn = self.conn();
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, load.qpsg)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous={};
             PRAGMA cache_size={};
             PRAGMA foreign_keys={};
             PRAGMA optimize;",
            load.synchronous, load.cache_size, load.foreign_keys
        ))?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case(&load.journal_mode) {
            let _: String = conn.query_row(
                &format!("PRAGMA journal_mode={}", load.journal_mode),
                [],
                |r| r.get(0),
            )?;
        } else if mode.eq_ignore_ascii_case("wal") {
            let _: (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        }
        Ok(())
    }
}
