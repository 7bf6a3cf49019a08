//! The demo channel: simulated customers, so a demo workspace's queue moves while you watch.
//!
//! A background thread with its own store connection writes, every few seconds, a message from
//! a customer: mostly an existing contact continuing on a channel they use (sometimes switching
//! to another of theirs, or opening the web chat for the first time and typing their email, so
//! the unified timeline grows across channels), sometimes a new web-chat visitor or a new
//! customer on WhatsApp. Everything goes through [`crate::ingest::ingest`], like a real
//! channel.
//!
//! The [`Outbound`] senders of every channel "deliver" a reply after a short latency (and now
//! and then fail with a retryable error, so failures and retries show), and the customer
//! answers 5–20 s later on the same channel. On WhatsApp, Instagram and Messenger the reply
//! is then reported delivered, and read before the customer answers (the channels' delivery
//! reports, applied as a webhook's would be).

use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::demo::rng::Rng;
use crate::demo::text::{self, Ctx, Lang, Stage, TOPICS};
use crate::identity::Claim;
use crate::ingest::{self, Inbound};
use crate::model::{Channel, ContactId, Delivery, Direction, IdentityKind, now_millis};
use crate::store::{OutboxItem, Store};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the simulated customers pace themselves (shortened in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Between two spontaneous customer messages.
    pub interval: (Duration, Duration),
    /// Between a delivered reply and the customer's answer.
    pub answer: (Duration, Duration),
    /// How long a send takes.
    pub latency: (Duration, Duration),
    /// One send in this many fails with a retryable error (0: never).
    pub fail_one_in: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            interval: (Duration::from_secs(3), Duration::from_secs(8)),
            answer: (Duration::from_secs(5), Duration::from_secs(20)),
            latency: (Duration::from_millis(200), Duration::from_millis(800)),
            fail_one_in: 15,
        }
    }
}

/// A customer who will answer a delivered reply.
struct Answer {
    due: Instant,
    channel: Channel,
    recipient: String,
    subject: Option<String>,
    reply: String,
    /// Who sent the reply, as the customer's mail client shows it.
    from: String,
}

/// A delivery report the channel will send about a reply.
struct Report {
    due: Instant,
    channel: Channel,
    external_id: String,
    delivery: Delivery,
    /// Reports that arrive before the worker recorded the send wait and try again.
    tries: u8,
}

enum Cmd {
    Answer(Answer),
    Report(Report),
    Stop,
}

/// What the status line shows, kept by the simulator thread.
#[derive(Default)]
struct Shared {
    /// Customers who wrote in the last few minutes.
    online: AtomicUsize,
    /// Customers about to answer a reply.
    typing: AtomicUsize,
    /// Messages the simulator has written.
    written: AtomicUsize,
    last_error: Mutex<Option<String>>,
}

/// How long a customer counts as "online" after writing.
const ONLINE_FOR: Duration = Duration::from_secs(300);

/// The simulated customers of a demo workspace. Starting it spawns a background thread with its
/// own Store connection; dropping it stops the thread.
pub struct DemoChannels {
    commands: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    senders: Vec<Arc<dyn Outbound>>,
    thread: Option<JoinHandle<()>>,
}

impl DemoChannels {
    pub fn start(store_path: &Path, seed: u64) -> anyhow::Result<DemoChannels> {
        DemoChannels::start_with(store_path, seed, Timing::default())
    }

    pub(crate) fn start_with(
        store_path: &Path,
        seed: u64,
        timing: Timing,
    ) -> anyhow::Result<DemoChannels> {
        let store = Store::open(store_path)?;
        let (commands, inbox) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        // The live demo differs from run to run; the seed keeps its flavour.
        let run = crate::demo::rng::mix(seed, now_millis() as u64);
        let dice = Arc::new(AtomicU64::new(run));
        let senders = Channel::ALL
            .iter()
            .map(|&channel| {
                Arc::new(DemoOutbound {
                    channel,
                    timing,
                    dice: Arc::clone(&dice),
                    commands: commands.clone(),
                    shared: Arc::clone(&shared),
                }) as Arc<dyn Outbound>
            })
            .collect();
        let mut sim = Simulator {
            store,
            settings: crate::demo::settings(),
            rng: Rng::new(run),
            timing,
            shared: Arc::clone(&shared),
            pending: Vec::new(),
            reports: Vec::new(),
            online: VecDeque::new(),
            seq: 0,
            run,
        };
        let thread = std::thread::Builder::new()
            .name("braid-demo-customers".into())
            .spawn(move || sim.run(inbox))?;
        Ok(DemoChannels {
            commands,
            shared,
            senders,
            thread: Some(thread),
        })
    }

    /// One Outbound per channel (email, telegram, webchat) that "delivers" replies in the demo.
    pub fn outbound(&self) -> Vec<Arc<dyn Outbound>> {
        self.senders.clone()
    }

    /// A one-line status for the status line, e.g. "demo: 12 customers online".
    pub fn status(&self) -> String {
        let online = self.shared.online.load(Ordering::Relaxed);
        let typing = self.shared.typing.load(Ordering::Relaxed);
        let mut s = match online {
            1 => "demo: 1 customer online".to_string(),
            n => format!("demo: {n} customers online"),
        };
        if typing > 0 {
            s.push_str(&format!(", {typing} typing"));
        }
        if let Ok(e) = self.shared.last_error.lock()
            && let Some(e) = e.as_deref()
        {
            s.push_str(" (");
            s.push_str(e);
            s.push(')');
        }
        s
    }
}

impl Drop for DemoChannels {
    fn drop(&mut self) {
        let _ = self.commands.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The "delivery" of replies on one channel.
struct DemoOutbound {
    channel: Channel,
    timing: Timing,
    dice: Arc<AtomicU64>,
    commands: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
}

impl DemoOutbound {
    fn roll(&self) -> Rng {
        Rng::new(
            self.dice
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed),
        )
    }
}

/// How long before answering the customer has read the reply.
fn answer_lead() -> Duration {
    Duration::from_millis(50)
}

fn between(rng: &mut Rng, (lo, hi): (Duration, Duration)) -> Duration {
    let lo_ms = lo.as_millis() as i64;
    let hi_ms = hi.as_millis() as i64;
    Duration::from_millis(rng.range(lo_ms, hi_ms.max(lo_ms)) as u64)
}

impl Outbound for DemoOutbound {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(async move {
            let mut rng = self.roll();
            tokio::time::sleep(between(&mut rng, self.timing.latency)).await;
            if self.timing.fail_one_in > 0 && rng.below(self.timing.fail_one_in) == 0 {
                let reason = rng.pick(&[
                    "simulated timeout",
                    "simulated timeout (no answer from the server in 30 s)",
                    "simulated 503 service unavailable",
                ]);
                return Err(SendError {
                    reason: reason.to_string(),
                    retry: true,
                    may_have_sent: false,
                });
            }
            let answer = Answer {
                due: Instant::now() + between(&mut rng, self.timing.answer),
                channel: item.channel,
                recipient: item.recipient.clone(),
                subject: item.subject.clone(),
                reply: item.body.clone(),
                from: text::AGENTS
                    .iter()
                    .find(|(login, _)| *login == item.author)
                    .map_or_else(|| item.author.clone(), |(_, name)| name.to_string()),
            };
            let external_id = format!("demo-sent-{}-{}", item.channel, item.message_id);
            if item.channel.reply_window_ms().is_some() {
                // Meta's channels report delivered, then read (before the customer answers).
                let delivered = Instant::now() + between(&mut rng, self.timing.latency) * 2;
                let read =
                    delivered.max(answer.due.checked_sub(answer_lead()).unwrap_or(answer.due));
                for (due, delivery) in [(delivered, Delivery::Delivered), (read, Delivery::Read)] {
                    let _ = self.commands.send(Cmd::Report(Report {
                        due,
                        channel: item.channel,
                        external_id: external_id.clone(),
                        delivery,
                        tries: 0,
                    }));
                }
            }
            if self.commands.send(Cmd::Answer(answer)).is_ok() {
                self.shared.typing.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Sent {
                account: item.account.clone(),
                external_id: Some(external_id),
            })
        })
    }
}

/// The background thread's state.
struct Simulator {
    store: Store,
    /// The demo's ingest settings: each channel's team (see [`crate::demo::settings`]).
    settings: crate::ingest::Settings,
    rng: Rng,
    timing: Timing,
    shared: Arc<Shared>,
    pending: Vec<Answer>,
    reports: Vec<Report>,
    online: VecDeque<(Instant, ContactId)>,
    seq: u64,
    run: u64,
}

impl Simulator {
    fn run(&mut self, inbox: mpsc::Receiver<Cmd>) {
        let mut next = Instant::now() + between(&mut self.rng, self.timing.interval);
        loop {
            let now = Instant::now();
            let due = self
                .pending
                .iter()
                .map(|a| a.due)
                .chain(self.reports.iter().map(|r| r.due))
                .min()
                .map_or(next, |d| d.min(next));
            match inbox.recv_timeout(due.saturating_duration_since(now)) {
                Ok(Cmd::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(Cmd::Answer(a)) => self.pending.push(a),
                Ok(Cmd::Report(r)) => self.reports.push(r),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            let (ready, waiting): (Vec<Report>, Vec<Report>) = std::mem::take(&mut self.reports)
                .into_iter()
                .partition(|r| r.due <= now);
            self.reports = waiting;
            for r in ready {
                let applied = self.deliver(r);
                self.report(applied.map(|()| None));
            }
            let now = Instant::now();
            let (ready, waiting): (Vec<Answer>, Vec<Answer>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|a| a.due <= now);
            self.pending = waiting;
            for a in ready {
                self.shared.typing.fetch_sub(1, Ordering::Relaxed);
                let r = self.answer(&a);
                self.report(r);
            }
            if now >= next {
                let r = self.spontaneous();
                self.report(r);
                next = Instant::now() + between(&mut self.rng, self.timing.interval);
            }
        }
    }

    fn report(&mut self, r: anyhow::Result<Option<ContactId>>) {
        let now = Instant::now();
        match r {
            Ok(Some(contact)) => {
                self.shared.written.fetch_add(1, Ordering::Relaxed);
                self.online.retain(|(_, c)| *c != contact);
                self.online.push_back((now, contact));
                if let Ok(mut e) = self.shared.last_error.lock() {
                    *e = None;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("demo customers: {e:#}");
                if let Ok(mut last) = self.shared.last_error.lock() {
                    *last = Some(format!("{e}"));
                }
            }
        }
        while self
            .online
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > ONLINE_FOR)
        {
            self.online.pop_front();
        }
        self.shared
            .online
            .store(self.online.len(), Ordering::Relaxed);
    }

    /// The channel reports a reply delivered or read.
    fn deliver(&mut self, mut r: Report) -> anyhow::Result<()> {
        let tx = self.store.write()?;
        let reported = tx.apply_delivery_report(
            r.channel,
            &r.external_id,
            r.delivery,
            None,
            "demo",
            now_millis(),
        )?;
        tx.commit()?;
        if matches!(reported, crate::store::hooks::Reported::Unknown) && r.tries < 20 {
            // The worker has not recorded the send yet.
            r.tries += 1;
            r.due = Instant::now() + Duration::from_millis(250);
            self.reports.push(r);
        }
        Ok(())
    }

    fn external_id(&mut self, channel: Channel) -> String {
        self.seq += 1;
        format!("demo-live-{}-{:x}-{}", channel, self.run, self.seq)
    }

    fn ingest(&mut self, msg: &Inbound) -> anyhow::Result<Option<ContactId>> {
        match ingest::ingest(&mut self.store, msg, &self.settings)? {
            ingest::Ingested::Stored { contact, .. } => Ok(Some(contact)),
            ingest::Ingested::Duplicate { .. } => Ok(None),
        }
    }

    /// The customer answers a reply they received.
    fn answer(&mut self, a: &Answer) -> anyhow::Result<Option<ContactId>> {
        let kind = a.channel.identity_kind();
        let contact = self.store.contact_by_identity(kind, &a.recipient)?;
        let name = match contact {
            Some(c) => Some(self.store.contact(c)?.name),
            None => None,
        };
        let words = text::answer_to(&a.reply, &mut self.rng);
        let mut body = String::new();
        let subject = if a.channel == Channel::Email {
            let full = name.clone().unwrap_or_else(|| a.recipient.clone());
            text::customer_email(
                words,
                Lang::En,
                &full,
                None,
                Some((a.from.as_str(), a.reply.as_str(), now_millis())),
                &mut self.rng,
                &mut body,
            );
            Some(crate::store::messages::reply_subject(
                a.subject.as_deref().unwrap_or("Your message"),
            ))
        } else {
            text::customer_chat(words, a.channel, &mut self.rng, &mut body);
            None
        };
        let msg = Inbound {
            channel: a.channel,
            account: String::new(),
            external_id: self.external_id(a.channel),
            direction: Direction::In,
            customer: Claim::new(kind, a.recipient.clone()),
            linked: Vec::new(),
            customer_name: name,
            author: None,
            subject,
            body,
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        };
        self.ingest(&msg)
    }

    /// Someone writes without being asked: mostly a known customer, sometimes a new visitor.
    fn spontaneous(&mut self) -> anyhow::Result<Option<ContactId>> {
        if self.rng.chance(0.75)
            && let Some(msg) = self.known_customer_writes()?
        {
            return self.ingest(&msg);
        }
        let msg = if self.rng.chance(0.3) {
            self.new_whatsapp_customer()
        } else {
            self.new_visitor()
        };
        self.ingest(&msg)
    }

    /// A first-time customer on WhatsApp: a number braid has never seen, with the name of
    /// their WhatsApp profile.
    fn new_whatsapp_customer(&mut self) -> Inbound {
        let name = text::name(&mut self.rng, Lang::En);
        // Numbers of their own: the live run's numbers start far from the generated ones.
        let phone = text::phone(1_000_000 + self.seq, self.run ^ 0x5a5a, Lang::En);
        let topic = &TOPICS[self.rng.below(TOPICS.len() as u64) as usize];
        let ctx = Ctx::new(&mut self.rng, &name.first, None);
        let mut words = String::new();
        text::line(
            topic,
            Lang::En,
            Stage::Opener,
            &ctx,
            None,
            &mut self.rng,
            &mut words,
        );
        let mut body = String::new();
        text::customer_chat(&words, Channel::WhatsApp, &mut self.rng, &mut body);
        Inbound {
            channel: Channel::WhatsApp,
            account: String::new(),
            external_id: self.external_id(Channel::WhatsApp),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Phone, phone),
            linked: Vec::new(),
            customer_name: Some(name.full),
            author: None,
            subject: None,
            body,
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        }
    }

    fn known_customer_writes(&mut self) -> anyhow::Result<Option<Inbound>> {
        let Some((lo, hi)) = self.store.contact_id_span()? else {
            return Ok(None);
        };
        let pick = self.rng.range(lo.0, hi.0);
        let Some(contact) = self
            .store
            .contacts_page(Some(ContactId(pick - 1)), 1)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let identities = self.store.identities(contact.id)?;
        let value = |kind: IdentityKind| {
            identities
                .iter()
                .rev()
                .find(|i| i.kind == kind)
                .map(|i| i.value.clone())
        };
        // The channels they can write on (a call log or a shop's event is not a message).
        let theirs: Vec<Channel> = Channel::ALL
            .iter()
            .copied()
            .filter(|c| c.replyable() && value(c.identity_kind()).is_some())
            .collect();
        if theirs.is_empty() {
            return Ok(None);
        }
        let mut linked = Vec::new();
        let email = value(IdentityKind::Email);
        let last = contact.last_channel.filter(|c| theirs.contains(c));
        let (channel, customer) = match email {
            // Now and then someone who never used the web chat opens it and types their email
            // into the form: a new channel joins their timeline.
            Some(email) if !theirs.contains(&Channel::WebChat) && self.rng.chance(0.15) => {
                linked.push(Claim::new(IdentityKind::Email, email));
                let visitor = format!("v_live{:x}{}", self.rng.next_u64() as u32, self.seq);
                (Channel::WebChat, visitor)
            }
            _ => {
                let c = match last {
                    Some(last) if self.rng.chance(0.65) => last,
                    _ => self.rng.pick(&theirs),
                };
                (c, value(c.identity_kind()).unwrap_or_default())
            }
        };
        let active = self.store.active_conversation(contact.id)?;
        let first = contact.name.split(' ').next().unwrap_or("").to_string();
        let topic = &TOPICS[self.rng.below(TOPICS.len() as u64) as usize];
        let ctx = Ctx::new(&mut self.rng, &first, None);
        let stage = if active.is_some() {
            Stage::Follow
        } else {
            Stage::Opener
        };
        let mut words = String::new();
        let variant = self.rng.below(topic.openers.len() as u64) as usize;
        text::line(
            topic,
            Lang::En,
            stage,
            &ctx,
            Some(variant),
            &mut self.rng,
            &mut words,
        );
        let mut body = String::new();
        let subject = if channel == Channel::Email {
            text::customer_email(
                &words,
                Lang::En,
                &contact.name,
                None,
                None,
                &mut self.rng,
                &mut body,
            );
            let current = match active {
                Some(c) => self.store.conversation(c)?.subject,
                None => None,
            };
            Some(match current {
                Some(s) => crate::store::messages::reply_subject(&s),
                None => text::subject(topic, &ctx, variant),
            })
        } else {
            text::customer_chat(&words, channel, &mut self.rng, &mut body);
            None
        };
        Ok(Some(Inbound {
            channel,
            account: String::new(),
            external_id: self.external_id(channel),
            direction: Direction::In,
            customer: Claim::new(channel.identity_kind(), customer),
            linked,
            customer_name: Some(contact.name),
            author: None,
            subject,
            body,
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        }))
    }

    /// A first-time visitor on the web chat; half of them fill in the email field.
    fn new_visitor(&mut self) -> Inbound {
        let name = text::name(&mut self.rng, Lang::En);
        let visitor = format!("v_new{:x}{}", self.rng.next_u64() as u32, self.seq);
        let mut linked = Vec::new();
        let gives_email = self.rng.chance(0.5);
        if gives_email {
            let n = self.rng.range(1, 9999);
            let domain = text::mail_domain(&mut self.rng, Lang::En);
            linked.push(Claim::new(
                IdentityKind::Email,
                format!("{}{n}@{domain}", name.email_base),
            ));
        }
        let topic = &TOPICS[self.rng.below(TOPICS.len() as u64) as usize];
        let ctx = Ctx::new(&mut self.rng, &name.first, None);
        let mut words = String::new();
        text::line(
            topic,
            Lang::En,
            Stage::Opener,
            &ctx,
            None,
            &mut self.rng,
            &mut words,
        );
        let channel = Channel::WebChat;
        Inbound {
            channel,
            account: String::new(),
            external_id: self.external_id(channel),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::WebChat, visitor),
            linked,
            customer_name: gives_email.then_some(name.full),
            author: None,
            subject: None,
            body: words,
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::demo::{DemoOptions, generate};
    use crate::store::{QueueAnchor, QueueFilter};
    use std::path::PathBuf;

    fn fast() -> Timing {
        Timing {
            interval: (Duration::from_millis(100), Duration::from_millis(300)),
            answer: (Duration::from_millis(100), Duration::from_millis(200)),
            latency: (Duration::from_millis(1), Duration::from_millis(5)),
            fail_one_in: 0,
        }
    }

    fn workspace() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("braid.sqlite3");
        let mut store = Store::open(&path).unwrap();
        let opts = DemoOptions {
            contacts: 30,
            messages: 300,
            ..DemoOptions::default()
        };
        generate(&mut store, &opts, now_millis(), &mut |_, _| {}).unwrap();
        (dir, path)
    }

    fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        ok()
    }

    #[test]
    fn customers_write_on_their_own_and_stop_on_drop() {
        let (_dir, path) = workspace();
        let store = Store::open(&path).unwrap();
        let before = store.last_event_id().unwrap();
        let demo = DemoChannels::start_with(&path, 7, fast()).unwrap();
        assert!(
            wait_for(Duration::from_secs(10), || store.last_event_id().unwrap()
                > before),
            "no customer wrote"
        );
        assert!(wait_for(Duration::from_secs(10), || {
            demo.shared.written.load(Ordering::Relaxed) >= 5
        }));
        assert!(demo.status().starts_with("demo: "), "{}", demo.status());
        assert!(
            demo.shared.online.load(Ordering::Relaxed) >= 1,
            "{}",
            demo.status()
        );
        let outbound = demo.outbound();
        let mut channels: Vec<Channel> = outbound.iter().map(|o| o.channel()).collect();
        channels.sort();
        assert_eq!(channels, Channel::ALL.to_vec());
        let t = Instant::now();
        drop(demo);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "stopping took {:?}",
            t.elapsed()
        );
        let after = store.last_event_id().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            store.last_event_id().unwrap(),
            after,
            "nothing after the drop"
        );
        // Whatever the simulator wrote went through ingest and threads like anything else.
        for c in store.contacts_page(None, 1000).unwrap() {
            let convs = store.contact_conversations(c.id, 100).unwrap();
            assert!(convs.iter().filter(|q| q.status.is_active()).count() <= 1);
        }
    }

    #[tokio::test]
    async fn a_delivered_reply_gets_an_answer_on_the_same_channel() {
        let (_dir, path) = workspace();
        let mut store = Store::open(&path).unwrap();
        let quiet = Timing {
            interval: (Duration::from_secs(3600), Duration::from_secs(3600)),
            ..fast()
        };
        let demo = DemoChannels::start_with(&path, 7, quiet).unwrap();
        let conv = store
            .queue_page(&QueueFilter::All, QueueAnchor::Top, 1)
            .unwrap()
            .remove(0);
        let channel = store.reply_channel(conv.id).unwrap();
        let id = store
            .queue_reply(
                conv.id,
                channel,
                "alice",
                "Your refund was issued today.",
                now_millis(),
            )
            .unwrap();
        let item = store
            .claim_outbox(now_millis(), 60_000, 10)
            .unwrap()
            .into_iter()
            .find(|i| i.message_id == id)
            .unwrap();
        let sender = demo
            .outbound()
            .into_iter()
            .find(|o| o.channel() == channel)
            .unwrap();
        let sent = sender.send(&item).await.unwrap();
        assert!(sent.external_id.is_some());
        store
            .mark_sent(
                id,
                &sent.account,
                sent.external_id.as_deref(),
                "worker",
                now_millis(),
            )
            .unwrap();
        let answered = wait_for(Duration::from_secs(10), || {
            let t = store.timeline(conv.contact_id, None, 5).unwrap();
            t.last()
                .is_some_and(|m| m.id > id && m.direction == Direction::In && m.channel == channel)
        });
        assert!(answered, "the customer did not answer");
        let last = store.timeline(conv.contact_id, None, 1).unwrap().remove(0);
        assert_eq!(
            last.conversation_id, conv.id,
            "the answer joins the conversation"
        );
        assert_eq!(crate::sanitize::text(&last.body), last.body);
        drop(demo);
    }

    #[tokio::test]
    async fn a_whatsapp_reply_is_delivered_then_read_then_answered() {
        let (_dir, path) = workspace();
        let mut store = Store::open(&path).unwrap();
        let quiet = Timing {
            interval: (Duration::from_secs(3600), Duration::from_secs(3600)),
            answer: (Duration::from_millis(600), Duration::from_millis(700)),
            ..fast()
        };
        let demo = DemoChannels::start_with(&path, 7, quiet).unwrap();
        let phone = "+447400123456";
        let msg = Inbound {
            channel: Channel::WhatsApp,
            account: String::new(),
            external_id: "wamid.test-1".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Phone, phone),
            linked: vec![],
            customer_name: Some("Wanda Whats".into()),
            author: None,
            subject: None,
            body: "Is my order on its way?".into(),
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        };
        let ingest::Ingested::Stored {
            conversation,
            contact,
            ..
        } = ingest::ingest(&mut store, &msg, &crate::demo::settings()).unwrap()
        else {
            panic!("stored twice")
        };
        assert_eq!(
            store.reply_channel(conversation).unwrap(),
            Channel::WhatsApp
        );
        let id = store
            .queue_reply(
                conversation,
                Channel::WhatsApp,
                "alice",
                "It ships tomorrow.",
                now_millis(),
            )
            .unwrap();
        let item = store
            .claim_outbox(now_millis(), 60_000, 10)
            .unwrap()
            .into_iter()
            .find(|i| i.message_id == id)
            .unwrap();
        assert_eq!(item.recipient, phone);
        let sender = demo
            .outbound()
            .into_iter()
            .find(|o| o.channel() == Channel::WhatsApp)
            .unwrap();
        let sent = sender.send(&item).await.unwrap();
        // The report may come before the worker records the send: it waits for it.
        tokio::time::sleep(Duration::from_millis(30)).await;
        store
            .mark_sent(
                id,
                &sent.account,
                sent.external_id.as_deref(),
                "worker",
                now_millis(),
            )
            .unwrap();
        let delivery = |store: &Store| {
            store
                .timeline(contact, None, 10)
                .unwrap()
                .into_iter()
                .find(|m| m.id == id)
                .unwrap()
                .delivery
        };
        assert!(
            wait_for(Duration::from_secs(10), || delivery(&store)
                == Some(Delivery::Read)),
            "{:?}",
            delivery(&store)
        );
        let answered = wait_for(Duration::from_secs(10), || {
            store
                .timeline(contact, None, 10)
                .unwrap()
                .last()
                .is_some_and(|m| m.direction == Direction::In && m.id > id)
        });
        assert!(answered, "the customer did not answer on WhatsApp");
        let last = store.timeline(contact, None, 10).unwrap().pop().unwrap();
        assert_eq!(last.channel, Channel::WhatsApp);
        drop(demo);
    }

    #[test]
    fn new_whatsapp_customers_are_new_contacts_with_their_phone() {
        let (_dir, path) = workspace();
        let mut sim = Simulator {
            store: Store::open(&path).unwrap(),
            settings: crate::demo::settings(),
            rng: Rng::new(3),
            timing: fast(),
            shared: Arc::new(Shared::default()),
            pending: Vec::new(),
            reports: Vec::new(),
            online: VecDeque::new(),
            seq: 0,
            run: 11,
        };
        let before = sim.store.contacts_page(None, 10_000).unwrap().len();
        let mut phones = std::collections::HashSet::new();
        for _ in 0..20 {
            let msg = sim.new_whatsapp_customer();
            assert_eq!(msg.channel, Channel::WhatsApp);
            let contact = sim.ingest(&msg).unwrap().unwrap();
            let ids = sim.store.identities(contact).unwrap();
            assert_eq!(ids.len(), 1, "{ids:?}");
            assert_eq!(ids[0].kind, IdentityKind::Phone);
            assert!(ids[0].value.starts_with('+'));
            phones.insert(ids[0].value.clone());
            let conv = sim.store.active_conversation(contact).unwrap().unwrap();
            assert_eq!(sim.store.reply_channel(conv).unwrap(), Channel::WhatsApp);
        }
        assert_eq!(phones.len(), 20);
        let after = sim.store.contacts_page(None, 10_000).unwrap().len();
        assert_eq!(after, before + 20, "each one a new contact");
    }

    #[tokio::test]
    async fn some_sends_fail_and_can_be_retried() {
        let (_dir, path) = workspace();
        let failing = Timing {
            interval: (Duration::from_secs(3600), Duration::from_secs(3600)),
            fail_one_in: 1,
            ..fast()
        };
        let demo = DemoChannels::start_with(&path, 7, failing).unwrap();
        let item = OutboxItem {
            message_id: crate::model::MessageId(1),
            conversation_id: crate::model::ConversationId(1),
            contact_id: ContactId(1),
            channel: Channel::Email,
            account: String::new(),
            recipient: "someone@example.org".into(),
            subject: None,
            body: "hello".into(),
            author: "bob".into(),
            attempts: 0,
            resumed: false,
            meta: None,
            last_in: None,
        };
        let sender = demo.outbound().remove(0);
        let err = sender.send(&item).await.unwrap_err();
        assert!(err.retry);
        assert!(err.reason.starts_with("simulated"), "{}", err.reason);
        // Once in fifteen by default.
        assert_eq!(Timing::default().fail_one_in, 15);
    }
}
