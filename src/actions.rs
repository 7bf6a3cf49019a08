//! The workflow verbs on a conversation, carried out against the store in one place. The TUI
//! (its keys and `:` commands, through [`crate::tui::data`]) and the CLI (`braid assign`,
//! `braid resolve`, ...) both turn an [`Action`] into a [`Verb`] with [`Verb::from_action`]
//! and run it with [`apply`]: the CLI is not a second implementation of a verb.

use crate::model::{ConversationId, IdentityKind, Millis, Priority, Status};
use crate::store::{MergePreview, OwnerCheck, Store};
use crate::tui::action::Action;

/// A change to a conversation (or its contact) an agent asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verb {
    /// None: unassign.
    Assign(Option<String>),
    /// `snoozed_until` with `Snoozed` only.
    Status(Status, Option<Millis>),
    Priority(Priority),
    Tag(String),
    Untag(String),
    /// Mark (true) or unmark the contact as VIP.
    Vip(bool),
    Retry,
    /// Add an identity to the contact. When someone else has it the two contacts merge, which
    /// happens only with `merge: true` (the agent saw [`Outcome::Confirm`] and said yes).
    IdentityAdd {
        kind: IdentityKind,
        value: String,
        merge: bool,
    },
    /// Move the conversation to a team (None: out of every team), audited `team_changed`; the
    /// assignee stays. `a billing` / `braid assign 12 billing` when billing is a team of the
    /// workspace and no agent's name (see [`Verb::resolve_names`]).
    Team(Option<String>),
    /// Assign (None: unassign), saying what to do when someone else owns the conversation,
    /// optionally with an internal note written in the same transaction (`:handoff`, `braid
    /// handoff`). [`Verb::Assign`] is this with [`Owner::Ask`] and no note.
    Reassign {
        to: Option<String>,
        owner: Owner,
        note: Option<String>,
    },
    /// Link (or dismiss) an identity the contact only claimed (an email typed into the web
    /// chat); `value` picks one when there are several. Audited.
    Claim {
        link: bool,
        value: Option<String>,
    },
    /// `:join #ID`: conversation `other` (of the same person) joins this one: its messages,
    /// tags, drafts and history move here; `:unmerge` takes it back. Audited.
    Join(ConversationId),
    /// `:split N` / `:split #MSG`: the message (or the last N) and every later one start a new
    /// conversation of the same person; `:unmerge` takes it back. Audited.
    Split(SplitAt),
    /// Set (`Some`) or clear a custom field of the conversation's contact, validated against
    /// the workspace's `[[fields]]`; audited `contact_updated`.
    Field {
        name: String,
        value: Option<String>,
    },
    /// The contact's lifecycle stage (None: none).
    Stage(Option<String>),
    /// Add to or set the contact's lead score.
    Score(crate::fields::ScoreChange),
}

/// Where `:split` cuts a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SplitAt {
    /// At this message.
    Message(crate::model::MessageId),
    /// So that the last N messages move.
    Last(usize),
}

/// What an assignment does with a conversation someone else owns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Owner {
    /// Leave it and ask: "#12 is bob's: take it from bob?" ([`Outcome::Confirm`]).
    Ask,
    /// The agent said yes to taking it from this owner; if another agent owns it by now,
    /// ask again.
    Was(Option<String>),
    /// Take it from whoever owns it (`--force`).
    Any,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the line says what changed.
    Done(String),
    /// Nothing changed: the verb would merge two contacts. The question to ask, and the verb
    /// to run when the answer is yes.
    Confirm { question: String, verb: Verb },
}

impl Verb {
    /// The verb's name (logs, refusals, the audit log).
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Assign(Some(_)) => "assign",
            Verb::Assign(None) => "unassign",
            Verb::Status(..) => "status",
            Verb::Priority(_) => "priority",
            Verb::Tag(_) => "tag",
            Verb::Untag(_) => "untag",
            Verb::Vip(_) => "vip",
            Verb::Retry => "retry",
            Verb::IdentityAdd { merge: false, .. } => "identity_add",
            Verb::IdentityAdd { merge: true, .. } => "identity_merge",
            Verb::Claim { link: true, .. } => "claim_link",
            Verb::Claim { link: false, .. } => "claim_dismiss",
            Verb::Team(_) => "team",
            Verb::Field { value: Some(_), .. } => "set",
            Verb::Field { value: None, .. } => "unset",
            Verb::Stage(_) => "stage",
            Verb::Score(_) => "score",
            Verb::Reassign { note: Some(_), .. } => "handoff",
            Verb::Reassign { to: Some(_), .. } => "assign",
            Verb::Reassign { to: None, .. } => "unassign",
            Verb::Join(_) => "join",
            Verb::Split(_) => "split",
        }
    }

    /// `a NAME` where NAME is a team of the workspace (and no agent is called that) moves
    /// the conversation to the team; every other verb is itself.
    pub fn resolve_names(self, agents: &[String], teams: &[String]) -> Verb {
        match self {
            Verb::Assign(Some(name)) if teams.contains(&name) && !agents.contains(&name) => {
                Verb::Team(Some(name))
            }
            v => v,
        }
    }

    /// The verb an action means, for agent `me` at `now`; `vip_now` is whether the contact is
    /// a VIP now (`vip` toggles it). Ok(None): the action is not a verb on a conversation, or
    /// it still needs its argument (the TUI prompts for it; the CLI requires it).
    pub fn from_action(
        action: &Action,
        me: &str,
        now: Millis,
        vip_now: bool,
    ) -> Result<Option<Verb>, String> {
        Ok(Some(match action {
            Action::Assign(Some(who)) => match who.trim() {
                "-" | "none" | "nobody" => Verb::Assign(None),
                "me" => Verb::Assign(Some(me.to_string())),
                "" => return Ok(None),
                // `assign team billing`: the team, whatever the agents are called.
                t if t.starts_with("team ") && t.len() > 5 => {
                    Verb::Team(Some(t[5..].trim().to_string()))
                }
                who => Verb::Assign(Some(who.to_string())),
            },
            Action::AssignMe => Verb::Assign(Some(me.to_string())),
            Action::Handoff(Some(arg)) => {
                let (who, note) = match arg.trim().split_once(char::is_whitespace) {
                    Some((w, n)) => (w, Some(n.trim().to_string())),
                    None => (arg.trim(), None),
                };
                let to = match who {
                    "" => return Ok(None),
                    "me" => me.to_string(),
                    w => w.to_string(),
                };
                Verb::Reassign {
                    to: Some(to),
                    owner: Owner::Ask,
                    note: note.filter(|n| !n.is_empty()),
                }
            }
            Action::Unassign => Verb::Assign(None),
            Action::Resolve => Verb::Status(Status::Resolved, None),
            Action::Reopen => Verb::Status(Status::Open, None),
            Action::Pending => Verb::Status(Status::Pending, None),
            Action::Snooze(Some(t)) => Verb::Status(
                Status::Snoozed,
                Some(crate::tui::time::parse_until(t, now)?),
            ),
            Action::Tag(Some(t)) => Verb::Tag(t.clone()),
            Action::Untag(Some(t)) => Verb::Untag(t.clone()),
            Action::Priority(Some(p)) => Verb::Priority(*p),
            Action::Vip => Verb::Vip(!vip_now),
            Action::Retry => Verb::Retry,
            Action::IdentityAdd(Some((kind, value))) => Verb::IdentityAdd {
                kind: *kind,
                value: value.clone(),
                merge: false,
            },
            Action::Claim(Some(d)) => Verb::Claim {
                link: d.link,
                value: d.value.clone(),
            },
            Action::Join(Some(arg)) => Verb::Join(crate::model::parse_conversation_id(arg)?),
            Action::Split(Some(arg)) => Verb::Split(parse_split(arg)?),
            Action::SetField(Some(a)) => {
                let (name, value) = a
                    .trim()
                    .split_once(char::is_whitespace)
                    .ok_or("usage: set FIELD VALUE (e.g. set plan pro; unset FIELD clears it)")?;
                Verb::Field {
                    name: name.to_ascii_lowercase(),
                    value: Some(value.trim().to_string()),
                }
            }
            Action::UnsetField(Some(a)) => Verb::Field {
                name: a.trim().to_ascii_lowercase(),
                value: None,
            },
            Action::Stage(Some(a)) => match a.trim() {
                "none" | "-" => Verb::Stage(None),
                s => Verb::Stage(Some(s.to_ascii_lowercase())),
            },
            Action::Score(Some(a)) => Verb::Score(crate::fields::ScoreChange::parse(a)?),
            _ => return Ok(None),
        }))
    }
}

/// `:split` / `braid split`'s argument: `#ID` (`m12` too) is a message, a bare number N the
/// last N messages.
pub fn parse_split(arg: &str) -> Result<SplitAt, String> {
    let a = arg.trim();
    let usage = || format!("split at what? '{a}': N (the last N messages) or #ID (a message id)");
    if let Some(id) = a.strip_prefix('#').or_else(|| a.strip_prefix('m')) {
        return id
            .parse::<i64>()
            .map(|i| SplitAt::Message(crate::model::MessageId(i)))
            .map_err(|_| usage());
    }
    match a.parse::<usize>() {
        Ok(n) if n > 0 => Ok(SplitAt::Last(n)),
        _ => Err(usage()),
    }
}

/// Carry out a verb on a conversation as `agent` at `now`.
pub fn apply(
    store: &mut Store,
    conversation: ConversationId,
    verb: Verb,
    agent: &str,
    now: Millis,
) -> anyhow::Result<Outcome> {
    let a = agent;
    let msg = match verb {
        Verb::Assign(to) => {
            return apply(
                store,
                conversation,
                Verb::Reassign {
                    to,
                    owner: Owner::Ask,
                    note: None,
                },
                agent,
                now,
            );
        }
        Verb::Reassign { to, owner, note } => {
            let check = match &owner {
                Owner::Ask => OwnerCheck::Ask,
                Owner::Was(o) => OwnerCheck::Was(o.as_deref()),
                Owner::Any => OwnerCheck::Any,
            };
            if let Some(other) =
                store.assign_checked(conversation, to.as_deref(), check, note.as_deref(), a, now)?
            {
                return Ok(Outcome::Confirm {
                    question: take_question(conversation, &other, to.as_deref(), a, note.is_some()),
                    verb: Verb::Reassign {
                        to,
                        owner: Owner::Was(Some(other)),
                        note,
                    },
                });
            }
            match (to, note.is_some()) {
                (Some(w), true) => format!("#{conversation} handed to {w}, with your note"),
                (Some(w), false) => format!("#{conversation} assigned to {w}"),
                (None, true) => format!("#{conversation} unassigned, with your note"),
                (None, false) => format!("#{conversation} unassigned"),
            }
        }
        Verb::Team(team) => {
            store.set_conversation_team(conversation, team.as_deref(), a, now)?;
            match team {
                Some(t) => format!("#{conversation} moved to team {t}"),
                None => format!("#{conversation} taken out of its team"),
            }
        }
        Verb::Status(s, until) => {
            store.set_status(conversation, s, until, a, now)?;
            match (s, until) {
                (Status::Snoozed, Some(t)) => {
                    format!(
                        "#{conversation} snoozed until {}",
                        crate::tui::time::full(t)
                    )
                }
                (Status::Pending, _) => {
                    format!(
                        "#{conversation} pending: waiting on the customer (opens when they write)"
                    )
                }
                _ => format!("#{conversation} {s}"),
            }
        }
        Verb::Priority(p) => {
            store.set_priority(conversation, p, a, now)?;
            format!("#{conversation} priority {p}")
        }
        Verb::Tag(t) => {
            store.tag(conversation, &t, false, a, now)?;
            format!("#{conversation} tagged {t}")
        }
        Verb::Untag(t) => {
            store.tag(conversation, &t, true, a, now)?;
            format!("#{conversation} untagged {t}")
        }
        Verb::Vip(v) => {
            let contact = store.conversation(conversation)?.contact_id;
            store.set_vip(contact, v, a, now)?;
            if v {
                "marked VIP".into()
            } else {
                "no longer VIP".into()
            }
        }
        Verb::Retry => {
            let m = store
                .last_failed(conversation)?
                .ok_or_else(|| anyhow::anyhow!("no failed message in #{conversation}"))?;
            store.retry(m, a, now)?;
            format!("message #{m} queued again")
        }
        Verb::IdentityAdd { kind, value, merge } => {
            let contact = store.conversation(conversation)?.contact_id;
            let v = crate::identity::normalize(kind, &value)?;
            if !merge && let Some(p) = store.identity_merge_preview(contact, kind, &v)? {
                return Ok(Outcome::Confirm {
                    question: merge_question(kind, &v, &p),
                    verb: Verb::IdentityAdd {
                        kind,
                        value,
                        merge: true,
                    },
                });
            }
            store.add_identity(contact, kind, &v, a, now)?;
            format!("{kind} {v} added to the contact")
        }
        Verb::Claim { link: true, value } => {
            let contact = store.conversation(conversation)?.contact_id;
            let (person, claim) = store.link_claim(contact, value.as_deref(), a, now)?;
            if person == contact {
                format!("{} {} linked to the contact", claim.kind, claim.value)
            } else {
                format!(
                    "{} {} linked: the visitor joined contact #{person}",
                    claim.kind, claim.value
                )
            }
        }
        Verb::Join(other) => {
            let merge = store.merge_conversations(conversation, other, a, now)?;
            format!(
                "#{other} joined #{conversation} (merge #{merge}; :unmerge {merge} takes it back)"
            )
        }
        Verb::Split(at) => {
            let message = match at {
                SplitAt::Message(m) => m,
                SplitAt::Last(n) => store.nth_last_message(conversation, n)?,
            };
            let (merge, new) = store.split_conversation(conversation, message, a, now)?;
            format!(
                "#{conversation} split at message #{message}: the rest is #{new} (merge #{merge}; :unmerge {merge} takes it back)"
            )
        }
        Verb::Field { .. } | Verb::Stage(_) | Verb::Score(_) => {
            let contact = store.conversation(conversation)?.contact_id;
            apply_contact(store, contact, verb, a, now)?
        }
        Verb::Claim { link: false, value } => {
            let contact = store.conversation(conversation)?.contact_id;
            let claim = store.dismiss_claim(contact, value.as_deref(), a, now)?;
            format!("claim {} {} dismissed", claim.kind, claim.value)
        }
    };
    Ok(Outcome::Done(msg))
}

/// Carry out a contact verb ([`Verb::Field`], [`Verb::Stage`], [`Verb::Score`]) on `contact`
/// (`braid contact set|stage|score`, and the same verbs from a conversation). The text says
/// what changed.
pub fn apply_contact(
    store: &mut Store,
    contact: crate::model::ContactId,
    verb: Verb,
    agent: &str,
    now: Millis,
) -> anyhow::Result<String> {
    let config = store.fields_config();
    let show = |v: &Option<String>| match v {
        Some(v) => crate::sanitize::for_terminal_line(v).into_owned(),
        None => "(none)".to_string(),
    };
    let change = match verb {
        Verb::Field { name, value } => {
            store.set_contact_field(contact, &config, &name, value.as_deref(), agent, now)?
        }
        Verb::Stage(stage) => {
            store.set_contact_stage(contact, &config, stage.as_deref(), agent, now)?
        }
        Verb::Score(by) => store.change_contact_score(contact, by, agent, now)?,
        other => anyhow::bail!("'{}' is not a contact verb", other.name()),
    };
    let field = crate::sanitize::for_terminal_line(&change.field);
    Ok(if !change.changed() {
        format!("{field} is already {}", show(&change.new))
    } else if change.new.is_none() {
        format!("{field} cleared (was {})", show(&change.old))
    } else {
        format!("{field}: {} → {}", show(&change.old), show(&change.new))
    })
}

/// "#12 is bob's: take it from bob and assign it to carol?"
pub fn take_question(
    conversation: ConversationId,
    owner: &str,
    to: Option<&str>,
    me: &str,
    note: bool,
) -> String {
    let owner = crate::sanitize::for_terminal_line(owner);
    let what = match to {
        Some(t) if t == me => "assign it to you".to_string(),
        Some(t) => format!("assign it to {}", crate::sanitize::for_terminal_line(t)),
        None => "leave it unassigned".to_string(),
    };
    let note = if note { " with your note" } else { "" };
    format!("#{conversation} is assigned to {owner}: take it from {owner} and {what}{note}?")
}

/// "email ann@x.org belongs to Ann Lee (2 conversations): merge them into Ann (1 conversation)?"
pub fn merge_question(kind: IdentityKind, value: &str, p: &MergePreview) -> String {
    let convs = |n: i64| format!("{n} conversation{}", if n == 1 { "" } else { "s" });
    format!(
        "{kind} {value} belongs to {} (#{}, {}): merge them with {} (#{}, {}) into one contact?",
        p.other.name,
        p.other.contact,
        convs(p.other.conversations),
        p.this.name,
        p.this.contact,
        convs(p.this.conversations),
    )
}

/// After an agent's reply: with `pending_after_reply` (config), an open conversation becomes
/// pending, waiting on the customer (their next message opens it again). Returns whether it did.
pub fn after_reply(
    store: &mut Store,
    conversation: ConversationId,
    pending_after_reply: bool,
    agent: &str,
    now: Millis,
) -> anyhow::Result<bool> {
    if !pending_after_reply || store.conversation(conversation)?.status != Status::Open {
        return Ok(false);
    }
    store.set_status(conversation, Status::Pending, None, agent, now)?;
    Ok(true)
}

/// What one bulk request ([`apply_bulk`]: `V` + a verb, `:g//`) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulkReport {
    /// The verb's name (`tag`, `assign`, `status`...).
    pub verb: String,
    /// How many conversations were asked for.
    pub asked: usize,
    /// The conversations changed (each change is its own audit event).
    pub done: Vec<ConversationId>,
    /// The ones left alone, and why (not in the agent's teams, someone else's, an invariant).
    pub refused: Vec<(ConversationId, String)>,
}

impl BulkReport {
    /// The one summary line: "tag: 18 of 20 conversations; 2 refused (#3: ...; #5: ...)".
    pub fn line(&self) -> String {
        let mut out = format!(
            "{}: {} of {} conversation{}",
            self.verb,
            self.done.len(),
            self.asked,
            if self.asked == 1 { "" } else { "s" }
        );
        if !self.refused.is_empty() {
            let shown: Vec<String> = self
                .refused
                .iter()
                .take(3)
                .map(|(id, why)| format!("#{id}: {}", crate::sanitize::for_terminal_line(why)))
                .collect();
            out.push_str(&format!(
                "; {} refused ({}{})",
                self.refused.len(),
                shown.join("; "),
                if self.refused.len() > 3 { "; ..." } else { "" }
            ));
        }
        if !self.done.is_empty() {
            out.push_str(" (u undoes them all)");
        }
        out
    }
}

/// Whether a verb may run over many conversations at once (the queue verbs; not a retry, an
/// identity or a claim, which are about one customer).
pub fn bulk_verb(verb: &Verb) -> bool {
    matches!(
        verb,
        Verb::Assign(_)
            | Verb::Reassign { note: None, .. }
            | Verb::Status(..)
            | Verb::Priority(_)
            | Verb::Tag(_)
            | Verb::Untag(_)
            | Verb::Team(_)
            | Verb::Vip(_)
    )
}

/// Apply one verb to many conversations in ONE transaction ([`Store::batch`]), each change
/// its own audit event, all stamped `now` (so one `u` undoes the lot). A conversation the
/// agent's scope does not see, one someone else owns (an assignment asks per conversation;
/// [`Owner::Any`] takes them), or one an invariant stops is refused in the report, not an
/// error: the others still change. Callable with a rule's actor (`rule:ID`) too.
pub fn apply_bulk(
    store: &mut Store,
    conversations: &[ConversationId],
    verb: Verb,
    agent: &str,
    now: Millis,
) -> anyhow::Result<BulkReport> {
    if !bulk_verb(&verb) {
        anyhow::bail!(
            "'{}' works on one conversation at a time: select one (Esc leaves the selection)",
            verb.name()
        );
    }
    let mut report = BulkReport {
        verb: verb.name().to_string(),
        asked: conversations.len(),
        ..Default::default()
    };
    store.batch(|s| -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for &id in conversations {
            if !seen.insert(id) {
                continue;
            }
            match apply(s, id, verb.clone(), agent, now) {
                Ok(Outcome::Done(_)) => report.done.push(id),
                Ok(Outcome::Confirm { question, .. }) => report.refused.push((id, question)),
                Err(e) => {
                    let why = match e.downcast_ref::<crate::store::StoreError>() {
                        Some(crate::store::StoreError::NoConversation(_)) => {
                            "not found, or not in your teams".to_string()
                        }
                        _ => e.to_string(),
                    };
                    report.refused.push((id, why));
                }
            }
        }
        Ok(())
    })?;
    Ok(report)
}
