//! The terminal UI: one task owns the state; keys, store changes and worker status arrive as
//! events; update maps them to state changes and effects; draw is a pure function of state.

pub mod action;
pub mod app;
pub mod audit;
pub mod campaigns;
pub mod colors;
pub mod contacts;
pub mod keymap;
pub mod notifications;
pub mod pipeline;
pub mod reports;
pub mod rules;
pub mod runtime;
pub mod sheet;
pub mod tasks;
pub mod time;
pub mod ui;
pub mod who;

pub use runtime::run;
