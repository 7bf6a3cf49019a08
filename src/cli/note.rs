//! `braid note CONVERSATION --text T`: an internal note. Notes never leave braid.

use super::{Globals, open_store, parse_conversation, read_text, write_json};
use crate::model::now_millis;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The conversation: 12 or #12
    pub conversation: String,
    /// The note ("-" reads it from stdin)
    #[arg(long, value_name = "T")]
    pub text: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
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
    let config = globals.load()?;
    let mut store = open_store(&config)?;
    let message = store.add_note(id, &config.agent, &text, now_millis())?;
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
                author: config.agent.clone(),
            },
        );
    }
    writeln!(
        out,
        "noted #{message} on conversation #{id} (internal, never sent)"
    )?;
    Ok(())
}
