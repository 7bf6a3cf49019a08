//! Tasks and scheduled replies in the TUI, through the real keymap against the real handler
//! and store: `:task`, the tasks view (`g t`, `x`, `v`, Enter), `:send-at` and `:cancel-send`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{NOW, harness, select_named};
use crate::model::{Delivery, Millis};
use crate::store::{NewTask, TaskAt, TaskWindow};
use crate::tui::app::Mode;

fn when(phrase: &str) -> Millis {
    crate::when::parse_in(phrase, NOW, &|_| 0, None).unwrap()
}

#[test]
fn task_command_and_the_tasks_view() {
    let mut h = harness(120, 30);
    select_named(&mut h, "Ann Lee");
    let ann = h.app.queue.current().unwrap().id;
    h.keys(":task call tomorrow 10:00 -- ask about the refund<CR>")
        .unwrap();
    select_named(&mut h, "Chen Wei");
    let chen = h.app.queue.current().unwrap().id;
    h.keys(":task 2h send the invoice<CR>").unwrap();
    // Without a title: the kind and the contact.
    h.keys(":task call monday 9am<CR>").unwrap();
    // Someone else's task is not in "mine".
    h.store
        .create_task(
            &NewTask {
                kind: "todo".into(),
                title: "bob's own".into(),
                due_at: Some(NOW),
                assignee: Some("bob".into()),
                conversation: Some(ann),
                ..NewTask::default()
            },
            "bob",
            NOW,
        )
        .unwrap();

    let (mine, _) = h
        .store
        .tasks_page(&TaskWindow::Mine("me".into()), TaskAt::Top, 10)
        .unwrap();
    let got: Vec<(
        String,
        String,
        Option<Millis>,
        Option<crate::model::ConversationId>,
    )> = mine
        .iter()
        .map(|t| (t.kind.clone(), t.title.clone(), t.due_at, t.conversation_id))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "todo".into(),
                "send the invoice".into(),
                Some(NOW + 2 * 3_600_000),
                Some(chen)
            ),
            (
                "call".into(),
                "ask about the refund".into(),
                Some(when("tomorrow 10:00")),
                Some(ann)
            ),
            (
                "call".into(),
                "call Chen Wei".into(),
                Some(when("monday 9am")),
                Some(chen)
            ),
        ]
    );
    assert!(mine.iter().all(|t| t.created_by == "me"));

    // g t: mine, soonest first.
    h.keys("gt").unwrap();
    assert!(matches!(h.app.mode, Mode::Sheet(_)));
    insta::assert_snapshot!("tasks_120x30", h.screen().unwrap());

    // x: the selected (first) task is done, and leaves the list.
    h.keys("x").unwrap();
    let first = &mine[0];
    let closed = h.store.task(first.id).unwrap().unwrap();
    assert_eq!(
        (closed.state.as_str(), closed.closed_by.as_deref()),
        ("done", Some("me"))
    );
    let Mode::Sheet(sheet) = &h.app.mode else {
        panic!("no sheet")
    };
    assert_eq!(
        sheet.rows.iter().map(|r| r.key).collect::<Vec<_>>(),
        vec![mine[1].id, mine[2].id]
    );
    // Enter opens the task's conversation.
    h.keys("<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(h.app.queue.current().map(|r| r.id), Some(ann));

    // v cycles the view: overdue next, then all (bob's task shows).
    h.keys("gtv").unwrap();
    assert!(h.screen().unwrap().contains("tasks: overdue"));
    h.keys("v").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("tasks: all"), "{screen}");
    assert!(screen.contains("bob's own"), "{screen}");
    h.keys("q").unwrap();

    // A bad time says what works.
    h.keys(":task call whenever<CR>").unwrap();
    let (msg, _, _) = h.app.status.clone().unwrap();
    assert!(msg.contains("tomorrow 10:00"), "{msg}");
    assert_eq!(
        h.store
            .tasks_page(&TaskWindow::Mine("me".into()), TaskAt::Top, 10)
            .unwrap()
            .0
            .len(),
        2
    );
}

#[test]
fn send_at_schedules_shows_and_cancels_a_reply() {
    let mut h = harness(160, 40);
    select_named(&mut h, "Ann Lee");
    h.keys(":send-at 2027-06-01 09:00<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Compose(_)));
    h.keys("see you in June<C-s>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal), "{:?}", h.app.status);
    let ann = h.app.queue.current().unwrap().id;
    let id = h.store.last_scheduled(ann).unwrap().expect("scheduled");
    let m = h.store.message(id).unwrap();
    assert_eq!(m.scheduled_at, Some(when("2027-06-01 09:00")));
    assert_eq!(m.delivery, Some(Delivery::Queued));
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("scheduled for 2027-06-01 09:00"),
        "{screen}"
    );
    // Not due: the outbox does not hand it out now.
    assert!(
        h.store
            .claim_outbox(crate::model::now_millis(), 60_000, 10)
            .unwrap()
            .iter()
            .all(|i| i.message_id != id)
    );

    h.keys(":cancel-send<CR>").unwrap();
    assert_eq!(
        h.store.message(id).unwrap().delivery,
        Some(Delivery::Cancelled)
    );
    let screen = h.screen().unwrap();
    assert!(screen.contains("cancelled (never sent)"), "{screen}");
    // Nothing left to cancel: it says so.
    h.keys(":cancel-send<CR>").unwrap();
    let (msg, _, _) = h.app.status.clone().unwrap();
    assert!(msg.contains("no scheduled reply"), "{msg}");
    // A bad time never opens the composer.
    h.keys(":send-at someday<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    let (msg, _, _) = h.app.status.clone().unwrap();
    assert!(msg.contains("next business morning"), "{msg}");
}

#[test]
fn the_profile_lists_the_contacts_open_tasks() {
    let mut h = harness(160, 40);
    select_named(&mut h, "Ann Lee");
    assert!(!h.screen().unwrap().contains("open tasks"));
    h.keys(":task call tomorrow 10:00 -- ask about the refund<CR>")
        .unwrap();
    // Another conversation and back: the profile is read again.
    h.keys("jk").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("─ open tasks (g t)"), "{screen}");
    assert!(screen.contains("☐ call ask about the refund"), "{screen}");
    assert!(
        screen.contains(&crate::when::label(when("tomorrow 10:00"), NOW)),
        "{screen}"
    );
}
