//! Logging: `tracing` into `braid.log` in the data dir, never stdout or stderr (the TUI owns the
//! terminal). `BRAID_LOG` sets the filter (`debug`, `braid=trace,info`, ...); default `info`.

use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::EnvFilter;

/// The log file's name inside the data dir.
pub const LOG_FILE: &str = "braid.log";

/// Start logging into `data_dir/braid.log`. Best effort: when the file cannot be opened the
/// program runs without a log (the store's own error will say what is wrong with the dir).
/// Only the first call in a process has an effect.
pub fn init(data_dir: &Path) {
    if std::fs::create_dir_all(data_dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(LOG_FILE))
    else {
        return;
    };
    let filter = EnvFilter::try_from_env("BRAID_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(true)
        .try_init();
}
