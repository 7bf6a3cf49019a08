//! The SLA state of conversations on a real (in-memory) store.

use super::*;
use crate::identity::Claim;
use crate::ingest::{self, Inbound, Ingested};
use crate::model::{Channel, ContactId, ConversationId, Direction, IdentityKind, Status};
use crate::sla::{Hours, Policy, SlaConfig};

const H: i64 = 3_600_000;
const M: i64 = 60_000;
/// Wednesday 2 December 2026, 10:00 UTC.
const T0: i64 = 1_796_205_600_000;

fn inbound(n: usize, who: &str, at: i64) -> Inbound {
    Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: format!("<m{n}-{who}@example.com>"),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, format!("{who}@example.com")),
        linked: vec![],
        customer_name: Some(who.into()),
        author: None,
        subject: Some("Refund".into()),
        body: format!("message {n} from {who}"),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn ingest(s: &mut Store, n: usize, who: &str, at: i64) -> (ConversationId, ContactId) {
    match ingest::ingest(s, &inbound(n, who, at), &ingest::Settings::default()).unwrap() {
        Ingested::Stored {
            conversation,
            contact,
            ..
        } => (conversation, contact),
        other => panic!("{other:?}"),
    }
}

fn cfg() -> SlaConfig {
    let office = Hours::new(
        "office",
        "UTC",
        std::array::from_fn(|d| {
            if d < 5 {
                vec![(9 * 60, 17 * 60)]
            } else {
                vec![]
            }
        }),
        vec![],
    )
    .unwrap();
    SlaConfig {
        hours: vec![office],
        policies: vec![
            Policy {
                name: "gold".into(),
                first_response: Some(H),
                next_response: Some(4 * H),
                resolution: None,
                hours: None,
                warn_before: 15 * M,
            },
            Policy {
                name: "office".into(),
                first_response: Some(8 * H),
                next_response: None,
                resolution: Some(16 * H),
                hours: Some("office".into()),
                warn_before: 30 * M,
            },
        ],
        team_hours: vec![],
    }
}

fn sla(s: &Store, c: ConversationId) -> (Option<String>, Option<i64>, Option<String>) {
    let st = s.conversation_sla(c).unwrap().unwrap();
    (st.target, st.due, st.state)
}

fn kinds_of(s: &Store, c: ConversationId) -> Vec<String> {
    s.conn()
        .prepare(
            "SELECT kind FROM events WHERE conversation_id = ?1 AND kind LIKE 'sla_%' ORDER BY id",
        )
        .unwrap()
        .query_map([c], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn applying_a_policy_sets_the_first_response_deadline_and_is_audited() {
    let mut s = Store::open_in_memory().unwrap();
    let (c, _) = ingest(&mut s, 1, "ann", T0);
    assert_eq!(s.conversation_sla(c).unwrap(), None);
    let d = s
        .apply_sla_by_name(c, &cfg(), "gold", T0 + M, "rule:vip")
        .unwrap();
    assert_eq!(d, Some((crate::sla::Target::FirstResponse, T0 + H)));
    assert_eq!(
        sla(&s, c),
        (Some("first_response".into()), Some(T0 + H), None)
    );
    let (actor, data): (String, String) = s
        .conn()
        .query_row(
            "SELECT actor, data FROM events WHERE kind = 'sla_applied'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(actor, "rule:vip");
    assert!(
        data.contains("\"policy\":\"gold\"") && data.contains("first_response"),
        "{data}"
    );
    // An unknown policy says which exist.
    let e = s
        .apply_sla_by_name(c, &cfg(), "platinum", T0, "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("gold, office"), "{e}");
}

#[test]
fn business_hours_come_from_the_policy_or_the_team() {
    let mut s = Store::open_in_memory().unwrap();
    // Wednesday 16:30 UTC: 8 business hours of a 9-17 office end Thursday 16:30.
    let (c, _) = ingest(&mut s, 1, "ann", T0 + 6 * H + 30 * M);
    s.apply_sla_by_name(c, &cfg(), "office", T0 + 7 * H, "a")
        .unwrap();
    assert_eq!(sla(&s, c).1, Some(T0 + 30 * H + 30 * M));
    // gold names no hours: the team's hours apply (else 24x7).
    let (c2, _) = ingest(&mut s, 2, "bob", T0 + 6 * H + 30 * M);
    s.set_conversation_team(c2, Some("emea"), "a", T0 + 7 * H)
        .unwrap();
    let mut with_team = cfg();
    with_team.team_hours.push(("emea".into(), "office".into()));
    s.apply_sla_by_name(c2, &with_team, "gold", T0 + 7 * H, "a")
        .unwrap();
    assert_eq!(sla(&s, c2).1, Some(T0 + 23 * H + 30 * M), "Thursday 09:30");
    s.apply_sla_by_name(c2, &cfg(), "gold", T0 + 7 * H, "a")
        .unwrap();
    assert_eq!(sla(&s, c2).1, Some(T0 + 7 * H + 30 * M), "24x7");
}

#[test]
fn the_sweep_warns_then_breaches_once_and_notifies_the_assignee() {
    let mut s = Store::open_in_memory().unwrap();
    let (c, _) = ingest(&mut s, 1, "ann", T0);
    let agents = vec![NotifyAgent {
        name: "alice".into(),
        scope: Scope::all("alice"),
    }];
    s.derive_notifications(&agents).unwrap();
    s.assign(c, Some("alice"), "alice", T0).unwrap();
    s.apply_sla_by_name(c, &cfg(), "gold", T0, "rule:x")
        .unwrap();
    let cfg = cfg();
    // Not yet within 15 minutes.
    assert_eq!(
        s.sla_sweep(&cfg, T0 + 44 * M).unwrap(),
        sla::Swept::default()
    );
    assert_eq!(s.sla_sweep(&cfg, T0 + 46 * M).unwrap().warned, 1);
    assert_eq!(
        s.sla_sweep(&cfg, T0 + 50 * M).unwrap(),
        sla::Swept::default()
    );
    assert_eq!(sla(&s, c).2.as_deref(), Some("warned"));
    assert_eq!(s.sla_counts(T0 + 50 * M).unwrap()[0].due_soon, 1);
    assert_eq!(s.sla_sweep(&cfg, T0 + H).unwrap().breached, 1);
    assert_eq!(
        s.sla_sweep(&cfg, T0 + 2 * H).unwrap(),
        sla::Swept::default()
    );
    assert_eq!(sla(&s, c).2.as_deref(), Some("breached"));
    assert_eq!(
        kinds_of(&s, c),
        ["sla_applied", "sla_warning", "sla_breached"]
    );
    let counts = s.sla_counts(T0 + 2 * H).unwrap();
    assert_eq!((counts[0].breached, counts[0].due_soon), (1, 0));
    let data: String = s
        .conn()
        .query_row(
            "SELECT data FROM events WHERE kind = 'sla_breached'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        data.contains("\"target\":\"first_response\"")
            && data.contains(&format!("\"due\":{}", T0 + H)),
        "{data}"
    );
    let n = s.derive_notifications(&agents).unwrap();
    let got: Vec<_> = n
        .rows
        .iter()
        .map(|r| (r.agent.as_str(), r.kind, r.excerpt.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "alice",
                NotificationKind::SlaWarning,
                "SLA gold due soon: first response"
            ),
            (
                "alice",
                NotificationKind::SlaBreach,
                "SLA gold breached: first response"
            ),
        ]
    );
}

#[test]
fn the_deadline_follows_replies_messages_and_resolution() {
    let mut s = Store::open_in_memory().unwrap();
    let cfg = cfg();
    s.derive_sla(&cfg).unwrap(); // the cursor starts at the newest event
    let (c, _) = ingest(&mut s, 1, "ann", T0);
    s.apply_sla_by_name(c, &cfg, "gold", T0, "rule:x").unwrap();
    s.sla_sweep(&cfg, T0 + 2 * H).unwrap();
    assert_eq!(sla(&s, c).2.as_deref(), Some("breached"));
    // An automatic reply (a rule) does not stop the clock.
    s.queue_reply(c, Channel::Email, "rule:ack", "We got it", T0 + 2 * H)
        .unwrap();
    s.derive_sla(&cfg).unwrap();
    assert_eq!(
        sla(&s, c),
        (
            Some("first_response".into()),
            Some(T0 + H),
            Some("breached".into())
        )
    );
    // Our reply: nothing waits on us, gold has no resolution target: nothing is due.
    s.queue_reply(c, Channel::Email, "alice", "Refunded", T0 + 3 * H)
        .unwrap();
    assert_eq!(s.derive_sla(&cfg).unwrap(), 1);
    assert_eq!(sla(&s, c), (None, None, None));
    // The customer writes again: the next response target, a new cycle.
    ingest(&mut s, 2, "ann", T0 + 5 * H);
    s.derive_sla(&cfg).unwrap();
    assert_eq!(
        sla(&s, c),
        (Some("next_response".into()), Some(T0 + 9 * H), None)
    );
    // Resolved: no deadline, and the sweep has nothing to do.
    s.set_status(c, Status::Resolved, None, "alice", T0 + 6 * H)
        .unwrap();
    s.derive_sla(&cfg).unwrap();
    assert_eq!(sla(&s, c), (None, None, None));
    assert_eq!(
        s.sla_sweep(&cfg, T0 + 20 * H).unwrap(),
        sla::Swept::default()
    );
    // Derivation is idempotent.
    assert_eq!(s.derive_sla(&cfg).unwrap(), 0);
}

#[test]
fn the_sweep_and_counts_read_the_deadline_indexes() {
    let s = Store::open_in_memory().unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = s
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.join("\n")
    };
    let p = plan(
        "SELECT id FROM conversations INDEXED BY conversations_sla_pending
         WHERE sla_due IS NOT NULL AND sla_state IS NOT 'breached' AND sla_due <= 5",
    );
    assert!(p.contains("USING INDEX conversations_sla_pending"), "{p}");
}

/// Six open conversations, one of each kind the triage order tells apart.
fn triage_fixture() -> (Store, Vec<(&'static str, ConversationId)>) {
    let mut s = Store::open_in_memory().unwrap();
    let cfg = cfg();
    s.derive_sla(&cfg).unwrap();
    let mut out = Vec::new();
    for (n, who) in [
        "plain_old",
        "plain_new",
        "due_late",
        "vip",
        "urgent",
        "breached",
        "due_soon",
    ]
    .into_iter()
    .enumerate()
    {
        let (c, contact) = ingest(&mut s, n, who, T0 + n as i64 * M);
        match who {
            "vip" => s.set_vip(contact, true, "a", T0).unwrap(),
            "urgent" => s
                .set_priority(c, crate::model::Priority::Urgent, "a", T0)
                .unwrap(),
            "breached" => {
                s.apply_sla_by_name(c, &cfg, "gold", T0, "a").unwrap();
                s.sla_sweep(&cfg, T0 + 30 * H).unwrap();
            }
            "due_soon" | "due_late" => {
                s.apply_sla_by_name(c, &cfg, "gold", T0, "a").unwrap();
            }
            _ => {}
        }
        out.push((who, c));
    }
    // The customer of "plain_new" has been waiting longer than... no one: we answered, then
    // they wrote again last. "plain_old" still waits since its first message.
    let plain_new = out[1].1;
    s.queue_reply(plain_new, Channel::Email, "alice", "ok", T0 + 20 * M)
        .unwrap();
    ingest(&mut s, 10, "plain_new", T0 + 30 * M);
    // "due_late" answered then written to again: next response (4h) is later than 1h ones.
    let late = out[2].1;
    s.queue_reply(late, Channel::Email, "alice", "ok", T0 + 20 * M)
        .unwrap();
    ingest(&mut s, 11, "due_late", T0 + 25 * M);
    s.derive_sla(&cfg).unwrap();
    (s, out)
}

fn names(rows: &[QueueRow], all: &[(&'static str, ConversationId)]) -> Vec<&'static str> {
    rows.iter()
        .map(|r| all.iter().find(|(_, c)| *c == r.id).unwrap().0)
        .collect()
}

#[test]
fn triage_orders_breached_urgent_vip_due_waiting_then_activity() {
    let (s, all) = triage_fixture();
    let open = QueueFilter::Status(Status::Open);
    let rows = s
        .queue_page_ordered(&open, QueueOrder::Triage, QueueAnchor::Top, 50)
        .unwrap();
    assert_eq!(
        names(&rows, &all),
        [
            "breached",
            "urgent",
            "vip",
            "due_soon",
            "due_late",
            "plain_old",
            "plain_new"
        ]
    );
    // The row says why: its deadline, state and how long the customer waits.
    assert_eq!(rows[0].sla_state.as_deref(), Some("breached"));
    assert_eq!(rows[3].sla_due, Some(T0 + 6 * M + H));
    assert_eq!(rows[5].waiting_since, Some(T0));
    // "activity" keeps the old order: newest first.
    let rows = s
        .queue_page_ordered(&open, QueueOrder::Activity, QueueAnchor::Top, 50)
        .unwrap();
    assert_eq!(names(&rows, &all)[0], "plain_new");
}

#[test]
fn triage_paging_is_exact_both_ways_and_by_offset() {
    let (s, all) = triage_fixture();
    for filter in [QueueFilter::Status(Status::Open), QueueFilter::Unassigned] {
        let whole = s
            .queue_page_ordered(&filter, QueueOrder::Triage, QueueAnchor::Top, 50)
            .unwrap();
        assert_eq!(whole.len(), all.len());
        for limit in 1..4 {
            // Forward from the top.
            let mut got: Vec<QueueRow> = Vec::new();
            loop {
                let anchor = got
                    .last()
                    .map(|r| QueueAnchor::After(r.cursor()))
                    .unwrap_or(QueueAnchor::Top);
                let page = s
                    .queue_page_ordered(&filter, QueueOrder::Triage, anchor, limit)
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                got.extend(page);
            }
            assert_eq!(got, whole, "forward by {limit}");
            // Backward from the bottom.
            let mut got: Vec<QueueRow> = s
                .queue_page_ordered(&filter, QueueOrder::Triage, QueueAnchor::Bottom, limit)
                .unwrap();
            loop {
                let page = s
                    .queue_page_ordered(
                        &filter,
                        QueueOrder::Triage,
                        QueueAnchor::Before(got[0].cursor()),
                        limit,
                    )
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                got.splice(0..0, page);
            }
            assert_eq!(got, whole, "backward by {limit}");
        }
        for (n, row) in whole.iter().enumerate() {
            let page = s
                .queue_page_ordered(&filter, QueueOrder::Triage, QueueAnchor::Offset(n), 2)
                .unwrap();
            assert_eq!(page[0].id, row.id, "offset {n}");
            let page = s
                .queue_page_ordered(
                    &filter,
                    QueueOrder::Triage,
                    QueueAnchor::AtOrAfter(row.cursor()),
                    2,
                )
                .unwrap();
            assert_eq!(page[0].id, row.id, "at {n}");
        }
    }
}

#[test]
fn the_vip_flag_follows_the_contact_into_the_triage_key() {
    let (mut s, all) = triage_fixture();
    let plain_old = all[0].1;
    let contact = s.conversation(plain_old).unwrap().contact_id;
    s.set_vip(contact, true, "a", T0).unwrap();
    let rows = s
        .queue_page_ordered(
            &QueueFilter::Status(Status::Open),
            QueueOrder::Triage,
            QueueAnchor::Top,
            50,
        )
        .unwrap();
    // Both VIP now, no deadline: the one waiting longer first.
    assert_eq!(
        names(&rows, &all)[..4],
        ["breached", "urgent", "plain_old", "vip"]
    );
}

#[test]
fn the_triage_first_page_walks_an_index_without_sorting() {
    let (mut s, _) = triage_fixture();
    for scope in [Scope::all("x"), Scope::teams("bob", ["support"])] {
        s.set_scope(scope).unwrap();
        for (filter, index) in [
            (QueueFilter::Status(Status::Open), "conversations_triage "),
            (
                QueueFilter::Mine("ann".into()),
                "conversations_triage_assignee",
            ),
            (QueueFilter::Unassigned, "conversations_triage_assignee"),
            (
                QueueFilter::Team("billing".into()),
                "conversations_triage_team",
            ),
        ] {
            let (cond, arg) = filter.where_clause();
            let arg = arg.map(|a| format!("'{a}'")).unwrap_or_default();
            let cond = cond.replace('?', &arg);
            let cond = format!("{cond}{}", s.scope_and());
            let sql = format!(
            "EXPLAIN QUERY PLAN SELECT {} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE {cond} AND (c.triage_band, c.triage_due, c.triage_wait, c.triage_act, c.id) > (1, 2, 3, 4, 5)
             ORDER BY c.triage_band, c.triage_due, c.triage_wait, c.triage_act, c.id LIMIT 50",
            conversations::QUEUE_COLUMNS
        );
            let plan: Vec<String> = s
                .conn()
                .prepare(&sql)
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("USING INDEX {index}")),
                "{filter:?}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
        }
    }
}
