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

/// The hash an embedding site's server computes for its logged-in user, as README shows it:
/// hex HMAC-SHA256 of the email, keyed with the text of `webchat-identity.secret`.
fn site_hash(dir: &std::path::Path, email: &str) -> String {
    use hmac::{Hmac, Mac};
    let secret = std::fs::read_to_string(dir.join("webchat-identity.secret")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.trim().as_bytes()).unwrap();
    mac.update(email.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Connect as the widget on a page that vouches for its logged-in user.
async fn signed_visitor(addr: SocketAddr, email: &str, hash: &str) -> (Ws, String, String) {
    let mut ws = connect(addr, Some(SITE)).await.unwrap();
    send(
        &mut ws,
        json!({"type": "hello", "visitor": null, "user_email": email, "user_hash": hash}),
    )
    .await;
    match frame(&mut ws).await {
        ServerFrame::Welcome { visitor, .. } => {
            let id = visitor.split('.').next().unwrap().to_string();
            (ws, visitor, id)
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn a_visitor_the_site_signs_joins_the_email_contact() {
    let chat = start().await;
    let mut store = Store::open_dir(chat.dir.path()).unwrap();
    let ann = customer_by_email(&mut store, "ann@example.com", "Ann Lee");

    // A wrong hash (another address's, a truncated one, garbage) is ignored: a guest.
    let good = site_hash(chat.dir.path(), "Ann@Example.com");
    for wrong in [
        site_hash(chat.dir.path(), "eve@example.com"),
        good[..62].to_string(),
        "zz".repeat(32),
        String::new(),
    ] {
        let (mut ws, _, id) = signed_visitor(chat.server.addr(), "Ann@Example.com", &wrong).await;
        assert_eq!(say(&mut ws, "w1", "let me in").await, ack("w1"));
        let c = store
            .contact_by_identity(IdentityKind::WebChat, &id)
            .unwrap()
            .unwrap();
        assert_ne!(c, ann, "a wrong hash {wrong:?} must not link");
    }

    let (mut ws, _, id) = signed_visitor(chat.server.addr(), "Ann@Example.com", &good).await;
    send(
        &mut ws,
        json!({"type": "msg", "id": "e1", "text": "hi", "email": "not an email"}),
    )
    .await;
    assert_eq!(code_of(&frame(&mut ws).await), "bad_email");
    assert_eq!(
        say(&mut ws, "e2", "Any news on order 1234?").await,
        ack("e2")
    );

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

    // Long-poll: the signed user rides along with each send.
    let (_, body) = http(
        chat.server.addr(),
        "POST",
        "/lp/hello",
        Some(SITE),
        r#"{"visitor":null}"#,
    )
    .await;
    let ServerFrame::Welcome { visitor: token, .. } = serde_json::from_str(&body).unwrap() else {
        panic!("{body}")
    };
    let lp_id = token.split('.').next().unwrap().to_string();
    let (status, body) = http(
        chat.server.addr(),
        "POST",
        "/lp/send",
        Some(SITE),
        &json!({"visitor": token, "id": "p1", "text": "by poll", "user_email": "ann@example.com", "user_hash": site_hash(chat.dir.path(), "ann@example.com")}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        store
            .contact_by_identity(IdentityKind::WebChat, &lp_id)
            .unwrap(),
        Some(ann)
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

    // Known by a verified email (the site signed it), then left.
    let hash = site_hash(chat.dir.path(), "zoe@example.com");
    let (mut ws, _, with_email) = signed_visitor(addr, "zoe@example.com", &hash).await;
    assert_eq!(say(&mut ws, "m1", "call me back").await, ack("m1"));
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

/// An email the customer sent from `address` (a contact braid knows by email).
fn customer_by_email(store: &mut Store, address: &str, name: &str) -> braid::model::ContactId {
    let mail = Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: format!("<{address}-1@example.com>"),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, address),
        linked: vec![],
        customer_name: Some(name.into()),
        author: None,
        subject: Some("My order".into()),
        body: "Private: my address is 1 Elm St".into(),
        sent_at: now_millis() - 60_000,
        meta: None,
        cursor: None,
    };
    ingest::ingest(store, &mail, &ingest::Settings::default()).unwrap();
    store
        .contact_by_identity(IdentityKind::Email, address)
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn typing_a_customers_email_is_a_claim_not_a_takeover() {
    let chat = start().await;
    let addr = chat.server.addr();
    let mut store = Store::open_dir(chat.dir.path()).unwrap();
    let olivia = customer_by_email(&mut store, "olivia.thomas3@gmail.com", "Olivia Thomas");

    let (mut ws, _, id) = visitor(addr, None).await;
    send(&mut ws, json!({"type": "msg", "id": "t1", "text": "hi, it's me", "email": "Olivia.Thomas3@gmail.com"})).await;
    assert_eq!(frame(&mut ws).await, ack("t1"));
    let intruder = store
        .contact_by_identity(IdentityKind::WebChat, &id)
        .unwrap()
        .unwrap();
    assert_ne!(intruder, olivia, "the visitor must stay their own contact");
    // Olivia's history is not in the visitor's timeline, and her contact has no visitor id.
    let t = store.timeline(intruder, None, 100).unwrap();
    assert!(t.iter().all(|m| m.channel == Channel::WebChat), "{t:?}");
    assert!(
        store
            .identities(olivia)
            .unwrap()
            .iter()
            .all(|i| i.kind == IdentityKind::Email)
    );
    // The visitor is not named after the address they typed.
    assert_eq!(
        store.contact(intruder).unwrap().name,
        format!("Visitor {}", &id[..8])
    );
    // The profile shows the claim.
    let p = store.profile(intruder).unwrap();
    assert_eq!(
        p.claims
            .iter()
            .map(|c| c.value.as_str())
            .collect::<Vec<_>>(),
        vec!["olivia.thomas3@gmail.com"]
    );
    assert!(
        store
            .identities(intruder)
            .unwrap()
            .iter()
            .all(|i| i.kind == IdentityKind::WebChat)
    );
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The visitor has left: the reply is NOT emailed to the claimed address.
    let item = queue(&mut store, &id, "Your parcel goes to 1 Elm St").await;
    let mailer = Arc::new(Mailer::default());
    let err = chat
        .server
        .outbound(None, Some(mailer.clone() as Arc<dyn Outbound>))
        .send(&item)
        .await
        .unwrap_err();
    assert!(
        mailer.0.lock().unwrap().is_empty(),
        "mailed to an unverified claim"
    );
    assert!(
        err.reason.contains("olivia.thomas3@gmail.com") && err.reason.contains("not verified"),
        "{}",
        err.reason
    );
    assert!(!err.retry);
    // Failed, and sent again when the visitor comes back (as for a visitor with no email).
    store
        .mark_failed(
            item.message_id,
            &err.reason,
            err.retry,
            "worker",
            now_millis(),
        )
        .unwrap();
    let token = braid::channels::webchat::secret::Signer::load_or_create(chat.dir.path())
        .unwrap()
        .token(&id);
    let (_back, _, _) = visitor(addr, Some(&token)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.message(item.message_id).unwrap().delivery != Some(Delivery::Queued) {
        assert!(Instant::now() < deadline, "not queued again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    chat.server.shutdown().await;
}

/// A long poll (or any POST) as if from `forwarded_for` behind a trusted proxy: (status, body).
async fn http_from(addr: SocketAddr, path: &str, forwarded_for: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {SITE}\r\nX-Forwarded-For: {forwarded_for}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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

#[tokio::test]
async fn long_polls_from_one_address_cannot_lock_out_everyone_else() {
    let chat = start_with(|c| {
        c.max_connections = 50;
        c.trust_forwarded_for = true;
    })
    .await;
    let addr = chat.server.addr();
    // One address, 60 visitor ids (minted with the server's own secret: a flood of hellos
    // would only be slower), a poll each, all at once.
    let signer = braid::channels::webchat::secret::Signer::load_or_create(chat.dir.path()).unwrap();
    let mut polls = Vec::new();
    for _ in 0..60 {
        let (_, token) = signer.issue().unwrap();
        let body = json!({"visitor": token}).to_string();
        polls.push(tokio::spawn(async move {
            http_from(addr, "/lp/poll", "203.0.113.66", &body).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A visitor from elsewhere still gets in, over the WebSocket and the long poll.
    let ws = connect_from(addr, "198.51.100.7").await;
    assert!(ws.is_ok(), "locked out: {:?}", ws.err());
    let (_, token) = signer.issue().unwrap();
    let (status, body) = http_from(
        addr,
        "/lp/poll",
        "198.51.100.8",
        &json!({"visitor": token}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut refused = 0;
    for p in polls {
        let (status, body) = p.await.unwrap();
        if status == 429 {
            refused += 1;
            assert!(
                body.contains("too many connections from this address"),
                "{body}"
            );
        }
    }
    assert!(refused >= 60 - 20, "only {refused} of 60 polls refused");
}

#[tokio::test]
async fn a_newer_poll_of_the_same_visitor_ends_the_older_one() {
    let chat = start().await;
    let addr = chat.server.addr();
    let (_, body) = http(addr, "POST", "/lp/hello", Some(SITE), r#"{"visitor":null}"#).await;
    let ServerFrame::Welcome { visitor: token, .. } = serde_json::from_str(&body).unwrap() else {
        panic!("{body}")
    };
    let poll_body: &'static str = json!({"visitor": token}).to_string().leak();
    let first = tokio::spawn(http(addr, "POST", "/lp/poll", Some(SITE), poll_body));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let second = tokio::spawn(http(addr, "POST", "/lp/poll", Some(SITE), poll_body));
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"superseded\":true"), "{body}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the older poll waited on"
    );
    // The newer one gets what arrives.
    let id = token.split('.').next().unwrap().to_string();
    let (status, _) = http(
        addr,
        "POST",
        "/lp/send",
        Some(SITE),
        &json!({"visitor": token, "id": "s1", "text": "hello"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = second.await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("hello"), "{body}");
    assert_eq!(timeline_of(&chat.store, &id).len(), 1);
}

#[tokio::test]
async fn the_size_limit_counts_characters_and_bad_frames_close_with_their_code() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let chat = start().await;
    let addr = chat.server.addr();
    let (mut ws, _, id) = visitor(addr, None).await;
    // 2,000 emoji (the default limit), each sent as a \uXXXX\uXXXX pair: 24,000 bytes of JSON.
    let escaped = "\\ud83d\\ude00".repeat(2000);
    let raw = format!(r#"{{"type":"msg","id":"emoji","text":"{escaped}"}}"#);
    ws.send(Message::Text(raw.into())).await.unwrap();
    assert_eq!(frame(&mut ws).await, ack("emoji"));
    assert_eq!(timeline_of(&chat.store, &id)[0].body.chars().count(), 2000);
    // One more character is refused by the message limit, not by the frame limit.
    let escaped = "\\ud83d\\ude00".repeat(2001);
    let raw = format!(r#"{{"type":"msg","id":"more","text":"{escaped}"}}"#);
    ws.send(Message::Text(raw.into())).await.unwrap();
    assert_eq!(code_of(&frame(&mut ws).await), "too_long");
    // A frame beyond the byte cap closes with 1009 (message too big).
    send(
        &mut ws,
        json!({"type": "msg", "id": "huge", "text": "x".repeat(1_000_000)}),
    )
    .await;
    assert_eq!(closed(&mut ws).await, Some(1009));
    // A text frame that is not UTF-8 closes with 1007.
    let (mut ws, _, _) = visitor(addr, None).await;
    ws.send(Message::Frame(Frame::message(
        vec![b'"', 0xff, 0xfe, b'"'],
        OpCode::Data(Data::Text),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(closed(&mut ws).await, Some(1007));
}

#[tokio::test]
async fn an_origin_naming_the_host_header_is_not_the_servers_own_page() {
    let chat = start().await;
    let addr = chat.server.addr();
    // DNS rebinding: evil.example resolves to this server; the browser sends Host and Origin
    // both naming evil.example.
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("Host", HeaderValue::from_static("evil.example:8765"));
    req.headers_mut().insert(
        "Origin",
        HeaderValue::from_static("http://evil.example:8765"),
    );
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    // The demo page at the listen address is the server's own.
    assert!(connect(addr, Some(&format!("http://{addr}"))).await.is_ok());
    // A configured public origin (behind a proxy) is too.
    let chat = start_with(|c| c.public_origin = Some("https://chat.example.com".into())).await;
    assert!(
        connect(chat.server.addr(), Some("https://chat.example.com"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_reply_sent_twice_carries_the_same_id_both_times() {
    // The widget shows a message id once; this is what makes a resend (after a crash) harmless.
    let chat = start().await;
    let addr = chat.server.addr();
    let mut store = Store::open_dir(chat.dir.path()).unwrap();
    let (mut ws, _, id) = visitor(addr, None).await;
    assert_eq!(say(&mut ws, "q1", "hello?").await, ack("q1"));
    let item = queue(&mut store, &id, "Hello from support").await;
    let out = chat.server.outbound(None, None);
    out.send(&item).await.unwrap();
    out.send(&item).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        match frame(&mut ws).await {
            ServerFrame::Msg { id, text, .. } => {
                assert_eq!(text, "Hello from support");
                ids.push(id);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids, vec![format!("m{}", item.message_id); 2]);

    // Long poll: the same.
    let (_, body) = http(addr, "POST", "/lp/hello", Some(SITE), r#"{"visitor":null}"#).await;
    let ServerFrame::Welcome { visitor: token, .. } = serde_json::from_str(&body).unwrap() else {
        panic!("{body}")
    };
    let lp_id = token.split('.').next().unwrap().to_string();
    let (status, _) = http(
        addr,
        "POST",
        "/lp/send",
        Some(SITE),
        &json!({"visitor": token, "id": "p1", "text": "hi"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let poll = json!({"visitor": token}).to_string();
    let _ = http(addr, "POST", "/lp/poll", Some(SITE), &poll).await; // its own echo
    let item = queue(&mut store, &lp_id, "Polled twice").await;
    out.send(&item).await.unwrap();
    out.send(&item).await.unwrap();
    let (_, body) = http(addr, "POST", "/lp/poll", Some(SITE), &poll).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let got: Vec<&str> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    let want = format!("m{}", item.message_id);
    assert_eq!(got, vec![want.as_str(), want.as_str()]);
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

/// A resolved conversation's survey reaches the widget with `csat` (its buttons answer it);
/// the visitor's `csat` frame over the real WebSocket is acked and recorded once, with its
/// comment sanitized; another visitor cannot answer it; a text "4" is not needed.
#[tokio::test]
async fn a_survey_reaches_the_widget_and_its_answer_comes_back_over_the_socket() {
    let chat = start().await;
    let addr = chat.server.addr();
    let mut store = Store::open_dir(chat.dir.path()).unwrap();
    let (mut ws, _, id) = visitor(addr, None).await;
    assert_eq!(
        say(&mut ws, "q1", "Do you ship to Norway?").await,
        ack("q1")
    );
    let contact = store
        .contact_by_identity(IdentityKind::WebChat, &id)
        .unwrap()
        .unwrap();
    let conv = store.active_conversation(contact).unwrap().unwrap();
    let cfg = braid::csat::CsatConfig {
        enabled: true,
        question: "How did we do?".into(),
        ..Default::default()
    };
    store.derive_csat(&cfg, now_millis()).unwrap();
    store
        .set_status(
            conv,
            braid::model::Status::Resolved,
            None,
            "bob",
            now_millis(),
        )
        .unwrap();
    assert_eq!(store.derive_csat(&cfg, now_millis()).unwrap().sent, 1);
    let item = store
        .claim_outbox(now_millis(), 60_000, 10)
        .unwrap()
        .pop()
        .unwrap();
    chat.server.outbound(None, None).send(&item).await.unwrap();
    let survey = match frame(&mut ws).await {
        ServerFrame::Msg {
            text, author, csat, ..
        } => {
            assert_eq!((text.as_str(), author.as_str()), ("How did we do?", ""));
            csat.expect("the survey frame names its survey")
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(survey, conv.0);

    // Another visitor forges an answer: refused, nothing recorded.
    let (mut other, _, _) = visitor(addr, None).await;
    send(
        &mut other,
        json!({"type": "csat", "id": "x1", "survey": survey, "score": 1}),
    )
    .await;
    assert_eq!(code_of(&frame(&mut other).await), "csat_closed");
    // Out of range: refused.
    send(
        &mut ws,
        json!({"type": "csat", "id": "s0", "survey": survey, "score": 9}),
    )
    .await;
    assert_eq!(code_of(&frame(&mut ws).await), "bad_score");
    // The visitor taps 2 with a comment (escape sequences and all).
    send(
        &mut ws,
        json!({"type": "csat", "id": "s1", "survey": survey, "score": 2,
               "comment": "slow \u{1b}[31manswer"}),
    )
    .await;
    assert_eq!(frame(&mut ws).await, ack("s1"));
    // A resend after a reconnect is acked; a second answer does not replace the first.
    send(
        &mut ws,
        json!({"type": "csat", "id": "s2", "survey": survey, "score": 5}),
    )
    .await;
    assert_eq!(frame(&mut ws).await, ack("s2"));
    let row = store.conversation_csat(conv).unwrap().unwrap();
    assert_eq!(row.score, Some(2));
    assert_eq!(row.comment.as_deref(), Some("slow answer"));
    let events: Vec<_> = store
        .conversation_events(conv, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "csat_answered")
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(events[0].data.as_deref().unwrap()).unwrap(),
        json!({"score": 2, "comment": "slow answer", "channel": "webchat"})
    );
    assert_eq!(
        store.conversation(conv).unwrap().status,
        braid::model::Status::Resolved
    );
}
