//! The demo workspace: a deterministic generator (this module) and a live simulator
//! ([`crate::channels::demo`]).
//!
//! `generate` plans a workspace from a seed (`plan`, names and words from `text`) and plays
//! it into the store in time order, as it would have happened, in ONE transaction:
//! - up to [`BULK_FROM_MESSAGES`], every customer message goes through
//!   [`crate::ingest::ingest_in`] (so identities link and conversations thread exactly as with
//!   real channels), agent replies, notes and workflow through the store's batch verbs
//!   (`store::bulk`), each with its audit event;
//! - from there (the 1,000,000-message benchmark workspace), through `history`: ingest's
//!   decisions with the state in memory, one insert per message, the full-text index built on
//!   a second thread, one `imported` event. A test plays one plan both ways and requires the
//!   same contacts, identities, conversations, tags, messages and search results.

pub(crate) mod history;
pub mod maildir;
pub(crate) mod plan;
pub(crate) mod rng;
pub(crate) mod text;

use crate::identity::Claim;
use crate::ingest::{self, Inbound, Ingested};
use crate::model::{
    Channel, ContactId, ConversationId, Direction, IdentityKind, Millis, Priority, Status,
};
use crate::store::{self, Store, Tx, bulk};
use plan::{Kind, Person, Plan, Step, Thread};
use rng::Rng;
use std::time::{Duration, Instant};
use text::{AGENTS, Ctx, Stage, TOPICS};

/// The demo workspace's two teams: support answers email, the web chat, WhatsApp, SMS,
/// Instagram, Messenger and the phone, sales the Telegram bot. A conversation belongs to the
/// team of the channel it started on.
pub const SUPPORT: &str = "support";
pub const SALES: &str = "sales";
/// The billing team: nothing arrives there by channel; the demo's rules route billing
/// questions to it (config/rules.example.toml).
pub const BILLING: &str = "billing";

/// The demo's agents and their teams (alice and bob in support, carol in sales, dana in both),
/// for a workspace config that admits them.
pub const AGENT_TEAMS: &[(&str, &[&str])] = &[
    ("alice", &[SUPPORT]),
    ("bob", &[SUPPORT]),
    ("carol", &[SALES]),
    ("dana", &[SUPPORT, SALES, BILLING]),
    ("erin", &[BILLING]),
];

/// The ingest settings of the demo: the default threading, and each channel's team (the demo
/// channels store their messages under the account "").
/// The demo's workspace: its two teams and its agents (each an `agent` in their teams; the
/// Unix user running the demo stays the admin). The agents' Unix users are `demo-NAME`, which
/// exist nowhere: they are seen through `braid demo --as NAME`.
pub fn workspace() -> crate::server::workspace::Workspace {
    use crate::server::workspace::{AgentDef, TeamDef, Workspace};
    Workspace {
        teams: [SUPPORT, SALES, BILLING]
            .iter()
            .map(|t| TeamDef {
                name: t.to_string(),
                display: None,
                hours: None,
            })
            .collect(),
        agents: AGENT_TEAMS
            .iter()
            .map(|(name, teams)| AgentDef {
                user: format!("demo-{name}"),
                name: name.to_string(),
                display: None,
                role: crate::api::Role::Agent,
                teams: teams.iter().map(|t| t.to_string()).collect(),
            })
            .collect(),
        socket: None,
        group: None,
        only_assignee_replies: false,
        // The simulated agents are online in the demo: presence shows without a team.
        simulate_colleagues: true,
        sla: sla_config(),
        // Surveys stay off in the demo (its simulated customers do not answer them).
        csat: crate::csat::CsatConfig::default(),
        // No webhooks out of the demo.
        webhooks: Vec::new(),
        campaigns: crate::campaign::CampaignConfig::default(),
        fields: fields_config(),
        demo_templates: [
            (
                "order_update",
                "Hi {{1}}, your order {{2}} has shipped. Track it here: {{3}}",
            ),
            (
                "follow_up",
                "Hi {{1}}, we have not heard back from you about {{2}}. Reply here if you \
                 still need help.",
            ),
        ]
        .into_iter()
        .map(|(name, text)| crate::template::Template {
            name: name.into(),
            language: "en_US".into(),
            text: text.into(),
        })
        .collect(),
        demo_rules: Some(RULES.to_string()),
        templates_dir: None,
    }
}

/// The demo workspace's contact fields (`plan`, `renewal`, `seats`) and the default stages.
pub fn fields_config() -> crate::fields::FieldsConfig {
    use crate::fields::{FieldDef, FieldKind, FieldsConfig};
    FieldsConfig {
        fields: vec![
            FieldDef {
                label: Some("Plan".into()),
                ..FieldDef::choice("plan", &["free", "pro", "enterprise"])
            },
            FieldDef {
                label: Some("Renewal".into()),
                ..FieldDef::new("renewal", FieldKind::Date)
            },
            FieldDef {
                label: Some("Seats".into()),
                ..FieldDef::new("seats", FieldKind::Number)
            },
        ],
        ..FieldsConfig::default()
    }
}

/// The most demo contacts given a plan, a stage and a score (the pipeline shows them).
const FIELD_CONTACTS: usize = 400;

/// Give the first demo contacts a plan, a renewal date, a stage and a score, spread so that
/// `g p` and the profile show something on the first run (seeded as history: no events).
fn seed_fields(store: &mut Store, now: Millis) -> anyhow::Result<()> {
    let contacts = store.contacts_page(None, FIELD_CONTACTS)?;
    let stages = [
        "lead",
        "lead",
        "qualified",
        "customer",
        "customer",
        "churned",
    ];
    let plans = ["free", "free", "pro", "enterprise"];
    let day = 86_400_000;
    let rows: Vec<crate::store::fields::DemoFields> = contacts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 4)
        .map(|(i, c)| {
            let stage = stages[(i * 7) % stages.len()];
            let mut fields = vec![("plan".to_string(), plans[(i * 3) % plans.len()].to_string())];
            if stage == "customer" {
                let t = now + ((i as i64 * 13) % 300 + 5) * day;
                let d = time::OffsetDateTime::from_unix_timestamp(t / 1000)
                    .map(|t| t.date())
                    .unwrap_or(time::Date::MIN);
                fields.push((
                    "renewal".into(),
                    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
                ));
            }
            crate::store::fields::DemoFields {
                contact: c.id,
                stage: stage.to_string(),
                score: ((i * 37) % 90) as i64 - 10,
                fields,
            }
        })
        .collect();
    store.seed_demo_fields(&fields_config(), &rows, now)?;
    Ok(())
}

/// The demo workspace's business hours and SLA policies: the support desk works long
/// weekdays and Saturday mornings (UTC), so a deadline set late on Friday falls due on
/// Saturday; VIPs get a 30-minute first response. The rules apply them.
pub const SLA: &str = r#"
[[hours]]
name = "desk"
zone = "UTC"
weekdays = ["07:00-12:00", "12:30-21:00"]
sat = ["09:00-13:00"]
holidays = ["2026-12-25", "2026-12-26", "2027-01-01"]

[[sla]]
name = "standard"
first_response = "4h"
next_response = "8h"
resolution = "5d"
hours = "desk"
warn_before = "30m"

[[sla]]
name = "vip"
first_response = "30m"
next_response = "1h"
resolution = "1d"
hours = "desk"
warn_before = "10m"
"#;

fn sla_config() -> crate::sla::SlaConfig {
    #[derive(serde::Deserialize)]
    struct File {
        hours: Vec<crate::sla::HoursSpec>,
        sla: Vec<crate::sla::PolicySpec>,
    }
    let parsed = toml::from_str::<File>(SLA)
        .ok()
        .and_then(|f| crate::sla::SlaConfig::from_specs(&f.hours, &f.sla).ok());
    let mut cfg = parsed.unwrap_or_default();
    cfg.team_hours = [SUPPORT, SALES, BILLING]
        .iter()
        .map(|t| (t.to_string(), "desk".to_string()))
        .collect();
    cfg
}

/// Put the demo's active conversations under their SLA (VIPs `vip`, the others `standard`),
/// as the rules do for what arrives later: the queue counts down from the first screen.
pub fn apply_sla(store: &mut Store, now: Millis) -> crate::store::Result<usize> {
    let cfg = sla_config();
    let mut convs = Vec::new();
    for status in [Status::Open, Status::Pending] {
        convs.extend(store.queue_page(
            &crate::store::QueueFilter::Status(status),
            crate::store::QueueAnchor::Top,
            1_000_000,
        )?);
    }
    let tx = store.write()?;
    for c in &convs {
        let policy = if c.vip { "vip" } else { "standard" };
        tx.apply_sla_by_name(c.id, &cfg, policy, now, "rule:demo-sla")?;
    }
    tx.commit()?;
    Ok(convs.len())
}

/// Surveys of the demo's past: about two thirds of its resolved conversations were surveyed
/// on their last channel a few minutes after their last activity, and about half of those
/// answered (mostly 4 and 5, some 1 to 3 with a comment), so the reports show satisfaction
/// from the first screen. Deterministic (by conversation id). Returns how many answered.
pub fn seed_surveys(store: &mut Store) -> crate::store::Result<usize> {
    let resolved = store.queue_page(
        &crate::store::QueueFilter::Status(Status::Resolved),
        crate::store::QueueAnchor::Top,
        1_000_000,
    )?;
    const ANSWERS: &[(u8, &str)] = &[
        (5, "Quick and friendly, thank you!"),
        (5, ""),
        (4, "Solved, took a day though."),
        (5, ""),
        (4, ""),
        (3, "Fine, but I had to repeat my order number."),
        (5, "Great help on chat."),
        (2, "Nobody answered my first email."),
        (4, ""),
        (1, "Still waiting for the refund."),
    ];
    let mut answered = 0;
    for c in resolved.iter().filter(|c| c.id.0 % 3 != 0) {
        let sent = c.last_activity + 5 * 60_000;
        // Half of them answer (an index past the list: no answer).
        let answer = ANSWERS
            .get((c.id.0 as usize * 7) % (ANSWERS.len() * 2))
            .map(|(score, comment)| (*score, *comment, sent + (c.id.0 % 180 + 3) * 60_000));
        if store.record_past_survey(c.id, c.last_channel, sent, answer)? && answer.is_some() {
            answered += 1;
        }
    }
    Ok(answered)
}

/// The demo workspace's canned replies (config/templates), written into `dir` when missing
/// so the server's folder reads them like any workspace's.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "refund-approved.md",
        include_str!("../../config/templates/refund-approved.md"),
    ),
    (
        "refund-approved.chat.md",
        include_str!("../../config/templates/refund-approved.chat.md"),
    ),
    (
        "where-is-my-order.md",
        include_str!("../../config/templates/where-is-my-order.md"),
    ),
    (
        "after-hours.md",
        include_str!("../../config/templates/after-hours.md"),
    ),
];

/// Write the demo's canned replies into `dir` (kept if they exist: an edit survives).
pub fn write_templates(dir: &std::path::Path) -> std::io::Result<()> {
    crate::private::create_dir(dir)?;
    for (name, text) in TEMPLATES {
        let p = dir.join(name);
        if !p.exists() {
            std::fs::write(&p, text)?;
        }
    }
    Ok(())
}

/// The demo workspace's rules: the example file README points to.
pub const RULES: &str = include_str!("../../config/rules.example.toml");

pub fn settings() -> ingest::Settings {
    let mut settings = ingest::Settings::default();
    for (channel, account, team) in [
        (Channel::Email, "", SUPPORT),
        (Channel::WebChat, "", SUPPORT),
        (Channel::Telegram, "", SALES),
        (Channel::WhatsApp, "", SUPPORT),
        (Channel::Sms, "", SUPPORT),
        (Channel::Instagram, "", SUPPORT),
        (Channel::Messenger, "", SUPPORT),
        (Channel::Phone, PBX, SUPPORT),
        (Channel::Event, SHOP, SUPPORT),
    ] {
        settings
            .teams
            .insert((channel, account.to_string()), team.to_string());
    }
    settings
}

/// The demo's event sources (`[[events]]` names): the phone system that reports calls, and
/// the shop that reports purchases and bookings.
pub const PBX: &str = "pbx";
pub const SHOP: &str = "shop";

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub contacts: usize,
    pub messages: usize,
    pub days: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 42,
            contacts: 300,
            messages: 3000,
            days: 90,
        }
    }
}

/// What `generate` made.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub contacts: usize,
    pub conversations: usize,
    pub messages: usize,
    pub elapsed: Duration,
}

/// The marker `generate` leaves in the `cursors` table.
const MARKER_CHANNEL: &str = "demo";
const MARKER_KEY: &str = "seed";

/// How often (in messages) `progress` is called at most.
const PROGRESS_EVERY: usize = 10_000;

/// Workspaces from this many messages up are written by the bulk history loader
/// (`history`): the same contacts, conversations and messages as ingest would make (a test
/// holds the two equal), at a multiple of the speed, with one `imported` audit event instead
/// of one per message and workflow change.
pub const BULK_FROM_MESSAGES: usize = 20_000;

/// How the history is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Customer messages through `ingest::ingest_in`, the rest through `store::bulk`'s verbs,
    /// each with its event.
    Ingest,
    /// Through [`history::History`].
    Bulk,
}

/// Fill an EMPTY store with the demo workspace (timestamps end at `now`), and mark the store as a
/// demo workspace.
///
/// `progress(done, total)` is called as messages are written (total: the messages planned).
pub fn generate(
    store: &mut Store,
    opts: &DemoOptions,
    now: Millis,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<GenerateReport> {
    let path = if opts.messages >= BULK_FROM_MESSAGES {
        Path::Bulk
    } else {
        Path::Ingest
    };
    generate_with(store, opts, now, progress, path)
}

pub(crate) fn generate_with(
    store: &mut Store,
    opts: &DemoOptions,
    now: Millis,
    progress: &mut dyn FnMut(usize, usize),
    path: Path,
) -> anyhow::Result<GenerateReport> {
    let started = Instant::now();
    if !store.is_empty()? {
        anyhow::bail!(
            "the store already holds contacts or messages; the demo generator only fills an empty one"
        );
    }
    let plan = plan::build(opts, now);
    progress(0, plan.messages);
    let load = store.begin_bulk_load()?;
    let played = play(store, opts, now, &plan, progress, path);
    let restored = store.end_bulk_load(load);
    let (contacts, conversations, messages) = played?;
    restored?;
    seed_fields(store, now)?;
    Ok(GenerateReport {
        contacts,
        conversations,
        messages,
        elapsed: started.elapsed(),
    })
}

/// True if this store was made by `generate` (a marker row in the `cursors` table: channel
/// 'demo', account '', key 'seed').
pub fn is_demo_workspace(store: &Store) -> anyhow::Result<bool> {
    Ok(store.cursor(MARKER_CHANNEL, "", MARKER_KEY)?.is_some())
}

/// The seed a demo workspace was generated with.
pub fn demo_seed(store: &Store) -> anyhow::Result<Option<u64>> {
    Ok(store
        .cursor(MARKER_CHANNEL, "", MARKER_KEY)?
        .and_then(|s| s.parse().ok()))
}

/// Where one person stands while their history is played.
#[derive(Default)]
struct PersonState {
    contact: Option<ContactId>,
    conv: Option<ConversationId>,
    /// The conversation's assignee and priority as we last set them.
    assignee: Option<u8>,
    priority: Option<Priority>,
    /// Channels already introduced (their first message carries the identities they gave).
    introduced: u8,
    vip_done: bool,
    /// The current thread.
    ctx: Option<Ctx>,
    subject: String,
    emailed: bool,
    replied: bool,
    last_in: String,
    last_out: String,
    last_out_at: Millis,
    /// The agent's last reply went out by email (and can be quoted in the customer's email).
    last_out_email: bool,
    /// Which opener the thread started with, and the first reply that answers it.
    opener: usize,
    first_reply: usize,
    /// The customer's follow-ups walk their pool from here (so none repeats); the agent
    /// answers the last one.
    follow_base: usize,
    follows: usize,
    last_follow: Option<usize>,
    /// The customer has said thanks: the agent's next message closes the thread.
    thanked: bool,
    /// The customer wrote and nobody answered yet.
    waiting: bool,
}

fn bit(c: Channel) -> u8 {
    match c {
        Channel::Email => 1,
        Channel::Telegram => 2,
        Channel::WebChat => 4,
        Channel::WhatsApp => 8,
        Channel::Instagram => 16,
        Channel::Messenger => 32,
        Channel::Sms => 64,
        Channel::Phone | Channel::Event => 128,
    }
}

/// Where the played history goes: the write verbs the generator needs, in two implementations.
trait Sink {
    fn inbound(&mut self, tx: &Tx<'_>, msg: &Inbound, now: Millis) -> anyhow::Result<Ingested>;
    fn agent(&mut self, tx: &Tx<'_>, m: &bulk::AgentMessage<'_>) -> anyhow::Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn status(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        status: Status,
        until: Option<Millis>,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn assign(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        agent: &str,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn priority(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        priority: Priority,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn tag(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        tag: &str,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()>;
    fn vip(
        &mut self,
        tx: &Tx<'_>,
        contact: ContactId,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()>;
}

/// The one path: ingest for customers, the store's batch verbs (with events) for agents.
struct IngestSink {
    settings: ingest::Settings,
}

impl Sink for IngestSink {
    fn inbound(&mut self, tx: &Tx<'_>, msg: &Inbound, now: Millis) -> anyhow::Result<Ingested> {
        Ok(ingest::ingest_in(tx, msg, &self.settings, now)?)
    }
    fn agent(&mut self, tx: &Tx<'_>, m: &bulk::AgentMessage<'_>) -> anyhow::Result<()> {
        tx.bulk_agent_message(m)?;
        Ok(())
    }
    fn status(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        status: Status,
        until: Option<Millis>,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()> {
        Ok(tx.bulk_set_status(conv, contact, status, until, actor, at)?)
    }
    fn assign(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        agent: &str,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()> {
        Ok(tx.bulk_assign(conv, contact, Some(agent), actor, at)?)
    }
    fn priority(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        priority: Priority,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()> {
        Ok(tx.bulk_set_priority(conv, contact, priority, actor, at)?)
    }
    fn tag(
        &mut self,
        tx: &Tx<'_>,
        conv: ConversationId,
        contact: ContactId,
        tag: &str,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()> {
        tx.bulk_add_tag(conv, contact, tag, actor, at)?;
        Ok(())
    }
    fn vip(
        &mut self,
        tx: &Tx<'_>,
        contact: ContactId,
        actor: &str,
        at: Millis,
    ) -> anyhow::Result<()> {
        Ok(tx.bulk_set_vip(contact, true, actor, at)?)
    }
}

/// The bulk history loader (see [`history`]).
struct HistorySink {
    history: history::History,
    settings: ingest::Settings,
}

impl Sink for HistorySink {
    fn inbound(&mut self, tx: &Tx<'_>, msg: &Inbound, now: Millis) -> anyhow::Result<Ingested> {
        Ok(self.history.ingest(tx, msg, &self.settings, now)?)
    }
    fn agent(&mut self, tx: &Tx<'_>, m: &bulk::AgentMessage<'_>) -> anyhow::Result<()> {
        self.history.agent_message(tx, m)?;
        Ok(())
    }
    fn status(
        &mut self,
        _: &Tx<'_>,
        conv: ConversationId,
        _: ContactId,
        status: Status,
        until: Option<Millis>,
        _: &str,
        at: Millis,
    ) -> anyhow::Result<()> {
        Ok(self.history.set_status(conv, status, until, at)?)
    }
    fn assign(
        &mut self,
        _: &Tx<'_>,
        conv: ConversationId,
        _: ContactId,
        agent: &str,
        _: &str,
        _: Millis,
    ) -> anyhow::Result<()> {
        Ok(self.history.assign(conv, Some(agent))?)
    }
    fn priority(
        &mut self,
        _: &Tx<'_>,
        conv: ConversationId,
        _: ContactId,
        priority: Priority,
        _: &str,
        _: Millis,
    ) -> anyhow::Result<()> {
        Ok(self.history.set_priority(conv, priority)?)
    }
    fn tag(
        &mut self,
        _: &Tx<'_>,
        conv: ConversationId,
        _: ContactId,
        tag: &str,
        _: &str,
        _: Millis,
    ) -> anyhow::Result<()> {
        Ok(self.history.add_tag(conv, tag)?)
    }
    fn vip(&mut self, _: &Tx<'_>, contact: ContactId, _: &str, _: Millis) -> anyhow::Result<()> {
        Ok(self.history.set_vip(contact, true)?)
    }
}

struct Player<'p> {
    seed: u64,
    plan: &'p Plan,
    states: Vec<PersonState>,
    now: Millis,
    seq: u64,
    body: String,
    words: String,
}

/// Write the plan into the store, in one transaction: the workspace appears whole or not at
/// all. Returns the (contacts, conversations, messages) written.
fn play(
    store: &mut Store,
    opts: &DemoOptions,
    now: Millis,
    plan: &Plan,
    progress: &mut dyn FnMut(usize, usize),
    path: Path,
) -> anyhow::Result<(usize, usize, usize)> {
    let mut attached = None;
    let filled = fill(store, opts, now, plan, progress, path, &mut attached);
    // After the commit (or the rollback): let go of the index builder's file.
    if let Some(a) = attached {
        let detached = store.detach_fts(a);
        if filled.is_ok() {
            detached?;
        }
    }
    filled
}

#[allow(clippy::too_many_arguments)]
fn fill(
    store: &mut Store,
    opts: &DemoOptions,
    now: Millis,
    plan: &Plan,
    progress: &mut dyn FnMut(usize, usize),
    path: Path,
    attached: &mut Option<bulk::Installed>,
) -> anyhow::Result<(usize, usize, usize)> {
    let mut p = Player {
        seed: opts.seed,
        plan,
        states: (0..plan.persons.len())
            .map(|_| PersonState::default())
            .collect(),
        now,
        seq: 0,
        body: String::with_capacity(2048),
        words: String::with_capacity(1024),
    };
    let settings = settings();
    let tx = store.write()?;
    let fts = tx.suspend_fts()?;
    let mut sinks = match path {
        Path::Ingest => Sinks::Ingest(IngestSink { settings }),
        Path::Bulk => Sinks::History(Box::new(HistorySink {
            history: history::History::new(&tx, Some(tx.start_fts_builder()?))?,
            settings,
        })),
    };
    let sink: &mut dyn Sink = match &mut sinks {
        Sinks::Ingest(s) => s,
        Sinks::History(s) => s.as_mut(),
    };
    let mut written = 0usize;
    let mut reported = 0usize;
    for step in &plan.steps {
        if p.step(&tx, sink, step)? {
            written += 1;
            if written - reported >= PROGRESS_EVERY {
                progress(written, plan.messages);
                reported = written;
            }
        }
    }
    let options = serde_json::json!({
        "seed": opts.seed, "contacts": opts.contacts, "messages": opts.messages,
        "days": opts.days, "generated_at": now,
    });
    let (contacts, conversations) = match sinks {
        Sinks::Ingest(_) => {
            let contacts: std::collections::HashSet<_> =
                p.states.iter().filter_map(|s| s.contact).collect();
            (contacts.len(), tx.count_conversations()?)
        }
        Sinks::History(h) => {
            let counts = h.history.counts();
            if let Some(built) = h.history.finish(&tx)? {
                *attached = Some(tx.install_fts(built)?);
            }
            tx.bulk_imported(now, "demo", &options)?;
            counts
        }
    };
    tx.resume_fts(fts, attached.is_none())?;
    tx.set_cursor(MARKER_CHANNEL, "", MARKER_KEY, &opts.seed.to_string())?;
    tx.set_cursor(MARKER_CHANNEL, "", "options", &options.to_string())?;
    tx.commit()?;
    progress(written, plan.messages);
    Ok((contacts, conversations, written))
}

enum Sinks {
    Ingest(IngestSink),
    History(Box<HistorySink>),
}

impl Player<'_> {
    /// Apply one step. True if it wrote a message.
    fn step(&mut self, tx: &Tx<'_>, sink: &mut dyn Sink, step: &Step) -> anyhow::Result<bool> {
        let thread = &self.plan.threads[step.thread as usize];
        let pid = thread.person as usize;
        let person = &self.plan.persons[pid];
        let topic = &TOPICS[thread.topic as usize];
        let (agent, agent_name) = AGENTS[thread.agent as usize % AGENTS.len()];
        let mut rng = Rng::derive(
            self.seed,
            plan::STREAM_MESSAGE,
            ((step.thread as u64) << 16) | step.idx as u64,
        );
        if step.idx == 0 {
            let mut trng = Rng::derive(self.seed, plan::STREAM_THREAD, step.thread as u64);
            let ctx = Ctx::new(&mut trng, &person.first, person.company);
            let st = &mut self.states[pid];
            let (opener, first_reply) = text::lang_opener(person.lang, topic.tag, &mut trng)
                .unwrap_or_else(|| {
                    let i = trng.below(topic.openers.len() as u64) as usize;
                    (i, i)
                });
            // `first_reply` is the topic's opener the customer's words correspond to.
            st.subject = text::subject(topic, &ctx, first_reply);
            st.ctx = Some(ctx);
            st.opener = opener;
            st.first_reply = first_reply;
            st.follow_base = first_reply;
            st.thanked = false;
            st.waiting = false;
            st.follows = 0;
            st.last_follow = None;
            st.emailed = false;
            st.replied = false;
            st.last_out.clear();
        }
        let st = &mut self.states[pid];
        let Some(ctx) = st.ctx.as_ref() else {
            anyhow::bail!(
                "demo plan: thread {} does not start with a customer message",
                step.thread
            );
        };
        self.words.clear();
        self.body.clear();
        match step.kind {
            Kind::In => {
                let (stage, variant) = if step.idx == 0 {
                    (Stage::Opener, Some(st.opener))
                } else if step.last_in && st.replied && thread.end == plan::End::Resolved {
                    st.thanked = true;
                    (Stage::Thanks, None)
                } else if st.waiting {
                    (Stage::Nudge, None)
                } else {
                    let n = st.follows;
                    st.follows += 1;
                    // The agent answers the follow-up at the same position of the topic; a
                    // customer abroad writes from their language's lines that fit the topic.
                    let (own, answer) = match text::lang_follow(person.lang, topic.tag, n) {
                        Some(i) => (i, n),
                        None => (st.follow_base + n, st.follow_base + n),
                    };
                    st.last_follow = Some(answer);
                    (Stage::Follow, Some(own))
                };
                text::line(
                    topic,
                    person.lang,
                    stage,
                    ctx,
                    variant,
                    &mut rng,
                    &mut self.words,
                );
                let subject = if step.channel == Channel::Email {
                    let s = if st.emailed {
                        store::messages::reply_subject(&st.subject)
                    } else {
                        st.subject.clone()
                    };
                    st.emailed = true;
                    text::customer_email(
                        &self.words,
                        person.lang,
                        &person.name,
                        person.company,
                        (st.last_out_email && !st.last_out.is_empty()).then_some((
                            agent_name,
                            st.last_out.as_str(),
                            st.last_out_at,
                        )),
                        &mut rng,
                        &mut self.body,
                    );
                    Some(s)
                } else if step.channel == Channel::Phone {
                    None
                } else {
                    text::customer_chat(&self.words, step.channel, &mut rng, &mut self.body);
                    None
                };
                let call = (step.channel == Channel::Phone)
                    .then(|| call_log(person, agent, &self.words, &mut rng, &mut self.body));
                self.seq += 1;
                let mut msg = inbound(person, st, step, subject, &self.body, self.seed, self.seq);
                if call.is_some() {
                    msg.meta = call;
                }
                st.introduced |= bit(step.channel);
                let at = step.at;
                let out = sink.inbound(tx, &msg, at)?;
                let Ingested::Stored {
                    conversation,
                    contact,
                    new_conversation,
                    ..
                } = out
                else {
                    anyhow::bail!("demo: message {} was stored twice", msg.external_id);
                };
                if step.channel == Channel::Phone {
                    // What an email reply quotes: what they said, not the call log.
                    st.last_in.clear();
                    st.last_in.push_str(&self.words);
                } else {
                    std::mem::swap(&mut st.last_in, &mut self.body);
                }
                st.waiting = true;
                if new_conversation || st.conv != Some(conversation) {
                    st.assignee = None;
                    st.priority = None;
                }
                st.conv = Some(conversation);
                st.contact = Some(contact);
                if step.idx == 0 {
                    start_thread(tx, sink, person, thread, st, topic.tag, at + 1)?;
                }
                Ok(true)
            }
            Kind::Note if step.channel == Channel::Event => {
                if st.conv.is_none() {
                    anyhow::bail!("demo plan: an event before the customer wrote");
                }
                self.seq += 1;
                let msg = shop_event(pid, person, ctx, step, self.seed, self.seq, &mut rng);
                let Ingested::Stored { conversation, .. } = sink.inbound(tx, &msg, step.at)? else {
                    anyhow::bail!("demo: event {} was stored twice", msg.external_id);
                };
                st.conv = Some(conversation);
                Ok(true)
            }
            Kind::Out | Kind::Note => {
                let (Some(conv), Some(contact)) = (st.conv, st.contact) else {
                    anyhow::bail!("demo plan: an agent message before the customer wrote");
                };
                let (stage, variant) = match step.kind {
                    Kind::Note => (Stage::Note, None),
                    _ if !st.replied => (Stage::AgentFirst, Some(st.first_reply)),
                    _ if st.thanked => (Stage::AgentClose, None),
                    _ => (Stage::AgentFollow, st.last_follow),
                };
                text::line(
                    topic,
                    person.lang,
                    stage,
                    ctx,
                    variant,
                    &mut rng,
                    &mut self.words,
                );
                let mut subject = None;
                if step.kind == Kind::Note {
                    self.body.push_str(&self.words);
                } else if step.channel == Channel::Email {
                    text::agent_email(
                        &self.words,
                        &ctx.first,
                        agent_name,
                        (!st.last_in.is_empty()).then_some(st.last_in.as_str()),
                        &mut self.body,
                    );
                    subject = Some(store::messages::reply_subject(&st.subject));
                } else {
                    text::agent_chat(&self.words, &ctx.first, !st.replied, &mut self.body);
                }
                if step.kind == Kind::Out {
                    if st.assignee != Some(thread.agent) {
                        sink.assign(tx, conv, contact, agent, agent, step.at - 1)?;
                        st.assignee = Some(thread.agent);
                    }
                    st.replied = true;
                }
                sink.agent(
                    tx,
                    &bulk::AgentMessage {
                        conversation: conv,
                        contact,
                        channel: step.channel,
                        direction: if step.kind == Kind::Out {
                            Direction::Out
                        } else {
                            Direction::Note
                        },
                        author: agent,
                        subject: subject.as_deref(),
                        body: &self.body,
                        at: step.at,
                    },
                )?;
                if step.kind == Kind::Out {
                    st.waiting = false;
                    std::mem::swap(&mut st.last_out, &mut self.body);
                    st.last_out_at = step.at;
                    st.last_out_email = step.channel == Channel::Email;
                }
                Ok(true)
            }
            Kind::Resolve | Kind::Snooze | Kind::Pend => {
                let (Some(conv), Some(contact)) = (st.conv, st.contact) else {
                    anyhow::bail!("demo plan: a workflow step before the customer wrote");
                };
                if step.kind == Kind::Resolve {
                    sink.status(tx, conv, contact, Status::Resolved, None, agent, step.at)?;
                } else if step.kind == Kind::Pend {
                    sink.status(tx, conv, contact, Status::Pending, None, agent, step.at)?;
                } else {
                    let until = self.now + rng.range(6 * plan::HOUR, 4 * plan::DAY);
                    sink.status(
                        tx,
                        conv,
                        contact,
                        Status::Snoozed,
                        Some(until),
                        agent,
                        step.at,
                    )?;
                }
                Ok(false)
            }
        }
    }
}

/// Tags, priority, triage assignment and VIP status when a thread starts.
fn start_thread(
    tx: &Tx<'_>,
    sink: &mut dyn Sink,
    person: &Person,
    thread: &Thread,
    st: &mut PersonState,
    tag: &str,
    at: Millis,
) -> anyhow::Result<()> {
    let (Some(conv), Some(contact)) = (st.conv, st.contact) else {
        return Ok(());
    };
    let rules = "rules";
    sink.tag(tx, conv, contact, tag, rules, at)?;
    if person.vip {
        if !st.vip_done {
            sink.vip(tx, contact, AGENTS[0].0, at)?;
            st.vip_done = true;
        }
        sink.tag(tx, conv, contact, "vip", rules, at)?;
    }
    if person.company.is_some() {
        sink.tag(tx, conv, contact, "b2b", rules, at)?;
    }
    let current = st.priority.unwrap_or(Priority::Normal);
    if thread.priority != current {
        sink.priority(tx, conv, contact, thread.priority, rules, at)?;
    }
    st.priority = Some(thread.priority);
    if thread.triage && st.assignee != Some(thread.agent) {
        let agent = AGENTS[thread.agent as usize % AGENTS.len()].0;
        sink.assign(tx, conv, contact, agent, rules, at)?;
        st.assignee = Some(thread.agent);
    }
    Ok(())
}

/// The inbound message a channel would deliver for this step: on a channel's first message the
/// identities the customer gives there (the chat widget's email field, a Telegram contact card).
fn inbound(
    person: &Person,
    st: &PersonState,
    step: &Step,
    subject: Option<String>,
    body: &str,
    seed: u64,
    seq: u64,
) -> Inbound {
    let first_here = st.introduced & bit(step.channel) == 0;
    let mut linked = Vec::new();
    let name = Some(person.name.clone());
    let (customer, external_id) = match step.channel {
        Channel::Email => (
            Claim::new(
                IdentityKind::Email,
                person.email.clone().unwrap_or_default(),
            ),
            format!("<demo.{seed:x}.{seq}@mail.northwind.example>"),
        ),
        Channel::Telegram => {
            if first_here {
                if let Some(p) = person.phone.as_ref().filter(|_| person.shares_card) {
                    linked.push(Claim::new(IdentityKind::Phone, p.clone()));
                }
                if let Some(e) = &person.email {
                    linked.push(Claim::new(IdentityKind::Email, e.clone()));
                }
            }
            (
                Claim::new(
                    IdentityKind::Telegram,
                    person.telegram.clone().unwrap_or_default(),
                ),
                format!("tg-{seed:x}-{seq}"),
            )
        }
        Channel::WebChat => {
            if first_here {
                // The visitor fills in the widget's form.
                if let Some(e) = &person.email {
                    linked.push(Claim::new(IdentityKind::Email, e.clone()));
                } else if let Some(p) = &person.phone {
                    linked.push(Claim::new(IdentityKind::Phone, p.clone()));
                }
            }
            (
                Claim::new(
                    IdentityKind::WebChat,
                    person.visitor.clone().unwrap_or_default(),
                ),
                format!("wc-{seed:x}-{seq}"),
            )
        }
        Channel::Phone => {
            // The phone system knows the caller's number; the shop's CRM behind it their email.
            if let Some(e) = &person.email {
                linked.push(Claim::new(IdentityKind::Email, e.clone()));
            }
            (
                Claim::new(
                    IdentityKind::Phone,
                    person.phone.clone().unwrap_or_default(),
                ),
                format!("call-{seed:x}-{seq}"),
            )
        }
        other => {
            // WhatsApp, SMS, Instagram, Messenger: on their first message there, the customer
            // gives the email of their orders when asked (or their number on Instagram and
            // Messenger, if they have no email).
            if first_here {
                if let Some(e) = &person.email {
                    linked.push(Claim::new(IdentityKind::Email, e.clone()));
                } else if let Some(p) = person
                    .phone
                    .as_ref()
                    .filter(|_| other.identity_kind() != IdentityKind::Phone)
                {
                    linked.push(Claim::new(IdentityKind::Phone, p.clone()));
                }
            }
            let id = match other {
                Channel::Instagram => person.instagram.clone(),
                Channel::Messenger => person.messenger.clone(),
                _ => person.phone.clone(),
            };
            (
                Claim::new(other.identity_kind(), id.unwrap_or_default()),
                format!("{}-{seed:x}-{seq}", other.as_str()),
            )
        }
    };
    Inbound {
        channel: step.channel,
        account: if step.channel == Channel::Phone {
            PBX.to_string()
        } else {
            String::new()
        },
        external_id,
        direction: Direction::In,
        customer,
        linked,
        customer_name: name,
        author: None,
        subject,
        body: body.to_string(),
        sent_at: step.at,
        meta: None,
        cursor: None,
    }
}

/// A call the customer made, as the phone system's events webhook reports it
/// ([`crate::channels::hooks::events`]): the call line, then the agent's notes of what they
/// said. Returns the message's meta.
fn call_log(
    person: &Person,
    agent: &str,
    words: &str,
    rng: &mut Rng,
    out: &mut String,
) -> serde_json::Value {
    let from: String = person
        .phone
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let secs = rng.range(35, 14 * 60) as u64;
    let outcome = "answered";
    out.clear();
    out.push_str("Inbound call from ");
    out.push_str(&from);
    out.push_str(" · ");
    if secs < 60 {
        out.push_str(&format!("{secs} s"));
    } else {
        out.push_str(&format!("{} min {:02} s", secs / 60, secs % 60));
    }
    out.push_str(" · ");
    out.push_str(outcome);
    out.push_str(" · agent ");
    out.push_str(agent);
    out.push_str("\n\n");
    out.push_str(words);
    serde_json::json!({
        "event": { "source": PBX, "type": "call" },
        "call": {
            "direction": "in", "from": from, "to": "+442071838750", "duration_s": secs,
            "outcome": outcome, "recording_url": null, "agent": agent,
        },
    })
}

/// A purchase or a booking the shop reported through its events webhook: a note on the
/// customer's conversation with the event's fields, as [`crate::channels::hooks::events`]
/// stores it.
fn shop_event(
    pid: usize,
    person: &Person,
    ctx: &Ctx,
    step: &Step,
    seed: u64,
    seq: u64,
    rng: &mut Rng,
) -> Inbound {
    let (kind, fields): (&str, Vec<(&str, String)>) = match rng.below(3) {
        0 => (
            "purchase",
            vec![
                ("order", ctx.order.clone()),
                ("items", format!("{} × {}", ctx.qty.max(1), ctx.product)),
                ("total", ctx.amount.clone()),
            ],
        ),
        1 => (
            "booking",
            vec![
                ("service", "fitting appointment".to_string()),
                ("store", ctx.city.to_string()),
                ("date", ctx.date.to_string()),
            ],
        ),
        _ => (
            "return",
            vec![
                ("order", ctx.order.clone()),
                ("item", ctx.product.to_string()),
                ("label", ctx.reference.clone()),
            ],
        ),
    };
    let mut body = String::new();
    for (k, v) in &fields {
        body.push('\n');
        body.push_str(k);
        body.push_str(": ");
        body.push_str(v);
    }
    // The shop knows them by the email of their account (else their phone) and its own id.
    let customer = match (&person.email, &person.phone) {
        (Some(e), _) => Claim::new(IdentityKind::Email, e.clone()),
        (None, Some(p)) => Claim::new(IdentityKind::Phone, p.clone()),
        (None, None) => Claim::new(IdentityKind::Email, String::new()),
    };
    let linked = vec![Claim::new(
        IdentityKind::External,
        format!("{SHOP}:{}", 10_000 + pid),
    )];
    Inbound {
        channel: Channel::Event,
        account: SHOP.to_string(),
        external_id: format!("evt-{seed:x}-{seq}"),
        direction: Direction::Note,
        customer,
        linked,
        customer_name: Some(person.name.clone()),
        author: Some(SHOP.to_string()),
        subject: Some(kind.to_string()),
        body,
        sent_at: step.at,
        meta: Some(serde_json::json!({
            "event": { "source": SHOP, "type": kind },
            "call": null,
        })),
        cursor: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{Direction, Status};
    use crate::store::{MessageRow, QueueFilter};

    const NOW: Millis = 1_790_000_000_000;

    /// The demo's WhatsApp customers whose window closed can be written to with a template:
    /// the demo config offers some, and each renders with its parameters.
    #[test]
    fn the_demo_offers_whatsapp_templates() {
        let mut config = crate::config::Config::with_data_dir(std::env::temp_dir());
        config.workspace = workspace();
        let t = config.templates();
        assert!(t.iter().any(|t| t.name == "order_update"), "{t:?}");
        for t in &t {
            let params: Vec<String> = (1..=t.params()).map(|i| format!("p{i}")).collect();
            assert!(!t.render(&params).unwrap().contains("{{"), "{t:?}");
        }
    }

    fn demo(opts: &DemoOptions) -> (Store, GenerateReport) {
        let mut store = Store::open_in_memory().unwrap();
        let report = generate(&mut store, opts, NOW, &mut |_, _| {}).unwrap();
        (store, report)
    }

    fn all_messages(store: &Store) -> Vec<(String, MessageRow)> {
        let mut out = Vec::new();
        for c in store.contacts_page(None, usize::MAX).unwrap() {
            for m in store.timeline(c.id, None, usize::MAX).unwrap() {
                out.push((c.name.clone(), m));
            }
        }
        out
    }

    #[test]
    fn same_seed_same_workspace() {
        let opts = DemoOptions {
            contacts: 60,
            messages: 600,
            ..DemoOptions::default()
        };
        let (a, ra) = demo(&opts);
        let (b, rb) = demo(&opts);
        assert_eq!(
            (ra.contacts, ra.conversations, ra.messages),
            (rb.contacts, rb.conversations, rb.messages)
        );
        let ma = all_messages(&a);
        let mb = all_messages(&b);
        assert_eq!(ma.len(), 600);
        assert_eq!(ma, mb);
        let queue = |s: &Store| {
            s.queue_page(&QueueFilter::All, crate::store::QueueAnchor::Top, 1000)
                .unwrap()
        };
        assert_eq!(queue(&a), queue(&b));
        let (c, _) = demo(&DemoOptions { seed: 7, ..opts });
        assert_ne!(all_messages(&c), ma, "another seed, another workspace");
    }

    #[test]
    fn default_workspace_looks_like_a_support_inbox() {
        let (store, report) = demo(&DemoOptions::default());
        eprintln!("{report:?}");
        assert_eq!(report.messages, 3000);
        assert!((250..=315).contains(&report.contacts), "{report:?}");
        assert!((300..=1200).contains(&report.conversations), "{report:?}");
        let count = |s| store.queue_count(&QueueFilter::Status(s)).unwrap();
        let (open, pending, snoozed, resolved) = (
            count(Status::Open),
            count(Status::Pending),
            count(Status::Snoozed),
            count(Status::Resolved),
        );
        eprintln!("open {open} pending {pending} snoozed {snoozed} resolved {resolved}");
        assert!((30..=60).contains(&open), "open {open}");
        assert!(
            pending > 5 && snoozed > 0,
            "pending {pending} snoozed {snoozed}"
        );
        assert!(resolved > open + pending + snoozed);
        assert!(store.queue_count(&QueueFilter::Unassigned).unwrap() > 0);
        assert!(is_demo_workspace(&store).unwrap());
        assert_eq!(demo_seed(&store).unwrap(), Some(42));

        let msgs = all_messages(&store);
        let dirs = |d| msgs.iter().filter(|(_, m)| m.direction == d).count();
        assert!(
            dirs(Direction::In) > 1200 && dirs(Direction::Out) > 900 && dirs(Direction::Note) > 50
        );
        // Every channel, the new ones less than the three everyone has used for years.
        for (ch, least) in [
            (Channel::Email, 300),
            (Channel::Telegram, 300),
            (Channel::WebChat, 300),
            (Channel::WhatsApp, 150),
            (Channel::Sms, 40),
            (Channel::Instagram, 20),
            (Channel::Messenger, 10),
            (Channel::Phone, 30),
            (Channel::Event, 20),
        ] {
            let n = msgs.iter().filter(|(_, m)| m.channel == ch).count();
            eprintln!("{ch}: {n}");
            assert!(n > least, "{ch}: {n}");
        }
        // A plain reply goes where the customer last wrote: never to a call or an event.
        for q in store
            .queue_page(&QueueFilter::All, crate::store::QueueAnchor::Top, 100_000)
            .unwrap()
        {
            let c = store.reply_channel(q.id).unwrap();
            assert!(c.replyable(), "conversation {} replies on {c}", q.id.0);
        }
        // Call logs come from the phone system; events are notes with their fields.
        for (_, m) in msgs.iter().filter(|(_, m)| m.channel == Channel::Phone) {
            assert!(m.body.starts_with("Inbound call from +"), "{}", m.body);
            assert_eq!(m.direction, Direction::In);
            assert_eq!(m.account, PBX);
            assert!(m.body.contains(" · answered · agent "), "{}", m.body);
        }
        for (_, m) in msgs.iter().filter(|(_, m)| m.channel == Channel::Event) {
            assert_eq!(m.direction, Direction::Note);
            assert!(
                ["purchase", "booking", "return"].contains(&m.subject.as_deref().unwrap()),
                "{:?}",
                m.subject
            );
            assert!(m.body.contains(": "), "{}", m.body);
        }
        assert!(
            msgs.iter().any(|(_, m)| m.body.contains("\n> ")),
            "quoted email replies"
        );
        assert!(
            msgs.iter().any(|(_, m)| m.body.contains("#NW-")),
            "order numbers"
        );
        assert!(
            msgs.iter().any(|(_, m)| m
                .body
                .chars()
                .any(|c| ('\u{3040}'..='\u{9fff}').contains(&c))),
            "CJK"
        );
        assert!(
            msgs.iter()
                .any(|(_, m)| m.subject.as_deref().is_some_and(|s| s.starts_with("Re: ")))
        );
        for (_, m) in &msgs {
            assert_eq!(
                crate::sanitize::text(&m.body),
                m.body,
                "sanitized: {:?}",
                m.body
            );
            assert!(
                !m.body
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t')
            );
            assert!(m.created_at < NOW && m.created_at >= NOW - 91 * plan::DAY);
            if m.direction == Direction::Out {
                assert!(["alice", "bob", "carol", "dana"].contains(&m.author.as_str()));
                assert_eq!(m.delivery, Some(crate::model::Delivery::Sent));
            }
        }
        let vips = store
            .contacts_page(None, usize::MAX)
            .unwrap()
            .iter()
            .filter(|c| c.vip)
            .count();
        assert!(vips >= 5, "vips {vips}");
        // Message ids follow time (search orders by id as "newest first").
        let mut by_id: Vec<_> = msgs.iter().map(|(_, m)| (m.id, m.created_at)).collect();
        by_id.sort();
        assert!(by_id.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn most_contacts_are_omnichannel_with_one_active_conversation() {
        let (store, _) = demo(&DemoOptions::default());
        let contacts = store.contacts_page(None, usize::MAX).unwrap();
        let mut multi = 0;
        let mut multi_in_one = 0;
        // The README's first command shows one person on WhatsApp, SMS, email, Telegram and
        // the web chat, who also called.
        let mut everywhere = 0;
        let mut everywhere_and_called = 0;
        for c in &contacts {
            let kinds: std::collections::BTreeSet<_> = store
                .identities(c.id)
                .unwrap()
                .iter()
                .map(|i| i.kind)
                .collect();
            let convs = store.contact_conversations(c.id, 1000).unwrap();
            let active: Vec<_> = convs.iter().filter(|q| q.status.is_active()).collect();
            assert!(
                active.len() <= 1,
                "{} has {} active conversations",
                c.name,
                active.len()
            );
            let msgs = store.timeline(c.id, None, 10_000).unwrap();
            let channels: std::collections::BTreeSet<_> = msgs
                .iter()
                .filter(|m| m.direction == Direction::In)
                .map(|m| m.channel)
                .collect();
            // One contact: the identity of every channel they wrote on is theirs (a WhatsApp
            // number, an SMS number and a call are one phone).
            for ch in &channels {
                assert!(
                    kinds.contains(&ch.identity_kind()),
                    "{}: wrote on {channels:?} with identities {kinds:?}",
                    c.name
                );
            }
            if [
                Channel::WhatsApp,
                Channel::Sms,
                Channel::Email,
                Channel::Telegram,
                Channel::WebChat,
            ]
            .iter()
            .all(|c| channels.contains(c))
            {
                everywhere += 1;
                if channels.contains(&Channel::Phone) {
                    everywhere_and_called += 1;
                }
            }
            if channels.len() >= 2 {
                multi += 1;
                if convs.iter().any(|q| q.channels.len() >= 2) {
                    multi_in_one += 1;
                }
            }
        }
        assert!(
            multi * 100 >= contacts.len() * 60,
            "{multi} of {} write on 2+ channels",
            contacts.len()
        );
        assert!(
            everywhere >= 5 && everywhere_and_called >= 1,
            "{everywhere} write on all five, {everywhere_and_called} of them called too"
        );
        // One of them is the first conversation of the queue.
        let top = store
            .queue_page(&QueueFilter::All, crate::store::QueueAnchor::Top, 1)
            .unwrap()
            .remove(0);
        let on: std::collections::BTreeSet<_> = store
            .timeline(top.contact_id, None, 10_000)
            .unwrap()
            .iter()
            .filter(|m| m.direction == Direction::In)
            .map(|m| m.channel)
            .collect();
        assert!(
            plan::EVERYWHERE.iter().all(|c| on.contains(c)),
            "the queue's top writes on {on:?}"
        );
        assert_eq!(top.status, Status::Open);
        assert!(
            multi_in_one * 100 >= multi * 70,
            "{multi_in_one} of {multi} mix channels in one conversation"
        );
    }

    #[test]
    fn search_works_on_history_and_on_what_arrives_later() {
        let (mut store, _) = demo(&DemoOptions {
            contacts: 40,
            messages: 400,
            ..DemoOptions::default()
        });
        let q = crate::store::SearchQuery::parse("order").unwrap();
        assert!(!store.search(&q, 50).unwrap().is_empty());
        let first = &store.contacts_page(None, 1).unwrap()[0];
        let q = crate::store::SearchQuery::parse(&first.name).unwrap();
        assert!(
            store
                .search(&q, 50)
                .unwrap()
                .iter()
                .any(|h| h.contact_id == first.id)
        );
        // The triggers are back: a new message is searchable at once.
        let msg = Inbound {
            channel: Channel::WebChat,
            account: String::new(),
            external_id: "later-1".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::WebChat, "v_later"),
            linked: vec![],
            customer_name: Some("Quentin Zyzzyva".into()),
            author: None,
            subject: None,
            body: "xylophonic question".into(),
            sent_at: NOW,
            meta: None,
            cursor: None,
        };
        ingest::ingest(&mut store, &msg, &ingest::Settings::default()).unwrap();
        let q = crate::store::SearchQuery::parse("xylophonic").unwrap();
        assert_eq!(store.search(&q, 5).unwrap().len(), 1);
        let q = crate::store::SearchQuery::parse("zyzzyva").unwrap();
        assert_eq!(store.search(&q, 5).unwrap().len(), 1);
    }

    #[test]
    fn bulk_history_equals_ingest() {
        let opts = DemoOptions {
            seed: 9,
            contacts: 120,
            messages: 1500,
            ..DemoOptions::default()
        };
        let run = |path| {
            let mut store = Store::open_in_memory().unwrap();
            let r = generate_with(&mut store, &opts, NOW, &mut |_, _| {}, path).unwrap();
            assert_eq!(store.foreign_key_violations().unwrap(), 0);
            (store, r)
        };
        let (a, ra) = run(Path::Ingest);
        let (b, rb) = run(Path::Bulk);
        assert_eq!(
            (ra.contacts, ra.conversations, ra.messages),
            (rb.contacts, rb.conversations, rb.messages)
        );
        let contacts = a.contacts_page(None, usize::MAX).unwrap();
        assert_eq!(contacts, b.contacts_page(None, usize::MAX).unwrap());
        for c in &contacts {
            assert_eq!(a.identities(c.id).unwrap(), b.identities(c.id).unwrap());
            assert_eq!(
                a.timeline(c.id, None, usize::MAX).unwrap(),
                b.timeline(c.id, None, usize::MAX).unwrap()
            );
        }
        let queue = |s: &Store| {
            s.queue_page(&QueueFilter::All, crate::store::QueueAnchor::Top, 100_000)
                .unwrap()
        };
        let qa = queue(&a);
        assert_eq!(qa, queue(&b));
        assert_eq!(qa.len(), ra.conversations);
        for q in &qa {
            assert_eq!(
                a.conversation_tags(q.id).unwrap(),
                b.conversation_tags(q.id).unwrap()
            );
        }
        for words in ["refund", "order", "tracking", "Olivia", "invoice", "返金"] {
            let q = crate::store::SearchQuery::parse(words).unwrap();
            assert_eq!(
                a.search(&q, 200).unwrap(),
                b.search(&q, 200).unwrap(),
                "{words}"
            );
        }
        a.fts_integrity_check().unwrap();
        b.fts_integrity_check().unwrap();
        assert!(is_demo_workspace(&b).unwrap());
        // The bulk history is audited as one import.
        let events = b.events_since(crate::model::EventId(0), 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "imported");
        assert!(a.last_event_id().unwrap().0 > 1500);
        // The index built on the side keeps working: new messages are found, old ones too.
        let mut b = b;
        let msg = Inbound {
            channel: Channel::Email,
            account: String::new(),
            external_id: "<later@x.example>".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Email, "later@x.example"),
            linked: vec![],
            customer_name: Some("Lena Later".into()),
            author: None,
            subject: Some("quasar refund".into()),
            body: "quasar".into(),
            sent_at: NOW,
            meta: None,
            cursor: None,
        };
        ingest::ingest(&mut b, &msg, &ingest::Settings::default()).unwrap();
        let q = crate::store::SearchQuery::parse("quasar").unwrap();
        assert_eq!(b.search(&q, 5).unwrap().len(), 1);
        let q = crate::store::SearchQuery::parse("refund").unwrap();
        assert_eq!(
            b.search(&q, 100_000).unwrap().len(),
            a.search(&q, 100_000).unwrap().len() + 1
        );
        b.fts_integrity_check().unwrap();
    }

    #[test]
    fn refuses_a_store_that_is_not_empty() {
        let (mut store, _) = demo(&DemoOptions {
            contacts: 5,
            messages: 20,
            ..DemoOptions::default()
        });
        assert!(generate(&mut store, &DemoOptions::default(), NOW, &mut |_, _| {}).is_err());
        let fresh = Store::open_in_memory().unwrap();
        assert!(!is_demo_workspace(&fresh).unwrap());
    }
}
