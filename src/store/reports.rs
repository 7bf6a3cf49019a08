//! Reporting facts (schema v12) and the reports read from them.
//!
//! The server keeps the facts from the events table (derivation `reports`, a durable cursor,
//! facts and cursor in one transaction per batch): each event becomes [`Step`]s for the
//! conversation's [`Tracker`], whose state waits in `report_state` between events. A store
//! from before v12 (or a bulk-loaded history, which writes one `imported` event instead of
//! one per message) is backfilled by the same tracker from its messages and events.
//!
//! A report never reads the messages table: durations, SLA and survey answers come from the
//! `report_facts_scan` index (one range per metric), volumes from the hourly `report_counts`.

use super::{Result, Store, StoreError};
use crate::api::report::{
    CsatFigures, Durations, Figures, Metric, Report, ReportQuery, ReportRow, SlaFigures, Slice,
};
use crate::model::{ConversationId, EventId, Millis};
use crate::reports::{Fact, Kind, State, Step, Tracker};
use crate::sla::SlaConfig;
use rusqlite::{Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

/// Whose figures a report may show: the asking agent's role decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportScope {
    /// An admin: everyone's.
    All,
    /// A supervisor: their teams'.
    Teams(Vec<String>),
    /// An agent (or a viewer): their own.
    Agent(String),
}

impl ReportScope {
    pub fn describe(&self) -> String {
        match self {
            ReportScope::All => "everyone".into(),
            ReportScope::Teams(t) if t.is_empty() => "no team (you lead none)".into(),
            ReportScope::Teams(t) => format!("teams {}", t.join(", ")),
            ReportScope::Agent(a) => format!("your own ({a})"),
        }
    }

    /// The SQL condition (with its parameters) a fact or count row must meet.
    fn condition(&self, team_col: &str, agent_col: &str) -> (String, Vec<String>) {
        match self {
            ReportScope::All => (String::new(), Vec::new()),
            ReportScope::Teams(t) if t.is_empty() => (" AND 0".into(), Vec::new()),
            ReportScope::Teams(t) => {
                let marks = vec!["?"; t.len()].join(", ");
                (format!(" AND {team_col} IN ({marks})"), t.clone())
            }
            ReportScope::Agent(a) => (format!(" AND {agent_col} = ?"), vec![a.clone()]),
        }
    }
}

const CURSOR: &str = "reports";
const BATCH: usize = 2000;
const HOUR: Millis = 3_600_000;

fn cursor(conn: &Connection) -> Result<Option<EventId>> {
    Ok(conn
        .prepare_cached("SELECT last_event FROM derivations WHERE name = ?1")?
        .query_row([CURSOR], |r| r.get(0))
        .optional()?)
}

fn set_cursor(conn: &Connection, to: EventId) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO derivations(name, last_event) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET last_event = excluded.last_event",
    )?
    .execute((CURSOR, to))?;
    Ok(())
}

fn load_state(conn: &Connection, conv: ConversationId) -> Result<Option<State>> {
    Ok(conn
        .prepare_cached(
            "SELECT open, episode_start, first_replied, waiting_since, waiting_channel,
                replied_at, channel, assignee, team, policy, breached
             FROM report_state WHERE conversation_id = ?1",
        )?
        .query_row([conv], |r| {
            Ok(State {
                open: r.get(0)?,
                episode_start: r.get(1)?,
                first_replied: r.get(2)?,
                waiting_since: r.get(3)?,
                waiting_channel: r.get(4)?,
                replied_at: r.get(5)?,
                channel: r.get(6)?,
                assignee: r.get(7)?,
                team: r.get(8)?,
                policy: r.get(9)?,
                breached: r.get(10)?,
            })
        })
        .optional()?)
}

fn save_state(conn: &Connection, conv: ConversationId, s: &State) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO report_state(conversation_id, open, episode_start, first_replied,
            waiting_since, waiting_channel, replied_at, channel, assignee, team, policy, breached)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        conv,
        s.open,
        s.episode_start,
        s.first_replied,
        s.waiting_since,
        s.waiting_channel,
        s.replied_at,
        s.channel,
        s.assignee,
        s.team,
        s.policy,
        s.breached,
    ])?;
    Ok(())
}

fn write_facts(conn: &Connection, conv: ConversationId, facts: &[Fact]) -> Result<()> {
    for f in facts {
        conn.prepare_cached(
            "INSERT INTO report_facts(metric, at, conversation_id, channel, team, agent, value,
                business, label) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(rusqlite::params![
            f.kind.as_str(),
            f.at,
            conv,
            f.channel,
            f.team,
            f.agent,
            f.value,
            f.business,
            f.label,
        ])?;
        if f.kind.is_count() {
            conn.prepare_cached(
                "INSERT INTO report_counts(hour, metric, channel, team, agent, n)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT(metric, hour, channel, team, agent) DO UPDATE SET n = n + 1",
            )?
            .execute(rusqlite::params![
                f.at.div_euclid(HOUR),
                f.kind.as_str(),
                f.channel,
                f.team.as_deref().unwrap_or(""),
                f.agent.as_deref().unwrap_or(""),
            ])?;
        }
    }
    Ok(())
}

/// Where a conversation's tracker starts: its team and assignee when it was created (the
/// `from` of its first team / assignee change, else what it has now), nothing else.
fn initial_state(conn: &Connection, conv: ConversationId) -> Result<Option<State>> {
    let Some((team, assignee, channel)): Option<(Option<String>, Option<String>, String)> = conn
        .prepare_cached("SELECT team, assignee, last_channel FROM conversations WHERE id = ?1")?
        .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
    else {
        return Ok(None);
    };
    // The `from` of the first change of a kind, if it says one (None: no such change).
    let first_from = |kind: &str| -> Result<Option<Option<String>>> {
        let data: Option<Option<String>> = conn
            .prepare_cached(
                "SELECT data FROM events WHERE conversation_id = ?1 AND kind = ?2
                 ORDER BY id LIMIT 1",
            )?
            .query_row((conv, kind), |r| r.get(0))
            .optional()?;
        Ok(data.flatten().and_then(|d| {
            let v: serde_json::Value = serde_json::from_str(&d).ok()?;
            let from = v.get("from")?;
            Some(from.as_str().map(str::to_string))
        }))
    };
    let team = first_from("team_changed")?.unwrap_or(team);
    let assignee = first_from("assigned")?.unwrap_or(assignee);
    Ok(Some(State {
        channel,
        team,
        assignee,
        ..State::default()
    }))
}

/// The channel of a conversation's first message (where it began).
fn first_channel(conn: &Connection, conv: ConversationId) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT channel FROM messages WHERE conversation_id = ?1
             ORDER BY created_at, id LIMIT 1",
        )?
        .query_row([conv], |r| r.get(0))
        .optional()?)
}

/// An event as the derivation reads it.
struct Ev {
    id: EventId,
    kind: String,
    at: Millis,
    actor: String,
    conversation: Option<ConversationId>,
    message: Option<i64>,
    data: Option<String>,
}

fn read_events(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Ev>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(args, |r| {
            Ok(Ev {
                id: r.get(0)?,
                kind: r.get(1)?,
                at: r.get(2)?,
                actor: r.get(3)?,
                conversation: r.get(4)?,
                message: r.get(5)?,
                data: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// One event as the tracker's steps (most events are none).
fn steps_of_event(
    conn: &Connection,
    ev: &Ev,
    conv: ConversationId,
    state_open: bool,
) -> Result<Vec<Step>> {
    let (kind, at, actor, message) = (ev.kind.as_str(), ev.at, ev.actor.as_str(), ev.message);
    let data = ev.data.as_deref();
    let data: serde_json::Value = data
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(serde_json::Value::Null);
    let text = |k: &str| data.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Ok(match kind {
        "conversation_created" => {
            let channel = first_channel(conn, conv)?.unwrap_or_default();
            vec![Step::Created { at, channel }]
        }
        "message_in" | "message_out" => {
            let Some(id) = message else {
                return Ok(Vec::new());
            };
            let row: Option<(String, String, String, Millis)> = conn
                .prepare_cached(
                    "SELECT direction, author, channel, created_at FROM messages WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            match row {
                Some((dir, author, channel, at)) => message_step(&dir, author, channel, at)
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            }
        }
        "status_changed" => match text("status").as_deref() {
            Some("resolved") => vec![Step::Resolved {
                at,
                actor: actor.to_string(),
            }],
            Some(_) if !state_open => vec![Step::Reopened { at }],
            _ => Vec::new(),
        },
        "assigned" => vec![Step::Assigned {
            agent: text("assignee"),
        }],
        "team_changed" => vec![Step::Team { team: text("team") }],
        "sla_applied" => text("policy")
            .map(|policy| Step::SlaApplied { policy })
            .into_iter()
            .collect(),
        "sla_breached" => text("target")
            .map(|target| Step::SlaBreached { target })
            .into_iter()
            .collect(),
        "csat_sent" => vec![Step::CsatSent {
            at,
            channel: text("channel").unwrap_or_default(),
        }],
        "csat_answered" => match data.get("score").and_then(|v| v.as_i64()) {
            Some(score) => vec![Step::CsatAnswered {
                at,
                score,
                channel: text("channel").unwrap_or_default(),
            }],
            None => Vec::new(),
        },
        _ => Vec::new(),
    })
}

fn message_step(direction: &str, author: String, channel: String, at: Millis) -> Option<Step> {
    match direction {
        "in" => Some(Step::CustomerMessage { at, channel }),
        "out" => Some(Step::Reply {
            at,
            channel,
            automated: super::is_automated(&author),
            author,
        }),
        _ => None,
    }
}

/// How far a backfill got (for a progress bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Replay the history of the conversations (ids in `convs`) into facts: the messages no
/// event names (a bulk load), by time, then the events up to `upto` in order, as the live
/// derivation reads them.
fn backfill_conversation(
    conn: &Connection,
    conv: ConversationId,
    upto: EventId,
    cfg: &SlaConfig,
) -> Result<()> {
    let Some(state) = initial_state(conn, conv)? else {
        return Ok(());
    };
    let events = read_events(
        conn,
        "SELECT id, kind, at, actor, conversation_id, message_id, data FROM events
         WHERE conversation_id = ?1 AND id <= ?2 ORDER BY id",
        (conv, upto),
    )?;
    let named: std::collections::HashSet<i64> = events.iter().filter_map(|e| e.message).collect();
    let (created_at, status, resolved_at): (Millis, String, Option<Millis>) = conn
        .prepare_cached("SELECT created_at, status, resolved_at FROM conversations WHERE id = ?1")?
        .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut steps: Vec<(Millis, Step)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, direction, author, channel, created_at FROM messages
             WHERE conversation_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([conv], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Millis>(4)?,
            ))
        })?;
        for row in rows {
            let (id, dir, author, channel, at) = row?;
            if named.contains(&id) {
                continue;
            }
            if let Some(s) = message_step(&dir, author, channel, at) {
                steps.push((at, s));
            }
        }
    }
    let has_created = events.iter().any(|e| e.kind == "conversation_created");
    let has_status = events.iter().any(|e| e.kind == "status_changed");
    // A bulk-loaded conversation: its resolution is a column, not an event.
    if !has_status
        && status == "resolved"
        && let Some(at) = resolved_at
    {
        steps.push((
            at,
            Step::Resolved {
                at,
                actor: String::new(),
            },
        ));
    }
    steps.sort_by_key(|(at, _)| *at);
    let mut tracker = Tracker::new(state, cfg);
    let mut facts = Vec::new();
    if !has_created {
        let channel = first_channel(conn, conv)?.unwrap_or_else(|| tracker.state.channel.clone());
        facts.extend(tracker.step(&Step::Created {
            at: created_at,
            channel,
        }));
    }
    for (_, s) in &steps {
        facts.extend(tracker.step(s));
    }
    for ev in &events {
        for s in steps_of_event(conn, ev, conv, tracker.state.open)? {
            facts.extend(tracker.step(&s));
        }
    }
    write_facts(conn, conv, &facts)?;
    save_state(conn, conv, &tracker.state)?;
    Ok(())
}

impl Store {
    /// Keep the reporting facts: follow the events after the `reports` cursor, in batches
    /// of one transaction each (facts, states and cursor together). A store without the
    /// cursor (new to v12, or never derived) first backfills its whole history, reporting
    /// progress. Returns how many events were read.
    pub fn derive_reports(
        &mut self,
        cfg: &SlaConfig,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<usize> {
        let from = self.write_with(cursor)?;
        if from.is_none() {
            self.backfill_reports(cfg, false, progress)?;
        }
        let mut read = 0;
        loop {
            let (n, more, imported) = self.write_with(|tx| {
                let from = cursor(tx)?.unwrap_or(EventId(0));
                let evs = read_events(
                    tx,
                    "SELECT id, kind, at, actor, conversation_id, message_id, data FROM events
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                    (from, BATCH as i64),
                )?;
                let Some(last) = evs.last().map(|e| e.id) else {
                    return Ok((0, false, false));
                };
                let mut states: HashMap<ConversationId, State> = HashMap::new();
                let mut imported = false;
                for ev in &evs {
                    if ev.kind == "imported" {
                        // A bulk history load: its conversations have no events; replay
                        // them (only those without a tracker yet) up to here.
                        for (c, s) in states.drain() {
                            save_state(tx, c, &s)?;
                        }
                        set_cursor(tx, ev.id)?;
                        imported = true;
                        break;
                    }
                    let Some(conv) = &ev.conversation else {
                        continue;
                    };
                    let state = match states.get(conv) {
                        Some(s) => s.clone(),
                        None => match load_state(tx, *conv)? {
                            Some(s) => s,
                            None => match initial_state(tx, *conv)? {
                                Some(s) => s,
                                None => continue,
                            },
                        },
                    };
                    let steps = steps_of_event(tx, ev, *conv, state.open)?;
                    let mut tracker = Tracker::new(state, cfg);
                    let mut facts = Vec::new();
                    for s in &steps {
                        facts.extend(tracker.step(s));
                    }
                    write_facts(tx, *conv, &facts)?;
                    states.insert(*conv, tracker.state);
                }
                if imported {
                    return Ok((evs.len(), true, true));
                }
                for (c, s) in &states {
                    save_state(tx, *c, s)?;
                }
                set_cursor(tx, last)?;
                Ok((evs.len(), evs.len() == BATCH, false))
            })?;
            read += n;
            if imported {
                self.backfill_reports(cfg, true, progress)?;
            }
            if !more {
                return Ok(read);
            }
        }
    }

    /// Replay every conversation's history into facts (`only_new`: those without a tracker
    /// yet), 500 conversations per transaction; the cursor goes to the newest event seen at
    /// the start, so what happens meanwhile is derived live afterwards, once.
    pub fn backfill_reports(
        &mut self,
        cfg: &SlaConfig,
        only_new: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Progress> {
        let (upto, max_conv, total) = self.write_with(|tx| {
            let upto: EventId = match cursor(tx)? {
                Some(c) if only_new => c,
                _ => EventId(tx.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| {
                    r.get(0)
                })?),
            };
            let (max_conv, total): (i64, i64) = tx.query_row(
                if only_new {
                    "SELECT coalesce(max(id), 0), count(*) FROM conversations c
                     WHERE NOT EXISTS (SELECT 1 FROM report_state s WHERE s.conversation_id = c.id)"
                } else {
                    "SELECT coalesce(max(id), 0), count(*) FROM conversations"
                },
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if !only_new {
                tx.execute_batch(
                    "DELETE FROM report_facts; DELETE FROM report_counts; DELETE FROM report_state;",
                )?;
                set_cursor(tx, upto)?;
            }
            Ok((upto, max_conv, total as usize))
        })?;
        let mut p = Progress { done: 0, total };
        progress(p);
        let mut after = 0i64;
        loop {
            let (n, last) = self.write_with(|tx| {
                let ids: Vec<i64> = tx
                    .prepare_cached(
                        "SELECT id FROM conversations c WHERE id > ?1 AND id <= ?2
                         AND (?3 = 0 OR NOT EXISTS
                              (SELECT 1 FROM report_state s WHERE s.conversation_id = c.id))
                         ORDER BY id LIMIT 500",
                    )?
                    .query_map((after, max_conv, only_new), |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for id in &ids {
                    backfill_conversation(tx, ConversationId(*id), upto, cfg)?;
                }
                Ok((ids.len(), ids.last().copied()))
            })?;
            let Some(last) = last else { break };
            after = last;
            p.done += n;
            progress(p);
        }
        Ok(p)
    }

    /// A report over `q`'s range, within `scope`.
    pub fn report(&self, q: &ReportQuery, scope: &ReportScope) -> Result<Report> {
        let started = std::time::Instant::now();
        if q.to <= q.from {
            return Err(StoreError::Invalid(
                "a report's range ends after it begins (--from before --to)".into(),
            ));
        }
        let tz_name = q.tz.clone().unwrap_or_else(|| "UTC".into());
        let tz = jiff::tz::TimeZone::get(&tz_name).map_err(|_| {
            StoreError::Invalid(format!(
                "unknown time zone '{}' (an IANA name such as Europe/Berlin)",
                crate::sanitize::line(&tz_name)
            ))
        })?;
        let buckets = if q.by.is_time() {
            Some(Buckets::new(q.by, q.from, q.to, &tz)?)
        } else {
            None
        };
        let mut acc = Accumulator::new(buckets);
        let (cond, params) = scope.condition("team", "agent");
        let by_tag = q.by == Slice::Tag;

        // Durations, SLA and surveys: one index range per metric.
        let mut scans: Vec<Kind> = Vec::new();
        for (m, k) in [
            (Metric::FirstResponse, Kind::FirstResponse),
            (Metric::NextResponse, Kind::NextResponse),
            (Metric::Resolution, Kind::Resolution),
            (Metric::CustomerWait, Kind::CustomerWait),
            (Metric::Sla, Kind::Sla),
            (Metric::Csat, Kind::Csat),
        ] {
            if q.wants(m) {
                scans.push(k);
            }
        }
        for kind in &scans {
            let mut stmt = self.conn.prepare_cached(&scan_sql(&cond))?;
            let mut args: Vec<rusqlite::types::Value> =
                vec![kind.as_str().to_string().into(), q.from.into(), q.to.into()];
            args.extend(params.iter().cloned().map(Into::into));
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            let mut tags = TagCache::default();
            while let Some(r) = rows.next()? {
                let row = FactRow {
                    at: r.get(0)?,
                    channel: r.get(1)?,
                    team: r.get(2)?,
                    agent: r.get(3)?,
                    value: r.get(4)?,
                    business: r.get(5)?,
                    label: r.get(6)?,
                };
                let conv: i64 = r.get(7)?;
                let keys: Vec<String> = if by_tag {
                    tags.of(&self.conn, conv)?.to_vec()
                } else {
                    vec![acc.key(q.by, &row)]
                };
                acc.add_fact(*kind, &row, &keys);
            }
        }

        // Volumes: the hourly counts (the tag slice: the facts of tagged conversations).
        let mut counted: Vec<Kind> = Vec::new();
        if q.wants(Metric::Volume) {
            counted.extend([Kind::Opened, Kind::Reopened, Kind::Resolved]);
        }
        if q.wants(Metric::Messages) {
            counted.extend([Kind::MessageIn, Kind::MessageOut]);
        }
        if q.wants(Metric::Csat) {
            counted.push(Kind::CsatSent);
        }
        let (ccond, cparams) = scope.condition("nullif(team, '')", "nullif(agent, '')");
        for kind in &counted {
            let sql = format!(
                "SELECT hour, channel, nullif(team, ''), nullif(agent, ''), n FROM report_counts
                 WHERE metric = ?1 AND hour >= ?2 AND hour < ?3{ccond}"
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut args: Vec<rusqlite::types::Value> = vec![
                kind.as_str().to_string().into(),
                q.from.div_euclid(HOUR).into(),
                (q.to + HOUR - 1).div_euclid(HOUR).into(),
            ];
            args.extend(cparams.iter().cloned().map(Into::into));
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            while let Some(r) = rows.next()? {
                let hour: i64 = r.get(0)?;
                let row = FactRow {
                    at: hour * HOUR,
                    channel: r.get(1)?,
                    team: r.get(2)?,
                    agent: r.get(3)?,
                    value: r.get(4)?,
                    business: None,
                    label: None,
                };
                let keys = if by_tag {
                    Vec::new() // the tag rows come from the facts below; this is the total
                } else {
                    vec![acc.key(q.by, &row)]
                };
                acc.add_count(*kind, &row, &keys);
            }
        }
        if by_tag && !counted.is_empty() {
            let names: Vec<String> = counted
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            let sql = format!(
                "SELECT t.tag, f.metric, count(*) FROM tags t
                 JOIN report_facts f
                   ON f.conversation_id = t.conversation_id
                 WHERE f.metric IN ({}) AND f.at >= ?1 AND f.at < ?2{}
                 GROUP BY t.tag, f.metric",
                names.join(", "),
                scope.condition("f.team", "f.agent").0
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut args: Vec<rusqlite::types::Value> = vec![q.from.into(), q.to.into()];
            args.extend(params.iter().cloned().map(Into::into));
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            while let Some(r) = rows.next()? {
                let tag: String = r.get(0)?;
                let metric: String = r.get(1)?;
                let n: i64 = r.get(2)?;
                if let Some(kind) = Kind::parse(&metric) {
                    acc.add_tag_count(kind, &tag, n);
                }
            }
        }

        // The backlog before the range (time slices).
        if q.by.is_time() && q.wants(Metric::Volume) {
            let sql = format!(
                "SELECT coalesce(sum(CASE metric WHEN 'resolved' THEN -n ELSE n END), 0)
                 FROM report_counts
                 WHERE metric IN ('opened', 'reopened', 'resolved') AND hour < ?1{ccond}"
            );
            let mut args: Vec<rusqlite::types::Value> = vec![q.from.div_euclid(HOUR).into()];
            args.extend(cparams.iter().cloned().map(Into::into));
            let before: i64 = self
                .conn
                .prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
            acc.backlog_before = Some(before);
        }

        let (rows, total) = acc.finish(q.by);
        Ok(Report {
            query: q.clone(),
            scope: scope.describe(),
            tz: tz_name,
            rows,
            total,
            took_ms: started.elapsed().as_millis() as i64,
        })
    }
}

/// One metric's facts over a range (`cond`: the scope's condition): the covering index
/// alone answers it (a test holds the plan to that).
fn scan_sql(cond: &str) -> String {
    format!(
        "SELECT at, channel, team, agent, value, business, label, conversation_id
         FROM report_facts
         WHERE metric = ?1 AND metric NOT IN ('messages_in', 'messages_out')
           AND at >= ?2 AND at < ?3{cond}"
    )
}

#[cfg(test)]
pub(crate) fn scan_plan(conn: &Connection, scope: &ReportScope) -> String {
    let (cond, params) = scope.condition("team", "agent");
    let mut args: Vec<rusqlite::types::Value> = vec![
        "first_response".to_string().into(),
        0i64.into(),
        1i64.into(),
    ];
    args.extend(params.into_iter().map(Into::into));
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", scan_sql(&cond)))
        .expect("plan");
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .expect("plan");
    rows.map(|r| r.unwrap_or_default())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tags of a conversation, read once per report.
#[derive(Default)]
struct TagCache(HashMap<i64, Vec<String>>);

impl TagCache {
    fn of(&mut self, conn: &Connection, conv: i64) -> Result<&[String]> {
        use std::collections::hash_map::Entry;
        Ok(match self.0.entry(conv) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let tags: Vec<String> = conn
                    .prepare_cached("SELECT tag FROM tags WHERE conversation_id = ?1")?
                    .query_map([conv], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                e.insert(tags)
            }
        })
    }
}

struct FactRow {
    at: Millis,
    channel: String,
    team: Option<String>,
    agent: Option<String>,
    value: i64,
    business: Option<Millis>,
    label: Option<String>,
}

/// Periods of a time slice: their starts, in the report's zone.
struct Buckets {
    starts: Vec<Millis>,
    keys: Vec<String>,
}

impl Buckets {
    fn new(by: Slice, from: Millis, to: Millis, tz: &jiff::tz::TimeZone) -> Result<Buckets> {
        use jiff::ToSpan;
        let bad = |e: jiff::Error| StoreError::Invalid(format!("a report's dates: {e}"));
        let ts = jiff::Timestamp::from_millisecond(from).map_err(bad)?;
        let mut day = ts.to_zoned(tz.clone()).date();
        match by {
            Slice::Week => {
                let back = day.weekday().to_monday_zero_offset();
                day = day.checked_sub(i64::from(back).days()).map_err(bad)?;
            }
            Slice::Month => day = day.first_of_month(),
            _ => {}
        }
        let step = match by {
            Slice::Week => 7.days(),
            Slice::Month => 1.month(),
            _ => 1.day(),
        };
        let mut starts = Vec::new();
        let mut keys = Vec::new();
        loop {
            let start = day
                .to_zoned(tz.clone())
                .map_err(bad)?
                .timestamp()
                .as_millisecond();
            if start >= to || starts.len() > 4000 {
                break;
            }
            starts.push(start);
            keys.push(match by {
                Slice::Month => day.strftime("%Y-%m").to_string(),
                _ => day.strftime("%Y-%m-%d").to_string(),
            });
            day = day.checked_add(step).map_err(bad)?;
        }
        Ok(Buckets { starts, keys })
    }

    fn key(&self, at: Millis) -> String {
        let i = self.starts.partition_point(|s| *s <= at);
        i.checked_sub(1)
            .and_then(|i| self.keys.get(i))
            .cloned()
            .unwrap_or_default()
    }
}

/// Figures being summed up: per row key, and the total.
#[derive(Default)]
struct Acc {
    durs: [Vec<(i64, i64)>; 4],
    opened: i64,
    reopened: i64,
    resolved: i64,
    messages_in: i64,
    messages_out: i64,
    sla: BTreeMap<String, (i64, i64)>,
    csat: CsatFigures,
}

impl Acc {
    fn fact(&mut self, kind: Kind, f: &FactRow) {
        let slot = match kind {
            Kind::FirstResponse => Some(0),
            Kind::NextResponse => Some(1),
            Kind::Resolution => Some(2),
            Kind::CustomerWait => Some(3),
            _ => None,
        };
        if let Some(i) = slot {
            if let Some(v) = self.durs.get_mut(i) {
                v.push((f.value, f.business.unwrap_or(f.value)));
            }
            return;
        }
        match kind {
            Kind::Sla => {
                let e = self
                    .sla
                    .entry(f.label.clone().unwrap_or_default())
                    .or_default();
                if f.value > 0 {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
            Kind::Csat => {
                if let Some(n) = usize::try_from(f.value - 1)
                    .ok()
                    .and_then(|i| self.csat.scores.get_mut(i))
                {
                    *n += 1;
                    self.csat.answered += 1;
                }
            }
            _ => self.count(kind, f.value),
        }
    }

    fn count(&mut self, kind: Kind, n: i64) {
        match kind {
            Kind::Opened => self.opened += n,
            Kind::Reopened => self.reopened += n,
            Kind::Resolved => self.resolved += n,
            Kind::MessageIn => self.messages_in += n,
            Kind::MessageOut => self.messages_out += n,
            Kind::CsatSent => self.csat.sent += n,
            _ => {}
        }
    }

    fn figures(mut self) -> Figures {
        let mut d = self.durs.iter_mut().map(|v| durations(v));
        let mut sla = SlaFigures::default();
        let mut policies = Vec::new();
        for (name, (met, missed)) in self.sla {
            sla.met += met;
            sla.missed += missed;
            policies.push((name, SlaFigures { met, missed }));
        }
        Figures {
            first_response: d.next().unwrap_or_default(),
            next_response: d.next().unwrap_or_default(),
            resolution: d.next().unwrap_or_default(),
            customer_wait: d.next().unwrap_or_default(),
            opened: self.opened,
            reopened: self.reopened,
            resolved: self.resolved,
            messages_in: self.messages_in,
            messages_out: self.messages_out,
            sla,
            sla_policies: policies,
            csat: self.csat,
            backlog: None,
        }
    }
}

/// Median, 90th percentile and mean of (wall, business) pairs (the nearest-rank method: a
/// median is a duration that happened).
fn durations(v: &mut [(i64, i64)]) -> Durations {
    if v.is_empty() {
        return Durations::default();
    }
    let n = v.len();
    let rank = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
    let mean = |s: i128| Some((s / n as i128) as i64);
    let mut wall: Vec<i64> = v.iter().map(|x| x.0).collect();
    let mut business: Vec<i64> = v.iter().map(|x| x.1).collect();
    wall.sort_unstable();
    business.sort_unstable();
    Durations {
        count: n as i64,
        median: wall.get(rank(0.5)).copied(),
        p90: wall.get(rank(0.9)).copied(),
        mean: mean(wall.iter().map(|x| i128::from(*x)).sum()),
        median_business: business.get(rank(0.5)).copied(),
        p90_business: business.get(rank(0.9)).copied(),
        mean_business: mean(business.iter().map(|x| i128::from(*x)).sum()),
    }
}

struct Accumulator {
    buckets: Option<Buckets>,
    rows: BTreeMap<String, Acc>,
    total: Acc,
    backlog_before: Option<i64>,
}

impl Accumulator {
    fn new(buckets: Option<Buckets>) -> Self {
        let mut rows = BTreeMap::new();
        if let Some(b) = &buckets {
            for k in &b.keys {
                rows.insert(k.clone(), Acc::default());
            }
        }
        Accumulator {
            buckets,
            rows,
            total: Acc::default(),
            backlog_before: None,
        }
    }

    fn key(&self, by: Slice, f: &FactRow) -> String {
        match by {
            Slice::Channel => f.channel.clone(),
            Slice::Agent => f.agent.clone().unwrap_or_else(|| "(nobody)".into()),
            Slice::Team => f.team.clone().unwrap_or_else(|| "(no team)".into()),
            Slice::Tag => String::new(),
            Slice::Day | Slice::Week | Slice::Month => self
                .buckets
                .as_ref()
                .map(|b| b.key(f.at))
                .unwrap_or_default(),
        }
    }

    fn add_fact(&mut self, kind: Kind, f: &FactRow, keys: &[String]) {
        self.total.fact(kind, f);
        for k in keys {
            self.rows.entry(k.clone()).or_default().fact(kind, f);
        }
    }

    fn add_count(&mut self, kind: Kind, f: &FactRow, keys: &[String]) {
        self.total.count(kind, f.value);
        for k in keys {
            self.rows.entry(k.clone()).or_default().count(kind, f.value);
        }
    }

    fn add_tag_count(&mut self, kind: Kind, tag: &str, n: i64) {
        self.rows.entry(tag.to_string()).or_default().count(kind, n);
    }

    fn finish(self, by: Slice) -> (Vec<ReportRow>, Figures) {
        let mut rows: Vec<ReportRow> = self
            .rows
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(key, acc)| ReportRow {
                key,
                figures: acc.figures(),
            })
            .collect();
        let mut total = self.total.figures();
        if by.is_time() {
            // BTreeMap order is time order (ISO dates).
            if let Some(mut open) = self.backlog_before {
                for r in &mut rows {
                    open += r.figures.opened + r.figures.reopened - r.figures.resolved;
                    r.figures.backlog = Some(open);
                }
                total.backlog = Some(open);
            }
        } else {
            rows.sort_by(|a, b| {
                let size = |f: &Figures| f.opened + f.messages_in + f.first_response.count;
                size(&b.figures)
                    .cmp(&size(&a.figures))
                    .then_with(|| a.key.cmp(&b.key))
            });
        }
        (rows, total)
    }
}
