//! `braid list`: one queue view, newest activity first.

use super::client::{Client, unexpected};
use super::fmt::{Table, age, clip, rfc3339};
use super::{Globals, write_json};
use crate::api::{QueueFilter, QueueRow, Request, Response};
use crate::model::{Channel, Direction, Status, now_millis};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only conversations in this status: open, pending, snoozed, resolved
    #[arg(long, value_name = "S", conflicts_with = "view")]
    pub status: Option<String>,
    /// A queue view: open, pending, snoozed, resolved, mine, unassigned, all [default: open]
    #[arg(long, value_name = "V")]
    pub view: Option<String>,
    /// Only conversations with this tag
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Only conversations assigned to this agent (me: you; none: nobody)
    #[arg(long, value_name = "AGENT")]
    pub assignee: Option<String>,
    /// At most this many conversations
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// A conversation as `list` and `show` print it in JSON.
#[derive(Debug, Serialize)]
pub struct ConversationJson {
    pub id: i64,
    pub contact_id: i64,
    pub contact_name: String,
    pub vip: bool,
    pub status: Status,
    pub priority: crate::model::Priority,
    pub assignee: Option<String>,
    /// The team the conversation belongs to (null: no team, every agent sees it).
    pub team: Option<String>,
    pub subject: Option<String>,
    /// Every channel used in the conversation, in first-use order.
    pub channels: Vec<Channel>,
    pub last_channel: Channel,
    pub last_activity: String,
    pub last_direction: Direction,
    pub last_preview: String,
    pub message_count: i64,
    pub snoozed_until: Option<String>,
    /// The conversation's tags (in `list` and `show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl ConversationJson {
    pub fn new(r: &QueueRow, tags: Option<Vec<String>>) -> ConversationJson {
        ConversationJson {
            id: r.id.0,
            contact_id: r.contact_id.0,
            contact_name: r.contact_name.clone(),
            vip: r.vip,
            status: r.status,
            priority: r.priority,
            assignee: r.assignee.clone(),
            team: r.team.clone(),
            subject: r.subject.clone(),
            channels: r.channels.clone(),
            last_channel: r.last_channel,
            last_activity: rfc3339(r.last_activity),
            last_direction: r.last_direction,
            last_preview: r.last_preview.clone(),
            message_count: r.message_count,
            snoozed_until: r.snoozed_until.map(rfc3339),
            tags,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ListJson {
    pub view: String,
    /// How many conversations the view holds (may be more than listed).
    pub total: i64,
    pub conversations: Vec<ConversationJson>,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "list")?;
    let filter = match (&args.status, &args.view) {
        (Some(s), _) => QueueFilter::Status(s.parse::<Status>().map_err(|_| {
            anyhow::anyhow!("unknown status '{s}' (open, pending, snoozed, resolved)")
        })?),
        // `mine` is the agent the server knows us as.
        (None, Some(v)) => QueueFilter::parse(v, client.agent()).map_err(anyhow::Error::msg)?,
        (None, None) => QueueFilter::Status(Status::Open),
    };
    let (label, rows, tags, total) = match client.call(Request::List {
        filter,
        tag: args.tag.clone(),
        assignee: args.assignee.clone(),
        limit: args.limit,
        with_tags: args.json,
    })? {
        Response::List {
            label,
            rows,
            tags,
            total,
        } => (label, rows, tags, total),
        other => return Err(unexpected("list", &other)),
    };
    drop(client);
    if args.json {
        let mut tags = tags.unwrap_or_default().into_iter();
        let conversations = rows
            .iter()
            .map(|r| ConversationJson::new(r, Some(tags.next().unwrap_or_default())))
            .collect();
        return write_json(
            out,
            &ListJson {
                view: label,
                total,
                conversations,
            },
        );
    }
    if rows.is_empty() {
        writeln!(
            out,
            "{}: no conversations",
            crate::sanitize::for_terminal_line(&label)
        )?;
        return Ok(());
    }
    let now = now_millis();
    let mut table = Table::new(&[
        ">ID",
        "CONTACT",
        "CHANNELS",
        "STATUS",
        "PRIORITY",
        "ASSIGNEE",
        ">AGE",
        "LAST MESSAGE",
    ]);
    for r in &rows {
        let name = if r.vip {
            format!("{} ★", clip(&r.contact_name, 24))
        } else {
            clip(&r.contact_name, 24)
        };
        let preview = match r.last_direction {
            Direction::In => r.last_preview.clone(),
            Direction::Out => format!("↩ {}", r.last_preview),
            Direction::Note => format!("[note] {}", r.last_preview),
        };
        table.row(vec![
            format!("#{}", r.id),
            name,
            channel_list(&r.channels),
            r.status.to_string(),
            r.priority.to_string(),
            r.assignee.clone().unwrap_or_else(|| "-".into()),
            age(r.last_activity, now),
            clip(&preview, 60),
        ]);
    }
    table.write(out)?;
    writeln!(
        out,
        "{}: {} of {} conversation{}",
        label,
        rows.len(),
        total,
        if total == 1 { "" } else { "s" }
    )?;
    Ok(())
}

/// `email,telegram,webchat`.
pub fn channel_list(channels: &[Channel]) -> String {
    channels
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
