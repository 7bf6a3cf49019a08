//! Evaluating a rule's conditions against what the store knows of a conversation, with the
//! reasons: the dry run prints them, the `rule_matched` event keeps them.

use super::{Cond, Rule};
use crate::model::{Channel, ConversationId, Millis, Priority, Status};

/// What the conditions look at: one conversation, its contact and the message (or moment)
/// that triggered the rule. Built by the store ([`crate::store::Store::rule_facts`]) or, for
/// a dry run of a message not stored, by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub conversation: Option<ConversationId>,
    pub channel: Channel,
    pub account: String,
    pub team: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub vip: bool,
    pub tags: Vec<String>,
    pub contact_name: String,
    /// The contact's email identities (lowercase).
    pub emails: Vec<String>,
    /// Subject and body of the triggering message (or the newest customer message).
    pub text: String,
    pub earlier_conversations: i64,
    pub last_reply_at: Option<Millis>,
    pub waiting_since: Option<Millis>,
    /// Whether the triggering moment is in the team's business hours (None: the workspace
    /// defines none: always).
    pub business_hours: Option<bool>,
    /// The score the customer gave the conversation's satisfaction survey (None: none yet).
    pub csat: Option<i64>,
    /// The contact's lifecycle stage (None: none yet).
    pub stage: Option<String>,
    /// The contact's lead score.
    pub score: i64,
    /// The contact's custom field values (name, value).
    pub fields: Vec<(String, String)>,
    pub now: Millis,
}

/// One condition's outcome, readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub holds: bool,
    pub why: String,
}

/// A rule against facts: whether it matches, and each condition's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub matched: bool,
    pub reasons: Vec<Explained>,
}

impl Verdict {
    /// The reasons as one line: `vip ✓ · channel email ✗ (telegram)`.
    pub fn line(&self) -> String {
        self.reasons
            .iter()
            .map(|r| format!("{} {}", r.why, if r.holds { "✓" } else { "✗" }))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// Evaluate: every `all` condition holds, and at least one `any` (when there are any).
pub fn evaluate(rule: &Rule, f: &Facts) -> Verdict {
    let mut reasons = Vec::new();
    let mut matched = true;
    for c in &rule.all {
        let e = check(c, f);
        matched &= e.holds;
        reasons.push(e);
    }
    if !rule.any.is_empty() {
        let outcomes: Vec<Explained> = rule.any.iter().map(|c| check(c, f)).collect();
        let one = outcomes.iter().any(|e| e.holds);
        matched &= one;
        reasons.push(Explained {
            holds: one,
            why: format!(
                "any of ({})",
                outcomes
                    .iter()
                    .map(|e| format!("{} {}", e.why, if e.holds { "✓" } else { "✗" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Verdict { matched, reasons }
}

fn list<T: AsRef<str>>(v: &[T]) -> String {
    v.iter().map(|x| x.as_ref()).collect::<Vec<_>>().join("|")
}

fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn collapse(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The domain of an email address.
fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

fn check(c: &Cond, f: &Facts) -> Explained {
    let ex = |holds: bool, why: String| Explained { holds, why };
    match c {
        Cond::Channel(v) => ex(
            v.contains(&f.channel),
            format!(
                "channel {} (is {})",
                list(&v.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
                f.channel.as_str()
            ),
        ),
        Cond::Account(v) => ex(
            v.contains(&f.account),
            format!("account {} (is {})", list(v), shown(&f.account)),
        ),
        Cond::Team(v) => {
            let is = f.team.as_deref().unwrap_or("none");
            ex(
                v.iter().any(|t| t == is),
                format!("team {} (is {is})", list(v)),
            )
        }
        Cond::Status(v) => ex(
            v.contains(&f.status),
            format!(
                "status {} (is {})",
                list(&v.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
                f.status.as_str()
            ),
        ),
        Cond::Priority(v) => ex(
            v.contains(&f.priority),
            format!(
                "priority {} (is {})",
                list(&v.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
                f.priority.as_str()
            ),
        ),
        Cond::Assignee(v) => {
            let is = f.assignee.as_deref().unwrap_or("none");
            ex(
                v.iter().any(|a| a == is),
                format!("assignee {} (is {is})", list(v)),
            )
        }
        Cond::Vip(want) => ex(
            f.vip == *want,
            if *want { "vip" } else { "not vip" }.to_string(),
        ),
        Cond::Tag(v) => ex(
            v.iter().any(|t| f.tags.contains(t)),
            format!("tag {} (has {})", list(v), shown(&f.tags.join(","))),
        ),
        Cond::NoTag(v) => ex(
            !v.iter().any(|t| f.tags.contains(t)),
            format!("no tag {} (has {})", list(v), shown(&f.tags.join(","))),
        ),
        Cond::ContactName(s) => ex(
            f.contact_name.to_lowercase().contains(&s.to_lowercase()),
            format!("contact name contains “{s}”"),
        ),
        Cond::Domain(v) => {
            let hit = f.emails.iter().any(|e| {
                let d = domain_of(e);
                v.iter()
                    .any(|want| d == want || d.ends_with(&format!(".{want}")))
            });
            let have: Vec<&str> = f.emails.iter().map(|e| domain_of(e)).collect();
            ex(
                hit,
                format!("domain {} (has {})", list(v), shown(&have.join(","))),
            )
        }
        Cond::Words(v) => {
            let found: Vec<String> = words_of(&f.text).filter(|w| v.contains(w)).collect();
            ex(
                !found.is_empty(),
                match found.first() {
                    Some(w) => format!("words {} (found “{w}”)", list(v)),
                    None => format!("words {}", list(v)),
                },
            )
        }
        Cond::Phrase(p) => ex(
            collapse(&f.text).contains(&collapse(p)),
            format!("phrase “{p}”"),
        ),
        Cond::Regex(r) => ex(r.is_match(&f.text), format!("regex /{}/", r.as_str())),
        Cond::BusinessHours(want) => {
            let is = f.business_hours.unwrap_or(true);
            ex(
                is == *want,
                if *want {
                    "in business hours"
                } else {
                    "outside business hours"
                }
                .to_string(),
            )
        }
        Cond::EarlierConversations(cmp, n) => ex(
            cmp.holds(f.earlier_conversations, *n),
            format!(
                "earlier conversations {} {n} (has {})",
                cmp.as_str(),
                f.earlier_conversations
            ),
        ),
        Cond::SinceLastReply(cmp, ms) => {
            let since = f.last_reply_at.map(|t| f.now - t).unwrap_or(i64::MAX);
            ex(
                cmp.holds(since, *ms),
                format!(
                    "since last reply {} {} (is {})",
                    cmp.as_str(),
                    crate::units::duration_label(*ms),
                    match f.last_reply_at {
                        Some(_) => crate::units::duration_label(since),
                        None => "never replied".into(),
                    }
                ),
            )
        }
        Cond::Csat(v) => ex(
            f.csat.is_some_and(|s| v.contains(&s)),
            format!(
                "csat {} (is {})",
                v.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
                f.csat
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "not answered".into())
            ),
        ),
        Cond::CsatBelow(n) => ex(
            f.csat.is_some_and(|s| s < *n),
            format!(
                "csat below {n} (is {})",
                f.csat
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "not answered".into())
            ),
        ),
        Cond::Stage(v) => {
            let is = f.stage.as_deref().unwrap_or("none");
            ex(
                v.iter().any(|s| s == is),
                format!("stage {} (is {is})", v.join("|")),
            )
        }
        Cond::Score(cmp, n) => ex(
            cmp.holds(f.score, *n),
            format!("score {} {n} (is {})", cmp.as_str(), f.score),
        ),
        Cond::Field { name, values } => {
            let is = f
                .fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
            ex(
                values.iter().any(|v| match is {
                    Some(x) => x.eq_ignore_ascii_case(v),
                    None => v == "none",
                }),
                format!("{name} {} (is {})", values.join("|"), is.unwrap_or("unset")),
            )
        }
        Cond::Waiting(cmp, ms) => {
            let waited = f.waiting_since.map(|t| f.now - t).unwrap_or(0);
            ex(
                cmp.holds(waited, *ms),
                format!(
                    "waiting {} {} (is {})",
                    cmp.as_str(),
                    crate::units::duration_label(*ms),
                    crate::units::duration_label(waited)
                ),
            )
        }
        Cond::Not(inner) => {
            let e = check(inner, f);
            ex(!e.holds, format!("not ({})", e.why))
        }
        Cond::All(v) => {
            let es: Vec<Explained> = v.iter().map(|c| check(c, f)).collect();
            ex(
                es.iter().all(|e| e.holds),
                format!(
                    "all of ({})",
                    es.iter()
                        .map(|e| format!("{} {}", e.why, if e.holds { "✓" } else { "✗" }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
        Cond::Any(v) => {
            let es: Vec<Explained> = v.iter().map(|c| check(c, f)).collect();
            ex(
                es.iter().any(|e| e.holds),
                format!(
                    "any of ({})",
                    es.iter()
                        .map(|e| format!("{} {}", e.why, if e.holds { "✓" } else { "✗" }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }
}

fn shown(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}
