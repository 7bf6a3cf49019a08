//! The workflow verbs on a conversation, carried out against the store in one place. The TUI
//! (its keys and `:` commands, through [`crate::tui::data`]) and the CLI (`braid assign`,
//! `braid resolve`, ...) both turn an [`Action`] into a [`Verb`] with [`Verb::from_action`]
//! and run it with [`apply`]: the CLI is not a second implementation of a verb.

use crate::model::{ConversationId, IdentityKind, Millis, Priority, Status};
use crate::store::{MergePreview, Store};
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
    /// Link (or dismiss) an identity the contact only claimed (an email typed into the web
    /// chat); `value` picks one when there are several. Audited.
    Claim {
        link: bool,
        value: Option<String>,
    },
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
                who => Verb::Assign(Some(who.to_string())),
            },
            Action::AssignMe => Verb::Assign(Some(me.to_string())),
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
            _ => return Ok(None),
        }))
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
        Verb::Assign(who) => {
            store.assign(conversation, who.as_deref(), a, now)?;
            match who {
                Some(w) => format!("#{conversation} assigned to {w}"),
                None => format!("#{conversation} unassigned"),
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
        Verb::Claim { link: false, value } => {
            let contact = store.conversation(conversation)?.contact_id;
            let claim = store.dismiss_claim(contact, value.as_deref(), a, now)?;
            format!("claim {} {} dismissed", claim.kind, claim.value)
        }
    };
    Ok(Outcome::Done(msg))
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
