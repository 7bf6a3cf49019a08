//! The event loop: one task owns the [`App`]. Terminal input, the server's answers and pushes
//! (changes, its status line, a lost connection) merge into one stream; the loop drains
//! everything pending, applies it, and draws once. The TUI is a client of the server only
//! ([`crate::api`]); a single user's server runs in this process behind the same protocol.

use crate::api::{ApiError, Connection, Incoming, Request};
use crate::config::Config;
use crate::model::EventId;
use crate::tui::app::{App, Effect, Event};
use crate::tui::keymap::Keymap;
use anyhow::Context;
use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::Stdout;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Load the shipped keymap with the user's file (if configured) merged over it.
pub fn load_keymap(config: &Config) -> anyhow::Result<Keymap> {
    let shipped = include_str!("../../config/keymap.toml");
    let user = match &config.keymap_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading keymap file {}", p.display()))?,
        ),
        None => None,
    };
    Keymap::load(shipped, user.as_deref()).map_err(|e| match &config.keymap_file {
        Some(p) => anyhow::anyhow!("{}: {e}", p.display()),
        None => anyhow::anyhow!("{e}"),
    })
}

fn setup_terminal() -> anyhow::Result<Term> {
    enable_raw_mode().context("this needs a terminal (raw mode failed)")?;
    let mut out = std::io::stdout();
    execute!(out, EnterAlternateScreen).context("entering the alternate screen")?;
    let term = Terminal::new(CrosstermBackend::new(out))?;
    Ok(term)
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restore the terminal before a panic is reported, so the message is readable.
fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));
}

/// Opens a connection to the server: the first one, and each reconnect (with the newest event
/// the TUI saw, so the server replays what it missed).
pub type Connector = Arc<
    dyn Fn(
            Option<EventId>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<(Connection, UnboundedReceiver<Incoming>), ApiError>,
                    > + Send,
            >,
        > + Send
        + Sync,
>;

/// The TUI's end of the server link: the live connection, or none while it reconnects.
struct Link {
    conn: Option<Connection>,
    incoming: Option<UnboundedReceiver<Incoming>>,
    connector: Connector,
    /// The newest event seen: a reconnect resumes from it.
    last_event: EventId,
    /// A reconnect in progress delivers its result here.
    reconnect: Option<tokio::sync::oneshot::Receiver<(Connection, UnboundedReceiver<Incoming>)>>,
    last_error: Option<String>,
}

/// Run the TUI until the user quits, as a client of the server `connector` reaches. `config`
/// is the personal config (keymap, theme, editor); who the agent is comes from the server.
pub async fn run(
    config: Config,
    conn: Connection,
    incoming: UnboundedReceiver<Incoming>,
    connector: Connector,
    notice: Option<String>,
) -> anyhow::Result<()> {
    let keymap = load_keymap(&config)?;
    let welcome = conn.welcome().clone();
    let mut config = config;
    config.agent = welcome.agent.clone();
    config.pending_after_reply = welcome.pending_after_reply;
    let (tx, mut rx) = unbounded_channel::<Event>();

    install_panic_hook();
    let mut term = setup_terminal()?;
    let size = term.size()?;
    let mut app = App::new(
        &config,
        keymap,
        (size.width, size.height),
        crate::model::now_millis(),
    );
    app.worker = welcome.status.clone();
    if welcome.role != crate::api::Role::Admin {
        app.whoami = if welcome.teams.is_empty() {
            format!("{} · {}", welcome.agent, welcome.role)
        } else {
            format!(
                "{} · {} · {}",
                welcome.agent,
                welcome.role,
                welcome.teams.join(", ")
            )
        };
    }
    if let Some(n) = notice {
        app.info(n);
    }
    for a in &welcome.agents {
        if !app.known_agents.contains(a) {
            app.known_agents.push(a.clone());
        }
    }
    app.templates = welcome.templates.clone();
    app.canned = welcome.canned.clone();
    app.suggest = welcome.suggest;
    app.colors = crate::tui::colors::ColorDepth::from_env();
    // The workspace's macros, with the agent's own (already in the app) over them.
    for m in &welcome.macros {
        if !app.macros.iter().any(|x| x.name == m.name) {
            app.macros.push(m.clone());
        }
    }
    if let Some(dir) = crate::canned::personal_dir(&crate::config::Env::from_process()) {
        match crate::canned::Library::load_dir(&dir, true) {
            Ok(lib) => app.personal_canned = lib,
            Err(e) => app.error(format!("your templates: {e}")),
        }
    }
    for t in &welcome.workspace_teams {
        if !app.known_teams.contains(t) {
            app.known_teams.push(t.clone());
        }
    }
    let mut link = Link {
        conn: Some(conn),
        incoming: Some(incoming),
        connector,
        last_event: welcome.last_event,
        reconnect: None,
        last_error: None,
    };
    let saver = Saver {
        config: Arc::new(config.clone()),
        tx: tx.clone(),
    };
    let result = event_loop(&mut term, &mut app, &mut link, &saver, &mut rx).await;
    restore_terminal();
    result
}

async fn event_loop(
    term: &mut Term,
    app: &mut App,
    link: &mut Link,
    saver: &Saver,
    rx: &mut UnboundedReceiver<Event>,
) -> anyhow::Result<()> {
    let mut input = Some(EventStream::new());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let start = app.start();
    if apply(term, app, link, saver, start, &mut input).await? {
        return Ok(());
    }
    term.draw(|f| crate::tui::ui::draw(f, app))?;
    loop {
        let mut pending: Vec<Event> = Vec::new();
        tokio::select! {
            ev = next_input(&mut input) => match ev {
                Some(Ok(e)) => pending.extend(term_event(e)),
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => return Ok(()),
            },
            Some(ev) = rx.recv() => pending.push(ev),
            Some(msg) = next_incoming(&mut link.incoming) => pending.extend(link.incoming(msg)),
            Ok(got) = next_reconnect(&mut link.reconnect) => pending.extend(link.reconnected(got)),
            _ = tick.tick() => pending.push(Event::Tick(crate::model::now_millis())),
        }
        // Drain whatever else is ready, then draw once.
        // Polled with THIS task's waker: `now_or_never` would poll with a no-op waker, and
        // crossterm's EventStream wakes only the waker of the poll that found no input, so the
        // next key would sit unnoticed until some other event (the 1 s tick) woke the loop.
        while let Some(Ok(e)) = ready_input(&mut input).await {
            pending.extend(term_event(e));
        }
        while let Ok(ev) = rx.try_recv() {
            pending.push(ev);
        }
        while let Some(msg) = link.incoming.as_mut().and_then(|r| r.try_recv().ok()) {
            pending.extend(link.incoming(msg));
        }
        for ev in pending {
            let fx = app.handle(ev);
            if apply(term, app, link, saver, fx, &mut input).await? {
                return Ok(());
            }
        }
        // Presence: what this agent does now, when it changed (and as a heartbeat). Not an
        // error while disconnected: it is reported again on reconnect.
        if let Some(conn) = &link.conn
            && let Some(r) = app.presence_request(crate::model::now_millis())
        {
            let _ = conn.send(r);
        }
        term.draw(|f| crate::tui::ui::draw(f, app))?;
    }
}

impl Link {
    /// A message from the server as app events.
    fn incoming(&mut self, msg: Incoming) -> Vec<Event> {
        match msg {
            Incoming::Response { response, .. } => vec![Event::Data(response)],
            Incoming::Events { events, last } => {
                self.last_event = self.last_event.max(last);
                vec![Event::Feed(events)]
            }
            Incoming::Resync { last } => {
                self.last_event = self.last_event.max(last);
                vec![Event::Connection {
                    up: true,
                    line: "server: resynced".into(),
                }]
            }
            Incoming::Presence(online) => vec![Event::Presence(online)],
            Incoming::Status { line, error } => {
                let mut out = vec![Event::Worker(line)];
                if error.is_some() && error != self.last_error {
                    out.push(Event::Problem(format!(
                        "server: {}",
                        error.clone().unwrap_or_default()
                    )));
                }
                self.last_error = error;
                out
            }
            Incoming::Notification { rows, unread } => vec![Event::Notification { rows, unread }],
            Incoming::Closed(why) => {
                self.conn = None;
                self.incoming = None;
                self.start_reconnect();
                vec![Event::Connection {
                    up: false,
                    line: format!("server: connection lost ({why}); reconnecting"),
                }]
            }
        }
    }

    /// Reconnect in the background with backoff (0.1 s doubling to 5 s), for as long as it
    /// takes; the screen and any draft stay as they are meanwhile.
    fn start_reconnect(&mut self) {
        let (done, rx) = tokio::sync::oneshot::channel();
        let connector = Arc::clone(&self.connector);
        let after = self.last_event;
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                tokio::time::sleep(wait).await;
                match connector(Some(after)).await {
                    Ok(c) => {
                        let _ = done.send(c);
                        return;
                    }
                    Err(e) => {
                        tracing::info!("reconnecting: {e}");
                        if done.is_closed() {
                            return;
                        }
                    }
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
        self.reconnect = Some(rx);
    }

    fn reconnected(
        &mut self,
        (conn, incoming): (Connection, UnboundedReceiver<Incoming>),
    ) -> Vec<Event> {
        self.reconnect = None;
        let line = conn.welcome().status.clone();
        self.last_event = self.last_event.max(conn.welcome().last_event);
        self.conn = Some(conn);
        self.incoming = Some(incoming);
        vec![Event::Connection { up: true, line }]
    }

    /// Send a request; while disconnected it fails at once with a line saying so.
    fn send(&self, req: Request) -> Option<Event> {
        let err = match &self.conn {
            Some(c) => match c.send(req) {
                Ok(_) => return None,
                Err(e) => e.to_string(),
            },
            None => "not connected to the server (reconnecting); nothing was changed, try again in a moment".to_string(),
        };
        Some(Event::Data(crate::api::Response::Error(err)))
    }
}

async fn next_incoming(rx: &mut Option<UnboundedReceiver<Incoming>>) -> Option<Incoming> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_reconnect(
    rx: &mut Option<tokio::sync::oneshot::Receiver<(Connection, UnboundedReceiver<Incoming>)>>,
) -> Result<(Connection, UnboundedReceiver<Incoming>), tokio::sync::oneshot::error::RecvError> {
    match rx {
        Some(r) => r.await,
        None => std::future::pending().await,
    }
}

/// A terminal event that is ready now, without waiting (None: nothing ready, or paused).
async fn ready_input(input: &mut Option<EventStream>) -> Option<std::io::Result<TermEvent>> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match input {
            Some(stream) => match stream.poll_next_unpin(cx) {
                std::task::Poll::Ready(ev) => ev,
                std::task::Poll::Pending => None,
            },
            None => None,
        })
    })
    .await
}

/// The next terminal event, or never while input is paused (an external editor runs).
async fn next_input(input: &mut Option<EventStream>) -> Option<std::io::Result<TermEvent>> {
    match input {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn term_event(e: TermEvent) -> Option<Event> {
    match e {
        TermEvent::Key(k) => Some(Event::Key(k)),
        TermEvent::Resize(w, h) => Some(Event::Resize(w, h)),
        _ => None,
    }
}

/// Runs `:save` downloads as tasks of their own: the server fetches the files, this process
/// writes them into the agent's folder; the result comes back as a data event.
struct Saver {
    config: Arc<Config>,
    tx: UnboundedSender<Event>,
}

impl Saver {
    fn start(
        &self,
        conn: Option<Connection>,
        conversation: crate::model::ConversationId,
        dir: Option<String>,
    ) {
        let config = Arc::clone(&self.config);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let dir = dir
                .map(|d| expand_home(&d))
                .unwrap_or_else(|| crate::files::default_dir(&config.data_dir.join("attachments")));
            let resp = match conn {
                None => crate::api::Response::Error(
                    "save: not connected to the server (reconnecting); try again in a moment"
                        .into(),
                ),
                Some(conn) => match conn.call(Request::Attachments { conversation }).await {
                    Ok(crate::api::Response::Files(files)) => {
                        let files: Vec<(String, Vec<u8>)> =
                            files.into_iter().map(|f| (f.name, f.bytes)).collect();
                        match crate::files::save_all(&dir, &files).await {
                            Ok(msg) => crate::api::Response::Done(msg),
                            Err(e) => crate::api::Response::Error(format!("save: {e}")),
                        }
                    }
                    Ok(other) => other,
                    Err(e) => crate::api::Response::Error(format!("save: {e}")),
                },
            };
            let _ = tx.send(Event::Data(resp));
        });
    }
}

/// `~/x` -> `$HOME/x`.
fn expand_home(d: &str) -> PathBuf {
    match (d.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(b)) => b.home_dir().join(rest),
        _ => PathBuf::from(d),
    }
}

/// Carry out effects. Returns true to quit.
async fn apply(
    term: &mut Term,
    app: &mut App,
    link: &mut Link,
    saver: &Saver,
    effects: Vec<Effect>,
    input: &mut Option<EventStream>,
) -> anyhow::Result<bool> {
    let mut queue = effects;
    while !queue.is_empty() {
        let mut next = Vec::new();
        for fx in queue {
            match fx {
                Effect::Quit => return Ok(true),
                Effect::Request(r) => {
                    if let Some(ev) = link.send(r) {
                        next.extend(app.handle(ev));
                    }
                }
                Effect::Save { conversation, dir } => {
                    saver.start(link.conn.clone(), conversation, dir)
                }
                Effect::Alert(bytes) => {
                    // Between frames: a BEL or an OSC sequence neither prints nor moves the
                    // cursor, so the screen ratatui drew stays as it is.
                    use std::io::Write as _;
                    let out = term.backend_mut();
                    let _ = out.write_all(bytes.as_bytes()).and_then(|()| out.flush());
                }
                Effect::RunEditor(text) => {
                    let result = edit_in_editor(term, &text, &saver.config.data_dir, input).await;
                    next.extend(app.handle(Event::EditorDone(result)));
                }
            }
        }
        queue = next;
    }
    Ok(false)
}

/// Suspend the UI, edit `text` in $VISUAL/$EDITOR (default vi), resume.
async fn edit_in_editor(
    term: &mut Term,
    text: &str,
    data_dir: &Path,
    input: &mut Option<EventStream>,
) -> Result<String, String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let runtime = std::env::var_os("XDG_RUNTIME_DIR");
    let dir = draft_dir(runtime.as_deref(), data_dir)
        .map_err(|e| format!("cannot make a private place for the draft: {e}"))?;
    // Stop reading the terminal while the editor owns it. The old stream must be dropped
    // BEFORE a new one is made: its reader thread holds crossterm's global reader lock until
    // it is told to shut down, and creating a stream waits for that lock.
    *input = None;
    restore_terminal();
    let result = edit_draft(&editor, text, &dir).await;
    let _ = enable_raw_mode();
    let _ = execute!(std::io::stdout(), EnterAlternateScreen);
    // A fresh terminal (fresh buffers, cursor state) so the next frame repaints every cell.
    if let Ok(fresh) = Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        *term = fresh;
    }
    let _ = term.clear();
    *input = Some(EventStream::new());
    result
}

/// Where drafts for $EDITOR go: `$XDG_RUNTIME_DIR` when it is an absolute directory of ours
/// that nobody else can enter (mode 0700, as systemd makes it), else the data dir (made 0700).
/// Never `/tmp`: another user of the machine could read the draft or plant a symlink there.
pub fn draft_dir(runtime: Option<&std::ffi::OsStr>, data_dir: &Path) -> std::io::Result<PathBuf> {
    if let Some(dir) = runtime.map(Path::new).filter(|d| d.is_absolute())
        && is_private_dir(dir)
    {
        return Ok(dir.to_path_buf());
    }
    crate::private::create_dir(data_dir)?;
    Ok(data_dir.to_path_buf())
}

#[cfg(unix)]
fn is_private_dir(dir: &Path) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // symlink_metadata: a symlink is not followed to somebody else's directory.
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        m.is_dir() && m.uid() == me && m.permissions().mode() & 0o077 == 0
    })
}

#[cfg(not(unix))]
fn is_private_dir(_dir: &Path) -> bool {
    false
}

/// Write `text` (ending with a newline) to a new file in `dir` with a random name, created
/// exclusively (O_EXCL: an existing file or a planted symlink is never opened) with mode 0600;
/// run `editor` on it; read it back without its trailing newlines; remove it, whatever happened.
pub async fn edit_draft(editor: &str, text: &str, dir: &Path) -> Result<String, String> {
    use std::io::Write;
    let mut builder = tempfile::Builder::new();
    builder.prefix("braid-draft-").suffix(".txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = builder
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a draft file in {}: {e}", dir.display()))?;
    let mut content = text.to_string();
    if !content.ends_with('\n') {
        content.push('\n');
    }
    file.write_all(content.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("writing the draft {}: {e}", file.path().display()))?;
    let path = file.path().to_path_buf();
    let status = run_editor(editor, &path).await;
    let result = match status {
        // Editors may replace the file (write a new one, rename it over): read it by name.
        Ok(s) if s.success() => std::fs::read_to_string(&path)
            .map(|t| t.trim_end_matches('\n').to_string())
            .map_err(|e| format!("reading the draft {}: {e}", path.display())),
        Ok(s) => Err(format!("{editor} exited with {s}; text unchanged")),
        Err(e) => Err(format!("cannot run {editor}: {e}")),
    };
    // Removed by name (the editor may have replaced the file).
    drop(file);
    let _ = std::fs::remove_file(&path);
    result
}

async fn run_editor(editor: &str, file: &Path) -> std::io::Result<std::process::ExitStatus> {
    // $EDITOR may carry arguments ("code -w"): split on whitespace like git does for simple cases.
    let mut parts = editor.split_whitespace();
    let prog = parts.next().unwrap_or("vi");
    tokio::process::Command::new(prog)
        .args(parts)
        .arg(file)
        .status()
        .await
}
