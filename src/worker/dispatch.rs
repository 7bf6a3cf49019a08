//! The outbox dispatcher: claims due replies, hands each to its channel's [`Outbound`] with an
//! overall timeout, and records the result (`sent`, or `failed` with the reason and whether it
//! will be retried). A few sends run at once; the store work runs on blocking threads.

use crate::channels::{Outbound, SendError, Sent};
use crate::model::{Channel, MessageId, now_millis};
use crate::store::{OutboxItem, Store};
use anyhow::Context;
use futures::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinSet;

/// One store connection shared by the worker's tasks; only ever locked on blocking threads.
pub(crate) type SharedStore = Arc<Mutex<Store>>;

/// Run `f` with the store on a blocking thread (the store's connection is not `Sync`, and disk
/// I/O has no business on the async threads).
pub(crate) async fn with_store<T, E, F>(store: &SharedStore, f: F) -> anyhow::Result<T>
where
    F: FnOnce(&mut Store) -> Result<T, E> + Send + 'static,
    E: Into<anyhow::Error> + Send + 'static,
    T: Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard).map_err(Into::into)
    })
    .await
    .context("store task failed")?
}

/// The registered senders, one per channel.
#[derive(Clone, Default)]
pub struct Senders {
    by_channel: HashMap<Channel, Arc<dyn Outbound>>,
}

impl Senders {
    pub fn new(senders: impl IntoIterator<Item = Arc<dyn Outbound>>) -> Senders {
        let mut s = Senders::default();
        for o in senders {
            s.register(o);
        }
        s
    }

    /// Register (or replace) the sender of `o.channel()`.
    pub fn register(&mut self, o: Arc<dyn Outbound>) {
        self.by_channel.insert(o.channel(), o);
    }

    pub fn get(&self, channel: Channel) -> Option<Arc<dyn Outbound>> {
        self.by_channel.get(&channel).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_channel.is_empty()
    }
}

/// Why a reply on `channel` cannot go anywhere.
pub fn no_sender_reason(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "no email account configured",
        Channel::Telegram => "no Telegram bot configured",
        Channel::WebChat => "no web chat configured",
        Channel::WhatsApp => "no WhatsApp number configured",
        Channel::Instagram => "no Instagram account configured",
        Channel::Messenger => "no Messenger page configured",
        Channel::Sms => "no SMS number configured",
        Channel::Phone => "call logs cannot be answered: reply on another channel",
        Channel::Event => "external events cannot be answered: reply on another channel",
    }
}

/// What became of one claimed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Failed {
        reason: String,
        retry: bool,
    },
    /// It may have reached the customer and the channel cannot tell: left for an agent.
    Unclear {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// The overall time one send may take.
    pub send_timeout: Duration,
    /// A claimed item still `sending` after this long (its process died) is claimed again.
    pub stale_ms: i64,
    /// How many sends run at once.
    pub max_in_flight: usize,
    /// Who the delivery events name.
    pub actor: String,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            send_timeout: Duration::from_secs(30),
            stale_ms: 2 * 60 * 1000,
            max_in_flight: 4,
            actor: "worker".to_string(),
        }
    }
}

/// The result of one finished send task: the message and what happened, or why it could not be
/// recorded.
pub type Done = (MessageId, Result<Outcome, String>);

pub struct Dispatcher {
    store: SharedStore,
    senders: Senders,
    settings: DispatchSettings,
    in_flight: JoinSet<Done>,
    /// The first claim after taking the lease also takes items left `sending` by the previous
    /// holder at once: the lease proves that process no longer runs the channels.
    reclaim_now: bool,
    /// The outbox counts seen by the last [`Dispatcher::fill`]: (queued or sending, failed).
    counts: (i64, i64),
}

impl Dispatcher {
    pub fn new(store: SharedStore, senders: Senders, settings: DispatchSettings) -> Dispatcher {
        Dispatcher {
            store,
            senders,
            settings,
            in_flight: JoinSet::new(),
            reclaim_now: true,
            counts: (0, 0),
        }
    }

    pub fn set_senders(&mut self, senders: Senders) {
        self.senders = senders;
    }

    pub fn senders(&self) -> &Senders {
        &self.senders
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// (queued or sending, failed for good) as of the last [`Dispatcher::fill`].
    pub fn counts(&self) -> (i64, i64) {
        self.counts
    }

    /// Claim due items up to the free send slots and start sending them. Only takes the write
    /// lock when the outbox holds more than what is already in flight. Returns how many started.
    pub async fn fill(&mut self) -> anyhow::Result<usize> {
        let free = self
            .settings
            .max_in_flight
            .max(1)
            .saturating_sub(self.in_flight.len());
        let busy = self.in_flight.len() as i64;
        let stale_ms = if self.reclaim_now {
            0
        } else {
            self.settings.stale_ms
        };
        let (counts, items) = with_store(&self.store, move |s| {
            let counts = s.outbox_counts()?;
            let items = if free > 0 && counts.0 > busy {
                s.claim_outbox(now_millis(), stale_ms, free)?
            } else {
                Vec::new()
            };
            Ok::<_, crate::store::StoreError>((counts, items))
        })
        .await
        .context("outbox")?;
        self.counts = counts;
        self.reclaim_now = false;
        let n = items.len();
        for item in items {
            let store = Arc::clone(&self.store);
            let sender = self.senders.get(item.channel);
            let timeout = self.settings.send_timeout;
            let actor = self.settings.actor.clone();
            self.in_flight.spawn(async move {
                let id = item.message_id;
                let out = deliver(&store, sender, item, timeout, &actor)
                    .await
                    .map_err(|e| format!("{e:#}"));
                (id, out)
            });
        }
        Ok(n)
    }

    /// Wait for one in-flight send to finish (`None` when nothing is in flight).
    pub async fn next_done(&mut self) -> Option<Done> {
        match self.in_flight.join_next().await? {
            Ok(done) => Some(done),
            // The item stays `sending` and is claimed again once stale.
            Err(e) => Some((MessageId(0), Err(format!("send task failed: {e}")))),
        }
    }

    /// Send everything due now, and wait until it is all recorded (tests, one-shot tools).
    pub async fn run_until_idle(&mut self) -> anyhow::Result<Vec<Done>> {
        let mut done = Vec::new();
        loop {
            let started = self.fill().await?;
            if started == 0 && self.in_flight.is_empty() {
                return Ok(done);
            }
            if let Some(d) = self.next_done().await {
                done.push(d);
            }
        }
    }

    /// Stop: let in-flight sends finish for up to `grace`, then abandon the rest (they stay
    /// `sending` and the next lease holder sends them again).
    pub async fn drain(&mut self, grace: Duration) {
        let finish = async {
            while let Some(done) = self.next_done().await {
                log_done(&done);
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            tracing::warn!(
                abandoned = self.in_flight.len(),
                "worker stopping with sends in flight"
            );
            self.in_flight.abort_all();
            while self.in_flight.join_next().await.is_some() {}
        }
    }
}

pub(crate) fn log_done((id, out): &Done) {
    match out {
        Ok(Outcome::Sent) => tracing::debug!(message = id.0, "sent"),
        Ok(Outcome::Failed { reason, retry }) => {
            tracing::info!(message = id.0, retry, "send failed: {reason}")
        }
        Ok(Outcome::Unclear { reason }) => {
            tracing::warn!(message = id.0, "send unclear: {reason}")
        }
        Err(e) => tracing::warn!(message = id.0, "cannot record a send: {e}"),
    }
}

/// Send one item and record the result. The only error is failing to record it.
pub async fn deliver(
    store: &SharedStore,
    sender: Option<Arc<dyn Outbound>>,
    item: OutboxItem,
    timeout: Duration,
    actor: &str,
) -> anyhow::Result<Outcome> {
    let resend_is_safe = sender.as_ref().is_none_or(|s| s.resend_is_safe());
    if item.resumed && !resend_is_safe {
        // An earlier attempt never reported back: it may have reached the customer.
        let reason = format!(
            "may have been sent: braid stopped while sending it and {} cannot be asked; {UNCLEAR_ADVICE}",
            item.channel.label()
        );
        return record_unclear(store, item.message_id, reason, actor).await;
    }
    let result: Result<Sent, SendError> = match &sender {
        None => Err(SendError {
            reason: no_sender_reason(item.channel).to_string(),
            retry: false,
            may_have_sent: false,
        }),
        Some(s) => {
            let send = AssertUnwindSafe(s.send(&item)).catch_unwind();
            match tokio::time::timeout(timeout, send).await {
                Ok(Ok(r)) => r,
                Ok(Err(_panic)) => Err(SendError {
                    reason: format!("the {} sender crashed", item.channel),
                    retry: true,
                    may_have_sent: false,
                }),
                Err(_elapsed) => Err(SendError {
                    reason: format!(
                        "{} did not answer within {} s",
                        item.channel,
                        timeout.as_secs_f32()
                    ),
                    retry: true,
                    may_have_sent: true,
                }),
            }
        }
    };
    let id = item.message_id;
    let actor = actor.to_string();
    match result {
        Ok(sent) => {
            let account = if sent.account.is_empty() {
                item.account.clone()
            } else {
                sent.account
            };
            with_store(store, move |s| {
                let at = now_millis();
                match s.mark_sent(id, &account, sent.external_id.as_deref(), &actor, at) {
                    // The message is out: whatever the trouble with its external id, it must be
                    // recorded as sent, or it would be sent again once stale.
                    Err(e) if sent.external_id.is_some() => {
                        tracing::warn!(message = id.0, "recording the channel's id failed: {e}");
                        s.mark_sent(id, &account, None, &actor, at)
                    }
                    other => other,
                }
            })
            .await
            .with_context(|| format!("recording message #{id} as sent"))?;
            Ok(Outcome::Sent)
        }
        Err(e) if e.may_have_sent && !resend_is_safe => {
            let reason = format!(
                "may have been sent ({}) and {} cannot be asked; {UNCLEAR_ADVICE}",
                e.reason,
                item.channel.label()
            );
            record_unclear(store, id, reason, &actor).await
        }
        Err(e) => {
            let reason = e.reason.clone();
            let unreachable = sender.as_ref().is_some_and(|s| s.unreachable(&e));
            let (kind, recipient) = (item.channel.identity_kind(), item.recipient.clone());
            with_store(store, move |s| {
                if unreachable {
                    s.mark_unreachable(kind, &recipient, &reason, &actor, now_millis())?;
                }
                s.mark_failed(id, &reason, e.retry, &actor, now_millis())
            })
            .await
            .with_context(|| format!("recording message #{id} as failed"))?;
            Ok(Outcome::Failed {
                reason: e.reason,
                retry: e.retry,
            })
        }
    }
}

/// What an agent does about an unclear send.
const UNCLEAR_ADVICE: &str = "check with the customer, then :retry to send it again";

async fn record_unclear(
    store: &SharedStore,
    id: MessageId,
    reason: String,
    actor: &str,
) -> anyhow::Result<Outcome> {
    let (actor, why) = (actor.to_string(), reason.clone());
    with_store(store, move |s| {
        s.mark_unclear(id, &why, &actor, now_millis())
    })
    .await
    .with_context(|| format!("recording message #{id} as unclear"))?;
    Ok(Outcome::Unclear { reason })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::channels::SendFuture;
    use crate::identity::Claim;
    use crate::ingest::{self, Inbound};
    use crate::model::{ConversationId, Delivery, Direction, IdentityKind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sender that answers from a script.
    struct Fake {
        channel: Channel,
        answer: Result<Sent, SendError>,
        delay: Duration,
        calls: AtomicUsize,
    }

    impl Fake {
        fn new(channel: Channel, answer: Result<Sent, SendError>) -> Arc<Fake> {
            Arc::new(Fake {
                channel,
                answer,
                delay: Duration::ZERO,
                calls: AtomicUsize::new(0),
            })
        }
    }

    impl Outbound for Fake {
        fn channel(&self) -> Channel {
            self.channel
        }
        fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                self.answer.clone().map(|sent| Sent {
                    external_id: sent
                        .external_id
                        .map(|x| x.replace('@', &format!("-{}@", item.message_id))),
                    ..sent
                })
            })
        }
    }

    fn ok(external: &str) -> Result<Sent, SendError> {
        Ok(Sent {
            account: "support@shop.example".into(),
            external_id: Some(external.into()),
        })
    }

    fn err(reason: &str, retry: bool) -> Result<Sent, SendError> {
        Err(SendError {
            reason: reason.into(),
            retry,
            may_have_sent: false,
        })
    }

    fn conversation(store: &mut Store, kind: IdentityKind, who: &str) -> ConversationId {
        let channel = match kind {
            IdentityKind::Telegram => Channel::Telegram,
            IdentityKind::WebChat => Channel::WebChat,
            _ => Channel::Email,
        };
        let msg = Inbound {
            channel,
            account: String::new(),
            external_id: format!("ext-{who}"),
            direction: Direction::In,
            customer: Claim::new(kind, who),
            linked: vec![],
            customer_name: Some("Ann".into()),
            author: None,
            subject: Some("Order 1234".into()),
            body: "Where is my order?".into(),
            sent_at: now_millis() - 60_000,
            meta: None,
            cursor: None,
        };
        match ingest::ingest(store, &msg, &ingest::Settings::default()).unwrap() {
            ingest::Ingested::Stored { conversation, .. } => conversation,
            other => panic!("not stored: {other:?}"),
        }
    }

    fn setup(kind: IdentityKind, who: &str, channel: Channel) -> (SharedStore, MessageId) {
        let mut store = Store::open_in_memory().unwrap();
        let conv = conversation(&mut store, kind, who);
        let id = store
            .queue_reply(conv, channel, "bob", "It ships today.", now_millis())
            .unwrap();
        (Arc::new(Mutex::new(store)), id)
    }

    fn settings() -> DispatchSettings {
        DispatchSettings {
            send_timeout: Duration::from_millis(200),
            ..DispatchSettings::default()
        }
    }

    fn get<T>(store: &SharedStore, f: impl FnOnce(&Store) -> T) -> T {
        f(&store.lock().unwrap())
    }

    #[tokio::test]
    async fn a_successful_send_marks_the_message_sent_and_empties_the_outbox() {
        let (store, id) = setup(IdentityKind::Email, "ann@example.com", Channel::Email);
        let fake = Fake::new(Channel::Email, ok("<m1@shop.example>"));
        let mut d = Dispatcher::new(store.clone(), Senders::new([fake.clone() as _]), settings());
        let done = d.run_until_idle().await.unwrap();
        assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        let m = get(&store, |s| s.message(id).unwrap());
        assert_eq!(m.delivery, Some(Delivery::Sent));
        assert_eq!(m.delivery_error, None);
        assert_eq!(m.account, "support@shop.example");
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (0, 0));
        // Nothing left: a second round sends nothing.
        assert!(d.run_until_idle().await.unwrap().is_empty());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        let kinds: Vec<String> = get(&store, |s| s.events_since(crate::model::EventId(0), 100))
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.last().map(String::as_str), Some("delivery_changed"));
    }

    #[tokio::test]
    async fn a_retryable_failure_stays_in_the_outbox_with_backoff() {
        let (store, id) = setup(IdentityKind::Email, "ann@example.com", Channel::Email);
        let fake = Fake::new(Channel::Email, err("421 try again later", true));
        let mut d = Dispatcher::new(store.clone(), Senders::new([fake.clone() as _]), settings());
        let done = d.run_until_idle().await.unwrap();
        assert_eq!(
            done,
            vec![(
                id,
                Ok(Outcome::Failed {
                    reason: "421 try again later".into(),
                    retry: true
                })
            )]
        );
        let m = get(&store, |s| s.message(id).unwrap());
        assert_eq!(m.delivery, Some(Delivery::Failed));
        assert_eq!(m.delivery_error.as_deref(), Some("421 try again later"));
        // Still queued (pending, waiting for its backoff), not failed for good.
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (1, 0));
        // Not due yet: the next round does not hammer the server.
        assert!(d.run_until_idle().await.unwrap().is_empty());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        assert_eq!(d.counts(), (1, 0));
    }

    #[tokio::test]
    async fn a_permanent_failure_is_failed_until_retried() {
        let (store, id) = setup(IdentityKind::Email, "ann@example.com", Channel::Email);
        let fake = Fake::new(Channel::Email, err("550 no such user", false));
        let mut d = Dispatcher::new(store.clone(), Senders::new([fake.clone() as _]), settings());
        d.run_until_idle().await.unwrap();
        let m = get(&store, |s| s.message(id).unwrap());
        assert_eq!(m.delivery, Some(Delivery::Failed));
        assert_eq!(m.delivery_error.as_deref(), Some("550 no such user"));
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (0, 1));
        assert!(d.run_until_idle().await.unwrap().is_empty());

        // `:retry` puts it back; with a working sender it goes out.
        store
            .lock()
            .unwrap()
            .retry(id, "bob", now_millis())
            .unwrap();
        let fixed = Fake::new(Channel::Email, ok("<m2@shop.example>"));
        d.set_senders(Senders::new([fixed.clone() as _]));
        assert_eq!(
            d.run_until_idle().await.unwrap(),
            vec![(id, Ok(Outcome::Sent))]
        );
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (0, 0));
        assert_eq!(
            get(&store, |s| s.message(id).unwrap()).delivery,
            Some(Delivery::Sent)
        );
    }

    #[tokio::test]
    async fn a_channel_without_a_sender_fails_with_a_clear_reason() {
        let (store, id) = setup(IdentityKind::Telegram, "123456", Channel::Telegram);
        let email = Fake::new(Channel::Email, ok("<x@y>"));
        let mut d = Dispatcher::new(
            store.clone(),
            Senders::new([email.clone() as _]),
            settings(),
        );
        let done = d.run_until_idle().await.unwrap();
        assert_eq!(
            done,
            vec![(
                id,
                Ok(Outcome::Failed {
                    reason: "no Telegram bot configured".into(),
                    retry: false
                })
            )]
        );
        let m = get(&store, |s| s.message(id).unwrap());
        assert_eq!(m.delivery, Some(Delivery::Failed));
        assert_eq!(
            m.delivery_error.as_deref(),
            Some("no Telegram bot configured")
        );
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (0, 1));
        assert_eq!(email.calls.load(Ordering::SeqCst), 0);
        assert_eq!(
            no_sender_reason(Channel::Email),
            "no email account configured"
        );
    }

    #[tokio::test]
    async fn a_send_that_hangs_times_out_and_is_retried_later() {
        let (store, id) = setup(IdentityKind::Email, "ann@example.com", Channel::Email);
        let slow = Arc::new(Fake {
            channel: Channel::Email,
            answer: ok("<late@x>"),
            delay: Duration::from_secs(60),
            calls: AtomicUsize::new(0),
        });
        let mut d = Dispatcher::new(store.clone(), Senders::new([slow as _]), settings());
        let done = d.run_until_idle().await.unwrap();
        assert_eq!(done.len(), 1);
        match &done[0].1 {
            Ok(Outcome::Failed { reason, retry }) => {
                assert!(reason.contains("did not answer"), "{reason}");
                assert!(*retry);
            }
            other => panic!("{other:?}"),
        }
        let m = get(&store, |s| s.message(id).unwrap());
        assert_eq!(m.delivery, Some(Delivery::Failed));
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (1, 0));
    }

    #[tokio::test]
    async fn sends_run_concurrently_up_to_the_limit() {
        let mut store = Store::open_in_memory().unwrap();
        let mut ids = Vec::new();
        for i in 0..6 {
            let conv = conversation(
                &mut store,
                IdentityKind::Email,
                &format!("c{i}@example.com"),
            );
            ids.push(
                store
                    .queue_reply(conv, Channel::Email, "bob", "hi", now_millis())
                    .unwrap(),
            );
        }
        let store = Arc::new(Mutex::new(store));
        let fake = Arc::new(Fake {
            channel: Channel::Email,
            answer: ok("<m@x>"),
            delay: Duration::from_millis(100),
            calls: AtomicUsize::new(0),
        });
        let mut d = Dispatcher::new(store.clone(), Senders::new([fake.clone() as _]), settings());
        assert_eq!(d.fill().await.unwrap(), 4);
        assert_eq!(d.in_flight(), 4);
        // Full: nothing more is claimed until a slot frees up.
        assert_eq!(d.fill().await.unwrap(), 0);
        let done = d.run_until_idle().await.unwrap();
        assert_eq!(done.len(), 6, "{done:?}");
        assert!(
            done.iter().all(|(_, o)| *o == Ok(Outcome::Sent)),
            "{done:?}"
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 6);
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (0, 0));
        for id in ids {
            assert_eq!(
                get(&store, |s| s.message(id).unwrap()).delivery,
                Some(Delivery::Sent)
            );
        }
    }

    /// A sender that reports the same channel id for everything.
    struct SameId;
    impl Outbound for SameId {
        fn channel(&self) -> Channel {
            Channel::Email
        }
        fn send<'a>(&'a self, _item: &'a OutboxItem) -> SendFuture<'a> {
            Box::pin(async { ok("<same@x>") })
        }
    }

    #[tokio::test]
    async fn a_clashing_channel_id_still_records_the_message_as_sent() {
        let mut store = Store::open_in_memory().unwrap();
        let mut ids = Vec::new();
        for who in ["a@example.com", "b@example.com"] {
            let conv = conversation(&mut store, IdentityKind::Email, who);
            ids.push(
                store
                    .queue_reply(conv, Channel::Email, "bob", "hi", now_millis())
                    .unwrap(),
            );
        }
        let store = Arc::new(Mutex::new(store));
        let mut d = Dispatcher::new(
            store.clone(),
            Senders::new([Arc::new(SameId) as _]),
            settings(),
        );
        let done = d.run_until_idle().await.unwrap();
        assert!(
            done.iter().all(|(_, o)| *o == Ok(Outcome::Sent)),
            "{done:?}"
        );
        assert_eq!(get(&store, |s| s.outbox_counts().unwrap()), (0, 0));
        for id in ids {
            assert_eq!(
                get(&store, |s| s.message(id).unwrap()).delivery,
                Some(Delivery::Sent)
            );
        }
    }

    #[tokio::test]
    async fn items_left_sending_by_a_dead_holder_are_taken_over_at_once() {
        let (store, id) = setup(IdentityKind::Email, "ann@example.com", Channel::Email);
        // A previous lease holder claimed it and died mid-send.
        let claimed = store
            .lock()
            .unwrap()
            .claim_outbox(now_millis(), 60_000, 10)
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let fake = Fake::new(Channel::Email, ok("<m@x>"));
        let mut d = Dispatcher::new(store.clone(), Senders::new([fake as _]), settings());
        assert_eq!(
            d.run_until_idle().await.unwrap(),
            vec![(id, Ok(Outcome::Sent))]
        );
    }
}
