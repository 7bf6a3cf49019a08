//! SLA on the server: after each batch of events the deadlines of the conversations they
//! touched are recomputed (the store's `sla` derivation, from its durable cursor), and every
//! few seconds the sweep marks deadlines warned or breached (events the notifications and
//! the rules derive from). Both off the async tasks (`spawn_blocking`), on pooled stores.

use super::Shared;
use crate::store::Scope;
use std::sync::Arc;
use std::time::Duration;

/// How often the sweep runs.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Recompute deadlines after new events, then sweep. Blocking work on a pooled store.
pub(crate) async fn derive_and_sweep(shared: &Arc<Shared>, sweep: bool) {
    if shared.config.workspace.sla.policies.is_empty() {
        return;
    }
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut store = sh.take_store()?;
        let r = (|| -> anyhow::Result<()> {
            store.set_scope(Scope::all("sla"))?;
            let cfg = &sh.config.workspace.sla;
            store.derive_sla(cfg)?;
            if sweep {
                let s = store.sla_sweep(cfg, crate::model::now_millis())?;
                if s.warned + s.breached > 0 {
                    tracing::debug!(warned = s.warned, breached = s.breached, "sla sweep");
                }
            }
            Ok(())
        })();
        sh.give_store(store);
        r
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("SLA deadlines: {e}"),
        Err(e) => tracing::warn!("SLA deadlines: {e}"),
    }
}

/// The sweep's loop (a server task).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        derive_and_sweep(&shared, true).await;
    }
}
