//! Messages: the unified timeline, agent replies and notes, drafts.

use super::conversations::{add_channel, contact_of};
use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, scope};
use crate::model::{
    Channel, ContactId, ConversationId, Delivery, Direction, EventId, IdentityKind, MessageId,
    Millis, Purpose,
};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub channel: Channel,
    pub account: String,
    pub direction: Direction,
    pub author: String,
    pub subject: Option<String>,
    pub body: String,
    pub created_at: Millis,
    pub delivery: Option<Delivery>,
    pub delivery_error: Option<String>,
    /// A reply queued to go out later (`:send-at`): when. Kept after it went out or was
    /// cancelled (the delivery says which).
    #[serde(default)]
    pub scheduled_at: Option<Millis>,
}

/// A position in a timeline (oldest first order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineCursor {
    pub created_at: Millis,
    pub id: MessageId,
}

impl MessageRow {
    pub fn cursor(&self) -> TimelineCursor {
        TimelineCursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, contact_id, channel, account, direction, author,
     subject, body, created_at, delivery, delivery_error,
     json_extract(meta, '$.scheduled_at')";

fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        conversation_id: r.get(1)?,
        contact_id: r.get(2)?,
        channel: r.get(3)?,
        account: r.get(4)?,
        direction: r.get(5)?,
        author: r.get(6)?,
        subject: r.get(7)?,
        body: r.get(8)?,
        created_at: r.get(9)?,
        delivery: r.get(10)?,
        delivery_error: r.get(11)?,
        scheduled_at: r.get(12)?,
    })
}

/// Everything needed to insert one message row.
pub(crate) struct NewMessage<'a> {
    pub conversation: ConversationId,
    pub contact: ContactId,
    pub channel: Channel,
    pub account: &'a str,
    pub external_id: Option<&'a str>,
    pub direction: Direction,
    pub author: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub created_at: Millis,
    pub stored_at: Millis,
    pub delivery: Option<Delivery>,
    pub meta: Option<&'a str>,
    /// The customer's identifiers a customer message came from or gave (an address, a phone
    /// number, a Telegram or visitor id), space-separated: with the author, what `from:`
    /// searches.
    pub from_identity: Option<&'a str>,
}

impl NewMessage<'_> {
    /// The `sender` column: the author, and for a customer's message the identifier it came
    /// from, as [`super::search::sender_index`] indexes them for `from:`.
    pub(crate) fn sender_words(&self) -> String {
        match (self.direction, self.from_identity) {
            (Direction::In, Some(id)) if !id.is_empty() => {
                super::search::sender_index(&format!("{} {id}", self.author))
            }
            _ => super::search::sender_index(self.author),
        }
    }
}

/// The existing message with this external id, if any (idempotent ingest).
pub(crate) fn find_external(
    conn: &Connection,
    channel: Channel,
    account: &str,
    external_id: &str,
) -> Result<Option<(MessageId, ConversationId)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, conversation_id FROM messages
             WHERE channel = ?1 AND account = ?2 AND external_id = ?3",
        )?
        .query_row((channel, account, external_id), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// Insert a message and fold it into its conversation's summary (preview, channels, activity).
pub(crate) fn insert_message(conn: &Connection, m: &NewMessage<'_>) -> Result<MessageId> {
    conn.prepare_cached(
        "INSERT INTO messages(conversation_id, contact_id, channel, account, external_id,
            direction, author, subject, body, created_at, stored_at, delivery, meta, sender,
            identity_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
            CASE WHEN ?6 = 'in' AND ?15 IS NOT NULL THEN
                (SELECT id FROM identities WHERE kind = ?16 AND value = ?15) END)",
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
        m.from_identity
            .and_then(|f| f.split(' ').next())
            .filter(|v| !v.is_empty()),
        m.channel.identity_kind(),
    ])?;
    let id = MessageId(conn.last_insert_rowid());
    let (channels, last_activity): (String, Millis) = conn
        .prepare_cached("SELECT channels, last_activity FROM conversations WHERE id = ?1")?
        .query_row([m.conversation], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let channels = add_channel(&channels, m.channel).unwrap_or(channels);
    let newest = m.created_at >= last_activity;
    conn.prepare_cached(
        "UPDATE conversations SET message_count = message_count + 1, channels = ?2,
            last_activity = max(last_activity, ?3),
            last_channel = CASE WHEN ?4 AND ?5 <> 'note' THEN ?6 ELSE last_channel END,
            last_preview = CASE WHEN ?4 THEN ?7 ELSE last_preview END,
            last_direction = CASE WHEN ?4 THEN ?5 ELSE last_direction END,
            subject = coalesce(subject, ?8),
            waiting_since = CASE WHEN ?5 = 'in' THEN coalesce(waiting_since, ?3)
                                 WHEN ?9 THEN NULL ELSE waiting_since END,
            last_reply_at = CASE WHEN ?9 THEN max(coalesce(last_reply_at, ?3), ?3)
                                 ELSE last_reply_at END
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        m.conversation,
        channels,
        m.created_at,
        newest,
        m.direction,
        m.channel,
        preview(m.body),
        m.subject,
        m.direction == Direction::Out && !is_automated(m.author),
    ])?;
    Ok(id)
}

/// An author that is not a person: a workflow rule (`rule:ID`), the satisfaction survey
/// ([`crate::csat::AUTHOR`]). Their replies (an automatic acknowledgement, a survey) do not
/// stop the clocks of a customer waiting on us, and their events fire no rule.
pub fn is_automated(author: &str) -> bool {
    author.starts_with("rule:") || author == crate::csat::AUTHOR
}

/// A one-line preview of a body: the first line that says something (not a quote, not a bare
/// greeting like "Hi there," or "Dear support,"), at most 160 chars.
pub(crate) fn preview(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('>'))
        .collect();
    let is_greeting = |l: &str| l.chars().count() <= 40 && (l.ends_with(',') || l.ends_with(':'));
    let line = lines
        .iter()
        .find(|l| !is_greeting(l))
        .or(lines.first())
        .copied()
        .unwrap_or("");
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// Recompute a conversation's summary columns from its messages (after a merge moved some).
pub(crate) fn refresh_conversation_summary(conn: &Connection, id: ConversationId) -> Result<()> {
    let (count, last): (i64, Option<MessageId>) = conn.query_row(
        "SELECT count(*), (SELECT id FROM messages WHERE conversation_id = ?1
                           ORDER BY created_at DESC, id DESC LIMIT 1)
         FROM messages WHERE conversation_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    conn.execute(
        "UPDATE conversations SET message_count = ?2 WHERE id = ?1",
        (id, count),
    )?;
    if let Some(last) = last {
        let (body, dir, channel, at): (String, Direction, Channel, Millis) = conn.query_row(
            "SELECT body, direction, channel, created_at FROM messages WHERE id = ?1",
            [last],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        conn.execute(
            "UPDATE conversations SET last_preview = ?2, last_direction = ?3, last_channel = ?4,
                last_activity = ?5 WHERE id = ?1",
            (id, preview(&body), dir, channel, at),
        )?;
    }
    Ok(())
}

pub(crate) fn create_conversation(
    conn: &Connection,
    contact: ContactId,
    channel: Channel,
    subject: Option<&str>,
    team: Option<&str>,
    at: Millis,
    actor: &str,
) -> Result<ConversationId> {
    conn.prepare_cached(
        "INSERT INTO conversations(contact_id, status, subject, channels, last_channel,
            last_activity, created_at, team)
         VALUES (?1, 'open', ?2, '', ?3, ?4, ?4, ?5)",
    )?
    .execute((contact, subject, channel, at, team))?;
    let id = ConversationId(conn.last_insert_rowid());
    events::append(
        conn,
        at,
        actor,
        EventKind::ConversationCreated,
        EventRefs {
            conversation: Some(id),
            contact: Some(contact),
            message: None,
        },
        None,
    )?;
    Ok(id)
}

impl Store {
    /// How many messages the store holds (a full count: for reports, not for every frame).
    pub fn message_count(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?)
    }

    /// One page of a contact's unified timeline, oldest first. `before`: only messages older than
    /// the cursor (scrolling back); None: the newest `limit` messages.
    pub fn timeline(
        &self,
        contact: ContactId,
        before: Option<TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<MessageRow>> {
        // A restricted scope keeps the messages of the conversations it sees (the contact's
        // other conversations may belong to another team).
        let scope = if self.scoped() {
            format!(
                " AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = messages.conversation_id{})",
                scope::AND_COND
            )
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE contact_id = ?1
               AND (created_at, id) < (?2, ?3){scope}
             ORDER BY created_at DESC, id DESC LIMIT ?4"
        );
        let (at, id) = before
            .map(|c| (c.created_at, c.id.0))
            .unwrap_or((i64::MAX, i64::MAX));
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt
            .query_map((contact, at, id, limit as i64), message_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// One message (its conversation out of the scope: [`StoreError::NoMessage`]).
    pub fn message(&self, id: MessageId) -> Result<MessageRow> {
        scope::check_message(self.conn(), id, self.scoped())?;
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
        self.conn()
            .prepare_cached(&sql)?
            .query_row([id], message_row)
            .optional()?
            .ok_or(StoreError::NoMessage(id.0))
    }

    /// An internal note on a conversation. Notes never leave braid.
    pub fn add_note(
        &mut self,
        conv: ConversationId,
        author: &str,
        body: &str,
        at: Millis,
    ) -> Result<MessageId> {
        self.add_note_guarded(conv, author, body, at, None)
    }

    /// [`add_note`](Self::add_note), unless the conversation changed after event `seen` (a
    /// customer wrote, another agent replied, noted, reassigned...): then nothing is written and
    /// the error is [`StoreError::Stale`] with what changed. Checked inside the write's
    /// transaction, so nothing slips in between.
    pub fn add_note_guarded(
        &mut self,
        conv: ConversationId,
        author: &str,
        body: &str,
        at: Millis,
        seen: Option<EventId>,
    ) -> Result<MessageId> {
        // Agent text can hold pasted escape sequences too: it is sanitized like customer text.
        let body = crate::sanitize::text(body);
        let body = body.trim_end();
        if body.trim().is_empty() {
            return Err(StoreError::Invalid("empty note".into()));
        }
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, conv, scoped)?;
            events::guard(tx, conv, seen, author)?;
            let channel: Channel = tx.query_row(
                "SELECT last_channel FROM conversations WHERE id = ?1",
                [conv],
                |r| r.get(0),
            )?;
            let id = insert_message(
                tx,
                &NewMessage {
                    conversation: conv,
                    contact,
                    channel,
                    account: "",
                    external_id: None,
                    direction: Direction::Note,
                    author,
                    subject: None,
                    body,
                    created_at: at,
                    stored_at: at,
                    delivery: None,
                    meta: None,
                    from_identity: None,
                },
            )?;
            tx.execute(
                "DELETE FROM drafts WHERE conversation_id = ?1 AND agent = ?2 AND kind = 'note'",
                (conv, author),
            )?;
            events::append(
                tx,
                at,
                author,
                EventKind::Note,
                EventRefs {
                    conversation: Some(conv),
                    contact: Some(contact),
                    message: Some(id),
                },
                None,
            )?;
            Ok(id)
        })
    }

    /// The channel a plain `r` reply goes out on: the one the customer last wrote on.
    pub fn reply_channel(&self, conv: ConversationId) -> Result<Channel> {
        scope::conversation_contact(self.conn(), conv, self.scoped())?;
        let from_inbound: Option<Channel> = self
            .conn()
            .prepare_cached(
                "SELECT channel FROM messages WHERE conversation_id = ?1 AND direction = 'in'
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )?
            .query_row([conv], |r| r.get(0))
            .optional()?;
        let first = match from_inbound {
            Some(c) => c,
            None => self.conversation(conv)?.last_channel,
        };
        let contact = contact_of(self.conn(), conv)?;
        let now = crate::model::now_millis();
        if self.usable(contact, first, now)? {
            return Ok(first);
        }
        // The customer cannot be reached there (blocked the bot): the channel they used last
        // among the reachable ones, else any reachable one.
        let recent: Vec<Channel> = self
            .conn()
            .prepare_cached(
                "SELECT channel FROM messages WHERE contact_id = ?1 AND direction = 'in'
                 GROUP BY channel ORDER BY max(created_at) DESC",
            )?
            .query_map([contact], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        // Channels they wrote on, then email (an address an agent added). Never a channel
        // they did not use just because an identity would fit: a phone number from a contact
        // card does not mean this workspace sends SMS, or that they are on WhatsApp.
        for c in recent.into_iter().chain([Channel::Email]) {
            if c != first && self.usable(contact, c, now)? {
                return Ok(c);
            }
        }
        // Nothing better: a call log's contact is answered where a phone number reaches,
        // else where they wrote.
        Ok(if first.replyable() {
            first
        } else {
            Channel::Email
        })
    }

    /// A reply on `channel` could go to the contact now: the channel is answerable, an
    /// identity of its kind is reachable, and no window or opt-out stops it.
    fn usable(&self, contact: ContactId, channel: Channel, now: Millis) -> Result<bool> {
        Ok(channel.replyable()
            && self.reachable(contact, channel)?
            && self.reply_refusal(contact, channel, false, now)?.is_none())
    }

    /// The contact has an identity for `channel` that replies can reach.
    pub fn reachable(&self, contact: ContactId, channel: Channel) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT 1 FROM identities WHERE contact_id = ?1 AND kind = ?2
                   AND unreachable IS NULL LIMIT 1",
            )?
            .exists((contact, channel.identity_kind()))?)
    }

    /// Why `channel` cannot reach the contact, if it cannot (every identity of its kind is
    /// marked unreachable).
    pub fn unreachable_reason(
        &self,
        contact: ContactId,
        channel: Channel,
    ) -> Result<Option<String>> {
        scope::check_contact(self.conn(), contact, self.scoped())?;
        if self.reachable(contact, channel)? {
            return Ok(None);
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT unreachable FROM identities WHERE contact_id = ?1 AND kind = ?2
                   AND unreachable IS NOT NULL ORDER BY created_at DESC LIMIT 1",
            )?
            .query_row((contact, channel.identity_kind()), |r| r.get(0))
            .optional()?)
    }

    /// The address a reply on `channel` goes to: the contact's newest identity of that kind.
    pub fn recipient(&self, contact: ContactId, channel: Channel) -> Result<Option<String>> {
        scope::check_contact(self.conn(), contact, self.scoped())?;
        recipient(self.conn(), contact, channel.identity_kind())
    }

    /// Queue a reply: the message (delivery `queued`) and its outbox row are written in one
    /// transaction, before any network call, so a reply is never lost.
    pub fn queue_reply(
        &mut self,
        conv: ConversationId,
        channel: Channel,
        author: &str,
        body: &str,
        at: Millis,
    ) -> Result<MessageId> {
        self.queue_reply_guarded(conv, channel, author, body, at, None)
    }

    /// [`queue_reply`](Self::queue_reply) with the stale-send guard of
    /// [`add_note_guarded`](Self::add_note_guarded).
    pub fn queue_reply_guarded(
        &mut self,
        conv: ConversationId,
        channel: Channel,
        author: &str,
        body: &str,
        at: Millis,
        seen: Option<EventId>,
    ) -> Result<MessageId> {
        self.queue_reply_with(conv, channel, author, body, at, seen, None)
    }

    /// [`queue_reply_guarded`](Self::queue_reply_guarded) with the message's channel data
    /// (`{"template": {...}}` for a WhatsApp template). Refused, before anything is written,
    /// when the channel's rules stop it (a closed 24-hour window, an opt-out, a call log):
    /// see [`super::hooks::reply_refusal`].
    #[allow(clippy::too_many_arguments)]
    pub fn queue_reply_with(
        &mut self,
        conv: ConversationId,
        channel: Channel,
        author: &str,
        body: &str,
        at: Millis,
        seen: Option<EventId>,
        meta: Option<&serde_json::Value>,
    ) -> Result<MessageId> {
        self.queue_reply_at(conv, channel, author, body, at, seen, meta, None)
    }

    /// Queue a reply that goes out at `send_at` (`:send-at`), not before: its outbox row is
    /// due then (the dispatcher claims only due rows, so a restart changes nothing), and the
    /// message carries `{"scheduled_at": send_at}` in its channel data, so every timeline
    /// shows it scheduled until it is sent or cancelled ([`Store::cancel_scheduled`]).
    #[allow(clippy::too_many_arguments)]
    pub fn schedule_reply(
        &mut self,
        conv: ConversationId,
        channel: Channel,
        author: &str,
        body: &str,
        at: Millis,
        send_at: Millis,
        seen: Option<EventId>,
    ) -> Result<MessageId> {
        if send_at <= at {
            return Err(StoreError::Invalid(
                "a scheduled reply goes out later: give a time ahead (or send it now)".into(),
            ));
        }
        self.queue_reply_at(conv, channel, author, body, at, seen, None, Some(send_at))
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_reply_at(
        &mut self,
        conv: ConversationId,
        channel: Channel,
        author: &str,
        body: &str,
        at: Millis,
        seen: Option<EventId>,
        meta: Option<&serde_json::Value>,
        send_at: Option<Millis>,
    ) -> Result<MessageId> {
        let templated = meta.is_some_and(|m| m.get("template").is_some());
        let meta = match (meta, send_at) {
            (m, Some(t)) => {
                let mut m = m.cloned().unwrap_or_else(|| serde_json::json!({}));
                if let Some(o) = m.as_object_mut() {
                    o.insert("scheduled_at".into(), t.into());
                }
                Some(m)
            }
            (m, None) => m.cloned(),
        };
        let meta_text = meta.as_ref().map(|m| m.to_string());
        let body = crate::sanitize::text(body);
        let body = body.trim_end();
        if body.trim().is_empty() {
            return Err(StoreError::Invalid("empty reply".into()));
        }
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, conv, scoped)?;
            events::guard(tx, conv, seen, author)?;
            queue_reply_tx(
                tx,
                conv,
                contact,
                channel,
                author,
                body,
                at,
                meta_text.as_deref(),
                templated,
                send_at,
                Purpose::Transactional,
            )
        })
    }

    /// Save the composer's text for (conversation, agent). Empty text deletes the draft.
    pub fn save_draft(
        &mut self,
        conv: ConversationId,
        agent: &str,
        kind: &str,
        channel: Option<Channel>,
        body: &str,
        at: Millis,
    ) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            scope::conversation_contact(tx, conv, scoped)?;
            if body.trim().is_empty() {
                tx.execute(
                    "DELETE FROM drafts WHERE conversation_id = ?1 AND agent = ?2",
                    (conv, agent),
                )?;
            } else {
                tx.prepare_cached(
                    "INSERT INTO drafts(conversation_id, agent, kind, channel, body, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(conversation_id, agent) DO UPDATE SET
                        kind = excluded.kind, channel = excluded.channel,
                        body = excluded.body, updated_at = excluded.updated_at",
                )?
                .execute((conv, agent, kind, channel, body, at))?;
            }
            Ok(())
        })
    }

    /// The saved draft of (conversation, agent): kind ("reply"/"note"), channel, text.
    pub fn draft(
        &self,
        conv: ConversationId,
        agent: &str,
    ) -> Result<Option<(String, Option<Channel>, String)>> {
        if self.scoped() {
            scope::conversation_contact(self.conn(), conv, true)?;
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT kind, channel, body FROM drafts WHERE conversation_id = ?1 AND agent = ?2",
            )?
            .query_row((conv, agent), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }
}

/// "Re: " exactly once, whatever the subject already carries (Re:, RE:, Fwd: Re: ...).
pub fn reply_subject(subject: &str) -> String {
    let s = subject.trim();
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("re:") || lower.starts_with("re :") {
        s.to_string()
    } else {
        format!("Re: {s}")
    }
}

/// Where a reply in `conv` on `channel` goes: the identity the customer last wrote from there
/// (after a merge a person may have two numbers; the reply goes to the one they used), else the
/// contact's newest identity of the channel's kind.
pub(crate) fn conversation_recipient(
    conn: &Connection,
    conv: ConversationId,
    contact: ContactId,
    channel: Channel,
) -> Result<Option<String>> {
    let used: Option<String> = conn
        .prepare_cached(
            "SELECT i.value FROM messages m JOIN identities i ON i.id = m.identity_id
             WHERE m.conversation_id = ?1 AND m.direction = 'in' AND m.channel = ?2
               AND i.contact_id = ?3 AND i.kind = ?4
             ORDER BY m.created_at DESC, m.id DESC LIMIT 1",
        )?
        .query_row((conv, channel, contact, channel.identity_kind()), |r| {
            r.get(0)
        })
        .optional()?;
    match used {
        Some(v) => Ok(Some(v)),
        None => recipient(conn, contact, channel.identity_kind()),
    }
}

pub(crate) fn recipient(
    conn: &Connection,
    contact: ContactId,
    kind: IdentityKind,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT value FROM identities WHERE contact_id = ?1 AND kind = ?2
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row((contact, kind), |r| r.get(0))
        .optional()?)
}

/// A message with files attached, for `:save`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentSource {
    pub message: MessageId,
    pub channel: Channel,
    pub account: String,
    pub external_id: Option<String>,
    pub meta: serde_json::Value,
}

impl Store {
    /// The conversation's newest message that has attachments (email `attachments`, a Telegram
    /// `attachment`).
    pub fn newest_attachment_message(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<AttachmentSource>> {
        if self.scoped() {
            scope::conversation_contact(self.conn(), conversation, true)?;
        }
        let row: Option<(MessageId, Channel, String, Option<String>, String)> = self
            .conn()
            .prepare_cached(
                "SELECT id, channel, account, external_id, meta FROM messages
                 WHERE conversation_id = ?1 AND meta IS NOT NULL AND json_valid(meta)
                   AND (json_array_length(meta, '$.attachments') > 0
                        OR json_type(meta, '$.attachment') = 'object')
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )?
            .query_row([conversation], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        Ok(row.map(
            |(message, channel, account, external_id, meta)| AttachmentSource {
                message,
                channel,
                account,
                external_id,
                meta: serde_json::from_str(&meta).unwrap_or(serde_json::Value::Null),
            },
        ))
    }
}

/// A reply queued inside the caller's transaction (the body sanitized and checked by the
/// caller): the message, its outbox row and its event, refused by the channel's rules
/// (consent, the 24-hour window) before anything is written. [`Store::queue_reply_with`] and
/// the workflow rules' replies both go through it. `send_at`: a scheduled reply, due then.
#[allow(clippy::too_many_arguments)]
pub(crate) fn queue_reply_tx(
    tx: &Connection,
    conv: ConversationId,
    contact: ContactId,
    channel: Channel,
    author: &str,
    body: &str,
    at: Millis,
    meta_text: Option<&str>,
    templated: bool,
    send_at: Option<Millis>,
    purpose: Purpose,
) -> Result<MessageId> {
    let to = conversation_recipient(tx, conv, contact, channel)?.ok_or_else(|| {
        StoreError::Invalid(format!(
            "this contact has no {} identity to reply to",
            channel.as_str()
        ))
    })?;
    if let Some(why) =
        super::hooks::reply_refusal(tx, contact, channel, &to, templated, purpose, at)?
    {
        return Err(StoreError::Invalid(why));
    }
    let subject: Option<String> = if channel == Channel::Email {
        tx.query_row(
            "SELECT subject FROM conversations WHERE id = ?1",
            [conv],
            |r| r.get(0),
        )?
    } else {
        None
    };
    let subject = subject.map(|s| reply_subject(&s));
    let id = insert_message(
        tx,
        &NewMessage {
            conversation: conv,
            contact,
            channel,
            account: "",
            external_id: None,
            direction: Direction::Out,
            author,
            subject: subject.as_deref(),
            body,
            created_at: at,
            stored_at: at,
            delivery: Some(Delivery::Queued),
            meta: meta_text,
            from_identity: None,
        },
    )?;
    tx.prepare_cached(
        "INSERT INTO outbox(message_id, channel, recipient, next_attempt_at, purpose)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((id, channel, &to, send_at.unwrap_or(at), purpose))?;
    tx.execute(
        "DELETE FROM drafts WHERE conversation_id = ?1 AND agent = ?2 AND kind = 'reply'",
        (conv, author),
    )?;
    // The status is left alone: a conversation does not vanish from the agent's view
    // because they answered it. Resolving (or snoozing) is an explicit decision.
    events::append(
        tx,
        at,
        author,
        EventKind::MessageOut,
        EventRefs {
            conversation: Some(conv),
            contact: Some(contact),
            message: Some(id),
        },
        Some(&match send_at {
            Some(t) => serde_json::json!({ "channel": channel, "to": to, "scheduled_at": t }),
            None => serde_json::json!({ "channel": channel, "to": to }),
        }),
    )?;
    Ok(id)
}
