//! The HTTP side: the widget script, the demo page, the WebSocket endpoint and the long-poll
//! fallback, with the origin allowlist, size limits and rate limits in front of everything.

use super::Shared;
use super::db;
use super::hub::{Busy, Frame, Polled, Slot};
use super::protocol::{ClientFrame, From, ServerFrame, valid_client_id};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const WIDGET_JS: &str = include_str!("widget.js");
const DEMO_PAGE: &str = include_str!("demo.html");

/// How long a new socket may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Server pings keep idle connections open through proxies.
const PING_EVERY: Duration = Duration::from_secs(25);
/// How long a long poll waits for something to say.
pub const LONG_POLL: Duration = Duration::from_secs(25);

/// WebSocket close codes.
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_MALFORMED: u16 = 1007;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
/// The visitor token was forged or is unknown: the widget starts over with a new id.
pub const CLOSE_BAD_VISITOR: u16 = 4001;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.frame_limit();
    Router::new()
        .route("/", get(demo_page))
        .route("/widget.js", get(widget_js))
        .route("/ws", get(ws_upgrade))
        .route(
            "/lp/hello",
            axum::routing::post(lp_hello).options(preflight),
        )
        .route("/lp/send", axum::routing::post(lp_send).options(preflight))
        .route("/lp/poll", axum::routing::post(lp_poll).options(preflight))
        .route("/lp/csat", axum::routing::post(lp_csat).options(preflight))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn demo_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'",
            ),
        ],
        DEMO_PAGE,
    )
        .into_response()
}

async fn widget_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    refusal(status, code, message).into_response()
}

/// A refused request, before it becomes a response.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, "application/json")], self.1).into_response()
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Refusal {
    Refusal(status, ServerFrame::error(code, message, None).to_json())
}

/// The origin allowlist. Ok(the origin to echo in CORS headers).
fn check_origin(shared: &Shared, headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    let forbidden = || refusal(StatusCode::FORBIDDEN, "origin", "origin not allowed");
    let origin = headers.get(header::ORIGIN).ok_or_else(forbidden)?;
    let text = origin.to_str().map_err(|_| forbidden())?;
    if shared.config.allows_origin(text) {
        return Ok(origin.clone());
    }
    // The server's own pages (the demo page): the listen address or the configured public
    // origin. Never "whatever the Host header says": a DNS-rebinding page sends Host and Origin
    // both naming its own domain.
    let o = super::config::normalize_origin(text);
    if shared.own_origins.contains(&o) {
        Ok(origin.clone())
    } else {
        Err(forbidden())
    }
}

fn rate_limited(what: &str, wait: Duration, id: Option<&str>) -> ServerFrame {
    ServerFrame::Error {
        code: "rate_limited".into(),
        message: format!("{what}: wait a moment"),
        id: id.map(str::to_string),
        retry_after_ms: Some(wait.as_millis().min(u128::from(u64::MAX)) as u64 + 1),
    }
}

/// The visitor's address for the per-IP limits: the peer, or with `trust_forwarded_for` and a
/// peer on loopback (the reverse proxy), the last `X-Forwarded-For` entry (the one the proxy
/// added; earlier ones are whatever the client sent).
fn client_ip(shared: &Shared, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if shared.config.trust_forwarded_for && peer.ip().is_loopback() {
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = last {
            return ip;
        }
    }
    peer.ip()
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(r) = check_origin(&shared, &headers) {
        return r.into_response();
    }
    let ip = client_ip(&shared, peer, &headers);
    if shared.ip_connections.check(&ip).is_err() {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many connections from this address",
        );
    }
    let slot = match take_slot(&shared, ip) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let limit = shared.frame_limit();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| session(shared, socket, ip, slot))
}

/// A connection slot for `ip`, or the refusal: 429 when this address holds its share, 503 when
/// the server is full.
fn take_slot(shared: &Arc<Shared>, ip: IpAddr) -> Result<Slot, Refusal> {
    shared
        .hub
        .slot_for(
            ip,
            shared.config.max_connections,
            shared.config.max_connections_per_ip,
        )
        .map_err(|busy| match busy {
            Busy::Address => refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many connections from this address",
            ),
            Busy::Full => refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many open connections",
            ),
        })
}

async fn close(mut sink: impl SinkExt<Message> + Unpin, code: u16, reason: &'static str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = sink.close().await;
}

/// The close code for a frame the WebSocket layer refused, if it has one.
fn broken(e: axum::Error) -> Option<(u16, &'static str)> {
    match e
        .into_inner()
        .downcast::<tungstenite::Error>()
        .ok()
        .map(|b| *b)
    {
        Some(tungstenite::Error::Capacity(_)) => Some((CLOSE_TOO_BIG, "frame too large")),
        Some(tungstenite::Error::Utf8(_)) => Some((CLOSE_MALFORMED, "text frame is not UTF-8")),
        _ => None,
    }
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(frame.to_json().into())
}

/// One WebSocket, from hello to close. A malformed frame ends this socket only.
async fn session(shared: Arc<Shared>, socket: WebSocket, ip: IpAddr, _slot: Slot) {
    let (mut sink, mut stream) = socket.split();
    let first = tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await;
    let (token, verified) = match first {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ClientFrame>(t.as_str()) {
            Ok(ClientFrame::Hello {
                visitor,
                user_email,
                user_hash,
            }) => (
                visitor,
                shared.verified_email(user_email.as_deref(), user_hash.as_deref()),
            ),
            _ => return close(sink, CLOSE_MALFORMED, "malformed frame: expected hello").await,
        },
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
        Ok(Some(Ok(_))) => {
            return close(sink, CLOSE_UNSUPPORTED, "expected a hello text frame").await;
        }
        Err(_) => return close(sink, CLOSE_POLICY, "no hello").await,
    };
    let (visitor, token) = match shared.visitor(token.as_deref()) {
        Ok(v) => v,
        Err(frame) => {
            let _ = sink.send(text(&frame)).await;
            return close(sink, CLOSE_BAD_VISITOR, "unknown visitor").await;
        }
    };
    let (guard, mut pushed) = shared.hub.add_socket(&visitor);
    let welcome = ServerFrame::Welcome {
        visitor: token,
        ask_email: shared.config.ask_email,
    };
    if sink.send(text(&welcome)).await.is_err() {
        return;
    }
    shared.db.returned(&visitor);
    let mut stop = shared.stop.clone();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                return close(sink, 1001, "server stopping").await;
            }
            frame = pushed.recv() => {
                let Some(frame) = frame else {
                    // Dropped by the hub: this socket fell too far behind.
                    return close(sink, CLOSE_POLICY, "too slow").await;
                };
                if sink.send(Message::Text(frame.as_ref().into())).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
            }
            incoming = stream.next() => {
                let t = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        return close(sink, CLOSE_UNSUPPORTED, "binary frames are not accepted").await;
                    }
                    Some(Ok(Message::Close(_))) | None => return,
                    // An oversize frame (1009), a text frame that is not UTF-8 (1007); any
                    // other protocol error just ends the socket.
                    Some(Err(e)) => {
                        if let Some((code, why)) = broken(e) {
                            close(sink, code, why).await;
                        }
                        return;
                    }
                };
                let reply = match serde_json::from_str::<ClientFrame>(t.as_str()) {
                    Ok(ClientFrame::Msg { id, text, email }) if valid_client_id(&id) => {
                        shared
                            .message(
                                &visitor,
                                ip,
                                &id,
                                &text,
                                Visitor {
                                    typed: email.as_deref(),
                                    verified: verified.as_deref(),
                                },
                                Some(guard.id()),
                            )
                            .await
                    }
                    Ok(ClientFrame::Csat { id, survey, score, comment }) if valid_client_id(&id) => {
                        shared
                            .csat(&visitor, &id, survey, score, comment.as_deref().unwrap_or(""))
                            .await
                    }
                    _ => return close(sink, CLOSE_MALFORMED, "malformed frame").await,
                };
                if sink.send(text(&reply)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What a visitor's message says about who they are.
pub(crate) struct Visitor<'a> {
    /// An email the visitor typed: a claim.
    pub typed: Option<&'a str>,
    /// An email the embedding site signed (verified).
    pub verified: Option<&'a str>,
}

impl Shared {
    /// The email an embedding site vouches for, when its signature verifies. A wrong signature
    /// is ignored (the visitor chats as a guest) and logged for the site's developers; the
    /// address and the hash are not logged.
    pub(crate) fn verified_email(&self, email: Option<&str>, hash: Option<&str>) -> Option<String> {
        let email = email.map(str::trim).filter(|e| !e.is_empty())?;
        let hash = hash.unwrap_or("");
        if !self.identity.verify(email, hash) {
            tracing::warn!(
                "web chat: a page gave data-user-email with a data-user-hash that does not verify \
                 (sign the email with the secret in {}); chatting as a guest",
                super::secret::IDENTITY_SECRET_FILE
            );
            return None;
        }
        crate::identity::normalize(crate::model::IdentityKind::Email, email).ok()
    }

    /// The visitor of a hello: a genuine token's id, or a new id. Err: a forged token.
    pub(crate) fn visitor(&self, token: Option<&str>) -> Result<(String, String), ServerFrame> {
        match token {
            Some(t) => match self.signer.verify(t) {
                Some(id) => Ok((id, t.to_string())),
                None => Err(ServerFrame::error(
                    "bad_visitor",
                    "unknown visitor id; starting a new chat",
                    None,
                )),
            },
            None => self.signer.issue().map_err(|e| {
                tracing::warn!("web chat: {e}");
                ServerFrame::error("unavailable", "cannot start a chat now", None)
            }),
        }
    }

    /// A visitor's answer to a satisfaction survey: checked, rate limited like a message,
    /// recorded when the survey is this visitor's (the first answer stands; a resend acks).
    pub(crate) async fn csat(
        &self,
        visitor: &str,
        id: &str,
        survey: i64,
        score: u8,
        comment: &str,
    ) -> ServerFrame {
        if !(1..=5).contains(&score) {
            return ServerFrame::error("bad_score", "a score is 1 to 5", Some(id));
        }
        let chars = comment.chars().count();
        if chars > crate::csat::MAX_COMMENT_CHARS {
            return ServerFrame::error(
                "too_long",
                format!(
                    "comment too long ({chars} characters; at most {})",
                    crate::csat::MAX_COMMENT_CHARS
                ),
                Some(id),
            );
        }
        if let Err(wait) = self.visitor_messages.check(&visitor.to_string()) {
            return rate_limited("too many messages", wait, Some(id));
        }
        match self
            .db
            .csat(
                visitor.to_string(),
                crate::model::ConversationId(survey),
                score,
                comment.to_string(),
            )
            .await
        {
            Ok(
                crate::store::CsatOutcome::Recorded | crate::store::CsatOutcome::AlreadyAnswered,
            ) => ServerFrame::Ack { id: id.to_string() },
            Ok(crate::store::CsatOutcome::NoSurvey) => {
                ServerFrame::error("csat_closed", "this survey is closed", Some(id))
            }
            Err(e) => {
                tracing::warn!("web chat: a survey answer was not stored: {e}");
                ServerFrame::error(
                    "unavailable",
                    "the answer could not be stored; try again",
                    Some(id),
                )
            }
        }
    }

    /// A visitor's message: checked, rate limited, stored, echoed to their other connections.
    pub(crate) async fn message(
        &self,
        visitor: &str,
        ip: IpAddr,
        id: &str,
        text: &str,
        who: Visitor<'_>,
        from_socket: Option<u64>,
    ) -> ServerFrame {
        let body = text.trim();
        // Judged on what would be stored: escape sequences alone are empty too.
        if crate::sanitize::text(body).trim().is_empty() {
            return ServerFrame::error("empty", "empty message", Some(id));
        }
        let chars = body.chars().count();
        if chars > self.config.max_message_chars {
            return ServerFrame::error(
                "too_long",
                format!(
                    "message too long ({chars} characters; at most {})",
                    self.config.max_message_chars
                ),
                Some(id),
            );
        }
        let email = who.typed.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email
            && crate::identity::normalize(crate::model::IdentityKind::Email, e).is_err()
        {
            return ServerFrame::error(
                "bad_email",
                "that does not look like an email address",
                Some(id),
            );
        }
        if let Err(wait) = self.visitor_messages.check(&visitor.to_string()) {
            return rate_limited("too many messages", wait, Some(id));
        }
        if let Err(wait) = self.ip_messages.check(&ip) {
            return rate_limited("too many messages from this address", wait, Some(id));
        }
        match self
            .db
            .ingest(db::inbound(visitor, id, body, email, who.verified))
            .await
        {
            Ok(_) => {
                let echo = ServerFrame::Msg {
                    id: id.to_string(),
                    from: From::Visitor,
                    author: String::new(),
                    text: crate::sanitize::text(body),
                    at: crate::model::now_millis(),
                    csat: None,
                };
                let frame: Frame = echo.to_json().into();
                self.hub.push(visitor, &frame, from_socket);
                ServerFrame::Ack { id: id.to_string() }
            }
            Err(e) => {
                tracing::warn!("web chat: a visitor message was not stored: {e}");
                ServerFrame::error(
                    "unavailable",
                    "the message could not be stored; try again",
                    Some(id),
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Long-poll fallback: POST with a text/plain JSON body (a "simple" cross-origin request, so no
// preflight), same frames as the WebSocket.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LpHello {
    #[serde(default)]
    visitor: Option<String>,
    // Accepted so the widget sends one hello for both transports; each long-poll send carries
    // the signed user again (a request stands alone).
    #[allow(dead_code)]
    #[serde(default)]
    user_email: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    user_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LpSend {
    visitor: String,
    id: String,
    text: String,
    #[serde(default)]
    email: Option<String>,
    /// The site's signed user, as in the hello (each request stands alone).
    #[serde(default)]
    user_email: Option<String>,
    #[serde(default)]
    user_hash: Option<String>,
}

/// A survey answer over long-poll: the `csat` frame with the visitor's token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LpCsat {
    visitor: String,
    id: String,
    survey: i64,
    score: u8,
    #[serde(default)]
    comment: Option<String>,
}

async fn lp_csat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let origin = match check_origin(&shared, &headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let Ok(req) = serde_json::from_slice::<LpCsat>(&body) else {
        return malformed(&origin);
    };
    if !valid_client_id(&req.id) {
        return malformed(&origin);
    }
    let Some(visitor) = shared.signer.verify(&req.visitor) else {
        return frame(
            &origin,
            &ServerFrame::error("bad_visitor", "unknown visitor id", None),
        );
    };
    shared.hub.touch_poller(&visitor);
    let reply = shared
        .csat(
            &visitor,
            &req.id,
            req.survey,
            req.score,
            req.comment.as_deref().unwrap_or(""),
        )
        .await;
    frame(&origin, &reply)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LpPoll {
    visitor: String,
}

fn json(origin: &HeaderValue, status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn frame(origin: &HeaderValue, f: &ServerFrame) -> Response {
    let status = match f {
        ServerFrame::Error { code, .. } if code == "bad_visitor" => StatusCode::FORBIDDEN,
        ServerFrame::Error { code, .. } if code == "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        ServerFrame::Error { code, .. } if code == "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        ServerFrame::Error { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    json(origin, status, f.to_json())
}

fn malformed(origin: &HeaderValue) -> Response {
    frame(
        origin,
        &ServerFrame::error("malformed", "malformed request", None),
    )
}

async fn preflight(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match check_origin(&shared, &headers) {
        Ok(origin) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            r
        }
        Err(r) => r.into_response(),
    }
}

async fn lp_hello(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = match check_origin(&shared, &headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let Ok(req) = serde_json::from_slice::<LpHello>(&body) else {
        return malformed(&origin);
    };
    if shared
        .ip_connections
        .check(&client_ip(&shared, peer, &headers))
        .is_err()
    {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many connections from this address",
        );
    }
    match shared.visitor(req.visitor.as_deref()) {
        Ok((visitor, token)) => {
            shared.hub.touch_poller(&visitor);
            shared.db.returned(&visitor);
            let welcome = ServerFrame::Welcome {
                visitor: token,
                ask_email: shared.config.ask_email,
            };
            frame(&origin, &welcome)
        }
        Err(f) => frame(&origin, &f),
    }
}

async fn lp_send(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = match check_origin(&shared, &headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let Ok(req) = serde_json::from_slice::<LpSend>(&body) else {
        return malformed(&origin);
    };
    if !valid_client_id(&req.id) {
        return malformed(&origin);
    }
    let Some(visitor) = shared.signer.verify(&req.visitor) else {
        return frame(
            &origin,
            &ServerFrame::error("bad_visitor", "unknown visitor id", None),
        );
    };
    shared.hub.touch_poller(&visitor);
    let verified = shared.verified_email(req.user_email.as_deref(), req.user_hash.as_deref());
    let reply = shared
        .message(
            &visitor,
            client_ip(&shared, peer, &headers),
            &req.id,
            &req.text,
            Visitor {
                typed: req.email.as_deref(),
                verified: verified.as_deref(),
            },
            None,
        )
        .await;
    frame(&origin, &reply)
}

async fn lp_poll(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = match check_origin(&shared, &headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let Ok(req) = serde_json::from_slice::<LpPoll>(&body) else {
        return malformed(&origin);
    };
    let Some(visitor) = shared.signer.verify(&req.visitor) else {
        return frame(
            &origin,
            &ServerFrame::error("bad_visitor", "unknown visitor id", None),
        );
    };
    // A pending poll holds a connection slot of its address like a WebSocket does.
    let _slot = match take_slot(&shared, client_ip(&shared, peer, &headers)) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let mut stop = shared.stop.clone();
    let frames = tokio::select! {
        f = shared.hub.poll(&visitor, shared.long_poll) => f,
        _ = stop.changed() => Polled::Frames(Vec::new()),
    };
    let frames = match frames {
        Polled::Frames(f) => f,
        // A newer poll of this visitor took over (the widget waits a little before polling
        // again, so two tabs take turns instead of ending each other's polls in a loop).
        Polled::Superseded => {
            return json(
                &origin,
                StatusCode::OK,
                r#"{"frames":[],"superseded":true}"#.to_string(),
            );
        }
    };
    let mut body = String::from("{\"frames\":[");
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(f);
    }
    body.push_str("]}");
    json(&origin, StatusCode::OK, body)
}
