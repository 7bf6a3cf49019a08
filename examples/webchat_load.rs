//! Load test of the website live chat, on loopback: N concurrent widget connections (default
//! 1,000) each say hello, send a few messages (each one stored through ingest before its ack), and
//! then receive an agent reply pushed through the web chat's `Outbound`. Prints connections,
//! errors, and latency percentiles. Bounded in time (2 minutes at most).
//!
//!     cargo run --release --example webchat_load [-- CONNECTIONS [MESSAGES_EACH]]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::webchat::protocol::ServerFrame;
use braid::channels::webchat::{Options, WebChatConfig, WebChatServer};
use braid::model::{Channel, IdentityKind, now_millis};
use braid::store::Store;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const LIMIT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Report {
    connected: AtomicUsize,
    errors: AtomicUsize,
    acked: AtomicUsize,
    pushed: AtomicUsize,
    done_sending: AtomicUsize,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        v.len(),
        pct(&v, 0.50),
        pct(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

enum Lat {
    Ack(f64),
    Push(f64),
    Visitor(String),
}

async fn client(
    addr: SocketAddr,
    n: usize,
    messages: usize,
    mut go: watch::Receiver<bool>,
    report: Arc<Report>,
    out: mpsc::UnboundedSender<Lat>,
) -> Result<(), String> {
    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{addr}")).map_err(|e| e.to_string())?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    ws.send(Message::Text(r#"{"type":"hello","visitor":null}"#.into()))
        .await
        .map_err(|e| e.to_string())?;
    let visitor = match next(&mut ws).await? {
        ServerFrame::Welcome { visitor, .. } => visitor.split('.').next().unwrap_or("").to_string(),
        other => return Err(format!("expected welcome: {other:?}")),
    };
    report.connected.fetch_add(1, Ordering::Relaxed);
    let _ = out.send(Lat::Visitor(visitor));
    go.wait_for(|g| *g).await.map_err(|e| e.to_string())?;
    // Spread the first messages over a second, like real visitors.
    tokio::time::sleep(Duration::from_millis((n as u64 * 7919) % 1000)).await;
    for i in 0..messages {
        let id = format!("c{n}x{i}");
        let t = Instant::now();
        let frame = format!(
            r#"{{"type":"msg","id":"{id}","text":"load test message {i} from visitor {n}"}}"#
        );
        ws.send(Message::Text(frame.into()))
            .await
            .map_err(|e| e.to_string())?;
        match next(&mut ws).await? {
            ServerFrame::Ack { id: got } if got == id => {
                let _ = out.send(Lat::Ack(t.elapsed().as_secs_f64() * 1000.0));
                report.acked.fetch_add(1, Ordering::Relaxed);
            }
            other => return Err(format!("expected ack: {other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.done_sending.fetch_add(1, Ordering::Relaxed);
    // Then the agent's reply.
    match next(&mut ws).await? {
        ServerFrame::Msg { at, .. } => {
            let _ = out.send(Lat::Push((now_millis() - at) as f64));
            report.pushed.fetch_add(1, Ordering::Relaxed);
        }
        other => return Err(format!("expected the agent reply: {other:?}")),
    }
    let _ = ws.close(None).await;
    Ok(())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Result<ServerFrame, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Err(_) => return Err("no frame within 60 s".into()),
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(t.as_str()).map_err(|e| e.to_string());
            }
            Ok(Some(Ok(Message::Close(c)))) => return Err(format!("closed: {c:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("closed".into()),
        }
    }
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    println!("open files limit: {}", lim.rlim_cur);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let connections: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let messages: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    raise_nofile();
    let dir = tempfile::tempdir()?;
    let mut store = Store::open_dir(dir.path())?;
    let config = WebChatConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        // One loopback address plays every visitor: lift the per-address limits.
        ip_messages_per_minute: 1_000_000,
        ip_connections_per_minute: 1_000_000,
        max_connections: connections * 2 + 100,
        max_connections_per_ip: connections * 2 + 100,
        ..WebChatConfig::default()
    };
    let server =
        WebChatServer::start(&Options::new(config, Default::default()), dir.path()).await?;
    let addr = server.addr();
    println!(
        "web chat on {addr}: {connections} connections, {messages} messages each, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let started = Instant::now();
    let report = Arc::new(Report::default());
    let (go_tx, go) = watch::channel(false);
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..connections {
        let (go, report, out) = (go.clone(), Arc::clone(&report), lat_tx.clone());
        tasks.spawn(async move {
            let r = client(addr, n, messages, go, Arc::clone(&report), out).await;
            if let Err(e) = &r
                && report.errors.fetch_add(1, Ordering::Relaxed) < 5
            {
                eprintln!("client {n}: {e}");
            }
        });
    }
    drop(lat_tx);
    let mut visitors = Vec::new();
    let mut acks = Vec::new();
    let mut pushes = Vec::new();
    // Everyone connected (or failed)?
    let deadline = started + LIMIT;
    while report.connected.load(Ordering::Relaxed) + report.errors.load(Ordering::Relaxed)
        < connections
        && Instant::now() < deadline
    {
        while let Ok(l) = lat_rx.try_recv() {
            if let Lat::Visitor(v) = l {
                visitors.push(v);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = started.elapsed();
    println!(
        "connected: {} of {connections} in {:.2} s; open on the server: {} visitors online",
        report.connected.load(Ordering::Relaxed),
        connect_time.as_secs_f64(),
        server.online()
    );
    let _ = go_tx.send(true);
    let sending = Instant::now();
    while report.done_sending.load(Ordering::Relaxed) + report.errors.load(Ordering::Relaxed)
        < connections
        && Instant::now() < deadline
    {
        while let Ok(l) = lat_rx.try_recv() {
            match l {
                Lat::Visitor(v) => visitors.push(v),
                Lat::Ack(ms) => acks.push(ms),
                Lat::Push(ms) => pushes.push(ms),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let send_time = sending.elapsed();
    println!(
        "visitor messages stored and acked: {} in {:.2} s ({:.0}/s); {} still connected",
        report.acked.load(Ordering::Relaxed),
        send_time.as_secs_f64(),
        report.acked.load(Ordering::Relaxed) as f64 / send_time.as_secs_f64(),
        server.online()
    );

    // Agent replies: queued in the store, pushed through the web chat's sender, many at once.
    let outbound = server.outbound(None, None);
    let mut items = Vec::new();
    for v in &visitors {
        let Some(contact) = store.contact_by_identity(IdentityKind::WebChat, v)? else {
            continue;
        };
        let Some(conv) = store.active_conversation(contact)? else {
            continue;
        };
        store.queue_reply(
            conv,
            Channel::WebChat,
            "loadtest",
            "Thanks, an agent is on it.",
            now_millis(),
        )?;
    }
    while items.len() < visitors.len() {
        let got = store.claim_outbox(now_millis(), 60_000, 500)?;
        if got.is_empty() {
            break;
        }
        items.extend(got);
    }
    let sem = Arc::new(Semaphore::new(64));
    let send_errors = Arc::new(AtomicUsize::new(0));
    let mut sends = tokio::task::JoinSet::new();
    for item in items {
        let (o, sem, errs) = (
            Arc::clone(&outbound),
            Arc::clone(&sem),
            Arc::clone(&send_errors),
        );
        sends.spawn(async move {
            let _permit = sem.acquire().await;
            if o.send(&item).await.is_err() {
                errs.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while sends.join_next().await.is_some() {}
    let _ = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    while let Ok(l) = lat_rx.try_recv() {
        match l {
            Lat::Visitor(v) => visitors.push(v),
            Lat::Ack(ms) => acks.push(ms),
            Lat::Push(ms) => pushes.push(ms),
        }
    }
    let stored = visitors
        .iter()
        .filter_map(|v| {
            store
                .contact_by_identity(IdentityKind::WebChat, v)
                .ok()
                .flatten()
        })
        .map(|c| store.timeline(c, None, 100).map(|t| t.len()).unwrap_or(0))
        .sum::<usize>();
    println!(
        "agent replies pushed: {} (send errors {}); messages in the store: {stored}",
        report.pushed.load(Ordering::Relaxed),
        send_errors.load(Ordering::Relaxed)
    );
    summary("visitor message -> stored -> ack latency", acks);
    summary("agent reply -> widget latency", pushes);
    let errors = report.errors.load(Ordering::Relaxed);
    println!(
        "RESULT: {} connections, {} errors, total {:.1} s",
        report.connected.load(Ordering::Relaxed),
        errors,
        started.elapsed().as_secs_f64()
    );
    server.shutdown().await;
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
