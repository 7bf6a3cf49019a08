//! TUI scenarios (the App as a client, the server's handler answering inline): key scripts through the real keymap and update, effects against a real
//! (in-memory) store, screens drawn on a TestBackend and snapshotted with insta.

use crate::harness::Harness;
use crate::identity::Claim;
use crate::ingest::{Inbound, Settings, ingest};
use crate::model::{Channel, Delivery, Direction, IdentityKind, Millis, Status};
use crate::store::{QueueFilter, Store};
use crate::tui::app::Mode;

pub(super) const BASE: Millis = 1_790_000_000_000; // 2026-09-21 14:13 UTC
pub(super) const NOW: Millis = BASE + 10 * 86_400_000;
pub(super) const MIN: Millis = 60_000;

pub(super) fn msg(
    channel: Channel,
    kind: IdentityKind,
    who: &str,
    name: &str,
    id: &str,
    at: Millis,
    body: &str,
) -> Inbound {
    Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: vec![],
        customer_name: Some(name.into()),
        author: None,
        subject: None,
        body: body.into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

/// A small workspace: Ann writes on email, web chat (giving her email) and Telegram (sharing
/// the phone an agent added); Bob on Telegram; Chen on web chat then email; Dana resolved.
pub(super) fn fixture() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    let mut m = msg(
        Channel::Email,
        IdentityKind::Email,
        "ann@example.com",
        "Ann Lee",
        "e1",
        BASE,
        "Hi, my order #1042 arrived damaged. The box was crushed.\n\nCan I get a replacement?\n\n-- \nAnn Lee\nLee Design Ltd",
    );
    m.subject = Some("Order #1042 arrived damaged".into());
    ingest(&mut s, &m, &st).unwrap();
    let d = msg(
        Channel::Email,
        IdentityKind::Email,
        "dana@example.org",
        "Dana Roe",
        "e2",
        BASE + 5 * MIN,
        "Where can I download my invoice for October?",
    );
    let dana = ingest(&mut s, &d, &st).unwrap();
    let mut w = msg(
        Channel::WebChat,
        IdentityKind::WebChat,
        "v_9f3a",
        "Ann",
        "w1",
        BASE + 2 * 86_400_000,
        "Hello? I emailed about order 1042 two days ago, any news?",
    );
    w.linked = vec![Claim::new(IdentityKind::Email, "Ann@Example.com")];
    ingest(&mut s, &w, &st).unwrap();
    let bob = msg(
        Channel::Telegram,
        IdentityKind::Telegram,
        "5550002",
        "Bob Smith",
        "t1",
        BASE + 3 * 86_400_000,
        "Do you ship to Norway? Looking at the size M jacket.",
    );
    ingest(&mut s, &bob, &st).unwrap();
    let chen = msg(
        Channel::WebChat,
        IdentityKind::WebChat,
        "v_c4e1",
        "Chen Wei",
        "w2",
        BASE + 4 * 86_400_000,
        "Is the refund for order 998 processed? 谢谢",
    );
    ingest(&mut s, &chen, &st).unwrap();
    // An agent adds Ann's phone; then she writes on Telegram sharing that number.
    let ann = s
        .contact_by_identity(IdentityKind::Email, "ann@example.com")
        .unwrap()
        .unwrap();
    s.add_identity(
        ann,
        IdentityKind::Phone,
        "+442079460958",
        "alice",
        BASE + 5 * 86_400_000,
    )
    .unwrap();
    let conv = s.active_conversation(ann).unwrap().unwrap();
    s.add_note(
        conv,
        "alice",
        "Replacement approved, ships Monday. Ask for photos.",
        BASE + 5 * 86_400_000 + MIN,
    )
    .unwrap();
    let mut t = msg(
        Channel::Telegram,
        IdentityKind::Telegram,
        "5550001",
        "Ann L",
        "t2",
        BASE + 6 * 86_400_000,
        "Hi, it's Ann (order 1042). Sending the photos here, easier from my phone.",
    );
    t.linked = vec![Claim::new(IdentityKind::Phone, "+44 20 7946 0958")];
    ingest(&mut s, &t, &st).unwrap();
    if let crate::ingest::Ingested::Stored { conversation, .. } = dana {
        s.set_status(
            conversation,
            Status::Resolved,
            None,
            "bob",
            BASE + 86_400_000,
        )
        .unwrap();
    }
    let hostile = msg(
        Channel::WebChat,
        IdentityKind::WebChat,
        "v_evil",
        "Eve\x1b[31m\u{202e}Admin",
        "w3",
        BASE + 7 * 86_400_000,
        "click \x1b]8;;http://x\x1b\\here\x1b]8;;\x1b\\ \x1b[2J now",
    );
    ingest(&mut s, &hostile, &st).unwrap();
    s
}

pub(super) fn harness(w: u16, h: u16) -> Harness {
    Harness::new(fixture(), "me", w, h, NOW).unwrap()
}

pub(super) fn select_named(h: &mut Harness, name: &str) {
    let pos = h.app.queue.rows.iter().position(|r| r.contact_name == name);
    let pos = pos.unwrap_or_else(|| panic!("{name} not in the queue: {:#?}", h.app.queue.rows));
    h.keys("gg").unwrap();
    for _ in 0..pos {
        h.keys("j").unwrap();
    }
}

fn selected_name(h: &Harness) -> String {
    h.app
        .queue
        .current()
        .map(|r| r.contact_name.clone())
        .unwrap_or_default()
}

#[test]
fn startup_shows_open_queue_and_unified_timeline_160x45() {
    let mut h = harness(160, 45);
    let screen = h.screen().unwrap();
    assert_eq!(h.app.queue.rows.len(), 4, "{screen}");
    // Newest activity first: Eve, Ann (Telegram), Chen, Bob. Dana's is resolved.
    assert_eq!(selected_name(&h), "EveAdmin");
    h.keys("j").unwrap();
    assert_eq!(selected_name(&h), "Ann Lee");
    let screen = h.screen().unwrap();
    for needle in [
        "✉ mail",
        "◍ web",
        "✈ tg",
        "NOTE",
        "order #1042",
        "+442079460958",
        "ann@example.com",
    ] {
        assert!(screen.contains(needle), "missing {needle}:\n{screen}");
    }
    insta::assert_snapshot!("ann_160x45", screen);
}

#[test]
fn narrow_layout_80x24_folds_the_profile() {
    let mut h = harness(80, 24);
    h.keys("j").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        !screen.contains("+442079460958"),
        "profile hidden at 80 cols:\n{screen}"
    );
    insta::assert_snapshot!("ann_80x24", screen);
    h.keys("i").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("+442079460958"),
        "profile toggled in:\n{screen}"
    );
    insta::assert_snapshot!("ann_profile_80x24", screen);
}

#[test]
fn hostile_text_never_reaches_the_screen() {
    let mut h = harness(160, 45);
    let screen = h.screen().unwrap();
    assert!(
        !screen.contains('\x1b') && !screen.contains('\u{202e}'),
        "{screen}"
    );
    assert!(screen.contains("click here  now"), "{screen}");
}

#[test]
fn jj_assign_bob_assigns_the_third_row() {
    let mut h = harness(160, 45);
    h.keys("jj:assign bob<CR>").unwrap();
    let row = h.app.queue.current().unwrap().clone();
    assert_eq!(row.contact_name, "Chen Wei");
    assert_eq!(
        h.store.conversation(row.id).unwrap().assignee.as_deref(),
        Some("bob")
    );
    assert_eq!(row.assignee.as_deref(), Some("bob"), "the queue reloaded");
    let screen = h.screen().unwrap();
    assert!(screen.contains("assigned to bob"), "{screen}");
}

#[test]
fn assign_prompt_completion_and_assign_me() {
    let mut h = harness(160, 45);
    h.keys("a").unwrap();
    assert!(matches!(&h.app.mode, Mode::Prompt(p) if p.input == "assign "));
    h.keys("<Esc>A").unwrap();
    let id = h.app.queue.current().unwrap().id;
    assert_eq!(
        h.store.conversation(id).unwrap().assignee.as_deref(),
        Some("me")
    );
    h.keys(":ass<Tab>").unwrap();
    assert!(
        matches!(&h.app.mode, Mode::Prompt(p) if p.input == "assign"),
        "first candidate"
    );
    h.keys("<Tab>").unwrap();
    assert!(matches!(&h.app.mode, Mode::Prompt(p) if p.input == "assign_me"));
    h.keys("<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
}

#[test]
fn resolve_reopen_snooze_priority_tags() {
    let mut h = harness(160, 45);
    h.keys("j").unwrap();
    let id = h.app.queue.current().unwrap().id;
    h.keys(":priority high<CR>ttorn-box<CR>:tag refund<CR>")
        .unwrap();
    let c = h.store.conversation(id).unwrap();
    assert_eq!(c.priority, crate::model::Priority::High);
    assert_eq!(
        h.store.conversation_tags(id).unwrap(),
        vec!["refund", "torn-box"]
    );
    h.keys(":untag torn-box<CR>").unwrap();
    assert_eq!(h.store.conversation_tags(id).unwrap(), vec!["refund"]);
    h.keys(":snooze 2h<CR>").unwrap();
    let c = h.store.conversation(id).unwrap();
    assert_eq!(c.status, Status::Snoozed);
    assert_eq!(c.snoozed_until, Some(NOW + 2 * 3_600_000));
    assert!(
        h.app.queue.rows.iter().all(|r| r.id != id),
        "left the open view"
    );
    h.keys(":view snoozed<CR>").unwrap();
    assert_eq!(h.app.queue.current().unwrap().id, id);
    h.keys("o").unwrap();
    assert_eq!(h.store.conversation(id).unwrap().status, Status::Open);
    h.keys(":view open<CR>").unwrap();
    let pos = h.app.queue.rows.iter().position(|r| r.id == id).unwrap();
    for _ in 0..pos {
        h.keys("j").unwrap();
    }
    h.keys("e").unwrap();
    assert_eq!(h.store.conversation(id).unwrap().status, Status::Resolved);
    assert!(h.app.queue.rows.iter().all(|r| r.id != id));
}

#[test]
fn reply_goes_out_on_the_customers_last_channel_and_drafts_survive_esc() {
    let mut h = harness(160, 45);
    h.keys("j").unwrap(); // Ann: last wrote on Telegram
    let id = h.app.queue.current().unwrap().id;
    h.keys("r").unwrap();
    match &h.app.mode {
        Mode::Compose(c) => {
            assert_eq!(c.channel, Some(Channel::Telegram));
            assert_eq!(c.recipient.as_deref(), Some("5550001"));
        }
        _ => panic!("composer not open"),
    }
    h.keys("Thanks Ann, a new<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(
        h.store.draft(id, "me").unwrap().unwrap().2,
        "Thanks Ann, a new"
    );
    h.keys("r").unwrap();
    let text = match &h.app.mode {
        Mode::Compose(c) => c.text(),
        _ => panic!("composer not open"),
    };
    assert_eq!(text, "Thanks Ann, a new");
    h.keys(" jacket is on its way.<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    let tl = h
        .store
        .timeline(h.app.queue.current().unwrap().contact_id, None, 100)
        .unwrap();
    let last = tl
        .iter()
        .rev()
        .find(|m| m.direction == Direction::Out)
        .unwrap();
    assert_eq!(last.body, "Thanks Ann, a new jacket is on its way.");
    assert_eq!(last.channel, Channel::Telegram);
    assert_eq!(last.delivery, Some(Delivery::Queued));
    assert!(
        h.store.draft(id, "me").unwrap().is_none(),
        "sent: draft gone"
    );
    let screen = h.screen().unwrap();
    assert!(screen.contains("queued"), "{screen}");
}

#[test]
fn reply_via_email_and_note() {
    let mut h = harness(160, 45);
    h.keys("jR").unwrap();
    assert!(matches!(&h.app.mode, Mode::Prompt(p) if p.input == "reply_via "));
    h.keys("email<CR>").unwrap();
    match &h.app.mode {
        Mode::Compose(c) => assert_eq!(c.recipient.as_deref(), Some("ann@example.com")),
        _ => panic!("composer not open"),
    }
    h.keys("Photos received.<C-s>cChecked with the warehouse.<C-s>")
        .unwrap();
    let contact = h.app.queue.current().unwrap().contact_id;
    let tl = h.store.timeline(contact, None, 100).unwrap();
    let n = tl.len();
    assert_eq!(tl[n - 2].channel, Channel::Email, "{:#?}", &tl[n - 3..]);
    assert_eq!(
        tl[n - 2].subject.as_deref(),
        Some("Re: Order #1042 arrived damaged")
    );
    assert_eq!(tl[n - 1].direction, Direction::Note);
    // Bob has no email: replying by email is refused with a clear message, nothing queued.
    h.keys(":view open<CR>").unwrap();
    select_named(&mut h, "Bob Smith");
    h.keys(":via email<CR>").unwrap();
    assert!(
        matches!(h.app.mode, Mode::Normal),
        "{}",
        h.screen().unwrap()
    );
    assert!(
        h.app.status.as_ref().unwrap().0.contains("no email"),
        "{:?}",
        h.app.status
    );
}

#[test]
fn search_makes_a_queue_view_and_esc_returns() {
    let mut h = harness(160, 45);
    h.keys("/refund<CR>").unwrap();
    assert_eq!(h.app.queue.rows.len(), 1);
    assert_eq!(selected_name(&h), "Chen Wei");
    let screen = h.screen().unwrap();
    assert!(screen.contains("search: refund"), "{screen}");
    h.keys("<Esc>").unwrap();
    assert_eq!(h.app.queue.rows.len(), 4);
    // `from:` is each message's sender: on the web chat, the visitor who gave that address.
    h.keys(":search from:ann@example.com channel:webchat<CR>")
        .unwrap();
    assert_eq!(selected_name(&h), "Ann Lee");
    h.keys(":search after:notadate<CR>").unwrap();
    assert!(h.app.status.as_ref().unwrap().0.contains("bad date"));
}

#[test]
fn counts_and_movement_keys() {
    let mut h = harness(160, 45);
    h.keys("3j").unwrap();
    assert_eq!(h.app.queue.selected, 3);
    h.keys("gg").unwrap();
    assert_eq!(h.app.queue.selected, 0);
    h.keys("G").unwrap();
    assert_eq!(h.app.queue.selected, 3);
    h.keys("2G").unwrap();
    assert_eq!(h.app.queue.selected, 1);
    h.keys("<C-u>").unwrap();
    assert_eq!(h.app.queue.selected, 0);
    h.keys("<C-d>").unwrap();
    assert_eq!(h.app.queue.selected, 3);
    h.keys("g").unwrap();
    assert_eq!(h.app.pending_keys(), "g");
    let screen = h.screen().unwrap();
    assert!(screen.contains("g → "), "which-key hint:\n{screen}");
    h.keys("<Esc>").unwrap();
    assert_eq!(h.app.pending_keys(), "");
    h.keys("<Tab>").unwrap();
    assert_eq!(h.app.focus, crate::tui::app::Pane::Timeline);
    h.keys("<Tab><Tab>").unwrap();
    assert_eq!(h.app.focus, crate::tui::app::Pane::Queue);
}

#[test]
fn help_is_generated_from_the_keymap() {
    let mut h = harness(160, 45);
    h.keys("?").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("assign_me") && screen.contains("Assign the conversation to me"),
        "{screen}"
    );
    insta::assert_snapshot!("help_160x45", screen);
    h.keys("<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
}

#[test]
fn errors_show_in_the_status_line_and_the_app_keeps_running() {
    let mut h = harness(160, 45);
    h.keys(":frobnicate<CR>").unwrap();
    assert!(h.app.status.as_ref().unwrap().0.contains("unknown command"));
    h.keys(":snooze whenever<CR>").unwrap();
    assert!(h.app.status.as_ref().unwrap().0.contains("bad time"));
    h.keys("X").unwrap();
    assert!(h.app.status.as_ref().unwrap().0.contains("not bound"));
    h.keys(":identity add phone 12<CR>").unwrap();
    assert!(
        h.app.status.as_ref().unwrap().0.contains("phone"),
        "{:?}",
        h.app.status
    );
    h.keys("q").unwrap();
    assert_eq!(h.other_effects.last(), Some(&crate::tui::app::Effect::Quit));
}

#[test]
fn identity_add_merges_contacts() {
    let mut h = harness(160, 45);
    // Bob's conversation: add Chen's visitor id to Bob by mistake -> they become one contact.
    select_named(&mut h, "Bob Smith");
    h.keys(":identity add email bob@example.net<CR>").unwrap();
    let bob = h.app.queue.current().unwrap().contact_id;
    let p = h.store.profile(bob).unwrap();
    assert!(p.identities.iter().any(|i| i.value == "bob@example.net"));
    let screen = h.screen().unwrap();
    assert!(screen.contains("bob@example.net"), "{screen}");
}

#[test]
fn a_change_from_another_writer_shows_after_the_feed() {
    let mut h = harness(160, 45);
    let last = h.store.last_event_id().unwrap();
    let m = msg(
        Channel::Email,
        IdentityKind::Email,
        "new@customer.io",
        "Nia Okafor",
        "e9",
        NOW - MIN,
        "Do you offer volume discounts for 200 seats?",
    );
    ingest(&mut h.store, &m, &Settings::default()).unwrap();
    h.follow_feed(last).unwrap();
    assert_eq!(h.app.queue.rows[0].contact_name, "Nia Okafor");
    assert_eq!(h.app.counts.open, 5);
    assert_eq!(h.app.queue.total, 5);
}

#[test]
fn windowed_queue_pages_through_thousands() {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    for i in 0..2_000i64 {
        let m = msg(
            Channel::Email,
            IdentityKind::Email,
            &format!("c{i}@x.org"),
            &format!("Customer {i:04}"),
            &format!("m{i}"),
            BASE + i * MIN,
            "hello",
        );
        ingest(&mut s, &m, &st).unwrap();
    }
    let mut h = Harness::new(s, "me", 160, 45, NOW).unwrap();
    assert_eq!(h.app.queue.total, 2_000);
    assert!(h.app.queue.rows.len() <= crate::tui::app::MAX_WINDOW);
    h.keys("1000j").unwrap();
    // Movement is bounded by the loaded window; prefetch extends it as we go.
    for _ in 0..20 {
        h.keys("100j").unwrap();
    }
    assert!(h.app.queue.rows.len() <= crate::tui::app::MAX_WINDOW);
    let abs = h.app.queue.offset + h.app.queue.selected;
    assert_eq!(abs, 1_999, "reached the end by paging");
    assert_eq!(selected_name(&h), "Customer 0000");
    h.keys("gg").unwrap();
    assert_eq!(selected_name(&h), "Customer 1999");
    h.keys("1500G").unwrap();
    assert_eq!(h.app.queue.offset + h.app.queue.selected, 1_499);
    assert_eq!(selected_name(&h), "Customer 0500");
    h.keys("G").unwrap();
    assert_eq!(selected_name(&h), "Customer 0000");
    h.keys("300k").unwrap();
    assert_eq!(selected_name(&h), "Customer 0300");
    // The queue count matches the store.
    assert_eq!(
        h.store
            .queue_count(&QueueFilter::Status(Status::Open))
            .unwrap(),
        2_000
    );
}

#[test]
fn keys_typed_before_the_draft_arrives_go_into_the_text() {
    let mut h = harness(160, 45);
    h.keys("j").unwrap();
    // Press r, but hold the store's answer back: type while the composer is loading.
    let fx = h.app.dispatch(crate::tui::action::Action::Reply, None);
    assert!(matches!(&h.app.mode, Mode::Compose(c) if c.loading));
    for k in crate::tui::keymap::parse_key_script("hello, order #1042").unwrap() {
        let more = h.app.handle(crate::tui::app::Event::Key(k));
        assert!(more.is_empty(), "nothing runs while loading: {more:?}");
    }
    h.run(fx);
    match &h.app.mode {
        Mode::Compose(c) => {
            assert!(!c.loading);
            assert_eq!(c.text(), "hello, order #1042");
            assert_eq!(c.channel, Some(Channel::Telegram));
        }
        _ => panic!("composer closed"),
    }
    let id = h.app.queue.current().unwrap().id;
    assert_eq!(
        h.store.conversation(id).unwrap().status,
        Status::Open,
        "'o' was not run as reopen"
    );
}

#[test]
fn timeline_scrolls_and_loads_older_pages() {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    for i in 0..250i64 {
        let ch = [Channel::Email, Channel::Telegram, Channel::WebChat][(i % 3) as usize];
        let kind = ch.identity_kind();
        let who = match ch {
            Channel::Email => "zoe@example.com",
            Channel::Telegram => "777",
            _ => "v_zoe",
        };
        let mut m = msg(
            ch,
            kind,
            who,
            "Zoe",
            &format!("z{i}"),
            BASE + i * MIN,
            &format!("message number {i}"),
        );
        m.linked = vec![Claim::new(IdentityKind::Email, "zoe@example.com")];
        ingest(&mut s, &m, &st).unwrap();
    }
    let mut h = Harness::new(s, "me", 160, 45, NOW).unwrap();
    assert_eq!(h.app.timeline.rows.len(), crate::tui::app::TIMELINE_PAGE);
    assert!(h.app.timeline.older);
    let screen = h.screen().unwrap();
    assert!(screen.contains("message number 249"), "{screen}");
    h.keys("l").unwrap();
    assert_eq!(h.app.focus, crate::tui::app::Pane::Timeline);
    h.keys("gg").unwrap();
    assert_eq!(
        h.app.timeline.rows.len(),
        2 * crate::tui::app::TIMELINE_PAGE,
        "older page loaded"
    );
    h.keys("gg").unwrap();
    assert_eq!(h.app.timeline.rows.len(), 250);
    assert!(!h.app.timeline.older);
    // Loading older messages keeps the view where it was; gg again goes to the very top.
    h.keys("gg").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("message number 0\n") || screen.contains("message number 0 "),
        "{screen}"
    );
    h.keys("G").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("message number 249"), "{screen}");
    // h/l stop at the edges; Tab wraps.
    h.keys("hhh").unwrap();
    assert_eq!(h.app.focus, crate::tui::app::Pane::Queue);
}

#[test]
fn ctrl_e_hands_the_text_to_the_editor_and_takes_it_back() {
    let mut h = harness(160, 45);
    h.keys("jrfirst draft<C-e>").unwrap();
    assert_eq!(
        h.other_effects.last(),
        Some(&crate::tui::app::Effect::RunEditor("first draft".into()))
    );
    h.event(crate::tui::app::Event::EditorDone(Ok(
        "first draft\nedited in vim".into(),
    )));
    let id = h.app.queue.current().unwrap().id;
    assert_eq!(
        h.store.draft(id, "me").unwrap().unwrap().2,
        "first draft\nedited in vim"
    );
    // A failing editor leaves the text as it was and says why.
    h.event(crate::tui::app::Event::EditorDone(Err(
        "cannot run nano: not found".into(),
    )));
    match &h.app.mode {
        Mode::Compose(c) => assert_eq!(c.text(), "first draft\nedited in vim"),
        _ => panic!("composer closed"),
    }
    assert!(h.app.status.as_ref().unwrap().0.contains("nano"));
}

#[test]
fn save_runs_off_the_ui_task_for_the_selected_conversation() {
    let mut h = harness(160, 45);
    let selected = h.app.queue.current().map(|r| r.id).unwrap();
    h.keys(":save ~/Downloads<CR>").unwrap();
    assert_eq!(
        h.other_effects.last(),
        Some(&crate::tui::app::Effect::Save {
            conversation: selected,
            dir: Some("~/Downloads".into()),
        })
    );
    assert!(
        h.app.status.as_ref().unwrap().0.contains("saving"),
        "{:?}",
        h.app.status
    );
    // Its answer shows like any other.
    h.event(crate::tui::app::Event::Data(crate::api::Response::Error(
        "save: no message with attachments in #1".into(),
    )));
    assert!(
        h.app
            .status
            .as_ref()
            .unwrap()
            .0
            .contains("no message with attachments")
    );
}

/// Item 8 of issue 12: the queue re-sorts under the selection (a customer writes) while a
/// reload is on its way; the reply must go to the conversation the agent chose, not to
/// whoever is on that row when the reload lands.
#[test]
fn the_reply_goes_to_the_chosen_conversation_when_the_queue_resorts_under_it() {
    let mut h = harness(160, 45);
    select_named(&mut h, "Chen Wei");
    // Bob writes: the feed asks for a reload (keeping Chen) but it has not landed yet.
    let last = h.store.last_event_id().unwrap();
    let m = msg(
        Channel::Telegram,
        IdentityKind::Telegram,
        "5550002",
        "Bob Smith",
        "t9",
        NOW - MIN,
        "Any news about Norway?",
    );
    ingest(&mut h.store, &m, &Settings::default()).unwrap();
    let events = h.store.events_since(last, 100).unwrap();
    let held = h.app.handle(crate::tui::app::Event::Feed(events));
    // Meanwhile the agent goes to the top row, Eve, and means her.
    h.keys("gg").unwrap();
    assert_eq!(selected_name(&h), "EveAdmin");
    let eve = h.app.queue.current().unwrap().id;
    h.run(held);
    assert_eq!(h.app.queue.rows[0].contact_name, "Bob Smith", "re-sorted");
    assert_eq!(selected_name(&h), "EveAdmin", "the selection followed Eve");
    assert_eq!(h.app.queue.selected, 1);
    h.keys("r").unwrap();
    match &h.app.mode {
        Mode::Compose(c) => assert_eq!(c.conversation, eve),
        _ => panic!("composer not open"),
    }
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("Reply to EveAdmin via ◍ web"),
        "the composer names the recipient and the channel:\n{screen}"
    );
    // Another customer writes while the agent types: the queue moves, the draft does not.
    let last = h.store.last_event_id().unwrap();
    let m = msg(
        Channel::WebChat,
        IdentityKind::WebChat,
        "v_c4e1",
        "Chen Wei",
        "w9",
        NOW - MIN / 2,
        "hello?",
    );
    ingest(&mut h.store, &m, &Settings::default()).unwrap();
    h.keys("Hello Eve").unwrap();
    h.follow_feed(last).unwrap();
    assert_eq!(h.app.queue.rows[0].contact_name, "Chen Wei");
    h.keys("<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    let out: Vec<_> = h
        .store
        .timeline(h.store.conversation(eve).unwrap().contact_id, None, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Out)
        .collect();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].conversation_id, eve);
    assert_eq!(out[0].body, "Hello Eve");
    assert_eq!(selected_name(&h), "EveAdmin");
}

/// Issue 12, item 13: `z` keeps the message being read where it was.
#[test]
fn toggling_quoted_text_keeps_the_reading_position() {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    for i in 0..40i64 {
        let m = msg(
            Channel::Email,
            IdentityKind::Email,
            "zoe@example.com",
            "Zoe",
            &format!("z{i}"),
            BASE + i * MIN,
            &format!(
                "message number {i}\n\n> quoted one\n> quoted two\n> quoted three\n> quoted four"
            ),
        );
        ingest(&mut s, &m, &st).unwrap();
    }
    let mut h = Harness::new(s, "me", 160, 45, NOW).unwrap();
    h.keys("l30k").unwrap();
    let top = |h: &mut Harness| -> i64 {
        let screen = h.screen().unwrap();
        screen
            .lines()
            .filter_map(|l| {
                let at = l.rfind("message number ")?;
                l[at + 15..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<i64>()
                    .ok()
            })
            .filter(|n| *n != 39) // the queue row's preview
            .min()
            .unwrap()
    };
    let before = top(&mut h);
    assert!(before < 39, "scrolled up");
    h.keys("z").unwrap();
    assert_eq!(top(&mut h), before, "{}", h.screen().unwrap());
    h.keys("z").unwrap();
    assert_eq!(top(&mut h), before, "{}", h.screen().unwrap());
}

/// Issue 12, item 13: Tab offers only the commands that work in the mode; a composer command
/// typed on the `:` line says where it works.
#[test]
fn tab_offers_only_commands_of_the_mode() {
    let mut h = harness(160, 45);
    h.keys(":se<Tab>").unwrap();
    // `send_at` works outside the composer (it opens one); `send` does not.
    assert!(
        matches!(&h.app.mode, Mode::Prompt(p)
            if p.completions.contains(&"search".to_string())
                && p.completions.contains(&"send_at".to_string())
                && !p.completions.contains(&"send".to_string())),
        "send is not offered"
    );
    h.keys("<Esc>:edit<Tab>").unwrap();
    assert!(
        matches!(&h.app.mode, Mode::Prompt(p) if p.input == "edit" && p.completions.is_empty()),
        "edit_external is not offered"
    );
    h.keys("<Esc>:send<CR>").unwrap();
    let msg = &h.app.status.as_ref().unwrap().0;
    assert!(msg.contains("composer"), "{msg}");
}

/// Issue 12, item 13: the help screen moves with the movement keys.
#[test]
fn help_scrolls_with_g_gg_and_ctrl_d() {
    let mut h = harness(100, 30);
    h.keys("?G").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("Search (/ or :search)"),
        "G: the end\n{screen}"
    );
    h.keys("gg").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("Keys"), "gg: the top\n{screen}");
    h.keys("<C-d>").unwrap();
    let Mode::Help { scroll } = h.app.mode else {
        panic!("help closed")
    };
    assert!(scroll > 0);
    // Past the end and back: k moves at once (no invisible overscroll to climb back).
    h.keys("G<C-d><C-d>jjjk").unwrap();
    let Mode::Help { scroll: after } = h.app.mode else {
        panic!("help closed")
    };
    h.keys("G").unwrap();
    let Mode::Help { scroll: max } = h.app.mode else {
        panic!("help closed")
    };
    assert_eq!(after + 1, max);
}

/// Issue 12, item 13: an internal note has its own look: no channel badge.
#[test]
fn notes_carry_no_channel_badge() {
    let mut h = harness(160, 45);
    h.keys("j").unwrap();
    let screen = h.screen().unwrap();
    let line = screen.lines().find(|l| l.contains("NOTE")).unwrap();
    for badge in ["mail", "tg", "web"] {
        assert!(!line.contains(badge), "{line}");
    }
}

/// Issue 12, item 13: a long worker status is cut with an ellipsis, not dropped.
#[test]
fn a_long_worker_status_is_truncated_not_dropped() {
    let mut h = harness(80, 24);
    h.event(crate::tui::app::Event::Worker(format!(
        "worker: email imap.example.com connection refused, retrying in 30 s; {}",
        "telegram ok; ".repeat(8)
    )));
    let screen = h.screen().unwrap();
    let status = screen.lines().nth(22).unwrap();
    assert!(status.contains("worker: email"), "{status}");
    assert!(status.contains('…'), "{status}");
}

/// Zoe writes 250 messages; every 50th says "special"; each holds its own token.
fn zoe_store() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    for i in 0..250i64 {
        let extra = if i % 50 == 0 { " special" } else { "" };
        let m = msg(
            Channel::Email,
            IdentityKind::Email,
            "zoe@example.com",
            "Zoe",
            &format!("z{i}"),
            BASE + i * MIN,
            &format!("message number {i} token{i}{extra}"),
        );
        ingest(&mut s, &m, &st).unwrap();
    }
    s
}

/// Issue 12, item 9: a search that matches more than one page says so and loads more as the
/// selection goes down, up to every conversation.
#[test]
fn search_results_page_and_say_when_there_are_more() {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    for c in 0..150i64 {
        for k in 0..3i64 {
            let m = msg(
                Channel::Email,
                IdentityKind::Email,
                &format!("c{c}@x.org"),
                &format!("Customer {c:03}"),
                &format!("m{c}-{k}"),
                BASE + (c * 3 + k) * MIN,
                "where is my refund?",
            );
            ingest(&mut s, &m, &st).unwrap();
        }
    }
    let mut h = Harness::new(s, "me", 160, 45, NOW).unwrap();
    h.keys("/refund<CR>").unwrap();
    let first = h.app.queue.rows.len();
    assert!(first < 150, "{first}");
    let screen = h.screen().unwrap();
    assert!(
        screen.contains(&format!("1/{first}+")) && screen.contains("more"),
        "says more exist:\n{screen}"
    );
    for _ in 0..10 {
        h.keys("50j").unwrap();
    }
    assert_eq!(
        h.app.queue.rows.len(),
        150,
        "loaded as the selection went down"
    );
    let screen = h.screen().unwrap();
    assert!(screen.contains("150/150 "), "{screen}");
    assert!(!screen.contains("150+"), "{screen}");
    // Each conversation once.
    let ids: std::collections::HashSet<_> = h.app.queue.rows.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 150);
}

/// Issue 12, item 9: a result row shows the matching message's snippet, not the last message.
#[test]
fn search_rows_show_the_matching_snippet() {
    let mut h = harness(160, 45);
    h.keys("/crushed<CR>").unwrap();
    assert_eq!(selected_name(&h), "Ann Lee");
    let screen = h.screen().unwrap();
    let row = screen
        .lines()
        .find(|l| l.starts_with("│▌") && l.contains("Ann Lee"))
        .unwrap();
    assert!(row.contains("box was crushed"), "{row}");
}

/// Issue 12, item 9: opening a result jumps to the match in the timeline (loading older pages
/// as needed) and marks it; n / N go to the next / previous match.
#[test]
fn opening_a_result_jumps_to_the_match_and_n_moves_between_matches() {
    let mut h = Harness::new(zoe_store(), "me", 160, 45, NOW).unwrap();
    h.keys("/token17<CR><CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("token17"), "jumped to the match:\n{screen}");
    assert!(screen.contains("▶ match"), "marked:\n{screen}");
    h.keys("/special<CR><CR>").unwrap();
    let marked = |h: &mut Harness| -> String {
        let screen = h.screen().unwrap();
        let at = screen.find("▶ match").unwrap_or_else(|| panic!("{screen}"));
        let rest = &screen[at..];
        let at = rest.find("message number ").unwrap();
        rest[at + 15..].split(' ').next().unwrap().to_string()
    };
    assert_eq!(marked(&mut h), "200", "the newest match first");
    h.keys("N").unwrap();
    assert_eq!(marked(&mut h), "150");
    h.keys("N").unwrap();
    assert_eq!(marked(&mut h), "100", "an older page was loaded for it");
    h.keys("n").unwrap();
    assert_eq!(marked(&mut h), "150");
}

/// Issue 12, item 9: a search lands on Dana's old resolved conversation while she has an open
/// one: the reply goes to the open one, and the composer says so.
#[test]
fn a_reply_from_an_old_resolved_result_goes_to_the_open_conversation() {
    let mut h = harness(160, 45);
    let m = msg(
        Channel::Email,
        IdentityKind::Email,
        "dana@example.org",
        "Dana Roe",
        "e7",
        BASE + 9 * 86_400_000,
        "Hello again, a new question about shipping.",
    );
    ingest(&mut h.store, &m, &Settings::default()).unwrap();
    h.keys("/invoice<CR>").unwrap();
    assert_eq!(selected_name(&h), "Dana Roe");
    let old = h.app.queue.current().unwrap().id;
    assert_eq!(h.store.conversation(old).unwrap().status, Status::Resolved);
    let dana = h.app.queue.current().unwrap().contact_id;
    let open = h.store.active_conversation(dana).unwrap().unwrap();
    assert_ne!(old, open);
    h.keys("r").unwrap();
    match &h.app.mode {
        Mode::Compose(c) => assert_eq!(c.conversation, open),
        _ => panic!("composer not open"),
    }
    let screen = h.screen().unwrap();
    assert!(screen.contains(&format!("#{open}")), "{screen}");
    let status = &h.app.status.as_ref().unwrap().0;
    assert!(
        status.contains(&format!("#{open}")) && status.contains(&format!("#{old}")),
        "{status}"
    );
    h.keys("The invoice is in your account page.<C-s>").unwrap();
    let out: Vec<_> = h
        .store
        .timeline(dana, None, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Out)
        .collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].conversation_id, open);
    assert_eq!(h.store.conversation(old).unwrap().status, Status::Resolved);
}

#[test]
fn pending_open_by_id_and_filters_in_search() {
    let mut h = harness(160, 45);
    select_named(&mut h, "Bob Smith");
    let bob = h.app.queue.current().unwrap().id;
    h.keys(":pending<CR>").unwrap();
    assert_eq!(h.store.conversation(bob).unwrap().status, Status::Pending);
    assert!(
        h.app.queue.rows.iter().all(|r| r.id != bob),
        "left the open view"
    );
    h.keys(":view pending<CR>").unwrap();
    assert_eq!(h.app.queue.current().unwrap().id, bob);
    // :open ID and :#ID open a conversation by id, whatever the view.
    h.keys(":view open<CR>").unwrap();
    h.keys(&format!(":open {}<CR>", bob.0)).unwrap();
    assert_eq!(h.app.queue.rows.len(), 1);
    assert_eq!(h.app.queue.current().unwrap().id, bob);
    assert_eq!(h.app.focus, crate::tui::app::Pane::Timeline);
    h.keys("<Esc><Esc>").unwrap();
    h.keys(&format!(":#{}<CR>", bob.0)).unwrap();
    assert_eq!(h.app.queue.current().unwrap().id, bob);
    // Conversation filters in `/`: a tag (was: no results), assignee:me (the agent), status.
    h.keys("<Esc>:view open<CR>").unwrap();
    select_named(&mut h, "Chen Wei");
    let chen = h.app.queue.current().unwrap().id;
    h.keys(":tag refund<CR>A").unwrap();
    h.keys("/tag:refund<CR>").unwrap();
    eprintln!(
        "STATUS {:?} view {:?} mode {} total {} loading {} tags {:?}",
        h.app.status,
        h.app.queue.view,
        h.app.mode.name(),
        h.app.queue.total,
        h.app.queue.loading,
        h.store.conversation_tags(chen)
    );
    let ids: Vec<_> = h.app.queue.rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![chen]);
    h.keys("<Esc>/assignee:me<CR>").unwrap();
    let ids: Vec<_> = h.app.queue.rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![chen]);
    h.keys("<Esc>/status:pending<CR>").unwrap();
    let ids: Vec<_> = h.app.queue.rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![bob]);
    h.keys("<Esc>/colour:red<CR>").unwrap();
    let status = h.app.status.as_ref().unwrap().0.clone();
    assert!(
        status.contains("unknown filter") && status.contains("tag:"),
        "{status}"
    );
}

#[test]
fn identity_add_that_would_merge_asks_first() {
    let mut h = harness(160, 45);
    select_named(&mut h, "Chen Wei");
    let chen = h.app.queue.current().unwrap().contact_id;
    let bob = h
        .store
        .contact_by_identity(IdentityKind::Telegram, "5550002")
        .unwrap()
        .unwrap();
    // No: nothing merges.
    h.keys(":identity add telegram 5550002<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Prompt(_)), "asks");
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("Bob Smith") && screen.contains("Chen Wei"),
        "names both contacts: {screen}"
    );
    assert!(screen.contains("1 conversation"), "{screen}");
    assert!(screen.contains("[y/N]"), "{screen}");
    h.keys("n").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::Telegram, "5550002")
            .unwrap(),
        Some(bob),
        "not merged"
    );
    assert_eq!(
        h.store
            .queue_count(&QueueFilter::Status(Status::Open))
            .unwrap(),
        4
    );
    // Esc cancels too; y merges.
    h.keys(":identity add telegram 5550002<CR><Esc>").unwrap();
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::Telegram, "5550002")
            .unwrap(),
        Some(bob)
    );
    h.keys(":identity add telegram 5550002<CR>y").unwrap();
    let owner = h
        .store
        .contact_by_identity(IdentityKind::Telegram, "5550002")
        .unwrap()
        .unwrap();
    assert!(owner == chen || owner == bob);
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::WebChat, "v_c4e1")
            .unwrap(),
        Some(owner),
        "one contact now"
    );
    // An identity nobody has is added without a question.
    h.keys(":identity add phone +1 202 555 0100<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
}

#[test]
fn pending_after_reply_waits_on_the_customer_until_they_write() {
    let mut h = harness(160, 45);
    select_named(&mut h, "Bob Smith");
    let bob = h.app.queue.current().unwrap().id;
    // Off by default: a reply leaves the conversation open.
    h.keys("rWe do ship to Norway.<C-s>").unwrap();
    assert_eq!(h.store.conversation(bob).unwrap().status, Status::Open);
    // On: the reply makes it pending; the customer's next message opens it again.
    h.app.pending_after_reply = true;
    select_named(&mut h, "Bob Smith");
    h.keys("rSize M is in stock.<C-s>").unwrap();
    assert_eq!(h.store.conversation(bob).unwrap().status, Status::Pending);
    let status = h.app.status.as_ref().unwrap().0.clone();
    assert!(status.contains("pending"), "{status}");
    let again = msg(
        Channel::Telegram,
        IdentityKind::Telegram,
        "5550002",
        "Bob Smith",
        "t9",
        NOW,
        "Great, ordering now.",
    );
    ingest(&mut h.store, &again, &Settings::default()).unwrap();
    assert_eq!(h.store.conversation(bob).unwrap().status, Status::Open);
}

#[test]
fn a_claimed_email_shows_unverified_until_an_agent_links_it() {
    let mut h = harness(160, 45);
    select_named(&mut h, "Bob Smith");
    let bob = h.app.queue.current().unwrap().contact_id;
    h.store
        .write_with(|tx| {
            crate::store::claims::record(tx, bob, IdentityKind::Email, "b@x.io", "web chat", NOW)
        })
        .unwrap();
    h.keys(":refresh<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("claims to be b@x.io (unverified)"),
        "{screen}"
    );
    h.keys(":claim frob<CR>").unwrap();
    assert!(
        h.app
            .status
            .as_ref()
            .unwrap()
            .0
            .contains("usage: claim link|dismiss")
    );
    h.keys(":claim link<CR>").unwrap();
    assert!(
        h.app.status.as_ref().unwrap().0.contains("b@x.io linked"),
        "{:?}",
        h.app.status
    );
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::Email, "b@x.io")
            .unwrap(),
        Some(bob)
    );
    h.keys(":refresh<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(!screen.contains("(unverified)"), "{screen}");
    let linked = h
        .store
        .events_since(crate::model::EventId(0), 1000)
        .unwrap()
        .into_iter()
        .any(|e| e.actor == "me" && e.kind == "identity_linked");
    assert!(linked, "the link is audited with the agent's name");
    h.keys(":claim dismiss<CR>").unwrap();
    assert!(
        h.app
            .status
            .as_ref()
            .unwrap()
            .0
            .contains("claims no identity")
    );
}

/// Issue 12, item 8: a verb pressed while the queue is still moving to the row asked for (a
/// jump in a long queue) does not act on the row that was selected before.
#[test]
fn a_verb_waits_for_the_row_a_jump_is_loading() {
    let mut s = Store::open_in_memory().unwrap();
    let st = Settings::default();
    for i in 0..1_000i64 {
        let m = msg(
            Channel::Email,
            IdentityKind::Email,
            &format!("c{i}@x.org"),
            &format!("Customer {i:04}"),
            &format!("m{i}"),
            BASE + i * MIN,
            "hello",
        );
        ingest(&mut s, &m, &st).unwrap();
    }
    let mut h = Harness::new(s, "me", 160, 45, NOW).unwrap();
    let before = h.app.queue.current().unwrap().id;
    // 800G: the row is outside the loaded window; hold the store's answer back.
    let held = h
        .app
        .dispatch(crate::tui::action::Action::Bottom, Some(800));
    assert!(!held.is_empty(), "a jump was asked for");
    let fx = h.app.dispatch(crate::tui::action::Action::Resolve, None);
    assert!(fx.is_empty(), "nothing written: {fx:?}");
    let fx = h.app.dispatch(crate::tui::action::Action::Reply, None);
    assert!(
        fx.is_empty() && matches!(h.app.mode, Mode::Normal),
        "{fx:?}"
    );
    assert!(
        h.app.status.as_ref().unwrap().0.contains("still"),
        "{:?}",
        h.app.status
    );
    assert_eq!(h.store.conversation(before).unwrap().status, Status::Open);
    h.run(held);
    assert_eq!(selected_name(&h), "Customer 0200");
    h.keys("e").unwrap();
    let id = h.app.queue.current().map(|r| r.id);
    assert_ne!(id, None);
    let resolved = h
        .store
        .queue_page(
            &QueueFilter::Status(Status::Resolved),
            crate::store::QueueAnchor::Top,
            10,
        )
        .unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].contact_name, "Customer 0200");
}

/// The TUI path of a refusal: a viewer's verb and note come back as one line in the status
/// bar, nothing changes, and the refusal is in the audit log; an agent of another team does
/// not see the conversation at all.
#[test]
fn the_server_refuses_what_the_role_forbids_on_the_tui_path() {
    let mut h = harness(160, 45);
    h.who = crate::server::Identity {
        role: crate::api::Role::Viewer,
        teams: Vec::new(),
        ..crate::server::Identity::local_admin("vic")
    };
    let id = h.app.queue.current().expect("a selected row").id;
    let before = h.store.conversation(id).unwrap();
    h.keys("e").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("'status' needs the agent role; you (vic) are a viewer"),
        "{screen}"
    );
    let after = h.store.conversation(id).unwrap();
    assert_eq!(before.status, after.status);
    // A note: the composer does not even open for a viewer.
    h.keys("c").unwrap();
    assert!(!matches!(h.app.mode, Mode::Compose(_)));
    let screen = h.screen().unwrap();
    assert!(screen.contains("needs the agent role"), "{screen}");
    let refused = h
        .store
        .events_since(crate::model::EventId(0), 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "refused" && e.actor == "vic")
        .count();
    assert_eq!(refused, 2);

    // An agent of a team the conversation is not in: it is not found.
    h.store
        .set_conversation_team(id, Some("sales"), "setup", NOW)
        .unwrap();
    h.who = crate::server::Identity {
        role: crate::api::Role::Agent,
        teams: vec!["support".into()],
        ..crate::server::Identity::local_admin("sam")
    };
    h.keys(&format!(":open {}<CR>", id.0)).unwrap();
    let screen = h.screen().unwrap();
    assert!(!screen.contains("'status' needs"), "{screen}");
    h.keys("<Esc>e").unwrap();
    // (The harness's connection carries the last agent's scope: look as an admin.)
    h.store.set_scope(crate::store::Scope::all("test")).unwrap();
    assert_eq!(h.store.conversation(id).unwrap().status, before.status);
}

/// The server goes away while a reply is being written: the screen and the draft stay, the send
/// fails with the runtime's line and leaves the composer as it was, and when the connection is
/// back everything shown is reloaded and the same text goes out.
#[test]
fn a_lost_server_keeps_the_draft_and_the_send_works_once_it_is_back() {
    use crate::tui::app::Event;
    let mut h = harness(160, 45);
    h.keys("c").unwrap();
    h.keys("called the carrier").unwrap();
    h.event(Event::Connection {
        up: false,
        line: "server: connection lost (closed); reconnecting".into(),
    });
    assert!(h.screen().unwrap().contains("connection lost"));
    // Send while disconnected: the runtime answers the request itself (no server).
    for key in crate::tui::keymap::parse_key_script("<C-s>").unwrap() {
        let _unsent = h.app.handle(Event::Key(key));
    }
    h.event(Event::Data(crate::api::Response::Error(
        "not connected to the server (reconnecting); nothing was changed, try again in a moment"
            .into(),
    )));
    let text = match &h.app.mode {
        Mode::Compose(c) => {
            assert!(!c.sending);
            c.text()
        }
        _ => panic!("the composer closed"),
    };
    assert_eq!(text, "called the carrier");
    // Back: a reload is asked for, and the same keys send it.
    let fx = h.app.handle(Event::Connection {
        up: true,
        line: "worker: leader".into(),
    });
    assert!(!fx.is_empty());
    h.run(fx);
    h.keys("<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert!(h.screen().unwrap().contains("note added"));
}

fn notify_agents() -> Vec<crate::store::NotifyAgent> {
    ["me", "bob", "carol"]
        .iter()
        .map(|a| crate::store::NotifyAgent {
            name: a.to_string(),
            scope: crate::store::Scope::all(*a),
        })
        .collect()
}

/// The conversation of the queue row named `name`.
pub(super) fn conversation_named(h: &Harness, name: &str) -> crate::model::ConversationId {
    h.app
        .queue
        .rows
        .iter()
        .find(|r| r.contact_name == name)
        .map(|r| r.id)
        .unwrap_or_else(|| panic!("{name} not in the queue"))
}

#[test]
fn notifications_count_list_open_the_message_and_read_state() {
    let mut h = harness(120, 30);
    // The server's first derivation sets the cursor at the newest event: no history.
    assert_eq!(h.notify(&notify_agents()).unwrap(), 0);
    assert_eq!(h.app.notifications_unread, 0);
    assert!(!h.screen().unwrap().contains("notification"));

    // Bob mentions me in a note on Ann's conversation, then gives me Chen's.
    let last = h.store.last_event_id().unwrap();
    let ann = conversation_named(&h, "Ann Lee");
    let chen = conversation_named(&h, "Chen Wei");
    let note = h
        .store
        .add_note(
            ann,
            "bob",
            "@me can you check the refund? @carol FYI",
            NOW - 2 * MIN,
        )
        .unwrap();
    h.store.assign(chen, Some("me"), "bob", NOW - MIN).unwrap();
    h.follow_feed(last).unwrap();
    assert_eq!(h.notify(&notify_agents()).unwrap(), 2);
    // The status line counts them; the message line says what came in.
    let screen = h.screen().unwrap();
    let status = screen.lines().nth(28).unwrap();
    assert!(status.contains("│ 2 notifications"), "{screen}");
    assert!(
        h.app
            .status
            .as_ref()
            .unwrap()
            .0
            .contains("bob assigned you in #"),
        "{:?}",
        h.app.status
    );

    // g n: the list, newest first, both unread.
    h.keys("gn").unwrap();
    assert!(matches!(h.app.mode, Mode::Sheet(_)));
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("notifications_120x30", screen);

    // Enter on the mention: the sheet closes, Ann's conversation opens on the note, read.
    h.keys("j<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(h.app.queue.current().map(|r| r.id), Some(ann));
    assert_eq!(h.app.timeline.target, Some(note));
    assert_eq!(h.app.notifications_unread, 1);
    assert_eq!(h.store.unread_notifications("me").unwrap(), 1);
    assert!(h.screen().unwrap().contains("│ 1 notification "));
    // Carol's mention is hers alone: reading mine left it unread.
    assert_eq!(h.store.unread_notifications("carol").unwrap(), 1);

    // Again: one marked; R reads them all; Esc closes (an Esc that drops a pending g
    // does only that).
    h.keys("gn").unwrap();
    h.keys("g<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Sheet(_)));
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!("no sheet")
    };
    assert_eq!(
        sheet.rows.iter().map(|r| r.marked).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(sheet.footer, "1 unread");
    h.keys("R").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!("no sheet")
    };
    assert!(sheet.rows.iter().all(|r| !r.marked));
    assert_eq!(sheet.footer, "all read");
    assert_eq!(h.app.notifications_unread, 0);
    assert_eq!(h.store.unread_notifications("me").unwrap(), 0);
    h.keys("<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    let screen = h.screen().unwrap();
    assert!(
        !screen.lines().nth(28).unwrap().contains("notification"),
        "{screen}"
    );
    // ? in the list: the help, which names the list's keys.
    h.keys("gn?").unwrap();
    assert!(matches!(h.app.mode, Mode::Help { .. }));
    let help: Vec<String> = crate::tui::ui::help::lines(&h.app)
        .iter()
        .map(|l| l.to_string())
        .collect();
    let at = help
        .iter()
        .position(|l| l.starts_with("List keys"))
        .expect("a List keys section");
    assert!(
        help[at..]
            .iter()
            .any(|l| l.contains('R') && l.contains("mark_all_read")),
        "{help:#?}"
    );
}

#[test]
fn a_new_notification_rings_as_configured_and_reloads_the_open_list() {
    let mut h = harness(120, 30);
    h.app.notify = crate::config::NotifySettings {
        bell: true,
        desktop: crate::config::DesktopNotify::Osc9,
    };
    h.notify(&notify_agents()).unwrap();
    h.keys("gn").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!("no sheet")
    };
    assert!(sheet.rows.is_empty());
    assert!(h.screen().unwrap().contains("no notifications yet"));
    let ann = conversation_named(&h, "Ann Lee");
    h.store
        .add_note(ann, "bob", "@me look \x1b]0;x\x07", NOW)
        .unwrap();
    h.notify(&notify_agents()).unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!("no sheet")
    };
    assert_eq!(sheet.rows.len(), 1);
    let alerts: Vec<&String> = h
        .other_effects
        .iter()
        .filter_map(|e| match e {
            crate::tui::app::Effect::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(
        alerts,
        [&"\x1b]9;braid: bob mentioned you · #1 Ann Lee\x07\x07".to_string()]
    );
}

#[test]
fn tab_completes_a_mention_and_an_unknown_name_is_flagged_before_sending() {
    let mut h = harness(160, 45);
    h.app.known_agents = vec!["me".into(), "bob".into(), "bonnie".into(), "carol".into()];
    select_named(&mut h, "Ann Lee");
    h.keys("chi @c<Tab>").unwrap();
    let text = |h: &Harness| match &h.app.mode {
        Mode::Compose(c) => c.text(),
        _ => panic!("composer closed"),
    };
    assert_eq!(text(&h), "hi @carol ");
    // Two agents start with "bo": the common part, and the line names them.
    h.keys("@B<Tab>").unwrap();
    assert_eq!(text(&h), "hi @carol @bo");
    assert!(h.app.status.as_ref().unwrap().0.contains("@bob  @bonnie"));
    h.keys("b<Tab>and @zed").unwrap();
    assert_eq!(text(&h), "hi @carol @bob and @zed");
    // The composer says @zed is nobody, before anything is sent.
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("@zed not an agent here: nobody is notified"),
        "{screen}"
    );
    let ann = conversation_named(&h, "Ann Lee");
    let notes = |h: &Harness| {
        h.store
            .conversation_events(ann, 100)
            .unwrap()
            .iter()
            .filter(|e| e.kind == "note")
            .count()
    };
    let before = notes(&h);
    h.keys("<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Compose(_)));
    assert!(
        h.app
            .status
            .as_ref()
            .unwrap()
            .0
            .contains("@zed is no agent here"),
        "{:?}",
        h.app.status
    );
    assert_eq!(notes(&h), before);
    // Sent anyway on the second press.
    h.keys("<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(notes(&h), before + 1);
    // Tab that is not after an @ types as before (no completion, no error).
    h.keys("c").unwrap();
    h.keys("x<Tab>").unwrap();
    assert!(text(&h).starts_with('x'));
}
