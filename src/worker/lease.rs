//! The worker lease: an exclusive `flock` on `<data_dir>/worker.lock`.
//!
//! Exactly one process at a time runs channel I/O (Telegram answers 409 when two processes poll
//! one bot). The lease is an advisory file lock, so the kernel releases it when the holder exits
//! for any reason, crash and SIGKILL included; the file itself stays and holds the pid of the
//! latest holder, so followers can say who runs the channels.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "worker.lock";

/// A held worker lease. Dropping it releases the lock.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
}

/// Errors taking the lease (other than "someone else holds it").
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot create data directory {path}: {error}")]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot open the worker lock {path}: {error}")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot lock {path}: {error}")]
    Lock {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl Lease {
    /// Try to take the lease without waiting. `Ok(None)`: another process (or another open
    /// lease in this one) holds it.
    pub fn try_acquire(data_dir: &Path) -> Result<Option<Lease>, LeaseError> {
        crate::private::create_dir(data_dir).map_err(|error| LeaseError::CreateDir {
            path: data_dir.to_path_buf(),
            error,
        })?;
        let path = data_dir.join(LOCK_FILE);
        // Not truncated on open: the holder's pid must survive a follower's attempt.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| LeaseError::Open {
                path: path.clone(),
                error,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(error)) => return Err(LeaseError::Lock { path, error }),
        }
        let mut lease = Lease { file, path };
        if let Err(e) = lease.write_pid() {
            // The lock is what matters; a missing pid only makes followers' status vaguer.
            tracing::warn!(path = %lease.path.display(), "cannot write pid to worker lock: {e}");
        }
        Ok(Some(lease))
    }

    fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes it explicit and
        // immediate even if the descriptor was duplicated.
        let _ = self.file.unlock();
    }
}

/// The pid written by the latest holder of the lease in `data_dir`, if readable.
pub fn holder_pid(data_dir: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(data_dir.join(LOCK_FILE))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn second_lease_fails_while_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lease::try_acquire(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(Lease::try_acquire(dir.path()).unwrap().is_none());
        assert!(Lease::try_acquire(dir.path()).unwrap().is_none());
        assert_eq!(holder_pid(dir.path()), Some(std::process::id()));
        drop(first);
        let again = Lease::try_acquire(dir.path()).unwrap();
        assert!(again.is_some());
        assert!(Lease::try_acquire(dir.path()).unwrap().is_none());
    }

    #[test]
    fn a_failed_attempt_keeps_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "4242\n").unwrap();
        let held = Lease::try_acquire(dir.path()).unwrap().unwrap();
        assert_eq!(holder_pid(dir.path()), Some(std::process::id()));
        assert!(Lease::try_acquire(dir.path()).unwrap().is_none());
        assert_eq!(holder_pid(dir.path()), Some(std::process::id()));
        drop(held);
    }

    #[test]
    fn creates_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        assert!(Lease::try_acquire(&nested).unwrap().is_some());
    }
}
