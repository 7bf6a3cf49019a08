//! Webhook signatures, each checked in constant time (`hmac`'s `verify_slice`) over the exact
//! bytes that arrived:
//! - Meta (WhatsApp Cloud API, Instagram, Messenger): `X-Hub-Signature-256: sha256=HEX`, the
//!   HMAC-SHA256 of the raw body under the app secret.
//! - Twilio: `X-Twilio-Signature: BASE64`, the HMAC-SHA1 under the auth token of the public URL
//!   Twilio called followed by every POST parameter, sorted by name, as name then value.
//! - braid's signed events (`/hooks/events/NAME`): `X-Braid-Timestamp: UNIX-SECONDS` and
//!   `X-Braid-Signature: sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` under the source's
//!   secret; a timestamp more than five minutes away from now is refused (a replayed request).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// How far a signed event's timestamp may be from now, either way.
pub const EVENT_TOLERANCE_SECS: i64 = 300;

/// Why a request was refused (logged; the sender only gets 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("no {0} header")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("the signature does not match")]
    Mismatch,
    #[error("the timestamp is {0} s away from now (a replay, or a clock that is off)")]
    Stale(i64),
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    // from_str_radix alone would take "+1" as a byte.
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Meta's `X-Hub-Signature-256` over `body`.
pub fn meta(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), BadSignature> {
    const H: &str = "X-Hub-Signature-256";
    let header = header.ok_or(BadSignature::Missing(H))?;
    let sig = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(hex_decode)
        .ok_or(BadSignature::Malformed(H))?;
    let mut mac = mac256(secret);
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| BadSignature::Mismatch)
}

/// The `X-Hub-Signature-256` value Meta would send for `body` (tests, benchmarks, the docs).
pub fn meta_sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac256(secret);
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// An HMAC under `key`: HMAC takes keys of any length, so this never fails.
fn mac256(key: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn mac1(key: &[u8]) -> Hmac<Sha1> {
    match Hmac::<Sha1>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Meta's subscription handshake: `hub.mode=subscribe`, `hub.verify_token` equal (in constant
/// time) to the configured token: the `hub.challenge` to echo. Anything else: None (403).
pub fn meta_handshake(query: &str, verify_token: &[u8]) -> Option<String> {
    // An empty token would let anyone subscribe a callback.
    if verify_token.is_empty() {
        return None;
    }
    let fields = super::form_fields(query.as_bytes()).ok()?;
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("hub.mode")? != "subscribe" {
        return None;
    }
    let given = get("hub.verify_token")?;
    // Compare MACs of both under a fixed key: constant time whatever the lengths.
    let mut a = mac256(b"braid verify token");
    a.update(given.as_bytes());
    let b = {
        let mut m = mac256(b"braid verify token");
        m.update(verify_token);
        m.finalize().into_bytes()
    };
    a.verify_slice(&b).ok()?;
    let challenge = get("hub.challenge")?;
    // Meta sends digits; echo nothing that could be markup.
    (!challenge.is_empty()
        && challenge.len() <= 128
        && challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then(|| challenge.to_string())
}

/// A Meta app's two webhook secrets, shared by WhatsApp, Instagram and Messenger: the app
/// secret every POST is signed with, and the verify token of the subscription handshake.
pub struct MetaApp {
    app_secret: Vec<u8>,
    verify_token: Vec<u8>,
}

impl MetaApp {
    pub fn new(app_secret: Vec<u8>, verify_token: Vec<u8>) -> MetaApp {
        MetaApp {
            app_secret,
            verify_token,
        }
    }

    /// [`meta_handshake`] with this app's token.
    pub fn handshake(&self, query: &str) -> Option<String> {
        meta_handshake(query, &self.verify_token)
    }

    /// [`meta`] over the request's body and its `X-Hub-Signature-256`.
    pub fn verify(&self, req: &super::HookRequest<'_>) -> Result<(), BadSignature> {
        meta(
            &self.app_secret,
            req.body,
            req.header("x-hub-signature-256"),
        )
    }
}

/// The string Twilio signs: the URL, then each parameter's name and value, sorted by name.
fn twilio_payload(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut out = url.as_bytes().to_vec();
    for (k, v) in sorted {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Twilio's `X-Twilio-Signature` for a form POST to `url` (the public URL Twilio called,
/// configured: braid sits behind a proxy and cannot know it).
pub fn twilio(
    token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), BadSignature> {
    const H: &str = "X-Twilio-Signature";
    let header = header.ok_or(BadSignature::Missing(H))?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| BadSignature::Malformed(H))?;
    let mut mac = mac1(token);
    mac.update(&twilio_payload(url, params));
    mac.verify_slice(&sig).map_err(|_| BadSignature::Mismatch)
}

/// The `X-Twilio-Signature` Twilio would send.
pub fn twilio_sign(token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut mac = mac1(token);
    mac.update(&twilio_payload(url, params));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A signed event: `X-Braid-Timestamp` within [`EVENT_TOLERANCE_SECS`] of `now_secs`, and
/// `X-Braid-Signature` over `TIMESTAMP.BODY`.
pub fn event(
    secret: &[u8],
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now_secs: i64,
) -> Result<(), BadSignature> {
    const T: &str = "X-Braid-Timestamp";
    const S: &str = "X-Braid-Signature";
    let ts_text = timestamp.ok_or(BadSignature::Missing(T))?.trim();
    let ts: i64 = ts_text.parse().map_err(|_| BadSignature::Malformed(T))?;
    let sig = signature
        .ok_or(BadSignature::Missing(S))?
        .trim()
        .strip_prefix("sha256=")
        .and_then(hex_decode)
        .ok_or(BadSignature::Malformed(S))?;
    let mut mac = mac256(secret);
    mac.update(ts_text.as_bytes());
    mac.update(b".");
    mac.update(body);
    // The signature first: a forged request learns nothing about the clock.
    mac.verify_slice(&sig).map_err(|_| BadSignature::Mismatch)?;
    let skew = now_secs.saturating_sub(ts);
    if skew.abs() > EVENT_TOLERANCE_SECS {
        return Err(BadSignature::Stale(skew));
    }
    Ok(())
}

/// The `X-Braid-Signature` for an event body sent at `timestamp` (what a sending tool computes;
/// README shows the same with openssl).
pub fn event_sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac256(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn meta_signatures() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let good = meta_sign(b"app-secret", body);
        assert_eq!(meta(b"app-secret", body, Some(&good)), Ok(()));
        assert_eq!(
            meta(b"other", body, Some(&good)),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            meta(b"app-secret", b"{}", Some(&good)),
            Err(BadSignature::Mismatch)
        );
        assert!(matches!(
            meta(b"app-secret", body, None),
            Err(BadSignature::Missing(_))
        ));
        assert!(matches!(
            meta(
                b"app-secret",
                body,
                Some(good.trim_start_matches("sha256="))
            ),
            Err(BadSignature::Malformed(_))
        ));
        assert!(matches!(
            meta(b"app-secret", body, Some("sha256=zz")),
            Err(BadSignature::Malformed(_))
        ));
        // One flipped bit anywhere in the signature.
        let mut bad = good.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            meta(
                b"app-secret",
                body,
                Some(std::str::from_utf8(&bad).unwrap())
            ),
            Err(BadSignature::Mismatch)
        );
    }

    /// The example of Twilio's security documentation: this URL, these parameters and the
    /// token `12345` sign as `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`.
    #[test]
    fn twilio_documented_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = twilio_sign(b"12345", url, &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert_eq!(twilio(b"12345", url, &params, Some(&sig)), Ok(()));
        assert_eq!(
            twilio(b"12345", "https://mycompany.com/other", &params, Some(&sig)),
            Err(BadSignature::Mismatch)
        );
        let mut changed = params.clone();
        changed[2].1 = "9999".into();
        assert_eq!(
            twilio(b"12345", url, &changed, Some(&sig)),
            Err(BadSignature::Mismatch)
        );
        assert!(matches!(
            twilio(b"12345", url, &params, None),
            Err(BadSignature::Missing(_))
        ));
        assert!(matches!(
            twilio(b"12345", url, &params, Some("not base64!")),
            Err(BadSignature::Malformed(_))
        ));
    }

    #[test]
    fn events_are_signed_with_their_timestamp_and_expire() {
        let body = br#"{"id":"call-1"}"#;
        let now = 1_800_000_000;
        let sig = event_sign(b"s3cret", now, body);
        let ts = now.to_string();
        assert_eq!(event(b"s3cret", body, Some(&ts), Some(&sig), now), Ok(()));
        assert_eq!(
            event(b"s3cret", body, Some(&ts), Some(&sig), now + 300),
            Ok(())
        );
        assert_eq!(
            event(b"s3cret", body, Some(&ts), Some(&sig), now + 301),
            Err(BadSignature::Stale(301))
        );
        assert_eq!(
            event(b"s3cret", body, Some(&ts), Some(&sig), now - 301),
            Err(BadSignature::Stale(-301))
        );
        // The timestamp is signed: moving it forward breaks the signature.
        let later = (now + 200).to_string();
        assert_eq!(
            event(b"s3cret", body, Some(&later), Some(&sig), now + 200),
            Err(BadSignature::Mismatch)
        );
        assert!(matches!(
            event(b"s3cret", body, None, Some(&sig), now),
            Err(BadSignature::Missing(_))
        ));
        assert!(matches!(
            event(b"s3cret", body, Some(&ts), None, now),
            Err(BadSignature::Missing(_))
        ));
        assert!(matches!(
            event(b"s3cret", body, Some("soon"), Some(&sig), now),
            Err(BadSignature::Malformed(_))
        ));
        assert_eq!(
            event(b"other", body, Some(&ts), Some(&sig), now),
            Err(BadSignature::Mismatch)
        );
    }

    #[test]
    fn meta_handshake_echoes_the_challenge_only_for_the_right_token() {
        let q = "hub.mode=subscribe&hub.verify_token=tok%20en&hub.challenge=1158201444";
        assert_eq!(meta_handshake(q, b"tok en").as_deref(), Some("1158201444"));
        assert_eq!(meta_handshake(q, b"tok"), None);
        assert_eq!(meta_handshake(q, b"tok en!"), None);
        let q2 = "hub.mode=unsubscribe&hub.verify_token=tok&hub.challenge=1";
        assert_eq!(meta_handshake(q2, b"tok"), None);
        let q3 = "hub.mode=subscribe&hub.verify_token=tok&hub.challenge=%3Cscript%3E";
        assert_eq!(meta_handshake(q3, b"tok"), None);
        assert_eq!(
            meta_handshake("hub.mode=subscribe&hub.challenge=1", b""),
            None
        );
        // A token left empty in the config never lets anyone subscribe.
        assert_eq!(
            meta_handshake("hub.mode=subscribe&hub.verify_token=&hub.challenge=1", b""),
            None
        );
    }

    #[test]
    fn hex_is_strict() {
        assert_eq!(hex_decode("00ff"), Some(vec![0, 255]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("+1"), None);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
