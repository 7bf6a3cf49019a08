//! The audit view of the events table: pages of events, newest first, filtered (agent,
//! conversation, time, kinds), walked by id in both directions, and jumps to an event, a date
//! or a fraction of the log. Every page is one index walk that stops at its limit: no OFFSET,
//! so the middle of a million events is as quick as the top.
//!
//! Who sees what: a connection with [`super::Scope::all`] (an admin, the single user) sees every
//! event. A restricted scope sees the events of the conversations and contacts it sees, the
//! events that took a conversation out of its view, and of the refusals only its own: the same
//! rule as the change feed ([`super::Store::events_since`]).

use super::events::{EVENT_COLUMNS, EventKind, EventRow, event_row};
use super::{Result, Store, StoreError};
use crate::model::{ConversationId, EventId, Millis};
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

/// Which events an audit page shows. Every field narrows; the default shows every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Events by this agent (the actor the server recorded).
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub conversation: Option<ConversationId>,
    /// Events at or after this time.
    #[serde(default)]
    pub since: Option<Millis>,
    /// Events before this time.
    #[serde(default)]
    pub until: Option<Millis>,
    /// Only these kinds (`refused`, `assigned`...; see [`EventKind`]); empty: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// Where an audit page is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditPosition {
    /// The newest events.
    Newest,
    /// The page below: events older than this id.
    Before(EventId),
    /// The page above: events newer than this id (still shown newest first).
    After(EventId),
    /// Jump: this event (or the newest older one that matches) first.
    /// (The oldest events: `After(EventId(0))`.)
    Event(EventId),
    /// Jump: the newest event at or before this time first.
    Time(Millis),
    /// Jump: the event this far into the log first, 0.0 the oldest, 1.0 the newest. Ids are
    /// dense (the log is append-only), so this is the id at that fraction of the id range.
    Fraction(f64),
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<EventRow>,
    /// More matching events exist older than the last row.
    pub older: bool,
    /// More matching events exist newer than the first row.
    pub newer: bool,
}

/// The most rows one audit page carries.
pub const MAX_AUDIT_PAGE: usize = 1000;

impl AuditFilter {
    /// Check the kinds: an unknown one says which exist.
    pub fn validate(&self) -> Result<()> {
        for k in &self.kinds {
            if k.parse::<EventKind>().is_err() {
                return Err(StoreError::Invalid(format!(
                    "unknown event kind '{k}' (one of: {})",
                    EventKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    /// `" AND ..."` for the filter, with its parameters appended to `params`.
    fn sql(&self, params: &mut Vec<Value>) -> String {
        let mut sql = String::new();
        if let Some(a) = &self.agent {
            sql.push_str(" AND actor = ?");
            params.push(Value::Text(a.clone()));
        }
        if let Some(c) = self.conversation {
            sql.push_str(" AND conversation_id = ?");
            params.push(Value::Integer(c.0));
        }
        // The unary `+` keeps the planner walking ids in order (the page's order) instead of
        // reading a whole time range from `events_at` and sorting it.
        if let Some(t) = self.since {
            sql.push_str(" AND +at >= ?");
            params.push(Value::Integer(t));
        }
        if let Some(t) = self.until {
            sql.push_str(" AND +at < ?");
            params.push(Value::Integer(t));
        }
        if !self.kinds.is_empty() {
            sql.push_str(" AND +kind IN (");
            for (i, k) in self.kinds.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                params.push(Value::Text(k.clone()));
            }
            sql.push(')');
        }
        sql
    }
}

impl Store {
    /// A page of the audit log, newest first, at most `limit` rows (up to
    /// [`MAX_AUDIT_PAGE`]), of the events `filter` and the connection's scope let through.
    /// A jump's page starts at its event (the rows above it are the page `After` its first
    /// row); the oldest events are the page `After(EventId(0))`.
    pub fn audit_page(
        &self,
        filter: &AuditFilter,
        at: AuditPosition,
        limit: usize,
    ) -> Result<AuditPage> {
        filter.validate()?;
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let jump = match at {
            AuditPosition::Newest => None,
            AuditPosition::Before(id) => {
                return self.audit_walk(filter, Walk::Down(id.0.saturating_sub(1)), limit);
            }
            AuditPosition::After(id) => return self.audit_walk(filter, Walk::Up(id.0), limit),
            AuditPosition::Event(id) => Some(id.0),
            AuditPosition::Time(t) => Some(self.event_at_or_before(t)?),
            AuditPosition::Fraction(f) => Some(self.event_at_fraction(f)?),
        };
        let top = jump.unwrap_or(i64::MAX);
        self.audit_walk(filter, Walk::Down(top), limit)
    }

    /// The id of the newest event at or before `t` (ties: the highest id); the oldest event
    /// when every event is newer.
    fn event_at_or_before(&self, t: Millis) -> Result<i64> {
        let id: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT id FROM events INDEXED BY events_at WHERE at <= ?1
                 ORDER BY at DESC, id DESC LIMIT 1",
            )?
            .query_row([t], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        match id {
            Some(id) => Ok(id),
            None => self.event_at_fraction(0.0),
        }
    }

    /// The query plan of the log's bounds (tests: no scan).
    #[cfg(test)]
    pub(crate) fn audit_bounds_plan(&self) -> String {
        let mut stmt = self
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {BOUNDS_SQL}"))
            .unwrap_or_else(|e| panic!("{e}"));
        stmt.query_map([], |r| r.get::<_, String>(3))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .unwrap_or_else(|e| panic!("{e}"))
            .join("; ")
    }

    /// The id `f` (0..=1) of the way from the oldest event's id to the newest's.
    fn event_at_fraction(&self, f: f64) -> Result<i64> {
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .conn()
            .query_row(BOUNDS_SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        let f = if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            1.0
        };
        Ok(lo + ((hi - lo) as f64 * f).round() as i64)
    }

    fn audit_walk(&self, filter: &AuditFilter, walk: Walk, limit: usize) -> Result<AuditPage> {
        let (rows, more) = self.audit_rows(filter, walk, limit)?;
        Ok(match walk {
            Walk::Down(top) => {
                // Anything newer than the first row (or than where the walk began)?
                let from = rows.first().map(|r| r.id.0).unwrap_or(top);
                let newer = self.audit_exists(filter, Walk::Up(from))?;
                AuditPage {
                    rows,
                    older: more,
                    newer,
                }
            }
            Walk::Up(bottom) => {
                let from = rows
                    .last()
                    .map(|r| r.id.0)
                    .unwrap_or(bottom.saturating_add(1));
                let older = self.audit_exists(filter, Walk::Down(from.saturating_sub(1)))?;
                AuditPage {
                    rows,
                    older,
                    newer: more,
                }
            }
        })
    }

    /// Up to `limit` rows of the walk, newest first, and whether the walk had more.
    fn audit_rows(
        &self,
        filter: &AuditFilter,
        walk: Walk,
        limit: usize,
    ) -> Result<(Vec<EventRow>, bool)> {
        let (sql, params) = self.audit_sql(filter, walk, limit);
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt
            .query_map(rusqlite::params_from_iter(params), event_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        if matches!(walk, Walk::Up(_)) {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// The statement of a walk and its parameters.
    fn audit_sql(&self, filter: &AuditFilter, walk: Walk, limit: usize) -> (String, Vec<Value>) {
        let mut params = Vec::new();
        let (bound, order) = match walk {
            Walk::Down(top) => {
                params.push(Value::Integer(top));
                ("id <= ?", "DESC")
            }
            Walk::Up(bottom) => {
                params.push(Value::Integer(bottom));
                ("id > ?", "ASC")
            }
        };
        let filters = filter.sql(&mut params);
        let scope = self.audit_scope();
        params.push(Value::Integer(limit as i64 + 1));
        (
            format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE {bound}{filters}{scope}
                 ORDER BY id {order} LIMIT ?"
            ),
            params,
        )
    }

    /// The query plan of a page's walk (tests: every page is an index walk in its order).
    #[cfg(test)]
    pub(crate) fn audit_plan(&self, filter: &AuditFilter, down: bool) -> Vec<String> {
        let walk = if down {
            Walk::Down(i64::MAX)
        } else {
            Walk::Up(0)
        };
        let (sql, params) = self.audit_sql(filter, walk, 10);
        let mut stmt = self
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether the walk finds any row (one row read; `audit_rows` reads limit + 1).
    fn audit_exists(&self, filter: &AuditFilter, walk: Walk) -> Result<bool> {
        Ok(self.audit_rows(filter, walk, 0)?.1)
    }

    /// The scope's condition on an event (empty for an unrestricted connection).
    fn audit_scope(&self) -> String {
        if self.scoped() {
            super::events::scope_condition()
        } else {
            String::new()
        }
    }
}

/// The oldest and newest event ids. Two subqueries: SQLite answers a lone min() or max() from
/// the end of the rowid, but `min(id), max(id)` together scan the table (53 ms p50 at a
/// million events, the whole cost of a jump to the middle).
const BOUNDS_SQL: &str = "SELECT (SELECT min(id) FROM events), (SELECT max(id) FROM events)";

/// Which way a page walks the ids.
#[derive(Debug, Clone, Copy)]
enum Walk {
    /// Ids at or below this one, newest first.
    Down(i64),
    /// Ids above this one, oldest first (the page is reversed to newest first).
    Up(i64),
}

/// What an event did, as one readable line: the detail in its `data` decoded, every value
/// from outside (tags, names, reasons) escaped for the terminal. Who, when and which
/// conversation are the row's other columns.
pub fn describe(e: &EventRow) -> String {
    let data: Option<serde_json::Value> =
        e.data.as_deref().and_then(|d| serde_json::from_str(d).ok());
    let get = |k: &str| -> Option<String> {
        match data.as_ref()?.get(k)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    let text = match e.kind.as_str() {
        "assigned" => match (get("assignee"), get("from")) {
            (Some(a), Some(f)) if a != f => format!("assigned to {a} (was {f})"),
            (Some(a), _) => format!("assigned to {a}"),
            (None, Some(f)) => format!("unassigned (was {f})"),
            (None, None) => "unassigned".into(),
        },
        "status_changed" => {
            let mut s = format!("status {}", get("status").unwrap_or_else(|| "?".into()));
            if let Some(t) = get("snoozed_until").and_then(|t| t.parse::<i64>().ok()) {
                s.push_str(&format!(" until {}", utc(t)));
            }
            if let Some(r) = get("reason") {
                s.push_str(&format!(" ({r})"));
            }
            s
        }
        "priority_changed" => format!("priority {}", get("priority").unwrap_or_default()),
        "tag_added" => format!("tagged {}", get("tag").unwrap_or_default()),
        "tag_removed" => format!("untagged {}", get("tag").unwrap_or_default()),
        "team_changed" => match (get("team"), get("from")) {
            (Some(t), Some(f)) => format!("moved to team {t} (from {f})"),
            (Some(t), None) => format!("moved to team {t}"),
            (None, Some(f)) => format!("taken out of team {f}"),
            (None, None) => "team unchanged".into(),
        },
        "refused" => format!(
            "REFUSED {}: {}",
            get("action").unwrap_or_else(|| "?".into()),
            get("reason").unwrap_or_default()
        ),
        // bulk: `u`. The restored value may be an object (a snooze with its time).
        "undone" => {
            let restored = match data.as_ref().and_then(|d| d.get("restored")) {
                Some(serde_json::Value::Object(o)) => match o.get("snoozed_until") {
                    Some(t) => format!("snoozed until {}", utc(t.as_i64().unwrap_or_default())),
                    None => generic(data.as_ref().and_then(|d| d.get("restored"))),
                },
                _ => get("restored").unwrap_or_else(|| "none".into()),
            };
            match (get("field").as_deref(), get("tag")) {
                (Some("tag"), Some(t)) => format!(
                    "UNDID {} (event #{}): tag {t} {restored} again",
                    get("kind").unwrap_or_default().replace('_', " "),
                    get("undid").unwrap_or_default()
                ),
                (field, _) => format!(
                    "UNDID {} (event #{}): {} back to {restored}",
                    get("kind").unwrap_or_default().replace('_', " "),
                    get("undid").unwrap_or_default(),
                    field.unwrap_or("?")
                ),
            }
        }
        "note" => "added a note".into(),
        "message_in" => "customer message".into(),
        "message_out" => match (get("channel"), get("to")) {
            (Some(c), Some(t)) => format!("reply queued via {c} to {t}"),
            (Some(c), None) => format!("reply via {c}"),
            _ => "reply".into(),
        },
        "delivery_changed" => match get("error") {
            Some(err) => format!(
                "delivery {}: {err}",
                get("delivery").unwrap_or_else(|| "?".into())
            ),
            None => format!("delivery {}", get("delivery").unwrap_or_else(|| "?".into())),
        },
        "conversation_created" => "conversation created".into(),
        "identity_linked" => match (get("kind"), get("value")) {
            (Some(k), Some(v)) => format!("identity linked: {k} {v}"),
            _ => format!("identity linked {}", generic(data.as_ref())),
        },
        "contacts_merged" => format!(
            "contact #{} merged into #{}{}",
            get("absorbed").unwrap_or_else(|| "?".into()),
            get("survivor").unwrap_or_else(|| "?".into()),
            get("reason").map(|r| format!(" ({r})")).unwrap_or_default()
        ),
        "contact_updated" => match get("vip").as_deref() {
            Some("true") => "marked VIP".into(),
            Some("false") => "no longer VIP".into(),
            _ => format!("contact updated {}", generic(data.as_ref())),
        },
        other => format!("{} {}", other.replace('_', " "), generic(data.as_ref())),
    };
    let line = crate::sanitize::for_terminal_line(text.trim_end()).into_owned();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `key=value, ...` of a JSON object (values compact), for kinds without their own words.
fn generic(data: Option<&serde_json::Value>) -> String {
    match data {
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// `2026-12-01 09:00 UTC`.
fn utc(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}
