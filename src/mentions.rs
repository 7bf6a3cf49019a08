//! `@name` mentions in an internal note: one rule for the server (which notifies the mentioned
//! agents) and the composer (which completes names and flags unknown ones before sending).
//!
//! A mention is `@` at the start of the text or after a character that cannot be part of a
//! word or an address (so `ann@example.com` mentions nobody), followed by a name: letters,
//! digits, `_`, `-` and `.`, without a trailing `.` or `-` (`@bob.` at the end of a sentence
//! is bob). Names compare case-insensitively.

/// Characters of a name after the `@`.
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Every `@name` written in `text`, in order, as written (without the `@`), with the byte
/// range of the whole mention (the `@` included).
pub fn written(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let at_boundary = prev.is_none_or(|p| !(p.is_alphanumeric() || matches!(p, '_' | '@')));
        prev = Some(c);
        if c != '@' || !at_boundary {
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while let Some(&(j, d)) = iter.peek() {
            if !name_char(d) {
                break;
            }
            end = j + d.len_utf8();
            prev = Some(d);
            iter.next();
        }
        let name = text[start..end].trim_end_matches(['.', '-']);
        if !name.is_empty() {
            out.push((name.to_string(), i..start + name.len()));
        }
    }
    out
}

/// The agents of `agents` that `text` mentions (their names as the workspace spells them),
/// each once, in the order first mentioned.
pub fn mentioned<'a>(text: &str, agents: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&'a str> = Vec::new();
    for (name, _) in written(text) {
        if let Some(a) = agents.iter().find(|a| a.eq_ignore_ascii_case(&name))
            && !out.contains(&a.as_str())
        {
            out.push(a);
        }
    }
    out
}

/// The names `text` mentions that are no agent of `agents`, each once.
pub fn unknown(text: &str, agents: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in written(text) {
        if !agents.iter().any(|a| a.eq_ignore_ascii_case(&name))
            && !out.iter().any(|o| o.eq_ignore_ascii_case(&name))
        {
            out.push(name);
        }
    }
    out
}

/// The partial mention the cursor is at the end of: `before_cursor` ends with `@pre` (at a
/// mention boundary). Returns the prefix typed after the `@` (possibly empty).
pub fn partial(before_cursor: &str) -> Option<&str> {
    let at = before_cursor.rfind('@')?;
    let prefix = &before_cursor[at + 1..];
    if !prefix.chars().all(name_char) {
        return None;
    }
    let boundary = before_cursor[..at]
        .chars()
        .next_back()
        .is_none_or(|p| !(p.is_alphanumeric() || matches!(p, '_' | '@')));
    boundary.then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> Vec<String> {
        ["alice", "bob", "Carol", "dana.k"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn word_boundaries_case_and_addresses() {
        let a = agents();
        assert_eq!(mentioned("@bob please look", &a), ["bob"]);
        assert_eq!(mentioned("cc @BOB, @carol.", &a), ["bob", "Carol"]);
        assert_eq!(mentioned("(@alice) and @alice again", &a), ["alice"]);
        assert_eq!(mentioned("@dana.k: yours", &a), ["dana.k"]);
        // Addresses and longer names are not mentions.
        assert!(mentioned("mail bob@example.com or alice@x", &a).is_empty());
        assert!(mentioned("@bobby @alice_2 @@bob", &a).is_empty());
        assert!(mentioned("nobody here", &a).is_empty());
        assert_eq!(unknown("@bobby and @bob and @Bobby", &a), ["bobby"]);
        assert!(unknown("@alice", &a).is_empty());
    }

    #[test]
    fn the_partial_mention_at_the_cursor() {
        assert_eq!(partial("hi @bo"), Some("bo"));
        assert_eq!(partial("@"), Some(""));
        assert_eq!(partial("mail ann@ex"), None);
        assert_eq!(partial("hi @bob there"), None);
        assert_eq!(partial("no at"), None);
    }
}
