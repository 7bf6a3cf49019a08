//! Teams and scopes: an agent of one team cannot list, count, search, open, read or write
//! another team's conversations; unteamed and assigned-to-self ones stay visible; `Scope::all`
//! sees everything. Real SQLite (in memory, and a file for the migration).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::*;

/// 2026-01-01T00:00:00Z
const T0: Millis = 1_767_225_600_000;
const MIN: Millis = 60_000;

fn msg(channel: Channel, account: &str, ext: &str, who: &str, body: &str, at: Millis) -> Inbound {
    let kind = channel.identity_kind();
    Inbound {
        channel,
        account: account.into(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: Vec::new(),
        customer_name: Some(format!("Customer {who}")),
        author: None,
        subject: (channel == Channel::Email).then(|| "Refund question".to_string()),
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

/// The mailbox "billing" belongs to the billing team, "deals" and the Telegram bot to sales;
/// the web chat to no team.
fn settings() -> Settings {
    let mut s = Settings::default();
    s.teams
        .insert((Channel::Email, "billing".into()), "billing".into());
    s.teams
        .insert((Channel::Email, "deals".into()), "sales".into());
    s.teams
        .insert((Channel::Telegram, String::new()), "sales".into());
    s
}

struct Stored {
    conversation: ConversationId,
    contact: ContactId,
    message: MessageId,
}

fn put(store: &mut Store, m: &Inbound) -> Stored {
    let tx = store.write().unwrap();
    let out = ingest_in(&tx, m, &settings(), m.sent_at + 1000).unwrap();
    tx.commit().unwrap();
    match out {
        Ingested::Stored {
            message,
            conversation,
            contact,
            ..
        } => Stored {
            conversation,
            contact,
            message,
        },
        other => panic!("not stored: {other:?}"),
    }
}

/// Four conversations, each with the word "refund":
/// billing (ann, email to "billing"), sales (tom, Telegram), none (web chat visitor), and a
/// sales one (zed, email to "deals") assigned to eve, an agent of billing.
struct Fixture {
    store: Store,
    billing: Stored,
    sales: Stored,
    unteamed: Stored,
    assigned: Stored,
}

fn fixture() -> Fixture {
    let mut store = Store::open_in_memory().unwrap();
    let billing = put(
        &mut store,
        &msg(
            Channel::Email,
            "billing",
            "<a@x>",
            "ann@x.org",
            "refund please",
            T0,
        ),
    );
    let sales = put(
        &mut store,
        &msg(
            Channel::Telegram,
            "",
            "t1",
            "4242",
            "refund for my deal",
            T0 + MIN,
        ),
    );
    let unteamed = put(
        &mut store,
        &msg(
            Channel::WebChat,
            "",
            "w1",
            "visitor-1",
            "refund from chat",
            T0 + 2 * MIN,
        ),
    );
    let assigned = put(
        &mut store,
        &msg(
            Channel::Email,
            "deals",
            "<z@x>",
            "zed@x.org",
            "refund the deal",
            T0 + 3 * MIN,
        ),
    );
    store
        .assign(assigned.conversation, Some("eve"), "boss", T0 + 4 * MIN)
        .unwrap();
    store
        .tag(sales.conversation, "hot", false, "boss", T0 + 4 * MIN)
        .unwrap();
    store
        .tag(billing.conversation, "hot", false, "boss", T0 + 4 * MIN)
        .unwrap();
    Fixture {
        store,
        billing,
        sales,
        unteamed,
        assigned,
    }
}

fn eve() -> Scope {
    Scope::teams("eve", ["billing"])
}

fn ids(rows: &[QueueRow]) -> Vec<ConversationId> {
    let mut v: Vec<_> = rows.iter().map(|r| r.id).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<ConversationId>) -> Vec<ConversationId> {
    v.sort();
    v.dedup();
    v
}

fn not_found_conversation(e: StoreError) {
    assert!(matches!(e, StoreError::NoConversation(_)), "{e:?}");
}

#[test]
fn scope_allows_its_teams_the_unteamed_and_its_own() {
    let s = eve();
    assert!(s.allows(Some("billing"), None));
    assert!(s.allows(None, None));
    assert!(s.allows(Some("sales"), Some("eve")));
    assert!(!s.allows(Some("sales"), None));
    assert!(!s.allows(Some("sales"), Some("bob")));
    assert!(Scope::all("eve").allows(Some("sales"), None));
    assert_eq!(Store::open_in_memory().unwrap().scope(), &Scope::all(""));
    // The server sends scopes as data.
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), s);
}

#[test]
fn ingest_sets_the_team_of_the_account_and_a_joining_message_keeps_it() {
    let mut f = fixture();
    let s = &f.store;
    assert_eq!(
        s.conversation(f.billing.conversation)
            .unwrap()
            .team
            .as_deref(),
        Some("billing")
    );
    assert_eq!(
        s.conversation(f.sales.conversation)
            .unwrap()
            .team
            .as_deref(),
        Some("sales")
    );
    assert_eq!(s.conversation(f.unteamed.conversation).unwrap().team, None);
    // Ann writes again, on Telegram (the sales bot): the open billing conversation stays billing.
    let mut m = msg(
        Channel::Telegram,
        "",
        "t9",
        "777",
        "me again",
        T0 + 10 * MIN,
    );
    m.linked = vec![Claim::new(IdentityKind::Email, "ann@x.org")];
    let again = put(&mut f.store, &m);
    assert_eq!(again.conversation, f.billing.conversation);
    assert_eq!(
        f.store
            .conversation(f.billing.conversation)
            .unwrap()
            .team
            .as_deref(),
        Some("billing")
    );
}

#[test]
fn an_agent_lists_and_counts_only_what_the_scope_sees() {
    let mut f = fixture();
    let all = f
        .store
        .queue_page(&QueueFilter::All, QueueAnchor::Top, 50)
        .unwrap();
    assert_eq!(all.len(), 4);
    f.store.set_scope(eve()).unwrap();
    let visible = sorted(vec![
        f.billing.conversation,
        f.unteamed.conversation,
        f.assigned.conversation,
    ]);
    for anchor in [
        QueueAnchor::Top,
        QueueAnchor::Bottom,
        QueueAnchor::Offset(0),
    ] {
        let rows = f.store.queue_page(&QueueFilter::All, anchor, 50).unwrap();
        assert_eq!(ids(&rows), visible, "{anchor:?}");
    }
    let open = QueueFilter::Status(Status::Open);
    assert_eq!(
        ids(&f.store.queue_page(&open, QueueAnchor::Top, 50).unwrap()),
        visible
    );
    assert_eq!(f.store.queue_count(&QueueFilter::All).unwrap(), 3);
    let counts = f.store.counts("eve").unwrap();
    assert_eq!((counts.open, counts.unassigned, counts.mine), (3, 2, 1));
    // Keyset paging walks the scoped rows only.
    let first = f
        .store
        .queue_page(&QueueFilter::All, QueueAnchor::Top, 1)
        .unwrap();
    let next = f
        .store
        .queue_page(&QueueFilter::All, QueueAnchor::After(first[0].cursor()), 50)
        .unwrap();
    assert_eq!(next.len(), 2);
    assert!(!next.iter().any(|r| r.id == f.sales.conversation));
    // Back to everything.
    f.store.set_scope(Scope::all("eve")).unwrap();
    assert_eq!(f.store.queue_count(&QueueFilter::All).unwrap(), 4);
}

#[test]
fn an_agent_cannot_open_or_read_another_teams_conversation() {
    let mut f = fixture();
    f.store.set_scope(eve()).unwrap();
    let s = &f.store;
    let sales = f.sales.conversation;
    not_found_conversation(s.conversation(sales).unwrap_err());
    // The same error as an id that does not exist: nothing to probe.
    assert_eq!(
        s.conversation(sales).unwrap_err().to_string(),
        format!("no conversation #{}", sales.0)
    );
    not_found_conversation(s.conversation_tags(sales).unwrap_err());
    not_found_conversation(s.conversation_events(sales, 10).unwrap_err());
    not_found_conversation(s.draft(sales, "eve").unwrap_err());
    not_found_conversation(s.newest_attachment_message(sales).unwrap_err());
    not_found_conversation(s.reply_channel(sales).unwrap_err());
    not_found_conversation(s.last_failed(sales).unwrap_err());
    assert!(matches!(
        s.message(f.sales.message).unwrap_err(),
        StoreError::NoMessage(_)
    ));
    let tom = f.sales.contact;
    assert!(s.timeline(tom, None, 50).unwrap().is_empty());
    for e in [
        s.contact(tom).unwrap_err(),
        s.profile(tom).unwrap_err(),
        s.identities(tom).unwrap_err(),
        s.claims(tom).unwrap_err(),
        s.recipient(tom, Channel::Telegram).unwrap_err(),
    ] {
        assert!(matches!(e, StoreError::NoContact(_)), "{e:?}");
    }
    assert!(s.contact_conversations(tom, 10).unwrap().is_empty());
    assert_eq!(s.active_conversation(tom).unwrap(), None);
    assert_eq!(
        s.contact_by_identity(IdentityKind::Telegram, "4242")
            .unwrap(),
        None
    );
    let contacts: Vec<ContactId> = s
        .contacts_page(None, 50)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(contacts.len(), 3);
    assert!(!contacts.contains(&tom));
    // What the scope sees reads as before.
    assert_eq!(s.timeline(f.billing.contact, None, 50).unwrap().len(), 1);
    assert!(s.message(f.billing.message).is_ok());
    assert!(s.conversation(f.assigned.conversation).is_ok());
    assert!(s.profile(f.unteamed.contact).is_ok());
    assert_eq!(
        s.active_conversation(f.billing.contact).unwrap(),
        Some(f.billing.conversation)
    );
}

#[test]
fn a_contact_in_two_teams_shows_only_the_scopes_part() {
    let mut f = fixture();
    // Tom's sales conversation is resolved; he then writes to the billing mailbox: a new
    // billing conversation for the same contact.
    f.store
        .set_status(
            f.sales.conversation,
            Status::Resolved,
            None,
            "boss",
            T0 + 5 * MIN,
        )
        .unwrap();
    let mut m = msg(
        Channel::Email,
        "billing",
        "<t@x>",
        "tom@x.org",
        "invoice",
        T0 + 30 * 24 * 60 * MIN,
    );
    m.linked = vec![Claim::new(IdentityKind::Telegram, "4242")];
    let later = put(&mut f.store, &m);
    assert_eq!(later.contact, f.sales.contact);
    assert_ne!(later.conversation, f.sales.conversation);
    f.store.set_scope(eve()).unwrap();
    let tl = f.store.timeline(later.contact, None, 50).unwrap();
    assert_eq!(tl.len(), 1, "{tl:?}");
    assert_eq!(tl[0].conversation_id, later.conversation);
    let p = f.store.profile(later.contact).unwrap();
    assert_eq!((p.conversation_count, p.message_count), (1, 1));
    assert!(
        p.tags.is_empty(),
        "the sales conversation's tag leaked: {:?}",
        p.tags
    );
    assert_eq!(
        ids(&f.store.contact_conversations(later.contact, 10).unwrap()),
        vec![later.conversation]
    );
}

#[test]
fn an_agent_searches_only_what_the_scope_sees() {
    let mut f = fixture();
    let q = |t: &str| SearchQuery::parse(t).unwrap();
    let everything = f.store.search(&q("refund"), 50).unwrap();
    assert_eq!(everything.len(), 4);
    f.store.set_scope(eve()).unwrap();
    let visible = sorted(vec![
        f.billing.conversation,
        f.unteamed.conversation,
        f.assigned.conversation,
    ]);
    for text in [
        "refund",
        "refund*",
        "refund after:2025-01-01",
        "from:4242",
        "channel:telegram",
        "status:open",
        "refund status:open",
        "tag:hot",
        "refund tag:hot",
    ] {
        let hits = f.store.search(&q(text), 50).unwrap();
        assert!(
            !hits
                .iter()
                .any(|h| h.conversation_id == f.sales.conversation),
            "{text}: {hits:?}"
        );
    }
    let hits = f.store.search(&q("refund"), 50).unwrap();
    assert_eq!(
        sorted(hits.iter().map(|h| h.conversation_id).collect()),
        visible
    );
    // Tom's name matches, and his only conversation is out of scope: no contact hit.
    assert!(f.store.search(&q("Customer 4242"), 50).unwrap().is_empty());
    let hits = f.store.search_conversation_hits(&q("refund"), 50).unwrap();
    assert_eq!(
        sorted(hits.rows.iter().map(|(r, _)| r.id).collect()),
        visible
    );
    assert_eq!(
        ids(&f.store.search_conversations(&q("refund"), 50).unwrap()),
        visible
    );
    let (rows, total) = f.store.filtered_conversations(&q("tag:hot"), 50).unwrap();
    assert_eq!((ids(&rows), total), (vec![f.billing.conversation], 1));
    let (rows, total) = f
        .store
        .filtered_conversations(&q("status:open"), 50)
        .unwrap();
    assert_eq!((ids(&rows), total), (visible.clone(), 3));
}

#[test]
fn team_filter_in_search() {
    let mut f = fixture();
    let q = |t: &str| SearchQuery::parse(t).unwrap();
    assert_eq!(q("team:sales").team, Some(Some("sales".into())));
    assert_eq!(q("team:none").team, Some(None));
    assert_eq!(q("team:\"none\"").team, Some(Some("none".into())));
    assert!(
        SearchQuery::parse("team:")
            .unwrap_err()
            .contains("team:billing")
    );
    let convs = |s: &Store, text: &str| {
        sorted(
            s.search(&q(text), 50)
                .unwrap()
                .iter()
                .map(|h| h.conversation_id)
                .collect(),
        )
    };
    let s = &f.store;
    assert_eq!(
        convs(s, "team:sales"),
        sorted(vec![f.sales.conversation, f.assigned.conversation])
    );
    assert_eq!(
        convs(s, "refund team:billing"),
        vec![f.billing.conversation]
    );
    assert_eq!(convs(s, "team:none"), vec![f.unteamed.conversation]);
    let (rows, total) = s.filtered_conversations(&q("team:sales"), 50).unwrap();
    assert_eq!((rows.len(), total), (2, 2));
    // The filter narrows the scope, never widens it.
    f.store.set_scope(eve()).unwrap();
    assert_eq!(convs(&f.store, "team:sales"), vec![f.assigned.conversation]);
}

#[test]
fn writes_on_another_teams_conversation_fail_and_change_nothing() {
    let mut f = fixture();
    f.store.set_scope(eve()).unwrap();
    let before = f
        .store
        .conn()
        .query_row("SELECT max(id) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap();
    let c = f.sales.conversation;
    let tom = f.sales.contact;
    let s = &mut f.store;
    not_found_conversation(s.assign(c, Some("eve"), "eve", T0).unwrap_err());
    not_found_conversation(
        s.set_status(c, Status::Resolved, None, "eve", T0)
            .unwrap_err(),
    );
    not_found_conversation(s.set_priority(c, Priority::High, "eve", T0).unwrap_err());
    not_found_conversation(s.tag(c, "x", false, "eve", T0).unwrap_err());
    not_found_conversation(s.add_note(c, "eve", "a note", T0).unwrap_err());
    not_found_conversation(
        s.queue_reply(c, Channel::Telegram, "eve", "hi", T0)
            .unwrap_err(),
    );
    not_found_conversation(s.save_draft(c, "eve", "reply", None, "hi", T0).unwrap_err());
    not_found_conversation(
        s.set_conversation_team(c, Some("billing"), "eve", T0)
            .unwrap_err(),
    );
    assert!(matches!(
        s.set_vip(tom, true, "eve", T0).unwrap_err(),
        StoreError::NoContact(_)
    ));
    assert!(matches!(
        s.add_identity(tom, IdentityKind::Phone, "+4412345678", "eve", T0)
            .unwrap_err(),
        StoreError::NoContact(_)
    ));
    assert!(matches!(
        s.retry(f.sales.message, "eve", T0).unwrap_err(),
        StoreError::NoMessage(_)
    ));
    // Adding to a visible contact an identity that would merge in an invisible one: refused.
    let e = s
        .add_identity(f.billing.contact, IdentityKind::Telegram, "4242", "eve", T0)
        .unwrap_err();
    assert!(e.to_string().contains("outside your teams"), "{e}");
    let e = s
        .identity_merge_preview(f.billing.contact, IdentityKind::Telegram, "4242")
        .unwrap_err();
    assert!(e.to_string().contains("outside your teams"), "{e}");
    assert!(matches!(
        s.identity_merge_preview(tom, IdentityKind::Phone, "+4412345678")
            .unwrap_err(),
        StoreError::NoContact(_)
    ));
    let after = s
        .conn()
        .query_row("SELECT max(id) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(before, after, "a refused write wrote something");
    s.set_scope(Scope::all("boss")).unwrap();
    let row = s.conversation(c).unwrap();
    assert_eq!(
        (row.status, row.assignee, row.team.as_deref()),
        (Status::Open, None, Some("sales"))
    );
    // In scope, the same writes work.
    s.set_scope(eve()).unwrap();
    let b = f.billing.conversation;
    s.assign(b, Some("eve"), "eve", T0).unwrap();
    s.add_note(b, "eve", "checked", T0).unwrap();
    s.save_draft(b, "eve", "reply", None, "draft", T0).unwrap();
    assert!(s.draft(b, "eve").unwrap().is_some());
}

#[test]
fn a_conversation_assigned_to_the_agent_stays_visible_whatever_its_team() {
    let mut f = fixture();
    f.store.set_scope(eve()).unwrap();
    let a = f.assigned.conversation;
    assert_eq!(
        f.store.conversation(a).unwrap().team.as_deref(),
        Some("sales")
    );
    f.store.tag(a, "seen", false, "eve", T0).unwrap();
    // Eve hands it back: it is sales' again, and gone from her view.
    f.store.assign(a, None, "eve", T0).unwrap();
    not_found_conversation(f.store.conversation(a).unwrap_err());
}

#[test]
fn team_changes_and_refusals_are_audited() {
    let mut f = fixture();
    let c = f.unteamed.conversation;
    let last = f.store.last_event_id().unwrap();
    f.store
        .set_conversation_team(c, Some("sales"), "boss", T0)
        .unwrap();
    // The same team again changes nothing.
    f.store
        .set_conversation_team(c, Some("sales"), "boss", T0)
        .unwrap();
    assert!(
        f.store
            .set_conversation_team(c, Some("  "), "boss", T0)
            .is_err()
    );
    assert_eq!(
        f.store.conversation(c).unwrap().team.as_deref(),
        Some("sales")
    );
    f.store
        .audit_refused(
            "eve",
            Some(f.sales.conversation),
            "assign",
            "not in your teams",
            T0,
        )
        .unwrap();
    f.store
        .audit_refused("bob", None, "config", "admins only", T0)
        .unwrap();
    let events = f.store.events_since(last, 50).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["team_changed", "refused", "refused"]);
    assert_eq!(events[0].conversation_id, Some(c));
    let data: serde_json::Value = serde_json::from_str(events[0].data.as_deref().unwrap()).unwrap();
    assert_eq!(data, serde_json::json!({ "team": "sales", "from": null }));
    assert_eq!(events[1].actor, "eve");
    assert_eq!(events[1].contact_id, Some(f.sales.contact));
    let data: serde_json::Value = serde_json::from_str(events[1].data.as_deref().unwrap()).unwrap();
    assert_eq!(data["action"], "assign");
    // Now sales: eve sees neither it nor its events, nor bob's refusal; her own, yes.
    f.store.set_scope(eve()).unwrap();
    not_found_conversation(f.store.conversation(c).unwrap_err());
    let seen: Vec<_> = f
        .store
        .events_since(EventId(0), 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.conversation_id == Some(f.sales.conversation) || e.actor == "bob")
        .map(|e| (e.kind, e.actor))
        .collect();
    assert_eq!(seen, [("refused".to_string(), "eve".to_string())]);
    f.store
        .set_conversation_team(f.billing.conversation, None, "eve", T0)
        .unwrap();
    assert_eq!(
        f.store.conversation(f.billing.conversation).unwrap().team,
        None
    );
}

/// The scoped queue page walks the same index as the unscoped one (the scope is checked on
/// each row the index yields), and `Scope::all` runs the very statement it ran before.
#[test]
fn the_scoped_queue_page_keeps_its_index() {
    let mut f = fixture();
    let plan = |s: &Store, filter: &str| -> String {
        let scope = s.scope_and();
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT {} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE {filter}{scope} ORDER BY c.last_activity DESC, c.id DESC LIMIT 50",
            super::conversations::QUEUE_COLUMNS
        );
        let mut stmt = s.conn().prepare(&sql).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        rows.join("\n")
    };
    assert_eq!(f.store.scope_and(), "");
    let all_status = plan(&f.store, "c.status = 'open'");
    let all_any = plan(&f.store, "1=1");
    f.store.set_scope(eve()).unwrap();
    assert!(
        f.store
            .scope_and()
            .contains("c.team IN (SELECT team FROM temp.")
    );
    let scoped_status = plan(&f.store, "c.status = 'open'");
    let scoped_any = plan(&f.store, "1=1");
    for (p, index) in [
        (&all_status, "conversations_status"),
        (&scoped_status, "conversations_status"),
        (&all_any, "conversations_activity"),
        (&scoped_any, "conversations_activity"),
    ] {
        assert!(
            p.contains(&format!("SCAN c USING INDEX {index}"))
                || p.contains(&format!("SEARCH c USING INDEX {index}")),
            "{p}"
        );
        assert!(!p.contains("TEMP B-TREE FOR ORDER BY"), "{p}");
    }
    // A conversation filter alone walks its index in order, the scope checked on each row.
    let q = |t: &str| SearchQuery::parse(t).unwrap();
    let p = f.store.search_plan(&q("status:open")).unwrap().join("\n");
    assert!(p.contains("USING INDEX conversations_status"), "{p}");
    assert!(!p.contains("TEMP B-TREE FOR ORDER BY"), "{p}");
    let p = f.store.search_plan(&q("team:sales")).unwrap().join("\n");
    assert!(p.contains("USING INDEX conversations_team"), "{p}");
}

#[test]
fn a_v6_file_is_upgraded_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.sqlite3");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.create_scalar_function("braid_sender_index", 1, Default::default(), |ctx| {
            ctx.get::<String>(0)
        })
        .unwrap();
        for m in &schema::MIGRATIONS[..6] {
            c.execute_batch(m).unwrap();
        }
        c.pragma_update(None, "user_version", 6).unwrap();
        c.execute_batch(
            "INSERT INTO contacts(id, name, created_at, last_seen) VALUES (1, 'Ann', 1, 1);
             INSERT INTO conversations(id, contact_id, last_channel, last_activity, created_at, assignee)
                VALUES (1, 1, 'email', 5, 1, 'bob');
             INSERT INTO messages(conversation_id, contact_id, channel, direction, author, body,
                    created_at, stored_at) VALUES (1, 1, 'email', 'in', 'Ann', 'hello there', 1, 1);",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
    let row = store.conversation(ConversationId(1)).unwrap();
    assert_eq!(
        (row.contact_name.as_str(), row.team, row.assignee.as_deref()),
        ("Ann", None, Some("bob"))
    );
    assert_eq!(store.timeline(ContactId(1), None, 10).unwrap().len(), 1);
    assert_eq!(
        store
            .search(&SearchQuery::parse("hello").unwrap(), 10)
            .unwrap()
            .len(),
        1
    );
    // Unteamed: shared, so a team-scoped agent sees it.
    store.set_scope(Scope::teams("eve", ["billing"])).unwrap();
    assert!(store.conversation(ConversationId(1)).is_ok());
    store.set_scope(Scope::all("boss")).unwrap();
    store
        .set_conversation_team(ConversationId(1), Some("sales"), "boss", 9)
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store
            .conversation(ConversationId(1))
            .unwrap()
            .team
            .as_deref(),
        Some("sales")
    );
}

#[test]
fn the_config_names_each_channels_team_for_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.toml");
    std::fs::write(
        &path,
        r#"agent = "eve"
[[teams]]
name = "support"
[[teams]]
name = "sales"
[[teams]]
name = "billing"

[webchat]
team = "support"

[telegram]
token_env = "BRAID_TEST_TOKEN"
team = "sales"

[[email]]
name = "billing"
address = "billing@example.com"
password_env = "BRAID_TEST_PASSWORD"
imap_host = "imap.example.com"
smtp_host = "smtp.example.com"
team = "billing"

[[email]]
name = "info"
address = "info@example.com"
password_env = "BRAID_TEST_PASSWORD"
imap_host = "imap.example.com"
smtp_host = "smtp.example.com"
"#,
    )
    .unwrap();
    let env = crate::config::Env {
        config: None,
        data_dir: Some(dir.path().join("data")),
        user: Some("eve".into()),
        xdg_config_dir: None,
        xdg_data_dir: None,
        home: None,
    };
    let config = crate::config::Config::load_with(Some(&path), None, &env).unwrap();
    let settings = config.ingest_settings();
    assert_eq!(
        settings.team_for(Channel::Email, "billing"),
        Some("billing")
    );
    assert_eq!(settings.team_for(Channel::Email, "info"), None);
    assert_eq!(settings.team_for(Channel::Telegram, ""), Some("sales"));
    assert_eq!(settings.team_for(Channel::WebChat, ""), Some("support"));
    // An empty team is no team; a team on two lines is an error that names the key.
    std::fs::write(&path, "[webchat]\nteam = \"\"\n").unwrap();
    let config = crate::config::Config::load_with(Some(&path), None, &env).unwrap();
    assert_eq!(
        config.ingest_settings().team_for(Channel::WebChat, ""),
        None
    );
    std::fs::write(&path, "[webchat]\nteam = \"a\\nb\"\n").unwrap();
    let e = crate::config::Config::load_with(Some(&path), None, &env).unwrap_err();
    assert!(e.to_string().contains("webchat.team"), "{e}");
}

#[test]
fn the_demo_has_two_teams() {
    let mut s = Store::open_in_memory().unwrap();
    crate::demo::generate(
        &mut s,
        &crate::demo::DemoOptions {
            messages: 600,
            contacts: 60,
            ..Default::default()
        },
        T0,
        &mut |_, _| {},
    )
    .unwrap();
    let q = |t: &str| SearchQuery::parse(t).unwrap();
    let (_, support) = s.filtered_conversations(&q("team:support"), 1).unwrap();
    let (_, sales) = s.filtered_conversations(&q("team:sales"), 1).unwrap();
    let (_, none) = s.filtered_conversations(&q("team:none"), 1).unwrap();
    assert!(support > 0 && sales > 0, "support {support}, sales {sales}");
    assert_eq!(none, 0);
    // A sales conversation started on Telegram, a support one on email or the web chat.
    let first_channel = |id: ConversationId| -> Channel {
        s.conn()
            .query_row(
                "SELECT channel FROM messages WHERE conversation_id = ?1 ORDER BY created_at, id LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    let (rows, _) = s.filtered_conversations(&q("team:sales"), 1000).unwrap();
    assert!(
        rows.iter()
            .all(|r| first_channel(r.id) == Channel::Telegram)
    );
    let (rows, _) = s.filtered_conversations(&q("team:support"), 1000).unwrap();
    assert!(
        rows.iter()
            .all(|r| first_channel(r.id) != Channel::Telegram)
    );
}

/// A scoped count adds three index walks: it must agree with the scoped page, for every view
/// and for scopes with no team, one team, and every team.
#[test]
fn scoped_counts_agree_with_scoped_pages() {
    let mut f = fixture();
    f.store
        .set_status(f.unteamed.conversation, Status::Pending, None, "boss", T0)
        .unwrap();
    let scopes = [
        Scope::teams("eve", Vec::<String>::new()),
        Scope::teams("eve", ["billing"]),
        Scope::teams("eve", ["sales"]),
        Scope::teams("nobody", ["billing", "sales"]),
        Scope::all("eve"),
    ];
    let filters = [
        QueueFilter::All,
        QueueFilter::Status(Status::Open),
        QueueFilter::Status(Status::Pending),
        QueueFilter::Unassigned,
        QueueFilter::Mine("eve".into()),
    ];
    let mut seen = Vec::new();
    for scope in scopes {
        f.store.set_scope(scope.clone()).unwrap();
        for filter in &filters {
            let page = f.store.queue_page(filter, QueueAnchor::Top, 50).unwrap();
            let n = f.store.queue_count(filter).unwrap();
            assert_eq!(n, page.len() as i64, "{scope:?} {filter:?}");
            for r in &page {
                assert!(scope.allows(r.team.as_deref(), r.assignee.as_deref()));
            }
        }
        seen.push(f.store.queue_count(&QueueFilter::All).unwrap());
    }
    // No team: the unteamed and eve's own; billing adds ann's; sales adds tom's (eve's own is
    // sales already); both teams: all four; all: four.
    assert_eq!(seen, [2, 3, 3, 4, 4]);
}

/// The change that takes a conversation out of an agent's view still reaches them, so their
/// screen can drop it: moved out of their team, or taken from them.
#[test]
fn the_event_that_hides_a_conversation_reaches_the_agent_who_saw_it() {
    let mut f = fixture();
    let last = f.store.last_event_id().unwrap();
    f.store
        .set_conversation_team(f.billing.conversation, Some("sales"), "boss", T0)
        .unwrap();
    f.store
        .assign(f.assigned.conversation, Some("bob"), "boss", T0)
        .unwrap();
    // Unrelated changes out of eve's view stay out of it.
    f.store
        .set_priority(f.sales.conversation, Priority::High, "boss", T0)
        .unwrap();
    f.store.set_scope(eve()).unwrap();
    let kinds: Vec<(String, Option<ConversationId>)> = f
        .store
        .events_since(last, 50)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.conversation_id))
        .collect();
    assert_eq!(
        kinds,
        [
            ("team_changed".to_string(), Some(f.billing.conversation)),
            ("assigned".to_string(), Some(f.assigned.conversation)),
        ]
    );
    not_found_conversation(f.store.conversation(f.billing.conversation).unwrap_err());
    not_found_conversation(f.store.conversation(f.assigned.conversation).unwrap_err());
}

#[test]
fn a_channel_team_nobody_defined_is_a_config_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.toml");
    std::fs::write(
        &path,
        "[[teams]]\nname = \"billing\"\n\n[webchat]\nteam = \"bilings\"\n",
    )
    .unwrap();
    let env = crate::config::Env {
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    };
    let err = crate::config::Config::load_with(Some(&path), None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("webchat.team"), "{err}");
    assert!(err.contains("team 'bilings' is not defined"), "{err}");
    assert!(err.contains("(defined: billing)"), "{err}");
}

#[test]
fn an_unknown_key_in_an_array_table_names_that_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.toml");
    std::fs::write(
        &path,
        "[server]\nsocket = \"/run/braid/braid.sock\"\n\n[[agents]]\nuser = \"ann\"\nrol = \"agent\"\n",
    )
    .unwrap();
    let env = crate::config::Env {
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    };
    let err = crate::config::Config::load_with(Some(&path), None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 6"), "{err}");
    assert!(err.contains("unknown key `rol` in [agents]"), "{err}");
}
