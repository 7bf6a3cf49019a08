//! `braid import maildir PATH` / `braid import mbox PATH`: migrate mail history into the store
//! through the one ingest path. Idempotent: importing the same mail again adds nothing.
//!
//! A progress bar (messages/s) goes to stderr when it is a terminal; the summary goes to stdout.
//! Messages that could not be imported are listed on stderr, one line each, and make the exit
//! status 1 (everything else is imported all the same).
//!
//! A server-side command: it opens the store itself (an import is a bulk write no client
//! request carries), holding the data dir's server lock while it runs; while a braid server
//! runs on the data dir it refuses with one line (stop the server, import, start it again).

use super::server::{lock_data_dir, open_store};
use super::{Globals, write_json};
use crate::channels::email::import::{self, Format, Progress};
use crate::channels::email::{Limits, Options};
use crate::ingest::Settings;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `maildir` (cur/ and new/, nested Maildir++ folders included) or `mbox` (mboxo/mboxrd)
    #[arg(value_enum)]
    pub format: FormatArg,
    /// The Maildir folder or the mbox file
    pub path: PathBuf,
    /// One of our own addresses (repeatable): mail From it is imported as our outgoing reply to
    /// its first To
    #[arg(long = "me", value_name = "ADDRESS")]
    pub our_addresses: Vec<String>,
    /// The braid email account the messages belong to
    #[arg(long, default_value = "", value_name = "NAME")]
    pub account: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Maildir,
    Mbox,
}

#[derive(Debug, Serialize)]
pub struct ImportJson {
    pub messages: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub skipped: Vec<SkippedJson>,
    pub seconds: f64,
    pub messages_per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct SkippedJson {
    pub origin: String,
    pub reason: String,
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = globals.load()?;
    // A server-side command: it writes the store itself, so no server may run meanwhile.
    let _lock = lock_data_dir(
        &config,
        "it owns the store: stop it to import (`braid import` writes the store directly), then start it again",
    )?;
    let mut store = open_store(&config)?;
    let format = match args.format {
        FormatArg::Maildir => Format::Maildir,
        FormatArg::Mbox => Format::Mbox,
    };
    let options = Options {
        account: args.account.clone(),
        our_addresses: args.our_addresses.clone(),
        limits: Limits::default(),
    };
    let mut bar = ProgressBar::new(std::io::stderr().is_terminal());
    let before = store.message_count()?;
    let report = match import::import(
        &mut store,
        format,
        &args.path,
        &options,
        &Settings::default(),
        &mut |p| bar.draw(p, false),
    ) {
        Ok(r) => r,
        Err(e) => {
            // What the batches committed before the failure stays; say how much (a re-run
            // resumes: the kept messages come back as duplicates).
            let kept = store
                .message_count()
                .map(|after| format!("kept {} messages before the failure", after - before))
                .unwrap_or_else(|_| "the messages of the batches done before it are kept".into());
            return Err(anyhow::Error::new(e).context(format!(
                "import of {} stopped ({kept}; run it again to resume once the cause is fixed)",
                args.path.display()
            )));
        }
    };
    bar.finish(&report.progress);
    tracing::info!(
        path = %args.path.display(),
        stored = report.progress.stored,
        duplicates = report.progress.duplicates,
        skipped = report.progress.skipped,
        "import done"
    );
    let p = &report.progress;
    if args.json {
        write_json(
            out,
            &ImportJson {
                messages: p.done,
                stored: p.stored,
                duplicates: p.duplicates,
                skipped: report
                    .skipped
                    .iter()
                    .map(|s| SkippedJson {
                        origin: s.origin.clone(),
                        reason: s.reason.clone(),
                    })
                    .collect(),
                seconds: report.elapsed.as_secs_f64(),
                messages_per_second: report.rate(),
            },
        )?;
    } else {
        for s in &report.skipped {
            // File names and parser messages come from outside: escaped (sanitize.rs).
            eprintln!(
                "skipped {}: {}",
                crate::sanitize::for_terminal_line(&s.origin),
                crate::sanitize::for_terminal_line(&s.reason)
            );
        }
        writeln!(
            out,
            "{} messages: {} new, {} already there, {} skipped ({:.1} s, {:.0} messages/s)",
            p.done,
            p.stored,
            p.duplicates,
            p.skipped,
            report.elapsed.as_secs_f64(),
            report.rate()
        )?;
    }
    if !report.skipped.is_empty() {
        out.flush()?;
        anyhow::bail!(
            "{} of {} messages could not be imported",
            report.skipped.len(),
            p.done
        );
    }
    Ok(())
}

/// One line on stderr, redrawn at most ten times a second.
struct ProgressBar {
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
}

impl ProgressBar {
    fn new(enabled: bool) -> ProgressBar {
        ProgressBar {
            enabled,
            started: Instant::now(),
            last: None,
        }
    }

    fn draw(&mut self, p: &Progress, force: bool) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.started).as_secs_f64().max(1e-3);
        let fraction = match (p.total, p.bytes_total) {
            (Some(t), _) if t > 0 => Some(p.done as f64 / t as f64),
            (_, b) if b > 0 => Some(p.bytes_done as f64 / b as f64),
            _ => None,
        };
        const WIDTH: usize = 30;
        let bar = match fraction {
            Some(f) => {
                let full = ((f.clamp(0.0, 1.0)) * WIDTH as f64) as usize;
                format!(
                    "[{}{}] {:3.0}%",
                    "#".repeat(full),
                    "-".repeat(WIDTH - full),
                    f * 100.0
                )
            }
            None => String::new(),
        };
        let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{bar} {}{total} messages, {:.0}/s",
            p.done,
            p.done as f64 / secs
        );
        let _ = err.flush();
    }

    fn finish(&mut self, p: &Progress) {
        if self.enabled {
            self.draw(p, true);
            eprintln!();
        }
    }
}
