//! Contacts you can trust, timed (`cargo bench --bench contacts`; one line per figure):
//!
//! 1. merge, then unmerge, a contact with 10,000 messages (`BRAID_BENCH_CONTACT_MESSAGES`)
//!    into one with a few: every message, identity and conversation moves and comes back
//!    exactly; medians of 5 rounds, ms;
//! 2. `:duplicates` over 100,000 contacts (`BRAID_BENCH_CONTACTS`) with email and phone
//!    identities, some of them duplicates by each rule; median of 5, ms.
//!
//! CI runs the small version (1,000 messages, 10,000 contacts) so it cannot rot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest_in};
use braid::model::{Channel, ContactId, Direction, IdentityKind, now_millis};
use braid::store::Store;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn inbound(
    channel: Channel,
    kind: IdentityKind,
    who: &str,
    name: &str,
    ext: String,
    at: i64,
) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: ext,
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: Vec::new(),
        customer_name: Some(name.into()),
        author: None,
        subject: (channel == Channel::Email).then(|| "Order".to_string()),
        body: "where is my order? it was due last week".into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn contact_of(store: &Store, kind: IdentityKind, v: &str) -> ContactId {
    store.contact_by_identity(kind, v).unwrap().unwrap()
}

fn merge_round_trip(messages: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("braid.sqlite3")).unwrap();
    let t0 = now_millis() - 400 * 86_400_000;
    {
        let tx = store.write().unwrap();
        let s = Settings::default();
        for i in 0..messages {
            let m = inbound(
                Channel::Email,
                IdentityKind::Email,
                "big@corp.example",
                "Big Customer",
                format!("big-{i}"),
                t0 + i as i64 * 60_000,
            );
            ingest_in(&tx, &m, &s, t0 + i as i64 * 60_000).unwrap();
        }
        for i in 0..20 {
            let m = inbound(
                Channel::Telegram,
                IdentityKind::Telegram,
                "777001",
                "Big C",
                format!("tg-{i}"),
                t0 + i as i64 * 3_600_000,
            );
            ingest_in(&tx, &m, &s, t0 + i as i64 * 3_600_000).unwrap();
        }
        tx.commit().unwrap();
    }
    let big = contact_of(&store, IdentityKind::Email, "big@corp.example");
    let small = contact_of(&store, IdentityKind::Telegram, "777001");
    let (mut merges, mut unmerges) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let id = store
            .merge_contacts_by_hand(small, big, "bench", "bench", now_millis())
            .unwrap();
        merges.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        store
            .unmerge(Some(id), None, "bench", now_millis())
            .unwrap();
        unmerges.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "contacts: merge a contact with {messages} messages: {:.1} ms (median of 5)",
        median(merges)
    );
    println!(
        "contacts: unmerge it exactly: {:.1} ms (median of 5)",
        median(unmerges)
    );
}

fn duplicates(contacts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("braid.sqlite3")).unwrap();
    let t0 = now_millis() - 30 * 86_400_000;
    let t = Instant::now();
    {
        let tx = store.write().unwrap();
        let s = Settings::default();
        for i in 0..contacts {
            let at = t0 + i as i64;
            // Every 50th person also wrote from a second address with the same local part;
            // every 70th from a phone written two ways; the rest are distinct.
            let (kind, channel, who) = if i % 70 == 1 {
                (
                    IdentityKind::Phone,
                    Channel::Sms,
                    format!("+4420794{:05}", i % 100_000),
                )
            } else if i % 50 == 1 {
                (
                    IdentityKind::Email,
                    Channel::Email,
                    format!("person{}@home.example", i - 1),
                )
            } else {
                (
                    IdentityKind::Email,
                    Channel::Email,
                    format!("person{i}@corp{}.example", i % 997),
                )
            };
            let m = inbound(
                channel,
                kind,
                &who,
                &format!("Person {i}"),
                format!("c-{i}"),
                at,
            );
            ingest_in(&tx, &m, &s, at).unwrap();
        }
        tx.commit().unwrap();
    }
    eprintln!(
        "contacts: {contacts} contacts stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..5 {
        let t = Instant::now();
        found = store.duplicates(usize::MAX).unwrap().len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    assert!(found >= contacts / 60, "too few pairs: {found}");
    println!(
        "contacts: duplicates over {contacts} contacts: {:.0} ms (median of 5), {found} pairs",
        median(times)
    );
}

fn main() {
    merge_round_trip(env("BRAID_BENCH_CONTACT_MESSAGES", 10_000));
    duplicates(env("BRAID_BENCH_CONTACTS", 100_000));
}
