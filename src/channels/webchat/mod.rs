//! Website live chat: braid serves a small dependency-free JavaScript widget that any site embeds
//! with one tag, and carries its messages both ways.
//!
//! ```html
//! <script src="https://chat.example.com/widget.js" data-title="Chat with us" async></script>
//! ```
//!
//! The process holding the worker lease runs the server ([`WebChatServer`]): `/widget.js`, a
//! demo page at `/` that embeds it, a WebSocket at `/ws` and a long-poll fallback under `/lp/`
//! (see [`protocol`]). A visitor gets a random id signed with a server secret ([`secret`]) and
//! kept in the page's localStorage, with the chat history, so both survive reloads and nobody
//! can pose as another visitor. An email the visitor types in the widget (optional) is only a
//! CLAIM ([`crate::store::claims`]): the visitor stays their own contact, the profile shows
//! "claims to be … (unverified)" and an agent links it (`:claim link`) or dismisses it. A
//! visitor joins an existing contact only when the embedding site vouches for them: the page
//! gives `data-user-email` and `data-user-hash` (HMAC-SHA256 of the email under the identity
//! secret, [`secret::IdentityKey`]), verified here.
//!
//! Visitor messages go through [`crate::ingest`] like every channel's. Agent replies go out
//! through [`WebChatServer::outbound`]: pushed to the visitor's open widget, or, when the
//! visitor has left and the contact has a verified email, by email (noted in the timeline:
//! "delivered by email: visitor offline"), or failed with the reason (no email, only an
//! unverified one, no email account configured) and sent again when the visitor comes back.
//!
//! Hostile input: an origin allowlist, a message size limit (and a frame size limit under it),
//! per-visitor and per-IP rate limits, a cap on open connections, and visitor text that is only
//! ever shown as text (the widget uses `textContent`; the terminal gets it through
//! [`crate::sanitize`]). A malformed frame closes that socket, never the server.

pub mod config;
mod db;
pub mod hub;
mod limits;
pub mod protocol;
pub mod secret;
mod server;

pub use config::WebChatConfig;
pub use server::CLOSE_BAD_VISITOR;

use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::model::Channel;
use crate::store::{DB_FILE, OutboxItem};
use anyhow::Context;
use hub::{Frame, Hub};
use limits::RateLimiter;
use protocol::{From, ServerFrame};
use secret::{IdentityKey, Signer};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a reply waits for a visitor who is not connected right now (a page reloading)
/// before it goes by email or fails.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(2);

/// What the worker needs to run the web chat.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: WebChatConfig,
    pub ingest: crate::ingest::Settings,
    /// How long a long poll waits (shortened in tests).
    pub long_poll: Duration,
    /// The webhook sources served under `/hooks/` on the same listener.
    pub hooks: Vec<crate::channels::hooks::SourceSpec>,
}

impl Options {
    pub fn new(config: WebChatConfig, ingest: crate::ingest::Settings) -> Options {
        Options {
            config,
            ingest,
            long_poll: server::LONG_POLL,
            hooks: Vec::new(),
        }
    }
}

/// The address a browser on this machine opens for a listen address (`0.0.0.0` -> loopback).
pub fn local_url(listen: SocketAddr) -> String {
    let ip: IpAddr = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, listen.port()))
}

/// Everything the handlers share.
pub(crate) struct Shared {
    config: WebChatConfig,
    signer: Signer,
    /// Verifies the logged-in user an embedding site signs (`data-user-hash`).
    identity: IdentityKey,
    hub: Arc<Hub>,
    db: db::Db,
    visitor_messages: RateLimiter<String>,
    ip_messages: RateLimiter<IpAddr>,
    ip_connections: RateLimiter<IpAddr>,
    long_poll: Duration,
    stop: watch::Receiver<bool>,
    /// The origins of the server's own pages: the bound listen address (and `localhost` on
    /// loopback), and the configured public origin.
    own_origins: Vec<String>,
}

impl Shared {
    /// The largest frame or request body accepted, in bytes: the longest message with every
    /// character JSON-escaped as a `\uXXXX\uXXXX` pair (12 bytes), and room for the rest of the
    /// frame. The message limit itself counts characters after decoding.
    fn frame_limit(&self) -> usize {
        self.config
            .max_message_chars
            .saturating_mul(12)
            .saturating_add(4096)
    }
}

/// The origins a page served by this server has (see [`Shared::own_origins`]).
fn own_origins(addr: SocketAddr, public: Option<&str>) -> Vec<String> {
    let mut out = vec![local_url(addr).trim_end_matches('/').to_string()];
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        out.push(format!("http://localhost:{}", addr.port()));
    }
    if let IpAddr::V4(v4) = addr.ip()
        && !v4.is_unspecified()
    {
        out.push(format!("http://{addr}"));
    }
    out.extend(public.map(config::normalize_origin));
    out.dedup();
    out
}

/// A running web chat server. Dropping it stops it too (without waiting).
pub struct WebChatServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WebChatServer {
    /// Bind `options.config.listen` and serve, with the store and the secret of `data_dir`.
    pub async fn start(options: &Options, data_dir: &Path) -> anyhow::Result<WebChatServer> {
        let config = options.config.clone();
        raise_open_files_limit();
        let dir = data_dir.to_path_buf();
        let ingest = options.ingest.clone();
        let sources = crate::channels::hooks::build_all(&options.hooks)
            .await
            .map_err(|e| anyhow::anyhow!("webhooks: {e}"))?;
        let (signer, identity, db, inbox) = tokio::task::spawn_blocking(move || {
            let signer = Signer::load_or_create(&dir)?;
            let identity = IdentityKey::load_or_create(&dir)?;
            let db = db::Db::start(&dir.join(DB_FILE), ingest.clone())?;
            let inbox = if sources.is_empty() {
                None
            } else {
                Some((
                    sources.clone(),
                    crate::channels::hooks::process::Inbox::start(
                        &dir.join(DB_FILE),
                        sources,
                        ingest,
                    )?,
                ))
            };
            Ok::<_, anyhow::Error>((signer, identity, db, inbox))
        })
        .await??;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let config_public = config.public_origin.clone();
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            visitor_messages: RateLimiter::new(config.visitor_messages_per_minute),
            ip_messages: RateLimiter::new(config.ip_messages_per_minute),
            ip_connections: RateLimiter::new(config.ip_connections_per_minute),
            config,
            signer,
            identity,
            hub: Arc::new(Hub::default()),
            db,
            long_poll: options.long_poll,
            stop: stop_rx.clone(),
            own_origins: own_origins(addr, config_public.as_deref()),
        });
        let mut router = server::router(Arc::clone(&shared));
        if let Some((sources, inbox)) = inbox {
            tracing::info!(paths = ?sources, "webhooks listening under /hooks/");
            router = router.merge(crate::channels::hooks::router(sources, inbox));
        }
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let hub = Arc::clone(&shared.hub);
        let mut stopped = stop_rx;
        let task = tokio::spawn(async move {
            let mut wait = stopped.clone();
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = wait.wait_for(|s| *s).await;
                })
                .into_future();
            tokio::pin!(serve);
            let mut sweep = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    r = &mut serve => {
                        if let Err(e) = r {
                            tracing::warn!("web chat server stopped: {e}");
                        }
                        return;
                    }
                    _ = sweep.tick() => hub.sweep(),
                    _ = stopped.changed() => {
                        // Give open connections a moment to close, then stop regardless.
                        let _ = tokio::time::timeout(Duration::from_secs(2), &mut serve).await;
                        return;
                    }
                }
            }
        });
        tracing::info!(%addr, "web chat listening");
        Ok(WebChatServer {
            addr,
            shared,
            stop,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The demo page's address (`http://127.0.0.1:8765/`).
    pub fn url(&self) -> String {
        local_url(self.addr)
    }

    /// For the status line: "web chat http://127.0.0.1:8765/ (2 online)".
    pub fn status(&self) -> String {
        format!(
            "web chat {} ({} online)",
            self.url(),
            self.shared.hub.online()
        )
    }

    /// Visitors connected now.
    pub fn online(&self) -> usize {
        self.shared.hub.online()
    }

    /// The sender of web chat replies. `others`: the sender for visitor ids this server did not
    /// issue (the demo's simulated visitors); `email`: the email sender, for visitors who left.
    pub fn outbound(
        &self,
        others: Option<Arc<dyn Outbound>>,
        email: Option<Arc<dyn Outbound>>,
    ) -> Arc<dyn Outbound> {
        Arc::new(WebOutbound {
            shared: Arc::clone(&self.shared),
            others,
            email,
        })
    }

    /// Stop: close every connection and the listener.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(3), &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("web chat server did not stop in time");
        }
    }
}

impl Drop for WebChatServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct WebOutbound {
    shared: Arc<Shared>,
    others: Option<Arc<dyn Outbound>>,
    email: Option<Arc<dyn Outbound>>,
}

impl Outbound for WebOutbound {
    fn channel(&self) -> Channel {
        Channel::WebChat
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(self.deliver(item))
    }
}

impl WebOutbound {
    async fn deliver(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let visitor = item.recipient.as_str();
        if !secret::is_visitor_id(visitor) {
            return match &self.others {
                Some(o) => o.send(item).await,
                None => Err(SendError {
                    reason: format!("'{visitor}' is not a visitor of this web chat"),
                    retry: false,
                    may_have_sent: false,
                }),
            };
        }
        let survey = crate::csat::survey_of(item.meta.as_ref());
        let frame: Frame = ServerFrame::Msg {
            id: format!("m{}", item.message_id),
            from: From::Agent,
            // A survey is the shop's question, not a person's message.
            author: if survey.is_some() {
                String::new()
            } else {
                item.author.clone()
            },
            text: item.body.clone(),
            at: crate::model::now_millis(),
            csat: survey.map(|c| c.0),
        }
        .to_json()
        .into();
        let sent = Sent {
            account: String::new(),
            external_id: Some(format!("{visitor}:out{}", item.message_id)),
        };
        let hub = &self.shared.hub;
        if hub.push(visitor, &frame, None)
            || (hub.wait_connected(visitor, RECONNECT_GRACE).await
                && hub.push(visitor, &frame, None))
        {
            return Ok(sent);
        }
        // The visitor has left: only a VERIFIED address may get the reply (one the embedding
        // site signed, one the customer wrote from, or one an agent linked). An address the
        // visitor typed is only a claim: mailing it would send the conversation to whoever
        // owns that address.
        let reach = self
            .shared
            .db
            .email_of(item.contact_id)
            .await
            .map_err(|reason| SendError {
                reason,
                retry: true,
                may_have_sent: false,
            })?;
        let Some(address) = reach.verified else {
            let reason = if reach.claimed.is_empty() {
                "visitor offline and gave no email; sent again when they come back".to_string()
            } else {
                format!(
                    "visitor offline; the email they typed ({}) is not verified, so the reply is not sent there (:claim link if you know it is theirs); sent again when they come back",
                    crate::sanitize::line(&reach.claimed.join(", "))
                )
            };
            return Err(SendError {
                reason,
                retry: false,
                may_have_sent: false,
            });
        };
        let Some(mailer) = &self.email else {
            return Err(SendError {
                reason: format!(
                    "visitor offline; no email account is configured to send it to {address} instead (sent again when they come back)"
                ),
                retry: false,
                may_have_sent: false,
            });
        };
        let mut mail = item.clone();
        mail.channel = Channel::Email;
        mail.recipient = address.clone();
        mail.subject = Some("Re: your chat with us".into());
        match mailer.send(&mail).await {
            Ok(by_mail) => {
                let note = format!("delivered by email: visitor offline (sent to {address})");
                if let Err(e) = self.shared.db.note(item.conversation_id, note).await {
                    tracing::warn!("web chat: cannot note an email delivery: {e}");
                }
                Ok(Sent {
                    account: by_mail.account,
                    external_id: by_mail.external_id.or(sent.external_id),
                })
            }
            Err(e) => Err(SendError {
                reason: format!("visitor offline; by email to {address}: {}", e.reason),
                retry: e.retry,
                may_have_sent: false,
            }),
        }
    }
}

/// A thousand visitors are a thousand sockets: lift the soft limit on open files to the hard one.
fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: lim.rlim_max.min(65_536),
                    rlim_max: lim.rlim_max,
                };
                if want.rlim_cur > lim.rlim_cur {
                    libc::setrlimit(libc::RLIMIT_NOFILE, &want);
                }
            }
        }
    }
}
