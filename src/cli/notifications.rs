//! `braid notifications`: your notifications (mentions, assignments, customer messages in your
//! conversations), newest first, from the workspace server; `--read ID...` / `--read-all`
//! mark them read (for every terminal you have open: the server keeps the read state).

use super::client::{Client, unexpected};
use super::fmt::{Table, age, clip, rfc3339};
use super::{Globals, write_json};
use crate::api::{NotificationKind, NotificationPage, NotificationRow, Request, Response};
use crate::model::now_millis;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only unread notifications
    #[arg(long)]
    pub unread: bool,
    /// At most this many
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Only those older than notification ID (the next page: the last ID printed)
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Mark these notifications read (their IDs, as listed)
    #[arg(long, value_name = "ID", num_args = 1.., conflicts_with_all = ["read_all", "unread", "before"])]
    pub read: Vec<i64>,
    /// Mark all your notifications read
    #[arg(long, conflicts_with_all = ["unread", "before"])]
    pub read_all: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// A notification as the CLI prints it in JSON.
#[derive(Debug, Serialize)]
pub struct NotificationJson {
    pub id: i64,
    /// mention, assigned, message, sla_warning, sla_breach.
    pub kind: NotificationKind,
    pub at: String,
    pub read: bool,
    pub read_at: Option<String>,
    /// Who caused it (the note's author, who assigned; `ingest` for a customer's message).
    pub actor: String,
    pub conversation_id: Option<i64>,
    pub message_id: Option<i64>,
    pub contact_name: String,
    pub excerpt: String,
}

impl NotificationJson {
    pub fn new(r: &NotificationRow) -> NotificationJson {
        NotificationJson {
            id: r.id,
            kind: r.kind,
            at: rfc3339(r.at),
            read: r.read_at.is_some(),
            read_at: r.read_at.map(rfc3339),
            actor: r.actor.clone(),
            conversation_id: r.conversation_id.map(|c| c.0),
            message_id: r.message_id.map(|m| m.0),
            contact_name: r.contact_name.clone(),
            excerpt: r.excerpt.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ListJson {
    /// Your unread notifications, all of them (not only those listed).
    pub unread: i64,
    pub notifications: Vec<NotificationJson>,
    /// More exist past the last one listed (`--before` its id).
    pub more: bool,
}

#[derive(Debug, Serialize)]
pub struct ReadJson {
    /// The ids that were unread and are read now.
    pub marked: Vec<i64>,
    pub unread: i64,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "notifications")?;
    if args.read_all || !args.read.is_empty() {
        let (marked, unread) = match client.call(Request::MarkNotificationsRead {
            ids: args.read.clone(),
            all: args.read_all,
        })? {
            Response::NotificationsRead { ids, unread } => (ids, unread),
            other => return Err(unexpected("mark_notifications_read", &other)),
        };
        drop(client);
        if args.json {
            return write_json(out, &ReadJson { marked, unread });
        }
        let ignored = args.read.iter().filter(|i| !marked.contains(i)).count();
        writeln!(
            out,
            "marked {} read{}; {unread} unread left",
            marked.len(),
            if ignored > 0 {
                format!(" ({ignored} already read or not yours)")
            } else {
                String::new()
            }
        )?;
        return Ok(());
    }
    let (rows, more, unread) = match client.call(Request::Notifications {
        seq: 0,
        page: match args.before {
            Some(id) => NotificationPage::Before(id),
            None => NotificationPage::Newest,
        },
        limit: args.limit,
        unread_only: args.unread,
    })? {
        Response::Notifications {
            rows, more, unread, ..
        } => (rows, more, unread),
        other => return Err(unexpected("notifications", &other)),
    };
    drop(client);
    if args.json {
        return write_json(
            out,
            &ListJson {
                unread,
                notifications: rows.iter().map(NotificationJson::new).collect(),
                more,
            },
        );
    }
    if rows.is_empty() {
        writeln!(
            out,
            "{}",
            if args.unread {
                "no unread notifications"
            } else {
                "no notifications"
            }
        )?;
        return Ok(());
    }
    let now = now_millis();
    let mut table = Table::new(&[">ID", " ", ">AGE", "WHAT", ">CONV", "CONTACT", "TEXT"]);
    for r in &rows {
        table.row(vec![
            r.id.to_string(),
            if r.read_at.is_none() { "●" } else { " " }.to_string(),
            age(r.at, now),
            crate::tui::notifications::what(r),
            r.conversation_id
                .map(|c| format!("#{c}"))
                .unwrap_or_default(),
            clip(&r.contact_name, 24),
            clip(&r.excerpt, 60),
        ]);
    }
    table.write(out)?;
    let last = rows.last().map(|r| r.id).unwrap_or_default();
    writeln!(
        out,
        "{unread} unread{}",
        if more {
            format!(" · more: --before {last}")
        } else {
            String::new()
        }
    )?;
    Ok(())
}
