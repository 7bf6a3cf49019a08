//! Full-text search (FTS5) over message bodies, subjects, notes and contact names.
//!
//! Query language, as typed after `/`, on `:search` or `braid search`:
//! plain words (all must match, prefix with `word*`), `"a phrase"`, and filters
//! `from:NAME-OR-ADDRESS`, `channel:email|telegram|webchat`, `is:in|out|note`,
//! `after:YYYY-MM-DD`, `before:YYYY-MM-DD`. Results come newest first (by arrival), so a
//! common word costs the same as a rare one: FTS5 walks its index backwards and stops at the limit.

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
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            rest = rest[end..].trim_start();
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

impl Store {
    /// The newest `limit` hits for a query.
    pub fn search(&self, q: &SearchQuery, limit: usize) -> Result<Vec<SearchHit>> {
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        let (from_sql, order) = if let Some(fts) = &q.fts {
            params.push(fts.clone().into());
            conds.push("messages_fts MATCH ?".into());
            (
                "messages_fts JOIN messages m ON m.id = messages_fts.rowid",
                "messages_fts.rowid DESC",
            )
        } else {
            // Arrival order, like the FTS path: SQLite walks the table backwards by rowid and
            // stops at the limit. (Ordering by created_at had no index: every matching row was
            // read and sorted, 0.4 s for `channel:telegram` on a million messages.)
            ("messages m", "m.id DESC")
        };
        let snippet = if q.fts.is_some() {
            "snippet(messages_fts, -1, '«', '»', '…', 12)"
        } else {
            "substr(m.body, 1, 120)"
        };
        if let Some(from) = &q.from {
            conds.push(
                "m.contact_id IN (SELECT contact_id FROM identities WHERE value LIKE ?
                                  UNION SELECT id FROM contacts WHERE name LIKE ?)"
                    .into(),
            );
            let pat = format!("%{}%", from.replace(['%', '_'], ""));
            params.push(pat.clone().into());
            params.push(pat.into());
        }
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
        let where_sql = if conds.is_empty() {
            "1=1".to_string()
        } else {
            conds.join(" AND ")
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
    }

    #[test]
    fn fts_syntax_in_input_is_data() {
        let q = SearchQuery::parse(r#"NEAR( a" OR -b ^c"#).unwrap();
        assert_eq!(q.fts.as_deref(), Some(r#""NEAR(" "a""" "OR" "-b" "^c""#));
        assert!(SearchQuery::parse("   ").is_err());
        assert!(SearchQuery::parse("channel:fax").is_err());
        assert!(SearchQuery::parse("after:yesterday").is_err());
    }
}
