//! Workflow rules as text: `rules.toml` (and `rules/*.toml`) beside the workspace config.
//! Each rule: an event it runs on, conditions (`all` / `any`, nested one level, `not`), and
//! actions. Pure: parsing, evaluation against [`Facts`] and the dry-run explanation live here;
//! the server feeds it events and applies what it decides in the store, as `rule:ID`.
//!
//! ```toml
//! [[rules]]
//! id = "billing"
//! name = "Billing questions go to the billing team"
//! on = "message_received"
//! all = [ { channel = ["email", "webchat"] } ]
//! any = [ { words = ["invoice", "refund", "charge"] }, { domain = "bigcorp.com" } ]
//! actions = [ { assign_team = "billing", strategy = "least_open" }, { tag = "billing" } ]
//! ```

mod eval;
mod load;

pub use eval::{Explained, Facts, Verdict, evaluate};
pub use load::{Known, Loaded, RulesSource, files_of, load_dir, load_str, stamp};

use crate::model::{Channel, Millis, Priority, Status};

/// When a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A customer message arrived, on any channel.
    MessageReceived,
    /// An agent's reply was queued (not a rule's own).
    ReplySent,
    ConversationCreated,
    /// A resolved conversation opened again (the customer wrote, or an agent reopened it).
    ConversationReopened,
    ConversationResolved,
    StatusChanged,
    AssigneeChanged,
    PriorityChanged,
    TagAdded,
    TagRemoved,
    TeamChanged,
    SlaWarning,
    SlaBreached,
    /// A snooze ended (the conversation woke up).
    SnoozeEnded,
    /// Time-based: the customer has waited on us for `after` (once per wait).
    WaitingOnUs,
    /// Time-based: we replied and the customer has not answered for `after` (once per reply).
    WaitingOnCustomer,
    /// The customer answered the satisfaction survey (conditions `csat`, `csat_below`).
    CsatAnswered,
}

impl Trigger {
    pub const ALL: &'static [(Trigger, &'static str)] = &[
        (Trigger::MessageReceived, "message_received"),
        (Trigger::ReplySent, "reply_sent"),
        (Trigger::ConversationCreated, "conversation_created"),
        (Trigger::ConversationReopened, "conversation_reopened"),
        (Trigger::ConversationResolved, "conversation_resolved"),
        (Trigger::StatusChanged, "status_changed"),
        (Trigger::AssigneeChanged, "assignee_changed"),
        (Trigger::PriorityChanged, "priority_changed"),
        (Trigger::TagAdded, "tag_added"),
        (Trigger::TagRemoved, "tag_removed"),
        (Trigger::TeamChanged, "team_changed"),
        (Trigger::SlaWarning, "sla_warning"),
        (Trigger::SlaBreached, "sla_breached"),
        (Trigger::SnoozeEnded, "snooze_ended"),
        (Trigger::WaitingOnUs, "waiting_on_us"),
        (Trigger::WaitingOnCustomer, "waiting_on_customer"),
        (Trigger::CsatAnswered, "csat_answered"),
    ];

    pub fn as_str(self) -> &'static str {
        Trigger::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        Trigger::ALL
            .iter()
            .find(|(_, n)| *n == s.trim())
            .map(|(t, _)| *t)
    }

    /// Time-based triggers need `after` and are run by the sweep, not by events.
    pub fn is_timed(self) -> bool {
        matches!(self, Trigger::WaitingOnUs | Trigger::WaitingOnCustomer)
    }

    /// The triggers one event of the events table fires (`kind`, its actor, its data JSON).
    /// Events written by a rule fire nothing: a rule's own changes never trigger rules (no
    /// loops, however the rules are written).
    pub fn of_event(kind: &str, actor: &str, data: Option<&str>) -> Vec<Trigger> {
        if crate::store::is_automated(actor) {
            return Vec::new();
        }
        let data: serde_json::Value = data
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(serde_json::Value::Null);
        let s = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match kind {
            "message_in" => vec![Trigger::MessageReceived],
            "message_out" => vec![Trigger::ReplySent],
            "conversation_created" => vec![Trigger::ConversationCreated],
            "status_changed" => {
                let mut t = vec![Trigger::StatusChanged];
                match s("status") {
                    "resolved" => t.push(Trigger::ConversationResolved),
                    "open" if s("reason") == "snooze ended" => t.push(Trigger::SnoozeEnded),
                    // Open again from resolved: the customer wrote (`from`), or an agent's
                    // `:reopen` (which records no `from`).
                    "open" if matches!(s("from"), "resolved" | "") => {
                        t.push(Trigger::ConversationReopened)
                    }
                    _ => {}
                }
                t
            }
            "assigned" => vec![Trigger::AssigneeChanged],
            "priority_changed" => vec![Trigger::PriorityChanged],
            "tag_added" => vec![Trigger::TagAdded],
            "tag_removed" => vec![Trigger::TagRemoved],
            "team_changed" => vec![Trigger::TeamChanged],
            "sla_warning" => vec![Trigger::SlaWarning],
            "sla_breached" => vec![Trigger::SlaBreached],
            "csat_answered" => vec![Trigger::CsatAnswered],
            _ => Vec::new(),
        }
    }
}

/// A comparison with a number (`">= 2"`, `"0"`, `"< 3"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    pub fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Eq => left == right,
            Cmp::Ge => left >= right,
            Cmp::Gt => left > right,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "=",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// One condition. Lists mean "any of".
#[derive(Debug, Clone)]
pub enum Cond {
    Channel(Vec<Channel>),
    Account(Vec<String>),
    /// `"none"` matches a conversation in no team.
    Team(Vec<String>),
    Status(Vec<Status>),
    Priority(Vec<Priority>),
    /// `"none"` matches an unassigned conversation.
    Assignee(Vec<String>),
    Vip(bool),
    /// Has any of these tags.
    Tag(Vec<String>),
    /// Has none of these tags.
    NoTag(Vec<String>),
    /// The contact's name contains this (case-insensitive).
    ContactName(String),
    /// Any of the contact's email identities is at one of these domains (`bigcorp.com`
    /// matches `sub.bigcorp.com` too).
    Domain(Vec<String>),
    /// The message has any of these words (whole words, case-insensitive).
    Words(Vec<String>),
    /// The message contains this phrase (case-insensitive, spaces collapsed).
    Phrase(String),
    Regex(Box<regex::Regex>),
    /// Whether the message came in the conversation team's business hours.
    BusinessHours(bool),
    /// The contact's conversations before this one.
    EarlierConversations(Cmp, i64),
    /// Time since our last reply (never replied: infinitely long), ms.
    SinceLastReply(Cmp, i64),
    /// How long the customer has waited on us (nothing waiting: 0), ms.
    Waiting(Cmp, i64),
    /// The conversation's survey was answered with one of these scores.
    Csat(Vec<i64>),
    /// The conversation's survey was answered with a score below this.
    CsatBelow(i64),
    /// The contact is at one of these stages (`"none"`: no stage yet).
    Stage(Vec<String>),
    /// The contact's lead score compares so.
    Score(Cmp, i64),
    /// The contact's custom field holds one of these values (case-insensitive; `"none"`:
    /// unset).
    Field {
        name: String,
        values: Vec<String>,
    },
    Not(Box<Cond>),
    All(Vec<Cond>),
    Any(Vec<Cond>),
}

/// How `assign_team` picks an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The online team member whom a rule assigned least recently.
    RoundRobin,
    /// The online team member with the fewest open conversations.
    LeastOpen,
    /// Nobody: the conversation waits in the team's queue.
    TeamQueue,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastOpen => "least_open",
            Strategy::TeamQueue => "team_queue",
        }
    }
}

/// Who an action names: an agent, or the conversation's assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Agent(String),
    Assignee,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Assign to an agent (None: unassign).
    Assign(Option<String>),
    /// Put in a team and pick one of its online agents (falling back to the team's queue).
    AssignTeam {
        team: String,
        strategy: Strategy,
    },
    Priority(Priority),
    Tag(String),
    Untag(String),
    /// Snooze for this long (ms).
    Snooze(i64),
    Status(Status),
    Vip(bool),
    Note(String),
    /// Send a reply: a canned template (by name) or a text, on a channel (None: the
    /// channel the customer last used), respecting consent and the channel's rules.
    Reply {
        template: Option<String>,
        text: Option<String>,
        channel: Option<Channel>,
    },
    /// Create a task.
    Task {
        kind: String,
        title: String,
        due_ms: Option<i64>,
        assignee: Option<Who>,
    },
    /// Notify an agent (or the assignee), with a message.
    Notify {
        who: Who,
        message: String,
    },
    /// Put the conversation under an SLA policy.
    Sla(String),
    /// Set (None: clear) a custom field of the contact.
    SetField {
        name: String,
        value: Option<String>,
    },
    /// Move the contact to a stage.
    SetStage(String),
    /// Add to the contact's lead score (negative: take away).
    AddScore(i64),
}

impl Action {
    /// One line for the dry run and `:rules`.
    pub fn describe(&self) -> String {
        match self {
            Action::Assign(Some(a)) => format!("assign to {a}"),
            Action::Assign(None) => "unassign".into(),
            Action::AssignTeam { team, strategy } => {
                format!("assign to team {team} ({})", strategy.as_str())
            }
            Action::Priority(p) => format!("set priority {}", p.as_str()),
            Action::Tag(t) => format!("tag {t}"),
            Action::Untag(t) => format!("untag {t}"),
            Action::Snooze(ms) => format!("snooze {}", crate::units::duration_label(*ms)),
            Action::Status(s) => format!("set status {}", s.as_str()),
            Action::Vip(true) => "mark the contact VIP".into(),
            Action::Vip(false) => "unmark the contact VIP".into(),
            Action::Note(n) => format!("add a note “{}”", cut(n, 60)),
            Action::Reply {
                template,
                text,
                channel,
            } => {
                let what = match (template, text) {
                    (Some(t), _) => format!("template {t}"),
                    (None, Some(x)) => format!("“{}”", cut(x, 50)),
                    (None, None) => "?".into(),
                };
                let on = channel.map(|c| c.as_str()).unwrap_or("the last channel");
                format!("reply {what} on {on}")
            }
            Action::Task {
                kind,
                title,
                due_ms,
                ..
            } => match due_ms {
                Some(d) => format!(
                    "create a {kind} task “{}” due in {}",
                    cut(title, 40),
                    crate::units::duration_label(*d)
                ),
                None => format!("create a {kind} task “{}”", cut(title, 40)),
            },
            Action::Notify { who, .. } => match who {
                Who::Agent(a) => format!("notify {a}"),
                Who::Assignee => "notify the assignee".into(),
            },
            Action::Sla(p) => format!("apply SLA {p}"),
            Action::SetField {
                name,
                value: Some(v),
            } => format!("set {name} to {v}"),
            Action::SetField { name, value: None } => format!("clear {name}"),
            Action::SetStage(s) => format!("move the contact to stage {s}"),
            Action::AddScore(n) if *n >= 0 => format!("add {n} to the lead score"),
            Action::AddScore(n) => format!("take {} from the lead score", -n),
        }
    }
}

fn cut(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > n {
        format!("{}…", one.chars().take(n).collect::<String>())
    } else {
        one
    }
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub on: Trigger,
    /// For time-based triggers: how long (ms).
    pub after: Option<i64>,
    /// Every one of these holds…
    pub all: Vec<Cond>,
    /// …and, when not empty, at least one of these.
    pub any: Vec<Cond>,
    pub actions: Vec<Action>,
    /// Where it was written (`rules.toml:12`), for messages.
    pub origin: String,
}

impl Rule {
    /// The actor its changes are audited as.
    pub fn actor(&self) -> String {
        format!("rule:{}", self.id)
    }
}

/// The workspace's rules.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    pub fn enabled_for(&self, trigger: Trigger) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(move |r| r.enabled && r.on == trigger)
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Facts at a time: `now` for timed conditions.
pub type Now = Millis;
