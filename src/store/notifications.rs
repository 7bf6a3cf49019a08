//! Notifications, per agent: derived from the events table (the one place that sees every
//! change, whoever made it), read newest first by keyset pages, marked read per agent.
//!
//! Rules ([`Store::derive_notifications`]):
//! - a `note` whose body mentions `@name` ([`crate::mentions`]) of a workspace agent other
//!   than its author -> `mention` for that agent, who from then on sees the conversation
//!   whatever its team (a mention is an invitation: see [`super::Scope`]);
//! - an `assigned` event giving the conversation to an agent, by someone else -> `assigned`;
//! - a `message_in` in a conversation assigned to an agent -> `message` for the assignee (the
//!   assignee when it is derived: at once while the server runs);
//! - an `sla_warning` / `sla_breached` (the SLA sweep) -> `sla_warning` / `sla_breach` for the
//!   assignee.
//!
//! The rows and the derivation cursor (`derivations`, row `notifications`) are written in ONE
//! transaction per batch of events: a crash loses nothing (the cursor did not move) and
//! duplicates nothing (`UNIQUE (agent, event_id, kind)` and the cursor moved with the rows).

use super::{Result, Scope, Store, StoreError};
use crate::model::{ConversationId, EventId, MessageId, Millis};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The `derivations` row of the notifications.
const CURSOR: &str = "notifications";
/// Events read per transaction.
const BATCH: usize = 500;
/// The most characters of a message kept as a notification's excerpt.
const EXCERPT: usize = 160;

/// Why an agent is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// `@name` in an internal note.
    Mention,
    /// A conversation was assigned to them by someone else.
    Assigned,
    /// A customer wrote in a conversation assigned to them.
    Message,
    /// A conversation of theirs nears its SLA (the SLA rules write it).
    SlaWarning,
    /// A conversation of theirs breached its SLA.
    SlaBreach,
    /// A task assigned to them is due (derived from its `task_due` event).
    TaskDue,
    /// A workflow rule's `notify` action named them (its `rule_matched` event).
    Rule,
    /// A kind a newer server knows.
    #[serde(other)]
    Other,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Mention => "mention",
            NotificationKind::Assigned => "assigned",
            NotificationKind::Message => "message",
            NotificationKind::SlaWarning => "sla_warning",
            NotificationKind::SlaBreach => "sla_breach",
            NotificationKind::TaskDue => "task_due",
            NotificationKind::Rule => "rule",
            NotificationKind::Other => "other",
        }
    }

    fn from_db(s: &str) -> NotificationKind {
        match s {
            "mention" => NotificationKind::Mention,
            "assigned" => NotificationKind::Assigned,
            "message" => NotificationKind::Message,
            "sla_warning" => NotificationKind::SlaWarning,
            "sla_breach" => NotificationKind::SlaBreach,
            "task_due" => NotificationKind::TaskDue,
            "rule" => NotificationKind::Rule,
            _ => NotificationKind::Other,
        }
    }
}

/// One notification of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRow {
    pub id: i64,
    pub agent: String,
    pub kind: NotificationKind,
    /// The event that caused it.
    pub event_id: EventId,
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    /// Who caused it (the note's author, who assigned; the customer's messages: `ingest`).
    pub actor: String,
    pub at: Millis,
    /// When the agent read it (None: unread).
    pub read_at: Option<Millis>,
    /// The conversation's contact, as it was named then.
    pub contact_name: String,
    /// The start of the note or message (one line), as the agent could see it then.
    #[serde(default)]
    pub excerpt: String,
}

/// Where a page of notifications starts. Pages are newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationPage {
    /// The newest.
    Newest,
    /// The oldest (the page is still newest first: its last row is the oldest of all).
    Oldest,
    /// Older than this id (keyset `before`).
    Before(i64),
    /// Newer than this id.
    After(i64),
}

/// An agent the derivation may notify, and what they can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyAgent {
    pub name: String,
    pub scope: Scope,
}

/// What one derivation pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The notifications it created, oldest first.
    pub rows: Vec<NotificationRow>,
    /// The derivation cursor now.
    pub cursor: EventId,
}

const COLUMNS: &str = "id, agent, kind, event_id, conversation_id, message_id, actor, at, read_at,
     contact_name, excerpt";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRow> {
    let kind: String = r.get(2)?;
    Ok(NotificationRow {
        id: r.get(0)?,
        agent: r.get(1)?,
        kind: NotificationKind::from_db(&kind),
        event_id: r.get(3)?,
        conversation_id: r.get(4)?,
        message_id: r.get(5)?,
        actor: r.get(6)?,
        at: r.get(7)?,
        read_at: r.get(8)?,
        contact_name: r.get(9)?,
        excerpt: r.get(10)?,
    })
}

/// The start of a text as one line of at most [`EXCERPT`] characters.
fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT {
        return flat;
    }
    let mut out: String = flat.chars().take(EXCERPT - 1).collect();
    out.push('…');
    out
}

/// An event's conversation now: its team, its assignee, its contact's name.
type ConversationNow = (Option<String>, Option<String>, String);

fn conversation_of(tx: &Connection, conv: ConversationId) -> Result<Option<ConversationNow>> {
    Ok(tx
        .prepare_cached(
            "SELECT c.team, c.assignee, ct.name FROM conversations c
             JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = ?1",
        )?
        .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

fn message_body(tx: &Connection, id: MessageId) -> Result<Option<String>> {
    Ok(tx
        .prepare_cached("SELECT body FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

fn cursor(tx: &Connection) -> Result<Option<EventId>> {
    super::derivations::cursor(tx, CURSOR)
}

fn set_cursor(tx: &Connection, to: EventId) -> Result<()> {
    super::derivations::set_cursor(tx, CURSOR, to)
}

/// One notification to insert (the event's fields come with it).
struct New<'a> {
    agent: &'a str,
    kind: NotificationKind,
    event: &'a super::EventRow,
    contact_name: &'a str,
    excerpt: &'a str,
}

/// Insert unless it exists; the row when it was new.
fn insert(tx: &Connection, n: &New<'_>) -> Result<Option<NotificationRow>> {
    let added = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO notifications(agent, kind, event_id, conversation_id,
                message_id, actor, at, contact_name, excerpt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute((
            n.agent,
            n.kind.as_str(),
            n.event.id,
            n.event.conversation_id,
            n.event.message_id,
            &n.event.actor,
            n.event.at,
            n.contact_name,
            n.excerpt,
        ))?;
    if added == 0 {
        return Ok(None);
    }
    Ok(Some(NotificationRow {
        id: tx.last_insert_rowid(),
        agent: n.agent.to_string(),
        kind: n.kind,
        event_id: n.event.id,
        conversation_id: n.event.conversation_id,
        message_id: n.event.message_id,
        actor: n.event.actor.clone(),
        at: n.event.at,
        read_at: None,
        contact_name: n.contact_name.to_string(),
        excerpt: n.excerpt.to_string(),
    }))
}

/// The notifications one event causes, inserted.
fn derive_one(
    tx: &Connection,
    e: &super::EventRow,
    agents: &[NotifyAgent],
    names: &[String],
) -> Result<Vec<NotificationRow>> {
    let mut out = Vec::new();
    let known = |name: &str| agents.iter().find(|a| a.name == name);
    if e.kind == "task_due" {
        // The task's assignee, whoever's conversation it is on (a task may have none).
        let data = e
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok());
        let field = |k: &str| {
            data.as_ref()
                .and_then(|v| v.get(k)?.as_str().map(str::to_string))
        };
        let Some(a) = field("assignee").as_deref().and_then(known) else {
            return Ok(out);
        };
        let contact: String = match e.contact_id {
            Some(c) => tx
                .prepare_cached("SELECT name FROM contacts WHERE id = ?1")?
                .query_row([c], |r| r.get(0))
                .optional()?
                .unwrap_or_default(),
            None => String::new(),
        };
        let kind = field("kind").unwrap_or_default();
        let title = field("title").unwrap_or_default();
        out.extend(insert(
            tx,
            &New {
                agent: &a.name,
                kind: NotificationKind::TaskDue,
                event: e,
                contact_name: &contact,
                excerpt: &excerpt(&format!("{kind}: {title}")),
            },
        )?);
        return Ok(out);
    }
    let Some(conv) = e.conversation_id else {
        return Ok(out);
    };
    match e.kind.as_str() {
        "note" => {
            let Some(body) = e.message_id.map(|m| message_body(tx, m)).transpose()? else {
                return Ok(out);
            };
            let Some(body) = body else { return Ok(out) };
            let mentioned = crate::mentions::mentioned(&body, names);
            if mentioned.is_empty() {
                return Ok(out);
            }
            let Some((_, _, contact)) = conversation_of(tx, conv)? else {
                return Ok(out);
            };
            let text = excerpt(&body);
            for name in mentioned {
                let Some(a) = known(name) else { continue };
                // Never yourself. A colleague outside the conversation's team is notified
                // too: the mention opens it to them (the scope counts mentions).
                if a.name == e.actor {
                    continue;
                }
                out.extend(insert(
                    tx,
                    &New {
                        agent: &a.name,
                        kind: NotificationKind::Mention,
                        event: e,
                        contact_name: &contact,
                        excerpt: &text,
                    },
                )?);
            }
        }
        "assigned" => {
            let to = e
                .data
                .as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .and_then(|v| v.get("assignee")?.as_str().map(str::to_string));
            let Some(a) = to.as_deref().and_then(known) else {
                return Ok(out);
            };
            if a.name == e.actor {
                return Ok(out);
            }
            let Some((_, _, contact)) = conversation_of(tx, conv)? else {
                return Ok(out);
            };
            let preview: Option<String> = tx
                .prepare_cached(
                    "SELECT coalesce(subject, last_preview) FROM conversations WHERE id = ?1",
                )?
                .query_row([conv], |r| r.get(0))
                .optional()?
                .flatten();
            out.extend(insert(
                tx,
                &New {
                    agent: &a.name,
                    kind: NotificationKind::Assigned,
                    event: e,
                    contact_name: &contact,
                    excerpt: &excerpt(preview.as_deref().unwrap_or_default()),
                },
            )?);
        }
        "rule_matched" => {
            // A rule's `notify` actions: each named agent hears the rule's message.
            let data = e
                .data
                .as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok());
            let Some(list) = data
                .as_ref()
                .and_then(|v| v.get("notify")?.as_array().cloned())
            else {
                return Ok(out);
            };
            if list.is_empty() {
                return Ok(out);
            }
            let Some((_, _, contact)) = conversation_of(tx, conv)? else {
                return Ok(out);
            };
            for n in list {
                let agent = n.get("agent").and_then(|a| a.as_str()).unwrap_or_default();
                let Some(a) = known(agent) else { continue };
                let message = n
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default();
                out.extend(insert(
                    tx,
                    &New {
                        agent: &a.name,
                        kind: NotificationKind::Rule,
                        event: e,
                        contact_name: &contact,
                        excerpt: &excerpt(message),
                    },
                )?);
            }
        }
        "sla_warning" | "sla_breached" => {
            // The assignee hears that their conversation nears or passed its deadline.
            let Some((_, Some(assignee), contact)) = conversation_of(tx, conv)? else {
                return Ok(out);
            };
            let Some(a) = known(&assignee) else {
                return Ok(out);
            };
            let data = e
                .data
                .as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok());
            let field = |k: &str| {
                data.as_ref()
                    .and_then(|v| v.get(k)?.as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            let (kind, what) = if e.kind == "sla_warning" {
                (NotificationKind::SlaWarning, "due soon")
            } else {
                (NotificationKind::SlaBreach, "breached")
            };
            let text = format!(
                "SLA {} {what}: {}",
                field("policy"),
                field("target").replace('_', " ")
            );
            out.extend(insert(
                tx,
                &New {
                    agent: &a.name,
                    kind,
                    event: e,
                    contact_name: &contact,
                    excerpt: &text,
                },
            )?);
        }
        "message_in" => {
            let Some((_, Some(assignee), contact)) = conversation_of(tx, conv)? else {
                return Ok(out);
            };
            let Some(a) = known(&assignee) else {
                return Ok(out);
            };
            let body = match e.message_id {
                Some(m) => message_body(tx, m)?.unwrap_or_default(),
                None => String::new(),
            };
            out.extend(insert(
                tx,
                &New {
                    agent: &a.name,
                    kind: NotificationKind::Message,
                    event: e,
                    contact_name: &contact,
                    excerpt: &excerpt(&body),
                },
            )?);
        }
        _ => {}
    }
    Ok(out)
}

impl Store {
    /// Derive the notifications of the events after the derivation cursor, in batches of
    /// one transaction each (rows and cursor together), until caught up. A store without a
    /// cursor yet (new, or upgraded to v8) starts at its newest event: nothing of the history
    /// is notified. Reads every event whatever this connection's scope (`agents` carry each
    /// agent's own).
    pub fn derive_notifications(&mut self, agents: &[NotifyAgent]) -> Result<Derived> {
        let names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
        let mut done = Derived {
            rows: Vec::new(),
            cursor: EventId(0),
        };
        loop {
            let (rows, cursor, more) = self.write_with(|tx| {
                let Some(from) = cursor(tx)? else {
                    let newest: Option<i64> =
                        tx.query_row("SELECT max(id) FROM events", [], |r| r.get(0))?;
                    let at = EventId(newest.unwrap_or(0));
                    set_cursor(tx, at)?;
                    return Ok((Vec::new(), at, false));
                };
                let events: Vec<super::EventRow> = {
                    let mut stmt = tx.prepare_cached(&format!(
                        "SELECT {} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                        super::events::EVENT_COLUMNS
                    ))?;
                    stmt.query_map((from, BATCH as i64), super::events::event_row)?
                        .collect::<rusqlite::Result<_>>()?
                };
                let Some(last) = events.last().map(|e| e.id) else {
                    return Ok((Vec::new(), from, false));
                };
                let mut rows = Vec::new();
                for e in &events {
                    rows.extend(derive_one(tx, e, agents, &names)?);
                }
                set_cursor(tx, last)?;
                Ok((rows, last, events.len() == BATCH))
            })?;
            done.rows.extend(rows);
            done.cursor = cursor;
            if !more {
                return Ok(done);
            }
        }
    }

    /// The derivation cursor (None: never derived).
    pub fn notifications_cursor(&self) -> Result<Option<EventId>> {
        cursor(self.conn())
    }

    /// A page of `agent`'s notifications, newest first, and whether more exist beyond it
    /// (older for Newest/Before, newer for Oldest/After). One range of an index, whatever
    /// the number of rows.
    pub fn notifications_page(
        &self,
        agent: &str,
        page: NotificationPage,
        limit: usize,
        unread_only: bool,
    ) -> Result<(Vec<NotificationRow>, bool)> {
        let unread = if unread_only {
            " AND read_at IS NULL"
        } else {
            ""
        };
        let (cond, order) = match page {
            NotificationPage::Newest => ("", "DESC"),
            NotificationPage::Oldest => ("", "ASC"),
            NotificationPage::Before(_) => (" AND id < ?3", "DESC"),
            NotificationPage::After(_) => (" AND id > ?3", "ASC"),
        };
        let key = match page {
            NotificationPage::Before(k) | NotificationPage::After(k) => k,
            _ => 0,
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE agent = ?1{unread}{cond}
             ORDER BY id {order} LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let want = limit as i64 + 1;
        let mut rows: Vec<NotificationRow> = if cond.is_empty() {
            stmt.query_map((agent, want), row)?
                .collect::<rusqlite::Result<_>>()?
        } else {
            stmt.query_map((agent, want, key), row)?
                .collect::<rusqlite::Result<_>>()?
        };
        let more = rows.len() > limit;
        rows.truncate(limit);
        if order == "ASC" {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// How many notifications `agent` has not read.
    pub fn unread_notifications(&self, agent: &str) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM notifications WHERE agent = ?1 AND read_at IS NULL",
            )?
            .query_row([agent], |r| r.get(0))?)
    }

    /// Mark `agent`'s notifications read: these ids (others' ids are ignored), or all of them.
    /// Returns the ids that were unread and are read now.
    pub fn mark_notifications_read(
        &mut self,
        agent: &str,
        ids: &[i64],
        all: bool,
        at: Millis,
    ) -> Result<Vec<i64>> {
        if !all && ids.is_empty() {
            return Err(StoreError::Invalid(
                "mark read: give the notification ids, or all".into(),
            ));
        }
        self.write_with(|tx| {
            let mut marked = Vec::new();
            if all {
                let mut stmt = tx.prepare_cached(
                    "UPDATE notifications SET read_at = ?2
                     WHERE agent = ?1 AND read_at IS NULL RETURNING id",
                )?;
                let rows = stmt.query_map((agent, at), |r| r.get::<_, i64>(0))?;
                for r in rows {
                    marked.push(r?);
                }
            } else {
                let mut stmt = tx.prepare_cached(
                    "UPDATE notifications SET read_at = ?3
                     WHERE id = ?1 AND agent = ?2 AND read_at IS NULL",
                )?;
                for id in ids {
                    if stmt.execute((id, agent, at))? == 1 {
                        marked.push(*id);
                    }
                }
            }
            marked.sort_unstable();
            Ok(marked)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::Claim;
    use crate::ingest::{self, Inbound, Ingested};
    use crate::model::{Channel, ContactId, Direction, IdentityKind};

    fn inbound(n: usize, who: &str) -> Inbound {
        Inbound {
            channel: Channel::Email,
            account: String::new(),
            external_id: format!("<m{n}-{who}@example.com>"),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Email, format!("{who}@example.com")),
            linked: vec![],
            customer_name: Some(who.into()),
            author: None,
            subject: Some("Refund".into()),
            body: format!("message {n} from {who}"),
            sent_at: 1_000 + n as i64,
            meta: None,
            cursor: None,
        }
    }

    fn ingest(store: &mut Store, n: usize, who: &str) -> (ConversationId, ContactId) {
        match ingest::ingest(store, &inbound(n, who), &ingest::Settings::default()).unwrap() {
            Ingested::Stored {
                conversation,
                contact,
                ..
            } => (conversation, contact),
            other => panic!("{other:?}"),
        }
    }

    fn agents() -> Vec<NotifyAgent> {
        vec![
            NotifyAgent {
                name: "alice".into(),
                scope: Scope::all("alice"),
            },
            NotifyAgent {
                name: "bob".into(),
                scope: Scope::teams("bob", ["support"]),
            },
            NotifyAgent {
                name: "carol".into(),
                scope: Scope::teams("carol", ["sales"]),
            },
        ]
    }

    /// A store with a conversation and the derivation cursor set (at the newest event).
    fn setup() -> (Store, ConversationId) {
        let mut s = Store::open_in_memory().unwrap();
        let (c, _) = ingest(&mut s, 1, "ann");
        assert!(s.derive_notifications(&agents()).unwrap().rows.is_empty());
        (s, c)
    }

    fn kinds(d: &Derived) -> Vec<(&str, NotificationKind)> {
        d.rows.iter().map(|r| (r.agent.as_str(), r.kind)).collect()
    }

    #[test]
    fn a_mention_notifies_the_mentioned_agents_only() {
        let (mut s, c) = setup();
        s.add_note(c, "alice", "@bob and @CAROL: see this. @alice @zed", 2_000)
            .unwrap();
        // Bob and carol are mentioned, alice wrote it, zed is nobody. The conversation has
        // no team: everyone sees it.
        let d = s.derive_notifications(&agents()).unwrap();
        assert_eq!(
            kinds(&d),
            [
                ("bob", NotificationKind::Mention),
                ("carol", NotificationKind::Mention)
            ]
        );
        let r = &d.rows[0];
        assert_eq!(r.actor, "alice");
        assert_eq!(r.conversation_id, Some(c));
        assert!(r.message_id.is_some());
        assert_eq!(r.contact_name, "ann");
        assert!(r.excerpt.starts_with("@bob and @CAROL"), "{}", r.excerpt);
        assert_eq!(s.unread_notifications("bob").unwrap(), 1);
        assert_eq!(s.unread_notifications("alice").unwrap(), 0);
        // An address is not a mention.
        s.add_note(c, "alice", "mail bob@example.com", 2_001)
            .unwrap();
        assert!(s.derive_notifications(&agents()).unwrap().rows.is_empty());
    }

    #[test]
    fn a_mention_outside_the_agents_teams_notifies_and_opens_the_conversation_to_them() {
        let (mut s, c) = setup();
        s.set_conversation_team(c, Some("sales"), "alice", 1_500)
            .unwrap();
        let bob = agents()[1].scope.clone();
        assert!(!bob.allows(Some("sales"), None), "bob is not in sales");
        s.set_scope(bob.clone()).unwrap();
        assert!(s.conversation(c).is_err());
        s.set_scope(Scope::all("alice")).unwrap();
        s.add_note(c, "alice", "@bob @carol", 2_000).unwrap();
        let d = s.derive_notifications(&agents()).unwrap();
        assert_eq!(
            kinds(&d),
            [
                ("bob", NotificationKind::Mention),
                ("carol", NotificationKind::Mention)
            ]
        );
        s.set_scope(bob).unwrap();
        assert_eq!(
            s.conversation(c).unwrap().id,
            c,
            "the mention opened it to bob"
        );
    }

    #[test]
    fn assignment_by_someone_else_and_customer_messages_to_the_assignee() {
        let (mut s, c) = setup();
        s.assign(c, Some("bob"), "alice", 2_000).unwrap();
        s.assign(c, Some("carol"), "carol", 2_001).unwrap(); // took it herself: nothing
        s.assign(c, Some("bob"), "carol", 2_002).unwrap();
        let d = s.derive_notifications(&agents()).unwrap();
        assert_eq!(
            kinds(&d),
            [
                ("bob", NotificationKind::Assigned),
                ("bob", NotificationKind::Assigned)
            ]
        );
        assert_eq!(d.rows[0].actor, "alice");
        assert_eq!(d.rows[0].excerpt, "Refund");
        // The customer writes again: the assignee hears of it; an unassigned one tells nobody.
        ingest(&mut s, 2, "ann");
        let (other, _) = ingest(&mut s, 3, "ben");
        let d = s.derive_notifications(&agents()).unwrap();
        assert_eq!(kinds(&d), [("bob", NotificationKind::Message)]);
        assert_eq!(d.rows[0].excerpt, "message 2 from ann");
        assert_ne!(d.rows[0].conversation_id, Some(other));
        // Unassigned, then a message: nobody.
        s.assign(c, None, "alice", 3_000).unwrap();
        ingest(&mut s, 4, "ann");
        assert!(s.derive_notifications(&agents()).unwrap().rows.is_empty());
    }

    #[test]
    fn the_cursor_starts_at_the_newest_event_and_derivation_is_idempotent() {
        let mut s = Store::open_in_memory().unwrap();
        let (c, _) = ingest(&mut s, 1, "ann");
        s.add_note(c, "alice", "@bob before the upgrade", 1_000)
            .unwrap();
        // No cursor yet (a store upgraded to v8): the history is not notified.
        assert_eq!(s.notifications_cursor().unwrap(), None);
        let d = s.derive_notifications(&agents()).unwrap();
        assert!(d.rows.is_empty());
        assert_eq!(d.cursor, s.last_event_id().unwrap());
        assert_eq!(s.notifications_cursor().unwrap(), Some(d.cursor));

        s.add_note(c, "alice", "@bob after", 2_000).unwrap();
        let cursor_before = s.notifications_cursor().unwrap().unwrap();
        let d = s.derive_notifications(&agents()).unwrap();
        assert_eq!(d.rows.len(), 1);
        // Nothing new: nothing derived, and deriving the same event again (a crash between
        // the insert and a cursor write cannot happen, but a second server could) adds
        // nothing.
        assert!(s.derive_notifications(&agents()).unwrap().rows.is_empty());
        s.write_with(|tx| set_cursor(tx, cursor_before)).unwrap();
        assert!(s.derive_notifications(&agents()).unwrap().rows.is_empty());
        let (all, _) = s
            .notifications_page("bob", NotificationPage::Newest, 10, false)
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].excerpt, "@bob after");
    }

    #[test]
    fn a_large_backlog_derives_in_batches() {
        let (mut s, c) = setup();
        s.assign(c, Some("bob"), "alice", 1_500).unwrap();
        let tx = s.write().unwrap();
        for n in 0..(BATCH * 2 + 7) {
            ingest::ingest_in(
                &tx,
                &inbound(10 + n, "ann"),
                &ingest::Settings::default(),
                1,
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let d = s.derive_notifications(&agents()).unwrap();
        assert_eq!(d.rows.len(), 1 + BATCH * 2 + 7);
        assert_eq!(d.cursor, s.last_event_id().unwrap());
        assert!(d.rows.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn pages_are_newest_first_by_keyset_and_read_state_is_per_agent() {
        let (mut s, c) = setup();
        for i in 0..25 {
            s.add_note(c, "alice", &format!("@bob @carol number {i}"), 2_000 + i)
                .unwrap();
        }
        s.derive_notifications(&agents()).unwrap();
        let (p1, more) = s
            .notifications_page("bob", NotificationPage::Newest, 10, false)
            .unwrap();
        assert!(more);
        assert_eq!(p1[0].excerpt, "@bob @carol number 24");
        assert!(p1.windows(2).all(|w| w[0].id > w[1].id));
        let (p2, _) = s
            .notifications_page("bob", NotificationPage::Before(p1[9].id), 10, false)
            .unwrap();
        assert_eq!(p2[0].excerpt, "@bob @carol number 14");
        let (p3, more) = s
            .notifications_page("bob", NotificationPage::Before(p2[9].id), 10, false)
            .unwrap();
        assert_eq!(p3.len(), 5);
        assert!(!more);
        let (back, more) = s
            .notifications_page("bob", NotificationPage::After(p3[0].id), 10, false)
            .unwrap();
        assert!(more);
        assert_eq!(back, p2);
        let (oldest, more) = s
            .notifications_page("bob", NotificationPage::Oldest, 3, false)
            .unwrap();
        assert!(more);
        assert_eq!(oldest[2].excerpt, "@bob @carol number 0");
        assert!(oldest.windows(2).all(|w| w[0].id > w[1].id));

        // Bob reads two and then all; carol's stay unread. Bob cannot mark carol's.
        let carol_first = s
            .notifications_page("carol", NotificationPage::Newest, 1, false)
            .unwrap()
            .0[0]
            .id;
        let marked = s
            .mark_notifications_read("bob", &[p1[0].id, p1[1].id, carol_first], false, 5)
            .unwrap();
        assert_eq!(marked.len(), 2);
        assert_eq!(s.unread_notifications("bob").unwrap(), 23);
        let (unread, _) = s
            .notifications_page("bob", NotificationPage::Newest, 100, true)
            .unwrap();
        assert_eq!(unread.len(), 23);
        assert!(unread.iter().all(|r| r.read_at.is_none()));
        assert_eq!(
            s.mark_notifications_read("bob", &[], true, 6)
                .unwrap()
                .len(),
            23
        );
        assert_eq!(s.unread_notifications("bob").unwrap(), 0);
        assert_eq!(s.unread_notifications("carol").unwrap(), 25);
        assert!(s.mark_notifications_read("bob", &[], false, 7).is_err());
    }
}
