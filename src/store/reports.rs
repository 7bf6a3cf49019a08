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
use crate::reports::hist::Dense;
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

fn cursor(conn: &Connection) -> Result<Option<EventId>> {
    super::derivations::cursor(conn, CURSOR)
}

fn set_cursor(conn: &Connection, to: EventId) -> Result<()> {
    super::derivations::set_cursor(conn, CURSOR, to)
}

fn load_state(conn: &Connection, conv: ConversationId) -> Result<Option<State>> {
    Ok(conn
        .prepare_cached(
            "SELECT open, episode_start, first_replied, waiting_since, waiting_channel,
                replied_at, channel, assignee, team, policy, breached, tags
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
                tags: split_tags(&r.get::<_, String>(11)?),
            })
        })
        .optional()?)
}

fn save_state(conn: &Connection, conv: ConversationId, s: &State) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO report_state(conversation_id, open, episode_start, first_replied,
            waiting_since, waiting_channel, replied_at, channel, assignee, team, policy, breached,
            tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
        s.tags.join("\n"),
    ])?;
    Ok(())
}

fn split_tags(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The zone days are cut in for the daily rollups: the workspace's first business hours',
/// else UTC.
pub(crate) struct Zone {
    pub name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    pub(crate) fn of(cfg: &SlaConfig) -> Zone {
        cfg.hours
            .first()
            .and_then(|h| {
                let tz = jiff::tz::TimeZone::get(&h.zone).ok()?;
                Some(Zone {
                    name: h.zone.clone(),
                    tz,
                })
            })
            .unwrap_or_else(Zone::utc)
    }

    fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    fn named(name: &str) -> Option<Zone> {
        Some(Zone {
            name: name.to_string(),
            tz: jiff::tz::TimeZone::get(name).ok()?,
        })
    }

    /// The local date of an instant, as days since 1970-01-01.
    fn day(&self, at: Millis) -> i64 {
        let Ok(ts) = jiff::Timestamp::from_millisecond(at) else {
            return at.div_euclid(86_400_000);
        };
        let date = ts.to_zoned(self.tz.clone()).date();
        date.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second().div_euclid(86_400))
            .unwrap_or_else(|_| at.div_euclid(86_400_000))
    }

    /// When a local date (days since 1970-01-01) begins.
    fn midnight(&self, day: i64) -> Millis {
        jiff::Timestamp::from_second(day * 86_400)
            .ok()
            .and_then(|t| {
                t.to_zoned(jiff::tz::TimeZone::UTC)
                    .date()
                    .to_zoned(self.tz.clone())
                    .ok()
            })
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(day * 86_400_000)
    }
}

fn write_facts(
    conn: &Connection,
    conv: ConversationId,
    facts: &[Fact],
    zone: &Zone,
    tags: &[String],
) -> Result<()> {
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
        let d = DailyFact::of(f);
        add_daily(conn, &d, zone, None, 1)?;
        for t in tags {
            add_daily(conn, &d, zone, Some(t), 1)?;
        }
    }
    Ok(())
}

/// Bring the per-tag totals of a conversation's facts in line with the tags it carries now:
/// a new tag gets every fact so far, a removed one gives them back. Run on every event that
/// may change tags (tagging, undo, a merge) and at the end of a backfill, so the tag slice
/// always counts a conversation under its current tags.
fn sync_tags(
    conn: &Connection,
    conv: ConversationId,
    state: &mut State,
    zone: &Zone,
) -> Result<()> {
    let mut now: Vec<String> = conn
        .prepare_cached("SELECT tag FROM tags WHERE conversation_id = ?1")?
        .query_map([conv], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    now.sort();
    if now == state.tags {
        return Ok(());
    }
    let added: Vec<&String> = now.iter().filter(|t| !state.tags.contains(t)).collect();
    let removed: Vec<&String> = state.tags.iter().filter(|t| !now.contains(t)).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT metric, at, channel, team, agent, value, business, label FROM report_facts
         WHERE conversation_id = ?1",
    )?;
    let mut rows = stmt.query([conv])?;
    while let Some(r) = rows.next()? {
        let Some(stored) = StoredFact::read(r)? else {
            continue;
        };
        let f = stored.daily();
        for t in &added {
            add_daily(conn, &f, zone, Some(t), 1)?;
        }
        for t in &removed {
            add_daily(conn, &f, zone, Some(t), -1)?;
        }
    }
    state.tags = now;
    Ok(())
}

/// A fact read back from `report_facts` (columns metric, at, channel, team, agent, value,
/// business, label, in that order).
struct StoredFact {
    kind: Kind,
    at: Millis,
    channel: String,
    team: Option<String>,
    agent: Option<String>,
    value: i64,
    business: Option<Millis>,
    label: Option<String>,
}

impl StoredFact {
    /// None: a metric this build does not know (a newer braid wrote it).
    fn read(r: &rusqlite::Row<'_>) -> Result<Option<StoredFact>> {
        let metric: String = r.get(0)?;
        let Some(kind) = Kind::parse(&metric) else {
            return Ok(None);
        };
        Ok(Some(StoredFact {
            kind,
            at: r.get(1)?,
            channel: r.get(2)?,
            team: r.get(3)?,
            agent: r.get(4)?,
            value: r.get(5)?,
            business: r.get(6)?,
            label: r.get(7)?,
        }))
    }

    fn daily(&self) -> DailyFact<'_> {
        DailyFact::from_parts(
            self.kind,
            self.at,
            &self.channel,
            self.team.as_deref(),
            self.agent.as_deref(),
            self.value,
            self.business,
            self.label.as_deref(),
        )
    }
}

/// A fact as the daily rollup keeps it.
struct DailyFact<'a> {
    metric: &'a str,
    at: Millis,
    channel: &'a str,
    team: &'a str,
    agent: &'a str,
    label: String,
    /// A duration (wall, business), else a count of one.
    duration: Option<(Millis, Millis)>,
}

impl<'a> DailyFact<'a> {
    fn of(f: &'a Fact) -> DailyFact<'a> {
        Self::from_parts(
            f.kind,
            f.at,
            &f.channel,
            f.team.as_deref(),
            f.agent.as_deref(),
            f.value,
            f.business,
            f.label.as_deref(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        kind: Kind,
        at: Millis,
        channel: &'a str,
        team: Option<&'a str>,
        agent: Option<&'a str>,
        value: i64,
        business: Option<Millis>,
        label: Option<&str>,
    ) -> DailyFact<'a> {
        let (metric, label) = match kind {
            Kind::Sla if value > 0 => ("sla_met", label.unwrap_or_default().to_string()),
            Kind::Sla => ("sla_missed", label.unwrap_or_default().to_string()),
            Kind::Csat => ("csat", value.to_string()),
            k => (k.as_str(), String::new()),
        };
        DailyFact {
            metric,
            at,
            channel,
            team: team.unwrap_or(""),
            agent: agent.unwrap_or(""),
            label,
            duration: kind
                .is_duration()
                .then(|| (value, business.unwrap_or(value))),
        }
    }
}

/// Add (`delta` 1) or take away (-1) a fact of the daily totals, or of a tag's (`tag`).
fn add_daily(
    conn: &Connection,
    f: &DailyFact<'_>,
    zone: &Zone,
    tag: Option<&str>,
    delta: i64,
) -> Result<()> {
    let day = zone.day(f.at);
    let (table, tag) = match tag {
        Some(t) => ("report_daily_tags", t),
        None => ("report_daily", ""),
    };
    // The tag column exists in the tags' table only; `?7 = ?7` keeps the numbering.
    let tag_col = if table == "report_daily" { "" } else { ", tag" };
    let tag_val = if table == "report_daily" { "" } else { ", ?7" };
    let tag_cond = if table == "report_daily" {
        "?7 = ?7"
    } else {
        "tag = ?7"
    };
    let Some((wall, business)) = f.duration else {
        conn.prepare_cached(&format!(
            "INSERT INTO {table}(metric, day, channel, team, agent, label, n{tag_col})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8{tag_val})
             ON CONFLICT DO UPDATE SET n = n + excluded.n"
        ))?
        .execute(rusqlite::params![
            f.metric, day, f.channel, f.team, f.agent, f.label, tag, delta
        ])?;
        return Ok(());
    };
    type Blobs = (Option<Vec<u8>>, Option<Vec<u8>>);
    let old: Option<Blobs> = conn
        .prepare_cached(&format!(
            "SELECT hist, hist_business FROM {table}
             WHERE metric = ?1 AND day = ?2 AND channel = ?3 AND team = ?4 AND agent = ?5
               AND label = ?6 AND {tag_cond}"
        ))?
        .query_row(
            rusqlite::params![f.metric, day, f.channel, f.team, f.agent, f.label, tag],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (h, hb) = old.unwrap_or_default();
    conn.prepare_cached(&format!(
        "INSERT INTO {table}(metric, day, channel, team, agent, label, n, total, business,
            hist, hist_business{tag_col})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?9, ?10, ?11, ?12{tag_val})
         ON CONFLICT DO UPDATE SET n = n + excluded.n,
            total = total + excluded.total, business = business + excluded.business,
            hist = excluded.hist, hist_business = excluded.hist_business"
    ))?
    .execute(rusqlite::params![
        f.metric,
        day,
        f.channel,
        f.team,
        f.agent,
        f.label,
        tag,
        delta,
        wall * delta,
        business * delta,
        crate::reports::hist::adjust(h.as_deref(), wall, delta),
        crate::reports::hist::adjust(hb.as_deref(), business, delta),
    ])?;
    Ok(())
}

/// The zone the daily rollups are in (None: none written yet).
fn rollup_zone(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM report_settings WHERE key = 'zone'")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

fn set_rollup_zone(conn: &Connection, zone: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO report_settings(key, value) VALUES ('zone', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([zone])?;
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
    zone: &Zone,
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
    write_facts(conn, conv, &facts, zone, &[])?;
    let mut state = tracker.state;
    sync_tags(conn, conv, &mut state, zone)?;
    save_state(conn, conv, &state)?;
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
        let zone = Zone::of(cfg);
        let from = self.write_with(cursor)?;
        if from.is_none() {
            self.backfill_reports(cfg, false, progress)?;
        } else if self.write_with(rollup_zone)?.as_deref() != Some(zone.name.as_str()) {
            self.rebuild_daily(&zone)?;
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
                    let mut state = tracker.state;
                    write_facts(tx, *conv, &facts, &zone, &state.tags)?;
                    if matches!(
                        ev.kind.as_str(),
                        "tag_added" | "tag_removed" | "undone" | "contacts_merged"
                    ) {
                        sync_tags(tx, *conv, &mut state, &zone)?;
                    }
                    states.insert(*conv, state);
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

    /// Sum the facts into days of another zone (the workspace's business hours moved):
    /// the facts stay, their days are cut again.
    fn rebuild_daily(&mut self, zone: &Zone) -> Result<()> {
        tracing::info!(zone = %zone.name, "reports: cutting the days again in a new zone");
        self.write_with(|tx| {
            tx.execute_batch("DELETE FROM report_daily; DELETE FROM report_daily_tags;")?;
            let mut stmt = tx.prepare(
                "SELECT f.metric, f.at, f.channel, f.team, f.agent, f.value, f.business, f.label,
                    coalesce(s.tags, '')
                 FROM report_facts f LEFT JOIN report_state s
                   ON s.conversation_id = f.conversation_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let Some(stored) = StoredFact::read(r)? else {
                    continue;
                };
                let f = stored.daily();
                add_daily(tx, &f, zone, None, 1)?;
                for t in split_tags(&r.get::<_, String>(8)?) {
                    add_daily(tx, &f, zone, Some(&t), 1)?;
                }
            }
            set_rollup_zone(tx, &zone.name)
        })
    }

    /// Skip the events up to `to` (a benchmark's "facts off" rounds; a server never does).
    pub fn set_reports_cursor(&mut self, to: EventId) -> Result<()> {
        self.write_with(|tx| set_cursor(tx, to))
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
        let zone = Zone::of(cfg);
        let (upto, max_conv, total) = self.write_with(|tx| {
            let upto: EventId = match cursor(tx)? {
                Some(c) if only_new => c,
                _ => EventId(
                    tx.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?,
                ),
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
                    "DELETE FROM report_facts; DELETE FROM report_daily; DELETE FROM report_daily_tags;
                     DELETE FROM report_state;",
                )?;
                set_cursor(tx, upto)?;
                set_rollup_zone(tx, &zone.name)?;
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
                         AND NOT EXISTS
                              (SELECT 1 FROM report_state s WHERE s.conversation_id = c.id)
                         ORDER BY id LIMIT 500",
                    )?
                    .query_map((after, max_conv), |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for id in &ids {
                    backfill_conversation(tx, ConversationId(*id), upto, cfg, &zone)?;
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

    /// A report over `q`'s range, within `scope`. A range of whole days in the report zone
    /// (the CLI's and the TUI's) reads the daily rollups: counts and sums exactly, medians
    /// and 90th percentiles exactly up to [`EXACT_UP_TO`] durations per metric and from the
    /// histograms (within 0.5%) beyond. Any other range, another zone, and the tag slice read
    /// the facts themselves (exact; one index range per metric).
    pub fn report(&self, q: &ReportQuery, scope: &ReportScope) -> Result<Report> {
        self.report_exact_up_to(q, scope, EXACT_UP_TO)
    }

    /// [`report`](Self::report) with another limit of exact durations (tests read the
    /// histograms of a small store with 0).
    pub(crate) fn report_exact_up_to(
        &self,
        q: &ReportQuery,
        scope: &ReportScope,
        exact_up_to: usize,
    ) -> Result<Report> {
        let started = std::time::Instant::now();
        let q = &self.resolve_days(q)?;
        if q.to <= q.from {
            return Err(StoreError::Invalid(
                "a report's range ends after it begins (--from before --to)".into(),
            ));
        }
        let rollup = rollup_zone(&self.conn)?;
        let tz_name =
            q.tz.clone()
                .or_else(|| rollup.clone())
                .unwrap_or_else(|| "UTC".into());
        let zone = Zone::named(&tz_name).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown time zone '{}' (an IANA name such as Europe/Berlin)",
                crate::sanitize::line(&tz_name)
            ))
        })?;
        let buckets = if q.by.is_time() {
            Some(Buckets::new(q.by, q.from, q.to, &zone.tz)?)
        } else {
            None
        };
        let mut acc = Accumulator::new(buckets);
        let (d0, d1) = (zone.day(q.from), zone.day(q.to));
        let daily = rollup.as_deref() == Some(zone.name.as_str())
            && zone.midnight(d0) == q.from
            && zone.midnight(d1) == q.to;
        // Every conversation's tags, read only if a tag slice reads facts one by one.
        let mut tags: Option<TagMap> = None;
        let mut kinds: Vec<Kind> = Vec::new();
        for (m, ks) in [
            (Metric::FirstResponse, &[Kind::FirstResponse][..]),
            (Metric::NextResponse, &[Kind::NextResponse]),
            (Metric::Resolution, &[Kind::Resolution]),
            (Metric::CustomerWait, &[Kind::CustomerWait]),
            (
                Metric::Volume,
                &[Kind::Opened, Kind::Reopened, Kind::Resolved],
            ),
            (Metric::Messages, &[Kind::MessageIn, Kind::MessageOut]),
            (Metric::Sla, &[Kind::Sla]),
            (Metric::Csat, &[Kind::Csat, Kind::CsatSent]),
        ] {
            if q.wants(m) {
                kinds.extend_from_slice(ks);
            }
        }
        for kind in kinds {
            if daily {
                let exact =
                    kind.is_duration() && self.daily_count(kind, d0, d1, scope)? <= exact_up_to;
                if !exact {
                    let days = Days {
                        d0,
                        d1,
                        zone: &zone,
                        by: q.by,
                    };
                    if q.by == Slice::Tag {
                        // The total counts a conversation once; the rows, under each tag.
                        self.read_daily(kind, &days, scope, Source::Total, &mut acc)?;
                        self.read_daily(kind, &days, scope, Source::Tags, &mut acc)?;
                    } else {
                        self.read_daily(kind, &days, scope, Source::Rows, &mut acc)?;
                    }
                    continue;
                }
            }
            if q.by == Slice::Tag && tags.is_none() {
                tags = Some(TagMap::load(&self.conn)?);
            }
            self.read_facts(kind, q, scope, tags.as_ref(), &mut acc)?;
        }
        if q.by.is_time() && q.wants(Metric::Volume) {
            acc.backlog_before = Some(self.backlog_before(q.from, scope)?);
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

    /// A query given as dates (`days`): whole days in its zone, else the report zone.
    fn resolve_days(&self, q: &ReportQuery) -> Result<ReportQuery> {
        let Some((first, last)) = &q.days else {
            return Ok(q.clone());
        };
        let name = match &q.tz {
            Some(t) => t.clone(),
            None => rollup_zone(&self.conn)?.unwrap_or_else(|| "UTC".into()),
        };
        let zone = Zone::named(&name).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown time zone '{}' (an IANA name such as Europe/Berlin)",
                crate::sanitize::line(&name)
            ))
        })?;
        let date = |s: &str| -> Result<i64> {
            let d: jiff::civil::Date = s.trim().parse().map_err(|_| {
                StoreError::Invalid(format!(
                    "'{}' is not a date: use YYYY-MM-DD",
                    crate::sanitize::line(s)
                ))
            })?;
            Ok(d.to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(|e| StoreError::Invalid(format!("a report's dates: {e}")))?
                .timestamp()
                .as_second()
                .div_euclid(86_400))
        };
        let (a, b) = (date(first)?, date(last)?);
        if a > b {
            return Err(StoreError::Invalid(format!(
                "the range begins {} after it ends {}: give the earlier date first",
                crate::sanitize::line(first),
                crate::sanitize::line(last)
            )));
        }
        let mut out = q.clone();
        out.from = zone.midnight(a);
        out.to = zone.midnight(b + 1);
        out.tz = Some(name);
        out.days = None;
        Ok(out)
    }

    /// How many facts of a kind the rollup holds for days `[d0, d1)` in a scope.
    fn daily_count(&self, kind: Kind, d0: i64, d1: i64, scope: &ReportScope) -> Result<usize> {
        let (cond, params) = scope.condition("nullif(team, '')", "nullif(agent, '')");
        let sql = format!(
            "SELECT coalesce(sum(n), 0) FROM report_daily
             WHERE metric = ?1 AND day >= ?2 AND day < ?3{cond}"
        );
        let mut args: Vec<rusqlite::types::Value> =
            vec![kind.as_str().to_string().into(), d0.into(), d1.into()];
        args.extend(params.into_iter().map(Into::into));
        let n: i64 = self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(n as usize)
    }

    /// The rollup rows of a kind for `days`, summed into `acc` (`source`: which rollup, and
    /// whether into the rows, the total or both).
    fn read_daily(
        &self,
        kind: Kind,
        days: &Days<'_>,
        scope: &ReportScope,
        source: Source,
        acc: &mut Accumulator,
    ) -> Result<()> {
        let (cond, params) = scope.condition("nullif(team, '')", "nullif(agent, '')");
        let metrics: &[&str] = match kind {
            Kind::Sla => &["sla_met", "sla_missed"],
            k => &[k.as_str()],
        };
        let (table, tag) = match source {
            Source::Tags => ("report_daily_tags", "tag"),
            _ => ("report_daily", "''"),
        };
        for metric in metrics {
            let sql = format!(
                "SELECT day, channel, nullif(team, ''), nullif(agent, ''), label, n, total,
                    business, hist, hist_business, {tag}
                 FROM {table} WHERE metric = ?1 AND day >= ?2 AND day < ?3 AND n <> 0{cond}"
            );
            let mut args: Vec<rusqlite::types::Value> =
                vec![metric.to_string().into(), days.d0.into(), days.d1.into()];
            args.extend(params.iter().cloned().map(Into::into));
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            let mut midnights: HashMap<i64, Millis> = HashMap::new();
            let mut day_keys: HashMap<i64, String> = HashMap::new();
            while let Some(r) = rows.next()? {
                let day: i64 = r.get(0)?;
                let at = *midnights
                    .entry(day)
                    .or_insert_with(|| days.zone.midnight(day));
                let n: i64 = r.get(5)?;
                let label = || -> Result<String> { Ok(r.get(4)?) };
                let part = match kind {
                    Kind::Sla => Part::Sla {
                        policy: label()?,
                        met: *metric == "sla_met",
                        n,
                    },
                    Kind::Csat => Part::Csat {
                        score: label()?.parse().unwrap_or(0),
                        n,
                    },
                    k if k.is_duration() => Part::Hist {
                        n,
                        total: r.get(6)?,
                        business: r.get(7)?,
                        hist: blob(r.get_ref(8)?),
                        hist_business: blob(r.get_ref(9)?),
                    },
                    _ => Part::Count(n),
                };
                match source {
                    Source::Total => acc.total.part(kind, &part),
                    Source::Tags => {
                        let tag = match r.get_ref(10)? {
                            rusqlite::types::ValueRef::Text(t) => {
                                std::str::from_utf8(t).unwrap_or("")
                            }
                            _ => "",
                        };
                        acc.row(tag).part(kind, &part);
                    }
                    Source::Rows => {
                        let text = |i: usize| -> Result<Option<&str>> {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok(),
                                _ => None,
                            })
                        };
                        let key: &str = match days.by {
                            Slice::Channel => text(1)?.unwrap_or(""),
                            Slice::Team => text(2)?.unwrap_or("(no team)"),
                            Slice::Agent => text(3)?.unwrap_or("(nobody)"),
                            _ => day_keys.entry(day).or_insert_with(|| {
                                acc.buckets.as_ref().map(|b| b.key(at)).unwrap_or_default()
                            }),
                        };
                        acc.add_part(kind, &part, key);
                    }
                }
            }
        }
        Ok(())
    }

    /// The facts of a kind over the range, one by one, into `acc` (`tags`: the tag slice).
    fn read_facts(
        &self,
        kind: Kind,
        q: &ReportQuery,
        scope: &ReportScope,
        tags: Option<&TagMap>,
        acc: &mut Accumulator,
    ) -> Result<()> {
        let (cond, params) = scope.condition("team", "agent");
        let mut stmt = self.conn.prepare_cached(&scan_sql(&cond))?;
        let mut args: Vec<rusqlite::types::Value> =
            vec![kind.as_str().to_string().into(), q.from.into(), q.to.into()];
        args.extend(params.iter().cloned().map(Into::into));
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
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
            match tags {
                Some(t) => {
                    let conv: i64 = r.get(7)?;
                    acc.add_fact_tags(kind, &row, t.of(conv));
                }
                None => {
                    let key = acc.key(q.by, &row);
                    acc.add_fact(kind, &row, &key);
                }
            }
        }
        Ok(())
    }

    /// Conversations open before `from` (opened and reopened minus resolved), in a scope.
    fn backlog_before(&self, from: Millis, scope: &ReportScope) -> Result<i64> {
        let (cond, params) = scope.condition("team", "agent");
        let sql = format!(
            "SELECT coalesce(sum(CASE metric WHEN 'resolved' THEN -1 ELSE 1 END), 0)
             FROM report_facts
             WHERE metric IN ('opened', 'reopened', 'resolved') AND at < ?1{cond}"
        );
        let mut args: Vec<rusqlite::types::Value> = vec![from.into()];
        args.extend(params.into_iter().map(Into::into));
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?)
    }
}

/// Whole days of a report in the rollups' zone.
struct Days<'a> {
    d0: i64,
    d1: i64,
    zone: &'a Zone,
    by: Slice,
}

/// Which rollup a report reads, into what.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The daily totals, into the rows (keyed by the slice) and the total.
    Rows,
    /// The daily totals, into the total only (the tag slice).
    Total,
    /// The per-tag totals, into the rows keyed by tag.
    Tags,
}

/// Up to this many durations of a metric in a report are read one by one (exact medians);
/// beyond, from the daily histograms.
pub const EXACT_UP_TO: usize = 20_000;

/// One metric's facts over a range (`cond`: the scope's condition): the covering index
/// alone answers it (a test holds the plan to that).
fn scan_sql(cond: &str) -> String {
    format!(
        "SELECT at, channel, team, agent, value, business, label, conversation_id
         FROM report_facts
         WHERE metric = ?1 AND at >= ?2 AND at < ?3{cond}"
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

/// Every conversation's tags, read once for a tag slice.
struct TagMap {
    names: Vec<String>,
    of: HashMap<i64, Vec<usize>>,
}

impl TagMap {
    fn load(conn: &Connection) -> Result<TagMap> {
        let mut names: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut of: HashMap<i64, Vec<usize>> = HashMap::new();
        let mut stmt = conn.prepare_cached("SELECT conversation_id, tag FROM tags")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let conv: i64 = r.get(0)?;
            let tag: String = r.get(1)?;
            let i = match index.get(&tag) {
                Some(i) => *i,
                None => {
                    names.push(tag.clone());
                    index.insert(tag, names.len() - 1);
                    names.len() - 1
                }
            };
            of.entry(conv).or_default().push(i);
        }
        Ok(TagMap { names, of })
    }

    fn of(&self, conv: i64) -> impl Iterator<Item = &str> {
        self.of
            .get(&conv)
            .into_iter()
            .flatten()
            .filter_map(|i| self.names.get(*i).map(String::as_str))
    }
}

/// A rollup row's contribution.
enum Part<'a> {
    Count(i64),
    Sla {
        policy: String,
        met: bool,
        n: i64,
    },
    Csat {
        score: i64,
        n: i64,
    },
    Hist {
        n: i64,
        total: i64,
        business: i64,
        hist: &'a [u8],
        hist_business: &'a [u8],
    },
}

/// A blob column, borrowed (NULL: empty).
fn blob(v: rusqlite::types::ValueRef<'_>) -> &[u8] {
    match v {
        rusqlite::types::ValueRef::Blob(b) => b,
        _ => &[],
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

/// The durations of one metric being summed up: one by one (exact), or as histograms.
#[derive(Default, Clone)]
struct DurAcc {
    vals: Vec<(i64, i64)>,
    hist: Option<Box<(Dense, Dense)>>,
    n: i64,
    total: i128,
    business: i128,
}

impl DurAcc {
    fn add(&mut self, wall: i64, business: i64) {
        self.vals.push((wall, business));
        self.n += 1;
        self.total += i128::from(wall);
        self.business += i128::from(business);
    }

    fn add_hist(&mut self, n: i64, total: i64, business: i64, h: &[u8], hb: &[u8]) {
        let hist = self.hist.get_or_insert_with(Box::default);
        hist.0.merge(h);
        hist.1.merge(hb);
        self.n += n;
        self.total += i128::from(total);
        self.business += i128::from(business);
    }

    fn durations(mut self) -> Durations {
        if self.n == 0 {
            return Durations::default();
        }
        let mean = |s: i128| Some((s / i128::from(self.n)) as i64);
        let (mean, mean_business) = (mean(self.total), mean(self.business));
        if let Some(mut h) = self.hist.take() {
            for (w, b) in &self.vals {
                h.0.add(*w);
                h.1.add(*b);
            }
            return Durations {
                count: self.n,
                median: h.0.quantile(0.5),
                p90: h.0.quantile(0.9),
                mean,
                median_business: h.1.quantile(0.5),
                p90_business: h.1.quantile(0.9),
                mean_business,
            };
        }
        let n = self.vals.len();
        let rank = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        let mut wall: Vec<i64> = self.vals.iter().map(|x| x.0).collect();
        let mut business: Vec<i64> = self.vals.iter().map(|x| x.1).collect();
        wall.sort_unstable();
        business.sort_unstable();
        Durations {
            count: self.n,
            median: wall.get(rank(0.5)).copied(),
            p90: wall.get(rank(0.9)).copied(),
            mean,
            median_business: business.get(rank(0.5)).copied(),
            p90_business: business.get(rank(0.9)).copied(),
            mean_business,
        }
    }
}

/// Figures being summed up: per row key, and the total.
#[derive(Default, Clone)]
struct Acc {
    durs: [DurAcc; 4],
    opened: i64,
    reopened: i64,
    resolved: i64,
    messages_in: i64,
    messages_out: i64,
    sla: BTreeMap<String, (i64, i64)>,
    csat: CsatFigures,
}

fn slot(kind: Kind) -> Option<usize> {
    match kind {
        Kind::FirstResponse => Some(0),
        Kind::NextResponse => Some(1),
        Kind::Resolution => Some(2),
        Kind::CustomerWait => Some(3),
        _ => None,
    }
}

impl Acc {
    fn fact(&mut self, kind: Kind, f: &FactRow) {
        if let Some(d) = slot(kind).and_then(|i| self.durs.get_mut(i)) {
            d.add(f.value, f.business.unwrap_or(f.value));
            return;
        }
        match kind {
            Kind::Sla => self.part(
                kind,
                &Part::Sla {
                    policy: f.label.clone().unwrap_or_default(),
                    met: f.value > 0,
                    n: 1,
                },
            ),
            Kind::Csat => self.part(
                kind,
                &Part::Csat {
                    score: f.value,
                    n: 1,
                },
            ),
            _ => self.part(kind, &Part::Count(1)),
        }
    }

    fn part(&mut self, kind: Kind, p: &Part) {
        match p {
            Part::Count(n) => match kind {
                Kind::Opened => self.opened += n,
                Kind::Reopened => self.reopened += n,
                Kind::Resolved => self.resolved += n,
                Kind::MessageIn => self.messages_in += n,
                Kind::MessageOut => self.messages_out += n,
                Kind::CsatSent => self.csat.sent += n,
                _ => {}
            },
            Part::Sla { policy, met, n } => {
                let e = self.sla.entry(policy.clone()).or_default();
                if *met {
                    e.0 += n;
                } else {
                    e.1 += n;
                }
            }
            Part::Csat { score, n } => {
                if let Some(c) = usize::try_from(score - 1)
                    .ok()
                    .and_then(|i| self.csat.scores.get_mut(i))
                {
                    *c += n;
                    self.csat.answered += n;
                }
            }
            Part::Hist {
                n,
                total,
                business,
                hist,
                hist_business,
            } => {
                if let Some(d) = slot(kind).and_then(|i| self.durs.get_mut(i)) {
                    d.add_hist(*n, *total, *business, hist, hist_business);
                }
            }
        }
    }

    fn figures(self) -> Figures {
        let [a, b, c, d] = self.durs;
        let mut sla = SlaFigures::default();
        let mut policies = Vec::new();
        for (name, (met, missed)) in self.sla {
            sla.met += met;
            sla.missed += missed;
            policies.push((name, SlaFigures { met, missed }));
        }
        Figures {
            first_response: a.durations(),
            next_response: b.durations(),
            resolution: c.durations(),
            customer_wait: d.durations(),
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

struct Accumulator {
    buckets: Option<Buckets>,
    /// The rows in the order they came, and where each key is.
    rows: Vec<(String, Acc)>,
    index: HashMap<String, usize>,
    total: Acc,
    backlog_before: Option<i64>,
}

impl Accumulator {
    fn new(buckets: Option<Buckets>) -> Self {
        let mut acc = Accumulator {
            buckets: None,
            rows: Vec::new(),
            index: HashMap::new(),
            total: Acc::default(),
            backlog_before: None,
        };
        if let Some(b) = &buckets {
            for k in &b.keys {
                acc.row(k);
            }
        }
        acc.buckets = buckets;
        acc
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

    fn row(&mut self, key: &str) -> &mut Acc {
        let i = match self.index.get(key) {
            Some(i) => *i,
            None => {
                self.rows.push((key.to_string(), Acc::default()));
                self.index.insert(key.to_string(), self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        &mut self.rows[i].1
    }

    fn add_fact(&mut self, kind: Kind, f: &FactRow, key: &str) {
        self.total.fact(kind, f);
        self.row(key).fact(kind, f);
    }

    fn add_fact_tags<'a>(&mut self, kind: Kind, f: &FactRow, tags: impl Iterator<Item = &'a str>) {
        self.total.fact(kind, f);
        for t in tags {
            self.row(t).fact(kind, f);
        }
    }

    fn add_part(&mut self, kind: Kind, p: &Part, key: &str) {
        self.total.part(kind, p);
        self.row(key).part(kind, p);
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
            // ISO dates: their order is time order.
            rows.sort_by(|a, b| a.key.cmp(&b.key));
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
