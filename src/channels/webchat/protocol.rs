//! The widget's protocol: JSON text frames, the same over the WebSocket and the long-poll
//! fallback.
//!
//! Visitor -> braid:
//! - `{"type":"hello","visitor":TOKEN|null,"user_email":…,"user_hash":…}`: first frame; null
//!   asks for a new visitor id. `user_email` + `user_hash` (optional): the embedding site vouches
//!   for its logged-in user (HMAC, see [`super::secret::IdentityKey`]); only such a verified
//!   email joins the visitor to that email's contact. A wrong hash is ignored (logged).
//! - `{"type":"msg","id":"c1a2…","text":"…","email":"optional"}`: a message; `id` is the
//!   widget's own id for it (a resend after a reconnect is stored once). `email` is what the
//!   visitor typed: a CLAIM, stored for an agent to confirm, never a link by itself.
//! - `{"type":"csat","id":"c…","survey":N,"score":1-5,"comment":"optional"}`: the answer to
//!   a satisfaction survey (a `msg` that carried `"csat":N`); acked like a message (`ack`
//!   with its id, also when the survey was already answered: the first answer stands), or
//!   `error` `csat_closed` (no such survey for this visitor), `bad_score`, `too_long`.
//!
//! braid -> visitor:
//! - `{"type":"welcome","visitor":TOKEN,"ask_email":bool}`
//! - `{"type":"ack","id":"c1a2…"}`: the message is stored.
//! - `{"type":"msg","id":"…","from":"agent"|"visitor","author":"…","text":"…","at":MILLIS}`:
//!   `id` is stable (`m<message id>` for a reply): a reply sent again after a crash carries the
//!   same id and the widget shows it once. A satisfaction survey adds `"csat":N` (the survey
//!   to answer): the widget shows 1-5 buttons and a comment box under the question.
//! - `{"type":"error","code":"…","message":"…","id":…,"retry_after_ms":…}`: codes
//!   `bad_visitor` (forged or unknown token: start over), `too_long`, `empty`, `bad_email`,
//!   `rate_limited`, `unavailable` (the store could not take it: retry), `malformed`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientFrame {
    Hello {
        #[serde(default)]
        visitor: Option<String>,
        /// The embedding site's logged-in user (`data-user-email`), with its signature
        /// (`data-user-hash`); see [`super::secret::IdentityKey`].
        #[serde(default)]
        user_email: Option<String>,
        #[serde(default)]
        user_hash: Option<String>,
    },
    Msg {
        id: String,
        text: String,
        #[serde(default)]
        email: Option<String>,
    },
    /// The answer to a satisfaction survey.
    Csat {
        id: String,
        survey: i64,
        score: u8,
        #[serde(default)]
        comment: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    Agent,
    Visitor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    Welcome {
        visitor: String,
        ask_email: bool,
    },
    Ack {
        id: String,
    },
    Msg {
        id: String,
        from: From,
        author: String,
        text: String,
        at: i64,
        /// A satisfaction survey: the survey the widget's 1-5 buttons answer.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        csat: Option<i64>,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame {
    pub fn error(code: &str, message: impl Into<String>, id: Option<&str>) -> ServerFrame {
        ServerFrame::Error {
            code: code.to_string(),
            message: message.into(),
            id: id.map(str::to_string),
            retry_after_ms: None,
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail; keep a frame the widget understands.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"internal error"}"#.to_string()
        })
    }
}

/// A widget message id: 1-64 characters of `[A-Za-z0-9_-]`.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
