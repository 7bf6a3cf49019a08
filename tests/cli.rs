//! The `braid` binary end to end: every subcommand in text and JSON on a store populated through
//! the library, global flags before and after the subcommand, exit codes and one-line errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind};
use braid::store::Store;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DAY: i64 = 86_400_000;

struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    /// Ann's conversation (email then Telegram, one contact).
    ann: i64,
    /// Bob's conversation (web chat).
    bob: i64,
}

#[allow(clippy::too_many_arguments)]
fn msg(
    channel: Channel,
    id: &str,
    customer: Claim,
    linked: Vec<Claim>,
    name: &str,
    subject: Option<&str>,
    body: &str,
    at: i64,
) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer,
        linked,
        customer_name: Some(name.into()),
        author: None,
        subject: subject.map(String::from),
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

fn conversation_of(r: braid::ingest::Ingested) -> i64 {
    match r {
        braid::ingest::Ingested::Stored { conversation, .. } => conversation.0,
        braid::ingest::Ingested::Duplicate { conversation, .. } => conversation.0,
    }
}

/// Ann writes by email, then on Telegram (sharing her email: one contact, one conversation);
/// Bob writes on web chat.
fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let data = root.join("data");
    let mut store = Store::open_dir(&data).unwrap();
    let now = braid::model::now_millis();
    let s = Settings::default();
    let ann_mail = Claim::new(IdentityKind::Email, "ann@x.org");
    let a = ingest(
        &mut store,
        &msg(
            Channel::Email,
            "<m1@x.org>",
            ann_mail.clone(),
            vec![],
            "Ann Lee",
            Some("Refund for order 1234"),
            "Hello,\nwhere is my refund for order 1234?",
            now - 2 * DAY,
        ),
        &s,
    )
    .unwrap();
    let a2 = ingest(
        &mut store,
        &msg(
            Channel::Telegram,
            "tg-1",
            Claim::new(IdentityKind::Telegram, "4242"),
            vec![ann_mail],
            "Ann Lee",
            None,
            "Any news about the refund? This is Ann from the email.",
            now - DAY,
        ),
        &s,
    )
    .unwrap();
    assert_eq!(conversation_of(a), conversation_of(a2));
    let b = ingest(
        &mut store,
        &msg(
            Channel::WebChat,
            "w-1",
            Claim::new(IdentityKind::WebChat, "visitor-77"),
            vec![],
            "Bob Stone",
            None,
            "Do you ship the blue jacket in size L?",
            now - 3_600_000,
        ),
        &s,
    )
    .unwrap();
    Workspace {
        _dir: dir,
        root,
        data,
        ann: conversation_of(a),
        bob: conversation_of(b),
    }
}

impl Workspace {
    /// `braid --data-dir DATA args...` in a hermetic environment.
    fn braid(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = vec!["--data-dir", self.data.to_str().unwrap()];
        all.extend_from_slice(args);
        self.braid_raw(&all)
    }

    fn braid_raw(&self, args: &[&str]) -> Output {
        braid_in(&self.root, args)
    }
}

fn braid_in(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_LOG")
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("USER", "tester")
        .env("TZ", "UTC")
        // The personal server's socket is then `<data dir>/braid.sock`: hermetic.
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("BRAID_SOCKET")
        .env_remove("BRAID_REMOTE")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The one-line error of a failed run.
fn fails(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got success");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "error is not one line: {err:?}");
    assert!(err.starts_with("braid: "), "{err}");
    assert!(
        out.stdout.is_empty(),
        "stdout on error: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    err.trim_end().to_string()
}

#[test]
fn status_text_and_json() {
    let w = workspace();
    let text = ok(&w.braid(&["status"]));
    assert!(text.contains("2 open"), "{text}");
    assert!(text.contains(w.data.to_str().unwrap()), "{text}");
    assert!(text.contains("tester"), "{text}");

    let v = json(&w.braid(&["status", "--json"]));
    assert_eq!(v["agent"], "tester");
    assert_eq!(v["data_dir"], w.data.to_str().unwrap());
    assert_eq!(v["conversations"]["open"], 2);
    assert_eq!(v["conversations"]["unassigned"], 2);
    assert_eq!(v["conversations"]["total"], 2);
    assert_eq!(v["outbox"]["waiting"], 0);
    assert_eq!(v["worker"]["running"], false);
    assert_eq!(v["demo"], false);
    assert!(v["schema_version"].as_i64().unwrap() >= 1);
    assert!(v["config"].is_null());
    // No server runs: the command started one in its own process; its user is the owner.
    assert_eq!(v["server"]["transport"], "in-process");
    assert!(v["server"]["socket"].is_null());
    assert_eq!(v["role"], "admin");
    assert!(
        v["store"]
            .as_str()
            .unwrap()
            .starts_with(w.data.to_str().unwrap())
    );
    assert!(text.contains("server    in-process"), "{text}");
    assert!(text.contains("agent     tester (admin"), "{text}");
}

#[test]
fn status_json_counts_sla_breaches_and_due_soon_per_team() {
    let w = workspace();
    let v = json(&w.braid(&["status", "--json"]));
    assert_eq!(v["sla"], serde_json::json!([]));
    let now = braid::model::now_millis();
    let mut store = Store::open_dir(&w.data).unwrap();
    let policy = |name: &str, ms: i64| braid::sla::Policy {
        name: name.into(),
        first_response: Some(ms),
        next_response: None,
        resolution: None,
        hours: None,
        warn_before: 3 * 3_600_000,
    };
    let cfg = braid::sla::SlaConfig {
        // Ann waits since 2 days: 1h is long past. Bob since 1h: due in 2h, within warn.
        policies: vec![policy("fast", 3_600_000), policy("slow", 3 * 3_600_000)],
        ..Default::default()
    };
    let (ann, bob) = (
        braid::model::ConversationId(w.ann),
        braid::model::ConversationId(w.bob),
    );
    store
        .set_conversation_team(ann, Some("billing"), "t", now)
        .unwrap();
    store
        .apply_sla_by_name(ann, &cfg, "fast", now, "t")
        .unwrap();
    store
        .apply_sla_by_name(bob, &cfg, "slow", now, "t")
        .unwrap();
    store.sla_sweep(&cfg, now).unwrap();
    drop(store);
    let v = json(&w.braid(&["status", "--json"]));
    assert_eq!(
        v["sla"],
        serde_json::json!([
            { "team": null, "breached": 0, "due_soon": 1 },
            { "team": "billing", "breached": 1, "due_soon": 0 },
        ])
    );
}

#[test]
fn list_text_and_json() {
    let w = workspace();
    let text = ok(&w.braid(&["list"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("ID") && lines[0].contains("CONTACT"),
        "{text}"
    );
    // newest activity first: Bob (1h ago), then Ann (1d ago)
    assert!(lines[1].contains("Bob Stone"), "{text}");
    assert!(
        lines[2].contains("Ann Lee") && lines[2].contains("email,telegram"),
        "{text}"
    );
    assert!(text.contains("open: 2 of 2 conversations"), "{text}");

    let v = json(&w.braid(&["list", "--json"]));
    assert_eq!(v["view"], "open");
    assert_eq!(v["total"], 2);
    let convs = v["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 2);
    assert_eq!(convs[1]["id"], w.ann);
    assert_eq!(convs[1]["contact_name"], "Ann Lee");
    assert_eq!(
        convs[1]["channels"],
        serde_json::json!(["email", "telegram"])
    );
    assert_eq!(convs[1]["last_channel"], "telegram");
    assert_eq!(convs[1]["status"], "open");
    assert_eq!(convs[1]["message_count"], 2);
    assert!(convs[1]["last_activity"].as_str().unwrap().ends_with('Z'));

    let v = json(&w.braid(&["list", "--limit", "1", "--json"]));
    assert_eq!(v["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(v["total"], 2);

    let v = json(&w.braid(&["list", "--status", "resolved", "--json"]));
    assert_eq!(v["conversations"].as_array().unwrap().len(), 0);
    assert!(ok(&w.braid(&["list", "--status", "resolved"])).contains("no conversations"));

    let v = json(&w.braid(&["list", "--view", "unassigned", "--json"]));
    assert_eq!(v["view"], "unassigned");
    assert_eq!(v["total"], 2);

    let err = fails(&w.braid(&["list", "--status", "closed"]));
    assert!(err.contains("unknown status 'closed'"), "{err}");
    let err = fails(&w.braid(&["list", "--view", "nope"]));
    assert!(err.contains("unknown view 'nope'"), "{err}");
}

#[test]
fn show_prints_the_unified_timeline() {
    let w = workspace();
    let id = w.ann.to_string();
    let text = ok(&w.braid(&["show", &id]));
    assert!(
        text.contains(&format!("Conversation #{} · open", w.ann)),
        "{text}"
    );
    assert!(text.contains("email     ann@x.org"), "{text}");
    assert!(text.contains("telegram  4242"), "{text}");
    assert!(text.contains("Subject   Refund for order 1234"), "{text}");
    let mail = text.find("where is my refund").unwrap();
    let tg = text.find("Any news about the refund").unwrap();
    assert!(mail < tg, "oldest first:\n{text}");
    assert!(text.contains("  email     in    Ann Lee"), "{text}");
    assert!(text.contains("  telegram  in    Ann Lee"), "{text}");

    // `#12` works too
    let v = json(&w.braid(&["show", &format!("#{}", w.ann), "--json"]));
    assert_eq!(v["conversation"]["id"], w.ann);
    assert_eq!(v["conversation"]["tags"], serde_json::json!([]));
    assert_eq!(v["contact"]["name"], "Ann Lee");
    assert_eq!(v["contact"]["conversation_count"], 1);
    assert_eq!(v["contact"]["message_count"], 2);
    assert_eq!(
        v["contact"]["channels"],
        serde_json::json!(["email", "telegram"])
    );
    let kinds: Vec<&str> = v["contact"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["email", "telegram"]);
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["channel"], "email");
    assert_eq!(msgs[0]["direction"], "in");
    assert_eq!(msgs[0]["author"], "Ann Lee");
    assert_eq!(msgs[0]["subject"], "Refund for order 1234");
    assert!(msgs[0]["delivery"].is_null());
    assert_eq!(msgs[1]["channel"], "telegram");
    assert!(msgs[0]["at"].as_str().unwrap() < msgs[1]["at"].as_str().unwrap());
}

#[test]
fn show_pages_through_a_long_timeline() {
    let w = workspace();
    {
        let mut store = Store::open_dir(&w.data).unwrap();
        let now = braid::model::now_millis();
        for i in 0..450 {
            ingest(
                &mut store,
                &msg(
                    Channel::Telegram,
                    &format!("long-{i}"),
                    Claim::new(IdentityKind::Telegram, "4242"),
                    vec![],
                    "Ann Lee",
                    None,
                    &format!("message number {i}"),
                    now - 10 * DAY + i as i64 * 1000,
                ),
                &Settings::default(),
            )
            .unwrap();
        }
    }
    let v = json(&w.braid(&["show", &w.ann.to_string(), "--json"]));
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 452);
    let ids: Vec<i64> = msgs.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 452, "no message twice");
    assert_eq!(msgs[0]["body"], "message number 0");
    assert_eq!(msgs[449]["body"], "message number 449");
    let times: Vec<&str> = msgs.iter().map(|m| m["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|p| p[0] <= p[1]), "oldest first");
}

#[test]
fn search_text_and_json() {
    let w = workspace();
    let text = ok(&w.braid(&["search", "refund"]));
    assert!(text.contains(&format!("#{}", w.ann)), "{text}");
    assert!(text.contains("Ann Lee"), "{text}");
    assert!(
        text.contains("telegram") && text.contains("email"),
        "{text}"
    );
    assert!(text.to_lowercase().contains("«refund»"), "{text}");

    let v = json(&w.braid(&["search", "refund", "--json"]));
    assert_eq!(v["query"], "refund");
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    for h in hits {
        assert_eq!(h["conversation_id"], w.ann);
        assert_eq!(h["contact_name"], "Ann Lee");
        assert!(h["message_id"].is_i64());
        assert!(h["at"].as_str().unwrap().ends_with('Z'));
        assert!(
            h["snippet"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("«refund»")
        );
    }
    // newest first
    assert_eq!(hits[0]["channel"], "telegram");
    assert_eq!(hits[1]["channel"], "email");

    // several words and filters
    let v = json(&w.braid(&["search", "refund", "channel:email", "--json"]));
    assert_eq!(v["hits"].as_array().unwrap().len(), 1);
    let v = json(&w.braid(&["search", "jacket", "--limit", "5", "--json"]));
    assert_eq!(v["hits"][0]["conversation_id"], w.bob);
    assert_eq!(v["hits"][0]["channel"], "webchat");

    assert!(ok(&w.braid(&["search", "zebra"])).contains("no matches"));
    let err = fails(&w.braid(&["search", "after:yesterday"]));
    assert!(err.contains("bad date"), "{err}");
}

#[test]
fn reply_queues_on_the_customers_last_channel() {
    let w = workspace();
    let id = w.ann.to_string();
    let text = ok(&w.braid(&["reply", &id, "--text", "Your refund is on its way."]));
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("queued #") && first.ends_with("via telegram to 4242"),
        "{text}"
    );
    assert!(text.contains("no worker is running"), "{text}");

    let v = json(&w.braid(&[
        "reply",
        &id,
        "--text",
        "Also by email.",
        "--via",
        "email",
        "--json",
    ]));
    assert_eq!(v["conversation_id"], w.ann);
    assert_eq!(v["channel"], "email");
    assert_eq!(v["recipient"], "ann@x.org");
    assert_eq!(v["delivery"], "queued");
    assert_eq!(v["author"], "tester");
    assert!(v["message_id"].is_i64());

    // Both are in the timeline, queued, and in the outbox.
    let shown = json(&w.braid(&["show", &id, "--json"]));
    let msgs = shown["messages"].as_array().unwrap();
    let out: Vec<&Value> = msgs.iter().filter(|m| m["direction"] == "out").collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["channel"], "email");
    assert_eq!(out[1]["delivery"], "queued");
    assert_eq!(out[1]["author"], "tester");
    assert_eq!(out[1]["subject"], "Re: Refund for order 1234");
    let text = ok(&w.braid(&["show", &id]));
    assert!(text.contains("out   tester · queued"), "{text}");
    let st = json(&w.braid(&["status", "--json"]));
    assert_eq!(st["outbox"]["waiting"], 2);

    // Text from stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args([
            "--data-dir",
            w.data.to_str().unwrap(),
            "reply",
            &id,
            "--text",
            "-",
            "--json",
        ])
        .env("USER", "tester")
        .env("XDG_CONFIG_HOME", w.root.join("xdg-config"))
        .env_remove("BRAID_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"From a pipe.\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&ok_bytes(&out)).unwrap();
    assert_eq!(v["channel"], "telegram");
}

fn ok_bytes(out: &Output) -> Vec<u8> {
    ok(out).into_bytes()
}

#[test]
fn reply_errors_are_one_line() {
    let w = workspace();
    let err = fails(&w.braid(&["reply", "999", "--text", "hi"]));
    assert_eq!(err, "braid: no conversation #999");

    let err = fails(&w.braid(&["reply", &w.ann.to_string(), "--text", "hi", "--via", "fax"]));
    assert_eq!(
        err,
        "braid: unknown channel 'fax' (one of: email, telegram, webchat, whatsapp, instagram, messenger, sms, phone, event)"
    );

    // Bob only has a web-chat identity.
    let err = fails(&w.braid(&[
        "reply",
        &w.bob.to_string(),
        "--text",
        "hi",
        "--via",
        "email",
    ]));
    assert!(err.contains("Bob Stone has no email address"), "{err}");
    assert!(err.contains("usable: webchat"), "{err}");

    let err = fails(&w.braid(&["reply", &w.ann.to_string(), "--text", "  "]));
    assert!(err.contains("empty reply"), "{err}");

    let err = fails(&w.braid(&["reply", "abc", "--text", "hi"]));
    assert!(err.contains("bad conversation 'abc'"), "{err}");

    // A usage error (missing --text) is one line too, exit code 2.
    let out = w.braid(&["reply", "1"]);
    let err = fails(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("--text"), "{err}");

    // Nothing was queued by the failures.
    let st = json(&w.braid(&["status", "--json"]));
    assert_eq!(st["outbox"]["waiting"], 0);
}

#[test]
fn show_and_note_errors() {
    let w = workspace();
    let out = w.braid(&["show", "999"]);
    assert_eq!(fails(&out), "braid: no conversation #999");
    assert_eq!(out.status.code(), Some(1));
    // With --json the error is a JSON object (json_errors_are_json).
    let out = w.braid(&["show", "#999", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim_end(),
        r#"{"error":"no conversation #999"}"#
    );
    assert_eq!(
        fails(&w.braid(&["note", "999", "--text", "x"])),
        "braid: no conversation #999"
    );
}

#[test]
fn note_text_and_json() {
    let w = workspace();
    let id = w.bob.to_string();
    let text = ok(&w.braid(&[
        "note",
        &id,
        "--text",
        "Checked stock: size L is back Monday.",
    ]));
    assert!(text.starts_with("noted #"), "{text}");
    assert!(
        text.contains(&format!("on conversation #{}", w.bob)),
        "{text}"
    );

    let v = json(&w.braid(&["note", &id, "--text", "second", "--json"]));
    assert_eq!(v["conversation_id"], w.bob);
    assert_eq!(v["author"], "tester");

    let shown = json(&w.braid(&["show", &id, "--json"]));
    let notes: Vec<&Value> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "note")
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(notes[0]["delivery"].is_null());
    let text = ok(&w.braid(&["show", &id]));
    assert!(text.contains("note  note by tester"), "{text}");
    // Escape sequences typed into a note never reach the terminal through `show`.
    ok(&w.braid(&[
        "note",
        &id,
        "--text",
        "evil \x1b]0;pwned\x07 \x1b[31mred\u{202e}",
    ]));
    let text = ok(&w.braid(&["show", &id]));
    assert!(text.contains("evil"), "{text}");
    assert!(
        !text.contains('\x1b') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    let v = json(&w.braid(&["show", &id, "--json"]));
    let last = v["messages"].as_array().unwrap().last().unwrap().clone();
    assert!(!last["body"].as_str().unwrap().contains('\x1b'), "{last}");
    // A note does not queue anything.
    assert_eq!(
        json(&w.braid(&["status", "--json"]))["outbox"]["waiting"],
        0
    );
}

#[test]
fn contacts_text_and_json() {
    let w = workspace();
    let text = ok(&w.braid(&["contacts"]));
    assert!(text.contains("Ann Lee"), "{text}");
    assert!(
        text.contains("email:ann@x.org") && text.contains("telegram:4242"),
        "{text}"
    );
    assert!(text.contains("webchat:visitor-77"), "{text}");
    assert!(text.contains("2 contacts"), "{text}");

    let v = json(&w.braid(&["contacts", "--json"]));
    let cs = v["contacts"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["name"], "Ann Lee");
    assert_eq!(cs[0]["identities"].as_array().unwrap().len(), 2);
    assert_eq!(cs[0]["identities"][0]["kind"], "email");
    assert_eq!(cs[0]["identities"][0]["value"], "ann@x.org");
    assert_eq!(cs[1]["last_channel"], "webchat");
    assert!(v["next_after"].is_null());

    // Keyset paging.
    let p1 = json(&w.braid(&["contacts", "--limit", "1", "--json"]));
    assert_eq!(p1["contacts"].as_array().unwrap().len(), 1);
    let after = p1["next_after"].as_i64().unwrap();
    let p2 = json(&w.braid(&[
        "contacts",
        "--limit",
        "1",
        "--after",
        &after.to_string(),
        "--json",
    ]));
    assert_eq!(p2["contacts"][0]["name"], "Bob Stone");
}

#[test]
fn global_flags_before_or_after_the_subcommand() {
    let w = workspace();
    let data = w.data.to_str().unwrap();
    let before = json(&w.braid_raw(&["--data-dir", data, "list", "--json"]));
    let after = json(&w.braid_raw(&["list", "--json", "--data-dir", data]));
    assert_eq!(before, after);
    assert_eq!(after["total"], 2);

    // BRAID_DATA_DIR works too.
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["status", "--json"])
        .env("BRAID_DATA_DIR", data)
        .env_remove("BRAID_CONFIG")
        .env("XDG_CONFIG_HOME", w.root.join("xdg-config"))
        .output()
        .unwrap();
    assert_eq!(json(&out)["conversations"]["total"], 2);

    // --config before and after.
    let cfg = w.root.join("c.toml");
    std::fs::write(&cfg, "agent = \"zoe\"\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let v = json(&w.braid_raw(&["--config", cfg, "status", "--json", "--data-dir", data]));
    assert_eq!(v["agent"], "zoe");
    assert_eq!(v["config"], cfg);
    let v = json(&w.braid_raw(&["status", "--config", cfg, "--json", "--data-dir", data]));
    assert_eq!(v["agent"], "zoe");
}

#[test]
fn config_errors_name_the_key_and_the_line() {
    let w = workspace();
    let cfg = w.root.join("bad.toml");
    std::fs::write(
        &cfg,
        "agent = \"a\"\n\n[theme]\naccent = \"red\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let err = fails(&w.braid(&["--config", cfg.to_str().unwrap(), "status"]));
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("`colour`"), "{err}");

    std::fs::write(&cfg, "[theme]\nemail = \"yelow\"\n").unwrap();
    let err = fails(&w.braid(&["--config", cfg.to_str().unwrap(), "list"]));
    assert!(
        err.contains("line 2") && err.contains("theme.email"),
        "{err}"
    );

    // From the XDG config dir, without --config.
    let xdg = w.root.join("xdg-config/braid");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(
        xdg.join("config.toml"),
        "agent = \"a\"\nreopen_window = \"soon\"\n",
    )
    .unwrap();
    let err = fails(&w.braid(&["status"]));
    assert!(
        err.contains("line 2") && err.contains("reopen_window"),
        "{err}"
    );

    // A world-readable config holding a plain secret is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let cfg = w.root.join("secret.toml");
        std::fs::write(&cfg, "[channels.telegram]\nbot_token = \"123:abc\"\n").unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fails(&w.braid(&["--config", cfg.to_str().unwrap(), "status"]));
        assert!(err.contains("readable by everyone"), "{err}");
        assert!(err.contains("channels.telegram.bot_token"), "{err}");
    }

    let err = fails(&w.braid(&["--config", "/nonexistent/braid.toml", "status"]));
    assert!(err.contains("/nonexistent/braid.toml"), "{err}");
}

#[test]
fn logs_go_to_the_data_dir_not_stdout() {
    let w = workspace();
    ok(&w.braid(&["note", &w.ann.to_string(), "--text", "logged"]));
    let log = std::fs::read_to_string(w.data.join("braid.log")).unwrap();
    assert!(log.contains("note added from the CLI"), "{log}");
}

#[test]
fn the_cli_works_while_another_connection_holds_the_store() {
    let w = workspace();
    // A second connection (like a TUI) keeps the store open and has read from it.
    let store = Store::open_dir(&w.data).unwrap();
    let _ = store.counts("x").unwrap();
    ok(&w.braid(&["note", &w.ann.to_string(), "--text", "while open"]));
    ok(&w.braid(&["reply", &w.ann.to_string(), "--text", "while open"]));
    // and the open connection sees the CLI's writes
    let conv = store
        .conversation(braid::model::ConversationId(w.ann))
        .unwrap();
    assert_eq!(conv.message_count, 4);
}

#[test]
fn help_and_version_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = braid_in(dir.path(), &["--help"]);
    let text = ok(&out);
    for cmd in [
        "demo", "serve", "status", "list", "show", "search", "reply", "note", "contacts",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from help:\n{text}");
    }
    assert!(ok(&braid_in(dir.path(), &["--version"])).contains("braid"));
    let out = braid_in(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    fails(&out);
}

#[test]
fn demo_builds_a_workspace_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let d = data.to_str().unwrap();
    let out = braid_in(
        dir.path(),
        &["demo", "--no-tui", "--seed", "7", "--data-dir", d],
    );
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("messages/s"), "{err}");
    let first = json(&braid_in(
        dir.path(),
        &["--data-dir", d, "status", "--json"],
    ));
    assert_eq!(first["demo"], true);
    let total = first["conversations"]["total"].as_i64().unwrap();
    assert!(total > 0);
    let contacts = json(&braid_in(
        dir.path(),
        &["--data-dir", d, "contacts", "--limit", "1000", "--json"],
    ));
    let n_contacts = contacts["contacts"].as_array().unwrap().len();
    // about 300 contacts by default (--limit pages through them)
    assert!((250..=350).contains(&n_contacts), "{n_contacts}");

    // Again: reused, not duplicated.
    let out = braid_in(
        dir.path(),
        &["--data-dir", d, "demo", "--no-tui", "--seed", "7"],
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("reusing"));
    let second = json(&braid_in(
        dir.path(),
        &["--data-dir", d, "status", "--json"],
    ));
    assert_eq!(second["conversations"]["total"], total);
}

#[test]
fn demo_defaults_to_its_own_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = braid_in(
        dir.path(),
        &["demo", "--no-tui", "--seed", "7", "--messages", "200"],
    );
    ok(&out);
    assert!(
        dir.path()
            .join("xdg-data/braid/demo/braid.sqlite3")
            .exists()
    );
    // The real data dir is untouched.
    assert!(!dir.path().join("xdg-data/braid/braid.sqlite3").exists());
}

/// A `braid server` process on a workspace's data dir, stopped (SIGINT) when dropped.
struct ServerProcess {
    child: Option<std::process::Child>,
    socket: PathBuf,
}

impl ServerProcess {
    /// `braid server --data-dir DATA [args]`; waits until it listens on its socket.
    fn start(w: &Workspace, args: &[&str]) -> ServerProcess {
        ServerProcess::start_on(w, &w.data.join("braid.sock"), args)
    }

    /// The same, listening on `socket` (give `--socket` in `args` too).
    fn start_on(w: &Workspace, socket: &Path, args: &[&str]) -> ServerProcess {
        let socket = socket.to_path_buf();
        let mut all = vec!["server", "--data-dir", w.data.to_str().unwrap()];
        all.extend_from_slice(args);
        let child = Command::new(env!("CARGO_BIN_EXE_braid"))
            .args(&all)
            .env_remove("BRAID_CONFIG")
            .env_remove("BRAID_DATA_DIR")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("BRAID_SOCKET")
            .env("HOME", w.root.join("home"))
            .env("XDG_CONFIG_HOME", w.root.join("xdg-config"))
            .env("USER", "tester")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = ServerProcess {
            child: Some(child),
            socket,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&server.socket).is_err() {
            if let Some(st) = server.child.as_mut().unwrap().try_wait().unwrap() {
                let out = server.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "braid server exited ({st}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "braid server never listened on {}",
                server.socket.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Ctrl-C, and what it said.
    fn stop(mut self) -> Output {
        let child = self.child.take().unwrap();
        let killed = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        child.wait_with_output().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The Unix user running the tests (what the kernel tells a server about its clients).
fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[cfg(unix)]
#[test]
fn a_braid_server_serves_cli_commands_over_its_socket_until_interrupted() {
    let w = workspace();
    let server = ServerProcess::start(&w, &[]);
    let socket = server.socket.to_str().unwrap().to_string();

    // A CLI command run meanwhile is a client of that server, over its socket: the server's
    // pid answers, and the worker it runs is the one that sends.
    let st = json(&w.braid(&["status", "--json"]));
    assert_eq!(st["server"]["transport"], "socket", "{st}");
    assert_eq!(st["server"]["socket"], socket.as_str());
    assert_eq!(st["server"]["pid"], server.pid());
    assert_eq!(st["worker"]["running"], true);
    assert_eq!(st["worker"]["pid"], server.pid());
    assert_eq!(st["agent"], "tester");
    assert_eq!(st["role"], "admin");
    let text = ok(&w.braid(&["status"]));
    assert!(
        text.contains(&format!("server    socket {socket} (pid {})", server.pid())),
        "{text}"
    );
    assert!(text.contains("running in the server"), "{text}");

    // A reply queued now says a worker will send it.
    let v = json(&w.braid(&["reply", &w.bob.to_string(), "--text", "hi", "--json"]));
    assert_eq!(v["worker_running"], true);
    assert_eq!(v["author"], "tester");
    // A personal config that claims another agent changes nothing: the server's user is its
    // owner's agent.
    let mallory = w.root.join("mallory.toml");
    std::fs::write(&mallory, "agent = \"mallory\"\n").unwrap();
    let v = json(&w.braid(&[
        "--config",
        mallory.to_str().unwrap(),
        "reply",
        &w.bob.to_string(),
        "--text",
        "again",
        "--json",
    ]));
    assert_eq!(v["author"], "tester", "{v}");
    assert_eq!(
        json(&w.braid(&["list", "--json"]))["total"],
        2,
        "list over the socket"
    );

    // The server-side commands that write the store refuse while it runs: one line each.
    let err = fails(&w.braid(&["sync", "--once"]));
    assert!(
        err.contains(&format!("a braid server runs on {}", w.data.display()))
            && err.contains("sync is for when none runs"),
        "{err}"
    );
    let maildir = w.root.join("Mail");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(d)).unwrap();
    }
    let err = fails(&w.braid(&["import", "maildir", maildir.to_str().unwrap()]));
    assert!(err.contains("a braid server runs on"), "{err}");

    let pid = server.pid();
    let out = server.stop();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{err}", out.status);
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!(
            "braid server: serving {} on {socket}",
            w.data.display()
        )),
        "{err}"
    );
    // No server now: the command runs one in its own process, which runs no channels.
    let st = json(&w.braid(&["status", "--json"]));
    assert_eq!(st["server"]["transport"], "in-process");
    assert!(st["server"]["socket"].is_null());
    assert_ne!(st["server"]["pid"], pid);
    assert_eq!(st["worker"]["running"], false);
    assert!(st["worker"]["pid"].is_null());
}

#[cfg(unix)]
#[test]
fn the_server_not_the_personal_config_says_who_replies() {
    let w = workspace();
    // The workspace config (the server's): this Unix user is the agent "ann".
    let ws = w.root.join("workspace.toml");
    std::fs::write(
        &ws,
        format!(
            "[[teams]]\nname = \"support\"\n\n[[agents]]\nuser = \"{}\"\nname = \"ann\"\nrole = \"agent\"\nteams = [\"support\"]\n",
            me()
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&w, &["--config", ws.to_str().unwrap()]);
    // A personal config that claims to be someone else.
    let mine = w.root.join("mallory.toml");
    std::fs::write(&mine, "agent = \"mallory\"\n").unwrap();
    let as_mallory = |args: &[&str]| {
        let mut all = vec!["--config", mine.to_str().unwrap()];
        all.extend_from_slice(args);
        w.braid(&all)
    };
    let id = w.ann.to_string();
    let v = json(&as_mallory(&[
        "reply",
        &id,
        "--text",
        "On its way.",
        "--json",
    ]));
    assert_eq!(v["author"], "ann", "{v}");
    let v = json(&as_mallory(&["note", &id, "--text", "checked", "--json"]));
    assert_eq!(v["author"], "ann", "{v}");
    let text = ok(&as_mallory(&["assign", &id, "me"]));
    assert!(text.contains("assigned to ann"), "{text}");

    let st = json(&as_mallory(&["status", "--json"]));
    assert_eq!(st["agent"], "ann");
    assert_eq!(st["role"], "agent");
    assert_eq!(st["teams"], serde_json::json!(["support"]));
    assert_eq!(st["user"], me().as_str());
    assert_eq!(st["server"]["pid"], server.pid());
    let text = ok(&as_mallory(&["status"]));
    assert!(
        text.contains(&format!(
            "agent     ann (agent · teams support, Unix user {})",
            me()
        )),
        "{text}"
    );
    let v = json(&as_mallory(&["list", "--view", "mine", "--json"]));
    assert_eq!(v["conversations"][0]["id"], w.ann, "{v}");
    drop(server);

    // What is stored says so too: nothing was written as mallory.
    let store = Store::open_dir(&w.data).unwrap();
    let rows = store
        .timeline(
            store
                .conversation(braid::model::ConversationId(w.ann))
                .unwrap()
                .contact_id,
            None,
            100,
        )
        .unwrap();
    let ours: Vec<&str> = rows
        .iter()
        .filter(|m| m.direction != Direction::In)
        .map(|m| m.author.as_str())
        .collect();
    assert_eq!(ours, ["ann", "ann"]);
    assert_eq!(
        store
            .conversation(braid::model::ConversationId(w.ann))
            .unwrap()
            .assignee
            .as_deref(),
        Some("ann")
    );
}

#[cfg(unix)]
#[test]
fn a_viewer_is_refused_on_the_cli_path_and_nothing_changes() {
    let w = workspace();
    let ws = w.root.join("workspace.toml");
    std::fs::write(
        &ws,
        format!(
            "[[agents]]\nuser = \"{}\"\nname = \"vic\"\nrole = \"viewer\"\n",
            me()
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&w, &["--config", ws.to_str().unwrap()]);
    let before = json(&w.braid(&["show", &w.ann.to_string(), "--json"]));
    let id = w.ann.to_string();
    for args in [
        vec!["note", id.as_str(), "--text", "x"],
        vec!["reply", id.as_str(), "--text", "x"],
        vec!["assign", id.as_str(), "me"],
        vec!["resolve", id.as_str()],
        vec!["tag", id.as_str(), "billing"],
    ] {
        let out = w.braid(&args);
        assert_eq!(out.status.code(), Some(4), "{args:?}");
        let err = fails(&out);
        assert!(
            err.contains("needs the agent role") && err.contains("you (vic) are a viewer"),
            "{args:?}: {err}"
        );
    }
    // With --json the refusal is a JSON error.
    let out = w.braid(&["note", &id, "--text", "x", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("needs the agent role"),
        "{err}"
    );
    // Reading works.
    assert_eq!(json(&w.braid(&["list", "--json"]))["total"], 2);
    assert!(ok(&w.braid(&["search", "refund"])).contains("Ann Lee"));
    assert_eq!(json(&w.braid(&["status", "--json"]))["role"], "viewer");
    // Nothing changed (but the audit log: each refusal is an event, so `seen_event` moved).
    let mut after = json(&w.braid(&["show", &id, "--json"]));
    let mut before = before;
    assert!(after["seen_event"].as_i64() > before["seen_event"].as_i64());
    before["seen_event"] = Value::Null;
    after["seen_event"] = Value::Null;
    assert_eq!(before, after);
    assert_eq!(
        json(&w.braid(&["status", "--json"]))["outbox"]["waiting"],
        0
    );
    drop(server);
}

#[test]
fn import_shows_a_hostile_file_name_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let maildir = root.join("Hostile");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(d)).unwrap();
    }
    std::fs::write(
        maildir.join("cur/bad\x1b]0;PWNED\x07\x1b[2J\u{202e}gpj.exe:2,S"),
        "not mail at all\n",
    )
    .unwrap();
    let data = root.join("data");
    let out = braid_in(
        root,
        &[
            "import",
            "maildir",
            maildir.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !err.contains('\x1b') && !err.contains('\u{202e}'),
        "{err:?}"
    );
    // Nothing hidden: the name is there, escaped.
    assert!(err.contains("bad\\u{1b}]0;PWNED\\u{7}"), "{err}");
}

#[test]
fn secrets_given_in_the_wrong_key_never_reach_the_output_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("data");
    let config = root.join("config.toml");
    // The classic mistakes: the password itself where the variable's NAME or the command goes.
    for (section, hint) in [
        (
            "[telegram]\ntoken_env = \"hunter2\"\napi_url = \"http://127.0.0.1:9\"\n",
            "[telegram] token_env",
        ),
        (
            "[telegram]\ntoken_command = \"hunter2\"\napi_url = \"http://127.0.0.1:9\"\n",
            "[telegram] token_command",
        ),
        (
            "[[email]]\nname = \"support\"\naddress = \"s@example.com\"\npassword_env = \"hunter2\"\n\
             imap_host = \"127.0.0.1\"\nimap_port = 9\nsmtp_host = \"127.0.0.1\"\nsmtp_port = 9\n",
            "[[email]] support password_env",
        ),
        (
            "[[email]]\nname = \"support\"\naddress = \"s@example.com\"\npassword_command = \"hunter2\"\n\
             imap_host = \"127.0.0.1\"\nimap_port = 9\nsmtp_host = \"127.0.0.1\"\nsmtp_port = 9\n",
            "[[email]] support password_command",
        ),
        (
            "[[email]]\nname = \"support\"\naddress = \"s@example.com\"\n\
             password_command = \"echo hunter2-out; echo hunter2-err >&2; exit 1\"\n\
             imap_host = \"127.0.0.1\"\nimap_port = 9\nsmtp_host = \"127.0.0.1\"\nsmtp_port = 9\n",
            "[[email]] support password_command",
        ),
    ] {
        std::fs::write(&config, section).unwrap();
        let out = braid_in(
            root,
            &[
                "sync",
                "--once",
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = std::fs::read_to_string(data.join("braid.log")).unwrap();
        for (what, text) in [("stdout", &*stdout), ("stderr", &*stderr), ("log", &*log)] {
            assert!(!text.contains("hunter2"), "{section}\n{what}: {text}");
        }
        assert!(stderr.contains(hint), "{section}\n{stderr}");
    }
}

#[cfg(unix)]
#[test]
fn the_data_dir_is_private_and_its_files_too() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("data");
    ok(&braid_in(
        root,
        &["status", "--data-dir", data.to_str().unwrap()],
    ));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("braid.sqlite3")), 0o600);
    assert_eq!(mode(&data.join("braid.log")), 0o600);
    // While a store is open, its -wal and -shm exist: private too.
    let mut store = Store::open_dir(&data).unwrap();
    braid::store::Store::set_vip(&mut store, braid::model::ContactId(1), true, "t", 0).ok();
    for side in ["braid.sqlite3-wal", "braid.sqlite3-shm"] {
        let p = data.join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
    drop(store);

    // A data dir and files left readable by every user (an older braid, a umask of 022) lose
    // the bits of others; the group's stay (a team may share a data dir through a group
    // until the workspace server owns the store).
    let old = root.join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(Store::open_dir(&old).unwrap());
    for f in ["braid.sqlite3", "braid.log"] {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(old.join(f))
            .unwrap();
        std::fs::set_permissions(old.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    ok(&braid_in(
        root,
        &["status", "--data-dir", old.to_str().unwrap()],
    ));
    assert_eq!(mode(&old), 0o750);
    assert_eq!(mode(&old.join("braid.sqlite3")), 0o640);
    assert_eq!(mode(&old.join("braid.log")), 0o640);
    let log = std::fs::read_to_string(old.join("braid.log")).unwrap();
    assert!(log.contains("was mode 755"), "{log}");
}

/// The workflow verbs from a shell, each the TUI's action of the same name.
#[test]
fn workflow_verbs_assign_status_tags_priority_vip() {
    let w = workspace();
    let ann = w.ann.to_string();
    let bob = format!("#{}", w.bob);
    let conv = |id: i64| -> Value {
        let v = json(&w.braid(&["list", "--view", "all", "--json"]));
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert!(ok(&w.braid(&["assign", &ann, "bob"])).contains("assigned to bob"));
    assert_eq!(conv(w.ann)["assignee"], "bob");
    // bob's: taking it needs --force, and the refusal says whose it is.
    let out = w.braid(&["assign", &ann, "me", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is assigned to bob"));
    assert_eq!(conv(w.ann)["assignee"], "bob");
    let v = json(&w.braid(&["assign", &ann, "me", "--force", "--json"]));
    assert_eq!(v["conversation_id"], w.ann);
    let me = conv(w.ann)["assignee"].as_str().unwrap().to_string();
    assert_ne!(me, "me", "me is the configured agent");
    ok(&w.braid(&["unassign", &ann]));
    assert_eq!(conv(w.ann)["assignee"], Value::Null);
    ok(&w.braid(&["pending", &ann]));
    assert_eq!(conv(w.ann)["status"], "pending");
    ok(&w.braid(&["resolve", &bob]));
    assert_eq!(conv(w.bob)["status"], "resolved");
    ok(&w.braid(&["reopen", &bob]));
    assert_eq!(conv(w.bob)["status"], "open");
    ok(&w.braid(&["snooze", &bob, "2h"]));
    assert_eq!(conv(w.bob)["status"], "snoozed");
    assert!(conv(w.bob)["snoozed_until"].is_string());
    ok(&w.braid(&["tag", &ann, "refund", "#Urgent-Case"]));
    assert_eq!(
        conv(w.ann)["tags"],
        serde_json::json!(["refund", "urgent-case"])
    );
    ok(&w.braid(&["untag", &ann, "urgent-case"]));
    assert_eq!(conv(w.ann)["tags"], serde_json::json!(["refund"]));
    ok(&w.braid(&["priority", &ann, "urgent"]));
    assert_eq!(conv(w.ann)["priority"], "urgent");
    ok(&w.braid(&["vip", &ann]));
    assert_eq!(conv(w.ann)["vip"], true);
    ok(&w.braid(&["vip", &ann, "--off"]));
    assert_eq!(conv(w.ann)["vip"], false);
    // Errors: one line, what to do.
    let e = fails(&w.braid(&["priority", &ann, "sky-high"]));
    assert!(e.contains("urgent"), "{e}");
    let e = fails(&w.braid(&["snooze", &ann, "someday"]));
    assert!(e.contains("30m"), "{e}");
    let e = fails(&w.braid(&["resolve", "999999"]));
    assert!(e.contains("999999"), "{e}");
}

#[test]
fn list_by_tag_and_assignee_and_search_filters() {
    let w = workspace();
    let ann = w.ann.to_string();
    ok(&w.braid(&["tag", &ann, "refund"]));
    ok(&w.braid(&["assign", &w.bob.to_string(), "carol"]));
    let ids = |v: &Value| -> Vec<i64> {
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    let v = json(&w.braid(&["list", "--tag", "refund", "--json"]));
    assert_eq!(ids(&v), vec![w.ann]);
    assert_eq!(v["total"], 1);
    assert_eq!(v["conversations"][0]["tags"], serde_json::json!(["refund"]));
    let v = json(&w.braid(&["list", "--assignee", "carol", "--json"]));
    assert_eq!(ids(&v), vec![w.bob]);
    let v = json(&w.braid(&["list", "--assignee", "none", "--json"]));
    assert_eq!(ids(&v), vec![w.ann]);
    let v = json(&w.braid(&["list", "--tag", "refund", "--status", "resolved", "--json"]));
    assert!(ids(&v).is_empty());
    let text = ok(&w.braid(&["list", "--tag", "refund"]));
    assert!(text.contains("Ann Lee"), "{text}");
    // Tags in every list row.
    let v = json(&w.braid(&["list", "--json"]));
    assert!(
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["tags"].is_array())
    );
    // The same filters in search.
    let v = json(&w.braid(&["search", "tag:refund", "--json"]));
    assert!(!v["hits"].as_array().unwrap().is_empty());
    assert!(
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["conversation_id"] == w.ann)
    );
    let v = json(&w.braid(&["search", "assignee:carol", "--json"]));
    assert!(
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["conversation_id"] == w.bob)
    );
    let e = fails(&w.braid(&["search", "from:"]));
    assert!(e.contains("from:"), "{e}");
    let e = fails(&w.braid(&["search", "colour:red"]));
    assert!(e.contains("tag:") && e.contains("status:"), "{e}");
}

/// With --json an error is a JSON object on stderr (stdout stays empty), exit code non-zero.
#[test]
fn json_errors_are_json() {
    let w = workspace();
    for args in [
        vec!["search", "colour:red", "--json"],
        vec!["show", "999999", "--json"],
        vec!["resolve", "999999", "--json"],
        vec!["list", "--view", "nonsense", "--json"],
        vec!["list", "--json", "--limit", "x"],
    ] {
        let out = w.braid(&args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr.clone()).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        let v: Value =
            serde_json::from_str(&err).unwrap_or_else(|e| panic!("{args:?}: {e}: {err}"));
        assert!(
            v["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn commands_run_at_once_without_a_server_take_turns() {
    // Each one starts a server in its own process, which holds the data dir for a moment:
    // the others wait for it instead of failing.
    let w = workspace();
    let data = w.data.to_str().unwrap().to_string();
    let root = w.root.clone();
    let ann = w.ann.to_string();
    let runs: Vec<_> = (0..6)
        .map(|i| {
            let (data, root, ann) = (data.clone(), root.clone(), ann.clone());
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    braid_in(&root, &["--data-dir", &data, "list", "--json"])
                } else {
                    let text = format!("note {i}");
                    braid_in(&root, &["--data-dir", &data, "note", &ann, "--text", &text])
                }
            })
        })
        .collect();
    for r in runs {
        ok(&r.join().unwrap());
    }
    assert_eq!(
        json(&w.braid(&["show", &w.ann.to_string(), "--json"]))["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "note")
            .count(),
        3
    );
}

#[cfg(unix)]
#[test]
fn a_server_on_another_socket_is_reached_with_socket_and_named_without() {
    let w = workspace();
    let sock = w.root.join("elsewhere.sock");
    let server = ServerProcess::start_on(&w, &sock, &["--socket", sock.to_str().unwrap()]);
    let st = json(&w.braid(&["--socket", sock.to_str().unwrap(), "status", "--json"]));
    assert_eq!(st["server"]["socket"], sock.to_str().unwrap());
    assert_eq!(st["server"]["pid"], server.pid());
    // Without --socket the command looks at the data dir's own socket, finds nobody there,
    // and says where to point it (after waiting for what could be a one-shot command).
    let err = fails(&w.braid(&["list"]));
    assert!(
        err.contains("does not answer on") && err.contains("--socket PATH"),
        "{err}"
    );
    drop(server);
}

/// `show` and `list` say which team a conversation belongs to (null: no team).
#[test]
fn show_and_list_print_the_team() {
    let w = workspace();
    {
        let mut store = Store::open_dir(&w.data).unwrap();
        store
            .set_conversation_team(
                braid::model::ConversationId(w.ann),
                Some("billing"),
                "boss",
                braid::model::now_millis(),
            )
            .unwrap();
    }
    let id = w.ann.to_string();
    let text = ok(&w.braid(&["show", &id]));
    assert!(
        text.lines().next().unwrap().contains("· team billing"),
        "{text}"
    );
    let v = json(&w.braid(&["show", &id, "--json"]));
    assert_eq!(v["conversation"]["team"], "billing");
    let v = json(&w.braid(&["list", "--json"]));
    let convs = v["conversations"].as_array().unwrap();
    let team_of = |id: i64| convs.iter().find(|c| c["id"] == id).unwrap()["team"].clone();
    assert_eq!(team_of(w.ann), "billing");
    assert_eq!(team_of(w.bob), serde_json::Value::Null);
}

// The store honours a scope (merge of h/scope) but the server does not set it on the
// connection that answers a request yet (TODO(scope merge) in src/server/session.rs): un-ignore
// once it does. It fails today at the first assertion: `list` shows billing's conversation.
#[cfg(unix)]
#[test]
fn an_agent_outside_a_team_cannot_list_show_or_search_its_conversations_from_the_cli() {
    let w = workspace();
    {
        let mut store = Store::open_dir(&w.data).unwrap();
        store
            .set_conversation_team(
                braid::model::ConversationId(w.ann),
                Some("billing"),
                "boss",
                braid::model::now_millis(),
            )
            .unwrap();
    }
    let ws = w.root.join("workspace.toml");
    std::fs::write(
        &ws,
        format!(
            "[[teams]]\nname = \"billing\"\n\n[[teams]]\nname = \"sales\"\n\n[[agents]]\nuser = \"{}\"\nname = \"sam\"\nrole = \"agent\"\nteams = [\"sales\"]\n",
            me()
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&w, &["--config", ws.to_str().unwrap()]);
    let ann = w.ann.to_string();
    // Ann's conversation is billing's: sam (sales) does not see it, whatever the command.
    let v = json(&w.braid(&["list", "--view", "all", "--json"]));
    let ids: Vec<i64> = v["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [w.bob], "{v}");
    assert_eq!(
        fails(&w.braid(&["show", &ann])),
        format!("braid: no conversation #{ann}")
    );
    assert!(ok(&w.braid(&["search", "refund"])).contains("no matches"));
    let v = json(&w.braid(&["contacts", "--json"]));
    let names: Vec<&str> = v["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bob Stone"], "{v}");
    // Nor can it be written to.
    assert_eq!(
        fails(&w.braid(&["note", &ann, "--text", "x"])),
        format!("braid: no conversation #{ann}")
    );
    fails(&w.braid(&["reply", &ann, "--text", "x"]));
    fails(&w.braid(&["assign", &ann, "me"]));
    drop(server);
    let store = Store::open_dir(&w.data).unwrap();
    let conv = store
        .conversation(braid::model::ConversationId(w.ann))
        .unwrap();
    assert_eq!(conv.message_count, 2);
    assert_eq!(conv.assignee, None);
}

/// `braid notifications` and the notification part of `braid status`, against a running
/// server: a customer writes in the conversation assigned to the CLI's agent; the server
/// derives the notification as its feed sees the message; the CLI lists it, counts it for a
/// tmux status line, and marks it read.
#[cfg(unix)]
#[test]
fn notifications_list_count_and_read_from_the_cli() {
    let w = workspace();
    let _server = ServerProcess::start(&w, &[]);
    ok(&w.braid(&["assign", &w.ann.to_string(), "me"]));
    assert_eq!(ok(&w.braid(&["status", "--unread"])), "0\n");
    assert_eq!(
        ok(&w.braid(&["notifications"])),
        "no notifications\n",
        "assigning yourself notifies nobody"
    );
    // The customer writes (the channel's ingest, another process).
    let mut store = Store::open_dir(&w.data).unwrap();
    ingest(
        &mut store,
        &msg(
            Channel::Email,
            "<m9@x.org>",
            Claim::new(IdentityKind::Email, "ann@x.org"),
            vec![],
            "Ann Lee",
            Some("Refund for order 1234"),
            "Any news \x1b[31mon my refund?",
            braid::model::now_millis(),
        ),
        &Settings::default(),
    )
    .unwrap();
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ok(&w.braid(&["status", "--unread"])) != "1\n" {
        assert!(std::time::Instant::now() < deadline, "never notified");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let v = json(&w.braid(&["notifications", "--json"]));
    assert_eq!(v["unread"], 1);
    let n = &v["notifications"][0];
    assert_eq!(n["kind"], "message");
    assert_eq!(n["read"], false);
    assert_eq!(n["conversation_id"], w.ann);
    assert_eq!(n["contact_name"], "Ann Lee");
    let id = n["id"].as_i64().unwrap();
    let text = ok(&w.braid(&["notifications", "--unread"]));
    assert!(text.contains("new customer message"), "{text}");
    assert!(text.contains(&format!("#{}", w.ann)), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.ends_with("1 unread\n"), "{text}");

    let st = json(&w.braid(&["status", "--json"]));
    assert_eq!(st["notifications"]["unread"], 1);
    assert_eq!(st["notifications"]["newest_unread"][0]["id"], id);
    assert!(ok(&w.braid(&["status"])).contains("notified  1 unread"));

    let out = ok(&w.braid(&["notifications", "--read", &id.to_string(), "999"]));
    assert_eq!(
        out,
        "marked 1 read (1 already read or not yours); 0 unread left\n"
    );
    assert_eq!(ok(&w.braid(&["status", "--unread"])), "0\n");
    assert_eq!(
        ok(&w.braid(&["notifications", "--unread"])),
        "no unread notifications\n"
    );
    let v = json(&w.braid(&["notifications", "--read-all", "--json"]));
    assert_eq!(v["marked"], serde_json::json!([]));
    assert_eq!(v["unread"], 0);
    let v = json(&w.braid(&["notifications", "--json"]));
    assert_eq!(v["notifications"][0]["read"], true);
}

/// WhatsApp's 24-hour window from a script: a free-text reply is refused with what to do, a
/// template (`--template NAME --param P`) is queued with the text the customer will read.
#[test]
fn reply_outside_whatsapps_window_takes_a_template() {
    let w = workspace();
    let mut store = Store::open_dir(&w.data).unwrap();
    let now = braid::model::now_millis();
    let c = conversation_of(
        ingest(
            &mut store,
            &msg(
                Channel::WhatsApp,
                "wamid.1",
                Claim::new(IdentityKind::Phone, "+5511987654321"),
                vec![],
                "Ana Souza",
                None,
                "Oi, is my order shipped?",
                now - 2 * DAY,
            ),
            &Settings::default(),
        )
        .unwrap(),
    )
    .to_string();
    drop(store);
    let config = w.root.join("braid.toml");
    std::fs::write(
        &config,
        "[webchat]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
         [whatsapp]\nphone_number_id = \"106540352242922\"\ntoken_env = \"WA_TOKEN\"\n\
         app_secret_env = \"WA_SECRET\"\nverify_token_env = \"WA_VERIFY\"\n\
         [[whatsapp.templates]]\nname = \"order_update\"\nlanguage = \"en_US\"\n\
         text = \"Hi {{1}}, your order {{2}} has shipped.\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let err = fails(&w.braid(&["--config", cfg, "reply", &c, "--text", "Yes!"]));
    assert!(err.contains("outside WhatsApp's 24-hour window"), "{err}");
    assert!(err.contains(":template"), "{err}");
    let err = fails(&w.braid(&[
        "--config",
        cfg,
        "reply",
        &c,
        "--template",
        "order_update",
        "--param",
        "Ana",
    ]));
    assert!(err.contains("takes 2 parameters"), "{err}");
    let err = fails(&w.braid(&["--config", cfg, "reply", &c, "--template", "nope"]));
    assert!(err.contains("no WhatsApp template named 'nope'"), "{err}");
    let out = json(&w.braid(&[
        "--config",
        cfg,
        "reply",
        &c,
        "--template",
        "order_update",
        "--param",
        "Ana",
        "--param",
        "#4411",
        "--json",
    ]));
    assert_eq!(out["channel"], "whatsapp");
    assert_eq!(out["recipient"], "+5511987654321");
    let shown = ok(&w.braid(&["show", &c]));
    assert!(
        shown.contains("Hi Ana, your order #4411 has shipped."),
        "{shown}"
    );
}

#[test]
fn tasks_add_list_close_and_the_overdue_count() {
    let w = workspace();
    let added = json(&w.braid(&[
        "task",
        "add",
        &w.ann.to_string(),
        "--when",
        "2h",
        "--kind",
        "call",
        "--title",
        "call Ann about the refund",
        "--json",
    ]));
    assert_eq!(added["kind"], "call");
    assert_eq!(added["state"], "open");
    assert_eq!(added["assignee"], "tester");
    assert_eq!(added["overdue"], false);
    // One already overdue, someone else's, written by the library (as a rule would).
    let mut store = Store::open_dir(&w.data).unwrap();
    let late = store
        .create_task(
            &braid::store::NewTask {
                kind: "todo".into(),
                title: "send the contract".into(),
                due_at: Some(braid::model::now_millis() - 60_000),
                assignee: Some("bob".into()),
                conversation: Some(braid::model::ConversationId(w.bob)),
                ..Default::default()
            },
            "rule:follow-up",
            braid::model::now_millis() - DAY,
        )
        .unwrap();
    drop(store);

    let mine = json(&w.braid(&["tasks", "--json"]));
    let ids: Vec<i64> = mine["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![added["id"].as_i64().unwrap()]);
    let overdue = json(&w.braid(&["tasks", "--overdue", "--json"]));
    assert_eq!(overdue["tasks"][0]["id"], late.id);
    assert_eq!(overdue["tasks"][0]["overdue"], true);
    assert_eq!(overdue["tasks"].as_array().unwrap().len(), 1);
    let text = ok(&w.braid(&["tasks", "--all"]));
    assert!(text.contains("call Ann about the refund"), "{text}");
    assert!(text.contains("overdue"), "{text}");
    assert_eq!(json(&w.braid(&["status", "--json"]))["tasks"]["overdue"], 1);

    let closed = ok(&w.braid(&["task", "close", &late.id.to_string()]));
    assert!(closed.contains("done"), "{closed}");
    assert_eq!(json(&w.braid(&["status", "--json"]))["tasks"]["overdue"], 0);
    let again = fails(&w.braid(&["task", "close", &late.id.to_string()]));
    assert!(again.contains("already done"), "{again}");
    let bad = fails(&w.braid(&["task", "add", &w.ann.to_string(), "--when", "someday"]));
    assert!(bad.contains("tomorrow 10:00"), "{bad}");
}

#[test]
fn reply_at_schedules_it_in_the_outbox() {
    let w = workspace();
    let r = json(&w.braid(&[
        "reply",
        &w.ann.to_string(),
        "--text",
        "we will call you back",
        "--at",
        "tomorrow 10:00",
        "--json",
    ]));
    let id = braid::model::MessageId(r["message_id"].as_i64().unwrap());
    assert!(
        r["scheduled_at"].as_str().unwrap().ends_with("10:00:00Z"),
        "{r}"
    );
    let mut store = Store::open_dir(&w.data).unwrap();
    let m = store.message(id).unwrap();
    assert!(m.scheduled_at.unwrap() > braid::model::now_millis());
    // Not due now: the outbox keeps it.
    assert!(
        store
            .claim_outbox(braid::model::now_millis(), 60_000, 10)
            .unwrap()
            .is_empty()
    );
    let bad = fails(&w.braid(&["reply", &w.ann.to_string(), "--text", "x", "--at", "later"]));
    assert!(
        bad.contains("--at") && bad.contains("next business morning"),
        "{bad}"
    );
}

#[test]
fn report_table_csv_and_json() {
    let w = workspace();
    {
        let mut store = Store::open_dir(&w.data).unwrap();
        let now = braid::model::now_millis();
        // Ann waited two days for an answer (from her first message, on email).
        store
            .queue_reply(
                braid::model::ConversationId(w.ann),
                Channel::Telegram,
                "alice",
                "Your refund left today.",
                now - 2 * DAY + 7_200_000,
            )
            .unwrap();
    }
    let today = ok(&w.braid(&[
        "report", "--by", "channel", "--format", "json", "--tz", "UTC",
    ]));
    let v: Value = serde_json::from_str(&today).unwrap();
    assert_eq!(v["by"], "channel");
    assert_eq!(v["tz"], "UTC");
    assert_eq!(
        v["scope"], "everyone",
        "the owner of a personal store is its admin"
    );
    let cols: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cols.contains(&"first_response_median_s") && cols.contains(&"csat_average"));
    let email = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "email")
        .expect("an email row");
    assert_eq!(
        email["first_response_median_s"], 7200,
        "the wait began on email"
    );
    assert_eq!(email["first_response_count"], 1);
    assert_eq!(v["total"]["messages_in"], 3);
    assert_eq!(v["total"]["messages_out"], 1);
    assert_eq!(v["total"]["opened"], 2);
    assert!(v["total"]["csat_average"].is_null());

    let csv = ok(&w.braid(&[
        "report",
        "--by",
        "day",
        "--metric",
        "volume,messages",
        "--format",
        "csv",
    ]));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "day,opened,reopened,resolved,backlog,messages_in,messages_out"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 31, "30 days and the total: {csv}");
    assert!(
        rows.last().unwrap().starts_with("total,2,0,0,2,3,1"),
        "{csv}"
    );

    let table = ok(&w.braid(&["report", "--by", "agent"]));
    assert!(
        table.contains("alice") && table.contains("2h 00m"),
        "{table}"
    );

    let e = fails(&w.braid(&["report", "--by", "planet"]));
    assert!(
        e.contains("channel, agent, team, tag, day, week, month"),
        "{e}"
    );
    let e = fails(&w.braid(&["report", "--from", "2026-12-10", "--to", "2026-12-01"]));
    assert!(e.contains("earlier date first"), "{e}");
}

#[test]
fn contact_merge_unmerge_merges_split_and_join_on_the_real_binary() {
    let w = workspace();
    let contact_of = |conv: i64| -> i64 {
        json(&w.braid(&["show", &conv.to_string(), "--json"]))["conversation"]["contact_id"]
            .as_i64()
            .unwrap()
    };
    let (ann, bob) = (contact_of(w.ann), contact_of(w.bob));
    let (a, b) = (ann.to_string(), bob.to_string());
    // Without --yes and with no answer on stdin, nothing merges.
    let out = w.braid(&["contact", "merge", &a, &b]);
    assert!(fails(&out).contains("nothing merged"), "{}", fails(&out));
    let merged = json(&w.braid(&[
        "contact",
        "merge",
        &a,
        &b,
        "--reason",
        "same person",
        "--yes",
        "--json",
    ]));
    let merge = merged["merge"].as_i64().unwrap();
    assert_eq!(
        json(&w.braid(&["list", "--json"]))["total"],
        1,
        "one person, one open conversation"
    );
    let merges = json(&w.braid(&["contact", "merges", &a, "--json"]));
    assert_eq!(merges[0]["reason"], "manual: same person");
    assert_eq!(merges[0]["kind"], "contacts");
    let text = ok(&w.braid(&["contact", "merges", &a]));
    assert!(text.contains("manual: same person"), "{text}");
    // A bad id is one line that says what to give.
    let bad = fails(&w.braid(&["contact", "merge", &a, "bob"]));
    assert!(
        bad.contains("not a contact id") && bad.lines().count() == 1,
        "{bad}"
    );
    // Exactly back.
    let undone = ok(&w.braid(&["contact", "unmerge", "--merge", &merge.to_string()]));
    assert!(
        undone.contains(&format!("merge #{merge} undone")),
        "{undone}"
    );
    assert_eq!(json(&w.braid(&["list", "--json"]))["total"], 2);
    let again = fails(&w.braid(&["contact", "unmerge", "--merge", &merge.to_string()]));
    assert!(again.contains("already undone"), "{again}");
    // Split Ann's conversation (email, then Telegram): the last message becomes its own.
    let id = w.ann.to_string();
    let split = ok(&w.braid(&["split", &id, "1"]));
    assert!(split.contains("split at message"), "{split}");
    assert_eq!(json(&w.braid(&["list", "--json"]))["total"], 3);
    let new = split
        .split("the rest is #")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let joined = ok(&w.braid(&["join", &id, &new]));
    assert!(joined.contains("joined"), "{joined}");
    assert_eq!(json(&w.braid(&["list", "--json"]))["total"], 2);
}

#[test]
fn contact_consent_export_and_forget() {
    let w = workspace();
    let v = json(&w.braid(&["contacts", "--json"]));
    let ann = v["contacts"][0]["id"].as_i64().unwrap().to_string();
    let text = ok(&w.braid(&[
        "contact",
        "consent",
        &ann,
        "marketing",
        "off",
        "--note",
        "asked on the phone",
    ]));
    assert!(text.contains("opted out of marketing"), "{text}");
    let c = json(&w.braid(&["contact", "consent", &ann, "--json"]));
    assert_eq!(c["marketing_out"], true);
    assert_eq!(c["history"][0]["source"], "agent");
    assert_eq!(c["history"][0]["actor"], "tester");
    let e = fails(&w.braid(&["contact", "consent", &ann, "newsletter", "off"]));
    assert!(e.contains("say marketing or all"), "{e}");

    let export = json(&w.braid(&["contact", "export", &ann, "--json"]));
    let all = export.to_string();
    assert!(
        all.contains("ann@x.org") && all.contains("where is my refund"),
        "{all}"
    );
    assert!(!all.contains("visitor-77"), "Bob is not Ann");
    assert_eq!(
        export["tables"]["consent_history"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Not confirmed (no terminal, no --yes): nothing erased.
    let e = fails(&w.braid(&["contact", "forget", &ann]));
    assert!(e.contains("--yes"), "{e}");
    assert!(ok(&w.braid(&["search", "refund"])).contains("refund"));
    let text = ok(&w.braid(&["contact", "forget", &ann, "--yes"]));
    assert!(text.contains("forgotten"), "{text}");
    let hits = json(&w.braid(&["search", "refund", "--json"]));
    assert_eq!(
        hits["hits"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{hits}"
    );
    let v = json(&w.braid(&["contacts", "--json"]));
    assert!(!v.to_string().contains("ann@x.org"), "{v}");
}
