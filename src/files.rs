//! Writing files a client received (`:save`): into a folder of the user's, each under a free
//! name (never over an existing file: `invoice (1).pdf`), written to `NAME.part` first and
//! renamed into place, so nothing is ever half there. Client side: the bytes come from the
//! server, which fetched them where they live.

use std::path::{Path, PathBuf};

/// Where files go when `:save` names no folder: Downloads, else home, else `fallback`.
pub fn default_dir(fallback: &Path) -> PathBuf {
    directories::UserDirs::new()
        .and_then(|u| u.download_dir().map(Path::to_path_buf))
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
        .unwrap_or_else(|| fallback.to_path_buf())
}

/// A free name in `dir` for `name` (made a plain file name first): `name`, else
/// `stem (1).ext`, ...
pub fn free_path(dir: &Path, name: &str) -> PathBuf {
    let name = crate::sanitize::file_name(name);
    let first = dir.join(&name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.clone(), String::new()),
    };
    (1..)
        .map(|i| dir.join(format!("{stem} ({i}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Write one file under a free name; returns where it went and its size.
pub async fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(PathBuf, usize), String> {
    let dest = free_path(dir, name);
    let part = dest.with_extension(format!(
        "{}part",
        dest.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    tokio::fs::write(&part, bytes)
        .await
        .map_err(|e| format!("{}: {e}", part.display()))?;
    tokio::fs::rename(&part, &dest)
        .await
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok((dest, bytes.len()))
}

/// Write every file into `dir` (created if missing); one line for the status bar.
pub async fn save_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<String, String> {
    if files.is_empty() {
        return Err("no files to save".into());
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let (path, n) = write_file(dir, name, bytes).await?;
        names.push(format!(
            "{} ({})",
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            human_size(n)
        ));
    }
    Ok(format!("saved {} to {}", names.join(", "), dir.display()))
}

/// 12 B, 120 KB (rounded up), 1.2 MB.
pub fn human_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{} KB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn free_names_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_path(dir.path(), "a.pdf"), dir.path().join("a.pdf"));
        std::fs::write(dir.path().join("a.pdf"), b"x").unwrap();
        assert_eq!(free_path(dir.path(), "a.pdf"), dir.path().join("a (1).pdf"));
        // A hostile name stays a file inside the folder.
        let p = free_path(dir.path(), "../../etc/passwd");
        assert_eq!(p.parent(), Some(dir.path()));
        assert!(!p.file_name().unwrap().to_string_lossy().contains('/'));
    }

    #[tokio::test]
    async fn saves_beside_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pdf"), b"old").unwrap();
        let line = save_all(dir.path(), &[("a.pdf".into(), b"new".to_vec())])
            .await
            .unwrap();
        assert!(line.starts_with("saved a (1).pdf (3 B) to "), "{line}");
        assert_eq!(std::fs::read(dir.path().join("a.pdf")).unwrap(), b"old");
        assert_eq!(std::fs::read(dir.path().join("a (1).pdf")).unwrap(), b"new");
        assert!(save_all(dir.path(), &[]).await.is_err());
    }
}
