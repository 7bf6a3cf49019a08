//! `braid reply CONVERSATION --text T [--via CHANNEL]`: queue a reply through the workspace
//! server. The server writes it (message `queued` + outbox row, one transaction) as the agent
//! the kernel says the caller is, and its worker sends it. The stale-send guard
//! ([`super::note::Guard`]) stops it when the conversation changed since the caller looked.

use super::client::{Client, Server, unexpected};
use super::{Globals, parse_channel, parse_conversation, read_text, write_json};
use crate::api::{Post, Request, Response};
use crate::model::Channel;
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
    #[command(flatten)]
    pub guard: super::note::Guard,
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
    /// The agent the server wrote it as (never a name from the caller's config).
    pub author: String,
    /// Whether a worker (`braid server`, or a TUI's server) is running to send it now.
    pub worker_running: bool,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = parse_conversation(&args.conversation)?;
    let via = args.via.as_deref().map(parse_channel).transpose()?;
    let text = read_text(&args.text)?;
    if text.trim().is_empty() {
        anyhow::bail!("empty reply: give the text with --text");
    }
    let (client, _config) = Client::open(globals, "reply")?;
    // Whether a reply makes the conversation pending is the workspace's setting.
    let then_pending = client.welcome().pending_after_reply;
    let written = match client.call(Request::Post {
        conversation: id,
        post: Post::Reply {
            channel: via,
            body: text,
            then_pending,
            seen: args.guard.seen(),
        },
    })? {
        Response::Written(w) => w,
        other => return Err(unexpected("reply", &other)),
    };
    // A server reached over a socket or SSH runs the outbox; a one-shot command's in-process
    // server does not.
    let worker_running = *client.server() != Server::InProcess;
    drop(client);
    let (Some(message), Some(channel)) = (written.message, written.channel) else {
        anyhow::bail!("the braid server queued the reply but did not say which message it is");
    };
    let recipient = written.recipient.unwrap_or_default();
    tracing::info!(conversation = id.0, message_id = message.0, %channel, "reply queued from the CLI");
    if args.json {
        return write_json(
            out,
            &ReplyJson {
                message_id: message.0,
                conversation_id: id.0,
                channel,
                recipient,
                delivery: "queued",
                author: written.author,
                worker_running,
            },
        );
    }
    writeln!(
        out,
        "queued #{message} via {channel} to {}",
        crate::sanitize::for_terminal_line(&recipient)
    )?;
    if worker_running {
        writeln!(
            out,
            "the braid server sends it now; `braid show {id}` shows its delivery status"
        )?;
    } else {
        writeln!(
            out,
            "no worker is running: it is sent when `braid server` or a TUI starts on this store"
        )?;
    }
    Ok(())
}
