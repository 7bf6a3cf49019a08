//! `braid show CONVERSATION`: the conversation, its contact, and the contact's whole unified
//! timeline (every channel, every conversation), oldest first.
//!
//! The timeline is read in keyset pages and streamed: memory stays one page however long the
//! history. The store pages backwards (newest first), so a first pass walks back collecting only
//! page boundaries, and a second pass reads the pages again oldest first and prints them.

use super::client::{Client, unexpected};
use super::fmt::{local_date, local_time, rfc3339};
use super::list::ConversationJson;
use super::{Globals, parse_conversation};
use crate::api::{ContactProfile, MessageRow, Request, Response, TimelineCursor};
use crate::model::{Channel, ContactId, ConversationId, Delivery, Direction, MessageId, Status};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The conversation: 12 or #12
    pub conversation: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct ContactJson {
    pub id: i64,
    pub name: String,
    pub vip: bool,
    pub first_seen: String,
    pub last_seen: String,
    pub last_channel: Option<Channel>,
    pub conversation_count: i64,
    pub message_count: i64,
    /// Every channel the contact has used.
    pub channels: Vec<Channel>,
    /// Tags of all the contact's conversations.
    pub tags: Vec<String>,
    pub identities: Vec<IdentityJson>,
}

#[derive(Debug, Serialize)]
pub struct IdentityJson {
    pub kind: crate::model::IdentityKind,
    pub value: String,
    /// How braid learned it ("email from", "added by bob", ...).
    pub source: String,
    pub since: String,
}

#[derive(Debug, Serialize)]
pub struct MessageJson {
    pub id: i64,
    pub conversation_id: i64,
    pub channel: Channel,
    pub direction: Direction,
    pub author: String,
    pub at: String,
    pub subject: Option<String>,
    pub body: String,
    /// Outbound only: queued, sending, sent, failed (null for inbound messages and notes).
    pub delivery: Option<Delivery>,
    pub delivery_error: Option<String>,
}

impl MessageJson {
    pub fn new(m: &MessageRow) -> MessageJson {
        MessageJson {
            id: m.id.0,
            conversation_id: m.conversation_id.0,
            channel: m.channel,
            direction: m.direction,
            author: m.author.clone(),
            at: rfc3339(m.created_at),
            subject: m.subject.clone(),
            body: m.body.clone(),
            delivery: m.delivery,
            delivery_error: m.delivery_error.clone(),
        }
    }
}

impl ContactJson {
    pub fn new(p: &ContactProfile) -> ContactJson {
        ContactJson {
            id: p.contact.id.0,
            name: p.contact.name.clone(),
            vip: p.contact.vip,
            first_seen: rfc3339(p.first_seen),
            last_seen: rfc3339(p.contact.last_seen),
            last_channel: p.contact.last_channel,
            conversation_count: p.conversation_count,
            message_count: p.message_count,
            channels: p.channels.clone(),
            tags: p.tags.clone(),
            identities: p
                .identities
                .iter()
                .map(|i| IdentityJson {
                    kind: i.kind,
                    value: i.value.clone(),
                    source: i.source.clone(),
                    since: rfc3339(i.created_at),
                })
                .collect(),
        }
    }
}

/// Messages per store query.
const PAGE: usize = 200;

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = parse_conversation(&args.conversation)?;
    let (client, _config) = Client::open(globals, "show")?;
    let (conv, tags, profile, as_of) = match client.call(Request::Conversation { id })? {
        Response::Conversation {
            row,
            tags,
            profile,
            as_of,
        } => (row, tags, profile, as_of),
        other => return Err(unexpected("conversation", &other)),
    };

    if args.json {
        writeln!(out, "{{")?;
        // What this output showed: `braid reply --seen` takes it (the stale-send guard).
        writeln!(out, "  \"seen_event\": {},", as_of.0)?;
        writeln!(
            out,
            "  \"conversation\": {},",
            indented(&ConversationJson::new(&conv, Some(tags)), 2)?
        )?;
        writeln!(
            out,
            "  \"contact\": {},",
            indented(&ContactJson::new(&profile), 2)?
        )?;
        write!(out, "  \"messages\": [")?;
        let mut first = true;
        for_each_message(&client, conv.contact_id, |m| {
            let sep = if first { "" } else { "," };
            first = false;
            write!(out, "{sep}\n    {}", indented(&MessageJson::new(m), 4)?)?;
            Ok(())
        })?;
        writeln!(out, "{}]\n}}", if first { "" } else { "\n  " })?;
        return Ok(());
    }

    // Header: the conversation, then who the contact is on every channel.
    let mut head = format!(
        "Conversation #{} · {} · priority {}",
        conv.id, conv.status, conv.priority
    );
    match &conv.assignee {
        Some(a) => head.push_str(&format!(" · assigned to {}", esc(a))),
        None => head.push_str(" · unassigned"),
    }
    if let Some(team) = &conv.team {
        head.push_str(&format!(" · team {}", esc(team)));
    }
    if let Some(until) = conv.snoozed_until {
        head.push_str(&format!(" · snoozed until {}", local_time(until)));
    }
    writeln!(out, "{head}")?;
    if let Some(s) = &conv.subject {
        writeln!(out, "Subject   {}", esc(s))?;
    }
    if !tags.is_empty() {
        writeln!(out, "Tags      {}", esc(&tags.join(", ")))?;
    }
    let c = &profile.contact;
    writeln!(
        out,
        "Contact   #{} {}{} · {} conversation{} · {} message{} · first seen {}",
        c.id,
        esc(&c.name),
        if c.vip { " ★ VIP" } else { "" },
        profile.conversation_count,
        plural(profile.conversation_count),
        profile.message_count,
        plural(profile.message_count),
        local_date(profile.first_seen)
    )?;
    for i in &profile.identities {
        writeln!(out, "          {:<9} {}", i.kind.as_str(), esc(&i.value))?;
    }
    writeln!(
        out,
        "Channels  {}",
        profile
            .channels
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Timeline of {}, every channel and conversation, oldest first",
        esc(&c.name)
    )?;

    // Status of each of the contact's conversations, for the separators.
    let rows = match client.call(Request::ContactConversations {
        contact: conv.contact_id,
        limit: 1000,
    })? {
        Response::List { rows, .. } => rows,
        other => return Err(unexpected("contact_conversations", &other)),
    };
    let statuses: HashMap<ConversationId, Status> =
        rows.into_iter().map(|r| (r.id, r.status)).collect();
    let mut current: Option<ConversationId> = None;
    for_each_message(&client, conv.contact_id, |m| {
        if current != Some(m.conversation_id) {
            current = Some(m.conversation_id);
            let status = statuses
                .get(&m.conversation_id)
                .map(|s| format!(" · {s}"))
                .unwrap_or_default();
            let this = if m.conversation_id == id {
                " (this one)"
            } else {
                ""
            };
            writeln!(
                out,
                "\n── conversation #{}{status}{this} ──",
                m.conversation_id
            )?;
        }
        write_message(out, m)
    })?;
    Ok(())
}

fn write_message(out: &mut dyn Write, m: &MessageRow) -> anyhow::Result<()> {
    let delivery = match (m.delivery, &m.delivery_error) {
        (Some(Delivery::Failed), Some(e)) => format!(" · failed: {}", esc(e)),
        (Some(Delivery::Unclear), Some(e)) => format!(" · unclear: {}", esc(e)),
        (Some(d), _) => format!(" · {d}"),
        (None, _) => String::new(),
    };
    let author = match m.direction {
        Direction::Note => format!("note by {}", esc(&m.author)),
        _ => esc(&m.author).into_owned(),
    };
    writeln!(
        out,
        "\n{}  {:<8}  {:<4}  {author}{delivery}  (#{})",
        local_time(m.created_at),
        m.channel.as_str(),
        m.direction.as_str(),
        m.id
    )?;
    if let Some(s) = &m.subject {
        writeln!(out, "    Subject: {}", esc(s))?;
    }
    // Everything printed that came from outside passes the output wall (sanitize.rs): stored
    // text was cleaned at ingest, and this shows anything that was not, escaped.
    for line in crate::sanitize::for_terminal(&m.body).lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

use crate::sanitize::for_terminal_line as esc;

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Pretty JSON with every line after the first indented by `by` spaces (to nest it by hand).
fn indented(value: &impl Serialize, by: usize) -> anyhow::Result<String> {
    let text = serde_json::to_string_pretty(value)?;
    let pad = " ".repeat(by);
    Ok(text.replace('\n', &format!("\n{pad}")))
}

fn key(c: TimelineCursor) -> (i64, i64) {
    (c.created_at, c.id.0)
}

/// One page of a contact's timeline from the server: up to `limit` messages before `before`
/// (the newest ones), oldest first.
fn timeline(
    client: &Client,
    contact: ContactId,
    before: Option<TimelineCursor>,
    limit: usize,
) -> anyhow::Result<Vec<MessageRow>> {
    match client.call(Request::Timeline {
        seq: 0,
        contact,
        before,
        limit,
    })? {
        Response::Timeline { rows, .. } => Ok(rows),
        other => Err(unexpected("timeline", &other)),
    }
}

/// Call `f` on every message of a contact's timeline, oldest first, one page in memory at a time.
pub fn for_each_message(
    client: &Client,
    contact: ContactId,
    mut f: impl FnMut(&MessageRow) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // Pass 1: walk back from the newest message, keeping each page's bounds: (exclusive upper
    // cursor, oldest message in the page). The first upper bound is just past the newest message
    // as of now, so messages arriving during the walk are not half-included.
    let mut pages: Vec<(TimelineCursor, TimelineCursor)> = Vec::new();
    let mut before: Option<TimelineCursor> = None;
    loop {
        let page = timeline(client, contact, before, PAGE)?;
        let (Some(oldest), Some(newest)) = (page.first(), page.last()) else {
            break;
        };
        let upper = before.unwrap_or(TimelineCursor {
            created_at: newest.created_at,
            id: MessageId(newest.id.0.saturating_add(1)),
        });
        pages.push((upper, oldest.cursor()));
        if page.len() < PAGE {
            break;
        }
        before = Some(oldest.cursor());
    }
    // Pass 2: oldest page first. A page re-read may have grown (a late message with an old
    // timestamp); then read it again with a larger limit so nothing in [lower, upper) is skipped.
    for (upper, lower) in pages.into_iter().rev() {
        let mut limit = PAGE;
        loop {
            let page = timeline(client, contact, Some(upper), limit)?;
            let may_have_more =
                page.len() == limit && page.first().is_some_and(|m| key(m.cursor()) > key(lower));
            if may_have_more && limit < PAGE * 64 {
                limit *= 2;
                continue;
            }
            for m in page.iter().filter(|m| key(m.cursor()) >= key(lower)) {
                f(m)?;
            }
            break;
        }
    }
    Ok(())
}
