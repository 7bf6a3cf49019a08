//! Channels: each carries messages between customers and the store. Inbound, a channel hands
//! [`crate::ingest::Inbound`] values to ingest; outbound, the worker's dispatcher gives it
//! [`OutboxItem`]s through [`Outbound::send`].

pub mod demo;
pub mod email;
pub mod graph;
pub mod hooks;
pub mod meta;
pub mod save;
pub mod sms;
pub mod telegram;

pub mod webchat;
pub mod whatsapp;

use crate::model::Channel;
use crate::store::OutboxItem;
use std::future::Future;
use std::pin::Pin;

/// The `team = "..."` key of a channel's config: None when absent or empty (no team); else a
/// name on one line, or what is wrong.
pub fn team_name(team: Option<&str>) -> Result<Option<String>, String> {
    match team.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().any(char::is_control) => Err("must be a name on one line".into()),
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// What a successful send reports back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The account the message left through.
    pub account: String,
    /// The channel's id for the sent message (Message-ID, Telegram message id).
    pub external_id: Option<String>,
}

/// A failed send. `retry`: worth trying again later (timeouts, 4xx/5xx temporary errors);
/// not: permanent (bad address, blocked bot), the message stays failed until `:retry`.
/// `may_have_sent`: the request left and no answer came back (a timeout after sending, a
/// connection dropped mid-answer), so the customer may have it; a channel that cannot check
/// (see [`Outbound::resend_is_safe`]) leaves such a reply `unclear` for an agent to decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    pub reason: String,
    pub retry: bool,
    pub may_have_sent: bool,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, SendError>> + Send + 'a>>;

/// The outbound half of a channel.
pub trait Outbound: Send + Sync {
    /// Which channel this sender carries.
    fn channel(&self) -> Channel;
    /// Deliver one reply. Must finish (or fail) within its own overall timeout.
    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a>;

    /// Whether this failure means the recipient cannot be reached on this channel at all (a
    /// blocked bot): the identity is then marked so, and replies default to another channel.
    fn unreachable(&self, _error: &SendError) -> bool {
        false
    }

    /// Whether sending a reply again is harmless when an earlier attempt may have gone out:
    /// email looks for it in the Sent folder first, the web chat widget drops a message id it
    /// already shows. Telegram cannot be asked, so its unclear sends wait for an agent.
    fn resend_is_safe(&self) -> bool {
        true
    }
}
