//! The store's write transaction as the rest of braid sees it.
//!
//! Ingest, identity resolution, email threading, the channels' batches and the demo generator
//! all write inside a transaction they do not own: they take a [`Tx`] and call its methods,
//! never SQL (DESIGN.md, convention 9). A channel that must undo one message without undoing
//! its batch asks for a [`Tx::savepoint`]. Each method is a thin call into the statement code of
//! its module (cached statements, no extra round trip), so a PostgreSQL store can offer the
//! same type later.

use super::bulk::{self, AgentMessage, ContactRecord, ConversationRecord, FtsBuilder, Installed};
use super::email::{ImportBatch, ReferencedThread};
use super::events::{self, EventKind, EventRefs};
use super::messages::NewMessage;
use super::{Result, Store, StoreError, claims, contacts, conversations, messages};
use crate::model::{
    Channel, ContactId, ConversationId, EventId, IdentityKind, MessageId, Millis, Priority, Status,
};
use rusqlite::{Connection, Savepoint, Transaction, TransactionBehavior};

/// A write transaction (IMMEDIATE), or a savepoint inside one. Dropped without
/// [`commit`](Tx::commit), it rolls back (a savepoint: back to where it began).
pub struct Tx<'c> {
    inner: Inner<'c>,
}

enum Inner<'c> {
    Top(Transaction<'c>),
    Savepoint(Savepoint<'c>),
}

impl Store {
    /// Begin a write transaction: always IMMEDIATE (see the module doc of `store`). Inside
    /// one already open ([`Store::in_one_transaction`]) it is a savepoint of it.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        if !self.conn.is_autocommit() {
            return Ok(Tx {
                inner: Inner::Savepoint(self.conn.savepoint()?),
            });
        }
        Ok(Tx {
            inner: Inner::Top(
                self.conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?,
            ),
        })
    }

    /// Run `f` inside ONE IMMEDIATE transaction: every write it makes through the store
    /// (`write`, the verbs) is a savepoint of it, and all commit together (one WAL commit for
    /// a whole pass of the rules instead of one per rule). An error rolls everything back.
    pub fn in_one_transaction<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if !self.conn.is_autocommit() {
            return f(self);
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(StoreError::from(e).into());
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Detach a demo load's index file, after its transaction committed or rolled back.
    pub(crate) fn detach_fts(&self, installed: Installed) -> Result<()> {
        installed.detach(&self.conn)
    }
}

impl<'c> Tx<'c> {
    /// The connection, for the statement code inside `store/` only.
    #[inline]
    pub(super) fn conn(&self) -> &Connection {
        match &self.inner {
            Inner::Top(t) => t,
            Inner::Savepoint(s) => s,
        }
    }

    pub fn commit(self) -> Result<()> {
        match self.inner {
            Inner::Top(t) => t.commit()?,
            Inner::Savepoint(s) => s.commit()?,
        }
        Ok(())
    }

    /// Undo everything done in this transaction (or since this savepoint began).
    pub fn rollback(self) -> Result<()> {
        match self.inner {
            Inner::Top(t) => t.rollback()?,
            // Its default drop behavior: ROLLBACK TO, then RELEASE, with the errors seen.
            Inner::Savepoint(s) => s.finish()?,
        }
        Ok(())
    }

    /// A nested transaction: its [`commit`](Tx::commit) keeps its work in this one, its
    /// [`rollback`](Tx::rollback) (or drop) undoes only what was done since it began.
    pub fn savepoint(&mut self) -> Result<Tx<'_>> {
        let sp = match &mut self.inner {
            Inner::Top(t) => t.savepoint()?,
            Inner::Savepoint(s) => s.savepoint()?,
        };
        Ok(Tx {
            inner: Inner::Savepoint(sp),
        })
    }

    // --- channel cursors ---

    /// Save a channel cursor, so it commits with the messages it delivered or not at all.
    #[inline]
    pub fn set_cursor(&self, channel: &str, account: &str, key: &str, value: &str) -> Result<()> {
        super::set_cursor(self.conn(), channel, account, key, value)
    }

    // --- ingest and threading ---

    /// The message a channel already delivered under this external id, and its conversation.
    #[inline]
    pub fn find_external(
        &self,
        channel: Channel,
        account: &str,
        external_id: &str,
    ) -> Result<Option<(MessageId, ConversationId)>> {
        messages::find_external(self.conn(), channel, account, external_id)
    }

    #[inline]
    pub(crate) fn insert_message(&self, m: &NewMessage<'_>) -> Result<MessageId> {
        messages::insert_message(self.conn(), m)
    }

    #[inline]
    pub fn create_conversation(
        &self,
        contact: ContactId,
        channel: Channel,
        subject: Option<&str>,
        team: Option<&str>,
        at: Millis,
        actor: &str,
    ) -> Result<ConversationId> {
        messages::create_conversation(self.conn(), contact, channel, subject, team, at, actor)
    }

    /// The contact's open (or pending, snoozed) conversation.
    #[inline]
    pub fn active_conversation(&self, contact: ContactId) -> Result<Option<ConversationId>> {
        contacts::active_conversation(self.conn(), contact)
    }

    /// The contact's most recently resolved conversation and when it was resolved.
    #[inline]
    pub fn last_resolved(&self, contact: ContactId) -> Result<Option<(ConversationId, Millis)>> {
        contacts::last_resolved(self.conn(), contact)
    }

    /// A customer's text that answers a pending CSAT survey (see
    /// [`super::csat::csat_text_answer`]): the conversation, score and comment.
    pub fn csat_text_answer(
        &self,
        contact: ContactId,
        channel: Channel,
        at: Millis,
        body: &str,
        button: Option<(ConversationId, u8)>,
    ) -> Result<Option<(ConversationId, u8, String)>> {
        super::csat::csat_text_answer(self.conn(), contact, channel, at, body, button)
    }

    /// Record a text answer to a survey (its message stored), with its `csat_answered` event.
    pub fn record_csat_text_answer(
        &self,
        conv: ConversationId,
        score: u8,
        comment: &str,
        channel: Channel,
        at: Millis,
        message: MessageId,
    ) -> Result<super::csat::CsatOutcome> {
        super::csat::record_text_answer(self.conn(), conv, score, comment, channel, at, message)
    }

    /// A survey button's answer from a sender identity (see [`super::csat::button_answer`]).
    #[allow(clippy::too_many_arguments)]
    pub fn record_csat_button(
        &self,
        conv: ConversationId,
        score: u8,
        comment: &str,
        channel: Channel,
        at: Millis,
        kind: IdentityKind,
        value: &str,
    ) -> Result<super::csat::CsatOutcome> {
        super::csat::button_answer(self.conn(), conv, score, comment, channel, at, kind, value)
    }

    /// Reopen a conversation that is not open (with its event); an open one is left alone.
    #[inline]
    pub fn reopen(&self, id: ConversationId, at: Millis, actor: &str) -> Result<()> {
        conversations::reopen(self.conn(), id, at, actor)
    }

    /// The contact wrote at `at` on `channel`.
    #[inline]
    pub fn touch_contact(&self, id: ContactId, at: Millis, channel: Channel) -> Result<()> {
        contacts::touch_contact(self.conn(), id, at, channel)
    }

    /// The identifier reached us from its owner: it is reachable again.
    #[inline]
    pub fn mark_reachable(&self, kind: IdentityKind, value: &str) -> Result<()> {
        contacts::mark_reachable(self.conn(), kind, value)
    }

    /// Append one event to the audit log.
    #[inline]
    pub fn append_event(
        &self,
        at: Millis,
        actor: &str,
        kind: EventKind,
        refs: EventRefs,
        data: Option<&serde_json::Value>,
    ) -> Result<EventId> {
        events::append(self.conn(), at, actor, kind, refs, data)
    }

    /// The conversation of the newest message of `account` whose Message-ID is one of `ids`.
    #[inline]
    pub fn find_referenced(&self, account: &str, ids: &[&str]) -> Result<Option<ReferencedThread>> {
        super::email::find_referenced(self.conn(), account, ids)
    }

    /// Move a just-ingested message to another conversation (email threading).
    #[inline]
    pub fn move_message(
        &self,
        message: MessageId,
        from: ConversationId,
        to: ConversationId,
        drop_empty_source: bool,
        at: Millis,
    ) -> Result<()> {
        super::email::move_message(self.conn(), message, from, to, drop_empty_source, at)
    }

    /// Start a batch of email imports (see [`ImportBatch`]); finish it with
    /// [`Tx::finish_import_batch`] before the commit.
    pub(crate) fn start_import_batch(&self) -> Result<ImportBatch> {
        ImportBatch::start(self.conn())
    }

    pub(crate) fn finish_import_batch(&self, batch: ImportBatch) -> Result<()> {
        batch.finish(self.conn())
    }

    // --- identity ---

    #[inline]
    pub fn find_identity(&self, kind: IdentityKind, value: &str) -> Result<Option<ContactId>> {
        contacts::find_identity(self.conn(), kind, value)
    }

    #[inline]
    pub fn create_contact(&self, name: &str, at: Millis) -> Result<ContactId> {
        contacts::create_contact(self.conn(), name, at)
    }

    /// Attach an identity to a contact. The caller has checked it is not someone else's.
    #[inline]
    pub fn insert_identity(
        &self,
        contact: ContactId,
        kind: IdentityKind,
        value: &str,
        source: &str,
        at: Millis,
    ) -> Result<()> {
        contacts::insert_identity(self.conn(), contact, kind, value, source, at)
    }

    /// Merge `absorbed` into `survivor` (identities, conversations, messages), with its event.
    #[inline]
    pub fn merge_contacts(
        &self,
        survivor: ContactId,
        absorbed: ContactId,
        reason: &str,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        contacts::merge_contacts(self.conn(), survivor, absorbed, reason, actor, at).map(|_| ())
    }

    /// Replace a made-up contact name (an address, "Visitor ...") with a real one.
    #[inline]
    pub fn improve_name(&self, id: ContactId, name: &str) -> Result<()> {
        contacts::improve_name(self.conn(), id, name)
    }

    /// Record an identifier the customer claimed but no channel vouched for (see
    /// [`claims`]). True when it is new.
    pub fn record_claim(
        &self,
        contact: ContactId,
        kind: IdentityKind,
        value: &str,
        source: &str,
        at: Millis,
    ) -> Result<bool> {
        claims::record(self.conn(), contact, kind, value, source, at)
    }

    // --- bulk loads (the demo generator), see `store::bulk` ---

    #[inline]
    pub(crate) fn bulk_agent_message(&self, m: &AgentMessage<'_>) -> Result<MessageId> {
        bulk::agent_message(self.conn(), m)
    }

    #[inline]
    pub(crate) fn bulk_set_status(
        &self,
        conv: ConversationId,
        contact: ContactId,
        status: Status,
        snoozed_until: Option<Millis>,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        bulk::set_status(self.conn(), conv, contact, status, snoozed_until, actor, at)
    }

    #[inline]
    pub(crate) fn bulk_assign(
        &self,
        conv: ConversationId,
        contact: ContactId,
        assignee: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        bulk::assign(self.conn(), conv, contact, assignee, actor, at)
    }

    #[inline]
    pub(crate) fn bulk_set_priority(
        &self,
        conv: ConversationId,
        contact: ContactId,
        priority: Priority,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        bulk::set_priority(self.conn(), conv, contact, priority, actor, at)
    }

    #[inline]
    pub(crate) fn bulk_add_tag(
        &self,
        conv: ConversationId,
        contact: ContactId,
        tag: &str,
        actor: &str,
        at: Millis,
    ) -> Result<bool> {
        bulk::add_tag(self.conn(), conv, contact, tag, actor, at)
    }

    #[inline]
    pub(crate) fn bulk_set_vip(
        &self,
        contact: ContactId,
        vip: bool,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        bulk::set_vip(self.conn(), contact, vip, actor, at)
    }

    /// The ids the next contact and conversation will get.
    pub(crate) fn bulk_next_ids(&self) -> Result<(ContactId, ConversationId)> {
        bulk::next_ids(self.conn())
    }

    #[inline]
    pub(crate) fn bulk_insert_contact(&self, c: &ContactRecord) -> Result<()> {
        bulk::insert_contact(self.conn(), c)
    }

    #[inline]
    pub(crate) fn bulk_insert_conversation(&self, c: &ConversationRecord) -> Result<()> {
        bulk::insert_conversation(self.conn(), c)
    }

    #[inline]
    pub(crate) fn bulk_insert_message(&self, m: &NewMessage<'_>) -> Result<MessageId> {
        bulk::insert_message_row(self.conn(), m)
    }

    #[inline]
    pub(crate) fn bulk_insert_tag(&self, conv: ConversationId, tag: &str) -> Result<bool> {
        bulk::insert_tag(self.conn(), conv, tag)
    }

    /// The one `imported` event of a history load.
    pub(crate) fn bulk_imported(
        &self,
        at: Millis,
        actor: &str,
        data: &serde_json::Value,
    ) -> Result<()> {
        bulk::imported(self.conn(), at, actor, data)
    }

    pub(crate) fn count_conversations(&self) -> Result<usize> {
        bulk::count_conversations(self.conn())
    }

    pub(crate) fn suspend_fts(&self) -> Result<bulk::SuspendedFts> {
        bulk::suspend_fts(self.conn())
    }

    pub(crate) fn resume_fts(&self, suspended: bulk::SuspendedFts, messages: bool) -> Result<()> {
        bulk::resume_fts(self.conn(), suspended, messages)
    }

    /// Start building the message index on another thread (see [`FtsBuilder`]).
    pub(crate) fn start_fts_builder(&self) -> Result<FtsBuilder> {
        FtsBuilder::start(self.conn())
    }

    /// Install the built index in this transaction; [`Store::detach_fts`] after the commit.
    pub(crate) fn install_fts(&self, built: FtsBuilder) -> Result<Installed> {
        built.install(self.conn())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cursor(store: &Store) -> Option<String> {
        store.cursor("test", "", "k").unwrap()
    }

    #[test]
    fn a_savepoint_undoes_only_its_own_work_and_commits_into_the_transaction() {
        let mut store = Store::open_in_memory().unwrap();
        let mut tx = store.write().unwrap();
        tx.set_cursor("test", "", "k", "1").unwrap();
        let sp = tx.savepoint().unwrap();
        sp.set_cursor("test", "", "k", "2").unwrap();
        sp.rollback().unwrap();
        // Dropped unfinished: undone too.
        {
            let sp = tx.savepoint().unwrap();
            sp.set_cursor("test", "", "k", "3").unwrap();
        }
        let sp = tx.savepoint().unwrap();
        sp.set_cursor("test", "", "other", "x").unwrap();
        sp.commit().unwrap();
        tx.commit().unwrap();
        assert_eq!(cursor(&store).as_deref(), Some("1"));
        assert_eq!(
            store.cursor("test", "", "other").unwrap().as_deref(),
            Some("x")
        );
    }

    #[test]
    fn a_nested_savepoint_and_a_dropped_transaction() {
        let mut store = Store::open_in_memory().unwrap();
        {
            let mut tx = store.write().unwrap();
            let mut outer = tx.savepoint().unwrap();
            outer.set_cursor("test", "", "k", "outer").unwrap();
            let inner = outer.savepoint().unwrap();
            inner.set_cursor("test", "", "k", "inner").unwrap();
            inner.rollback().unwrap();
            outer.commit().unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(cursor(&store).as_deref(), Some("outer"));
        {
            let tx = store.write().unwrap();
            tx.set_cursor("test", "", "k", "lost").unwrap();
            tx.rollback().unwrap();
        }
        {
            let tx = store.write().unwrap();
            tx.set_cursor("test", "", "k", "lost too").unwrap();
        }
        assert_eq!(cursor(&store).as_deref(), Some("outer"));
    }
}
