//! Webhooks out: N customer messages (default 10,000; `BRAID_BENCH_WEBHOOKS=1000` for the
//! small run CI does) become N deliveries to one endpoint, posted signed to a local HTTP
//! receiver (axum on 127.0.0.1, answering 204) by the server's dispatcher on a real SQLite
//! file, 8 in flight:
//!
//! 1. queueing: the `webhooks` derivation writes one delivery per event (payload built,
//!    message body included) — deliveries/s;
//! 2. delivering: from the dispatcher's start until every row is `delivered` (each attempt
//!    signed, posted, recorded in the store) — deliveries/s.
//!
//! `cargo bench --bench webhooks`; prints one line per figure. Fails on an error (a delivery
//! lost, a bad signature), not on a slow figure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind, now_millis};
use braid::secret::SecretSource;
use braid::server::webhooks::{Hooks, start};
use braid::store::Store;
use braid::webhooks::{Backoff, EventFilter, WebhookConfig, sign};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret";

fn message(i: usize) -> Inbound {
    Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: format!("bench-{i}@webhooks"),
        direction: Direction::In,
        customer: Claim::new(
            IdentityKind::Email,
            format!("customer{}@corp.example", i % 2000),
        ),
        linked: Vec::new(),
        customer_name: Some(format!("Customer {}", i % 2000)),
        author: None,
        subject: Some("A question".into()),
        body: format!("where is my order? (message {i})"),
        sent_at: now_millis(),
        meta: None,
        cursor: None,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("BRAID_BENCH_WEBHOOKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    // The receiver: checks each signature (a bad one fails the run) and counts.
    let count = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let (c, b) = (Arc::clone(&count), Arc::clone(&bad));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (c, b) = (Arc::clone(&c), Arc::clone(&b));
                async move {
                    let h = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let ts: i64 = h("x-braid-timestamp").parse().unwrap_or(0);
                    if sign(SECRET.as_bytes(), ts, &body) != h("x-braid-signature") {
                        b.fetch_add(1, Ordering::Relaxed);
                    }
                    c.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.sqlite3");
    let eps = vec![WebhookConfig {
        name: "bench".into(),
        url,
        events: EventFilter::Kinds(vec!["message_in".into()]),
        secret: SecretSource::Plain(SECRET.into()),
        timeout_ms: 10_000,
    }];
    let filters = vec![("bench".to_string(), eps[0].events.clone())];
    let mut store = Store::open(&path).unwrap();
    store.derive_webhooks(&filters, now_millis()).unwrap();
    let t = Instant::now();
    for i in 0..n {
        ingest(&mut store, &message(i), &Settings::default()).unwrap();
    }
    println!(
        "stored {n} customer messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 1. Queueing.
    let t = Instant::now();
    let queued = store.derive_webhooks(&filters, now_millis()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(queued, n);
    println!(
        "queueing: {queued} deliveries in {:.0} ms, {:.0} deliveries/s",
        secs * 1000.0,
        queued as f64 / secs
    );

    // 2. Delivering.
    let hooks = Arc::new(Hooks::new(&eps, Backoff::default()));
    let t = Instant::now();
    let d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
    loop {
        let c = store.webhook_counts("bench").unwrap();
        if c.delivered as usize == n {
            break;
        }
        assert_eq!(c.failed + c.failing, 0, "{c:?}");
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "not delivered in 10 min: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(d);
    assert_eq!(bad.load(Ordering::Relaxed), 0, "bad signatures");
    assert!(count.load(Ordering::Relaxed) >= n);
    println!(
        "delivering: {n} signed deliveries to a local receiver in {secs:.2} s, {:.0} \
         deliveries/s ({} in flight)",
        n as f64 / secs,
        hooks.concurrency
    );
}
