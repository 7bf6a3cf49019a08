//! The workspace half of the config: who the agents are (Unix user -> agent name, role, teams),
//! which teams exist, and where the server listens. Read by the server only; a client's own
//! config never decides who it is.
//!
//! ```toml
//! [server]
//! socket = "/run/braid/braid.sock"   # default: per data dir, private to the server's user
//! group = "braid"                    # who may connect at all (the socket is 0660 root:group)
//! only_assignee_replies = true       # an assigned conversation: only its assignee replies
//!
//! [[teams]]
//! name = "billing"
//!
//! [[agents]]
//! user = "ann"            # the Unix user, as the kernel reports it
//! name = "ann"            # the agent name (default: the user)
//! display = "Ann Lee"
//! role = "agent"          # admin | supervisor | agent | viewer
//! teams = ["billing"]
//!
//! [[hours]]               # business hours (src/sla): zone, intervals per weekday, holidays
//! name = "emea"
//! zone = "Europe/Berlin"
//! weekdays = ["09:00-12:00", "13:00-17:00"]
//!
//! [[sla]]                 # an SLA policy, applied by rules (`sla = "gold"`)
//! name = "gold"
//! first_response = "1h"
//! ```

use crate::api::Role;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// One agent of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDef {
    /// The Unix user (login name) the kernel reports for the agent's processes.
    pub user: String,
    /// The agent name: author of replies, assignee.
    pub name: String,
    pub display: Option<String>,
    pub role: Role,
    pub teams: Vec<String>,
}

/// One team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDef {
    pub name: String,
    pub display: Option<String>,
    /// `hours = "emea"`: the `[[hours]]` the team works (its SLA deadlines count in them).
    pub hours: Option<String>,
}

/// The workspace's people and the server's socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspace {
    pub agents: Vec<AgentDef>,
    pub teams: Vec<TeamDef>,
    /// `[server] socket`: where the server listens (and where clients connect).
    pub socket: Option<PathBuf>,
    /// `[server] group`: the group of the socket; only its members may connect.
    pub group: Option<String>,
    /// `[server] only_assignee_replies`: a conversation assigned to an agent is answered by
    /// that agent only; others may add notes (supervisors and admins may still reply).
    pub only_assignee_replies: bool,
    /// The demo workspace's simulated agents show as online (`braid demo` only; not a config
    /// key).
    pub simulate_colleagues: bool,
    /// The demo workspace's approved WhatsApp templates, so `:template` can be tried there
    /// (`braid demo` only; a real workspace lists its own in `[[whatsapp.templates]]`).
    pub demo_templates: Vec<crate::template::Template>,
    /// The demo workspace's rules (`braid demo` only; a real workspace keeps its rules in
    /// `rules.toml` / `rules/` beside its config file).
    pub demo_rules: Option<String>,
    /// The canned replies' folder when it is not `templates/` beside the config file
    /// (`braid demo`: a copy of config/templates in its data dir).
    pub templates_dir: Option<PathBuf>,
    /// `[[hours]]` and `[[sla]]`: business hours and SLA policies.
    pub sla: crate::sla::SlaConfig,
    /// `[csat]`: when a satisfaction survey goes out (see [`crate::csat`]).
    pub csat: crate::csat::CsatConfig,
    /// `[[webhooks]]`: endpoints the server posts events to (see [`crate::webhooks`]).
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
    /// `[[campaigns]]` and `[campaign_pacing]` (see [`crate::campaign`]).
    pub campaigns: crate::campaign::CampaignConfig,
    /// `[[fields]]` and `[pipeline]`: contact fields and lifecycle stages (see
    /// [`crate::fields`]).
    pub fields: crate::fields::FieldsConfig,
}

impl Workspace {
    /// The agent the Unix user `user` is, if any.
    pub fn agent_for_user(&self, user: &str) -> Option<&AgentDef> {
        self.agents.iter().find(|a| a.user == user)
    }

    /// The `[[hours]]` name a team works (None: no team, or a team without hours).
    pub fn team_hours(&self, team: Option<&str>) -> Option<&str> {
        let team = team?;
        self.teams
            .iter()
            .find(|t| t.name == team)
            .and_then(|t| t.hours.as_deref())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    socket: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    only_assignee_replies: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTeam {
    name: Spanned<String>,
    display: Option<String>,
    hours: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    user: Spanned<String>,
    name: Option<Spanned<String>>,
    display: Option<String>,
    role: Option<Spanned<String>>,
    teams: Option<Spanned<Vec<String>>>,
}

/// A name: letters, digits, `.`, `_`, `-`; what a Unix user, an agent or a team may be called.
fn check_name(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty()
        || t.len() > 64
        || !t
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "'{s}' is not a name (letters, digits, '.', '_', '-', at most 64)"
        ));
    }
    Ok(t.to_string())
}

/// A resolve error: the span, the dotted key, the message.
pub(crate) type RawError = (std::ops::Range<usize>, String, String);

/// Resolve the raw sections. `expand` turns a configured path into an absolute one.
pub(crate) fn resolve(
    server: &RawServer,
    teams: &[Spanned<RawTeam>],
    agents: &[Spanned<RawAgent>],
    sla: (&[crate::sla::HoursSpec], &[crate::sla::PolicySpec]),
    expand: impl Fn(&str) -> PathBuf,
) -> Result<Workspace, RawError> {
    let mut ws = Workspace {
        only_assignee_replies: server.only_assignee_replies.unwrap_or(false),
        sla: crate::sla::SlaConfig::from_specs(sla.0, sla.1)
            .map_err(|e| (e.span, e.key, e.message))?,
        ..Workspace::default()
    };
    if let Some(s) = &server.socket {
        if s.get_ref().trim().is_empty() {
            return Err((s.span(), "server.socket".into(), "must not be empty".into()));
        }
        let p = expand(s.get_ref());
        crate::api::paths::check_socket_path(&p)
            .map_err(|m| (s.span(), "server.socket".to_string(), m))?;
        ws.socket = Some(p);
    }
    if let Some(g) = &server.group {
        ws.group = Some(check_name(g.get_ref()).map_err(|m| (g.span(), "server.group".into(), m))?);
    }
    for t in teams {
        let name = check_name(t.get_ref().name.get_ref())
            .map_err(|m| (t.get_ref().name.span(), "teams.name".to_string(), m))?;
        if ws.teams.iter().any(|x| x.name == name) {
            return Err((
                t.get_ref().name.span(),
                "teams.name".into(),
                format!("two [[teams]] are named '{name}'"),
            ));
        }
        let hours = match &t.get_ref().hours {
            Some(h) => {
                let n = h.get_ref().trim();
                if ws.sla.hours_named(n).is_none() {
                    let known: Vec<&str> = ws.sla.hours.iter().map(|x| x.name.as_str()).collect();
                    return Err((
                        h.span(),
                        "teams.hours".into(),
                        format!(
                            "team '{name}' works hours '{n}', which no [[hours]] defines (known: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                Some(n.to_string())
            }
            None => None,
        };
        if let Some(h) = &hours {
            ws.sla.team_hours.push((name.clone(), h.clone()));
        }
        ws.teams.push(TeamDef {
            name,
            display: t.get_ref().display.clone(),
            hours,
        });
    }
    for a in agents {
        let raw = a.get_ref();
        let user = check_name(raw.user.get_ref())
            .map_err(|m| (raw.user.span(), "agents.user".to_string(), m))?;
        let name = match &raw.name {
            Some(n) => {
                check_name(n.get_ref()).map_err(|m| (n.span(), "agents.name".to_string(), m))?
            }
            None => user.clone(),
        };
        let role = match &raw.role {
            Some(r) => r
                .get_ref()
                .trim()
                .parse::<Role>()
                .map_err(|m| (r.span(), "agents.role".to_string(), m))?,
            None => Role::Agent,
        };
        let teams: Vec<String> = raw
            .teams
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        let teams_span = raw
            .teams
            .as_ref()
            .map(|t| t.span())
            .unwrap_or_else(|| a.span());
        for team in &teams {
            if !ws.teams.iter().any(|t| &t.name == team) {
                let known: Vec<&str> = ws.teams.iter().map(|t| t.name.as_str()).collect();
                return Err((
                    teams_span.clone(),
                    "agents.teams".into(),
                    format!(
                        "agent '{name}' is in team '{team}', which no [[teams]] defines (known: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if ws.agents.iter().any(|x| x.user == user) {
            return Err((
                raw.user.span(),
                "agents.user".into(),
                format!("Unix user '{user}' is listed twice in [[agents]]"),
            ));
        }
        if ws.agents.iter().any(|x| x.name == name) {
            return Err((
                a.span(),
                "agents.name".into(),
                format!("two [[agents]] are named '{name}'"),
            ));
        }
        ws.agents.push(AgentDef {
            user,
            name,
            display: raw.display.clone(),
            role,
            teams,
        });
    }
    Ok(ws)
}
