//! Configuration: TOML file (`--config FILE`, `BRAID_CONFIG`, else `$XDG_CONFIG_HOME/braid/config.toml`),
//! every key optional. See `config/braid.example.toml` for every key with its default.
//!
//! The data directory comes from `--data-dir DIR`, else `BRAID_DATA_DIR`, else `data_dir` in the
//! file, else the XDG data dir (`$XDG_DATA_HOME/braid`).
//!
//! Loading is strict: an unknown key or a bad value is an error naming the key and the line, so a
//! typo never silently falls back to a default. Secrets never sit in the file (DESIGN.md, convention
//! 7): a world-readable file holding a key that ends in `password`, `token` or `secret` is refused.

use ratatui::style::Color;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;

pub use crate::units::parse_duration;

/// The shipped example config: every key, commented out, with its default.
pub const EXAMPLE: &str = include_str!("../config/braid.example.toml");

/// Default for `reopen_window`: 7 days.
pub const DEFAULT_REOPEN_WINDOW_MS: i64 = crate::ingest::DEFAULT_REOPEN_WINDOW_MS;
/// Default for `[ui] three_pane_min_width`.
pub const DEFAULT_THREE_PANE_MIN_WIDTH: u16 = 140;
/// Default for `[ui] bulk_confirm_over`: `:g//` asks before changing more conversations.
pub const DEFAULT_BULK_CONFIRM_OVER: usize = 20;
/// Name of the config file inside the XDG config dir.
pub const CONFIG_FILE: &str = "config.toml";

/// Everything the program reads from the config file, with defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The agent's name: author of replies and notes, "me" for `A` and the `mine` view.
    pub agent: String,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The file this config came from, if any.
    pub source: Option<PathBuf>,
    /// A resolved conversation reopens when the customer writes within this many ms.
    pub reopen_window_ms: i64,
    /// Below this terminal width the profile pane folds into a toggle.
    pub three_pane_min_width: u16,
    /// `[ui] bulk_confirm_over`: `:g//` asks (y/n) before changing more conversations than this.
    pub bulk_confirm_over: usize,
    /// `[queue] order`: triage (breached SLA, urgent, VIP, SLA due, oldest waiting) or
    /// activity (newest first).
    pub queue_order: crate::store::QueueOrder,
    /// An agent's reply moves an open conversation to pending (waiting on the customer).
    pub pending_after_reply: bool,
    /// A user keymap file merged over the shipped one.
    pub keymap_file: Option<PathBuf>,
    pub theme: Theme,
    /// `[notifications]`: how the TUI tells the agent about a new notification.
    pub notifications: NotifySettings,
    /// The website live chat (`[webchat]`).
    pub webchat: crate::channels::webchat::WebChatConfig,
    /// `[telegram]`: the Telegram bot, if configured.
    pub telegram: Option<crate::channels::telegram::TelegramConfig>,
    /// `[[email]]`: the mailboxes braid reads and answers from.
    pub email: Vec<crate::channels::email::EmailAccount>,
    /// `[[events]]`: signed event sources (`POST /hooks/events/NAME`: call logs, purchases...).
    pub events: Vec<crate::channels::hooks::events::EventsConfig>,
    /// `[sms]`: SMS through a Twilio-compatible REST API, if configured.
    pub sms: Option<crate::channels::sms::SmsConfig>,
    /// `[whatsapp]`: the WhatsApp Cloud API number, if configured.
    pub whatsapp: Option<crate::channels::whatsapp::WhatsAppConfig>,
    /// `[instagram]`: the Instagram professional account's DMs, if configured.
    pub instagram: Option<crate::channels::meta::MetaConfig>,
    /// `[messenger]`: the Facebook page's Messenger conversations, if configured.
    pub messenger: Option<crate::channels::meta::MetaConfig>,
    /// `[server]`, `[[teams]]`, `[[agents]]`: who works here and where the server listens (the
    /// server reads these from its own config; a client's are only its `[server] socket`).
    pub workspace: crate::server::workspace::Workspace,
    /// `[macros]`: named lists of ex commands (`:macro NAME`). The workspace's are sent to
    /// every client; a personal one of the same name wins in that agent's TUI.
    pub macros: Vec<Macro>,
    /// `suggest_command` (workspace): a command that reads a conversation as JSON on stdin
    /// and prints a draft reply (`:suggest`).
    pub suggest_command: Option<String>,
    /// `suggest_timeout`: how long `suggest_command` may run.
    pub suggest_timeout_ms: i64,
}

/// Default for `suggest_timeout`: 20 seconds.
pub const DEFAULT_SUGGEST_TIMEOUT_MS: i64 = 20_000;

/// One named macro: ex commands run in order on the current conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Macro {
    pub name: String,
    pub steps: Vec<String>,
}

impl Macro {
    /// Check every step: an ex command the TUI knows, with its argument, and not a macro.
    /// The error names the macro and the step.
    pub fn validate(name: &str, steps: &[String]) -> Result<(), String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "'{name}' is not a macro name (letters, digits, '-', '_', '.')"
            ));
        }
        if steps.is_empty() {
            return Err(format!("macro '{name}' has no steps"));
        }
        for step in steps {
            let word = step.split_whitespace().next().unwrap_or("");
            if word == "macro" {
                return Err(format!(
                    "macro '{name}': step '{step}' runs a macro; macros do not call macros (list its steps instead)"
                ));
            }
            crate::tui::action::Action::parse(step)
                .map_err(|e| format!("macro '{name}': step '{step}': {e}"))?;
            if let Some(cmd) = crate::tui::action::Command::find(word)
                && matches!(cmd.args, crate::tui::action::Args::Optional(_))
                && step.trim() == word
            {
                return Err(format!(
                    "macro '{name}': step '{step}' needs its argument in a macro (e.g. '{word} ...'): a macro never stops to ask"
                ));
            }
        }
        Ok(())
    }
}

/// `[notifications]` of the personal config: what the TUI does when a notification arrives
/// (besides the status-line count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifySettings {
    /// `bell = true`: ring the terminal bell (BEL).
    pub bell: bool,
    /// `desktop = "osc9" | "osc777" | "none"`: a desktop notification through the terminal.
    pub desktop: DesktopNotify,
}

/// The terminal escape that asks for a desktop notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DesktopNotify {
    #[default]
    None,
    /// `ESC ] 9 ; text BEL` (iTerm2, WezTerm, Windows Terminal, foot, kitty...).
    Osc9,
    /// `ESC ] 777 ; notify ; title ; body BEL` (urxvt, foot, Ghostty, VTE terminals...).
    Osc777,
}

impl std::str::FromStr for DesktopNotify {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(DesktopNotify::None),
            "osc9" => Ok(DesktopNotify::Osc9),
            "osc777" => Ok(DesktopNotify::Osc777),
            other => Err(format!(
                "unknown desktop notification '{other}' (one of: osc9, osc777, none)"
            )),
        }
    }
}

/// Colors of the TUI. Each is a name ("red", "darkgray"), "#rrggbb" or an index "0".."255".
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub fg: Color,
    pub dim: Color,
    pub accent: Color,
    pub border: Color,
    pub border_focused: Color,
    pub selected_bg: Color,
    pub selected_fg: Color,
    pub status_bg: Color,
    pub status_fg: Color,
    pub email: Color,
    pub telegram: Color,
    pub webchat: Color,
    pub whatsapp: Color,
    /// Instagram and Messenger.
    pub meta: Color,
    pub sms: Color,
    /// Call logs and external events.
    pub event: Color,
    pub inbound: Color,
    pub outbound: Color,
    pub note_fg: Color,
    pub note_bg: Color,
    pub error: Color,
    pub warn: Color,
    pub ok: Color,
    pub vip: Color,
    pub urgent: Color,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            fg: Color::Reset,
            dim: Color::DarkGray,
            accent: Color::Cyan,
            border: Color::DarkGray,
            border_focused: Color::Cyan,
            selected_bg: Color::Indexed(237),
            selected_fg: Color::Reset,
            status_bg: Color::Indexed(236),
            status_fg: Color::Gray,
            email: Color::Yellow,
            telegram: Color::LightBlue,
            webchat: Color::LightGreen,
            whatsapp: Color::Green,
            meta: Color::LightMagenta,
            sms: Color::LightYellow,
            event: Color::Gray,
            inbound: Color::Reset,
            outbound: Color::LightCyan,
            note_fg: Color::Indexed(223),
            note_bg: Color::Indexed(58),
            error: Color::LightRed,
            warn: Color::Yellow,
            ok: Color::Green,
            vip: Color::LightMagenta,
            urgent: Color::LightRed,
        }
    }
}

impl Theme {
    /// The shipped themes, by the name `theme = "NAME"` gives.
    pub const NAMES: &[&str] = &["dark", "light"];

    /// The colors for a light terminal background.
    pub fn light() -> Theme {
        Theme {
            fg: Color::Reset,
            dim: Color::Indexed(244),
            accent: Color::Blue,
            border: Color::Indexed(250),
            border_focused: Color::Blue,
            selected_bg: Color::Indexed(254),
            selected_fg: Color::Reset,
            status_bg: Color::Indexed(253),
            status_fg: Color::Indexed(236),
            email: Color::Indexed(130),
            telegram: Color::Blue,
            webchat: Color::Green,
            whatsapp: Color::Indexed(28),
            meta: Color::Magenta,
            sms: Color::Indexed(136),
            event: Color::Indexed(242),
            inbound: Color::Reset,
            outbound: Color::Indexed(24),
            note_fg: Color::Indexed(94),
            note_bg: Color::Indexed(230),
            error: Color::Red,
            warn: Color::Indexed(130),
            ok: Color::Green,
            vip: Color::Magenta,
            urgent: Color::Red,
        }
    }

    /// A shipped theme by name.
    pub fn named(name: &str) -> Option<Theme> {
        match name {
            "dark" => Some(Theme::default()),
            "light" => Some(Theme::light()),
            _ => None,
        }
    }
}

/// Why a config could not be loaded. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// (Not a `source`: the message says the cause once; as a source, `{:#}` said it twice.)
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A syntax error, an unknown key or a bad value.
    #[error("config file {path}, line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        /// The offending key (dotted: `theme.accent`), when known.
        key: Option<String>,
        message: String,
    },
    #[error(
        "refusing to load config file {path}: it is readable by everyone (mode {mode:o}) and holds a \
         plain secret `{key}`; use `{suggestion}` (a command that prints it) or an environment \
         variable instead, or at least `chmod 600 {path}`"
    )]
    WorldReadableSecret {
        path: PathBuf,
        key: String,
        suggestion: String,
        mode: u32,
    },
    #[error(
        "cannot find a home directory for the default data dir; pass --data-dir DIR or set BRAID_DATA_DIR"
    )]
    NoDataDir,
}

/// What the process environment contributes. Captured once so tests can supply their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `BRAID_CONFIG`
    pub config: Option<PathBuf>,
    /// `BRAID_DATA_DIR`
    pub data_dir: Option<PathBuf>,
    /// `USER`
    pub user: Option<String>,
    /// The XDG config dir of braid (`$XDG_CONFIG_HOME/braid`).
    pub xdg_config_dir: Option<PathBuf>,
    /// The XDG data dir of braid (`$XDG_DATA_HOME/braid`).
    pub xdg_data_dir: Option<PathBuf>,
    /// The home directory, for `~/` in paths.
    pub home: Option<PathBuf>,
}

impl Env {
    /// The real environment of this process.
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let dirs = directories::ProjectDirs::from("", "", "braid");
        Env {
            config: var("BRAID_CONFIG").map(PathBuf::from),
            data_dir: var("BRAID_DATA_DIR").map(PathBuf::from),
            user: var("USER").and_then(|u| u.into_string().ok()),
            xdg_config_dir: dirs.as_ref().map(|d| d.config_dir().to_path_buf()),
            xdg_data_dir: dirs.as_ref().map(|d| d.data_dir().to_path_buf()),
            home: directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()),
        }
    }
}

impl Config {
    /// Load the config: the file from `explicit` (`--config`), else `BRAID_CONFIG`, else the XDG
    /// config file if it exists; the data dir from `data_dir_override` (`--data-dir`), else
    /// `BRAID_DATA_DIR`, else the file's `data_dir`, else the XDG data dir.
    pub fn load(
        explicit: Option<&Path>,
        data_dir_override: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        Config::load_with(explicit, data_dir_override, &Env::from_process())
    }

    /// [`Config::load`] with a given environment.
    pub fn load_with(
        explicit: Option<&Path>,
        data_dir_override: Option<&Path>,
        env: &Env,
    ) -> Result<Config, ConfigError> {
        // A file named on the command line or in BRAID_CONFIG must exist; the default may not.
        let (path, required) = match (explicit, &env.config) {
            (Some(p), _) => (Some(p.to_path_buf()), true),
            (None, Some(p)) => (Some(p.clone()), true),
            (None, None) => (
                env.xdg_config_dir.as_ref().map(|d| d.join(CONFIG_FILE)),
                false,
            ),
        };
        let file = match path {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    check_secrets(&path, &text)?;
                    Some((path, text))
                }
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => None,
                Err(error) => return Err(ConfigError::Read { path, error }),
            },
            None => None,
        };
        let raw = match &file {
            Some((path, text)) => parse_raw(path, text)?,
            None => RawConfig::default(),
        };
        let source = file.as_ref().map(|(p, _)| p.clone());
        let text = file.as_ref().map(|(_, t)| t.as_str()).unwrap_or("");
        raw.resolve(source, text, data_dir_override, env)
    }

    /// Built-in defaults with the store in `data_dir` (tests, tools).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            agent: "agent".into(),
            data_dir: data_dir.into(),
            source: None,
            reopen_window_ms: DEFAULT_REOPEN_WINDOW_MS,
            three_pane_min_width: DEFAULT_THREE_PANE_MIN_WIDTH,
            bulk_confirm_over: DEFAULT_BULK_CONFIRM_OVER,
            queue_order: crate::store::QueueOrder::default(),
            pending_after_reply: false,
            keymap_file: None,
            theme: Theme::default(),
            notifications: NotifySettings::default(),
            webchat: Default::default(),
            telegram: None,
            email: Vec::new(),
            events: Vec::new(),
            sms: None,
            whatsapp: None,
            instagram: None,
            messenger: None,
            workspace: Default::default(),
            macros: Vec::new(),
            suggest_command: None,
            suggest_timeout_ms: DEFAULT_SUGGEST_TIMEOUT_MS,
        }
    }

    /// The data dir of the demo workspace: the XDG data dir + `/demo`, apart from real data.
    pub fn demo_data_dir() -> Result<PathBuf, ConfigError> {
        Config::demo_data_dir_with(&Env::from_process())
    }

    /// [`Config::demo_data_dir`] with a given environment.
    pub fn demo_data_dir_with(env: &Env) -> Result<PathBuf, ConfigError> {
        env.xdg_data_dir
            .as_ref()
            .map(|d| d.join("demo"))
            .ok_or(ConfigError::NoDataDir)
    }

    /// Threading settings for [`crate::ingest`].
    pub fn ingest_settings(&self) -> crate::ingest::Settings {
        use crate::model::Channel;
        let mut teams = std::collections::BTreeMap::new();
        for account in &self.email {
            if let Some(team) = &account.team {
                teams.insert((Channel::Email, account.name.clone()), team.clone());
            }
        }
        if let Some(tg) = &self.telegram
            && let Some(team) = &tg.team
        {
            teams.insert((Channel::Telegram, tg.account.clone()), team.clone());
        }
        if let Some(team) = &self.webchat.team {
            // Web chat messages are stored under the account "".
            teams.insert((Channel::WebChat, String::new()), team.clone());
        }
        for source in &self.events {
            if let Some(team) = &source.team {
                // A source's call logs and its other events, under the source's name.
                teams.insert((Channel::Phone, source.name.clone()), team.clone());
                teams.insert((Channel::Event, source.name.clone()), team.clone());
            }
        }
        if let Some(sms) = &self.sms
            && let Some(team) = &sms.team
        {
            teams.insert((Channel::Sms, sms.account.clone()), team.clone());
        }
        if let Some(wa) = &self.whatsapp
            && let Some(team) = &wa.team
        {
            teams.insert((Channel::WhatsApp, wa.account.clone()), team.clone());
        }
        for m in self.instagram.iter().chain(self.messenger.iter()) {
            if let Some(team) = &m.team {
                teams.insert((m.platform.channel(), m.account.clone()), team.clone());
            }
        }
        crate::ingest::Settings {
            reopen_window_ms: self.reopen_window_ms,
            teams,
        }
    }

    /// What the worker needs to run the web chat, when `[webchat] enabled = true`, with the
    /// webhook sources it serves under `/hooks/`.
    pub fn webchat_options(&self) -> Option<crate::channels::webchat::Options> {
        self.webchat.enabled.then(|| {
            let mut o = crate::channels::webchat::Options::new(
                self.webchat.clone(),
                self.ingest_settings(),
            );
            o.hooks = self.hook_specs();
            o
        })
    }

    /// The approved WhatsApp templates (`[[whatsapp.templates]]`).
    pub fn templates(&self) -> Vec<crate::template::Template> {
        self.whatsapp
            .iter()
            .flat_map(|w| w.templates.iter().cloned())
            .chain(self.workspace.demo_templates.iter().cloned())
            .collect()
    }

    /// Every configured webhook source.
    pub fn hook_specs(&self) -> Vec<crate::channels::hooks::SourceSpec> {
        let mut specs: Vec<_> = self.events.iter().map(|e| e.spec()).collect();
        if let Some(sms) = &self.sms {
            specs.extend(sms.specs());
        }
        if let Some(wa) = &self.whatsapp {
            specs.push(wa.spec());
        }
        for m in self.instagram.iter().chain(self.messenger.iter()) {
            specs.push(m.spec());
        }
        specs
    }
}

/// What `:save` reads from the config: where the store is and the accounts to fetch through.
impl crate::channels::save::SaveConfig for Config {
    fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    fn email_accounts(&self) -> &[crate::channels::email::EmailAccount] {
        &self.email
    }
    fn telegram(&self) -> Option<&crate::channels::telegram::TelegramConfig> {
        self.telegram.as_ref()
    }
    fn ingest_settings(&self) -> crate::ingest::Settings {
        Config::ingest_settings(self)
    }
    fn whatsapp(&self) -> Option<&crate::channels::whatsapp::WhatsAppConfig> {
        self.whatsapp.as_ref()
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written: every value keeps its span, so a bad one can be reported with its line.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agent: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    reopen_window: Option<Spanned<String>>,
    pending_after_reply: Option<bool>,
    keymap_file: Option<Spanned<String>>,
    #[serde(default)]
    ui: RawUi,
    #[serde(default)]
    queue: RawQueue,
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    theme: RawThemeChoice,
    #[serde(default)]
    webchat: crate::channels::webchat::config::RawWebChat,
    telegram: Option<Spanned<crate::channels::telegram::RawTelegramConfig>>,
    #[serde(default)]
    email: Vec<Spanned<crate::channels::email::RawEmailAccount>>,
    #[serde(default)]
    events: Vec<Spanned<crate::channels::hooks::events::RawEventsConfig>>,
    sms: Option<Spanned<crate::channels::sms::RawSmsConfig>>,
    whatsapp: Option<Spanned<crate::channels::whatsapp::RawWhatsAppConfig>>,
    instagram: Option<Spanned<crate::channels::meta::RawMetaConfig>>,
    messenger: Option<Spanned<crate::channels::meta::RawMetaConfig>>,
    #[serde(default)]
    server: crate::server::workspace::RawServer,
    #[serde(default)]
    teams: Vec<Spanned<crate::server::workspace::RawTeam>>,
    #[serde(default)]
    agents: Vec<Spanned<crate::server::workspace::RawAgent>>,
    #[serde(default)]
    macros: std::collections::BTreeMap<String, Spanned<Vec<String>>>,
    suggest_command: Option<Spanned<String>>,
    suggest_timeout: Option<Spanned<String>>,
    #[serde(default)]
    hours: Vec<crate::sla::HoursSpec>,
    #[serde(default)]
    sla: Vec<crate::sla::PolicySpec>,
    csat: Option<Spanned<crate::csat::RawCsat>>,
    #[serde(default)]
    webhooks: Vec<Spanned<crate::webhooks::RawWebhook>>,
    #[serde(default)]
    campaigns: Vec<Spanned<crate::campaign::RawCampaign>>,
    campaign_pacing: Option<Spanned<crate::campaign::RawPacing>>,
    #[serde(default)]
    fields: Vec<Spanned<crate::fields::RawField>>,
    pipeline: Option<Spanned<crate::fields::RawPipeline>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    bell: Option<bool>,
    desktop: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    order: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    three_pane_min_width: Option<Spanned<u16>>,
    bulk_confirm_over: Option<usize>,
}

macro_rules! raw_theme {
    ($($field:ident),+ $(,)?) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawTheme {
            $($field: Option<Spanned<String>>,)+
        }

        impl RawTheme {
            fn apply(&self, theme: &mut Theme, ctx: &Ctx<'_>) -> Result<(), ConfigError> {
                $(
                    if let Some(v) = &self.$field {
                        theme.$field = parse_color(v.get_ref()).map_err(|m| {
                            ctx.invalid(v.span(), concat!("theme.", stringify!($field)), m)
                        })?;
                    }
                )+
                Ok(())
            }
        }

        /// Every key of the `[theme]` section.
        pub const THEME_KEYS: &[&str] = &[$(stringify!($field)),+];
    };
}

/// What a theme is, for the error of a value that is not one.
const THEME_EXPECTED: &str = "a theme: theme = \"dark\" or theme = \"light\", or a [theme] table of colors (accent = \"#ff8800\", email = \"yellow\", ...)";

/// `theme = "light"` (a shipped theme by name) or a `[theme]` table of colors over the dark one.
#[derive(Debug, Default)]
struct RawThemeChoice {
    name: Option<String>,
    table: RawTheme,
}

impl<'de> Deserialize<'de> for RawThemeChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Choice;
        impl<'de> serde::de::Visitor<'de> for Choice {
            type Value = RawThemeChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(THEME_EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawThemeChoice, E> {
                if Theme::named(v).is_none() {
                    return Err(E::custom(format!("unknown theme '{v}': {THEME_EXPECTED}")));
                }
                Ok(RawThemeChoice {
                    name: Some(v.to_string()),
                    table: RawTheme::default(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawThemeChoice, A::Error> {
                let table =
                    RawTheme::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawThemeChoice { name: None, table })
            }
        }
        d.deserialize_any(Choice)
    }
}

raw_theme!(
    fg,
    dim,
    accent,
    border,
    border_focused,
    selected_bg,
    selected_fg,
    status_bg,
    status_fg,
    email,
    telegram,
    webchat,
    inbound,
    outbound,
    note_fg,
    note_bg,
    error,
    warn,
    ok,
    vip,
    urgent,
);

/// Where the raw config came from, for error messages and relative paths.
struct Ctx<'a> {
    path: Option<&'a Path>,
    text: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, span: std::ops::Range<usize>, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.map(Path::to_path_buf).unwrap_or_default(),
            line: line_of(self.text, span.start),
            key: Some(key.to_string()),
            message: format!("`{key}`: {message}"),
        }
    }
}

impl RawConfig {
    fn resolve(
        self,
        source: Option<PathBuf>,
        text: &str,
        data_dir_override: Option<&Path>,
        env: &Env,
    ) -> Result<Config, ConfigError> {
        let ctx = Ctx {
            path: source.as_deref(),
            text,
        };
        let base = source.as_deref().and_then(Path::parent);

        let agent = match &self.agent {
            Some(a) => {
                let name = a.get_ref().trim();
                if name.is_empty() || name.chars().any(char::is_control) {
                    return Err(ctx.invalid(
                        a.span(),
                        "agent",
                        "must be a non-empty name on one line".into(),
                    ));
                }
                name.to_string()
            }
            None => env
                .user
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .unwrap_or("agent")
                .to_string(),
        };

        // Paths from the command line and the environment are relative to the working dir;
        // made absolute so messages and `status` say exactly where the store is.
        let data_dir = if let Some(d) = data_dir_override {
            absolute(d)
        } else if let Some(d) = &env.data_dir {
            absolute(d)
        } else if let Some(d) = &self.data_dir {
            if d.get_ref().trim().is_empty() {
                return Err(ctx.invalid(d.span(), "data_dir", "must not be empty".into()));
            }
            expand_path(d.get_ref(), base, env)
        } else {
            env.xdg_data_dir.clone().ok_or(ConfigError::NoDataDir)?
        };

        let reopen_window_ms = match &self.reopen_window {
            Some(w) => parse_duration(w.get_ref())
                .map_err(|m| ctx.invalid(w.span(), "reopen_window", m))?,
            None => DEFAULT_REOPEN_WINDOW_MS,
        };

        let keymap_file = match &self.keymap_file {
            Some(k) if k.get_ref().trim().is_empty() => {
                return Err(ctx.invalid(k.span(), "keymap_file", "must not be empty".into()));
            }
            Some(k) => Some(expand_path(k.get_ref(), base, env)),
            None => None,
        };

        let notifications = NotifySettings {
            bell: self.notifications.bell.unwrap_or(false),
            desktop: match &self.notifications.desktop {
                Some(d) => d
                    .get_ref()
                    .parse()
                    .map_err(|m| ctx.invalid(d.span(), "notifications.desktop", m))?,
                None => DesktopNotify::None,
            },
        };

        let queue_order = match &self.queue.order {
            Some(o) => o
                .get_ref()
                .parse::<crate::store::QueueOrder>()
                .map_err(|m| ctx.invalid(o.span(), "queue.order", m))?,
            None => crate::store::QueueOrder::default(),
        };

        let three_pane_min_width = match &self.ui.three_pane_min_width {
            Some(w) if *w.get_ref() < 40 => {
                return Err(ctx.invalid(
                    w.span(),
                    "ui.three_pane_min_width",
                    format!("{} is too narrow (at least 40 columns)", w.get_ref()),
                ));
            }
            Some(w) => *w.get_ref(),
            None => DEFAULT_THREE_PANE_MIN_WIDTH,
        };

        let mut theme = self
            .theme
            .name
            .as_deref()
            .and_then(Theme::named)
            .unwrap_or_default();
        self.theme.table.apply(&mut theme, &ctx)?;

        let telegram = match &self.telegram {
            Some(t) => Some(
                t.get_ref()
                    .resolve()
                    .map_err(|(key, m)| ctx.invalid(t.span(), &format!("telegram.{key}"), m))?,
            ),
            None => None,
        };

        let mut email: Vec<crate::channels::email::EmailAccount> = Vec::new();
        for (i, raw) in self.email.iter().enumerate() {
            let account = raw
                .get_ref()
                .resolve(i)
                .map_err(|(key, m)| ctx.invalid(raw.span(), &format!("email.{key}"), m))?;
            if email.iter().any(|a| a.name == account.name) {
                return Err(ctx.invalid(
                    raw.span(),
                    "email.name",
                    format!("two [[email]] accounts are named '{}'", account.name),
                ));
            }
            email.push(account);
        }

        let webchat = self
            .webchat
            .resolve()
            .map_err(|(span, key, message)| ctx.invalid(span, key, message))?;

        let mut events: Vec<crate::channels::hooks::events::EventsConfig> = Vec::new();
        for raw in &self.events {
            let source = raw
                .get_ref()
                .resolve()
                .map_err(|(key, m)| ctx.invalid(raw.span(), &format!("events.{key}"), m))?;
            if events.iter().any(|e| e.name == source.name) {
                return Err(ctx.invalid(
                    raw.span(),
                    "events.name",
                    format!("two [[events]] sources are named '{}'", source.name),
                ));
            }
            events.push(source);
        }
        let whatsapp = match &self.whatsapp {
            Some(w) => Some(
                w.get_ref()
                    .resolve()
                    .map_err(|(key, m)| ctx.invalid(w.span(), &format!("whatsapp.{key}"), m))?,
            ),
            None => None,
        };
        if let Some(w) = &self.whatsapp
            && !webchat.enabled
        {
            return Err(ctx.invalid(
                w.span(),
                "whatsapp",
                "WhatsApp's webhooks are served by the web chat's HTTP listener: add [webchat] \
                 with enabled = true and listen = \"ADDRESS:PORT\" (behind your TLS proxy), and \
                 give Meta https://YOUR-HOST/hooks/whatsapp as the callback URL"
                    .into(),
            ));
        }
        let mut meta_channels = Vec::new();
        for (raw, platform) in [
            (&self.instagram, crate::channels::meta::Platform::Instagram),
            (&self.messenger, crate::channels::meta::Platform::Messenger),
        ] {
            let Some(r) = raw else {
                meta_channels.push(None);
                continue;
            };
            let name = platform.path();
            let c = r
                .get_ref()
                .resolve(platform)
                .map_err(|(key, m)| ctx.invalid(r.span(), &format!("{name}.{key}"), m))?;
            if !webchat.enabled {
                return Err(ctx.invalid(
                    r.span(),
                    name,
                    format!(
                        "{}'s webhooks are served by the web chat's HTTP listener: add \
                         [webchat] with enabled = true and listen = \"ADDRESS:PORT\" (behind \
                         your TLS proxy), and give Meta https://YOUR-HOST/hooks/{name} as the \
                         callback URL",
                        platform.label()
                    ),
                ));
            }
            meta_channels.push(Some(c));
        }
        let messenger = meta_channels.pop().flatten();
        let instagram = meta_channels.pop().flatten();
        // Webhooks arrive on the web chat's HTTP listener.
        if let Some(first) = self.events.first()
            && !webchat.enabled
        {
            return Err(ctx.invalid(
                first.span(),
                "events",
                "webhooks are served by the web chat's HTTP listener: add [webchat] with \
                 enabled = true and listen = \"ADDRESS:PORT\" (behind your TLS proxy)"
                    .into(),
            ));
        }

        let sms = match &self.sms {
            Some(raw) => {
                let sms = raw
                    .get_ref()
                    .resolve()
                    .map_err(|(key, m)| ctx.invalid(raw.span(), &format!("sms.{key}"), m))?;
                if !webchat.enabled {
                    return Err(ctx.invalid(
                        raw.span(),
                        "sms",
                        "SMS webhooks are served by the web chat's HTTP listener: add [webchat] \
                         with enabled = true and listen = \"ADDRESS:PORT\" (behind your TLS proxy \
                         at public_url)"
                            .into(),
                    ));
                }
                Some(sms)
            }
            None => None,
        };

        let workspace = crate::server::workspace::resolve(
            &self.server,
            &self.teams,
            &self.agents,
            (&self.hours, &self.sla),
            |p| expand_path(p, base, env),
        )
        .map_err(|(span, key, message)| ctx.invalid(span, &key, message))?;
        let mut workspace = workspace;
        if let Some(raw) = &self.csat {
            let teams: Vec<String> = workspace.teams.iter().map(|t| t.name.clone()).collect();
            workspace.csat = raw
                .get_ref()
                .resolve(&teams)
                .map_err(|(span, key, message)| ctx.invalid(span, &key, message))?;
        }
        workspace.webhooks = crate::webhooks::resolve_all(&self.webhooks)
            .map_err(|(span, key, message)| ctx.invalid(span, &key, message))?;
        {
            let hours: Vec<String> = workspace.sla.hours.iter().map(|h| h.name.clone()).collect();
            workspace.campaigns =
                crate::campaign::resolve(&self.campaigns, self.campaign_pacing.as_ref(), &hours)
                    .map_err(|(span, key, message)| ctx.invalid(span, &key, message))?;
        }
        workspace.fields = crate::fields::resolve(&self.fields, self.pipeline.as_ref())
            .map_err(|(span, key, message)| ctx.invalid(span, &key, message))?;

        // A channel's team must be one the workspace defines: a typo would make a team nobody
        // is in, whose conversations only admins would ever see.
        let mut channel_teams: Vec<(String, &str)> = Vec::new();
        for a in &email {
            if let Some(t) = &a.team {
                channel_teams.push((format!("email.team (account '{}')", a.name), t));
            }
        }
        if let Some(t) = telegram.as_ref().and_then(|t| t.team.as_deref()) {
            channel_teams.push(("telegram.team".into(), t));
        }
        if let Some(t) = webchat.team.as_deref() {
            channel_teams.push(("webchat.team".into(), t));
        }
        for e in &events {
            if let Some(t) = &e.team {
                channel_teams.push((format!("events.team (source '{}')", e.name), t));
            }
        }
        if let Some(t) = sms.as_ref().and_then(|s| s.team.as_deref()) {
            channel_teams.push(("sms.team".into(), t));
        }
        if let Some(t) = whatsapp.as_ref().and_then(|w| w.team.as_deref()) {
            channel_teams.push(("whatsapp.team".into(), t));
        }
        for m in instagram.iter().chain(messenger.iter()) {
            if let Some(t) = m.team.as_deref() {
                channel_teams.push((format!("{}.team", m.platform.path()), t));
            }
        }
        for (key, team) in channel_teams {
            if !workspace.teams.iter().any(|t| t.name == team) {
                let known: Vec<&str> = workspace.teams.iter().map(|t| t.name.as_str()).collect();
                let at = text.find(&format!("\"{team}\"")).unwrap_or(0);
                return Err(ctx.invalid(
                    at..at,
                    &key,
                    format!(
                        "team '{team}' is not defined: add [[teams]] name = \"{team}\" (defined: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }

        let mut macros = Vec::new();
        for (name, steps) in &self.macros {
            Macro::validate(name, steps.get_ref())
                .map_err(|m| ctx.invalid(steps.span(), &format!("macros.{name}"), m))?;
            macros.push(Macro {
                name: name.clone(),
                steps: steps.get_ref().clone(),
            });
        }
        let suggest_command = match &self.suggest_command {
            Some(c) if c.get_ref().trim().is_empty() => {
                return Err(ctx.invalid(
                    c.span(),
                    "suggest_command",
                    "must not be empty (leave it out to have no :suggest)".into(),
                ));
            }
            Some(c) => Some(c.get_ref().trim().to_string()),
            None => None,
        };
        let suggest_timeout_ms = match &self.suggest_timeout {
            Some(w) => parse_duration(w.get_ref())
                .map_err(|m| ctx.invalid(w.span(), "suggest_timeout", m))?,
            None => DEFAULT_SUGGEST_TIMEOUT_MS,
        };

        Ok(Config {
            macros,
            suggest_command,
            suggest_timeout_ms,
            workspace,
            agent,
            data_dir,
            source,
            reopen_window_ms,
            three_pane_min_width,
            bulk_confirm_over: self
                .ui
                .bulk_confirm_over
                .unwrap_or(DEFAULT_BULK_CONFIRM_OVER),
            queue_order,
            pending_after_reply: self.pending_after_reply.unwrap_or(false),
            keymap_file,
            theme,
            notifications,
            webchat,
            telegram,
            email,
            events,
            sms,
            whatsapp,
            instagram,
            messenger,
        })
    }
}

/// Parse the file into its raw shape, turning toml/serde errors into one-line messages with the
/// line and the key.
fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str::<RawConfig>(text).map_err(|e| {
        let start = e.span().map(|s| s.start).unwrap_or(0);
        let line = line_of(text, start);
        let section = section_at(text, start);
        let raw_message = e.message().trim().replace('\n', "; ");
        let (key, message) = if let Some(rest) = raw_message.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or("").to_string();
            let after = rest.split_once('`').map(|x| x.1).unwrap_or("");
            let expected = after.trim_start_matches(',').trim();
            let full = match &section {
                Some(s) => format!("{s}.{name}"),
                None => name.clone(),
            };
            let place = match &section {
                Some(s) => format!(" in [{s}]"),
                None => String::new(),
            };
            let message = if expected.is_empty() {
                format!("unknown key `{name}`{place}")
            } else {
                format!("unknown key `{name}`{place}; {expected}")
            };
            (Some(full), message)
        } else {
            match key_on_line(text, start) {
                Some(k) => {
                    let full = match &section {
                        Some(s) => format!("{s}.{k}"),
                        None => k,
                    };
                    let hint = match full.as_str() {
                        "reopen_window" => " (a duration like \"7d\" or \"36h\")",
                        k if k.starts_with("theme.") => {
                            " (a colour name, \"#rrggbb\" or an index \"0\"..\"255\", in quotes)"
                        }
                        _ => "",
                    };
                    let message = format!("`{full}`: {raw_message}{hint}");
                    (Some(full), message)
                }
                None => (None, raw_message),
            }
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        }
    })
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line containing a byte offset.
fn line_at(text: &str, offset: usize) -> &str {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    &text[start..end]
}

/// The key of a `key = value` line, when the offset is on one.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let line = line_at(text, offset);
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"').trim();
    (!key.is_empty() && !key.starts_with('[') && !key.starts_with('#')).then(|| key.to_string())
}

/// The `[section]` a byte offset sits in (None: top level).
fn section_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let here = line_at(text, offset).trim();
    let before = &text[..offset];
    // An error on a header line itself (e.g. `[colours]`) belongs to the top level.
    if here.starts_with('[') {
        return None;
    }
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_start_matches('['))
        .and_then(|l| l.split(']').next())
        .map(|s| s.trim().to_string())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `~/x` is under the home dir; a relative path is relative to the config file's directory.
fn expand_path(raw: &str, base: Option<&Path>, env: &Env) -> PathBuf {
    let raw = raw.trim();
    if let (Some(rest), Some(home)) = (raw.strip_prefix("~/"), &env.home) {
        return home.join(rest);
    }
    if raw == "~"
        && let Some(home) = &env.home
    {
        return home.clone();
    }
    let p = PathBuf::from(raw);
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

/// A colour: a name ("red", "darkgray", "lightcyan", "reset"), "#rrggbb" or an index "0".."255".
pub fn parse_color(s: &str) -> Result<Color, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "bad colour '{s}' (use a name like red, darkgray, lightcyan, reset; #rrggbb; or 0..255)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if t.starts_with('#') && (t.len() != 7 || !t[1..].chars().all(|c| c.is_ascii_hexdigit())) {
        return Err(bad());
    }
    if t.chars().all(|c| c.is_ascii_digit()) && t.parse::<u8>().is_err() {
        return Err(bad());
    }
    Color::from_str(t).map_err(|_| bad())
}

/// Refuse a world-readable file that holds a plain secret (convention 7).
fn check_secrets(path: &Path, text: &str) -> Result<(), ConfigError> {
    let Some(mode) = file_mode(path) else {
        return Ok(());
    };
    if mode & 0o004 == 0 {
        return Ok(());
    }
    // A file that does not parse has no secrets we can name; the parse error reports it.
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    if let Some(key) = find_secret(&table, "") {
        let last = key.rsplit('.').next().unwrap_or(&key).to_string();
        return Err(ConfigError::WorldReadableSecret {
            path: path.to_path_buf(),
            suggestion: format!("{last}_command"),
            key,
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// The dotted path of the first key that holds a plain secret.
fn find_secret(table: &toml::Table, prefix: &str) -> Option<String> {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let lower = k.to_ascii_lowercase();
        if ["password", "token", "secret"]
            .iter()
            .any(|s| lower.ends_with(s))
        {
            return Some(path);
        }
        match v {
            toml::Value::Table(t) => {
                if let Some(p) = find_secret(t, &path) {
                    return Some(p);
                }
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item
                        && let Some(p) = find_secret(t, &format!("{path}[{i}]"))
                    {
                        return Some(p);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env_in(dir: &Path) -> Env {
        Env {
            config: None,
            data_dir: None,
            user: Some("ann".into()),
            xdg_config_dir: Some(dir.join("xdg-config/braid")),
            xdg_data_dir: Some(dir.join("xdg-data/braid")),
            home: Some(dir.join("home")),
        }
    }

    /// A config file named but missing is one line saying why once (it said "No such file or
    /// directory" twice: the cause was both in the message and its source).
    #[test]
    fn a_missing_named_config_says_why_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = Config::load_with(Some(&missing), None, &env_in(dir.path())).unwrap_err();
        let line = format!("{:#}", anyhow::Error::from(err));
        assert!(line.starts_with("cannot read config file "), "{line}");
        assert_eq!(line.matches("os error 2").count(), 1, "{line}");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "c.toml", text);
        Config::load_with(Some(&path), None, &env_in(dir.path()))
    }

    #[test]
    fn bulk_confirm_over_defaults_to_20_and_is_set_under_ui() {
        assert_eq!(load_text("").unwrap().bulk_confirm_over, 20);
        let c = load_text("[ui]\nbulk_confirm_over = 50\n").unwrap();
        assert_eq!(c.bulk_confirm_over, 50);
        assert!(load_text("[ui]\nbulk_confirm_over = -1\n").is_err());
    }

    #[test]
    fn the_web_chat_runs_only_when_enabled_with_the_configs_threading() {
        assert!(load_text("").unwrap().webchat_options().is_none());
        let c = load_text(
            "reopen_window = \"2d\"\n[webchat]\nenabled = true\nlisten = \"127.0.0.1:47999\"\n",
        )
        .unwrap();
        let o = c.webchat_options().unwrap();
        assert_eq!(o.config.listen.port(), 47999);
        assert_eq!(o.ingest.reopen_window_ms, 2 * 86_400_000);
        // `:save` reads the same config through the channel's own trait.
        use crate::channels::save::SaveConfig;
        assert_eq!(SaveConfig::data_dir(&c), c.data_dir.as_path());
        assert_eq!(
            SaveConfig::ingest_settings(&std::sync::Arc::new(c.clone())).reopen_window_ms,
            2 * 86_400_000
        );
        assert!(SaveConfig::telegram(&c).is_none());
        assert!(SaveConfig::email_accounts(&c).is_empty());
    }

    #[test]
    fn no_file_at_all_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path());
        let c = Config::load_with(None, None, &env).unwrap();
        assert_eq!(c.agent, "ann");
        assert_eq!(c.data_dir, dir.path().join("xdg-data/braid"));
        assert_eq!(c.source, None);
        assert_eq!(c.reopen_window_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(c.three_pane_min_width, 140);
        assert!(!c.pending_after_reply);
        assert_eq!(c.keymap_file, None);
        assert_eq!(c.theme, Theme::default());

        let nobody = Env { user: None, ..env };
        assert_eq!(
            Config::load_with(None, None, &nobody).unwrap().agent,
            "agent"
        );
    }

    #[test]
    fn the_xdg_file_is_read_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path());
        let cfg_dir = dir.path().join("xdg-config/braid");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        let path = write(&cfg_dir, "config.toml", "agent = \"bob\"\n");
        let c = Config::load_with(None, None, &env).unwrap();
        assert_eq!(c.agent, "bob");
        assert_eq!(c.source, Some(path));
    }

    #[test]
    fn an_explicit_or_env_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path());
        let missing = dir.path().join("nope.toml");
        let err = Config::load_with(Some(&missing), None, &env).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
        let env2 = Env {
            config: Some(missing),
            ..env
        };
        assert!(Config::load_with(None, None, &env2).is_err());
    }

    #[test]
    fn explicit_file_wins_over_braid_config() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", "agent = \"a\"\n");
        let b = write(dir.path(), "b.toml", "agent = \"b\"\n");
        let env = Env {
            config: Some(b),
            ..env_in(dir.path())
        };
        assert_eq!(Config::load_with(Some(&a), None, &env).unwrap().agent, "a");
        assert_eq!(Config::load_with(None, None, &env).unwrap().agent, "b");
    }

    #[test]
    fn data_dir_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "c.toml", "data_dir = \"from-file\"\n");
        let env = env_in(dir.path());
        // the file's relative path is relative to the file
        let c = Config::load_with(Some(&file), None, &env).unwrap();
        assert_eq!(c.data_dir, dir.path().join("from-file"));
        // BRAID_DATA_DIR beats the file
        let env2 = Env {
            data_dir: Some("/env/dir".into()),
            ..env.clone()
        };
        let c = Config::load_with(Some(&file), None, &env2).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/env/dir"));
        // --data-dir beats everything
        let c = Config::load_with(Some(&file), Some(Path::new("/flag")), &env2).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/flag"));
        // ~ is the home dir
        let file = write(dir.path(), "d.toml", "data_dir = \"~/braid-data\"\n");
        let c = Config::load_with(Some(&file), None, &env).unwrap();
        assert_eq!(c.data_dir, dir.path().join("home/braid-data"));
    }

    #[test]
    fn demo_dir_is_beside_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path());
        assert_eq!(
            Config::demo_data_dir_with(&env).unwrap(),
            dir.path().join("xdg-data/braid/demo")
        );
        assert!(Config::demo_data_dir_with(&Env::default()).is_err());
    }

    #[test]
    fn every_key_is_read() {
        let c = load_text(
            "agent = \"zoe\"\nreopen_window = \"36h\"\nkeymap_file = \"/k.toml\"\n\
             pending_after_reply = true\n\
             [ui]\nthree_pane_min_width = 120\n\
             [theme]\naccent = \"#ff8800\"\nvip = \"200\"\ndim = \"lightcyan\"\n",
        )
        .unwrap();
        assert_eq!(c.agent, "zoe");
        assert_eq!(c.reopen_window_ms, 36 * 3600 * 1000);
        assert_eq!(c.keymap_file, Some(PathBuf::from("/k.toml")));
        assert_eq!(c.three_pane_min_width, 120);
        assert!(c.pending_after_reply);
        assert_eq!(c.theme.accent, Color::Rgb(0xff, 0x88, 0));
        assert_eq!(c.theme.vip, Color::Indexed(200));
        assert_eq!(c.theme.dim, Color::LightCyan);
        assert_eq!(c.theme.email, Theme::default().email);
    }

    #[test]
    fn hours_and_sla_policies_are_checked_with_key_and_line() {
        let good = "[[hours]]\nname = \"emea\"\nzone = \"Europe/Berlin\"\nweekdays = [\"09:00-12:00\", \"13:00-17:00\"]\nholidays = [\"2026-12-25\"]\n\n[[sla]]\nname = \"gold\"\nfirst_response = \"1h\"\nhours = \"emea\"\n\n[[teams]]\nname = \"billing\"\nhours = \"emea\"\n\n[queue]\norder = \"activity\"\n";
        let c = load_text(good).unwrap();
        assert_eq!(c.workspace.sla.hours[0].zone, "Europe/Berlin");
        assert_eq!(c.workspace.sla.policies[0].first_response, Some(3_600_000));
        assert_eq!(c.workspace.team_hours(Some("billing")), Some("emea"));
        assert_eq!(c.queue_order, crate::store::QueueOrder::Activity);
        assert_eq!(
            load_text("").unwrap().queue_order,
            crate::store::QueueOrder::Triage
        );
        for (bad, line, key) in [
            (
                good.replace("Europe/Berlin", "Europe/Atlantis"),
                3,
                "hours.zone",
            ),
            (
                good.replace("13:00-17:00", "13:00-11:00"),
                4,
                "hours.weekdays",
            ),
            (
                good.replace(
                    "hours = \"emea\"\n\n[[teams]]",
                    "hours = \"apac\"\n\n[[teams]]",
                ),
                10,
                "sla.hours",
            ),
            (
                good.replace(
                    "name = \"billing\"\nhours = \"emea\"",
                    "name = \"billing\"\nhours = \"nyc\"",
                ),
                14,
                "teams.hours",
            ),
            (good.replace("\"1h\"", "\"soon\""), 9, "sla.first_response"),
            (
                good.replace("\"activity\"", "\"random\""),
                17,
                "queue.order",
            ),
        ] {
            match load_text(&bad).unwrap_err() {
                ConfigError::Invalid {
                    line: l,
                    key: k,
                    message,
                    ..
                } => {
                    assert_eq!((l, k.as_deref()), (line, Some(key)), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn csat_settings_are_read_and_checked_with_key_and_line() {
        let c = load_text("").unwrap();
        assert!(
            !c.workspace.csat.enabled,
            "surveys are off unless asked for"
        );
        let good = "[[teams]]\nname = \"support\"\n\n[csat]\nenabled = true\nchannels = [\"email\", \"telegram\"]\nteams = [\"support\", \"none\"]\nquestion = \"How did we do?\"\nanswer_window = \"3d\"\ndelay = \"1h\"\n";
        let c = load_text(good).unwrap();
        let cs = &c.workspace.csat;
        assert!(cs.enabled);
        assert_eq!(
            cs.channels,
            vec![
                crate::model::Channel::Email,
                crate::model::Channel::Telegram
            ]
        );
        assert_eq!(
            cs.teams.as_deref(),
            Some(&["support".to_string(), "none".to_string()][..])
        );
        assert_eq!(cs.question, "How did we do?");
        assert_eq!(cs.answer_window_ms, 3 * 86_400_000);
        assert_eq!(cs.delay_ms, 3_600_000);
        for (bad, line, key) in [
            (
                good.replace("\"telegram\"]", "\"pigeon\"]"),
                6,
                "csat.channels",
            ),
            (
                good.replace("\"telegram\"]", "\"phone\"]"),
                6,
                "csat.channels",
            ),
            (
                good.replace("\"support\", \"none\"", "\"sales\""),
                7,
                "csat.teams",
            ),
            (good.replace("How did we do?", " "), 8, "csat.question"),
            (good.replace("\"3d\"", "\"soon\""), 9, "csat.answer_window"),
            (good.replace("\"1h\"", "\"90d\""), 10, "csat.delay"),
        ] {
            match load_text(&bad).unwrap_err() {
                ConfigError::Invalid {
                    line: l,
                    key: k,
                    message,
                    ..
                } => {
                    assert_eq!((l, k.as_deref()), (line, Some(key)), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let err = load_text("[csat]\nenable = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`enable`"), "{err}");
    }

    #[test]
    fn webhooks_are_read_and_checked_with_key_and_line() {
        let good = "[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/hooks\"\nevents = [\"message_in\", \"csat_*\", \"consent_changed\"]\nsecret_env = \"BRAID_WEBHOOK_CRM\"\ntimeout = \"5s\"\n";
        let c = load_text(good).unwrap();
        let w = &c.workspace.webhooks[0];
        assert_eq!(w.name, "crm");
        assert_eq!(w.timeout_ms, 5_000);
        assert!(w.events.matches("csat_answered"));
        assert!(!w.events.matches("message_out"));
        let all = load_text(&good.replace(
            "[\"message_in\", \"csat_*\", \"consent_changed\"]",
            "[\"*\"]",
        ))
        .unwrap();
        assert_eq!(
            all.workspace.webhooks[0].events,
            crate::webhooks::EventFilter::All
        );
        for (bad, line, key, says) in [
            (
                good.replace("https://crm", "ftp://crm"),
                3,
                "webhooks.url",
                "http:// or https://",
            ),
            (
                good.replace("\"message_in\"", "\"message_created\""),
                4,
                "webhooks.events",
                "known: message_in, message_out",
            ),
            (
                good.replace("\"5s\"", "\"soon\""),
                6,
                "webhooks.timeout",
                "",
            ),
            (
                good.replace("secret_env = \"BRAID_WEBHOOK_CRM\"\n", ""),
                1,
                "webhooks.secret_command",
                "secret is missing",
            ),
            (
                format!("{good}\n{good}"),
                8,
                "webhooks.name",
                "two [[webhooks]]",
            ),
        ] {
            match load_text(&bad).unwrap_err() {
                ConfigError::Invalid {
                    line: l,
                    key: k,
                    message,
                    ..
                } => {
                    assert_eq!((l, k.as_deref()), (line, Some(key)), "{message}");
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        // The secret itself is never a key of the file.
        let err =
            load_text(&good.replace("secret_env = \"BRAID_WEBHOOK_CRM\"", "secret = \"hunter2\""))
                .unwrap_err()
                .to_string();
        assert!(err.contains("`secret`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn fields_and_pipeline_are_read_and_checked_with_key_and_line() {
        let c = load_text("").unwrap();
        assert!(c.workspace.fields.fields.is_empty());
        assert_eq!(
            c.workspace.fields.stages,
            ["lead", "qualified", "customer", "churned"]
        );
        let good = "[[fields]]\nname = \"plan\"\ntype = \"choice\"\nchoices = [\"free\", \"pro\"]\nlabel = \"Plan\"\n\n[[fields]]\nname = \"renewal\"\ntype = \"date\"\n\n[pipeline]\nstages = [\"trial\", \"paying\"]\n";
        let c = load_text(good).unwrap();
        let f = &c.workspace.fields;
        assert_eq!(f.fields.len(), 2);
        assert_eq!(f.fields[0].choices, ["free", "pro"]);
        assert_eq!(f.fields[0].label(), "Plan");
        assert_eq!(f.fields[1].kind, crate::fields::FieldKind::Date);
        assert_eq!(f.stages, ["trial", "paying"]);
        for (bad, line, key, says) in [
            (
                good.replace("\"plan\"", "\"Plan!\""),
                2,
                "fields.name",
                "lowercase",
            ),
            (
                good.replace("\"plan\"", "\"tag\""),
                2,
                "fields.name",
                "built-in",
            ),
            (
                good.replace("\"renewal\"", "\"plan\""),
                8,
                "fields.name",
                "twice",
            ),
            (
                good.replace("\"date\"", "\"when\""),
                9,
                "fields.type",
                "text, number",
            ),
            (
                good.replace("choices = [\"free\", \"pro\"]\n", ""),
                1,
                "fields.choices",
                "add choices",
            ),
            (
                good.replace("\"trial\", \"paying\"", ""),
                12,
                "pipeline.stages",
                "no stage",
            ),
        ] {
            match load_text(&bad).unwrap_err() {
                ConfigError::Invalid {
                    line: l,
                    key: k,
                    message,
                    ..
                } => {
                    assert_eq!((l, k.as_deref()), (line, Some(key)), "{message}");
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_examples_webhooks_block_parses() {
        let block: String = EXAMPLE
            .lines()
            .skip_while(|l| l.trim() != "## [[webhooks]]")
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("## "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(block.contains("secret_command = "), "{block}");
        let c = load_text(&block).unwrap();
        let w = &c.workspace.webhooks[0];
        assert_eq!(w.name, "crm");
        assert!(w.events.matches("csat_answered") && w.events.matches("consent_changed"));
        assert_eq!(w.timeout_ms, 10_000);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = load_text("agent = \"a\"\n\n[theme]\naccent = \"red\"\ncolour = \"blue\"\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("`colour`"), "{msg}");
        assert!(msg.contains("[theme]"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        match err {
            ConfigError::Invalid { line, key, .. } => {
                assert_eq!(line, 5);
                assert_eq!(key.as_deref(), Some("theme.colour"));
            }
            other => panic!("{other:?}"),
        }

        let err = load_text("agnet = \"a\"\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("`agnet`"), "{err}");

        let err = load_text("agent = \"a\"\n[colours]\nx = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("`colours`"), "{err}");
    }

    #[test]
    fn a_theme_can_be_named() {
        assert_eq!(
            load_text("theme = \"dark\"\n").unwrap().theme,
            Theme::default()
        );
        let light = load_text("theme = \"light\"\n").unwrap().theme;
        assert_eq!(light, Theme::light());
        assert_ne!(light, Theme::default());
        let msg = load_text("theme = \"neon\"\n").unwrap_err().to_string();
        assert!(!msg.contains("RawTheme"), "{msg}");
        assert!(
            msg.contains("neon") && msg.contains("\"dark\"") && msg.contains("\"light\""),
            "{msg}"
        );
        assert!(
            msg.contains("[theme]"),
            "says a theme can be a table too: {msg}"
        );
        let msg = load_text("theme = 3\n").unwrap_err().to_string();
        assert!(
            !msg.contains("RawTheme") && msg.contains("\"light\""),
            "{msg}"
        );
    }

    #[test]
    fn bad_colour_names_key_and_line() {
        let err = load_text("[theme]\n\nemail = \"yelow\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("theme.email"), "{msg}");
        assert!(msg.contains("yelow"), "{msg}");
        for bad in ["#12345", "#gggggg", "256", "", "light"] {
            assert!(parse_color(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_color("darkgray"), Ok(Color::DarkGray));
        assert_eq!(parse_color("dark-gray"), Ok(Color::DarkGray));
        assert_eq!(parse_color("#0A0b0C"), Ok(Color::Rgb(10, 11, 12)));
        assert_eq!(parse_color("0"), Ok(Color::Indexed(0)));
        assert_eq!(parse_color("255"), Ok(Color::Indexed(255)));
        assert_eq!(parse_color("reset"), Ok(Color::Reset));
    }

    #[test]
    fn bad_value_types_name_key_and_line() {
        let err = load_text("agent = \"a\"\n[ui]\nthree_pane_min_width = \"wide\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("ui.three_pane_min_width"), "{err}");

        let err = load_text("reopen_window = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("reopen_window"),
            "{err}"
        );

        let err = load_text("reopen_window = 7\n").unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("reopen_window"),
            "{err}"
        );

        let err = load_text("agent = \"\"\n").unwrap_err().to_string();
        assert!(err.contains("`agent`"), "{err}");

        let err = load_text("[ui]\nthree_pane_min_width = 10\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("too narrow"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = load_text("agent = \"a\"\nthis is not toml\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_secrets_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path());
        let path = write(
            dir.path(),
            "c.toml",
            "agent = \"a\"\n[channels.email]\nimap_password = \"hunter2\"\n",
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Config::load_with(Some(&path), None, &env).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ConfigError::WorldReadableSecret { .. }),
            "{msg}"
        );
        assert!(msg.contains("channels.email.imap_password"), "{msg}");
        assert!(msg.contains("imap_password_command"), "{msg}");
        assert!(msg.contains("644"), "{msg}");

        // The *_command form is not a secret.
        let path = write(dir.path(), "d.toml", "bot_token_command = \"pass bot\"\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Config::load_with(Some(&path), None, &env).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");

        // Private: the secret check passes (and the key is then simply unknown, for now).
        let path = write(dir.path(), "e.toml", "api_token = \"x\"\n");
        let err = Config::load_with(Some(&path), None, &env).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        // World-readable without secrets is fine.
        let path = write(dir.path(), "f.toml", "agent = \"a\"\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load_with(Some(&path), None, &env).is_ok());
    }

    #[test]
    fn notifications_bell_and_desktop() {
        let c = load_text("[notifications]\nbell = true\ndesktop = \"osc777\"\n").unwrap();
        assert_eq!(
            c.notifications,
            NotifySettings {
                bell: true,
                desktop: DesktopNotify::Osc777
            }
        );
        let c = load_text("").unwrap();
        assert_eq!(c.notifications, NotifySettings::default());
        let e = load_text("[notifications]\ndesktop = \"growl\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("notifications.desktop"), "{e}");
        assert!(e.contains("osc9, osc777, none"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn macros_and_the_suggest_command_are_read_and_a_bad_step_names_its_macro() {
        let c = load_text(
            "suggest_command = \"~/bin/suggest\"\nsuggest_timeout = \"5s\"\n\
             [macros]\nrefund-ok = [\"tag refund\", \"template refund-approved\", \
             \"assign team billing\", \"resolve\"]\n",
        )
        .unwrap();
        assert_eq!(c.suggest_command.as_deref(), Some("~/bin/suggest"));
        assert_eq!(c.suggest_timeout_ms, 5_000);
        assert_eq!(c.macros.len(), 1);
        assert_eq!(c.macros[0].name, "refund-ok");
        assert_eq!(c.macros[0].steps[3], "resolve");
        let none = load_text("").unwrap();
        assert!(none.macros.is_empty() && none.suggest_command.is_none());
        assert_eq!(none.suggest_timeout_ms, DEFAULT_SUGGEST_TIMEOUT_MS);
        for (text, want) in [
            (
                "[macros]\nx = [\"frobnicate\"]\n",
                "macro 'x': step 'frobnicate': unknown command",
            ),
            (
                "[macros]\nx = [\"tag\"]\n",
                "macro 'x': step 'tag' needs its argument",
            ),
            ("[macros]\nx = [\"macro y\"]\n", "macros do not call macros"),
            ("[macros]\nx = []\n", "macro 'x' has no steps"),
            (
                "[macros]\nx = [\"resolve now\"]\n",
                "resolve takes no argument",
            ),
            ("suggest_command = \" \"\n", "suggest_command"),
        ] {
            let e = load_text(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let e = load_text("\n[macros]\nx = [\"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "the line is named: {e}");
    }

    #[test]
    fn the_example_documents_every_key_and_parses() {
        // As shipped (all commented out): the defaults.
        let c = load_text(EXAMPLE).unwrap();
        assert_eq!(c.theme, Theme::default());
        assert_eq!(c.three_pane_min_width, DEFAULT_THREE_PANE_MIN_WIDTH);
        // Uncommented: every documented value parses and equals the default.
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| {
                let t = l.trim_start();
                match t.strip_prefix("# ") {
                    Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
                    _ => l,
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            // Webhook sources ([[events]]...) need the web chat's listener.
            .replace("[webchat]\nenabled = false", "[webchat]\nenabled = true");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "c.toml", &uncommented);
        let c = Config::load_with(Some(&path), None, &env_in(dir.path())).unwrap();
        assert_eq!(c.theme, Theme::default());
        assert_eq!(c.reopen_window_ms, DEFAULT_REOPEN_WINDOW_MS);
        assert_eq!(c.three_pane_min_width, DEFAULT_THREE_PANE_MIN_WIDTH);
        assert_eq!(
            c.events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["pbx"]
        );
        assert_eq!(c.macros[0].name, "refund-ok");
        assert_eq!(c.suggest_command.as_deref(), Some("~/bin/suggest-reply"));
        for key in THEME_KEYS {
            assert!(
                EXAMPLE.contains(&format!("# {key} = ")),
                "theme key {key} is not documented"
            );
        }
        for key in [
            "agent",
            "data_dir",
            "reopen_window",
            "keymap_file",
            "three_pane_min_width",
        ] {
            assert!(
                EXAMPLE.contains(&format!("# {key} = ")),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn sms_is_configured_from_the_examples_block_and_needs_the_web_chat() {
        // The example's [sms] block, uncommented.
        let block: String = EXAMPLE
            .lines()
            .skip_while(|l| l.trim() != "## [sms]")
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("## "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(block.contains("account_sid = "), "{block}");
        let e = load_text(&block).unwrap_err().to_string();
        assert!(e.contains("[webchat]"), "{e}");
        let text = format!(
            "[webchat]\nenabled = true\n[[teams]]\nname = \"support\"\n{}",
            block.replace("team = \"\"", "team = \"support\"")
        );
        let c = load_text(&text).unwrap();
        let sms = c.sms.clone().unwrap();
        assert_eq!(sms.account_sid, "AC0123456789abcdef0123456789abcdef");
        assert_eq!(sms.from.as_deref(), Some("+14155550100"));
        assert_eq!(sms.public_url, "https://help.example.com");
        assert_eq!(sms.api_url, "https://api.twilio.com");
        let paths: Vec<String> = c.hook_specs().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, ["sms", "sms/status"]);
        assert_eq!(
            c.ingest_settings()
                .teams
                .get(&(crate::model::Channel::Sms, "+14155550100".to_string()))
                .map(String::as_str),
            Some("support")
        );
        let opts = crate::worker::WorkerOptions::from_config(&c);
        assert!(
            opts.senders
                .iter()
                .any(|s| s.channel() == crate::model::Channel::Sms)
        );
        let e = load_text(&text.replace("team = \"support\"", "team = \"sales\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sms.team"), "{e}");
        let e = load_text(&text.replace("https://help.example.com", "help.example.com"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sms.public_url"), "{e}");
    }

    #[test]
    fn whatsapp_is_a_webhook_source_a_sender_and_a_team() {
        let text = "[webchat]\nenabled = true\nlisten = \"127.0.0.1:47999\"\n\
            [[teams]]\nname = \"support\"\n\
            [whatsapp]\nphone_number_id = \"106540352242922\"\naccount = \"shop\"\n\
            token_env = \"WA_TOKEN\"\napp_secret_env = \"WA_SECRET\"\n\
            verify_token_env = \"WA_VERIFY\"\nteam = \"support\"\n\
            [[whatsapp.templates]]\nname = \"order_update\"\nlanguage = \"en_US\"\n\
            text = \"Hi {{1}}, order {{2}} shipped\"\n";
        let c = load_text(text).unwrap();
        let wa = c.whatsapp.as_ref().unwrap();
        assert_eq!(wa.account, "shop");
        assert_eq!(wa.templates[0].params(), 2);
        let paths: Vec<String> = c.hook_specs().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, vec!["whatsapp".to_string()]);
        assert_eq!(
            c.ingest_settings()
                .teams
                .get(&(crate::model::Channel::WhatsApp, "shop".to_string()))
                .map(String::as_str),
            Some("support")
        );
        assert!(crate::channels::save::SaveConfig::whatsapp(&c).is_some());
        let opts = crate::worker::WorkerOptions::from_config(&c);
        assert!(
            opts.senders
                .iter()
                .any(|s| s.channel() == crate::model::Channel::WhatsApp)
        );
        // Without the web chat's listener, Meta has nowhere to call.
        let err = load_text(
            "[whatsapp]\nphone_number_id = \"1\"\ntoken_env = \"T\"\n\
             app_secret_env = \"S\"\nverify_token_env = \"V\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("whatsapp") && err.contains("[webchat]"),
            "{err}"
        );
        let err = load_text(&text.replace(
            "team = \"support\"\n[[whatsapp",
            "team = \"sales\"\n[[whatsapp",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("whatsapp.team"), "{err}");
        // The example's WhatsApp section (its ## lines) parses, with the web chat on.
        let section: String = EXAMPLE
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(section.contains("[whatsapp]"), "{section}");
        for key in [
            "phone_number_id",
            "token_command",
            "app_secret_command",
            "verify_token_command",
            "account",
            "api_url",
            "team",
        ] {
            assert!(
                section.contains(&format!("{key} = ")),
                "{key} is not documented"
            );
        }
        let c = load_text(&format!(
            "[webchat]\nenabled = true\nlisten = \"127.0.0.1:47999\"\n{section}\n"
        ))
        .unwrap();
        assert_eq!(c.whatsapp.unwrap().templates.len(), 1);
        assert_eq!(c.messenger.unwrap().page_id, "1099000001");
    }

    #[test]
    fn instagram_and_messenger_are_sources_senders_and_teams() {
        let text = "[webchat]\nenabled = true\nlisten = \"127.0.0.1:47999\"\n\
            [[teams]]\nname = \"social\"\n\
            [instagram]\npage_id = \"1784\"\ntoken_env = \"T\"\napp_secret_env = \"S\"\n\
            verify_token_env = \"V\"\nteam = \"social\"\n\
            [messenger]\npage_id = \"1099\"\naccount = \"page\"\ntoken_env = \"T\"\n\
            app_secret_env = \"S\"\nverify_token_env = \"V\"\n";
        let c = load_text(text).unwrap();
        let paths: Vec<String> = c.hook_specs().into_iter().map(|s| s.path).collect();
        assert_eq!(
            paths,
            vec!["instagram".to_string(), "messenger".to_string()]
        );
        assert_eq!(c.messenger.as_ref().unwrap().account, "page");
        assert_eq!(
            c.ingest_settings()
                .teams
                .get(&(crate::model::Channel::Instagram, "1784".to_string()))
                .map(String::as_str),
            Some("social")
        );
        let opts = crate::worker::WorkerOptions::from_config(&c);
        for ch in [
            crate::model::Channel::Instagram,
            crate::model::Channel::Messenger,
        ] {
            assert!(opts.senders.iter().any(|s| s.channel() == ch), "{ch:?}");
        }
        let err = load_text("[messenger]\npage_id = \"1\"\ntoken_env = \"T\"\napp_secret_env = \"S\"\nverify_token_env = \"V\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("messenger") && err.contains("[webchat]"),
            "{err}"
        );
        let err = load_text(&text.replace("page_id = \"1784\"", "page_id = \"ig\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("instagram.page_id"), "{err}");
    }
}
