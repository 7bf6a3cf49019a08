//! The only code that speaks SQL.
//!
//! One [`Store`] wraps one SQLite connection. Every process (each agent's TUI, `braid serve`, the
//! CLI) opens its own; the file is the single source of truth and the bus between them: WAL mode,
//! a busy timeout, and every write transaction `BEGIN IMMEDIATE` so concurrent writers queue on
//! the lock instead of failing a deferred upgrade with SQLITE_BUSY.

pub mod audit;
pub(crate) mod bulk;
pub mod campaign;
pub mod claims;
pub mod consent;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub mod csat;
mod derivations;
pub mod duplicates;
pub(crate) mod email;
pub(crate) mod events;
pub(crate) mod fields;
pub mod gdpr;
pub mod hooks;
pub mod merges;
#[cfg(test)]
mod merges_tests;
pub(crate) mod messages;
pub mod notifications;
mod outbox;
pub mod reports;
pub mod rules;
pub mod schema;
mod scope;
mod search;
pub mod sla;
mod sqlmap;
pub mod tasks;
mod tx;
mod undo;
#[cfg(test)]
mod undo_tests;
pub mod webhooks;

pub use audit::{AuditFilter, AuditPage, AuditPosition};
pub use campaign::{CampaignFailure, CampaignStatus, DryRun, Exclusion};
pub use claims::ClaimRow;
pub use contacts::{ContactProfile, ContactRow, IdentityRow, MergePreview, MergeSide};
pub use conversations::{
    Counts, OwnerCheck, QueueAnchor, QueueCursor, QueueFilter, QueueOrder, QueueRow, normalize_tag,
};
pub use csat::{CsatOutcome, CsatPass, CsatRow};
pub use duplicates::{DuplicatePair, DuplicateReason};
pub use email::EmailThreadRefs;
pub use events::{Change, EventKind, EventRefs, EventRow};
pub use fields::{FieldChange, FieldValue, Pipeline, PipelineRow, ProfileField};
pub use merges::{MergeKind, MergePlan, MergeRow, Unmerged};
pub use messages::{AttachmentSource, MessageRow, TimelineCursor, is_automated};
pub use notifications::{
    Derived, NotificationKind, NotificationPage, NotificationRow, NotifyAgent,
};
pub use outbox::OutboxItem;
pub use reports::ReportScope;
pub use rules::{Applied, OtherOp, RuleApply, RuleOp};
pub use scope::Scope;
pub use search::{ConversationHits, SearchHit, SearchQuery};
pub use tasks::{NewTask, TaskAt, TaskCursor, TaskEnd, TaskRow, TaskWindow};
pub use tx::Tx;
pub use undo::{UndoRefusal, UndoReport};

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

/// Errors from the store. Messages are meant for the status line: short and specific.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The driver's message already says its cause: it is not repeated as a source (printed
    /// with its causes, the message said "file is not a database" three times).
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("cannot create data directory {path}: {error}")]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot create or open the store file {path}: {error}")]
    CreateFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the store {path} has schema version {found}, newer than this braid understands ({supported}); upgrade braid"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("no conversation #{0}")]
    NoConversation(i64),
    #[error("no contact #{0}")]
    NoContact(i64),
    #[error("no message #{0}")]
    NoMessage(i64),
    #[error("{0}")]
    Invalid(String),
    /// A guarded write (see [`Store::add_note_guarded`]) found changes its author had not
    /// seen: nothing was written.
    #[error("the conversation changed since you looked ({} change(s)); nothing was sent", .0.len())]
    Stale(Vec<Change>),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The file name of the store inside a data directory.
pub const DB_FILE: &str = "braid.sqlite3";

pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// What this connection's reads and writes may touch (see [`Scope`]).
    scope: Scope,
    /// The workspace's contact fields and stages (see [`Store::set_fields_config`]).
    fields: std::sync::Arc<crate::fields::FieldsConfig>,
}

impl Store {
    /// Open (creating if needed) the store in `data_dir`, migrating it to the current schema.
    pub fn open_dir(data_dir: &Path) -> Result<Store> {
        crate::private::create_dir(data_dir).map_err(|error| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            error,
        })?;
        Store::open(&data_dir.join(DB_FILE))
    }

    /// Open (creating if needed) a store file, migrating it to the current schema.
    pub fn open(path: &Path) -> Result<Store> {
        // The store is created 0600 before SQLite opens it (SQLite gives the -wal and -shm the
        // database's mode); an existing one readable by others is tightened, and its -wal/-shm.
        if !path.as_os_str().to_string_lossy().starts_with("file:") {
            crate::private::touch_file(path).map_err(|error| StoreError::CreateFile {
                path: path.to_path_buf(),
                error,
            })?;
            for ext in ["-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(ext);
                crate::private::tighten_if_exists(Path::new(&side), 0o600);
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        let mut store = Store {
            conn,
            path: Some(path.to_path_buf()),
            scope: Scope::default(),
            fields: Default::default(),
        };
        store.configure(true)?;
        store.migrate()?;
        Ok(store)
    }

    /// A private in-memory store (tests, benchmarks).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: None,
            scope: Scope::default(),
            fields: Default::default(),
        };
        store.configure(false)?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&mut self, file: bool) -> Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        if file {
            // Switching a new file to WAL takes an exclusive lock, and SQLite answers BUSY at
            // once (no busy handler) when another process opens the same new file at the same
            // moment: retry for as long as the busy timeout would have waited.
            let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
            loop {
                // journal_mode returns a row; query it rather than execute.
                match self
                    .conn
                    .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
                {
                    Ok(_) => break,
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::DatabaseBusy
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.conn.execute_batch(
            "PRAGMA synchronous=NORMAL;
             PRAGMA foreign_keys=ON;
             PRAGMA temp_store=MEMORY;
             PRAGMA cache_size=-16000;",
        )?;
        // Query-planner stability: without it, a cached statement with `col = ?` is planned
        // again on every call once its bindings are cleared (measured: 16% of ingest time).
        self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        self.conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        // The common case, a file already at this version, is a plain read: no write lock.
        // Every CLI command and TUI connection opens the store, and taking BEGIN IMMEDIATE
        // here made each of them queue behind any writer (an import or sync batch) for
        // nothing. Only an upgrade takes the write lock, and checks the version again under it.
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == schema::CURRENT_VERSION {
            return Ok(());
        }
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > schema::CURRENT_VERSION {
                return Err(StoreError::TooNew {
                    path: self.path.clone().unwrap_or_default(),
                    found: version,
                    supported: schema::CURRENT_VERSION,
                });
            }
            if version == schema::CURRENT_VERSION {
                return Ok(());
            }
            if version == 4 {
                // V5 recomputes `messages.sender` with the code that writes it.
                tx.create_scalar_function(
                    "braid_sender_index",
                    1,
                    FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
                    |ctx| Ok(search::sender_index(&ctx.get::<String>(0)?)),
                )?;
            }
            tx.execute_batch(schema::MIGRATIONS[version as usize])?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Run `f` inside one IMMEDIATE transaction and commit it (the store's own verbs; other
    /// modules take a [`Tx`] from [`Store::write`]). Inside [`Store::batch`] it runs in a
    /// savepoint of the batch's transaction instead: its work commits with the batch, and its
    /// failure undoes only its own work.
    pub(crate) fn write_with<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            let sp = self.conn.savepoint()?;
            // Dropped on an error: rolled back to where it began.
            let out = f(&sp)?;
            sp.commit()?;
            return Ok(out);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Run `f` with the store's verbs (assign, set_status, tag, ...) inside ONE IMMEDIATE
    /// transaction: a bulk change (`V` + verb, `:g//`) commits once, and each verb runs in a
    /// savepoint, so one conversation's failure (not in the agent's teams, an invariant)
    /// leaves the others' changes in. An error returned by `f` rolls everything back.
    pub fn batch<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if !self.conn.is_autocommit() {
            return Err(StoreError::Invalid(
                "a batch cannot start inside another transaction".into(),
            )
            .into());
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        // Every event the batch writes names it (`data.batch`: the first id it can have), so
        // one `u` undoes the batch as one change.
        let first = self.last_event_id().map(|e| e.0 + 1);
        let first = match first {
            Ok(f) => f,
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        };
        let marking = events::BatchMark::start(first);
        let out = f(self);
        drop(marking);
        match out {
            Ok(v) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(StoreError::from(e).into());
                }
                Ok(v)
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    // Best effort: the batch's error is the one to report.
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// Bring the planner's statistics up to date where a table has grown or shrunk a lot
    /// since they were taken (`PRAGMA optimize` with a bounded `analysis_limit`: cheap when
    /// nothing changed, a fraction of a second on a million rows when it did). A bulk load
    /// takes them while the events table is nearly empty; months of team work later, the
    /// stale figures made the planner read the change feed's "events after N" through the
    /// whole `events_at` index and sort it (215 ms per push at a million events). The server
    /// runs this when it starts and every hour.
    pub fn refresh_statistics(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")?;
        Ok(())
    }

    /// `PRAGMA data_version`: changes whenever ANOTHER connection commits to the file. Polling it
    /// costs no I/O beyond the WAL index, so a change watcher can run it many times a second.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// The raw connection, for the few read paths that build their own statements inside store/.
    pub(in crate::store) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// A cursor value saved by a channel (see [`set_cursor`]).
    pub fn cursor(&self, channel: &str, account: &str, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM cursors WHERE channel=?1 AND account=?2 AND key=?3",
                (channel, account, key),
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// Save a channel cursor inside the caller's transaction, so it commits with the messages it
/// delivered or not at all.
pub fn set_cursor(
    tx: &Connection,
    channel: &str,
    account: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO cursors(channel, account, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(channel, account, key) DO UPDATE SET value = excluded.value",
    )?
    .execute((channel, account, key, value))?;
    Ok(())
}

#[cfg(test)]
mod assign_tests;
#[cfg(test)]
mod audit_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod campaign_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod consent_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod gdpr_tests;
#[cfg(test)]
mod reports_tests;
#[cfg(test)]
mod scope_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sla_tests;
#[cfg(test)]
mod tests;
