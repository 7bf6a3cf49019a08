//! Untrusted text -> text that is safe to put on a terminal.
//!
//! Applied once, at ingest, to every field that came from outside (names, subjects, bodies,
//! file names). What is removed:
//! - whole escape sequences: CSI (`ESC [` / U+009B), OSC (`ESC ]` / U+009D), DCS, SOS, PM, APC
//!   (`ESC P`, `ESC X`, `ESC ^`, `ESC _` and their C1 forms) up to and including their terminator,
//!   and two/three-byte `ESC x` sequences;
//! - every other C0 and C1 control and DEL, except newline and tab (CR LF and a lone CR become LF);
//! - bidi embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069), which can make text
//!   display in an order other than the one it is stored in.
//!
//! U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR become newlines (a terminal would draw them
//! as nothing, or as a line break the layout did not count).
//!
//! The second wall is [`for_terminal`]: applied to text from outside when it is printed by the CLI
//! or drawn by the TUI (server answers, error descriptions, file names, names and subjects, log
//! lines). It removes nothing: every control character is written as a visible escape (`\u{1b}`),
//! so the terminal receives no control byte and the reader still sees what the sender tried to
//! hide.

use std::borrow::Cow;

/// Sanitize multi-line text (message bodies). Newlines and tabs survive.
pub fn text(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{2028}' | '\u{2029}' => out.push('\n'),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{1b}' => skip_escape(&mut chars),
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Sanitize a one-line field (names, subjects): like [`text`], then every run of whitespace
/// (newlines and tabs included) becomes one space, and the ends are trimmed.
pub fn line(input: &str) -> String {
    let clean = text(input);
    let mut out = String::with_capacity(clean.len());
    for word in clean.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Sanitize a file name from a message: one line, no path separators, never empty or a dot name.
pub fn file_name(input: &str) -> String {
    let l = line(input).replace(['/', '\\'], "_");
    let trimmed = l.trim_matches('.').trim();
    if trimmed.is_empty() {
        "attachment".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Text from outside, made safe to print or draw: nothing is removed, every control character
/// (C0 but newline and tab, DEL, C1) and every bidi embedding/override/isolate is written as a
/// visible escape `\u{..}`; CR LF, a lone CR, U+2028 and U+2029 become a newline. Text that needs no
/// change is returned borrowed.
pub fn for_terminal(input: &str) -> Cow<'_, str> {
    escape(input, false)
}

/// [`for_terminal`] for one line (a status line, a table cell, a title): newlines and tabs become
/// spaces as well.
pub fn for_terminal_line(input: &str) -> Cow<'_, str> {
    escape(input, true)
}

fn escape(input: &str, one_line: bool) -> Cow<'_, str> {
    let needs = |c: char| match c {
        '\n' | '\t' => one_line,
        '\u{2028}' | '\u{2029}' => true,
        c => is_forbidden(c) || (one_line && c.is_whitespace() && c != ' '),
    };
    if !input.chars().any(needs) {
        return Cow::Borrowed(input);
    }
    let brk = if one_line { ' ' } else { '\n' };
    let mut out = String::with_capacity(input.len() + 16);
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\u{2028}' | '\u{2029}' => out.push(brk),
            '\t' if one_line => out.push(' '),
            '\t' => out.push('\t'),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push(brk);
                }
            }
            c if is_forbidden(c) => out.extend(c.escape_unicode()),
            c if one_line && c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_forbidden(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After ESC: decide which sequence this is and skip it whole.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.peek().copied() {
        Some('[') => {
            chars.next();
            skip_csi(chars);
        }
        Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
            chars.next();
            skip_string(chars);
        }
        Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
            // nF escape: intermediates then one final byte.
            while let Some(&c) = chars.peek() {
                chars.next();
                if !('\u{20}'..='\u{2f}').contains(&c) {
                    break;
                }
            }
        }
        Some(c) if ('\u{30}'..='\u{7e}').contains(&c) => {
            chars.next();
        }
        _ => {}
    }
}

/// CSI: parameter and intermediate bytes, then one final byte in 0x40..=0x7E.
/// A character outside the CSI grammar ends the sequence without being swallowed.
fn skip_csi(chars: &mut Chars<'_>) {
    while let Some(&c) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&c) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

/// OSC/DCS/SOS/PM/APC: everything up to BEL, ESC \ or U+009C (ST). An unterminated string
/// swallows the rest of the line only, so a hostile sender cannot hide a whole message.
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(&c) = chars.peek() {
        match c {
            '\u{7}' | '\u{9c}' => {
                chars.next();
                return;
            }
            '\u{1b}' => {
                chars.next();
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            '\n' => return,
            _ => {
                chars.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ordinary_text_newlines_and_tabs() {
        assert_eq!(
            text("Hello,\n\tworld — ünïcödé 日本 🎉"),
            "Hello,\n\tworld — ünïcödé 日本 🎉"
        );
    }

    #[test]
    fn strips_csi_colours_and_cursor_moves() {
        assert_eq!(text("\x1b[31mred\x1b[0m \x1b[2J\x1b[Hhome"), "red home");
        assert_eq!(text("a\x1b[38;2;255;0;0mb"), "ab");
        assert_eq!(text("x\u{9b}31my"), "xy");
    }

    #[test]
    fn strips_osc_titles_and_hyperlinks_whole() {
        assert_eq!(text("\x1b]0;pwned\x07after"), "after");
        assert_eq!(
            text("\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"),
            "click"
        );
        assert_eq!(text("\u{9d}0;title\u{9c}ok"), "ok");
    }

    #[test]
    fn strips_dcs_apc_pm_sos() {
        assert_eq!(text("a\x1bPq#0;2;0;0;0\x1b\\b"), "ab");
        assert_eq!(text("a\x1b_Gf=100;AAAA\x1b\\b"), "ab");
        assert_eq!(text("a\x1b^privacy\x1b\\b"), "ab");
        assert_eq!(text("a\x1bXsos\x07b"), "ab");
    }

    #[test]
    fn unterminated_string_does_not_eat_following_lines() {
        assert_eq!(text("a\x1b]0;never ends\nsecond line"), "a\nsecond line");
    }

    #[test]
    fn strips_controls_but_normalizes_carriage_returns() {
        assert_eq!(text("a\x00b\x07c\x08d\x7fe\u{85}f"), "abcdef");
        assert_eq!(text("one\r\ntwo\rthree"), "one\ntwo\nthree");
        assert_eq!(text("bell\x07"), "bell");
    }

    #[test]
    fn strips_bidi_overrides_and_isolates() {
        // "Trojan source" style: an RLO makes "txt.exe" display as "exe.txt".
        assert_eq!(text("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}',
        ] {
            assert_eq!(text(&format!("a{c}b")), "ab");
        }
        // Ordinary right-to-left text is not touched.
        assert_eq!(text("שלום مرحبا"), "שלום مرحبا");
    }

    #[test]
    fn other_escapes_and_lone_esc() {
        assert_eq!(text("a\x1b(Bb"), "ab");
        assert_eq!(text("a\x1bcb"), "ab"); // RIS: full reset
        assert_eq!(text("a\x1b"), "a");
    }

    #[test]
    fn line_collapses_whitespace() {
        assert_eq!(
            line("  Re:\tyour\norder \x1b[1m#42\x1b[0m  "),
            "Re: your order #42"
        );
    }

    #[test]
    fn file_names_have_no_paths() {
        assert_eq!(file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_name("\x1b[31m"), "attachment");
        assert_eq!(file_name("report\u{202e}fdp.exe"), "reportfdp.exe");
    }

    #[test]
    fn output_never_contains_controls_for_arbitrary_bytes() {
        // A cheap exhaustive-ish check: every pair of chars from a hostile alphabet.
        let alphabet = [
            '\x1b', '[', ']', 'P', '\x07', '\\', '\u{9b}', '\u{9d}', '\u{9c}', 'a', '\r', '\n',
            '\u{202e}', '1', 'm', ';',
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let s: String = [a, b, c, 'z'].iter().collect();
                    let out = text(&s);
                    assert!(
                        out.chars()
                            .all(|c| c == '\n' || c == '\t' || !is_forbidden(c)),
                        "{s:?} -> {out:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn escape_guards_keep_what_follows_a_broken_sequence() {
        // A lone ESC before a newline is dropped, the newline stays.
        assert_eq!(text("a\x1b\nb"), "a\nb");
        // ESC ESC [31m: the first ESC introduces nothing, the second a whole CSI.
        assert_eq!(text("\x1b\x1b[31m"), "");
        assert_eq!(text("a\x1b\x1b[31mb"), "ab");
        // A lone ESC before a character outside every escape grammar keeps that character.
        assert_eq!(text("a\x1bé"), "aé");
        assert_eq!(text("a\x1b\x7fb"), "ab");
        assert_eq!(text("a\x1b\tb"), "a\tb");
    }

    #[test]
    fn nf_escapes_end_at_their_first_final_byte() {
        // Intermediates are 0x20..=0x2F, then one final byte.
        assert_eq!(text("a\x1b Fb"), "ab"); // 0x20 is an intermediate
        assert_eq!(text("a\x1b/Ab"), "ab"); // 0x2F too
        assert_eq!(text("a\x1b(0b"), "ab");
        assert_eq!(text("a\x1b$)Bb"), "ab"); // two intermediates
        assert_eq!(text("a\x1b("), "a"); // cut off at the end
        // Fp/Fe/Fs: one byte in 0x30..=0x7E.
        assert_eq!(text("a\x1b0b"), "ab");
        assert_eq!(text("a\x1b=b"), "ab");
        assert_eq!(text("a\x1b~b"), "ab");
        assert_eq!(text("a\x1bMb"), "ab");
    }

    #[test]
    fn csi_parameters_intermediates_and_finals() {
        assert_eq!(text("a\x1b[?25lb"), "ab");
        assert_eq!(text("a\x1b[ @b"), "ab"); // 0x20 intermediate, 0x40 final
        assert_eq!(text("a\x1b[1;2?~b"), "ab"); // 0x3F parameter, 0x7E final
        assert_eq!(text("a\x1b[@b"), "ab");
        // A character outside the grammar ends the CSI and is kept (if it is printable).
        assert_eq!(text("a\x1b[1éb"), "aéb");
        assert_eq!(text("a\x1b[12\nb"), "a\nb");
        assert_eq!(text("a\x1b[1\x7fb"), "ab");
        assert_eq!(text("a\x1b[1;2"), "a");
        assert_eq!(text("\u{9b}2Jx"), "x");
    }

    #[test]
    fn strings_end_at_each_terminator_only() {
        assert_eq!(text("a\x1b]0;t\x07b"), "ab");
        assert_eq!(text("a\x1b]0;t\u{9c}b"), "ab");
        assert_eq!(text("a\x1b]0;t\x1b\\b"), "ab");
        // ESC that is not ESC \ still ends the string; what follows stays.
        assert_eq!(text("a\x1b]0;t\x1bqb"), "aqb");
        // CR is not a terminator: it is swallowed with the string.
        assert_eq!(text("a\x1b]0;t\rx\x07b"), "ab");
        assert_eq!(text("a\x1b]0;t"), "a");
        for start in ['\u{90}', '\u{98}', '\u{9d}', '\u{9e}', '\u{9f}'] {
            assert_eq!(text(&format!("a{start}hidden\x07b")), "ab", "{start:?}");
        }
        for start in ['P', 'X', '^', '_', ']'] {
            assert_eq!(text(&format!("a\x1b{start}hidden\x07b")), "ab", "{start:?}");
        }
    }

    #[test]
    fn carriage_returns_and_line_separators() {
        assert_eq!(text("a\r"), "a\n");
        assert_eq!(text("a\r\r\nb"), "a\n\nb");
        assert_eq!(text("a\u{2028}b\u{2029}c"), "a\nb\nc");
        assert_eq!(line("a\u{2028}b"), "a b");
    }

    #[test]
    fn forbidden_ranges_end_where_they_should() {
        for c in [
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{7f}', '\u{80}', '\u{9f}', '\u{0}',
            '\u{1f}',
        ] {
            assert!(is_forbidden(c), "{c:?}");
        }
        for c in [
            '\u{2029}', '\u{202f}', '\u{2065}', '\u{206a}', ' ', '~', '\u{a0}', 'é',
        ] {
            assert!(!is_forbidden(c), "{c:?}");
        }
    }

    #[test]
    fn file_name_edges() {
        assert_eq!(file_name("..."), "attachment");
        assert_eq!(file_name(" . "), "attachment");
        assert_eq!(file_name(".hidden."), "hidden");
        assert_eq!(file_name("a\\b"), "a_b");
        assert_eq!(file_name("ok.pdf"), "ok.pdf");
    }

    #[test]
    fn for_terminal_shows_controls_instead_of_sending_them() {
        let hostile = "\x1b]0;PWNED\x07\x1b]52;c;aGk=\x07\x1b[2Jreason";
        let out = for_terminal(hostile);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert_eq!(
            out,
            "\\u{1b}]0;PWNED\\u{7}\\u{1b}]52;c;aGk=\\u{7}\\u{1b}[2Jreason"
        );
        assert_eq!(for_terminal("x\u{9b}2J"), "x\\u{9b}2J");
        assert_eq!(for_terminal("a\x7fb"), "a\\u{7f}b");
        assert_eq!(for_terminal("a\x00b"), "a\\u{0}b");
        assert_eq!(for_terminal("txt\u{202e}exe"), "txt\\u{202e}exe");
        assert_eq!(for_terminal("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
    }

    #[test]
    fn for_terminal_keeps_lines_and_tabs_and_borrows_clean_text() {
        assert!(matches!(
            for_terminal("plain ünï 日本\n\tx"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            for_terminal_line("plain ünï 日本 x"),
            Cow::Borrowed(_)
        ));
        assert_eq!(for_terminal("a\nb\tc"), "a\nb\tc");
        assert_eq!(for_terminal("a\r\nb\rc"), "a\nb\nc");
        assert_eq!(for_terminal("a\u{2028}b\u{2029}c"), "a\nb\nc");
        assert_eq!(for_terminal("a\r"), "a\n");
        assert_eq!(for_terminal("a\u{202f}b"), "a\u{202f}b");
        // A tab survives the rewriting path too (something else in the text needs escaping).
        assert_eq!(for_terminal("a\tb\x07"), "a\tb\\u{7}");
    }

    #[test]
    fn for_terminal_line_is_one_line() {
        assert_eq!(for_terminal_line("a\nb\tc\r\nd\re"), "a b c d e");
        assert_eq!(for_terminal_line("a\u{2028}b\u{2029}c"), "a b c");
        assert_eq!(for_terminal_line("a\u{85}b"), "a\\u{85}b");
        assert_eq!(for_terminal_line("a\u{a0}b\u{3000}c"), "a b c");
        assert_eq!(for_terminal_line("bot\x1b[31m"), "bot\\u{1b}[31m");
        assert!(matches!(for_terminal_line("a\nb"), Cow::Owned(_)));
    }

    #[test]
    fn for_terminal_never_emits_a_control_for_arbitrary_input() {
        let alphabet = [
            '\x1b', '[', ']', '\x07', '\u{9b}', '\u{9c}', 'a', '\r', '\n', '\t', '\u{202e}',
            '\u{2028}', '\x7f', '\x00',
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let s: String = [a, b, c].iter().collect();
                    let multi = for_terminal(&s);
                    assert!(
                        multi
                            .chars()
                            .all(|c| c == '\n' || c == '\t' || !is_forbidden(c)),
                        "{s:?} -> {multi:?}"
                    );
                    assert!(!multi.contains(['\u{2028}', '\u{2029}']), "{s:?}");
                    let one = for_terminal_line(&s);
                    assert!(
                        one.chars()
                            .all(|c| !is_forbidden(c) && !matches!(c, '\u{2028}' | '\u{2029}')),
                        "{s:?} -> {one:?}"
                    );
                }
            }
        }
    }
}
