//! Custom contact fields, the lifecycle stage and the lead score: the workspace's `[[fields]]`
//! and `[pipeline]` settings and the validation every write goes through. Pure: the store keeps
//! the values (`contact_fields`, `contacts.stage`, `contacts.lead_score`), the server passes
//! these definitions to it.
//!
//! ```toml
//! [[fields]]
//! name = "plan"
//! type = "choice"
//! choices = ["free", "pro", "enterprise"]
//! label = "Plan"
//!
//! [[fields]]
//! name = "renewal"
//! type = "date"          # YYYY-MM-DD
//!
//! [pipeline]
//! stages = ["lead", "qualified", "customer", "churned"]
//! ```

use serde::{Deserialize, Serialize};

/// The stages when the config gives none.
pub const DEFAULT_STAGES: [&str; 4] = ["lead", "qualified", "customer", "churned"];

/// The longest value a field keeps (characters).
pub const MAX_VALUE_CHARS: usize = 500;

/// Search keys built into the query language (`tag:`, `from:`...): a field may not take one of
/// these names, or `NAME:VALUE` would mean two things.
pub const RESERVED_NAMES: &[&str] = &[
    "from",
    "channel",
    "via",
    "is",
    "after",
    "since",
    "before",
    "until",
    "tag",
    "assignee",
    "team",
    "conversation",
    "conv",
    "status",
    "priority",
    "prio",
    "stage",
    "score",
    "name",
    "contact",
    "vip",
];

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// One of the definition's `choices`.
    Choice,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Choice => "choice",
        }
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FieldKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(FieldKind::Text),
            "number" => Ok(FieldKind::Number),
            "date" => Ok(FieldKind::Date),
            "choice" => Ok(FieldKind::Choice),
            other => Err(format!(
                "unknown field type {other:?}: use text, number, date or choice"
            )),
        }
    }
}

/// One `[[fields]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub kind: FieldKind,
    /// The allowed values of a choice field (empty otherwise).
    #[serde(default)]
    pub choices: Vec<String>,
    /// What the profile shows (None: the name).
    #[serde(default)]
    pub label: Option<String>,
}

impl FieldDef {
    pub fn new(name: &str, kind: FieldKind) -> FieldDef {
        FieldDef {
            name: name.into(),
            kind,
            choices: Vec::new(),
            label: None,
        }
    }

    pub fn choice(name: &str, choices: &[&str]) -> FieldDef {
        FieldDef {
            choices: choices.iter().map(|c| c.to_string()).collect(),
            ..FieldDef::new(name, FieldKind::Choice)
        }
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// The value as stored (trimmed; a number in its plain form), or why it is refused, saying
    /// what is allowed.
    pub fn validate(&self, value: &str) -> Result<String, String> {
        let v = value.trim();
        if v.is_empty() {
            return Err(format!(
                "{}: empty value; to clear it use :unset {}",
                self.name, self.name
            ));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(format!(
                "{}: value too long (at most {MAX_VALUE_CHARS} characters)",
                self.name
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("{}: control characters are not allowed", self.name));
        }
        match self.kind {
            FieldKind::Text => Ok(v.to_string()),
            FieldKind::Number => match parse_number(v) {
                Some(n) => Ok(format_number(n)),
                None => Err(format!(
                    "{}: {v:?} is not a number (a number field takes e.g. 42 or 9.5)",
                    self.name
                )),
            },
            FieldKind::Date => {
                if parse_date(v).is_some() {
                    Ok(v.to_string())
                } else {
                    Err(format!(
                        "{}: {v:?} is not a date (a date field takes YYYY-MM-DD, e.g. 2027-03-31)",
                        self.name
                    ))
                }
            }
            FieldKind::Choice => match self.choices.iter().find(|c| c.eq_ignore_ascii_case(v)) {
                Some(c) => Ok(c.clone()),
                None => Err(format!(
                    "{}: {v:?} is not one of the choices: {}",
                    self.name,
                    self.choices.join(", ")
                )),
            },
        }
    }

    /// The numeric sort key of a stored value: the number of a number field, the day number of a
    /// date field (so `>`/`<` compare them); None for text and choices.
    pub fn sort_key(&self, stored: &str) -> Option<f64> {
        match self.kind {
            FieldKind::Number => parse_number(stored),
            FieldKind::Date => parse_date(stored).map(|d| d as f64),
            FieldKind::Text | FieldKind::Choice => None,
        }
    }
}

/// A finite number (`1e400` and `NaN` are not).
pub fn parse_number(s: &str) -> Option<f64> {
    let n: f64 = s.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

/// `42` rather than `42.0`; other numbers as Rust prints them.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `YYYY-MM-DD` (a real calendar day) as days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let d = jiff::civil::Date::strptime("%Y-%m-%d", s).ok()?;
    let epoch = jiff::civil::date(1970, 1, 1);
    Some(i64::from(epoch.until(d).ok()?.get_days()))
}

/// `[pipeline]` plus `[[fields]]`: everything a write of a field, stage or score is checked
/// against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldsConfig {
    pub fields: Vec<FieldDef>,
    pub stages: Vec<String>,
}

impl Default for FieldsConfig {
    fn default() -> Self {
        FieldsConfig {
            fields: Vec::new(),
            stages: DEFAULT_STAGES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl FieldsConfig {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The definition of `name`, or an error naming the fields there are.
    pub fn require(&self, name: &str) -> Result<&FieldDef, String> {
        let name = name.trim().to_ascii_lowercase();
        self.field(&name).ok_or_else(|| {
            if self.fields.is_empty() {
                format!(
                    "no field {name:?}: the workspace defines no fields ([[fields]] in its config)"
                )
            } else {
                format!(
                    "no field {name:?}; fields: {}",
                    self.fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        })
    }

    /// The configured stage `name` (any case), or an error listing the stages.
    pub fn require_stage(&self, name: &str) -> Result<&str, String> {
        let n = name.trim();
        self.stages
            .iter()
            .find(|s| s.eq_ignore_ascii_case(n))
            .map(|s| s.as_str())
            .ok_or_else(|| format!("no stage {n:?}; stages: {}", self.stages.join(", ")))
    }
}

/// One `[[fields]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub name: toml::Spanned<String>,
    #[serde(rename = "type")]
    pub kind: toml::Spanned<String>,
    #[serde(default)]
    pub choices: Option<toml::Spanned<Vec<String>>>,
    pub label: Option<String>,
}

/// `[pipeline]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub stages: toml::Spanned<Vec<String>>,
}

/// A resolve error: the span, the dotted key, the message.
pub type RawError = (std::ops::Range<usize>, String, String);

/// Check `[[fields]]` and `[pipeline]` (absent: the default stages).
pub fn resolve(
    fields: &[toml::Spanned<RawField>],
    pipeline: Option<&toml::Spanned<RawPipeline>>,
) -> Result<FieldsConfig, RawError> {
    let mut out = FieldsConfig::default();
    for f in fields {
        let raw = f.get_ref();
        let name = raw.name.get_ref().as_str();
        check_name(name).map_err(|m| (raw.name.span(), "fields.name".to_string(), m))?;
        if out.field(name).is_some() {
            return Err((
                raw.name.span(),
                "fields.name".into(),
                format!("field {name:?} is defined twice: keep one [[fields]] entry per name"),
            ));
        }
        let kind: FieldKind = raw
            .kind
            .get_ref()
            .parse()
            .map_err(|m| (raw.kind.span(), "fields.type".to_string(), m))?;
        let mut choices = Vec::new();
        match (&raw.choices, kind) {
            (Some(c), FieldKind::Choice) => {
                for v in c.get_ref() {
                    let v = v.trim();
                    if v.is_empty() || v.chars().any(char::is_control) {
                        return Err((
                            c.span(),
                            "fields.choices".into(),
                            format!("field {name:?}: a choice may not be empty"),
                        ));
                    }
                    if !choices.iter().any(|x: &String| x.eq_ignore_ascii_case(v)) {
                        choices.push(v.to_string());
                    }
                }
                if choices.is_empty() {
                    return Err((
                        c.span(),
                        "fields.choices".into(),
                        format!("field {name:?}: list its choices, e.g. [\"free\", \"pro\"]"),
                    ));
                }
            }
            (None, FieldKind::Choice) => {
                return Err((
                    f.span(),
                    "fields.choices".into(),
                    format!(
                        "field {name:?} is a choice: add choices = [\"...\", ...] listing what it may hold"
                    ),
                ));
            }
            (Some(c), _) => {
                return Err((
                    c.span(),
                    "fields.choices".into(),
                    format!("field {name:?} is {kind}: choices only go with type = \"choice\""),
                ));
            }
            (None, _) => {}
        }
        out.fields.push(FieldDef {
            name: name.to_string(),
            kind,
            choices,
            label: raw
                .label
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        });
    }
    if let Some(p) = pipeline {
        let st = &p.get_ref().stages;
        let mut stages: Vec<String> = Vec::new();
        for s in st.get_ref() {
            let s = s.trim().to_ascii_lowercase();
            let ok = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !ok {
                return Err((
                    st.span(),
                    "pipeline.stages".into(),
                    format!(
                        "stage {s:?}: use a lowercase word (a-z, 0-9, _ or -), e.g. \"qualified\""
                    ),
                ));
            }
            if stages.contains(&s) {
                return Err((
                    st.span(),
                    "pipeline.stages".into(),
                    format!("stage {s:?} is listed twice"),
                ));
            }
            stages.push(s);
        }
        if stages.is_empty() {
            return Err((
                st.span(),
                "pipeline.stages".into(),
                "no stage listed: name some, e.g. [\"lead\", \"customer\"], or leave [pipeline] out".into(),
            ));
        }
        out.stages = stages;
    }
    Ok(out)
}

/// A change of the lead score: `+N`/`-N` adds, `N` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreChange {
    Add(i64),
    Set(i64),
}

/// The furthest a score goes either way (so adding never overflows).
pub const MAX_SCORE: i64 = 1_000_000_000;

impl ScoreChange {
    pub fn parse(s: &str) -> Result<ScoreChange, String> {
        let s = s.trim();
        let bad = || format!("score {s:?}: use +N to add, -N to take away, N to set (e.g. +10)");
        let n = |t: &str| -> Result<i64, String> {
            let v: i64 = t.parse().map_err(|_| bad())?;
            if v.abs() > MAX_SCORE {
                return Err(format!("score {s:?}: at most {MAX_SCORE} either way"));
            }
            Ok(v)
        };
        if let Some(rest) = s.strip_prefix('+') {
            Ok(ScoreChange::Add(n(rest)?))
        } else if s.starts_with('-') {
            Ok(ScoreChange::Add(n(s)?))
        } else {
            Ok(ScoreChange::Set(n(s)?))
        }
    }

    /// The score after this change from `old`, kept within ±[`MAX_SCORE`].
    pub fn apply(self, old: i64) -> i64 {
        let v = match self {
            ScoreChange::Add(d) => old.saturating_add(d),
            ScoreChange::Set(v) => v,
        };
        v.clamp(-MAX_SCORE, MAX_SCORE)
    }
}

/// A name a field may take: a lowercase identifier (`a-z`, digits, `_`; a letter first), not a
/// built-in search key. Err says why not.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 40;
    if !ok {
        return Err(format!(
            "field name {name:?}: use a lowercase identifier (a-z, 0-9, _; starting with a letter), e.g. \"plan\""
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "field name {name:?} is a built-in search key; choose another (e.g. \"{name}_field\")"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_validated_by_type_with_what_is_allowed() {
        let n = FieldDef::new("seats", FieldKind::Number);
        assert_eq!(n.validate(" 42 ").unwrap(), "42");
        assert_eq!(n.validate("9.50").unwrap(), "9.5");
        assert!(n.validate("many").unwrap_err().contains("not a number"));
        assert!(n.validate("NaN").is_err());
        let d = FieldDef::new("renewal", FieldKind::Date);
        assert_eq!(d.validate("2027-03-31").unwrap(), "2027-03-31");
        assert!(d.validate("2027-02-30").unwrap_err().contains("YYYY-MM-DD"));
        assert!(d.validate("31/03/2027").is_err());
        let c = FieldDef::choice("plan", &["free", "pro", "enterprise"]);
        assert_eq!(c.validate("PRO").unwrap(), "pro");
        let e = c.validate("gold").unwrap_err();
        assert!(e.contains("free, pro, enterprise"), "{e}");
        let t = FieldDef::new("note", FieldKind::Text);
        assert!(t.validate("  ").unwrap_err().contains(":unset note"));
        assert!(t.validate("a\u{1b}[2J").is_err());
    }

    #[test]
    fn dates_and_numbers_have_sort_keys() {
        let d = FieldDef::new("renewal", FieldKind::Date);
        assert_eq!(d.sort_key("1970-01-02"), Some(1.0));
        assert!(d.sort_key("2027-01-01") > d.sort_key("2026-12-31"));
        assert_eq!(
            FieldDef::new("n", FieldKind::Number).sort_key("-3"),
            Some(-3.0)
        );
        assert_eq!(FieldDef::new("t", FieldKind::Text).sort_key("3"), None);
    }

    #[test]
    fn scores_add_take_away_and_set() {
        assert_eq!(ScoreChange::parse("+5").unwrap(), ScoreChange::Add(5));
        assert_eq!(ScoreChange::parse("-5").unwrap(), ScoreChange::Add(-5));
        assert_eq!(ScoreChange::parse("7").unwrap(), ScoreChange::Set(7));
        assert!(ScoreChange::parse("lots").unwrap_err().contains("+N"));
        assert_eq!(ScoreChange::Add(-3).apply(10), 7);
        assert_eq!(ScoreChange::Add(MAX_SCORE).apply(MAX_SCORE), MAX_SCORE);
    }

    #[test]
    fn names_are_identifiers_and_not_search_keys() {
        assert!(check_name("plan").is_ok());
        assert!(check_name("renewal_2").is_ok());
        assert!(check_name("Plan").is_err());
        assert!(check_name("2x").is_err());
        assert!(check_name("tag").unwrap_err().contains("built-in"));
        let cfg = FieldsConfig::default();
        assert_eq!(cfg.require_stage("Customer").unwrap(), "customer");
        assert!(
            cfg.require_stage("won")
                .unwrap_err()
                .contains("lead, qualified")
        );
        assert!(
            cfg.require("plan")
                .unwrap_err()
                .contains("defines no fields")
        );
    }
}
