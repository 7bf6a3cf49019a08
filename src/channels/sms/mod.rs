//! SMS through a Twilio-compatible REST API (Twilio itself, or any provider speaking the same
//! API at another `api_url`).
//!
//! - Inbound: the provider POSTs each message to `PUBLIC_URL/hooks/sms` (form fields `From`,
//!   `To`, `Body`, `MessageSid`, `NumMedia`, `MediaUrl0`..., `MediaContentType0`...), signed with
//!   `X-Twilio-Signature` under the auth token over the exact public URL (configured: braid sits
//!   behind a proxy and cannot know it) and the sorted form parameters. Unsigned or forged: 403,
//!   nothing stored. Media arrive as placeholders (`[image/jpeg attachment]`) with their URLs
//!   in the message's meta.
//! - Keywords: a message that is exactly STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT (any
//!   case, spaces around) records the customer's opt-out, START, YES or UNSTOP their opt-in; the
//!   message itself is kept in the timeline too. The provider answers the keyword itself and
//!   refuses to send to an opted-out number (error 21610); braid refuses before asking.
//! - Outbound ([`send`]): `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json`, with a
//!   status callback to `PUBLIC_URL/hooks/sms/status` whose reports (sent, delivered, read,
//!   failed with the error) move the message forward, also when they arrive out of order.
//! - [`segments`](crate::segments): what a text costs in SMS (GSM-7 or UCS-2), for the
//!   composer.

pub mod send;

pub use crate::segments::{Encoding, Segments, segments};
pub use send::SmsSender;

use crate::channels::hooks::verify::{self, BadSignature};
use crate::channels::hooks::{
    ConsentChange, HookItem, HookRequest, Source, SourceSpec, StatusReport, form_fields,
};
use crate::identity::Claim;
use crate::ingest::Inbound;
use crate::model::{Channel, Delivery, Direction, IdentityKind, Millis};
use serde::Deserialize;
use std::sync::Arc;

/// Twilio's API, the default `api_url`.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// The path of inbound messages under `/hooks/`.
pub const INBOUND_PATH: &str = "sms";
/// The path of status callbacks under `/hooks/`.
pub const STATUS_PATH: &str = "sms/status";

/// The empty TwiML answer: take the message, reply nothing.
pub const TWIML_EMPTY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

/// `[sms]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmsConfig {
    pub account_sid: Option<String>,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub auth_token_command: Option<String>,
    pub auth_token_env: Option<String>,
    pub api_url: Option<String>,
    pub public_url: Option<String>,
    pub account: Option<String>,
    pub team: Option<String>,
}

/// The configured SMS account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsConfig {
    /// The provider's account id (`AC...`): the REST path and the basic-auth user.
    pub account_sid: String,
    /// Our number in E.164, the `From` of replies (None: `messaging_service_sid` picks it).
    pub from: Option<String>,
    /// A Messaging Service that picks the sending number (sent instead of `From`).
    pub messaging_service_sid: Option<String>,
    /// The auth token: authenticates REST calls and signs the webhooks.
    pub auth_token: crate::secret::SecretSource,
    /// The API's base URL, without a trailing `/`.
    pub api_url: String,
    /// The public base URL the provider calls (`https://help.example.com`), without a trailing
    /// `/`: the webhooks are `PUBLIC_URL/hooks/sms` and `PUBLIC_URL/hooks/sms/status`.
    pub public_url: String,
    /// The account name messages are stored under (default: `from`, else the service sid).
    pub account: String,
    pub team: Option<String>,
}

/// An id going into a URL path or a form: letters, digits, `-` and `_`.
fn is_sid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An `http(s)://` base URL with a host, trailing `/` removed; no query or fragment.
fn base_url(s: &str) -> Option<String> {
    let t = s.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))?;
    let ok = !rest.is_empty()
        && !rest.starts_with('/')
        && !t.contains(['?', '#', ' '])
        && !t.chars().any(char::is_control);
    ok.then(|| t.to_string())
}

impl RawSmsConfig {
    pub fn resolve(&self) -> Result<SmsConfig, (&'static str, String)> {
        let account_sid = self.account_sid.as_deref().unwrap_or("").trim().to_string();
        if !is_sid(&account_sid) {
            return Err((
                "account_sid",
                "must be the provider's account SID (AC..., letters and digits)".into(),
            ));
        }
        let from = match self
            .from
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(f) => Some(
                crate::identity::normalize(IdentityKind::Phone, f)
                    .map_err(|_| ("from", "must be our number in E.164 (+14155550100)".into()))?,
            ),
            None => None,
        };
        let messaging_service_sid = match self
            .messaging_service_sid
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) if is_sid(s) => Some(s.to_string()),
            Some(_) => {
                return Err((
                    "messaging_service_sid",
                    "must be a Messaging Service SID (MG..., letters and digits)".into(),
                ));
            }
            None => None,
        };
        if from.is_none() && messaging_service_sid.is_none() {
            return Err((
                "from",
                "give our number (from = \"+14155550100\") or messaging_service_sid".into(),
            ));
        }
        let auth_token = crate::secret::source_from_keys(
            "auth_token",
            self.auth_token_command.as_deref(),
            self.auth_token_env.as_deref(),
            "auth_token_command",
            "auth_token_env",
        )?;
        let api_url = match self.api_url.as_deref() {
            None => DEFAULT_API_URL.to_string(),
            Some(u) => base_url(u).ok_or((
                "api_url",
                "must be an http(s):// base URL (default https://api.twilio.com)".to_string(),
            ))?,
        };
        let public_url = base_url(self.public_url.as_deref().unwrap_or("")).ok_or((
            "public_url",
            "must be the exact public base URL the provider calls, as https://help.example.com \
             (the webhook signatures cover it; braid behind a proxy cannot know it)"
                .to_string(),
        ))?;
        let account = match self.account.as_deref().map(str::trim) {
            Some(a) if a.chars().any(char::is_control) => {
                return Err(("account", "must be a name on one line".into()));
            }
            Some(a) if !a.is_empty() => a.to_string(),
            _ => from
                .clone()
                .or_else(|| messaging_service_sid.clone())
                .unwrap_or_default(),
        };
        Ok(SmsConfig {
            account_sid,
            from,
            messaging_service_sid,
            auth_token,
            api_url,
            public_url,
            account,
            team: crate::channels::team_name(self.team.as_deref()).map_err(|m| ("team", m))?,
        })
    }
}

impl SmsConfig {
    /// The URL the provider calls for `path` under `/hooks/`.
    pub fn hook_url(&self, path: &str) -> String {
        format!("{}/hooks/{path}", self.public_url)
    }

    /// The two webhook sources (inbound messages, status callbacks), built once the auth token
    /// is read.
    pub fn specs(&self) -> Vec<SourceSpec> {
        [false, true]
            .into_iter()
            .map(|status| {
                let config = self.clone();
                SourceSpec {
                    path: if status { STATUS_PATH } else { INBOUND_PATH }.to_string(),
                    build: Arc::new(move || {
                        let config = config.clone();
                        Box::pin(async move {
                            let token = crate::secret::resolve(
                                &config.auth_token,
                                "auth_token",
                                "[sms]",
                                true,
                            )
                            .await?;
                            let source = if status {
                                SmsSource::status(&config, token.into_bytes())
                            } else {
                                SmsSource::inbound(&config, token.into_bytes())
                            };
                            Ok(Arc::new(source) as Arc<dyn Source>)
                        })
                    }),
                }
            })
            .collect()
    }
}

/// `/hooks/sms` (inbound messages) or `/hooks/sms/status` (status callbacks).
pub struct SmsSource {
    path: &'static str,
    account: String,
    public_url: String,
    token: Vec<u8>,
}

impl SmsSource {
    pub fn inbound(config: &SmsConfig, token: Vec<u8>) -> SmsSource {
        SmsSource {
            path: INBOUND_PATH,
            account: config.account.clone(),
            public_url: config.public_url.clone(),
            token,
        }
    }

    pub fn status(config: &SmsConfig, token: Vec<u8>) -> SmsSource {
        SmsSource {
            path: STATUS_PATH,
            ..SmsSource::inbound(config, token)
        }
    }
}

/// A base URL with its scheme's default port added (`https://h` -> `https://h:443`) or removed
/// (`https://h:443` -> `https://h`); None when it names another port.
fn with_other_port_form(base: &str) -> Option<String> {
    let (scheme, port) = if base.starts_with("https://") {
        ("https://", ":443")
    } else {
        ("http://", ":80")
    };
    let rest = base.strip_prefix(scheme)?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if let Some(bare) = host.strip_suffix(port) {
        Some(format!("{scheme}{bare}{path}"))
    } else if host.ends_with(']') || !host.contains(':') {
        Some(format!("{scheme}{host}{port}{path}"))
    } else {
        None
    }
}

/// The keywords carriers and Twilio treat as an opt-out.
const OPT_OUT: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// The keywords that opt back in.
const OPT_IN: [&str; 3] = ["START", "YES", "UNSTOP"];

/// Whether a message is an opt-out (Some(true)) or opt-in (Some(false)) keyword.
pub fn keyword(body: &str) -> Option<bool> {
    let word = body.trim().to_ascii_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(true)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// The most media one message carries (Twilio: 10).
const MAX_MEDIA: usize = 10;

/// A content type as shown in a placeholder: `type/subtype` in a safe alphabet, else "file".
fn content_type(ct: Option<&str>) -> String {
    let ct = ct.unwrap_or("").trim().to_ascii_lowercase();
    if !ct.is_empty()
        && ct.len() <= 100
        && ct.contains('/')
        && ct
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
    {
        ct
    } else {
        "file".to_string()
    }
}

/// A status callback's words for the common error codes (Twilio sends the code only).
fn error_words(code: &str) -> Option<&'static str> {
    Some(match code {
        "21610" => "the customer opted out of SMS (replied STOP)",
        "21211" => "invalid 'To' phone number",
        "21408" => "SMS to this region is not enabled on the account",
        "21614" => "the number cannot receive SMS (a landline?)",
        "30003" => "unreachable destination handset",
        "30004" => "message blocked",
        "30005" => "unknown destination handset",
        "30006" => "landline or unreachable carrier",
        "30007" => "filtered by the carrier as spam",
        "30008" => "unknown error",
        _ => return None,
    })
}

impl Source for SmsSource {
    fn path(&self) -> &str {
        self.path
    }

    fn verify(&self, req: &HookRequest<'_>) -> Result<(), BadSignature> {
        let params = form_fields(req.body).map_err(|_| BadSignature::Malformed("form body"))?;
        let query = if req.query.is_empty() {
            String::new()
        } else {
            format!("?{}", req.query)
        };
        let header = req.header("x-twilio-signature");
        let url = format!("{}/hooks/{}{query}", self.public_url, self.path);
        let first = verify::twilio(&self.token, &url, &params, header);
        if first != Err(BadSignature::Mismatch) {
            return first;
        }
        // Twilio signs some URLs with the scheme's default port written out and some without
        // (its own libraries accept both): try the other form.
        match with_other_port_form(&self.public_url) {
            Some(base) => verify::twilio(
                &self.token,
                &format!("{base}/hooks/{}{query}", self.path),
                &params,
                header,
            ),
            None => first,
        }
    }

    fn parse(&self, body: &[u8], received_at: Millis) -> Result<Vec<HookItem>, String> {
        let fields = form_fields(body)?;
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let sid = get("MessageSid")
            .or_else(|| get("SmsSid"))
            .map(str::trim)
            .ok_or("MessageSid: missing")?;
        if !is_sid(sid) {
            return Err("MessageSid: not an id".into());
        }
        if self.path == STATUS_PATH {
            return Ok(self.parse_status(sid, &get, received_at));
        }
        let from = get("From").ok_or("From: missing")?;
        crate::identity::normalize(IdentityKind::Phone, from).map_err(|e| format!("From: {e}"))?;
        let mut text = get("Body").unwrap_or("").to_string();
        let num_media: usize = match get("NumMedia") {
            None => 0,
            Some(n) => n
                .trim()
                .parse()
                .map_err(|_| "NumMedia: not a number".to_string())?,
        };
        if num_media > MAX_MEDIA {
            return Err(format!("NumMedia: more than {MAX_MEDIA}"));
        }
        let mut media = Vec::new();
        for i in 0..num_media {
            let ct = content_type(get(&format!("MediaContentType{i}")));
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("[{ct} attachment]"));
            media.push(serde_json::json!({
                "content_type": ct,
                "url": get(&format!("MediaUrl{i}")).map(crate::sanitize::line),
            }));
        }
        let meta = serde_json::json!({
            "sms": {
                "to": get("To").map(crate::sanitize::line),
                "media": media,
            }
        });
        let mut items = vec![HookItem::Message(Box::new(Inbound {
            channel: Channel::Sms,
            account: self.account.clone(),
            external_id: sid.to_string(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Phone, from),
            linked: Vec::new(),
            customer_name: None,
            author: None,
            subject: None,
            body: text,
            sent_at: received_at,
            meta: Some(meta),
            cursor: None,
        }))];
        let body = get("Body").unwrap_or("");
        if let Some(opted_out) = keyword(body) {
            items.push(HookItem::Consent(ConsentChange {
                channel: Channel::Sms,
                kind: IdentityKind::Phone,
                value: from.to_string(),
                opted_out,
                keyword: crate::sanitize::line(body),
                at: received_at,
            }));
        }
        Ok(items)
    }

    fn accepted(&self) -> (&'static str, &'static str) {
        ("text/xml", TWIML_EMPTY)
    }
}

impl SmsSource {
    fn parse_status<'a>(
        &self,
        sid: &str,
        get: &impl Fn(&str) -> Option<&'a str>,
        at: Millis,
    ) -> Vec<HookItem> {
        let status = get("MessageStatus")
            .or_else(|| get("SmsStatus"))
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let delivery = match status.as_str() {
            "sent" => Delivery::Sent,
            "delivered" => Delivery::Delivered,
            "read" => Delivery::Read,
            "undelivered" | "failed" | "canceled" => Delivery::Failed,
            // queued, accepted, scheduled, sending: nothing braid shows.
            _ => return Vec::new(),
        };
        let code = get("ErrorCode").map(str::trim);
        let error = (delivery == Delivery::Failed).then(|| {
            let words = get("ErrorMessage")
                .map(crate::sanitize::line)
                .or_else(|| code.and_then(error_words).map(str::to_string))
                .unwrap_or_else(|| status.clone());
            let words: String = words.chars().take(200).collect();
            match code {
                Some(c) => format!("{}: {words}", crate::sanitize::line(c)),
                None => words,
            }
        });
        let mut items = vec![HookItem::Status(StatusReport {
            channel: Channel::Sms,
            external_id: sid.to_string(),
            delivery,
            error,
            at,
        })];
        // The provider refused because the customer opted out: remember it.
        if code == Some(send::OPTED_OUT_CODE)
            && let Some(to) = get("To")
            && crate::identity::normalize(IdentityKind::Phone, to).is_ok()
        {
            items.push(HookItem::Consent(ConsentChange {
                channel: Channel::Sms,
                kind: IdentityKind::Phone,
                value: to.to_string(),
                opted_out: true,
                keyword: send::OPTED_OUT_CODE.to_string(),
                at,
            }));
        }
        items
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw() -> RawSmsConfig {
        RawSmsConfig {
            account_sid: Some("AC0123".into()),
            from: Some("+1 415 555 0100".into()),
            auth_token_env: Some("TWILIO_TOKEN".into()),
            public_url: Some("https://help.example.com/".into()),
            ..Default::default()
        }
    }

    fn config() -> SmsConfig {
        raw().resolve().unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = config();
        assert_eq!(c.from.as_deref(), Some("+14155550100"));
        assert_eq!(c.account, "+14155550100");
        assert_eq!(c.api_url, DEFAULT_API_URL);
        assert_eq!(c.public_url, "https://help.example.com");
        assert_eq!(
            c.hook_url(STATUS_PATH),
            "https://help.example.com/hooks/sms/status"
        );
        let svc = RawSmsConfig {
            from: None,
            messaging_service_sid: Some("MG99".into()),
            api_url: Some("http://127.0.0.1:9/".into()),
            ..raw()
        }
        .resolve()
        .unwrap();
        assert_eq!(svc.account, "MG99");
        assert_eq!(svc.api_url, "http://127.0.0.1:9");
        for (r, key) in [
            (
                RawSmsConfig {
                    account_sid: None,
                    ..raw()
                },
                "account_sid",
            ),
            (
                RawSmsConfig {
                    account_sid: Some("AC/../x".into()),
                    ..raw()
                },
                "account_sid",
            ),
            (
                RawSmsConfig {
                    from: Some("12".into()),
                    ..raw()
                },
                "from",
            ),
            (
                RawSmsConfig {
                    from: None,
                    ..raw()
                },
                "from",
            ),
            (
                RawSmsConfig {
                    auth_token_env: None,
                    ..raw()
                },
                "auth_token_command",
            ),
            (
                RawSmsConfig {
                    public_url: None,
                    ..raw()
                },
                "public_url",
            ),
            (
                RawSmsConfig {
                    public_url: Some("help.example.com".into()),
                    ..raw()
                },
                "public_url",
            ),
            (
                RawSmsConfig {
                    api_url: Some("ftp://x".into()),
                    ..raw()
                },
                "api_url",
            ),
            (
                RawSmsConfig {
                    team: Some("a\nb".into()),
                    ..raw()
                },
                "team",
            ),
        ] {
            assert_eq!(r.resolve().unwrap_err().0, key, "{r:?}");
        }
    }

    #[test]
    fn the_default_port_is_accepted_written_out_or_not() {
        assert_eq!(
            with_other_port_form("https://h.example.com").as_deref(),
            Some("https://h.example.com:443")
        );
        assert_eq!(
            with_other_port_form("https://h.example.com:443/braid").as_deref(),
            Some("https://h.example.com/braid")
        );
        assert_eq!(
            with_other_port_form("http://[::1]").as_deref(),
            Some("http://[::1]:80")
        );
        assert_eq!(with_other_port_form("https://h.example.com:8443"), None);
        let c = config();
        let s = SmsSource::inbound(&c, b"tok".to_vec());
        let body = b"MessageSid=SM1&From=%2B4915112345678";
        let params = form_fields(body).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-twilio-signature",
            verify::twilio_sign(b"tok", "https://help.example.com:443/hooks/sms", &params)
                .parse()
                .unwrap(),
        );
        let req = HookRequest {
            path: "sms",
            query: "",
            headers: &headers,
            body,
            now: 0,
        };
        assert_eq!(s.verify(&req), Ok(()));
    }

    #[test]
    fn keywords_are_whole_words_in_any_case() {
        for w in [
            "STOP",
            "stop",
            " Stop\n",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
        ] {
            assert_eq!(keyword(w), Some(true), "{w}");
        }
        for w in ["START", "yes", "Unstop"] {
            assert_eq!(keyword(w), Some(false), "{w}");
        }
        for w in ["stop it", "please stop", "STOP!", "", "yes please"] {
            assert_eq!(keyword(w), None, "{w}");
        }
    }

    #[test]
    fn an_inbound_message_with_media_and_a_keyword() {
        let s = SmsSource::inbound(&config(), b"t".to_vec());
        let body = form(&[
            ("MessageSid", "SM1"),
            ("From", "+4915112345678"),
            ("To", "+14155550100"),
            ("Body", "Stop"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m/1"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaContentType1", "<b>evil</b>"),
        ]);
        let items = s.parse(&body, 5).unwrap();
        let HookItem::Message(m) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(m.channel, Channel::Sms);
        assert_eq!(m.account, "+14155550100");
        assert_eq!(m.external_id, "SM1");
        assert_eq!(
            m.customer,
            Claim::new(IdentityKind::Phone, "+4915112345678")
        );
        assert_eq!(m.body, "Stop\n[image/jpeg attachment]\n[file attachment]");
        let meta = m.meta.as_ref().unwrap();
        assert_eq!(meta["sms"]["media"][0]["url"], "https://api.twilio.com/m/1");
        let HookItem::Consent(c) = &items[1] else {
            panic!("{items:?}")
        };
        assert!(c.opted_out);
        assert_eq!(c.keyword, "Stop");
        assert_eq!(items.len(), 2);

        let plain = form(&[
            ("MessageSid", "SM2"),
            ("From", "+4915112345678"),
            ("Body", "hi"),
        ]);
        assert_eq!(s.parse(&plain, 5).unwrap().len(), 1);
        for (bad, why) in [
            (form(&[("From", "+4915112345678")]), "MessageSid"),
            (form(&[("MessageSid", "SM3")]), "From"),
            (form(&[("MessageSid", "SM3"), ("From", "12")]), "From"),
            (
                form(&[
                    ("MessageSid", "SM3"),
                    ("From", "+4915112345678"),
                    ("NumMedia", "99"),
                ]),
                "NumMedia",
            ),
        ] {
            let e = s.parse(&bad, 5).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn status_callbacks() {
        let s = SmsSource::status(&config(), b"t".to_vec());
        let parse = |pairs: &[(&str, &str)]| s.parse(&form(pairs), 9).unwrap();
        let items = parse(&[("MessageSid", "SM9"), ("MessageStatus", "delivered")]);
        let HookItem::Status(r) = &items[0] else {
            panic!()
        };
        assert_eq!(
            (r.delivery, r.external_id.as_str(), r.error.clone()),
            (Delivery::Delivered, "SM9", None)
        );
        assert!(parse(&[("MessageSid", "SM9"), ("MessageStatus", "queued")]).is_empty());
        let items = parse(&[
            ("MessageSid", "SM9"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]);
        let HookItem::Status(r) = &items[0] else {
            panic!()
        };
        assert_eq!(r.delivery, Delivery::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some("30003: unreachable destination handset")
        );
        let items = parse(&[
            ("MessageSid", "SM9"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "21610"),
            ("To", "+4915112345678"),
        ]);
        assert_eq!(items.len(), 2);
        let HookItem::Consent(c) = &items[1] else {
            panic!()
        };
        assert!(c.opted_out);
    }

    #[test]
    fn the_signature_covers_the_public_url_the_query_and_the_fields() {
        let c = config();
        let s = SmsSource::inbound(&c, b"tok".to_vec());
        let body = form(&[
            ("MessageSid", "SM1"),
            ("From", "+4915112345678"),
            ("Body", "hi"),
        ]);
        let params = form_fields(&body).unwrap();
        let check = |url: &str, query: &str, body: &[u8]| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                "x-twilio-signature",
                verify::twilio_sign(b"tok", url, &params).parse().unwrap(),
            );
            s.verify(&HookRequest {
                path: "sms",
                query,
                headers: &headers,
                body,
                now: 0,
            })
        };
        assert_eq!(
            check("https://help.example.com/hooks/sms", "", &body),
            Ok(())
        );
        assert_eq!(
            check("https://help.example.com/hooks/sms?a=1", "a=1", &body),
            Ok(())
        );
        assert_eq!(
            check("https://help.example.com/hooks/sms", "a=1", &body),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            check("http://127.0.0.1:8080/hooks/sms", "", &body),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            check(
                "https://help.example.com/hooks/sms",
                "",
                b"MessageSid=SM1&From=%2B4915112345678&Body=bye"
            ),
            Err(BadSignature::Mismatch)
        );
    }
}
