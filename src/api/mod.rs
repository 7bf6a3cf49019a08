//! THE protocol between clients (the TUI, the CLI) and the workspace server ([`crate::server`]):
//! the message types ([`protocol`]), the framing ([`codec`]), the client side of a connection
//! ([`client`]) and where a server listens ([`paths`]). Clients import this and nothing below
//! the seam (no store, worker or channel).

pub mod client;
pub mod codec;
pub mod paths;
pub mod protocol;
pub mod report;

pub use client::{ApiError, Connection, Incoming};
pub use protocol::*;

/// Tasks: what `tasks`, `task_create` and `task_close` carry.
pub use crate::store::tasks::MAX_PAGE as MAX_TASK_PAGE;
pub use crate::store::{CampaignFailure, CampaignStatus, DryRun as CampaignDryRun, Exclusion};
/// The rows and cursors the protocol carries. They are defined beside the queries that make
/// them, and are part of the contract: clients name them through here, never through the store.
pub use crate::store::{
    ClaimRow, ContactProfile, ContactRow, Counts, EventRow, IdentityRow, MessageRow, QueueAnchor,
    QueueCursor, QueueFilter, QueueRow, SearchHit, SearchQuery, TimelineCursor,
};
pub use crate::store::{DuplicatePair, DuplicateReason, MergeKind, MergePlan, MergeRow, Unmerged};
pub use crate::store::{NewTask, TaskAt, TaskCursor, TaskEnd, TaskRow};
