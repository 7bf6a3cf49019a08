//! `braid rules`: check the workflow rules files, and dry-run them against a conversation or a
//! message that is not stored (an `.eml`, or a JSON message for any channel). Nothing is
//! written by either.
//!
//! ```text
//! braid rules check [FILE]...            (no FILE: the workspace's rules.toml and rules/)
//! braid rules test --conversation 12     (as the server runs them now)
//! braid rules test message.eml           (as a new email)
//! braid rules test message.json          ({"channel": "whatsapp", "from": "+4915…", "text": "…"})
//! braid rules test --rules new.toml …    (try a file before installing it)
//! ```

use super::client::{Client, unexpected};
use super::{Globals, write_json};
use crate::api::{DryRun, Request, Response, TestMessage};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Sub {
    /// Validate rules files (default: the workspace's); exit 1 naming file, line and rule
    Check {
        /// Rules files to check instead of the workspace's
        files: Vec<PathBuf>,
    },
    /// Dry run: which rules match, why, and what they would do (nothing is written)
    Test {
        /// A conversation in the store
        #[arg(long, value_name = "N", conflicts_with = "message")]
        conversation: Option<String>,
        /// A message file: .eml (an email) or .json ({"channel", "from", "text", …})
        message: Option<PathBuf>,
        /// Try this rules file instead of the workspace's rules
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        Sub::Check { files } => check(globals, files, out),
        Sub::Test {
            conversation,
            message,
            rules,
            json,
        } => test(
            globals,
            conversation.as_deref(),
            message.as_deref(),
            rules.as_deref(),
            *json,
            out,
        ),
    }
}

fn check(globals: &Globals, files: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<()> {
    let config =
        crate::config::Config::load(globals.config.as_deref(), globals.data_dir.as_deref())?;
    let mut known = crate::server::rules_known(&config);
    known.templates = crate::canned::Folder::beside(config.source.as_deref())
        .current()
        .0
        .names();
    let mut count = 0;
    let mut errors = Vec::new();
    if files.is_empty() {
        let Some(dir) = config.source.as_ref().and_then(|p| p.parent()) else {
            anyhow::bail!(
                "no workspace config file, so no rules folder: name the files (braid rules check rules.toml)"
            );
        };
        if crate::rules::files_of(dir).is_empty() {
            writeln!(
                out,
                "no rules files in {} (rules.toml or rules/*.toml)",
                dir.display()
            )?;
            return Ok(());
        }
        match crate::rules::load_dir(dir, &known) {
            Ok(l) => count = l.set.rules.len(),
            Err(e) => errors.push(e),
        }
    } else {
        for f in files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
            match crate::rules::load_str(&text, &f.display().to_string(), &known) {
                Ok(s) => count += s.rules.len(),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", crate::sanitize::for_terminal(&errors.join("\n")));
    }
    writeln!(out, "ok: {count} rule{}", if count == 1 { "" } else { "s" })?;
    Ok(())
}

/// Read a message file as a [`TestMessage`].
pub fn test_message(path: &Path) -> anyhow::Result<TestMessage> {
    let raw =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if path.extension().is_some_and(|x| x == "json") {
        return serde_json::from_slice(&raw).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (expected {{\"channel\": \"sms\", \"from\": \"+15550100\", \"text\": \"…\", \"name\"?, \"subject\"?}})",
                path.display()
            )
        });
    }
    Ok(crate::api::TestMessage::from_email(&raw))
}

fn test(
    globals: &Globals,
    conversation: Option<&str>,
    message: Option<&Path>,
    rules: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let conversation = conversation
        .map(crate::model::parse_conversation_id)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let message = message.map(test_message).transpose()?;
    if conversation.is_none() && message.is_none() {
        anyhow::bail!("give --conversation N or a message file (.eml or .json)");
    }
    let rules = rules
        .map(|p| {
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
        })
        .transpose()?;
    let (client, _config) = Client::open(globals, "rules test")?;
    let dry = match client.call(Request::RulesTest {
        conversation,
        message,
        rules,
    })? {
        Response::RulesTested(d) => d,
        other => return Err(unexpected("rules test", &other)),
    };
    drop(client);
    if json {
        return write_json(out, &*dry);
    }
    print_dry_run(&dry, out)
}

/// The dry run as text. Everything from outside is escaped.
pub fn print_dry_run(d: &DryRun, out: &mut dyn Write) -> anyhow::Result<()> {
    let esc = |s: &str| crate::sanitize::for_terminal_line(s).into_owned();
    match &d.event {
        Some(e) => writeln!(out, "{} (as {e}):", esc(&d.subject))?,
        None => writeln!(out, "{}:", esc(&d.subject))?,
    }
    let mut matched = 0;
    for r in &d.rules {
        let mark = match (r.enabled, r.runs, r.matched) {
            (false, _, _) => "off",
            (_, false, _) => " - ",
            (_, true, true) => " ✓ ",
            (_, true, false) => " ✗ ",
        };
        let note = if !r.enabled {
            " (disabled)".to_string()
        } else if !r.runs {
            format!(" (runs on {}, not on this event)", r.on)
        } else {
            String::new()
        };
        writeln!(out, "{mark} {} — {}{}", esc(&r.id), esc(&r.name), note)?;
        if !r.why.is_empty() {
            writeln!(out, "      why: {}", esc(&r.why))?;
        }
        if r.matched && r.runs && r.enabled {
            matched += 1;
            for w in &r.would {
                writeln!(out, "      would: {}", esc(w))?;
            }
        }
        if let Some(p) = &r.problem {
            writeln!(out, "      cannot: {}", esc(p))?;
        }
    }
    writeln!(
        out,
        "{matched} of {} rule{} would run",
        d.rules.len(),
        if d.rules.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}
