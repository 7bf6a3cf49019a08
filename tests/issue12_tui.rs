//! The binary end to end for issue 12's newcomer and small items: `braid demo` (its web chat
//! address, `--listen`, a changed `--seed`) and `braid import` stopped by a full disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn braid_cmd(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_braid"));
    c.env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_LOG")
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("USER", "tester")
        .env("TZ", "UTC");
    c
}

fn braid_in(root: &Path, args: &[&str]) -> Output {
    braid_cmd(root).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mbox(path: &Path, first: usize, n: usize) {
    let mut s = String::new();
    for i in first..first + n {
        let body: String = (0..300)
            .map(|w| format!("word{}x{} ", (i * 7 + w * 13) % 5003, w % 17))
            .collect();
        s.push_str(&format!(
            "From p{i}@x.org Mon Jan  1 00:00:00 2024\nFrom: Person {i} <p{i}@x.org>\nTo: me@shop.example\nSubject: Order {i}\nMessage-ID: <m{i}@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n{body}\n\n"
        ));
    }
    std::fs::write(path, s).unwrap();
}

/// Issue 12, item 13: an import stopped by a full disk says how many messages it kept. The
/// disk is made full for real: the file size limit of the process (`ulimit -f`).
#[cfg(unix)]
#[test]
fn a_disk_full_import_says_how_many_messages_were_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("data");
    let d = data.to_str().unwrap();
    let small = root.join("small.mbox");
    mbox(&small, 0, 5);
    let out = braid_in(
        root,
        &["--data-dir", d, "import", "mbox", small.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let biggest = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    let big = root.join("big.mbox");
    mbox(&big, 100, 3000);
    let blocks = (biggest + 1_500_000) / 1024;
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_braid"))
        .args(["--data-dir", d, "import", "mbox", big.to_str().unwrap()])
        .env_remove("BRAID_CONFIG")
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let kept: i64 = err
        .split("kept ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'kept N': {err}"));
    let store = braid::store::Store::open_dir(&data).unwrap();
    assert_eq!(store.message_count().unwrap(), 5 + kept, "{err}");
    // One transaction holds up to 10,000 messages: here the failing one was the first.
    assert!(kept < 3000, "{err}");
    assert!(err.contains("run it again to resume"), "{err}");
}

/// Issue 12, item 14: with the port taken, `braid demo` says so, names the port and how to
/// pick another (`--listen`), and never claims an address it does not serve.
#[test]
fn demo_says_when_its_web_chat_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = root.join("demo");
    let d = d.to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = braid_in(
        root,
        &[
            "demo",
            "--messages",
            "50",
            "--data-dir",
            d,
            "--listen",
            &addr,
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !err.contains("web chat on http"),
        "claims the address: {err}"
    );
    assert!(err.contains(&addr), "names the address: {err}");
    assert!(err.contains("--listen 127.0.0.1:PORT"), "says how: {err}");
    // A free port: no error about it (the TUI then needs a terminal, which a test has not).
    drop(taken);
    let out = braid_in(
        root,
        &[
            "demo",
            "--messages",
            "50",
            "--data-dir",
            d,
            "--listen",
            &addr,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("cannot listen"), "{err}");
    assert!(
        !err.contains("web chat on http"),
        "printed before bound: {err}"
    );
}

/// Issue 12, item 14: `--seed N` on a demo built with another seed rebuilds it (and the same
/// seed again reuses it).
#[test]
fn demo_rebuilds_when_the_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = root.join("demo");
    let d = d.to_str().unwrap();
    let names = |root: &Path| -> Vec<String> {
        let out = braid_in(
            root,
            &["--data-dir", d, "contacts", "--limit", "1000", "--json"],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut n: Vec<String> = v["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let demo = |seed: &str| {
        let out = braid_in(
            root,
            &[
                "demo",
                "--no-tui",
                "--seed",
                seed,
                "--messages",
                "200",
                "--data-dir",
                d,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    demo("7");
    let seven = names(root);
    let err = demo("8");
    assert!(err.contains("seed 7") && err.contains("seed 8"), "{err}");
    let eight = names(root);
    assert_ne!(seven, eight, "rebuilt with the new seed");
    let err = demo("8");
    assert!(err.contains("reusing"), "{err}");
    assert_eq!(names(root), eight);
}
