//! Custom contact fields, the lifecycle stage and the lead score (see [`crate::fields`] for the
//! definitions and validation). Every write is validated against the definitions the caller
//! passes and audited as a `contact_updated` event with `field`, `old` and `new` (the actor is
//! who); a write that changes nothing appends nothing.

use super::contacts::live_contact;
use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError, scope};
use crate::fields::{FieldDef, FieldsConfig, ScoreChange};
use crate::model::{ContactId, Millis};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// One stored value of a contact's field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldValue {
    pub name: String,
    pub value: String,
    pub updated_at: Millis,
    pub updated_by: String,
}

/// A field as the profile shows it: every configured field (in config order, `value` None when
/// unset), then values of fields no longer in the config (`configured` false: shown "(not in
/// config)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileField {
    pub name: String,
    pub label: String,
    pub value: Option<String>,
    pub configured: bool,
}

/// The profile's field list for `contact` (see [`ProfileField`]).
pub(crate) fn profile_fields(
    conn: &Connection,
    config: &FieldsConfig,
    contact: ContactId,
) -> Result<Vec<ProfileField>> {
    let mut stored = contact_fields(conn, contact)?;
    let mut out: Vec<ProfileField> = config
        .fields
        .iter()
        .map(|d| {
            let value = stored
                .iter()
                .position(|v| v.name == d.name)
                .map(|i| stored.remove(i).value);
            ProfileField {
                name: d.name.clone(),
                label: d.label().to_string(),
                value,
                configured: true,
            }
        })
        .collect();
    out.extend(stored.into_iter().map(|v| ProfileField {
        label: v.name.clone(),
        name: v.name,
        value: Some(v.value),
        configured: false,
    }));
    Ok(out)
}

/// What a write changed (old/new None: unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub contact: ContactId,
    /// The field's name, or `stage` / `score`.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl FieldChange {
    pub fn changed(&self) -> bool {
        self.old != self.new
    }
}

/// The stored value of `name` for `contact` (None: never set or unset). Reads the row as it is:
/// pass the live contact ([`live_contact`]) for one that may have been merged.
pub(crate) fn contact_field(
    conn: &Connection,
    contact: ContactId,
    name: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM contact_fields WHERE contact_id = ?1 AND name = ?2")?
        .query_row((contact, name), |r| r.get(0))
        .optional()?)
}

/// [`contact_field`] for tests outside the store.
#[cfg(test)]
pub(crate) fn contact_field_for_tests(
    store: &Store,
    contact: ContactId,
    name: &str,
) -> Option<String> {
    contact_field(store.conn(), contact, name).ok().flatten()
}

/// Every stored field value of a contact, by name (those no longer configured too).
pub(crate) fn contact_fields(conn: &Connection, contact: ContactId) -> Result<Vec<FieldValue>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, value, updated_at, updated_by FROM contact_fields
         WHERE contact_id = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([contact], |r| {
        Ok(FieldValue {
            name: r.get(0)?,
            value: r.get(1)?,
            updated_at: r.get(2)?,
            updated_by: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A contact's stage (None: none yet) and lead score.
pub(crate) fn stage_and_score(
    conn: &Connection,
    contact: ContactId,
) -> Result<(Option<String>, i64)> {
    conn.prepare_cached("SELECT stage, lead_score FROM contacts WHERE id = ?1")?
        .query_row([contact], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NoContact(contact.0))
}

fn audit(conn: &Connection, change: &FieldChange, actor: &str, at: Millis) -> Result<()> {
    events::append(
        conn,
        at,
        actor,
        EventKind::ContactUpdated,
        EventRefs {
            contact: Some(change.contact),
            ..Default::default()
        },
        Some(&serde_json::json!({
            "field": change.field, "old": change.old, "new": change.new,
        })),
    )?;
    Ok(())
}

/// Set (`Some`) or unset (`None`) a field of a contact inside the caller's transaction: the
/// value validated by `def` (an invalid one: [`StoreError::Invalid`] saying what is allowed),
/// audited when it changes. The contact is followed through merges.
pub(crate) fn set_field_tx(
    conn: &Connection,
    contact: ContactId,
    def: &FieldDef,
    value: Option<&str>,
    actor: &str,
    at: Millis,
) -> Result<FieldChange> {
    let contact = live_contact(conn, contact)?;
    let new = match value {
        Some(v) => Some(def.validate(v).map_err(StoreError::Invalid)?),
        None => None,
    };
    let old = contact_field(conn, contact, &def.name)?;
    let change = FieldChange {
        contact,
        field: def.name.clone(),
        old,
        new,
    };
    if !change.changed() {
        return Ok(change);
    }
    match &change.new {
        Some(v) => {
            conn.prepare_cached(
                "INSERT INTO contact_fields(contact_id, name, value, num, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(contact_id, name) DO UPDATE SET value = excluded.value,
                    num = excluded.num, updated_at = excluded.updated_at,
                    updated_by = excluded.updated_by",
            )?
            .execute((contact, &def.name, v, def.sort_key(v), at, actor))?;
        }
        None => {
            conn.prepare_cached("DELETE FROM contact_fields WHERE contact_id = ?1 AND name = ?2")?
                .execute((contact, &def.name))?;
        }
    }
    audit(conn, &change, actor, at)?;
    Ok(change)
}

/// Unset a field by name whether or not the config still defines it (a field removed from the
/// config keeps its values until someone clears them).
pub(crate) fn unset_field_tx(
    conn: &Connection,
    contact: ContactId,
    name: &str,
    actor: &str,
    at: Millis,
) -> Result<FieldChange> {
    let contact = live_contact(conn, contact)?;
    let old = contact_field(conn, contact, name)?;
    let change = FieldChange {
        contact,
        field: name.to_string(),
        old,
        new: None,
    };
    if change.changed() {
        conn.prepare_cached("DELETE FROM contact_fields WHERE contact_id = ?1 AND name = ?2")?
            .execute((contact, name))?;
        audit(conn, &change, actor, at)?;
    }
    Ok(change)
}

/// Move a contact to a configured stage (`None`: no stage), audited when it changes.
pub(crate) fn set_stage_tx(
    conn: &Connection,
    contact: ContactId,
    config: &FieldsConfig,
    stage: Option<&str>,
    actor: &str,
    at: Millis,
) -> Result<FieldChange> {
    let contact = live_contact(conn, contact)?;
    let new = match stage {
        Some(s) => Some(
            config
                .require_stage(s)
                .map_err(StoreError::Invalid)?
                .to_string(),
        ),
        None => None,
    };
    let (old, _) = stage_and_score(conn, contact)?;
    let change = FieldChange {
        contact,
        field: "stage".into(),
        old,
        new,
    };
    if change.changed() {
        conn.prepare_cached("UPDATE contacts SET stage = ?2 WHERE id = ?1")?
            .execute((contact, &change.new))?;
        audit(conn, &change, actor, at)?;
    }
    Ok(change)
}

/// Add to or set a contact's lead score, audited when it changes.
pub(crate) fn change_score_tx(
    conn: &Connection,
    contact: ContactId,
    by: ScoreChange,
    actor: &str,
    at: Millis,
) -> Result<FieldChange> {
    let contact = live_contact(conn, contact)?;
    let (_, old) = stage_and_score(conn, contact)?;
    let new = by.apply(old);
    let change = FieldChange {
        contact,
        field: "score".into(),
        old: Some(old.to_string()),
        new: Some(new.to_string()),
    };
    if change.changed() {
        conn.prepare_cached("UPDATE contacts SET lead_score = ?2 WHERE id = ?1")?
            .execute((contact, new))?;
        audit(conn, &change, actor, at)?;
    }
    Ok(change)
}

impl super::Tx<'_> {
    /// A rule's `set_field`, `set_stage` or `add_score` on the contact of `conv`, inside the
    /// rule's transaction (validated like an agent's edit; audited with the rule as actor).
    pub fn rule_contact_edit(
        &self,
        conv: crate::model::ConversationId,
        config: &FieldsConfig,
        action: &crate::rules::Action,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        use crate::rules::Action;
        let conn = self.conn();
        let contact: ContactId = conn
            .prepare_cached("SELECT contact_id FROM conversations WHERE id = ?1")?
            .query_row([conv], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NoConversation(conv.0))?;
        match action {
            Action::SetField { name, value } => match (config.field(name), value) {
                (Some(def), v) => {
                    set_field_tx(conn, contact, def, v.as_deref(), actor, at)?;
                }
                (None, None) => {
                    unset_field_tx(conn, contact, name, actor, at)?;
                }
                (None, Some(_)) => {
                    return Err(StoreError::Invalid(
                        config.require(name).err().unwrap_or_default(),
                    ));
                }
            },
            Action::SetStage(s) => {
                set_stage_tx(conn, contact, config, Some(s), actor, at)?;
            }
            Action::AddScore(n) => {
                change_score_tx(conn, contact, ScoreChange::Add(*n), actor, at)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The pipeline: how many contacts each stage holds (config order, then stages no longer
/// configured, then `None`: no stage), and one page of a stage's contacts by score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub counts: Vec<(Option<String>, i64)>,
    pub stage: Option<String>,
    pub rows: Vec<PipelineRow>,
    /// Pass as `after` for the next page (None: this was the last).
    pub next: Option<(i64, ContactId)>,
}

/// A contact in the pipeline view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRow {
    pub contact: ContactId,
    pub name: String,
    pub score: i64,
    pub last_seen: Millis,
    /// The contact's newest conversation (Enter opens it).
    pub conversation: Option<crate::model::ConversationId>,
}

/// One demo contact's fields, stage and score (see [`Store::seed_demo_fields`]).
pub struct DemoFields {
    pub contact: ContactId,
    pub stage: String,
    pub score: i64,
    pub fields: Vec<(String, String)>,
}

impl Store {
    /// Counts per stage and the contacts of `stage` (None: those with no stage) by score,
    /// highest first, after the keyset `(score, id)`, at most `limit`; merged contacts left
    /// out, and for a restricted scope the contacts with no conversation in it.
    pub fn pipeline(
        &self,
        stage: Option<&str>,
        after: Option<(i64, ContactId)>,
        limit: usize,
    ) -> Result<Pipeline> {
        let scope = if self.scoped() {
            format!(
                " AND EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = contacts.id{})",
                scope::AND_COND
            )
        } else {
            String::new()
        };
        let conn = self.conn();
        let mut found: Vec<(Option<String>, i64)> = {
            let mut st = conn.prepare_cached(&format!(
                "SELECT stage, count(*) FROM contacts WHERE merged_into IS NULL{scope}
                 GROUP BY stage"
            ))?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut counts: Vec<(Option<String>, i64)> = Vec::new();
        for s in &self.fields.stages {
            let n = found
                .iter()
                .position(|(x, _)| x.as_deref() == Some(s.as_str()))
                .map(|i| found.remove(i).1)
                .unwrap_or(0);
            counts.push((Some(s.clone()), n));
        }
        found.sort_by(|a, b| b.0.is_some().cmp(&a.0.is_some()).then(a.0.cmp(&b.0)));
        counts.extend(found);
        let (score, id) = after.unwrap_or((i64::MAX, ContactId(0)));
        let stage_cond = if stage.is_some() {
            "stage = ?1"
        } else {
            "stage IS NULL AND ?1 IS NULL"
        };
        let mut st = conn.prepare_cached(&format!(
            "SELECT id, name, lead_score, last_seen,
                (SELECT c.id FROM conversations c WHERE c.contact_id = contacts.id
                 ORDER BY c.last_activity DESC LIMIT 1)
             FROM contacts
             WHERE {stage_cond} AND merged_into IS NULL{scope}
               AND (lead_score < ?2 OR (lead_score = ?2 AND id > ?3))
             ORDER BY lead_score DESC, id LIMIT ?4"
        ))?;
        let rows: Vec<PipelineRow> = st
            .query_map((stage, score, id, limit as i64 + 1), |r| {
                Ok(PipelineRow {
                    contact: r.get(0)?,
                    name: r.get(1)?,
                    score: r.get(2)?,
                    last_seen: r.get(3)?,
                    conversation: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut rows = rows;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| (r.score, r.contact))
        } else {
            None
        };
        Ok(Pipeline {
            counts,
            stage: stage.map(str::to_string),
            rows,
            next,
        })
    }

    /// The demo generator's fields, stages and scores, in one transaction, validated, with no
    /// events (they are the demo's history, not anyone's edit).
    pub fn seed_demo_fields(
        &mut self,
        config: &FieldsConfig,
        rows: &[DemoFields],
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            for r in rows {
                let stage = config
                    .require_stage(&r.stage)
                    .map_err(StoreError::Invalid)?;
                tx.prepare_cached("UPDATE contacts SET stage = ?2, lead_score = ?3 WHERE id = ?1")?
                    .execute((r.contact, stage, r.score))?;
                for (name, value) in &r.fields {
                    let def = config.require(name).map_err(StoreError::Invalid)?;
                    let v = def.validate(value).map_err(StoreError::Invalid)?;
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO contact_fields
                            (contact_id, name, value, num, updated_at, updated_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'demo')",
                    )?
                    .execute((r.contact, name, &v, def.sort_key(&v), at))?;
                }
            }
            Ok(())
        })
    }

    /// The workspace's `[[fields]]` and `[pipeline]` this connection validates writes and reads
    /// `NAME:VALUE` searches against (the server sets it on every connection it hands out).
    pub fn set_fields_config(&mut self, config: std::sync::Arc<FieldsConfig>) {
        self.fields = config;
    }

    pub fn fields_config(&self) -> std::sync::Arc<FieldsConfig> {
        std::sync::Arc::clone(&self.fields)
    }

    /// A contact's stored field values (see [`contact_fields`]), scope checked.
    pub fn contact_fields(&self, contact: ContactId) -> Result<Vec<FieldValue>> {
        let contact = live_contact(self.conn(), contact)?;
        scope::check_contact(self.conn(), contact, self.scoped())?;
        contact_fields(self.conn(), contact)
    }

    /// `:set FIELD VALUE` / `:unset FIELD` (value None). The field must be configured to be
    /// set; unsetting works on any stored name.
    pub fn set_contact_field(
        &mut self,
        contact: ContactId,
        config: &FieldsConfig,
        name: &str,
        value: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<FieldChange> {
        let scoped = self.scoped();
        let name = name.trim().to_ascii_lowercase();
        let def = match (config.field(&name), value) {
            (Some(d), _) => Some(d.clone()),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(StoreError::Invalid(
                    config.require(&name).err().unwrap_or_default(),
                ));
            }
        };
        self.write_with(|tx| {
            let contact = live_contact(tx, contact)?;
            scope::check_contact(tx, contact, scoped)?;
            match def {
                Some(d) => set_field_tx(tx, contact, &d, value, actor, at),
                None => unset_field_tx(tx, contact, &name, actor, at),
            }
        })
    }

    /// `:stage NAME` (None: clear the stage).
    pub fn set_contact_stage(
        &mut self,
        contact: ContactId,
        config: &FieldsConfig,
        stage: Option<&str>,
        actor: &str,
        at: Millis,
    ) -> Result<FieldChange> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = live_contact(tx, contact)?;
            scope::check_contact(tx, contact, scoped)?;
            set_stage_tx(tx, contact, config, stage, actor, at)
        })
    }

    /// `:score +N|-N|N`.
    pub fn change_contact_score(
        &mut self,
        contact: ContactId,
        by: ScoreChange,
        actor: &str,
        at: Millis,
    ) -> Result<FieldChange> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let contact = live_contact(tx, contact)?;
            scope::check_contact(tx, contact, scoped)?;
            change_score_tx(tx, contact, by, actor, at)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::fields::{FieldDef, FieldKind};

    fn setup() -> (Store, ContactId, FieldsConfig) {
        let mut s = Store::open_in_memory().unwrap();
        let c = s
            .write_with(|tx| super::super::contacts::create_contact(tx, "Ann", 1))
            .unwrap();
        let cfg = FieldsConfig {
            fields: vec![
                FieldDef::choice("plan", &["free", "pro", "enterprise"]),
                FieldDef::new("seats", FieldKind::Number),
                FieldDef::new("renewal", FieldKind::Date),
            ],
            ..FieldsConfig::default()
        };
        (s, c, cfg)
    }

    #[test]
    fn fields_are_set_validated_unset_and_audited() {
        let (mut s, c, cfg) = setup();
        let ch = s
            .set_contact_field(c, &cfg, "plan", Some("Pro"), "bob", 10)
            .unwrap();
        assert_eq!(ch.new.as_deref(), Some("pro"));
        assert_eq!(
            contact_field(s.conn(), c, "plan").unwrap().as_deref(),
            Some("pro")
        );
        let e = s
            .set_contact_field(c, &cfg, "plan", Some("gold"), "bob", 11)
            .unwrap_err()
            .to_string();
        assert!(e.contains("free, pro, enterprise"), "{e}");
        let e = s
            .set_contact_field(c, &cfg, "colour", Some("red"), "bob", 11)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plan, seats, renewal"), "{e}");
        s.set_contact_field(c, &cfg, "seats", Some("12"), "bob", 12)
            .unwrap();
        let num: Option<f64> = s
            .conn()
            .query_row(
                "SELECT num FROM contact_fields WHERE name = 'seats'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(num, Some(12.0));
        // Same value again: no event.
        s.set_contact_field(c, &cfg, "plan", Some("pro"), "bob", 13)
            .unwrap();
        let ch = s
            .set_contact_field(c, &cfg, "plan", None, "ann", 14)
            .unwrap();
        assert_eq!(ch.old.as_deref(), Some("pro"));
        assert_eq!(contact_field(s.conn(), c, "plan").unwrap(), None);
        let events: Vec<(String, String)> = {
            let mut st = s
                .conn()
                .prepare(
                    "SELECT actor, data FROM events WHERE kind = 'contact_updated' ORDER BY id",
                )
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0].0, "bob");
        assert!(events[0].1.contains(r#""field":"plan""#), "{}", events[0].1);
        assert!(events[0].1.contains(r#""new":"pro""#));
        assert!(events[2].1.contains(r#""old":"pro""#) && events[2].1.contains(r#""new":null"#));
    }

    #[test]
    fn a_field_removed_from_the_config_keeps_its_value_and_can_be_unset() {
        let (mut s, c, cfg) = setup();
        s.set_contact_field(c, &cfg, "renewal", Some("2027-01-31"), "bob", 10)
            .unwrap();
        let fewer = FieldsConfig::default();
        assert_eq!(s.contact_fields(c).unwrap().len(), 1);
        assert!(
            s.set_contact_field(c, &fewer, "renewal", Some("2027-02-01"), "bob", 11)
                .is_err()
        );
        s.set_contact_field(c, &fewer, "renewal", None, "bob", 12)
            .unwrap();
        assert!(s.contact_fields(c).unwrap().is_empty());
    }

    #[test]
    fn stage_and_score_are_on_the_contact_row() {
        let (mut s, c, cfg) = setup();
        assert_eq!(s.contact(c).unwrap().stage, None);
        assert_eq!(s.contact(c).unwrap().lead_score, 0);
        let e = s
            .set_contact_stage(c, &cfg, Some("won"), "bob", 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lead, qualified, customer, churned"), "{e}");
        s.set_contact_stage(c, &cfg, Some("Customer"), "bob", 10)
            .unwrap();
        s.change_contact_score(c, ScoreChange::Add(15), "bob", 11)
            .unwrap();
        let ch = s
            .change_contact_score(c, ScoreChange::Add(-5), "bob", 12)
            .unwrap();
        assert_eq!(
            (ch.old.as_deref(), ch.new.as_deref()),
            (Some("15"), Some("10"))
        );
        let row = s.contact(c).unwrap();
        assert_eq!(
            (row.stage.as_deref(), row.lead_score),
            (Some("customer"), 10)
        );
        assert_eq!(
            stage_and_score(s.conn(), c).unwrap(),
            (Some("customer".into()), 10)
        );
    }
}
