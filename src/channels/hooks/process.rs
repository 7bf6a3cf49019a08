//! The two store threads behind the webhooks: the *keeper* writes verified bodies to the
//! inbox (many requests to one transaction: the request waits for the commit, then gets its
//! 200), and the *ingester* empties the inbox into the store, off the request path.

use super::{HookItem, Sources};
use crate::ingest::{self, IngestError, Settings};
use crate::model::{Millis, now_millis};
use crate::store::hooks::{InboxRow, Reported};
use crate::store::{Store, Tx};
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Bodies written (or ingested) in one transaction at most.
const BATCH: usize = 256;
/// A delivery report for a message braid has not recorded as sent (yet: the channel can
/// answer the webhook before the send's own answer is stored) is tried again after 2 s, 4 s,
/// 8 s... (at most 10 minutes apart), and dropped after an hour: it is then about a message
/// braid did not send (one sent from the phone app).
const REPORT_RETRY_MS: Millis = 2_000;
const REPORT_RETRY_MAX_MS: Millis = 10 * 60 * 1000;
const REPORT_PATIENCE_MS: Millis = 3600 * 1000;
/// The ingester looks at the inbox at least this often (a report waiting for its send).
const IDLE: Duration = Duration::from_secs(1);

type Ack = oneshot::Sender<Result<(), String>>;

struct Keep {
    source: String,
    body: Vec<u8>,
    ack: Ack,
}

/// The handle the HTTP handlers hold.
#[derive(Clone)]
pub struct Inbox {
    keep: mpsc::Sender<Keep>,
}

const GONE: &str = "the webhook store thread stopped";

impl Inbox {
    /// Open two connections to the store file and start both threads (blocking: call off the
    /// async threads). They end when every handle is dropped.
    pub fn start(store_path: &Path, sources: Sources, settings: Settings) -> anyhow::Result<Inbox> {
        let keeper = Store::open(store_path)?;
        let ingester = Store::open(store_path)?;
        let (keep, rx) = mpsc::channel(4096);
        let (wake, woken) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("braid-hooks-keep".into())
            .spawn(move || run_keeper(keeper, rx, wake))?;
        std::thread::Builder::new()
            .name("braid-hooks-ingest".into())
            .spawn(move || run_ingester(ingester, woken, sources, settings))?;
        Ok(Inbox { keep })
    }

    /// Keep a verified body; Ok once it is committed to the store.
    pub async fn keep(&self, source: &str, body: Vec<u8>) -> Result<(), String> {
        let (ack, rx) = oneshot::channel();
        self.keep
            .send(Keep {
                source: source.to_string(),
                body,
                ack,
            })
            .await
            .map_err(|_| GONE.to_string())?;
        rx.await.map_err(|_| GONE.to_string())?
    }
}

fn run_keeper(mut store: Store, mut rx: mpsc::Receiver<Keep>, wake: std_mpsc::Sender<()>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(k) => batch.push(k),
                Err(_) => break,
            }
        }
        let items: Vec<(&str, &[u8])> = batch
            .iter()
            .map(|k| (k.source.as_str(), k.body.as_slice()))
            .collect();
        let result = store
            .inbox_push(&items, now_millis())
            .map_err(|e| format!("cannot keep the webhook: {e}"));
        if let Err(e) = &result {
            tracing::warn!("webhooks: {e}");
        }
        for k in batch {
            let _ = k.ack.send(result.clone());
        }
        let _ = wake.send(());
    }
}

fn run_ingester(
    mut store: Store,
    woken: std_mpsc::Receiver<()>,
    sources: Sources,
    settings: Settings,
) {
    loop {
        match drain(&mut store, &sources, &settings, now_millis()) {
            Ok(n) if n >= BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!("webhooks: ingesting the inbox: {e:#}"),
        }
        match woken.recv_timeout(IDLE) {
            Ok(()) => while woken.try_recv().is_ok() {},
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                // The keeper is gone (the server stopped): one last pass, then end.
                let _ = drain(&mut store, &sources, &settings, now_millis());
                return;
            }
        }
    }
}

/// Ingest the inbox's due bodies (one batch, one transaction). Returns how many it looked at.
pub fn drain(
    store: &mut Store,
    sources: &Sources,
    settings: &Settings,
    now: Millis,
) -> anyhow::Result<usize> {
    let due = store.inbox_due(now, BATCH)?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut tx = store.write()?;
    for row in &due {
        apply_row(&mut tx, row, sources, settings, now)?;
    }
    tx.commit()?;
    Ok(due.len())
}

/// What became of one body.
fn apply_row(
    tx: &mut Tx<'_>,
    row: &InboxRow,
    sources: &Sources,
    settings: &Settings,
    now: Millis,
) -> anyhow::Result<()> {
    let Some(source) = sources.get(&row.source) else {
        tracing::warn!(source = %row.source, "webhooks: a kept body of a source no longer configured is dropped");
        return Ok(tx.inbox_done(row.id)?);
    };
    let items = match source.parse(&row.body, row.received_at) {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(source = %row.source, "webhooks: a kept body no longer parses, dropped: {e}");
            return Ok(tx.inbox_done(row.id)?);
        }
    };
    let mut waiting = false;
    for item in &items {
        // One savepoint per item: a bad one does not undo its neighbours.
        let sp = tx.savepoint()?;
        match apply_item(&sp, item, &row.source, settings, now) {
            Ok(Applied::Done) => sp.commit()?,
            Ok(Applied::Wait) => {
                sp.commit()?;
                waiting = true;
            }
            Err(e) => {
                drop(sp);
                tracing::warn!(source = %row.source, "webhooks: an item was not stored: {e}");
            }
        }
    }
    if waiting && now - row.received_at < REPORT_PATIENCE_MS {
        // The items already applied are idempotent (messages by id, reports by rank), so the
        // whole body is simply parsed again next time.
        let wait = (REPORT_RETRY_MS << row.attempts.clamp(0, 20)).min(REPORT_RETRY_MAX_MS);
        tx.inbox_later(
            row.id,
            now + wait,
            "a delivery report for a message braid has not recorded as sent yet",
        )?;
    } else {
        tx.inbox_done(row.id)?;
    }
    Ok(())
}

enum Applied {
    Done,
    /// Try the body again later (a report whose message is not known yet).
    Wait,
}

fn apply_item(
    tx: &Tx<'_>,
    item: &HookItem,
    source: &str,
    settings: &Settings,
    now: Millis,
) -> anyhow::Result<Applied> {
    match item {
        HookItem::Message(msg) => match ingest::ingest_in(tx, msg, settings, now) {
            Ok(_) => Ok(Applied::Done),
            Err(IngestError::Blank) => Ok(Applied::Done),
            Err(e) => Err(e.into()),
        },
        HookItem::Status(r) => {
            let reported = tx.apply_delivery_report(
                r.channel,
                &r.external_id,
                r.delivery,
                r.error.as_deref(),
                source,
                r.at,
            )?;
            Ok(match reported {
                Reported::Unknown => Applied::Wait,
                Reported::Applied(_) | Reported::Stale(_) => Applied::Done,
            })
        }
        HookItem::Consent(c) => {
            let value = crate::identity::normalize(c.kind, &c.value)?;
            tx.set_consent(
                c.channel,
                c.kind,
                &value,
                c.opted_out,
                &c.keyword,
                source,
                c.at,
            )?;
            Ok(Applied::Done)
        }
    }
}
