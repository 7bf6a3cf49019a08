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
    // The data dir 0700 and the log 0600 (private.rs): log lines name customers. Looser
    // modes are tightened once logging runs, so that the change is in the log.
    if crate::private::create_missing_dirs(data_dir).is_err() {
        return;
    }
    let path = data_dir.join(LOG_FILE);
    let Ok(file) = crate::private::append_file_as_is(&path) else {
        return;
    };
    let filter = EnvFilter::try_from_env("BRAID_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(true)
        .try_init();
    crate::private::tighten_if_exists(data_dir, 0o700);
    crate::private::tighten_if_exists(&path, 0o600);
}
