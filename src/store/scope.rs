//! Who a store connection works for and what they may see: every read of conversation,
//! contact or message data and every write on a conversation honours the connection's
//! [`Scope`] (see [`Store::set_scope`]).
//!
//! A restricted scope is one SQL condition on the conversation `c`, the same text for every
//! scope, reading two connection-private (TEMP) tables that [`Store::set_scope`] fills with
//! bound parameters: no team name is ever part of a statement's text, the statement cache
//! keeps one plan per query whatever the teams, and a query's parameters keep their numbers.
//! [`Scope::all`] adds no condition at all: the single-user and admin paths run the very
//! statements they ran before scopes existed.

use super::{Result, Store, StoreError};
use crate::model::{ContactId, ConversationId};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// What one agent may see. `teams: None` sees everything (an admin; the single user).
/// `Some(list)` sees the conversations whose team is in the list, the conversations with no
/// team (a channel mapped to no team is shared), and the conversations assigned to `agent` or
/// mentioning them (`@agent` in a note: a `mention` notification), whatever their team. A
/// contact is visible when one of its conversations is; a message when its conversation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub agent: String,
    pub teams: Option<Vec<String>>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope::all("")
    }
}

impl Scope {
    /// Sees everything.
    pub fn all(agent: impl Into<String>) -> Scope {
        Scope {
            agent: agent.into(),
            teams: None,
        }
    }

    /// Sees its teams' conversations, the unteamed ones and those assigned to `agent`.
    pub fn teams<T: Into<String>>(
        agent: impl Into<String>,
        teams: impl IntoIterator<Item = T>,
    ) -> Scope {
        Scope {
            agent: agent.into(),
            teams: Some(teams.into_iter().map(Into::into).collect()),
        }
    }

    /// Whether a conversation of `team`, assigned to `assignee`, is in the scope (the SQL
    /// condition's rule, for a caller that holds the row already), mentions left out: a
    /// conversation this says no to may still be visible through a mention.
    pub fn allows(&self, team: Option<&str>, assignee: Option<&str>) -> bool {
        match (&self.teams, team) {
            (None, _) | (Some(_), None) => true,
            (Some(list), Some(t)) => {
                list.iter().any(|x| x == t) || assignee == Some(self.agent.as_str())
            }
        }
    }

    /// Sees everything.
    pub fn is_all(&self) -> bool {
        self.teams.is_none()
    }
}

/// The condition a restricted scope puts on a conversation aliased `c`. The unary `+` keeps
/// the planner from answering the OR with the team and assignee indexes (a "multi-index OR"
/// then sorts every matching row for the page's order): the queue keeps walking its own index
/// in display order and checks the scope on each row, so a page stops at its limit.
macro_rules! cond {
    () => {
        "(+c.team IS NULL OR +c.team IN (SELECT team FROM temp.braid_scope_teams) \
         OR +c.assignee = (SELECT agent FROM temp.braid_scope_agent) \
         OR EXISTS (SELECT 1 FROM notifications n \
                    WHERE n.agent = (SELECT agent FROM temp.braid_scope_agent) \
                      AND n.kind = 'mention' AND n.conversation_id = c.id))"
    };
}

/// [`cond!`] as four disjoint conditions on `c` (no team; one of the scope's teams; assigned
/// to the agent and of another team; mentioning the agent, of another team and not theirs),
/// for counts that add up one index walk each.
pub(crate) const COUNT_PARTS: [&str; 4] = [
    "c.team IS NULL",
    "c.team IN (SELECT team FROM temp.braid_scope_teams)",
    "c.assignee = (SELECT agent FROM temp.braid_scope_agent) AND c.team IS NOT NULL \
     AND c.team NOT IN (SELECT team FROM temp.braid_scope_teams)",
    "c.id IN (SELECT n.conversation_id FROM notifications n \
              WHERE n.agent = (SELECT agent FROM temp.braid_scope_agent) AND n.kind = 'mention') \
     AND c.team IS NOT NULL AND c.team NOT IN (SELECT team FROM temp.braid_scope_teams) \
     AND c.assignee IS NOT (SELECT agent FROM temp.braid_scope_agent)",
];

/// [`cond!`] as a conjunct: `" AND (...)"`.
pub(crate) const AND_COND: &str = concat!(" AND ", cond!());

/// The tables the condition reads: private to the connection, in memory (`temp_store`).
const CREATE_TABLES: &str = "
CREATE TEMP TABLE IF NOT EXISTS braid_scope_teams(team TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS braid_scope_agent(agent TEXT NOT NULL);
";

impl Store {
    /// Work for `scope` from now on: every read and write of this connection honours it.
    /// Setting the scope the connection already has costs nothing.
    pub fn set_scope(&mut self, scope: Scope) -> Result<()> {
        if scope == self.scope {
            return Ok(());
        }
        if let Some(teams) = &scope.teams {
            let conn = self.conn();
            conn.execute_batch(CREATE_TABLES)?;
            conn.execute_batch(
                "DELETE FROM temp.braid_scope_teams; DELETE FROM temp.braid_scope_agent;",
            )?;
            let mut insert = conn
                .prepare_cached("INSERT OR IGNORE INTO temp.braid_scope_teams(team) VALUES (?1)")?;
            for team in teams {
                insert.execute([team])?;
            }
            conn.prepare_cached("INSERT INTO temp.braid_scope_agent(agent) VALUES (?1)")?
                .execute([&scope.agent])?;
        }
        self.scope = scope;
        Ok(())
    }

    /// The scope this connection works for (default: [`Scope::all`]).
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// `" AND (condition on c)"` for a restricted scope, `""` for [`Scope::all`].
    pub(crate) fn scope_and(&self) -> &'static str {
        if self.scope.is_all() { "" } else { AND_COND }
    }

    /// Whether the connection's scope is restricted (a list of teams).
    pub(crate) fn scoped(&self) -> bool {
        !self.scope.is_all()
    }
}

/// The contact of a conversation the scope may see, else [`StoreError::NoConversation`] as for
/// a missing id (ids cannot be probed).
pub(crate) fn conversation_contact(
    conn: &Connection,
    id: ConversationId,
    scoped: bool,
) -> Result<ContactId> {
    if !scoped {
        return super::conversations::contact_of(conn, id);
    }
    conn.prepare_cached(concat!(
        "SELECT c.contact_id FROM conversations c WHERE c.id = ?1 AND ",
        cond!()
    ))?
    .query_row([id], |r| r.get(0))
    .optional()?
    .ok_or(StoreError::NoConversation(id.0))
}

/// Ok when the scope may see the contact (one of its conversations is in scope), else
/// [`StoreError::NoContact`] as for a missing id. An unrestricted scope is not checked here.
pub(crate) fn check_contact(conn: &Connection, contact: ContactId, scoped: bool) -> Result<()> {
    if !scoped {
        return Ok(());
    }
    let visible = conn
        .prepare_cached(concat!(
            "SELECT 1 FROM conversations c WHERE c.contact_id = ?1 AND ",
            cond!(),
            " LIMIT 1"
        ))?
        .exists([contact])?;
    if visible {
        Ok(())
    } else {
        Err(StoreError::NoContact(contact.0))
    }
}

/// Ok when the scope may see the message's conversation, else [`StoreError::NoMessage`].
pub(crate) fn check_message(
    conn: &Connection,
    message: crate::model::MessageId,
    scoped: bool,
) -> Result<()> {
    if !scoped {
        return Ok(());
    }
    let visible = conn
        .prepare_cached(concat!(
            "SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.id = ?1 AND ",
            cond!()
        ))?
        .exists([message])?;
    if visible {
        Ok(())
    } else {
        Err(StoreError::NoMessage(message.0))
    }
}
