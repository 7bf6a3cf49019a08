//! Reports on a demo workspace of N messages over a year (default 1,000,000;
//! `BRAID_BENCH_MESSAGES=20000` for the small run CI does):
//!
//! 1. the backfill: every conversation's history replayed into reporting facts (what an
//!    upgraded store, or a bulk-loaded one, pays once);
//! 2. a report over the whole year through `Store::report` (what the server runs for
//!    `braid report` and the `g R` view): the first view (by channel, every metric), then each
//!    slice change (agent, team, tag, day, week, month); medians of 5 runs each. Target:
//!    200 ms;
//! 3. the cost of keeping the facts on ingest: new customer messages ingested one
//!    transaction each (as the channels do) with the `reports` derivation after every 50
//!    (as the events feed wakes it) against without; alternating rounds, medians. Target:
//!    10%.
//!
//! `cargo bench --bench reports`; prints one line per figure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::api::report::{ReportQuery, Slice};
use braid::demo::{DemoOptions, generate};
use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind, now_millis};
use braid::store::{ReportScope, Store};
use std::time::Instant;

const BATCH: usize = 50;
const YEAR: i64 = 365 * 86_400_000;

fn message(i: usize, at: i64) -> Inbound {
    Inbound {
        channel: if i.is_multiple_of(5) {
            Channel::Telegram
        } else {
            Channel::Email
        },
        account: String::new(),
        external_id: format!("bench-{i}@reports"),
        direction: Direction::In,
        customer: if i.is_multiple_of(5) {
            Claim::new(IdentityKind::Telegram, format!("{}", 700_000 + i % 5000))
        } else {
            Claim::new(
                IdentityKind::Email,
                format!("customer{}@corp.example", i % 5000),
            )
        },
        linked: Vec::new(),
        customer_name: Some(format!("Customer {}", i % 5000)),
        author: None,
        subject: Some("A question".into()),
        body: format!("where is my order (message {i})"),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("BRAID_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let per_round: usize = std::env::var("BRAID_BENCH_INGEST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.sqlite3");
    let mut store = Store::open(&path).unwrap();
    let t = Instant::now();
    let opts = DemoOptions {
        messages: n,
        contacts: (n / 10).max(100),
        days: 365,
        ..DemoOptions::default()
    };
    let now = now_millis();
    generate(&mut store, &opts, now, &mut |_, _| {}).unwrap();
    println!(
        "built a demo workspace of {n} messages over a year in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let config = braid::demo::workspace();
    let cfg = &config.sla;

    // 1. The backfill.
    let t = Instant::now();
    let mut last = None;
    store.derive_reports(cfg, &mut |p| last = Some(p)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let p = last.expect("a backfill");
    println!(
        "backfill: {} conversations ({n} messages) in {secs:.1} s, {:.0} messages/s",
        p.total,
        n as f64 / secs
    );
    store.refresh_statistics().unwrap();

    // 2. Reports over the year.
    let today = jiff::Timestamp::from_millisecond(now)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let first = today.checked_sub(jiff::ToSpan::days(364)).unwrap();
    let query = |by| ReportQuery::dates(&first.to_string(), &today.to_string(), by, vec![]);
    let mut worst: f64 = 0.0;
    for by in [
        Slice::Channel,
        Slice::Agent,
        Slice::Team,
        Slice::Tag,
        Slice::Day,
        Slice::Week,
        Slice::Month,
    ] {
        let mut times = Vec::new();
        let mut rows = 0;
        let mut facts = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let r = store.report(&query(by), &ReportScope::All).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            rows = r.rows.len();
            facts = r.total.first_response.count + r.total.resolution.count;
        }
        let m = median(times);
        worst = worst.max(m);
        println!(
            "report over a year by {:<7}: {m:6.1} ms median of 5 ({rows} rows, {facts} response and resolution times)",
            by.as_str()
        );
    }
    println!("slowest slice: {worst:.1} ms (target 200 ms)");
    let agent = store
        .report(&query(Slice::Channel), &ReportScope::Agent("alice".into()))
        .unwrap();
    println!(
        "report scoped to one agent (alice), by channel: {} ms",
        agent.took_ms
    );
    // The exact path: the same year as instants in another zone (no daily totals there).
    let mut exact = query(Slice::Channel);
    exact.days = None;
    exact.from = now - YEAR;
    exact.to = now;
    exact.tz = Some("America/New_York".into());
    let t = Instant::now();
    let r = store.report(&exact, &ReportScope::All).unwrap();
    println!(
        "report over a year by channel in another zone (every fact read, exact medians): {:.0} ms ({} rows)",
        t.elapsed().as_secs_f64() * 1000.0,
        r.rows.len()
    );

    // 3. Ingest with the derivation on and off, alternating.
    let settings = Settings::default();
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut next = 0usize;
    for round in 0..10 {
        let facts_on = round % 2 == 1;
        let t = Instant::now();
        for k in 0..per_round {
            ingest(&mut store, &message(next, now_millis()), &settings).unwrap();
            next += 1;
            if facts_on && (k + 1) % BATCH == 0 {
                store.derive_reports(cfg, &mut |_| {}).unwrap();
            }
        }
        if facts_on {
            store.derive_reports(cfg, &mut |_| {}).unwrap();
        } else {
            store
                .set_reports_cursor(store.last_event_id().unwrap())
                .unwrap();
        }
        let rate = per_round as f64 / t.elapsed().as_secs_f64();
        if facts_on {
            on.push(rate)
        } else {
            off.push(rate)
        }
    }
    let (off_m, on_m) = (median(off), median(on));
    println!(
        "ingest: {off_m:.0} messages/s without the facts, {on_m:.0} with them: {:.1}% cost (target 10%)",
        100.0 * (1.0 - on_m / off_m)
    );
}
