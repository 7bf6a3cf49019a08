//! Connections to mail servers: TCP, TLS (rustls, the public roots plus an optional `ca_file`),
//! STARTTLS, IMAP login. Every step has a time limit.

use super::account::{EmailAccount, Endpoint, Security};
use async_imap::{Client, Session};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Why talking to a mail server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The server could not be reached, or the connection broke: worth retrying soon.
    #[error("{0}")]
    Connection(String),
    /// The server refused our credentials: retrying soon would only hammer it (and may lock
    /// the account), so this waits long, and says so.
    #[error("login refused: {0}")]
    Auth(String),
    /// A setup problem on our side (the CA file, the password command).
    #[error("{0}")]
    Setup(String),
    /// The server answered something we cannot work with.
    #[error("{0}")]
    Protocol(String),
}

impl NetError {
    pub fn is_auth(&self) -> bool {
        matches!(self, NetError::Auth(_))
    }
}

impl From<async_imap::error::Error> for NetError {
    fn from(e: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        match e {
            E::Io(e) => NetError::Connection(format!("connection: {e}")),
            E::ConnectionLost => NetError::Connection("the server closed the connection".into()),
            E::No(m) => {
                NetError::Protocol(format!("server said NO: {}", crate::sanitize::line(&m)))
            }
            E::Bad(m) => {
                NetError::Protocol(format!("server said BAD: {}", crate::sanitize::line(&m)))
            }
            other => NetError::Protocol(crate::sanitize::line(&other.to_string())),
        }
    }
}

/// Run one network step with a time limit.
pub async fn timed<T, E: Into<NetError>>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, NetError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(NetError::Connection(format!(
            "{what}: no answer within {} s",
            limit.as_secs()
        ))),
    }
}

/// The next item of a server's answer (a FETCH stream), if it comes within `limit`: a long
/// answer may take as long as it needs while it keeps coming.
pub async fn next_within<S: futures::Stream + Unpin>(
    stream: &mut S,
    limit: Duration,
    what: &str,
) -> Result<Option<S::Item>, NetError> {
    use futures::StreamExt;
    tokio::time::timeout(limit, stream.next())
        .await
        .map_err(|_| {
            NetError::Connection(format!("{what}: no answer within {} s", limit.as_secs()))
        })
}

/// The rustls settings for one account: the public (Mozilla) roots plus `ca_file`'s certs.
pub fn tls_config(account: &EmailAccount) -> Result<Arc<ClientConfig>, NetError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &account.ca_file {
        for cert in ca_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| NetError::Setup(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Setup(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (at least one).
pub fn ca_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let bad = |e: String| NetError::Setup(format!("ca_file {}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it (PEM expected)".into()));
    }
    Ok(certs)
}

/// A connection to an IMAP server, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type ImapSession = Session<Stream>;

async fn tls_wrap(
    tcp: TcpStream,
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    limit: Duration,
) -> Result<Stream, NetError> {
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| NetError::Setup(format!("{}: not a TLS server name: {e}", endpoint.host)))?;
    let tls = timed(limit, "TLS handshake", async {
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| NetError::Connection(format!("TLS with {endpoint}: {e}")))
    })
    .await?;
    Ok(Stream::Tls(Box::new(tls)))
}

async fn greeting(client: &mut Client<Stream>, limit: Duration) -> Result<(), NetError> {
    let greeting = timed(limit, "IMAP greeting", async {
        client
            .read_response()
            .await
            .map_err(|e| NetError::Connection(format!("reading the greeting: {e}")))
    })
    .await?;
    if greeting.is_none() {
        return Err(NetError::Connection(
            "the server closed the connection before its greeting".into(),
        ));
    }
    Ok(())
}

/// Connect to the account's IMAP server and log in.
pub async fn imap_login(
    account: &EmailAccount,
    password: &str,
    tls: Arc<ClientConfig>,
) -> Result<ImapSession, NetError> {
    let ep = &account.imap;
    let limit = account.timeout;
    let tcp = timed(limit, &format!("connecting to {ep}"), async {
        TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| NetError::Connection(format!("connecting to {ep}: {e}")))
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    let client = match ep.security {
        Security::None => {
            let mut c = Client::new(Stream::Plain(tcp));
            greeting(&mut c, limit).await?;
            c
        }
        Security::Tls => {
            let mut c = Client::new(tls_wrap(tcp, ep, tls, limit).await?);
            greeting(&mut c, limit).await?;
            c
        }
        Security::StartTls => {
            let mut c = Client::new(Stream::Plain(tcp));
            greeting(&mut c, limit).await?;
            timed(
                limit,
                "STARTTLS",
                c.run_command_and_check_ok("STARTTLS", None),
            )
            .await
            .map_err(|e| NetError::Connection(format!("STARTTLS refused by {ep}: {e}")))?;
            let Stream::Plain(tcp) = c.into_inner() else {
                return Err(NetError::Protocol("STARTTLS on a TLS connection".into()));
            };
            Client::new(tls_wrap(tcp, ep, tls, limit).await?)
        }
    };
    let login = tokio::time::timeout(limit, client.login(&account.username, password)).await;
    match login {
        Err(_) => Err(NetError::Connection(format!(
            "login at {ep}: no answer within {} s",
            limit.as_secs()
        ))),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _client))) => {
            use async_imap::error::Error as E;
            match e {
                E::No(m) | E::Bad(m) => Err(NetError::Auth(format!(
                    "IMAP at {ep} as {}: {}",
                    account.username,
                    crate::sanitize::line(m.trim())
                ))),
                other => Err(NetError::from(other)),
            }
        }
    }
}
