//! What the webhook channels keep: the inbox of verified webhook bodies waiting to be ingested,
//! delivery reports (sent, delivered, read, failed) applied to the messages we sent, the
//! customer's consent per channel (SMS STOP / START), and when a customer last wrote on a
//! channel (the 24-hour windows of WhatsApp, Instagram and Messenger).

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, Tx};
use crate::model::{Channel, ContactId, Delivery, IdentityKind, MessageId, Millis};
use rusqlite::OptionalExtension;

/// One webhook body waiting in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub id: i64,
    /// Which endpoint took it: "whatsapp", "sms", "events/shop".
    pub source: String,
    pub received_at: Millis,
    pub body: Vec<u8>,
    pub attempts: i64,
}

/// What a delivery report did to its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// The message moved to the reported state.
    Applied(MessageId),
    /// The message already stands at this state or further (a report arriving late or twice).
    Stale(MessageId),
    /// No message of ours has this id (yet: the send may not have recorded it).
    Unknown,
}

/// A customer's consent on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub opted_out: bool,
    /// The word that set it ("STOP", "START"), or what an agent or an error said.
    pub keyword: String,
    pub at: Millis,
}

impl Store {
    /// Keep webhook bodies (verified, not yet parsed into the store), all in one transaction:
    /// once this returns, the sender may be told 200.
    pub fn inbox_push(&mut self, items: &[(&str, &[u8])], at: Millis) -> Result<()> {
        self.write_with(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO webhook_inbox(source, received_at, body, next_at)
                 VALUES (?1, ?2, ?3, ?2)",
            )?;
            for (source, body) in items {
                stmt.execute((source, at, body))?;
            }
            Ok(())
        })
    }

    /// Up to `limit` bodies due at `now`, oldest first.
    pub fn inbox_due(&self, now: Millis, limit: usize) -> Result<Vec<InboxRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, source, received_at, body, attempts FROM webhook_inbox
             WHERE next_at <= ?1 ORDER BY next_at, id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map((now, limit as i64), |r| {
                Ok(InboxRow {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    received_at: r.get(2)?,
                    body: r.get(3)?,
                    attempts: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Bodies waiting (due or not).
    pub fn inbox_len(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM webhook_inbox", [], |r| r.get(0))?)
    }

    /// The consent a customer gave on `channel` for an identifier, if they ever said.
    pub fn consent(
        &self,
        channel: Channel,
        kind: IdentityKind,
        value: &str,
    ) -> Result<Option<Consent>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT opted_out, keyword, at FROM consent
                 WHERE channel = ?1 AND kind = ?2 AND value = ?3",
            )?
            .query_row((channel, kind, value), |r| {
                Ok(Consent {
                    opted_out: r.get(0)?,
                    keyword: r.get(1)?,
                    at: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// When the contact last wrote to us on `channel` (None: never).
    pub fn last_inbound_at(&self, contact: ContactId, channel: Channel) -> Result<Option<Millis>> {
        last_inbound_at(&self.conn, contact, channel)
    }
}

pub(crate) fn last_inbound_at(
    conn: &rusqlite::Connection,
    contact: ContactId,
    channel: Channel,
) -> Result<Option<Millis>> {
    // messages_contact_time walks the contact's messages newest first; a contact has few.
    Ok(conn
        .prepare_cached(
            "SELECT created_at FROM messages
             WHERE contact_id = ?1 AND channel = ?2 AND direction = 'in'
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row((contact, channel), |r| r.get(0))
        .optional()?)
}

impl Tx<'_> {
    /// The body was ingested (or is beyond saving): forget it.
    pub fn inbox_done(&self, id: i64) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM webhook_inbox WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Try the body again at `next_at`, keeping why it waits.
    pub fn inbox_later(&self, id: i64, next_at: Millis, why: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE webhook_inbox SET attempts = attempts + 1, next_at = ?2, error = ?3
                 WHERE id = ?1",
            )?
            .execute((id, next_at, why))?;
        Ok(())
    }

    /// Apply a channel's delivery report to the message we sent as `external_id` on
    /// `channel`. Reports arrive out of order and more than once: a message only moves
    /// forward (sent, delivered, read); `failed` replaces sent or delivered (the channel gave
    /// up after accepting it), never read. Each change is a `delivery_changed` event.
    pub fn apply_delivery_report(
        &self,
        channel: Channel,
        external_id: &str,
        report: Delivery,
        error: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<Reported> {
        let conn = self.conn();
        let found: Option<(MessageId, i64, i64, Option<Delivery>)> = conn
            .prepare_cached(
                "SELECT id, conversation_id, contact_id, delivery FROM messages
                 WHERE channel = ?1 AND external_id = ?2 AND direction = 'out'
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row((channel, external_id), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((message, conv, contact, current)) = found else {
            return Ok(Reported::Unknown);
        };
        let moves = match (current.and_then(Delivery::report_rank), report) {
            (Some(3), Delivery::Failed) => false,
            (Some(_), Delivery::Failed) => true,
            (_, Delivery::Failed) => false,
            (Some(now), r) => r.report_rank().is_some_and(|new| new > now),
            // queued / sending / unclear: the send has not recorded its outcome; a report
            // from the channel settles it (an unclear send that was delivered is sent).
            (None, r) => r.report_rank().is_some() && current == Some(Delivery::Unclear),
        };
        if !moves {
            return Ok(Reported::Stale(message));
        }
        let error = error.map(crate::sanitize::line);
        conn.prepare_cached(
            "UPDATE messages SET delivery = ?2, delivery_error = ?3 WHERE id = ?1",
        )?
        .execute((message, report, error.as_deref()))?;
        events::append(
            conn,
            at,
            actor,
            EventKind::DeliveryChanged,
            EventRefs {
                conversation: Some(crate::model::ConversationId(conv)),
                contact: Some(ContactId(contact)),
                message: Some(message),
            },
            Some(&serde_json::json!({ "delivery": report, "error": error, "report": true })),
        )?;
        Ok(Reported::Applied(message))
    }

    /// Record a customer's consent on `channel` (an SMS STOP or START): a `contact_updated`
    /// event when it changes. False when it was already so.
    #[allow(clippy::too_many_arguments)]
    pub fn set_consent(
        &self,
        channel: Channel,
        kind: IdentityKind,
        value: &str,
        opted_out: bool,
        keyword: &str,
        actor: &str,
        at: Millis,
    ) -> Result<bool> {
        let conn = self.conn();
        let before: Option<bool> = conn
            .prepare_cached(
                "SELECT opted_out FROM consent WHERE channel = ?1 AND kind = ?2 AND value = ?3",
            )?
            .query_row((channel, kind, value), |r| r.get(0))
            .optional()?;
        let keyword = crate::sanitize::line(keyword);
        conn.prepare_cached(
            "INSERT INTO consent(channel, kind, value, opted_out, keyword, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(channel, kind, value) DO UPDATE SET
                opted_out = excluded.opted_out, keyword = excluded.keyword, at = excluded.at",
        )?
        .execute((channel, kind, value, opted_out, &keyword, at))?;
        if before == Some(opted_out) {
            return Ok(false);
        }
        let contact = super::contacts::find_identity(conn, kind, value)?;
        events::append(
            conn,
            at,
            actor,
            EventKind::ContactUpdated,
            EventRefs {
                conversation: None,
                contact,
                message: None,
            },
            Some(&serde_json::json!({
                "consent": { "channel": channel, "value": value, "opted_out": opted_out,
                             "keyword": keyword },
            })),
        )?;
        Ok(true)
    }

    /// When the contact last wrote on `channel` (see [`Store::last_inbound_at`]).
    pub fn last_inbound_at(&self, contact: ContactId, channel: Channel) -> Result<Option<Millis>> {
        last_inbound_at(self.conn(), contact, channel)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{Direction, now_millis};

    fn store_with_reply() -> (Store, MessageId) {
        let mut s = Store::open_in_memory().unwrap();
        let msg = crate::ingest::Inbound {
            channel: Channel::WhatsApp,
            account: "100".into(),
            external_id: "wamid.in1".into(),
            direction: Direction::In,
            customer: crate::identity::Claim::new(IdentityKind::Phone, "+4915112345678"),
            linked: vec![],
            customer_name: Some("Ana".into()),
            author: None,
            subject: None,
            body: "hi".into(),
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        };
        let crate::ingest::Ingested::Stored { conversation, .. } =
            crate::ingest::ingest(&mut s, &msg, &Default::default()).unwrap()
        else {
            panic!()
        };
        let m = s
            .queue_reply(
                conversation,
                Channel::WhatsApp,
                "ann",
                "hello",
                now_millis(),
            )
            .unwrap();
        s.mark_sent(m, "100", Some("wamid.out1"), "worker", now_millis())
            .unwrap();
        (s, m)
    }

    fn report(s: &mut Store, d: Delivery) -> Reported {
        let tx = s.write().unwrap();
        let r = tx
            .apply_delivery_report(Channel::WhatsApp, "wamid.out1", d, None, "whatsapp", 1)
            .unwrap();
        tx.commit().unwrap();
        r
    }

    #[test]
    fn reports_only_move_forward_whatever_order_they_arrive_in() {
        let (mut s, m) = store_with_reply();
        assert_eq!(report(&mut s, Delivery::Read), Reported::Applied(m));
        assert_eq!(report(&mut s, Delivery::Delivered), Reported::Stale(m));
        assert_eq!(report(&mut s, Delivery::Sent), Reported::Stale(m));
        assert_eq!(report(&mut s, Delivery::Failed), Reported::Stale(m));
        assert_eq!(s.message(m).unwrap().delivery, Some(Delivery::Read));
        assert_eq!(report(&mut s, Delivery::Read), Reported::Stale(m));
    }

    #[test]
    fn failed_after_delivered_is_failed_and_unknown_ids_wait() {
        let (mut s, m) = store_with_reply();
        assert_eq!(report(&mut s, Delivery::Delivered), Reported::Applied(m));
        let tx = s.write().unwrap();
        let r = tx
            .apply_delivery_report(
                Channel::WhatsApp,
                "wamid.out1",
                Delivery::Failed,
                Some("131047: re-engagement \x1b[2J message"),
                "whatsapp",
                2,
            )
            .unwrap();
        assert_eq!(r, Reported::Applied(m));
        assert_eq!(
            tx.apply_delivery_report(Channel::Sms, "wamid.out1", Delivery::Read, None, "x", 3)
                .unwrap(),
            Reported::Unknown
        );
        tx.commit().unwrap();
        let msg = s.message(m).unwrap();
        assert_eq!(msg.delivery, Some(Delivery::Failed));
        assert!(!msg.delivery_error.unwrap().contains('\x1b'));
    }

    #[test]
    fn consent_is_per_channel_and_changes_once() {
        let (mut s, _) = store_with_reply();
        let tx = s.write().unwrap();
        let p = "+4915112345678";
        assert!(
            tx.set_consent(Channel::Sms, IdentityKind::Phone, p, true, "STOP", "sms", 5)
                .unwrap()
        );
        assert!(
            !tx.set_consent(Channel::Sms, IdentityKind::Phone, p, true, "stop", "sms", 6)
                .unwrap()
        );
        tx.commit().unwrap();
        assert!(
            s.consent(Channel::Sms, IdentityKind::Phone, p)
                .unwrap()
                .unwrap()
                .opted_out
        );
        assert_eq!(
            s.consent(Channel::WhatsApp, IdentityKind::Phone, p)
                .unwrap(),
            None
        );
    }

    #[test]
    fn the_inbox_keeps_bodies_until_done() {
        let mut s = Store::open_in_memory().unwrap();
        s.inbox_push(&[("whatsapp", &b"{}"[..]), ("sms", &b"a=b"[..])], 10)
            .unwrap();
        let due = s.inbox_due(10, 10).unwrap();
        assert_eq!(due.len(), 2);
        let tx = s.write().unwrap();
        tx.inbox_done(due[0].id).unwrap();
        tx.inbox_later(due[1].id, 100, "later").unwrap();
        tx.commit().unwrap();
        assert_eq!(s.inbox_due(50, 10).unwrap(), vec![]);
        assert_eq!(s.inbox_len().unwrap(), 1);
        assert_eq!(s.inbox_due(100, 10).unwrap()[0].attempts, 1);
    }
}
