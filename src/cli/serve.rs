//! `braid serve`: run the worker headless (channels, outbox, snooze wake-ups) until Ctrl-C or
//! SIGTERM. With several braid processes on one store, exactly one runs the channels (the lease);
//! a `serve` that is not the leader waits and takes over when the leader exits.

use super::{Globals, block_on};
use crate::worker::{Role, WorkerStatus};
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub fn run(globals: &Globals, _args: &Args) -> anyhow::Result<()> {
    let config = globals.load()?;
    // Fail early, before the runtime, on a store we cannot open.
    drop(super::open_store(&config)?);
    block_on(serve(config))?
}

async fn serve(config: crate::config::Config) -> anyhow::Result<()> {
    let handle = crate::worker::spawn(&config)?;
    let mut status = handle.status.clone();
    say(&format!(
        "serving {} (Ctrl-C to stop; log in {})",
        config.data_dir.display(),
        config.data_dir.join(super::log::LOG_FILE).display()
    ));
    tracing::info!(data_dir = %config.data_dir.display(), "braid serve started");
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
    tracing::info!("braid serve stopped");
    Ok(())
}

/// One line on stderr (serve has no TUI, so the terminal is ours).
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "braid serve: {}",
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
