//! Reading rules files: `rules.toml` and `rules/*.toml` (in name order) in the workspace
//! config's folder. Every mistake is reported with its file, line and rule, all at once; a
//! file with any mistake loads nothing (the server keeps the rules it had).

use super::{Action, Cmp, Cond, Rule, RuleSet, Strategy, Trigger, Who};
use crate::model::{Channel, Priority, Status};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use toml::{Spanned, Value};

/// What names a rule may refer to (the workspace's), for checking; empty lists check nothing.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The workspace's fields and stages (None: not checked).
    pub fields: Option<crate::fields::FieldsConfig>,
    pub agents: Vec<String>,
    pub teams: Vec<String>,
    pub sla: Vec<String>,
    pub templates: Vec<String>,
}

/// Rules loaded, and the files they came from with their modification times (a change to
/// any, or a new or removed file, means a reload).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub set: RuleSet,
    pub files: Vec<(PathBuf, Option<SystemTime>)>,
}

/// Where a workspace's rules live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// `rules.toml` and `rules/*.toml` in this folder.
    Dir(PathBuf),
    /// Built in (the demo workspace).
    Text(String),
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rules: Vec<Spanned<toml::Table>>,
}

/// The rule files of a folder, in the order they load.
pub fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let single = dir.join("rules.toml");
    if single.is_file() {
        out.push(single);
    }
    if let Ok(rd) = std::fs::read_dir(dir.join("rules")) {
        let mut more: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        more.sort();
        out.extend(more);
    }
    out
}

/// The files and their modification times now (to notice a change).
pub fn stamp(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    files_of(dir)
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, t)
        })
        .collect()
}

/// Load every rules file of `dir`. No file: no rules (not an error).
pub fn load_dir(dir: &Path, known: &Known) -> Result<Loaded, String> {
    let files = stamp(dir);
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    for (path, _) in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{}: cannot read: {e}", path.display()));
                continue;
            }
        };
        let label = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        match load_str(&text, &label, known) {
            Ok(s) => set.rules.extend(s.rules),
            Err(e) => errors.push(e),
        }
    }
    check_unique(&set, &mut errors);
    if errors.is_empty() {
        Ok(Loaded { set, files })
    } else {
        Err(errors.join("\n"))
    }
}

fn check_unique(set: &RuleSet, errors: &mut Vec<String>) {
    for (i, r) in set.rules.iter().enumerate() {
        if let Some(first) = set.rules[..i].iter().find(|o| o.id == r.id) {
            errors.push(format!(
                "{}: rule id '{}' is used twice (first at {})",
                r.origin, r.id, first.origin
            ));
        }
    }
}

/// Parse one file's text (`label` names it in messages).
pub fn load_str(text: &str, label: &str, known: &Known) -> Result<RuleSet, String> {
    let line_of = |pos: usize| text[..pos.min(text.len())].matches('\n').count() + 1;
    let file: File = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(":{}", line_of(s.start)))
            .unwrap_or_default();
        format!("{label}{at}: {}", e.message())
    })?;
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    for t in &file.rules {
        let origin = format!("{label}:{}", line_of(t.span().start));
        match rule(t.get_ref(), &origin, known) {
            Ok(r) => set.rules.push(r),
            Err(e) => errors.extend(e),
        }
    }
    check_unique(&set, &mut errors);
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors.join("\n"))
    }
}

const RULE_KEYS: &[&str] = &[
    "id", "name", "enabled", "on", "after", "all", "any", "actions",
];

fn rule(t: &toml::Table, origin: &str, known: &Known) -> Result<Rule, Vec<String>> {
    let mut errors = Vec::new();
    let id = t.get("id").and_then(Value::as_str).unwrap_or("").trim();
    let who = if id.is_empty() {
        origin.to_string()
    } else {
        format!("{origin}: rule '{id}'")
    };
    let mut err = |m: String| errors.push(format!("{who}: {m}"));
    if id.is_empty() {
        err("every rule needs an `id` (letters, digits, '-', '_')".into());
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || id.len() > 64
    {
        err(format!(
            "id '{id}': use letters, digits, '-' and '_' (at most 64)"
        ));
    }
    for k in t.keys() {
        if !RULE_KEYS.contains(&k.as_str()) {
            err(format!(
                "unknown key '{k}' (a rule has: {})",
                RULE_KEYS.join(", ")
            ));
        }
    }
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_string();
    let enabled = match t.get("enabled") {
        None => true,
        Some(Value::Boolean(b)) => *b,
        Some(_) => {
            err("`enabled` is true or false".into());
            true
        }
    };
    let on = match t.get("on").and_then(Value::as_str) {
        Some(s) => match Trigger::parse(s) {
            Some(t) => t,
            None => {
                err(format!(
                    "unknown event `on = \"{s}\"` (events: {})",
                    Trigger::ALL
                        .iter()
                        .map(|(_, n)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                Trigger::MessageReceived
            }
        },
        None => {
            err("`on` is missing: the event the rule runs on (e.g. \"message_received\")".into());
            Trigger::MessageReceived
        }
    };
    let after = match t.get("after") {
        None => None,
        Some(Value::String(s)) => match crate::units::parse_duration(s) {
            Ok(ms) if ms > 0 => Some(ms),
            Ok(_) => {
                err("`after` must be longer than 0".into());
                None
            }
            Err(e) => {
                err(format!("`after`: {e}"));
                None
            }
        },
        Some(_) => {
            err("`after` is a duration like \"2h\"".into());
            None
        }
    };
    if on.is_timed() && after.is_none() && t.get("after").is_none() {
        err(format!(
            "`on = \"{}\"` needs `after` (how long, e.g. \"4h\")",
            on.as_str()
        ));
    }
    if !on.is_timed() && t.get("after").is_some() {
        err(format!(
            "`after` is for the time-based events (waiting_on_us, waiting_on_customer), not {}",
            on.as_str()
        ));
    }
    let conds = |key: &str, errs: &mut Vec<String>| -> Vec<Cond> {
        match t.get(key) {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| match cond(v, 0, known) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        errs.push(format!("{who}: {key}: {e}"));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                errs.push(format!(
                    "{who}: `{key}` is a list of conditions, e.g. [{{ vip = true }}]"
                ));
                Vec::new()
            }
        }
    };
    let mut errs2 = Vec::new();
    let all = conds("all", &mut errs2);
    let any = conds("any", &mut errs2);
    let actions: Vec<Action> = match t.get("actions") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .filter_map(|v| match action(v, known) {
                Ok(x) => Some(x),
                Err(e) => {
                    errs2.push(format!("{who}: actions: {e}"));
                    None
                }
            })
            .collect(),
        _ => {
            errs2.push(format!(
                "{who}: `actions` is a non-empty list, e.g. [{{ tag = \"billing\" }}]"
            ));
            Vec::new()
        }
    };
    errors.extend(errs2);
    if errors.is_empty() {
        Ok(Rule {
            id: id.to_string(),
            name: crate::sanitize::line(&name),
            enabled,
            on,
            after,
            all,
            any,
            actions,
            origin: origin.to_string(),
        })
    } else {
        Err(errors)
    }
}

/// A string or a list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.trim().to_string()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(|s| s.trim().to_string())
                    .ok_or_else(|| format!("{what}: a list of strings"))
            })
            .collect(),
        _ => Err(format!("{what}: a string or a list of strings")),
    }
}

fn parsed<T: std::str::FromStr>(v: &Value, what: &str) -> Result<Vec<T>, String>
where
    T::Err: std::fmt::Display,
{
    strings(v, what)?
        .iter()
        .map(|s| s.parse::<T>().map_err(|e| format!("{what}: {e}")))
        .collect()
}

fn comparison(v: &Value, what: &str, duration: bool) -> Result<(Cmp, i64), String> {
    let text = match v {
        Value::Integer(n) if !duration => return Ok((Cmp::Eq, *n)),
        Value::String(s) => s.trim().to_string(),
        _ => {
            return Err(format!(
                "{what}: a comparison like \"{}\"",
                if duration { ">= 2h" } else { ">= 1" }
            ));
        }
    };
    let (cmp, rest) = [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
        ("=", Cmp::Eq),
    ]
    .iter()
    .find_map(|(p, c)| text.strip_prefix(p).map(|r| (*c, r.trim())))
    .unwrap_or((if duration { Cmp::Ge } else { Cmp::Eq }, text.as_str()));
    let n = if duration {
        crate::units::parse_duration(rest).map_err(|e| format!("{what}: {e}"))?
    } else {
        rest.parse::<i64>()
            .map_err(|_| format!("{what}: '{rest}' is not a number"))?
    };
    Ok((cmp, n))
}

const COND_KEYS: &str = "channel, account, team, status, priority, assignee, vip, tag, no_tag, \
     contact_name, domain, words, phrase, regex, business_hours, earlier_conversations, \
     since_last_reply, waiting, csat, csat_below, stage, score, field, not, all, any";

fn cond(v: &Value, depth: usize, known: &Known) -> Result<Cond, String> {
    let Value::Table(t) = v else {
        return Err(format!(
            "a condition is a table like {{ vip = true }} (conditions: {COND_KEYS})"
        ));
    };
    if t.len() != 1 {
        return Err(format!(
            "one condition per table, found {} keys ({}); put each in its own {{ }}",
            t.len(),
            t.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let Some((k, v)) = t.iter().next() else {
        return Err("an empty condition".into());
    };
    let check_names = |names: &[String], list: &[String], what: &str| -> Result<(), String> {
        if list.is_empty() {
            return Ok(());
        }
        for n in names {
            if n != "none" && !list.contains(n) {
                return Err(format!(
                    "{what} '{n}' is not in the workspace ({what}s: {})",
                    list.join(", ")
                ));
            }
        }
        Ok(())
    };
    Ok(match k.as_str() {
        "channel" => Cond::Channel(parsed::<Channel>(v, "channel")?),
        "account" => Cond::Account(strings(v, "account")?),
        "team" => {
            let t = strings(v, "team")?;
            check_names(&t, &known.teams, "team")?;
            Cond::Team(t)
        }
        "status" => Cond::Status(parsed::<Status>(v, "status")?),
        "priority" => Cond::Priority(parsed::<Priority>(v, "priority")?),
        "assignee" => {
            let a = strings(v, "assignee")?;
            check_names(&a, &known.agents, "agent")?;
            Cond::Assignee(a)
        }
        "vip" => Cond::Vip(v.as_bool().ok_or("vip: true or false")?),
        "tag" => Cond::Tag(tags(v, "tag")?),
        "no_tag" => Cond::NoTag(tags(v, "no_tag")?),
        "contact_name" => Cond::ContactName(
            v.as_str()
                .ok_or("contact_name: a string")?
                .trim()
                .to_string(),
        ),
        "domain" => Cond::Domain(
            strings(v, "domain")?
                .into_iter()
                .map(|d| d.trim_start_matches('@').to_lowercase())
                .collect(),
        ),
        "words" => Cond::Words(
            strings(v, "words")?
                .into_iter()
                .map(|w| w.to_lowercase())
                .collect(),
        ),
        "phrase" => Cond::Phrase(v.as_str().ok_or("phrase: a string")?.to_string()),
        "regex" => {
            let s = v.as_str().ok_or("regex: a string")?;
            let r = regex::RegexBuilder::new(s)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("regex: {e}"))?;
            Cond::Regex(Box::new(r))
        }
        "business_hours" => {
            Cond::BusinessHours(v.as_bool().ok_or("business_hours: true or false")?)
        }
        "earlier_conversations" => {
            let (c, n) = comparison(v, "earlier_conversations", false)?;
            Cond::EarlierConversations(c, n)
        }
        "since_last_reply" => {
            let (c, n) = comparison(v, "since_last_reply", true)?;
            Cond::SinceLastReply(c, n)
        }
        "waiting" => {
            let (c, n) = comparison(v, "waiting", true)?;
            Cond::Waiting(c, n)
        }
        "csat" => {
            let scores: Vec<i64> = match v {
                Value::Integer(n) => vec![*n],
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_integer().ok_or("csat: scores 1 to 5, like [1, 2]"))
                    .collect::<Result<_, _>>()?,
                _ => return Err("csat: a score 1 to 5 or a list like [1, 2]".into()),
            };
            if scores.is_empty() || scores.iter().any(|s| !(1..=5).contains(s)) {
                return Err("csat: scores are 1 to 5, like [1, 2]".into());
            }
            Cond::Csat(scores)
        }
        "csat_below" => {
            let n = v
                .as_integer()
                .filter(|n| (2..=5).contains(n))
                .ok_or("csat_below: a score 2 to 5 (csat_below = 3 matches 1 and 2)")?;
            Cond::CsatBelow(n)
        }
        "stage" => {
            let st: Vec<String> = strings(v, "stage")?
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            if let Some(f) = &known.fields {
                check_names(&st, &f.stages, "stage")?;
            }
            Cond::Stage(st)
        }
        "score" => {
            let (c, n) = comparison(v, "score", false)?;
            Cond::Score(c, n)
        }
        "field" => {
            let Value::Table(ft) = v else {
                return Err("field: a table like { plan = [\"pro\", \"enterprise\"] }".into());
            };
            let (Some((name, vals)), 1) = (ft.iter().next(), ft.len()) else {
                return Err("field: one field per condition, like { plan = \"pro\" }".into());
            };
            let values = strings(vals, "field")?;
            if let Some(f) = &known.fields {
                let def = f.require(name)?;
                for x in &values {
                    if x != "none" {
                        def.validate(x)?;
                    }
                }
            }
            Cond::Field {
                name: name.to_ascii_lowercase(),
                values,
            }
        }
        "not" => Cond::Not(Box::new(cond(v, depth, known)?)),
        "all" | "any" => {
            if depth >= 1 {
                return Err(format!(
                    "`{k}` nests one level only (inside the rule's all / any)"
                ));
            }
            let Value::Array(a) = v else {
                return Err(format!("{k}: a list of conditions"));
            };
            let inner = a
                .iter()
                .map(|x| cond(x, depth + 1, known))
                .collect::<Result<Vec<_>, _>>()?;
            if k == "all" {
                Cond::All(inner)
            } else {
                Cond::Any(inner)
            }
        }
        other => {
            return Err(format!(
                "unknown condition '{other}' (conditions: {COND_KEYS})"
            ));
        }
    })
}

fn tags(v: &Value, what: &str) -> Result<Vec<String>, String> {
    strings(v, what)?
        .iter()
        .map(|t| crate::store::normalize_tag(t).map_err(|e| format!("{what}: {e}")))
        .collect()
}

const ACTION_KEYS: &str = "assign, assign_team (+ strategy), team, priority, tag, untag, snooze, \
     status, resolve, vip, note, reply, task, notify (+ message), sla, set_field (+ value), \
     set_stage, add_score";

fn action(v: &Value, known: &Known) -> Result<Action, String> {
    let Value::Table(t) = v else {
        return Err(format!(
            "an action is a table like {{ tag = \"billing\" }} (actions: {ACTION_KEYS})"
        ));
    };
    let s = |k: &str| -> Result<String, String> {
        t.get(k)
            .and_then(Value::as_str)
            .map(|x| x.trim().to_string())
            .ok_or_else(|| format!("{k}: a string"))
    };
    let only = |keys: &[&str]| -> Result<(), String> {
        for k in t.keys() {
            if !keys.contains(&k.as_str()) {
                return Err(format!(
                    "'{k}' does not go with '{}' (put each action in its own {{ }})",
                    keys[0]
                ));
            }
        }
        Ok(())
    };
    let agent = |n: &str| -> Result<(), String> {
        if !known.agents.is_empty() && !known.agents.iter().any(|a| a == n) {
            return Err(format!(
                "agent '{n}' is not in the workspace (agents: {})",
                known.agents.join(", ")
            ));
        }
        Ok(())
    };
    let team = |n: &str| -> Result<(), String> {
        if !known.teams.is_empty() && !known.teams.iter().any(|a| a == n) {
            return Err(format!(
                "team '{n}' is not in the workspace (teams: {})",
                known.teams.join(", ")
            ));
        }
        Ok(())
    };
    let key = [
        "assign",
        "assign_team",
        "team",
        "priority",
        "tag",
        "untag",
        "snooze",
        "status",
        "resolve",
        "vip",
        "note",
        "reply",
        "task",
        "notify",
        "sla",
        "set_field",
        "set_stage",
        "add_score",
    ]
    .into_iter()
    .find(|k| t.contains_key(*k))
    .ok_or_else(|| {
        format!(
            "unknown action {} (actions: {ACTION_KEYS})",
            t.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    Ok(match key {
        "assign" => {
            only(&["assign"])?;
            let a = s("assign")?;
            if a == "none" {
                Action::Assign(None)
            } else {
                agent(&a)?;
                Action::Assign(Some(a))
            }
        }
        "assign_team" | "team" => {
            only(&[key, "strategy"])?;
            let name = s(key)?;
            team(&name)?;
            let strategy = match (key, t.get("strategy").and_then(Value::as_str)) {
                ("team", None) => Strategy::TeamQueue,
                (_, None | Some("round_robin")) => Strategy::RoundRobin,
                (_, Some("least_open")) => Strategy::LeastOpen,
                (_, Some("team_queue")) => Strategy::TeamQueue,
                (_, Some(o)) => {
                    return Err(format!(
                        "strategy '{o}' (round_robin, least_open or team_queue)"
                    ));
                }
            };
            Action::AssignTeam {
                team: name,
                strategy,
            }
        }
        "priority" => {
            only(&["priority"])?;
            Action::Priority(
                s("priority")?
                    .parse()
                    .map_err(|e| format!("priority: {e}"))?,
            )
        }
        "tag" => {
            only(&["tag"])?;
            Action::Tag(crate::store::normalize_tag(&s("tag")?).map_err(|e| e.to_string())?)
        }
        "untag" => {
            only(&["untag"])?;
            Action::Untag(crate::store::normalize_tag(&s("untag")?).map_err(|e| e.to_string())?)
        }
        "snooze" => {
            only(&["snooze"])?;
            Action::Snooze(crate::units::parse_duration(&s("snooze")?)?)
        }
        "status" => {
            only(&["status"])?;
            let st: Status = s("status")?.parse().map_err(|e| format!("status: {e}"))?;
            if st == Status::Snoozed {
                return Err("status: to snooze, use { snooze = \"4h\" }".into());
            }
            Action::Status(st)
        }
        "resolve" => {
            only(&["resolve"])?;
            if t.get("resolve").and_then(Value::as_bool) != Some(true) {
                return Err("resolve = true".into());
            }
            Action::Status(Status::Resolved)
        }
        "vip" => {
            only(&["vip"])?;
            Action::Vip(
                t.get("vip")
                    .and_then(Value::as_bool)
                    .ok_or("vip: true or false")?,
            )
        }
        "note" => {
            only(&["note"])?;
            let n = s("note")?;
            if n.is_empty() {
                return Err("note: the text of the note".into());
            }
            Action::Note(n)
        }
        "reply" => {
            only(&["reply"])?;
            let Some(Value::Table(r)) = t.get("reply") else {
                return Err(
                    "reply: a table like { template = \"ack\", channel = \"email\" }".into(),
                );
            };
            for k in r.keys() {
                if !["template", "text", "channel"].contains(&k.as_str()) {
                    return Err(format!(
                        "reply: unknown key '{k}' (template, text, channel)"
                    ));
                }
            }
            let template = r
                .get("template")
                .and_then(Value::as_str)
                .map(str::to_string);
            let text = r.get("text").and_then(Value::as_str).map(str::to_string);
            if template.is_some() == text.is_some() {
                return Err("reply: give either `template` or `text`".into());
            }
            if let Some(name) = &template
                && !known.templates.is_empty()
                && !known.templates.contains(name)
            {
                return Err(format!(
                    "reply: no template '{name}' (templates: {})",
                    known.templates.join(", ")
                ));
            }
            let channel = match r.get("channel").and_then(Value::as_str) {
                None | Some("last") => None,
                Some(c) => {
                    let ch: Channel = c.parse().map_err(|e| format!("reply channel: {e}"))?;
                    if !ch.replyable() {
                        return Err(format!("reply: braid cannot send on {}", ch.label()));
                    }
                    Some(ch)
                }
            };
            Action::Reply {
                template,
                text,
                channel,
            }
        }
        "task" => {
            only(&["task"])?;
            let Some(Value::Table(r)) = t.get("task") else {
                return Err(
                    "task: a table like { kind = \"call\", title = \"Call back\", due = \"2h\" }"
                        .into(),
                );
            };
            for k in r.keys() {
                if !["kind", "title", "due", "assignee"].contains(&k.as_str()) {
                    return Err(format!(
                        "task: unknown key '{k}' (kind, title, due, assignee)"
                    ));
                }
            }
            let title = r
                .get("title")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .ok_or("task: a `title`")?
                .to_string();
            let kind = r
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("todo")
                .to_string();
            let due_ms = r
                .get("due")
                .and_then(Value::as_str)
                .map(crate::units::parse_duration)
                .transpose()
                .map_err(|e| format!("task due: {e}"))?;
            let assignee = match r.get("assignee").and_then(Value::as_str) {
                None => None,
                Some("assignee") => Some(Who::Assignee),
                Some(a) => {
                    agent(a)?;
                    Some(Who::Agent(a.to_string()))
                }
            };
            Action::Task {
                kind,
                title,
                due_ms,
                assignee,
            }
        }
        "notify" => {
            only(&["notify", "message"])?;
            let n = s("notify")?;
            let who = if n == "assignee" {
                Who::Assignee
            } else {
                agent(&n)?;
                Who::Agent(n)
            };
            let message = t
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Action::Notify { who, message }
        }
        "sla" => {
            only(&["sla"])?;
            let p = s("sla")?;
            if !known.sla.is_empty() && !known.sla.contains(&p) {
                return Err(format!(
                    "sla: no policy '{p}' (policies: {})",
                    known.sla.join(", ")
                ));
            }
            Action::Sla(p)
        }
        "set_field" => {
            only(&["set_field", "value"])?;
            let name = s("set_field")?.to_ascii_lowercase();
            let value = match t.get("value") {
                None => None,
                Some(Value::String(x)) => Some(x.trim().to_string()),
                Some(Value::Integer(n)) => Some(n.to_string()),
                Some(Value::Float(n)) => Some(n.to_string()),
                Some(_) => {
                    return Err(
                        "set_field: value is a string (leave it out to clear the field)".into(),
                    );
                }
            };
            if let Some(f) = &known.fields {
                let def = f.require(&name)?;
                if let Some(v) = &value {
                    def.validate(v)?;
                }
            }
            Action::SetField { name, value }
        }
        "set_stage" => {
            only(&["set_stage"])?;
            let st = s("set_stage")?.to_ascii_lowercase();
            if let Some(f) = &known.fields {
                f.require_stage(&st)?;
            }
            Action::SetStage(st)
        }
        "add_score" => {
            only(&["add_score"])?;
            let n = t
                .get("add_score")
                .and_then(Value::as_integer)
                .filter(|n| n.abs() <= crate::fields::MAX_SCORE)
                .ok_or("add_score: a whole number, e.g. 10 or -5")?;
            Action::AddScore(n)
        }
        _ => return Err(format!("unknown action (actions: {ACTION_KEYS})")),
    })
}
