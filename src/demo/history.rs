//! Writing a large demo history fast: the bulk twin of [`crate::ingest::ingest_in`] and of the
//! store's workflow verbs, for an EMPTY store inside one transaction.
//!
//! Row by row, ingest costs about a dozen statements per message (the idempotency lookup,
//! identity lookups, the active conversation, the conversation summary and its four indexes,
//! the contact, the event), which caps a million-message workspace far below the 50,000
//! messages/s the demo needs. Here the identity graph and every contact and conversation live
//! in memory while the history is played: each message is ONE insert, contacts and
//! conversations are written once at the end with their final summary, and one `imported`
//! event stands for the history in the audit log.
//!
//! The decisions are ingest's, step for step (same sanitizing, normalizing, identity linking,
//! threading with the reopen window, summary rules); `tests::bulk_history_equals_ingest`
//! plays one plan both ways and compares every contact, identity, conversation, tag and
//! message. What it does not do is merge two existing contacts: the demo never needs it, and
//! it fails loudly if a message would.

use crate::identity;
use crate::ingest::{Inbound, IngestError, Ingested, MAX_BODY_CHARS, Settings};
use crate::model::{
    Channel, ContactId, ConversationId, Delivery, Direction, IdentityKind, MessageId, Millis,
    Priority, Status,
};
use crate::sanitize;
use crate::store::bulk::{self, ContactRecord, ConversationRecord};
use crate::store::conversations::{add_channel, normalize_tag};
use crate::store::messages::{NewMessage, preview};
use crate::store::{self, StoreError, Tx};
use std::collections::HashMap;

/// FxHash (as in rustc): the identity map is hit for every message, and its keys are ours.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Identities by kind, then normalized value.
#[derive(Default)]
struct Identities([FxMap<String, ContactId>; 7]);

impl Identities {
    fn slot(kind: IdentityKind) -> usize {
        match kind {
            IdentityKind::Email => 0,
            IdentityKind::Phone => 1,
            IdentityKind::Telegram => 2,
            IdentityKind::WebChat => 3,
            IdentityKind::Instagram => 4,
            IdentityKind::Messenger => 5,
            IdentityKind::External => 6,
        }
    }
    fn get(&self, kind: IdentityKind, value: &str) -> Option<ContactId> {
        self.0[Self::slot(kind)].get(value).copied()
    }
    fn insert(&mut self, kind: IdentityKind, value: &str, contact: ContactId) {
        self.0[Self::slot(kind)].insert(value.to_string(), contact);
    }
}

pub(crate) struct History {
    /// Indexes the messages on another thread as they are written.
    fts: Option<bulk::FtsBuilder>,
    identities: Identities,
    contacts: Vec<Contact>,
    convs: Vec<ConversationRecord>,
    /// Tags of each conversation (same index as `convs`), written in key order at the end.
    tags: Vec<Vec<String>>,
    first_contact: i64,
    first_conv: i64,
    /// Phone numbers already normalized (parsing one is slow, and a customer on WhatsApp, SMS
    /// and the phone sends theirs with every message).
    phones: HashMap<String, String>,
}

struct Contact {
    row: ContactRecord,
    /// Every conversation of the contact.
    convs: Vec<ConversationId>,
}

impl History {
    /// Start a history load on a store that holds no contact and no conversation.
    pub(crate) fn new(tx: &Tx<'_>, fts: Option<bulk::FtsBuilder>) -> store::Result<History> {
        let (contact, conv) = tx.bulk_next_ids()?;
        Ok(History {
            fts,
            identities: Identities::default(),
            contacts: Vec::new(),
            convs: Vec::new(),
            tags: Vec::new(),
            first_contact: contact.0,
            first_conv: conv.0,
            phones: HashMap::new(),
        })
    }

    /// [`identity::normalize`], remembering phone numbers.
    fn normalize(&mut self, kind: IdentityKind, raw: &str) -> Result<String, IngestError> {
        if kind != IdentityKind::Phone {
            return Ok(identity::normalize(kind, raw)?);
        }
        if let Some(v) = self.phones.get(raw) {
            return Ok(v.clone());
        }
        let v = identity::normalize(kind, raw)?;
        self.phones.insert(raw.to_string(), v.clone());
        Ok(v)
    }

    fn contact(&mut self, id: ContactId) -> store::Result<&mut Contact> {
        let i = id.0 - self.first_contact;
        usize::try_from(i)
            .ok()
            .and_then(|i| self.contacts.get_mut(i))
            .ok_or(StoreError::NoContact(id.0))
    }

    fn conv(&mut self, id: ConversationId) -> store::Result<&mut ConversationRecord> {
        let i = id.0 - self.first_conv;
        usize::try_from(i)
            .ok()
            .and_then(|i| self.convs.get_mut(i))
            .ok_or(StoreError::NoConversation(id.0))
    }

    /// [`crate::ingest::ingest_in`], with the identity graph, contacts and conversations in
    /// memory and no event.
    pub(crate) fn ingest(
        &mut self,
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
        // No idempotency lookup: the load's ids are fresh, and the unique index would reject a
        // repeat anyway.

        // sanitize
        let customer_value = self.normalize(msg.customer.kind, &msg.customer.value)?;
        let linked: Vec<(IdentityKind, String)> = msg
            .linked
            .iter()
            .filter_map(|c| self.normalize(c.kind, &c.value).ok().map(|v| (c.kind, v)))
            .filter(|(k, v)| !(*k == msg.customer.kind && *v == customer_value))
            .collect();
        let name = msg.customer_name.as_deref().map(sanitize::line);
        let subject = msg
            .subject
            .as_deref()
            .map(sanitize::line)
            .filter(|s| !s.is_empty());
        let mut body = sanitize::text(&msg.body);
        if body.chars().count() > MAX_BODY_CHARS {
            body = body.chars().take(MAX_BODY_CHARS).collect();
            body.push_str("\n[… message cut: longer than 256 KiB of text]");
        }
        let body = body.trim_matches('\n');
        let at = msg.sent_at;

        // identity
        let source = msg.channel.source();
        let contact = self.resolve(
            tx,
            (msg.customer.kind, &customer_value),
            &linked,
            name.as_deref(),
            source,
            now,
        )?;

        // thread
        let mut new_conversation = false;
        let conversation = match self.active_conversation(contact)? {
            Some(c) => {
                if msg.direction == Direction::In {
                    self.reopen(c)?;
                }
                c
            }
            None => match self.last_resolved(contact)? {
                // As ingest: anything joins a recently resolved conversation, only the
                // customer reopens it.
                Some((c, resolved_at)) if at - resolved_at <= settings.reopen_window_ms => {
                    if msg.direction == Direction::In {
                        self.reopen(c)?;
                    }
                    c
                }
                _ => {
                    new_conversation = true;
                    let team = settings.team_for(msg.channel, &account);
                    self.create_conversation(contact, msg.channel, subject.as_deref(), team, at)?
                }
            },
        };

        // store
        let author = match &msg.author {
            Some(a) => sanitize::line(a),
            None => name.clone().unwrap_or_else(|| customer_value.clone()),
        };
        let meta = msg.meta.as_ref().map(|m| m.to_string());
        // What `from:` finds this message by: the identifier it came from and those it gave.
        let from_identity = std::iter::once(customer_value.as_str())
            .chain(linked.iter().map(|(_, v)| v.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        let message = self.insert(
            tx,
            &NewMessage {
                conversation,
                contact,
                channel: msg.channel,
                account: &account,
                external_id: Some(&external_id),
                direction: msg.direction,
                author: &author,
                subject: subject.as_deref(),
                body,
                created_at: at,
                stored_at: now,
                delivery: (msg.direction == Direction::Out).then_some(Delivery::Sent),
                meta: meta.as_deref(),
                from_identity: Some(&from_identity),
            },
        )?;
        if msg.direction == Direction::In {
            let c = &mut self.contact(contact)?.row;
            let old = c.last_seen;
            c.last_seen = old.max(at);
            if at >= old {
                c.last_channel = Some(msg.channel);
            }
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

    /// [`crate::identity::resolve`] against the in-memory identity graph.
    fn resolve(
        &mut self,
        tx: &Tx<'_>,
        primary: (IdentityKind, &str),
        linked: &[(IdentityKind, String)],
        display_name: Option<&str>,
        source: &str,
        at: Millis,
    ) -> Result<ContactId, IngestError> {
        let mut owners: Vec<ContactId> = Vec::new();
        if let Some(c) = self.identities.get(primary.0, primary.1) {
            owners.push(c);
        }
        for (kind, value) in linked {
            if let Some(c) = self.identities.get(*kind, value)
                && !owners.contains(&c)
            {
                owners.push(c);
            }
        }
        if owners.len() > 1 {
            return Err(IngestError::Store(StoreError::Invalid(format!(
                "a bulk history load cannot merge contacts ({} {})",
                primary.0, primary.1
            ))));
        }
        let contact = match owners.first() {
            Some(&c) => c,
            None => {
                let name = display_name
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| identity::fallback_name(primary.0, primary.1));
                let id = ContactId(self.first_contact + self.contacts.len() as i64);
                self.contacts.push(Contact {
                    row: ContactRecord {
                        id,
                        name,
                        vip: false,
                        created_at: at,
                        last_seen: at,
                        last_channel: None,
                    },
                    convs: Vec::new(),
                });
                id
            }
        };
        if self.identities.get(primary.0, primary.1).is_none() {
            tx.insert_identity(contact, primary.0, primary.1, source, at)?;
            self.identities.insert(primary.0, primary.1, contact);
        }
        for (kind, value) in linked {
            if self.identities.get(*kind, value).is_none() {
                let given = format!("{source} (given by the customer)");
                tx.insert_identity(contact, *kind, value, &given, at)?;
                self.identities.insert(*kind, value, contact);
            }
        }
        if let Some(name) = display_name.filter(|n| !n.is_empty()) {
            // contacts::improve_name: only a name that is an address or a placeholder gives way.
            let c = &mut self.contact(contact)?.row;
            let current = c.name.as_str();
            let placeholder = current.is_empty()
                || current.contains('@')
                || current
                    .get(..8)
                    .is_some_and(|p| p.eq_ignore_ascii_case("visitor "))
                || current.starts_with('+');
            if current != name && placeholder {
                c.name = name.to_string();
            }
        }
        Ok(contact)
    }

    /// The conversations of a contact, read-only.
    fn conversations_of(
        &self,
        contact: ContactId,
    ) -> store::Result<impl Iterator<Item = store::Result<&ConversationRecord>>> {
        let c = usize::try_from(contact.0 - self.first_contact)
            .ok()
            .and_then(|i| self.contacts.get(i))
            .ok_or(StoreError::NoContact(contact.0))?;
        Ok(c.convs.iter().map(|id| {
            usize::try_from(id.0 - self.first_conv)
                .ok()
                .and_then(|i| self.convs.get(i))
                .ok_or(StoreError::NoConversation(id.0))
        }))
    }

    /// contacts::active_conversation: the newest conversation that is not resolved.
    fn active_conversation(&self, contact: ContactId) -> store::Result<Option<ConversationId>> {
        let mut best: Option<(Millis, ConversationId)> = None;
        for c in self.conversations_of(contact)? {
            let c = c?;
            if c.status != Status::Resolved
                && best.is_none_or(|(at, id)| {
                    c.last_activity > at || (c.last_activity == at && c.id < id)
                })
            {
                best = Some((c.last_activity, c.id));
            }
        }
        Ok(best.map(|(_, id)| id))
    }

    /// contacts::last_resolved: the most recently resolved conversation and when.
    fn last_resolved(&self, contact: ContactId) -> store::Result<Option<(ConversationId, Millis)>> {
        let mut best: Option<&ConversationRecord> = None;
        for c in self.conversations_of(contact)? {
            let c = c?;
            if c.status == Status::Resolved && best.is_none_or(|b| c.resolved_at > b.resolved_at) {
                best = Some(c);
            }
        }
        Ok(best.map(|c| (c.id, c.resolved_at.unwrap_or(c.last_activity))))
    }

    /// conversations::reopen.
    fn reopen(&mut self, id: ConversationId) -> store::Result<()> {
        let c = self.conv(id)?;
        if c.status != Status::Open {
            c.status = Status::Open;
            c.snoozed_until = None;
            c.resolved_at = None;
        }
        Ok(())
    }

    /// messages::create_conversation.
    fn create_conversation(
        &mut self,
        contact: ContactId,
        channel: Channel,
        subject: Option<&str>,
        team: Option<&str>,
        at: Millis,
    ) -> store::Result<ConversationId> {
        let id = ConversationId(self.first_conv + self.convs.len() as i64);
        self.convs.push(ConversationRecord {
            id,
            contact,
            status: Status::Open,
            priority: Priority::Normal,
            assignee: None,
            subject: subject.map(str::to_string),
            channels: String::new(),
            last_channel: channel,
            last_activity: at,
            last_preview: String::new(),
            last_direction: Direction::In,
            message_count: 0,
            created_at: at,
            resolved_at: None,
            snoozed_until: None,
            team: team.map(str::to_string),
        });
        self.tags.push(Vec::new());
        self.contact(contact)?.convs.push(id);
        Ok(id)
    }

    /// messages::insert_message: the row now, the conversation's summary in memory.
    fn insert(&mut self, tx: &Tx<'_>, m: &NewMessage<'_>) -> store::Result<MessageId> {
        let id = tx.bulk_insert_message(m)?;
        if let Some(fts) = &mut self.fts {
            fts.add(id, m.subject, m.body, Some(&m.sender_words()))?;
        }
        let c = self.conv(m.conversation)?;
        if let Some(set) = add_channel(&c.channels, m.channel) {
            c.channels = set;
        }
        let newest = m.created_at >= c.last_activity;
        c.message_count += 1;
        c.last_activity = c.last_activity.max(m.created_at);
        if newest {
            if m.direction != Direction::Note {
                c.last_channel = m.channel;
            }
            c.last_preview = preview(m.body);
            c.last_direction = m.direction;
        }
        if c.subject.is_none() {
            c.subject = m.subject.map(str::to_string);
        }
        Ok(id)
    }

    /// bulk::agent_message without its event.
    pub(crate) fn agent_message(
        &mut self,
        tx: &Tx<'_>,
        m: &bulk::AgentMessage<'_>,
    ) -> store::Result<MessageId> {
        let out = match m.direction {
            Direction::Out => true,
            Direction::Note => false,
            Direction::In => {
                return Err(StoreError::Invalid(
                    "customer messages go through ingest".into(),
                ));
            }
        };
        self.insert(
            tx,
            &NewMessage {
                conversation: m.conversation,
                contact: m.contact,
                channel: m.channel,
                account: "",
                external_id: None,
                direction: m.direction,
                author: m.author,
                subject: m.subject,
                body: m.body,
                created_at: m.at,
                stored_at: m.at,
                delivery: out.then_some(Delivery::Sent),
                meta: None,
                from_identity: None,
            },
        )
    }

    /// bulk::set_status without its event.
    pub(crate) fn set_status(
        &mut self,
        conv: ConversationId,
        status: Status,
        snoozed_until: Option<Millis>,
        at: Millis,
    ) -> store::Result<()> {
        if status == Status::Snoozed && snoozed_until.is_none() {
            return Err(StoreError::Invalid("snooze needs a time".into()));
        }
        let c = self.conv(conv)?;
        c.status = status;
        c.snoozed_until = if status == Status::Snoozed {
            snoozed_until
        } else {
            None
        };
        c.resolved_at = (status == Status::Resolved).then_some(at);
        Ok(())
    }

    pub(crate) fn assign(
        &mut self,
        conv: ConversationId,
        assignee: Option<&str>,
    ) -> store::Result<()> {
        self.conv(conv)?.assignee = assignee.map(str::to_string);
        Ok(())
    }

    pub(crate) fn set_priority(
        &mut self,
        conv: ConversationId,
        priority: Priority,
    ) -> store::Result<()> {
        self.conv(conv)?.priority = priority;
        Ok(())
    }

    /// bulk::add_tag without its event.
    pub(crate) fn add_tag(&mut self, conv: ConversationId, tag: &str) -> store::Result<()> {
        let tag = normalize_tag(tag)?;
        let tags = usize::try_from(conv.0 - self.first_conv)
            .ok()
            .and_then(|i| self.tags.get_mut(i))
            .ok_or(StoreError::NoConversation(conv.0))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
        Ok(())
    }

    pub(crate) fn set_vip(&mut self, contact: ContactId, vip: bool) -> store::Result<()> {
        self.contact(contact)?.row.vip = vip;
        Ok(())
    }

    /// Write every contact and conversation with its final state. Returns the index builder
    /// (if any) for the caller to install.
    pub(crate) fn finish(mut self, tx: &Tx<'_>) -> store::Result<Option<bulk::FtsBuilder>> {
        for c in &self.contacts {
            tx.bulk_insert_contact(&c.row)?;
        }
        for c in &self.convs {
            tx.bulk_insert_conversation(c)?;
        }
        for (c, tags) in self.convs.iter().zip(&mut self.tags) {
            tags.sort_unstable();
            for t in tags.iter() {
                tx.bulk_insert_tag(c.id, t)?;
            }
        }
        Ok(self.fts)
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.contacts.len(), self.convs.len())
    }
}
