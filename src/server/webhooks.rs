//! Webhooks out on the server (see [`crate::webhooks`] for what a receiver gets): the
//! dispatcher follows the events table into the durable queue (the store's `webhooks`
//! derivation) and posts each endpoint's due deliveries, a few at a time, oldest first, on its
//! own store connection; never on a client's path. A delivery is marked done only after a 2xx
//! (at least once: rows in flight when a server died are sent again by the next one). The
//! signing secrets are read once, when the dispatcher starts (or a test needs one); they are
//! never printed or logged.

use crate::model::{Millis, now_millis};
use crate::store::Store;
use crate::store::webhooks::{Delivery, Outcome};
use crate::webhooks::{Backoff, WebhookConfig};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[cfg(test)]
#[path = "webhooks_tests.rs"]
mod tests;

/// Deliveries in flight at once, per endpoint.
pub const CONCURRENCY: usize = 8;

/// The longest a dispatcher sleeps without looking at its queue.
const IDLE: Duration = Duration::from_secs(5);

/// How long delivered rows are kept (`status` counts what was delivered within it).
pub const KEEP_DELIVERED_MS: i64 = 30 * 86_400_000;

/// How much of a receiver's answer is kept with an error.
const ERROR_BODY_BYTES: usize = 300;

/// One configured endpoint.
pub struct Endpoint {
    pub config: WebhookConfig,
    /// The signing secret, read the first time it is needed (the dispatcher's start, a
    /// test): a one-shot command's in-process server runs no `secret_command`.
    secret: tokio::sync::OnceCell<Result<Vec<u8>, String>>,
    client: Result<reqwest::Client, String>,
    wake: Notify,
}

// No derived Debug: it would print the secret.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.config.name)
            .field("url", &self.config.display_url())
            .field("problem", &self.problem())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The signing secret (read once; an error names the key, never the value).
    pub async fn secret(&self) -> Result<&[u8], String> {
        let r = self
            .secret
            .get_or_init(|| async {
                let place = format!("[[webhooks]] {}", self.config.name);
                crate::secret::resolve(&self.config.secret, "secret", &place, true)
                    .await
                    .map(String::into_bytes)
            })
            .await;
        match r {
            Ok(s) => Ok(s.as_slice()),
            Err(e) => Err(e.clone()),
        }
    }

    /// Why nothing can be sent (the secret could not be read, no HTTP client): shown by
    /// `braid webhooks status`; the deliveries wait.
    pub fn problem(&self) -> Option<String> {
        if let Some(Err(e)) = self.secret.get() {
            return Some(e.clone());
        }
        self.client.as_ref().err().cloned()
    }
}

/// Every endpoint, and how failures are retried.
#[derive(Debug)]
pub struct Hooks {
    pub endpoints: Vec<Arc<Endpoint>>,
    pub backoff: Backoff,
    pub concurrency: usize,
    derive: Notify,
}

impl Hooks {
    /// The endpoints (their secrets are read when first needed: [`Endpoint::secret`]).
    pub fn new(configs: &[WebhookConfig], backoff: Backoff) -> Hooks {
        let endpoints = configs
            .iter()
            .map(|c| {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_millis(c.timeout_ms.max(1) as u64))
                    .connect_timeout(Duration::from_millis(c.timeout_ms.max(1) as u64))
                    // A receiver that moved says so; following it would send the signed
                    // body somewhere nobody configured.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("braid-webhooks/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot build an HTTP client: {e}"));
                Arc::new(Endpoint {
                    config: c.clone(),
                    secret: tokio::sync::OnceCell::new(),
                    client,
                    wake: Notify::new(),
                })
            })
            .collect();
        Hooks {
            endpoints,
            backoff,
            concurrency: CONCURRENCY,
            derive: Notify::new(),
        }
    }

    /// New events may be in the events table (the server's feed calls it).
    pub fn poke(&self) {
        self.derive.notify_one();
    }

    pub fn endpoint(&self, name: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.config.name == name)
    }

    fn filters(&self) -> Vec<(String, crate::webhooks::EventFilter)> {
        self.endpoints
            .iter()
            .map(|e| (e.config.name.clone(), e.config.events.clone()))
            .collect()
    }
}

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub status: Option<u16>,
    /// A 429's `Retry-After`, in ms.
    pub retry_after_ms: Option<i64>,
    /// Why it did not succeed (sanitized, never holding the secret).
    pub error: Option<String>,
}

/// POST one signed body to the endpoint.
pub async fn post(ep: &Endpoint, delivery: &str, kind: &str, body: &str) -> Attempt {
    let (secret, client) = match (ep.secret().await, &ep.client) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) => {
            return Attempt {
                status: None,
                retry_after_ms: None,
                error: Some(e),
            };
        }
        (_, Err(e)) => {
            return Attempt {
                status: None,
                retry_after_ms: None,
                error: Some(e.clone()),
            };
        }
    };
    let ts = now_millis() / 1000;
    let sig = crate::webhooks::sign(secret, ts, body.as_bytes());
    let sent = client
        .post(&ep.config.url)
        .header("Content-Type", "application/json")
        .header("X-Braid-Delivery", delivery)
        .header("X-Braid-Event", kind)
        .header("X-Braid-Timestamp", ts.to_string())
        .header("X-Braid-Signature", sig)
        .body(body.to_string())
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Attempt {
                status: None,
                retry_after_ms: None,
                error: Some(describe_error(&e, ep.config.timeout_ms)),
            };
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Attempt {
            status: Some(status.as_u16()),
            retry_after_ms: None,
            error: None,
        };
    }
    let retry_after_ms = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|s| s.clamp(0, 86_400) * 1000);
    // The start of what the receiver said, as one clean line.
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match tokio::time::timeout(Duration::from_secs(2), resp.chunk()).await {
            Ok(Ok(Some(c))) => bytes.extend_from_slice(&c),
            _ => break,
        }
    }
    bytes.truncate(ERROR_BODY_BYTES);
    let said = crate::sanitize::line(&String::from_utf8_lossy(&bytes));
    let mut error = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        error.push(' ');
        error.push_str(reason);
    }
    if status.is_redirection() {
        error.push_str(" (redirects are not followed: configure the final url)");
    }
    if !said.is_empty() {
        error.push_str(": ");
        error.push_str(&said);
    }
    Attempt {
        status: Some(status.as_u16()),
        retry_after_ms,
        error: Some(error),
    }
}

/// A transport error as one line, without the URL (it may carry a token).
fn describe_error(e: &reqwest::Error, timeout_ms: i64) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {}",
            crate::units::duration_label(timeout_ms)
        );
    }
    let mut what = if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    // The innermost cause says the most (connection refused, dns error...).
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        what.push_str(": ");
        what.push_str(&crate::sanitize::line(&l));
    }
    what
}

/// What to do with a delivery after an attempt.
pub fn outcome(a: &Attempt, d: &Delivery, now: Millis, backoff: &Backoff, jitter: f64) -> Outcome {
    let error = a.error.clone().unwrap_or_default();
    match a.status {
        Some(s) if (200..300).contains(&s) => return Outcome::Delivered { status: s },
        Some(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
            return Outcome::Failed {
                status: a.status,
                error: format!(
                    "{error} (refused: not retried; `braid webhooks retry` sends it again)"
                ),
            };
        }
        _ => {}
    }
    let failures = d.attempts + 1;
    let wait = match (a.status, a.retry_after_ms) {
        (Some(429), Some(ms)) => ms.max(1000),
        _ => backoff.delay_ms(failures, jitter),
    };
    let next_at = now.saturating_add(wait);
    if next_at.saturating_sub(d.created_at) > backoff.give_up_ms {
        return Outcome::Failed {
            status: a.status,
            error: format!(
                "{error} (gave up after {failures} attempts over {})",
                crate::units::duration_label(now.saturating_sub(d.created_at))
            ),
        };
    }
    Outcome::Retry {
        status: a.status,
        error,
        next_at,
    }
}

/// The dispatcher's tasks (aborted when dropped).
pub struct Dispatcher {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dispatcher {
    /// Take the tasks (the server keeps them with its own).
    pub fn into_tasks(mut self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut self.tasks)
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Run `f` on `store` off the async threads, and get the store back.
async fn blocking<T: Send + 'static>(
    store: Store,
    f: impl FnOnce(&mut Store) -> crate::store::Result<T> + Send + 'static,
) -> anyhow::Result<(Store, crate::store::Result<T>)> {
    tokio::task::spawn_blocking(move || {
        let mut store = store;
        let r = f(&mut store);
        (store, r)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Start the dispatcher on the store at `db`: deliveries a previous run left in flight are
/// due again, then one task follows the events table into the queue and one per endpoint
/// sends. Only one dispatcher may run per store (the server's lock sees to it).
pub async fn start(db: PathBuf, hooks: Arc<Hooks>) -> anyhow::Result<Dispatcher> {
    let path = db.clone();
    let filters = hooks.filters();
    let requeued = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut s = Store::open(&path)?;
        let n = s.webhook_requeue_sending(now_millis())?;
        // Before anything else writes: a store new to webhooks starts following here.
        s.derive_webhooks(&filters, now_millis())?;
        Ok(n)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))??;
    if requeued > 0 {
        tracing::info!(
            requeued,
            "webhooks: attempts in flight at the last stop are due again"
        );
    }
    let mut tasks = vec![tokio::spawn(derive_loop(db.clone(), Arc::clone(&hooks)))];
    for ep in &hooks.endpoints {
        tasks.push(tokio::spawn(endpoint_loop(
            db.clone(),
            Arc::clone(&hooks),
            Arc::clone(ep),
        )));
    }
    Ok(Dispatcher { tasks })
}

async fn open(db: &std::path::Path) -> Store {
    loop {
        let p = db.to_path_buf();
        match tokio::task::spawn_blocking(move || Store::open(&p)).await {
            Ok(Ok(s)) => return s,
            Ok(Err(e)) => tracing::warn!("webhooks: cannot open the store: {e}"),
            Err(e) => tracing::warn!("webhooks: cannot open the store: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Follow the events table into the queue: at once when poked, and every few seconds.
async fn derive_loop(db: PathBuf, hooks: Arc<Hooks>) {
    let mut store = open(&db).await;
    let filters = Arc::new(hooks.filters());
    let mut pruned_at = std::time::Instant::now();
    loop {
        if pruned_at.elapsed() > Duration::from_secs(3600) {
            pruned_at = std::time::Instant::now();
            match blocking(store, |s| s.webhook_prune(now_millis() - KEEP_DELIVERED_MS)).await {
                Ok((s, r)) => {
                    store = s;
                    if let Err(e) = r {
                        tracing::warn!("webhooks: forgetting old deliveries: {e}");
                    }
                }
                Err(_) => store = open(&db).await,
            }
        }
        let f = Arc::clone(&filters);
        match blocking(store, move |s| s.derive_webhooks(&f, now_millis())).await {
            Ok((s, r)) => {
                store = s;
                match r {
                    Ok(n) if n > 0 => {
                        for ep in &hooks.endpoints {
                            ep.wake.notify_one();
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("webhooks: following the events: {e}"),
                }
            }
            Err(e) => {
                tracing::warn!("webhooks: {e}");
                store = open(&db).await;
            }
        }
        tokio::select! {
            _ = hooks.derive.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
}

/// Send one endpoint's due deliveries, `concurrency` at a time, oldest first.
async fn endpoint_loop(db: PathBuf, hooks: Arc<Hooks>, ep: Arc<Endpoint>) {
    if let Err(e) = ep.secret().await {
        // Nothing can be signed: the deliveries wait (status says why) for a restart with
        // the secret readable.
        tracing::warn!("webhooks: {e}");
        return;
    }
    if ep.client.is_err() {
        return;
    }
    let mut store = open(&db).await;
    let limit = hooks.concurrency.max(1) * 4;
    loop {
        let name = ep.config.name.clone();
        let claimed = blocking(store, move |s| s.webhook_claim(&name, now_millis(), limit)).await;
        let batch = match claimed {
            Ok((s, r)) => {
                store = s;
                match r {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("webhooks {}: {e}", ep.config.name);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::warn!("webhooks: {e}");
                store = open(&db).await;
                continue;
            }
        };
        if batch.is_empty() {
            let name = ep.config.name.clone();
            let next = match blocking(store, move |s| s.webhook_next_due(&name)).await {
                Ok((s, r)) => {
                    store = s;
                    r.ok().flatten()
                }
                Err(_) => {
                    store = open(&db).await;
                    None
                }
            };
            let wait = next
                .map(|at| Duration::from_millis(at.saturating_sub(now_millis()).max(0) as u64))
                .unwrap_or(IDLE)
                .min(IDLE);
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = ep.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let results: Vec<(i64, Outcome)> = futures::stream::iter(batch)
            .map(|d| {
                let ep = Arc::clone(&ep);
                let backoff = hooks.backoff;
                async move {
                    let a = post(&ep, &d.delivery, &d.kind, &d.body).await;
                    let o = outcome(&a, &d, now_millis(), &backoff, crate::webhooks::jitter());
                    if let Outcome::Failed { error, .. } = &o {
                        tracing::warn!(endpoint = %ep.config.name, delivery = %d.delivery, "webhook failed: {error}");
                    }
                    (d.row, o)
                }
            })
            .buffer_unordered(hooks.concurrency.max(1))
            .collect()
            .await;
        match blocking(store, move |s| s.webhook_record(&results, now_millis())).await {
            Ok((s, r)) => {
                store = s;
                if let Err(e) = r {
                    tracing::warn!("webhooks {}: recording attempts: {e}", ep.config.name);
                }
            }
            Err(e) => {
                tracing::warn!("webhooks: {e}");
                store = open(&db).await;
            }
        }
    }
}

/// `braid webhooks test NAME`: a signed `ping` now, outside the queue.
pub async fn test(hooks: &Hooks, name: &str) -> crate::api::Response {
    use crate::api::{Response, WebhookTested};
    let Some(ep) = hooks.endpoint(name) else {
        return Response::Error(unknown(hooks, name));
    };
    let now = now_millis();
    let mut rnd = [0u8; 8];
    let _ = getrandom::fill(&mut rnd);
    let delivery = format!(
        "ping-{}",
        rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let body = crate::store::webhooks::payload(
        &delivery,
        crate::webhooks::PING,
        now,
        &serde_json::json!({ "endpoint": name }),
    );
    let started = std::time::Instant::now();
    let a = post(ep, &delivery, crate::webhooks::PING, &body).await;
    Response::WebhookTested(Box::new(WebhookTested {
        name: name.to_string(),
        url: ep.config.display_url(),
        delivery,
        status: a.status,
        ok: a.status.is_some_and(|s| (200..300).contains(&s)),
        error: a.error,
        ms: started.elapsed().as_millis() as i64,
    }))
}

/// The error for a name no `[[webhooks]]` has.
pub fn unknown(hooks: &Hooks, name: &str) -> String {
    let known: Vec<&str> = hooks
        .endpoints
        .iter()
        .map(|e| e.config.name.as_str())
        .collect();
    format!(
        "no [[webhooks]] is named '{}' (configured: {})",
        crate::sanitize::line(name),
        if known.is_empty() {
            "none; add [[webhooks]] to the server's config".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// `braid webhooks status`: every endpoint with its queue.
pub fn status(hooks: &Hooks, store: &Store) -> anyhow::Result<Vec<crate::api::WebhookStatus>> {
    let mut out = Vec::new();
    for ep in &hooks.endpoints {
        out.push(crate::api::WebhookStatus {
            name: ep.config.name.clone(),
            url: ep.config.display_url(),
            events: ep.config.events.names(),
            problem: ep.problem(),
            counts: store.webhook_counts(&ep.config.name)?,
        });
    }
    Ok(out)
}

/// `braid webhooks retry NAME`: the failed deliveries are due again.
pub fn retry(hooks: &Hooks, store: &mut Store, name: &str) -> anyhow::Result<String> {
    let Some(ep) = hooks.endpoint(name) else {
        anyhow::bail!("{}", unknown(hooks, name));
    };
    let n = store.webhook_retry_failed(name, now_millis())?;
    ep.wake.notify_one();
    Ok(format!(
        "{n} failed deliver{} of '{name}' will be sent again",
        if n == 1 { "y" } else { "ies" }
    ))
}

/// Answer [`crate::api::Request::WebhooksStatus`], `WebhookTest` and `WebhookRetry` (admins;
/// the role is checked by [`super::handler::authorize`] first).
pub(crate) async fn answer(
    shared: &Arc<super::Shared>,
    who: &Arc<super::Identity>,
    req: crate::api::Request,
) -> crate::api::Response {
    use crate::api::{Request, Response};
    let sh = Arc::clone(shared);
    let w = Arc::clone(who);
    let checked = req.clone();
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<Response>> {
        let mut store = sh.take_store()?;
        let r = (|| -> anyhow::Result<Option<Response>> {
            if let Some(refused) = super::handler::authorize(&mut store, &w, &checked) {
                return Ok(Some(refused));
            }
            Ok(match &checked {
                Request::WebhooksStatus => Some(Response::Webhooks(status(&sh.webhooks, &store)?)),
                Request::WebhookRetry { name } => {
                    Some(match retry(&sh.webhooks, &mut store, name) {
                        Ok(m) => Response::Done(m),
                        Err(e) => Response::Error(e.to_string()),
                    })
                }
                _ => None,
            })
        })();
        sh.give_store(store);
        r
    })
    .await;
    match done {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => match req {
            Request::WebhookTest { name } => test(&shared.webhooks, &name).await,
            _ => Response::Error("not a webhooks request".into()),
        },
        Ok(Err(e)) => Response::Error(e.to_string()),
        Err(e) => Response::Error(e.to_string()),
    }
}
