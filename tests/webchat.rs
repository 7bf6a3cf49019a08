//! The website live chat over real HTTP and WebSockets on loopback: a tokio-tungstenite client
//! plays the widget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::webchat::protocol::ServerFrame;
use braid::channels::webchat::{Options, WebChatConfig, WebChatServer};
use braid::channels::{Outbound, SendError, SendFuture, Sent};
use braid::identity::Claim;
use braid::ingest::{self, Inbound};
use braid::model::{Channel, Delivery, Direction, IdentityKind, now_millis};
use braid::store::{OutboxItem, Store};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SITE: &str = "https://shop.example.com";

struct Chat {
    dir: tempfile::TempDir,
    server: WebChatServer,
    store: Store,
}

fn config() -> WebChatConfig {
    WebChatConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        allowed_origins: vec![SITE.to_string()],
        ..WebChatConfig::default()
    }
}

async fn start_with(tweak: impl FnOnce(&mut WebChatConfig)) -> Chat {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let mut c = config();
    tweak(&mut c);
    let mut opts = Options::new(c, ingest::Settings::default());
    opts.long_poll = Duration::from_secs(2);
    let server = WebChatServer::start(&opts, dir.path()).await.unwrap();
    Chat { dir, server, store }
}

async fn start() -> Chat {
    start_with(|_| {}).await
}

async fn connect(
    addr: SocketAddr,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", HeaderValue::from_str(o).unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, v: serde_json::Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next server frame (pings skipped); None when the socket closes.
async fn next(ws: &mut Ws) -> Option<Result<ServerFrame, Option<u16>>> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s");
        match m {
            Some(Ok(Message::Text(t))) => {
                return Some(Ok(serde_json::from_str(t.as_str()).unwrap()));
            }
            Some(Ok(Message::Close(c))) => return Some(Err(c.map(|c| c.code.into()))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

async fn frame(ws: &mut Ws) -> ServerFrame {
    match next(ws).await {
        Some(Ok(f)) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// Connect as the widget on the allowed site and say hello: (socket, token, visitor id).
async fn visitor(addr: SocketAddr, token: Option<&str>) -> (Ws, String, String) {
    let mut ws = connect(addr, Some(SITE)).await.unwrap();
    send(&mut ws, json!({"type": "hello", "visitor": token})).await;
    match frame(&mut ws).await {
        ServerFrame::Welcome { visitor, ask_email } => {
            assert!(ask_email);
            let id = visitor.split('.').next().unwrap().to_string();
            (ws, visitor, id)
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn say(ws: &mut Ws, id: &str, text: &str) -> ServerFrame {
    send(ws, json!({"type": "msg", "id": id, "text": text})).await;
    frame(ws).await
}

fn ack(id: &str) -> ServerFrame {
    ServerFrame::Ack { id: id.to_string() }
}

fn code_of(f: &ServerFrame) -> &str {
    match f {
        ServerFrame::Error { code, .. } => code,
        _ => "",
    }
}

fn timeline_of(store: &Store, visitor: &str) -> Vec<braid::store::MessageRow> {
    match store
        .contact_by_identity(IdentityKind::WebChat, visitor)
        .unwrap()
    {
        Some(c) => store.timeline(c, None, 100).unwrap(),
        None => Vec::new(),
    }
}

/// The socket is closed by the server (a close frame or the end of the stream).
async fn closed(ws: &mut Ws) -> Option<u16> {
    loop {
        match next(ws).await {
            Some(Ok(_)) => continue,
            Some(Err(code)) => return code,
            None => return None,
        }
    }
}

#[tokio::test]
async fn a_visitor_message_reaches_the_store_and_survives_a_reload() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (mut ws, token, id) = visitor(addr, None).await;
    let hostile = "Hello <b>there</b> <script>alert(1)</script>\u{1b}]0;pwned\u{7}\u{202e}!";
    assert_eq!(say(&mut ws, "c1", hostile).await, ack("c1"));
    let t = timeline_of(&chat.store, &id);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].channel, Channel::WebChat);
    assert_eq!(t[0].direction, Direction::In);
    // Shown as "Visitor 1a2b3c4d", not by the whole id.
    assert_eq!(t[0].author, format!("Visitor {}", &id[..8]));
    // Kept as text (never rendered as HTML), terminal escapes and bidi overrides removed.
    assert!(
        t[0].body.starts_with("Hello <b>there</b> <script>"),
        "{}",
        t[0].body
    );
    assert!(!t[0].body.contains('\u{1b}') && !t[0].body.contains('\u{202e}'));
    // The same widget message sent again (a reconnect) is stored once.
    assert_eq!(say(&mut ws, "c1", hostile).await, ack("c1"));
    assert_eq!(timeline_of(&chat.store, &id).len(), 1);
    drop(ws);

    // A reload: the same token, the same visitor, the same conversation.
    let (mut ws, again, id2) = visitor(addr, Some(&token)).await;
    assert_eq!(
        (again.as_str(), id2.as_str()),
        (token.as_str(), id.as_str())
    );
    assert_eq!(say(&mut ws, "c2", "still there?").await, ack("c2"));
    let t = timeline_of(&chat.store, &id);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].conversation_id, t[1].conversation_id);

    // Another tab of the same visitor sees the message too.
    let (mut tab2, _, _) = visitor(addr, Some(&token)).await;
    assert_eq!(say(&mut ws, "c3", "from tab one").await, ack("c3"));
    match frame(&mut tab2).await {
        ServerFrame::Msg { id, text, .. } => {
            assert_eq!((id.as_str(), text.as_str()), ("c3", "from tab one"))
        }
        other => panic!("{other:?}"),
    }
    chat.server.shutdown().await;
}

#[tokio::test]
async fn a_visitor_who_gives_their_email_joins_the_email_contact() {
    let chat = start().await;
    let mut store = Store::open_dir(chat.dir.path()).unwrap();
    let mail = Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: "<m1@example.com>".into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, "ann@example.com"),
        linked: vec![],
        customer_name: Some("Ann Lee".into()),
        author: None,
        subject: Some("Order 1234".into()),
        body: "Where is my order?".into(),
        sent_at: now_millis() - 60_000,
        meta: None,
        cursor: None,
    };
    ingest::ingest(&mut store, &mail, &ingest::Settings::default()).unwrap();
    let ann = store
        .contact_by_identity(IdentityKind::Email, "ann@example.com")
        .unwrap()
        .unwrap();

    let (mut ws, _, id) = visitor(chat.server.addr(), None).await;
    send(
        &mut ws,
        json!({"type": "msg", "id": "e1", "text": "hi", "email": "not an email"}),
    )
    .await;
    assert_eq!(code_of(&frame(&mut ws).await), "bad_email");
    send(&mut ws, json!({"type": "msg", "id": "e2", "text": "Any news on order 1234?", "email": " Ann@Example.com "})).await;
    assert_eq!(frame(&mut ws).await, ack("e2"));

    let contact = store
        .contact_by_identity(IdentityKind::WebChat, &id)
        .unwrap()
        .unwrap();
    assert_eq!(contact, ann, "one contact");
    assert_eq!(
        store.contact(ann).unwrap().name,
        "Ann Lee",
        "a real name is kept"
    );
    let t = store.timeline(ann, None, 10).unwrap();
    let channels: Vec<Channel> = t.iter().map(|m| m.channel).collect();
    assert_eq!(channels, vec![Channel::Email, Channel::WebChat]);
    assert_eq!(
        t[0].conversation_id, t[1].conversation_id,
        "one conversation"
    );
    chat.server.shutdown().await;
}

#[tokio::test]
async fn forged_visitor_ids_are_refused() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (_ws, token, id) = visitor(addr, None).await;
    // Somebody else's id with a made-up signature, a tampered signature, garbage.
    let other_server = start().await;
    let (_w2, foreign, _) = visitor(other_server.server.addr(), None).await;
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    for forged in [
        format!("{id}.00000000000000000000000000000000"),
        tampered,
        foreign,
        "w0123".into(),
        "<script>".into(),
    ] {
        let mut ws = connect(addr, Some(SITE)).await.unwrap();
        send(&mut ws, json!({"type": "hello", "visitor": forged})).await;
        assert_eq!(code_of(&frame(&mut ws).await), "bad_visitor", "{forged}");
        assert_eq!(
            closed(&mut ws).await,
            Some(braid::channels::webchat::CLOSE_BAD_VISITOR)
        );
    }
    // Long-poll too.
    let (status, body) = http(addr, "POST", "/lp/send", Some(SITE), &json!({"visitor": format!("{id}.00000000000000000000000000000000"), "id": "x", "text": "hi"}).to_string()).await;
    assert_eq!(status, 403, "{body}");
    assert!(timeline_of(&chat.store, &id).is_empty());
}

#[tokio::test]
async fn oversize_messages_are_refused() {
    let chat = start_with(|c| c.max_message_chars = 50).await;
    let addr = chat.server.addr();
    let (mut ws, _, id) = visitor(addr, None).await;
    let f = say(&mut ws, "big", &"é".repeat(51)).await;
    assert_eq!(code_of(&f), "too_long", "{f:?}");
    assert_eq!(say(&mut ws, "ok", &"é".repeat(50)).await, ack("ok"));
    assert_eq!(timeline_of(&chat.store, &id).len(), 1);
    // A frame far beyond the limit closes that socket; the server carries on.
    send(
        &mut ws,
        json!({"type": "msg", "id": "huge", "text": "x".repeat(1_000_000)}),
    )
    .await;
    closed(&mut ws).await;
    let (mut ws2, _, _) = visitor(addr, None).await;
    assert_eq!(say(&mut ws2, "after", "still up").await, ack("after"));
    assert_eq!(timeline_of(&chat.store, &id).len(), 1);
}

#[tokio::test]
async fn rate_limits_per_visitor_and_per_address() {
    let chat = start_with(|c| {
        c.visitor_messages_per_minute = 3;
        c.ip_connections_per_minute = 4;
    })
    .await;
    let addr = chat.server.addr();
    let (mut ws, _, id) = visitor(addr, None).await;
    for i in 0..3 {
        assert_eq!(
            say(&mut ws, &format!("r{i}"), "hi").await,
            ack(&format!("r{i}"))
        );
    }
    match say(&mut ws, "r3", "hi").await {
        ServerFrame::Error {
            code,
            retry_after_ms,
            id: Some(mid),
            ..
        } => {
            assert_eq!((code.as_str(), mid.as_str()), ("rate_limited", "r3"));
            assert!(retry_after_ms.unwrap() > 10_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(timeline_of(&chat.store, &id).len(), 3);
    // The socket stays usable; connections per address are limited too (4 a minute: one used).
    let _a = visitor(addr, None).await;
    let _b = visitor(addr, None).await;
    let _c = visitor(addr, None).await;
    let refused = connect(addr, Some(SITE)).await.unwrap_err();
    assert!(refused.to_string().contains("429"), "{refused}");

    // Per address, across visitors.
    let chat = start_with(|c| c.ip_messages_per_minute = 2).await;
    let (mut a, _, _) = visitor(chat.server.addr(), None).await;
    let (mut b, _, _) = visitor(chat.server.addr(), None).await;
    assert_eq!(say(&mut a, "a1", "hi").await, ack("a1"));
    assert_eq!(say(&mut b, "b1", "hi").await, ack("b1"));
    assert_eq!(code_of(&say(&mut a, "a2", "hi").await), "rate_limited");
}

#[tokio::test]
async fn a_malformed_frame_closes_only_that_socket() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (mut good, _, _) = visitor(addr, None).await;
    let bad_frames: Vec<Message> = vec![
        Message::Text("{not json".into()),
        Message::Text(r#"{"type":"msg","text":"no id"}"#.into()),
        Message::Text(r#"{"type":"msg","id":"bad id!","text":"x"}"#.into()),
        Message::Text(r#"{"type":"hello","visitor":null}"#.into()),
        Message::Text(r#"{"type":"admin","cmd":"drop tables"}"#.into()),
        Message::Binary(vec![0, 159, 146, 150].into()),
    ];
    for bad in bad_frames {
        let (mut ws, _, _) = visitor(addr, None).await;
        ws.send(bad.clone()).await.unwrap();
        let code = closed(&mut ws).await;
        assert!(matches!(code, Some(1003 | 1007)), "{bad:?}: {code:?}");
    }
    // Malformed before the hello, too.
    let mut ws = connect(addr, Some(SITE)).await.unwrap();
    ws.send(Message::Text("hello?".into())).await.unwrap();
    closed(&mut ws).await;
    // The other socket and the server are fine.
    assert_eq!(say(&mut good, "g1", "still here").await, ack("g1"));
    let (mut fresh, _, _) = visitor(addr, None).await;
    assert_eq!(say(&mut fresh, "f1", "new one").await, ack("f1"));
}

#[tokio::test]
async fn origins_not_allowed_are_refused() {
    let chat = start().await;
    let addr = chat.server.addr();
    for origin in [
        Some("https://evil.example.com"),
        Some("null"),
        None,
        Some("https://shop.example.com.evil.com"),
    ] {
        let err = connect(addr, origin).await.unwrap_err();
        assert!(err.to_string().contains("403"), "{origin:?}: {err}");
    }
    assert!(
        connect(addr, Some("HTTPS://shop.example.com"))
            .await
            .is_ok()
    );
    // The server's own demo page is same-origin.
    assert!(connect(addr, Some(&format!("http://{addr}"))).await.is_ok());
    let (status, _) = http(
        addr,
        "POST",
        "/lp/hello",
        Some("https://evil.example.com"),
        "{}",
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn widget_and_demo_page_are_served() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (status, js) = http(addr, "GET", "/widget.js", None, "").await;
    assert_eq!(status, 200);
    assert!(js.contains("textContent"));
    assert!(!js.contains("innerHTML"), "the widget never renders HTML");
    let (status, page) = http(addr, "GET", "/", None, "").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"<script src="/widget.js""#));
}

#[tokio::test]
async fn long_poll_fallback_carries_messages_both_ways() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (status, body) = http(addr, "POST", "/lp/hello", Some(SITE), r#"{"visitor":null}"#).await;
    assert_eq!(status, 200, "{body}");
    let ServerFrame::Welcome { visitor: token, .. } = serde_json::from_str(&body).unwrap() else {
        panic!("{body}")
    };
    let id = token.split('.').next().unwrap().to_string();
    let (status, body) = http(
        addr,
        "POST",
        "/lp/send",
        Some(SITE),
        &json!({"visitor": token, "id": "p1", "text": "via long poll"}).to_string(),
    )
    .await;
    assert_eq!(
        (status, serde_json::from_str::<ServerFrame>(&body).unwrap()),
        (200, ack("p1"))
    );
    assert_eq!(timeline_of(&chat.store, &id)[0].body, "via long poll");

    // The poll gets the visitor's own message (for their other tabs; the widget dedupes it).
    let (status, body) = http(
        addr,
        "POST",
        "/lp/poll",
        Some(SITE),
        &json!({"visitor": token}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("via long poll"), "{body}");

    // An agent reply reaches a poll in progress.
    let mut store = Store::open_dir(chat.dir.path()).unwrap();
    let item = queue(&mut store, &id, "Hello from support").await;
    let poll = tokio::spawn(http(
        addr,
        "POST",
        "/lp/poll",
        Some(SITE),
        json!({"visitor": token}).to_string().leak(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = chat.server.outbound(None, None).send(&item).await.unwrap();
    assert!(sent.external_id.unwrap().starts_with(&id));
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("Hello from support"), "{body}");
}

/// Queue an agent reply to the visitor and claim it like the dispatcher would.
async fn queue(store: &mut Store, visitor: &str, text: &str) -> OutboxItem {
    let contact = store
        .contact_by_identity(IdentityKind::WebChat, visitor)
        .unwrap()
        .unwrap();
    let conv = store.active_conversation(contact).unwrap().unwrap();
    let id = store
        .queue_reply(conv, Channel::WebChat, "bob", text, now_millis())
        .unwrap();
    store
        .claim_outbox(now_millis(), 60_000, 10)
        .unwrap()
        .into_iter()
        .find(|i| i.message_id == id)
        .unwrap()
}

/// Records what it "sends".
#[derive(Default)]
struct Mailer(Mutex<Vec<OutboxItem>>);

impl Outbound for Mailer {
    fn channel(&self) -> Channel {
        Channel::Email
    }
    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        self.0.lock().unwrap().push(item.clone());
        Box::pin(async {
            Ok(Sent {
                account: "support@example.com".into(),
                external_id: Some("<r1@example.com>".into()),
            })
        })
    }
}

#[tokio::test]
async fn a_visitor_who_left_gets_the_reply_by_email_or_a_clear_failure() {
    let chat = start().await;
    let addr = chat.server.addr();
    let mut store = Store::open_dir(chat.dir.path()).unwrap();

    // Gave an email, then left.
    let (mut ws, _, with_email) = visitor(addr, None).await;
    send(
        &mut ws,
        json!({"type": "msg", "id": "m1", "text": "call me back", "email": "zoe@example.com"}),
    )
    .await;
    assert_eq!(frame(&mut ws).await, ack("m1"));
    drop(ws);
    // Gave none, then left.
    let (mut ws, _, anonymous) = visitor(addr, None).await;
    assert_eq!(say(&mut ws, "m1", "hello?").await, ack("m1"));
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // No email account configured: failed, saying why.
    let item = queue(&mut store, &with_email, "We called you.").await;
    let err: SendError = chat
        .server
        .outbound(None, None)
        .send(&item)
        .await
        .unwrap_err();
    assert!(
        err.reason.contains("visitor offline") && err.reason.contains("no email account"),
        "{}",
        err.reason
    );
    assert!(!err.retry);
    store
        .mark_failed(
            item.message_id,
            &err.reason,
            err.retry,
            "worker",
            now_millis(),
        )
        .unwrap();

    // With one: delivered by email, and the timeline says so.
    store.retry(item.message_id, "bob", now_millis()).unwrap();
    let item = store
        .claim_outbox(now_millis(), 60_000, 10)
        .unwrap()
        .remove(0);
    let mailer = Arc::new(Mailer::default());
    let sent = chat
        .server
        .outbound(None, Some(mailer.clone() as Arc<dyn Outbound>))
        .send(&item)
        .await
        .unwrap();
    assert_eq!(sent.account, "support@example.com");
    let mails = mailer.0.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        (
            mails[0].channel,
            mails[0].recipient.as_str(),
            mails[0].body.as_str()
        ),
        (Channel::Email, "zoe@example.com", "We called you.")
    );
    store
        .mark_sent(
            item.message_id,
            &sent.account,
            sent.external_id.as_deref(),
            "worker",
            now_millis(),
        )
        .unwrap();
    let t = timeline_of(&store, &with_email);
    let note = t
        .iter()
        .find(|m| m.direction == Direction::Note)
        .expect("a note");
    assert!(
        note.body.contains("delivered by email: visitor offline"),
        "{}",
        note.body
    );
    assert_eq!(
        store.message(item.message_id).unwrap().delivery,
        Some(Delivery::Sent)
    );

    // No email given: failed, and sent again when the visitor comes back.
    let item = queue(&mut store, &anonymous, "Are you still there?").await;
    let err = chat
        .server
        .outbound(None, None)
        .send(&item)
        .await
        .unwrap_err();
    assert!(err.reason.contains("gave no email"), "{}", err.reason);
    store
        .mark_failed(
            item.message_id,
            &err.reason,
            err.retry,
            "worker",
            now_millis(),
        )
        .unwrap();
    assert_eq!(
        store.message(item.message_id).unwrap().delivery,
        Some(Delivery::Failed)
    );
    let token = {
        // The visitor's token as their browser kept it: sign in again with a fresh hello.
        let signer =
            braid::channels::webchat::secret::Signer::load_or_create(chat.dir.path()).unwrap();
        signer.token(&anonymous)
    };
    let (_back, _, _) = visitor(addr, Some(&token)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.message(item.message_id).unwrap().delivery != Some(Delivery::Queued) {
        assert!(Instant::now() < deadline, "not queued again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_leader_pushes_agent_replies_to_the_open_widget_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_dir(dir.path()).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config();
    c.listen = SocketAddr::from(([127, 0, 0, 1], port));
    let mut opts = braid::worker::WorkerOptions::new(dir.path());
    opts.webchat = Some(Options::new(c, ingest::Settings::default()));
    let mut worker = braid::worker::spawn_with(opts).unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        worker
            .status
            .wait_for(|s| s.detail.contains("web chat http://")),
    )
    .await
    .expect("the leader serves the web chat")
    .unwrap()
    .clone();
    assert!(
        status.detail.contains(&format!("127.0.0.1:{port}")),
        "{}",
        status.detail
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (mut ws, _, id) = visitor(addr, None).await;
    assert_eq!(
        say(&mut ws, "q1", "Do you ship to Norway?").await,
        ack("q1")
    );

    for n in 0..3 {
        let contact = store
            .contact_by_identity(IdentityKind::WebChat, &id)
            .unwrap()
            .unwrap();
        let conv = store.active_conversation(contact).unwrap().unwrap();
        let text = format!("Yes, we do ({n})");
        let queued_at = Instant::now();
        let msg = store
            .queue_reply(conv, Channel::WebChat, "bob", &text, now_millis())
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(1), frame(&mut ws)).await {
            Ok(ServerFrame::Msg {
                id,
                text: got,
                author,
                ..
            }) => {
                assert_eq!(
                    (id, got, author),
                    (format!("m{msg}"), text, "bob".to_string())
                );
            }
            other => panic!("no reply within 1 s: {other:?}"),
        }
        let took = queued_at.elapsed();
        assert!(took < Duration::from_secs(1), "{took:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.message(msg).unwrap().delivery != Some(Delivery::Sent) {
            assert!(Instant::now() < deadline, "never marked sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    worker.shutdown().await;
    // The listener is gone with the lease.
    assert!(connect(addr, Some(SITE)).await.is_err());
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    origin: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{origin}Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn connect_from(
    addr: SocketAddr,
    forwarded_for: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", HeaderValue::from_static(SITE));
    req.headers_mut().insert(
        "X-Forwarded-For",
        HeaderValue::from_str(forwarded_for).unwrap(),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn behind_a_proxy_the_limits_count_the_forwarded_address() {
    // Not trusted (the default): the header is ignored, everyone is 127.0.0.1.
    let chat = start_with(|c| c.ip_connections_per_minute = 1).await;
    let addr = chat.server.addr();
    assert!(connect_from(addr, "203.0.113.1").await.is_ok());
    assert!(connect_from(addr, "203.0.113.2").await.is_err());

    // Trusted: the last entry (the one the proxy added) is the visitor's address.
    let chat = start_with(|c| {
        c.ip_connections_per_minute = 1;
        c.trust_forwarded_for = true;
    })
    .await;
    let addr = chat.server.addr();
    assert!(connect_from(addr, "203.0.113.1").await.is_ok());
    assert!(
        connect_from(addr, "198.51.100.7, 203.0.113.2")
            .await
            .is_ok()
    );
    let again = connect_from(addr, "198.51.100.9, 203.0.113.1")
        .await
        .unwrap_err();
    assert!(again.to_string().contains("429"), "{again}");
}

#[tokio::test]
async fn a_message_of_only_escape_sequences_is_refused_as_empty() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (mut ws, _, id) = visitor(addr, None).await;
    let f = say(&mut ws, "esc", "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{202e}").await;
    assert_eq!(code_of(&f), "empty", "{f:?}");
    assert_eq!(say(&mut ws, "ok", "hello").await, ack("ok"));
    assert_eq!(timeline_of(&chat.store, &id).len(), 1);
}
