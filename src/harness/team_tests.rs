//! Working as a team, in the TUI: other agents' presence in the queue, the timeline's title and
//! the status line; the traffic cop stopping a reply the conversation outgrew while it was
//! being typed (the draft kept, the changes shown, one key to send anyway).

use super::tests::{BASE, MIN, NOW, harness, msg, select_named};
use crate::api::{Activity, PresenceEntry, Request};
use crate::ingest::{Settings, ingest};
use crate::model::{Channel, ConversationId, Direction, IdentityKind};
use crate::tui::app::{Event, Mode};

fn entry(
    agent: &str,
    display: &str,
    conversation: Option<ConversationId>,
    activity: Activity,
    session: u64,
) -> PresenceEntry {
    PresenceEntry {
        agent: agent.into(),
        display: display.into(),
        conversation,
        activity,
        since: NOW - MIN,
        session,
    }
}

fn outgoing(h: &super::Harness) -> Vec<String> {
    let contact = h.app.queue.current().unwrap().contact_id;
    h.store
        .timeline(contact, None, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Out)
        .map(|m| m.body)
        .collect()
}

#[test]
fn others_viewing_and_typing_show_in_the_queue_the_title_and_the_status_line() {
    let mut h = harness(160, 30);
    select_named(&mut h, "Ann Lee");
    let ann = h.app.queue.current().unwrap().id;
    let chen = h
        .app
        .queue
        .rows
        .iter()
        .find(|r| r.contact_name == "Chen Wei")
        .unwrap()
        .id;
    // Alone: no presence column, no count.
    let alone = h.screen().unwrap();
    assert!(!alone.contains("online"), "{alone}");
    assert!(!alone.contains('◇') && !alone.contains('◆'), "{alone}");
    h.event(Event::Presence(vec![
        entry("me", "me", Some(ann), Activity::Viewing, 1),
        entry("bob", "Bob Stone", Some(ann), Activity::Viewing, 2),
        entry("carol", "carol", Some(ann), Activity::Reply, 3),
        entry("dana", "Dana", Some(chen), Activity::Viewing, 4),
        entry("erin", "Erin", None, Activity::Viewing, 5),
    ]));
    let screen = h.screen().unwrap();
    assert!(screen.contains("5 online"), "{screen}");
    assert!(
        screen.contains("Bob Stone is viewing · carol is typing a reply"),
        "the title names them:\n{screen}"
    );
    let ann_row = screen
        .lines()
        .map(|l| l.chars().take(60).collect::<String>())
        .find(|l| l.starts_with('│') && l.contains("Ann Lee"))
        .unwrap();
    assert!(ann_row.contains("◆BC"), "typing wins, initials:\n{ann_row}");
    let chen_row = screen
        .lines()
        .map(|l| l.chars().take(60).collect::<String>())
        .find(|l| l.starts_with('│') && l.contains("Chen Wei"))
        .unwrap();
    assert!(chen_row.contains("◇D"), "{chen_row}");
    insta::assert_snapshot!("presence_160x30", screen);
    // Opening the composer where someone types says so at once.
    h.keys("r").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("careful: carol is typing a reply in #"),
        "{screen}"
    );
    h.keys("<Esc>").unwrap();
    // :who lists everyone and where.
    h.keys(":who<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains(&format!("5 online: me (you) viewing #{ann}")),
        "{screen}"
    );
    assert!(screen.contains("Erin online"), "{screen}");
    // They leave: the marks go.
    h.event(Event::Presence(vec![entry(
        "me",
        "me",
        Some(ann),
        Activity::Viewing,
        1,
    )]));
    let screen = h.screen().unwrap();
    let status = screen.lines().find(|l| l.starts_with(" NORMAL")).unwrap();
    assert!(!status.contains("online"), "{status}");
    assert!(!screen.contains("is viewing"), "{screen}");
    assert!(!screen.contains('◇') && !screen.contains('◆'), "{screen}");
}

#[test]
fn the_app_reports_what_it_does_when_it_changes_and_as_a_heartbeat() {
    let mut h = harness(160, 30);
    select_named(&mut h, "Ann Lee");
    let ann = h.app.queue.current().unwrap().id;
    assert_eq!(
        h.app.presence_request(NOW),
        Some(Request::Presence {
            conversation: Some(ann),
            activity: Activity::Viewing
        })
    );
    assert_eq!(h.app.presence_request(NOW + 1000), None, "nothing new");
    h.keys("c").unwrap();
    assert_eq!(
        h.app.presence_request(NOW + 2000),
        Some(Request::Presence {
            conversation: Some(ann),
            activity: Activity::Note
        })
    );
    assert_eq!(
        h.app
            .presence_request(NOW + 2000 + crate::tui::app::PRESENCE_HEARTBEAT_MS),
        Some(Request::Presence {
            conversation: Some(ann),
            activity: Activity::Note
        }),
        "a heartbeat"
    );
    h.keys("<Esc>j").unwrap();
    let next = h.app.queue.current().unwrap().id;
    assert_eq!(
        h.app.presence_request(NOW + 60_000),
        Some(Request::Presence {
            conversation: Some(next),
            activity: Activity::Viewing
        })
    );
}

#[test]
fn a_reply_the_conversation_outgrew_is_stopped_shown_and_sent_once_on_one_key() {
    let mut h = harness(160, 40);
    select_named(&mut h, "Chen Wei");
    let chen = h.app.queue.current().unwrap().id;
    h.keys("r").unwrap();
    h.keys("Your parcel left today.").unwrap();
    // While Chen's reply is being typed, Chen writes again and a colleague adds a note.
    ingest(
        &mut h.store,
        &msg(
            Channel::WebChat,
            IdentityKind::WebChat,
            "v_c4e1",
            "Chen Wei",
            "late1",
            BASE + 9 * 86_400_000,
            "Never mind, I cancelled the order.",
        ),
        &Settings::default(),
    )
    .unwrap();
    h.store
        .add_note(chen, "bob", "refund issued", NOW - MIN)
        .unwrap();
    h.keys("<C-s>").unwrap();
    // Nothing went out; the draft is intact and the changes are on screen.
    assert!(outgoing(&h).is_empty(), "nothing sent");
    let Mode::Compose(c) = &h.app.mode else {
        panic!("the composer must stay open");
    };
    assert_eq!(c.text(), "Your parcel left today.");
    let stale = c.stale.as_ref().expect("what changed is kept");
    assert_eq!(stale.changes.len(), 2, "{stale:?}");
    let screen = h.screen().unwrap();
    for needle in [
        "not sent: #",
        "Chen Wei wrote: “Never mind, I cancelled the order.”",
        "bob added a note: “refund issued”",
        "Ctrl-s send anyway",
    ] {
        assert!(screen.contains(needle), "missing {needle}:\n{screen}");
    }
    insta::assert_snapshot!("stale_reply_160x40", screen);
    // The refusal is in the audit log, as this agent.
    let audit = h.store.conversation_events(chen, 5).unwrap();
    assert!(
        audit.iter().any(|e| e.kind == "refused"
            && e.actor == "me"
            && e.data.as_deref().unwrap_or("").contains("changed since")),
        "{audit:?}"
    );
    // One key sends it anyway, once.
    h.keys("<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(outgoing(&h), vec!["Your parcel left today.".to_string()]);
}

#[test]
fn a_stopped_draft_can_be_discarded() {
    let mut h = harness(160, 40);
    select_named(&mut h, "Bob Smith");
    let bob = h.app.queue.current().unwrap().id;
    h.keys("cnote to self").unwrap();
    h.store.assign(bob, Some("carol"), "carol", NOW).unwrap();
    h.keys("<C-s>").unwrap();
    let Mode::Compose(c) = &h.app.mode else {
        panic!("the composer must stay open");
    };
    assert_eq!(
        c.stale.as_ref().unwrap().changes[0].what,
        "carol assigned it to carol"
    );
    h.keys("<C-x>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert!(h.store.draft(bob, "me").unwrap().is_none(), "draft gone");
    let notes = h
        .store
        .timeline(h.app.queue.current().unwrap().contact_id, None, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Note)
        .count();
    assert_eq!(notes, 0, "nothing written");
}

#[test]
fn the_agents_own_changes_do_not_stop_their_send() {
    let mut h = harness(160, 40);
    select_named(&mut h, "Chen Wei");
    h.keys("r").unwrap();
    h.keys("On its way<Esc>").unwrap();
    // Their own assignment and tag while the draft waits.
    h.keys("A").unwrap();
    h.keys(":priority high<CR>").unwrap();
    h.keys("r<C-s>").unwrap();
    assert!(
        matches!(h.app.mode, Mode::Normal),
        "sent without a question"
    );
    assert_eq!(outgoing(&h), vec!["On its way".to_string()]);
}
