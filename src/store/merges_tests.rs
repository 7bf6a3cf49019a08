//! Merges you can take back: round trips over random identity graphs, later messages going
//! back with their identity, replies after a merge going where the customer wrote from.

use super::*;
use crate::demo::rng::Rng;
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::*;

const T0: Millis = 1_767_225_600_000;
const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;
const DAY: Millis = 24 * HOUR;

fn inbound(channel: Channel, ext: &str, who: &str, body: &str, at: Millis) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(channel.identity_kind(), who),
        linked: Vec::new(),
        customer_name: None,
        author: None,
        subject: (channel == Channel::Email).then(|| "Order".to_string()),
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn put(s: &mut Store, m: &Inbound) -> (MessageId, ConversationId, ContactId) {
    let tx = s.write().unwrap();
    let out = ingest_in(&tx, m, &Settings::default(), m.sent_at + 1000).unwrap();
    tx.commit().unwrap();
    match out {
        Ingested::Stored {
            message,
            conversation,
            contact,
            ..
        } => (message, conversation, contact),
        other => panic!("not stored: {other:?}"),
    }
}

/// Every row of every table a merge touches, as text, in a stable order.
fn snapshot(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "contacts",
        "identities",
        "conversations",
        "messages",
        "tags",
        "drafts",
        "identity_claims",
        "report_facts",
        "contact_fields",
    ] {
        let cols = super::merges::tests_columns(s.conn(), table);
        let sql = format!("SELECT {} FROM {table} ORDER BY 1, 2", cols.join(", "));
        let mut stmt = s.conn().prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let mut line = format!("{table}:");
            for (i, c) in cols.iter().enumerate() {
                let v: rusqlite::types::Value = r.get(i).unwrap();
                line.push_str(&format!(" {c}={v:?}"));
            }
            out.push(line);
        }
    }
    out
}

fn diff(a: &[String], b: &[String]) -> String {
    let only_a: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
    let only_b: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
    format!("before only: {only_a:#?}\nafter only: {only_b:#?}")
}

const CHANNELS: &[Channel] = &[
    Channel::Email,
    Channel::Telegram,
    Channel::WebChat,
    Channel::Sms,
];

fn who(channel: Channel, n: u64) -> String {
    match channel {
        Channel::Email => format!("p{n}@example.org"),
        Channel::Telegram => format!("{}", 7000 + n),
        Channel::WebChat => format!("visitor-{n}"),
        _ => format!("+4420794609{n:02}"),
    }
}

/// A random little world: people writing on random channels, some conversations resolved,
/// tagged, assigned, with drafts and claims.
fn world(seed: u64) -> (Store, Vec<ContactId>) {
    let mut rng = Rng::new(seed);
    let mut s = Store::open_in_memory().unwrap();
    let mut contacts = Vec::new();
    let people = 2 + rng.below(5);
    let mut t = T0;
    let mut ext = 0;
    for p in 0..people {
        let identities = 1 + rng.below(2);
        for k in 0..identities {
            let ch = rng.pick(CHANNELS);
            let value = who(ch, p * 10 + k);
            for _ in 0..1 + rng.below(4) {
                ext += 1;
                t += rng.range(1, 300) * MIN;
                let (_, conv, contact) = put(
                    &mut s,
                    &inbound(ch, &format!("m{ext}"), &value, &format!("hello {ext}"), t),
                );
                if !contacts.contains(&contact) {
                    contacts.push(contact);
                }
                if rng.chance(0.3) {
                    s.tag(conv, &format!("t{}", rng.below(3)), false, "bob", t + 1)
                        .unwrap();
                }
                if rng.chance(0.3) {
                    s.queue_reply(conv, ch, "bob", "on it", t + 2).unwrap();
                }
                if rng.chance(0.2) {
                    s.set_status(conv, Status::Resolved, None, "bob", t + 3)
                        .unwrap();
                }
                if rng.chance(0.2) {
                    s.save_draft(
                        conv,
                        "bob",
                        "reply",
                        Some(ch),
                        &format!("draft {ext}"),
                        t + 4,
                    )
                    .unwrap();
                }
            }
        }
    }
    // Fields, stages and scores on some of them (the survivor's win where both have one).
    for c in &contacts {
        for name in ["plan", "city"] {
            if rng.chance(0.5) {
                s.conn()
                    .execute(
                        "INSERT INTO contact_fields(contact_id, name, value, updated_at, updated_by)
                         VALUES (?1, ?2, ?3, 1, 'bob')",
                        (c, name, format!("{name}{}", rng.below(3))),
                    )
                    .unwrap();
            }
        }
        if rng.chance(0.5) {
            s.conn()
                .execute(
                    "UPDATE contacts SET stage = ?2, lead_score = ?3 WHERE id = ?1",
                    (
                        c,
                        ["lead", "customer"][rng.below(2) as usize],
                        rng.below(50) as i64,
                    ),
                )
                .unwrap();
        }
    }
    (s, contacts)
}

#[test]
fn merge_then_unmerge_is_an_exact_round_trip_on_random_identity_graphs() {
    for seed in 0..80 {
        let (mut s, contacts) = world(seed);
        if contacts.len() < 2 {
            continue;
        }
        let before = snapshot(&s);
        let mut rng = Rng::new(seed ^ 0xabcd);
        let mut merges = Vec::new();
        let mut live = contacts.clone();
        for _ in 0..1 + rng.below(3) {
            if live.len() < 2 {
                break;
            }
            let a = live.remove(rng.below(live.len() as u64) as usize);
            let b = live[rng.below(live.len() as u64) as usize];
            // Either side may survive.
            let (survivor, absorbed) = if rng.chance(0.5) { (b, a) } else { (a, b) };
            if survivor == a {
                live.retain(|c| *c != b);
                live.push(a);
            }
            let id = s
                .merge_contacts_by_hand(survivor, absorbed, "manual: test", "bob", T0 + 400 * DAY)
                .unwrap_or_else(|e| panic!("seed {seed}: merge: {e}"));
            merges.push(id);
        }
        assert_ne!(
            snapshot(&s),
            before,
            "seed {seed}: the merges changed nothing"
        );
        for id in merges.iter().rev() {
            s.unmerge(Some(*id), None, "bob", T0 + 401 * DAY)
                .unwrap_or_else(|e| panic!("seed {seed}: unmerge #{id}: {e}"));
        }
        let after = snapshot(&s);
        assert!(after == before, "seed {seed}:\n{}", diff(&before, &after));
    }
}

#[test]
fn an_unmerge_in_the_wrong_order_is_refused_and_says_which_first() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, _, a) = put(&mut s, &inbound(Channel::Email, "1", "a@x.org", "one", T0));
    let (_, _, b) = put(
        &mut s,
        &inbound(Channel::Telegram, "2", "42", "two", T0 + HOUR),
    );
    let (_, _, c) = put(
        &mut s,
        &inbound(Channel::Sms, "3", "+442079460901", "three", T0 + 2 * HOUR),
    );
    let m1 = s
        .merge_contacts_by_hand(a, b, "manual", "bob", T0 + DAY)
        .unwrap();
    let m2 = s
        .merge_contacts_by_hand(c, a, "manual", "bob", T0 + DAY)
        .unwrap();
    let err = s
        .unmerge(Some(m1), None, "bob", T0 + 2 * DAY)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("#{m2}")), "{err}");
    s.unmerge(Some(m2), None, "bob", T0 + 2 * DAY).unwrap();
    s.unmerge(Some(m1), None, "bob", T0 + 2 * DAY).unwrap();
    let again = s
        .unmerge(Some(m1), None, "bob", T0 + 2 * DAY)
        .unwrap_err()
        .to_string();
    assert!(again.contains("already undone"), "{again}");
    // Provenance: both merges listed, undone, with who and why.
    let list = s.merges(a, 10).unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|m| m.undone.as_ref().is_some_and(|u| u.1 == "bob"))
    );
    assert!(list[1].moved.contains("1 identity,"), "{:?}", list[1]);
}

#[test]
fn messages_that_came_after_the_merge_go_back_with_their_identity() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, conv_a, a) = put(
        &mut s,
        &inbound(Channel::Email, "1", "ann@x.org", "my order", T0),
    );
    let (_, conv_b, b) = put(
        &mut s,
        &inbound(Channel::Telegram, "2", "555", "hi from tg", T0 + HOUR),
    );
    s.merge_contacts_by_hand(a, b, "manual: same person", "bob", T0 + 2 * HOUR)
        .unwrap();
    // One open conversation now: the Telegram one joined the email one.
    assert!(s.conversation(conv_b).is_err());
    let (later, in_conv, to) = put(
        &mut s,
        &inbound(Channel::Telegram, "3", "555", "still there?", T0 + 3 * HOUR),
    );
    let (mine, _, _) = put(
        &mut s,
        &inbound(Channel::Email, "4", "ann@x.org", "and email", T0 + 4 * HOUR),
    );
    assert_eq!((in_conv, to), (conv_a, a));
    let r = s.unmerge(None, Some(b), "bob", T0 + 5 * HOUR).unwrap();
    assert_eq!(r.later_messages, 1);
    let m = s.message(later).unwrap();
    assert_eq!(
        m.contact_id, b,
        "the Telegram message went back with its identity"
    );
    assert_eq!(
        m.conversation_id, conv_b,
        "into the conversation that came back"
    );
    assert_eq!(s.message(mine).unwrap().contact_id, a);
    assert_eq!(s.conversation(conv_b).unwrap().message_count, 2);
    assert_eq!(s.conversation(conv_a).unwrap().message_count, 2);
    assert_eq!(s.contact(b).unwrap().last_seen, T0 + 3 * HOUR);
    let ids: Vec<_> = s
        .identities(b)
        .unwrap()
        .into_iter()
        .map(|i| i.value)
        .collect();
    assert_eq!(ids, vec!["555".to_string()]);
}

#[test]
fn a_reply_after_a_merge_goes_to_the_number_the_customer_used() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, _, a) = put(
        &mut s,
        &inbound(Channel::Sms, "1", "+442079460901", "old phone", T0),
    );
    let (_, _, b) = put(
        &mut s,
        &inbound(Channel::Sms, "2", "+442079460902", "new phone", T0 + HOUR),
    );
    s.merge_contacts_by_hand(a, b, "manual", "bob", T0 + 2 * HOUR)
        .unwrap();
    s.set_status(
        s.active_conversation(a).unwrap().unwrap(),
        Status::Resolved,
        None,
        "bob",
        T0 + 3 * HOUR,
    )
    .unwrap();
    // Days later the customer writes from the older number: the reply goes there, not to the
    // newest identity of the kind.
    let (_, conv, _) = put(
        &mut s,
        &inbound(
            Channel::Sms,
            "3",
            "+442079460901",
            "it's me again",
            T0 + 30 * DAY,
        ),
    );
    let reply = s
        .queue_reply(conv, Channel::Sms, "bob", "hello", T0 + 30 * DAY + MIN)
        .unwrap();
    let to: String = s
        .conn()
        .query_row(
            "SELECT recipient FROM outbox WHERE message_id = ?1",
            [reply],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(to, "+442079460901");
}

#[test]
fn conversation_merge_and_split_round_trip() {
    let mut s = Store::open_in_memory().unwrap();
    let (m1, c1, a) = put(
        &mut s,
        &inbound(Channel::Email, "1", "ann@x.org", "first", T0),
    );
    s.tag(c1, "billing", false, "bob", T0 + 1).unwrap();
    s.set_status(c1, Status::Resolved, None, "bob", T0 + MIN)
        .unwrap();
    let (m2, c2, _) = put(
        &mut s,
        &inbound(Channel::Email, "2", "ann@x.org", "second", T0 + 30 * DAY),
    );
    assert_ne!(c1, c2);
    let before = snapshot(&s);
    let merge = s.merge_conversations(c1, c2, "bob", T0 + 31 * DAY).unwrap();
    assert!(s.conversation(c2).is_err());
    assert_eq!(s.message(m1).unwrap().conversation_id, c1);
    assert_eq!(s.message(m2).unwrap().conversation_id, c1);
    s.unmerge(Some(merge), None, "bob", T0 + 32 * DAY).unwrap();
    let after = snapshot(&s);
    assert!(after == before, "{}", diff(&before, &after));

    // Split: the second message and the later ones start a new conversation.
    let (m3, _, _) = put(
        &mut s,
        &inbound(
            Channel::Email,
            "3",
            "ann@x.org",
            "third",
            T0 + 30 * DAY + HOUR,
        ),
    );
    let before = snapshot(&s);
    let (split, new) = s.split_conversation(c2, m3, "bob", T0 + 33 * DAY).unwrap();
    assert_eq!(s.message(m3).unwrap().conversation_id, new);
    assert_eq!(s.message(m2).unwrap().conversation_id, c2);
    assert_eq!(s.conversation(new).unwrap().message_count, 1);
    assert_eq!(s.conversation(new).unwrap().contact_id, a);
    let err = s
        .split_conversation(c2, m2, "bob", T0 + 33 * DAY)
        .unwrap_err()
        .to_string();
    assert!(err.contains("first message"), "{err}");
    // A bare unmerge on the contact takes back its newest merge, the split.
    let undone = s.unmerge(None, Some(a), "bob", T0 + 34 * DAY).unwrap();
    assert_eq!(undone.merge, split);
    let after = snapshot(&s);
    assert!(after == before, "{}", diff(&before, &after));
    let audit: Vec<_> = s
        .conversation_events(c2, 50)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        audit.contains(&"conversation_split".to_string())
            || audit.contains(&"conversations_unmerged".to_string()),
        "{audit:?}"
    );
}

#[test]
fn conversations_of_two_people_are_not_merged() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, c1, _) = put(
        &mut s,
        &inbound(Channel::Email, "1", "ann@x.org", "first", T0),
    );
    let (_, c2, _) = put(
        &mut s,
        &inbound(Channel::Email, "2", "bea@x.org", "second", T0),
    );
    let err = s
        .merge_conversations(c1, c2, "bob", T0 + DAY)
        .unwrap_err()
        .to_string();
    assert!(err.contains("merge the contacts first"), "{err}");
}

#[test]
fn identities_move_and_go_audited() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, _, a) = put(
        &mut s,
        &inbound(Channel::Email, "1", "ann@x.org", "first", T0),
    );
    let (_, _, b) = put(
        &mut s,
        &inbound(Channel::Email, "2", "bea@x.org", "second", T0),
    );
    let from = s
        .move_identity(IdentityKind::Email, "bea@x.org", a, "bob", T0 + DAY)
        .unwrap();
    assert_eq!(from, b);
    assert_eq!(s.identities(a).unwrap().len(), 2);
    s.remove_identity(a, IdentityKind::Email, "bea@x.org", "bob", T0 + DAY)
        .unwrap();
    assert_eq!(s.identities(a).unwrap().len(), 1);
    let err = s
        .remove_identity(a, IdentityKind::Email, "bea@x.org", "bob", T0 + DAY)
        .unwrap_err();
    assert!(err.to_string().contains("has no email"), "{err}");
    let kinds: Vec<_> = s
        .conn()
        .prepare("SELECT kind FROM events WHERE kind LIKE 'identity_%' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(kinds, vec!["identity_moved", "identity_removed"]);
}

#[test]
fn fields_stage_and_score_move_to_the_survivor_and_come_back() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, _, a) = put(
        &mut s,
        &inbound(Channel::Email, "1", "ann@x.org", "one", T0),
    );
    let (_, _, b) = put(
        &mut s,
        &inbound(Channel::Telegram, "2", "42", "two", T0 + HOUR),
    );
    for (c, name, value) in [(a, "plan", "pro"), (b, "plan", "free"), (b, "city", "Oslo")] {
        s.conn()
            .execute(
                "INSERT INTO contact_fields(contact_id, name, value, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, 1, 'bob')",
                (c, name, value),
            )
            .unwrap();
    }
    s.conn()
        .execute(
            "UPDATE contacts SET stage = 'customer', lead_score = 30 WHERE id = ?1",
            [b],
        )
        .unwrap();
    let field = |s: &Store, c: ContactId, n: &str| -> Option<String> {
        s.conn()
            .query_row(
                "SELECT value FROM contact_fields WHERE contact_id = ?1 AND name = ?2",
                (c, n),
                |r| r.get(0),
            )
            .ok()
    };
    let m = s
        .merge_contacts_by_hand(a, b, "manual", "bob", T0 + DAY)
        .unwrap();
    assert_eq!(
        field(&s, a, "plan").as_deref(),
        Some("pro"),
        "the survivor's value wins"
    );
    assert_eq!(
        field(&s, a, "city").as_deref(),
        Some("Oslo"),
        "a gap is filled"
    );
    let (stage, score): (Option<String>, i64) = s
        .conn()
        .query_row(
            "SELECT stage, lead_score FROM contacts WHERE id = ?1",
            [a],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((stage.as_deref(), score), (Some("customer"), 30));
    s.unmerge(Some(m), None, "bob", T0 + 2 * DAY).unwrap();
    assert_eq!(field(&s, a, "city"), None);
    assert_eq!(field(&s, b, "plan").as_deref(), Some("free"));
    assert_eq!(field(&s, b, "city").as_deref(), Some("Oslo"));
}

#[test]
fn a_merge_of_a_forgotten_contact_cannot_be_taken_back_and_says_why() {
    let mut s = Store::open_in_memory().unwrap();
    let (_, _, a) = put(
        &mut s,
        &inbound(Channel::Email, "1", "ann@x.org", "one", T0),
    );
    let (_, _, b) = put(
        &mut s,
        &inbound(Channel::Telegram, "2", "42", "two", T0 + HOUR),
    );
    let m = s
        .merge_contacts_by_hand(a, b, "manual", "bob", T0 + DAY)
        .unwrap();
    s.forget_contact(a, "root", T0 + 2 * DAY).unwrap();
    let data: String = s
        .conn()
        .query_row("SELECT data FROM merges WHERE id = ?1", [m], |r| r.get(0))
        .unwrap();
    assert!(
        !data.contains("ann@x.org") && !data.contains("42\""),
        "{data}"
    );
    let err = s
        .unmerge(Some(m), None, "bob", T0 + 3 * DAY)
        .unwrap_err()
        .to_string();
    assert!(err.contains("forgotten"), "{err}");
}
