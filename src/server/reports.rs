//! Reports on the server: the reporting facts are derived from the events table after each
//! batch of events (the store's `reports` derivation, from its durable cursor), and a store
//! new to them (an upgrade, a bulk-loaded demo) is backfilled once when the server starts,
//! with a progress bar on a terminal. Both off the async tasks, on pooled stores.

use super::Shared;
use crate::store::reports::Progress;
use crate::store::{Scope, Store};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

/// Derive the facts of the events since the cursor. Blocking work on a pooled store.
pub(crate) async fn derive(shared: &Arc<Shared>) {
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut store = sh.take_store()?;
        let r = catch_up(&mut store, &sh.config.workspace.sla, &mut progress_bar());
        sh.give_store(store);
        r
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("reporting facts: {e}"),
        Err(e) => tracing::warn!("reporting facts: {e}"),
    }
}

/// Bring the facts up to date on this store.
pub(crate) fn catch_up(
    store: &mut Store,
    cfg: &crate::sla::SlaConfig,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<()> {
    store.set_scope(Scope::all("reports"))?;
    store.derive_reports(cfg, progress)?;
    Ok(())
}

/// A backfill's progress: a bar on stderr when it is a terminal (the server is starting,
/// the TUI has not taken the screen yet), else a log line every 10%.
pub fn progress_bar() -> impl FnMut(Progress) {
    let tty = std::io::stderr().is_terminal();
    let mut last_tenth = usize::MAX;
    let started = std::time::Instant::now();
    move |p: Progress| {
        if p.total == 0 {
            return;
        }
        let tenth = p.done * 10 / p.total;
        if tty {
            let width = 30;
            let filled = p.done * width / p.total;
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r  reports: backfilling [{}{}] {:>3}%  {} / {} conversations",
                "#".repeat(filled),
                " ".repeat(width - filled),
                p.done * 100 / p.total,
                p.done,
                p.total
            );
            if p.done >= p.total {
                let _ = writeln!(err, "  ({:.1} s)", started.elapsed().as_secs_f64());
            }
            let _ = err.flush();
        } else if tenth != last_tenth {
            tracing::info!(
                done = p.done,
                total = p.total,
                "reports: backfilling the history"
            );
        }
        last_tenth = tenth;
    }
}
