//! Campaigns in the store: runs, per-contact enrolments and sends (tables of
//! `V18`).
//!
//! - [`Store::campaign_dry_run`]: who the segment takes, on which channel, who is excluded
//!   and why (consent, no reachable identity, WhatsApp without a template, already enrolled,
//!   unreachable), writing nothing.
//! - [`Store::campaign_start`]: the same decision, recorded: a run, one enrolment per contact
//!   (`active` with `next_at` = enrolment + the first step's delay, or `excluded` with the
//!   reason) and `campaign_started`.
//! - [`Store::campaign_tick`]: the due enrolments of every running run: a contact who wrote
//!   to us since enrolment (any channel) leaves (`left`, reason `replied`, `campaign_left`);
//!   outside the campaign's business hours the step waits for the next opening; consent is
//!   checked, then a slot is taken on the channel's pace (per channel and per chat; daily
//!   caps) and the step is queued through [`super::messages::queue_reply_tx`] (the one
//!   outbound path) with the slot as its send time, recorded in `campaign_sends` with
//!   `campaign_step_sent`. A slot more than [`HORIZON_MS`] ahead waits for a later tick, so a
//!   stop holds back everything not yet queued.
//! - [`Store::campaign_stop`]: ends the running runs (`stopped`, `campaign_stopped`).

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError};
use crate::campaign::{Campaign, CampaignConfig, Pacing, SeenFilter, Segment, Step};
use crate::model::{Channel, ContactId, ConversationId, MessageId, Millis, Purpose};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// How far ahead of now a paced send is queued; a later slot waits for a later tick.
pub const HORIZON_MS: Millis = 10_000;
/// Enrolments looked at per run and tick.
const BATCH: i64 = 500;
const DAY_MS: Millis = 86_400_000;

/// Why a contact is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    pub contact: ContactId,
    pub name: String,
    /// `consent`, `no identity`, `whatsapp template`, `already enrolled`, `unreachable`.
    pub kind: String,
    pub detail: String,
}

/// What a start would do (or did).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    pub campaign: String,
    pub segment: String,
    /// Contacts the segment matches.
    pub matched: usize,
    /// Contacts that would be enrolled, per channel of their first step.
    pub per_channel: Vec<(Channel, usize)>,
    pub excluded: Vec<Exclusion>,
    /// The run a start created (None: a dry run).
    #[serde(default)]
    pub run: Option<i64>,
}

impl DryRun {
    pub fn enrolled(&self) -> usize {
        self.per_channel.iter().map(|(_, n)| n).sum()
    }

    /// Exclusions counted by kind.
    pub fn excluded_by_kind(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for e in &self.excluded {
            match out.iter_mut().find(|(k, _)| *k == e.kind) {
                Some((_, n)) => *n += 1,
                None => out.push((e.kind.clone(), 1)),
            }
        }
        out
    }
}

/// A contact the campaign did not reach, or stopped reaching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignFailure {
    pub contact: ContactId,
    pub name: String,
    /// `excluded`, `failed`.
    pub state: String,
    pub reason: String,
    pub step: usize,
}

/// A campaign's progress over all its runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignStatus {
    pub name: String,
    pub segment: String,
    pub steps: usize,
    pub runs: usize,
    /// A run is going (started, not stopped, enrolments still active).
    pub running: bool,
    pub stopped: bool,
    pub enrolled: usize,
    pub active: usize,
    pub done: usize,
    pub left_replied: usize,
    pub excluded: usize,
    pub failed: usize,
    /// Sends queued per step (index = step).
    pub sent_per_step: Vec<usize>,
    /// The next step due (None: nothing waiting).
    pub next_at: Option<Millis>,
    pub failures: Vec<CampaignFailure>,
}

/// What a step says on a channel (the server renders canned replies and WhatsApp templates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepText {
    pub body: String,
    /// The outbox item's meta (a WhatsApp template: `{"template": ...}`).
    pub meta: Option<String>,
    /// An approved WhatsApp template (may go outside the 24-hour window).
    pub templated: bool,
}

/// Renders a step for a contact on a channel: (campaign, step, channel, variables).
pub type Render<'a> = &'a dyn Fn(
    &Campaign,
    &Step,
    Channel,
    &crate::canned::Vars,
) -> std::result::Result<StepText, String>;

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub sent: usize,
    pub left: usize,
    pub deferred: usize,
    pub failed: usize,
    pub excluded: usize,
}

/// Where a step goes.
struct Target {
    channel: Channel,
    to: String,
}

/// The contacts a segment matches, oldest first.
fn segment_contacts(
    conn: &Connection,
    seg: &Segment,
    now: Millis,
) -> Result<Vec<(ContactId, String)>> {
    use rusqlite::types::Value;
    let mut sql = String::from("SELECT c.id, c.name FROM contacts c WHERE c.merged_into IS NULL");
    let mut args: Vec<Value> = Vec::new();
    for t in &seg.tags {
        args.push(Value::Text(t.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM conversations v JOIN tags t ON t.conversation_id = v.id
               WHERE v.contact_id = c.id AND t.tag = ?{})",
            args.len()
        ));
    }
    for t in &seg.not_tags {
        args.push(Value::Text(t.clone()));
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM conversations v JOIN tags t ON t.conversation_id = v.id
               WHERE v.contact_id = c.id AND t.tag = ?{})",
            args.len()
        ));
    }
    for ch in &seg.channels {
        args.push(Value::Text(ch.identity_kind().as_str().to_string()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM identities i WHERE i.contact_id = c.id AND i.kind = ?{})",
            args.len()
        ));
    }
    if seg.vip {
        sql.push_str(" AND c.vip");
    }
    for s in &seg.seen {
        match s {
            SeenFilter::Within(ms) => {
                args.push(Value::Integer(now - ms));
                sql.push_str(&format!(" AND c.last_seen >= ?{}", args.len()));
            }
            SeenFilter::QuietFor(ms) => {
                args.push(Value::Integer(now - ms));
                sql.push_str(&format!(" AND c.last_seen < ?{}", args.len()));
            }
        }
    }
    sql.push_str(" ORDER BY c.id");
    let rows: Vec<(ContactId, String)> = conn
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if seg.stage.is_none() && seg.fields.is_empty() {
        return Ok(rows);
    }
    let mut out = Vec::new();
    for (id, name) in rows {
        if segment_fields_match(conn, seg, id)? {
            out.push((id, name));
        }
    }
    Ok(out)
}

/// `stage:` and `FIELD:VALUE` terms, through the contact fields' store (case-insensitive).
fn segment_fields_match(conn: &Connection, seg: &Segment, contact: ContactId) -> Result<bool> {
    if let Some(want) = &seg.stage {
        let (stage, _) = super::fields::stage_and_score(conn, contact)?;
        if !stage.is_some_and(|s| s.eq_ignore_ascii_case(want)) {
            return Ok(false);
        }
    }
    for (name, want) in &seg.fields {
        let v = super::fields::contact_field(conn, contact, name)?;
        if !v.is_some_and(|v| v.eq_ignore_ascii_case(want)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The channels to try for a contact, in order: the campaign's list (its order, the
/// contact's last used channel first among them), else every channel that can take it with
/// the contact's last used first.
fn channel_order(conn: &Connection, c: &Campaign, contact: ContactId) -> Result<Vec<Channel>> {
    let last: Option<Channel> = conn
        .prepare_cached("SELECT last_channel FROM contacts WHERE id = ?1")?
        .query_row([contact], |r| r.get(0))
        .optional()?
        .flatten();
    let mut list: Vec<Channel> = if c.channels.is_empty() {
        Channel::ALL
            .iter()
            .copied()
            .filter(|ch| ch.replyable())
            .collect()
    } else {
        c.channels.clone()
    };
    if let Some(l) = last
        && let Some(i) = list.iter().position(|x| *x == l)
    {
        let l = list.remove(i);
        list.insert(0, l);
    }
    Ok(list)
}

/// Whether the last message to `to` on `channel` failed for good (a blocked bot, a dead
/// address): the reason.
fn unreachable(conn: &Connection, channel: Channel, to: &str) -> Result<Option<String>> {
    let last: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT state, last_error FROM outbox WHERE channel = ?1 AND recipient = ?2
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row((channel, to), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match last {
        Some((s, e)) if s == "failed" => Some(format!(
            "the last message on {} failed: {}",
            channel.as_str(),
            crate::sanitize::line(e.as_deref().unwrap_or("unknown error"))
        )),
        _ => None,
    })
}

/// Why a marketing send must not go (None: it may): consent first (kind `consent`, see
/// [`super::consent::outbound_refusal`] with [`Purpose::Marketing`]), then the channel's own
/// rules (a closed window: `unreachable`).
fn refusal(
    conn: &Connection,
    contact: ContactId,
    channel: Channel,
    to: &str,
    templated: bool,
    now: Millis,
) -> Result<Option<(&'static str, String)>> {
    if let Some(w) =
        super::consent::outbound_refusal(conn, contact, channel, to, Purpose::Marketing, now)?
    {
        return Ok(Some(("consent", w)));
    }
    Ok(super::hooks::reply_refusal(
        conn,
        contact,
        channel,
        to,
        templated,
        Purpose::Marketing,
        now,
    )?
    .map(|w| (refusal_kind(&w), w)))
}

fn refusal_kind(why: &str) -> &'static str {
    if why.contains("opted out") || why.contains("consent") {
        "consent"
    } else {
        "unreachable"
    }
}

/// Where `step` goes for `contact`, or why it cannot (kind, detail).
fn target(
    conn: &Connection,
    c: &Campaign,
    step: &Step,
    contact: ContactId,
    now: Millis,
) -> Result<std::result::Result<Target, (String, String)>> {
    let mut first_refusal: Option<(String, String)> = None;
    for ch in channel_order(conn, c, contact)? {
        let Some(to) = super::messages::recipient(conn, contact, ch.identity_kind())? else {
            continue;
        };
        let templated = ch == Channel::WhatsApp;
        let why = if templated && step.whatsapp_template.is_none() {
            Some((
                "whatsapp template".to_string(),
                "WhatsApp outside the 24-hour window takes only an approved template: add \
                 whatsapp_template = \"NAME\" to the step"
                    .to_string(),
            ))
        } else if let Some((kind, w)) = refusal(conn, contact, ch, &to, templated, now)? {
            Some((kind.to_string(), w))
        } else {
            unreachable(conn, ch, &to)?.map(|w| ("unreachable".to_string(), w))
        };
        match why {
            None => return Ok(Ok(Target { channel: ch, to })),
            Some(w) => {
                // Consent refused on one channel refuses marketing everywhere.
                if w.0 == "consent" {
                    return Ok(Err(w));
                }
                if first_refusal.is_none() {
                    first_refusal = Some(w);
                }
            }
        }
    }
    Ok(Err(first_refusal.unwrap_or_else(|| {
        (
            "no identity".to_string(),
            format!(
                "no identity on {}",
                if c.channels.is_empty() {
                    "any channel that can take a message".to_string()
                } else {
                    c.channels
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        )
    })))
}

fn already_enrolled(conn: &Connection, name: &str, contact: ContactId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM campaign_enrolments e JOIN campaign_runs r ON r.id = e.run_id
             WHERE r.name = ?1 AND e.contact_id = ?2 AND e.state <> 'excluded'",
        )?
        .exists((name, contact))?)
}

fn decide(
    conn: &Connection,
    c: &Campaign,
    now: Millis,
) -> Result<(DryRun, Vec<(ContactId, Channel)>)> {
    let mut dr = DryRun {
        campaign: c.name.clone(),
        segment: c.segment_text.clone(),
        ..DryRun::default()
    };
    let mut enrol = Vec::new();
    let Some(step) = c.steps.first() else {
        return Ok((dr, enrol));
    };
    let contacts = segment_contacts(conn, &c.segment, now)?;
    dr.matched = contacts.len();
    for (id, name) in contacts {
        let name = crate::sanitize::line(&name);
        if already_enrolled(conn, &c.name, id)? {
            dr.excluded.push(Exclusion {
                contact: id,
                name,
                kind: "already enrolled".into(),
                detail: format!("an earlier run of '{}' took this contact", c.name),
            });
            continue;
        }
        match target(conn, c, step, id, now)? {
            Ok(t) => {
                match dr.per_channel.iter_mut().find(|(ch, _)| *ch == t.channel) {
                    Some((_, n)) => *n += 1,
                    None => dr.per_channel.push((t.channel, 1)),
                }
                enrol.push((id, t.channel));
            }
            Err((kind, detail)) => dr.excluded.push(Exclusion {
                contact: id,
                name,
                kind,
                detail,
            }),
        }
    }
    Ok((dr, enrol))
}

/// The conversation a campaign message goes in: the contact's latest on the channel, else a
/// new one.
fn conversation_for(
    conn: &Connection,
    contact: ContactId,
    channel: Channel,
    campaign: &str,
    now: Millis,
) -> Result<ConversationId> {
    let found: Option<ConversationId> = conn
        .prepare_cached(
            "SELECT id FROM conversations WHERE contact_id = ?1 AND last_channel = ?2
             ORDER BY last_activity DESC, id DESC LIMIT 1",
        )?
        .query_row((contact, channel), |r| r.get(0))
        .optional()?;
    match found {
        Some(c) => Ok(c),
        None => super::messages::create_conversation(
            conn,
            contact,
            channel,
            Some(campaign),
            None,
            now,
            &crate::campaign::actor(campaign),
        ),
    }
}

/// The first slot at or after `now` the channel's pace (and the chat's) allows, or None
/// when the channel's daily cap is reached today (UTC) — then `Err(next day)`.
fn slot(
    conn: &Connection,
    pacing: &Pacing,
    channel: Channel,
    to: &str,
    now: Millis,
) -> Result<std::result::Result<Millis, Millis>> {
    let last: Option<Millis> = conn
        .prepare_cached("SELECT max(slot_at) FROM campaign_sends WHERE channel = ?1")?
        .query_row([channel], |r| r.get(0))?;
    let last_chat: Option<Millis> = conn
        .prepare_cached(
            "SELECT max(slot_at) FROM campaign_sends WHERE channel = ?1 AND recipient = ?2",
        )?
        .query_row((channel, to), |r| r.get(0))?;
    let mut at = now;
    if let Some(l) = last {
        at = at.max(l + pacing.interval_ms(channel));
    }
    if let Some(l) = last_chat {
        at = at.max(l + pacing.per_chat_every_ms);
    }
    if let Some(cap) = pacing.daily_cap(channel) {
        let day = at - at.rem_euclid(DAY_MS);
        let sent: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM campaign_sends
                 WHERE channel = ?1 AND slot_at >= ?2 AND slot_at < ?3",
            )?
            .query_row((channel, day, day + DAY_MS), |r| r.get(0))?;
        if sent >= i64::from(cap) {
            return Ok(Err(day + DAY_MS));
        }
    }
    Ok(Ok(at))
}

fn set_state(
    conn: &Connection,
    run: i64,
    contact: ContactId,
    state: &str,
    reason: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE campaign_enrolments SET state = ?3, reason = ?4, next_at = NULL
         WHERE run_id = ?1 AND contact_id = ?2",
    )?
    .execute((run, contact, state, reason))?;
    Ok(())
}

fn vars(
    conn: &Connection,
    contact: ContactId,
    conv: ConversationId,
    channel: Channel,
) -> Result<crate::canned::Vars> {
    let name: String = conn
        .prepare_cached("SELECT name FROM contacts WHERE id = ?1")?
        .query_row([contact], |r| r.get(0))?;
    let ids: Vec<(crate::model::IdentityKind, String)> = conn
        .prepare_cached("SELECT kind, value FROM identities WHERE contact_id = ?1 ORDER BY id")?
        .query_map([contact], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(crate::canned::Vars::new(
        &name,
        &ids,
        "",
        conv,
        Some(channel),
    ))
}

/// One due enrolment: leave, wait, exclude, fail or send.
#[allow(clippy::too_many_arguments)]
fn step_due(
    conn: &Connection,
    c: &Campaign,
    pacing: &Pacing,
    hours: Option<&crate::sla::Hours>,
    render: Render<'_>,
    run: i64,
    contact: ContactId,
    step_no: usize,
    enrolled_at: Millis,
    now: Millis,
    rep: &mut TickReport,
    full: &mut Vec<Channel>,
) -> Result<()> {
    let actor = crate::campaign::actor(&c.name);
    let replied = conn
        .prepare_cached(
            "SELECT 1 FROM messages WHERE contact_id = ?1 AND direction = 'in' AND created_at > ?2",
        )?
        .exists((contact, enrolled_at))?;
    if replied {
        set_state(conn, run, contact, "left", Some("replied"))?;
        events::append(
            conn,
            now,
            &actor,
            EventKind::CampaignLeft,
            EventRefs {
                conversation: None,
                contact: Some(contact),
                message: None,
            },
            Some(
                &serde_json::json!({"campaign": c.name, "run": run, "reason": "replied", "step": step_no}),
            ),
        )?;
        rep.left += 1;
        return Ok(());
    }
    if let Some(h) = hours
        && !h.is_open(now)
    {
        let next = h.next_open(now).unwrap_or(now + DAY_MS);
        conn.prepare_cached(
            "UPDATE campaign_enrolments SET next_at = ?3 WHERE run_id = ?1 AND contact_id = ?2",
        )?
        .execute((run, contact, next))?;
        rep.deferred += 1;
        return Ok(());
    }
    let Some(step) = c.steps.get(step_no) else {
        set_state(conn, run, contact, "done", None)?;
        return Ok(());
    };
    let t = match target(conn, c, step, contact, now)? {
        Ok(t) => t,
        Err((kind, detail)) => {
            let state = if kind == "consent" {
                "excluded"
            } else {
                "failed"
            };
            set_state(
                conn,
                run,
                contact,
                state,
                Some(&format!("{kind}: {detail}")),
            )?;
            if state == "excluded" {
                rep.excluded += 1;
            } else {
                rep.failed += 1;
            }
            return Ok(());
        }
    };
    if full.contains(&t.channel) {
        return Ok(());
    }
    let at = match slot(conn, pacing, t.channel, &t.to, now)? {
        Ok(at) if at > now + HORIZON_MS => {
            full.push(t.channel);
            return Ok(());
        }
        Ok(at) => at,
        Err(next_day) => {
            conn.prepare_cached(
                "UPDATE campaign_enrolments SET next_at = ?3 WHERE run_id = ?1 AND contact_id = ?2",
            )?
            .execute((run, contact, next_day))?;
            rep.deferred += 1;
            return Ok(());
        }
    };
    let conv = conversation_for(conn, contact, t.channel, &c.name, now)?;
    let text = match render(c, step, t.channel, &vars(conn, contact, conv, t.channel)?) {
        Ok(x) => x,
        Err(why) => {
            set_state(conn, run, contact, "failed", Some(&format!("text: {why}")))?;
            rep.failed += 1;
            return Ok(());
        }
    };
    let queued = super::messages::queue_reply_tx(
        conn,
        conv,
        contact,
        t.channel,
        &actor,
        &text.body,
        now,
        text.meta.as_deref(),
        text.templated,
        Some(at),
        Purpose::Marketing,
    );
    let message: MessageId = match queued {
        Ok(m) => m,
        Err(StoreError::Invalid(why)) => {
            let kind = refusal_kind(&why);
            let state = if kind == "consent" {
                "excluded"
            } else {
                "failed"
            };
            set_state(conn, run, contact, state, Some(&format!("{kind}: {why}")))?;
            if state == "excluded" {
                rep.excluded += 1;
            } else {
                rep.failed += 1;
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    conn.prepare_cached(
        "INSERT INTO campaign_sends(run_id, contact_id, step, channel, recipient, message_id,
            slot_at, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute((
        run,
        contact,
        step_no as i64,
        t.channel,
        &t.to,
        message,
        at,
        now,
    ))?;
    match c.steps.get(step_no + 1) {
        Some(next) => {
            conn.prepare_cached(
                "UPDATE campaign_enrolments SET step = ?3, next_at = ?4, channel = ?5
                 WHERE run_id = ?1 AND contact_id = ?2",
            )?
            .execute((
                run,
                contact,
                (step_no + 1) as i64,
                (enrolled_at + next.after_ms).max(now),
                t.channel,
            ))?;
        }
        None => {
            conn.prepare_cached(
                "UPDATE campaign_enrolments SET step = ?3, next_at = NULL, state = 'done',
                    channel = ?4
                 WHERE run_id = ?1 AND contact_id = ?2",
            )?
            .execute((run, contact, (step_no + 1) as i64, t.channel))?;
        }
    }
    events::append(
        conn,
        now,
        &actor,
        EventKind::CampaignStepSent,
        EventRefs {
            conversation: Some(conv),
            contact: Some(contact),
            message: Some(message),
        },
        Some(&serde_json::json!({
            "campaign": c.name, "run": run, "step": step_no, "channel": t.channel, "slot_at": at
        })),
    )?;
    rep.sent += 1;
    Ok(())
}

impl Store {
    /// Who a start would enrol, on which channels, and who is excluded and why. Writes
    /// nothing.
    pub fn campaign_dry_run(&self, c: &Campaign, now: Millis) -> Result<DryRun> {
        Ok(decide(self.conn(), c, now)?.0)
    }

    /// Start a run: enrol what [`Store::campaign_dry_run`] says (excluded contacts are kept
    /// with their reason), `campaign_started`.
    pub fn campaign_start(&mut self, c: &Campaign, actor: &str, now: Millis) -> Result<DryRun> {
        self.write_with(|tx| {
            let (mut dr, enrol) = decide(tx, c, now)?;
            tx.execute(
                "INSERT INTO campaign_runs(name, started_at, started_by) VALUES (?1, ?2, ?3)",
                (&c.name, now, actor),
            )?;
            let run = tx.last_insert_rowid();
            let first = c.steps.first().map(|s| s.after_ms).unwrap_or(0);
            for (contact, channel) in &enrol {
                tx.prepare_cached(
                    "INSERT INTO campaign_enrolments(run_id, contact_id, channel, step, next_at,
                        state, enrolled_at)
                     VALUES (?1, ?2, ?3, 0, ?4, 'active', ?5)",
                )?
                .execute((run, contact, channel, now + first, now))?;
            }
            for e in &dr.excluded {
                if e.kind == "already enrolled" {
                    continue;
                }
                tx.prepare_cached(
                    "INSERT INTO campaign_enrolments(run_id, contact_id, step, state, reason,
                        enrolled_at)
                     VALUES (?1, ?2, 0, 'excluded', ?3, ?4)",
                )?
                .execute((
                    run,
                    e.contact,
                    format!("{}: {}", e.kind, e.detail),
                    now,
                ))?;
            }
            events::append(
                tx,
                now,
                actor,
                EventKind::CampaignStarted,
                EventRefs::default(),
                Some(&serde_json::json!({
                    "campaign": c.name, "run": run, "enrolled": enrol.len(),
                    "excluded": dr.excluded.len(), "segment": c.segment_text,
                })),
            )?;
            dr.run = Some(run);
            Ok(dr)
        })
    }

    /// Stop every running run of `name`: no step not yet queued goes. Returns how many
    /// enrolments were still active (0 and no event when nothing was running).
    pub fn campaign_stop(&mut self, name: &str, actor: &str, now: Millis) -> Result<usize> {
        self.write_with(|tx| {
            let runs: Vec<i64> = tx
                .prepare_cached(
                    "SELECT id FROM campaign_runs WHERE name = ?1 AND stopped_at IS NULL",
                )?
                .query_map([name], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if runs.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "campaign '{}' is not running: braid campaign status {} shows what it did",
                    crate::sanitize::line(name),
                    crate::sanitize::line(name)
                )));
            }
            let mut active = 0;
            for run in &runs {
                active += tx
                    .prepare_cached(
                        "UPDATE campaign_enrolments SET state = 'stopped', next_at = NULL
                         WHERE run_id = ?1 AND state = 'active'",
                    )?
                    .execute([run])?;
                tx.prepare_cached(
                    "UPDATE campaign_runs SET stopped_at = ?2, stopped_by = ?3 WHERE id = ?1",
                )?
                .execute((run, now, actor))?;
                events::append(
                    tx,
                    now,
                    actor,
                    EventKind::CampaignStopped,
                    EventRefs::default(),
                    Some(&serde_json::json!({"campaign": name, "run": run})),
                )?;
            }
            Ok(active)
        })
    }

    /// Walk the due enrolments of every running run (see the module doc). Runs of campaigns
    /// no longer in the config wait.
    pub fn campaign_tick(
        &mut self,
        cfg: &CampaignConfig,
        sla: &crate::sla::SlaConfig,
        render: Render<'_>,
        now: Millis,
    ) -> Result<TickReport> {
        self.write_with(|tx| {
            let runs: Vec<(i64, String)> = tx
                .prepare_cached(
                    "SELECT id, name FROM campaign_runs WHERE stopped_at IS NULL ORDER BY id",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut rep = TickReport::default();
            let mut full: Vec<Channel> = Vec::new();
            for (run, name) in runs {
                let Some(c) = cfg.get(&name) else { continue };
                let hours = c.hours.as_deref().and_then(|h| sla.hours_named(h));
                let due: Vec<(ContactId, i64, Millis)> = tx
                    .prepare_cached(
                        "SELECT contact_id, step, enrolled_at FROM campaign_enrolments
                         INDEXED BY campaign_due
                         WHERE state = 'active' AND next_at <= ?1 AND run_id = ?2
                         ORDER BY next_at, contact_id LIMIT ?3",
                    )?
                    .query_map((now, run, BATCH), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (contact, step, enrolled_at) in due {
                    step_due(
                        tx,
                        c,
                        &cfg.pacing,
                        hours,
                        render,
                        run,
                        contact,
                        step as usize,
                        enrolled_at,
                        now,
                        &mut rep,
                        &mut full,
                    )?;
                }
            }
            Ok(rep)
        })
    }

    /// A campaign's progress over its runs (failures: the newest 200 excluded or failed).
    pub fn campaign_status(&self, c: &Campaign) -> Result<CampaignStatus> {
        let conn = self.conn();
        let mut st = CampaignStatus {
            name: c.name.clone(),
            segment: c.segment_text.clone(),
            steps: c.steps.len(),
            sent_per_step: vec![0; c.steps.len()],
            ..CampaignStatus::default()
        };
        let (runs, open): (i64, i64) = conn.query_row(
            "SELECT count(*), count(*) FILTER (WHERE stopped_at IS NULL) FROM campaign_runs
             WHERE name = ?1",
            [&c.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        st.runs = runs as usize;
        let mut stmt = conn.prepare_cached(
            "SELECT e.state, e.reason, count(*) FROM campaign_enrolments e
             JOIN campaign_runs r ON r.id = e.run_id WHERE r.name = ?1
             GROUP BY e.state, e.reason = 'replied'",
        )?;
        let rows: Vec<(String, Option<String>, i64)> = stmt
            .query_map([&c.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (state, reason, n) in rows {
            let n = n as usize;
            if state != "excluded" {
                st.enrolled += n;
            }
            match state.as_str() {
                "active" => st.active += n,
                "done" => st.done += n,
                "left" if reason.as_deref() == Some("replied") => st.left_replied += n,
                "excluded" => st.excluded += n,
                "failed" => st.failed += n,
                "stopped" => st.stopped = true,
                _ => {}
            }
        }
        st.running = open > 0 && st.active > 0;
        if runs > 0 && open == 0 {
            st.stopped = true;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT s.step, count(*) FROM campaign_sends s JOIN campaign_runs r ON r.id = s.run_id
             WHERE r.name = ?1 GROUP BY s.step",
        )?;
        for row in stmt.query_map([&c.name], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (step, n) = row?;
            if let Some(x) = st.sent_per_step.get_mut(step as usize) {
                *x = n as usize;
            }
        }
        st.next_at = conn.query_row(
            "SELECT min(e.next_at) FROM campaign_enrolments e JOIN campaign_runs r ON r.id = e.run_id
             WHERE r.name = ?1 AND e.state = 'active' AND r.stopped_at IS NULL",
            [&c.name],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT e.contact_id, coalesce(c.name, ''), e.state, coalesce(e.reason, ''), e.step
             FROM campaign_enrolments e JOIN campaign_runs r ON r.id = e.run_id
             LEFT JOIN contacts c ON c.id = e.contact_id
             WHERE r.name = ?1 AND e.state IN ('excluded', 'failed')
             ORDER BY r.id DESC, e.contact_id LIMIT 200",
        )?;
        st.failures = stmt
            .query_map([&c.name], |r| {
                Ok(CampaignFailure {
                    contact: r.get(0)?,
                    name: crate::sanitize::line(&r.get::<_, String>(1)?),
                    state: r.get(2)?,
                    reason: crate::sanitize::line(&r.get::<_, String>(3)?),
                    step: r.get::<_, i64>(4)? as usize,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(st)
    }

    /// The send times (slots) of a campaign's queued steps on a channel, oldest first: what
    /// the pace allowed (for tests and the benchmark).
    pub fn campaign_slots(&self, name: &str, channel: Channel) -> Result<Vec<(String, Millis)>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT s.recipient, s.slot_at FROM campaign_sends s
                 JOIN campaign_runs r ON r.id = s.run_id
                 WHERE r.name = ?1 AND s.channel = ?2 ORDER BY s.slot_at, s.id",
            )?
            .query_map((name, channel), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }
}
