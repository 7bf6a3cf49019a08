//! Campaigns (drip sequences), defined as code in the workspace config so they are reviewed
//! like everything else there:
//!
//! ```toml
//! [[campaigns]]
//! name = "trial-nurture"
//! segment = "tag:trial last_seen:<14d"     # who: see [`Segment`]
//! channels = ["telegram", "email", "sms"]  # preference order (default: every channel that
//!                                          # can take it, the contact's last used first)
//! hours = "office"                         # [[hours]] to send within (default: the first)
//!
//! [[campaigns.steps]]
//! after = "0d"                 # after enrolment
//! template = "welcome"         # a canned reply in templates/ (or text = "...")
//! whatsapp_template = "welcome_v1"  # an approved [[whatsapp.templates]] name
//!
//! [[campaigns.steps]]
//! after = "3d"
//! unless = "replied"           # a reply always ends the sequence; written for the reader
//! text = "Still there? ..."
//!
//! [campaign_pacing]
//! telegram_per_second = 30
//! per_chat_every = "1s"
//! sms_per_second = 1
//! whatsapp_per_second = 20
//! email_per_minute = 60
//! daily_caps = { email = 2000, sms = 500 }
//! ```
//!
//! The store ([`crate::store::campaign`]) enrols, paces and records; the server
//! (`server/campaign.rs`) walks due enrolments every second.

use crate::model::{Channel, Millis};
use serde::Deserialize;
use toml::Spanned;

/// The actor of campaign sends and events: `campaign:NAME`.
pub fn actor(name: &str) -> String {
    format!("campaign:{name}")
}

/// `last_seen:<14d` (newer than: active within the last 14 days) or `last_seen:>30d`
/// (older than: quiet for more than 30 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenFilter {
    Within(Millis),
    QuietFor(Millis),
}

/// A saved search over contacts. Terms are ANDed:
/// `tag:NAME` (one of the contact's conversations has it; `-tag:NAME` none has it),
/// `channel:NAME` (the contact has an identity that channel writes to), `stage:NAME`,
/// `is:vip`, `last_seen:<DURATION` / `last_seen:>DURATION`, and any other `FIELD:VALUE`
/// (a custom contact field equals the value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    pub tags: Vec<String>,
    pub not_tags: Vec<String>,
    pub channels: Vec<Channel>,
    pub stage: Option<String>,
    pub vip: bool,
    pub seen: Vec<SeenFilter>,
    pub fields: Vec<(String, String)>,
}

impl std::str::FromStr for Segment {
    type Err = String;

    fn from_str(s: &str) -> Result<Segment, String> {
        let mut seg = Segment::default();
        if s.trim().is_empty() {
            return Err(
                "an empty segment would take every contact: name some, e.g. \"tag:trial\" or \
                 \"last_seen:<30d\""
                    .into(),
            );
        }
        for term in s.split_whitespace() {
            let (neg, t) = match term.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, term),
            };
            let Some((key, value)) = t.split_once(':') else {
                return Err(format!(
                    "'{term}' is not a filter: write KEY:VALUE (tag:, -tag:, channel:, stage:, \
                     is:vip, last_seen:<14d, last_seen:>30d, or FIELD:VALUE)"
                ));
            };
            if value.is_empty() {
                return Err(format!("'{term}' has no value after ':'"));
            }
            let key = key.to_ascii_lowercase();
            if neg && key != "tag" {
                return Err(format!("'{term}': only tag: can be negated (-tag:NAME)"));
            }
            match key.as_str() {
                "tag" if neg => seg.not_tags.push(value.to_string()),
                "tag" => seg.tags.push(value.to_string()),
                "channel" => {
                    let c: Channel = value
                        .parse()
                        .map_err(|e: crate::model::ParseEnumError| format!("'{term}': {e}"))?;
                    if !c.replyable() {
                        return Err(format!("'{term}': nothing can be sent on {c}"));
                    }
                    seg.channels.push(c);
                }
                "stage" => {
                    if seg.stage.is_some() {
                        return Err(format!(
                            "'{term}': a contact has one stage; give stage: once"
                        ));
                    }
                    seg.stage = Some(value.to_ascii_lowercase());
                }
                "is" if value.eq_ignore_ascii_case("vip") => seg.vip = true,
                "is" => return Err(format!("'{term}': is: takes only vip")),
                "last_seen" => {
                    let (older, d) = if let Some(d) = value.strip_prefix('<') {
                        (false, d)
                    } else if let Some(d) = value.strip_prefix('>') {
                        (true, d)
                    } else {
                        return Err(format!(
                            "'{term}': write last_seen:<14d (active within 14 days) or \
                             last_seen:>30d (quiet for more than 30 days)"
                        ));
                    };
                    let ms =
                        crate::units::parse_duration(d).map_err(|e| format!("'{term}': {e}"))?;
                    seg.seen.push(if older {
                        SeenFilter::QuietFor(ms)
                    } else {
                        SeenFilter::Within(ms)
                    });
                }
                _ => {
                    if !key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(format!("'{term}': '{key}' is not a field name"));
                    }
                    seg.fields.push((key, value.to_string()));
                }
            }
        }
        Ok(seg)
    }
}

/// One step of a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// After enrolment (not after the previous step).
    pub after_ms: Millis,
    /// A canned reply's name (`templates/NAME.md`), rendered for the contact and channel.
    pub template: Option<String>,
    /// The text itself, when no canned reply is named.
    pub text: Option<String>,
    /// The approved WhatsApp template (campaigns write outside the 24-hour window).
    pub whatsapp_template: Option<String>,
}

/// A campaign as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub name: String,
    pub segment_text: String,
    pub segment: Segment,
    /// Preference order; empty: every channel that can take it, the contact's last first.
    pub channels: Vec<Channel>,
    /// The `[[hours]]` to send within (None: any time).
    pub hours: Option<String>,
    pub steps: Vec<Step>,
}

/// Per-channel pacing of campaign sends (Telegram's 30/s overall and 1/s per chat, SMS
/// throughput, an email rate) and daily caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    pub telegram_per_second: u32,
    pub whatsapp_per_second: u32,
    pub sms_per_second: u32,
    pub email_per_minute: u32,
    /// Any other channel (web chat, Instagram, Messenger).
    pub other_per_second: u32,
    /// The least time between two campaign messages to one chat / address.
    pub per_chat_every_ms: Millis,
    pub daily_caps: Vec<(Channel, u32)>,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            telegram_per_second: 30,
            whatsapp_per_second: 20,
            sms_per_second: 1,
            email_per_minute: 60,
            other_per_second: 5,
            per_chat_every_ms: 1000,
            daily_caps: Vec::new(),
        }
    }
}

impl Pacing {
    /// The least time between two campaign sends on `channel` (rounded up: never faster than
    /// the rate).
    pub fn interval_ms(&self, channel: Channel) -> Millis {
        let per = |n: u32, window: i64| -> Millis {
            let n = i64::from(n.max(1));
            (window + n - 1) / n
        };
        match channel {
            Channel::Telegram => per(self.telegram_per_second, 1000),
            Channel::WhatsApp => per(self.whatsapp_per_second, 1000),
            Channel::Sms => per(self.sms_per_second, 1000),
            Channel::Email => per(self.email_per_minute, 60_000),
            _ => per(self.other_per_second, 1000),
        }
    }

    pub fn daily_cap(&self, channel: Channel) -> Option<u32> {
        self.daily_caps
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, n)| *n)
    }
}

/// `[[campaigns]]` and `[campaign_pacing]`, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignConfig {
    pub campaigns: Vec<Campaign>,
    pub pacing: Pacing,
}

impl CampaignConfig {
    /// `[[campaigns]]` and `[campaign_pacing]` from a TOML text alone (no `[[hours]]`):
    /// for tests and benchmarks that build a workspace in code.
    pub fn from_toml(text: &str) -> Result<CampaignConfig, String> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            campaigns: Vec<Spanned<RawCampaign>>,
            campaign_pacing: Option<Spanned<RawPacing>>,
        }
        let d: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        resolve(&d.campaigns, d.campaign_pacing.as_ref(), &[])
            .map_err(|(_, key, m)| format!("{key}: {m}"))
    }

    pub fn get(&self, name: &str) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| c.name == name)
    }

    /// The campaign, or an error naming the ones there are.
    pub fn require(&self, name: &str) -> Result<&Campaign, String> {
        self.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.campaigns.iter().map(|c| c.name.as_str()).collect();
            format!(
                "no campaign '{}' in the workspace config (defined: {}): add [[campaigns]] name = \
                 \"...\"",
                crate::sanitize::line(name),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub after: Spanned<String>,
    pub unless: Option<Spanned<String>>,
    pub template: Option<Spanned<String>>,
    pub text: Option<Spanned<String>>,
    pub whatsapp_template: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaign {
    pub name: Spanned<String>,
    pub segment: Spanned<String>,
    pub channels: Option<Spanned<Vec<String>>>,
    pub hours: Option<Spanned<String>>,
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPacing {
    pub telegram_per_second: Option<Spanned<u32>>,
    pub whatsapp_per_second: Option<Spanned<u32>>,
    pub sms_per_second: Option<Spanned<u32>>,
    pub email_per_minute: Option<Spanned<u32>>,
    pub other_per_second: Option<Spanned<u32>>,
    pub per_chat_every: Option<Spanned<String>>,
    pub daily_caps: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
}

/// A resolve error: the span, the dotted key, the message.
pub type RawError = (std::ops::Range<usize>, String, String);

/// Check and resolve `[[campaigns]]` and `[campaign_pacing]` against the workspace's hours.
pub fn resolve(
    raw: &[Spanned<RawCampaign>],
    pacing: Option<&Spanned<RawPacing>>,
    hours: &[String],
) -> Result<CampaignConfig, RawError> {
    let mut out = CampaignConfig::default();
    for rc in raw {
        let r = rc.get_ref();
        let name = r.name.get_ref().trim().to_string();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err((
                r.name.span(),
                "campaigns.name".into(),
                format!("'{name}' is not a name (letters, digits, '-', '_', '.', at most 64)"),
            ));
        }
        if out.get(&name).is_some() {
            return Err((
                r.name.span(),
                "campaigns.name".into(),
                format!("two [[campaigns]] are named '{name}'"),
            ));
        }
        let segment: Segment = r
            .segment
            .get_ref()
            .parse()
            .map_err(|m| (r.segment.span(), "campaigns.segment".to_string(), m))?;
        let mut channels = Vec::new();
        if let Some(ch) = &r.channels {
            for n in ch.get_ref() {
                let c: Channel = n.parse().map_err(|e: crate::model::ParseEnumError| {
                    (ch.span(), "campaigns.channels".to_string(), e.to_string())
                })?;
                if !c.replyable() {
                    return Err((
                        ch.span(),
                        "campaigns.channels".into(),
                        format!("nothing can be sent on {c}: leave it out"),
                    ));
                }
                if !channels.contains(&c) {
                    channels.push(c);
                }
            }
        }
        let hours_name = match &r.hours {
            Some(h) => {
                let n = h.get_ref().trim();
                if !hours.iter().any(|x| x == n) {
                    return Err((
                        h.span(),
                        "campaigns.hours".into(),
                        format!(
                            "no [[hours]] named '{n}' (defined: {})",
                            if hours.is_empty() {
                                "none".into()
                            } else {
                                hours.join(", ")
                            }
                        ),
                    ));
                }
                Some(n.to_string())
            }
            None => hours.first().cloned(),
        };
        if r.steps.is_empty() {
            return Err((
                rc.span(),
                "campaigns.steps".into(),
                format!(
                    "campaign '{name}' has no steps: add [[campaigns.steps]] after = \"0d\" \
                     template = \"NAME\""
                ),
            ));
        }
        let mut steps: Vec<Step> = Vec::new();
        for rs in &r.steps {
            let s = rs.get_ref();
            let after_ms = crate::units::parse_duration(s.after.get_ref())
                .map_err(|m| (s.after.span(), "campaigns.steps.after".to_string(), m))?;
            if let Some(prev) = steps.last()
                && after_ms < prev.after_ms
            {
                return Err((
                    s.after.span(),
                    "campaigns.steps.after".into(),
                    "steps count from enrolment: each step's after must be at least the \
                     previous one's"
                        .into(),
                ));
            }
            if let Some(u) = &s.unless
                && u.get_ref().trim() != "replied"
            {
                return Err((
                    u.span(),
                    "campaigns.steps.unless".into(),
                    "only unless = \"replied\" is known (and a reply always ends the sequence)"
                        .into(),
                ));
            }
            let template = s.template.as_ref().map(|t| t.get_ref().trim().to_string());
            let text = s
                .text
                .as_ref()
                .map(|t| crate::sanitize::text(t.get_ref()).trim().to_string());
            if template.is_some() == text.is_some() {
                return Err((
                    rs.span(),
                    "campaigns.steps".into(),
                    "give a step either template = \"NAME\" (a canned reply) or text = \"...\""
                        .into(),
                ));
            }
            if text.as_deref() == Some("") {
                return Err((rs.span(), "campaigns.steps.text".into(), "is empty".into()));
            }
            steps.push(Step {
                after_ms,
                template,
                text,
                whatsapp_template: s
                    .whatsapp_template
                    .as_ref()
                    .map(|t| t.get_ref().trim().to_string()),
            });
        }
        out.campaigns.push(Campaign {
            name,
            segment_text: r.segment.get_ref().trim().to_string(),
            segment,
            channels,
            hours: hours_name,
            steps,
        });
    }
    if let Some(p) = pacing {
        let p = p.get_ref();
        let rate = |v: &Option<Spanned<u32>>, key: &str, into: &mut u32| -> Result<(), RawError> {
            if let Some(v) = v {
                if *v.get_ref() == 0 {
                    return Err((
                        v.span(),
                        format!("campaign_pacing.{key}"),
                        "must be at least 1".into(),
                    ));
                }
                *into = *v.get_ref();
            }
            Ok(())
        };
        let pc = &mut out.pacing;
        rate(
            &p.telegram_per_second,
            "telegram_per_second",
            &mut pc.telegram_per_second,
        )?;
        rate(
            &p.whatsapp_per_second,
            "whatsapp_per_second",
            &mut pc.whatsapp_per_second,
        )?;
        rate(&p.sms_per_second, "sms_per_second", &mut pc.sms_per_second)?;
        rate(
            &p.email_per_minute,
            "email_per_minute",
            &mut pc.email_per_minute,
        )?;
        rate(
            &p.other_per_second,
            "other_per_second",
            &mut pc.other_per_second,
        )?;
        if let Some(e) = &p.per_chat_every {
            pc.per_chat_every_ms = crate::units::parse_duration(e.get_ref())
                .map_err(|m| (e.span(), "campaign_pacing.per_chat_every".to_string(), m))?;
        }
        if let Some(caps) = &p.daily_caps {
            for (k, n) in caps.get_ref() {
                let c: Channel = k.parse().map_err(|e: crate::model::ParseEnumError| {
                    (
                        caps.span(),
                        "campaign_pacing.daily_caps".to_string(),
                        e.to_string(),
                    )
                })?;
                pc.daily_caps.push((c, *n));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn segments_parse_every_filter_and_refuse_with_what_to_write() {
        let s: Segment = "tag:trial -tag:churned channel:telegram stage:Lead is:vip \
                          last_seen:<14d last_seen:>2d plan:pro"
            .parse()
            .unwrap();
        assert_eq!(s.tags, vec!["trial"]);
        assert_eq!(s.not_tags, vec!["churned"]);
        assert_eq!(s.channels, vec![Channel::Telegram]);
        assert_eq!(s.stage.as_deref(), Some("lead"));
        assert!(s.vip);
        assert_eq!(
            s.seen,
            vec![
                SeenFilter::Within(14 * 86_400_000),
                SeenFilter::QuietFor(2 * 86_400_000)
            ]
        );
        assert_eq!(s.fields, vec![("plan".to_string(), "pro".to_string())]);
        for (bad, says) in [
            ("", "every contact"),
            ("trial", "KEY:VALUE"),
            ("tag:", "no value"),
            ("-stage:lead", "only tag:"),
            ("channel:pigeon", "pigeon"),
            ("channel:phone", "nothing can be sent"),
            ("last_seen:14d", "last_seen:<14d"),
            ("last_seen:<soon", "bad duration"),
            ("is:new", "only vip"),
            ("stage:a stage:b", "once"),
            ("pl an:x", "KEY:VALUE"),
            ("pl$n:x", "not a field name"),
        ] {
            let e = bad.parse::<Segment>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn pacing_intervals_never_exceed_the_rate() {
        let p = Pacing::default();
        assert_eq!(p.interval_ms(Channel::Telegram), 34);
        assert_eq!(p.interval_ms(Channel::Sms), 1000);
        assert_eq!(p.interval_ms(Channel::Email), 1000);
        let p = Pacing {
            email_per_minute: 7,
            ..Pacing::default()
        };
        assert_eq!(p.interval_ms(Channel::Email), 8572);
    }
}
