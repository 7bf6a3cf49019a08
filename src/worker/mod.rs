//! The worker: channel I/O, the outbox dispatcher, the worker lease.
//!
//! Every braid process on a store spawns one worker ([`spawn`]). Exactly one of them at a time
//! holds the lease ([`lease`], an flock next to the store) and is the *leader*: it runs the
//! channels (the demo simulator on a demo workspace), sends queued replies ([`dispatch`]) and
//! wakes snoozed conversations. The others are *followers*: they only retry the lease every
//! second, so when the leader exits (or is killed) another process takes over within 1–2 s.
//! Followers see everything the leader does through the store's event feed ([`crate::feed`]).

pub mod dispatch;
pub mod lease;

pub use dispatch::{DispatchSettings, Dispatcher, Outcome, Senders, no_sender_reason};
pub use lease::{Lease, holder_pid};

use crate::channels::Outbound;
use crate::channels::demo::DemoChannels;
use crate::channels::webchat::WebChatServer;
use crate::store::{DB_FILE, Store};
use dispatch::{SharedStore, with_store};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether this process runs the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Not decided yet (or the lease could not be tried: see `last_error`).
    #[default]
    Starting,
    /// Holds the lease: runs channels and the outbox.
    Leader,
    /// Another process holds the lease; this one is a client of the store.
    Follower,
}

/// What the worker reports to the status line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerStatus {
    pub role: Role,
    /// Leader: channel and outbox state ("demo: 12 customers online · outbox 2 queued").
    /// Follower: who runs the channels ("pid 1234 runs channels").
    pub detail: String,
    /// The latest worker error (store trouble, a channel that would not start); cleared after a
    /// minute without new errors.
    pub last_error: Option<String>,
}

impl WorkerStatus {
    /// One line for the status bar: "worker: leader · outbox 2 queued",
    /// "worker: follower (pid 1234 runs channels)".
    pub fn summary(&self) -> String {
        match self.role {
            Role::Starting => "worker: starting".to_string(),
            Role::Leader if self.detail.is_empty() => "worker: leader".to_string(),
            Role::Leader => format!("worker: leader · {}", self.detail),
            Role::Follower if self.detail.is_empty() => "worker: follower".to_string(),
            Role::Follower => format!("worker: follower ({})", self.detail),
        }
    }
}

/// How a worker runs. [`WorkerOptions::new`] has the production values.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Where the store and the lease live.
    pub data_dir: PathBuf,
    /// Senders of configured channels (the demo's are added on a demo workspace).
    pub senders: Vec<Arc<dyn Outbound>>,
    /// Start the simulated customers when the store is a demo workspace.
    pub run_demo: bool,
    /// How often a follower tries to take the lease.
    pub lease_retry: Duration,
    /// How often the leader looks at the outbox when nothing wakes it.
    pub poll: Duration,
    /// How often snoozed conversations are woken.
    pub wake_every: Duration,
    /// How long shutdown waits for sends in flight.
    pub shutdown_grace: Duration,
    pub dispatch: DispatchSettings,
    /// The Telegram bot whose updates the leader polls (its sender is in `senders`).
    pub telegram: Option<Arc<crate::channels::telegram::Telegram>>,
    /// The website live chat the leader serves.
    pub webchat: Option<crate::channels::webchat::Options>,
    /// The mailboxes whose folders the leader keeps synced (their sender is in `senders`).
    pub email: Vec<Arc<crate::channels::email::Account>>,
}

impl WorkerOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> WorkerOptions {
        WorkerOptions {
            data_dir: data_dir.into(),
            senders: Vec::new(),
            run_demo: true,
            lease_retry: Duration::from_secs(1),
            poll: Duration::from_millis(500),
            wake_every: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            dispatch: DispatchSettings::default(),
            telegram: None,
            webchat: None,
            email: Vec::new(),
        }
    }

    pub fn from_config(config: &crate::config::Config) -> WorkerOptions {
        let mut opts = WorkerOptions::new(config.data_dir.clone());
        if let Some(tg) = &config.telegram {
            let bot =
                crate::channels::telegram::Telegram::new(tg.clone(), config.ingest_settings());
            opts.senders.push(bot.clone());
            opts.telegram = Some(bot);
        }
        if !config.email.is_empty() {
            let accounts: Vec<_> = config
                .email
                .iter()
                .map(|a| crate::channels::email::Account::new(a.clone(), config.ingest_settings()))
                .collect();
            opts.senders.push(crate::channels::email::EmailSender::new(
                accounts.clone(),
                config.data_dir.join(DB_FILE),
            ));
            opts.email = accounts;
        }
        if let Some(sms) = &config.sms {
            opts.senders.push(crate::channels::sms::SmsSender::new(
                sms.clone(),
                config.data_dir.join(DB_FILE),
            ));
        }
        if let Some(wa) = &config.whatsapp {
            opts.senders
                .push(crate::channels::whatsapp::WhatsApp::new(wa.clone()));
        }
        for m in config.instagram.iter().chain(config.messenger.iter()) {
            opts.senders
                .push(crate::channels::meta::MetaChannel::new(m.clone()));
        }
        opts.webchat = config.webchat_options();
        opts
    }
}

/// A running worker. Dropping the handle stops it too (without waiting).
pub struct WorkerHandle {
    pub status: watch::Receiver<WorkerStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stop: finish (or abandon, after a grace period) sends in flight, stop the channels, give
    /// the lease up so another process takes over.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!("worker task ended badly: {e}");
        }
    }
}

/// Start the worker for `config`'s store. Call inside a tokio runtime.
pub fn spawn(config: &crate::config::Config) -> anyhow::Result<WorkerHandle> {
    spawn_with(WorkerOptions::from_config(config))
}

/// Start a worker with explicit options. Call inside a tokio runtime.
pub fn spawn_with(opts: WorkerOptions) -> anyhow::Result<WorkerHandle> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("the worker must be started inside a tokio runtime"))?;
    let (status_tx, status) = watch::channel(WorkerStatus::default());
    let (stop, stop_rx) = watch::channel(false);
    let task = rt.spawn(run(opts, Reporter::new(status_tx), stop_rx));
    Ok(WorkerHandle { status, stop, task })
}

/// Publishes status changes (only real changes, so watchers redraw only when needed).
struct Reporter {
    tx: watch::Sender<WorkerStatus>,
    error_at: Option<Instant>,
}

const ERROR_SHOWN_FOR: Duration = Duration::from_secs(60);

impl Reporter {
    fn new(tx: watch::Sender<WorkerStatus>) -> Reporter {
        Reporter { tx, error_at: None }
    }

    fn set(&mut self, role: Role, detail: String) {
        self.tx.send_if_modified(|s| {
            let changed = s.role != role || s.detail != detail;
            s.role = role;
            s.detail = detail;
            changed
        });
    }

    fn error(&mut self, what: &str, e: &anyhow::Error) {
        let text = format!("{what}: {e:#}");
        tracing::warn!("worker: {text}");
        self.error_at = Some(Instant::now());
        self.tx.send_if_modified(|s| {
            let changed = s.last_error.as_deref() != Some(text.as_str());
            s.last_error = Some(text);
            changed
        });
    }

    fn expire_error(&mut self) {
        if self
            .error_at
            .is_some_and(|t| t.elapsed() >= ERROR_SHOWN_FOR)
        {
            self.error_at = None;
            self.tx.send_if_modified(|s| s.last_error.take().is_some());
        }
    }
}

/// Wait `d`, or until asked to stop (also when the handle is dropped). True: stop.
async fn stop_or_sleep(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

async fn run(opts: WorkerOptions, mut rep: Reporter, mut stop: watch::Receiver<bool>) {
    let lease = loop {
        let dir = opts.data_dir.clone();
        match tokio::task::spawn_blocking(move || Lease::try_acquire(&dir)).await {
            Ok(Ok(Some(lease))) => break lease,
            Ok(Ok(None)) => {
                rep.set(Role::Follower, follower_detail(&opts.data_dir));
                rep.expire_error();
            }
            Ok(Err(e)) => rep.error("worker lease", &e.into()),
            Err(e) => rep.error("worker lease", &e.into()),
        }
        if stop_or_sleep(&mut stop, opts.lease_retry).await {
            return;
        }
    };
    tracing::info!(lock = %lease.path().display(), "worker lease taken: this process runs the channels");
    lead(&opts, &mut rep, &mut stop).await;
    drop(lease);
    tracing::info!("worker lease released");
}

fn follower_detail(data_dir: &Path) -> String {
    match holder_pid(data_dir) {
        Some(pid) => format!("pid {pid} runs channels"),
        None => "another braid process runs channels".to_string(),
    }
}

/// The simulated customers, if this is a demo workspace.
enum Demo {
    /// Not a demo workspace (or demos are off).
    No,
    /// A demo workspace whose simulator has not started (yet); retried at the instant.
    Wanted(Instant),
    Running(DemoChannels),
}

/// The leader's loop; returns when asked to stop.
async fn lead(opts: &WorkerOptions, rep: &mut Reporter, stop: &mut watch::Receiver<bool>) {
    rep.set(Role::Leader, "starting".to_string());
    let store_path = opts.data_dir.join(DB_FILE);
    let store: SharedStore = loop {
        let path = store_path.clone();
        let opened = tokio::task::spawn_blocking(move || Store::open(&path)).await;
        match opened {
            Ok(Ok(s)) => break Arc::new(Mutex::new(s)),
            Ok(Err(e)) => rep.error("opening the store", &e.into()),
            Err(e) => rep.error("opening the store", &e.into()),
        }
        if stop_or_sleep(stop, opts.lease_retry).await {
            return;
        }
    };

    let mut demo = Demo::No;
    if opts.run_demo {
        match with_store(&store, |s| crate::demo::is_demo_workspace(s)).await {
            Ok(true) => demo = Demo::Wanted(Instant::now()),
            Ok(false) => {}
            Err(e) => rep.error("demo workspace check", &e),
        }
    }

    let mut dispatcher = Dispatcher::new(
        Arc::clone(&store),
        Senders::new(opts.senders.iter().cloned()),
        opts.dispatch.clone(),
    );
    let telegram = opts.telegram.as_ref().map(|t| {
        let run =
            crate::channels::telegram::poll::run(Arc::clone(t), store_path.clone(), stop.clone());
        tokio::spawn(run)
    });
    let mail: Vec<JoinHandle<()>> = opts
        .email
        .iter()
        .map(|a| {
            tokio::spawn(crate::channels::email::run(
                Arc::clone(a),
                store_path.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let mut web = match &opts.webchat {
        Some(_) => Web::Wanted(Instant::now()),
        None => Web::No,
    };
    let mut next_wake = Instant::now();
    let mut next_status = Instant::now();
    loop {
        if let (Web::Wanted(at), Some(options)) = (&web, &opts.webchat)
            && Instant::now() >= *at
        {
            match WebChatServer::start(options, &opts.data_dir).await {
                Ok(server) => {
                    web = Web::Running(server);
                    dispatcher.set_senders(senders(opts, &demo, &web));
                }
                Err(e) => {
                    rep.error("starting the web chat", &e);
                    web = Web::Wanted(Instant::now() + Duration::from_secs(10));
                }
            }
        }
        if let Demo::Wanted(at) = demo
            && Instant::now() >= at
        {
            match start_demo(&store, &store_path).await {
                Ok(channels) => {
                    demo = Demo::Running(channels);
                    dispatcher.set_senders(senders(opts, &demo, &web));
                }
                Err(e) => {
                    rep.error("starting the demo channels", &e);
                    demo = Demo::Wanted(Instant::now() + Duration::from_secs(10));
                }
            }
        }

        // A demo workspace waits for its simulator: without it every reply would fail for good
        // with "no ... configured".
        if !matches!(demo, Demo::Wanted(_))
            && let Err(e) = dispatcher.fill().await
        {
            rep.error("outbox", &e);
        }

        let now = Instant::now();
        if now >= next_wake {
            next_wake = now + opts.wake_every;
            let actor = opts.dispatch.actor.clone();
            let woke = with_store(&store, move |s| {
                s.wake_snoozed(crate::model::now_millis(), &actor)
            })
            .await;
            match woke {
                Ok(0) => {}
                Ok(n) => tracing::info!("woke {n} snoozed conversations"),
                Err(e) => rep.error("waking snoozed conversations", &e),
            }
        }
        if now >= next_status {
            next_status = now + Duration::from_secs(1);
            rep.set(Role::Leader, leader_detail(&demo, &dispatcher, opts, &web));
            rep.expire_error();
        }

        let busy = dispatcher.in_flight() > 0;
        tokio::select! {
            _ = stop.changed() => break,
            done = dispatcher.next_done(), if busy => {
                if let Some(done) = done {
                    dispatch::log_done(&done);
                    if let (_, Err(e)) = &done {
                        rep.error("outbox", &anyhow::anyhow!("{e}"));
                    }
                }
            }
            _ = tokio::time::sleep(opts.poll) => {}
        }
    }

    dispatcher.drain(opts.shutdown_grace).await;
    if let Web::Running(server) = web {
        server.shutdown().await;
    }
    for task in mail {
        let _ = tokio::time::timeout(opts.shutdown_grace, task).await;
    }
    if let Some(poller) = telegram {
        // It sees the same stop signal; a batch being committed is finished first.
        let _ = tokio::time::timeout(opts.shutdown_grace, poller).await;
    }
    if let Demo::Running(channels) = demo {
        // Stopping the simulator may join its thread.
        let _ = tokio::task::spawn_blocking(move || {
            let _stopping = channels;
        })
        .await;
    }
}

async fn start_demo(store: &SharedStore, store_path: &Path) -> anyhow::Result<DemoChannels> {
    let seed = with_store(store, |s| s.cursor("demo", "", "seed")).await?;
    let seed = match seed.as_deref().map(str::trim).map(str::parse::<u64>) {
        Some(Ok(n)) => n,
        Some(Err(_)) | None => {
            tracing::warn!(?seed, "demo workspace without a numeric seed; using 0");
            0
        }
    };
    let path = store_path.to_path_buf();
    tokio::task::spawn_blocking(move || DemoChannels::start(&path, seed)).await?
}

/// The website live chat, when configured (or on a demo).
enum Web {
    No,
    /// Not listening (yet); retried at the instant.
    Wanted(Instant),
    Running(WebChatServer),
}

/// The configured senders, the demo's over them, and the web chat's over those (handing the
/// demo's simulated visitors to the demo, and offline visitors to the email sender).
fn senders(opts: &WorkerOptions, demo: &Demo, web: &Web) -> Senders {
    let mut senders = Senders::new(opts.senders.iter().cloned());
    if let Demo::Running(channels) = demo {
        for o in channels.outbound() {
            senders.register(o);
        }
    }
    if let Web::Running(server) = web {
        let others = senders.get(crate::model::Channel::WebChat);
        let email = senders.get(crate::model::Channel::Email);
        senders.register(server.outbound(others, email));
    }
    senders
}

fn leader_detail(demo: &Demo, dispatcher: &Dispatcher, opts: &WorkerOptions, web: &Web) -> String {
    let mut parts: Vec<String> = Vec::new();
    for account in &opts.email {
        parts.push(account.status());
    }
    let telegram = opts.telegram.as_deref();
    match web {
        Web::Running(server) => parts.push(server.status()),
        Web::Wanted(_) => parts.push("web chat: not listening".to_string()),
        Web::No => {}
    }
    if let Some(t) = telegram {
        parts.push(t.status());
    }
    match demo {
        Demo::Running(channels) => parts.push(channels.status()),
        Demo::Wanted(_) => parts.push("demo: not running".to_string()),
        Demo::No if dispatcher.senders().is_empty() => {
            parts.push("no channels configured".to_string())
        }
        Demo::No => {}
    }
    let (queued, failed) = dispatcher.counts();
    if queued > 0 {
        parts.push(format!("outbox {queued} queued"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    parts.join(" · ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::channels::{SendFuture, Sent};
    use crate::model::{Channel, now_millis};
    use crate::store::OutboxItem;

    #[test]
    fn summaries() {
        let mut s = WorkerStatus::default();
        assert_eq!(s.summary(), "worker: starting");
        s.role = Role::Leader;
        s.detail = "outbox 2 queued".into();
        assert_eq!(s.summary(), "worker: leader · outbox 2 queued");
        s.role = Role::Follower;
        s.detail = "pid 1234 runs channels".into();
        assert_eq!(s.summary(), "worker: follower (pid 1234 runs channels)");
    }

    async fn wait_for(
        rx: &mut watch::Receiver<WorkerStatus>,
        what: impl Fn(&WorkerStatus) -> bool,
    ) -> WorkerStatus {
        let r = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| what(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match r {
            Ok(Ok(s)) => s,
            _ => panic!("status never matched; last: {:?}", *rx.borrow()),
        }
    }

    fn fast(dir: &Path) -> WorkerOptions {
        WorkerOptions {
            lease_retry: Duration::from_millis(50),
            poll: Duration::from_millis(50),
            ..WorkerOptions::new(dir)
        }
    }

    #[tokio::test]
    async fn one_leader_and_a_follower_that_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = spawn_with(fast(dir.path())).unwrap();
        let sa = wait_for(&mut a.status, |s| {
            s.role == Role::Leader && s.detail != "starting"
        })
        .await;
        assert_eq!(sa.summary(), "worker: leader · no channels configured");
        let mut b = spawn_with(fast(dir.path())).unwrap();
        let sb = wait_for(&mut b.status, |s| s.role == Role::Follower).await;
        assert_eq!(
            sb.detail,
            format!("pid {} runs channels", std::process::id())
        );
        a.shutdown().await;
        wait_for(&mut b.status, |s| s.role == Role::Leader).await;
        b.shutdown().await;
    }

    struct Echo;
    impl Outbound for Echo {
        fn channel(&self) -> Channel {
            Channel::WebChat
        }
        fn send<'a>(&'a self, _item: &'a OutboxItem) -> SendFuture<'a> {
            Box::pin(async {
                Ok(Sent {
                    account: "widget".into(),
                    external_id: None,
                })
            })
        }
    }

    #[tokio::test]
    async fn the_leader_sends_queued_replies() {
        use crate::identity::Claim;
        use crate::ingest::{self, Inbound, Ingested};
        use crate::model::{Delivery, Direction, IdentityKind};

        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_dir(dir.path()).unwrap();
        let msg = Inbound {
            channel: Channel::WebChat,
            account: String::new(),
            external_id: "w1".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::WebChat, "visitor-1"),
            linked: vec![],
            customer_name: None,
            author: None,
            subject: None,
            body: "hello?".into(),
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        };
        let Ingested::Stored { conversation, .. } =
            ingest::ingest(&mut store, &msg, &ingest::Settings::default()).unwrap()
        else {
            panic!("duplicate")
        };
        let web = store
            .queue_reply(conversation, Channel::WebChat, "bob", "hi!", now_millis())
            .unwrap();

        let mut opts = fast(dir.path());
        opts.senders.push(Arc::new(Echo));
        let mut w = spawn_with(opts).unwrap();
        wait_for(&mut w.status, |s| s.role == Role::Leader).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.message(web).unwrap().delivery != Some(Delivery::Sent) {
            assert!(Instant::now() < deadline, "never sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.message(web).unwrap().account, "widget");
        assert_eq!(store.outbox_counts().unwrap(), (0, 0));
        w.shutdown().await;
    }

    /// Counts its sends and when each happened.
    struct Counting(std::sync::Mutex<Vec<(crate::model::MessageId, i64)>>);
    impl Outbound for Counting {
        fn channel(&self) -> Channel {
            Channel::WebChat
        }
        fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
            self.0.lock().unwrap().push((item.message_id, now_millis()));
            Box::pin(async {
                Ok(Sent {
                    account: "widget".into(),
                    external_id: None,
                })
            })
        }
    }

    /// `:send-at`: a reply scheduled for one second ahead is not sent by the worker running
    /// before its time, survives that worker's restart, and goes out exactly once, at (not
    /// before) its time, from the restarted one.
    #[tokio::test]
    async fn a_scheduled_reply_goes_out_once_at_its_time_across_a_restart() {
        use crate::identity::Claim;
        use crate::ingest::{self, Inbound, Ingested};
        use crate::model::{Delivery, Direction, IdentityKind};

        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_dir(dir.path()).unwrap();
        let msg = Inbound {
            channel: Channel::WebChat,
            account: String::new(),
            external_id: "w1".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::WebChat, "visitor-1"),
            linked: vec![],
            customer_name: None,
            author: None,
            subject: None,
            body: "hello?".into(),
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        };
        let Ingested::Stored { conversation, .. } =
            ingest::ingest(&mut store, &msg, &ingest::Settings::default()).unwrap()
        else {
            panic!("duplicate")
        };
        let now = now_millis();
        let send_at = now + 1000;
        let id = store
            .schedule_reply(
                conversation,
                Channel::WebChat,
                "bob",
                "later!",
                now,
                send_at,
                None,
            )
            .unwrap();
        let sender = Arc::new(Counting(std::sync::Mutex::new(Vec::new())));

        // The first worker runs until just before the time, then stops (a restart).
        let mut opts = fast(dir.path());
        opts.senders.push(sender.clone());
        let mut w = spawn_with(opts.clone()).unwrap();
        wait_for(&mut w.status, |s| s.role == Role::Leader).await;
        tokio::time::sleep(Duration::from_millis(
            (send_at - now_millis() - 300).max(0) as u64
        ))
        .await;
        w.shutdown().await;
        assert!(sender.0.lock().unwrap().is_empty(), "sent before its time");
        assert_eq!(store.message(id).unwrap().delivery, Some(Delivery::Queued));

        let mut w = spawn_with(opts).unwrap();
        wait_for(&mut w.status, |s| s.role == Role::Leader).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.message(id).unwrap().delivery != Some(Delivery::Sent) {
            assert!(Instant::now() < deadline, "never sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Give a second send every chance to happen.
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.shutdown().await;
        let sends = sender.0.lock().unwrap().clone();
        assert_eq!(sends.len(), 1, "{sends:?}");
        assert_eq!(sends[0].0, id);
        assert!(
            sends[0].1 >= send_at,
            "sent {} ms early",
            send_at - sends[0].1
        );
        assert_eq!(store.outbox_counts().unwrap(), (0, 0));
    }

    #[test]
    fn spawn_outside_a_runtime_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(spawn_with(WorkerOptions::new(dir.path())).is_err());
    }
}
