//! What a customer's own message says about their consent: an email whose first line is
//! "unsubscribe" or "stop" (quoted lines ignored), a mail to a List-Unsubscribe address (its
//! subject "unsubscribe"), a Telegram `/stop` or `/start`. SMS keywords are the SMS channel's
//! (carrier rules, see `channels::sms`). The store keeps the state ([`crate::store::consent`]);
//! [`crate::ingest`] records what this finds in the transaction that stores the message.

use crate::model::{Channel, ConsentSource};

/// What an inbound message says: opted out (true) or back in (false), how, and the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub opted_out: bool,
    pub source: ConsentSource,
    pub word: String,
}

/// The consent an inbound message on `channel` expresses, if any.
pub fn inbound_word(channel: Channel, subject: Option<&str>, body: &str) -> Option<Said> {
    match channel {
        Channel::Email => {
            let first = body
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('>'))
                .unwrap_or("");
            let word = first
                .trim_end_matches(['.', '!'])
                .trim()
                .to_ascii_lowercase();
            if matches!(word.as_str(), "unsubscribe" | "stop") {
                return Some(Said {
                    opted_out: true,
                    source: ConsentSource::Keyword,
                    word: first.to_string(),
                });
            }
            // A List-Unsubscribe mailto: link writes "unsubscribe" as the subject.
            let subject = subject.unwrap_or("").trim();
            if subject.eq_ignore_ascii_case("unsubscribe") {
                return Some(Said {
                    opted_out: true,
                    source: ConsentSource::Header,
                    word: subject.to_string(),
                });
            }
            None
        }
        Channel::Telegram => {
            let text = body.trim();
            // "/stop" or "/stop@our_bot", alone.
            let command = text.split('@').next().unwrap_or("").to_ascii_lowercase();
            if text.contains(char::is_whitespace) {
                return None;
            }
            let opted_out = match command.as_str() {
                "/stop" => true,
                "/start" => false,
                _ => return None,
            };
            Some(Said {
                opted_out,
                source: ConsentSource::Command,
                word: command,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn an_email_that_says_unsubscribe_first_opts_out_quotes_ignored() {
        let said = |s: Option<&str>, b: &str| inbound_word(Channel::Email, s, b);
        let out = said(Some("Re: offer"), "> Big sale!\n\n  Unsubscribe.\n\nAna").unwrap();
        assert!(out.opted_out);
        assert_eq!(out.source, ConsentSource::Keyword);
        assert_eq!(out.word, "Unsubscribe.");
        assert!(said(None, "STOP").unwrap().opted_out);
        assert_eq!(said(None, "please stop the delay on my order"), None);
        assert_eq!(said(None, "> unsubscribe\nwhere is my order?"), None);
        let header = said(Some("unsubscribe"), "").unwrap();
        assert_eq!(header.source, ConsentSource::Header);
        assert_eq!(inbound_word(Channel::WebChat, None, "stop"), None);
    }

    #[test]
    fn telegram_stop_and_start_commands() {
        let t = |b: &str| inbound_word(Channel::Telegram, None, b);
        assert!(t("/stop").unwrap().opted_out);
        assert!(t("/STOP@braid_bot").unwrap().opted_out);
        assert!(!t("/start").unwrap().opted_out);
        assert_eq!(t("/stop the order please"), None);
        assert_eq!(t("stop"), None);
    }
}
