//! Conversations: the queue, and the workflow verbs (assign, status, priority, tags).

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, scope};
use crate::model::{Channel, ContactId, ConversationId, Direction, Millis, Priority, Status};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// Which conversations a queue view shows. Every filter is served by an index on
/// `(..., last_activity DESC, id DESC)`, so a page costs the same at any size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "view", content = "arg", rename_all = "lowercase")]
pub enum QueueFilter {
    /// Every conversation, any status.
    All,
    /// Conversations in one status.
    Status(Status),
    /// Open conversations assigned to this agent.
    Mine(String),
    /// Open conversations nobody owns.
    Unassigned,
    /// Open conversations of one team (`:view team billing`).
    Team(String),
}

impl QueueFilter {
    /// Parse a view name as typed on the `:view` command line or `braid list --status`.
    pub fn parse(name: &str, me: &str) -> std::result::Result<QueueFilter, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(QueueFilter::All),
            "mine" | "me" => Ok(QueueFilter::Mine(me.to_string())),
            "unassigned" => Ok(QueueFilter::Unassigned),
            "team" => Err("which team? :view team NAME".into()),
            t if t.starts_with("team ") || t.starts_with("team:") => {
                let team = name.trim()[5..].trim();
                if team.is_empty() {
                    Err("which team? :view team NAME".into())
                } else {
                    Ok(QueueFilter::Team(team.to_string()))
                }
            }
            other => other
                .parse::<Status>()
                .map(QueueFilter::Status)
                .map_err(|_| {
                    format!(
                        "unknown view '{name}' (open, pending, snoozed, resolved, mine, unassigned, all, team NAME)"
                    )
                }),
        }
    }

    pub fn label(&self) -> String {
        match self {
            QueueFilter::All => "all".into(),
            QueueFilter::Status(s) => s.as_str().into(),
            QueueFilter::Mine(_) => "mine".into(),
            QueueFilter::Unassigned => "unassigned".into(),
            QueueFilter::Team(t) => format!("team {t}"),
        }
    }

    /// Whether the triage order serves this view (an index per active view; `all` and
    /// `resolved` stay by activity).
    pub fn triage_applies(&self) -> bool {
        !matches!(
            self,
            QueueFilter::All | QueueFilter::Status(Status::Resolved)
        )
    }

    pub(crate) fn where_clause(&self) -> (&'static str, Option<String>) {
        match self {
            QueueFilter::All => ("1=1", None),
            QueueFilter::Status(s) => ("c.status = ?", Some(s.as_str().to_string())),
            QueueFilter::Mine(me) => ("c.assignee = ? AND c.status = 'open'", Some(me.clone())),
            QueueFilter::Unassigned => ("c.assignee IS NULL AND c.status = 'open'", None),
            QueueFilter::Team(t) => ("c.team = ? AND c.status = 'open'", Some(t.clone())),
        }
    }
}

/// How the queue is sorted (`[queue] order` of the personal config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueOrder {
    /// Breached SLA first, then urgent, VIP, SLA due soonest, oldest waiting, newest activity.
    #[default]
    Triage,
    /// Newest activity first.
    Activity,
}

impl std::str::FromStr for QueueOrder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "triage" => Ok(QueueOrder::Triage),
            "activity" => Ok(QueueOrder::Activity),
            other => Err(format!(
                "unknown queue order '{other}' (triage: breached SLA, urgent, VIP, SLA due, oldest waiting; activity: newest first)"
            )),
        }
    }
}

/// A position in the queue order: newest activity first, or (with `triage`) the triage
/// order's sort key, so a page after it continues either order exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCursor {
    pub last_activity: Millis,
    pub id: ConversationId,
    /// The triage key before `last_activity`: band (breached, urgent, VIP as bits, 0 first),
    /// deadline (none: i64::MAX), oldest waiting message (none: i64::MAX).
    #[serde(default)]
    pub triage: Option<[i64; 3]>,
}

/// Where a queue page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueAnchor {
    /// The newest rows.
    Top,
    /// The oldest rows (still returned newest first).
    Bottom,
    /// Rows strictly older than the cursor.
    After(QueueCursor),
    /// Rows strictly newer than the cursor (returned newest first).
    Before(QueueCursor),
    /// The cursor's row and the rows older than it (a reload of a window in place).
    AtOrAfter(QueueCursor),
    /// Skip this many rows from the top (a jump to row N: costs O(N) in the index).
    Offset(usize),
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    pub id: ConversationId,
    pub contact_id: ContactId,
    pub contact_name: String,
    pub vip: bool,
    pub status: Status,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub subject: Option<String>,
    pub channels: Vec<Channel>,
    pub last_channel: Channel,
    pub last_activity: Millis,
    pub last_preview: String,
    pub last_direction: Direction,
    pub message_count: i64,
    pub snoozed_until: Option<Millis>,
    /// The team the conversation belongs to (None: no team, every agent sees it).
    pub team: Option<String>,
    /// The SLA deadline that applies now (None: no policy, or nothing due).
    #[serde(default)]
    pub sla_due: Option<Millis>,
    /// None, `warned` or `breached`.
    #[serde(default)]
    pub sla_state: Option<String>,
    /// Which target `sla_due` is for: `first_response`, `next_response`, `resolution`.
    #[serde(default)]
    pub sla_target: Option<String>,
    /// The oldest customer message nobody answered yet (None: nothing waits on us).
    #[serde(default)]
    pub waiting_since: Option<Millis>,
    /// The contact opted out of marketing or of everything (the queue marks it ⊘).
    #[serde(default)]
    pub opted_out: bool,
}

impl QueueRow {
    pub fn cursor(&self) -> QueueCursor {
        QueueCursor {
            last_activity: self.last_activity,
            id: self.id,
            triage: Some(self.triage_key()),
        }
    }

    /// The row's triage key, as the `triage_*` columns compute it.
    pub fn triage_key(&self) -> [i64; 3] {
        let band = if self.sla_state.as_deref() == Some("breached") {
            0
        } else {
            4
        } + if self.priority == Priority::Urgent {
            0
        } else {
            2
        } + if self.vip { 0 } else { 1 };
        [
            band,
            self.sla_due.unwrap_or(i64::MAX),
            self.waiting_since.unwrap_or(i64::MAX),
        ]
    }
}

/// Counts shown in the status line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub open: i64,
    pub unassigned: i64,
    pub mine: i64,
    pub pending: i64,
    pub snoozed: i64,
}

pub(crate) const QUEUE_COLUMNS: &str =
    "c.id, c.contact_id, ct.name, ct.vip, c.status, c.priority, c.assignee, c.subject,
     c.channels, c.last_channel, c.last_activity, c.last_preview, c.last_direction, c.message_count,
     c.snoozed_until, c.team, c.sla_due, c.sla_state, c.sla_target, c.waiting_since,
     EXISTS (SELECT 1 FROM contact_consent cc WHERE cc.contact_id = c.contact_id AND cc.opted_out)";

pub(crate) fn queue_row(r: &Row<'_>) -> rusqlite::Result<QueueRow> {
    let channels: String = r.get(8)?;
    Ok(QueueRow {
        id: r.get(0)?,
        contact_id: r.get(1)?,
        contact_name: r.get(2)?,
        vip: r.get(3)?,
        status: r.get(4)?,
        priority: r.get(5)?,
        assignee: r.get(6)?,
        subject: r.get(7)?,
        channels: parse_channels(&channels),
        last_channel: r.get(9)?,
        last_activity: r.get(10)?,
        last_preview: r.get(11)?,
        last_direction: r.get(12)?,
        message_count: r.get(13)?,
        snoozed_until: r.get(14)?,
        team: r.get(15)?,
        sla_due: r.get(16)?,
        sla_state: r.get(17)?,
        sla_target: r.get(18)?,
        waiting_since: r.get(19)?,
        opted_out: r.get(20)?,
    })
}

/// The channel set is stored as a comma list in first-use order ("email,telegram").
pub(crate) fn parse_channels(s: &str) -> Vec<Channel> {
    s.split(',').filter_map(|c| c.parse().ok()).collect()
}

pub(crate) fn add_channel(set: &str, ch: Channel) -> Option<String> {
    if parse_channels(set).contains(&ch) {
        None
    } else if set.is_empty() {
        Some(ch.as_str().to_string())
    } else {
        Some(format!("{set},{}", ch.as_str()))
    }
}

impl Store {
    /// One page of the queue, in display order (newest activity first).
    pub fn queue_page(
        &self,
        filter: &QueueFilter,
        anchor: QueueAnchor,
        limit: usize,
    ) -> Result<Vec<QueueRow>> {
        let (cond, arg) = filter.where_clause();
        let cond = format!("{cond}{}", self.scope_and());
        let cond = cond.as_str();
        let (key, order) = match anchor {
            QueueAnchor::Top => ("", "DESC"),
            QueueAnchor::Bottom => ("", "ASC"),
            QueueAnchor::After(_) => ("AND (c.last_activity, c.id) < (?, ?)", "DESC"),
            QueueAnchor::Before(_) => ("AND (c.last_activity, c.id) > (?, ?)", "ASC"),
            QueueAnchor::AtOrAfter(_) => ("AND (c.last_activity, c.id) <= (?, ?)", "DESC"),
            // The skipping walks the filter's covering index alone (no table row, no contact
            // read per skipped row); the page then starts at the row it lands on.
            QueueAnchor::Offset(_) => (
                "AND (c.last_activity, c.id) <= (SELECT c.last_activity, c.id FROM conversations c
                     WHERE {cond} ORDER BY c.last_activity DESC, c.id DESC LIMIT 1 OFFSET ?)",
                "DESC",
            ),
        };
        let key = key.replace("{cond}", cond);
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE {cond} {key}
             ORDER BY c.last_activity {order}, c.id {order} LIMIT ?"
        );
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(a) = &arg {
            params.push(a.clone().into());
        }
        if let QueueAnchor::After(c) | QueueAnchor::Before(c) | QueueAnchor::AtOrAfter(c) = anchor {
            params.push(c.last_activity.into());
            params.push(c.id.0.into());
        }
        if let QueueAnchor::Offset(n) = anchor {
            params.extend(arg.map(Into::into));
            params.push((n as i64).into());
        }
        params.push((limit as i64).into());
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt
            .query_map(rusqlite::params_from_iter(params), queue_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if order == "ASC" {
            rows.reverse();
        }
        Ok(rows)
    }

    /// One page of the queue in `order`. The triage order (breached SLA, urgent, VIP, SLA
    /// due soonest, oldest waiting, newest activity) walks the `conversations_triage*`
    /// indexes with a keyset on the whole sort key, so paging is exact and a page costs the
    /// same at any size; it applies to the active views (open, pending, snoozed, mine,
    /// unassigned, team). `all` and `resolved` are always by activity.
    pub fn queue_page_ordered(
        &self,
        filter: &QueueFilter,
        order: QueueOrder,
        anchor: QueueAnchor,
        limit: usize,
    ) -> Result<Vec<QueueRow>> {
        if order == QueueOrder::Activity || !filter.triage_applies() {
            return self.queue_page(filter, anchor, limit);
        }
        const KEY: &str = "(c.triage_band, c.triage_due, c.triage_wait, c.triage_act, c.id)";
        let (cond, arg) = filter.where_clause();
        let cond = format!("{cond}{}", self.scope_and());
        let (key, order) = match anchor {
            QueueAnchor::Top => (String::new(), "ASC"),
            QueueAnchor::Bottom => (String::new(), "DESC"),
            QueueAnchor::After(_) => (format!("AND {KEY} > (?, ?, ?, ?, ?)"), "ASC"),
            QueueAnchor::Before(_) => (format!("AND {KEY} < (?, ?, ?, ?, ?)"), "DESC"),
            QueueAnchor::AtOrAfter(_) => (format!("AND {KEY} >= (?, ?, ?, ?, ?)"), "ASC"),
            QueueAnchor::Offset(_) => (
                format!(
                    "AND {KEY} >= (SELECT c.triage_band, c.triage_due, c.triage_wait,
                        c.triage_act, c.id FROM conversations c WHERE {cond}
                        ORDER BY c.triage_band, c.triage_due, c.triage_wait, c.triage_act, c.id
                        LIMIT 1 OFFSET ?)"
                ),
                "ASC",
            ),
        };
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE {cond} {key}
             ORDER BY c.triage_band {order}, c.triage_due {order}, c.triage_wait {order},
                      c.triage_act {order}, c.id {order} LIMIT ?"
        );
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(a) = &arg {
            params.push(a.clone().into());
        }
        if let QueueAnchor::After(c) | QueueAnchor::Before(c) | QueueAnchor::AtOrAfter(c) = anchor {
            // A cursor of the activity order has no triage key: start from the top band.
            let [band, due, wait] = c.triage.unwrap_or([0, i64::MIN, i64::MIN]);
            params.extend([band, due, wait, -c.last_activity, c.id.0].map(Into::into));
        }
        if let QueueAnchor::Offset(n) = anchor {
            params.extend(arg.map(Into::into));
            params.push((n as i64).into());
        }
        params.push((limit as i64).into());
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt
            .query_map(rusqlite::params_from_iter(params), queue_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if order == "DESC" {
            rows.reverse();
        }
        Ok(rows)
    }

    /// How many conversations a view holds.
    pub fn queue_count(&self, filter: &QueueFilter) -> Result<i64> {
        let (cond, arg) = filter.where_clause();
        if self.scoped() {
            // Three disjoint counts, each from an index: no team and the scope's teams from
            // `conversations_team` alone, the agent's own of other teams from the assignee
            // index. One count with the scope's OR read the table row of every conversation
            // of the view (5x slower at 37,000 conversations).
            let parts = scope::COUNT_PARTS.map(|part| {
                format!("(SELECT count(*) FROM conversations c WHERE {cond} AND {part})")
            });
            let sql = format!("SELECT {}", parts.join(" + "));
            let args: Vec<String> = arg.into_iter().collect();
            let params = args.iter().chain(&args).chain(&args).chain(&args);
            return Ok(self
                .conn()
                .prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?);
        }
        let sql = format!("SELECT count(*) FROM conversations c WHERE {cond}");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let n = match arg {
            Some(a) => stmt.query_row([a], |r| r.get(0))?,
            None => stmt.query_row([], |r| r.get(0))?,
        };
        Ok(n)
    }

    /// The status-line counters for `agent`.
    pub fn counts(&self, agent: &str) -> Result<Counts> {
        Ok(Counts {
            open: self.queue_count(&QueueFilter::Status(Status::Open))?,
            unassigned: self.queue_count(&QueueFilter::Unassigned)?,
            mine: self.queue_count(&QueueFilter::Mine(agent.to_string()))?,
            pending: self.queue_count(&QueueFilter::Status(Status::Pending))?,
            snoozed: self.queue_count(&QueueFilter::Status(Status::Snoozed))?,
        })
    }

    /// One conversation as a queue row (out of the scope: [`StoreError::NoConversation`], as
    /// for a missing id).
    pub fn conversation(&self, id: ConversationId) -> Result<QueueRow> {
        let scope = self.scope_and();
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE c.id = ?1{scope}"
        );
        self.conn()
            .prepare_cached(&sql)?
            .query_row([id], queue_row)
            .optional()?
            .ok_or(StoreError::NoConversation(id.0))
    }

    /// Every conversation of a contact the scope sees, newest first.
    pub fn contact_conversations(&self, contact: ContactId, limit: usize) -> Result<Vec<QueueRow>> {
        let scope = self.scope_and();
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE c.contact_id = ?1{scope} ORDER BY c.last_activity DESC LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map((contact, limit as i64), queue_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tags of one conversation, sorted.
    pub fn conversation_tags(&self, id: ConversationId) -> Result<Vec<String>> {
        if self.scoped() {
            scope::conversation_contact(self.conn(), id, true)?;
        }
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT tag FROM tags WHERE conversation_id = ?1 ORDER BY tag")?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Assign a conversation (None: unassign).
    pub fn assign(
        &mut self,
        id: ConversationId,
        assignee: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, id, scoped)?;
            // The assignee before: an agent whose own conversation is handed to another team's
            // agent learns from this event that it left their view (see events_since).
            let before: Option<String> = tx
                .prepare_cached("SELECT assignee FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            tx.execute(
                "UPDATE conversations SET assignee = ?2 WHERE id = ?1",
                (id, assignee),
            )?;
            events::append(
                tx,
                at,
                actor,
                EventKind::Assigned,
                refs(id, contact),
                Some(&serde_json::json!({ "assignee": assignee, "from": before })),
            )?;
            Ok(())
        })
    }

    /// Assign a conversation (None: unassign) unless someone else owns it and `owner` does not
    /// settle that, with an internal note by `actor` in the same transaction (a handoff).
    /// Returns the other owner when it did nothing (the caller asks the agent first), None
    /// when it assigned (audited `assigned`, with the owner before; the note audited `note`).
    pub fn assign_checked(
        &mut self,
        id: ConversationId,
        assignee: Option<&str>,
        owner: OwnerCheck<'_>,
        note: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<Option<String>> {
        let note = note.map(crate::sanitize::text);
        let note = note.as_deref().map(str::trim_end);
        if note.is_some_and(|n| n.trim().is_empty()) {
            return Err(StoreError::Invalid(
                "empty note: write what the next agent should know, or assign without one".into(),
            ));
        }
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, id, scoped)?;
            let before: Option<String> = tx
                .prepare_cached("SELECT assignee FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            if let Some(other) = &before
                && other != actor
                && Some(other.as_str()) != assignee
            {
                let agreed = match owner {
                    OwnerCheck::Ask => false,
                    OwnerCheck::Was(was) => was == Some(other.as_str()),
                    OwnerCheck::Any => true,
                };
                if !agreed {
                    return Ok(Some(other.clone()));
                }
            }
            tx.execute(
                "UPDATE conversations SET assignee = ?2 WHERE id = ?1",
                (id, assignee),
            )?;
            events::append(
                tx,
                at,
                actor,
                EventKind::Assigned,
                refs(id, contact),
                Some(&serde_json::json!({ "assignee": assignee, "from": before })),
            )?;
            if let Some(body) = note {
                let channel: Channel = tx.query_row(
                    "SELECT last_channel FROM conversations WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )?;
                let message = super::messages::insert_message(
                    tx,
                    &super::messages::NewMessage {
                        conversation: id,
                        contact,
                        channel,
                        account: "",
                        external_id: None,
                        direction: Direction::Note,
                        author: actor,
                        subject: None,
                        body,
                        created_at: at,
                        stored_at: at,
                        delivery: None,
                        meta: None,
                        from_identity: None,
                    },
                )?;
                events::append(
                    tx,
                    at,
                    actor,
                    EventKind::Note,
                    EventRefs {
                        conversation: Some(id),
                        contact: Some(contact),
                        message: Some(message),
                    },
                    None,
                )?;
            }
            Ok(None)
        })
    }

    /// Change status. `snoozed_until` is required for (and only kept with) `Snoozed`.
    pub fn set_status(
        &mut self,
        id: ConversationId,
        status: Status,
        snoozed_until: Option<Millis>,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        if status == Status::Snoozed && snoozed_until.is_none() {
            return Err(StoreError::Invalid("snooze needs a time".into()));
        }
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, id, scoped)?;
            // A contact has at most one active conversation (every inbound message joins it):
            // reopening an old one while a newer one is active would split the person in two.
            if status.is_active() {
                let other: Option<ConversationId> = tx
                    .prepare_cached(
                        "SELECT id FROM conversations
                         WHERE contact_id = ?1 AND id <> ?2 AND status <> 'resolved' LIMIT 1",
                    )?
                    .query_row((contact, id), |r| r.get(0))
                    .optional()?;
                if let Some(other) = other {
                    return Err(StoreError::Invalid(format!(
                        "this contact already has an active conversation, #{other}; resolve it first"
                    )));
                }
            }
            // What it was, so `u` (undo) restores it exactly.
            let (from, from_snoozed, from_resolved): (Status, Option<Millis>, Option<Millis>) = tx
                .prepare_cached(
                    "SELECT status, snoozed_until, resolved_at FROM conversations WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            tx.execute(
                "UPDATE conversations SET status = ?2,
                    snoozed_until = CASE WHEN ?2 = 'snoozed' THEN ?3 ELSE NULL END,
                    resolved_at = CASE WHEN ?2 = 'resolved' THEN ?4 ELSE NULL END
                 WHERE id = ?1",
                (id, status, snoozed_until, at),
            )?;
            events::append(
                tx,
                at,
                actor,
                EventKind::StatusChanged,
                refs(id, contact),
                Some(&serde_json::json!({
                    "status": status,
                    "snoozed_until": snoozed_until,
                    "from": from,
                    "from_snoozed_until": from_snoozed,
                    "from_resolved_at": from_resolved,
                })),
            )?;
            Ok(())
        })
    }

    pub fn set_priority(
        &mut self,
        id: ConversationId,
        priority: Priority,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, id, scoped)?;
            let from: Priority = tx
                .prepare_cached("SELECT priority FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            tx.execute(
                "UPDATE conversations SET priority = ?2 WHERE id = ?1",
                (id, priority),
            )?;
            events::append(
                tx,
                at,
                actor,
                EventKind::PriorityChanged,
                refs(id, contact),
                Some(&serde_json::json!({ "priority": priority, "from": from })),
            )?;
            Ok(())
        })
    }

    /// Add (or with `remove`, take off) a tag. Tags are lowercase words; `#` is dropped.
    pub fn tag(
        &mut self,
        id: ConversationId,
        tag: &str,
        remove: bool,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let tag = normalize_tag(tag)?;
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, id, scoped)?;
            let changed = if remove {
                tx.execute(
                    "DELETE FROM tags WHERE conversation_id = ?1 AND tag = ?2",
                    (id, &tag),
                )?
            } else {
                tx.execute(
                    "INSERT OR IGNORE INTO tags(conversation_id, tag) VALUES (?1, ?2)",
                    (id, &tag),
                )?
            };
            if changed > 0 {
                let kind = if remove {
                    EventKind::TagRemoved
                } else {
                    EventKind::TagAdded
                };
                events::append(
                    tx,
                    at,
                    actor,
                    kind,
                    refs(id, contact),
                    Some(&serde_json::json!({ "tag": tag })),
                )?;
            }
            Ok(())
        })
    }

    /// Put a conversation in a team (None: no team, every agent sees it). Audited as
    /// `team_changed` with the team before and after; setting the team it has changes nothing.
    pub fn set_conversation_team(
        &mut self,
        id: ConversationId,
        team: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let team = team.map(crate::sanitize::line);
        let team = team.as_deref().map(str::trim);
        if team.is_some_and(str::is_empty) {
            return Err(StoreError::Invalid(
                "a team needs a name; to take the conversation out of every team, give none".into(),
            ));
        }
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = scope::conversation_contact(tx, id, scoped)?;
            let before: Option<String> = tx
                .prepare_cached("SELECT team FROM conversations WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            if before.as_deref() == team {
                return Ok(());
            }
            tx.prepare_cached("UPDATE conversations SET team = ?2 WHERE id = ?1")?
                .execute((id, team))?;
            events::append(
                tx,
                at,
                actor,
                EventKind::TeamChanged,
                refs(id, contact),
                Some(&serde_json::json!({ "team": team, "from": before })),
            )?;
            Ok(())
        })
    }

    /// Record an action the actor's role or teams refused (nothing else changes): the audit
    /// log of refusals. `action` names the verb (`assign`, `reply`...), `reason` says why.
    pub fn audit_refused(
        &mut self,
        agent: &str,
        conversation: Option<ConversationId>,
        action: &str,
        reason: &str,
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            // The contact is recorded when the conversation exists (whoever may see it).
            let contact = match conversation {
                Some(c) => contact_of(tx, c).ok(),
                None => None,
            };
            events::append(
                tx,
                at,
                agent,
                EventKind::Refused,
                EventRefs {
                    conversation,
                    contact,
                    message: None,
                },
                Some(&serde_json::json!({ "action": action, "reason": reason })),
            )?;
            Ok(())
        })
    }

    /// Wake snoozed conversations whose time has come. Returns how many woke.
    pub fn wake_snoozed(&mut self, now: Millis, actor: &str) -> Result<usize> {
        self.write_with(|tx| {
            let due: Vec<(ConversationId, ContactId)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, contact_id FROM conversations
                     WHERE status = 'snoozed' AND snoozed_until <= ?1",
                )?;
                let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (id, contact) in &due {
                tx.execute(
                    "UPDATE conversations SET status = 'open', snoozed_until = NULL WHERE id = ?1",
                    [id],
                )?;
                events::append(
                    tx,
                    now,
                    actor,
                    EventKind::StatusChanged,
                    refs(*id, *contact),
                    Some(&serde_json::json!({ "status": "open", "reason": "snooze ended" })),
                )?;
            }
            Ok(due.len())
        })
    }
}

/// A tag as stored: lowercase, `#` dropped, spaces as dashes.
pub fn normalize_tag(tag: &str) -> Result<String> {
    let t = crate::sanitize::line(tag)
        .trim_start_matches('#')
        .to_lowercase()
        .replace(' ', "-");
    if t.is_empty() || t.len() > 64 {
        return Err(StoreError::Invalid(format!("bad tag '{tag}'")));
    }
    Ok(t)
}

fn refs(conv: ConversationId, contact: ContactId) -> EventRefs {
    EventRefs {
        conversation: Some(conv),
        contact: Some(contact),
        message: None,
    }
}

pub(crate) fn contact_of(conn: &Connection, id: ConversationId) -> Result<ContactId> {
    conn.prepare_cached("SELECT contact_id FROM conversations WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NoConversation(id.0))
}

/// A new inbound message on a conversation that was waiting (pending, snoozed) or recently
/// resolved: it is open again.
pub(crate) fn reopen(conn: &Connection, id: ConversationId, at: Millis, actor: &str) -> Result<()> {
    let (status, contact): (Status, ContactId) = conn
        .prepare_cached("SELECT status, contact_id FROM conversations WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NoConversation(id.0))?;
    if status == Status::Open {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE conversations SET status = 'open', snoozed_until = NULL, resolved_at = NULL
         WHERE id = ?1",
    )?
    .execute([id])?;
    events::append(
        conn,
        at,
        actor,
        EventKind::StatusChanged,
        refs(id, contact),
        Some(&serde_json::json!({ "status": "open", "from": status, "reason": "customer wrote" })),
    )?;
    Ok(())
}

/// Whether [`Store::assign_checked`] may take a conversation from the agent who owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerCheck<'a> {
    /// No: someone else's conversation is left alone (the agent is asked first).
    Ask,
    /// Yes if it is still this owner's (the agent said yes to taking it from them); another
    /// owner since is asked about again.
    Was(Option<&'a str>),
    /// Yes, whoever owns it (`--force`).
    Any,
}
