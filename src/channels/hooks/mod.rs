//! Inbound webhooks: how WhatsApp, Instagram, Messenger, SMS providers and any signed source
//! deliver to braid. They are served by the web chat's HTTP listener under `/hooks/`, one path
//! per source (`/hooks/whatsapp`, `/hooks/sms`, `/hooks/events/shop`...).
//!
//! Every POST takes the same path:
//! 1. the source checks the signature over the exact bytes that arrived ([`verify`]): missing
//!    or forged, the sender gets 403 and the log a line, nothing is stored;
//! 2. the source parses the body ([`Source::parse`], pure): malformed, hostile (deep JSON, no
//!    id), 400 and nothing stored; nothing braid keeps (a ping), 200 and nothing stored;
//! 3. the body is written to the store's inbox ([`crate::store::hooks`]), many requests to one
//!    transaction when they arrive together, and only then answered 200: an acknowledged
//!    delivery survives a crash;
//! 4. off the request path, the inbox is ingested ([`process`]): messages through
//!    [`crate::ingest`] (idempotent on the channel's message id, so Meta's retries for a day
//!    store a message once), delivery reports applied in order of rank, consent recorded; the
//!    body leaves the inbox in the same transaction. A delivery report for a send whose id is
//!    not recorded yet waits and is tried again.

pub mod events;
pub mod process;
mod route;
pub mod verify;

pub use route::router;

use crate::ingest::Inbound;
use crate::model::{Channel, Delivery, IdentityKind, Millis};
use axum::http::HeaderMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest webhook body accepted (Meta batches up to 1,000 updates in one POST).
pub const MAX_BODY: usize = 1 << 20;

/// A POST as a source sees it to check its signature.
pub struct HookRequest<'a> {
    /// The path under `/hooks/` ("whatsapp", "events/shop").
    pub path: &'a str,
    /// The query string, without `?` ("" when none).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as it arrived.
    pub body: &'a [u8],
    /// Now, in Unix milliseconds (the signed events' replay check).
    pub now: Millis,
}

impl HookRequest<'_> {
    /// A header's value as text (None when absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A channel's report on a message we sent: its id there, and the state it reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub channel: Channel,
    /// The channel's id for the sent message (what [`crate::channels::Sent::external_id`]
    /// recorded).
    pub external_id: String,
    /// Sent, Delivered, Read or Failed.
    pub delivery: Delivery,
    /// For Failed: the channel's code and words ("131047: Re-engagement message").
    pub error: Option<String>,
    pub at: Millis,
}

/// A customer's consent on a channel changed (an SMS STOP or START).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub channel: Channel,
    pub kind: IdentityKind,
    /// The identifier as the channel gave it (normalized when recorded).
    pub value: String,
    pub opted_out: bool,
    /// The keyword as the customer wrote it ("STOP", "unsubscribe", "START").
    pub keyword: String,
    pub at: Millis,
}

/// What one webhook body holds, in the order it holds it.
#[derive(Debug, Clone)]
pub enum HookItem {
    Message(Box<Inbound>),
    Status(StatusReport),
    Consent(ConsentChange),
}

/// One webhook endpoint: its path, its signature check, its parser.
pub trait Source: Send + Sync + 'static {
    /// The path under `/hooks/` this source answers.
    fn path(&self) -> &str;

    /// Meta's subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=T&
    /// hub.challenge=C`): the body to answer 200 with (the challenge) when the query is right,
    /// None to refuse (403). Sources without one refuse every GET.
    fn handshake(&self, _query: &str) -> Option<String> {
        None
    }

    /// Check the request's signature.
    fn verify(&self, req: &HookRequest<'_>) -> Result<(), verify::BadSignature>;

    /// Parse a verified body (pure: no I/O; the same bytes always give the same items, since
    /// the inbox parses them again later). Err: the body is malformed, say why (logged).
    fn parse(&self, body: &[u8], received_at: Millis) -> Result<Vec<HookItem>, String>;

    /// The answer to an accepted POST: content type and body. Twilio wants TwiML.
    fn accepted(&self) -> (&'static str, &'static str) {
        ("application/json", "{}")
    }
}

/// A configured source before its secrets are read: the server builds it when it starts
/// listening (reading `*_command` / `*_env` then, like every channel).
#[derive(Clone)]
pub struct SourceSpec {
    /// The path under `/hooks/` (for messages before it is built).
    pub path: String,
    pub build: Arc<dyn Fn() -> SourceFuture + Send + Sync>,
}

pub type SourceFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<dyn Source>, String>> + Send>>;

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceSpec({})", self.path)
    }
}

impl PartialEq for SourceSpec {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for SourceSpec {}

impl SourceSpec {
    /// A spec for a source built already (tests).
    pub fn ready(source: Arc<dyn Source>) -> SourceSpec {
        SourceSpec {
            path: source.path().to_string(),
            build: Arc::new(move || {
                let s = Arc::clone(&source);
                Box::pin(async move { Ok(s) })
            }),
        }
    }
}

/// Build every source (reading their secrets).
pub async fn build_all(specs: &[SourceSpec]) -> Result<Sources, String> {
    let mut out = Sources::default();
    for spec in specs {
        out.add((spec.build)().await?);
    }
    Ok(out)
}

/// The configured sources, by path.
#[derive(Clone, Default)]
pub struct Sources(BTreeMap<String, Arc<dyn Source>>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Sources {
    pub fn add(&mut self, source: Arc<dyn Source>) {
        self.0.insert(source.path().to_string(), source);
    }
    pub fn get(&self, path: &str) -> Option<&Arc<dyn Source>> {
        self.0.get(path)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Parse JSON from outside: serde_json refuses nesting deeper than 128 levels itself; this
/// also refuses bodies that are not an object at the top.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))
}

/// Form fields of an `application/x-www-form-urlencoded` body, in order.
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "form body is not UTF-8".to_string())?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "bad percent escape in a form field".to_string())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "form field is not UTF-8".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode_like_browsers_encode() {
        assert_eq!(
            form_fields(b"Body=Hi+there%21&From=%2B15551234567&Empty=&Flag").unwrap(),
            vec![
                ("Body".into(), "Hi there!".into()),
                ("From".into(), "+15551234567".into()),
                ("Empty".into(), "".into()),
                ("Flag".into(), "".into()),
            ]
        );
        assert!(form_fields(b"Body=%zz").is_err());
        assert!(form_fields(b"Body=%ff").is_err());
        assert!(form_fields(b"Body=%4").is_err());
    }

    #[test]
    fn deep_json_is_refused() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_json::<serde_json::Value>(deep.as_bytes()).is_err());
    }
}
