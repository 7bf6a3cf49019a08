//! Contacts that are probably one person (`:duplicates`): the same phone number written two
//! ways, an identifier one of them claimed that the other has, the same email local part at
//! two domains, the same full name at one company's domain. Suggestions only: an agent merges
//! or dismisses each pair, and a dismissal is remembered.
//!
//! One pass over the identities and claims of live contacts into hash maps (no self-join), so
//! 100,000 contacts take well under a second (`cargo bench --bench contacts`).

use super::{Result, Store, scope};
use crate::model::{ContactId, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Why two contacts look like one person, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// One claimed (typed into a widget) an address or number the other has.
    Claimed,
    /// The same phone number, written differently (the last nine digits agree).
    SamePhone,
    /// The same full name and the same company email domain.
    NameAndDomain,
    /// The same email local part at two domains (ann.lee@gmail.com, ann.lee@acme.com).
    EmailLocalPart,
}

impl DuplicateReason {
    pub fn score(self) -> u8 {
        match self {
            DuplicateReason::Claimed => 90,
            DuplicateReason::SamePhone => 85,
            DuplicateReason::NameAndDomain => 70,
            DuplicateReason::EmailLocalPart => 50,
        }
    }
}

/// One suggested pair (`a` < `b`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicatePair {
    pub a: ContactId,
    pub a_name: String,
    pub b: ContactId,
    pub b_name: String,
    pub reason: DuplicateReason,
    /// What matched, in words ("phone +44 20 7946 0958 / 020 7946 0958").
    pub evidence: String,
    pub score: u8,
}

/// Local parts that name a role, not a person: never evidence.
const ROLE_LOCALS: &[&str] = &[
    "info",
    "support",
    "admin",
    "sales",
    "contact",
    "hello",
    "noreply",
    "no-reply",
    "office",
    "mail",
    "team",
    "billing",
    "help",
    "hi",
    "accounts",
    "service",
    "enquiries",
    "orders",
];

/// Webmail domains: the same name there is not the same company.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "example.com",
    "example.org",
];

fn digits_tail(phone: &str) -> Option<String> {
    let d: String = phone.chars().filter(char::is_ascii_digit).collect();
    (d.len() >= 9).then(|| d[d.len() - 9..].to_string())
}

fn name_key(name: &str) -> Option<String> {
    let words: Vec<String> = name
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect();
    (words.len() >= 2 && !name.contains('@') && !name.starts_with("Visitor "))
        .then(|| words.join(" "))
}

/// Pairs over `(contact, kind, value)` identities, `(contact, kind, value)` claims and
/// `(contact, name)` names of live contacts; `dismissed` pairs left out; strongest first.
pub fn find(
    identities: &[(ContactId, String, String)],
    claims: &[(ContactId, String, String)],
    names: &HashMap<ContactId, String>,
    dismissed: &HashSet<(ContactId, ContactId)>,
) -> Vec<DuplicatePair> {
    let mut best: HashMap<(ContactId, ContactId), (DuplicateReason, String)> = HashMap::new();
    let mut offer = |x: ContactId, y: ContactId, reason: DuplicateReason, evidence: String| {
        if x == y {
            return;
        }
        let key = if x < y { (x, y) } else { (y, x) };
        if dismissed.contains(&key) {
            return;
        }
        let e = best.entry(key).or_insert((reason, evidence.clone()));
        if reason < e.0 {
            *e = (reason, evidence);
        }
    };
    // Claimed by one, held by the other.
    let held: HashMap<(&str, &str), ContactId> = identities
        .iter()
        .map(|(c, k, v)| ((k.as_str(), v.as_str()), *c))
        .collect();
    for (c, k, v) in claims {
        if let Some(o) = held.get(&(k.as_str(), v.as_str())) {
            offer(*c, *o, DuplicateReason::Claimed, format!("{k} {v}"));
        }
    }
    // Grouped keys: every pair inside a group (groups are small; a huge one is a shared
    // address, skipped).
    let mut groups: HashMap<(DuplicateReason, String), Vec<(ContactId, String)>> = HashMap::new();
    for (c, k, v) in identities.iter().chain(claims.iter()) {
        match k.as_str() {
            "phone" => {
                if let Some(t) = digits_tail(v) {
                    groups
                        .entry((DuplicateReason::SamePhone, t))
                        .or_default()
                        .push((*c, v.clone()));
                }
            }
            "email" => {
                let Some((local, domain)) = v.rsplit_once('@') else {
                    continue;
                };
                let local = local.split('+').next().unwrap_or(local).to_lowercase();
                let domain = domain.to_lowercase();
                if local.len() >= 4 && !ROLE_LOCALS.contains(&local.as_str()) {
                    groups
                        .entry((DuplicateReason::EmailLocalPart, local.clone()))
                        .or_default()
                        .push((*c, v.clone()));
                }
                if !FREE_MAIL.contains(&domain.as_str())
                    && let Some(n) = names.get(c).and_then(|n| name_key(n))
                {
                    groups
                        .entry((DuplicateReason::NameAndDomain, format!("{n}@{domain}")))
                        .or_default()
                        .push((*c, v.clone()));
                }
            }
            _ => {}
        }
    }
    for ((reason, _), members) in groups {
        if members.len() > 12 {
            continue;
        }
        for (i, (x, vx)) in members.iter().enumerate() {
            for (y, vy) in &members[i + 1..] {
                // The same local part at the same domain is the same address: no evidence.
                if reason == DuplicateReason::EmailLocalPart && vx.eq_ignore_ascii_case(vy) {
                    continue;
                }
                let evidence = if vx == vy {
                    vx.clone()
                } else {
                    format!("{vx} / {vy}")
                };
                offer(*x, *y, reason, evidence);
            }
        }
    }
    let mut out: Vec<DuplicatePair> = best
        .into_iter()
        .map(|((a, b), (reason, evidence))| {
            let a_name = names.get(&a).cloned().unwrap_or_default();
            let b_name = names.get(&b).cloned().unwrap_or_default();
            // The same full name as well makes any match stronger.
            let same_name = name_key(&a_name).is_some() && name_key(&a_name) == name_key(&b_name);
            DuplicatePair {
                a,
                a_name,
                b,
                b_name,
                reason,
                evidence,
                score: (reason.score() + if same_name { 20 } else { 0 }).min(99),
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.score
            .cmp(&x.score)
            .then(y.b.cmp(&x.b))
            .then(y.a.cmp(&x.a))
    });
    out
}

impl Store {
    /// Likely duplicate contacts, strongest first (at most `limit`); for a restricted scope,
    /// only pairs whose two contacts it sees.
    pub fn duplicates(&self, limit: usize) -> Result<Vec<DuplicatePair>> {
        let conn = self.conn();
        let live = |sql: &str| -> Result<Vec<(ContactId, String, String)>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        let identities = live(
            "SELECT i.contact_id, i.kind, i.value FROM identities i JOIN contacts c ON c.id = i.contact_id
             WHERE c.merged_into IS NULL AND i.kind IN ('email', 'phone')",
        )?;
        let claims = live(
            "SELECT i.contact_id, i.kind, i.value FROM identity_claims i JOIN contacts c ON c.id = i.contact_id
             WHERE c.merged_into IS NULL",
        )?;
        let names: HashMap<ContactId, String> = {
            let mut stmt =
                conn.prepare_cached("SELECT id, name FROM contacts WHERE merged_into IS NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let dismissed: HashSet<(ContactId, ContactId)> = {
            let mut stmt = conn.prepare_cached("SELECT a, b FROM duplicate_dismissals")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for p in find(&identities, &claims, &names, &dismissed) {
            if out.len() >= limit {
                break;
            }
            if self.scoped()
                && (scope::check_contact(conn, p.a, true).is_err()
                    || scope::check_contact(conn, p.b, true).is_err())
            {
                continue;
            }
            out.push(p);
        }
        Ok(out)
    }

    /// Remember that two contacts are not one person (`:duplicates`, `d`).
    pub fn dismiss_duplicate(
        &mut self,
        a: ContactId,
        b: ContactId,
        actor: &str,
        at: Millis,
    ) -> Result<()> {
        let scoped = self.scoped();
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        self.write_with(|tx| {
            scope::check_contact(tx, a, scoped)?;
            scope::check_contact(tx, b, scoped)?;
            tx.execute(
                "INSERT OR REPLACE INTO duplicate_dismissals(a, b, actor, at) VALUES (?1, ?2, ?3, ?4)",
                (a, b, actor, at),
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, v: &str, c: i64) -> (ContactId, String, String) {
        (ContactId(c), kind.into(), v.into())
    }

    #[test]
    fn pairs_by_each_reason_and_not_by_role_addresses_or_webmail_names() {
        let identities = vec![
            id("phone", "+442079460958", 1),
            id("phone", "02079460958", 2),
            id("email", "ann.lee@gmail.com", 3),
            id("email", "ann.lee@acme.com", 4),
            id("email", "support@acme.com", 5),
            id("email", "support@other.com", 6),
            id("email", "bob@bigcorp.com", 7),
            id("email", "robert@bigcorp.com", 8),
            id("email", "zed@gmail.com", 9),
            id("email", "zed.q@hotmail.com", 10),
            id("email", "zed.quinn@gmail.com", 12),
            id("email", "zed.quinn@hotmail.com", 13),
        ];
        let claims = vec![id("email", "ann.lee@acme.com", 11)];
        let names: HashMap<ContactId, String> = [
            (7, "Bob Stone"),
            (8, "bob  stone"),
            (9, "Zed Quinn"),
            (10, "Zed Quinn"),
            (12, "Zed Quinn"),
            (13, "Zed Quinn"),
        ]
        .into_iter()
        .map(|(c, n)| (ContactId(c), n.to_string()))
        .collect();
        let pairs = find(&identities, &claims, &names, &HashSet::new());
        let got: Vec<(i64, i64, DuplicateReason)> =
            pairs.iter().map(|p| (p.a.0, p.b.0, p.reason)).collect();
        assert!(got.contains(&(4, 11, DuplicateReason::Claimed)), "{got:?}");
        assert!(got.contains(&(1, 2, DuplicateReason::SamePhone)), "{got:?}");
        assert!(
            got.contains(&(7, 8, DuplicateReason::NameAndDomain)),
            "{got:?}"
        );
        assert!(
            got.contains(&(3, 4, DuplicateReason::EmailLocalPart)),
            "{got:?}"
        );
        assert!(
            !got.iter().any(|p| p.0 == 5 || p.1 == 6),
            "role addresses: {got:?}"
        );
        assert!(
            !got.iter().any(|p| p.0 == 9 && p.1 == 10),
            "webmail names: {got:?}"
        );
        // Strongest first; the same name as well makes a weak match stronger.
        assert_eq!(pairs[0].reason, DuplicateReason::Claimed);
        let zed = pairs.iter().find(|p| p.a.0 == 12).unwrap();
        assert_eq!(
            (zed.reason, zed.score),
            (DuplicateReason::EmailLocalPart, 70)
        );
        let ann = pairs.iter().find(|p| p.a.0 == 3).unwrap();
        assert_eq!(ann.score, 50);
        // A dismissed pair is not suggested again.
        let dismissed: HashSet<_> = [(ContactId(1), ContactId(2))].into_iter().collect();
        let again = find(&identities, &claims, &names, &dismissed);
        assert!(!again.iter().any(|p| p.a.0 == 1 && p.b.0 == 2));
    }
}
