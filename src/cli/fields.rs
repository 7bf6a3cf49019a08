//! `braid contact set|unset|stage|score ID ...` (part of [`super::contact`]'s subcommands): a contact's custom fields, lifecycle stage and
//! lead score from a shell, the same verbs as the TUI's `:set`, `:unset`, `:stage`, `:score`
//! ([`crate::actions::apply_contact`] on the server, as the agent it identified).

use super::client::{Client, unexpected};
use super::{Globals, write_json};
use crate::actions::Verb;
use crate::api::{Request, Response};
use crate::model::ContactId;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ContactCmd {
    /// Set a custom field ([[fields]] in the workspace config): braid contact set 7 plan pro
    Set {
        /// The contact: 7 or #7
        #[arg(value_name = "ID")]
        id: String,
        field: String,
        value: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Clear a custom field
    Unset {
        #[arg(value_name = "ID")]
        id: String,
        field: String,
        #[arg(long)]
        json: bool,
    },
    /// Move the contact to a lifecycle stage ([pipeline] stages; none clears it)
    Stage {
        #[arg(value_name = "ID")]
        id: String,
        stage: String,
        #[arg(long)]
        json: bool,
    },
    /// Change the lead score: +N adds, -N takes away, N sets
    Score {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(allow_hyphen_values = true)]
        change: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Serialize)]
struct Done<'a> {
    contact: i64,
    done: &'a str,
}

/// The contact id as typed (`7`, `#7`): the same reading as `braid contact merge` and `:merge`.
fn parse_contact(id: &str) -> anyhow::Result<ContactId> {
    crate::tui::action::parse_contact_id(id).map_err(anyhow::Error::msg)
}

/// The verb a subcommand means (parsed the way the TUI parses the same `:` command).
pub fn verb_of(cmd: &ContactCmd) -> anyhow::Result<(ContactId, Verb, bool)> {
    Ok(match cmd {
        ContactCmd::Set {
            id,
            field,
            value,
            json,
        } => (
            parse_contact(id)?,
            Verb::Field {
                name: field.trim().to_ascii_lowercase(),
                value: Some(value.clone()),
            },
            *json,
        ),
        ContactCmd::Unset { id, field, json } => (
            parse_contact(id)?,
            Verb::Field {
                name: field.trim().to_ascii_lowercase(),
                value: None,
            },
            *json,
        ),
        ContactCmd::Stage { id, stage, json } => (
            parse_contact(id)?,
            match stage.trim() {
                "none" | "-" => Verb::Stage(None),
                s => Verb::Stage(Some(s.to_ascii_lowercase())),
            },
            *json,
        ),
        ContactCmd::Score { id, change, json } => (
            parse_contact(id)?,
            Verb::Score(crate::fields::ScoreChange::parse(change).map_err(anyhow::Error::msg)?),
            *json,
        ),
    })
}

pub fn run(g: &Globals, cmd: &ContactCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    let (contact, verb, json) = verb_of(cmd)?;
    let (client, _config) = Client::open(g, "contact")?;
    let line = match client.call(Request::ContactEdit { contact, verb })? {
        Response::Done(line) => line,
        other => return Err(unexpected("contact_edit", &other)),
    };
    drop(client);
    let line = crate::sanitize::for_terminal_line(&line);
    if json {
        return write_json(
            out,
            &Done {
                contact: contact.0,
                done: &line,
            },
        );
    }
    writeln!(out, "#{contact}: {line}")?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_are_the_tui_verbs() {
        let (c, v, _) = verb_of(&ContactCmd::Set {
            id: "#7".into(),
            field: "Plan".into(),
            value: "pro".into(),
            json: false,
        })
        .unwrap();
        assert_eq!(c, ContactId(7));
        assert_eq!(
            v,
            Verb::Field {
                name: "plan".into(),
                value: Some("pro".into())
            }
        );
        let (_, v, _) = verb_of(&ContactCmd::Score {
            id: "7".into(),
            change: "-5".into(),
            json: false,
        })
        .unwrap();
        assert_eq!(v, Verb::Score(crate::fields::ScoreChange::Add(-5)));
        assert!(
            verb_of(&ContactCmd::Stage {
                id: "x".into(),
                stage: "lead".into(),
                json: false
            })
            .unwrap_err()
            .to_string()
            .contains("braid contacts")
        );
    }
}
