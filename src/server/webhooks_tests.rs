//! Webhooks out against a local HTTP receiver (axum), on real SQLite files. Signatures are
//! checked with an HMAC-SHA256 written here over `sha2` (not the production [`sign`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::api::{Hello, Request, Response};
use crate::secret::SecretSource;
use crate::webhooks::{EventFilter, WebhookConfig};
use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::Instant;

const SECRET: &str = "whsec-9f8e7d6c5b4a-DO-NOT-PRINT";

/// HMAC-SHA256 (RFC 2104) by hand: the receiver's side, independent of the `hmac` crate.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a receiver does: `X-Braid-Signature == "v1=" + hex(HMAC(secret, ts + "." + body))`.
fn verifies(secret: &str, ts: &str, sig: &str, body: &[u8]) -> bool {
    let mut msg = format!("{ts}.").into_bytes();
    msg.extend_from_slice(body);
    sig == format!("v1={}", to_hex(&hmac_sha256(secret.as_bytes(), &msg)))
}

#[test]
fn the_hand_written_hmac_matches_rfc_4231() {
    // RFC 4231, test case 2.
    assert_eq!(
        to_hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[derive(Debug, Clone)]
struct Got {
    delivery: String,
    event: String,
    ts: String,
    sig: String,
    content_type: String,
    body: Vec<u8>,
    at: Instant,
}

/// How the receiver answers the n-th request (0-based) of one delivery id.
type Behaviour =
    Arc<dyn Fn(usize, &Got) -> (StatusCode, Vec<(String, String)>, String) + Send + Sync>;

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    url: String,
}

impl Receiver {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
    fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }
}

fn ok() -> Behaviour {
    Arc::new(|_, _| (StatusCode::OK, vec![], "thanks".into()))
}

async fn receiver(b: Behaviour) -> Receiver {
    let r = Receiver {
        got: Arc::default(),
        behaviour: Arc::new(Mutex::new(b)),
        url: String::new(),
    };
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let g = Got {
                    delivery: h("x-braid-delivery"),
                    event: h("x-braid-event"),
                    ts: h("x-braid-timestamp"),
                    sig: h("x-braid-signature"),
                    content_type: h("content-type"),
                    body: body.to_vec(),
                    at: Instant::now(),
                };
                let n = {
                    let mut all = state.got.lock().unwrap();
                    let n = all.iter().filter(|x| x.delivery == g.delivery).count();
                    all.push(g.clone());
                    n
                };
                let b = state.behaviour.lock().unwrap().clone();
                let (status, headers, body) = b(n, &g);
                if status == StatusCode::GATEWAY_TIMEOUT {
                    // Hang (the dispatcher is stopped meanwhile).
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                let mut resp = axum::response::Response::new(axum::body::Body::from(body));
                *resp.status_mut() = status;
                for (k, v) in headers {
                    resp.headers_mut().insert(
                        axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        v.parse().unwrap(),
                    );
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        ..r
    }
}

fn endpoint(name: &str, url: &str, events: EventFilter) -> WebhookConfig {
    WebhookConfig {
        name: name.into(),
        url: url.into(),
        events,
        secret: SecretSource::Plain(SECRET.into()),
        timeout_ms: 3_000,
    }
}

fn fast() -> Backoff {
    Backoff {
        base_ms: 40,
        cap_ms: 200,
        give_up_ms: 60_000,
    }
}

/// A customer's email (conversation_created, message_in), then its resolution
/// (status_changed). Returns the conversation.
fn customer_writes(path: &std::path::Path, body: &str) -> crate::model::ConversationId {
    let mut store = Store::open(path).unwrap();
    let r = crate::ingest::ingest(
        &mut store,
        &crate::ingest::Inbound {
            channel: crate::model::Channel::Email,
            account: String::new(),
            external_id: format!("<{body}@x>"),
            direction: crate::model::Direction::In,
            customer: crate::identity::Claim::new(crate::model::IdentityKind::Email, "ana@x.org"),
            linked: vec![],
            customer_name: Some("Ana".into()),
            author: None,
            subject: Some("Order".into()),
            body: body.into(),
            sent_at: now_millis(),
            meta: None,
            cursor: None,
        },
        &crate::ingest::Settings::default(),
    )
    .unwrap();
    let crate::ingest::Ingested::Stored { conversation, .. } = r else {
        panic!("{r:?}")
    };
    store
        .set_status(
            conversation,
            crate::model::Status::Resolved,
            None,
            "ann",
            now_millis(),
        )
        .unwrap();
    conversation
}

/// A store file whose `webhooks` cursor is placed (what a first server start does).
fn fresh_store(dir: &std::path::Path, eps: &[WebhookConfig]) -> PathBuf {
    let path = dir.join("braid.sqlite3");
    let filters: Vec<(String, EventFilter)> = eps
        .iter()
        .map(|e| (e.name.clone(), e.events.clone()))
        .collect();
    Store::open(&path)
        .unwrap()
        .derive_webhooks(&filters, now_millis())
        .unwrap();
    path
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(t) = f() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn states(path: &std::path::Path, endpoint: &str) -> Vec<(String, String, i64)> {
    Store::open(path).unwrap().webhook_rows(endpoint).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_with_backoff_the_same_id_and_body_signed() {
    let dir = tempfile::tempdir().unwrap();
    // Every delivery fails twice with a 500, then is accepted.
    let rx = receiver(Arc::new(|n, _| {
        if n < 2 {
            (StatusCode::INTERNAL_SERVER_ERROR, vec![], "busy".into())
        } else {
            (StatusCode::NO_CONTENT, vec![], String::new())
        }
    }))
    .await;
    let eps = vec![endpoint(
        "crm",
        &rx.url,
        EventFilter::Kinds(vec!["message_in".into(), "status_changed".into()]),
    )];
    let path = fresh_store(dir.path(), &eps);
    customer_writes(&path, "where is my parcel");
    let hooks = Arc::new(Hooks::new(&eps, fast()));
    let _d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
    let rows = until("both delivered", || {
        let s = states(&path, "crm");
        (s.len() == 2 && s.iter().all(|r| r.1 == "delivered")).then_some(s)
    })
    .await;
    assert!(rows.iter().all(|r| r.2 == 3), "{rows:?}");
    let got = rx.got();
    // The filter: the conversation_created event was not sent.
    let mut kinds: Vec<&str> = got.iter().map(|g| g.event.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, vec!["message_in", "status_changed"]);
    for (id, _, _) in &rows {
        let tries: Vec<&Got> = got.iter().filter(|g| &g.delivery == id).collect();
        assert_eq!(tries.len(), 3, "{id}");
        // The same bytes every time, each attempt signed (and verified independently).
        assert!(tries.iter().all(|t| t.body == tries[0].body));
        for t in &tries {
            assert!(verifies(SECRET, &t.ts, &t.sig, &t.body), "{t:?}");
            assert_eq!(t.content_type, "application/json");
            let ts: i64 = t.ts.parse().unwrap();
            assert!((ts - now_millis() / 1000).abs() < 60);
        }
        // Backoff: the second wait is longer than the first's minimum (40 ms, jittered).
        assert!(tries[1].at - tries[0].at >= Duration::from_millis(30));
        assert!(tries[2].at - tries[1].at >= Duration::from_millis(60));
        let body: serde_json::Value = serde_json::from_slice(&tries[0].body).unwrap();
        assert_eq!(body["id"].as_str(), Some(id.as_str()));
        assert_eq!(body["event"].as_str(), Some(tries[0].event.as_str()));
    }
    let msg = got.iter().find(|g| g.event == "message_in").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&msg.body).unwrap();
    assert_eq!(body["data"]["message"]["body"], "where is my parcel");
    assert_eq!(body["data"]["message"]["channel"], "email");
    assert_eq!(body["data"]["message"]["direction"], "in");
    assert!(body["data"]["conversation_id"].is_i64());
    assert!(body["at"].as_str().unwrap().ends_with('Z'));
    let st = got.iter().find(|g| g.event == "status_changed").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&st.body).unwrap();
    assert_eq!(body["data"]["actor"], "ann");

    // A forged or changed request does not verify.
    let t = &msg;
    let mut changed = t.body.clone();
    let i = changed.iter().position(|b| *b == b'p').unwrap();
    changed[i] = b'P';
    assert!(!verifies(SECRET, &t.ts, &t.sig, &changed));
    let later = (t.ts.parse::<i64>().unwrap() + 1).to_string();
    assert!(!verifies(SECRET, &later, &t.sig, &t.body));
    assert!(!verifies("another-secret", &t.ts, &t.sig, &t.body));

    let c = Store::open(&path).unwrap().webhook_counts("crm").unwrap();
    assert_eq!((c.delivered, c.pending, c.failing, c.failed), (2, 0, 0, 0));
    assert!(c.last_success.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_a_permanent_failure_visible_and_retriable_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(Arc::new(|_, _| {
        (
            StatusCode::GONE,
            vec![],
            "endpoint \u{1b}[31mremoved".into(),
        )
    }))
    .await;
    let eps = vec![endpoint(
        "old",
        &rx.url,
        EventFilter::Kinds(vec!["message_in".into()]),
    )];
    let path = fresh_store(dir.path(), &eps);
    customer_writes(&path, "hello");
    let hooks = Arc::new(Hooks::new(&eps, fast()));
    let _d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
    until("failed", || {
        let s = states(&path, "old");
        (s.len() == 1 && s[0].1 == "failed").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 1, "a 410 is not retried");
    let mut store = Store::open(&path).unwrap();
    let list = status(&hooks, &store).unwrap();
    assert_eq!(list[0].counts.failed, 1);
    let err = list[0].counts.last_error.clone().unwrap();
    assert!(err.contains("HTTP 410 Gone"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "the receiver's text is sanitized: {err}"
    );
    assert_eq!(list[0].counts.last_error_status, Some(410));
    // Fixed: sent again by hand.
    rx.set(ok());
    let m = retry(&hooks, &mut store, "old").unwrap();
    assert!(m.starts_with("1 failed delivery"), "{m}");
    until("delivered after the retry", || {
        (states(&path, "old")[0].1 == "delivered").then_some(())
    })
    .await;
    let got = rx.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].delivery, got[1].delivery);
    assert_eq!(got[0].body, got[1].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(Arc::new(|n, _| {
        if n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after".into(), "1".into())],
                String::new(),
            )
        } else {
            (StatusCode::OK, vec![], String::new())
        }
    }))
    .await;
    let eps = vec![endpoint(
        "crm",
        &rx.url,
        EventFilter::Kinds(vec!["message_in".into()]),
    )];
    let path = fresh_store(dir.path(), &eps);
    customer_writes(&path, "hello");
    let hooks = Arc::new(Hooks::new(&eps, fast()));
    let _d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
    until("delivered", || {
        (states(&path, "crm").first().map(|r| r.1.as_str()) == Some("delivered")).then_some(())
    })
    .await;
    let got = rx.got();
    assert_eq!(got.len(), 2);
    assert!(got[1].at - got[0].at >= Duration::from_millis(950));
}

/// At least once across a crash: attempts in flight when the dispatcher died (rows left
/// `sending` in the SQLite file) and deliveries never tried are all sent by the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_at_a_crash_are_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver hangs: the first dispatcher dies with attempts in flight.
    let rx = receiver(Arc::new(|_, _| {
        (StatusCode::GATEWAY_TIMEOUT, vec![], String::new())
    }))
    .await;
    let eps = vec![endpoint("crm", &rx.url, EventFilter::All)];
    let path = fresh_store(dir.path(), &eps);
    customer_writes(&path, "one");
    customer_writes(&path, "two");
    {
        let hooks = Arc::new(Hooks::new(&eps, fast()));
        let d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
        until("attempts in flight", || {
            (!rx.got().is_empty()).then_some(())
        })
        .await;
        drop(d);
    }
    let before = states(&path, "crm");
    assert!(before.len() >= 4, "{before:?}");
    assert!(before.iter().any(|r| r.1 == "sending"), "{before:?}");
    assert!(before.iter().all(|r| r.1 != "delivered"));
    // More happened while no dispatcher ran.
    customer_writes(&path, "three");
    rx.set(ok());
    let seen_before = rx.got().len();
    let hooks = Arc::new(Hooks::new(&eps, fast()));
    let _d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
    let rows = until("all delivered", || {
        let s = states(&path, "crm");
        (s.len() > before.len() && s.iter().all(|r| r.1 == "delivered")).then_some(s)
    })
    .await;
    let after: Vec<Got> = rx.got().split_off(seen_before);
    for (id, _, _) in &rows {
        assert!(
            after.iter().any(|g| &g.delivery == id),
            "{id} was not delivered after the restart"
        );
    }
    for g in &after {
        assert!(verifies(SECRET, &g.ts, &g.sig, &g.body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_never_in_status_errors_or_debug() {
    let dir = tempfile::tempdir().unwrap();
    // A receiver that echoes everything it got in its error.
    let rx = receiver(Arc::new(|_, g: &Got| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![],
            format!("{} {} {}", g.sig, g.ts, String::from_utf8_lossy(&g.body)),
        )
    }))
    .await;
    let eps = vec![
        endpoint("crm", &rx.url, EventFilter::All),
        // Nothing listens there.
        endpoint(
            "down",
            "http://user:pw@127.0.0.1:9/hook?token=abc",
            EventFilter::All,
        ),
        // Its secret cannot be read: it sends nothing, and says why.
        WebhookConfig {
            secret: SecretSource::Env("BRAID_TEST_WEBHOOK_SECRET_NOT_SET".into()),
            ..endpoint("nosecret", &rx.url, EventFilter::All)
        },
    ];
    let path = fresh_store(dir.path(), &eps);
    customer_writes(&path, "hi");
    let hooks = Arc::new(Hooks::new(&eps, fast()));
    let _d = start(path.clone(), Arc::clone(&hooks)).await.unwrap();
    until("errors recorded", || {
        let s = Store::open(&path).unwrap();
        (s.webhook_counts("crm").unwrap().last_error.is_some()
            && s.webhook_counts("down").unwrap().last_error.is_some()
            && hooks.endpoints[2].problem().is_some())
        .then_some(())
    })
    .await;
    let list = status(&hooks, &Store::open(&path).unwrap()).unwrap();
    let mut text = Vec::new();
    crate::cli::webhooks::write_status(&list, now_millis(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let json = serde_json::to_string(&list).unwrap();
    let debug = format!("{hooks:?} {:?}", hooks.endpoints[0].config);
    for out in [&text, &json, &debug] {
        assert!(!out.contains(SECRET), "{out}");
        assert!(!out.contains("token=abc") && !out.contains("pw@"), "{out}");
    }
    assert!(text.contains("failing"), "{text}");
    let p = list[2].problem.clone().unwrap();
    assert!(p.contains("secret_env"), "{p}");
    assert!(list[2].counts.pending >= 2, "{:?}", list[2].counts);
    assert!(text.contains("NOT SENDING"), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.contains("next retry"), "{text}");
}

/// Through the server: `braid webhooks test` and `status` are admin requests; the server's
/// own dispatcher delivers an event another writer made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_webhook_requests_for_admins_and_delivers() {
    use crate::server::workspace::AgentDef;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rx = receiver(ok()).await;
    let mut config = crate::config::Config::with_data_dir(&data);
    config.workspace.webhooks = vec![endpoint(
        "crm",
        &rx.url,
        EventFilter::Kinds(vec!["status_changed".into(), "contact_created".into()]),
    )];
    config.workspace.agents.push(AgentDef {
        user: "u-bob".into(),
        name: "bob".into(),
        display: None,
        role: crate::api::Role::Supervisor,
        teams: vec![],
    });
    let server = crate::server::start(crate::server::ServerOptions::new(config))
        .await
        .unwrap();
    let (admin, _a) = server.connect_local(Hello::new("t", None)).await.unwrap();
    match admin
        .call(Request::WebhookTest { name: "crm".into() })
        .await
        .unwrap()
    {
        Response::WebhookTested(t) => {
            assert_eq!(t.status, Some(200));
            assert!(t.ok);
        }
        other => panic!("{other:?}"),
    }
    let ping = rx.got().pop().unwrap();
    assert_eq!(ping.event, "ping");
    assert!(verifies(SECRET, &ping.ts, &ping.sig, &ping.body));
    match admin
        .call(Request::WebhookTest {
            name: "nope".into(),
        })
        .await
        .unwrap()
    {
        Response::Error(e) => assert!(e.contains("configured: crm"), "{e}"),
        other => panic!("{other:?}"),
    }
    let (bob, _b) = server
        .connect_local_as(Hello::new("bob", None), Some("bob"))
        .await
        .unwrap();
    for req in [
        Request::WebhooksStatus,
        Request::WebhookTest { name: "crm".into() },
        Request::WebhookRetry { name: "crm".into() },
    ] {
        match bob.call(req).await.unwrap() {
            Response::Refused(r) => assert!(r.contains("admin"), "{r}"),
            other => panic!("{other:?}"),
        }
    }
    // Another writer (a channel) stores a new customer's message and an agent resolves it.
    let path = data.join(crate::store::DB_FILE);
    customer_writes(&path, "new here");
    until("delivered by the server", || {
        let s = states(&path, "crm");
        (s.len() == 2 && s.iter().all(|r| r.1 == "delivered")).then_some(())
    })
    .await;
    let mut kinds: Vec<String> = rx.got().iter().map(|g| g.event.clone()).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["contact_created", "ping", "status_changed"]);
    match admin.call(Request::WebhooksStatus).await.unwrap() {
        Response::Webhooks(l) => {
            assert_eq!(l.len(), 1);
            assert_eq!(l[0].counts.delivered, 2);
        }
        other => panic!("{other:?}"),
    }
    drop(admin);
    drop(bob);
    server.shutdown().await;
}

/// The README's Python verifier, run as written (python3's own `hmac`) on a real delivery:
/// it accepts it, and refuses it with one byte of the body changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_python_verifier_accepts_a_real_delivery() {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg("command -v python3")
        .output()
        .unwrap()
        .status
        .success();
    if !found {
        eprintln!("skipped: no python3 on this machine");
        return;
    }
    let readme = include_str!("../../README.md");
    let at = readme
        .find("## Webhooks out")
        .expect("the README's section");
    let rest = &readme[at..];
    let code = &rest[rest.find("```python\n").unwrap() + 10..];
    let code = &code[..code.find("```").unwrap()];
    let rx = receiver(ok()).await;
    let eps = vec![endpoint("crm", &rx.url, EventFilter::All)];
    let hooks = Hooks::new(&eps, fast());
    match test(&hooks, "crm").await {
        crate::api::Response::WebhookTested(t) => assert!(t.ok, "{t:?}"),
        other => panic!("{other:?}"),
    }
    let g = rx.got().pop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |body: &[u8]| {
        std::fs::write(dir.path().join("body"), body).unwrap();
        let script = format!(
            "{code}\nimport sys\nbody = open(sys.argv[1], 'rb').read()\n\
             h = {{'X-Braid-Timestamp': sys.argv[2], 'X-Braid-Signature': sys.argv[3]}}\n\
             print(verify(sys.argv[4].encode(), h, body))\n"
        );
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(dir.path().join("body"))
            .arg(&g.ts)
            .arg(&g.sig)
            .arg(SECRET)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(run(&g.body), "True");
    let mut changed = g.body.clone();
    changed[2] ^= 1;
    assert_eq!(run(&changed), "False");
}
