//! `braid note CONVERSATION --text T`: an internal note, written by the workspace server as
//! the agent it identified. Notes never leave braid.

use super::client::{Client, unexpected};
use super::{Globals, parse_conversation, read_text, write_json};
use crate::api::{Post, Request, Response};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The conversation: 12 or #12
    pub conversation: String,
    /// The note ("-" reads it from stdin)
    #[arg(long, value_name = "T")]
    pub text: String,
    #[command(flatten)]
    pub guard: Guard,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// The stale-send guard of `braid reply` and `braid note`: what the caller saw. Without
/// `--seen`, the server checks against what `braid show` last showed this agent of the
/// conversation (nothing, if it never did). A stopped send exits with code 3 and says what
/// changed.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Guard {
    /// The newest event you saw (`seen_event` of `braid show --json`): refused if the
    /// conversation changed after it
    #[arg(long, value_name = "EVENT", conflicts_with = "force")]
    pub seen: Option<i64>,
    /// Send even if the conversation changed since you looked
    #[arg(long)]
    pub force: bool,
}

impl Guard {
    pub fn seen(&self) -> crate::api::Seen {
        match (self.force, self.seen) {
            (true, _) => crate::api::Seen::Force,
            (false, Some(e)) => crate::api::Seen::Upto(crate::model::EventId(e)),
            (false, None) => crate::api::Seen::Unknown,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct NoteJson {
    pub message_id: i64,
    pub conversation_id: i64,
    pub author: String,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = parse_conversation(&args.conversation)?;
    let text = read_text(&args.text)?;
    if text.trim().is_empty() {
        anyhow::bail!("empty note: give the text with --text");
    }
    let (client, _config) = Client::open(globals, "note")?;
    let written = match client.call(Request::Post {
        conversation: id,
        post: Post::Note {
            body: text,
            seen: args.guard.seen(),
        },
    })? {
        Response::Written(w) => w,
        other => return Err(unexpected("note", &other)),
    };
    drop(client);
    let Some(message) = written.message else {
        anyhow::bail!("the braid server added the note but did not say which message it is");
    };
    tracing::info!(
        conversation = id.0,
        message_id = message.0,
        "note added from the CLI"
    );
    if args.json {
        return write_json(
            out,
            &NoteJson {
                message_id: message.0,
                conversation_id: id.0,
                author: written.author,
            },
        );
    }
    writeln!(
        out,
        "noted #{message} on conversation #{id} (internal, never sent)"
    )?;
    Ok(())
}
