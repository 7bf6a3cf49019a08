//! Webhooks out: configured endpoints receive the workspace's events as signed JSON, from a
//! durable queue, at least once. This module is the pure part: the `[[webhooks]]` config, the
//! event filter, the signature, the delivery id and the retry schedule. The store keeps the
//! queue ([`crate::store::Store::derive_webhooks`] fills it from the events table through its
//! own cursor, `webhooks`); the server delivers it (`server/webhooks.rs`).
//!
//! ```toml
//! [[webhooks]]
//! name = "crm"                                  # `braid webhooks test crm`
//! url = "https://crm.example.com/hooks/braid"   # http or https
//! events = ["message_in", "message_out", "status_changed", "csat_*"]   # or ["*"]
//! secret_command = "pass show braid/webhook-crm"   # or secret_env = "BRAID_WEBHOOK_CRM"
//! timeout = "10s"                               # per attempt (default 10 s)
//! ```
//!
//! # What a receiver gets
//!
//! `POST url` with the body `{"id": DELIVERY, "event": KIND, "at": RFC3339, "data": {...}}`
//! and the headers `Content-Type: application/json`, `X-Braid-Delivery: DELIVERY` (the same on
//! every retry of one event to one endpoint: deduplicate on it), `X-Braid-Event: KIND`,
//! `X-Braid-Timestamp: UNIX SECONDS` (of this attempt) and
//! `X-Braid-Signature: v1=HEX`, where HEX is the lowercase hex HMAC-SHA256, keyed with the
//! endpoint's secret, of `TIMESTAMP + "." + BODY` (the raw body bytes). A receiver recomputes
//! it, compares in constant time, and refuses a timestamp more than a few minutes from its
//! own clock (a replayed request carries an old one and cannot be re-signed without the
//! secret). This is Stripe's scheme with braid's header names.
//!
//! A 2xx marks the delivery done. 5xx, 408, timeouts and connection errors are retried with
//! exponential backoff and jitter (30 s doubling, at most an hour apart) for 24 hours, then
//! the delivery is `failed`. 429 waits for its `Retry-After`. Any other 4xx is a permanent
//! failure at once (the receiver refused that body; `braid webhooks retry NAME` sends the
//! failed ones again).

use crate::model::Millis;
use crate::secret::SecretSource;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

/// The kind of the test event `braid webhooks test NAME` sends.
pub const PING: &str = "ping";

/// Synthesized by the derivation: a conversation was created for a contact who had none (a new
/// customer wrote in).
pub const CONTACT_CREATED: &str = "contact_created";

/// Kinds other parts of braid write or are adding (matched by name; a filter may name them
/// before the events exist in this build).
const OTHER_KINDS: &[&str] = &[CONTACT_CREATED, "consent_changed"];

/// Default time one attempt may take.
pub const DEFAULT_TIMEOUT_MS: i64 = 10_000;

/// `[[webhooks]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub events: Option<Spanned<Vec<String>>>,
    pub secret_command: Option<String>,
    pub secret_env: Option<String>,
    pub timeout: Option<Spanned<String>>,
}

/// Which events an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    /// `["*"]`: every event.
    All,
    /// Kind names; an entry ending in `*` matches the kinds that start with the rest
    /// (`csat_*`).
    Kinds(Vec<String>),
}

impl EventFilter {
    pub fn matches(&self, kind: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Kinds(k) => k.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => p == kind,
            }),
        }
    }

    /// As written in the config (for `braid webhooks status`).
    pub fn names(&self) -> Vec<String> {
        match self {
            EventFilter::All => vec!["*".into()],
            EventFilter::Kinds(k) => k.clone(),
        }
    }
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    pub events: EventFilter,
    /// Where the signing secret comes from (its `Debug` hides it).
    pub secret: SecretSource,
    pub timeout_ms: i64,
}

impl WebhookConfig {
    /// The URL without credentials, query or fragment (what status output shows: a token
    /// in a query string stays out of terminals and logs).
    pub fn display_url(&self) -> String {
        display_url(&self.url)
    }
}

/// `url` without userinfo, query and fragment.
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(invalid url)".into(),
    }
}

/// Every kind name a filter may use.
pub fn known_kinds() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = crate::store::EventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    for k in OTHER_KINDS {
        if !v.contains(k) {
            v.push(k);
        }
    }
    v
}

/// A resolve error: the span, the dotted key, the message.
pub type RawError = (std::ops::Range<usize>, String, String);

/// Check and resolve every `[[webhooks]]`.
pub fn resolve_all(raws: &[Spanned<RawWebhook>]) -> Result<Vec<WebhookConfig>, RawError> {
    let mut out: Vec<WebhookConfig> = Vec::new();
    for raw in raws {
        let c = raw.get_ref().resolve(raw.span())?;
        if out.iter().any(|o| o.name == c.name) {
            return Err((
                raw.span(),
                "webhooks.name".into(),
                format!("two [[webhooks]] are named '{}': give each its own", c.name),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

impl RawWebhook {
    pub fn resolve(&self, whole: std::ops::Range<usize>) -> Result<WebhookConfig, RawError> {
        let err = |span: std::ops::Range<usize>, key: &str, m: String| {
            (span, format!("webhooks.{key}"), m)
        };
        let name = match &self.name {
            Some(n) => {
                let t = n.get_ref().trim();
                if t.is_empty()
                    || t.len() > 64
                    || !t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(err(
                        n.span(),
                        "name",
                        "must be a short name of letters, digits, - and _ (`braid webhooks test \
                         NAME` uses it)"
                            .into(),
                    ));
                }
                t.to_string()
            }
            None => {
                return Err(err(whole, "name", "each [[webhooks]] needs a name".into()));
            }
        };
        let Some(url_raw) = &self.url else {
            return Err(err(
                whole,
                "url",
                format!("webhook '{name}' needs a url (https://...)"),
            ));
        };
        let url = url_raw.get_ref().trim().to_string();
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(u) => {
                return Err(err(
                    url_raw.span(),
                    "url",
                    format!(
                        "webhook '{name}': a url must be http:// or https:// with a host, not \
                         '{}:'",
                        u.scheme()
                    ),
                ));
            }
            Err(e) => {
                return Err(err(
                    url_raw.span(),
                    "url",
                    format!("webhook '{name}': not a url ({e}); write https://host/path"),
                ));
            }
        }
        let events = match &self.events {
            None => {
                return Err(err(
                    whole,
                    "events",
                    format!(
                        "webhook '{name}' needs events = [...] (kind names, or [\"*\"] for every \
                         event)"
                    ),
                ));
            }
            Some(ev) => {
                let list = ev.get_ref();
                if list.iter().any(|k| k.trim() == "*") {
                    EventFilter::All
                } else if list.is_empty() {
                    return Err(err(
                        ev.span(),
                        "events",
                        format!("webhook '{name}': events is empty; name kinds or use [\"*\"]"),
                    ));
                } else {
                    let known = known_kinds();
                    let mut kinds = Vec::new();
                    for k in list {
                        let k = k.trim();
                        let ok = match k.strip_suffix('*') {
                            Some(prefix) => {
                                !prefix.is_empty()
                                    && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                            }
                            None => known.contains(&k),
                        };
                        if !ok {
                            return Err(err(
                                ev.span(),
                                "events",
                                format!(
                                    "webhook '{name}': unknown event kind '{}' (known: {}; a \
                                     name ending in * matches a prefix, \"*\" alone every event)",
                                    crate::sanitize::line(k),
                                    known.join(", ")
                                ),
                            ));
                        }
                        if !kinds.iter().any(|x: &String| x == k) {
                            kinds.push(k.to_string());
                        }
                    }
                    EventFilter::Kinds(kinds)
                }
            }
        };
        let secret = crate::secret::source_from_keys(
            "secret",
            self.secret_command.as_deref(),
            self.secret_env.as_deref(),
            "secret_command",
            "secret_env",
        )
        .map_err(|(key, m)| err(whole.clone(), key, format!("webhook '{name}': {m}")))?;
        let timeout_ms = match &self.timeout {
            Some(t) => {
                let ms = crate::units::parse_duration(t.get_ref())
                    .map_err(|m| err(t.span(), "timeout", m))?;
                if !(1..=120_000).contains(&ms) {
                    return Err(err(
                        t.span(),
                        "timeout",
                        "must be between 1ms and 2m".into(),
                    ));
                }
                ms
            }
            None => DEFAULT_TIMEOUT_MS,
        };
        Ok(WebhookConfig {
            name,
            url,
            events,
            secret,
            timeout_ms,
        })
    }
}

/// `v1=` and the lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The delivery id of event `event` (kind `kind`) to endpoint `endpoint`: the same on every
/// retry and every restart (a hash, so it says nothing about the store), UUID-shaped.
pub fn delivery_id(endpoint: &str, event: i64, kind: &str) -> String {
    let d = Sha256::digest(format!("braid-webhook\0{endpoint}\0{event}\0{kind}").as_bytes());
    let h = hex(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// When failed attempts are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; doubled after each one.
    pub base_ms: i64,
    /// The longest wait between two attempts.
    pub cap_ms: i64,
    /// After this long since the event, a failing delivery is given up (`failed`).
    pub give_up_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 30_000,
            cap_ms: 3_600_000,
            give_up_ms: 24 * 3_600_000,
        }
    }
}

impl Backoff {
    /// The wait after `failures` failed attempts (1: the first), with `jitter` in [0, 1)
    /// spreading it over 75%..125% so many deliveries failing together do not retry together.
    pub fn delay_ms(&self, failures: i64, jitter: f64) -> i64 {
        let exp = (failures.max(1) - 1).min(40) as u32;
        let raw = self.base_ms.saturating_mul(1i64 << exp.min(30));
        let capped = raw.min(self.cap_ms).max(1);
        let f = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
        ((capped as f64) * f) as i64
    }
}

/// A number in [0, 1) from the OS's random source (0.5 if it fails: no jitter).
pub fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// RFC 3339 (UTC, seconds) of a time in ms.
pub fn rfc3339(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_names_prefixes_and_all() {
        let f = EventFilter::Kinds(vec!["message_in".into(), "csat_*".into()]);
        assert!(f.matches("message_in"));
        assert!(!f.matches("message_out"));
        assert!(f.matches("csat_sent"));
        assert!(f.matches("csat_answered"));
        assert!(!f.matches("status_changed"));
        assert!(EventFilter::All.matches("anything"));
    }

    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let a = delivery_id("crm", 7, "message_in");
        assert_eq!(a, delivery_id("crm", 7, "message_in"));
        assert_ne!(a, delivery_id("crm", 8, "message_in"));
        assert_ne!(a, delivery_id("erp", 7, "message_in"));
        assert_ne!(a, delivery_id("crm", 7, CONTACT_CREATED));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0.5), 30_000);
        assert_eq!(b.delay_ms(2, 0.5), 60_000);
        assert_eq!(b.delay_ms(3, 0.5), 120_000);
        assert_eq!(b.delay_ms(30, 0.5), 3_600_000);
        assert_eq!(b.delay_ms(1, 0.0), 22_500);
        assert!(b.delay_ms(1, 0.999) < 37_500);
    }

    #[test]
    fn display_url_drops_credentials_and_query() {
        assert_eq!(
            display_url("https://user:pw@crm.example.com/h?token=abc#x"),
            "https://crm.example.com/h"
        );
    }

    #[test]
    fn rfc3339_is_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
