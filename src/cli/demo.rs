//! `braid demo`: build (or reopen) the demo workspace in its own data dir and open the TUI on it.
//! `braid demo --messages 1000000` builds the large benchmark workspace.
//!
//! A server-side command: it builds the demo store itself, then opens the TUI as a client of
//! the server (started in this process when none runs).

use super::server::open_store;
use super::{Globals, block_on};
use crate::config::Config;
use crate::demo::{DemoOptions, GenerateReport};
use crate::model::now_millis;
use crate::store::{QueueFilter, Store};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Seed of the generator: the same seed builds the same workspace [default: 42]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// How many messages to generate [default: 3000]
    #[arg(long, value_name = "N")]
    pub messages: Option<usize>,
    /// How many contacts [default: 300, or messages/10 when --messages is given]
    #[arg(long, value_name = "N")]
    pub contacts: Option<usize>,
    /// Build (or check) the workspace, then exit without opening the TUI
    #[arg(long)]
    pub no_tui: bool,
    /// Where the demo's web chat listens [default: 127.0.0.1:8765]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// See the workspace as one of its agents (alice, bob: support; carol: sales; dana: both):
    /// only their teams' queue, their role's verbs. Default: you, the admin.
    #[arg(long = "as", value_name = "AGENT")]
    pub as_agent: Option<String>,
}

impl Args {
    /// The generator options these flags ask for.
    pub fn options(&self) -> anyhow::Result<DemoOptions> {
        let mut opts = DemoOptions::default();
        if let Some(seed) = self.seed {
            opts.seed = seed;
        }
        if let Some(m) = self.messages {
            if m == 0 {
                anyhow::bail!("--messages must be at least 1");
            }
            opts.messages = m;
            opts.contacts = (m / 10).max(1);
        }
        if let Some(c) = self.contacts {
            if c == 0 {
                anyhow::bail!("--contacts must be at least 1");
            }
            opts.contacts = c;
        }
        Ok(opts)
    }
}

pub fn run(globals: &Globals, args: &Args) -> anyhow::Result<()> {
    let opts = args.options()?;
    // The demo has its own workspace, apart from real data, unless --data-dir says otherwise.
    let data_dir = workspace_dir(globals)?;
    let mut config = globals.load_in(Some(&data_dir))?;
    // The demo serves the website live chat too, so a browser can join the simulated customers.
    config.webchat.enabled = true;
    // Two teams and the simulated agents, so team boundaries are visible (`--as carol`).
    if config.workspace.agents.is_empty() {
        config.workspace = crate::demo::workspace();
        let templates = config.data_dir.join("templates");
        match crate::demo::write_templates(&templates) {
            Ok(()) => config.workspace.templates_dir = Some(templates),
            Err(e) => tracing::warn!("cannot write the demo's canned replies: {e}"),
        }
    }
    // The demo's teams: a browser visitor's chat belongs to support, as the simulated ones.
    config.webchat.team = Some(crate::demo::SUPPORT.to_string());
    if let Some(listen) = args.listen {
        config.webchat.listen = listen;
    }
    let data_dir = config.data_dir.clone();
    let mut store = open_store(&config)?;
    // Asked for another seed than the workspace was built with: build it again (it is a demo:
    // nothing in it is anyone's work), unless another braid has it open.
    if let Some(asked) = args.seed
        && crate::demo::is_demo_workspace(&store)?
        && let Some(built) = crate::demo::demo_seed(&store)?
        && built != asked
    {
        drop(store);
        store = rebuild(&config, built, asked)?;
    }
    if is_empty(&store)? {
        let report = build(&mut store, &opts)?;
        let secs = report.elapsed.as_secs_f64().max(1e-6);
        eprintln!(
            "braid demo: built the workspace in {}: {} contacts, {} conversations, {} messages in {:.2} s ({} messages/s)",
            data_dir.display(),
            thousands(report.contacts as u64),
            thousands(report.conversations as u64),
            thousands(report.messages as u64),
            secs,
            thousands((report.messages as f64 / secs) as u64)
        );
    } else {
        let n = store.queue_count(&QueueFilter::All)?;
        if crate::demo::is_demo_workspace(&store)? {
            eprintln!(
                "braid demo: reusing the workspace in {} ({} conversations; delete that directory to build a new one)",
                data_dir.display(),
                thousands(n as u64)
            );
        } else {
            eprintln!(
                "braid demo: {} holds a store that is not a demo workspace ({} conversations); opening it as it is",
                data_dir.display(),
                thousands(n as u64)
            );
        }
    }
    drop(store);
    if args.no_tui {
        return Ok(());
    }
    // The web chat's address shows in the status line once the worker has bound it. Before the
    // screen changes, make sure it can: a port held by another program is said here, with the
    // way out, instead of a status line that never gets an address.
    check_webchat_port(&config)?;
    block_on(super::tui_session_as(
        globals,
        config,
        args.as_agent.as_deref(),
        false,
    ))?
}

/// Fails when the web chat cannot listen where the demo will ask it to (another program holds
/// the port). When another braid runs this workspace's worker, that one serves the channels and
/// nothing is checked.
fn check_webchat_port(config: &Config) -> anyhow::Result<()> {
    let lease = match crate::worker::Lease::try_acquire(&config.data_dir) {
        Ok(Some(lease)) => lease,
        // Another braid runs the worker (and its web chat, if it serves one); or the lease
        // cannot be tried, which the worker reports in the status line.
        Ok(None) | Err(_) => return Ok(()),
    };
    let listen = config.webchat.listen;
    let probe = std::net::TcpListener::bind(listen);
    drop(lease);
    match probe {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!(
            "the demo's web chat cannot listen on {listen} ({e}): another program holds that port; pick another with braid demo --listen 127.0.0.1:PORT"
        ),
    }
}

/// Delete the demo store built with seed `built` and open an empty one to build with `asked`.
fn rebuild(config: &Config, built: u64, asked: u64) -> anyhow::Result<Store> {
    let dir = &config.data_dir;
    let lease = crate::worker::Lease::try_acquire(dir)?;
    if lease.is_none() {
        anyhow::bail!(
            "the demo in {} was built with seed {built}, not seed {asked}, and another braid has it open; quit that one to rebuild it, or use another directory (--data-dir)",
            dir.display()
        );
    }
    eprintln!(
        "braid demo: the workspace in {} was built with seed {built}: building it again with seed {asked}",
        dir.display()
    );
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("{}{suffix}", crate::store::DB_FILE));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot remove {}: {e}", path.display()),
        }
    }
    let store = open_store(config)?;
    drop(lease);
    Ok(store)
}

/// Nothing in the store yet: no contact, no conversation.
fn is_empty(store: &Store) -> anyhow::Result<bool> {
    Ok(store.queue_count(&QueueFilter::All)? == 0 && store.contacts_page(None, 1)?.is_empty())
}

/// Generate, with a progress line on stderr for big builds.
fn build(store: &mut Store, opts: &DemoOptions) -> anyhow::Result<GenerateReport> {
    let tty = std::io::stderr().is_terminal();
    let big = opts.messages >= 20_000;
    let start = Instant::now();
    let mut last_shown = Instant::now();
    let mut shown_any = false;
    let mut progress = |done: usize, total: usize| {
        if !big || last_shown.elapsed() < Duration::from_millis(if tty { 200 } else { 2_000 }) {
            return;
        }
        last_shown = Instant::now();
        shown_any = true;
        let total = total.max(1);
        let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-6);
        let line = format!(
            "braid demo: {} / {} messages ({}%, {} messages/s)",
            thousands(done as u64),
            thousands(total as u64),
            done * 100 / total,
            thousands(rate as u64)
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    };
    if big {
        eprintln!(
            "braid demo: building {} messages for {} contacts (seed {})…",
            thousands(opts.messages as u64),
            thousands(opts.contacts as u64),
            opts.seed
        );
    }
    let report = crate::demo::generate(store, opts, now_millis(), &mut progress);
    if tty && shown_any {
        eprint!("\r\x1b[2K");
    }
    let report = report?;
    crate::demo::apply_sla(store, now_millis())?;
    crate::demo::seed_surveys(store)?;
    Ok(report)
}

use crate::units::thousands;

/// Where `braid demo` keeps its workspace for these flags.
pub fn workspace_dir(globals: &Globals) -> anyhow::Result<std::path::PathBuf> {
    Ok(match &globals.data_dir {
        Some(d) => d.clone(),
        None => Config::demo_data_dir()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_the_flags() {
        let args = |messages, contacts| Args {
            seed: Some(7),
            messages,
            contacts,
            no_tui: true,
            listen: None,
            as_agent: None,
        };
        let o = args(None, None).options().unwrap();
        assert_eq!((o.seed, o.messages, o.contacts), (7, 3000, 300));
        let o = args(Some(1_000_000), None).options().unwrap();
        assert_eq!((o.messages, o.contacts), (1_000_000, 100_000));
        let o = args(Some(1_000), Some(5)).options().unwrap();
        assert_eq!((o.messages, o.contacts), (1_000, 5));
        assert!(args(Some(0), None).options().is_err());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
