//! `braid campaign`: campaigns (drip sequences) defined in the workspace config.
//!
//! ```text
//! braid campaign dry-run NAME     how many, on which channels, who is excluded and why
//! braid campaign start NAME       shows the dry run, asks; --yes to skip the question
//! braid campaign stop NAME        nothing not yet queued goes
//! braid campaign status [NAME]    progress and failures
//! ```
//!
//! Dry run and status need the supervisor role, start and stop the admin role. The workspace
//! server sends the steps (paced per channel, within business hours).

use super::client::{Client, unexpected};
use super::{Globals, write_json};
use crate::api::{CampaignAnswer, CampaignDryRun, CampaignOp, CampaignStatus, Request, Response};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Sub {
    /// How many contacts a start would take, per channel, and who is excluded and why
    DryRun {
        name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Enrol the segment and start sending (shows the dry run first)
    Start {
        name: String,
        /// Start without asking (after reading a dry run)
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop a campaign: no step not yet queued goes
    Stop { name: String },
    /// Progress and failures of one campaign (or all)
    Status {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn call(client: &Client, op: CampaignOp, what: &str) -> anyhow::Result<CampaignAnswer> {
    match client.call(Request::Campaign(op))? {
        Response::Campaign(a) => Ok(*a),
        Response::Error(e) | Response::Refused(e) => anyhow::bail!("{e}"),
        other => Err(unexpected(what, &other)),
    }
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "campaign")?;
    match &args.command {
        Sub::DryRun { name, json } => {
            let a = call(
                &client,
                CampaignOp::DryRun { name: name.clone() },
                "campaign dry-run",
            )?;
            let CampaignAnswer::DryRun(d) = a else {
                anyhow::bail!("the server answered a dry run with something else");
            };
            if *json {
                return write_json(out, &d);
            }
            write_dry_run(out, &d)
        }
        Sub::Start { name, yes, json } => {
            if !yes {
                let a = call(
                    &client,
                    CampaignOp::DryRun { name: name.clone() },
                    "campaign dry-run",
                )?;
                let CampaignAnswer::DryRun(d) = a else {
                    anyhow::bail!("the server answered a dry run with something else");
                };
                write_dry_run(out, &d)?;
                if !std::io::stdin().is_terminal() {
                    anyhow::bail!(
                        "not started: read the dry run above, then braid campaign start {name} --yes"
                    );
                }
                write!(
                    out,
                    "Start '{name}' and write to {} contacts? [y/N] ",
                    d.enrolled()
                )?;
                out.flush()?;
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    writeln!(out, "not started")?;
                    return Ok(());
                }
            }
            let a = call(
                &client,
                CampaignOp::Start {
                    name: name.clone(),
                    confirmed: true,
                },
                "campaign start",
            )?;
            let CampaignAnswer::Started(d) = a else {
                anyhow::bail!("the server answered a start with something else");
            };
            if *json {
                return write_json(out, &d);
            }
            writeln!(
                out,
                "started '{}' (run {}): {} enrolled, {} excluded; the server sends the steps",
                d.campaign,
                d.run.unwrap_or(0),
                d.enrolled(),
                d.excluded.len()
            )?;
            Ok(())
        }
        Sub::Stop { name } => {
            let a = call(
                &client,
                CampaignOp::Stop { name: name.clone() },
                "campaign stop",
            )?;
            let CampaignAnswer::Stopped { name, active } = a else {
                anyhow::bail!("the server answered a stop with something else");
            };
            writeln!(
                out,
                "stopped '{}': {active} contacts will get nothing more",
                crate::sanitize::line(&name)
            )?;
            Ok(())
        }
        Sub::Status { name, json } => {
            let a = call(
                &client,
                CampaignOp::Status { name: name.clone() },
                "campaign status",
            )?;
            let CampaignAnswer::Status { campaigns } = a else {
                anyhow::bail!("the server answered a status with something else");
            };
            if *json {
                return write_json(out, &campaigns);
            }
            if campaigns.is_empty() {
                writeln!(
                    out,
                    "no campaigns: add [[campaigns]] to the workspace config"
                )?;
            }
            for c in &campaigns {
                write_status(out, c, name.is_some())?;
            }
            Ok(())
        }
    }
}

pub fn write_dry_run(out: &mut dyn Write, d: &CampaignDryRun) -> anyhow::Result<()> {
    let line = crate::sanitize::line;
    writeln!(
        out,
        "campaign {}  segment: {}",
        line(&d.campaign),
        line(&d.segment)
    )?;
    writeln!(
        out,
        "{} contacts match; {} would be enrolled, {} excluded",
        d.matched,
        d.enrolled(),
        d.excluded.len()
    )?;
    for (ch, n) in &d.per_channel {
        writeln!(out, "  {:<10} {n}", ch.as_str())?;
    }
    if !d.excluded.is_empty() {
        writeln!(out, "excluded:")?;
        for (kind, n) in d.excluded_by_kind() {
            writeln!(out, "  {:<18} {n}", line(&kind))?;
        }
        for e in d.excluded.iter().take(50) {
            writeln!(
                out,
                "  #{} {}: {} ({})",
                e.contact.0,
                line(&e.name),
                line(&e.kind),
                line(&e.detail)
            )?;
        }
        if d.excluded.len() > 50 {
            writeln!(
                out,
                "  … {} more (--json lists them all)",
                d.excluded.len() - 50
            )?;
        }
    }
    Ok(())
}

fn write_status(out: &mut dyn Write, c: &CampaignStatus, failures: bool) -> anyhow::Result<()> {
    let line = crate::sanitize::line;
    let state = if c.running {
        "running"
    } else if c.stopped {
        "stopped"
    } else if c.runs > 0 {
        "finished"
    } else {
        "not started"
    };
    let sent: Vec<String> = c
        .sent_per_step
        .iter()
        .enumerate()
        .map(|(i, n)| format!("step {}: {n}", i + 1))
        .collect();
    writeln!(
        out,
        "{}  {state}  enrolled {}  active {}  done {}  left (replied) {}  excluded {}  failed {}  \
         sent [{}]",
        line(&c.name),
        c.enrolled,
        c.active,
        c.done,
        c.left_replied,
        c.excluded,
        c.failed,
        sent.join(", ")
    )?;
    if failures {
        for f in &c.failures {
            writeln!(
                out,
                "  #{} {}: {} at step {}: {}",
                f.contact.0,
                line(&f.name),
                f.state,
                f.step + 1,
                line(&f.reason)
            )?;
        }
    }
    Ok(())
}
