//! Reports on hand-built timelines with known answers, through the real store verbs, the
//! real derivation and the real report query (in-memory SQLite).

use super::reports::{Progress, ReportScope};
use super::*;
use crate::api::report::{Metric, Report, ReportQuery, ReportRow, Slice};
use crate::identity::Claim;
use crate::ingest::{self, Inbound, Ingested};
use crate::model::{Channel, ContactId, ConversationId, Direction, IdentityKind, Status};
use crate::sla::{Hours, Policy, SlaConfig};

const H: i64 = 3_600_000;
const M: i64 = 60_000;
/// Wednesday 2 December 2026, 10:00 UTC.
const T0: i64 = 1_796_205_600_000;
const DAY: i64 = 24 * H;

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
        policies: vec![Policy {
            name: "gold".into(),
            first_response: Some(H),
            next_response: Some(4 * H),
            resolution: None,
            hours: None,
            warn_before: 15 * M,
        }],
        team_hours: vec![("billing".into(), "office".into())],
    }
}

struct W {
    s: Store,
    cfg: SlaConfig,
    n: usize,
}

impl W {
    fn new() -> W {
        W {
            s: Store::open_in_memory().unwrap(),
            cfg: cfg(),
            n: 0,
        }
    }

    /// A customer message on `channel`, ingested at its own time.
    fn customer(&mut self, who: &str, channel: Channel, at: i64) -> (ConversationId, ContactId) {
        self.n += 1;
        let (kind, value) = match channel {
            Channel::Telegram => (IdentityKind::Telegram, format!("{}", 1000 + who.len())),
            _ => (IdentityKind::Email, format!("{who}@example.com")),
        };
        let msg = Inbound {
            channel,
            account: String::new(),
            external_id: format!("m{}", self.n),
            direction: Direction::In,
            customer: Claim::new(kind, value),
            linked: vec![],
            customer_name: Some(who.into()),
            author: None,
            subject: Some("Help".into()),
            body: format!("message {}", self.n),
            sent_at: at,
            meta: None,
            cursor: None,
        };
        let tx = self.s.write().unwrap();
        let out = ingest::ingest_in(&tx, &msg, &ingest::Settings::default(), at).unwrap();
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

    fn reply(&mut self, c: ConversationId, channel: Channel, who: &str, at: i64) {
        self.s
            .queue_reply(c, channel, who, "an answer", at)
            .unwrap();
    }

    fn derive(&mut self) {
        self.s.derive_reports(&self.cfg, &mut |_| {}).unwrap();
    }

    fn report(&mut self, by: Slice, from: i64, to: i64) -> Report {
        self.derive();
        self.s
            .report(
                &ReportQuery {
                    from,
                    to,
                    by,
                    metrics: vec![],
                    tz: Some("UTC".into()),
                    days: None,
                },
                &ReportScope::All,
            )
            .unwrap()
    }
}

fn row<'a>(r: &'a Report, key: &str) -> &'a crate::api::report::Figures {
    &r.rows
        .iter()
        .find(|x| x.key == key)
        .unwrap_or_else(|| {
            panic!(
                "no row {key} in {:?}",
                r.rows.iter().map(|x| &x.key).collect::<Vec<_>>()
            )
        })
        .figures
}

#[test]
fn first_and_next_response_ignore_rule_replies_and_notes() {
    let mut w = W::new();
    let (c, _) = w.customer("ann", Channel::Email, T0);
    // An automatic acknowledgement and a note stop no clock.
    w.s.queue_reply(c, Channel::Email, "rule:ack", "we got it", T0 + M)
        .unwrap();
    w.s.add_note(c, "bob", "looking", T0 + 2 * M).unwrap();
    w.reply(c, Channel::Email, "bob", T0 + 30 * M);
    // Two customer messages, one wait: from the first.
    w.customer("ann", Channel::Email, T0 + H);
    w.customer("ann", Channel::Email, T0 + H + 10 * M);
    w.reply(c, Channel::Email, "bob", T0 + 2 * H);
    let r = w.report(Slice::Channel, T0 - DAY, T0 + DAY);
    let t = &r.total;
    assert_eq!(t.first_response.count, 1);
    assert_eq!(t.first_response.median, Some(30 * M));
    assert_eq!(t.next_response.count, 1);
    assert_eq!(t.next_response.median, Some(H));
    assert_eq!(t.messages_in, 3);
    assert_eq!(t.messages_out, 3, "two replies by bob and one by a rule");
    assert_eq!(t.opened, 1);
    // The customer waited on us from our reply to their next message.
    assert_eq!(t.customer_wait.count, 1);
    assert_eq!(t.customer_wait.median, Some(30 * M));
    let e = row(&r, "email");
    assert_eq!(e.first_response.median, Some(30 * M));
}

#[test]
fn a_reopening_starts_a_new_first_response_and_resolution() {
    let mut w = W::new();
    let (c, _) = w.customer("ann", Channel::Email, T0);
    w.reply(c, Channel::Email, "bob", T0 + 10 * M);
    w.s.set_status(c, Status::Resolved, None, "bob", T0 + H)
        .unwrap();
    // She writes again the next day: the same conversation, reopened.
    let (c2, _) = w.customer("ann", Channel::Email, T0 + DAY);
    assert_eq!(c, c2);
    w.reply(c, Channel::Email, "bob", T0 + DAY + 20 * M);
    w.s.set_status(c, Status::Resolved, None, "bob", T0 + DAY + 2 * H)
        .unwrap();
    let r = w.report(Slice::Day, T0 - DAY, T0 + 3 * DAY);
    let t = &r.total;
    assert_eq!(t.opened, 1);
    assert_eq!(t.reopened, 1);
    assert_eq!(t.resolved, 2);
    assert_eq!(
        t.first_response.count, 2,
        "one per episode, not a next response"
    );
    assert_eq!(t.next_response.count, 0);
    let mut firsts = [t.first_response.median, t.first_response.p90];
    firsts.sort();
    assert_eq!(firsts, [Some(10 * M), Some(20 * M)]);
    assert_eq!(t.resolution.count, 2);
    assert_eq!(
        t.resolution.p90,
        Some(2 * H),
        "reopening to resolved, not creation"
    );
    // Customer wait: our reply to the resolution, each time (she never wrote back).
    assert_eq!(t.customer_wait.count, 2);
    // Per day, with the backlog at the end of each.
    let d0 = row(&r, "2026-12-02");
    assert_eq!((d0.opened, d0.resolved, d0.backlog), (1, 1, Some(0)));
    let d1 = row(&r, "2026-12-03");
    assert_eq!((d1.reopened, d1.resolved, d1.backlog), (1, 1, Some(0)));
    assert_eq!(
        r.rows.len(),
        5,
        "every day the range touches, empty ones too"
    );
}

#[test]
fn business_hours_skip_the_weekend_and_a_team_change_moves_later_facts() {
    let mut w = W::new();
    // Friday 4 Dec 16:30 UTC, a customer writes; the conversation is billing's (office
    // hours 9-17 weekdays); bob answers Monday 09:30.
    let fri = T0 + 2 * DAY + 6 * H + 30 * M;
    let (c, _) = w.customer("ann", Channel::Email, fri);
    w.s.set_conversation_team(c, Some("billing"), "bob", fri + M)
        .unwrap();
    let mon = T0 + 5 * DAY - H + 30 * M;
    w.reply(c, Channel::Email, "bob", mon);
    // Moved to sales (no hours): the next response counts for sales, round the clock.
    w.s.set_conversation_team(c, Some("sales"), "bob", mon + M)
        .unwrap();
    w.customer("ann", Channel::Email, mon + H);
    w.reply(c, Channel::Email, "cy", mon + 3 * H);
    let r = w.report(Slice::Team, T0, T0 + 7 * DAY);
    let b = row(&r, "billing");
    assert_eq!(b.first_response.median, Some(mon - fri), "wall clock");
    assert_eq!(
        b.first_response.median_business,
        Some(H),
        "30 min Friday + 30 min Monday"
    );
    let s = row(&r, "sales");
    assert_eq!(s.next_response.median, Some(2 * H));
    assert_eq!(s.next_response.median_business, Some(2 * H));
    assert_eq!(b.next_response.count, 0);
    // The opening was before any team.
    assert_eq!(row(&r, "(no team)").opened, 1);
}

#[test]
fn per_agent_and_per_channel_slices_and_scopes() {
    let mut w = W::new();
    let (a, _) = w.customer("ann", Channel::Email, T0);
    w.s.assign(a, Some("bob"), "bob", T0 + M).unwrap();
    w.reply(a, Channel::Email, "bob", T0 + 2 * H);
    let (t, _) = w.customer("tom", Channel::Telegram, T0);
    w.s.set_conversation_team(t, Some("billing"), "cy", T0)
        .unwrap();
    w.reply(t, Channel::Telegram, "cy", T0 + M);
    let r = w.report(Slice::Channel, T0 - H, T0 + DAY);
    assert_eq!(row(&r, "email").first_response.median, Some(2 * H));
    assert_eq!(row(&r, "telegram").first_response.median, Some(M));
    let r = w.report(Slice::Agent, T0 - H, T0 + DAY);
    assert_eq!(row(&r, "bob").first_response.count, 1);
    assert_eq!(row(&r, "cy").first_response.count, 1);
    assert_eq!(row(&r, "bob").messages_out, 1);
    // bob sees his own; a billing lead sees billing's; an admin both.
    let q = ReportQuery {
        from: T0 - H,
        to: T0 + DAY,
        by: Slice::Channel,
        metrics: vec![Metric::FirstResponse],
        tz: None,
        days: None,
    };
    let own = w.s.report(&q, &ReportScope::Agent("bob".into())).unwrap();
    assert_eq!(own.total.first_response.count, 1);
    assert_eq!(own.rows.len(), 1);
    assert_eq!(own.rows[0].key, "email");
    let lead =
        w.s.report(&q, &ReportScope::Teams(vec!["billing".into()]))
            .unwrap();
    assert_eq!(
        lead.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["telegram"]
    );
    let none = w.s.report(&q, &ReportScope::Teams(vec![])).unwrap();
    assert_eq!(none.total.first_response.count, 0);
    let all = w.s.report(&q, &ReportScope::All).unwrap();
    assert_eq!(all.total.first_response.count, 2);
}

#[test]
fn sla_met_and_missed_per_policy() {
    let mut w = W::new();
    let (a, _) = w.customer("ann", Channel::Email, T0);
    w.s.apply_sla_by_name(a, &w.cfg, "gold", T0, "bob").unwrap();
    w.reply(a, Channel::Email, "bob", T0 + 30 * M); // within the hour: met
    let (b, _) = w.customer("ben", Channel::Email, T0);
    w.s.apply_sla_by_name(b, &w.cfg, "gold", T0, "bob").unwrap();
    w.s.sla_sweep(&w.cfg, T0 + 2 * H).unwrap(); // breached
    w.reply(b, Channel::Email, "bob", T0 + 3 * H);
    let r = w.report(Slice::Channel, T0 - H, T0 + DAY);
    assert_eq!(r.total.sla.met, 1);
    assert_eq!(r.total.sla.missed, 1);
    assert_eq!(
        r.total.sla_policies,
        vec![(
            "gold".to_string(),
            crate::api::report::SlaFigures { met: 1, missed: 1 }
        )]
    );
    assert_eq!(r.total.sla.met_pct(), Some(50.0));
}

#[test]
fn csat_events_become_figures() {
    let mut w = W::new();
    let (a, contact) = w.customer("ann", Channel::Email, T0);
    w.s.set_status(a, Status::Resolved, None, "bob", T0 + H)
        .unwrap();
    for (kind, data) in [
        (EventKind::CsatSent, serde_json::json!({"channel": "email"})),
        (
            EventKind::CsatAnswered,
            serde_json::json!({"channel": "email", "score": 4, "comment": "ok"}),
        ),
    ] {
        let tx = w.s.write().unwrap();
        tx.append_event(
            T0 + 2 * H,
            "ann",
            kind,
            EventRefs {
                conversation: Some(a),
                contact: Some(contact),
                message: None,
            },
            Some(&data),
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let r = w.report(Slice::Channel, T0 - H, T0 + DAY);
    assert_eq!(r.total.csat.sent, 1);
    assert_eq!(r.total.csat.answered, 1);
    assert_eq!(r.total.csat.scores, [0, 0, 0, 1, 0]);
    assert_eq!(r.total.csat.average(), Some(4.0));
}

#[test]
fn a_backfill_equals_the_live_derivation() {
    let mut w = W::new();
    let (a, _) = w.customer("ann", Channel::Email, T0);
    w.derive(); // live, event by event, in several passes
    w.s.assign(a, Some("bob"), "cy", T0 + M).unwrap();
    w.s.queue_reply(a, Channel::Email, "rule:ack", "got it", T0 + 2 * M)
        .unwrap();
    w.reply(a, Channel::Email, "bob", T0 + 20 * M);
    w.derive();
    w.customer("ann", Channel::Email, T0 + H);
    w.s.set_conversation_team(a, Some("billing"), "cy", T0 + H + M)
        .unwrap();
    w.reply(a, Channel::Email, "bob", T0 + 3 * H);
    let (t, _) = w.customer("tom", Channel::Telegram, T0 + H);
    w.reply(t, Channel::Telegram, "cy", T0 + H + 5 * M);
    w.s.set_status(a, Status::Resolved, None, "bob", T0 + 4 * H)
        .unwrap();
    w.customer("ann", Channel::Email, T0 + DAY);
    w.reply(a, Channel::Email, "cy", T0 + DAY + H);
    let (b, _) = w.customer("ben", Channel::Email, T0 + 2 * H);
    w.s.set_status(b, Status::Resolved, None, "cy", T0 + 5 * H)
        .unwrap();
    w.s.tag(a, "refund", false, "bob", T0 + 5 * H).unwrap();
    w.s.tag(b, "refund", false, "bob", T0 + 5 * H).unwrap();
    w.derive();
    w.s.tag(b, "refund", true, "bob", T0 + 6 * H).unwrap();
    w.s.tag(b, "shipping", false, "bob", T0 + 6 * H).unwrap();
    w.customer("ben", Channel::Email, T0 + 7 * H);
    w.derive();
    let live = facts(&w.s);
    assert!(
        live.iter()
            .any(|f| f.starts_with("tag ") && f.contains(" shipping ")),
        "{live:?}"
    );
    assert!(live.len() > 15, "{live:?}");
    let mut seen = Vec::new();
    w.s.backfill_reports(&w.cfg, false, &mut |p: Progress| seen.push(p))
        .unwrap();
    assert_eq!(facts(&w.s), live);
    assert_eq!(seen.last(), Some(&Progress { done: 3, total: 3 }));
    // And the derivation after a backfill adds nothing twice.
    w.derive();
    assert_eq!(facts(&w.s), live);
}

#[test]
fn an_upgraded_store_backfills_on_the_first_derivation() {
    let mut w = W::new();
    let (a, _) = w.customer("ann", Channel::Email, T0);
    w.reply(a, Channel::Email, "bob", T0 + 5 * M);
    // No cursor yet (a store from before v12): the first derivation replays the history.
    w.s.conn
        .execute("DELETE FROM derivations WHERE name = 'reports'", [])
        .unwrap();
    w.s.conn
        .execute_batch(
            "DELETE FROM report_facts; DELETE FROM report_daily; DELETE FROM report_state;",
        )
        .unwrap();
    let mut calls = 0;
    w.s.derive_reports(&w.cfg, &mut |_| calls += 1).unwrap();
    assert!(calls >= 2, "progress at the start and after each chunk");
    let r = w.report(Slice::Channel, T0 - H, T0 + H);
    assert_eq!(r.total.first_response.median, Some(5 * M));
    assert_eq!(r.total.messages_in, 1);
}

#[test]
fn a_bulk_loaded_history_is_backfilled_from_its_imported_event() {
    let mut s = Store::open_in_memory().unwrap();
    let cfg = cfg();
    s.derive_reports(&cfg, &mut |_| {}).unwrap(); // the cursor exists
    crate::demo::generate_with(
        &mut s,
        &crate::demo::DemoOptions {
            messages: 400,
            contacts: 40,
            ..Default::default()
        },
        T0,
        &mut |_, _| {},
        crate::demo::Path::Bulk,
    )
    .unwrap();
    s.derive_reports(&cfg, &mut |_| {}).unwrap();
    let r = s
        .report(
            &ReportQuery {
                from: 0,
                to: i64::MAX / 2,
                by: Slice::Channel,
                metrics: vec![],
                tz: None,
                days: None,
            },
            &ReportScope::All,
        )
        .unwrap();
    let total = r.total.messages_in + r.total.messages_out;
    let stored: i64 = s
        .conn
        .query_row(
            "SELECT count(*) FROM messages WHERE direction <> 'note'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(total, stored);
    assert!(r.total.first_response.count > 0);
    assert!(r.total.opened > 0);
}

#[test]
fn a_tag_slice_counts_a_conversation_under_each_tag_and_once_in_the_total() {
    let mut w = W::new();
    let (a, _) = w.customer("ann", Channel::Email, T0);
    w.s.tag(a, "billing", false, "bob", T0).unwrap();
    w.s.tag(a, "vip", false, "bob", T0).unwrap();
    w.reply(a, Channel::Email, "bob", T0 + 10 * M);
    let (b, _) = w.customer("ben", Channel::Email, T0);
    w.reply(b, Channel::Email, "bob", T0 + 20 * M);
    let r = w.report(Slice::Tag, T0 - H, T0 + H);
    assert_eq!(row(&r, "billing").first_response.count, 1);
    assert_eq!(row(&r, "vip").first_response.count, 1);
    assert_eq!(row(&r, "billing").messages_in, 1);
    assert_eq!(r.total.first_response.count, 2);
    assert_eq!(r.total.messages_in, 2);
}

#[test]
fn bad_ranges_and_zones_are_refused_with_what_to_do() {
    let w = W::new();
    let q = |from, to, tz: &str| ReportQuery {
        from,
        to,
        by: Slice::Day,
        metrics: vec![],
        tz: Some(tz.into()),
        days: None,
    };
    let e =
        w.s.report(&q(T0, T0, "UTC"), &ReportScope::All)
            .unwrap_err();
    assert!(e.to_string().contains("--from before --to"), "{e}");
    let e =
        w.s.report(&q(T0, T0 + DAY, "Mars/Olympus\x1b[2J"), &ReportScope::All)
            .unwrap_err();
    assert!(e.to_string().contains("IANA"), "{e}");
    assert!(!e.to_string().contains('\x1b'));
}

/// Every fact, in a comparable order.
fn facts(s: &Store) -> Vec<String> {
    let mut v: Vec<String> = s
        .conn
        .prepare(
            "SELECT metric, at, conversation_id, channel, team, agent, value, business, label
             FROM report_facts",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {:?} {:?} {} {:?} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    v.sort();
    let counts: Vec<String> = s
        .conn
        .prepare(
            "SELECT day, metric, channel, team, agent, n, label, total, business, hex(hist),
                hex(hist_business) FROM report_daily ORDER BY 1, 2, 3, 4, 5, 7",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "daily {} {} {} {} {} {} {} {} {} {:?} {:?}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    v.extend(counts);
    let tags: Vec<String> = s
        .conn
        .prepare(
            "SELECT day, metric, tag, channel, team, agent, n, label, total, hex(hist)
             FROM report_daily_tags WHERE n <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 8",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "tag {} {} {} {} {} {} {} {} {} {:?}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    v.extend(tags);
    v
}

#[test]
fn a_report_reads_each_metric_from_the_covering_index_whatever_the_scope() {
    let w = W::new();
    for scope in [
        ReportScope::All,
        ReportScope::Agent("bob".into()),
        ReportScope::Teams(vec!["billing".into(), "sales".into()]),
    ] {
        let plan = super::reports::scan_plan(&w.s.conn, &scope);
        assert!(
            plan.contains("COVERING INDEX report_facts_scan"),
            "{scope:?}: {plan}"
        );
    }
}

/// A workspace with some traffic over two weeks: replies, resolutions, SLA and a team.
fn busy() -> W {
    let mut w = W::new();
    for i in 0..60i64 {
        let who = format!("c{}", i % 17);
        let at = T0 + i * 5 * H + (i % 7) * M;
        let (c, _) = w.customer(&who, Channel::Email, at);
        if i % 3 == 0 {
            w.s.set_conversation_team(c, Some("billing"), "bob", at)
                .unwrap();
        }
        if i % 4 == 0 {
            w.s.apply_sla_by_name(c, &w.cfg, "gold", at, "bob").unwrap();
        }
        w.reply(
            c,
            Channel::Email,
            if i % 2 == 0 { "bob" } else { "cy" },
            at + (i % 11 + 1) * 7 * M,
        );
        if i % 5 == 0 {
            w.s.set_status(c, Status::Resolved, None, "bob", at + 3 * H)
                .unwrap();
        }
        // Tags come (some before the facts, some after) and go.
        w.s.tag(c, &format!("t{}", i % 4), false, "bob", at + 4 * H)
            .unwrap();
        if i % 8 == 0 {
            w.s.tag(c, "t0", true, "bob", at + 4 * H + M).unwrap();
        }
        if i % 10 == 0 {
            w.derive();
        }
    }
    w.derive();
    w
}

#[test]
fn whole_days_read_the_daily_totals_and_agree_with_the_facts() {
    let w = busy();
    for by in [
        Slice::Channel,
        Slice::Agent,
        Slice::Team,
        Slice::Day,
        Slice::Week,
    ] {
        for scope in [
            ReportScope::All,
            ReportScope::Agent("bob".into()),
            ReportScope::Teams(vec!["billing".into()]),
        ] {
            // The same range two ways: as dates (the daily totals) and as instants one
            // millisecond off midnight... no: as instants exactly at midnight in another
            // spelling of the zone ("Etc/UTC"), which the daily totals are not kept in.
            let daily =
                w.s.report(
                    &ReportQuery::dates("2026-12-01", "2026-12-16", by, vec![]),
                    &scope,
                )
                .unwrap();
            let mut raw_q = daily.query.clone();
            raw_q.tz = Some("Etc/UTC".into());
            let raw = w.s.report(&raw_q, &scope).unwrap();
            assert_eq!(daily.rows, raw.rows, "{by:?} {scope:?}");
            assert_eq!(daily.total, raw.total, "{by:?} {scope:?}");
            // Read from the histograms: counts and means exact, quantiles within 0.5%.
            let hist = w.s.report_exact_up_to(&daily.query, &scope, 0).unwrap();
            assert_eq!(hist.rows.len(), raw.rows.len());
            for (h, r) in hist.rows.iter().zip(&raw.rows).chain([(
                &ReportRow {
                    key: "t".into(),
                    figures: hist.total.clone(),
                },
                &ReportRow {
                    key: "t".into(),
                    figures: raw.total.clone(),
                },
            )]) {
                assert_eq!(h.key, r.key);
                let (hf, rf) = (&h.figures, &r.figures);
                assert_eq!(
                    (hf.opened, hf.resolved, hf.messages_in, hf.messages_out),
                    (rf.opened, rf.resolved, rf.messages_in, rf.messages_out)
                );
                assert_eq!(hf.sla, rf.sla);
                for m in [
                    Metric::FirstResponse,
                    Metric::Resolution,
                    Metric::CustomerWait,
                ] {
                    let (a, b) = (hf.durations(m).unwrap(), rf.durations(m).unwrap());
                    assert_eq!(
                        (a.count, a.mean, a.mean_business),
                        (b.count, b.mean, b.mean_business),
                        "{m:?}"
                    );
                    for (x, y) in [
                        (a.median, b.median),
                        (a.p90, b.p90),
                        (a.median_business, b.median_business),
                    ] {
                        match (x, y) {
                            (Some(x), Some(y)) => assert!(
                                (x - y).abs() as f64 <= y as f64 * 0.0051 + 1000.0,
                                "{m:?} {x} vs {y}"
                            ),
                            (x, y) => assert_eq!(x, y),
                        }
                    }
                }
            }
        }
    }
    let t =
        w.s.report(
            &ReportQuery::dates("2026-12-01", "2026-12-16", Slice::Channel, vec![]),
            &ReportScope::All,
        )
        .unwrap()
        .total;
    assert_eq!(
        t.first_response.count + t.next_response.count,
        60,
        "every wait answered once"
    );
}

#[test]
fn dates_are_whole_days_of_the_zone_across_a_dst_change() {
    let w = W::new();
    let mut q = ReportQuery::dates("2026-03-28", "2026-03-29", Slice::Day, vec![Metric::Volume]);
    q.tz = Some("Europe/Berlin".into());
    let r = w.s.report(&q, &ReportScope::All).unwrap();
    assert_eq!(
        r.query.to - r.query.from,
        47 * H,
        "the clocks go forward on the 29th"
    );
    assert_eq!(
        r.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["2026-03-28", "2026-03-29"]
    );
    let e =
        w.s.report(
            &ReportQuery::dates("2026-03-29", "2026-03-28", Slice::Day, vec![]),
            &ReportScope::All,
        )
        .unwrap_err();
    assert!(e.to_string().contains("earlier date first"), "{e}");
}

#[test]
fn moving_the_workspace_zone_cuts_the_days_again() {
    let mut w = W::new();
    // 23:30 UTC on 2 Dec is 00:30 on 3 Dec in Berlin.
    let (c, _) = w.customer("ann", Channel::Email, T0 + 13 * H + 30 * M);
    w.reply(c, Channel::Email, "bob", T0 + 14 * H);
    w.derive();
    let day = |w: &W| {
        let r =
            w.s.report(
                &ReportQuery::dates("2026-12-01", "2026-12-04", Slice::Day, vec![Metric::Volume]),
                &ReportScope::All,
            )
            .unwrap();
        (
            r.tz.clone(),
            r.rows
                .iter()
                .find(|r| r.figures.opened == 1)
                .map(|r| r.key.clone()),
        )
    };
    assert_eq!(day(&w), ("UTC".to_string(), Some("2026-12-02".to_string())));
    w.cfg.hours[0] = Hours::new(
        "office",
        "Europe/Berlin",
        std::array::from_fn(|_| vec![(9 * 60, 17 * 60)]),
        vec![],
    )
    .unwrap();
    w.derive();
    assert_eq!(
        day(&w),
        ("Europe/Berlin".to_string(), Some("2026-12-03".to_string()))
    );
}

#[test]
fn the_demo_history_has_surveys_the_reports_read_once() {
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
    let answered = crate::demo::seed_surveys(&mut s).unwrap();
    assert!(answered > 5, "{answered}");
    assert_eq!(crate::demo::seed_surveys(&mut s).unwrap(), 0, "never twice");
    let cfg = cfg();
    s.derive_reports(&cfg, &mut |_| {}).unwrap();
    let r = s
        .report(
            &ReportQuery {
                from: 0,
                to: T0 + DAY,
                by: Slice::Channel,
                metrics: vec![Metric::Csat],
                tz: None,
                days: None,
            },
            &ReportScope::All,
        )
        .unwrap();
    assert_eq!(r.total.csat.answered as usize, answered);
    assert!(r.total.csat.sent > r.total.csat.answered);
    let avg = r.total.csat.average().unwrap();
    assert!((3.0..=5.0).contains(&avg), "{avg}");
}

#[test]
fn a_scope_says_whose_figures_these_are() {
    assert_eq!(ReportScope::All.describe(), "everyone");
    assert_eq!(
        ReportScope::Teams(vec![]).describe(),
        "no team (you lead none)"
    );
    assert_eq!(
        ReportScope::Teams(vec!["billing".into(), "sales".into()]).describe(),
        "teams billing, sales"
    );
    assert_eq!(
        ReportScope::Agent("bob".into()).describe(),
        "your own (bob)"
    );
}
