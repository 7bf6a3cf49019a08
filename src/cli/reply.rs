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
    #[arg(long, value_name = "T", required_unless_present = "template")]
    pub text: Option<String>,
    /// Send an approved WhatsApp template instead (the way to write outside WhatsApp's
    /// 24-hour window): its name in `[[whatsapp.templates]]`
    #[arg(long, value_name = "NAME", conflicts_with_all = ["text", "via"])]
    pub template: Option<String>,
    /// A template parameter, in order ({{1}}, {{2}}...); repeat for each
    #[arg(long = "param", value_name = "P", requires = "template")]
    pub params: Vec<String>,
    /// email, telegram, webchat, whatsapp, instagram, messenger or sms [default: the channel
    /// the customer last wrote on]
    #[arg(long, value_name = "CHANNEL")]
    pub via: Option<String>,
    /// Send it later, not now: 30m, 2h, tomorrow 10:00, monday 9:00, 2026-12-08 14:00,
    /// next business morning (kept in the outbox until then; `:cancel-send` in the TUI
    /// cancels it)
    #[arg(long, value_name = "WHEN", conflicts_with = "template")]
    pub at: Option<String>,
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
    /// `--at`: when it goes out (RFC 3339); absent: now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
    /// The agent the server wrote it as (never a name from the caller's config).
    pub author: String,
    /// Whether a worker (`braid server`, or a TUI's server) is running to send it now.
    pub worker_running: bool,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = parse_conversation(&args.conversation)?;
    let via = args.via.as_deref().map(parse_channel).transpose()?;
    let send_at = args
        .at
        .as_deref()
        .map(|w| crate::when::parse(w, crate::model::now_millis()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    let post = match (&args.template, &args.text) {
        (Some(name), _) => Post::Template {
            name: name.clone(),
            params: args.params.clone(),
            seen: args.guard.seen(),
            resolved: None,
        },
        (None, Some(text)) => {
            let text = read_text(text)?;
            if text.trim().is_empty() {
                anyhow::bail!("empty reply: give the text with --text");
            }
            Post::Reply {
                channel: via,
                body: text,
                // Set below: the workspace's setting.
                then_pending: false,
                seen: args.guard.seen(),
            }
        }
        (None, None) => anyhow::bail!("give the reply with --text, or --template NAME"),
    };
    let (client, _config) = Client::open(globals, "reply")?;
    // Whether a reply makes the conversation pending is the workspace's setting.
    let post = match post {
        Post::Reply {
            channel,
            body,
            seen,
            ..
        } if send_at.is_some() => Post::ScheduleReply {
            channel,
            body,
            send_at: send_at.unwrap_or_default(),
            seen,
        },
        Post::Reply {
            channel,
            body,
            seen,
            ..
        } => Post::Reply {
            channel,
            body,
            then_pending: client.welcome().pending_after_reply,
            seen,
        },
        other => other,
    };
    let written = match client.call(Request::Post {
        conversation: id,
        post,
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
                scheduled_at: send_at.map(super::fmt::rfc3339),
                author: written.author,
                worker_running,
            },
        );
    }
    if let Some(at) = send_at {
        writeln!(
            out,
            "scheduled #{message} via {channel} to {} for {} (it stays in the outbox until then)",
            crate::sanitize::for_terminal_line(&recipient),
            crate::tui::time::full(at)
        )?;
        return Ok(());
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
