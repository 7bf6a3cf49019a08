//! The workspace server: one process per workspace owns the store, runs every channel and the
//! outbox (the [`crate::worker`]), reads the secrets, and serves clients over a Unix socket
//! (and, for a single user, in-process over the same protocol).
//!
//! Each connection is identified by the kernel (`SO_PEERCRED`, [`identity`]), mapped to an
//! agent by the workspace config ([`workspace`]), checked on every request ([`authz`]), and
//! answered by [`handler`] on a store connection that carries the agent's scope. Changes (any
//! row in the events table, whoever wrote it) are pushed to every session that may see them.

pub mod authz;
pub mod campaign;
mod csat;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod gdpr_tests;
pub mod handler;
pub mod identity;
pub(crate) mod notify;
mod presence;
pub mod reports;
pub mod rules;
mod session;
mod sla;
pub mod sync;
mod tasks;
pub mod webhooks;
pub mod workspace;

pub use identity::Identity;

/// The names a workspace's rules may refer to (its agents and teams).
pub fn rules_known(config: &crate::config::Config) -> crate::rules::Known {
    rules::known(config)
}

use crate::api::{Connection, Hello, Incoming};
use crate::config::Config;
use crate::model::EventId;
use crate::store::{DB_FILE, EventRow, Store};
use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// The lock one server holds on its data dir (`server.lock`, an flock released by the kernel
/// however the process ends, `kill -9` included).
pub const LOCK_FILE: &str = "server.lock";

/// How a server runs.
#[derive(Clone)]
pub struct ServerOptions {
    /// The workspace config (channels, agents, teams, data dir).
    pub config: Config,
    /// Listen on this socket (None: serve in-process connections only).
    pub socket: Option<PathBuf>,
    /// How often the events table is looked at for changes made by the channels and the
    /// outbox (requests made through the server are pushed at once).
    pub feed_interval: Duration,
    /// Run the channels and the outbox (tests of the protocol alone turn it off).
    pub run_worker: bool,
}

impl ServerOptions {
    pub fn new(config: Config) -> ServerOptions {
        ServerOptions {
            config,
            socket: None,
            feed_interval: Duration::from_millis(5),
            run_worker: true,
        }
    }
}

/// A batch of changes as the server pushes them: each event with who may see it.
#[derive(Debug)]
pub(crate) struct Batch {
    pub events: Vec<EventRow>,
    pub last: EventId,
}

/// What every session shares.
pub(crate) struct Shared {
    pub config: Config,
    pub db_path: PathBuf,
    pub owner_uid: u32,
    /// Idle store connections (each request takes one, sets its scope, gives it back).
    pub pool: Mutex<Vec<Store>>,
    pub events: broadcast::Sender<Arc<Batch>>,
    pub status: watch::Receiver<crate::worker::WorkerStatus>,
    /// Where the config came from, for messages that tell an admin what to edit.
    pub config_path: String,
    /// New notifications and read-state changes, per agent ([`notify`]).
    pub notify: broadcast::Sender<Arc<notify::NotifyBatch>>,
    /// The agents notifications are derived for, with what each may see.
    pub notify_agents: Vec<crate::store::NotifyAgent>,
    /// Who is online and where.
    pub presence: presence::Presence,
    /// Per (agent, conversation): the newest event `braid show` showed them, the stale-send
    /// guard's reference for a `braid reply` that does not say what its author saw.
    pub shown: Mutex<std::collections::HashMap<(String, crate::model::ConversationId), EventId>>,
    /// The workflow rules and their files.
    pub rules: rules::RulesState,
    /// `[[fields]]` and `[pipeline]`, handed to every store connection.
    pub fields: Arc<crate::fields::FieldsConfig>,
    /// The workspace's canned replies (`templates/` beside the config), read again on change.
    pub canned: crate::canned::Folder,
    /// The `[[webhooks]]` endpoints, their secrets read ([`webhooks`]).
    pub webhooks: Arc<webhooks::Hooks>,
}

impl Shared {
    /// A store connection for one request.
    pub fn take_store(&self) -> Result<Store, crate::store::StoreError> {
        if let Some(s) = self.pool.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(s);
        }
        let mut s = Store::open(&self.db_path)?;
        s.set_fields_config(Arc::clone(&self.fields));
        Ok(s)
    }

    pub fn give_store(&self, store: Store) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < 8
        {
            p.push(store);
        }
    }
}

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    worker: Option<crate::worker::WorkerHandle>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    socket: Option<PathBuf>,
    _lock: ServerLock,
}

impl ServerHandle {
    /// The socket it listens on, if any.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The worker's status (channels, outbox), for `braid server`'s own output.
    pub fn status(&self) -> watch::Receiver<crate::worker::WorkerStatus> {
        self.shared.status.clone()
    }

    /// A connection from this process, as this process's Unix user: the single-user mode's
    /// transport (an in-memory pipe carrying the same frames as the socket).
    pub async fn connect_local(
        &self,
        hello: Hello,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Incoming>), crate::api::ApiError> {
        self.connect_local_as(hello, None).await
    }

    /// [`connect_local`](Self::connect_local) as the workspace agent named `agent` (None: this
    /// process's user, as the kernel would say). Only an in-process server offers this: the
    /// user running it owns the store file anyway, so viewing as one of its agents (`braid demo
    /// --as carol`) shows what that agent sees without granting anything.
    pub async fn connect_local_as(
        &self,
        hello: Hello,
        agent: Option<&str>,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Incoming>), crate::api::ApiError> {
        let uid = identity::my_uid();
        let peer = match agent {
            None => session::Peer::Uid(uid),
            Some(name) => {
                let ws = &self.shared.config.workspace;
                let a = ws.agents.iter().find(|a| a.name == name).ok_or_else(|| {
                    let known: Vec<&str> = ws.agents.iter().map(|a| a.name.as_str()).collect();
                    crate::api::ApiError::Refused(format!(
                        "no agent '{name}' in this workspace (agents: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ))
                })?;
                session::Peer::As(Identity {
                    uid,
                    user: identity::user_name(uid),
                    agent: a.name.clone(),
                    display: a.display.clone().unwrap_or_else(|| a.name.clone()),
                    role: a.role,
                    teams: a.teams.clone(),
                })
            }
        };
        let (client, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(session::run(
            Arc::clone(&self.shared),
            server,
            peer,
            self.stop.subscribe(),
        ));
        Connection::handshake(client, hello).await
    }

    /// Stop: close the sessions, let the worker finish sends in flight, remove the socket.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(w) = self.worker.take()
            && tokio::time::timeout(Duration::from_secs(8), w.shutdown())
                .await
                .is_err()
        {
            tracing::warn!("the worker did not stop within 8 s; stopping anyway");
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Start the server: take the data dir's lock, open (and migrate) the store, start the worker,
/// follow the events table, listen. Call inside a tokio runtime.
pub async fn start(opts: ServerOptions) -> anyhow::Result<ServerHandle> {
    let config = opts.config.clone();
    let data_dir = config.data_dir.clone();
    crate::private::create_dir(&data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let lock = ServerLock::acquire(&data_dir)?;
    let store = Store::open_dir(&data_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    // Statistics that a bulk load took while the events table was empty mislead the planner
    // once the log has grown (see `Store::refresh_statistics`).
    if let Err(e) = store.refresh_statistics() {
        tracing::warn!("refreshing the store's statistics: {e}");
    }
    let last = store.last_event_id()?;
    let db_path = data_dir.join(DB_FILE);

    let (worker, status) = if opts.run_worker {
        let w = crate::worker::spawn(&config)?;
        let s = w.status.clone();
        (Some(w), s)
    } else {
        let (_tx, rx) = watch::channel(crate::worker::WorkerStatus::default());
        (None, rx)
    };
    let (events, _) = broadcast::channel::<Arc<Batch>>(1024);
    let (notify_tx, _) = broadcast::channel::<Arc<notify::NotifyBatch>>(1024);
    let (rules_state, rules_error) =
        rules::RulesState::new(rules::source_of(&config), rules::known(&config));
    if let Some(e) = rules_error {
        tracing::warn!("the rules files have an error; no rules run until it is fixed:\n{e}");
    }
    let canned = match &config.workspace.templates_dir {
        Some(dir) => crate::canned::Folder::at(Some(dir.clone())),
        None => crate::canned::Folder::beside(config.source.as_deref()),
    };
    // Webhook endpoints (their secrets are read by the dispatcher, or a test, when needed;
    // an unreadable one is reported by `braid webhooks status` and its deliveries wait).
    let hooks = Arc::new(webhooks::Hooks::new(
        &config.workspace.webhooks,
        crate::webhooks::Backoff::default(),
    ));
    let fields = Arc::new(config.workspace.fields.clone());
    let mut store = store;
    store.set_fields_config(Arc::clone(&fields));
    let shared = Arc::new(Shared {
        webhooks: Arc::clone(&hooks),
        fields,
        canned,
        rules: rules_state,
        notify: notify_tx,
        notify_agents: notify::agents(&config),
        config_path: config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the server's config file".into()),
        config,
        db_path: db_path.clone(),
        owner_uid: identity::my_uid(),
        pool: Mutex::new(vec![store]),
        events,
        status,
        presence: presence::Presence::new(),
        shown: Mutex::default(),
    });
    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();

    // Tasks closed by events and notifications of what happened while no server ran (from
    // their durable cursors).
    tasks::follow(&shared).await;
    // Surveys of the conversations resolved while no server ran.
    csat::derive(&shared).await;
    notify::derive_and_push(&shared).await;
    // Reporting facts: a store new to them is backfilled here, once (a progress bar).
    reports::derive(&shared).await;
    // The rules, too (their own changes are then followed like any other writer's). Only a
    // server that runs the channels runs rules: a one-shot command's server (`braid reply`
    // with none running) leaves them to the next real one, which catches up from the cursor.
    let run_rules = opts.run_worker;
    if run_rules {
        rules::run_after_events(&shared).await;
    }

    // Follow the events table (every writer: this server's sessions, the channels, the
    // outbox, an import) and push each batch to the sessions.
    let mut feed = crate::feed::spawn_feed(db_path.clone(), last, opts.feed_interval);
    let tx = shared.events.clone();
    let feed_shared = Arc::clone(&shared);
    tasks.push(tokio::spawn(async move {
        while let Some(update) = feed.recv().await {
            if let Some(e) = &update.error {
                tracing::warn!("following the events table: {e}");
            }
            if update.events.is_empty() {
                continue;
            }
            let _ = tx.send(Arc::new(Batch {
                last: update.last,
                events: update.events,
            }));
            // The same events may close tasks (a call log) and notify agents: derived here,
            // whoever wrote them.
            tasks::follow(&feed_shared).await;
            // The same events may move SLA deadlines, and notify agents: derived here,
            // whoever wrote them.
            sla::derive_and_sweep(&feed_shared, false).await;
            // A resolution sends the conversation's satisfaction survey (once, ever).
            csat::derive(&feed_shared).await;
            notify::derive_and_push(&feed_shared).await;
            reports::derive(&feed_shared).await;
            // Webhooks out: the dispatcher queues what the endpoints asked for.
            feed_shared.webhooks.poke();
            // And run the workflow rules (events written by rules trigger none).
            if run_rules {
                rules::run_after_events(&feed_shared).await;
            }
        }
    }));

    if run_rules {
        tasks.push(tokio::spawn(rules::sweep_loop(Arc::clone(&shared))));
    }
    if shared.config.workspace.simulate_colleagues {
        tasks.push(tokio::spawn(presence::simulate_colleagues(Arc::clone(
            &shared,
        ))));
    }
    // The planner's statistics, kept current as the store grows (cheap when nothing did).
    let sh = Arc::clone(&shared);
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        every.tick().await;
        loop {
            every.tick().await;
            let sh = Arc::clone(&sh);
            let done = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let store = sh.take_store()?;
                let r = store.refresh_statistics();
                sh.give_store(store);
                Ok(r?)
            })
            .await;
            if let Ok(Err(e)) = done {
                tracing::warn!("refreshing the store's statistics: {e}");
            }
        }
    }));
    // Tasks that came due: marked once, their assignees notified.
    tasks.push(tokio::spawn(tasks::sweep_loop(Arc::clone(&shared))));
    // SLA deadlines: warned and breached as time passes (events; the assignee is notified).
    tasks.push(tokio::spawn(sla::run(Arc::clone(&shared))));
    // Delayed satisfaction surveys that came due.
    tasks.push(tokio::spawn(csat::run(Arc::clone(&shared))));
    // Webhooks out (a server that runs the channels delivers them; a one-shot one leaves
    // the queue to the next real one, which follows from the cursor).
    if opts.run_worker {
        match webhooks::start(db_path.clone(), hooks).await {
            Ok(d) => tasks.extend(d.into_tasks()),
            Err(e) => tracing::warn!("webhooks: cannot start the dispatcher: {e}"),
        }
    }
    // Campaign steps that came due, paced per channel.
    tasks.push(tokio::spawn(campaign::run(Arc::clone(&shared))));
    // Presence of connections that hang without closing expires.
    let sh = Arc::clone(&shared);
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(presence::REFRESH);
        loop {
            every.tick().await;
            sh.presence.expire(presence::EXPIRE);
        }
    }));

    let socket = match &opts.socket {
        Some(path) => {
            let listener = bind(path, shared.config.workspace.group.as_deref())?;
            let sh = Arc::clone(&shared);
            let stop_rx = stop.subscribe();
            tasks.push(tokio::spawn(accept_loop(sh, listener, stop_rx)));
            tracing::info!(socket = %path.display(), "listening");
            Some(path.clone())
        }
        None => None,
    };
    Ok(ServerHandle {
        shared,
        worker,
        stop,
        tasks,
        socket,
        _lock: lock,
    })
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: tokio::net::UnixListener,
    stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // The kernel's word on who connected; nothing the client says is asked.
        let uid = match stream.peer_cred() {
            Ok(c) => c.uid(),
            Err(e) => {
                tracing::warn!("cannot read the peer credentials of a connection: {e}");
                continue;
            }
        };
        tokio::spawn(session::run(
            Arc::clone(&shared),
            stream,
            session::Peer::Uid(uid),
            stop.clone(),
        ));
    }
}

/// Bind the socket: a stale file (no server answers on it) is replaced; a live one is refused.
/// With a group, the socket is `0660` and owned by that group (its members may connect);
/// without, `0600` (the server's user only). Its directory is created private if missing.
fn bind(path: &Path, group: Option<&str>) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    crate::api::paths::check_socket_path(path).map_err(anyhow::Error::msg)?;
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        crate::private::create_dir(dir)
            .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
    }
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => anyhow::bail!(
                "a braid server already listens on {}; stop it first, or give this one another `[server] socket`",
                path.display()
            ),
            Err(_) => {
                std::fs::remove_file(path).with_context(|| {
                    format!("cannot remove the stale socket {}", path.display())
                })?;
                tracing::info!(socket = %path.display(), "removed a stale socket");
            }
        }
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    match group {
        Some(g) => {
            let gid = nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .map(|gr| gr.gid.as_raw())
                .ok_or_else(|| {
                    anyhow::anyhow!("`[server] group`: there is no Unix group '{g}' (groupadd {g})")
                })?;
            std::os::unix::fs::chown(path, None, Some(gid))
                .with_context(|| format!("cannot give {} to group {g}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        }
        None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?,
    }
    Ok(listener)
}

/// Another server holds the data dir (its lock).
#[derive(Debug, thiserror::Error)]
#[error(
    "another braid server{} owns {}; use it (`braid` connects to it) or stop it first",
    pid.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default(),
    data_dir.display()
)]
pub struct DataDirBusy {
    pub pid: Option<String>,
    pub data_dir: PathBuf,
}

/// One server per data dir.
#[derive(Debug)]
pub struct ServerLock {
    file: File,
}

impl ServerLock {
    pub fn acquire(data_dir: &Path) -> anyhow::Result<ServerLock> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        crate::private::tighten_if_exists(&path, 0o600);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(DataDirBusy {
                    pid: (!pid.is_empty()).then(|| pid.to_string()),
                    data_dir: data_dir.to_path_buf(),
                }
                .into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(ServerLock { file })
    }
}

impl Drop for ServerLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Whether a server holds the lock of `data_dir` now (without taking it).
pub fn running(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::{Request, Response, Write};

    /// A store in `data` with one customer's email conversation.
    fn one_conversation(data: &Path) -> (crate::model::ConversationId, crate::model::ContactId) {
        let mut store = Store::open_dir(data).unwrap();
        let r = crate::ingest::ingest(
            &mut store,
            &crate::ingest::Inbound {
                channel: crate::model::Channel::Email,
                account: String::new(),
                external_id: "<a@x>".into(),
                direction: crate::model::Direction::In,
                customer: crate::identity::Claim::new(crate::model::IdentityKind::Email, "a@x.org"),
                linked: vec![],
                customer_name: Some("A".into()),
                author: None,
                subject: None,
                body: "hello".into(),
                sent_at: crate::model::now_millis(),
                meta: None,
                cursor: None,
            },
            &crate::ingest::Settings::default(),
        )
        .unwrap();
        match r {
            crate::ingest::Ingested::Stored {
                conversation,
                contact,
                ..
            } => (conversation, contact),
            other => panic!("{other:?}"),
        }
    }

    /// The server sweeps SLA deadlines on its own (a breach becomes an event) and follows
    /// every writer's events to recompute them (resolved: no deadline).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_breaches_and_recomputes_sla_deadlines() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (conversation, _) = one_conversation(&data);
        let mut config = Config::with_data_dir(&data);
        config.workspace.sla.policies.push(crate::sla::Policy {
            name: "fast".into(),
            first_response: Some(2_000),
            next_response: None,
            resolution: None,
            hours: None,
            warn_before: 0,
        });
        let cfg = config.workspace.sla.clone();
        let now = crate::model::now_millis();
        Store::open_dir(&data)
            .unwrap()
            .apply_sla_by_name(conversation, &cfg, "fast", now, "rule:t")
            .unwrap();
        let mut opts = ServerOptions::new(config);
        opts.run_worker = false;
        let server = start(opts).await.unwrap();
        let poll =
            |want: &'static (dyn Fn(Option<crate::store::sla::SlaStatus>) -> bool + Sync)| {
                let data = data.clone();
                async move {
                    for _ in 0..150 {
                        let st = Store::open_dir(&data)
                            .unwrap()
                            .conversation_sla(conversation)
                            .unwrap();
                        if want(st.clone()) {
                            return st;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    panic!("the SLA never got there");
                }
            };
        let st = poll(&|s| s.and_then(|s| s.state).as_deref() == Some("breached")).await;
        assert_eq!(st.unwrap().target.as_deref(), Some("first_response"));
        // Another writer resolves it: the server follows the event and clears the deadline.
        Store::open_dir(&data)
            .unwrap()
            .set_status(conversation, crate::model::Status::Resolved, None, "t", now)
            .unwrap();
        let st = poll(&|s| s.is_some_and(|s| s.due.is_none())).await;
        assert_eq!(st.unwrap().state, None);
        drop(server);
    }

    /// The server follows every writer's resolutions and sends the survey once: not again
    /// when the conversation is reopened and resolved, nor when a restarted server catches up
    /// on a resolution made while none ran.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_sends_one_survey_per_resolved_conversation_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (conversation, _) = one_conversation(&data);
        let mut config = Config::with_data_dir(&data);
        config.workspace.csat.enabled = true;
        let options = || {
            let mut opts = ServerOptions::new(config.clone());
            opts.run_worker = false;
            opts
        };
        let surveys = |data: &Path| -> i64 {
            Store::open_dir(data)
                .unwrap()
                .conversation_events(conversation, 1000)
                .unwrap()
                .iter()
                .filter(|e| e.kind == "csat_sent")
                .count() as i64
        };
        let wait_for = |n: i64| {
            let data = data.clone();
            async move {
                for _ in 0..100 {
                    if surveys(&data) == n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("never {n} survey(s): {}", surveys(&data));
            }
        };
        let status = |st: crate::model::Status| {
            Store::open_dir(&data)
                .unwrap()
                .set_status(conversation, st, None, "bob", crate::model::now_millis())
                .unwrap();
        };
        let server = start(options()).await.unwrap();
        status(crate::model::Status::Resolved);
        wait_for(1).await;
        status(crate::model::Status::Open);
        status(crate::model::Status::Resolved);
        // Give the feed time to see it; still one.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(surveys(&data), 1);
        server.shutdown().await;
        // Resolved again while no server runs; a restarted server catches up: still one.
        status(crate::model::Status::Open);
        status(crate::model::Status::Resolved);
        let server = start(options()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(surveys(&data), 1);
        server.shutdown().await;
    }

    /// A server without a worker (a one-shot command's) still pushes: its status watch ends at
    /// once, which must not stop the session's pushes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_reach_other_sessions_without_a_worker() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (conversation, contact) = one_conversation(&data);
        let mut opts = ServerOptions::new(Config::with_data_dir(&data));
        opts.run_worker = false;
        let server = start(opts).await.unwrap();
        let (writer, _w) = server.connect_local(Hello::new("w", None)).await.unwrap();
        let (_reader, mut rx) = server.connect_local(Hello::new("r", None)).await.unwrap();
        let r = writer
            .call(Request::Write {
                conversation,
                contact,
                write: Write::Note {
                    body: "n".into(),
                    seen: Default::default(),
                },
            })
            .await
            .unwrap();
        assert!(matches!(r, Response::Done(_)), "{r:?}");
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match rx.recv().await {
                    Some(Incoming::Events { events, .. }) => break events,
                    Some(_) => continue,
                    None => panic!("closed"),
                }
            }
        })
        .await
        .expect("no push within 5 s");
        assert!(got.iter().any(|e| e.kind == "note"));
        server.shutdown().await;
    }

    /// `[server] only_assignee_replies`: another agent's reply to an assigned conversation is
    /// refused (and audited); their note is not; the assignee and a supervisor may reply.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_assignee_replies_when_the_workspace_says_so() {
        use crate::api::{Post, Role};
        use crate::server::workspace::{AgentDef, Workspace};
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (conversation, _) = one_conversation(&data);
        Store::open_dir(&data)
            .unwrap()
            .assign(conversation, Some("ann"), "ann", crate::model::now_millis())
            .unwrap();
        let agent = |name: &str, role| AgentDef {
            user: format!("u-{name}"),
            name: name.into(),
            display: None,
            role,
            teams: vec![],
        };
        let mut config = Config::with_data_dir(&data);
        config.workspace = Workspace {
            agents: vec![
                agent("ann", Role::Agent),
                agent("bob", Role::Agent),
                agent("sue", Role::Supervisor),
            ],
            only_assignee_replies: true,
            ..Workspace::default()
        };
        let mut opts = ServerOptions::new(config);
        opts.run_worker = false;
        let server = start(opts).await.unwrap();
        let post = |body: &str, reply: bool| Request::Post {
            conversation,
            post: if reply {
                Post::Reply {
                    channel: None,
                    body: body.into(),
                    then_pending: false,
                    seen: Default::default(),
                }
            } else {
                Post::Note {
                    body: body.into(),
                    seen: Default::default(),
                }
            },
        };
        let (bob, _b) = server
            .connect_local_as(Hello::new("bob", None), Some("bob"))
            .await
            .unwrap();
        let r = bob.call(post("I'll take it", true)).await.unwrap();
        let Response::Refused(why) = r else {
            panic!("{r:?}")
        };
        assert!(why.contains("assigned to ann"), "{why}");
        assert!(why.contains("only the assignee replies"), "{why}");
        let r = bob.call(post("FYI: VIP", false)).await.unwrap();
        assert!(matches!(r, Response::Written(_)), "{r:?}");
        for who in ["ann", "sue"] {
            let (c, _rx) = server
                .connect_local_as(Hello::new(who, None), Some(who))
                .await
                .unwrap();
            let r = c.call(post(&format!("from {who}"), true)).await.unwrap();
            assert!(matches!(r, Response::Written(_)), "{who}: {r:?}");
        }
        let store = Store::open_dir(&data).unwrap();
        let refused: Vec<_> = store
            .conversation_events(conversation, 50)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "refused")
            .collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].actor, "bob");
        server.shutdown().await;
    }
}
