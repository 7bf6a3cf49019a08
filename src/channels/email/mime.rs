//! One raw RFC 5322 message -> one [`Inbound`] (mail-parser 0.11 does the MIME work).
//!
//! What becomes of a message:
//! - customer: the From address, or (From is one of OUR addresses, a message from a Sent folder)
//!   direction `Out` and the first To/Cc that is not ours. A message without any usable sender
//!   address is still kept, under [`UNKNOWN_SENDER`];
//! - subject: encoded words decoded (every charset mail-parser knows);
//! - body: the text/plain parts; when a body has no plain alternative, its text/html converted
//!   by html2text on a converter thread with a time limit ([`HtmlConverter`]); then one line per
//!   attachment, `[attachment: invoice.pdf, application/pdf, 120 KB]`;
//! - external id: the Message-ID (without `<>`), or `braid-<hash of the raw bytes>@synthesized`
//!   when there is none, so re-importing the same file finds the same message;
//! - sent_at: the Date header, else the caller's fallback (file mtime, arrival time).
//!
//! `meta` (JSON) keeps what threading and later features need: `message_id` (null when it was
//! synthesized), `in_reply_to` and `references` (lists of ids without `<>`), `from`, `to`, `cc`,
//! and `attachments` (`name`, `type`, `size`, `part`: the index of the MIME part).
//!
//! Hostile input is bounded by [`Limits`]: a message over `max_message_bytes`, or with more
//! multipart containers than `max_multiparts`, keeps only its headers and a note in place of the
//! body; parts nested deeper than `max_depth` are ignored; HTML over `max_html_bytes` is reduced
//! by a linear tag stripper instead of html2text; a conversion past `html_time_limit` is
//! abandoned for the same stripper.

use crate::identity::{self, Claim};
use crate::ingest::Inbound;
use crate::model::{Channel, Direction, IdentityKind, Millis};
use crate::sanitize;
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;

/// The customer of a message that carries no usable address at all (malformed mail): every
/// such message lands on this one contact instead of being dropped.
pub const UNKNOWN_SENDER: &str = "unknown-sender@braid.invalid";

/// Bounds against hostile or broken mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Larger messages keep their headers only (the body is replaced by a note).
    pub max_message_bytes: usize,
    /// Parts nested deeper than this (multipart in multipart ...) are ignored.
    pub max_depth: usize,
    /// More multipart containers than this: headers only.
    pub max_multiparts: usize,
    /// Larger HTML bodies are reduced by the tag stripper, not html2text.
    pub max_html_bytes: usize,
    /// An html2text conversion that takes longer is abandoned for the tag stripper.
    pub html_time_limit: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 50 * 1024 * 1024,
            max_depth: 16,
            max_multiparts: 256,
            max_html_bytes: 2 * 1024 * 1024,
            html_time_limit: Duration::from_secs(2),
        }
    }
}

/// Who "we" are and where the message came from.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The braid account (mailbox) the message belongs to; "" for the only one.
    pub account: String,
    /// Our own addresses (any case): a message From one of them is outgoing.
    pub our_addresses: Vec<String>,
    pub limits: Limits,
}

impl Options {
    pub fn new(account: &str, our_addresses: &[&str]) -> Options {
        Options {
            account: account.to_string(),
            our_addresses: our_addresses.iter().map(|a| a.to_string()).collect(),
            limits: Limits::default(),
        }
    }
}

/// A parsed message: what ingest takes, and the threading headers.
#[derive(Debug, Clone)]
pub struct ParsedEmail {
    pub inbound: Inbound,
    /// The Message-ID as written (without `<>`); None when the external id was synthesized.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
}

impl ParsedEmail {
    /// The ids this message answers, most specific first: In-Reply-To, then References from
    /// the newest (last) to the oldest.
    pub fn thread_refs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self.in_reply_to.iter().chain(self.references.iter().rev()) {
            if !out.contains(&r.as_str()) && Some(r) != self.message_id.as_ref() {
                out.push(r);
            }
        }
        out
    }
}

/// Parses raw messages. Holds the mail-parser instance, our normalized addresses and the HTML
/// converter thread; one per importing thread or channel task (`parse` takes `&mut self`).
pub struct EmailParser {
    parser: MessageParser,
    account: String,
    ours: Vec<String>,
    limits: Limits,
    html: HtmlConverter,
}

impl EmailParser {
    pub fn new(options: &Options) -> EmailParser {
        EmailParser {
            parser: MessageParser::new(),
            account: options.account.clone(),
            ours: options
                .our_addresses
                .iter()
                .filter_map(|a| identity::normalize(IdentityKind::Email, a).ok())
                .collect(),
            limits: options.limits,
            html: HtmlConverter::new(options.limits.html_time_limit),
        }
    }

    /// Parse one raw message. Never fails and never panics on any input: what cannot be read
    /// is replaced by a note (`fallback_time` for a missing or absurd Date).
    pub fn parse(&mut self, raw: &[u8], fallback_time: Millis) -> ParsedEmail {
        let too_big = raw.len() > self.limits.max_message_bytes;
        let too_many = !too_big && count_multiparts(raw) > self.limits.max_multiparts;
        let note = if too_big {
            Some(format!(
                "[message body not shown: {} is over the {} limit]",
                human_size(raw.len()),
                human_size(self.limits.max_message_bytes)
            ))
        } else if too_many {
            Some(format!(
                "[message body not shown: more than {} nested MIME containers]",
                self.limits.max_multiparts
            ))
        } else {
            None
        };
        let parsed = if let Some(note) = note {
            // Headers only, from a bounded prefix.
            let head = &raw[..raw.len().min(256 * 1024)];
            self.parser
                .parse_headers(head)
                .map(|m| (m, Body::note(note)))
        } else {
            self.parser.parse(raw).map(|m| {
                let body = self.body(&m);
                (m, body)
            })
        };
        match parsed {
            Some((m, body)) => self.build(raw, &m, body, fallback_time),
            None => self.unparsable(raw, fallback_time),
        }
    }

    /// A message whose body was not downloaded (over `max_message_bytes` on the server): its
    /// header section only, and a note saying how big it is.
    pub fn parse_header_only(
        &mut self,
        head: &[u8],
        full_size: usize,
        fallback_time: Millis,
    ) -> ParsedEmail {
        let note = format!(
            "[message body not downloaded: {} is over the {} limit]",
            human_size(full_size),
            human_size(self.limits.max_message_bytes)
        );
        let head = &head[..head.len().min(256 * 1024)];
        match self.parser.parse_headers(head) {
            Some(m) => self.build(head, &m, Body::note(note), fallback_time),
            None => self.unparsable(head, fallback_time),
        }
    }

    /// The most bytes of one message that are downloaded and parsed.
    pub fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }

    fn build(&mut self, raw: &[u8], m: &Message<'_>, body: Body, fallback: Millis) -> ParsedEmail {
        let message_id = m
            .message_id()
            .map(clean_id)
            .filter(|id| !id.is_empty() && id.len() <= 900);
        let external_id = message_id.clone().unwrap_or_else(|| synthetic_id(raw));
        let in_reply_to = id_list(m.in_reply_to());
        let references = id_list(m.references());

        let from = first_valid(m.from()).or_else(|| first_valid(m.sender()));
        let from_is_ours = from.as_ref().is_some_and(|(a, _)| self.ours.contains(a));
        let (direction, customer, author) = if from_is_ours {
            let to = all_valid(m.to())
                .into_iter()
                .chain(all_valid(m.cc()))
                .find(|(a, _)| !self.ours.contains(a));
            let author = from.as_ref().map(|(a, n)| n.clone().unwrap_or(a.clone()));
            (Direction::Out, to, author)
        } else {
            let sender = from.or_else(|| first_valid(m.reply_to())).or_else(|| {
                m.return_address().and_then(|a| {
                    identity::normalize(IdentityKind::Email, a)
                        .ok()
                        .map(|a| (a, None))
                })
            });
            (Direction::In, sender, None)
        };
        let (customer, customer_name) = customer
            .unwrap_or_else(|| (UNKNOWN_SENDER.to_string(), Some("(unknown sender)".into())));

        let sent_at = m
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp().saturating_mul(1000))
            .filter(|&t| t > 0 && t <= fallback.max(crate::model::now_millis()) + 2 * DAY_MS)
            .unwrap_or(fallback);

        let mut text = body.text;
        for a in &body.attachments {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!(
                "[attachment: {}, {}, {}]",
                a.name,
                a.mime_type,
                human_size(a.size)
            ));
        }
        let addresses = |a: Option<&Address<'_>>| -> Vec<String> {
            all_valid(a).into_iter().map(|(a, _)| a).collect()
        };
        let meta = json!({
            "message_id": message_id,
            "in_reply_to": in_reply_to,
            "references": references,
            "from": addresses(m.from()),
            "to": addresses(m.to()),
            "cc": addresses(m.cc()),
            "attachments": body.attachments.iter().map(|a| json!({
                "name": a.name, "type": a.mime_type, "size": a.size, "part": a.part,
            })).collect::<Vec<_>>(),
        });
        ParsedEmail {
            inbound: Inbound {
                channel: Channel::Email,
                account: self.account.clone(),
                external_id,
                direction,
                customer: Claim::new(IdentityKind::Email, customer),
                linked: Vec::new(),
                customer_name,
                author,
                subject: m.subject().map(str::to_string),
                body: text,
                sent_at,
                meta: Some(meta),
                cursor: None,
            },
            message_id,
            in_reply_to,
            references,
        }
    }

    /// Not even headers: keep the bytes as text so nothing is silently lost.
    fn unparsable(&mut self, raw: &[u8], fallback: Millis) -> ParsedEmail {
        let shown = &raw[..raw.len().min(64 * 1024)];
        let text = String::from_utf8_lossy(shown).into_owned();
        ParsedEmail {
            inbound: Inbound {
                channel: Channel::Email,
                account: self.account.clone(),
                external_id: synthetic_id(raw),
                direction: Direction::In,
                customer: Claim::new(IdentityKind::Email, UNKNOWN_SENDER),
                linked: Vec::new(),
                customer_name: Some("(unknown sender)".into()),
                author: None,
                subject: None,
                body: format!("[unreadable message, shown as raw text]\n{text}"),
                sent_at: fallback,
                meta: Some(json!({ "message_id": null, "unparsable": true })),
                cursor: None,
            },
            message_id: None,
            in_reply_to: Vec::new(),
            references: Vec::new(),
        }
    }

    /// The text of a parsed message and its attachments, within the depth limit.
    fn body(&mut self, m: &Message<'_>) -> Body {
        let allowed = parts_within_depth(m, self.limits.max_depth);
        let mut texts: Vec<String> = Vec::new();
        for &id in &m.text_body {
            if !allowed.get(id as usize).copied().unwrap_or(false) {
                continue;
            }
            let Some(part) = m.parts.get(id as usize) else {
                continue;
            };
            match &part.body {
                PartType::Text(t) => texts.push(t.to_string()),
                PartType::Html(h) => texts.push(self.html_to_text(h)),
                _ => {}
            }
        }
        let mut attachments = Vec::new();
        for &id in &m.attachments {
            if !allowed.get(id as usize).copied().unwrap_or(false) {
                continue;
            }
            let Some(part) = m.parts.get(id as usize) else {
                continue;
            };
            let mime_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .map(|t| sanitize::line(&t).to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| match &part.body {
                    PartType::Message(_) => "message/rfc822".into(),
                    PartType::Text(_) => "text/plain".into(),
                    PartType::Html(_) => "text/html".into(),
                    _ => "application/octet-stream".into(),
                });
            let name = part
                .attachment_name()
                .map(str::to_string)
                .or_else(|| match &part.body {
                    PartType::Message(inner) => inner.subject().map(|s| format!("{s}.eml")),
                    _ => None,
                })
                .map(|n| sanitize::file_name(&n))
                .unwrap_or_else(|| "attachment".into());
            attachments.push(Attachment {
                name,
                mime_type,
                size: part.len(),
                part: id,
            });
        }
        let mut text = texts.join("\n\n");
        if allowed.iter().any(|ok| !ok) {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&format!(
                "[parts nested deeper than {} levels not shown]",
                self.limits.max_depth
            ));
        }
        Body { text, attachments }
    }

    fn html_to_text(&mut self, html: &str) -> String {
        if html.len() > self.limits.max_html_bytes {
            return strip_tags(html);
        }
        self.html.convert(html)
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

struct Attachment {
    name: String,
    mime_type: String,
    size: usize,
    part: u32,
}

struct Body {
    text: String,
    attachments: Vec<Attachment>,
}

impl Body {
    fn note(text: String) -> Body {
        Body {
            text,
            attachments: Vec::new(),
        }
    }
}

/// Which parts (by index) are at most `max_depth` containers deep. Parts not reachable from the
/// root (never, in mail-parser's output) count as too deep.
fn parts_within_depth(m: &Message<'_>, max_depth: usize) -> Vec<bool> {
    let mut allowed = vec![false; m.parts.len()];
    let mut stack: Vec<(u32, usize)> = vec![(0, 0)];
    while let Some((id, depth)) = stack.pop() {
        let Some(slot) = allowed.get_mut(id as usize) else {
            continue;
        };
        if *slot || depth > max_depth {
            continue;
        }
        *slot = true;
        if let Some(PartType::Multipart(children)) = m.parts.get(id as usize).map(|p| &p.body) {
            stack.extend(children.iter().map(|&c| (c, depth + 1)));
        }
    }
    allowed
}

/// How many times "multipart/" occurs (any case): an upper bound of the containers.
fn count_multiparts(raw: &[u8]) -> usize {
    const NEEDLE: &[u8] = b"multipart/";
    raw.windows(NEEDLE.len())
        .filter(|w| w[0] | 0x20 == b'm' && w.eq_ignore_ascii_case(NEEDLE))
        .count()
}

/// `<id@host>` -> `id@host`, one line.
fn clean_id(id: &str) -> String {
    sanitize::line(id.trim().trim_start_matches('<').trim_end_matches('>'))
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for id in raw.iter().map(|s| clean_id(s)) {
        if !id.is_empty() && id.len() <= 900 && !out.contains(&id) {
            out.push(id);
        }
    }
    // A References header of thousands of ids is hostile; the newest ones matter.
    if out.len() > 100 {
        out.drain(..out.len() - 100);
    }
    out
}

/// Every address of a header that normalizes as an email address, with its display name.
fn all_valid(a: Option<&Address<'_>>) -> Vec<(String, Option<String>)> {
    let Some(a) = a else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|addr| {
            let value = identity::normalize(IdentityKind::Email, addr.address()?).ok()?;
            let name = addr
                .name()
                .map(sanitize::line)
                .map(|n| n.trim_matches(|c| c == '"' || c == '\'').trim().to_string())
                .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&value));
            Some((value, name))
        })
        .collect()
}

fn first_valid(a: Option<&Address<'_>>) -> Option<(String, Option<String>)> {
    all_valid(a).into_iter().next()
}

/// A stable id for a message without a Message-ID: a 128-bit FNV-1a hash of its raw bytes.
pub fn synthetic_id(raw: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut h = OFFSET;
    for &b in raw {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    format!("braid-{h:032x}@synthesized")
}

/// `532 B`, `120 KB`, `3.4 MB` (1024-based, as mail clients show them).
pub fn human_size(bytes: usize) -> String {
    crate::files::human_size(bytes)
}

/// HTML -> text by dropping tags (and the content of `<script>`/`<style>`/`<head>`) and
/// decoding the common entities: linear time, for HTML too large or too slow for html2text.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..gt].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[gt + 1..];
        if !after.starts_with('/') && matches!(name.as_str(), "script" | "style" | "head") {
            let close = format!("</{name}");
            match find_ascii_ci(rest, &close) {
                Some(i) => {
                    rest = &rest[i..];
                    continue;
                }
                None => {
                    rest = "";
                    break;
                }
            }
        }
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table"
        ) {
            out.push('\n');
        }
    }
    out.push_str(&decode_entities(rest));
    // Collapse the blank lines that markup leaves behind.
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(line.trim_start_matches([' ', '\t']));
        text.push('\n');
    }
    text.trim().to_string()
}

fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    hay.as_bytes()
        .windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Runs html2text on a thread of its own and waits at most the time limit. A conversion that
/// overruns is abandoned (its thread finishes on its own, bounded by the HTML size limit, and
/// its answer is dropped) and the tag stripper answers instead; the next conversion starts a
/// fresh thread. Async callers: parse inside `spawn_blocking`, the wait then blocks no reactor.
pub struct HtmlConverter {
    limit: Duration,
    worker: Option<Worker>,
}

struct Worker {
    jobs: mpsc::Sender<String>,
    results: mpsc::Receiver<String>,
}

/// html5ever and html2text recurse on nesting; give them room.
const CONVERTER_STACK: usize = 64 * 1024 * 1024;
/// The width html2text wraps to (the timeline rewraps long lines itself).
const HTML_WIDTH: usize = 100;

impl HtmlConverter {
    pub fn new(limit: Duration) -> HtmlConverter {
        HtmlConverter {
            limit,
            worker: None,
        }
    }

    pub fn convert(&mut self, html: &str) -> String {
        let worker = match self.worker.take() {
            Some(w) => w,
            None => match spawn_worker() {
                Some(w) => w,
                None => return strip_tags(html),
            },
        };
        if worker.jobs.send(html.to_string()).is_err() {
            return strip_tags(html);
        }
        match worker.results.recv_timeout(self.limit) {
            Ok(text) => {
                self.worker = Some(worker);
                text
            }
            Err(_) => {
                tracing::warn!(
                    bytes = html.len(),
                    "html2text took longer than {:?}; using the plain tag stripper",
                    self.limit
                );
                strip_tags(html)
            }
        }
    }
}

fn spawn_worker() -> Option<Worker> {
    let (job_tx, job_rx) = mpsc::channel::<String>();
    let (res_tx, res_rx) = mpsc::channel::<String>();
    let spawned = std::thread::Builder::new()
        .name("braid-html2text".into())
        .stack_size(CONVERTER_STACK)
        .spawn(move || {
            while let Ok(html) = job_rx.recv() {
                let text = html2text::config::plain()
                    .allow_width_overflow()
                    .string_from_read(html.as_bytes(), HTML_WIDTH)
                    .unwrap_or_else(|_| strip_tags(&html));
                if res_tx.send(text).is_err() {
                    break;
                }
            }
        });
    match spawned {
        Ok(_) => Some(Worker {
            jobs: job_tx,
            results: res_rx,
        }),
        Err(e) => {
            tracing::warn!("cannot start the html2text thread: {e}");
            None
        }
    }
}
