//! The webhooks queue (`webhook_deliveries`, see `schema::V15`): the `webhooks`
//! derivation follows the events table from its durable cursor and writes one delivery per
//! (endpoint, event) whose kind the endpoint asked for, in the transaction that moves the
//! cursor (a crash neither loses an event nor queues it twice). The server's dispatcher claims
//! due rows, posts them, and records each attempt here.

use super::Result;
use super::Store;
use super::derivations::{cursor, set_cursor};
use crate::model::{EventId, Millis};
use crate::webhooks::{CONTACT_CREATED, EventFilter, delivery_id, rfc3339};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const CURSOR: &str = "webhooks";

/// Events read per transaction.
const BATCH: usize = 500;

/// One row due for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub row: i64,
    pub delivery: String,
    pub kind: String,
    pub body: String,
    /// Attempts before this one.
    pub attempts: i64,
    pub created_at: Millis,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered { status: u16 },
    /// Try again at `next_at`.
    Retry {
        status: Option<u16>,
        error: String,
        next_at: Millis,
    },
    /// Given up (refused by the receiver, or retried for too long).
    Failed { status: Option<u16>, error: String },
}

/// One endpoint's queue, for `braid webhooks status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCounts {
    pub delivered: i64,
    /// Waiting for their first attempt.
    pub pending: i64,
    /// Failed at least once, to be retried.
    pub failing: i64,
    /// Given up or refused (retriable by hand).
    pub failed: i64,
    pub last_success: Option<Millis>,
    /// The newest attempt that failed: when, its HTTP status, its error.
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    pub last_error_status: Option<u16>,
    /// When the next retry of a failing delivery is due.
    pub next_retry: Option<Millis>,
}

/// An event as the derivation reads it.
struct Ev {
    id: EventId,
    at: Millis,
    actor: String,
    kind: String,
    conversation: Option<i64>,
    contact: Option<i64>,
    message: Option<i64>,
    data: Option<String>,
}

/// The `data` object of an event's payload.
fn payload_data(conn: &Connection, e: &Ev, kind: &str) -> Result<Value> {
    let details: Value = e
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let mut data = json!({
        "event_id": e.id.0,
        "actor": e.actor,
        "conversation_id": e.conversation,
        "contact_id": e.contact,
        "message_id": e.message,
        "details": details,
    });
    if kind == CONTACT_CREATED {
        if let Some(c) = e.contact {
            let name: Option<String> = conn
                .prepare_cached("SELECT name FROM contacts WHERE id = ?1")?
                .query_row([c], |r| r.get(0))
                .optional()?;
            data["details"] = json!({ "name": name });
        }
    } else if let Some(m) = e.message
        && matches!(kind, "message_in" | "message_out" | "note")
    {
        let msg = conn
            .prepare_cached(
                "SELECT channel, direction, author, subject, body, created_at
                 FROM messages WHERE id = ?1",
            )?
            .query_row([m], |r| {
                Ok(json!({
                    "id": m,
                    "channel": r.get::<_, String>(0)?,
                    "direction": r.get::<_, String>(1)?,
                    "author": r.get::<_, String>(2)?,
                    "subject": r.get::<_, Option<String>>(3)?,
                    "body": r.get::<_, String>(4)?,
                    "created_at": rfc3339(r.get::<_, i64>(5)?),
                }))
            })
            .optional()?;
        if let Some(msg) = msg {
            data["message"] = msg;
        }
    }
    Ok(data)
}

/// The body one endpoint receives for one event.
pub fn payload(delivery: &str, kind: &str, at: Millis, data: &Value) -> String {
    json!({ "id": delivery, "event": kind, "at": rfc3339(at), "data": data }).to_string()
}

/// Whether a `conversation_created` event is its contact's first conversation (a new contact).
fn first_conversation(conn: &Connection, e: &Ev) -> Result<bool> {
    let (Some(conv), Some(contact)) = (e.conversation, e.contact) else {
        return Ok(false);
    };
    let earlier: Option<i64> = conn
        .prepare_cached("SELECT id FROM conversations WHERE contact_id = ?1 AND id < ?2 LIMIT 1")?
        .query_row((contact, conv), |r| r.get(0))
        .optional()?;
    Ok(earlier.is_none())
}

/// GDPR forget (`braid contact forget`): drop every queued or kept delivery about `contact`
/// (their bodies hold message texts and names), inside the forget's transaction. Returns how
/// many rows went.
pub fn forget_contact(conn: &Connection, contact: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM webhook_deliveries
         WHERE json_valid(body) AND json_extract(body, '$.data.contact_id') = ?1",
        [contact],
    )?)
}

impl Store {
    /// Queue the deliveries the events after the `webhooks` cursor call for, for `endpoints`
    /// (name, filter), in transactions of one batch each (rows and cursor together). A store
    /// without the cursor starts at its newest event (an endpoint receives what happens after
    /// it is configured, never the past). Returns how many deliveries were queued.
    pub fn derive_webhooks(
        &mut self,
        endpoints: &[(String, EventFilter)],
        now: Millis,
    ) -> Result<usize> {
        let mut queued = 0;
        loop {
            let (n, more) = self.write_with(|tx| {
                let Some(from) = cursor(tx, CURSOR)? else {
                    let newest: Option<i64> =
                        tx.query_row("SELECT max(id) FROM events", [], |r| r.get(0))?;
                    set_cursor(tx, CURSOR, EventId(newest.unwrap_or(0)))?;
                    return Ok((0, false));
                };
                let evs: Vec<Ev> = tx
                    .prepare_cached(
                        "SELECT id, at, actor, kind, conversation_id, contact_id, message_id, data
                         FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                    )?
                    .query_map((from, BATCH as i64), |r| {
                        Ok(Ev {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            kind: r.get(3)?,
                            conversation: r.get(4)?,
                            contact: r.get(5)?,
                            message: r.get(6)?,
                            data: r.get(7)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let Some(last) = evs.last().map(|e| e.id) else {
                    return Ok((0, false));
                };
                let mut n = 0;
                if !endpoints.is_empty() {
                    let mut insert = tx.prepare_cached(
                        "INSERT OR IGNORE INTO webhook_deliveries(endpoint, event_id, kind,
                            delivery, body, created_at, next_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    )?;
                    for e in &evs {
                        let mut kinds: Vec<&str> = vec![e.kind.as_str()];
                        if e.kind == "conversation_created"
                            && endpoints.iter().any(|(_, f)| f.matches(CONTACT_CREATED))
                            && first_conversation(tx, e)?
                        {
                            kinds.push(CONTACT_CREATED);
                        }
                        for kind in kinds {
                            let targets: Vec<&str> = endpoints
                                .iter()
                                .filter(|(_, f)| f.matches(kind))
                                .map(|(name, _)| name.as_str())
                                .collect();
                            if targets.is_empty() {
                                continue;
                            }
                            let data = payload_data(tx, e, kind)?;
                            for name in targets {
                                let id = delivery_id(name, e.id.0, kind);
                                let body = payload(&id, kind, e.at, &data);
                                n += insert.execute((name, e.id, kind, &id, &body, now))?;
                            }
                        }
                    }
                }
                set_cursor(tx, CURSOR, last)?;
                Ok((n, evs.len() == BATCH))
            })?;
            queued += n;
            if !more {
                return Ok(queued);
            }
        }
    }

    /// A dispatcher starting: attempts a crashed one left in flight become due again (they
    /// may have reached the receiver: at least once, never lost).
    pub fn webhook_requeue_sending(&mut self, now: Millis) -> Result<usize> {
        self.write_with(|tx| {
            Ok(tx.execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_at = min(next_at, ?1)
                 WHERE state = 'sending'",
                [now],
            )?)
        })
    }

    /// Take up to `limit` of `endpoint`'s due deliveries, oldest first, marking them
    /// `sending`.
    pub fn webhook_claim(
        &mut self,
        endpoint: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.write_with(|tx| {
            let rows: Vec<Delivery> = tx
                .prepare_cached(
                    "SELECT id, delivery, kind, body, attempts, created_at FROM webhook_deliveries
                     WHERE endpoint = ?1 AND state = 'pending' AND next_at <= ?2
                     ORDER BY next_at, id LIMIT ?3",
                )?
                .query_map((endpoint, now, limit as i64), |r| {
                    Ok(Delivery {
                        row: r.get(0)?,
                        delivery: r.get(1)?,
                        kind: r.get(2)?,
                        body: r.get(3)?,
                        attempts: r.get(4)?,
                        created_at: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut mark =
                tx.prepare_cached("UPDATE webhook_deliveries SET state = 'sending' WHERE id = ?1")?;
            for d in &rows {
                mark.execute([d.row])?;
            }
            Ok(rows)
        })
    }

    /// Record attempts (one transaction for the lot).
    pub fn webhook_record(&mut self, results: &[(i64, Outcome)], now: Millis) -> Result<()> {
        self.write_with(|tx| {
            let mut done = tx.prepare_cached(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                    last_attempt_at = ?2, last_status = ?3, delivered_at = ?2
                 WHERE id = ?1",
            )?;
            let mut retry = tx.prepare_cached(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = attempts + 1,
                    last_attempt_at = ?2, last_status = ?3, last_error = ?4, next_at = ?5
                 WHERE id = ?1",
            )?;
            let mut failed = tx.prepare_cached(
                "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1,
                    last_attempt_at = ?2, last_status = ?3, last_error = ?4
                 WHERE id = ?1",
            )?;
            for (row, outcome) in results {
                match outcome {
                    Outcome::Delivered { status } => {
                        done.execute((row, now, status))?;
                    }
                    Outcome::Retry {
                        status,
                        error,
                        next_at,
                    } => {
                        retry.execute((row, now, status, error, next_at))?;
                    }
                    Outcome::Failed { status, error } => {
                        failed.execute((row, now, status, error))?;
                    }
                }
            }
            Ok(())
        })
    }

    /// When `endpoint`'s next pending delivery is due (None: nothing pending).
    pub fn webhook_next_due(&self, endpoint: &str) -> Result<Option<Millis>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT min(next_at) FROM webhook_deliveries
                 WHERE endpoint = ?1 AND state = 'pending'",
            )?
            .query_row([endpoint], |r| r.get(0))?)
    }

    /// `endpoint`'s queue in numbers, with its last success and last error.
    pub fn webhook_counts(&self, endpoint: &str) -> Result<WebhookCounts> {
        let mut c = WebhookCounts::default();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT state, attempts > 0, count(*) FROM webhook_deliveries
                 WHERE endpoint = ?1 GROUP BY 1, 2",
            )?;
            let rows = stmt.query_map([endpoint], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (state, tried, n) = row?;
                match (state.as_str(), tried) {
                    ("delivered", _) => c.delivered += n,
                    ("failed", _) => c.failed += n,
                    (_, false) => c.pending += n,
                    (_, true) => c.failing += n,
                }
            }
        }
        c.last_success = self
            .conn
            .prepare_cached(
                "SELECT max(delivered_at) FROM webhook_deliveries
                 WHERE endpoint = ?1 AND state = 'delivered'",
            )?
            .query_row([endpoint], |r| r.get(0))?;
        let last: Option<(Option<String>, Option<Millis>, Option<u16>)> = self
            .conn
            .prepare_cached(
                "SELECT last_error, last_attempt_at, last_status FROM webhook_deliveries
                 WHERE endpoint = ?1 AND state IN ('pending', 'sending', 'failed')
                   AND last_error IS NOT NULL
                 ORDER BY last_attempt_at DESC LIMIT 1",
            )?
            .query_row([endpoint], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((e, at, status)) = last {
            c.last_error = e;
            c.last_error_at = at;
            c.last_error_status = status;
        }
        c.next_retry = self
            .conn
            .prepare_cached(
                "SELECT min(next_at) FROM webhook_deliveries
                 WHERE endpoint = ?1 AND state = 'pending' AND attempts > 0",
            )?
            .query_row([endpoint], |r| r.get(0))?;
        Ok(c)
    }

    /// `braid webhooks retry NAME`: `endpoint`'s failed deliveries are due again now (their
    /// attempts are kept; the give-up clock starts again).
    pub fn webhook_retry_failed(&mut self, endpoint: &str, now: Millis) -> Result<usize> {
        self.write_with(|tx| {
            Ok(tx.execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_at = ?2, created_at = ?2
                 WHERE endpoint = ?1 AND state = 'failed'",
                (endpoint, now),
            )?)
        })
    }

    /// Forget deliveries done before `before` (the dispatcher keeps 30 days: `status` counts
    /// what was delivered in them). Pending and failed rows stay whatever their age.
    pub fn webhook_prune(&mut self, before: Millis) -> Result<usize> {
        self.write_with(|tx| {
            Ok(tx.execute(
                "DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ?1",
                [before],
            )?)
        })
    }

    /// Every delivery of `endpoint` (tests, the benchmark): (delivery id, state, attempts).
    pub fn webhook_rows(&self, endpoint: &str) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT delivery, state, attempts FROM webhook_deliveries WHERE endpoint = ?1
             ORDER BY id",
        )?;
        let rows = stmt.query_map([endpoint], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, EventRefs};

    fn store() -> Store {
        Store::open_in_memory().unwrap()
    }

    fn ev(s: &mut Store, kind: EventKind, data: Value) {
        s.write_with(|tx| {
            super::super::events::append(
                tx,
                1_000,
                "ann",
                kind,
                EventRefs::default(),
                Some(&data),
            )?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_derivation_starts_at_the_newest_event_and_queues_what_filters_let_through() {
        let mut s = store();
        ev(&mut s, EventKind::StatusChanged, json!({"to": "resolved"}));
        let eps = vec![
            (
                "crm".to_string(),
                EventFilter::Kinds(vec!["status_changed".into()]),
            ),
            ("all".to_string(), EventFilter::All),
        ];
        // The first pass only places the cursor: the past is not delivered.
        assert_eq!(s.derive_webhooks(&eps, 5).unwrap(), 0);
        ev(&mut s, EventKind::StatusChanged, json!({"to": "open"}));
        ev(&mut s, EventKind::TagAdded, json!({"tag": "x"}));
        assert_eq!(s.derive_webhooks(&eps, 5).unwrap(), 3);
        assert_eq!(s.webhook_rows("crm").unwrap().len(), 1);
        assert_eq!(s.webhook_rows("all").unwrap().len(), 2);
        // Nothing is queued twice.
        assert_eq!(s.derive_webhooks(&eps, 5).unwrap(), 0);
        let d = s.webhook_claim("crm", 5, 10).unwrap();
        assert_eq!(d.len(), 1);
        let body: Value = serde_json::from_str(&d[0].body).unwrap();
        assert_eq!(body["event"], "status_changed");
        assert_eq!(body["id"], d[0].delivery);
        assert_eq!(body["data"]["details"]["to"], "open");
        assert_eq!(body["at"], "1970-01-01T00:00:01Z");
    }

    #[test]
    fn attempts_move_the_counts() {
        let mut s = store();
        let eps = vec![("crm".to_string(), EventFilter::All)];
        s.derive_webhooks(&eps, 0).unwrap();
        for _ in 0..3 {
            ev(&mut s, EventKind::TagAdded, json!({"tag": "x"}));
        }
        s.derive_webhooks(&eps, 0).unwrap();
        let d = s.webhook_claim("crm", 10, 10).unwrap();
        assert_eq!(d.len(), 3);
        // Claimed rows are not claimed again.
        assert!(s.webhook_claim("crm", 10, 10).unwrap().is_empty());
        s.webhook_record(
            &[
                (d[0].row, Outcome::Delivered { status: 200 }),
                (
                    d[1].row,
                    Outcome::Retry {
                        status: Some(500),
                        error: "HTTP 500".into(),
                        next_at: 99,
                    },
                ),
                (
                    d[2].row,
                    Outcome::Failed {
                        status: Some(410),
                        error: "HTTP 410 Gone".into(),
                    },
                ),
            ],
            20,
        )
        .unwrap();
        let c = s.webhook_counts("crm").unwrap();
        assert_eq!((c.delivered, c.pending, c.failing, c.failed), (1, 0, 1, 1));
        assert_eq!(c.last_success, Some(20));
        assert_eq!(c.next_retry, Some(99));
        assert!(c.last_error.is_some());
        assert_eq!(s.webhook_retry_failed("crm", 30).unwrap(), 1);
        let c = s.webhook_counts("crm").unwrap();
        assert_eq!((c.failing, c.failed), (2, 0));
        // In flight at a crash: due again at the next start.
        let d = s.webhook_claim("crm", 100, 10).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(s.webhook_requeue_sending(100).unwrap(), 2);
        assert_eq!(s.webhook_claim("crm", 100, 10).unwrap().len(), 2);
        // Old deliveries are forgotten; the rest stay.
        assert_eq!(s.webhook_prune(21).unwrap(), 1);
        assert_eq!(s.webhook_rows("crm").unwrap().len(), 2);
        assert_eq!(s.webhook_prune(21).unwrap(), 0);
    }

    #[test]
    fn forgetting_a_contact_drops_their_deliveries() {
        let mut s = store();
        let eps = vec![("crm".to_string(), EventFilter::All)];
        s.derive_webhooks(&eps, 0).unwrap();
        for contact in [7, 8] {
            s.write_with(|tx| {
                super::super::events::append(
                    tx,
                    1_000,
                    "ann",
                    EventKind::ContactUpdated,
                    EventRefs {
                        contact: Some(crate::model::ContactId(contact)),
                        ..Default::default()
                    },
                    None,
                )?;
                Ok(())
            })
            .unwrap();
        }
        s.derive_webhooks(&eps, 0).unwrap();
        assert_eq!(s.webhook_rows("crm").unwrap().len(), 2);
        assert_eq!(s.write_with(|tx| forget_contact(tx, 7)).unwrap(), 1);
        assert_eq!(s.webhook_rows("crm").unwrap().len(), 1);
    }
}
