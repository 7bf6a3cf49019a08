//! braid: a terminal omnichannel inbox.
//!
//! Every channel feeds one store ([`store`]) through one path ([`ingest`]); every person is one
//! contact ([`identity`]); the TUI ([`tui`]) and the CLI ([`cli`]) are clients of that store.

pub mod actions;
pub mod api;
pub mod campaign;
pub mod canned;
pub mod channels;
pub mod cli;
pub mod config;
pub mod consent;
pub mod csat;
pub mod demo;
pub mod feed;
pub mod fields;
pub mod files;
pub mod harness;
pub mod identity;
pub mod ingest;
pub mod mentions;
pub mod model;
pub mod private;
pub mod reports;
pub mod rules;
pub mod sanitize;
pub mod secret;
pub mod segments;
pub mod server;
pub mod sla;
pub mod store;
pub mod template;
pub mod tui;
pub mod units;
pub mod webhooks;
pub mod when;
pub mod worker;
