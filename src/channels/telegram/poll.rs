//! Receiving: long polling `getUpdates` through teloxide's requester (not its polling listener),
//! so braid decides when an update counts as delivered.
//!
//! One round is [`Poller::fetch`] (ask for updates from the saved offset) then
//! [`Poller::commit`] (ingest every message of the batch and save the next offset, in ONE
//! transaction). Telegram forgets updates only once a later `getUpdates` asks for a higher
//! offset, so a process killed between the two fetches the same batch again on restart (no
//! loss), and ingest's idempotence on the external id keeps any replay from duplicating.

use super::Telegram;
use super::convert;
use crate::ingest::{self, IngestError};
use crate::model::{Channel, now_millis};
use crate::store::{CsatOutcome, Store};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;

/// The cursor key of the next `getUpdates` offset.
pub const OFFSET_KEY: &str = "offset";

/// Why a round failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    /// 409: another process polls this bot (or a webhook is set).
    #[error(
        "409 conflict: another program is polling this bot (or a webhook is set); braid backs off"
    )]
    Conflict(String),
    /// 429 on getUpdates.
    #[error("rate limited by Telegram, retry in {}s", .0.as_secs())]
    RetryAfter(Duration),
    /// The token could not be read, or the bot set up.
    #[error("{0}")]
    Setup(String),
    /// Telegram refused (bad token...): its description.
    #[error("{0}")]
    Api(String),
    #[error("network: {0}")]
    Network(String),
    #[error("store: {0}")]
    Store(String),
}

impl From<RequestError> for PollError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => {
                PollError::Conflict(e.to_string())
            }
            RequestError::Api(ApiError::Unknown(ref d)) if d.starts_with("Conflict") => {
                PollError::Conflict(d.clone())
            }
            RequestError::RetryAfter(s) => PollError::RetryAfter(s.duration()),
            RequestError::Api(a) => {
                PollError::Api(crate::sanitize::for_terminal_line(&a.to_string()).into_owned())
            }
            RequestError::Network(n) => PollError::Network(n.to_string()),
            other => PollError::Network(other.to_string()),
        }
    }
}

/// Updates fetched but not committed yet.
#[derive(Debug, Clone)]
pub struct Batch {
    pub updates: Vec<Update>,
}

impl Batch {
    /// The offset that confirms every update of the batch.
    pub fn next_offset(&self) -> Option<i64> {
        self.updates.iter().map(|u| i64::from(u.id.0) + 1).max()
    }
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// New messages stored.
    pub stored: usize,
    /// Messages already stored (a replay).
    pub duplicates: usize,
    /// Updates braid does not ingest (groups, other update kinds) or that failed to ingest.
    pub skipped: usize,
    /// Survey answers recorded (a tap on the survey's inline keyboard).
    pub answers: usize,
}

/// A callback query to answer once its batch is committed: its id and the text shown.
type Answer = (teloxide::types::CallbackQueryId, &'static str);

/// What the customer sees after tapping a survey button.
const THANKS: &str = "Thank you for your feedback!";
const ALREADY: &str = "Thanks, we already have your answer.";
const NOT_A_SURVEY: &str = "This survey is closed.";

/// The receiving half of a bot, with its own store connection.
pub struct Poller {
    tg: Arc<Telegram>,
    store: Arc<Mutex<Store>>,
}

impl Poller {
    pub fn new(tg: Arc<Telegram>, store: Store) -> Poller {
        Poller {
            tg,
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// The saved offset (None: never polled).
    pub async fn offset(&self) -> Result<Option<i64>, PollError> {
        let store = Arc::clone(&self.store);
        let account = self.tg.account().to_string();
        let v = tokio::task::spawn_blocking(move || {
            let s = store.lock().unwrap_or_else(PoisonError::into_inner);
            s.cursor(Channel::Telegram.as_str(), &account, OFFSET_KEY)
        })
        .await
        .map_err(|e| PollError::Store(e.to_string()))?
        .map_err(|e| PollError::Store(e.to_string()))?;
        Ok(v.and_then(|v| v.trim().parse().ok()))
    }

    /// One `getUpdates` from the saved offset, waiting up to `timeout` seconds for news.
    pub async fn fetch(&self, timeout: u32) -> Result<Batch, PollError> {
        let offset = self.offset().await?;
        let bots = self
            .tg
            .bots()
            .await
            .map_err(|e| PollError::Setup(e.to_string()))?;
        let mut req = bots
            .plain
            .get_updates()
            .timeout(timeout)
            .allowed_updates(vec![
                AllowedUpdate::Message,
                AllowedUpdate::EditedMessage,
                AllowedUpdate::CallbackQuery,
            ]);
        if let Some(o) = offset {
            req = req.offset(i32::try_from(o).unwrap_or(i32::MAX));
        }
        let updates = req.await?;
        Ok(Batch { updates })
    }

    /// Ingest a batch and save its next offset, in one transaction.
    pub async fn commit(&self, batch: Batch) -> Result<Committed, PollError> {
        let Some(next) = batch.next_offset() else {
            return Ok(Committed::default());
        };
        let store = Arc::clone(&self.store);
        let account = self.tg.account().to_string();
        let settings = self.tg.settings.clone();
        let (done, answers) = tokio::task::spawn_blocking(move || {
            let mut s = store.lock().unwrap_or_else(PoisonError::into_inner);
            commit_batch(&mut s, &batch, &account, next, &settings)
        })
        .await
        .map_err(|e| PollError::Store(e.to_string()))?
        .map_err(|e| PollError::Store(e.to_string()))?;
        // Telegram shows a spinner on the button until the query is answered. After the
        // commit: a failure here loses only the toast, never the answer.
        if !answers.is_empty() {
            let bots = self
                .tg
                .bots()
                .await
                .map_err(|e| PollError::Setup(e.to_string()))?;
            for (id, text) in answers {
                if let Err(e) = bots.plain.answer_callback_query(id).text(text).await {
                    tracing::debug!("telegram: answerCallbackQuery: {e}");
                }
            }
        }
        Ok(done)
    }

    /// Fetch and commit once.
    pub async fn poll_once(&self, timeout: u32) -> Result<Committed, PollError> {
        let batch = self.fetch(timeout).await?;
        self.commit(batch).await
    }

    /// `getMe`: the bot's @username, for the status line.
    pub async fn whoami(&self) -> Result<String, PollError> {
        let bots = self
            .tg
            .bots()
            .await
            .map_err(|e| PollError::Setup(e.to_string()))?;
        let me = bots.plain.get_me().await?;
        // The server's answer, escaped: it goes into the status line and the log.
        let name = match &me.user.username {
            Some(u) => format!("@{u}"),
            None => me.user.first_name.clone(),
        };
        Ok(crate::sanitize::for_terminal_line(&name).into_owned())
    }
}

fn commit_batch(
    s: &mut Store,
    batch: &Batch,
    account: &str,
    next: i64,
    settings: &ingest::Settings,
) -> Result<(Committed, Vec<Answer>), IngestError> {
    let mut tx = s.write()?;
    let now = now_millis();
    let next = next.to_string();
    let mut done = Committed::default();
    let mut answers = Vec::new();
    for u in &batch.updates {
        if let UpdateKind::CallbackQuery(q) = &u.kind {
            // A tap on a survey button: counted when the tapper is the surveyed customer.
            let text = match q.data.as_deref().and_then(crate::csat::parse_button) {
                Some((conv, score)) => {
                    let sp = tx.savepoint()?;
                    match sp.record_csat_button(
                        conv,
                        score,
                        "",
                        Channel::Telegram,
                        now,
                        crate::model::IdentityKind::Telegram,
                        &q.from.id.0.to_string(),
                    ) {
                        Ok(outcome) => {
                            sp.commit()?;
                            match outcome {
                                CsatOutcome::Recorded => {
                                    done.answers += 1;
                                    THANKS
                                }
                                CsatOutcome::AlreadyAnswered => ALREADY,
                                CsatOutcome::NoSurvey => NOT_A_SURVEY,
                            }
                        }
                        Err(e) => {
                            sp.rollback()?;
                            tracing::warn!(update = u.id.0, "telegram: survey answer: {e}");
                            NOT_A_SURVEY
                        }
                    }
                }
                None => {
                    done.skipped += 1;
                    NOT_A_SURVEY
                }
            };
            answers.push((q.id.clone(), text));
            continue;
        }
        let cursor = Some((OFFSET_KEY.to_string(), next.clone()));
        let Some(msg) = convert::to_inbound(u, account, cursor) else {
            tracing::debug!(update = u.id.0, "telegram: update skipped");
            done.skipped += 1;
            continue;
        };
        // One bad message must not block the ones after it forever: it is skipped (and
        // logged) without undoing the others.
        let sp = tx.savepoint()?;
        match ingest::ingest_in(&sp, &msg, settings, now) {
            Ok(ingest::Ingested::Stored { .. }) => {
                sp.commit()?;
                done.stored += 1;
            }
            Ok(ingest::Ingested::Duplicate { .. }) => {
                sp.commit()?;
                done.duplicates += 1;
            }
            Err(e) => {
                sp.rollback()?;
                tracing::warn!(update = u.id.0, "telegram: message not ingested: {e}");
                done.skipped += 1;
            }
        }
    }
    tx.set_cursor(Channel::Telegram.as_str(), account, OFFSET_KEY, &next)?;
    tx.commit()?;
    Ok((done, answers))
}

/// How long to wait after a failed round.
fn backoff(e: &PollError, failures: u32) -> Duration {
    let exp = |base: u64, max: u64| Duration::from_secs((base << failures.min(6)).min(max));
    match e {
        PollError::Conflict(_) => exp(30, 300),
        PollError::RetryAfter(d) => *d + Duration::from_secs(1),
        PollError::Setup(_) | PollError::Api(_) => exp(30, 600),
        PollError::Network(_) | PollError::Store(_) => exp(2, 60),
    }
}

/// The poller loop of the worker's leader: runs until `stop` says so (or its sender is gone).
pub async fn run(tg: Arc<Telegram>, store_path: PathBuf, mut stop: watch::Receiver<bool>) {
    let poller = loop {
        let path = store_path.clone();
        match tokio::task::spawn_blocking(move || Store::open(&path)).await {
            Ok(Ok(s)) => break Poller::new(Arc::clone(&tg), s),
            Ok(Err(e)) => tg.set_status(format!("telegram: cannot open the store: {e}")),
            Err(e) => tg.set_status(format!("telegram: cannot open the store: {e}")),
        }
        if sleep_or_stop(&mut stop, Duration::from_secs(5)).await {
            return;
        }
    };
    let mut name: Option<String> = None;
    let mut failures: u32 = 0;
    loop {
        if name.is_none() {
            match poller.whoami().await {
                Ok(n) => name = Some(n),
                Err(e) => {
                    let wait = backoff(&e, failures);
                    failures = failures.saturating_add(1);
                    tg.set_status(format!("telegram: {e} (retry in {}s)", wait.as_secs()));
                    if sleep_or_stop(&mut stop, wait).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let who = name.as_deref().unwrap_or("bot");
        let round = tokio::select! {
            _ = stop.changed() => return,
            r = poller.fetch(tg.config.poll_timeout) => r,
        };
        // Once fetched, a batch is committed even when asked to stop: it is one short
        // transaction, and stopping between fetch and commit would only replay it.
        let result = match round {
            Ok(batch) => poller.commit(batch).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(done) => {
                failures = 0;
                if done.stored > 0 {
                    tracing::info!(
                        stored = done.stored,
                        duplicates = done.duplicates,
                        "telegram: messages received"
                    );
                }
                tg.set_status(format!("telegram: {who} polling"));
            }
            Err(e) => {
                let wait = backoff(&e, failures);
                failures = failures.saturating_add(1);
                let text = match &e {
                    PollError::Conflict(_) => format!(
                        "telegram: {who} 409 conflict: another program is polling this bot \
                         (or a webhook is set); braid backs off, next try in {}s",
                        wait.as_secs()
                    ),
                    other => format!("telegram: {other} (retry in {}s)", wait.as_secs()),
                };
                tracing::warn!("{text}");
                tg.set_status(text);
                if sleep_or_stop(&mut stop, wait).await {
                    return;
                }
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Sleep `d` unless asked to stop first. True: stop.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        _ = tokio::time::sleep(d) => false,
    }
}
