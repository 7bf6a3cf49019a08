//! Email: IMAP in, SMTP out, and raw RFC 5322 messages through the one ingest path.
//!
//! - [`account`]: `[[email]]` in the config;
//! - [`net`]: TCP/TLS/STARTTLS connections and IMAP login, each step with a time limit;
//! - [`imap`]: folder sync (newest first, UIDVALIDITY, cursors in the ingest transaction);
//! - [`smtp`]: the email channel's sender (Message-ID fixed first, Sent folder, no double send);
//! - [`mime`]: one raw message -> [`ParsedEmail`] (an [`crate::ingest::Inbound`] plus its
//!   threading headers), bounded against hostile input;
//! - [`thread`]: Message-ID / In-Reply-To / References on top of omnichannel threading;
//! - [`import`]: `braid import maildir|mbox PATH`.
//!
//! One [`Account`] per configured mailbox is shared by its folder tasks ([`run`]) and by the
//! sender; it carries the status line's text.

pub mod account;
pub mod imap;
pub mod import;
pub mod mime;
pub mod net;
pub mod smtp;
pub mod thread;

pub use account::{EmailAccount, RawEmailAccount, Security};
pub use imap::{FolderCursor, PassReport};
pub use mime::{EmailParser, Limits, Options, ParsedEmail};
pub use net::NetError;
pub use smtp::EmailSender;
pub use thread::ingest_email;

use imap::{FolderSync, Ingestor};
use net::{ImapSession, timed};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_rustls::rustls::ClientConfig;

/// After the server refused our login, wait this long before trying again (the password will
/// not fix itself; hammering the server may lock the account).
pub const AUTH_RETRY: Duration = Duration::from_secs(15 * 60);
/// Reconnect delays double from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

/// What one folder task is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FolderState {
    Connecting,
    Syncing { done: usize, total: usize },
    Idle,
    Retrying { until: Instant, reason: String },
    LoginRefused { until: Instant, reason: String },
}

/// One configured mailbox at run time.
pub struct Account {
    pub config: EmailAccount,
    settings: crate::ingest::Settings,
    tls: OnceLock<Result<Arc<ClientConfig>, NetError>>,
    folders: Mutex<BTreeMap<String, FolderState>>,
    note: Mutex<Option<(Instant, String)>>,
}

impl Account {
    pub fn new(config: EmailAccount, settings: crate::ingest::Settings) -> Arc<Account> {
        Arc::new(Account {
            config,
            settings,
            tls: OnceLock::new(),
            folders: Mutex::new(BTreeMap::new()),
            note: Mutex::new(None),
        })
    }

    /// The account's password, from its command or variable (read at every login, so a fixed
    /// password is picked up without a restart).
    pub async fn password(&self) -> Result<String, NetError> {
        let place = format!("[[email]] {}", self.config.name);
        crate::secret::resolve(&self.config.password, "password", &place, false)
            .await
            .map_err(NetError::Setup)
    }

    fn tls(&self) -> Result<Arc<ClientConfig>, NetError> {
        self.tls
            .get_or_init(|| net::tls_config(&self.config))
            .clone()
    }

    /// Connect and log in to the IMAP server.
    pub async fn login(&self) -> Result<ImapSession, NetError> {
        let tls = self.tls()?;
        let password = self.password().await?;
        net::imap_login(&self.config, &password, tls).await
    }

    fn set(&self, folder: &str, state: FolderState) {
        let mut g = self.folders.lock().unwrap_or_else(PoisonError::into_inner);
        g.insert(folder.to_string(), state);
    }

    /// Shown in the status for a minute.
    pub(crate) fn report_error(&self, text: String) {
        *self.note.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), text));
    }

    /// One line for the status bar: "email support: syncing INBOX 1,200/10,000",
    /// "email support: idle", "email support: reconnecting in 8 s (connection refused)".
    pub fn status(&self) -> String {
        let name = &self.config.name;
        let g = self.folders.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let secs = |until: &Instant| until.saturating_duration_since(now).as_secs();
        let mut text = None;
        for s in g.values() {
            if let FolderState::LoginRefused { until, reason } = s {
                text = Some(format!(
                    "email {name}: {reason}; check the password (next try in {} min)",
                    secs(until).div_ceil(60)
                ));
                break;
            }
        }
        if text.is_none() {
            for (folder, s) in g.iter() {
                if let FolderState::Retrying { until, reason } = s {
                    text = Some(format!(
                        "email {name}: {folder} reconnecting in {} s ({reason})",
                        secs(until)
                    ));
                    break;
                }
            }
        }
        if text.is_none() {
            for (folder, s) in g.iter() {
                if let FolderState::Syncing { done, total } = s {
                    text = Some(format!(
                        "email {name}: syncing {folder} {}/{}",
                        thousands(*done),
                        thousands(*total)
                    ));
                    break;
                }
            }
        }
        let text = text.unwrap_or_else(|| {
            if g.is_empty() || g.values().any(|s| *s == FolderState::Connecting) {
                format!("email {name}: connecting")
            } else {
                format!("email {name}: idle")
            }
        });
        drop(g);
        let note = self.note.lock().unwrap_or_else(PoisonError::into_inner);
        match note.as_ref() {
            Some((at, n)) if at.elapsed() < Duration::from_secs(60) => format!("{text} · {n}"),
            _ => text,
        }
    }
}

impl imap::Progress for Account {
    fn syncing(&self, folder: &str, done: usize, total: usize) {
        self.set(folder, FolderState::Syncing { done, total });
    }
}

fn thousands(n: usize) -> String {
    crate::units::thousands(n as u64)
}

fn folder_sync<'a>(account: &'a Account, folder: &'a str, ingest: &'a Ingestor) -> FolderSync<'a> {
    FolderSync {
        account: &account.config,
        folder,
        ingest,
        progress: account,
        max_message_bytes: Limits::default().max_message_bytes,
    }
}

/// One full pass over every folder of the account (`braid sync --once`): new mail and all older
/// mail not yet stored. Stops at the first error.
pub async fn sync_once(
    account: &Arc<Account>,
    store_path: &Path,
) -> Result<Vec<(String, PassReport)>, NetError> {
    let ingest = Ingestor::start(store_path, &account.config, account.settings.clone())?;
    let mut out = Vec::new();
    for folder in account.config.synced_folders() {
        let mut sess = account.login().await?;
        let sync = folder_sync(account, &folder, &ingest);
        let report = sync.pass(&mut sess, &|| false).await;
        let _ = tokio::time::timeout(account.config.timeout, sess.logout()).await;
        account.set(&folder, FolderState::Idle);
        out.push((folder.clone(), report?));
    }
    Ok(out)
}

/// Keep the account's folders synced until `stop` turns true: one task (and one IMAP
/// connection) per folder.
pub async fn run(account: Arc<Account>, store_path: PathBuf, stop: watch::Receiver<bool>) {
    let ingest = match Ingestor::start(&store_path, &account.config, account.settings.clone()) {
        Ok(i) => i,
        Err(e) => {
            account.report_error(e.to_string());
            tracing::warn!("email {}: {e}", account.config.name);
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for folder in account.config.synced_folders() {
        tasks.spawn(run_folder(
            Arc::clone(&account),
            folder,
            ingest.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Wait `d`, or until asked to stop. True: stop.
async fn stop_or_sleep(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        _ = tokio::time::sleep(d) => false,
    }
}

async fn run_folder(
    account: Arc<Account>,
    folder: String,
    ingest: Ingestor,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        if *stop.borrow() {
            return;
        }
        account.set(&folder, FolderState::Connecting);
        let mut synced = false;
        let result = session(&account, &folder, &ingest, &mut stop, &mut synced).await;
        let e = match result {
            Ok(()) => return,
            Err(e) => e,
        };
        if synced {
            backoff = BACKOFF_FIRST;
        }
        let name = &account.config.name;
        let wait = if e.is_auth() {
            tracing::warn!(
                "email {name}: {e}; next login attempt in {} min",
                AUTH_RETRY.as_secs() / 60
            );
            account.set(
                &folder,
                FolderState::LoginRefused {
                    until: Instant::now() + AUTH_RETRY,
                    reason: e.to_string(),
                },
            );
            AUTH_RETRY
        } else {
            let wait = backoff;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            tracing::warn!(
                "email {name}: {folder}: {e}; reconnecting in {} s",
                wait.as_secs()
            );
            account.set(
                &folder,
                FolderState::Retrying {
                    until: Instant::now() + wait,
                    reason: e.to_string(),
                },
            );
            wait
        };
        if stop_or_sleep(&mut stop, wait).await {
            return;
        }
    }
}

/// One connection's life: sync, IDLE, sync... until an error or `stop`.
async fn session(
    account: &Account,
    folder: &str,
    ingest: &Ingestor,
    stop: &mut watch::Receiver<bool>,
    synced: &mut bool,
) -> Result<(), NetError> {
    let limit = account.config.timeout;
    let mut sess = account.login().await?;
    let can_idle = timed(limit, "CAPABILITY", sess.capabilities())
        .await?
        .has_str("IDLE");
    let sync = folder_sync(account, folder, ingest);
    let watcher = stop.clone();
    let stopped = move || *watcher.borrow();
    loop {
        let report = sync.pass(&mut sess, &stopped).await?;
        *synced = true;
        if report.fetched > 0 || report.uidvalidity_changed {
            tracing::info!(
                account = %account.config.name,
                folder,
                fetched = report.fetched,
                stored = report.stored.stored,
                matched = report.matched,
                "synced"
            );
        }
        if stopped() {
            let _ = tokio::time::timeout(limit, sess.logout()).await;
            return Ok(());
        }
        account.set(folder, FolderState::Idle);
        if !can_idle {
            if stop_or_sleep(
                stop,
                account.config.idle_refresh.min(Duration::from_secs(60)),
            )
            .await
            {
                return Ok(());
            }
            continue;
        }
        let mut idle = sess.idle();
        timed(limit, "IDLE", idle.init()).await?;
        let stop_now = {
            let (wait, _interrupt) = idle.wait();
            tokio::select! {
                r = tokio::time::timeout(account.config.idle_refresh, wait) => match r {
                    Ok(Ok(_news)) => false,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_refresh) => false,
                },
                _ = stop.changed() => true,
            }
        };
        sess = timed(limit, "DONE", idle.done()).await?;
        if stop_now {
            let _ = tokio::time::timeout(limit, sess.logout()).await;
            return Ok(());
        }
    }
}
