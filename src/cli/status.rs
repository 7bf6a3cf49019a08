//! `braid status`: which server answers (in-process, or its socket), who the server says you
//! are (agent, role, teams), where the store is, the queue counters, the outbox, whether a
//! worker runs the channels.

use super::client::{Client, Server, unexpected};
use super::{Globals, write_json};
use crate::api::{NotificationPage, NotificationRow, Request, Response, Role};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// Print only the number of your unread notifications (cheap: for a tmux status line)
    #[arg(long, conflicts_with = "json")]
    pub unread: bool,
}

/// Your notifications in `braid status --json`.
#[derive(Debug, Serialize)]
pub struct NotificationsJson {
    pub unread: i64,
    /// The newest unread ones (at most 5), newest first.
    pub newest_unread: Vec<super::notifications::NotificationJson>,
}

/// How many unread notifications `status --json` lists.
const NEWEST_UNREAD: usize = 5;

#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub version: &'static str,
    /// The agent the server identified (from the kernel's Unix user), not a config's claim.
    pub agent: String,
    /// The Unix user the server's kernel reported.
    pub user: String,
    pub role: Role,
    pub teams: Vec<String>,
    pub server: ServerJson,
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
    pub notifications: NotificationsJson,
    pub tasks: TaskCounts,
    /// Per team (null: no team): SLA deadlines breached and due soon (warned).
    pub sla: Vec<crate::api::SlaTeamCounts>,
}

/// The tasks the agent sees.
#[derive(Debug, Serialize)]
pub struct TaskCounts {
    /// Open and due before now (`braid tasks --overdue` lists them).
    pub overdue: i64,
}

/// The server this command talked to.
#[derive(Debug, Serialize)]
pub struct ServerJson {
    /// "in-process" (no server ran: this command started one), "socket" or "ssh".
    pub transport: &'static str,
    pub socket: Option<String>,
    pub remote: Option<String>,
    pub pid: u32,
    /// "braid 0.1.0".
    pub version: String,
}

/// Whether a worker runs the channels and the outbox: the server's, when a server runs.
#[derive(Debug, Serialize)]
pub struct WorkerState {
    pub running: bool,
    /// The server's pid (the worker runs inside it).
    pub pid: Option<u32>,
    /// The server's worker line ("worker: leader · outbox 2 queued").
    pub status: Option<String>,
}

fn client_server_line(s: &ServerJson) -> String {
    match (s.transport, &s.socket, &s.remote) {
        ("in-process", _, _) => {
            "in-process (no braid server runs for this data dir; this command started one)"
                .to_string()
        }
        (_, Some(p), _) => format!("socket {p}"),
        (_, _, Some(r)) => r.clone(),
        (t, _, _) => t.to_string(),
    }
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

/// Your unread count and the newest unread (`limit` 0: the count alone).
fn unread(client: &Client, limit: usize) -> anyhow::Result<(i64, Vec<NotificationRow>)> {
    match client.call(Request::Notifications {
        seq: 0,
        page: NotificationPage::Newest,
        limit,
        unread_only: true,
    })? {
        Response::Notifications { unread, rows, .. } => Ok((unread, rows)),
        other => Err(unexpected("notifications", &other)),
    }
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, config) = Client::open(globals, "status")?;
    if args.unread {
        let (n, _) = unread(&client, 0)?;
        drop(client);
        writeln!(out, "{n}")?;
        return Ok(());
    }
    let report = match client.call(Request::Status)? {
        Response::Status(r) => r,
        other => return Err(unexpected("status", &other)),
    };
    let (unread_count, newest) = unread(&client, NEWEST_UNREAD)?;
    let w = client.welcome();
    // A server reached over a socket or SSH runs the channels and the outbox; a one-shot
    // command's in-process server runs none.
    let running = *client.server() != Server::InProcess;
    let status = StatusJson {
        version: env!("CARGO_PKG_VERSION"),
        agent: report.agent.clone(),
        user: w.user.clone(),
        role: report.role,
        teams: report.teams.clone(),
        server: ServerJson {
            transport: match client.server() {
                Server::InProcess => "in-process",
                Server::Socket(_) => "socket",
                Server::Remote(_) => "ssh",
            },
            socket: match client.server() {
                Server::Socket(p) => Some(p.display().to_string()),
                _ => None,
            },
            remote: match client.server() {
                Server::Remote(r) => Some(r.clone()),
                _ => None,
            },
            pid: report.server_pid,
            version: w.server.clone(),
        },
        config: config.source.as_ref().map(|p| p.display().to_string()),
        data_dir: report.data_dir.clone(),
        store: report.store.clone(),
        schema_version: report.schema_version,
        demo: report.demo,
        conversations: ConversationCounts {
            open: report.counts.open,
            unassigned: report.counts.unassigned,
            mine: report.counts.mine,
            pending: report.counts.pending,
            snoozed: report.counts.snoozed,
            resolved: report.resolved,
            total: report.total,
        },
        outbox: OutboxCounts {
            waiting: report.outbox_waiting,
            failed: report.outbox_failed,
        },
        worker: WorkerState {
            running,
            pid: running.then_some(report.server_pid),
            status: running.then(|| report.worker.clone()),
        },
        last_event_id: report.last_event_id.0,
        notifications: NotificationsJson {
            unread: unread_count,
            newest_unread: newest
                .iter()
                .map(super::notifications::NotificationJson::new)
                .collect(),
        },
        tasks: TaskCounts {
            overdue: report.overdue_tasks,
        },
        sla: report.sla.clone(),
    };
    drop(client);
    if args.json {
        return write_json(out, &status);
    }
    let c = &status.conversations;
    let worker = match (status.worker.running, &status.worker.status) {
        (true, Some(line)) => format!("running in the server (pid {}) · {line}", status.server.pid),
        (true, None) => format!("running in the server (pid {})", status.server.pid),
        (false, _) => "not running (replies wait in the outbox until `braid server` or a TUI runs)"
            .to_string(),
    };
    let server = match client_server_line(&status.server) {
        s if status.server.transport == "in-process" => s,
        s => format!("{s} (pid {})", status.server.pid),
    };
    let lines = [
        ("server", server),
        (
            "agent",
            format!(
                "{} ({}{}, Unix user {})",
                status.agent,
                status.role,
                if status.teams.is_empty() {
                    String::new()
                } else {
                    format!(" · teams {}", status.teams.join(", "))
                },
                status.user
            ),
        ),
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
        (
            "tasks",
            format!("{} overdue (braid tasks --overdue)", status.tasks.overdue),
        ),
        (
            "notified",
            match status.notifications.unread {
                0 => "nothing unread".to_string(),
                n => format!("{n} unread (braid notifications)"),
            },
        ),
    ];
    for (k, v) in lines {
        writeln!(out, "{k:<9} {}", crate::sanitize::for_terminal_line(&v))?;
    }
    Ok(())
}
