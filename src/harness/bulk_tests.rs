//! Bulk editing the vim way, through the real keymap against the real handler and store:
//! `.` repeats, `u` undoes (server-side), `V` selects rows for one bulk verb, `:g//` runs a
//! verb over every conversation of the view a search matches, asking first above a count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{MIN, NOW, harness};
use crate::harness::Harness;
use crate::model::{ConversationId, Priority, Status};
use crate::tui::app::{Mode, PromptKind};

fn ids(h: &Harness) -> Vec<ConversationId> {
    h.app.queue.rows.iter().map(|r| r.id).collect()
}

fn message_line(h: &mut Harness) -> String {
    let screen = h.screen().unwrap();
    screen.lines().last().unwrap_or_default().to_string()
}

#[test]
fn dot_repeats_the_last_change_here_and_with_a_count_on_that_many_rows() {
    let mut h = harness(160, 45);
    let rows = ids(&h);
    h.keys(":tag refund<CR>").unwrap();
    assert_eq!(h.store.conversation_tags(rows[0]).unwrap(), vec!["refund"]);
    // `.` on the next row: the same change.
    h.keys("j.").unwrap();
    assert_eq!(h.store.conversation_tags(rows[1]).unwrap(), vec!["refund"]);
    assert!(h.store.conversation_tags(rows[2]).unwrap().is_empty());
    // A count: that many rows from the cursor down, in one request.
    h.keys(":priority high<CR>").unwrap();
    h.keys("gg2.").unwrap();
    for id in &rows[..2] {
        assert_eq!(h.store.conversation(*id).unwrap().priority, Priority::High);
    }
    assert_eq!(
        h.store.conversation(rows[2]).unwrap().priority,
        Priority::Normal
    );
    let line = message_line(&mut h);
    assert!(line.contains("priority: 2 of 2 conversations"), "{line}");
    insta::assert_snapshot!("dot_repeat_160x45", h.screen().unwrap());
}

#[test]
fn help_lists_the_bulk_keys_and_commands() {
    let h = harness(160, 45);
    let text: Vec<String> = crate::tui::ui::help::lines(&h.app)
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    for (key, command) in [("u", "undo"), (".", "repeat"), ("V", "visual")] {
        assert!(
            text.iter()
                .any(|l| l.trim_start().starts_with(&format!("{key} ")) && l.contains(command)),
            "{key} = {command} missing from help:\n{}",
            text.join("\n")
        );
    }
    for command in [":global", ":vglobal", ":undo"] {
        assert!(text.iter().any(|l| l.contains(command)), "{command}");
    }
}

#[test]
fn dot_with_nothing_to_repeat_says_so() {
    let mut h = harness(160, 45);
    h.keys(".").unwrap();
    let line = message_line(&mut h);
    assert!(line.contains("nothing to repeat"), "{line}");
}

#[test]
fn u_undoes_the_last_change_server_side_and_again_walks_back() {
    let mut h = harness(160, 45);
    let id = h.app.queue.current().unwrap().id;
    h.keys(":priority urgent<CR>:tag vip-lead<CR>").unwrap();
    h.keys("u").unwrap();
    assert!(h.store.conversation_tags(id).unwrap().is_empty());
    assert_eq!(h.store.conversation(id).unwrap().priority, Priority::Urgent);
    let line = message_line(&mut h);
    assert!(
        line.contains("undone:") && line.contains("vip-lead"),
        "{line}"
    );
    h.keys("u").unwrap();
    assert_eq!(h.store.conversation(id).unwrap().priority, Priority::Normal);
    // Audited as `undone` by this agent.
    let undone = h
        .store
        .conversation_events(id, 50)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "undone" && e.actor == "me")
        .count();
    assert_eq!(undone, 2);
    insta::assert_snapshot!("undo_160x45", h.screen().unwrap());
    // Nothing left of mine: said, nothing changes.
    h.keys("u").unwrap();
    let line = message_line(&mut h);
    assert!(line.contains("nothing to undo"), "{line}");
}

#[test]
fn v_selects_rows_and_one_verb_changes_them_all_in_one_request() {
    let mut h = harness(160, 45);
    let rows = ids(&h);
    h.keys("jVj").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("VISUAL") && screen.contains("2 selected"),
        "{screen}"
    );
    // A count and G extend it too.
    h.keys("G").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("3 selected"), "{screen}");
    insta::assert_snapshot!("visual_selection_160x45", screen);
    h.keys("k").unwrap();
    h.keys(":snooze 2h<CR>").unwrap();
    for id in &rows[1..3] {
        let c = h.store.conversation(*id).unwrap();
        assert_eq!(c.status, Status::Snoozed);
        assert_eq!(c.snoozed_until, Some(NOW + 2 * 3_600_000));
    }
    assert_eq!(h.store.conversation(rows[0]).unwrap().status, Status::Open);
    assert_eq!(h.store.conversation(rows[3]).unwrap().status, Status::Open);
    assert!(h.app.queue.visual.is_none(), "the selection ends");
    let line = message_line(&mut h);
    assert!(line.contains("status: 2 of 2 conversations"), "{line}");
    // One u brings both back (one bulk request is one change).
    h.keys("u").unwrap();
    for id in &rows[1..3] {
        let c = h.store.conversation(*id).unwrap();
        assert_eq!(c.status, Status::Open);
        assert_eq!(c.snoozed_until, None);
    }
}

#[test]
fn esc_leaves_the_selection_and_a_verb_then_acts_on_one_row() {
    let mut h = harness(160, 45);
    let rows = ids(&h);
    h.keys("Vjj<Esc>").unwrap();
    assert!(h.app.queue.visual.is_none());
    let screen = h.screen().unwrap();
    assert!(!screen.contains("selected"), "{screen}");
    h.keys("e").unwrap();
    assert_eq!(
        h.store.conversation(rows[2]).unwrap().status,
        Status::Resolved
    );
    assert_eq!(h.store.conversation(rows[0]).unwrap().status, Status::Open);
    assert_eq!(h.store.conversation(rows[1]).unwrap().status, Status::Open);
}

#[test]
fn g_runs_a_verb_on_every_match_and_asks_first_above_the_threshold() {
    let mut h = harness(160, 45);
    h.app.bulk_confirm_over = 1;
    let ann = super::tests::conversation_named(&h, "Ann Lee");
    let chen = super::tests::conversation_named(&h, "Chen Wei");
    let bob = super::tests::conversation_named(&h, "Bob Smith");
    // "order" matches Ann's and Chen's: 2 > 1, so it asks.
    h.keys(":g/order/tag orders<CR>").unwrap();
    assert!(
        matches!(&h.app.mode, Mode::Prompt(p) if p.kind == PromptKind::Confirm),
        "asks first"
    );
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("tag orders on 2 conversations matching 'order'?"),
        "{screen}"
    );
    insta::assert_snapshot!("global_confirm_160x45", screen);
    // n: nothing changes.
    h.keys("n").unwrap();
    assert!(h.store.conversation_tags(ann).unwrap().is_empty());
    // Again, y: both tagged, Bob's not.
    h.keys(":g/order/tag orders<CR>y").unwrap();
    assert_eq!(h.store.conversation_tags(ann).unwrap(), vec!["orders"]);
    assert_eq!(h.store.conversation_tags(chen).unwrap(), vec!["orders"]);
    assert!(h.store.conversation_tags(bob).unwrap().is_empty());
    let line = message_line(&mut h);
    assert!(line.contains("tag: 2 of 2 conversations"), "{line}");
    // Under the threshold it runs at once: one match.
    h.keys(":g/norway/priority urgent<CR>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(
        h.store.conversation(bob).unwrap().priority,
        Priority::Urgent
    );
    // `:v//`: the ones that do NOT match (Eve and Bob, not Ann or Chen).
    h.app.bulk_confirm_over = 20;
    h.keys(":v/order/tag other<CR>").unwrap();
    assert_eq!(h.store.conversation_tags(bob).unwrap(), vec!["other"]);
    assert_eq!(h.store.conversation_tags(ann).unwrap(), vec!["orders"]);
    // An empty pattern: every conversation of the view.
    h.keys(":g//tag all<CR>").unwrap();
    for id in [ann, bob, chen] {
        assert!(
            h.store
                .conversation_tags(id)
                .unwrap()
                .contains(&"all".to_string())
        );
    }
    // A pattern that contradicts the view is refused, not widened past it.
    h.keys(":g/status:resolved/reopen<CR>").unwrap();
    let line = message_line(&mut h);
    assert!(line.contains("outside the view"), "{line}");
    // Nothing matches: said, nothing changes.
    h.keys(":g/zebra/resolve<CR>").unwrap();
    let line = message_line(&mut h);
    assert!(line.contains("no conversation in this view"), "{line}");
}

#[test]
fn g_assign_team_moves_the_matches_to_the_team() {
    let mut h = harness(160, 45);
    let chen = super::tests::conversation_named(&h, "Chen Wei");
    h.keys(":g/refund/assign team billing<CR>").unwrap();
    assert_eq!(
        h.store.conversation(chen).unwrap().team.as_deref(),
        Some("billing")
    );
}

#[test]
fn a_bulk_request_reports_refusals_in_one_line() {
    let mut h = harness(160, 45);
    let rows = ids(&h);
    // Someone else owns the second row: an assignment leaves it alone.
    h.store
        .assign(rows[1], Some("carol"), "carol", NOW - MIN)
        .unwrap();
    h.keys("<C-l>VG:assign me<CR>").unwrap();
    let line = message_line(&mut h);
    assert!(
        line.contains("assign: 3 of 4 conversations; 1 refused") && line.contains("carol"),
        "{line}"
    );
    assert_eq!(
        h.store.conversation(rows[1]).unwrap().assignee.as_deref(),
        Some("carol")
    );
}

#[test]
fn a_team_agent_changes_only_what_their_teams_see_and_a_viewer_nothing() {
    let mut h = harness(160, 45);
    let rows = ids(&h);
    // Chen's conversation moves to the sales team; the agent is in billing only.
    let chen = super::tests::conversation_named(&h, "Chen Wei");
    h.store
        .set_conversation_team(chen, Some("sales"), "admin", NOW - MIN)
        .unwrap();
    h.who.role = crate::api::Role::Agent;
    h.who.teams = vec!["billing".into()];
    // The rows as the admin saw them (a stale window): the bulk request names all four.
    let resp = crate::server::handler::handle(
        &mut h.store,
        &h.who.clone(),
        crate::api::Request::Bulk {
            conversations: rows.clone(),
            verb: crate::actions::Verb::Tag("checked".into()),
        },
    );
    let crate::api::Response::Bulk(report) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(report.done.len(), 3, "{report:?}");
    assert_eq!(
        report.refused,
        vec![(chen, "not found, or not in your teams".into())]
    );
    h.store
        .set_scope(crate::store::Scope::all("admin"))
        .unwrap();
    assert!(h.store.conversation_tags(chen).unwrap().is_empty());
    // A viewer: the whole request is refused, and audited.
    h.who.role = crate::api::Role::Viewer;
    let resp = crate::server::handler::handle(
        &mut h.store,
        &h.who.clone(),
        crate::api::Request::Bulk {
            conversations: rows,
            verb: crate::actions::Verb::Status(Status::Resolved, None),
        },
    );
    assert!(matches!(resp, crate::api::Response::Refused(_)), "{resp:?}");
}

#[test]
fn g_over_more_than_twenty_asks_by_default_and_one_u_takes_it_all_back() {
    let store = crate::harness::bulk_workspace(30, NOW).unwrap();
    let mut h = Harness::new(store, "me", 160, 45, NOW).unwrap();
    assert_eq!(h.app.bulk_confirm_over, 20, "the shipped default");
    h.keys(":g/refund from:bigcorp.com/tag bulk<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("tag bulk on 30 conversations matching 'refund from:bigcorp.com'?"),
        "{screen}"
    );
    h.keys("y").unwrap();
    let line = message_line(&mut h);
    assert!(line.contains("tag: 30 of 30"), "{line}");
    let tagged = |h: &Harness| {
        (1..=30)
            .filter(|i| {
                h.store
                    .conversation_tags(ConversationId(*i))
                    .unwrap()
                    .contains(&"bulk".to_string())
            })
            .count()
    };
    assert_eq!(tagged(&h), 30);
    h.keys("u").unwrap();
    assert_eq!(tagged(&h), 0);
    let line = message_line(&mut h);
    assert!(line.contains("undone 30 changes"), "{line}");
}

/// The benchmark the lead runs (`cargo test --release --lib bench_global -- --ignored
/// --nocapture`): `:g//` over 10,000 conversations through the real keymap, handler and store.
#[test]
#[ignore = "benchmark: 10,000 conversations; run by the lead"]
fn bench_global_over_10000_conversations() {
    let n = 10_000;
    let store = crate::harness::bulk_workspace(n, NOW).unwrap();
    let mut h = Harness::new(store, "me", 160, 45, NOW).unwrap();
    h.app.bulk_confirm_over = usize::MAX;
    let t = std::time::Instant::now();
    h.keys(":g/refund/tag bulk<CR>").unwrap();
    let took = t.elapsed();
    let line = message_line(&mut h);
    assert!(line.contains(&format!("tag: {n} of {n}")), "{line}");
    println!("g// over {n} conversations: {:.3} s", took.as_secs_f64());
    let t = std::time::Instant::now();
    h.keys("u").unwrap();
    println!("u of it: {:.3} s", t.elapsed().as_secs_f64());
}
