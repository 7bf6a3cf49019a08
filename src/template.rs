//! Approved message templates (WhatsApp's way to write first, or again after the 24-hour
//! window): a name and language Meta approved, and the text with its `{{1}}`, `{{2}}`...
//! placeholders, kept in the workspace config so braid can show what the customer will read.

use serde::{Deserialize, Serialize};

/// One approved template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    /// Meta's language code ("en_US", "de").
    pub language: String,
    /// The body as approved, placeholders `{{1}}`...`{{N}}`.
    pub text: String,
}

impl Template {
    /// How many parameters it takes: the highest placeholder number.
    pub fn params(&self) -> usize {
        placeholders(&self.text).into_iter().max().unwrap_or(0)
    }

    /// The text the customer reads with `params` in place. Errors say how many it takes.
    pub fn render(&self, params: &[String]) -> Result<String, String> {
        let want = self.params();
        if params.len() != want {
            return Err(format!(
                "template '{}' takes {want} parameter{} ({}), not {}",
                self.name,
                if want == 1 { "" } else { "s" },
                crate::sanitize::line(&self.text),
                params.len()
            ));
        }
        if let Some(p) = params.iter().find(|p| p.trim().is_empty()) {
            return Err(format!(
                "template parameters cannot be empty ('{}')",
                crate::sanitize::line(p)
            ));
        }
        let mut out = self.text.clone();
        // Highest first: {{12}} before {{1}}.
        for n in (1..=want).rev() {
            out = out.replace(&format!("{{{{{n}}}}}"), &params[n - 1]);
        }
        Ok(out)
    }

    /// What the outbox item carries for the sender: `{"template": {"name", "language",
    /// "params"}}`.
    pub fn meta(&self, params: &[String]) -> serde_json::Value {
        serde_json::json!({
            "template": { "name": self.name, "language": self.language, "params": params }
        })
    }
}

/// The numbers of the `{{N}}` placeholders in `text`.
fn placeholders(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find("}}")
            && let Ok(n) = rest[..j].trim().parse::<usize>()
            && (1..=99).contains(&n)
        {
            out.push(n);
            rest = &rest[j + 2..];
        }
    }
    out
}

/// Split `:template NAME p1 "p 2"` arguments: words, or quoted phrases.
pub fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn t(text: &str) -> Template {
        Template {
            name: "order_update".into(),
            language: "en".into(),
            text: text.into(),
        }
    }

    #[test]
    fn renders_every_placeholder_and_counts_them() {
        let tpl = t("Hi {{1}}, order {{2}} ships {{3}}. Thanks, {{1}}! {{x}} {{");
        assert_eq!(tpl.params(), 3);
        let p: Vec<String> = ["Ana", "4411", "today"].map(String::from).to_vec();
        assert_eq!(
            tpl.render(&p).unwrap(),
            "Hi Ana, order 4411 ships today. Thanks, Ana! {{x}} {{"
        );
        let e = tpl.render(&p[..2]).unwrap_err();
        assert!(e.contains("takes 3 parameters"), "{e}");
        let e = tpl
            .render(&["Ana".into(), " ".into(), "x".into()])
            .unwrap_err();
        assert!(e.contains("cannot be empty"), "{e}");
        assert_eq!(t("no placeholders").params(), 0);
        assert_eq!(t("{{10}} {{1}}").params(), 10);
        assert_eq!(
            tpl.meta(&p),
            serde_json::json!({"template": {"name": "order_update", "language": "en",
                                             "params": ["Ana", "4411", "today"]}})
        );
    }

    #[test]
    fn arguments_split_on_spaces_outside_quotes() {
        assert_eq!(
            split_args(r#"order_update Ana "order 4411"  "" x"#),
            vec!["order_update", "Ana", "order 4411", "", "x"]
        );
        assert_eq!(split_args("  "), Vec::<String>::new());
    }
}
