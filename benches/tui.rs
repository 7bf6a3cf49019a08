//! How fast the TUI is on a big workspace: first frame, key to frame, search, and the store
//! queries behind them. Prints figures; asserts nothing.
//!
//! `cargo bench --bench tui` builds (once; reused afterwards) a demo workspace of
//! `BRAID_BENCH_MESSAGES` messages (default 1,000,000; one contact per 10 messages, seed
//! `BRAID_BENCH_SEED`, default 42) in `target/bench-data/demo-m{N}-s{SEED}/` and measures:
//!
//! - **first frame**: open the store read-write (migrations), load the keymap, `App::new`,
//!   `app.start()` with its store requests answered inline, draw on a 160x45 `TestBackend`,
//!   until the queue rows are on screen; then until the timeline and profile are in too. Warm
//!   page cache, and cold (the store file's pages dropped with `posix_fadvise(DONTNEED)`).
//! - **key to frame**: 10,000 `j` with some `<C-d>`, `5j`, `G`, `gg`, `k` through the real keymap.
//!   The UI task's cost (`App::handle(key)` + draw: what the user waits for before the frame)
//!   is timed apart from the store work the key causes (in the real app it runs on the data
//!   thread; here inline, and every request runs: the data thread would drop superseded ones)
//!   and from the frames drawn when the answers arrive.
//! - **search**: 20 fixed queries through `Store::search(&q, 50)`, and the TUI's `/` path
//!   (`search_conversations(&q, 200)`) on a few.
//! - **bursts**: 20 bursts of 200 `j` (`BRAID_BENCH_BURST`), each handled before any answer
//!   arrives (keys faster than the store, as when the loop drains a burst of input): does the
//!   selection end where the keys say, and how many queue requests does that cost?
//! - **store**: queue pages, counts, timeline, profile; the store file's size.
//!
//! `BRAID_BENCH_JSON=FILE` also writes every row as JSON.
//! `BRAID_BENCH_ONLY=first,keys,bursts,search,store` runs a subset; `BRAID_BENCH_RUNS` sets the
//! first-frame runs (default 20); `BRAID_BENCH_KEYS` the number of `j` (default 10,000).
//! The machine may be noisy: compare figures within one run, and read medians.

use braid::api::Request;
use braid::config::Config;
use braid::demo::{DemoOptions, generate};
use braid::harness::Harness;
use braid::model::{ContactId, ConversationId, Millis, Status, now_millis};
use braid::server::{Identity, handler};
use braid::store::{QueueAnchor, QueueFilter, SearchQuery, Store};
use braid::tui::app::{App, Effect, Event};
use braid::tui::keymap::parse_key_script;
use braid::tui::runtime::load_keymap;
use crossterm::event::KeyEvent;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WIDTH: u16 = 160;
const HEIGHT: u16 = 45;
const AGENT: &str = "alice";

/// The agent the benchmark's requests are answered for (made once: it looks the user up).
fn who() -> &'static Identity {
    static WHO: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
    WHO.get_or_init(|| Identity::local_admin(AGENT))
}

// ------------------------------------------------------------------------------------ stats

/// Wall time and this thread's CPU time. The machine is shared: wall time includes being
/// preempted by other processes; CPU time does not (it is the work itself).
#[derive(Default, Clone, Copy, Debug)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            wall: self.wall + o.wall,
            cpu: self.cpu + o.cpu,
        }
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec on the stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Clone, Copy)]
struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }
    fn elapsed(&self) -> Cost {
        Cost {
            wall: self.wall.elapsed(),
            cpu: thread_cpu().saturating_sub(self.cpu),
        }
    }
}

#[derive(Default, Clone)]
struct Samples(Vec<Cost>);

impl Samples {
    fn push(&mut self, c: Cost) {
        self.0.push(c);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    /// The q-quantile (nearest rank) of wall (or CPU) times.
    fn q(&self, q: f64, cpu: bool) -> Duration {
        let mut v: Vec<Duration> = self
            .0
            .iter()
            .map(|c| if cpu { c.cpu } else { c.wall })
            .collect();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
    fn max(&self) -> Duration {
        self.0.iter().map(|c| c.wall).max().unwrap_or_default()
    }
    fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
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

/// Every row printed, for `BRAID_BENCH_JSON=FILE` (read by `scripts/bench.py`): label, n and
/// the wall-time p50, p95, p99 and max in ms.
static ROWS: std::sync::Mutex<Vec<serde_json::Value>> = std::sync::Mutex::new(Vec::new());

/// label, n, wall quantiles, wall max, then CPU quantiles.
fn row(label: &str, s: &Samples, cols: &[f64]) {
    if let Ok(mut rows) = ROWS.lock() {
        let f = |d: Duration| d.as_secs_f64() * 1e3;
        rows.push(serde_json::json!({
            "label": label.trim(),
            "n": s.len(),
            "p50_ms": f(s.q(0.5, false)),
            "p95_ms": f(s.q(0.95, false)),
            "p99_ms": f(s.q(0.99, false)),
            "max_ms": f(s.max()),
        }));
    }
    let wall: Vec<String> = cols
        .iter()
        .map(|&q| format!("{:>8}", ms(s.q(q, false))))
        .collect();
    let cpu: Vec<String> = cols
        .iter()
        .map(|&q| format!("{:>8}", ms(s.q(q, true))))
        .collect();
    println!(
        "  {label:<48} {:>6} {} {:>8} | {}",
        s.len(),
        wall.join(" "),
        ms(s.max()),
        cpu.join(" ")
    );
}

fn header(title: &str, cols: &[&str]) {
    println!();
    println!("{title}");
    let c: Vec<String> = cols.iter().map(|c| format!("{c:>8}")).collect();
    println!(
        "  {:<48} {:>6} {} {:>8} | {} (CPU time of the thread)",
        "(ms; wall time unless marked CPU)",
        "n",
        c.join(" "),
        "max",
        c.join(" ")
    );
}

// -------------------------------------------------------------------------------- workspace

struct Workspace {
    dir: PathBuf,
    db: PathBuf,
    messages: usize,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// The workspace for this size and seed: reused when a complete one is there (by this bench or
/// `scripts/bench-tui.sh`, which builds the same thing with `braid demo --no-tui`).
fn workspace() -> anyhow::Result<Workspace> {
    let messages = env_usize("BRAID_BENCH_MESSAGES", 1_000_000).max(1);
    let seed = env_usize("BRAID_BENCH_SEED", 42) as u64;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let dir = root.join(format!("demo-m{messages}-s{seed}"));
    let db = dir.join(braid::store::DB_FILE);
    let marker = dir.join("complete");
    if marker.exists() {
        println!(
            "workspace: reusing {} ({})",
            dir.display(),
            std::fs::read_to_string(&marker)?.trim()
        );
    } else {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let opts = DemoOptions {
            seed,
            messages,
            contacts: (messages / 10).max(1),
            ..DemoOptions::default()
        };
        println!(
            "workspace: building {messages} messages / {} contacts (seed {seed}) in {} ...",
            opts.contacts,
            dir.display()
        );
        let mut store = Store::open(&db)?;
        let started = Instant::now();
        let report = generate(&mut store, &opts, now_millis(), &mut |_, _| {})?;
        drop(store);
        let secs = started.elapsed().as_secs_f64();
        let line = format!(
            "built by benches/tui.rs: {} contacts, {} conversations, {} messages in {:.1} s ({:.0} msg/s)",
            report.contacts,
            report.conversations,
            report.messages,
            secs,
            report.messages as f64 / secs
        );
        println!("workspace: {line}");
        std::fs::write(&marker, line + "\n")?;
    }
    Ok(Workspace { dir, db, messages })
}

fn store_bytes(ws: &Workspace) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(&ws.dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with(braid::store::DB_FILE)
                && let Ok(m) = e.metadata()
            {
                total += m.len();
            }
        }
    }
    total
}

/// Drop the store file's pages from the OS page cache (only this file's: nothing else on the
/// machine is disturbed). Returns false when the kernel would not.
fn drop_file_cache(ws: &Workspace) -> bool {
    use std::os::fd::AsRawFd;
    let mut ok = true;
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", ws.db.display()));
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        let _ = f.sync_all();
        // SAFETY: a valid open descriptor; the call only advises the kernel.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        ok &= rc == 0;
    }
    ok
}

/// How much of the store file is in the page cache (mincore over a read-only mapping).
fn cached_fraction(path: &Path) -> Option<f64> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len() as usize;
    if len == 0 {
        return Some(0.0);
    }
    // SAFETY: mapping a file we hold open, read-only, unmapped before returning.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return None;
        }
        let pages = len.div_ceil(page);
        let mut vec = vec![0u8; pages];
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        libc::munmap(addr, len);
        if rc != 0 {
            return None;
        }
        Some(vec.iter().filter(|b| **b & 1 == 1).count() as f64 / pages as f64)
    }
}

// ------------------------------------------------------------------------------ first frame

struct FirstFrame {
    open: Cost,
    keymap: Cost,
    /// Store time of the start requests answered before the rows frame (queue page, counts).
    store: Cost,
    /// UI time: App::new, start, handling the answers, terminal setup and the draw.
    ui: Cost,
    rows_frame: Cost,
    full_frame: Cost,
}

/// One start, as `runtime::run` does it but with the store answered inline.
fn first_frame(ws: &Workspace, now: Millis) -> anyhow::Result<FirstFrame> {
    let t0 = Clock::start();
    let mut store = Store::open(&ws.db)?;
    let open = t0.elapsed();
    let t = Clock::start();
    let mut config = Config::with_data_dir(&ws.dir);
    config.agent = AGENT.into();
    let keymap = load_keymap(&config)?;
    let keymap_t = t.elapsed();
    let mut store_t = Cost::default();
    let t = Clock::start();
    let mut app = App::new(&config, keymap, (WIDTH, HEIGHT), now);
    let mut term = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    // The first frame the real loop draws (before any answer: an empty, loading queue).
    term.draw(|f| braid::tui::ui::draw(f, &app))?;
    let start = app.start();
    let mut ui_t = t.elapsed();
    // The start requests (queue page, counts), then the frame with the rows.
    let mut later = Vec::new();
    for fx in start {
        if let Effect::Request(r) = fx {
            let t = Clock::start();
            let resp = handler::handle(&mut store, who(), r);
            store_t += t.elapsed();
            let t = Clock::start();
            later.extend(app.handle(Event::Data(resp)));
            ui_t += t.elapsed();
        }
    }
    let t = Clock::start();
    term.draw(|f| braid::tui::ui::draw(f, &app))?;
    ui_t += t.elapsed();
    let rows_frame = t0.elapsed();
    let first = app
        .queue
        .rows
        .first()
        .map(|r| r.contact_name.chars().take(8).collect::<String>())
        .ok_or_else(|| anyhow::anyhow!("no queue rows after start"))?;
    let screen = screen_text(&term);
    anyhow::ensure!(
        screen.contains("NORMAL") && screen.contains(&first),
        "the rows frame does not show the queue:\n{screen}"
    );
    // Then the timeline and profile of the selected row, and the complete frame.
    let mut queue = later;
    while !queue.is_empty() {
        let mut next = Vec::new();
        for fx in queue {
            if let Effect::Request(r) = fx {
                let resp = handler::handle(&mut store, who(), r);
                next.extend(app.handle(Event::Data(resp)));
            }
        }
        queue = next;
    }
    term.draw(|f| braid::tui::ui::draw(f, &app))?;
    let full_frame = t0.elapsed();
    Ok(FirstFrame {
        open,
        keymap: keymap_t,
        store: store_t,
        ui: ui_t,
        rows_frame,
        full_frame,
    })
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

fn bench_first_frame(ws: &Workspace, now: Millis) -> anyhow::Result<()> {
    let runs = env_usize("BRAID_BENCH_RUNS", 20).max(1);
    // One unmeasured start warms the page cache for the warm runs.
    first_frame(ws, now)?;
    let cached = cached_fraction(&ws.db)
        .map(|f| format!("{:.0}% of the store file in the page cache", f * 100.0))
        .unwrap_or_else(|| "page cache state unknown".into());
    let cols = [0.5, 0.95];
    header(
        &format!(
            "first frame (160x45 TestBackend; start = Store::open .. frame)  [target: rows frame <= 150 ms]\n  warm: {runs} runs, {cached}"
        ),
        &["p50", "p95"],
    );
    let mut s: BTreeMap<&str, Samples> = BTreeMap::new();
    for _ in 0..runs {
        let f = first_frame(ws, now)?;
        s.entry("1 open store (rw, migrations)")
            .or_default()
            .push(f.open);
        s.entry("2 load keymap").or_default().push(f.keymap);
        s.entry("3 start requests (queue page + counts)")
            .or_default()
            .push(f.store);
        s.entry("4 UI (App::new, answers, draws)")
            .or_default()
            .push(f.ui);
        s.entry("5 START -> FRAME WITH QUEUE ROWS")
            .or_default()
            .push(f.rows_frame);
        s.entry("6 start -> frame with timeline + profile")
            .or_default()
            .push(f.full_frame);
    }
    for (k, v) in &s {
        row(k, v, &cols);
    }
    // Cold: the store file's pages dropped before each start.
    let cold_runs = (runs / 2).max(3);
    if drop_file_cache(ws) {
        let after = cached_fraction(&ws.db)
            .map(|f| format!("{:.0}% cached after the drop", f * 100.0))
            .unwrap_or_default();
        println!(
            "  cold: {cold_runs} runs, the store file's pages dropped before each (posix_fadvise DONTNEED; {after})"
        );
        let mut rows = Samples::default();
        let mut full = Samples::default();
        let mut open = Samples::default();
        let mut store = Samples::default();
        for _ in 0..cold_runs {
            drop_file_cache(ws);
            let f = first_frame(ws, now)?;
            open.push(f.open);
            store.push(f.store);
            rows.push(f.rows_frame);
            full.push(f.full_frame);
        }
        row("1 open store (cold)", &open, &cols);
        row("3 start requests (cold)", &store, &cols);
        row("5 START -> FRAME WITH QUEUE ROWS (cold)", &rows, &cols);
        row(
            "6 start -> frame with timeline + profile (cold)",
            &full,
            &cols,
        );
    } else {
        println!("  cold: skipped (posix_fadvise refused)");
    }
    Ok(())
}

// ----------------------------------------------------------------------------- key to frame

fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Queue { anchor, .. } => match anchor {
            QueueAnchor::Top => "queue page (top)",
            QueueAnchor::Bottom => "queue page (bottom)",
            QueueAnchor::After(_) => "queue page (after: append)",
            QueueAnchor::Before(_) => "queue page (before: prepend)",
            QueueAnchor::AtOrAfter(_) => "queue page (reload)",
            QueueAnchor::Offset(_) => "queue page (offset jump)",
        },
        Request::Timeline { before: None, .. } => "timeline",
        Request::Timeline { .. } => "timeline (older)",
        Request::Profile { .. } => "profile + tags",
        Request::Counts => "counts",
        Request::Compose { .. } => "compose",
        Request::Write { .. } => "write",
        other => other.name(),
    }
}

/// The key script: `j` presses with a `<C-d>`/`5j` burst every 1000, and `G`, `k` x 50,
/// `gg` twice along the way. Each entry is (label, key).
fn key_script(js: usize) -> anyhow::Result<Vec<(&'static str, KeyEvent)>> {
    let key = |s: &str| -> anyhow::Result<Vec<KeyEvent>> {
        parse_key_script(s).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let j = key("j")?[0];
    let k = key("k")?[0];
    let mut out = Vec::new();
    for i in 0..js {
        out.push(("j", j));
        if (i + 1) % 1000 == 0 {
            for _ in 0..5 {
                out.push(("<C-d>", key("<C-d>")?[0]));
            }
            for _ in 0..5 {
                let five = key("5j")?;
                out.push(("5j (the 5)", five[0]));
                out.push(("5j (the j)", five[1]));
            }
            if (i + 1) % 5000 == 0 {
                out.push(("G", key("G")?[0]));
                for _ in 0..50 {
                    out.push(("k (after G)", k));
                }
                let gg = key("gg")?;
                out.push(("gg (the first g)", gg[0]));
                out.push(("gg (the second g)", gg[1]));
            }
        }
    }
    Ok(out)
}

#[derive(Default)]
struct KeyStats {
    /// handle(key) + draw: the frame after the key.
    key_frame: Samples,
    /// handle(key) alone, and the draw alone.
    handle: Samples,
    draw: Samples,
    /// Store time of all requests one key caused (the chain, inline).
    store_per_key: Samples,
    /// handle(Data) + draw, one per answer.
    data_frame: Samples,
    /// key frame + store + answer frames: the serial time until the screen is complete.
    settled: Samples,
    per_label: BTreeMap<&'static str, Samples>,
    per_request: BTreeMap<&'static str, Samples>,
    requests: usize,
}

fn press(h: &mut Harness, key: KeyEvent, label: &'static str, st: &mut KeyStats) {
    let t = Clock::start();
    let fx = h.app.handle(Event::Key(key));
    let handle = t.elapsed();
    let t = Clock::start();
    let _ = h.draw();
    let draw = t.elapsed();
    let frame = handle + draw;
    let mut store = Cost::default();
    let mut answers = Cost::default();
    let mut queue = fx;
    while !queue.is_empty() {
        let mut next = Vec::new();
        for fx in queue {
            if let Effect::Request(r) = fx {
                let kind = request_kind(&r);
                let t = Clock::start();
                let resp = handler::handle(&mut h.store, who(), r);
                let took = t.elapsed();
                store += took;
                st.requests += 1;
                st.per_request.entry(kind).or_default().push(took);
                let t = Clock::start();
                next.extend(h.app.handle(Event::Data(resp)));
                let _ = h.draw();
                let d = t.elapsed();
                answers += d;
                st.data_frame.push(d);
            }
        }
        queue = next;
    }
    st.key_frame.push(frame);
    st.handle.push(handle);
    st.draw.push(draw);
    st.store_per_key.push(store);
    st.settled.push(frame + store + answers);
    st.per_label.entry(label).or_default().push(frame);
}

fn bench_keys(ws: &Workspace, now: Millis) -> anyhow::Result<()> {
    let js = env_usize("BRAID_BENCH_KEYS", 10_000);
    let store = Store::open(&ws.db)?;
    let mut h = Harness::new(store, AGENT, WIDTH, HEIGHT, now)?;
    h.draw()?;
    let open_total = h.app.queue.total;
    // Warm up (page cache, statement cache, allocator): 300 j and back to the top.
    let mut warm = KeyStats::default();
    for (label, key) in key_script(300)? {
        press(&mut h, key, label, &mut warm);
    }
    for key in parse_key_script("gg").map_err(|e| anyhow::anyhow!("{e}"))? {
        press(&mut h, key, "warm", &mut warm);
    }
    let script = key_script(js)?;
    let mut st = KeyStats::default();
    let started = Instant::now();
    let mut deepest = 0;
    for (label, key) in &script {
        press(&mut h, *key, label, &mut st);
        deepest = deepest.max(h.app.queue.offset + h.app.queue.selected);
    }
    let wall = started.elapsed();
    let cols = [0.5, 0.99];
    header(
        &format!(
            "key to frame: {} keys ({js} j + <C-d>, 5j, G, k, gg) on the open queue of {open_total} conversations, deepest row {}, {} store requests, {:.1} s\n  UI task = App::handle(key) + draw on the 160x45 TestBackend  [target: p99 <= 2 ms]",
            script.len(),
            deepest + 1,
            st.requests,
            wall.as_secs_f64()
        ),
        &["p50", "p99"],
    );
    row(
        "KEY -> FRAME (UI task: handle + draw)",
        &st.key_frame,
        &cols,
    );
    row("  of which App::handle(key)", &st.handle, &cols);
    row("  of which draw", &st.draw, &cols);
    for (label, s) in &st.per_label {
        row(&format!("  key {label}"), s, &cols);
    }
    row(
        "answer -> frame (UI task: handle(Data) + draw)",
        &st.data_frame,
        &cols,
    );
    row(
        "store work per key (data thread, inline)",
        &st.store_per_key,
        &cols,
    );
    for (kind, s) in &st.per_request {
        row(&format!("  request: {kind}"), s, &cols);
    }
    row(
        "key -> settled screen (all of the above, serial)",
        &st.settled,
        &cols,
    );
    Ok(())
}

/// Keys faster than answers, as in the real loop: a burst of `j` is drained and handled before
/// any store answer comes back (the data thread answers in between, dropping superseded
/// requests of the same slot like `runtime::spawn_data_thread`). Reports where the selection
/// ends up against where the keys should have taken it.
fn bench_bursts(ws: &Workspace, now: Millis) -> anyhow::Result<()> {
    let burst = env_usize("BRAID_BENCH_BURST", 200).max(1);
    let bursts = 20;
    let store = Store::open(&ws.db)?;
    let mut h = Harness::new(store, AGENT, WIDTH, HEIGHT, now)?;
    h.draw()?;
    let j = parse_key_script("j").map_err(|e| anyhow::anyhow!("{e}"))?[0];
    let total = h.app.queue.total.max(1) as usize;
    let mut expected = h.app.queue.offset + h.app.queue.selected;
    let mut frames = Samples::default();
    let mut per_request: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut dropped = 0usize;
    let mut worst_lag = 0usize;
    for _ in 0..bursts {
        let mut pending: Vec<Request> = Vec::new();
        let t = Clock::start();
        for _ in 0..burst {
            for fx in h.app.handle(Event::Key(j)) {
                if let Effect::Request(r) = fx {
                    pending.push(r);
                }
            }
        }
        let _ = h.draw();
        frames.push(t.elapsed());
        expected = (expected + burst).min(total - 1);
        // The data thread: take everything queued, skip what a newer request supersedes.
        while !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            for i in 0..batch.len() {
                let slot = batch[i].slot();
                if slot.is_some() && batch[i + 1..].iter().any(|r| r.slot() == slot) {
                    dropped += 1;
                    continue;
                }
                *per_request.entry(request_kind(&batch[i])).or_default() += 1;
                let resp = handler::handle(&mut h.store, who(), batch[i].clone());
                for fx in h.app.handle(Event::Data(resp)) {
                    if let Effect::Request(r) = fx {
                        pending.push(r);
                    }
                }
            }
            let _ = h.draw();
        }
        let at = h.app.queue.offset + h.app.queue.selected;
        worst_lag = worst_lag.max(expected.saturating_sub(at));
    }
    let at = h.app.queue.offset + h.app.queue.selected;
    println!();
    println!(
        "bursts: {bursts} x {burst} j, each burst handled before any answer (as the real loop drains input)"
    );
    println!(
        "  row reached {} of {} expected ({} key presses lost; worst lag after a burst {} rows)",
        at + 1,
        expected + 1,
        expected.saturating_sub(at),
        worst_lag
    );
    let reqs: Vec<String> = per_request
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "  store requests run: {}; {dropped} superseded ones skipped",
        reqs.join(", ")
    );
    println!(
        "  burst of {burst} keys + one draw: p50 {} ms, max {} ms",
        ms(frames.q(0.5, false)),
        ms(frames.max())
    );
    Ok(())
}

// ----------------------------------------------------------------------------------- search

fn day(ms: Millis) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The 20 queries. Dates are relative to the newest message (the workspace's "today").
fn search_queries(newest: Millis) -> Vec<(&'static str, String)> {
    let d = |days: i64| day(newest - days * 86_400_000);
    vec![
        ("common word", "refund".into()),
        ("very common word", "order".into()),
        ("most common word", "the".into()),
        ("two common words", "tracking carrier".into()),
        ("medium word", "merino".into()),
        ("rare word", "geklappt".into()),
        ("rare word 2", "tuesday".into()),
        ("no match", "zqxwvj".into()),
        ("phrase", "\"tracking number\"".into()),
        ("long phrase", "\"the box was crushed\"".into()),
        ("prefix", "ref*".into()),
        ("short prefix", "in*".into()),
        ("from: address part", "from:gmail.com".into()),
        ("from: name", "from:olivia".into()),
        ("channel: alone", "channel:telegram".into()),
        ("is:note alone", "is:note".into()),
        (
            "date range alone (7 days)",
            format!("after:{} before:{}", d(37), d(30)),
        ),
        ("word + channel:", "refund channel:email".into()),
        ("word + date range", format!("invoice after:{}", d(60))),
        ("rare word + from:", "merino from:harris".into()),
    ]
}

fn newest_message(ws: &Workspace) -> anyhow::Result<Millis> {
    let conn =
        rusqlite::Connection::open_with_flags(&ws.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn
        .query_row("SELECT max(created_at) FROM messages", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or_else(now_millis))
}

fn bench_search(ws: &Workspace) -> anyhow::Result<()> {
    let reps = env_usize("BRAID_BENCH_SEARCH_REPS", 15).max(1);
    let store = Store::open(&ws.db)?;
    let queries = search_queries(newest_message(ws)?);
    let cols = [0.5, 0.95];
    header(
        &format!(
            "search: Store::search(&q, 50), {reps} runs per query after one warm-up  [target: p95 <= 20 ms]"
        ),
        &["p50", "p95"],
    );
    let mut all = Samples::default();
    let mut hits_of = Vec::new();
    for (label, text) in &queries {
        let q = SearchQuery::parse(text).map_err(anyhow::Error::msg)?;
        let hits = store.search(&q, 50)?.len();
        let mut s = Samples::default();
        for _ in 0..reps {
            let t = Clock::start();
            let h = store.search(&q, 50)?;
            s.push(t.elapsed());
            std::hint::black_box(h);
        }
        all.extend(&s);
        hits_of.push(hits);
        row(&format!("{label}: {text} [{hits}]"), &s, &cols);
    }
    row("ALL QUERIES", &all, &cols);
    // The TUI's `/` path: 200 hits, then their conversations as queue rows.
    let mut tui = Samples::default();
    for (_, text) in queries.iter().take(6) {
        let q = SearchQuery::parse(text).map_err(anyhow::Error::msg)?;
        store.search_conversations(&q, 200)?;
        for _ in 0..reps.min(5) {
            let t = Clock::start();
            std::hint::black_box(store.search_conversations(&q, 200)?);
            tui.push(t.elapsed());
        }
    }
    row(
        "TUI `/` path: search_conversations(q, 200), first 6",
        &tui,
        &cols,
    );
    Ok(())
}

// ------------------------------------------------------------------------------------ store

fn sample_contacts(ws: &Workspace, n: usize) -> anyhow::Result<Vec<(ContactId, ConversationId)>> {
    let conn =
        rusqlite::Connection::open_with_flags(&ws.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count: i64 = conn.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))?;
    let step = (count / n as i64).max(1);
    let mut stmt = conn.prepare(
        "SELECT contact_id, id FROM conversations WHERE id % ?1 = 0 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map((step, n as i64), |r| {
        Ok((ContactId(r.get(0)?), ConversationId(r.get(1)?)))
    })?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    // And the contacts with the most messages (the longest timelines).
    let mut stmt = conn.prepare(
        "SELECT contact_id, max(conversation_id) FROM messages
         GROUP BY contact_id ORDER BY count(*) DESC LIMIT 10",
    )?;
    let heavy = stmt.query_map([], |r| {
        Ok((ContactId(r.get(0)?), ConversationId(r.get(1)?)))
    })?;
    out.extend(heavy.collect::<rusqlite::Result<Vec<_>>>()?);
    Ok(out)
}

fn time_n<T, E>(n: usize, mut f: impl FnMut(usize) -> Result<T, E>) -> anyhow::Result<Samples>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let _ = f(0)?;
    let mut s = Samples::default();
    for i in 0..n {
        let t = Clock::start();
        std::hint::black_box(f(i)?);
        s.push(t.elapsed());
    }
    Ok(s)
}

fn bench_store(ws: &Workspace) -> anyhow::Result<()> {
    let store = Store::open(&ws.db)?;
    let open = QueueFilter::Status(Status::Open);
    let all = QueueFilter::All;
    let open_n = store.queue_count(&open)?;
    let all_n = store.queue_count(&all)?;
    let cols = [0.5, 0.95];
    header(
        &format!(
            "store queries ({open_n} open of {all_n} conversations; page = 150 rows, timeline page = 101)"
        ),
        &["p50", "p95"],
    );
    let reps = 30;
    let page = braid::tui::app::PAGE;
    row(
        "queue_page(open, Top)",
        &time_n(reps, |_| store.queue_page(&open, QueueAnchor::Top, page))?,
        &cols,
    );
    let deep = store.queue_page(
        &open,
        QueueAnchor::Offset((open_n as usize / 2).saturating_sub(1)),
        1,
    )?;
    if let Some(c) = deep.first().map(|r| r.cursor()) {
        row(
            "queue_page(open, After(middle row))",
            &time_n(reps, |_| {
                store.queue_page(&open, QueueAnchor::After(c), page)
            })?,
            &cols,
        );
        row(
            "queue_page(open, Before(middle row))",
            &time_n(reps, |_| {
                store.queue_page(&open, QueueAnchor::Before(c), page)
            })?,
            &cols,
        );
    }
    row(
        "queue_page(open, Offset(middle))",
        &time_n(reps, |_| {
            store.queue_page(&open, QueueAnchor::Offset(open_n as usize / 2), page)
        })?,
        &cols,
    );
    row(
        "queue_page(open, Bottom)",
        &time_n(reps, |_| store.queue_page(&open, QueueAnchor::Bottom, page))?,
        &cols,
    );
    row(
        "queue_page(all, Offset(middle))",
        &time_n(reps, |_| {
            store.queue_page(&all, QueueAnchor::Offset(all_n as usize / 2), page)
        })?,
        &cols,
    );
    row(
        "queue_count(open)",
        &time_n(reps, |_| store.queue_count(&open))?,
        &cols,
    );
    row(
        "queue_count(all)",
        &time_n(reps, |_| store.queue_count(&all))?,
        &cols,
    );
    row(
        "counts(agent) + outbox_counts (status line)",
        &time_n(reps, |_| {
            Ok::<_, braid::store::StoreError>((store.counts(AGENT)?, store.outbox_counts()?))
        })?,
        &cols,
    );
    let sample = sample_contacts(ws, 200)?;
    let n = sample.len();
    row(
        &format!("timeline(contact, newest 101), {n} contacts"),
        &time_n(n, |i| {
            store.timeline(sample[i].0, None, braid::tui::app::TIMELINE_PAGE + 1)
        })?,
        &cols,
    );
    row(
        &format!("profile(contact) + conversation_tags, {n}"),
        &time_n(n, |i| {
            Ok::<_, braid::store::StoreError>((
                store.profile(sample[i].0)?,
                store.conversation_tags(sample[i].1)?,
            ))
        })?,
        &cols,
    );
    row(
        &format!("conversation(id), {n}"),
        &time_n(n, |i| store.conversation(sample[i].1))?,
        &cols,
    );
    Ok(())
}

// ------------------------------------------------------------------------------------- main

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let only = std::env::var("BRAID_BENCH_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let ws = workspace()?;
    let bytes = store_bytes(&ws);
    println!(
        "tui bench: {} messages; store file {:.1} MB ({:.0} bytes/message); {} cores; now = wall clock",
        ws.messages,
        bytes as f64 / 1e6,
        bytes as f64 / ws.messages as f64,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let now = now_millis();
    if wants("first") {
        bench_first_frame(&ws, now)?;
    }
    if wants("keys") {
        bench_keys(&ws, now)?;
    }
    if wants("bursts") {
        bench_bursts(&ws, now)?;
    }
    if wants("search") {
        bench_search(&ws)?;
    }
    if wants("store") {
        bench_store(&ws)?;
    }
    if let Ok(path) = std::env::var("BRAID_BENCH_JSON") {
        let rows = ROWS.lock().map(|r| r.clone()).unwrap_or_default();
        let doc = serde_json::json!({"messages": ws.messages, "rows": rows});
        std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)?;
    }
    if let Some(mb) = peak_rss_mb() {
        println!();
        println!(
            "bench process peak RSS {mb:.1} MB (not the TUI's: scripts/bench-tui.sh measures the real binary)"
        );
    }
    Ok(())
}
