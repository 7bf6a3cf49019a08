//! Tasks on the server: the due sweep (every few seconds: tasks that came due get their
//! `task_due` event once, and the assignee's notification derives from it) and closing tasks
//! by events (a call log for a contact closes its open `call` tasks), run where the server
//! follows the events feed. The rules are the store's ([`crate::store::tasks`]).

use super::Shared;
use crate::model::now_millis;
use crate::store::Scope;
use std::sync::Arc;
use std::time::Duration;

/// How often the due sweep runs.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Run one store job for the server (unscoped) on a pooled connection.
async fn with_store<T: Send + 'static>(
    shared: &Arc<Shared>,
    what: &'static str,
    job: impl FnOnce(&mut crate::store::Store) -> crate::store::Result<T> + Send + 'static,
) -> Option<T> {
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<T> {
        let mut store = sh.take_store()?;
        let r = store
            .set_scope(Scope::all("server"))
            .and_then(|_| job(&mut store));
        sh.give_store(store);
        Ok(r?)
    })
    .await;
    match done {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!("{what}: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("{what}: {e}");
            None
        }
    }
}

/// Close the tasks the new events close (a call log closes its contact's open call tasks).
pub(crate) async fn follow(shared: &Arc<Shared>) {
    if let Some(closed) = with_store(shared, "closing tasks by events", |s| {
        s.close_tasks_by_events(now_millis())
    })
    .await
        && !closed.is_empty()
    {
        tracing::info!(n = closed.len(), "tasks closed by a call log");
    }
}

/// Mark the tasks that came due (once each).
pub(crate) async fn sweep(shared: &Arc<Shared>) {
    if let Some(due) = with_store(shared, "the task due sweep", |s| {
        s.sweep_due_tasks(now_millis())
    })
    .await
        && !due.is_empty()
    {
        tracing::info!(n = due.len(), "tasks due");
    }
}

/// The due sweep, forever.
pub(crate) async fn sweep_loop(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        sweep(&shared).await;
    }
}
