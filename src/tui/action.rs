//! Every verb the user can do, defined once. Keys (config/keymap.toml), the `:` command line and
//! the help screen all map to [`Action`] through the [`COMMANDS`] table: a command's name is what
//! you type after `:` and what a keymap binds, its doc is the line help shows.

use crate::model::{Channel, ConversationId, IdentityKind, Priority};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    // movement (a count repeats or scales them)
    MoveDown,
    MoveUp,
    Top,
    Bottom,
    HalfPageDown,
    HalfPageUp,
    FocusNext,
    FocusPrev,
    FocusLeft,
    FocusRight,
    /// Open the selected conversation, or (with an id) conversation #ID.
    Open(Option<ConversationId>),
    NextMatch,
    PrevMatch,
    // conversation verbs
    Reply,
    ReplyVia(Option<Channel>),
    Note,
    Assign(Option<String>),
    AssignMe,
    /// `:handoff AGENT [note]`: reassign with an internal note, in one step.
    Handoff(Option<String>),
    /// `:template NAME [PARAMS]`: send an approved WhatsApp template (the way to write
    /// outside the 24-hour window).
    Template(Option<String>),
    /// `:macro NAME`: run a named macro's steps on the conversation.
    Macro(Option<String>),
    /// `:suggest`: ask the workspace's suggest command for a draft (into the composer).
    Suggest,
    Unassign,
    Resolve,
    Reopen,
    Pending,
    Snooze(Option<String>),
    Tag(Option<String>),
    Untag(Option<String>),
    Priority(Option<Priority>),
    Vip,
    Retry,
    Save(Option<String>),
    IdentityAdd(Option<(IdentityKind, String)>),
    /// `:set FIELD VALUE`: a custom field of the contact (see [`crate::fields`]).
    SetField(Option<String>),
    /// `:unset FIELD`: clear a field of the contact.
    UnsetField(Option<String>),
    /// `:stage NAME`: the contact's lifecycle stage (`none` clears it).
    Stage(Option<String>),
    /// `:score +N|-N|N`: add to, take from or set the contact's lead score.
    Score(Option<String>),
    ToggleQuoted,
    // views
    View(Option<String>),
    /// `:audit [filters]`: the audit log, newest first.
    Audit(Option<String>),
    Search(Option<String>),
    CommandLine,
    ToggleProfile,
    Help,
    Refresh,
    Quit,
    // composer
    Send,
    EditExternal,
    Cancel,
    // identity claims (an email typed in the web chat): link or dismiss, audited
    Claim(Option<ClaimDecision>),
    // notifications
    Notifications,
    MarkAllRead,
    /// Who is online and where.
    Who,
    /// `:campaigns`: the campaigns' progress.
    Campaigns,
    /// `:campaign stop NAME`.
    Campaign(Option<String>),
    /// The workflow rules and their matches.
    Rules,
    /// Composer: throw the draft away and close.
    Discard,
    // bulk editing
    /// `u`: undo your last change (server-side, audited); again goes further back.
    Undo,
    /// `.`: repeat the last change on the current conversation (a count: on that many rows
    /// from the cursor down; with a selection: on the selection).
    Repeat,
    /// `V`: start (or leave) a visual line selection in the queue.
    Visual,
    /// `:g/PATTERN/COMMAND` (`:v/PATTERN/COMMAND` with `invert`): run a queue verb over
    /// every conversation of the view the search matches (or does not).
    Global {
        invert: bool,
        arg: Option<GlobalArg>,
    },
    // scheduled replies and tasks
    /// `:send-at WHEN`: write a reply that goes out at that time (the composer opens on the
    /// saved draft; send schedules it).
    SendAt(Option<String>),
    /// `:cancel-send`: cancel the conversation's scheduled reply that has not gone out.
    CancelSend,
    /// `:task [KIND] WHEN [-- TITLE]`: a task on the conversation, assigned to me.
    Task(Option<String>),
    /// `:consent marketing|all on|off`: record what the customer asked (their consent).
    Consent(Option<String>),
    /// `:tasks [mine|overdue|team NAME|all]` (`g t`): the tasks view.
    Tasks(Option<String>),
    /// In the tasks view: mark the selected task done.
    CloseTask,
    /// In the tasks view: the next view (mine, overdue, team, all).
    TasksCycle,
    // reports
    /// `:reports` (`g R`): the reports view (response times, volume, agents, CSAT, SLA).
    Reports,
    /// In the reports view: the date range moves back by its length.
    ReportBack,
    /// In the reports view: the date range moves forward by its length.
    ReportForward,
    /// In the reports view: a longer range (7 days, 30 days, 90 days, a year).
    ReportLonger,
    /// In the reports view: a shorter range.
    ReportShorter,
    /// In the reports view: the main table's next slicing (channel, agent, team, tag, day,
    /// week, month).
    ReportSlice,
    /// In the reports view: wall-clock or business-hours durations.
    ReportBusiness,
    // contacts: merges you can take back
    /// `:merge ID [reason]`: contact #ID joins this one (`:merge-into ID` the other way); a
    /// preview of what moves asks first.
    Merge(Option<String>),
    /// `:merge-into ID [reason]`: this contact joins #ID.
    MergeInto(Option<String>),
    /// `:unmerge [N]`: take back merge N, or the newest one involving this contact.
    Unmerge(Option<String>),
    /// `:merges`: the merges involving this contact (provenance: who, when, why, what moved).
    Merges,
    /// `:duplicates`: contacts that are likely one person, to merge or dismiss.
    Duplicates,
    /// `:join ID`: conversation #ID (same person) joins this one.
    Join(Option<String>),
    /// `:split N|#MSG`: the last N messages (or from message #MSG on) become a new
    /// conversation.
    Split(Option<String>),
    /// `:identity-remove KIND VALUE`: take an identity off this contact.
    IdentityRemove(Option<(IdentityKind, String)>),
    /// `:identity-move KIND VALUE ID`: move one of this contact's identities to contact #ID.
    IdentityMove(Option<(IdentityKind, String, crate::model::ContactId)>),
    /// In the duplicates view: merge the selected pair (the older contact survives).
    MergePair,
    /// In the duplicates view: these two are not one person.
    DismissPair,
    /// `:pipeline [STAGE]` (`g p`): contacts per lifecycle stage.
    Pipeline(Option<String>),
    /// In the pipeline view: the next stage.
    NextStage,
}

/// A contact id as typed: `42` or `#42`.
pub fn parse_contact_id(s: &str) -> Result<crate::model::ContactId, String> {
    let t = s.trim();
    t.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .map(crate::model::ContactId)
        .ok_or_else(|| {
            format!(
                "'{t}' is not a contact id: give its number, e.g. 42 (braid contacts lists them)"
            )
        })
}

/// The two parts of `:g/PATTERN/COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArg {
    /// A search in the `/` syntax (may be empty: every conversation of the view).
    pub pattern: String,
    /// The ex command to run on each, e.g. `tag refund`, `assign team billing`.
    pub command: String,
}

/// `/PATTERN/COMMAND` (the part after `:g`).
fn parse_global(rest: &str) -> Result<GlobalArg, String> {
    let usage = "usage: g/PATTERN/COMMAND, e.g. g/refund from:bigcorp.com/assign team billing";
    let rest = rest.strip_prefix('/').ok_or(usage)?;
    let (pattern, command) = rest.split_once('/').ok_or(usage)?;
    if command.trim().is_empty() {
        return Err(usage.into());
    }
    Ok(GlobalArg {
        pattern: pattern.trim().to_string(),
        command: command.trim().to_string(),
    })
}

/// `:claim link [ADDRESS]` / `:claim dismiss [ADDRESS]` (the address: when there are several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimDecision {
    pub link: bool,
    pub value: Option<String>,
}

pub use crate::model::parse_conversation_id;

/// How a command takes its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    None,
    /// Optional: without it the command prompts for it.
    Optional(&'static str),
}

pub struct Command {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub args: Args,
    pub doc: &'static str,
}

macro_rules! cmd {
    ($name:literal, [$($alias:literal),*], $args:expr, $doc:literal) => {
        Command { name: $name, aliases: &[$($alias),*], args: $args, doc: $doc }
    };
}

/// The one table of commands. Order is the help screen's order.
pub const COMMANDS: &[Command] = &[
    cmd!(
        "move_down",
        [],
        Args::None,
        "Move down (a count moves that many)"
    ),
    cmd!(
        "move_up",
        [],
        Args::None,
        "Move up (a count moves that many)"
    ),
    cmd!(
        "top",
        ["first"],
        Args::None,
        "Go to the first row (a count: that row)"
    ),
    cmd!(
        "bottom",
        ["last"],
        Args::None,
        "Go to the last row (a count: that row)"
    ),
    cmd!("half_page_down", [], Args::None, "Scroll half a page down"),
    cmd!("half_page_up", [], Args::None, "Scroll half a page up"),
    cmd!("focus_next", [], Args::None, "Focus the next pane"),
    cmd!("focus_prev", [], Args::None, "Focus the previous pane"),
    cmd!("focus_left", [], Args::None, "Focus the pane to the left"),
    cmd!("focus_right", [], Args::None, "Focus the pane to the right"),
    cmd!(
        "open",
        [],
        Args::Optional("conversation id, e.g. 522 (:#522 too)"),
        "Open the selected conversation, or conversation #ID (focus its timeline)"
    ),
    cmd!(
        "next_match",
        [],
        Args::None,
        "Go to the next search match in the timeline"
    ),
    cmd!(
        "prev_match",
        [],
        Args::None,
        "Go to the previous search match in the timeline"
    ),
    cmd!(
        "reply",
        [],
        Args::None,
        "Reply on the channel the customer last wrote on"
    ),
    cmd!(
        "reply_via",
        ["via"],
        Args::Optional("channel"),
        "Reply choosing the channel (Tab lists the ones that reach the customer)"
    ),
    cmd!(
        "template",
        [],
        Args::Optional("name [params]"),
        "Insert a canned reply into the composer, or send an approved WhatsApp template (Tab lists both)"
    ),
    cmd!(
        "macro",
        [],
        Args::Optional("name"),
        "Run a named macro ([macros] in the config) on the conversation"
    ),
    cmd!(
        "suggest",
        [],
        Args::None,
        "Ask the workspace's suggest command for a draft reply (put in the composer, never sent)"
    ),
    cmd!(
        "note",
        [],
        Args::None,
        "Write an internal note (never sent)"
    ),
    cmd!(
        "assign",
        [],
        Args::Optional("agent"),
        "Assign to an agent, or to a team (moves it there); asks before taking it from someone"
    ),
    cmd!(
        "assign_me",
        ["take"],
        Args::None,
        "Assign the conversation to me"
    ),
    cmd!(
        "handoff",
        [],
        Args::Optional("agent [note]"),
        "Hand the conversation to an agent with an internal note (one step, both audited)"
    ),
    cmd!("unassign", [], Args::None, "Remove the assignee"),
    cmd!(
        "resolve",
        ["done", "close"],
        Args::None,
        "Resolve the conversation"
    ),
    cmd!(
        "reopen",
        ["open_again"],
        Args::None,
        "Reopen the conversation"
    ),
    cmd!(
        "pending",
        ["wait"],
        Args::None,
        "Pending: waiting on the customer; their next message opens it again"
    ),
    cmd!(
        "snooze",
        [],
        Args::Optional("duration: 30m, 2h, 3d, tomorrow"),
        "Snooze until a time; it reopens by itself"
    ),
    cmd!(
        "tag",
        [],
        Args::Optional("tag"),
        "Add a tag to the conversation"
    ),
    cmd!(
        "untag",
        [],
        Args::Optional("tag"),
        "Remove a tag from the conversation"
    ),
    cmd!(
        "priority",
        ["prio"],
        Args::Optional("low, normal, high, urgent"),
        "Set the priority"
    ),
    cmd!("vip", [], Args::None, "Mark or unmark the contact as VIP"),
    cmd!(
        "set",
        [],
        Args::Optional("FIELD VALUE (fields of [[fields]] in the workspace config)"),
        "Set a custom field of the contact, e.g. :set plan pro"
    ),
    cmd!(
        "unset",
        [],
        Args::Optional("FIELD"),
        "Clear a custom field of the contact"
    ),
    cmd!(
        "stage",
        [],
        Args::Optional("stage: lead, qualified, customer, churned (or none)"),
        "Move the contact to a lifecycle stage"
    ),
    cmd!(
        "score",
        [],
        Args::Optional("+N adds, -N takes away, N sets"),
        "Change the contact's lead score"
    ),
    cmd!(
        "retry",
        [],
        Args::None,
        "Send the conversation's last failed reply again"
    ),
    cmd!(
        "save",
        [],
        Args::Optional("folder (default: Downloads)"),
        "Save the files of the newest message with attachments"
    ),
    cmd!(
        "identity_add",
        ["identity"],
        Args::Optional("kind value, e.g. phone +44 20 7946 0958"),
        "Add an identity to the contact (merges if someone has it)"
    ),
    cmd!(
        "toggle_quoted",
        ["expand"],
        Args::None,
        "Show or fold quoted text in the timeline"
    ),
    cmd!(
        "view",
        [],
        Args::Optional("open, pending, snoozed, resolved, mine, unassigned, all, team NAME"),
        "Show a queue view (team NAME: a team's open conversations)"
    ),
    cmd!(
        "audit",
        [],
        Args::Optional("filters: agent:NAME conv:ID kind:K since:T until:T at:T|ID|50%"),
        "The audit log: who did what, when (newest first; Enter opens the conversation)"
    ),
    cmd!(
        "search",
        [],
        Args::Optional("query"),
        "Full-text search; results become the queue"
    ),
    cmd!(
        "command_line",
        ["cmd"],
        Args::None,
        "Open the : command line"
    ),
    cmd!(
        "toggle_profile",
        ["profile"],
        Args::None,
        "Show or hide the contact profile"
    ),
    cmd!("help", [], Args::None, "Show the keys and commands"),
    cmd!(
        "refresh",
        [],
        Args::None,
        "Reload everything from the store"
    ),
    cmd!("quit", ["q"], Args::None, "Quit braid"),
    cmd!(
        "send",
        [],
        Args::None,
        "Send the reply or save the note (composer)"
    ),
    cmd!(
        "edit_external",
        ["editor"],
        Args::None,
        "Edit the text in $EDITOR (composer)"
    ),
    cmd!(
        "cancel",
        [],
        Args::None,
        "Cancel: close the prompt or composer (the draft is kept)"
    ),
    cmd!(
        "campaigns",
        [],
        Args::None,
        "Campaigns: progress of each (enrolled, sent per step, left, excluded, failed); Enter lists a campaign's failures"
    ),
    cmd!(
        "campaign",
        [],
        Args::Optional("stop NAME"),
        "Stop a campaign (admin): no step not yet queued goes"
    ),
    cmd!(
        "who",
        ["online"],
        Args::None,
        "Who is online, and which conversation each is viewing or typing in"
    ),
    cmd!(
        "rules",
        [],
        Args::None,
        "The workflow rules the server runs, with their matches in the last 7 days"
    ),
    cmd!(
        "discard",
        [],
        Args::None,
        "Throw the draft away and close the composer (composer)"
    ),
    cmd!(
        "claim",
        [],
        Args::Optional("link|dismiss [address]"),
        "Link the contact to the email they claimed (unverified), or dismiss the claim"
    ),
    cmd!(
        "notifications",
        ["notifs"],
        Args::None,
        "Your notifications, newest first (mentions, assignments, customer messages); Enter opens one"
    ),
    cmd!(
        "undo",
        [],
        Args::None,
        "Undo your last change (status, snooze, assignee, priority, tags, team; a whole bulk change at once); again goes further back"
    ),
    cmd!(
        "repeat",
        [],
        Args::None,
        "Repeat your last change on this conversation (a count: on that many rows; or on the selection)"
    ),
    cmd!(
        "visual",
        [],
        Args::None,
        "Select queue rows (j/k/counts/G/gg extend); a verb then applies to every selected one; Esc leaves"
    ),
    cmd!(
        "global",
        ["g"],
        Args::Optional("/PATTERN/COMMAND, e.g. /refund from:bigcorp.com/assign team billing"),
        "Run a verb on every conversation of the view that matches a search (asks first above a count)"
    ),
    cmd!(
        "vglobal",
        ["v"],
        Args::Optional("/PATTERN/COMMAND"),
        "Like global, on every conversation of the view that does NOT match"
    ),
    cmd!(
        "mark_all_read",
        [],
        Args::None,
        "Mark all your notifications read"
    ),
    cmd!(
        "send_at",
        ["send-at"],
        Args::Optional(
            "when: monday 9:00, tomorrow 10:00, 2h, 2026-12-08 14:00, next business morning"
        ),
        "Write a reply that goes out at that time (kept in the outbox, shown scheduled, cancellable)"
    ),
    cmd!(
        "cancel_send",
        ["cancel-send"],
        Args::None,
        "Cancel the conversation's scheduled reply before it goes out"
    ),
    cmd!(
        "consent",
        [],
        Args::Optional("marketing|all on|off, e.g. marketing off"),
        "Record the customer's consent: no marketing, or nothing at all (all off)"
    ),
    cmd!(
        "task",
        [],
        Args::Optional("[KIND] WHEN [-- TITLE], e.g. call tomorrow 10:00 -- ask about the refund"),
        "Add a task on the conversation for you, due then (notified when due)"
    ),
    cmd!(
        "tasks",
        [],
        Args::Optional("mine, overdue, team NAME, all"),
        "The tasks view, soonest due first (Enter opens, x done, v next view)"
    ),
    cmd!(
        "close_task",
        [],
        Args::None,
        "Mark the selected task done (tasks view)"
    ),
    cmd!(
        "tasks_cycle",
        [],
        Args::None,
        "Switch the tasks view: mine, overdue, team, all (tasks view)"
    ),
    cmd!(
        "reports",
        [],
        Args::None,
        "Reports: first response per channel, volume and backlog, agents, CSAT, SLA (g R)"
    ),
    cmd!(
        "report_back",
        [],
        Args::None,
        "Move the report's date range back by its length (reports view)"
    ),
    cmd!(
        "report_forward",
        [],
        Args::None,
        "Move the report's date range forward by its length, up to today (reports view)"
    ),
    cmd!(
        "report_longer",
        [],
        Args::None,
        "A longer report range: 7 days, 30 days, 90 days, a year (reports view)"
    ),
    cmd!(
        "report_shorter",
        [],
        Args::None,
        "A shorter report range: a year, 90 days, 30 days, 7 days (reports view)"
    ),
    cmd!(
        "report_slice",
        [],
        Args::None,
        "Slice the report's table by channel, agent, team, tag, day, week, month (reports view)"
    ),
    cmd!(
        "report_business",
        [],
        Args::None,
        "Show durations in wall-clock time or in business hours (reports view)"
    ),
    cmd!(
        "merge",
        [],
        Args::Optional("contact id [reason]"),
        "Merge contact #ID into this one (a preview asks first; :unmerge takes it back)"
    ),
    cmd!(
        "merge_into",
        ["merge-into"],
        Args::Optional("contact id [reason]"),
        "Merge this contact into #ID (a preview asks first)"
    ),
    cmd!(
        "unmerge",
        [],
        Args::Optional("merge id"),
        "Take back a merge (default: the newest involving this contact), exactly as it was"
    ),
    cmd!(
        "merges",
        [],
        Args::None,
        "The merges involving this contact: who, when, why, what moved"
    ),
    cmd!(
        "duplicates",
        ["dupes"],
        Args::None,
        "Contacts that are likely one person: m merges a pair, d dismisses it"
    ),
    cmd!(
        "join",
        ["merge_conversation"],
        Args::Optional("conversation id"),
        "Conversation #ID of the same person joins this one (:unmerge takes it back)"
    ),
    cmd!(
        "split",
        [],
        Args::Optional("N or #message"),
        "The last N messages (or from #message on) become a new conversation"
    ),
    cmd!(
        "identity_remove",
        ["identity-remove"],
        Args::Optional("kind value"),
        "Take an identity off this contact (audited)"
    ),
    cmd!(
        "identity_move",
        ["identity-move"],
        Args::Optional("kind value contact-id"),
        "Move one of this contact's identities to contact #ID (audited)"
    ),
    cmd!(
        "merge_pair",
        [],
        Args::None,
        "Merge the selected pair, the older contact surviving (duplicates view)"
    ),
    cmd!(
        "pipeline",
        [],
        Args::Optional("stage"),
        "The pipeline: contacts per lifecycle stage, by lead score (Tab: next stage)"
    ),
    cmd!(
        "next_stage",
        [],
        Args::None,
        "The next stage (pipeline view)"
    ),
    cmd!(
        "dismiss_pair",
        [],
        Args::None,
        "Not one person: stop suggesting the selected pair (duplicates view)"
    ),
];

impl Command {
    pub fn find(name: &str) -> Option<&'static Command> {
        COMMANDS
            .iter()
            .find(|c| c.name == name || c.aliases.contains(&name))
    }
}

impl Action {
    /// The command name of this action (the `:` word and the keymap value).
    pub fn name(&self) -> &'static str {
        match self {
            Action::MoveDown => "move_down",
            Action::MoveUp => "move_up",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::HalfPageDown => "half_page_down",
            Action::HalfPageUp => "half_page_up",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::FocusLeft => "focus_left",
            Action::FocusRight => "focus_right",
            Action::Open(_) => "open",
            Action::NextMatch => "next_match",
            Action::PrevMatch => "prev_match",
            Action::Reply => "reply",
            Action::ReplyVia(_) => "reply_via",
            Action::Note => "note",
            Action::Assign(_) => "assign",
            Action::AssignMe => "assign_me",
            Action::Handoff(_) => "handoff",
            Action::Template(_) => "template",
            Action::Macro(_) => "macro",
            Action::Suggest => "suggest",
            Action::Unassign => "unassign",
            Action::Resolve => "resolve",
            Action::Reopen => "reopen",
            Action::Pending => "pending",
            Action::Snooze(_) => "snooze",
            Action::Tag(_) => "tag",
            Action::Untag(_) => "untag",
            Action::Priority(_) => "priority",
            Action::Vip => "vip",
            Action::Retry => "retry",
            Action::Save(_) => "save",
            Action::IdentityAdd(_) => "identity_add",
            Action::SetField(_) => "set",
            Action::UnsetField(_) => "unset",
            Action::Stage(_) => "stage",
            Action::Score(_) => "score",
            Action::ToggleQuoted => "toggle_quoted",
            Action::View(_) => "view",
            Action::Audit(_) => "audit",
            Action::Search(_) => "search",
            Action::CommandLine => "command_line",
            Action::ToggleProfile => "toggle_profile",
            Action::Help => "help",
            Action::Refresh => "refresh",
            Action::Quit => "quit",
            Action::Send => "send",
            Action::EditExternal => "edit_external",
            Action::Cancel => "cancel",
            Action::Claim(_) => "claim",
            Action::Notifications => "notifications",
            Action::MarkAllRead => "mark_all_read",
            Action::Who => "who",
            Action::Campaigns => "campaigns",
            Action::Campaign(_) => "campaign",
            Action::Rules => "rules",
            Action::Discard => "discard",
            Action::Undo => "undo",
            Action::Repeat => "repeat",
            Action::Visual => "visual",
            Action::Global { invert: false, .. } => "global",
            Action::Global { invert: true, .. } => "vglobal",
            Action::SendAt(_) => "send_at",
            Action::CancelSend => "cancel_send",
            Action::Task(_) => "task",
            Action::Consent(_) => "consent",
            Action::Tasks(_) => "tasks",
            Action::CloseTask => "close_task",
            Action::TasksCycle => "tasks_cycle",
            Action::Reports => "reports",
            Action::ReportBack => "report_back",
            Action::ReportForward => "report_forward",
            Action::ReportLonger => "report_longer",
            Action::ReportShorter => "report_shorter",
            Action::ReportSlice => "report_slice",
            Action::ReportBusiness => "report_business",
            Action::Merge(_) => "merge",
            Action::MergeInto(_) => "merge_into",
            Action::Unmerge(_) => "unmerge",
            Action::Merges => "merges",
            Action::Duplicates => "duplicates",
            Action::Join(_) => "join",
            Action::Split(_) => "split",
            Action::IdentityRemove(_) => "identity_remove",
            Action::IdentityMove(_) => "identity_move",
            Action::MergePair => "merge_pair",
            Action::DismissPair => "dismiss_pair",
            Action::Pipeline(_) => "pipeline",
            Action::NextStage => "next_stage",
        }
    }

    /// Parse a command line (without the leading `:`), e.g. `assign bob`, `snooze 2h`,
    /// `identity add phone +44 20 7946 0958`. Used by the `:` prompt and by keymap values.
    pub fn parse(line: &str) -> Result<Action, String> {
        let line = line.trim();
        // `:g/PATTERN/COMMAND`: the pattern holds spaces, so it is split before the words.
        for (prefix, invert) in [
            ("g/", false),
            ("global/", false),
            ("v/", true),
            ("vglobal/", true),
        ] {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(Action::Global {
                    invert,
                    arg: Some(parse_global(&format!("/{rest}"))?),
                });
            }
        }
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        if word.is_empty() {
            return Err("empty command".into());
        }
        let cmd = Command::find(word).ok_or_else(|| format!("unknown command '{word}'"))?;
        let arg = if rest.is_empty() {
            None
        } else {
            Some(rest.to_string())
        };
        if cmd.args == Args::None && arg.is_some() {
            return Err(format!("{} takes no argument", cmd.name));
        }
        Ok(match cmd.name {
            "move_down" => Action::MoveDown,
            "move_up" => Action::MoveUp,
            "top" => Action::Top,
            "bottom" => Action::Bottom,
            "half_page_down" => Action::HalfPageDown,
            "half_page_up" => Action::HalfPageUp,
            "focus_next" => Action::FocusNext,
            "focus_prev" => Action::FocusPrev,
            "focus_left" => Action::FocusLeft,
            "focus_right" => Action::FocusRight,
            "open" => Action::Open(arg.map(|a| parse_conversation_id(&a)).transpose()?),
            "next_match" => Action::NextMatch,
            "prev_match" => Action::PrevMatch,
            "reply" => Action::Reply,
            "reply_via" => Action::ReplyVia(
                arg.map(|a| a.parse::<Channel>().map_err(|e| e.to_string()))
                    .transpose()?,
            ),
            "note" => Action::Note,
            "assign" => Action::Assign(arg),
            "assign_me" => Action::AssignMe,
            "handoff" => Action::Handoff(arg),
            "template" => Action::Template(arg),
            "macro" => Action::Macro(arg),
            "suggest" => Action::Suggest,
            "unassign" => Action::Unassign,
            "resolve" => Action::Resolve,
            "reopen" => Action::Reopen,
            "pending" => Action::Pending,
            "snooze" => Action::Snooze(arg),
            "tag" => Action::Tag(arg),
            "untag" => Action::Untag(arg),
            "priority" => Action::Priority(
                arg.map(|a| a.parse::<Priority>().map_err(|e| e.to_string()))
                    .transpose()?,
            ),
            "vip" => Action::Vip,
            "retry" => Action::Retry,
            "save" => Action::Save(arg),
            "identity_add" => Action::IdentityAdd(match arg {
                None => None,
                Some(a) => {
                    // `:identity add phone +44...` and `:identity_add phone +44...` both work.
                    let a = a.strip_prefix("add ").map(str::trim).unwrap_or(&a);
                    let (kind, value) = a.split_once(char::is_whitespace).ok_or(
                        "usage: identity add KIND VALUE (email, phone, telegram, webchat, instagram, messenger, external)",
                    )?;
                    let kind = kind.parse::<IdentityKind>().map_err(|e| e.to_string())?;
                    Some((kind, value.trim().to_string()))
                }
            }),
            "set" => Action::SetField(arg),
            "unset" => Action::UnsetField(arg),
            "stage" => Action::Stage(arg),
            "score" => Action::Score(arg),
            "toggle_quoted" => Action::ToggleQuoted,
            "view" => Action::View(arg),
            "audit" => Action::Audit(arg),
            "search" => Action::Search(arg),
            "command_line" => Action::CommandLine,
            "toggle_profile" => Action::ToggleProfile,
            "help" => Action::Help,
            "refresh" => Action::Refresh,
            "quit" => Action::Quit,
            "send" => Action::Send,
            "edit_external" => Action::EditExternal,
            "cancel" => Action::Cancel,
            "who" => Action::Who,
            "campaigns" => Action::Campaigns,
            "campaign" => Action::Campaign(arg),
            "rules" => Action::Rules,
            "discard" => Action::Discard,
            "claim" => Action::Claim(match arg {
                None => None,
                Some(a) => {
                    let (verb, value) = match a.split_once(char::is_whitespace) {
                        Some((v, rest)) => (v, Some(rest.trim().to_string())),
                        None => (a.as_str(), None),
                    };
                    let link = match verb {
                        "link" => true,
                        "dismiss" => false,
                        _ => return Err("usage: claim link|dismiss [ADDRESS]".into()),
                    };
                    Some(ClaimDecision { link, value })
                }
            }),
            "notifications" => Action::Notifications,
            "mark_all_read" => Action::MarkAllRead,
            "undo" => Action::Undo,
            "repeat" => Action::Repeat,
            "visual" => Action::Visual,
            "global" | "vglobal" => Action::Global {
                invert: cmd.name == "vglobal",
                arg: arg.map(|a| parse_global(&a)).transpose()?,
            },
            "send_at" => Action::SendAt(arg),
            "cancel_send" => Action::CancelSend,
            "task" => Action::Task(arg),
            "consent" => Action::Consent(arg),
            "tasks" => Action::Tasks(arg),
            "close_task" => Action::CloseTask,
            "tasks_cycle" => Action::TasksCycle,
            "reports" => Action::Reports,
            "report_back" => Action::ReportBack,
            "report_forward" => Action::ReportForward,
            "report_longer" => Action::ReportLonger,
            "report_shorter" => Action::ReportShorter,
            "report_slice" => Action::ReportSlice,
            "report_business" => Action::ReportBusiness,
            "merge" => Action::Merge(arg),
            "merge_into" => Action::MergeInto(arg),
            "unmerge" => Action::Unmerge(arg),
            "merges" => Action::Merges,
            "duplicates" => Action::Duplicates,
            "join" => Action::Join(arg),
            "split" => Action::Split(arg),
            "identity_remove" => Action::IdentityRemove(
                arg.map(|a| {
                    let (kind, value) = a.split_once(char::is_whitespace).ok_or(
                        "usage: identity-remove KIND VALUE (email, phone, telegram, webchat, ...)",
                    )?;
                    let kind = kind.parse::<IdentityKind>().map_err(|e| e.to_string())?;
                    Ok::<_, String>((kind, value.trim().to_string()))
                })
                .transpose()?,
            ),
            "identity_move" => Action::IdentityMove(
                arg.map(|a| {
                    let usage = "usage: identity-move KIND VALUE CONTACT-ID";
                    let (kind, rest) = a.split_once(char::is_whitespace).ok_or(usage)?;
                    let (value, to) = rest.trim().rsplit_once(char::is_whitespace).ok_or(usage)?;
                    let kind = kind.parse::<IdentityKind>().map_err(|e| e.to_string())?;
                    let to = parse_contact_id(to)?;
                    Ok::<_, String>((kind, value.trim().to_string(), to))
                })
                .transpose()?,
            ),
            "merge_pair" => Action::MergePair,
            "dismiss_pair" => Action::DismissPair,
            "pipeline" => Action::Pipeline(arg),
            "next_stage" => Action::NextStage,
            other => return Err(format!("command '{other}' has no action")),
        })
    }

    /// Completions for a partly typed command word.
    pub fn complete(prefix: &str) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = COMMANDS
            .iter()
            .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
            .filter(|n| n.starts_with(prefix))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_to_an_action_with_its_name() {
        for c in COMMANDS {
            let a = Action::parse(c.name).unwrap();
            assert_eq!(a.name(), c.name);
            for alias in c.aliases {
                assert_eq!(Action::parse(alias).unwrap().name(), c.name);
            }
        }
    }

    #[test]
    fn arguments() {
        assert_eq!(
            Action::parse("assign bob").unwrap(),
            Action::Assign(Some("bob".into()))
        );
        assert_eq!(
            Action::parse("snooze 2h").unwrap(),
            Action::Snooze(Some("2h".into()))
        );
        assert_eq!(
            Action::parse("priority urgent").unwrap(),
            Action::Priority(Some(Priority::Urgent))
        );
        assert_eq!(
            Action::parse("via telegram").unwrap(),
            Action::ReplyVia(Some(Channel::Telegram))
        );
        assert_eq!(
            Action::parse("identity add phone +44 20 7946 0958").unwrap(),
            Action::IdentityAdd(Some((IdentityKind::Phone, "+44 20 7946 0958".into())))
        );
        assert_eq!(
            Action::parse("open 522").unwrap(),
            Action::Open(Some(ConversationId(522)))
        );
        assert_eq!(
            Action::parse("open #7").unwrap(),
            Action::Open(Some(ConversationId(7)))
        );
        assert_eq!(Action::parse("open").unwrap(), Action::Open(None));
        assert!(Action::parse("open x").is_err());
        assert_eq!(Action::parse("pending").unwrap(), Action::Pending);
        assert!(Action::parse("resolve now").is_err());
        assert!(Action::parse("frobnicate").is_err());
        assert!(Action::parse("priority sky-high").is_err());
    }

    #[test]
    fn global_commands() {
        assert_eq!(
            Action::parse("g/refund from:bigcorp.com/assign team billing").unwrap(),
            Action::Global {
                invert: false,
                arg: Some(GlobalArg {
                    pattern: "refund from:bigcorp.com".into(),
                    command: "assign team billing".into(),
                }),
            }
        );
        assert_eq!(
            Action::parse("v//resolve").unwrap(),
            Action::Global {
                invert: true,
                arg: Some(GlobalArg {
                    pattern: String::new(),
                    command: "resolve".into(),
                }),
            }
        );
        assert_eq!(
            Action::parse("global /x/tag a").unwrap(),
            Action::Global {
                invert: false,
                arg: Some(GlobalArg {
                    pattern: "x".into(),
                    command: "tag a".into(),
                }),
            }
        );
        assert!(Action::parse("g/refund").is_err());
        assert!(Action::parse("g/refund/").is_err());
    }

    #[test]
    fn completion() {
        assert_eq!(
            Action::complete("re"),
            vec![
                "refresh",
                "reopen",
                "repeat",
                "reply",
                "reply_via",
                "report_back",
                "report_business",
                "report_forward",
                "report_longer",
                "report_shorter",
                "report_slice",
                "reports",
                "resolve",
                "retry"
            ]
        );
    }
}
