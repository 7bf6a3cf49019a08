//! `braid status`: where the store is, the queue counters, the outbox, who runs the worker.

use super::{Globals, WorkerState, open_store, worker_state, write_json};
use crate::model::Status;
use crate::store::QueueFilter;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub version: &'static str,
    pub agent: String,
    /// The config file in use (null: none, defaults).
    pub config: Option<String>,
    pub data_dir: String,
    pub store: String,
    pub schema_version: i64,
    /// True for a workspace made by `braid demo`.
    pub demo: bool,
    pub conversations: ConversationCounts,
    pub outbox: OutboxCounts,
    pub worker: WorkerState,
    /// The newest event id: a change-feed position (`events` after it are new).
    pub last_event_id: i64,
}

#[derive(Debug, Serialize)]
pub struct ConversationCounts {
    pub open: i64,
    pub unassigned: i64,
    pub mine: i64,
    pub pending: i64,
    pub snoozed: i64,
    pub resolved: i64,
    pub total: i64,
}

#[derive(Debug, Serialize)]
pub struct OutboxCounts {
    /// Replies queued or being sent.
    pub waiting: i64,
    /// Replies that failed for good (until `:retry`).
    pub failed: i64,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = globals.load()?;
    let store = open_store(&config)?;
    let counts = store.counts(&config.agent)?;
    let (waiting, failed) = store.outbox_counts()?;
    let status = StatusJson {
        version: env!("CARGO_PKG_VERSION"),
        agent: config.agent.clone(),
        config: config.source.as_ref().map(|p| p.display().to_string()),
        data_dir: config.data_dir.display().to_string(),
        store: store
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        schema_version: store.schema_version()?,
        demo: crate::demo::is_demo_workspace(&store)?,
        conversations: ConversationCounts {
            open: counts.open,
            unassigned: counts.unassigned,
            mine: counts.mine,
            pending: counts.pending,
            snoozed: counts.snoozed,
            resolved: store.queue_count(&QueueFilter::Status(Status::Resolved))?,
            total: store.queue_count(&QueueFilter::All)?,
        },
        outbox: OutboxCounts { waiting, failed },
        worker: worker_state(&config.data_dir),
        last_event_id: store.last_event_id()?.0,
    };
    if args.json {
        return write_json(out, &status);
    }
    let c = &status.conversations;
    let worker = match (status.worker.running, status.worker.pid) {
        (true, Some(pid)) => format!("running (pid {pid})"),
        (true, None) => "running".to_string(),
        (false, _) => {
            "not running (replies wait in the outbox until `braid serve` or a TUI runs)".to_string()
        }
    };
    let lines = [
        ("agent", status.agent.clone()),
        (
            "config",
            status
                .config
                .clone()
                .unwrap_or_else(|| "none (defaults)".into()),
        ),
        (
            "data dir",
            if status.demo {
                format!("{} (demo workspace)", status.data_dir)
            } else {
                status.data_dir.clone()
            },
        ),
        (
            "store",
            format!("{} (schema v{})", status.store, status.schema_version),
        ),
        ("worker", worker),
        (
            "queue",
            format!(
                "{} open · {} unassigned · {} mine · {} pending · {} snoozed · {} resolved · {} total",
                c.open, c.unassigned, c.mine, c.pending, c.snoozed, c.resolved, c.total
            ),
        ),
        (
            "outbox",
            format!(
                "{} waiting · {} failed",
                status.outbox.waiting, status.outbox.failed
            ),
        ),
    ];
    for (k, v) in lines {
        writeln!(out, "{k:<9} {}", crate::sanitize::for_terminal_line(&v))?;
    }
    Ok(())
}
