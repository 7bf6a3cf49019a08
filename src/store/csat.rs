//! CSAT surveys in the store: one per conversation, ever.
//!
//! - [`Store::derive_csat`]: the server follows the events table with its own durable cursor
//!   (`derivations` row `csat`, like the SLA and the notifications): a `status_changed` to
//!   `resolved` (by a person or a rule) of a conversation the `[csat]` settings cover, still
//!   resolved and never surveyed, queues the survey as a reply by [`crate::csat::AUTHOR`]
//!   through the same code as every reply ([`super::messages::queue_reply_tx`]: consent, the
//!   channel's window, the outbox before any network call) and records the `csat` row and a
//!   `csat_sent` event (data `{"channel": ...}`) in the same transaction. A refusal (the
//!   contact opted out, a closed window) is recorded in the row (`skipped`), so nothing is
//!   tried again.
//! - [`Store::record_csat_answer`] (a button: web chat, Telegram) and [`csat_text_answer`]
//!   (a text reply inside ingest's transaction: email, SMS): the first answer is kept and
//!   writes `csat_answered` (data `{"score", "comment", "channel"}`); later ones change
//!   nothing.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError};
use crate::csat::CsatConfig;
use crate::model::{Channel, ContactId, ConversationId, EventId, MessageId, Millis, Status};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The `derivations` row of the surveys.
const CURSOR: &str = "csat";
/// Events read per transaction.
const BATCH: usize = 500;
/// A channel's timestamp may run behind ours (whole seconds on WhatsApp, a sender's clock on
/// email): a reply stamped up to this long before the survey still answers it.
const CLOCK_SLACK_MS: i64 = 5 * 60_000;
/// The actor of `csat_answered`: the customer's side, like a message they send (rules run
/// on it; automated actors fire none).
pub const ANSWER_ACTOR: &str = "ingest";

/// A conversation's survey as the timeline and the profile show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsatRow {
    pub conversation: ConversationId,
    pub channel: Channel,
    /// The survey message (None: none went out, see `skipped`).
    pub message: Option<MessageId>,
    pub decided_at: Millis,
    pub skipped: Option<String>,
    pub score: Option<u8>,
    pub comment: Option<String>,
    pub answered_at: Option<Millis>,
}

/// What one derivation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsatPass {
    pub sent: usize,
    pub skipped: usize,
}

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsatOutcome {
    Recorded,
    /// The conversation's survey was answered before: the first answer stands.
    AlreadyAnswered,
    /// No survey went out for that conversation.
    NoSurvey,
}

fn cursor(conn: &Connection) -> Result<Option<EventId>> {
    super::derivations::cursor(conn, CURSOR)
}

fn set_cursor(conn: &Connection, to: EventId) -> Result<()> {
    super::derivations::set_cursor(conn, CURSOR, to)
}

/// A `status_changed` event's new status (None: another kind of event).
fn new_status(kind: &str, data: Option<&str>) -> Option<String> {
    if kind != "status_changed" {
        return None;
    }
    data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string))
}

/// A resolution with `[csat] delay`: the survey waits (a row without message) until `due`.
fn schedule(conn: &Connection, conv: ConversationId, due: Millis, now: Millis) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO csat(conversation_id, channel, decided_at, answer_until, due_at)
             SELECT ?1, last_channel, ?3, ?3, ?2 FROM conversations WHERE id = ?1
             ON CONFLICT(conversation_id) DO NOTHING",
        )?
        .execute((conv, due, now))?;
    Ok(n > 0)
}

/// Reopened before its delayed survey went: dropped (the next resolution asks again).
fn unschedule(conn: &Connection, conv: ConversationId) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM csat WHERE conversation_id = ?1 AND message_id IS NULL AND skipped IS NULL",
    )?
    .execute([conv])?;
    Ok(())
}

/// The channel the customer last wrote on in the conversation (else its last channel).
fn customer_channel(conn: &Connection, conv: ConversationId) -> Result<Channel> {
    let inbound: Option<Channel> = conn
        .prepare_cached(
            "SELECT channel FROM messages WHERE conversation_id = ?1 AND direction = 'in'
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row([conv], |r| r.get(0))
        .optional()?;
    match inbound {
        Some(c) => Ok(c),
        None => Ok(conn
            .prepare_cached("SELECT last_channel FROM conversations WHERE id = ?1")?
            .query_row([conv], |r| r.get(0))?),
    }
}

/// Survey one conversation just resolved, if the settings cover it and it never was.
/// Returns Some(true) sent, Some(false) skipped (recorded), None: nothing to do.
fn survey(
    conn: &Connection,
    conv: ConversationId,
    cfg: &CsatConfig,
    now: Millis,
) -> Result<Option<bool>> {
    // Decided before (sent or skipped). A delayed one waiting is not: this sends it.
    let done = conn
        .prepare_cached(
            "SELECT 1 FROM csat WHERE conversation_id = ?1
               AND (message_id IS NOT NULL OR skipped IS NOT NULL)",
        )?
        .exists([conv])?;
    if done {
        return Ok(None);
    }
    let row: Option<(ContactId, Status, Option<String>)> = conn
        .prepare_cached("SELECT contact_id, status, team FROM conversations WHERE id = ?1")?
        .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    // Gone (folded into another by a merge), or open again before we got to it: the next
    // resolution asks.
    let Some((contact, status, team)) = row else {
        return Ok(None);
    };
    if status != Status::Resolved {
        return Ok(None);
    }
    let channel = customer_channel(conn, conv)?;
    if !cfg.applies(team.as_deref(), channel) {
        return Ok(None);
    }
    let body = crate::csat::survey_text(&cfg.question, channel);
    let meta = crate::csat::survey_meta(conv, &cfg.question).to_string();
    let queued = super::messages::queue_reply_tx(
        conn,
        conv,
        contact,
        channel,
        crate::csat::AUTHOR,
        &body,
        now,
        Some(&meta),
        false,
        None,
        crate::model::Purpose::Transactional,
    );
    let (message, skipped) = match queued {
        Ok(id) => (Some(id), None),
        // The channel's rules refused it (opted out, a closed window, no identity): recorded,
        // never tried again.
        Err(StoreError::Invalid(why)) => (None, Some(why)),
        Err(e) => return Err(e),
    };
    conn.prepare_cached(
        "INSERT OR REPLACE INTO csat(conversation_id, channel, message_id, decided_at,
            answer_until, skipped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        conv,
        channel,
        message,
        now,
        now.saturating_add(cfg.answer_window_ms),
        &skipped,
    ))?;
    if message.is_some() {
        events::append(
            conn,
            now,
            crate::csat::AUTHOR,
            EventKind::CsatSent,
            EventRefs {
                conversation: Some(conv),
                contact: Some(contact),
                message,
            },
            Some(&serde_json::json!({ "channel": channel })),
        )?;
    }
    Ok(Some(message.is_some()))
}

/// Record an answer (the first one is final) with its `csat_answered` event.
fn answer(
    conn: &Connection,
    conv: ConversationId,
    score: u8,
    comment: &str,
    channel: Channel,
    at: Millis,
    message: Option<MessageId>,
) -> Result<CsatOutcome> {
    if !(1..=5).contains(&score) {
        return Err(StoreError::Invalid(format!(
            "a CSAT score is 1 to 5, not {score}"
        )));
    }
    let state: Option<(Option<MessageId>, Option<i64>)> = conn
        .prepare_cached("SELECT message_id, score FROM csat WHERE conversation_id = ?1")?
        .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match state {
        None | Some((None, _)) => return Ok(CsatOutcome::NoSurvey),
        Some((_, Some(_))) => return Ok(CsatOutcome::AlreadyAnswered),
        Some((Some(_), None)) => {}
    }
    let comment = crate::csat::clean_comment(comment);
    conn.prepare_cached(
        "UPDATE csat SET score = ?2, comment = ?3, answer_channel = ?4, answered_at = ?5
         WHERE conversation_id = ?1 AND score IS NULL",
    )?
    .execute((conv, score, &comment, channel, at))?;
    let contact = super::conversations::contact_of(conn, conv)?;
    // On the timeline: a note by the survey (automated: it stops no clock), so every agent
    // sees the score where they read the conversation.
    let note = answer_note(score, &comment, channel);
    let last_channel: Channel = conn.query_row(
        "SELECT last_channel FROM conversations WHERE id = ?1",
        [conv],
        |r| r.get(0),
    )?;
    let note_id = super::messages::insert_message(
        conn,
        &super::messages::NewMessage {
            conversation: conv,
            contact,
            channel: last_channel,
            account: "",
            external_id: None,
            direction: crate::model::Direction::Note,
            author: crate::csat::AUTHOR,
            subject: None,
            body: &note,
            created_at: at,
            stored_at: at,
            delivery: None,
            meta: None,
            from_identity: None,
        },
    )?;
    events::append(
        conn,
        at,
        crate::csat::AUTHOR,
        EventKind::Note,
        EventRefs {
            conversation: Some(conv),
            contact: Some(contact),
            message: Some(note_id),
        },
        None,
    )?;
    let contact = Some(contact);
    events::append(
        conn,
        at,
        ANSWER_ACTOR,
        EventKind::CsatAnswered,
        EventRefs {
            conversation: Some(conv),
            contact,
            message,
        },
        Some(&serde_json::json!({ "score": score, "comment": comment, "channel": channel })),
    )?;
    Ok(CsatOutcome::Recorded)
}

/// The timeline's note of an answer: "Customer satisfaction: 2/5 on Telegram: “slow”".
/// The customer's words go into a note: an `@name` in them must not notify an agent (a
/// mention is an agent's act), so `@` is written as the full-width `＠`.
pub fn answer_note(score: u8, comment: &str, channel: Channel) -> String {
    let comment = comment.replace('@', "＠");
    let stars: String = "★".repeat(score as usize) + &"☆".repeat(5 - score as usize);
    if comment.is_empty() {
        format!(
            "Customer satisfaction: {score}/5 {stars} (on {})",
            channel.label()
        )
    } else {
        format!(
            "Customer satisfaction: {score}/5 {stars} (on {}): “{comment}”",
            channel.label()
        )
    }
}

/// Inside ingest's transaction, before threading: a customer's text on `channel` at `at`
/// that answers a pending survey of one of the contact's resolved conversations (sent on
/// that channel, not answered, inside its answer window). Returns the conversation and the
/// answer; the caller stores the message there WITHOUT reopening it, then calls
/// [`record_text_answer`].
pub(crate) fn csat_text_answer(
    conn: &Connection,
    contact: ContactId,
    channel: Channel,
    at: Millis,
    body: &str,
    button: Option<(ConversationId, u8)>,
) -> Result<Option<(ConversationId, u8, String)>> {
    let pending: Option<ConversationId> = conn
        .prepare_cached(
            "SELECT s.conversation_id FROM csat s JOIN conversations c ON c.id = s.conversation_id
             WHERE c.contact_id = ?1 AND c.status = 'resolved' AND s.channel = ?2
               AND s.message_id IS NOT NULL AND s.score IS NULL AND s.answer_until >= ?3
               AND s.decided_at <= ?3 + ?4
             ORDER BY s.decided_at DESC LIMIT 1",
        )?
        .query_row((contact, channel, at, CLOCK_SLACK_MS), |r| r.get(0))
        .optional()?;
    let Some(conv) = pending else {
        return Ok(None);
    };
    // A tapped list row or button (WhatsApp) names its survey and score; the text is its label.
    if let Some((c, score)) = button {
        return Ok((c == conv).then(|| (conv, score, String::new())));
    }
    Ok(crate::csat::parse_answer(body).map(|(s, c)| (conv, s, c)))
}

/// A button's answer (Telegram, WhatsApp, web chat) from the sender with identity
/// (`kind`, `value`): counted only when that identity is the surveyed contact's (anyone can
/// forge a button's data).
#[allow(clippy::too_many_arguments)]
pub(crate) fn button_answer(
    conn: &Connection,
    conv: ConversationId,
    score: u8,
    comment: &str,
    channel: Channel,
    at: Millis,
    kind: crate::model::IdentityKind,
    value: &str,
) -> Result<CsatOutcome> {
    let owner = conn
        .prepare_cached("SELECT contact_id FROM conversations WHERE id = ?1")?
        .query_row([conv], |r| r.get::<_, ContactId>(0))
        .optional()?;
    let sender = super::contacts::find_identity(conn, kind, value)?;
    if owner.is_none() || owner != sender {
        return Ok(CsatOutcome::NoSurvey);
    }
    answer(conn, conv, score, comment, channel, at, None)
}

/// Record a text answer found by [`csat_text_answer`] (its message stored).
pub(crate) fn record_text_answer(
    conn: &Connection,
    conv: ConversationId,
    score: u8,
    comment: &str,
    channel: Channel,
    at: Millis,
    message: MessageId,
) -> Result<CsatOutcome> {
    answer(conn, conv, score, comment, channel, at, Some(message))
}

fn csat_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CsatRow> {
    Ok(CsatRow {
        conversation: r.get(0)?,
        channel: r.get(1)?,
        message: r.get(2)?,
        decided_at: r.get(3)?,
        skipped: r.get(4)?,
        score: r.get(5)?,
        comment: r.get(6)?,
        answered_at: r.get(7)?,
    })
}

const COLUMNS: &str = "s.conversation_id, s.channel, s.message_id, s.decided_at, s.skipped, s.score, s.comment, s.answered_at";

/// The contact's answered surveys, newest first.
pub(crate) fn of_contact(
    conn: &Connection,
    contact: ContactId,
    limit: usize,
) -> Result<Vec<CsatRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM csat s JOIN conversations c ON c.id = s.conversation_id
         WHERE c.contact_id = ?1 AND s.score IS NOT NULL
         ORDER BY s.answered_at DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map((contact, limit as i64), csat_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    /// A survey of the past, as the demo's history writes it: the row and its `csat_sent`
    /// (and `csat_answered`) events at their own times, no message. Never for a conversation
    /// surveyed already.
    pub fn record_past_survey(
        &mut self,
        conv: ConversationId,
        channel: Channel,
        sent_at: Millis,
        answer: Option<(u8, &str, Millis)>,
    ) -> Result<bool> {
        self.write_with(|tx| {
            let contact: ContactId = tx
                .prepare_cached("SELECT contact_id FROM conversations WHERE id = ?1")?
                .query_row([conv], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::NoConversation(conv.0))?;
            let new =
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO csat(conversation_id, channel, decided_at, answer_until,
                        score, comment, answer_channel, answered_at)
                     VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(rusqlite::params![
                    conv,
                    channel,
                    sent_at,
                    answer.map(|a| a.0),
                    answer.map(|a| crate::sanitize::text(a.1)),
                    answer.map(|_| channel),
                    answer.map(|a| a.2),
                ])? > 0;
            if !new {
                return Ok(false);
            }
            let refs = EventRefs {
                conversation: Some(conv),
                contact: Some(contact),
                message: None,
            };
            events::append(
                tx,
                sent_at,
                crate::csat::AUTHOR,
                EventKind::CsatSent,
                refs,
                Some(&serde_json::json!({ "channel": channel })),
            )?;
            if let Some((score, comment, at)) = answer {
                events::append(
                    tx,
                    at,
                    ANSWER_ACTOR,
                    EventKind::CsatAnswered,
                    refs,
                    Some(&serde_json::json!({
                        "score": score,
                        "comment": crate::sanitize::text(comment),
                        "channel": channel,
                    })),
                )?;
            }
            Ok(true)
        })
    }

    /// Send the surveys the resolutions after the `csat` cursor call for (see the module
    /// doc), in batches of one transaction each (surveys and cursor together). A store
    /// without the cursor starts at its newest event. Disabled settings still move the
    /// cursor, so turning surveys on later does not survey the past.
    pub fn derive_csat(&mut self, cfg: &CsatConfig, now: Millis) -> Result<CsatPass> {
        let mut pass = CsatPass::default();
        loop {
            let (p, more) = self.write_with(|tx| {
                let Some(from) = cursor(tx)? else {
                    let newest: Option<i64> =
                        tx.query_row("SELECT max(id) FROM events", [], |r| r.get(0))?;
                    set_cursor(tx, EventId(newest.unwrap_or(0)))?;
                    return Ok((CsatPass::default(), false));
                };
                #[allow(clippy::type_complexity)]
                let evs: Vec<(
                    EventId,
                    String,
                    Option<ConversationId>,
                    Option<String>,
                    Millis,
                )> = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id, kind, conversation_id, data, at FROM events WHERE id > ?1
                         ORDER BY id LIMIT ?2",
                    )?;
                    stmt.query_map((from, BATCH as i64), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?
                };
                let Some(last) = evs.last().map(|e| e.0) else {
                    return Ok((CsatPass::default(), false));
                };
                let mut p = CsatPass::default();
                if cfg.enabled {
                    for (_, kind, conv, data, at) in &evs {
                        let Some(conv) = conv else { continue };
                        match new_status(kind, data.as_deref()).as_deref() {
                            Some("resolved") => {}
                            Some(_) => {
                                unschedule(tx, *conv)?;
                                continue;
                            }
                            None => continue,
                        }
                        if cfg.delay_ms > 0 {
                            schedule(tx, *conv, at.saturating_add(cfg.delay_ms), now)?;
                            continue;
                        }
                        match survey(tx, *conv, cfg, now)? {
                            Some(true) => p.sent += 1,
                            Some(false) => p.skipped += 1,
                            None => {}
                        }
                    }
                }
                set_cursor(tx, last)?;
                Ok((p, evs.len() == BATCH))
            })?;
            pass.sent += p.sent;
            pass.skipped += p.skipped;
            if !more {
                return Ok(pass);
            }
        }
    }

    /// Send the delayed surveys now due (`[csat] delay`) whose conversation is still
    /// resolved ([`survey`] checks it; one reopened in between was dropped by the
    /// derivation). Reads the waiting rows' index only.
    pub fn csat_sweep(&mut self, cfg: &CsatConfig, now: Millis) -> Result<CsatPass> {
        self.write_with(|tx| {
            let due: Vec<ConversationId> = tx
                .prepare_cached(
                    "SELECT conversation_id FROM csat INDEXED BY csat_due
                     WHERE message_id IS NULL AND skipped IS NULL AND due_at <= ?1
                     ORDER BY due_at LIMIT 500",
                )?
                .query_map([now], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut p = CsatPass::default();
            for conv in due {
                match survey(tx, conv, cfg, now)? {
                    Some(true) => p.sent += 1,
                    Some(false) => p.skipped += 1,
                    // Not resolved any more, or no longer covered by the settings.
                    None => unschedule(tx, conv)?,
                }
            }
            Ok(p)
        })
    }

    /// Record a button's answer (web chat, Telegram, WhatsApp) for a conversation's survey.
    /// The first answer is final: a later one returns [`CsatOutcome::AlreadyAnswered`].
    pub fn record_csat_answer(
        &mut self,
        conv: ConversationId,
        score: u8,
        comment: &str,
        channel: Channel,
        at: Millis,
    ) -> Result<CsatOutcome> {
        self.write_with(|tx| answer(tx, conv, score, comment, channel, at, None))
    }

    /// [`button_answer`] in its own transaction: the answer of the sender with identity
    /// (`kind`, `value`), counted only when it is the surveyed contact's.
    #[allow(clippy::too_many_arguments)]
    pub fn record_csat_button(
        &mut self,
        conv: ConversationId,
        score: u8,
        comment: &str,
        channel: Channel,
        at: Millis,
        kind: crate::model::IdentityKind,
        value: &str,
    ) -> Result<CsatOutcome> {
        self.write_with(|tx| button_answer(tx, conv, score, comment, channel, at, kind, value))
    }

    /// The survey of a conversation (None: none was decided).
    pub fn conversation_csat(&self, conv: ConversationId) -> Result<Option<CsatRow>> {
        if self.scoped() {
            super::scope::conversation_contact(self.conn(), conv, true)?;
        }
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM csat s WHERE s.conversation_id = ?1"
            ))?
            .query_row([conv], csat_row)
            .optional()?)
    }

    /// The contact's answered surveys, newest first (the profile's latest scores).
    pub fn contact_csat(&self, contact: ContactId, limit: usize) -> Result<Vec<CsatRow>> {
        if self.scoped() {
            super::scope::check_contact(self.conn(), contact, true)?;
        }
        of_contact(self.conn(), contact, limit)
    }

    /// The conversation whose survey a web chat visitor (or a Telegram chat) answers: the
    /// contact's newest survey sent on `channel` and not answered.
    pub fn pending_csat(
        &self,
        contact: ContactId,
        channel: Channel,
    ) -> Result<Option<ConversationId>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT s.conversation_id FROM csat s
                 JOIN conversations c ON c.id = s.conversation_id
                 WHERE c.contact_id = ?1 AND s.channel = ?2 AND s.message_id IS NOT NULL
                   AND s.score IS NULL
                 ORDER BY s.decided_at DESC LIMIT 1",
            )?
            .query_row((contact, channel), |r| r.get(0))
            .optional()?)
    }

    /// The contact a conversation belongs to (a survey answer checks its sender with it).
    pub fn csat_contact(&self, conv: ConversationId) -> Result<ContactId> {
        super::conversations::contact_of(self.conn(), conv)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::Claim;
    use crate::ingest::{Inbound, Ingested, Settings, ingest};
    use crate::model::{Direction, IdentityKind, now_millis};

    fn cfg() -> CsatConfig {
        CsatConfig {
            enabled: true,
            ..CsatConfig::default()
        }
    }

    fn inbound(
        channel: Channel,
        kind: IdentityKind,
        who: &str,
        id: &str,
        body: &str,
        at: Millis,
    ) -> Inbound {
        Inbound {
            channel,
            account: String::new(),
            external_id: id.into(),
            direction: Direction::In,
            customer: Claim::new(kind, who),
            linked: vec![],
            customer_name: Some("Ann".into()),
            author: None,
            subject: Some("Order".into()),
            body: body.into(),
            sent_at: at,
            meta: None,
            cursor: None,
        }
    }

    fn email(s: &mut Store, id: &str, body: &str, at: Millis) -> (ConversationId, MessageId) {
        match ingest(
            s,
            &inbound(
                Channel::Email,
                IdentityKind::Email,
                "ann@x.org",
                id,
                body,
                at,
            ),
            &Settings::default(),
        )
        .unwrap()
        {
            Ingested::Stored {
                conversation,
                message,
                ..
            } => (conversation, message),
            other => panic!("{other:?}"),
        }
    }

    /// Start the cursor where the store stands, like a server's first derivation.
    fn start(s: &mut Store) {
        s.derive_csat(&cfg(), now_millis()).unwrap();
    }

    fn events_of(s: &Store, conv: ConversationId, kind: &str) -> Vec<serde_json::Value> {
        s.conversation_events(conv, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| serde_json::from_str(e.data.as_deref().unwrap_or("null")).unwrap())
            .collect()
    }

    fn surveys(s: &Store, conv: ConversationId) -> usize {
        let contact = s.csat_contact(conv).unwrap();
        s.timeline(contact, None, 100)
            .unwrap()
            .iter()
            .filter(|m| m.author == crate::csat::AUTHOR && m.conversation_id == conv)
            .count()
    }

    #[test]
    fn one_survey_per_conversation_across_resolve_reopen_resolve_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("braid.db");
        let now = now_millis();
        let conv = {
            let mut s = Store::open(&path).unwrap();
            let (conv, _) = email(&mut s, "<1@x>", "where is my order?", now - 60_000);
            start(&mut s);
            s.queue_reply(conv, Channel::Email, "bob", "on its way", now - 50_000)
                .unwrap();
            s.set_status(conv, Status::Resolved, None, "bob", now - 40_000)
                .unwrap();
            let p = s.derive_csat(&cfg(), now).unwrap();
            assert_eq!(
                p,
                CsatPass {
                    sent: 1,
                    skipped: 0
                }
            );
            // Derived again: nothing new.
            assert_eq!(s.derive_csat(&cfg(), now).unwrap(), CsatPass::default());
            // The customer writes (not an answer), it reopens, bob resolves again.
            email(&mut s, "<2@x>", "thanks, one more thing", now - 30_000);
            assert_eq!(s.conversation(conv).unwrap().status, Status::Open);
            s.set_status(conv, Status::Resolved, None, "bob", now - 20_000)
                .unwrap();
            assert_eq!(s.derive_csat(&cfg(), now).unwrap(), CsatPass::default());
            conv
        };
        // A restart: a new store on the same file, resolved once more (reopened by an agent).
        let mut s = Store::open(&path).unwrap();
        s.set_status(conv, Status::Open, None, "bob", now - 10_000)
            .unwrap();
        s.set_status(conv, Status::Resolved, None, "bob", now - 5_000)
            .unwrap();
        assert_eq!(s.derive_csat(&cfg(), now).unwrap(), CsatPass::default());
        assert_eq!(surveys(&s, conv), 1);
        let sent = events_of(&s, conv, "csat_sent");
        assert_eq!(sent, vec![serde_json::json!({ "channel": "email" })]);
        // It went through the outbox like any reply, as an automated author.
        assert_eq!(s.outbox_counts().unwrap().0, 2);
        let row = s.conversation_csat(conv).unwrap().unwrap();
        assert_eq!(
            (row.channel, row.skipped, row.score),
            (Channel::Email, None, None)
        );
        let m = s.message(row.message.unwrap()).unwrap();
        assert!(m.body.contains("reply with a number from 1"), "{}", m.body);
        let claimed = s.claim_outbox(now + 1, 60_000, 10).unwrap();
        let item = claimed.iter().find(|i| i.message_id == m.id).unwrap();
        assert_eq!(
            crate::csat::survey_of(item.meta.as_ref()),
            Some(conv),
            "the channels find the buttons' conversation in its data"
        );
    }

    #[test]
    fn a_customers_comment_mentions_nobody() {
        let note = answer_note(1, "@bob call me, ann@x.org", Channel::Email);
        assert!(
            crate::mentions::mentioned(&note, &["bob".to_string()]).is_empty(),
            "{note}"
        );
        assert!(note.contains("＠bob call me"), "{note}");
    }

    #[test]
    fn a_survey_is_not_a_human_reply_and_fires_no_rule() {
        assert!(crate::store::is_automated(crate::csat::AUTHOR));
        assert!(!crate::store::is_automated("csat-team-lead"));
        assert!(
            crate::rules::Trigger::of_event("message_out", crate::csat::AUTHOR, None).is_empty()
        );
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let (conv, _) = email(&mut s, "<1@x>", "hello", now - 60_000);
        start(&mut s);
        s.set_status(conv, Status::Resolved, None, "bob", now - 1_000)
            .unwrap();
        s.derive_csat(&cfg(), now).unwrap();
        let c = s.conversation(conv).unwrap();
        assert_eq!(c.status, Status::Resolved, "a survey leaves it resolved");
    }

    #[test]
    fn an_opted_out_contact_gets_nothing_and_is_not_asked_again() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let conv = match ingest(
            &mut s,
            &inbound(
                Channel::Sms,
                IdentityKind::Phone,
                "+5511987654321",
                "SM1",
                "help",
                now - 60_000,
            ),
            &Settings::default(),
        )
        .unwrap()
        {
            Ingested::Stored { conversation, .. } => conversation,
            other => panic!("{other:?}"),
        };
        start(&mut s);
        let tx = s.write().unwrap();
        tx.set_consent(
            Channel::Sms,
            IdentityKind::Phone,
            "+5511987654321",
            true,
            "STOP",
            "sms",
            now - 30_000,
        )
        .unwrap();
        tx.commit().unwrap();
        let outbox = s.outbox_counts().unwrap();
        s.set_status(conv, Status::Resolved, None, "bob", now - 1_000)
            .unwrap();
        assert_eq!(
            s.derive_csat(&cfg(), now).unwrap(),
            CsatPass {
                sent: 0,
                skipped: 1
            }
        );
        assert_eq!(s.outbox_counts().unwrap(), outbox, "nothing queued");
        assert_eq!(surveys(&s, conv), 0);
        assert!(events_of(&s, conv, "csat_sent").is_empty());
        let row = s.conversation_csat(conv).unwrap().unwrap();
        assert!(row.skipped.unwrap().contains("opted out"));
        // They text START later and it is resolved again: still one decision per conversation.
        s.set_status(conv, Status::Open, None, "bob", now - 500)
            .unwrap();
        s.set_status(conv, Status::Resolved, None, "bob", now - 100)
            .unwrap();
        assert_eq!(s.derive_csat(&cfg(), now).unwrap(), CsatPass::default());
    }

    #[test]
    fn the_settings_decide_per_team_and_channel_and_off_moves_the_cursor() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let (conv, _) = email(&mut s, "<1@x>", "hello", now - 60_000);
        start(&mut s);
        s.set_status(conv, Status::Resolved, None, "bob", now - 3_000)
            .unwrap();
        // Off: nothing, and the cursor moves past it.
        s.derive_csat(&CsatConfig::default(), now).unwrap();
        assert!(s.conversation_csat(conv).unwrap().is_none());
        s.set_status(conv, Status::Open, None, "bob", now - 2_500)
            .unwrap();
        s.set_status(conv, Status::Resolved, None, "bob", now - 2_000)
            .unwrap();
        // Only telegram: not this email conversation.
        let tg = CsatConfig {
            channels: vec![Channel::Telegram],
            ..cfg()
        };
        s.derive_csat(&tg, now).unwrap();
        assert!(s.conversation_csat(conv).unwrap().is_none());
        s.set_status(conv, Status::Open, None, "bob", now - 1_500)
            .unwrap();
        s.set_status(conv, Status::Resolved, None, "bob", now - 1_000)
            .unwrap();
        // Only team support: this one is in no team.
        let support = CsatConfig {
            teams: Some(vec!["support".into()]),
            ..cfg()
        };
        s.derive_csat(&support, now).unwrap();
        assert!(s.conversation_csat(conv).unwrap().is_none());
        s.set_status(conv, Status::Open, None, "bob", now - 500)
            .unwrap();
        s.set_status(conv, Status::Resolved, None, "bob", now - 100)
            .unwrap();
        let none = CsatConfig {
            teams: Some(vec!["none".into()]),
            ..cfg()
        };
        assert_eq!(s.derive_csat(&none, now).unwrap().sent, 1);
    }

    #[test]
    fn an_email_reply_with_a_score_answers_and_leaves_the_conversation_resolved() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let (conv, _) = email(&mut s, "<1@x>", "hello", now - 60_000);
        start(&mut s);
        s.set_status(conv, Status::Resolved, None, "bob", now - 50_000)
            .unwrap();
        s.derive_csat(&cfg(), now - 40_000).unwrap();
        let (c2, m) = email(
            &mut s,
            "<2@x>",
            "5 - great service\n\nOn Mon, Shop wrote:\n> Please reply with a number from 1 to 5",
            now - 30_000,
        );
        assert_eq!(c2, conv, "the answer joins the surveyed conversation");
        assert_eq!(s.conversation(conv).unwrap().status, Status::Resolved);
        assert_eq!(
            s.message(m).unwrap().body.lines().next(),
            Some("5 - great service")
        );
        let answered = events_of(&s, conv, "csat_answered");
        assert_eq!(
            answered,
            vec![serde_json::json!({ "score": 5, "comment": "great service", "channel": "email" })]
        );
        let row = s.conversation_csat(conv).unwrap().unwrap();
        assert_eq!(
            (row.score, row.comment.as_deref()),
            (Some(5), Some("great service"))
        );
        let contact = s.csat_contact(conv).unwrap();
        assert_eq!(s.contact_csat(contact, 5).unwrap().len(), 1);
        // A second "1" is not an answer any more: an ordinary message that reopens.
        email(&mut s, "<3@x>", "1", now - 20_000);
        assert_eq!(events_of(&s, conv, "csat_answered").len(), 1);
        assert_eq!(s.conversation(conv).unwrap().status, Status::Open);
        // A button after that: the first answer stands.
        assert_eq!(
            s.record_csat_answer(conv, 1, "", Channel::Email, now)
                .unwrap(),
            CsatOutcome::AlreadyAnswered
        );
    }

    /// The lead's report facts come from these exact events: a real survey and a real text
    /// answer become the CSAT figures (sent, answered, distribution), and the survey is not
    /// counted as our first reply.
    #[test]
    fn a_real_survey_and_answer_feed_the_reports() {
        use crate::api::report::{ReportQuery, Slice};
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let (conv, _) = email(&mut s, "<1@x>", "hello", now - 60_000);
        start(&mut s);
        s.set_status(conv, Status::Resolved, None, "bob", now - 50_000)
            .unwrap();
        s.derive_csat(&cfg(), now - 40_000).unwrap();
        email(&mut s, "<2@x>", "2 - slow", now - 30_000);
        let sla = crate::sla::SlaConfig::default();
        s.backfill_reports(&sla, false, &mut |_| {}).unwrap();
        s.derive_reports(&sla, &mut |_| {}).unwrap();
        let r = s
            .report(
                &ReportQuery {
                    from: now - 3_600_000,
                    to: now + 3_600_000,
                    by: Slice::Channel,
                    metrics: vec![],
                    tz: Some("UTC".into()),
                    days: None,
                },
                &crate::store::ReportScope::All,
            )
            .unwrap();
        assert_eq!(r.total.csat.sent, 1);
        assert_eq!(r.total.csat.answered, 1);
        assert_eq!(r.total.csat.scores, [0, 1, 0, 0, 0]);
        assert_eq!(r.total.first_response.count, 0, "a survey is not a reply");
    }

    /// `[csat] delay`: the survey waits after the resolution; reopened before it is due, it
    /// is dropped; resolved again, it waits again and goes once when due.
    #[test]
    fn a_delayed_survey_waits_and_a_reopen_before_it_cancels_it() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let (conv, _) = email(&mut s, "<1@x>", "hello", now - 60_000);
        start(&mut s);
        let delayed = CsatConfig {
            delay_ms: 3_600_000,
            ..cfg()
        };
        s.set_status(conv, Status::Resolved, None, "bob", now)
            .unwrap();
        assert_eq!(s.derive_csat(&delayed, now).unwrap(), CsatPass::default());
        assert_eq!(
            s.csat_sweep(&delayed, now + 60_000).unwrap(),
            CsatPass::default()
        );
        assert_eq!(surveys(&s, conv), 0, "not yet");
        // The customer writes back within the hour: it reopens, the survey is dropped.
        email(&mut s, "<2@x>", "one more question", now + 120_000);
        s.derive_csat(&delayed, now + 120_000).unwrap();
        assert!(s.conversation_csat(conv).unwrap().is_none());
        assert_eq!(
            s.csat_sweep(&delayed, now + 2 * 3_600_000).unwrap(),
            CsatPass::default()
        );
        // Resolved again (the events carry their own time): due an hour after that.
        s.set_status(conv, Status::Resolved, None, "bob", now + 200_000)
            .unwrap();
        s.derive_csat(&delayed, now + 200_000).unwrap();
        assert_eq!(s.csat_sweep(&delayed, now + 300_000).unwrap().sent, 0);
        let due = s.conversation_csat(conv).unwrap().unwrap();
        assert_eq!((due.message, due.skipped, due.score), (None, None, None));
        // A button cannot answer a survey that has not gone out.
        assert_eq!(
            s.record_csat_answer(conv, 5, "", Channel::Email, now + 300_000)
                .unwrap(),
            CsatOutcome::NoSurvey
        );
        let later = now + 200_000 + 3_600_000 + 1;
        assert_eq!(s.csat_sweep(&delayed, later).unwrap().sent, 1);
        assert_eq!(
            s.csat_sweep(&delayed, later + 1).unwrap(),
            CsatPass::default()
        );
        assert_eq!(surveys(&s, conv), 1);
        assert_eq!(events_of(&s, conv, "csat_sent").len(), 1);
    }

    #[test]
    fn a_reply_without_a_score_or_after_the_window_reopens_as_usual() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let (conv, _) = email(&mut s, "<1@x>", "hello", now - 60_000);
        start(&mut s);
        s.set_status(conv, Status::Resolved, None, "bob", now - 50_000)
            .unwrap();
        let short = CsatConfig {
            answer_window_ms: 10_000,
            ..cfg()
        };
        s.derive_csat(&short, now - 40_000).unwrap();
        // "it broke again" holds no score: it reopens the conversation.
        email(&mut s, "<2@x>", "it broke again, order 12345", now - 35_000);
        assert_eq!(s.conversation(conv).unwrap().status, Status::Open);
        s.set_status(conv, Status::Resolved, None, "bob", now - 34_000)
            .unwrap();
        // Outside the window a "4" is just a message.
        email(&mut s, "<3@x>", "4", now - 20_000);
        assert!(events_of(&s, conv, "csat_answered").is_empty());
    }
}
