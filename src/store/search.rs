//! Full-text search (FTS5) over message bodies, subjects, notes and contact names.
//!
//! Query language, as typed after `/`, on `:search` or `braid search`:
//! plain words (all must match, prefix with `word*`), `"a phrase"`, and filters
//! `from:NAME-OR-ADDRESS`, `channel:email|telegram|webchat`, `is:in|out|note`,
//! `after:YYYY-MM-DD`, `before:YYYY-MM-DD`; and on the conversation or its contact,
//! `tag:NAME`, `assignee:NAME|me|none`, `status:open|pending|snoozed|resolved`,
//! `priority:low|normal|high|urgent`, `is:vip`, `team:NAME|none` (a conversation filter alone walks the
//! filter's conversations from their index, never every message). An unknown `key:` or a key
//! with no value is an error (quote it to search for the text); at most [`MAX_TERMS`] words
//! and phrases and [`MAX_QUERY_CHARS`] characters. `from:` finds the messages whose sender (the
//! author's name and, for a customer's message, the address or number it came from) has words
//! starting with its words, like notmuch's `from:` (`from:ann@x` finds ann@x.org, `from:harr`
//! finds Harris, `from:bob` an agent's replies; `from:arris` finds nothing). Results come
//! newest first (by arrival), so a common word costs the same as a rare one: FTS5 walks its
//! index backwards and stops at the limit. [`Store::search`] says what each kind of query costs.

use super::{Result, Store, StoreError};
use crate::model::{
    Channel, ContactId, ConversationId, Direction, MessageId, Millis, Priority, Status,
};
use rusqlite::OptionalExtension;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The FTS5 MATCH expression built from the free-text part (None: filters only).
    pub fts: Option<String>,
    pub from: Option<String>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub after: Option<Millis>,
    pub before: Option<Millis>,
    /// `tag:NAME` (each given tag): the conversation has it.
    pub tags: Vec<String>,
    /// `assignee:NAME` (Some(Some)), `assignee:none` (Some(None)).
    pub assignee: Option<Option<String>>,
    /// `status:open|pending|snoozed|resolved`: the conversation's status.
    pub status: Option<Status>,
    /// `priority:low|normal|high|urgent`: the conversation's priority.
    pub priority: Option<Priority>,
    /// `is:vip`: the contact is a VIP.
    pub vip: bool,
    /// `conversation:ID`: that conversation only (`:open ID` in the TUI).
    pub conversation: Option<ConversationId>,
    /// `team:NAME` (Some(Some)), `team:none` (Some(None)): the conversation's team.
    pub team: Option<Option<String>>,
    /// `NAME:VALUE`, `NAME:>N`...: a custom field of the contact (see [`FieldFilter`]).
    pub fields: Vec<FieldFilter>,
    /// `stage:NAME` (Some(Some)), `stage:none` (Some(None)): the contact's lifecycle stage.
    pub stage: Option<Option<String>>,
    /// `score:N`, `score:>N`, `score:<=N`...: the contact's lead score.
    pub score: Option<(FieldCmp, i64)>,
}

/// How a field filter compares: `plan:pro` is `Eq`; `>`, `>=`, `<`, `<=` go with number and
/// date fields (and `score:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldCmp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl FieldCmp {
    /// The comparison a value starts with, and the rest.
    fn split(value: &str) -> (FieldCmp, &str) {
        for (p, c) in [
            (">=", FieldCmp::Ge),
            ("<=", FieldCmp::Le),
            (">", FieldCmp::Gt),
            ("<", FieldCmp::Lt),
            ("=", FieldCmp::Eq),
        ] {
            if let Some(rest) = value.strip_prefix(p) {
                return (c, rest.trim());
            }
        }
        (FieldCmp::Eq, value)
    }

    fn sql(self) -> &'static str {
        match self {
            FieldCmp::Eq => "=",
            FieldCmp::Gt => ">",
            FieldCmp::Ge => ">=",
            FieldCmp::Lt => "<",
            FieldCmp::Le => "<=",
        }
    }
}

/// `NAME:VALUE` where NAME is no built-in key: a custom field, checked against the workspace's
/// `[[fields]]` when the query runs (the client cannot know them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFilter {
    pub name: String,
    pub cmp: FieldCmp,
    /// As typed until the store checks it; then the stored form (`numeric`: the sort key).
    pub value: String,
    /// The value is a number field's number or a date field's day number, compared with the
    /// stored sort key.
    pub numeric: bool,
}

/// The most words and phrases a query may hold: each is a doclist FTS5 intersects.
pub const MAX_TERMS: usize = 32;
/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;

/// The filter keys, as the error for an unknown one lists them.
const KEYS: &str = "from:, channel:, is:in|out|note|vip, after:, before:, tag:, assignee:NAME|me|none, \
                    status:open|pending|snoozed|resolved, priority:low|normal|high|urgent, team:NAME|none, \
                    conversation:ID, stage:NAME|none, score:N|>N|<N";

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SearchHit {
    /// The matching message, or None when the hit is the contact's name.
    pub message_id: Option<MessageId>,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub contact_name: String,
    pub channel: Channel,
    pub direction: Option<Direction>,
    pub created_at: Millis,
    /// Matching text with the hit marked «like this».
    pub snippet: String,
}

/// See [`Store::search_conversation_hits`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationHits {
    pub rows: Vec<(super::QueueRow, SearchHit)>,
    pub messages: Vec<MessageId>,
    pub more: bool,
}

impl SearchQuery {
    /// Parse a query with no agent: `assignee:me` is refused (see [`SearchQuery::parse_as`]).
    pub fn parse(input: &str) -> std::result::Result<SearchQuery, String> {
        SearchQuery::parse_as(input, None)
    }

    /// Parse a query typed by the agent `me` (what `assignee:me` means).
    pub fn parse_as(input: &str, me: Option<&str>) -> std::result::Result<SearchQuery, String> {
        let chars = input.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(format!(
                "the search is {chars} characters long; at most {MAX_QUERY_CHARS} (search for fewer, rarer words)"
            ));
        }
        let mut q = SearchQuery::default();
        let mut terms: Vec<String> = Vec::new();
        let mut rest = input.trim();
        while !rest.is_empty() {
            if terms.len() > MAX_TERMS {
                break;
            }
            if let Some(stripped) = rest.strip_prefix('"') {
                let end = stripped.find('"').unwrap_or(stripped.len());
                let phrase = &stripped[..end];
                if !phrase.trim().is_empty() {
                    terms.push(quote(phrase));
                }
                rest = stripped.get(end + 1..).unwrap_or("").trim_start();
                continue;
            }
            // The next word, and whether it is `key:value` (key: letters only), where
            // `key:"several words"` is one filter value.
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            // Field names (`[[fields]]`) may hold digits and `_` after the first letter.
            let keyed = word.split_once(':').filter(|(key, _)| {
                key.starts_with(|c: char| c.is_ascii_alphabetic())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            let (word, filter) = match keyed {
                Some((key, value)) if value.starts_with('"') => {
                    let inner = &rest[key.len() + 2..];
                    let close = inner.find('"').unwrap_or(inner.len());
                    let after = inner.get(close + 1..).unwrap_or("");
                    rest = after.trim_start();
                    (word, Some((key, inner[..close].to_string(), true)))
                }
                Some((key, value)) => {
                    rest = rest[end..].trim_start();
                    (word, Some((key, value.to_string(), false)))
                }
                None => {
                    rest = rest[end..].trim_start();
                    (word, None)
                }
            };
            if let Some((key, value, quoted)) = filter {
                q.filter(key, value.trim(), quoted, me)?;
                continue;
            }
            if let Some(prefix) = word.strip_suffix('*') {
                if !prefix.is_empty() {
                    terms.push(format!("{}*", quote(prefix)));
                }
            } else {
                terms.push(quote(word));
            }
        }
        if terms.len() > MAX_TERMS {
            return Err(format!(
                "the search has more than {MAX_TERMS} words and phrases; at most {MAX_TERMS} \
                 (keep the rarest words, or narrow it with filters such as tag: or from:)"
            ));
        }
        if !terms.is_empty() {
            q.fts = Some(terms.join(" "));
        }
        if q == SearchQuery::default() {
            return Err("empty search".into());
        }
        Ok(q)
    }

    /// The query text with `assignee:me` spelled out as `assignee:AGENT`, for a place that
    /// keeps the text and parses it later without the agent (the TUI's search view).
    pub fn resolve_me(input: &str, me: &str) -> String {
        let name = format!("\"{}\"", me.replace('"', ""));
        input
            .split(' ')
            .map(|w| {
                if w.eq_ignore_ascii_case("assignee:me") {
                    format!("assignee:{name}")
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Apply one `key:value` filter.
    /// A quoted value is taken as it is (`assignee:"me"` is the agent named me).
    fn filter(
        &mut self,
        key: &str,
        value: &str,
        quoted: bool,
        me: Option<&str>,
    ) -> std::result::Result<(), String> {
        let lower = key.to_ascii_lowercase();
        if value.is_empty() {
            return Err(format!(
                "'{key}:' needs a value after the colon, e.g. {lower}:{} (to search for the word, put it in quotes: \"{key}:\")",
                match lower.as_str() {
                    "from" => "ann@example.com",
                    "tag" => "refund",
                    "assignee" => "me",
                    "status" => "open",
                    "priority" => "high",
                    "team" => "billing",
                    "is" => "vip",
                    "after" | "before" | "since" | "until" => "2026-01-31",
                    _ => "VALUE",
                }
            ));
        }
        match lower.as_str() {
            "from" => self.from = Some(value.to_lowercase()),
            "channel" | "via" => self.channel = Some(value.parse().map_err(|e| format!("{e}"))?),
            "is" => match value.to_ascii_lowercase().as_str() {
                "vip" => self.vip = true,
                other => {
                    self.direction = Some(other.parse().map_err(|_| {
                        format!("unknown is:{value} (expected one of: in, out, note, vip)")
                    })?)
                }
            },
            "after" | "since" => self.after = Some(parse_date(value)?),
            "before" | "until" => self.before = Some(parse_date(value)?),
            "tag" => {
                let tag = super::conversations::normalize_tag(value).map_err(|e| e.to_string())?;
                if !self.tags.contains(&tag) {
                    self.tags.push(tag);
                }
            }
            "assignee" if quoted => self.assignee = Some(Some(value.to_string())),
            "assignee" => {
                self.assignee = Some(match value.to_lowercase().as_str() {
                    "none" | "nobody" | "-" => None,
                    "me" => Some(
                        me.ok_or(
                            "assignee:me needs to know who you are; name the agent: assignee:NAME",
                        )?
                        .to_string(),
                    ),
                    _ => Some(value.to_string()),
                })
            }
            "team" if quoted => self.team = Some(Some(value.to_string())),
            "team" => {
                self.team = Some(match value.to_lowercase().as_str() {
                    "none" | "-" => None,
                    _ => Some(value.to_string()),
                })
            }
            "conversation" | "conv" => {
                self.conversation = Some(crate::model::parse_conversation_id(value)?)
            }
            "status" => self.status = Some(value.parse().map_err(|e| format!("{e}"))?),
            "priority" | "prio" => self.priority = Some(value.parse().map_err(|e| format!("{e}"))?),
            "stage" => {
                self.stage = Some(match value.to_ascii_lowercase().as_str() {
                    "none" | "-" => None,
                    v => Some(v.to_string()),
                })
            }
            "score" => {
                let (cmp, n) = FieldCmp::split(value);
                let n: i64 = n.parse().map_err(|_| {
                    format!("score:{value}: use a whole number, e.g. score:>10, score:<=0, score:5")
                })?;
                self.score = Some((cmp, n));
            }
            _ if key.chars().all(|c| c.is_ascii_alphabetic())
                || crate::fields::check_name(&lower).is_ok() =>
            {
                // A custom field, checked against the workspace's fields when it runs.
                let (cmp, v) = if quoted {
                    (FieldCmp::Eq, value)
                } else {
                    FieldCmp::split(value)
                };
                if v.is_empty() {
                    return Err(format!("'{key}:{value}' needs a value to compare with"));
                }
                self.fields.push(FieldFilter {
                    name: lower,
                    cmp,
                    value: v.to_string(),
                    numeric: false,
                });
            }
            _ => {
                return Err(format!(
                    "unknown filter '{key}:' (known: {KEYS}); to search for the text, put it in quotes: \"{key}:{value}\""
                ));
            }
        }
        Ok(())
    }

    /// The custom field filters checked against the workspace's fields: each names a
    /// configured field, compares as its type allows, and holds its stored form. Err says
    /// what is known or allowed.
    pub fn check_fields(
        &self,
        config: &crate::fields::FieldsConfig,
    ) -> std::result::Result<SearchQuery, String> {
        let mut q = self.clone();
        for f in &mut q.fields {
            if f.numeric {
                continue;
            }
            let Some(def) = config.field(&f.name) else {
                let fields = if config.fields.is_empty() {
                    "the workspace defines no fields".to_string()
                } else {
                    format!(
                        "fields: {}",
                        config
                            .fields
                            .iter()
                            .map(|d| format!("{}:", d.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(format!(
                    "unknown filter '{}:' (known: {KEYS}; {fields}); to search for the text, put it in quotes: \"{}:{}\"",
                    f.name, f.name, f.value
                ));
            };
            use crate::fields::FieldKind;
            match (def.kind, f.cmp) {
                (FieldKind::Number | FieldKind::Date, _) => {
                    let stored = def.validate(&f.value)?;
                    let key = def
                        .sort_key(&stored)
                        .ok_or_else(|| format!("{}:{}: cannot compare", f.name, f.value))?;
                    f.value = key.to_string();
                    f.numeric = true;
                }
                (FieldKind::Choice, FieldCmp::Eq) => f.value = def.validate(&f.value)?,
                (FieldKind::Text, FieldCmp::Eq) => {}
                (kind, _) => {
                    return Err(format!(
                        "{} is a {kind} field: search it with {}:VALUE (> and < go with number and date fields)",
                        f.name, f.name
                    ));
                }
            }
        }
        if let Some(Some(stage)) = &q.stage
            && !config.stages.contains(stage)
        {
            return Err(format!(
                "stage:{stage}: no such stage; stages: {} (or stage:none)",
                config.stages.join(", ")
            ));
        }
        Ok(q)
    }

    /// A filter on the conversation or the contact (not on the message itself).
    fn has_conversation_filter(&self) -> bool {
        !self.tags.is_empty()
            || self.assignee.is_some()
            || self.status.is_some()
            || self.priority.is_some()
            || self.vip
            || self.conversation.is_some()
            || self.team.is_some()
            || !self.fields.is_empty()
            || self.stage.is_some()
            || self.score.is_some()
    }
}

/// An FTS5 string literal: the text in double quotes, inner quotes doubled. Everything the
/// user types is data, never FTS syntax, so no query can be a syntax error. (FTS5 reads the
/// expression as a C string: a NUL would end it mid-literal, so it becomes a separator.)
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\"").replace('\0', " "))
}

fn parse_date(s: &str) -> std::result::Result<Millis, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).map_err(|_| format!("bad date '{s}' (use YYYY-MM-DD)"))?;
    Ok(d.midnight().assume_utc().unix_timestamp() * 1000)
}

/// How a search reaches its rows, so that every query reads a bounded number of rows whatever
/// the size of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Walk the full-text index newest first (words and `from:`), checking the filters.
    Fts,
    /// [`Driver::Fts`] down to this rowid only (the newest [`FTS_BUDGET`] full-text
    /// matches): words with a date range try this first (see [`Store::search`]).
    FtsDownTo(i64),
    /// Walk `messages_time` backwards through the date range, keeping the rows in the set of
    /// full-text matches (words or `from:` with a date range the capped walk did not answer).
    TimeMatch,
    /// Walk `messages_time` backwards from the end of the date range (no words, no `from:`).
    Time,
    /// Walk every message newest first (by rowid) and stop at the limit.
    Rowid,
    /// Walk the conversations the conversation filters (`tag:`, `status:`, `assignee:`,
    /// `priority:`, `is:vip`) select, newest activity first, from their index, and each one's
    /// messages newest first (`messages_conversation_time`), until no further conversation
    /// can hold a newer message than the hits kept (see [`Store::search_by_conversations`]).
    Conv,
}

/// How many full-text matches a search with a date range walks newest first before it walks
/// the date range instead. Message ids follow arrival, not the date a message was written
/// (a mailbox is synced newest first), so the full-text walk cannot start at the range: for
/// `refund before:DATE` it read every newer match, 4 s at a million messages.
const FTS_BUDGET: i64 = 2000;

/// Marks a glued word in the `sender` column (see [`sender_index`]): glued words live in a
/// term space of their own, so the prefix query of a plain name (`from:greta` is `greta*`)
/// does not also expand to every glued address that starts with it
/// (`gretamueller42example42com`, one term per customer: at a million messages that
/// expansion tripled the query's time). Letters, so the tokenizer keeps it in the word.
const GLUED: &str = "qz";

/// The `sender` column as stored and indexed: the sender's words (a name, an address, a phone
/// number, an id), then for each word with punctuation inside, the word glued together from
/// each of its alphanumeric runs to its end, marked with [`GLUED`]: `ann.lee@acme.co.uk` adds
/// `qzannleeacmecouk`, `qzleeacmecouk` and `qzacmecouk` (`uk` is a word already). So
/// `from:acme.co.uk` is the one term `qzacmecouk*`, a short doclist, where the phrase
/// `acme co uk*` read the doclists of `co` and `uk*` (`com*` is in nearly every message).
/// Glued words already present are not repeated, so the function is idempotent.
pub(crate) fn sender_index(raw: &str) -> String {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let mut out = words.join(" ");
    let mut added: Vec<String> = Vec::new();
    for word in &words {
        let runs = alnum_runs(word);
        for start in 0..runs.len().saturating_sub(1) {
            let glued = format!("{GLUED}{}", runs[start..].concat());
            if !words.contains(&glued.as_str()) && !added.contains(&glued) {
                added.push(glued);
            }
        }
    }
    for g in added {
        out.push(' ');
        out.push_str(&g);
    }
    out
}

/// The runs of letters and digits in `s`, as the tokenizer splits a word.
fn alnum_runs(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The FTS5 expression of a query's words and `from:` (None: filters only): the words in the
/// subject and the body, `from:` in the `sender` column.
fn search_expr(q: &SearchQuery) -> Option<String> {
    let words = q.fts.as_ref().map(|w| format!("{{subject body}} : ({w})"));
    let sender = q.from.as_deref().and_then(sender_term);
    match (words, sender) {
        (Some(w), Some(f)) => Some(format!("{w} AND {f}")),
        (w, f) => w.or(f),
    }
}

/// The FTS5 term for `from:VALUE` in the `sender` column (see [`sender_index`]):
/// - a value with spaces is a phrase of its words, the last a prefix (`from:"greta mül"`);
/// - a value of one alphanumeric run matches the start of any sender word (`from:greta`,
///   `from:+4930`, `from:@acme`);
/// - a value with punctuation between runs is glued to one word and matches the start of a
///   glued tail of an address or name (`from:acme.com`, `from:ann.lee@acme`, `from:o'brien`).
///
/// None when the value has no letter or digit at all (it can match nothing).
fn sender_term(value: &str) -> Option<String> {
    Some(match alnum_runs(value).as_slice() {
        [] => return None,
        _ if value.chars().any(char::is_whitespace) => format!("sender : {}*", quote(value)),
        [one] => format!("sender : {}*", quote(one)),
        more => format!("sender : {}*", quote(&format!("{GLUED}{}", more.concat()))),
    })
}

impl Store {
    /// The newest `limit` hits for a query.
    ///
    /// Words and `from:` are one FTS5 expression (words in the subject and body, `from:` in
    /// the `sender` column), so FTS5 intersects the doclists and walks the result newest
    /// first: a common word costs the same as a rare one, and `refund from:acme.com` as much
    /// as either. With a date range, the walk stops at the [`FTS_BUDGET`]th newest match (a
    /// rowid floor FTS5 starts from); when those do not hold the answer, the date range is
    /// walked instead (`messages_time`, newest
    /// first), keeping the full-text matches: `refund before:DATE` read every newer match (4 s
    /// at a million messages; now 10 ms, and 87 ms for `the` in 2 months of 3). Filters alone
    /// walk the messages newest first (`messages_time` for a date range) and stop at the
    /// limit. Hits come newest first: by arrival, or by time when the date range was walked.
    pub fn search(&self, q: &SearchQuery, limit: usize) -> Result<Vec<SearchHit>> {
        self.search_via(q, limit, None)
    }

    /// [`Store::search`] with the driver chosen by the caller (tests hold the drivers to the
    /// same answers) or by the query.
    fn search_via(
        &self,
        q: &SearchQuery,
        limit: usize,
        forced: Option<Driver>,
    ) -> Result<Vec<SearchHit>> {
        if q.from.as_deref().is_some_and(|f| sender_term(f).is_none()) {
            return Ok(Vec::new());
        }
        let checked;
        let q = if q.fields.is_empty() && q.stage.is_none() {
            q
        } else {
            checked = q.check_fields(&self.fields).map_err(StoreError::Invalid)?;
            &checked
        };
        let expr = search_expr(q);
        let dated = q.after.is_some() || q.before.is_some();
        let by_conversation = q.has_conversation_filter();
        let driver = match (forced, &expr) {
            (Some(d), _) => d,
            // A conversation filter alone: its conversations, never every message.
            (None, None) if by_conversation => Driver::Conv,
            // Words and a conversation filter: the newest matches first (bounded), then the
            // filter's conversations, the match checked on each of their messages.
            (None, Some(e)) if by_conversation => match self.nth_newest_match(e, FTS_BUDGET)? {
                None => Driver::Fts,
                Some(floor) => {
                    let newest = self.search_via(q, limit, Some(Driver::FtsDownTo(floor)))?;
                    if newest.len() >= limit {
                        return Ok(newest);
                    }
                    Driver::Conv
                }
            },
            (None, Some(e)) if dated => match self.nth_newest_match(e, FTS_BUDGET)? {
                // Few matches in all: walking them is bounded.
                None => Driver::Fts,
                // The newest matches first; when they hold enough hits, that is the answer
                // (a date range has no contact-name hits). Otherwise walk the date range.
                Some(floor) => {
                    let newest = self.search_via(q, limit, Some(Driver::FtsDownTo(floor)))?;
                    if newest.len() >= limit {
                        return Ok(newest);
                    }
                    Driver::TimeMatch
                }
            },
            (None, Some(_)) => Driver::Fts,
            (None, None) if dated => Driver::Time,
            (None, None) => Driver::Rowid,
        };
        if driver == Driver::Conv {
            return self.search_by_conversations(q, expr.as_deref(), limit);
        }
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        let snippet_fn = match (&q.fts, &q.from) {
            // The column the words matched best (they match the subject and the body only).
            (Some(_), None) => "snippet(messages_fts, -1, '«', '»', '…', 12)",
            // With `from:` the sender column matches too: the body.
            (Some(_), Some(_)) => "snippet(messages_fts, 1, '«', '»', '…', 12)",
            (None, _) => "substr(m.body, 1, 120)",
        };
        // Where the full-text table is not the outer loop, the snippet is made for the rows
        // returned only, by a lookup of each one.
        let snippet = match (driver, &expr, &q.fts) {
            (Driver::TimeMatch | Driver::Time | Driver::Rowid | Driver::Conv, Some(e), Some(_)) => {
                params.push(e.clone().into());
                format!(
                    "(SELECT {snippet_fn} FROM messages_fts
                      WHERE messages_fts MATCH ? AND messages_fts.rowid = m.id)"
                )
            }
            _ => snippet_fn.to_string(),
        };
        // CROSS JOIN fixes the join order (the full-text table or its matches outside).
        let (from_sql, order) = match driver {
            Driver::Fts | Driver::FtsDownTo(_) => (
                "messages_fts CROSS JOIN messages m NOT INDEXED ON m.id = messages_fts.rowid",
                "messages_fts.rowid DESC",
            ),
            Driver::TimeMatch | Driver::Time => (
                "messages m INDEXED BY messages_time",
                "m.created_at DESC, m.id DESC",
            ),
            Driver::Rowid | Driver::Conv => ("messages m NOT INDEXED", "m.id DESC"),
        };
        if let Some(expr) = &expr {
            match driver {
                Driver::Fts => {
                    params.push(expr.clone().into());
                    conds.push("messages_fts MATCH ?".into());
                }
                Driver::FtsDownTo(floor) => {
                    params.push(expr.clone().into());
                    conds.push("messages_fts MATCH ?".into());
                    // FTS5 starts its walk within the rowid range.
                    params.push(floor.into());
                    conds.push("messages_fts.rowid >= ?".into());
                }
                Driver::TimeMatch => {
                    params.push(expr.clone().into());
                    conds.push(
                        "m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)"
                            .into(),
                    );
                }
                // The reference walks for tests: every row, the match checked on each.
                Driver::Time | Driver::Rowid | Driver::Conv => {
                    params.push(expr.clone().into());
                    conds.push(
                        "EXISTS (SELECT 1 FROM messages_fts
                                 WHERE messages_fts MATCH ? AND messages_fts.rowid = m.id)"
                            .into(),
                    );
                }
            }
        }
        filter_conds(q, &mut conds, &mut params);
        // The conversation filters and a restricted scope, checked on each message's
        // conversation.
        let scope = self.scope_and();
        let conversation_join = if by_conversation || !scope.is_empty() {
            conversation_conds(q, 0, &mut conds, &mut params);
            "CROSS JOIN conversations c ON c.id = m.conversation_id"
        } else {
            ""
        };
        let mut where_sql = conds.join(" AND ");
        if !scope.is_empty() {
            where_sql = format!(
                "({}){scope}",
                if where_sql.is_empty() {
                    "1=1"
                } else {
                    &where_sql
                }
            );
        }
        let where_sql = if where_sql.is_empty() {
            "1=1".to_string()
        } else {
            where_sql
        };
        params.push((limit as i64).into());
        let sql = format!(
            "SELECT m.id, m.conversation_id, m.contact_id, ct.name, m.channel, m.direction,
                    m.created_at, {snippet}
             FROM {from_sql} {conversation_join} JOIN contacts ct ON ct.id = m.contact_id
             WHERE {where_sql} ORDER BY {order} LIMIT ?"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut hits = stmt
            .query_map(rusqlite::params_from_iter(params), hit_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(StoreError::from)?;
        // Contacts whose name matches the words, when the query is words alone.
        if let Some(fts) = &q.fts
            && q.from.is_none()
            && q.channel.is_none()
            && q.direction.is_none()
            && q.after.is_none()
            && q.before.is_none()
            && !by_conversation
        {
            // The contact's newest conversation the scope sees (none: no hit).
            let mut stmt = self.conn().prepare_cached(&format!(
                "SELECT cv.id, cv.contact_id, ct.name, cv.last_channel, cv.last_activity
                 FROM contacts_fts JOIN contacts ct ON ct.id = contacts_fts.rowid
                 JOIN conversations cv ON cv.id = (SELECT c.id FROM conversations c
                     WHERE c.contact_id = ct.id{scope} ORDER BY c.last_activity DESC LIMIT 1)
                 WHERE contacts_fts MATCH ?1 AND ct.merged_into IS NULL
                 ORDER BY contacts_fts.rowid DESC LIMIT ?2"
            ))?;
            let contact_hits = stmt.query_map((fts, limit as i64), |r| {
                Ok(SearchHit {
                    message_id: None,
                    conversation_id: r.get(0)?,
                    contact_id: r.get(1)?,
                    contact_name: r.get(2)?,
                    channel: r.get(3)?,
                    direction: None,
                    created_at: r.get(4)?,
                    snippet: format!("contact «{}»", r.get::<_, String>(2)?),
                })
            })?;
            let mut named = contact_hits.collect::<rusqlite::Result<Vec<_>>>()?;
            named.retain(|h| !hits.iter().any(|m| m.contact_id == h.contact_id));
            named.extend(hits);
            hits = named;
            hits.truncate(limit);
        }
        Ok(hits)
    }

    /// [`Driver::Conv`]: the conversations the filters select, newest activity first, and
    /// each one's newest messages that pass the message filters (and match `expr`). A
    /// conversation's `last_activity` is at least the time of each of its messages, so the
    /// walk stops at the first conversation older than the `limit`th hit kept: it reads the
    /// filter's index and the messages of the few newest conversations, not every message.
    /// Hits come newest first by time.
    fn search_by_conversations(
        &self,
        q: &SearchQuery,
        expr: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>> {
        let mut hits: Vec<SearchHit> = Vec::new();
        if limit == 0 {
            return Ok(hits);
        }
        let (walk_sql, walk_params) = conversation_walk(q, self.scope_and());
        let (messages_sql, head, tail) = conversation_messages(q, expr, limit);
        let mut walk = self.conn().prepare_cached(&walk_sql)?;
        let mut messages = self.conn().prepare_cached(&messages_sql)?;
        let mut rows = walk.query(rusqlite::params_from_iter(walk_params))?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let last_activity: Millis = r.get(1)?;
            if hits.len() >= limit && last_activity < hits[limit - 1].created_at {
                break;
            }
            let params = head
                .iter()
                .cloned()
                .chain(std::iter::once(id.into()))
                .chain(tail.iter().cloned());
            let found = messages
                .query_map(rusqlite::params_from_iter(params), hit_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if found.is_empty() {
                continue;
            }
            hits.extend(found);
            hits.sort_by_key(|h| std::cmp::Reverse((h.created_at, h.message_id)));
            hits.truncate(limit);
        }
        Ok(hits)
    }

    /// The conversations a query's conversation filters (`tag:`, `assignee:`, `status:`,
    /// `priority:`, `is:vip`) select, newest activity first, as queue rows (at most `limit`),
    /// and how many there are in all (`braid list --tag`, `--assignee`). Words and message
    /// filters are not looked at.
    pub fn filtered_conversations(
        &self,
        q: &SearchQuery,
        limit: usize,
    ) -> Result<(Vec<super::QueueRow>, i64)> {
        let q = &q.check_fields(&self.fields).map_err(StoreError::Invalid)?;
        let scope = self.scope_and();
        let (sql, params) =
            conversation_select(q, super::conversations::QUEUE_COLUMNS, true, scope);
        let mut stmt = self.conn().prepare_cached(&format!("{sql} LIMIT ?"))?;
        let rows = stmt
            .query_map(
                rusqlite::params_from_iter(
                    params
                        .iter()
                        .cloned()
                        .chain(std::iter::once((limit as i64).into())),
                ),
                super::conversations::queue_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let (sql, params) = conversation_select(q, "1", false, scope);
        let total = self
            .conn()
            .prepare_cached(&format!("SELECT count(*) FROM ({sql})"))?
            .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
        Ok((rows, total))
    }

    /// The query plans (`EXPLAIN QUERY PLAN`, one line per step) of the statements a
    /// conversation filter alone runs: the walk of the conversations and the read of each
    /// one's messages.
    #[cfg(test)]
    pub(crate) fn search_plan(&self, q: &SearchQuery) -> Result<Vec<String>> {
        let (walk_sql, walk_params) = conversation_walk(q, self.scope_and());
        let (messages_sql, head, tail) = conversation_messages(q, search_expr(q).as_deref(), 50);
        let mut out = Vec::new();
        let statements = [
            (walk_sql, walk_params),
            (
                messages_sql,
                head.into_iter()
                    .chain(std::iter::once(1i64.into()))
                    .chain(tail)
                    .collect(),
            ),
        ];
        for (sql, params) in statements {
            let mut stmt = self.conn().prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })?;
            out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
        }
        Ok(out)
    }

    /// The rowid of the `n`th newest message a full-text expression matches (None: it
    /// matches fewer). Reads at most `n` entries of the index.
    fn nth_newest_match(&self, expr: &str, n: i64) -> Result<Option<i64>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1
             ORDER BY rowid DESC LIMIT 1 OFFSET ?2",
        )?;
        Ok(stmt.query_row((expr, n - 1), |r| r.get(0)).optional()?)
    }

    /// The conversations of the newest `limit` hits, each once with its newest hit (for the
    /// row's snippet), the matching messages read, and whether more hits exist past `limit`
    /// (one hit more is read to know).
    pub fn search_conversation_hits(
        &self,
        q: &SearchQuery,
        limit: usize,
    ) -> Result<ConversationHits> {
        let mut hits = self.search(q, limit + 1)?;
        let more = hits.len() > limit;
        hits.truncate(limit);
        let mut seen = std::collections::HashSet::new();
        let mut out = ConversationHits {
            more,
            ..Default::default()
        };
        for h in hits {
            if let Some(m) = h.message_id {
                out.messages.push(m);
            }
            if seen.insert(h.conversation_id) {
                out.rows.push((self.conversation(h.conversation_id)?, h));
            }
        }
        Ok(out)
    }

    /// Search, then the conversations of the hits as queue rows (first hit order, no repeats).
    pub fn search_conversations(
        &self,
        q: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<super::QueueRow>> {
        let hits = self.search(q, limit)?;
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for h in hits {
            if seen.insert(h.conversation_id) {
                rows.push(self.conversation(h.conversation_id)?);
            }
        }
        Ok(rows)
    }
}

/// The conditions of the `channel:`, `is:`, `after:` and `before:` filters on `m`.
fn filter_conds(
    q: &SearchQuery,
    conds: &mut Vec<String>,
    params: &mut Vec<rusqlite::types::Value>,
) {
    if let Some(ch) = q.channel {
        conds.push("m.channel = ?".into());
        params.push(ch.as_str().to_string().into());
    }
    if let Some(d) = q.direction {
        conds.push("m.direction = ?".into());
        params.push(d.as_str().to_string().into());
    }
    if let Some(a) = q.after {
        conds.push("m.created_at >= ?".into());
        params.push(a.into());
    }
    if let Some(b) = q.before {
        conds.push("m.created_at < ?".into());
        params.push(b.into());
    }
}

/// One message hit of the search statements' columns.
fn hit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SearchHit> {
    Ok(SearchHit {
        message_id: Some(r.get(0)?),
        conversation_id: r.get(1)?,
        contact_id: r.get(2)?,
        contact_name: r.get(3)?,
        channel: r.get(4)?,
        direction: Some(r.get(5)?),
        created_at: r.get(6)?,
        snippet: crate::sanitize::line(&r.get::<_, String>(7)?),
    })
}

/// The conditions of the conversation filters on `c` (the conversation) and `ct` (its
/// contact), from the `skip_tags`th tag on.
fn conversation_conds(
    q: &SearchQuery,
    skip_tags: usize,
    conds: &mut Vec<String>,
    params: &mut Vec<rusqlite::types::Value>,
) {
    for tag in q.tags.iter().skip(skip_tags) {
        conds.push(
            "EXISTS (SELECT 1 FROM tags tt WHERE tt.conversation_id = c.id AND tt.tag = ?)".into(),
        );
        params.push(tag.clone().into());
    }
    match &q.assignee {
        Some(Some(who)) => {
            conds.push("c.assignee = ?".into());
            params.push(who.clone().into());
        }
        Some(None) => conds.push("c.assignee IS NULL".into()),
        None => {}
    }
    if let Some(s) = q.status {
        conds.push("c.status = ?".into());
        params.push(s.as_str().to_string().into());
    }
    if let Some(p) = q.priority {
        conds.push("c.priority = ?".into());
        params.push(p.as_str().to_string().into());
    }
    if q.vip {
        conds.push("ct.vip = 1".into());
    }
    if let Some(id) = q.conversation {
        conds.push("c.id = ?".into());
        params.push(id.0.into());
    }
    match &q.team {
        Some(Some(team)) => {
            conds.push("c.team = ?".into());
            params.push(team.clone().into());
        }
        Some(None) => conds.push("c.team IS NULL".into()),
        None => {}
    }
    // The contact's fields, stage and score (values checked by `SearchQuery::check_fields`).
    for f in &q.fields {
        if f.numeric {
            conds.push(format!(
                "EXISTS (SELECT 1 FROM contact_fields cf WHERE cf.contact_id = c.contact_id \
                 AND cf.name = ? AND cf.num {} ?)",
                f.cmp.sql()
            ));
            params.push(f.name.clone().into());
            params.push(f.value.parse::<f64>().unwrap_or(f64::NAN).into());
        } else {
            conds.push(
                "EXISTS (SELECT 1 FROM contact_fields cf WHERE cf.contact_id = c.contact_id \
                 AND cf.name = ? AND cf.value = ? COLLATE NOCASE)"
                    .into(),
            );
            params.push(f.name.clone().into());
            params.push(f.value.clone().into());
        }
    }
    match &q.stage {
        Some(Some(stage)) => {
            conds.push(
                "EXISTS (SELECT 1 FROM contacts cs WHERE cs.id = c.contact_id AND cs.stage = ?)"
                    .into(),
            );
            params.push(stage.clone().into());
        }
        Some(None) => conds.push(
            "EXISTS (SELECT 1 FROM contacts cs WHERE cs.id = c.contact_id AND cs.stage IS NULL)"
                .into(),
        ),
        None => {}
    }
    if let Some((cmp, n)) = q.score {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM contacts cs WHERE cs.id = c.contact_id AND cs.lead_score {} ?)",
            cmp.sql()
        ));
        params.push(n.into());
    }
}

/// The walk of [`Driver::Conv`]: the ids and `last_activity` of the conversations the filters
/// select, newest activity first. A tag drives from `tags_by_tag` (the tag's conversations);
/// otherwise the status or assignee index serves the filter and the order.
fn conversation_walk(q: &SearchQuery, scope: &str) -> (String, Vec<rusqlite::types::Value>) {
    conversation_select(q, "c.id, c.last_activity", false, scope)
}

/// The conversations the filters select, newest activity first: `columns` of each, the
/// contact joined as `ct` when `contact` (or `is:vip`) needs it; `scope`: the connection's
/// scope condition (`""` or `" AND (...)"`).
fn conversation_select(
    q: &SearchQuery,
    columns: &str,
    contact: bool,
    scope: &str,
) -> (String, Vec<rusqlite::types::Value>) {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    let mut from = match q.tags.first() {
        Some(tag) => {
            conds.push("t.tag = ?".into());
            params.push(tag.clone().into());
            "tags t INDEXED BY tags_by_tag CROSS JOIN conversations c ON c.id = t.conversation_id"
                .to_string()
        }
        None => "conversations c".to_string(),
    };
    if q.vip || contact {
        from.push_str(" JOIN contacts ct ON ct.id = c.contact_id");
    }
    conversation_conds(q, 1, &mut conds, &mut params);
    // A conversation last active before the range holds no message in it.
    if let Some(a) = q.after {
        conds.push("c.last_activity >= ?".into());
        params.push(a.into());
    }
    let where_sql = if conds.is_empty() {
        "1=1".to_string()
    } else {
        conds.join(" AND ")
    };
    (
        format!(
            "SELECT {columns} FROM {from} WHERE {where_sql}{scope}
             ORDER BY c.last_activity DESC, c.id DESC"
        ),
        params,
    )
}

/// The read of one conversation's messages for [`Driver::Conv`], newest first: the SQL, the
/// parameters before the conversation id and those after it.
fn conversation_messages(
    q: &SearchQuery,
    expr: Option<&str>,
    limit: usize,
) -> (
    String,
    Vec<rusqlite::types::Value>,
    Vec<rusqlite::types::Value>,
) {
    let mut head: Vec<rusqlite::types::Value> = Vec::new();
    let mut tail: Vec<rusqlite::types::Value> = Vec::new();
    let snippet_fn = match (&q.fts, &q.from) {
        (Some(_), None) => Some("snippet(messages_fts, -1, '«', '»', '…', 12)"),
        (Some(_), Some(_)) => Some("snippet(messages_fts, 1, '«', '»', '…', 12)"),
        (None, _) => None,
    };
    let snippet = match (snippet_fn, expr) {
        (Some(f), Some(e)) => {
            head.push(e.to_string().into());
            format!(
                "(SELECT {f} FROM messages_fts
                  WHERE messages_fts MATCH ? AND messages_fts.rowid = m.id)"
            )
        }
        _ => "substr(m.body, 1, 120)".to_string(),
    };
    let mut conds: Vec<String> = vec!["m.conversation_id = ?".into()];
    if let Some(e) = expr {
        tail.push(e.to_string().into());
        conds.push(
            "EXISTS (SELECT 1 FROM messages_fts
                     WHERE messages_fts MATCH ? AND messages_fts.rowid = m.id)"
                .into(),
        );
    }
    filter_conds(q, &mut conds, &mut tail);
    tail.push((limit as i64).into());
    (
        format!(
            "SELECT m.id, m.conversation_id, m.contact_id, ct.name, m.channel, m.direction,
                    m.created_at, {snippet}
             FROM messages m INDEXED BY messages_conversation_time
             JOIN contacts ct ON ct.id = m.contact_id
             WHERE {} ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
            conds.join(" AND ")
        ),
        head,
        tail,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_phrases_and_filters() {
        let q = SearchQuery::parse(
            r#"refund "order 1234" from:ann@x.org channel:email after:2026-01-02 inv*"#,
        )
        .unwrap();
        assert_eq!(q.fts.as_deref(), Some(r#""refund" "order 1234" "inv"*"#));
        assert_eq!(q.from.as_deref(), Some("ann@x.org"));
        assert_eq!(q.channel, Some(Channel::Email));
        assert_eq!(q.after, Some(1_767_312_000_000));
        let q = SearchQuery::parse(r#"from:"Ann Lee" refund via:"email""#).unwrap();
        assert_eq!(q.from.as_deref(), Some("ann lee"));
        assert_eq!(q.channel, Some(Channel::Email));
        assert_eq!(q.fts.as_deref(), Some(r#""refund""#));
        // An unclosed quote runs to the end.
        let q = SearchQuery::parse(r#"order from:"Ann Le"#).unwrap();
        assert_eq!(q.from.as_deref(), Some("ann le"));
    }

    #[test]
    fn assignee_me_is_the_agent() {
        let q = SearchQuery::parse_as("refund assignee:me", Some("eve")).unwrap();
        assert_eq!(q.assignee, Some(Some("eve".into())));
        assert_eq!(
            SearchQuery::resolve_me("refund Assignee:me tag:x", "eve"),
            "refund assignee:\"eve\" tag:x"
        );
        for agent in ["Eve Lee", "me", "none"] {
            let text = SearchQuery::resolve_me("assignee:me", agent);
            assert_eq!(
                SearchQuery::parse(&text).unwrap().assignee,
                Some(Some(agent.into()))
            );
        }
    }

    #[test]
    fn fts_syntax_in_input_is_data() {
        let q = SearchQuery::parse(r#"NEAR( a" OR -b ^c"#).unwrap();
        assert_eq!(q.fts.as_deref(), Some(r#""NEAR(" "a""" "OR" "-b" "^c""#));
        assert!(SearchQuery::parse("   ").is_err());
        assert!(SearchQuery::parse("channel:fax").is_err());
        assert!(SearchQuery::parse("after:yesterday").is_err());
    }

    /// Every driver that can answer a query gives the same hits: the walks by arrival the same
    /// list, the date walk the same hits by time; `from:` finds the messages whose sender has
    /// the words. On the demo workspace, for words, prefixes, phrases, `from:` and filters.
    #[test]
    fn every_driver_gives_the_same_hits() {
        let mut s = Store::open_in_memory().unwrap();
        let now = 1_767_225_600_000;
        crate::demo::generate(
            &mut s,
            &crate::demo::DemoOptions {
                messages: 4000,
                contacts: 400,
                ..Default::default()
            },
            now,
            &mut |_, _| {},
        )
        .unwrap();
        let day = |n: i64| {
            let t = time::OffsetDateTime::from_unix_timestamp((now - n * 86_400_000) / 1000)
                .unwrap()
                .date();
            format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
        };
        let some_name: String = s
            .conn()
            .query_row(
                // ASCII, so the check below can fold case as FTS5 does.
                "SELECT name FROM contacts WHERE name NOT GLOB '*[^ -~]*' ORDER BY id
                 LIMIT 1 OFFSET 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let email: String = s
            .conn()
            .query_row(
                "SELECT value FROM identities WHERE kind = 'email' AND value GLOB '*.*@*'
                 ORDER BY id LIMIT 1 OFFSET 3",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let (tag, agent): (String, String) = s
            .conn()
            .query_row(
                "SELECT (SELECT tag FROM tags GROUP BY tag ORDER BY count(*) DESC LIMIT 1),
                        (SELECT assignee FROM conversations WHERE assignee IS NOT NULL LIMIT 1)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let first = some_name.split_whitespace().next().unwrap().to_string();
        let last = some_name.split_whitespace().last().unwrap().to_string();
        let queries = [
            "refund".to_string(),
            "order".into(),
            "the".into(),
            "re*".into(),
            "ref*".into(),
            "refu*".into(),
            "\"tracking number\"".into(),
            format!("from:{first}"),
            format!("from:{last} order"),
            format!("from:\"{}\"", some_name.to_lowercase()),
            "from:gmail.com".into(),
            "from:mail.com".into(),
            "from:gmail.com the".into(),
            format!("from:{email}"),
            format!("from:{}", &email[..email.len() - 2]),
            format!("from:{}", email.split('@').nth(1).unwrap()),
            format!("from:{}@", email.split('@').next().unwrap()),
            "from:example".into(),
            "from:@".into(),
            "from:bob is:out".into(),
            "channel:telegram".into(),
            "is:note".into(),
            "is:out channel:email".into(),
            format!("after:{} before:{}", day(40), day(30)),
            format!("before:{}", day(60)),
            format!("after:{} channel:webchat", day(10)),
            format!("from:{first} after:{}", day(45)),
            format!("refund after:{}", day(20)),
            format!("the from:gmail.com before:{} is:in", day(5)),
            // More matches than FTS_BUDGET, few of them in the range: the date range is walked.
            format!("the before:{}", day(80)),
            format!("the after:{} before:{}", day(50), day(49)),
            format!("order from:gmail.com before:{}", day(70)),
            // Conversation and contact filters, alone and with words and message filters.
            format!("tag:{tag}"),
            format!("tag:{tag} is:in"),
            format!("tag:{tag} the"),
            format!("tag:{tag} after:{}", day(30)),
            "status:open".into(),
            "status:resolved refund".into(),
            "status:pending channel:email".into(),
            format!("assignee:{agent}"),
            format!("assignee:{agent} status:open the"),
            "assignee:none".into(),
            "is:vip".into(),
            "is:vip the".into(),
            "priority:urgent".into(),
            format!("priority:high from:{first}"),
            format!("the status:open before:{}", day(20)),
        ];
        let all = 1_000_000;
        let mut checked = 0;
        // Queries with a date range whose matches are more than FTS_BUDGET: the default search
        // may walk the range.
        let mut walked_range = 0;
        for text in &queries {
            let q = SearchQuery::parse(text).unwrap();
            let ids = |hits: Vec<SearchHit>| -> Vec<(Millis, MessageId)> {
                // (Contact-name hits come first for words alone; the drivers find messages.)
                hits.into_iter()
                    .filter_map(|h| Some((h.created_at, h.message_id?)))
                    .collect()
            };
            let reference = if q.fts.is_some() || q.from.is_some() {
                Driver::Fts
            } else {
                Driver::Rowid
            };
            let full = ids(s.search_via(&q, all, Some(reference)).unwrap());
            assert!(
                full.windows(2).all(|w| w[0].1 > w[1].1),
                "{text}: by arrival"
            );
            // `from:` alone: exactly the messages whose sender has, for a value with spaces,
            // its words in a row (the last as a prefix); for one alphanumeric run, a word
            // starting with it; for several runs, a word of several runs, glued from one of
            // them (not the last) to its end, that starts with the glued value.
            if let (Some(from), None, false) = (&q.from, &q.fts, q.has_conversation_filter()) {
                let runs = |s: &str| -> Vec<String> {
                    s.split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect()
                };
                let want = runs(from);
                let phrase = from.chars().any(char::is_whitespace);
                let mut stmt = s
                    .conn()
                    .prepare(
                        "SELECT id, created_at, sender, direction FROM messages ORDER BY id DESC",
                    )
                    .unwrap();
                let brute: Vec<(Millis, MessageId)> = stmt
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, MessageId>(0)?,
                            r.get::<_, Millis>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Direction>(3)?,
                        ))
                    })
                    .unwrap()
                    .map(|r| r.unwrap())
                    .filter(|(_, _, _, dir)| q.direction.is_none_or(|d| d == *dir))
                    .filter(|(_, _, sender, _)| {
                        let sender = sender.clone().unwrap_or_default().to_lowercase();
                        if want.is_empty() {
                            return false;
                        }
                        if phrase {
                            let words = runs(&sender);
                            return words.windows(want.len()).any(|w| {
                                w.iter().zip(&want).enumerate().all(|(i, (have, want_w))| {
                                    if i + 1 == want.len() {
                                        have.starts_with(want_w.as_str())
                                    } else {
                                        have == want_w
                                    }
                                })
                            });
                        }
                        // The sender's own words, without the glued ones the index adds.
                        let own = sender.split_whitespace().filter(|w| !w.starts_with(GLUED));
                        if let [one] = want.as_slice() {
                            return own.flat_map(runs).any(|r| r.starts_with(one.as_str()));
                        }
                        let glued = want.concat();
                        own.map(runs).any(|r| {
                            (0..r.len().saturating_sub(1))
                                .any(|i| r[i..].concat().starts_with(&glued))
                        })
                    })
                    .map(|(id, at, _, _)| (at, id))
                    .filter(|(at, _)| q.after.is_none_or(|a| *at >= a))
                    .collect();
                assert_eq!(full, brute, "{text}: the messages from the sender");
            }
            let mut by_time = full.clone();
            by_time.sort_by(|a, b| b.cmp(a));
            let mut drivers = vec![reference];
            let dated = q.after.is_some() || q.before.is_some();
            if dated {
                drivers.push(Driver::Time);
            }
            if q.has_conversation_filter() {
                drivers.push(Driver::Conv);
            }
            if reference == Driver::Fts {
                drivers.push(Driver::Rowid);
                if dated {
                    drivers.push(Driver::TimeMatch);
                }
                let floor =
                    search_expr(&q).and_then(|e| s.nth_newest_match(&e, FTS_BUDGET).unwrap());
                if let Some(f) = floor {
                    drivers.push(Driver::FtsDownTo(f));
                    walked_range += usize::from(dated);
                }
            }
            for d in drivers {
                for limit in [all, 20, 1] {
                    let by_date = matches!(d, Driver::Time | Driver::TimeMatch | Driver::Conv);
                    // The capped walk: the matches down to its floor only.
                    let down_to = match d {
                        Driver::FtsDownTo(f) => f,
                        _ => i64::MIN,
                    };
                    let want: Vec<_> = if by_date { &by_time } else { &full }
                        .iter()
                        .copied()
                        .filter(|(_, id)| id.0 >= down_to)
                        .take(limit)
                        .collect();
                    let hits = s.search_via(&q, limit, Some(d)).unwrap();
                    // Contact-name hits take their place in the limit first.
                    let names = hits.iter().filter(|h| h.message_id.is_none()).count();
                    let got = ids(hits);
                    let want: Vec<_> = want.into_iter().take(limit - names).collect();
                    assert_eq!(got, want, "{text} via {d:?}, limit {limit}");
                    checked += 1;
                }
            }
            // The chosen driver is one of them: the default search gives one of those answers.
            let auto = s.search(&q, 20).unwrap();
            let names = auto.iter().filter(|h| h.message_id.is_none()).count();
            let auto = ids(auto);
            let time20: Vec<_> = by_time.iter().copied().take(20 - names).collect();
            let arrival20: Vec<_> = full.iter().copied().take(20 - names).collect();
            assert!(auto == arrival20 || auto == time20, "{text}");
            // (`mail.com` starts no run of `gmail.com`: it matches nobody, as the brute force
            // above agrees.)
            assert!(
                !full.is_empty()
                    || text.contains("example")
                    || text == "from:@"
                    || text == "from:mail.com"
                    || q.has_conversation_filter(),
                "{text} finds something"
            );
        }
        assert!(checked > 80, "{checked}");
        assert!(walked_range >= 2, "{walked_range}");
    }
}
