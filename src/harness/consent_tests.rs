//! Consent in the TUI, through the real keymap against the real handler and store:
//! `:consent marketing off` / `all off` recorded for the selected customer, shown in the
//! profile, and a reply refused with the reason in the status line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{harness, select_named};

#[test]
fn consent_recorded_from_the_tui_shows_in_the_profile_and_stops_replies() {
    let mut h = harness(160, 40);
    select_named(&mut h, "Ann Lee");
    let contact = h.app.queue.current().unwrap().contact_id;
    h.keys(":consent marketing off asked on the phone<CR>")
        .unwrap();
    let c = h.store.contact_consent(contact).unwrap();
    assert!(c.marketing_out && !c.all_out);
    assert_eq!(c.history[0].detail, "asked on the phone");
    // Another conversation and back: the profile is read again.
    h.keys("jk").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("✗ no marketing (agent"), "{screen}");
    // The queue marks her row.
    assert!(
        screen
            .lines()
            .any(|l| l.contains("⊘") && l.contains("Ann Lee") && l.find("⊘") < l.find("Ann")),
        "{screen}"
    );
    insta::assert_snapshot!("consent_profile_160x40", screen);
    h.keys(":consent all off<CR>").unwrap();
    h.keys("jk").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("✗ no messages at all (agent"), "{screen}");
    let e = h.keys(":consent maybe<CR>");
    assert!(e.is_ok());
    assert!(
        h.screen().unwrap().contains("say marketing or all"),
        "{}",
        h.screen().unwrap()
    );
}
