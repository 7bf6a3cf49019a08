//! `braid who`: who is online on the workspace server (agents with a braid open that reports
//! presence) and what each is doing, as the server says now. One line per connected terminal;
//! a conversation outside your teams shows as "online".

use super::client::{Client, unexpected};
use super::{Globals, write_json};
use crate::api::{Activity, Request, Response};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct WhoJson {
    /// Distinct agents online.
    pub agents: usize,
    pub online: Vec<OnlineJson>,
}

#[derive(Debug, Serialize)]
pub struct OnlineJson {
    pub agent: String,
    pub display: String,
    /// viewing, reply (typing one), note (typing one).
    pub activity: Activity,
    pub conversation_id: Option<i64>,
    /// Since when (RFC 3339, UTC).
    pub since: String,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "who")?;
    let online = match client.call(Request::Who)? {
        Response::Online(o) => o,
        other => return Err(unexpected("who", &other)),
    };
    drop(client);
    let mut names: Vec<&str> = online.iter().map(|e| e.agent.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if args.json {
        return write_json(
            out,
            &WhoJson {
                agents: names.len(),
                online: online
                    .iter()
                    .map(|e| OnlineJson {
                        agent: e.agent.clone(),
                        display: e.display.clone(),
                        activity: e.activity,
                        conversation_id: e.conversation.map(|c| c.0),
                        since: super::fmt::rfc3339(e.since),
                    })
                    .collect(),
            },
        );
    }
    if online.is_empty() {
        writeln!(out, "nobody is online (no braid TUI is connected)")?;
        return Ok(());
    }
    writeln!(out, "{} online", names.len())?;
    for e in &online {
        let name = crate::sanitize::for_terminal_line(&e.display);
        let agent = crate::sanitize::for_terminal_line(&e.agent);
        let what = match e.conversation {
            Some(c) => format!("{} #{c}", e.activity.describe()),
            None => "online".to_string(),
        };
        writeln!(
            out,
            "{name:<20} {agent:<12} {what:<28} since {}",
            super::fmt::rfc3339(e.since)
        )?;
    }
    Ok(())
}
