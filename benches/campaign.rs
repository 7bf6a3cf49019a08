//! Campaign send rate against each channel's limit. N contacts per channel (default 5,000;
//! `BRAID_BENCH_CAMPAIGN=500` for the small run CI does) are enrolled in one campaign per
//! channel (Telegram, SMS, email, WhatsApp with an approved template), and the server's tick
//! runs once a second of a simulated clock, as the campaign task does, until every step is
//! queued. For each channel it prints:
//!
//! - the paced rate: sends / (last slot - first slot), the rate the outbox is told to send at,
//!   against the configured limit (Telegram 30/s, WhatsApp 20/s, SMS 1/s, email 60/min): it
//!   must never be above it, and should be close to it (the pacer is not wasting the limit);
//! - the densest second (the most slots in any 1 s window);
//! - the wall-clock cost of the ticks per 1,000 sends queued (what the pacing costs the
//!   server: it must stay far below the time the sends take).
//!
//! The rate measured at a real HTTP server (the outbox and the Telegram sender in the loop)
//! is the integration test `a_campaign_honours_telegrams_rate_limits_measured_at_the_server`
//! in tests/telegram.rs.
//!
//! `cargo bench --bench campaign`; prints one line per channel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::campaign::{Campaign, CampaignConfig, Step};
use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind};
use braid::store::Store;
use braid::store::campaign::StepText;
use std::time::Instant;

const T0: i64 = 1_796_472_000_000;

fn render(
    _: &Campaign,
    s: &Step,
    ch: Channel,
    _: &braid::canned::Vars,
) -> Result<StepText, String> {
    Ok(if ch == Channel::WhatsApp {
        StepText {
            body: "Hi there".into(),
            meta: Some(r#"{"template":{"name":"hello","language":"en","params":[]}}"#.into()),
            templated: true,
        }
    } else {
        StepText {
            body: s.text.clone().unwrap_or_default(),
            meta: None,
            templated: false,
        }
    })
}

fn contact(ch: Channel, i: usize) -> Inbound {
    let (kind, who) = match ch {
        Channel::Telegram => (IdentityKind::Telegram, format!("{}", 800_000 + i)),
        Channel::Email => (IdentityKind::Email, format!("c{i}@corp.example")),
        Channel::Sms => (IdentityKind::Phone, format!("+55119{:08}", 10_000_000 + i)),
        _ => (IdentityKind::Phone, format!("+55219{:08}", 10_000_000 + i)),
    };
    Inbound {
        channel: ch,
        account: String::new(),
        external_id: format!("bench-{}-{i}", ch.as_str()),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: Vec::new(),
        customer_name: Some(format!("Customer {i}")),
        author: None,
        subject: Some("Hello".into()),
        body: "hi".into(),
        sent_at: T0 - 5 * 86_400_000,
        meta: None,
        cursor: None,
    }
}

fn main() {
    let n: usize = std::env::var("BRAID_BENCH_CAMPAIGN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let channels = [
        (Channel::Telegram, 30.0, "30/s"),
        (Channel::WhatsApp, 20.0, "20/s"),
        (Channel::Sms, 1.0, "1/s"),
        (Channel::Email, 1.0, "60/min"),
    ];
    let mut toml = String::new();
    for (ch, _, _) in &channels {
        toml.push_str(&format!(
            "[[campaigns]]\nname = \"{c}\"\nsegment = \"channel:{c}\"\nchannels = [\"{c}\"]\n\
             [[campaigns.steps]]\nafter = \"0d\"\ntext = \"News\"\nwhatsapp_template = \"hello\"\n\n",
            c = ch.as_str()
        ));
    }
    let cfg = CampaignConfig::from_toml(&toml).unwrap();
    let sla = braid::sla::SlaConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open_dir(dir.path()).unwrap();
    let st = Settings::default();
    let loaded = Instant::now();
    for (ch, _, _) in &channels {
        // SMS goes at 1/s and email at 1/s: a tenth of the contacts keeps the run short.
        let count = if matches!(ch, Channel::Sms | Channel::Email) {
            (n / 10).max(10)
        } else {
            n
        };
        for i in 0..count {
            ingest(&mut s, &contact(*ch, i), &st).unwrap();
        }
    }
    println!(
        "campaign: {n} contacts per fast channel, {} per slow one, loaded in {:.1}s",
        (n / 10).max(10),
        loaded.elapsed().as_secs_f64()
    );
    for (ch, _, _) in &channels {
        let c = cfg.get(ch.as_str()).unwrap();
        s.campaign_start(c, "bench", T0).unwrap();
    }
    let mut tick_ms = 0.0;
    let mut now = T0;
    loop {
        let t = Instant::now();
        let r = s.campaign_tick(&cfg, &sla, &render, now).unwrap();
        tick_ms += t.elapsed().as_secs_f64() * 1000.0;
        let active: usize = cfg
            .campaigns
            .iter()
            .map(|c| s.campaign_status(c).unwrap().active)
            .sum();
        if active == 0 && r.sent == 0 {
            break;
        }
        now += 1000;
    }
    let mut total = 0;
    for (ch, limit, label) in &channels {
        let slots = s.campaign_slots(ch.as_str(), *ch).unwrap();
        total += slots.len();
        let first = slots.first().unwrap().1;
        let last = slots.last().unwrap().1;
        let window = if *ch == Channel::Email { 60_000 } else { 1000 };
        let rate = (slots.len() - 1) as f64 / ((last - first) as f64 / window as f64);
        let mut densest = 0;
        let mut j = 0;
        for i in 0..slots.len() {
            while slots[j].1 + window <= slots[i].1 {
                j += 1;
            }
            densest = densest.max(i + 1 - j);
        }
        let unit = if *ch == Channel::Email { "min" } else { "s" };
        println!(
            "campaign {:<9} {:>6} sends: paced {:.2}/{unit} (limit {label}, {:.1}% of it), densest \
             {unit} {densest}{}",
            ch.as_str(),
            slots.len(),
            rate,
            rate / (limit * if *ch == Channel::Email { 60.0 } else { 1.0 }) * 100.0,
            if rate > limit * if *ch == Channel::Email { 60.0 } else { 1.0 } {
                "  OVER THE LIMIT"
            } else {
                ""
            }
        );
    }
    println!(
        "campaign ticks: {} sends queued, {:.1} ms of ticks per 1,000 sends ({} simulated seconds)",
        total,
        tick_ms / total as f64 * 1000.0,
        (now - T0) / 1000
    );
}
