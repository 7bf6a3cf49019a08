//! Notifications on the server: derived from the events table as the feed sees new events
//! (and once at start, from the durable cursor: nothing written while no server ran is lost),
//! pushed at once to the sessions of the agent they belong to, listed and marked read per
//! agent. The rules and the storage are the store's ([`crate::store::notifications`]).

use super::{Identity, Shared};
use crate::api::{NotificationPage, Response};
use crate::store::{NotificationRow, NotifyAgent, Scope, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most rows one notifications page carries.
const MAX_PAGE: usize = 1000;

/// What one agent's sessions are told: new notifications (oldest first; none when only the
/// read state changed) and their unread count now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotifyBatch {
    pub agent: String,
    pub rows: Vec<NotificationRow>,
    pub unread: i64,
}

/// Everyone the derivation may notify: the workspace's agents with what each can see, and
/// the server's own user's agent (an admin) when the workspace does not name it.
pub(crate) fn agents(config: &crate::config::Config) -> Vec<NotifyAgent> {
    let mut out: Vec<NotifyAgent> = config
        .workspace
        .agents
        .iter()
        .map(|a| NotifyAgent {
            name: a.name.clone(),
            scope: match a.role {
                crate::api::Role::Admin => Scope::all(a.name.clone()),
                _ => Scope::teams(a.name.clone(), a.teams.iter().cloned()),
            },
        })
        .collect();
    if !config.agent.is_empty() && !out.iter().any(|a| a.name == config.agent) {
        out.push(NotifyAgent {
            name: config.agent.clone(),
            scope: Scope::all(config.agent.clone()),
        });
    }
    out
}

/// Derive what the events after the cursor cause, and group it per agent with their unread
/// counts. Blocking (store work).
pub(crate) fn derive(
    store: &mut Store,
    agents: &[NotifyAgent],
) -> anyhow::Result<Vec<NotifyBatch>> {
    store.set_scope(Scope::all("server"))?;
    let derived = store.derive_notifications(agents)?;
    let mut per: BTreeMap<String, Vec<NotificationRow>> = BTreeMap::new();
    for r in derived.rows {
        per.entry(r.agent.clone()).or_default().push(r);
    }
    let mut out = Vec::with_capacity(per.len());
    for (agent, rows) in per {
        let unread = store.unread_notifications(&agent)?;
        out.push(NotifyBatch {
            agent,
            rows,
            unread,
        });
    }
    Ok(out)
}

/// Derive on a pooled connection and push each agent's batch to their sessions.
pub(crate) async fn derive_and_push(shared: &Arc<Shared>) {
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<NotifyBatch>> {
        let mut store = sh.take_store()?;
        let r = derive(&mut store, &sh.notify_agents);
        sh.give_store(store);
        r
    })
    .await;
    match done {
        Ok(Ok(batches)) => {
            for b in batches {
                tracing::debug!(agent = %b.agent, new = b.rows.len(), "notifications");
                // No receiver (no session open) is fine: the rows wait in the store.
                let _ = shared.notify.send(Arc::new(b));
            }
        }
        Ok(Err(e)) => tracing::warn!("deriving notifications: {e}"),
        Err(e) => tracing::warn!("deriving notifications: {e}"),
    }
}

/// After a request: marking read tells the agent's other sessions the new unread count.
pub(crate) fn after_request(shared: &Shared, who: &Identity, resp: &Response) {
    if let Response::NotificationsRead { ids, unread } = resp
        && !ids.is_empty()
    {
        let _ = shared.notify.send(Arc::new(NotifyBatch {
            agent: who.agent.clone(),
            rows: Vec::new(),
            unread: *unread,
        }));
    }
}

/// [`crate::api::Request::Notifications`]: a page of the agent's own notifications.
pub(crate) fn page(
    store: &Store,
    agent: &str,
    seq: u64,
    page: NotificationPage,
    limit: usize,
    unread_only: bool,
) -> anyhow::Result<Response> {
    let (rows, more) = if limit == 0 {
        (Vec::new(), false)
    } else {
        store.notifications_page(agent, page, limit.min(MAX_PAGE), unread_only)?
    };
    Ok(Response::Notifications {
        seq,
        page,
        rows,
        more,
        unread: store.unread_notifications(agent)?,
    })
}

/// [`crate::api::Request::MarkNotificationsRead`].
pub(crate) fn mark_read(
    store: &mut Store,
    agent: &str,
    ids: &[i64],
    all: bool,
) -> anyhow::Result<Response> {
    let ids = store.mark_notifications_read(agent, ids, all, crate::model::now_millis())?;
    Ok(Response::NotificationsRead {
        ids,
        unread: store.unread_notifications(agent)?,
    })
}
