//! What the webhook channels keep: the inbox of verified webhook bodies waiting to be ingested,
//! delivery reports (sent, delivered, read, failed) applied to the messages we sent, the
//! customer's consent per channel (SMS STOP / START), and when a customer last wrote on a
//! channel (the 24-hour windows of WhatsApp, Instagram and Messenger).

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, Tx};
use crate::model::{
    Channel, ConsentSource, ContactId, Delivery, IdentityKind, MessageId, Millis, Purpose,
};
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

    /// The customer-service window of `channel` for `contact` now.
    pub fn reply_window(
        &self,
        contact: ContactId,
        channel: Channel,
        now: Millis,
    ) -> Result<Window> {
        window(&self.conn, contact, channel, now)
    }

    /// Why a reply on `channel` cannot be queued now (see [`reply_refusal`]), None: it can.
    pub fn reply_refusal(
        &self,
        contact: ContactId,
        channel: Channel,
        templated: bool,
        now: Millis,
    ) -> Result<Option<String>> {
        let Some(to) = super::messages::recipient(&self.conn, contact, channel.identity_kind())?
        else {
            return Ok(None);
        };
        reply_refusal(
            &self.conn,
            contact,
            channel,
            &to,
            templated,
            Purpose::Transactional,
            now,
        )
    }

    /// When the contact last wrote to us on `channel` (None: never).
    pub fn last_inbound_at(&self, contact: ContactId, channel: Channel) -> Result<Option<Millis>> {
        last_inbound_at(&self.conn, contact, channel)
    }
}

/// Where a reply on a channel with a customer-service window stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "window", rename_all = "snake_case")]
pub enum Window {
    /// The channel has no window (email, Telegram, web chat, SMS).
    Unlimited,
    /// Free-form replies may go until `closes_at`.
    Open { closes_at: Millis },
    /// Instagram / Messenger after 24 hours: a person's reply (tagged HUMAN_AGENT) may go
    /// until `closes_at`.
    HumanAgent { closes_at: Millis },
    /// Closed: WhatsApp takes only templates; Instagram and Messenger nothing until the
    /// customer writes. `last_in`: when they last wrote on the channel (None: never).
    Closed { last_in: Option<Millis> },
}

/// The window of `channel` for `contact` at `now`.
pub(crate) fn window(
    conn: &rusqlite::Connection,
    contact: ContactId,
    channel: Channel,
    now: Millis,
) -> Result<Window> {
    let Some(w) = channel.reply_window_ms() else {
        return Ok(Window::Unlimited);
    };
    let last = last_inbound_at(conn, contact, channel)?;
    Ok(match last {
        Some(t) if now < t + w => Window::Open { closes_at: t + w },
        Some(t) => match channel.human_agent_window_ms() {
            Some(h) if now < t + h => Window::HumanAgent { closes_at: t + h },
            _ => Window::Closed { last_in: last },
        },
        None => Window::Closed { last_in: None },
    })
}

/// "3 h", "2 days": how long ago (or for how long), for the agent.
pub fn span_text(ms: Millis) -> String {
    let m = (ms.max(0) + 59_999) / 60_000;
    match m {
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

/// Why a reply on `channel` to `to` must not be queued, if it must not: a channel nobody
/// answers on, a customer who opted out (see [`super::consent::outbound_refusal`]), a closed
/// window. `templated`: the reply is an approved template (WhatsApp's way past the window).
#[allow(clippy::too_many_arguments)]
pub(crate) fn reply_refusal(
    conn: &rusqlite::Connection,
    contact: ContactId,
    channel: Channel,
    to: &str,
    templated: bool,
    purpose: Purpose,
    now: Millis,
) -> Result<Option<String>> {
    if !channel.replyable() {
        return Ok(Some(format!(
            "{} cannot be answered: R to reply on another channel",
            match channel {
                Channel::Phone => "a call log",
                _ => "an external event",
            }
        )));
    }
    if templated && channel != Channel::WhatsApp {
        return Ok(Some(format!(
            "templates are WhatsApp's: on {} write the reply itself",
            channel.label()
        )));
    }
    if let Some(why) = super::consent::outbound_refusal(conn, contact, channel, to, purpose, now)? {
        return Ok(Some(why));
    }
    if templated {
        return Ok(None);
    }
    Ok(match window(conn, contact, channel, now)? {
        Window::Unlimited | Window::Open { .. } | Window::HumanAgent { .. } => None,
        Window::Closed { last_in } => {
            let when = match last_in {
                Some(t) => format!("the customer last wrote {} ago", span_text(now - t)),
                None => format!("the customer never wrote on {}", channel.label()),
            };
            Some(match channel {
                Channel::WhatsApp => format!(
                    "outside WhatsApp's 24-hour window ({when}): only an approved template can \
                     go, :template NAME [PARAMS]; or R to reply on another channel"
                ),
                _ => format!(
                    "{} takes replies only within 7 days of the customer's last message \
                     ({when}): R to reply on another channel",
                    channel.label()
                ),
            })
        }
    })
}

/// The channels a contact opted out of, through any of their identities.
pub(crate) fn opted_out(
    conn: &rusqlite::Connection,
    contact: ContactId,
) -> Result<Vec<(Channel, String, String, Millis)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.channel, c.value, c.keyword, c.at FROM consent c
         JOIN identities i ON i.kind = c.kind AND i.value = c.value
         WHERE i.contact_id = ?1 AND c.opted_out ORDER BY c.at",
    )?;
    let rows = stmt
        .query_map([contact], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
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
            // Failed (the channel said so: final), or a send without a recorded outcome
            // (queued, sending, unclear: no channel id was recorded, so no report can name
            // it): a report changes nothing.
            (None, _) => false,
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
        // A legal stop on one channel is an opt-out of marketing on every channel; a START
        // the customer's newest word: marketing again.
        if let Some(contact) = contact {
            super::consent::record(
                conn,
                &super::consent::Change {
                    contact,
                    purpose: Purpose::Marketing,
                    opted_out,
                    channel: Some(channel),
                    identity: Some((kind, value)),
                    source: ConsentSource::Keyword,
                    detail: &keyword,
                },
                actor,
                at,
            )?;
        }
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
        // Failed is final: a late "delivered" or "read" changes nothing.
        assert_eq!(report(&mut s, Delivery::Delivered), Reported::Stale(m));
        assert_eq!(report(&mut s, Delivery::Read), Reported::Stale(m));
        assert_eq!(s.message(m).unwrap().delivery, Some(Delivery::Failed));
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

    fn inbound(
        s: &mut Store,
        channel: Channel,
        kind: IdentityKind,
        who: &str,
        id: &str,
        at: Millis,
    ) -> crate::model::ConversationId {
        let msg = crate::ingest::Inbound {
            channel,
            account: String::new(),
            external_id: id.into(),
            direction: Direction::In,
            customer: crate::identity::Claim::new(kind, who),
            linked: vec![],
            customer_name: Some("Ana".into()),
            author: None,
            subject: None,
            body: format!("message {id}"),
            sent_at: at,
            meta: None,
            cursor: None,
        };
        match crate::ingest::ingest(s, &msg, &Default::default()).unwrap() {
            crate::ingest::Ingested::Stored { conversation, .. }
            | crate::ingest::Ingested::Duplicate { conversation, .. } => conversation,
        }
    }

    const H: Millis = 3600 * 1000;

    #[test]
    fn whatsapp_outside_its_window_takes_only_templates() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let p = "+4915112345678";
        let c = inbound(
            &mut s,
            Channel::WhatsApp,
            IdentityKind::Phone,
            p,
            "w1",
            now - 25 * H,
        );
        let e = s
            .queue_reply(c, Channel::WhatsApp, "ann", "hello", now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside WhatsApp's 24-hour window"), "{e}");
        assert!(e.contains("last wrote 25 h ago"), "{e}");
        assert!(e.contains(":template"), "{e}");
        assert_eq!(s.outbox_counts().unwrap(), (0, 0));
        let t = serde_json::json!({"template": {"name": "order_update", "language": "en",
                                                 "params": ["Ana"]}});
        let m = s
            .queue_reply_with(c, Channel::WhatsApp, "ann", "Hi Ana", now, None, Some(&t))
            .unwrap();
        assert_eq!(s.outbox_counts().unwrap(), (1, 0));
        assert!(s.message(m).is_ok());
        // The customer writes again: the window is open for 24 hours.
        inbound(
            &mut s,
            Channel::WhatsApp,
            IdentityKind::Phone,
            p,
            "w2",
            now - H,
        );
        assert_eq!(
            s.reply_window(
                s.conversation(c).unwrap().contact_id,
                Channel::WhatsApp,
                now
            )
            .unwrap(),
            Window::Open {
                closes_at: now + 23 * H
            }
        );
        s.queue_reply(c, Channel::WhatsApp, "ann", "free text", now)
            .unwrap();
        // A template is WhatsApp's only.
        let e = s
            .queue_reply_with(c, Channel::Sms, "ann", "Hi", now, None, Some(&t))
            .unwrap_err()
            .to_string();
        assert!(e.contains("templates are WhatsApp's"), "{e}");
    }

    #[test]
    fn instagram_takes_human_replies_for_seven_days_then_nothing() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let c = inbound(
            &mut s,
            Channel::Instagram,
            IdentityKind::Instagram,
            "1789",
            "i1",
            now - 3 * 24 * H,
        );
        let contact = s.conversation(c).unwrap().contact_id;
        assert_eq!(
            s.reply_window(contact, Channel::Instagram, now).unwrap(),
            Window::HumanAgent {
                closes_at: now + 4 * 24 * H
            }
        );
        s.queue_reply(c, Channel::Instagram, "ann", "sorry for the wait", now)
            .unwrap();
        let later = now + 5 * 24 * H;
        let e = s
            .queue_reply(c, Channel::Instagram, "ann", "hello?", later)
            .unwrap_err()
            .to_string();
        assert!(e.contains("within 7 days"), "{e}");
        assert!(e.contains("8 days ago"), "{e}");
        assert_eq!(
            s.reply_window(contact, Channel::Email, now).unwrap(),
            Window::Unlimited
        );
    }

    #[test]
    fn an_opted_out_number_and_a_call_log_refuse_replies_and_the_default_skips_them() {
        let mut s = Store::open_in_memory().unwrap();
        let now = now_millis();
        let p = "+4915112345678";
        inbound(
            &mut s,
            Channel::WhatsApp,
            IdentityKind::Phone,
            p,
            "w1",
            now - 2 * H,
        );
        let c = inbound(&mut s, Channel::Sms, IdentityKind::Phone, p, "s1", now - H);
        let tx = s.write().unwrap();
        tx.set_consent(
            Channel::Sms,
            IdentityKind::Phone,
            p,
            true,
            "STOP",
            "sms",
            now - H,
        )
        .unwrap();
        tx.commit().unwrap();
        let e = s
            .queue_reply(c, Channel::Sms, "ann", "hello", now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("opted out of SMS (STOP 1 h ago)"), "{e}");
        // The customer last wrote on SMS, where they opted out: replies default to WhatsApp.
        assert_eq!(s.reply_channel(c).unwrap(), Channel::WhatsApp);
        // A call log: not answerable, and never the default.
        let c2 = inbound(
            &mut s,
            Channel::Phone,
            IdentityKind::Phone,
            p,
            "call-1",
            now - 60_000,
        );
        assert_eq!(c2, c);
        let e = s
            .queue_reply(c, Channel::Phone, "ann", "hello", now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a call log cannot be answered"), "{e}");
        assert_eq!(s.reply_channel(c).unwrap(), Channel::WhatsApp);
    }

    #[test]
    fn spans_read_like_people_say_them() {
        assert_eq!(span_text(0), "0 min");
        assert_eq!(span_text(1), "1 min");
        assert_eq!(span_text(59 * 60_000), "59 min");
        assert_eq!(span_text(60 * 60_000), "1 h");
        assert_eq!(span_text(47 * H), "47 h");
        assert_eq!(span_text(48 * H), "2 days");
    }
}
