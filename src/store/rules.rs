//! The store's side of the workflow rules: the facts a rule's conditions look at, applying a
//! matched rule's actions in one transaction (audited as `rule:ID`, exactly once per rule and
//! cause), the derivation cursor over the events table, and the candidates of the
//! time-based rules.

use super::events::{self, EventKind, EventRefs};
use super::{Result, Store, StoreError};
use crate::model::{
    Channel, ContactId, ConversationId, EventId, MessageId, Millis, Priority, Status,
};
use crate::rules::Facts;
use rusqlite::{Connection, OptionalExtension};

/// The `derivations` row of the rules.
const CURSOR: &str = "rules";

/// One change a matched rule makes, resolved (an agent picked, a template rendered).
#[derive(Clone)]
pub enum RuleOp {
    Assign(Option<String>),
    Team(Option<String>),
    Priority(Priority),
    Tag(String),
    Untag(String),
    /// Snooze until this time.
    Snooze(Millis),
    Status(Status),
    Vip(bool),
    Note(String),
    Reply {
        channel: Channel,
        body: String,
        meta: Option<serde_json::Value>,
    },
    /// Remember that a rule gave `agent` a conversation of `team` (round robin).
    Rotate {
        team: String,
        agent: String,
    },
    /// Notify an agent (derived into their notifications from the `rule_matched` event).
    Notify {
        agent: String,
        message: String,
    },
    /// Anything done by another module inside the same transaction (an SLA, a task): a name
    /// for the audit and a function.
    Other {
        what: String,
        run: OtherOp,
    },
}

/// An action another module applies inside the rule's transaction.
pub type OtherOp = std::sync::Arc<
    dyn Fn(&super::Tx<'_>, ConversationId, &str, Millis) -> Result<()> + Send + Sync,
>;

/// A matched rule, ready to apply.
pub struct RuleApply<'a> {
    pub rule: &'a str,
    pub name: &'a str,
    pub trigger: &'a str,
    pub conversation: ConversationId,
    /// The event that triggered it (event rules), for exactly-once and the audit.
    pub cause: Option<EventId>,
    /// The time-based episode it fired for (`waiting_since`, `last_reply_at`).
    pub episode: Option<Millis>,
    pub why: String,
    pub ops: Vec<RuleOp>,
    pub at: Millis,
}

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// False: this rule had already fired for this cause (a replay after a crash).
    pub fired: bool,
    pub done: Vec<String>,
    /// Actions that could not be done, with why (the others still were).
    pub failed: Vec<String>,
}

fn fired_key(a: &RuleApply<'_>) -> i64 {
    // Event ids and episode times share the key column: event ids are stored negative.
    match (a.cause, a.episode) {
        (_, Some(t)) => t,
        (Some(e), None) => -e.0,
        (None, None) => i64::MIN,
    }
}

impl Store {
    /// The facts a rule's conditions look at for a conversation: `message` is the one that
    /// triggered it (None: the newest customer message). Business hours are the caller's.
    pub fn rule_facts(
        &self,
        conv: ConversationId,
        message: Option<MessageId>,
        now: Millis,
    ) -> Result<Facts> {
        rule_facts(self.conn(), conv, message, now)
    }

    /// Where the rules derivation stands (None: it never ran; it starts at the newest event).
    pub fn rules_cursor(&self) -> Result<Option<EventId>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT last_event FROM derivations WHERE name = ?1")?
            .query_row([CURSOR], |r| r.get(0))
            .optional()?)
    }

    pub fn set_rules_cursor(&mut self, to: EventId) -> Result<()> {
        self.write_with(|tx| {
            tx.prepare_cached(
                "INSERT INTO derivations(name, last_event) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET last_event = max(last_event, excluded.last_event)",
            )?
            .execute((CURSOR, to))?;
            Ok(())
        })
    }

    /// Apply a matched rule: its `rule_matched` event and every action, in one transaction,
    /// once per (rule, conversation, cause). An action that fails (a reply the channel's rules
    /// refuse) is recorded and skipped; the others are done.
    pub fn apply_rule(&mut self, a: &RuleApply<'_>) -> Result<Applied> {
        let actor = format!("rule:{}", a.rule);
        let key = fired_key(a);
        self.in_one_transaction(|s| -> Result<Applied> {
            let fresh = s.write_with(|c| {
                Ok(c.prepare_cached(
                    "INSERT OR IGNORE INTO rule_fired(rule, conversation_id, key, at)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute((a.rule, a.conversation, key, a.at))?)
            })?;
            if fresh == 0 {
                return Ok(Applied::default());
            }
            let contact = super::conversations::contact_of(s.conn(), a.conversation)?;
            let mut done = Vec::new();
            let mut failed = Vec::new();
            let mut notify = Vec::new();
            for op in &a.ops {
                if let RuleOp::Notify { agent, message } = op {
                    notify.push(serde_json::json!({ "agent": agent, "message": message }));
                    done.push(format!("notify {agent}"));
                    continue;
                }
                // Each verb is a savepoint of this transaction: one that fails leaves
                // nothing behind and the others stand.
                match apply_op(s, a.conversation, contact, op, &actor, a.at) {
                    Ok(Some(d)) => done.push(d),
                    Ok(None) => {}
                    Err(e) => failed.push(format!("{}: {e}", op_label(op))),
                }
            }
            // The match itself, last: its event carries what was done (and whom to notify).
            s.write_with(|c| {
                events::append(
                    c,
                    a.at,
                    &actor,
                    EventKind::RuleMatched,
                    EventRefs {
                        conversation: Some(a.conversation),
                        contact: Some(contact),
                        message: None,
                    },
                    Some(&serde_json::json!({
                        "rule": a.rule,
                        "name": a.name,
                        "on": a.trigger,
                        "cause": a.cause,
                        "why": a.why,
                        "done": done,
                        "failed": failed,
                        "notify": notify,
                    })),
                )
            })?;
            Ok(Applied {
                fired: true,
                done,
                failed,
            })
        })
    }

    /// Record that a time-based rule was evaluated for this episode without matching, so the
    /// sweep does not ask again.
    pub fn rule_skipped(
        &mut self,
        rule: &str,
        conv: ConversationId,
        episode: Millis,
        at: Millis,
    ) -> Result<()> {
        self.write_with(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO rule_fired(rule, conversation_id, key, at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute((rule, conv, episode, at))?;
            Ok(())
        })
    }

    /// Conversations a time-based rule is due for: open or pending, waiting on us since at
    /// least `after` ago (`on_us`), or waiting on the customer (we replied last) since then;
    /// not yet evaluated for this episode. Returns (conversation, episode), oldest first.
    pub fn timed_candidates(
        &self,
        rule: &str,
        on_us: bool,
        after: i64,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<(ConversationId, Millis)>> {
        let sql = if on_us {
            "SELECT c.id, c.waiting_since FROM conversations c
             WHERE c.waiting_since IS NOT NULL AND c.waiting_since <= ?2
               AND c.status IN ('open', 'pending')
               AND NOT EXISTS (SELECT 1 FROM rule_fired f WHERE f.rule = ?1
                               AND f.conversation_id = c.id AND f.key = c.waiting_since)
             ORDER BY c.waiting_since LIMIT ?3"
        } else {
            "SELECT c.id, c.last_reply_at FROM conversations c
             WHERE c.waiting_since IS NULL AND c.last_reply_at IS NOT NULL
               AND c.last_reply_at <= ?2 AND c.status IN ('open', 'pending')
               AND NOT EXISTS (SELECT 1 FROM rule_fired f WHERE f.rule = ?1
                               AND f.conversation_id = c.id AND f.key = c.last_reply_at)
             ORDER BY c.last_reply_at LIMIT ?3"
        };
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map((rule, now - after, limit as i64), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Benchmarks only: every conversation open and waiting on us since `at` (it breaks the
    /// one-active-conversation-per-contact rule; never on a real store). Returns how many.
    #[doc(hidden)]
    pub fn bench_make_waiting(&mut self, at: Millis) -> Result<usize> {
        self.write_with(|tx| {
            Ok(tx.execute(
                "UPDATE conversations SET status = 'open', snoozed_until = NULL,
                    resolved_at = NULL, waiting_since = ?1",
                [at],
            )?)
        })
    }

    /// How many times each rule matched since `since` (its `rule_matched` events).
    pub fn rule_match_counts(&self, rules: &[&str], since: Millis) -> Result<Vec<i64>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT count(*) FROM events
             WHERE actor = ?1 AND kind = 'rule_matched' AND at >= ?2",
        )?;
        rules
            .iter()
            .map(|r| Ok(stmt.query_row((format!("rule:{r}"), since), |row| row.get::<_, i64>(0))?))
            .collect()
    }

    /// Pick an agent of `candidates` (the team's members online) for a new conversation:
    /// the one a rule gave a conversation of this team least recently (round robin, kept in
    /// `rule_rotation`, across restarts) or the one with the fewest open conversations
    /// (least open). Ties go to the order given.
    pub fn pick_agent(
        &self,
        team: &str,
        candidates: &[String],
        least_open: bool,
    ) -> Result<Option<String>> {
        let mut best: Option<(i64, &String)> = None;
        for name in candidates {
            let score: i64 = if least_open {
                self.conn()
                    .prepare_cached(
                        "SELECT count(*) FROM conversations
                         WHERE assignee = ?1 AND status IN ('open', 'pending')",
                    )?
                    .query_row([name], |r| r.get(0))?
            } else {
                self.conn()
                    .prepare_cached(
                        "SELECT coalesce((SELECT last_at FROM rule_rotation
                                          WHERE team = ?1 AND agent = ?2), 0)",
                    )?
                    .query_row((team, name), |r| r.get(0))?
            };
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, name));
            }
        }
        Ok(best.map(|(_, n)| n.clone()))
    }
}

fn op_label(op: &RuleOp) -> String {
    match op {
        RuleOp::Assign(_) => "assign".into(),
        RuleOp::Team(_) => "team".into(),
        RuleOp::Priority(_) => "priority".into(),
        RuleOp::Tag(_) => "tag".into(),
        RuleOp::Untag(_) => "untag".into(),
        RuleOp::Snooze(_) => "snooze".into(),
        RuleOp::Status(_) => "status".into(),
        RuleOp::Vip(_) => "vip".into(),
        RuleOp::Note(_) => "note".into(),
        RuleOp::Reply { channel, .. } => format!("reply on {}", channel.as_str()),
        RuleOp::Notify { .. } => "notify".into(),
        RuleOp::Rotate { .. } => "round robin".into(),
        RuleOp::Other { what, .. } => what.clone(),
    }
}

/// One action inside the rule's transaction, through the store's own verbs (the same rows,
/// events and checks as an agent's change): what it did (None: nothing to change).
fn apply_op(
    s: &mut Store,
    conv: ConversationId,
    contact: ContactId,
    op: &RuleOp,
    actor: &str,
    at: Millis,
) -> Result<Option<String>> {
    let (status, priority, assignee, team, vip): (
        Status,
        Priority,
        Option<String>,
        Option<String>,
        bool,
    ) = s
        .conn()
        .prepare_cached(
            "SELECT c.status, c.priority, c.assignee, c.team, ct.vip
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = ?1",
        )?
        .query_row([conv], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    Ok(match op {
        RuleOp::Assign(a) => {
            if assignee == *a {
                return Ok(None);
            }
            s.assign(conv, a.as_deref(), actor, at)?;
            Some(match a {
                Some(a) => format!("assigned to {a}"),
                None => "unassigned".into(),
            })
        }
        RuleOp::Team(t) => {
            if team == *t {
                return Ok(None);
            }
            s.set_conversation_team(conv, t.as_deref(), actor, at)?;
            Some(match t {
                Some(t) => format!("moved to team {t}"),
                None => "taken out of its team".into(),
            })
        }
        RuleOp::Priority(p) => {
            if priority == *p {
                return Ok(None);
            }
            s.set_priority(conv, *p, actor, at)?;
            Some(format!("priority {}", p.as_str()))
        }
        RuleOp::Tag(t) | RuleOp::Untag(t) => {
            let remove = matches!(op, RuleOp::Untag(_));
            if s.conversation_tags(conv)?.contains(t) != remove {
                return Ok(None);
            }
            s.tag(conv, t, remove, actor, at)?;
            Some(format!(
                "{} {t}",
                if remove { "untagged" } else { "tagged" }
            ))
        }
        RuleOp::Snooze(until) => {
            if status == Status::Resolved {
                return Err(StoreError::Invalid(
                    "a resolved conversation is not snoozed".into(),
                ));
            }
            s.set_status(conv, Status::Snoozed, Some(*until), actor, at)?;
            Some("snoozed".into())
        }
        RuleOp::Status(st) => {
            if status == *st {
                return Ok(None);
            }
            s.set_status(conv, *st, None, actor, at)?;
            Some(format!("set {}", st.as_str()))
        }
        RuleOp::Vip(v) => {
            if vip == *v {
                return Ok(None);
            }
            s.set_vip(contact, *v, actor, at)?;
            Some(if *v { "marked VIP" } else { "unmarked VIP" }.into())
        }
        RuleOp::Note(text) => {
            s.add_note(conv, actor, text, at)?;
            Some("added a note".into())
        }
        RuleOp::Reply {
            channel,
            body,
            meta,
        } => {
            let body = crate::sanitize::text(body);
            let body = body.trim_end();
            if body.trim().is_empty() {
                return Err(StoreError::Invalid("empty reply".into()));
            }
            let meta_text = meta.as_ref().map(|m| m.to_string());
            let templated = meta.as_ref().is_some_and(|m| m.get("template").is_some());
            s.write_with(|c| {
                super::messages::queue_reply_tx(
                    c,
                    conv,
                    contact,
                    *channel,
                    actor,
                    body,
                    at,
                    meta_text.as_deref(),
                    templated,
                    None,
                    crate::model::Purpose::Transactional,
                )
            })?;
            Some(format!("replied on {}", channel.as_str()))
        }
        RuleOp::Notify { agent, .. } => Some(format!("notify {agent}")),
        RuleOp::Rotate { team, agent } => {
            // A turn counter per team (not a time: two turns in one millisecond would tie).
            s.write_with(|c| {
                c.prepare_cached(
                    "INSERT INTO rule_rotation(team, agent, last_at)
                     VALUES (?1, ?2, (SELECT coalesce(max(last_at), 0) + 1 FROM rule_rotation
                                      WHERE team = ?1))
                     ON CONFLICT(team, agent) DO UPDATE SET last_at = excluded.last_at",
                )?
                .execute((team, agent))?;
                Ok(())
            })?;
            None
        }
        RuleOp::Other { what, run } => {
            let tx = s.write()?;
            run(&tx, conv, actor, at)?;
            tx.commit()?;
            Some(what.clone())
        }
    })
}

pub(crate) fn rule_facts(
    conn: &Connection,
    conv: ConversationId,
    message: Option<MessageId>,
    now: Millis,
) -> Result<Facts> {
    #[allow(clippy::type_complexity)]
    let (
        contact,
        status,
        priority,
        assignee,
        team,
        last_channel,
        waiting,
        replied,
        created,
        name,
        vip,
    ): (
        ContactId,
        Status,
        Priority,
        Option<String>,
        Option<String>,
        Channel,
        Option<Millis>,
        Option<Millis>,
        Millis,
        String,
        bool,
    ) = conn
        .prepare_cached(
            "SELECT c.contact_id, c.status, c.priority, c.assignee, c.team, c.last_channel,
                    c.waiting_since, c.last_reply_at, c.created_at, ct.name, ct.vip
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = ?1",
        )?
        .query_row([conv], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .optional()?
        .ok_or(StoreError::NoConversation(conv.0))?;
    let msg: Option<(Channel, String, Option<String>, String)> = match message {
        Some(m) => conn
            .prepare_cached(
                "SELECT channel, account, subject, body FROM messages
                 WHERE id = ?1 AND conversation_id = ?2",
            )?
            .query_row((m, conv), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?,
        None => conn
            .prepare_cached(
                "SELECT channel, account, subject, body FROM messages
                 WHERE conversation_id = ?1 AND direction = 'in'
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )?
            .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?,
    };
    let (channel, account, text) = match msg {
        Some((c, a, s, b)) => (
            c,
            a,
            match s {
                Some(s) => format!("{s}\n{b}"),
                None => b,
            },
        ),
        None => (last_channel, String::new(), String::new()),
    };
    let tags: Vec<String> = {
        let mut stmt =
            conn.prepare_cached("SELECT tag FROM tags WHERE conversation_id = ?1 ORDER BY tag")?;
        stmt.query_map([conv], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let emails: Vec<String> = {
        let mut stmt = conn.prepare_cached(
            "SELECT value FROM identities WHERE contact_id = ?1 AND kind = 'email' ORDER BY id",
        )?;
        stmt.query_map([contact], |r| r.get::<_, String>(0))?
            .map(|r| r.map(|s| s.to_lowercase()))
            .collect::<rusqlite::Result<_>>()?
    };
    let earlier: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM conversations WHERE contact_id = ?1 AND created_at < ?2",
        )?
        .query_row((contact, created), |r| r.get(0))?;
    let (stage, score) = super::fields::stage_and_score(conn, contact)?;
    let fields: Vec<(String, String)> = super::fields::contact_fields(conn, contact)?
        .into_iter()
        .map(|v| (v.name, v.value))
        .collect();
    let csat: Option<i64> = conn
        .prepare_cached("SELECT score FROM csat WHERE conversation_id = ?1")?
        .query_row([conv], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(Facts {
        conversation: Some(conv),
        channel,
        account,
        team,
        status,
        priority,
        assignee,
        vip,
        tags,
        contact_name: name,
        emails,
        text,
        earlier_conversations: earlier,
        last_reply_at: replied,
        waiting_since: waiting,
        business_hours: None,
        csat,
        stage,
        score,
        fields,
        now,
    })
}
