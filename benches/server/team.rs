//! 5. Working as a team, on the same server after the load run: 50 agent connections.
//!
//! - **presence change → other screens**: one connection reports a new presence (another
//!   conversation, typing or viewing); the time until each OTHER connection has been pushed a
//!   presence list showing it. Changes are made one at a time (each waits for every delivery),
//!   cycling through the connections.
//! - **notification delivery**: a customer's message (a web chat visitor) in a conversation
//!   assigned to the agent → the notification pushed to each of the agent's sessions.

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

/// Notification delivery: a customer's message in a conversation assigned to the agent → the
/// notification pushed to each of the agent's `agents` sessions. The bench's connections are all
/// the server's own user (one agent), so the message comes from a web chat visitor: the path a
/// real "new customer message in your conversation" takes (the channel stores it, the server
/// derives the notification from the events table and pushes it to that agent's sessions).
pub async fn notification_delivery(
    sock: &Path,
    webchat: std::net::SocketAddr,
    agents: usize,
    messages: usize,
    errors: &Arc<Errors>,
) -> anyhow::Result<Samples> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut conns: Vec<(Connection, UnboundedReceiver<Incoming>)> = Vec::new();
    for i in 0..agents.max(1) {
        conns.push(connect_socket(sock, Hello::new(&format!("notified {i}"), None)).await?);
    }
    let agent = conns[0].0.welcome().agent.clone();
    // A visitor, its first message, and the conversation it made (from the pushed events).
    let mut req = format!("ws://{webchat}/ws").into_client_request()?;
    req.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{webchat}"))?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::Text(r#"{"type":"hello","visitor":null}"#.into()))
        .await?;
    // A word no other message has: the search finds the visitor's conversation.
    let nonce = format!("benchnonce{}", std::process::id());
    ws.send(Message::Text(
        format!(r#"{{"type":"msg","id":"n0","text":"notification bench {nonce}"}}"#).into(),
    ))
    .await?;
    next_ack(&mut ws, "n0").await?;
    let conversation = match conns[0]
        .0
        .call(Request::Search {
            query: nonce.clone(),
            limit: 1,
        })
        .await?
    {
        Response::Hits(h) if !h.is_empty() => h[0].conversation_id,
        other => anyhow::bail!("the visitor's message is not found: {other:?}"),
    };
    let r = conns[0]
        .0
        .call(Request::Write {
            conversation,
            contact: braid::model::ContactId(0),
            write: braid::api::Write::Verb(braid::actions::Verb::Assign(Some(agent.clone()))),
        })
        .await?;
    if !matches!(r, Response::Done(_)) {
        anyhow::bail!("assigning the visitor's conversation: {r:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (_, rx) in conns.iter_mut() {
        while rx.try_recv().is_ok() {}
    }
    let mut out = Samples::default();
    let mut other: Vec<String> = Vec::new();
    for k in 1..=messages {
        let id = format!("n{k}");
        let t = Instant::now();
        ws.send(Message::Text(
            format!(r#"{{"type":"msg","id":"{id}","text":"notification bench: message {k}"}}"#)
                .into(),
        ))
        .await?;
        for (i, (_, rx)) in conns.iter_mut().enumerate() {
            let got = tokio::time::timeout(DELIVERY_TIMEOUT, async {
                loop {
                    match rx.recv().await {
                        Some(Incoming::Notification { rows, .. }) => {
                            if rows.iter().any(|n| n.conversation_id == Some(conversation)) {
                                return Some(Instant::now());
                            }
                            other.extend(rows.iter().map(|n| format!("{:?}", n.conversation_id)));
                        }
                        Some(_) => continue,
                        None => return None,
                    }
                }
            })
            .await;
            match got {
                Ok(Some(at)) => out.push(at - t),
                _ => {
                    // One missed delivery says enough: do not wait out every other one.
                    errors.add(format!(
                        "notification {k} (#{conversation}, assigned to {agent}) to session {i}: not within 10 s; notifications seen for: {other:?}"
                    ));
                    return Ok(out);
                }
            }
        }
        next_ack(&mut ws, &id).await?;
    }
    let _ = ws.close(None).await;
    let _ = ws.next().await;
    Ok(out)
}

/// Wait for the web chat's ack of message `id` (agent replies pushed meanwhile are skipped).
async fn next_ack(ws: &mut super::Ws, id: &str) -> anyhow::Result<()> {
    loop {
        match super::ws_next(ws).await {
            Ok(braid::channels::webchat::protocol::ServerFrame::Ack { id: got }) if got == id => {
                return Ok(());
            }
            Ok(_) => continue,
            Err(e) => anyhow::bail!("web chat: {e}"),
        }
    }
}
