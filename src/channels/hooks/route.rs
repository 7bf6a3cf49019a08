//! The HTTP side of the webhooks: `GET /hooks/PATH` (Meta's handshake) and `POST /hooks/PATH`.

use super::process::Inbox;
use super::{HookRequest, MAX_BODY, Sources};
use crate::model::now_millis;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the handlers share.
pub(crate) struct Hooks {
    pub sources: Sources,
    pub inbox: Inbox,
}

/// The `/hooks/` routes, with their own body limit ([`MAX_BODY`]).
pub fn router(sources: Sources, inbox: Inbox) -> Router {
    let hooks = Arc::new(Hooks { sources, inbox });
    Router::new()
        .route("/hooks/{*path}", get(handshake).post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hooks)
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn handshake(
    State(hooks): State<Arc<Hooks>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(source) = hooks.sources.get(&path) else {
        return plain(StatusCode::NOT_FOUND, "no such webhook\n");
    };
    match source.handshake(query.as_deref().unwrap_or("")) {
        Some(challenge) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        None => {
            tracing::warn!(source = %path, "webhooks: a subscription handshake with a wrong verify token was refused");
            plain(StatusCode::FORBIDDEN, "forbidden\n")
        }
    }
}

async fn receive(
    State(hooks): State<Arc<Hooks>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(source) = hooks.sources.get(&path) else {
        return plain(StatusCode::NOT_FOUND, "no such webhook\n");
    };
    let now = now_millis();
    let req = HookRequest {
        path: &path,
        query: query.as_deref().unwrap_or(""),
        headers: &headers,
        body: &body,
        now,
    };
    if let Err(e) = source.verify(&req) {
        // The path is one of ours (looked up above), so it is safe to log as it is.
        tracing::warn!(source = %path, %peer, "webhooks: refused, {e}");
        return plain(StatusCode::FORBIDDEN, "forbidden\n");
    }
    let items = match source.parse(&body, now) {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(source = %path, %peer, "webhooks: refused a malformed body: {}", crate::sanitize::line(&e));
            return plain(StatusCode::BAD_REQUEST, "malformed body\n");
        }
    };
    let (content_type, accepted) = source.accepted();
    if !items.is_empty()
        && let Err(e) = hooks.inbox.keep(&path, body.to_vec()).await
    {
        // Not kept: the sender must try again (Meta and Twilio retry on 5xx).
        tracing::warn!(source = %path, "webhooks: {e}");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        accepted,
    )
        .into_response()
}
