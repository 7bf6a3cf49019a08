//! Sending: [`Outbound`] for Telegram, through teloxide's `Throttle` adaptor.
//!
//! - The recipient is the customer's Telegram user id, which is the chat id of their private
//!   chat with the bot.
//! - Texts over 4,096 characters go as several messages, split on paragraph boundaries (then
//!   lines, then words); parts already delivered are not sent again when a later part fails
//!   and the outbox retries.
//! - A 429 freezes the bot for Telegram's `retry_after` (like Throttle does): the send fails with
//!   "rate limited by Telegram, retry in Ns" (retryable), and any send before the time is up
//!   fails the same way without calling Telegram.
//! - A 403 (the customer blocked the bot, deleted their account) is permanent; other failures
//!   carry Telegram's own description.
//! - Replies to one chat go out in the order they were written (message id): the ones claimed
//!   together take turns, and after a retryable failure the newer replies to that chat wait
//!   (failing with "waiting for an earlier reply...", retried by the outbox) until it is sent.

use super::Telegram;
use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::model::{Channel, MessageId};
use crate::store::OutboxItem;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup};
use teloxide::{ApiError, RequestError};

/// Telegram's limit for one text message, in characters as Telegram counts them (UTF-16 code
/// units: an emoji outside the basic plane counts twice).
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Telegram's length of a text (UTF-16 code units).
pub fn telegram_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The reason of a send refused because the customer blocked the bot.
pub const BLOCKED: &str = "the customer blocked the bot";

/// Split a text into parts of at most `max` characters as Telegram counts them
/// ([`telegram_len`]): on paragraph boundaries (blank lines) when possible, else line breaks,
/// else spaces, else anywhere (never inside a character).
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(2);
    let mut parts = Vec::new();
    let mut rest = text.trim_matches('\n');
    while telegram_len(rest) > max {
        // Byte index of the first character that would not fit.
        let mut used = 0;
        let limit = rest
            .char_indices()
            .find(|(_, c)| {
                used += c.len_utf16();
                used > max
            })
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let window = &rest[..limit];
        let cut = [("\n\n", 2), ("\n", 1), (" ", 1)]
            .iter()
            .find_map(|(sep, len)| window.rfind(sep).filter(|&i| i > 0).map(|i| (i, i + len)))
            .unwrap_or((limit, limit));
        let head = rest[..cut.0].trim_end();
        if !head.is_empty() {
            parts.push(head.to_string());
        }
        rest = rest[cut.1..].trim_start_matches(['\n', ' ']);
    }
    if !rest.trim().is_empty() || parts.is_empty() {
        parts.push(rest.trim_end().to_string());
    }
    parts
}

/// Replies in flight per chat, so the ones to the same chat go out in message order.
#[derive(Default)]
pub(crate) struct ChatOrder {
    waiting: Mutex<HashMap<i64, BTreeSet<i64>>>,
    /// Parts of a split message already delivered (message id → their Telegram ids).
    delivered_parts: Mutex<HashMap<i64, Vec<i32>>>,
    /// Replies whose send failed and will be retried, per chat: newer replies to that chat wait
    /// for them (message id → when it last failed).
    held: Mutex<HashMap<i64, BTreeMap<i64, Instant>>>,
}

/// A held reply stops holding newer ones after this long without failing again (the outbox
/// may have given up on it).
const HOLD_FOR: Duration = Duration::from_secs(30 * 60);

/// Removes a reply from its chat's line when its send ends (or is dropped on a timeout).
struct Turn<'a> {
    order: &'a ChatOrder,
    chat: i64,
    message: i64,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut w = self
            .order
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = w.get_mut(&self.chat) {
            set.remove(&self.message);
            if set.is_empty() {
                w.remove(&self.chat);
            }
        }
    }
}

/// How long a send waits for replies claimed with it to join the line.
const SETTLE: Duration = Duration::from_millis(30);

impl ChatOrder {
    /// Wait until every older reply to `chat` that is being sent now has been sent.
    async fn wait_turn(&self, chat: i64, message: MessageId) -> Turn<'_> {
        {
            let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            w.entry(chat).or_default().insert(message.0);
        }
        let turn = Turn {
            order: self,
            chat,
            message: message.0,
        };
        // The dispatcher starts the sends it claimed together at once: give the older ones
        // a moment to register before deciding who goes first.
        tokio::time::sleep(SETTLE).await;
        loop {
            let first = {
                let w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                w.get(&chat).and_then(|s| s.first().copied())
            };
            if first.is_none_or(|f| f >= message.0) {
                return turn;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The oldest reply to `chat`, older than `message`, still waiting for a retry.
    fn held_before(&self, chat: i64, message: MessageId) -> Option<i64> {
        let mut h = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let set = h.get_mut(&chat)?;
        set.retain(|_, at| at.elapsed() < HOLD_FOR);
        set.keys().next().copied().filter(|&m| m < message.0)
    }

    fn hold(&self, chat: i64, message: MessageId) {
        let mut h = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        h.entry(chat).or_default().insert(message.0, Instant::now());
    }

    fn release(&self, chat: i64, message: MessageId) {
        let mut h = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = h.get_mut(&chat) {
            set.remove(&message.0);
            if set.is_empty() {
                h.remove(&chat);
            }
        }
    }

    fn parts_done(&self, message: MessageId) -> Vec<i32> {
        self.delivered_parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&message.0)
            .cloned()
            .unwrap_or_default()
    }

    fn set_parts_done(&self, message: MessageId, ids: Option<Vec<i32>>) {
        let mut g = self
            .delivered_parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match ids {
            Some(ids) => g.insert(message.0, ids),
            None => g.remove(&message.0),
        };
    }
}

/// A failed Telegram request as the outbox records it.
pub fn send_error(e: &RequestError) -> SendError {
    let permanent = |reason: String| SendError {
        reason,
        retry: false,
        may_have_sent: false,
    };
    let temporary = |reason: String| SendError {
        reason,
        retry: true,
        may_have_sent: false,
    };
    match e {
        RequestError::RetryAfter(s) => temporary(rate_limited(s.duration())),
        RequestError::Api(ApiError::BotBlocked) => permanent(BLOCKED.to_string()),
        RequestError::Api(ApiError::UserDeactivated) => {
            permanent("the customer's Telegram account is deleted".to_string())
        }
        RequestError::Api(ApiError::CantInitiateConversation)
        | RequestError::Api(ApiError::CantTalkWithBots)
        | RequestError::Api(ApiError::ChatNotFound)
        | RequestError::Api(ApiError::BotKicked)
        | RequestError::Api(ApiError::BotKickedFromSupergroup)
        | RequestError::Api(ApiError::MessageTextIsEmpty)
        | RequestError::Api(ApiError::MessageIsTooLong) => {
            permanent(format!("Telegram: {}", api_description(e)))
        }
        RequestError::Api(ApiError::Unknown(d)) => {
            let lower = d.to_ascii_lowercase();
            if lower.starts_with("forbidden") && lower.contains("blocked") {
                permanent(BLOCKED.to_string())
            } else if lower.starts_with("forbidden") || lower.starts_with("bad request") {
                permanent(format!("Telegram: {}", for_terminal_line(d)))
            } else {
                temporary(format!("Telegram: {}", for_terminal_line(d)))
            }
        }
        // A wrong token, a server in trouble: worth retrying once fixed.
        RequestError::Api(_) => temporary(format!("Telegram: {}", api_description(e))),
        RequestError::MigrateToChatId(c) => {
            permanent(format!("the chat moved to {} (a group upgraded)", c.0))
        }
        // Refused before the request left: nothing reached the customer.
        RequestError::Network(n) if n.is_connect() => temporary(format!("network error: {n}")),
        // The request left and no readable answer came back: Telegram may have delivered it,
        // and there is no way to ask (the dispatcher leaves it unclear for an agent).
        RequestError::Network(n) => SendError {
            reason: format!("network error: {n}"),
            retry: false,
            may_have_sent: true,
        },
        RequestError::InvalidJson { .. } => SendError {
            reason: "Telegram answered something braid cannot read".to_string(),
            retry: false,
            may_have_sent: true,
        },
        RequestError::Io(io) => temporary(format!("I/O error: {io}")),
    }
}

/// The server's words, escaped: they end up in the store, the log and on terminals.
fn api_description(e: &RequestError) -> String {
    let text = match e {
        RequestError::Api(a) => a.to_string(),
        other => other.to_string(),
    };
    for_terminal_line(&text).into_owned()
}

use crate::sanitize::for_terminal_line;

/// The failure reason of a rate-limited send.
pub fn rate_limited(d: Duration) -> String {
    format!(
        "rate limited by Telegram, retry in {}s",
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    )
}

impl Telegram {
    async fn deliver(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let chat: i64 = item.recipient.trim().parse().map_err(|_| SendError {
            reason: format!("'{}' is not a Telegram chat id", item.recipient),
            retry: false,
            may_have_sent: false,
        })?;
        let _turn = self.order.wait_turn(chat, item.message_id).await;
        let result = self.deliver_in_turn(chat, item).await;
        match &result {
            Err(e) if e.retry => self.order.hold(chat, item.message_id),
            _ => self.order.release(chat, item.message_id),
        }
        result
    }

    async fn deliver_in_turn(&self, chat: i64, item: &OutboxItem) -> Result<Sent, SendError> {
        if let Some(earlier) = self.order.held_before(chat, item.message_id) {
            return Err(SendError {
                reason: format!(
                    "waiting for an earlier reply to this chat (#{earlier}) to go first"
                ),
                retry: true,
                may_have_sent: false,
            });
        }
        if let Some(d) = self.frozen_for() {
            return Err(SendError {
                reason: rate_limited(d),
                retry: true,
                may_have_sent: false,
            });
        }
        let bots = self.bots().await.map_err(|e| SendError {
            reason: format!("Telegram bot not ready: {e}"),
            retry: true,
            may_have_sent: false,
        })?;
        let parts = split_text(&item.body, MAX_MESSAGE_CHARS);
        let mut ids = self.order.parts_done(item.message_id);
        // A satisfaction survey carries an inline keyboard 1-5 under its (last) part; the
        // customer's tap comes back as a callback query (see `poll`).
        let survey = crate::csat::survey_of(item.meta.as_ref());
        for (i, part) in parts.iter().enumerate().skip(ids.len()) {
            let mut req = bots.throttled.send_message(ChatId(chat), part.clone());
            if let Some(conv) = survey
                && i + 1 == parts.len()
            {
                req = req.reply_markup(survey_keyboard(conv));
            }
            match req.await {
                Ok(m) => {
                    ids.push(m.id.0);
                    if ids.len() < parts.len() {
                        self.order
                            .set_parts_done(item.message_id, Some(ids.clone()));
                    }
                }
                Err(e) => {
                    if let RequestError::RetryAfter(s) = &e {
                        self.freeze(s.duration());
                    }
                    let err = send_error(&e);
                    if !err.retry {
                        self.order.set_parts_done(item.message_id, None);
                    }
                    return Err(err);
                }
            }
        }
        self.order.set_parts_done(item.message_id, None);
        Ok(Sent {
            account: self.config.account.clone(),
            external_id: ids.first().map(|id| super::convert::external_id(chat, *id)),
        })
    }
}

/// The survey's inline keyboard: one row of 1-5, each button's data `csat:CONV:SCORE`.
pub fn survey_keyboard(conv: crate::model::ConversationId) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        (1..=5u8)
            .map(|s| {
                InlineKeyboardButton::callback(s.to_string(), crate::csat::button_data(conv, s))
            })
            .collect::<Vec<_>>(),
    ])
}

impl Outbound for Telegram {
    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(self.deliver(item))
    }

    fn unreachable(&self, error: &crate::channels::SendError) -> bool {
        error.reason == BLOCKED
    }

    /// Telegram cannot be asked whether a message went out.
    fn resend_is_safe(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_stay_whole() {
        assert_eq!(split_text("hello", 4096), vec!["hello"]);
        assert_eq!(split_text("", 4096), vec![""]);
    }

    #[test]
    fn long_texts_split_on_paragraphs() {
        let p1 = "a".repeat(3000);
        let p2 = "b".repeat(3000);
        let p3 = "c".repeat(500);
        let text = format!("{p1}\n\n{p2}\n\n{p3}");
        let parts = split_text(&text, 4096);
        assert_eq!(parts, vec![p1.clone(), format!("{p2}\n\n{p3}")]);
        for p in &parts {
            assert!(telegram_len(p) <= 4096);
        }
        // No paragraph break: lines, then words, then anywhere.
        let words = "word ".repeat(2000);
        let parts = split_text(&words, 4096);
        assert!(parts.iter().all(|p| p.chars().count() <= 4096));
        assert!(
            parts
                .iter()
                .all(|p| !p.starts_with(' ') && !p.ends_with(' '))
        );
        assert_eq!(parts.join(" "), words.trim_end());
        let solid = "é".repeat(9000);
        let parts = split_text(&solid, 4096);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            vec![4096, 4096, 808]
        );
        // Emoji outside the basic plane count twice.
        let emoji = "😀".repeat(3000);
        let parts = split_text(&emoji, 4096);
        assert_eq!(
            parts.iter().map(|p| telegram_len(p)).collect::<Vec<_>>(),
            vec![4096, 1904]
        );
    }

    #[test]
    fn errors_map_to_reasons() {
        let e = send_error(&RequestError::Api(ApiError::BotBlocked));
        assert_eq!(
            e,
            SendError {
                reason: BLOCKED.into(),
                retry: false,
                may_have_sent: false,
            }
        );
        let e = send_error(&RequestError::RetryAfter(
            teloxide::types::Seconds::from_seconds(7),
        ));
        assert_eq!(e.reason, "rate limited by Telegram, retry in 7s");
        assert!(e.retry);
        let e = send_error(&RequestError::Api(ApiError::Unknown(
            "Bad Request: chat not found here".into(),
        )));
        assert!(!e.retry);
        assert_eq!(e.reason, "Telegram: Bad Request: chat not found here");
    }
}
