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
