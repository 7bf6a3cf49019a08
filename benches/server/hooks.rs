//! Section 6, webhooks, on the same server after the team section: signed events
//! (`POST /hooks/events/bench`, HMAC-SHA256 over `TIMESTAMP.BODY`) over real HTTP to the
//! server's web chat listener.
//!
//! - **throughput**: `n` call logs from `n / 4` callers, `concurrency` requests in flight: the
//!   rate the server answers 200 (verified and kept on disk), and end to end: from the first
//!   POST until the inbox is empty (every body ingested into the store: contact, conversation,
//!   message, search index, event).
//! - **webhook → screen**: one signed POST at a time for one caller whose contact is known; the
//!   time from sending it until an agent connection is pushed the event of its message (what
//!   the TUI then draws).

use super::{Errors, Samples};
use braid::api::paths::connect_socket;
use braid::api::{Hello, Incoming};
use braid::channels::hooks::verify::event_sign;
use braid::model::{ContactId, IdentityKind};
use braid::store::Store;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SECRET: &str = "bench-hook-secret";
pub const SECRET_ENV: &str = "BRAID_BENCH_HOOK_SECRET";
/// The config lines that add the bench's event source.
pub const CONFIG: &str =
    "\n[[events]]\nname = \"bench\"\nsecret_env = \"BRAID_BENCH_HOOK_SECRET\"\n";

pub struct Throughput {
    pub n: usize,
    pub accepted: Duration,
    pub ingested: Duration,
    pub post: Samples,
}

fn body(id: &str, phone: &str, i: usize) -> String {
    serde_json::json!({
        "id": id,
        "type": "call",
        "contact": { "phone": phone, "name": format!("Bench caller {phone}") },
        "text": format!("Call {i}: asked about order {}", 10_000 + i),
        "call": { "direction": "in", "from": phone, "duration_s": 30 + i % 600,
                  "outcome": "answered", "agent": "bench" },
    })
    .to_string()
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<Duration, String> {
    let t = Instant::now();
    let ts = braid::model::now_millis() / 1000;
    let sig = event_sign(SECRET.as_bytes(), ts, body.as_bytes());
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-braid-timestamp", ts.to_string())
        .header("x-braid-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("webhook POST: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("webhook POST answered {}", r.status()));
    }
    Ok(t.elapsed())
}

fn phone(i: usize) -> String {
    // Valid German mobile numbers, one per caller.
    format!("+49151{:08}", 10_000_000 + i)
}

/// `n` signed call logs, `concurrency` in flight.
pub async fn throughput(
    web: SocketAddr,
    db: &Path,
    n: usize,
    concurrency: usize,
    errors: &Arc<Errors>,
) -> anyhow::Result<Throughput> {
    let url = format!("http://{web}/hooks/events/bench");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let run = braid::model::now_millis();
    let callers = (n / 4).max(1);
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let url = url.clone();
        let next = Arc::clone(&next);
        let errors = Arc::clone(errors);
        tasks.push(tokio::spawn(async move {
            let mut s = Samples::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return s;
                }
                let b = body(&format!("bench-{run}-{i}"), &phone(i % callers), i);
                match post(&client, &url, b).await {
                    Ok(d) => s.push(d),
                    Err(e) => errors.add(e),
                }
            }
        }));
    }
    let mut post_times = Samples::default();
    for task in tasks {
        post_times.extend(&task.await?);
    }
    let accepted = t.elapsed();
    let store = Store::open(db)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while store.inbox_len()? > 0 {
        if Instant::now() > deadline {
            errors.add("webhooks: the inbox did not empty within 300 s".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(Throughput {
        n,
        accepted,
        ingested: t.elapsed(),
        post: post_times,
    })
}

/// Webhook → the event pushed to an agent connection, `samples` times, one at a time.
pub async fn to_screen(
    sock: &Path,
    web: SocketAddr,
    db: &Path,
    samples: usize,
    errors: &Arc<Errors>,
) -> anyhow::Result<Samples> {
    let url = format!("http://{web}/hooks/events/bench");
    let client = reqwest::Client::new();
    let run = braid::model::now_millis();
    let caller = "+4915199999999";
    // The caller's contact, made by a first call.
    post(&client, &url, body(&format!("lat-{run}-warm"), caller, 0))
        .await
        .map_err(anyhow::Error::msg)?;
    let store = Store::open(db)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let contact: ContactId = loop {
        if let Some(c) = store.contact_by_identity(IdentityKind::Phone, caller)? {
            break c;
        }
        if Instant::now() > deadline {
            anyhow::bail!("the warm-up call never reached the store");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (_conn, mut rx) = connect_socket(sock, Hello::new("hooks bench", None)).await?;
    let mut out = Samples::default();
    for i in 1..=samples {
        let t = Instant::now();
        if let Err(e) = post(&client, &url, body(&format!("lat-{run}-{i}"), caller, i)).await {
            errors.add(e);
            continue;
        }
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match rx.recv().await {
                    Some(Incoming::Events { events, .. })
                        if events
                            .iter()
                            .any(|e| e.contact_id == Some(contact) && e.kind == "message_in") =>
                    {
                        return Ok(t.elapsed());
                    }
                    Some(Incoming::Closed(why)) => return Err(why),
                    Some(_) => continue,
                    None => return Err("connection closed".to_string()),
                }
            }
        })
        .await;
        match seen {
            Ok(Ok(d)) => out.push(d),
            Ok(Err(e)) => errors.add(format!("webhook → screen: {e}")),
            Err(_) => errors.add("webhook → screen: no push within 10 s".into()),
        }
    }
    Ok(out)
}
