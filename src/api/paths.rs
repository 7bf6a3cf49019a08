//! Where a client finds its server, and the transports to reach it: a Unix socket, or an SSH
//! command whose stdin/stdout carry the same frames (`ssh host braid attach --stdio`).

use super::client::{ApiError, Connection, Incoming};
use super::protocol::Hello;
use sha2::Digest;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// The socket of the system service (`braid.service`, `/run/braid` made by tmpfiles.d).
pub const SYSTEM_SOCKET: &str = "/run/braid/braid.sock";

/// Unix socket paths are limited to 108 bytes (sun_path); keep a margin.
const MAX_SOCKET_PATH: usize = 100;

/// The socket of a personal server for `data_dir`: `$XDG_RUNTIME_DIR/braid/<hash>.sock` (one per
/// data dir, so the demo and the real inbox never meet), else `<data_dir>/braid.sock`. Both
/// directories are private to the user, which is what keeps other users out of a personal server.
pub fn personal_socket(data_dir: &Path, runtime_dir: Option<&Path>) -> PathBuf {
    if let Some(rt) = runtime_dir.filter(|d| d.is_absolute()) {
        let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let p = rt.join("braid").join(format!("{hex}.sock"));
        if p.as_os_str().len() <= MAX_SOCKET_PATH {
            return p;
        }
    }
    data_dir.join("braid.sock")
}

/// `$XDG_RUNTIME_DIR` of this process, when set and absolute.
pub fn runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// Whether a socket path fits the kernel's limit.
pub fn check_socket_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(format!(
            "socket path {} is {} bytes; Unix sockets allow about {MAX_SOCKET_PATH}: choose a shorter `[server] socket`",
            path.display(),
            path.as_os_str().len()
        ));
    }
    Ok(())
}

/// Connect to the server listening on `path`.
pub async fn connect_socket(
    path: &Path,
    hello: Hello,
) -> Result<(Connection, mpsc::UnboundedReceiver<Incoming>), ApiError> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|error| ApiError::Connect {
            path: path.display().to_string(),
            error,
        })?;
    Connection::handshake(stream, hello).await
}

/// Run `ssh <host> braid attach --stdio` and speak the protocol over its stdin/stdout. The
/// server sees the SSH login's Unix user, vouched for by its kernel.
pub async fn connect_ssh(
    target: &str,
    hello: Hello,
) -> Result<(Connection, mpsc::UnboundedReceiver<Incoming>), ApiError> {
    let (host, port) = parse_ssh_target(target).map_err(ApiError::Refused)?;
    // `BRAID_SSH_COMMAND` (like git's GIT_SSH_COMMAND): another ssh, or ssh with options
    // ("ssh -i ~/.ssh/work -o ProxyJump=bastion"); split on whitespace.
    let ssh = std::env::var("BRAID_SSH_COMMAND").unwrap_or_default();
    let mut words = ssh.split_whitespace();
    let program = words.next().unwrap_or("ssh");
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(words);
    if let Some(p) = port {
        cmd.arg("-p").arg(p.to_string());
    }
    // `--` so a host can never be read as an ssh option.
    cmd.arg("-T")
        .arg("--")
        .arg(&host)
        .arg("braid attach --stdio")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|error| ApiError::Connect {
        path: format!("ssh://{host} (running {program})"),
        error,
    })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(ApiError::Lost("ssh started without pipes".into()));
    };
    // The child lives as long as the connection's tasks hold its pipes; reap it when it ends.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Connection::handshake(tokio::io::join(stdout, stdin), hello).await
}

/// `ssh://[user@]host[:port]` (or a bare `host`) -> (`[user@]host`, port).
pub fn parse_ssh_target(target: &str) -> Result<(String, Option<u16>), String> {
    let rest = target.strip_prefix("ssh://").unwrap_or(target);
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => match p.parse::<u16>() {
            Ok(p) => (h, Some(p)),
            Err(_) => return Err(format!("bad port in '{target}' (ssh://host:22)")),
        },
        _ => (rest, None),
    };
    if host.is_empty()
        || host.starts_with('-')
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "bad remote '{target}': use ssh://host, ssh://user@host or ssh://host:port"
        ));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn socket_per_data_dir() {
        let rt = Path::new("/run/user/1000");
        let a = personal_socket(Path::new("/home/a/.local/share/braid"), Some(rt));
        let b = personal_socket(Path::new("/home/a/.local/share/braid/demo"), Some(rt));
        assert!(a.starts_with("/run/user/1000/braid"));
        assert_ne!(a, b);
        assert_eq!(
            personal_socket(Path::new("/d"), None),
            PathBuf::from("/d/braid.sock")
        );
        assert_eq!(
            personal_socket(Path::new("/d"), Some(Path::new("relative"))),
            PathBuf::from("/d/braid.sock")
        );
    }

    #[test]
    fn ssh_targets() {
        assert_eq!(
            parse_ssh_target("ssh://ann@box:2222").unwrap(),
            ("ann@box".to_string(), Some(2222))
        );
        assert_eq!(parse_ssh_target("box").unwrap(), ("box".to_string(), None));
        assert!(parse_ssh_target("ssh://-oProxyCommand=x").is_err());
        assert!(parse_ssh_target("ssh://a b").is_err());
        assert!(parse_ssh_target("ssh://box:x").is_err());
    }
}
