//! `braid server` (formerly `braid serve`, still accepted): the workspace server. One process
//! per workspace owns the store, runs every channel and the outbox, reads the secrets, and
//! serves the agents' TUIs and CLI commands on a Unix socket, identifying each by the kernel.
//! Its config file is the workspace config: channels, `[[teams]]`, `[[agents]]`, `[server]`.
//! `--check` validates it and exits.

use super::{Globals, block_on};
use crate::worker::{Role, WorkerStatus};
use anyhow::Context;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Validate the workspace config (keys, values, teams, agents, secrets' commands named)
    /// and exit: 0 when it is good, else one line naming the key and the line
    #[arg(long)]
    pub check: bool,
}

/// Open the store of a config (creating it on first use): for the server-side commands only
/// (`demo`, `import`, `sync`); every other command goes through the server.
pub fn open_store(config: &crate::config::Config) -> anyhow::Result<crate::store::Store> {
    crate::store::Store::open_dir(&config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))
}

/// Server-side commands that write the store themselves (`import`, `sync`) hold the server's
/// lock of the data dir while they run, so no server starts under them; when a server runs
/// they refuse with `why` (one line saying what to do instead).
pub fn lock_data_dir(
    config: &crate::config::Config,
    why: &str,
) -> anyhow::Result<crate::server::ServerLock> {
    let dir = &config.data_dir;
    if crate::server::running(dir) {
        anyhow::bail!("a braid server runs on {}; {why}", dir.display());
    }
    crate::private::create_dir(dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    crate::server::ServerLock::acquire(dir)
        .map_err(|_| anyhow::anyhow!("a braid server runs on {}; {why}", dir.display()))
}

pub fn run(globals: &Globals, args: &Args) -> anyhow::Result<()> {
    if args.check {
        // Reads the config and nothing else: no log, no data dir made (run as root on the
        // service's data dir, either would leave a file the service cannot write).
        let config =
            crate::config::Config::load(globals.config.as_deref(), globals.data_dir.as_deref())?;
        return check(&config);
    }
    let config = globals.load()?;
    block_on(serve(globals, config))?
}

/// `--check`: the config loaded (every key and value was checked doing so); say what it holds.
fn check(config: &crate::config::Config) -> anyhow::Result<()> {
    let ws = &config.workspace;
    let mut channels: Vec<String> = Vec::new();
    for a in &config.email {
        channels.push(format!("email {}", a.name));
    }
    if config.telegram.is_some() {
        channels.push("telegram".into());
    }
    if config.webchat.enabled {
        channels.push(format!("webchat on {}", config.webchat.listen));
    }
    let socket = socket_for(None, config);
    println!(
        "{}: ok · data {} · socket {} · {} team(s) · {} agent(s) · {} SLA policy(ies) in {} hours · channels: {}",
        config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "built-in defaults (no config file)".into()),
        config.data_dir.display(),
        socket.display(),
        ws.teams.len(),
        ws.agents.len(),
        ws.sla.policies.len(),
        ws.sla.hours.len(),
        if channels.is_empty() {
            "none".to_string()
        } else {
            channels.join(", ")
        }
    );
    for a in &ws.agents {
        if nix::unistd::User::from_name(&a.user)
            .ok()
            .flatten()
            .is_none()
        {
            println!(
                "note: agent '{}' is Unix user '{}', which does not exist on this machine yet",
                a.name, a.user
            );
        }
    }
    Ok(())
}

/// Where the server listens: `--socket`, else `[server] socket`, else the personal socket of
/// the data dir.
fn socket_for(
    flag: Option<&std::path::Path>,
    config: &crate::config::Config,
) -> std::path::PathBuf {
    flag.map(std::path::Path::to_path_buf)
        .or_else(|| config.workspace.socket.clone())
        .unwrap_or_else(|| {
            crate::api::paths::personal_socket(
                &config.data_dir,
                crate::api::paths::runtime_dir().as_deref(),
            )
        })
}

async fn serve(globals: &Globals, config: crate::config::Config) -> anyhow::Result<()> {
    let socket = socket_for(globals.socket.as_deref(), &config);
    let mut opts = crate::server::ServerOptions::new(config.clone());
    opts.socket = Some(socket.clone());
    let handle = crate::server::start(opts).await?;
    let mut status = handle.status();
    say(&format!(
        "serving {} on {} (Ctrl-C to stop; log in {})",
        config.data_dir.display(),
        socket.display(),
        config.data_dir.join(super::log::LOG_FILE).display()
    ));
    tracing::info!(data_dir = %config.data_dir.display(), socket = %socket.display(), "braid server started");
    let mut shown = WorkerStatus::default();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = status.changed() => {
                if changed.is_err() {
                    say("the worker stopped");
                    break;
                }
                let now = status.borrow_and_update().clone();
                if now.role != shown.role && now.role != Role::Starting {
                    say(&now.summary());
                    if now.role == Role::Leader && config.webchat.enabled {
                        say(&format!(
                            "web chat on {} (widget: {}widget.js)",
                            crate::channels::webchat::local_url(config.webchat.listen),
                            crate::channels::webchat::local_url(config.webchat.listen)
                        ));
                    }
                }
                if let Some(e) = &now.last_error
                    && now.last_error != shown.last_error
                {
                    say(&format!("worker error: {e}"));
                }
                tracing::debug!(status = %now.summary(), "worker status");
                shown = now;
            }
        }
    }
    say("stopping: finishing sends in flight");
    handle.shutdown().await;
    tracing::info!("braid server stopped");
    Ok(())
}

/// One line on stderr (the server has no TUI, so the terminal is ours).
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "braid server: {}",
        crate::sanitize::for_terminal_line(line)
    );
}

/// Ctrl-C, or SIGTERM (systemd, docker stop).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
