//! 5. Working as a team, on the same server after the load run: 50 agent connections.
//!
//! - **presence change → other screens**: one connection reports a new presence (another
//!   conversation, typing or viewing); the time until each OTHER connection has been pushed a
//!   presence list showing it. Changes are made one at a time (each waits for every delivery),
//!   cycling through the connections.

use super::{Errors, Samples};
use braid::api::paths::connect_socket;
use braid::api::{Activity, Connection, Hello, Incoming, PresenceEntry, Request, Response};
use braid::model::ConversationId;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long one delivery may take before the bench calls it missed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait on `rx` for a presence list in which `ok` holds; drop everything else.
async fn presence_until(
    rx: &mut UnboundedReceiver<Incoming>,
    ok: impl Fn(&[PresenceEntry]) -> bool,
) -> Result<Instant, String> {
    tokio::time::timeout(DELIVERY_TIMEOUT, async {
        loop {
            match rx.recv().await {
                Some(Incoming::Presence(online)) if ok(&online) => return Ok(Instant::now()),
                Some(Incoming::Closed(why)) => return Err(why),
                Some(_) => continue,
                None => return Err("connection closed".into()),
            }
        }
    })
    .await
    .map_err(|_| format!("no presence push within {DELIVERY_TIMEOUT:?}"))?
}

/// Presence change → other screens, over `agents` connections, `changes` changes.
pub async fn presence(
    sock: &Path,
    agents: usize,
    changes: usize,
    errors: &Arc<Errors>,
) -> anyhow::Result<Samples> {
    let agents = agents.max(2);
    let mut conns: Vec<(Connection, UnboundedReceiver<Incoming>)> = Vec::new();
    for i in 0..agents {
        let (c, mut rx) = connect_socket(sock, Hello::new(&format!("presence {i}"), None)).await?;
        let r = c
            .call(Request::Presence {
                conversation: None,
                activity: Activity::Viewing,
            })
            .await?;
        if r != Response::Ack {
            anyhow::bail!("presence answered {r:?}");
        }
        // Its first list (itself included).
        presence_until(&mut rx, |_| true)
            .await
            .map_err(anyhow::Error::msg)?;
        conns.push((c, rx));
    }
    // Let every join settle, then drop what is queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (_, rx) in conns.iter_mut() {
        while rx.try_recv().is_ok() {}
    }
    let mut out = Samples::default();
    for k in 0..changes {
        let who = k % agents;
        // A conversation no earlier change used (the workspace has more than `changes`): the
        // change is recognisable in every list.
        let conversation = ConversationId(1 + k as i64);
        let activity = if k % 2 == 0 {
            Activity::Reply
        } else {
            Activity::Viewing
        };
        let t = Instant::now();
        conns[who].0.send(Request::Presence {
            conversation: Some(conversation),
            activity,
        })?;
        for (i, (_, rx)) in conns.iter_mut().enumerate() {
            if i == who {
                continue;
            }
            match presence_until(rx, |o| {
                o.iter()
                    .any(|e| e.conversation == Some(conversation) && e.activity == activity)
            })
            .await
            {
                Ok(at) => out.push(at - t),
                Err(e) => errors.add(format!("presence to connection {i}: {e}")),
            }
        }
    }
    Ok(out)
}
