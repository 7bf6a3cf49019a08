//! `u` (undo) and bulk verbs in one transaction: restore exactly what was there, walk back
//! change by change, refuse (and skip) a change someone overtook, undo a bulk change at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::actions::{Verb, apply_bulk};
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::*;

const T0: Millis = 1_767_225_600_000;
const MIN: Millis = 60_000;

fn put(store: &mut Store, who: &str, at: Millis) -> ConversationId {
    let m = Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: format!("<{who}-{at}@x>"),
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
    let out = ingest_in(&tx, &m, &Settings::default(), at).unwrap();
    tx.commit().unwrap();
    match out {
        Ingested::Stored { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    }
}

fn resolved_at(s: &Store, c: ConversationId) -> Option<Millis> {
    s.conn()
        .query_row(
            "SELECT resolved_at FROM conversations WHERE id = ?1",
            [c],
            |r| r.get(0),
        )
        .unwrap()
}

fn undone_events(store: &Store, c: ConversationId) -> Vec<serde_json::Value> {
    store
        .conversation_events(c, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "undone")
        .map(|e| serde_json::from_str(e.data.as_deref().unwrap()).unwrap())
        .collect()
}

#[test]
fn undo_walks_back_through_your_changes_one_at_a_time() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.set_priority(c, Priority::High, "bob", T0 + MIN).unwrap();
    s.set_status(c, Status::Pending, None, "bob", T0 + 2 * MIN)
        .unwrap();
    s.set_status(c, Status::Resolved, None, "bob", T0 + 3 * MIN)
        .unwrap();

    let r = s.undo_last("bob", T0 + 4 * MIN).unwrap();
    assert_eq!(r.restored, vec![format!("#{c} status back to pending")]);
    let row = s.conversation(c).unwrap();
    assert_eq!(row.status, Status::Pending);
    assert_eq!(resolved_at(&s, c), None);

    s.undo_last("bob", T0 + 5 * MIN).unwrap();
    assert_eq!(s.conversation(c).unwrap().status, Status::Open);
    let r = s.undo_last("bob", T0 + 6 * MIN).unwrap();
    assert_eq!(r.restored, vec![format!("#{c} priority back to normal")]);
    assert_eq!(s.conversation(c).unwrap().priority, Priority::Normal);
    // Nothing left: an empty report, nothing changes.
    let r = s.undo_last("bob", T0 + 7 * MIN).unwrap();
    assert!(r.is_empty(), "{r:?}");
    assert!(r.line().starts_with("nothing to undo"));
    // Each undo is audited, naming what it undid and what it restored.
    let undone = undone_events(&s, c);
    assert_eq!(undone.len(), 3);
    assert_eq!(undone[0]["field"], "priority");
    assert_eq!(undone[0]["restored"], "normal");
    assert_eq!(undone[0]["was"], "high");
    // The audit log says it in words.
    let row = s
        .conversation_events(c, 100)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "undone")
        .unwrap();
    assert!(
        crate::store::audit::describe(&row).contains("priority back to normal"),
        "{}",
        crate::store::audit::describe(&row)
    );
}

#[test]
fn undo_is_per_agent() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.set_priority(c, Priority::High, "bob", T0 + MIN).unwrap();
    // carol never changed anything: nothing of bob's is hers to undo.
    assert!(s.undo_last("carol", T0 + 2 * MIN).unwrap().is_empty());
    assert_eq!(s.conversation(c).unwrap().priority, Priority::High);
}

#[test]
fn a_snooze_undone_comes_back_with_its_time_and_a_resolve_undone_with_its_time() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    let until = T0 + 60 * MIN;
    s.set_status(c, Status::Snoozed, Some(until), "bob", T0 + MIN)
        .unwrap();
    s.set_status(c, Status::Resolved, None, "bob", T0 + 2 * MIN)
        .unwrap();
    s.set_status(c, Status::Open, None, "bob", T0 + 3 * MIN)
        .unwrap();
    // Undo the reopen: resolved again, with the time it was resolved.
    s.undo_last("bob", T0 + 4 * MIN).unwrap();
    let row = s.conversation(c).unwrap();
    assert_eq!(row.status, Status::Resolved);
    assert_eq!(resolved_at(&s, c), Some(T0 + 2 * MIN));
    // Undo the resolve: snoozed again, until the same time.
    s.undo_last("bob", T0 + 5 * MIN).unwrap();
    let row = s.conversation(c).unwrap();
    assert_eq!(row.status, Status::Snoozed);
    assert_eq!(row.snoozed_until, Some(until));
    assert_eq!(resolved_at(&s, c), None);
    // Undo the snooze: open, no snooze time left behind.
    s.undo_last("bob", T0 + 6 * MIN).unwrap();
    let row = s.conversation(c).unwrap();
    assert_eq!(row.status, Status::Open);
    assert_eq!(row.snoozed_until, None);
}

#[test]
fn tags_assignee_and_team_are_restored() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.tag(c, "refund", false, "bob", T0 + MIN).unwrap();
    s.tag(c, "old", false, "bob", T0 + 2 * MIN).unwrap();
    s.tag(c, "old", true, "bob", T0 + 3 * MIN).unwrap();
    s.assign(c, Some("carol"), "bob", T0 + 4 * MIN).unwrap();
    s.set_conversation_team(c, Some("billing"), "bob", T0 + 5 * MIN)
        .unwrap();

    s.undo_last("bob", T0 + 6 * MIN).unwrap();
    assert_eq!(s.conversation(c).unwrap().team, None);
    s.undo_last("bob", T0 + 7 * MIN).unwrap();
    assert_eq!(s.conversation(c).unwrap().assignee, None);
    // The removal undone: the tag is back.
    let r = s.undo_last("bob", T0 + 8 * MIN).unwrap();
    assert_eq!(r.restored, vec![format!("#{c} tag old added again")]);
    assert_eq!(s.conversation_tags(c).unwrap(), vec!["old", "refund"]);
    s.undo_last("bob", T0 + 9 * MIN).unwrap();
    s.undo_last("bob", T0 + 10 * MIN).unwrap();
    assert!(s.conversation_tags(c).unwrap().is_empty());
}

#[test]
fn an_overtaken_change_is_refused_not_clobbered_and_the_next_undo_walks_past_it() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.set_priority(c, Priority::Low, "bob", T0 + MIN).unwrap();
    s.set_status(c, Status::Pending, None, "bob", T0 + 2 * MIN)
        .unwrap();
    // carol resolves it after bob's change.
    s.set_status(c, Status::Resolved, None, "carol", T0 + 3 * MIN)
        .unwrap();

    let r = s.undo_last("bob", T0 + 4 * MIN).unwrap();
    assert!(r.restored.is_empty());
    assert_eq!(r.refused.len(), 1);
    assert!(r.refused[0].reason.contains("carol"), "{r:?}");
    assert!(r.line().contains("not undone"), "{}", r.line());
    // carol's change stands.
    assert_eq!(s.conversation(c).unwrap().status, Status::Resolved);
    // The refusal is audited, naming the change.
    let refused: Vec<_> = s
        .conversation_events(c, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(refused[0].data.as_deref().unwrap().contains("\"undo\""));
    // u again goes past it, to bob's change before.
    let r = s.undo_last("bob", T0 + 5 * MIN).unwrap();
    assert_eq!(r.restored, vec![format!("#{c} priority back to normal")]);
}

#[test]
fn a_tag_someone_removed_since_is_not_undone() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.tag(c, "vip-lead", false, "bob", T0 + MIN).unwrap();
    s.tag(c, "vip-lead", true, "carol", T0 + 2 * MIN).unwrap();
    s.tag(c, "vip-lead", false, "dave", T0 + 3 * MIN).unwrap();
    // The tag is on, as bob's change left it, but dave put it there after carol took it
    // off: bob's undo would remove dave's tag. Refused.
    let r = s.undo_last("bob", T0 + 4 * MIN).unwrap();
    assert_eq!(r.refused.len(), 1, "{r:?}");
    assert!(r.refused[0].reason.contains("dave"), "{r:?}");
    assert_eq!(s.conversation_tags(c).unwrap(), vec!["vip-lead"]);
    // carol removed a tag; bob adds it; carol's undo (tag back off? no: back on) is refused
    // because the tag is on now, not off as her change left it.
    let c2 = put(&mut s, "bea@x.org", T0);
    s.tag(c2, "x", false, "eve", T0 + MIN).unwrap();
    s.tag(c2, "x", true, "carol", T0 + 5 * MIN).unwrap();
    s.tag(c2, "x", false, "bob", T0 + 6 * MIN).unwrap();
    let r = s.undo_last("carol", T0 + 7 * MIN).unwrap();
    assert_eq!(r.refused.len(), 1, "{r:?}");
    assert!(r.refused[0].reason.contains("bob"), "{r:?}");
}

#[test]
fn a_bulk_change_is_one_transaction_and_one_undo() {
    let mut s = Store::open_in_memory().unwrap();
    let a = put(&mut s, "ann@x.org", T0);
    let b = put(&mut s, "bea@x.org", T0);
    let c = put(&mut s, "cid@x.org", T0);
    let missing = ConversationId(9_999);
    let report = apply_bulk(
        &mut s,
        &[a, b, missing, c],
        Verb::Priority(Priority::Urgent),
        "bob",
        T0 + MIN,
    )
    .unwrap();
    assert_eq!(report.done, vec![a, b, c]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, missing);
    assert!(report.line().contains("3 of 4"), "{}", report.line());
    for id in [a, b, c] {
        assert_eq!(s.conversation(id).unwrap().priority, Priority::Urgent);
    }
    // One u undoes the three.
    let r = s.undo_last("bob", T0 + 2 * MIN).unwrap();
    assert_eq!(r.restored.len(), 3, "{r:?}");
    for id in [a, b, c] {
        assert_eq!(s.conversation(id).unwrap().priority, Priority::Normal);
    }
}

#[test]
fn a_bulk_verb_that_fails_on_one_conversation_keeps_the_others() {
    let mut s = Store::open_in_memory().unwrap();
    let a = put(&mut s, "ann@x.org", T0);
    s.set_status(a, Status::Resolved, None, "bob", T0 + MIN)
        .unwrap();
    // ann writes again: a new active conversation; reopening the old one is refused.
    let a2 = put(&mut s, "ann@x.org", T0 + 8 * 24 * 60 * MIN);
    assert_ne!(a, a2);
    let b = put(&mut s, "bea@x.org", T0);
    s.set_status(b, Status::Resolved, None, "bob", T0 + MIN)
        .unwrap();
    let report = apply_bulk(
        &mut s,
        &[a, b],
        Verb::Status(Status::Open, None),
        "bob",
        T0 + 3 * MIN,
    )
    .unwrap();
    assert_eq!(report.done, vec![b]);
    assert_eq!(report.refused[0].0, a);
    assert!(report.refused[0].1.contains("active conversation"));
    assert_eq!(s.conversation(a).unwrap().status, Status::Resolved);
    assert_eq!(s.conversation(b).unwrap().status, Status::Open);
    // The store is usable afterwards (the batch's transaction is closed).
    s.set_priority(b, Priority::High, "bob", T0 + 4 * MIN)
        .unwrap();
}

#[test]
fn a_bulk_assignment_leaves_someone_elses_conversations_alone() {
    let mut s = Store::open_in_memory().unwrap();
    let a = put(&mut s, "ann@x.org", T0);
    let b = put(&mut s, "bea@x.org", T0);
    s.assign(b, Some("carol"), "carol", T0).unwrap();
    let report = apply_bulk(
        &mut s,
        &[a, b],
        Verb::Assign(Some("bob".into())),
        "bob",
        T0 + MIN,
    )
    .unwrap();
    assert_eq!(report.done, vec![a]);
    assert!(report.refused[0].1.contains("carol"), "{report:?}");
    assert_eq!(
        s.conversation(b).unwrap().assignee.as_deref(),
        Some("carol")
    );
}

#[test]
fn undoing_out_of_scope_is_refused() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.set_conversation_team(c, Some("billing"), "admin", T0)
        .unwrap();
    s.set_priority(c, Priority::High, "bob", T0 + MIN).unwrap();
    s.set_scope(Scope::teams("bob", ["sales"])).unwrap();
    let r = s.undo_last("bob", T0 + 2 * MIN).unwrap();
    assert_eq!(r.refused.len(), 1, "{r:?}");
    assert!(r.refused[0].reason.contains("teams"));
}

#[test]
fn another_agents_undo_stops_a_reply_written_before_it() {
    let mut s = Store::open_in_memory().unwrap();
    let c = put(&mut s, "ann@x.org", T0);
    s.set_priority(c, Priority::Urgent, "bob", T0 + MIN)
        .unwrap();
    let seen = s.last_event_id().unwrap();
    s.undo_last("bob", T0 + 2 * MIN).unwrap();
    match s.queue_reply_guarded(
        c,
        Channel::Email,
        "carol",
        "on it",
        T0 + 3 * MIN,
        Some(seen),
    ) {
        Err(StoreError::Stale(changes)) => {
            assert_eq!(changes.len(), 1);
            assert_eq!(
                changes[0].what,
                "bob undid a change: priority back to normal"
            );
        }
        other => panic!("{other:?}"),
    }
}
