//! The CLI's side of the api: one connection per command to the workspace server (its socket,
//! `--remote`, or a server started in this process when none runs), requests answered in
//! order. The server says who the caller is (the kernel vouches for the Unix user) and checks
//! every request against the agent's role and teams; nothing in the personal config decides
//! who the command acts as.
//!
//! A refusal or an error the server answers becomes the command's error: one line on stderr
//! and exit 1 (`{"error": ...}` with `--json`), through [`super::finish`].

use super::Globals;
use super::connect::{Session, Target};
use crate::api::{Request, Response, Welcome};
use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

/// Where the server a command talks to runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// No server ran for the data dir: this command started one in its own process (it runs
    /// no channels and stops when the command ends).
    InProcess,
    /// A server listening on this socket (`braid server`, the service, a TUI's server).
    Socket(PathBuf),
    /// Over SSH (`--remote`).
    Remote(String),
}

impl Server {
    /// "in-process", "socket /run/braid/braid.sock", "ssh://host".
    pub fn describe(&self) -> String {
        match self {
            Server::InProcess => "in-process".into(),
            Server::Socket(p) => format!("socket {}", p.display()),
            Server::Remote(r) => r.clone(),
        }
    }
}

/// A command's connection to the server.
pub struct Client {
    /// Some until dropped.
    rt: Option<tokio::runtime::Runtime>,
    session: Option<Session>,
    welcome: Welcome,
    server: Server,
}

impl Client {
    /// Load the config and connect as `command` (for the server's log).
    pub fn open(globals: &Globals, command: &str) -> anyhow::Result<(Client, Config)> {
        let config = globals.load()?;
        let client = Client::connect(globals, &config, command)?;
        Ok((client, config))
    }

    /// Connect to the server of `config` (see [`super::connect::target`]).
    pub fn connect(globals: &Globals, config: &Config, command: &str) -> anyhow::Result<Client> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("braid-cli")
            .build()
            .context("cannot start the async runtime")?;
        let name = format!("cli {command}");
        // Waits for another command's one-shot server to let go of the data dir.
        let session = rt.block_on(Session::open(globals, config, &name, false))?;
        let server = match session.target() {
            Target::Local(_) => Server::InProcess,
            Target::Socket(p) => Server::Socket(p.clone()),
            Target::Ssh(r) => Server::Remote(r.clone()),
        };
        let welcome = session.conn.welcome().clone();
        Ok(Client {
            rt: Some(rt),
            session: Some(session),
            welcome,
            server,
        })
    }

    /// Who the server says we are, and what it runs.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The agent name the server knows us by.
    pub fn agent(&self) -> &str {
        &self.welcome.agent
    }

    /// Where the server runs.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Send a request and wait for its answer. A refusal or an error answer is an `Err` with
    /// the server's line.
    pub fn call(&self, request: Request) -> anyhow::Result<Response> {
        let (Some(session), Some(rt)) = (&self.session, &self.rt) else {
            anyhow::bail!("the connection to the braid server is closed");
        };
        let name = request.name();
        let conn = session.conn.clone();
        let response = rt.block_on(async move { conn.call(request).await })?;
        tracing::debug!(request = name, "answered");
        match response {
            Response::Refused(line) => Err(Refusal(line).into()),
            Response::Error(line) => Err(anyhow::Error::msg(line)),
            Response::Stale(stale) => Err(StaleSend(*stale).into()),
            other => Ok(other),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        if let Some(s) = self.session.take() {
            // An in-process server stops here (nothing of it runs past the command).
            rt.block_on(s.finish());
        }
        // A blocking task still running (a store read behind a busy lock) must not hold the
        // user's shell; SQLite rolls back whatever it had not committed.
        rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// The server refused (the agent's role or teams, a workspace rule): exit code 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The stale-send guard stopped a reply or note: exit code 3. The message lists what changed
/// and how to send anyway.
#[derive(Debug, thiserror::Error)]
pub struct StaleSend(pub crate::api::Stale);

impl std::fmt::Display for StaleSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.0;
        write!(
            f,
            "not sent: #{} changed since you looked: ",
            s.conversation
        )?;
        for (i, c) in s.changes.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&crate::sanitize::for_terminal_line(&c.what))?;
        }
        write!(
            f,
            ". Read it (`braid show {}`), then send again, or add --seen {} (you saw these) or --force",
            s.conversation, s.latest
        )
    }
}

/// The server answered with a kind of response the request does not have.
pub fn unexpected(request: &str, got: &Response) -> anyhow::Error {
    anyhow::anyhow!(
        "the braid server answered '{request}' out of protocol ({}); is it another braid version?",
        response_name(got)
    )
}

fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Queue { .. } => "queue",
        Response::Timeline { .. } => "timeline",
        Response::Profile { .. } => "profile",
        Response::Counts { .. } => "counts",
        Response::Compose { .. } => "compose",
        Response::Done(_) => "done",
        Response::Pipeline { .. } => "pipeline",
        Response::Confirm { .. } => "confirm",
        Response::Error(_) => "error",
        Response::Refused(_) => "refused",
        Response::Superseded => "superseded",
        Response::Ack => "ack",
        Response::Stale(_) => "stale",
        Response::Online(_) => "online",
        Response::Conversation { .. } => "conversation",
        Response::List { .. } => "list",
        Response::Hits(_) => "hits",
        Response::Contacts(_) => "contacts",
        Response::Status(_) => "status",
        Response::Written(_) => "written",
        Response::ContactCards(_) => "contact_cards",
        Response::Files(_) => "files",
        Response::Audit { .. } => "audit",
        Response::Notifications { .. } => "notifications",
        Response::NotificationsRead { .. } => "notifications_read",
        Response::Rules(_) => "rules",
        Response::Campaign(_) => "campaign",
        Response::Report(_) => "report",
        Response::RulesTested(_) => "rules_tested",
        Response::Canned { .. } => "canned",
        Response::Suggestion { .. } => "suggestion",
        Response::Bulk(_) => "bulk",
        Response::Matching { .. } => "matching",
        Response::Undone(_) => "undone",
        Response::Tasks { .. } => "tasks",
        Response::Task(_) => "task",
        Response::Webhooks(_) => "webhooks",
        Response::WebhookTested(_) => "webhook_tested",
        Response::Contact(_) => "contact",
        Response::Duplicates(_) => "duplicates",
        Response::Consent(_) => "consent",
        Response::Export(_) => "export",
    }
}
