//! How many colours the terminal shows, decided once at start from the environment
//! (`NO_COLOR`, `COLORTERM`, `TERM`). Views that carry meaning in colour (the reports view's
//! charts) draw plain text instead on a 16-colour or colourless terminal: ASCII bars, labels
//! in words, nothing that only a colour tells apart.

/// The colour depth the app draws for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorDepth {
    /// 256 colours or true colour: the theme as it is.
    #[default]
    Full,
    /// 16 colours or fewer, or `NO_COLOR` set: plain text, no colour-dependent meaning.
    Plain,
}

impl ColorDepth {
    /// From the environment's values: `NO_COLOR` (any non-empty value), `COLORTERM`
    /// (`truecolor`/`24bit`), `TERM` (`*-256color`, `*-direct`, ...). A terminal that claims
    /// neither is taken for 16 colours (the Linux console, `xterm`, `vt100`).
    pub fn detect(no_color: Option<&str>, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return ColorDepth::Plain;
        }
        let colorterm = colorterm.unwrap_or("").to_ascii_lowercase();
        if colorterm.contains("truecolor") || colorterm.contains("24bit") {
            return ColorDepth::Full;
        }
        let term = term.unwrap_or("").to_ascii_lowercase();
        if term.contains("256") || term.contains("direct") || term.contains("truecolor") {
            return ColorDepth::Full;
        }
        ColorDepth::Plain
    }

    /// This process's environment.
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok();
        ColorDepth::detect(
            var("NO_COLOR").as_deref(),
            var("COLORTERM").as_deref(),
            var("TERM").as_deref(),
        )
    }

    pub fn is_plain(self) -> bool {
        self == ColorDepth::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_16_colour_terminals_are_plain() {
        use ColorDepth::*;
        assert_eq!(
            ColorDepth::detect(Some("1"), Some("truecolor"), Some("xterm-256color")),
            Plain
        );
        assert_eq!(
            ColorDepth::detect(Some(""), None, Some("xterm-256color")),
            Full
        );
        assert_eq!(ColorDepth::detect(None, Some("24bit"), Some("xterm")), Full);
        assert_eq!(ColorDepth::detect(None, None, Some("tmux-256color")), Full);
        assert_eq!(ColorDepth::detect(None, None, Some("xterm")), Plain);
        assert_eq!(ColorDepth::detect(None, None, Some("linux")), Plain);
        assert_eq!(ColorDepth::detect(None, None, None), Plain);
    }
}
