//! The demo channel: simulated customers.

use crate::channels::Outbound;
use std::path::Path;
use std::sync::Arc;

/// The simulated customers of a demo workspace. Starting it spawns a background thread with its
/// own Store connection; dropping it stops the thread.
pub struct DemoChannels {
    _seed: u64,
}

impl DemoChannels {
    pub fn start(_store_path: &Path, seed: u64) -> anyhow::Result<DemoChannels> {
        Ok(DemoChannels { _seed: seed })
    }

    /// One Outbound per channel (email, telegram, webchat) that "delivers" replies in the demo.
    pub fn outbound(&self) -> Vec<Arc<dyn Outbound>> {
        Vec::new()
    }

    /// A one-line status for the status line, e.g. "demo: 12 customers online".
    pub fn status(&self) -> String {
        "demo: starting".to_string()
    }
}
