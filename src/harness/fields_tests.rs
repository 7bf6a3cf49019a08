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

/// `plan:pro`, `stage:customer`, `score:>10`, `renewal:<DATE`: conversations whose contact
/// matches, compared by type; unknown fields and comparisons a type does not allow say what is.
#[test]
fn search_filters_on_fields_stage_and_score() {
    use crate::store::SearchQuery;
    let mut h = with_fields(harness(160, 45));
    let cfg = h.store.fields_config();
    let id = |h: &Harness, name: &str| {
        h.app
            .queue
            .rows
            .iter()
            .find(|r| r.contact_name == name)
            .unwrap()
            .contact_id
    };
    let (ann, chen, bob) = (id(&h, "Ann Lee"), id(&h, "Chen Wei"), id(&h, "Bob Smith"));
    let s = &mut h.store;
    s.set_contact_field(ann, &cfg, "plan", Some("pro"), "me", 1)
        .unwrap();
    s.set_contact_field(chen, &cfg, "plan", Some("free"), "me", 1)
        .unwrap();
    s.set_contact_field(ann, &cfg, "seats", Some("12"), "me", 1)
        .unwrap();
    s.set_contact_field(chen, &cfg, "seats", Some("9.5"), "me", 1)
        .unwrap();
    s.set_contact_field(ann, &cfg, "renewal", Some("2027-01-15"), "me", 1)
        .unwrap();
    s.set_contact_field(bob, &cfg, "renewal", Some("2026-12-01"), "me", 1)
        .unwrap();
    s.set_contact_stage(ann, &cfg, Some("customer"), "me", 1)
        .unwrap();
    s.set_contact_stage(bob, &cfg, Some("lead"), "me", 1)
        .unwrap();
    s.change_contact_score(ann, crate::fields::ScoreChange::Set(20), "me", 1)
        .unwrap();
    s.change_contact_score(bob, crate::fields::ScoreChange::Set(10), "me", 1)
        .unwrap();
    let who = |s: &crate::store::Store, q: &str| -> Vec<String> {
        let (rows, _) = s
            .filtered_conversations(&SearchQuery::parse(q).unwrap(), 50)
            .unwrap();
        let mut names: Vec<String> = rows.into_iter().map(|r| r.contact_name).collect();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(who(s, "plan:pro"), ["Ann Lee"]);
    assert_eq!(who(s, "plan:PRO"), ["Ann Lee"]);
    assert_eq!(who(s, "stage:customer"), ["Ann Lee"]);
    assert_eq!(who(s, "score:>10"), ["Ann Lee"]);
    assert_eq!(who(s, "score:>=10"), ["Ann Lee", "Bob Smith"]);
    assert_eq!(who(s, "seats:>10"), ["Ann Lee"]);
    assert_eq!(who(s, "seats:<10"), ["Chen Wei"]);
    assert_eq!(who(s, "renewal:<2027-01-01"), ["Bob Smith"]);
    assert_eq!(who(s, "plan:pro stage:customer score:>5"), ["Ann Lee"]);
    assert!(who(s, "plan:free stage:customer").is_empty());
    // Through the message search too (words and a field filter).
    let hits = s
        .search(&SearchQuery::parse("order plan:pro").unwrap(), 50)
        .unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.contact_id == ann));
    let err = |s: &crate::store::Store, q: &str| {
        s.search(&SearchQuery::parse(q).unwrap(), 5)
            .unwrap_err()
            .to_string()
    };
    let e = err(s, "colour:red");
    assert!(
        e.contains("unknown filter 'colour:'") && e.contains("plan:"),
        "{e}"
    );
    let e = err(s, "plan:gold");
    assert!(e.contains("free, pro, enterprise"), "{e}");
    let e = err(s, "plan:>pro");
    assert!(e.contains("choice field"), "{e}");
    let e = err(s, "stage:won");
    assert!(e.contains("lead, qualified"), "{e}");
    assert!(SearchQuery::parse("score:lots").is_err());
}

/// Templates fill `{{contact.plan}}`, `{{contact.stage}}` and `{{contact.score}}` from the
/// contact; an unset field is reported missing, not left blank.
#[test]
fn templates_use_fields_stage_and_score() {
    let mut h = with_fields(harness(160, 45));
    select_named(&mut h, "Ann Lee");
    let conv = h.app.queue.current().unwrap().id;
    h.keys(":set plan enterprise<CR>:stage customer<CR>:score 42<CR>")
        .unwrap();
    let vars = crate::canned::Vars::from_store(&h.store, conv, "Bob", None).unwrap();
    assert_eq!(vars.get("contact.plan"), Some("enterprise"));
    assert_eq!(vars.get("contact.stage"), Some("customer"));
    assert_eq!(vars.get("contact.score"), Some("42"));
    assert_eq!(vars.get("contact.renewal"), None);
    assert_eq!(vars.get("contact.first_name"), Some("Ann"));
}

/// `Request::Pipeline`: counts per stage in the config's order (no stage last), a stage's
/// contacts by score with keyset pages, a viewer may read it and sees only their teams'
/// contacts.
#[test]
fn the_pipeline_counts_stages_and_pages_a_stage_by_score_within_the_scope() {
    use crate::api::{Request, Response, Role};
    let mut h = with_fields(harness(160, 45));
    let cfg = h.store.fields_config();
    let rows = h.app.queue.rows.clone();
    let id = |name: &str| rows.iter().find(|r| r.contact_name == name).unwrap();
    let (ann, chen, bob) = (id("Ann Lee"), id("Chen Wei"), id("Bob Smith"));
    for (r, stage, score) in [
        (ann, "customer", 30),
        (chen, "customer", 50),
        (bob, "lead", 5),
    ] {
        h.store
            .set_contact_stage(r.contact_id, &cfg, Some(stage), "me", 1)
            .unwrap();
        h.store
            .change_contact_score(
                r.contact_id,
                crate::fields::ScoreChange::Set(score),
                "me",
                1,
            )
            .unwrap();
    }
    h.store
        .set_conversation_team(chen.id, Some("sales"), "me", 2)
        .unwrap();
    let ask = |h: &mut Harness, who: &crate::server::Identity, stage: &str, after| {
        match crate::server::handler::handle(
            &mut h.store,
            who,
            Request::Pipeline {
                seq: 1,
                stage: Some(stage.into()),
                after,
                limit: 1,
            },
        ) {
            Response::Pipeline { pipeline, .. } => *pipeline,
            other => panic!("{other:?}"),
        }
    };
    let admin = h.who.clone();
    let p = ask(&mut h, &admin, "customer", None);
    let count = |p: &crate::store::Pipeline, s: &str| {
        p.counts
            .iter()
            .find(|(x, _)| x.as_deref() == Some(s))
            .map(|c| c.1)
    };
    assert_eq!(
        p.counts
            .iter()
            .take(4)
            .map(|c| c.0.clone().unwrap())
            .collect::<Vec<_>>(),
        ["lead", "qualified", "customer", "churned"]
    );
    assert_eq!(
        (
            count(&p, "customer"),
            count(&p, "lead"),
            count(&p, "qualified")
        ),
        (Some(2), Some(1), Some(0))
    );
    assert_eq!(p.counts.last().unwrap().0, None, "no stage comes last");
    assert_eq!(p.rows.len(), 1);
    assert_eq!((p.rows[0].name.as_str(), p.rows[0].score), ("Chen Wei", 50));
    assert_eq!(p.rows[0].conversation, Some(chen.id));
    let p2 = ask(&mut h, &admin, "customer", p.next);
    assert_eq!(p2.rows[0].name, "Ann Lee");
    assert_eq!(p2.next, None);
    let viewer = crate::server::Identity {
        role: Role::Viewer,
        teams: vec!["support".into()],
        agent: "vic".into(),
        ..admin.clone()
    };
    let p = ask(&mut h, &viewer, "customer", None);
    assert_eq!(count(&p, "customer"), Some(1), "chen is in sales");
    assert_eq!(p.rows[0].name, "Ann Lee");
    // A viewer cannot edit.
    match crate::server::handler::handle(
        &mut h.store,
        &viewer,
        Request::ContactEdit {
            contact: ann.contact_id,
            verb: crate::actions::Verb::Stage(Some("lead".into())),
        },
    ) {
        Response::Refused(r) => assert!(r.contains("agent role"), "{r}"),
        other => panic!("{other:?}"),
    }
}
