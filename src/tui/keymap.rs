//! Keys -> [`Action`]s. The defaults ship in `config/keymap.toml` (embedded); a user file is merged
//! over them per mode. [`KeyResolver`] turns a stream of terminal key events into actions, with
//! key sequences (`g g`), counts (`5j`), a pending-key hint and Esc that always cancels. The help
//! screen and the status-line hints are generated from here ([`Keymap::bindings`],
//! [`Keymap::key_for`]), never typed by hand.
//!
//! Key notation (vim-like), one key per space-separated element of a sequence:
//! `j`, `G`, `?`, `<lt>` (for `<`), `<CR>`/`<Enter>`/`<Return>`, `<Esc>`, `<Tab>`,
//! `<S-Tab>`/`<BackTab>`, `<BS>`, `<Del>`, `<Ins>`, `<Space>`, `<Up>`, `<Down>`, `<Left>`,
//! `<Right>`, `<Home>`, `<End>`, `<PageUp>`, `<PageDown>`, `<F1>`..`<F24>`, modifiers `<C-x>`,
//! `<A-x>`/`<M-x>`, `<S-x>`, combined `<C-A-x>`; the brackets may be left out (`C-d`).

use std::collections::{HashMap, HashSet};
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use toml::de::{DeTable, DeValue};

use crate::tui::action::{Action, COMMANDS, Command};

/// The keymap shipped with braid.
pub const SHIPPED_KEYMAP: &str = include_str!("../../config/keymap.toml");

/// Counts are capped here so a runaway `99999999999j` cannot overflow or stall anything.
const MAX_COUNT: usize = 9_999_999;

// ---------------------------------------------------------------------------------------------
// Modes and errors

/// A keymap section. Each mode has its own bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Moving through the panes and acting on conversations.
    Normal,
    /// The reply/note composer: bound keys are commands, every other key is text.
    Compose,
    /// A full-screen list (notifications, the audit log, `:who`): movement, Enter, close and
    /// the list's own commands.
    Sheet,
    /// The reports view (`g R`): the date range, the slicing, wall clock or business hours.
    Reports,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Normal, Mode::Compose, Mode::Sheet, Mode::Reports];

    /// The section name in the keymap file.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Compose => "compose",
            Mode::Sheet => "sheet",
            Mode::Reports => "reports",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Digits 1-9 start a count in this mode ("5j").
    fn counts(self) -> bool {
        matches!(self, Mode::Normal | Mode::Sheet | Mode::Reports)
    }

    fn index(self) -> usize {
        match self {
            Mode::Normal => 0,
            Mode::Compose => 1,
            Mode::Sheet => 2,
            Mode::Reports => 3,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which file a binding (or an error) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// `config/keymap.toml`, embedded in the binary.
    Shipped,
    /// The user's keymap file, merged over the shipped one.
    User,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Shipped => "shipped keymap",
            Origin::User => "keymap file",
        })
    }
}

/// Everything that can be wrong with a keymap file (or a test key script). Each error names the
/// file, the line, the mode and the key as written, and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    #[error("{origin}, line {line}: {message}")]
    Toml {
        origin: Origin,
        line: usize,
        message: String,
    },
    #[error(
        "{origin}, line {line}: unknown section [{section}] (the sections are [normal], [compose], [sheet] and [reports])"
    )]
    UnknownSection {
        origin: Origin,
        line: usize,
        section: String,
    },
    #[error("{origin}, line {line}: [{mode}] \"{key}\": bad key notation: {reason}")]
    BadKey {
        origin: Origin,
        mode: Mode,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("{origin}, line {line}: [{mode}] \"{key}\": {reason}")]
    BadValue {
        origin: Origin,
        mode: Mode,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("{origin}, line {line}: [{mode}] \"{key}\" = \"{command}\": {reason}")]
    BadCommand {
        origin: Origin,
        mode: Mode,
        line: usize,
        key: String,
        command: String,
        reason: String,
    },
    #[error(
        "{origin}, line {line}: [{mode}] \"{key}\" is bound twice (also written \"{other}\" on line {other_line})"
    )]
    Duplicate {
        origin: Origin,
        mode: Mode,
        line: usize,
        key: String,
        other: String,
        other_line: usize,
    },
    #[error("{origin}, line {line}: [{mode}] {}", prefix_text(.key, .other, .other_origin, .other_line, .key_is_prefix))]
    Prefix {
        origin: Origin,
        mode: Mode,
        line: usize,
        key: String,
        other: String,
        other_origin: Origin,
        other_line: usize,
        /// True: `key` is a prefix of `other`; false: `other` is a prefix of `key`.
        key_is_prefix: bool,
    },
    #[error("{origin}, line {line}: [{mode}] \"{key}\" cannot be bound: {reason}")]
    Unbindable {
        origin: Origin,
        mode: Mode,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("key script {script:?}, at character {at}: {reason}")]
    Script {
        script: String,
        at: usize,
        reason: String,
    },
}

fn prefix_text(
    key: &str,
    other: &str,
    other_origin: &Origin,
    other_line: &usize,
    key_is_prefix: &bool,
) -> String {
    let relation = if *key_is_prefix {
        format!("\"{key}\" is a prefix of \"{other}\"")
    } else {
        format!("\"{key}\" starts with \"{other}\"")
    };
    format!(
        "{relation}, which is bound too ({other_origin}, line {other_line}); \
         a sequence cannot be both bound and the start of a longer one, \
         unbind one of them (e.g. \"{other}\" = \"none\")"
    )
}

impl KeymapError {
    /// The 1-based line of the file the error is on (none for key scripts).
    pub fn line(&self) -> Option<usize> {
        match self {
            KeymapError::Toml { line, .. }
            | KeymapError::UnknownSection { line, .. }
            | KeymapError::BadKey { line, .. }
            | KeymapError::BadValue { line, .. }
            | KeymapError::BadCommand { line, .. }
            | KeymapError::Duplicate { line, .. }
            | KeymapError::Prefix { line, .. }
            | KeymapError::Unbindable { line, .. } => Some(*line),
            KeymapError::Script { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// One key press, normalized so that the notation and what the terminal sends compare equal:
/// shift on a printable character is folded into the character (`G`, not shift+`g`), Ctrl with a
/// letter is case-insensitive (`<C-d>` == `<C-D>`, terminals cannot tell them apart), shift+Tab is
/// BackTab, Meta counts as Alt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    mods: KeyModifiers,
}

impl Key {
    /// A normalized key.
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mut mods = mods;
        if mods.contains(KeyModifiers::META) {
            mods.remove(KeyModifiers::META);
            mods.insert(KeyModifiers::ALT);
        }
        let code = match code {
            KeyCode::Char(c) => {
                let mut c = c;
                if mods.contains(KeyModifiers::SHIFT) {
                    mods.remove(KeyModifiers::SHIFT);
                    c = c.to_ascii_uppercase();
                }
                if mods.contains(KeyModifiers::CONTROL) {
                    c = c.to_ascii_lowercase();
                }
                KeyCode::Char(c)
            }
            KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    /// The key of a terminal event; `None` for keys that are not keys of their own (a lone
    /// modifier, Caps Lock, ...). The event's kind (press/release) is not looked at.
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        match ev.code {
            KeyCode::Modifier(_)
            | KeyCode::CapsLock
            | KeyCode::NumLock
            | KeyCode::ScrollLock
            | KeyCode::Null => None,
            code => Some(Key::new(code, ev.modifiers)),
        }
    }

    pub fn code(&self) -> KeyCode {
        self.code
    }

    pub fn modifiers(&self) -> KeyModifiers {
        self.mods
    }

    /// A key press event as a terminal sends it (uppercase letters carry SHIFT, BackTab too).
    pub fn to_event(&self) -> KeyEvent {
        let mut mods = self.mods;
        match self.code {
            KeyCode::Char(c) if c.is_uppercase() => mods.insert(KeyModifiers::SHIFT),
            KeyCode::BackTab => mods.insert(KeyModifiers::SHIFT),
            _ => {}
        }
        KeyEvent::new(self.code, mods)
    }

    /// Parse one key in notation: `j`, `<CR>`, `<C-d>`, `C-d`, `<lt>`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty key".into());
        }
        if s.chars().count() == 1 {
            return s
                .chars()
                .next()
                .map(|c| Key::new(KeyCode::Char(c), KeyModifiers::NONE))
                .ok_or_else(|| "empty key".into());
        }
        let inner = match s.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
            Some(inner) if !inner.is_empty() => inner,
            _ if s.starts_with('<') => {
                return Err(format!("'{s}' is not closed with '>'"));
            }
            _ => s,
        };
        let mut mods = KeyModifiers::NONE;
        let mut rest = inner;
        while let Some((head, tail)) = rest.split_once('-') {
            if tail.is_empty() {
                break; // "<C-->": the key is '-'
            }
            let m = match head.to_ascii_lowercase().as_str() {
                "c" | "ctrl" | "control" => KeyModifiers::CONTROL,
                "a" | "alt" | "m" | "meta" => KeyModifiers::ALT,
                "s" | "shift" => KeyModifiers::SHIFT,
                "d" | "super" => KeyModifiers::SUPER,
                "h" | "hyper" => KeyModifiers::HYPER,
                _ => {
                    return Err(format!(
                        "unknown modifier '{head}-' in '{s}' (C-, A-, M-, S-)"
                    ));
                }
            };
            mods.insert(m);
            rest = tail;
        }
        let code = if rest.chars().count() == 1 {
            match rest.chars().next() {
                Some(c) => KeyCode::Char(c),
                None => return Err("empty key".into()),
            }
        } else {
            match named_key(rest) {
                Some(code) => code,
                None if !s.starts_with('<') && mods.is_empty() => {
                    return Err(format!(
                        "unknown key '{s}' (separate the keys of a sequence with spaces: \"{}\"; \
                         write special keys in brackets: <CR>, <C-d>)",
                        spaced(s)
                    ));
                }
                None => return Err(format!("unknown key name '{rest}' in '{s}'")),
            }
        };
        Ok(Key::new(code, mods))
    }

    /// Notation form, which [`Key::parse`] reads back: `j`, `<lt>`, `<CR>`, `<C-d>`, `<S-Up>`.
    pub fn notation(&self) -> String {
        let base = match self.code {
            KeyCode::Char('<') => "lt".to_string(),
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "CR".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Backspace => "BS".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Insert => "Ins".into(),
            KeyCode::Up => "Up".into(),
            KeyCode::Down => "Down".into(),
            KeyCode::Left => "Left".into(),
            KeyCode::Right => "Right".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PageUp".into(),
            KeyCode::PageDown => "PageDown".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        let mut prefix = String::new();
        for (m, p) in [
            (KeyModifiers::CONTROL, "C-"),
            (KeyModifiers::ALT, "A-"),
            (KeyModifiers::SHIFT, "S-"),
            (KeyModifiers::SUPER, "D-"),
            (KeyModifiers::HYPER, "H-"),
        ] {
            if self.mods.contains(m) {
                prefix.push_str(p);
            }
        }
        let plain_char = matches!(self.code, KeyCode::Char(c) if c != '<' && c != ' ');
        if prefix.is_empty() && plain_char {
            base
        } else {
            format!("<{prefix}{base}>")
        }
    }

    /// Human form for help and hints: `j`, `Enter`, `Ctrl-d`, `Shift-Tab`, `Space`.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Insert => "Ins".into(),
            KeyCode::Up => "Up".into(),
            KeyCode::Down => "Down".into(),
            KeyCode::Left => "Left".into(),
            KeyCode::Right => "Right".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        let mut out = String::new();
        for (m, p) in [
            (KeyModifiers::CONTROL, "Ctrl-"),
            (KeyModifiers::ALT, "Alt-"),
            (KeyModifiers::SHIFT, "Shift-"),
            (KeyModifiers::SUPER, "Super-"),
            (KeyModifiers::HYPER, "Hyper-"),
        ] {
            if self.mods.contains(m) {
                out.push_str(p);
            }
        }
        out.push_str(&base);
        out
    }

    /// The digit of a plain digit key.
    fn digit(&self) -> Option<usize> {
        match self.code {
            KeyCode::Char(c) if self.mods.is_empty() => {
                c.to_digit(10).and_then(|d| usize::try_from(d).ok())
            }
            _ => None,
        }
    }

    fn is_plain_esc(&self) -> bool {
        self.code == KeyCode::Esc && self.mods.is_empty()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.notation())
    }
}

fn named_key(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "cr" | "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "bs" | "backspace" => KeyCode::Backspace,
        "del" | "delete" => KeyCode::Delete,
        "ins" | "insert" => KeyCode::Insert,
        "space" => KeyCode::Char(' '),
        "lt" => KeyCode::Char('<'),
        "gt" => KeyCode::Char('>'),
        "bar" => KeyCode::Char('|'),
        "bslash" => KeyCode::Char('\\'),
        "minus" => KeyCode::Char('-'),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" | "pgdown" => KeyCode::PageDown,
        _ => {
            let n: u8 = lower.strip_prefix('f')?.parse().ok()?;
            if (1..=24).contains(&n) {
                KeyCode::F(n)
            } else {
                return None;
            }
        }
    })
}

/// "gg" -> "g g", for the hint in an error message.
fn spaced(s: &str) -> String {
    s.chars()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parse a key sequence: keys separated by whitespace (`g g`, `<C-w> l`).
pub fn parse_keys(s: &str) -> Result<Vec<Key>, String> {
    let keys = s
        .split_whitespace()
        .map(Key::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("empty key sequence".into());
    }
    Ok(keys)
}

/// Human form of a sequence: `g g`, `Ctrl-d`.
pub fn keys_label(keys: &[Key]) -> String {
    keys.iter().map(Key::label).collect::<Vec<_>>().join(" ")
}

/// Notation form of a sequence: `g g`, `<C-d>`.
pub fn keys_notation(keys: &[Key]) -> String {
    keys.iter().map(Key::notation).collect::<Vec<_>>().join(" ")
}

/// Key presses for a test script: every character is one key press, `<...>` is one key in
/// notation (`"jj:assign bob<CR>"`, `"<C-d>"`, `"<lt>"`). A newline is Enter, a tab is Tab.
pub fn parse_key_script(s: &str) -> Result<Vec<KeyEvent>, KeymapError> {
    let err = |at: usize, reason: String| KeymapError::Script {
        script: s.to_string(),
        at,
        reason,
    };
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '<' => {
                let Some(len) = chars[i..].iter().position(|&c| c == '>') else {
                    return Err(err(
                        i,
                        "'<' without a closing '>' (write <lt> for '<')".into(),
                    ));
                };
                let notation: String = chars[i..=i + len].iter().collect();
                let key = Key::parse(&notation).map_err(|e| err(i, e))?;
                out.push(key.to_event());
                i += len + 1;
            }
            '\n' => {
                out.push(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
                i += 1;
            }
            '\t' => {
                out.push(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
                i += 1;
            }
            c => {
                out.push(Key::new(KeyCode::Char(c), KeyModifiers::NONE).to_event());
                i += 1;
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The keymap

#[derive(Debug, Clone)]
struct Entry {
    keys: Vec<Key>,
    /// The key as written in the file (for errors).
    written: String,
    /// The value as written (trimmed): a command line.
    command: String,
    action: Action,
    origin: Origin,
    line: usize,
}

#[derive(Debug, Clone, Default)]
struct ModeMap {
    /// In file order: shipped bindings first, then the user's new ones.
    entries: Vec<Entry>,
    exact: HashMap<Vec<Key>, usize>,
    /// Every proper prefix of a bound sequence.
    prefixes: HashSet<Vec<Key>>,
}

impl ModeMap {
    fn reindex(&mut self) {
        self.exact.clear();
        self.prefixes.clear();
        for (i, e) in self.entries.iter().enumerate() {
            self.exact.insert(e.keys.clone(), i);
            for n in 1..e.keys.len() {
                self.prefixes.insert(e.keys[..n].to_vec());
            }
        }
    }
}

/// One binding, for the help screen and hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Human form of the key sequence: `g g`, `Ctrl-d`, `Enter`.
    pub keys: String,
    /// The command line it runs: `reply`, `view mine`.
    pub command: String,
    /// The command's one-line doc from [`COMMANDS`].
    pub doc: &'static str,
}

/// What [`Keymap::lookup`] finds for a typed sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Bound(&'a Action),
    /// The start of one or more longer sequences.
    Prefix,
    Unbound,
}

/// The merged keymap: for each mode, key sequences -> actions.
#[derive(Debug, Clone)]
pub struct Keymap {
    modes: [ModeMap; 4],
}

/// One `key = "value"` line of a file, parsed.
struct Line {
    mode: Mode,
    keys: Vec<Key>,
    written: String,
    /// `None`: unbind.
    value: Option<(String, Action)>,
    line: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_file(text: &str, origin: Origin) -> Result<Vec<Line>, KeymapError> {
    let doc = DeTable::parse(text).map_err(|e| KeymapError::Toml {
        origin,
        line: e.span().map_or(1, |s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    let mut out = Vec::new();
    for (section, body) in doc.get_ref().iter() {
        let section_line = line_of(text, section.span().start);
        let Some(mode) = Mode::from_name(section.get_ref()) else {
            return Err(KeymapError::UnknownSection {
                origin,
                line: section_line,
                section: section.get_ref().to_string(),
            });
        };
        let DeValue::Table(table) = body.get_ref() else {
            return Err(KeymapError::Toml {
                origin,
                line: section_line,
                message: format!("'{mode}' must be a section: [{mode}]"),
            });
        };
        for (key, value) in table.iter() {
            let written = key.get_ref().to_string();
            let line = line_of(text, key.span().start);
            let keys = parse_keys(&written).map_err(|reason| KeymapError::BadKey {
                origin,
                mode,
                line,
                key: written.clone(),
                reason,
            })?;
            let DeValue::String(command) = value.get_ref() else {
                return Err(KeymapError::BadValue {
                    origin,
                    mode,
                    line,
                    key: written,
                    reason: format!(
                        "the value must be a command in quotes (\"reply\", \"assign bob\", or \"none\" to unbind), found: {}",
                        value.get_ref().type_str()
                    ),
                });
            };
            let command = command.trim().to_string();
            let value = if command.is_empty() || command.eq_ignore_ascii_case("none") {
                None
            } else {
                let action = Action::parse(&command)
                    .map_err(|reason| match reason.starts_with("unknown command") {
                        true => format!("{reason} (:help in braid lists the commands)"),
                        false => reason,
                    })
                    .map_err(|reason| KeymapError::BadCommand {
                        origin,
                        mode,
                        line,
                        key: written.clone(),
                        command: command.clone(),
                        reason,
                    })?;
                Some((command, action))
            };
            out.push(Line {
                mode,
                keys,
                written,
                value,
                line,
            });
        }
    }
    // The TOML map is sorted by key; bindings keep the order of the file.
    out.sort_by_key(|l| l.line);
    // The same sequence written twice (e.g. "<CR>" and "<Enter>") in one section.
    let mut seen: HashMap<(Mode, &[Key]), &Line> = HashMap::new();
    for l in &out {
        if let Some(first) = seen.insert((l.mode, &l.keys), l) {
            return Err(KeymapError::Duplicate {
                origin,
                mode: l.mode,
                line: l.line,
                key: l.written.clone(),
                other: first.written.clone(),
                other_line: first.line,
            });
        }
    }
    Ok(out)
}

impl Keymap {
    /// The shipped keymap merged with the user's file (if any).
    pub fn load(default_toml: &str, user_toml: Option<&str>) -> Result<Keymap, KeymapError> {
        let mut modes: [ModeMap; 4] = Default::default();
        let mut files = vec![(Origin::Shipped, parse_file(default_toml, Origin::Shipped)?)];
        if let Some(user) = user_toml {
            files.push((Origin::User, parse_file(user, Origin::User)?));
        }
        for (origin, lines) in files {
            for l in lines {
                let map = &mut modes[l.mode.index()];
                let at = map.entries.iter().position(|e| e.keys == l.keys);
                match (l.value, at) {
                    (None, Some(i)) => {
                        map.entries.remove(i);
                    }
                    (None, None) => {}
                    (Some((command, action)), at) => {
                        let entry = Entry {
                            keys: l.keys,
                            written: l.written,
                            command,
                            action,
                            origin,
                            line: l.line,
                        };
                        match at {
                            Some(i) => map.entries[i] = entry,
                            None => map.entries.push(entry),
                        }
                    }
                }
            }
        }
        for mode in Mode::ALL {
            let map = &mut modes[mode.index()];
            validate(mode, map)?;
            map.reindex();
        }
        Ok(Keymap { modes })
    }

    /// The shipped keymap alone.
    pub fn default_shipped() -> Result<Keymap, KeymapError> {
        Keymap::load(SHIPPED_KEYMAP, None)
    }

    /// The shipped keymap with a user file merged over it.
    pub fn with_user(user_toml: &str) -> Result<Keymap, KeymapError> {
        Keymap::load(SHIPPED_KEYMAP, Some(user_toml))
    }

    /// What a typed sequence is bound to.
    pub fn lookup(&self, mode: Mode, keys: &[Key]) -> Lookup<'_> {
        let map = &self.modes[mode.index()];
        if let Some(e) = map.exact.get(keys).and_then(|&i| map.entries.get(i)) {
            Lookup::Bound(&e.action)
        } else if map.prefixes.contains(keys) {
            Lookup::Prefix
        } else {
            Lookup::Unbound
        }
    }

    /// Every binding of a mode, in [`COMMANDS`] order (the help screen's order), keys of one
    /// command in file order.
    pub fn bindings(&self, mode: Mode) -> Vec<Binding> {
        let map = &self.modes[mode.index()];
        let mut rows: Vec<(usize, usize, Binding)> = map
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (rank, doc) = command_rank(e.action.name());
                (
                    rank,
                    i,
                    Binding {
                        keys: keys_label(&e.keys),
                        command: e.command.clone(),
                        doc,
                    },
                )
            })
            .collect();
        rows.sort_by_key(|(rank, i, _)| (*rank, *i));
        rows.into_iter().map(|(_, _, b)| b).collect()
    }

    /// The first key (human form) bound to a command, for hints: `key_for(Normal, "reply")` is
    /// `Some("r")`. A full command line (`"view mine"`) matches that binding; a bare name (or
    /// alias) prefers a binding of the bare command, else any binding of that command.
    pub fn key_for(&self, mode: Mode, command_name: &str) -> Option<String> {
        let map = &self.modes[mode.index()];
        let wanted = normalize_command(command_name);
        if let Some(e) = map
            .entries
            .iter()
            .find(|e| normalize_command(&e.command) == wanted)
        {
            return Some(keys_label(&e.keys));
        }
        let word = wanted.split(' ').next().unwrap_or_default();
        let name = Command::find(word)?.name;
        if wanted.contains(' ') {
            // A command line with an argument that no key binds exactly.
            return None;
        }
        map.entries
            .iter()
            .find(|e| e.action.name() == name)
            .map(|e| keys_label(&e.keys))
    }
}

/// Collapse whitespace and resolve an alias in the command word, so "take" finds "assign_me".
fn normalize_command(line: &str) -> String {
    let mut words = line.split_whitespace();
    let Some(word) = words.next() else {
        return String::new();
    };
    let word = Command::find(word).map_or(word, |c| c.name);
    std::iter::once(word)
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

fn command_rank(name: &str) -> (usize, &'static str) {
    COMMANDS
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == name)
        .map_or((usize::MAX, ""), |(i, c)| (i, c.doc))
}

fn validate(mode: Mode, map: &ModeMap) -> Result<(), KeymapError> {
    for e in &map.entries {
        let unbindable = |reason: &str| KeymapError::Unbindable {
            origin: e.origin,
            mode,
            line: e.line,
            key: e.written.clone(),
            reason: reason.to_string(),
        };
        if e.keys.len() > 1 && e.keys.iter().any(Key::is_plain_esc) {
            return Err(unbindable(
                "<Esc> always cancels a pending sequence, so it can only be bound on its own",
            ));
        }
        if mode.counts() && e.keys.first().and_then(Key::digit).is_some_and(|d| d != 0) {
            return Err(unbindable(
                "digits 1-9 start a count in this mode (\"5j\"); start the sequence with another key",
            ));
        }
    }
    for (i, a) in map.entries.iter().enumerate() {
        for (j, b) in map.entries.iter().enumerate() {
            if i == j || a.keys.len() >= b.keys.len() || !b.keys.starts_with(&a.keys) {
                continue;
            }
            // `a` is a prefix of `b`. Point at the user's line if one of them is theirs.
            let (first, second, key_is_prefix) =
                if a.origin == Origin::User || b.origin != Origin::User {
                    (a, b, true)
                } else {
                    (b, a, false)
                };
            return Err(KeymapError::Prefix {
                origin: first.origin,
                mode,
                line: first.line,
                key: first.written.clone(),
                other: second.written.clone(),
                other_origin: second.origin,
                other_line: second.line,
                key_is_prefix,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The pending-key state machine

/// What one key press resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A complete binding. `count` is the number typed before it ("5j" -> `Some(5)`).
    Action {
        action: Action,
        count: Option<usize>,
    },
    /// A count or the start of a sequence; show [`KeyResolver::pending`] and wait.
    Pending,
    /// Nothing is bound to this (human form of the sequence, without the count). In compose
    /// mode this is every key the composer should type.
    Unbound { keys: String },
    /// Esc: a pending sequence or count was dropped (or Esc is not bound in this mode).
    Cancelled,
    /// Not a key press (a release, a lone modifier): nothing happened.
    Ignored,
}

/// Collects key presses into counts and sequences and resolves them through a [`Keymap`].
#[derive(Debug, Clone, Default)]
pub struct KeyResolver {
    count: Option<usize>,
    keys: Vec<Key>,
    mode: Option<Mode>,
}

impl KeyResolver {
    pub fn new() -> KeyResolver {
        KeyResolver::default()
    }

    /// Feed one terminal key event.
    pub fn feed(&mut self, keymap: &Keymap, mode: Mode, key: KeyEvent) -> Resolved {
        if !matches!(key.kind, KeyEventKind::Press | KeyEventKind::Repeat) {
            return Resolved::Ignored;
        }
        let Some(key) = Key::from_event(&key) else {
            return Resolved::Ignored;
        };
        if self.mode != Some(mode) {
            // Whatever was pending belonged to another mode.
            self.reset();
            self.mode = Some(mode);
        }
        if key.is_plain_esc() {
            if self.is_pending() {
                self.reset();
                return Resolved::Cancelled;
            }
            return match keymap.lookup(mode, &[key]) {
                Lookup::Bound(action) => Resolved::Action {
                    action: action.clone(),
                    count: None,
                },
                Lookup::Prefix | Lookup::Unbound => Resolved::Cancelled,
            };
        }
        if mode.counts()
            && self.keys.is_empty()
            && let Some(d) = key.digit()
            && (d != 0 || self.count.is_some())
        {
            let n = self.count.unwrap_or(0).saturating_mul(10).saturating_add(d);
            self.count = Some(n.min(MAX_COUNT));
            return Resolved::Pending;
        }
        self.keys.push(key);
        match keymap.lookup(mode, &self.keys) {
            Lookup::Bound(action) => {
                let action = action.clone();
                let count = self.count.take();
                self.keys.clear();
                Resolved::Action { action, count }
            }
            Lookup::Prefix => Resolved::Pending,
            Lookup::Unbound => {
                let keys = keys_label(&self.keys);
                self.reset();
                Resolved::Unbound { keys }
            }
        }
    }

    /// Drop any pending count and keys.
    pub fn reset(&mut self) {
        self.count = None;
        self.keys.clear();
    }

    pub fn is_pending(&self) -> bool {
        self.count.is_some() || !self.keys.is_empty()
    }

    /// The count and keys typed so far, for the status line: `"5g"`, `"12"`, `""`.
    pub fn pending(&self) -> String {
        let mut out = self.count.map(|n| n.to_string()).unwrap_or_default();
        for k in &self.keys {
            out.push_str(&k.notation());
        }
        out
    }

    /// The keys that can follow the pending sequence and what they run (human key form,
    /// command line; `+more` for a key that leads to a longer sequence), in help order. Empty
    /// when no sequence is pending.
    pub fn continuations(&self, keymap: &Keymap, mode: Mode) -> Vec<(String, String)> {
        if self.keys.is_empty() || self.mode != Some(mode) {
            return Vec::new();
        }
        let n = self.keys.len();
        let map = &keymap.modes[mode.index()];
        let mut rows: Vec<(usize, usize, String, String)> = Vec::new();
        let mut seen_more: HashSet<Key> = HashSet::new();
        for (i, e) in map.entries.iter().enumerate() {
            if e.keys.len() <= n || !e.keys.starts_with(&self.keys) {
                continue;
            }
            let next = e.keys[n];
            if e.keys.len() == n + 1 {
                let (rank, _) = command_rank(e.action.name());
                rows.push((rank, i, next.label(), e.command.clone()));
            } else if seen_more.insert(next) {
                rows.push((usize::MAX, i, next.label(), "+more".into()));
            }
        }
        rows.sort_by_key(|(rank, i, _, _)| (*rank, *i));
        rows.into_iter().map(|(_, _, k, c)| (k, c)).collect()
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn shipped() -> Keymap {
        Keymap::default_shipped().unwrap()
    }

    fn feed_script(r: &mut KeyResolver, km: &Keymap, mode: Mode, script: &str) -> Vec<Resolved> {
        parse_key_script(script)
            .unwrap()
            .into_iter()
            .map(|ev| r.feed(km, mode, ev))
            .collect()
    }

    fn act(action: Action, count: Option<usize>) -> Resolved {
        Resolved::Action { action, count }
    }

    #[test]
    fn shipped_file_parses_and_every_value_is_a_command() {
        let km = shipped();
        let lines = parse_file(SHIPPED_KEYMAP, Origin::Shipped).unwrap();
        assert!(lines.len() > 40);
        for l in &lines {
            let (command, action) = l.value.as_ref().unwrap();
            assert_eq!(&Action::parse(command).unwrap(), action);
        }
        let normal = km.bindings(Mode::Normal);
        assert_eq!(
            normal.len(),
            lines.iter().filter(|l| l.mode == Mode::Normal).count()
        );
        // help order is COMMANDS order
        assert_eq!(normal[0].command, "move_down");
        assert_eq!(normal[0].keys, "j");
        assert_eq!(normal[0].doc, COMMANDS[0].doc);
        let ranks: Vec<usize> = normal
            .iter()
            .map(|b| command_rank(Action::parse(&b.command).unwrap().name()).0)
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
        assert!(normal.iter().all(|b| !b.doc.is_empty()));
        let compose = km.bindings(Mode::Compose);
        assert_eq!(
            compose
                .iter()
                .map(|b| (b.keys.as_str(), b.command.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("Ctrl-s", "send"),
                ("Ctrl-e", "edit_external"),
                ("Esc", "cancel"),
                ("Ctrl-x", "discard")
            ]
        );
    }

    #[test]
    fn shipped_defaults() {
        let km = shipped();
        let k = |s: &str| parse_keys(s).unwrap();
        let bound = |mode, s: &str| match km.lookup(mode, &k(s)) {
            Lookup::Bound(a) => a.clone(),
            other => panic!("{s}: {other:?}"),
        };
        let n = Mode::Normal;
        assert_eq!(bound(n, "j"), Action::MoveDown);
        assert_eq!(bound(n, "<Down>"), Action::MoveDown);
        assert_eq!(bound(n, "k"), Action::MoveUp);
        assert_eq!(bound(n, "g g"), Action::Top);
        assert_eq!(bound(n, "G"), Action::Bottom);
        assert_eq!(bound(n, "<C-d>"), Action::HalfPageDown);
        assert_eq!(bound(n, "C-u"), Action::HalfPageUp);
        assert_eq!(bound(n, "<Tab>"), Action::FocusNext);
        assert_eq!(bound(n, "<S-Tab>"), Action::FocusPrev);
        assert_eq!(bound(n, "<BackTab>"), Action::FocusPrev);
        assert_eq!(bound(n, "h"), Action::FocusLeft);
        assert_eq!(bound(n, "<Right>"), Action::FocusRight);
        assert_eq!(bound(n, "<Enter>"), Action::Open(None));
        assert_eq!(bound(n, "r"), Action::Reply);
        assert_eq!(bound(n, "R"), Action::ReplyVia(None));
        assert_eq!(bound(n, "A"), Action::AssignMe);
        assert_eq!(bound(n, "T"), Action::Untag(None));
        assert_eq!(bound(n, "g m"), Action::View(Some("mine".into())));
        assert_eq!(bound(n, "g r"), Action::View(Some("resolved".into())));
        assert_eq!(bound(n, ":"), Action::CommandLine);
        assert_eq!(bound(n, "?"), Action::Help);
        assert_eq!(bound(n, "<C-l>"), Action::Refresh);
        assert_eq!(bound(n, "q"), Action::Quit);
        assert_eq!(km.lookup(n, &k("g")), Lookup::Prefix);
        assert_eq!(km.lookup(n, &k("x")), Lookup::Unbound);
        assert_eq!(bound(Mode::Compose, "<C-s>"), Action::Send);
        assert_eq!(bound(Mode::Compose, "<C-e>"), Action::EditExternal);
        assert_eq!(bound(Mode::Compose, "<Esc>"), Action::Cancel);
        assert_eq!(km.lookup(Mode::Compose, &k("j")), Lookup::Unbound);
    }

    #[test]
    fn key_for_hints() {
        let km = shipped();
        assert_eq!(km.key_for(Mode::Normal, "reply").as_deref(), Some("r"));
        assert_eq!(km.key_for(Mode::Normal, "move_down").as_deref(), Some("j"));
        assert_eq!(km.key_for(Mode::Normal, "top").as_deref(), Some("g g"));
        assert_eq!(
            km.key_for(Mode::Normal, "half_page_down").as_deref(),
            Some("Ctrl-d")
        );
        assert_eq!(km.key_for(Mode::Normal, "open").as_deref(), Some("Enter"));
        assert_eq!(km.key_for(Mode::Normal, "view").as_deref(), Some("v"));
        assert_eq!(
            km.key_for(Mode::Normal, "view mine").as_deref(),
            Some("g m")
        );
        assert_eq!(
            km.key_for(Mode::Normal, "view  unassigned").as_deref(),
            Some("g u")
        );
        assert_eq!(km.key_for(Mode::Normal, "take").as_deref(), Some("A"));
        assert_eq!(km.key_for(Mode::Normal, "view snoozed"), None);
        assert_eq!(km.key_for(Mode::Normal, "vip"), None);
        assert_eq!(km.key_for(Mode::Normal, "frobnicate"), None);
        assert_eq!(km.key_for(Mode::Compose, "send").as_deref(), Some("Ctrl-s"));
        assert_eq!(km.key_for(Mode::Compose, "cancel").as_deref(), Some("Esc"));
        assert_eq!(km.key_for(Mode::Compose, "reply"), None);
    }

    #[test]
    fn user_override_replaces_adds_and_unbinds() {
        let user = r#"
[normal]
"r" = "reply_via email"
"x" = "resolve"
"q" = "none"
"<C-d>" = ""
"g g" = "none"
"g t" = "top"
"U" = "unassign"
"#;
        let km = Keymap::with_user(user).unwrap();
        let k = |s: &str| parse_keys(s).unwrap();
        assert_eq!(
            km.lookup(Mode::Normal, &k("r")),
            Lookup::Bound(&Action::ReplyVia(Some(crate::model::Channel::Email)))
        );
        assert_eq!(
            km.lookup(Mode::Normal, &k("x")),
            Lookup::Bound(&Action::Resolve)
        );
        assert_eq!(
            km.lookup(Mode::Normal, &k("e")),
            Lookup::Bound(&Action::Resolve)
        );
        assert_eq!(km.lookup(Mode::Normal, &k("q")), Lookup::Unbound);
        assert_eq!(km.lookup(Mode::Normal, &k("<C-d>")), Lookup::Unbound);
        assert_eq!(km.lookup(Mode::Normal, &k("g g")), Lookup::Unbound);
        assert_eq!(
            km.lookup(Mode::Normal, &k("g t")),
            Lookup::Bound(&Action::Top)
        );
        assert_eq!(
            km.lookup(Mode::Normal, &k("U")),
            Lookup::Bound(&Action::Unassign)
        );
        // the other mode is untouched
        assert_eq!(
            km.lookup(Mode::Compose, &k("<C-s>")),
            Lookup::Bound(&Action::Send)
        );
        // hints follow the user's keys
        assert_eq!(km.key_for(Mode::Normal, "quit"), None);
        assert_eq!(km.key_for(Mode::Normal, "top").as_deref(), Some("Home"));
        assert_eq!(km.key_for(Mode::Normal, "reply"), None);
        assert_eq!(km.key_for(Mode::Normal, "reply_via").as_deref(), Some("R"));
        assert_eq!(km.key_for(Mode::Normal, "via email").as_deref(), Some("r"));
        let help = km.bindings(Mode::Normal);
        assert!(
            help.iter()
                .any(|b| b.keys == "r" && b.command == "reply_via email")
        );
        assert!(!help.iter().any(|b| b.command == "quit"));
        // compose override
        let km = Keymap::with_user("[compose]\n\"<C-Enter>\" = \"send\"\n\"<C-s>\" = \"none\"\n")
            .unwrap();
        assert_eq!(
            km.key_for(Mode::Compose, "send").as_deref(),
            Some("Ctrl-Enter")
        );
        // an empty user file changes nothing
        assert_eq!(
            Keymap::with_user("").unwrap().bindings(Mode::Normal),
            shipped().bindings(Mode::Normal)
        );
    }

    #[test]
    fn errors_carry_lines_and_keys() {
        let e =
            Keymap::with_user("[normal]\nj = \"move_down\"\n\"<C-foo>\" = \"top\"\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(matches!(
            e,
            KeymapError::BadKey {
                mode: Mode::Normal,
                origin: Origin::User,
                ..
            }
        ));
        let msg = e.to_string();
        assert!(
            msg.contains("line 3") && msg.contains("<C-foo>") && msg.contains("[normal]"),
            "{msg}"
        );

        let e = Keymap::with_user("\n[normal]\nx = \"frobnicate\"\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        let msg = e.to_string();
        assert!(
            msg.contains("unknown command 'frobnicate'") && msg.contains("\"x\""),
            "{msg}"
        );
        // A file has no Tab: the hint names where the commands are listed.
        assert!(!msg.contains("Tab completes"), "{msg}");
        assert!(msg.contains(":help"), "{msg}");

        let e = Keymap::with_user("[normal]\nx = \"resolve now\"\n").unwrap_err();
        assert!(e.to_string().contains("takes no argument"), "{e}");

        let e = Keymap::with_user("[normal]\n\n[insert]\nx = \"quit\"\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("unknown section [insert]"), "{e}");

        let e = Keymap::with_user("[normal]\nx = 5\n").unwrap_err();
        assert!(matches!(e, KeymapError::BadValue { line: 2, .. }), "{e}");

        let e = Keymap::with_user("[normal]\nx = \"quit\n").unwrap_err();
        assert!(matches!(e, KeymapError::Toml { line: 2, .. }), "{e}");

        let e = Keymap::with_user("[normal]\ngg = \"top\"\n").unwrap_err();
        assert!(e.to_string().contains("\"g g\""), "{e}");

        // a bound key that is the start of a bound sequence
        let e = Keymap::with_user("[normal]\n\n\"g\" = \"top\"\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(
            matches!(
                e,
                KeymapError::Prefix {
                    origin: Origin::User,
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("\"g\" is a prefix of \"g "), "{msg}");
        assert!(msg.contains("shipped keymap, line"), "{msg}");
        let e = Keymap::with_user("[normal]\n\"q q\" = \"quit\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("\"q q\" starts with \"q\", which is bound too (shipped keymap, line"),
            "{e}"
        );
        assert_eq!(e.line(), Some(2));

        let e = Keymap::with_user("[normal]\n\"<CR>\" = \"open\"\n\"<Enter>\" = \"open\"\n")
            .unwrap_err();
        assert!(
            matches!(
                e,
                KeymapError::Duplicate {
                    line: 3,
                    other_line: 2,
                    ..
                }
            ),
            "{e}"
        );

        let e = Keymap::with_user("[normal]\n\"5\" = \"top\"\n").unwrap_err();
        assert!(matches!(e, KeymapError::Unbindable { line: 2, .. }), "{e}");
        let e = Keymap::with_user("[compose]\n\"<Esc> x\" = \"send\"\n").unwrap_err();
        assert!(
            matches!(
                e,
                KeymapError::Unbindable {
                    line: 2,
                    mode: Mode::Compose,
                    ..
                }
            ),
            "{e}"
        );
        // "0" and digits after a first key are fine
        Keymap::with_user("[normal]\n\"0\" = \"top\"\n\"z 1\" = \"view open\"\n\"z\" = \"none\"\n")
            .unwrap();
    }

    #[test]
    fn notation() {
        let k = |s: &str| Key::parse(s).unwrap();
        let n = KeyModifiers::NONE;
        assert_eq!(k("j"), Key::new(KeyCode::Char('j'), n));
        assert_eq!(k("<lt>"), Key::new(KeyCode::Char('<'), n));
        assert_eq!(k("<"), Key::new(KeyCode::Char('<'), n));
        assert_eq!(k("<CR>"), k("<Enter>"));
        assert_eq!(k("<Return>"), Key::new(KeyCode::Enter, n));
        assert_eq!(k("<S-Tab>"), k("<BackTab>"));
        assert_eq!(k("<Space>"), Key::new(KeyCode::Char(' '), n));
        assert_eq!(k("<F12>"), Key::new(KeyCode::F(12), n));
        assert_eq!(
            k("<C-d>"),
            Key::new(KeyCode::Char('d'), KeyModifiers::CONTROL)
        );
        assert_eq!(k("C-d"), k("<C-d>"));
        assert_eq!(k("<C-D>"), k("<c-d>"));
        assert_eq!(k("<M-x>"), k("<A-x>"));
        assert_eq!(
            k("<C-A-x>"),
            Key::new(
                KeyCode::Char('x'),
                KeyModifiers::CONTROL | KeyModifiers::ALT
            )
        );
        assert_eq!(k("<S-g>"), k("G"));
        assert_eq!(
            k("<C-->"),
            Key::new(KeyCode::Char('-'), KeyModifiers::CONTROL)
        );
        assert_eq!(k("<S-Up>"), Key::new(KeyCode::Up, KeyModifiers::SHIFT));
        assert!(Key::parse("<C-foo>").is_err());
        assert!(Key::parse("<X-d>").is_err());
        assert!(Key::parse("<C-d").is_err());
        assert!(Key::parse("<F25>").is_err());
        assert!(Key::parse("").is_err());
        // notation round-trips; labels are for humans
        for s in [
            "j",
            "G",
            "<lt>",
            "<CR>",
            "<Esc>",
            "<S-Tab>",
            "<C-d>",
            "<C-A-x>",
            "<Space>",
            "<F5>",
            "<S-Up>",
            "<PageDown>",
        ] {
            assert_eq!(k(s).notation(), s);
            assert_eq!(k(&k(s).notation()), k(s));
        }
        assert_eq!(keys_label(&parse_keys("g g").unwrap()), "g g");
        assert_eq!(k("<C-d>").label(), "Ctrl-d");
        assert_eq!(k("<S-Tab>").label(), "Shift-Tab");
        assert_eq!(k("<CR>").label(), "Enter");
        assert_eq!(
            keys_notation(&parse_keys(" g   <C-w> ").unwrap()),
            "g <C-w>"
        );
    }

    #[test]
    fn sequences_and_counts() {
        let km = shipped();
        let mut r = KeyResolver::new();
        let n = Mode::Normal;
        assert_eq!(
            feed_script(&mut r, &km, n, "gg"),
            vec![Resolved::Pending, act(Action::Top, None)]
        );
        assert_eq!(r.pending(), "");
        assert_eq!(
            feed_script(&mut r, &km, n, "5j"),
            vec![Resolved::Pending, act(Action::MoveDown, Some(5))]
        );
        assert_eq!(
            feed_script(&mut r, &km, n, "10G"),
            vec![
                Resolved::Pending,
                Resolved::Pending,
                act(Action::Bottom, Some(10))
            ]
        );
        // a count is not sticky
        assert_eq!(
            feed_script(&mut r, &km, n, "j"),
            vec![act(Action::MoveDown, None)]
        );
        // a count before a sequence
        assert_eq!(
            feed_script(&mut r, &km, n, "3g"),
            vec![Resolved::Pending, Resolved::Pending]
        );
        assert_eq!(r.pending(), "3g");
        assert_eq!(
            feed_script(&mut r, &km, n, "g"),
            vec![act(Action::Top, Some(3))]
        );
        // '0' only continues a count; alone it is a key (unbound here)
        assert_eq!(
            feed_script(&mut r, &km, n, "0"),
            vec![Resolved::Unbound { keys: "0".into() }]
        );
        // a huge count is capped, not overflowed
        let mut out = feed_script(&mut r, &km, n, "999999999999999999999999j");
        assert_eq!(out.pop(), Some(act(Action::MoveDown, Some(MAX_COUNT))));
        // digits in compose mode are not counts
        assert_eq!(
            feed_script(&mut r, &km, Mode::Compose, "5"),
            vec![Resolved::Unbound { keys: "5".into() }]
        );
        // special keys and commands with arguments
        assert_eq!(
            feed_script(&mut r, &km, n, "<C-d>gm<S-Tab>"),
            vec![
                act(Action::HalfPageDown, None),
                Resolved::Pending,
                act(Action::View(Some("mine".into())), None),
                act(Action::FocusPrev, None),
            ]
        );
    }

    #[test]
    fn esc_cancels_and_unbound_keys() {
        let km = shipped();
        let mut r = KeyResolver::new();
        let n = Mode::Normal;
        assert_eq!(
            feed_script(&mut r, &km, n, "12g<Esc>"),
            vec![
                Resolved::Pending,
                Resolved::Pending,
                Resolved::Pending,
                Resolved::Cancelled
            ]
        );
        assert_eq!(r.pending(), "");
        assert_eq!(
            feed_script(&mut r, &km, n, "5<Esc>j"),
            vec![
                Resolved::Pending,
                Resolved::Cancelled,
                act(Action::MoveDown, None)
            ]
        );
        // Esc with nothing pending and not bound in normal mode: still just "cancelled"
        assert_eq!(
            feed_script(&mut r, &km, n, "<Esc>"),
            vec![Resolved::Cancelled]
        );
        // in compose mode Esc is the keymap's cancel
        assert_eq!(
            feed_script(&mut r, &km, Mode::Compose, "<Esc>"),
            vec![act(Action::Cancel, None)]
        );
        // unbound: the whole typed sequence, then a fresh start
        assert_eq!(
            feed_script(&mut r, &km, n, "x"),
            vec![Resolved::Unbound { keys: "x".into() }]
        );
        assert_eq!(
            feed_script(&mut r, &km, n, "5gx"),
            vec![
                Resolved::Pending,
                Resolved::Pending,
                Resolved::Unbound { keys: "g x".into() }
            ]
        );
        assert_eq!(r.pending(), "");
        assert_eq!(
            feed_script(&mut r, &km, n, "<C-x>"),
            vec![Resolved::Unbound {
                keys: "Ctrl-x".into()
            }]
        );
        assert_eq!(
            feed_script(&mut r, &km, n, "j"),
            vec![act(Action::MoveDown, None)]
        );
        // a mode switch drops what was pending
        assert_eq!(feed_script(&mut r, &km, n, "g"), vec![Resolved::Pending]);
        assert_eq!(
            feed_script(&mut r, &km, Mode::Compose, "g"),
            vec![Resolved::Unbound { keys: "g".into() }]
        );
        assert_eq!(feed_script(&mut r, &km, n, "g"), vec![Resolved::Pending]);
    }

    #[test]
    fn shifted_keys_and_releases() {
        let km = shipped();
        let mut r = KeyResolver::new();
        let n = Mode::Normal;
        let shift = KeyModifiers::SHIFT;
        // 'G' as terminals send it, with and without SHIFT, and as shift+'g' (kitty protocol)
        for ev in [
            KeyEvent::new(KeyCode::Char('G'), shift),
            KeyEvent::new(KeyCode::Char('G'), KeyModifiers::NONE),
            KeyEvent::new(KeyCode::Char('g'), shift),
        ] {
            assert_eq!(r.feed(&km, n, ev), act(Action::Bottom, None));
        }
        // '?' arrives with SHIFT on some terminals
        assert_eq!(
            r.feed(&km, n, KeyEvent::new(KeyCode::Char('?'), shift)),
            act(Action::Help, None)
        );
        // shift+Tab: BackTab with SHIFT, or Tab with SHIFT
        assert_eq!(
            r.feed(&km, n, KeyEvent::new(KeyCode::BackTab, shift)),
            act(Action::FocusPrev, None)
        );
        assert_eq!(
            r.feed(&km, n, KeyEvent::new(KeyCode::Tab, shift)),
            act(Action::FocusPrev, None)
        );
        // ctrl with a shifted letter is the same ctrl key
        assert_eq!(
            r.feed(
                &km,
                n,
                KeyEvent::new(KeyCode::Char('D'), KeyModifiers::CONTROL | shift)
            ),
            act(Action::HalfPageDown, None)
        );
        // releases and lone modifiers do nothing, and do not disturb a pending sequence
        let g = KeyEvent::new(KeyCode::Char('g'), KeyModifiers::NONE);
        assert_eq!(r.feed(&km, n, g), Resolved::Pending);
        let release = KeyEvent::new_with_kind(
            KeyCode::Char('g'),
            KeyModifiers::NONE,
            KeyEventKind::Release,
        );
        assert_eq!(r.feed(&km, n, release), Resolved::Ignored);
        let lone = KeyEvent::new(
            KeyCode::Modifier(crossterm::event::ModifierKeyCode::LeftShift),
            shift,
        );
        assert_eq!(r.feed(&km, n, lone), Resolved::Ignored);
        assert_eq!(r.pending(), "g");
        let repeat =
            KeyEvent::new_with_kind(KeyCode::Char('g'), KeyModifiers::NONE, KeyEventKind::Repeat);
        assert_eq!(r.feed(&km, n, repeat), act(Action::Top, None));
    }

    #[test]
    fn continuations_for_the_hint() {
        let km = shipped();
        let mut r = KeyResolver::new();
        assert!(r.continuations(&km, Mode::Normal).is_empty());
        feed_script(&mut r, &km, Mode::Normal, "2g");
        assert_eq!(r.pending(), "2g");
        let next = r.continuations(&km, Mode::Normal);
        assert_eq!(next[0], ("g".to_string(), "top".to_string()));
        assert!(next.contains(&("m".to_string(), "view mine".to_string())));
        assert!(next.contains(&("r".to_string(), "view resolved".to_string())));
        assert!(next.contains(&("n".to_string(), "notifications".to_string())));
        assert!(next.contains(&("t".to_string(), "tasks".to_string())));
        assert!(next.contains(&("R".to_string(), "reports".to_string())));
        assert!(next.contains(&("D".to_string(), "duplicates".to_string())));
        assert!(next.contains(&("p".to_string(), "pipeline".to_string())));
        assert_eq!(next.len(), 11);
        // deeper sequences show as "+more"
        let km =
            Keymap::with_user("[normal]\n\"<Space> f f\" = \"search\"\n\"<Space> q\" = \"quit\"\n")
                .unwrap();
        let mut r = KeyResolver::new();
        assert_eq!(
            feed_script(&mut r, &km, Mode::Normal, " "),
            vec![Resolved::Pending]
        );
        assert_eq!(r.pending(), "<Space>");
        assert_eq!(
            r.continuations(&km, Mode::Normal),
            vec![
                ("q".to_string(), "quit".to_string()),
                ("f".to_string(), "+more".to_string())
            ]
        );
        assert_eq!(
            feed_script(&mut r, &km, Mode::Normal, "ff"),
            vec![Resolved::Pending, act(Action::Search(None), None)]
        );
    }

    #[test]
    fn key_scripts() {
        let evs = parse_key_script("jj:assign bob<CR>").unwrap();
        assert_eq!(evs.len(), 2 + 1 + 10 + 1);
        assert!(evs.iter().all(|e| e.kind == KeyEventKind::Press));
        assert_eq!(evs[0].code, KeyCode::Char('j'));
        assert_eq!(evs[2].code, KeyCode::Char(':'));
        assert_eq!(evs[9].code, KeyCode::Char(' '));
        assert_eq!(evs[13].code, KeyCode::Enter);
        let evs = parse_key_script("<C-d><Esc><lt>G").unwrap();
        assert_eq!(
            evs[0],
            KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)
        );
        assert_eq!(evs[1].code, KeyCode::Esc);
        assert_eq!(evs[2].code, KeyCode::Char('<'));
        assert_eq!(
            evs[3],
            KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)
        );
        assert!(parse_key_script("").unwrap().is_empty());
        let e = parse_key_script("ab<C-d").unwrap_err();
        assert!(matches!(e, KeymapError::Script { at: 2, .. }), "{e}");
        assert!(parse_key_script("<Nope>").is_err());
        // the whole scenario through the real keymap
        let km = shipped();
        let mut r = KeyResolver::new();
        let out = feed_script(&mut r, &km, Mode::Normal, "jj:");
        assert_eq!(
            out,
            vec![
                act(Action::MoveDown, None),
                act(Action::MoveDown, None),
                act(Action::CommandLine, None)
            ]
        );
    }
}
