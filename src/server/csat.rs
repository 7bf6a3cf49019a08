//! CSAT surveys on the server: after each batch of events, the resolutions they hold send
//! their conversation's survey (the store's `csat` derivation, from its durable cursor, so a
//! resolution while no server ran is surveyed at the next start, and never twice). Off the
//! async tasks (`spawn_blocking`), on a pooled store. The outbox carries the surveys.

use super::Shared;
use crate::store::Scope;
use std::sync::Arc;
use std::time::Duration;

/// How often delayed surveys (`[csat] delay`) that came due are sent.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Send the surveys the new events call for. Runs even with surveys off: the cursor moves,
/// so turning them on later does not survey the past.
pub(crate) async fn derive(shared: &Arc<Shared>) {
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<crate::store::CsatPass> {
        let mut store = sh.take_store()?;
        let r = (|| -> anyhow::Result<crate::store::CsatPass> {
            store.set_scope(Scope::all("csat"))?;
            Ok(store.derive_csat(&sh.config.workspace.csat, crate::model::now_millis())?)
        })();
        sh.give_store(store);
        r
    })
    .await;
    report(done);
}

/// Send the delayed surveys now due.
pub(crate) async fn sweep(shared: &Arc<Shared>) {
    if !shared.config.workspace.csat.enabled || shared.config.workspace.csat.delay_ms == 0 {
        return;
    }
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<crate::store::CsatPass> {
        let mut store = sh.take_store()?;
        let r = (|| -> anyhow::Result<crate::store::CsatPass> {
            store.set_scope(Scope::all("csat"))?;
            Ok(store.csat_sweep(&sh.config.workspace.csat, crate::model::now_millis())?)
        })();
        sh.give_store(store);
        r
    })
    .await;
    report(done);
}

/// The sweep's loop (a server task).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        sweep(&shared).await;
    }
}

fn report(done: Result<anyhow::Result<crate::store::CsatPass>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(p)) => {
            if p.sent + p.skipped > 0 {
                tracing::debug!(sent = p.sent, skipped = p.skipped, "csat surveys");
            }
        }
        Ok(Err(e)) => tracing::warn!("CSAT surveys: {e}"),
        Err(e) => tracing::warn!("CSAT surveys: {e}"),
    }
}
