//! The Telegram channel: one bot, through the Bot API (teloxide's requester, rustls).
//!
//! - Config: `[telegram]` in the config file ([`RawTelegramConfig`] → [`TelegramConfig`]): the
//!   token comes from `token_command` or `token_env`, never from the file itself.
//! - Receive ([`poll`]): long polling `getUpdates`; every batch is ingested in ONE transaction
//!   with the next offset, so a crash between fetch and commit replays the batch and a crash
//!   after it replays nothing. A 409 (another process polls this bot) is reported in the worker
//!   status and the poller backs off instead of fighting for the updates.
//! - Messages ([`convert`]): text and captions; photos, documents, voice, stickers, locations...
//!   as typed placeholders with their file data in `meta`; replies keep the reference; an edit
//!   is a new message row marked as an edit of the original (the original stays as written);
//!   a contact card the sender shares of THEMSELVES links the phone number to the contact.
//! - Send ([`send`]): through teloxide's `Throttle` adaptor (1 msg/s per chat, 20/min per group,
//!   30/s overall), texts over 4,096 characters split on paragraph boundaries, 429 honoured,
//!   403 (bot blocked) not retried.
//!
//! One [`Telegram`] value is shared by the poller and the sender; the bot (and its token) is
//! set up on first use, so a token command that fails is retried rather than fatal.

pub mod convert;
pub mod poll;
pub mod send;

use serde::Deserialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use teloxide::Bot;
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::{Limits, Settings as ThrottleSettings};

/// The public Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";
/// Default long-polling timeout of `getUpdates`, in seconds.
pub const DEFAULT_POLL_TIMEOUT_SECS: u32 = 25;

/// `[telegram]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelegramConfig {
    pub token_command: Option<String>,
    pub token_env: Option<String>,
    pub api_url: Option<String>,
    pub account: Option<String>,
    pub poll_timeout: Option<u32>,
    pub team: Option<String>,
}

/// Where the bot token comes from.
pub type TokenSource = crate::secret::SecretSource;

/// A configured bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    /// The account name the bot's messages are stored under ("" for the only bot).
    pub account: String,
    pub token: TokenSource,
    /// Base URL of the Bot API (a self-hosted server, a test server).
    pub api_url: String,
    /// Long-polling timeout of `getUpdates`, in seconds (0: short polling).
    pub poll_timeout: u32,
    /// The team new conversations of the bot belong to (None: no team, all agents).
    pub team: Option<String>,
}

impl RawTelegramConfig {
    /// Check and complete the section. Errors name the key (without the `telegram.` prefix).
    pub fn resolve(&self) -> Result<TelegramConfig, (&'static str, String)> {
        let token = crate::secret::source_from_keys(
            "bot token",
            self.token_command.as_deref(),
            self.token_env.as_deref(),
            "token_command",
            "token_env",
        )?;
        let api_url = self
            .api_url
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://"))
            || api_url.len() <= "https://".len()
        {
            return Err(("api_url", format!("'{api_url}' is not an http(s) URL")));
        }
        let account = self.account.as_deref().unwrap_or("").trim().to_string();
        if account.chars().any(char::is_control) {
            return Err(("account", "must be a name on one line".to_string()));
        }
        let poll_timeout = self.poll_timeout.unwrap_or(DEFAULT_POLL_TIMEOUT_SECS);
        if poll_timeout > 50 {
            return Err((
                "poll_timeout",
                format!("{poll_timeout} s is too long (at most 50)"),
            ));
        }
        Ok(TelegramConfig {
            account,
            token,
            api_url,
            poll_timeout,
            team: crate::channels::team_name(self.team.as_deref()).map_err(|m| ("team", m))?,
        })
    }
}

/// Why the bot could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// The bot's clients: plain (polling, getFile) and throttled (sending).
#[derive(Clone)]
pub struct Bots {
    pub plain: Bot,
    pub throttled: Throttle<Bot>,
}

/// One configured bot, shared by the poller and the sender.
pub struct Telegram {
    pub config: TelegramConfig,
    pub(crate) settings: crate::ingest::Settings,
    bots: tokio::sync::OnceCell<Bots>,
    status: Mutex<String>,
    /// Sends wait until then after a 429 (the whole bot is frozen, like Throttle does).
    frozen_until: Mutex<Option<Instant>>,
    pub(crate) order: send::ChatOrder,
}

impl Telegram {
    pub fn new(config: TelegramConfig, settings: crate::ingest::Settings) -> Arc<Telegram> {
        Arc::new(Telegram {
            config,
            settings,
            bots: tokio::sync::OnceCell::new(),
            status: Mutex::new("telegram: starting".to_string()),
            frozen_until: Mutex::new(None),
            order: send::ChatOrder::default(),
        })
    }

    /// The account messages are stored under.
    pub fn account(&self) -> &str {
        &self.config.account
    }

    /// One line for the worker status ("telegram: @shop_bot polling", "telegram: 409 ...").
    pub fn status(&self) -> String {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_status(&self, s: impl Into<String>) {
        // Statuses quote the server (descriptions, the bot's name): escaped once here, for the
        // status line, `braid serve`'s stderr and the log.
        let s = crate::sanitize::for_terminal_line(&s.into()).into_owned();
        let mut g = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if *g != s {
            tracing::info!("{s}");
            *g = s;
        }
    }

    /// How long sends must still wait after a 429.
    pub(crate) fn frozen_for(&self) -> Option<Duration> {
        let g = self
            .frozen_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.and_then(|t| t.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    pub(crate) fn freeze(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut g = self
            .frozen_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if g.is_none_or(|t| t < until) {
            *g = Some(until);
        }
    }

    /// The bot clients, set up on first use (runs the token command once it succeeds).
    pub async fn bots(&self) -> Result<&Bots, SetupError> {
        self.bots.get_or_try_init(|| self.setup()).await
    }

    async fn setup(&self) -> Result<Bots, SetupError> {
        let token = resolve_token(&self.config.token).await?;
        let client = teloxide::net::default_reqwest_settings()
            .timeout(Duration::from_secs(
                u64::from(self.config.poll_timeout) + 15,
            ))
            .build()
            .map_err(|e| SetupError(format!("cannot set up an HTTP client: {e}")))?;
        let url = format!("{}/", self.config.api_url);
        let bot = match url.parse() {
            Ok(u) => Bot::with_client(token, client).set_api_url(u),
            Err(e) => {
                return Err(SetupError(format!(
                    "api_url '{}': {e}",
                    self.config.api_url
                )));
            }
        };
        // Retries are ours (the outbox's), so a 429 surfaces as a failed send with its countdown;
        // Throttle still freezes its queue for the retry_after it saw.
        let settings = ThrottleSettings::default()
            .limits(Limits::default())
            .no_retry();
        let throttled = Throttle::spawn_with_settings(bot.clone(), settings);
        Ok(Bots {
            plain: bot,
            throttled,
        })
    }
}

impl Telegram {
    /// Save an attachment (its `meta.attachment.file_id`) to `dest` through getFile; returns
    /// the number of bytes written. The file is written next to `dest` and renamed into place,
    /// so a failed download leaves nothing half-written.
    /// Download a file by its id (getFile, then the file) into memory.
    pub async fn fetch_file(&self, file_id: &str) -> Result<Vec<u8>, SetupError> {
        use teloxide::net::Download;
        use teloxide::prelude::Requester;
        use teloxide::types::FileId;
        let bots = self.bots().await?;
        let file = bots
            .plain
            .get_file(FileId(file_id.to_string()))
            .await
            .map_err(|e| SetupError(format!("Telegram getFile: {e}")))?;
        let mut out: Vec<u8> = Vec::new();
        bots.plain
            .download_file(&file.path, &mut out)
            .await
            .map_err(|e| SetupError(format!("Telegram download: {e}")))?;
        Ok(out)
    }

    pub async fn save_file(
        &self,
        file_id: &str,
        dest: &std::path::Path,
    ) -> Result<u64, SetupError> {
        use teloxide::net::Download;
        use teloxide::prelude::Requester;
        use teloxide::types::FileId;
        let bots = self.bots().await?;
        let file = bots
            .plain
            .get_file(FileId(file_id.to_string()))
            .await
            .map_err(|e| SetupError(format!("Telegram getFile: {e}")))?;
        let part = dest.with_extension("part");
        let mut out = tokio::fs::File::create(&part)
            .await
            .map_err(|e| SetupError(format!("{}: {e}", part.display())))?;
        let fetched = bots.plain.download_file(&file.path, &mut out).await;
        let finished = match fetched {
            Ok(()) => {
                use tokio::io::AsyncWriteExt;
                out.flush().await.map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("Telegram download: {e}")),
        };
        drop(out);
        if let Err(e) = finished {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(SetupError(e));
        }
        tokio::fs::rename(&part, dest)
            .await
            .map_err(|e| SetupError(format!("{}: {e}", dest.display())))?;
        let len = tokio::fs::metadata(dest)
            .await
            .map(|m| m.len())
            .unwrap_or_default();
        Ok(len)
    }
}

/// Read the bot token from its source; the value is trimmed and must not be empty.
pub async fn resolve_token(source: &TokenSource) -> Result<String, SetupError> {
    crate::secret::resolve(source, "token", "[telegram]", true)
        .await
        .map_err(SetupError)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawTelegramConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = raw("token_command = \"pass show bot\"").resolve().unwrap();
        assert_eq!(c.token, TokenSource::Command("pass show bot".into()));
        assert_eq!(c.api_url, DEFAULT_API_URL);
        assert_eq!(c.account, "");
        assert_eq!(c.poll_timeout, DEFAULT_POLL_TIMEOUT_SECS);

        let c =
            raw("token_env = \"BOT\"\napi_url = \"http://127.0.0.1:8081/\"\naccount = \"shop\"")
                .resolve()
                .unwrap();
        assert_eq!(c.token, TokenSource::Env("BOT".into()));
        assert_eq!(c.api_url, "http://127.0.0.1:8081");
        assert_eq!(c.account, "shop");

        assert_eq!(raw("").resolve().unwrap_err().0, "token_command");
        assert_eq!(
            raw("token_env = \"A\"\ntoken_command = \"b\"")
                .resolve()
                .unwrap_err()
                .0,
            "token_env"
        );
        assert_eq!(
            raw("token_env = \"A\"\napi_url = \"ftp://x\"")
                .resolve()
                .unwrap_err()
                .0,
            "api_url"
        );
        assert!(toml::from_str::<RawTelegramConfig>("token = \"123:abc\"").is_err());
    }

    #[tokio::test]
    async fn tokens_from_a_command_or_the_environment() {
        let t = resolve_token(&TokenSource::Command("echo ' 123:abc '".into()))
            .await
            .unwrap();
        assert_eq!(t, "123:abc");
        let e = resolve_token(&TokenSource::Command("echo oops >&2; exit 3".into()))
            .await
            .unwrap_err();
        // What the command printed is never shown (it may be the token); the key is named.
        assert!(!e.0.contains("oops"), "{e}");
        assert!(e.0.starts_with("[telegram] token_command failed"), "{e}");
        let e = resolve_token(&TokenSource::Env("BRAID_TEST_SURELY_UNSET_TOKEN".into()))
            .await
            .unwrap_err();
        assert!(!e.0.contains("BRAID_TEST_SURELY_UNSET_TOKEN"), "{e}");
        assert!(e.0.starts_with("[telegram] token_env:"), "{e}");
        // A token with a control character is refused.
        let e = resolve_token(&TokenSource::Plain("123:a\u{1}bc".into()))
            .await
            .unwrap_err();
        assert!(e.0.contains("control characters"), "{e}");
        assert!(
            resolve_token(&TokenSource::Command("true".into()))
                .await
                .is_err()
        );
    }
}
