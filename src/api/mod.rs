//! THE protocol between clients (the TUI, the CLI) and the workspace server ([`crate::server`]):
//! the message types ([`protocol`]), the framing ([`codec`]), the client side of a connection
//! ([`client`]) and where a server listens ([`paths`]). Clients import this and nothing below
//! the seam (no store, worker or channel).

pub mod client;
pub mod codec;
pub mod paths;
pub mod protocol;

pub use client::{ApiError, Connection, Incoming};
pub use protocol::*;
