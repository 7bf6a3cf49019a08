//! Contacts and their identities. Normalizing values is identity.rs's job; this file stores and
//! looks them up, and merges two contacts when an identity proves they are one person.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, scope};
use crate::model::{Channel, ContactId, ConversationId, IdentityKind, Millis, Status};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRow {
    pub id: ContactId,
    pub name: String,
    pub vip: bool,
    pub created_at: Millis,
    pub last_seen: Millis,
    pub last_channel: Option<Channel>,
    /// The lifecycle stage (None: none yet; see [`crate::fields`]).
    #[serde(default)]
    pub stage: Option<String>,
    /// The lead score rules and agents adjust.
    #[serde(default)]
    pub lead_score: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityRow {
    pub kind: IdentityKind,
    pub value: String,
    /// How we learned it: "email from", "webchat visitor", "telegram contact card", "agent bob"...
    pub source: String,
    pub created_at: Millis,
    /// Why replies cannot reach the customer here ("the customer blocked the bot"), if so.
    pub unreachable: Option<String>,
}

/// Everything the profile pane shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactProfile {
    pub contact: ContactRow,
    /// Grouped by kind (sorted by kind, then first seen).
    pub identities: Vec<IdentityRow>,
    /// Tags of every conversation of the contact.
    pub tags: Vec<String>,
    pub conversation_count: i64,
    pub message_count: i64,
    pub first_seen: Millis,
    pub channels: Vec<Channel>,
    /// Identifiers the customer claimed that nobody verified (shown "(unverified)").
    pub claims: Vec<super::claims::ClaimRow>,
    /// Channels the customer opted out of (an SMS STOP): (channel, identifier, keyword, when).
    #[serde(default)]
    pub opted_out: Vec<(Channel, String, String, Millis)>,
    /// The contact's open tasks, soonest due first (the first few).
    #[serde(default)]
    pub open_tasks: Vec<super::tasks::TaskRow>,
    /// The contact's latest answered satisfaction surveys, newest first (the first few).
    #[serde(default)]
    pub csat: Vec<super::csat::CsatRow>,
    /// The contact's consent: marketing / everything opted out, and the history.
    #[serde(default)]
    pub consent: super::consent::ContactConsent,
    /// The custom fields: every configured one (value None: unset), then stored values of
    /// fields no longer configured.
    #[serde(default)]
    pub fields: Vec<super::fields::ProfileField>,
    /// Whether the stage is one the config still lists (false: shown "(not in config)").
    #[serde(default = "yes")]
    pub stage_configured: bool,
}

fn yes() -> bool {
    true
}

/// The most survey answers a profile carries.
const PROFILE_CSAT: usize = 5;

/// The most open tasks a profile carries.
const PROFILE_TASKS: usize = 5;

const CONTACT_COLUMNS: &str =
    "id, name, vip, created_at, last_seen, last_channel, stage, lead_score";

fn contact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        id: r.get(0)?,
        name: r.get(1)?,
        vip: r.get(2)?,
        created_at: r.get(3)?,
        last_seen: r.get(4)?,
        last_channel: r.get(5)?,
        stage: r.get(6)?,
        lead_score: r.get(7)?,
    })
}

/// One side of a merge an added identity would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeSide {
    pub contact: ContactId,
    pub name: String,
    pub conversations: i64,
}

/// The two contacts an added identity would merge (see [`Store::identity_merge_preview`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergePreview {
    /// The contact the identity is added to.
    pub this: MergeSide,
    /// The contact that has the identity now.
    pub other: MergeSide,
}

/// The contact an identity belongs to.
pub(crate) fn find_identity(
    conn: &Connection,
    kind: IdentityKind,
    value: &str,
) -> Result<Option<ContactId>> {
    Ok(conn
        .prepare_cached("SELECT contact_id FROM identities WHERE kind = ?1 AND value = ?2")?
        .query_row((kind, value), |r| r.get(0))
        .optional()?)
}

pub(crate) fn create_contact(conn: &Connection, name: &str, at: Millis) -> Result<ContactId> {
    conn.prepare_cached("INSERT INTO contacts(name, created_at, last_seen) VALUES (?1, ?2, ?2)")?
        .execute((name, at))?;
    Ok(ContactId(conn.last_insert_rowid()))
}

/// Attach an identity to a contact. The caller has checked it is not someone else's.
pub(crate) fn insert_identity(
    conn: &Connection,
    contact: ContactId,
    kind: IdentityKind,
    value: &str,
    source: &str,
    at: Millis,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO identities(contact_id, kind, value, source, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((contact, kind, value, source, at))?;
    Ok(())
}

/// The contact `id` is now: itself, or the survivor of the merges that absorbed it.
pub(crate) fn live_contact(conn: &Connection, id: ContactId) -> Result<ContactId> {
    let mut at = id;
    // A merge chain is short; the bound only guards against a corrupt cycle.
    for _ in 0..64 {
        let merged: Option<Option<ContactId>> = conn
            .prepare_cached("SELECT merged_into FROM contacts WHERE id = ?1")?
            .query_row([at], |r| r.get(0))
            .optional()?;
        match merged {
            None => return Err(StoreError::NoContact(id.0)),
            Some(None) => return Ok(at),
            Some(Some(next)) => at = next,
        }
    }
    Err(StoreError::Invalid(format!(
        "contact #{id}: merge chain too long"
    )))
}

pub(crate) fn contact_name(conn: &Connection, id: ContactId) -> Result<String> {
    conn.prepare_cached("SELECT name FROM contacts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NoContact(id.0))
}

/// Give a contact a better name when all we had was an address or a visitor id.
pub(crate) fn improve_name(conn: &Connection, id: ContactId, name: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE contacts SET name = ?2 WHERE id = ?1 AND name <> ?2
           AND (name = '' OR name LIKE '%@%' OR name LIKE 'Visitor %' OR name LIKE '+%'
                OR name LIKE 'Telegram user %')",
    )?
    .execute((id, name))?;
    Ok(())
}

/// A name made up from an identifier (see `identity::fallback_name`): the names
/// [`improve_name`] may replace.
pub(crate) fn is_placeholder_name(name: &str) -> bool {
    name.is_empty()
        || name.contains('@')
        || name.starts_with('+')
        || name.starts_with("Visitor ")
        || name.starts_with("Telegram user ")
}

pub(crate) fn touch_contact(
    conn: &Connection,
    id: ContactId,
    at: Millis,
    channel: Channel,
) -> Result<()> {
    // A contact nobody has heard from yet (last_channel NULL) carries its creation time in
    // last_seen, which is the ingest time, not a message time: the first inbound message sets
    // both columns, whatever its timestamp.
    conn.prepare_cached(
        "UPDATE contacts SET
            last_seen = CASE WHEN last_channel IS NULL THEN ?2 ELSE max(last_seen, ?2) END,
            last_channel = CASE WHEN last_channel IS NULL OR ?2 >= last_seen THEN ?3
                                ELSE last_channel END
         WHERE id = ?1",
    )?
    .execute((id, at, channel))?;
    Ok(())
}

pub(crate) use super::merges::merge_contacts;

impl Store {
    /// One contact (none of its conversations in the scope: [`StoreError::NoContact`]).
    pub fn contact(&self, id: ContactId) -> Result<ContactRow> {
        scope::check_contact(self.conn(), id, self.scoped())?;
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1");
        self.conn()
            .prepare_cached(&sql)?
            .query_row([id], contact_row)
            .optional()?
            .ok_or(StoreError::NoContact(id.0))
    }

    /// A page of contacts by id (keyset: ids greater than `after`), merged ones left out, and
    /// for a restricted scope those with no conversation in it.
    pub fn contacts_page(&self, after: Option<ContactId>, limit: usize) -> Result<Vec<ContactRow>> {
        let scope = if self.scoped() {
            format!(
                " AND EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = contacts.id{})",
                scope::AND_COND
            )
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id > ?1 AND merged_into IS NULL{scope}
             ORDER BY id LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map((after.map(|c| c.0).unwrap_or(0), limit as i64), contact_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn identities(&self, id: ContactId) -> Result<Vec<IdentityRow>> {
        scope::check_contact(self.conn(), id, self.scoped())?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT kind, value, source, created_at, unreachable FROM identities
             WHERE contact_id = ?1 ORDER BY kind, created_at, id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(IdentityRow {
                kind: r.get(0)?,
                value: r.get(1)?,
                source: r.get(2)?,
                created_at: r.get(3)?,
                unreachable: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The contact an identity (already normalized) belongs to.
    pub fn contact_by_identity(
        &self,
        kind: IdentityKind,
        value: &str,
    ) -> Result<Option<ContactId>> {
        let found = find_identity(self.conn(), kind, value)?;
        match found {
            Some(c) if self.scoped() => {
                Ok(scope::check_contact(self.conn(), c, true).ok().map(|()| c))
            }
            other => Ok(other),
        }
    }

    pub fn profile(&self, id: ContactId) -> Result<ContactProfile> {
        let contact = self.contact(id)?;
        let identities = self.identities(id)?;
        let conn = self.conn();
        // A restricted scope counts what it sees: the conversations in it and their messages.
        let scope = self.scope_and();
        let tags: Vec<String> = {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT DISTINCT t.tag FROM tags t JOIN conversations c ON c.id = t.conversation_id
                 WHERE c.contact_id = ?1{scope} ORDER BY t.tag"
            ))?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let (conversation_count, channels): (i64, Vec<Channel>) = {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT c.channels FROM conversations c WHERE c.contact_id = ?1{scope}"
            ))?;
            let sets = stmt.query_map([id], |r| r.get::<_, String>(0))?;
            let mut n = 0;
            let mut all = Vec::new();
            for set in sets {
                n += 1;
                for ch in super::conversations::parse_channels(&set?) {
                    if !all.contains(&ch) {
                        all.push(ch);
                    }
                }
            }
            all.sort();
            (n, all)
        };
        let (message_count, first_msg): (i64, Option<Millis>) = if self.scoped() {
            conn.prepare_cached(&format!(
                "SELECT count(*), min(m.created_at) FROM messages m
                 JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.contact_id = ?1{scope}"
            ))?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        } else {
            conn.prepare_cached(
                "SELECT count(*), min(created_at) FROM messages WHERE contact_id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        };
        let fields = super::fields::profile_fields(conn, &self.fields, id)?;
        let stage_configured = contact
            .stage
            .as_ref()
            .is_none_or(|s| self.fields.stages.contains(s));
        Ok(ContactProfile {
            fields,
            stage_configured,
            first_seen: first_msg
                .unwrap_or(contact.created_at)
                .min(contact.created_at),
            contact,
            identities,
            tags,
            conversation_count,
            message_count,
            channels,
            claims: super::claims::of_contact(conn, id)?,
            opted_out: super::hooks::opted_out(conn, id)?,
            consent: super::consent::contact_consent(conn, id)?,
            csat: super::csat::of_contact(conn, id, PROFILE_CSAT)?,
            open_tasks: self
                .tasks_page(
                    &super::tasks::TaskWindow::Contact(id),
                    super::tasks::TaskAt::Top,
                    PROFILE_TASKS,
                )?
                .0,
        })
    }

    /// What adding this identity to `contact` would merge: None when nobody else has it; else
    /// both contacts (the one on screen first) with their names and conversation counts, so
    /// the agent can be asked before two people become one.
    pub fn identity_merge_preview(
        &self,
        contact: ContactId,
        kind: IdentityKind,
        normalized: &str,
    ) -> Result<Option<MergePreview>> {
        let conn = self.conn();
        let contact = live_contact(conn, contact)?;
        scope::check_contact(conn, contact, self.scoped())?;
        let Some(owner) = find_identity(conn, kind, normalized)? else {
            return Ok(None);
        };
        let owner = live_contact(conn, owner)?;
        if owner == contact {
            return Ok(None);
        }
        if self.scoped() && scope::check_contact(conn, owner, true).is_err() {
            return Err(outside_scope_merge());
        }
        let side = |id: ContactId| -> Result<MergeSide> {
            let (name, conversations) = conn
                .prepare_cached(
                    "SELECT name, (SELECT count(*) FROM conversations WHERE contact_id = ?1)
                     FROM contacts WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(MergeSide {
                contact: id,
                name,
                conversations,
            })
        };
        Ok(Some(MergePreview {
            this: side(contact)?,
            other: side(owner)?,
        }))
    }

    /// Add an identity to a contact by hand (`:identity add phone +44...`). If the identity already
    /// belongs to another contact, the two are merged: the agent has just told us they are one.
    pub fn add_identity(
        &mut self,
        contact: ContactId,
        kind: IdentityKind,
        normalized: &str,
        actor: &str,
        at: Millis,
    ) -> Result<ContactId> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            // The contact on the agent's screen may have been merged meanwhile (by another
            // process): the identity goes to the person, not to the absorbed row.
            let contact = live_contact(tx, contact)?;
            scope::check_contact(tx, contact, scoped)?;
            match find_identity(tx, kind, normalized)? {
                Some(owner) if owner == contact => {}
                Some(owner) => {
                    // A merge moves the other contact's conversations: it must be in scope too.
                    if scoped && scope::check_contact(tx, live_contact(tx, owner)?, true).is_err() {
                        return Err(outside_scope_merge());
                    }
                    merge_contacts(
                        tx,
                        contact,
                        owner,
                        &format!("{kind} {normalized} added by {actor}"),
                        actor,
                        at,
                    )?;
                }
                None => {
                    insert_identity(
                        tx,
                        contact,
                        kind,
                        normalized,
                        &format!("added by {actor}"),
                        at,
                    )?;
                    events::append(
                        tx,
                        at,
                        actor,
                        EventKind::IdentityLinked,
                        EventRefs {
                            contact: Some(contact),
                            ..Default::default()
                        },
                        Some(&serde_json::json!({ "kind": kind, "value": normalized })),
                    )?;
                }
            }
            Ok(contact)
        })
    }

    /// Mark or unmark a contact as VIP.
    pub fn set_vip(
        &mut self,
        contact: ContactId,
        vip: bool,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = live_contact(tx, contact)?;
            scope::check_contact(tx, contact, scoped)?;
            tx.execute("UPDATE contacts SET vip = ?2 WHERE id = ?1", (contact, vip))?;
            events::append(
                tx,
                at,
                actor,
                EventKind::ContactUpdated,
                EventRefs {
                    contact: Some(contact),
                    ..Default::default()
                },
                Some(&serde_json::json!({ "vip": vip })),
            )?;
            Ok(())
        })
    }

    /// The contact's active conversation, if any.
    pub fn active_conversation(&self, contact: ContactId) -> Result<Option<ConversationId>> {
        let found = active_conversation(self.conn(), contact)?;
        match found {
            Some(c) if self.scoped() => Ok(scope::conversation_contact(self.conn(), c, true)
                .ok()
                .map(|_| c)),
            other => Ok(other),
        }
    }
}

/// Adding the identity would merge a contact the agent's teams do not see.
pub(crate) fn outside_scope_merge() -> StoreError {
    StoreError::Invalid(
        "this identity belongs to a contact outside your teams; ask a supervisor to link them"
            .into(),
    )
}

pub(crate) fn active_conversation(
    conn: &Connection,
    contact: ContactId,
) -> Result<Option<ConversationId>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM conversations WHERE contact_id = ?1 AND status <> 'resolved'
             ORDER BY last_activity DESC LIMIT 1",
        )?
        .query_row([contact], |r| r.get(0))
        .optional()?)
}

/// The most recently resolved conversation of a contact and when it was resolved.
pub(crate) fn last_resolved(
    conn: &Connection,
    contact: ContactId,
) -> Result<Option<(ConversationId, Millis)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, coalesce(resolved_at, last_activity) FROM conversations
             WHERE contact_id = ?1 AND status = ?2 ORDER BY resolved_at DESC LIMIT 1",
        )?
        .query_row((contact, Status::Resolved), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

impl Store {
    /// Replies on `kind` cannot reach this identity (`reason`); shown in the profile, and
    /// replies default to another channel until the customer writes here again.
    pub fn mark_unreachable(
        &mut self,
        kind: IdentityKind,
        value: &str,
        reason: &str,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            let Some(contact) = find_identity(tx, kind, value)? else {
                return Ok(());
            };
            let n = tx
                .prepare_cached(
                    "UPDATE identities SET unreachable = ?3 WHERE kind = ?1 AND value = ?2
                       AND unreachable IS NOT ?3",
                )?
                .execute((kind, value, reason))?;
            if n > 0 {
                super::events::append(
                    tx,
                    at,
                    actor,
                    super::events::EventKind::ContactUpdated,
                    super::events::EventRefs {
                        conversation: None,
                        contact: Some(contact),
                        message: None,
                    },
                    Some(&serde_json::json!({ "unreachable": { "kind": kind, "value": value, "reason": reason } })),
                )?;
            }
            // A customer who blocked the Telegram bot said no: no marketing on any channel
            // (replies elsewhere still go).
            if kind == IdentityKind::Telegram {
                super::consent::record(
                    tx,
                    &super::consent::Change {
                        contact,
                        purpose: crate::model::Purpose::Marketing,
                        opted_out: true,
                        channel: Some(crate::model::Channel::Telegram),
                        identity: Some((kind, value)),
                        source: crate::model::ConsentSource::Block,
                        detail: reason,
                    },
                    actor,
                    at,
                )?;
            }
            Ok(())
        })
    }
}

/// The customer wrote from this identity: it is reachable again.
pub(crate) fn mark_reachable(conn: &Connection, kind: IdentityKind, value: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE identities SET unreachable = NULL WHERE kind = ?1 AND value = ?2
           AND unreachable IS NOT NULL",
    )?
    .execute((kind, value))?;
    Ok(())
}
