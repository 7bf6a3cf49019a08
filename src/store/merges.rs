//! Merges you can take back: two contacts becoming one person, two conversations becoming one,
//! and a conversation split in two.
//!
//! Every merge writes a `merges` row (schema v14) with its provenance (who, when, why) and
//! the before-images of what it changed: the rows it rewrote, the ids it moved. Undoing it
//! restores those, except what people did since: a row somebody changed after the merge keeps
//! their change (only the columns the merge set and nobody touched again go back), and a
//! message that arrived after a contact merge goes with the identity it came from
//! (`messages.identity_id`). With no activity in between, merge then unmerge is an exact round
//! trip (the property test in `merges_tests.rs` compares every table).

use super::events::{self, EventKind, EventRefs};
use super::{Result, StoreError};
use crate::model::{ContactId, ConversationId, Millis};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// What kind of merge a `merges` row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeKind {
    /// Contact `other` was folded into contact `target`.
    Contacts,
    /// Conversation `other` was folded into conversation `target`.
    Conversations,
    /// Conversation `target` was split at a message; the tail became `other`.
    Split,
}

impl MergeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeKind::Contacts => "contacts",
            MergeKind::Conversations => "conversations",
            MergeKind::Split => "split",
        }
    }

    fn parse(s: &str) -> Option<MergeKind> {
        Some(match s {
            "contacts" => MergeKind::Contacts,
            "conversations" => MergeKind::Conversations,
            "split" => MergeKind::Split,
            _ => return None,
        })
    }
}

/// One merge as the provenance list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRow {
    pub id: i64,
    pub kind: MergeKind,
    /// The surviving contact, the kept conversation, or the conversation that was split.
    pub target: i64,
    /// The absorbed contact, the folded conversation, or the conversation split off.
    pub other: i64,
    /// Why: "matched email ann@x.org", "manual: same person (ann)", "split at message #12".
    pub reason: String,
    pub actor: String,
    pub at: Millis,
    /// What it moved, in words ("2 identities, 3 conversations, 41 messages").
    pub moved: String,
    /// When and by whom it was undone.
    pub undone: Option<(Millis, String)>,
}

/// What an undo did, for the status line and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmerged {
    pub merge: i64,
    pub kind: MergeKind,
    pub target: i64,
    pub other: i64,
    /// Messages that arrived after the merge and went back with their identity.
    pub later_messages: usize,
    /// Rows somebody changed after the merge that kept their change.
    pub kept_changes: usize,
}

// ---------------------------------------------------------------------------------------------
// Row images

/// A row as column -> value (its table's declared columns; generated ones are left out since
/// they cannot be written).
type Image = Map<String, Json>;

fn to_json(v: Sql) -> Json {
    match v {
        Sql::Null => Json::Null,
        Sql::Integer(i) => Json::from(i),
        Sql::Real(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Sql::Text(s) => Json::String(s),
        // No merged table holds blobs today; kept as a tagged hex string should one appear.
        Sql::Blob(b) => Json::Object(Map::from_iter([(
            "blob".to_string(),
            Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        )])),
    }
}

fn to_sql(v: &Json) -> Sql {
    match v {
        Json::Null => Sql::Null,
        Json::Bool(b) => Sql::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Sql::Text(s.clone()),
        Json::Object(o) => match o.get("blob").and_then(Json::as_str) {
            Some(hex) => Sql::Blob(
                (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect(),
            ),
            None => Sql::Text(v.to_string()),
        },
        Json::Array(_) => Sql::Text(v.to_string()),
    }
}

/// The writable columns of `table` (`PRAGMA table_info` leaves generated columns out).
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(&format!("PRAGMA table_info({table})"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(1))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The rows of `table` matching `filter` (a WHERE clause over `?1`), as images.
fn images(conn: &Connection, table: &str, filter: &str, arg: i64) -> Result<Vec<Image>> {
    let cols = columns(conn, table)?;
    let sql = format!("SELECT {} FROM {table} WHERE {filter}", cols.join(", "));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([arg])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut m = Map::new();
        for (i, c) in cols.iter().enumerate() {
            m.insert(c.clone(), to_json(r.get::<_, Sql>(i)?));
        }
        out.push(m);
    }
    Ok(out)
}

/// Two images of one row alike, but for the columns triggers derive from other tables
/// (`contact_vip` follows the contact's VIP flag).
fn same(a: &Image, b: &Image) -> bool {
    let strip = |m: &Image| {
        let mut m = m.clone();
        m.remove("contact_vip");
        m
    };
    strip(a) == strip(b)
}

fn image(conn: &Connection, table: &str, id: i64) -> Result<Option<Image>> {
    Ok(images(conn, table, "id = ?1", id)?.into_iter().next())
}

/// Write an image back as a new row (`INSERT`), with some columns overridden.
fn insert_image(conn: &Connection, table: &str, img: &Image, set: &[(&str, Sql)]) -> Result<()> {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for (c, v) in img {
        cols.push(c.as_str());
        vals.push(
            set.iter()
                .find(|(k, _)| k == c)
                .map_or_else(|| to_sql(v), |(_, s)| s.clone()),
        );
    }
    let sql = format!(
        "INSERT OR IGNORE INTO {table}({}) VALUES ({})",
        cols.join(", "),
        (1..=cols.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    conn.execute(&sql, rusqlite::params_from_iter(vals))?;
    Ok(())
}

/// Set the columns of row `id` to the image's values (all of them, or only `only`).
fn update_to(
    conn: &Connection,
    table: &str,
    id: i64,
    img: &Image,
    only: Option<&[&str]>,
) -> Result<()> {
    let pairs: Vec<(&String, &Json)> = img
        .iter()
        .filter(|(c, _)| c.as_str() != "id" && only.is_none_or(|o| o.contains(&c.as_str())))
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    let sets = pairs
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = ?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let mut vals = vec![Sql::Integer(id)];
    vals.extend(pairs.iter().map(|(_, v)| to_sql(v)));
    conn.execute(
        &format!("UPDATE {table} SET {sets} WHERE id = ?1"),
        rusqlite::params_from_iter(vals),
    )?;
    Ok(())
}

fn ids(conn: &Connection, sql: &str, arg: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([arg], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `UPDATE table SET col = to WHERE id IN (ids) AND col = from`, in chunks.
fn move_ids(
    conn: &Connection,
    table: &str,
    col: &str,
    ids: &[i64],
    from: i64,
    to: i64,
) -> Result<usize> {
    let mut n = 0;
    for chunk in ids.chunks(500) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        n += conn.execute(
            &format!("UPDATE {table} SET {col} = ?1 WHERE {col} = ?2 AND id IN ({list})"),
            (to, from),
        )?;
    }
    Ok(n)
}

fn json_ids(v: &Json) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Json::as_i64).collect())
        .unwrap_or_default()
}

fn json_images(v: &Json) -> Vec<Image> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_object().cloned()).collect())
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)] // one row's columns
fn record(
    conn: &Connection,
    kind: MergeKind,
    target: i64,
    other: i64,
    reason: &str,
    actor: &str,
    at: Millis,
    data: &Json,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO merges(kind, target, other, reason, actor, at, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        kind.as_str(),
        target,
        other,
        reason,
        actor,
        at,
        data.to_string(),
    ))?;
    Ok(conn.last_insert_rowid())
}

// ---------------------------------------------------------------------------------------------
// Folding one conversation into another (a contact merge's open conversations, a manual merge)

/// Move every message, tag, draft, event and report fact of conversation `gone` into `keep`,
/// then delete `gone`; returns what [`unfold`] needs to take it back.
pub(crate) fn fold_conversation(
    conn: &Connection,
    keep: ConversationId,
    gone: ConversationId,
) -> Result<Json> {
    let keep_before =
        image(conn, "conversations", keep.0)?.ok_or(StoreError::NoConversation(keep.0))?;
    let gone_before =
        image(conn, "conversations", gone.0)?.ok_or(StoreError::NoConversation(gone.0))?;
    let messages = ids(
        conn,
        "SELECT id FROM messages WHERE conversation_id = ?1",
        gone.0,
    )?;
    let moved_events = ids(
        conn,
        "SELECT id FROM events WHERE conversation_id = ?1",
        gone.0,
    )?;
    let facts = ids(
        conn,
        "SELECT id FROM report_facts WHERE conversation_id = ?1",
        gone.0,
    )?;
    let tags = |c: ConversationId| -> Result<Vec<String>> {
        let mut stmt =
            conn.prepare_cached("SELECT tag FROM tags WHERE conversation_id = ?1 ORDER BY tag")?;
        let rows = stmt.query_map([c], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let keep_tags = tags(keep)?;
    let gone_tags = tags(gone)?;
    let drafts = |c: ConversationId| images(conn, "drafts", "conversation_id = ?1", c.0);
    let keep_drafts = drafts(keep)?;
    let gone_drafts = drafts(gone)?;

    conn.execute(
        "UPDATE messages SET conversation_id = ?1 WHERE conversation_id = ?2",
        (keep, gone),
    )?;
    conn.execute(
        "INSERT OR IGNORE INTO tags(conversation_id, tag) SELECT ?1, tag FROM tags WHERE conversation_id = ?2",
        (keep, gone),
    )?;
    conn.execute("DELETE FROM tags WHERE conversation_id = ?1", [gone])?;
    // Drafts are never lost: an agent's draft moves along; one who had a draft on both
    // keeps the two texts, one after the other.
    conn.execute(
        "UPDATE drafts SET
            body = body || char(10) || char(10) || (SELECT g.body FROM drafts g
                WHERE g.conversation_id = ?2 AND g.agent = drafts.agent),
            updated_at = max(updated_at, (SELECT g.updated_at FROM drafts g
                WHERE g.conversation_id = ?2 AND g.agent = drafts.agent))
         WHERE conversation_id = ?1
           AND agent IN (SELECT agent FROM drafts WHERE conversation_id = ?2)",
        (keep, gone),
    )?;
    conn.execute(
        "DELETE FROM drafts WHERE conversation_id = ?2
           AND agent IN (SELECT agent FROM drafts WHERE conversation_id = ?1)",
        (keep, gone),
    )?;
    conn.execute(
        "UPDATE drafts SET conversation_id = ?1 WHERE conversation_id = ?2",
        (keep, gone),
    )?;
    conn.execute(
        "UPDATE events SET conversation_id = ?1 WHERE conversation_id = ?2",
        (keep, gone),
    )?;
    // The facts the reports hold of the folded conversation count for the one it joined.
    conn.execute(
        "UPDATE report_facts SET conversation_id = ?1 WHERE conversation_id = ?2",
        (keep, gone),
    )?;
    let (channels_gone, gone_activity, gone_assignee, gone_subject): (
        String,
        Millis,
        Option<String>,
        Option<String>,
    ) = conn.query_row(
        "SELECT channels, last_activity, assignee, subject FROM conversations WHERE id = ?1",
        [gone],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut channels: String = conn.query_row(
        "SELECT channels FROM conversations WHERE id = ?1",
        [keep],
        |r| r.get(0),
    )?;
    for ch in super::conversations::parse_channels(&channels_gone) {
        if let Some(c) = super::conversations::add_channel(&channels, ch) {
            channels = c;
        }
    }
    // The higher priority of the two survives (an urgent thread stays urgent).
    conn.execute(
        "UPDATE conversations SET priority = (SELECT g.priority FROM conversations g WHERE g.id = ?2)
         WHERE id = ?1
           AND (SELECT CASE g.priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2
                       WHEN 'normal' THEN 1 ELSE 0 END FROM conversations g WHERE g.id = ?2)
             > CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END",
        (keep, gone),
    )?;
    // The customer's oldest unanswered message and our latest reply, over both.
    conn.execute(
        "UPDATE conversations SET
            waiting_since = CASE
                WHEN waiting_since IS NULL THEN (SELECT g.waiting_since FROM conversations g WHERE g.id = ?2)
                WHEN (SELECT g.waiting_since FROM conversations g WHERE g.id = ?2) IS NULL THEN waiting_since
                ELSE min(waiting_since, (SELECT g.waiting_since FROM conversations g WHERE g.id = ?2)) END,
            last_reply_at = max(coalesce(last_reply_at, 0),
                coalesce((SELECT g.last_reply_at FROM conversations g WHERE g.id = ?2), 0))
         WHERE id = ?1",
        (keep, gone),
    )?;
    conn.execute(
        "UPDATE conversations SET last_reply_at = NULL WHERE id = ?1 AND last_reply_at = 0",
        [keep],
    )?;
    conn.execute("DELETE FROM conversations WHERE id = ?1", [gone])?;
    super::messages::refresh_conversation_summary(conn, keep)?;
    conn.execute(
        "UPDATE conversations SET channels = ?2,
            assignee = coalesce(assignee, ?3),
            subject = coalesce(subject, ?5),
            last_activity = max(last_activity, ?4),
            status = 'open',
            snoozed_until = NULL
         WHERE id = ?1",
        (keep, channels, gone_assignee, gone_activity, gone_subject),
    )?;
    let keep_after = image(conn, "conversations", keep.0)?.unwrap_or_default();
    let keep_drafts_after = drafts(keep)?;
    Ok(serde_json::json!({
        "keep": keep, "gone": gone,
        "keep_before": keep_before, "keep_after": keep_after, "gone_before": gone_before,
        "messages": messages, "events": moved_events, "facts": facts,
        "keep_tags": keep_tags, "gone_tags": gone_tags,
        "keep_drafts": keep_drafts, "gone_drafts": gone_drafts,
        "keep_drafts_after": keep_drafts_after,
    }))
}

/// The columns of a conversation a fold rewrites that are decisions, not summaries: restored
/// one by one when nobody changed them since.
const DECIDED: &[&str] = &[
    "status",
    "priority",
    "assignee",
    "subject",
    "snoozed_until",
    "channels",
];

/// Take a fold back: `gone` comes back (under its id when free), with its messages, tags,
/// drafts, events and facts; `keep` gets back what the fold changed and nobody changed since.
/// Returns the id `gone` has now and whether some change made after the fold was kept.
fn unfold(conn: &Connection, f: &Json) -> Result<(ConversationId, bool)> {
    let keep = ConversationId(f["keep"].as_i64().unwrap_or(0));
    let gone_id = f["gone"].as_i64().unwrap_or(0);
    let gone_before = f["gone_before"].as_object().cloned().unwrap_or_default();
    let keep_before = f["keep_before"].as_object().cloned().unwrap_or_default();
    let keep_after = f["keep_after"].as_object().cloned().unwrap_or_default();
    let Some(keep_now) = image(conn, "conversations", keep.0)? else {
        return Err(StoreError::Invalid(format!(
            "conversation #{keep} no longer exists (merged again since?): undo that first"
        )));
    };
    // The id is free unless a newer conversation took it (SQLite reuses the largest rowid).
    let taken = conn
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
        .exists([gone_id])?;
    let gone = if taken {
        let mut img = gone_before.clone();
        img.remove("id");
        insert_image(conn, "conversations", &img, &[])?;
        ConversationId(conn.last_insert_rowid())
    } else {
        insert_image(conn, "conversations", &gone_before, &[])?;
        ConversationId(gone_id)
    };
    move_ids(
        conn,
        "messages",
        "conversation_id",
        &json_ids(&f["messages"]),
        keep.0,
        gone.0,
    )?;
    move_ids(
        conn,
        "events",
        "conversation_id",
        &json_ids(&f["events"]),
        keep.0,
        gone.0,
    )?;
    move_ids(
        conn,
        "report_facts",
        "conversation_id",
        &json_ids(&f["facts"]),
        keep.0,
        gone.0,
    )?;
    let strs = |v: &Json| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let keep_tags = strs(&f["keep_tags"]);
    for t in strs(&f["gone_tags"]) {
        conn.execute(
            "INSERT OR IGNORE INTO tags(conversation_id, tag) VALUES (?1, ?2)",
            (gone, &t),
        )?;
        if !keep_tags.contains(&t) {
            conn.execute(
                "DELETE FROM tags WHERE conversation_id = ?1 AND tag = ?2",
                (keep, &t),
            )?;
        }
    }
    // Drafts: the folded one's come back; a kept one the fold joined goes back to its own
    // text unless its agent edited it since.
    for d in json_images(&f["gone_drafts"]) {
        insert_image(
            conn,
            "drafts",
            &d,
            &[("conversation_id", Sql::Integer(gone.0))],
        )?;
    }
    let keep_drafts = json_images(&f["keep_drafts"]);
    let mut kept_changes = false;
    for after in json_images(&f["keep_drafts_after"]) {
        let agent = after
            .get("agent")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let before = keep_drafts
            .iter()
            .find(|d| d.get("agent").and_then(Json::as_str) == Some(agent));
        let now = images(conn, "drafts", "conversation_id = ?1", keep.0)?
            .into_iter()
            .find(|d| d.get("agent").and_then(Json::as_str) == Some(agent));
        if now.as_ref() != Some(&after) {
            kept_changes |= now.is_some();
            continue;
        }
        conn.execute(
            "DELETE FROM drafts WHERE conversation_id = ?1 AND agent = ?2",
            (keep, agent),
        )?;
        if let Some(b) = before {
            insert_image(conn, "drafts", b, &[])?;
        }
    }
    // The kept conversation: exactly as it was when nothing happened to it since; else the
    // decisions nobody changed go back and the summary is recomputed from its messages.
    if same(&keep_now, &keep_after) {
        update_to(conn, "conversations", keep.0, &keep_before, None)?;
    } else {
        let unchanged: Vec<&str> = DECIDED
            .iter()
            .copied()
            .filter(|c| keep_now.get(*c) == keep_after.get(*c))
            .collect();
        update_to(
            conn,
            "conversations",
            keep.0,
            &keep_before,
            Some(&unchanged),
        )?;
        recompute_summary(conn, keep)?;
        kept_changes = true;
    }
    Ok((gone, kept_changes))
}

/// A conversation's summary columns recomputed from its messages (after messages moved in or
/// out): count, preview, last activity, channels, the customer's wait and our last reply.
pub(crate) fn recompute_summary(conn: &Connection, id: ConversationId) -> Result<()> {
    super::messages::refresh_conversation_summary(conn, id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT channel, direction, author, created_at FROM messages
         WHERE conversation_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, crate::model::Channel>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Millis>(3)?,
        ))
    })?;
    let mut channels = String::new();
    let mut waiting: Option<Millis> = None;
    let mut replied: Option<Millis> = None;
    for row in rows {
        let (ch, dir, author, at) = row?;
        if let Some(c) = super::conversations::add_channel(&channels, ch) {
            channels = c;
        }
        match dir.as_str() {
            "in" => waiting = waiting.or(Some(at)),
            "out" if !super::messages::is_automated(&author) => {
                waiting = None;
                replied = Some(replied.map_or(at, |r| r.max(at)));
            }
            _ => {}
        }
    }
    conn.execute(
        "UPDATE conversations SET channels = ?2, waiting_since = ?3, last_reply_at = ?4
         WHERE id = ?1",
        (id, channels, waiting, replied),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Contacts

/// Fold contact `absorbed` into `survivor`: identities, claims, conversations and messages
/// move; if both had an active conversation, the newer one joins the older, so the person
/// still has exactly one open conversation. The absorbed row stays, marked `merged_into`; the
/// `merges` row keeps what an unmerge needs, and the event says what moved.
pub(crate) fn merge_contacts(
    conn: &Connection,
    survivor: ContactId,
    absorbed: ContactId,
    reason: &str,
    actor: &str,
    at: Millis,
) -> Result<Option<i64>> {
    if survivor == absorbed {
        return Ok(None);
    }
    let survivor_before =
        image(conn, "contacts", survivor.0)?.ok_or(StoreError::NoContact(survivor.0))?;
    let absorbed_before =
        image(conn, "contacts", absorbed.0)?.ok_or(StoreError::NoContact(absorbed.0))?;
    let identity_ids = ids(
        conn,
        "SELECT id FROM identities WHERE contact_id = ?1",
        absorbed.0,
    )?;
    let moved_identities: Vec<(String, String)> = {
        let mut stmt =
            conn.prepare_cached("SELECT kind, value FROM identities WHERE contact_id = ?1")?;
        let rows = stmt.query_map([absorbed], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let conversations = ids(
        conn,
        "SELECT id FROM conversations WHERE contact_id = ?1",
        absorbed.0,
    )?;
    let messages = ids(
        conn,
        "SELECT id FROM messages WHERE contact_id = ?1",
        absorbed.0,
    )?;
    let absorbed_claims = images(conn, "identity_claims", "contact_id = ?1", absorbed.0)?;
    let survivor_claims = images(conn, "identity_claims", "contact_id = ?1", survivor.0)?;
    let last_message: i64 =
        conn.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
            r.get(0)
        })?;
    let fields_of =
        |c: ContactId| images(conn, "contact_fields", "contact_id = ?1 ORDER BY name", c.0);
    let survivor_fields = fields_of(survivor)?;
    let absorbed_fields = fields_of(absorbed)?;

    conn.execute(
        "UPDATE identities SET contact_id = ?1 WHERE contact_id = ?2",
        (survivor, absorbed),
    )?;
    conn.execute(
        "UPDATE conversations SET contact_id = ?1 WHERE contact_id = ?2",
        (survivor, absorbed),
    )?;
    conn.execute(
        "UPDATE messages SET contact_id = ?1 WHERE contact_id = ?2",
        (survivor, absorbed),
    )?;
    super::claims::move_claims(conn, survivor, absorbed)?;
    // Custom fields: the absorbed contact's fill the survivor's gaps (the survivor's value
    // wins where both have one). Consent needs no move: it is read across the merge family
    // (store/consent.rs), so an opt-out of either person holds for both.
    conn.execute(
        "UPDATE OR IGNORE contact_fields SET contact_id = ?1 WHERE contact_id = ?2",
        (survivor, absorbed),
    )?;
    conn.execute(
        "DELETE FROM contact_fields WHERE contact_id = ?1",
        [absorbed],
    )?;
    // At most one active conversation per contact: fold the newer into the older.
    let active: Vec<ConversationId> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM conversations WHERE contact_id = ?1 AND status <> 'resolved'
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([survivor], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut folds = Vec::new();
    let mut folded = Vec::new();
    if let Some((&keep, rest)) = active.split_first() {
        for &gone in rest {
            folds.push(fold_conversation(conn, keep, gone)?);
            folded.push(gone.0);
        }
    }
    // The survivor is the older contact, often one we only know by a placeholder ("Visitor
    // 3f9a", an address); when the absorbed one has a real name, the person keeps it.
    let absorbed_name = super::contacts::contact_name(conn, absorbed)?;
    if !super::contacts::is_placeholder_name(&absorbed_name) {
        super::contacts::improve_name(conn, survivor, &absorbed_name)?;
    }
    conn.execute(
        "UPDATE contacts SET merged_into = ?1 WHERE id = ?2",
        (survivor, absorbed),
    )?;
    conn.execute(
        "UPDATE contacts SET
            vip = max(vip, (SELECT vip FROM contacts WHERE id = ?2)),
            created_at = min(created_at, (SELECT created_at FROM contacts WHERE id = ?2)),
            last_channel = CASE
                WHEN last_channel IS NULL
                  OR (SELECT last_seen FROM contacts WHERE id = ?2) > last_seen
                THEN coalesce((SELECT last_channel FROM contacts WHERE id = ?2), last_channel)
                ELSE last_channel END,
            last_seen = max(last_seen, (SELECT last_seen FROM contacts WHERE id = ?2)),
            stage = coalesce(stage, (SELECT stage FROM contacts WHERE id = ?2)),
            lead_score = max(lead_score, (SELECT lead_score FROM contacts WHERE id = ?2))
         WHERE id = ?1",
        (survivor, absorbed),
    )?;
    let survivor_after = image(conn, "contacts", survivor.0)?.unwrap_or_default();
    let fields_after = fields_of(survivor)?;
    let data = serde_json::json!({
        "survivor_before": survivor_before, "survivor_after": survivor_after,
        "absorbed_before": absorbed_before,
        "identities": identity_ids, "conversations": conversations, "messages": messages,
        "absorbed_claims": absorbed_claims, "survivor_claims": survivor_claims,
        "last_message": last_message, "folds": folds,
        "survivor_fields": survivor_fields, "absorbed_fields": absorbed_fields,
        "fields_after": fields_after,
    });
    let merge = record(
        conn,
        MergeKind::Contacts,
        survivor.0,
        absorbed.0,
        reason,
        actor,
        at,
        &data,
    )?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ContactsMerged,
        EventRefs {
            contact: Some(survivor),
            ..Default::default()
        },
        Some(&serde_json::json!({
            "merge": merge,
            "survivor": survivor, "absorbed": absorbed, "reason": reason,
            "identities": moved_identities, "folded_conversations": folded,
            "conversations": conversations.len(), "messages": messages.len(),
        })),
    )?;
    Ok(Some(merge))
}

struct MergeRecord {
    id: i64,
    kind: MergeKind,
    target: i64,
    other: i64,
    at: Millis,
    data: Json,
    undone: bool,
}

fn load(conn: &Connection, id: i64) -> Result<MergeRecord> {
    let row: Option<(String, i64, i64, Millis, String, Option<Millis>)> = conn
        .prepare_cached(
            "SELECT kind, target, other, at, data, undone_at FROM merges WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let (kind, target, other, at, data, undone) = row.ok_or_else(|| {
        StoreError::Invalid(format!(
            "no merge #{id}: `braid contact merges ID` lists them"
        ))
    })?;
    if serde_json::from_str::<Json>(&data).is_ok_and(|d| d["forgotten"] == Json::Bool(true)) {
        return Err(StoreError::Invalid(format!(
            "merge #{id} involved a contact that was forgotten (GDPR): it cannot be taken back"
        )));
    }
    Ok(MergeRecord {
        id,
        kind: MergeKind::parse(&kind)
            .ok_or_else(|| StoreError::Invalid(format!("merge #{id}: unknown kind {kind}")))?,
        target,
        other,
        at,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Invalid(format!("merge #{id}: unreadable record: {e}")))?,
        undone: undone.is_some(),
    })
}

/// The newest merge not undone yet whose conversations include `conv` among those it folded
/// or kept, after merge `after`: it must be undone first.
fn later_merge_touching(
    conn: &Connection,
    after: i64,
    convs: &[i64],
    contacts: &[i64],
) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, target, other FROM merges WHERE id > ?1 AND undone_at IS NULL
         ORDER BY id DESC",
    )?;
    let rows = stmt.query_map([after], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (id, kind, target, other) = row?;
        let hit = match kind.as_str() {
            // A later contact merge blocks only when it absorbed one of ours.
            "contacts" => contacts.contains(&other),
            _ => convs.contains(&target) || convs.contains(&other),
        };
        if hit {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn mark_undone(conn: &Connection, id: i64, actor: &str, at: Millis) -> Result<()> {
    conn.execute(
        "UPDATE merges SET undone_at = ?2, undone_by = ?3 WHERE id = ?1",
        (id, at, actor),
    )?;
    Ok(())
}

/// Undo merge `id` (any kind), inside the caller's transaction.
pub(crate) fn undo_merge(conn: &Connection, id: i64, actor: &str, at: Millis) -> Result<Unmerged> {
    let m = load(conn, id)?;
    if m.undone {
        return Err(StoreError::Invalid(format!(
            "merge #{id} was already undone"
        )));
    }
    match m.kind {
        MergeKind::Contacts => unmerge_contacts(conn, &m, actor, at),
        MergeKind::Conversations => unmerge_conversations(conn, &m, actor, at),
        MergeKind::Split => unsplit(conn, &m, actor, at),
    }
}

fn unmerge_contacts(
    conn: &Connection,
    m: &MergeRecord,
    actor: &str,
    at: Millis,
) -> Result<Unmerged> {
    let survivor = ContactId(m.target);
    let absorbed = ContactId(m.other);
    let d = &m.data;
    let merged_into: Option<Option<i64>> = conn
        .prepare_cached("SELECT merged_into FROM contacts WHERE id = ?1")?
        .query_row([absorbed], |r| r.get(0))
        .optional()?;
    if merged_into != Some(Some(survivor.0)) {
        return Err(StoreError::Invalid(format!(
            "contact #{absorbed} is no longer merged into #{survivor}: nothing to unmerge"
        )));
    }
    let folds: Vec<&Json> = d["folds"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut convs = json_ids(&d["conversations"]);
    for f in &folds {
        convs.extend(f["keep"].as_i64());
        convs.extend(f["gone"].as_i64());
    }
    if let Some(later) = later_merge_touching(conn, m.id, &convs, &[survivor.0, absorbed.0])? {
        return Err(StoreError::Invalid(format!(
            "merge #{later} came later and involves these records: undo it first (`:unmerge {later}`)"
        )));
    }
    let mut kept = 0;
    // Folds, newest first.
    let mut regone = Vec::new();
    for f in folds.iter().rev() {
        let (gone, changed) = unfold(conn, f)?;
        kept += usize::from(changed);
        regone.push((f["gone"].as_i64().unwrap_or(0), gone.0));
    }
    // A folded conversation that came back under a new id is the same conversation.
    let mut convs = json_ids(&d["conversations"]);
    for c in &mut convs {
        if let Some((_, now)) = regone.iter().find(|(was, _)| was == c) {
            *c = *now;
        }
    }
    let identities = json_ids(&d["identities"]);
    move_ids(
        conn,
        "identities",
        "contact_id",
        &identities,
        survivor.0,
        absorbed.0,
    )?;
    move_ids(
        conn,
        "conversations",
        "contact_id",
        &convs,
        survivor.0,
        absorbed.0,
    )?;
    move_ids(
        conn,
        "messages",
        "contact_id",
        &json_ids(&d["messages"]),
        survivor.0,
        absorbed.0,
    )?;
    // Claims: the absorbed contact's come back; the survivor loses those it only had from it.
    let survivor_claims = json_images(&d["survivor_claims"]);
    let key = |c: &Image| (c.get("kind").cloned(), c.get("value").cloned());
    for c in json_images(&d["absorbed_claims"]) {
        if !survivor_claims.iter().any(|s| key(s) == key(&c)) {
            conn.execute(
                "DELETE FROM identity_claims WHERE contact_id = ?1 AND kind = ?2 AND value = ?3",
                (
                    survivor,
                    c.get("kind").and_then(Json::as_str).unwrap_or_default(),
                    c.get("value").and_then(Json::as_str).unwrap_or_default(),
                ),
            )?;
        }
        insert_image(conn, "identity_claims", &c, &[])?;
    }
    restore_fields(conn, survivor, absorbed, d)?;
    // Messages that came after the merge through one of the absorbed contact's identities go
    // back with it (and our replies to those identities with them).
    let later = later_messages(
        conn,
        survivor,
        absorbed,
        d["last_message"].as_i64().unwrap_or(0),
    )?;
    let mut touched: Vec<ConversationId> = Vec::new();
    for (msg, conv) in &later {
        let target = if convs.contains(&conv.0) {
            *conv
        } else {
            home_for(conn, absorbed, *conv, at, actor)?
        };
        conn.execute(
            "UPDATE messages SET contact_id = ?2, conversation_id = ?3 WHERE id = ?1",
            (msg, absorbed, target),
        )?;
        for c in [*conv, target] {
            if !touched.contains(&c) {
                touched.push(c);
            }
        }
    }
    for c in &touched {
        recompute_summary(conn, *c)?;
    }
    // The contacts' own rows.
    let survivor_before = d["survivor_before"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let survivor_after = d["survivor_after"].as_object().cloned().unwrap_or_default();
    let mut absorbed_before = d["absorbed_before"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    absorbed_before.insert("merged_into".into(), Json::Null);
    update_to(conn, "contacts", absorbed.0, &absorbed_before, None)?;
    let survivor_now = image(conn, "contacts", survivor.0)?.unwrap_or_default();
    if survivor_now == survivor_after {
        update_to(conn, "contacts", survivor.0, &survivor_before, None)?;
    } else {
        kept += 1;
        let unchanged: Vec<&str> = ["name", "vip", "created_at", "stage", "lead_score"]
            .into_iter()
            .filter(|c| survivor_now.get(*c) == survivor_after.get(*c))
            .collect();
        update_to(
            conn,
            "contacts",
            survivor.0,
            &survivor_before,
            Some(&unchanged),
        )?;
        // What the survivor heard since the merge on its own identities stays its latest.
        retouch(conn, survivor, d["last_message"].as_i64().unwrap_or(0))?;
    }
    retouch(conn, absorbed, d["last_message"].as_i64().unwrap_or(0))?;
    mark_undone(conn, m.id, actor, at)?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ContactsUnmerged,
        EventRefs {
            contact: Some(absorbed),
            ..Default::default()
        },
        Some(&serde_json::json!({
            "merge": m.id, "survivor": survivor, "absorbed": absorbed,
            "later_messages": later.len(),
        })),
    )?;
    Ok(Unmerged {
        merge: m.id,
        kind: MergeKind::Contacts,
        target: survivor.0,
        other: absorbed.0,
        later_messages: later.len(),
        kept_changes: kept,
    })
}

/// The custom fields back as they were: the survivor's exactly when nobody edited them since
/// the merge; else only the ones that came from the absorbed contact and are unchanged leave.
fn restore_fields(
    conn: &Connection,
    survivor: ContactId,
    absorbed: ContactId,
    d: &Json,
) -> Result<()> {
    let now = images(
        conn,
        "contact_fields",
        "contact_id = ?1 ORDER BY name",
        survivor.0,
    )?;
    let before = json_images(&d["survivor_fields"]);
    let after = json_images(&d["fields_after"]);
    let name = |f: &Image| {
        f.get("name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if now == after {
        conn.execute(
            "DELETE FROM contact_fields WHERE contact_id = ?1",
            [survivor],
        )?;
        for f in &before {
            insert_image(conn, "contact_fields", f, &[])?;
        }
    } else {
        for f in json_images(&d["absorbed_fields"]) {
            let mut moved = f.clone();
            moved.insert("contact_id".into(), Json::from(survivor.0));
            let came_from_absorbed = !before.iter().any(|b| name(b) == name(&f));
            if came_from_absorbed && now.contains(&moved) {
                conn.execute(
                    "DELETE FROM contact_fields WHERE contact_id = ?1 AND name = ?2",
                    (survivor, name(&f)),
                )?;
            }
        }
    }
    conn.execute(
        "DELETE FROM contact_fields WHERE contact_id = ?1",
        [absorbed],
    )?;
    for f in json_images(&d["absorbed_fields"]) {
        insert_image(conn, "contact_fields", &f, &[])?;
    }
    Ok(())
}

/// Messages newer than the merge, on the survivor, that belong with the absorbed contact: a
/// customer message through one of its identities, or our reply sent to one of them.
fn later_messages(
    conn: &Connection,
    survivor: ContactId,
    absorbed: ContactId,
    last: i64,
) -> Result<Vec<(i64, ConversationId)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.conversation_id FROM messages m
         WHERE m.contact_id = ?1 AND m.id > ?3 AND (
               m.identity_id IN (SELECT id FROM identities WHERE contact_id = ?2)
            OR (m.direction = 'out' AND EXISTS (
                   SELECT 1 FROM outbox o JOIN identities i ON i.value = o.recipient
                   WHERE o.message_id = m.id AND i.contact_id = ?2)))
         ORDER BY m.id",
    )?;
    let rows = stmt.query_map((survivor, absorbed, last), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where a later message of `contact` goes that sits in another contact's conversation `from`:
/// the contact's active conversation, else a new one like `from`.
fn home_for(
    conn: &Connection,
    contact: ContactId,
    from: ConversationId,
    at: Millis,
    actor: &str,
) -> Result<ConversationId> {
    if let Some(c) = super::contacts::active_conversation(conn, contact)? {
        return Ok(c);
    }
    let (channel, subject, team): (crate::model::Channel, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT last_channel, subject, team FROM conversations WHERE id = ?1",
            [from],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
    super::messages::create_conversation(
        conn,
        contact,
        channel,
        subject.as_deref(),
        team.as_deref(),
        at,
        actor,
    )
}

/// A contact's last seen time and channel, moved forward by its customer messages newer than
/// message id `after` (those it received after a merge).
fn retouch(conn: &Connection, contact: ContactId, after: i64) -> Result<()> {
    let newest: Option<(Millis, crate::model::Channel)> = conn
        .prepare_cached(
            "SELECT created_at, channel FROM messages
             WHERE contact_id = ?1 AND id > ?2 AND direction = 'in'
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row((contact, after), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((t, ch)) = newest {
        super::contacts::touch_contact(conn, contact, t, ch)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Conversations

/// Merge conversation `gone` into `keep` by hand (both of one person), recorded and reversible.
pub(crate) fn merge_conversations(
    conn: &Connection,
    keep: ConversationId,
    gone: ConversationId,
    reason: &str,
    actor: &str,
    at: Millis,
) -> Result<i64> {
    if keep == gone {
        return Err(StoreError::Invalid(
            "a conversation cannot be merged into itself".into(),
        ));
    }
    let a = super::conversations::contact_of(conn, keep)?;
    let b = super::conversations::contact_of(conn, gone)?;
    if super::contacts::live_contact(conn, a)? != super::contacts::live_contact(conn, b)? {
        return Err(StoreError::Invalid(format!(
            "conversations #{keep} and #{gone} belong to different contacts: merge the contacts \
             first (:merge), then the conversations"
        )));
    }
    // Keep the older conversation's status decisions, fold like a contact merge does, but
    // without reopening: the kept conversation's status is the agent's.
    let status: (String, Option<Millis>) = conn.query_row(
        "SELECT status, snoozed_until FROM conversations WHERE id = ?1",
        [keep],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut fold = fold_conversation(conn, keep, gone)?;
    conn.execute(
        "UPDATE conversations SET status = ?2, snoozed_until = ?3 WHERE id = ?1",
        (keep, &status.0, status.1),
    )?;
    if let Some(o) = fold.as_object_mut() {
        o.insert(
            "keep_after".into(),
            Json::Object(image(conn, "conversations", keep.0)?.unwrap_or_default()),
        );
    }
    let n = json_ids(&fold["messages"]).len();
    let merge = record(
        conn,
        MergeKind::Conversations,
        keep.0,
        gone.0,
        reason,
        actor,
        at,
        &fold,
    )?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ConversationsMerged,
        EventRefs {
            conversation: Some(keep),
            contact: Some(a),
            ..Default::default()
        },
        Some(
            &serde_json::json!({ "merge": merge, "keep": keep, "gone": gone, "messages": n, "reason": reason }),
        ),
    )?;
    Ok(merge)
}

fn unmerge_conversations(
    conn: &Connection,
    m: &MergeRecord,
    actor: &str,
    at: Millis,
) -> Result<Unmerged> {
    if let Some(later) = later_merge_touching(conn, m.id, &[m.target, m.other], &[])? {
        return Err(StoreError::Invalid(format!(
            "merge #{later} came later and involves these conversations: undo it first"
        )));
    }
    let (gone, changed) = unfold(conn, &m.data)?;
    mark_undone(conn, m.id, actor, at)?;
    let contact = super::conversations::contact_of(conn, gone)?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ConversationsUnmerged,
        EventRefs {
            conversation: Some(gone),
            contact: Some(contact),
            ..Default::default()
        },
        Some(&serde_json::json!({ "merge": m.id, "keep": m.target, "gone": gone })),
    )?;
    Ok(Unmerged {
        merge: m.id,
        kind: MergeKind::Conversations,
        target: m.target,
        other: gone.0,
        later_messages: 0,
        kept_changes: usize::from(changed),
    })
}

/// Split conversation `conv` at `message`: it and every later message become a new
/// conversation of the same contact (open, same team, assignee and tags). Recorded and
/// reversible. Returns (merge id, the new conversation).
pub(crate) fn split_conversation(
    conn: &Connection,
    conv: ConversationId,
    message: crate::model::MessageId,
    actor: &str,
    at: Millis,
) -> Result<(i64, ConversationId)> {
    let (in_conv, created, first): (i64, Millis, i64) = conn
        .query_row(
            "SELECT conversation_id, created_at,
                    (SELECT id FROM messages WHERE conversation_id = ?2 ORDER BY created_at, id LIMIT 1)
             FROM messages WHERE id = ?1",
            (message, conv),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or(StoreError::NoMessage(message.0))?;
    if in_conv != conv.0 {
        return Err(StoreError::Invalid(format!(
            "message #{message} is not in conversation #{conv}"
        )));
    }
    if first == message.0 {
        return Err(StoreError::Invalid(
            "that is the conversation's first message: split at a later one".into(),
        ));
    }
    let before = image(conn, "conversations", conv.0)?.ok_or(StoreError::NoConversation(conv.0))?;
    let moved: Vec<i64> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM messages WHERE conversation_id = ?1
               AND (created_at > ?2 OR (created_at = ?2 AND id >= ?3)) ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map((conv, created, message), |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let (contact, channel, subject, team, assignee): (
        ContactId,
        crate::model::Channel,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = conn.query_row(
        "SELECT m.contact_id, m.channel, c.subject, c.team, c.assignee FROM messages m
         JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1",
        [message],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let new = super::messages::create_conversation(
        conn,
        contact,
        channel,
        subject.as_deref(),
        team.as_deref(),
        created,
        actor,
    )?;
    conn.execute(
        "UPDATE conversations SET assignee = ?2, created_at = ?3 WHERE id = ?1",
        (new, assignee, created),
    )?;
    move_ids(conn, "messages", "conversation_id", &moved, conv.0, new.0)?;
    conn.execute(
        "INSERT OR IGNORE INTO tags(conversation_id, tag) SELECT ?1, tag FROM tags WHERE conversation_id = ?2",
        (new, conv),
    )?;
    recompute_summary(conn, conv)?;
    recompute_summary(conn, new)?;
    let after = image(conn, "conversations", conv.0)?.unwrap_or_default();
    let reason = format!("split at message #{message}");
    let merge = record(
        conn,
        MergeKind::Split,
        conv.0,
        new.0,
        &reason,
        actor,
        at,
        &serde_json::json!({ "before": before, "after": after, "messages": moved }),
    )?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ConversationSplit,
        EventRefs {
            conversation: Some(new),
            contact: Some(contact),
            message: Some(message),
        },
        Some(
            &serde_json::json!({ "merge": merge, "from": conv, "new": new, "messages": moved.len() }),
        ),
    )?;
    Ok((merge, new))
}

fn unsplit(conn: &Connection, m: &MergeRecord, actor: &str, at: Millis) -> Result<Unmerged> {
    if let Some(later) = later_merge_touching(conn, m.id, &[m.target, m.other], &[])? {
        return Err(StoreError::Invalid(format!(
            "merge #{later} came later and involves these conversations: undo it first"
        )));
    }
    let conv = ConversationId(m.target);
    let new = ConversationId(m.other);
    let exists = conn
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
        .exists([new])?;
    if !exists {
        return Err(StoreError::Invalid(format!(
            "conversation #{new} no longer exists: nothing to join back"
        )));
    }
    // Everything in the split-off conversation goes back, later messages too.
    let later = conn.query_row(
        "SELECT count(*) FROM messages WHERE conversation_id = ?1 AND id > ?2",
        (
            new,
            json_ids(&m.data["messages"]).into_iter().max().unwrap_or(0),
        ),
        |r| r.get::<_, i64>(0),
    )?;
    conn.execute(
        "UPDATE messages SET conversation_id = ?1 WHERE conversation_id = ?2",
        (conv, new),
    )?;
    conn.execute(
        "UPDATE events SET conversation_id = ?1 WHERE conversation_id = ?2",
        (conv, new),
    )?;
    conn.execute(
        "UPDATE report_facts SET conversation_id = ?1 WHERE conversation_id = ?2",
        (conv, new),
    )?;
    conn.execute(
        "INSERT OR IGNORE INTO tags(conversation_id, tag) SELECT ?1, tag FROM tags WHERE conversation_id = ?2",
        (conv, new),
    )?;
    conn.execute("DELETE FROM tags WHERE conversation_id = ?1", [new])?;
    conn.execute("DELETE FROM drafts WHERE conversation_id = ?1", [new])?;
    conn.execute("DELETE FROM conversations WHERE id = ?1", [new])?;
    let before = m.data["before"].as_object().cloned().unwrap_or_default();
    let after = m.data["after"].as_object().cloned().unwrap_or_default();
    let now = image(conn, "conversations", conv.0)?.unwrap_or_default();
    let mut kept = 0;
    if same(&now, &after) && later == 0 {
        update_to(conn, "conversations", conv.0, &before, None)?;
    } else {
        kept = 1;
        recompute_summary(conn, conv)?;
    }
    mark_undone(conn, m.id, actor, at)?;
    let contact = super::conversations::contact_of(conn, conv)?;
    events::append(
        conn,
        at,
        actor,
        EventKind::ConversationsUnmerged,
        EventRefs {
            conversation: Some(conv),
            contact: Some(contact),
            ..Default::default()
        },
        Some(&serde_json::json!({ "merge": m.id, "joined": new, "into": conv })),
    )?;
    Ok(Unmerged {
        merge: m.id,
        kind: MergeKind::Split,
        target: conv.0,
        other: new.0,
        later_messages: later as usize,
        kept_changes: kept,
    })
}

// ---------------------------------------------------------------------------------------------
// Provenance

/// The merges that involve a contact (as survivor or absorbed, or through its conversations),
/// newest first.
pub(crate) fn merges_of(
    conn: &Connection,
    contact: ContactId,
    limit: usize,
) -> Result<Vec<MergeRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, target, other, reason, actor, at, data, undone_at, undone_by FROM merges
         WHERE (kind = 'contacts' AND (target = ?1 OR other = ?1))
            OR (kind <> 'contacts' AND (target IN (SELECT id FROM conversations WHERE contact_id = ?1)
                                     OR other IN (SELECT id FROM conversations WHERE contact_id = ?1)))
         ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map((contact, limit as i64), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Millis>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<Millis>>(8)?,
            r.get::<_, Option<String>>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, target, other, reason, actor, at, data, undone_at, undone_by) = row?;
        let Some(kind) = MergeKind::parse(&kind) else {
            continue;
        };
        let d: Json = serde_json::from_str(&data).unwrap_or(Json::Null);
        let count = |k: &str, w: &str| {
            let n = json_ids(&d[k]).len();
            format!("{n} {w}{}", if n == 1 { "" } else { "s" })
        };
        let moved = match kind {
            MergeKind::Contacts => format!(
                "{}, {}, {}{}",
                count("identities", "identity").replace("identitys", "identities"),
                count("conversations", "conversation"),
                count("messages", "message"),
                match d["folds"].as_array().map_or(0, Vec::len) {
                    0 => String::new(),
                    n => format!(", {n} open conversation(s) joined"),
                }
            ),
            MergeKind::Conversations | MergeKind::Split => count("messages", "message"),
        };
        out.push(MergeRow {
            id,
            kind,
            target,
            other,
            reason,
            actor,
            at,
            moved,
            undone: undone_at.map(|t| (t, undone_by.unwrap_or_default())),
        });
    }
    Ok(out)
}

/// The newest merge still in force that involves `contact`: one that absorbed it or absorbed
/// into it, or a join or split of its conversations (what a bare `:unmerge` takes back).
pub(crate) fn latest_contact_merge(conn: &Connection, contact: ContactId) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM merges WHERE undone_at IS NULL
               AND ((kind = 'contacts' AND (other = ?1 OR target = ?1))
                 OR (kind <> 'contacts'
                     AND (target IN (SELECT id FROM conversations WHERE contact_id = ?1)
                       OR other IN (SELECT id FROM conversations WHERE contact_id = ?1))))
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([contact], |r| r.get(0))
        .optional()?)
}

/// The merge record a contact or conversation merge id names, and whether the actor's scope
/// may see the contacts involved (checked by the caller through these).
pub(crate) fn merge_parties(conn: &Connection, id: i64) -> Result<(MergeKind, i64, i64, Millis)> {
    let m = load(conn, id)?;
    Ok((m.kind, m.target, m.other, m.at))
}

// ---------------------------------------------------------------------------------------------
// The store's API

/// What a contact merge would move: the `:merge` preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergePlan {
    pub survivor: super::ContactRow,
    pub absorbed: super::ContactRow,
    /// The absorbed contact's identities (they move; replies still go where each was used).
    pub identities: Vec<super::IdentityRow>,
    pub conversations: i64,
    pub messages: i64,
    pub tags: Vec<String>,
    /// Both have an open conversation: the newer joins the older.
    pub joins_open: bool,
}

impl super::Store {
    fn live_pair(&self, a: ContactId, b: ContactId) -> Result<()> {
        let conn = self.conn();
        for c in [a, b] {
            super::scope::check_contact(conn, c, self.scoped())?;
            let live = super::contacts::live_contact(conn, c)?;
            if live != c {
                return Err(StoreError::Invalid(format!(
                    "contact #{c} was merged into #{live}: use #{live}"
                )));
            }
        }
        if a == b {
            return Err(StoreError::Invalid(
                "a contact cannot be merged with itself".into(),
            ));
        }
        Ok(())
    }

    /// What merging `absorbed` into `survivor` would move.
    pub fn merge_plan(&self, survivor: ContactId, absorbed: ContactId) -> Result<MergePlan> {
        self.live_pair(survivor, absorbed)?;
        let conn = self.conn();
        let count =
            |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [absorbed], |r| r.get(0))?) };
        let open = |c: ContactId| super::contacts::active_conversation(conn, c);
        let tags = {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT t.tag FROM tags t JOIN conversations c ON c.id = t.conversation_id
                 WHERE c.contact_id = ?1 ORDER BY t.tag",
            )?;
            let rows = stmt.query_map([absorbed], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        Ok(MergePlan {
            survivor: self.contact(survivor)?,
            absorbed: self.contact(absorbed)?,
            identities: self.identities(absorbed)?,
            conversations: count("SELECT count(*) FROM conversations WHERE contact_id = ?1")?,
            messages: count("SELECT count(*) FROM messages WHERE contact_id = ?1")?,
            tags,
            joins_open: open(survivor)?.is_some() && open(absorbed)?.is_some(),
        })
    }

    /// Merge `absorbed` into `survivor` by hand (the agent chose the survivor), with the
    /// reason recorded: returns the merge id `:unmerge` takes.
    pub fn merge_contacts_by_hand(
        &mut self,
        survivor: ContactId,
        absorbed: ContactId,
        reason: &str,
        actor: &str,
        at: Millis,
    ) -> Result<i64> {
        self.live_pair(survivor, absorbed)?;
        let reason = crate::sanitize::line(reason);
        self.write_with(|tx| {
            merge_contacts(tx, survivor, absorbed, &reason, actor, at)?
                .ok_or_else(|| StoreError::Invalid("nothing to merge".into()))
        })
    }

    /// Undo a merge: `merge` is a merge id, or with `contact` set the newest merge still in
    /// force that involves that contact.
    pub fn unmerge(
        &mut self,
        merge: Option<i64>,
        contact: Option<ContactId>,
        actor: &str,
        at: Millis,
    ) -> Result<Unmerged> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let id = match (merge, contact) {
                (Some(id), _) => id,
                (None, Some(c)) => latest_contact_merge(tx, c)?.ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "contact #{c} has no merge to undo: `braid contact merges {c}` lists them"
                    ))
                })?,
                (None, None) => {
                    return Err(StoreError::Invalid(
                        "say which merge (an id) or contact".into(),
                    ));
                }
            };
            let (kind, target, _, _) = merge_parties(tx, id)?;
            // The agent must see what they take apart.
            match kind {
                MergeKind::Contacts => super::scope::check_contact(tx, ContactId(target), scoped)?,
                _ => {
                    super::scope::conversation_contact(tx, ConversationId(target), scoped)?;
                }
            }
            undo_merge(tx, id, actor, at)
        })
    }

    /// The merges that involve a contact, newest first.
    pub fn merges(&self, contact: ContactId, limit: usize) -> Result<Vec<MergeRow>> {
        super::scope::check_contact(self.conn(), contact, self.scoped())?;
        merges_of(self.conn(), contact, limit)
    }

    /// Merge conversation `gone` into `keep` (one person's), recorded and reversible.
    pub fn merge_conversations(
        &mut self,
        keep: ConversationId,
        gone: ConversationId,
        actor: &str,
        at: Millis,
    ) -> Result<i64> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            super::scope::conversation_contact(tx, keep, scoped)?;
            super::scope::conversation_contact(tx, gone, scoped)?;
            merge_conversations(tx, keep, gone, &format!("merged by {actor}"), actor, at)
        })
    }

    /// Split a conversation at a message (it and later ones start a new conversation).
    pub fn split_conversation(
        &mut self,
        conv: ConversationId,
        message: crate::model::MessageId,
        actor: &str,
        at: Millis,
    ) -> Result<(i64, ConversationId)> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            super::scope::conversation_contact(tx, conv, scoped)?;
            split_conversation(tx, conv, message, actor, at)
        })
    }

    /// The message N from the end of a conversation (1: the newest), for `:split N`.
    pub fn nth_last_message(
        &self,
        conv: ConversationId,
        n: usize,
    ) -> Result<crate::model::MessageId> {
        super::scope::conversation_contact(self.conn(), conv, self.scoped())?;
        self.conn()
            .prepare_cached(
                "SELECT id FROM messages WHERE conversation_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row((conv, n.saturating_sub(1) as i64), |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Invalid(format!("#{conv} has fewer than {n} messages")))
    }

    /// Take an identity off a contact (it stays on no one; a new message from it starts a new
    /// contact). Audited.
    pub fn remove_identity(
        &mut self,
        contact: ContactId,
        kind: crate::model::IdentityKind,
        value: &str,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            super::scope::check_contact(tx, contact, scoped)?;
            let n = tx.execute(
                "DELETE FROM identities WHERE contact_id = ?1 AND kind = ?2 AND value = ?3",
                (contact, kind, value),
            )?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "contact #{contact} has no {kind} {}",
                    crate::sanitize::line(value)
                )));
            }
            events::append(
                tx,
                at,
                actor,
                EventKind::IdentityRemoved,
                EventRefs {
                    contact: Some(contact),
                    ..Default::default()
                },
                Some(&serde_json::json!({ "kind": kind, "value": value })),
            )?;
            Ok(())
        })
    }

    /// Move an identity to another contact (the inverse of a wrong automatic link). Its
    /// messages stay where they are; new ones go to `to`. Audited.
    pub fn move_identity(
        &mut self,
        kind: crate::model::IdentityKind,
        value: &str,
        to: ContactId,
        actor: &str,
        at: Millis,
    ) -> Result<ContactId> {
        let scoped = self.scoped();
        self.write_with(|tx| {
            let from = super::contacts::find_identity(tx, kind, value)?.ok_or_else(|| {
                StoreError::Invalid(format!(
                    "no contact has {kind} {}",
                    crate::sanitize::line(value)
                ))
            })?;
            super::scope::check_contact(tx, from, scoped)?;
            let to = super::contacts::live_contact(tx, to)?;
            super::scope::check_contact(tx, to, scoped)?;
            if from == to {
                return Err(StoreError::Invalid(format!("contact #{to} already has it")));
            }
            tx.execute(
                "UPDATE identities SET contact_id = ?1 WHERE kind = ?2 AND value = ?3",
                (to, kind, value),
            )?;
            events::append(
                tx,
                at,
                actor,
                EventKind::IdentityMoved,
                EventRefs {
                    contact: Some(to),
                    ..Default::default()
                },
                Some(&serde_json::json!({ "kind": kind, "value": value, "from": from, "to": to })),
            )?;
            Ok(from)
        })
    }
}

#[cfg(test)]
pub(crate) fn tests_columns(conn: &Connection, table: &str) -> Vec<String> {
    columns(conn, table).unwrap_or_default()
}
