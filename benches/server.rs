//! The workspace server as a separate process (the release `braid server` binary) on a demo
//! workspace, measured from clients that speak the real protocol over its Unix socket. Prints
//! figures (medians and p99) and a markdown table; exits non-zero when anything failed (an error
//! answer, a lost connection, a missed push) or a figure is missing, never because one is slow.
//!
//!     cargo bench --bench server                      # 1,000,000 messages, a 60 s load run
//!     cargo bench --bench server -- --messages 10000 --seconds 10     # the small version
//!     scripts/bench-server.sh [--small]
//!
//! The workspace (`target/bench-data/demo-m{N}-s{SEED}/`, shared with benches/tui.rs and
//! scripts/bench-tui.sh) is built once and copied for each run into a scratch directory under
//! the system temp dir (removed at the end), so the load run's writes never reach it.
//! `BRAID_BENCH_WORKSPACE=DIR` uses another prepared workspace instead.
//!
//! 1. **start → first frame**: from the moment a client starts connecting to the socket until
//!    the real [`App`] has drawn (200x50 `TestBackend`) its first complete frame: queue page,
//!    counts, timeline and profile of the selected row, all answered through the socket.
//!    Beside it, the old shared-file model: the TUI opening the store file itself and answering
//!    the same requests inline ([`Harness`]).
//!    Then (1b) **the audit log**: `:audit`'s first page and a jump to the middle of the whole
//!    log (one client, round trip of the `audit` request, 100 rows a page).
//! 2. **key → frame**: a scripted session (j/k, G/gg, opening rows, `/` search) through the real
//!    keymap and App; each key's requests go over the socket, the answers are applied and the
//!    frame drawn. Per key: the frame right after the key (UI work only) and the settled frame
//!    (every answer the key caused drawn). Round trips per request kind and the JSON size and
//!    encode/decode cost of each answer kind say where the time goes. Beside it, the same
//!    script answered inline (the old model).
//! 3. **load**: `--agents` (50) agents, each its own socket connection, each doing an action every
//!    `--period` (2 s, uniform jitter ±50%) cycling move (a queue page), open (timeline +
//!    profile), reply, note, assign; plus `--visitors` (1,000) web chat visitors on the server's
//!    web chat, each sending a message every `--visitor-interval` (30 s, jittered) and waiting for
//!    its ack. For each write: the time from sending the request to each OTHER agent connection
//!    receiving the pushed event. Errors, the server's CPU (utime+stime) and RSS (VmHWM, VmRSS).
//! 4. **the old shared-file model**: `--followers` (3) `braid::feed::spawn_feed` followers at the
//!    interval the TUI used before the server (100 ms), on the same store file during the load
//!    run: change → seen beside the server's push.
//! 5. **working as a team** ([`team`]), after the load on the same server: presence change →
//!    every other agent connection's screen (50 connections, changes one at a time), and a
//!    customer's message in a conversation assigned to the agent → the notification on each of
//!    the agent's 50 sessions. (An assigning agent that meets a conversation someone else owns
//!    is asked first, and says yes.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::api::paths::connect_socket;
use braid::api::{
    Connection, Hello, Incoming, Placement, QueueView, Request, Response, ServerFrame, Write,
};
use braid::config::Config;
use braid::demo::{DemoOptions, generate};
use braid::harness::Harness;
use braid::model::{ConversationId, EventId, Millis, Status, now_millis};
use braid::store::{QueueAnchor, QueueFilter, QueueRow, Store};
use braid::tui::app::{App, Effect, Event};
use braid::tui::keymap::{Keymap, parse_key_script};
use crossterm::event::KeyEvent;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[path = "server/team.rs"]
mod team;

#[path = "server/hooks.rs"]
mod hooks;

const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
/// The agent every connection is (the server's own Unix user maps to it).
const AGENT: &str = "bench";
/// How long any one answer may take before the bench calls it lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The kinds of event the agents' writes make: reply, note, assign.
const WRITE_KINDS: [&str; 3] = ["message_out", "note", "assigned"];

// ------------------------------------------------------------------------------------ options

#[derive(Debug, Clone)]
struct Opts {
    messages: usize,
    seed: u64,
    seconds: u64,
    agents: usize,
    visitors: usize,
    visitor_interval: f64,
    period: f64,
    runs: usize,
    rounds: usize,
    followers: usize,
    follower_ms: u64,
    /// Signed webhook POSTs for the throughput figure, and how many in flight.
    hooks: usize,
    hook_concurrency: usize,
    bin: PathBuf,
}

const USAGE: &str =
    "usage: cargo bench --bench server -- [--small] [--messages N] [--seed N] [--seconds S]
  [--agents N] [--visitors N] [--visitor-interval S] [--period S] [--runs N] [--rounds N]
  [--followers N] [--follower-ms MS] [--bin PATH]
  [--hooks N] [--hook-concurrency N]
  --small is --messages 10000 --seconds 10 --runs 10 --rounds 2 --hooks 2000";

fn parse_args() -> anyhow::Result<Opts> {
    let mut o = Opts {
        messages: 1_000_000,
        seed: 42,
        seconds: 60,
        agents: 50,
        visitors: 1000,
        visitor_interval: 30.0,
        period: 2.0,
        runs: 20,
        rounds: 5,
        followers: 3,
        follower_ms: 100,
        hooks: 20_000,
        hook_concurrency: 32,
        bin: std::env::var_os("BRAID_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_braid"))),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let num = |s: &str| -> anyhow::Result<f64> {
        s.replace(['_', ','], "")
            .parse::<f64>()
            .map_err(|_| anyhow::anyhow!("'{s}' is not a number\n{USAGE}"))
    };
    while i < args.len() {
        let a = args[i].as_str();
        // cargo bench passes --bench; ignore it.
        if a == "--bench" {
            i += 1;
            continue;
        }
        if a == "--small" {
            o.messages = 10_000;
            o.seconds = 10;
            o.runs = 10;
            o.rounds = 2;
            o.hooks = 2_000;
            i += 1;
            continue;
        }
        if a == "--help" || a == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("{a} needs a value\n{USAGE}"))?;
        match a {
            "--messages" => o.messages = num(v)? as usize,
            "--seed" => o.seed = num(v)? as u64,
            "--seconds" => o.seconds = num(v)? as u64,
            "--agents" => o.agents = (num(v)? as usize).max(2),
            "--visitors" => o.visitors = num(v)? as usize,
            "--visitor-interval" => o.visitor_interval = num(v)?.max(0.1),
            "--period" => o.period = num(v)?.max(0.05),
            "--runs" => o.runs = (num(v)? as usize).max(1),
            "--rounds" => o.rounds = (num(v)? as usize).max(1),
            "--followers" => o.followers = num(v)? as usize,
            "--follower-ms" => o.follower_ms = (num(v)? as u64).max(1),
            "--hooks" => o.hooks = (num(v)? as usize).max(1),
            "--hook-concurrency" => o.hook_concurrency = (num(v)? as usize).max(1),
            "--bin" => o.bin = PathBuf::from(v),
            other => anyhow::bail!("unknown option {other}\n{USAGE}"),
        }
        i += 2;
    }
    o.messages = o.messages.max(100);
    Ok(o)
}

// -------------------------------------------------------------------------------------- stats

#[derive(Default, Clone, Debug)]
struct Samples(Vec<Duration>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn extend(&mut self, o: &Samples) {
        self.0.extend_from_slice(&o.0);
    }
    /// The q-quantile, nearest rank.
    fn q(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
    fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
    fn mean(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m >= 100.0 {
        format!("{m:.0}")
    } else if m >= 10.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.3}")
    }
}

fn header(title: &str) {
    println!();
    println!("{title}");
    println!(
        "  {:<52} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "(ms, wall time)", "n", "p50", "p99", "max", "mean"
    );
}

fn row(label: &str, s: &Samples) {
    println!(
        "  {label:<52} {:>7} {:>9} {:>9} {:>9} {:>9}",
        s.len(),
        ms(s.q(0.5)),
        ms(s.q(0.99)),
        ms(s.max()),
        ms(s.mean())
    );
}

/// A small deterministic PRNG (xorshift64*): jitter and choices, reproducible per seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [mean * 0.5, mean * 1.5].
    fn jitter(&mut self, mean: f64) -> Duration {
        Duration::from_secs_f64(mean * (0.5 + self.unit()))
    }
}

/// Every failure seen, counted; the first few kept to print.
#[derive(Default)]
struct Errors {
    count: AtomicUsize,
    first: Mutex<Vec<String>>,
}

impl Errors {
    fn add(&self, what: String) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if n < 10
            && let Ok(mut f) = self.first.lock()
        {
            f.push(what);
        }
    }
    fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------- workspace

fn env_dir(opts: &Opts) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(format!("demo-m{}-s{}", opts.messages, opts.seed))
}

/// The pristine workspace for this size and seed, built once (the same as benches/tui.rs).
fn workspace(opts: &Opts) -> anyhow::Result<PathBuf> {
    // Another prepared workspace (an experiment on the store file), used as it is.
    if let Some(dir) = std::env::var_os("BRAID_BENCH_WORKSPACE") {
        let dir = PathBuf::from(dir);
        println!("workspace: {} (BRAID_BENCH_WORKSPACE)", dir.display());
        return Ok(dir);
    }
    let dir = env_dir(opts);
    let db = dir.join(braid::store::DB_FILE);
    let marker = dir.join("complete");
    if marker.exists() {
        println!(
            "workspace: reusing {} ({})",
            dir.display(),
            std::fs::read_to_string(&marker)?.trim()
        );
        audit_history(&db, opts.messages)?;
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let demo = DemoOptions {
        seed: opts.seed,
        messages: opts.messages,
        contacts: (opts.messages / 10).max(1),
        ..DemoOptions::default()
    };
    println!(
        "workspace: building {} messages / {} contacts (seed {}) in {} ...",
        opts.messages,
        demo.contacts,
        opts.seed,
        dir.display()
    );
    let mut store = Store::open(&db)?;
    let started = Instant::now();
    let report = generate(&mut store, &demo, now_millis(), &mut |_, _| {})?;
    drop(store);
    let secs = started.elapsed().as_secs_f64();
    let line = format!(
        "built by benches/server.rs: {} contacts, {} conversations, {} messages in {:.1} s",
        report.contacts, report.conversations, report.messages, secs
    );
    println!("workspace: {line}");
    audit_history(&db, opts.messages)?;
    std::fs::write(&marker, line + "\n")?;
    Ok(dir)
}

/// The demo's history is messages, not a team's year of changes: its events table is nearly
/// empty. Give it `events` of them (as many as messages: a million at full size), spread over
/// the last year, 50 agents assigning, moving, tagging, prioritizing, with a refusal now and
/// then, so `:audit`'s pages and jumps are measured on a log of that size. Once per workspace.
fn audit_history(db: &Path, events: usize) -> anyhow::Result<()> {
    use braid::store::{EventKind, EventRefs};
    let mut store = Store::open(db)?;
    let have = store.last_event_id()?.0 as usize;
    if have >= events {
        return Ok(());
    }
    let conversations = store.queue_count(&QueueFilter::All)?.max(1);
    let t = Instant::now();
    let n = events - have;
    let now = now_millis();
    let year: Millis = 365 * 86_400_000;
    let mut rng = Rng::new(7);
    let tx = store.write()?;
    for i in 0..n {
        let at = now - year + (year as f64 * i as f64 / n as f64) as Millis;
        let actor = format!("agent{}", rng.below(50));
        let conversation = ConversationId(1 + rng.below(conversations as usize) as i64);
        let (kind, data) = match i % 7 {
            0 | 1 => (
                EventKind::Assigned,
                serde_json::json!({ "assignee": format!("agent{}", rng.below(50)), "from": null }),
            ),
            2 => (
                EventKind::StatusChanged,
                serde_json::json!({ "status": "resolved", "snoozed_until": null }),
            ),
            3 => (EventKind::TagAdded, serde_json::json!({ "tag": "refund" })),
            4 => (
                EventKind::PriorityChanged,
                serde_json::json!({ "priority": "high" }),
            ),
            5 => (
                EventKind::StatusChanged,
                serde_json::json!({ "status": "open", "snoozed_until": null }),
            ),
            _ => (
                EventKind::Refused,
                serde_json::json!({ "action": "vip", "reason": "needs the supervisor role" }),
            ),
        };
        tx.append_event(
            at,
            &actor,
            kind,
            EventRefs {
                conversation: Some(conversation),
                contact: None,
                message: None,
            },
            Some(&data),
        )?;
    }
    tx.commit()?;
    // As a bulk load leaves them: taken before the events were added (the server refreshes
    // them when it starts: that is part of what is measured).
    println!(
        "workspace: added {n} audit events (a year of 50 agents' changes) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A scratch copy of the workspace with a config that turns the web chat on.
struct Scratch {
    dir: tempfile::TempDir,
    webchat: std::net::SocketAddr,
}

impl Scratch {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn db(&self) -> PathBuf {
        self.data().join(braid::store::DB_FILE)
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("braid.sock")
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("braid.toml")
    }
}

fn scratch(pristine: &Path, opts: &Opts) -> anyhow::Result<Scratch> {
    let dir = tempfile::Builder::new()
        .prefix("braid-bench-server-")
        .tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let t = Instant::now();
    let mut bytes = 0;
    for e in std::fs::read_dir(pristine)? {
        let e = e?;
        if e.file_name()
            .to_string_lossy()
            .starts_with(braid::store::DB_FILE)
        {
            let to = data.join(e.file_name());
            bytes += std::fs::copy(e.path(), &to)?;
            // On disk before the server starts: else the first checkpoint's fsync writes the
            // whole fresh copy back, and every write waits seconds behind it (seen at 1M).
            std::fs::File::open(&to)?.sync_all()?;
        }
    }
    println!(
        "scratch: copied the store ({:.0} MB) to {} and synced it in {:.1} s",
        bytes as f64 / 1e6,
        data.display(),
        t.elapsed().as_secs_f64()
    );
    // A free port for the web chat (released just before the server binds it).
    let webchat = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let limit = opts.visitors * 2 + 100;
    let config = format!(
        "agent = \"{AGENT}\"\n\n[webchat]\nenabled = true\nlisten = \"{webchat}\"\n\
         # one loopback address plays every visitor: lift the per-address limits\n\
         ip_messages_per_minute = 1000000\nip_connections_per_minute = 1000000\n\
         max_connections = {limit}\nmax_connections_per_ip = {limit}\n{}",
        hooks::CONFIG
    );
    let s = Scratch { dir, webchat };
    std::fs::write(s.config(), config)?;
    Ok(s)
}

// ------------------------------------------------------------------------------------- server

/// The server process; killed when dropped.
struct ServerProc {
    child: std::process::Child,
    log: PathBuf,
}

impl ServerProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start(opts: &Opts, s: &Scratch) -> anyhow::Result<ServerProc> {
        let log = s.dir.path().join("server.stderr");
        let out = std::fs::File::create(&log)?;
        let child = std::process::Command::new(&opts.bin)
            .arg("server")
            .arg("--config")
            .arg(s.config())
            .arg("--data-dir")
            .arg(s.data())
            .arg("--socket")
            .arg(s.socket())
            .env(hooks::SECRET_ENV, hooks::SECRET)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", opts.bin.display()))?;
        let mut p = ServerProc { child, log };
        let t = Instant::now();
        // Ready: the socket answers, and the web chat listens (the worker took the lead).
        loop {
            if let Some(st) = p.child.try_wait()? {
                anyhow::bail!(
                    "the server exited ({st}) before it listened:\n{}",
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                );
            }
            let sock = std::os::unix::net::UnixStream::connect(s.socket()).is_ok();
            let web = std::net::TcpStream::connect(s.webchat).is_ok();
            if sock && web {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                let _ = p.child.kill();
                anyhow::bail!(
                    "the server did not listen within 120 s (socket {sock}, web chat {web}):\n{}",
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        println!(
            "server: pid {} ({}) listening on {} and web chat {} after {} ms",
            p.pid(),
            opts.bin.display(),
            s.socket().display(),
            s.webchat,
            t.elapsed().as_millis()
        );
        Ok(p)
    }

    /// SIGTERM, then SIGKILL after 10 s.
    fn stop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// utime + stime of a process.
fn proc_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_secs_f64((utime + stime) as f64 / tck as f64))
}

/// VmHWM and VmRSS of a process, in kB.
fn proc_mem(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |key: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((get("VmHWM:")?, get("VmRSS:")?))
}

fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct. The server (our child) inherits the limit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

// ---------------------------------------------------------------------------------- TUI client

fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Queue { anchor, .. } => match anchor {
            QueueAnchor::Top => "queue page (top)",
            QueueAnchor::Bottom => "queue page (bottom)",
            QueueAnchor::After(_) => "queue page (after)",
            QueueAnchor::Before(_) => "queue page (before)",
            QueueAnchor::AtOrAfter(_) => "queue page (reload)",
            QueueAnchor::Offset(_) => "queue page (offset)",
        },
        Request::Timeline { before: None, .. } => "timeline",
        Request::Timeline { .. } => "timeline (older)",
        Request::Profile { .. } => "profile + tags",
        other => other.name(),
    }
}

fn response_kind(r: &Response) -> &'static str {
    match r {
        Response::Queue {
            search: Some(_), ..
        } => "queue page (search)",
        Response::Queue { .. } => "queue page",
        Response::Timeline { .. } => "timeline",
        Response::Profile { .. } => "profile",
        Response::Counts { .. } => "counts",
        Response::Done(_) => "done",
        Response::Superseded => "superseded",
        Response::Error(_) | Response::Refused(_) => "error",
        _ => "other",
    }
}

/// The JSON cost of one answer kind: bytes on the wire, encode and decode time.
#[derive(Default)]
struct JsonCost {
    bytes: Vec<usize>,
    encode: Samples,
    decode: Samples,
}

/// The real App over a real connection, drawn on a TestBackend.
struct TuiClient {
    app: App,
    term: Terminal<TestBackend>,
    conn: Connection,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    /// Requests sent and not yet answered: id -> (kind, sent at).
    outstanding: HashMap<u64, (&'static str, Instant)>,
    rtt: BTreeMap<&'static str, Samples>,
    /// Client-side handling of answers: App::handle(Data) + the draw after them.
    apply: Samples,
    json: Option<BTreeMap<&'static str, JsonCost>>,
    errors: Arc<Errors>,
}

impl TuiClient {
    fn new(
        conn: Connection,
        incoming: mpsc::UnboundedReceiver<Incoming>,
        errors: Arc<Errors>,
    ) -> anyhow::Result<TuiClient> {
        braid::tui::time::set_fixed_offset(0);
        let welcome = conn.welcome().clone();
        let mut config = Config::with_data_dir(std::env::temp_dir());
        config.agent = welcome.agent.clone();
        config.pending_after_reply = welcome.pending_after_reply;
        let keymap = Keymap::default_shipped()?;
        let mut app = App::new(&config, keymap, (WIDTH, HEIGHT), now_millis());
        app.worker = welcome.status.clone();
        app.known_agents = welcome.agents.clone();
        Ok(TuiClient {
            app,
            term: Terminal::new(TestBackend::new(WIDTH, HEIGHT))?,
            conn,
            incoming,
            outstanding: HashMap::new(),
            rtt: BTreeMap::new(),
            apply: Samples::default(),
            json: None,
            errors,
        })
    }

    fn draw(&mut self) -> anyhow::Result<()> {
        let app = &self.app;
        self.term.draw(|f| braid::tui::ui::draw(f, app))?;
        Ok(())
    }

    /// Carry out effects: requests go over the socket (the rest cannot happen in the script).
    fn effects(&mut self, fx: Vec<Effect>) -> anyhow::Result<()> {
        for e in fx {
            if let Effect::Request(r) = e {
                let kind = request_kind(&r);
                let id = self.conn.send(r)?;
                self.outstanding.insert(id, (kind, Instant::now()));
            }
        }
        Ok(())
    }

    fn on_incoming(&mut self, msg: Incoming) -> anyhow::Result<Vec<Effect>> {
        Ok(match msg {
            Incoming::Response { id, response } => {
                if let Some((kind, t)) = self.outstanding.remove(&id) {
                    self.rtt.entry(kind).or_default().push(t.elapsed());
                }
                if let Some(e) = response.error_text() {
                    self.errors
                        .add(format!("TUI client: error answer: {}", e.trim()));
                }
                if let Some(json) = self.json.as_mut() {
                    let frame = ServerFrame::Response { id, response };
                    let t = Instant::now();
                    let bytes = serde_json::to_vec(&frame)?;
                    let enc = t.elapsed();
                    let t = Instant::now();
                    let back: ServerFrame = serde_json::from_slice(&bytes)?;
                    let dec = t.elapsed();
                    let ServerFrame::Response { response, .. } = back else {
                        anyhow::bail!("a response did not round-trip through JSON");
                    };
                    let c = json.entry(response_kind(&response)).or_default();
                    c.bytes.push(bytes.len());
                    c.encode.push(enc);
                    c.decode.push(dec);
                    self.app.handle(Event::Data(response))
                } else {
                    self.app.handle(Event::Data(response))
                }
            }
            Incoming::Events { events, .. } => self.app.handle(Event::Feed(events)),
            Incoming::Resync { .. } => self.app.handle(Event::Connection {
                up: true,
                line: "server: resynced".into(),
            }),
            Incoming::Status { line, .. } => self.app.handle(Event::Worker(line)),
            Incoming::Notification { rows, unread } => {
                self.app.handle(Event::Notification { rows, unread })
            }
            Incoming::Presence(online) => self.app.handle(Event::Presence(online)),
            Incoming::Closed(why) => {
                self.errors
                    .add(format!("TUI client: connection lost: {why}"));
                anyhow::bail!("the TUI client's connection closed: {why}");
            }
        })
    }

    /// Wait for every outstanding answer, applying them as the real loop does (drain what is
    /// ready, apply, draw once). `on_frame` runs after each draw.
    async fn settle(&mut self, mut on_frame: impl FnMut(&App)) -> anyhow::Result<()> {
        while !self.outstanding.is_empty() {
            let first = tokio::time::timeout(ANSWER_TIMEOUT, self.incoming.recv())
                .await
                .map_err(|_| {
                    self.errors.add("TUI client: no answer within 30 s".into());
                    anyhow::anyhow!("no answer within {ANSWER_TIMEOUT:?}")
                })?
                .ok_or_else(|| anyhow::anyhow!("the connection's reader ended"))?;
            let t = Instant::now();
            let mut pending = vec![first];
            while let Ok(m) = self.incoming.try_recv() {
                pending.push(m);
            }
            for m in pending {
                let fx = self.on_incoming(m)?;
                self.effects(fx)?;
            }
            self.draw()?;
            self.apply.push(t.elapsed());
            on_frame(&self.app);
        }
        Ok(())
    }

    /// Apply whatever arrived meanwhile (pushes) without waiting.
    fn drain(&mut self) -> anyhow::Result<()> {
        let mut any = false;
        while let Ok(m) = self.incoming.try_recv() {
            let fx = self.on_incoming(m)?;
            self.effects(fx)?;
            any = true;
        }
        if any {
            self.draw()?;
        }
        Ok(())
    }
}

fn screen_text(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The screen is complete: queue rows with the first on screen, the status line, and the
/// selected row's timeline and profile loaded.
fn check_complete(app: &App, term: &Terminal<TestBackend>) -> anyhow::Result<()> {
    let sel = app
        .queue
        .current()
        .ok_or_else(|| anyhow::anyhow!("no queue rows after start"))?;
    let name: String = sel.contact_name.chars().take(8).collect();
    let screen = screen_text(term);
    anyhow::ensure!(
        screen.contains("NORMAL") && screen.contains(&name),
        "the first frame does not show the queue:\n{screen}"
    );
    anyhow::ensure!(
        app.timeline.contact == Some(sel.contact_id) && !app.timeline.loading,
        "the first frame has no timeline for the selected row"
    );
    anyhow::ensure!(
        app.profile
            .profile
            .as_ref()
            .is_some_and(|p| p.contact.id == sel.contact_id),
        "the first frame has no profile for the selected row"
    );
    Ok(())
}

struct FirstFrame {
    connect: Duration,
    rows: Duration,
    complete: Duration,
}

/// 1. One start over the socket: connect .. the first complete frame.
async fn first_frame_socket(sock: &Path, errors: &Arc<Errors>) -> anyhow::Result<FirstFrame> {
    let t0 = Instant::now();
    let (conn, incoming) = connect_socket(sock, Hello::new("bench tui", None)).await?;
    let connect = t0.elapsed();
    let mut c = TuiClient::new(conn, incoming, Arc::clone(errors))?;
    let fx = c.app.start();
    c.effects(fx)?;
    // The real loop draws once before any answer (an empty, loading queue).
    c.draw()?;
    let mut rows = None;
    c.settle(|app| {
        if rows.is_none() && !app.queue.rows.is_empty() {
            rows = Some(t0.elapsed());
        }
    })
    .await?;
    let complete = t0.elapsed();
    check_complete(&c.app, &c.term)?;
    Ok(FirstFrame {
        connect,
        rows: rows.unwrap_or(complete),
        complete,
    })
}

/// The old model's start: the TUI opens the store file and answers its requests inline.
/// `runs` round trips each of the audit log's first page and of a jump to its middle.
async fn audit_pages(
    sock: &Path,
    runs: usize,
    errors: &Arc<Errors>,
) -> anyhow::Result<(Samples, Samples)> {
    use braid::api::{AuditFilter, AuditPosition};
    let (conn, _rx) = connect_socket(sock, Hello::new("bench audit", None)).await?;
    let (mut top, mut middle) = (Samples::default(), Samples::default());
    for i in 0..=runs {
        for (at, samples) in [
            (AuditPosition::Newest, &mut top),
            (AuditPosition::Fraction(0.5), &mut middle),
        ] {
            let t = Instant::now();
            match conn
                .call(Request::Audit {
                    seq: 0,
                    filter: AuditFilter::default(),
                    at,
                    limit: 100,
                })
                .await
            {
                Ok(Response::Audit { page, .. }) if !page.rows.is_empty() => {
                    // The first round warms the page cache.
                    if i > 0 {
                        samples.push(t.elapsed());
                    }
                }
                other => errors.add(format!("audit page {at:?}: {other:?}")),
            }
        }
    }
    Ok((top, middle))
}

fn first_frame_inline(db: &Path) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let store = Store::open(db)?;
    let mut h = Harness::new(store, AGENT, WIDTH, HEIGHT, now_millis())?;
    h.draw()?;
    let took = t0.elapsed();
    check_complete(&h.app, &h.term)?;
    Ok(took)
}

/// The scripted session: (label, key). j/k moves, opening rows, G/gg, `/` search, back to the
/// open view; `rounds` times.
fn key_script(rounds: usize) -> anyhow::Result<Vec<(String, KeyEvent)>> {
    let parts: &[(&str, &str, usize)] = &[
        ("j", "j", 40),
        ("<CR> (open)", "<CR>", 1),
        ("k (timeline)", "k", 3),
        ("h (back to the queue)", "h", 1),
        ("k", "k", 10),
        ("G", "G", 1),
        ("k (after G)", "k", 20),
        ("gg", "gg", 1),
        ("j (after gg)", "j", 20),
        ("/refund<CR> (search)", "/refund<CR>", 1),
        ("j (search view)", "j", 10),
        ("<CR> (open a hit)", "<CR>", 1),
        ("h (back to the queue)", "h", 1),
        ("g o (open view)", "go", 1),
    ];
    let mut out = Vec::new();
    for _ in 0..rounds {
        for (label, script, times) in parts {
            for _ in 0..*times {
                for k in parse_key_script(script).map_err(|e| anyhow::anyhow!("{e}"))? {
                    out.push((label.to_string(), k));
                }
            }
        }
    }
    Ok(out)
}

#[derive(Default)]
struct KeyStats {
    /// App::handle(key) + draw: the frame right after the key.
    frame: Samples,
    /// Until every answer the key caused is applied and drawn.
    settled: Samples,
    per_label: BTreeMap<String, Samples>,
    requests: usize,
}

/// 2. The scripted session over the socket, one key at a time.
async fn keys_socket(
    sock: &Path,
    rounds: usize,
    errors: &Arc<Errors>,
    json: bool,
    stop: Option<&AtomicBool>,
) -> anyhow::Result<(KeyStats, TuiClient)> {
    let (conn, incoming) = connect_socket(sock, Hello::new("bench tui keys", None)).await?;
    let mut c = TuiClient::new(conn, incoming, Arc::clone(errors))?;
    let fx = c.app.start();
    c.effects(fx)?;
    c.settle(|_| {}).await?;
    c.rtt.clear();
    c.apply = Samples::default();
    if json {
        c.json = Some(BTreeMap::new());
    }
    let script = key_script(rounds)?;
    let mut st = KeyStats::default();
    'outer: loop {
        for (label, key) in &script {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                break 'outer;
            }
            c.drain()?;
            let t = Instant::now();
            let fx = c.app.handle(Event::Key(*key));
            st.requests += fx
                .iter()
                .filter(|e| matches!(e, Effect::Request(_)))
                .count();
            c.effects(fx)?;
            c.draw()?;
            st.frame.push(t.elapsed());
            c.settle(|_| {}).await?;
            let d = t.elapsed();
            st.settled.push(d);
            st.per_label.entry(label.clone()).or_default().push(d);
        }
        if stop.is_none() {
            break;
        }
    }
    Ok((st, c))
}

/// The old model's key -> frame: the same script, requests answered inline on the TUI's own
/// store connection.
fn keys_inline(db: &Path, rounds: usize) -> anyhow::Result<KeyStats> {
    let store = Store::open(db)?;
    let mut h = Harness::new(store, AGENT, WIDTH, HEIGHT, now_millis())?;
    h.draw()?;
    let script = key_script(rounds)?;
    let mut st = KeyStats::default();
    for (label, key) in &script {
        let t = Instant::now();
        let fx = h.app.handle(Event::Key(*key));
        h.draw()?;
        st.frame.push(t.elapsed());
        h.run(fx);
        h.draw()?;
        let d = t.elapsed();
        st.settled.push(d);
        st.per_label.entry(label.clone()).or_default().push(d);
    }
    Ok(st)
}

// ----------------------------------------------------------------------------------- the load

/// One write an agent made.
struct WriteRec {
    agent: usize,
    conversation: ConversationId,
    kind: &'static str,
    sent: Instant,
    sent_ms: Millis,
    answered: Instant,
}

#[derive(Default)]
struct AgentOut {
    writes: Vec<WriteRec>,
    rtt: BTreeMap<&'static str, Samples>,
    actions: usize,
}

/// What identifies a write's event: conversation, kind, time.
type EventMeta = (Option<ConversationId>, String, Millis);

/// What every agent shares.
struct LoadShared {
    /// Conversations an agent is working on: no other agent writes to them meanwhile, so each
    /// pushed event belongs to exactly one write.
    claimed: Mutex<HashSet<ConversationId>>,
    /// Every write-kind event seen: id -> (conversation, kind, at).
    meta: Mutex<HashMap<EventId, EventMeta>>,
    errors: Arc<Errors>,
    stop: AtomicBool,
}

/// Follow one connection's pushes: (event id, received at) for write-kind events.
async fn watch_pushes(
    who: String,
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    shared: Arc<LoadShared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(EventId, Instant)> {
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            msg = incoming.recv() => match msg {
                Some(Incoming::Events { events, .. }) => {
                    let now = Instant::now();
                    for e in events {
                        if WRITE_KINDS.contains(&e.kind.as_str()) {
                            seen.push((e.id, now));
                            if let Ok(mut m) = shared.meta.lock() {
                                m.entry(e.id).or_insert((e.conversation_id, e.kind, e.at));
                            }
                        }
                    }
                }
                Some(Incoming::Resync { .. }) => {
                    shared.errors.add(format!("{who}: the server sent a resync (it fell behind)"));
                }
                Some(Incoming::Closed(why)) => {
                    if !shared.stop.load(Ordering::Relaxed) {
                        shared.errors.add(format!("{who}: connection lost: {why}"));
                    }
                    break;
                }
                Some(_) => {}
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
    seen
}

async fn call(
    conn: &Connection,
    req: Request,
    out: &mut AgentOut,
    shared: &LoadShared,
    who: &str,
) -> Option<Response> {
    let kind = match &req {
        Request::Write { write, .. } => match write {
            Write::Reply { .. } => "write: reply",
            Write::Note { .. } => "write: note",
            _ => "write: assign",
        },
        other => request_kind(other),
    };
    let t = Instant::now();
    match tokio::time::timeout(ANSWER_TIMEOUT, conn.call(req)).await {
        Ok(Ok(resp)) => {
            out.rtt.entry(kind).or_default().push(t.elapsed());
            if let Some(e) = resp.error_text() {
                shared
                    .errors
                    .add(format!("{who}: {kind}: error answer: {}", e.trim()));
                return None;
            }
            Some(resp)
        }
        Ok(Err(e)) => {
            if !shared.stop.load(Ordering::Relaxed) {
                shared.errors.add(format!("{who}: {kind}: {e}"));
            }
            None
        }
        Err(_) => {
            shared
                .errors
                .add(format!("{who}: {kind}: no answer within 30 s"));
            None
        }
    }
}

/// One simulated agent: an action every `period` (±50%), cycling move, open, reply, note, assign.
async fn agent(
    i: usize,
    conn: Connection,
    shared: Arc<LoadShared>,
    until: Instant,
    period: f64,
    seed: u64,
) -> AgentOut {
    let who = format!("agent {i}");
    let mut rng = Rng::new(seed ^ ((i as u64 + 1) * 7919));
    let mut out = AgentOut::default();
    let mut rows: Vec<QueueRow> = Vec::new();
    let mut total: usize = 0;
    let mut working: Option<QueueRow> = None;
    let mut step = 0usize;
    tokio::time::sleep(Duration::from_secs_f64(period * rng.unit())).await;
    while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
        match step % 5 {
            0 => {
                // Move: a page somewhere in the first 2,000 rows of the open view.
                let offset = rng.below(total.clamp(1, 2000));
                let req = Request::Queue {
                    seq: step as u64,
                    view: QueueView::Filter(QueueFilter::Status(Status::Open)),
                    anchor: QueueAnchor::Offset(offset),
                    limit: 50,
                    placement: Placement::Replace { offset },
                    keep: None,
                    order: Default::default(),
                };
                if let Some(Response::Queue {
                    rows: r, total: t, ..
                }) = call(&conn, req, &mut out, &shared, &who).await
                {
                    rows = r;
                    if let Some(t) = t {
                        total = t.max(0) as usize;
                    }
                }
            }
            1 => {
                // Open: a row nobody else works on; its timeline and profile at once.
                if let Some(w) = working.take()
                    && let Ok(mut c) = shared.claimed.lock()
                {
                    c.remove(&w.id);
                }
                let start = rng.below(rows.len());
                let pick = (0..rows.len())
                    .map(|k| &rows[(start + k) % rows.len()])
                    .find(|r| {
                        shared
                            .claimed
                            .lock()
                            .map(|mut c| c.insert(r.id))
                            .unwrap_or(false)
                    })
                    .cloned();
                if let Some(row) = pick {
                    let tl = Request::Timeline {
                        seq: step as u64,
                        contact: row.contact_id,
                        before: None,
                        limit: 50,
                    };
                    let pr = Request::Profile {
                        seq: step as u64,
                        contact: row.contact_id,
                        conversation: row.id,
                    };
                    let (c1, c2) = (conn.clone(), conn.clone());
                    let t = Instant::now();
                    let (a, b) = tokio::join!(
                        tokio::time::timeout(ANSWER_TIMEOUT, c1.call(tl)),
                        tokio::time::timeout(ANSWER_TIMEOUT, c2.call(pr))
                    );
                    for r in [a, b] {
                        match r {
                            Ok(Ok(resp)) => {
                                if let Some(e) = resp.error_text() {
                                    shared
                                        .errors
                                        .add(format!("{who}: open: error answer: {}", e.trim()));
                                }
                            }
                            Ok(Err(e)) => {
                                if !shared.stop.load(Ordering::Relaxed) {
                                    shared.errors.add(format!("{who}: open: {e}"));
                                }
                            }
                            Err(_) => shared.errors.add(format!("{who}: open: no answer")),
                        }
                    }
                    out.rtt
                        .entry("open (timeline + profile)")
                        .or_default()
                        .push(t.elapsed());
                    working = Some(row);
                }
            }
            k => {
                if let Some(row) = &working {
                    // A reply on a channel without a customer-service window; a note on one
                    // with (the triage order puts the longest-waiting first, often a WhatsApp
                    // or Instagram conversation whose 24-hour window has closed, where the
                    // server rightly refuses a free-form reply).
                    let k = if k == 2 && row.last_channel.reply_window_ms().is_some() {
                        3
                    } else {
                        k
                    };
                    let (write, kind) = match k {
                        2 => (
                            Write::Reply {
                                channel: row.last_channel,
                                body: format!("Reply {step} from the load run (agent {i})."),
                                then_pending: false,
                                seen: Default::default(),
                            },
                            "message_out",
                        ),
                        3 => (
                            Write::Note {
                                body: format!("Note {step} from the load run (agent {i})."),
                                seen: Default::default(),
                            },
                            "note",
                        ),
                        _ => (
                            Write::Verb(braid::actions::Verb::Assign(Some(AGENT.to_string()))),
                            "assigned",
                        ),
                    };
                    let req = Request::Write {
                        conversation: row.id,
                        contact: row.contact_id,
                        write,
                    };
                    let mut sent_ms = now_millis();
                    let mut sent = Instant::now();
                    let mut answer = call(&conn, req, &mut out, &shared, &who).await;
                    // Taking a conversation another agent owns asks first (the demo's
                    // history assigned many): say yes, as an agent at the keyboard would.
                    if let Some(Response::Confirm { request, .. }) = answer {
                        sent_ms = now_millis();
                        sent = Instant::now();
                        answer = call(&conn, *request, &mut out, &shared, &who).await;
                    }
                    if answer.is_some() {
                        out.writes.push(WriteRec {
                            agent: i,
                            conversation: row.id,
                            kind,
                            sent,
                            sent_ms,
                            answered: Instant::now(),
                        });
                    }
                }
            }
        }
        out.actions += 1;
        step += 1;
        let wait = rng.jitter(period);
        let left = until.saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(left)).await;
    }
    if let Some(w) = working
        && let Ok(mut c) = shared.claimed.lock()
    {
        c.remove(&w.id);
    }
    out
}

#[derive(Default)]
struct VisitorOut {
    connected: AtomicUsize,
    acked: AtomicUsize,
    pushed: AtomicUsize,
    ack: Mutex<Samples>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_next(ws: &mut Ws) -> Result<braid::channels::webchat::protocol::ServerFrame, String> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(ANSWER_TIMEOUT, ws.next()).await {
            Err(_) => return Err("no frame within 30 s".into()),
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(t.as_str()).map_err(|e| e.to_string());
            }
            Ok(Some(Ok(Message::Close(c)))) => return Err(format!("closed: {c:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("closed".into()),
        }
    }
}

/// One web chat visitor as examples/webchat_load.rs drives them: hello, then a message every
/// `interval` (jittered), each waiting for its ack (agent replies pushed meanwhile are counted).
async fn visitor(
    n: usize,
    addr: std::net::SocketAddr,
    interval: f64,
    go: tokio::sync::watch::Receiver<Option<Instant>>,
    out: Arc<VisitorOut>,
) -> Result<(), String> {
    use braid::channels::webchat::protocol::ServerFrame as W;
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{addr}")).map_err(|e| e.to_string())?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    ws.send(Message::Text(r#"{"type":"hello","visitor":null}"#.into()))
        .await
        .map_err(|e| e.to_string())?;
    match ws_next(&mut ws).await? {
        W::Welcome { .. } => {}
        other => return Err(format!("expected welcome: {other:?}")),
    }
    out.connected.fetch_add(1, Ordering::Relaxed);
    let mut go = go;
    let until = loop {
        if let Some(u) = *go.borrow_and_update() {
            break u;
        }
        go.changed().await.map_err(|e| e.to_string())?;
    };
    let mut rng = Rng::new(n as u64 + 99);
    // The first messages spread over one interval.
    tokio::time::sleep(Duration::from_secs_f64(interval * rng.unit())).await;
    let mut i = 0;
    while Instant::now() < until {
        let id = format!("v{n}m{i}");
        let frame = format!(
            r#"{{"type":"msg","id":"{id}","text":"load run message {i} from visitor {n}: where is my refund?"}}"#
        );
        let t = Instant::now();
        ws.send(Message::Text(frame.into()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match ws_next(&mut ws).await? {
                W::Ack { id: got } if got == id => {
                    if let Ok(mut a) = out.ack.lock() {
                        a.push(t.elapsed());
                    }
                    out.acked.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                W::Msg { .. } => {
                    out.pushed.fetch_add(1, Ordering::Relaxed);
                }
                other => return Err(format!("expected an ack: {other:?}")),
            }
        }
        i += 1;
        let left = until.saturating_duration_since(Instant::now());
        tokio::time::sleep(rng.jitter(interval).min(left)).await;
    }
    let _ = ws.close(None).await;
    Ok(())
}

struct LoadResult {
    push: Samples,
    follower: Samples,
    /// The same, for writes sent after the first `warmup` of the run.
    push_steady: Samples,
    follower_steady: Samples,
    write_steady: Samples,
    warmup: Duration,
    rtt: BTreeMap<&'static str, Samples>,
    writes: usize,
    unmatched: usize,
    missed: usize,
    follower_missed: usize,
    actions: usize,
    seconds: f64,
    cpu: Option<Duration>,
    mem_before: Option<(u64, u64)>,
    mem_after: Option<(u64, u64)>,
    visitors_connected: usize,
    visitor_connect: Duration,
    visitor_acked: usize,
    visitor_pushed: usize,
    visitor_ack: Samples,
    keys_under_load: Option<KeyStats>,
    events_seen: usize,
}

/// 3 and 4: the load run, with the old model's followers on the same file.
fn load_run(
    rt: &tokio::runtime::Runtime,
    opts: &Opts,
    s: &Scratch,
    server: &ServerProc,
    errors: &Arc<Errors>,
) -> anyhow::Result<LoadResult> {
    let sock = s.socket();
    let shared = Arc::new(LoadShared {
        claimed: Mutex::new(HashSet::new()),
        meta: Mutex::new(HashMap::new()),
        errors: Arc::clone(errors),
        stop: AtomicBool::new(false),
    });

    // The web chat visitors, on a runtime of their own (their own threads).
    let vrt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("visitors")
        .build()?;
    let vout = Arc::new(VisitorOut::default());
    let (go_tx, go_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let t_vis = Instant::now();
    let mut vtasks = Vec::new();
    for n in 0..opts.visitors {
        let (go, out, errs) = (go_rx.clone(), Arc::clone(&vout), Arc::clone(errors));
        let (addr, interval) = (s.webchat, opts.visitor_interval);
        vtasks.push(vrt.spawn(async move {
            if let Err(e) = visitor(n, addr, interval, go, out).await {
                errs.add(format!("web chat visitor {n}: {e}"));
            }
        }));
    }
    while vout.connected.load(Ordering::Relaxed) + errors.count() < opts.visitors
        && t_vis.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let visitor_connect = t_vis.elapsed();
    println!(
        "load: {} of {} web chat visitors connected in {:.2} s",
        vout.connected.load(Ordering::Relaxed),
        opts.visitors,
        visitor_connect.as_secs_f64()
    );

    // The agents' connections.
    let mut conns = Vec::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut watchers = Vec::new();
    let mut last_event = EventId(0);
    for i in 0..opts.agents {
        let (conn, incoming) = rt.block_on(connect_socket(
            &sock,
            Hello::new(&format!("bench agent {i}"), None),
        ))?;
        last_event = last_event.max(conn.welcome().last_event);
        watchers.push(rt.spawn(watch_pushes(
            format!("agent {i}"),
            incoming,
            Arc::clone(&shared),
            stop_rx.clone(),
        )));
        conns.push(conn);
    }

    // The old model: followers of the events table at the old TUI interval.
    let mut followers = Vec::new();
    for f in 0..opts.followers {
        let mut rx =
            braid::feed::spawn_feed(s.db(), last_event, Duration::from_millis(opts.follower_ms));
        let mut stop = stop_rx.clone();
        let errs = Arc::clone(errors);
        followers.push(rt.spawn(async move {
            let mut seen: Vec<(EventId, Instant)> = Vec::new();
            loop {
                tokio::select! {
                    u = rx.recv() => match u {
                        Some(u) => {
                            let now = Instant::now();
                            if let Some(e) = u.error {
                                errs.add(format!("feed follower {f}: {e}"));
                            }
                            seen.extend(
                                u.events
                                    .iter()
                                    .filter(|e| WRITE_KINDS.contains(&e.kind.as_str()))
                                    .map(|e| (e.id, now)),
                            );
                        }
                        None => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            seen
        }));
    }

    // Go.
    let seconds = opts.seconds.max(1);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let _ = go_tx.send(Some(until));
    let cpu0 = proc_cpu(server.pid());
    let mem_before = proc_mem(server.pid());
    let mut agents = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        agents.push(rt.spawn(agent(
            i,
            conn.clone(),
            Arc::clone(&shared),
            until,
            opts.period,
            opts.seed,
        )));
    }
    // A TUI session of its own meanwhile: key -> frame under load.
    let key_stop = Arc::new(AtomicBool::new(false));
    let keys = {
        let (sock, errs, stop) = (sock.clone(), Arc::clone(errors), Arc::clone(&key_stop));
        std::thread::spawn(move || -> anyhow::Result<KeyStats> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (st, _c) = keys_socket(&sock, 1, &errs, false, Some(stop.as_ref())).await?;
                Ok(st)
            })
        })
    };
    let mut outs = Vec::new();
    for a in agents {
        outs.push(rt.block_on(a)?);
    }
    key_stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu1 = proc_cpu(server.pid());
    // Let the last pushes arrive (the followers poll every 100 ms), then stop.
    std::thread::sleep(Duration::from_millis(1000 + 2 * opts.follower_ms));
    let mem_after = proc_mem(server.pid());
    shared.stop.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let keys_under_load = match keys.join() {
        Ok(Ok(st)) => Some(st),
        Ok(Err(e)) => {
            errors.add(format!("TUI session under load: {e:#}"));
            None
        }
        Err(_) => {
            errors.add("TUI session under load: panicked".into());
            None
        }
    };
    let mut seen_by: Vec<HashMap<EventId, Instant>> = Vec::new();
    for w in watchers {
        seen_by.push(rt.block_on(w)?.into_iter().collect());
    }
    let mut followed: Vec<HashMap<EventId, Instant>> = Vec::new();
    for f in followers {
        followed.push(rt.block_on(f)?.into_iter().collect());
    }
    let _ = vrt.block_on(async {
        tokio::time::timeout(Duration::from_secs(40), async {
            for t in vtasks {
                let _ = t.await;
            }
        })
        .await
    });
    vrt.shutdown_background();
    drop(conns);

    // Each write -> its event -> when each other agent (and each follower) saw it.
    let meta = shared
        .meta
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut by_key: HashMap<(ConversationId, &str), Vec<(EventId, Millis)>> = HashMap::new();
    for (id, (conv, kind, at)) in &meta {
        if let (Some(c), Some(k)) = (conv, WRITE_KINDS.iter().find(|k| **k == kind.as_str())) {
            by_key.entry((*c, *k)).or_default().push((*id, *at));
        }
    }
    for v in by_key.values_mut() {
        v.sort();
    }
    let mut writes: Vec<&WriteRec> = outs.iter().flat_map(|o| o.writes.iter()).collect();
    writes.sort_by_key(|w| w.sent);
    let mut claimed_events: HashSet<EventId> = HashSet::new();
    let (mut push, mut follower) = (Samples::default(), Samples::default());
    // The first seconds of a run stand apart at 1M (writes wait seconds): the rest, alone.
    let warmup = Duration::from_secs((seconds / 6).clamp(1, 10));
    let (mut push_steady, mut follower_steady) = (Samples::default(), Samples::default());
    let (mut unmatched, mut missed, mut follower_missed) = (0, 0, 0);
    for w in &writes {
        let ev = by_key.get(&(w.conversation, w.kind)).and_then(|v| {
            v.iter()
                .find(|(id, at)| *at >= w.sent_ms && !claimed_events.contains(id))
                .map(|(id, _)| *id)
        });
        let Some(ev) = ev else {
            unmatched += 1;
            continue;
        };
        claimed_events.insert(ev);
        for (c, seen) in seen_by.iter().enumerate() {
            if c == w.agent {
                continue;
            }
            match seen.get(&ev) {
                Some(t) => {
                    push.push(t.saturating_duration_since(w.sent));
                    if w.sent >= started + warmup {
                        push_steady.push(t.saturating_duration_since(w.sent));
                    }
                }
                None => missed += 1,
            }
        }
        for seen in &followed {
            match seen.get(&ev) {
                Some(t) => {
                    follower.push(t.saturating_duration_since(w.sent));
                    if w.sent >= started + warmup {
                        follower_steady.push(t.saturating_duration_since(w.sent));
                    }
                }
                None => follower_missed += 1,
            }
        }
    }
    if unmatched > 0 {
        errors.add(format!(
            "{unmatched} write(s) answered Done but no agent connection was pushed their event"
        ));
    }
    if missed > 0 {
        errors.add(format!(
            "{missed} (write, other agent) pair(s): the agent was never pushed the write's event"
        ));
    }
    if follower_missed > 0 {
        errors.add(format!(
            "{follower_missed} (write, feed follower) pair(s): the follower never saw the event"
        ));
    }
    let mut rtt: BTreeMap<&'static str, Samples> = BTreeMap::new();
    for o in &outs {
        for (k, v) in &o.rtt {
            rtt.entry(k).or_default().extend(v);
        }
    }
    let visitor_ack = vout.ack.lock().map(|a| a.clone()).unwrap_or_default();
    let mut write_steady = Samples::default();
    for o in &outs {
        for w in &o.writes {
            if w.sent >= started + warmup {
                write_steady.push(w.answered.saturating_duration_since(w.sent));
            }
        }
    }
    Ok(LoadResult {
        push,
        follower,
        push_steady,
        follower_steady,
        write_steady,
        warmup,
        rtt,
        writes: writes.len(),
        unmatched,
        missed,
        follower_missed,
        actions: outs.iter().map(|o| o.actions).sum(),
        seconds: elapsed.as_secs_f64(),
        cpu: match (cpu0, cpu1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        mem_before,
        mem_after,
        visitors_connected: vout.connected.load(Ordering::Relaxed),
        visitor_connect,
        visitor_acked: vout.acked.load(Ordering::Relaxed),
        visitor_pushed: vout.pushed.load(Ordering::Relaxed),
        visitor_ack,
        keys_under_load,
        events_seen: meta.len(),
    })
}

// --------------------------------------------------------------------------------------- main

/// One line of the closing table.
struct Figure {
    name: String,
    n: usize,
    p50: String,
    p99: String,
    target: String,
}

fn fig(name: &str, s: &Samples, target: &str) -> Figure {
    Figure {
        name: name.into(),
        n: s.len(),
        p50: if s.is_empty() {
            "MISSING".into()
        } else {
            format!("{} ms", ms(s.q(0.5)))
        },
        p99: if s.is_empty() {
            "MISSING".into()
        } else {
            format!("{} ms", ms(s.q(0.99)))
        },
        target: target.into(),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let opts = parse_args()?;
    let command = format!(
        "cargo bench --bench server -- --messages {} --seconds {} --agents {} --visitors {} --visitor-interval {} --period {} --runs {} --rounds {} --followers {} --follower-ms {}",
        opts.messages,
        opts.seconds,
        opts.agents,
        opts.visitors,
        opts.visitor_interval,
        opts.period,
        opts.runs,
        opts.rounds,
        opts.followers,
        opts.follower_ms
    );
    println!("bench server: {command}");
    println!(
        "machine: {} cores; open files limit {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        raise_nofile()
    );
    let pristine = workspace(&opts)?;
    let s = scratch(&pristine, &opts)?;
    let mut server = ServerProc::start(&opts, &s)?;
    let errors = Arc::new(Errors::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sock = s.socket();
    let db = s.db();
    let mut figures: Vec<Figure> = Vec::new();
    let mut missing: Vec<String> = Vec::new();

    // 1. start -> first frame.
    rt.block_on(first_frame_socket(&sock, &errors))?; // warm: page cache, server pool
    let (mut connect, mut rows, mut complete) =
        (Samples::default(), Samples::default(), Samples::default());
    for _ in 0..opts.runs {
        match rt.block_on(first_frame_socket(&sock, &errors)) {
            Ok(f) => {
                connect.push(f.connect);
                rows.push(f.rows);
                complete.push(f.complete);
            }
            Err(e) => errors.add(format!("first frame over the socket: {e:#}")),
        }
    }
    first_frame_inline(&db)?;
    let mut inline = Samples::default();
    for _ in 0..opts.runs {
        match first_frame_inline(&db) {
            Ok(d) => inline.push(d),
            Err(e) => errors.add(format!("first frame inline: {e:#}")),
        }
    }
    header(&format!(
        "1. start -> first frame ({WIDTH}x{HEIGHT} TestBackend, {} runs, warm page cache)  [target: <= 150 ms]",
        opts.runs
    ));
    row("connect + handshake (socket, hello -> welcome)", &connect);
    row("start -> frame with the queue rows", &rows);
    row("START -> FIRST COMPLETE FRAME (server, socket)", &complete);
    row("old model: open the store file, answer inline", &inline);
    figures.push(fig(
        "start → first complete frame (server over the socket)",
        &complete,
        "≤ 150 ms",
    ));
    figures.push(fig(
        "start → first complete frame (old: TUI opens the file)",
        &inline,
        "—",
    ));

    // 1b. the audit log (`:audit`): its first page and a jump to the middle of every event,
    // one client over the socket (the demo workspace's events: one or more per message).
    let (audit_top, audit_middle) = rt.block_on(audit_pages(&sock, opts.runs, &errors))?;
    header(&format!(
        "1b. the audit log over the socket ({} runs, 100 rows a page)  [target: p99 <= 50 ms]",
        opts.runs
    ));
    row(":audit first page (newest events)", &audit_top);
    row(":audit at:50% (the middle of the log)", &audit_middle);
    figures.push(fig(":audit first page", &audit_top, "≤ 50 ms"));
    figures.push(fig(":audit jump to the middle", &audit_middle, "≤ 50 ms"));

    // 2. key -> frame.
    let (keys, client) = rt.block_on(keys_socket(&sock, opts.rounds, &errors, true, None))?;
    let keys_old = keys_inline(&db, opts.rounds)?;
    header(&format!(
        "2. key -> frame: {} keys ({} rounds of j/k, <CR>, h, G, gg, /refund<CR>, g o), {} requests  [target: p99 <= 2 ms]",
        keys.settled.len(),
        opts.rounds,
        keys.requests
    ));
    row(
        "key -> frame right after the key (UI work only)",
        &keys.frame,
    );
    row(
        "KEY -> SETTLED FRAME (answers over the socket drawn)",
        &keys.settled,
    );
    row(
        "old model: key -> settled frame (answers inline)",
        &keys_old.settled,
    );
    println!("  per key, over the socket (key -> settled frame):");
    for (k, v) in &keys.per_label {
        row(&format!("  {k}"), v);
    }
    println!("  per key, old model (inline):");
    for (k, v) in &keys_old.per_label {
        row(&format!("  {k}"), v);
    }
    println!("  round trip per request kind (send -> answer received by the client):");
    for (k, v) in &client.rtt {
        row(&format!("  {k}"), v);
    }
    row(
        "  client: apply answers + draw (per drained batch)",
        &client.apply,
    );
    if let Some(json) = &client.json {
        println!(
            "  JSON per answer kind (bytes; serde_json encode / decode of the frame, this process):"
        );
        for (k, c) in json {
            let mut b = c.bytes.clone();
            b.sort();
            println!(
                "    {k:<28} n {:>5}  bytes p50 {:>7} max {:>7}  encode p50 {} ms p99 {} ms  decode p50 {} ms p99 {} ms",
                b.len(),
                b.get(b.len() / 2).copied().unwrap_or(0),
                b.last().copied().unwrap_or(0),
                ms(c.encode.q(0.5)),
                ms(c.encode.q(0.99)),
                ms(c.decode.q(0.5)),
                ms(c.decode.q(0.99))
            );
        }
    }
    figures.push(fig(
        "key → settled frame, answers over the socket",
        &keys.settled,
        "p99 ≤ 2 ms",
    ));
    figures.push(fig(
        "key → frame right after the key (UI only)",
        &keys.frame,
        "p99 ≤ 2 ms",
    ));
    figures.push(fig(
        "key → settled frame (old: answers inline)",
        &keys_old.settled,
        "—",
    ));
    drop(client);

    // 3 + 4. load.
    let load = load_run(&rt, &opts, &s, &server, &errors)?;
    header(&format!(
        "3. load: {} agents (an action every {} s ±50%: move, open, reply, note, assign) + {} web chat visitors (a message every {} s ±50%), {:.1} s  [target: push p99 <= 50 ms]",
        opts.agents, opts.period, opts.visitors, opts.visitor_interval, load.seconds
    ));
    println!(
        "  {} actions, {} writes ({} without a pushed event), {} write events seen; web chat: {} connected in {:.2} s, {} messages acked, {} agent replies pushed to visitors",
        load.actions,
        load.writes,
        load.unmatched,
        load.events_seen,
        load.visitors_connected,
        load.visitor_connect.as_secs_f64(),
        load.visitor_acked,
        load.visitor_pushed
    );
    row(
        "CHANGE -> OTHER AGENTS' SCREENS (server push, pairs)",
        &load.push,
    );
    row(
        &format!(
            "4. old model: change -> seen ({} feed followers, {} ms)",
            opts.followers, opts.follower_ms
        ),
        &load.follower,
    );
    let after = format!("after the first {} s", load.warmup.as_secs());
    row(&format!("  push, writes sent {after}"), &load.push_steady);
    row(
        &format!("  old model, writes sent {after}"),
        &load.follower_steady,
    );
    row(
        &format!("  write round trip, writes sent {after}"),
        &load.write_steady,
    );
    println!(
        "  missed: {} (write, agent) pairs, {} (write, follower) pairs",
        load.missed, load.follower_missed
    );
    for (k, v) in &load.rtt {
        row(&format!("  agent round trip: {k}"), v);
    }
    row("  web chat: visitor message -> ack", &load.visitor_ack);
    if let Some(k) = &load.keys_under_load {
        row("  TUI under load: key -> frame (UI only)", &k.frame);
        row("  TUI under load: key -> settled frame", &k.settled);
    }
    let clk = load.seconds.max(0.001);
    let cpu_line = load.cpu.map(|c| {
        format!(
            "{:.1} s CPU in {:.1} s = {:.0}% of one core",
            c.as_secs_f64(),
            clk,
            c.as_secs_f64() / clk * 100.0
        )
    });
    let mem_line = load.mem_after.map(|(hwm, rss)| {
        format!(
            "VmHWM {:.0} MB, VmRSS {:.0} MB (before the load: {})",
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0,
            load.mem_before
                .map(|(_, r)| format!("VmRSS {:.0} MB", r as f64 / 1024.0))
                .unwrap_or_else(|| "?".into())
        )
    });
    println!(
        "  server CPU: {}",
        cpu_line.clone().unwrap_or_else(|| "MISSING".into())
    );
    println!(
        "  server memory: {}",
        mem_line.clone().unwrap_or_else(|| "MISSING".into())
    );
    figures.push(fig(
        "change → other agents' screens (server push)",
        &load.push,
        "p99 ≤ 50 ms",
    ));
    figures.push(fig(
        &format!(
            "change → seen (old: {} ms feed followers)",
            opts.follower_ms
        ),
        &load.follower,
        "—",
    ));
    figures.push(fig(
        &format!("change → other agents' screens, writes sent {after}"),
        &load.push_steady,
        "p99 ≤ 50 ms",
    ));
    figures.push(fig(
        &format!("change → seen (old model), writes sent {after}"),
        &load.follower_steady,
        "—",
    ));
    let mut write_rtt = Samples::default();
    for (k, v) in &load.rtt {
        if k.starts_with("write") {
            write_rtt.extend(v);
        }
    }
    figures.push(fig("agent write round trip (→ Done)", &write_rtt, "—"));
    figures.push(fig(
        &format!("agent write round trip, {after}"),
        &load.write_steady,
        "—",
    ));
    figures.push(fig(
        "web chat visitor message → ack",
        &load.visitor_ack,
        "—",
    ));
    if let Some(k) = &load.keys_under_load {
        figures.push(fig(
            "key → settled frame during the load run",
            &k.settled,
            "—",
        ));
    }

    // The server's own word on slow requests (> 50 ms).
    let log = std::fs::read_to_string(s.data().join("braid.log")).unwrap_or_default();
    let slow: Vec<&str> = log.lines().filter(|l| l.contains("slow request")).collect();
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-server-last.log");
    let _ = std::fs::write(&kept, &log);
    println!(
        "  server log: {} slow request line(s) (> 50 ms; the log is kept in {}), the first:",
        slow.len(),
        kept.display()
    );
    for l in slow.iter().take(8) {
        println!("    {}", l.trim());
    }
    // 5. Working as a team.
    let changes = (opts.agents * 4).clamp(20, 200);
    let presence = match rt.block_on(team::presence(&sock, opts.agents, changes, &errors)) {
        Ok(s) => s,
        Err(e) => {
            errors.add(format!("presence: {e:#}"));
            Samples::default()
        }
    };
    header(&format!(
        "5. working as a team: {} agent connections, {changes} presence changes one at a time",
        opts.agents.max(2)
    ));
    row("PRESENCE CHANGE -> EVERY OTHER SCREEN (pushed)", &presence);
    figures.push(fig(
        &format!(
            "presence change → other agents' screens ({} agents)",
            opts.agents.max(2)
        ),
        &presence,
        "—",
    ));
    let notified = match rt.block_on(team::notification_delivery(
        &sock,
        s.webchat,
        opts.agents,
        // One visitor's messages stay inside the web chat's flood limit (20 a minute).
        15,
        &errors,
    )) {
        Ok(s) => s,
        Err(e) => {
            errors.add(format!("notifications: {e:#}"));
            Samples::default()
        }
    };
    row(
        "NOTIFICATION: CUSTOMER MESSAGE -> EACH OF THE ASSIGNEE'S SESSIONS",
        &notified,
    );
    figures.push(fig(
        &format!(
            "customer message → notification on each of the assignee's {} sessions",
            opts.agents.max(1)
        ),
        &notified,
        "—",
    ));

    // 6. Webhooks.
    let db = s.data().join(braid::store::DB_FILE);
    let thr = match rt.block_on(hooks::throughput(
        s.webchat,
        &db,
        opts.hooks,
        opts.hook_concurrency,
        &errors,
    )) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.add(format!("webhook throughput: {e:#}"));
            None
        }
    };
    let to_screen = match rt.block_on(hooks::to_screen(&sock, s.webchat, &db, 200, &errors)) {
        Ok(s) => s,
        Err(e) => {
            errors.add(format!("webhook → screen: {e:#}"));
            Samples::default()
        }
    };
    header(&format!(
        "6. webhooks: signed call logs over HTTP, {} in flight",
        opts.hook_concurrency
    ));
    let mut hook_rate = None;
    if let Some(t) = &thr {
        let acc = t.n as f64 / t.accepted.as_secs_f64().max(1e-9);
        let ing = t.n as f64 / t.ingested.as_secs_f64().max(1e-9);
        println!(
            "  {} POSTs: answered 200 (verified, kept on disk) at {acc:.0}/s in {:.2} s; all ingested (inbox empty) at {ing:.0}/s in {:.2} s",
            t.n,
            t.accepted.as_secs_f64(),
            t.ingested.as_secs_f64()
        );
        row("  one POST's round trip (under that load)", &t.post);
        figures.push(fig("signed webhook POST → 200, under load", &t.post, "—"));
        hook_rate = Some(format!(
            "{acc:.0}/s answered, {ing:.0}/s end to end into the store"
        ));
    }
    row("WEBHOOK -> AGENT'S SCREEN (pushed event)", &to_screen);
    figures.push(fig("signed webhook → agent's screen", &to_screen, "—"));
    server.stop();

    // The table.
    for (name, s) in [
        ("start → first frame", &complete),
        ("key → frame", &keys.settled),
        ("change → other agents' screens", &load.push),
        ("old model change → seen", &load.follower),
        ("presence change → other screens", &presence),
        ("notification delivery", &notified),
        ("webhook → screen", &to_screen),
    ] {
        if s.is_empty() {
            missing.push(name.into());
        }
    }
    if load.visitor_ack.is_empty() && opts.visitors > 0 {
        missing.push("web chat acks".into());
    }
    if cpu_line.is_none() {
        missing.push("server CPU".into());
    }
    if hook_rate.is_none() {
        missing.push("webhook throughput".into());
    }
    if mem_line.is_none() {
        missing.push("server RSS".into());
    }
    let nerr = errors.count();
    println!();
    println!("```");
    println!("{command}");
    println!("```");
    println!();
    println!(
        "| figure ({} messages, {} agents, {} visitors, {} s) | n | p50 | p99 | target |",
        opts.messages, opts.agents, opts.visitors, opts.seconds
    );
    println!("|---|---|---|---|---|");
    for f in &figures {
        println!(
            "| {} | {} | {} | {} | {} |",
            f.name, f.n, f.p50, f.p99, f.target
        );
    }
    println!(
        "| webhook ingestion throughput ({} signed POSTs, {} in flight) | | {} | | |",
        opts.hooks,
        opts.hook_concurrency,
        hook_rate.clone().unwrap_or_else(|| "MISSING".into())
    );
    println!(
        "| server CPU during the load run | | {} | | |",
        cpu_line.unwrap_or_else(|| "MISSING".into())
    );
    println!(
        "| server memory after the load run | | {} | | |",
        mem_line.unwrap_or_else(|| "MISSING".into())
    );
    println!("| errors (error answers, lost connections, missed pushes) | | {nerr} | | 0 |");
    println!();
    if nerr > 0 {
        println!("errors ({nerr}); the first:");
        if let Ok(f) = errors.first.lock() {
            for e in f.iter() {
                println!("  {e}");
            }
        }
    }
    if !missing.is_empty() {
        println!("missing figures: {}", missing.join(", "));
    }
    drop(s);
    Ok(nerr == 0 && missing.is_empty())
}
