//! Reporting facts: what a conversation's history says about response times, volumes, SLA
//! and satisfaction, one step at a time. Pure: the store feeds [`Tracker::step`] the
//! conversation's changes in order (as they happen, from the events table; or, for a
//! backfill, rebuilt from the messages and events of an older store) and writes the
//! [`Fact`]s it returns. The same code runs both ways, so a backfill equals what the live
//! derivation would have written (a test holds it to that).
//!
//! The clocks (README, "Reports: what each figure means"):
//! - **first response**: the customer's first message of a conversation (or of its
//!   reopening) to the first reply by a person on any channel. Replies by rules (`rule:*`)
//!   and notes stop nothing: an automatic acknowledgement is not a response.
//! - **next response**: each later customer message we had not answered to our next reply
//!   by a person (a burst of three messages is one wait, from the first of them).
//! - **resolution**: opened (or reopened) to resolved.
//! - **customer wait**: our reply (by a person) to the customer's next message, or to the
//!   resolution if they never wrote back.
//!
//! Each duration is also counted in the business hours of the conversation's team when the
//! fact is made (a team without `[[hours]]`: round the clock, the same as the wall clock).
//! A fact belongs to the conversation's team at that moment: a conversation moved from
//! sales to billing counts its later replies for billing.

pub mod hist;

use crate::model::{Channel, Millis};
use crate::sla::Hours;

/// What a fact measures. The text form is what `report_facts.metric` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    FirstResponse,
    NextResponse,
    Resolution,
    CustomerWait,
    Opened,
    Reopened,
    Resolved,
    MessageIn,
    MessageOut,
    /// An SLA target met (value 1) or missed (value 0); `label`: the policy.
    Sla,
    CsatSent,
    /// A survey answer; value: the score 1-5.
    Csat,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::FirstResponse,
        Kind::NextResponse,
        Kind::Resolution,
        Kind::CustomerWait,
        Kind::Opened,
        Kind::Reopened,
        Kind::Resolved,
        Kind::MessageIn,
        Kind::MessageOut,
        Kind::Sla,
        Kind::CsatSent,
        Kind::Csat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FirstResponse => "first_response",
            Kind::NextResponse => "next_response",
            Kind::Resolution => "resolution",
            Kind::CustomerWait => "customer_wait",
            Kind::Opened => "opened",
            Kind::Reopened => "reopened",
            Kind::Resolved => "resolved",
            Kind::MessageIn => "messages_in",
            Kind::MessageOut => "messages_out",
            Kind::Sla => "sla",
            Kind::CsatSent => "csat_sent",
            Kind::Csat => "csat",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Counted in the hourly totals (`report_counts`) rather than read one by one.
    pub fn is_count(self) -> bool {
        matches!(
            self,
            Kind::Opened
                | Kind::Reopened
                | Kind::Resolved
                | Kind::MessageIn
                | Kind::MessageOut
                | Kind::CsatSent
        )
    }

    pub fn is_duration(self) -> bool {
        matches!(
            self,
            Kind::FirstResponse | Kind::NextResponse | Kind::Resolution | Kind::CustomerWait
        )
    }
}

/// One reporting fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: Kind,
    /// When it happened (the reply, the resolution...), ms.
    pub at: Millis,
    /// The channel the customer used (durations: where the wait began; messages: theirs).
    pub channel: String,
    /// The person it counts for: who replied (responses, messages out), the assignee
    /// (resolution, opened, messages in, surveys).
    pub agent: Option<String>,
    pub team: Option<String>,
    /// ms for a duration, 1 for a count, the score for a survey, 1/0 for SLA met/missed.
    pub value: i64,
    /// A duration within the team's business hours.
    pub business: Option<Millis>,
    /// The SLA policy (SLA facts).
    pub label: Option<String>,
}

/// A change to a conversation, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The conversation began (`channel`: its first message's).
    Created {
        at: Millis,
        channel: String,
    },
    CustomerMessage {
        at: Millis,
        channel: String,
    },
    /// A message out: by a person, or by a rule (`automated`).
    Reply {
        at: Millis,
        channel: String,
        author: String,
        automated: bool,
    },
    Resolved {
        at: Millis,
        actor: String,
    },
    /// Open again after being resolved (snoozed → open is not a reopening).
    Reopened {
        at: Millis,
    },
    Assigned {
        agent: Option<String>,
    },
    Team {
        team: Option<String>,
    },
    SlaApplied {
        policy: String,
    },
    SlaBreached {
        target: String,
    },
    CsatSent {
        at: Millis,
        channel: String,
    },
    CsatAnswered {
        at: Millis,
        score: i64,
        channel: String,
    },
}

/// What the tracker remembers of a conversation between steps (`report_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Not resolved.
    pub open: bool,
    /// When the conversation was opened or last reopened.
    pub episode_start: Option<Millis>,
    /// A person answered in this episode (the next wait is a next response).
    pub first_replied: bool,
    /// The oldest customer message we have not answered (by a person), and its channel.
    pub waiting_since: Option<Millis>,
    pub waiting_channel: Option<String>,
    /// Our reply the customer has not answered yet.
    pub replied_at: Option<Millis>,
    /// The channel the customer last wrote on (or the conversation began on).
    pub channel: String,
    pub assignee: Option<String>,
    pub team: Option<String>,
    /// The SLA policy the conversation is under, and the targets breached in this wait or
    /// episode (`first_response`, `next_response`, `resolution`, comma-separated).
    pub policy: Option<String>,
    pub breached: String,
}

/// Business time for a team (None: the wall clock).
pub trait TeamHours {
    fn hours(&self, team: Option<&str>) -> Option<&Hours>;
}

impl TeamHours for crate::sla::SlaConfig {
    fn hours(&self, team: Option<&str>) -> Option<&Hours> {
        self.team_hours(team).and_then(|n| self.hours_named(n))
    }
}

/// Targets a policy has (for "met" facts).
pub trait PolicyTargets {
    fn has_target(&self, policy: &str, target: &str) -> bool;
}

impl PolicyTargets for crate::sla::SlaConfig {
    fn has_target(&self, policy: &str, target: &str) -> bool {
        self.policy(policy).is_some_and(|p| match target {
            "first_response" => p.first_response.is_some(),
            "next_response" => p.next_response.is_some(),
            "resolution" => p.resolution.is_some(),
            _ => false,
        })
    }
}

/// The tracker of one conversation.
pub struct Tracker<'a, C: TeamHours + PolicyTargets> {
    pub state: State,
    cfg: &'a C,
}

impl<'a, C: TeamHours + PolicyTargets> Tracker<'a, C> {
    pub fn new(state: State, cfg: &'a C) -> Self {
        Tracker { state, cfg }
    }

    fn fact(&self, kind: Kind, at: Millis, channel: &str, agent: Option<&str>) -> Fact {
        Fact {
            kind,
            at,
            channel: channel.to_string(),
            agent: agent.map(str::to_string),
            team: self.state.team.clone(),
            value: 1,
            business: None,
            label: None,
        }
    }

    fn duration(
        &self,
        kind: Kind,
        from: Millis,
        to: Millis,
        channel: &str,
        agent: Option<&str>,
    ) -> Fact {
        let wall = (to - from).max(0);
        let business = match self.cfg.hours(self.state.team.as_deref()) {
            Some(h) => h.between(from, to),
            None => wall,
        };
        Fact {
            value: wall,
            business: Some(business),
            ..self.fact(kind, to, channel, agent)
        }
    }

    /// An SLA target met or missed, once per wait/episode: `met` unless it was breached.
    fn sla(
        &mut self,
        target: &str,
        at: Millis,
        channel: &str,
        agent: Option<&str>,
    ) -> Option<Fact> {
        let policy = self.state.policy.clone()?;
        if !self.cfg.has_target(&policy, target) {
            return None;
        }
        let missed = self.state.breached.split(',').any(|t| t == target);
        Some(Fact {
            value: i64::from(!missed),
            label: Some(policy),
            ..self.fact(Kind::Sla, at, channel, agent)
        })
    }

    fn clear_breach(&mut self, target: &str) {
        let rest: Vec<&str> = self
            .state
            .breached
            .split(',')
            .filter(|t| !t.is_empty() && *t != target)
            .collect();
        self.state.breached = rest.join(",");
    }

    /// Apply one change; the facts it makes.
    pub fn step(&mut self, step: &Step) -> Vec<Fact> {
        let mut out = Vec::new();
        match step {
            Step::Created { at, channel } => {
                let s = &mut self.state;
                s.open = true;
                s.episode_start = Some(*at);
                s.first_replied = false;
                s.channel = channel.clone();
                let agent = self.state.assignee.clone();
                out.push(self.fact(Kind::Opened, *at, channel, agent.as_deref()));
            }
            Step::CustomerMessage { at, channel } => {
                let agent = self.state.assignee.clone();
                out.push(self.fact(Kind::MessageIn, *at, channel, agent.as_deref()));
                if let Some(r) = self.state.replied_at.take() {
                    out.push(self.duration(Kind::CustomerWait, r, *at, channel, agent.as_deref()));
                }
                let s = &mut self.state;
                s.channel = channel.clone();
                if s.episode_start.is_none() {
                    // Its creation was never seen (a store older than its events).
                    s.open = true;
                    s.episode_start = Some(*at);
                }
                if s.waiting_since.is_none() {
                    s.waiting_since = Some(*at);
                    s.waiting_channel = Some(channel.clone());
                }
            }
            Step::Reply {
                at,
                channel,
                author,
                automated,
            } => {
                out.push(self.fact(Kind::MessageOut, *at, channel, Some(author)));
                if *automated {
                    return out;
                }
                if let Some(since) = self.state.waiting_since.take() {
                    let ch = self
                        .state
                        .waiting_channel
                        .take()
                        .unwrap_or_else(|| self.state.channel.clone());
                    let (kind, target) = if self.state.first_replied {
                        (Kind::NextResponse, "next_response")
                    } else {
                        (Kind::FirstResponse, "first_response")
                    };
                    out.push(self.duration(kind, since, *at, &ch, Some(author)));
                    out.extend(self.sla(target, *at, &ch, Some(author)));
                    self.clear_breach(target);
                    self.state.first_replied = true;
                }
                if self.state.replied_at.is_none() {
                    self.state.replied_at = Some(*at);
                }
            }
            Step::Resolved { at, actor } => {
                if !self.state.open {
                    return out;
                }
                let agent = self
                    .state
                    .assignee
                    .clone()
                    .or_else(|| (!crate::store::is_automated(actor)).then(|| actor.clone()));
                let channel = self.state.channel.clone();
                out.push(self.fact(Kind::Resolved, *at, &channel, agent.as_deref()));
                if let Some(start) = self.state.episode_start {
                    out.push(self.duration(
                        Kind::Resolution,
                        start,
                        *at,
                        &channel,
                        agent.as_deref(),
                    ));
                    out.extend(self.sla("resolution", *at, &channel, agent.as_deref()));
                }
                if let Some(r) = self.state.replied_at.take() {
                    out.push(self.duration(Kind::CustomerWait, r, *at, &channel, agent.as_deref()));
                }
                let s = &mut self.state;
                s.open = false;
                s.waiting_since = None;
                s.waiting_channel = None;
                s.breached.clear();
            }
            Step::Reopened { at } => {
                if self.state.open {
                    return out;
                }
                let channel = self.state.channel.clone();
                let agent = self.state.assignee.clone();
                out.push(self.fact(Kind::Reopened, *at, &channel, agent.as_deref()));
                let s = &mut self.state;
                s.open = true;
                s.episode_start = Some(*at);
                s.first_replied = false;
                s.replied_at = None;
                s.waiting_since = None;
                s.waiting_channel = None;
                s.breached.clear();
            }
            Step::Assigned { agent } => self.state.assignee = agent.clone(),
            Step::Team { team } => self.state.team = team.clone(),
            Step::SlaApplied { policy } => self.state.policy = Some(policy.clone()),
            Step::SlaBreached { target } => {
                let s = &mut self.state;
                if !s.breached.split(',').any(|t| t == target) {
                    if !s.breached.is_empty() {
                        s.breached.push(',');
                    }
                    s.breached.push_str(target);
                }
            }
            Step::CsatSent { at, channel } => {
                let agent = self.state.assignee.clone();
                out.push(self.fact(Kind::CsatSent, *at, channel, agent.as_deref()));
            }
            Step::CsatAnswered { at, score, channel } => {
                let agent = self.state.assignee.clone();
                out.push(Fact {
                    value: (*score).clamp(1, 5),
                    ..self.fact(Kind::Csat, *at, channel, agent.as_deref())
                });
            }
        }
        out
    }
}

/// A channel's text form (the facts keep text: a report lists channels it does not know).
pub fn channel_name(c: Channel) -> String {
    c.as_str().to_string()
}

#[cfg(test)]
mod tests;
