//! A small client of Meta's Graph API, shared by the Meta channels (WhatsApp Cloud API,
//! Instagram, Messenger): a bearer token, JSON in and out, an overall timeout per request, and
//! Graph's errors classified as the outbox needs them ([`SendError`]):
//!
//! - throttling (HTTP 429, Graph codes 4, 17, 32, 613, 80007, 130429, 131056): retried later; a
//!   `Retry-After` header freezes the client until then (sends before that fail at once,
//!   without a request);
//! - the server in trouble (5xx, Graph codes 1, 2, 131000, 131016) or no answer after the
//!   request left (a timeout, a dropped connection): retried, and `may_have_sent` when the
//!   request may have reached Graph (the channel cannot ask, so the dispatcher leaves it for an
//!   agent);
//! - anything else (131047 outside the 24-hour window, 131026 undeliverable, 131051
//!   unsupported type, 100 invalid parameter, 190 expired token...): permanent, with the reason
//!   `CODE: message` in Graph's words (escaped for terminals).
//!
//! The token is never printed: not in `Debug`, not in errors (reqwest's errors name the URL,
//! which never carries it: it goes in the `Authorization` header).

use crate::channels::SendError;
use crate::sanitize::for_terminal_line;
use serde_json::Value;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Graph's address when `api_url` is not configured.
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com/v21.0";

/// How long one Graph request may take, when the caller does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest answer read from Graph (JSON; downloads have their own limit).
const MAX_ANSWER: usize = 1 << 20;

/// Graph's throttling codes (per app, per account, per pair of numbers).
pub const RATE_LIMIT_CODES: &[i64] = &[4, 17, 32, 613, 80007, 130429, 131056];

/// Codes for a Graph in trouble: worth another try.
const TEMPORARY_CODES: &[i64] = &[1, 2, 131000, 131016];

/// A Graph client for one token.
pub struct Graph {
    base: String,
    token: String,
    http: reqwest::Client,
    /// Who the errors name ("WhatsApp", "Instagram").
    label: &'static str,
    /// A `Retry-After` received: no request before then.
    frozen_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("base", &self.base)
            .field("token", &"<hidden>")
            .finish()
    }
}

/// A failed Graph request: the outbox's view of it, and Graph's code when it answered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub send: SendError,
    /// Graph's `error.code` (None: no Graph error object, a network failure).
    pub code: Option<i64>,
    /// The HTTP status (None: no answer).
    pub status: Option<u16>,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.send.reason)
    }
}

impl From<GraphError> for SendError {
    fn from(e: GraphError) -> SendError {
        e.send
    }
}

/// The API's base URL as configured: http(s), no trailing slash, no query.
pub fn check_base_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("must start with https:// (like {DEFAULT_API_URL}), or http:// for a local test server")
        })?;
    if rest.is_empty() || url.contains(['?', '#', ' ']) || url.chars().any(char::is_control) {
        return Err(format!(
            "must be a URL like {DEFAULT_API_URL}, without a query"
        ));
    }
    Ok(url.to_string())
}

/// The scheme, host and port of a URL ("https://graph.facebook.com").
fn origin(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

impl Graph {
    /// A client of `base` (see [`check_base_url`]) with `token`; each request must finish
    /// within `timeout`.
    pub fn new(
        base: &str,
        token: String,
        timeout: Duration,
        label: &'static str,
    ) -> Result<Graph, String> {
        let base = check_base_url(base)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("braid/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("{label}: cannot build an HTTP client: {e}"))?;
        Ok(Graph {
            base,
            token,
            http,
            label,
            frozen_until: Mutex::new(None),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// How long Graph asked us to wait, if it did and the time is not up.
    pub fn frozen_for(&self) -> Option<Duration> {
        let mut g = self
            .frozen_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *g {
            Some(t) if t > Instant::now() => Some(t - Instant::now()),
            Some(_) => {
                *g = None;
                None
            }
            None => None,
        }
    }

    fn freeze(&self, d: Duration) {
        let d = d.min(Duration::from_secs(3600));
        let mut g = self
            .frozen_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *g = Some(Instant::now() + d);
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// POST a JSON body to `path` (under the base URL); Graph's JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, GraphError> {
        self.check_frozen()?;
        let req = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body);
        self.answer(req.send().await).await
    }

    /// GET `path` (under the base URL); Graph's JSON answer.
    pub async fn get_json(&self, path: &str) -> Result<Value, GraphError> {
        self.check_frozen()?;
        let req = self.http.get(self.url(path)).bearer_auth(&self.token);
        self.answer(req.send().await).await
    }

    /// Download a file Graph handed out (a media URL), with the token, at most `max` bytes.
    /// The token only goes to https URLs, or to the configured API's own origin (a local test
    /// server): never in clear text to a host braid was merely told about.
    pub async fn download(&self, url: &str, max: usize) -> Result<Vec<u8>, String> {
        let label = self.label;
        if !(url.starts_with("https://") || origin(url) == origin(&self.base)) {
            return Err(format!(
                "{label} gave a media address that is not https: not sending the token there"
            ));
        }
        let mut resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("{label}: downloading the file failed: {}", net_text(&e)))?;
        if !resp.status().is_success() {
            return Err(format!(
                "{label}: downloading the file failed with HTTP {} (the link lives 5 minutes: try :save again)",
                resp.status().as_u16()
            ));
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("{label}: the file is larger than {} MB", max >> 20));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("{label}: downloading the file failed: {}", net_text(&e)))?
        {
            if out.len() + chunk.len() > max {
                return Err(format!("{label}: the file is larger than {} MB", max >> 20));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    fn check_frozen(&self) -> Result<(), GraphError> {
        match self.frozen_for() {
            Some(d) => Err(GraphError {
                send: SendError {
                    reason: rate_limited(self.label, None, Some(d)),
                    retry: true,
                    may_have_sent: false,
                },
                code: None,
                status: None,
            }),
            None => Ok(()),
        }
    }

    async fn answer(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, GraphError> {
        let label = self.label;
        let mut resp = sent.map_err(|e| network_error(label, &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > MAX_ANSWER {
                        break;
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                // The request was answered with a status but the body broke off.
                Err(e) => return Err(network_error(label, &e)),
            }
        }
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|_| GraphError {
                send: SendError {
                    reason: format!("{label} answered something braid cannot read"),
                    retry: false,
                    may_have_sent: true,
                },
                code: None,
                status: Some(status),
            });
        }
        let err = classify(label, status, &body, retry_after);
        if err.send.retry
            && !err.send.may_have_sent
            && let Some(d) = retry_after
        {
            self.freeze(d);
        }
        Err(err)
    }
}

/// reqwest's words for a failure, without the URL (it names no secret, but a media URL is
/// long and signed), escaped.
fn net_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(u) = e.url() {
        text = text.replace(&format!(" for url ({})", u.as_str()), "");
        text = text.replace(u.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    for_terminal_line(text.trim()).into_owned()
}

/// A request that got no (complete) answer.
fn network_error(label: &str, e: &reqwest::Error) -> GraphError {
    // Refused before the request left (no connection): nothing reached Graph.
    let connect = e.is_connect() || e.is_builder();
    let what = if e.is_timeout() {
        format!("{label} did not answer in time")
    } else {
        format!("network error talking to {label}")
    };
    let detail = net_text(e);
    GraphError {
        send: SendError {
            reason: format!("{what}: {}", detail.trim()),
            retry: true,
            may_have_sent: !connect,
        },
        code: None,
        status: None,
    }
}

/// The reason of a throttled request.
fn rate_limited(label: &str, graph: Option<&str>, wait: Option<Duration>) -> String {
    let mut s = format!("rate limited by {label}");
    if let Some(g) = graph {
        s.push_str(&format!(" ({g})"));
    }
    match wait {
        Some(d) => s.push_str(&format!(
            ", retry in {}s",
            d.as_secs() + u64::from(d.subsec_nanos() > 0)
        )),
        None => s.push_str(", retried later"),
    }
    s
}

/// Classify a Graph error answer: HTTP `status`, its `body` (`{"error":{"code","message",
/// "error_data":{"details"}}}` when Graph wrote it), and a `Retry-After`.
pub fn classify(
    label: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> GraphError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let message = error
        .and_then(|e| {
            e.get("error_user_msg")
                .or_else(|| e.get("message"))
                .or_else(|| e.get("title"))
        })
        .and_then(Value::as_str)
        .map(|m| cut(&for_terminal_line(m), 200));
    let details = error
        .and_then(|e| e.get("error_data"))
        .and_then(|d| d.get("details"))
        .and_then(Value::as_str)
        .map(|m| cut(&for_terminal_line(m), 300))
        .filter(|d| Some(d) != message.as_ref());
    let words = match (code, &message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => format!("{c}: HTTP {status}"),
        (None, Some(m)) => format!("HTTP {status}: {m}"),
        (None, None) => format!("HTTP {status}"),
    };
    let words = match details {
        Some(d) => format!("{words} ({d})"),
        None => words,
    };
    let rate_limit = status == 429 || code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c));
    let (reason, retry, may_have_sent) = if rate_limit {
        (rate_limited(label, Some(&words), retry_after), true, false)
    } else if code.is_some_and(|c| TEMPORARY_CODES.contains(&c)) || status >= 500 {
        // Graph took the request and stumbled: it may have sent the message.
        (format!("{label}: {words}"), true, true)
    } else {
        (format!("{label}: {words}{}", advice(code)), false, false)
    };
    GraphError {
        send: SendError {
            reason,
            retry,
            may_have_sent,
        },
        code,
        status: Some(status),
    }
}

/// What to do about a permanent error, when braid knows.
fn advice(code: Option<i64>) -> &'static str {
    match code {
        Some(131047) => {
            " — more than 24 hours since the customer last wrote: send a template (:template NAME PARAMS)"
        }
        Some(190) => " — the access token expired or was revoked: give braid a new one",
        Some(131026) => " — the number cannot receive WhatsApp messages: reply on another channel",
        Some(132000 | 132001 | 132005 | 132007 | 132012 | 132015 | 132016) => {
            " — check the template's name, language and parameters in WhatsApp Manager"
        }
        _ => "",
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        s.chars().take(max).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn err(code: i64, msg: &str) -> Vec<u8> {
        serde_json::json!({"error": {"message": msg, "type": "OAuthException", "code": code,
            "fbtrace_id": "A1"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn throttling_is_retried_and_respects_retry_after() {
        for code in RATE_LIMIT_CODES {
            let e = classify("WhatsApp", 400, &err(*code, "slow down"), None);
            assert!(e.send.retry, "{code}");
            assert!(!e.send.may_have_sent, "{code}");
            assert!(
                e.send.reason.starts_with("rate limited by WhatsApp"),
                "{code}"
            );
        }
        let e = classify("WhatsApp", 429, b"", Some(Duration::from_secs(7)));
        assert_eq!(
            e.send.reason,
            "rate limited by WhatsApp (HTTP 429), retry in 7s"
        );
        assert!(e.send.retry);
        let e = classify("WhatsApp", 400, &err(130429, "Rate limit hit"), None);
        assert_eq!(
            e.send.reason,
            "rate limited by WhatsApp (130429: Rate limit hit), retried later"
        );
        assert_eq!(e.code, Some(130429));
    }

    #[test]
    fn server_trouble_is_retried_and_may_have_sent() {
        let e = classify("WhatsApp", 500, &err(1, "An unknown error occurred"), None);
        assert!(e.send.retry && e.send.may_have_sent);
        let e = classify("WhatsApp", 502, b"<html>bad gateway</html>", None);
        assert!(e.send.retry && e.send.may_have_sent);
        assert_eq!(e.send.reason, "WhatsApp: HTTP 502");
    }

    #[test]
    fn permanent_errors_say_code_and_message_sanitized() {
        for code in [131047, 131026, 131051, 100, 190, 132001] {
            let e = classify("WhatsApp", 400, &err(code, "nope"), None);
            assert!(!e.send.retry, "{code}");
            assert!(!e.send.may_have_sent, "{code}");
            assert!(
                e.send
                    .reason
                    .starts_with(&format!("WhatsApp: {code}: nope")),
                "{}",
                e.send.reason
            );
        }
        let e = classify("WhatsApp", 400, &err(131047, "Re-engagement message"), None);
        assert!(e.send.reason.contains(":template"), "{}", e.send.reason);
        let e = classify(
            "WhatsApp",
            400,
            &err(100, "bad \x1b[31mred\x1b[0m\nparam"),
            None,
        );
        assert!(!e.send.reason.contains('\x1b'), "{:?}", e.send.reason);
        assert!(!e.send.reason.contains('\n'), "{:?}", e.send.reason);
        let body = serde_json::json!({"error": {"message": "(#131051) Unsupported message type",
            "code": 131051, "error_data": {"details": "Message type is not currently supported"}}});
        let e = classify("WhatsApp", 400, body.to_string().as_bytes(), None);
        assert_eq!(
            e.send.reason,
            "WhatsApp: 131051: (#131051) Unsupported message type (Message type is not currently supported)"
        );
    }

    #[test]
    fn base_urls_are_checked_and_the_token_is_not_shown() {
        assert_eq!(
            check_base_url("https://graph.facebook.com/v21.0/").unwrap(),
            "https://graph.facebook.com/v21.0"
        );
        assert!(check_base_url("graph.facebook.com").is_err());
        assert!(check_base_url("https://x/?a=1").is_err());
        let g = Graph::new(
            DEFAULT_API_URL,
            "EAAGsecret".into(),
            DEFAULT_TIMEOUT,
            "WhatsApp",
        )
        .unwrap();
        assert!(!format!("{g:?}").contains("EAAGsecret"));
        assert_eq!(
            origin("https://graph.facebook.com/v21.0"),
            "https://graph.facebook.com"
        );
        assert_eq!(origin("http://127.0.0.1:9/x/y"), "http://127.0.0.1:9");
    }

    #[tokio::test]
    async fn the_token_is_not_sent_to_a_clear_text_stranger() {
        let g = Graph::new(
            "https://graph.example",
            "tok".into(),
            DEFAULT_TIMEOUT,
            "WhatsApp",
        )
        .unwrap();
        let e = g.download("http://evil.example/f", 10).await.unwrap_err();
        assert!(e.contains("not https"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_was_not_sent() {
        // A port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let g = Graph::new(
            &format!("http://{addr}/v21.0"),
            "tok".into(),
            Duration::from_secs(2),
            "WhatsApp",
        )
        .unwrap();
        let e = g
            .post_json("1/messages", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(e.send.retry);
        assert!(!e.send.may_have_sent, "{:?}", e.send);
        assert!(!e.send.reason.contains("tok"));
    }
}
