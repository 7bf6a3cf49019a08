//! `braid audit`: who did what, when, newest first: every change, every reply and note, every
//! refused action, with the agent the server attested (the kernel's word on the Unix user,
//! mapped through the workspace's `[[agents]]`), never a name a client claimed. An admin sees
//! the whole log; anyone else the events of the conversations their teams see and their own
//! refusals. Pages are walked by event id: `--before ID` continues below a page.

use super::client::{Client, unexpected};
use super::fmt::{Table, clip, local_time, rfc3339};
use super::{Globals, parse_conversation, write_json};
use crate::api::{
    AuditFilter, AuditPage, AuditPosition, EventRow, Request, Response, describe_event as describe,
};
use crate::model::{EventId, now_millis};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only the events of this agent
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    /// Only the events of this conversation (12 or #12)
    #[arg(long, value_name = "ID")]
    pub conversation: Option<String>,
    /// From this time on: 2026-11-03 (UTC), 2026-11-03T14:00:00Z, or an age (2h, 3d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events of these kinds (repeat or comma-separate: refused, assigned, note, ...)
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<String>,
    /// At most this many events
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Events older than this event id (the next page: the last id printed)
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct AuditJson {
    pub events: Vec<EventJson>,
    /// More events below the last one: pass its id as --before.
    pub older: bool,
}

#[derive(Debug, Serialize)]
pub struct EventJson {
    pub id: i64,
    pub at: String,
    /// The agent the server recorded (attested), or a process: `worker`, `system`...
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub message_id: Option<i64>,
    /// The event in words (what `braid audit` prints).
    pub summary: String,
    /// The event's detail as recorded (JSON, or null).
    pub data: Option<serde_json::Value>,
}

impl EventJson {
    pub fn new(e: &EventRow) -> EventJson {
        EventJson {
            id: e.id.0,
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            kind: e.kind.clone(),
            conversation_id: e.conversation_id.map(|c| c.0),
            contact_id: e.contact_id.map(|c| c.0),
            message_id: e.message_id.map(|m| m.0),
            summary: describe(e),
            data: e.data.as_deref().and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}

/// The filter the flags ask for.
pub fn filter(args: &Args, now: i64) -> anyhow::Result<AuditFilter> {
    let when = |s: &Option<String>| {
        s.as_deref()
            .map(|t| crate::units::parse_instant(t, now))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    Ok(AuditFilter {
        agent: args.agent.clone(),
        conversation: args
            .conversation
            .as_deref()
            .map(parse_conversation)
            .transpose()?,
        since: when(&args.since)?,
        until: when(&args.until)?,
        kinds: args
            .kind
            .iter()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect(),
    })
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let filter = filter(args, now_millis())?;
    let (client, _config) = Client::open(globals, "audit")?;
    let at = match args.before {
        Some(id) => AuditPosition::Before(EventId(id)),
        None => AuditPosition::Newest,
    };
    let page: AuditPage = match client.call(Request::Audit {
        seq: 0,
        filter,
        at,
        limit: args.limit,
    })? {
        Response::Audit { page, .. } => page,
        Response::Error(e) | Response::Refused(e) => anyhow::bail!("{e}"),
        other => return Err(unexpected("audit", &other)),
    };
    drop(client);
    if args.json {
        return write_json(
            out,
            &AuditJson {
                events: page.rows.iter().map(EventJson::new).collect(),
                older: page.older,
            },
        );
    }
    if page.rows.is_empty() {
        writeln!(out, "no events")?;
        return Ok(());
    }
    let mut table = Table::new(&[">ID", "TIME", "WHO", ">CONV", "WHAT"]);
    for e in &page.rows {
        table.row(vec![
            e.id.to_string(),
            local_time(e.at),
            clip(&e.actor, 16),
            e.conversation_id
                .map(|c| format!("#{c}"))
                .unwrap_or_else(|| "-".into()),
            clip(&describe(e), 100),
        ]);
    }
    table.write(out)?;
    if page.older
        && let Some(last) = page.rows.last()
    {
        writeln!(
            out,
            "more: braid audit --before {} (with the same filters)",
            last.id
        )?;
    }
    Ok(())
}
