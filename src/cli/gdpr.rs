//! `braid contact consent ID [marketing|all on|off] [--note TEXT]`: a contact's consent, or
//! record a change the customer asked for; `braid contact export ID --json`: everything held
//! about the person (a GDPR subject access request, admins); `braid contact forget ID
//! [--yes]`: erase them (admins; without `--yes`, type the id again to confirm).

use super::client::{Client, unexpected};
use super::{Globals, write_json};
use crate::api::{Request, Response};
use crate::model::{ContactId, Purpose};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ContactCommand {
    /// Show a contact's consent, or record a change: `marketing off`, `all off`, `marketing on`
    Consent {
        /// The contact id (`braid contacts` lists them)
        id: i64,
        /// marketing, or all (every message, replies included)
        what: Option<String>,
        /// on or off
        state: Option<String>,
        /// What the customer said, for the history
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Everything held about a person, as JSON (a subject access request; admins)
    Export {
        id: i64,
        /// JSON (the only format; accepted for scripts that say it)
        #[arg(long)]
        json: bool,
    },
    /// Erase a person: names, identities, message texts and attachment data (admins)
    Forget {
        id: i64,
        /// Do not ask: the id is confirmed
        #[arg(long)]
        yes: bool,
    },
}

/// One of `braid contact consent|export|forget` (part of [`super::contact`]'s subcommands).
pub fn run(globals: &Globals, command: &ContactCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        ContactCommand::Consent {
            id,
            what,
            state,
            note,
            json,
        } => consent(globals, ContactId(*id), what, state, note, *json, out),
        ContactCommand::Export { id, .. } => {
            let (client, _config) = Client::open(globals, "contact export")?;
            match client.call(Request::ContactExport {
                contact: ContactId(*id),
            })? {
                Response::Export(v) => write_json(out, &*v),
                other => Err(unexpected("contact_export", &other)),
            }
        }
        ContactCommand::Forget { id, yes } => {
            let confirm = if *yes {
                *id
            } else {
                let stdin = std::io::stdin();
                if !stdin.is_terminal() {
                    anyhow::bail!(
                        "forgetting contact #{id} cannot be undone: add --yes, or run it in a \
                         terminal and type the id"
                    );
                }
                eprint!("This erases contact #{id} for good. Type its id to confirm: ");
                let mut line = String::new();
                stdin.lock().read_line(&mut line)?;
                match line.trim().trim_start_matches('#').parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => anyhow::bail!("not confirmed: nothing erased"),
                }
            };
            let (client, _config) = Client::open(globals, "contact forget")?;
            match client.call(Request::ContactForget {
                contact: ContactId(*id),
                confirm: ContactId(confirm),
            })? {
                Response::Done(line) => {
                    writeln!(out, "{}", crate::sanitize::for_terminal_line(&line))?;
                    Ok(())
                }
                other => Err(unexpected("contact_forget", &other)),
            }
        }
    }
}

fn consent(
    globals: &Globals,
    contact: ContactId,
    what: &Option<String>,
    state: &Option<String>,
    note: &str,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "contact consent")?;
    if let Some(what) = what {
        let purpose = match what.as_str() {
            "marketing" => Purpose::Marketing,
            "all" | "transactional" => Purpose::Transactional,
            other => anyhow::bail!("'{other}': say marketing or all (then on or off)"),
        };
        let opted_out = match state.as_deref() {
            Some("off") => true,
            Some("on") => false,
            _ => anyhow::bail!("say on or off after {what}"),
        };
        match client.call(Request::ConsentSet {
            contact,
            purpose,
            opted_out,
            channel: None,
            note: note.to_string(),
        })? {
            Response::Done(line) => {
                writeln!(out, "{}", crate::sanitize::for_terminal_line(&line))?;
            }
            other => return Err(unexpected("consent_set", &other)),
        }
        return Ok(());
    }
    let c = match client.call(Request::Consent { contact })? {
        Response::Consent(c) => c,
        other => return Err(unexpected("consent", &other)),
    };
    if json {
        return write_json(out, &*c);
    }
    writeln!(
        out,
        "contact #{contact}: {}",
        c.summary().unwrap_or_else(|| "no opt-out".into())
    )?;
    for h in &c.history {
        writeln!(
            out,
            "{}  {} {}  {} {}  {} by {}",
            super::fmt::rfc3339(h.at),
            if h.opted_out { "out of" } else { "in to" },
            h.purpose,
            h.source,
            h.channel.map(|c| c.as_str()).unwrap_or("-"),
            crate::sanitize::for_terminal_line(&h.detail),
            crate::sanitize::for_terminal_line(&h.actor),
        )?;
    }
    Ok(())
}
