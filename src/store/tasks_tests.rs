//! Tasks on a real (in-memory) store: create, windows and paging, close, the due sweep (once,
//! with its notification), closing by a call log.

use super::*;
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::*;
use crate::store::{NotificationKind, NotificationPage, NotifyAgent, Scope};

/// 2026-01-01T00:00:00Z
const T0: Millis = 1_767_225_600_000;
const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;

fn msg(channel: Channel, ext: &str, kind: IdentityKind, who: &str, at: Millis) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: Vec::new(),
        customer_name: Some("Ana".into()),
        author: None,
        subject: None,
        body: "hello".into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn put(store: &mut Store, m: &Inbound) -> (ConversationId, ContactId) {
    let tx = store.write().unwrap();
    let out = ingest_in(&tx, m, &Settings::default(), m.sent_at + 1000).unwrap();
    tx.commit().unwrap();
    match out {
        Ingested::Stored {
            conversation,
            contact,
            ..
        } => (conversation, contact),
        other => panic!("not stored: {other:?}"),
    }
}

/// A store with Ana (web chat, phone +4915112345678) writing once.
fn ana() -> (Store, ConversationId, ContactId) {
    let mut s = Store::open_in_memory().unwrap();
    let mut m = msg(Channel::WebChat, "w1", IdentityKind::WebChat, "v-ana", T0);
    m.linked
        .push(Claim::new(IdentityKind::Phone, "+4915112345678"));
    let (conv, contact) = put(&mut s, &m);
    (s, conv, contact)
}

fn task(kind: &str, title: &str, due: Option<Millis>, who: Option<&str>) -> NewTask {
    NewTask {
        kind: kind.into(),
        title: title.into(),
        due_at: due,
        assignee: who.map(str::to_string),
        ..NewTask::default()
    }
}

fn kinds_since(s: &Store, after: i64) -> Vec<(String, String)> {
    s.events_since(crate::model::EventId(after), 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor))
        .collect()
}

#[test]
fn create_lists_and_closes_with_events() {
    let (mut s, conv, contact) = ana();
    let before = s.last_event_id().unwrap().0;
    let mut t = task(
        "Call",
        "call back about the refund",
        Some(T0 + HOUR),
        Some("bob"),
    );
    t.conversation = Some(conv);
    let row = s.create_task(&t, "bob", T0).unwrap();
    assert_eq!(row.kind, "call");
    assert_eq!(row.contact_id, Some(contact));
    assert_eq!(row.contact_name, "Ana");
    assert_eq!(row.state, "open");
    // A contact-only task, of a team, no due time.
    let mut t2 = task("todo", "send the contract", None, Some("carol"));
    t2.contact = Some(contact);
    t2.team = Some("billing".into());
    let row2 = s.create_task(&t2, "rule:vip", T0).unwrap();
    assert_eq!(
        kinds_since(&s, before),
        vec![
            ("task_created".into(), "bob".into()),
            ("task_created".into(), "rule:vip".into())
        ]
    );

    let ids = |w: &TaskWindow| -> Vec<i64> {
        s.tasks_page(w, TaskAt::Top, 10)
            .unwrap()
            .0
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(&TaskWindow::Mine("bob".into())), vec![row.id]);
    assert_eq!(ids(&TaskWindow::Team("billing".into())), vec![row2.id]);
    assert_eq!(ids(&TaskWindow::Overdue(T0 + HOUR - 1)), Vec::<i64>::new());
    assert_eq!(ids(&TaskWindow::Overdue(T0 + HOUR)), vec![row.id]);
    // Due first, no due time last.
    assert_eq!(ids(&TaskWindow::Contact(contact)), vec![row.id, row2.id]);
    assert_eq!(s.overdue_tasks(T0 + 2 * HOUR).unwrap(), 1);

    // Paging by cursor.
    let (p1, more) = s.tasks_page(&TaskWindow::Open, TaskAt::Top, 1).unwrap();
    assert!(more);
    let (p2, more) = s
        .tasks_page(&TaskWindow::Open, TaskAt::After(p1[0].cursor()), 1)
        .unwrap();
    assert!(!more);
    assert_eq!((p1[0].id, p2[0].id), (row.id, row2.id));
    let (last, more) = s.tasks_page(&TaskWindow::Open, TaskAt::Bottom, 1).unwrap();
    assert!(more);
    assert_eq!(last[0].id, row2.id);
    let (before, more) = s
        .tasks_page(&TaskWindow::Open, TaskAt::Before(last[0].cursor()), 5)
        .unwrap();
    assert!(!more);
    assert_eq!(
        before.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![row.id]
    );

    let mid = s.last_event_id().unwrap().0;
    let closed = s
        .close_task(row.id, TaskEnd::Done, "bob", T0 + MIN)
        .unwrap();
    assert_eq!(
        (closed.state.as_str(), closed.closed_by.as_deref()),
        ("done", Some("bob"))
    );
    let again = s.close_task(row.id, TaskEnd::Cancelled, "bob", T0 + MIN);
    assert!(again.unwrap_err().to_string().contains("already done"));
    s.close_task(row2.id, TaskEnd::Cancelled, "carol", T0 + MIN)
        .unwrap();
    assert_eq!(
        kinds_since(&s, mid),
        vec![
            ("task_closed".into(), "bob".into()),
            ("task_closed".into(), "carol".into())
        ]
    );
    assert!(
        s.tasks_page(&TaskWindow::Open, TaskAt::Top, 10)
            .unwrap()
            .0
            .is_empty()
    );
}

#[test]
fn bad_tasks_are_refused_with_what_to_do() {
    let (mut s, conv, _) = ana();
    let mut t = task("call", "  ", None, None);
    t.conversation = Some(conv);
    assert!(
        s.create_task(&t, "bob", T0)
            .unwrap_err()
            .to_string()
            .contains("title")
    );
    let t = task("call", "x", None, None);
    assert!(
        s.create_task(&t, "bob", T0)
            .unwrap_err()
            .to_string()
            .contains("contact or a conversation")
    );
    let mut t = task("two words", "x", None, None);
    t.conversation = Some(conv);
    assert!(
        s.create_task(&t, "bob", T0)
            .unwrap_err()
            .to_string()
            .contains("one word")
    );
    assert!(
        s.close_task(999, TaskEnd::Done, "bob", T0)
            .unwrap_err()
            .to_string()
            .contains("no task #999")
    );
}

#[test]
fn a_scoped_agent_sees_its_teams_tasks_and_its_own() {
    let (mut s, conv, contact) = ana();
    let mut t = task("todo", "billing thing", None, None);
    t.contact = Some(contact);
    t.team = Some("billing".into());
    let billing = s.create_task(&t, "admin", T0).unwrap();
    t.team = Some("sales".into());
    let sales = s.create_task(&t, "admin", T0).unwrap();
    t.assignee = Some("bob".into());
    let bobs = s.create_task(&t, "admin", T0).unwrap();
    let _ = conv;
    s.set_scope(Scope::teams("bob", ["billing"])).unwrap();
    let ids: Vec<i64> = s
        .tasks_page(&TaskWindow::Open, TaskAt::Top, 10)
        .unwrap()
        .0
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![billing.id, bobs.id]);
    assert!(s.close_task(sales.id, TaskEnd::Done, "bob", T0).is_err());
    assert!(s.task(sales.id).unwrap().is_none());
}

#[test]
fn due_sweep_marks_once_and_notifies_the_assignee() {
    let (mut s, conv, _) = ana();
    let agents = vec![NotifyAgent {
        name: "bob".into(),
        scope: Scope::all("bob"),
    }];
    // Start the derivation cursor before the task exists.
    s.derive_notifications(&agents).unwrap();
    let mut t = task("call", "call Ana back", Some(T0 + HOUR), Some("bob"));
    t.conversation = Some(conv);
    let row = s.create_task(&t, "alice", T0).unwrap();
    let mut later = task("todo", "later", Some(T0 + 5 * HOUR), Some("bob"));
    later.conversation = Some(conv);
    s.create_task(&later, "alice", T0).unwrap();

    assert!(s.sweep_due_tasks(T0 + HOUR - 1).unwrap().is_empty());
    let due = s.sweep_due_tasks(T0 + HOUR).unwrap();
    assert_eq!(due.iter().map(|t| t.id).collect::<Vec<_>>(), vec![row.id]);
    assert_eq!(due[0].notified_at, Some(T0 + HOUR));
    // Once: the next sweeps find nothing new.
    assert!(s.sweep_due_tasks(T0 + 2 * HOUR).unwrap().is_empty());
    let n = s.derive_notifications(&agents).unwrap();
    assert_eq!(n.rows.len(), 1, "{:?}", n.rows);
    assert_eq!(n.rows[0].kind, NotificationKind::TaskDue);
    assert_eq!(n.rows[0].agent, "bob");
    assert_eq!(n.rows[0].excerpt, "call: call Ana back");
    assert_eq!(n.rows[0].contact_name, "Ana");
    let (page, _) = s
        .notifications_page("bob", NotificationPage::Newest, 10, false)
        .unwrap();
    assert_eq!(page.len(), 1);
    // A closed task is never marked due.
    let mut closed = task("todo", "done already", Some(T0), Some("bob"));
    closed.conversation = Some(conv);
    let c = s.create_task(&closed, "alice", T0).unwrap();
    s.close_task(c.id, TaskEnd::Done, "bob", T0).unwrap();
    assert!(s.sweep_due_tasks(T0 + 3 * HOUR).unwrap().is_empty());
}

#[test]
fn a_call_log_closes_the_contacts_open_call_tasks() {
    let (mut s, conv, contact) = ana();
    // The cursor starts before the tasks.
    assert!(s.close_tasks_by_events(T0).unwrap().is_empty());
    let mut call = task("call", "call Ana back", Some(T0 + HOUR), Some("bob"));
    call.conversation = Some(conv);
    let call = s.create_task(&call, "bob", T0 + MIN).unwrap();
    let mut todo = task("todo", "send the contract", None, Some("bob"));
    todo.contact = Some(contact);
    let todo = s.create_task(&todo, "bob", T0 + MIN).unwrap();
    // Someone else's call does not close it.
    let other = msg(
        Channel::Phone,
        "call-0",
        IdentityKind::Phone,
        "+4930111",
        T0 + 2 * MIN,
    );
    put(&mut s, &other);
    assert!(s.close_tasks_by_events(T0 + 3 * MIN).unwrap().is_empty());

    let log = msg(
        Channel::Phone,
        "call-1",
        IdentityKind::Phone,
        "+4915112345678",
        T0 + 10 * MIN,
    );
    let (_, who) = put(&mut s, &log);
    assert_eq!(who, contact);
    let before = s.last_event_id().unwrap().0;
    let closed = s.close_tasks_by_events(T0 + 11 * MIN).unwrap();
    assert_eq!(
        closed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![call.id]
    );
    assert_eq!(closed[0].closed_by.as_deref(), Some("event:call"));
    let ev = s.events_since(crate::model::EventId(before), 10).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind.as_str(), ev[0].actor.as_str()),
        ("task_closed", "event:call")
    );
    assert!(ev[0].data.as_deref().unwrap().contains("\"message\""));
    // The todo stays open; following again closes nothing more.
    assert!(s.task(todo.id).unwrap().unwrap().is_open());
    assert!(s.close_tasks_by_events(T0 + 12 * MIN).unwrap().is_empty());
}

#[test]
fn create_and_close_inside_a_callers_transaction() {
    let (mut s, conv, _) = ana();
    let tx = s.write().unwrap();
    let mut t = task("call", "rule made", Some(T0), Some("bob"));
    t.conversation = Some(conv);
    let row = tx.create_task(&t, "rule:vip-first", T0).unwrap();
    tx.close_task(row.id, TaskEnd::Cancelled, "rule:vip-first", T0)
        .unwrap();
    tx.rollback().unwrap();
    assert!(s.task(row.id).unwrap().is_none());
    let tx = s.write().unwrap();
    let row = tx.create_task(&t, "rule:vip-first", T0).unwrap();
    tx.commit().unwrap();
    assert_eq!(
        s.task(row.id).unwrap().unwrap().created_by,
        "rule:vip-first"
    );
}

// ---------------------------------------------------------------------------------------------
// Scheduled replies (`:send-at`): the outbox side (the worker's claim) and cancelling.

#[test]
fn a_scheduled_reply_is_not_claimed_before_its_time_and_shows_when() {
    let (mut s, conv, _) = ana();
    let send_at = T0 + 3 * HOUR;
    let id = s
        .schedule_reply(
            conv,
            Channel::WebChat,
            "bob",
            "see you monday",
            T0 + MIN,
            send_at,
            None,
        )
        .unwrap();
    let m = s.message(id).unwrap();
    assert_eq!(m.delivery, Some(Delivery::Queued));
    assert_eq!(m.scheduled_at, Some(send_at));
    assert_eq!(s.last_scheduled(conv).unwrap(), Some(id));
    assert!(s.claim_outbox(send_at - 1, 60_000, 10).unwrap().is_empty());
    let items = s.claim_outbox(send_at, 60_000, 10).unwrap();
    assert_eq!(
        items.iter().map(|i| i.message_id).collect::<Vec<_>>(),
        vec![id]
    );
    // Once claimed it is going out: too late to cancel.
    let late = s.cancel_scheduled(id, "bob", send_at).unwrap_err();
    assert!(late.to_string().contains("too late"), "{late}");
    assert_eq!(s.last_scheduled(conv).unwrap(), None);
    // A time that is not ahead is refused.
    let past = s
        .schedule_reply(conv, Channel::WebChat, "bob", "x", T0 + MIN, T0, None)
        .unwrap_err();
    assert!(past.to_string().contains("ahead"), "{past}");
}

#[test]
fn cancelling_a_scheduled_reply_removes_it_from_the_outbox_audited() {
    let (mut s, conv, _) = ana();
    let now_reply = s
        .queue_reply(conv, Channel::WebChat, "bob", "right now", T0 + MIN)
        .unwrap();
    let id = s
        .schedule_reply(
            conv,
            Channel::WebChat,
            "bob",
            "later",
            T0 + MIN,
            T0 + HOUR,
            None,
        )
        .unwrap();
    let before = s.last_event_id().unwrap().0;
    s.cancel_scheduled(id, "bob", T0 + 2 * MIN).unwrap();
    let m = s.message(id).unwrap();
    assert_eq!(m.delivery, Some(Delivery::Cancelled));
    let kinds: Vec<String> = kinds_since(&s, before).into_iter().map(|k| k.0).collect();
    assert_eq!(kinds, vec!["reply_cancelled", "delivery_changed"]);
    // Never sent, however late.
    let items = s.claim_outbox(T0 + 10 * HOUR, 60_000, 10).unwrap();
    assert_eq!(
        items.iter().map(|i| i.message_id).collect::<Vec<_>>(),
        vec![now_reply]
    );
    // Twice, or a reply that was not scheduled: refused, saying why.
    assert!(s.cancel_scheduled(id, "bob", T0).is_err());
    let e = s.cancel_scheduled(now_reply, "bob", T0).unwrap_err();
    assert!(e.to_string().contains("too late") || e.to_string().contains("not a scheduled"));
}
