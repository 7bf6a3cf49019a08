//! One full pass of every configured channel, then done (`braid sync --once`): email (every
//! folder, new mail and all older mail not stored yet), Telegram (the updates waiting now), the
//! outbox (every reply due now). The server's own half of `braid sync`: it runs the channels, so
//! it lives here, beside the server that otherwise runs them; `cli/sync.rs` only prints.

use crate::worker::{Lease, holder_pid};
use anyhow::{Context, bail};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub folders: Vec<FolderJson>,
    pub telegram: Option<TelegramJson>,
    pub sent: usize,
    pub failed: usize,
    pub seconds: f64,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FolderJson {
    pub account: String,
    pub folder: String,
    pub listed: usize,
    pub fetched: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub matched: usize,
    pub uidvalidity_changed: bool,
    pub seconds: f64,
    pub messages_per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct TelegramJson {
    pub stored: usize,
    pub duplicates: usize,
    pub skipped: usize,
}

/// Take the worker lease and run one pass. Call with the data dir's server lock held (no server
/// may run the channels meanwhile).
pub async fn sync_once(config: &crate::config::Config) -> anyhow::Result<SyncReport> {
    let lease = Lease::try_acquire(&config.data_dir)
        .with_context(|| format!("worker lease in {}", config.data_dir.display()))?;
    let Some(lease) = lease else {
        let who = holder_pid(&config.data_dir)
            .map(|p| format!("pid {p}"))
            .unwrap_or_else(|| "another braid process".into());
        bail!("{who} runs the channels on this store and is syncing them already");
    };
    if config.email.is_empty() && config.telegram.is_none() {
        bail!("no channel configured to sync (add [[email]] or [telegram] to the config)");
    }
    let report = pass(config).await;
    drop(lease);
    report
}

async fn pass(config: &crate::config::Config) -> anyhow::Result<SyncReport> {
    let started = Instant::now();
    let store_path = config.data_dir.join(crate::store::DB_FILE);
    let opts = crate::worker::WorkerOptions::from_config(config);
    let mut report = SyncReport::default();
    for account in &opts.email {
        let t0 = Instant::now();
        match crate::channels::email::sync_once(account, &store_path).await {
            Ok(folders) => {
                let secs = t0.elapsed().as_secs_f64();
                for (folder, r) in folders {
                    report.folders.push(FolderJson {
                        account: account.config.name.clone(),
                        folder,
                        listed: r.listed,
                        fetched: r.fetched,
                        stored: r.stored.stored,
                        duplicates: r.stored.duplicates,
                        matched: r.matched,
                        uidvalidity_changed: r.uidvalidity_changed,
                        seconds: secs,
                        messages_per_second: if secs > 0.0 {
                            r.fetched as f64 / secs
                        } else {
                            0.0
                        },
                    });
                }
            }
            Err(e) => report
                .errors
                .push(format!("email {}: {e}", account.config.name)),
        }
    }
    if let Some(tg) = &opts.telegram {
        let store = crate::store::Store::open(&store_path)?;
        let poller = crate::channels::telegram::poll::Poller::new(Arc::clone(tg), store);
        match poller.poll_once(0).await {
            Ok(c) => {
                report.telegram = Some(TelegramJson {
                    stored: c.stored,
                    duplicates: c.duplicates,
                    skipped: c.skipped,
                })
            }
            Err(e) => report.errors.push(format!("telegram: {e}")),
        }
    }
    let store = crate::store::Store::open(&store_path)?;
    let mut dispatcher = crate::worker::Dispatcher::new(
        Arc::new(std::sync::Mutex::new(store)),
        crate::worker::Senders::new(opts.senders.iter().cloned()),
        opts.dispatch.clone(),
    );
    for (_, outcome) in dispatcher.run_until_idle().await? {
        match outcome {
            Ok(crate::worker::Outcome::Sent) => report.sent += 1,
            Ok(
                crate::worker::Outcome::Failed { reason, .. }
                | crate::worker::Outcome::Unclear { reason },
            ) => {
                report.failed += 1;
                tracing::info!("sync: a reply failed: {reason}");
            }
            Err(e) => report.errors.push(format!("outbox: {e}")),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
