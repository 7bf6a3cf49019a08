//! The `braid` binary: parse the command line, dispatch to `braid::cli`. Nothing else lives here.

use braid::cli::{self, Globals};
use braid::tui::action::Action;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A terminal omnichannel inbox: email, Telegram and web chat in one queue; one contact per
/// person, one timeline. Without a subcommand, opens the inbox (TUI).
#[derive(Debug, Parser)]
#[command(name = "braid", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build (or reopen) the demo workspace and open the inbox on it
    Demo(cli::demo::Args),
    /// The workspace server: owns the store, runs the channels, serves the agents (alias: serve)
    #[command(alias = "serve")]
    Server(cli::server::Args),
    /// Bridge stdin/stdout to the server's socket (for `braid --remote ssh://host`)
    Attach(cli::attach::Args),
    /// Where the store is, queue counters, outbox, worker, your unread notifications
    Status(cli::status::Args),
    /// Your notifications, newest first (--read ID / --read-all mark them read)
    Notifications(cli::notifications::Args),
    /// Who is online (agents with a braid open) and which conversation each is in
    Who(cli::who::Args),
    /// Workflow rules: check the files, dry-run them on a conversation or a message
    Rules(cli::rules::Args),
    /// Webhooks out (admins): each endpoint's queue, a signed test ping, retry the failed
    Webhooks(cli::webhooks::Args),
    /// Campaigns (drip sequences): dry-run, start, stop, status
    Campaign(cli::campaign::Args),
    /// Response times, volumes, SLA and CSAT over a date range, by channel, agent, team,
    /// tag, day, week or month (table, csv or json)
    Report(cli::report::Args),
    /// Open tasks, soonest due first (--mine, --overdue, --team T, --all)
    Tasks(cli::tasks::ListArgs),
    /// Add a task on a conversation (`task add 12 --when "tomorrow 10:00" --kind call`) or
    /// close one (`task close ID`)
    Task(cli::tasks::TaskArgs),
    /// List conversations of a queue view, newest activity first
    List(cli::list::Args),
    /// A conversation and its contact's whole timeline, every channel, oldest first
    Show(cli::show::Args),
    /// Full-text search; each hit with its conversation, contact, channel, time and snippet
    Search(cli::search::Args),
    /// Queue a reply (the worker sends it)
    Reply(cli::reply::Args),
    /// Add an internal note (never sent)
    Note(cli::note::Args),
    /// Assign a conversation to an agent (me: you; none: nobody)
    Assign(cli::verb::AssignArgs),
    /// Hand a conversation to an agent with an internal note, in one step
    Handoff(cli::verb::HandoffArgs),
    /// Remove a conversation's assignee
    Unassign(cli::verb::Target),
    /// Resolve a conversation
    Resolve(cli::verb::Target),
    /// Reopen a conversation
    Reopen(cli::verb::Target),
    /// Pending: waiting on the customer (their next message opens it again)
    Pending(cli::verb::Target),
    /// Snooze a conversation until a time (it reopens by itself)
    Snooze(cli::verb::SnoozeArgs),
    /// Add tags to a conversation
    Tag(cli::verb::TagArgs),
    /// Remove tags from a conversation
    Untag(cli::verb::TagArgs),
    /// Set a conversation's priority
    Priority(cli::verb::PriorityArgs),
    /// Mark the conversation's contact as VIP (--off: unmark)
    Vip(cli::verb::VipArgs),
    /// Who did what, when: the audit log, newest first (changes, replies, notes, refusals)
    Audit(cli::audit::Args),
    /// List contacts with their identities
    Contacts(cli::contacts::Args),
    /// One contact: merge, unmerge (exactly), the merges' provenance, identities,
    /// duplicates, consent, GDPR export and forget, fields, stage and score
    Contact(cli::contact::Args),
    /// Conversation OTHER (of the same person) joins conversation ID
    Join(cli::verb::JoinArgs),
    /// The last N messages of a conversation (or from #MSG on) become a new conversation
    Split(cli::verb::SplitArgs),
    /// Import mail history from a Maildir or an mbox file (idempotent)
    Import(cli::import::Args),
    /// One full pass of every configured channel (email folders, Telegram, outbox), then exit
    Sync(cli::sync::Args),
}

fn main() -> ExitCode {
    // Before any thread exists: the local UTC offset can only be read then.
    cli::init_local_offset();
    let args = match Cli::try_parse() {
        Ok(args) => args,
        Err(e) => return cli::usage_error(e),
    };
    let g = &args.globals;
    let result = match &args.command {
        None => cli::run_tui(g),
        Some(Command::Demo(a)) => cli::demo::run(g, a),
        Some(Command::Server(a)) => cli::server::run(g, a),
        Some(Command::Attach(a)) => cli::attach::run(g, a),
        Some(Command::Status(a)) => cli::to_stdout(|out| cli::status::run(g, a, out)),
        Some(Command::Notifications(a)) => cli::to_stdout(|out| cli::notifications::run(g, a, out)),
        Some(Command::Who(a)) => cli::to_stdout(|out| cli::who::run(g, a, out)),
        Some(Command::Rules(a)) => cli::to_stdout(|out| cli::rules::run(g, a, out)),
        Some(Command::Webhooks(a)) => cli::to_stdout(|out| cli::webhooks::run(g, a, out)),
        Some(Command::Campaign(a)) => cli::to_stdout(|out| cli::campaign::run(g, a, out)),
        Some(Command::Report(a)) => cli::to_stdout(|out| cli::report::run(g, a, out)),
        Some(Command::Tasks(a)) => cli::to_stdout(|out| cli::tasks::list(g, a, out)),
        Some(Command::Task(a)) => cli::to_stdout(|out| cli::tasks::task(g, a, out)),
        Some(Command::List(a)) => cli::to_stdout(|out| cli::list::run(g, a, out)),
        Some(Command::Show(a)) => cli::to_stdout(|out| cli::show::run(g, a, out)),
        Some(Command::Search(a)) => cli::to_stdout(|out| cli::search::run(g, a, out)),
        Some(Command::Reply(a)) => cli::to_stdout(|out| cli::reply::run(g, a, out)),
        Some(Command::Note(a)) => cli::to_stdout(|out| cli::note::run(g, a, out)),
        Some(Command::Assign(a)) => cli::to_stdout(|out| cli::verb::assign(g, a, out)),
        Some(Command::Handoff(a)) => cli::to_stdout(|out| cli::verb::handoff(g, a, out)),
        Some(Command::Unassign(t)) => {
            cli::to_stdout(|out| cli::verb::plain(g, Action::Unassign, t, out))
        }
        Some(Command::Resolve(t)) => {
            cli::to_stdout(|out| cli::verb::plain(g, Action::Resolve, t, out))
        }
        Some(Command::Reopen(t)) => {
            cli::to_stdout(|out| cli::verb::plain(g, Action::Reopen, t, out))
        }
        Some(Command::Pending(t)) => {
            cli::to_stdout(|out| cli::verb::plain(g, Action::Pending, t, out))
        }
        Some(Command::Snooze(a)) => cli::to_stdout(|out| cli::verb::snooze(g, a, out)),
        Some(Command::Tag(a)) => cli::to_stdout(|out| cli::verb::tag(g, a, false, out)),
        Some(Command::Untag(a)) => cli::to_stdout(|out| cli::verb::tag(g, a, true, out)),
        Some(Command::Priority(a)) => cli::to_stdout(|out| cli::verb::priority(g, a, out)),
        Some(Command::Vip(a)) => cli::to_stdout(|out| cli::verb::vip(g, a, out)),
        Some(Command::Join(a)) => cli::to_stdout(|out| cli::verb::join(g, a, out)),
        Some(Command::Split(a)) => cli::to_stdout(|out| cli::verb::split(g, a, out)),
        Some(Command::Contact(a)) => cli::to_stdout(|out| cli::contact::run(g, a, out)),
        Some(Command::Audit(a)) => cli::to_stdout(|out| cli::audit::run(g, a, out)),
        Some(Command::Contacts(a)) => cli::to_stdout(|out| cli::contacts::run(g, a, out)),
        Some(Command::Import(a)) => cli::to_stdout(|out| cli::import::run(g, a, out)),
        Some(Command::Sync(a)) => cli::to_stdout(|out| cli::sync::run(g, a, out)),
    };
    cli::finish(result)
}
