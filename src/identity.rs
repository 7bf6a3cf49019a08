//! Who is this sender? Normalizing identifiers, and resolving a message's identities to one
//! contact, linking (and merging) when a message carries a second identifier.
//!
//! What counts as proof that two identifiers are one person: a channel vouching for both (a
//! Telegram user sharing their own contact card, a web page that signs its logged-in user's
//! email for the chat widget), or an agent adding it. An address a web-chat visitor merely
//! TYPES is not: anyone can type anyone's address, so it is only a claim
//! ([`crate::store::claims`]) until an agent links it. An address that merely appears in a
//! message body or an email signature is NOT enough either.

use crate::model::{ContactId, IdentityKind, Millis};
use crate::store::Tx;
use crate::store::events::{EventKind, EventRefs};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("'{0}' is not an email address")]
    Email(String),
    #[error("'{0}' is not a phone number in international form (+CC...)")]
    Phone(String),
    #[error("'{0}' is not a Telegram user id")]
    Telegram(String),
    #[error("'{0}' is not a web-chat visitor id")]
    WebChat(String),
    #[error("'{0}' is not an Instagram or Messenger user id (digits)")]
    Scoped(String),
    #[error("'{0}' is not an external id (SOURCE:ID, letters, digits and - _ . : @ only)")]
    External(String),
}

/// One identifier as a channel reported it, before normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub kind: IdentityKind,
    pub value: String,
}

impl Claim {
    pub fn new(kind: IdentityKind, value: impl Into<String>) -> Claim {
        Claim {
            kind,
            value: value.into(),
        }
    }
}

/// The canonical form of an identifier: emails trimmed and lowercased, phone numbers in E.164,
/// Telegram ids as decimal digits, visitor ids as given (a safe alphabet only).
pub fn normalize(kind: IdentityKind, raw: &str) -> Result<String, IdentityError> {
    let v = raw.trim();
    match kind {
        IdentityKind::Email => {
            let lower = v.to_lowercase();
            let mut v = lower.trim();
            // "<...>" and "mailto:" in either order, any case.
            loop {
                let stripped = v
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim_start_matches("mailto:")
                    .trim();
                if stripped == v {
                    break;
                }
                v = stripped;
            }
            let v = v.to_string();
            let ok = match v.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !v.chars().any(|c| {
                            c.is_whitespace()
                                || c.is_control()
                                || "<>(),;\"".contains(c)
                                // bidi overrides and isolates: an address must display as stored
                                || ('\u{202a}'..='\u{202e}').contains(&c)
                                || ('\u{2066}'..='\u{2069}').contains(&c)
                        })
                }
                None => false,
            };
            if ok && v.len() <= 254 {
                Ok(v)
            } else {
                Err(IdentityError::Email(shown(raw)))
            }
        }
        IdentityKind::Phone => {
            let digits_only: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            let candidate = if let Some(rest) = digits_only.strip_prefix("00") {
                format!("+{rest}")
            } else {
                digits_only
            };
            if !candidate.starts_with('+') {
                return Err(IdentityError::Phone(shown(raw)));
            }
            let n = phonenumber::parse(None, &candidate)
                .map_err(|_| IdentityError::Phone(shown(raw)))?;
            if !phonenumber::is_valid(&n) {
                return Err(IdentityError::Phone(shown(raw)));
            }
            Ok(n.format().mode(phonenumber::Mode::E164).to_string())
        }
        IdentityKind::Telegram => {
            if !v.is_empty() && v.len() <= 20 && v.chars().all(|c| c.is_ascii_digit()) {
                Ok(v.trim_start_matches('0').to_string()).and_then(|s| {
                    if s.is_empty() {
                        Err(IdentityError::Telegram(shown(raw)))
                    } else {
                        Ok(s)
                    }
                })
            } else {
                Err(IdentityError::Telegram(shown(raw)))
            }
        }
        IdentityKind::WebChat => {
            if !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                Ok(v.to_string())
            } else {
                Err(IdentityError::WebChat(shown(raw)))
            }
        }
        // Page- or account-scoped ids Meta gives a person (PSID, IGSID): digits.
        IdentityKind::Instagram | IdentityKind::Messenger => {
            if !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_digit()) {
                Ok(v.to_string())
            } else {
                Err(IdentityError::Scoped(shown(raw)))
            }
        }
        // Another system's id for the person, namespaced by that system: "shop:48213".
        IdentityKind::External => {
            let ok = v.len() <= 200
                && v.split_once(':').is_some_and(|(source, id)| {
                    !source.is_empty()
                        && !id.is_empty()
                        && source
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'));
            if ok {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(IdentityError::External(shown(raw)))
            }
        }
    }
}

/// The rejected input as an error shows it: sanitized (it came from outside and the error
/// reaches logs and the status line) and cut to one short line.
fn shown(raw: &str) -> String {
    let clean = crate::sanitize::line(raw);
    if clean.chars().count() > 80 {
        let mut cut: String = clean.chars().take(80).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

/// A readable name for a contact we know only by an identifier.
pub fn fallback_name(kind: IdentityKind, normalized: &str) -> String {
    match kind {
        IdentityKind::Email | IdentityKind::Phone => normalized.to_string(),
        IdentityKind::Telegram => format!("Telegram user {normalized}"),
        IdentityKind::WebChat => {
            let short: String = normalized.chars().take(8).collect();
            format!("Visitor {short}")
        }
        IdentityKind::Instagram => format!("Instagram user {normalized}"),
        IdentityKind::Messenger => format!("Messenger user {normalized}"),
        IdentityKind::External => normalized.to_string(),
    }
}

/// Resolve the sender of a message to one contact, inside the caller's transaction.
///
/// `primary` is the identifier the channel authenticated (the From address, the Telegram user,
/// the widget's visitor id); `linked` are identifiers the customer explicitly gave in the same
/// message. Every one of them ends up on the returned contact: unknown ones are attached, and a
/// contact that already owned one is merged into the survivor (the older contact).
pub fn resolve(
    tx: &Tx<'_>,
    primary: (IdentityKind, &str),
    linked: &[(IdentityKind, String)],
    display_name: Option<&str>,
    source: &str,
    at: Millis,
) -> crate::store::Result<ContactId> {
    let mut owners: Vec<ContactId> = Vec::new();
    if let Some(c) = tx.find_identity(primary.0, primary.1)? {
        owners.push(c);
    }
    for (kind, value) in linked {
        if let Some(c) = tx.find_identity(*kind, value)?
            && !owners.contains(&c)
        {
            owners.push(c);
        }
    }
    let contact = match owners.iter().min() {
        Some(&oldest) => oldest,
        None => {
            let name = display_name
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| fallback_name(primary.0, primary.1));
            tx.create_contact(&name, at)?
        }
    };
    for &other in owners.iter().filter(|&&c| c != contact) {
        tx.merge_contacts(
            contact,
            other,
            &format!("{source}: one message carried identities of both"),
            "ingest",
            at,
        )?;
    }
    if tx.find_identity(primary.0, primary.1)?.is_none() {
        tx.insert_identity(contact, primary.0, primary.1, source, at)?;
    }
    for (kind, value) in linked {
        if tx.find_identity(*kind, value)?.is_none() {
            tx.insert_identity(
                contact,
                *kind,
                value,
                &format!("{source} (given by the customer)"),
                at,
            )?;
            tx.append_event(
                at,
                "ingest",
                EventKind::IdentityLinked,
                EventRefs {
                    contact: Some(contact),
                    ..Default::default()
                },
                Some(&serde_json::json!({ "kind": kind, "value": value, "via": primary.0 })),
            )?;
        }
    }
    if let Some(name) = display_name.filter(|n| !n.is_empty()) {
        tx.improve_name(contact, name)?;
    }
    Ok(contact)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            normalize(IdentityKind::Email, "  <Ann.Lee@Example.COM> ").unwrap(),
            "ann.lee@example.com"
        );
        assert_eq!(
            normalize(IdentityKind::Email, "mailto:a@b.io").unwrap(),
            "a@b.io"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.org",
            "a@b",
            "a b@c.org",
            "a@@b.org",
            "a@b.org\x1b[31m",
        ] {
            assert!(normalize(IdentityKind::Email, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            normalize(IdentityKind::Phone, "+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize(IdentityKind::Phone, "0044 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize(IdentityKind::Phone, "+1 (415) 555-2671").unwrap(),
            "+14155552671"
        );
        assert!(
            normalize(IdentityKind::Phone, "020 7946 0958").is_err(),
            "no country code"
        );
        assert!(normalize(IdentityKind::Phone, "+44 12").is_err());
        assert!(normalize(IdentityKind::Phone, "call me").is_err());
    }

    #[test]
    fn a_rejected_value_is_echoed_safely_and_says_what_was_wrong() {
        // Terminal escapes never reach the error text; the reason names the kind expected.
        let e = normalize(IdentityKind::Email, "a@b.org\x1b]0;pwned\x07").unwrap_err();
        let text = e.to_string();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.ends_with("' is not an email address"), "{text}");
        assert!(text.starts_with("'a@b.org"), "{text}");
        // Cut to 80 characters and marked; exactly 80 is shown whole.
        let long = "x".repeat(81);
        assert_eq!(
            normalize(IdentityKind::Email, &long)
                .unwrap_err()
                .to_string(),
            format!("'{}…' is not an email address", "x".repeat(80))
        );
        let eighty = "y".repeat(80);
        assert_eq!(
            normalize(IdentityKind::Phone, &eighty).unwrap_err(),
            IdentityError::Phone(eighty.clone())
        );
        assert_eq!(
            normalize(IdentityKind::Telegram, "@ann")
                .unwrap_err()
                .to_string(),
            "'@ann' is not a Telegram user id"
        );
        assert_eq!(
            normalize(IdentityKind::WebChat, "v 1")
                .unwrap_err()
                .to_string(),
            "'v 1' is not a web-chat visitor id"
        );
    }

    fn resolve_one(store: &mut crate::store::Store, name: Option<&str>, at: Millis) -> ContactId {
        let tx = store.write().unwrap();
        let c = resolve(
            &tx,
            (IdentityKind::Email, "ann@x.org"),
            &[],
            name,
            "email",
            at,
        )
        .unwrap();
        tx.commit().unwrap();
        c
    }

    #[test]
    fn an_empty_display_name_never_names_a_contact() {
        let mut store = crate::store::Store::open_in_memory().unwrap();
        let c = resolve_one(&mut store, Some(""), 1);
        assert_eq!(store.contact(c).unwrap().name, "ann@x.org");
        // Nor replaces a placeholder later.
        let again = resolve_one(&mut store, Some(""), 2);
        assert_eq!(again, c);
        assert_eq!(store.contact(c).unwrap().name, "ann@x.org");
        let named = resolve_one(&mut store, Some("Ann Lee"), 3);
        assert_eq!(store.contact(named).unwrap().name, "Ann Lee");
    }

    #[test]
    fn telegram_and_webchat_ids() {
        assert_eq!(
            normalize(IdentityKind::Telegram, " 123456789 ").unwrap(),
            "123456789"
        );
        assert!(normalize(IdentityKind::Telegram, "@someone").is_err());
        assert!(normalize(IdentityKind::Telegram, "0").is_err());
        assert_eq!(
            normalize(IdentityKind::WebChat, "v_3f9a-11").unwrap(),
            "v_3f9a-11"
        );
        assert!(normalize(IdentityKind::WebChat, "v 1").is_err());
        assert!(normalize(IdentityKind::WebChat, "v\x1b").is_err());
    }
}
