//! Assignment for teams: taking a conversation someone else owns needs their consent settled
//! (asked, agreed for that owner, or forced), a handoff writes the assignment and the note in
//! one transaction, and a team's queue pages from its index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::*;

const T0: Millis = 1_767_225_600_000;
const MIN: Millis = 60_000;

fn put(store: &mut Store, ext: &str, who: &str, account: &str, at: Millis) -> ConversationId {
    let mut settings = Settings::default();
    settings
        .teams
        .insert((Channel::Email, "billing".into()), "billing".into());
    let m = Inbound {
        channel: Channel::Email,
        account: account.into(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, who),
        linked: Vec::new(),
        customer_name: None,
        author: None,
        subject: Some("Refund".into()),
        body: "where is my refund".into(),
        sent_at: at,
        meta: None,
        cursor: None,
    };
    let tx = store.write().unwrap();
    let out = ingest_in(&tx, &m, &settings, at).unwrap();
    tx.commit().unwrap();
    match out {
        Ingested::Stored { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    }
}

fn kinds(store: &Store, c: ConversationId) -> Vec<String> {
    let mut k: Vec<String> = store
        .conversation_events(c, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    k.reverse();
    k
}

#[test]
fn someone_elses_conversation_is_taken_only_with_consent() {
    let mut store = Store::open_in_memory().unwrap();
    let c = put(&mut store, "<1@x>", "ann@x.org", "", T0);
    // Unowned: anyone assigns it.
    assert_eq!(
        store
            .assign_checked(c, Some("bob"), OwnerCheck::Ask, None, "carol", T0)
            .unwrap(),
        None
    );
    // bob's now: carol is told whose it is, and nothing changes.
    assert_eq!(
        store
            .assign_checked(c, Some("carol"), OwnerCheck::Ask, None, "carol", T0 + MIN)
            .unwrap(),
        Some("bob".to_string())
    );
    assert_eq!(
        store.conversation(c).unwrap().assignee.as_deref(),
        Some("bob")
    );
    // bob himself hands it on freely; so does anyone assigning it to bob again.
    assert_eq!(
        store
            .assign_checked(c, Some("bob"), OwnerCheck::Ask, None, "carol", T0 + MIN)
            .unwrap(),
        None
    );
    // carol said yes to taking it from dana, but it is bob's: asked again.
    assert_eq!(
        store
            .assign_checked(
                c,
                Some("carol"),
                OwnerCheck::Was(Some("dana")),
                None,
                "carol",
                T0 + MIN
            )
            .unwrap(),
        Some("bob".to_string())
    );
    // Yes for bob: taken.
    assert_eq!(
        store
            .assign_checked(
                c,
                Some("carol"),
                OwnerCheck::Was(Some("bob")),
                None,
                "carol",
                T0 + 2 * MIN
            )
            .unwrap(),
        None
    );
    assert_eq!(
        store.conversation(c).unwrap().assignee.as_deref(),
        Some("carol")
    );
    // Forced: whoever has it.
    assert_eq!(
        store
            .assign_checked(c, None, OwnerCheck::Any, None, "dana", T0 + 3 * MIN)
            .unwrap(),
        None
    );
    assert_eq!(store.conversation(c).unwrap().assignee, None);
    let assigned = kinds(&store, c).iter().filter(|k| *k == "assigned").count();
    assert_eq!(assigned, 4, "every change audited, no refusal written");
}

#[test]
fn a_handoff_is_the_assignment_and_the_note_in_one_transaction() {
    let mut store = Store::open_in_memory().unwrap();
    let c = put(&mut store, "<1@x>", "ann@x.org", "", T0);
    store.assign(c, Some("bob"), "bob", T0).unwrap();
    let before = store.last_event_id().unwrap();
    store
        .assign_checked(
            c,
            Some("carol"),
            OwnerCheck::Ask,
            Some("she wants the refund by Friday"),
            "bob",
            T0 + MIN,
        )
        .unwrap();
    let after: Vec<_> = store.events_since(before, 10).unwrap();
    let k: Vec<&str> = after.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(k, ["assigned", "note"]);
    assert!(after.iter().all(|e| e.actor == "bob" && e.at == T0 + MIN));
    let contact = store.conversation(c).unwrap().contact_id;
    let notes: Vec<_> = store
        .timeline(contact, None, 10)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Note)
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "she wants the refund by Friday");
    assert_eq!(notes[0].author, "bob");
    // Refused (someone else's): neither the assignment nor the note is written.
    let before = store.last_event_id().unwrap();
    assert_eq!(
        store
            .assign_checked(
                c,
                Some("dana"),
                OwnerCheck::Ask,
                Some("x"),
                "dana",
                T0 + 2 * MIN
            )
            .unwrap(),
        Some("carol".to_string())
    );
    assert!(store.events_since(before, 10).unwrap().is_empty());
    // An empty note is an error, and nothing is written.
    assert!(
        store
            .assign_checked(c, Some("bob"), OwnerCheck::Any, Some("  "), "bob", T0)
            .unwrap_err()
            .to_string()
            .contains("empty note")
    );
    assert!(store.events_since(before, 10).unwrap().is_empty());
}

#[test]
fn a_teams_view_lists_its_open_conversations() {
    let mut store = Store::open_in_memory().unwrap();
    let b1 = put(&mut store, "<1@x>", "ann@x.org", "billing", T0);
    let _other = put(&mut store, "<2@x>", "tom@x.org", "", T0 + MIN);
    let b2 = put(&mut store, "<3@x>", "eve@x.org", "billing", T0 + 2 * MIN);
    let f = QueueFilter::parse("team billing", "me").unwrap();
    assert_eq!(f, QueueFilter::Team("billing".into()));
    assert_eq!(f.label(), "team billing");
    assert_eq!(QueueFilter::parse("team:billing", "me").unwrap(), f);
    assert!(
        QueueFilter::parse("team", "me")
            .unwrap_err()
            .contains("which team")
    );
    assert_eq!(store.queue_count(&f).unwrap(), 2);
    let rows = store.queue_page(&f, QueueAnchor::Top, 10).unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b2, b1]);
    store
        .set_status(b2, Status::Resolved, None, "bob", T0 + 3 * MIN)
        .unwrap();
    assert_eq!(store.queue_count(&f).unwrap(), 1);
}
