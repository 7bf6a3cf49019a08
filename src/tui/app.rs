//! The TUI's state and its one update function. Everything that happens arrives as an
//! [`Event`]; [`App::handle`] changes the state and returns [`Effect`]s (store requests, quit,
//! run the editor) for the runtime to carry out. No I/O happens here, so the same code runs in
//! the real event loop and in tests that feed key scripts.

use crate::api::{
    Activity, Placement, PresenceEntry, QueueView, Request, Response, SearchResults, Seen, Stale,
    Write,
};
use crate::api::{
    ContactProfile, Counts, EventRow, MessageRow, QueueAnchor, QueueFilter, QueueRow,
};
use crate::config::{Config, Theme};
use crate::model::{
    Channel, ContactId, ConversationId, EventId, IdentityKind, Millis, Priority, Status,
};
use crate::tui::action::Action;
use crate::tui::keymap::{self, KeyResolver, Keymap, Resolved};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::TextArea;

/// Rows fetched per queue page.
pub const PAGE: usize = 150;
/// The most rows the queue keeps loaded; further pages push the far end out.
pub const MAX_WINDOW: usize = 600;
/// Fetch the next page when the selection comes this close to the end of the window.
const PREFETCH: usize = 50;
/// Messages per timeline page.
pub const TIMELINE_PAGE: usize = 100;
/// Matching messages a search reads first; scrolling near the end doubles it.
pub const SEARCH_PAGE: usize = 200;
/// The most matching messages a search view reads (then it says to narrow the search).
pub const SEARCH_MAX: usize = 12_800;
/// The most conversations one `:g//` touches.
pub const GLOBAL_MAX: usize = 100_000;
/// Load more search results when the selection comes this close to the last row.
const SEARCH_PREFETCH: usize = 10;

// An event is moved once through the loop, never stored in bulk: boxing the answer would cost
// an allocation per key for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Resize(u16, u16),
    Data(Response),
    /// New rows in the events table (from this or another process).
    Feed(Vec<EventRow>),
    /// The worker's one-line status.
    Worker(String),
    /// Who is online and where (the server's whole list).
    Presence(Vec<PresenceEntry>),
    /// Once a second: the clock moves (ages, expiring messages).
    Tick(Millis),
    /// $EDITOR finished with this text (or failed).
    EditorDone(Result<String, String>),
    /// Something went wrong outside the UI (the worker, the change feed): shown as an error.
    Problem(String),
    /// This agent's notifications changed (pushed by the server): new rows, oldest first
    /// (none when only the read state changed), and the unread count now.
    Notification {
        rows: Vec<crate::api::NotificationRow>,
        unread: i64,
    },
    /// The connection to the server went down (`up: false`, the line says why and what
    /// happens next) or came back (`up: true`: everything shown is reloaded).
    Connection {
        up: bool,
        line: String,
    },
}

#[derive(Debug, PartialEq)]
pub enum Effect {
    Request(Request),
    /// Suspend the UI and edit this text in $EDITOR.
    RunEditor(String),
    /// Write this to the terminal between two frames (a bell, a desktop-notification
    /// escape; nothing that prints or moves the cursor).
    Alert(String),
    /// Download a conversation's attachments (network: runs as a task of its own; the result
    /// comes back as a `Response::Done` or `Response::Error`).
    Save {
        conversation: ConversationId,
        dir: Option<String>,
    },
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Queue,
    Timeline,
    Profile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Command,
    Search,
    /// A yes/no question (`question`): y goes ahead, anything else cancels.
    Confirm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub input: String,
    /// Cursor position in chars.
    pub cursor: usize,
    /// Candidates of the last Tab, and which one is shown.
    pub completions: Vec<String>,
    pub completion_index: Option<usize>,
    history_index: Option<usize>,
    /// What a [`PromptKind::Confirm`] asks.
    pub question: Option<String>,
}

impl Prompt {
    fn new(kind: PromptKind, input: &str) -> Prompt {
        Prompt {
            kind,
            input: input.to_string(),
            cursor: input.chars().count(),
            completions: Vec::new(),
            completion_index: None,
            history_index: None,
            question: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComposeKind {
    Reply,
    Note,
}

impl ComposeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComposeKind::Reply => "reply",
            ComposeKind::Note => "note",
        }
    }
}

pub struct Composer {
    /// The conversation this draft was opened for: the send goes there and nowhere else,
    /// whatever the queue shows meanwhile.
    pub conversation: ConversationId,
    pub contact: ContactId,
    /// The customer's name (the composer's title names who the reply goes to).
    pub contact_name: String,
    pub kind: ComposeKind,
    pub channel: Option<Channel>,
    pub recipient: Option<String>,
    pub textarea: TextArea<'static>,
    /// Send was pressed; waiting for the store to confirm.
    pub sending: bool,
    /// The pane that had focus before the composer opened (given back when it closes).
    pub return_focus: Pane,
    /// The draft and the recipient are still being loaded; keys typed meanwhile wait in
    /// `typed` and are replayed into the text once it arrives (typing right after `r` loses
    /// nothing and never runs normal-mode commands).
    pub loading: bool,
    pub typed: Vec<KeyEvent>,
    /// Send was pressed on a note that mentions names no agent has (the composer says so):
    /// the next send goes through as it is.
    pub mention_warned: bool,
    /// Send was pressed on a reply that still holds a `{{...}}` placeholder (a canned
    /// reply's unfilled variable): the next send goes through as it is.
    pub placeholder_warned: bool,
    /// The newest event when the composer opened (then: when the agent was shown what
    /// changed): the send carries it, and the server refuses it if anything newer happened.
    pub seen: EventId,
    /// The last send was stopped because the conversation changed: what changed, shown above
    /// the text until the next send.
    pub stale: Option<Stale>,
    /// `:send-at`: the reply goes out at this time, not now.
    pub send_at: Option<crate::model::Millis>,
}

impl Composer {
    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }
}

pub enum Mode {
    Normal,
    Prompt(Prompt),
    Compose(Box<Composer>),
    Help {
        scroll: u16,
    },
    /// A full-screen list (see [`crate::tui::sheet`]).
    Sheet(Box<crate::tui::sheet::Sheet>),
    /// The reports view (see [`crate::tui::reports`]).
    Reports(Box<crate::tui::reports::ReportsView>),
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Normal => "NORMAL",
            Mode::Prompt(p) if p.kind == PromptKind::Search => "SEARCH",
            Mode::Prompt(p) if p.kind == PromptKind::Confirm => "CONFIRM",
            Mode::Prompt(_) => "COMMAND",
            Mode::Compose(c) if c.kind == ComposeKind::Note => "NOTE",
            Mode::Compose(_) => "REPLY",
            Mode::Help { .. } => "HELP",
            Mode::Sheet(_) => "LIST",
            Mode::Reports(_) => "REPORTS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// The queue pane: a window of rows out of a view that may hold millions.
#[derive(Debug, Default)]
pub struct QueueState {
    pub view: Option<QueueView>,
    pub rows: Vec<QueueRow>,
    /// Absolute index (in the whole view) of rows[0].
    pub offset: usize,
    /// Index into rows.
    pub selected: usize,
    /// Rows in the whole view (as of the last full load).
    pub total: i64,
    /// The last row of the view is loaded.
    pub reached_end: bool,
    /// The first loaded row is the first of the view.
    pub seq: u64,
    pub loading: bool,
    pending_append: bool,
    pending_prepend: bool,
    /// The first visible row (scroll), as an index into rows; kept by the renderer's logic.
    pub scroll: usize,
    /// Select the last row when the pending load arrives (G).
    select_last: bool,
    /// Select this absolute row when the pending load arrives (N G, gg).
    select_abs: Option<usize>,
    /// While a jump (`go_to`) is loading: the first row of the window it asked for. Moves
    /// typed meanwhile go on from where the jump lands, and stay requests-free while that
    /// window holds them.
    jump_start: Option<usize>,
    /// A search view: the snippets, the matches and whether more exist.
    pub search: Option<SearchResults>,
    /// `V`: the visual selection's anchor (an absolute row of the view); the selection runs
    /// from it to the cursor. None: no selection.
    pub visual: Option<usize>,
}

impl QueueState {
    pub fn current(&self) -> Option<&QueueRow> {
        self.rows.get(self.selected)
    }

    /// The selected rows (absolute, inclusive), while `V` is on.
    pub fn visual_range(&self) -> Option<(usize, usize)> {
        let anchor = self.visual?;
        let cursor = self.offset + self.selected;
        Some((anchor.min(cursor), anchor.max(cursor)))
    }

    /// Whether the row at `index` of the window is in the visual selection.
    pub fn in_visual(&self, index: usize) -> bool {
        self.visual_range()
            .is_some_and(|(a, b)| (a..=b).contains(&(self.offset + index)))
    }
}

#[derive(Debug, Default)]
pub struct TimelineState {
    pub contact: Option<ContactId>,
    pub rows: Vec<MessageRow>,
    pub older: bool,
    pub seq: u64,
    pub loading: bool,
    /// Lines scrolled up from the bottom (0: the newest message is visible).
    pub scroll: usize,
    pub show_quoted: bool,
    /// The search match shown (opened from a result, or reached with n / N).
    pub target: Option<crate::model::MessageId>,
    /// Scroll to `target` when the rows holding it arrive.
    seeking: bool,
    /// N found no earlier match in the loaded rows: look again when the older page arrives.
    seek_older: bool,
}

#[derive(Debug, Default)]
pub struct ProfileState {
    pub profile: Option<ContactProfile>,
    pub conversation_tags: Vec<String>,
    pub conversation: Option<ConversationId>,
    pub seq: u64,
}

pub struct App {
    pub agent: String,
    /// Who the server says this is, for the status bar: "carol · agent · sales" (just the
    /// agent name for an admin).
    pub whoami: String,
    pub theme: Theme,
    pub three_pane_min_width: u16,
    /// `[queue] order`: how the queue views are sorted.
    pub queue_order: crate::api::QueueOrder,
    pub keymap: Keymap,
    resolver: KeyResolver,
    pub mode: Mode,
    pub focus: Pane,
    /// In a layout narrower than three panes: show the profile instead of the timeline.
    pub show_profile: bool,
    pub queue: QueueState,
    pub timeline: TimelineState,
    pub profile: ProfileState,
    pub counts: Counts,
    pub outbox: (i64, i64),
    pub worker: String,
    pub status: Option<(String, Level, Millis)>,
    pub size: (u16, u16),
    pub now: Millis,
    pub history: Vec<String>,
    /// The view to return to when a search is closed with Esc.
    previous_view: Option<QueueView>,
    /// Agents seen in assignee columns, for completion.
    pub known_agents: Vec<String>,
    /// Team names of the workspace (the welcome's): `a` completes them; assigning to one
    /// moves the conversation to that team.
    pub known_teams: Vec<String>,
    /// The workspace's approved WhatsApp templates (`:template`), from the welcome.
    pub templates: Vec<crate::template::Template>,
    /// The workspace's canned replies (its `templates/` folder), from the welcome.
    pub canned: Vec<crate::canned::CannedInfo>,
    /// The agent's own canned replies (`$XDG_CONFIG_HOME/braid/templates/`), rendered here.
    pub personal_canned: crate::canned::Library,
    /// Named macros: the workspace's (welcome) with the personal config's over them.
    pub macros: Vec<crate::config::Macro>,
    /// The workspace has a `suggest_command` (`:suggest`).
    pub suggest: bool,
    /// Text waiting for the composer to finish loading (a canned reply, a suggestion).
    pending_insert: Option<Insert>,
    /// A macro waiting for its canned replies to be rendered before it changes anything.
    macro_run: Option<MacroRun>,
    /// The request a [`PromptKind::Confirm`] prompt runs on y.
    confirm: Option<Request>,
    /// `:merge`: the reason to record once the agent confirms the preview.
    pub pending_merge: Option<crate::tui::contacts::PendingMerge>,
    /// A reply makes an open conversation pending (config `pending_after_reply`).
    pub pending_after_reply: bool,
    /// A sheet row being opened: select this message once its conversation shows.
    jump_target: Option<crate::tui::sheet::SheetTarget>,
    /// The agent's unread notifications (the status line shows them).
    pub notifications_unread: i64,
    /// `[notifications]` of the personal config: bell, desktop notification.
    pub notify: crate::config::NotifySettings,
    /// Who is online and where, as the server last said (every session that reports; this
    /// agent's own included).
    pub presence: Vec<PresenceEntry>,
    /// What this client last reported, and when (repeated as a heartbeat).
    presence_sent: Option<((Option<ConversationId>, Activity), Millis)>,
    /// The last change this agent made (a verb with its argument): what `.` repeats.
    pub last_change: Option<Action>,
    /// A `:g//` waiting for its matches: the verb to run and the command as typed.
    pending_global: Option<(crate::actions::Verb, String)>,
    /// `[ui] bulk_confirm_over`: `:g//` asks first above this many conversations.
    pub bulk_confirm_over: usize,
    /// The terminal's colour depth (set at start from the environment): views whose meaning
    /// is in colour draw plain text on a 16-colour terminal.
    pub colors: crate::tui::colors::ColorDepth,
    /// The reports view while the help screen opened from it is up.
    reports_behind_help: Option<Box<crate::tui::reports::ReportsView>>,
}

/// Text to put into the composer once it is open and loaded.
#[derive(Debug, Clone)]
enum Insert {
    /// Rendered already (by the server): a canned reply or a suggestion.
    Text {
        label: String,
        text: String,
        missing: Vec<String>,
    },
    /// A personal canned reply, rendered here for the composer's channel.
    Personal(String),
}

/// A macro between its start and its run: its canned replies are being rendered.
#[derive(Debug, Clone)]
struct MacroRun {
    name: String,
    conversation: ConversationId,
    contact: ContactId,
    steps: Vec<Action>,
    /// Per step: a canned reply's rendering (channel, text), once known. `None` in the
    /// outer option: not a canned step.
    rendered: Vec<Option<Option<(Channel, String)>>>,
}

/// How often presence is reported while nothing changes (the server expires an entry after
/// three missed beats: a connection that hangs without closing).
pub const PRESENCE_HEARTBEAT_MS: Millis = 5_000;

/// How long a status message stays up.
const STATUS_MS: i64 = 6_000;

impl App {
    pub fn new(config: &Config, keymap: Keymap, size: (u16, u16), now: Millis) -> App {
        App {
            agent: config.agent.clone(),
            whoami: config.agent.clone(),
            theme: config.theme.clone(),
            three_pane_min_width: config.three_pane_min_width,
            queue_order: config.queue_order,
            keymap,
            resolver: KeyResolver::new(),
            mode: Mode::Normal,
            focus: Pane::Queue,
            show_profile: false,
            queue: QueueState::default(),
            timeline: TimelineState::default(),
            profile: ProfileState::default(),
            counts: Counts::default(),
            outbox: (0, 0),
            worker: "worker: starting".into(),
            status: None,
            size,
            now,
            history: Vec::new(),
            previous_view: None,
            confirm: None,
            pending_merge: None,
            pending_after_reply: config.pending_after_reply,
            known_agents: Vec::new(),
            known_teams: Vec::new(),
            templates: Vec::new(),
            canned: Vec::new(),
            personal_canned: Default::default(),
            macros: config.macros.clone(),
            suggest: false,
            pending_insert: None,
            macro_run: None,
            jump_target: None,
            notifications_unread: 0,
            notify: config.notifications,
            presence: Vec::new(),
            presence_sent: None,
            last_change: None,
            pending_global: None,
            bulk_confirm_over: config.bulk_confirm_over,
            colors: Default::default(),
            reports_behind_help: None,
        }
    }

    /// Rows a sheet shows at once at the current size (the screen minus the status and
    /// message lines, the sheet's borders and its footer).
    pub fn sheet_height(&self) -> usize {
        (self.size.1 as usize).saturating_sub(5).max(1)
    }

    /// Open a full-screen list on `source` (see [`crate::tui::sheet`]): the effects load its
    /// first page.
    pub fn open_sheet(&mut self, source: Box<dyn crate::tui::sheet::SheetSource>) -> Vec<Effect> {
        let (sheet, first) = crate::tui::sheet::Sheet::open(source, self.sheet_height());
        self.resolver.reset();
        self.mode = Mode::Sheet(Box::new(sheet));
        vec![Effect::Request(first)]
    }

    /// The open sheet, if any.
    pub fn sheet_mut(&mut self) -> Option<&mut crate::tui::sheet::Sheet> {
        match &mut self.mode {
            Mode::Sheet(s) => Some(s),
            _ => None,
        }
    }

    /// Carry out what a sheet's key or answer asked for.
    fn sheet_outcome(&mut self, out: crate::tui::sheet::SheetOutcome) -> Vec<Effect> {
        let mut fx: Vec<Effect> = out.requests.into_iter().map(Effect::Request).collect();
        if let Some(e) = out.error {
            self.error(e);
        }
        if let Some(i) = out.info {
            self.info(i);
        }
        if out.close {
            self.mode = Mode::Normal;
        }
        if let Some(t) = out.open {
            self.mode = Mode::Normal;
            fx.extend(self.open_target(t));
        }
        fx
    }

    /// `:reports` (`g R`): the reports view, its first screen's reports asked for.
    pub fn open_reports(&mut self) -> Vec<Effect> {
        let mut view = crate::tui::reports::ReportsView::new(self.now);
        let fx = view.load().into_iter().map(Effect::Request).collect();
        self.resolver.reset();
        self.mode = Mode::Reports(Box::new(view));
        fx
    }

    /// The mode a closed help screen gives back: the reports view it was opened from, or
    /// the panes.
    fn after_help(&mut self) -> Mode {
        match self.reports_behind_help.take() {
            Some(view) => Mode::Reports(view),
            None => Mode::Normal,
        }
    }

    /// Carry out what a key of the reports view asked for.
    fn reports_outcome(&mut self, out: crate::tui::reports::ReportsOutcome) -> Vec<Effect> {
        if let Some(e) = out.error {
            self.error(e);
        }
        if let Some(i) = out.info {
            self.info(i);
        }
        if out.close {
            self.mode = Mode::Normal;
        }
        if out.help
            && let Mode::Reports(view) = std::mem::replace(&mut self.mode, Mode::Help { scroll: 0 })
        {
            // Closing the help comes back to the view as it was.
            self.reports_behind_help = Some(view);
        }
        out.requests.into_iter().map(Effect::Request).collect()
    }

    /// `:audit [filters]`: the audit log in a sheet (see [`crate::tui::audit`]).
    fn open_audit(&mut self, arg: Option<&str>) -> Vec<Effect> {
        match crate::tui::audit::AuditView::parse(arg.unwrap_or(""), self.now) {
            Ok(view) => self.open_sheet(Box::new(view)),
            Err(e) => {
                self.error(e);
                Vec::new()
            }
        }
    }

    /// Open conversation `t.conversation` (as a view of its own; Esc goes back) and select
    /// `t.message` in its timeline.
    pub fn open_target(&mut self, t: crate::tui::sheet::SheetTarget) -> Vec<Effect> {
        self.jump_target = Some(t);
        self.dispatch(Action::Open(Some(t.conversation)), None)
    }

    // ---------------------------------------------------------------- presence

    /// What this agent is doing now: typing in the composer's conversation, or viewing the
    /// selected one.
    pub fn presence_now(&self) -> (Option<ConversationId>, Activity) {
        match &self.mode {
            Mode::Compose(c) => (
                Some(c.conversation),
                match c.kind {
                    ComposeKind::Reply => Activity::Reply,
                    ComposeKind::Note => Activity::Note,
                },
            ),
            _ => (self.selected_ids().map(|(c, _)| c), Activity::Viewing),
        }
    }

    /// The presence report to send now (`now`: the wall clock): when what the agent does
    /// changed, or as a heartbeat. None: nothing to say.
    pub fn presence_request(&mut self, now: Millis) -> Option<Request> {
        let current = self.presence_now();
        let due = match &self.presence_sent {
            None => true,
            Some((last, at)) => *last != current || now - at >= PRESENCE_HEARTBEAT_MS,
        };
        if !due {
            return None;
        }
        self.presence_sent = Some((current, now));
        Some(Request::Presence {
            conversation: current.0,
            activity: current.1,
        })
    }

    /// The other agents in a conversation, one entry each (typing wins over viewing), in
    /// the order they arrived.
    pub fn others_in(&self, conversation: ConversationId) -> Vec<&PresenceEntry> {
        let mut out: Vec<&PresenceEntry> = Vec::new();
        for e in self
            .presence
            .iter()
            .filter(|e| e.agent != self.agent && e.conversation == Some(conversation))
        {
            match out.iter_mut().find(|o| o.agent == e.agent) {
                Some(o) if o.activity == Activity::Viewing && e.activity != Activity::Viewing => {
                    *o = e
                }
                Some(_) => {}
                None => out.push(e),
            }
        }
        out
    }

    /// "Bob is viewing · Ann is typing a reply": who else is in the conversation.
    pub fn presence_line(&self, conversation: ConversationId) -> Option<String> {
        let others = self.others_in(conversation);
        if others.is_empty() {
            return None;
        }
        Some(
            others
                .iter()
                .map(|e| format!("{} is {}", e.display, e.activity.describe()))
                .collect::<Vec<_>>()
                .join(" · "),
        )
    }

    /// How many agents are online (this one included, each counted once).
    pub fn online_agents(&self) -> usize {
        let mut names: Vec<&str> = self.presence.iter().map(|e| e.agent.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// `:who`: everyone online and where, asked fresh from the server, in a list.
    /// `:campaign stop NAME`: asks the server (admin role); the answer is a status line.
    fn campaign_command(&mut self, arg: Option<&str>) -> Vec<Effect> {
        let mut words = arg.unwrap_or("").split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("stop"), Some(name), None) => vec![Effect::Request(Request::Campaign(
                crate::api::CampaignOp::Stop {
                    name: name.to_string(),
                },
            ))],
            _ => {
                self.error(
                    "write :campaign stop NAME (:campaigns lists them; braid campaign start                      NAME starts one)"
                        .to_string(),
                );
                Vec::new()
            }
        }
    }

    fn who(&mut self) -> Vec<Effect> {
        let view = crate::tui::who::WhoView::new(&self.agent, self.now);
        self.open_sheet(Box::new(view))
    }

    /// The first effects: load the default view and the counters.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = self.load_view(QueueView::Filter(QueueFilter::Status(Status::Open)));
        fx.push(self.counts_request());
        fx.push(unread_request());
        fx
    }

    /// The pending key sequence (count and prefix), for the status line.
    pub fn pending_keys(&self) -> String {
        self.resolver.pending()
    }

    /// Next keys of a pending sequence and what they do (which-key style hint).
    pub fn continuations(&self) -> Vec<(String, String)> {
        self.resolver
            .continuations(&self.keymap, keymap::Mode::Normal)
    }

    pub fn three_panes(&self) -> bool {
        self.size.0 >= self.three_pane_min_width
    }

    /// Rows of the queue pane's list area (for half-page moves and scrolling).
    pub fn queue_height(&self) -> usize {
        (self.size.1 as usize).saturating_sub(4).max(1)
    }

    /// Inner width and height of the timeline pane at the current size (for scrolling).
    pub fn timeline_size(&self) -> (usize, usize) {
        let area = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let a = crate::tui::ui::areas(self, area);
        let r = a.timeline.or(a.queue).unwrap_or(area);
        (
            r.width.saturating_sub(2) as usize,
            r.height.saturating_sub(2) as usize,
        )
    }

    /// The most the help screen scrolls (its last line at the bottom of the box).
    pub fn help_max_scroll(&self) -> u16 {
        let lines = crate::tui::ui::help::lines(self).len();
        let visible = (self.size.1 as usize).saturating_sub(4);
        lines.saturating_sub(visible).min(u16::MAX as usize) as u16
    }

    pub fn info(&mut self, msg: impl Into<String>) {
        self.status = Some((msg.into(), Level::Info, self.now + STATUS_MS));
    }

    pub fn error(&mut self, msg: impl Into<String>) {
        self.status = Some((msg.into(), Level::Error, self.now + 2 * STATUS_MS));
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.key(key),
            Event::Resize(w, h) => {
                self.size = (w, h);
                let height = self.sheet_height();
                if let Some(sheet) = self.sheet_mut() {
                    sheet.height = height;
                    sheet.fix_scroll();
                }
                if !self.three_panes() && self.focus == Pane::Profile && !self.show_profile {
                    self.focus = Pane::Timeline;
                }
                Vec::new()
            }
            Event::Data(resp) => self.data(resp),
            Event::Feed(events) => self.feed(&events),
            Event::Worker(s) => {
                self.worker = s;
                Vec::new()
            }
            Event::Presence(online) => {
                self.presence = online;
                Vec::new()
            }
            Event::Problem(e) => {
                self.error(e);
                Vec::new()
            }
            Event::Notification { rows, unread } => self.notification(rows, unread),
            Event::Connection { up: false, line } => {
                // The screen stays as it is (a draft in the composer included); requests fail
                // with a clear line until the server is back.
                self.error(line.clone());
                self.worker = line;
                // Who was online is not known any more; report again once back.
                self.presence.clear();
                self.presence_sent = None;
                Vec::new()
            }
            Event::Connection { up: true, line } => {
                self.worker = line;
                self.presence_sent = None;
                self.info("reconnected to the server");
                let mut fx = self.reload_queue();
                fx.extend(self.refresh_selected());
                fx.push(self.counts_request());
                fx.push(unread_request());
                if let Mode::Reports(view) = &mut self.mode {
                    fx.extend(view.load().into_iter().map(Effect::Request));
                }
                fx
            }
            Event::Tick(now) => {
                self.now = now;
                if let Some((_, _, until)) = &self.status
                    && *until <= now
                {
                    self.status = None;
                }
                Vec::new()
            }
            Event::EditorDone(result) => {
                match result {
                    Ok(text) => {
                        if let Mode::Compose(c) = &mut self.mode {
                            let lines: Vec<String> = text.lines().map(str::to_string).collect();
                            c.textarea = new_textarea(lines);
                        }
                        return self.save_draft();
                    }
                    Err(e) => self.error(format!("editor: {e}")),
                }
                Vec::new()
            }
        }
    }

    // ---------------------------------------------------------------- keys

    fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        match &mut self.mode {
            Mode::Normal => {
                match self.resolver.feed(&self.keymap, keymap::Mode::Normal, key) {
                    Resolved::Action { action, count } => self.dispatch(action, count),
                    Resolved::Unbound { keys } => {
                        self.error(format!("{keys} is not bound (? shows the keys)"));
                        Vec::new()
                    }
                    Resolved::Cancelled => {
                        // Esc leaves a visual selection first.
                        if key.code == KeyCode::Esc && self.queue.visual.take().is_some() {
                            self.info("selection cleared");
                            return Vec::new();
                        }
                        // Esc with nothing pending leaves a search view.
                        if key.code == KeyCode::Esc
                            && matches!(self.queue.view, Some(QueueView::Search(_)))
                        {
                            let back = self
                                .previous_view
                                .take()
                                .unwrap_or(QueueView::Filter(QueueFilter::Status(Status::Open)));
                            return self.load_view(back);
                        }
                        Vec::new()
                    }
                    _ => Vec::new(),
                }
            }
            Mode::Help { .. } => {
                // The movement keys of the keymap scroll the help (j/k, gg/G, Ctrl-d/u).
                let resolved = self.resolver.feed(&self.keymap, keymap::Mode::Normal, key);
                let max = self.help_max_scroll();
                let page = (self.size.1 / 2).max(1);
                let Mode::Help { scroll } = &mut self.mode else {
                    return Vec::new();
                };
                let n = |count: Option<usize>| count.unwrap_or(1).min(u16::MAX as usize) as u16;
                match resolved {
                    Resolved::Action { action, count } => match action {
                        Action::MoveDown => *scroll = scroll.saturating_add(n(count)),
                        Action::MoveUp => *scroll = scroll.saturating_sub(n(count)),
                        Action::HalfPageDown => *scroll = scroll.saturating_add(page),
                        Action::HalfPageUp => *scroll = scroll.saturating_sub(page),
                        Action::Top => *scroll = 0,
                        Action::Bottom => *scroll = max,
                        Action::Quit | Action::Help | Action::Open(_) | Action::Cancel => {
                            self.mode = self.after_help();
                            return Vec::new();
                        }
                        _ => {}
                    },
                    Resolved::Cancelled if key.code == KeyCode::Esc => {
                        self.mode = self.after_help();
                        return Vec::new();
                    }
                    _ => {}
                }
                *scroll = (*scroll).min(max);
                Vec::new()
            }
            Mode::Prompt(_) => self.prompt_key(key),
            Mode::Compose(_) => self.compose_key(key),
            Mode::Sheet(_) => {
                let resolved = self.resolver.feed(&self.keymap, keymap::Mode::Sheet, key);
                let Mode::Sheet(sheet) = &mut self.mode else {
                    return Vec::new();
                };
                let out = match resolved {
                    // The help screen replaces the list (g n, or the list's key, brings it back).
                    Resolved::Action {
                        action: Action::Help,
                        ..
                    } => {
                        self.mode = Mode::Help { scroll: 0 };
                        return Vec::new();
                    }
                    Resolved::Action { action, count } => sheet.dispatch(&action, count),
                    // Esc that dropped a pending `g` (or a count) only does that; a plain Esc
                    // is bound to `cancel` (closes), or closes anyway when a keymap unbinds it.
                    Resolved::Cancelled
                        if key.code == KeyCode::Esc
                            && self.keymap.key_for(keymap::Mode::Sheet, "cancel").is_none() =>
                    {
                        sheet.dispatch(&Action::Cancel, None)
                    }
                    Resolved::Unbound { keys } => crate::tui::sheet::SheetOutcome {
                        error: Some(format!(
                            "{keys} is not bound in lists (? shows the keys, Esc closes the list)"
                        )),
                        ..Default::default()
                    },
                    _ => return Vec::new(),
                };
                self.sheet_outcome(out)
            }
            Mode::Reports(_) => {
                let resolved = self.resolver.feed(&self.keymap, keymap::Mode::Reports, key);
                let (w, h) = self.size;
                let screen = ratatui::layout::Rect::new(0, 0, w, h.saturating_sub(2));
                let Mode::Reports(view) = &mut self.mode else {
                    return Vec::new();
                };
                view.page = crate::tui::ui::reports::main_table_rows(view, screen);
                let out = match resolved {
                    Resolved::Action { action, count } => view.dispatch(&action, count),
                    // Esc closes even when a keymap unbinds it.
                    Resolved::Cancelled
                        if key.code == KeyCode::Esc
                            && self
                                .keymap
                                .key_for(keymap::Mode::Reports, "cancel")
                                .is_none() =>
                    {
                        view.dispatch(&Action::Cancel, None)
                    }
                    Resolved::Unbound { keys } => crate::tui::reports::ReportsOutcome {
                        error: Some(format!(
                            "{keys} is not bound in the reports view (? shows the keys, Esc goes back)"
                        )),
                        ..Default::default()
                    },
                    _ => return Vec::new(),
                };
                self.reports_outcome(out)
            }
        }
    }

    fn prompt_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Prompt(p) = &mut self.mode else {
            return Vec::new();
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if p.kind == PromptKind::Confirm {
            self.mode = Mode::Normal;
            let request = self.confirm.take();
            return match (key.code, request) {
                (KeyCode::Char('y' | 'Y'), Some(r)) if !ctrl => vec![Effect::Request(r)],
                _ => {
                    self.info("cancelled: nothing changed");
                    Vec::new()
                }
            };
        }
        if key.code != KeyCode::Tab && key.code != KeyCode::BackTab {
            p.completions.clear();
            p.completion_index = None;
        }
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
            }
            KeyCode::Char('c') if ctrl => {
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => {
                let p = match std::mem::replace(&mut self.mode, Mode::Normal) {
                    Mode::Prompt(p) => p,
                    _ => return Vec::new(),
                };
                let line = p.input.trim().to_string();
                if line.is_empty() {
                    return Vec::new();
                }
                let line_for_history = match p.kind {
                    PromptKind::Command | PromptKind::Confirm => line.clone(),
                    PromptKind::Search => format!("search {line}"),
                };
                self.history.retain(|h| *h != line_for_history);
                self.history.push(line_for_history);
                let parsed = match p.kind {
                    PromptKind::Search => Ok((Action::Search(Some(line)), None)),
                    PromptKind::Command | PromptKind::Confirm => parse_command_line(&line),
                };
                return match parsed {
                    Ok((action, count)) => self.dispatch(action, count),
                    Err(e) => {
                        self.error(e);
                        Vec::new()
                    }
                };
            }
            KeyCode::Backspace => {
                if p.input.is_empty() {
                    self.mode = Mode::Normal;
                } else if p.cursor > 0 {
                    let at = byte_index(&p.input, p.cursor - 1);
                    p.input.remove(at);
                    p.cursor -= 1;
                }
            }
            KeyCode::Delete if p.cursor < p.input.chars().count() => {
                let at = byte_index(&p.input, p.cursor);
                p.input.remove(at);
            }
            KeyCode::Left => p.cursor = p.cursor.saturating_sub(1),
            KeyCode::Right => p.cursor = (p.cursor + 1).min(p.input.chars().count()),
            KeyCode::Home => p.cursor = 0,
            KeyCode::End => p.cursor = p.input.chars().count(),
            KeyCode::Char('a') if ctrl => p.cursor = 0,
            KeyCode::Char('e') if ctrl => p.cursor = p.input.chars().count(),
            KeyCode::Char('u') if ctrl => {
                p.input.clear();
                p.cursor = 0;
            }
            KeyCode::Char('w') if ctrl => {
                let chars: Vec<char> = p.input.chars().collect();
                let mut i = p.cursor;
                while i > 0 && chars[i - 1] == ' ' {
                    i -= 1;
                }
                while i > 0 && chars[i - 1] != ' ' {
                    i -= 1;
                }
                let rest: String = chars[p.cursor..].iter().collect();
                p.input = chars[..i].iter().collect::<String>() + &rest;
                p.cursor = i;
            }
            KeyCode::Up | KeyCode::Down if p.kind == PromptKind::Command => {
                if self.history.is_empty() {
                    return Vec::new();
                }
                let n = self.history.len();
                let idx = match (p.history_index, key.code) {
                    (None, KeyCode::Up) => Some(n - 1),
                    (None, _) => None,
                    (Some(i), KeyCode::Up) => Some(i.saturating_sub(1)),
                    (Some(i), _) if i + 1 < n => Some(i + 1),
                    (Some(_), _) => None,
                };
                p.history_index = idx;
                p.input = idx.map(|i| self.history[i].clone()).unwrap_or_default();
                p.cursor = p.input.chars().count();
            }
            KeyCode::Tab | KeyCode::BackTab if p.kind == PromptKind::Command => {
                let back = key.code == KeyCode::BackTab;
                if p.completions.is_empty() {
                    let input = p.input.clone();
                    let candidates = self.completion_candidates_for(&input);
                    let Mode::Prompt(p) = &mut self.mode else {
                        return Vec::new();
                    };
                    p.completions = candidates;
                    p.completion_index = None;
                }
                let Mode::Prompt(p) = &mut self.mode else {
                    return Vec::new();
                };
                if p.completions.is_empty() {
                    return Vec::new();
                }
                let n = p.completions.len();
                let i = match (p.completion_index, back) {
                    (None, false) => 0,
                    (None, true) => n - 1,
                    (Some(i), false) => (i + 1) % n,
                    (Some(i), true) => (i + n - 1) % n,
                };
                p.completion_index = Some(i);
                let head = match p.input.rfind(' ') {
                    Some(sp) => p.input[..=sp].to_string(),
                    None => String::new(),
                };
                let mut completed = format!("{head}{}", p.completions[i]);
                if n == 1 && head.is_empty() {
                    completed.push(' ');
                }
                p.input = completed;
                p.cursor = p.input.chars().count();
            }
            KeyCode::Char(c) if !ctrl => {
                let at = byte_index(&p.input, p.cursor);
                p.input.insert(at, c);
                p.cursor += 1;
            }
            _ => {}
        }
        Vec::new()
    }

    /// Completion candidates for the last word of a command line.
    fn completion_candidates_for(&self, input: &str) -> Vec<String> {
        let Some((cmd, arg)) = input.split_once(' ') else {
            return Action::complete(input)
                .into_iter()
                .filter(|n| {
                    crate::tui::action::Command::find(n)
                        .is_none_or(|c| !COMPOSER_ONLY.contains(&c.name))
                })
                .map(str::to_string)
                .collect();
        };
        let arg = arg.trim_start();
        let name = crate::tui::action::Command::find(cmd)
            .map(|c| c.name)
            .unwrap_or(cmd);
        let options: Vec<String> = match name {
            "view" if arg.starts_with("team ") => {
                let mut t = self.known_teams.clone();
                t.sort();
                t
            }
            "view" => [
                "open",
                "pending",
                "snoozed",
                "resolved",
                "mine",
                "unassigned",
                "all",
                "team",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "reply_via" => {
                let mut chans: Vec<Channel> = self
                    .profile
                    .profile
                    .as_ref()
                    .map(|p| p.channels.clone())
                    .unwrap_or_default();
                if chans.is_empty() {
                    chans = Channel::ALL.to_vec();
                }
                // Call logs and events are records: nothing is answered through them.
                chans
                    .iter()
                    .filter(|c| c.replyable())
                    .map(|c| c.as_str().to_string())
                    .collect()
            }
            "priority" => Priority::ALL
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            "assign" | "handoff" if !arg.contains(' ') => {
                let mut a = self.known_agents.clone();
                if !a.contains(&self.agent) {
                    a.push(self.agent.clone());
                }
                a.sort();
                if name == "assign" {
                    let mut teams = self.known_teams.clone();
                    teams.sort();
                    a.extend(teams.into_iter().filter(|t| !self.known_agents.contains(t)));
                }
                a
            }
            "template" | "macro" if !arg.contains(' ') => {
                let names: Vec<String> = if name == "macro" {
                    self.macros.iter().map(|m| m.name.clone()).collect()
                } else {
                    self.canned_names()
                        .into_iter()
                        .chain(self.templates.iter().map(|t| t.name.clone()))
                        .collect()
                };
                return fuzzy(names, arg);
            }
            "untag" => self.profile.conversation_tags.clone(),
            "tag" => self
                .profile
                .profile
                .as_ref()
                .map(|p| p.tags.clone())
                .unwrap_or_default(),
            "identity_add" => {
                if arg.contains(' ') {
                    Vec::new()
                } else {
                    IdentityKind::ALL
                        .iter()
                        .map(|k| k.as_str().to_string())
                        .chain(std::iter::once("add".to_string()))
                        .collect()
                }
            }
            "claim" if !arg.contains(' ') => {
                ["link", "dismiss"].iter().map(|s| s.to_string()).collect()
            }
            "snooze" => ["1h", "4h", "tomorrow", "monday", "1w"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            _ => Vec::new(),
        };
        let last = arg.rsplit(' ').next().unwrap_or("");
        options
            .into_iter()
            .filter(|o| o.starts_with(last))
            .collect()
    }

    fn compose_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.resolver.feed(&self.keymap, keymap::Mode::Compose, key) {
            Resolved::Action { action, .. } => return self.dispatch(action, None),
            Resolved::Pending => return Vec::new(),
            Resolved::Cancelled => return self.dispatch(Action::Cancel, None),
            _ => {}
        }
        let Mode::Compose(c) = &mut self.mode else {
            return Vec::new();
        };
        if c.sending {
            return Vec::new();
        }
        if c.loading {
            c.typed.push(key);
            return Vec::new();
        }
        if key.code == KeyCode::Tab
            && key.modifiers.is_empty()
            && c.kind == ComposeKind::Note
            && let Some(done) = complete_mention(c, &self.known_agents, &self.agent)
        {
            return match done {
                Ok(others) => {
                    if let Some(o) = others {
                        self.info(o);
                    }
                    self.save_draft()
                }
                Err(e) => {
                    self.error(e);
                    Vec::new()
                }
            };
        }
        c.mention_warned = false;
        c.placeholder_warned = false;
        let changed = c.textarea.input(key);
        if changed {
            self.save_draft()
        } else {
            Vec::new()
        }
    }

    fn save_draft(&mut self) -> Vec<Effect> {
        let Mode::Compose(c) = &self.mode else {
            return Vec::new();
        };
        if c.sending || c.loading {
            return Vec::new();
        }
        vec![Effect::Request(Request::Write {
            conversation: c.conversation,
            contact: c.contact,
            write: Write::SaveDraft {
                kind: c.kind.as_str().to_string(),
                channel: c.channel,
                body: c.text(),
            },
        })]
    }

    // ---------------------------------------------------------------- actions

    /// Carry out one action (from a key, the command line or a keymap value).
    pub fn dispatch(&mut self, action: Action, count: Option<usize>) -> Vec<Effect> {
        let n = count.unwrap_or(1).max(1);
        match action {
            Action::MoveDown => self.move_by(n as i64),
            Action::MoveUp => self.move_by(-(n as i64)),
            Action::HalfPageDown => {
                self.move_by((self.queue_height() / 2).max(1) as i64 * n as i64)
            }
            Action::HalfPageUp => {
                self.move_by(-((self.queue_height() / 2).max(1) as i64) * n as i64)
            }
            Action::Top => self.go_to(count.map(|c| c.saturating_sub(1)).unwrap_or(0)),
            Action::Bottom => match count {
                Some(c) => self.go_to(c.saturating_sub(1)),
                None => self.go_bottom(),
            },
            Action::FocusNext | Action::FocusRight => {
                self.focus = self.next_pane(true, action == Action::FocusRight);
                Vec::new()
            }
            Action::FocusPrev | Action::FocusLeft => {
                self.focus = self.next_pane(false, action == Action::FocusLeft);
                Vec::new()
            }
            Action::Open(Some(id)) => {
                // The conversation alone, as a search view (Esc goes back).
                let fx = self.dispatch(Action::Search(Some(format!("conversation:{id}"))), None);
                self.focus = Pane::Timeline;
                self.show_profile = false;
                fx
            }
            Action::Open(None) => {
                let Some(row) = self.queue.current() else {
                    return Vec::new();
                };
                self.focus = Pane::Timeline;
                self.show_profile = false;
                // A search result opens on its match.
                let hit = self
                    .queue
                    .search
                    .as_ref()
                    .and_then(|s| s.first.get(&row.id))
                    .and_then(|(m, _)| *m);
                if let Some(m) = hit {
                    self.timeline.target = Some(m);
                    self.timeline.seeking = true;
                    return self.show_target();
                }
                Vec::new()
            }
            Action::NextMatch => self.next_match(true),
            Action::PrevMatch => self.next_match(false),
            Action::ToggleProfile => {
                if self.three_panes() {
                    self.focus = if self.focus == Pane::Profile {
                        Pane::Queue
                    } else {
                        Pane::Profile
                    };
                } else {
                    self.show_profile = !self.show_profile;
                    if self.focus != Pane::Queue {
                        self.focus = if self.show_profile {
                            Pane::Profile
                        } else {
                            Pane::Timeline
                        };
                    }
                }
                Vec::new()
            }
            Action::ToggleQuoted => {
                // Keep the message at the top of the pane where it is: the lines above and
                // below it change, the reading position does not.
                // (At the bottom, following the newest message, it stays at the bottom.)
                let (width, height) = self.timeline_size();
                let anchor = match self.timeline.scroll {
                    0 => None,
                    _ => self.timeline_top(width, height),
                };
                self.timeline.show_quoted = !self.timeline.show_quoted;
                if let Some((id, into)) = anchor {
                    self.scroll_timeline_to(id, into, width, height);
                }
                self.info(if self.timeline.show_quoted {
                    "quoted text shown"
                } else {
                    "quoted text folded"
                });
                Vec::new()
            }
            Action::Help => {
                self.mode = Mode::Help { scroll: 0 };
                Vec::new()
            }
            Action::CommandLine => {
                self.mode = Mode::Prompt(Prompt::new(PromptKind::Command, ""));
                Vec::new()
            }
            Action::Search(None) => {
                self.mode = Mode::Prompt(Prompt::new(PromptKind::Search, ""));
                Vec::new()
            }
            Action::Search(Some(q)) => {
                if let Err(e) = crate::api::SearchQuery::parse_as(&q, Some(&self.agent)) {
                    self.error(e);
                    return Vec::new();
                }
                let q = crate::api::SearchQuery::resolve_me(&q, &self.agent);
                if let Some(v @ QueueView::Filter(_)) = &self.queue.view {
                    self.previous_view = Some(v.clone());
                }
                self.focus = Pane::Queue;
                self.load_view(QueueView::Search(q))
            }
            Action::View(None) => self.prompt("view "),
            Action::View(Some(name)) => match QueueFilter::parse(&name, &self.agent) {
                Ok(f) => {
                    self.previous_view = None;
                    self.focus = Pane::Queue;
                    self.load_view(QueueView::Filter(f))
                }
                Err(e) => {
                    self.error(e);
                    Vec::new()
                }
            },
            Action::Refresh => {
                let mut fx = self.reload_queue();
                fx.extend(self.reload_selected(true));
                fx.push(self.counts_request());
                self.info("reloaded");
                fx
            }
            Action::Quit => vec![Effect::Quit],
            Action::Who => self.who(),
            Action::Campaigns => {
                let view = crate::tui::campaigns::CampaignsView::new(self.now);
                self.open_sheet(Box::new(view))
            }
            Action::Campaign(arg) => self.campaign_command(arg.as_deref()),
            Action::Rules => self.open_sheet(Box::new(crate::tui::rules::RulesView::new())),
            Action::Discard => {
                let Mode::Compose(c) = &mut self.mode else {
                    return Vec::new();
                };
                if c.sending || c.loading {
                    return Vec::new();
                }
                // An empty draft deletes the saved one.
                c.textarea = new_textarea(vec![String::new()]);
                let fx = self.save_draft();
                if let Mode::Compose(c) = &self.mode {
                    self.focus = c.return_focus;
                }
                self.mode = Mode::Normal;
                self.info("draft discarded");
                fx
            }
            Action::Cancel => {
                if let Mode::Compose(c) = &self.mode {
                    let kept = !c.text().trim().is_empty();
                    let back = c.return_focus;
                    let fx = self.save_draft();
                    self.focus = back;
                    self.mode = Mode::Normal;
                    if kept {
                        self.info("draft kept: r (or c for a note) brings it back");
                    }
                    return fx;
                }
                self.mode = Mode::Normal;
                Vec::new()
            }
            Action::Send => self.send(),
            Action::EditExternal => match &self.mode {
                Mode::Compose(c) => vec![Effect::RunEditor(c.text())],
                _ => Vec::new(),
            },
            // Verbs on the selected conversation.
            Action::Reply => self.compose(ComposeKind::Reply, None),
            Action::ReplyVia(None) => self.prompt("reply_via "),
            Action::ReplyVia(Some(ch)) => self.compose(ComposeKind::Reply, Some(ch)),
            Action::Note => self.compose(ComposeKind::Note, None),
            Action::Assign(None) => self.prompt("assign "),
            Action::Handoff(None) => self.prompt("handoff "),
            Action::Template(None) => self.prompt("template "),
            Action::Template(Some(arg)) => match self.canned_name(&arg) {
                Some(name) => self.insert_canned(&name),
                None => self.send_template(&arg),
            },
            Action::Macro(None) => self.prompt("macro "),
            Action::Macro(Some(name)) => self.start_macro(name.trim()),
            Action::Suggest => self.ask_suggestion(),
            Action::Audit(arg) => self.open_audit(arg.as_deref()),
            // The workflow verbs: one mapping and one execution, shared with the CLI
            // (crate::actions).
            verb @ (Action::Assign(Some(_))
            | Action::AssignMe
            | Action::Handoff(Some(_))
            | Action::Unassign
            | Action::Resolve
            | Action::Reopen
            | Action::Pending
            | Action::Snooze(Some(_))
            | Action::Tag(Some(_))
            | Action::Untag(Some(_))
            | Action::Priority(Some(_))
            | Action::Vip
            | Action::Retry
            | Action::IdentityAdd(Some(_))
            | Action::Join(Some(_))
            | Action::Split(Some(_))
            | Action::SetField(Some(_))
            | Action::UnsetField(Some(_))
            | Action::Stage(Some(_))
            | Action::Score(Some(_))
            | Action::Claim(Some(_))) => {
                let vip = self.queue.current().map(|r| r.vip).unwrap_or(false);
                match crate::actions::Verb::from_action(&verb, &self.agent, self.now, vip) {
                    Ok(Some(v)) => {
                        let v = v.resolve_names(&self.known_agents, &self.known_teams);
                        if crate::actions::bulk_verb(&v) {
                            self.last_change = Some(verb.clone());
                        }
                        if self.queue.visual.is_some() {
                            return self.bulk_on_selection(v);
                        }
                        self.write(Write::Verb(v))
                    }
                    Ok(None) => self.prompt(&format!("{} ", verb.name())),
                    Err(e) => {
                        self.error(e);
                        Vec::new()
                    }
                }
            }
            Action::Undo => {
                self.info("undoing...");
                vec![Effect::Request(Request::Undo)]
            }
            Action::Repeat => self.repeat(count),
            Action::Visual => {
                if self.queue.visual.take().is_some() {
                    self.info("selection cleared");
                } else if self.queue.rows.is_empty() {
                    self.error("nothing to select: the queue is empty");
                } else {
                    self.focus = Pane::Queue;
                    self.queue.visual = Some(self.queue.offset + self.queue.selected);
                }
                Vec::new()
            }
            Action::Global { invert, arg: None } => self.prompt(if invert { "v/" } else { "g/" }),
            Action::Global {
                invert,
                arg: Some(g),
            } => self.global(invert, g),
            Action::Snooze(None) => self.prompt("snooze "),
            Action::Tag(None) => self.prompt("tag "),
            Action::Untag(None) => self.prompt("untag "),
            Action::Priority(None) => self.prompt("priority "),
            Action::Save(dir) => match self.chosen_ids() {
                Some((conversation, _)) => {
                    self.info("saving attachments...");
                    vec![Effect::Save { conversation, dir }]
                }
                None => Vec::new(),
            },
            Action::IdentityAdd(None) => self.prompt("identity add "),
            a @ (Action::Merge(_)
            | Action::MergeInto(_)
            | Action::Unmerge(_)
            | Action::Merges
            | Action::Duplicates
            | Action::Join(None)
            | Action::Split(None)
            | Action::IdentityRemove(_)
            | Action::IdentityMove(_)) => self.contact_action(a),
            // The duplicates view's own keys (handled by the sheet when it is open).
            Action::Pipeline(stage) => {
                let view = crate::tui::pipeline::PipelineView::new(self.now, stage);
                self.open_sheet(Box::new(view))
            }
            Action::MergePair | Action::DismissPair => {
                self.error(":duplicates first (m and d act on its pairs)");
                Vec::new()
            }
            Action::NextStage => {
                self.error(":pipeline first (Tab there shows the next stage)");
                Vec::new()
            }
            Action::SetField(None) => self.prompt("set "),
            Action::UnsetField(None) => self.prompt("unset "),
            Action::Stage(None) => self.prompt("stage "),
            Action::Score(None) => self.prompt("score "),
            Action::Claim(None) => self.prompt("claim "),
            Action::Notifications => {
                let view = crate::tui::notifications::NotificationsView { now: self.now };
                self.open_sheet(Box::new(view))
            }
            Action::MarkAllRead => vec![Effect::Request(Request::MarkNotificationsRead {
                ids: Vec::new(),
                all: true,
            })],
            Action::SendAt(None) => self.prompt("send_at "),
            Action::SendAt(Some(arg)) => match crate::when::parse(&arg, self.now) {
                Ok(at) => {
                    let fx = self.compose(ComposeKind::Reply, None);
                    if let Mode::Compose(c) = &mut self.mode {
                        c.send_at = Some(at);
                        self.info(format!(
                            "this reply goes out {} ({} schedules it, {} keeps the draft)",
                            crate::when::label(at, self.now),
                            self.keymap
                                .key_for(keymap::Mode::Compose, "send")
                                .unwrap_or_else(|| "send".into()),
                            self.keymap
                                .key_for(keymap::Mode::Compose, "cancel")
                                .unwrap_or_else(|| "cancel".into()),
                        ));
                    }
                    fx
                }
                Err(e) => {
                    self.error(format!("send-at: {e}"));
                    Vec::new()
                }
            },
            Action::CancelSend => self.write(Write::CancelSend { message: None }),
            Action::Consent(None) => self.prompt("consent "),
            Action::Consent(Some(arg)) => {
                let Some(row) = self.queue.current() else {
                    self.error("no conversation selected: pick the customer first".to_string());
                    return Vec::new();
                };
                let (contact, channel) = (row.contact_id, row.last_channel);
                let words: Vec<&str> = arg.split_whitespace().collect();
                let purpose = match words.first().copied() {
                    Some("marketing") => crate::model::Purpose::Marketing,
                    Some("all") => crate::model::Purpose::Transactional,
                    _ => {
                        self.error("consent: say marketing or all, then on or off".to_string());
                        return Vec::new();
                    }
                };
                let opted_out = match words.get(1).copied() {
                    Some("off") => true,
                    Some("on") => false,
                    _ => {
                        self.error("consent: on or off after marketing / all".to_string());
                        return Vec::new();
                    }
                };
                vec![Effect::Request(Request::ConsentSet {
                    contact,
                    purpose,
                    opted_out,
                    channel: Some(channel),
                    note: words[2..].join(" "),
                })]
            }
            Action::Task(None) => self.prompt("task "),
            Action::Task(Some(arg)) => {
                let now = self.now;
                match crate::tui::tasks::parse_task(&arg, &|w| crate::when::parse(w, now)) {
                    Ok(t) => {
                        let title = if t.title.is_empty() {
                            let who = self
                                .queue
                                .current()
                                .map(|r| r.contact_name.clone())
                                .unwrap_or_default();
                            format!("{} {who}", t.kind).trim().to_string()
                        } else {
                            t.title
                        };
                        self.write(Write::Task {
                            task: crate::api::NewTask {
                                kind: t.kind,
                                title,
                                due_at: Some(t.due_at),
                                ..Default::default()
                            },
                        })
                    }
                    Err(e) => {
                        self.error(e);
                        Vec::new()
                    }
                }
            }
            Action::Tasks(arg) => {
                match crate::tui::tasks::TasksView::parse_view(arg.as_deref().unwrap_or("")) {
                    Ok(view) => {
                        let v = crate::tui::tasks::TasksView::new(self.now, view, None);
                        self.open_sheet(Box::new(v))
                    }
                    Err(e) => {
                        self.error(e);
                        Vec::new()
                    }
                }
            }
            Action::Reports => self.open_reports(),
            Action::ReportBack
            | Action::ReportForward
            | Action::ReportLonger
            | Action::ReportShorter
            | Action::ReportSlice
            | Action::ReportBusiness => {
                self.error(format!(
                    "that works in the reports view ({})",
                    self.keymap
                        .key_for(keymap::Mode::Normal, "reports")
                        .unwrap_or_else(|| ":reports".into())
                ));
                Vec::new()
            }
            Action::CloseTask | Action::TasksCycle => {
                self.error(format!(
                    "that works in the tasks view ({})",
                    self.keymap
                        .key_for(keymap::Mode::Normal, "tasks")
                        .unwrap_or_else(|| ":tasks".into())
                ));
                Vec::new()
            }
        }
    }

    /// The ids of the visually selected rows (they must be loaded: the window holds up to
    /// [`MAX_WINDOW`] rows; more is a job for `:g//`).
    fn selection_ids(&mut self) -> Option<Vec<ConversationId>> {
        let (a, b) = self.queue.visual_range()?;
        let q = &self.queue;
        let (lo, hi) = (q.offset, q.offset + q.rows.len());
        if a < lo || b >= hi {
            self.error(format!(
                "the selection ({} rows) reaches past the rows loaded: select fewer, or use :g/PATTERN/COMMAND",
                b - a + 1
            ));
            return None;
        }
        Some(q.rows[a - lo..=b - lo].iter().map(|r| r.id).collect())
    }

    /// A verb on the visual selection: one bulk request; the selection ends.
    fn bulk_on_selection(&mut self, verb: crate::actions::Verb) -> Vec<Effect> {
        if !crate::actions::bulk_verb(&verb) {
            self.error(format!(
                "'{}' works on one conversation: Esc leaves the selection",
                verb.name()
            ));
            return Vec::new();
        }
        if self.queue.loading {
            self.error("the queue is still loading: press it again once it shows");
            return Vec::new();
        }
        let Some(ids) = self.selection_ids() else {
            return Vec::new();
        };
        self.queue.visual = None;
        vec![Effect::Request(Request::Bulk {
            conversations: ids,
            verb,
        })]
    }

    /// `.`: the last change again, on this conversation, the selection, or (a count) that
    /// many rows from the cursor down.
    fn repeat(&mut self, count: Option<usize>) -> Vec<Effect> {
        let Some(change) = self.last_change.clone() else {
            self.error("nothing to repeat yet: make a change first (e, t, a, p, s...)");
            return Vec::new();
        };
        match count {
            Some(n) if n > 1 && self.queue.visual.is_none() && !self.queue.rows.is_empty() => {
                let cursor = self.queue.offset + self.queue.selected;
                let last = (cursor + n - 1).min(self.queue.offset + self.queue.rows.len() - 1);
                self.queue.visual = Some(last);
                let fx = self.dispatch(change, None);
                self.queue.visual = None;
                fx
            }
            _ => self.dispatch(change, None),
        }
    }

    /// `:g/PATTERN/COMMAND`: ask the server which conversations of the view match; the answer
    /// ([`Response::Matching`]) runs the verb on them (after a yes above the threshold).
    fn global(&mut self, invert: bool, g: crate::tui::action::GlobalArg) -> Vec<Effect> {
        let action = match Action::parse(&g.command) {
            Ok(a) => a,
            Err(e) => {
                self.error(format!("g//: {e}"));
                return Vec::new();
            }
        };
        let vip = self.queue.current().map(|r| r.vip).unwrap_or(false);
        let verb = match crate::actions::Verb::from_action(&action, &self.agent, self.now, vip) {
            Ok(Some(v)) => v.resolve_names(&self.known_agents, &self.known_teams),
            Ok(None) => {
                self.error(format!(
                    "g//: '{}' needs its argument here, e.g. g/{}/{} ARG",
                    action.name(),
                    g.pattern,
                    action.name()
                ));
                return Vec::new();
            }
            Err(e) => {
                self.error(format!("g//: {e}"));
                return Vec::new();
            }
        };
        if !crate::actions::bulk_verb(&verb) {
            self.error(format!(
                "g//: '{}' is not a queue verb (assign, resolve, reopen, pending, snooze, tag, untag, priority, vip)",
                g.command
            ));
            return Vec::new();
        }
        if let Err(e) = crate::api::SearchQuery::parse_as(&g.pattern, Some(&self.agent))
            && !g.pattern.is_empty()
        {
            self.error(format!("g//: {e}"));
            return Vec::new();
        }
        let Some(view) = self.queue.view.clone() else {
            self.error("g//: no queue view yet");
            return Vec::new();
        };
        self.last_change = Some(action);
        self.pending_global = Some((verb, g.command.clone()));
        self.info(format!("g//: finding what '{}' matches...", g.pattern));
        vec![Effect::Request(Request::Matching {
            view,
            pattern: crate::api::SearchQuery::resolve_me(&g.pattern, &self.agent),
            invert,
            limit: GLOBAL_MAX,
        })]
    }

    /// The server's matches for a `:g//`: nothing, run, or ask first.
    fn matching(
        &mut self,
        pattern: String,
        invert: bool,
        ids: Vec<ConversationId>,
        total: usize,
    ) -> Vec<Effect> {
        let Some((verb, command)) = self.pending_global.take() else {
            return Vec::new();
        };
        let what = if invert {
            format!("not matching '{pattern}'")
        } else {
            format!("matching '{pattern}'")
        };
        let n = ids.len();
        if n == 0 {
            self.info(format!(
                "g//: no conversation in this view {what}: nothing changed"
            ));
            return Vec::new();
        }
        let cut = if total > n {
            format!(" (the first {n} of {total})")
        } else {
            String::new()
        };
        let request = Request::Bulk {
            conversations: ids,
            verb,
        };
        let plural = if n == 1 { "" } else { "s" };
        if n > self.bulk_confirm_over {
            let mut p = Prompt::new(PromptKind::Confirm, "");
            p.question = Some(format!(
                "{command} on {n} conversation{plural} {what}{cut}?"
            ));
            self.mode = Mode::Prompt(p);
            self.confirm = Some(request);
            return Vec::new();
        }
        self.info(format!(
            "g//: {command} on {n} conversation{plural} {what}{cut}..."
        ));
        vec![Effect::Request(request)]
    }

    /// A notification push: the count, the open list, the bell or desktop alert.
    fn notification(&mut self, rows: Vec<crate::api::NotificationRow>, unread: i64) -> Vec<Effect> {
        self.notifications_unread = unread;
        let mut fx = Vec::new();
        if let Mode::Sheet(sheet) = &mut self.mode
            && sheet.source.name() == crate::tui::notifications::NAME
        {
            // New rows come in at the top, a read in another terminal changes the marks:
            // reload the window when it shows the top (the selection stays on its row).
            // Scrolled down, the new rows wait above it.
            if !sheet.more_above {
                fx.push(Effect::Request(sheet.reload()));
            }
        }
        if let Some(newest) = rows.last() {
            let alert = crate::tui::notifications::alert(&self.notify, newest);
            if !alert.is_empty() {
                fx.push(Effect::Alert(alert));
            }
            if !matches!(self.mode, Mode::Sheet(_)) {
                self.info(format!(
                    "{}{} · {} ({} shows your notifications)",
                    crate::tui::notifications::what(newest),
                    newest
                        .conversation_id
                        .map(|c| format!(" in #{c}"))
                        .unwrap_or_default(),
                    newest.contact_name,
                    self.keymap
                        .key_for(keymap::Mode::Normal, "notifications")
                        .unwrap_or_else(|| ":notifications".into())
                ));
            }
        }
        fx
    }

    fn prompt(&mut self, prefill: &str) -> Vec<Effect> {
        self.mode = Mode::Prompt(Prompt::new(PromptKind::Command, prefill));
        Vec::new()
    }

    /// Open the command line with `prefill` (for a view module's commands).
    pub(crate) fn prompt_with(&mut self, prefill: &str) -> Vec<Effect> {
        self.prompt(prefill)
    }

    /// The selected conversation and its contact, once the queue shows it (else an error).
    pub(crate) fn chosen(&mut self) -> Option<(ConversationId, ContactId)> {
        self.chosen_ids()
    }

    /// Ask `question` on the command line: y sends `request`, anything else cancels.
    pub(crate) fn ask(&mut self, question: String, request: Request) {
        let mut p = Prompt::new(PromptKind::Confirm, "");
        p.question = Some(question);
        self.mode = Mode::Prompt(p);
        self.confirm = Some(request);
    }

    /// After a change to contacts: the queue, the selection and the counts again.
    pub(crate) fn refresh_all(&mut self) -> Vec<Effect> {
        let mut fx = self.reload_queue();
        fx.extend(self.refresh_selected());
        fx.push(self.counts_request());
        fx
    }

    /// The next visible pane. Tab wraps around; h/l (directional) stop at the edges.
    fn next_pane(&self, forward: bool, directional: bool) -> Pane {
        let panes: Vec<Pane> = if self.three_panes() {
            vec![Pane::Queue, Pane::Timeline, Pane::Profile]
        } else if self.show_profile {
            vec![Pane::Queue, Pane::Profile]
        } else {
            vec![Pane::Queue, Pane::Timeline]
        };
        let i = panes.iter().position(|p| *p == self.focus).unwrap_or(0);
        let n = panes.len();
        if directional {
            return if forward {
                panes[(i + 1).min(n - 1)]
            } else {
                panes[i.saturating_sub(1)]
            };
        }
        if forward {
            panes[(i + 1) % n]
        } else {
            panes[(i + n - 1) % n]
        }
    }

    fn selected_ids(&self) -> Option<(ConversationId, ContactId)> {
        self.queue.current().map(|r| (r.id, r.contact_id))
    }

    /// The conversation a verb acts on: the selected one, once the queue shows the row the
    /// agent asked for (while a jump or a new view loads, the old row is still selected and
    /// acting on it would act on someone else).
    fn chosen_ids(&mut self) -> Option<(ConversationId, ContactId)> {
        if self.queue.loading {
            self.error(
                "the queue is still loading the row you asked for: press it again once it shows",
            );
            return None;
        }
        let ids = self.selected_ids();
        if ids.is_none() {
            self.error("no conversation selected");
        }
        ids
    }

    fn write(&mut self, write: Write) -> Vec<Effect> {
        let Some((conversation, contact)) = self.chosen_ids() else {
            return Vec::new();
        };
        vec![Effect::Request(Request::Write {
            conversation,
            contact,
            write,
        })]
    }

    fn compose(&mut self, kind: ComposeKind, channel: Option<Channel>) -> Vec<Effect> {
        let Some((conversation, contact)) = self.chosen_ids() else {
            return Vec::new();
        };
        let contact_name = self
            .queue
            .current()
            .map(|r| r.contact_name.clone())
            .unwrap_or_default();
        // The composer opens at once; the draft and recipient fill in when the store answers.
        self.mode = Mode::Compose(Box::new(Composer {
            conversation,
            contact,
            contact_name,
            kind,
            channel,
            recipient: None,
            textarea: new_textarea(vec![String::new()]),
            sending: false,
            return_focus: self.focus,
            loading: true,
            typed: Vec::new(),
            mention_warned: false,
            placeholder_warned: false,
            seen: EventId(0),
            stale: None,
            send_at: None,
        }));
        self.focus = Pane::Timeline;
        // The traffic cop's first word: someone else is already typing here.
        let typing: Vec<String> = self
            .others_in(conversation)
            .iter()
            .filter(|e| e.activity != Activity::Viewing)
            .map(|e| format!("{} is {}", e.display, e.activity.describe()))
            .collect();
        if !typing.is_empty() {
            self.error(format!("careful: {} in #{conversation}", typing.join(", ")));
        }
        vec![Effect::Request(Request::Compose {
            conversation,
            contact,
            kind: kind.as_str().to_string(),
            channel,
        })]
    }

    fn send(&mut self) -> Vec<Effect> {
        let Mode::Compose(c) = &mut self.mode else {
            return Vec::new();
        };
        if c.loading {
            self.error("still loading the draft; press send again");
            return Vec::new();
        }
        let body = c.text();
        if body.trim().is_empty() {
            self.error("nothing to send");
            return Vec::new();
        }
        if c.sending {
            return Vec::new();
        }
        if c.kind == ComposeKind::Note && !c.mention_warned {
            let unknown = crate::mentions::unknown(&body, &self.known_agents);
            if !unknown.is_empty() {
                c.mention_warned = true;
                let send = self
                    .keymap
                    .key_for(keymap::Mode::Compose, "send")
                    .unwrap_or_else(|| "send".into());
                self.error(format!(
                    "{} no agent here, so nobody is notified: fix the name (Tab after @ completes one) or press {send} again to save the note as it is",
                    unknown
                        .iter()
                        .map(|u| format!("@{u} is"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return Vec::new();
            }
        }
        if c.kind == ComposeKind::Reply
            && !c.placeholder_warned
            && crate::canned::has_placeholder(&body)
        {
            c.placeholder_warned = true;
            let send = self
                .keymap
                .key_for(keymap::Mode::Compose, "send")
                .unwrap_or_else(|| "send".into());
            self.error(format!(
                "the reply still has a {{{{...}}}} the customer would read as it is: fill it in, or press {send} again to send it anyway"
            ));
            return Vec::new();
        }
        c.sending = true;
        let seen = Seen::Upto(c.seen);
        let write = match (c.kind, c.channel) {
            (ComposeKind::Reply, Some(channel)) if c.send_at.is_some() => Write::ScheduleReply {
                channel,
                body,
                send_at: c.send_at.unwrap_or_default(),
                seen,
            },
            (ComposeKind::Reply, Some(channel)) => Write::Reply {
                channel,
                body,
                then_pending: self.pending_after_reply,
                seen,
            },
            (ComposeKind::Reply, None) => {
                c.sending = false;
                self.error("no channel to reply on");
                return Vec::new();
            }
            (ComposeKind::Note, _) => Write::Note { body, seen },
        };
        vec![Effect::Request(Request::Write {
            conversation: c.conversation,
            contact: c.contact,
            write,
        })]
    }

    /// Canned replies by name: the agent's own first, then the workspace's.
    fn canned_names(&self) -> Vec<String> {
        let mut out = self.personal_canned.names();
        for c in &self.canned {
            if !out.contains(&c.name) {
                out.push(c.name.clone());
            }
        }
        out
    }

    /// `:template ARG` names a canned reply (not a WhatsApp template given parameters).
    fn canned_name(&self, arg: &str) -> Option<String> {
        let words = crate::template::split_args(arg);
        let name = words.first()?;
        let approved = self.templates.iter().any(|t| &t.name == name);
        if approved && words.len() > 1 {
            return None;
        }
        self.canned_names().contains(name).then(|| name.clone())
    }

    /// How completion marks a `:template` candidate: a canned reply or an approved
    /// WhatsApp template.
    pub fn completion_mark(&self, input: &str, candidate: &str) -> Option<&'static str> {
        if !input.starts_with("template ") {
            return None;
        }
        if self.canned_names().iter().any(|n| n == candidate) {
            Some("(canned)")
        } else if self.templates.iter().any(|t| t.name == candidate) {
            Some("(WhatsApp)")
        } else {
            None
        }
    }

    /// `:template NAME` with a canned reply: open the composer (the draft comes back) and
    /// put the rendered text in it.
    fn insert_canned(&mut self, name: &str) -> Vec<Effect> {
        let mut fx = self.compose(ComposeKind::Reply, None);
        let Mode::Compose(c) = &self.mode else {
            return fx;
        };
        let conversation = c.conversation;
        if self.personal_canned.get(name).is_some() {
            self.pending_insert = Some(Insert::Personal(name.to_string()));
        } else {
            self.pending_insert = None;
            fx.push(Effect::Request(Request::RenderCanned {
                conversation,
                name: name.to_string(),
                channel: None,
                resolved: None,
            }));
        }
        fx
    }

    /// `:suggest`: open the composer and ask the workspace's command for a draft.
    fn ask_suggestion(&mut self) -> Vec<Effect> {
        if !self.suggest {
            self.error(
                "no suggest_command in the workspace config: an admin sets one (see config/braid.example.toml)",
            );
            return Vec::new();
        }
        let mut fx = self.compose(ComposeKind::Reply, None);
        let Mode::Compose(c) = &self.mode else {
            return fx;
        };
        let conversation = c.conversation;
        self.pending_insert = None;
        fx.push(Effect::Request(Request::Suggest {
            conversation,
            command: None,
            timeout_ms: 0,
        }));
        self.info("asking for a suggestion...");
        fx
    }

    /// The variables of the selected conversation, as the client knows them (a personal
    /// canned reply).
    fn local_vars(
        &self,
        conversation: ConversationId,
        channel: Option<Channel>,
    ) -> crate::canned::Vars {
        let name = self
            .queue
            .rows
            .iter()
            .find(|r| r.id == conversation)
            .map(|r| r.contact_name.clone())
            .unwrap_or_default();
        let ids: Vec<(IdentityKind, String)> = self
            .profile
            .profile
            .as_ref()
            .map(|p| {
                p.identities
                    .iter()
                    .map(|i| (i.kind, i.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        crate::canned::Vars::new(&name, &ids, &self.agent, conversation, channel)
    }

    /// Put the waiting text into the open, loaded composer (after the cursor's line), and
    /// flag what could not be filled.
    fn apply_insert(&mut self) -> Vec<Effect> {
        let Mode::Compose(c) = &self.mode else {
            // The composer was closed meanwhile: nothing to put it in.
            self.pending_insert = None;
            return Vec::new();
        };
        if c.loading {
            return Vec::new();
        }
        let (conversation, channel) = (c.conversation, c.channel);
        let Some(insert) = self.pending_insert.take() else {
            return Vec::new();
        };
        let (label, text, missing) = match insert {
            Insert::Text {
                label,
                text,
                missing,
            } => (label, text, missing),
            Insert::Personal(name) => {
                let vars = self.local_vars(conversation, channel);
                match self.personal_canned.get(&name) {
                    Some(t) => {
                        let r = crate::canned::render(t, channel, &vars);
                        (format!("canned reply '{name}'"), r.text, r.missing)
                    }
                    None => return Vec::new(),
                }
            }
        };
        let Mode::Compose(c) = &mut self.mode else {
            return Vec::new();
        };
        let before = c.text();
        if !before.trim().is_empty() && !before.ends_with('\n') {
            c.textarea.insert_newline();
        }
        c.textarea.insert_str(&text);
        let meant: Vec<Channel> = label
            .strip_prefix("canned reply '")
            .and_then(|l| l.strip_suffix('\''))
            .map(|name| {
                self.personal_canned
                    .get(name)
                    .map(|t| t.channels.clone())
                    .or_else(|| {
                        self.canned
                            .iter()
                            .find(|c| c.name == name)
                            .map(|c| c.channels.clone())
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let off_channel = match channel {
            Some(ch) if !meant.is_empty() && !meant.contains(&ch) => format!(
                " (it is meant for {}, this reply goes on {ch})",
                meant
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        if missing.is_empty() {
            self.info(format!("{label} inserted{off_channel}: edit it, then send"));
        } else {
            self.error(format!(
                "{label}: cannot fill {} (left as {{{{...}}}} in the text): fill them in before sending",
                missing.join(", ")
            ));
        }
        self.save_draft()
    }

    /// `:macro NAME`: check the steps, render its canned replies (a missing variable stops
    /// it here, before anything changed), then run every step on the conversation.
    fn start_macro(&mut self, name: &str) -> Vec<Effect> {
        let Some(m) = self.macros.iter().find(|m| m.name == name).cloned() else {
            let known: Vec<&str> = self.macros.iter().map(|m| m.name.as_str()).collect();
            self.error(format!(
                "no macro '{}' ({}; [macros] in the config)",
                crate::sanitize::for_terminal_line(name),
                if known.is_empty() {
                    "none is defined".to_string()
                } else {
                    format!("defined: {}", known.join(", "))
                }
            ));
            return Vec::new();
        };
        let Some((conversation, contact)) = self.chosen_ids() else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        for step in &m.steps {
            match Action::parse(step) {
                Ok(Action::Macro(_)) | Err(_) => {
                    self.error(format!(
                        "macro '{name}': step '{step}' is not a command; nothing was run"
                    ));
                    return Vec::new();
                }
                Ok(a) => steps.push(a),
            }
        }
        let row_channel = self
            .queue
            .current()
            .map(|r| r.last_channel)
            .filter(|c| c.replyable());
        let mut fx = Vec::new();
        let mut rendered = Vec::new();
        for a in &steps {
            let canned = match a {
                Action::Template(Some(arg)) => self.canned_name(arg),
                _ => None,
            };
            match canned {
                None => rendered.push(None),
                Some(n) => match self.personal_canned.get(&n) {
                    Some(t) => {
                        let Some(ch) = row_channel else {
                            self.error(format!(
                                "macro '{name}': no channel to send '{n}' on; nothing was run"
                            ));
                            return Vec::new();
                        };
                        let r = crate::canned::render(
                            t,
                            Some(ch),
                            &self.local_vars(conversation, Some(ch)),
                        );
                        if !r.missing.is_empty() {
                            self.error(format!(
                                "macro '{name}' stopped before changing anything: canned reply '{n}' cannot fill {}",
                                r.missing.join(", ")
                            ));
                            return Vec::new();
                        }
                        rendered.push(Some(Some((ch, r.text))));
                    }
                    None => {
                        rendered.push(Some(None));
                        fx.push(Effect::Request(Request::RenderCanned {
                            conversation,
                            name: n,
                            channel: None,
                            resolved: None,
                        }));
                    }
                },
            }
        }
        self.macro_run = Some(MacroRun {
            name: m.name.clone(),
            conversation,
            contact,
            steps,
            rendered,
        });
        if fx.is_empty() {
            return self.run_macro();
        }
        fx
    }

    /// A canned reply a waiting macro asked for came back.
    fn macro_rendered(
        &mut self,
        template: &str,
        channel: Option<Channel>,
        text: String,
        missing: Vec<String>,
    ) -> Vec<Effect> {
        let Some(run) = &mut self.macro_run else {
            return Vec::new();
        };
        let name = run.name.clone();
        if !missing.is_empty() {
            self.macro_run = None;
            self.error(format!(
                "macro '{name}' stopped before changing anything: canned reply '{template}' cannot fill {}",
                missing.join(", ")
            ));
            return Vec::new();
        }
        let Some(channel) = channel else {
            self.macro_run = None;
            self.error(format!(
                "macro '{name}': no channel to send '{template}' on; nothing was run"
            ));
            return Vec::new();
        };
        let slot = run
            .steps
            .iter()
            .zip(run.rendered.iter_mut())
            .find_map(|(a, r)| match (a, r) {
                (Action::Template(Some(arg)), r @ Some(None))
                    if crate::template::split_args(arg).first().map(String::as_str)
                        == Some(template) =>
                {
                    Some(r)
                }
                _ => None,
            });
        if let Some(r) = slot {
            *r = Some(Some((channel, text)));
        }
        if run.rendered.iter().any(|r| matches!(r, Some(None))) {
            return Vec::new();
        }
        self.run_macro()
    }

    /// Every canned reply is rendered: run the steps in order.
    fn run_macro(&mut self) -> Vec<Effect> {
        let Some(run) = self.macro_run.take() else {
            return Vec::new();
        };
        if self.selected_ids() != Some((run.conversation, run.contact)) {
            self.error(format!(
                "macro '{}' not run: the selection moved off #{} meanwhile; nothing changed",
                run.name, run.conversation
            ));
            return Vec::new();
        }
        let mut fx = Vec::new();
        let n = run.steps.len();
        for (action, rendered) in run.steps.into_iter().zip(run.rendered) {
            match rendered {
                Some(Some((channel, body))) => fx.push(Effect::Request(Request::Write {
                    conversation: run.conversation,
                    contact: run.contact,
                    write: Write::Reply {
                        channel,
                        body,
                        then_pending: self.pending_after_reply,
                        seen: Seen::Unknown,
                    },
                })),
                _ => fx.extend(self.dispatch(action, None)),
            }
            if !matches!(self.mode, Mode::Normal) {
                // A step opened something (a prompt, a list): the macro stops there.
                break;
            }
        }
        self.info(format!(
            "macro '{}': {n} steps run on #{}",
            run.name, run.conversation
        ));
        fx
    }

    /// `:template NAME [PARAMS]` on the selected conversation: checked here against the
    /// welcome's templates (the name, how many parameters), rendered and sent by the server.
    fn send_template(&mut self, arg: &str) -> Vec<Effect> {
        let mut words = crate::template::split_args(arg).into_iter();
        let Some(name) = words.next() else {
            return self.prompt("template ");
        };
        let params: Vec<String> = words.collect();
        match self.templates.iter().find(|t| t.name == name) {
            None if self.templates.is_empty() => {
                self.error("no WhatsApp templates are configured ([[whatsapp.templates]])");
                return Vec::new();
            }
            None => {
                let names: Vec<&str> = self.templates.iter().map(|t| t.name.as_str()).collect();
                self.error(format!(
                    "no template '{}' (configured: {}; Tab completes)",
                    crate::sanitize::for_terminal_line(&name),
                    names.join(", ")
                ));
                return Vec::new();
            }
            Some(t) => {
                if let Err(e) = t.render(&params) {
                    self.error(e);
                    return Vec::new();
                }
            }
        }
        self.write(Write::Template {
            name,
            params,
            seen: Seen::Unknown,
            resolved: None,
        })
    }

    // ---------------------------------------------------------------- timeline position

    /// The message at the top of the timeline pane, and how many of its lines are above it.
    fn timeline_top(
        &self,
        width: usize,
        height: usize,
    ) -> Option<(crate::model::MessageId, usize)> {
        let starts = crate::tui::ui::timeline::message_starts(self, width);
        let total = crate::tui::ui::timeline::line_count(self, width);
        let scroll = self.timeline.scroll.min(total.saturating_sub(height));
        let top = total.saturating_sub(height + scroll);
        starts
            .iter()
            .rev()
            .find(|(_, line)| *line <= top)
            .map(|(id, line)| (*id, top - line))
    }

    /// Scroll so that line `into` of message `id` is the top line of the pane (as near as the
    /// ends allow).
    fn scroll_timeline_to(
        &mut self,
        id: crate::model::MessageId,
        into: usize,
        width: usize,
        height: usize,
    ) {
        let starts = crate::tui::ui::timeline::message_starts(self, width);
        let Some(i) = starts.iter().position(|(m, _)| *m == id) else {
            return;
        };
        let line = starts[i].1;
        let total = crate::tui::ui::timeline::line_count(self, width);
        // Within the message (its folded parts may have become shorter).
        let end = starts.get(i + 1).map(|s| s.1).unwrap_or(total);
        let top = line + into.min(end.saturating_sub(line + 1));
        self.timeline.scroll = total
            .saturating_sub(height + top)
            .min(total.saturating_sub(height));
    }

    /// Scroll the timeline to the search match in `target` (a couple of lines above it for
    /// context), loading older pages until it is there.
    fn show_target(&mut self) -> Vec<Effect> {
        let Some(id) = self.timeline.target else {
            self.timeline.seeking = false;
            return Vec::new();
        };
        if self.timeline.rows.iter().any(|m| m.id == id) {
            self.timeline.seeking = false;
            let (width, height) = self.timeline_size();
            let starts = crate::tui::ui::timeline::message_starts(self, width);
            if let Some((_, line)) = starts.iter().find(|(m, _)| *m == id) {
                let total = crate::tui::ui::timeline::line_count(self, width);
                let top = line.saturating_sub(2);
                self.timeline.scroll = total
                    .saturating_sub(height + top)
                    .min(total.saturating_sub(height));
            }
            return Vec::new();
        }
        if self.timeline.loading {
            return Vec::new(); // the rows are on their way: looked for again when they land
        }
        if self.timeline.older {
            return self.older_timeline();
        }
        self.timeline.seeking = false;
        self.error("the match is no longer in this timeline");
        Vec::new()
    }

    /// n / N: the next (newer) or previous (older) search match in the timeline.
    fn next_match(&mut self, forward: bool) -> Vec<Effect> {
        let Some(search) = &self.queue.search else {
            self.error("no search: / searches, then n and N go through the matches");
            return Vec::new();
        };
        let rows = &self.timeline.rows;
        let current = self
            .timeline
            .target
            .and_then(|t| rows.iter().position(|m| m.id == t));
        let matching = rows
            .iter()
            .enumerate()
            .filter(|(_, m)| search.matches.contains(&m.id));
        let found = if forward {
            matching
                .clone()
                .find(|(i, _)| current.is_none_or(|c| *i > c))
        } else {
            matching
                .clone()
                .rev()
                .find(|(i, _)| current.is_none_or(|c| *i < c))
        }
        .map(|(_, m)| m.id);
        match found {
            Some(id) => {
                self.focus = Pane::Timeline;
                self.timeline.target = Some(id);
                self.timeline.seeking = true;
                self.show_target()
            }
            None if !forward && self.timeline.older => {
                // Earlier matches may be in older messages: load them and look again.
                self.timeline.seek_older = true;
                let fx = self.older_timeline();
                if fx.is_empty() {
                    self.timeline.seek_older = false;
                }
                fx
            }
            None => {
                self.info(if forward {
                    "no later match in this timeline"
                } else {
                    "no earlier match in this timeline"
                });
                Vec::new()
            }
        }
    }

    // ---------------------------------------------------------------- queue movement

    fn move_by(&mut self, delta: i64) -> Vec<Effect> {
        match self.focus {
            Pane::Timeline => {
                let (width, height) = self.timeline_size();
                let max = crate::tui::ui::timeline::line_count(self, width).saturating_sub(height);
                let s = (self.timeline.scroll as i64 - delta).clamp(0, max as i64) as usize;
                self.timeline.scroll = s;
                // Scrolled to the top of what is loaded: fetch older messages.
                if s == max && delta < 0 {
                    return self.older_timeline();
                }
                Vec::new()
            }
            Pane::Profile => Vec::new(),
            Pane::Queue => {
                if self.queue.rows.is_empty() {
                    return Vec::new();
                }
                let q = &self.queue;
                // Keys typed while a jump loads move on from where it will land.
                let from = match (q.jump_start, q.select_abs) {
                    (Some(_), Some(abs)) => abs,
                    _ => q.offset + q.selected,
                };
                let target = from as i64 + delta;
                let last_abs = if q.reached_end {
                    (q.offset + q.rows.len()) as i64 - 1
                } else {
                    (q.total.max((q.offset + q.rows.len()) as i64) - 1).max(0)
                };
                // In the loaded window: select; beyond it: jump there (one windowed query).
                self.go_to(target.clamp(0, last_abs) as usize)
            }
        }
    }

    /// Select row `index` of the window; prefetch, and load the timeline and profile of a new contact.
    fn select(&mut self, index: usize) -> Vec<Effect> {
        let before = self.queue.current().map(|r| (r.id, r.contact_id));
        self.queue.selected = index.min(self.queue.rows.len().saturating_sub(1));
        self.fix_scroll();
        let mut fx = self.prefetch();
        let after = self.queue.current().map(|r| (r.id, r.contact_id));
        if before != after {
            fx.extend(self.reload_selected(before.map(|b| b.1) != after.map(|a| a.1)));
        }
        fx
    }

    /// Keep the selected row on screen (with a little context), moving the scroll minimally.
    fn fix_scroll(&mut self) {
        let q = &mut self.queue;
        q.scroll = crate::tui::ui::queue::first_visible(
            q.selected,
            q.scroll,
            self.size.1.saturating_sub(4).max(1) as usize,
            q.rows.len(),
        );
    }

    fn prefetch(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        if let Some(view @ QueueView::Search(_)) = self.queue.view.clone() {
            // More matches than read: read twice as many when the selection nears the end.
            let q = &mut self.queue;
            if let Some(s) = &q.search
                && s.more
                && s.limit < SEARCH_MAX
                && !q.pending_append
                && q.rows.len().saturating_sub(q.selected) <= SEARCH_PREFETCH
            {
                q.pending_append = true;
                q.seq += 1;
                fx.push(Effect::Request(Request::Queue {
                    seq: q.seq,
                    view,
                    anchor: QueueAnchor::Top,
                    limit: (s.limit * 2).min(SEARCH_MAX),
                    placement: Placement::Replace { offset: 0 },
                    keep: q.current().map(|r| r.id),
                    order: self.queue_order,
                }));
            }
            return fx;
        }
        let Some(view @ QueueView::Filter(_)) = self.queue.view.clone() else {
            return fx;
        };
        let q = &mut self.queue;
        if !q.reached_end
            && !q.pending_append
            && q.rows.len() - q.selected <= PREFETCH
            && let Some(last) = q.rows.last()
        {
            q.pending_append = true;
            fx.push(Effect::Request(Request::Queue {
                seq: q.seq,
                view: view.clone(),
                anchor: QueueAnchor::After(last.cursor()),
                limit: PAGE,
                placement: Placement::Append,
                keep: None,
                order: self.queue_order,
            }));
        }
        if q.offset > 0
            && !q.pending_prepend
            && q.selected < PREFETCH
            && let Some(first) = q.rows.first()
        {
            q.pending_prepend = true;
            fx.push(Effect::Request(Request::Queue {
                seq: q.seq,
                view,
                anchor: QueueAnchor::Before(first.cursor()),
                limit: PAGE,
                placement: Placement::Prepend,
                keep: None,
                order: self.queue_order,
            }));
        }
        fx
    }

    fn go_to(&mut self, abs: usize) -> Vec<Effect> {
        if self.focus == Pane::Timeline {
            let (width, height) = self.timeline_size();
            self.timeline.scroll =
                crate::tui::ui::timeline::line_count(self, width).saturating_sub(height);
            return self.older_timeline();
        }
        let q = &self.queue;
        if abs >= q.offset && abs < q.offset + q.rows.len() {
            // The loaded window has the row: a jump still on its way is not wanted any more.
            if self.queue.jump_start.take().is_some() {
                self.queue.seq += 1;
                self.queue.select_abs = None;
                self.queue.loading = false;
            }
            return self.select(abs - self.queue.offset);
        }
        let Some(view) = q.view.clone() else {
            return Vec::new();
        };
        if matches!(view, QueueView::Search(_)) {
            return Vec::new();
        }
        let abs = abs.min(q.total.max(1) as usize - 1);
        // The jump on its way loads this row too: only the row it selects changes.
        if let Some(start) = q.jump_start
            && abs >= start
            && abs < start + PAGE
        {
            self.queue.select_abs = Some(abs);
            return Vec::new();
        }
        let start = abs.saturating_sub(PAGE / 2);
        // Pages asked for the old window will come back stale.
        self.queue.pending_append = false;
        self.queue.pending_prepend = false;
        self.queue.select_abs = Some(abs);
        self.queue.loading = true;
        vec![self.jump_request(view, start)]
    }

    /// Load the window of `PAGE` rows from absolute row `start` (a jump).
    fn jump_request(&mut self, view: QueueView, start: usize) -> Effect {
        self.queue.seq += 1;
        self.queue.jump_start = Some(start);
        Effect::Request(Request::Queue {
            seq: self.queue.seq,
            view,
            anchor: if start == 0 {
                QueueAnchor::Top
            } else {
                QueueAnchor::Offset(start)
            },
            limit: PAGE,
            placement: Placement::Replace { offset: start },
            keep: None,
            order: self.queue_order,
        })
    }

    fn go_bottom(&mut self) -> Vec<Effect> {
        if self.focus == Pane::Timeline {
            self.timeline.scroll = 0;
            return Vec::new();
        }
        if self.queue.reached_end {
            let last = self.queue.rows.len().saturating_sub(1);
            return self.select(last);
        }
        let Some(view) = self.queue.view.clone() else {
            return Vec::new();
        };
        self.queue.seq += 1;
        self.queue.pending_append = false;
        self.queue.pending_prepend = false;
        self.queue.select_abs = None;
        self.queue.jump_start = None;
        self.queue.select_last = true;
        self.queue.loading = true;
        let offset = (self.queue.total.max(0) as usize).saturating_sub(PAGE);
        vec![Effect::Request(Request::Queue {
            seq: self.queue.seq,
            view,
            anchor: QueueAnchor::Bottom,
            limit: PAGE,
            placement: Placement::Replace { offset },
            keep: None,
            order: self.queue_order,
        })]
    }

    fn older_timeline(&mut self) -> Vec<Effect> {
        let t = &mut self.timeline;
        match (t.contact, t.older, t.loading, t.rows.first()) {
            (Some(contact), true, false, Some(first)) => {
                t.loading = true;
                vec![Effect::Request(Request::Timeline {
                    seq: t.seq,
                    contact,
                    before: Some(first.cursor()),
                    limit: TIMELINE_PAGE,
                })]
            }
            _ => Vec::new(),
        }
    }

    fn load_view(&mut self, view: QueueView) -> Vec<Effect> {
        // A selection is of the rows of one view.
        self.queue.visual = None;
        let limit = match view {
            QueueView::Search(_) => SEARCH_PAGE,
            QueueView::Filter(_) => PAGE,
        };
        self.queue.search = None;
        self.queue.seq += 1;
        self.queue.view = Some(view.clone());
        self.queue.loading = true;
        self.queue.pending_append = false;
        self.queue.pending_prepend = false;
        self.queue.jump_start = None;
        self.queue.select_abs = Some(0);
        self.queue.select_last = false;
        vec![Effect::Request(Request::Queue {
            seq: self.queue.seq,
            view,
            anchor: QueueAnchor::Top,
            limit,
            placement: Placement::Replace { offset: 0 },
            keep: None,
            order: self.queue_order,
        })]
    }

    /// Reload the loaded window in place (after a change), keeping the selected conversation.
    fn reload_queue(&mut self) -> Vec<Effect> {
        let Some(view) = self.queue.view.clone() else {
            return Vec::new();
        };
        // A jump on its way: ask for its window again (its answer would be stale now).
        if let Some(start) = self.queue.jump_start {
            return vec![self.jump_request(view, start)];
        }
        let keep = self.queue.current().map(|r| r.id);
        let (anchor, offset) = match (self.queue.offset, self.queue.rows.first()) {
            (0, _) | (_, None) => (QueueAnchor::Top, 0),
            (off, Some(first)) => (QueueAnchor::AtOrAfter(first.cursor()), off),
        };
        self.queue.seq += 1;
        self.queue.pending_append = false;
        self.queue.pending_prepend = false;
        vec![Effect::Request(Request::Queue {
            seq: self.queue.seq,
            view,
            anchor,
            limit: match &self.queue.search {
                Some(s) => s.limit,
                None => self.queue.rows.len().clamp(PAGE, MAX_WINDOW),
            },
            placement: Placement::Replace { offset },
            keep,
            order: self.queue_order,
        })]
    }

    /// Requests for the timeline (when `contact_changed` or forced) and the profile.
    fn reload_selected(&mut self, contact_changed: bool) -> Vec<Effect> {
        let Some(row) = self.queue.current() else {
            self.timeline = TimelineState {
                show_quoted: self.timeline.show_quoted,
                ..Default::default()
            };
            self.profile = ProfileState::default();
            return Vec::new();
        };
        let (conversation, contact) = (row.id, row.contact_id);
        let mut fx = Vec::new();
        if contact_changed || self.timeline.contact != Some(contact) {
            self.timeline.seq += 1;
            self.timeline.contact = Some(contact);
            self.timeline.rows.clear();
            self.timeline.scroll = 0;
            self.timeline.loading = true;
            self.timeline.target = None;
            self.timeline.seeking = false;
            self.timeline.seek_older = false;
            fx.push(Effect::Request(Request::Timeline {
                seq: self.timeline.seq,
                contact,
                before: None,
                limit: TIMELINE_PAGE,
            }));
        }
        self.profile.seq += 1;
        self.profile.conversation = Some(conversation);
        fx.push(Effect::Request(Request::Profile {
            seq: self.profile.seq,
            contact,
            conversation,
        }));
        fx
    }

    fn counts_request(&self) -> Effect {
        Effect::Request(Request::Counts)
    }

    // ---------------------------------------------------------------- data and changes

    fn data(&mut self, resp: Response) -> Vec<Effect> {
        if let Response::Notifications { unread, .. } = &resp {
            self.notifications_unread = *unread;
        }
        if let Response::NotificationsRead { ids, unread } = &resp {
            self.notifications_unread = *unread;
            if let Mode::Sheet(sheet) = &mut self.mode
                && sheet.source.name() == crate::tui::notifications::NAME
            {
                for r in sheet.rows.iter_mut().filter(|r| ids.contains(&r.key)) {
                    r.marked = false;
                }
                sheet.footer = crate::tui::notifications::footer(*unread);
            }
            if ids.len() > 1 {
                self.info(format!("{} notifications marked read", ids.len()));
            }
            return Vec::new();
        }
        // The reports view reads its own answers (a stale one is dropped there).
        if let Mode::Reports(view) = &mut self.mode
            && view.answer(&resp)
        {
            return Vec::new();
        }
        if let Some(view) = &mut self.reports_behind_help
            && view.answer(&resp)
        {
            return Vec::new();
        }
        // The open sheet's view reads its own answers.
        if let Mode::Sheet(sheet) = &mut self.mode
            && let Some(out) = sheet.answer(&resp)
        {
            return self.sheet_outcome(out);
        }
        match resp {
            Response::Queue {
                seq,
                view,
                rows,
                total,
                placement,
                anchor: _,
                limit,
                keep,
                search,
            } => {
                if seq != self.queue.seq || Some(&view) != self.queue.view.as_ref() {
                    return Vec::new(); // stale: the view changed since
                }
                if matches!(placement, Placement::Replace { .. }) {
                    if search.is_some() {
                        self.queue.pending_append = false;
                    }
                    self.queue.search = search.map(|b| *b);
                }
                for r in &rows {
                    if let Some(a) = &r.assignee
                        && !self.known_agents.contains(a)
                    {
                        self.known_agents.push(a.clone());
                    }
                }
                let before = self.queue.current().map(|r| (r.id, r.contact_id));
                // A reload keeps the conversation selected when its answer lands, not the one
                // selected when it was asked for: the agent may have moved meanwhile, and a
                // row index would land on whoever the re-sort put there.
                let keep = keep.map(|k| before.map(|b| b.0).unwrap_or(k));
                let full_page = rows.len() >= limit;
                let q = &mut self.queue;
                q.loading = false;
                match placement {
                    Placement::Replace { offset } => {
                        if let Some(t) = total {
                            q.total = t;
                        }
                        let select = if let Some(k) =
                            keep.and_then(|k| rows.iter().position(|r| r.id == k))
                        {
                            k
                        } else if q.select_last {
                            rows.len().saturating_sub(1)
                        } else if let Some(abs) = q.select_abs {
                            abs.saturating_sub(offset)
                        } else {
                            q.selected
                        };
                        q.rows = rows;
                        q.offset = if q.select_last {
                            (q.total.max(0) as usize).saturating_sub(q.rows.len())
                        } else {
                            offset
                        };
                        q.reached_end = !full_page || q.select_last;
                        q.select_last = false;
                        q.select_abs = None;
                        q.jump_start = None;
                        q.selected = select.min(q.rows.len().saturating_sub(1));
                        if matches!(view, QueueView::Search(_)) {
                            q.reached_end = true;
                            q.offset = 0;
                        }
                    }
                    Placement::Append => {
                        q.pending_append = false;
                        q.reached_end = !full_page;
                        let known: std::collections::HashSet<_> =
                            q.rows.iter().map(|r| r.id).collect();
                        q.rows
                            .extend(rows.into_iter().filter(|r| !known.contains(&r.id)));
                        if q.rows.len() > MAX_WINDOW {
                            let cut = (q.rows.len() - MAX_WINDOW)
                                .min(q.selected.saturating_sub(PREFETCH));
                            q.rows.drain(..cut);
                            q.offset += cut;
                            q.selected -= cut;
                            q.scroll = q.scroll.saturating_sub(cut);
                        }
                    }
                    Placement::Prepend => {
                        q.pending_prepend = false;
                        let known: std::collections::HashSet<_> =
                            q.rows.iter().map(|r| r.id).collect();
                        let new: Vec<QueueRow> = rows
                            .into_iter()
                            .filter(|r| !known.contains(&r.id))
                            .collect();
                        let n = new.len();
                        q.rows.splice(0..0, new);
                        q.offset = q.offset.saturating_sub(n);
                        if n < limit {
                            q.offset = 0;
                        }
                        q.selected += n;
                        q.scroll += n;
                        if q.rows.len() > MAX_WINDOW {
                            let keep_to = (q.selected + PREFETCH).max(MAX_WINDOW).min(q.rows.len());
                            if keep_to < q.rows.len() {
                                q.rows.truncate(keep_to);
                                q.reached_end = false;
                            }
                        }
                    }
                }
                self.fix_scroll();
                let after = self.queue.current().map(|r| (r.id, r.contact_id));
                let mut fx = self.prefetch();
                if before != after || self.timeline.contact.is_none() {
                    fx.extend(self.reload_selected(before.map(|b| b.1) != after.map(|a| a.1)));
                }
                // A sheet row opened: its message is the timeline's target.
                if matches!(placement, Placement::Replace { .. })
                    && let Some(t) = self.jump_target.take()
                    && after.map(|a| a.0) == Some(t.conversation)
                    && let Some(m) = t.message
                {
                    self.timeline.target = Some(m);
                    self.timeline.seeking = true;
                    fx.extend(self.show_target());
                }
                fx
            }
            Response::Timeline {
                seq,
                contact,
                rows,
                older,
                before,
            } => {
                let t = &mut self.timeline;
                if seq != t.seq || Some(contact) != t.contact {
                    return Vec::new();
                }
                t.loading = false;
                match before {
                    None => {
                        t.rows = rows;
                        t.older = older;
                    }
                    Some(_) => {
                        let mut rows = rows;
                        rows.append(&mut t.rows);
                        t.rows = rows;
                        t.older = older;
                    }
                }
                if t.seek_older && before.is_some() {
                    t.seek_older = false;
                    return self.next_match(false);
                }
                if t.seeking {
                    return self.show_target();
                }
                Vec::new()
            }
            Response::Profile {
                seq,
                profile,
                tags,
                conversation,
            } => {
                if seq == self.profile.seq {
                    self.profile.profile = Some(*profile);
                    self.profile.conversation_tags = tags;
                    self.profile.conversation = Some(conversation);
                }
                Vec::new()
            }
            Response::Counts { counts, outbox } => {
                self.counts = counts;
                self.outbox = outbox;
                Vec::new()
            }
            Response::Compose {
                opened_for,
                conversation,
                kind: _,
                channel,
                recipient,
                text,
                notice,
                seen,
            } => {
                let Mode::Compose(c) = &mut self.mode else {
                    return Vec::new(); // closed before the draft arrived
                };
                if c.conversation != opened_for || !c.loading {
                    return Vec::new();
                }
                c.seen = seen;
                // The store may have moved a reply to the customer's open conversation (the
                // notice says so): the draft belongs to that one from now on.
                c.conversation = conversation;
                if c.kind == ComposeKind::Reply && recipient.is_none() {
                    let back = c.return_focus;
                    let name = c.contact_name.clone();
                    self.mode = Mode::Normal;
                    self.focus = back;
                    self.error(format!(
                        "{name} has no {} address to reply to (:identity add, or R for another channel)",
                        channel.map(|c| c.as_str()).unwrap_or("?")
                    ));
                    return Vec::new();
                }
                let lines: Vec<String> = if text.is_empty() {
                    vec![String::new()]
                } else {
                    text.lines().map(str::to_string).collect()
                };
                let mut textarea = new_textarea(lines);
                textarea.move_cursor(ratatui_textarea::CursorMove::Bottom);
                textarea.move_cursor(ratatui_textarea::CursorMove::End);
                let typed = std::mem::take(&mut c.typed);
                for k in &typed {
                    textarea.input(*k);
                }
                c.textarea = textarea;
                c.channel = channel;
                c.recipient = recipient;
                c.loading = false;
                if self.pending_insert.is_some() {
                    if let Some(n) = notice {
                        self.info(n);
                    }
                    return self.apply_insert();
                }
                if !text.is_empty() {
                    self.info("draft restored");
                }
                if let Some(n) = notice {
                    self.info(n);
                }
                if typed.is_empty() {
                    Vec::new()
                } else {
                    self.save_draft()
                }
            }
            Response::Done(msg) => {
                if msg.is_empty() {
                    return Vec::new(); // a draft save
                }
                if let Mode::Compose(c) = &self.mode
                    && c.sending
                {
                    self.focus = c.return_focus;
                    self.mode = Mode::Normal;
                }
                self.info(msg);
                let mut fx = self.reload_queue();
                fx.extend(self.refresh_selected());
                fx.push(self.counts_request());
                fx
            }
            Response::Ack => Vec::new(),
            Response::Contact(answer) => self.contact_answer(answer),
            // The pipeline view is not in the TUI yet (the request is the CLI's and scripts').
            Response::Pipeline { .. } => Vec::new(),
            Response::Bulk(report) => {
                if report.done.is_empty() {
                    self.error(report.line());
                } else {
                    self.info(report.line());
                }
                let mut fx = self.reload_queue();
                fx.extend(self.refresh_selected());
                fx.push(self.counts_request());
                fx
            }
            Response::Matching {
                pattern,
                invert,
                ids,
                total,
            } => self.matching(pattern, invert, ids, total),
            Response::Undone(report) => {
                if report.restored.is_empty() {
                    self.error(report.line());
                } else {
                    self.info(report.line());
                }
                let mut fx = self.reload_queue();
                fx.extend(self.refresh_selected());
                fx.push(self.counts_request());
                fx
            }
            Response::Stale(stale) => {
                // The traffic cop: nothing went out. The composer stays with the draft and
                // shows what changed; the next send means "I saw it" (and is refused only if
                // something newer still arrives).
                let send = self
                    .keymap
                    .key_for(keymap::Mode::Compose, "send")
                    .unwrap_or_default();
                let discard = self
                    .keymap
                    .key_for(keymap::Mode::Compose, "discard")
                    .unwrap_or_default();
                let n = stale.changes.len();
                let conversation = stale.conversation;
                match &mut self.mode {
                    Mode::Compose(c) if c.conversation == stale.conversation => {
                        c.sending = false;
                        c.seen = c.seen.max(stale.latest);
                        c.stale = Some(*stale);
                    }
                    _ => {}
                }
                self.error(format!(
                    "not sent: #{conversation} changed since you started ({n} change{}, above the draft); {send} sends anyway, edit first, or {discard} discards",
                    if n == 1 { "" } else { "s" }
                ));
                let mut fx = self.refresh_selected();
                fx.push(self.counts_request());
                fx
            }
            Response::Confirm { question, request } => {
                // Asked on the command line: y runs the request, anything else cancels.
                let mut p = Prompt::new(PromptKind::Confirm, "");
                p.question = Some(question);
                self.mode = Mode::Prompt(p);
                self.confirm = Some(*request);
                Vec::new()
            }
            Response::Error(e) | Response::Refused(e) => {
                if let Mode::Compose(c) = &mut self.mode {
                    c.sending = false;
                    if c.loading {
                        // The draft could not be loaded: nothing was typed into a text yet.
                        let back = c.return_focus;
                        self.mode = Mode::Normal;
                        self.focus = back;
                    }
                }
                self.queue.loading = false;
                self.queue.pending_append = false;
                self.queue.pending_prepend = false;
                self.queue.jump_start = None;
                self.timeline.loading = false;
                if let Some(sheet) = self.sheet_mut() {
                    sheet.failed();
                }
                if let Mode::Reports(view) = &mut self.mode {
                    view.failed(&e);
                }
                if let Some(view) = &mut self.reports_behind_help {
                    view.failed(&e);
                }
                // A macro waiting for its canned replies stops: nothing of it has run.
                if let Some(run) = self.macro_run.take() {
                    self.error(format!(
                        "macro '{}' stopped before changing anything: {e}",
                        run.name
                    ));
                    return Vec::new();
                }
                self.pending_insert = None;
                self.error(e);
                Vec::new()
            }
            // Answers only the CLI (or a closed sheet's view) asks for; a superseded request
            // was replaced by a newer one.
            Response::Superseded
            | Response::Conversation { .. }
            | Response::List { .. }
            | Response::Hits(_)
            | Response::Contacts(_)
            | Response::ContactCards(_)
            | Response::Written(_)
            | Response::Files(_)
            | Response::Audit { .. }
            | Response::Notifications { .. }
            | Response::NotificationsRead { .. }
            | Response::Rules(_)
            | Response::RulesTested(_)
            | Response::Report(_)
            | Response::Tasks { .. }
            | Response::Webhooks(_)
            | Response::WebhookTested(_)
            | Response::Duplicates(_)
            | Response::Consent(_)
            | Response::Export(_)
            | Response::Status(_) => Vec::new(),
            Response::Campaign(a) => {
                if let crate::api::CampaignAnswer::Stopped { name, active } = *a {
                    self.info(format!(
                        "stopped campaign {}: {active} contacts get nothing more",
                        crate::sanitize::line(&name)
                    ));
                }
                Vec::new()
            }
            Response::Task(t) => {
                let mut fx = Vec::new();
                if let Mode::Sheet(sheet) = &mut self.mode
                    && sheet.source.name() == crate::tui::tasks::NAME
                {
                    fx.push(Effect::Request(sheet.reload()));
                }
                self.info(format!(
                    "task #{} {}: {}",
                    t.id,
                    if t.is_open() {
                        "saved"
                    } else {
                        t.state.as_str()
                    },
                    crate::sanitize::for_terminal_line(&t.title)
                ));
                fx
            }
            Response::Online(online) => {
                self.presence = online;
                Vec::new()
            }
            Response::Canned {
                conversation,
                name,
                channel,
                text,
                missing,
            } => {
                if let Some(run) = &mut self.macro_run
                    && run.conversation == conversation
                {
                    return self.macro_rendered(&name, channel, text, missing);
                }
                self.pending_insert = Some(Insert::Text {
                    label: format!("canned reply '{name}'"),
                    text,
                    missing,
                });
                self.apply_insert()
            }
            Response::Suggestion { text, .. } => {
                self.pending_insert = Some(Insert::Text {
                    label: "suggestion".into(),
                    text,
                    missing: Vec::new(),
                });
                self.apply_insert()
            }
        }
    }

    /// Re-fetch the selected contact's timeline (same size as loaded) and profile.
    fn refresh_selected(&mut self) -> Vec<Effect> {
        let Some(contact) = self.timeline.contact else {
            return Vec::new();
        };
        let mut fx = Vec::new();
        self.timeline.seq += 1;
        fx.push(Effect::Request(Request::Timeline {
            seq: self.timeline.seq,
            contact,
            before: None,
            limit: self.timeline.rows.len().max(TIMELINE_PAGE),
        }));
        if let Some(conversation) = self.profile.conversation {
            self.profile.seq += 1;
            fx.push(Effect::Request(Request::Profile {
                seq: self.profile.seq,
                contact,
                conversation,
            }));
        }
        fx
    }

    /// New events in the store: refresh what they touch.
    fn feed(&mut self, events: &[EventRow]) -> Vec<Effect> {
        if events.is_empty() {
            return Vec::new();
        }
        let mut fx = self.reload_queue();
        fx.push(self.counts_request());
        let shown = self.timeline.contact;
        let touches_shown = events.iter().any(|e| {
            e.contact_id.is_some() && e.contact_id == shown || e.kind == "contacts_merged"
        });
        if touches_shown {
            fx.extend(self.refresh_selected());
        }
        fx
    }
}

/// Tab in a note right after `@pre`: complete the agent name. None: the cursor is not at a
/// mention (Tab does what it always does). `Ok(Some(line))`: several agents start so; the
/// common part was completed and the line lists them.
fn complete_mention(
    c: &mut Composer,
    agents: &[String],
    me: &str,
) -> Option<Result<Option<String>, String>> {
    let cursor = c.textarea.cursor();
    let (row, col) = (cursor.0, cursor.1);
    let line = c.textarea.lines().get(row)?;
    let before: String = line.chars().take(col).collect();
    let prefix = crate::mentions::partial(&before)?.to_string();
    let low = prefix.to_lowercase();
    let mut found: Vec<&String> = agents
        .iter()
        .filter(|a| a.as_str() != me && a.to_lowercase().starts_with(&low))
        .collect();
    found.sort();
    found.dedup();
    let Some(first) = found.first() else {
        let mut all: Vec<&str> = agents
            .iter()
            .map(String::as_str)
            .filter(|a| *a != me)
            .collect();
        all.sort_unstable();
        return Some(Err(if all.is_empty() {
            "no other agents in this workspace to mention".to_string()
        } else {
            format!(
                "no agent starts with @{prefix} (agents: {})",
                all.join(", ")
            )
        }));
    };
    // The longest start all of them share (case as the first one spells it).
    let mut common: Vec<char> = first.chars().collect();
    for f in &found[1..] {
        let n = common
            .iter()
            .zip(f.chars())
            .take_while(|(a, b)| a.to_lowercase().eq(b.to_lowercase()))
            .count();
        common.truncate(n);
    }
    for _ in 0..prefix.chars().count() {
        c.textarea.delete_char();
    }
    let mut text: String = common.into_iter().collect();
    if found.len() == 1 {
        text.push(' ');
    }
    c.textarea.insert_str(text);
    c.mention_warned = false;
    Some(Ok((found.len() > 1).then(|| {
        format!(
            "@{}",
            found
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("  @")
        )
    })))
}

/// Ask for the unread count alone (a page of no rows).
/// Names matching a typed fragment: those that start with it first, then those holding its
/// letters in order (`rfok` finds `refund-ok`).
fn fuzzy(mut names: Vec<String>, typed: &str) -> Vec<String> {
    names.sort();
    names.dedup();
    let typed = typed.to_lowercase();
    let subsequence = |n: &str| {
        let mut it = n.to_lowercase().chars().collect::<Vec<_>>().into_iter();
        typed.chars().all(|c| it.any(|x| x == c))
    };
    let (mut first, rest): (Vec<String>, Vec<String>) = names
        .into_iter()
        .filter(|n| subsequence(n))
        .partition(|n| n.to_lowercase().starts_with(&typed));
    first.extend(rest);
    first
}

fn unread_request() -> Effect {
    Effect::Request(Request::Notifications {
        seq: 0,
        page: crate::api::NotificationPage::Newest,
        limit: 0,
        unread_only: true,
    })
}

/// A composer text area with braid's settings.
pub fn new_textarea(lines: Vec<String>) -> TextArea<'static> {
    let mut t = TextArea::new(lines);
    t.set_cursor_line_style(ratatui::style::Style::default());
    t
}

/// Parse a `:` line: an optional count prefix ("5 move_down") then a command.
fn parse_command_line(line: &str) -> Result<(Action, Option<usize>), String> {
    // `:#522` opens conversation #522 (a bare number is a row, as in vim).
    if line.trim().starts_with('#') {
        let id = crate::tui::action::parse_conversation_id(line)?;
        return Ok((Action::Open(Some(id)), None));
    }
    let line = line.trim().trim_start_matches(':');
    // ":42" jumps to row 42, like vim.
    if let Ok(n) = line.parse::<usize>() {
        return Ok((Action::Top, Some(n)));
    }
    match Action::parse(line) {
        Ok(a) if COMPOSER_ONLY.contains(&a.name()) => Err(format!(
            "{} works in the composer (open one with :reply or :note), not on the : line",
            a.name()
        )),
        Ok(a) => Ok((a, None)),
        Err(e) if e.starts_with("unknown command") => {
            Err(format!("{e} (Tab completes, ? lists them)"))
        }
        Err(e) => Err(e),
    }
}

/// Commands that only do something in the composer: not offered or run on the `:` line.
const COMPOSER_ONLY: &[&str] = &["send", "edit_external", "discard"];

fn byte_index(s: &str, char_index: usize) -> usize {
    s.char_indices()
        .nth(char_index)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}
