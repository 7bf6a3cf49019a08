//! The client side of a connection: the handshake, then requests by id and pushed events.
//!
//! A [`Connection`] works over any byte stream: a Unix socket, an SSH command's stdin/stdout, or
//! an in-memory pipe to a server in this process. Answers to [`Connection::call`] come back to
//! the caller; answers to [`Connection::send`] and every push arrive, in order, on the
//! [`Incoming`] receiver (the TUI's event loop reads it).

use super::codec::{self, CodecError};
use super::protocol::{ClientFrame, Hello, Request, Response, ServerFrame, Welcome};
use crate::model::EventId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

/// What a client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server said no to the connection (version, unknown user): its one line.
    #[error("{0}")]
    Refused(String),
    #[error("cannot reach the braid server at {path}: {error}")]
    Connect { path: String, error: std::io::Error },
    #[error("lost the connection to the braid server: {0}")]
    Lost(String),
    #[error("the server answered out of protocol: {0}")]
    Protocol(String),
}

/// What arrives without being waited for.
// A response carries queue rows inline (with their SLA fields); boxing it would cost an
// allocation per frame for nothing: one Incoming lives at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to a [`Connection::send`].
    Response { id: u64, response: Response },
    /// Pushed changes, oldest first.
    Events {
        events: Vec<crate::store::EventRow>,
        last: EventId,
    },
    /// Too much was missed: reload everything.
    Resync { last: EventId },
    /// The server's status line.
    Status { line: String, error: Option<String> },
    /// This agent's notifications changed: new rows (oldest first) and the unread count.
    Notification {
        rows: Vec<crate::store::NotificationRow>,
        unread: i64,
    },
    /// Who is online and where (see [`super::ServerFrame::Presence`]).
    Presence(Vec<super::PresenceEntry>),
    /// The connection ended (the text says why).
    Closed(String),
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

/// A live connection. Cheap to clone; every clone shares the one stream.
#[derive(Clone)]
pub struct Connection {
    out: mpsc::UnboundedSender<ClientFrame>,
    waiters: Waiters,
    next_id: Arc<AtomicU64>,
    welcome: Arc<Welcome>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("agent", &self.welcome.agent)
            .finish()
    }
}

impl Connection {
    /// Say hello over `stream` and start reading. Call inside a tokio runtime.
    pub async fn handshake<S>(
        stream: S,
        hello: Hello,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Incoming>), ApiError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        codec::write(&mut wr, &ClientFrame::Hello(hello))
            .await
            .map_err(|e| ApiError::Lost(e.to_string()))?;
        let first: ServerFrame = match codec::read(&mut rd).await {
            Ok(f) => f,
            Err(CodecError::Json(e)) => {
                return Err(ApiError::Protocol(format!(
                    "its greeting is not one this braid understands ({e}); is it a braid server of a much newer version?"
                )));
            }
            Err(e) => {
                return Err(ApiError::Lost(format!(
                    "the server closed the connection during the handshake ({e})"
                )));
            }
        };
        let welcome = match first {
            ServerFrame::Welcome(w) => w,
            ServerFrame::Refused { reason } => return Err(ApiError::Refused(reason)),
            other => {
                return Err(ApiError::Protocol(format!(
                    "expected a welcome, got {}",
                    frame_name(&other)
                )));
            }
        };
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientFrame>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<Incoming>();
        let waiters: Waiters = Arc::default();
        // Writer: frames in the order they were sent.
        tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                if codec::write(&mut wr, &frame).await.is_err() {
                    break;
                }
            }
        });
        // Reader: answers to their callers, the rest to `Incoming`, in order.
        let w = Arc::clone(&waiters);
        tokio::spawn(async move {
            let why = loop {
                let bytes = match codec::read_raw(&mut rd).await {
                    Ok(b) => b,
                    Err(CodecError::Closed) => {
                        break "the server closed the connection".to_string();
                    }
                    Err(e) => break e.to_string(),
                };
                let frame: ServerFrame = match serde_json::from_slice(&bytes) {
                    Ok(f) => f,
                    // A kind of push this client does not know (a newer server): skipped,
                    // the connection stays. An answer it cannot read still reaches its
                    // caller, as an error.
                    Err(e) => match unreadable_answer(&bytes, &e) {
                        Some((id, response)) => ServerFrame::Response { id, response },
                        None => {
                            tracing::debug!("skipped a server frame this braid cannot read: {e}");
                            continue;
                        }
                    },
                };
                let msg = match frame {
                    ServerFrame::Response { id, response } => {
                        let waiter = w.lock().ok().and_then(|mut m| m.remove(&id));
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(response);
                                continue;
                            }
                            None => Incoming::Response { id, response },
                        }
                    }
                    ServerFrame::Events { events, last } => Incoming::Events { events, last },
                    ServerFrame::Resync { last } => Incoming::Resync { last },
                    ServerFrame::Status { line, error } => Incoming::Status { line, error },
                    ServerFrame::Notification { rows, unread } => {
                        Incoming::Notification { rows, unread }
                    }
                    ServerFrame::Presence { online } => Incoming::Presence(online),
                    ServerFrame::Welcome(_) | ServerFrame::Refused { .. } => continue,
                };
                if in_tx.send(msg).is_err() {
                    // Nobody reads pushes (a CLI command): keep serving `call`s.
                    continue;
                }
            };
            // Whoever waits for an answer learns the connection is gone (their sender drops).
            if let Ok(mut m) = w.lock() {
                m.clear();
            }
            let _ = in_tx.send(Incoming::Closed(why));
        });
        Ok((
            Connection {
                out: out_tx,
                waiters,
                next_id: Arc::new(AtomicU64::new(1)),
                welcome: Arc::new(welcome),
            },
            in_rx,
        ))
    }

    /// Who the server says we are, and what it runs.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Send a request; its answer arrives on the [`Incoming`] receiver. Returns its id.
    pub fn send(&self, request: Request) -> Result<u64, ApiError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.out
            .send(ClientFrame::Request { id, request })
            .map_err(|_| ApiError::Lost("the connection is closed".into()))?;
        Ok(id)
    }

    /// Send a request and wait for its answer.
    pub async fn call(&self, request: Request) -> Result<Response, ApiError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.waiters.lock() {
            m.insert(id, tx);
        }
        if self.out.send(ClientFrame::Request { id, request }).is_err() {
            return Err(ApiError::Lost("the connection is closed".into()));
        }
        rx.await
            .map_err(|_| ApiError::Lost("the server went away before answering".into()))
    }
}

/// A response frame this client cannot decode (a newer server's answer): its id and an error
/// saying so, so the caller is not left waiting.
fn unreadable_answer(bytes: &[u8], e: &serde_json::Error) -> Option<(u64, Response)> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if v.get("type").and_then(serde_json::Value::as_str) != Some("response") {
        return None;
    }
    let id = v.get("id").and_then(serde_json::Value::as_u64)?;
    Some((
        id,
        Response::Error(format!(
            "the server's answer is one this braid cannot read ({e}); use the same braid version on both sides"
        )),
    ))
}

fn frame_name(f: &ServerFrame) -> &'static str {
    match f {
        ServerFrame::Welcome(_) => "welcome",
        ServerFrame::Refused { .. } => "refused",
        ServerFrame::Response { .. } => "response",
        ServerFrame::Events { .. } => "events",
        ServerFrame::Resync { .. } => "resync",
        ServerFrame::Status { .. } => "status",
        ServerFrame::Notification { .. } => "notification",
        ServerFrame::Presence { .. } => "presence",
    }
}
