//! SLA state per conversation: the policy applied, the deadline that applies now
//! (`sla_due`, `sla_target`) and whether it was warned about or breached (`sla_state`).
//!
//! - [`apply_sla`] (a rule's `sla = "gold"`): sets the policy, computes the first deadline,
//!   writes `sla_applied`.
//! - [`Store::derive_sla`]: the server follows the events table with its own durable cursor
//!   (`derivations` row `sla`, like the notifications) and recomputes the deadline of every
//!   conversation an event touched (a customer message, our reply, resolved, reopened, moved
//!   to another team). A derivation and not a hook in the message code: the store does not
//!   know the workspace's policies, every writer (channels, CLI, an import) is covered
//!   without knowing SLAs exist, and a server that was down catches up from the cursor.
//! - [`Store::sla_sweep`]: walks the deadlines index only (`conversations_sla_pending`),
//!   marks a conversation `warned` / `breached` once and writes `sla_warning` /
//!   `sla_breached` (data: policy, target, due); the assignee is notified by the
//!   notifications derivation from those events.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, Tx};
use crate::model::{ContactId, ConversationId, EventId, Millis, Status};
use crate::sla::{Clock, Hours, Policy, SlaConfig, Target};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The `derivations` row of the SLA recomputation.
const CURSOR: &str = "sla";
/// Events read per transaction.
const BATCH: usize = 500;
/// Who writes the sweep's events.
pub const SWEEP_ACTOR: &str = "sla";

/// A conversation's SLA as the queue and the timeline show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaStatus {
    pub policy: String,
    pub target: Option<String>,
    pub due: Option<Millis>,
    /// None, `warned` or `breached`.
    pub state: Option<String>,
}

/// A deadline the sweep looks at: conversation, contact, policy, target, due, state.
type Pending = (
    ConversationId,
    ContactId,
    Option<String>,
    Option<String>,
    Millis,
    Option<String>,
);

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub warned: usize,
    pub breached: usize,
}

/// Per team (None: no team): conversations past their deadline, and warned ones not yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTeamCounts {
    pub team: Option<String>,
    pub breached: i64,
    pub due_soon: i64,
}

struct Row {
    contact: ContactId,
    policy: Option<String>,
    team: Option<String>,
    clock: Clock,
    due: Option<Millis>,
    target: Option<String>,
}

fn read(conn: &Connection, conv: ConversationId) -> Result<Row> {
    conn.prepare_cached(
        "SELECT contact_id, sla_policy, team, status, created_at, waiting_since, last_reply_at,
                sla_due, sla_target
         FROM conversations WHERE id = ?1",
    )?
    .query_row([conv], |r| {
        let status: Status = r.get(3)?;
        Ok(Row {
            contact: r.get(0)?,
            policy: r.get(1)?,
            team: r.get(2)?,
            clock: Clock {
                resolved: status == Status::Resolved,
                created_at: r.get(4)?,
                waiting_since: r.get(5)?,
                last_reply_at: r.get(6)?,
            },
            due: r.get(7)?,
            target: r.get(8)?,
        })
    })
    .optional()?
    .ok_or(StoreError::NoConversation(conv.0))
}

fn refs(conv: ConversationId, contact: ContactId) -> EventRefs {
    EventRefs {
        conversation: Some(conv),
        contact: Some(contact),
        message: None,
    }
}

/// Apply `policy` (counting in `hours`) to a conversation: its deadline from its state now
/// (the customer waits: first response before any reply, next response after; resolution
/// from creation; the earliest), a new warn/breach cycle, an `sla_applied` event by `actor`.
/// Returns the deadline (None: nothing is due, e.g. resolved).
pub(crate) fn apply_sla(
    conn: &Connection,
    conv: ConversationId,
    policy: &Policy,
    hours: &Hours,
    now: Millis,
    actor: &str,
) -> Result<Option<(Target, Millis)>> {
    let row = read(conn, conv)?;
    let deadline = policy.deadline(hours, row.clock);
    conn.prepare_cached(
        "UPDATE conversations SET sla_policy = ?2, sla_target = ?3, sla_due = ?4, sla_state = NULL
         WHERE id = ?1",
    )?
    .execute((
        conv,
        &policy.name,
        deadline.map(|(t, _)| t.as_str()),
        deadline.map(|(_, d)| d),
    ))?;
    events::append(
        conn,
        now,
        actor,
        EventKind::SlaApplied,
        refs(conv, row.contact),
        Some(&serde_json::json!({
            "policy": policy.name,
            "target": deadline.map(|(t, _)| t.as_str()),
            "due": deadline.map(|(_, d)| d),
            "hours": hours.name,
        })),
    )?;
    Ok(deadline)
}

/// [`apply_sla`] by policy name, in the hours the policy names, else the conversation's
/// team's, else 24x7. An unknown name is an error that lists the known ones.
pub(crate) fn apply_sla_by_name(
    conn: &Connection,
    conv: ConversationId,
    cfg: &SlaConfig,
    name: &str,
    now: Millis,
    actor: &str,
) -> Result<Option<(Target, Millis)>> {
    let policy = cfg.require(name).map_err(StoreError::Invalid)?;
    let row = read(conn, conv)?;
    let hours = cfg.hours_for(policy, cfg.team_hours(row.team.as_deref()));
    apply_sla(conn, conv, policy, &hours, now, actor)
}

/// Recompute a conversation's deadline after a change (a message, a reply, a status, a
/// team). Nothing changes when it has no policy, its policy is no longer configured, or the
/// deadline is the same (its warned/breached state stays). A new deadline starts a new
/// warn/breach cycle. Returns whether the row changed.
pub(crate) fn recompute_sla(
    conn: &Connection,
    conv: ConversationId,
    cfg: &SlaConfig,
) -> Result<bool> {
    let row = read(conn, conv)?;
    let Some(policy) = row.policy.as_deref().and_then(|p| cfg.policy(p)) else {
        return Ok(false);
    };
    let hours = cfg.hours_for(policy, cfg.team_hours(row.team.as_deref()));
    let deadline = policy.deadline(&hours, row.clock);
    let now = (
        deadline.map(|(t, _)| t.as_str().to_string()),
        deadline.map(|(_, d)| d),
    );
    if now == (row.target.clone(), row.due) {
        return Ok(false);
    }
    conn.prepare_cached(
        "UPDATE conversations SET sla_target = ?2, sla_due = ?3, sla_state = NULL WHERE id = ?1",
    )?
    .execute((conv, now.0, now.1))?;
    Ok(true)
}

fn cursor(conn: &Connection) -> Result<Option<EventId>> {
    super::derivations::cursor(conn, CURSOR)
}

fn set_cursor(conn: &Connection, to: EventId) -> Result<()> {
    super::derivations::set_cursor(conn, CURSOR, to)
}

/// The events that may move a deadline.
fn moves_deadline(kind: &str) -> bool {
    matches!(
        kind,
        "message_in" | "message_out" | "status_changed" | "team_changed" | "undone"
    )
}

impl Tx<'_> {
    /// [`apply_sla`] inside the caller's transaction.
    pub fn apply_sla(
        &self,
        conv: ConversationId,
        policy: &Policy,
        hours: &Hours,
        now: Millis,
        actor: &str,
    ) -> Result<Option<(Target, Millis)>> {
        apply_sla(self.conn(), conv, policy, hours, now, actor)
    }

    /// [`apply_sla_by_name`] inside the caller's transaction (a rule's `sla = "gold"`).
    pub fn apply_sla_by_name(
        &self,
        conv: ConversationId,
        cfg: &SlaConfig,
        name: &str,
        now: Millis,
        actor: &str,
    ) -> Result<Option<(Target, Millis)>> {
        apply_sla_by_name(self.conn(), conv, cfg, name, now, actor)
    }

    /// [`recompute_sla`] inside the caller's transaction.
    pub fn recompute_sla(&self, conv: ConversationId, cfg: &SlaConfig) -> Result<bool> {
        recompute_sla(self.conn(), conv, cfg)
    }
}

impl Store {
    /// Apply a policy by name in its own transaction (see [`Tx::apply_sla_by_name`]).
    pub fn apply_sla_by_name(
        &mut self,
        conv: ConversationId,
        cfg: &SlaConfig,
        name: &str,
        now: Millis,
        actor: &str,
    ) -> Result<Option<(Target, Millis)>> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            super::scope::conversation_contact(tx, conv, scoped)?;
            apply_sla_by_name(tx, conv, cfg, name, now, actor)
        })
    }

    /// Recompute the deadlines of the conversations the events after the `sla` cursor
    /// touched, in batches of one transaction each (rows and cursor together). A store
    /// without the cursor starts at its newest event. Returns how many rows changed.
    pub fn derive_sla(&mut self, cfg: &SlaConfig) -> Result<usize> {
        let mut changed = 0;
        loop {
            let (n, more) = self.write_with(|tx| {
                let Some(from) = cursor(tx)? else {
                    let newest: Option<i64> =
                        tx.query_row("SELECT max(id) FROM events", [], |r| r.get(0))?;
                    set_cursor(tx, EventId(newest.unwrap_or(0)))?;
                    return Ok((0, false));
                };
                let evs: Vec<(EventId, String, Option<ConversationId>)> = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id, kind, conversation_id FROM events WHERE id > ?1
                         ORDER BY id LIMIT ?2",
                    )?;
                    stmt.query_map((from, BATCH as i64), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?
                };
                let Some(last) = evs.last().map(|e| e.0) else {
                    return Ok((0, false));
                };
                let mut convs: Vec<ConversationId> = evs
                    .iter()
                    .filter(|(_, k, _)| moves_deadline(k))
                    .filter_map(|(_, _, c)| *c)
                    .collect();
                convs.sort_unstable_by_key(|c| c.0);
                convs.dedup();
                let mut n = 0;
                for c in convs {
                    match recompute_sla(tx, c, cfg) {
                        Ok(true) => n += 1,
                        Ok(false) | Err(StoreError::NoConversation(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                set_cursor(tx, last)?;
                Ok((n, evs.len() == BATCH))
            })?;
            changed += n;
            if !more {
                return Ok(changed);
            }
        }
    }

    /// Mark the deadlines that passed (`breached`) or come within their policy's
    /// `warn_before` (`warned`), each once, with an `sla_breached` / `sla_warning` event by
    /// [`SWEEP_ACTOR`]. Reads the pending-deadlines index only.
    pub fn sla_sweep(&mut self, cfg: &SlaConfig, now: Millis) -> Result<Swept> {
        let max_warn = cfg
            .policies
            .iter()
            .map(|p| p.warn_before)
            .max()
            .unwrap_or(0);
        self.write_with(|tx| {
            let rows: Vec<Pending> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, contact_id, sla_policy, sla_target, sla_due, sla_state
                     FROM conversations INDEXED BY conversations_sla_pending
                     WHERE sla_due IS NOT NULL AND sla_state IS NOT 'breached' AND sla_due <= ?1
                     ORDER BY sla_due",
                )?;
                stmt.query_map([now.saturating_add(max_warn)], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            let mut done = Swept::default();
            for (conv, contact, policy, target, due, state) in rows {
                let (new_state, kind) = if due <= now {
                    ("breached", EventKind::SlaBreached)
                } else {
                    let warn = policy
                        .as_deref()
                        .and_then(|p| cfg.policy(p))
                        .map(|p| p.warn_before)
                        .unwrap_or(crate::sla::DEFAULT_WARN_BEFORE_MS);
                    if state.is_some() || due - warn > now {
                        continue;
                    }
                    ("warned", EventKind::SlaWarning)
                };
                tx.prepare_cached("UPDATE conversations SET sla_state = ?2 WHERE id = ?1")?
                    .execute((conv, new_state))?;
                events::append(
                    tx,
                    now,
                    SWEEP_ACTOR,
                    kind,
                    refs(conv, contact),
                    Some(&serde_json::json!({ "policy": policy, "target": target, "due": due })),
                )?;
                if new_state == "breached" {
                    done.breached += 1;
                } else {
                    done.warned += 1;
                }
            }
            Ok(done)
        })
    }

    /// A conversation's SLA (None: no policy applied).
    pub fn conversation_sla(&self, conv: ConversationId) -> Result<Option<SlaStatus>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT sla_policy, sla_target, sla_due, sla_state FROM conversations
                 WHERE id = ?1 AND sla_policy IS NOT NULL",
            )?
            .query_row([conv], |r| {
                Ok(SlaStatus {
                    policy: r.get(0)?,
                    target: r.get(1)?,
                    due: r.get(2)?,
                    state: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Per team: conversations past their deadline and warned ones not yet past it (what
    /// `braid status --json` reports). Resolved conversations have no deadline.
    pub fn sla_counts(&self, now: Millis) -> Result<Vec<SlaTeamCounts>> {
        let scope = self.scope_and();
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT c.team, sum(c.sla_due <= ?1), sum(c.sla_due > ?1 AND c.sla_state = 'warned')
             FROM conversations c INDEXED BY conversations_sla
             WHERE c.sla_due IS NOT NULL AND c.status <> 'resolved'{scope}
             GROUP BY c.team ORDER BY c.team"
        ))?;
        let rows = stmt.query_map([now], |r| {
            Ok(SlaTeamCounts {
                team: r.get(0)?,
                breached: r.get(1)?,
                due_soon: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
