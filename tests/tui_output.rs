//! The TUI's output wall: text from outside (a server's error description, a worker status, an
//! author name) is drawn escaped. No cell of the screen holds a control character, a bidi
//! override or a line separator, and what was escaped is visible, not silently dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::harness::Harness;
use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind, Millis};
use braid::store::Store;
use braid::tui::app::Event;

const NOW: Millis = 1_790_000_000_000;
const HOSTILE: &str = "\x1b]0;PWNED\x07\x1b]52;c;aGkK\x07\x1b[2J\u{202e}gnp.exe\u{2028}x\u{9b}1m";

fn forbidden(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || c == '\u{2028}'
        || c == '\u{2029}'
}

#[test]
fn hostile_text_from_outside_is_drawn_escaped() {
    let mut store = Store::open_in_memory().unwrap();
    ingest(
        &mut store,
        &Inbound {
            channel: Channel::Telegram,
            account: String::new(),
            external_id: "1".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Telegram, "555"),
            linked: vec![],
            customer_name: Some("Ann".into()),
            author: None,
            subject: None,
            body: "where is my order?".into(),
            sent_at: NOW - 60_000,
            meta: None,
            cursor: None,
        },
        &Settings::default(),
    )
    .unwrap();
    let contact = store
        .contact_by_identity(IdentityKind::Telegram, "555")
        .unwrap()
        .unwrap();
    let conv = store.active_conversation(contact).unwrap().unwrap();
    let author = "bob\x1b[2J".to_string();
    let id = store
        .queue_reply(conv, Channel::Telegram, &author, "on its way", NOW - 30_000)
        .unwrap();
    store
        .mark_failed(
            id,
            &format!("Telegram: Bad Request: {HOSTILE}"),
            false,
            "worker",
            NOW - 20_000,
        )
        .unwrap();

    let mut h = Harness::new(store, &format!("agent{HOSTILE}"), 300, 30, NOW).unwrap();
    h.event(Event::Worker(format!(
        "worker: leader · telegram: @evil{HOSTILE}"
    )));
    let screen = h.screen().unwrap();
    let check = |h: &Harness, what: &str| {
        let buf = h.term.backend().buffer();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                let sym = buf[(x, y)].symbol();
                assert!(
                    !sym.chars().any(forbidden),
                    "{what}: cell ({x},{y}) holds {sym:?}"
                );
            }
        }
    };
    check(&h, "timeline and status line");
    // Nothing hidden: the delivery failure shows the attempt, escaped.
    assert!(
        screen.contains("failed: Telegram: Bad Request: \\u{1b}]0;PWNED"),
        "{screen}"
    );
    assert!(screen.contains("bob\\u{1b}[2J"), "{screen}");

    h.event(Event::Problem(format!("telegram: {HOSTILE}")));
    let screen = h.screen().unwrap();
    check(&h, "an error in the message line");
    assert!(screen.contains("telegram: \\u{1b}]0;PWNED"), "{screen}");
}
