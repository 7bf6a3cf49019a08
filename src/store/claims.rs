//! Identifiers a customer claimed but nobody verified: an email typed into the web chat widget.
//!
//! A claim is not an identity: it never merges two contacts, replies never go to it, and
//! nothing looks a contact up by it. The profile shows it ("claims to be ann@x.org
//! (unverified)") until an agent links it (`:claim link`: the address joins the contact, or the
//! contact joins the one that owns the address) or dismisses it (`:claim dismiss`); both are
//! audited in the events table.

use super::contacts::{find_identity, insert_identity, live_contact, merge_contacts};
use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError};
use crate::model::{ContactId, IdentityKind, Millis};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRow {
    pub kind: IdentityKind,
    /// Normalized, like an identity's value.
    pub value: String,
    /// Where it was claimed ("web chat").
    pub source: String,
    pub created_at: Millis,
}

/// Record that `contact` claims `value` (normalized), inside the caller's transaction. Nothing
/// is recorded when the contact already has it as an identity or claims it already. True: a
/// new claim.
pub(crate) fn record(
    conn: &Connection,
    contact: ContactId,
    kind: IdentityKind,
    value: &str,
    source: &str,
    at: Millis,
) -> Result<bool> {
    if find_identity(conn, kind, value)? == Some(contact) {
        return Ok(false);
    }
    let n = conn
        .prepare_cached(
            "INSERT INTO identity_claims(contact_id, kind, value, source, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(contact_id, kind, value) DO NOTHING",
        )?
        .execute((contact, kind, value, source, at))?;
    if n > 0 {
        events::append(
            conn,
            at,
            "ingest",
            EventKind::ContactUpdated,
            EventRefs {
                contact: Some(contact),
                ..Default::default()
            },
            Some(
                &serde_json::json!({ "claim": { "kind": kind, "value": value, "source": source } }),
            ),
        )?;
    }
    Ok(n > 0)
}

/// The open claims of a contact (those not since made identities of it), oldest first.
pub(crate) fn of_contact(conn: &Connection, contact: ContactId) -> Result<Vec<ClaimRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.kind, c.value, c.source, c.created_at FROM identity_claims c
         WHERE c.contact_id = ?1
           AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.contact_id = c.contact_id
                           AND i.kind = c.kind AND i.value = c.value)
         ORDER BY c.created_at, c.id",
    )?;
    let rows = stmt.query_map([contact], |r| {
        Ok(ClaimRow {
            kind: r.get(0)?,
            value: r.get(1)?,
            source: r.get(2)?,
            created_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Claims move with a merge (the survivor now claims what the absorbed contact claimed).
pub(crate) fn move_claims(
    conn: &Connection,
    survivor: ContactId,
    absorbed: ContactId,
) -> Result<()> {
    conn.execute(
        "UPDATE OR IGNORE identity_claims SET contact_id = ?1 WHERE contact_id = ?2",
        (survivor, absorbed),
    )?;
    conn.execute(
        "DELETE FROM identity_claims WHERE contact_id = ?1",
        [absorbed],
    )?;
    Ok(())
}

fn forget(conn: &Connection, contact: ContactId, claim: &ClaimRow) -> Result<()> {
    conn.execute(
        "DELETE FROM identity_claims WHERE contact_id = ?1 AND kind = ?2 AND value = ?3",
        (contact, claim.kind, &claim.value),
    )?;
    Ok(())
}

/// The claim an agent means: `value` if given (any case), else the only one.
fn pick(
    conn: &Connection,
    contact: ContactId,
    value: Option<&str>,
    verb: &str,
) -> Result<ClaimRow> {
    let claims = of_contact(conn, contact)?;
    let listed = || {
        claims
            .iter()
            .map(|c| crate::sanitize::line(&c.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => claims
            .iter()
            .find(|c| c.value.eq_ignore_ascii_case(v))
            .cloned()
            .ok_or_else(|| {
                if claims.is_empty() {
                    StoreError::Invalid(
                        "this contact claims no identity: nothing to link or dismiss".into(),
                    )
                } else {
                    StoreError::Invalid(format!(
                        "the contact does not claim '{}'; it claims {} (:claim {verb} ADDRESS)",
                        crate::sanitize::line(v),
                        listed()
                    ))
                }
            }),
        None => match claims.as_slice() {
            [] => Err(StoreError::Invalid(
                "this contact claims no identity: nothing to link or dismiss".into(),
            )),
            [one] => Ok(one.clone()),
            _ => Err(StoreError::Invalid(format!(
                "the contact claims several identities ({}); say which: :claim {verb} ADDRESS",
                listed()
            ))),
        },
    }
}

impl Store {
    /// The open claims of a contact.
    pub fn claims(&self, contact: ContactId) -> Result<Vec<ClaimRow>> {
        super::scope::check_contact(self.conn(), contact, self.scoped())?;
        of_contact(self.conn(), contact)
    }

    /// An agent confirms a claim (`:claim link`): the address becomes an identity of the
    /// contact, or, when another contact owns it, the contact is merged into that one (the
    /// claimed identity's owner survives). Audited as `identity_linked` with the agent's name.
    /// Returns the contact the person is now, and the claim.
    pub fn link_claim(
        &mut self,
        contact: ContactId,
        value: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<(ContactId, ClaimRow)> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = live_contact(tx, contact)?;
            super::scope::check_contact(tx, contact, scoped)?;
            let claim = pick(tx, contact, value, "link")?;
            forget(tx, contact, &claim)?;
            let person = match find_identity(tx, claim.kind, &claim.value)? {
                Some(owner) if owner != contact => {
                    if scoped
                        && super::scope::check_contact(tx, live_contact(tx, owner)?, true).is_err()
                    {
                        return Err(super::contacts::outside_scope_merge());
                    }
                    merge_contacts(
                        tx,
                        owner,
                        contact,
                        &format!(
                            "{} {} claimed on {} and linked by {actor}",
                            claim.kind, claim.value, claim.source
                        ),
                        actor,
                        at,
                    )?;
                    owner
                }
                Some(_) => contact,
                None => {
                    insert_identity(
                        tx,
                        contact,
                        claim.kind,
                        &claim.value,
                        &format!("{} claim, linked by {actor}", claim.source),
                        at,
                    )?;
                    contact
                }
            };
            events::append(
                tx,
                at,
                actor,
                EventKind::IdentityLinked,
                EventRefs {
                    contact: Some(person),
                    ..Default::default()
                },
                Some(&serde_json::json!({
                    "kind": claim.kind, "value": claim.value, "claim": "linked",
                    "claimed_by": contact, "source": claim.source,
                })),
            )?;
            Ok((person, claim))
        })
    }

    /// An agent rejects a claim (`:claim dismiss`); audited as `contact_updated`.
    pub fn dismiss_claim(
        &mut self,
        contact: ContactId,
        value: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<ClaimRow> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = live_contact(tx, contact)?;
            super::scope::check_contact(tx, contact, scoped)?;
            let claim = pick(tx, contact, value, "dismiss")?;
            forget(tx, contact, &claim)?;
            events::append(
                tx,
                at,
                actor,
                EventKind::ContactUpdated,
                EventRefs {
                    contact: Some(contact),
                    ..Default::default()
                },
                Some(&serde_json::json!({
                    "claim_dismissed": { "kind": claim.kind, "value": claim.value },
                })),
            )?;
            Ok(claim)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::schema;

    fn contact(store: &mut Store, kind: IdentityKind, value: &str) -> ContactId {
        store
            .write_with(|tx| {
                let c = super::super::contacts::create_contact(tx, value, 1)?;
                insert_identity(tx, c, kind, value, "test", 1)?;
                Ok(c)
            })
            .unwrap()
    }

    #[test]
    fn a_claim_is_shown_linked_or_dismissed_and_audited() {
        let mut store = Store::open_in_memory().unwrap();
        let olivia = contact(&mut store, IdentityKind::Email, "olivia@x.com");
        let visitor = contact(&mut store, IdentityKind::WebChat, "w1");
        store
            .write_with(|tx| {
                assert!(record(
                    tx,
                    visitor,
                    IdentityKind::Email,
                    "olivia@x.com",
                    "web chat",
                    5
                )?);
                assert!(!record(
                    tx,
                    visitor,
                    IdentityKind::Email,
                    "olivia@x.com",
                    "web chat",
                    6
                )?);
                assert!(record(
                    tx,
                    visitor,
                    IdentityKind::Email,
                    "o2@x.com",
                    "web chat",
                    7
                )?);
                // Its own identity is no claim.
                assert!(!record(
                    tx,
                    olivia,
                    IdentityKind::Email,
                    "olivia@x.com",
                    "web chat",
                    7
                )?);
                Ok(())
            })
            .unwrap();
        assert_eq!(store.profile(visitor).unwrap().claims.len(), 2);
        assert_eq!(store.find_identity_owner("olivia@x.com"), Some(olivia));
        // Two claims: which one must be said.
        let e = store.link_claim(visitor, None, "bob", 9).unwrap_err();
        assert!(e.to_string().contains("say which"), "{e}");
        let e = store
            .link_claim(visitor, Some("nobody@x.com"), "bob", 9)
            .unwrap_err();
        assert!(e.to_string().contains("olivia@x.com, o2@x.com"), "{e}");
        let gone = store
            .dismiss_claim(visitor, Some("O2@x.com"), "bob", 9)
            .unwrap();
        assert_eq!(gone.value, "o2@x.com");
        let (person, claim) = store.link_claim(visitor, None, "bob", 10).unwrap();
        assert_eq!((person, claim.value.as_str()), (olivia, "olivia@x.com"));
        // The visitor joined Olivia; nothing is claimed any more.
        assert_eq!(store.find_webchat_owner("w1"), Some(olivia));
        assert!(store.claims(olivia).unwrap().is_empty());
        let events = store.events_since(crate::model::EventId(0), 100).unwrap();
        let by_bob: Vec<_> = events
            .iter()
            .filter(|e| e.actor == "bob")
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(
            by_bob,
            vec!["contact_updated", "contacts_merged", "identity_linked"]
        );
        let e = store.dismiss_claim(olivia, None, "bob", 11).unwrap_err();
        assert!(e.to_string().contains("claims no identity"), "{e}");
    }

    #[test]
    fn linking_an_unknown_address_attaches_it() {
        let mut store = Store::open_in_memory().unwrap();
        let visitor = contact(&mut store, IdentityKind::WebChat, "w1");
        store
            .write_with(|tx| record(tx, visitor, IdentityKind::Email, "new@x.com", "web chat", 5))
            .unwrap();
        let (person, _) = store.link_claim(visitor, None, "bob", 9).unwrap();
        assert_eq!(person, visitor);
        assert_eq!(store.find_identity_owner("new@x.com"), Some(visitor));
        assert!(store.claims(visitor).unwrap().is_empty());
    }

    impl Store {
        fn find_identity_owner(&self, email: &str) -> Option<ContactId> {
            self.contact_by_identity(IdentityKind::Email, email)
                .unwrap()
        }
        fn find_webchat_owner(&self, id: &str) -> Option<ContactId> {
            self.contact_by_identity(IdentityKind::WebChat, id).unwrap()
        }
    }

    #[test]
    fn a_v5_file_is_upgraded_and_typed_emails_become_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.sqlite3");
        {
            let c = Connection::open(&path).unwrap();
            c.create_scalar_function("braid_sender_index", 1, Default::default(), |ctx| {
                ctx.get::<String>(0)
            })
            .unwrap();
            for m in &schema::MIGRATIONS[..5] {
                c.execute_batch(m).unwrap();
            }
            c.pragma_update(None, "user_version", 5).unwrap();
            // Contact 1: a visitor who typed an email (and never wrote by email): a claim now.
            // Contact 2: a customer who typed their email in the chat and also wrote from it.
            c.execute_batch(
                "INSERT INTO contacts(id, name, created_at, last_seen) VALUES (1, 'v', 1, 1), (2, 'Ann', 1, 1);
                 INSERT INTO identities(contact_id, kind, value, source, created_at) VALUES
                    (1, 'webchat', 'w1', 'web chat', 1),
                    (1, 'email', 'zoe@x.com', 'web chat (given by the customer)', 2),
                    (2, 'webchat', 'w2', 'web chat', 1),
                    (2, 'email', 'ann@x.com', 'web chat (given by the customer)', 2);
                 INSERT INTO conversations(id, contact_id, last_channel, last_activity, created_at)
                    VALUES (1, 2, 'email', 1, 1);
                 INSERT INTO messages(conversation_id, contact_id, channel, direction, author, body,
                        created_at, stored_at) VALUES (1, 2, 'email', 'in', 'Ann', 'hi', 1, 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        assert_eq!(store.find_identity_owner("zoe@x.com"), None);
        assert_eq!(
            store
                .claims(ContactId(1))
                .unwrap()
                .iter()
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>(),
            vec!["zoe@x.com"]
        );
        assert_eq!(store.find_identity_owner("ann@x.com"), Some(ContactId(2)));
        assert!(store.claims(ContactId(2)).unwrap().is_empty());
        drop(store);
        // Opening again changes nothing.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.claims(ContactId(1)).unwrap().len(), 1);
    }
}
