//! `braid tasks [--mine|--overdue|--team T|--all] [--json]`: open tasks, soonest due first;
//! `braid task add CONVERSATION --when WHEN [--kind K] [--title T] [--assignee A]` and
//! `braid task close ID [--cancel]`. Through the workspace server, like every write.

use super::client::{Client, unexpected};
use super::fmt::{Table, clip, rfc3339};
use super::{Globals, parse_conversation, write_json};
use crate::api::{NewTask, Request, Response, TaskAt, TaskEnd, TaskRow, TaskView};
use crate::model::now_millis;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Tasks assigned to you (the default)
    #[arg(long, conflicts_with_all = ["overdue", "team", "all"])]
    pub mine: bool,
    /// Tasks due before now (any assignee you can see)
    #[arg(long, conflicts_with_all = ["team", "all"])]
    pub overdue: bool,
    /// Tasks of a team
    #[arg(long, value_name = "T", conflicts_with = "all")]
    pub team: Option<String>,
    /// Every open task you can see
    #[arg(long)]
    pub all: bool,
    /// At most this many
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub command: TaskCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TaskCommand {
    /// Add a task on a conversation, due at a time ("tomorrow 10:00", "monday 9am", "2h")
    Add {
        /// The conversation: 12 or #12
        conversation: String,
        /// When it is due: 30m, 2h, tomorrow 10:00, monday 9:00, 2026-12-08 14:00,
        /// next business morning
        #[arg(long, value_name = "WHEN")]
        when: String,
        /// call, todo, email... [default: todo]
        #[arg(long, value_name = "K", default_value = "todo")]
        kind: String,
        /// What to do [default: the kind]
        #[arg(long, value_name = "T")]
        title: Option<String>,
        /// Who does it [default: you]
        #[arg(long, value_name = "A")]
        assignee: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Mark a task done (--cancel: cancelled)
    Close {
        /// The task's id, as `braid tasks` lists it
        id: i64,
        #[arg(long)]
        cancel: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

/// A task as the CLI prints it in JSON.
#[derive(Debug, Serialize)]
pub struct TaskJson {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub due_at: Option<String>,
    pub overdue: bool,
    pub assignee: Option<String>,
    pub team: Option<String>,
    /// open, done, cancelled.
    pub state: String,
    pub conversation_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub contact_name: String,
    pub created_by: String,
    pub closed_by: Option<String>,
}

impl TaskJson {
    pub fn new(t: &TaskRow, now: i64) -> TaskJson {
        TaskJson {
            id: t.id,
            kind: t.kind.clone(),
            title: t.title.clone(),
            due_at: t.due_at.map(rfc3339),
            overdue: t.is_overdue(now),
            assignee: t.assignee.clone(),
            team: t.team.clone(),
            state: t.state.clone(),
            conversation_id: t.conversation_id.map(|c| c.0),
            contact_id: t.contact_id.map(|c| c.0),
            contact_name: t.contact_name.clone(),
            created_by: t.created_by.clone(),
            closed_by: t.closed_by.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ListJson {
    pub view: String,
    pub tasks: Vec<TaskJson>,
    /// More exist past the last one listed (raise --limit).
    pub more: bool,
}

pub fn list(globals: &Globals, args: &ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let view = if args.overdue {
        TaskView::Overdue
    } else if let Some(t) = &args.team {
        TaskView::Team(t.clone())
    } else if args.all {
        TaskView::All
    } else {
        TaskView::Mine
    };
    let (client, _config) = Client::open(globals, "tasks")?;
    let mut rows: Vec<TaskRow> = Vec::new();
    let mut more = true;
    while more && rows.len() < args.limit {
        let at = rows
            .last()
            .map(|r| TaskAt::After(r.cursor()))
            .unwrap_or(TaskAt::Top);
        match client.call(Request::Tasks {
            seq: 0,
            view: view.clone(),
            at,
            limit: (args.limit - rows.len()).min(crate::api::MAX_TASK_PAGE),
        })? {
            Response::Tasks {
                rows: page,
                more: m,
                ..
            } => {
                more = m;
                rows.extend(page);
            }
            other => return Err(unexpected("tasks", &other)),
        }
    }
    drop(client);
    let now = now_millis();
    if args.json {
        return write_json(
            out,
            &ListJson {
                view: view.label(),
                tasks: rows.iter().map(|t| TaskJson::new(t, now)).collect(),
                more,
            },
        );
    }
    if rows.is_empty() {
        writeln!(out, "no open tasks ({})", view.label())?;
        return Ok(());
    }
    let mut table = Table::new(&[
        ">ID", "DUE", "KIND", ">CONV", "CONTACT", "ASSIGNEE", "TITLE",
    ]);
    for t in &rows {
        table.row(vec![
            t.id.to_string(),
            match t.due_at {
                Some(d) if d <= now => format!("{} overdue", crate::tui::time::full(d)),
                Some(d) => crate::tui::time::full(d),
                None => "-".into(),
            },
            clip(&t.kind, 10),
            t.conversation_id
                .map(|c| format!("#{c}"))
                .unwrap_or_default(),
            clip(&t.contact_name, 24),
            clip(t.assignee.as_deref().unwrap_or("-"), 16),
            clip(&t.title, 60),
        ]);
    }
    table.write(out)?;
    if more {
        writeln!(out, "more: raise --limit")?;
    }
    Ok(())
}

pub fn task(globals: &Globals, args: &TaskArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (request, json) = match &args.command {
        TaskCommand::Add {
            conversation,
            when,
            kind,
            title,
            assignee,
            json,
        } => {
            let conversation = parse_conversation(conversation)?;
            let due = crate::when::parse(when, now_millis()).map_err(anyhow::Error::msg)?;
            (
                Request::TaskCreate {
                    task: NewTask {
                        kind: kind.clone(),
                        title: title.clone().unwrap_or_else(|| kind.clone()),
                        due_at: Some(due),
                        assignee: assignee.clone(),
                        conversation: Some(conversation),
                        ..NewTask::default()
                    },
                },
                *json,
            )
        }
        TaskCommand::Close { id, cancel, json } => (
            Request::TaskClose {
                id: *id,
                end: if *cancel {
                    TaskEnd::Cancelled
                } else {
                    TaskEnd::Done
                },
            },
            *json,
        ),
    };
    let (client, _config) = Client::open(globals, "task")?;
    let t = match client.call(request)? {
        Response::Task(t) => t,
        other => return Err(unexpected("task", &other)),
    };
    drop(client);
    if json {
        return write_json(out, &TaskJson::new(&t, now_millis()));
    }
    let what = crate::sanitize::for_terminal_line(&t.title).into_owned();
    if t.is_open() {
        writeln!(
            out,
            "task #{} ({}) {} for {}{}",
            t.id,
            t.kind,
            what,
            t.assignee.as_deref().unwrap_or("nobody"),
            t.due_at
                .map(|d| format!(", due {}", crate::tui::time::full(d)))
                .unwrap_or_default()
        )?;
    } else {
        writeln!(out, "task #{} {}: {what}", t.id, t.state)?;
    }
    Ok(())
}
