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

/// A visitor message: the message, and the email the visitor typed (a claim, normalized).
pub(crate) struct VisitorMessage {
    pub inbound: Inbound,
    pub claim: Option<String>,
}

/// Where a reply to a visitor who left may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EmailReach {
    /// The contact's newest verified email (an identity), if any.
    pub verified: Option<String>,
    /// Emails the visitor typed that nobody verified: never written to.
    pub claimed: Vec<String>,
}

enum Job {
    Ingest(Box<VisitorMessage>, IngestReply),
    EmailOf(ContactId, oneshot::Sender<Result<EmailReach, String>>),
    Note(ConversationId, String, oneshot::Sender<Result<(), String>>),
    /// A survey answer: visitor, survey, score, comment.
    Csat(
        String,
        ConversationId,
        u8,
        String,
        oneshot::Sender<Result<crate::store::CsatOutcome, String>>,
    ),
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

    pub async fn ingest(&self, msg: VisitorMessage) -> Result<Ingested, String> {
        self.ask(|tx| Job::Ingest(Box::new(msg), tx)).await
    }

    /// The contact's verified email and its unverified claims.
    pub async fn email_of(&self, contact: ContactId) -> Result<EmailReach, String> {
        self.ask(|tx| Job::EmailOf(contact, tx)).await
    }

    pub async fn note(&self, conv: ConversationId, text: String) -> Result<(), String> {
        self.ask(|tx| Job::Note(conv, text, tx)).await
    }

    /// Record a visitor's survey answer (counted when the survey is theirs).
    pub async fn csat(
        &self,
        visitor: String,
        survey: ConversationId,
        score: u8,
        comment: String,
    ) -> Result<crate::store::CsatOutcome, String> {
        self.ask(|tx| Job::Csat(visitor, survey, score, comment, tx))
            .await
    }

    pub fn returned(&self, visitor: &str) {
        let _ = self.jobs.try_send(Job::Returned(visitor.to_string()));
    }
}

fn run(mut store: Store, mut rx: mpsc::Receiver<Job>, settings: Settings) {
    let mut batch: Vec<(Box<VisitorMessage>, IngestReply)> = Vec::new();
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

fn flush(
    store: &mut Store,
    batch: &mut Vec<(Box<VisitorMessage>, IngestReply)>,
    settings: &Settings,
) {
    if batch.is_empty() {
        return;
    }
    let now = crate::model::now_millis();
    let mut results: Vec<Result<Ingested, String>> = Vec::with_capacity(batch.len());
    let committed = (|| -> Result<(), crate::store::StoreError> {
        let mut tx = store.write()?;
        for (m, _) in batch.iter() {
            let sp = tx.savepoint()?;
            let done = ingest::ingest_in(&sp, &m.inbound, settings, now).map_err(|e| e.to_string());
            let done = match (done, &m.claim) {
                (Ok(d @ Ingested::Stored { contact, .. }), Some(claim)) => sp
                    .record_claim(contact, IdentityKind::Email, claim, "web chat", now)
                    .map(|_| d)
                    .map_err(|e| e.to_string()),
                (d, _) => d,
            };
            match done {
                Ok(done) => {
                    sp.commit()?;
                    results.push(Ok(done));
                }
                Err(e) => {
                    sp.rollback()?;
                    results.push(Err(e));
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
            let reach = (|| -> crate::store::Result<EmailReach> {
                Ok(EmailReach {
                    verified: store.recipient(contact, Channel::Email)?,
                    claimed: store
                        .claims(contact)?
                        .into_iter()
                        .filter(|c| c.kind == IdentityKind::Email)
                        .map(|c| c.value)
                        .collect(),
                })
            })();
            let _ = tx.send(reach.map_err(|e| e.to_string()));
        }
        Job::Note(conv, text, tx) => {
            let r = store
                .add_note(conv, "web chat", &text, crate::model::now_millis())
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = tx.send(r);
        }
        Job::Csat(visitor, survey, score, comment, tx) => {
            let r = store
                .record_csat_button(
                    survey,
                    score,
                    &comment,
                    Channel::WebChat,
                    crate::model::now_millis(),
                    IdentityKind::WebChat,
                    &visitor,
                )
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

/// The message of a visitor. `verified`: an email the embedding site vouched for (signed): it
/// joins the visitor to that email's contact. `typed`: an email the visitor typed in the widget:
/// only a claim (see [`crate::store::claims`]); the visitor stays their own contact.
pub(crate) fn inbound(
    visitor: &str,
    client_id: &str,
    text: &str,
    typed: Option<&str>,
    verified: Option<&str>,
) -> VisitorMessage {
    let verified = verified.and_then(|e| crate::identity::normalize(IdentityKind::Email, e).ok());
    let claim = typed
        .and_then(|e| crate::identity::normalize(IdentityKind::Email, e).ok())
        .filter(|c| Some(c) != verified.as_ref());
    VisitorMessage {
        inbound: Inbound {
            channel: Channel::WebChat,
            account: String::new(),
            external_id: format!("{visitor}:{client_id}"),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::WebChat, visitor),
            linked: verified
                .iter()
                .map(|e| Claim::new(IdentityKind::Email, e.as_str()))
                .collect(),
            // The visitor's name as braid shows it: the verified email, else "Visitor 1a2b3c4d"
            // (only ever replaces a placeholder name, never a contact's real one). A typed,
            // unverified address is never the name: the agent would take it for proof.
            customer_name: Some(
                verified.clone().unwrap_or_else(|| {
                    crate::identity::fallback_name(IdentityKind::WebChat, visitor)
                }),
            ),
            author: None,
            subject: None,
            body: text.to_string(),
            sent_at: crate::model::now_millis(),
            meta: None,
            cursor: None,
        },
        claim,
    }
}
