//! `braid rules check` and `braid rules test` end to end: the real binary, a workspace config
//! with its rules.toml beside it, a real store file, and a one-shot server answering the dry
//! run (which writes nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::identity::Claim;
use braid::ingest::{Inbound, Ingested, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind};
use braid::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RULES: &str = r#"
[[rules]]
id = "billing"
name = "Billing questions go to billing"
on = "message_received"
any = [{ words = ["refund", "invoice"] }, { domain = "bigcorp.com" }]
actions = [{ team = "billing" }, { tag = "billing" }, { priority = "high" }]

[[rules]]
id = "sms-vip"
name = "SMS from a VIP"
on = "message_received"
all = [{ channel = "sms" }, { vip = true }]
actions = [{ priority = "urgent" }]
"#;

const CONFIG: &str = r#"
[[teams]]
name = "billing"

[[agents]]
user = "tester"
name = "tester"
role = "admin"
"#;

struct Ws {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    conversation: i64,
    store: PathBuf,
}

fn ws() -> Ws {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let cfgdir = root.join("workspace");
    std::fs::create_dir_all(&cfgdir).unwrap();
    let config = cfgdir.join("braid.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n{CONFIG}", root.join("data").display()),
    )
    .unwrap();
    std::fs::write(cfgdir.join("rules.toml"), RULES).unwrap();
    let mut store = Store::open_dir(&root.join("data")).unwrap();
    let m = Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: "<r1@x.org>".into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, "ann@x.org"),
        linked: vec![],
        customer_name: Some("Ann Lee".into()),
        author: None,
        subject: Some("Invoice 42".into()),
        body: "Hello, the invoice is wrong".into(),
        sent_at: braid::model::now_millis(),
        meta: None,
        cursor: None,
    };
    let conversation = match ingest(&mut store, &m, &Settings::default()).unwrap() {
        Ingested::Stored { conversation, .. } | Ingested::Duplicate { conversation, .. } => {
            conversation.0
        }
    };
    let store_path = store.path().unwrap().to_path_buf();
    Ws {
        _dir: dir,
        root,
        config,
        conversation,
        store: store_path,
    }
}

fn braid(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_LOG")
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("XDG_RUNTIME_DIR", root.join("run"))
        .env("USER", "tester")
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn events(store: &Path) -> i64 {
    let c = rusqlite::Connection::open(store).unwrap();
    c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn check_passes_good_files_and_names_file_line_and_rule_of_a_bad_one() {
    let w = ws();
    let cfg = w.config.to_str().unwrap();
    let ok = braid(&w.root, &["--config", cfg, "rules", "check"]);
    assert!(ok.status.success(), "{}", err(&ok));
    assert_eq!(text(&ok), "ok: 2 rules\n");
    let bad = w.root.join("bad.toml");
    std::fs::write(&bad, RULES.replace("channel = \"sms\"", "chanel = \"sms\"")).unwrap();
    let o = braid(
        &w.root,
        &["--config", cfg, "rules", "check", bad.to_str().unwrap()],
    );
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("bad.toml:9: rule 'sms-vip'") && e.contains("unknown condition 'chanel'"),
        "{e}"
    );
    // An unknown team is caught against the workspace config.
    std::fs::write(
        &bad,
        RULES.replace("team = \"billing\"", "team = \"biling\""),
    )
    .unwrap();
    let o = braid(
        &w.root,
        &["--config", cfg, "rules", "check", bad.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains("team 'biling' is not in the workspace (teams: billing)"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_dry_run_on_a_conversation_explains_and_writes_nothing() {
    let w = ws();
    let before = events(&w.store);
    let n = w.conversation.to_string();
    let o = braid(
        &w.root,
        &[
            "--config",
            w.config.to_str().unwrap(),
            "rules",
            "test",
            "--conversation",
            &n,
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let t = text(&o);
    assert!(
        t.starts_with(&format!("conversation #{n} (Ann Lee):")),
        "{t}"
    );
    assert!(
        t.contains(" ✓  billing — Billing questions go to billing"),
        "{t}"
    );
    assert!(t.contains("found “invoice”"), "{t}");
    assert!(t.contains("would: move to team billing"), "{t}");
    assert!(t.contains("would: tag billing"), "{t}");
    assert!(t.contains(" ✗  sms-vip"), "{t}");
    assert!(t.contains("channel sms (is email) ✗"), "{t}");
    assert!(t.ends_with("1 of 2 rules would run\n"), "{t}");
    assert_eq!(events(&w.store), before, "a dry run writes nothing");
}

#[test]
fn a_dry_run_of_a_message_file_json_and_eml() {
    let w = ws();
    let cfg = w.config.to_str().unwrap();
    let json = w.root.join("m.json");
    std::fs::write(
        &json,
        r#"{"channel": "sms", "from": "+1 555 0100", "text": "refund please \u001b]0;x\u0007"}"#,
    )
    .unwrap();
    let o = braid(
        &w.root,
        &["--config", cfg, "rules", "test", json.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", err(&o));
    let t = text(&o);
    assert!(
        t.starts_with("a message on SMS from +1 555 0100 (as message_received):"),
        "{t}"
    );
    assert!(t.contains(" ✓  billing"), "{t}");
    assert!(
        !t.contains('\u{1b}'),
        "escape sequences are never printed raw"
    );
    let eml = w.root.join("m.eml");
    std::fs::write(
        &eml,
        "From: Boss <boss@eu.bigcorp.com>\r\nTo: support@shop.example\r\nSubject: hello\r\nMessage-ID: <e1@bigcorp.com>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nJust saying hi.\r\n",
    )
    .unwrap();
    let o = braid(
        &w.root,
        &[
            "--config",
            cfg,
            "rules",
            "test",
            eml.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let billing = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "billing")
        .unwrap();
    assert_eq!(billing["matched"], true);
    assert!(
        billing["why"]
            .as_str()
            .unwrap()
            .contains("domain bigcorp.com (has eu.bigcorp.com) ✓"),
        "{billing}"
    );
    // A broken message file is a clear error.
    std::fs::write(&json, "{\"from\": 1}").unwrap();
    let o = braid(
        &w.root,
        &["--config", cfg, "rules", "test", json.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(err(&o).contains("expected {\"channel\""), "{}", err(&o));
}
