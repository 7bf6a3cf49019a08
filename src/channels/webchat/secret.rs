//! Visitor ids that cannot be forged: a random id, signed with HMAC-SHA256 under a server secret
//! kept in the data dir (`webchat.secret`, mode 0600, created on first use).
//!
//! The widget keeps the token `<id>.<signature>` in the page's localStorage; the id alone is the
//! visitor's identity in the store. A token whose signature does not verify is refused, so
//! nobody can take over another visitor's conversation by guessing or copying an id.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The secret's file name inside the data dir.
pub const SECRET_FILE: &str = "webchat.secret";
/// The identity secret's file name inside the data dir: the key the embedding site signs its
/// logged-in user's email with (`data-user-hash`). Shared with the site's server, never with
/// a browser.
pub const IDENTITY_SECRET_FILE: &str = "webchat-identity.secret";

type HmacSha256 = Hmac<Sha256>;

/// Bytes of randomness in a visitor id.
const ID_BYTES: usize = 16;
/// Bytes of the (truncated) HMAC in a token.
const SIG_BYTES: usize = 16;
const DOMAIN: &[u8] = b"braid webchat visitor v1\0";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("web chat secret {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "web chat secret {0} is not 64 hex digits; delete it to create a new one (every visitor gets a new id)"
    )]
    Corrupt(PathBuf),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// The server secret.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(b)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `id` has the shape of an id this server issues (`w` + 32 lowercase hex digits).
pub fn is_visitor_id(id: &str) -> bool {
    id.len() == 1 + 2 * ID_BYTES
        && id.starts_with('w')
        && id[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Read the 32-byte key kept as hex in `data_dir/name`, creating it (mode 0600) on first use.
/// A secret file readable by others is made private again.
fn load_or_create_key(data_dir: &Path, name: &str) -> Result<[u8; 32], SecretError> {
    let path = data_dir.join(name);
    let io = |source| SecretError::Io {
        path: path.clone(),
        source,
    };
    crate::private::create_dir(data_dir).map_err(io)?;
    if !path.exists() {
        // Written under a private temporary name, then linked into place: a concurrent
        // creator either wins the link or reads the complete file of the winner.
        let tmp = data_dir.join(format!(
            "{name}.{}.{}.tmp",
            std::process::id(),
            hex(&random_bytes::<4>()?)
        ));
        let key: [u8; 32] = random_bytes()?;
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(io)?;
            writeln!(f, "{}", hex(&key)).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => tracing::info!(path = %path.display(), "created a web chat secret"),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "web chat secret was mode {:o}; making it 0600", mode & 0o777);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    let text = std::fs::read_to_string(&path).map_err(io)?;
    let bytes = unhex(text.trim()).filter(|b| b.len() == 32);
    match bytes {
        Some(b) => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&b);
            Ok(key)
        }
        None => Err(SecretError::Corrupt(path)),
    }
}

impl Signer {
    pub fn from_key(key: [u8; 32]) -> Signer {
        Signer { key }
    }

    /// Load the secret from `data_dir`, creating it (mode 0600) on first use. A secret file
    /// readable by others is made private again.
    pub fn load_or_create(data_dir: &Path) -> Result<Signer, SecretError> {
        Ok(Signer {
            key: load_or_create_key(data_dir, SECRET_FILE)?,
        })
    }

    fn mac(&self, id: &str) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(DOMAIN);
        mac.update(id.as_bytes());
        mac
    }

    /// A new visitor: (id, token).
    pub fn issue(&self) -> Result<(String, String), SecretError> {
        let id = format!("w{}", hex(&random_bytes::<ID_BYTES>()?));
        let token = self.token(&id);
        Ok((id, token))
    }

    /// The token of an id.
    pub fn token(&self, id: &str) -> String {
        let sig = self.mac(id).finalize().into_bytes();
        format!("{id}.{}", hex(&sig[..SIG_BYTES]))
    }

    /// The visitor id of a genuine token; None for anything forged or malformed.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (id, sig) = token.split_once('.')?;
        if !is_visitor_id(id) || sig.len() != 2 * SIG_BYTES {
            return None;
        }
        let sig = unhex(sig)?;
        // Constant time comparison of the truncated MAC.
        self.mac(id).verify_truncated_left(&sig).ok()?;
        Some(id.to_string())
    }
}

/// Verifies the identity an embedding site vouches for: `data-user-email` with
/// `data-user-hash` = hex HMAC-SHA256 of the email (exactly as in the attribute, UTF-8) keyed
/// with the text of the identity secret file (64 hex digits, as ASCII).
#[derive(Clone)]
pub struct IdentityKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityKey(..)")
    }
}

impl IdentityKey {
    /// A key as the site's server uses it (the secret's text).
    pub fn from_secret(secret: &str) -> IdentityKey {
        IdentityKey {
            key: secret.trim().as_bytes().to_vec(),
        }
    }

    /// Load the identity secret from `data_dir`, creating it (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<IdentityKey, SecretError> {
        let key = load_or_create_key(data_dir, IDENTITY_SECRET_FILE)?;
        Ok(IdentityKey {
            key: hex(&key).into_bytes(),
        })
    }

    /// The hash a site puts in `data-user-hash` for `email` (what its server computes).
    pub fn sign(&self, email: &str) -> String {
        hex(&self.mac(email).finalize().into_bytes())
    }

    fn mac(&self, email: &str) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(email.as_bytes());
        mac
    }

    /// Whether `hash` (hex, any case) is the site's signature of `email`. Compared in constant
    /// time (the hmac crate's verify).
    pub fn verify(&self, email: &str, hash: &str) -> bool {
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 {
            return false;
        }
        match unhex(&hash) {
            Some(sig) => self.mac(email).verify_slice(&sig).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let s = Signer::from_key([7; 32]);
        let (id, token) = s.issue().unwrap();
        assert!(is_visitor_id(&id));
        assert_eq!(s.verify(&token), Some(id.clone()));
        // Another id with the same signature, a flipped signature digit, another key.
        let (other, _) = s.issue().unwrap();
        let sig = token.split_once('.').unwrap().1;
        assert_eq!(s.verify(&format!("{other}.{sig}")), None);
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(s.verify(&flipped), None);
        assert_eq!(Signer::from_key([8; 32]).verify(&token), None);
        for bad in ["", ".", "w.", &id, "wXYZ.00", "x\u{202e}.1"] {
            assert_eq!(s.verify(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_short_signature_is_refused_whatever_its_bytes() {
        // Without the length check, one of these 256 one-byte signatures would pass the
        // truncated compare: a token forgeable in 256 tries.
        let s = Signer::from_key([7; 32]);
        let (id, _) = s.issue().unwrap();
        for b in 0..=255u8 {
            assert_eq!(s.verify(&format!("{id}.{b:02x}")), None, "{b:02x}");
        }
        // And a signature one byte too long, made of the genuine one plus a byte.
        let token = s.token(&id);
        assert_eq!(s.verify(&format!("{token}00")), None);
    }

    #[test]
    fn junk_is_not_a_visitor_id() {
        let s = Signer::from_key([1; 32]);
        let (id, _) = s.issue().unwrap();
        assert!(is_visitor_id(&id));
        for junk in [
            "",
            "w",
            "x0123456789abcdef0123456789abcdef",
            "W0123456789abcdef0123456789abcdef",
            "w0123456789ABCDEF0123456789abcdef",
            "w0123456789abcdef0123456789abcde",
            "w0123456789abcdef0123456789abcdef0",
            "w0123456789abcdeg0123456789abcdef",
            "v_9f3a",
            "w0123456789abcdef0123456789abcd\u{e9}",
        ] {
            assert!(!is_visitor_id(junk), "{junk:?}");
        }
    }

    #[test]
    fn debug_never_shows_a_key() {
        let s = Signer::from_key([0xab; 32]);
        assert_eq!(format!("{s:?}"), "Signer(..)");
        let k = IdentityKey::from_secret("supersecretvalue");
        let shown = format!("{k:?}");
        assert_eq!(shown, "IdentityKey(..)");
        assert!(!shown.contains("supersecret"));
    }

    #[test]
    fn the_site_signature_of_an_email_verifies_and_nothing_else_does() {
        let k = IdentityKey::from_secret("  0123abcd\n");
        let sig = k.sign("ann@example.com");
        assert!(k.verify("ann@example.com", &sig));
        assert!(k.verify("ann@example.com", &sig.to_uppercase()));
        assert!(
            !k.verify("Ann@example.com", &sig),
            "signed exactly as given"
        );
        assert!(!k.verify("ann@example.com", &sig[..62]));
        assert!(!k.verify("ann@example.com", &format!("{sig}00")));
        assert!(!k.verify("ann@example.com", ""));
        assert!(!IdentityKey::from_secret("other").verify("ann@example.com", &sig));
        // The key is the secret's text, as the README's Python line uses it.
        assert_eq!(
            IdentityKey::from_secret("key").sign("The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn two_creators_at_once_end_with_the_same_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let keys: Vec<[u8; 32]> = (0..8)
                .map(|_| {
                    let dir = dir.path().to_path_buf();
                    let barrier = std::sync::Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        Signer::load_or_create(&dir).unwrap().key
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert!(keys.iter().all(|k| *k == keys[0]), "creators disagree");
            assert_eq!(Signer::load_or_create(dir.path()).unwrap().key, keys[0]);
            // No temporary file is left behind.
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from(SECRET_FILE)]);
        }
    }

    #[test]
    fn the_secret_is_created_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let (_, token) = a.issue().unwrap();
        let b = Signer::load_or_create(dir.path()).unwrap();
        assert!(b.verify(&token).is_some(), "survives a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(SECRET_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            Signer::load_or_create(dir.path()).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(SECRET_FILE), "nope").unwrap();
        assert!(matches!(
            Signer::load_or_create(dir.path()),
            Err(SecretError::Corrupt(_))
        ));
    }
}
