//! Store, ingest and identity unit tests on in-memory SQLite.
//!
//! Every test builds its own store and feeds it through the real ingest path with explicit
//! timestamps, so nothing depends on the wall clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::messages::reply_subject;
use super::outbox::MAX_ATTEMPTS;
use super::*;
use crate::identity::Claim;
use crate::ingest::{Inbound, IngestError, Ingested, Settings, ingest_in};
use crate::model::*;
use std::collections::HashSet;

/// 2026-01-01T00:00:00Z
const T0: Millis = 1_767_225_600_000;
const SEC: Millis = 1_000;
const MIN: Millis = 60 * SEC;
const HOUR: Millis = 60 * MIN;
const DAY: Millis = 24 * HOUR;

// ---------------------------------------------------------------------------------------------
// helpers

fn mem() -> Store {
    Store::open_in_memory().unwrap()
}

fn inbound(
    channel: Channel,
    ext: &str,
    kind: IdentityKind,
    who: &str,
    body: &str,
    at: Millis,
) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: Vec::new(),
        customer_name: None,
        author: None,
        subject: None,
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn email(ext: &str, from: &str, body: &str, at: Millis) -> Inbound {
    let mut m = inbound(Channel::Email, ext, IdentityKind::Email, from, body, at);
    m.subject = Some("Order question".into());
    m
}

fn tg(ext: &str, user: &str, body: &str, at: Millis) -> Inbound {
    inbound(
        Channel::Telegram,
        ext,
        IdentityKind::Telegram,
        user,
        body,
        at,
    )
}

fn web(ext: &str, visitor: &str, body: &str, at: Millis) -> Inbound {
    inbound(
        Channel::WebChat,
        ext,
        IdentityKind::WebChat,
        visitor,
        body,
        at,
    )
}

fn linked(mut m: Inbound, kind: IdentityKind, value: &str) -> Inbound {
    m.linked.push(Claim::new(kind, value));
    m
}

fn named(mut m: Inbound, name: &str) -> Inbound {
    m.customer_name = Some(name.into());
    m
}

/// Ingest in one transaction; `now` (arrival) is one second after the message was written.
fn put(store: &mut Store, msg: &Inbound) -> Ingested {
    put_at(store, msg, &Settings::default(), msg.sent_at + SEC)
}

fn put_at(store: &mut Store, msg: &Inbound, settings: &Settings, now: Millis) -> Ingested {
    try_put(store, msg, settings, now).unwrap()
}

fn try_put(
    store: &mut Store,
    msg: &Inbound,
    settings: &Settings,
    now: Millis,
) -> std::result::Result<Ingested, IngestError> {
    let tx = store.write().unwrap();
    let out = ingest_in(&tx, msg, settings, now)?;
    tx.commit().unwrap();
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
struct Put {
    message: MessageId,
    conversation: ConversationId,
    contact: ContactId,
    new_conversation: bool,
}

fn stored(i: Ingested) -> Put {
    match i {
        Ingested::Stored {
            message,
            conversation,
            contact,
            new_conversation,
        } => Put {
            message,
            conversation,
            contact,
            new_conversation,
        },
        other => panic!("expected a stored message, got {other:?}"),
    }
}

fn put_stored(store: &mut Store, msg: &Inbound) -> Put {
    stored(put(store, msg))
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn event_kinds(store: &Store, after: EventId) -> Vec<String> {
    store
        .events_since(after, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Conversations of a contact that are not resolved.
fn active_of(store: &Store, contact: ContactId) -> Vec<ConversationId> {
    store
        .contact_conversations(contact, 100)
        .unwrap()
        .into_iter()
        .filter(|c| c.status.is_active())
        .map(|c| c.id)
        .collect()
}

fn forbidden(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Safe multi-line text: no controls but newline and tab, no bidi overrides.
fn clean_text(s: &str) -> bool {
    s.chars().all(|c| c == '\n' || c == '\t' || !forbidden(c))
}

/// Safe one-line text: no controls at all, no bidi overrides.
fn clean_line(s: &str) -> bool {
    !s.chars().any(forbidden)
}

// ---------------------------------------------------------------------------------------------
// ingest idempotency

#[test]
fn same_external_id_twice_stores_one_message() {
    let mut s = mem();
    let msg = email("<m1@x.org>", "ann@x.org", "Where is my parcel?", T0);
    let first = put_stored(&mut s, &msg);
    assert!(first.new_conversation);
    let mark = s.last_event_id().unwrap();

    let again = put_at(&mut s, &msg, &Settings::default(), T0 + HOUR);
    assert_eq!(
        again,
        Ingested::Duplicate {
            message: first.message,
            conversation: first.conversation,
        }
    );
    // Even a replay with other content is the same message: the id is the identity.
    let mut edited = msg.clone();
    edited.body = "changed".into();
    assert!(matches!(put(&mut s, &edited), Ingested::Duplicate { .. }));

    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 1);
    assert_eq!(count(&s, "SELECT count(*) FROM conversations"), 1);
    assert_eq!(s.conversation(first.conversation).unwrap().message_count, 1);
    assert_eq!(
        s.message(first.message).unwrap().body,
        "Where is my parcel?"
    );
    assert!(
        event_kinds(&s, mark).is_empty(),
        "a duplicate changes nothing"
    );
}

#[test]
fn external_id_is_unique_per_channel_and_account_only() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("42", "ann@x.org", "one", T0));
    let mut other_account = email("42", "ann@x.org", "two", T0 + MIN);
    other_account.account = "sales".into();
    let b = put_stored(&mut s, &other_account);
    let c = put_stored(&mut s, &tg("42", "777", "three", T0 + 2 * MIN));
    let d = put_stored(&mut s, &web("42", "v1", "four", T0 + 3 * MIN));
    let ids: HashSet<_> = [a.message, b.message, c.message, d.message].into();
    assert_eq!(ids.len(), 4);
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 4);
    // ... and each of them is idempotent on its own key.
    assert!(
        matches!(put(&mut s, &other_account), Ingested::Duplicate { message, .. } if message == b.message)
    );
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 4);
}

#[test]
fn external_id_is_required_and_compared_after_sanitizing() {
    let mut s = mem();
    for bad in ["", "   ", "\x1b[31m"] {
        let m = email(bad, "ann@x.org", "hi", T0);
        assert!(matches!(
            try_put(&mut s, &m, &Settings::default(), T0),
            Err(IngestError::NoExternalId)
        ));
    }
    let a = put_stored(&mut s, &email("<id@x>", "ann@x.org", "hi", T0));
    let dup = put(&mut s, &email(" <id@x>\x1b[0m ", "ann@x.org", "hi", T0));
    assert!(matches!(dup, Ingested::Duplicate { message, .. } if message == a.message));
}

#[test]
fn cursor_is_saved_with_the_message_and_on_a_duplicate() {
    let mut s = mem();
    let mut m = email("<m1@x.org>", "ann@x.org", "hi", T0);
    m.account = "support".into();
    m.cursor = Some(("INBOX.uid".into(), "10".into()));
    put(&mut s, &m);
    assert_eq!(
        s.cursor("email", "support", "INBOX.uid")
            .unwrap()
            .as_deref(),
        Some("10")
    );
    assert_eq!(s.cursor("email", "", "INBOX.uid").unwrap(), None);

    // A replay after a crash: the message is a duplicate, the cursor still moves on.
    m.cursor = Some(("INBOX.uid".into(), "11".into()));
    assert!(matches!(put(&mut s, &m), Ingested::Duplicate { .. }));
    assert_eq!(
        s.cursor("email", "support", "INBOX.uid")
            .unwrap()
            .as_deref(),
        Some("11")
    );

    // A message that fails to ingest does not move the cursor (same transaction).
    let mut bad = email("<m2@x.org>", "not an address", "hi", T0);
    bad.account = "support".into();
    bad.cursor = Some(("INBOX.uid".into(), "12".into()));
    assert!(crate::ingest::ingest(&mut s, &bad, &Settings::default()).is_err());
    assert_eq!(
        s.cursor("email", "support", "INBOX.uid")
            .unwrap()
            .as_deref(),
        Some("11")
    );
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 1);
}

// ---------------------------------------------------------------------------------------------
// identity

#[test]
fn email_case_and_whitespace_are_one_contact() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("1", "Ann@X.org ", "first", T0));
    let b = put_stored(&mut s, &email("2", "ann@x.org", "second", T0 + MIN));
    let c = put_stored(&mut s, &email("3", " <ANN@x.ORG>", "third", T0 + 2 * MIN));
    assert_eq!(a.contact, b.contact);
    assert_eq!(a.contact, c.contact);
    assert_eq!(a.conversation, b.conversation);
    assert_eq!(a.conversation, c.conversation);
    let ids = s.identities(a.contact).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        (ids[0].kind, ids[0].value.as_str()),
        (IdentityKind::Email, "ann@x.org")
    );
    assert_eq!(
        s.contact_by_identity(IdentityKind::Email, "ann@x.org")
            .unwrap(),
        Some(a.contact)
    );
    assert_eq!(s.contact(a.contact).unwrap().name, "ann@x.org");
    assert_eq!(count(&s, "SELECT count(*) FROM contacts"), 1);
}

#[test]
fn webchat_visitor_giving_email_joins_the_email_contact() {
    let mut s = mem();
    let mail = put_stored(
        &mut s,
        &named(
            email("<m1@x>", "ann@x.org", "Tuesday: by email", T0 + DAY),
            "Ann Lee",
        ),
    );
    // The visitor types their address into the widget's form.
    let chat = put_stored(
        &mut s,
        &linked(
            web("w1", "v-123", "Wednesday: on the site", T0 + 2 * DAY),
            IdentityKind::Email,
            "ANN@x.org",
        ),
    );
    assert_eq!(chat.contact, mail.contact, "one contact");
    assert_eq!(chat.conversation, mail.conversation, "one conversation");
    assert!(!chat.new_conversation);
    // A later message from the same visitor, without the form, still finds her; and one that was
    // written earlier but delivered late lands in time order.
    let later = put_stored(
        &mut s,
        &web("w2", "v-123", "Thursday: still here", T0 + 3 * DAY),
    );
    let early = put_stored(&mut s, &web("w0", "v-123", "Monday: first visit", T0));
    assert_eq!(later.contact, mail.contact);
    assert_eq!(early.contact, mail.contact);
    assert_eq!(early.conversation, mail.conversation);

    assert_eq!(s.contacts_page(None, 10).unwrap().len(), 1);
    assert_eq!(active_of(&s, mail.contact), vec![mail.conversation]);
    assert_eq!(s.queue_count(&QueueFilter::All).unwrap(), 1);

    let tl = s.timeline(mail.contact, None, 50).unwrap();
    let seen: Vec<(Channel, &str)> = tl.iter().map(|m| (m.channel, m.body.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            (Channel::WebChat, "Monday: first visit"),
            (Channel::Email, "Tuesday: by email"),
            (Channel::WebChat, "Wednesday: on the site"),
            (Channel::WebChat, "Thursday: still here"),
        ]
    );
    let conv = s.conversation(mail.conversation).unwrap();
    assert_eq!(conv.channels, vec![Channel::Email, Channel::WebChat]);
    assert_eq!(conv.message_count, 4);
    assert_eq!(conv.last_preview, "Thursday: still here");
    let kinds: Vec<IdentityKind> = s
        .identities(mail.contact)
        .unwrap()
        .iter()
        .map(|i| i.kind)
        .collect();
    assert_eq!(kinds, vec![IdentityKind::Email, IdentityKind::WebChat]);
    assert_eq!(s.contact(mail.contact).unwrap().name, "Ann Lee");
}

#[test]
fn telegram_contact_card_links_to_a_phone_an_agent_added() {
    let mut s = mem();
    let mail = put_stored(
        &mut s,
        &email("<m1@x>", "ann@x.org", "call me: +44 20 7946 0958", T0),
    );
    // The signature alone proves nothing ...
    assert!(
        s.contact_by_identity(IdentityKind::Phone, "+442079460958")
            .unwrap()
            .is_none()
    );
    // ... but the agent read it and added the number.
    let same = s
        .add_identity(
            mail.contact,
            IdentityKind::Phone,
            "+442079460958",
            "bob",
            T0 + HOUR,
        )
        .unwrap();
    assert_eq!(same, mail.contact);
    let ids = s.identities(mail.contact).unwrap();
    assert!(
        ids.iter()
            .any(|i| i.kind == IdentityKind::Phone && i.source.contains("bob"))
    );

    // Telegram user 555 shares their own contact card.
    let t = put_stored(
        &mut s,
        &linked(
            named(tg("u1", "555", "hi, it's Ann on Telegram", T0 + DAY), "Ann"),
            IdentityKind::Phone,
            "+44 20 7946 0958",
        ),
    );
    assert_eq!(t.contact, mail.contact);
    assert_eq!(t.conversation, mail.conversation);
    assert_eq!(
        s.contact_by_identity(IdentityKind::Telegram, "555")
            .unwrap(),
        Some(mail.contact)
    );
    assert_eq!(count(&s, "SELECT count(*) FROM contacts"), 1);
    // The reply can go out on either channel without asking anything.
    assert_eq!(
        s.reply_channel(mail.conversation).unwrap(),
        Channel::Telegram
    );
    assert_eq!(
        s.recipient(mail.contact, Channel::Telegram)
            .unwrap()
            .as_deref(),
        Some("555")
    );
    assert_eq!(
        s.recipient(mail.contact, Channel::Email)
            .unwrap()
            .as_deref(),
        Some("ann@x.org")
    );
}

#[test]
fn a_message_linking_two_contacts_with_open_conversations_merges_them() {
    let mut s = mem();
    // Monday: an anonymous visitor. Tuesday: an email from an unknown address. Two contacts.
    let v1 = put_stored(&mut s, &web("w1", "v-9", "do you ship to Norway?", T0));
    let v2 = put_stored(&mut s, &web("w2", "v-9", "hello?", T0 + HOUR));
    let m1 = put_stored(
        &mut s,
        &named(
            email("<m1@x>", "ann@x.org", "my order #77", T0 + DAY),
            "Ann Lee",
        ),
    );
    let m2 = put_stored(
        &mut s,
        &email("<m2@x>", "ann@x.org", "any news?", T0 + DAY + HOUR),
    );
    assert_ne!(v1.contact, m1.contact);
    assert_ne!(v1.conversation, m1.conversation);
    s.tag(v1.conversation, "shipping", false, "bob", T0 + 2 * HOUR)
        .unwrap();
    s.tag(m1.conversation, "orders", false, "bob", T0 + DAY + 2 * HOUR)
        .unwrap();
    s.assign(m1.conversation, Some("eve"), "eve", T0 + DAY + 2 * HOUR)
        .unwrap();
    let mark = s.last_event_id().unwrap();

    // Wednesday: the visitor gives their email in the widget.
    let w3 = put_stored(
        &mut s,
        &linked(
            web("w3", "v-9", "it's Ann, about #77", T0 + 2 * DAY),
            IdentityKind::Email,
            "ann@x.org",
        ),
    );
    let survivor = v1.contact; // the older contact
    let absorbed = m1.contact;
    assert_eq!(w3.contact, survivor);

    // One contact, every identity on it, the other row marked merged.
    assert_eq!(
        s.contact_by_identity(IdentityKind::Email, "ann@x.org")
            .unwrap(),
        Some(survivor)
    );
    assert_eq!(
        s.contacts_page(None, 10)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![survivor]
    );
    assert_eq!(
        count(
            &s,
            &format!("SELECT merged_into FROM contacts WHERE id = {absorbed}")
        ),
        survivor.0
    );
    assert_eq!(s.identities(absorbed).unwrap(), vec![]);
    assert_eq!(s.contact(survivor).unwrap().name, "Ann Lee");

    // Exactly one active conversation, holding every message.
    let active = active_of(&s, survivor);
    assert_eq!(
        active,
        vec![v1.conversation],
        "the older conversation survives"
    );
    assert_eq!(w3.conversation, v1.conversation);
    assert!(matches!(
        s.conversation(m1.conversation),
        Err(StoreError::NoConversation(_))
    ));
    let conv = s.conversation(v1.conversation).unwrap();
    assert_eq!(conv.status, Status::Open);
    assert_eq!(conv.message_count, 5);
    assert_eq!(conv.channels, vec![Channel::WebChat, Channel::Email]);
    assert_eq!(conv.last_preview, "it's Ann, about #77");
    assert_eq!(conv.assignee.as_deref(), Some("eve"));
    assert_eq!(
        s.conversation_tags(v1.conversation).unwrap(),
        vec!["orders", "shipping"]
    );
    let tl: Vec<MessageId> = s
        .timeline(survivor, None, 50)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        tl,
        vec![v1.message, v2.message, m1.message, m2.message, w3.message]
    );
    assert!(s.timeline(absorbed, None, 50).unwrap().is_empty());
    assert_eq!(
        count(
            &s,
            &format!(
                "SELECT count(*) FROM messages WHERE conversation_id = {}",
                m1.conversation
            )
        ),
        0
    );
    assert_eq!(s.queue_count(&QueueFilter::All).unwrap(), 1);

    // Provenance: who, why, and what moved.
    let events = s.events_since(mark, 100).unwrap();
    let merged: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "contacts_merged")
        .collect();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].contact_id, Some(survivor));
    let data: serde_json::Value = serde_json::from_str(merged[0].data.as_deref().unwrap()).unwrap();
    assert_eq!(data["survivor"], survivor.0);
    assert_eq!(data["absorbed"], absorbed.0);
    assert!(
        data["reason"].as_str().unwrap().contains("web chat"),
        "{data}"
    );
    assert_eq!(
        data["identities"],
        serde_json::json!([["email", "ann@x.org"]])
    );
    assert_eq!(
        data["folded_conversations"],
        serde_json::json!([m1.conversation.0])
    );
    // The absorbed conversation's history follows it.
    let audit = s.conversation_events(v1.conversation, 100).unwrap();
    assert!(audit.iter().any(|e| e.kind == "assigned"));
}

#[test]
fn merge_keeps_a_resolved_history_apart_and_the_newest_last_channel() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<a1@x>", "ann@x.org", "old question", T0));
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + HOUR)
        .unwrap();
    let a2 = put_stored(
        &mut s,
        &email("<a2@x>", "ann@x.org", "new question", T0 + 30 * DAY),
    );
    assert!(a2.new_conversation);
    let t = put_stored(&mut s, &tg("t1", "555", "also me", T0 + 31 * DAY));
    assert_ne!(t.contact, a.contact);
    // The agent links them by hand.
    s.add_identity(
        a.contact,
        IdentityKind::Telegram,
        "555",
        "bob",
        T0 + 32 * DAY,
    )
    .unwrap();
    assert_eq!(active_of(&s, a.contact), vec![a2.conversation]);
    assert_eq!(s.contact_conversations(a.contact, 10).unwrap().len(), 2);
    assert_eq!(
        s.conversation(a.conversation).unwrap().status,
        Status::Resolved
    );
    let c = s.contact(a.contact).unwrap();
    assert_eq!(c.last_seen, T0 + 31 * DAY);
    assert_eq!(
        c.last_channel,
        Some(Channel::Telegram),
        "the newest message was on Telegram"
    );
    let tl: Vec<MessageId> = s
        .timeline(a.contact, None, 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(tl, vec![a.message, a2.message, t.message]);
}

#[test]
fn a_merge_that_folds_a_snoozed_conversation_leaves_no_stale_snooze() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "one", T0));
    s.set_status(
        a.conversation,
        Status::Snoozed,
        Some(T0 + 9 * DAY),
        "bob",
        T0 + MIN,
    )
    .unwrap();
    let t = put_stored(&mut s, &tg("t1", "555", "two", T0 + HOUR));
    s.add_identity(
        a.contact,
        IdentityKind::Telegram,
        "555",
        "bob",
        T0 + 2 * HOUR,
    )
    .unwrap();
    let c = s.conversation(a.conversation).unwrap();
    assert_eq!(c.status, Status::Open, "the folded conversation was open");
    assert_eq!(c.snoozed_until, None);
    assert!(s.conversation(t.conversation).is_err());
    // Waking snoozed conversations later must not touch it.
    assert_eq!(s.wake_snoozed(T0 + 10 * DAY, "worker").unwrap(), 0);
}

#[test]
fn an_address_in_a_body_links_nothing() {
    let mut s = mem();
    let ann = put_stored(&mut s, &email("<a1@x>", "ann@x.org", "hello", T0));
    let visitor = put_stored(
        &mut s,
        &web(
            "w1",
            "v-1",
            "I am ann@x.org, phone +44 20 7946 0958, tg 555",
            T0 + HOUR,
        ),
    );
    let sig = put_stored(
        &mut s,
        &email(
            "<b1@x>",
            "bob@y.org",
            "Thanks\n--\nAnn Lee\nann@x.org\n+44 20 7946 0958",
            T0 + 2 * HOUR,
        ),
    );
    assert_ne!(visitor.contact, ann.contact);
    assert_ne!(sig.contact, ann.contact);
    assert_ne!(sig.contact, visitor.contact);
    assert_eq!(count(&s, "SELECT count(*) FROM contacts"), 3);
    assert_eq!(count(&s, "SELECT count(*) FROM identities"), 3);
    assert_eq!(s.identities(visitor.contact).unwrap().len(), 1);
    assert_eq!(s.identities(sig.contact).unwrap().len(), 1);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM events WHERE kind IN ('contacts_merged', 'identity_linked')"
        ),
        0
    );
}

#[test]
fn invalid_linked_identities_are_ignored_and_invalid_senders_refused() {
    let mut s = mem();
    let m = linked(
        linked(
            web("w1", "v-1", "hi", T0),
            IdentityKind::Email,
            "not-an-address",
        ),
        IdentityKind::Phone,
        "12345",
    );
    let p = put_stored(&mut s, &m);
    assert_eq!(s.identities(p.contact).unwrap().len(), 1);
    let bad = web("w2", "visitor id with spaces", "hi", T0);
    assert!(matches!(
        try_put(&mut s, &bad, &Settings::default(), T0),
        Err(IngestError::Identity(_))
    ));
    // A linked identity equal to the sender is not linked twice.
    let same = linked(
        email("<e1@x>", "ann@x.org", "hi", T0),
        IdentityKind::Email,
        "Ann@X.org",
    );
    let e = put_stored(&mut s, &same);
    assert_eq!(s.identities(e.contact).unwrap().len(), 1);
}

#[test]
fn names_improve_from_placeholders_only() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hi", T0));
    assert_eq!(s.contact(a.contact).unwrap().name, "ann@x.org");
    put(
        &mut s,
        &named(email("<2@x>", "ann@x.org", "hi", T0 + MIN), "Ann Lee"),
    );
    assert_eq!(s.contact(a.contact).unwrap().name, "Ann Lee");
    put(
        &mut s,
        &named(
            email("<3@x>", "ann@x.org", "hi", T0 + 2 * MIN),
            "Someone Else",
        ),
    );
    assert_eq!(
        s.contact(a.contact).unwrap().name,
        "Ann Lee",
        "a real name is kept"
    );

    let v = put_stored(&mut s, &web("w1", "3f9a11bc77", "hi", T0));
    assert_eq!(s.contact(v.contact).unwrap().name, "Visitor 3f9a11bc");
    put(
        &mut s,
        &named(web("w2", "3f9a11bc77", "hi", T0 + MIN), "Carol"),
    );
    assert_eq!(s.contact(v.contact).unwrap().name, "Carol");

    // A Telegram user we first knew by id only gets their name once we learn it.
    let t = put_stored(&mut s, &tg("t1", "42", "hi", T0));
    assert_eq!(s.contact(t.contact).unwrap().name, "Telegram user 42");
    put(&mut s, &named(tg("t2", "42", "hi", T0 + MIN), "Dmitri"));
    assert_eq!(s.contact(t.contact).unwrap().name, "Dmitri");
    // ... and the name is searchable under its new form.
    let hits = s
        .search(&SearchQuery::parse("Dmitri").unwrap(), 10)
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.contact_id == t.contact && h.message_id.is_none())
    );
}

#[test]
fn contact_last_seen_and_last_channel_follow_the_newest_inbound_message() {
    let mut s = mem();
    // A backfill: messages written long before they are ingested (imports, the demo generator).
    let now = T0 + 100 * DAY;
    let st = Settings::default();
    let a = stored(put_at(
        &mut s,
        &email("<1@x>", "ann@x.org", "hi", T0),
        &st,
        now,
    ));
    let c = s.contact(a.contact).unwrap();
    assert_eq!(c.last_channel, Some(Channel::Email));
    assert_eq!(c.last_seen, T0);
    put_at(
        &mut s,
        &linked(
            web("w1", "v-1", "on the site", T0 + DAY),
            IdentityKind::Email,
            "ann@x.org",
        ),
        &st,
        now,
    );
    let c = s.contact(a.contact).unwrap();
    assert_eq!(c.last_channel, Some(Channel::WebChat));
    assert_eq!(c.last_seen, T0 + DAY);
    // An older message delivered late changes neither.
    put_at(
        &mut s,
        &email("<0@x>", "ann@x.org", "older", T0 - DAY),
        &st,
        now,
    );
    let c = s.contact(a.contact).unwrap();
    assert_eq!(c.last_channel, Some(Channel::WebChat));
    assert_eq!(c.last_seen, T0 + DAY);
    let p = s.profile(a.contact).unwrap();
    assert_eq!(p.first_seen, T0 - DAY);
    assert_eq!(p.message_count, 3);
    assert_eq!(p.conversation_count, 1);
    assert_eq!(p.channels, vec![Channel::Email, Channel::WebChat]);
}

// ---------------------------------------------------------------------------------------------
// omnichannel threading

#[test]
fn resolved_conversation_reopens_within_the_window() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "broken zip", T0));
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + HOUR)
        .unwrap();
    let mark = s.last_event_id().unwrap();
    let b = put_stored(
        &mut s,
        &email("<2@x>", "ann@x.org", "still broken", T0 + HOUR + 6 * DAY),
    );
    assert_eq!(b.conversation, a.conversation);
    assert!(!b.new_conversation);
    let c = s.conversation(a.conversation).unwrap();
    assert_eq!(c.status, Status::Open);
    assert_eq!(c.message_count, 2);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM conversations WHERE resolved_at IS NOT NULL"
        ),
        0
    );
    assert_eq!(event_kinds(&s, mark), vec!["status_changed", "message_in"]);
}

#[test]
fn after_the_window_a_new_conversation_and_the_timeline_keeps_everything() {
    let mut s = mem();
    let st = Settings {
        reopen_window_ms: DAY,
        ..Settings::default()
    };
    let a = stored(put_at(
        &mut s,
        &email("<1@x>", "ann@x.org", "first", T0),
        &st,
        T0,
    ));
    let reply = s
        .queue_reply(a.conversation, Channel::Email, "bob", "fixed", T0 + MIN)
        .unwrap();
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + HOUR)
        .unwrap();
    // Exactly at the window's end: still the same conversation.
    let b = stored(put_at(
        &mut s,
        &tg_linked_to_ann("t1", T0 + HOUR + DAY),
        &st,
        T0 + HOUR + DAY,
    ));
    assert_eq!(b.conversation, a.conversation);
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + 2 * DAY)
        .unwrap();
    // One millisecond later than the window: a new conversation.
    let c = stored(put_at(
        &mut s,
        &email("<2@x>", "ann@x.org", "new topic", T0 + 3 * DAY + 1),
        &st,
        T0 + 3 * DAY + 1,
    ));
    assert!(c.new_conversation);
    assert_ne!(c.conversation, a.conversation);
    assert_eq!(c.contact, a.contact);
    assert_eq!(
        s.conversation(a.conversation).unwrap().status,
        Status::Resolved
    );
    assert_eq!(s.conversation(c.conversation).unwrap().status, Status::Open);
    assert_eq!(
        s.active_conversation(a.contact).unwrap(),
        Some(c.conversation)
    );

    let tl = s.timeline(a.contact, None, 50).unwrap();
    let ids: Vec<_> = tl.iter().map(|m| (m.id, m.conversation_id)).collect();
    assert_eq!(
        ids,
        vec![
            (a.message, a.conversation),
            (reply, a.conversation),
            (b.message, a.conversation),
            (c.message, c.conversation),
        ]
    );
    assert!(tl.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    assert_eq!(s.profile(a.contact).unwrap().conversation_count, 2);
}

fn tg_linked_to_ann(ext: &str, at: Millis) -> Inbound {
    linked(
        tg(ext, "555", "via telegram", at),
        IdentityKind::Email,
        "ann@x.org",
    )
}

#[test]
fn a_message_on_any_channel_joins_the_open_conversation() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "mail", T0));
    let b = put_stored(&mut s, &tg_linked_to_ann("t1", T0 + HOUR));
    let c = put_stored(&mut s, &tg("t2", "555", "telegram again", T0 + 2 * HOUR));
    let d = put_stored(
        &mut s,
        &linked(
            web("w1", "v-1", "web", T0 + 3 * HOUR),
            IdentityKind::Telegram,
            "555",
        ),
    );
    for p in [b, c, d] {
        assert_eq!(p.contact, a.contact);
        assert_eq!(p.conversation, a.conversation);
        assert!(!p.new_conversation);
    }
    let conv = s.conversation(a.conversation).unwrap();
    assert_eq!(
        conv.channels,
        vec![Channel::Email, Channel::Telegram, Channel::WebChat]
    );
    assert_eq!(conv.last_channel, Channel::WebChat);
    assert_eq!(conv.last_direction, Direction::In);
    assert_eq!(conv.subject.as_deref(), Some("Order question"));
    assert_eq!(s.queue_count(&QueueFilter::All).unwrap(), 1);
}

#[test]
fn pending_and_snoozed_conversations_reopen_on_an_inbound_message() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "one", T0));
    s.set_status(a.conversation, Status::Pending, None, "bob", T0 + MIN)
        .unwrap();
    put(&mut s, &email("<2@x>", "ann@x.org", "two", T0 + HOUR));
    assert_eq!(s.conversation(a.conversation).unwrap().status, Status::Open);

    s.set_status(
        a.conversation,
        Status::Snoozed,
        Some(T0 + 10 * DAY),
        "bob",
        T0 + 2 * HOUR,
    )
    .unwrap();
    let c = s.conversation(a.conversation).unwrap();
    assert_eq!(
        (c.status, c.snoozed_until),
        (Status::Snoozed, Some(T0 + 10 * DAY))
    );
    let b = put_stored(&mut s, &email("<3@x>", "ann@x.org", "three", T0 + DAY));
    assert_eq!(b.conversation, a.conversation);
    let c = s.conversation(a.conversation).unwrap();
    assert_eq!((c.status, c.snoozed_until), (Status::Open, None));
}

#[test]
fn an_outbound_copy_does_not_reopen_or_open_anything() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "question", T0));
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + HOUR)
        .unwrap();
    // The agent answered from their own mail client; the Sent folder delivers the copy.
    let mut sent = email("<sent1@us>", "ann@x.org", "one more thing", T0 + 2 * HOUR);
    sent.direction = Direction::Out;
    sent.author = Some("bob@us.example".into());
    let o = put_stored(&mut s, &sent);
    assert_eq!(o.contact, a.contact);
    assert_eq!(
        s.conversation(a.conversation).unwrap().status,
        Status::Resolved
    );
    assert_eq!(
        s.queue_count(&QueueFilter::Status(Status::Open)).unwrap(),
        0
    );
    assert_eq!(s.active_conversation(a.contact).unwrap(), None);
    let m = s.message(o.message).unwrap();
    assert_eq!(m.direction, Direction::Out);
    assert_eq!(m.author, "bob@us.example");
    assert_eq!(m.delivery, Some(Delivery::Sent));
    // Our own message is not the customer being seen.
    assert_eq!(s.contact(a.contact).unwrap().last_seen, T0);

    // On a pending conversation the copy joins it and leaves it pending.
    let b = put_stored(&mut s, &email("<2@x>", "ann@x.org", "back", T0 + DAY));
    s.set_status(b.conversation, Status::Pending, None, "bob", T0 + DAY + MIN)
        .unwrap();
    let mut sent2 = email("<sent2@us>", "ann@x.org", "any luck?", T0 + DAY + HOUR);
    sent2.direction = Direction::Out;
    let o2 = put_stored(&mut s, &sent2);
    assert_eq!(o2.conversation, b.conversation);
    assert_eq!(
        s.conversation(b.conversation).unwrap().status,
        Status::Pending
    );
}

#[test]
fn reopening_an_old_conversation_never_makes_two_active_ones() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "old", T0));
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + HOUR)
        .unwrap();
    let b = put_stored(&mut s, &email("<2@x>", "ann@x.org", "new", T0 + 30 * DAY));
    assert_ne!(a.conversation, b.conversation);
    let mark = s.last_event_id().unwrap();
    for st in [Status::Open, Status::Pending, Status::Snoozed] {
        let err = s
            .set_status(
                a.conversation,
                st,
                Some(T0 + 40 * DAY),
                "bob",
                T0 + 31 * DAY,
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(e) if e.contains(&format!("#{}", b.conversation))),
            "{err}"
        );
    }
    assert_eq!(
        s.conversation(a.conversation).unwrap().status,
        Status::Resolved
    );
    assert!(event_kinds(&s, mark).is_empty());
    // Moving the active one between active states is fine, and so is reopening the old one
    // once the new one is resolved.
    s.set_status(b.conversation, Status::Pending, None, "bob", T0 + 31 * DAY)
        .unwrap();
    s.set_status(b.conversation, Status::Resolved, None, "bob", T0 + 31 * DAY)
        .unwrap();
    s.set_status(a.conversation, Status::Open, None, "bob", T0 + 32 * DAY)
        .unwrap();
    assert_eq!(active_of(&s, a.contact), vec![a.conversation]);
}

#[test]
fn snoozed_conversations_wake_when_due() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "one", T0));
    let b = put_stored(&mut s, &email("<2@x>", "bob@x.org", "two", T0));
    s.set_status(a.conversation, Status::Snoozed, Some(T0 + HOUR), "eve", T0)
        .unwrap();
    s.set_status(b.conversation, Status::Snoozed, Some(T0 + DAY), "eve", T0)
        .unwrap();
    assert!(matches!(
        s.set_status(b.conversation, Status::Snoozed, None, "eve", T0),
        Err(StoreError::Invalid(_))
    ));
    let mark = s.last_event_id().unwrap();
    assert_eq!(s.wake_snoozed(T0 + HOUR - 1, "worker").unwrap(), 0);
    assert_eq!(s.wake_snoozed(T0 + HOUR, "worker").unwrap(), 1);
    assert_eq!(s.conversation(a.conversation).unwrap().status, Status::Open);
    assert_eq!(s.conversation(a.conversation).unwrap().snoozed_until, None);
    assert_eq!(
        s.conversation(b.conversation).unwrap().status,
        Status::Snoozed
    );
    assert_eq!(event_kinds(&s, mark), vec!["status_changed"]);
}

// ---------------------------------------------------------------------------------------------
// sanitize at ingest

const HOSTILE_NAME: &str =
    "\x1b]0;pwned\x07Eve \u{202e}exe.txt\u{202c} \x1b[31mRed\x1b[0m\u{9b}2J\u{85}";
const HOSTILE_SUBJECT: &str = "Invoice\x1b[2J\x1b[H\t\u{2066}overdue\u{2069}\u{90}dcs\u{9c}\r\nnow";
const HOSTILE_BODY: &str = "line1\r\n\x1bP1;2|junk\x1b\\line2 \u{9d}8;;http://evil\u{9c}click\u{7}\u{0}\u{7f}\n\
                            \u{202d}ltr\u{202c} \x1b_Gf=100;AAAA\x1b\\img \u{1b}cRIS\u{8}\u{98}sos\u{9c}\u{9e}pm\u{9c}\u{9f}apc\u{9c}";

#[test]
fn hostile_text_is_stored_clean_in_every_column() {
    let mut s = mem();
    let mut m = named(
        email(HOSTILE_SUBJECT, "eve@evil.example", HOSTILE_BODY, T0),
        HOSTILE_NAME,
    );
    m.subject = Some(HOSTILE_SUBJECT.into());
    m.account = "main\x1b[31m\u{202e}".into();
    let e = put_stored(&mut s, &m);

    let mut w = named(
        web("w\x1b[0m1", "v-1", HOSTILE_BODY, T0 + MIN),
        HOSTILE_NAME,
    );
    w.subject = Some(HOSTILE_SUBJECT.into());
    w.linked
        .push(Claim::new(IdentityKind::Email, "x\u{202e}@evil.example"));
    w.linked
        .push(Claim::new(IdentityKind::Email, "y\x1b[31m@evil.example"));
    put_stored(&mut s, &w);

    let mut t = named(tg("t1", "9", HOSTILE_BODY, T0 + 2 * MIN), HOSTILE_NAME);
    t.direction = Direction::Out;
    t.author = Some(HOSTILE_NAME.into());
    put_stored(&mut s, &t);

    // A sender address that carries a bidi override is not an address.
    let spoof = email("<s@x>", "ann\u{202e}gro.x@evil.example", "hi", T0);
    assert!(matches!(
        try_put(&mut s, &spoof, &Settings::default(), T0),
        Err(IngestError::Identity(_))
    ));

    let stored_msg = s.message(e.message).unwrap();
    assert_eq!(stored_msg.subject.as_deref(), Some("Invoice overdue now"));
    assert!(
        stored_msg
            .body
            .starts_with("line1\nline2 click\nltr img RIS"),
        "{:?}",
        stored_msg.body
    );
    assert_eq!(s.contact(e.contact).unwrap().name, "Eve exe.txt Red");

    let columns: &[(&str, &[&str], bool)] = &[
        ("contacts", &["name", "last_channel"], true),
        ("identities", &["kind", "value", "source"], true),
        (
            "conversations",
            &[
                "status",
                "priority",
                "assignee",
                "subject",
                "channels",
                "last_channel",
                "last_preview",
                "last_direction",
            ],
            true,
        ),
        (
            "messages",
            &[
                "channel",
                "account",
                "external_id",
                "direction",
                "author",
                "subject",
                "delivery",
            ],
            true,
        ),
        ("messages", &["body"], false),
        ("events", &["actor", "kind", "data"], true),
        ("cursors", &["channel", "account", "key"], true),
    ];
    let mut checked = 0;
    for (table, cols, one_line) in columns {
        for col in *cols {
            let sql = format!("SELECT {col} FROM {table} WHERE {col} IS NOT NULL");
            let mut stmt = s.conn().prepare(&sql).unwrap();
            let values: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|v| v.unwrap())
                .collect();
            for v in values {
                checked += 1;
                let ok = if *one_line {
                    clean_line(&v)
                } else {
                    clean_text(&v)
                };
                assert!(ok, "{table}.{col} holds unsafe text: {v:?}");
            }
        }
    }
    assert!(checked > 30, "checked only {checked} values");
    // The two hostile linked addresses were refused, not cleaned into someone else's.
    assert_eq!(
        count(&s, "SELECT count(*) FROM identities WHERE kind = 'email'"),
        1
    );
    // What the views read back is clean too.
    for m in s.timeline(e.contact, None, 10).unwrap() {
        assert!(
            clean_text(&m.body)
                && clean_line(&m.author)
                && m.subject.as_deref().is_none_or(clean_line)
        );
    }
    for q in s
        .queue_page(&QueueFilter::All, QueueAnchor::Top, 10)
        .unwrap()
    {
        assert!(clean_line(&q.contact_name) && clean_line(&q.last_preview));
    }
    for h in s.search(&SearchQuery::parse("line2").unwrap(), 10).unwrap() {
        assert!(clean_line(&h.snippet), "{:?}", h.snippet);
    }
}

#[test]
fn oversized_bodies_are_cut_with_a_marker() {
    let mut s = mem();
    let big = "ab".repeat(crate::ingest::MAX_BODY_CHARS);
    let p = put_stored(&mut s, &email("<big@x>", "ann@x.org", &big, T0));
    let body = s.message(p.message).unwrap().body;
    assert!(body.chars().count() < crate::ingest::MAX_BODY_CHARS + 100);
    assert!(body.ends_with("longer than 256 KiB of text]"));
}

// ---------------------------------------------------------------------------------------------
// queue paging

/// 41 conversations: activity in groups of three equal timestamps, mixed statuses and assignees.
fn queue_fixture() -> Store {
    let mut s = mem();
    for i in 0..41i64 {
        let at = T0 + (i / 3) * MIN;
        let p = put_stored(
            &mut s,
            &email(&format!("<{i}@x>"), &format!("c{i}@x.org"), "hi", at),
        );
        match i % 4 {
            1 => s
                .set_status(p.conversation, Status::Pending, None, "bob", at)
                .unwrap(),
            2 => s
                .set_status(p.conversation, Status::Snoozed, Some(at + DAY), "bob", at)
                .unwrap(),
            3 => s
                .set_status(p.conversation, Status::Resolved, None, "bob", at)
                .unwrap(),
            _ => {}
        }
        match i % 5 {
            0 => s.assign(p.conversation, Some("bob"), "bob", at).unwrap(),
            1 => s.assign(p.conversation, Some("eve"), "eve", at).unwrap(),
            _ => {}
        }
    }
    // Ties that do not follow id order: an old conversation gets fresh activity.
    put(
        &mut s,
        &email("<late@x>", "c0@x.org", "again", T0 + 5 * MIN),
    );
    s
}

fn expected_queue(s: &Store, filter: &QueueFilter) -> Vec<ConversationId> {
    let mut stmt = s
        .conn()
        .prepare("SELECT id, last_activity, status, assignee FROM conversations")
        .unwrap();
    let mut rows: Vec<(ConversationId, Millis, Status, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows.retain(|(_, _, status, assignee)| match filter {
        QueueFilter::All => true,
        QueueFilter::Status(st) => status == st,
        QueueFilter::Mine(me) => {
            *status == Status::Open && assignee.as_deref() == Some(me.as_str())
        }
        QueueFilter::Unassigned => *status == Status::Open && assignee.is_none(),
        // No conversation of these tests has a team.
        QueueFilter::Team(_) => false,
    });
    rows.sort_by_key(|r| std::cmp::Reverse((r.1, r.0)));
    rows.into_iter().map(|r| r.0).collect()
}

fn all_filters() -> Vec<QueueFilter> {
    let mut f = vec![QueueFilter::All, QueueFilter::Unassigned];
    f.extend(Status::ALL.iter().map(|s| QueueFilter::Status(*s)));
    f.extend(["bob", "eve", "nobody"].map(|a| QueueFilter::Mine(a.into())));
    f
}

#[test]
fn keyset_pages_walk_every_queue_without_gaps_or_repeats() {
    let s = queue_fixture();
    let ties = count(
        &s,
        "SELECT count(*) FROM (SELECT last_activity FROM conversations GROUP BY 1 HAVING count(*) > 1)",
    );
    assert!(ties >= 10, "the fixture must have ties");
    for filter in all_filters() {
        let expected = expected_queue(&s, &filter);
        assert_eq!(
            s.queue_count(&filter).unwrap(),
            expected.len() as i64,
            "{filter:?}"
        );
        for limit in [1usize, 2, 4, 7, 100] {
            // Forward from the top.
            let mut got = Vec::new();
            let mut page = s.queue_page(&filter, QueueAnchor::Top, limit).unwrap();
            assert_eq!(
                page.iter().map(|r| r.id).collect::<Vec<_>>(),
                expected.iter().copied().take(limit).collect::<Vec<_>>(),
                "top page of {filter:?}"
            );
            while let Some(last) = page.last() {
                assert!(page.len() <= limit);
                got.extend(page.iter().map(|r| r.id));
                page = s
                    .queue_page(&filter, QueueAnchor::After(last.cursor()), limit)
                    .unwrap();
                assert!(got.len() <= expected.len(), "runaway paging in {filter:?}");
            }
            assert_eq!(got, expected, "forward walk of {filter:?} by {limit}");

            // Backward from the bottom.
            let mut back: Vec<ConversationId> = Vec::new();
            let mut page = s.queue_page(&filter, QueueAnchor::Bottom, limit).unwrap();
            let tail: Vec<_> = expected
                .iter()
                .copied()
                .skip(expected.len().saturating_sub(limit))
                .collect();
            assert_eq!(
                page.iter().map(|r| r.id).collect::<Vec<_>>(),
                tail,
                "bottom page of {filter:?}"
            );
            while let Some(first) = page.first() {
                assert!(page.len() <= limit);
                let mut ids: Vec<_> = page.iter().map(|r| r.id).collect();
                ids.extend(back);
                back = ids;
                page = s
                    .queue_page(&filter, QueueAnchor::Before(first.cursor()), limit)
                    .unwrap();
                assert!(back.len() <= expected.len(), "runaway paging in {filter:?}");
            }
            assert_eq!(back, expected, "backward walk of {filter:?} by {limit}");
        }
    }
}

#[test]
fn queue_rows_and_counts_agree_with_the_data() {
    let s = queue_fixture();
    let n = |sql: &str| count(&s, sql);
    let counts = s.counts("bob").unwrap();
    assert_eq!(
        counts,
        Counts {
            open: n("SELECT count(*) FROM conversations WHERE status = 'open'"),
            unassigned: n(
                "SELECT count(*) FROM conversations WHERE status = 'open' AND assignee IS NULL"
            ),
            mine: n(
                "SELECT count(*) FROM conversations WHERE status = 'open' AND assignee = 'bob'"
            ),
            pending: n("SELECT count(*) FROM conversations WHERE status = 'pending'"),
            snoozed: n("SELECT count(*) FROM conversations WHERE status = 'snoozed'"),
        }
    );
    assert!(
        counts.open > 0
            && counts.unassigned > 0
            && counts.mine > 0
            && counts.pending > 0
            && counts.snoozed > 0
    );
    assert_eq!(s.counts("nobody").unwrap().mine, 0);
    for row in s
        .queue_page(&QueueFilter::All, QueueAnchor::Top, 100)
        .unwrap()
    {
        let (status, n_msgs, contact): (Status, i64, ContactId) = s
            .conn()
            .query_row(
                "SELECT c.status, (SELECT count(*) FROM messages WHERE conversation_id = c.id), c.contact_id
                 FROM conversations c WHERE c.id = ?1",
                [row.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (row.status, row.message_count, row.contact_id),
            (status, n_msgs, contact)
        );
        assert_eq!(row.contact_name, s.contact(contact).unwrap().name);
        assert_eq!(row, s.conversation(row.id).unwrap());
    }
    assert!(QueueFilter::parse("bogus", "bob").is_err());
    assert_eq!(
        QueueFilter::parse(" Mine ", "bob"),
        Ok(QueueFilter::Mine("bob".into()))
    );
    assert_eq!(
        QueueFilter::parse("snoozed", "bob"),
        Ok(QueueFilter::Status(Status::Snoozed))
    );
}

// ---------------------------------------------------------------------------------------------
// timeline, notes, replies

#[test]
fn timeline_pages_back_with_its_cursor() {
    let mut s = mem();
    let mut contact = None;
    for i in 0..23i64 {
        // Pairs of equal timestamps, and ids that do not follow time for the last few.
        let at = if i < 20 {
            T0 + (i / 2) * MIN
        } else {
            T0 - i * MIN
        };
        let p = put_stored(
            &mut s,
            &email(&format!("<{i}@x>"), "ann@x.org", &format!("m{i}"), at),
        );
        contact = Some(p.contact);
    }
    let contact = contact.unwrap();
    let conv = s.active_conversation(contact).unwrap().unwrap();
    s.add_note(conv, "bob", "internal", T0 + 3 * MIN).unwrap();
    let expected: Vec<MessageId> = {
        let mut stmt = s
            .conn()
            .prepare("SELECT id FROM messages WHERE contact_id = ?1 ORDER BY created_at, id")
            .unwrap();
        stmt.query_map([contact], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(expected.len(), 24);
    for limit in [1usize, 5, 24, 50] {
        let mut all: Vec<MessageId> = Vec::new();
        let mut page = s.timeline(contact, None, limit).unwrap();
        assert_eq!(
            page.iter().map(|m| m.id).collect::<Vec<_>>(),
            expected[expected.len().saturating_sub(limit)..].to_vec(),
            "the newest page, oldest first"
        );
        while let Some(first) = page.first() {
            let mut ids: Vec<_> = page.iter().map(|m| m.id).collect();
            ids.extend(all);
            all = ids;
            page = s.timeline(contact, Some(first.cursor()), limit).unwrap();
            assert!(all.len() <= expected.len());
        }
        assert_eq!(all, expected, "limit {limit}");
    }
}

#[test]
fn notes_are_internal_messages() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    put(&mut s, &tg_linked_to_ann("t1", T0 + MIN));
    s.save_draft(a.conversation, "bob", "note", None, "half a note", T0 + MIN)
        .unwrap();
    let id = s
        .add_note(a.conversation, "bob", "VIP, be nice  \n", T0 + HOUR)
        .unwrap();
    let n = s.message(id).unwrap();
    assert_eq!(n.direction, Direction::Note);
    assert_eq!(n.author, "bob");
    assert_eq!(n.body, "VIP, be nice");
    assert_eq!(n.delivery, None);
    assert_eq!(n.conversation_id, a.conversation);
    assert_eq!(n.contact_id, a.contact);
    assert_eq!(
        s.draft(a.conversation, "bob").unwrap(),
        None,
        "the note's draft is gone"
    );
    let c = s.conversation(a.conversation).unwrap();
    assert_eq!(c.last_channel, Channel::Telegram, "a note is not a channel");
    assert_eq!(s.reply_channel(a.conversation).unwrap(), Channel::Telegram);
    assert_eq!(count(&s, "SELECT count(*) FROM outbox"), 0);
    assert_eq!(
        s.timeline(a.contact, None, 10).unwrap().last().unwrap().id,
        id
    );
    assert!(matches!(
        s.add_note(a.conversation, "bob", " \n ", T0),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.add_note(ConversationId(999), "bob", "x", T0),
        Err(StoreError::NoConversation(999))
    ));
}

#[test]
fn queue_reply_writes_message_and_outbox_together() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    s.save_draft(
        a.conversation,
        "bob",
        "reply",
        Some(Channel::Email),
        "draft",
        T0,
    )
    .unwrap();
    assert_eq!(
        s.draft(a.conversation, "bob").unwrap(),
        Some((
            "reply".to_string(),
            Some(Channel::Email),
            "draft".to_string()
        ))
    );
    let id = s
        .queue_reply(
            a.conversation,
            Channel::Email,
            "bob",
            "On it!\n\n",
            T0 + MIN,
        )
        .unwrap();
    let m = s.message(id).unwrap();
    assert_eq!(
        (
            m.direction,
            m.delivery,
            m.channel,
            m.body.as_str(),
            m.author.as_str()
        ),
        (
            Direction::Out,
            Some(Delivery::Queued),
            Channel::Email,
            "On it!",
            "bob"
        )
    );
    assert_eq!(m.subject.as_deref(), Some("Re: Order question"));
    let (recipient, state, channel): (String, String, Channel) = s
        .conn()
        .query_row(
            "SELECT recipient, state, channel FROM outbox WHERE message_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (recipient.as_str(), state.as_str(), channel),
        ("ann@x.org", "pending", Channel::Email)
    );
    assert_eq!(s.outbox_counts().unwrap(), (1, 0));
    assert_eq!(s.draft(a.conversation, "bob").unwrap(), None);
    let c = s.conversation(a.conversation).unwrap();
    assert_eq!(
        (c.last_direction, c.message_count, c.last_preview.as_str()),
        (Direction::Out, 2, "On it!")
    );

    // No Telegram identity: an error, and nothing written.
    let before = (
        count(&s, "SELECT count(*) FROM messages"),
        s.last_event_id().unwrap(),
    );
    let err = s
        .queue_reply(a.conversation, Channel::Telegram, "bob", "hi", T0 + 2 * MIN)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(ref e) if e.contains("telegram")),
        "{err}"
    );
    assert_eq!(
        (
            count(&s, "SELECT count(*) FROM messages"),
            s.last_event_id().unwrap()
        ),
        before
    );
    assert_eq!(count(&s, "SELECT count(*) FROM outbox"), 1);
    assert!(matches!(
        s.queue_reply(a.conversation, Channel::Email, "bob", "  ", T0),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.queue_reply(ConversationId(999), Channel::Email, "bob", "x", T0),
        Err(StoreError::NoConversation(999))
    ));

    // A resolved conversation stays resolved when answered; chat replies carry no subject.
    put(
        &mut s,
        &linked(
            web("w1", "v-1", "chat", T0 + 3 * MIN),
            IdentityKind::Email,
            "ann@x.org",
        ),
    );
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + HOUR)
        .unwrap();
    let w = s
        .queue_reply(
            a.conversation,
            Channel::WebChat,
            "bob",
            "bye",
            T0 + 2 * HOUR,
        )
        .unwrap();
    assert_eq!(s.message(w).unwrap().subject, None);
    assert_eq!(
        s.conversation(a.conversation).unwrap().status,
        Status::Resolved
    );
    assert_eq!(
        s.conn()
            .query_row(
                "SELECT recipient FROM outbox WHERE message_id = ?1",
                [w],
                |r| r.get::<_, String>(0)
            )
            .unwrap(),
        "v-1"
    );
}

#[test]
fn answering_leaves_the_status_alone() {
    // Since fb2194c a reply no longer moves an open conversation to "pending" (it vanished
    // from the agent's open view mid-conversation); status changes are explicit.
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    for (status, until) in [
        (Status::Open, None),
        (Status::Pending, None),
        (Status::Snoozed, Some(T0 + DAY)),
        (Status::Resolved, None),
    ] {
        s.set_status(a.conversation, status, until, "bob", T0 + MIN)
            .unwrap();
        s.queue_reply(a.conversation, Channel::Email, "bob", "answer", T0 + HOUR)
            .unwrap();
        let c = s.conversation(a.conversation).unwrap();
        assert_eq!((c.status, c.snoozed_until), (status, until));
    }
}

#[test]
fn reply_subject_adds_re_once() {
    assert_eq!(reply_subject("Order"), "Re: Order");
    assert_eq!(reply_subject("  Order  "), "Re: Order");
    assert_eq!(reply_subject("Re: Order"), "Re: Order");
    assert_eq!(reply_subject("RE: Order"), "RE: Order");
    assert_eq!(reply_subject("re : Order"), "re : Order");
    assert_eq!(reply_subject(&reply_subject("Order")), "Re: Order");
    assert_eq!(
        reply_subject("Regarding my order"),
        "Re: Regarding my order"
    );

    let mut s = mem();
    let mut m = email("<1@x>", "ann@x.org", "hi", T0);
    m.subject = Some("RE: Re: invoice".into());
    let a = put_stored(&mut s, &m);
    let r1 = s
        .queue_reply(a.conversation, Channel::Email, "bob", "one", T0 + MIN)
        .unwrap();
    let r2 = s
        .queue_reply(a.conversation, Channel::Email, "bob", "two", T0 + 2 * MIN)
        .unwrap();
    assert_eq!(
        s.message(r1).unwrap().subject.as_deref(),
        Some("RE: Re: invoice")
    );
    assert_eq!(
        s.message(r2).unwrap().subject.as_deref(),
        Some("RE: Re: invoice")
    );
}

// ---------------------------------------------------------------------------------------------
// outbox

fn outbox_row(s: &Store, m: MessageId) -> Option<(String, i64, Millis, Option<String>)> {
    use rusqlite::OptionalExtension;
    s.conn()
        .query_row(
            "SELECT state, attempts, next_attempt_at, last_error FROM outbox WHERE message_id = ?1",
            [m],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .unwrap()
}

#[test]
fn outbox_claim_send_and_the_sent_copy_is_a_duplicate() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    let id = s
        .queue_reply(a.conversation, Channel::Email, "bob", "answer", T0 + MIN)
        .unwrap();
    assert!(
        s.claim_outbox(T0, 60_000, 10).unwrap().is_empty(),
        "not due before it was queued"
    );
    let items = s.claim_outbox(T0 + MIN, 60_000, 10).unwrap();
    assert_eq!(items.len(), 1);
    let it = &items[0];
    assert_eq!(
        (
            it.message_id,
            it.conversation_id,
            it.contact_id,
            it.channel,
            it.recipient.as_str()
        ),
        (id, a.conversation, a.contact, Channel::Email, "ann@x.org")
    );
    assert_eq!(
        (it.body.as_str(), it.author.as_str(), it.attempts),
        ("answer", "bob", 0)
    );
    assert_eq!(it.subject.as_deref(), Some("Re: Order question"));
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sending));
    // Claimed items are not handed out twice.
    assert!(s.claim_outbox(T0 + MIN, 60_000, 10).unwrap().is_empty());

    s.mark_sent(id, "main", Some("<r1@us>"), "worker", T0 + 2 * MIN)
        .unwrap();
    let m = s.message(id).unwrap();
    assert_eq!(
        (m.delivery, m.delivery_error, m.account.as_str()),
        (Some(Delivery::Sent), None, "main")
    );
    assert_eq!(outbox_row(&s, id), None);
    assert_eq!(s.outbox_counts().unwrap(), (0, 0));

    // The Sent folder delivers the copy: it is the same message.
    let mut copy = email("<r1@us>", "ann@x.org", "answer", T0 + MIN);
    copy.account = "main".into();
    copy.direction = Direction::Out;
    assert_eq!(
        put(&mut s, &copy),
        Ingested::Duplicate {
            message: id,
            conversation: a.conversation,
        }
    );
}

#[test]
fn outbox_failures_back_off_until_max_attempts_then_retry_resets() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    let id = s
        .queue_reply(a.conversation, Channel::Email, "bob", "answer", T0)
        .unwrap();
    let mut now = T0;
    let mut last_backoff = 0;
    for attempt in 1..=MAX_ATTEMPTS {
        let items = s.claim_outbox(now, 10 * 60_000, 10).unwrap();
        assert_eq!(items.len(), 1, "attempt {attempt}");
        assert_eq!(items[0].attempts, attempt - 1);
        s.mark_failed(id, "421 try later", true, "worker", now)
            .unwrap();
        let m = s.message(id).unwrap();
        assert_eq!(
            (m.delivery, m.delivery_error.as_deref()),
            (Some(Delivery::Failed), Some("421 try later"))
        );
        let (state, attempts, next, err) = outbox_row(&s, id).unwrap();
        assert_eq!(attempts, attempt);
        assert_eq!(err.as_deref(), Some("421 try later"));
        if attempt < MAX_ATTEMPTS {
            assert_eq!(state, "pending");
            let backoff = next - now;
            assert!(
                backoff >= last_backoff && backoff > 0 && backoff <= 15 * 60_000,
                "{backoff}"
            );
            last_backoff = backoff;
            assert!(
                s.claim_outbox(next - 1, 10 * 60_000, 10)
                    .unwrap()
                    .is_empty(),
                "not before the backoff"
            );
            now = next;
        } else {
            assert_eq!(state, "failed", "given up after MAX_ATTEMPTS");
        }
    }
    assert!(
        last_backoff >= 5 * 60_000,
        "the backoff grows: {last_backoff}"
    );
    assert!(
        s.claim_outbox(now + DAY, 10 * 60_000, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.outbox_counts().unwrap(), (0, 1));
    assert_eq!(s.last_failed(a.conversation).unwrap(), Some(id));

    // `:retry` queues it again now, with a fresh budget.
    s.retry(id, "bob", now + DAY).unwrap();
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Queued));
    assert_eq!(outbox_row(&s, id).unwrap().0, "pending");
    assert_eq!(outbox_row(&s, id).unwrap().1, 0);
    assert_eq!(s.outbox_counts().unwrap(), (1, 0));
    let items = s.claim_outbox(now + DAY, 10 * 60_000, 10).unwrap();
    assert_eq!(items.len(), 1);
    assert!(
        matches!(s.retry(id, "bob", now + DAY), Err(StoreError::Invalid(_))),
        "it is being sent"
    );

    // A permanent failure stops at once.
    s.mark_failed(id, "550 no such user", false, "worker", now + DAY)
        .unwrap();
    assert_eq!(outbox_row(&s, id).unwrap().0, "failed");
    assert!(
        s.claim_outbox(now + 30 * DAY, 10 * 60_000, 10)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.retry(MessageId(999), "bob", now),
        Err(StoreError::NoMessage(999))
    ));
}

#[test]
fn stale_sending_items_are_reclaimed() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    let first = s
        .queue_reply(a.conversation, Channel::Email, "bob", "one", T0)
        .unwrap();
    let second = s
        .queue_reply(a.conversation, Channel::Email, "bob", "two", T0 + SEC)
        .unwrap();
    let got = s.claim_outbox(T0 + SEC, 60_000, 1).unwrap();
    assert_eq!(
        got.iter().map(|i| i.message_id).collect::<Vec<_>>(),
        vec![first],
        "oldest first, limit"
    );
    // The process that claimed it died. Before the stale time nobody takes it ...
    let got = s.claim_outbox(T0 + SEC + 59_999, 60_000, 10).unwrap();
    assert_eq!(
        got.iter().map(|i| i.message_id).collect::<Vec<_>>(),
        vec![second]
    );
    assert!(
        s.claim_outbox(T0 + SEC + 59_999, 60_000, 10)
            .unwrap()
            .is_empty()
    );
    // ... after it, it is due again, and the attempt is counted.
    let got = s.claim_outbox(T0 + SEC + 60_000, 60_000, 10).unwrap();
    assert_eq!(
        got.iter().map(|i| i.message_id).collect::<Vec<_>>(),
        vec![first]
    );
    assert_eq!(got[0].attempts, 1);
    assert_eq!(outbox_row(&s, first).unwrap().1, 2);
}

// ---------------------------------------------------------------------------------------------
// full-text search

struct SearchFixture {
    s: Store,
    ann: Put,
    ann2: Put,
    bob: Put,
    carol: Put,
    note: MessageId,
    reply: MessageId,
}

fn search_fixture() -> SearchFixture {
    let mut s = mem();
    let mut m = named(
        email("<1@x>", "ann@x.org", "My order 1234 never arrived", T0),
        "Ann Lee",
    );
    m.subject = Some("Where is my parcel".into());
    let ann = put_stored(&mut s, &m);
    let bob = put_stored(
        &mut s,
        &named(
            tg(
                "t1",
                "555",
                "Is the café open on Sunday? Crème brûlée!",
                T0 + DAY,
            ),
            "Bob Marley",
        ),
    );
    let carol = put_stored(
        &mut s,
        &named(
            web(
                "w1",
                "v-1",
                "I need an invoice for order 1234 please",
                T0 + 2 * DAY,
            ),
            "Carol",
        ),
    );
    let note = s
        .add_note(
            ann.conversation,
            "eve",
            "refund approved, customer is upset",
            T0 + 3 * DAY,
        )
        .unwrap();
    let reply = s
        .queue_reply(
            carol.conversation,
            Channel::WebChat,
            "eve",
            "Invoice sent",
            T0 + 4 * DAY,
        )
        .unwrap();
    let ann2 = put_stored(
        &mut s,
        &email(
            "<2@x>",
            "ann@x.org",
            "about that order: found it",
            T0 + 5 * DAY,
        ),
    );
    SearchFixture {
        s,
        ann,
        ann2,
        bob,
        carol,
        note,
        reply,
    }
}

fn hits(s: &Store, q: &str) -> Vec<Option<MessageId>> {
    s.search(&SearchQuery::parse(q).unwrap(), 50)
        .unwrap()
        .into_iter()
        .map(|h| h.message_id)
        .collect()
}

#[test]
fn search_words_phrases_prefixes_and_diacritics() {
    let f = search_fixture();
    let s = &f.s;
    // Every word must match; newest first.
    assert_eq!(
        hits(s, "order"),
        vec![
            Some(f.ann2.message),
            Some(f.carol.message),
            Some(f.ann.message)
        ]
    );
    assert_eq!(
        hits(s, "order 1234"),
        vec![Some(f.carol.message), Some(f.ann.message)]
    );
    assert_eq!(hits(s, "ORDER never"), vec![Some(f.ann.message)]);
    // Subjects are searched too.
    assert_eq!(hits(s, "parcel"), vec![Some(f.ann.message)]);
    // Phrases keep their order.
    assert_eq!(
        hits(s, "\"order 1234\""),
        vec![Some(f.carol.message), Some(f.ann.message)]
    );
    assert!(hits(s, "\"1234 order\"").is_empty());
    // Prefixes.
    assert_eq!(hits(s, "inv*"), vec![Some(f.reply), Some(f.carol.message)]);
    assert_eq!(hits(s, "arriv*"), vec![Some(f.ann.message)]);
    // Diacritics fold both ways.
    assert_eq!(hits(s, "cafe"), vec![Some(f.bob.message)]);
    assert_eq!(hits(s, "CAFÉ"), vec![Some(f.bob.message)]);
    assert_eq!(hits(s, "creme brulee"), vec![Some(f.bob.message)]);
    // Notes are searchable.
    assert_eq!(hits(s, "refund"), vec![Some(f.note)]);
    assert!(hits(s, "nonexistentword").is_empty());

    let h = s.search(&SearchQuery::parse("1234").unwrap(), 1).unwrap();
    assert_eq!(h.len(), 1, "limit");
    assert_eq!(h[0].message_id, Some(f.carol.message));
    assert_eq!(h[0].contact_name, "Carol");
    assert_eq!(h[0].channel, Channel::WebChat);
    assert_eq!(h[0].conversation_id, f.carol.conversation);
    assert_eq!(h[0].created_at, T0 + 2 * DAY);
    assert!(h[0].snippet.contains("«1234»"), "{}", h[0].snippet);
}

#[test]
fn search_filters() {
    let f = search_fixture();
    let s = &f.s;
    assert_eq!(
        hits(s, "order from:ann@x.org"),
        vec![Some(f.ann2.message), Some(f.ann.message)]
    );
    assert_eq!(
        hits(s, "order from:ANN@X"),
        vec![Some(f.ann2.message), Some(f.ann.message)]
    );
    assert_eq!(hits(s, "from:carol order"), vec![Some(f.carol.message)]);
    assert_eq!(
        hits(s, "order channel:webchat"),
        vec![Some(f.carol.message)]
    );
    assert_eq!(hits(s, "channel:telegram"), vec![Some(f.bob.message)]);
    assert_eq!(hits(s, "is:note"), vec![Some(f.note)]);
    assert_eq!(hits(s, "is:out"), vec![Some(f.reply)]);
    assert_eq!(
        hits(s, "is:in from:ann"),
        vec![Some(f.ann2.message), Some(f.ann.message)]
    );
    // Dates are whole UTC days: after is inclusive, before exclusive.
    assert_eq!(
        hits(s, "after:2026-01-03 before:2026-01-05"),
        vec![Some(f.note), Some(f.carol.message)]
    );
    assert_eq!(
        hits(s, "order before:2026-01-02"),
        vec![Some(f.ann.message)]
    );
    assert_eq!(
        hits(s, "order after:2026-01-06"),
        vec![Some(f.ann2.message)]
    );
    assert!(hits(s, "from:nobody@nowhere").is_empty());
}

#[test]
fn search_finds_contact_names() {
    let f = search_fixture();
    let s = &f.s;
    let h = s
        .search(&SearchQuery::parse("marley").unwrap(), 10)
        .unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].message_id, None);
    assert_eq!(h[0].contact_id, f.bob.contact);
    assert_eq!(h[0].conversation_id, f.bob.conversation);
    assert!(h[0].snippet.contains("Bob Marley"));
    // A contact who also has matching messages is listed by message, not twice.
    let h = s.search(&SearchQuery::parse("ann").unwrap(), 10).unwrap();
    assert_eq!(
        h.iter().filter(|h| h.contact_id == f.ann.contact).count(),
        1
    );
    // With a filter, names are not searched.
    assert!(hits(s, "marley channel:email").is_empty());
}

#[test]
fn hostile_search_syntax_is_data() {
    let f = search_fixture();
    let s = &f.s;
    let nasty = [
        "NEAR(order 1234)",
        "order OR bob",
        "order AND NOT 1234",
        "\"unterminated phrase",
        "\"\"",
        "\"\" \"\"",
        "*",
        "**",
        "a*b*",
        "-order",
        "+order",
        "^order",
        "(order",
        "order)",
        "{body subject}: order",
        "body:order",
        "subject : parcel",
        "'order'",
        "\\",
        "order\u{0}1234",
        "\x1b[31morder",
        "col:",
        ":",
        "from:",
        "ord\"er",
        "\"order\"\"1234\"",
        "rowid:1",
        "messages_fts:order",
        "%",
        "_",
        "😀",
        "مرحبا",
    ];
    for q in nasty {
        match SearchQuery::parse(q) {
            // `col:` may be a custom field: the store says it is unknown, and which are known.
            Ok(parsed) if !parsed.fields.is_empty() => {
                let e = s.search(&parsed, 20).unwrap_err().to_string();
                assert!(e.contains("unknown filter"), "{q:?}: {e}");
            }
            Ok(parsed) => {
                let r = s.search(&parsed, 20);
                assert!(r.is_ok(), "{q:?} -> {:?}: {:?}", parsed.fts, r.err());
                assert!(s.search_conversations(&parsed, 20).is_ok(), "{q:?}");
            }
            Err(e) => assert!(!e.is_empty(), "{q:?}"),
        }
    }
    // Operators are words, not operators.
    assert!(hits(s, "order OR bob").is_empty());
    assert_eq!(hits(s, "NEAR(order"), Vec::<Option<MessageId>>::new());
}

#[test]
fn search_conversations_lists_each_conversation_once() {
    let f = search_fixture();
    let rows =
        f.s.search_conversations(&SearchQuery::parse("order").unwrap(), 50)
            .unwrap();
    let ids: Vec<ConversationId> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![f.ann.conversation, f.carol.conversation]);
    assert_eq!(f.ann.conversation, f.ann2.conversation);
}

/// The search fixture with workflow state: Ann's conversation tagged `refund`, assigned to
/// eve, urgent; Bob's pending, VIP; Carol's resolved.
fn filtered_fixture() -> SearchFixture {
    let mut f = search_fixture();
    let s = &mut f.s;
    s.tag(f.ann.conversation, "refund", false, "eve", T0 + 6 * DAY)
        .unwrap();
    s.tag(f.ann.conversation, "billing", false, "eve", T0 + 6 * DAY)
        .unwrap();
    s.tag(f.carol.conversation, "billing", false, "eve", T0 + 6 * DAY)
        .unwrap();
    s.assign(f.ann.conversation, Some("eve"), "eve", T0 + 6 * DAY)
        .unwrap();
    s.set_priority(f.ann.conversation, Priority::Urgent, "eve", T0 + 6 * DAY)
        .unwrap();
    s.set_status(
        f.bob.conversation,
        Status::Pending,
        None,
        "eve",
        T0 + 6 * DAY,
    )
    .unwrap();
    s.set_vip(f.bob.contact, true, "eve", T0 + 6 * DAY).unwrap();
    s.set_status(
        f.carol.conversation,
        Status::Resolved,
        None,
        "eve",
        T0 + 6 * DAY,
    )
    .unwrap();
    f
}

fn hits_as(s: &Store, q: &str, me: &str) -> Vec<Option<MessageId>> {
    s.search(&SearchQuery::parse_as(q, Some(me)).unwrap(), 50)
        .unwrap()
        .into_iter()
        .map(|h| h.message_id)
        .collect()
}

#[test]
fn search_conversation_and_contact_filters() {
    let f = filtered_fixture();
    let s = &f.s;
    let ann_all = vec![Some(f.ann2.message), Some(f.note), Some(f.ann.message)];
    // tag: alone finds every message of the tagged conversations, newest first.
    assert_eq!(hits(s, "tag:refund"), ann_all);
    assert_eq!(hits(s, "tag:#Refund"), ann_all);
    assert_eq!(
        hits(s, "tag:billing"),
        vec![
            Some(f.ann2.message),
            Some(f.reply),
            Some(f.note),
            Some(f.carol.message),
            Some(f.ann.message)
        ]
    );
    assert_eq!(hits(s, "tag:billing tag:refund"), ann_all);
    assert!(hits(s, "tag:nosuchtag").is_empty());
    // With words and message filters.
    assert_eq!(
        hits(s, "order tag:billing"),
        vec![
            Some(f.ann2.message),
            Some(f.carol.message),
            Some(f.ann.message)
        ]
    );
    assert_eq!(hits(s, "tag:billing is:out"), vec![Some(f.reply)]);
    assert_eq!(
        hits(s, "tag:refund from:ann"),
        vec![Some(f.ann2.message), Some(f.ann.message)]
    );
    // assignee:
    assert_eq!(hits(s, "assignee:eve"), ann_all);
    assert_eq!(hits_as(s, "assignee:me", "eve"), ann_all);
    assert!(hits_as(s, "assignee:me", "bob").is_empty());
    assert_eq!(
        hits(s, "assignee:none"),
        vec![Some(f.reply), Some(f.carol.message), Some(f.bob.message)]
    );
    assert!(
        SearchQuery::parse("assignee:me").is_err(),
        "me needs the agent"
    );
    // status:
    assert_eq!(hits(s, "status:open"), ann_all);
    assert_eq!(hits(s, "status:pending"), vec![Some(f.bob.message)]);
    assert_eq!(
        hits(s, "status:resolved"),
        vec![Some(f.reply), Some(f.carol.message)]
    );
    assert!(hits(s, "status:snoozed").is_empty());
    assert_eq!(
        hits(s, "invoice status:resolved"),
        vec![Some(f.reply), Some(f.carol.message)]
    );
    assert!(hits(s, "invoice status:open").is_empty());
    // is:vip (the contact), priority:
    assert_eq!(hits(s, "is:vip"), vec![Some(f.bob.message)]);
    assert_eq!(hits(s, "cafe is:vip"), vec![Some(f.bob.message)]);
    assert!(hits(s, "order is:vip").is_empty());
    assert_eq!(hits(s, "priority:urgent"), ann_all);
    assert_eq!(
        hits(s, "priority:normal"),
        vec![Some(f.reply), Some(f.carol.message), Some(f.bob.message)]
    );
    // Dates with a conversation filter.
    assert_eq!(
        hits(s, "tag:billing after:2026-01-03 before:2026-01-05"),
        vec![Some(f.note), Some(f.carol.message)]
    );
    // Conversations, each once.
    let rows = s
        .search_conversations(&SearchQuery::parse("tag:billing").unwrap(), 50)
        .unwrap();
    let ids: Vec<ConversationId> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![f.ann.conversation, f.carol.conversation]);
    // A contact's name is not a hit when a filter narrows the search.
    assert!(hits(s, "marley status:open").is_empty());
    // The limit holds.
    let h = s
        .search(&SearchQuery::parse("tag:billing").unwrap(), 2)
        .unwrap();
    assert_eq!(
        h.iter().map(|h| h.message_id).collect::<Vec<_>>(),
        vec![Some(f.ann2.message), Some(f.reply)]
    );
}

#[test]
fn search_filter_errors_say_what_to_do() {
    let err = |q: &str| SearchQuery::parse(q).unwrap_err();
    // An unknown key names the known ones: it may be a custom field ([[fields]]), which only
    // the store knows, so the search is what refuses it.
    let e = mem()
        .search(&SearchQuery::parse("colour:red").unwrap(), 5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("colour:"), "{e}");
    for key in [
        "from:",
        "tag:",
        "assignee:",
        "status:",
        "priority:",
        "is:",
        "channel:",
        "after:",
    ] {
        assert!(e.contains(key), "{e} names {key}");
    }
    // A key with nothing after it is an error, not a search for the key.
    let e = err("from:");
    assert!(e.contains("from:"), "{e}");
    assert!(SearchQuery::parse("order tag:").is_err());
    assert!(
        SearchQuery::parse("status:closed")
            .unwrap_err()
            .contains("open")
    );
    assert!(
        SearchQuery::parse("priority:critical")
            .unwrap_err()
            .contains("urgent")
    );
    assert!(SearchQuery::parse("is:bogus").unwrap_err().contains("vip"));
    // Quoted, a key is a word; a colon not after letters is text.
    assert!(SearchQuery::parse("\"colour:red\"").is_ok());
    assert!(SearchQuery::parse("10:30").is_ok());
}

#[test]
fn search_caps_the_number_of_terms_and_the_length() {
    let many: Vec<String> = (0..33).map(|i| format!("w{i}")).collect();
    let e = SearchQuery::parse(&many.join(" ")).unwrap_err();
    assert!(e.contains("32"), "{e}");
    assert!(SearchQuery::parse(&many[..32].join(" ")).is_ok());
    // 8,000 words: refused at once (it took over 30 s).
    let huge = vec!["refund"; 8000].join(" ");
    let t = std::time::Instant::now();
    assert!(SearchQuery::parse(&huge).is_err());
    assert!(
        t.elapsed() < std::time::Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    let long = "x".repeat(2000);
    let e = SearchQuery::parse(&long).unwrap_err();
    assert!(e.contains("characters"), "{e}");
}

/// A filter alone is answered from an index on conversations (or tags), never by a walk of
/// every message.
#[test]
fn a_filter_alone_reads_an_index_not_every_message() {
    let f = filtered_fixture();
    for q in [
        "tag:refund",
        "status:open",
        "assignee:eve",
        "assignee:none",
        "status:pending assignee:eve",
        "tag:billing is:in after:2026-01-02",
    ] {
        let plan = f.s.search_plan(&SearchQuery::parse(q).unwrap()).unwrap();
        let text = plan.join("\n");
        assert!(
            !text.contains("SCAN m") && !text.contains("SCAN messages"),
            "{q}: {text}"
        );
        assert!(
            text.contains("USING INDEX") || text.contains("USING COVERING INDEX"),
            "{q}: {text}"
        );
        if q.starts_with("tag:") {
            assert!(
                text.contains("tags_by_tag") || text.contains("sqlite_autoindex_tags"),
                "{q}: {text}"
            );
        }
        if q == "status:open" {
            assert!(text.contains("conversations_status"), "{q}: {text}");
        }
        assert!(text.contains("messages_conversation_time"), "{q}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// events: the change feed sees every mutation

#[test]
fn every_mutation_appends_the_expected_events() {
    let mut s = mem();
    assert_eq!(s.last_event_id().unwrap(), EventId(0));
    let mut mark = s.last_event_id().unwrap();
    let mut expect = |s: &Store, kinds: &[&str], what: &str| {
        assert_eq!(event_kinds(s, mark), kinds, "{what}");
        mark = s.last_event_id().unwrap();
    };

    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "one", T0));
    expect(&s, &["conversation_created", "message_in"], "new contact");
    put(&mut s, &email("<2@x>", "ann@x.org", "two", T0 + MIN));
    expect(&s, &["message_in"], "joins the open conversation");
    put(&mut s, &email("<2@x>", "ann@x.org", "two", T0 + MIN));
    expect(&s, &[], "duplicate");
    put(
        &mut s,
        &linked(
            web("w1", "v-1", "web", T0 + 2 * MIN),
            IdentityKind::Phone,
            "+442079460958",
        ),
    );
    expect(
        &s,
        &["identity_linked", "conversation_created", "message_in"],
        "a visitor gives a phone",
    );
    let b = put_stored(&mut s, &tg("t1", "555", "tg", T0 + 3 * MIN));
    expect(
        &s,
        &["conversation_created", "message_in"],
        "telegram stranger",
    );
    put(
        &mut s,
        &linked(
            tg("t2", "555", "it's ann", T0 + 4 * MIN),
            IdentityKind::Email,
            "ann@x.org",
        ),
    );
    expect(
        &s,
        &["contacts_merged", "message_in"],
        "telegram gives email: merge",
    );

    s.assign(a.conversation, Some("bob"), "bob", T0).unwrap();
    expect(&s, &["assigned"], "assign");
    s.assign(a.conversation, None, "bob", T0).unwrap();
    expect(&s, &["assigned"], "unassign");
    s.set_priority(a.conversation, Priority::Urgent, "bob", T0)
        .unwrap();
    expect(&s, &["priority_changed"], "priority");
    s.tag(a.conversation, "#Refund", false, "bob", T0).unwrap();
    expect(&s, &["tag_added"], "tag");
    s.tag(a.conversation, "refund", false, "bob", T0).unwrap();
    expect(&s, &[], "same tag again");
    s.tag(a.conversation, "refund", true, "bob", T0).unwrap();
    expect(&s, &["tag_removed"], "untag");
    s.tag(a.conversation, "never-there", true, "bob", T0)
        .unwrap();
    expect(&s, &[], "untag a missing tag");
    s.add_note(a.conversation, "bob", "hm", T0).unwrap();
    expect(&s, &["note"], "note");
    s.save_draft(a.conversation, "bob", "reply", None, "typing", T0)
        .unwrap();
    expect(&s, &[], "drafts are private");
    let r = s
        .queue_reply(
            a.conversation,
            Channel::Telegram,
            "bob",
            "hello",
            T0 + 5 * MIN,
        )
        .unwrap();
    expect(&s, &["message_out"], "reply");
    s.claim_outbox(T0 + 5 * MIN, 60_000, 10).unwrap();
    expect(
        &s,
        &["delivery_changed"],
        "claim: the message is now sending",
    );
    s.claim_outbox(T0 + 5 * MIN, 60_000, 10).unwrap();
    expect(&s, &[], "nothing to claim");
    s.mark_failed(r, "timeout", true, "worker", T0 + 6 * MIN)
        .unwrap();
    expect(&s, &["delivery_changed"], "failed");
    s.retry(r, "bob", T0 + 7 * MIN).unwrap();
    expect(&s, &["delivery_changed"], "retry");
    s.claim_outbox(T0 + 7 * MIN, 60_000, 10).unwrap();
    expect(&s, &["delivery_changed"], "claim again");
    s.mark_sent(r, "", Some("tg-1"), "worker", T0 + 8 * MIN)
        .unwrap();
    expect(&s, &["delivery_changed"], "sent");
    s.set_status(a.conversation, Status::Resolved, None, "bob", T0 + 9 * MIN)
        .unwrap();
    expect(&s, &["status_changed"], "resolve");
    put(&mut s, &email("<3@x>", "ann@x.org", "three", T0 + 10 * MIN));
    expect(&s, &["status_changed", "message_in"], "reopen");
    s.set_status(
        a.conversation,
        Status::Snoozed,
        Some(T0 + DAY),
        "bob",
        T0 + 11 * MIN,
    )
    .unwrap();
    expect(&s, &["status_changed"], "snooze");
    s.wake_snoozed(T0 + DAY, "worker").unwrap();
    expect(&s, &["status_changed"], "wake");
    s.add_identity(
        a.contact,
        IdentityKind::Email,
        "ann@work.example",
        "bob",
        T0,
    )
    .unwrap();
    expect(&s, &["identity_linked"], "agent adds an address");
    s.add_identity(
        a.contact,
        IdentityKind::Email,
        "ann@work.example",
        "bob",
        T0,
    )
    .unwrap();
    expect(&s, &[], "adding a known identity again");
    let c = put_stored(&mut s, &email("<c1@x>", "carl@x.org", "hi", T0 + 12 * MIN));
    expect(
        &s,
        &["conversation_created", "message_in"],
        "another contact",
    );
    s.add_identity(a.contact, IdentityKind::Email, "carl@x.org", "bob", T0)
        .unwrap();
    expect(&s, &["contacts_merged"], "agent says they are one");
    s.set_vip(a.contact, true, "bob", T0).unwrap();
    expect(&s, &["contact_updated"], "vip");
    let mut out = email("<o1@us>", "ann@x.org", "from my mail client", T0 + 13 * MIN);
    out.direction = Direction::Out;
    put(&mut s, &out);
    expect(&s, &["message_out"], "sent-folder copy");

    // Events name what they are about, so a follower refreshes only that.
    let all = s.events_since(EventId(0), 1000).unwrap();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    for e in &all {
        match e.kind.as_str() {
            "message_in" | "message_out" | "note" | "delivery_changed" => {
                assert!(
                    e.message_id.is_some() && e.conversation_id.is_some() && e.contact_id.is_some(),
                    "{e:?}"
                )
            }
            "assigned"
            | "status_changed"
            | "priority_changed"
            | "tag_added"
            | "tag_removed"
            | "conversation_created" => assert!(
                e.conversation_id.is_some() && e.contact_id.is_some(),
                "{e:?}"
            ),
            "identity_linked" | "contacts_merged" | "contact_updated" => {
                assert!(e.contact_id.is_some(), "{e:?}")
            }
            other => panic!("unexpected event kind {other}"),
        }
    }
    // Paging through the feed in small steps sees the same thing.
    let mut paged = Vec::new();
    let mut after = EventId(0);
    loop {
        let page = s.events_since(after, 3).unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let audit = s.conversation_events(b.conversation, 100).unwrap();
    assert!(
        audit.is_empty(),
        "the folded conversation's events moved to the survivor"
    );
    assert!(s.conversation_events(a.conversation, 100).unwrap().len() > 10);
    assert!(s.contact(c.contact).is_ok());
}

#[test]
fn identity_errors_do_not_echo_hostile_text() {
    // The error reaches logs and the status line: it must not carry the sender's escapes.
    let raw = "\x1b]0;pwned\x07ann\u{202e}@x\x1b[2J\u{9b}31m.org";
    for kind in IdentityKind::ALL {
        let e = crate::identity::normalize(*kind, raw).unwrap_err();
        assert!(clean_line(&e.to_string()), "{kind}: {:?}", e.to_string());
    }
    let mut s = mem();
    let err = try_put(
        &mut s,
        &email("<1@x>", raw, "hi", T0),
        &Settings::default(),
        T0,
    )
    .unwrap_err();
    assert!(clean_line(&err.to_string()), "{:?}", err.to_string());
    let long = format!("{}@", "a".repeat(10_000));
    let e = crate::identity::normalize(IdentityKind::Email, &long).unwrap_err();
    assert!(
        e.to_string().chars().count() < 200,
        "a one-line error, not the whole input"
    );
}

#[test]
fn no_typed_character_makes_search_fail() {
    let f = search_fixture();
    let mut chars: Vec<char> = (0u8..=0x7f).map(char::from).collect();
    chars.extend([
        '\u{85}', '\u{9b}', '\u{a0}', '\u{202e}', '\u{feff}', '\u{fffd}', 'é', '日',
    ]);
    for c in chars {
        for q in [
            format!("{c}"),
            format!("order{c}"),
            format!("{c}order"),
            format!("or{c}der 1234"),
            format!("\"order{c}1234\""),
            format!("{c}*"),
            format!("from:{c} order"),
        ] {
            if let Ok(parsed) = SearchQuery::parse(&q) {
                let r = f.s.search(&parsed, 5);
                // `or:der` is a field filter the workspace does not define: refused by name.
                let unknown_field = !parsed.fields.is_empty()
                    && r.as_ref()
                        .is_err_and(|e| e.to_string().contains("unknown filter"));
                assert!(
                    r.is_ok() || unknown_field,
                    "{q:?} -> {:?}: {:?}",
                    parsed.fts,
                    r.err()
                );
            }
        }
    }
}

#[test]
fn a_sent_copy_that_arrives_before_mark_sent_does_not_break_it() {
    // The Sent folder can deliver the copy of our reply before the worker records the send.
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    let id = s
        .queue_reply(a.conversation, Channel::Email, "bob", "answer", T0 + MIN)
        .unwrap();
    s.claim_outbox(T0 + MIN, 60_000, 10).unwrap();
    let mut copy = email("<r1@us>", "ann@x.org", "answer", T0 + MIN);
    copy.account = "main".into();
    copy.direction = Direction::Out;
    put(&mut s, &copy);
    s.mark_sent(id, "main", Some("<r1@us>"), "worker", T0 + 2 * MIN)
        .unwrap();
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));
    assert_eq!(s.outbox_counts().unwrap(), (0, 0));
    assert!(
        s.claim_outbox(T0 + DAY, 60_000, 10).unwrap().is_empty(),
        "never sent twice"
    );
}

#[test]
fn delivery_reports_for_messages_not_in_the_outbox_change_nothing() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "hello", T0));
    let id = s
        .queue_reply(a.conversation, Channel::Email, "bob", "answer", T0)
        .unwrap();
    s.claim_outbox(T0, 60_000, 10).unwrap();
    s.mark_sent(id, "", Some("<r1@us>"), "worker", T0 + MIN)
        .unwrap();
    let mark = s.last_event_id().unwrap();
    // A late timeout report for a message that went out.
    assert!(
        s.mark_failed(id, "timeout", true, "worker", T0 + 2 * MIN)
            .is_err()
    );
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));
    assert_eq!(s.message(id).unwrap().delivery_error, None);
    // The same success reported twice is not an error and not a second event.
    s.mark_sent(id, "", Some("<r1@us>"), "worker", T0 + 3 * MIN)
        .unwrap();
    // A note or a customer message is never "sent".
    let note = s.add_note(a.conversation, "bob", "hm", T0).unwrap();
    let mark2 = s.last_event_id().unwrap();
    assert!(s.mark_sent(note, "", None, "worker", T0).is_err());
    assert!(s.mark_sent(a.message, "", None, "worker", T0).is_err());
    assert!(s.mark_failed(a.message, "x", false, "worker", T0).is_err());
    assert_eq!(s.message(note).unwrap().delivery, None);
    assert_eq!(s.message(a.message).unwrap().delivery, None);
    assert_eq!(event_kinds(&s, mark2), Vec::<String>::new());
    assert_eq!(event_kinds(&s, mark), vec!["note"]);
}

#[test]
fn a_merge_keeps_every_agents_draft() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "one", T0));
    let t = put_stored(&mut s, &tg("t1", "555", "two", T0 + HOUR));
    s.save_draft(
        t.conversation,
        "bob",
        "reply",
        Some(Channel::Telegram),
        "Dear Ann, about",
        T0 + HOUR,
    )
    .unwrap();
    s.save_draft(
        a.conversation,
        "eve",
        "note",
        None,
        "check the order",
        T0 + HOUR,
    )
    .unwrap();
    s.save_draft(
        t.conversation,
        "eve",
        "note",
        None,
        "and the refund",
        T0 + HOUR,
    )
    .unwrap();
    put(
        &mut s,
        &linked(
            tg("t2", "555", "it's Ann", T0 + 2 * HOUR),
            IdentityKind::Email,
            "ann@x.org",
        ),
    );
    assert!(s.conversation(t.conversation).is_err(), "folded");
    let (kind, channel, body) = s.draft(a.conversation, "bob").unwrap().unwrap();
    assert_eq!(
        (kind.as_str(), channel, body.as_str()),
        ("reply", Some(Channel::Telegram), "Dear Ann, about")
    );
    let (_, _, body) = s.draft(a.conversation, "eve").unwrap().unwrap();
    assert!(
        body.contains("check the order") && body.contains("and the refund"),
        "{body:?}"
    );
    assert_eq!(count(&s, "SELECT count(*) FROM drafts"), 2);
}

#[test]
fn adding_an_identity_to_a_merged_contact_lands_on_the_survivor() {
    let mut s = mem();
    let a = put_stored(&mut s, &email("<1@x>", "ann@x.org", "one", T0));
    let t = put_stored(&mut s, &tg("t1", "555", "two", T0 + HOUR));
    s.add_identity(
        a.contact,
        IdentityKind::Telegram,
        "555",
        "bob",
        T0 + 2 * HOUR,
    )
    .unwrap();
    // Another agent's screen still shows the absorbed contact.
    let got = s
        .add_identity(
            t.contact,
            IdentityKind::Phone,
            "+442079460958",
            "eve",
            T0 + 3 * HOUR,
        )
        .unwrap();
    assert_eq!(got, a.contact);
    assert_eq!(
        s.contact_by_identity(IdentityKind::Phone, "+442079460958")
            .unwrap(),
        Some(a.contact)
    );
    assert!(s.identities(t.contact).unwrap().is_empty());
    assert!(matches!(
        s.add_identity(ContactId(999), IdentityKind::Telegram, "1", "bob", T0),
        Err(StoreError::NoContact(999))
    ));
    assert!(matches!(
        s.set_vip(ContactId(999), true, "bob", T0),
        Err(StoreError::NoContact(999))
    ));
}

#[test]
fn reload_in_place_and_jump_anchors_match_the_order() {
    let s = queue_fixture();
    for filter in all_filters() {
        let expected = expected_queue(&s, &filter);
        let all = s.queue_page(&filter, QueueAnchor::Top, 1000).unwrap();
        for (i, row) in all.iter().enumerate() {
            let page = s
                .queue_page(&filter, QueueAnchor::AtOrAfter(row.cursor()), 3)
                .unwrap();
            let want: Vec<_> = expected.iter().copied().skip(i).take(3).collect();
            assert_eq!(
                page.iter().map(|r| r.id).collect::<Vec<_>>(),
                want,
                "{filter:?} at {i}"
            );
        }
        for n in [0, 1, 5, expected.len(), expected.len() + 3] {
            let page = s.queue_page(&filter, QueueAnchor::Offset(n), 4).unwrap();
            let want: Vec<_> = expected.iter().copied().skip(n).take(4).collect();
            assert_eq!(
                page.iter().map(|r| r.id).collect::<Vec<_>>(),
                want,
                "{filter:?} offset {n}"
            );
        }
    }
}

#[test]
fn a_merge_keeps_the_subject_and_the_higher_priority() {
    let mut s = mem();
    // The older conversation is a web chat: no subject, normal priority.
    let w = put_stored(&mut s, &web("w1", "v-1", "hi", T0));
    let e = put_stored(&mut s, &email("<1@x>", "ann@x.org", "invoice?", T0 + HOUR));
    s.set_priority(e.conversation, Priority::Urgent, "bob", T0 + HOUR)
        .unwrap();
    put(
        &mut s,
        &linked(
            web("w2", "v-1", "I'm ann", T0 + 2 * HOUR),
            IdentityKind::Email,
            "ann@x.org",
        ),
    );
    let c = s.conversation(w.conversation).unwrap();
    assert_eq!(c.subject.as_deref(), Some("Order question"));
    assert_eq!(c.priority, Priority::Urgent);
    let r = s
        .queue_reply(w.conversation, Channel::Email, "bob", "here", T0 + 3 * HOUR)
        .unwrap();
    assert_eq!(
        s.message(r).unwrap().subject.as_deref(),
        Some("Re: Order question")
    );
}

#[test]
fn email_prefixes_and_brackets_in_any_case_normalize_to_the_address() {
    use crate::identity::normalize;
    for raw in [
        "ann@x.org",
        "Ann@X.org ",
        "<ann@x.org>",
        "mailto:ann@x.org",
        "MAILTO:Ann@X.org",
        "<mailto:ann@x.org>",
        " <MailTo:ANN@x.org> ",
    ] {
        assert_eq!(
            normalize(IdentityKind::Email, raw).unwrap(),
            "ann@x.org",
            "{raw:?}"
        );
    }
}

/// Issue 12, item 13: a store error printed with its causes (`{:#}`, as the CLI does) says
/// the cause once, not once per layer.
#[test]
fn a_store_error_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![b'x'; 8192]).unwrap();
    let e = match Store::open_dir(dir.path()) {
        Err(e) => anyhow::Error::from(e),
        Ok(_) => panic!("a garbage file opened as a store"),
    };
    let text = format!("{e:#}");
    assert_eq!(
        text.matches("not a database").count(),
        1,
        "the cause repeats: {text}"
    );
    let e = match Store::open_dir(&dir.path().join(DB_FILE).join("sub")) {
        Err(e) => anyhow::Error::from(e),
        Ok(_) => panic!("a directory under a file"),
    };
    let text = format!("{e:#}");
    assert!(text.contains("cannot create data directory"), "{text}");
    let first_cause = text.rsplit(": ").next().unwrap_or_default().to_string();
    assert_eq!(text.matches(&first_cause).count(), 1, "{text}");
}
