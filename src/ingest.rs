//! The one path every inbound message takes, in one transaction:
//! sanitize -> resolve identity -> thread -> store -> event (and the channel cursor, if any).
//!
//! Idempotent on (channel, account, external id): delivering the same message twice stores it
//! once, so a channel may always replay from its last saved cursor after a crash.

use crate::identity::{self, Claim, IdentityError};
use crate::model::{Channel, ContactId, ConversationId, Direction, MessageId, Millis, now_millis};
use crate::sanitize;
use crate::store::events::{EventKind, EventRefs};
use crate::store::messages::NewMessage;
use crate::store::{self, Store, Tx};
use std::collections::BTreeMap;

/// Default: a resolved conversation reopens when the customer writes within 7 days.
pub const DEFAULT_REOPEN_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// Bodies longer than this are cut (with a marker) rather than stored whole.
pub const MAX_BODY_CHARS: usize = 256 * 1024;

/// A message as a channel delivers it: untrusted, unnormalized.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub channel: Channel,
    /// Which configured account of the channel (mailbox, bot); "" for the only one.
    pub account: String,
    /// The channel's own id for the message (Message-ID, Telegram update id, widget message id).
    pub external_id: String,
    /// `In` for the customer's messages; `Out` for ours seen from outside (a Sent folder).
    pub direction: Direction,
    /// The customer's identifier the channel vouches for (sender of `In`, recipient of `Out`).
    pub customer: Claim,
    /// Identifiers proven to be the customer's in this message (their own contact card, an
    /// email the embedding site signed): each one joins (or merges) the contact. Never an
    /// address the customer merely typed (a web chat claim: see [`crate::store::claims`]).
    pub linked: Vec<Claim>,
    /// The customer's display name, if the channel has one.
    pub customer_name: Option<String>,
    /// Who wrote it: None means the customer (for `In`); for `Out`, the sending agent/address.
    pub author: Option<String>,
    pub subject: Option<String>,
    pub body: String,
    /// When the message was written (the channel's timestamp).
    pub sent_at: Millis,
    /// Channel-specific data kept as JSON (email headers for threading, attachments...).
    pub meta: Option<serde_json::Value>,
    /// A channel position saved in the same transaction: (key, value).
    pub cursor: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Stored {
        message: MessageId,
        conversation: ConversationId,
        contact: ContactId,
        new_conversation: bool,
    },
    Duplicate {
        message: MessageId,
        conversation: ConversationId,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("sender: {0}")]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("message without an external id")]
    NoExternalId,
    /// The body had text, but nothing of it is left once control characters and escape
    /// sequences are removed (and there is no subject): stored, it would be a blank message.
    #[error(
        "message skipped: it holds only control characters or terminal escape sequences, nothing \
         readable"
    )]
    Blank,
}

/// Threading, identity and team settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub reopen_window_ms: i64,
    /// The team of each (channel, account) that has one (`team = "billing"` in `[[email]]`,
    /// `[telegram]`, `[webchat]`): a conversation a message of it starts belongs to the team.
    /// A message joining an existing conversation leaves its team alone.
    pub teams: BTreeMap<(Channel, String), String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reopen_window_ms: DEFAULT_REOPEN_WINDOW_MS,
            teams: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// The team a new conversation of `channel`/`account` belongs to, if any.
    pub fn team_for(&self, channel: Channel, account: &str) -> Option<&str> {
        self.teams
            .get(&(channel, account.to_string()))
            .map(String::as_str)
    }
}

/// Ingest one message in its own transaction.
pub fn ingest(
    store: &mut Store,
    msg: &Inbound,
    settings: &Settings,
) -> Result<Ingested, IngestError> {
    let tx = store.write()?;
    let out = ingest_in(&tx, msg, settings, now_millis())?;
    tx.commit()?;
    Ok(out)
}

/// Ingest one message inside the caller's transaction (batches: imports, the demo generator).
pub fn ingest_in(
    tx: &Tx<'_>,
    msg: &Inbound,
    settings: &Settings,
    now: Millis,
) -> Result<Ingested, IngestError> {
    let external_id = sanitize::line(&msg.external_id);
    if external_id.is_empty() {
        return Err(IngestError::NoExternalId);
    }
    let account = sanitize::line(&msg.account);
    if let Some((message, conversation)) = tx.find_external(msg.channel, &account, &external_id)? {
        if let Some((k, v)) = &msg.cursor {
            tx.set_cursor(msg.channel.as_str(), &account, k, v)?;
        }
        return Ok(Ingested::Duplicate {
            message,
            conversation,
        });
    }

    // sanitize
    let customer_value = identity::normalize(msg.customer.kind, &msg.customer.value)?;
    let linked: Vec<_> = msg
        .linked
        .iter()
        .filter_map(|c| match identity::normalize(c.kind, &c.value) {
            Ok(v) => Some((c.kind, v)),
            Err(e) => {
                tracing::warn!("ignoring a linked identity: {e}");
                None
            }
        })
        .filter(|(k, v)| !(*k == msg.customer.kind && *v == customer_value))
        .collect();
    let name = msg.customer_name.as_deref().map(sanitize::line);
    let subject = msg
        .subject
        .as_deref()
        .map(sanitize::line)
        .filter(|s| !s.is_empty());
    let mut body = sanitize::text(&msg.body);
    // Emptiness is judged on what would be stored: a message of escape sequences only is not
    // stored blank. (A message empty to begin with, an email with only a subject, is kept.)
    if body.trim().is_empty() && !msg.body.trim().is_empty() && subject.is_none() {
        return Err(IngestError::Blank);
    }
    if body.chars().count() > MAX_BODY_CHARS {
        body = body.chars().take(MAX_BODY_CHARS).collect();
        body.push_str("\n[… message cut: longer than 256 KiB of text]");
    }
    let body = body.trim_matches('\n').to_string();
    let at = msg.sent_at;

    // identity
    let source = msg.channel.source();
    let contact = identity::resolve(
        tx,
        (msg.customer.kind, &customer_value),
        &linked,
        name.as_deref(),
        source,
        now,
    )?;
    if msg.direction == Direction::In {
        // Writing from it proves it reachable again (the customer unblocked the bot).
        tx.mark_reachable(msg.customer.kind, &customer_value)?;
    }

    // thread: the open conversation, else a recently resolved one, else a new one. A reply
    // that answers a survey ("5 - great service") joins the surveyed conversation and leaves
    // it resolved.
    let mut new_conversation = false;
    let active = tx.active_conversation(contact)?;
    let survey_answer = match (active, msg.direction) {
        (None, Direction::In) => {
            // A survey's list row / button (WhatsApp `interactive`) carries `csat:CONV:SCORE`.
            let button = msg
                .meta
                .as_ref()
                .and_then(|m| m.get("interactive"))
                .and_then(|i| i.get("id"))
                .and_then(|v| v.as_str())
                .and_then(crate::csat::parse_button);
            tx.csat_text_answer(contact, msg.channel, at, &body, button)?
        }
        _ => None,
    };
    let conversation = match (survey_answer.as_ref(), active) {
        (Some((c, _, _)), _) => *c,
        (None, Some(c)) => {
            if msg.direction == Direction::In {
                tx.reopen(c, now, "ingest")?;
            }
            c
        }
        (None, None) => match tx.last_resolved(contact)? {
            // Our own message seen from outside (a Sent folder) joins the recently resolved
            // conversation it belongs to but leaves it resolved: only the customer reopens.
            Some((c, resolved_at)) if at - resolved_at <= settings.reopen_window_ms => {
                if msg.direction == Direction::In {
                    tx.reopen(c, now, "ingest")?;
                }
                c
            }
            _ => {
                new_conversation = true;
                tx.create_conversation(
                    contact,
                    msg.channel,
                    subject.as_deref(),
                    settings.team_for(msg.channel, &account),
                    at,
                    "ingest",
                )?
            }
        },
    };

    // store
    let author_owned;
    let author: &str = match (&msg.author, msg.direction) {
        (Some(a), _) => {
            author_owned = sanitize::line(a);
            &author_owned
        }
        (None, _) => {
            author_owned = name.clone().unwrap_or_else(|| customer_value.clone());
            &author_owned
        }
    };
    let meta = msg.meta.as_ref().map(|m| m.to_string());
    // What `from:` finds this message by: the identifier it came from and those it gave.
    let from_identity = std::iter::once(customer_value.as_str())
        .chain(linked.iter().map(|(_, v)| v.as_str()))
        .collect::<Vec<_>>()
        .join(" ");
    let message = tx.insert_message(&NewMessage {
        conversation,
        contact,
        channel: msg.channel,
        account: &account,
        external_id: Some(&external_id),
        direction: msg.direction,
        author,
        subject: subject.as_deref(),
        body: &body,
        created_at: at,
        stored_at: now,
        delivery: if msg.direction == Direction::Out {
            Some(crate::model::Delivery::Sent)
        } else {
            None
        },
        meta: meta.as_deref(),
        from_identity: Some(&from_identity),
    })?;
    if msg.direction == Direction::In {
        tx.touch_contact(contact, at, msg.channel)?;
    }

    // event (+ cursor, same transaction)
    tx.append_event(
        now,
        "ingest",
        if msg.direction == Direction::In {
            EventKind::MessageIn
        } else {
            EventKind::MessageOut
        },
        EventRefs {
            conversation: Some(conversation),
            contact: Some(contact),
            message: Some(message),
        },
        Some(&serde_json::json!({ "channel": msg.channel })),
    )?;
    // The customer's own word about consent ("unsubscribe", Telegram /stop, /start): the
    // contact's marketing state, recorded with the message that said it.
    if msg.direction == Direction::In
        && survey_answer.is_none()
        && let Some(said) = crate::consent::inbound_word(msg.channel, subject.as_deref(), &body)
    {
        {
            tx.record_consent(
                &store::consent::Change {
                    contact,
                    purpose: crate::model::Purpose::Marketing,
                    opted_out: said.opted_out,
                    channel: Some(msg.channel),
                    identity: Some((msg.customer.kind, &customer_value)),
                    source: said.source,
                    detail: &said.word,
                },
                source,
                at,
            )?;
        }
    }
    if let Some((conv, score, comment)) = &survey_answer {
        tx.record_csat_text_answer(*conv, *score, comment, msg.channel, now, message)?;
    }
    if let Some((k, v)) = &msg.cursor {
        tx.set_cursor(msg.channel.as_str(), &account, k, v)?;
    }
    Ok(Ingested::Stored {
        message,
        conversation,
        contact,
        new_conversation,
    })
}
