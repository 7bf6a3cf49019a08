//! Instagram and Messenger webhooks (`/hooks/instagram`, `/hooks/messenger`):
//!
//! ```json
//! {"object": "page",            // "instagram" for Instagram
//!  "entry": [{"id": "PAGE-ID", "time": 1765000000000, "messaging": [
//!    {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE-ID"}, "timestamp": 1765000000000,
//!     "message": {"mid": "m_1", "text": "Hi",
//!                 "attachments": [{"type": "image", "payload": {"url": "https://..."}}],
//!                 "reply_to": {"mid": "m_0", "story": {"id": "1789", "url": "https://..."}}}}]}]}
//! ```
//!
//! A message becomes an inbound message of the sender's id; attachments are placeholders
//! (`[image]`, `[story mention]`) with their kind and link in the meta; a reply to a story is
//! marked `[story reply]` with the story in `meta.story`. Echoes of our own messages, read and
//! delivery receipts, and entries of another page or account are ignored.

use super::Platform;
use crate::channels::hooks::verify::{self, BadSignature};
use crate::channels::hooks::{HookItem, HookRequest, Source};
use crate::identity::Claim;
use crate::ingest::Inbound;
use crate::model::{Direction, Millis};
use serde_json::{Value, json};

/// The source of `/hooks/instagram` or `/hooks/messenger`.
pub struct MetaSource {
    platform: Platform,
    page_id: String,
    account: String,
    app: verify::MetaApp,
}

impl MetaSource {
    pub fn new(
        platform: Platform,
        page_id: &str,
        account: &str,
        app_secret: Vec<u8>,
        verify_token: Vec<u8>,
    ) -> MetaSource {
        MetaSource {
            platform,
            page_id: page_id.to_string(),
            account: account.to_string(),
            app: verify::MetaApp::new(app_secret, verify_token),
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn id_of(v: Option<&Value>) -> Option<String> {
    let id = match v?.get("id")? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_digit())).then_some(id)
}

impl Source for MetaSource {
    fn path(&self) -> &str {
        self.platform.path()
    }

    fn handshake(&self, query: &str) -> Option<String> {
        self.app.handshake(query)
    }

    fn verify(&self, req: &HookRequest<'_>) -> Result<(), BadSignature> {
        self.app.verify(req)
    }

    fn parse(&self, body: &[u8], received_at: Millis) -> Result<Vec<HookItem>, String> {
        let root: Value = crate::channels::hooks::parse_json(body)?;
        if !root.is_object() {
            return Err("not a JSON object".into());
        }
        if s(&root, "object") != Some(self.platform.object()) {
            return Ok(Vec::new());
        }
        let entries = root
            .get("entry")
            .and_then(Value::as_array)
            .ok_or("no entry list")?;
        let mut items = Vec::new();
        for entry in entries {
            if id_of(Some(entry)).as_deref() != Some(self.page_id.as_str()) {
                continue;
            }
            for ev in entry
                .get("messaging")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(m) = self.message(ev, received_at) {
                    items.push(HookItem::Message(Box::new(m)));
                }
            }
        }
        Ok(items)
    }
}

impl MetaSource {
    fn message(&self, ev: &Value, received_at: Millis) -> Option<Inbound> {
        let msg = ev.get("message")?;
        if msg.get("is_echo").and_then(Value::as_bool) == Some(true)
            || msg.get("is_deleted").and_then(Value::as_bool) == Some(true)
        {
            return None;
        }
        let sender = id_of(ev.get("sender"))?;
        if sender == self.page_id {
            return None;
        }
        let mid = s(msg, "mid")
            .map(str::trim)
            .filter(|m| !m.is_empty() && m.len() <= 512)?;
        let mut meta = serde_json::Map::new();
        let mut parts: Vec<String> = Vec::new();
        let mut kept = Vec::new();
        for a in msg
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(20)
        {
            let kind = s(a, "type").unwrap_or("file");
            let url = a.get("payload").and_then(|p| s(p, "url"));
            let label = match kind {
                "story_mention" => "story mention".to_string(),
                "ig_reel" | "reel" => "reel".to_string(),
                other => crate::sanitize::line(other),
            };
            if kind == "story_mention" {
                meta.insert("story".into(), json!({"mention": true, "url": url}));
            }
            parts.push(format!("[{label}]"));
            kept.push(json!({"kind": label, "url": url}));
        }
        if !kept.is_empty() {
            // Links Meta hands out for a while: kept to open, not fetched by :save.
            meta.insert("files".into(), Value::Array(kept));
        }
        if let Some(r) = msg.get("reply_to") {
            if let Some(story) = r.get("story") {
                parts.insert(0, "[story reply]".into());
                meta.insert(
                    "story".into(),
                    json!({"reply": true, "id": s(story, "id"), "url": s(story, "url")}),
                );
            } else if let Some(mid) = s(r, "mid") {
                meta.insert("context".into(), json!({"id": mid}));
            }
        }
        if let Some(q) = msg.get("quick_reply") {
            meta.insert("quick_reply".into(), json!({"payload": s(q, "payload")}));
        }
        if let Some(t) = s(msg, "text").filter(|t| !t.trim().is_empty()) {
            parts.push(t.to_string());
        }
        if parts.is_empty() {
            parts.push("[a message braid cannot show]".into());
        }
        let at = ev
            .get("timestamp")
            .and_then(Value::as_i64)
            .filter(|t| *t > 0)
            .unwrap_or(received_at);
        Some(Inbound {
            channel: self.platform.channel(),
            account: self.account.clone(),
            external_id: mid.to_string(),
            direction: Direction::In,
            customer: Claim::new(self.platform.identity_kind(), sender),
            linked: Vec::new(),
            customer_name: None,
            author: None,
            subject: None,
            body: parts.join(" "),
            sent_at: at,
            meta: Some(Value::Object(meta)),
            cursor: None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{Channel, IdentityKind};

    fn source(p: Platform) -> MetaSource {
        MetaSource::new(p, "777", "shop", b"s".to_vec(), b"v".to_vec())
    }

    fn body(object: &str, messaging: Value) -> Vec<u8> {
        json!({"object": object, "entry": [{"id": "777", "time": 1, "messaging": messaging}]})
            .to_string()
            .into_bytes()
    }

    fn one(p: Platform, message: Value) -> Option<Inbound> {
        let b = body(
            p.object(),
            json!([{"sender": {"id": "4242"}, "recipient": {"id": "777"},
                    "timestamp": 1_765_000_000_000i64, "message": message}]),
        );
        match source(p).parse(&b, 5).unwrap().pop() {
            Some(HookItem::Message(m)) => Some(*m),
            None => None,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn texts_and_attachments() {
        let m = one(
            Platform::Messenger,
            json!({"mid": "m_1", "text": "Hi there"}),
        )
        .unwrap();
        assert_eq!(m.channel, Channel::Messenger);
        assert_eq!(m.customer, Claim::new(IdentityKind::Messenger, "4242"));
        assert_eq!(m.external_id, "m_1");
        assert_eq!(m.body, "Hi there");
        assert_eq!(m.sent_at, 1_765_000_000_000);
        let m = one(
            Platform::Instagram,
            json!({"mid": "m_2", "attachments": [{"type": "image", "payload": {"url": "https://x/1"}}]}),
        )
        .unwrap();
        assert_eq!(m.channel, Channel::Instagram);
        assert_eq!(m.customer.kind, IdentityKind::Instagram);
        assert_eq!(m.body, "[image]");
        assert_eq!(m.meta.unwrap()["files"][0]["url"], "https://x/1");
    }

    #[test]
    fn stories_are_marked() {
        let m = one(
            Platform::Instagram,
            json!({"mid": "m_3", "text": "love it",
                   "reply_to": {"story": {"id": "1789", "url": "https://cdn/s"}}}),
        )
        .unwrap();
        assert_eq!(m.body, "[story reply] love it");
        assert_eq!(m.meta.as_ref().unwrap()["story"]["reply"], true);
        let m = one(
            Platform::Instagram,
            json!({"mid": "m_4", "attachments": [{"type": "story_mention", "payload": {"url": "https://cdn/m"}}]}),
        )
        .unwrap();
        assert_eq!(m.body, "[story mention]");
        assert_eq!(m.meta.as_ref().unwrap()["story"]["mention"], true);
    }

    #[test]
    fn echoes_receipts_and_other_pages_are_ignored() {
        assert!(
            one(
                Platform::Messenger,
                json!({"mid": "m_5", "text": "ours", "is_echo": true})
            )
            .is_none()
        );
        let b = body(
            "page",
            json!([{"sender": {"id": "4242"}, "recipient": {"id": "777"},
                    "read": {"watermark": 1}},
                   {"sender": {"id": "4242"}, "recipient": {"id": "777"},
                    "delivery": {"mids": ["m_1"], "watermark": 1}}]),
        );
        assert!(source(Platform::Messenger).parse(&b, 5).unwrap().is_empty());
        let other = json!({"object": "page", "entry": [{"id": "888", "messaging": [
            {"sender": {"id": "4242"}, "message": {"mid": "m_9", "text": "x"}}]}]});
        assert!(
            source(Platform::Messenger)
                .parse(other.to_string().as_bytes(), 5)
                .unwrap()
                .is_empty()
        );
        // An Instagram body on the Messenger path: not ours.
        let ig = body("instagram", json!([]));
        assert!(
            source(Platform::Messenger)
                .parse(&ig, 5)
                .unwrap()
                .is_empty()
        );
        assert!(
            source(Platform::Messenger)
                .parse(b"{\"object\":\"page\"}", 5)
                .is_err()
        );
    }
}
