//! The seams of the house (DESIGN.md, conventions 9 and 10) hold: `scripts/seams.sh` finds no SQL
//! and no `rusqlite` outside `src/store/`, and no channel importing `crate::config`. And the
//! check itself finds what it is meant to find, naming the file and the line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn seams(root: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/seams.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .arg(root)
        .output()
        .expect("bash runs scripts/seams.sh")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

#[test]
fn no_sql_outside_the_store_and_no_channel_imports_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = seams(root, &[]);
    assert!(
        out.status.success(),
        "scripts/seams.sh found a broken seam (DESIGN.md, conventions 9 and 10):\n{}",
        text(&out)
    );
}

#[test]
fn the_check_names_each_broken_seam_by_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Clean files: the store may speak SQL; other modules may say "store" and "query".
    write(
        root,
        "src/store/mod.rs",
        "use rusqlite::Connection;\nfn f(c: &Connection) { c.execute(\"DELETE FROM t\", []).ok(); }\n",
    );
    write(
        root,
        "src/ingest.rs",
        "// calls tx.insert_message, never execute( itself\nfn f(q: &SearchQuery) { tx.prepare_outgoing(q); }\n",
    );
    write(
        root,
        "src/channels/webchat/mod.rs",
        "use super::config::normalize_origin;\nuse crate::units::parse_duration;\n",
    );
    let out = seams(root, &[]);
    assert!(out.status.success(), "{}", text(&out));

    // (a): the driver, a savepoint, a statement; (b): a channel importing config.rs.
    write(
        root,
        "src/identity.rs",
        "use rusqlite::Connection;\n\nfn f(tx: &Tx) {\n    tx.execute_batch(\"SAVEPOINT x\")?;\n    let n = conn.query_row(\"SELECT count(*) FROM t\", [], |r| r.get(0));\n}\n",
    );
    write(
        root,
        "src/demo/mod.rs",
        "const Q: &str = \"INSERT OR IGNORE INTO tags(a) VALUES (?1)\";\n",
    );
    write(
        root,
        "src/channels/email/account.rs",
        "fn d() { crate::config::parse_duration(\"1d\"); }\n",
    );
    write(
        root,
        "src/channels/save.rs",
        "use crate::{\n    config::Config,\n    model::Channel,\n};\n",
    );
    let out = seams(root, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    for at in [
        "src/identity.rs:1:",
        "src/identity.rs:4:",
        "src/identity.rs:5:",
        "src/demo/mod.rs:1:",
        "src/channels/email/account.rs:1:",
        "src/channels/save.rs:2:",
    ] {
        assert!(t.contains(at), "{at} not reported:\n{t}");
    }
    assert!(
        !t.contains("src/store/mod.rs"),
        "the store may speak SQL:\n{t}"
    );
    assert!(!t.contains("src/ingest.rs"), "a comment is not code:\n{t}");
    assert!(
        !t.contains("webchat"),
        "the channel's own config module:\n{t}"
    );
}

#[test]
fn client_imports_are_reported_and_fatal_only_with_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "src/tui/app.rs",
        "use crate::api::Client;\nuse crate::store::QueueRow;\n",
    );
    write(
        root,
        "src/cli/list.rs",
        "use crate::{\n    api,\n    worker::Lease,\n};\nfn f() { crate::feed::spawn(); }\n",
    );
    let out = seams(root, &[]);
    let t = text(&out);
    assert!(out.status.success(), "report-only by default:\n{t}");
    for at in [
        "src/tui/app.rs:2:",
        "src/cli/list.rs:3:",
        "src/cli/list.rs:5:",
    ] {
        assert!(t.contains(at), "{at} not reported:\n{t}");
    }
    assert!(!t.contains("src/tui/app.rs:1:"), "{t}");
    let out = seams(root, &["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn the_server_side_commands_in_cli_are_exempt_from_the_client_seam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for f in ["import", "sync", "demo", "server", "attach", "connect"] {
        write(
            root,
            &format!("src/cli/{f}.rs"),
            "use crate::worker::Lease;\nfn f() { crate::store::Store::open_dir(d); }\n",
        );
    }
    // A file named like one, elsewhere, is not exempt.
    write(root, "src/cli/syncx.rs", "use crate::worker::Lease;\n");
    let out = seams(root, &["--strict"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("src/cli/syncx.rs:1:"), "{t}");
    for f in ["import", "sync", "demo", "server", "attach", "connect"] {
        assert!(
            !t.contains(&format!("src/cli/{f}.rs")),
            "{f} reported:\n{t}"
        );
    }
}

#[test]
fn the_cli_commands_are_clients_of_the_api_only() {
    // Every CLI command that reads or changes conversations goes through crate::api (issue 13,
    // item 7): with --strict, nothing under src/cli/ is reported.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = text(&seams(root, &["--strict"]));
    let cli: Vec<&str> = t.lines().filter(|l| l.contains("src/cli/")).collect();
    assert!(
        cli.is_empty(),
        "CLI files import below the api:\n{}",
        cli.join("\n")
    );
}
