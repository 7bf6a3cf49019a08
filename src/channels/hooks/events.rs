//! Signed events from any system: `POST /hooks/events/NAME`, a JSON body signed with the
//! source's secret ([`super::verify::event`]). Call logs from a phone system, form fills,
//! purchases, bookings, DMs relayed by another tool: each lands on the contact's timeline,
//! searchable, with its own glyph (☎ for calls, ⚑ for the rest).
//!
//! ```json
//! {
//!   "id": "call-8812",
//!   "type": "call",
//!   "at": "2026-12-07T09:12:00Z",
//!   "contact": { "phone": "+4915112345678", "email": "ana@example.com",
//!                "external_id": "crm:4411", "name": "Ana Souza" },
//!   "title": "Order 4411 arrived damaged",
//!   "text": "Customer asks for a replacement.",
//!   "call": { "direction": "in", "from": "+4915112345678", "to": "+498912345",
//!             "duration_s": 242, "outcome": "answered",
//!             "recording_url": "https://pbx.example.com/rec/8812.mp3", "agent": "ann" },
//!   "fields": { "order": "4411" }
//! }
//! ```
//!
//! `id` (required) makes the event idempotent: sent twice, it is stored once. The contact needs
//! at least one of `phone` (international form), `email`, `external_id` (`SYSTEM:ID`); the
//! first of those (in that order) is who the event is about, and the others given with it join
//! the same contact: a configured source is trusted like a channel, so only configure systems
//! that know their customers (a form anyone can fill in should send only `external_id`).
//! `type` is `call`, `message` (a customer's message relayed from elsewhere), or any word
//! (`form`, `purchase`, `booking`...). Calls take their direction from `call.direction`;
//! messages are the customer's (they open the conversation like an inbound message); other
//! events are recorded as notes on the contact's conversation.

use super::verify::{self, BadSignature};
use super::{HookItem, HookRequest, Source, SourceSpec};
use crate::identity::Claim;
use crate::ingest::Inbound;
use crate::model::{Channel, Direction, IdentityKind, Millis};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// `[[events]]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventsConfig {
    pub name: Option<String>,
    pub secret_command: Option<String>,
    pub secret_env: Option<String>,
    pub team: Option<String>,
}

/// A configured event source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// The last part of the path, and the account its events are stored under.
    pub name: String,
    pub secret: crate::secret::SecretSource,
    pub team: Option<String>,
}

impl RawEventsConfig {
    pub fn resolve(&self) -> Result<EventsConfig, (&'static str, String)> {
        let name = self.name.as_deref().unwrap_or("").trim().to_string();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                "name",
                "must be a short name of letters, digits, - and _ (it is the last part of \
                 /hooks/events/NAME)"
                    .into(),
            ));
        }
        let secret = crate::secret::source_from_keys(
            "secret",
            self.secret_command.as_deref(),
            self.secret_env.as_deref(),
            "secret_command",
            "secret_env",
        )?;
        Ok(EventsConfig {
            name,
            secret,
            team: crate::channels::team_name(self.team.as_deref()).map_err(|m| ("team", m))?,
        })
    }
}

impl EventsConfig {
    pub fn path(&self) -> String {
        format!("events/{}", self.name)
    }

    /// The source, once its secret is read.
    pub fn spec(&self) -> SourceSpec {
        let config = self.clone();
        SourceSpec {
            path: self.path(),
            build: Arc::new(move || {
                let config = config.clone();
                Box::pin(async move {
                    let place = format!("[[events]] {}", config.name);
                    let secret =
                        crate::secret::resolve(&config.secret, "secret", &place, true).await?;
                    Ok(
                        Arc::new(EventSource::new(&config.name, secret.into_bytes()))
                            as Arc<dyn Source>,
                    )
                })
            }),
        }
    }
}

/// The source of `/hooks/events/NAME`.
pub struct EventSource {
    name: String,
    path: String,
    secret: Vec<u8>,
}

impl EventSource {
    pub fn new(name: &str, secret: Vec<u8>) -> EventSource {
        EventSource {
            name: name.to_string(),
            path: format!("events/{name}"),
            secret,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    id: serde_json::Value,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    at: Option<serde_json::Value>,
    contact: ContactRef,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    call: Option<Call>,
    #[serde(default)]
    fields: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    direction: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ContactRef {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Call {
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    duration_s: Option<u64>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    recording_url: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// A time given as RFC 3339 text or Unix seconds.
fn parse_at(v: Option<&serde_json::Value>, default: Millis) -> Result<Millis, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .filter(|s| (0..=253_402_300_799).contains(s))
            .map(|s| s * 1000)
            .ok_or_else(|| "at: not a Unix time in seconds".to_string()),
        Some(serde_json::Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
                .map_err(|_| "at: not an RFC 3339 time (2026-12-07T09:12:00Z)".to_string())
        }
        Some(_) => Err("at: a time as text or seconds".to_string()),
    }
}

fn duration_text(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// Fields are short facts: one line each, cut.
fn field_text(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let line = crate::sanitize::line(&text);
    if line.chars().count() > 200 {
        line.chars().take(200).collect::<String>() + "…"
    } else {
        line
    }
}

/// The most fields an event shows.
const MAX_FIELDS: usize = 50;

impl Source for EventSource {
    fn path(&self) -> &str {
        &self.path
    }

    fn verify(&self, req: &HookRequest<'_>) -> Result<(), BadSignature> {
        verify::event(
            &self.secret,
            req.body,
            req.header("x-braid-timestamp"),
            req.header("x-braid-signature"),
            req.now.div_euclid(1000),
        )
    }

    fn parse(&self, body: &[u8], received_at: Millis) -> Result<Vec<HookItem>, String> {
        let ev: Event = super::parse_json(body)?;
        let id = match &ev.id {
            serde_json::Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err("id: required, a string or a number".into()),
        };
        if id.len() > 200 {
            return Err("id: longer than 200 characters".into());
        }
        let kind = ev
            .kind
            .as_deref()
            .map(|k| crate::sanitize::line(k).to_lowercase())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "event".into());
        let at = parse_at(ev.at.as_ref(), received_at)?;
        let c = &ev.contact;
        let mut claims: Vec<Claim> = Vec::new();
        if let Some(p) = c.phone.as_deref().filter(|p| !p.trim().is_empty()) {
            claims.push(Claim::new(IdentityKind::Phone, p));
        }
        if let Some(e) = c.email.as_deref().filter(|e| !e.trim().is_empty()) {
            claims.push(Claim::new(IdentityKind::Email, e));
        }
        if let Some(x) = c.external_id.as_deref().filter(|x| !x.trim().is_empty()) {
            claims.push(Claim::new(IdentityKind::External, x));
        }
        for cl in &claims {
            crate::identity::normalize(cl.kind, &cl.value).map_err(|e| format!("contact: {e}"))?;
        }
        if claims.is_empty() {
            return Err("contact: give a phone, an email or an external_id".into());
        }
        let customer = claims.remove(0);

        let is_call = kind == "call";
        let mut body = String::new();
        let mut direction = match ev.direction.as_deref() {
            Some("in") => Direction::In,
            Some("out") => Direction::Out,
            Some("note") => Direction::Note,
            Some(other) => {
                return Err(format!(
                    "direction: '{}' is not in, out or note",
                    crate::sanitize::line(other)
                ));
            }
            None if kind == "message" => Direction::In,
            None => Direction::Note,
        };
        if let Some(call) = ev.call.as_ref().filter(|_| is_call) {
            let inbound = call.direction.as_deref() != Some("out");
            if ev.direction.is_none() {
                direction = if inbound {
                    Direction::In
                } else {
                    Direction::Out
                };
            }
            let _ = write!(
                body,
                "{} call",
                if inbound { "Inbound" } else { "Outbound" }
            );
            if let Some(f) = &call.from {
                let _ = write!(body, " from {}", field_text(&f.as_str().into()));
            }
            if let Some(t) = &call.to {
                let _ = write!(body, " to {}", field_text(&t.as_str().into()));
            }
            if let Some(d) = call.duration_s {
                let _ = write!(body, " · {}", duration_text(d));
            }
            if let Some(o) = &call.outcome {
                let _ = write!(body, " · {}", field_text(&o.as_str().into()));
            }
            if let Some(a) = &call.agent {
                let _ = write!(body, " · agent {}", field_text(&a.as_str().into()));
            }
            if let Some(r) = &call.recording_url {
                let _ = write!(body, "\nRecording: {}", field_text(&r.as_str().into()));
            }
        }
        if let Some(t) = ev.text.as_deref().filter(|t| !t.trim().is_empty()) {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(t);
        }
        if let Some(fields) = &ev.fields {
            if fields.len() > MAX_FIELDS {
                return Err(format!("fields: more than {MAX_FIELDS}"));
            }
            if !fields.is_empty() && !body.is_empty() {
                body.push('\n');
            }
            for (k, v) in fields {
                let _ = write!(
                    body,
                    "\n{}: {}",
                    field_text(&k.as_str().into()),
                    field_text(v)
                );
            }
        }
        let title = ev
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| (!is_call && kind != "message").then(|| kind.clone()));
        if body.trim().is_empty() && title.is_none() {
            return Err("the event says nothing: give text, title, call or fields".into());
        }
        let meta = serde_json::json!({
            "event": { "source": self.name, "type": kind },
            "call": ev.call.as_ref().filter(|_| is_call).map(|c| serde_json::json!({
                "direction": c.direction, "from": c.from, "to": c.to,
                "duration_s": c.duration_s, "outcome": c.outcome,
                "recording_url": c.recording_url, "agent": c.agent,
            })),
        });
        let msg = Inbound {
            channel: if is_call {
                Channel::Phone
            } else {
                Channel::Event
            },
            account: self.name.clone(),
            external_id: id,
            direction,
            customer,
            linked: claims,
            customer_name: c.name.clone().filter(|n| !n.trim().is_empty()),
            author: match direction {
                Direction::In => None,
                _ => Some(
                    ev.call
                        .as_ref()
                        .and_then(|c| c.agent.clone())
                        .unwrap_or_else(|| self.name.clone()),
                ),
            },
            subject: title,
            body,
            sent_at: at,
            meta: Some(meta),
            cursor: None,
        };
        Ok(vec![HookItem::Message(Box::new(msg))])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Inbound, String> {
        let s = EventSource::new("pbx", b"k".to_vec());
        let mut items = s.parse(json.as_bytes(), 1_000)?;
        match items.pop() {
            Some(HookItem::Message(m)) => Ok(*m),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_call_log_becomes_a_phone_message_of_its_caller() {
        let m = parse(
            r#"{"id":"call-1","type":"call","at":"2026-12-07T09:12:00Z",
                "contact":{"phone":"+49 151 12345678","email":"ana@example.com","name":"Ana"},
                "text":"Wants a replacement.",
                "call":{"direction":"in","from":"+4915112345678","duration_s":242,
                        "outcome":"answered","recording_url":"https://pbx.example.com/r/1.mp3",
                        "agent":"ann"}}"#,
        )
        .unwrap();
        assert_eq!(m.channel, Channel::Phone);
        assert_eq!(m.direction, Direction::In);
        assert_eq!(m.account, "pbx");
        assert_eq!(m.customer.kind, IdentityKind::Phone);
        assert_eq!(
            m.linked,
            vec![Claim::new(IdentityKind::Email, "ana@example.com")]
        );
        assert_eq!(m.sent_at, 1_796_634_720_000);
        assert_eq!(
            m.body,
            "Inbound call from +4915112345678 · 4 min 02 s · answered · agent ann\n\
             Recording: https://pbx.example.com/r/1.mp3\n\nWants a replacement."
        );
    }

    #[test]
    fn other_events_are_notes_with_their_type_as_title() {
        let m = parse(
            r#"{"id":77,"type":"Purchase","contact":{"external_id":"shop:991"},
                "fields":{"order":"4411","total":{"EUR":12.5}}}"#,
        )
        .unwrap();
        assert_eq!(m.channel, Channel::Event);
        assert_eq!(m.direction, Direction::Note);
        assert_eq!(m.external_id, "77");
        assert_eq!(m.subject.as_deref(), Some("purchase"));
        assert_eq!(m.body, "\norder: 4411\ntotal: {\"EUR\":12.5}");
        assert_eq!(m.sent_at, 1_000);
    }

    #[test]
    fn bad_events_say_what_is_wrong() {
        for (json, want) in [
            (r#"{"contact":{"phone":"+4915112345678"},"text":"x"}"#, "id"),
            (r#"{"id":"1","contact":{},"text":"x"}"#, "contact"),
            (
                r#"{"id":"1","contact":{"phone":"12"},"text":"x"}"#,
                "contact",
            ),
            (
                r#"{"id":"1","contact":{"external_id":"nocolon"},"text":"x"}"#,
                "contact",
            ),
            (
                r#"{"id":"1","type":"message","contact":{"email":"a@b.co"}}"#,
                "says nothing",
            ),
            (
                r#"{"id":"1","contact":{"email":"a@b.co"},"text":"x","at":"yesterday"}"#,
                "at",
            ),
            (
                r#"{"id":"1","contact":{"email":"a@b.co"},"text":"x","direction":"up"}"#,
                "direction",
            ),
            (r#"[1,2]"#, "malformed"),
        ] {
            let e = parse(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn the_signature_covers_body_and_timestamp() {
        let s = EventSource::new("pbx", b"secret".to_vec());
        let body = br#"{"id":"1"}"#;
        let now = 1_800_000_000_000i64;
        let sig = verify::event_sign(b"secret", now / 1000, body);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-braid-timestamp",
            (now / 1000).to_string().parse().unwrap(),
        );
        headers.insert("x-braid-signature", sig.parse().unwrap());
        let req = |body: &'static [u8], now| HookRequest {
            path: "events/pbx",
            query: "",
            headers: &headers,
            body,
            now,
        };
        assert_eq!(s.verify(&req(body, now)), Ok(()));
        assert_eq!(
            s.verify(&req(br#"{"id":"2"}"#, now)),
            Err(BadSignature::Mismatch)
        );
        assert!(matches!(
            s.verify(&req(body, now + 3_600_000)),
            Err(BadSignature::Stale(_))
        ));
    }
}
