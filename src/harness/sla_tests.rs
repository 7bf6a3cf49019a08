//! The triage order and SLA countdowns through the real app, keymap and handler.

use super::tests::{MIN, NOW, fixture};
use super::*;
use crate::model::Status;
use crate::sla::{Policy, SlaConfig};
use crate::store::{QueueAnchor, QueueFilter, QueueOrder};

/// The fixture with SLAs: the oldest waiting conversation breached 5 minutes ago, another
/// due in 42 minutes, a third in 10 (near), the rest without one.
fn store_with_slas() -> (Store, Vec<(String, Option<i64>)>) {
    let mut s = fixture();
    let rows = s
        .queue_page(&QueueFilter::Status(Status::Open), QueueAnchor::Top, 50)
        .unwrap();
    let waiting: Vec<_> = rows
        .iter()
        .filter_map(|r| Some((r.id, r.waiting_since?)))
        .collect();
    assert!(waiting.len() >= 3, "{rows:#?}");
    let mut cfg = SlaConfig::default();
    for (i, (conv, since)) in waiting.iter().take(3).enumerate() {
        let due = NOW + [-5, 42, 10][i] * MIN;
        let name = format!("p{i}");
        cfg.policies.push(Policy {
            name: name.clone(),
            first_response: Some(due - since),
            next_response: Some(due - since),
            resolution: None,
            hours: None,
            warn_before: 15 * MIN,
        });
        s.apply_sla_by_name(*conv, &cfg, &name, NOW - 60 * MIN, "rule:test")
            .unwrap();
    }
    s.sla_sweep(&cfg, NOW).unwrap();
    let info = rows
        .iter()
        .map(|r| (r.contact_name.clone(), r.waiting_since))
        .collect();
    (s, info)
}

#[test]
fn the_triage_queue_puts_the_breach_first_and_counts_down() {
    let (store, _) = store_with_slas();
    let mut h = Harness::new(store, "me", 160, 30, NOW).unwrap();
    h.app.queue_order = QueueOrder::Triage;
    h.keys(":view open<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("⏱-5m"), "{screen}");
    assert!(screen.contains("⏱42m"), "{screen}");
    assert!(screen.contains("⏱10m"), "{screen}");
    // The breached one is first, then the soonest due.
    let first = &h.app.queue.rows[0];
    assert_eq!(first.sla_state.as_deref(), Some("breached"), "{screen}");
    assert_eq!(
        h.app.queue.rows[1].sla_due,
        Some(NOW + 10 * MIN),
        "{screen}"
    );
    assert!(screen.contains("first response overdue 5m"), "{screen}");
    insta::assert_snapshot!("sla_triage_160x30", screen);
    // The activity order is still there.
    h.app.queue_order = QueueOrder::Activity;
    h.keys(":view open<CR>").unwrap();
    let names: Vec<&str> = h
        .app
        .queue
        .rows
        .iter()
        .map(|r| r.contact_name.as_str())
        .collect();
    assert_eq!(names, ["EveAdmin", "Ann Lee", "Chen Wei", "Bob Smith"]);
}
