//! Email threading queries: which conversation a Message-ID lives in, moving a reply into the
//! thread it answers, and the headers an outgoing reply needs (`In-Reply-To`, `References`).
//!
//! An email message's `meta` JSON holds `message_id` (without `<>`; null when braid had to
//! synthesize the external id), `in_reply_to` and `references` (lists, oldest reference first).
//! Our own outgoing messages should record the same keys.

use super::conversations::add_channel;
use super::events::{self, EventKind, EventRefs};
use super::messages::refresh_conversation_summary;
use super::{Result, Store};
use crate::model::{Channel, ContactId, ConversationId, MessageId, Millis, Status};
use rusqlite::{Connection, OptionalExtension};

/// How many ids an outgoing References header carries at most (the thread's first message and
/// the newest ones, as RFC 5322 section 3.6.4 suggests trimming).
pub const MAX_REFERENCES: usize = 20;

/// What an outgoing reply in a conversation needs to stay in the mail thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailThreadRefs {
    /// The Message-ID (without `<>`) of the conversation's newest email that has one: the
    /// reply's `In-Reply-To`.
    pub last_message_id: String,
    /// That message's References followed by its own id, oldest first, at most
    /// [`MAX_REFERENCES`] (the first is always kept): the reply's `References`.
    pub references: Vec<String>,
}

/// A conversation an email reply may join: the one holding a message it references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferencedThread {
    pub message: MessageId,
    pub conversation: ConversationId,
    pub contact: ContactId,
    pub status: Status,
    pub resolved_at: Option<Millis>,
}

/// The conversation of the first id in `ids` (most specific first) that is the external id of
/// an email message of `account`.
pub(crate) fn find_referenced(
    conn: &Connection,
    account: &str,
    ids: &[&str],
) -> Result<Option<ReferencedThread>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.conversation_id, c.contact_id, c.status, c.resolved_at
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.channel = ?1 AND m.account = ?2 AND m.external_id = ?3",
    )?;
    for id in ids.iter().take(50) {
        let found = stmt
            .query_row((Channel::Email, account, id), |r| {
                Ok(ReferencedThread {
                    message: r.get(0)?,
                    conversation: r.get(1)?,
                    contact: r.get(2)?,
                    status: r.get(3)?,
                    resolved_at: r.get(4)?,
                })
            })
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Move one message into another conversation (and that conversation's contact's timeline),
/// refreshing both summaries. `drop_empty_source`: delete the source conversation if the move
/// left it without messages (ingest had just created it for this message). An event on the
/// receiving contact tells every open TUI showing that timeline to refresh it (the ingest event
/// named the writer's contact).
pub(crate) fn move_message(
    conn: &Connection,
    message: MessageId,
    from: ConversationId,
    to: ConversationId,
    drop_empty_source: bool,
    at: Millis,
) -> Result<()> {
    let (contact, channels): (ContactId, String) = conn
        .prepare_cached("SELECT contact_id, channels FROM conversations WHERE id = ?1")?
        .query_row([to], |r| Ok((r.get(0)?, r.get(1)?)))?;
    conn.prepare_cached("UPDATE messages SET conversation_id = ?2, contact_id = ?3 WHERE id = ?1")?
        .execute((message, to, contact))?;
    if let Some(channels) = add_channel(&channels, Channel::Email) {
        conn.prepare_cached("UPDATE conversations SET channels = ?2 WHERE id = ?1")?
            .execute((to, channels))?;
    }
    refresh_conversation_summary(conn, to)?;
    let left: i64 = conn
        .prepare_cached("SELECT count(*) FROM messages WHERE conversation_id = ?1")?
        .query_row([from], |r| r.get(0))?;
    if left == 0 && drop_empty_source {
        for sql in [
            "DELETE FROM tags WHERE conversation_id = ?1",
            "DELETE FROM drafts WHERE conversation_id = ?1",
            "DELETE FROM conversations WHERE id = ?1",
        ] {
            conn.prepare_cached(sql)?.execute([from])?;
        }
    } else {
        refresh_conversation_summary(conn, from)?;
    }
    events::append(
        conn,
        at,
        "ingest",
        EventKind::ContactUpdated,
        EventRefs {
            conversation: Some(to),
            contact: Some(contact),
            message: Some(message),
        },
        Some(&serde_json::json!({ "email_reply_threaded_from": from })),
    )?;
    Ok(())
}

pub(crate) fn email_thread_refs(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<Option<EmailThreadRefs>> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT json_extract(meta, '$.message_id'), json_extract(meta, '$.references')
             FROM messages
             WHERE conversation_id = ?1 AND channel = 'email' AND meta IS NOT NULL
               AND json_valid(meta) AND json_type(meta, '$.message_id') = 'text'
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row([conversation], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((last, refs)) = row else {
        return Ok(None);
    };
    let mut chain: Vec<String> = refs
        .and_then(|r| serde_json::from_str::<Vec<String>>(&r).ok())
        .unwrap_or_default();
    chain.retain(|r| r != &last);
    chain.push(last.clone());
    if chain.len() > MAX_REFERENCES {
        let first = chain[0].clone();
        let tail = chain.split_off(chain.len() - (MAX_REFERENCES - 1));
        chain = std::iter::once(first).chain(tail).collect();
    }
    Ok(Some(EmailThreadRefs {
        last_message_id: last,
        references: chain,
    }))
}

impl Store {
    /// The `In-Reply-To` and `References` an email reply in `conversation` should carry: from
    /// the conversation's newest email (either direction) whose Message-ID is known. None when
    /// the conversation has no such email (the reply starts a new mail thread).
    pub fn email_thread_refs(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<EmailThreadRefs>> {
        email_thread_refs(self.conn(), conversation)
    }
}

/// A batch of ingests (an import transaction) with the per-row full-text trigger lifted: each
/// trigger firing opens a statement savepoint, and FTS5 flushes its pending terms at every one,
/// so row by row the index is written as one tiny segment per message and merged again and
/// again. Instead [`ImportBatch::finish`] indexes the batch's new messages with one statement.
/// Everything happens inside the caller's transaction: other connections never see the
/// trigger missing, and a rollback restores it.
pub(crate) struct ImportBatch {
    first_new: i64,
    trigger_sql: Option<String>,
    cache_size: i64,
}

const FTS_INSERT_TRIGGER: &str = "messages_fts_insert";
/// FTS5's default pending-terms budget, and the one for indexing an import batch.
const FTS_DEFAULT_HASHSIZE: i64 = 1024 * 1024;
const FTS_IMPORT_HASHSIZE: i64 = 64 * 1024 * 1024;
/// `PRAGMA cache_size` during an import batch (negative: KiB).
const IMPORT_CACHE_KIB: i64 = -128 * 1024;

impl ImportBatch {
    pub(crate) fn start(conn: &Connection) -> Result<ImportBatch> {
        // Statements with `col = ?` would be re-planned on every use (see bulk.rs); the query
        // planner stability guarantee keeps the cached plans. A connection setting, harmless
        // to leave on.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        // A page cache for the hot part of the indexes while the batch writes (restored by
        // `finish`; the memory is only taken as pages are read).
        let cache_size: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        conn.execute_batch(&format!("PRAGMA cache_size={IMPORT_CACHE_KIB}"))?;
        let first_new: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM messages", [], |r| {
                r.get(0)
            })?;
        let trigger_sql: Option<String> = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [FTS_INSERT_TRIGGER],
                |r| r.get(0),
            )
            .optional()?;
        if trigger_sql.is_some() {
            conn.execute_batch(&format!("DROP TRIGGER {FTS_INSERT_TRIGGER}"))?;
        }
        Ok(ImportBatch {
            first_new,
            trigger_sql,
            cache_size,
        })
    }

    /// Index the messages inserted since [`ImportBatch::start`] and put the trigger back.
    pub(crate) fn finish(self, conn: &Connection) -> Result<()> {
        if let Some(sql) = &self.trigger_sql {
            // One large in-memory run of terms instead of a flush (and a merge) per megabyte.
            let hashsize = |bytes: i64| {
                conn.execute(
                    "INSERT INTO messages_fts(messages_fts, rank) VALUES ('hashsize', ?1)",
                    [bytes],
                )
            };
            hashsize(FTS_IMPORT_HASHSIZE)?;
            conn.execute(
                "INSERT INTO messages_fts(rowid, subject, body, sender)
                 SELECT id, subject, body, sender FROM messages WHERE id >= ?1",
                [self.first_new],
            )?;
            hashsize(FTS_DEFAULT_HASHSIZE)?;
            conn.execute_batch(sql)?;
        }
        conn.execute_batch(&format!("PRAGMA cache_size={}", self.cache_size))?;
        Ok(())
    }
}

/// What an outgoing email carries, fixed before its first attempt so every attempt sends the
/// same message (and a retry can look for it in the Sent folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The account it leaves through.
    pub account: String,
    /// Our Message-ID, without `<>`.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// Oldest first.
    pub references: Vec<String>,
    /// An earlier attempt was made, and the server did not refuse it: it may have gone out.
    pub maybe_sent_before: bool,
    /// The newest message the customer wrote by email in this conversation, to quote.
    pub quote: Option<QuotedEmail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedEmail {
    pub author: String,
    pub at: Millis,
    pub body: String,
}

impl Store {
    /// Fix the headers of an outgoing email (first call) or read them back (later attempts).
    /// `accounts`: the configured account names; the reply leaves through its own account if
    /// it has one of them, else the account the conversation's newest email came through, else
    /// the first. For a message of the email channel, our Message-ID becomes its external id
    /// now, so the copy that comes back from the Sent folder is recognized as this message.
    /// `random` makes the Message-ID unguessable.
    pub fn prepare_outgoing_email(
        &mut self,
        message: MessageId,
        accounts: &[&str],
        domain_of: &dyn Fn(&str) -> String,
        random: &str,
    ) -> Result<OutgoingEmail> {
        self.write_with(|tx| {
            let (conversation, channel, account, meta): (
                ConversationId,
                Channel,
                String,
                Option<String>,
            ) = tx
                .prepare_cached(
                    "SELECT conversation_id, channel, account, meta FROM messages WHERE id = ?1",
                )?
                .query_row([message], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let mut meta: serde_json::Map<String, serde_json::Value> = meta
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default();
            let id_key = if channel == Channel::Email {
                "message_id"
            } else {
                "email_message_id"
            };
            let quote = quoted_email(tx, conversation, message)?;
            if let Some(existing) = meta.get(id_key).and_then(|v| v.as_str()) {
                let strings = |k: &str| -> Vec<String> {
                    meta.get(k)
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let refused = meta.get("email_refused").and_then(|v| v.as_bool()) == Some(true);
                let acc = meta
                    .get("email_account")
                    .and_then(|v| v.as_str())
                    .map(String::from)
                    .unwrap_or(account);
                return Ok(OutgoingEmail {
                    account: acc,
                    message_id: existing.to_string(),
                    in_reply_to: strings("in_reply_to").into_iter().next(),
                    references: strings("references"),
                    maybe_sent_before: !refused,
                    quote,
                });
            }
            let latest: Option<String> = tx
                .prepare_cached(
                    "SELECT account FROM messages WHERE conversation_id = ?1 AND channel = 'email'
                       AND account <> '' ORDER BY created_at DESC, id DESC LIMIT 1",
                )?
                .query_row([conversation], |r| r.get(0))
                .optional()?;
            let chosen = [Some(account.as_str()), latest.as_deref()]
                .into_iter()
                .flatten()
                .find(|a| accounts.contains(a))
                .or(accounts.first().copied())
                .unwrap_or("")
                .to_string();
            let refs = email_thread_refs(tx, conversation)?;
            let domain = domain_of(&chosen);
            let message_id = format!("braid.{}.{random}@{domain}", message.0);
            let (in_reply_to, references) = match refs {
                Some(r) => (Some(r.last_message_id), r.references),
                None => (None, Vec::new()),
            };
            meta.insert(id_key.into(), message_id.clone().into());
            meta.insert("email_account".into(), chosen.clone().into());
            if channel == Channel::Email {
                meta.insert(
                    "in_reply_to".into(),
                    serde_json::json!(in_reply_to.iter().collect::<Vec<_>>()),
                );
                meta.insert("references".into(), serde_json::json!(references));
            }
            let meta_text = serde_json::Value::Object(meta).to_string();
            if channel == Channel::Email {
                tx.prepare_cached(
                    "UPDATE messages SET meta = ?2, account = ?3, external_id = ?4 WHERE id = ?1",
                )?
                .execute((message, &meta_text, &chosen, &message_id))?;
            } else {
                tx.prepare_cached("UPDATE messages SET meta = ?2 WHERE id = ?1")?
                    .execute((message, &meta_text))?;
            }
            Ok(OutgoingEmail {
                account: chosen,
                message_id,
                in_reply_to,
                references,
                maybe_sent_before: false,
                quote,
            })
        })
    }

    /// Remember whether the last attempt at an outgoing email was refused by the server (so it
    /// certainly did not go out) or ended unclear (a timeout, a dropped connection).
    pub fn note_email_attempt(&mut self, message: MessageId, refused: bool) -> Result<()> {
        self.write_with(|tx| {
            tx.prepare_cached(
                "UPDATE messages SET meta = json_set(CASE WHEN json_valid(meta) THEN meta ELSE '{}' END,
                    '$.email_refused', json(?2)) WHERE id = ?1",
            )?
            .execute((message, if refused { "true" } else { "false" }))?;
            Ok(())
        })
    }

    /// Which of `ids` are the external ids of email messages already stored for `account`.
    pub fn known_email_ids(
        &self,
        account: &str,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT 1 FROM messages WHERE channel = 'email' AND account = ?1 AND external_id = ?2",
        )?;
        let mut known = std::collections::HashSet::new();
        for id in ids {
            if stmt.exists((account, id))? {
                known.insert(id.clone());
            }
        }
        Ok(known)
    }
}

/// The customer's newest email in the conversation before `before`.
fn quoted_email(
    conn: &Connection,
    conversation: ConversationId,
    before: MessageId,
) -> Result<Option<QuotedEmail>> {
    Ok(conn
        .prepare_cached(
            "SELECT m.author, ct.name, m.created_at, m.body FROM messages m
               JOIN contacts ct ON ct.id = m.contact_id
             WHERE m.conversation_id = ?1 AND m.channel = 'email' AND m.direction = 'in'
               AND m.id <> ?2
             ORDER BY m.created_at DESC, m.id DESC LIMIT 1",
        )?
        .query_row((conversation, before), |r| {
            let author: String = r.get(0)?;
            let name: String = r.get(1)?;
            Ok(QuotedEmail {
                author: if author.trim().is_empty() {
                    name
                } else {
                    author
                },
                at: r.get(2)?,
                body: r.get(3)?,
            })
        })
        .optional()?)
}
