//! Secrets (bot tokens, mail passwords) never sit in the config file (DESIGN.md, convention 7):
//! they come from a command that prints them (`*_command`, like aerc and himalaya) or from an
//! environment variable (`*_env`). One place reads them, for every channel.
//!
//! Nothing here ever echoes a secret-bearing value: not the variable name of `*_env` (a password
//! typed there by mistake is exactly what would leak), not the command of `*_command` (it may be
//! the password itself), not what the command printed on stdout or stderr. Errors name the KEY
//! and its section, and say what to do.

use std::time::Duration;

/// Where a secret comes from. `Debug` shows the kind only: a config printed with `{:?}` (a log
/// line, a panic) never carries the command, the variable name or the value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A shell command that prints the secret (`sh -c`).
    Command(String),
    /// An environment variable holding it.
    Env(String),
    /// Given directly (tests).
    Plain(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretSource::Command(_) => "SecretSource::Command(<hidden>)",
            SecretSource::Env(_) => "SecretSource::Env(<hidden>)",
            SecretSource::Plain(_) => "SecretSource::Plain(<hidden>)",
        })
    }
}

/// A POSIX environment variable name: a letter or `_`, then letters, digits and `_`.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How long a `*_command` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Pick the source from a section's `{what}_command` / `{what}_env` keys. Errors name the key.
pub fn source_from_keys(
    what: &'static str,
    command: Option<&str>,
    env: Option<&str>,
    command_key: &'static str,
    env_key: &'static str,
) -> Result<SecretSource, (&'static str, String)> {
    match (command, env) {
        (Some(_), Some(_)) => Err((
            env_key,
            format!("give {command_key} or {env_key}, not both"),
        )),
        (Some(c), None) if !c.trim().is_empty() => Ok(SecretSource::Command(c.to_string())),
        (None, Some(e)) if is_env_name(e.trim()) => Ok(SecretSource::Env(e.trim().to_string())),
        (Some(_), None) => Err((command_key, "must not be empty".to_string())),
        (None, Some(e)) if e.trim().is_empty() => Err((env_key, "must not be empty".to_string())),
        // The value is not repeated: it may be the secret itself, typed in the wrong place.
        (None, Some(_)) => Err((
            env_key,
            format!(
                "must be the NAME of an environment variable holding the {what} (letters, digits \
                 and _, like BRAID_SECRET), not the {what} itself"
            ),
        )),
        (None, None) => Err((
            command_key,
            format!(
                "the {what} is missing: set {command_key} (a command that prints it) or \
                 {env_key} (an environment variable holding it)"
            ),
        )),
    }
}

/// Read a secret from its source. `what` names it ("token", "password"), `place` its config
/// section ("[telegram]", "[[email]] support"); errors name the key (`token_env`...) there and
/// never the value, the variable's name, the command or its output. The value is trimmed of
/// surrounding newlines and must not be empty or hold control characters; `single_word` also
/// trims spaces and refuses inner whitespace (tokens).
pub async fn resolve(
    source: &SecretSource,
    what: &str,
    place: &str,
    single_word: bool,
) -> Result<String, String> {
    let value = match source {
        SecretSource::Plain(t) => t.clone(),
        SecretSource::Env(name) => match std::env::var(name) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(format!(
                    "{place} {what}_env: the environment variable named there is not set in \
                     braid's environment (export it before starting braid, or use \
                     {what}_command); its name is not repeated here in case it is the {what} \
                     itself"
                ));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!(
                    "{place} {what}_env: the environment variable named there is not UTF-8"
                ));
            }
        },
        SecretSource::Command(cmd) => {
            let out = tokio::time::timeout(
                COMMAND_TIMEOUT,
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .map_err(|_| format!("{place} {what}_command did not finish in 30 s"))?
            .map_err(|e| format!("{place} {what}_command: cannot run sh: {e}"))?;
            if !out.status.success() {
                // Neither stdout nor stderr is shown: either may hold the secret (a password
                // given as the command makes sh say "hunter2: not found").
                let why = match out.status.code() {
                    Some(127) => format!(
                        ": command not found. {what}_command must be a command that prints the \
                         {what} (like `pass show braid/{what}`), not the {what} itself"
                    ),
                    Some(126) => ": the command is not executable".to_string(),
                    Some(code) => format!(" with exit status {code}"),
                    None => " (killed by a signal)".to_string(),
                };
                return Err(format!(
                    "{place} {what}_command failed{why}; its output is not shown because it may \
                     hold the {what}: run the command yourself to see why"
                ));
            }
            String::from_utf8(out.stdout)
                .map_err(|_| format!("{place} {what}_command printed something not UTF-8"))?
        }
    };
    let key = match source {
        SecretSource::Command(_) => format!("{what}_command"),
        SecretSource::Env(_) => format!("{what}_env"),
        SecretSource::Plain(_) => what.to_string(),
    };
    // A command's trailing newline is not part of the secret; inner spaces may be (passwords).
    let value = value.trim_matches(|c| c == '\n' || c == '\r').to_string();
    let value = if single_word {
        value.trim().to_string()
    } else {
        value
    };
    if value.trim().is_empty() {
        return Err(format!("{place} {key}: the {what} is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{place} {key}: the {what} holds control characters (more than one line?)"
        ));
    }
    if single_word && value.chars().any(char::is_whitespace) {
        return Err(format!("{place} {key}: the {what} is not a single word"));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PLACE: &str = "[[email]] support";

    async fn err(source: SecretSource, single_word: bool) -> String {
        resolve(&source, "password", PLACE, single_word)
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn passwords_keep_inner_spaces_and_lose_the_newline() {
        let p = resolve(
            &SecretSource::Command("printf 'correct horse\\n'".into()),
            "password",
            PLACE,
            false,
        )
        .await
        .unwrap();
        assert_eq!(p, "correct horse");
        // Only newlines are trimmed from a password: its spaces may be part of it.
        let p = resolve(
            &SecretSource::Command("printf ' pw \\r\\n'".into()),
            "password",
            PLACE,
            false,
        )
        .await
        .unwrap();
        assert_eq!(p, " pw ");
        let e = err(SecretSource::Command("printf '\\n'".into()), false).await;
        assert_eq!(
            e,
            "[[email]] support password_command: the password is empty"
        );
    }

    #[tokio::test]
    async fn a_password_given_as_the_env_name_is_never_echoed() {
        let e = err(SecretSource::Env("hunter2".into()), false).await;
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("[[email]] support password_env: "), "{e}");
        assert!(e.contains("not set"), "{e}");
    }

    #[tokio::test]
    async fn a_password_given_as_the_command_is_never_echoed() {
        // sh says "sh: 1: hunter2: not found" on stderr: that must not come through.
        let e = err(SecretSource::Command("hunter2".into()), false).await;
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.starts_with("[[email]] support password_command failed: command not found"),
            "{e}"
        );
        // A failing command's stdout and stderr are not shown either.
        let e = err(
            SecretSource::Command("echo s3cret-out; echo s3cret-err >&2; exit 3".into()),
            false,
        )
        .await;
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("exit status 3"), "{e}");
        let e = err(SecretSource::Command("/etc/passwd".into()), false).await;
        assert!(e.contains("not executable") && !e.contains("passwd"), "{e}");
        let e = err(SecretSource::Command("kill -9 $$".into()), false).await;
        assert!(e.contains("signal"), "{e}");
    }

    #[tokio::test]
    async fn control_characters_and_inner_whitespace() {
        // A token with a control character is refused, even one that is not whitespace.
        let e = err(SecretSource::Plain("123:ab\u{1}c".into()), true).await;
        assert!(e.contains("control characters"), "{e}");
        assert!(!e.contains("123:ab"), "{e}");
        let e = err(SecretSource::Plain("123:ab\u{1b}[2J".into()), true).await;
        assert!(e.contains("control characters"), "{e}");
        // Passwords too.
        let e = err(SecretSource::Plain("pass\u{7f}word".into()), false).await;
        assert!(e.contains("control characters"), "{e}");
        // Two lines from a command.
        let e = err(SecretSource::Command("printf 'a\\nb\\n'".into()), false).await;
        assert!(e.contains("control characters"), "{e}");
        // Inner whitespace: a token is one word, a password may hold spaces.
        let e = err(SecretSource::Plain("123 abc".into()), true).await;
        assert!(e.ends_with("is not a single word"), "{e}");
        assert_eq!(
            resolve(
                &SecretSource::Plain(" 123:abc ".into()),
                "token",
                PLACE,
                true
            )
            .await
            .unwrap(),
            "123:abc"
        );
        assert_eq!(
            resolve(&SecretSource::Plain("a b".into()), "password", PLACE, false)
                .await
                .unwrap(),
            "a b"
        );
        let e = err(SecretSource::Plain("  ".into()), false).await;
        assert!(e.ends_with("is empty"), "{e}");
        let e = err(SecretSource::Plain("\n".into()), true).await;
        assert!(e.ends_with("is empty"), "{e}");
    }

    #[tokio::test]
    async fn env_values_are_read() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        let v = resolve(&SecretSource::Env("PATH".into()), "password", PLACE, false)
            .await
            .unwrap();
        assert_eq!(v, path.trim_matches(['\n', '\r']));
    }

    #[test]
    fn debug_hides_every_source() {
        for s in [
            SecretSource::Command("echo hunter2".into()),
            SecretSource::Env("hunter2".into()),
            SecretSource::Plain("hunter2".into()),
        ] {
            let d = format!("{s:?}");
            assert!(!d.contains("hunter2"), "{d}");
            assert!(d.contains("<hidden>"), "{d}");
        }
    }

    #[test]
    fn keys_are_named() {
        let pick = |c, e| source_from_keys("password", c, e, "password_command", "password_env");
        assert_eq!(
            pick(Some("pass x"), None).unwrap(),
            SecretSource::Command("pass x".into())
        );
        assert_eq!(
            pick(None, Some(" BRAID_PW ")).unwrap(),
            SecretSource::Env("BRAID_PW".into())
        );
        assert_eq!(pick(None, None).unwrap_err().0, "password_command");
        assert_eq!(pick(Some("a"), Some("B")).unwrap_err().0, "password_env");
        // An empty name says so (not "must be the NAME of ..." as for a value that may be
        // the password itself).
        assert_eq!(
            pick(None, Some(" ")).unwrap_err(),
            ("password_env", "must not be empty".to_string())
        );
        assert_eq!(pick(None, Some("")).unwrap_err().0, "password_env");
        // A blank command is refused, not run.
        assert_eq!(
            pick(Some(" "), None).unwrap_err(),
            ("password_command", "must not be empty".to_string())
        );
        assert_eq!(pick(Some(""), None).unwrap_err().0, "password_command");
        // Not a variable name: refused without repeating it (it may be the password).
        let (key, m) = pick(None, Some("hunter 2!")).unwrap_err();
        assert_eq!(key, "password_env");
        assert!(!m.contains("hunter"), "{m}");
        assert!(m.contains("NAME of an environment variable"), "{m}");
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_", "BRAID_TOKEN", "a1", "_9"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "ä", "A=B", "$A"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
