//! WhatsApp end to end over real sockets: a local axum server plays the Graph API (it records
//! every request, checks the bearer token, and can be told to answer errors such as 130429),
//! and braid's own web chat server receives real webhooks signed like Meta signs them
//! (`X-Hub-Signature-256`), stored in a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use braid::channels::Outbound;
use braid::channels::hooks::verify;
use braid::channels::webchat::{Options, WebChatConfig, WebChatServer};
use braid::channels::whatsapp::{TemplateSend, WhatsApp, WhatsAppConfig};
use braid::ingest;
use braid::model::{Channel, ContactId, ConversationId, Delivery, IdentityKind, now_millis};
use braid::secret::SecretSource;
use braid::store::Store;
use braid::worker::{DispatchSettings, Dispatcher, Outcome, Senders};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PNID: &str = "106540352242922";
const TOKEN: &str = "EAAG-test-token-do-not-print";
const APP_SECRET: &[u8] = b"meta-app-secret";
const VERIFY: &str = "verify-me";
const ANA: &str = "4915112345678";

// ------------------------------------------------------------------------------------------
// The fake Graph API.

#[derive(Debug, Clone)]
struct Rec {
    method: &'static str,
    path: String,
    auth: Option<String>,
    body: Value,
}

#[derive(Default)]
struct GraphState {
    requests: Vec<Rec>,
    /// Answers to give to the next message sends instead of accepting them.
    script: VecDeque<(u16, Value, Option<u32>)>,
    /// The messages Graph accepted (what the customers got).
    delivered: Vec<Value>,
    media: HashMap<String, Vec<u8>>,
    base: String,
}

type Shared = Arc<Mutex<GraphState>>;

fn graph_error(code: i64, message: &str) -> Value {
    json!({"error": {"message": message, "type": "OAuthException", "code": code,
                     "error_data": {"messaging_product": "whatsapp", "details": message},
                     "fbtrace_id": "AbC"}})
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn send_message(
    State(st): State<Shared>,
    Path(pnid): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut g = st.lock().unwrap();
    g.requests.push(Rec {
        method: "POST",
        path: format!("/v21.0/{pnid}/messages"),
        auth: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
        body: body.clone(),
    });
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(graph_error(190, "Invalid OAuth access token")),
        )
            .into_response();
    }
    if let Some((status, answer, retry_after)) = g.script.pop_front() {
        let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
        if let Some(secs) = retry_after {
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
        }
        return r;
    }
    g.delivered.push(body.clone());
    let n = g.delivered.len();
    (
        StatusCode::OK,
        axum::Json(json!({"messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": format!("wamid.OUT{n}")}]})),
    )
        .into_response()
}

async fn media_info(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let mut g = st.lock().unwrap();
    g.requests.push(Rec {
        method: "GET",
        path: format!("/v21.0/{id}"),
        auth: None,
        body: Value::Null,
    });
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(graph_error(190, "Invalid OAuth access token")),
        );
    }
    match g.media.get(&id) {
        Some(bytes) => {
            use sha2::Digest;
            let sha: String = sha2::Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (
                StatusCode::OK,
                axum::Json(json!({"messaging_product": "whatsapp",
                    "url": format!("{}/files/{id}?ext=1&hash=x", g.base),
                    "mime_type": "image/jpeg", "sha256": sha, "file_size": bytes.len(),
                    "id": id})),
            )
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(graph_error(100, "Unsupported get request")),
        ),
    }
}

async fn media_file(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let g = st.lock().unwrap();
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Vec::new());
    }
    match g.media.get(&id) {
        Some(b) => (StatusCode::OK, b.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

struct FakeGraph {
    state: Shared,
    base: String,
}

impl FakeGraph {
    async fn start() -> FakeGraph {
        let state: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/v21.0/{pnid}/messages", post(send_message))
            .route("/v21.0/{id}", get(media_info))
            .route("/files/{id}", get(media_file))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let base = format!("http://{addr}");
        state.lock().unwrap().base = base.clone();
        FakeGraph { state, base }
    }

    fn sends(&self) -> Vec<Rec> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.method == "POST")
            .cloned()
            .collect()
    }

    fn delivered(&self) -> Vec<Value> {
        self.state.lock().unwrap().delivered.clone()
    }

    fn answer_next(&self, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((status, body, None));
    }
}

// ------------------------------------------------------------------------------------------
// braid: the web chat server with the WhatsApp webhook, the store, the sender.

struct Braid {
    dir: tempfile::TempDir,
    server: WebChatServer,
    graph: FakeGraph,
    config: WhatsAppConfig,
    http: reqwest::Client,
}

impl Braid {
    async fn start() -> Braid {
        let graph = FakeGraph::start().await;
        let dir = tempfile::tempdir().unwrap();
        Store::open_dir(dir.path()).unwrap();
        let mut config = WhatsAppConfig::plain(
            PNID,
            &format!("{}/v21.0", graph.base),
            TOKEN,
            std::str::from_utf8(APP_SECRET).unwrap(),
        );
        config.verify_token = SecretSource::Plain(VERIFY.into());
        config.templates = vec![braid::channels::whatsapp::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            text: "Hi {{1}}, your order {{2}} has shipped.".into(),
        }];
        let web = WebChatConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..WebChatConfig::default()
        };
        let mut opts = Options::new(web, ingest::Settings::default());
        // The real spec: the secrets are read when the server starts.
        opts.hooks = vec![config.spec()];
        let server = WebChatServer::start(&opts, dir.path()).await.unwrap();
        Braid {
            dir,
            server,
            graph,
            config,
            http: reqwest::Client::new(),
        }
    }

    fn hook_url(&self) -> String {
        format!("http://{}/hooks/whatsapp", self.server.addr())
    }

    fn store(&self) -> Store {
        Store::open_dir(self.dir.path()).unwrap()
    }

    /// A free-text reply queued while the customer's window was open, the window closing
    /// before it is sent: their messages are moved to now for the queueing, then back.
    fn queued_before_the_window_closed(
        &self,
        conv: braid::model::ConversationId,
        text: &str,
    ) -> braid::model::MessageId {
        let db = rusqlite::Connection::open(self.dir.path().join(braid::store::DB_FILE)).unwrap();
        let old: Vec<(i64, i64)> = db
            .prepare("SELECT id, created_at FROM messages WHERE conversation_id = ?1 AND direction = 'in'")
            .unwrap()
            .query_map([conv.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        db.execute(
            "UPDATE messages SET created_at = ?1 WHERE conversation_id = ?2 AND direction = 'in'",
            (now_millis(), conv.0),
        )
        .unwrap();
        let id = self
            .store()
            .queue_reply(conv, Channel::WhatsApp, "bob", text, now_millis())
            .unwrap();
        for (m, at) in old {
            db.execute("UPDATE messages SET created_at = ?1 WHERE id = ?2", (at, m))
                .unwrap();
        }
        id
    }

    fn count(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(self.dir.path().join(braid::store::DB_FILE))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// POST a webhook body, signed with `signature` (None: no header).
    async fn post_raw(&self, body: Vec<u8>, signature: Option<String>) -> u16 {
        let mut req = self
            .http
            .post(self.hook_url())
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// POST a webhook body signed like Meta signs it.
    async fn post(&self, body: Vec<u8>) -> u16 {
        let sig = verify::meta_sign(APP_SECRET, &body);
        self.post_raw(body, Some(sig)).await
    }

    /// Wait until `check` holds (the inbox is ingested off the request path).
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

    fn contact(&self, s: &Store, wa_id: &str) -> Option<ContactId> {
        s.contact_by_identity(IdentityKind::Phone, &format!("+{wa_id}"))
            .unwrap()
    }

    /// A message arrives and is stored: its conversation.
    async fn customer_writes(&self, wamid: &str, text: &str, at_secs: i64) -> ConversationId {
        assert_eq!(self.post(text_hook(ANA, wamid, text, at_secs)).await, 200);
        self.until("the message", |s| {
            let c = self.contact(s, ANA)?;
            let t = s.timeline(c, None, 100).unwrap();
            t.iter().find(|m| m.body == text).map(|m| m.conversation_id)
        })
        .await
    }

    /// Everything posted before this has been ingested (the inbox keeps the order).
    async fn settle(&self) {
        let marker = format!("wamid.MARK{}", now_millis());
        assert_eq!(
            self.post(text_hook("4917600000001", &marker, "marker", now_secs()))
                .await,
            200
        );
        self.until("the marker", |s| {
            let c = self.contact(s, "4917600000001")?;
            s.timeline(c, None, 1000)
                .unwrap()
                .iter()
                .any(|m| m.body == "marker")
                .then_some(())
        })
        .await;
        // The marker's own contact stays out of the way of counts by body.
    }

    fn sender(&self) -> Arc<WhatsApp> {
        WhatsApp::new(self.config.clone())
    }

    fn dispatcher(&self) -> Dispatcher {
        let store = Arc::new(Mutex::new(self.store()));
        let senders = Senders::new([self.sender() as Arc<dyn Outbound>]);
        Dispatcher::new(store, senders, DispatchSettings::default())
    }
}

fn now_secs() -> i64 {
    now_millis() / 1000
}

fn envelope(value: Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA-1", "changes": [
        {"field": "messages", "value": value}]}]})
    .to_string()
    .into_bytes()
}

fn text_hook(from: &str, wamid: &str, text: &str, at_secs: i64) -> Vec<u8> {
    named_text_hook(from, "Ana Souza", wamid, text, at_secs)
}

fn named_text_hook(from: &str, name: &str, wamid: &str, text: &str, at_secs: i64) -> Vec<u8> {
    envelope(json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": name}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": at_secs.to_string(),
                      "type": "text", "text": {"body": text}}]}))
}

fn status_hook(wamid: &str, status: &str, at_secs: i64) -> Vec<u8> {
    envelope(json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "statuses": [{"id": wamid, "status": status, "timestamp": at_secs.to_string(),
                      "recipient_id": ANA}]}))
}

// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_subscription_handshake_needs_the_verify_token() {
    let b = Braid::start().await;
    let ok = b
        .http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444",
            b.hook_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let forged = b
        .http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444",
            b.hook_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(!forged.text().await.unwrap().contains("1158201444"));
}

#[tokio::test]
async fn forged_and_unsigned_webhooks_are_refused_and_nothing_is_stored() {
    let b = Braid::start().await;
    let body = text_hook(ANA, "wamid.FORGED", "send me your password", now_secs());
    let forged = verify::meta_sign(b"not-the-app-secret", &body);
    assert_eq!(b.post_raw(body.clone(), Some(forged)).await, 403);
    assert_eq!(b.post_raw(body.clone(), None).await, 403);
    assert_eq!(
        b.post_raw(body.clone(), Some("sha256=zz".into())).await,
        403
    );
    // Signed right, but for other bytes.
    let other = verify::meta_sign(APP_SECRET, b"{}");
    assert_eq!(b.post_raw(body, Some(other)).await, 403);
    b.settle().await;
    assert_eq!(
        b.count("SELECT COUNT(*) FROM messages WHERE external_id = 'wamid.FORGED'"),
        0
    );
    assert_eq!(b.count("SELECT COUNT(*) FROM webhook_inbox"), 0);
}

#[tokio::test]
async fn a_replayed_webhook_is_stored_once() {
    let b = Braid::start().await;
    let body = text_hook(ANA, "wamid.REPLAY", "Where is my order?", now_secs());
    assert_eq!(b.post(body.clone()).await, 200);
    // Meta retries the same delivery (it did not see our 200 in time).
    assert_eq!(b.post(body.clone()).await, 200);
    b.settle().await;
    assert_eq!(b.post(body).await, 200);
    b.settle().await;
    assert_eq!(
        b.count("SELECT COUNT(*) FROM messages WHERE external_id = 'wamid.REPLAY'"),
        1
    );
    let s = b.store();
    let c = b.contact(&s, ANA).unwrap();
    assert_eq!(s.contact(c).unwrap().name, "Ana Souza");
    let m = &s.timeline(c, None, 10).unwrap()[0];
    assert_eq!(m.channel, Channel::WhatsApp);
    assert_eq!(m.account, PNID);
}

#[tokio::test]
async fn a_reply_goes_out_and_statuses_out_of_order_end_at_read() {
    let b = Braid::start().await;
    let conv = b
        .customer_writes("wamid.IN1", "Where is my order?", now_secs())
        .await;
    let mut s = b.store();
    let id = s
        .queue_reply(
            conv,
            Channel::WhatsApp,
            "bob",
            "It ships today.",
            now_millis(),
        )
        .unwrap();
    let done = b.dispatcher().run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    let sends = b.graph.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].path, format!("/v21.0/{PNID}/messages"));
    assert_eq!(sends[0].auth.as_deref(), Some(&*format!("Bearer {TOKEN}")));
    assert_eq!(
        sends[0].body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": ANA,
               "type": "text", "text": {"preview_url": false, "body": "It ships today."}})
    );
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));
    assert_eq!(
        b.count(
            "SELECT COUNT(*) FROM messages WHERE external_id = 'wamid.OUT1' AND direction = 'out'"
        ),
        1
    );

    // Read arrives before delivered (and sent comes last): it ends at read.
    let t = now_secs();
    assert_eq!(b.post(status_hook("wamid.OUT1", "read", t + 2)).await, 200);
    b.until("read", |s| {
        (s.message(id).unwrap().delivery == Some(Delivery::Read)).then_some(())
    })
    .await;
    assert_eq!(
        b.post(status_hook("wamid.OUT1", "delivered", t + 1)).await,
        200
    );
    assert_eq!(b.post(status_hook("wamid.OUT1", "sent", t)).await, 200);
    b.settle().await;
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Read));
}

#[tokio::test]
async fn a_failed_status_shows_whatsapps_error() {
    let b = Braid::start().await;
    let conv = b.customer_writes("wamid.IN1", "hello", now_secs()).await;
    let mut s = b.store();
    let id = s
        .queue_reply(conv, Channel::WhatsApp, "bob", "hi", now_millis())
        .unwrap();
    b.dispatcher().run_until_idle().await.unwrap();
    let body = envelope(json!({"messaging_product": "whatsapp",
        "metadata": {"phone_number_id": PNID},
        "statuses": [{"id": "wamid.OUT1", "status": "failed", "timestamp": now_secs().to_string(),
                      "recipient_id": ANA,
                      "errors": [{"code": 131026, "title": "Message undeliverable\u{1b}[2J"}]}]}));
    assert_eq!(b.post(body).await, 200);
    let m = b
        .until("failed", |s| {
            let m = s.message(id).unwrap();
            (m.delivery == Some(Delivery::Failed)).then_some(m)
        })
        .await;
    assert_eq!(
        m.delivery_error.as_deref(),
        Some("131026: Message undeliverable")
    );
}

#[tokio::test]
async fn outside_24_hours_a_reply_is_refused_before_any_request_and_a_template_goes_out() {
    let b = Braid::start().await;
    // Ana wrote 25 hours ago.
    let conv = b
        .customer_writes("wamid.OLD", "Is it in stock?", now_secs() - 25 * 3600)
        .await;
    let mut s = b.store();
    // The store refuses a free-text reply at once (the composer's first wall)...
    let e = s
        .queue_reply(conv, Channel::WhatsApp, "bob", "Yes it is!", now_millis())
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside WhatsApp's 24-hour window"), "{e}");
    // ...and the sender refuses one that was queued anyway (inside the window, sent after it
    // closed: a dispatcher that was down), before any request.
    let id = b.queued_before_the_window_closed(conv, "Yes it is!");
    let done = b.dispatcher().run_until_idle().await.unwrap();
    let Ok(Outcome::Failed { reason, retry }) = &done[0].1 else {
        panic!("{done:?}")
    };
    assert!(!retry);
    assert!(reason.contains("24-hour window"), "{reason}");
    assert!(reason.contains(":template"), "{reason}");
    assert!(
        b.graph.state.lock().unwrap().requests.is_empty(),
        "not one request reached Graph"
    );
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Failed));

    // A template message (what the composer's :template queues: its meta names it).
    let template = TemplateSend {
        name: "order_update".into(),
        language: "en_US".into(),
        params: vec!["Ana".into(), "4411".into()],
    };
    let body = b.config.templates[0].render(&template.params).unwrap();
    let tid = s
        .queue_reply_with(
            conv,
            Channel::WhatsApp,
            "bob",
            &body,
            now_millis(),
            None,
            Some(&template.to_meta()),
        )
        .unwrap();
    let done = b.dispatcher().run_until_idle().await.unwrap();
    assert_eq!(done, vec![(tid, Ok(Outcome::Sent))]);
    assert_eq!(
        b.graph.delivered(),
        vec![
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": ANA, "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "Ana"}, {"type": "text", "text": "4411"}]}]}})
        ]
    );
    assert_eq!(
        s.message(tid).unwrap().body,
        "Hi Ana, your order 4411 has shipped."
    );

    // A template with the wrong number of parameters never leaves.
    let bad = braid::store::OutboxItem {
        message_id: tid,
        conversation_id: conv,
        contact_id: s.message(tid).unwrap().contact_id,
        channel: Channel::WhatsApp,
        account: String::new(),
        recipient: format!("+{ANA}"),
        subject: None,
        body: "x".into(),
        author: "bob".into(),
        attempts: 0,
        resumed: false,
        meta: Some(
            json!({"template": {"name": "order_update", "language": "en_US",
                                        "params": ["Ana"]}}),
        ),
        last_in: None,
    };
    let e = b.sender().send(&bad).await.unwrap_err();
    assert!(!e.retry);
    assert_eq!(
        e.reason,
        "template 'order_update' takes 2 parameters, 1 given"
    );
    assert_eq!(b.graph.sends().len(), 1);
}

#[tokio::test]
async fn throttled_130429_then_sent_exactly_once() {
    let b = Braid::start().await;
    let conv = b.customer_writes("wamid.IN1", "hello?", now_secs()).await;
    b.graph
        .answer_next(400, graph_error(130429, "Rate limit hit"));
    let mut s = b.store();
    let id = s
        .queue_reply(conv, Channel::WhatsApp, "bob", "Hello Ana", now_millis())
        .unwrap();
    let mut d = b.dispatcher();
    let done = d.run_until_idle().await.unwrap();
    let Ok(Outcome::Failed { reason, retry }) = &done[0].1 else {
        panic!("{done:?}")
    };
    assert!(*retry, "throttling is retried");
    assert!(
        reason.starts_with("rate limited by WhatsApp (130429: Rate limit hit"),
        "{reason}"
    );
    assert_eq!(
        s.outbox_counts().unwrap(),
        (1, 0),
        "still queued for a retry"
    );
    assert!(b.graph.delivered().is_empty());

    // The backoff is up (made due now): sent once.
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    // And nothing is sent again.
    let done = d.run_until_idle().await.unwrap();
    assert!(done.is_empty());
    assert_eq!(b.graph.sends().len(), 2, "one refused, one accepted");
    assert_eq!(b.graph.delivered().len(), 1, "the customer got it once");
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));
    assert_eq!(s.outbox_counts().unwrap(), (0, 0));
}

#[tokio::test]
async fn a_429_with_retry_after_holds_sends_without_asking_graph() {
    let b = Braid::start().await;
    let conv = b.customer_writes("wamid.IN1", "hello?", now_secs()).await;
    b.graph.state.lock().unwrap().script.push_back((
        429,
        graph_error(80007, "Rate limit exceeded"),
        Some(2),
    ));
    let mut s = b.store();
    let id = s
        .queue_reply(conv, Channel::WhatsApp, "bob", "Hello", now_millis())
        .unwrap();
    let mut d = b.dispatcher();
    let done = d.run_until_idle().await.unwrap();
    let limited_at = Instant::now();
    let Ok(Outcome::Failed {
        reason,
        retry: true,
    }) = &done[0].1
    else {
        panic!("{done:?}")
    };
    assert!(reason.ends_with("retry in 2s"), "{reason}");
    // Retried at once: Graph is not asked before the time is up.
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert!(
        matches!(&done[0].1, Ok(Outcome::Failed { reason, retry: true }) if reason.starts_with("rate limited by WhatsApp")),
        "{done:?}"
    );
    assert_eq!(b.graph.sends().len(), 1);
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(limited_at.elapsed())).await;
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    assert_eq!(b.graph.sends().len(), 2);
    assert_eq!(b.graph.delivered().len(), 1);
}

#[tokio::test]
async fn permanent_and_token_errors_are_not_retried_and_never_show_the_token() {
    let b = Braid::start().await;
    let conv = b.customer_writes("wamid.IN1", "hello?", now_secs()).await;
    b.graph
        .answer_next(400, graph_error(131047, "Re-engagement message"));
    let mut s = b.store();
    let id = s
        .queue_reply(conv, Channel::WhatsApp, "bob", "Hi", now_millis())
        .unwrap();
    let done = b.dispatcher().run_until_idle().await.unwrap();
    let Ok(Outcome::Failed { reason, retry }) = &done[0].1 else {
        panic!("{done:?}")
    };
    assert!(!retry);
    assert!(
        reason.starts_with("WhatsApp: 131047: Re-engagement message"),
        "{reason}"
    );
    assert_eq!(s.outbox_counts().unwrap(), (0, 1));

    // A wrong token: Graph says 190; braid says so and never prints the token.
    let mut wrong = b.config.clone();
    wrong.token = SecretSource::Plain("EAAG-wrong".into());
    let item = braid::store::OutboxItem {
        message_id: id,
        conversation_id: conv,
        contact_id: s.message(id).unwrap().contact_id,
        channel: Channel::WhatsApp,
        account: String::new(),
        recipient: format!("+{ANA}"),
        subject: None,
        body: "Hi".into(),
        author: "bob".into(),
        attempts: 0,
        resumed: false,
        meta: None,
        last_in: Some(now_millis()),
    };
    let e = WhatsApp::new(wrong).send(&item).await.unwrap_err();
    assert!(!e.retry);
    assert!(
        e.reason
            .starts_with("WhatsApp: 190: Invalid OAuth access token"),
        "{}",
        e.reason
    );
    assert!(!e.reason.contains("EAAG"), "{}", e.reason);
}

#[tokio::test]
async fn hostile_payloads_are_refused_or_sanitized() {
    let b = Braid::start().await;
    // 2 MiB: refused before anything is read into the store.
    let huge = vec![b' '; 2 << 20];
    let sig = verify::meta_sign(APP_SECRET, &huge);
    assert_eq!(b.post_raw(huge, Some(sig)).await, 413);
    // Deep JSON, signed: malformed, 400.
    let deep = format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert_eq!(b.post(deep.into_bytes()).await, 400);
    // Escape sequences in the profile name and the text: stored harmless.
    let body = named_text_hook(
        ANA,
        "Ana\u{1b}[31m Souza\u{1b}]0;pwned\u{7}",
        "wamid.ESC",
        "hi\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7} there\u{9b}31m",
        now_secs(),
    );
    assert_eq!(b.post(body).await, 200);
    let (name, text) = b
        .until("the hostile message", |s| {
            let c = b.contact(s, ANA)?;
            let m = s.timeline(c, None, 10).unwrap().pop()?;
            Some((s.contact(c).unwrap().name, m.body))
        })
        .await;
    for t in [&name, &text] {
        assert!(
            !t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{t:?}"
        );
    }
    assert!(name.starts_with("Ana"), "{name:?}");
    assert!(text.starts_with("hi") && text.contains("there"), "{text:?}");
    assert_eq!(b.count("SELECT COUNT(*) FROM webhook_inbox"), 0);
}

#[tokio::test]
async fn media_arrive_as_placeholders_and_save_downloads_them() {
    let b = Braid::start().await;
    let jpeg = b"\xff\xd8\xff\xe0fake jpeg bytes".to_vec();
    b.graph
        .state
        .lock()
        .unwrap()
        .media
        .insert("1234567890".into(), jpeg.clone());
    let body = envelope(json!({"messaging_product": "whatsapp",
        "metadata": {"phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": ANA}],
        "messages": [{"from": ANA, "id": "wamid.IMG", "timestamp": now_secs().to_string(),
            "type": "image",
            "image": {"id": "1234567890", "mime_type": "image/jpeg", "caption": "the box"}}]}));
    assert_eq!(b.post(body).await, 200);
    let conv = b
        .until("the image", |s| {
            let c = b.contact(s, ANA)?;
            let m = s.timeline(c, None, 10).unwrap().pop()?;
            (m.body == "[image: the box]").then_some(m.conversation_id)
        })
        .await;
    let mut config = braid::config::Config::with_data_dir(b.dir.path());
    config.whatsapp = Some(b.config.clone());
    let out = tempfile::tempdir().unwrap();
    let line = braid::channels::save::save(&config, conv, Some(out.path().to_path_buf()))
        .await
        .unwrap();
    assert!(line.contains("whatsapp-image-1234567890.jpg"), "{line}");
    let saved = std::fs::read(out.path().join("whatsapp-image-1234567890.jpg")).unwrap();
    assert_eq!(saved, jpeg);
    // Without a [whatsapp] number there is nothing to download through.
    let bare = braid::config::Config::with_data_dir(b.dir.path());
    let e = braid::channels::save::save(&bare, conv, Some(out.path().to_path_buf()))
        .await
        .unwrap_err();
    assert!(e.contains("[whatsapp]"), "{e}");
}

#[tokio::test]
async fn messages_for_another_number_are_ignored() {
    let b = Braid::start().await;
    let body = envelope(json!({"messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "999999"},
        "contacts": [{"profile": {"name": "Eve"}, "wa_id": "4917699999999"}],
        "messages": [{"from": "4917699999999", "id": "wamid.OTHER", "timestamp": now_secs().to_string(),
                      "type": "text", "text": {"body": "not yours"}}]}));
    assert_eq!(b.post(body).await, 200);
    b.settle().await;
    assert_eq!(
        b.count("SELECT COUNT(*) FROM messages WHERE external_id = 'wamid.OTHER'"),
        0
    );
}

#[tokio::test]
async fn a_server_error_after_the_request_left_is_unclear_and_not_resent_by_itself() {
    let b = Braid::start().await;
    let conv = b.customer_writes("wamid.IN1", "hello?", now_secs()).await;
    b.graph
        .answer_next(500, graph_error(1, "An unknown error occurred"));
    let mut s = b.store();
    let id = s
        .queue_reply(conv, Channel::WhatsApp, "bob", "Hello", now_millis())
        .unwrap();
    let mut d = b.dispatcher();
    let done = d.run_until_idle().await.unwrap();
    let Ok(Outcome::Unclear { reason }) = &done[0].1 else {
        panic!("{done:?}")
    };
    assert!(reason.contains("may have been sent"), "{reason}");
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Unclear));
    // Nothing goes out again until an agent decides.
    assert!(d.run_until_idle().await.unwrap().is_empty());
    assert_eq!(b.graph.sends().len(), 1);
}

/// A survey goes as an interactive list (five rows: WhatsApp's reply buttons stop at three);
/// the customer's list reply names the survey and score and is recorded without reopening
/// the conversation; the message is kept like any other.
#[tokio::test]
async fn a_survey_goes_as_a_list_and_the_list_reply_answers_it() {
    let b = Braid::start().await;
    let conv = b
        .customer_writes("wamid.IN1", "Where is my order?", now_secs())
        .await;
    let mut s = b.store();
    let cfg = braid::csat::CsatConfig {
        enabled: true,
        ..Default::default()
    };
    s.derive_csat(&cfg, now_millis()).unwrap();
    s.set_status(
        conv,
        braid::model::Status::Resolved,
        None,
        "bob",
        now_millis(),
    )
    .unwrap();
    assert_eq!(s.derive_csat(&cfg, now_millis()).unwrap().sent, 1);
    let done = b.dispatcher().run_until_idle().await.unwrap();
    assert!(matches!(done[0].1, Ok(Outcome::Sent)), "{done:?}");
    let body = b.graph.sends().last().unwrap().body.clone();
    assert_eq!(body["type"], "interactive");
    assert_eq!(body["interactive"]["type"], "list");
    let rows = body["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r["title"].as_str().unwrap().chars().count() <= 24)
    );
    assert_eq!(rows[1]["id"], format!("csat:{}:2", conv.0));
    assert!(
        body["interactive"]["body"]["text"]
            .as_str()
            .unwrap()
            .starts_with(braid::csat::DEFAULT_QUESTION)
    );

    // Ana picks "2 – Fair" in the list.
    let reply = envelope(json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": ANA}],
        "messages": [{"from": ANA, "id": "wamid.IN2", "timestamp": now_secs().to_string(),
                      "type": "interactive",
                      "interactive": {"type": "list_reply",
                                      "list_reply": {"id": rows[1]["id"], "title": "2 – Fair"}}}]}));
    assert_eq!(b.post(reply).await, 200);
    let data = b
        .until("the answer", |s| {
            s.conversation_events(conv, 100)
                .unwrap()
                .into_iter()
                .find(|e| e.kind == "csat_answered")
                .and_then(|e| e.data)
        })
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        json!({"score": 2, "comment": "", "channel": "whatsapp"})
    );
    let s = b.store();
    assert_eq!(
        s.conversation(conv).unwrap().status,
        braid::model::Status::Resolved
    );
}
