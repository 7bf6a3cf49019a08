//! How fast `braid demo` builds a workspace: generates into a temporary store file at 10k and
//! 100k messages (and 1M with `BRAID_BENCH_FULL=1`) and prints messages/s (median of several
//! runs) and the size of the file.
//!
//! `cargo bench --bench demo_generate` (`BRAID_BENCH_RUNS=N` overrides the number of runs;
//! `BRAID_BENCH_ONLY=N` runs one size, N messages for N/10 contacts).

use braid::demo::{DemoOptions, generate};
use braid::model::now_millis;
use braid::store::Store;
use std::time::Duration;

struct Run {
    elapsed: Duration,
    messages: usize,
    bytes: u64,
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
    let report = generate(&mut store, &opts, now_millis(), &mut |_, _| {})?;
    drop(store);
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.path())? {
        bytes += entry?.metadata()?.len();
    }
    Ok(Run {
        elapsed: report.elapsed,
        messages: report.messages,
        bytes,
    })
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
    println!(
        "demo_generate: messages/s of demo::generate into a file store (FTS5 indexing included)"
    );
    for (messages, contacts, runs) in sizes {
        let runs = runs_override.unwrap_or(runs).max(1);
        let mut rates = Vec::with_capacity(runs);
        let mut size = 0;
        for _ in 0..runs {
            let r = run_once(messages, contacts)?;
            rates.push(r.messages as f64 / r.elapsed.as_secs_f64());
            size = r.bytes;
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let path = if messages >= braid::demo::BULK_FROM_MESSAGES {
            "bulk history loader"
        } else {
            "ingest path"
        };
        println!(
            "{messages:>9} messages, {contacts:>6} contacts: median {median:>8.0} msg/s  (min {:.0}, max {:.0}, {runs} runs)  file {:.1} MB ({:.0} bytes/message)  [{path}]",
            rates[0],
            rates[rates.len() - 1],
            size as f64 / 1e6,
            size as f64 / messages as f64,
        );
    }
    Ok(())
}
