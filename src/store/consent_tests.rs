//! Consent across channels: one state per contact and purpose, checked by every outbound path.

use super::consent::{Change, outbound_refusal};
use super::*;
use crate::identity::Claim;
use crate::model::{
    Channel, ConsentSource, ContactId, ConversationId, Direction, IdentityKind, Millis, Purpose,
    now_millis,
};

const H: Millis = 3600 * 1000;
const PHONE: &str = "+4915112345678";
const MAIL: &str = "ana@example.com";

/// A message from Ana on `channel`; her phone and email are one contact.
fn inbound(s: &mut Store, channel: Channel, id: &str, at: Millis) -> ConversationId {
    let (customer, other) = match channel {
        Channel::Email => (
            Claim::new(IdentityKind::Email, MAIL),
            Claim::new(IdentityKind::Phone, PHONE),
        ),
        _ => (
            Claim::new(IdentityKind::Phone, PHONE),
            Claim::new(IdentityKind::Email, MAIL),
        ),
    };
    let msg = crate::ingest::Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer,
        linked: vec![other],
        customer_name: Some("Ana".into()),
        author: None,
        subject: Some("order".into()),
        body: format!("message {id}"),
        sent_at: at,
        meta: None,
        cursor: None,
    };
    match crate::ingest::ingest(s, &msg, &Default::default()).unwrap() {
        crate::ingest::Ingested::Stored { conversation, .. }
        | crate::ingest::Ingested::Duplicate { conversation, .. } => conversation,
    }
}

fn marketing(s: &mut Store, conv: ConversationId, channel: Channel, at: Millis) -> Result<i64> {
    let contact = s.conversation(conv)?.contact_id;
    s.write_with(|tx| {
        messages::queue_reply_tx(
            tx,
            conv,
            contact,
            channel,
            "campaign:welcome",
            "20% off this week",
            at,
            None,
            false,
            None,
            Purpose::Marketing,
        )
    })
    .map(|m| m.0)
}

fn stop_sms(s: &mut Store, at: Millis) {
    let tx = s.write().unwrap();
    tx.set_consent(
        Channel::Sms,
        IdentityKind::Phone,
        PHONE,
        true,
        "STOP",
        "sms",
        at,
    )
    .unwrap();
    tx.commit().unwrap();
}

fn agent(contact: ContactId, purpose: Purpose, opted_out: bool) -> Change<'static> {
    Change {
        contact,
        purpose,
        opted_out,
        channel: Some(Channel::WebChat),
        identity: None,
        source: ConsentSource::Agent,
        detail: "asked in the chat",
    }
}

#[test]
fn an_sms_stop_stops_marketing_on_every_channel_but_not_replies() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let c = inbound(&mut s, Channel::Email, "m1", now - 2 * H);
    inbound(&mut s, Channel::Sms, "s1", now - 2 * H);
    marketing(&mut s, c, Channel::Email, now - 2 * H).unwrap();
    stop_sms(&mut s, now - H);
    let e = marketing(&mut s, c, Channel::Email, now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("opted out of marketing"), "{e}");
    assert!(e.contains("on SMS 1 h ago"), "{e}");
    // A reply to her own message still goes by email; SMS takes nothing at all.
    s.queue_reply(c, Channel::Email, "ann", "your order shipped", now)
        .unwrap();
    let e = s
        .queue_reply(c, Channel::Sms, "ann", "shipped", now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("opted out of SMS"), "{e}");
    // The STOP is in her history, with the channel and the number.
    let contact = s.conversation(c).unwrap().contact_id;
    let consent = s.contact_consent(contact).unwrap();
    assert!(consent.marketing_out && !consent.all_out);
    let h = &consent.history;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].channel, Some(Channel::Sms));
    assert_eq!(h[0].value.as_deref(), Some(PHONE));
    assert_eq!(h[0].detail, "STOP");
    assert_eq!(h[0].source, ConsentSource::Keyword);
    assert!(h[0].opted_out);
}

#[test]
fn an_opt_out_of_everything_refuses_replies_and_an_opt_in_restores_them() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let c = inbound(&mut s, Channel::Email, "m1", now - H);
    let contact = s.conversation(c).unwrap().contact_id;
    assert!(
        s.record_consent(&agent(contact, Purpose::Transactional, true), "ann", now)
            .unwrap()
    );
    // Said twice: one change.
    assert!(
        !s.record_consent(&agent(contact, Purpose::Transactional, true), "ann", now)
            .unwrap()
    );
    let e = s
        .queue_reply(c, Channel::Email, "ann", "hello", now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("opted out of all messages"), "{e}");
    assert!(e.contains("recorded by an agent on the web chat"), "{e}");
    assert_eq!(s.outbox_counts().unwrap(), (0, 0));
    s.record_consent(&agent(contact, Purpose::Transactional, false), "ann", now)
        .unwrap();
    s.queue_reply(c, Channel::Email, "ann", "hello", now)
        .unwrap();
    let kinds: Vec<String> = s
        .conn()
        .prepare("SELECT data FROM events WHERE kind = 'consent_changed' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    let first: serde_json::Value = serde_json::from_str(&kinds[0]).unwrap();
    assert_eq!(first["purpose"], "transactional");
    assert_eq!(first["opted_out"], true);
    assert_eq!(first["channel"], "webchat");
    assert_eq!(first["source"], "agent");
}

#[test]
fn a_marketing_opt_out_leaves_replies_allowed() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let c = inbound(&mut s, Channel::Email, "m1", now - H);
    let contact = s.conversation(c).unwrap().contact_id;
    s.record_consent(&agent(contact, Purpose::Marketing, true), "ann", now)
        .unwrap();
    s.queue_reply(c, Channel::Email, "ann", "your answer", now)
        .unwrap();
    let e = marketing(&mut s, c, Channel::Email, now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("opted out of marketing"), "{e}");
    assert_eq!(
        outbound_refusal(
            s.conn(),
            contact,
            Channel::Email,
            MAIL,
            Purpose::Transactional,
            now
        )
        .unwrap(),
        None
    );
}

#[allow(clippy::too_many_arguments)]
fn ingest_text(
    s: &mut Store,
    channel: Channel,
    kind: IdentityKind,
    who: &str,
    id: &str,
    subject: Option<&str>,
    body: &str,
    at: Millis,
) -> ConversationId {
    let msg = crate::ingest::Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: vec![],
        customer_name: Some("Ana".into()),
        author: None,
        subject: subject.map(String::from),
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    };
    match crate::ingest::ingest(s, &msg, &Default::default()).unwrap() {
        crate::ingest::Ingested::Stored { conversation, .. }
        | crate::ingest::Ingested::Duplicate { conversation, .. } => conversation,
    }
}

#[test]
fn an_unsubscribe_email_and_a_telegram_stop_are_recorded_with_their_channel() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let c = ingest_text(
        &mut s,
        Channel::Email,
        IdentityKind::Email,
        MAIL,
        "m1",
        Some("Re: sale"),
        "> 20% off\nUnsubscribe\n",
        now - H,
    );
    let contact = s.conversation(c).unwrap().contact_id;
    let consent = s.contact_consent(contact).unwrap();
    assert!(consent.marketing_out);
    assert_eq!(consent.history[0].channel, Some(Channel::Email));
    assert_eq!(consent.history[0].source, ConsentSource::Keyword);
    assert_eq!(consent.history[0].value.as_deref(), Some(MAIL));
    assert_eq!(consent.history[0].actor, Channel::Email.source());
    // Telegram: /stop, then /start.
    let t = ingest_text(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "4242",
        "t1",
        None,
        "/stop",
        now - H,
    );
    let tc = s.conversation(t).unwrap().contact_id;
    assert!(s.contact_consent(tc).unwrap().marketing_out);
    assert!(marketing(&mut s, t, Channel::Telegram, now).is_err());
    ingest_text(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "4242",
        "t2",
        None,
        "/start",
        now,
    );
    let consent = s.contact_consent(tc).unwrap();
    assert!(!consent.marketing_out);
    assert_eq!(consent.history.len(), 2);
    assert_eq!(consent.history[1].source, ConsentSource::Command);
    marketing(&mut s, t, Channel::Telegram, now).unwrap();
    // An ordinary message changes nothing.
    ingest_text(
        &mut s,
        Channel::Email,
        IdentityKind::Email,
        MAIL,
        "m2",
        None,
        "stop sending me the wrong size",
        now,
    );
    assert_eq!(s.contact_consent(contact).unwrap().history.len(), 1);
}

#[test]
fn a_telegram_block_opts_out_of_marketing_everywhere() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let t = ingest_text(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "4242",
        "t1",
        None,
        "hi",
        now - H,
    );
    let contact = s.conversation(t).unwrap().contact_id;
    s.mark_unreachable(
        IdentityKind::Telegram,
        "4242",
        "the customer blocked the bot",
        "worker",
        now,
    )
    .unwrap();
    let consent = s.contact_consent(contact).unwrap();
    assert!(consent.marketing_out);
    assert_eq!(consent.history[0].source, ConsentSource::Block);
    let e = marketing(&mut s, t, Channel::Telegram, now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("blocked us on Telegram"), "{e}");
}

#[test]
fn the_dispatcher_refuses_a_queued_message_after_an_opt_out() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let c = inbound(&mut s, Channel::Email, "m1", now - H);
    let contact = s.conversation(c).unwrap().contact_id;
    let m = marketing(&mut s, c, Channel::Email, now - H).unwrap();
    let reply = s
        .queue_reply(c, Channel::Email, "ann", "your order", now - H)
        .unwrap();
    s.record_consent(&agent(contact, Purpose::Marketing, true), "ann", now)
        .unwrap();
    let claimed = s.claim_outbox(now, 60_000, 10).unwrap();
    // The reply still goes; the marketing message fails with the reason, never claimed.
    assert_eq!(
        claimed.iter().map(|i| i.message_id).collect::<Vec<_>>(),
        vec![reply]
    );
    let msg = s.message(crate::model::MessageId(m)).unwrap();
    assert_eq!(msg.delivery, Some(crate::model::Delivery::Failed));
    assert!(
        msg.delivery_error
            .unwrap_or_default()
            .contains("opted out of marketing")
    );
}
