//! The reply-suggestion hook: the workspace's `suggest_command` reads a conversation as JSON
//! on stdin and prints a draft on stdout (`:suggest` puts it in the composer; nothing is ever
//! sent by it). Run by the server, off the UI, with a timeout and a size limit; what it
//! prints on stderr is shown only as one sanitized, shortened line.

use crate::model::{Channel, ConversationId};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most a suggestion may print (a draft, not a file).
pub const MAX_OUTPUT: usize = 32 * 1024;
/// Messages of the conversation the command is given (the newest).
pub const RECENT: usize = 20;

/// Why no suggestion came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuggestError {
    #[error("no suggest_command is configured: a workspace admin sets one in the server's config")]
    NotConfigured,
    #[error(
        "the suggest command could not start: {0} (check suggest_command in the server's config)"
    )]
    Start(String),
    #[error(
        "the suggest command took longer than {0} s and was stopped (raise suggest_timeout, or make it faster)"
    )]
    Timeout(u64),
    #[error("the suggest command printed more than {MAX_OUTPUT} bytes; a draft should be shorter")]
    TooLong,
    #[error("the suggest command failed ({status}){stderr}")]
    Failed { status: String, stderr: String },
    #[error("the suggest command printed nothing{0}")]
    Empty(String),
    #[error("the suggest command printed text that is not UTF-8")]
    NotUtf8,
}

/// What the command reads on stdin.
pub fn input(
    store: &crate::store::Store,
    conversation: ConversationId,
    agent: &str,
) -> Result<serde_json::Value, crate::store::StoreError> {
    let row = store.conversation(conversation)?;
    let profile = store.profile(row.contact_id)?;
    let tags = store.conversation_tags(conversation)?;
    let channel: Option<Channel> = store.reply_channel(conversation).ok();
    let mut messages: Vec<_> = store
        .timeline(row.contact_id, None, 200)?
        .into_iter()
        .filter(|m| m.conversation_id == conversation)
        .collect();
    let skip = messages.len().saturating_sub(RECENT);
    messages.drain(..skip);
    Ok(serde_json::json!({
        "conversation": {
            "id": conversation.0,
            "status": row.status,
            "priority": row.priority,
            "subject": row.subject,
            "team": row.team,
            "assignee": row.assignee,
            "tags": tags,
            "channel": channel,
        },
        "contact": {
            "id": row.contact_id.0,
            "name": profile.contact.name,
            "vip": profile.contact.vip,
            "identities": profile.identities.iter().map(|i| serde_json::json!({
                "kind": i.kind, "value": i.value,
            })).collect::<Vec<_>>(),
        },
        "agent": { "name": agent },
        "messages": messages.iter().map(|m| serde_json::json!({
            "direction": m.direction,
            "channel": m.channel,
            "author": m.author,
            "subject": m.subject,
            "body": m.body,
            "at": m.created_at,
        })).collect::<Vec<_>>(),
    }))
}

/// Run `command` (through `sh -c`) with `input` on stdin; its stdout, sanitized and trimmed.
/// Blocking: the server calls it from a blocking task.
pub fn run(command: &str, input: &[u8], timeout: Duration) -> Result<String, SuggestError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a timeout stops what it started too.
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| SuggestError::Start(e.to_string()))?;
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            // A command that does not read its input is fine.
            let _ = s.write_all(&data);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut out);
        }
        out
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(4096).read_to_end(&mut out);
        }
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(SuggestError::Start(e.to_string())),
        }
    };
    let kill = || {
        #[cfg(unix)]
        // SAFETY: kill(2) on the process group this function created; no memory involved.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    };
    let Some(status) = status else {
        kill();
        let _ = child.wait();
        let _ = writer.join();
        let _ = reader.join();
        let _ = err_reader.join();
        return Err(SuggestError::Timeout(timeout.as_secs().max(1)));
    };
    // Whatever it left running (holding the pipes) goes too.
    kill();
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let stderr = {
        let l = crate::sanitize::line(&String::from_utf8_lossy(&err));
        if l.is_empty() {
            String::new()
        } else {
            let short: String = l.chars().take(200).collect();
            format!(
                ": {short}{}",
                if l.chars().count() > 200 { "…" } else { "" }
            )
        }
    };
    // Cut off at the limit (it may have died of the closed pipe since): too long, whatever
    // its status says.
    if out.len() > MAX_OUTPUT {
        return Err(SuggestError::TooLong);
    }
    if !status.success() {
        return Err(SuggestError::Failed {
            status: match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".into(),
            },
            stderr,
        });
    }
    let text = String::from_utf8(out).map_err(|_| SuggestError::NotUtf8)?;
    let text = crate::sanitize::text(&text).trim().to_string();
    if text.is_empty() {
        return Err(SuggestError::Empty(stderr));
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn the_draft_is_built_from_the_input() {
        let script = r#"python3 -c 'import json,sys; d=json.load(sys.stdin); print("Hi " + d["contact"]["name"].split()[0] + ", about: " + d["messages"][-1]["body"])'"#;
        let input = serde_json::json!({"contact": {"name": "Ana Souza"},
                                        "messages": [{"body": "refund?"}]});
        let out = run(script, input.to_string().as_bytes(), T).unwrap();
        assert_eq!(out, "Hi Ana, about: refund?");
    }

    #[test]
    fn failures_are_clear_and_stderr_is_one_clean_line() {
        let e = run("echo 'bad \x1b[31mthing\nhappened' >&2; exit 3", b"", T).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("exit status 3"), "{m}");
        assert!(m.contains("bad thing happened"), "{m}");
        assert!(!m.contains('\x1b') && !m.contains('\n'), "{m:?}");
        let started = Instant::now();
        let e = run("sleep 30", b"", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, SuggestError::Timeout(_)), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A child left behind holding stdout does not keep it waiting either.
        let started = Instant::now();
        let e = run("(sleep 30) & sleep 30", b"", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, SuggestError::Timeout(_)), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = run("head -c 100000 /dev/zero | tr '\\0' x", b"", T).unwrap_err();
        assert_eq!(e, SuggestError::TooLong);
        let e = run("true", b"", T).unwrap_err();
        assert!(matches!(e, SuggestError::Empty(_)), "{e}");
        let e = run("printf '\\377\\376'", b"", T).unwrap_err();
        assert_eq!(e, SuggestError::NotUtf8);
        // A command that ignores its (large) input still answers.
        let big = vec![b'x'; 1 << 20];
        assert_eq!(run("echo ok", &big, T).unwrap(), "ok");
    }
}
