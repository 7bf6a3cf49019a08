//! The append-only events table: the audit log (who did what, when) and the change feed that
//! every other process follows to refresh what it shows.

use super::Result;
use crate::model::{ContactId, ConversationId, EventId, MessageId, Millis};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// What happened. The text form is what the table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    MessageIn,
    MessageOut,
    Note,
    DeliveryChanged,
    Assigned,
    StatusChanged,
    PriorityChanged,
    TagAdded,
    TagRemoved,
    ConversationCreated,
    IdentityLinked,
    ContactsMerged,
    ContactUpdated,
    Imported,
    /// The conversation moved to another team (or to none).
    TeamChanged,
    /// An action the actor's role or teams did not allow: nothing changed.
    Refused,
    /// A rule (or an agent) put the conversation under an SLA policy.
    SlaApplied,
    /// An SLA deadline is near (the policy's warning time before it).
    SlaWarning,
    /// An SLA deadline passed without the reply or resolution it asked for.
    SlaBreached,
    /// A to-do on a contact or conversation was created.
    TaskCreated,
    /// A task's due time arrived while it was still open.
    TaskDue,
    /// A task was done or cancelled (by hand or by an event, e.g. a call log).
    TaskClosed,
    /// A workflow rule matched (its actions follow as events by `rule:ID`).
    RuleMatched,
    /// An agent undid their last change (`u`); the data says what was restored.
    Undone,
    /// A scheduled reply was cancelled before it went out.
    ReplyCancelled,
    /// A satisfaction survey went to the customer (data: `channel`).
    CsatSent,
    /// The customer answered the survey (data: `score` 1-5, `comment`, `channel`).
    CsatAnswered,
    /// A contact merge was taken back (data: `merge`, `survivor`, `absorbed`).
    ContactsUnmerged,
    /// Two conversations of one person became one by hand (data: `merge`, `keep`, `gone`).
    ConversationsMerged,
    /// A conversation merge or a split was taken back (data: `merge`).
    ConversationsUnmerged,
    /// A conversation was split at a message (data: `merge`, `from`, `new`).
    ConversationSplit,
    /// An identity was taken off a contact (data: `kind`, `value`).
    IdentityRemoved,
    /// An identity moved to another contact (data: `kind`, `value`, `from`, `to`).
    IdentityMoved,
    /// A contact's consent changed (data: `purpose`, `opted_out`, `channel`, `source`).
    ConsentChanged,
    /// An administrator erased what was held about a person (GDPR); the event keeps who and
    /// when, no personal data.
    ContactForgotten,
    /// A campaign run began (data: `campaign`, `run`, `enrolled`, `excluded`, `segment`).
    CampaignStarted,
    /// A campaign step was queued for a contact (data: `campaign`, `run`, `step`, `channel`,
    /// `slot_at`).
    CampaignStepSent,
    /// A contact left a campaign (data: `campaign`, `run`, `reason`: `replied`).
    CampaignLeft,
    /// A campaign was stopped (data: `campaign`, `run`).
    CampaignStopped,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::MessageIn,
        EventKind::MessageOut,
        EventKind::Note,
        EventKind::DeliveryChanged,
        EventKind::Assigned,
        EventKind::StatusChanged,
        EventKind::PriorityChanged,
        EventKind::TagAdded,
        EventKind::TagRemoved,
        EventKind::ConversationCreated,
        EventKind::IdentityLinked,
        EventKind::ContactsMerged,
        EventKind::ContactUpdated,
        EventKind::Imported,
        EventKind::TeamChanged,
        EventKind::Refused,
        EventKind::SlaApplied,
        EventKind::SlaWarning,
        EventKind::SlaBreached,
        EventKind::TaskCreated,
        EventKind::TaskDue,
        EventKind::TaskClosed,
        EventKind::RuleMatched,
        EventKind::Undone,
        EventKind::ReplyCancelled,
        EventKind::CsatSent,
        EventKind::CsatAnswered,
        EventKind::ContactsUnmerged,
        EventKind::ConversationsMerged,
        EventKind::ConversationsUnmerged,
        EventKind::ConversationSplit,
        EventKind::IdentityRemoved,
        EventKind::IdentityMoved,
        EventKind::ConsentChanged,
        EventKind::ContactForgotten,
        EventKind::CampaignStarted,
        EventKind::CampaignStepSent,
        EventKind::CampaignLeft,
        EventKind::CampaignStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageIn => "message_in",
            EventKind::MessageOut => "message_out",
            EventKind::Note => "note",
            EventKind::DeliveryChanged => "delivery_changed",
            EventKind::Assigned => "assigned",
            EventKind::StatusChanged => "status_changed",
            EventKind::PriorityChanged => "priority_changed",
            EventKind::TagAdded => "tag_added",
            EventKind::TagRemoved => "tag_removed",
            EventKind::ConversationCreated => "conversation_created",
            EventKind::IdentityLinked => "identity_linked",
            EventKind::ContactsMerged => "contacts_merged",
            EventKind::ContactUpdated => "contact_updated",
            EventKind::Imported => "imported",
            EventKind::TeamChanged => "team_changed",
            EventKind::Refused => "refused",
            EventKind::SlaApplied => "sla_applied",
            EventKind::SlaWarning => "sla_warning",
            EventKind::SlaBreached => "sla_breached",
            EventKind::TaskCreated => "task_created",
            EventKind::TaskDue => "task_due",
            EventKind::TaskClosed => "task_closed",
            EventKind::RuleMatched => "rule_matched",
            EventKind::Undone => "undone",
            EventKind::ReplyCancelled => "reply_cancelled",
            EventKind::CsatSent => "csat_sent",
            EventKind::CsatAnswered => "csat_answered",
            EventKind::ContactsUnmerged => "contacts_unmerged",
            EventKind::ConversationsMerged => "conversations_merged",
            EventKind::ConversationsUnmerged => "conversations_unmerged",
            EventKind::ConversationSplit => "conversation_split",
            EventKind::IdentityRemoved => "identity_removed",
            EventKind::IdentityMoved => "identity_moved",
            EventKind::ConsentChanged => "consent_changed",
            EventKind::ContactForgotten => "contact_forgotten",
            EventKind::CampaignStarted => "campaign_started",
            EventKind::CampaignStepSent => "campaign_step_sent",
            EventKind::CampaignLeft => "campaign_left",
            EventKind::CampaignStopped => "campaign_stopped",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<EventKind, String> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind '{s}'"))
    }
}

/// The condition a restricted scope puts on an event (`" AND CASE ... END"`): the events of
/// the conversations and contacts it sees, of the refusals only its own, and the events that
/// took a conversation out of its view (moved from one of its teams, taken from its agent).
pub(crate) fn scope_condition() -> String {
    let cond = super::scope::AND_COND;
    format!(
        " AND CASE
            WHEN kind = 'refused' THEN actor = (SELECT agent FROM temp.braid_scope_agent)
            WHEN kind = 'team_changed' AND json_valid(data) AND json_extract(data, '$.from')
                IN (SELECT team FROM temp.braid_scope_teams) THEN 1
            WHEN kind = 'assigned' AND json_valid(data) AND json_extract(data, '$.from')
                = (SELECT agent FROM temp.braid_scope_agent) THEN 1
            WHEN conversation_id IS NOT NULL THEN EXISTS (SELECT 1 FROM conversations c
                WHERE c.id = events.conversation_id{cond})
            WHEN contact_id IS NOT NULL THEN EXISTS (SELECT 1 FROM conversations c
                WHERE c.contact_id = events.contact_id{cond})
            ELSE 1 END"
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: EventId,
    pub at: Millis,
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<ConversationId>,
    pub contact_id: Option<ContactId>,
    pub message_id: Option<MessageId>,
    pub data: Option<String>,
}

/// The query behind [`super::Store::changes_since`], also run inside a guarded write's
/// transaction (so nothing can arrive between the check and the write).
pub(crate) fn unseen_changes(
    conn: &Connection,
    conv: ConversationId,
    after: EventId,
    author: &str,
    limit: usize,
) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.at, e.actor, e.kind, e.data, m.author, substr(m.body, 1, 200)
         FROM events e LEFT JOIN messages m ON m.id = e.message_id
         WHERE e.conversation_id = ?1 AND e.id > ?2
           AND (e.kind = 'message_in'
                OR (e.kind IN ('message_out', 'note', 'assigned', 'status_changed',
                               'priority_changed', 'team_changed', 'undone')
                    AND e.actor <> ?3))
         ORDER BY e.id LIMIT ?4",
    )?;
    let rows = stmt.query_map((conv, after, author, limit as i64), |r| {
        let kind: String = r.get(3)?;
        let data: Option<String> = r.get(4)?;
        let author: Option<String> = r.get(5)?;
        let body: Option<String> = r.get(6)?;
        let actor: String = r.get(2)?;
        Ok(Change {
            event: r.get(0)?,
            at: r.get(1)?,
            what: describe_change(&kind, &actor, data.as_deref(), author, body),
            actor,
            kind,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// In a guarded write's transaction: fail with [`super::StoreError::Stale`] when the
/// conversation changed after `seen` (None: no guard).
pub(crate) fn guard(
    conn: &Connection,
    conv: ConversationId,
    seen: Option<EventId>,
    author: &str,
) -> Result<()> {
    if let Some(after) = seen {
        let changes = unseen_changes(conn, conv, after, author, 20)?;
        if !changes.is_empty() {
            return Err(super::StoreError::Stale(changes));
        }
    }
    Ok(())
}

/// One change an author had not seen (see [`super::Store::changes_since`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub event: EventId,
    pub at: Millis,
    /// Who made it (an agent, a channel for a customer's message).
    pub actor: String,
    /// The event kind (`message_in`, `note`, `assigned`...).
    pub kind: String,
    /// One readable line: "Olivia wrote: “where is my order?”", "bob assigned it to bob".
    /// Raw text from outside: sanitize before printing.
    pub what: String,
}

/// A change as one line.
fn describe_change(
    kind: &str,
    actor: &str,
    data: Option<&str>,
    author: Option<String>,
    body: Option<String>,
) -> String {
    let data: serde_json::Value = data
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(serde_json::Value::Null);
    let field = |k: &str| data.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let quote = |b: Option<String>| {
        let b = b.unwrap_or_default();
        let one: String = b.split_whitespace().collect::<Vec<_>>().join(" ");
        let cut: String = one.chars().take(80).collect();
        if cut.len() < one.len() {
            format!("“{cut}…”")
        } else {
            format!("“{cut}”")
        }
    };
    match kind {
        "message_in" => format!(
            "{} wrote: {}",
            author.unwrap_or_else(|| "the customer".into()),
            quote(body)
        ),
        "message_out" => format!("{actor} replied: {}", quote(body)),
        "note" => format!("{actor} added a note: {}", quote(body)),
        "assigned" => match field("assignee") {
            Some(a) => format!("{actor} assigned it to {a}"),
            None => format!("{actor} unassigned it"),
        },
        "status_changed" => format!(
            "{actor} set it {}",
            field("status").unwrap_or_else(|| "?".into())
        ),
        "priority_changed" => format!(
            "{actor} set priority {}",
            field("priority").unwrap_or_else(|| "?".into())
        ),
        "team_changed" => match field("team") {
            Some(t) => format!("{actor} moved it to team {t}"),
            None => format!("{actor} took it out of its team"),
        },
        // bulk: another agent's `u` (a tag undone is left out of the guard like a tag).
        "undone" => match data.get("restored") {
            Some(serde_json::Value::String(v)) => format!(
                "{actor} undid a change: {} back to {v}",
                field("field").unwrap_or_else(|| "?".into())
            ),
            Some(serde_json::Value::Object(o)) => format!(
                "{actor} undid a change: {} back to {}",
                field("field").unwrap_or_else(|| "?".into()),
                o.get("status").and_then(|v| v.as_str()).unwrap_or("?")
            ),
            _ => format!(
                "{actor} undid a change: {} back to none",
                field("field").unwrap_or_else(|| "?".into())
            ),
        },
        other => format!("{actor}: {}", other.replace('_', " ")),
    }
}

/// The subject of an event: any of conversation, contact, message.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventRefs {
    pub conversation: Option<ConversationId>,
    pub contact: Option<ContactId>,
    pub message: Option<MessageId>,
}

pub(crate) const EVENT_COLUMNS: &str =
    "id, at, actor, kind, conversation_id, contact_id, message_id, data";

pub(crate) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        kind: r.get(3)?,
        conversation_id: r.get(4)?,
        contact_id: r.get(5)?,
        message_id: r.get(6)?,
        data: r.get(7)?,
    })
}

thread_local! {
    /// The bulk request ([`super::Store::batch`]) this thread is writing, if any.
    static BATCH: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// While alive, every event appended on this thread carries `"batch": ID` in its data (the
/// store's connection is used by one thread at a time; a batch runs synchronously).
pub(crate) struct BatchMark(Option<i64>);

impl BatchMark {
    pub(crate) fn start(id: i64) -> BatchMark {
        BatchMark(BATCH.with(|b| b.replace(Some(id))))
    }
}

impl Drop for BatchMark {
    fn drop(&mut self) {
        BATCH.with(|b| b.set(self.0));
    }
}

/// Append one event inside the caller's transaction.
pub(crate) fn append(
    conn: &Connection,
    at: Millis,
    actor: &str,
    kind: EventKind,
    refs: EventRefs,
    data: Option<&serde_json::Value>,
) -> Result<EventId> {
    let marked;
    let data = match BATCH.with(std::cell::Cell::get) {
        Some(batch) => {
            let mut d = match data {
                Some(serde_json::Value::Object(o)) => o.clone(),
                Some(other) => {
                    let mut o = serde_json::Map::new();
                    o.insert("value".into(), other.clone());
                    o
                }
                None => serde_json::Map::new(),
            };
            d.insert("batch".into(), batch.into());
            marked = serde_json::Value::Object(d);
            Some(&marked)
        }
        None => data,
    };
    conn.prepare_cached(
        "INSERT INTO events(at, actor, kind, conversation_id, contact_id, message_id, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        at,
        actor,
        kind.as_str(),
        refs.conversation,
        refs.contact,
        refs.message,
        data.map(|d| d.to_string()),
    ))?;
    Ok(EventId(conn.last_insert_rowid()))
}

impl super::Store {
    /// The newest event id (0 for an empty log): where a new follower starts.
    pub fn last_event_id(&self) -> Result<EventId> {
        let id: Option<i64> = self
            .conn()
            .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(EventId(id.unwrap_or(0)))
    }

    /// Events after `after`, oldest first, at most `limit`. A restricted scope gets the events
    /// of the conversations and contacts it sees, of the refusals only its own, and the
    /// events that took a conversation out of its view (moved from one of its teams, taken
    /// from its agent), so a client drops what it can no longer see.
    pub fn events_since(&self, after: EventId, limit: usize) -> Result<Vec<EventRow>> {
        let scope = if self.scoped() {
            scope_condition()
        } else {
            String::new()
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1{scope} ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map((after, limit as i64), event_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What changed in a conversation after event `after` that its author has not seen: the
    /// stale-send guard's question before a reply or note goes out. A customer's message counts
    /// whoever stored it; another agent's reply, note, (re)assignment, status, priority or team
    /// change counts; the author's own changes and the outbox's delivery updates do not.
    /// Oldest first, at most `limit`.
    pub fn changes_since(
        &self,
        conv: ConversationId,
        after: EventId,
        author: &str,
        limit: usize,
    ) -> Result<Vec<Change>> {
        if self.scoped() {
            super::scope::conversation_contact(self.conn(), conv, true)?;
        }
        unseen_changes(self.conn(), conv, after, author, limit)
    }

    /// The audit trail of one conversation, newest first.
    pub fn conversation_events(&self, conv: ConversationId, limit: usize) -> Result<Vec<EventRow>> {
        if self.scoped() {
            super::scope::conversation_contact(self.conn(), conv, true)?;
        }
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map((conv, limit as i64), event_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::identity::Claim;
    use crate::ingest::{Inbound, Ingested, Settings, ingest};
    use crate::model::{Channel, Direction, IdentityKind};
    use crate::store::{Store, StoreError};

    fn customer(store: &mut Store, id: &str, body: &str) -> crate::model::ConversationId {
        let r = ingest(
            store,
            &Inbound {
                channel: Channel::Email,
                account: String::new(),
                external_id: id.into(),
                direction: Direction::In,
                customer: Claim::new(IdentityKind::Email, "ann@x.org"),
                linked: vec![],
                customer_name: Some("Ann".into()),
                author: None,
                subject: None,
                body: body.into(),
                sent_at: 1_000,
                meta: None,
                cursor: None,
            },
            &Settings::default(),
        )
        .unwrap();
        let Ingested::Stored { conversation, .. } = r else {
            panic!("{r:?}")
        };
        conversation
    }

    /// The stale-send guard counts what others did and the customer wrote, never the author's
    /// own changes or the outbox's delivery updates.
    #[test]
    fn changes_since_counts_others_and_the_customer_not_the_author() {
        let mut s = Store::open_in_memory().unwrap();
        let c = customer(&mut s, "<1@x>", "first");
        let seen = s.last_event_id().unwrap();
        s.assign(c, Some("me"), "me", 2_000).unwrap();
        s.add_note(c, "me", "my own note", 2_001).unwrap();
        s.tag(c, "refund", false, "me", 2_002).unwrap();
        assert!(s.changes_since(c, seen, "me", 20).unwrap().is_empty());
        // Another agent's priority, and the customer again.
        s.set_priority(c, crate::model::Priority::High, "bob", 2_003)
            .unwrap();
        customer(&mut s, "<2@x>", "second\n  message,   with   spaces");
        let changes = s.changes_since(c, seen, "me", 20).unwrap();
        let what: Vec<&str> = changes.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(
            what,
            vec![
                "bob set priority high",
                "Ann wrote: “second message, with spaces”"
            ]
        );
        assert!(changes[0].event < changes[1].event);
        // From the newest, nothing.
        let latest = changes[1].event;
        assert!(s.changes_since(c, latest, "me", 20).unwrap().is_empty());
        // The limit holds.
        assert_eq!(s.changes_since(c, seen, "me", 1).unwrap().len(), 1);
        // Others' notes and reassignments count; quoting is cut.
        s.add_note(c, "bob", &"long ".repeat(40), 3_000).unwrap();
        s.assign(c, Some("bob"), "bob", 3_001).unwrap();
        let changes = s.changes_since(c, latest, "me", 20).unwrap();
        assert_eq!(changes.len(), 2);
        assert!(changes[0].what.starts_with("bob added a note: “long long"));
        assert!(changes[0].what.ends_with("…”"), "{}", changes[0].what);
        assert_eq!(changes[1].what, "bob assigned it to bob");
    }

    /// Statistics taken while the events table was nearly empty (a bulk load does) made the
    /// planner read "events after N" through a whole index and sort it once the table had
    /// grown; refreshing them gives back the rowid range.
    #[test]
    fn stale_statistics_are_refreshed_and_the_feed_reads_a_range_again() {
        let mut s = Store::open_in_memory().unwrap();
        customer(&mut s, "<1@x>", "first");
        s.conn().execute_batch("ANALYZE;").unwrap();
        {
            let tx = s.write().unwrap();
            for i in 0..20_000 {
                tx.append_event(
                    i,
                    "bench",
                    super::EventKind::TagAdded,
                    super::EventRefs::default(),
                    None,
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let plan = |s: &Store| -> String {
            let mut stmt = s
                .conn()
                .prepare(
                    "EXPLAIN QUERY PLAN SELECT id, at, actor, kind, conversation_id, contact_id,
                     message_id, data FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .unwrap();
            stmt.query_map((10_000, 500), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap()
                .join("; ")
        };
        let before = plan(&s);
        assert!(
            !before.contains("SEARCH events USING INTEGER PRIMARY KEY"),
            "the premise: stale statistics mislead the planner ({before})"
        );
        s.refresh_statistics().unwrap();
        let after = plan(&s);
        assert!(
            after.contains("SEARCH events USING INTEGER PRIMARY KEY")
                && !after.contains("TEMP B-TREE"),
            "before: {before}; after: {after}"
        );
    }

    #[test]
    fn a_guarded_write_writes_nothing_when_stale_and_everything_when_not() {
        let mut s = Store::open_in_memory().unwrap();
        let c = customer(&mut s, "<1@x>", "first");
        let seen = s.last_event_id().unwrap();
        s.add_note_guarded(c, "me", "fine", 2_000, Some(seen))
            .unwrap();
        customer(&mut s, "<2@x>", "more");
        let before = s.last_event_id().unwrap();
        let err = s
            .queue_reply_guarded(c, Channel::Email, "me", "hi", 2_001, Some(seen))
            .unwrap_err();
        let StoreError::Stale(changes) = err else {
            panic!("{err:?}")
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(s.last_event_id().unwrap(), before, "nothing written");
        assert_eq!(s.outbox_counts().unwrap(), (0, 0));
        let err = s
            .add_note_guarded(c, "me", "late", 2_002, Some(seen))
            .unwrap_err();
        assert!(matches!(err, StoreError::Stale(_)));
        // Unguarded (forced), and guarded from the newest: both go through.
        s.queue_reply_guarded(c, Channel::Email, "me", "hi", 2_003, None)
            .unwrap();
        let now = s.last_event_id().unwrap();
        s.add_note_guarded(c, "me", "ok", 2_004, Some(now)).unwrap();
        assert_eq!(s.outbox_counts().unwrap().0, 1);
    }
}
