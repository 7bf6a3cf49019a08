//! The `[webchat]` section of the config file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::Range;
use toml::Spanned;

/// Default listen address: loopback only (put a TLS reverse proxy in front for a real site).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8765";
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 2000;
pub const DEFAULT_VISITOR_MESSAGES_PER_MINUTE: u32 = 20;
pub const DEFAULT_IP_MESSAGES_PER_MINUTE: u32 = 120;
pub const DEFAULT_IP_CONNECTIONS_PER_MINUTE: u32 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 2000;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 20;

/// How the website live chat is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebChatConfig {
    /// Serve the widget (`braid demo` serves it whatever this says).
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Origins (`https://www.example.com`) whose pages may talk to the chat; `*`: any. The
    /// server's own pages (the demo page) are always allowed.
    pub allowed_origins: Vec<String>,
    /// The widget offers an optional email field. What a visitor types there is a claim an
    /// agent confirms (`:claim link`), never a link by itself.
    pub ask_email: bool,
    /// Longest visitor message, in characters.
    pub max_message_chars: usize,
    /// Token buckets: up to N at once, refilled at N a minute.
    pub visitor_messages_per_minute: u32,
    pub ip_messages_per_minute: u32,
    pub ip_connections_per_minute: u32,
    /// Open connections (WebSocket and long-poll visitors) beyond which new ones are refused.
    pub max_connections: usize,
    /// Open connections (WebSockets and pending long polls) from one address; more are refused
    /// (429), so one address cannot hold every slot.
    pub max_connections_per_ip: usize,
    /// The origin the server's own pages (the demo page) are served from behind a reverse
    /// proxy (`https://chat.example.com`). The listen address (`http://127.0.0.1:8765`) is
    /// always one; the request's Host header never is (DNS rebinding).
    pub public_origin: Option<String>,
    /// Behind a reverse proxy on this machine: take the visitor's address for the per-IP limits
    /// from the last `X-Forwarded-For` entry of requests that come from loopback.
    pub trust_forwarded_for: bool,
    /// The team new web chat conversations belong to (None: no team, all agents).
    pub team: Option<String>,
}

impl Default for WebChatConfig {
    fn default() -> Self {
        WebChatConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8765)),
            allowed_origins: Vec::new(),
            ask_email: true,
            max_message_chars: DEFAULT_MAX_MESSAGE_CHARS,
            visitor_messages_per_minute: DEFAULT_VISITOR_MESSAGES_PER_MINUTE,
            ip_messages_per_minute: DEFAULT_IP_MESSAGES_PER_MINUTE,
            ip_connections_per_minute: DEFAULT_IP_CONNECTIONS_PER_MINUTE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            public_origin: None,
            trust_forwarded_for: false,
            team: None,
        }
    }
}

impl WebChatConfig {
    /// Whether a page of `origin` may use the chat (`origin` as the browser sent it).
    pub fn allows_origin(&self, origin: &str) -> bool {
        let o = normalize_origin(origin);
        self.allowed_origins.iter().any(|a| a == "*" || *a == o)
    }
}

/// `HTTPS://Example.com/` -> `https://example.com`.
pub fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `https://host[:port]`: a scheme and a host, nothing after.
fn is_origin(n: &str) -> bool {
    (n.starts_with("http://") || n.starts_with("https://"))
        && !n.contains(' ')
        && n.split("://")
            .nth(1)
            .is_some_and(|h| !h.is_empty() && !h.contains('/'))
}

/// The section as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebChat {
    enabled: Option<Spanned<bool>>,
    listen: Option<Spanned<String>>,
    allowed_origins: Option<Spanned<Vec<String>>>,
    ask_email: Option<Spanned<bool>>,
    max_message_chars: Option<Spanned<i64>>,
    visitor_messages_per_minute: Option<Spanned<i64>>,
    ip_messages_per_minute: Option<Spanned<i64>>,
    ip_connections_per_minute: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_ip: Option<Spanned<i64>>,
    public_origin: Option<Spanned<String>>,
    trust_forwarded_for: Option<Spanned<bool>>,
    team: Option<Spanned<String>>,
}

/// A bad value: its span in the file, its dotted key, and what is wrong.
pub type Invalid = (Range<usize>, &'static str, String);

fn count(
    v: &Option<Spanned<i64>>,
    key: &'static str,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, Invalid> {
    match v {
        None => Ok(default),
        Some(n) if (min..=max).contains(n.get_ref()) => Ok(*n.get_ref()),
        Some(n) => Err((
            n.span(),
            key,
            format!("{} is out of range ({min}..={max})", n.get_ref()),
        )),
    }
}

impl RawWebChat {
    pub fn resolve(&self) -> Result<WebChatConfig, Invalid> {
        let d = WebChatConfig::default();
        let listen = match &self.listen {
            None => d.listen,
            Some(l) => l.get_ref().trim().parse().map_err(|_| {
                (
                    l.span(),
                    "webchat.listen",
                    format!(
                        "bad address '{}' (an IP address and a port, like \"127.0.0.1:8765\" or \"[::]:8765\")",
                        l.get_ref()
                    ),
                )
            })?,
        };
        let public_origin = match &self.public_origin {
            None => None,
            Some(o) if o.get_ref().trim().is_empty() => None,
            Some(o) if is_origin(&normalize_origin(o.get_ref())) => {
                Some(normalize_origin(o.get_ref()))
            }
            Some(o) => {
                return Err((
                    o.span(),
                    "webchat.public_origin",
                    format!(
                        "bad origin '{}' (a scheme and a host, like \"https://chat.example.com\")",
                        o.get_ref()
                    ),
                ));
            }
        };
        let mut allowed_origins = Vec::new();
        if let Some(list) = &self.allowed_origins {
            for o in list.get_ref() {
                let n = normalize_origin(o);
                let ok = n == "*" || is_origin(&n);
                if !ok {
                    return Err((
                        list.span(),
                        "webchat.allowed_origins",
                        format!(
                            "bad origin '{o}' (a scheme and a host, like \"https://www.example.com\", or \"*\")"
                        ),
                    ));
                }
                allowed_origins.push(n);
            }
        }
        let team = match &self.team {
            None => None,
            Some(t) => super::super::team_name(Some(t.get_ref()))
                .map_err(|m| (t.span(), "webchat.team", m))?,
        };
        Ok(WebChatConfig {
            team,
            enabled: self
                .enabled
                .as_ref()
                .map(|b| *b.get_ref())
                .unwrap_or(d.enabled),
            listen,
            allowed_origins,
            ask_email: self
                .ask_email
                .as_ref()
                .map(|b| *b.get_ref())
                .unwrap_or(d.ask_email),
            max_message_chars: count(
                &self.max_message_chars,
                "webchat.max_message_chars",
                1,
                crate::ingest::MAX_BODY_CHARS as i64,
                d.max_message_chars as i64,
            )? as usize,
            visitor_messages_per_minute: count(
                &self.visitor_messages_per_minute,
                "webchat.visitor_messages_per_minute",
                1,
                1_000_000,
                d.visitor_messages_per_minute.into(),
            )? as u32,
            ip_messages_per_minute: count(
                &self.ip_messages_per_minute,
                "webchat.ip_messages_per_minute",
                1,
                1_000_000,
                d.ip_messages_per_minute.into(),
            )? as u32,
            ip_connections_per_minute: count(
                &self.ip_connections_per_minute,
                "webchat.ip_connections_per_minute",
                1,
                1_000_000,
                d.ip_connections_per_minute.into(),
            )? as u32,
            max_connections: count(
                &self.max_connections,
                "webchat.max_connections",
                1,
                1_000_000,
                d.max_connections as i64,
            )? as usize,
            max_connections_per_ip: count(
                &self.max_connections_per_ip,
                "webchat.max_connections_per_ip",
                1,
                1_000_000,
                d.max_connections_per_ip as i64,
            )? as usize,
            public_origin,
            trust_forwarded_for: self
                .trust_forwarded_for
                .as_ref()
                .map(|b| *b.get_ref())
                .unwrap_or(d.trust_forwarded_for),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebChatConfig, Invalid> {
        toml::from_str::<RawWebChat>(text).unwrap().resolve()
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse("").unwrap(), WebChatConfig::default());
        let c = parse(
            "enabled = true\nlisten = \"0.0.0.0:9000\"\nallowed_origins = [\"HTTPS://Shop.example.com/\", \"http://localhost:3000\"]\nask_email = false\nmax_message_chars = 500\nvisitor_messages_per_minute = 5\n",
        )
        .unwrap();
        assert!(c.enabled && !c.ask_email);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_message_chars, 500);
        assert_eq!(c.visitor_messages_per_minute, 5);
        assert!(c.allows_origin("https://shop.example.com"));
        assert!(c.allows_origin("http://localhost:3000"));
        assert!(!c.allows_origin("https://evil.example.com"));
        assert!(!c.allows_origin("null"));
        let any = parse("allowed_origins = [\"*\"]").unwrap();
        assert!(any.allows_origin("https://anything.example"));
    }

    #[test]
    fn bad_values_name_the_key() {
        assert_eq!(
            parse("listen = \"localhost\"").unwrap_err().1,
            "webchat.listen"
        );
        assert_eq!(
            parse("allowed_origins = [\"example.com\"]").unwrap_err().1,
            "webchat.allowed_origins"
        );
        assert_eq!(
            parse("allowed_origins = [\"https://example.com/path\"]")
                .unwrap_err()
                .1,
            "webchat.allowed_origins"
        );
        assert_eq!(
            parse("public_origin = \"chat.example.com\"").unwrap_err().1,
            "webchat.public_origin"
        );
        assert_eq!(
            parse("public_origin = \"HTTPS://Chat.example.com/\"")
                .unwrap()
                .public_origin
                .as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            parse("max_message_chars = 0").unwrap_err().1,
            "webchat.max_message_chars"
        );
        assert_eq!(
            parse("ip_connections_per_minute = -3").unwrap_err().1,
            "webchat.ip_connections_per_minute"
        );
    }

    #[test]
    fn the_example_documents_every_key_with_its_default() {
        let example = include_str!("../../../config/braid.example.toml");
        let section = example
            .split("# [webchat]\n")
            .nth(1)
            .expect("a [webchat] section in the example");
        let body: String = section
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ")))
            .map(|l| format!("{l}\n"))
            .collect();
        for key in [
            "enabled",
            "listen",
            "allowed_origins",
            "ask_email",
            "max_message_chars",
            "visitor_messages_per_minute",
            "ip_messages_per_minute",
            "ip_connections_per_minute",
            "max_connections",
            "max_connections_per_ip",
            "public_origin",
            "trust_forwarded_for",
        ] {
            assert!(
                body.contains(&format!("{key} = ")),
                "{key} is not documented"
            );
        }
        assert_eq!(parse(&body).unwrap(), WebChatConfig::default());
    }
}
