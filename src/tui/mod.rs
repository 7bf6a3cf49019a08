//! The terminal UI: one task owns the state; keys, store changes and worker status arrive as
//! events; update maps them to state changes and effects; draw is a pure function of state.

pub mod action;
pub mod keymap;
pub mod data;
pub mod time;

/// Run the TUI on the store of `config` until the user quits. (Stub until the TUI lands.)
pub async fn run(config: crate::config::Config) -> anyhow::Result<()> {
    let _ = config;
    anyhow::bail!("the TUI is not built yet")
}
