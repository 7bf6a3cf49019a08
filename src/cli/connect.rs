//! Where a client's server is, and connecting to it: `--remote ssh://host` (the server runs
//! there; `braid attach --stdio` bridges), `--socket PATH` / `BRAID_SOCKET` / `[server] socket`,
//! a personal server already running for this data dir, the system service's socket, or, when
//! none answers, a server started in this process (single-user mode: same protocol, an
//! in-memory pipe instead of a socket).

use super::Globals;
use crate::api::paths::{self, SYSTEM_SOCKET};
use crate::api::{ApiError, Connection, Hello, Incoming};
use crate::config::Config;
use crate::tui::runtime::Connector;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long a client waits for another command's one-shot server to let go of the data dir.
const WAIT_FOR_DATA_DIR: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Over SSH: `ssh host braid attach --stdio`.
    Ssh(String),
    /// A server listening on this socket.
    Socket(PathBuf),
    /// No server answers: run one in this process (listening on this socket for the user's
    /// other commands, when given).
    Local(Option<PathBuf>),
}

/// Decide where the server is for this command line and config.
pub fn target(globals: &Globals, config: &Config) -> Target {
    if let Some(r) = &globals.remote {
        return Target::Ssh(r.clone());
    }
    if let Some(s) = &globals.socket {
        return Target::Socket(s.clone());
    }
    if let Some(s) = &config.workspace.socket {
        return Target::Socket(s.clone());
    }
    let personal = paths::personal_socket(&config.data_dir, paths::runtime_dir().as_deref());
    if std::os::unix::net::UnixStream::connect(&personal).is_ok() {
        return Target::Socket(personal);
    }
    // The shared service, when this user names no data dir of their own.
    let explicit_data_dir =
        globals.data_dir.is_some() || std::env::var_os("BRAID_DATA_DIR").is_some();
    let system = PathBuf::from(SYSTEM_SOCKET);
    // A socket we may not even look at (not in the group that may enter /run/braid) is still
    // the service: connecting says "permission denied" instead of quietly opening a workspace
    // of one's own.
    let present = match std::fs::symlink_metadata(&system) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    };
    if !explicit_data_dir && present {
        return Target::Socket(system);
    }
    Target::Local(Some(personal))
}

/// Connect once to a remote or socket target.
pub async fn connect_to(
    target: &Target,
    hello: Hello,
) -> Result<(Connection, UnboundedReceiver<Incoming>), ApiError> {
    match target {
        Target::Ssh(r) => paths::connect_ssh(r, hello).await,
        Target::Socket(p) => paths::connect_socket(p, hello).await.map_err(|e| match e {
            ApiError::Connect { path, error } => ApiError::Connect {
                error: std::io::Error::new(
                    error.kind(),
                    format!(
                        "{error}; is the server running? (`braid server`, or the braid service)"
                    ),
                ),
                path,
            },
            other => other,
        }),
        Target::Local(_) => Err(ApiError::Refused(
            "internal: a local target has no address".into(),
        )),
    }
}

/// A client session for a command: the connection, and the in-process server behind it (kept
/// alive for as long as the session is; `finish` stops it cleanly).
pub struct Session {
    pub conn: Connection,
    pub incoming: UnboundedReceiver<Incoming>,
    pub connector: Connector,
    server: Option<Arc<crate::server::ServerHandle>>,
    target: Target,
}

impl Session {
    /// Connect as `client` (for the server's log). `run_channels`: an in-process server runs the
    /// channels and the outbox (the TUI) or only answers (a one-shot CLI command).
    pub async fn open(
        globals: &Globals,
        config: &Config,
        client: &str,
        run_channels: bool,
    ) -> anyhow::Result<Session> {
        Session::open_as(globals, config, client, run_channels, None).await
    }

    /// [`open`](Self::open) viewing as a workspace agent: only when the server runs in this
    /// process (the user owns its files); against a shared server, the kernel decides.
    ///
    /// Another command's one-shot server may hold the data dir for a moment: then this waits
    /// (up to 10 s) until its socket answers or this process may start the server.
    pub async fn open_as(
        globals: &Globals,
        config: &Config,
        client: &str,
        run_channels: bool,
        as_agent: Option<&str>,
    ) -> anyhow::Result<Session> {
        let deadline = std::time::Instant::now() + WAIT_FOR_DATA_DIR;
        loop {
            let target = target(globals, config);
            match Session::open_once(globals, config, client, run_channels, as_agent).await {
                Ok(s) => return Ok(s),
                Err(e)
                    if matches!(target, Target::Local(_))
                        && e.chain().any(|c| c.is::<crate::server::DataDirBusy>()) =>
                {
                    if std::time::Instant::now() >= deadline {
                        // Not a moment's one-shot server: one that listens where this
                        // command does not look.
                        return Err(e.context(format!(
                            "a braid server holds {} but does not answer on {}; give its socket with --socket PATH (or BRAID_SOCKET)",
                            config.data_dir.display(),
                            paths::personal_socket(&config.data_dir, paths::runtime_dir().as_deref())
                                .display()
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open_once(
        globals: &Globals,
        config: &Config,
        client: &str,
        run_channels: bool,
        as_agent: Option<&str>,
    ) -> anyhow::Result<Session> {
        let target = target(globals, config);
        if as_agent.is_some() && !matches!(target, Target::Local(_)) {
            anyhow::bail!(
                "--as works only on a workspace this process serves; a braid server already runs for {} and decides who you are",
                config.data_dir.display()
            );
        }
        match target.clone() {
            Target::Local(socket) => {
                let mut opts = crate::server::ServerOptions::new(config.clone());
                opts.run_worker = run_channels;
                // A TUI's server also listens, so the user's CLI commands and other terminals
                // share it; a one-shot command's server does not.
                opts.socket = if run_channels { socket } else { None };
                let server = crate::server::start(opts).await?;
                let handle = Arc::new(server);
                let h = Arc::clone(&handle);
                let name = client.to_string();
                let agent = as_agent.map(String::from);
                let connector: Connector = Arc::new(move |after| {
                    let h = Arc::clone(&h);
                    let name = name.clone();
                    let agent = agent.clone();
                    Box::pin(async move {
                        h.connect_local_as(Hello::new(&name, after), agent.as_deref())
                            .await
                    })
                });
                let (conn, incoming) = connector(None).await?;
                Ok(Session {
                    conn,
                    incoming,
                    connector,
                    server: Some(handle),
                    target,
                })
            }
            remote => {
                let (conn, incoming) = connect_to(&remote, Hello::new(client, None)).await?;
                let t = remote.clone();
                let name = client.to_string();
                let connector: Connector = Arc::new(move |after| {
                    let t = t.clone();
                    let name = name.clone();
                    Box::pin(async move { connect_to(&t, Hello::new(&name, after)).await })
                });
                Ok(Session {
                    conn,
                    incoming,
                    connector,
                    server: None,
                    target,
                })
            }
        }
    }

    /// Where the server is (for `braid status`).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether the server runs in this process.
    pub fn is_local(&self) -> bool {
        self.server.is_some()
    }

    /// Hand the connection to the TUI (it reconnects through the connector) and keep what
    /// must outlive it.
    pub fn split(self) -> (Connection, UnboundedReceiver<Incoming>, Connector, Finisher) {
        (
            self.conn,
            self.incoming,
            self.connector,
            Finisher {
                server: self.server,
            },
        )
    }

    /// Stop the in-process server, if any (its worker finishes sends in flight).
    pub async fn finish(self) {
        let (conn, incoming, connector, fin) = self.split();
        drop((conn, incoming, connector));
        fin.finish().await;
    }
}

/// Stops an in-process server once every connection to it is dropped.
pub struct Finisher {
    server: Option<Arc<crate::server::ServerHandle>>,
}

impl Finisher {
    pub async fn finish(self) {
        let Some(s) = self.server else { return };
        // The connector's clones go with the TUI's link; wait briefly for them to drop.
        let mut s = s;
        for _ in 0..50 {
            match Arc::try_unwrap(s) {
                Ok(server) => {
                    server.shutdown().await;
                    return;
                }
                Err(back) => s = back,
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tracing::warn!("the in-process server is still referenced; stopping without waiting");
    }
}
