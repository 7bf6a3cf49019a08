//! The outbox: replies waiting for a channel to carry them. Claiming, success, failure with
//! backoff, and manual retry all change the message's delivery status and append an event in
//! the same transaction, so every TUI sees the new state.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError};
use crate::model::{Channel, ContactId, ConversationId, Delivery, MessageId, Millis, Purpose};
use rusqlite::OptionalExtension;
use serde::Serialize;

/// One reply to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub channel: Channel,
    pub account: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    pub author: String,
    pub attempts: i64,
    /// Claimed again after an earlier attempt that never reported back (its process died or
    /// was stopped mid-send): that attempt may have reached the customer.
    pub resumed: bool,
    /// The message's channel data: `{"template": {"name", "language", "params"}}` for a
    /// WhatsApp template message.
    pub meta: Option<serde_json::Value>,
    /// When the contact last wrote on this channel (the 24-hour windows), None: never.
    pub last_in: Option<Millis>,
}

/// The longest a failed send waits before the next attempt.
const MAX_BACKOFF_MS: i64 = 15 * 60 * 1000;
/// After this many failures an item is left `failed` until an agent runs `:retry`.
pub const MAX_ATTEMPTS: i64 = 8;

impl Store {
    /// Claim up to `limit` due items: they move to `sending`, so no other dispatcher takes them.
    /// Items left `sending` by a crashed process are due again after `stale_ms`.
    pub fn claim_outbox(
        &mut self,
        now: Millis,
        stale_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        self.write_with(|tx| {
            let claimed: Vec<(Purpose, OutboxItem)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT o.message_id, m.conversation_id, m.contact_id, o.channel, o.account,
                            o.recipient, m.subject, m.body, m.author, o.attempts,
                            o.state = 'sending', m.meta,
                            (SELECT MAX(i.created_at) FROM messages i
                              WHERE i.contact_id = m.contact_id AND i.channel = o.channel
                                AND i.direction = 'in'),
                            o.purpose
                     FROM outbox o JOIN messages m ON m.id = o.message_id
                     WHERE (o.state = 'pending' AND o.next_attempt_at <= ?1)
                        OR (o.state = 'sending' AND o.next_attempt_at <= ?2)
                     ORDER BY o.next_attempt_at LIMIT ?3",
                )?;
                let rows = stmt.query_map((now, now - stale_ms, limit as i64), |r| {
                    let purpose: Purpose = r.get(13)?;
                    Ok((
                        purpose,
                        OutboxItem {
                            message_id: r.get(0)?,
                            conversation_id: r.get(1)?,
                            contact_id: r.get(2)?,
                            channel: r.get(3)?,
                            account: r.get(4)?,
                            recipient: r.get(5)?,
                            subject: r.get(6)?,
                            body: r.get(7)?,
                            author: r.get(8)?,
                            attempts: r.get(9)?,
                            resumed: r.get(10)?,
                            meta: r
                                .get::<_, Option<String>>(11)?
                                .and_then(|m| serde_json::from_str(&m).ok()),
                            last_in: r.get(12)?,
                        },
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            // Consent again, right before the network call: the customer may have opted out
            // since the message was queued (a scheduled reply, a campaign step). Refused: failed
            // with the reason, never sent, never retried.
            let mut items = Vec::with_capacity(claimed.len());
            for (purpose, it) in claimed {
                let refusal = super::consent::outbound_refusal(
                    tx,
                    it.contact_id,
                    it.channel,
                    &it.recipient,
                    purpose,
                    now,
                )?;
                let Some(why) = refusal else {
                    items.push(it);
                    continue;
                };
                tx.execute(
                    "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE message_id = ?1",
                    (it.message_id, &why),
                )?;
                tx.execute(
                    "UPDATE messages SET delivery = 'failed', delivery_error = ?2 WHERE id = ?1",
                    (it.message_id, &why),
                )?;
                delivery_event(
                    tx,
                    it.conversation_id,
                    it.contact_id,
                    it.message_id,
                    Delivery::Failed,
                    Some(&why),
                    "worker",
                    now,
                )?;
            }
            for it in &items {
                tx.execute(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1,
                        next_attempt_at = ?2 WHERE message_id = ?1",
                    (it.message_id, now),
                )?;
                tx.execute(
                    "UPDATE messages SET delivery = 'sending' WHERE id = ?1",
                    [it.message_id],
                )?;
                delivery_event(
                    tx,
                    it.conversation_id,
                    it.contact_id,
                    it.message_id,
                    Delivery::Sending,
                    None,
                    "worker",
                    now,
                )?;
            }
            Ok(items)
        })
    }

    /// The channel accepted the message. `external_id` is the channel's id for it (Message-ID,
    /// Telegram message id), recorded so the copy that comes back (Sent folder) is not a duplicate.
    pub fn mark_sent(
        &mut self,
        message: MessageId,
        account: &str,
        external_id: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            let (conv, contact) = owner(tx, message)?;
            if !in_outbox(tx, message)? {
                // The same success reported twice is fine; anything else is not ours to send.
                let delivery: Option<Delivery> = tx.query_row(
                    "SELECT delivery FROM messages WHERE id = ?1",
                    [message],
                    |r| r.get(0),
                )?;
                if delivery.is_some_and(Delivery::is_sent) {
                    return Ok(());
                }
                return Err(not_waiting(message));
            }
            // The channel's copy may already be stored (a Sent folder can deliver it before
            // this call): the id then stays with that copy, and the send is still recorded,
            // rather than failing here and sending the reply again later.
            tx.execute(
                "UPDATE messages SET delivery = 'sent', delivery_error = NULL, account = ?2,
                    external_id = CASE
                        WHEN ?3 IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM messages o WHERE o.channel = messages.channel
                              AND o.account = ?2 AND o.external_id = ?3 AND o.id <> ?1)
                        THEN ?3 ELSE external_id END
                 WHERE id = ?1",
                (message, account, external_id),
            )?;
            tx.execute("DELETE FROM outbox WHERE message_id = ?1", [message])?;
            delivery_event(tx, conv, contact, message, Delivery::Sent, None, actor, at)
        })
    }

    /// The send failed. With `retry`, it is tried again after an exponential backoff (until
    /// MAX_ATTEMPTS); without, it stays failed until `:retry`.
    pub fn mark_failed(
        &mut self,
        message: MessageId,
        reason: &str,
        retry: bool,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            let (conv, contact) = owner(tx, message)?;
            let attempts: i64 = tx
                .query_row(
                    "SELECT attempts FROM outbox WHERE message_id = ?1",
                    [message],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| not_waiting(message))?;
            let again = retry && attempts < MAX_ATTEMPTS;
            let backoff = (5_000i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
            tx.execute(
                "UPDATE outbox SET state = ?2, last_error = ?3, next_attempt_at = ?4
                 WHERE message_id = ?1",
                (
                    message,
                    if again { "pending" } else { "failed" },
                    reason,
                    at + backoff,
                ),
            )?;
            tx.execute(
                "UPDATE messages SET delivery = 'failed', delivery_error = ?2 WHERE id = ?1",
                (message, reason),
            )?;
            delivery_event(
                tx,
                conv,
                contact,
                message,
                Delivery::Failed,
                Some(reason),
                actor,
                at,
            )
        })
    }

    /// The send may have reached the customer and the channel cannot tell (Telegram has no way
    /// to ask whether a message went out): the reply is left `unclear` with the reason, out of
    /// the retry loop, until an agent decides with `:retry`.
    pub fn mark_unclear(
        &mut self,
        message: MessageId,
        reason: &str,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            let (conv, contact) = owner(tx, message)?;
            let n = tx.execute(
                "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE message_id = ?1",
                (message, reason),
            )?;
            if n == 0 {
                return Err(not_waiting(message));
            }
            tx.execute(
                "UPDATE messages SET delivery = 'unclear', delivery_error = ?2 WHERE id = ?1",
                (message, reason),
            )?;
            delivery_event(
                tx,
                conv,
                contact,
                message,
                Delivery::Unclear,
                Some(reason),
                actor,
                at,
            )
        })
    }

    /// `:retry`: send a failed (or unclear) message again now.
    pub fn retry(&mut self, message: MessageId, actor: &str, at: Millis) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            super::scope::check_message(tx, message, scoped)?;
            let (conv, contact) = owner(tx, message)?;
            let n = tx.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2
                 WHERE message_id = ?1 AND state IN ('failed', 'pending')",
                (message, at),
            )?;
            if n == 0 {
                return Err(not_waiting(message));
            }
            tx.execute(
                "UPDATE messages SET delivery = 'queued' WHERE id = ?1",
                [message],
            )?;
            delivery_event(
                tx,
                conv,
                contact,
                message,
                Delivery::Queued,
                None,
                actor,
                at,
            )
        })
    }

    /// Cancel a scheduled reply (`:send-at`) that has not gone out: its outbox row is deleted
    /// and the message marked `cancelled`, audited `reply_cancelled` by `actor`. A reply being
    /// sent or already sent cannot be called back, and a reply queued to go now is not
    /// scheduled: both are refused, saying so.
    pub fn cancel_scheduled(&mut self, message: MessageId, actor: &str, at: Millis) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            super::scope::check_message(tx, message, scoped)?;
            let (conv, contact) = owner(tx, message)?;
            let row: Option<(String, Option<Millis>)> = tx
                .prepare_cached(
                    "SELECT o.state, json_extract(m.meta, '$.scheduled_at')
                     FROM outbox o JOIN messages m ON m.id = o.message_id
                     WHERE o.message_id = ?1",
                )?
                .query_row([message], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match row {
                Some((state, Some(_))) if state == "pending" => {}
                Some((_, None)) => {
                    return Err(StoreError::Invalid(format!(
                        "message #{} is not a scheduled reply (only :send-at replies can be cancelled)",
                        message.0
                    )));
                }
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "message #{} is already going out or sent: too late to cancel",
                        message.0
                    )));
                }
            }
            tx.execute("DELETE FROM outbox WHERE message_id = ?1", [message])?;
            tx.execute(
                "UPDATE messages SET delivery = 'cancelled' WHERE id = ?1",
                [message],
            )?;
            events::append(
                tx,
                at,
                actor,
                EventKind::ReplyCancelled,
                EventRefs {
                    conversation: Some(conv),
                    contact: Some(contact),
                    message: Some(message),
                },
                None,
            )?;
            delivery_event(
                tx,
                conv,
                contact,
                message,
                Delivery::Cancelled,
                None,
                actor,
                at,
            )
        })
    }

    /// The newest scheduled reply of a conversation still waiting to go out (what
    /// `:cancel-send` cancels when no message is selected).
    pub fn last_scheduled(&self, conv: ConversationId) -> Result<Option<MessageId>> {
        if self.scoped() {
            super::scope::conversation_contact(self.conn(), conv, true)?;
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT m.id FROM messages m JOIN outbox o ON o.message_id = m.id
                 WHERE m.conversation_id = ?1 AND o.state = 'pending'
                   AND json_extract(m.meta, '$.scheduled_at') IS NOT NULL
                 ORDER BY m.created_at DESC, m.id DESC LIMIT 1",
            )?
            .query_row([conv], |r| r.get(0))
            .optional()?)
    }

    /// How many replies wait in the outbox (pending or sending) and how many have failed for good.
    pub fn outbox_counts(&self) -> Result<(i64, i64)> {
        Ok(self.conn().query_row(
            "SELECT count(*) FILTER (WHERE state <> 'failed'), count(*) FILTER (WHERE state = 'failed')
             FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The newest failed or unclear message of a conversation (what `:retry` retries).
    pub fn last_failed(&self, conv: ConversationId) -> Result<Option<MessageId>> {
        if self.scoped() {
            super::scope::conversation_contact(self.conn(), conv, true)?;
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT id FROM messages WHERE conversation_id = ?1 AND delivery IN ('failed', 'unclear')
                 ORDER BY created_at DESC LIMIT 1",
            )?
            .query_row([conv], |r| r.get(0))
            .optional()?)
    }
}

fn in_outbox(conn: &rusqlite::Connection, message: MessageId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbox WHERE message_id = ?1")?
        .query_row([message], |_| Ok(()))
        .optional()?
        .is_some())
}

fn not_waiting(message: MessageId) -> StoreError {
    StoreError::Invalid(format!("message #{message} is not waiting to be sent"))
}

fn owner(conn: &rusqlite::Connection, message: MessageId) -> Result<(ConversationId, ContactId)> {
    conn.prepare_cached("SELECT conversation_id, contact_id FROM messages WHERE id = ?1")?
        .query_row([message], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NoMessage(message.0))
}

#[allow(clippy::too_many_arguments)]
fn delivery_event(
    conn: &rusqlite::Connection,
    conv: ConversationId,
    contact: ContactId,
    message: MessageId,
    delivery: Delivery,
    error: Option<&str>,
    actor: &str,
    at: Millis,
) -> Result<()> {
    events::append(
        conn,
        at,
        actor,
        EventKind::DeliveryChanged,
        EventRefs {
            conversation: Some(conv),
            contact: Some(contact),
            message: Some(message),
        },
        Some(&serde_json::json!({ "delivery": delivery, "error": error })),
    )?;
    Ok(())
}
