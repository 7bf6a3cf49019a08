//! GDPR requests about one person: everything held about them (a subject access request,
//! [`Store::contact_export`]) and erasure ([`Store::forget_contact`]).
//!
//! A person is the contact and every contact merged into it. Erasure keeps the rows (ids,
//! times, channels, directions, statuses) so the reports' counts stay what they were
//! (`report_facts` / `report_daily*` are not touched: they hold no personal data), and blanks
//! every personal value: names, identity values (the identities themselves are deleted),
//! message texts, subjects, senders and channel data (attachment metadata: braid keeps no
//! attachment files, they stay with the mail server / Telegram), drafts, task titles, survey
//! comments, notifications' excerpts, merge before-images, consent identifiers, and the data
//! of the events about them. One `contact_forgotten` event remains: who and when.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError};
use crate::model::{ContactId, Millis};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

/// The contact and those merged into it, as a temp CTE `fam(id)`; `convs(id)`: their
/// conversations; `msgs(id)`: their messages.
const SCOPE: &str = "WITH RECURSIVE fam(id) AS (
        SELECT ?1 UNION SELECT c.id FROM contacts c JOIN fam ON c.merged_into = fam.id),
    convs(id) AS (SELECT id FROM conversations WHERE contact_id IN (SELECT id FROM fam)),
    msgs(id) AS (SELECT id FROM messages WHERE contact_id IN (SELECT id FROM fam)
                 OR conversation_id IN (SELECT id FROM convs))";

/// Each table that can hold something about a person, and which of its rows do.
pub(crate) const EXPORT: &[(&str, &str)] = &[
    ("contacts", "id IN (SELECT id FROM fam)"),
    ("identities", "contact_id IN (SELECT id FROM fam)"),
    ("identity_claims", "contact_id IN (SELECT id FROM fam)"),
    ("conversations", "id IN (SELECT id FROM convs)"),
    ("messages", "id IN (SELECT id FROM msgs)"),
    ("tags", "conversation_id IN (SELECT id FROM convs)"),
    ("drafts", "conversation_id IN (SELECT id FROM convs)"),
    ("outbox", "message_id IN (SELECT id FROM msgs)"),
    (
        "tasks",
        "contact_id IN (SELECT id FROM fam) OR conversation_id IN (SELECT id FROM convs)",
    ),
    ("csat", "conversation_id IN (SELECT id FROM convs)"),
    (
        "notifications",
        "conversation_id IN (SELECT id FROM convs) OR message_id IN (SELECT id FROM msgs)",
    ),
    (
        "events",
        "contact_id IN (SELECT id FROM fam) OR conversation_id IN (SELECT id FROM convs)
         OR message_id IN (SELECT id FROM msgs)",
    ),
    (
        "consent",
        "(kind, value) IN (SELECT kind, value FROM identities
                           WHERE contact_id IN (SELECT id FROM fam))",
    ),
    ("contact_consent", "contact_id IN (SELECT id FROM fam)"),
    ("consent_history", "contact_id IN (SELECT id FROM fam)"),
    ("rule_fired", "conversation_id IN (SELECT id FROM convs)"),
    ("report_facts", "conversation_id IN (SELECT id FROM convs)"),
    (
        "merges",
        "(kind = 'contacts' AND (target IN (SELECT id FROM fam) OR other IN (SELECT id FROM fam)))
         OR (kind <> 'contacts' AND (target IN (SELECT id FROM convs)
                                    OR other IN (SELECT id FROM convs)))",
    ),
    (
        "duplicate_dismissals",
        "a IN (SELECT id FROM fam) OR b IN (SELECT id FROM fam)",
    ),
    ("contact_fields", "contact_id IN (SELECT id FROM fam)"),
    ("campaign_enrolments", "contact_id IN (SELECT id FROM fam)"),
    ("campaign_sends", "contact_id IN (SELECT id FROM fam)"),
];

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

/// The rows of `table` matching `cond` for the person, as JSON objects (column: value).
fn rows(conn: &Connection, contact: ContactId, table: &str, cond: &str) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare(&format!("{SCOPE} SELECT * FROM {table} WHERE {cond}"))?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let mut q = stmt.query([contact])?;
    while let Some(r) = q.next()? {
        let mut m = Map::new();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.clone(), value(r.get_ref(i)?));
        }
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn exists(conn: &Connection, contact: ContactId) -> Result<()> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM contacts WHERE id = ?1",
        [contact],
        |r| r.get(0),
    )?;
    if n == 0 {
        return Err(StoreError::Invalid(format!(
            "no contact #{contact}: `braid contacts` lists them"
        )));
    }
    Ok(())
}

impl Store {
    /// Everything held about the person (the contact and every contact merged into it): one
    /// key per table, its rows with every column (a subject access request).
    pub fn contact_export(&self, contact: ContactId, now: Millis) -> Result<Value> {
        let conn = self.conn();
        exists(conn, contact)?;
        let mut tables = Map::new();
        for (table, cond) in EXPORT {
            tables.insert(
                (*table).to_string(),
                Value::Array(rows(conn, contact, table, cond)?),
            );
        }
        Ok(serde_json::json!({
            "contact": contact,
            "exported_at": now,
            "consent": super::consent::contact_consent(conn, contact)?,
            "tables": tables,
        }))
    }

    /// Erase the person (see the module): what identifies them is gone, the anonymous rows
    /// stay for the reports; one `contact_forgotten` event says who did it and when. The
    /// number of messages blanked.
    pub fn forget_contact(&mut self, contact: ContactId, actor: &str, at: Millis) -> Result<i64> {
        self.write_with(|tx| {
            exists(tx, contact)?;
            let messages: i64 = tx.query_row(
                &format!("{SCOPE} SELECT count(*) FROM msgs"),
                [contact],
                |r| r.get(0),
            )?;
            let forgotten = r#"{"forgotten":true}"#;
            let run = |sql: &str| -> Result<()> {
                tx.execute(&format!("{SCOPE} {sql}"), [contact])?;
                Ok(())
            };
            // Events first: their rows are found through the contact's conversations.
            run(&format!(
                "UPDATE events SET data = '{forgotten}' WHERE data IS NOT NULL AND ({})",
                EXPORT
                    .iter()
                    .find(|(t, _)| *t == "events")
                    .map(|(_, c)| *c)
                    .unwrap_or("0")
            ))?;
            run(
                "DELETE FROM consent WHERE (kind, value) IN (SELECT kind, value FROM identities
                   WHERE contact_id IN (SELECT id FROM fam))",
            )?;
            run("UPDATE consent_history SET value = NULL, detail = ''
                 WHERE contact_id IN (SELECT id FROM fam)")?;
            run("UPDATE messages SET identity_id = NULL WHERE id IN (SELECT id FROM msgs)")?;
            run("DELETE FROM identities WHERE contact_id IN (SELECT id FROM fam)")?;
            run("DELETE FROM identity_claims WHERE contact_id IN (SELECT id FROM fam)")?;
            run("UPDATE contacts SET name = 'Forgotten #' || id WHERE id IN (SELECT id FROM fam)")?;
            run(
                "UPDATE messages SET body = '', subject = NULL, sender = NULL, meta = NULL,
                    author = CASE WHEN direction = 'in' THEN 'forgotten' ELSE author END
                 WHERE id IN (SELECT id FROM msgs)",
            )?;
            run("UPDATE outbox SET recipient = '' WHERE message_id IN (SELECT id FROM msgs)")?;
            run("UPDATE conversations SET subject = NULL, last_preview = ''
                 WHERE id IN (SELECT id FROM convs)")?;
            run("DELETE FROM drafts WHERE conversation_id IN (SELECT id FROM convs)")?;
            run("UPDATE tasks SET title = 'forgotten'
                 WHERE contact_id IN (SELECT id FROM fam)
                    OR conversation_id IN (SELECT id FROM convs)")?;
            run("UPDATE csat SET comment = NULL WHERE conversation_id IN (SELECT id FROM convs)")?;
            run(
                "UPDATE notifications SET contact_name = 'forgotten', excerpt = ''
                 WHERE conversation_id IN (SELECT id FROM convs)
                    OR message_id IN (SELECT id FROM msgs)",
            )?;
            run("DELETE FROM contact_fields WHERE contact_id IN (SELECT id FROM fam)")?;
            run(
                "UPDATE campaign_sends SET recipient = '' WHERE contact_id IN (SELECT id FROM fam)",
            )?;
            super::webhooks::forget_contact(tx, contact.0)?;
            run(&format!(
                "UPDATE merges SET data = '{forgotten}' WHERE {}",
                EXPORT
                    .iter()
                    .find(|(t, _)| *t == "merges")
                    .map(|(_, c)| *c)
                    .unwrap_or("0")
            ))?;
            events::append(
                tx,
                at,
                actor,
                EventKind::ContactForgotten,
                EventRefs {
                    contact: Some(contact),
                    ..Default::default()
                },
                Some(&serde_json::json!({ "messages": messages })),
            )?;
            Ok(messages)
        })
    }
}
