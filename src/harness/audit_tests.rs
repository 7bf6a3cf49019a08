//! The audit view (`:audit`) and team assignment in the TUI: the log in a sheet, newest first,
//! paging as it scrolls, jumps, Enter opening the conversation; `a` completing agents and
//! teams; `:handoff`; `:view team NAME`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::harness::Harness;
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest_in};
use crate::model::{Channel, ConversationId, Direction, IdentityKind, Millis};
use crate::store::Store;
use crate::tui::app::Mode;

const BASE: Millis = 1_790_000_000_000; // 2026-09-21 14:13 UTC
const NOW: Millis = BASE + 86_400_000;
const MIN: Millis = 60_000;

fn email(who: &str, name: &str, id: &str, at: Millis, account: &str) -> Inbound {
    Inbound {
        channel: Channel::Email,
        account: account.into(),
        external_id: id.into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, who),
        linked: vec![],
        customer_name: Some(name.into()),
        author: None,
        subject: Some("Refund".into()),
        body: "Where is my refund?".into(),
        sent_at: at,
        meta: None,
        cursor: None,
    }
}

/// Two customers, a few changes by three agents and a refusal, each at a fixed time.
fn store() -> (Store, ConversationId, ConversationId) {
    let mut s = Store::open_in_memory().unwrap();
    let mut settings = Settings::default();
    settings
        .teams
        .insert((Channel::Email, "billing".into()), "billing".into());
    let mut put = |m: Inbound| {
        let tx = s.write().unwrap();
        let r = ingest_in(&tx, &m, &settings, m.sent_at).unwrap();
        tx.commit().unwrap();
        match r {
            Ingested::Stored { conversation, .. } => conversation,
            other => panic!("{other:?}"),
        }
    };
    let ann = put(email("ann@example.com", "Ann Lee", "e1", BASE, ""));
    let bo = put(email(
        "bo@example.com",
        "Bo Chen",
        "e2",
        BASE + MIN,
        "billing",
    ));
    s.assign(ann, Some("bob"), "alice", BASE + 2 * MIN).unwrap();
    s.tag(ann, "refund", false, "bob", BASE + 3 * MIN).unwrap();
    s.add_note(ann, "bob", "asked the warehouse", BASE + 4 * MIN)
        .unwrap();
    s.audit_refused(
        "carol",
        Some(bo),
        "assign",
        "assign needs the agent role; you (carol) are a viewer: ask an admin of the workspace",
        BASE + 5 * MIN,
    )
    .unwrap();
    s.set_conversation_team(ann, Some("billing"), "dana", BASE + 6 * MIN)
        .unwrap();
    (s, ann, bo)
}

#[test]
fn the_audit_view_lists_who_did_what_and_enter_opens_the_conversation() {
    let (s, ann, _bo) = store();
    let mut h = Harness::new(s, "me", 120, 20, NOW).unwrap();
    h.keys(":audit<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Sheet(_)));
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("audit_120x20", screen);
    assert!(screen.contains("REFUSED assign"), "{screen}");
    // Newest first: the team move, then the refusal; Enter on the refusal's row opens Bo's
    // conversation; on the team move, Ann's.
    h.keys("<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(h.app.queue.current().map(|r| r.id), Some(ann));
    // Filters: only refusals.
    h.keys(":audit kind:refused<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("carol"), "{screen}");
    assert!(!screen.contains("dana"), "{screen}");
    h.keys("<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    // A bad filter is one line in the status bar, and no sheet.
    h.keys(":audit who:bob<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert!(h.screen().unwrap().contains("unknown audit filter 'who:'"));
}

#[test]
fn the_audit_view_pages_as_it_scrolls_and_jumps_to_the_middle() {
    let (mut s, ann, _) = store();
    for i in 0..3000 {
        s.tag(
            ann,
            &format!("t{i}"),
            i % 2 == 1,
            "bob",
            BASE + (10 + i) * MIN,
        )
        .ok();
    }
    let last = s.last_event_id().unwrap().0;
    let mut h = Harness::new(s, "me", 120, 30, NOW).unwrap();
    h.keys(":audit<CR>").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    assert_eq!(sheet.rows.first().unwrap().key, last);
    assert!(sheet.rows.len() < 500, "a window, not the log");
    // Scrolling down loads older pages.
    for _ in 0..50 {
        h.keys("10j").unwrap();
    }
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    assert_eq!(sheet.current().unwrap().key, last - 500);
    // G: the oldest event.
    h.keys("G").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    assert_eq!(sheet.current().unwrap().key, 1);
    h.keys("<Esc>:audit at:50%<CR>").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    let middle = (1 + last) / 2;
    // The selection is on the middle event; the rows above it are loaded as well.
    assert!(
        (sheet.current().unwrap().key - middle).abs() <= 1,
        "{} vs {middle}",
        sheet.current().unwrap().key
    );
    assert!(sheet.more_above && sheet.more_below);
    // Inside the list, a key bound to `audit at:50%` (`[sheet]` of a personal keymap) jumps
    // without leaving it.
    h.keys("gg").unwrap();
    h.app.keymap =
        crate::tui::keymap::Keymap::with_user("[sheet]\n\"%\" = \"audit at:50%\"\n").unwrap();
    h.keys("%").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    assert!(
        (sheet.current().unwrap().key - middle).abs() <= 1,
        "{} vs {middle}",
        sheet.current().unwrap().key
    );
    // Up from the middle loads newer events; gg goes to the newest.
    h.keys("k").unwrap();
    h.keys("gg").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    assert_eq!(sheet.current().unwrap().key, last);
    // A jump to a date: the newest event at or before it first.
    h.keys("<Esc>:audit at:2026-09-21T14:20:00Z<CR>").unwrap();
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!()
    };
    let at = &sheet.current().unwrap().text;
    assert!(at.contains("2026-09-21 14:19"), "{at}");
}

#[test]
fn assign_completes_agents_and_teams_and_a_team_moves_the_conversation() {
    let (s, ann, _) = store();
    let mut h = Harness::new(s, "me", 120, 30, NOW).unwrap();
    h.app.known_agents = vec!["alice".into(), "bob".into()];
    h.app.known_teams = vec!["billing".into(), "sales".into()];
    h.keys(":assign <Tab>").unwrap();
    let Mode::Prompt(p) = &h.app.mode else {
        panic!()
    };
    assert_eq!(
        p.completions,
        ["alice", "bob", "me", "billing", "sales"].map(String::from)
    );
    h.keys("<Esc>").unwrap();
    // Ann's conversation is bob's: taking it asks first.
    h.keys(":open 1<CR>").unwrap();
    assert_eq!(h.app.queue.current().map(|r| r.id), Some(ann));
    h.keys(":assign me<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("is assigned to bob"), "{screen}");
    h.keys("y").unwrap();
    assert_eq!(
        h.store.conversation(ann).unwrap().assignee.as_deref(),
        Some("me")
    );
    h.keys(":assign sales<CR>").unwrap();
    assert_eq!(
        h.store.conversation(ann).unwrap().team.as_deref(),
        Some("sales")
    );
    // :handoff: assigned and noted in one step.
    h.keys(":handoff alice please call her back<CR>").unwrap();
    let row = h.store.conversation(ann).unwrap();
    assert_eq!(row.assignee.as_deref(), Some("alice"));
    let tl = h.store.timeline(row.contact_id, None, 50).unwrap();
    assert!(
        tl.iter()
            .any(|m| m.body == "please call her back" && m.author == "me")
    );
    // :view team NAME
    h.keys(":view team sales<CR>").unwrap();
    assert_eq!(h.app.queue.rows.len(), 1);
    assert!(h.screen().unwrap().contains("team sales"));
}
