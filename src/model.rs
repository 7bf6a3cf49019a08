//! Domain types shared by every layer: ids as newtypes, channels, directions, statuses.
//!
//! Every enum has one textual form (`as_str`) used in the database, the CLI, the
//! config and the `:` command line, and `FromStr` that accepts exactly that form.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            Default,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}
id_type!(ContactId);
id_type!(ConversationId);
id_type!(MessageId);
id_type!(EventId);

/// A conversation id as typed: `522` or `#522`.
pub fn parse_conversation_id(s: &str) -> Result<ConversationId, String> {
    let t = s.trim();
    match t.strip_prefix('#').unwrap_or(t).parse::<i64>() {
        Ok(n) if n > 0 => Ok(ConversationId(n)),
        _ => Err(format!(
            "bad conversation '{s}' (a number like 522 or #522)"
        )),
    }
}

/// A value that did not parse as one of an enum's textual forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{got}' (expected one of: {})", .expected.trim_end())]
pub struct ParseEnumError {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static str,
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseEnumError { what: $what, got: s.to_string(), expected: concat!($($text, " "),+) }),
                }
            }
        }
    };
}

text_enum!(
    /// A way customers reach us. Every message carries exactly one.
    Channel, "channel", {
        Email => "email",
        Telegram => "telegram",
        WebChat => "webchat",
        WhatsApp => "whatsapp",
        Instagram => "instagram",
        Messenger => "messenger",
        Sms => "sms",
        Phone => "phone",
        Event => "event",
    }
);

impl Channel {
    /// Short badge shown in the queue and the timeline.
    pub fn badge(self) -> &'static str {
        match self {
            Channel::Email => "✉ mail",
            Channel::Telegram => "✈ tg",
            Channel::WebChat => "◍ web",
            Channel::WhatsApp => "✆ wa",
            Channel::Instagram => "◈ ig",
            Channel::Messenger => "◌ fb",
            Channel::Sms => "☏ sms",
            Channel::Phone => "☎ call",
            Channel::Event => "⚑ event",
        }
    }
    /// One-character badge for narrow columns.
    pub fn glyph(self) -> char {
        match self {
            Channel::Email => '✉',
            Channel::Telegram => '✈',
            Channel::WebChat => '◍',
            Channel::WhatsApp => '✆',
            Channel::Instagram => '◈',
            Channel::Messenger => '◌',
            Channel::Sms => '☏',
            Channel::Phone => '☎',
            Channel::Event => '⚑',
        }
    }
    /// The channel's name in a sentence.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Email => "the mail server",
            Channel::Telegram => "Telegram",
            Channel::WebChat => "the web chat",
            Channel::WhatsApp => "WhatsApp",
            Channel::Instagram => "Instagram",
            Channel::Messenger => "Messenger",
            Channel::Sms => "SMS",
            Channel::Phone => "the phone",
            Channel::Event => "an external source",
        }
    }
    /// The identity kind a reply on this channel is addressed to.
    pub fn identity_kind(self) -> IdentityKind {
        match self {
            Channel::Email => IdentityKind::Email,
            Channel::Telegram => IdentityKind::Telegram,
            Channel::WebChat => IdentityKind::WebChat,
            Channel::WhatsApp | Channel::Sms | Channel::Phone => IdentityKind::Phone,
            Channel::Instagram => IdentityKind::Instagram,
            Channel::Messenger => IdentityKind::Messenger,
            Channel::Event => IdentityKind::External,
        }
    }
    /// Whether an agent can answer on this channel. Call logs and external events are records
    /// put on a timeline by another system; nothing goes back through them.
    pub fn replyable(self) -> bool {
        !matches!(self, Channel::Phone | Channel::Event)
    }
    /// The customer-service window: a free-form reply may go only this long after the
    /// customer's last message on the channel (WhatsApp, Instagram, Messenger: 24 hours).
    /// Outside it WhatsApp takes only approved templates, and Instagram and Messenger only
    /// human-agent replies ([`Channel::human_agent_window_ms`]).
    pub fn reply_window_ms(self) -> Option<i64> {
        match self {
            Channel::WhatsApp | Channel::Instagram | Channel::Messenger => Some(24 * HOUR_MS),
            _ => None,
        }
    }
    /// Instagram and Messenger: a reply written by a person (the `HUMAN_AGENT` tag) may go up
    /// to 7 days after the customer's last message.
    pub fn human_agent_window_ms(self) -> Option<i64> {
        match self {
            Channel::Instagram | Channel::Messenger => Some(7 * 24 * HOUR_MS),
            _ => None,
        }
    }
    /// The channel's name for a source line of the identity graph ("telegram", "web chat").
    pub fn source(self) -> &'static str {
        match self {
            Channel::WebChat => "web chat",
            Channel::Phone => "call log",
            c => c.as_str(),
        }
    }
}

text_enum!(
    /// Which way a message went. Notes are internal and never leave braid.
    Direction, "direction", {
        In => "in",
        Out => "out",
        Note => "note",
    }
);

text_enum!(
    /// Where a conversation stands in the workflow.
    Status, "status", {
        Open => "open",
        Pending => "pending",
        Snoozed => "snoozed",
        Resolved => "resolved",
    }
);

impl Status {
    /// Open, pending and snoozed conversations are "active": a new inbound message joins them.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::Resolved)
    }
}

text_enum!(
    Priority, "priority", {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

impl Priority {
    pub fn marker(self) -> &'static str {
        match self {
            Priority::Low => "↓",
            Priority::Normal => " ",
            Priority::High => "↑",
            Priority::Urgent => "‼",
        }
    }
}

text_enum!(
    /// Outbound delivery state of a message we send. `unclear`: the send may or may not have
    /// reached the customer (braid stopped, or the channel stopped answering, after the request
    /// left) and the channel cannot be asked; it is not sent again until an agent decides
    /// (`:retry`). `cancelled`: a scheduled reply (`:send-at`) its agent cancelled before it
    /// went out.
    Delivery, "delivery", {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Delivered => "delivered",
        Read => "read",
        Failed => "failed",
        Unclear => "unclear",
        Cancelled => "cancelled",
    }
);

impl Delivery {
    /// Where a delivery report stands in the order a channel reports them (sent, then
    /// delivered, then read): a report never moves a message back (reports arrive out of
    /// order). None for the states braid itself sets.
    pub fn report_rank(self) -> Option<u8> {
        match self {
            Delivery::Sent => Some(1),
            Delivery::Delivered => Some(2),
            Delivery::Read => Some(3),
            _ => None,
        }
    }
    /// Whether the message has left braid (sent, delivered, read).
    pub fn is_sent(self) -> bool {
        self.report_rank().is_some()
    }
}

text_enum!(
    /// What kind of identifier an identity is. Values are normalized per kind.
    IdentityKind, "identity kind", {
        Email => "email",
        Phone => "phone",
        Telegram => "telegram",
        WebChat => "webchat",
        Instagram => "instagram",
        Messenger => "messenger",
        External => "external",
    }
);

text_enum!(
    /// Why a message goes to a customer, for consent: a `Transactional` message answers or
    /// follows up the customer's own conversation (replies, rule replies, surveys); a
    /// `Marketing` one is sent unasked (campaigns). An opt-out of marketing on any channel stops
    /// marketing on every channel; an opt-out of transactional messages stops everything.
    Purpose, "purpose", {
        Transactional => "transactional",
        Marketing => "marketing",
    }
);

text_enum!(
    /// How a consent change came: a customer's word (`keyword`: SMS STOP, an email
    /// "unsubscribe"), a List-Unsubscribe mail (`header`), a chat command (`command`: Telegram
    /// /stop), the customer blocking the bot (`block`), an agent recording a request (`agent`).
    ConsentSource, "consent source", {
        Keyword => "keyword",
        Header => "header",
        Command => "command",
        Block => "block",
        Agent => "agent",
    }
);

const HOUR_MS: i64 = 3600 * 1000;

/// Milliseconds since the Unix epoch, UTC. The one time representation in the store.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_value_lists_the_choices_without_a_stray_space() {
        let e = "fax".parse::<super::Channel>().unwrap_err().to_string();
        assert!(
            e.ends_with("(expected one of: email telegram webchat whatsapp instagram messenger sms phone event)"),
            "{e}"
        );
    }

    use super::*;

    #[test]
    fn enums_round_trip_through_text() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(*c));
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(*s));
        }
        assert_eq!(" Urgent ".parse::<Priority>(), Ok(Priority::Urgent));
        let err = "fax".parse::<Channel>().unwrap_err();
        assert!(err.to_string().contains("email telegram webchat"), "{err}");
    }
}
