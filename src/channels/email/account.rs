//! `[[email]]` in the config: one table per mailbox braid reads (IMAP) and answers from (SMTP).
//!
//! ```toml
//! [[email]]
//! name = "support"                        # the account name messages are stored under
//! address = "support@example.com"         # our address: From of replies; mail From it is ours
//! username = "support@example.com"        # default: the address
//! password_command = "pass show mail/support"   # or password_env = "SUPPORT_MAIL_PASSWORD"
//! imap_host = "imap.example.com"          # imap_port: 993 for tls, 143 otherwise
//! imap_security = "tls"                   # tls | starttls | none (none: loopback only)
//! smtp_host = "smtp.example.com"          # smtp_port: 465 for tls, 587 for starttls, 25 for none
//! smtp_security = "starttls"
//! smtp_auth = true                        # false: a loopback relay that takes mail without AUTH
//! folders = ["INBOX"]                     # watched; the Sent folder is watched too
//! sent_folder = "Sent"                    # "" for none: replies are then not filed anywhere
//! ca_file = "/etc/ssl/private-ca.pem"     # optional: trust this CA (PEM) besides the public roots
//! ```

use crate::secret::{SecretSource, source_from_keys};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain, then upgraded with STARTTLS before anything else is said.
    StartTls,
    /// No encryption at all: only allowed to a loopback address.
    None,
}

impl Security {
    fn parse(s: &str) -> Result<Security, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" | "ssl" | "implicit" => Ok(Security::Tls),
            "starttls" => Ok(Security::StartTls),
            "none" | "plain" => Ok(Security::None),
            other => Err(format!("'{other}' is not one of tls, starttls, none")),
        }
    }
}

/// A server and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// `[[email]]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmailAccount {
    pub name: Option<String>,
    pub address: Option<String>,
    pub from_name: Option<String>,
    pub username: Option<String>,
    pub password_command: Option<String>,
    pub password_env: Option<String>,
    pub imap_host: Option<String>,
    pub imap_port: Option<u16>,
    pub imap_security: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_security: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_auth: Option<bool>,
    pub folders: Option<Vec<String>>,
    pub sent_folder: Option<String>,
    pub ca_file: Option<String>,
    pub idle_refresh: Option<String>,
    pub timeout: Option<String>,
    pub team: Option<String>,
}

/// One configured mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAccount {
    /// Messages of this mailbox are stored under this account name.
    pub name: String,
    /// Our address (lowercase): From of replies; mail from it is outgoing.
    pub address: String,
    /// Display name in From of replies ("Example Support").
    pub from_name: Option<String>,
    pub username: String,
    pub password: SecretSource,
    pub imap: Endpoint,
    pub smtp: Endpoint,
    /// SMTP login name (default: `username`).
    pub smtp_username: String,
    /// Log in to the SMTP server (default true; false for a loopback relay that takes mail
    /// without AUTH).
    pub smtp_auth: bool,
    /// The folders synced as inbound mail (default INBOX).
    pub folders: Vec<String>,
    /// Where our replies are filed (APPEND) and where mail sent from other clients is read.
    pub sent_folder: Option<String>,
    /// A PEM file of extra trust anchors (a private CA, a self-signed server).
    pub ca_file: Option<PathBuf>,
    /// IDLE is re-issued (and the folder reconciled by UID) at least this often.
    pub idle_refresh: Duration,
    /// Every IMAP command and SMTP exchange must finish within this.
    pub timeout: Duration,
    /// The team new conversations of this mailbox belong to (None: no team, all agents).
    pub team: Option<String>,
}

impl EmailAccount {
    /// Every folder synced: the watched ones, then the Sent folder.
    pub fn synced_folders(&self) -> Vec<String> {
        let mut all = self.folders.clone();
        if let Some(sent) = &self.sent_folder
            && !all.iter().any(|f| f == sent)
        {
            all.push(sent.clone());
        }
        all
    }

    /// The domain of our address (for Message-IDs).
    pub fn domain(&self) -> &str {
        self.address.rsplit('@').next().unwrap_or("braid.invalid")
    }
}

/// IDLE is re-issued before this by default (RFC 2177: servers may drop it after 30 minutes).
pub const DEFAULT_IDLE_REFRESH: Duration = Duration::from_secs(5 * 60);
/// The longest `idle_refresh` allowed.
pub const MAX_IDLE_REFRESH: Duration = Duration::from_secs(29 * 60);
/// Default for `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn duration(
    key: &'static str,
    v: &Option<String>,
    default: Duration,
) -> Result<Duration, (&'static str, String)> {
    match v {
        None => Ok(default),
        Some(s) => crate::units::parse_duration(s)
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
            .map_err(|m| (key, m)),
    }
}

impl RawEmailAccount {
    /// Check and complete one account (`_index`: its place in the file). Errors name the
    /// key (without the `email.` prefix).
    pub fn resolve(&self, _index: usize) -> Result<EmailAccount, (&'static str, String)> {
        let address = match self.address.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => {
                crate::identity::normalize(crate::model::IdentityKind::Email, a)
                    .map_err(|e| ("address", format!("'{a}': {e}")))?
            }
            _ => {
                return Err((
                    "address",
                    "missing: the address replies are sent from".into(),
                ));
            }
        };
        let name = match self.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            Some(_) => return Err(("name", "must not be empty".into())),
            None => address.clone(),
        };
        if name.chars().any(char::is_control) {
            return Err(("name", "must be a name on one line".into()));
        }
        let password = source_from_keys(
            "password",
            self.password_command.as_deref(),
            self.password_env.as_deref(),
            "password_command",
            "password_env",
        )?;
        let username = self
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(&address)
            .to_string();
        let endpoint = |host_key: &'static str,
                        host: &Option<String>,
                        port_key: &'static str,
                        port: Option<u16>,
                        sec_key: &'static str,
                        sec: &Option<String>,
                        defaults: (u16, u16, u16)|
         -> Result<Endpoint, (&'static str, String)> {
            let host = match host.as_deref().map(str::trim) {
                Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => h.to_string(),
                _ => return Err((host_key, "missing: the server's host name".into())),
            };
            let security = match sec {
                Some(s) => Security::parse(s).map_err(|m| (sec_key, m))?,
                None => Security::Tls,
            };
            if security == Security::None && !is_loopback(&host) {
                return Err((
                    sec_key,
                    format!(
                        "\"none\" sends the password in the clear; only allowed to a loopback \
                         address, not {host} (use tls or starttls)"
                    ),
                ));
            }
            let port = match port {
                Some(0) => return Err((port_key, "0 is not a port".into())),
                Some(p) => p,
                None => match security {
                    Security::Tls => defaults.0,
                    Security::StartTls => defaults.1,
                    Security::None => defaults.2,
                },
            };
            Ok(Endpoint {
                host,
                port,
                security,
            })
        };
        let imap = endpoint(
            "imap_host",
            &self.imap_host,
            "imap_port",
            self.imap_port,
            "imap_security",
            &self.imap_security,
            (993, 143, 143),
        )?;
        let smtp = endpoint(
            "smtp_host",
            &self.smtp_host,
            "smtp_port",
            self.smtp_port,
            "smtp_security",
            &self.smtp_security,
            (465, 587, 25),
        )?;
        let folders = match &self.folders {
            None => vec!["INBOX".to_string()],
            Some(f) if f.is_empty() => {
                return Err(("folders", "must name at least one folder".into()));
            }
            Some(f) => {
                let mut out: Vec<String> = Vec::new();
                for name in f {
                    let n = name.trim();
                    if n.is_empty() || n.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
                        return Err(("folders", format!("'{name}' is not a usable folder name")));
                    }
                    if !out.iter().any(|o| o == n) {
                        out.push(n.to_string());
                    }
                }
                out
            }
        };
        let sent_folder = match self.sent_folder.as_deref().map(str::trim) {
            None => Some("Sent".to_string()),
            Some("") => None,
            Some(s) if s.chars().any(|c| c.is_control() || c == '"' || c == '\\') => {
                return Err(("sent_folder", format!("'{s}' is not a usable folder name")));
            }
            Some(s) => Some(s.to_string()),
        };
        let ca_file = match self.ca_file.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(PathBuf::from(p)),
        };
        let idle_refresh = duration("idle_refresh", &self.idle_refresh, DEFAULT_IDLE_REFRESH)?;
        if idle_refresh < Duration::from_secs(1) || idle_refresh > MAX_IDLE_REFRESH {
            return Err((
                "idle_refresh",
                "must be between 1s and 29m (servers drop an IDLE after 30 minutes)".into(),
            ));
        }
        let timeout = duration("timeout", &self.timeout, DEFAULT_TIMEOUT)?;
        if timeout < Duration::from_secs(1) {
            return Err(("timeout", "must be at least 1s".into()));
        }
        let from_name = self
            .from_name
            .as_deref()
            .map(crate::sanitize::line)
            .filter(|n| !n.trim().is_empty());
        let smtp_username = self
            .smtp_username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(&username)
            .to_string();
        Ok(EmailAccount {
            name,
            address,
            from_name,
            username,
            password,
            imap,
            smtp,
            smtp_username,
            smtp_auth: self.smtp_auth.unwrap_or(true),
            folders,
            sent_folder,
            ca_file,
            idle_refresh,
            timeout,
            team: crate::channels::team_name(self.team.as_deref()).map_err(|m| ("team", m))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawEmailAccount {
        toml::from_str(text).unwrap()
    }

    const MIN: &str = "address = \"Support@Example.com\"\npassword_env = \"P\"\nimap_host = \"imap.example.com\"\nsmtp_host = \"smtp.example.com\"\n";

    #[test]
    fn every_key_is_documented_in_the_example() {
        for key in [
            "name",
            "address",
            "from_name",
            "username",
            "password_command",
            "password_env",
            "imap_host",
            "imap_port",
            "imap_security",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "smtp_auth",
            "folders",
            "sent_folder",
            "ca_file",
            "idle_refresh",
            "timeout",
        ] {
            assert!(
                include_str!("../../../config/braid.example.toml").contains(&format!("# {key}")),
                "email.{key} is not documented"
            );
        }
    }

    #[test]
    fn defaults() {
        let a = raw(MIN).resolve(0).unwrap();
        assert_eq!(a.name, "support@example.com");
        assert_eq!(a.address, "support@example.com");
        assert_eq!(a.username, "support@example.com");
        assert_eq!(a.imap.port, 993);
        assert_eq!(a.imap.security, Security::Tls);
        assert_eq!(a.smtp.port, 465);
        assert_eq!(a.folders, vec!["INBOX"]);
        assert_eq!(a.sent_folder.as_deref(), Some("Sent"));
        assert_eq!(a.synced_folders(), vec!["INBOX", "Sent"]);
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn checks_name_the_key() {
        let e = |extra: &str| raw(&format!("{MIN}{extra}")).resolve(0).unwrap_err().0;
        assert_eq!(
            e("imap_security = \"starttls\"\nsmtp_security = \"none\""),
            "smtp_security"
        );
        assert_eq!(e("imap_security = \"rot13\""), "imap_security");
        assert_eq!(e("folders = []"), "folders");
        assert_eq!(e("idle_refresh = \"2h\""), "idle_refresh");
        assert_eq!(e("password_command = \"x\""), "password_env");
        assert_eq!(
            raw("address = \"a@b.c\"").resolve(0).unwrap_err().0,
            "password_command"
        );
        assert!(toml::from_str::<RawEmailAccount>("password = \"hunter2\"").is_err());
        // Loopback may go without TLS (the live tests do).
        let a = raw("address = \"a@b.c\"\npassword_env = \"P\"\nimap_host = \"127.0.0.1\"\nimap_security = \"none\"\nsmtp_host = \"localhost\"\nsmtp_security = \"none\"")
            .resolve(0)
            .unwrap();
        assert_eq!((a.imap.port, a.smtp.port), (143, 25));
    }
}
