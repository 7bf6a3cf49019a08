//! Files only their owner reads: the data dir is 0700, the store (with its `-wal` and `-shm`),
//! the log and secret files 0600 (DESIGN.md, convention 6). They hold every customer's
//! messages and braid's keys, and the server the README recommends is shared.
//!
//! Existing directories and files with looser modes are tightened (and the change logged):
//! braid's files were never meant to be shared, and a data dir readable by others would show
//! who writes to whom through file names alone. When braid does not own the directory (a
//! `--data-dir` like `/tmp`) the chmod fails; then a warning is logged and braid goes on, its
//! files themselves being 0600.

use std::io;
use std::path::Path;

/// Create `dir` and its missing parents with mode 0700; an existing `dir` readable or
/// writable by group or others is made 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    create_missing_dirs(dir)?;
    tighten(dir, 0o700);
    Ok(())
}

/// Create `dir` and its missing parents with mode 0700; an existing one is left as it is (the
/// log's setup: it tightens once logging runs, so the change is logged).
pub fn create_missing_dirs(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Make sure `path` exists (empty if new) with mode 0600, tightening an existing file. Used
/// before SQLite opens the store: SQLite gives its `-wal` and `-shm` the database's mode.
pub fn touch_file(path: &Path) -> io::Result<()> {
    open_options().open(path)?;
    tighten(path, 0o600);
    Ok(())
}

/// Open `path` for appending, created 0600 (an existing file is made 0600).
pub fn append_file(path: &Path) -> io::Result<std::fs::File> {
    let f = open_options().open(path)?;
    tighten(path, 0o600);
    Ok(f)
}

/// Open `path` for appending, created 0600; an existing file's mode is left as it is.
pub fn append_file_as_is(path: &Path) -> io::Result<std::fs::File> {
    open_options().open(path)
}

/// Take others' bits away from `path` if it exists (see `tighten`). Missing: nothing.
pub fn tighten_if_exists(path: &Path, mode: u32) {
    if path.exists() {
        tighten(path, mode);
    }
}

fn open_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Take away what `path` gives to others (not the owner's group: until the workspace server
/// owns the store, a team may share one data dir through a Unix group, on purpose). New
/// files and directories get `mode` when created; this only fixes existing loose ones.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let old = meta.permissions().mode() & 0o777;
    if old & 0o007 == 0 {
        return;
    }
    let new = old & !0o007 & (mode | ((mode & 0o700) >> 3));
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(new)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            "was mode {old:o}, readable by every user; made it {new:o}"
        ),
        Err(e) => tracing::warn!(
            path = %path.display(),
            "is mode {old:o}, readable by every user, and cannot be made {new:o} ({e}); \
             keep braid's data in a directory of your own"
        ),
    }
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) {}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_dirs_and_files_are_private_and_loose_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        create_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let loose = dir.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&loose).unwrap();
        assert_eq!(
            mode(&loose),
            0o750,
            "others lose their bits, a sharing group keeps its"
        );
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_dir(&loose).unwrap();
        assert_eq!(mode(&loose), 0o770);
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o705)).unwrap();
        create_dir(&loose).unwrap();
        assert_eq!(mode(&loose), 0o700);
        // Without bits for others nothing changes: 0o700 itself, 0o500, a group's 0o750.
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o500)).unwrap();
        create_dir(&loose).unwrap();
        assert_eq!(mode(&loose), 0o500);
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o700)).unwrap();

        let f = data.join("f");
        touch_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        touch_file(&f).unwrap();
        assert_eq!(mode(&f), 0o640);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x", "never truncated");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        touch_file(&f).unwrap();
        assert_eq!(mode(&f), 0o640, "no execute bits on a file made 0600");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o604)).unwrap();
        append_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        tighten_if_exists(&data.join("missing"), 0o600);
        assert!(!data.join("missing").exists());
    }
}
