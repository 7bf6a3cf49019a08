//! Several REAL processes on one store file: the change feed, the worker lease, concurrent
//! writers. The test binary re-executes itself as the child process: `mp_child` does nothing in
//! a normal run and plays a child's part when `BRAID_MP_CHILD` names one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::feed::{FeedUpdate, spawn_feed};
use braid::identity::Claim;
use braid::ingest::{self, Inbound, Ingested};
use braid::model::{Channel, ConversationId, Direction, IdentityKind, now_millis};
use braid::store::{DB_FILE, Store};
use braid::worker::{self, Role, WorkerOptions};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "BRAID_MP_CHILD";
const DIR_ENV: &str = "BRAID_MP_DIR";
const ARG_ENV: &str = "BRAID_MP_ARG";
/// What a child says for the parent follows this tag (the test harness prints too).
const TAG: &str = "MP:";

fn child(part: &str, dir: &Path, arg: &str) -> Child {
    // Every child's stdin is a pipe from this process, so it can notice when the parent is gone.
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mp_child", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, part)
        .env(DIR_ENV, dir)
        .env(ARG_ENV, arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The next line the child tagged, without the tag.
fn tagged_line(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    for line in lines {
        let line = line.unwrap();
        // The harness may have started the line ("test mp_child ... ").
        if let Some(at) = line.find(TAG) {
            return line[at + TAG.len()..].to_string();
        }
    }
    panic!("the child ended without saying anything");
}

fn wait_ok(mut c: Child) {
    let status = c.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
}

/// A store with one conversation to write notes on.
fn workspace(dir: &Path) -> (Store, ConversationId) {
    let mut store = Store::open_dir(dir).unwrap();
    let msg = Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: "<first@example.com>".into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, "ann@example.com"),
        linked: vec![],
        customer_name: Some("Ann".into()),
        author: None,
        subject: Some("Where is my order?".into()),
        body: "Hello, order 1234 has not arrived.".into(),
        sent_at: now_millis(),
        meta: None,
        cursor: None,
    };
    let Ingested::Stored { conversation, .. } =
        ingest::ingest(&mut store, &msg, &ingest::Settings::default()).unwrap()
    else {
        panic!("duplicate")
    };
    (store, conversation)
}

/// The child's side. Each part prints its results tagged and exits (0 = all good).
#[test]
fn mp_child() {
    let Ok(part) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let arg = std::env::var(ARG_ENV).unwrap_or_default();
    let code = match part.as_str() {
        // Write `n` notes, one every 100 ms, each stamped with its write time.
        "notes" => {
            let (conv, n) = arg.split_once(',').unwrap();
            let conv = ConversationId(conv.parse().unwrap());
            let mut store = Store::open_dir(&dir).unwrap();
            for i in 0..n.parse::<usize>().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                store
                    .add_note(conv, "child", &format!("note {i}"), now_millis())
                    .unwrap();
            }
            println!("{TAG}done");
            0
        }
        // Take the worker lease, say so, then wait to be killed.
        "leader" => {
            // Leave with the parent: its end of our stdin closes when it drops the Child.
            std::thread::spawn(|| {
                let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                std::process::exit(1);
            });
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let mut opts = WorkerOptions::new(&dir);
                opts.lease_retry = Duration::from_millis(100);
                let mut w = worker::spawn_with(opts).unwrap();
                let leading = tokio::time::timeout(
                    Duration::from_secs(20),
                    w.status.wait_for(|s| s.role == Role::Leader),
                )
                .await;
                if matches!(leading, Ok(Ok(_))) {
                    println!("{TAG}leader {}", std::process::id());
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
            });
            1
        }
        // Wait for the start signal, then write `n` notes as fast as possible, each in its own
        // BEGIN IMMEDIATE transaction; any error (SQLITE_BUSY included) fails the child.
        "writer" => {
            let (conv, n) = arg.split_once(',').unwrap();
            let conv = ConversationId(conv.parse().unwrap());
            let mut store = Store::open_dir(&dir).unwrap();
            println!("{TAG}ready");
            let go = dir.join("go");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !go.exists() {
                assert!(Instant::now() < deadline, "no start signal");
                std::thread::sleep(Duration::from_millis(2));
            }
            let mut errors = 0;
            for i in 0..n.parse::<usize>().unwrap() {
                let text = format!("writer {} note {i}", std::process::id());
                if let Err(e) = store.add_note(conv, "writer", &text, now_millis()) {
                    eprintln!("writer {}: {e}", std::process::id());
                    errors += 1;
                }
            }
            println!("{TAG}errors {errors}");
            if errors == 0 { 0 } else { 2 }
        }
        other => {
            eprintln!("unknown child part {other}");
            3
        }
    };
    std::process::exit(code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_another_process_reaches_the_change_feed_within_250ms() {
    let dir = tempfile::tempdir().unwrap();
    let (store, conv) = workspace(dir.path());
    let start = store.last_event_id().unwrap();
    let mut feed = spawn_feed(dir.path().join(DB_FILE), start, Duration::from_millis(100));
    const NOTES: usize = 5;
    let c = child("notes", dir.path(), &format!("{},{NOTES}", conv.0));

    let mut seen = 0;
    let mut worst = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < NOTES {
        let left = deadline.saturating_duration_since(Instant::now());
        let update: FeedUpdate = tokio::time::timeout(left, feed.recv())
            .await
            .expect("the child's notes never reached the feed")
            .unwrap();
        let arrived = now_millis();
        assert_eq!(update.error, None);
        for e in &update.events {
            assert_eq!(e.kind, "note");
            assert_eq!(e.actor, "child");
            assert_eq!(e.conversation_id, Some(conv));
            // `at` is stamped before the commit, so this over-estimates the delay.
            worst = worst.max(arrived - e.at);
            seen += 1;
        }
    }
    eprintln!("feed: slowest of {NOTES} notes from another process arrived after {worst} ms");
    assert!(
        worst <= 250,
        "a change took {worst} ms to reach the other process"
    );
    tokio::task::spawn_blocking(move || wait_ok(c))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_lease_moves_to_another_process_when_the_holder_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    drop(workspace(dir.path()));

    // The child takes the lease first.
    let mut c = child("leader", dir.path(), "");
    let stdout = c.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        tagged_line(&mut lines)
    })
    .await
    .unwrap();
    assert_eq!(line, format!("leader {}", c.id()));

    // This process cannot: it follows, and knows who leads.
    let mut opts = WorkerOptions::new(dir.path());
    opts.lease_retry = Duration::from_millis(1000);
    let mut w = worker::spawn_with(opts).unwrap();
    let follower = tokio::time::timeout(
        Duration::from_secs(10),
        w.status.wait_for(|s| s.role != Role::Starting),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert_eq!(follower.role, Role::Follower, "{follower:?}");
    assert_eq!(
        follower.summary(),
        format!("worker: follower (pid {} runs channels)", c.id())
    );
    // ... and stays a follower while the child lives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.status.borrow().role, Role::Follower);

    // SIGKILL: no chance to clean up; the kernel drops the flock.
    c.kill().unwrap();
    let killed = Instant::now();
    c.wait().unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.status.wait_for(|s| s.role == Role::Leader),
    )
    .await
    .expect("nobody took the lease over")
    .unwrap();
    let took = killed.elapsed();
    eprintln!("lease: taken over {took:?} after the holder was killed");
    assert!(took <= Duration::from_secs(2), "takeover took {took:?}");
    assert_eq!(
        braid::worker::holder_pid(dir.path()),
        Some(std::process::id())
    );
    w.shutdown().await;
}

#[test]
fn concurrent_writers_in_four_processes_lose_nothing() {
    const PROCS: usize = 4;
    const NOTES: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (store, conv) = workspace(dir.path());
    let start = store.last_event_id().unwrap();

    let mut children = Vec::new();
    for _ in 0..PROCS {
        let mut c = child("writer", dir.path(), &format!("{},{NOTES}", conv.0));
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        assert_eq!(tagged_line(&mut lines), "ready");
        children.push((c, lines));
    }
    std::fs::write(dir.path().join("go"), b"").unwrap();
    for (c, mut lines) in children {
        assert_eq!(tagged_line(&mut lines), "errors 0");
        wait_ok(c);
    }

    let events = store.events_since(start, 10 * PROCS * NOTES).unwrap();
    assert_eq!(events.len(), PROCS * NOTES);
    assert!(events.iter().all(|e| e.kind == "note"));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    // Every note is in the timeline, each writer's in its own order.
    let contact = store.conversation(conv).unwrap().contact_id;
    let timeline = store.timeline(contact, None, 10 * PROCS * NOTES).unwrap();
    let notes: Vec<_> = timeline
        .iter()
        .filter(|m| m.direction == Direction::Note)
        .collect();
    assert_eq!(notes.len(), PROCS * NOTES);
    let mut bodies: Vec<&str> = notes.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), PROCS * NOTES);
}
