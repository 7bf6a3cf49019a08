//! Telegram updates → [`Inbound`] messages.
//!
//! - External id: `"{chat id}:{message id}"` (unique per bot). An edit is stored as a NEW message
//!   `"{chat id}:{message id}:edit:{update id}"`, its body marked "[edited]", with
//!   `meta.edit_of` naming the original, so the timeline shows what was first written and what
//!   it became (and a replayed update is still a duplicate).
//! - Media become typed placeholders ("[photo 1280×960, 120 KB]") plus the caption; the file id,
//!   name, size and type go in `meta.attachment` (what a download through getFile needs).
//! - A reply keeps `meta.reply_to` (the external id of the message it answers) and a short
//!   excerpt of it.
//! - A contact card whose `user_id` is the sender's own links its phone number to the contact
//!   (`Inbound.linked`); someone else's card is only shown.
//! - Only private chats are ingested (a support bot talks to one person per chat); group and
//!   channel posts, and update kinds braid does not handle, are skipped.

use crate::identity::Claim;
use crate::ingest::Inbound;
use crate::model::{Channel, Direction, IdentityKind};
use serde_json::{Value, json};
use teloxide::types::{Message, Update, UpdateKind};

/// The external id of a message.
pub fn external_id(chat_id: i64, message_id: i32) -> String {
    format!("{chat_id}:{message_id}")
}

/// The message an update delivers, if braid ingests it. `cursor` is saved with it.
pub fn to_inbound(
    update: &Update,
    account: &str,
    cursor: Option<(String, String)>,
) -> Option<Inbound> {
    let (m, edit) = match &update.kind {
        UpdateKind::Message(m) => (m, false),
        UpdateKind::EditedMessage(m) => (m, true),
        _ => return None,
    };
    let mut inbound = message_inbound(m, account, edit.then_some(update.id.0))?;
    inbound.cursor = cursor;
    Some(inbound)
}

/// A message from a private chat as an [`Inbound`]; `edit`: the update id of an edit.
pub fn message_inbound(m: &Message, account: &str, edit: Option<u32>) -> Option<Inbound> {
    if !m.chat.is_private() {
        return None;
    }
    let from = m.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let chat = m.chat.id.0;
    let original = external_id(chat, m.id.0);
    let (mut body, attachment) = content(m);
    let mut linked = Vec::new();
    let mut meta = serde_json::Map::new();
    meta.insert("chat_id".into(), json!(chat));
    meta.insert("message_id".into(), json!(m.id.0));
    if let Some(u) = &from.username {
        meta.insert("username".into(), json!(u));
    }
    if let Some(a) = attachment {
        meta.insert("attachment".into(), a);
    }
    if let Some(c) = m.contact() {
        // Only the sender's own card proves the number is theirs.
        let own = c.user_id.is_some_and(|u| u == from.id);
        if own {
            linked.push(Claim::new(IdentityKind::Phone, phone(&c.phone_number)));
        }
        meta.insert("contact_is_sender".into(), json!(own));
    }
    if let Some(r) = m.reply_to_message() {
        meta.insert("reply_to".into(), json!(external_id(r.chat.id.0, r.id.0)));
        let (text, _) = content(r);
        let excerpt: String = text.chars().take(120).collect();
        meta.insert("reply_to_excerpt".into(), json!(excerpt));
    }
    let (external, sent_at) = match edit {
        Some(update_id) => {
            meta.insert("edit_of".into(), json!(original));
            let at = m.edit_date().unwrap_or(&m.date);
            meta.insert("edit_date".into(), json!(at.timestamp()));
            body = format!("[edited] {body}");
            (
                format!("{original}:edit:{update_id}"),
                at.timestamp_millis(),
            )
        }
        None => (original, m.date.timestamp_millis()),
    };
    let name = from.full_name();
    Some(Inbound {
        channel: Channel::Telegram,
        account: account.to_string(),
        external_id: external,
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Telegram, from.id.0.to_string()),
        linked,
        customer_name: (!name.trim().is_empty()).then_some(name),
        author: None,
        subject: None,
        body,
        sent_at,
        meta: Some(Value::Object(meta)),
        cursor: None,
    })
}

/// Telegram sends phone numbers without the `+` ("442079460958"); identities want E.164.
fn phone(raw: &str) -> String {
    let t = raw.trim();
    if t.starts_with('+') || t.starts_with("00") {
        t.to_string()
    } else {
        format!("+{t}")
    }
}

/// "1.2 MB", "340 KB", "12 B"; unknown sizes (Telegram's fallback u32::MAX) are None.
pub fn human_size(bytes: u32) -> Option<String> {
    if bytes == u32::MAX {
        return None;
    }
    let b = f64::from(bytes);
    Some(if bytes < 1024 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.0} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    })
}

fn mmss(secs: u32) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The placeholder for a file: "[kind details, size]".
fn placeholder(kind: &str, details: &[String], size: u32) -> String {
    let mut parts: Vec<String> = details.iter().filter(|d| !d.is_empty()).cloned().collect();
    if let Some(s) = human_size(size) {
        parts.push(s);
    }
    if parts.is_empty() {
        format!("[{kind}]")
    } else {
        format!("[{kind} {}]", parts.join(", "))
    }
}

fn file_meta(kind: &str, file: &teloxide::types::FileMeta) -> serde_json::Map<String, Value> {
    let mut a = serde_json::Map::new();
    a.insert("kind".into(), json!(kind));
    a.insert("file_id".into(), json!(file.id.0));
    a.insert("file_unique_id".into(), json!(file.unique_id.0));
    if file.size != u32::MAX {
        a.insert("size".into(), json!(file.size));
    }
    a
}

/// The text of a message and, for a file or a place, its attachment meta.
fn content(m: &Message) -> (String, Option<Value>) {
    let caption = m.caption().map(str::to_string);
    let with_caption = |p: String| match &caption {
        Some(c) if !c.trim().is_empty() => format!("{p}\n{c}"),
        _ => p,
    };
    if let Some(t) = m.text() {
        return (t.to_string(), None);
    }
    if let Some(sizes) = m.photo() {
        // The largest size is the one worth saving.
        if let Some(p) = sizes
            .iter()
            .max_by_key(|p| u64::from(p.width) * u64::from(p.height))
        {
            let mut a = file_meta("photo", &p.file);
            a.insert("width".into(), json!(p.width));
            a.insert("height".into(), json!(p.height));
            let text = placeholder("photo", &[format!("{}×{}", p.width, p.height)], p.file.size);
            return (with_caption(text), Some(Value::Object(a)));
        }
    }
    if let Some(d) = m.document() {
        let mut a = file_meta("document", &d.file);
        let name = d.file_name.clone().unwrap_or_default();
        a.insert("file_name".into(), json!(name));
        if let Some(mt) = &d.mime_type {
            a.insert("mime_type".into(), json!(mt.to_string()));
        }
        let text = placeholder("document", &[name], d.file.size);
        return (with_caption(text), Some(Value::Object(a)));
    }
    if let Some(v) = m.voice() {
        let mut a = file_meta("voice", &v.file);
        a.insert("duration".into(), json!(v.duration.seconds()));
        let text = placeholder("voice message", &[mmss(v.duration.seconds())], v.file.size);
        return (with_caption(text), Some(Value::Object(a)));
    }
    if let Some(s) = m.sticker() {
        let mut a = file_meta("sticker", &s.file);
        if let Some(e) = &s.emoji {
            a.insert("emoji".into(), json!(e));
        }
        let text = match &s.emoji {
            Some(e) => format!("[sticker {e}]"),
            None => "[sticker]".to_string(),
        };
        return (text, Some(Value::Object(a)));
    }
    if let Some(l) = m.location() {
        let a = json!({ "kind": "location", "latitude": l.latitude, "longitude": l.longitude });
        let text = format!("[location {:.5}, {:.5}]", l.latitude, l.longitude);
        return (text, Some(a));
    }
    if let Some(c) = m.contact() {
        let name = match &c.last_name {
            Some(l) => format!("{} {l}", c.first_name),
            None => c.first_name.clone(),
        };
        let a = json!({
            "kind": "contact",
            "phone_number": c.phone_number,
            "name": name,
            "user_id": c.user_id.map(|u| u.0),
        });
        return (
            format!("[contact card: {name}, {}]", phone(&c.phone_number)),
            Some(a),
        );
    }
    if let Some(v) = m.video() {
        let mut a = file_meta("video", &v.file);
        if let Some(n) = &v.file_name {
            a.insert("file_name".into(), json!(n));
        }
        a.insert("duration".into(), json!(v.duration.seconds()));
        let text = placeholder("video", &[mmss(v.duration.seconds())], v.file.size);
        return (with_caption(text), Some(Value::Object(a)));
    }
    if let Some(au) = m.audio() {
        let mut a = file_meta("audio", &au.file);
        let name = au
            .file_name
            .clone()
            .or_else(|| au.title.clone())
            .unwrap_or_default();
        a.insert("file_name".into(), json!(name));
        let text = placeholder("audio", &[name], au.file.size);
        return (with_caption(text), Some(Value::Object(a)));
    }
    if let Some(an) = m.animation() {
        let a = file_meta("animation", &an.file);
        let text = placeholder("animation", &[], an.file.size);
        return (with_caption(text), Some(Value::Object(a)));
    }
    if let Some(v) = m.video_note() {
        let a = file_meta("video_note", &v.file);
        let text = placeholder("video message", &[mmss(v.duration.seconds())], v.file.size);
        return (text, Some(Value::Object(a)));
    }
    match caption {
        Some(c) => (c, None),
        None => (
            "[a kind of Telegram message braid does not show yet]".to_string(),
            Some(json!({ "kind": "unsupported" })),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Parsed from text like teloxide does (its `Update` does not deserialize from a `Value`).
    fn update(v: Value) -> Update {
        serde_json::from_str(&v.to_string()).unwrap()
    }

    fn from() -> Value {
        json!({"id": 555, "is_bot": false, "first_name": "Ann", "last_name": "Lee", "username": "annlee", "language_code": "en"})
    }

    fn chat() -> Value {
        json!({"id": 555, "first_name": "Ann", "last_name": "Lee", "username": "annlee", "type": "private"})
    }

    fn msg(id: i32, extra: Value) -> Value {
        let mut m =
            json!({"message_id": id, "from": from(), "chat": chat(), "date": 1_700_000_000});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    #[test]
    fn text_message() {
        let u = update(json!({"update_id": 10, "message": msg(7, json!({"text": "hello"}))}));
        let i = to_inbound(&u, "", Some(("offset".into(), "11".into()))).unwrap();
        assert_eq!(i.external_id, "555:7");
        assert_eq!(i.body, "hello");
        assert_eq!(i.customer, Claim::new(IdentityKind::Telegram, "555"));
        assert_eq!(i.customer_name.as_deref(), Some("Ann Lee"));
        assert_eq!(i.sent_at, 1_700_000_000_000);
        assert_eq!(i.cursor, Some(("offset".into(), "11".into())));
        assert!(i.linked.is_empty());
    }

    #[test]
    fn media_placeholders_keep_file_data() {
        let u = update(json!({"update_id": 1, "message": msg(1, json!({
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "file_size": 1000, "width": 90, "height": 60},
                {"file_id": "big", "file_unique_id": "b", "file_size": 123_456, "width": 1280, "height": 960}
            ],
            "caption": "the broken part"
        }))}));
        let i = to_inbound(&u, "", None).unwrap();
        assert_eq!(i.body, "[photo 1280×960, 121 KB]\nthe broken part");
        let meta = i.meta.unwrap();
        assert_eq!(meta["attachment"]["file_id"], "big");
        assert_eq!(meta["attachment"]["size"], 123_456);

        let u = update(json!({"update_id": 2, "message": msg(2, json!({
            "document": {"file_name": "invoice.pdf", "mime_type": "application/pdf", "file_id": "d1", "file_unique_id": "du", "file_size": 2_500_000}
        }))}));
        let i = to_inbound(&u, "", None).unwrap();
        assert_eq!(i.body, "[document invoice.pdf, 2.4 MB]");
        assert_eq!(i.meta.unwrap()["attachment"]["file_name"], "invoice.pdf");

        let u = update(json!({"update_id": 3, "message": msg(3, json!({
            "voice": {"duration": 67, "mime_type": "audio/ogg", "file_id": "v1", "file_unique_id": "vu", "file_size": 20_000}
        }))}));
        assert_eq!(
            to_inbound(&u, "", None).unwrap().body,
            "[voice message 1:07, 20 KB]"
        );

        let u = update(json!({"update_id": 4, "message": msg(4, json!({
            "sticker": {"file_id": "st", "file_unique_id": "stu", "type": "regular", "width": 512, "height": 512,
                        "is_animated": false, "is_video": false, "emoji": "👍", "file_size": 9000}
        }))}));
        assert_eq!(to_inbound(&u, "", None).unwrap().body, "[sticker 👍]");

        let u = update(json!({"update_id": 5, "message": msg(5, json!({
            "location": {"latitude": 51.5074, "longitude": -0.1278}
        }))}));
        assert_eq!(
            to_inbound(&u, "", None).unwrap().body,
            "[location 51.50740, -0.12780]"
        );
    }

    #[test]
    fn replies_keep_the_reference() {
        let u = update(json!({"update_id": 9, "message": msg(9, json!({
            "text": "yes, that one",
            "reply_to_message": msg(4, json!({"text": "Is it the blue one?"}))
        }))}));
        let meta = to_inbound(&u, "", None).unwrap().meta.unwrap();
        assert_eq!(meta["reply_to"], "555:4");
        assert_eq!(meta["reply_to_excerpt"], "Is it the blue one?");
    }

    #[test]
    fn an_edit_is_a_new_version() {
        let mut m = msg(7, json!({"text": "hello, wrold"}));
        m["edit_date"] = json!(1_700_000_060);
        let u = update(json!({"update_id": 12, "edited_message": m}));
        let i = to_inbound(&u, "", None).unwrap();
        assert_eq!(i.external_id, "555:7:edit:12");
        assert_eq!(i.body, "[edited] hello, wrold");
        assert_eq!(i.sent_at, 1_700_000_060_000);
        assert_eq!(i.meta.unwrap()["edit_of"], "555:7");
    }

    #[test]
    fn only_the_senders_own_card_links() {
        let own = update(json!({"update_id": 1, "message": msg(1, json!({
            "contact": {"phone_number": "442079460958", "first_name": "Ann", "user_id": 555}
        }))}));
        let i = to_inbound(&own, "", None).unwrap();
        assert_eq!(
            i.linked,
            vec![Claim::new(IdentityKind::Phone, "+442079460958")]
        );
        assert_eq!(i.body, "[contact card: Ann, +442079460958]");

        let other = update(json!({"update_id": 2, "message": msg(2, json!({
            "contact": {"phone_number": "+442079460959", "first_name": "Bob", "user_id": 777}
        }))}));
        assert!(to_inbound(&other, "", None).unwrap().linked.is_empty());
        let no_user = update(json!({"update_id": 3, "message": msg(3, json!({
            "contact": {"phone_number": "+442079460959", "first_name": "Bob"}
        }))}));
        assert!(to_inbound(&no_user, "", None).unwrap().linked.is_empty());
    }

    #[test]
    fn groups_and_other_updates_are_skipped() {
        let mut m = msg(1, json!({"text": "hi all"}));
        m["chat"] = json!({"id": -100, "title": "Fans", "type": "group"});
        assert!(to_inbound(&update(json!({"update_id": 1, "message": m})), "", None).is_none());
        let cb = update(json!({"update_id": 2, "callback_query": {
            "id": "q", "from": from(), "chat_instance": "ci", "data": "x"
        }}));
        assert!(to_inbound(&cb, "", None).is_none());
    }
}
