//! The workflow rules on the server: loaded from the workspace's rules files and reloaded
//! when they change (a broken file keeps the last good rules running and says why), run on
//! every new event of the events table (from a durable cursor, so nothing written while no
//! server ran is skipped) and, for the time-based ones, by a sweep. What a rule does is
//! written as `rule:ID`; those events trigger no rule (no loops).

use super::Shared;
use crate::model::{ConversationId, EventId, Millis, now_millis};
use crate::rules::{self, Action, Known, Rule, RuleSet, RulesSource, Strategy, Trigger, Who};
use crate::store::{RuleApply, RuleOp, Store};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Who `{{agent.name}}` is in a rule's canned reply: nobody in person.
const AUTHOR: &str = "the team";

/// Events read per pass.
const BATCH: usize = 500;
/// Conversations a time-based rule takes per sweep.
const SWEEP_LIMIT: usize = 2000;

/// The rules a server runs, and the state of their files.
pub struct RulesState {
    source: RulesSource,
    known: Known,
    current: RwLock<Arc<RuleSet>>,
    stamp: Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
    /// The last load's error (the rules running are the last good ones).
    error: RwLock<Option<String>>,
    /// One pass at a time (the feed and the sweep both run rules).
    running: Mutex<()>,
}

impl RulesState {
    /// Load the workspace's rules. A broken file at start is an error the caller reports
    /// (`braid server --check` refuses it; a running server keeps going without rules).
    pub fn new(source: RulesSource, known: Known) -> (RulesState, Option<String>) {
        let (set, stamp, error) = match load(&source, &known) {
            Ok((set, stamp)) => (set, stamp, None),
            Err(e) => (RuleSet::default(), current_stamp(&source), Some(e)),
        };
        (
            RulesState {
                source,
                known,
                current: RwLock::new(Arc::new(set)),
                stamp: Mutex::new(stamp),
                error: RwLock::new(error.clone()),
                running: Mutex::new(()),
            },
            error,
        )
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .map(|r| Arc::clone(&r))
            .unwrap_or_default()
    }

    pub fn error(&self) -> Option<String> {
        self.error.read().ok().and_then(|e| e.clone())
    }

    pub fn source(&self) -> &RulesSource {
        &self.source
    }

    /// Reload when a file changed (or appeared, or went). True if the rules changed.
    pub fn reload_if_changed(&self) -> bool {
        let now = current_stamp(&self.source);
        {
            let Ok(old) = self.stamp.lock() else {
                return false;
            };
            if *old == now {
                return false;
            }
        }
        if let Ok(mut s) = self.stamp.lock() {
            *s = now;
        }
        match load(&self.source, &self.known) {
            Ok((set, _)) => {
                tracing::info!(rules = set.rules.len(), "rules reloaded");
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(set);
                }
                if let Ok(mut e) = self.error.write() {
                    *e = None;
                }
                true
            }
            Err(e) => {
                tracing::warn!(
                    "the rules files have an error; the last good rules keep running:\n{e}"
                );
                if let Ok(mut w) = self.error.write() {
                    *w = Some(e);
                }
                false
            }
        }
    }
}

fn current_stamp(source: &RulesSource) -> Vec<(PathBuf, Option<SystemTime>)> {
    match source {
        RulesSource::Dir(d) => rules::stamp(d),
        _ => Vec::new(),
    }
}

type Stamp = Vec<(PathBuf, Option<SystemTime>)>;

fn load(source: &RulesSource, known: &Known) -> Result<(RuleSet, Stamp), String> {
    match source {
        RulesSource::Dir(d) => rules::load_dir(d, known).map(|l| (l.set, l.files)),
        RulesSource::Text(t) => rules::load_str(t, "rules.toml", known).map(|s| (s, Vec::new())),
        RulesSource::None => Ok((RuleSet::default(), Vec::new())),
    }
}

/// The names rules may use, from the workspace config.
pub fn known(config: &crate::config::Config) -> Known {
    Known {
        fields: Some(config.workspace.fields.clone()),
        agents: config
            .workspace
            .agents
            .iter()
            .map(|a| a.name.clone())
            .collect(),
        teams: config
            .workspace
            .teams
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        sla: config
            .workspace
            .sla
            .policies
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        templates: Vec::new(),
    }
}

/// Where a config's rules live: beside the workspace config file, or the demo's own.
pub fn source_of(config: &crate::config::Config) -> RulesSource {
    if let Some(text) = &config.workspace.demo_rules {
        return RulesSource::Text(text.clone());
    }
    match config.source.as_ref().and_then(|p| p.parent()) {
        Some(dir) => RulesSource::Dir(dir.to_path_buf()),
        None => RulesSource::None,
    }
}

/// What a pass did (for tests and the log).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub events: usize,
    pub matched: usize,
}

/// The context actions are resolved in: who is online, the teams' members.
pub struct Context<'a> {
    pub config: &'a crate::config::Config,
    pub online: Vec<String>,
    /// The workspace's canned replies (`reply = { template = ... }`).
    pub canned: Option<Arc<crate::canned::Library>>,
}

/// Run the rules over the events after the cursor, until caught up. Blocking.
pub fn run_events(store: &mut Store, set: &RuleSet, cx: &Context<'_>) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    let Some(mut cursor) = store.rules_cursor()? else {
        // Never ran: start at the newest event (the history is not re-run).
        let newest = store.last_event_id()?;
        store.set_rules_cursor(newest)?;
        return Ok(pass);
    };
    loop {
        let events = store.events_since(cursor, BATCH)?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(pass);
        };
        // One transaction per pass over these events (the rules' changes and the cursor
        // commit together: a crash re-runs the pass, and rule_fired keeps it exactly once).
        let matched = store.in_one_transaction(|store| -> anyhow::Result<usize> {
            let mut matched = 0;
            if !set.is_empty() {
                for e in &events {
                    let Some(conv) = e.conversation_id else {
                        continue;
                    };
                    let triggers = Trigger::of_event(&e.kind, &e.actor, e.data.as_deref());
                    if !triggers
                        .iter()
                        .any(|t| set.enabled_for(*t).next().is_some())
                    {
                        continue;
                    }
                    // The facts once per event, again only after a rule changed something (a
                    // later rule sees what an earlier one did).
                    let now = now_millis();
                    let mut f: Option<rules::Facts> = None;
                    for trigger in triggers {
                        for rule in set.enabled_for(trigger) {
                            if f.is_none() {
                                match facts(store, cx, conv, e.message_id, now) {
                                    Ok(x) => f = Some(x),
                                    Err(err) => {
                                        tracing::warn!(rule = %rule.id, "rule facts: {err}");
                                        break;
                                    }
                                }
                            }
                            let Some(current) = &f else { break };
                            let verdict = rules::evaluate(rule, current);
                            if !verdict.matched {
                                continue;
                            }
                            if apply(
                                store,
                                cx,
                                rule,
                                conv,
                                Some(e.id),
                                None,
                                &verdict,
                                current,
                                now,
                            )? {
                                matched += 1;
                                f = None;
                            }
                        }
                    }
                }
            }
            store.set_rules_cursor(last)?;
            Ok(matched)
        })?;
        pass.matched += matched;
        pass.events += events.len();
        cursor = last;
        if events.len() < BATCH {
            return Ok(pass);
        }
    }
}

/// Run the time-based rules over the conversations now due. Blocking.
pub fn sweep(
    store: &mut Store,
    set: &RuleSet,
    cx: &Context<'_>,
    now: Millis,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    for rule in set.rules.iter().filter(|r| r.enabled && r.on.is_timed()) {
        let Some(after) = rule.after else { continue };
        let on_us = rule.on == Trigger::WaitingOnUs;
        let due = store.timed_candidates(&rule.id, on_us, after, now, SWEEP_LIMIT)?;
        // One transaction per rule and sweep (each conversation's outcome a savepoint).
        store.in_one_transaction(|store| -> anyhow::Result<()> {
            for (conv, episode) in due {
                pass.events += 1;
                let f = facts(store, cx, conv, None, now)?;
                let verdict = rules::evaluate(rule, &f);
                if verdict.matched {
                    if apply(
                        store,
                        cx,
                        rule,
                        conv,
                        None,
                        Some(episode),
                        &verdict,
                        &f,
                        now,
                    )? {
                        pass.matched += 1;
                    }
                } else {
                    store.rule_skipped(&rule.id, conv, episode, now)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(pass)
}

fn facts(
    store: &Store,
    cx: &Context<'_>,
    conv: ConversationId,
    message: Option<crate::model::MessageId>,
    now: Millis,
) -> anyhow::Result<rules::Facts> {
    let mut f = store.rule_facts(conv, message, now)?;
    f.business_hours = business_hours(cx, f.team.as_deref(), now);
    Ok(f)
}

/// Whether `at` is in the business hours of `team` (its `[[teams]] hours`, else the
/// workspace's only `[[hours]]`); None when the workspace defines no hours.
fn business_hours(cx: &Context<'_>, team: Option<&str>, at: Millis) -> Option<bool> {
    let sla = &cx.config.workspace.sla;
    let hours = match sla.team_hours(team) {
        Some(name) => sla.hours_named(name),
        None if sla.hours.len() == 1 => sla.hours.first(),
        None => None,
    }?;
    Some(hours.is_open(at))
}

/// Resolve a rule's actions into store operations (an agent picked, a reply's text).
pub fn plan(
    store: &Store,
    cx: &Context<'_>,
    rule: &Rule,
    facts: &rules::Facts,
    now: Millis,
) -> Result<Vec<RuleOp>, String> {
    let mut ops = Vec::new();
    for a in &rule.actions {
        match a {
            Action::Assign(who) => ops.push(RuleOp::Assign(who.clone())),
            Action::AssignTeam { team, strategy } => {
                ops.push(RuleOp::Team(Some(team.clone())));
                let members: Vec<String> = cx
                    .config
                    .workspace
                    .agents
                    .iter()
                    .filter(|a| a.teams.iter().any(|t| t == team))
                    .map(|a| a.name.clone())
                    .filter(|n| cx.online.contains(n))
                    .collect();
                let pick = match strategy {
                    Strategy::TeamQueue => None,
                    s => store
                        .pick_agent(team, &members, *s == Strategy::LeastOpen)
                        .map_err(|e| e.to_string())?,
                };
                match pick {
                    Some(agent) => {
                        if *strategy == Strategy::RoundRobin {
                            ops.push(RuleOp::Rotate {
                                team: team.clone(),
                                agent: agent.clone(),
                            });
                        }
                        ops.push(RuleOp::Assign(Some(agent)));
                    }
                    // Nobody of the team online (or the team's queue asked for): the team's
                    // queue, unassigned.
                    None => ops.push(RuleOp::Assign(None)),
                }
            }
            Action::Priority(p) => ops.push(RuleOp::Priority(*p)),
            Action::Tag(t) => ops.push(RuleOp::Tag(t.clone())),
            Action::Untag(t) => ops.push(RuleOp::Untag(t.clone())),
            Action::Snooze(ms) => ops.push(RuleOp::Snooze(now + ms)),
            Action::Status(s) => ops.push(RuleOp::Status(*s)),
            Action::Vip(v) => ops.push(RuleOp::Vip(*v)),
            Action::Note(n) => ops.push(RuleOp::Note(n.clone())),
            Action::Reply {
                template,
                text,
                channel,
            } => {
                let channel = match channel {
                    Some(c) => *c,
                    None => match facts.conversation {
                        Some(conv) => store.reply_channel(conv).map_err(|e| e.to_string())?,
                        None => facts.channel,
                    },
                };
                let body = match (template, text) {
                    (_, Some(t)) => t.clone(),
                    (Some(name), None) => {
                        let Some(conv) = facts.conversation else {
                            return Err(format!(
                                "template '{name}' is rendered for a stored conversation only"
                            ));
                        };
                        let Some(lib) = &cx.canned else {
                            return Err(format!("template '{name}': no templates are loaded"));
                        };
                        crate::canned::render_for(store, lib, name, conv, channel, AUTHOR)
                            .map_err(|e| e.to_string())?
                    }
                    (None, None) => return Err("a reply needs a template or a text".into()),
                };
                ops.push(RuleOp::Reply {
                    channel,
                    body,
                    meta: Some(serde_json::json!({ "rule": rule.id })),
                });
            }
            Action::Notify { who, message } => {
                let agent = match who {
                    Who::Agent(a) => Some(a.clone()),
                    Who::Assignee => facts.assignee.clone(),
                };
                if let Some(agent) = agent {
                    ops.push(RuleOp::Notify {
                        agent,
                        message: if message.is_empty() {
                            rule.name.clone()
                        } else {
                            message.clone()
                        },
                    });
                }
            }
            Action::Task {
                kind,
                title,
                due_ms,
                assignee,
            } => {
                let assignee = match assignee {
                    Some(Who::Agent(a)) => Some(a.clone()),
                    Some(Who::Assignee) => facts.assignee.clone(),
                    None => None,
                };
                let task = crate::store::NewTask {
                    kind: kind.clone(),
                    title: title.clone(),
                    due_at: due_ms.map(|d| now + d),
                    assignee: assignee.clone(),
                    team: None,
                    contact: None,
                    conversation: facts.conversation,
                };
                let what = match &assignee {
                    Some(a) => format!("a {kind} task “{title}” for {a}"),
                    None => format!("a {kind} task “{title}”"),
                };
                ops.push(RuleOp::Other {
                    what,
                    run: Arc::new(move |tx, _conv, actor, at| {
                        tx.create_task(&task, actor, at).map(|_| ())
                    }),
                });
            }
            Action::SetField { .. } | Action::SetStage(_) | Action::AddScore(_) => {
                let fields = Arc::new(cx.config.workspace.fields.clone());
                let act = a.clone();
                ops.push(RuleOp::Other {
                    what: a.describe(),
                    run: Arc::new(move |tx, conv, actor, at| {
                        tx.rule_contact_edit(conv, &fields, &act, actor, at)
                    }),
                });
            }
            Action::Sla(p) => {
                let cfg = &cx.config.workspace.sla;
                cfg.require(p)?;
                let cfg = Arc::new(cfg.clone());
                let name = p.clone();
                ops.push(RuleOp::Other {
                    what: format!("SLA {p}"),
                    run: Arc::new(move |tx, conv, actor, at| {
                        tx.apply_sla_by_name(conv, &cfg, &name, at, actor)
                            .map(|_| ())
                    }),
                });
            }
        }
    }
    Ok(ops)
}

#[allow(clippy::too_many_arguments)]
fn apply(
    store: &mut Store,
    cx: &Context<'_>,
    rule: &Rule,
    conv: ConversationId,
    cause: Option<EventId>,
    episode: Option<Millis>,
    verdict: &rules::Verdict,
    facts: &rules::Facts,
    now: Millis,
) -> anyhow::Result<bool> {
    let (ops, plan_error) = match plan(store, cx, rule, facts, now) {
        Ok(ops) => (ops, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let applied = store.apply_rule(&RuleApply {
        rule: &rule.id,
        name: &rule.name,
        trigger: rule.on.as_str(),
        conversation: conv,
        cause,
        episode,
        why: verdict.line(),
        ops,
        at: now,
    })?;
    if let Some(e) = plan_error {
        tracing::warn!(rule = %rule.id, conversation = conv.0, "rule actions not applied: {e}");
    }
    for f in &applied.failed {
        tracing::warn!(rule = %rule.id, conversation = conv.0, "rule action failed: {f}");
    }
    Ok(applied.fired)
}

/// One pass over new events on a pooled connection (called when the feed sees events).
pub(crate) async fn run_after_events(shared: &Arc<Shared>) {
    let sh = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Pass> {
        let _one = sh.rules.running.lock();
        let set = sh.rules.rules();
        let mut store = sh.take_store()?;
        store.set_scope(crate::store::Scope::all("server"))?;
        let cx = Context {
            config: &sh.config,
            online: sh.presence.online_agents(),
            canned: Some(sh.canned.current().0),
        };
        let r = run_events(&mut store, &set, &cx);
        sh.give_store(store);
        r
    })
    .await;
    match done {
        Ok(Err(e)) => tracing::warn!("running the rules: {e}"),
        Err(e) => tracing::warn!("running the rules: {e}"),
        Ok(Ok(_)) => {}
    }
}

/// Every few seconds: reload changed rules files, run the time-based rules.
pub(crate) async fn sweep_loop(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        every.tick().await;
        let sh = Arc::clone(&shared);
        let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Pass> {
            sh.rules.reload_if_changed();
            let _one = sh.rules.running.lock();
            let set = sh.rules.rules();
            if !set.rules.iter().any(|r| r.enabled && r.on.is_timed()) {
                return Ok(Pass::default());
            }
            let mut store = sh.take_store()?;
            store.set_scope(crate::store::Scope::all("server"))?;
            let cx = Context {
                config: &sh.config,
                online: sh.presence.online_agents(),
                canned: Some(sh.canned.current().0),
            };
            let r = sweep(&mut store, &set, &cx, now_millis());
            sh.give_store(store);
            r
        })
        .await;
        match done {
            Ok(Err(e)) => tracing::warn!("the time-based rules: {e}"),
            Err(e) => tracing::warn!("the time-based rules: {e}"),
            Ok(Ok(_)) => {}
        }
    }
}

/// Answer [`Request::Rules`] and [`Request::RulesTest`] (on the asking agent's scope).
pub(crate) async fn answer(
    shared: &Arc<Shared>,
    who: &Arc<super::Identity>,
    req: crate::api::Request,
) -> crate::api::Response {
    use crate::api::Response;
    let sh = Arc::clone(shared);
    let w = Arc::clone(who);
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Response> {
        let mut store = sh.take_store()?;
        let r = (|| -> anyhow::Result<Response> {
            store.set_scope(w.scope())?;
            let cx = Context {
                config: &sh.config,
                online: sh.presence.online_agents(),
                canned: Some(sh.canned.current().0),
            };
            match req {
                crate::api::Request::Rules => Ok(Response::Rules(Box::new(report(
                    &store,
                    &sh.rules,
                    now_millis(),
                )?))),
                crate::api::Request::RulesTest {
                    conversation,
                    message,
                    rules: text,
                } => {
                    let set = match text {
                        Some(t) => Arc::new(
                            rules::load_str(&t, "rules.toml", &known(&sh.config))
                                .map_err(anyhow::Error::msg)?,
                        ),
                        None => sh.rules.rules(),
                    };
                    Ok(Response::RulesTested(Box::new(dry_run(
                        &store,
                        &cx,
                        &set,
                        conversation,
                        message.as_ref(),
                        now_millis(),
                    )?)))
                }
                _ => Ok(Response::Error("not a rules request".into())),
            }
        })();
        sh.give_store(store);
        r
    })
    .await;
    match done {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => crate::api::Response::Error(e.to_string()),
        Err(e) => crate::api::Response::Error(format!("the rules request failed: {e}")),
    }
}

/// The rules with their match counts for the last 7 days.
pub fn report(
    store: &Store,
    state: &RulesState,
    now: Millis,
) -> anyhow::Result<crate::api::RulesReport> {
    let set = state.rules();
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    let counts = store.rule_match_counts(&ids, now - 7 * 86_400_000)?;
    Ok(crate::api::RulesReport {
        rules: set
            .rules
            .iter()
            .zip(counts)
            .map(|(r, n)| crate::api::RuleLine {
                id: r.id.clone(),
                name: r.name.clone(),
                enabled: r.enabled,
                on: r.on.as_str().into(),
                after: r.after.map(crate::units::duration_label),
                conditions: r.all.len() + r.any.len(),
                actions: r.actions.iter().map(Action::describe).collect(),
                matches_7d: n,
                origin: r.origin.clone(),
            })
            .collect(),
        error: state.error(),
        source: match state.source() {
            RulesSource::Dir(d) => d.display().to_string(),
            RulesSource::Text(_) => "the demo workspace".into(),
            RulesSource::None => "none (no workspace config file)".into(),
        },
    })
}

/// A dry run: nothing is written.
pub fn dry_run(
    store: &Store,
    cx: &Context<'_>,
    set: &RuleSet,
    conversation: Option<ConversationId>,
    message: Option<&crate::api::TestMessage>,
    now: Millis,
) -> anyhow::Result<crate::api::DryRun> {
    let (subject, event, facts) = match (conversation, message) {
        (Some(conv), None) => {
            let f = store.rule_facts(conv, None, now)?;
            (
                format!("conversation #{} ({})", conv.0, f.contact_name),
                None,
                f,
            )
        }
        (None, Some(m)) => {
            let f = message_facts(store, m, now)?;
            (
                format!(
                    "a message on {} from {}",
                    m.channel.label(),
                    crate::sanitize::line(&m.from)
                ),
                Some(Trigger::MessageReceived),
                f,
            )
        }
        _ => anyhow::bail!("give a conversation or a message to test"),
    };
    let mut facts = facts;
    facts.business_hours = business_hours(cx, facts.team.as_deref(), now);
    let mut out = Vec::new();
    for r in &set.rules {
        let runs = event.is_none_or(|t| t == r.on);
        let v = rules::evaluate(r, &facts);
        let (would, problem) = if v.matched && runs {
            match plan(store, cx, r, &facts, now) {
                Ok(ops) => (describe_ops(r, &ops), None),
                Err(e) => (r.actions.iter().map(Action::describe).collect(), Some(e)),
            }
        } else {
            (Vec::new(), None)
        };
        out.push(crate::api::DryRule {
            id: r.id.clone(),
            name: r.name.clone(),
            on: match r.after {
                Some(a) => format!(
                    "{} after {}",
                    r.on.as_str(),
                    crate::units::duration_label(a)
                ),
                None => r.on.as_str().into(),
            },
            enabled: r.enabled,
            runs,
            matched: v.matched,
            why: v.line(),
            would,
            problem,
        });
    }
    Ok(crate::api::DryRun {
        subject,
        event: event.map(|t| t.as_str().to_string()),
        rules: out,
    })
}

/// What resolved operations would do, one line each.
fn describe_ops(rule: &Rule, ops: &[RuleOp]) -> Vec<String> {
    let mut out = Vec::new();
    for op in ops {
        out.push(match op {
            RuleOp::Assign(Some(a)) => format!("assign to {a}"),
            RuleOp::Assign(None) => "leave unassigned (the team's queue)".into(),
            RuleOp::Team(Some(t)) => format!("move to team {t}"),
            RuleOp::Team(None) => "take out of its team".into(),
            RuleOp::Priority(p) => format!("set priority {}", p.as_str()),
            RuleOp::Tag(t) => format!("tag {t}"),
            RuleOp::Untag(t) => format!("untag {t}"),
            RuleOp::Snooze(_) => rule
                .actions
                .iter()
                .find(|a| matches!(a, Action::Snooze(_)))
                .map(Action::describe)
                .unwrap_or_else(|| "snooze".into()),
            RuleOp::Status(s) => format!("set status {}", s.as_str()),
            RuleOp::Vip(true) => "mark the contact VIP".into(),
            RuleOp::Vip(false) => "unmark the contact VIP".into(),
            RuleOp::Note(n) => format!("add a note “{}”", crate::sanitize::line(n)),
            RuleOp::Reply { channel, body, .. } => format!(
                "reply on {}: “{}”",
                channel.as_str(),
                crate::sanitize::line(body)
                    .chars()
                    .take(60)
                    .collect::<String>()
            ),
            RuleOp::Notify { agent, message } => {
                format!("notify {agent}: {}", crate::sanitize::line(message))
            }
            RuleOp::Rotate { .. } => continue,
            RuleOp::Other { what, .. } => what.clone(),
        });
    }
    out
}

/// Facts for a message that is not stored: its sender's contact when braid knows them (and
/// their active conversation), else a new contact.
fn message_facts(
    store: &Store,
    m: &crate::api::TestMessage,
    now: Millis,
) -> anyhow::Result<rules::Facts> {
    let kind = m.channel.identity_kind();
    let value = crate::identity::normalize(kind, &m.from).unwrap_or_else(|_| m.from.clone());
    let text = match &m.subject {
        Some(s) => format!("{s}\n{}", m.text),
        None => m.text.clone(),
    };
    let contact = store.contact_by_identity(kind, &value)?;
    let conv = match contact {
        Some(c) => store.active_conversation(c)?,
        None => None,
    };
    if let Some(conv) = conv {
        let mut f = store.rule_facts(conv, None, now)?;
        f.channel = m.channel;
        f.text = text;
        f.account = String::new();
        return Ok(f);
    }
    let emails = if kind == crate::model::IdentityKind::Email {
        vec![value.to_lowercase()]
    } else {
        Vec::new()
    };
    let earlier = match contact {
        Some(c) => store.contact_conversations(c, 1000)?.len() as i64,
        None => 0,
    };
    Ok(rules::Facts {
        conversation: None,
        channel: m.channel,
        account: String::new(),
        team: None,
        status: crate::model::Status::Open,
        priority: crate::model::Priority::Normal,
        assignee: None,
        vip: match contact {
            Some(c) => store.contact(c)?.vip,
            None => false,
        },
        tags: Vec::new(),
        contact_name: m.name.clone().unwrap_or_else(|| m.from.clone()),
        emails,
        text,
        earlier_conversations: earlier,
        last_reply_at: None,
        waiting_since: Some(now),
        business_hours: None,
        csat: None,
        stage: match contact {
            Some(c) => store.contact(c)?.stage,
            None => None,
        },
        score: match contact {
            Some(c) => store.contact(c)?.lead_score,
            None => 0,
        },
        fields: match contact {
            Some(c) => store
                .contact_fields(c)?
                .into_iter()
                .map(|v| (v.name, v.value))
                .collect(),
            None => Vec::new(),
        },
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Claim;
    use crate::ingest::{Inbound, Settings};
    use crate::model::{Channel, Direction, IdentityKind, Priority, Status};

    fn config() -> crate::config::Config {
        let mut c = crate::config::Config::with_data_dir("/nonexistent");
        c.workspace = crate::demo::workspace();
        c
    }

    fn msg(ext: &str, from: &str, subject: &str, body: &str, at: Millis) -> Inbound {
        Inbound {
            channel: Channel::Email,
            account: String::new(),
            external_id: ext.into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Email, from),
            linked: Vec::new(),
            customer_name: None,
            author: None,
            subject: Some(subject.into()),
            body: body.into(),
            sent_at: at,
            meta: None,
            cursor: None,
        }
    }

    /// The context of a pass: the demo workspace, these agents online, no templates.
    fn cx<'a>(cfg: &'a crate::config::Config, online: Vec<String>) -> Context<'a> {
        Context {
            config: cfg,
            online,
            canned: None,
        }
    }

    fn set(text: &str) -> RuleSet {
        rules::load_str(text, "rules.toml", &known(&config())).unwrap()
    }

    fn store() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        // The cursor starts here (a store's history is not re-run).
        s.set_rules_cursor(s.last_event_id().unwrap()).unwrap();
        s
    }

    fn ingest(s: &mut Store, m: &Inbound) -> ConversationId {
        match crate::ingest::ingest(s, m, &Settings::default()).unwrap() {
            crate::ingest::Ingested::Stored { conversation, .. }
            | crate::ingest::Ingested::Duplicate { conversation, .. } => conversation,
            #[allow(unreachable_patterns)]
            _ => panic!("not stored"),
        }
    }

    const RULES: &str = r#"
[[rules]]
id = "billing"
name = "Billing to billing"
on = "message_received"
any = [{ words = ["refund", "invoice"] }, { domain = "bigcorp.com" }]
actions = [{ assign_team = "sales", strategy = "round_robin" }, { tag = "billing" }]

[[rules]]
id = "vip"
name = "VIP first"
on = "message_received"
all = [{ vip = true }]
actions = [{ priority = "urgent" }]

[[rules]]
id = "on-tag"
name = "Tagged billing: high"
on = "tag_added"
all = [{ tag = "billing" }]
actions = [{ priority = "high" }]
"#;

    #[test]
    fn a_matching_message_is_routed_tagged_and_audited_as_the_rule() {
        let mut s = store();
        let cfg = config();
        let cx = cx(&cfg, vec!["carol".into(), "dana".into()]);
        let rs = set(RULES);
        let now = crate::model::now_millis();
        let c = ingest(
            &mut s,
            &msg("a1", "ann@example.com", "Hi", "I want a refund please", now),
        );
        let other = ingest(
            &mut s,
            &msg("b1", "bo@example.com", "Hi", "where is my parcel", now),
        );
        let pass = run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(pass.matched, 1, "{pass:?}");
        let row = s.conversation(c).unwrap();
        assert_eq!(row.team.as_deref(), Some("sales"));
        assert_eq!(row.assignee.as_deref(), Some("carol"));
        assert_eq!(s.conversation_tags(c).unwrap(), vec!["billing".to_string()]);
        // The rule's own tag does not trigger `on-tag` (no loops): priority stays normal.
        assert_eq!(row.priority, Priority::Normal);
        let untouched = s.conversation(other).unwrap();
        assert_eq!(untouched.team, None);
        let evs = s.conversation_events(c, 50).unwrap();
        let by_rule: Vec<&str> = evs
            .iter()
            .filter(|e| e.actor == "rule:billing")
            .map(|e| e.kind.as_str())
            .collect();
        assert!(by_rule.contains(&"rule_matched"), "{by_rule:?}");
        assert!(by_rule.contains(&"assigned"), "{by_rule:?}");
        assert!(by_rule.contains(&"tag_added"), "{by_rule:?}");
        // A second pass finds nothing new, and replays apply nothing twice.
        assert_eq!(run_events(&mut s, &rs, &cx).unwrap().matched, 0);
    }

    #[test]
    fn round_robin_rotates_among_online_members_and_falls_back_to_the_team_queue() {
        let mut s = store();
        let cfg = config();
        let rs = set(RULES);
        let now = crate::model::now_millis();
        let online = cx(&cfg, vec!["carol".into(), "dana".into(), "alice".into()]);
        let mut got = Vec::new();
        for i in 0..4 {
            let c = ingest(
                &mut s,
                &msg(
                    &format!("m{i}"),
                    &format!("p{i}@example.com"),
                    "Hi",
                    "invoice?",
                    now,
                ),
            );
            run_events(&mut s, &rs, &online).unwrap();
            got.push(s.conversation(c).unwrap().assignee.unwrap_or_default());
        }
        // alice is online but not in sales; carol and dana take turns.
        assert_eq!(got, vec!["carol", "dana", "carol", "dana"]);
        let nobody = cx(&cfg, vec!["alice".into()]);
        let c = ingest(&mut s, &msg("m9", "p9@example.com", "Hi", "invoice?", now));
        run_events(&mut s, &rs, &nobody).unwrap();
        let row = s.conversation(c).unwrap();
        assert_eq!(row.team.as_deref(), Some("sales"));
        assert_eq!(row.assignee, None, "nobody of the team online: its queue");
    }

    #[test]
    fn least_open_picks_the_member_with_fewest_open_conversations() {
        let mut s = store();
        let cfg = config();
        let rs = set(&RULES.replace("round_robin", "least_open"));
        let now = crate::model::now_millis();
        let cx = cx(&cfg, vec!["carol".into(), "dana".into()]);
        // carol already has two open conversations.
        for i in 0..2 {
            let c = ingest(
                &mut s,
                &msg(&format!("x{i}"), &format!("x{i}@e.com"), "Hi", "hello", now),
            );
            s.assign(c, Some("carol"), "admin", now).unwrap();
        }
        run_events(&mut s, &rs, &cx).unwrap();
        let c = ingest(&mut s, &msg("y", "y@e.com", "Hi", "refund", now));
        run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(s.conversation(c).unwrap().assignee.as_deref(), Some("dana"));
    }

    /// Rules read and change the contact's fields, stage and score: `add_score` and
    /// `set_field` on a pricing question, then `set_stage` once the score and the plan say
    /// so; the changes are audited as the rule; bad names and values fail the load.
    #[test]
    fn rules_score_contacts_and_move_them_through_the_pipeline() {
        let mut s = store();
        let cfg = config();
        let cx = cx(&cfg, Vec::new());
        let rs = set(r#"
[[rules]]
id = "pricing"
name = "Pricing interest"
on = "message_received"
all = [{ words = ["pricing"] }]
actions = [{ add_score = 10 }, { set_field = "plan", value = "pro" }]

[[rules]]
id = "qualify"
name = "Qualify hot leads"
on = "message_received"
all = [{ score = ">= 10" }, { field = { plan = ["pro", "enterprise"] } }, { stage = "none" }]
actions = [{ set_stage = "qualified" }, { add_score = -1 }]
"#);
        let now = crate::model::now_millis();
        let c = ingest(
            &mut s,
            &msg(
                "p1",
                "lead@example.com",
                "Hi",
                "your pricing?",
                now - 60_000,
            ),
        );
        run_events(&mut s, &rs, &cx).unwrap();
        let contact = s.conversation(c).unwrap().contact_id;
        // The rules run in order, each on the facts as the one before left them.
        let row = s.contact(contact).unwrap();
        assert_eq!(
            (row.stage.as_deref(), row.lead_score),
            (Some("qualified"), 9)
        );
        assert_eq!(
            crate::store::fields::contact_field_for_tests(&s, contact, "plan").as_deref(),
            Some("pro")
        );
        // Qualified now: the rule does not fire again.
        ingest(
            &mut s,
            &msg("p3", "lead@example.com", "Re: Hi", "ok", now - 40_000),
        );
        run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(s.contact(contact).unwrap().lead_score, 9);
        let actors = s
            .events_since(crate::model::EventId(0), 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "contact_updated")
            .map(|e| e.actor)
            .collect::<Vec<_>>();
        assert!(
            actors.len() == 4 && actors.iter().all(|a| a.starts_with("rule:")),
            "{actors:?}"
        );
        let k = known(&config());
        for (bad, says) in [
            (r#"{ set_stage = "won" }"#, "lead, qualified"),
            (
                r#"{ set_field = "plan", value = "gold" }"#,
                "free, pro, enterprise",
            ),
            (r#"{ set_field = "colour", value = "red" }"#, "plan"),
            (r#"{ add_score = "lots" }"#, "whole number"),
        ] {
            let text = format!(
                "[[rules]]\nid = \"x\"\nname = \"x\"\non = \"message_received\"\nactions = [{bad}]\n"
            );
            let e = rules::load_str(&text, "rules.toml", &k)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let text = "[[rules]]\nid = \"x\"\nname = \"x\"\non = \"message_received\"\nall = [{ stage = \"won\" }]\nactions = [{ tag = \"t\" }]\n";
        assert!(rules::load_str(text, "rules.toml", &k).is_err());
    }

    /// A low survey score triggers a rule (`csat_answered` with `csat_below`): tagged,
    /// priority raised, the assignee notified; a good score does not match; a list of
    /// scores (`csat = [4, 5]`) works too; the condition is checked when the rules load.
    #[test]
    fn a_low_csat_answer_triggers_a_rule_and_a_good_one_does_not() {
        let mut s = store();
        let cfg = config();
        let cx = cx(&cfg, Vec::new());
        let rs = set(r#"
[[rules]]
id = "unhappy"
name = "Unhappy customers: follow up"
on = "csat_answered"
all = [{ csat_below = 3 }]
actions = [{ tag = "unhappy" }, { priority = "high" }, { notify = "assignee", message = "low CSAT" }]

[[rules]]
id = "happy"
name = "Happy customers"
on = "csat_answered"
all = [{ csat = [4, 5] }]
actions = [{ tag = "happy" }]
"#);
        let csat = crate::csat::CsatConfig {
            enabled: true,
            ..Default::default()
        };
        let now = crate::model::now_millis();
        s.derive_csat(&csat, now).unwrap();
        let mut convs = Vec::new();
        for (i, who) in ["low@example.com", "high@example.com"].iter().enumerate() {
            let c = ingest(
                &mut s,
                &msg(&format!("c{i}"), who, "Hi", "help", now - 60_000),
            );
            s.assign(c, Some("carol"), "carol", now - 50_000).unwrap();
            s.set_status(c, Status::Resolved, None, "carol", now - 40_000)
                .unwrap();
            convs.push(c);
        }
        assert_eq!(s.derive_csat(&csat, now - 30_000).unwrap().sent, 2);
        run_events(&mut s, &rs, &cx).unwrap();
        ingest(
            &mut s,
            &msg(
                "r0",
                "low@example.com",
                "Re: Hi",
                "2 - nobody answered my question",
                now - 20_000,
            ),
        );
        ingest(
            &mut s,
            &msg("r1", "high@example.com", "Re: Hi", "5", now - 20_000),
        );
        let pass = run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(pass.matched, 2, "{pass:?}");
        assert_eq!(
            s.conversation_tags(convs[0]).unwrap(),
            vec!["unhappy".to_string()]
        );
        assert_eq!(s.conversation(convs[0]).unwrap().priority, Priority::High);
        assert_eq!(
            s.conversation_tags(convs[1]).unwrap(),
            vec!["happy".to_string()]
        );
        let notified = s
            .conversation_events(convs[0], 50)
            .unwrap()
            .into_iter()
            .any(|e| {
                e.kind == "rule_matched" && e.data.as_deref().unwrap_or("").contains("low CSAT")
            });
        assert!(notified);
        // Bad conditions are refused with what to write instead.
        for bad in ["csat_below = 9", "csat = [0, 6]", "csat = \"low\""] {
            let text = format!(
                "[[rules]]\nid = \"x\"\nname = \"x\"\non = \"csat_answered\"\nall = [{{ {bad} }}]\nactions = [{{ tag = \"x\" }}]\n"
            );
            let err = rules::load_str(&text, "rules.toml", &known(&config())).unwrap_err();
            assert!(err.to_string().contains("csat"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_agents_change_triggers_rules_but_a_rules_does_not() {
        let mut s = store();
        let cfg = config();
        let rs = set(RULES);
        let now = crate::model::now_millis();
        let cx = cx(&cfg, Vec::new());
        let c = ingest(&mut s, &msg("a", "q@example.com", "Hi", "hello", now));
        run_events(&mut s, &rs, &cx).unwrap();
        s.tag(c, "billing", false, "alice", now).unwrap();
        run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(s.conversation(c).unwrap().priority, Priority::High);
    }

    #[test]
    fn vip_and_domain_conditions() {
        let mut s = store();
        let cfg = config();
        let rs = set(RULES);
        let now = crate::model::now_millis();
        let cx = cx(&cfg, Vec::new());
        let c = ingest(&mut s, &msg("a", "boss@eu.bigcorp.com", "Hi", "hello", now));
        run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(s.conversation_tags(c).unwrap(), vec!["billing".to_string()]);
        let row = s.conversation(c).unwrap();
        s.set_vip(row.contact_id, true, "alice", now).unwrap();
        ingest(
            &mut s,
            &msg(
                "b",
                "boss@eu.bigcorp.com",
                "Re: Hi",
                "still there?",
                now + 1,
            ),
        );
        run_events(&mut s, &rs, &cx).unwrap();
        assert_eq!(s.conversation(c).unwrap().priority, Priority::Urgent);
    }

    #[test]
    fn time_based_rules_fire_once_per_wait_and_again_after_a_new_wait() {
        let mut s = store();
        let cfg = config();
        let rs = set(r#"
[[rules]]
id = "waiting"
name = "Waiting 4h"
on = "waiting_on_us"
after = "4h"
actions = [{ priority = "high" }, { note = "waited 4 hours" }]

[[rules]]
id = "quiet"
name = "Quiet 2d"
on = "waiting_on_customer"
after = "2d"
all = [{ status = "open" }]
actions = [{ status = "pending" }]
"#);
        let cx = cx(&cfg, Vec::new());
        let h = 3_600_000;
        let t0 = crate::model::now_millis() - 10 * 24 * h;
        let c = ingest(&mut s, &msg("a", "w@example.com", "Hi", "help", t0));
        assert_eq!(sweep(&mut s, &rs, &cx, t0 + 3 * h).unwrap().matched, 0);
        assert_eq!(sweep(&mut s, &rs, &cx, t0 + 5 * h).unwrap().matched, 1);
        assert_eq!(s.conversation(c).unwrap().priority, Priority::High);
        // The same wait fires once.
        assert_eq!(sweep(&mut s, &rs, &cx, t0 + 9 * h).unwrap().matched, 0);
        // We answer: now the customer is the one waiting.
        s.set_priority(c, Priority::Normal, "alice", t0 + 9 * h)
            .unwrap();
        s.queue_reply_with(c, Channel::Email, "alice", "on it", t0 + 10 * h, None, None)
            .unwrap();
        assert_eq!(sweep(&mut s, &rs, &cx, t0 + 20 * h).unwrap().matched, 0);
        assert_eq!(sweep(&mut s, &rs, &cx, t0 + 59 * h).unwrap().matched, 1);
        assert_eq!(s.conversation(c).unwrap().status, Status::Pending);
        // A new customer message starts a new wait, which fires again.
        ingest(
            &mut s,
            &msg("b", "w@example.com", "Re: Hi", "still broken", t0 + 60 * h),
        );
        assert_eq!(sweep(&mut s, &rs, &cx, t0 + 65 * h).unwrap().matched, 1);
        assert_eq!(s.conversation(c).unwrap().priority, Priority::High);
    }

    #[test]
    fn an_automatic_reply_does_not_stop_the_customers_wait() {
        let mut s = store();
        let cfg = config();
        let rs = set(r#"
[[rules]]
id = "ack"
name = "Acknowledge"
on = "message_received"
actions = [{ reply = { text = "Thanks, we got your message." } }]
"#);
        let cx = cx(&cfg, Vec::new());
        let now = crate::model::now_millis();
        let c = ingest(&mut s, &msg("a", "ack@example.com", "Hi", "help", now));
        run_events(&mut s, &rs, &cx).unwrap();
        let row = s.rule_facts(c, None, now).unwrap();
        assert_eq!(row.waiting_since, Some(now), "still waiting on a human");
        let tl = s.timeline(row_contact(&s, c), None, 10).unwrap();
        assert!(
            tl.iter()
                .any(|m| m.author == "rule:ack" && m.direction == Direction::Out),
            "{tl:?}"
        );
    }

    /// A rule-sent template goes through the one consent check: a contact who opted out of
    /// everything gets nothing, and the rule's event says why.
    #[test]
    fn a_rule_sent_template_is_refused_for_an_opted_out_contact() {
        let mut s = store();
        let cfg = config();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("thanks.txt"), "Thanks, we got your message.").unwrap();
        let lib = crate::canned::Library::load_dir(d.path(), false).unwrap();
        let cx = Context {
            config: &cfg,
            online: Vec::new(),
            canned: Some(Arc::new(lib)),
        };
        let rs = set(r#"
[[rules]]
id = "ack"
name = "Acknowledge"
on = "message_received"
actions = [{ reply = { template = "thanks" } }]
"#);
        let now = crate::model::now_millis();
        let c = ingest(
            &mut s,
            &msg("a", "ack@example.com", "Hi", "help", now - 1000),
        );
        let contact = row_contact(&s, c);
        s.record_consent(
            &crate::store::consent::Change {
                contact,
                purpose: crate::model::Purpose::Transactional,
                opted_out: true,
                channel: Some(Channel::Email),
                identity: None,
                source: crate::model::ConsentSource::Agent,
                detail: "asked to hear nothing",
            },
            "alice",
            now - 500,
        )
        .unwrap();
        run_events(&mut s, &rs, &cx).unwrap();
        let tl = s.timeline(contact, None, 10).unwrap();
        assert!(
            !tl.iter().any(|m| m.direction == Direction::Out),
            "nothing goes: {tl:?}"
        );
        assert_eq!(s.outbox_counts().unwrap(), (0, 0));
        let evs = s.conversation_events(c, 50).unwrap();
        let matched = evs.iter().find(|e| e.kind == "rule_matched").unwrap();
        let data = matched.data.clone().unwrap_or_default();
        assert!(data.contains("opted out of all messages"), "{data}");
    }

    fn row_contact(s: &Store, c: ConversationId) -> crate::model::ContactId {
        s.conversation(c).unwrap().contact_id
    }

    #[test]
    fn the_dry_run_explains_and_writes_nothing() {
        let mut s = store();
        let cfg = config();
        let rs = set(RULES);
        let now = crate::model::now_millis();
        let cx = cx(&cfg, vec!["carol".into()]);
        let c = ingest(
            &mut s,
            &msg("a", "d@example.com", "Invoice", "see the invoice", now),
        );
        let before = s.last_event_id().unwrap();
        let d = dry_run(&s, &cx, &rs, Some(c), None, now).unwrap();
        assert_eq!(
            s.last_event_id().unwrap(),
            before,
            "a dry run writes nothing"
        );
        let billing = d.rules.iter().find(|r| r.id == "billing").unwrap();
        assert!(billing.matched);
        assert!(billing.why.contains("found “invoice”"), "{}", billing.why);
        assert_eq!(
            billing.would,
            vec!["move to team sales", "assign to carol", "tag billing"]
        );
        let vip = d.rules.iter().find(|r| r.id == "vip").unwrap();
        assert!(!vip.matched);
        assert_eq!(vip.why, "vip ✗");
        let m = crate::api::TestMessage {
            channel: Channel::Sms,
            from: "+15550100".into(),
            name: None,
            subject: None,
            text: "hello".into(),
        };
        let d = dry_run(&s, &cx, &rs, None, Some(&m), now).unwrap();
        assert_eq!(d.event.as_deref(), Some("message_received"));
        assert!(d.rules.iter().all(|r| !r.matched || !r.runs));
        let on_tag = d.rules.iter().find(|r| r.id == "on-tag").unwrap();
        assert!(!on_tag.runs);
    }

    fn write(path: &std::path::Path, text: &str, age_s: u64) {
        std::fs::write(path, text).unwrap();
        // A distinct modification time for each version (a coarse clock would hide a change).
        let t = SystemTime::now() - std::time::Duration::from_secs(age_s);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn a_changed_file_reloads_and_a_broken_one_keeps_the_last_good_rules() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.toml");
        write(&file, RULES, 100);
        let (state, err) = RulesState::new(RulesSource::Dir(dir.path().into()), known(&config()));
        assert_eq!(err, None);
        assert_eq!(state.rules().rules.len(), 3);
        assert!(!state.reload_if_changed(), "nothing changed");
        // A rule less: reloaded.
        let two = &RULES[..RULES.find("[[rules]]\nid = \"on-tag\"").unwrap()];
        write(&file, two, 50);
        assert!(state.reload_if_changed());
        assert_eq!(state.rules().rules.len(), 2);
        assert_eq!(state.error(), None);
        // A typo: the two rules keep running, and the error names file, line and rule.
        write(&file, &two.replace("words = [", "wordz = ["), 10);
        assert!(!state.reload_if_changed());
        assert_eq!(state.rules().rules.len(), 2);
        let e = state.error().unwrap();
        assert!(
            e.contains("rules.toml:2: rule 'billing'") && e.contains("unknown condition 'wordz'"),
            "{e}"
        );
        // A new file in rules/ is noticed too; fixing clears the error.
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        write(
            &dir.path().join("rules/more.toml"),
            RULES
                .split("[[rules]]")
                .nth(3)
                .map(|r| format!("[[rules]]{r}"))
                .unwrap()
                .as_str(),
            5,
        );
        write(&file, two, 1);
        assert!(state.reload_if_changed());
        assert_eq!(state.rules().rules.len(), 3);
        assert_eq!(state.error(), None);
    }

    #[test]
    fn mistakes_are_all_reported_with_line_and_rule() {
        let text = r#"
[[rules]]
id = "a"
on = "message_recieved"
actions = [{ tag = "x" }]

[[rules]]
id = "b"
on = "waiting_on_us"
all = [{ team = "nosuch" }, { channel = "fax" }]
actions = [{ assign = "zed" }, { priority = "huge" }]

[[rules]]
id = "a"
on = "message_received"
all = [{ any = [{ all = [{ vip = true }] }] }]
actions = []
"#;
        let e = rules::load_str(text, "rules.toml", &known(&config())).unwrap_err();
        for want in [
            "rules.toml:2: rule 'a': unknown event `on = \"message_recieved\"`",
            "rules.toml:7: rule 'b': `on = \"waiting_on_us\"` needs `after`",
            "team 'nosuch' is not in the workspace",
            "channel: unknown channel 'fax'",
            "agent 'zed' is not in the workspace",
            "priority: ",
            "nests one level only",
            "`actions` is a non-empty list",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    #[test]
    fn a_notify_action_reaches_the_agents_notifications() {
        let mut s = store();
        let cfg = config();
        // The notifications cursor starts before the message, as a running server's would.
        let agents = vec![crate::store::NotifyAgent {
            name: "bob".into(),
            scope: crate::store::Scope::all("bob"),
        }];
        s.derive_notifications(&agents).unwrap();
        let rs = set(r#"
[[rules]]
id = "tell-bob"
name = "Tell bob about refunds"
on = "message_received"
all = [{ words = ["refund"] }]
actions = [{ notify = "bob", message = "a refund question came in" }]
"#);
        let cx = cx(&cfg, Vec::new());
        let now = crate::model::now_millis();
        ingest(
            &mut s,
            &msg("a", "n@example.com", "Hi", "refund please", now),
        );
        run_events(&mut s, &rs, &cx).unwrap();
        let d = s.derive_notifications(&agents).unwrap();
        assert_eq!(d.rows.len(), 1, "{:?}", d.rows);
        assert_eq!(d.rows[0].kind, crate::store::NotificationKind::Rule);
        assert_eq!(d.rows[0].excerpt, "a refund question came in");
        assert_eq!(d.rows[0].actor, "rule:tell-bob");
    }
}
