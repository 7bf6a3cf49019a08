//! `braid reply CONVERSATION --text T [--via CHANNEL]`: queue a reply. It is written to the store
//! (message `queued` + outbox row, one transaction) and the worker sends it.

use super::{
    Globals, open_store, parse_channel, parse_conversation, read_text, worker_state, write_json,
};
use crate::model::{Channel, now_millis};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The conversation: 12 or #12
    pub conversation: String,
    /// The reply ("-" reads it from stdin)
    #[arg(long, value_name = "T")]
    pub text: String,
    /// email, telegram or webchat [default: the channel the customer last wrote on]
    #[arg(long, value_name = "CHANNEL")]
    pub via: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct ReplyJson {
    pub message_id: i64,
    pub conversation_id: i64,
    pub channel: Channel,
    pub recipient: String,
    /// Always "queued": the worker sends it.
    pub delivery: &'static str,
    pub author: String,
    /// Whether a worker (`braid serve` or a TUI) is running to send it now.
    pub worker_running: bool,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = parse_conversation(&args.conversation)?;
    let via = args.via.as_deref().map(parse_channel).transpose()?;
    let text = read_text(&args.text)?;
    if text.trim().is_empty() {
        anyhow::bail!("empty reply: give the text with --text");
    }
    let config = globals.load()?;
    let mut store = open_store(&config)?;
    let conv = store.conversation(id)?;
    let channel = match via {
        Some(c) => c,
        None => store.reply_channel(id)?,
    };
    let Some(recipient) = store.recipient(conv.contact_id, channel)? else {
        let usable: Vec<&str> = Channel::ALL
            .iter()
            .filter(|c| matches!(store.recipient(conv.contact_id, **c), Ok(Some(_))))
            .map(|c| c.as_str())
            .collect();
        anyhow::bail!(
            "{} has no {} address to reply to (usable: {})",
            conv.contact_name,
            channel,
            if usable.is_empty() {
                "none".to_string()
            } else {
                usable.join(", ")
            }
        );
    };
    let now = now_millis();
    let message = store.queue_reply(id, channel, &config.agent, &text, now)?;
    crate::actions::after_reply(
        &mut store,
        id,
        config.pending_after_reply,
        &config.agent,
        now,
    )?;
    tracing::info!(conversation = id.0, message_id = message.0, %channel, "reply queued from the CLI");
    let worker = worker_state(&config.data_dir);
    if args.json {
        return write_json(
            out,
            &ReplyJson {
                message_id: message.0,
                conversation_id: id.0,
                channel,
                recipient,
                delivery: "queued",
                author: config.agent.clone(),
                worker_running: worker.running,
            },
        );
    }
    writeln!(
        out,
        "queued #{message} via {channel} to {}",
        crate::sanitize::for_terminal_line(&recipient)
    )?;
    if worker.running {
        writeln!(
            out,
            "the worker sends it now; `braid show {id}` shows its delivery status"
        )?;
    } else {
        writeln!(
            out,
            "no worker is running: it is sent when `braid serve` or a TUI starts on this store"
        )?;
    }
    Ok(())
}
