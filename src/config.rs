//! Configuration: TOML file (`--config FILE`, `BRAID_CONFIG`, else `$XDG_CONFIG_HOME/braid/config.toml`),
//! every key optional. See `config/braid.example.toml` for every key with its default.
//!
//! OWNER NOTE: the struct shapes below are the shared interface; loading/validation live here too.

use ratatui::style::Color;
use std::path::PathBuf;

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
    /// A user keymap file merged over the shipped one.
    pub keymap_file: Option<PathBuf>,
    pub theme: Theme,
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
