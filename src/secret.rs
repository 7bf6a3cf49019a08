//! Secrets (bot tokens, mail passwords) never sit in the config file (DESIGN.md, convention 7):
//! they come from a command that prints them (`*_command`, like aerc and himalaya) or from an
//! environment variable (`*_env`). One place reads them, for every channel.

use std::time::Duration;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A shell command that prints the secret (`sh -c`).
    Command(String),
    /// An environment variable holding it.
    Env(String),
    /// Given directly (tests).
    Plain(String),
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
        (None, Some(e)) if !e.trim().is_empty() => Ok(SecretSource::Env(e.trim().to_string())),
        (Some(_), None) => Err((command_key, "must not be empty".to_string())),
        (None, Some(_)) => Err((env_key, "must not be empty".to_string())),
        (None, None) => Err((
            command_key,
            format!(
                "the {what} is missing: set {command_key} (a command that prints it) or \
                 {env_key} (an environment variable holding it)"
            ),
        )),
    }
}

/// Read a secret from its source. `what` names it in errors ("token", "password"). The value
/// is trimmed of surrounding whitespace and must not be empty; `single_word` also refuses inner
/// whitespace (tokens).
pub async fn resolve(
    source: &SecretSource,
    what: &str,
    single_word: bool,
) -> Result<String, String> {
    let value = match source {
        SecretSource::Plain(t) => t.clone(),
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("{what}: the environment variable {name} is not set"))?,
        SecretSource::Command(cmd) => {
            let out = tokio::time::timeout(
                COMMAND_TIMEOUT,
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .map_err(|_| format!("{what}_command did not finish in 30 s"))?
            .map_err(|e| format!("{what}_command: {e}"))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                let err = crate::sanitize::line(err.lines().next().unwrap_or(""));
                return Err(format!(
                    "{what}_command failed ({}){}",
                    out.status,
                    if err.is_empty() {
                        String::new()
                    } else {
                        format!(": {err}")
                    }
                ));
            }
            String::from_utf8(out.stdout)
                .map_err(|_| format!("{what}_command printed non-UTF-8"))?
        }
    };
    // A command's trailing newline is not part of the secret; inner spaces may be (passwords).
    let value = value.trim_matches(|c| c == '\n' || c == '\r').to_string();
    let value = if single_word {
        value.trim().to_string()
    } else {
        value
    };
    if value.trim().is_empty()
        || value.chars().any(char::is_control)
        || (single_word && value.chars().any(char::is_whitespace))
    {
        return Err(if single_word {
            format!("{what}: empty or not a single word")
        } else {
            format!("{what}: empty or holds control characters")
        });
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_keep_inner_spaces_and_lose_the_newline() {
        let p = resolve(
            &SecretSource::Command("printf 'correct horse\\n'".into()),
            "password",
            false,
        )
        .await
        .unwrap();
        assert_eq!(p, "correct horse");
        let e = resolve(
            &SecretSource::Command("printf '\\n'".into()),
            "password",
            false,
        )
        .await
        .unwrap_err();
        assert!(e.starts_with("password:"), "{e}");
    }

    #[test]
    fn keys_are_named() {
        let pick = |c, e| source_from_keys("password", c, e, "password_command", "password_env");
        assert_eq!(
            pick(Some("pass x"), None).unwrap(),
            SecretSource::Command("pass x".into())
        );
        assert_eq!(pick(None, None).unwrap_err().0, "password_command");
        assert_eq!(pick(Some("a"), Some("B")).unwrap_err().0, "password_env");
        assert_eq!(pick(None, Some(" ")).unwrap_err().0, "password_env");
    }
}
