//! The signed events webhook (`POST /hooks/events/NAME`) end to end: braid's real web chat
//! listener with an `[[events]]` source, real signed POSTs over HTTP from reqwest, and the
//! store file they land in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::hooks::events::RawEventsConfig;
use braid::channels::hooks::verify::event_sign;
use braid::channels::webchat::{Options, WebChatConfig, WebChatServer};
use braid::identity::Claim;
use braid::ingest::{self, Inbound};
use braid::model::{Channel, ContactId, Direction, IdentityKind, now_millis};
use braid::store::{MessageRow, SearchQuery, Store};
use futures::StreamExt;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-4f1c9a";

struct Hooked {
    _dir: tempfile::TempDir,
    server: WebChatServer,
    store: Store,
    client: reqwest::Client,
}

/// The listener as a config file sets it up: `[webchat]` enabled and one `[[events]]` source
/// named pbx, its secret from a command.
async fn start() -> Hooked {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let events = RawEventsConfig {
        name: Some("pbx".into()),
        secret_command: Some(format!("printf %s {SECRET}")),
        ..RawEventsConfig::default()
    }
    .resolve()
    .unwrap();
    let config = WebChatConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        allowed_origins: vec!["https://shop.example.com".into()],
        ..WebChatConfig::default()
    };
    let mut opts = Options::new(config, ingest::Settings::default());
    opts.hooks = vec![events.spec()];
    let server = WebChatServer::start(&opts, dir.path()).await.unwrap();
    Hooked {
        _dir: dir,
        server,
        store,
        client: reqwest::Client::new(),
    }
}

fn now_secs() -> i64 {
    now_millis() / 1000
}

impl Hooked {
    fn url(&self) -> String {
        format!("http://{}/hooks/events/pbx", self.server.addr())
    }

    /// POST a body with these headers; the status and the answer's text.
    async fn post_with(&self, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, String) {
        let mut req = self
            .client
            .post(self.url())
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    /// POST a body signed now with the source's secret.
    async fn post(&self, body: &[u8]) -> (u16, String) {
        self.post_at(body, now_secs()).await
    }

    async fn post_at(&self, body: &[u8], ts: i64) -> (u16, String) {
        let sig = event_sign(SECRET.as_bytes(), ts, body);
        self.post_with(
            body.to_vec(),
            &[
                ("x-braid-timestamp", ts.to_string()),
                ("x-braid-signature", sig),
            ],
        )
        .await
    }

    fn found(&mut self, channel: Channel, account: &str, id: &str) -> bool {
        let tx = self.store.write().unwrap();
        tx.find_external(channel, account, id).unwrap().is_some()
    }

    /// Wait until the webhook's ingester has stored this event.
    async fn wait_stored(&mut self, channel: Channel, id: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while !self.found(channel, "pbx", id) {
            assert!(Instant::now() < end, "event {id} was never stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the inbox is empty (everything acknowledged was ingested or given up).
    async fn wait_drained(&self) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.store.inbox_len().unwrap() > 0 {
            assert!(Instant::now() < end, "the inbox never emptied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn timeline(&self, contact: ContactId) -> Vec<MessageRow> {
        self.store.timeline(contact, None, 1000).unwrap()
    }

    fn nothing_stored(&self) {
        assert_eq!(self.store.inbox_len().unwrap(), 0, "kept in the inbox");
        assert!(
            self.store.contacts_page(None, 10).unwrap().is_empty(),
            "a contact was made"
        );
    }
}

fn call(id: &str, phone: &str) -> Vec<u8> {
    json!({
        "id": id,
        "type": "call",
        "contact": { "phone": phone },
        "text": "Wants a replacement for the damaged tent.",
        "call": {
            "direction": "in", "from": phone, "to": "+442071838750",
            "duration_s": 242, "outcome": "answered",
            "recording_url": "https://pbx.example.com/rec/8812.mp3", "agent": "alice"
        }
    })
    .to_string()
    .into_bytes()
}

fn inbound(channel: Channel, customer: Claim, linked: Vec<Claim>, id: &str, at: i64) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer,
        linked,
        customer_name: Some("Ana Souza".into()),
        author: None,
        subject: (channel == Channel::Email).then(|| "My tent".to_string()),
        body: format!("a message on {channel}"),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

#[tokio::test]
async fn a_signed_call_log_joins_the_contact_that_has_the_phone_and_is_searchable() {
    let mut h = start().await;
    // A Telegram customer shared their contact card: their phone is on the contact.
    let tg = inbound(
        Channel::Telegram,
        Claim::new(IdentityKind::Telegram, "55501234"),
        vec![Claim::new(IdentityKind::Phone, "+44 7400 123456")],
        "tg-1",
        now_millis() - 60_000,
    );
    let stored = ingest::ingest(&mut h.store, &tg, &ingest::Settings::default()).unwrap();
    let ingest::Ingested::Stored { contact, .. } = stored else {
        panic!("duplicate")
    };
    // The phone system writes the number its own way.
    let (status, text) = h.post(&call("call-8812", "+447400123456")).await;
    assert_eq!((status, text.as_str()), (200, "{}"));
    h.wait_stored(Channel::Phone, "call-8812").await;
    assert_eq!(h.store.contacts_page(None, 10).unwrap().len(), 1);
    let t = h.timeline(contact);
    assert_eq!(t.len(), 2, "{t:?}");
    let call = &t[1];
    assert_eq!(call.channel, Channel::Phone);
    assert_eq!(call.account, "pbx");
    assert_eq!(call.direction, Direction::In);
    assert_eq!(
        call.body,
        "Inbound call from +447400123456 to +442071838750 · 4 min 02 s · answered · agent alice\n\
         Recording: https://pbx.example.com/rec/8812.mp3\n\n\
         Wants a replacement for the damaged tent."
    );
    // Found by search, by its channel.
    let hits = h
        .store
        .search(
            &SearchQuery::parse("channel:phone replacement").unwrap(),
            10,
        )
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].contact_id, contact);
    assert_eq!(hits[0].channel, Channel::Phone);
    let hits = h
        .store
        .search(
            &SearchQuery::parse("channel:telegram replacement").unwrap(),
            10,
        )
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
}

#[tokio::test]
async fn forged_or_unsigned_events_are_refused_and_nothing_is_kept() {
    let h = start().await;
    let body = call("call-1", "+447400123456");
    let ts = now_secs();
    let good = event_sign(SECRET.as_bytes(), ts, &body);
    let forged = event_sign(b"not-the-secret", ts, &body);
    let other_body = event_sign(SECRET.as_bytes(), ts, b"{}");
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no headers", vec![]),
        ("no signature", vec![("x-braid-timestamp", ts.to_string())]),
        ("no timestamp", vec![("x-braid-signature", good.clone())]),
        (
            "another secret",
            vec![
                ("x-braid-timestamp", ts.to_string()),
                ("x-braid-signature", forged),
            ],
        ),
        (
            "signed for another body",
            vec![
                ("x-braid-timestamp", ts.to_string()),
                ("x-braid-signature", other_body),
            ],
        ),
        (
            "signed at another time",
            vec![
                ("x-braid-timestamp", (ts - 1).to_string()),
                ("x-braid-signature", good.clone()),
            ],
        ),
        (
            "without sha256=",
            vec![
                ("x-braid-timestamp", ts.to_string()),
                (
                    "x-braid-signature",
                    good.trim_start_matches("sha256=").into(),
                ),
            ],
        ),
    ];
    for (what, headers) in cases {
        let (status, text) = h.post_with(body.clone(), &headers).await;
        assert_eq!((status, text.as_str()), (403, "forbidden\n"), "{what}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.nothing_stored();
    // The same request, signed, goes through (the cases above were refused for their
    // signature alone).
    let (status, _) = h
        .post_with(
            body.clone(),
            &[
                ("x-braid-timestamp", ts.to_string()),
                ("x-braid-signature", good),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let mut h = h;
    h.wait_stored(Channel::Phone, "call-1").await;
}

#[tokio::test]
async fn a_replayed_old_event_is_refused() {
    let h = start().await;
    let body = call("call-2", "+447400123456");
    let (status, _) = h.post_at(&body, now_secs() - 600).await;
    assert_eq!(status, 403, "ten minutes old");
    let (status, _) = h.post_at(&body, now_secs() + 600).await;
    assert_eq!(status, 403, "ten minutes ahead");
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.nothing_stored();
    // Within the five minutes' tolerance of clocks.
    let (status, _) = h.post_at(&body, now_secs() - 120).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_same_event_sent_twice_is_stored_once() {
    let mut h = start().await;
    let body = call("call-3", "+447400123456");
    assert_eq!(h.post(&body).await.0, 200);
    // A retry, signed again a moment later (after the first was ingested, and once more
    // racing nothing).
    h.wait_stored(Channel::Phone, "call-3").await;
    assert_eq!(h.post_at(&body, now_secs() - 1).await.0, 200);
    assert_eq!(h.post(&body).await.0, 200);
    h.wait_drained().await;
    let contacts = h.store.contacts_page(None, 10).unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(h.timeline(contacts[0].id).len(), 1);
}

#[tokio::test]
async fn hostile_bodies_are_refused() {
    let h = start().await;
    // 2 MiB, validly signed: refused before it is read whole.
    let mut huge = br#"{"id":"big","contact":{"phone":"+447400123456"},"text":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 << 20));
    huge.extend(br#""}"#);
    let (status, _) = h.post(&huge).await;
    assert_eq!(status, 413);
    // JSON nested far deeper than any event: a 400, no stack overflow.
    let depth = 100_000;
    let deep = format!(
        r#"{{"id":"deep","contact":{{"phone":"+447400123456"}},"fields":{{"x":{}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (status, text) = h.post(deep.as_bytes()).await;
    assert_eq!((status, text.as_str()), (400, "malformed body\n"));
    // Not an event at all.
    let (status, _) = h.post(br#"{"id":"x","contact":{}}"#).await;
    assert_eq!(status, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.nothing_stored();
    // The server still answers.
    let (status, _) = h.post(&call("call-after", "+447400123456")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn escape_sequences_in_names_and_texts_are_sanitized() {
    let mut h = start().await;
    let body = json!({
        "id": "form-1",
        "type": "form\u{1b}[2J",
        "contact": { "email": "ana@example.com", "name": "Ana\u{1b}]0;pwned\u{7} \u{1b}[31mSouza" },
        "title": "Contact\u{1b}[1m form",
        "text": "Please call me\u{1b}[2J\u{1b}[H back \u{9b}31m today",
        "fields": { "wish\u{1b}[5m": "tent\u{7}" }
    })
    .to_string();
    assert_eq!(h.post(body.as_bytes()).await.0, 200);
    h.wait_stored(Channel::Event, "form-1").await;
    let contacts = h.store.contacts_page(None, 10).unwrap();
    assert_eq!(contacts.len(), 1);
    let name = &contacts[0].name;
    let t = h.timeline(contacts[0].id);
    let m = &t[0];
    assert_eq!(m.channel, Channel::Event);
    assert_eq!(m.direction, Direction::Note);
    for text in [
        name.as_str(),
        m.body.as_str(),
        m.subject.as_deref().unwrap_or(""),
    ] {
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{text:?}"
        );
        assert!(!text.contains('\u{9b}'), "{text:?}");
    }
    assert!(name.contains("Ana") && name.contains("Souza"), "{name:?}");
    assert!(m.body.contains("Please call me"), "{:?}", m.body);
    assert!(m.body.contains("tent"), "{:?}", m.body);
}

#[tokio::test]
async fn one_person_on_whatsapp_sms_email_and_the_phone_has_one_timeline() {
    let mut h = start().await;
    let phone = "+1 415 555 0134";
    let t0 = now_millis() - 3 * 3_600_000;
    let settings = ingest::Settings::default();
    let mut ingest = |m: Inbound| {
        let r = ingest::ingest(&mut h.store, &m, &settings).unwrap();
        match r {
            ingest::Ingested::Stored { contact, .. } => contact,
            _ => panic!("duplicate"),
        }
    };
    // Monday on WhatsApp (asked for the email of the order), Tuesday by email, then an SMS.
    let a = ingest(inbound(
        Channel::WhatsApp,
        Claim::new(IdentityKind::Phone, phone),
        vec![Claim::new(IdentityKind::Email, "ana@example.com")],
        "wamid.1",
        t0,
    ));
    let b = ingest(inbound(
        Channel::Email,
        Claim::new(IdentityKind::Email, "ana@example.com"),
        vec![],
        "<1@example.com>",
        t0 + 3_600_000,
    ));
    let c = ingest(inbound(
        Channel::Sms,
        Claim::new(IdentityKind::Phone, "+14155550134"),
        vec![],
        "SM1",
        t0 + 2 * 3_600_000,
    ));
    assert_eq!((a, a), (b, c));
    // Then they call; the phone system reports it.
    let body = json!({
        "id": "call-9", "type": "call",
        "contact": { "phone": "(415) 555-0134".replace("(", "+1 (") },
        "call": { "direction": "in", "from": "+14155550134", "duration_s": 95, "outcome": "answered",
                  "agent": "bob" },
        "text": "Asked about the refund."
    })
    .to_string();
    assert_eq!(h.post(body.as_bytes()).await.0, 200);
    h.wait_stored(Channel::Phone, "call-9").await;
    assert_eq!(h.store.contacts_page(None, 10).unwrap().len(), 1);
    let t = h.timeline(a);
    let channels: Vec<Channel> = t.iter().map(|m| m.channel).collect();
    assert_eq!(
        channels,
        [
            Channel::WhatsApp,
            Channel::Email,
            Channel::Sms,
            Channel::Phone
        ]
    );
    let convs: BTreeSet<_> = t.iter().map(|m| m.conversation_id).collect();
    assert_eq!(convs.len(), 1, "one conversation: {t:?}");
    assert!(
        t[3].body
            .starts_with("Inbound call from +14155550134 · 1 min 35 s")
    );
}

#[tokio::test]
async fn a_burst_of_concurrent_events_is_stored_whole() {
    let mut h = start().await;
    let n = 60;
    let bodies: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let id = format!("call-burst-{i}");
            let b = call(&id, &format!("+4474001234{:02}", i % 100));
            (id, b)
        })
        .collect();
    // All at once: the ingester takes them in batches, behind the acknowledgements. Each
    // answer is checked the moment it arrives, on a connection of its own.
    let mut checker = Store::open_dir(h._dir.path()).unwrap();
    let found = |store: &mut Store, id: &str| {
        let tx = store.write().unwrap();
        tx.find_external(Channel::Phone, "pbx", id)
            .unwrap()
            .is_some()
    };
    let hr = &h;
    let mut answers: futures::stream::FuturesUnordered<_> = bodies
        .iter()
        .map(|(id, b)| async move { (id, b, hr.post(b.as_slice()).await) })
        .collect();
    let mut lagging = 0;
    while let Some((id, body, (status, _))) = answers.next().await {
        assert_eq!(status, 200, "{id}");
        // Acknowledged: stored, or kept in the inbox (and then stored: checked again).
        let stored = found(&mut checker, id);
        let kept = checker
            .inbox_due(i64::MAX, 10_000)
            .unwrap()
            .iter()
            .any(|r| r.source == "events/pbx" && r.body == *body);
        lagging += usize::from(kept && !stored);
        assert!(
            stored || kept || found(&mut checker, id),
            "{id} was acknowledged, then lost"
        );
    }
    drop(answers);
    eprintln!("{lagging} of {n} were still in the inbox when checked");
    for (id, _) in &bodies {
        h.wait_stored(Channel::Phone, id).await;
    }
    h.wait_drained().await;
}

#[tokio::test]
async fn the_answer_waits_until_the_event_is_on_disk() {
    let h = start().await;
    let mut checker = Store::open_dir(h._dir.path()).unwrap();
    // Another writer holds the store: the webhook cannot keep the event yet.
    let tx = checker.write().unwrap();
    let body = call("call-held", "+447400123456");
    let status = {
        let post = h.post(&body);
        tokio::pin!(post);
        let early = tokio::time::timeout(Duration::from_millis(700), &mut post).await;
        assert!(
            early.is_err(),
            "answered {early:?} before the event was kept"
        );
        drop(tx);
        post.await.0
    };
    assert_eq!(status, 200);
    let kept = checker
        .inbox_due(i64::MAX, 100)
        .unwrap()
        .iter()
        .any(|r| r.body == body);
    let stored = {
        let tx = checker.write().unwrap();
        tx.find_external(Channel::Phone, "pbx", "call-held")
            .unwrap()
            .is_some()
    };
    assert!(kept || stored, "acknowledged, then lost");
    // And the server stopping right after its answer loses nothing either.
    h.server.shutdown().await;
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let tx = checker.write().unwrap();
        if tx
            .find_external(Channel::Phone, "pbx", "call-held")
            .unwrap()
            .is_some()
        {
            break;
        }
        drop(tx);
        assert!(Instant::now() < end, "never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The README's curl + openssl example, run as it is written against a real listener (only
/// the URL and the secret's command are swapped for the test's).
#[tokio::test]
async fn the_readme_example_is_accepted() {
    let readme = include_str!("../README.md");
    let at = readme
        .find("<!-- events-example")
        .expect("the README's example");
    let rest = &readme[at..];
    let code = &rest[rest.find("```sh\n").unwrap() + 6..];
    let code = &code[..code.find("```").unwrap()];
    for tool in ["curl", "openssl"] {
        let found = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .unwrap()
            .status
            .success();
        if !found {
            eprintln!("skipped: no {tool} on this machine");
            return;
        }
    }
    let mut h = start().await;
    let url_line = "URL=https://chat.example.com/hooks/events/pbx";
    let secret_line = "SECRET=$(pass show braid/pbx-events)";
    assert!(
        code.contains(url_line) && code.contains(secret_line),
        "{code}"
    );
    let script = code
        .replace(url_line, &format!("URL={}", h.url()))
        .replace(secret_line, &format!("SECRET=$(printf %s {SECRET})"));
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{}");
    h.wait_stored(Channel::Phone, "call-8812").await;
    let contact = h.store.contacts_page(None, 1).unwrap().remove(0);
    let t = h.timeline(contact.id);
    assert!(
        t[0].body
            .starts_with("Inbound call from +4915112345678 · 4 min 02 s · answered · agent ann"),
        "{:?}",
        t[0].body
    );
    // With another secret, the same script is refused.
    let forged = code
        .replace(url_line, &format!("URL={}", h.url()))
        .replace(secret_line, "SECRET=guess")
        .replace("curl -sS", "curl -sS -o /dev/null -w '%{http_code}'");
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&forged)
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
}
