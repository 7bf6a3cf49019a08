//! Instagram and Messenger DMs through Meta's Graph API (the Messenger Platform; Instagram
//! messaging uses the same shape).
//!
//! Inbound, Meta POSTs webhooks to `/hooks/instagram` and `/hooks/messenger` on the web chat's
//! listener ([`webhook`]), signed with the app secret (`X-Hub-Signature-256`): `entry[].messaging[]`
//! with `sender.id` (the customer's Instagram-scoped or page-scoped id, an identity of its own
//! kind), texts, attachments as placeholders, story replies and story mentions marked as such.
//! Our own messages echoed back (`is_echo`), read and delivery receipts are ignored.
//!
//! Outbound, `POST /me/messages` with the page's token: `messaging_type: RESPONSE` within 24 hours
//! of the customer's last message, `MESSAGE_TAG` with `tag: HUMAN_AGENT` (a person answering)
//! up to 7 days, refused beyond that before any request.
//!
//! ```toml
//! [messenger]                  # or [instagram]
//! page_id = "1234567890"       # the Facebook page (Messenger) / the Instagram account's id
//! token_command = "pass show braid/meta-page-token"         # or token_env
//! app_secret_command = "pass show braid/meta-app-secret"    # or app_secret_env
//! verify_token_command = "pass show braid/meta-verify-token" # or verify_token_env
//! # account = "shop"   api_url = "https://graph.facebook.com/v21.0"   team = "support"
//! ```

pub mod webhook;

use crate::channels::graph::{self, Graph};
use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::model::{Channel, IdentityKind, Millis, now_millis};
use crate::secret::SecretSource;
use crate::store::OutboxItem;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub use webhook::MetaSource;

/// Which Meta messaging product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Instagram,
    Messenger,
}

impl Platform {
    pub fn channel(self) -> Channel {
        match self {
            Platform::Instagram => Channel::Instagram,
            Platform::Messenger => Channel::Messenger,
        }
    }
    pub fn identity_kind(self) -> IdentityKind {
        match self {
            Platform::Instagram => IdentityKind::Instagram,
            Platform::Messenger => IdentityKind::Messenger,
        }
    }
    /// The webhook's `object`.
    pub fn object(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::Messenger => "page",
        }
    }
    /// The path under `/hooks/`, and the config section's name.
    pub fn path(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::Messenger => "messenger",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Platform::Instagram => "Instagram",
            Platform::Messenger => "Messenger",
        }
    }
    /// The longest text one message takes (Messenger: 2,000 characters; Instagram: 1,000
    /// bytes).
    fn fits(self, text: &str) -> bool {
        match self {
            Platform::Instagram => text.len() <= 1000,
            Platform::Messenger => text.chars().count() <= 2000,
        }
    }
    fn limit_words(self) -> &'static str {
        match self {
            Platform::Instagram => "1,000 bytes",
            Platform::Messenger => "2,000 characters",
        }
    }
}

/// `[instagram]` / `[messenger]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetaConfig {
    pub page_id: Option<String>,
    pub account: Option<String>,
    pub token_command: Option<String>,
    pub token_env: Option<String>,
    pub app_secret_command: Option<String>,
    pub app_secret_env: Option<String>,
    pub verify_token_command: Option<String>,
    pub verify_token_env: Option<String>,
    pub api_url: Option<String>,
    pub team: Option<String>,
}

/// A configured Instagram account or Facebook page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaConfig {
    pub platform: Platform,
    /// The page's (Messenger) or the Instagram account's id: webhooks for other ids are ignored.
    pub page_id: String,
    /// The account its messages are stored under (default: the page id).
    pub account: String,
    /// The page access token.
    pub token: SecretSource,
    pub app_secret: SecretSource,
    pub verify_token: SecretSource,
    pub api_url: String,
    pub team: Option<String>,
    pub timeout: Duration,
}

impl RawMetaConfig {
    /// Check and complete the section. Errors name the key (without the section's prefix).
    pub fn resolve(&self, platform: Platform) -> Result<MetaConfig, (&'static str, String)> {
        let page_id = self
            .page_id
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .to_string();
        if page_id.is_empty() || page_id.len() > 32 || !page_id.chars().all(|c| c.is_ascii_digit())
        {
            return Err((
                "page_id",
                match platform {
                    Platform::Messenger => "must be the Facebook page's id (digits)".into(),
                    Platform::Instagram => {
                        "must be the Instagram professional account's id (digits)".into()
                    }
                },
            ));
        }
        let account = match self.account.as_deref().map(str::trim) {
            None | Some("") => page_id.clone(),
            Some(a) if a.chars().any(char::is_control) || a.len() > 64 => {
                return Err(("account", "must be a short name on one line".into()));
            }
            Some(a) => a.to_string(),
        };
        let token = crate::secret::source_from_keys(
            "page access token",
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
        Ok(MetaConfig {
            platform,
            page_id,
            account,
            token,
            app_secret,
            verify_token,
            api_url,
            team: crate::channels::team_name(self.team.as_deref()).map_err(|m| ("team", m))?,
            timeout: graph::DEFAULT_TIMEOUT,
        })
    }
}

impl MetaConfig {
    /// A config for tests and tools: secrets given as they are.
    pub fn plain(
        platform: Platform,
        page_id: &str,
        api_url: &str,
        token: &str,
        app_secret: &str,
        verify_token: &str,
    ) -> MetaConfig {
        MetaConfig {
            platform,
            page_id: page_id.to_string(),
            account: page_id.to_string(),
            token: SecretSource::Plain(token.to_string()),
            app_secret: SecretSource::Plain(app_secret.to_string()),
            verify_token: SecretSource::Plain(verify_token.to_string()),
            api_url: api_url.to_string(),
            team: None,
            timeout: graph::DEFAULT_TIMEOUT,
        }
    }

    /// The webhook source, built when the server starts listening (reading the secrets then).
    pub fn spec(&self) -> crate::channels::hooks::SourceSpec {
        let config = self.clone();
        crate::channels::hooks::SourceSpec {
            path: self.platform.path().to_string(),
            build: Arc::new(move || {
                let config = config.clone();
                Box::pin(async move {
                    let place = format!("[{}]", config.platform.path());
                    let secret =
                        crate::secret::resolve(&config.app_secret, "app_secret", &place, true)
                            .await?;
                    let verify =
                        crate::secret::resolve(&config.verify_token, "verify_token", &place, true)
                            .await?;
                    Ok(Arc::new(MetaSource::new(
                        config.platform,
                        &config.page_id,
                        &config.account,
                        secret.into_bytes(),
                        verify.into_bytes(),
                    ))
                        as Arc<dyn crate::channels::hooks::Source>)
                })
            }),
        }
    }
}

/// How a reply may go out `since` the customer's last message: `RESPONSE` within 24 hours,
/// `HUMAN_AGENT` within 7 days, else not at all (the reason).
pub fn messaging_type(
    platform: Platform,
    last_in: Option<Millis>,
    now: Millis,
) -> Result<Option<&'static str>, String> {
    let channel = platform.channel();
    let day = channel.reply_window_ms().unwrap_or(24 * 3600 * 1000);
    let week = channel.human_agent_window_ms().unwrap_or(7 * day);
    let label = platform.label();
    match last_in.map(|t| now.saturating_sub(t)) {
        Some(age) if age < day => Ok(None),
        Some(age) if age < week => Ok(Some("HUMAN_AGENT")),
        Some(_) => Err(format!(
            "outside {label}'s 7-day window: the customer last wrote more than 7 days ago, so \
             {label} takes no reply until they write again; reach them on another channel"
        )),
        None => Err(format!(
            "the customer has not written on {label}: {label} only takes replies to their \
             messages; reach them on another channel"
        )),
    }
}

/// The Graph request body of a reply to `to`.
pub fn request_body(to: &str, text: &str, tag: Option<&str>) -> Value {
    match tag {
        None => json!({"recipient": {"id": to}, "messaging_type": "RESPONSE",
                       "message": {"text": text}}),
        Some(tag) => json!({"recipient": {"id": to}, "messaging_type": "MESSAGE_TAG",
                            "tag": tag, "message": {"text": text}}),
    }
}

/// The sending half of an Instagram account or a Facebook page.
pub struct MetaChannel {
    pub config: MetaConfig,
    graph: tokio::sync::OnceCell<Graph>,
}

impl MetaChannel {
    pub fn new(config: MetaConfig) -> Arc<MetaChannel> {
        Arc::new(MetaChannel {
            config,
            graph: tokio::sync::OnceCell::new(),
        })
    }

    async fn graph(&self) -> Result<&Graph, String> {
        let place = format!("[{}]", self.config.platform.path());
        self.graph
            .get_or_try_init(|| async {
                let token =
                    crate::secret::resolve(&self.config.token, "token", &place, true).await?;
                Graph::new(
                    &self.config.api_url,
                    token,
                    self.config.timeout,
                    self.config.platform.label(),
                )
            })
            .await
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let platform = self.config.platform;
        let permanent = |reason: String| SendError {
            reason,
            retry: false,
            may_have_sent: false,
        };
        // Checked before any request: a refusal costs nothing.
        let tag = messaging_type(platform, item.last_in, now_millis()).map_err(permanent)?;
        let to = item.recipient.trim();
        if to.is_empty() || to.len() > 32 || !to.chars().all(|c| c.is_ascii_digit()) {
            return Err(permanent(format!(
                "'{}' is not a {} user id",
                crate::sanitize::for_terminal_line(&item.recipient),
                platform.label()
            )));
        }
        if !platform.fits(&item.body) {
            return Err(permanent(format!(
                "{} takes at most {} in a message: shorten the reply or split it in several",
                platform.label(),
                platform.limit_words()
            )));
        }
        let graph = self.graph().await.map_err(|e| SendError {
            reason: format!("{} not ready: {e}", platform.label()),
            retry: true,
            may_have_sent: false,
        })?;
        let answer = graph
            .post_json("me/messages", &request_body(to, &item.body, tag))
            .await?;
        Ok(Sent {
            account: self.config.account.clone(),
            external_id: answer
                .get("message_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

impl Outbound for MetaChannel {
    fn channel(&self) -> Channel {
        self.config.platform.channel()
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(self.deliver(item))
    }

    /// Meta cannot be asked whether a message went out.
    fn resend_is_safe(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_pick_the_messaging_type() {
        let h = 3600 * 1000;
        let now = 1000 * h;
        let p = Platform::Messenger;
        assert_eq!(messaging_type(p, Some(now - h), now), Ok(None));
        assert_eq!(
            messaging_type(p, Some(now - 25 * h), now),
            Ok(Some("HUMAN_AGENT"))
        );
        assert_eq!(
            messaging_type(p, Some(now - 7 * 24 * h + 1), now),
            Ok(Some("HUMAN_AGENT"))
        );
        assert!(
            messaging_type(p, Some(now - 7 * 24 * h), now)
                .unwrap_err()
                .contains("7-day window")
        );
        assert!(messaging_type(Platform::Instagram, None, now).is_err());
        assert_eq!(
            request_body("42", "hi", Some("HUMAN_AGENT")),
            json!({"recipient": {"id": "42"}, "messaging_type": "MESSAGE_TAG",
                   "tag": "HUMAN_AGENT", "message": {"text": "hi"}})
        );
    }

    #[test]
    fn config_checks_its_keys() {
        let raw = |t: &str| toml::from_str::<RawMetaConfig>(t).unwrap();
        let ok = raw(
            "page_id = \"1234\"\ntoken_env = \"T\"\napp_secret_env = \"S\"\nverify_token_env = \"V\"",
        )
        .resolve(Platform::Instagram)
        .unwrap();
        assert_eq!(ok.account, "1234");
        assert_eq!(ok.platform.path(), "instagram");
        assert_eq!(
            raw("page_id = \"x\"")
                .resolve(Platform::Messenger)
                .unwrap_err()
                .0,
            "page_id"
        );
        assert_eq!(
            raw("page_id = \"1\"\napp_secret_env = \"S\"\nverify_token_env = \"V\"")
                .resolve(Platform::Messenger)
                .unwrap_err()
                .0,
            "token_command"
        );
    }

    #[test]
    fn text_limits_per_platform() {
        assert!(Platform::Messenger.fits(&"é".repeat(2000)));
        assert!(!Platform::Messenger.fits(&"é".repeat(2001)));
        assert!(!Platform::Instagram.fits(&"é".repeat(501)));
        assert!(Platform::Instagram.fits(&"e".repeat(1000)));
    }
}
