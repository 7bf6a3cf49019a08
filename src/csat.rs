//! Customer satisfaction surveys (CSAT): the workspace's `[csat]` settings, the survey's text
//! per channel, and reading a score out of what the customer answers. Pure: the server's
//! derivation ([`crate::store::Store::derive_csat`]) decides when a survey goes out, the store
//! keeps one survey per conversation, the channels carry the buttons and bring the answers.
//!
//! ```toml
//! [csat]
//! enabled = true
//! channels = ["email", "telegram", "webchat", "whatsapp"]   # default: every channel that replies
//! teams = ["support", "none"]       # default: every team; "none" = conversations in no team
//! question = "How would you rate our help?"
//! answer_window = "7d"              # a text reply within this long counts as the answer
//! delay = "1h"                      # wait this long after the resolution (reopened: no survey)
//! ```

use crate::model::{Channel, ConversationId};

/// Who the survey messages are written by. Automated ([`crate::store::is_automated`]): a
/// survey is not a reply to the customer, stops no clock and fires no rule.
pub const AUTHOR: &str = "csat";

/// The question when the config gives none.
pub const DEFAULT_QUESTION: &str = "How would you rate the help you got from us?";

/// How long after the survey a text reply (email, SMS) is read as its answer.
pub const DEFAULT_ANSWER_WINDOW_MS: i64 = 7 * 86_400_000;

/// The longest comment kept with an answer (characters).
pub const MAX_COMMENT_CHARS: usize = 1000;

/// `[csat]`: when a survey goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsatConfig {
    pub enabled: bool,
    /// The channels a survey goes out on (the customer's last one must be among them).
    pub channels: Vec<Channel>,
    /// The teams whose conversations get one (None: every team and none). `"none"` in the
    /// list stands for conversations in no team.
    pub teams: Option<Vec<String>>,
    pub question: String,
    /// How long after the survey a text reply is read as its answer (ms).
    pub answer_window_ms: i64,
    /// How long after the resolution the survey goes (ms; 0: at once). Reopened before
    /// then, it waits for the next resolution.
    pub delay_ms: i64,
}

impl Default for CsatConfig {
    fn default() -> Self {
        CsatConfig {
            enabled: false,
            channels: default_channels(),
            teams: None,
            question: DEFAULT_QUESTION.into(),
            answer_window_ms: DEFAULT_ANSWER_WINDOW_MS,
            delay_ms: 0,
        }
    }
}

/// Every channel a survey can go out on.
pub fn default_channels() -> Vec<Channel> {
    Channel::ALL
        .iter()
        .copied()
        .filter(|c| c.replyable())
        .collect()
}

impl CsatConfig {
    /// Whether a conversation of `team` whose customer last wrote on `channel` gets a survey.
    pub fn applies(&self, team: Option<&str>, channel: Channel) -> bool {
        self.enabled
            && self.channels.contains(&channel)
            && match &self.teams {
                None => true,
                Some(list) => list.iter().any(|t| match team {
                    Some(team) => t == team,
                    None => t == "none",
                }),
            }
    }
}

/// The raw `[csat]` table, positions kept for errors.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCsat {
    pub enabled: Option<bool>,
    pub channels: Option<toml::Spanned<Vec<String>>>,
    pub teams: Option<toml::Spanned<Vec<String>>>,
    pub question: Option<toml::Spanned<String>>,
    pub answer_window: Option<toml::Spanned<String>>,
    pub delay: Option<toml::Spanned<String>>,
}

/// A resolve error: the span, the dotted key, the message.
pub type RawError = (std::ops::Range<usize>, String, String);

impl RawCsat {
    /// Check and resolve against the workspace's teams.
    pub fn resolve(&self, teams: &[String]) -> Result<CsatConfig, RawError> {
        let mut c = CsatConfig {
            enabled: self.enabled.unwrap_or(false),
            ..CsatConfig::default()
        };
        if let Some(ch) = &self.channels {
            let mut out = Vec::new();
            for name in ch.get_ref() {
                let channel: Channel =
                    name.parse().map_err(|e: crate::model::ParseEnumError| {
                        (ch.span(), "csat.channels".to_string(), e.to_string())
                    })?;
                if !channel.replyable() {
                    return Err((
                        ch.span(),
                        "csat.channels".into(),
                        format!(
                            "{channel} cannot carry a survey (nothing can be sent there): leave it out"
                        ),
                    ));
                }
                if !out.contains(&channel) {
                    out.push(channel);
                }
            }
            if out.is_empty() {
                return Err((
                    ch.span(),
                    "csat.channels".into(),
                    "no channel listed: name some, or set enabled = false".into(),
                ));
            }
            c.channels = out;
        }
        if let Some(t) = &self.teams {
            for name in t.get_ref() {
                if name != "none" && !teams.iter().any(|x| x == name) {
                    return Err((
                        t.span(),
                        "csat.teams".into(),
                        format!(
                            "team '{name}' is not defined: add [[teams]] name = \"{name}\", or use \"none\" for conversations in no team (defined: {})",
                            if teams.is_empty() {
                                "none".to_string()
                            } else {
                                teams.join(", ")
                            }
                        ),
                    ));
                }
            }
            c.teams = Some(t.get_ref().clone());
        }
        if let Some(q) = &self.question {
            let text = crate::sanitize::text(q.get_ref());
            let text = text.trim();
            if text.is_empty() {
                return Err((q.span(), "csat.question".into(), "must not be empty".into()));
            }
            if text.chars().count() > 500 {
                return Err((
                    q.span(),
                    "csat.question".into(),
                    "longer than 500 characters: one short question gets answers".into(),
                ));
            }
            c.question = text.to_string();
        }
        if let Some(w) = &self.answer_window {
            let ms = crate::units::parse_duration(w.get_ref())
                .map_err(|m| (w.span(), "csat.answer_window".to_string(), m))?;
            if ms <= 0 {
                return Err((
                    w.span(),
                    "csat.answer_window".into(),
                    "must be longer than 0".into(),
                ));
            }
            c.answer_window_ms = ms;
        }
        if let Some(d) = &self.delay {
            let ms = crate::units::parse_duration(d.get_ref())
                .map_err(|m| (d.span(), "csat.delay".to_string(), m))?;
            if ms > 30 * 86_400_000 {
                return Err((
                    d.span(),
                    "csat.delay".into(),
                    "longer than 30 days: the customer will not remember the conversation".into(),
                ));
            }
            c.delay_ms = ms;
        }
        Ok(c)
    }
}

/// The survey's text on a channel. Channels with buttons (web chat, Telegram, WhatsApp) show
/// the question and their buttons; the others ask for a number in a reply.
pub fn survey_text(question: &str, channel: Channel) -> String {
    match channel {
        Channel::WebChat | Channel::Telegram => question.to_string(),
        Channel::WhatsApp => format!(
            "{question}\n\nTap a button, or reply with a number from 1 (poor) to 5 (excellent)."
        ),
        _ => format!(
            "{question}\n\nPlease reply with a number from 1 (poor) to 5 (excellent); a comment after it is welcome."
        ),
    }
}

/// The survey message's channel data: the channels draw buttons from it.
pub fn survey_meta(conv: ConversationId, question: &str) -> serde_json::Value {
    serde_json::json!({ "csat": { "conversation": conv.0, "question": question } })
}

/// The conversation a message's channel data marks as a survey, if it is one.
pub fn survey_of(meta: Option<&serde_json::Value>) -> Option<ConversationId> {
    meta?
        .get("csat")?
        .get("conversation")?
        .as_i64()
        .map(ConversationId)
}

/// A button's callback data (Telegram `callback_data`, WhatsApp button id): `csat:CONV:SCORE`.
pub fn button_data(conv: ConversationId, score: u8) -> String {
    format!("csat:{}:{score}", conv.0)
}

/// The conversation and score of a button's data.
pub fn parse_button(data: &str) -> Option<(ConversationId, u8)> {
    let rest = data.strip_prefix("csat:")?;
    let (c, s) = rest.split_once(':')?;
    let conv = c.parse::<i64>().ok().filter(|c| *c > 0)?;
    let score = s.parse::<u8>().ok().filter(|s| (1..=5).contains(s))?;
    Some((ConversationId(conv), score))
}

/// A comment from outside made safe to keep: sanitized, one paragraph of at most
/// [`MAX_COMMENT_CHARS`].
pub fn clean_comment(text: &str) -> String {
    let t = crate::sanitize::text(text);
    let t = t.trim();
    if t.chars().count() > MAX_COMMENT_CHARS {
        let mut s: String = t.chars().take(MAX_COMMENT_CHARS).collect();
        s.push('…');
        s
    } else {
        t.to_string()
    }
}

/// The part of a reply the customer wrote: up to the first quoted line (`>`), the
/// "On ... wrote:" line before a quote, an "-----Original Message-----" separator, a `From:`
/// header block of a forwarded reply or a signature (`-- `).
fn own_text(body: &str) -> String {
    let mut out = Vec::new();
    for line in body.lines() {
        let l = line.trim();
        let lower = l.to_ascii_lowercase();
        if l.starts_with('>')
            || (l.starts_with("On ") && l.ends_with("wrote:"))
            || lower.starts_with("-----original message")
            || lower.starts_with("from:")
            || line == "-- "
            || l == "--"
        {
            break;
        }
        out.push(l);
    }
    out.join("\n").trim().to_string()
}

/// The longest own text a reply may have and still be read as a score: a survey answer is
/// short; a long message with a small number in it is something else.
const MAX_ANSWER_CHARS: usize = 300;

/// Read a survey answer out of a text reply: a score 1-5 and the rest as a comment.
/// "4", "5 - great service", "I'd say 3", "4/5" and "4 out of 5" are answers. Not answers:
/// no number, a number out of range ("7", "10/10", "0"), two different numbers, a decimal or a
/// time ("3.5", "2:30"), a long message, and whatever follows the customer's own text (a
/// quoted earlier message, a signature), whatever digits it holds.
pub fn parse_answer(body: &str) -> Option<(u8, String)> {
    let own = own_text(&crate::sanitize::text(body));
    if own.is_empty() || own.chars().count() > MAX_ANSWER_CHARS {
        return None;
    }
    let chars: Vec<char> = own.chars().collect();
    // Numbers as (start, end, value), with what stands around them.
    let mut numbers: Vec<(usize, usize, u64)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let value = text.parse::<u64>().unwrap_or(u64::MAX);
            numbers.push((start, i, value));
        } else {
            i += 1;
        }
    }
    // "4/5" and "4 out of 5": the "5" is the scale, not a second answer.
    let scale_after = |end: usize| -> Option<usize> {
        let rest: String = chars[end..].iter().collect();
        let r = rest.trim_start();
        let skipped = rest.chars().count() - r.chars().count();
        for pre in ["/", "out of", "of"] {
            if let Some(x) = r.strip_prefix(pre) {
                let x2 = x.trim_start();
                if x2.starts_with('5') && !x2[1..].starts_with(|c: char| c.is_ascii_digit()) {
                    let used = pre.chars().count() + (x.chars().count() - x2.chars().count()) + 1;
                    return Some(end + skipped + used);
                }
            }
        }
        None
    };
    let (start, end, value) = *numbers.first()?;
    // A decimal, a time, a date, a fraction of another scale, a signed number.
    let joined =
        |c: Option<&char>| c.is_some_and(|c| matches!(c, '.' | ',' | ':' | '/' | '-' | '%'));
    let before = if start > 0 {
        chars.get(start - 1)
    } else {
        None
    };
    let after = chars.get(end);
    let scale_end = scale_after(end);
    if scale_end.is_none() {
        if joined(after) && chars.get(end + 1).is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        if after == Some(&'%') {
            return None;
        }
    }
    if before.is_some_and(|c| matches!(c, '.' | ',' | ':' | '/' | '#' | '$' | '€' | '£'))
        || before.is_some_and(|c| c.is_alphabetic())
        || after.is_some_and(|c| c.is_alphabetic())
    {
        return None;
    }
    if !(1..=5).contains(&value) {
        return None;
    }
    // Another number than the scale: not one clear answer.
    let rest_from = scale_end.unwrap_or(end);
    if numbers.iter().any(|(s, _, _)| *s >= rest_from) {
        return None;
    }
    let score = value as u8;
    let comment = if start == 0
        || chars[..start]
            .iter()
            .all(|c| c.is_whitespace() || matches!(c, '*' | '"' | '\''))
    {
        let rest: String = chars[rest_from..].iter().collect();
        rest.trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, '-' | '–' | '—' | ':' | ',' | '.' | '!' | '*' | ')')
        })
        .trim()
        .to_string()
    } else {
        own.clone()
    };
    Some((score, clean_comment(&comment)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_replies_and_nothing_else_is() {
        let cases: &[(&str, Option<(u8, &str)>)] = &[
            ("4", Some((4, ""))),
            ("5 - great service", Some((5, "great service"))),
            ("5 – great service!", Some((5, "great service!"))),
            ("I'd say 3", Some((3, "I'd say 3"))),
            ("  2\n", Some((2, ""))),
            ("4/5", Some((4, ""))),
            ("4 / 5 quick and kind", Some((4, "quick and kind"))),
            (
                "1 out of 5, nobody read my question",
                Some((1, "nobody read my question")),
            ),
            ("**5**", Some((5, ""))),
            // out of range
            ("7", None),
            ("0", None),
            ("10/10", None),
            ("6 - amazing", None),
            // words, no number
            ("great service, thanks", None),
            ("five", None),
            ("", None),
            // not a score: decimals, times, two numbers, ids, money, percentages
            ("3.5", None),
            ("call me at 2:30", None),
            ("3 or 4", None),
            ("order #4 never came", None),
            ("$5 refund please", None),
            ("5%", None),
            ("v2 of the app", None),
            // a quoted earlier message with digits does not count
            (
                "thanks!\n\nOn Mon, 7 Dec 2026 at 10:04, Shop <help@shop.example> wrote:\n> Please reply with a number from 1 (poor) to 5 (excellent)\n> Order 3",
                None,
            ),
            ("> 5\n> earlier", None),
            (
                "Great, 4\n\nOn Mon, Shop wrote:\n> rate 1 to 5",
                Some((4, "Great, 4")),
            ),
            ("3\n-- \nAnn\n+1 555 0100 ext 2", Some((3, ""))),
            ("-----Original Message-----\nFrom: shop\n5", None),
        ];
        for (body, want) in cases {
            let got = parse_answer(body);
            let want = want.map(|(s, c)| (s, c.to_string()));
            assert_eq!(got, want, "{body:?}");
        }
        // A long message with a small number in it is not an answer.
        let long = format!("I have 2 more questions. {}", "blah ".repeat(80));
        assert_eq!(parse_answer(&long), None);
    }

    #[test]
    fn the_comment_is_sanitized_and_cut() {
        let (s, c) = parse_answer("2 \u{1b}[31mbad\u{1b}[0m").unwrap();
        assert_eq!(s, 2);
        assert!(!c.contains('\u{1b}'), "{c:?}");
        let long = clean_comment(&"x".repeat(5000));
        assert_eq!(long.chars().count(), MAX_COMMENT_CHARS + 1);
    }

    #[test]
    fn buttons_round_trip_and_odd_data_is_refused() {
        let d = button_data(ConversationId(42), 3);
        assert_eq!(parse_button(&d), Some((ConversationId(42), 3)));
        for bad in [
            "csat:42:6",
            "csat:42:0",
            "csat:x:3",
            "csat:-1:3",
            "other:42:3",
            "csat:42",
        ] {
            assert_eq!(parse_button(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_survey_applies_per_team_and_channel() {
        let mut c = CsatConfig {
            enabled: true,
            channels: vec![Channel::Email, Channel::Telegram],
            teams: Some(vec!["support".into(), "none".into()]),
            ..CsatConfig::default()
        };
        assert!(c.applies(Some("support"), Channel::Email));
        assert!(c.applies(None, Channel::Telegram));
        assert!(!c.applies(Some("sales"), Channel::Email));
        assert!(!c.applies(Some("support"), Channel::WebChat));
        c.teams = None;
        assert!(c.applies(Some("sales"), Channel::Email));
        c.enabled = false;
        assert!(!c.applies(Some("sales"), Channel::Email));
        assert!(!default_channels().contains(&Channel::Phone));
    }
}
