//! The protocol between clients (the TUI, the CLI) and the workspace server: every message kind
//! is named here once. Frames are length-delimited JSON ([`super::codec`]); a connection opens
//! with [`Hello`] -> [`Welcome`] (or [`ServerFrame::Refused`], one line saying why), then the
//! client sends [`ClientFrame::Request`]s, each with an id its [`ServerFrame::Response`] repeats,
//! and the server pushes [`ServerFrame::Events`] (the changes this agent may see, each batch with
//! the id of its newest event, the cursor a reconnecting client resumes from).
//!
//! Compatibility rules: a new field is optional with a default (`#[serde(default)]`); a new kind
//! of request is answered by an older server with [`Response::Error`] naming the kind, never a
//! dropped connection; the handshake accepts a range of versions.

use crate::model::{Channel, ContactId, ConversationId, EventId, MessageId, Millis};
// The store's row types are the protocol's vocabulary: clients name them through `crate::api`.
/// An event in words, for `braid audit` and `:audit` (data decoded, escaped for the terminal).
pub use crate::store::audit::describe as describe_event;
pub use crate::store::sla::SlaTeamCounts;
pub use crate::store::{
    AuditFilter, AuditPage, AuditPosition, Change, ContactProfile, ContactRow, Counts, EventRow,
    IdentityRow, MessageRow, QueueAnchor, QueueFilter, QueueRow, SearchHit, TimelineCursor,
};
pub use crate::store::{NotificationKind, NotificationPage, NotificationRow, QueueOrder};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The protocol version this build speaks best.
/// 2: presence ([`Request::Presence`], [`ServerFrame::Presence`]) and the stale-send guard
/// ([`Seen`], [`Response::Stale`]); notifications ([`Request::Notifications`],
/// [`Request::MarkNotificationsRead`], [`ServerFrame::Notification`]). A version-1 client is
/// never sent a frame kind it does not know.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// What an agent may do (workspace config: `[[agents]] role = ...`). Checked by the server on
/// every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only: sees what their teams see, changes nothing.
    Viewer,
    /// Works the conversations of their teams and those assigned to them.
    Agent,
    /// Everything in their teams: merges, claims, reports.
    Supervisor,
    /// Everything: every team, the workspace, channels and roles.
    Admin,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Viewer, Role::Agent, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role '{s}' (one of: admin, supervisor, agent, viewer)"))
    }
}

/// The first frame a client sends. Its shape never changes between versions: a server of any
/// version can read it and answer with one clear line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The versions this client speaks, inclusive.
    pub min_version: u32,
    pub max_version: u32,
    /// "braid 0.1.0 tui", for the server's log.
    pub client: String,
    /// A reconnecting client: the newest event it saw. The server sends what it missed.
    #[serde(default)]
    pub resume_after: Option<EventId>,
}

impl Hello {
    pub fn new(client: &str, resume_after: Option<EventId>) -> Hello {
        Hello {
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            client: format!("braid {} {client}", env!("CARGO_PKG_VERSION")),
            resume_after,
        }
    }
}

/// Who the server says you are (the kernel told it: `SO_PEERCRED`), and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version both sides speak from now on.
    pub version: u32,
    /// "braid 0.1.0".
    pub server: String,
    /// The agent name: author of replies and notes, "me" in views and searches.
    pub agent: String,
    /// The Unix user the kernel reported.
    pub user: String,
    pub role: Role,
    /// The teams whose conversations this agent sees (admins see every team).
    #[serde(default)]
    pub teams: Vec<String>,
    /// Every agent name of the workspace (completion for `:assign`).
    #[serde(default)]
    pub agents: Vec<String>,
    /// Every team name of the workspace (completion for `:assign`, `:view team`): assigning
    /// a conversation to a team moves it there.
    #[serde(default)]
    pub workspace_teams: Vec<String>,
    /// The WhatsApp templates the workspace has approved (`:template`).
    #[serde(default)]
    pub templates: Vec<crate::template::Template>,
    /// The workspace's canned replies (its `templates/` folder): `:template NAME` inserts
    /// one, rendered by [`Request::RenderCanned`].
    #[serde(default)]
    pub canned: Vec<crate::canned::CannedInfo>,
    /// The workspace's named macros (`[macros]`): `:macro NAME` runs their steps.
    #[serde(default)]
    pub macros: Vec<crate::config::Macro>,
    /// The workspace has a `suggest_command` (`:suggest` asks it for a draft).
    #[serde(default)]
    pub suggest: bool,
    /// The newest event now: a client follows pushes from here.
    pub last_event: EventId,
    /// Workspace setting: a reply makes an open conversation pending.
    #[serde(default)]
    pub pending_after_reply: bool,
    /// The server's channel/worker line for the status bar.
    #[serde(default)]
    pub status: String,
    /// Where the server's data lives (shown by `braid status`).
    #[serde(default)]
    pub data_dir: String,
}

/// Client -> server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello(Hello),
    Request { id: u64, request: Request },
}

/// Server -> client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Welcome),
    /// The connection is refused (unknown Unix user, version mismatch); the server closes it.
    Refused {
        reason: String,
    },
    Response {
        id: u64,
        response: Response,
    },
    /// Changes this agent may see, oldest first; `last` is the newest event id of the batch.
    Events {
        events: Vec<EventRow>,
        last: EventId,
    },
    /// Too many changes were missed to replay: reload everything shown.
    Resync {
        last: EventId,
    },
    /// The server's channel/worker line changed.
    Status {
        line: String,
        error: Option<String>,
    },
    /// This agent's notifications changed: new ones (`rows`, oldest first; empty when only
    /// the read state changed, e.g. read in another terminal) and their unread count now.
    /// Sent only to the sessions of the agent they belong to.
    Notification {
        rows: Vec<NotificationRow>,
        unread: i64,
    },
    /// Who is online and what each is doing, whole (sent when it changes, to the sessions that
    /// report presence themselves). One entry per connected client that reported; an agent in
    /// two terminals appears twice.
    Presence {
        online: Vec<PresenceEntry>,
    },
}

/// What a connected agent is doing (presence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Online; `conversation` is the one on their screen, if any.
    Viewing,
    /// Typing a reply in `conversation`.
    Reply,
    /// Typing an internal note in `conversation`.
    Note,
}

impl Activity {
    /// "viewing", "typing a reply", "typing a note".
    pub fn describe(self) -> &'static str {
        match self {
            Activity::Viewing => "viewing",
            Activity::Reply => "typing a reply",
            Activity::Note => "typing a note",
        }
    }
}

/// One connected client as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// The agent (server-attested) and their display name.
    pub agent: String,
    pub display: String,
    /// The conversation on their screen. None: none, or one the receiving agent may not see.
    pub conversation: Option<ConversationId>,
    pub activity: Activity,
    /// When they started doing it.
    pub since: crate::model::Millis,
    /// The session, to tell an agent's two terminals apart.
    pub session: u64,
}

/// What a reply or note's author had seen of the conversation: the stale-send guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "seen", content = "event")]
pub enum Seen {
    /// The client does not say: the server uses the newest event it showed this agent of the
    /// conversation (`braid show`), and checks nothing when it showed none.
    #[default]
    Unknown,
    /// Everything up to this event: refused ([`Response::Stale`]) when the conversation
    /// changed after it.
    Upto(EventId),
    /// Send whatever changed (the author saw the changes and sends anyway).
    Force,
}

/// A reply or note the server refused because the conversation changed since its author
/// looked: nothing was written or sent, the draft is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stale {
    pub conversation: ConversationId,
    /// What changed, oldest first (at most 20).
    pub changes: Vec<Change>,
    /// The newest of them: send again with `Seen::Upto(latest)` after showing them.
    pub latest: EventId,
}

/// What a search view knows besides its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Per conversation: its newest matching message (None: the contact's name matched) and
    /// the snippet, the match marked «like this». On the wire a list of pairs: a JSON object's
    /// keys are strings, and serde cannot read them back as ids inside the tagged frames
    /// (every search page failed to decode and closed the connection).
    #[serde(with = "pairs")]
    pub first: HashMap<ConversationId, (Option<MessageId>, String)>,
    /// Every matching message read.
    pub matches: HashSet<MessageId>,
    /// More matches exist past the ones read.
    pub more: bool,
    /// How many matching messages were asked for.
    pub limit: usize,
}

/// What the queue pane shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueView {
    Filter(QueueFilter),
    Search(String),
}

impl QueueView {
    pub fn label(&self) -> String {
        match self {
            QueueView::Filter(f) => f.label(),
            QueueView::Search(q) => format!("search: {q}"),
        }
    }
}

/// How a queue page combines with the rows already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// Replace the window; `offset` is the absolute index of the first row.
    Replace { offset: usize },
    /// Add after the last row.
    Append,
    /// Add before the first row.
    Prepend,
}

/// A write the agent asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "write", content = "args", rename_all = "snake_case")]
pub enum Write {
    /// A workflow verb (assign, status, tag, ...), run by [`crate::actions::apply`] as the CLI
    /// runs it.
    Verb(crate::actions::Verb),
    Reply {
        channel: Channel,
        body: String,
        /// Then make an open conversation pending (`pending_after_reply`).
        then_pending: bool,
        /// What the author had seen (the stale-send guard).
        #[serde(default)]
        seen: Seen,
    },
    Note {
        body: String,
        #[serde(default)]
        seen: Seen,
    },
    /// A WhatsApp reply as an approved template (`:template NAME PARAMS`): the way to write
    /// outside the 24-hour window. The server renders it from its config.
    Template {
        name: String,
        params: Vec<String>,
        #[serde(default)]
        seen: Seen,
        /// Filled in by the server from its config before the write runs.
        #[serde(skip)]
        resolved: Option<Box<crate::template::Template>>,
    },
    SaveDraft {
        kind: String,
        channel: Option<Channel>,
        body: String,
    },
    /// A reply that goes out at `send_at` (`:send-at WHEN`), not before: queued in the
    /// outbox now, shown as scheduled in the timeline until it goes.
    ScheduleReply {
        channel: Channel,
        body: String,
        send_at: Millis,
        #[serde(default)]
        seen: Seen,
    },
    /// Cancel a scheduled reply that has not gone out (`:cancel-send`); None: the newest
    /// scheduled reply of the conversation.
    CancelSend { message: Option<MessageId> },
    /// A task on the conversation (`:task [KIND] WHEN -- TITLE`), assigned to the writer
    /// unless `task.assignee` says otherwise.
    Task { task: crate::store::NewTask },
}

/// What a client asks. The agent a request acts as is never part of it: the server knows who
/// is on the other end of the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Request {
    Queue {
        seq: u64,
        view: QueueView,
        anchor: QueueAnchor,
        limit: usize,
        placement: Placement,
        /// Keep the selection on this conversation if it is in the answer.
        keep: Option<ConversationId>,
        /// How the view is sorted (absent: triage; see `QueueOrder`).
        #[serde(default)]
        order: QueueOrder,
    },
    Timeline {
        seq: u64,
        contact: ContactId,
        before: Option<TimelineCursor>,
        limit: usize,
    },
    Profile {
        seq: u64,
        contact: ContactId,
        conversation: ConversationId,
    },
    /// The status-line counters of this agent.
    Counts,
    /// Open the composer: load the saved draft and where a reply would go.
    Compose {
        conversation: ConversationId,
        contact: ContactId,
        kind: String,
        channel: Option<Channel>,
    },
    Write {
        conversation: ConversationId,
        contact: ContactId,
        write: Write,
    },
    /// One conversation with its tags and its contact's profile (`braid show`).
    Conversation { id: ConversationId },
    /// Conversations of a view, newest activity first (`braid list`).
    List {
        filter: QueueFilter,
        /// Only conversations with this tag.
        tag: Option<String>,
        /// Only conversations of this assignee (`me`, `none`, a name).
        assignee: Option<String>,
        limit: usize,
        with_tags: bool,
    },
    /// Full-text search hits (`braid search`).
    Search { query: String, limit: usize },
    /// Contacts with their identities, by id (`braid contacts`).
    Contacts {
        after: Option<ContactId>,
        limit: usize,
    },
    /// The workspace's counters and the server's state (`braid status`).
    Status,
    /// The files of the conversation's newest message with attachments (`:save`): the server
    /// fetches them where they live (IMAP, Telegram) and sends the bytes; the client writes
    /// them into the agent's own folder.
    Attachments { conversation: ConversationId },
    /// A write from a script (`braid reply`, `note`, the verbs): like [`Request::Write`], but
    /// answered with [`Response::Written`] (what was written, with its ids) instead of a
    /// status-line text. Checked like the same [`Write`].
    Post {
        conversation: ConversationId,
        post: Post,
    },
    /// A page of contacts, each with its identities (`braid contacts`); answered with
    /// [`Response::ContactCards`].
    ContactCards {
        after: Option<ContactId>,
        limit: usize,
    },
    /// Every conversation of a contact, newest activity first (`braid show`'s separators);
    /// answered with [`Response::List`].
    ContactConversations { contact: ContactId, limit: usize },
    /// A page of the audit log, newest first (`braid audit`, `:audit`): the events `filter`
    /// lets through that this agent may see (admins: every event; everyone else: their
    /// scope's and their own refusals). Answered with [`Response::Audit`].
    Audit {
        #[serde(default)]
        seq: u64,
        #[serde(default)]
        filter: AuditFilter,
        at: AuditPosition,
        limit: usize,
    },
    /// A page of the agent's own notifications, newest first (keyset: `page`), answered with
    /// [`Response::Notifications`]. `limit` 0 asks for the unread count alone.
    Notifications {
        /// Echoed in the answer (a client matches pages with it).
        #[serde(default)]
        seq: u64,
        page: NotificationPage,
        limit: usize,
        #[serde(default)]
        unread_only: bool,
    },
    /// Mark the agent's notifications read: `ids`, or `all`. Answered with
    /// [`Response::NotificationsRead`]; the agent's other sessions get the new unread count
    /// pushed ([`ServerFrame::Notification`]).
    MarkNotificationsRead {
        #[serde(default)]
        ids: Vec<i64>,
        #[serde(default)]
        all: bool,
    },
    /// Presence: what this client's agent is doing now (sent when it changes, and every few
    /// seconds while connected). Answered [`Response::Ack`]; from then on this session is sent
    /// [`ServerFrame::Presence`].
    Presence {
        conversation: Option<ConversationId>,
        activity: Activity,
    },
    /// Who is online and where, now (`braid who`, `:who`); answered [`Response::Online`].
    Who,
    /// Response times, volumes, SLA and CSAT over a range, sliced (`braid report`, `g R`);
    /// answered [`Response::Report`], scoped to the agent's role.
    Report(super::report::ReportQuery),
    /// The workflow rules with their match counts for the last 7 days (`:rules`).
    Rules,
    /// Campaigns (`braid campaign`, `:campaigns`): a dry run and the status need the
    /// supervisor role, starting and stopping the admin role. Answered [`Response::Campaign`].
    Campaign(CampaignOp),
    /// A dry run (`braid rules test`): which rules match a stored conversation, or a message
    /// that is not stored, why, and what they would do. `rules`: the text of a rules file to
    /// try instead of the workspace's (nothing is written either way).
    RulesTest {
        conversation: Option<ConversationId>,
        message: Option<TestMessage>,
        rules: Option<String>,
    },
    /// Render the workspace's canned reply `name` for a conversation (`channel` None: the
    /// channel a reply would go on); answered [`Response::Canned`]. Nothing is sent.
    RenderCanned {
        conversation: ConversationId,
        name: String,
        #[serde(default)]
        channel: Option<Channel>,
        /// Filled in by the server from its `templates/` folder before the request runs.
        #[serde(skip)]
        resolved: Option<Box<crate::canned::Template>>,
    },
    /// Ask the workspace's `suggest_command` for a draft reply; answered
    /// [`Response::Suggestion`]. Nothing is sent.
    Suggest {
        conversation: ConversationId,
        /// Filled in by the server from its config before the request runs.
        #[serde(skip)]
        command: Option<String>,
        /// `suggest_timeout` of the server's config (0: the default).
        #[serde(skip)]
        timeout_ms: i64,
    },
    /// One queue verb over many conversations (`V` + a verb, `:g//`), in ONE transaction on
    /// the server: the role check is the verb's, each conversation is checked against the
    /// agent's teams, each change is its own audit event (all stamped with one time, so one
    /// `u` undoes them all). Answered [`Response::Bulk`] (refusals per conversation inside).
    Bulk {
        conversations: Vec<ConversationId>,
        verb: crate::actions::Verb,
    },
    /// `:g/PATTERN/CMD`: the conversations of `view` that match the search `pattern` (the `/`
    /// search syntax), or with `invert` (`:v//`) those that do not; at most `limit`. Answered
    /// [`Response::Matching`]; nothing changes (the client counts, asks, then sends a
    /// [`Request::Bulk`] with exactly these ids).
    Matching {
        view: QueueView,
        pattern: String,
        #[serde(default)]
        invert: bool,
        limit: usize,
    },
    /// `u`: undo the agent's newest change not yet undone (status, snooze, assignee,
    /// priority, tags, team; one verb or one bulk request), audited `undone`. Again walks
    /// further back. Answered [`Response::Undone`].
    Undo,
    /// A page of open tasks (`g t`, `braid tasks`), soonest due first; answered
    /// [`Response::Tasks`].
    Tasks {
        #[serde(default)]
        seq: u64,
        view: TaskView,
        at: crate::store::TaskAt,
        limit: usize,
    },
    /// Create a task on a contact or conversation (`braid task add`); answered
    /// [`Response::Task`]. No assignee: the asking agent.
    TaskCreate { task: crate::store::NewTask },
    /// Close (`done`) or cancel a task (`x` in the tasks view, `braid task close`); answered
    /// [`Response::Task`].
    TaskClose { id: i64, end: crate::store::TaskEnd },
    /// Every `[[webhooks]]` endpoint with its queue (`braid webhooks status`); answered
    /// [`Response::Webhooks`]. Admins only.
    WebhooksStatus,
    /// Send endpoint `name` a signed `ping` now, outside the queue (`braid webhooks test`);
    /// answered [`Response::WebhookTested`]. Admins only.
    WebhookTest { name: String },
    /// Make endpoint `name`'s failed deliveries due again (`braid webhooks retry`); answered
    /// [`Response::Done`]. Admins only.
    WebhookRetry { name: String },
    /// A change to one contact, or a question about it (merge and unmerge with their
    /// provenance, identities taken off or moved, a duplicate dismissed); answered
    /// [`Response::Contact`]. The role depends on the op (see `server::authz`).
    Contact { contact: ContactId, op: ContactOp },
    /// Contacts that are likely one person (`:duplicates`, `braid contact duplicates`),
    /// strongest first; answered [`Response::Duplicates`].
    Duplicates { limit: usize },
    /// A contact's consent: state and history (`braid contact consent ID`); answered with
    /// [`Response::Consent`]. Viewer.
    Consent { contact: ContactId },
    /// Record a consent change the customer asked an agent for (`:consent marketing off`,
    /// `braid contact consent ID marketing off`); answered with [`Response::Done`]. Agent.
    ConsentSet {
        contact: ContactId,
        purpose: crate::model::Purpose,
        opted_out: bool,
        /// The channel the customer asked on (None: not said).
        #[serde(default)]
        channel: Option<Channel>,
        /// What the customer said, for the history.
        #[serde(default)]
        note: String,
    },
    /// Everything held about a person, for a subject access request (`braid contact export`);
    /// answered with [`Response::Export`]. Admin: it reads every team's conversations.
    ContactExport { contact: ContactId },
    /// Erase a person (`braid contact forget`): `confirm` repeats the contact id. Admin.
    ContactForget {
        contact: ContactId,
        confirm: ContactId,
    },
    /// A custom field, the stage or the lead score of a contact (`braid contact set|unset|
    /// stage|score`): `verb` is one of `Verb::Field`, `Verb::Stage`, `Verb::Score`. Validated
    /// against the workspace's `[[fields]]` / `[pipeline]`, audited `contact_updated`;
    /// answered [`Response::Done`]. Role: agent.
    ContactEdit {
        contact: ContactId,
        verb: crate::actions::Verb,
    },
    /// The pipeline (`g p`): contacts per stage, and a page of `stage`'s contacts (None: no
    /// stage) by score, highest first, after the keyset `after` (score, contact). Scoped like
    /// the other contact lists; answered [`Response::Pipeline`]. Role: viewer.
    Pipeline {
        #[serde(default)]
        seq: u64,
        stage: Option<String>,
        after: Option<(i64, ContactId)>,
        limit: usize,
    },
}

/// What a [`Request::Contact`] does to its contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactOp {
    /// What merging `other` with this contact would move (answered with a plan; nothing
    /// changes). `keep_other`: `other` survives.
    MergePlan {
        other: ContactId,
        #[serde(default)]
        keep_other: bool,
    },
    /// Merge `other` into this contact (or this into `other` with `keep_other`), recording
    /// the reason.
    Merge {
        other: ContactId,
        #[serde(default)]
        keep_other: bool,
        reason: String,
    },
    /// Undo merge `merge`, or (None) the newest merge still in force involving this contact.
    Unmerge {
        #[serde(default)]
        merge: Option<i64>,
    },
    /// The merges involving this contact, newest first (provenance).
    Merges,
    /// Take an identity off this contact.
    IdentityRemove {
        kind: crate::model::IdentityKind,
        value: String,
    },
    /// Move one of this contact's identities to contact `to`.
    IdentityMove {
        kind: crate::model::IdentityKind,
        value: String,
        to: ContactId,
    },
    /// This contact and `other` are not one person: stop suggesting them.
    DismissDuplicate { other: ContactId },
}

impl ContactOp {
    pub fn name(&self) -> &'static str {
        match self {
            ContactOp::MergePlan { .. } => "merge_plan",
            ContactOp::Merge { .. } => "merge",
            ContactOp::Unmerge { .. } => "unmerge",
            ContactOp::Merges => "merges",
            ContactOp::IdentityRemove { .. } => "identity_remove",
            ContactOp::IdentityMove { .. } => "identity_move",
            ContactOp::DismissDuplicate { .. } => "dismiss_duplicate",
        }
    }
}

/// What a [`Request::Contact`] answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactAnswer {
    Plan(Box<crate::store::MergePlan>),
    Merged {
        merge: i64,
        survivor: ContactId,
        absorbed: ContactId,
    },
    Unmerged(crate::store::Unmerged),
    Merges(Vec<crate::store::MergeRow>),
    /// Done; the line says what changed.
    Done(String),
}

/// Which tasks a [`Request::Tasks`] lists (the server fills in who and when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskView {
    /// Assigned to the asking agent.
    Mine,
    /// Due before now.
    Overdue,
    /// Of a team.
    Team(String),
    /// Every open task the agent sees.
    All,
    /// Of a contact.
    Contact(ContactId),
    /// Of a conversation.
    Conversation(ConversationId),
}

impl TaskView {
    pub fn label(&self) -> String {
        match self {
            TaskView::Mine => "mine".into(),
            TaskView::Overdue => "overdue".into(),
            TaskView::Team(t) => format!("team {t}"),
            TaskView::All => "all".into(),
            TaskView::Contact(c) => format!("contact {c}"),
            TaskView::Conversation(c) => format!("#{c}"),
        }
    }
}

/// What a [`Request::Post`] writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "post", content = "args", rename_all = "snake_case")]
pub enum Post {
    /// Queue a reply. `channel` None: the channel the customer last wrote on (when it can
    /// still reach them). Refused with the usable channels when the contact has no address on
    /// the channel.
    Reply {
        channel: Option<Channel>,
        body: String,
        /// Then make an open conversation pending (`pending_after_reply` of the welcome).
        then_pending: bool,
        #[serde(default)]
        seen: Seen,
    },
    Note {
        body: String,
        #[serde(default)]
        seen: Seen,
    },
    /// A WhatsApp template reply (`braid reply --template NAME --param P`), rendered by the
    /// server from its config like [`Write::Template`].
    Template {
        name: String,
        params: Vec<String>,
        #[serde(default)]
        seen: Seen,
        #[serde(skip)]
        resolved: Option<Box<crate::template::Template>>,
    },
    Verb(crate::actions::Verb),
    /// A reply that goes out at `send_at` (`braid reply N --at WHEN`): like
    /// [`Write::ScheduleReply`]; `channel` None: the channel the customer last wrote on.
    ScheduleReply {
        channel: Option<Channel>,
        body: String,
        send_at: Millis,
        #[serde(default)]
        seen: Seen,
    },
}

impl Post {
    /// The [`Write`] this post is, for the role check (the channel does not change who may).
    pub fn as_write(&self) -> Write {
        match self {
            Post::Reply {
                channel,
                body,
                then_pending,
                seen,
            } => Write::Reply {
                channel: channel.unwrap_or(Channel::Email),
                body: body.clone(),
                then_pending: *then_pending,
                seen: *seen,
            },
            Post::Note { body, seen } => Write::Note {
                body: body.clone(),
                seen: *seen,
            },
            Post::Template {
                name,
                params,
                seen,
                resolved,
            } => Write::Template {
                name: name.clone(),
                params: params.clone(),
                seen: *seen,
                resolved: resolved.clone(),
            },
            Post::Verb(v) => Write::Verb(v.clone()),
            Post::ScheduleReply {
                channel,
                body,
                send_at,
                seen,
            } => Write::ScheduleReply {
                channel: channel.unwrap_or(Channel::Email),
                body: body.clone(),
                send_at: *send_at,
                seen: *seen,
            },
        }
    }
}

/// What a [`Request::Post`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub conversation: ConversationId,
    /// What changed, as the TUI's status line says it ("#12 assigned to ann").
    pub done: String,
    /// The message written (a reply, a note).
    #[serde(default)]
    pub message: Option<MessageId>,
    /// A reply: the channel it goes out on and to whom.
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub recipient: Option<String>,
    /// The agent the server wrote as (who the kernel says the client is).
    pub author: String,
}

/// A message for a dry run of the rules (`braid rules test MSG.eml`): not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestMessage {
    pub channel: Channel,
    /// The sender's address / number / id on that channel.
    pub from: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    pub text: String,
}

impl TestMessage {
    /// A raw email (an `.eml`) as a test message: its sender, name, subject and text, read by
    /// the same parser the email channel uses (never fails: what cannot be read is a note).
    pub fn from_email(raw: &[u8]) -> TestMessage {
        let mut parser = crate::channels::email::mime::EmailParser::new(
            &crate::channels::email::mime::Options::default(),
        );
        let m = parser.parse(raw, crate::model::now_millis()).inbound;
        TestMessage {
            channel: m.channel,
            from: m.customer.value,
            name: m.customer_name,
            subject: m.subject,
            text: m.body,
        }
    }
}

/// The rules a server runs (`:rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesReport {
    pub rules: Vec<RuleLine>,
    /// The rules files' error, if the last change did not load (the rules shown are the last
    /// good ones).
    pub error: Option<String>,
    /// Where the rules come from (a folder, the demo).
    pub source: String,
}

/// One rule, as `:rules` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLine {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub on: String,
    pub after: Option<String>,
    pub conditions: usize,
    pub actions: Vec<String>,
    pub matches_7d: i64,
    pub origin: String,
}

/// A dry run's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    /// What was tested ("conversation #12 (Olivia Thomas)", "a message from …").
    pub subject: String,
    /// The event a message is tested as (`message_received`); None for a conversation (each
    /// rule is evaluated as its own event would run it).
    pub event: Option<String>,
    pub rules: Vec<DryRule>,
}

/// One rule in a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRule {
    pub id: String,
    pub name: String,
    pub on: String,
    pub enabled: bool,
    /// False: the tested event does not run this rule (it runs on another).
    pub runs: bool,
    pub matched: bool,
    /// Each condition with ✓ / ✗.
    pub why: String,
    /// What it would do (when it matched).
    pub would: Vec<String>,
    /// Why it could not do it (an action that cannot be resolved).
    pub problem: Option<String>,
}

/// A contact with its identities (`braid contacts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactCard {
    pub contact: ContactRow,
    pub identities: Vec<IdentityRow>,
}

impl Request {
    /// The request's kind, as the protocol names it (logs, refusals, the audit log).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Queue { .. } => "queue",
            Request::Timeline { .. } => "timeline",
            Request::Profile { .. } => "profile",
            Request::Counts => "counts",
            Request::Compose { .. } => "compose",
            Request::Write { write, .. } => match write {
                Write::Verb(v) => v.name(),
                Write::Reply { .. } => "reply",
                Write::Note { .. } => "note",
                Write::Template { .. } => "template",
                Write::SaveDraft { .. } => "save_draft",
                Write::ScheduleReply { .. } => "schedule_reply",
                Write::CancelSend { .. } => "cancel_send",
                Write::Task { .. } => "task_create",
            },
            Request::Conversation { .. } => "conversation",
            Request::List { .. } => "list",
            Request::Search { .. } => "search",
            Request::Contacts { .. } => "contacts",
            Request::Status => "status",
            Request::Post { post, .. } => match post {
                Post::Reply { .. } => "reply",
                Post::Note { .. } => "note",
                Post::Template { .. } => "template",
                Post::Verb(v) => v.name(),
                Post::ScheduleReply { .. } => "schedule_reply",
            },
            Request::ContactCards { .. } => "contact_cards",
            Request::ContactConversations { .. } => "contact_conversations",
            Request::Attachments { .. } => "attachments",
            Request::Audit { .. } => "audit",
            Request::Notifications { .. } => "notifications",
            Request::MarkNotificationsRead { .. } => "mark_notifications_read",
            Request::Presence { .. } => "presence",
            Request::Who => "who",
            Request::Report(_) => "report",
            Request::Rules => "rules",
            Request::Campaign(op) => match op {
                CampaignOp::DryRun { .. } => "campaign_dry_run",
                CampaignOp::Start { .. } => "campaign_start",
                CampaignOp::Stop { .. } => "campaign_stop",
                CampaignOp::Status { .. } => "campaign_status",
            },
            Request::RulesTest { .. } => "rules_test",
            Request::RenderCanned { .. } => "render_canned",
            Request::Suggest { .. } => "suggest",
            Request::Bulk { .. } => "bulk",
            Request::Matching { .. } => "matching",
            Request::Undo => "undo",
            Request::Tasks { .. } => "tasks",
            Request::TaskCreate { .. } => "task_create",
            Request::TaskClose { .. } => "task_close",
            Request::WebhooksStatus => "webhooks_status",
            Request::WebhookTest { .. } => "webhook_test",
            Request::WebhookRetry { .. } => "webhook_retry",
            Request::Contact { .. } => "contact",
            Request::Duplicates { .. } => "duplicates",
            Request::Consent { .. } => "consent",
            Request::ConsentSet { .. } => "consent_set",
            Request::ContactExport { .. } => "contact_export",
            Request::ContactForget { .. } => "contact_forget",
            Request::ContactEdit { .. } => "contact_edit",
            Request::Pipeline { .. } => "pipeline",
        }
    }

    /// Requests in the same slot supersede each other: only the newest is worth running.
    pub fn slot(&self) -> Option<(&'static str, i64)> {
        match self {
            Request::Queue { .. } => None, // pages build on each other; never drop one
            Request::Timeline { before: None, .. } => Some(("timeline", 0)),
            Request::Timeline { .. } => None,
            Request::Profile { .. } => Some(("profile", 0)),
            Request::Counts => Some(("counts", 0)),
            Request::Presence { .. } => Some(("presence", 0)),
            Request::Write {
                write: Write::SaveDraft { .. },
                conversation,
                ..
            } => Some(("draft", conversation.0)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Response {
    Queue {
        seq: u64,
        view: QueueView,
        rows: Vec<QueueRow>,
        total: Option<i64>,
        placement: Placement,
        anchor: QueueAnchor,
        limit: usize,
        keep: Option<ConversationId>,
        /// A search view's snippets, matches and whether more exist.
        search: Option<Box<SearchResults>>,
    },
    Timeline {
        seq: u64,
        contact: ContactId,
        rows: Vec<MessageRow>,
        older: bool,
        before: Option<TimelineCursor>,
    },
    Profile {
        seq: u64,
        profile: Box<ContactProfile>,
        tags: Vec<String>,
        conversation: ConversationId,
    },
    Counts {
        counts: Counts,
        outbox: (i64, i64),
    },
    Compose {
        /// The conversation the composer was opened on.
        opened_for: ConversationId,
        /// Where the draft goes: `opened_for`, or the contact's open conversation when
        /// `opened_for` is a resolved one (the notice says so).
        conversation: ConversationId,
        kind: String,
        channel: Option<Channel>,
        recipient: Option<String>,
        text: String,
        /// Shown when the composer opens: a channel that cannot reach the customer.
        notice: Option<String>,
        /// The newest event when the composer opened: what the author has seen (sent back
        /// with the reply or note, [`Seen::Upto`]).
        #[serde(default)]
        seen: EventId,
    },
    /// A write went through; the text is for the status line.
    Done(String),
    /// A write that needs a yes first (it would merge two contacts): the question, and the
    /// request to send when the answer is yes.
    Confirm {
        question: String,
        request: Box<Request>,
    },
    Error(String),
    /// The server refused: the agent's role or teams do not allow it. Nothing changed; the
    /// refusal is in the audit log.
    Refused(String),
    /// A request a newer one of the same kind replaced before it ran (the TUI moved on).
    Superseded,
    /// Received; nothing to say (presence).
    Ack,
    /// The stale-send guard: the conversation changed since the author looked. Nothing was
    /// written; the refusal is in the audit log.
    Stale(Box<Stale>),
    Conversation {
        row: QueueRow,
        tags: Vec<String>,
        profile: Box<ContactProfile>,
        /// The newest event when it was read: what `braid show` showed (a later `braid reply`
        /// is checked against it).
        #[serde(default)]
        as_of: EventId,
    },
    List {
        /// The view as a label ("open, tag billing").
        label: String,
        rows: Vec<QueueRow>,
        /// Tags per row (same order), when asked for.
        tags: Option<Vec<Vec<String>>>,
        total: i64,
    },
    Hits(Vec<crate::store::SearchHit>),
    Contacts(Vec<ContactRow>),
    Status(Box<StatusReport>),
    /// The answer to a [`Request::Post`].
    Written(Box<Written>),
    /// The answer to a [`Request::ContactCards`].
    ContactCards(Vec<ContactCard>),
    Files(Vec<FileData>),
    /// The answer to a [`Request::Audit`]: `seq` repeated.
    Audit {
        seq: u64,
        page: AuditPage,
    },
    /// The answer to a [`Request::Notifications`]: rows newest first, whether more exist
    /// beyond them (older for `newest`/`before`, newer for `oldest`/`after`), and the agent's
    /// unread count.
    Notifications {
        seq: u64,
        page: NotificationPage,
        rows: Vec<NotificationRow>,
        more: bool,
        unread: i64,
    },
    /// The answer to a [`Request::MarkNotificationsRead`]: the ids that were unread and are
    /// read now, and the unread count left.
    NotificationsRead {
        ids: Vec<i64>,
        unread: i64,
    },
    /// The answer to [`Request::Who`]: every reporting session as the asking agent may see it.
    Online(Vec<PresenceEntry>),
    /// The answer to [`Request::Rules`].
    Rules(Box<RulesReport>),
    /// The answer to [`Request::Campaign`].
    Campaign(Box<CampaignAnswer>),
    /// The answer to [`Request::Report`].
    Report(Box<super::report::Report>),
    /// The answer to [`Request::RulesTest`].
    RulesTested(Box<DryRun>),
    /// The answer to [`Request::RenderCanned`]: the text (unfilled variables left as written)
    /// and the variables that could not be filled.
    Canned {
        conversation: ConversationId,
        name: String,
        channel: Option<Channel>,
        text: String,
        missing: Vec<String>,
    },
    /// The answer to [`Request::Suggest`]: the draft the command printed.
    Suggestion {
        conversation: ConversationId,
        text: String,
    },
    /// The answer to [`Request::Pipeline`]: `seq` repeated.
    Pipeline {
        seq: u64,
        pipeline: Box<crate::store::Pipeline>,
    },
    /// The answer to [`Request::Bulk`].
    Bulk(Box<crate::actions::BulkReport>),
    /// The answer to [`Request::Matching`]: the matching conversations (view order), how
    /// many match in all (`total` > `ids.len()` when `limit` cut them), and the request as
    /// asked (the client pairs it with the command it runs).
    Matching {
        pattern: String,
        invert: bool,
        ids: Vec<ConversationId>,
        total: usize,
    },
    /// The answer to [`Request::Undo`].
    Undone(Box<crate::store::UndoReport>),
    Contact(ContactAnswer),
    Duplicates(Vec<crate::store::DuplicatePair>),
    /// The answer to a [`Request::Tasks`]: open tasks, soonest due first, and whether more
    /// exist beyond them in the direction asked (ask again at `after` the last row's cursor).
    Tasks {
        seq: u64,
        view: TaskView,
        at: crate::store::TaskAt,
        rows: Vec<crate::store::TaskRow>,
        more: bool,
    },
    /// The answer to [`Request::TaskCreate`] and [`Request::TaskClose`]: the task now.
    Task(Box<crate::store::TaskRow>),
    /// The answer to [`Request::WebhooksStatus`], in config order.
    Webhooks(Vec<WebhookStatus>),
    /// The answer to [`Request::WebhookTest`].
    WebhookTested(Box<WebhookTested>),
    /// The answer to [`Request::Consent`].
    Consent(Box<crate::store::consent::ContactConsent>),
    /// The answer to [`Request::ContactExport`]: one key per table, its rows.
    Export(Box<serde_json::Value>),
}

/// One webhook endpoint and its queue (`braid webhooks status`). Never its secret; the url
/// without credentials or query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookStatus {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// Why the endpoint sends nothing (its secret could not be read).
    #[serde(default)]
    pub problem: Option<String>,
    pub counts: crate::store::webhooks::WebhookCounts,
}

/// What `braid webhooks test` got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookTested {
    pub name: String,
    pub url: String,
    pub delivery: String,
    /// The HTTP status (None: no answer).
    pub status: Option<u16>,
    pub ok: bool,
    /// Why not (the receiver's words sanitized, or the transport error).
    pub error: Option<String>,
    pub ms: i64,
}

/// A file sent to a client (base64 in the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    pub name: String,
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// `braid status`: the agent, the counters, the outbox, the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub agent: String,
    pub role: Role,
    pub teams: Vec<String>,
    pub counts: Counts,
    pub resolved: i64,
    pub total: i64,
    pub outbox_waiting: i64,
    pub outbox_failed: i64,
    pub schema_version: i64,
    pub last_event_id: EventId,
    /// The server's worker line ("leader · outbox 2 queued").
    pub worker: String,
    pub data_dir: String,
    pub server_pid: u32,
    /// The store file.
    #[serde(default)]
    pub store: String,
    /// A workspace made by `braid demo`.
    #[serde(default)]
    pub demo: bool,
    /// Open tasks due before now that the agent sees.
    #[serde(default)]
    pub overdue_tasks: i64,
    /// Per team the agent sees: SLA deadlines breached, and warned (due soon).
    #[serde(default)]
    pub sla: Vec<SlaTeamCounts>,
}

impl Response {
    /// The text of an error or refusal answer.
    pub fn error_text(&self) -> Option<&str> {
        match self {
            Response::Error(e) | Response::Refused(e) => Some(e),
            _ => None,
        }
    }
}

/// A map as a list of `[key, value]` pairs (keys that are not strings survive the tagged frames).
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashMap;
    use std::hash::Hash;

    pub fn serialize<K, V, S>(map: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A search page as the server frames it reads back whole (benches/server.rs found every
    /// one failing: "invalid type: string \"1504\", expected i64").
    #[test]
    fn a_search_page_survives_the_wire() {
        let mut first = HashMap::new();
        first.insert(
            ConversationId(1504),
            (Some(MessageId(7)), "where is my «refund»".to_string()),
        );
        first.insert(ConversationId(9), (None, "Refund Ltd".to_string()));
        let frame = ServerFrame::Response {
            id: 3,
            response: Response::Queue {
                seq: 1,
                view: QueueView::Search("refund".into()),
                rows: Vec::new(),
                total: Some(2),
                placement: Placement::Replace { offset: 0 },
                anchor: QueueAnchor::Top,
                limit: 50,
                keep: None,
                search: Some(Box::new(SearchResults {
                    first,
                    matches: HashSet::from([MessageId(7)]),
                    more: false,
                    limit: 50,
                })),
            },
        };
        let bytes = serde_json::to_vec(&frame).unwrap();
        let back: ServerFrame = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, frame);
    }
}

/// What a [`Request::Campaign`] asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CampaignOp {
    /// Who a start would enrol, per channel, who is excluded and why; writes nothing.
    DryRun { name: String },
    /// Enrol the segment and start sending. `confirmed`: the client showed the dry run and
    /// the admin agreed (`--yes`); refused without it.
    Start {
        name: String,
        #[serde(default)]
        confirmed: bool,
    },
    /// Stop every running run: nothing not yet queued goes.
    Stop { name: String },
    /// Progress and failures (None: every configured campaign).
    Status {
        #[serde(default)]
        name: Option<String>,
    },
}

/// The answer to a [`Request::Campaign`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum CampaignAnswer {
    DryRun(crate::store::campaign::DryRun),
    Started(crate::store::campaign::DryRun),
    Stopped {
        name: String,
        active: usize,
    },
    Status {
        campaigns: Vec<crate::store::campaign::CampaignStatus>,
    },
}
