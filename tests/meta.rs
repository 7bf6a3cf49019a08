//! Instagram and Messenger end to end over real sockets: a local axum server plays the Graph
//! API's Send API (`POST /me/messages`, recording each request), and braid's web chat server
//! receives real webhooks signed like Meta signs them, stored in a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use braid::channels::Outbound;
use braid::channels::hooks::verify;
use braid::channels::meta::{MetaChannel, MetaConfig, Platform};
use braid::channels::webchat::{Options, WebChatConfig, WebChatServer};
use braid::ingest;
use braid::model::{Channel, ConversationId, Delivery, IdentityKind, now_millis};
use braid::store::Store;
use braid::worker::{DispatchSettings, Dispatcher, Outcome, Senders};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "EAAB-page-token";
const APP_SECRET: &[u8] = b"meta-app-secret";
const PAGE: &str = "1099000001";
const IG: &str = "1784000002";
const PSID: &str = "5550001";
const DAY: i64 = 24 * 3600 * 1000;

#[derive(Default)]
struct GraphState {
    requests: Vec<(Option<String>, Value)>,
    script: VecDeque<(u16, Value)>,
}

type Shared = Arc<Mutex<GraphState>>;

async fn send_api(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut g = st.lock().unwrap();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    g.requests.push((auth.clone(), body.clone()));
    if auth.as_deref() != Some(&*format!("Bearer {TOKEN}")) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "Invalid OAuth access token", "code": 190}})),
        );
    }
    if let Some((status, answer)) = g.script.pop_front() {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer));
    }
    let n = g.requests.len();
    (
        StatusCode::OK,
        axum::Json(
            json!({"recipient_id": body["recipient"]["id"], "message_id": format!("m_OUT{n}")}),
        ),
    )
}

struct Braid {
    dir: tempfile::TempDir,
    server: WebChatServer,
    graph: Shared,
    messenger: MetaConfig,
    instagram: MetaConfig,
    http: reqwest::Client,
}

impl Braid {
    async fn start() -> Braid {
        let graph: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/v21.0/me/messages", post(send_api))
            .with_state(Arc::clone(&graph));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v21.0", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let secret = std::str::from_utf8(APP_SECRET).unwrap();
        let messenger = MetaConfig::plain(Platform::Messenger, PAGE, &base, TOKEN, secret, "vt");
        let instagram = MetaConfig::plain(Platform::Instagram, IG, &base, TOKEN, secret, "vt");
        let dir = tempfile::tempdir().unwrap();
        Store::open_dir(dir.path()).unwrap();
        let web = WebChatConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..WebChatConfig::default()
        };
        let mut opts = Options::new(web, ingest::Settings::default());
        opts.hooks = vec![messenger.spec(), instagram.spec()];
        let server = WebChatServer::start(&opts, dir.path()).await.unwrap();
        Braid {
            dir,
            server,
            graph,
            messenger,
            instagram,
            http: reqwest::Client::new(),
        }
    }

    fn store(&self) -> Store {
        Store::open_dir(self.dir.path()).unwrap()
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>, sig: Option<String>) -> u16 {
        let mut req = self
            .http
            .post(format!("http://{}/hooks/{path}", self.server.addr()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = sig {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.unwrap().status().as_u16()
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> u16 {
        let sig = verify::meta_sign(APP_SECRET, &body);
        self.post_raw(path, body, Some(sig)).await
    }

    async fn until<T>(&self, what: &str, check: impl Fn(&Store) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(t) = check(&self.store()) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited in vain for {what}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The customer's message with `body` arrives: (its conversation, the message's body).
    async fn stored(&self, kind: IdentityKind, who: &str, body: &str) -> ConversationId {
        self.until(body, |s| {
            let c = s.contact_by_identity(kind, who).unwrap()?;
            s.timeline(c, None, 100)
                .unwrap()
                .into_iter()
                .find(|m| m.body == body)
                .map(|m| m.conversation_id)
        })
        .await
    }

    fn requests(&self) -> Vec<(Option<String>, Value)> {
        self.graph.lock().unwrap().requests.clone()
    }

    fn dispatcher(&self) -> Dispatcher {
        let store = Arc::new(Mutex::new(self.store()));
        let senders = Senders::new([
            MetaChannel::new(self.messenger.clone()) as Arc<dyn Outbound>,
            MetaChannel::new(self.instagram.clone()) as Arc<dyn Outbound>,
        ]);
        Dispatcher::new(store, senders, DispatchSettings::default())
    }

    /// Make the customer's last message `age` old (the windows are measured from it).
    fn age_inbound(&self, conv: ConversationId, age: i64) {
        rusqlite::Connection::open(self.dir.path().join(braid::store::DB_FILE))
            .unwrap()
            .execute(
                "UPDATE messages SET created_at = ?1 WHERE conversation_id = ?2 AND direction = 'in'",
                (now_millis() - age, conv.0),
            )
            .unwrap();
    }
}

fn hook(object: &str, page: &str, messaging: Value) -> Vec<u8> {
    json!({"object": object, "entry": [{"id": page, "time": now_millis(), "messaging": messaging}]})
        .to_string()
        .into_bytes()
}

fn dm(page: &str, from: &str, mid: &str, message: Value) -> Value {
    let mut m = message;
    m["mid"] = json!(mid);
    json!([{"sender": {"id": from}, "recipient": {"id": page}, "timestamp": now_millis(),
            "message": m}])
}

#[tokio::test]
async fn messenger_dms_in_and_replies_out_within_the_windows() {
    let b = Braid::start().await;
    let body = hook(
        "page",
        PAGE,
        dm(PAGE, PSID, "m_1", json!({"text": "Do you ship to Spain?"})),
    );
    // Forged and unsigned: refused, nothing stored.
    let forged = verify::meta_sign(b"wrong", &body);
    assert_eq!(
        b.post_raw("messenger", body.clone(), Some(forged)).await,
        403
    );
    assert_eq!(b.post_raw("messenger", body.clone(), None).await, 403);
    assert_eq!(b.post("messenger", body.clone()).await, 200);
    assert_eq!(b.post("messenger", body).await, 200, "Meta's retry");
    // Our own reply echoed back is not a customer message.
    let echo = hook(
        "page",
        PAGE,
        dm(
            PAGE,
            PAGE,
            "m_echo",
            json!({"text": "ours", "is_echo": true}),
        ),
    );
    assert_eq!(b.post("messenger", echo).await, 200);
    let conv = b
        .stored(IdentityKind::Messenger, PSID, "Do you ship to Spain?")
        .await;
    let s = b.store();
    let c = s
        .contact_by_identity(IdentityKind::Messenger, PSID)
        .unwrap()
        .unwrap();
    let t = s.timeline(c, None, 10).unwrap();
    assert_eq!(t.len(), 1, "stored once: {t:?}");
    assert!(
        s.contact_by_identity(IdentityKind::Messenger, PAGE)
            .unwrap()
            .is_none(),
        "the echo of our own message made no contact"
    );
    assert_eq!(t[0].channel, Channel::Messenger);

    // Within 24 hours: a RESPONSE.
    let mut s = b.store();
    let id = s
        .queue_reply(
            conv,
            Channel::Messenger,
            "bob",
            "Yes, in 3 days.",
            now_millis(),
        )
        .unwrap();
    assert_eq!(
        b.dispatcher().run_until_idle().await.unwrap(),
        vec![(id, Ok(Outcome::Sent))]
    );
    let r = b.requests();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0.as_deref(), Some(&*format!("Bearer {TOKEN}")));
    assert_eq!(
        r[0].1,
        json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
               "message": {"text": "Yes, in 3 days."}})
    );
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));

    // Three days later: a human agent's reply, tagged.
    b.age_inbound(conv, 3 * DAY);
    let id = s
        .queue_reply(
            conv,
            Channel::Messenger,
            "bob",
            "Did it arrive?",
            now_millis(),
        )
        .unwrap();
    assert_eq!(
        b.dispatcher().run_until_idle().await.unwrap(),
        vec![(id, Ok(Outcome::Sent))]
    );
    assert_eq!(
        b.requests()[1].1,
        json!({"recipient": {"id": PSID}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT",
               "message": {"text": "Did it arrive?"}})
    );

    // Queued while the window was open, sent eight days later (a dispatcher that was down):
    // the sender refuses it before any request.
    let id = s
        .queue_reply(conv, Channel::Messenger, "bob", "Hello?", now_millis())
        .unwrap();
    b.age_inbound(conv, 8 * DAY);
    // And from now on the store refuses to queue one at all.
    let e = s
        .queue_reply(conv, Channel::Messenger, "bob", "Anyone?", now_millis())
        .unwrap_err()
        .to_string();
    assert!(e.contains("only within 7 days"), "{e}");
    let done = b.dispatcher().run_until_idle().await.unwrap();
    let Ok(Outcome::Failed { reason, retry }) = &done[0].1 else {
        panic!("{done:?}")
    };
    assert!(!retry);
    assert!(reason.contains("7-day window"), "{reason}");
    assert_eq!(b.requests().len(), 2, "no request for the refused reply");
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Failed));
}

#[tokio::test]
async fn instagram_story_replies_and_mentions_are_marked() {
    let b = Braid::start().await;
    let body = hook(
        "instagram",
        IG,
        json!([
            {"sender": {"id": "9990001"}, "recipient": {"id": IG}, "timestamp": now_millis(),
             "message": {"mid": "ig_1", "text": "where can I buy this?",
                         "reply_to": {"story": {"id": "1789", "url": "https://cdn.example/s"}}}},
            {"sender": {"id": "9990001"}, "recipient": {"id": IG}, "timestamp": now_millis() + 1,
             "message": {"mid": "ig_2", "attachments": [
                 {"type": "story_mention", "payload": {"url": "https://cdn.example/m"}}]}}
        ]),
    );
    // The Messenger path does not take Instagram's body as its own.
    assert_eq!(b.post("messenger", body.clone()).await, 200);
    assert_eq!(b.post("instagram", body).await, 200);
    let conv = b
        .stored(
            IdentityKind::Instagram,
            "9990001",
            "[story reply] where can I buy this?",
        )
        .await;
    b.stored(IdentityKind::Instagram, "9990001", "[story mention]")
        .await;
    assert!(
        b.store()
            .contact_by_identity(IdentityKind::Messenger, "9990001")
            .unwrap()
            .is_none()
    );
    let mut s = b.store();
    let id = s
        .queue_reply(
            conv,
            Channel::Instagram,
            "ann",
            "Link in bio!",
            now_millis(),
        )
        .unwrap();
    assert_eq!(
        b.dispatcher().run_until_idle().await.unwrap(),
        vec![(id, Ok(Outcome::Sent))]
    );
    assert_eq!(
        b.requests()[0].1,
        json!({"recipient": {"id": "9990001"}, "messaging_type": "RESPONSE",
               "message": {"text": "Link in bio!"}})
    );
}

#[tokio::test]
async fn throttling_is_retried_and_sent_once() {
    let b = Braid::start().await;
    let body = hook("page", PAGE, dm(PAGE, PSID, "m_1", json!({"text": "hi"})));
    assert_eq!(b.post("messenger", body).await, 200);
    let conv = b.stored(IdentityKind::Messenger, PSID, "hi").await;
    b.graph.lock().unwrap().script.push_back((
        400,
        json!({"error": {"message": "(#613) Calls to this api have exceeded the rate limit.",
                         "code": 613}}),
    ));
    let mut s = b.store();
    let id = s
        .queue_reply(conv, Channel::Messenger, "bob", "hello", now_millis())
        .unwrap();
    let mut d = b.dispatcher();
    let done = d.run_until_idle().await.unwrap();
    let Ok(Outcome::Failed {
        reason,
        retry: true,
    }) = &done[0].1
    else {
        panic!("{done:?}")
    };
    assert!(reason.starts_with("rate limited by Messenger"), "{reason}");
    s.retry(id, "bob", now_millis()).unwrap();
    assert_eq!(
        d.run_until_idle().await.unwrap(),
        vec![(id, Ok(Outcome::Sent))]
    );
    assert!(d.run_until_idle().await.unwrap().is_empty());
    assert_eq!(b.requests().len(), 2);
}
