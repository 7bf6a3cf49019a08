//! Merges you can take back, through the real keymap, handler and store: `:merge` asks with a
//! preview of what moves, `y` merges, `:merges` lists the provenance, `:unmerge` restores;
//! `:duplicates` suggests Dana's two addresses, and `m` merges them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{harness, select_named};
use crate::model::{ContactId, IdentityKind};
use crate::tui::app::{Mode, PromptKind};

fn contact_of(h: &super::Harness, name: &str) -> ContactId {
    h.app
        .queue
        .rows
        .iter()
        .find(|r| r.contact_name == name)
        .unwrap_or_else(|| panic!("{name} not in the queue"))
        .contact_id
}

#[test]
fn merge_asks_with_a_preview_then_unmerge_restores() {
    let mut h = harness(140, 40);
    let bob = contact_of(&h, "Bob Smith");
    select_named(&mut h, "Chen Wei");
    let chen = contact_of(&h, "Chen Wei");
    h.keys(&format!(
        ":merge {bob} same person, told us on the phone<CR>"
    ))
    .unwrap();
    let Mode::Prompt(p) = &h.app.mode else {
        panic!("no question: {:?}", h.app.status)
    };
    assert_eq!(p.kind, PromptKind::Confirm);
    let q = p.question.clone().unwrap();
    assert!(
        q.contains(&format!(
            "merge #{bob} Bob Smith (telegram 5550002; 1 conversation; 1 message)"
        )),
        "{q}"
    );
    assert!(q.contains(&format!("into #{chen} Chen Wei (")), "{q}");
    insta::assert_snapshot!("merge_preview_140x40", h.screen().unwrap());
    // Nothing moved before the answer.
    assert!(h.store.contact(bob).is_ok());
    assert_eq!(h.store.merges(bob, 10).unwrap().len(), 0);
    h.keys("y").unwrap();
    let status = h.app.status.clone().map(|s| s.0).unwrap_or_default();
    assert!(
        status.contains(&format!("contact #{bob} merged into #{chen}")),
        "{status}"
    );
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::Telegram, "5550002")
            .unwrap(),
        Some(chen)
    );
    let merges = h.store.merges(chen, 10).unwrap();
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0].actor, "me");
    assert_eq!(
        merges[0].reason,
        "manual: same person, told us on the phone"
    );
    // The provenance view.
    h.keys(":merges<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains(&format!("contact #{bob} into #{chen}")),
        "{screen}"
    );
    assert!(screen.contains("same person, told us"), "{screen}");
    h.keys("q").unwrap();
    // Take it back.
    select_named(&mut h, "Chen Wei");
    h.keys(":unmerge<CR>").unwrap();
    let status = h.app.status.clone().map(|s| s.0).unwrap_or_default();
    assert!(status.contains("undone"), "{status}");
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::Telegram, "5550002")
            .unwrap(),
        Some(bob)
    );
    assert!(
        h.app
            .queue
            .rows
            .iter()
            .any(|r| r.contact_name == "Bob Smith")
    );
}

#[test]
fn a_merge_question_answered_no_changes_nothing() {
    let mut h = harness(140, 40);
    let bob = contact_of(&h, "Bob Smith");
    select_named(&mut h, "Chen Wei");
    h.keys(&format!(":merge {bob}<CR>")).unwrap();
    h.keys("n").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    assert_eq!(
        h.store
            .contact_by_identity(IdentityKind::Telegram, "5550002")
            .unwrap(),
        Some(bob)
    );
    h.keys(":merge abc<CR>").unwrap();
    let status = h.app.status.clone().map(|s| s.0).unwrap_or_default();
    assert!(status.contains("not a contact id"), "{status}");
}

#[test]
fn duplicates_suggests_pairs_and_m_merges_one() {
    let mut h = harness(140, 40);
    // Dana writes again from her other address: same local part, another domain.
    let m = super::tests::msg(
        crate::model::Channel::Email,
        IdentityKind::Email,
        "dana@roe-family.net",
        "Dana R",
        "e9",
        super::tests::NOW - 60_000,
        "Me again, from home: the invoice?",
    );
    crate::ingest::ingest(&mut h.store, &m, &Default::default()).unwrap();
    h.keys(":duplicates<CR>").unwrap();
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("duplicates_140x40", screen);
    assert!(screen.contains("same local part"), "{screen}");
    assert!(
        screen.contains("dana@example.org / dana@roe-family.net"),
        "{screen}"
    );
    let before = h.store.duplicates(10).unwrap();
    assert!(!before.is_empty());
    h.keys("m").unwrap();
    let after = h.store.duplicates(10).unwrap();
    assert_eq!(after.len(), before.len() - 1, "{after:?}");
    let merged = h.store.merges(before[0].a, 10).unwrap();
    assert_eq!(merged.len(), 1);
    assert!(
        merged[0]
            .reason
            .starts_with("manual: duplicates: same local part"),
        "{:?}",
        merged[0]
    );
    // The list came again without the pair.
    let screen = h.screen().unwrap();
    assert!(!screen.contains("roe-family"), "{screen}");
}

#[test]
fn the_pipeline_view_opens_on_the_first_stage_and_tab_moves_on() {
    let mut h = harness(120, 30);
    let cfg = crate::fields::FieldsConfig::default();
    let rows: Vec<_> = h
        .app
        .queue
        .rows
        .iter()
        .map(|r| (r.contact_id, r.contact_name.clone()))
        .collect();
    for (i, (c, _)) in rows.iter().enumerate() {
        let stage = if i == 0 { "customer" } else { "lead" };
        h.store
            .set_contact_stage(*c, &cfg, Some(stage), "me", 1)
            .unwrap();
        h.store
            .change_contact_score(*c, crate::fields::ScoreChange::Set(10 * i as i64), "me", 1)
            .unwrap();
    }
    h.keys("gp").unwrap();
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("pipeline_lead_120x30", screen);
    assert!(screen.contains("[lead 3]"), "{screen}");
    assert!(screen.contains("customer 1"), "{screen}");
    // Highest score first.
    let lead: Vec<&str> = rows[1..].iter().map(|(_, n)| n.as_str()).collect();
    let first = screen.find(lead[2]).unwrap();
    assert!(first < screen.find(lead[0]).unwrap(), "{screen}");
    h.keys("<Tab>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("[qualified 0]"), "{screen}");
    h.keys("<Tab>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("[customer 1]") && screen.contains(&rows[0].1),
        "{screen}"
    );
    // Enter opens the contact's conversation.
    h.keys("<CR>").unwrap();
    assert_eq!(h.app.queue.current().map(|r| r.contact_id), Some(rows[0].0));
}
