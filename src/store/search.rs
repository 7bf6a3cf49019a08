//! Full-text search (FTS5) over message bodies, subjects, notes and contact names.
//!
//! Query language, as typed after `/`, on `:search` or `braid search`:
//! plain words (all must match, prefix with `word*`), `"a phrase"`, and filters
//! `from:NAME-OR-ADDRESS`, `channel:email|telegram|webchat`, `is:in|out|note`,
//! `after:YYYY-MM-DD`, `before:YYYY-MM-DD`. `from:` takes the messages of the contacts whose
//! name or one of whose addresses has words starting with its words, like notmuch's `from:`
//! (`from:ann@x` finds ann@x.org, `from:harr` finds Harris; `from:arris` does not). Results come
//! newest first (by arrival), so a common word costs the same as a rare one: FTS5 walks its
//! index backwards and stops at the limit. [`Store::search`] says what each kind of query costs.

use super::{Result, Store, StoreError};
use crate::model::{Channel, ContactId, ConversationId, Direction, MessageId, Millis};
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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

impl SearchQuery {
    pub fn parse(input: &str) -> std::result::Result<SearchQuery, String> {
        let mut q = SearchQuery::default();
        let mut terms: Vec<String> = Vec::new();
        let mut rest = input.trim();
        while !rest.is_empty() {
            if let Some(stripped) = rest.strip_prefix('"') {
                let end = stripped.find('"').unwrap_or(stripped.len());
                let phrase = &stripped[..end];
                if !phrase.trim().is_empty() {
                    terms.push(quote(phrase));
                }
                rest = stripped.get(end + 1..).unwrap_or("").trim_start();
                continue;
            }
            // `key:"several words"` is one filter value.
            let quoted = rest
                .split_once(':')
                .filter(|(key, value)| {
                    value.starts_with('"') && !key.is_empty() && !key.contains(char::is_whitespace)
                })
                .map(|(key, value)| {
                    let inner = &value[1..];
                    let close = inner.find('"').unwrap_or(inner.len());
                    let after = inner.get(close + 1..).unwrap_or("");
                    (format!("{key}:{}", &inner[..close]), after)
                });
            let owned;
            let word = if let Some((w, after)) = quoted {
                owned = w;
                rest = after.trim_start();
                owned.as_str()
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let word = &rest[..end];
                rest = rest[end..].trim_start();
                word
            };
            if let Some((key, value)) = word.split_once(':')
                && !value.is_empty()
            {
                match key.to_ascii_lowercase().as_str() {
                    "from" => {
                        q.from = Some(value.to_lowercase());
                        continue;
                    }
                    "channel" | "via" => {
                        q.channel = Some(value.parse().map_err(|e| format!("{e}"))?);
                        continue;
                    }
                    "is" => {
                        q.direction = Some(value.parse().map_err(|e| format!("{e}"))?);
                        continue;
                    }
                    "after" | "since" => {
                        q.after = Some(parse_date(value)?);
                        continue;
                    }
                    "before" | "until" => {
                        q.before = Some(parse_date(value)?);
                        continue;
                    }
                    _ => {}
                }
            }
            if let Some(prefix) = word.strip_suffix('*') {
                if !prefix.is_empty() {
                    terms.push(format!("{}*", quote(prefix)));
                }
            } else {
                terms.push(quote(word));
            }
        }
        if !terms.is_empty() {
            q.fts = Some(terms.join(" "));
        }
        if q == SearchQuery::default() {
            return Err("empty search".into());
        }
        Ok(q)
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

/// How a search reaches its rows. Chosen per query from what the filters select, so every
/// query reads a bounded number of rows whatever the size of the store (see [`Store::search`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Walk the full-text index newest first and check the filters on each hit.
    Fts,
    /// Read the messages of the `from:` contacts (`messages_contact_time`), then check the rest.
    Contacts,
    /// Walk `messages_time` backwards from the end of the date range.
    Time,
    /// Walk every message newest first (by rowid) and stop at the limit.
    Rowid,
}

/// Up to this many messages of the `from:` contacts, read them all and sort when there is no
/// word to search: cheaper than walking the store for a rare sender.
const CONTACT_ROWS_FILTER: i64 = 20_000;

impl Store {
    /// The contacts a `from:` value names: each word of it starts a word of the contact's name
    /// or of one of their addresses (`from:ann@x` finds ann@x.org; `from:harr` finds Harris).
    /// Both through full-text indexes, so the cost does not grow with the number of contacts.
    fn contacts_named_by(&self, from: &str) -> Result<Vec<i64>> {
        if !from.chars().any(char::is_alphanumeric) {
            return Ok(Vec::new());
        }
        let pattern = format!("{}*", quote(from));
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.contact_id FROM identities_fts JOIN identities i ON i.id = identities_fts.rowid
             WHERE identities_fts MATCH ?1
             UNION ALL
             SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?1",
        )?;
        let mut ids = stmt
            .query_map([&pattern], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        // (Sorted here: UNION's temporary B-tree cost more for 10,000 contacts.)
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The newest `limit` hits for a query.
    ///
    /// Costs, on a million messages: the full-text index gives hits newest first, so words cost
    /// the same whether common or rare. A `from:` filter names a set of contacts; when they
    /// have few messages (fewer than the square root of the store's for a word search, since
    /// each then costs a probe of the index, [`CONTACT_ROWS_FILTER`] without words) those are
    /// read through `messages_contact_time` and the rest is checked on them; otherwise the
    /// walk finds the contacts' messages quickly because they are common. A date range with no
    /// words walks `messages_time`. Hits come newest first: by arrival, or by time when the
    /// query is a date range without words.
    pub fn search(&self, q: &SearchQuery, limit: usize) -> Result<Vec<SearchHit>> {
        self.search_via(q, limit, None)
    }

    /// [`Store::search`] with the driver chosen by the caller (tests hold every driver to the
    /// same answers) or by [`Store::search_driver`].
    fn search_via(
        &self,
        q: &SearchQuery,
        limit: usize,
        forced: Option<Driver>,
    ) -> Result<Vec<SearchHit>> {
        let contacts = match &q.from {
            Some(from) => {
                let ids = self.contacts_named_by(from)?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                Some(serde_json::to_string(&ids).map_err(|e| StoreError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        let driver = match forced {
            Some(d) => d,
            None => self.search_driver(q, contacts.as_deref(), limit)?,
        };
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(fts) = &q.fts {
            params.push(fts.clone().into());
            conds.push("messages_fts MATCH ?".into());
        }
        // CROSS JOIN fixes the join order: SQLite's planner would put the full-text table
        // outside whatever it is told.
        let (from_sql, order) = match driver {
            Driver::Fts => (
                "messages_fts CROSS JOIN messages m NOT INDEXED ON m.id = messages_fts.rowid",
                "messages_fts.rowid DESC",
            ),
            Driver::Contacts if q.fts.is_some() => (
                "messages m INDEXED BY messages_contact_time
                 CROSS JOIN messages_fts ON messages_fts.rowid = m.id",
                "m.id DESC",
            ),
            Driver::Contacts => ("messages m INDEXED BY messages_contact_time", "m.id DESC"),
            Driver::Time => (
                "messages m INDEXED BY messages_time",
                "m.created_at DESC, m.id DESC",
            ),
            Driver::Rowid => ("messages m NOT INDEXED", "m.id DESC"),
        };
        let snippet = if q.fts.is_some() {
            "snippet(messages_fts, -1, '«', '»', '…', 12)"
        } else {
            "substr(m.body, 1, 120)"
        };
        if let Some(ids) = &contacts {
            conds.push("m.contact_id IN (SELECT value FROM json_each(?))".into());
            params.push(ids.clone().into());
        }
        filter_conds(q, &mut conds, &mut params);
        let where_sql = conds.join(" AND ");
        let where_sql = if where_sql.is_empty() {
            "1=1".to_string()
        } else {
            where_sql
        };
        params.push((limit as i64).into());
        let sql = format!(
            "SELECT m.id, m.conversation_id, m.contact_id, ct.name, m.channel, m.direction,
                    m.created_at, {snippet}
             FROM {from_sql} JOIN contacts ct ON ct.id = m.contact_id
             WHERE {where_sql} ORDER BY {order} LIMIT ?"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut hits = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
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
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(StoreError::from)?;
        // Contacts whose name matches the words, when the query is words alone.
        if let Some(fts) = &q.fts
            && q.from.is_none()
            && q.channel.is_none()
            && q.direction.is_none()
            && q.after.is_none()
            && q.before.is_none()
        {
            let mut stmt = self.conn().prepare_cached(
                "SELECT c.id, c.contact_id, ct.name, c.last_channel, c.last_activity
                 FROM contacts_fts JOIN contacts ct ON ct.id = contacts_fts.rowid
                 JOIN conversations c ON c.id = (SELECT id FROM conversations
                     WHERE contact_id = ct.id ORDER BY last_activity DESC LIMIT 1)
                 WHERE contacts_fts MATCH ?1 AND ct.merged_into IS NULL
                 ORDER BY contacts_fts.rowid DESC LIMIT ?2",
            )?;
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

    /// Which [`Driver`] reads the fewest rows for this query.
    fn search_driver(
        &self,
        q: &SearchQuery,
        contacts: Option<&str>,
        limit: usize,
    ) -> Result<Driver> {
        if let Some(ids) = contacts {
            // How many messages the contacts have (in the date range), counted through the
            // index up to the most the Contacts driver would take.
            let cap = if q.fts.is_some() {
                // Each of those R messages then costs a probe of the full-text index (~20 µs);
                // the walk of the index meets them at their density, reading about
                // limit·M/R rows (~0.4 µs each). Probing is cheaper while R² < M·limit/50.
                let newest: i64 = self.conn().query_row(
                    "SELECT coalesce(max(id), 0) FROM messages",
                    [],
                    |r| r.get(0),
                )?;
                ((newest as f64) * (limit.max(1) as f64) / 50.0).sqrt() as i64
            } else {
                CONTACT_ROWS_FILTER
            };
            let mut conds = vec!["contact_id IN (SELECT value FROM json_each(?))".to_string()];
            let mut params: Vec<rusqlite::types::Value> = vec![ids.to_string().into()];
            if let Some(a) = q.after {
                conds.push("created_at >= ?".into());
                params.push(a.into());
            }
            if let Some(b) = q.before {
                conds.push("created_at < ?".into());
                params.push(b.into());
            }
            params.push((cap + 1).into());
            let sql = format!(
                "SELECT count(*) FROM (SELECT 1 FROM messages INDEXED BY messages_contact_time
                 WHERE {} LIMIT ?)",
                conds.join(" AND ")
            );
            let rows: i64 = self
                .conn()
                .prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
            if rows <= cap {
                return Ok(Driver::Contacts);
            }
        }
        Ok(if q.fts.is_some() {
            Driver::Fts
        } else if q.after.is_some() || q.before.is_some() {
            Driver::Time
        } else {
            Driver::Rowid
        })
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
    fn fts_syntax_in_input_is_data() {
        let q = SearchQuery::parse(r#"NEAR( a" OR -b ^c"#).unwrap();
        assert_eq!(q.fts.as_deref(), Some(r#""NEAR(" "a""" "OR" "-b" "^c""#));
        assert!(SearchQuery::parse("   ").is_err());
        assert!(SearchQuery::parse("channel:fax").is_err());
        assert!(SearchQuery::parse("after:yesterday").is_err());
    }

    /// Every driver that can answer a query gives the same hits: the drivers that go by arrival
    /// the same list, the date walk the same hits by time. On the demo workspace, for words,
    /// prefixes, phrases, `from:` with few and many contacts, and every filter.
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
                "SELECT name FROM contacts ORDER BY id LIMIT 1 OFFSET 7",
                [],
                |r| r.get(0),
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
            "from:gmail.com the".into(),
            "from:example".into(),
            "channel:telegram".into(),
            "is:note".into(),
            "is:out channel:email".into(),
            format!("after:{} before:{}", day(40), day(30)),
            format!("before:{}", day(60)),
            format!("after:{} channel:webchat", day(10)),
            format!("from:{first} after:{}", day(45)),
            format!("refund after:{}", day(20)),
            format!("the from:gmail.com before:{} is:in", day(5)),
        ];
        let all = 1_000_000;
        let mut checked = 0;
        for text in &queries {
            let q = SearchQuery::parse(text).unwrap();
            let ids = |hits: Vec<SearchHit>| -> Vec<(Millis, MessageId)> {
                // (Contact-name hits come first for words alone; the drivers find messages.)
                hits.into_iter()
                    .filter_map(|h| Some((h.created_at, h.message_id?)))
                    .collect()
            };
            let reference = if q.fts.is_some() {
                Driver::Fts
            } else {
                Driver::Rowid
            };
            let full = ids(s.search_via(&q, all, Some(reference)).unwrap());
            assert!(
                full.windows(2).all(|w| w[0].1 > w[1].1),
                "{text}: by arrival"
            );
            let mut by_time = full.clone();
            by_time.sort_by(|a, b| b.cmp(a));
            let mut drivers = vec![reference];
            if q.from.is_some() {
                drivers.push(Driver::Contacts);
            }
            if q.fts.is_none() && (q.after.is_some() || q.before.is_some()) {
                drivers.push(Driver::Time);
            }
            for d in drivers {
                for limit in [all, 20, 1] {
                    let want: Vec<_> = if d == Driver::Time { &by_time } else { &full }
                        .iter()
                        .copied()
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
            assert!(
                !full.is_empty() || text.contains("example"),
                "{text} finds something"
            );
        }
        assert!(checked > 100);
    }
}
