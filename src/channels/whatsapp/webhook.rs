//! The WhatsApp Cloud API's webhooks (`/hooks/whatsapp`): Meta's subscription handshake, the
//! `X-Hub-Signature-256` check, and the documented body:
//!
//! ```json
//! {"object": "whatsapp_business_account",
//!  "entry": [{"id": "WABA-ID", "changes": [{"field": "messages", "value": {
//!     "messaging_product": "whatsapp",
//!     "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1065..."},
//!     "contacts": [{"profile": {"name": "Ana"}, "wa_id": "4915112345678"}],
//!     "messages": [{"from": "4915112345678", "id": "wamid.X", "timestamp": "1765000000",
//!                   "type": "text", "text": {"body": "Hi"}}],
//!     "statuses": [{"id": "wamid.Y", "status": "read", "timestamp": "1765000100",
//!                   "recipient_id": "4915112345678"}]}}]}]}
//! ```
//!
//! Each message becomes an inbound WhatsApp message of the phone `+wa_id` (a number WhatsApp
//! vouches for: it joins the contact that has that phone from any channel). Media arrive as
//! placeholders in the body (`[image: caption]`) with the media id in the meta
//! (`{"attachment": {"kind", "media_id", "mime_type", "file_name"}}`) so `:save` fetches them;
//! locations, shared contact cards, reactions, interactive and button replies get a readable
//! body and their data in the meta; a reply keeps what it answers in `meta.context`. Statuses
//! (sent, delivered, read, failed with its error) update the message braid sent with that
//! wamid. Changes for another phone number id than the configured one are ignored.

use crate::channels::hooks::verify::{self, BadSignature};
use crate::channels::hooks::{HookItem, HookRequest, Source, StatusReport};
use crate::identity::Claim;
use crate::ingest::Inbound;
use crate::model::{Channel, Delivery, Direction, IdentityKind, Millis};
use serde_json::{Value, json};

/// The source of `/hooks/whatsapp`.
pub struct WhatsAppSource {
    phone_number_id: String,
    account: String,
    app: verify::MetaApp,
}

impl WhatsAppSource {
    pub fn new(
        phone_number_id: &str,
        account: &str,
        app_secret: Vec<u8>,
        verify_token: Vec<u8>,
    ) -> WhatsAppSource {
        WhatsAppSource {
            phone_number_id: phone_number_id.to_string(),
            account: account.to_string(),
            app: verify::MetaApp::new(app_secret, verify_token),
        }
    }
}

impl Source for WhatsAppSource {
    fn path(&self) -> &str {
        super::HOOK_PATH
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
        if root.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
            // Another product's webhook sent here by mistake: nothing of ours.
            return Ok(Vec::new());
        }
        let entries = root
            .get("entry")
            .and_then(Value::as_array)
            .ok_or("no entry list")?;
        let mut items = Vec::new();
        for entry in entries {
            let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
                continue;
            };
            for change in changes {
                if change.get("field").and_then(Value::as_str) != Some("messages") {
                    continue;
                }
                let Some(value) = change.get("value") else {
                    continue;
                };
                let number = value
                    .get("metadata")
                    .and_then(|m| m.get("phone_number_id"))
                    .and_then(Value::as_str);
                if number != Some(self.phone_number_id.as_str()) {
                    continue;
                }
                self.parse_value(value, received_at, &mut items);
            }
        }
        Ok(items)
    }
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A WhatsApp timestamp (Unix seconds, as a string) in milliseconds.
fn timestamp(v: &Value, fallback: Millis) -> Millis {
    let secs = match v.get("timestamp") {
        Some(Value::String(t)) => t.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    secs.filter(|s| *s > 0 && *s < 100_000_000_000)
        .map(|s| s * 1000)
        .unwrap_or(fallback)
}

/// One line of outside text, short.
fn short(text: &str, max: usize) -> String {
    let line = crate::sanitize::line(text);
    if line.chars().count() > max {
        line.chars().take(max).collect::<String>() + "…"
    } else {
        line
    }
}

/// A wa_id: digits only.
fn wa_id(v: Option<&str>) -> Option<String> {
    let id = v?.trim().trim_start_matches('+');
    (!id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit()))
        .then(|| id.to_string())
}

const MEDIA: &[&str] = &["image", "audio", "video", "document", "sticker"];

impl WhatsAppSource {
    fn parse_value(&self, value: &Value, received_at: Millis, items: &mut Vec<HookItem>) {
        let names: Vec<(String, String)> = value
            .get("contacts")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| {
                        Some((
                            wa_id(s(c, "wa_id"))?,
                            c.get("profile").and_then(|p| s(p, "name"))?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for m in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match self.message(m, &names, received_at) {
                Some(msg) => items.push(HookItem::Message(Box::new(msg))),
                None => tracing::warn!("whatsapp: a message without a sender or id was skipped"),
            }
        }
        for st in value
            .get("statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = status(st, received_at) {
                items.push(HookItem::Status(r));
            }
        }
    }

    fn message(
        &self,
        m: &Value,
        names: &[(String, String)],
        received_at: Millis,
    ) -> Option<Inbound> {
        let from = wa_id(s(m, "from"))?;
        let id = s(m, "id")
            .map(str::trim)
            .filter(|i| !i.is_empty() && i.len() <= 256)?;
        let kind = s(m, "type").unwrap_or("unknown");
        let mut meta = serde_json::Map::new();
        meta.insert("whatsapp".into(), json!({"type": short(kind, 40)}));
        let body = match kind {
            "text" => m
                .get("text")
                .and_then(|t| s(t, "body"))
                .unwrap_or("")
                .to_string(),
            k if MEDIA.contains(&k) => {
                let media = m.get(k).cloned().unwrap_or(Value::Null);
                let caption = s(&media, "caption").map(str::to_string);
                let file_name = s(&media, "filename").map(crate::sanitize::file_name);
                let label = match k {
                    "audio" if media.get("voice").and_then(Value::as_bool) == Some(true) => {
                        "voice message"
                    }
                    other => other,
                };
                meta.insert(
                    "attachment".into(),
                    json!({
                        "kind": k,
                        "media_id": s(&media, "id"),
                        "mime_type": s(&media, "mime_type").map(|t| short(t, 100)),
                        "sha256": s(&media, "sha256").map(|t| short(t, 100)),
                        "file_name": file_name,
                    }),
                );
                match (&file_name, &caption) {
                    (Some(f), Some(c)) => format!("[{label}: {f}] {c}"),
                    (Some(f), None) => format!("[{label}: {f}]"),
                    (None, Some(c)) => format!("[{label}: {c}]"),
                    (None, None) => format!("[{label}]"),
                }
            }
            "location" => {
                let l = m.get("location").cloned().unwrap_or(Value::Null);
                let lat = l.get("latitude").and_then(Value::as_f64);
                let lon = l.get("longitude").and_then(Value::as_f64);
                let mut words: Vec<String> = Vec::new();
                for k in ["name", "address"] {
                    if let Some(v) = s(&l, k).filter(|v| !v.trim().is_empty()) {
                        words.push(short(v, 200));
                    }
                }
                if let (Some(a), Some(b)) = (lat, lon) {
                    words.push(format!("{a:.6}, {b:.6}"));
                }
                meta.insert(
                    "location".into(),
                    json!({"latitude": lat, "longitude": lon, "name": s(&l, "name"),
                           "address": s(&l, "address"), "url": s(&l, "url")}),
                );
                format!("[location: {}]", words.join(" · "))
            }
            "contacts" => {
                let cards: Vec<&Value> = m
                    .get("contacts")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().take(20).collect())
                    .unwrap_or_default();
                let mut lines = Vec::new();
                let mut kept = Vec::new();
                for c in cards {
                    let name = c
                        .get("name")
                        .and_then(|n| s(n, "formatted_name"))
                        .map(|n| short(n, 100))
                        .unwrap_or_default();
                    let phones: Vec<String> = c
                        .get("phones")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .take(5)
                                .filter_map(|p| s(p, "phone"))
                                .map(|p| short(p, 40))
                                .collect()
                        })
                        .unwrap_or_default();
                    let emails: Vec<String> = c
                        .get("emails")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .take(5)
                                .filter_map(|p| s(p, "email"))
                                .map(|p| short(p, 100))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut line = format!("[contact: {name}");
                    for x in phones.iter().chain(emails.iter()) {
                        line.push_str(" · ");
                        line.push_str(x);
                    }
                    line.push(']');
                    lines.push(line);
                    kept.push(json!({"name": name, "phones": phones, "emails": emails}));
                }
                // Someone else's card: kept to look at, never joined to this contact.
                meta.insert("contacts".into(), Value::Array(kept));
                if lines.is_empty() {
                    "[contact]".into()
                } else {
                    lines.join("\n")
                }
            }
            "reaction" => {
                let r = m.get("reaction").cloned().unwrap_or(Value::Null);
                let emoji = s(&r, "emoji").map(|e| short(e, 16)).unwrap_or_default();
                meta.insert(
                    "reaction".into(),
                    json!({"message_id": s(&r, "message_id"), "emoji": emoji}),
                );
                if emoji.is_empty() {
                    "[reaction removed]".into()
                } else {
                    format!("[reaction: {emoji}]")
                }
            }
            "interactive" => {
                let i = m.get("interactive").cloned().unwrap_or(Value::Null);
                let itype = s(&i, "type").unwrap_or("");
                let reply = i.get(itype).cloned().unwrap_or(Value::Null);
                let title = s(&reply, "title").unwrap_or("").to_string();
                meta.insert(
                    "interactive".into(),
                    json!({"type": short(itype, 40), "id": s(&reply, "id"), "title": title,
                           "description": s(&reply, "description")}),
                );
                match s(&reply, "description") {
                    Some(d) if !d.trim().is_empty() => format!("{title}\n{d}"),
                    _ if title.is_empty() => "[interactive reply]".into(),
                    _ => title,
                }
            }
            "button" => {
                let b = m.get("button").cloned().unwrap_or(Value::Null);
                let text = s(&b, "text").unwrap_or("").to_string();
                meta.insert(
                    "button".into(),
                    json!({"text": text, "payload": s(&b, "payload")}),
                );
                if text.is_empty() {
                    "[button]".into()
                } else {
                    text
                }
            }
            "order" => "[order]".into(),
            "unsupported" | "unknown" => {
                let why = m
                    .get("errors")
                    .and_then(|e| e.get(0))
                    .and_then(|e| s(e, "title"))
                    .map(|t| format!(": {}", short(t, 100)))
                    .unwrap_or_default();
                format!("[a message WhatsApp does not support{why}]")
            }
            other => format!("[{} message]", short(other, 40)),
        };
        if let Some(c) = m.get("context") {
            meta.insert(
                "context".into(),
                json!({"id": s(c, "id"), "from": s(c, "from"),
                       "forwarded": c.get("forwarded").and_then(Value::as_bool),
                       "frequently_forwarded": c.get("frequently_forwarded").and_then(Value::as_bool)}),
            );
        }
        if let Some(r) = m.get("referral") {
            meta.insert(
                "referral".into(),
                json!({"source_url": s(r, "source_url"), "headline": s(r, "headline"),
                       "source_type": s(r, "source_type")}),
            );
        }
        let name = names
            .iter()
            .find(|(w, _)| *w == from)
            .map(|(_, n)| n.clone())
            .filter(|n| !n.trim().is_empty());
        Some(Inbound {
            channel: Channel::WhatsApp,
            account: self.account.clone(),
            external_id: id.to_string(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Phone, format!("+{from}")),
            linked: Vec::new(),
            customer_name: name,
            author: None,
            subject: None,
            body,
            sent_at: timestamp(m, received_at),
            meta: Some(Value::Object(meta)),
            cursor: None,
        })
    }
}

/// A delivery status of a message we sent.
fn status(st: &Value, received_at: Millis) -> Option<StatusReport> {
    let id = s(st, "id")
        .map(str::trim)
        .filter(|i| !i.is_empty() && i.len() <= 256)?;
    let delivery = match s(st, "status")? {
        "sent" => Delivery::Sent,
        "delivered" => Delivery::Delivered,
        "read" => Delivery::Read,
        "failed" => Delivery::Failed,
        // "deleted", "warning" and whatever comes next: nothing braid shows.
        _ => return None,
    };
    let error = (delivery == Delivery::Failed).then(|| {
        let e = st.get("errors").and_then(|e| e.get(0));
        let code = e.and_then(|e| e.get("code")).and_then(Value::as_i64);
        let title = e
            .and_then(|e| s(e, "title").or_else(|| s(e, "message")))
            .map(|t| short(t, 200));
        let details = e
            .and_then(|e| e.get("error_data"))
            .and_then(|d| s(d, "details"))
            .map(|t| short(t, 300))
            .filter(|d| Some(d) != title.as_ref());
        let mut text = match (code, title) {
            (Some(c), Some(t)) => format!("{c}: {t}"),
            (Some(c), None) => format!("{c}"),
            (None, Some(t)) => t,
            (None, None) => "WhatsApp could not deliver it".into(),
        };
        if let Some(d) = details {
            text.push_str(&format!(" ({d})"));
        }
        text
    });
    Some(StatusReport {
        channel: Channel::WhatsApp,
        external_id: id.to_string(),
        delivery,
        error,
        at: timestamp(st, received_at),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PNID: &str = "106540352242922";

    fn source() -> WhatsAppSource {
        WhatsAppSource::new(PNID, "shop", b"app-secret".to_vec(), b"verify-me".to_vec())
    }

    fn hook(value: Value) -> Vec<u8> {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
            {"field": "messages", "value": value}]}]})
        .to_string()
        .into_bytes()
    }

    fn with_messages(messages: Value) -> Vec<u8> {
        hook(json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": "4915112345678"}],
            "messages": messages}))
    }

    fn one(m: Value) -> Inbound {
        let mut items = source().parse(&with_messages(json!([m])), 5).unwrap();
        assert_eq!(items.len(), 1);
        match items.pop() {
            Some(HookItem::Message(m)) => *m,
            other => panic!("{other:?}"),
        }
    }

    fn msg(kind: &str, extra: Value) -> Value {
        let mut m = json!({"from": "4915112345678", "id": "wamid.A1", "timestamp": "1765000000",
                           "type": kind});
        if let (Value::Object(a), Value::Object(b)) = (&mut m, extra) {
            a.extend(b);
        }
        m
    }

    #[test]
    fn a_text_is_a_message_of_the_phone_with_the_profile_name() {
        let m = one(msg("text", json!({"text": {"body": "Where is my order?"}})));
        assert_eq!(m.channel, Channel::WhatsApp);
        assert_eq!(m.account, "shop");
        assert_eq!(m.external_id, "wamid.A1");
        assert_eq!(
            m.customer,
            Claim::new(IdentityKind::Phone, "+4915112345678")
        );
        assert_eq!(m.customer_name.as_deref(), Some("Ana Souza"));
        assert_eq!(m.body, "Where is my order?");
        assert_eq!(m.sent_at, 1_765_000_000_000);
        assert_eq!(m.direction, Direction::In);
    }

    #[test]
    fn media_are_placeholders_with_their_id_kept() {
        let m = one(msg(
            "image",
            json!({"image": {"id": "1234567890", "mime_type": "image/jpeg", "sha256": "abc",
                             "caption": "the box"}}),
        ));
        assert_eq!(m.body, "[image: the box]");
        let a = &m.meta.as_ref().unwrap()["attachment"];
        assert_eq!(a["media_id"], "1234567890");
        assert_eq!(a["kind"], "image");
        assert_eq!(a["mime_type"], "image/jpeg");
        let m = one(msg(
            "document",
            json!({"document": {"id": "9", "filename": "../invoice.pdf", "mime_type": "application/pdf"}}),
        ));
        assert!(m.body.starts_with("[document: "), "{}", m.body);
        assert!(!m.body.contains('/'), "{}", m.body);
        let m = one(msg("audio", json!({"audio": {"id": "7", "voice": true}})));
        assert_eq!(m.body, "[voice message]");
        let m = one(msg(
            "sticker",
            json!({"sticker": {"id": "8", "animated": false}}),
        ));
        assert_eq!(m.body, "[sticker]");
        let m = one(msg("video", json!({"video": {"id": "6"}})));
        assert_eq!(m.body, "[video]");
    }

    #[test]
    fn other_kinds_read_well() {
        let m = one(msg(
            "location",
            json!({"location": {"latitude": 52.52, "longitude": 13.405, "name": "Shop",
                                "address": "Main St 1"}}),
        ));
        assert_eq!(
            m.body,
            "[location: Shop · Main St 1 · 52.520000, 13.405000]"
        );
        let m = one(msg(
            "contacts",
            json!({"contacts": [{"name": {"formatted_name": "Bob"},
                                 "phones": [{"phone": "+1 555 0100", "wa_id": "15550100"}]}]}),
        ));
        assert_eq!(m.body, "[contact: Bob · +1 555 0100]");
        assert!(m.linked.is_empty());
        let m = one(msg(
            "reaction",
            json!({"reaction": {"message_id": "wamid.OUT", "emoji": "👍"}}),
        ));
        assert_eq!(m.body, "[reaction: 👍]");
        assert_eq!(
            m.meta.as_ref().unwrap()["reaction"]["message_id"],
            "wamid.OUT"
        );
        let m = one(msg(
            "interactive",
            json!({"interactive": {"type": "button_reply",
                                   "button_reply": {"id": "yes-1", "title": "Yes"}}}),
        ));
        assert_eq!(m.body, "Yes");
        assert_eq!(m.meta.as_ref().unwrap()["interactive"]["id"], "yes-1");
        let m = one(msg(
            "interactive",
            json!({"interactive": {"type": "list_reply",
                   "list_reply": {"id": "r2", "title": "Return", "description": "Send it back"}}}),
        ));
        assert_eq!(m.body, "Return\nSend it back");
        let m = one(msg(
            "button",
            json!({"button": {"text": "Track", "payload": "T1"}}),
        ));
        assert_eq!(m.body, "Track");
        let m = one(msg(
            "unsupported",
            json!({"errors": [{"code": 131051, "title": "Message type unknown"}]}),
        ));
        assert_eq!(
            m.body,
            "[a message WhatsApp does not support: Message type unknown]"
        );
    }

    #[test]
    fn replies_keep_their_context() {
        let m = one(msg(
            "text",
            json!({"text": {"body": "this one"}, "context": {"from": "15550001111", "id": "wamid.OUT"}}),
        ));
        assert_eq!(m.meta.as_ref().unwrap()["context"]["id"], "wamid.OUT");
    }

    #[test]
    fn statuses_become_reports_with_the_error() {
        let body = hook(json!({"messaging_product": "whatsapp",
            "metadata": {"phone_number_id": PNID},
            "statuses": [
                {"id": "wamid.O1", "status": "delivered", "timestamp": "1765000100",
                 "recipient_id": "4915112345678"},
                {"id": "wamid.O2", "status": "failed", "timestamp": "1765000200",
                 "recipient_id": "4915112345678",
                 "errors": [{"code": 131047, "title": "Re-engagement message",
                             "error_data": {"details": "Message failed to send because more than 24 hours have passed"}}]},
                {"id": "wamid.O3", "status": "deleted", "timestamp": "1"}]}));
        let items = source().parse(&body, 5).unwrap();
        assert_eq!(items.len(), 2);
        let HookItem::Status(a) = &items[0] else {
            panic!()
        };
        assert_eq!(a.external_id, "wamid.O1");
        assert_eq!(a.delivery, Delivery::Delivered);
        assert_eq!(a.at, 1_765_000_100_000);
        assert_eq!(a.error, None);
        let HookItem::Status(b) = &items[1] else {
            panic!()
        };
        assert_eq!(b.delivery, Delivery::Failed);
        assert_eq!(
            b.error.as_deref(),
            Some(
                "131047: Re-engagement message (Message failed to send because more than 24 hours have passed)"
            )
        );
    }

    #[test]
    fn other_numbers_and_other_objects_are_ignored() {
        let body = hook(json!({"metadata": {"phone_number_id": "999"},
            "messages": [msg("text", json!({"text": {"body": "x"}}))]}));
        assert!(source().parse(&body, 5).unwrap().is_empty());
        let page = json!({"object": "page", "entry": []}).to_string();
        assert!(source().parse(page.as_bytes(), 5).unwrap().is_empty());
        assert!(source().parse(b"[1]", 5).is_err());
        assert!(
            source()
                .parse(b"{\"object\":\"whatsapp_business_account\"}", 5)
                .is_err()
        );
        // A message without a sender is skipped, the rest kept.
        let items = source()
            .parse(
                &with_messages(json!([{"id": "x", "type": "text"},
                                      msg("text", json!({"text": {"body": "ok"}}))])),
                5,
            )
            .unwrap();
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn handshake_and_signature() {
        let s = source();
        assert_eq!(
            s.handshake("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42")
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            s.handshake("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42"),
            None
        );
        let open = WhatsAppSource::new(PNID, "shop", b"k".to_vec(), Vec::new());
        assert_eq!(
            open.handshake("hub.mode=subscribe&hub.verify_token=&hub.challenge=42"),
            None
        );
        let body = with_messages(json!([]));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            verify::meta_sign(b"app-secret", &body).parse().unwrap(),
        );
        let req = HookRequest {
            path: "whatsapp",
            query: "",
            headers: &headers,
            body: &body,
            now: 0,
        };
        assert_eq!(s.verify(&req), Ok(()));
        let req = HookRequest {
            path: "whatsapp",
            query: "",
            headers: &headers,
            body: b"{}",
            now: 0,
        };
        assert_eq!(s.verify(&req), Err(BadSignature::Mismatch));
    }
}
