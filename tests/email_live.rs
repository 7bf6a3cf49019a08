//! Email against REAL servers: Dovecot (IMAP, IMAPS, STARTTLS) and an aiosmtpd SMTP server that
//! delivers into Dovecot's Maildirs, both on loopback, started by `scripts/mail-servers.sh`.
//!
//! ```sh
//! scripts/mail-servers.sh start
//! cargo test --test email_live -- --ignored --test-threads=1
//! ```
//!
//! Ignored by plain `cargo test` (which stays hermetic); `.ci/run` starts the servers and runs
//! these. Each test works in folders of its own (created per test), so they do not see each
//! other's mail; the tests that need a user's INBOX empty it first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::email::{Account, EmailAccount, RawEmailAccount};
use braid::ingest::Settings;
use braid::model::{Channel, ConversationId, Delivery, now_millis};
use braid::store::Store;
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------- servers

struct Servers {
    env: HashMap<String, String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn servers() -> Servers {
    let dir = std::env::var("BRAID_MAIL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/mail-servers"));
    let text = std::fs::read_to_string(dir.join("env")).unwrap_or_else(|_| {
        panic!(
            "no mail servers: run `scripts/mail-servers.sh start` first ({} has no env file)",
            dir.display()
        )
    });
    let env: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('"').trim_matches('\'').to_string(),
            )
        })
        .collect();
    let s = Servers { env };
    assert!(
        s.script(&["status"]),
        "the mail servers are not running: scripts/mail-servers.sh start"
    );
    s
}

impl Servers {
    fn get(&self, k: &str) -> String {
        self.env
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} missing from the env file"))
    }
    fn port(&self, k: &str) -> u16 {
        self.get(k).parse().unwrap()
    }
    fn script(&self, args: &[&str]) -> bool {
        let mut cmd = Command::new(root().join("scripts/mail-servers.sh"));
        cmd.args(args);
        if let Some(d) = self.env.get("BRAID_MAIL_DIR") {
            cmd.env("BRAID_MAIL_DIR", d);
        }
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }
    fn must(&self, args: &[&str]) {
        assert!(self.script(args), "scripts/mail-servers.sh {args:?} failed");
    }

    /// An account for `user`, syncing `folders`, filing replies in `sent`.
    fn account(
        &self,
        user: &str,
        password: &str,
        folders: &[&str],
        sent: &str,
        imap: &str,
    ) -> EmailAccount {
        let (imap_port, imap_security) = match imap {
            "tls" => (self.port("BRAID_IMAPS_PORT"), "tls"),
            "starttls" => (self.port("BRAID_IMAP_PORT"), "starttls"),
            _ => (self.port("BRAID_IMAP_PORT"), "none"),
        };
        let folders: Vec<String> = folders.iter().map(|f| format!("\"{f}\"")).collect();
        let text = format!(
            "name = \"{user}\"\naddress = \"{user}@example.com\"\nusername = \"{user}\"\n\
             password_command = \"printf %s '{password}'\"\n\
             imap_host = \"localhost\"\nimap_port = {imap_port}\nimap_security = \"{imap_security}\"\n\
             smtp_host = \"localhost\"\nsmtp_port = {}\nsmtp_security = \"starttls\"\n\
             folders = [{}]\nsent_folder = \"{sent}\"\nca_file = \"{}\"\ntimeout = \"10s\"\n",
            self.port("BRAID_SUBMISSION_PORT"),
            folders.join(", "),
            self.get("BRAID_MAIL_CA"),
        );
        toml::from_str::<RawEmailAccount>(&text)
            .unwrap()
            .resolve(0)
            .unwrap()
    }

    /// A config file for the braid binary.
    fn config_file(&self, dir: &Path, a: &EmailAccount, password: &str) -> PathBuf {
        let folders: Vec<String> = a.folders.iter().map(|f| format!("\"{f}\"")).collect();
        let text = format!(
            "agent = \"alice\"\n[webchat]\nenabled = false\n\n[[email]]\nname = \"{}\"\naddress = \"{}\"\nusername = \"{}\"\n\
             password_command = \"printf %s '{password}'\"\nimap_host = \"localhost\"\nimap_port = {}\n\
             imap_security = \"starttls\"\nsmtp_host = \"localhost\"\nsmtp_port = {}\nsmtp_security = \"starttls\"\n\
             folders = [{}]\nsent_folder = \"{}\"\nca_file = \"{}\"\ntimeout = \"10s\"\n",
            a.name,
            a.address,
            a.username,
            self.port("BRAID_IMAP_PORT"),
            self.port("BRAID_SUBMISSION_PORT"),
            folders.join(", "),
            a.sent_folder.clone().unwrap_or_default(),
            self.get("BRAID_MAIL_CA"),
        );
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    /// Send a message through the plain SMTP port (another mail client, the customer's).
    async fn smtp(&self, raw: &[u8], from: &str, to: &str) {
        use lettre::AsyncTransport;
        let t =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
                .port(self.port("BRAID_SMTP_PORT"))
                .build();
        let env =
            lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
                .unwrap();
        t.send_raw(&env, raw).await.unwrap();
    }
}

fn unique(name: &str) -> String {
    format!(
        "t-{name}-{}-{}",
        std::process::id(),
        now_millis() % 1_000_000
    )
}

fn mail(n: usize, from: &str, to: &str, subject: &str, message_id: &str, extra: &str) -> String {
    format!(
        "From: Customer {n} <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Date: Tue, 01 Dec 2026 10:{:02}:{:02} +0000\r\nMessage-ID: <{message_id}>\r\n{extra}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello, this is message number {n}. Where is my order {n}?\r\n",
        (n / 60) % 60,
        n % 60
    )
}

/// Create `folder` and APPEND `n` messages (numbered 0..n, from customerK@example.net).
async fn seed(account: &Arc<Account>, folder: &str, n: usize, tag: &str) {
    let mut s = account.login().await.unwrap();
    s.create(folder).await.unwrap();
    for i in 0..n {
        let m = mail(
            i,
            &format!("customer{}@example.net", i % 50),
            "support@example.com",
            &format!("Order {i}"),
            &format!("{tag}-{i}@example.net"),
            "",
        );
        s.append(folder, None, None, m.as_bytes()).await.unwrap();
    }
    s.logout().await.unwrap();
}

async fn create(account: &Arc<Account>, folder: &str) {
    let mut s = account.login().await.unwrap();
    s.create(folder).await.unwrap();
    s.logout().await.unwrap();
}

/// Empty a user's INBOX.
async fn empty_inbox(account: &Arc<Account>) {
    let mut s = account.login().await.unwrap();
    let mb = s.select("INBOX").await.unwrap();
    if mb.exists > 0 {
        s.store("1:*", "+FLAGS (\\Deleted)")
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await;
        s.expunge().await.unwrap().collect::<Vec<_>>().await;
    }
    s.logout().await.unwrap();
}

fn count(dir: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join("braid.sqlite3")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

fn email_count(dir: &Path) -> i64 {
    count(dir, "SELECT count(*) FROM messages WHERE channel = 'email'")
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

fn worker(dir: &Path, account: &Arc<Account>) -> braid::worker::WorkerHandle {
    let mut opts = braid::worker::WorkerOptions::new(dir);
    opts.run_demo = false;
    opts.poll = Duration::from_millis(100);
    opts.lease_retry = Duration::from_millis(100);
    opts.email = vec![Arc::clone(account)];
    opts.senders.push(braid::channels::email::EmailSender::new(
        vec![Arc::clone(account)],
        dir.join("braid.sqlite3"),
    ));
    braid::worker::spawn_with(opts).unwrap()
}

fn new_store(dir: &Path) -> Store {
    Store::open_dir(dir).unwrap()
}

// --------------------------------------------------------------------------------- tests

/// Initial sync of an existing folder, newest first, then a message sent by SMTP from another
/// client shows up through IDLE within 2 s; the same person on web chat is the same contact.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn initial_sync_newest_first_then_idle_delivery_and_one_contact_with_web_chat() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let sent = unique("sent");
    let bootstrap = Account::new(
        srv.account("support", "support-pass", &["INBOX"], &sent, "none"),
        Settings::default(),
    );
    empty_inbox(&bootstrap).await;
    create(&bootstrap, &sent).await;
    // 1,200 messages in the INBOX before braid ever looks.
    let mut s = bootstrap.login().await.unwrap();
    for i in 0..1200 {
        let m = mail(
            i,
            &format!("customer{}@example.net", i % 40),
            "support@example.com",
            &format!("Order {i}"),
            &format!("init-{i}-{}@example.net", std::process::id()),
            "",
        );
        s.append("INBOX", None, None, m.as_bytes()).await.unwrap();
    }
    s.logout().await.unwrap();

    let account = Account::new(
        srv.account("support", "support-pass", &["INBOX"], &sent, "starttls"),
        Settings::default(),
    );
    let w = worker(dir.path(), &account);
    // The first messages stored are the newest ones.
    wait_until("the first batch", Duration::from_secs(30), || {
        email_count(dir.path()) > 0
    })
    .await;
    let oldest_first_batch = count(
        dir.path(),
        "SELECT min(CAST(substr(subject, 7) AS INTEGER)) FROM messages WHERE channel = 'email'",
    );
    assert!(
        oldest_first_batch >= 600,
        "the first batch held old mail: order {oldest_first_batch}"
    );
    wait_until("all 1,200", Duration::from_secs(60), || {
        email_count(dir.path()) == 1200
    })
    .await;
    assert!(
        account.status().contains("idle") || account.status().contains("syncing"),
        "{}",
        account.status()
    );

    // Another client sends a message by SMTP: IDLE brings it in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = mail(
        5000,
        "ann@example.com",
        "support@example.com",
        "Question about order 77",
        "idle-ann@example.com",
        "",
    );
    let t0 = Instant::now();
    srv.smtp(raw.as_bytes(), "ann@example.com", "support@example.com")
        .await;
    wait_until("the IDLE delivery", Duration::from_secs(10), || {
        count(
            dir.path(),
            "SELECT count(*) FROM messages WHERE external_id = 'idle-ann@example.com'",
        ) == 1
    })
    .await;
    let took = t0.elapsed();
    println!("SMTP -> IDLE -> store: {took:?}");
    assert!(took < Duration::from_secs(2), "IDLE delivery took {took:?}");
    w.shutdown().await;

    // Ann also writes on web chat and gives her email: one contact, one timeline.
    let mut store = new_store(dir.path());
    let chat = braid::ingest::Inbound {
        channel: Channel::WebChat,
        account: String::new(),
        external_id: "chat-1".into(),
        direction: braid::model::Direction::In,
        customer: braid::identity::Claim::new(braid::model::IdentityKind::WebChat, "visitor-ann"),
        linked: vec![braid::identity::Claim::new(
            braid::model::IdentityKind::Email,
            "Ann@Example.com",
        )],
        customer_name: None,
        author: None,
        subject: None,
        body: "Hi, I emailed about order 77 too".into(),
        sent_at: now_millis(),
        meta: None,
        cursor: None,
    };
    braid::ingest::ingest(&mut store, &chat, &Settings::default()).unwrap();
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(DISTINCT contact_id) FROM messages WHERE external_id IN ('idle-ann@example.com', 'chat-1')"
        ),
        1
    );
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(DISTINCT conversation_id) FROM messages WHERE external_id IN ('idle-ann@example.com', 'chat-1')"
        ),
        1
    );
}

/// A reply written in braid reaches the customer's mailbox with the threading headers, is
/// filed in Sent, and the Sent copy that syncs back is the same message (no duplicate).
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn a_reply_reaches_the_customer_threaded_and_is_filed_in_sent() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let inbox = unique("in");
    let sent = unique("sent");
    let account = Account::new(
        srv.account("support", "support-pass", &[&inbox], &sent, "tls"),
        Settings::default(),
    );
    create(&account, &inbox).await;
    create(&account, &sent).await;
    let ann = Account::new(
        srv.account("ann", "ann-pass", &["INBOX"], "Sent", "starttls"),
        Settings::default(),
    );
    empty_inbox(&ann).await;
    let first_id = format!("ask-{}@example.com", std::process::id());
    let ask = mail(
        1,
        "ann@example.com",
        "support@example.com",
        "Refund for order 1234",
        &first_id,
        "",
    );
    let mut s = account.login().await.unwrap();
    s.append(&inbox, None, None, ask.as_bytes()).await.unwrap();
    s.logout().await.unwrap();

    let w = worker(dir.path(), &account);
    wait_until("the customer's mail", Duration::from_secs(20), || {
        email_count(dir.path()) == 1
    })
    .await;
    let mut store = new_store(dir.path());
    let conv = ConversationId(count(
        dir.path(),
        "SELECT conversation_id FROM messages LIMIT 1",
    ));
    let reply = store
        .queue_reply(
            conv,
            Channel::Email,
            "alice",
            "Your refund is on its way.",
            now_millis(),
        )
        .unwrap();
    wait_until("the reply to be sent", Duration::from_secs(20), || {
        store.message(reply).unwrap().delivery == Some(Delivery::Sent)
    })
    .await;

    // In Ann's mailbox: threaded under her message.
    let mut a = ann.login().await.unwrap();
    let mut raw = None;
    for _ in 0..100 {
        let mb = a.examine("INBOX").await.unwrap();
        if mb.exists > 0 {
            let fetched: Vec<_> = a.fetch("1", "BODY.PEEK[]").await.unwrap().collect().await;
            raw = fetched
                .into_iter()
                .next()
                .and_then(|f| f.ok())
                .and_then(|f| f.body().map(<[u8]>::to_vec));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.logout().await.unwrap();
    let raw = String::from_utf8(raw.expect("the reply never reached ann's INBOX")).unwrap();
    let header = |name: &str| -> String {
        raw.lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("In-Reply-To"), format!("<{first_id}>"), "{raw}");
    assert!(header("References").contains(&first_id), "{raw}");
    assert_eq!(header("Subject"), "Re: Refund for order 1234", "{raw}");
    assert!(header("From").contains("support@example.com"), "{raw}");
    assert!(header("Message-ID").starts_with("<braid."), "{raw}");
    assert!(raw.contains("Your refund is on its way."), "{raw}");
    assert!(
        raw.contains("> Hello, this is message number 1."),
        "the quote is missing: {raw}"
    );

    // Filed in Sent, and synced back as the same message.
    let found = account
        .find_message_id(&sent, header("Message-ID").trim_matches(['<', '>']))
        .await
        .unwrap();
    assert!(found, "not in {sent}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(email_count(dir.path()), 2, "the Sent copy was stored twice");
    w.shutdown().await;
}

/// An attempt that may have gone out (the process died, the connection dropped after DATA) is
/// looked for in the Sent folder before sending again: found there, it is not sent twice.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn a_retry_after_an_unclear_attempt_does_not_send_twice() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let inbox = unique("in");
    let sent = unique("sent");
    let account = Account::new(
        srv.account("support", "support-pass", &[&inbox], &sent, "none"),
        Settings::default(),
    );
    create(&account, &inbox).await;
    create(&account, &sent).await;
    let bob = Account::new(
        srv.account("bob", "bob-pass", &["INBOX"], "Sent", "none"),
        Settings::default(),
    );
    empty_inbox(&bob).await;
    let ask = mail(
        2,
        "bob@example.com",
        "support@example.com",
        "Invoice",
        &format!("inv-{}@example.com", std::process::id()),
        "",
    );
    let mut s = account.login().await.unwrap();
    s.append(&inbox, None, None, ask.as_bytes()).await.unwrap();
    s.logout().await.unwrap();
    let store_path = dir.path().join("braid.sqlite3");
    braid::channels::email::sync_once(&account, &store_path)
        .await
        .unwrap();
    let mut store = new_store(dir.path());
    let conv = ConversationId(count(
        dir.path(),
        "SELECT conversation_id FROM messages LIMIT 1",
    ));
    let reply = store
        .queue_reply(
            conv,
            Channel::Email,
            "alice",
            "Here is the invoice.",
            now_millis(),
        )
        .unwrap();
    // The first attempt: its Message-ID fixed, then it "went out" and was filed, and the
    // process died before recording it.
    let out = store
        .prepare_outgoing_email(reply, &["support"], &|_| "example.com".into(), "abc")
        .unwrap();
    let filed = mail(
        3,
        "support@example.com",
        "bob@example.com",
        "Re: Invoice",
        &out.message_id,
        "",
    );
    let mut s = account.login().await.unwrap();
    s.append(&sent, Some("(\\Seen)"), None, filed.as_bytes())
        .await
        .unwrap();
    s.logout().await.unwrap();

    let w = worker(dir.path(), &account);
    wait_until("the reply to be recorded", Duration::from_secs(20), || {
        store.message(reply).unwrap().delivery == Some(Delivery::Sent)
    })
    .await;
    w.shutdown().await;
    let mut b = bob.login().await.unwrap();
    let mb = b.examine("INBOX").await.unwrap();
    b.logout().await.unwrap();
    assert_eq!(mb.exists, 0, "the reply was sent a second time");
}

/// The IMAP server goes away in the middle of an initial sync and comes back: nothing lost,
/// nothing duplicated, and the status line said it was reconnecting.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn a_server_stopped_mid_sync_and_restarted_loses_and_duplicates_nothing() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let folder = unique("big");
    let sent = unique("sent");
    let account = Account::new(
        srv.account("bob", "bob-pass", &[&folder], &sent, "none"),
        Settings::default(),
    );
    seed(&account, &folder, 3000, &folder).await;
    create(&account, &sent).await;
    let w = worker(dir.path(), &account);
    wait_until("the sync to start", Duration::from_secs(30), || {
        email_count(dir.path()) >= 250
    })
    .await;
    srv.must(&["stop-imap"]);
    let during = email_count(dir.path());
    assert!(during < 3000, "the sync finished before the server stopped");
    wait_until("the status to say so", Duration::from_secs(20), || {
        account.status().contains("reconnecting")
    })
    .await;
    println!("status while down: {}", account.status());
    tokio::time::sleep(Duration::from_secs(2)).await;
    srv.must(&["start-imap"]);
    wait_until("all 3,000", Duration::from_secs(120), || {
        email_count(dir.path()) == 3000
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(email_count(dir.path()), 3000);
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(DISTINCT external_id) FROM messages WHERE channel = 'email'"
        ),
        3000
    );
    w.shutdown().await;
}

/// `kill -9` of `braid sync --once` during its initial sync, then again: every message once.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn kill_9_during_initial_sync_then_restart() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    let folder = unique("kill");
    let sent = unique("sent");
    let account_cfg = srv.account("bob", "bob-pass", &[&folder], &sent, "starttls");
    let account = Account::new(account_cfg.clone(), Settings::default());
    seed(&account, &folder, 2500, &folder).await;
    create(&account, &sent).await;
    let config = srv.config_file(dir.path(), &account_cfg, "bob-pass");
    let braid = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_braid"));
        c.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .args(args);
        c
    };
    let mut child = braid(&["sync", "--once"]).spawn().unwrap();
    wait_until("the first batches", Duration::from_secs(60), || {
        email_count(dir.path()) >= 500
    })
    .await;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let after_kill = email_count(dir.path());
    assert!(after_kill < 2500, "finished before the kill");
    let out = braid(&["sync", "--once", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(email_count(dir.path()), 2500, "{json}");
    let fetched = json["folders"][0]["fetched"].as_u64().unwrap();
    // The restart fetched what was missing (and at most the batches in flight at the kill).
    assert!(
        fetched as i64 <= 2500 - after_kill + 600,
        "refetched too much: {fetched} after {after_kill}"
    );
    // Nothing is left: a third pass fetches nothing.
    let out = braid(&["sync", "--once", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["folders"][0]["fetched"], 0, "{json}");
}

/// A new UIDVALIDITY: the folder's messages are matched by Message-ID, not downloaded again and
/// not duplicated; new mail after it still arrives.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn a_changed_uidvalidity_rematches_by_message_id() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let folder = unique("uv");
    let sent = unique("sent");
    let account = Account::new(
        srv.account("bob", "bob-pass", &[&folder], &sent, "none"),
        Settings::default(),
    );
    seed(&account, &folder, 200, &folder).await;
    create(&account, &sent).await;
    let store_path = dir.path().join("braid.sqlite3");
    let first = braid::channels::email::sync_once(&account, &store_path)
        .await
        .unwrap();
    assert_eq!(first[0].1.stored.stored, 200);
    let before = new_store(dir.path())
        .cursor("email", "bob", &format!("imap:{folder}"))
        .unwrap()
        .unwrap();
    srv.must(&["reset-uidvalidity", "bob", &folder]);
    let mut s = account.login().await.unwrap();
    let extra = mail(
        9999,
        "new@example.net",
        "bob@example.com",
        "After the change",
        "after-uv@example.net",
        "",
    );
    s.append(&folder, None, None, extra.as_bytes())
        .await
        .unwrap();
    s.logout().await.unwrap();
    let again = braid::channels::email::sync_once(&account, &store_path)
        .await
        .unwrap();
    let r = again[0].1;
    let after = new_store(dir.path())
        .cursor("email", "bob", &format!("imap:{folder}"))
        .unwrap()
        .unwrap();
    assert_ne!(
        before.split(' ').next(),
        after.split(' ').next(),
        "UIDVALIDITY did not change"
    );
    assert!(r.uidvalidity_changed, "{r:?}");
    assert_eq!(r.matched, 200, "{r:?}");
    assert_eq!(r.fetched, 1, "{r:?}");
    assert_eq!(email_count(dir.path()), 201);
}

/// A wrong password: a clear error at once, and no retry storm (one login attempt, then a
/// long wait that the status line shows).
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn a_wrong_password_is_a_clear_error_without_a_retry_storm() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let bad = Account::new(
        srv.account("bob", "not-the-password", &["INBOX"], "", "starttls"),
        Settings::default(),
    );
    let e = braid::channels::email::sync_once(&bad, &dir.path().join("braid.sqlite3"))
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("login refused") && text.contains("bob"),
        "{text}"
    );

    let log = PathBuf::from(srv.get("BRAID_MAIL_DIR")).join("dovecot.log");
    let failures = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("user=<bob>")
                    && (l.contains("auth failed")
                        || l.contains("Disconnected") && l.contains("auth"))
            })
            .count()
    };
    // Dovecot logs a refused login when the connection closes: let the one above land first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = failures();
    let w = worker(dir.path(), &bad);
    wait_until("the status to show it", Duration::from_secs(10), || {
        bad.status().contains("login refused")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = bad.status();
    assert!(
        status.contains("check the password") && status.contains("min"),
        "{status}"
    );
    let attempts = failures() - before;
    // One folder (INBOX, no Sent folder): exactly one attempt, then the long wait.
    assert_eq!(attempts, 1, "{attempts} login attempts in 4 s");
    w.shutdown().await;
    // The same through the binary: exit 1, one line naming the problem.
    let config = srv.config_file(dir.path(), &bad.config, "not-the-password");
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["sync", "--once"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("login refused"), "{err}");
}

/// STARTTLS on the IMAP port and implicit TLS on IMAPS, both verified against the test CA;
/// a server that is not who the CA says (no ca_file) is refused.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn starttls_and_implicit_tls() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let folder = unique("tls");
    for mode in ["starttls", "tls"] {
        let account = Account::new(
            srv.account("ann", "ann-pass", &[&folder], "", mode),
            Settings::default(),
        );
        if mode == "starttls" {
            seed(&account, &folder, 5, &folder).await;
        }
        let r = braid::channels::email::sync_once(&account, &dir.path().join("braid.sqlite3"))
            .await
            .unwrap();
        assert_eq!(r.len(), 1, "{mode}");
    }
    assert_eq!(email_count(dir.path()), 5);
    let mut untrusted = srv.account("ann", "ann-pass", &[&folder], "", "tls");
    untrusted.ca_file = None;
    let e = Account::new(untrusted, Settings::default())
        .login()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        e.to_string().contains("TLS") || e.to_string().contains("certificate"),
        "{e}"
    );
}

/// `:save` fetches the message from the server again and writes its attachment, byte for byte,
/// without overwriting a file of the same name.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn attachments_are_saved_from_the_server() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let folder = unique("att");
    let cfg = srv.account("ann", "ann-pass", &[&folder], "", "starttls");
    let account = Account::new(cfg.clone(), Settings::default());
    create(&account, &folder).await;
    let pdf: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let b64 = {
        use std::fmt::Write as _;
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for (n, c) in pdf.chunks(3).enumerate() {
            let v = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(T[((v >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
            if n % 19 == 18 {
                let _ = write!(s, "\r\n");
            }
        }
        s
    };
    let raw = format!(
        "From: Zoë <zoe@example.net>\r\nTo: ann@example.com\r\nSubject: Invoice attached\r\n\
         Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <att-{folder}@example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the invoice.\r\n\
         --b\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    let mut s = account.login().await.unwrap();
    s.append(&folder, None, None, raw.as_bytes()).await.unwrap();
    s.logout().await.unwrap();
    braid::channels::email::sync_once(&account, &dir.path().join("braid.sqlite3"))
        .await
        .unwrap();
    let conv = ConversationId(count(
        dir.path(),
        "SELECT conversation_id FROM messages LIMIT 1",
    ));
    let mut config = braid::config::Config::with_data_dir(dir.path());
    config.email = vec![cfg];
    let out = dir.path().join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("invoice.pdf"), b"an older file").unwrap();
    let msg = braid::channels::save::save(&config, conv, Some(out.clone()))
        .await
        .unwrap();
    assert!(msg.contains("invoice (1).pdf"), "{msg}");
    assert_eq!(std::fs::read(out.join("invoice (1).pdf")).unwrap(), pdf);
    assert_eq!(
        std::fs::read(out.join("invoice.pdf")).unwrap(),
        b"an older file"
    );
}

/// A campaign by email through the real SMTP server, paced at 60 a minute (one a second):
/// three steps on day 0 to one customer (the per-address spacing off, so the email rate is
/// what paces them). The spacing is measured when the outbox marks each one sent.
#[tokio::test]
#[ignore = "needs the mail servers: scripts/mail-servers.sh start, then --ignored --test-threads=1"]
async fn a_campaign_by_email_keeps_to_its_rate_per_minute() {
    let srv = servers();
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let inbox = unique("in");
    let sent = unique("sent");
    let account = Account::new(
        srv.account("support", "support-pass", &[&inbox], &sent, "tls"),
        Settings::default(),
    );
    create(&account, &inbox).await;
    create(&account, &sent).await;
    let id = format!("campaign-{}@example.com", std::process::id());
    let ask = mail(
        1,
        "ann@example.com",
        "support@example.com",
        "Trial",
        &id,
        "",
    );
    let mut s = account.login().await.unwrap();
    s.append(&inbox, None, None, ask.as_bytes()).await.unwrap();
    s.logout().await.unwrap();
    let w = worker(dir.path(), &account);
    wait_until("the customer's mail", Duration::from_secs(20), || {
        email_count(dir.path()) == 1
    })
    .await;
    let mut config = braid::config::Config::with_data_dir(dir.path());
    config.workspace.campaigns = braid::campaign::CampaignConfig::from_toml(
        r#"
[campaign_pacing]
email_per_minute = 60
per_chat_every = "0s"

[[campaigns]]
name = "trial"
segment = "tag:trial channel:email"
channels = ["email"]
[[campaigns.steps]]
after = "0d"
text = "Welcome to your trial."
[[campaigns.steps]]
after = "0d"
text = "Tip one."
[[campaigns.steps]]
after = "0d"
text = "Tip two."
"#,
    )
    .unwrap();
    let mut store = new_store(dir.path());
    let conv = ConversationId(count(
        dir.path(),
        "SELECT conversation_id FROM messages LIMIT 1",
    ));
    store
        .tag(conv, "trial", false, "alice", now_millis())
        .unwrap();
    let c = config.workspace.campaigns.get("trial").unwrap();
    assert_eq!(
        store.campaign_dry_run(c, now_millis()).unwrap().enrolled(),
        1
    );
    store.campaign_start(c, "admin", now_millis()).unwrap();
    let library = braid::canned::Library::default();
    let sent_sql = "SELECT count(*) FROM messages WHERE direction = 'out' AND delivery = 'sent'";
    let mut done_at: Vec<Instant> = Vec::new();
    let t0 = Instant::now();
    while done_at.len() < 3 {
        braid::server::campaign::tick(&mut store, &config, &library, now_millis()).unwrap();
        let n = count(dir.path(), sent_sql) as usize;
        while done_at.len() < n {
            done_at.push(Instant::now());
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "sent only {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.shutdown().await;
    let gaps: Vec<Duration> = done_at.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("campaign by email: sent at gaps {gaps:?} (limit 60/min: 1 s)");
    let span = done_at[2] - done_at[0];
    assert!(
        span >= Duration::from_millis(1900),
        "3 sends in {span:?}: over 60/min"
    );
}
