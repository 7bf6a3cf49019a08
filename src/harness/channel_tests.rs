//! The composer on channels with rules of their own: WhatsApp's 24-hour window and its
//! templates, Instagram's human-agent week, an SMS opt-out, a call log nobody answers.

use super::Harness;
use super::tests::msg;
use crate::ingest::{Settings, ingest};
use crate::model::{Channel, Delivery, Direction, IdentityKind, Millis, now_millis};
use crate::store::Store;
use crate::template::Template;
use crate::tui::app::Mode;

const H: Millis = 3600 * 1000;

fn store_with(channel: Channel, kind: IdentityKind, who: &str, ago: Millis) -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let m = msg(
        channel,
        kind,
        who,
        "Ana Souza",
        "in-1",
        now_millis() - ago,
        "Oi! Where is my order?",
    );
    ingest(&mut s, &m, &Settings::default()).unwrap();
    s
}

fn composer_notice(h: &mut Harness) -> String {
    h.keys("r").unwrap();
    assert!(matches!(h.app.mode, Mode::Compose(_)), "composer not open");
    h.screen().unwrap()
}

fn template() -> Template {
    Template {
        name: "order_update".into(),
        language: "en".into(),
        text: "Hi {{1}}, your order {{2}} is on its way.".into(),
    }
}

#[test]
fn outside_whatsapps_window_a_free_reply_is_refused_and_a_template_goes() {
    let s = store_with(
        Channel::WhatsApp,
        IdentityKind::Phone,
        "+5511987654321",
        26 * H,
    );
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    h.templates = vec![template()];
    h.app.templates = vec![template()];
    let screen = composer_notice(&mut h);
    assert!(
        screen.contains("outside WhatsApp's 24-hour window"),
        "{screen}"
    );
    h.keys("Hello Ana<C-s>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("only an approved template can go"),
        "{screen}"
    );
    assert_eq!(h.store.outbox_counts().unwrap(), (0, 0), "nothing queued");
    // The draft is kept; Esc leaves the composer.
    h.keys("<Esc>").unwrap();
    h.keys(":template order_update Ana<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("takes 2 parameters"), "{screen}");
    assert_eq!(h.store.outbox_counts().unwrap(), (0, 0));
    h.keys(":template order_update Ana \"#4411\"<CR>").unwrap();
    assert_eq!(h.store.outbox_counts().unwrap(), (1, 0));
    let contact = h.app.queue.current().unwrap().contact_id;
    let tl = h.store.timeline(contact, None, 10).unwrap();
    let out = tl.iter().find(|m| m.direction == Direction::Out).unwrap();
    assert_eq!(out.body, "Hi Ana, your order #4411 is on its way.");
    assert_eq!(out.channel, Channel::WhatsApp);
    assert_eq!(out.delivery, Some(Delivery::Queued));
    h.keys(":template nope<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("no template 'nope' (configured: order_update"),
        "{screen}"
    );
}

#[test]
fn inside_the_window_the_composer_says_when_it_closes() {
    let s = store_with(
        Channel::WhatsApp,
        IdentityKind::Phone,
        "+5511987654321",
        3 * H,
    );
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    let screen = composer_notice(&mut h);
    assert!(
        screen.contains("WhatsApp's 24-hour window closes in 21 h"),
        "{screen}"
    );
    h.keys("Hello Ana<C-s>").unwrap();
    assert_eq!(h.store.outbox_counts().unwrap(), (1, 0));
}

#[test]
fn instagram_after_a_day_goes_as_a_human_agent_for_a_week() {
    let s = store_with(
        Channel::Instagram,
        IdentityKind::Instagram,
        "17841400000000",
        2 * 24 * H,
    );
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    let screen = composer_notice(&mut h);
    assert!(screen.contains("human agent's (HUMAN_AGENT)"), "{screen}");
    assert!(screen.contains("possible for 5 days more"), "{screen}");
}

#[test]
fn a_call_log_is_answered_on_another_channel() {
    let mut s = store_with(Channel::Sms, IdentityKind::Phone, "+5511987654321", 2 * H);
    let mut call = msg(
        Channel::Phone,
        IdentityKind::Phone,
        "+5511987654321",
        "Ana Souza",
        "call-1",
        now_millis() - H,
        "Inbound call · 2 min 10 s · answered",
    );
    call.account = "pbx".into();
    ingest(&mut s, &call, &Settings::default()).unwrap();
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    h.keys("r").unwrap();
    match &h.app.mode {
        Mode::Compose(c) => assert_eq!(c.channel, Some(Channel::Sms)),
        _ => panic!("composer not open"),
    }
    h.keys("<Esc>:reply_via phone<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("a call log cannot be answered"), "{screen}");
}

#[test]
fn the_channels_reports_show_on_the_reply_delivered_then_read() {
    let s = store_with(Channel::WhatsApp, IdentityKind::Phone, "+5511987654321", H);
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    h.keys("rObrigado!<C-s>").unwrap();
    let contact = h.app.queue.current().unwrap().contact_id;
    let out = h.store.timeline(contact, None, 10).unwrap();
    let reply = out
        .iter()
        .find(|m| m.direction == Direction::Out)
        .unwrap()
        .id;
    h.store.claim_outbox(now_millis(), 60_000, 10).unwrap();
    h.store
        .mark_sent(reply, "100", Some("wamid.X"), "worker", now_millis())
        .unwrap();
    let after = h.store.last_event_id().unwrap();
    let report = |h: &mut Harness, d: Delivery| {
        let tx = h.store.write().unwrap();
        tx.apply_delivery_report(
            Channel::WhatsApp,
            "wamid.X",
            d,
            None,
            "whatsapp",
            now_millis(),
        )
        .unwrap();
        tx.commit().unwrap();
    };
    report(&mut h, Delivery::Delivered);
    h.follow_feed(after).unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("delivered ✓✓"), "{screen}");
    let after = h.store.last_event_id().unwrap();
    report(&mut h, Delivery::Read);
    report(&mut h, Delivery::Delivered); // late: changes nothing
    h.follow_feed(after).unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("read ✓✓"), "{screen}");
}

#[test]
fn the_sms_composer_counts_segments_as_the_agent_types() {
    let s = store_with(Channel::Sms, IdentityKind::Phone, "+5511987654321", H);
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    h.keys("r").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("0 SMS · GSM-7 · 0/160"), "{screen}");
    h.keys(&"a".repeat(161)).unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("2 SMS · GSM-7 · 161/306"), "{screen}");
    h.keys("€").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("2 SMS · GSM-7 · 163/306"), "{screen}");
    h.keys("😀").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("UCS-2"), "{screen}");
}

#[test]
fn an_sms_opt_out_shows_in_the_profile_and_the_composer() {
    let mut s = store_with(Channel::Sms, IdentityKind::Phone, "+5511987654321", H);
    let tx = s.write().unwrap();
    tx.set_consent(
        Channel::Sms,
        IdentityKind::Phone,
        "+5511987654321",
        true,
        "STOP",
        "sms",
        now_millis() - 30 * 60_000,
    )
    .unwrap();
    tx.commit().unwrap();
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("✗ SMS opted out (STOP)"), "{screen}");
    h.keys("r").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("the customer opted out of SMS"), "{screen}");
    h.keys("hello<C-s>").unwrap();
    assert_eq!(h.store.outbox_counts().unwrap(), (0, 0));
}

#[test]
fn a_customer_on_many_channels_has_every_badge_in_the_profile() {
    let p = "+5511987654321";
    let mut s = store_with(Channel::WhatsApp, IdentityKind::Phone, p, 5 * H);
    let st = Settings::default();
    ingest(
        &mut s,
        &msg(
            Channel::Sms,
            IdentityKind::Phone,
            p,
            "Ana Souza",
            "s1",
            now_millis() - 4 * H,
            "sms",
        ),
        &st,
    )
    .unwrap();
    let mut tg = msg(
        Channel::Telegram,
        IdentityKind::Telegram,
        "777",
        "Ana Souza",
        "t1",
        now_millis() - 3 * H,
        "tg",
    );
    tg.linked = vec![crate::identity::Claim::new(IdentityKind::Phone, p)];
    ingest(&mut s, &tg, &st).unwrap();
    let mut mail = msg(
        Channel::Email,
        IdentityKind::Email,
        "ana@example.com",
        "Ana Souza",
        "e1",
        now_millis() - 2 * H,
        "mail",
    );
    mail.linked = vec![crate::identity::Claim::new(IdentityKind::Phone, p)];
    ingest(&mut s, &mail, &st).unwrap();
    // The call before the mail: "last via" shows the mail, so "☎ call" is the channels line's.
    let mut call = msg(
        Channel::Phone,
        IdentityKind::Phone,
        p,
        "Ana Souza",
        "c1",
        now_millis() - 4 * H - 60_000,
        "Inbound call",
    );
    call.account = "pbx".into();
    ingest(&mut s, &call, &st).unwrap();
    let mut h = Harness::new(s, "me", 160, 40, now_millis()).unwrap();
    assert_eq!(h.app.queue.rows.len(), 1, "one contact, one conversation");
    let screen = h.screen().unwrap();
    // The profile pane: the right-hand 35 columns.
    let profile: String = screen
        .lines()
        .map(|l| l.chars().skip(125).collect::<String>() + "\n")
        .collect();
    for badge in ["✉ mail", "✈ tg", "✆ wa", "☏ sms", "☎ call"] {
        assert!(profile.contains(badge), "{badge} missing:\n{profile}");
    }
}

/// A survey answer shows where agents read: a note on the conversation's timeline, and the
/// latest scores (with the newest comment) in the contact's profile.
#[test]
fn a_survey_answer_shows_on_the_timeline_and_in_the_profile() {
    let mut s = store_with(Channel::Telegram, IdentityKind::Telegram, "4242", H);
    let cfg = crate::csat::CsatConfig {
        enabled: true,
        ..Default::default()
    };
    let now = now_millis();
    s.derive_csat(&cfg, now).unwrap();
    let contact = s
        .contact_by_identity(IdentityKind::Telegram, "4242")
        .unwrap()
        .unwrap();
    let conv = s.active_conversation(contact).unwrap().unwrap();
    s.set_status(
        conv,
        crate::model::Status::Resolved,
        None,
        "bob",
        now - 2_000,
    )
    .unwrap();
    assert_eq!(s.derive_csat(&cfg, now - 1_500).unwrap().sent, 1);
    s.record_csat_button(
        conv,
        2,
        "took \u{1b}[2Jtwo days",
        Channel::Telegram,
        now - 1_000,
        IdentityKind::Telegram,
        "4242",
    )
    .unwrap();
    // A supervisor opens it again to follow up on the low score.
    s.set_status(conv, crate::model::Status::Open, None, "bob", now - 500)
        .unwrap();
    let mut h = Harness::new(s, "me", 160, 40, now).unwrap();
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("NOTE csat")
            && screen.contains("Customer satisfaction: 2/5 ★★☆☆☆ (on Telegram): “took two"),
        "{screen}"
    );
    assert!(screen.contains("csat     2/5"), "{screen}");
    assert!(screen.contains("“took two days”"), "{screen}");
    assert!(!screen.contains('\u{1b}'));
}
