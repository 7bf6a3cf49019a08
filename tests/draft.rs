//! Drafts for $EDITOR: a private file with a random name (created O_EXCL, mode 0600) in a
//! private directory, never a predictable name in /tmp; a symlink planted where the old name
//! was is not followed; the file ends with a newline and is gone once the editor exits.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::tui::runtime::{draft_dir, edit_draft};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A fake editor: records the path, the mode and the content it was given, then appends.
fn fake_editor(dir: &Path) -> (String, std::path::PathBuf) {
    let record = dir.join("record");
    let script = dir.join("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{rec}'\nstat -c %a \"$1\" >> '{rec}'\ncat \"$1\" >> '{rec}'\nprintf 'added by the editor\\n' >> \"$1\"\n",
            rec = record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    (script.display().to_string(), record)
}

#[tokio::test]
async fn a_draft_is_private_unpredictable_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let drafts = dir.path().join("drafts");
    std::fs::create_dir(&drafts).unwrap();
    std::fs::set_permissions(&drafts, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Another user plants a symlink where the old predictable name was.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let planted = drafts.join(format!("braid-draft-{}.txt", std::process::id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    let (editor, record) = fake_editor(dir.path());
    let text = edit_draft(&editor, "Hello Ann,\n\nyour order", &drafts)
        .await
        .unwrap();
    assert_eq!(text, "Hello Ann,\n\nyour order\nadded by the editor");

    let rec = std::fs::read_to_string(&record).unwrap();
    let mut lines = rec.lines();
    let path = std::path::PathBuf::from(lines.next().unwrap());
    assert_eq!(lines.next().unwrap(), "600", "the draft's mode");
    // The editor got the text with a final newline (scripts append cleanly).
    assert!(rec.ends_with("your order\n"), "{rec:?}");
    assert_eq!(path.parent().unwrap(), drafts);
    assert_ne!(path, planted, "a predictable name");
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("braid-draft-") && name.ends_with(".txt"),
        "{name}"
    );
    assert!(!name.contains(&std::process::id().to_string()), "{name}");
    assert!(
        !path.exists(),
        "the draft is removed after the editor exits"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(planted.is_symlink());

    // A second draft gets another name.
    edit_draft(&editor, "x", &drafts).await.unwrap();
    let second = std::fs::read_to_string(&record).unwrap();
    assert_ne!(second.lines().next().unwrap(), path.to_str().unwrap());

    // A failing editor: an error, and the draft is removed all the same.
    let e = edit_draft("false", "x", &drafts).await.unwrap_err();
    assert!(e.contains("text unchanged"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&drafts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| *p != planted)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn drafts_go_to_a_private_directory_never_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A private runtime dir of ours is used.
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        draft_dir(Some(runtime.as_os_str()), &data).unwrap(),
        runtime
    );
    // One readable by others, a relative one or none: the data dir, made private.
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(draft_dir(Some(runtime.as_os_str()), &data).unwrap(), data);
    assert_eq!(draft_dir(Some("relative".as_ref()), &data).unwrap(), data);
    assert_eq!(draft_dir(None, &data).unwrap(), data);
    assert_eq!(mode(&data), 0o700);
    // /tmp is not private (mode 1777).
    assert_eq!(draft_dir(Some("/tmp".as_ref()), &data).unwrap(), data);
}
