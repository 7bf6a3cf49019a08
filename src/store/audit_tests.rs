//! The audit log: append-only in the store itself (v9's triggers), pages both ways, jumps to an
//! event, a date or a fraction without scanning, filters, and each scope's share of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::audit::describe;
use super::*;
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::*;

/// 2026-01-01T00:00:00Z
const T0: Millis = 1_767_225_600_000;
const MIN: Millis = 60_000;

fn email(ext: &str, who: &str, account: &str, at: Millis) -> Inbound {
    Inbound {
        channel: Channel::Email,
        account: account.into(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, who),
        linked: Vec::new(),
        customer_name: Some(format!("Customer {who}")),
        author: None,
        subject: Some("Refund".into()),
        body: "where is my refund".into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn put(store: &mut Store, m: &Inbound) -> (ConversationId, ContactId) {
    let mut settings = Settings::default();
    settings
        .teams
        .insert((Channel::Email, "billing".into()), "billing".into());
    settings
        .teams
        .insert((Channel::Email, "deals".into()), "sales".into());
    let tx = store.write().unwrap();
    let out = ingest_in(&tx, m, &settings, m.sent_at).unwrap();
    tx.commit().unwrap();
    match out {
        Ingested::Stored {
            conversation,
            contact,
            ..
        } => (conversation, contact),
        other => panic!("{other:?}"),
    }
}

/// `n` plain events, one a minute from T0, actors cycling ann, bob, carol; every tenth a
/// refusal.
fn many(store: &Store, n: i64) {
    store
        .conn()
        .execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1)
             INSERT INTO events(at, actor, kind, data)
             SELECT ?2 + i * 60000,
                    CASE i % 3 WHEN 0 THEN 'ann' WHEN 1 THEN 'bob' ELSE 'carol' END,
                    CASE WHEN i % 10 = 0 THEN 'refused' ELSE 'imported' END,
                    '{\"n\":' || i || '}'
             FROM k",
            (n, T0),
        )
        .unwrap();
}

fn ids(page: &AuditPage) -> Vec<i64> {
    page.rows.iter().map(|r| r.id.0).collect()
}

#[test]
fn no_event_can_be_deleted_or_rewritten() {
    let mut store = Store::open_in_memory().unwrap();
    let (conv, _) = put(&mut store, &email("<1@x>", "ann@x.org", "", T0));
    store.assign(conv, Some("bob"), "ann", T0 + MIN).unwrap();
    let c = store.conn();
    let err = c.execute("DELETE FROM events", []).unwrap_err().to_string();
    assert!(err.contains("append-only audit log"), "{err}");
    assert!(err.contains("cannot be deleted"), "{err}");
    for set in [
        "actor = 'mallory'",
        "kind = 'note'",
        "at = 0",
        "data = NULL",
        "id = id + 1000",
        "contact_id = NULL",
        "message_id = 1",
    ] {
        let err = c
            .execute(&format!("UPDATE events SET {set}"), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be changed"), "{set}: {err}");
    }
    // An event's conversation follows a fold, never into nothing.
    let err = c
        .execute("UPDATE events SET conversation_id = 999", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("folded into another"), "{err}");
    let err = c
        .execute("UPDATE events SET conversation_id = NULL", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("folded into another"), "{err}");
    let n: i64 = c
        .query_row("SELECT count(*) FROM events WHERE actor = 'ann'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    // A failed statement inside a write rolls the whole write back.
    let tx = store.write().unwrap();
    assert!(tx.conn().execute("DELETE FROM events", []).is_err());
    drop(tx);
    assert!(store.last_event_id().unwrap().0 >= 2);
}

#[test]
fn merging_two_contacts_still_moves_their_events() {
    let mut store = Store::open_in_memory().unwrap();
    let (a, ca) = put(&mut store, &email("<1@x>", "ann@x.org", "", T0));
    let (b, _) = put(&mut store, &email("<2@x>", "ann.lee@y.org", "", T0 + MIN));
    store.tag(b, "folded", false, "bob", T0 + 2 * MIN).unwrap();
    // Adding b's address to a's contact merges the two; b's conversation folds into a's.
    store
        .add_identity(
            ca,
            IdentityKind::Email,
            "ann.lee@y.org",
            "bob",
            T0 + 3 * MIN,
        )
        .unwrap();
    let events = store.conversation_events(a, 100).unwrap();
    assert!(
        events.iter().any(|e| e.kind == "tag_added"),
        "the folded conversation's events moved: {events:?}"
    );
    assert_ne!(a, b);
    assert!(
        store
            .conversation_events(b, 100)
            .unwrap_or_default()
            .is_empty()
    );
}

#[test]
fn pages_walk_both_ways_newest_first() {
    let store = Store::open_in_memory().unwrap();
    many(&store, 25);
    let all = AuditFilter::default();
    let top = store.audit_page(&all, AuditPosition::Newest, 10).unwrap();
    assert_eq!(ids(&top), (16..=25).rev().collect::<Vec<_>>());
    assert!(top.older && !top.newer);
    let down = store
        .audit_page(&all, AuditPosition::Before(EventId(16)), 10)
        .unwrap();
    assert_eq!(ids(&down), (6..=15).rev().collect::<Vec<_>>());
    assert!(down.older && down.newer);
    let last = store
        .audit_page(&all, AuditPosition::Before(EventId(6)), 10)
        .unwrap();
    assert_eq!(ids(&last), vec![5, 4, 3, 2, 1]);
    assert!(!last.older && last.newer);
    // Back up: the page above 5 is 6..15, still newest first.
    let up = store
        .audit_page(&all, AuditPosition::After(EventId(5)), 10)
        .unwrap();
    assert_eq!(ids(&up), (6..=15).rev().collect::<Vec<_>>());
    assert!(up.older && up.newer);
    // Cursors at the ends of the id range are empty pages, not an overflow.
    for at in [
        AuditPosition::Before(EventId(i64::MIN)),
        AuditPosition::After(EventId(i64::MAX)),
    ] {
        assert!(store.audit_page(&all, at, 10).unwrap().rows.is_empty());
    }
    let up = store
        .audit_page(&all, AuditPosition::After(EventId(20)), 10)
        .unwrap();
    assert_eq!(ids(&up), (21..=25).rev().collect::<Vec<_>>());
    assert!(up.older && !up.newer);
}

#[test]
fn filters_narrow_the_walk() {
    let store = Store::open_in_memory().unwrap();
    many(&store, 60);
    let bob = AuditFilter {
        agent: Some("bob".into()),
        ..Default::default()
    };
    let p = store.audit_page(&bob, AuditPosition::Newest, 5).unwrap();
    assert_eq!(ids(&p), vec![58, 55, 52, 49, 46]);
    assert!(p.rows.iter().all(|r| r.actor == "bob"));
    let p = store
        .audit_page(&bob, AuditPosition::Before(EventId(46)), 5)
        .unwrap();
    assert_eq!(ids(&p), vec![43, 40, 37, 34, 31]);
    let refused = AuditFilter {
        kinds: vec!["refused".into()],
        ..Default::default()
    };
    let p = store
        .audit_page(&refused, AuditPosition::Newest, 100)
        .unwrap();
    assert_eq!(ids(&p), vec![60, 50, 40, 30, 20, 10]);
    assert!(!p.older && !p.newer);
    // Since inclusive, until exclusive (event i is at T0 + i minutes).
    let window = AuditFilter {
        since: Some(T0 + 10 * MIN),
        until: Some(T0 + 13 * MIN),
        ..Default::default()
    };
    let p = store
        .audit_page(&window, AuditPosition::Newest, 100)
        .unwrap();
    assert_eq!(ids(&p), vec![12, 11, 10]);
    let bad = AuditFilter {
        kinds: vec!["deleted".into()],
        ..Default::default()
    };
    let err = store
        .audit_page(&bad, AuditPosition::Newest, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown event kind 'deleted'"), "{err}");
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn jumps_land_on_an_event_a_date_or_a_fraction() {
    let store = Store::open_in_memory().unwrap();
    many(&store, 100_001);
    let all = AuditFilter::default();
    let p = store
        .audit_page(&all, AuditPosition::Fraction(0.5), 3)
        .unwrap();
    assert_eq!(ids(&p), vec![50_001, 50_000, 49_999]);
    assert!(p.older && p.newer);
    let p = store
        .audit_page(&all, AuditPosition::Event(EventId(77)), 3)
        .unwrap();
    assert_eq!(ids(&p), vec![77, 76, 75]);
    // Event i is at T0 + i minutes: the newest at or before a time comes first.
    let p = store
        .audit_page(&all, AuditPosition::Time(T0 + 1000 * MIN + 30_000), 3)
        .unwrap();
    assert_eq!(ids(&p), vec![1000, 999, 998]);
    // The oldest end: the jump starts at the oldest event; the page above it is
    // `After(0)`.
    let p = store
        .audit_page(&all, AuditPosition::Fraction(0.0), 3)
        .unwrap();
    assert_eq!(ids(&p), vec![1]);
    assert!(!p.older && p.newer);
    let p = store.audit_page(&all, AuditPosition::Time(0), 3).unwrap();
    assert_eq!(ids(&p), vec![1]);
    let p = store
        .audit_page(&all, AuditPosition::After(EventId(0)), 3)
        .unwrap();
    assert_eq!(ids(&p), vec![3, 2, 1]);
    assert!(!p.older && p.newer);
    let p = store
        .audit_page(&all, AuditPosition::Fraction(1.0), 3)
        .unwrap();
    assert_eq!(ids(&p), vec![100_001, 100_000, 99_999]);
    // A jump with a filter: the agent's events from there down.
    let bob = AuditFilter {
        agent: Some("bob".into()),
        ..Default::default()
    };
    let p = store
        .audit_page(&bob, AuditPosition::Fraction(0.5), 2)
        .unwrap();
    assert_eq!(ids(&p), vec![49_999, 49_996]);
}

/// Every page is an index walk in the page's order (the rowid, `events_actor`,
/// `events_conversation`): never a scan of the table, never a sort of its rows.
#[test]
fn every_page_is_an_index_walk() {
    let store = Store::open_in_memory().unwrap();
    let filters = [
        AuditFilter::default(),
        AuditFilter {
            agent: Some("bob".into()),
            ..Default::default()
        },
        AuditFilter {
            conversation: Some(ConversationId(3)),
            ..Default::default()
        },
        AuditFilter {
            since: Some(T0),
            until: Some(T0 + MIN),
            kinds: vec!["refused".into(), "assigned".into()],
            ..Default::default()
        },
        AuditFilter {
            agent: Some("bob".into()),
            since: Some(T0),
            ..Default::default()
        },
    ];
    for f in &filters {
        for down in [true, false] {
            let plan = store.audit_plan(f, down);
            let text = plan.join(" | ");
            assert!(
                plan.iter().any(|l| l.starts_with("SEARCH events")),
                "{f:?}: {text}"
            );
            assert!(!text.contains("TEMP B-TREE"), "{f:?}: {text}");
            assert!(!text.contains("SCAN events"), "{f:?}: {text}");
        }
    }
    // The jump to a fraction reads the log's two ends, not the log.
    let bounds = store.audit_bounds_plan();
    assert!(!bounds.contains("SCAN events"), "{bounds}");
}

#[test]
fn a_scoped_agent_sees_their_teams_and_their_own_refusals() {
    let mut store = Store::open_in_memory().unwrap();
    let (billing, _) = put(&mut store, &email("<1@x>", "ann@x.org", "billing", T0));
    let (sales, _) = put(&mut store, &email("<2@x>", "tom@x.org", "deals", T0));
    store
        .tag(billing, "refund", false, "eve", T0 + MIN)
        .unwrap();
    store.tag(sales, "deal", false, "zed", T0 + MIN).unwrap();
    store
        .audit_refused("eve", Some(sales), "note", "not your team", T0 + 2 * MIN)
        .unwrap();
    store
        .audit_refused(
            "zed",
            Some(billing),
            "vip",
            "needs supervisor",
            T0 + 2 * MIN,
        )
        .unwrap();
    let all = AuditFilter::default();
    let everything = store.audit_page(&all, AuditPosition::Newest, 100).unwrap();
    assert_eq!(
        everything
            .rows
            .iter()
            .filter(|r| r.kind == "refused")
            .count(),
        2
    );
    store.set_scope(Scope::teams("eve", ["billing"])).unwrap();
    let mine = store.audit_page(&all, AuditPosition::Newest, 100).unwrap();
    let seen: Vec<(String, String, Option<ConversationId>)> = mine
        .rows
        .iter()
        .map(|r| (r.actor.clone(), r.kind.clone(), r.conversation_id))
        .collect();
    assert!(
        seen.iter()
            .any(|(a, k, c)| a == "eve" && k == "refused" && *c == Some(sales)),
        "her own refusal, even on a conversation she cannot see: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(a, _, _)| a == "zed"),
        "nothing of zed's (his refusal is his, his tag is sales'): {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, k, c)| k == "tag_added" && *c == Some(billing))
    );
    assert!(
        !seen
            .iter()
            .any(|(_, k, c)| k != "refused" && *c == Some(sales)),
        "{seen:?}"
    );
    // Asking by agent or conversation does not widen the scope.
    let zed = AuditFilter {
        agent: Some("zed".into()),
        ..Default::default()
    };
    assert!(
        store
            .audit_page(&zed, AuditPosition::Newest, 100)
            .unwrap()
            .rows
            .is_empty()
    );
}

#[test]
fn rows_read_as_sentences() {
    let mut store = Store::open_in_memory().unwrap();
    let (conv, _) = put(&mut store, &email("<1@x>", "ann@x.org", "", T0));
    store.assign(conv, Some("bob"), "ann", T0 + MIN).unwrap();
    store
        .assign(conv, Some("carol"), "bob", T0 + 2 * MIN)
        .unwrap();
    store
        .tag(conv, "vip\u{1b}[31mred", false, "bob", T0 + 3 * MIN)
        .ok();
    store
        .set_conversation_team(conv, Some("billing"), "carol", T0 + 4 * MIN)
        .unwrap();
    store
        .audit_refused(
            "dana",
            Some(conv),
            "assign",
            "needs the agent role\u{1b}]0;pwned\u{7}",
            T0 + 5 * MIN,
        )
        .unwrap();
    let page = store
        .audit_page(&AuditFilter::default(), AuditPosition::Newest, 100)
        .unwrap();
    let lines: Vec<String> = page.rows.iter().map(describe).collect();
    assert!(lines.contains(&"assigned to bob".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"assigned to carol (was bob)".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"moved to team billing".to_string()),
        "{lines:?}"
    );
    let refused = lines.iter().find(|l| l.starts_with("REFUSED")).unwrap();
    assert!(refused.starts_with("REFUSED assign: needs the agent role"));
    assert!(
        !refused.contains('\u{1b}') && !refused.contains('\u{7}'),
        "{refused:?}"
    );
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "{lines:?}");
}
