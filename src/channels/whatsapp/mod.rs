//! WhatsApp through Meta's Cloud API.
//!
//! Inbound, Meta POSTs webhooks to `/hooks/whatsapp` on the web chat's listener ([`webhook`]):
//! signed with the app secret (`X-Hub-Signature-256`), messages and delivery statuses of the
//! configured phone number. Outbound, replies go through the Graph API
//! (`POST /{phone_number_id}/messages`, [`crate::channels::graph`]): free text while the
//! customer's 24-hour window is open, an approved template message otherwise. A free-form
//! reply outside the window is refused before any request (Meta would refuse it with 131047).
//!
//! ```toml
//! [whatsapp]
//! phone_number_id = "106540352242922"
//! token_command = "pass show braid/whatsapp-token"     # or token_env
//! app_secret_command = "pass show braid/meta-app-secret"   # or app_secret_env
//! verify_token_command = "pass show braid/meta-verify-token" # or verify_token_env
//! # account = "shop"         # the name messages are stored under (default: the number's id)
//! # api_url = "https://graph.facebook.com/v21.0"
//! # team = "support"
//!
//! [[whatsapp.templates]]
//! name = "order_update"
//! language = "en_US"
//! text = "Hi {{1}}, your order {{2}} has shipped."
//! ```
//!
//! A template reply is an outbound message whose meta holds
//! `{"template": {"name": "order_update", "language": "en_US", "params": ["Ana", "4411"]}}`
//! (its body is what braid shows: [`Template::render`]).

pub mod webhook;

use crate::channels::graph::{self, Graph};
use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::model::{Channel, Millis, now_millis};
use crate::secret::SecretSource;
use crate::store::OutboxItem;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub use webhook::WhatsAppSource;

/// The path under `/hooks/` Meta is told to call.
pub const HOOK_PATH: &str = "whatsapp";

/// WhatsApp's limit for a text message's body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The reason of a free-form reply refused outside the 24-hour window (the composer shows it).
pub const OUTSIDE_WINDOW: &str = "outside WhatsApp's 24-hour window: the customer has not written \
     in the last 24 hours, so WhatsApp only takes an approved template; send one with \
     :template NAME PARAMS";

/// `[whatsapp]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhatsAppConfig {
    pub phone_number_id: Option<String>,
    pub account: Option<String>,
    pub token_command: Option<String>,
    pub token_env: Option<String>,
    pub app_secret_command: Option<String>,
    pub app_secret_env: Option<String>,
    pub verify_token_command: Option<String>,
    pub verify_token_env: Option<String>,
    pub api_url: Option<String>,
    pub team: Option<String>,
    #[serde(default)]
    pub templates: Vec<RawTemplate>,
}

/// `[[whatsapp.templates]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    pub name: Option<String>,
    pub language: Option<String>,
    pub text: Option<String>,
}

pub use crate::template::Template;

/// A configured WhatsApp number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppConfig {
    /// The Cloud API's id of the business phone number.
    pub phone_number_id: String,
    /// The account its messages are stored under (default: the phone number id).
    pub account: String,
    /// The access token (a system user's permanent token).
    pub token: SecretSource,
    /// The Meta app's secret: webhooks are signed with it.
    pub app_secret: SecretSource,
    /// The verify token typed into the app's webhook settings (the subscription handshake).
    pub verify_token: SecretSource,
    pub api_url: String,
    pub team: Option<String>,
    pub templates: Vec<Template>,
    /// How long one Graph request may take.
    pub timeout: Duration,
}

impl RawWhatsAppConfig {
    /// Check and complete the section. Errors name the key (without the `whatsapp.` prefix).
    pub fn resolve(&self) -> Result<WhatsAppConfig, (&'static str, String)> {
        let phone_number_id = self
            .phone_number_id
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .to_string();
        if phone_number_id.is_empty()
            || phone_number_id.len() > 32
            || !phone_number_id.chars().all(|c| c.is_ascii_digit())
        {
            return Err((
                "phone_number_id",
                "must be the phone number's id from WhatsApp Manager (API Setup), digits only \
                 (not the phone number itself)"
                    .into(),
            ));
        }
        let account = match self.account.as_deref().map(str::trim) {
            None | Some("") => phone_number_id.clone(),
            Some(a) if a.chars().any(char::is_control) || a.len() > 64 => {
                return Err(("account", "must be a short name on one line".into()));
            }
            Some(a) => a.to_string(),
        };
        let token = crate::secret::source_from_keys(
            "access token",
            self.token_command.as_deref(),
            self.token_env.as_deref(),
            "token_command",
            "token_env",
        )?;
        let app_secret = crate::secret::source_from_keys(
            "app secret",
            self.app_secret_command.as_deref(),
            self.app_secret_env.as_deref(),
            "app_secret_command",
            "app_secret_env",
        )?;
        let verify_token = crate::secret::source_from_keys(
            "verify token",
            self.verify_token_command.as_deref(),
            self.verify_token_env.as_deref(),
            "verify_token_command",
            "verify_token_env",
        )?;
        let api_url =
            graph::check_base_url(self.api_url.as_deref().unwrap_or(graph::DEFAULT_API_URL))
                .map_err(|m| ("api_url", m))?;
        let mut templates: Vec<Template> = Vec::new();
        for t in &self.templates {
            let name = t.name.as_deref().map(str::trim).unwrap_or("").to_string();
            if name.is_empty()
                || name.len() > 512
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err((
                    "templates.name",
                    "must be the template's name in WhatsApp Manager (lowercase letters, digits \
                     and _)"
                        .into(),
                ));
            }
            let language = t
                .language
                .as_deref()
                .map(str::trim)
                .unwrap_or("")
                .to_string();
            if language.is_empty()
                || language.len() > 16
                || !language
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err((
                    "templates.language",
                    format!("template '{name}': must be its language code, like en_US or pt_BR"),
                ));
            }
            let text = t.text.as_deref().map(str::trim).unwrap_or("").to_string();
            if text.is_empty() {
                return Err((
                    "templates.text",
                    format!(
                        "template '{name}': give its body text as approved, with {{{{1}}}}, \
                         {{{{2}}}}... where the parameters go"
                    ),
                ));
            }
            if templates
                .iter()
                .any(|x| x.name == name && x.language == language)
            {
                return Err((
                    "templates.name",
                    format!("template '{name}' ({language}) is listed twice"),
                ));
            }
            templates.push(Template {
                name,
                language,
                text,
            });
        }
        Ok(WhatsAppConfig {
            phone_number_id,
            account,
            token,
            app_secret,
            verify_token,
            api_url,
            team: crate::channels::team_name(self.team.as_deref()).map_err(|m| ("team", m))?,
            templates,
            timeout: graph::DEFAULT_TIMEOUT,
        })
    }
}

impl WhatsAppConfig {
    /// A config for tests and tools: secrets given as they are.
    pub fn plain(phone_number_id: &str, api_url: &str, token: &str, app_secret: &str) -> Self {
        WhatsAppConfig {
            phone_number_id: phone_number_id.to_string(),
            account: phone_number_id.to_string(),
            token: SecretSource::Plain(token.to_string()),
            app_secret: SecretSource::Plain(app_secret.to_string()),
            verify_token: SecretSource::Plain(String::new()),
            api_url: api_url.to_string(),
            team: None,
            templates: Vec::new(),
            timeout: graph::DEFAULT_TIMEOUT,
        }
    }

    /// The webhook source, built when the server starts listening (reading the app secret
    /// and the verify token then).
    pub fn spec(&self) -> crate::channels::hooks::SourceSpec {
        let config = self.clone();
        crate::channels::hooks::SourceSpec {
            path: HOOK_PATH.to_string(),
            build: Arc::new(move || {
                let config = config.clone();
                Box::pin(async move {
                    let secret = crate::secret::resolve(
                        &config.app_secret,
                        "app_secret",
                        "[whatsapp]",
                        true,
                    )
                    .await?;
                    let verify = crate::secret::resolve(
                        &config.verify_token,
                        "verify_token",
                        "[whatsapp]",
                        true,
                    )
                    .await?;
                    Ok(Arc::new(WhatsAppSource::new(
                        &config.phone_number_id,
                        &config.account,
                        secret.into_bytes(),
                        verify.into_bytes(),
                    ))
                        as Arc<dyn crate::channels::hooks::Source>)
                })
            }),
        }
    }

    /// The configured template `name` in `language`.
    pub fn template(&self, name: &str, language: &str) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.name == name && t.language == language)
    }
}

/// A template reply as its message's meta holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSend {
    pub name: String,
    pub language: String,
    pub params: Vec<String>,
}

impl TemplateSend {
    /// Read `meta.template` (None: not a template message; Err: one that cannot be sent).
    pub fn from_meta(meta: Option<&Value>) -> Result<Option<TemplateSend>, String> {
        let Some(t) = meta.and_then(|m| m.get("template")) else {
            return Ok(None);
        };
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or("the template message names no template")?;
        let language = t
            .get("language")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .ok_or("the template message gives no language")?;
        let params = match t.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Some(_) => return Err("the template's params must be a list of texts".into()),
        };
        Ok(Some(TemplateSend {
            name: name.to_string(),
            language: language.to_string(),
            params,
        }))
    }

    /// The meta JSON of a template reply (what the composer stores).
    pub fn to_meta(&self) -> Value {
        json!({"template": {"name": self.name, "language": self.language, "params": self.params}})
    }
}

/// Whether the customer's 24-hour window is open at `now` (`last_in`: their last message on
/// WhatsApp).
pub fn window_open(last_in: Option<Millis>, now: Millis) -> bool {
    let window = Channel::WhatsApp
        .reply_window_ms()
        .unwrap_or(24 * 3600 * 1000);
    last_in.is_some_and(|t| now.saturating_sub(t) < window)
}

/// The Graph request body of a reply to `to` (digits, no `+`).
pub fn request_body(to: &str, text: &str, template: Option<&TemplateSend>) -> Value {
    match template {
        Some(t) => {
            let mut tpl = json!({"name": t.name, "language": {"code": t.language}});
            if !t.params.is_empty() {
                tpl["components"] = json!([{
                    "type": "body",
                    "parameters": t.params.iter()
                        .map(|p| json!({"type": "text", "text": p}))
                        .collect::<Vec<_>>(),
                }]);
            }
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": to, "type": "template", "template": tpl})
        }
        None => json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                       "to": to, "type": "text",
                       "text": {"preview_url": false, "body": text}}),
    }
}

/// The labels of the survey's list rows (WhatsApp: at most 24 characters each).
const SURVEY_ROWS: [&str; 5] = [
    "1 – Poor",
    "2 – Fair",
    "3 – Good",
    "4 – Very good",
    "5 – Excellent",
];

/// A satisfaction survey as an interactive LIST message: reply buttons are limited to three,
/// a list takes the five scores (row ids `csat:CONV:SCORE`, which come back in the
/// customer's `list_reply`). The body keeps the text line, so a typed "4" counts too.
pub fn survey_body(to: &str, text: &str, conv: crate::model::ConversationId) -> Value {
    let rows: Vec<Value> = SURVEY_ROWS
        .iter()
        .enumerate()
        .map(|(i, title)| json!({"id": crate::csat::button_data(conv, (i + 1) as u8), "title": title}))
        .collect();
    // WhatsApp takes at most 1024 characters of body text in an interactive message.
    let body: String = text.chars().take(1024).collect();
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
           "type": "interactive",
           "interactive": {"type": "list", "body": {"text": body},
                           "action": {"button": "Rate us",
                                      "sections": [{"title": "Your rating", "rows": rows}]}}})
}

/// The WhatsApp channel's sending half (and the media downloads of `:save`).
pub struct WhatsApp {
    pub config: WhatsAppConfig,
    graph: tokio::sync::OnceCell<Graph>,
}

impl WhatsApp {
    pub fn new(config: WhatsAppConfig) -> Arc<WhatsApp> {
        Arc::new(WhatsApp {
            config,
            graph: tokio::sync::OnceCell::new(),
        })
    }

    /// The Graph client, once the token is read (read again after a failure).
    pub async fn graph(&self) -> Result<&Graph, String> {
        self.graph
            .get_or_try_init(|| async {
                let token =
                    crate::secret::resolve(&self.config.token, "token", "[whatsapp]", true).await?;
                Graph::new(&self.config.api_url, token, self.config.timeout, "WhatsApp")
            })
            .await
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let permanent = |reason: String| SendError {
            reason,
            retry: false,
            may_have_sent: false,
        };
        let template = TemplateSend::from_meta(item.meta.as_ref()).map_err(permanent)?;
        // Everything below is checked before any request: a refusal costs nothing.
        if template.is_none() && !window_open(item.last_in, now_millis()) {
            return Err(permanent(OUTSIDE_WINDOW.to_string()));
        }
        let to: String = item.recipient.trim().trim_start_matches('+').to_string();
        if to.is_empty() || to.len() > 15 || !to.chars().all(|c| c.is_ascii_digit()) {
            return Err(permanent(format!(
                "'{}' is not a phone number in international form",
                crate::sanitize::for_terminal_line(&item.recipient)
            )));
        }
        if let Some(t) = &template
            && let Some(known) = self.config.template(&t.name, &t.language)
            && known.params() != t.params.len()
        {
            return Err(permanent(format!(
                "template '{}' takes {} parameters, {} given",
                t.name,
                known.params(),
                t.params.len()
            )));
        }
        if template.is_none() && item.body.chars().count() > MAX_TEXT_CHARS {
            return Err(permanent(format!(
                "WhatsApp takes at most {MAX_TEXT_CHARS} characters in a message: shorten the \
                 reply or split it in several"
            )));
        }
        let graph = self.graph().await.map_err(|e| SendError {
            reason: format!("WhatsApp not ready: {e}"),
            retry: true,
            may_have_sent: false,
        })?;
        let body = match (crate::csat::survey_of(item.meta.as_ref()), &template) {
            (Some(conv), None) => survey_body(&to, &item.body, conv),
            _ => request_body(&to, &item.body, template.as_ref()),
        };
        let path = format!("{}/messages", self.config.phone_number_id);
        let answer = graph.post_json(&path, &body).await?;
        let wamid = answer
            .get("messages")
            .and_then(|m| m.get(0))
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if wamid.is_none() {
            tracing::warn!("WhatsApp accepted a message without giving its id");
        }
        Ok(Sent {
            account: self.config.account.clone(),
            external_id: wamid,
        })
    }

    /// A media file of an inbound message: Graph's `GET /{media-id}` gives a URL that lives
    /// five minutes, downloaded with the token. At most 100 MB (WhatsApp's own limit).
    pub async fn fetch_media(&self, media_id: &str) -> Result<Vec<u8>, String> {
        if media_id.is_empty() || !media_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("the message keeps no valid WhatsApp media id".into());
        }
        let graph = self.graph().await?;
        let info = graph
            .get_json(media_id)
            .await
            .map_err(|e| format!("WhatsApp media: {e}"))?;
        let url = info
            .get("url")
            .and_then(Value::as_str)
            .ok_or("WhatsApp gave no address for the file")?;
        let bytes = graph.download(url, 100 << 20).await?;
        if let Some(want) = info.get("sha256").and_then(Value::as_str) {
            use sha2::Digest;
            let got = crate::channels::hooks::verify::hex(&sha2::Sha256::digest(&bytes));
            if !got.eq_ignore_ascii_case(want) {
                return Err(
                    "the downloaded file does not match WhatsApp's checksum: try :save again"
                        .into(),
                );
            }
        }
        Ok(bytes)
    }
}

impl Outbound for WhatsApp {
    fn channel(&self) -> Channel {
        Channel::WhatsApp
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(self.deliver(item))
    }

    /// 131026: the number cannot receive WhatsApp messages.
    fn unreachable(&self, error: &SendError) -> bool {
        error.reason.starts_with("WhatsApp: 131026:")
    }

    /// WhatsApp cannot be asked whether a message went out.
    fn resend_is_safe(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> Result<WhatsAppConfig, (&'static str, String)> {
        toml::from_str::<RawWhatsAppConfig>(toml_text)
            .unwrap()
            .resolve()
    }

    const BASE: &str = r#"
        phone_number_id = "106540352242922"
        token_env = "WA_TOKEN"
        app_secret_env = "WA_SECRET"
        verify_token_env = "WA_VERIFY"
    "#;

    #[test]
    fn config_defaults_and_templates() {
        let c = raw(&format!(
            "{BASE}\n[[templates]]\nname = \"order_update\"\nlanguage = \"en_US\"\n\
             text = \"Hi {{{{1}}}}, your order {{{{2}}}} has shipped.\"\n"
        ))
        .unwrap();
        assert_eq!(c.account, "106540352242922");
        assert_eq!(c.api_url, graph::DEFAULT_API_URL);
        assert_eq!(c.templates.len(), 1);
        assert_eq!(c.templates[0].params(), 2);
        assert_eq!(
            c.templates[0]
                .render(&["Ana".into(), "4411".into()])
                .unwrap(),
            "Hi Ana, your order 4411 has shipped."
        );
        assert!(c.template("order_update", "en_US").is_some());
        assert!(c.template("order_update", "de").is_none());
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(raw("token_env = \"T\"").unwrap_err().0, "phone_number_id");
        assert_eq!(
            raw("phone_number_id = \"+49 151\"").unwrap_err().0,
            "phone_number_id"
        );
        assert_eq!(
            raw("phone_number_id = \"1\"\napp_secret_env = \"S\"\nverify_token_env = \"V\"")
                .unwrap_err()
                .0,
            "token_command"
        );
        assert_eq!(
            raw(&format!("{BASE}\napi_url = \"graph.facebook.com\""))
                .unwrap_err()
                .0,
            "api_url"
        );
        assert_eq!(
            raw(&format!(
                "{BASE}\n[[templates]]\nname = \"Bad Name\"\nlanguage = \"en\"\ntext = \"x\""
            ))
            .unwrap_err()
            .0,
            "templates.name"
        );
        assert_eq!(
            raw(&format!(
                "{BASE}\n[[templates]]\nname = \"a\"\nlanguage = \"en\""
            ))
            .unwrap_err()
            .0,
            "templates.text"
        );
        assert!(toml::from_str::<RawWhatsAppConfig>("phone = \"1\"").is_err());
    }

    #[test]
    fn an_undeliverable_number_is_unreachable_and_nothing_is_resent_blindly() {
        let wa = WhatsApp::new(WhatsAppConfig::plain("1", graph::DEFAULT_API_URL, "t", "s"));
        let e = graph::classify(
            "WhatsApp",
            400,
            br#"{"error":{"code":131026,"message":"Message undeliverable"}}"#,
            None,
        );
        assert!(wa.unreachable(&e.send));
        let e = graph::classify(
            "WhatsApp",
            400,
            br#"{"error":{"code":131047,"message":"Re-engagement message"}}"#,
            None,
        );
        assert!(!wa.unreachable(&e.send));
        assert!(!wa.resend_is_safe());
    }

    #[test]
    fn the_window_is_24_hours() {
        let h = 3600 * 1000;
        assert!(!window_open(None, 100 * h));
        assert!(window_open(Some(90 * h), 100 * h));
        assert!(window_open(Some(76 * h + 1), 100 * h));
        assert!(!window_open(Some(76 * h), 100 * h));
    }

    #[test]
    fn template_meta_round_trips_and_builds_the_documented_request() {
        let t = TemplateSend {
            name: "order_update".into(),
            language: "en_US".into(),
            params: vec!["Ana".into(), "4411".into()],
        };
        let meta = t.to_meta();
        assert_eq!(
            TemplateSend::from_meta(Some(&meta)).unwrap(),
            Some(t.clone())
        );
        assert_eq!(TemplateSend::from_meta(None).unwrap(), None);
        assert!(TemplateSend::from_meta(Some(&json!({"template": {"name": "x"}}))).is_err());
        assert_eq!(
            request_body("4915112345678", "ignored", Some(&t)),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "4915112345678", "type": "template",
                   "template": {"name": "order_update", "language": {"code": "en_US"},
                                "components": [{"type": "body", "parameters": [
                                    {"type": "text", "text": "Ana"},
                                    {"type": "text", "text": "4411"}]}]}})
        );
        assert_eq!(
            request_body("1", "hi", None)["text"],
            json!({"preview_url": false, "body": "hi"})
        );
    }
}
