//! `braid import maildir` throughput: generates a deterministic Maildir of realistic mail (plain,
//! multipart/alternative, HTML-only, attachments, encoded-word names and subjects, ISO-8859-1
//! quoted-printable, threads with In-Reply-To/References, a Sent folder with our replies), then
//! imports it into a fresh store file twice (the second run is all duplicates).
//!
//! `cargo bench --bench import` (50,000 messages; `BRAID_BENCH_MESSAGES=N` for another count).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::email::Options;
use braid::channels::email::import::{self, Format};
use braid::ingest::Settings;
use braid::store::Store;
use std::path::Path;
use std::time::Instant;

fn main() {
    let n: usize = std::env::var("BRAID_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().unwrap();
    // BRAID_BENCH_MAILDIR=DIR keeps the generated Maildir there and reuses it next time.
    let maildir = match std::env::var_os("BRAID_BENCH_MAILDIR") {
        Some(d) => Path::new(&d).join(format!("bench-{n}")),
        None => dir.path().join("Maildir"),
    };
    if !maildir.join("cur").exists() {
        let t = Instant::now();
        let bytes = braid::demo::maildir::generate(&maildir, n).unwrap();
        println!(
            "generated {n} messages ({:.1} MB) in {:.1} s",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    let mut store = Store::open(&dir.path().join("braid.sqlite3")).unwrap();
    let options = Options::new("", &["support@braid.test"]);
    for round in ["first import", "re-import (all duplicates)"] {
        let cpu = thread_cpu();
        let report = import::import(
            &mut store,
            Format::Maildir,
            &maildir,
            &options,
            &Settings::default(),
            &mut |_| {},
        )
        .unwrap();
        let writer_cpu = thread_cpu() - cpu;
        let p = report.progress;
        println!(
            "{round}: {} messages ({} new, {} duplicates, {} skipped) in {:.2} s = {:.0} messages/s \
             (writer thread CPU {:.2} s = {:.0} messages/s of CPU)",
            p.done,
            p.stored,
            p.duplicates,
            p.skipped,
            report.elapsed.as_secs_f64(),
            report.rate(),
            writer_cpu,
            p.done as f64 / writer_cpu.max(1e-9)
        );
    }
}

/// CPU seconds used by the calling thread (the store writer during an import; the reader and
/// parser run on a thread of their own).
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
