//! How the domain types of [`crate::model`] are stored in SQLite: ids as integers, enums as
//! their one textual form (`as_str`, read back through `FromStr`).
//!
//! These impls live here, not next to the types, so nothing outside `store/` depends on the
//! SQLite driver (DESIGN.md, convention 9): a PostgreSQL store would bring its own mapping.

use crate::model::{
    Channel, ConsentSource, ContactId, ConversationId, Delivery, Direction, EventId, IdentityKind,
    MessageId, Priority, Purpose, Status,
};
use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

macro_rules! id_sql {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }
        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(v).map($name)
            }
        }
    )+};
}

macro_rules! text_sql {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                s.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

id_sql!(ContactId, ConversationId, MessageId, EventId);
text_sql!(
    Channel,
    Direction,
    Status,
    Priority,
    Delivery,
    IdentityKind,
    Purpose,
    ConsentSource
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn every_enum_round_trips_through_its_text_and_rejects_others() {
        let c = Connection::open_in_memory().unwrap();
        for s in Status::ALL {
            let text: String = c.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(text, s.as_str());
            let back: Status = c.query_row("SELECT ?1", [text], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
        let bad = c.query_row("SELECT 'frob'", [], |r| r.get::<_, Channel>(0));
        assert!(bad.is_err());
        let id: ContactId = c
            .query_row("SELECT ?1", [ContactId(7)], |r| r.get(0))
            .unwrap();
        assert_eq!(id, ContactId(7));
    }
}
