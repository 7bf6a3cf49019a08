//! Canned replies, named macros and `:suggest` through the real keymap, the real handler and
//! a real store.

use super::Harness;
use super::tests::msg;
use crate::canned::{Library, Template, render_for};
use crate::ingest::{Settings, ingest};
use crate::model::{Channel, Direction, IdentityKind, Millis, Status};
use crate::store::Store;
use crate::tui::app::Mode;

const NOW: Millis = 1_790_000_000_000;

fn store_with(name: &str) -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let m = msg(
        Channel::Telegram,
        IdentityKind::Telegram,
        "5551",
        name,
        "in-1",
        NOW - 60_000,
        "Where is my refund?",
    );
    ingest(&mut s, &m, &Settings::default()).unwrap();
    s
}

fn library() -> Library {
    Library {
        templates: vec![
            Template {
                name: "refund-approved".into(),
                body: "Hi {{contact.first_name | default: \"there\"}}, your refund for #{{conversation.id}} is on its way. — {{agent.name}}".into(),
                variants: [(
                    "email".to_string(),
                    "Dear {{contact.name}},\n\nYour refund is on its way.\n\nBest,\n{{agent.name}}".to_string(),
                )]
                .into_iter()
                .collect(),
                ..Default::default()
            },
            Template {
                name: "strict".into(),
                body: "Hi {{contact.first_name}}, all done.".into(),
                ..Default::default()
            },
        ],
    }
}

fn harness(name: &str) -> Harness {
    let mut h = Harness::new(store_with(name), "me", 120, 30, NOW).unwrap();
    h.canned = library();
    h.app.canned = h.canned.templates.iter().map(|t| t.info()).collect();
    h
}

fn composer_text(h: &Harness) -> String {
    match &h.app.mode {
        Mode::Compose(c) => c.text(),
        _ => panic!("the composer is not open"),
    }
}

fn outbound(h: &Harness) -> Vec<String> {
    let contact = h.app.queue.current().unwrap().contact_id;
    h.store
        .timeline(contact, None, 50)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Out)
        .map(|m| m.body)
        .collect()
}

#[test]
fn template_inserts_the_rendered_canned_reply_into_the_composer() {
    let mut h = harness("Ana Souza");
    let conv = h.app.queue.current().unwrap().id;
    h.keys(":template refund-approved<CR>").unwrap();
    assert_eq!(
        composer_text(&h),
        format!("Hi Ana, your refund for #{conv} is on its way. — me")
    );
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("canned_inserted", screen);
    // Nothing was sent: the agent edits, then sends.
    assert!(outbound(&h).is_empty());
    h.keys("<C-s>").unwrap();
    assert_eq!(outbound(&h).len(), 1);
}

#[test]
fn a_missing_variable_is_flagged_and_a_send_with_a_placeholder_asks_first() {
    let mut h = harness("5551");
    h.keys(":template strict<CR>").unwrap();
    assert_eq!(composer_text(&h), "Hi {{contact.first_name}}, all done.");
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("cannot fill contact.first_name"),
        "{screen}"
    );
    insta::assert_snapshot!("canned_missing", screen);
    h.keys("<C-s>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("still has a {{...}}"), "{screen}");
    assert!(outbound(&h).is_empty(), "nothing sent on the first press");
    // A second press sends it as it is (the agent decided).
    h.keys("<C-s>").unwrap();
    assert_eq!(outbound(&h).len(), 1);
}

#[test]
fn completion_lists_canned_replies_and_whatsapp_templates_marked() {
    let mut h = harness("Ana Souza");
    h.app.templates = vec![crate::template::Template {
        name: "order_update".into(),
        language: "en".into(),
        text: "Hi {{1}}".into(),
    }];
    h.keys(":template <Tab>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("refund-approved(canned)"), "{screen}");
    assert!(screen.contains("order_update(WhatsApp)"), "{screen}");
    // Fuzzy: letters in order.
    h.keys("<Esc>:template rfap<Tab><CR>").unwrap();
    assert!(composer_text(&h).starts_with("Hi Ana, your refund"));
    // An approved template with parameters keeps today's path (send it).
    h.keys("<Esc>:template order_update Ana<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
}

#[test]
fn an_unknown_name_lists_both_kinds() {
    let mut h = harness("Ana Souza");
    h.keys(":template nope<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("no WhatsApp templates are configured"),
        "{screen}"
    );
}

#[test]
fn personal_templates_render_in_the_client() {
    let mut h = harness("Ana Souza");
    h.app.personal_canned = Library {
        templates: vec![Template {
            name: "mine".into(),
            body: "Cheers {{contact.first_name}} from {{agent.name}} on {{conversation.channel}}"
                .into(),
            personal: true,
            ..Default::default()
        }],
    };
    h.keys(":template mine<CR>").unwrap();
    assert_eq!(composer_text(&h), "Cheers Ana from me on telegram");
}

#[test]
fn rules_get_the_text_or_a_clear_error() {
    let s = store_with("ana@example.com");
    let conv = s
        .queue_page(
            &crate::store::QueueFilter::Status(Status::Open),
            crate::store::QueueAnchor::Top,
            10,
        )
        .unwrap()[0]
        .id;
    let lib = library();
    let text = render_for(
        &s,
        &lib,
        "refund-approved",
        conv,
        Channel::Telegram,
        "rule:vip-first",
    )
    .unwrap();
    assert_eq!(
        text,
        format!("Hi there, your refund for #{conv} is on its way. — rule:vip-first")
    );
    let e = render_for(&s, &lib, "strict", conv, Channel::Telegram, "x").unwrap_err();
    assert!(matches!(e, crate::canned::CannedError::Missing { .. }));
    assert!(e.to_string().contains("contact.first_name missing"), "{e}");
    let e = render_for(&s, &lib, "nope", conv, Channel::Telegram, "x").unwrap_err();
    assert!(
        e.to_string().contains("known: refund-approved, strict"),
        "{e}"
    );
}
