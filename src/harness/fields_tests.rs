//! Contact fields, stage and score in the TUI, through the real keymap against the real handler
//! and store: `:set`, `:unset`, `:stage`, `:score` and the profile pane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::Harness;
use super::tests::{harness, select_named};
use crate::model::EventId;

fn with_fields(mut h: Harness) -> Harness {
    h.store
        .set_fields_config(std::sync::Arc::new(crate::demo::fields_config()));
    h
}

#[test]
fn set_stage_and_score_from_the_command_line_show_in_the_profile() {
    let mut h = with_fields(harness(160, 45));
    select_named(&mut h, "Ann Lee");
    let contact = h.app.queue.current().unwrap().contact_id;
    h.keys(":set plan gold<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("free, pro, enterprise"),
        "the refusal lists the choices:\n{screen}"
    );
    h.keys(":set plan Pro<CR>").unwrap();
    h.keys(":set renewal 2027-03-31<CR>").unwrap();
    h.keys(":stage customer<CR>").unwrap();
    h.keys(":score +15<CR>").unwrap();
    h.keys(":score -3<CR>").unwrap();
    let row = h.store.contact(contact).unwrap();
    assert_eq!(
        (row.stage.as_deref(), row.lead_score),
        (Some("customer"), 12)
    );
    assert_eq!(
        crate::store::fields::contact_field_for_tests(&h.store, contact, "plan").as_deref(),
        Some("pro")
    );
    h.follow_feed(EventId(0)).unwrap();
    let screen = h.screen().unwrap();
    for needle in ["customer · score 12", "Plan", "pro", "2027-03-31", "Seats"] {
        assert!(screen.contains(needle), "missing {needle}:\n{screen}");
    }
    insta::assert_snapshot!("fields_profile_160x45", screen);
    h.keys(":unset plan<CR>").unwrap();
    assert_eq!(
        crate::store::fields::contact_field_for_tests(&h.store, contact, "plan"),
        None
    );
}
