//! The scriptable CLI beside the TUI: one file per subcommand. Each subcommand has an `Args`
//! (clap) and a `run`; `src/main.rs` only parses and dispatches.
//!
//! Every command that reads or changes conversations is a client of the workspace server
//! ([`client::Client`]): it connects to the running server (its socket, or `--remote`), or
//! starts one in its own process when none runs, and the server says who the caller is and
//! checks each request against the agent's role and teams. Only the server-side commands
//! (`server`, `attach`, `demo`, `import`, `sync`) open the store themselves. Text output is
//! aligned tables for people; `--json` is one JSON document on stdout for scripts (times are
//! RFC 3339 UTC strings, ids are numbers). Errors are one line on stderr and a non-zero exit;
//! with `--json`, that line is a JSON object, `{"error": "..."}`.

pub mod attach;
pub mod audit;
pub mod campaign;
pub mod client;
pub mod connect;
pub mod contact;
pub mod contacts;
pub mod demo;
pub mod fields;
pub mod fmt;
pub mod gdpr;
pub mod import;
pub mod list;
pub mod log;
pub mod note;
pub mod notifications;
pub mod reply;
pub mod report;
pub mod rules;
pub mod search;
pub mod server;
pub mod show;
pub mod status;
pub mod sync;
pub mod tasks;
pub mod verb;
pub mod webhooks;
pub mod who;

use crate::config::Config;
use crate::model::{Channel, ConversationId};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use fmt::init_local_offset;

/// The global flags, usable before or after the subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Globals {
    /// Config file (default: $BRAID_CONFIG, else $XDG_CONFIG_HOME/braid/config.toml)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding the store (default: $BRAID_DATA_DIR, else `data_dir` in the config,
    /// else $XDG_DATA_HOME/braid)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's socket (default: $BRAID_SOCKET, else `[server] socket` in the config, else
    /// a server already running for the data dir, else /run/braid/braid.sock if it exists,
    /// else a server in this process)
    #[arg(long, global = true, value_name = "PATH", env = "BRAID_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Work against the server on another machine: ssh://[user@]host[:port] (runs
    /// `braid attach --stdio` there; the server sees your Unix user on that machine)
    #[arg(long, global = true, value_name = "URL", env = "BRAID_REMOTE")]
    pub remote: Option<String>,
}

impl Globals {
    /// Load the config and start logging into its data dir.
    pub fn load(&self) -> anyhow::Result<Config> {
        self.load_in(self.data_dir.as_deref())
    }

    /// Load the config with this data dir (None: the usual precedence) and start logging.
    pub fn load_in(&self, data_dir: Option<&Path>) -> anyhow::Result<Config> {
        let config = Config::load(self.config.as_deref(), data_dir)?;
        log::init(&config.data_dir);
        tracing::debug!(
            data_dir = %config.data_dir.display(),
            config = ?config.source,
            "braid {}",
            env!("CARGO_PKG_VERSION")
        );
        Ok(config)
    }
}

/// A conversation id as typed: `12` or `#12`.
pub fn parse_conversation(s: &str) -> anyhow::Result<ConversationId> {
    let t = s.trim();
    let digits = t.strip_prefix('#').unwrap_or(t);
    match digits.parse::<i64>() {
        Ok(n) if n > 0 => Ok(ConversationId(n)),
        _ => anyhow::bail!("bad conversation '{s}' (a number like 12 or #12)"),
    }
}

/// A channel as typed after `--via`.
pub fn parse_channel(s: &str) -> anyhow::Result<Channel> {
    let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    s.parse::<Channel>()
        .map_err(|_| anyhow::anyhow!("unknown channel '{s}' (one of: {})", names.join(", ")))
}

/// The text of a reply or note: `--text -` reads it from stdin. Sanitized here, at the edge
/// where it enters (no escape sequences or bidi overrides reach anyone's terminal or inbox).
pub fn read_text(text: &str) -> anyhow::Result<String> {
    let raw = if text == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read the text from stdin")?;
        s
    } else {
        text.to_string()
    };
    Ok(crate::sanitize::text(&raw))
}

/// Write one JSON document and a newline.
pub fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Run a command that prints to stdout, buffered, and flush at the end.
pub fn to_stdout(f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    f(&mut out)?;
    out.flush()?;
    Ok(())
}

/// Run a future on a multi-threaded tokio runtime (the TUI, the demo, `serve`).
pub fn block_on<F: std::future::Future>(fut: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("braid")
        .build()
        .context("cannot start the async runtime")?;
    let out = rt.block_on(fut);
    // A blocking task still running (a store write behind a busy lock, a slow DNS lookup)
    // must not hold the user's shell: dropping the runtime would wait for it without limit.
    // Whatever it was doing is safe to cut: SQLite rolls an unfinished transaction back, and
    // an outbox item caught mid-send is checked against the server before it is sent again.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(out)
}

/// `braid` with no subcommand: the TUI, a client of the workspace's server (started in this
/// process when none runs).
pub fn run_tui(globals: &Globals) -> anyhow::Result<()> {
    let config = globals.load()?;
    block_on(tui_session(globals, config))?
}

/// Connect (or start the in-process server) and run the TUI until the user quits.
pub async fn tui_session(globals: &Globals, config: Config) -> anyhow::Result<()> {
    tui_session_as(globals, config, None, true).await
}

/// [`tui_session`], viewing as a workspace agent (in-process servers only: `braid demo --as`).
/// `name_unused_channels`: when a server already runs, say that the config's channels are not
/// this process's to run (the demo turns its web chat on itself: nothing to say).
pub async fn tui_session_as(
    globals: &Globals,
    config: Config,
    as_agent: Option<&str>,
    name_unused_channels: bool,
) -> anyhow::Result<()> {
    let session = connect::Session::open_as(globals, &config, "tui", true, as_agent).await?;
    let local = session.is_local();
    let (conn, incoming, connector, fin) = session.split();
    let notice = if local || !name_unused_channels {
        None
    } else {
        ignored_channels(&config)
    };
    let result = crate::tui::run(config, conn, incoming, connector, notice).await;
    fin.finish().await;
    result
}

/// Channels in a personal config are not run by a client of a server: say so once, naming them
/// (the server's own config decides which channels run).
pub fn ignored_channels(config: &Config) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    if !config.email.is_empty() {
        names.push("[[email]]");
    }
    if config.telegram.is_some() {
        names.push("[telegram]");
    }
    if config.webchat.enabled {
        names.push("[webchat]");
    }
    (!names.is_empty()).then(|| {
        format!(
            "{} in your config {} not used: channels run in the workspace server, from its config",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" }
        )
    })
}

/// Whether the command line asks for JSON (`--json` before any `--`): then an error is a
/// JSON object too.
pub fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// An error as scripts read it with `--json`: `{"error": "..."}`, one line on stderr (stdout
/// stays empty, so a script never mistakes it for an answer); the exit code is non-zero.
pub fn json_error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Turn a command's result into the exit code: 0, or 1 with one line on stderr (with
/// `--json`, a JSON object: [`json_error`]).
/// A closed stdout (`braid show 12 | head`) is not an error.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            tracing::error!("{}", crate::sanitize::for_terminal_line(&format!("{e:#}")));
            let line = one_line(&format!("{e:#}"));
            if json_requested() {
                eprintln!("{}", json_error(&line));
            } else {
                eprintln!("braid: {line}");
            }
            exit_code(&e)
        }
    }
}

/// Exit codes scripts can test: 3, a reply or note the stale-send guard stopped (the
/// conversation changed since the caller looked; nothing was sent); 4, the server refused (role,
/// teams, a workspace rule); 2, a usage error; 1, anything else.
pub const EXIT_STALE: u8 = 3;
pub const EXIT_REFUSED: u8 = 4;

fn exit_code(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if cause.downcast_ref::<client::StaleSend>().is_some() {
            return ExitCode::from(EXIT_STALE);
        }
        if cause.downcast_ref::<client::Refusal>().is_some() {
            return ExitCode::from(EXIT_REFUSED);
        }
    }
    ExitCode::FAILURE
}

/// A command-line usage error (clap) as one line, exit code 2. Help and version print as usual.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    // The first paragraph ("the following required arguments were not provided: --text <T>"),
    // plus the possible values or a tip when clap gives them.
    let mut parts: Vec<String> = Vec::new();
    let mut first_paragraph = true;
    for (i, line) in text.lines().map(str::trim).enumerate() {
        if line.is_empty() {
            first_paragraph = false;
        } else if i == 0 {
            parts.push(line.trim_start_matches("error:").trim().to_string());
        } else if first_paragraph
            || line.starts_with("[possible values")
            || line.starts_with("tip:")
        {
            parts.push(line.to_string());
        }
    }
    let line = format!(
        "{}; see 'braid --help'",
        crate::sanitize::for_terminal_line(&parts.join(" "))
    );
    if json_requested() {
        eprintln!("{}", json_error(&line));
    } else {
        eprintln!("braid: {line}");
    }
    ExitCode::from(2)
}

/// An error as one line for stderr; errors quote servers and files, so they are escaped.
fn one_line(s: &str) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    crate::sanitize::for_terminal_line(&joined).into_owned()
}

/// Fetch up to `limit` items with a keyset-paged query, `page` at a time.
pub(crate) fn paged<T, K>(
    limit: usize,
    page: usize,
    mut fetch: impl FnMut(Option<K>, usize) -> anyhow::Result<Vec<T>>,
    key: impl Fn(&T) -> K,
) -> anyhow::Result<Vec<T>> {
    let mut out: Vec<T> = Vec::new();
    let mut after: Option<K> = None;
    while out.len() < limit {
        let want = (limit - out.len()).min(page);
        let rows = fetch(after.take(), want)?;
        let n = rows.len();
        if let Some(last) = rows.last() {
            after = Some(key(last));
        }
        out.extend(rows);
        if n < want {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Bob's personal config asks for a web chat while Ann's server runs the workspace: his TUI
    /// says, once, that it is not his config that runs channels (the Ann/Bob case).
    #[test]
    fn channels_in_a_personal_config_are_named_as_unused() {
        let mut c = Config::with_data_dir("/tmp/x");
        assert_eq!(ignored_channels(&c), None);
        c.webchat.enabled = true;
        assert_eq!(
            ignored_channels(&c).unwrap(),
            "[webchat] in your config is not used: channels run in the workspace server, from its config"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[webchat]\nenabled = true\n[telegram]\ntoken_env = \"X\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), Some(dir.path())).unwrap();
        assert!(
            ignored_channels(&c)
                .unwrap()
                .starts_with("[telegram], [webchat] in your config are not used")
        );
    }

    #[test]
    fn conversation_ids() {
        assert_eq!(parse_conversation("12").unwrap(), ConversationId(12));
        assert_eq!(parse_conversation(" #7 ").unwrap(), ConversationId(7));
        assert!(parse_conversation("x").is_err());
        assert!(parse_conversation("0").is_err());
        assert!(parse_conversation("-3").is_err());
    }

    #[test]
    fn channels() {
        assert_eq!(parse_channel("Email").unwrap(), Channel::Email);
        let err = parse_channel("fax").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown channel 'fax' (one of: email, telegram, webchat, whatsapp, instagram, messenger, sms, phone, event)"
        );
    }

    #[test]
    fn paging_stops_at_limit_and_at_the_end() {
        let data: Vec<i64> = (1..=25).collect();
        let fetch = |after: Option<i64>, n: usize| -> anyhow::Result<Vec<i64>> {
            Ok(data
                .iter()
                .copied()
                .filter(|x| after.is_none_or(|a| *x > a))
                .take(n)
                .collect())
        };
        assert_eq!(
            paged(12, 5, fetch, |x| *x).unwrap(),
            (1..=12).collect::<Vec<_>>()
        );
        assert_eq!(paged(100, 10, fetch, |x| *x).unwrap().len(), 25);
    }
}
