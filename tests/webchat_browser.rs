//! End to end in a real browser: Debian's headless Chromium, driven through chromedriver
//! (WebDriver, the `fantoccini` client), opens braid's demo page, chats through the widget, and
//! gets an agent reply queued in braid and sent by the worker.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages), so it is ignored by a plain
//! `cargo test`; `.ci/run` installs them and runs:
//!
//!     cargo test --test webchat_browser -- --ignored
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::webchat::{Options, WebChatConfig};
use braid::model::{Channel, Delivery, IdentityKind, now_millis};
use braid::store::Store;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// chromedriver in a process group of its own, killed with the browsers it started on drop
/// (a failed test leaves no Chromium behind).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this test created.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn find(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed (apt-get install chromium chromium-driver)");
}

async fn browser(profile: &std::path::Path) -> (Driver, Client) {
    let driver_bin = find(&["chromedriver"]);
    let chromium = find(&["chromium", "chromium-browser"]);
    let port = free_port();
    let child = Command::new(driver_bin)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    (driver, client)
}

/// Poll `f` until it gives Some, for up to `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.unwrap_or_default() {
        if let Ok(t) = e.text().await {
            out.push(t);
        }
    }
    out
}

async fn visitor_token(client: &Client, origin: &str) -> Option<String> {
    let key = format!("braid-chat:{origin}:visitor");
    let v = client
        .execute(
            "return localStorage.getItem(arguments[0]);",
            vec![key.into()],
        )
        .await
        .ok()?;
    let raw = v.as_str()?;
    serde_json::from_str::<Option<String>>(raw).ok().flatten()
}

async fn type_message(client: &Client, text: &str) {
    let input = client.find(Locator::Id("braid-chat-input")).await.unwrap();
    input.send_keys(text).await.unwrap();
    client
        .find(Locator::Id("braid-chat-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// One browser at a time: two headless Chromiums starting at once on a small machine can fail.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Setup {
    _one: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
    _profile: tempfile::TempDir,
    store: Store,
    worker: braid::worker::WorkerHandle,
    _driver: Driver,
    client: Client,
    origin: String,
}

/// A worker serving the web chat on a free port, and a fresh browser.
async fn setup() -> Setup {
    let one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let port = free_port();
    let config = WebChatConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        ..WebChatConfig::default()
    };
    let mut opts = braid::worker::WorkerOptions::new(dir.path());
    opts.webchat = Some(Options::new(config, Default::default()));
    let mut worker = braid::worker::spawn_with(opts).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        worker
            .status
            .wait_for(|s| s.detail.contains("web chat http://")),
    )
    .await
    .expect("the web chat is served")
    .unwrap();
    let origin = format!("http://127.0.0.1:{port}");
    let (driver, client) = browser(profile.path()).await;
    Setup {
        _one: one,
        _dir: dir,
        _profile: profile,
        store,
        worker,
        _driver: driver,
        client,
        origin,
    }
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn a_visitor_chats_in_a_real_browser_and_gets_the_agents_reply() {
    let Setup {
        mut store,
        worker,
        client,
        origin,
        // Bound (not `..`): the rest must live until the end of the test.
        _one,
        _dir: dir,
        _profile,
        _driver,
    } = setup().await;
    client.goto(&format!("{origin}/")).await.unwrap();
    let token = eventually(Duration::from_secs(10), "a visitor id", || {
        visitor_token(&client, &origin)
    })
    .await;
    let visitor = token.split('.').next().unwrap().to_string();

    // The visitor writes (with markup that must stay text) and gives an email.
    client
        .find(Locator::Id("braid-chat-email"))
        .await
        .unwrap()
        .send_keys("kim@example.com")
        .await
        .unwrap();
    let hostile = "Hi! <img src=x onerror=alert(1)> do you ship to Oslo?";
    type_message(&client, hostile).await;
    let contact = eventually(Duration::from_secs(10), "the message in the store", || {
        let found = store
            .contact_by_identity(IdentityKind::WebChat, &visitor)
            .unwrap()
            .filter(|c| !store.timeline(*c, None, 10).unwrap().is_empty());
        async move { found }
    })
    .await;
    let t = store.timeline(contact, None, 10).unwrap();
    assert_eq!(t[0].body, hostile);
    assert_eq!(t[0].channel, Channel::WebChat);
    // The email the visitor typed is a claim, not an identity.
    assert_eq!(
        store
            .contact_by_identity(IdentityKind::Email, "kim@example.com")
            .unwrap(),
        None,
        "a typed email is never linked by itself"
    );
    assert_eq!(
        store
            .claims(contact)
            .unwrap()
            .iter()
            .map(|c| c.value.as_str())
            .collect::<Vec<_>>(),
        vec!["kim@example.com"]
    );
    // Shown as text: no <img> element was created from it.
    let imgs = client
        .find_all(Locator::Css("#braid-chat-messages img"))
        .await
        .unwrap();
    assert!(imgs.is_empty());
    assert!(
        texts(&client, ".braid-visitor .braid-text")
            .await
            .contains(&hostile.to_string())
    );

    // An agent answers in braid; the worker pushes it to the open widget.
    let conv = store.active_conversation(contact).unwrap().unwrap();
    let reply = "Yes, we ship to Norway in 3-5 days.";
    let queued = Instant::now();
    let id = store
        .queue_reply(conv, Channel::WebChat, "bob", reply, now_millis())
        .unwrap();
    eventually(Duration::from_secs(10), "the reply in the widget", || {
        let c = &client;
        async move {
            texts(c, ".braid-agent .braid-text")
                .await
                .contains(&reply.to_string())
                .then_some(())
        }
    })
    .await;
    let took = queued.elapsed();
    println!("agent reply visible in the browser after {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    eventually(Duration::from_secs(5), "the reply marked sent", || {
        let d = store.message(id).unwrap().delivery;
        async move { (d == Some(Delivery::Sent)).then_some(()) }
    })
    .await;

    // The same reply sent again (a crash between sending and recording it leaves it in the
    // outbox): the widget shows it once, by its id.
    let db = rusqlite::Connection::open(dir.path().join(braid::store::DB_FILE)).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute(
        "INSERT INTO outbox(message_id, channel, recipient, state, next_attempt_at)
         VALUES (?1, 'webchat', ?2, 'failed', 0)",
        (id.0, &visitor),
    )
    .unwrap();
    drop(db);
    store.retry(id, "test", now_millis()).unwrap();
    eventually(Duration::from_secs(5), "the reply sent again", || {
        let d = store.message(id).unwrap().delivery;
        async move { (d == Some(Delivery::Sent)).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = texts(&client, ".braid-agent .braid-text").await;
    assert_eq!(
        shown.iter().filter(|t| *t == reply).count(),
        1,
        "shown twice: {shown:?}"
    );

    // A reload keeps the visitor and the history.
    client.refresh().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the history after a reload",
        || {
            let c = &client;
            async move {
                texts(c, ".braid-agent .braid-text")
                    .await
                    .contains(&reply.to_string())
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(visitor_token(&client, &origin).await, Some(token));
    type_message(&client, "Great, thanks!").await;
    eventually(Duration::from_secs(10), "the second message", || {
        let n = store.timeline(contact, None, 10).unwrap().len();
        async move { (n == 3).then_some(()) }
    })
    .await;

    client.close().await.unwrap();
    worker.shutdown().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn the_long_poll_fallback_works_in_a_real_browser() {
    let Setup {
        mut store,
        worker,
        client,
        origin,
        // Bound (not `..`): the rest must live until the end of the test.
        _one,
        _dir,
        _profile,
        _driver,
    } = setup().await;
    client
        .goto(&format!("{origin}/?braid_transport=poll"))
        .await
        .unwrap();
    let token = eventually(Duration::from_secs(10), "a visitor id", || {
        visitor_token(&client, &origin)
    })
    .await;
    let visitor = token.split('.').next().unwrap().to_string();
    type_message(&client, "Hello over long poll").await;
    let contact = eventually(Duration::from_secs(10), "the message in the store", || {
        let found = store
            .contact_by_identity(IdentityKind::WebChat, &visitor)
            .unwrap()
            .filter(|c| !store.timeline(*c, None, 10).unwrap().is_empty());
        async move { found }
    })
    .await;
    let conv = store.active_conversation(contact).unwrap().unwrap();
    let reply = "Long poll reply from bob.";
    let queued = Instant::now();
    store
        .queue_reply(conv, Channel::WebChat, "bob", reply, now_millis())
        .unwrap();
    eventually(Duration::from_secs(10), "the reply in the widget", || {
        let c = &client;
        async move {
            texts(c, ".braid-agent .braid-text")
                .await
                .contains(&reply.to_string())
                .then_some(())
        }
    })
    .await;
    println!("long-poll reply visible after {:?}", queued.elapsed());
    assert!(queued.elapsed() < Duration::from_secs(3));
    client.close().await.unwrap();
    worker.shutdown().await;
}
