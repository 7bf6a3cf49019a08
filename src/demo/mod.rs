//! The demo workspace: a deterministic generator and a live simulator.

use crate::model::Millis;
use crate::store::Store;
use std::time::Duration;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub contacts: usize,
    pub messages: usize,
    pub days: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 42,
            contacts: 300,
            messages: 3000,
            days: 90,
        }
    }
}

/// What `generate` made.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub contacts: usize,
    pub conversations: usize,
    pub messages: usize,
    pub elapsed: Duration,
}

/// Fill an EMPTY store with the demo workspace (timestamps end at `now`), and mark the store as a
/// demo workspace.
pub fn generate(
    _store: &mut Store,
    _opts: &DemoOptions,
    _now: Millis,
    _progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<GenerateReport> {
    anyhow::bail!("demo generator: not implemented yet")
}

/// True if this store was made by `generate` (a marker row in the `cursors` table: channel
/// 'demo', account '', key 'seed').
pub fn is_demo_workspace(store: &Store) -> anyhow::Result<bool> {
    Ok(store.cursor("demo", "", "seed")?.is_some())
}
