//! Campaigns in the store: dry-run exclusions, consent before queueing, leaving on a reply,
//! stop, step delays on an injected clock, business hours, pacing and daily caps.

use super::campaign::{HORIZON_MS, StepText};
use super::{Store, StoreError};
use crate::campaign::{Campaign, Step};
use crate::identity::Claim;
use crate::ingest::{Inbound, Ingested, Settings, ingest};
use crate::model::{Channel, ContactId, ConversationId, Direction, IdentityKind, Millis};

/// Saturday 2026-12-05 12:00 UTC.
const SAT_NOON: Millis = 1_796_472_000_000;
/// Monday 2026-12-07 09:00 UTC.
const MON_NINE: Millis = 1_796_634_000_000;
const DAY: Millis = 86_400_000;

fn config(text: &str) -> crate::config::Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.toml");
    std::fs::write(&path, text).unwrap();
    let env = crate::config::Env {
        config: None,
        data_dir: None,
        user: Some("ann".into()),
        xdg_config_dir: Some(dir.path().join("xdg-config/braid")),
        xdg_data_dir: Some(dir.path().join("xdg-data/braid")),
        home: Some(dir.path().join("home")),
    };
    crate::config::Config::load_with(Some(&path), Some(dir.path()), &env).unwrap()
}

fn text_only(
    _: &Campaign,
    s: &Step,
    _: Channel,
    _: &crate::canned::Vars,
) -> Result<StepText, String> {
    Ok(StepText {
        body: s.text.clone().unwrap_or_default(),
        meta: None,
        templated: false,
    })
}

fn wa_ok(c: &Campaign, s: &Step, ch: Channel, v: &crate::canned::Vars) -> Result<StepText, String> {
    if ch == Channel::WhatsApp {
        return Ok(StepText {
            body: "tpl".into(),
            meta: Some(r#"{"template":{"name":"welcome_v1","language":"en","params":[]}}"#.into()),
            templated: true,
        });
    }
    text_only(c, s, ch, v)
}

fn write_in(
    s: &mut Store,
    channel: Channel,
    kind: IdentityKind,
    who: &str,
    id: &str,
    at: Millis,
) -> (ConversationId, ContactId) {
    let inbound = Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: vec![],
        customer_name: Some(format!("Customer {who}")),
        author: None,
        subject: Some("Hello".into()),
        body: "hi".into(),
        sent_at: at,
        meta: None,
        cursor: None,
    };
    match ingest(s, &inbound, &Settings::default()).unwrap() {
        Ingested::Stored {
            conversation,
            contact,
            ..
        } => (conversation, contact),
        other => panic!("{other:?}"),
    }
}

fn tagged(s: &mut Store, channel: Channel, kind: IdentityKind, who: &str, at: Millis) -> ContactId {
    let (conv, contact) = write_in(s, channel, kind, who, &format!("m-{who}"), at);
    s.tag(conv, "trial", false, "bob", at).unwrap();
    contact
}

fn opt_out(s: &mut Store, channel: Channel, kind: IdentityKind, who: &str, at: Millis) {
    let tx = s.write().unwrap();
    tx.set_consent(channel, kind, who, true, "STOP", "sms", at)
        .unwrap();
    tx.commit().unwrap();
}

fn kinds(s: &Store, kind: &str) -> Vec<serde_json::Value> {
    s.events_since(crate::model::EventId(0), 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| serde_json::from_str(e.data.as_deref().unwrap_or("null")).unwrap())
        .collect()
}

const TWO_STEPS: &str = r#"
[[campaigns]]
name = "trial"
segment = "tag:trial"
channels = ["telegram", "sms"]

[[campaigns.steps]]
after = "0d"
text = "Welcome!"

[[campaigns.steps]]
after = "3d"
unless = "replied"
text = "Still with us?"
"#;

#[test]
fn a_dry_run_says_who_is_excluded_and_why_and_writes_nothing() {
    let cfg = config(
        r#"
[[campaigns]]
name = "trial"
segment = "tag:trial"
channels = ["telegram", "sms", "whatsapp"]

[[campaigns.steps]]
after = "0d"
text = "Welcome!"
"#,
    );
    let c = cfg.workspace.campaigns.get("trial").unwrap().clone();
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    let tg = tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1001",
        t0 - DAY,
    );
    let email_only = tagged(
        &mut s,
        Channel::Email,
        IdentityKind::Email,
        "ann@x.org",
        t0 - DAY,
    );
    let stopped = tagged(
        &mut s,
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654301",
        t0 - DAY,
    );
    opt_out(
        &mut s,
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654301",
        t0 - 1000,
    );
    let wa = tagged(
        &mut s,
        Channel::WhatsApp,
        IdentityKind::Phone,
        "+5511987654302",
        t0 - DAY,
    );
    // Not in the segment.
    write_in(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1002",
        "x",
        t0 - DAY,
    );
    let outbox = s.outbox_counts().unwrap();

    let d = s.campaign_dry_run(&c, t0).unwrap();
    assert_eq!(d.matched, 4);
    assert_eq!(
        d.per_channel,
        vec![(Channel::Telegram, 1), (Channel::Sms, 1)]
    );
    let why = |id: ContactId| {
        d.excluded
            .iter()
            .find(|e| e.contact == id)
            .map(|e| e.kind.clone())
    };
    assert_eq!(why(tg), None);
    assert_eq!(why(email_only).as_deref(), Some("no identity"));
    assert_eq!(why(stopped).as_deref(), Some("consent"));
    // Their last channel (WhatsApp) comes first but takes only templates, which the step
    // lacks: the same number's SMS is next.
    assert_eq!(why(wa), None, "{d:?}");
    assert_eq!(
        s.outbox_counts().unwrap(),
        outbox,
        "a dry run queues nothing"
    );
    assert!(kinds(&s, "campaign_started").is_empty());

    // WhatsApp alone, no template on the step.
    let mut wa_only = c.clone();
    wa_only.channels = vec![Channel::WhatsApp];
    let d = s.campaign_dry_run(&wa_only, t0).unwrap();
    let e = d.excluded.iter().find(|e| e.contact == wa).unwrap();
    assert_eq!(e.kind, "whatsapp template");
    assert!(e.detail.contains("whatsapp_template"), "{}", e.detail);

    // Started: enrolled once; a second run says "already enrolled".
    let started = s.campaign_start(&c, "admin", t0).unwrap();
    assert_eq!(started.enrolled(), 2);
    assert_eq!(kinds(&s, "campaign_started").len(), 1);
    let again = s.campaign_dry_run(&c, t0 + 1000).unwrap();
    assert_eq!(again.enrolled(), 0);
    assert_eq!(
        again
            .excluded
            .iter()
            .filter(|e| e.kind == "already enrolled")
            .count(),
        2
    );
}

#[test]
fn a_step_is_refused_for_a_contact_who_opted_out_after_enrolment() {
    let cfg =
        config(&TWO_STEPS.replace(r#"channels = ["telegram", "sms"]"#, r#"channels = ["sms"]"#));
    let c = cfg.workspace.campaigns.get("trial").unwrap().clone();
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    let a = tagged(
        &mut s,
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654301",
        t0 - DAY,
    );
    s.campaign_start(&c, "admin", t0).unwrap();
    opt_out(
        &mut s,
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654301",
        t0 + 10,
    );
    let outbox = s.outbox_counts().unwrap();
    let r = s
        .campaign_tick(
            &cfg.workspace.campaigns,
            &cfg.workspace.sla,
            &text_only,
            t0 + 20,
        )
        .unwrap();
    assert_eq!((r.sent, r.excluded), (0, 1));
    assert_eq!(s.outbox_counts().unwrap(), outbox, "nothing queued");
    let st = s.campaign_status(&c).unwrap();
    assert_eq!(st.excluded, 1);
    assert_eq!(st.failures[0].contact, a);
    assert!(
        st.failures[0].reason.starts_with("consent:"),
        "{:?}",
        st.failures
    );
    assert!(kinds(&s, "campaign_step_sent").is_empty());
}

#[test]
fn steps_wait_their_delay_and_a_reply_leaves_the_sequence() {
    let cfg = config(TWO_STEPS);
    let c = cfg.workspace.campaigns.get("trial").unwrap().clone();
    let camps = &cfg.workspace.campaigns;
    let sla = &cfg.workspace.sla;
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1001",
        t0 - DAY,
    );
    let replier = tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1002",
        t0 - DAY,
    );
    s.campaign_start(&c, "admin", t0).unwrap();

    let r = s.campaign_tick(camps, sla, &text_only, t0).unwrap();
    assert_eq!(r.sent, 2, "day 0: the welcome to both");
    assert_eq!(s.campaign_status(&c).unwrap().sent_per_step, vec![2, 0]);
    // Nothing more until day 3.
    let r = s
        .campaign_tick(camps, sla, &text_only, t0 + 2 * DAY)
        .unwrap();
    assert_eq!(r.sent, 0);
    // One writes back on another channel the same contact has... here: Telegram.
    write_in(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1002",
        "reply",
        t0 + DAY,
    );
    let r = s
        .campaign_tick(camps, sla, &text_only, t0 + 3 * DAY)
        .unwrap();
    assert_eq!((r.sent, r.left), (1, 1));
    let st = s.campaign_status(&c).unwrap();
    assert_eq!(st.sent_per_step, vec![2, 1]);
    assert_eq!((st.done, st.left_replied, st.active), (1, 1, 0));
    let left = kinds(&s, "campaign_left");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["reason"], "replied");
    assert_eq!(kinds(&s, "campaign_step_sent").len(), 3);
    let _ = replier;
}

#[test]
fn a_stop_prevents_every_step_not_yet_queued() {
    let cfg = config(TWO_STEPS);
    let c = cfg.workspace.campaigns.get("trial").unwrap().clone();
    let camps = &cfg.workspace.campaigns;
    let sla = &cfg.workspace.sla;
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    for i in 0..3 {
        tagged(
            &mut s,
            Channel::Telegram,
            IdentityKind::Telegram,
            &format!("10{i}"),
            t0 - DAY,
        );
    }
    s.campaign_start(&c, "admin", t0).unwrap();
    assert_eq!(s.campaign_tick(camps, sla, &text_only, t0).unwrap().sent, 3);
    assert_eq!(s.campaign_stop("trial", "admin", t0 + 1000).unwrap(), 3);
    assert_eq!(kinds(&s, "campaign_stopped").len(), 1);
    let outbox = s.outbox_counts().unwrap();
    let r = s
        .campaign_tick(camps, sla, &text_only, t0 + 4 * DAY)
        .unwrap();
    assert_eq!(r.sent, 0);
    assert_eq!(s.outbox_counts().unwrap(), outbox);
    let st = s.campaign_status(&c).unwrap();
    assert!(st.stopped && !st.running);
    assert_eq!(st.sent_per_step, vec![3, 0]);
    // Stopping again says it is not running.
    let e = s.campaign_stop("trial", "admin", t0 + 2000).unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref m) if m.contains("not running")),
        "{e}"
    );
}

#[test]
fn outside_business_hours_a_step_waits_for_the_next_opening() {
    let cfg = config(&format!(
        "[[hours]]\nname = \"office\"\nzone = \"UTC\"\nweekdays = [\"09:00-17:00\"]\n{}",
        TWO_STEPS
    ));
    let c = cfg.workspace.campaigns.get("trial").unwrap().clone();
    assert_eq!(
        c.hours.as_deref(),
        Some("office"),
        "the first [[hours]] by default"
    );
    let camps = &cfg.workspace.campaigns;
    let sla = &cfg.workspace.sla;
    let mut s = Store::open_in_memory().unwrap();
    tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1001",
        SAT_NOON - DAY,
    );
    s.campaign_start(&c, "admin", SAT_NOON).unwrap();
    let r = s.campaign_tick(camps, sla, &text_only, SAT_NOON).unwrap();
    assert_eq!((r.sent, r.deferred), (0, 1), "Saturday: closed");
    assert_eq!(s.campaign_status(&c).unwrap().next_at, Some(MON_NINE));
    assert_eq!(
        s.campaign_tick(camps, sla, &text_only, MON_NINE - 1000)
            .unwrap()
            .sent,
        0
    );
    assert_eq!(
        s.campaign_tick(camps, sla, &text_only, MON_NINE)
            .unwrap()
            .sent,
        1
    );
}

#[test]
fn sends_are_paced_per_channel_and_chat_and_capped_per_day() {
    let cfg = config(
        r#"
[campaign_pacing]
telegram_per_second = 30
sms_per_second = 1
daily_caps = { email = 3 }

[[campaigns]]
name = "tg"
segment = "tag:trial channel:telegram"
channels = ["telegram"]
[[campaigns.steps]]
after = "0d"
text = "one"
[[campaigns.steps]]
after = "0d"
text = "two"

[[campaigns]]
name = "sms"
segment = "tag:trial channel:sms"
channels = ["sms"]
[[campaigns.steps]]
after = "0d"
text = "hi"

[[campaigns]]
name = "mail"
segment = "tag:trial channel:email"
channels = ["email"]
[[campaigns.steps]]
after = "0d"
text = "hi"
"#,
    );
    let camps = &cfg.workspace.campaigns;
    let sla = &cfg.workspace.sla;
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    for i in 0..40 {
        tagged(
            &mut s,
            Channel::Telegram,
            IdentityKind::Telegram,
            &format!("{}", 5000 + i),
            t0 - DAY,
        );
    }
    for i in 0..15 {
        tagged(
            &mut s,
            Channel::Sms,
            IdentityKind::Phone,
            &format!("+55119876544{i:02}"),
            t0 - DAY,
        );
    }
    for i in 0..5 {
        tagged(
            &mut s,
            Channel::Email,
            IdentityKind::Email,
            &format!("c{i}@x.org"),
            t0 - DAY,
        );
    }
    for name in ["tg", "sms", "mail"] {
        s.campaign_start(camps.get(name).unwrap(), "admin", t0)
            .unwrap();
    }
    // Ticks every second for a minute, like the server.
    for k in 0..60 {
        s.campaign_tick(camps, sla, &text_only, t0 + k * 1000)
            .unwrap();
    }
    // Telegram: 80 sends (two steps), never two within 1/30 s, one chat never twice within 1 s.
    let tg = s.campaign_slots("tg", Channel::Telegram).unwrap();
    assert_eq!(tg.len(), 80);
    for w in tg.windows(2) {
        assert!(w[1].1 - w[0].1 >= 34, "{w:?}");
    }
    let mut by_chat: std::collections::BTreeMap<&str, Vec<Millis>> = Default::default();
    for (to, at) in &tg {
        by_chat.entry(to).or_default().push(*at);
    }
    for (chat, at) in &by_chat {
        assert_eq!(at.len(), 2);
        assert!(at[1] - at[0] >= 1000, "{chat}: {at:?}");
    }
    // No window of one second holds more than 30.
    for (i, (_, a)) in tg.iter().enumerate() {
        let n = tg[i..].iter().take_while(|(_, b)| *b < a + 1000).count();
        assert!(n <= 30, "{n} in a second from {a}");
    }
    // SMS: 1/s; each was queued at most HORIZON ahead of its tick.
    let sms = s.campaign_slots("sms", Channel::Sms).unwrap();
    assert_eq!(sms.len(), 15);
    for w in sms.windows(2) {
        assert!(w[1].1 - w[0].1 >= 1000, "{w:?}");
    }
    assert!(sms.last().unwrap().1 <= t0 + 14_000 + HORIZON_MS);
    // Email: the daily cap of 3; the other two wait for tomorrow (UTC).
    let mail = s.campaign_slots("mail", Channel::Email).unwrap();
    assert_eq!(mail.len(), 3);
    let st = s.campaign_status(camps.get("mail").unwrap()).unwrap();
    assert_eq!(st.active, 2);
    let tomorrow = t0 - t0.rem_euclid(DAY) + DAY;
    assert_eq!(st.next_at, Some(tomorrow));
    s.campaign_tick(camps, sla, &text_only, tomorrow).unwrap();
    assert_eq!(s.campaign_slots("mail", Channel::Email).unwrap().len(), 5);
}

#[test]
fn whatsapp_goes_as_an_approved_template_outside_the_window() {
    let cfg = config(
        r#"
[[campaigns]]
name = "wa"
segment = "tag:trial"
channels = ["whatsapp"]
[[campaigns.steps]]
after = "0d"
text = "hi"
whatsapp_template = "welcome_v1"
"#,
    );
    let c = cfg.workspace.campaigns.get("wa").unwrap().clone();
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    // Wrote five days ago: outside the 24-hour window.
    tagged(
        &mut s,
        Channel::WhatsApp,
        IdentityKind::Phone,
        "+5511987654302",
        t0 - 5 * DAY,
    );
    s.campaign_start(&c, "admin", t0).unwrap();
    let r = s
        .campaign_tick(&cfg.workspace.campaigns, &cfg.workspace.sla, &wa_ok, t0)
        .unwrap();
    assert_eq!(
        r.sent,
        1,
        "{r:?} {:?}",
        s.campaign_status(&c).unwrap().failures
    );
}

#[test]
fn an_sms_stop_keeps_marketing_off_telegram_too() {
    let cfg = config(
        TWO_STEPS
            .replace(
                r#"channels = ["telegram", "sms"]"#,
                r#"channels = ["telegram"]"#,
            )
            .as_str(),
    );
    let c = cfg.workspace.campaigns.get("trial").unwrap().clone();
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    let ann = tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1001",
        t0 - DAY,
    );
    s.add_identity(ann, IdentityKind::Phone, "+5511987654301", "bob", t0 - DAY)
        .unwrap();
    let before = s.campaign_dry_run(&c, t0).unwrap();
    assert_eq!(before.enrolled(), 1);
    // She texts STOP to the SMS number.
    write_in(
        &mut s,
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654301",
        "stop-1",
        t0 - 1000,
    );
    let inbound = s.timeline(ann, None, 10).unwrap();
    assert!(!inbound.is_empty());
    let tx = s.write().unwrap();
    tx.set_consent(
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654301",
        true,
        "STOP",
        "sms",
        t0 - 900,
    )
    .unwrap();
    tx.commit().unwrap();
    let d = s.campaign_dry_run(&c, t0).unwrap();
    assert_eq!(d.enrolled(), 0, "{d:?}");
    assert_eq!(d.excluded[0].kind, "consent", "{d:?}");
}

#[test]
fn segments_filter_on_stage_and_custom_fields() {
    let cfg = config(
        r#"
[[fields]]
name = "plan"
type = "choice"
choices = ["free", "pro"]

[[campaigns]]
name = "upsell"
segment = "stage:lead plan:free tag:trial"
[[campaigns.steps]]
after = "0d"
text = "Go pro?"
"#,
    );
    let c = cfg.workspace.campaigns.get("upsell").unwrap().clone();
    let mut s = Store::open_in_memory().unwrap();
    let t0 = SAT_NOON;
    let a = tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1001",
        t0 - DAY,
    );
    let b = tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1002",
        t0 - DAY,
    );
    let d = tagged(
        &mut s,
        Channel::Telegram,
        IdentityKind::Telegram,
        "1003",
        t0 - DAY,
    );
    let f = &cfg.workspace.fields;
    for (who, plan, stage) in [
        (a, "free", "lead"),
        (b, "pro", "lead"),
        (d, "free", "customer"),
    ] {
        s.set_contact_field(who, f, "plan", Some(plan), "bob", t0 - 100)
            .unwrap();
        s.set_contact_stage(who, f, Some(stage), "bob", t0 - 100)
            .unwrap();
    }
    let dr = s.campaign_dry_run(&c, t0).unwrap();
    assert_eq!(dr.matched, 1, "{dr:?}");
    assert_eq!(dr.per_channel, vec![(Channel::Telegram, 1)]);
}

#[test]
fn config_mistakes_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let env = crate::config::Env {
        config: None,
        data_dir: None,
        user: Some("ann".into()),
        xdg_config_dir: Some(dir.path().join("x")),
        xdg_data_dir: Some(dir.path().join("d")),
        home: Some(dir.path().join("h")),
    };
    for (text, key, says) in [
        (
            TWO_STEPS.replace("tag:trial", "trial"),
            "campaigns.segment",
            "KEY:VALUE",
        ),
        (
            TWO_STEPS.replace("\"3d\"", "\"soon\""),
            "campaigns.steps.after",
            "bad duration",
        ),
        (
            TWO_STEPS.replace("\"0d\"", "\"5d\""),
            "campaigns.steps.after",
            "previous",
        ),
        (
            TWO_STEPS.replace("unless = \"replied\"", "unless = \"opened\""),
            "campaigns.steps.unless",
            "replied",
        ),
        (
            format!("{TWO_STEPS}hours = \"nope\"\n").replace(
                "text = \"Still with us?\"\nhours",
                "text = \"x\"\n[[campaigns]]\nname = \"b\"\nsegment = \"tag:x\"\nhours",
            ),
            "campaigns.hours",
            "no [[hours]]",
        ),
        (
            format!("{TWO_STEPS}\n[campaign_pacing]\nsms_per_second = 0\n"),
            "campaign_pacing.sms_per_second",
            "at least 1",
        ),
    ] {
        let path = dir.path().join("braid.toml");
        std::fs::write(&path, &text).unwrap();
        let e = crate::config::Config::load_with(Some(&path), Some(dir.path()), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(says), "{key}: {e}");
        assert!(e.contains(":"), "{e}");
    }
}
