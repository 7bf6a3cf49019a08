//! Sending SMS: [`Outbound`] for [`Channel::Sms`] through the Twilio-compatible REST API.
//!
//! - Before any network call, a reply to a customer who opted out (replied STOP, or the
//!   provider said 21610) is refused: they must text START first.
//! - `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From` (or
//!   `MessagingServiceSid`), `Body` and `StatusCallback`, HTTP basic auth `sid:token`; the
//!   returned `sid` is the message's external id, which the status callbacks name.
//! - 429 and 5xx: retried; a 429 (or a `Retry-After`) freezes the sender for that long, and any
//!   send before the time is up fails the same way without calling the provider.
//! - 21610 (the customer opted out): permanent, never retried, and recorded as their consent.
//!   Other 4xx: permanent, with the provider's `CODE: message`.

use super::SmsConfig;
use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::model::{Channel, IdentityKind, now_millis};
use crate::store::{OutboxItem, Store};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Twilio's error code for a recipient who opted out.
pub const OPTED_OUT_CODE: &str = "21610";

/// The reason of a send refused because the customer opted out.
pub const OPTED_OUT: &str =
    "the customer opted out of SMS (replied STOP); they must text START first";

/// The longest body the API takes (Twilio: 1,600 characters; error 21617 beyond).
pub const MAX_BODY_CHARS: usize = 1600;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A 429 without `Retry-After` freezes the sender this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest freeze a `Retry-After` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Sends replies through the configured SMS account.
pub struct SmsSender {
    config: SmsConfig,
    store_path: PathBuf,
    store: Arc<Mutex<Option<Store>>>,
    http: reqwest::Client,
    /// The auth token, read on the first send.
    token: tokio::sync::Mutex<Option<String>>,
    /// No request before this instant (the provider asked to slow down).
    frozen_until: Mutex<Option<Instant>>,
}

fn permanent(reason: String) -> SendError {
    SendError {
        reason,
        retry: false,
        may_have_sent: false,
    }
}

fn temporary(reason: String) -> SendError {
    SendError {
        reason,
        retry: true,
        may_have_sent: false,
    }
}

fn rate_limited(d: Duration) -> String {
    format!(
        "rate limited by the SMS provider, retry in {}s",
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    )
}

/// Text from the provider, made safe for the store, the log and terminals, and cut.
fn words(s: &str) -> String {
    let line = crate::sanitize::line(s);
    if line.chars().count() > 300 {
        line.chars().take(300).collect::<String>() + "…"
    } else {
        line
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these APIs).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

impl SmsSender {
    pub fn new(config: SmsConfig, store_path: PathBuf) -> Arc<SmsSender> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Arc::new(SmsSender {
            config,
            store_path,
            store: Arc::new(Mutex::new(None)),
            http,
            token: tokio::sync::Mutex::new(None),
            frozen_until: Mutex::new(None),
        })
    }

    /// Run `f` on this sender's own store connection (opened on first use), off the async
    /// threads.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, String> {
        let slot = Arc::clone(&self.store);
        let path = self.store_path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if guard.is_none() {
                *guard = Some(Store::open(&path).map_err(|e| e.to_string())?);
            }
            match guard.as_mut() {
                Some(store) => f(store).map_err(|e| e.to_string()),
                None => Err("no store".to_string()),
            }
        })
        .await
        .map_err(|e| format!("store task: {e}"))?
    }

    async fn token(&self) -> Result<String, SendError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        // The error names the key, never the value.
        let t = crate::secret::resolve(&self.config.auth_token, "auth_token", "[sms]", true)
            .await
            .map_err(temporary)?;
        *slot = Some(t.clone());
        Ok(t)
    }

    fn frozen_for(&self) -> Option<Duration> {
        let until = *self
            .frozen_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.and_then(|u| u.checked_duration_since(Instant::now()))
    }

    fn freeze(&self, d: Duration) {
        *self
            .frozen_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + d);
    }

    /// Record that `phone` opted out (the provider said 21610).
    async fn record_opt_out(&self, phone: String) {
        let r = self
            .with_store(move |s| {
                let tx = s.write()?;
                tx.set_consent(
                    Channel::Sms,
                    IdentityKind::Phone,
                    &phone,
                    true,
                    OPTED_OUT_CODE,
                    "sms",
                    now_millis(),
                )?;
                tx.commit()
            })
            .await;
        if let Err(e) = r {
            tracing::warn!("sms: could not record an opt-out: {}", words(&e));
        }
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let to =
            crate::identity::normalize(IdentityKind::Phone, &item.recipient).map_err(|_| {
                permanent(format!(
                    "'{}' is not a phone number in international form",
                    words(&item.recipient)
                ))
            })?;
        let value = to.clone();
        let consent = self
            .with_store(move |s| s.consent(Channel::Sms, IdentityKind::Phone, &value))
            .await
            .map_err(|e| temporary(format!("cannot check the customer's SMS consent: {e}")))?;
        if consent.is_some_and(|c| c.opted_out) {
            return Err(permanent(OPTED_OUT.to_string()));
        }
        if item.body.trim().is_empty() {
            return Err(permanent("an empty SMS cannot be sent".to_string()));
        }
        if item.body.chars().count() > MAX_BODY_CHARS {
            return Err(permanent(format!(
                "longer than {MAX_BODY_CHARS} characters, the most one SMS reply carries: \
                 shorten it, or send it as two replies"
            )));
        }
        if let Some(d) = self.frozen_for() {
            return Err(temporary(rate_limited(d)));
        }
        let token = self.token().await?;
        let c = &self.config;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            c.api_url, c.account_sid
        );
        let mut form: Vec<(&str, String)> = vec![("To", to.clone())];
        match (&c.messaging_service_sid, &c.from) {
            (Some(svc), _) => form.push(("MessagingServiceSid", svc.clone())),
            (None, Some(from)) => form.push(("From", from.clone())),
            (None, None) => {}
        }
        form.push(("Body", item.body.clone()));
        form.push(("StatusCallback", c.hook_url(super::STATUS_PATH)));
        let resp = self
            .http
            .post(&url)
            .basic_auth(&c.account_sid, Some(&token))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                // reqwest's words name the URL (the SID, no secret), never the auth header.
                let reason = format!("cannot reach the SMS provider: {}", words(&e.to_string()));
                if e.is_connect() {
                    temporary(reason)
                } else {
                    // The request may have left: the provider may have taken it.
                    SendError {
                        reason,
                        retry: false,
                        may_have_sent: true,
                    }
                }
            })?;
        let status = resp.status();
        let wait = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            let sid = json
                .as_ref()
                .and_then(|j| j.get("sid"))
                .and_then(|s| s.as_str())
                .filter(|s| super::is_sid(s));
            return match sid {
                Some(sid) => Ok(Sent {
                    account: c.account.clone(),
                    external_id: Some(sid.to_string()),
                }),
                None => Err(SendError {
                    reason: "the SMS provider accepted the message but its answer has no \
                             message sid"
                        .to_string(),
                    retry: false,
                    may_have_sent: true,
                }),
            };
        }
        let code = json.as_ref().and_then(|j| j.get("code")).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(|m| m.as_str())
            .map(words);
        let described = match (&code, &message) {
            (Some(c), Some(m)) => format!("{}: {m}", words(c)),
            (Some(c), None) => format!("{} (HTTP {})", words(c), status.as_u16()),
            (None, Some(m)) => format!("HTTP {}: {m}", status.as_u16()),
            (None, None) => format!("HTTP {}", status.as_u16()),
        };
        if code.as_deref() == Some(OPTED_OUT_CODE) {
            self.record_opt_out(to).await;
            return Err(permanent(OPTED_OUT.to_string()));
        }
        if status.as_u16() == 429 {
            let d = wait.unwrap_or(DEFAULT_RETRY_AFTER);
            self.freeze(d);
            return Err(temporary(rate_limited(d)));
        }
        if status.is_server_error() {
            if let Some(d) = wait {
                self.freeze(d);
            }
            return Err(temporary(format!("SMS provider: {described}")));
        }
        if status.as_u16() == 401 {
            // Fixable in the config; worth retrying once fixed.
            return Err(temporary(
                "the SMS provider refused braid's credentials (HTTP 401): check [sms] \
                 account_sid and the auth token"
                    .to_string(),
            ));
        }
        Err(permanent(format!("SMS provider: {described}")))
    }
}

impl Outbound for SmsSender {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(self.deliver(item))
    }

    /// The provider cannot be asked whether a send that timed out went out (not cheaply):
    /// such a reply waits for an agent.
    fn resend_is_safe(&self) -> bool {
        false
    }
}
