//! How fast `braid demo` builds a workspace: generates into a temporary store file at 10k and
//! 100k messages (and 1M with `BRAID_BENCH_FULL=1`) and prints messages/s (median of several
//! runs) and the size of the file.
//!
//! Besides wall-clock rates it prints rates per CPU second, of the writing thread and of the
//! whole process (the full-text index is built on a second thread): on a shared machine those
//! say what the code does when other processes take the cores.
//!
//! `cargo bench --bench demo_generate` (`BRAID_BENCH_RUNS=N` overrides the number of runs;
//! `BRAID_BENCH_ONLY=N` runs one size, N messages for N/10 contacts).

use braid::demo::{BULK_FROM_MESSAGES, DemoOptions, generate};
use braid::model::now_millis;
use braid::store::Store;
use std::time::Duration;

struct Run {
    elapsed: Duration,
    thread_cpu: Duration,
    process_cpu: Duration,
    messages: usize,
    bytes: u64,
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids are constants libc provides.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn run_once(messages: usize, contacts: usize) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("braid.sqlite3");
    let mut store = Store::open(&path)?;
    let opts = DemoOptions {
        messages,
        contacts,
        ..DemoOptions::default()
    };
    let thread0 = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
    let process0 = cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID);
    let report = generate(&mut store, &opts, now_millis(), &mut |_, _| {})?;
    let thread_cpu = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID).saturating_sub(thread0);
    let process_cpu = cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(process0);
    drop(store);
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.path())? {
        bytes += entry?.metadata()?.len();
    }
    Ok(Run {
        elapsed: report.elapsed,
        thread_cpu,
        process_cpu,
        messages: report.messages,
        bytes,
    })
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[n / 2], v[0], v[n - 1])
}

fn main() -> anyhow::Result<()> {
    let full = std::env::var("BRAID_BENCH_FULL").is_ok_and(|v| v == "1");
    let runs_override: Option<usize> = std::env::var("BRAID_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut sizes = vec![(10_000, 1_000, 7), (100_000, 10_000, 3)];
    if full {
        sizes.push((1_000_000, 100_000, 3));
    }
    // `BRAID_BENCH_ONLY=100000`: just that size (profiling).
    if let Some(only) = std::env::var("BRAID_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        sizes = vec![(only, (only / 10).max(1), 1)];
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "demo_generate: messages/s of demo::generate into a file store (FTS5 indexing included); load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (messages, contacts, runs) in sizes {
        let runs = runs_override.unwrap_or(runs).max(1);
        let mut wall = Vec::with_capacity(runs);
        let mut writer = Vec::with_capacity(runs);
        let mut process = Vec::with_capacity(runs);
        let mut size = 0;
        for _ in 0..runs {
            let r = run_once(messages, contacts)?;
            let n = r.messages as f64;
            wall.push(n / r.elapsed.as_secs_f64());
            writer.push(n / r.thread_cpu.as_secs_f64().max(1e-9));
            process.push(n / r.process_cpu.as_secs_f64().max(1e-9));
            size = r.bytes;
        }
        let path = if messages >= BULK_FROM_MESSAGES {
            "bulk history loader"
        } else {
            "ingest path"
        };
        let (w, wmin, wmax) = median(wall);
        let (t, _, _) = median(writer);
        let (p, _, _) = median(process);
        println!(
            "{messages:>9} messages, {contacts:>6} contacts [{path}]: median {w:>7.0} msg/s wall (min {wmin:.0}, max {wmax:.0}, {runs} runs); per CPU second: writer thread {t:.0}, whole process {p:.0}; file {:.1} MB ({:.0} bytes/message)",
            size as f64 / 1e6,
            size as f64 / messages as f64,
        );
    }
    Ok(())
}
