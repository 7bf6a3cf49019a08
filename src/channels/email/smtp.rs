//! SMTP out (lettre, rustls): the email channel's [`Outbound`].
//!
//! A reply is already on disk (the outbox) before this runs. Then:
//! 1. its headers are fixed in the store ([`Store::prepare_outgoing_email`]): our Message-ID,
//!    `In-Reply-To` / `References` from the conversation's mail thread, the account. Every
//!    later attempt sends exactly the same message;
//! 2. if an earlier attempt may have gone out (it timed out, the connection dropped, the process
//!    died), the account's Sent folder is searched for that Message-ID first: found means sent,
//!    so a reply never goes out twice;
//! 3. the message (plain text, the customer's last email quoted below it) goes out through
//!    SMTP within the account's timeout;
//! 4. it is appended to the Sent folder (`\Seen`), where other mail clients see it too.
//!
//! A server's 5xx is a permanent failure (shown, not retried until `:retry`); a 4xx, a timeout
//! or a broken connection is retried by the outbox with backoff.

use super::Account;
use super::net::{NetError, timed};
use crate::channels::{Outbound, SendError, SendFuture, Sent};
use crate::model::Channel;
use crate::store::email::{OutgoingEmail, QuotedEmail};
use crate::store::{OutboxItem, Store};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox as Address, MessageBuilder};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// At most this many lines of the customer's message are quoted.
const MAX_QUOTED_LINES: usize = 200;

/// Sends email replies through the configured accounts.
pub struct EmailSender {
    accounts: Vec<Arc<Account>>,
    store_path: PathBuf,
    store: Arc<Mutex<Option<Store>>>,
}

impl EmailSender {
    pub fn new(accounts: Vec<Arc<Account>>, store_path: PathBuf) -> Arc<EmailSender> {
        Arc::new(EmailSender {
            accounts,
            store_path,
            store: Arc::new(Mutex::new(None)),
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

    async fn send_item(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let retry = |reason: String| SendError {
            reason,
            retry: true,
            may_have_sent: false,
        };
        if self.accounts.is_empty() {
            return Err(SendError {
                reason: crate::worker::no_sender_reason(Channel::Email).into(),
                retry: false,
                may_have_sent: false,
            });
        }
        let names: Vec<String> = self
            .accounts
            .iter()
            .map(|a| a.config.name.clone())
            .collect();
        let domains: Vec<(String, String)> = self
            .accounts
            .iter()
            .map(|a| (a.config.name.clone(), a.config.domain().to_string()))
            .collect();
        let random = random_token();
        let message = item.message_id;
        let out = self
            .with_store(move |s| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let domain_of = |name: &str| {
                    domains
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, d)| d.clone())
                        .unwrap_or_else(|| "braid.invalid".into())
                };
                s.prepare_outgoing_email(message, &names, &domain_of, &random)
            })
            .await
            .map_err(|e| retry(format!("cannot prepare the email: {e}")))?;
        let account = self
            .accounts
            .iter()
            .find(|a| a.config.name == out.account)
            .or(self.accounts.first())
            .cloned()
            .ok_or_else(|| retry("no email account".into()))?;
        let sent = Sent {
            account: account.config.name.clone(),
            external_id: (item.channel == Channel::Email).then(|| out.message_id.clone()),
        };

        if out.maybe_sent_before
            && let Some(folder) = &account.config.sent_folder
        {
            match account.find_message_id(folder, &out.message_id).await {
                Ok(true) => {
                    tracing::info!(
                        message = message.0,
                        "an earlier attempt went out (found in {folder}); not sending it again"
                    );
                    return Ok(sent);
                }
                Ok(false) => {}
                Err(e) => {
                    return Err(retry(format!(
                        "an earlier attempt may have gone out and the {folder} folder cannot be checked ({e}); not sending it twice"
                    )));
                }
            }
        }

        let raw = compose(&account, item, &out).map_err(|e| SendError {
            reason: format!("cannot build the email: {e}"),
            retry: false,
            may_have_sent: false,
        })?;
        match account.smtp_send(&raw.0, &raw.1).await {
            Ok(()) => {
                if let Some(folder) = &account.config.sent_folder
                    && let Err(e) = account.append(folder, &raw.1).await
                {
                    tracing::warn!(message = message.0, "sent, but not filed in {folder}: {e}");
                    account.report_error(format!("sent, but not filed in {folder}: {e}"));
                }
                Ok(sent)
            }
            Err(e) => {
                let refused = e.refused;
                if let Err(err) = self
                    .with_store(move |s| s.note_email_attempt(message, refused))
                    .await
                {
                    tracing::warn!(message = message.0, "cannot record the attempt: {err}");
                }
                Err(SendError {
                    reason: e.reason,
                    retry: !e.permanent,
                    may_have_sent: false,
                })
            }
        }
    }
}

impl Outbound for EmailSender {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn send<'a>(&'a self, item: &'a OutboxItem) -> SendFuture<'a> {
        Box::pin(self.send_item(item))
    }
}

fn random_token() -> String {
    let mut b = [0u8; 9];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough with the message number in front of it.
        let t = crate::model::now_millis() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// "On 2026-12-03 14:05 UTC, Ann Lee wrote:" and the quoted lines.
fn quote_block(q: &QuotedEmail) -> String {
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(q.at) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default();
    let mut out = format!("On {when}, {} wrote:\n", q.author.trim());
    let lines: Vec<&str> = q.body.trim_end().lines().collect();
    for line in lines.iter().take(MAX_QUOTED_LINES) {
        if line.is_empty() {
            out.push_str(">\n");
        } else if line.starts_with('>') {
            out.push_str(&format!(">{line}\n"));
        } else {
            out.push_str(&format!("> {line}\n"));
        }
    }
    if lines.len() > MAX_QUOTED_LINES {
        out.push_str("> [...]\n");
    }
    out
}

/// The envelope and the RFC 5322 bytes of one reply.
pub fn compose(
    account: &Account,
    item: &OutboxItem,
    out: &OutgoingEmail,
) -> Result<(lettre::address::Envelope, Vec<u8>), String> {
    let cfg = &account.config;
    let from_name = cfg
        .from_name
        .clone()
        .or_else(|| (!item.author.trim().is_empty()).then(|| item.author.trim().to_string()));
    let from = Address::new(
        from_name,
        cfg.address
            .parse()
            .map_err(|e| format!("our address {}: {e}", cfg.address))?,
    );
    let to: Address = item
        .recipient
        .parse()
        .map_err(|e| format!("the recipient {}: {e}", item.recipient))?;
    let subject = item
        .subject
        .clone()
        .unwrap_or_else(|| "Re: your message".to_string());
    let mut body = item.body.trim_end().to_string();
    body.push('\n');
    if let Some(q) = &out.quote {
        body.push('\n');
        body.push_str(&quote_block(q));
    }
    let mut b: MessageBuilder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}>", out.message_id)))
        .date_now()
        .header(ContentType::TEXT_PLAIN)
        .user_agent("braid".to_string());
    if let Some(irt) = &out.in_reply_to {
        b = b.in_reply_to(format!("<{irt}>"));
    }
    if !out.references.is_empty() {
        let refs: Vec<String> = out.references.iter().map(|r| format!("<{r}>")).collect();
        b = b.references(refs.join(" "));
    }
    let msg = b.body(body).map_err(|e| e.to_string())?;
    Ok((msg.envelope().clone(), msg.formatted()))
}

/// A failed SMTP exchange.
#[derive(Debug, Clone)]
pub struct SmtpFailure {
    pub reason: String,
    /// The server answered with an error code: the message certainly was not accepted.
    pub refused: bool,
    /// A 5xx (or a setup problem): trying again will not help.
    pub permanent: bool,
}

impl Account {
    /// Send raw bytes through the account's SMTP server, within its timeout.
    pub async fn smtp_send(
        &self,
        envelope: &lettre::address::Envelope,
        raw: &[u8],
    ) -> Result<(), SmtpFailure> {
        let cfg = &self.config;
        let setup = |reason: String| SmtpFailure {
            reason,
            refused: true,
            permanent: true,
        };
        let password = self.password().await.map_err(|e| setup(e.to_string()))?;
        let mut tls = TlsParameters::builder(cfg.smtp.host.clone());
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| setup(format!("ca_file {}: {e}", path.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| setup(format!("ca_file {}: {e}", path.display())))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| setup(format!("TLS settings: {e}")))?;
        let mode = match cfg.smtp.security {
            super::account::Security::Tls => Tls::Wrapper(tls),
            super::account::Security::StartTls => Tls::Required(tls),
            super::account::Security::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp.host)
            .port(cfg.smtp.port)
            .tls(mode)
            .timeout(Some(cfg.timeout));
        if cfg.smtp_auth {
            builder = builder.credentials(Credentials::new(cfg.smtp_username.clone(), password));
        }
        let transport = builder.build();
        let sent = tokio::time::timeout(cfg.timeout * 2, transport.send_raw(envelope, raw)).await;
        match sent {
            Err(_) => Err(SmtpFailure {
                reason: format!(
                    "SMTP {}: no answer within {} s",
                    cfg.smtp,
                    (cfg.timeout * 2).as_secs()
                ),
                refused: false,
                permanent: false,
            }),
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => {
                let text = crate::sanitize::line(&e.to_string());
                let refused = e.is_permanent() || e.is_transient();
                Err(SmtpFailure {
                    reason: format!("SMTP {}: {text}", cfg.smtp),
                    refused,
                    permanent: e.is_permanent(),
                })
            }
        }
    }

    /// File a message in `folder` (`\Seen`).
    pub async fn append(&self, folder: &str, raw: &[u8]) -> Result<(), NetError> {
        let mut sess = self.login().await?;
        let limit = self.config.timeout;
        let r = timed(
            limit,
            "APPEND",
            sess.append(folder, Some("(\\Seen)"), None, raw),
        )
        .await;
        let _ = tokio::time::timeout(limit, sess.logout()).await;
        r
    }

    /// Whether `folder` holds a message with this Message-ID (without `<>`).
    pub async fn find_message_id(&self, folder: &str, message_id: &str) -> Result<bool, NetError> {
        if message_id.contains(['"', '\\', '\r', '\n']) {
            return Ok(false);
        }
        let mut sess = self.login().await?;
        let limit = self.config.timeout;
        let found = async {
            timed(limit, "EXAMINE", sess.examine(folder)).await?;
            let hits = timed(
                limit,
                "UID SEARCH",
                sess.uid_search(format!("HEADER Message-ID \"<{message_id}>\"")),
            )
            .await?;
            Ok::<_, NetError>(!hits.is_empty())
        }
        .await;
        let _ = tokio::time::timeout(limit, sess.logout()).await;
        found
    }
}
