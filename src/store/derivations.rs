//! The `derivations` table: how far each thing the server derives from the events table
//! (notifications, SLA deadlines, tasks, rules, reports, surveys) has read it. Each derivation
//! advances its row in the same transaction as what it derived, so a crash replays nothing
//! twice and loses nothing.

use super::Result;
use crate::model::EventId;
use rusqlite::{Connection, OptionalExtension};

/// The last event `name` has derived from (None: it never ran on this store).
pub(crate) fn cursor(conn: &Connection, name: &str) -> Result<Option<EventId>> {
    Ok(conn
        .prepare_cached("SELECT last_event FROM derivations WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

/// Move `name` to `to` (inside the transaction that wrote what it derived).
pub(crate) fn set_cursor(conn: &Connection, name: &str, to: EventId) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO derivations(name, last_event) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET last_event = excluded.last_event",
    )?
    .execute((name, to))?;
    Ok(())
}
