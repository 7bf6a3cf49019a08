//! The store as a file: migrations (including upgrading a file made by an older schema),
//! WAL, refusing a newer file, and several connections (and processes) on one file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::identity::Claim;
use braid::ingest::{self, Inbound, Ingested, Settings};
use braid::model::{Channel, ContactId, ConversationId, Direction, EventId, IdentityKind, Status};
use braid::store::{QueueAnchor, QueueFilter, SearchQuery, Store, StoreError, schema};
use rusqlite::Connection;
use std::path::Path;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn email(ext: &str, from: &str, body: &str, at: i64) -> Inbound {
    Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: ext.into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, from),
        linked: Vec::new(),
        customer_name: None,
        author: None,
        subject: Some("Order question".into()),
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn put(store: &mut Store, msg: &Inbound) -> Ingested {
    ingest::ingest(store, msg, &Settings::default()).unwrap()
}

fn user_version(path: &Path) -> i64 {
    let c = Connection::open(path).unwrap();
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_fresh_file_is_current_and_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let store = Store::open_dir(&data).unwrap();
    let path = data.join(braid::store::DB_FILE);
    assert!(path.is_file());
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
    assert_eq!(schema::CURRENT_VERSION, schema::MIGRATIONS.len() as i64);
    drop(store);
    assert_eq!(user_version(&path), schema::CURRENT_VERSION);
    // WAL is a property of the file: a plain connection sees it.
    let c = Connection::open(&path).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Reopening an up-to-date file changes nothing.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
}

#[test]
fn a_file_with_only_v1_is_upgraded_in_place_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    {
        // What a braid built with schema version 1 left behind.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::V1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO contacts(id, name, vip, created_at, last_seen, last_channel)
                 VALUES (1, 'Ann Lee', 1, {T0}, {T0}, 'email');
             INSERT INTO identities(contact_id, kind, value, source, created_at)
                 VALUES (1, 'email', 'ann@x.org', 'email', {T0});
             INSERT INTO conversations(id, contact_id, status, subject, channels, last_channel,
                     last_activity, last_preview, message_count, created_at)
                 VALUES (7, 1, 'open', 'Broken zipper', 'email', 'email', {T0}, 'The zipper broke', 1, {T0});
             INSERT INTO messages(id, conversation_id, contact_id, channel, account, external_id,
                     direction, author, subject, body, created_at, stored_at)
                 VALUES (11, 7, 1, 'email', '', '<old-1@x.org>', 'in', 'Ann Lee', 'Broken zipper',
                     'The zipper broke after one week', {T0}, {T0});
             INSERT INTO tags(conversation_id, tag) VALUES (7, 'returns');
             INSERT INTO events(at, actor, kind, conversation_id, contact_id, message_id)
                 VALUES ({T0}, 'ingest', 'message_in', 7, 1, 11);
             INSERT INTO cursors(channel, account, key, value) VALUES ('email', '', 'INBOX.uid', '41');"
        ))
        .unwrap();
    }
    assert_eq!(user_version(&path), 1);

    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
    let ann = ContactId(1);
    let conv = ConversationId(7);
    // Old rows read back through the current code.
    let c = store.contact(ann).unwrap();
    assert_eq!(
        (c.name.as_str(), c.vip, c.last_channel),
        ("Ann Lee", true, Some(Channel::Email))
    );
    assert_eq!(store.identities(ann).unwrap()[0].value, "ann@x.org");
    assert_eq!(
        store.contacts_page(None, 10).unwrap().len(),
        1,
        "merged_into exists and is NULL"
    );
    let row = store.conversation(conv).unwrap();
    assert_eq!(
        (row.status, row.subject.as_deref()),
        (Status::Open, Some("Broken zipper"))
    );
    assert_eq!(store.conversation_tags(conv).unwrap(), vec!["returns"]);
    let tl = store.timeline(ann, None, 10).unwrap();
    assert_eq!(tl.len(), 1);
    assert_eq!(tl[0].body, "The zipper broke after one week");
    assert_eq!(
        store.cursor("email", "", "INBOX.uid").unwrap().as_deref(),
        Some("41")
    );
    assert_eq!(store.events_since(EventId(0), 10).unwrap().len(), 1);
    // The old full-text index still answers, for old and new rows.
    let hits = store
        .search(&SearchQuery::parse("zipper").unwrap(), 10)
        .unwrap();
    assert_eq!(hits.len(), 1);
    let hits = store
        .search(&SearchQuery::parse("lee").unwrap(), 10)
        .unwrap();
    assert_eq!(
        hits.iter().filter(|h| h.message_id.is_none()).count(),
        1,
        "contact names too"
    );
    // V4 rebuilt the full-text index with prefix indexes and indexed the old identities, V5
    // glued their addresses: short prefixes, `from:` an old address or domain and a date
    // range find the old message.
    for q in [
        "zi*",
        "zip*",
        "from:ann@x",
        "from:ann@x.org",
        "from:x.org",
        "from:lee",
        "after:2025-12-31 before:2026-01-02",
    ] {
        let hits = store.search(&SearchQuery::parse(q).unwrap(), 10).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.message_id).collect::<Vec<_>>(),
            vec![Some(braid::model::MessageId(11))],
            "{q}"
        );
    }
    // What V2 added works on the upgraded file.
    store
        .save_draft(conv, "bob", "reply", Some(Channel::Email), "half done", T0)
        .unwrap();
    assert_eq!(store.draft(conv, "bob").unwrap().unwrap().2, "half done");
    // New messages from the old customer join the old conversation; old ids stay unique.
    let dup = put(
        &mut store,
        &email("<old-1@x.org>", "ann@x.org", "again", T0),
    );
    assert!(matches!(dup, Ingested::Duplicate { message, .. } if message.0 == 11));
    match put(
        &mut store,
        &email("<new-1@x.org>", "Ann@X.org", "any news? zipper", T0 + 1000),
    ) {
        Ingested::Stored {
            conversation,
            contact,
            ..
        } => {
            assert_eq!((conversation, contact), (conv, ann));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .search(&SearchQuery::parse("zipper").unwrap(), 10)
            .unwrap()
            .len(),
        2
    );
    drop(store);
    assert_eq!(user_version(&path), schema::CURRENT_VERSION);
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.sqlite3");
    {
        let store = Store::open(&path).unwrap();
        drop(store);
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", schema::CURRENT_VERSION + 1)
            .unwrap();
    }
    match Store::open(&path) {
        Err(StoreError::TooNew {
            path: p,
            found,
            supported,
        }) => {
            assert_eq!(p, path);
            assert_eq!(found, schema::CURRENT_VERSION + 1);
            assert_eq!(supported, schema::CURRENT_VERSION);
            let msg = StoreError::TooNew {
                path: p,
                found,
                supported,
            }
            .to_string();
            assert!(msg.contains("upgrade braid"), "{msg}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer file was opened"),
    }
    assert_eq!(user_version(&path), schema::CURRENT_VERSION + 1);
}

#[test]
fn a_write_on_one_connection_is_seen_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::open_dir(dir.path()).unwrap();
    let b = Store::open_dir(dir.path()).unwrap();
    let seen = b.last_event_id().unwrap();
    let dv_b = b.data_version().unwrap();
    let dv_a = a.data_version().unwrap();

    let conv = match put(&mut a, &email("<1@x>", "ann@x.org", "hello from a", T0)) {
        Ingested::Stored { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    };
    assert_ne!(
        b.data_version().unwrap(),
        dv_b,
        "the other connection notices the commit"
    );
    assert_eq!(
        a.data_version().unwrap(),
        dv_a,
        "its own commits do not count"
    );
    let events = b.events_since(seen, 100).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["conversation_created", "message_in"]);
    assert_eq!(b.conversation(conv).unwrap().last_preview, "hello from a");
    assert_eq!(
        b.queue_page(&QueueFilter::All, QueueAnchor::Top, 10)
            .unwrap()
            .len(),
        1
    );

    // And back: b writes, a sees it.
    let mut b = b;
    let dv_a = a.data_version().unwrap();
    let seen = a.last_event_id().unwrap();
    b.assign(conv, Some("bob"), "bob", T0).unwrap();
    assert_ne!(a.data_version().unwrap(), dv_a);
    assert_eq!(
        a.conversation(conv).unwrap().assignee.as_deref(),
        Some("bob")
    );
    assert_eq!(a.events_since(seen, 10).unwrap()[0].kind, "assigned");
}

#[test]
fn opening_and_reading_never_waits_for_a_writer() {
    // `braid search` or a second TUI while an import or sync holds the write lock: opening a
    // current store is a read, so it answers at once instead of queueing behind the batch
    // (and failing with BUSY after the busy timeout when the batch is long).
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::open_dir(dir.path()).unwrap();
    put(&mut a, &email("<1@x>", "ann@x.org", "refund please", T0));
    let path = dir.path().join(braid::store::DB_FILE);
    let writer = Connection::open(&path).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute("UPDATE contacts SET name = 'held' WHERE id = 1", [])
        .unwrap();

    let started = std::time::Instant::now();
    let b = Store::open_dir(dir.path()).unwrap();
    let hits = b
        .search(&SearchQuery::parse("refund").unwrap(), 10)
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "open + search waited {:?} for the writer",
        started.elapsed()
    );
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn concurrent_writers_on_one_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    Store::open_dir(dir.path()).unwrap();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let d = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut s = Store::open_dir(&d).unwrap();
                for i in 0..40 {
                    // Every writer writes to the same customer, so they contend for the same rows.
                    let m = email(
                        &format!("<{w}-{i}@x>"),
                        "ann@x.org",
                        &format!("w{w} m{i}"),
                        T0 + i,
                    );
                    put(&mut s, &m);
                    if i % 10 == 0 {
                        let conv = s.active_conversation(ContactId(1)).unwrap().unwrap();
                        s.add_note(conv, &format!("agent{w}"), "busy", T0 + i)
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let s = Store::open_dir(dir.path()).unwrap();
    assert_eq!(s.contacts_page(None, 10).unwrap().len(), 1);
    let conv = s.active_conversation(ContactId(1)).unwrap().unwrap();
    assert_eq!(s.conversation(conv).unwrap().message_count, 3 * 40 + 3 * 4);
    assert_eq!(s.queue_count(&QueueFilter::All).unwrap(), 1);
}

/// Run by [`another_process_sees_a_write_in_its_change_feed`] as a child process.
#[test]
#[ignore = "helper: runs as a child process of another test"]
fn child_process_writer() {
    let Ok(dir) = std::env::var("BRAID_TEST_CHILD_STORE") else {
        return;
    };
    let mut s = Store::open_dir(Path::new(&dir)).unwrap();
    put(
        &mut s,
        &email("<child@x>", "child@x.org", "written by another process", T0),
    );
}

#[test]
fn another_process_sees_a_write_in_its_change_feed() {
    let dir = tempfile::tempdir().unwrap();
    let reader = Store::open_dir(dir.path()).unwrap();
    let seen = reader.last_event_id().unwrap();
    let dv = reader.data_version().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_writer",
            "--ignored",
            "--quiet",
            "--test-threads=1",
        ])
        .env("BRAID_TEST_CHILD_STORE", dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_ne!(reader.data_version().unwrap(), dv);
    let events = reader.events_since(seen, 10).unwrap();
    assert!(events.iter().any(|e| e.kind == "message_in"), "{events:?}");
    let hits = reader
        .search(&SearchQuery::parse("another process").unwrap(), 10)
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[test]
fn many_processes_opening_a_fresh_file_at_once_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|i| {
                let d = dir.path().to_path_buf();
                let b = barrier.clone();
                std::thread::spawn(move || {
                    b.wait();
                    let mut s = Store::open_dir(&d).unwrap();
                    put(
                        &mut s,
                        &email(&format!("<{i}@x>"), &format!("p{i}@x.org"), "hi", T0),
                    );
                    s.schema_version().unwrap()
                })
            })
            .collect();
        for o in openers {
            assert_eq!(o.join().unwrap(), schema::CURRENT_VERSION, "round {round}");
        }
        let s = Store::open_dir(dir.path()).unwrap();
        assert_eq!(s.queue_count(&QueueFilter::All).unwrap(), 6);
    }
}
