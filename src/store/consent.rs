//! Consent per contact and purpose, with its history, and the one check every outbound path
//! takes before a message is written or sent ([`outbound_refusal`]).
//!
//! Two layers:
//! - per channel and identifier (table `consent`, kept by [`super::hooks`]): an SMS STOP stops
//!   every SMS to that number, whatever the purpose (carriers enforce it);
//! - per contact and purpose (`contact_consent`): an opt-out of marketing on any channel stops
//!   marketing on every channel of the contact; an opt-out of transactional messages is an
//!   opt-out of everything (replies included). Replies to a customer's own message are
//!   transactional and stay allowed after a marketing opt-out.
//!
//! A contact merged into another keeps its rows: the state of a contact is read over the
//! contact and every contact merged into it (the most restrictive wins), so merges and unmerges
//! need no copy.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, Tx};
use crate::model::{Channel, ConsentSource, ContactId, IdentityKind, Millis, Purpose};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The contact and every contact merged into it (recursively), as a CTE named `fam(id)`.
const FAMILY: &str = "WITH RECURSIVE fam(id) AS (
        SELECT ?1 UNION SELECT c.id FROM contacts c JOIN fam ON c.merged_into = fam.id)";

/// A contact's standing for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub purpose: Purpose,
    pub opted_out: bool,
    /// The channel the newest change came on (None: an agent recorded it without one).
    pub channel: Option<Channel>,
    pub source: ConsentSource,
    pub at: Millis,
}

/// One change in a contact's consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEntry {
    pub at: Millis,
    pub purpose: Purpose,
    pub opted_out: bool,
    pub channel: Option<Channel>,
    /// The identity it came through (kind, value), if any.
    pub kind: Option<IdentityKind>,
    pub value: Option<String>,
    pub source: ConsentSource,
    /// The customer's word ("STOP", "unsubscribe") or the agent's note.
    pub detail: String,
    /// Who recorded it (an agent, "sms", "telegram", "email").
    pub actor: String,
}

/// A per-channel legal opt-out (an SMS STOP on a number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOptOut {
    pub channel: Channel,
    pub value: String,
    pub keyword: String,
    pub at: Millis,
}

/// Everything about a contact's consent, for the profile and the export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactConsent {
    /// No marketing on any channel.
    #[serde(default)]
    pub marketing_out: bool,
    /// Nothing at all (an opt-out of transactional messages).
    #[serde(default)]
    pub all_out: bool,
    #[serde(default)]
    pub states: Vec<ConsentState>,
    #[serde(default)]
    pub channels: Vec<ChannelOptOut>,
    #[serde(default)]
    pub history: Vec<ConsentEntry>,
}

impl ContactConsent {
    /// "all messages", "marketing", "SMS +1555…", or None: nothing is refused.
    pub fn summary(&self) -> Option<String> {
        if self.all_out {
            return Some("opted out of all messages".into());
        }
        if self.marketing_out || !self.channels.is_empty() {
            let chans: Vec<&str> = self.channels.iter().map(|c| c.channel.label()).collect();
            return Some(if chans.is_empty() {
                "opted out of marketing".into()
            } else {
                format!("opted out of marketing and of {}", chans.join(", "))
            });
        }
        None
    }
}

/// A change to record: who the customer is, what they said, where and how.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub contact: ContactId,
    pub purpose: Purpose,
    pub opted_out: bool,
    pub channel: Option<Channel>,
    pub identity: Option<(IdentityKind, &'a str)>,
    pub source: ConsentSource,
    pub detail: &'a str,
}

/// Why a message to `contact` on `channel` (to `to`) for `purpose` must not go, or None. The
/// one consent check of every outbound path: replies, rule replies and templates, surveys and
/// campaigns when they are queued ([`super::messages::queue_reply_tx`]), and the dispatcher
/// again right before the network call.
pub(crate) fn outbound_refusal(
    conn: &Connection,
    contact: ContactId,
    channel: Channel,
    to: &str,
    purpose: Purpose,
    now: Millis,
) -> Result<Option<String>> {
    // A per-channel legal stop (SMS STOP): nothing goes there, whatever the purpose.
    let stopped: Option<(String, Millis)> = conn
        .prepare_cached(
            "SELECT keyword, at FROM consent
             WHERE channel = ?1 AND kind = ?2 AND value = ?3 AND opted_out",
        )?
        .query_row((channel, channel.identity_kind(), to), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((keyword, at)) = stopped {
        return Ok(Some(format!(
            "the customer opted out of {} ({} {} ago): nothing goes until they text START; R to \
             reply on another channel",
            channel.label(),
            crate::sanitize::line(&keyword),
            super::hooks::span_text(now - at)
        )));
    }
    let states = states(conn, contact)?;
    let out = |p: Purpose| {
        states
            .iter()
            .filter(|s| s.purpose == p && s.opted_out)
            .max_by_key(|s| s.at)
    };
    if let Some(s) = out(Purpose::Transactional) {
        return Ok(Some(format!(
            "the customer opted out of all messages ({} {} ago): nothing goes on any channel \
             until they opt back in (:consent all on when they ask)",
            how(s),
            super::hooks::span_text(now - s.at)
        )));
    }
    if purpose == Purpose::Marketing {
        if let Some(s) = out(Purpose::Marketing) {
            return Ok(Some(format!(
                "the customer opted out of marketing ({} {} ago): no marketing on any channel; \
                 replies to their own messages still go",
                how(s),
                super::hooks::span_text(now - s.at)
            )));
        }
        // A legal stop on another of their channels is an opt-out of marketing everywhere.
        if let Some(c) = channel_opt_outs(conn, contact)?.into_iter().next() {
            return Ok(Some(format!(
                "the customer opted out of marketing ({} on {} {} ago): no marketing on any \
                 channel; replies to their own messages still go",
                crate::sanitize::line(&c.keyword),
                c.channel.label(),
                super::hooks::span_text(now - c.at)
            )));
        }
    }
    Ok(None)
}

fn how(s: &ConsentState) -> String {
    let source = match s.source {
        ConsentSource::Keyword => "said so",
        ConsentSource::Header => "unsubscribed",
        ConsentSource::Command => "sent /stop",
        ConsentSource::Block => "blocked us",
        ConsentSource::Agent => "recorded by an agent",
    };
    match s.channel {
        Some(c) => format!("{source} on {}", c.label()),
        None => source.to_string(),
    }
}

/// The contact's states (its own and those of contacts merged into it), newest first.
pub(crate) fn states(conn: &Connection, contact: ContactId) -> Result<Vec<ConsentState>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{FAMILY} SELECT purpose, opted_out, channel, source, at FROM contact_consent
         WHERE contact_id IN (SELECT id FROM fam) ORDER BY at DESC"
    ))?;
    let rows = stmt
        .query_map([contact], |r| {
            Ok(ConsentState {
                purpose: r.get(0)?,
                opted_out: r.get(1)?,
                channel: r.get(2)?,
                source: r.get(3)?,
                at: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The per-channel stops on any identity of the contact, oldest first.
pub(crate) fn channel_opt_outs(
    conn: &Connection,
    contact: ContactId,
) -> Result<Vec<ChannelOptOut>> {
    Ok(super::hooks::opted_out(conn, contact)?
        .into_iter()
        .map(|(channel, value, keyword, at)| ChannelOptOut {
            channel,
            value,
            keyword,
            at,
        })
        .collect())
}

/// The contact's consent history, oldest first.
pub(crate) fn history(conn: &Connection, contact: ContactId) -> Result<Vec<ConsentEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{FAMILY} SELECT at, purpose, opted_out, channel, kind, value, source, detail, actor
         FROM consent_history WHERE contact_id IN (SELECT id FROM fam) ORDER BY at, id"
    ))?;
    let rows = stmt
        .query_map([contact], |r| {
            Ok(ConsentEntry {
                at: r.get(0)?,
                purpose: r.get(1)?,
                opted_out: r.get(2)?,
                channel: r.get(3)?,
                kind: r.get(4)?,
                value: r.get(5)?,
                source: r.get(6)?,
                detail: r.get(7)?,
                actor: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Everything about the contact's consent.
pub(crate) fn contact_consent(conn: &Connection, contact: ContactId) -> Result<ContactConsent> {
    let states = states(conn, contact)?;
    let out = |p: Purpose| states.iter().any(|s| s.purpose == p && s.opted_out);
    Ok(ContactConsent {
        marketing_out: out(Purpose::Marketing),
        all_out: out(Purpose::Transactional),
        channels: channel_opt_outs(conn, contact)?,
        history: history(conn, contact)?,
        states,
    })
}

/// Record a change (in the caller's transaction): the state of the contact (and of the
/// contacts merged into it) for the purpose, a history row and a `consent_changed` event.
/// False (and nothing written) when the state already was so.
pub(crate) fn record(
    conn: &Connection,
    change: &Change<'_>,
    actor: &str,
    at: Millis,
) -> Result<bool> {
    let already = states(conn, change.contact)?
        .iter()
        .filter(|s| s.purpose == change.purpose)
        .map(|s| s.opted_out)
        .collect::<Vec<_>>();
    // Unchanged: every row of the family already says so (no row: opted in).
    let unchanged = if change.opted_out {
        already.iter().any(|&o| o)
    } else {
        already.iter().all(|&o| !o)
    };
    if unchanged {
        return Ok(false);
    }
    let detail = crate::sanitize::line(change.detail);
    conn.prepare_cached(&format!(
        "{FAMILY} UPDATE contact_consent SET opted_out = ?2, channel = ?3, source = ?4, at = ?5
         WHERE purpose = ?6 AND contact_id IN (SELECT id FROM fam)"
    ))?
    .execute((
        change.contact,
        change.opted_out,
        change.channel,
        change.source,
        at,
        change.purpose,
    ))?;
    conn.prepare_cached(
        "INSERT INTO contact_consent(contact_id, purpose, opted_out, channel, source, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(contact_id, purpose) DO UPDATE SET opted_out = excluded.opted_out,
            channel = excluded.channel, source = excluded.source, at = excluded.at",
    )?
    .execute((
        change.contact,
        change.purpose,
        change.opted_out,
        change.channel,
        change.source,
        at,
    ))?;
    let (kind, value) = match change.identity {
        Some((k, v)) => (Some(k), Some(v)),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO consent_history(contact_id, purpose, opted_out, channel, kind, value,
                                     source, detail, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute((
        change.contact,
        change.purpose,
        change.opted_out,
        change.channel,
        kind,
        value,
        change.source,
        &detail,
        actor,
        at,
    ))?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ConsentChanged,
        EventRefs {
            contact: Some(change.contact),
            ..Default::default()
        },
        Some(&serde_json::json!({
            "purpose": change.purpose, "opted_out": change.opted_out,
            "channel": change.channel, "source": change.source,
        })),
    )?;
    Ok(true)
}

impl Store {
    /// Everything about a contact's consent (state, per-channel stops, history).
    pub fn contact_consent(&self, contact: ContactId) -> Result<ContactConsent> {
        contact_consent(self.conn(), contact)
    }

    /// Why a message for `purpose` to `contact` on `channel` cannot go now (None: it can, as
    /// far as consent goes). See [`outbound_refusal`].
    pub fn outbound_refusal(
        &self,
        contact: ContactId,
        channel: Channel,
        purpose: Purpose,
        now: Millis,
    ) -> Result<Option<String>> {
        let to = super::messages::recipient(self.conn(), contact, channel.identity_kind())?
            .unwrap_or_default();
        outbound_refusal(self.conn(), contact, channel, &to, purpose, now)
    }

    /// Record a consent change in its own transaction (see [`record`]).
    pub fn record_consent(&mut self, change: &Change<'_>, actor: &str, at: Millis) -> Result<bool> {
        self.write_with(|tx| record(tx, change, actor, at))
    }
}

impl Tx<'_> {
    /// Record a consent change in this transaction (see [`record`]).
    pub fn record_consent(&self, change: &Change<'_>, actor: &str, at: Millis) -> Result<bool> {
        record(self.conn(), change, actor, at)
    }
}
