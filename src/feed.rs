//! The change feed: follows the store's append-only events table so a change made by ANY
//! process (another agent's TUI, the CLI, the worker) reaches this one within a poll interval.
//!
//! Cheap when idle: each poll is one `PRAGMA data_version` (it changes whenever another
//! connection commits to the file); only then are the new events read. [`Feed`] is the
//! synchronous core (testable without timing); [`spawn_feed`] runs it on its own thread with its
//! own connection and delivers [`FeedUpdate`]s over a channel.

use crate::model::EventId;
use crate::store::{EventRow, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How many events one read takes; a poll reads batches until it has caught up.
const BATCH: usize = 1000;

/// New events, oldest first, and the id to follow from. A poll that failed comes as an update
/// with no events and `error` set (the feed keeps trying; the next good update has `error: None`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedUpdate {
    pub events: Vec<EventRow>,
    pub last: EventId,
    pub error: Option<String>,
}

/// The synchronous core: one connection, the last event seen, the last `data_version` seen.
pub struct Feed {
    store: Store,
    last: EventId,
    data_version: Option<i64>,
}

impl Feed {
    /// Follow `path` from just after `start_after`.
    pub fn open(path: &Path, start_after: EventId) -> Result<Feed, StoreError> {
        Ok(Feed::new(Store::open(path)?, start_after))
    }

    /// Follow with a connection of your own (it must not be the one making the changes:
    /// `data_version` only moves for other connections' commits).
    pub fn new(store: Store, start_after: EventId) -> Feed {
        Feed {
            store,
            last: start_after,
            data_version: None,
        }
    }

    /// The newest event delivered so far.
    pub fn last(&self) -> EventId {
        self.last
    }

    /// Any events since the last poll? The first poll always reads (events may have been
    /// written between `start_after` and opening the feed).
    pub fn poll(&mut self) -> Result<Option<FeedUpdate>, StoreError> {
        let version = self.store.data_version()?;
        if self.data_version == Some(version) {
            return Ok(None);
        }
        // Read the version first: a commit landing during the reads below moves it again, so
        // the next poll looks once more and nothing is missed.
        let mut events = Vec::new();
        loop {
            let batch = self.store.events_since(self.last, BATCH)?;
            let full = batch.len() == BATCH;
            if let Some(e) = batch.last() {
                self.last = e.id;
            }
            events.extend(batch);
            if !full {
                break;
            }
        }
        self.data_version = Some(version);
        if events.is_empty() {
            return Ok(None);
        }
        Ok(Some(FeedUpdate {
            events,
            last: self.last,
            error: None,
        }))
    }
}

/// Follow the store at `store_path` on a thread of its own, checking every `interval` (the TUI
/// uses 100 ms). Updates arrive on the returned channel; the thread ends when the receiver is
/// dropped. Works with or without a tokio runtime.
pub fn spawn_feed(
    store_path: PathBuf,
    start_after: EventId,
    interval: Duration,
) -> mpsc::Receiver<FeedUpdate> {
    let (tx, rx) = mpsc::channel(64);
    let thread_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("braid-feed".into())
        .spawn(move || follow(store_path, start_after, interval, thread_tx));
    if let Err(e) = spawned {
        let _ = tx.try_send(FeedUpdate {
            events: Vec::new(),
            last: start_after,
            error: Some(format!("cannot start the change feed: {e}")),
        });
    }
    rx
}

fn follow(path: PathBuf, start_after: EventId, interval: Duration, tx: mpsc::Sender<FeedUpdate>) {
    let mut feed: Option<Feed> = None;
    let mut last = start_after;
    let mut failing: Option<String> = None;
    while !tx.is_closed() {
        let result = match feed.as_mut() {
            Some(f) => f.poll(),
            None => match Feed::open(&path, last) {
                Ok(f) => feed.insert(f).poll(),
                Err(e) => Err(e),
            },
        };
        let update = match result {
            Ok(Some(u)) => {
                last = u.last;
                failing = None;
                Some(u)
            }
            Ok(None) if failing.is_some() => {
                failing = None;
                Some(FeedUpdate {
                    events: Vec::new(),
                    last,
                    error: None,
                })
            }
            Ok(None) => None,
            Err(e) => {
                let text = format!("change feed: {e}");
                // Start over with a fresh connection next time; report each new error once.
                feed = None;
                if failing.as_deref() == Some(text.as_str()) {
                    None
                } else {
                    tracing::warn!("{text}");
                    failing = Some(text.clone());
                    Some(FeedUpdate {
                        events: Vec::new(),
                        last,
                        error: Some(text),
                    })
                }
            }
        };
        if let Some(u) = update
            && tx.blocking_send(u).is_err()
        {
            return;
        }
        let pause = if failing.is_some() {
            interval.max(Duration::from_secs(1))
        } else {
            interval
        };
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::Claim;
    use crate::ingest::{self, Inbound, Ingested};
    use crate::model::{Channel, Direction, IdentityKind, now_millis};
    use std::time::Instant;

    fn inbound(n: usize) -> Inbound {
        Inbound {
            channel: Channel::Email,
            account: String::new(),
            external_id: format!("<m{n}@example.com>"),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Email, "ann@example.com"),
            linked: vec![],
            customer_name: Some("Ann".into()),
            author: None,
            subject: Some("Refund".into()),
            body: format!("message {n}"),
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        }
    }

    fn kinds(u: &FeedUpdate) -> Vec<&str> {
        u.events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_write_by_another_connection_shows_in_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Store::open_dir(dir.path()).unwrap();
        let start = writer.last_event_id().unwrap();
        let mut feed = Feed::open(&dir.path().join(crate::store::DB_FILE), start).unwrap();
        assert_eq!(feed.poll().unwrap(), None);
        assert_eq!(feed.poll().unwrap(), None);

        let Ingested::Stored { conversation, .. } =
            ingest::ingest(&mut writer, &inbound(1), &ingest::Settings::default()).unwrap()
        else {
            panic!("duplicate")
        };
        let u = feed.poll().unwrap().unwrap();
        assert_eq!(kinds(&u), ["conversation_created", "message_in"]);
        assert_eq!(u.last, writer.last_event_id().unwrap());
        assert_eq!(u.error, None);
        assert_eq!(u.events[1].conversation_id, Some(conversation));
        assert_eq!(feed.poll().unwrap(), None);

        writer
            .add_note(conversation, "bob", "called her", now_millis())
            .unwrap();
        let u = feed.poll().unwrap().unwrap();
        assert_eq!(kinds(&u), ["note"]);
        assert_eq!(u.events[0].actor, "bob");
        assert_eq!(feed.last(), u.last);
        assert_eq!(feed.poll().unwrap(), None);
    }

    #[test]
    fn the_first_poll_reads_what_was_written_before_the_feed_opened() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Store::open_dir(dir.path()).unwrap();
        let start = writer.last_event_id().unwrap();
        ingest::ingest(&mut writer, &inbound(1), &ingest::Settings::default()).unwrap();
        let mut feed = Feed::open(&dir.path().join(crate::store::DB_FILE), start).unwrap();
        assert_eq!(
            kinds(&feed.poll().unwrap().unwrap()),
            ["conversation_created", "message_in"]
        );
    }

    #[test]
    fn a_large_backlog_comes_in_one_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Store::open_dir(dir.path()).unwrap();
        let mut feed = Feed::open(&dir.path().join(crate::store::DB_FILE), EventId(0)).unwrap();
        assert_eq!(feed.poll().unwrap(), None);
        let tx = writer.write().unwrap();
        for n in 0..2500 {
            ingest::ingest_in(&tx, &inbound(n), &ingest::Settings::default(), now_millis())
                .unwrap();
        }
        tx.commit().unwrap();
        let u = feed.poll().unwrap().unwrap();
        // One conversation, 2500 messages.
        assert_eq!(u.events.len(), 2501);
        assert!(u.events.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(u.last, writer.last_event_id().unwrap());
    }

    #[tokio::test]
    async fn the_spawned_feed_delivers_and_stops_with_its_receiver() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Store::open_dir(dir.path()).unwrap();
        let start = writer.last_event_id().unwrap();
        let mut rx = spawn_feed(
            dir.path().join(crate::store::DB_FILE),
            start,
            Duration::from_millis(20),
        );
        // Let the feed open and see the empty log first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        ingest::ingest(&mut writer, &inbound(1), &ingest::Settings::default()).unwrap();
        let u = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(kinds(&u), ["conversation_created", "message_in"]);
        drop(rx);
    }
}
