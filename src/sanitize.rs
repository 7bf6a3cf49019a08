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

/// Sanitize multi-line text (message bodies). Newlines and tabs survive.
pub fn text(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
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
}
