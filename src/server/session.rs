//! One client connection: the handshake (version, identity), then requests in order and pushes.
//!
//! Requests of one session run one at a time, in the order sent (a reply then a reload sees the
//! reply); when several are waiting, one superseded by a newer of the same slot (holding `j`
//! asks for many timelines) is answered `Superseded` without running. Pushes go out between
//! answers, filtered to what the agent may see.

use super::{Identity, Shared, handler, identity};
use crate::api::{
    ClientFrame, Hello, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Request, Response, ServerFrame,
    Welcome, codec,
};
use crate::model::EventId;
use crate::store::EventRow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, watch};

/// How long a client has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A reconnecting client is replayed at most this many missed events; past that it reloads.
const MAX_REPLAY: usize = 5000;

/// Who is on the other end, before the workspace config is asked.
pub(crate) enum Peer {
    /// The kernel's word (`SO_PEERCRED`, or this process for an in-memory pipe).
    Uid(u32),
    /// An in-process connection viewing as a workspace agent (see `connect_local_as`).
    As(Identity),
}

pub(crate) async fn run<S>(shared: Arc<Shared>, stream: S, peer: Peer, stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut rd)).await {
        Ok(Ok(h)) => h,
        Ok(Err(reason)) => {
            let _ = codec::write(&mut wr, &ServerFrame::Refused { reason }).await;
            return;
        }
        Err(_) => return,
    };
    // Version: the highest both speak.
    let version = hello.max_version.min(PROTOCOL_VERSION);
    if version < hello.min_version || version < MIN_PROTOCOL_VERSION {
        let reason = format!(
            "this braid server speaks protocol {MIN_PROTOCOL_VERSION}-{PROTOCOL_VERSION} (braid {}); your {} speaks {}-{}: use the same braid version on both sides",
            env!("CARGO_PKG_VERSION"),
            crate::sanitize::for_terminal_line(&hello.client),
            hello.min_version,
            hello.max_version
        );
        tracing::info!("refused a client: {reason}");
        let _ = codec::write(&mut wr, &ServerFrame::Refused { reason }).await;
        return;
    }
    let uid = match &peer {
        Peer::Uid(u) => *u,
        Peer::As(who) => who.uid,
    };
    let identified = match peer {
        Peer::As(who) => Ok(who),
        Peer::Uid(uid) => identity::identify(
            uid,
            &shared.config.workspace,
            shared.owner_uid,
            &shared.config.agent,
            &shared.config_path,
        ),
    };
    let who = match identified {
        Ok(w) => w,
        Err(reason) => {
            tracing::warn!(uid, "refused a connection: {reason}");
            audit_connection_refused(&shared, uid, &reason).await;
            let _ = codec::write(&mut wr, &ServerFrame::Refused { reason }).await;
            return;
        }
    };
    let who = Arc::new(who);
    tracing::info!(agent = %who.agent, user = %who.user, role = %who.role, client = %crate::sanitize::for_terminal_line(&hello.client), "connected");

    // Subscribe before reading the newest event id: nothing falls between the two.
    let mut pushes = shared.events.subscribe();
    let last = match with_store(&shared, &who, |s| Ok(s.last_event_id()?)).await {
        Ok(l) => l,
        Err(e) => {
            let reason = format!("the server cannot read its store: {e}");
            let _ = codec::write(&mut wr, &ServerFrame::Refused { reason }).await;
            return;
        }
    };
    let mut agents: Vec<String> = shared
        .config
        .workspace
        .agents
        .iter()
        .map(|a| a.name.clone())
        .collect();
    if !agents.contains(&who.agent) {
        agents.push(who.agent.clone());
    }
    let status = shared.status.borrow().summary();
    let welcome = Welcome {
        version,
        server: format!("braid {}", env!("CARGO_PKG_VERSION")),
        agent: who.agent.clone(),
        user: who.user.clone(),
        role: who.role,
        teams: who.teams.clone(),
        agents,
        workspace_teams: shared
            .config
            .workspace
            .teams
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        templates: shared.config.templates(),
        canned: shared
            .canned
            .current()
            .0
            .templates
            .iter()
            .map(|t| t.info())
            .collect(),
        macros: shared.config.macros.clone(),
        suggest: shared.config.suggest_command.is_some(),
        last_event: last,
        pending_after_reply: shared.config.pending_after_reply,
        status,
        data_dir: shared.config.data_dir.display().to_string(),
    };
    if codec::write(&mut wr, &ServerFrame::Welcome(welcome))
        .await
        .is_err()
    {
        return;
    }

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ServerFrame>();
    // Writer.
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if codec::write(&mut wr, &frame).await.is_err() {
                break;
            }
        }
    });

    // Replay what a reconnecting client missed, then follow the pushes from `last`.
    let mut sent_up_to = last;
    if let Some(after) = hello.resume_after
        && after < last
    {
        let replay = with_store(&shared, &who, move |s| {
            Ok(s.events_since(after, MAX_REPLAY + 1)?)
        })
        .await;
        match replay {
            Ok(events) if events.len() <= MAX_REPLAY => {
                let visible = visible(&shared, &who, events).await;
                if !visible.is_empty() {
                    let _ = out_tx.send(ServerFrame::Events {
                        events: visible,
                        last,
                    });
                }
            }
            _ => {
                let _ = out_tx.send(ServerFrame::Resync { last });
            }
        }
    }

    // This agent's notifications (new ones, and read state changed in another session): a
    // frame kind of protocol 2, never sent to a version-1 client (it would not read it).
    let notifier = {
        let speaks_notifications = version >= 2;
        let tx = out_tx.clone();
        let agent = who.agent.clone();
        let mut rx = shared.notify.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(b) if speaks_notifications && b.agent == agent => {
                        let frame = ServerFrame::Notification {
                            rows: b.rows.clone(),
                            unread: b.unread,
                        };
                        if tx.send(frame).is_err() {
                            break;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    };
    // Presence: this session's number, and whether its client follows presence (it reported
    // its own: a version-1 client never gets a frame kind it does not know).
    let session_id = shared.presence.session_id();
    let follows_presence = Arc::new(AtomicBool::new(false));
    let mut presence_rx = shared.presence.subscribe();

    // Pushes and status.
    let push_follows = Arc::clone(&follows_presence);
    let push_tx = out_tx.clone();
    let push_who = Arc::clone(&who);
    let push_shared = Arc::clone(&shared);
    let mut status_rx = shared.status.clone();
    let mut status_alive = true;
    let pusher = tokio::spawn(async move {
        loop {
            tokio::select! {
                got = pushes.recv() => match got {
                    Ok(batch) => {
                        if batch.last <= sent_up_to {
                            continue;
                        }
                        let events: Vec<EventRow> = batch
                            .events
                            .iter()
                            .filter(|e| e.id > sent_up_to)
                            .cloned()
                            .collect();
                        sent_up_to = batch.last;
                        let events = visible(&push_shared, &push_who, events).await;
                        if events.is_empty() {
                            continue;
                        }
                        if push_tx.send(ServerFrame::Events { events, last: batch.last }).is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // This client fell behind: it reloads instead of replaying.
                        let _ = push_tx.send(ServerFrame::Resync { last: sent_up_to });
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                changed = presence_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    presence_rx.borrow_and_update();
                    if push_follows.load(Ordering::Acquire) {
                        let online = push_shared.presence.view(&push_who.scope());
                        if push_tx.send(ServerFrame::Presence { online }).is_err() {
                            break;
                        }
                    }
                }
                changed = status_rx.changed(), if status_alive => {
                    if changed.is_err() {
                        // No worker (a one-shot command's server): stop watching, keep pushing.
                        status_alive = false;
                        continue;
                    }
                    let s = status_rx.borrow_and_update().clone();
                    if push_tx.send(ServerFrame::Status { line: s.summary(), error: s.last_error }).is_err() {
                        break;
                    }
                }
            }
        }
    });

    // Requests: a reader queues them, the runner answers them in order.
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<(u64, Request)>();
    let run_tx = out_tx.clone();
    let run_who = Arc::clone(&who);
    let run_shared = Arc::clone(&shared);
    let run_follows = Arc::clone(&follows_presence);
    let runner = tokio::spawn(async move {
        while let Some(first) = req_rx.recv().await {
            let mut batch = vec![first];
            while let Ok(r) = req_rx.try_recv() {
                batch.push(r);
            }
            let n = batch.len();
            for i in 0..n {
                let (id, req) = batch[i].clone();
                let slot = req.slot();
                let response =
                    if slot.is_some() && batch[i + 1..].iter().any(|(_, r)| r.slot() == slot) {
                        Response::Superseded
                    } else if let Request::Presence {
                        conversation,
                        activity,
                    } = req
                    {
                        // Follow first: the report's own change must reach this client too
                        // (set after it, the pusher could wake, see "not following", and
                        // leave this client without a list until someone else moves).
                        run_follows.store(true, Ordering::Release);
                        report_presence(&run_shared, &run_who, session_id, conversation, activity)
                            .await;
                        Response::Ack
                    } else if let Request::Who = req {
                        Response::Online(run_shared.presence.view(&run_who.scope()))
                    } else if let Request::Suggest { .. } | Request::WebhookTest { .. } = req {
                        // A suggestion runs a command, a webhook test waits for a receiver
                        // (seconds, maybe): answered on their own, so this client's other
                        // requests do not wait behind them.
                        let (tx, sh, w) = (
                            run_tx.clone(),
                            Arc::clone(&run_shared),
                            Arc::clone(&run_who),
                        );
                        tokio::spawn(async move {
                            let response = run_request(&sh, &w, req).await;
                            let _ = tx.send(ServerFrame::Response { id, response });
                        });
                        continue;
                    } else {
                        run_request(&run_shared, &run_who, req).await
                    };
                if run_tx.send(ServerFrame::Response { id, response }).is_err() {
                    return;
                }
            }
        }
    });

    let mut stop = stop;
    loop {
        tokio::select! {
            frame = codec::read_raw(&mut rd) => match frame {
                Ok(bytes) => match decode(&bytes) {
                    Decoded::Request(id, req) => {
                        if req_tx.send((id, req)).is_err() {
                            break;
                        }
                    }
                    Decoded::Answer(id, response) => {
                        let _ = out_tx.send(ServerFrame::Response { id, response });
                    }
                    Decoded::Ignore => {}
                    Decoded::Close(reason) => {
                        tracing::info!(agent = %who.agent, "closing a connection: {reason}");
                        break;
                    }
                },
                Err(_) => break,
            },
            _ = stop.changed() => break,
        }
    }
    drop(req_tx);
    // Gone from presence at once (a killed client's socket closes with it).
    shared.presence.leave(session_id);
    // Let the answers already being made go out, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(5), runner).await;
    // A presence report still running when the client left must not bring it back.
    shared.presence.leave(session_id);
    pusher.abort();
    notifier.abort();
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    tracing::info!(agent = %who.agent, "disconnected");
}

enum Decoded {
    Request(u64, Request),
    /// A request this server cannot read: answered with an error, the connection stays.
    Answer(u64, Response),
    Ignore,
    Close(String),
}

/// A frame from the client. An unknown kind of request (a newer client) gets a clear answer
/// with its id; garbage closes the connection.
fn decode(bytes: &[u8]) -> Decoded {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Decoded::Close(format!("not JSON: {e}")),
    };
    let id = value.get("id").and_then(serde_json::Value::as_u64);
    match serde_json::from_value::<ClientFrame>(value.clone()) {
        Ok(ClientFrame::Request { id, request }) => Decoded::Request(id, request),
        Ok(ClientFrame::Hello(_)) => Decoded::Ignore,
        Err(e) => match id {
            Some(id) => {
                let kind = value
                    .get("request")
                    .and_then(|r| r.get("op"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?");
                Decoded::Answer(
                    id,
                    Response::Error(format!(
                        "this server (braid {}, protocol {PROTOCOL_VERSION}) cannot read a '{}' request: {e}",
                        env!("CARGO_PKG_VERSION"),
                        crate::sanitize::for_terminal_line(kind)
                    )),
                )
            }
            None => Decoded::Close(format!("not a braid frame: {e}")),
        },
    }
}

async fn read_hello<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Hello, String> {
    let bytes = codec::read_raw(rd)
        .await
        .map_err(|e| format!("no greeting: {e}"))?;
    match serde_json::from_slice::<ClientFrame>(&bytes) {
        Ok(ClientFrame::Hello(h)) => Ok(h),
        Ok(_) => Err("the first message must be a hello".into()),
        Err(_) => {
            // A hello of another version with fields this one does not know still carries
            // the version range; anything else is not a braid client.
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|_| "this is a braid server; that was not a braid client".to_string())?;
            let min = v.get("min_version").and_then(serde_json::Value::as_u64);
            let max = v.get("max_version").and_then(serde_json::Value::as_u64);
            match (min, max) {
                (Some(min), Some(max)) => Ok(Hello {
                    min_version: u32::try_from(min).unwrap_or(u32::MAX),
                    max_version: u32::try_from(max).unwrap_or(u32::MAX),
                    client: v
                        .get("client")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("client")
                        .to_string(),
                    resume_after: None,
                }),
                _ => Err("this is a braid server; that was not a braid client".into()),
            }
        }
    }
}

/// Record what this session's agent is doing. The conversation's team and assignee decide who
/// may see where they are; one they cannot see themselves (or that does not exist) is kept
/// as "online, nowhere".
async fn report_presence(
    shared: &Arc<Shared>,
    who: &Arc<Identity>,
    session: u64,
    conversation: Option<crate::model::ConversationId>,
    activity: crate::api::Activity,
) {
    let (conversation, place) = match conversation {
        None => (None, super::presence::Place::default()),
        Some(id) => match with_store(shared, who, move |s| Ok(s.conversation(id)?)).await {
            Ok(row) => (
                Some(id),
                super::presence::Place {
                    team: row.team,
                    assignee: row.assignee,
                },
            ),
            Err(_) => (None, super::presence::Place::default()),
        },
    };
    let activity = if conversation.is_some() {
        activity
    } else {
        crate::api::Activity::Viewing
    };
    shared.presence.report(
        session,
        who,
        conversation,
        place,
        activity,
        crate::model::now_millis(),
    );
}

/// A reply or note that does not say what its author saw (`braid reply` without `--seen`) is
/// checked against what the server last showed this agent of the conversation (`braid show`).
fn resolve_seen(shared: &Shared, who: &Identity, req: Request) -> Request {
    use crate::api::{Post, Seen, Write};
    let shown = |conversation| {
        shared
            .shown
            .lock()
            .ok()
            .and_then(|m| m.get(&(who.agent.clone(), conversation)).copied())
            .map_or(Seen::Unknown, Seen::Upto)
    };
    match req {
        Request::Post {
            conversation,
            post:
                Post::Reply {
                    channel,
                    body,
                    then_pending,
                    seen: Seen::Unknown,
                },
        } => Request::Post {
            conversation,
            post: Post::Reply {
                channel,
                body,
                then_pending,
                seen: shown(conversation),
            },
        },
        Request::Post {
            conversation,
            post:
                Post::Template {
                    name,
                    params,
                    seen: Seen::Unknown,
                    resolved,
                },
        } => Request::Post {
            conversation,
            post: Post::Template {
                name,
                params,
                seen: shown(conversation),
                resolved,
            },
        },
        Request::Post {
            conversation,
            post:
                Post::Note {
                    body,
                    seen: Seen::Unknown,
                },
        } => Request::Post {
            conversation,
            post: Post::Note {
                body,
                seen: shown(conversation),
            },
        },
        Request::Write {
            conversation,
            contact,
            write:
                Write::Reply {
                    channel,
                    body,
                    then_pending,
                    seen: Seen::Unknown,
                },
        } => Request::Write {
            conversation,
            contact,
            write: Write::Reply {
                channel,
                body,
                then_pending,
                seen: shown(conversation),
            },
        },
        other => other,
    }
}

/// Run one request on a pooled store connection, off the async threads.
async fn run_request(shared: &Arc<Shared>, who: &Arc<Identity>, req: Request) -> Response {
    if matches!(req, Request::Rules | Request::RulesTest { .. }) {
        return super::rules::answer(shared, who, req).await;
    }
    if matches!(
        req,
        Request::WebhooksStatus | Request::WebhookTest { .. } | Request::WebhookRetry { .. }
    ) {
        return super::webhooks::answer(shared, who, req).await;
    }
    if let Request::Campaign(op) = req {
        return super::campaign::answer(shared, who, op).await;
    }
    let mut req = resolve_seen(shared, who, req);
    // A report without a time zone is cut in the workspace's (its first business hours').
    if let Request::Report(q) = &mut req
        && q.tz.is_none()
    {
        q.tz = shared
            .config
            .workspace
            .sla
            .hours
            .first()
            .map(|h| h.zone.clone());
    }
    handler::resolve_template(&shared.config.templates(), &mut req);
    handler::resolve_canned(
        &shared.canned.current().0,
        shared.config.suggest_command.as_deref(),
        shared.config.suggest_timeout_ms,
        &mut req,
    );
    if let Request::Attachments { conversation } = req {
        let source = with_store(shared, who, move |s| {
            Ok(s.newest_attachment_message(conversation)?)
        })
        .await;
        return match source {
            Ok(source) => handler::fetch_attachments(&shared.config, source, conversation).await,
            Err(e) => Response::Error(e.to_string()),
        };
    }
    let sh = Arc::clone(shared);
    let w = Arc::clone(who);
    let started = std::time::Instant::now();
    let name = req.name();
    let result = tokio::task::spawn_blocking(move || {
        let mut store = match sh.take_store() {
            Ok(s) => s,
            Err(e) => return Response::Error(format!("the server cannot open its store: {e}")),
        };
        let mut resp = match sh
            .config
            .workspace
            .only_assignee_replies
            .then(|| handler::only_assignee(&mut store, &w, &req))
            .flatten()
        {
            Some(reason) => handler::refuse(&mut store, &w, &req, reason),
            None => handler::handle(&mut store, &w, req),
        };
        if let Response::Status(report) = &mut resp {
            report.worker = sh.status.borrow().summary();
            report.data_dir = sh.config.data_dir.display().to_string();
        }
        if let Response::Conversation { row, as_of, .. } = &resp
            && let Ok(mut shown) = sh.shown.lock()
        {
            // Bounded: a script walking every conversation must not grow it forever.
            if shown.len() > 100_000 {
                shown.clear();
            }
            shown.insert((w.agent.clone(), row.id), *as_of);
        }
        sh.give_store(store);
        super::notify::after_request(&sh, &w, &resp);
        resp
    })
    .await;
    let took = started.elapsed();
    if took > Duration::from_millis(50) {
        tracing::warn!(?took, request = name, "slow request");
    }
    result.unwrap_or_else(|e| Response::Error(format!("the request failed inside the server: {e}")))
}

/// Run a closure on a pooled store connection with this agent's scope.
async fn with_store<T: Send + 'static>(
    shared: &Arc<Shared>,
    who: &Arc<Identity>,
    f: impl FnOnce(&mut crate::store::Store) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let sh = Arc::clone(shared);
    let scope = who.scope();
    tokio::task::spawn_blocking(move || {
        let mut store = sh.take_store()?;
        store.set_scope(scope)?;
        let r = f(&mut store);
        sh.give_store(store);
        r
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?
}

/// The events of a batch this agent may see. An admin sees all of them as they are; anyone
/// else gets them read again through their scoped connection (the store decides, the same
/// rule as for every other read: their teams' conversations, plus the event that took one out
/// of their view, so their screen drops it).
async fn visible(
    shared: &Arc<Shared>,
    who: &Arc<Identity>,
    events: Vec<EventRow>,
) -> Vec<EventRow> {
    if who.scope().is_all() || events.is_empty() {
        return events;
    }
    let (Some(first), Some(last)) = (events.first().map(|e| e.id), events.last().map(|e| e.id))
    else {
        return Vec::new();
    };
    let after = EventId(first.0 - 1);
    let n = events.len();
    let read = with_store(shared, who, move |s| {
        let mut got = s.events_since(after, n)?;
        got.retain(|e| e.id <= last);
        Ok(got)
    })
    .await;
    match read {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(agent = %who.agent, "filtering pushed events: {e}");
            Vec::new()
        }
    }
}

/// A connection refused for who it is goes into the audit log (as the Unix user: there is no
/// agent).
async fn audit_connection_refused(shared: &Arc<Shared>, uid: u32, reason: &str) {
    let sh = Arc::clone(shared);
    let user = format!("unix:{}", identity::user_name(uid));
    let reason = reason.to_string();
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut store = sh.take_store()?;
        store.set_scope(crate::store::Scope::all(user.clone()))?;
        store.audit_refused(&user, None, "connect", &reason, crate::model::now_millis())?;
        sh.give_store(store);
        Ok(())
    })
    .await;
    if let Ok(Err(e)) = done {
        tracing::warn!("cannot record a refused connection in the audit log: {e}");
    }
}
