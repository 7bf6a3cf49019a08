//! Reporting facts (schema v12) and the reports read from them. See [`crate::reports`].

use super::{Result, Store};
use crate::api::report::{Report, ReportQuery};

/// Whose figures a report may show: the asking agent's role decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportScope {
    /// An admin: everyone's.
    All,
    /// A supervisor: their teams'.
    Teams(Vec<String>),
    /// An agent (or a viewer): their own.
    Agent(String),
}

impl Store {
    /// A report over `q`'s range, within `scope`.
    pub fn report(&self, q: &ReportQuery, scope: &ReportScope) -> Result<Report> {
        let _ = (q, scope);
        Err(super::StoreError::Invalid("reports are being built".into()))
    }
}
