//! `braid search QUERY`: full-text search, newest hits first.
//!
//! The query language is the TUI's `/`: words (all must match; `word*` for a prefix),
//! `"a phrase"`, `from:NAME-OR-ADDRESS`, `channel:email|telegram|webchat`, `is:in|out|note`,
//! `after:YYYY-MM-DD`, `before:YYYY-MM-DD`, and the conversation filters `tag:NAME`,
//! `assignee:NAME|me|none`, `status:open|pending|snoozed|resolved`,
//! `priority:low|normal|high|urgent`, `is:vip`.

use super::client::{Client, unexpected};
use super::fmt::{Table, clip, local_time, rfc3339};
use super::{Globals, write_json};
use crate::api::{Request, Response, SearchHit};
use crate::model::{Channel, Direction};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Words, "phrases" and filters (from:, channel:, is:, after:, before:, tag:, assignee:,
    /// status:, priority:, is:vip)
    #[arg(required = true, num_args = 1.., value_name = "QUERY")]
    pub query: Vec<String>,
    /// At most this many hits
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct SearchJson {
    pub query: String,
    pub hits: Vec<HitJson>,
}

#[derive(Debug, Serialize)]
pub struct HitJson {
    pub conversation_id: i64,
    /// The matching message (null when the contact's name matched).
    pub message_id: Option<i64>,
    pub contact_id: i64,
    pub contact_name: String,
    pub channel: Channel,
    /// in, out, note (null when the contact's name matched).
    pub direction: Option<Direction>,
    pub at: String,
    /// The matching text, the match marked «like this».
    pub snippet: String,
}

impl HitJson {
    pub fn new(h: &SearchHit) -> HitJson {
        HitJson {
            conversation_id: h.conversation_id.0,
            message_id: h.message_id.map(|m| m.0),
            contact_id: h.contact_id.0,
            contact_name: h.contact_name.clone(),
            channel: h.channel,
            direction: h.direction,
            at: rfc3339(h.created_at),
            snippet: h.snippet.clone(),
        }
    }
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let text = args.query.join(" ");
    let (client, _config) = Client::open(globals, "search")?;
    // The server parses the query: `assignee:me` is the agent it knows us as.
    let hits = match client.call(Request::Search {
        query: text.clone(),
        limit: args.limit,
    })? {
        Response::Hits(h) => h,
        other => return Err(unexpected("search", &other)),
    };
    drop(client);
    if args.json {
        return write_json(
            out,
            &SearchJson {
                query: text,
                hits: hits.iter().map(HitJson::new).collect(),
            },
        );
    }
    if hits.is_empty() {
        writeln!(
            out,
            "no matches for {}",
            crate::sanitize::for_terminal_line(&text)
        )?;
        return Ok(());
    }
    let mut table = Table::new(&[">CONV", "TIME", "CHANNEL", "DIR", "CONTACT", "SNIPPET"]);
    for h in &hits {
        table.row(vec![
            format!("#{}", h.conversation_id),
            local_time(h.created_at),
            h.channel.as_str().to_string(),
            h.direction.map(|d| d.as_str()).unwrap_or("-").to_string(),
            clip(&h.contact_name, 24),
            clip(&h.snippet, 80),
        ]);
    }
    table.write(out)?;
    writeln!(
        out,
        "{} hit{}{}",
        hits.len(),
        if hits.len() == 1 { "" } else { "s" },
        if hits.len() == args.limit {
            format!(" (the newest {}; --limit N for more)", args.limit)
        } else {
            String::new()
        }
    )?;
    Ok(())
}
