//! The web chat's own store connection, on a thread of its own: visitor messages go through
//! [`crate::ingest`], many to a transaction when they arrive together (a savepoint each, so one
//! bad message does not take its neighbours down).

use crate::identity::Claim;
use crate::ingest::{self, Inbound, Ingested, Settings};
use crate::model::{Channel, ContactId, ConversationId, Delivery, Direction, IdentityKind};
use crate::store::Store;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// Messages written in one transaction at most.
const BATCH: usize = 256;

type IngestReply = oneshot::Sender<Result<Ingested, String>>;

enum Job {
    Ingest(Box<Inbound>, IngestReply),
    EmailOf(ContactId, oneshot::Sender<Result<Option<String>, String>>),
    Note(ConversationId, String, oneshot::Sender<Result<(), String>>),
    /// A visitor is back: replies that failed while they were away are sent again now.
    Returned(String),
}

#[derive(Clone)]
pub(crate) struct Db {
    jobs: mpsc::Sender<Job>,
}

const GONE: &str = "the web chat's store thread stopped";

impl Db {
    /// Open a connection to the store file and start its thread (blocking: call off the
    /// async threads). The thread ends when every handle is dropped.
    pub fn start(store_path: &Path, settings: Settings) -> anyhow::Result<Db> {
        let store = Store::open(store_path)?;
        let (jobs, rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("braid-webchat-store".into())
            .spawn(move || run(store, rx, settings))?;
        Ok(Db { jobs })
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Job,
    ) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(job(tx))
            .await
            .map_err(|_| GONE.to_string())?;
        rx.await.map_err(|_| GONE.to_string())?
    }

    pub async fn ingest(&self, msg: Inbound) -> Result<Ingested, String> {
        self.ask(|tx| Job::Ingest(Box::new(msg), tx)).await
    }

    /// The contact's newest email address, if any.
    pub async fn email_of(&self, contact: ContactId) -> Result<Option<String>, String> {
        self.ask(|tx| Job::EmailOf(contact, tx)).await
    }

    pub async fn note(&self, conv: ConversationId, text: String) -> Result<(), String> {
        self.ask(|tx| Job::Note(conv, text, tx)).await
    }

    pub fn returned(&self, visitor: &str) {
        let _ = self.jobs.try_send(Job::Returned(visitor.to_string()));
    }
}

fn run(mut store: Store, mut rx: mpsc::Receiver<Job>, settings: Settings) {
    let mut batch: Vec<(Box<Inbound>, IngestReply)> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Ingest(m, tx) => batch.push((m, tx)),
                other => {
                    // Keep the order: messages before this job are written first.
                    flush(&mut store, &mut batch, &settings);
                    other_job(&mut store, other);
                }
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        flush(&mut store, &mut batch, &settings);
    }
}

fn flush(store: &mut Store, batch: &mut Vec<(Box<Inbound>, IngestReply)>, settings: &Settings) {
    if batch.is_empty() {
        return;
    }
    let now = crate::model::now_millis();
    let mut results: Vec<Result<Ingested, String>> = Vec::with_capacity(batch.len());
    let committed = (|| -> Result<(), crate::store::StoreError> {
        let mut tx = store.write()?;
        for (m, _) in batch.iter() {
            let mut sp = tx.savepoint()?;
            match ingest::ingest_in(&sp, m, settings, now) {
                Ok(done) => {
                    sp.commit()?;
                    results.push(Ok(done));
                }
                Err(e) => {
                    sp.rollback()?;
                    drop(sp);
                    results.push(Err(e.to_string()));
                }
            }
        }
        tx.commit()?;
        Ok(())
    })();
    match committed {
        Ok(()) => {
            for ((_, reply), r) in batch.drain(..).zip(results) {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            tracing::warn!("web chat: cannot store visitor messages: {e}");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(format!("cannot store the message: {e}")));
            }
        }
    }
}

fn other_job(store: &mut Store, job: Job) {
    match job {
        Job::Ingest(..) => {}
        Job::EmailOf(contact, tx) => {
            let _ = tx.send(
                store
                    .recipient(contact, Channel::Email)
                    .map_err(|e| e.to_string()),
            );
        }
        Job::Note(conv, text, tx) => {
            let r = store
                .add_note(conv, "web chat", &text, crate::model::now_millis())
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = tx.send(r);
        }
        Job::Returned(visitor) => {
            if let Err(e) = resend_waiting(store, &visitor) {
                tracing::warn!("web chat: cannot resend replies for a returning visitor: {e}");
            }
        }
    }
}

/// Replies on web chat that failed because this visitor was away are queued again.
fn resend_waiting(store: &mut Store, visitor: &str) -> crate::store::Result<()> {
    let Some(contact) = store.contact_by_identity(IdentityKind::WebChat, visitor)? else {
        return Ok(());
    };
    // Replies go to the contact's newest visitor id: only that visitor's return counts.
    if store.recipient(contact, Channel::WebChat)?.as_deref() != Some(visitor) {
        return Ok(());
    }
    let failed: Vec<_> = store
        .timeline(contact, None, 50)?
        .into_iter()
        .filter(|m| {
            m.channel == Channel::WebChat
                && m.direction == Direction::Out
                && m.delivery == Some(Delivery::Failed)
        })
        .map(|m| m.id)
        .collect();
    for id in failed {
        let _ = store.retry(id, "web chat", crate::model::now_millis());
    }
    Ok(())
}

/// The inbound message of a visitor.
pub(crate) fn inbound(visitor: &str, client_id: &str, text: &str, email: Option<&str>) -> Inbound {
    Inbound {
        channel: Channel::WebChat,
        account: String::new(),
        external_id: format!("{visitor}:{client_id}"),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::WebChat, visitor),
        linked: email
            .map(|e| vec![Claim::new(IdentityKind::Email, e)])
            .unwrap_or_default(),
        // The visitor's name as braid shows it: the email they gave, else "Visitor 1a2b3c4d"
        // (only ever replaces a placeholder name, never a contact's real one).
        customer_name: Some(
            email
                .and_then(|e| crate::identity::normalize(IdentityKind::Email, e).ok())
                .unwrap_or_else(|| crate::identity::fallback_name(IdentityKind::WebChat, visitor)),
        ),
        author: None,
        subject: None,
        body: text.to_string(),
        sent_at: crate::model::now_millis(),
        meta: None,
        cursor: None,
    }
}
