//! SMS end to end over real HTTP on loopback: a local axum server speaks Twilio's REST API
//! (basic auth, `Messages.json`, its error bodies), and braid's real web chat server takes
//! signed Twilio webhooks (`X-Twilio-Signature` over the configured public URL) into a real
//! SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use braid::channels::Outbound;
use braid::channels::hooks::{form_fields, verify};
use braid::channels::sms::send::OPTED_OUT;
use braid::channels::sms::{RawSmsConfig, SmsConfig, SmsSender, TWIML_EMPTY};
use braid::channels::webchat::{Options, WebChatConfig, WebChatServer};
use braid::ingest;
use braid::model::{Channel, ConversationId, Delivery, Direction, IdentityKind, now_millis};
use braid::secret::SecretSource;
use braid::store::{DB_FILE, MessageRow, OutboxItem, Store};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SID: &str = "AC0000000000000000000000000000abcd";
const TOKEN: &str = "twilio-auth-token-123";
const PUBLIC: &str = "https://help.example.com";
const OURS: &str = "+14155550100";
const ANA: &str = "+4915112345678";

// ---------------------------------------------------------------------------------------------
// The "Twilio API".

/// How the API answers the next request.
#[derive(Debug, Clone)]
enum Answer {
    Created,
    TooMany,
    OptedOut,
    ServerError,
    /// A 400 whose message carries terminal escapes.
    Hostile,
}

#[derive(Default)]
struct Api {
    /// Every request that passed basic auth: its form fields.
    requests: Mutex<Vec<Vec<(String, String)>>>,
    /// Messages the API took (answered 201).
    created: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Answer>>,
    unauthorized: Mutex<usize>,
}

impl Api {
    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    fn created(&self) -> usize {
        self.created.lock().unwrap().len()
    }
    fn then(&self, a: Answer) {
        self.script.lock().unwrap().push_back(a);
    }
    fn last(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

fn json(status: u16, body: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn messages(
    State(api): State<Arc<Api>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sid != SID || auth != want {
        *api.unauthorized.lock().unwrap() += 1;
        return json(
            401,
            serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
        );
    }
    let fields = form_fields(&body).unwrap();
    api.requests.lock().unwrap().push(fields);
    let answer = api
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Created);
    match answer {
        Answer::Created => {
            let sid = {
                let mut c = api.created.lock().unwrap();
                let sid = format!("SM{:032}", c.len() + 1);
                c.push(sid.clone());
                sid
            };
            json(201, serde_json::json!({"sid": sid, "status": "queued"}))
        }
        Answer::TooMany => {
            let mut r = json(
                429,
                serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
            );
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
            r
        }
        Answer::OptedOut => json(
            400,
            serde_json::json!({"code": 21610,
                "message": "Attempt to send to unsubscribed recipient", "status": 400}),
        ),
        Answer::ServerError => json(
            500,
            serde_json::json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        ),
        Answer::Hostile => json(
            400,
            serde_json::json!({"code": 21211,
                "message": "Invalid 'To' \u{1b}[31mnumber\u{1b}]0;pwned\u{7}", "status": 400}),
        ),
    }
}

async fn start_api() -> (Arc<Api>, String) {
    let api = Arc::new(Api::default());
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(messages),
        )
        .with_state(Arc::clone(&api));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (api, format!("http://{addr}"))
}

// ---------------------------------------------------------------------------------------------
// braid.

struct Braid {
    _dir: tempfile::TempDir,
    server: WebChatServer,
    store: Store,
    sender: Arc<SmsSender>,
    api: Arc<Api>,
    api_url: String,
    http: reqwest::Client,
}

fn sms_config(api_url: &str) -> SmsConfig {
    let mut c = RawSmsConfig {
        account_sid: Some(SID.into()),
        from: Some(OURS.into()),
        auth_token_env: Some("UNUSED".into()),
        api_url: Some(api_url.into()),
        public_url: Some(PUBLIC.into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    c.auth_token = SecretSource::Plain(TOKEN.into());
    c
}

async fn start() -> Braid {
    let (api, api_url) = start_api().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let config = sms_config(&api_url);
    let mut opts = Options::new(
        WebChatConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..WebChatConfig::default()
        },
        ingest::Settings::default(),
    );
    opts.hooks = config.specs();
    let server = WebChatServer::start(&opts, dir.path()).await.unwrap();
    let sender = SmsSender::new(config, dir.path().join(DB_FILE));
    Braid {
        _dir: dir,
        server,
        store,
        sender,
        api,
        api_url,
        http: reqwest::Client::new(),
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Braid {
    /// POST a form to `/hooks/{path}` with the given signature header (None: none).
    async fn post_raw(
        &self,
        path: &str,
        fields: &[(String, String)],
        signature: Option<String>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("http://{}/hooks/{path}", self.server.addr()))
            .form(fields);
        if let Some(s) = signature {
            req = req.header("X-Twilio-Signature", s);
        }
        req.send().await.unwrap()
    }

    /// POST a form signed the way Twilio signs it (the public URL it called).
    async fn post(&self, path: &str, fields: &[(String, String)]) -> reqwest::Response {
        let sig = verify::twilio_sign(TOKEN.as_bytes(), &format!("{PUBLIC}/hooks/{path}"), fields);
        self.post_raw(path, fields, Some(sig)).await
    }

    /// Ana texts us.
    async fn text(&self, sid: &str, body: &str) {
        let r = self
            .post(
                "sms",
                &params(&[
                    ("MessageSid", sid),
                    ("AccountSid", SID),
                    ("From", ANA),
                    ("To", OURS),
                    ("Body", body),
                    ("NumMedia", "0"),
                ]),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/xml",
            "Twilio wants TwiML"
        );
        assert_eq!(r.text().await.unwrap(), TWIML_EMPTY);
    }

    /// Wait until the webhook inbox is empty (everything ingested).
    async fn drained(&self) {
        until(|| (self.store.inbox_len().unwrap() == 0).then_some(())).await;
    }

    fn timeline(&self) -> Vec<MessageRow> {
        match self
            .store
            .contact_by_identity(IdentityKind::Phone, ANA)
            .unwrap()
        {
            Some(c) => self.store.timeline(c, None, 100).unwrap(),
            None => Vec::new(),
        }
    }

    fn opted_out(&self) -> Option<bool> {
        self.store
            .consent(Channel::Sms, IdentityKind::Phone, ANA)
            .unwrap()
            .map(|c| c.opted_out)
    }

    fn conversation(&self) -> ConversationId {
        let c = self
            .store
            .contact_by_identity(IdentityKind::Phone, ANA)
            .unwrap()
            .unwrap();
        self.store.active_conversation(c).unwrap().unwrap()
    }

    /// An agent's SMS reply, claimed from the outbox as the dispatcher would.
    fn reply(&mut self, text: &str) -> OutboxItem {
        let conv = self.conversation();
        let id = self
            .store
            .queue_reply(conv, Channel::Sms, "ann", text, now_millis())
            .unwrap();
        let items = self.store.claim_outbox(now_millis(), 60_000, 10).unwrap();
        let item = items.into_iter().find(|i| i.message_id == id).unwrap();
        assert_eq!(item.recipient, ANA);
        item
    }
}

/// Poll `f` until it gives a value (10 s at most).
async fn until<T>(f: impl Fn() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn forged_missing_or_misaddressed_signatures_get_403_and_nothing_is_stored() {
    let b = start().await;
    let fields = params(&[("MessageSid", "SM1"), ("From", ANA), ("Body", "hi")]);
    let url = format!("{PUBLIC}/hooks/sms");
    // No header.
    assert_eq!(b.post_raw("sms", &fields, None).await.status(), 403);
    // Signed with another token.
    let forged = verify::twilio_sign(b"not-the-token", &url, &fields);
    assert_eq!(b.post_raw("sms", &fields, Some(forged)).await.status(), 403);
    // Signed over the local address instead of the public URL Twilio calls.
    let local = format!("http://{}/hooks/sms", b.server.addr());
    let misaddressed = verify::twilio_sign(TOKEN.as_bytes(), &local, &fields);
    assert_eq!(
        b.post_raw("sms", &fields, Some(misaddressed))
            .await
            .status(),
        403
    );
    // A genuine signature over other fields (the body was changed on the way).
    let good = verify::twilio_sign(TOKEN.as_bytes(), &url, &fields);
    let changed = params(&[("MessageSid", "SM1"), ("From", ANA), ("Body", "pay me")]);
    assert_eq!(
        b.post_raw("sms", &changed, Some(good.clone()))
            .await
            .status(),
        403
    );
    // The status path is signed over its own URL.
    let status = params(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")]);
    assert_eq!(
        b.post_raw(
            "sms/status",
            &status,
            Some(verify::twilio_sign(TOKEN.as_bytes(), &url, &status))
        )
        .await
        .status(),
        403
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.store.inbox_len().unwrap(), 0);
    assert!(b.timeline().is_empty());
    // The genuine one goes in.
    assert_eq!(b.post_raw("sms", &fields, Some(good)).await.status(), 200);
    b.drained().await;
    assert_eq!(b.timeline().len(), 1);
}

#[tokio::test]
async fn a_replayed_webhook_is_stored_once_and_hostile_text_is_sanitized() {
    let b = start().await;
    b.text("SM100", "Hello \u{1b}[2J\u{1b}]0;owned\u{7}there")
        .await;
    b.text("SM100", "Hello \u{1b}[2J\u{1b}]0;owned\u{7}there")
        .await;
    b.drained().await;
    let t = b.timeline();
    assert_eq!(t.len(), 1, "{t:?}");
    let m = &t[0];
    assert_eq!(m.channel, Channel::Sms);
    assert_eq!(m.direction, Direction::In);
    assert_eq!(m.account, OURS);
    assert!(m.body.starts_with("Hello"), "{:?}", m.body);
    assert!(m.body.ends_with("there"), "{:?}", m.body);
    assert!(
        !m.body.contains(['\u{1b}', '\u{7}']),
        "escapes stored: {:?}",
        m.body
    );

    // Media arrive as placeholders.
    let r = b
        .post(
            "sms",
            &params(&[
                ("MessageSid", "SM101"),
                ("From", ANA),
                ("To", OURS),
                ("Body", ""),
                ("NumMedia", "1"),
                (
                    "MediaUrl0",
                    "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME1",
                ),
                ("MediaContentType0", "image/jpeg"),
            ]),
        )
        .await;
    assert_eq!(r.status(), 200);
    b.drained().await;
    assert_eq!(b.timeline()[1].body, "[image/jpeg attachment]");
}

#[tokio::test]
async fn an_oversize_body_is_refused_with_413() {
    let b = start().await;
    let huge = "x".repeat(2 << 20);
    let fields = params(&[("MessageSid", "SM1"), ("From", ANA), ("Body", &huge)]);
    let r = b.post("sms", &fields).await;
    assert_eq!(r.status(), 413);
    assert_eq!(b.store.inbox_len().unwrap(), 0);
    assert!(b.timeline().is_empty());
}

#[tokio::test]
async fn stop_refuses_replies_before_any_call_and_start_lets_them_go() {
    let mut b = start().await;
    b.text("SM1", "Where is my order?").await;
    b.drained().await;
    assert_eq!(b.opted_out(), None);

    // A reply queued just before the STOP arrives (the store checks at queue time; the
    // sender checks again right before the call).
    let item = b.reply("It ships tomorrow.");
    b.text("SM2", " stop ").await;
    b.drained().await;
    assert_eq!(b.opted_out(), Some(true));
    // The STOP itself stays in the timeline.
    assert_eq!(b.timeline().last().unwrap().body.trim(), "stop");
    // From now on the store refuses to queue one at all.
    let conv = b.conversation();
    let e = b
        .store
        .queue_reply(conv, Channel::Sms, "ann", "Anything?", now_millis())
        .unwrap_err()
        .to_string();
    assert!(e.contains("opted out of SMS"), "{e}");

    let e = b.sender.send(&item).await.unwrap_err();
    assert_eq!(e.reason, OPTED_OUT);
    assert!(!e.retry && !e.may_have_sent);
    assert_eq!(b.api.requests(), 0, "refused before any network call");

    b.text("SM3", "START").await;
    b.drained().await;
    assert_eq!(b.opted_out(), Some(false));
    let sent = b.sender.send(&item).await.unwrap();
    assert_eq!(sent.account, OURS);
    assert_eq!(b.api.created(), 1);
    assert_eq!(
        sent.external_id.as_deref(),
        Some(b.api.created.lock().unwrap()[0].as_str())
    );
    let req = b.api.last();
    let get = |k: &str| req.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("To").as_deref(), Some(ANA));
    assert_eq!(get("From").as_deref(), Some(OURS));
    assert_eq!(get("Body").as_deref(), Some("It ships tomorrow."));
    assert_eq!(
        get("StatusCallback").as_deref(),
        Some("https://help.example.com/hooks/sms/status")
    );
}

#[tokio::test]
async fn error_21610_is_shown_as_opted_out_recorded_and_never_retried() {
    let mut b = start().await;
    b.text("SM1", "hi").await;
    b.drained().await;
    let item = b.reply("Hello!");
    b.api.then(Answer::OptedOut);
    let e = b.sender.send(&item).await.unwrap_err();
    assert_eq!(e.reason, OPTED_OUT);
    assert!(!e.retry && !e.may_have_sent);
    assert_eq!(b.api.requests(), 1);
    assert_eq!(b.opted_out(), Some(true), "the provider's word is recorded");
    // Sent again (an agent's :retry): refused without asking the provider.
    let e = b.sender.send(&item).await.unwrap_err();
    assert_eq!(e.reason, OPTED_OUT);
    assert_eq!(b.api.requests(), 1);
}

#[tokio::test]
async fn a_429_freezes_the_sender_and_the_reply_is_sent_exactly_once() {
    let mut b = start().await;
    b.text("SM1", "hi").await;
    b.drained().await;
    let item = b.reply("Hello!");
    b.api.then(Answer::TooMany);
    let e = b.sender.send(&item).await.unwrap_err();
    assert!(e.retry && !e.may_have_sent, "{e:?}");
    assert!(e.reason.contains("rate limited"), "{}", e.reason);
    // Before Retry-After is up: no call.
    let e = b.sender.send(&item).await.unwrap_err();
    assert!(e.retry);
    assert_eq!(b.api.requests(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.sender.send(&item).await.unwrap();
    assert_eq!(b.api.requests(), 2);
    assert_eq!(b.api.created(), 1);
}

#[tokio::test]
async fn server_errors_retry_other_4xx_are_permanent_and_sanitized() {
    let mut b = start().await;
    b.text("SM1", "hi").await;
    b.drained().await;
    let item = b.reply("Hello!");
    b.api.then(Answer::ServerError);
    let e = b.sender.send(&item).await.unwrap_err();
    assert!(e.retry && !e.may_have_sent, "{e:?}");
    b.api.then(Answer::Hostile);
    let e = b.sender.send(&item).await.unwrap_err();
    assert!(!e.retry && !e.may_have_sent, "{e:?}");
    assert!(e.reason.contains("21211: Invalid 'To'"), "{}", e.reason);
    assert!(!e.reason.contains(['\u{1b}', '\u{7}']), "{:?}", e.reason);
    assert_eq!(b.api.created(), 0);

    // Too long for the API: refused before asking.
    let before = b.api.requests();
    let mut long = item.clone();
    long.body = "a".repeat(1601);
    let e = b.sender.send(&long).await.unwrap_err();
    assert!(!e.retry && e.reason.contains("1600"), "{e:?}");
    assert_eq!(b.api.requests(), before);

    // Wrong credentials: the token never shows.
    let mut wrong = sms_config(&b.api_url);
    wrong.auth_token = SecretSource::Plain("wrong-token-xyz".into());
    let s = SmsSender::new(wrong, b._dir.path().join(DB_FILE));
    let e = s.send(&item).await.unwrap_err();
    assert!(e.reason.contains("401"), "{}", e.reason);
    assert!(!e.reason.contains("wrong-token-xyz"));
    assert_eq!(*b.api.unauthorized.lock().unwrap(), 1);
}

#[tokio::test]
async fn status_callbacks_out_of_order_end_at_delivered() {
    let mut b = start().await;
    b.text("SM1", "hi").await;
    b.drained().await;
    let item = b.reply("Hello!");
    let sent = b.sender.send(&item).await.unwrap();
    let sid = sent.external_id.clone().unwrap();
    b.store
        .mark_sent(
            item.message_id,
            &sent.account,
            Some(&sid),
            "sms",
            now_millis(),
        )
        .unwrap();
    let status = |s: &str| {
        params(&[
            ("MessageSid", &sid),
            ("AccountSid", SID),
            ("To", ANA),
            ("MessageStatus", s),
        ])
    };
    assert_eq!(
        b.post("sms/status", &status("delivered")).await.status(),
        200
    );
    b.drained().await;
    assert_eq!(
        b.store.message(item.message_id).unwrap().delivery,
        Some(Delivery::Delivered)
    );
    // "sent" arrives late, "queued" means nothing: still delivered.
    assert_eq!(b.post("sms/status", &status("sent")).await.status(), 200);
    assert_eq!(b.post("sms/status", &status("queued")).await.status(), 200);
    b.drained().await;
    assert_eq!(
        b.store.message(item.message_id).unwrap().delivery,
        Some(Delivery::Delivered)
    );
}

/// The worker's real dispatcher carries SMS replies: the provider's sid is recorded, so the
/// status callbacks find the message; a 21610 leaves the reply failed, not queued again.
#[tokio::test]
async fn the_worker_sends_replies_and_the_callbacks_find_them() {
    let mut b = start().await;
    b.text("SM1", "hi").await;
    b.drained().await;
    let mut opts = braid::worker::WorkerOptions::new(b._dir.path());
    opts.run_demo = false;
    opts.poll = Duration::from_millis(50);
    opts.lease_retry = Duration::from_millis(100);
    opts.senders.push(SmsSender::new(
        sms_config(&b.api_url),
        b._dir.path().join(DB_FILE),
    ));
    let _worker = braid::worker::spawn_with(opts).unwrap();

    let conv = b.conversation();
    let id = b
        .store
        .queue_reply(conv, Channel::Sms, "ann", "On its way!", now_millis())
        .unwrap();
    until(|| (b.store.message(id).unwrap().delivery == Some(Delivery::Sent)).then_some(())).await;
    let sid = b.api.created.lock().unwrap()[0].clone();
    let delivered = params(&[
        ("MessageSid", &sid),
        ("To", ANA),
        ("MessageStatus", "delivered"),
    ]);
    assert_eq!(b.post("sms/status", &delivered).await.status(), 200);
    until(|| (b.store.message(id).unwrap().delivery == Some(Delivery::Delivered)).then_some(()))
        .await;

    // The provider says the customer opted out: failed for good, and the next reply is refused
    // without a call.
    b.api.then(Answer::OptedOut);
    let id = b
        .store
        .queue_reply(conv, Channel::Sms, "ann", "Anything else?", now_millis())
        .unwrap();
    let m = until(|| {
        let m = b.store.message(id).unwrap();
        (m.delivery == Some(Delivery::Failed)).then_some(m)
    })
    .await;
    assert_eq!(m.delivery_error.as_deref(), Some(OPTED_OUT));
    assert_eq!(b.opted_out(), Some(true));
    // The next reply is refused before it is even queued.
    let e = b
        .store
        .queue_reply(conv, Channel::Sms, "ann", "Hello?", now_millis())
        .unwrap_err()
        .to_string();
    assert!(e.contains("opted out of SMS (21610"), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.api.requests(), 2, "21610 is never retried");
    assert_eq!(b.store.outbox_counts().unwrap().0, 0, "nothing left queued");
}
