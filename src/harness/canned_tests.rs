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
    let contact = h
        .store
        .queue_page(
            &crate::store::QueueFilter::All,
            crate::store::QueueAnchor::Top,
            10,
        )
        .unwrap()[0]
        .contact_id;
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
    // The composer's frame flags it too, as long as it is there.
    assert!(
        screen.contains("not filled: {{contact.first_name}}"),
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
fn a_template_meant_for_other_channels_says_so() {
    let mut h = harness("Ana Souza");
    h.canned.templates[0].channels = vec![Channel::Email];
    h.app.canned = h.canned.templates.iter().map(|t| t.info()).collect();
    h.keys(":template refund-approved<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("meant for email, this reply goes on telegram"),
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

fn with_macros(h: &mut Harness) {
    h.app.known_teams = vec!["billing".into()];
    h.app.macros = vec![
        crate::config::Macro {
            name: "refund-ok".into(),
            steps: vec![
                "tag refund".into(),
                "template refund-approved".into(),
                "assign team billing".into(),
                "resolve".into(),
            ],
        },
        crate::config::Macro {
            name: "strict-done".into(),
            steps: vec![
                "tag refund".into(),
                "template strict".into(),
                "resolve".into(),
            ],
        },
    ];
    h.app.keymap = crate::tui::keymap::Keymap::with_user(
        "[normal]\n\"g R\" = \"macro refund-ok\"\n\"g S\" = \"macro strict-done\"\n",
    )
    .unwrap();
}

#[test]
fn a_macro_bound_to_a_key_runs_every_step_and_sends_the_canned_reply() {
    let mut h = harness("Ana Souza");
    with_macros(&mut h);
    let conv = h.app.queue.current().unwrap().id;
    h.keys("gR").unwrap();
    let row = h.store.conversation(conv).unwrap();
    assert_eq!(row.status, Status::Resolved);
    assert_eq!(row.team.as_deref(), Some("billing"));
    assert_eq!(h.store.conversation_tags(conv).unwrap(), vec!["refund"]);
    assert_eq!(
        outbound(&h),
        vec![format!(
            "Hi Ana, your refund for #{conv} is on its way. — me"
        )]
    );
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("macro_ran", screen);
    // `?` lists the macros with their steps.
    let help: Vec<String> = crate::tui::ui::help::lines(&h.app)
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        help.iter().any(|l| l.contains(":macro refund-ok")
            && l.contains("tag refund · template refund-approved")),
        "{help:?}"
    );
}

#[test]
fn a_missing_variable_stops_the_macro_before_it_changes_anything() {
    let mut h = harness("5551");
    with_macros(&mut h);
    let conv = h.app.queue.current().unwrap().id;
    h.keys("gS").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("macro 'strict-done' stopped before changing anything"),
        "{screen}"
    );
    let row = h.store.conversation(conv).unwrap();
    assert_eq!(row.status, Status::Open);
    assert!(h.store.conversation_tags(conv).unwrap().is_empty());
    assert!(outbound(&h).is_empty());
    // Completion and an unknown name.
    h.keys(":macro rf<Tab><Esc>").unwrap();
    h.keys(":macro nope<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("no macro 'nope' (defined: refund-ok, strict-done"),
        "{screen}"
    );
}

#[test]
fn suggest_puts_the_scripts_draft_in_the_composer_and_never_sends_it() {
    let mut h = harness("Ana Souza");
    h.app.suggest = true;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("suggest.sh");
    // A real script: reads the conversation JSON, answers from it.
    std::fs::write(
        &script,
        "#!/bin/sh\npython3 -c 'import json,sys; d=json.load(sys.stdin); \
         print(\"Hi \" + d[\"contact\"][\"name\"].split()[0] + \", re: \" + d[\"messages\"][-1][\"body\"] + \" (\" + d[\"conversation\"][\"channel\"] + \")\")'\n",
    )
    .unwrap();
    h.suggest_command = Some(format!("sh {}", script.display()));
    h.keys(":suggest<CR>").unwrap();
    assert_eq!(
        composer_text(&h),
        "Hi Ana, re: Where is my refund? (telegram)"
    );
    assert!(
        outbound(&h).is_empty(),
        "a suggestion is never sent by itself"
    );
    // A failing command: a clear line, stderr cleaned.
    h.keys("<Esc><C-x>").unwrap();
    h.suggest_command = Some("echo 'model \x1b[2Joffline' >&2; exit 2".into());
    h.keys(":suggest<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("the suggest command failed (exit status 2): model offline"),
        "{screen}"
    );
    // Not configured.
    h.app.suggest = false;
    h.keys("<Esc>:suggest<CR>").unwrap();
    assert!(h.screen().unwrap().contains("no suggest_command"));
}
