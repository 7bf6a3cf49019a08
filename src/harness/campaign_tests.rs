//! The campaigns view (`:campaigns`) through the real keymap, against the real campaign
//! requests on the fixture's store: progress per campaign, Enter for a campaign's failures
//! (an opted-out contact), Enter back, and `:campaign stop NAME`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{NOW, harness};
use crate::campaign::{Campaign, CampaignConfig, Step};
use crate::model::{Channel, IdentityKind};
use crate::store::campaign::StepText;

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

const CAMPAIGNS: &str = r#"
[[campaigns]]
name = "tg-launch"
segment = "channel:telegram"
channels = ["telegram"]
[[campaigns.steps]]
after = "0d"
text = "We launched!"
[[campaigns.steps]]
after = "3d"
text = "How is it going?"

[[campaigns]]
name = "mail-news"
segment = "channel:email"
channels = ["email"]
[[campaigns.steps]]
after = "0d"
text = "News"

[[campaigns]]
name = "later"
segment = "is:vip"
[[campaigns.steps]]
after = "0d"
text = "Hi"
"#;

#[test]
fn the_campaigns_view_shows_progress_and_failures() {
    let mut h = harness(110, 16);
    h.campaigns = CampaignConfig::from_toml(CAMPAIGNS).unwrap();
    {
        let tx = h.store.write().unwrap();
        tx.set_consent(
            Channel::Email,
            IdentityKind::Email,
            "dana@example.org",
            true,
            "unsubscribe",
            "email",
            NOW - 1000,
        )
        .unwrap();
        tx.commit().unwrap();
    }
    for name in ["tg-launch", "mail-news"] {
        let c = h.campaigns.get(name).unwrap().clone();
        h.store.campaign_start(&c, "admin", NOW).unwrap();
    }
    let cfg = h.campaigns.clone();
    let r = h
        .store
        .campaign_tick(&cfg, &Default::default(), &text_only, NOW)
        .unwrap();
    assert_eq!(r.sent, 3, "{r:?}");

    h.keys(":campaigns<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("tg-launch"), "{screen}");
    insta::assert_snapshot!("campaigns_list_110x16", screen);

    // Enter on mail-news: its failures (Dana opted out of email).
    h.keys("j<CR>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("Dana Roe"), "{screen}");
    assert!(screen.contains("consent"), "{screen}");
    insta::assert_snapshot!("campaigns_failures_110x16", screen);

    // Enter goes back; Esc closes; :campaign stop stops the running one.
    h.keys("<CR>").unwrap();
    assert!(h.screen().unwrap().contains("tg-launch"));
    h.keys("<Esc>:campaign stop tg-launch<CR>").unwrap();
    let st = h
        .store
        .campaign_status(h.campaigns.get("tg-launch").unwrap())
        .unwrap();
    assert!(st.stopped && !st.running, "{st:?}");
    h.keys(":campaign go<CR>").unwrap();
    assert!(h.screen().unwrap().contains(":campaign stop NAME"));
}
