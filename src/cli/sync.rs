//! `braid sync --once`: one full pass of every configured channel, then exit (cron, scripts,
//! tests). Email: every folder, new mail and all older mail not stored yet. Telegram: the
//! updates waiting now. The outbox: every reply due now is sent. `braid server` keeps the
//! channels running instead.
//!
//! A server-side command: it holds the data dir's server lock and runs the pass in this process
//! ([`crate::server::sync`]); while a braid server runs on the data dir it refuses with one line
//! (the server runs the channels; sync is for when none runs). This file only prints.

use super::{Globals, write_json};
use anyhow::bail;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Run one pass and exit (the only mode: `braid server` keeps syncing)
    #[arg(long)]
    pub once: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.once {
        bail!("braid sync runs one pass: pass --once (braid server keeps the channels running)");
    }
    let config = globals.load()?;
    // A server-side command: with a server running, the server runs the channels.
    let _lock =
        super::server::lock_data_dir(&config, "it runs the channels (sync is for when none runs)")?;
    drop(super::server::open_store(&config)?);
    let report = super::block_on(crate::server::sync::sync_once(&config))??;
    if args.json {
        write_json(out, &report)?;
    } else {
        for f in &report.folders {
            writeln!(
                out,
                "email {} {}: {} new, {} already stored{} ({:.1} s, {:.0} messages/s)",
                esc(&f.account),
                esc(&f.folder),
                f.stored,
                f.duplicates + f.matched,
                if f.uidvalidity_changed {
                    ", UIDVALIDITY changed"
                } else {
                    ""
                },
                f.seconds,
                f.messages_per_second
            )?;
        }
        if let Some(t) = &report.telegram {
            writeln!(
                out,
                "telegram: {} new, {} already stored, {} skipped",
                t.stored, t.duplicates, t.skipped
            )?;
        }
        writeln!(
            out,
            "outbox: {} sent, {} failed",
            report.sent, report.failed
        )?;
        for e in &report.errors {
            writeln!(out, "error: {}", esc(e))?;
        }
    }
    if let Some(first) = report.errors.first() {
        bail!("{first}");
    }
    Ok(())
}

use crate::sanitize::for_terminal_line as esc;
