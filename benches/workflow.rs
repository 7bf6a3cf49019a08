//! The workflow rules under load, on a demo workspace of N messages (default 1,000,000;
//! `BRAID_BENCH_MESSAGES=20000` for the small run CI does):
//!
//! 1. ingest throughput with 100 rules on vs off: new customer messages ingested one
//!    transaction each (as the channels do), and with rules on, the server's rules pass over
//!    the events after every 50 messages (as the events feed wakes it). Alternating rounds,
//!    medians; the cost of the rules is the ratio.
//! 2. the SLA-ordered (triage) queue's first page against the newest-first one, after the
//!    demo's active conversations are put under SLA;
//! 3. the time-based sweep over every open conversation waiting on us: the first sweep
//!    (each conversation evaluated once) and a steady-state sweep (nothing new: what the
//!    server pays every 5 s);
//! 4. `:g/refund/tag bulk` over 10,000 conversations through the real keymap, handler and
//!    store (the harness), and `u` of it.
//!
//! `cargo bench --bench workflow`; prints one line per figure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::demo::{DemoOptions, generate};
use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind, now_millis};
use braid::server::rules::{Context, run_events, sweep};
use braid::store::Store;
use std::time::Instant;

const BATCH: usize = 50;

/// 100 rules: 90 on keywords none of the traffic uses, 5 on domains, 3 that match often
/// (VIP, a billing word, a channel), 2 time-based.
fn rules_text() -> String {
    let mut t = String::new();
    for i in 0..90 {
        t.push_str(&format!(
            "[[rules]]\nid = \"kw{i}\"\nname = \"keyword {i}\"\non = \"message_received\"\n\
             any = [{{ words = [\"zqx{i}a\", \"zqx{i}b\", \"zqx{i}c\"] }}, {{ phrase = \"never said {i}\" }}]\n\
             actions = [{{ tag = \"kw{i}\" }}]\n\n"
        ));
    }
    for i in 0..5 {
        t.push_str(&format!(
            "[[rules]]\nid = \"dom{i}\"\nname = \"domain {i}\"\non = \"message_received\"\n\
             all = [{{ domain = \"corp{i}.example\" }}]\nactions = [{{ priority = \"high\" }}]\n\n"
        ));
    }
    t.push_str(
        r#"[[rules]]
id = "vip"
name = "VIP first"
on = "message_received"
all = [{ vip = true }]
actions = [{ priority = "urgent" }]

[[rules]]
id = "billing"
name = "Billing to billing"
on = "message_received"
any = [{ words = ["refund", "invoice"] }]
actions = [{ assign_team = "billing", strategy = "least_open" }, { tag = "billing" }]

[[rules]]
id = "sms"
name = "SMS tagged"
on = "message_received"
all = [{ channel = "sms" }]
actions = [{ tag = "sms" }]

[[rules]]
id = "waiting"
name = "Waiting 4h"
on = "waiting_on_us"
after = "4h"
all = [{ status = "open" }]
actions = [{ priority = "high" }]

[[rules]]
id = "quiet"
name = "Quiet 2d"
on = "waiting_on_customer"
after = "2d"
actions = [{ status = "pending" }]
"#,
    );
    t
}

fn message(i: usize, at: i64) -> Inbound {
    let words = [
        "where is my order",
        "I need a refund",
        "invoice please",
        "hello there",
        "it broke",
    ];
    Inbound {
        channel: if i.is_multiple_of(7) {
            Channel::Sms
        } else {
            Channel::Email
        },
        account: String::new(),
        external_id: format!("bench-{i}@workflow"),
        direction: Direction::In,
        customer: if i.is_multiple_of(7) {
            Claim::new(IdentityKind::Phone, format!("+4915123{:06}", i % 5000))
        } else {
            Claim::new(
                IdentityKind::Email,
                format!("customer{}@corp{}.example", i % 5000, i % 9),
            )
        },
        linked: Vec::new(),
        customer_name: Some(format!("Customer {}", i % 5000)),
        author: None,
        subject: Some("A question".into()),
        body: format!("{} (message {i})", words[i % words.len()]),
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
    let rounds = 3;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.sqlite3");
    let mut store = Store::open(&path).unwrap();
    let t = Instant::now();
    let opts = DemoOptions {
        messages: n,
        contacts: (n / 10).max(100),
        ..DemoOptions::default()
    };
    generate(&mut store, &opts, now_millis(), &mut |_, _| {}).unwrap();
    println!(
        "built a demo workspace of {n} messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut config = braid::config::Config::with_data_dir(dir.path());
    config.workspace = braid::demo::workspace();
    let known = braid::server::rules::known(&config);
    let set = braid::rules::load_str(&rules_text(), "bench.toml", &known).unwrap();
    assert_eq!(set.rules.len(), 100);
    let cx = Context {
        config: &config,
        online: vec!["dana".into(), "erin".into()],
        canned: None,
    };
    store
        .set_rules_cursor(store.last_event_id().unwrap())
        .unwrap();
    let settings = Settings::default();

    // 1. Ingest with rules off and on, alternating.
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut next = 0usize;
    let mut matched = 0usize;
    for round in 0..rounds * 2 {
        let rules_on = round % 2 == 1;
        let t = Instant::now();
        for k in 0..per_round {
            ingest(&mut store, &message(next, now_millis()), &settings).unwrap();
            next += 1;
            if rules_on && (k + 1) % BATCH == 0 {
                matched += run_events(&mut store, &set, &cx).unwrap().matched;
            }
        }
        if rules_on {
            matched += run_events(&mut store, &set, &cx).unwrap().matched;
        } else {
            // Rules off: the events are skipped, as a server without rules would.
            store
                .set_rules_cursor(store.last_event_id().unwrap())
                .unwrap();
        }
        let rate = per_round as f64 / t.elapsed().as_secs_f64();
        if rules_on {
            on.push(rate)
        } else {
            off.push(rate)
        }
    }
    let (off_m, on_m) = (median(off), median(on));
    println!(
        "ingest, 100 rules: off {off_m:.0} msg/s, on {on_m:.0} msg/s: rules cost {:.1}% \
         (target <= 20%; {matched} rule matches over {} messages)",
        (1.0 - on_m / off_m) * 100.0,
        per_round * rounds
    );

    // 2. The first page of the open queue, triage order vs newest first.
    let under_sla = braid::demo::apply_sla(&mut store, now_millis()).unwrap();
    let open = braid::store::QueueFilter::Status(braid::model::Status::Open);
    let page = |order: braid::store::QueueOrder| {
        let mut v = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            let rows = store
                .queue_page_ordered(&open, order, braid::store::QueueAnchor::Top, 50)
                .unwrap();
            assert!(!rows.is_empty());
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        median(v)
    };
    let triage = page(braid::store::QueueOrder::Triage);
    let activity = page(braid::store::QueueOrder::Activity);
    println!(
        "queue first page (50 rows, {under_sla} conversations under SLA): triage order \
         {triage:.2} ms, newest first {activity:.2} ms (medians of 21)"
    );

    // 3. The time-based sweep over every open conversation, all waiting on us 5 h.
    let waiting = store
        .bench_make_waiting(now_millis() - 5 * 3_600_000)
        .unwrap();
    let t = Instant::now();
    let mut first = 0usize;
    loop {
        let p = sweep(&mut store, &set, &cx, now_millis()).unwrap();
        first += p.events;
        if p.events == 0 {
            break;
        }
    }
    let first_s = t.elapsed().as_secs_f64();
    let mut steady = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let p = sweep(&mut store, &set, &cx, now_millis()).unwrap();
        assert_eq!(p.events, 0);
        steady.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "time-based sweep over {waiting} open conversations waiting on us: first pass {first} \
         evaluated in {:.0} ms ({:.0}/s), then {:.1} ms per sweep (median of 5)",
        first_s * 1000.0,
        first as f64 / first_s,
        median(steady)
    );

    // 4. :g// over 10,000 conversations, through the TUI's keymap and the server's handler.
    let now = now_millis();
    let n = 10_000;
    let bulk = braid::harness::bulk_workspace(n, now).unwrap();
    let mut h = braid::harness::Harness::new(bulk, "me", 160, 45, now).unwrap();
    h.app.bulk_confirm_over = usize::MAX;
    let t = Instant::now();
    h.keys(":g/refund/tag bulk<CR>").unwrap();
    let g = t.elapsed().as_secs_f64();
    let t = Instant::now();
    h.keys("u").unwrap();
    let u = t.elapsed().as_secs_f64();
    let tags = h
        .store
        .conversation_tags(braid::model::ConversationId(1))
        .unwrap();
    assert!(
        !tags.contains(&"bulk".to_string()),
        "u took the tag off again"
    );
    println!(":g/refund/tag bulk over {n} conversations: {g:.2} s; u of it: {u:.2} s");
}
