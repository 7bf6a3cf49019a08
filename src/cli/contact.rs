//! `braid contact merge|unmerge|merges|identity|duplicates|dismiss`: one person's record from a
//! shell. Each is a [`Request::Contact`] (or [`Request::Duplicates`]) the server runs as the
//! agent it identified, with the role it needs (merging people: a supervisor), exactly as the
//! TUI's `:merge`, `:unmerge`, `:merges` and `:duplicates`. `consent`, `export` and `forget`
//! are [`super::gdpr`]'s.

use super::client::{Client, unexpected};
use super::fmt::{Table, clip, rfc3339};
use super::{Globals, write_json};
use crate::api::{ContactAnswer, ContactOp, Request, Response};
use crate::model::{ContactId, IdentityKind};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Cmd {
    /// Merge contact OTHER into KEEP (KEEP survives): identities, conversations, tags, notes
    /// and claims move; `unmerge` takes it back. Shows what moves and asks first (--yes: don't)
    Merge {
        /// The contact that survives
        #[arg(value_name = "KEEP")]
        keep: String,
        /// The contact that joins it
        #[arg(value_name = "OTHER")]
        other: String,
        /// Why (recorded with the merge: "same phone", "told us on a call")
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        /// Merge without asking
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Take a merge back exactly: by merge id (--merge N) or the newest involving contact ID
    Unmerge {
        /// A contact the merge involves (the newest merge still in force is taken back)
        #[arg(value_name = "ID", required_unless_present = "merge")]
        id: Option<String>,
        /// The merge id (`braid contact merges ID` lists them)
        #[arg(long, value_name = "N")]
        merge: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// The merges involving a contact, newest first: who, when, why, what moved
    Merges {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Take an identity off a contact, or move it to another contact (audited)
    Identity {
        #[command(subcommand)]
        op: IdentityCmd,
    },
    /// Contacts that are likely one person, strongest first
    Duplicates {
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Two contacts are not one person: stop suggesting them
    Dismiss {
        #[arg(value_name = "ID")]
        a: String,
        #[arg(value_name = "OTHER")]
        b: String,
    },
    /// Consent, and the GDPR requests (export, forget)
    #[command(flatten)]
    Gdpr(super::gdpr::ContactCommand),
    /// Custom fields, stage and score
    #[command(flatten)]
    Fields(super::fields::ContactCmd),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum IdentityCmd {
    /// `braid contact identity remove ID KIND VALUE`
    Remove {
        #[arg(value_name = "ID")]
        id: String,
        /// email, phone, telegram, webchat, instagram, messenger, external
        #[arg(value_name = "KIND")]
        kind: IdentityKind,
        #[arg(value_name = "VALUE")]
        value: String,
    },
    /// `braid contact identity move ID KIND VALUE --to OTHER`
    Move {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(value_name = "KIND")]
        kind: IdentityKind,
        #[arg(value_name = "VALUE")]
        value: String,
        /// The contact it moves to
        #[arg(long, value_name = "OTHER")]
        to: String,
    },
}

fn contact_id(s: &str) -> anyhow::Result<ContactId> {
    crate::tui::action::parse_contact_id(s).map_err(anyhow::Error::msg)
}

fn call(client: &Client, contact: ContactId, op: ContactOp) -> anyhow::Result<ContactAnswer> {
    let name = op.name();
    match client.call(Request::Contact { contact, op })? {
        Response::Contact(a) => Ok(a),
        other => Err(unexpected(name, &other)),
    }
}

pub fn run(g: &Globals, a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    match &a.command {
        Cmd::Gdpr(c) => return super::gdpr::run(g, c, out),
        Cmd::Fields(c) => return super::fields::run(g, c, out),
        _ => {}
    }
    let (client, _config) = Client::open(g, "contact")?;
    match &a.command {
        Cmd::Merge {
            keep,
            other,
            reason,
            yes,
            json,
        } => {
            let (keep, other) = (contact_id(keep)?, contact_id(other)?);
            let plan = match call(
                &client,
                keep,
                ContactOp::MergePlan {
                    other,
                    keep_other: false,
                },
            )? {
                ContactAnswer::Plan(p) => p,
                other => return Err(anyhow::anyhow!("unexpected answer: {other:?}")),
            };
            if !yes {
                let q = crate::tui::contacts::merge_question(&plan);
                if !std::io::stdin().is_terminal() {
                    anyhow::bail!("nothing merged: {q} (pass --yes to merge without a terminal)");
                }
                eprint!("{q} [y/N] ");
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    anyhow::bail!("nothing merged (answer y to merge, or pass --yes)");
                }
            }
            let answer = call(
                &client,
                keep,
                ContactOp::Merge {
                    other,
                    keep_other: false,
                    reason: reason.clone(),
                },
            )?;
            let ContactAnswer::Merged { merge, .. } = answer else {
                return Err(anyhow::anyhow!("unexpected answer: {answer:?}"));
            };
            if *json {
                return write_json(
                    out,
                    &serde_json::json!({ "merge": merge, "survivor": keep, "absorbed": other }),
                );
            }
            writeln!(
                out,
                "contact #{other} merged into #{keep} (merge #{merge}; `braid contact unmerge --merge {merge}` takes it back)"
            )?;
        }
        Cmd::Unmerge { id, merge, json } => {
            let contact = match id {
                Some(i) => contact_id(i)?,
                None => ContactId(0),
            };
            let answer = call(&client, contact, ContactOp::Unmerge { merge: *merge })?;
            let ContactAnswer::Unmerged(u) = answer else {
                return Err(anyhow::anyhow!("unexpected answer: {answer:?}"));
            };
            if *json {
                return write_json(out, &u);
            }
            writeln!(out, "{}", crate::tui::contacts::unmerged_line(&u))?;
        }
        Cmd::Merges { id, json } => {
            let answer = call(&client, contact_id(id)?, ContactOp::Merges)?;
            let ContactAnswer::Merges(rows) = answer else {
                return Err(anyhow::anyhow!("unexpected answer: {answer:?}"));
            };
            if *json {
                return write_json(out, &rows);
            }
            let mut t = Table::new(&[
                "MERGE", "WHEN", "KIND", "KEPT", "JOINED", "BY", "WHY", "MOVED", "UNDONE",
            ]);
            for m in &rows {
                t.row(vec![
                    format!("#{}", m.id),
                    rfc3339(m.at),
                    m.kind.as_str().to_string(),
                    format!("#{}", m.target),
                    format!("#{}", m.other),
                    clip(&m.actor, 16),
                    clip(&m.reason, 40),
                    m.moved.clone(),
                    m.undone
                        .as_ref()
                        .map(|(t, by)| format!("{} by {by}", rfc3339(*t)))
                        .unwrap_or_default(),
                ]);
            }
            t.write(out)?;
        }
        Cmd::Identity { op } => {
            let (contact, op) = match op {
                IdentityCmd::Remove { id, kind, value } => (
                    contact_id(id)?,
                    ContactOp::IdentityRemove {
                        kind: *kind,
                        value: value.clone(),
                    },
                ),
                IdentityCmd::Move {
                    id,
                    kind,
                    value,
                    to,
                } => (
                    contact_id(id)?,
                    ContactOp::IdentityMove {
                        kind: *kind,
                        value: value.clone(),
                        to: contact_id(to)?,
                    },
                ),
            };
            if let ContactAnswer::Done(line) = call(&client, contact, op)? {
                writeln!(out, "{}", crate::sanitize::for_terminal_line(&line))?;
            }
        }
        Cmd::Duplicates { limit, json } => {
            let pairs = match client.call(Request::Duplicates { limit: *limit })? {
                Response::Duplicates(p) => p,
                other => return Err(unexpected("duplicates", &other)),
            };
            if *json {
                return write_json(out, &pairs);
            }
            let mut t = Table::new(&["SCORE", "WHY", "A", "NAME", "B", "NAME", "EVIDENCE"]);
            for p in &pairs {
                t.row(vec![
                    p.score.to_string(),
                    format!("{:?}", p.reason).to_lowercase(),
                    format!("#{}", p.a),
                    clip(&p.a_name, 24),
                    format!("#{}", p.b),
                    clip(&p.b_name, 24),
                    clip(&p.evidence, 60),
                ]);
            }
            t.write(out)?;
        }
        Cmd::Gdpr(_) | Cmd::Fields(_) => {}
        Cmd::Dismiss { a, b } => {
            let other = contact_id(b)?;
            if let ContactAnswer::Done(line) = call(
                &client,
                contact_id(a)?,
                ContactOp::DismissDuplicate { other },
            )? {
                writeln!(out, "{}", crate::sanitize::for_terminal_line(&line))?;
            }
        }
    }
    Ok(())
}
