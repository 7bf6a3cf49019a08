//! `braid assign|unassign|resolve|reopen|pending|snooze|tag|untag|priority|vip ID ...`: the
//! TUI's workflow verbs from a shell. Each subcommand is the TUI [`Action`] of the same name;
//! [`crate::actions`] turns it into a verb, and the workspace server runs it as the agent it
//! identified (refusing what the agent's role does not allow), exactly as for the TUI.

use super::client::{Client, unexpected};
use super::{Globals, parse_conversation, write_json};
use crate::actions::{Owner, Verb};
use crate::api::{Post, Request, Response};
use crate::model::{Priority, now_millis};
use crate::tui::action::Action;
use serde::Serialize;
use std::io::Write;

/// The conversation a verb acts on, and the output format.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The conversation: 12 or #12
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AssignArgs {
    #[command(flatten)]
    pub target: Target,
    /// The agent (me: you, as the server knows you; none: nobody), or a team of the
    /// workspace (moves the conversation to that team)
    #[arg(value_name = "AGENT")]
    pub agent: String,
    /// Take it even when another agent owns it (without: refused, saying who owns it)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct HandoffArgs {
    #[command(flatten)]
    pub target: Target,
    /// The agent to hand the conversation to (me: you)
    #[arg(value_name = "AGENT")]
    pub agent: String,
    /// An internal note for them, written in the same step
    #[arg(short = 'm', long = "message", value_name = "NOTE")]
    pub note: Option<String>,
    /// Take it even when another agent owns it
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SnoozeArgs {
    #[command(flatten)]
    pub target: Target,
    /// Until when: 30m, 2h, 3d, 1w, tomorrow, monday
    #[arg(value_name = "UNTIL")]
    pub until: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TagArgs {
    #[command(flatten)]
    pub target: Target,
    /// One or more tags
    #[arg(required = true, num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PriorityArgs {
    #[command(flatten)]
    pub target: Target,
    /// low, normal, high or urgent
    #[arg(value_name = "PRIORITY")]
    pub priority: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct VipArgs {
    #[command(flatten)]
    pub target: Target,
    /// Unmark the contact instead
    #[arg(long)]
    pub off: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub target: Target,
    /// The conversation (of the same person) that joins it: 15 or #15
    #[arg(value_name = "OTHER")]
    pub other: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SplitArgs {
    #[command(flatten)]
    pub target: Target,
    /// N: the last N messages start a new conversation; #ID: from message ID on
    #[arg(value_name = "N|#MSG")]
    pub at: String,
}

#[derive(Debug, Serialize)]
struct DoneJson {
    conversation_id: i64,
    /// What changed, one line per verb.
    done: Vec<String>,
}

/// `braid assign ID AGENT|TEAM [--force]`.
pub fn assign(g: &Globals, a: &AssignArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let action = Action::Assign(Some(a.agent.clone()));
    run_with(g, &a.target, &[action], false, a.force, out)
}

/// `braid handoff ID AGENT [-m NOTE] [--force]`: reassign with an internal note, one step.
pub fn handoff(g: &Globals, a: &HandoffArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let arg = match &a.note {
        Some(n) => format!("{} {n}", a.agent.trim()),
        None => a.agent.trim().to_string(),
    };
    run_with(
        g,
        &a.target,
        &[Action::Handoff(Some(arg))],
        false,
        a.force,
        out,
    )
}

/// `braid unassign|resolve|reopen|pending ID`: a verb without an argument.
pub fn plain(g: &Globals, action: Action, t: &Target, out: &mut dyn Write) -> anyhow::Result<()> {
    run(g, t, &[action], false, out)
}

/// `braid snooze ID UNTIL`.
pub fn snooze(g: &Globals, a: &SnoozeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    run(
        g,
        &a.target,
        &[Action::Snooze(Some(a.until.clone()))],
        false,
        out,
    )
}

/// `braid tag ID TAG...` (or `untag` with `remove`).
pub fn tag(g: &Globals, a: &TagArgs, remove: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let actions: Vec<Action> = a
        .tags
        .iter()
        .map(|t| {
            if remove {
                Action::Untag(Some(t.clone()))
            } else {
                Action::Tag(Some(t.clone()))
            }
        })
        .collect();
    run(g, &a.target, &actions, false, out)
}

/// `braid priority ID PRIORITY`.
pub fn priority(g: &Globals, a: &PriorityArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let p = a.priority.parse::<Priority>()?;
    run(g, &a.target, &[Action::Priority(Some(p))], false, out)
}

/// `braid vip ID [--off]`: the TUI's toggle, from the state asked for.
pub fn vip(g: &Globals, a: &VipArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    run(g, &a.target, &[Action::Vip], a.off, out)
}

/// `braid join ID OTHER`: conversation OTHER joins ID (`braid contact unmerge` takes it back).
pub fn join(g: &Globals, a: &JoinArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    run(
        g,
        &a.target,
        &[Action::Join(Some(a.other.clone()))],
        false,
        out,
    )
}

/// `braid split ID N|#MSG`: the tail of a conversation becomes a new one.
pub fn split(g: &Globals, a: &SplitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    run(
        g,
        &a.target,
        &[Action::Split(Some(a.at.clone()))],
        false,
        out,
    )
}

/// Map each action to its verb and run it on the conversation, as the TUI does.
fn run(
    g: &Globals,
    t: &Target,
    actions: &[Action],
    vip_now: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    run_with(g, t, actions, vip_now, false, out)
}

/// [`run`]; `force`: an assignment takes the conversation from whoever owns it.
fn run_with(
    g: &Globals,
    t: &Target,
    actions: &[Action],
    vip_now: bool,
    force: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let id = parse_conversation(&t.id)?;
    let (client, _config) = Client::open(g, "verb")?;
    let now = now_millis();
    let mut done = Vec::new();
    for action in actions {
        // `me` is the agent the server knows us as.
        let verb: Verb = Verb::from_action(action, client.agent(), now, vip_now)
            .map_err(anyhow::Error::msg)?
            .ok_or_else(|| anyhow::anyhow!("{} needs an argument", action.name()))?;
        // A team's name moves the conversation to the team (the server's welcome names them).
        let verb = verb.resolve_names(&client.welcome().agents, &client.welcome().workspace_teams);
        let verb = match verb {
            Verb::Assign(to) if force => Verb::Reassign {
                to,
                owner: Owner::Any,
                note: None,
            },
            Verb::Reassign { to, note, .. } if force => Verb::Reassign {
                to,
                owner: Owner::Any,
                note,
            },
            v => v,
        };
        let name = verb.name();
        match client.call(Request::Post {
            conversation: id,
            post: Post::Verb(verb),
        })? {
            Response::Written(w) => done.push(w.done),
            other => return Err(unexpected(name, &other)),
        }
    }
    drop(client);
    if t.json {
        return write_json(
            out,
            &DoneJson {
                conversation_id: id.0,
                done,
            },
        );
    }
    for line in done {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
