//! Canned replies: the team's own reply templates, one file each in the workspace's
//! `templates/` folder (beside the workspace config file; the server reads them, and reads
//! them again when a file changes), and an agent's personal ones in
//! `$XDG_CONFIG_HOME/braid/templates/` (read by the client). Not WhatsApp's approved templates
//! ([`crate::template`]): those are Meta's; these are text the agent inserts and edits.
//!
//! One file per template, `NAME.md` or `NAME.txt`, with optional front matter:
//!
//! ```text
//! ---
//! name: refund-approved
//! description: The refund went through
//! channels: email, telegram
//! team: billing
//! ---
//! Hi {{contact.first_name | default: "there"}}, your refund for #{{conversation.id}} is on
//! its way.
//! ```
//!
//! Per-channel variants sit beside it as `NAME.CHANNEL.md` (`refund-approved.email.md`, with
//! a greeting and a signature) or `NAME.chat.md` (every channel but email: the one-line chat
//! version). A reply on a channel uses the channel's variant, else the chat one (not for
//! email), else the base file. Variant files have no front matter of their own.
//!
//! Variables: `{{contact.first_name}}`, `{{contact.name}}`, `{{contact.email}}`,
//! `{{contact.phone}}`, `{{agent.name}}`, `{{agent.first_name}}`, `{{conversation.id}}`,
//! `{{conversation.channel}}`, with a default: `{{contact.first_name | default: "there"}}`. A
//! variable that cannot be filled and has no default stays in the text as written and is
//! reported ([`Rendered::missing`]): never a silent blank. The contact's custom fields
//! (`[[fields]]`) are variables too: `{{contact.plan}}`, `{{contact.renewal}}`, and its stage
//! and score: `{{contact.stage}}`, `{{contact.score}}`.

pub mod suggest;

use crate::model::{Channel, ConversationId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The folder name, beside the workspace config file (and in the personal config dir).
pub const DIR: &str = "templates";
/// A template file larger than this is refused (a reply, not a book).
pub const MAX_FILE: u64 = 64 * 1024;

/// One canned reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub name: String,
    pub description: Option<String>,
    /// Channels it is meant for (empty: every channel). Inserting it on another channel
    /// says so (it is not refused: the agent decides).
    pub channels: Vec<Channel>,
    /// The team it belongs to (informational: listed in the welcome; not a permission).
    pub team: Option<String>,
    /// The base text.
    pub body: String,
    /// Variants by channel name (`email`, `telegram`...) or `chat`.
    pub variants: BTreeMap<String, String>,
    /// From the agent's personal folder (rendered by the client).
    pub personal: bool,
}

impl Template {
    /// The text for `channel`: its variant, else the chat variant (not for email), else the
    /// base text.
    pub fn text_for(&self, channel: Option<Channel>) -> &str {
        if let Some(c) = channel {
            if let Some(v) = self.variants.get(c.as_str()) {
                return v;
            }
            if c != Channel::Email
                && let Some(v) = self.variants.get("chat")
            {
                return v;
            }
        }
        &self.body
    }

    /// What a client lists (completion, help).
    pub fn info(&self) -> CannedInfo {
        CannedInfo {
            name: self.name.clone(),
            description: self.description.clone(),
            channels: self.channels.clone(),
            team: self.team.clone(),
        }
    }
}

/// A workspace template as the welcome lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CannedInfo {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub team: Option<String>,
}

/// The values a template can use, by dotted name (`contact.first_name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// Set one value; text from outside (contact names) is made one clean line.
    pub fn set(&mut self, key: &str, value: &str) {
        let v = crate::sanitize::line(value);
        if !v.is_empty() {
            self.values.insert(key.to_string(), v);
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The variables of a conversation: its contact (name, identities), the agent, the
    /// conversation. A contact "name" that is only an address (an email, a phone number, a
    /// handle) gives no first name.
    pub fn new(
        contact_name: &str,
        identities: &[(crate::model::IdentityKind, String)],
        agent_name: &str,
        conversation: ConversationId,
        channel: Option<Channel>,
    ) -> Vars {
        use crate::model::IdentityKind;
        let mut v = Vars::default();
        let name = crate::sanitize::line(contact_name);
        let looks_like_address = name.contains('@')
            || name.starts_with('+')
            || name
                .chars()
                .all(|c| c.is_ascii_digit() || " -()".contains(c));
        if !name.is_empty() && !looks_like_address {
            v.set("contact.name", &name);
            if let Some(first) = name.split_whitespace().next() {
                v.set("contact.first_name", first);
            }
        }
        for (kind, value) in identities {
            let key = match kind {
                IdentityKind::Email => "contact.email",
                IdentityKind::Phone => "contact.phone",
                _ => continue,
            };
            if v.get(key).is_none() {
                v.set(key, value);
            }
        }
        v.set("agent.name", agent_name);
        if let Some(first) = agent_name.split_whitespace().next() {
            v.set("agent.first_name", first);
        }
        v.set("conversation.id", &conversation.0.to_string());
        if let Some(c) = channel {
            v.set("conversation.channel", c.as_str());
        }
        v
    }

    /// [`Vars::new`] from the store: the conversation's contact and identities. `agent_name`
    /// is who the reply is from (a display name when the workspace has one).
    pub fn from_store(
        store: &crate::store::Store,
        conversation: ConversationId,
        agent_name: &str,
        channel: Option<Channel>,
    ) -> Result<Vars, crate::store::StoreError> {
        let row = store.conversation(conversation)?;
        let profile = store.profile(row.contact_id)?;
        let ids: Vec<_> = profile
            .identities
            .iter()
            .map(|i| (i.kind, i.value.clone()))
            .collect();
        let mut vars = Vars::new(
            &profile.contact.name,
            &ids,
            agent_name,
            conversation,
            channel,
        );
        // The contact's custom fields (`{{contact.plan}}`), stage and score; never in place of
        // a built-in variable.
        for f in &profile.fields {
            let key = format!("contact.{}", f.name);
            if let Some(value) = &f.value
                && vars.get(&key).is_none()
            {
                vars.set(&key, value);
            }
        }
        if let Some(stage) = &profile.contact.stage {
            vars.set("contact.stage", stage);
        }
        vars.set("contact.score", &profile.contact.lead_score.to_string());
        Ok(vars)
    }
}

/// A rendered template: the text, and the variables left unfilled (in the text as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub missing: Vec<String>,
}

/// Fill `template`'s text for `channel` from `vars`. Pure.
pub fn render(template: &Template, channel: Option<Channel>, vars: &Vars) -> Rendered {
    render_text(template.text_for(channel), vars)
}

/// [`render`] on a bare text.
pub fn render_text(text: &str, vars: &Vars) -> Rendered {
    let mut out = String::with_capacity(text.len());
    let mut missing: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let whole = &rest[i..i + 2 + j + 2];
        let expr = &after[..j];
        rest = &after[j + 2..];
        match parse_expr(expr) {
            Ok((key, default)) => match (vars.get(&key), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(&d),
                (None, None) => {
                    out.push_str(whole);
                    if !missing.contains(&key) {
                        missing.push(key);
                    }
                }
            },
            Err(why) => {
                out.push_str(whole);
                let m = format!("{} ({why})", expr.trim());
                if !missing.contains(&m) {
                    missing.push(m);
                }
            }
        }
    }
    out.push_str(rest);
    Rendered { text: out, missing }
}

/// `contact.first_name | default: "there"` -> the key and the default.
fn parse_expr(expr: &str) -> Result<(String, Option<String>), String> {
    let (key, filter) = match expr.split_once('|') {
        Some((k, f)) => (k.trim(), Some(f.trim())),
        None => (expr.trim(), None),
    };
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err("not a variable name".into());
    }
    let default = match filter {
        None => None,
        Some(f) => {
            let arg = f
                .strip_prefix("default")
                .map(str::trim_start)
                .and_then(|a| a.strip_prefix(':'))
                .map(str::trim)
                .ok_or_else(|| {
                    format!(
                        "unknown filter '{}': only default: \"TEXT\"",
                        f.split(':').next().unwrap_or(f).trim()
                    )
                })?;
            let unquoted = arg
                .strip_prefix('"')
                .and_then(|a| a.strip_suffix('"'))
                .or_else(|| arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')))
                .ok_or("the default must be quoted: default: \"there\"")?;
            Some(unquoted.to_string())
        }
    };
    Ok((key.to_string(), default))
}

/// Whether text still holds a `{{...}}` placeholder (the composer asks before sending it).
pub fn has_placeholder(text: &str) -> bool {
    text.find("{{")
        .is_some_and(|i| text[i + 2..].contains("}}"))
}

/// The `{{...}}` placeholders a text still holds (what the composer flags), by name.
pub fn unfilled(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let name = after[..j]
            .split('|')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &after[j + 2..];
    }
    out
}

/// Every template of a folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Library {
    pub templates: Vec<Template>,
}

impl Library {
    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.templates.iter().map(|t| t.name.clone()).collect()
    }

    /// Read every template of `dir` (`*.md`, `*.txt`; a missing folder is an empty
    /// library). An error names the file and what to fix.
    pub fn load_dir(dir: &Path, personal: bool) -> Result<Library, String> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Library::default());
            }
            Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("md") | Some("txt")
                    )
            })
            .collect();
        files.sort();
        let mut bases: Vec<(String, Template)> = Vec::new();
        let mut variants: Vec<(PathBuf, String, String, String)> = Vec::new();
        for path in &files {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if size > MAX_FILE {
                return Err(format!(
                    "{}: {size} bytes is too long for a reply template (at most {MAX_FILE})",
                    path.display()
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            match stem.rsplit_once('.') {
                Some((base, variant)) => {
                    let v = variant.to_ascii_lowercase();
                    if v != "chat" && v.parse::<Channel>().is_err() {
                        return Err(format!(
                            "{}: '{variant}' is not a channel: name a variant NAME.CHANNEL.md \
                             (email, telegram, webchat, whatsapp, instagram, messenger, sms) \
                             or NAME.chat.md",
                            path.display()
                        ));
                    }
                    let (_, body) = split_front_matter(&text)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    variants.push((path.clone(), base.to_string(), v, body));
                }
                None => {
                    let t = parse_template(&stem, &text, personal)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    if let Some((other, _)) = bases.iter().find(|(_, b)| b.name == t.name) {
                        return Err(format!(
                            "{}: two templates are named '{}' (the other is {other})",
                            path.display(),
                            t.name
                        ));
                    }
                    bases.push((stem, t));
                }
            }
        }
        for (path, base, variant, body) in variants {
            let Some((_, t)) = bases.iter_mut().find(|(stem, _)| *stem == base) else {
                return Err(format!(
                    "{}: a variant of '{base}', but there is no {base}.md (or .txt) beside it",
                    path.display()
                ));
            };
            t.variants.insert(variant, body);
        }
        Ok(Library {
            templates: bases.into_iter().map(|(_, t)| t).collect(),
        })
    }
}

/// `---\nkey: value\n---\nbody` -> the front matter pairs and the body.
fn split_front_matter(text: &str) -> Result<(Vec<(String, String)>, String), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Ok((Vec::new(), text.trim_end().to_string()));
    };
    let mut pairs = Vec::new();
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        offset += line.len();
        let l = line.trim();
        if l == "---" {
            return Ok((pairs, rest[offset..].trim_end().to_string()));
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| format!("front matter line '{l}' is not 'key: value'"))?;
        pairs.push((k.trim().to_string(), v.trim().to_string()));
    }
    Err("the front matter opened with --- has no closing --- line".into())
}

fn parse_template(stem: &str, text: &str, personal: bool) -> Result<Template, String> {
    let (pairs, body) = split_front_matter(text)?;
    let mut t = Template {
        name: stem.to_string(),
        body,
        personal,
        ..Template::default()
    };
    for (k, v) in pairs {
        let v = v.trim_matches('"').to_string();
        match k.as_str() {
            "name" => t.name = v,
            "description" => t.description = Some(v),
            "team" => t.team = Some(v),
            "channels" => {
                for c in v
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|c| c.trim().trim_matches('"'))
                    .filter(|c| !c.is_empty())
                {
                    t.channels
                        .push(c.parse::<Channel>().map_err(|e| e.to_string())?);
                }
            }
            other => {
                return Err(format!(
                    "unknown front matter key '{other}' (name, description, channels, team)"
                ));
            }
        }
    }
    if t.name.is_empty()
        || !t
            .name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "'{}' is not a template name (letters, digits, '-', '_', '.')",
            t.name
        ));
    }
    Ok(t)
}

/// The workspace's folder, read again when a file in it changes (checked on use: one
/// directory listing, no watcher thread). A folder that turns bad keeps the last good
/// templates and says why.
#[derive(Debug)]
pub struct Folder {
    dir: Option<PathBuf>,
    state: Mutex<FolderState>,
}

#[derive(Debug, Default)]
struct FolderState {
    stamp: Option<Stamp>,
    library: Arc<Library>,
    error: Option<String>,
}

type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

impl Folder {
    /// The folder beside the workspace config file (`config` None: no folder).
    pub fn beside(config: Option<&Path>) -> Folder {
        Folder::at(config.and_then(Path::parent).map(|d| d.join(DIR)))
    }

    pub fn at(dir: Option<PathBuf>) -> Folder {
        let f = Folder {
            dir,
            state: Mutex::new(FolderState::default()),
        };
        f.current();
        f
    }

    /// The templates now (read again if a file changed), and the last load error if the
    /// folder is bad (the previous templates stay).
    pub fn current(&self) -> (Arc<Library>, Option<String>) {
        let Some(dir) = &self.dir else {
            return (Arc::new(Library::default()), None);
        };
        let Ok(mut st) = self.state.lock() else {
            return (Arc::new(Library::default()), None);
        };
        let stamp = stamp(dir);
        if st.stamp.as_ref() != Some(&stamp) {
            match Library::load_dir(dir, false) {
                Ok(lib) => {
                    st.library = Arc::new(lib);
                    st.error = None;
                }
                Err(e) => {
                    tracing::warn!("canned replies: {e} (keeping the last good templates)");
                    st.error = Some(e);
                }
            }
            st.stamp = Some(stamp);
        }
        (Arc::clone(&st.library), st.error.clone())
    }
}

fn stamp(dir: &Path) -> Stamp {
    let mut out: Stamp = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().ok();
                    (
                        e.path(),
                        m.as_ref().and_then(|m| m.modified().ok()),
                        m.map(|m| m.len()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The agent's personal folder: `$XDG_CONFIG_HOME/braid/templates/`.
pub fn personal_dir(env: &crate::config::Env) -> Option<PathBuf> {
    env.xdg_config_dir.as_ref().map(|d| d.join(DIR))
}

/// Why a named template could not be rendered for a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedError {
    #[error("no canned reply '{name}' in the workspace's templates/ folder (known: {known})")]
    Unknown { name: String, known: String },
    #[error(
        "canned reply '{name}' cannot be filled for #{conversation}: {} missing (give the \
         variable a default, e.g. {{{{contact.first_name | default: \"there\"}}}})",
        missing.join(", ")
    )]
    Missing {
        name: String,
        conversation: ConversationId,
        missing: Vec<String>,
    },
    #[error("cannot read #{conversation} to fill canned reply '{name}': {why}")]
    Store {
        name: String,
        conversation: ConversationId,
        why: String,
    },
}

/// Render the workspace template `name` for `conversation` on `channel`, as `agent_name`
/// (a rule: the rule's name, "rule:vip-first", or a display name it chooses). The text, or an
/// error when the template is unknown or a variable cannot be filled: a rule never sends a
/// half-filled reply. For the rules engine (and macros).
pub fn render_for(
    store: &crate::store::Store,
    library: &Library,
    name: &str,
    conversation: ConversationId,
    channel: Channel,
    agent_name: &str,
) -> Result<String, CannedError> {
    let t = library.get(name).ok_or_else(|| CannedError::Unknown {
        name: name.to_string(),
        known: {
            let n = library.names();
            if n.is_empty() {
                "none".into()
            } else {
                n.join(", ")
            }
        },
    })?;
    let vars = Vars::from_store(store, conversation, agent_name, Some(channel)).map_err(|e| {
        CannedError::Store {
            name: name.to_string(),
            conversation,
            why: e.to_string(),
        }
    })?;
    let r = render(t, Some(channel), &vars);
    if !r.missing.is_empty() {
        return Err(CannedError::Missing {
            name: name.to_string(),
            conversation,
            missing: r.missing,
        });
    }
    Ok(r.text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::IdentityKind;

    fn vars(name: &str) -> Vars {
        Vars::new(
            name,
            &[(IdentityKind::Email, "ana@example.com".into())],
            "Bob Stone",
            ConversationId(42),
            Some(Channel::Email),
        )
    }

    #[test]
    fn variables_and_defaults_fill_and_missing_ones_are_reported_not_blank() {
        let r = render_text(
            "Hi {{contact.first_name}} ({{ contact.name }}), #{{conversation.id}} via \
             {{conversation.channel}} — {{agent.name}} / {{agent.first_name}} {{contact.email}}",
            &vars("Ana Souza"),
        );
        assert_eq!(
            r.text,
            "Hi Ana (Ana Souza), #42 via email — Bob Stone / Bob ana@example.com"
        );
        assert!(r.missing.is_empty());
        // A name that is only an address gives no first name: the default, or reported.
        let v = vars("ana@example.com");
        let r = render_text("Hi {{contact.first_name | default: \"there\"}},", &v);
        assert_eq!(r.text, "Hi there,");
        assert!(r.missing.is_empty());
        let r = render_text(
            "Hi {{contact.first_name}}, {{contact.phone}} {{contact.first_name}}",
            &v,
        );
        assert_eq!(
            r.text,
            "Hi {{contact.first_name}}, {{contact.phone}} {{contact.first_name}}"
        );
        assert_eq!(r.missing, vec!["contact.first_name", "contact.phone"]);
        // A default is used only when the value is missing.
        let r = render_text("{{contact.first_name | default: 'you'}}", &vars("Ana"));
        assert_eq!(r.text, "Ana");
        // Bad expressions are reported, not dropped.
        let r = render_text(
            "{{contact.name | upcase}} {{ x y }} {{unclosed",
            &vars("Ana"),
        );
        assert_eq!(r.text, "{{contact.name | upcase}} {{ x y }} {{unclosed");
        assert_eq!(r.missing.len(), 2, "{:?}", r.missing);
        assert!(
            r.missing[0].contains("unknown filter 'upcase'"),
            "{:?}",
            r.missing
        );
        let r = render_text("{{contact.name | default: there}}", &vars(""));
        assert!(r.missing[0].contains("must be quoted"), "{:?}", r.missing);
    }

    #[test]
    fn values_from_outside_are_one_clean_line() {
        let r = render_text(
            "Hi {{contact.name}}!",
            &vars("Ana\u{1b}[31m\nEvil\u{202e} Corp"),
        );
        assert!(!r.text.contains('\u{1b}'), "{:?}", r.text);
        assert!(!r.text.contains('\n'), "{:?}", r.text);
        assert!(!r.text.contains('\u{202e}'), "{:?}", r.text);
    }

    #[test]
    fn placeholders_are_detected() {
        assert!(has_placeholder("Hi {{contact.name}}"));
        assert!(!has_placeholder("Hi {{ there"));
        assert!(!has_placeholder("Hi }} {{"));
        assert_eq!(
            unfilled("{{a}} {{ b | default: \"x\" }} {{a}} {{"),
            vec!["a", "b"]
        );
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_folder_loads_with_front_matter_and_channel_variants() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "refund.md",
            "---\nname: refund-approved\ndescription: Refund done\nchannels: [email, telegram]\nteam: billing\n---\nHi {{contact.first_name}}, refunded.\n",
        );
        write(
            d.path(),
            "refund.email.md",
            "Dear {{contact.name}},\n\nRefunded.\n\n-- \n{{agent.name}}\n",
        );
        write(d.path(), "refund.chat.txt", "Refunded 👍");
        write(d.path(), "thanks.txt", "Thanks!");
        write(d.path(), "notes.json", "ignored");
        let lib = Library::load_dir(d.path(), false).unwrap();
        assert_eq!(lib.names(), vec!["refund-approved", "thanks"]);
        let t = lib.get("refund-approved").unwrap();
        assert_eq!(t.description.as_deref(), Some("Refund done"));
        assert_eq!(t.channels, vec![Channel::Email, Channel::Telegram]);
        assert_eq!(t.team.as_deref(), Some("billing"));
        let v = vars("Ana Souza");
        assert_eq!(
            render(t, Some(Channel::Email), &v).text,
            "Dear Ana Souza,\n\nRefunded.\n\n-- \nBob Stone"
        );
        assert_eq!(render(t, Some(Channel::Telegram), &v).text, "Refunded 👍");
        assert_eq!(render(t, None, &v).text, "Hi Ana, refunded.");
        assert!(
            Library::load_dir(&d.path().join("none"), false)
                .unwrap()
                .templates
                .is_empty()
        );
    }

    #[test]
    fn bad_files_are_named_with_what_to_fix() {
        let cases = [
            ("a.md", "---\nname: a\n", "no closing ---"),
            (
                "a.md",
                "---\ncolour: red\n---\nx",
                "unknown front matter key 'colour'",
            ),
            ("a.md", "---\nchannels: pigeon\n---\nx", "pigeon"),
            ("a.fax.md", "x", "'fax' is not a channel"),
            ("b.email.md", "x", "no b.md"),
            ("a b.md", "x", "not a template name"),
        ];
        for (file, text, want) in cases {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), file, text);
            let e = Library::load_dir(d.path(), false).unwrap_err();
            assert!(e.contains(want) && e.contains(file), "{file}: {e}");
        }
    }

    #[test]
    fn the_folder_is_read_again_when_a_file_changes_and_a_bad_edit_keeps_the_last_good() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(DIR);
        std::fs::create_dir(&dir).unwrap();
        write(&dir, "a.md", "one");
        let f = Folder::beside(Some(&d.path().join("config.toml")));
        assert_eq!(f.current().0.get("a").unwrap().body, "one");
        write(&dir, "b.md", "two");
        let (lib, err) = f.current();
        assert_eq!(lib.names(), vec!["a", "b"]);
        assert!(err.is_none());
        write(&dir, "c.md", "---\nbad\n---\n");
        let (lib, err) = f.current();
        assert_eq!(lib.names(), vec!["a", "b"], "the last good templates stay");
        assert!(err.unwrap().contains("c.md"));
    }
}
