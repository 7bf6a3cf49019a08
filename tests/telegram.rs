//! The Telegram channel against a local Bot API server (axum) that answers getMe, getUpdates
//! (offset/timeout), sendMessage, getFile and file downloads with JSON shaped like the Bot API
//! documentation, and can be told to answer 429 (retry_after), 409 and 403. It also speaks
//! inline keyboards: sendMessage keeps a message's `reply_markup`, a tap is a `callback_query`
//! update (delivered only when getUpdates' `allowed_updates` asks for it, as Telegram does),
//! and answerCallbackQuery answers it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use braid::channels::Outbound;
use braid::channels::telegram::poll::{self, PollError, Poller};
use braid::channels::telegram::{Telegram, TelegramConfig, TokenSource};
use braid::config::Config;
use braid::ingest::Settings;
use braid::model::{Channel, Delivery, IdentityKind, MessageId, now_millis};
use braid::store::Store;
use braid::worker::{self, DispatchSettings, Dispatcher, Outcome, Senders, WorkerOptions};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "123456:TEST-token_abc";
const BOT_ID: i64 = 123_456;
const ANN: i64 = 555;

/// A canned error answer: HTTP status and the Bot API error object.
fn api_error(code: u16, description: &str, retry_after: Option<u32>) -> (u16, Value) {
    let mut v = json!({"ok": false, "error_code": code, "description": description});
    if let Some(s) = retry_after {
        v["parameters"] = json!({"retry_after": s});
    }
    (code, v)
}

#[derive(Default)]
struct Api {
    /// Every update the server has, oldest first.
    updates: Vec<Value>,
    next_update: i64,
    next_message: i64,
    /// The highest offset a getUpdates confirmed.
    confirmed: i64,
    /// Scripted answers for the next getUpdates / sendMessage calls.
    updates_script: VecDeque<(u16, Value)>,
    send_script: VecDeque<(u16, Value)>,
    /// (chat id, text, when) of every accepted sendMessage.
    sent: Vec<(i64, String, Instant)>,
    /// Every method called, in order, with when.
    calls: Vec<(String, Instant)>,
    /// How long sendMessage takes to answer after it has accepted (and recorded) the message.
    send_delay: Duration,
    /// The bot's username in getMe (default braid_test_bot).
    me_username: Option<String>,
    /// The `reply_markup` of every accepted sendMessage (Null: none), in order.
    markups: Vec<Value>,
    /// (callback_query_id, text) of every answerCallbackQuery.
    callback_answers: Vec<(String, String)>,
}

#[derive(Clone)]
struct Server {
    api: Arc<Mutex<Api>>,
    url: String,
}

fn user(id: i64, first: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": first, "language_code": "en"})
}

fn private_chat(id: i64, first: &str) -> Value {
    json!({"id": id, "first_name": first, "type": "private"})
}

fn message(id: i64, from: i64, extra: Value) -> Value {
    let mut m = json!({
        "message_id": id,
        "from": user(from, "Ann"),
        "chat": private_chat(from, "Ann"),
        "date": 1_700_000_000 + id,
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

impl Server {
    async fn start() -> Server {
        let api = Arc::new(Mutex::new(Api {
            next_update: 1000,
            next_message: 1,
            ..Api::default()
        }));
        let app = Router::new()
            .route("/{bot}/{method}", post(method))
            .route("/file/{bot}/{*path}", get(file))
            .with_state(Arc::clone(&api));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { api, url }
    }

    fn config(&self) -> TelegramConfig {
        TelegramConfig {
            account: String::new(),
            token: TokenSource::Plain(TOKEN.into()),
            api_url: self.url.clone(),
            poll_timeout: 1,
            team: None,
        }
    }

    fn bot(&self) -> Arc<Telegram> {
        Telegram::new(self.config(), Settings::default())
    }

    /// A customer message arrives: returns its message id.
    fn customer_writes(&self, extra: Value) -> i64 {
        let mut a = self.api.lock().unwrap();
        let id = a.next_message;
        a.next_message += 1;
        let u = a.next_update;
        a.next_update += 1;
        let m = message(id, ANN, extra);
        a.updates.push(json!({"update_id": u, "message": m}));
        id
    }

    /// A user taps an inline keyboard button of the bot's message `message_id`: a
    /// callback_query update. Returns the query's id.
    fn user_taps(&self, from: i64, message_id: i64, data: &str) -> String {
        let mut a = self.api.lock().unwrap();
        let u = a.next_update;
        a.next_update += 1;
        let id = format!("cbq-{u}");
        let mut m = message(
            message_id,
            BOT_ID,
            json!({"text": "How would you rate our help?"}),
        );
        m["from"] = json!({"id": BOT_ID, "is_bot": true, "first_name": "Braid Test", "username": "braid_test_bot"});
        m["chat"] = private_chat(from, "Ann");
        a.updates.push(json!({"update_id": u, "callback_query": {
            "id": id, "from": user(from, "Ann"), "message": m,
            "chat_instance": format!("ci-{from}"), "data": data
        }}));
        id
    }

    fn customer_edits(&self, id: i64, text: &str) {
        let mut a = self.api.lock().unwrap();
        let u = a.next_update;
        a.next_update += 1;
        let mut m = message(id, ANN, json!({"text": text}));
        m["edit_date"] = json!(1_700_000_000 + id + 60);
        a.updates.push(json!({"update_id": u, "edited_message": m}));
    }

    fn calls(&self, method: &str) -> usize {
        let a = self.api.lock().unwrap();
        let method = method.to_ascii_lowercase();
        a.calls.iter().filter(|(m, _)| *m == method).count()
    }

    fn sent(&self) -> Vec<(i64, String, Instant)> {
        self.api.lock().unwrap().sent.clone()
    }
}

fn reply(code: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(v),
    )
        .into_response()
}

async fn method(
    State(api): State<Arc<Mutex<Api>>>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        let (c, v) = api_error(401, "Unauthorized", None);
        return reply(c, v);
    }
    let params: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    api.lock()
        .unwrap()
        .calls
        .push((method.to_ascii_lowercase(), Instant::now()));
    // Telegram's method names are case-insensitive (teloxide sends "GetUpdates").
    match method.to_ascii_lowercase().as_str() {
        "getme" => reply(
            200,
            json!({"ok": true, "result": {
                "id": BOT_ID, "is_bot": true, "first_name": "Braid Test",
                "username": api.lock().unwrap().me_username.clone().unwrap_or("braid_test_bot".into()),
                "can_join_groups": true, "can_read_all_group_messages": false,
                "supports_inline_queries": false, "can_connect_to_business": false,
                "has_main_web_app": false
            }}),
        ),
        "getupdates" => {
            let offset = params["offset"].as_i64().unwrap_or(0);
            let timeout = params["timeout"].as_u64().unwrap_or(0).min(2);
            let deadline = Instant::now() + Duration::from_secs(timeout);
            loop {
                {
                    let mut a = api.lock().unwrap();
                    if let Some((c, v)) = a.updates_script.pop_front() {
                        return reply(c, v);
                    }
                    // Confirming an offset forgets the updates before it, as Telegram does.
                    a.confirmed = a.confirmed.max(offset);
                    let confirmed = a.confirmed;
                    // `allowed_updates`: only those kinds (absent: every kind but a few,
                    // callback queries included).
                    let allowed: Option<Vec<String>> =
                        params["allowed_updates"].as_array().map(|l| {
                            l.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        });
                    let list: Vec<Value> = a
                        .updates
                        .iter()
                        .filter(|u| u["update_id"].as_i64().unwrap() >= confirmed)
                        .filter(|u| match &allowed {
                            None => true,
                            Some(kinds) => u
                                .as_object()
                                .unwrap()
                                .keys()
                                .any(|k| k != "update_id" && kinds.contains(k)),
                        })
                        .cloned()
                        .collect();
                    if !list.is_empty() || Instant::now() >= deadline {
                        return reply(200, json!({"ok": true, "result": list}));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        "sendmessage" => {
            let accepted = {
                let mut a = api.lock().unwrap();
                match a.send_script.pop_front() {
                    Some((c, v)) => Err(reply(c, v)),
                    None => {
                        let chat = params["chat_id"].as_i64().unwrap();
                        let text = params["text"].as_str().unwrap().to_string();
                        let id = a.next_message;
                        a.next_message += 1;
                        a.sent.push((chat, text.clone(), Instant::now()));
                        a.markups.push(params["reply_markup"].clone());
                        Ok((chat, text, id, a.send_delay))
                    }
                }
            };
            let (chat, text, id, delay) = match accepted {
                Ok(x) => x,
                Err(refused) => return refused,
            };
            // Delivered to the customer; the answer is what may never come back.
            tokio::time::sleep(delay).await;
            reply(
                200,
                json!({"ok": true, "result": {
                    "message_id": id,
                    "from": {"id": BOT_ID, "is_bot": true, "first_name": "Braid Test", "username": "braid_test_bot"},
                    "chat": private_chat(chat, "Ann"),
                    "date": 1_700_000_500,
                    "text": text
                }}),
            )
        }
        "answercallbackquery" => {
            let id = params["callback_query_id"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let text = params["text"].as_str().unwrap_or("").to_string();
            if id.is_empty() {
                let (c, v) = api_error(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                    None,
                );
                return reply(c, v);
            }
            api.lock().unwrap().callback_answers.push((id, text));
            reply(200, json!({"ok": true, "result": true}))
        }
        "getfile" => {
            let id = params["file_id"].as_str().unwrap_or("");
            if id != "doc-1" {
                let (c, v) = api_error(400, "Bad Request: invalid file_id", None);
                return reply(c, v);
            }
            reply(
                200,
                json!({"ok": true, "result": {
                    "file_id": "doc-1", "file_unique_id": "u-doc-1", "file_size": 11,
                    "file_path": "documents/file_1.pdf"
                }}),
            )
        }
        _ => {
            let (c, v) = api_error(404, "Not Found: method not found", None);
            reply(c, v)
        }
    }
}

async fn file(Path((bot, path)): Path<(String, String)>) -> Response {
    if bot != format!("bot{TOKEN}") || path != "documents/file_1.pdf" {
        return StatusCode::NOT_FOUND.into_response();
    }
    (StatusCode::OK, "%PDF-1.4 hi").into_response()
}

fn open_store(dir: &std::path::Path) -> Store {
    Store::open_dir(dir).unwrap()
}

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(braid::store::DB_FILE)).unwrap()
}

fn count(dir: &std::path::Path, sql: &str) -> i64 {
    db(dir).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn dispatcher(dir: &std::path::Path, tg: &Arc<Telegram>) -> Dispatcher {
    let store = Arc::new(Mutex::new(open_store(dir)));
    let senders = Senders::new([Arc::clone(tg) as Arc<dyn Outbound>]);
    Dispatcher::new(store, senders, DispatchSettings::default())
}

/// Ann writes, the poller stores it: her conversation.
async fn ann_conversation(
    server: &Server,
    dir: &std::path::Path,
    tg: &Arc<Telegram>,
) -> braid::model::ConversationId {
    server.customer_writes(json!({"text": "Where is my order?"}));
    let poller = Poller::new(Arc::clone(tg), open_store(dir));
    assert_eq!(poller.poll_once(0).await.unwrap().stored, 1);
    let s = open_store(dir);
    let contact = s
        .contact_by_identity(IdentityKind::Telegram, &ANN.to_string())
        .unwrap()
        .unwrap();
    s.active_conversation(contact).unwrap().unwrap()
}

#[tokio::test]
async fn a_kill_between_fetch_and_commit_loses_and_duplicates_nothing() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        server.customer_writes(json!({"text": format!("message {i}")}));
    }

    // The first process fetches the batch and dies before committing it.
    let first = Poller::new(server.bot(), open_store(dir.path()));
    let batch = first.fetch(0).await.unwrap();
    assert_eq!(batch.updates.len(), 3);
    drop(first);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM messages"), 0);

    // A new process (new bot client, new connection) gets the same batch again.
    let second = Poller::new(server.bot(), open_store(dir.path()));
    let done = second.poll_once(0).await.unwrap();
    assert_eq!((done.stored, done.duplicates), (3, 0));
    let saved = second.offset().await.unwrap();
    assert_eq!(saved, Some(batch.next_offset().unwrap()));

    // A replay of the old batch (a crash after commit but before Telegram heard the offset)
    // stores nothing twice; the next round asks from the saved offset and gets nothing.
    let done = second.commit(batch).await.unwrap();
    assert_eq!((done.stored, done.duplicates), (0, 3));
    assert_eq!(second.poll_once(0).await.unwrap().stored, 0);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM messages"), 3);
    let bodies: Vec<String> = db(dir.path())
        .prepare("SELECT body FROM messages ORDER BY created_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bodies, vec!["message 0", "message 1", "message 2"]);

    // The offset is in the store, saved with the messages.
    let cursor: String = db(dir.path())
        .query_row(
            "SELECT value FROM cursors WHERE channel = 'telegram' AND key = 'offset'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cursor, "1003");
}

#[tokio::test]
async fn an_edit_keeps_both_versions() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id = server.customer_writes(json!({"text": "My order is 1243"}));
    server.customer_edits(id, "My order is 1234");
    let poller = Poller::new(server.bot(), open_store(dir.path()));
    assert_eq!(poller.poll_once(0).await.unwrap().stored, 2);
    let rows: Vec<(String, String, Option<String>)> = db(dir.path())
        .prepare("SELECT external_id, body, meta FROM messages ORDER BY created_at")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, format!("{ANN}:{id}"));
    assert_eq!(
        rows[0].1, "My order is 1243",
        "the original stays as written"
    );
    assert_eq!(rows[1].1, "[edited] My order is 1234");
    let meta: Value = serde_json::from_str(rows[1].2.as_deref().unwrap()).unwrap();
    assert_eq!(meta["edit_of"], format!("{ANN}:{id}"));
    // One conversation, one contact.
    assert_eq!(count(dir.path(), "SELECT count(*) FROM conversations"), 1);
}

#[tokio::test]
async fn a_shared_own_contact_card_links_the_phone_and_someone_elses_does_not() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.customer_writes(json!({"text": "hi"}));
    server.customer_writes(json!({"contact": {
        "phone_number": "+442079460959", "first_name": "Bob", "user_id": 777
    }}));
    server.customer_writes(json!({"contact": {
        "phone_number": "442079460958", "first_name": "Ann", "user_id": ANN
    }}));
    let poller = Poller::new(server.bot(), open_store(dir.path()));
    assert_eq!(poller.poll_once(0).await.unwrap().stored, 3);
    let s = open_store(dir.path());
    let ann = s
        .contact_by_identity(IdentityKind::Telegram, "555")
        .unwrap()
        .unwrap();
    assert_eq!(
        s.contact_by_identity(IdentityKind::Phone, "+442079460958")
            .unwrap(),
        Some(ann)
    );
    assert_eq!(
        s.contact_by_identity(IdentityKind::Phone, "+442079460959")
            .unwrap(),
        None,
        "someone else's card must not link"
    );
}

#[tokio::test]
async fn media_and_replies_are_kept_and_files_can_be_saved() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = server.customer_writes(json!({"text": "Is this the right form?"}));
    server.customer_writes(json!({
        "document": {"file_name": "form.pdf", "mime_type": "application/pdf",
                     "file_id": "doc-1", "file_unique_id": "u-doc-1", "file_size": 11},
        "caption": "signed",
        "reply_to_message": message(first, ANN, json!({"text": "Is this the right form?"}))
    }));
    let tg = server.bot();
    let poller = Poller::new(Arc::clone(&tg), open_store(dir.path()));
    assert_eq!(poller.poll_once(0).await.unwrap().stored, 2);
    let (body, meta): (String, String) = db(dir.path())
        .query_row(
            "SELECT body, meta FROM messages ORDER BY created_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(body, "[document form.pdf, 11 B]\nsigned");
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["reply_to"], format!("{ANN}:{first}"));
    assert_eq!(meta["attachment"]["file_id"], "doc-1");
    assert_eq!(meta["attachment"]["size"], 11);

    let dest = dir.path().join("form.pdf");
    let n = tg.save_file("doc-1", &dest).await.unwrap();
    assert_eq!(n, 11);
    assert_eq!(std::fs::read(&dest).unwrap(), b"%PDF-1.4 hi");
    assert!(tg.save_file("nope", &dir.path().join("x")).await.is_err());
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn a_reply_goes_out_and_is_marked_sent() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    let mut s = open_store(dir.path());
    let id = s
        .queue_reply(
            conv,
            Channel::Telegram,
            "bob",
            "It ships today.",
            now_millis(),
        )
        .unwrap();
    let mut d = dispatcher(dir.path(), &tg);
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    let m = s.message(id).unwrap();
    assert_eq!(m.delivery, Some(Delivery::Sent));
    let sent = server.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0, sent[0].1.as_str()), (ANN, "It ships today."));
    let ext: String = db(dir.path())
        .query_row(
            "SELECT external_id FROM messages WHERE id = ?1",
            [id.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ext, format!("{ANN}:2"));
}

#[tokio::test]
async fn long_replies_split_and_replies_to_one_chat_keep_their_order() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    let mut s = open_store(dir.path());
    let long = format!("{}\n\n{}", "a".repeat(3000), "b".repeat(3000));
    let now = now_millis();
    let ids: Vec<MessageId> = ["one", long.as_str(), "three"]
        .iter()
        .map(|b| {
            s.queue_reply(conv, Channel::Telegram, "bob", b, now)
                .unwrap()
        })
        .collect();
    let mut d = dispatcher(dir.path(), &tg);
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done.len(), 3);
    assert!(
        done.iter().all(|(_, o)| *o == Ok(Outcome::Sent)),
        "{done:?}"
    );
    let sent = server.sent();
    let texts: Vec<&str> = sent.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "one",
            "a".repeat(3000).as_str(),
            "b".repeat(3000).as_str(),
            "three"
        ]
    );
    // Throttle: at most one message per second to one chat.
    for w in sent.windows(2) {
        let gap = w[1].2.duration_since(w[0].2);
        assert!(gap >= Duration::from_millis(900), "{gap:?}");
    }
    for id in ids {
        assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));
    }
}

#[tokio::test]
async fn after_a_failure_newer_replies_to_the_chat_wait_for_it() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    // A temporary failure without a retry_after.
    server.api.lock().unwrap().send_script.push_back(api_error(
        429,
        "Too Many Requests: try later",
        None,
    ));
    let mut s = open_store(dir.path());
    let now = now_millis();
    let first = s
        .queue_reply(conv, Channel::Telegram, "bob", "first", now)
        .unwrap();
    let second = s
        .queue_reply(conv, Channel::Telegram, "bob", "second", now)
        .unwrap();
    let mut d = dispatcher(dir.path(), &tg);
    let outcome = |done: &[(MessageId, Result<Outcome, String>)], id: MessageId| {
        done.iter().find(|(m, _)| *m == id).unwrap().1.clone()
    };
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(
        outcome(&done, first),
        Ok(Outcome::Failed {
            reason: "Telegram: Too Many Requests: try later".into(),
            retry: true
        })
    );
    assert!(
        matches!(outcome(&done, second), Ok(Outcome::Failed { reason, retry: true }) if reason.starts_with("waiting for an earlier reply")),
        "{done:?}"
    );
    assert!(server.sent().is_empty());

    // The newer one alone still waits; both together go out in order.
    s.retry(second, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert!(matches!(outcome(&done, second), Ok(Outcome::Failed { .. })));
    assert!(server.sent().is_empty());
    s.retry(first, "bob", now_millis()).unwrap();
    s.retry(second, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done.len(), 2);
    assert!(
        done.iter().all(|(_, o)| *o == Ok(Outcome::Sent)),
        "{done:?}"
    );
    let texts: Vec<String> = server.sent().into_iter().map(|(_, t, _)| t).collect();
    assert_eq!(texts, vec!["first", "second"]);
}

#[tokio::test]
async fn a_429_is_honoured() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    server.api.lock().unwrap().send_script.push_back(api_error(
        429,
        "Too Many Requests: retry after 2",
        Some(2),
    ));
    let mut s = open_store(dir.path());
    let id = s
        .queue_reply(conv, Channel::Telegram, "bob", "hello", now_millis())
        .unwrap();
    let mut d = dispatcher(dir.path(), &tg);
    let done = d.run_until_idle().await.unwrap();
    let limited_at = Instant::now();
    assert_eq!(
        done,
        vec![(
            id,
            Ok(Outcome::Failed {
                reason: "rate limited by Telegram, retry in 2s".into(),
                retry: true
            })
        )]
    );
    let m = s.message(id).unwrap();
    assert_eq!(m.delivery, Some(Delivery::Failed));
    assert_eq!(
        m.delivery_error.as_deref(),
        Some("rate limited by Telegram, retry in 2s")
    );
    assert_eq!(
        s.outbox_counts().unwrap(),
        (1, 0),
        "still queued for a retry"
    );

    // Retried at once (`:retry`): Telegram is not asked again before retry_after.
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert!(
        matches!(&done[0].1, Ok(Outcome::Failed { reason, retry: true }) if reason.starts_with("rate limited by Telegram, retry in")),
        "{done:?}"
    );
    assert_eq!(server.calls("sendMessage"), 1);

    // After it: sent.
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(limited_at.elapsed())).await;
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    assert_eq!(server.calls("sendMessage"), 2);
    assert!(server.sent()[0].2.duration_since(limited_at) >= Duration::from_millis(1900));
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Sent));
}

#[tokio::test]
async fn a_blocked_bot_fails_for_good() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    server.api.lock().unwrap().send_script.push_back(api_error(
        403,
        "Forbidden: bot was blocked by the user",
        None,
    ));
    let mut s = open_store(dir.path());
    let id = s
        .queue_reply(conv, Channel::Telegram, "bob", "hello?", now_millis())
        .unwrap();
    let mut d = dispatcher(dir.path(), &tg);
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(
        done,
        vec![(
            id,
            Ok(Outcome::Failed {
                reason: "the customer blocked the bot".into(),
                retry: false
            })
        )]
    );
    assert_eq!(s.outbox_counts().unwrap(), (0, 1));
    // Her Telegram identity is marked unreachable, and with an email address known, replies
    // now default to email (the composer says why).
    let contact = s
        .contact_by_identity(IdentityKind::Telegram, &ANN.to_string())
        .unwrap()
        .unwrap();
    let ids = s.identities(contact).unwrap();
    assert_eq!(
        ids[0].unreachable.as_deref(),
        Some("the customer blocked the bot")
    );
    assert_eq!(s.reply_channel(conv).unwrap(), Channel::Telegram);
    s.add_identity(
        contact,
        IdentityKind::Email,
        "ann@example.com",
        "bob",
        now_millis(),
    )
    .unwrap();
    assert_eq!(s.reply_channel(conv).unwrap(), Channel::Email);
    let compose = braid::server::handler::handle(
        &mut s,
        &braid::server::Identity::local_admin("bob"),
        braid::api::Request::Compose {
            conversation: conv,
            contact,
            kind: "reply".into(),
            channel: None,
        },
    );
    match compose {
        braid::api::Response::Compose {
            channel, notice, ..
        } => {
            assert_eq!(channel, Some(Channel::Email));
            let n = notice.unwrap();
            assert!(
                n.contains("blocked the bot") && n.contains("via email"),
                "{n}"
            );
        }
        other => panic!("{other:?}"),
    }
    // `:retry` sends it again (they unblocked the bot).
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    // When she writes on Telegram again, it is reachable again.
    server.customer_writes(json!({"text": "unblocked you, sorry"}));
    let poller = Poller::new(Arc::clone(&tg), open_store(dir.path()));
    assert_eq!(poller.poll_once(0).await.unwrap().stored, 1);
    let ids = s.identities(contact).unwrap();
    let tg_id = ids
        .iter()
        .find(|i| i.kind == IdentityKind::Telegram)
        .unwrap();
    assert_eq!(tg_id.unreachable, None);
    assert_eq!(s.reply_channel(conv).unwrap(), Channel::Telegram);
}

#[tokio::test]
async fn a_409_is_shown_and_braid_backs_off() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conflict = api_error(
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        None,
    );
    server
        .api
        .lock()
        .unwrap()
        .updates_script
        .push_back(conflict.clone());
    let tg = server.bot();
    let poller = Poller::new(Arc::clone(&tg), open_store(dir.path()));
    assert!(matches!(
        poller.poll_once(0).await,
        Err(PollError::Conflict(_))
    ));

    // The loop: reports it, and does not fight (no second getUpdates for a while).
    server
        .api
        .lock()
        .unwrap()
        .updates_script
        .push_back(conflict);
    let before = server.calls("getUpdates");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(poll::run(
        Arc::clone(&tg),
        dir.path().join(braid::store::DB_FILE),
        stop_rx,
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tg.status().contains("409 conflict") {
        assert!(Instant::now() < deadline, "status: {}", tg.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tg.status().contains("another program is polling this bot"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.calls("getUpdates"), before + 1, "braid backs off");
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_worker_polls_and_sends_for_a_configured_bot() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_data_dir(dir.path());
    config.telegram = Some(server.config());
    let opts = WorkerOptions {
        lease_retry: Duration::from_millis(50),
        poll: Duration::from_millis(50),
        ..WorkerOptions::from_config(&config)
    };
    assert_eq!(opts.senders.len(), 1);
    let mut w = worker::spawn_with(opts).unwrap();
    server.customer_writes(json!({"text": "anyone there?"}));
    let deadline = Instant::now() + Duration::from_secs(10);
    let conv = loop {
        let s = open_store(dir.path());
        if let Some(c) = s
            .contact_by_identity(IdentityKind::Telegram, "555")
            .unwrap()
        {
            break s.active_conversation(c).unwrap().unwrap();
        }
        assert!(Instant::now() < deadline, "never received");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = tokio::time::timeout(
        Duration::from_secs(5),
        w.status
            .wait_for(|s| s.detail.contains("telegram: @braid_test_bot polling")),
    )
    .await
    .expect("status never showed the bot")
    .unwrap()
    .clone();
    assert_eq!(status.role, worker::Role::Leader);

    let mut s = open_store(dir.path());
    let id = s
        .queue_reply(conv, Channel::Telegram, "bob", "yes!", now_millis())
        .unwrap();
    while s.message(id).unwrap().delivery != Some(Delivery::Sent) {
        assert!(
            Instant::now() < deadline + Duration::from_secs(5),
            "never sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.sent()[0].1, "yes!");
    w.shutdown().await;
}

#[test]
fn the_config_section_is_read_and_checked() {
    use braid::config::Env;
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        xdg_data_dir: Some(dir.path().join("data")),
        ..Env::default()
    };
    let write = |text: &str, mode: u32| {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    };
    let p = write(
        "[telegram]\ntoken_command = \"pass show bot\"\naccount = \"shop\"\n",
        0o644,
    );
    let c = Config::load_with(Some(&p), None, &env).unwrap();
    let t = c.telegram.unwrap();
    assert_eq!(t.token, TokenSource::Command("pass show bot".into()));
    assert_eq!(t.api_url, "https://api.telegram.org");
    assert_eq!(t.account, "shop");

    // A plain token in a world-readable file is refused; in a private one it is still unknown.
    let p = write("[telegram]\ntoken = \"123:abc\"\n", 0o644);
    let e = Config::load_with(Some(&p), None, &env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("telegram.token") && e.contains("token_command"),
        "{e}"
    );
    let p = write("[telegram]\ntoken = \"123:abc\"\n", 0o600);
    assert!(Config::load_with(Some(&p), None, &env).is_err());

    let p = write(
        "agent = \"a\"\n\n[telegram]\napi_url = \"http://x\"\n",
        0o600,
    );
    let e = Config::load_with(Some(&p), None, &env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("telegram.token_command") && e.contains("line 3"),
        "{e}"
    );

    for key in [
        "[telegram]",
        "token_command",
        "api_url",
        "account",
        "poll_timeout",
    ] {
        assert!(
            braid::config::EXAMPLE.contains(&format!("# {key}")),
            "{key} is not documented"
        );
    }
}

/// The whole promise, through the real channel code: Ann emailed before; she opens the web
/// widget and gives the same email (linked); an agent adds her phone number with
/// `:identity add phone ...` in the TUI; then she writes to the Telegram bot and shares her own
/// contact card with that number (linked). The queue shows ONE conversation whose timeline
/// interleaves all three channels in time order, and a reply can go out on any of them.
#[tokio::test]
async fn one_customer_on_email_web_chat_and_telegram_is_one_conversation() {
    use braid::channels::email::{EmailParser, Options as MailOptions, ingest_email};
    use braid::channels::webchat::protocol::ServerFrame;
    use braid::channels::webchat::{Options as WebOptions, WebChatConfig, WebChatServer};
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());

    // Monday: an email.
    let raw = "From: Ann Lee <ann@example.com>\r\nTo: support@shop.example\r\nSubject: Order 1234\r\n\
               Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nMessage-ID: <monday@example.com>\r\n\r\n\
               Where is order 1234?\r\n";
    let mut parser = EmailParser::new(&MailOptions::new("support", &["support@shop.example"]));
    let email = parser.parse(raw.as_bytes(), now_millis());
    {
        let tx = s.write().unwrap();
        ingest_email(&tx, &email, &Settings::default(), now_millis()).unwrap();
        tx.commit().unwrap();
    }

    // The web widget, over a real WebSocket, on the shop's page where she is logged in.
    let site = "https://shop.example.com";
    let web_cfg = WebChatConfig {
        enabled: true,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        allowed_origins: vec![site.to_string()],
        ..WebChatConfig::default()
    };
    let web = WebChatServer::start(&WebOptions::new(web_cfg, Settings::default()), dir.path())
        .await
        .unwrap();
    let mut req = format!("ws://{}/ws", web.addr())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("Origin", site.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let recv = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(WsMessage::Text(t))) => {
                return serde_json::from_str::<ServerFrame>(t.as_str()).unwrap();
            }
            Some(Ok(_)) => continue,
            other => panic!("socket closed: {other:?}"),
        }
    };
    // She is logged in on the shop: the page vouches for her email (a typed one is only a claim).
    let hash = braid::channels::webchat::secret::IdentityKey::load_or_create(dir.path())
        .unwrap()
        .sign("ANN@example.com");
    ws.send(WsMessage::Text(
        json!({"type": "hello", "visitor": null, "user_email": "ANN@example.com", "user_hash": hash})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert!(matches!(recv(&mut ws).await, ServerFrame::Welcome { .. }));
    ws.send(WsMessage::Text(
        json!({"type": "msg", "id": "w1", "text": "I emailed about 1234, any news?", "email": "ANN@example.com"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert!(matches!(recv(&mut ws).await, ServerFrame::Ack { .. }));
    let ann = s
        .contact_by_identity(IdentityKind::Email, "ann@example.com")
        .unwrap()
        .unwrap();
    let conv = s.active_conversation(ann).unwrap().unwrap();

    // The agent adds her phone number in the TUI.
    let mut h =
        braid::harness::Harness::new(open_store(dir.path()), "bob", 160, 45, now_millis()).unwrap();
    assert_eq!(h.app.queue.current().map(|r| r.id), Some(conv));
    h.keys(":identity add phone +44 20 7946 0958<CR>").unwrap();
    assert!(
        h.app.status.as_ref().unwrap().0.contains("+442079460958"),
        "{:?}",
        h.app.status
    );

    // Wednesday: Telegram, first a hello, then her own contact card with that number.
    let server = Server::start().await;
    let tg = server.bot();
    let now_s = now_millis() / 1000;
    server.customer_writes(json!({"text": "hi, it's Ann from the web chat", "date": now_s + 1}));
    server.customer_writes(json!({"date": now_s + 2, "contact": {
        "phone_number": "+44 20 7946 0958", "first_name": "Ann", "user_id": ANN
    }}));
    let poller = Poller::new(Arc::clone(&tg), open_store(dir.path()));
    assert_eq!(poller.poll_once(0).await.unwrap().stored, 2);

    // One contact, one conversation, three channels in time order.
    let ann_now = s
        .contact_by_identity(IdentityKind::Telegram, &ANN.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(
        s.contact_by_identity(IdentityKind::Email, "ann@example.com")
            .unwrap(),
        Some(ann_now)
    );
    let conv = s.active_conversation(ann_now).unwrap().unwrap();
    let timeline = s.timeline(ann_now, None, 100).unwrap();
    let channels: Vec<Channel> = timeline.iter().map(|m| m.channel).collect();
    assert_eq!(
        channels,
        vec![
            Channel::Email,
            Channel::WebChat,
            Channel::Telegram,
            Channel::Telegram
        ],
        "{timeline:#?}"
    );
    assert!(
        timeline
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    assert!(timeline.iter().all(|m| m.conversation_id == conv));
    h.keys("<C-l>").unwrap();
    let open: Vec<_> = h
        .app
        .queue
        .rows
        .iter()
        .filter(|r| r.contact_id == ann_now)
        .collect();
    assert_eq!(open.len(), 1, "one conversation in the queue");

    // A reply can go out on each of the three.
    let tg_reply = s
        .queue_reply(
            conv,
            Channel::Telegram,
            "bob",
            "It ships today.",
            now_millis(),
        )
        .unwrap();
    let web_reply = s
        .queue_reply(conv, Channel::WebChat, "bob", "See above!", now_millis())
        .unwrap();
    let mail_reply = s
        .queue_reply(
            conv,
            Channel::Email,
            "bob",
            "Details by mail.",
            now_millis(),
        )
        .unwrap();
    let store = Arc::new(Mutex::new(open_store(dir.path())));
    let senders = Senders::new([
        Arc::clone(&tg) as Arc<dyn Outbound>,
        web.outbound(None, None),
    ]);
    let mut d = Dispatcher::new(store, senders, DispatchSettings::default());
    d.run_until_idle().await.unwrap();
    assert_eq!(s.message(tg_reply).unwrap().delivery, Some(Delivery::Sent));
    assert_eq!(s.message(web_reply).unwrap().delivery, Some(Delivery::Sent));
    match recv(&mut ws).await {
        ServerFrame::Msg { text, .. } => assert_eq!(text, "See above!"),
        other => panic!("{other:?}"),
    }
    // No email account in this test: queued to her address, failed with a clear reason.
    let m = s.message(mail_reply).unwrap();
    assert_eq!(m.delivery, Some(Delivery::Failed));
    assert_eq!(
        s.recipient(ann_now, Channel::Email).unwrap().as_deref(),
        Some("ann@example.com")
    );
    web.shutdown().await;
}

/// A reply claimed by a process that died before it heard back: Telegram cannot be asked
/// whether it went out, so it is not sent again by itself. It is left "unclear" for an agent,
/// and `:retry` sends it.
#[tokio::test]
async fn a_reply_in_flight_when_braid_died_is_left_unclear_not_sent_twice() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    let mut s = open_store(dir.path());
    let id = s
        .queue_reply(
            conv,
            Channel::Telegram,
            "bob",
            "It ships today.",
            now_millis(),
        )
        .unwrap();
    // The process that claimed it dies mid-send (it may or may not have reached Telegram).
    let claimed = s.claim_outbox(now_millis(), 0, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(!claimed[0].resumed);

    // The next lease holder takes the stale claim at once.
    let mut d = dispatcher(dir.path(), &tg);
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done.len(), 1);
    assert!(
        matches!(&done[0].1, Ok(Outcome::Unclear { reason }) if reason.contains("may have")),
        "{done:?}"
    );
    assert_eq!(server.calls("sendmessage"), 0);
    let m = s.message(id).unwrap();
    assert_eq!(m.delivery, Some(Delivery::Unclear));
    assert!(m.delivery_error.unwrap().contains(":retry"));
    // Nothing retries it by itself, however long we wait.
    assert!(d.run_until_idle().await.unwrap().is_empty());
    assert_eq!(s.outbox_counts().unwrap(), (0, 1));
    assert_eq!(s.last_failed(conv).unwrap(), Some(id));

    // The agent checked with the customer: `:retry` sends it, once.
    s.retry(id, "bob", now_millis()).unwrap();
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done, vec![(id, Ok(Outcome::Sent))]);
    assert_eq!(server.sent().len(), 1);
}

/// Telegram accepted the message but the answer never came back within the send timeout: the
/// customer has it, so retrying would send it twice. It is left unclear after one call.
#[tokio::test]
async fn a_send_that_times_out_after_leaving_is_unclear_and_not_retried() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    server.api.lock().unwrap().send_delay = Duration::from_secs(3);
    let mut s = open_store(dir.path());
    let id = s
        .queue_reply(
            conv,
            Channel::Telegram,
            "bob",
            "It ships today.",
            now_millis(),
        )
        .unwrap();
    let store = Arc::new(Mutex::new(open_store(dir.path())));
    let senders = Senders::new([Arc::clone(&tg) as Arc<dyn Outbound>]);
    let mut d = Dispatcher::new(
        store,
        senders,
        DispatchSettings {
            send_timeout: Duration::from_millis(600),
            ..DispatchSettings::default()
        },
    );
    let done = d.run_until_idle().await.unwrap();
    assert!(
        matches!(&done[..], [(i, Ok(Outcome::Unclear { .. }))] if *i == id),
        "{done:?}"
    );
    assert_eq!(s.message(id).unwrap().delivery, Some(Delivery::Unclear));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(d.run_until_idle().await.unwrap().is_empty());
    assert_eq!(server.calls("sendmessage"), 1);
    assert_eq!(server.sent().len(), 1);
}

/// What a hostile or compromised Bot API server might answer: retitle the terminal, write the
/// clipboard, clear the screen, reverse the text.
const HOSTILE: &str = "\x1b]0;PWNED\x07\x1b]52;c;aGkK\x07\x1b[2J\u{202e}gnp.exe";

fn no_raw_controls(what: &str, text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}'),
        "{what} holds a raw control character: {text:?}"
    );
}

fn run_braid(args: Vec<String>, token: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.args(&args)
        .env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_LOG")
        .env("TZ", "UTC");
    if token {
        cmd.env("BRAID_TEST_TG_TOKEN", TOKEN);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_text_reaches_no_terminal_and_no_log_raw() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tg = server.bot();
    let conv = ann_conversation(&server, &data, &tg).await;
    {
        let mut a = server.api.lock().unwrap();
        a.me_username = Some(format!("evil{HOSTILE}bot"));
        a.send_script
            .push_back(api_error(400, &format!("Bad Request: {HOSTILE}"), None));
    }
    open_store(&data)
        .queue_reply(conv, Channel::Telegram, "bob", "hello?", now_millis())
        .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[telegram]\ntoken_env = \"BRAID_TEST_TG_TOKEN\"\napi_url = \"{}\"\npoll_timeout = 1\n",
            server.url
        ),
    )
    .unwrap();
    let globals = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--config".into(),
            config.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ]);
        v
    };

    // The failed reply: its reason is Telegram's description.
    let args = globals(&["sync", "--once"]);
    let out = tokio::task::spawn_blocking(move || run_braid(args, true))
        .await
        .unwrap();
    no_raw_controls("sync stdout", &String::from_utf8_lossy(&out.stdout));
    no_raw_controls("sync stderr", &String::from_utf8_lossy(&out.stderr));
    let s = open_store(&data);
    assert_eq!(s.outbox_counts().unwrap(), (0, 1));

    let args = globals(&["show", &conv.0.to_string()]);
    let out = tokio::task::spawn_blocking(move || run_braid(args, false))
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(!shown.contains('\x1b'), "{shown}");
    no_raw_controls("braid show", &shown);
    // Nothing is hidden: the attempt is visible, escaped.
    assert!(
        shown.contains("failed: Telegram: Bad Request: \\u{1b}]0;PWNED\\u{7}"),
        "{shown}"
    );
    let args = globals(&["show", &conv.0.to_string(), "--json"]);
    let out = tokio::task::spawn_blocking(move || run_braid(args, false))
        .await
        .unwrap();
    assert!(!out.stdout.contains(&0x1b), "JSON escapes controls itself");

    // `braid serve`: getMe's username goes into the worker status (stderr) and the log.
    let args = globals(&["serve"]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(&args)
        .env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env("BRAID_LOG", "debug")
        .env("BRAID_TEST_TG_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log_file = data.join("braid.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log_file)
        .unwrap_or_default()
        .contains("polling")
    {
        assert!(Instant::now() < deadline, "serve never polled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    no_raw_controls("serve stderr", &err);
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.contains("evil\\u{1b}]0;PWNED"), "{log}");
    no_raw_controls("the log", &log);
}

#[tokio::test]
async fn a_message_of_only_escape_sequences_is_skipped_not_stored_blank() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    server.customer_writes(json!({"text": "\u{1b}]0;PWNED\u{7}\u{1b}[2J"}));
    server.customer_writes(json!({"text": "real words"}));
    let poller = Poller::new(Arc::clone(&tg), open_store(dir.path()));
    let done = poller.poll_once(0).await.unwrap();
    assert_eq!((done.stored, done.skipped), (1, 1));
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM messages WHERE trim(body) = ''"
        ),
        0
    );
}

/// A resolved conversation's survey goes out with an inline keyboard 1-5; the customer's tap
/// comes back as a callback query, is recorded once (a stranger's forged tap is not), and
/// every query is answered so Telegram stops the button's spinner.
#[tokio::test]
async fn a_survey_goes_with_a_keyboard_and_a_tap_answers_it() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tg = server.bot();
    let conv = ann_conversation(&server, dir.path(), &tg).await;
    let cfg = braid::csat::CsatConfig {
        enabled: true,
        ..Default::default()
    };
    let mut s = open_store(dir.path());
    s.derive_csat(&cfg, now_millis()).unwrap(); // the cursor starts here
    s.set_status(
        conv,
        braid::model::Status::Resolved,
        None,
        "bob",
        now_millis(),
    )
    .unwrap();
    assert_eq!(s.derive_csat(&cfg, now_millis()).unwrap().sent, 1);
    let mut d = dispatcher(dir.path(), &tg);
    let done = d.run_until_idle().await.unwrap();
    assert_eq!(done.len(), 1);
    assert!(matches!(done[0].1, Ok(Outcome::Sent)), "{done:?}");
    let sent = server.sent();
    assert_eq!(sent.last().unwrap().1, braid::csat::DEFAULT_QUESTION);
    let markup = server.api.lock().unwrap().markups.last().unwrap().clone();
    let row = &markup["inline_keyboard"][0];
    let labels: Vec<&str> = row
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["1", "2", "3", "4", "5"]);
    let data = row[3]["callback_data"].as_str().unwrap().to_string();
    assert_eq!(data, format!("csat:{}:4", conv.0));

    // Someone else forges Ann's button: answered, not counted.
    let forged = server.user_taps(999, 7, &data);
    // Ann taps 4, then 1 (the first answer is final).
    let first = server.user_taps(ANN, 7, &data);
    let again = server.user_taps(ANN, 7, &format!("csat:{}:1", conv.0));
    let poller = Poller::new(Arc::clone(&tg), open_store(dir.path()));
    let got = poller.poll_once(0).await.unwrap();
    assert_eq!(got.answers, 1, "{got:?}");
    let answers = server.api.lock().unwrap().callback_answers.clone();
    assert_eq!(
        answers,
        vec![
            (forged, "This survey is closed.".to_string()),
            (first, "Thank you for your feedback!".to_string()),
            (again, "Thanks, we already have your answer.".to_string()),
        ]
    );
    let (score, data): (i64, String) = db(dir.path())
        .query_row(
            "SELECT (SELECT score FROM csat WHERE conversation_id = ?1),
                    (SELECT data FROM events WHERE kind = 'csat_answered')",
            [conv.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(score, 4);
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        json!({"score": 4, "comment": "", "channel": "telegram"})
    );
    // Asked for by allowed_updates (without it Telegram would not deliver the taps).
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM events WHERE kind = 'csat_answered'"
        ),
        1
    );
    // The conversation stays resolved.
    assert_eq!(
        open_store(dir.path()).conversation(conv).unwrap().status,
        braid::model::Status::Resolved
    );
}

/// A campaign against the Bot API test server: 45 chats, two steps on day 0, paced at 30
/// messages a second overall and one a second per chat. The rates are measured at the
/// server (when it accepted each sendMessage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_honours_telegrams_rate_limits_measured_at_the_server() {
    use braid::identity::Claim;
    use braid::ingest::{Inbound, Ingested};
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_data_dir(dir.path());
    config.telegram = Some(server.config());
    config.workspace.campaigns = braid::campaign::CampaignConfig::from_toml(
        r#"
[campaign_pacing]
telegram_per_second = 30
per_chat_every = "1s"

[[campaigns]]
name = "launch"
segment = "tag:beta channel:telegram"
[[campaigns.steps]]
after = "0d"
text = "We launched!"
[[campaigns.steps]]
after = "0d"
text = "Here is how to start."
"#,
    )
    .unwrap();
    const CHATS: i64 = 45;
    {
        let mut s = open_store(dir.path());
        let t = now_millis() - 60_000;
        for i in 0..CHATS {
            let chat = 9000 + i;
            let inbound = Inbound {
                channel: Channel::Telegram,
                account: String::new(),
                external_id: format!("{chat}:1"),
                direction: braid::model::Direction::In,
                customer: Claim::new(IdentityKind::Telegram, chat.to_string()),
                linked: vec![],
                customer_name: Some(format!("Beta {i}")),
                author: None,
                subject: None,
                body: "hi".into(),
                sent_at: t,
                meta: None,
                cursor: None,
            };
            let Ingested::Stored { conversation, .. } =
                braid::ingest::ingest(&mut s, &inbound, &Settings::default()).unwrap()
            else {
                panic!("not stored");
            };
            s.tag(conversation, "beta", false, "bob", t).unwrap();
        }
        let c = config.workspace.campaigns.get("launch").unwrap();
        let d = s.campaign_dry_run(c, now_millis()).unwrap();
        assert_eq!(d.enrolled(), CHATS as usize);
        s.campaign_start(c, "admin", now_millis()).unwrap();
    }
    let opts = WorkerOptions {
        lease_retry: Duration::from_millis(50),
        poll: Duration::from_millis(10),
        ..WorkerOptions::from_config(&config)
    };
    let w = worker::spawn_with(opts).unwrap();
    // The server's campaign task, every 200 ms here.
    let library = braid::canned::Library::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut s = open_store(dir.path());
    while server.sent().len() < 2 * CHATS as usize {
        braid::server::campaign::tick(&mut s, &config, &library, now_millis()).unwrap();
        assert!(
            Instant::now() < deadline,
            "sent only {}",
            server.sent().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.shutdown().await;
    let sent = server.sent();
    assert_eq!(sent.len(), 2 * CHATS as usize);
    let span = sent.last().unwrap().2 - sent[0].2;
    let rate = (sent.len() - 1) as f64 / span.as_secs_f64();
    let mut max_in_a_second = 0;
    for (i, (_, _, a)) in sent.iter().enumerate() {
        let n = sent[i..]
            .iter()
            .take_while(|(_, _, b)| *b < *a + Duration::from_secs(1))
            .count();
        max_in_a_second = max_in_a_second.max(n);
    }
    let mut gaps: std::collections::BTreeMap<i64, Vec<Instant>> = Default::default();
    for (chat, _, at) in &sent {
        gaps.entry(*chat).or_default().push(*at);
    }
    let min_chat_gap = gaps.values().map(|v| v[1] - v[0]).min().unwrap();
    eprintln!(
        "campaign on Telegram: {} messages in {span:?}: {rate:.1}/s overall (limit 30), at most \
         {max_in_a_second} in any second, the shortest gap within one chat {min_chat_gap:?} \
         (limit 1/s)",
        sent.len()
    );
    assert!(rate <= 30.0, "{rate}/s");
    // Slots are 34 ms apart; the worker's 10 ms poll may bunch two.
    assert!(max_in_a_second <= 31, "{max_in_a_second} in one second");
    assert!(
        min_chat_gap >= Duration::from_millis(950),
        "{min_chat_gap:?}"
    );
    // Every chat got both steps in order.
    for chat in gaps.keys() {
        let texts: Vec<&str> = sent
            .iter()
            .filter(|(c, _, _)| c == chat)
            .map(|(_, t, _)| t.as_str())
            .collect();
        assert_eq!(texts, vec!["We launched!", "Here is how to start."]);
    }
}
