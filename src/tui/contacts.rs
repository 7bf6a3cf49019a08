//! Contacts you can trust, in the TUI: `:merge` with a preview of what moves, `:unmerge`,
//! `:merges` (the provenance of a contact), `:duplicates` (pairs to merge or dismiss),
//! `:identity-remove` / `:identity-move`. The server does the work ([`Request::Contact`],
//! [`Request::Duplicates`]); this file turns commands into requests and answers into lines.

use crate::api::{ContactAnswer, ContactOp, Request, Response};
use crate::api::{DuplicatePair, DuplicateReason, MergeKind, MergePlan, MergeRow, Unmerged};
use crate::model::{ContactId, Millis};
use crate::tui::action::Action;
use crate::tui::app::{App, Effect};
use crate::tui::sheet::{PageAt, SheetEnter, SheetPage, SheetRow, SheetSource};

/// A merge the agent is about to confirm: the reason to record with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingMerge {
    pub reason: String,
}

fn esc(s: &str) -> String {
    crate::sanitize::for_terminal_line(s).into_owned()
}

/// "merge #42 Ann L. (email ann@x.org, telegram 555; 3 conversations, 41 messages; tags
/// billing) into #12 Ann Lee? The open conversations become one. :unmerge takes it back."
pub fn merge_question(p: &MergePlan) -> String {
    let ids: Vec<String> = p
        .identities
        .iter()
        .map(|i| format!("{} {}", i.kind, i.value))
        .collect();
    let plural = |n: i64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let mut what = vec![
        if ids.is_empty() {
            "no identities".to_string()
        } else {
            ids.join(", ")
        },
        plural(p.conversations, "conversation"),
        plural(p.messages, "message"),
    ];
    if !p.tags.is_empty() {
        what.push(format!("tags {}", p.tags.join(" ")));
    }
    let open = if p.joins_open {
        " (open conversations become one)"
    } else {
        ""
    };
    esc(&format!(
        "merge #{} {} ({}) into #{} {}{open}? :unmerge undoes it",
        p.absorbed.id,
        p.absorbed.name,
        what.join("; "),
        p.survivor.id,
        p.survivor.name,
    ))
}

/// What an unmerge did, for the status line.
pub fn unmerged_line(u: &Unmerged) -> String {
    let what = match u.kind {
        MergeKind::Contacts => format!(
            "contact #{} is on its own again (from #{})",
            u.other, u.target
        ),
        MergeKind::Conversations => {
            format!("conversation #{} is back (out of #{})", u.other, u.target)
        }
        MergeKind::Split => format!("#{} joined #{} again", u.other, u.target),
    };
    let mut extra = Vec::new();
    if u.later_messages > 0 {
        extra.push(format!(
            "{} later message(s) went with their identity",
            u.later_messages
        ));
    }
    if u.kept_changes > 0 {
        extra.push("changes made since were kept".to_string());
    }
    if extra.is_empty() {
        format!("merge #{} undone: {what}", u.merge)
    } else {
        format!("merge #{} undone: {what}; {}", u.merge, extra.join(", "))
    }
}

/// One provenance line.
pub fn merge_line(m: &MergeRow, now: Millis) -> String {
    let what = match m.kind {
        MergeKind::Contacts => format!("contact #{} into #{}", m.other, m.target),
        MergeKind::Conversations => format!("conversation #{} into #{}", m.other, m.target),
        MergeKind::Split => format!("#{} split into #{}", m.target, m.other),
    };
    let undone = match &m.undone {
        Some((t, by)) => format!("  (undone by {by} {})", crate::tui::time::short(*t, now)),
        None => String::new(),
    };
    esc(&format!(
        "#{:<5} {:<12} {:<34} {:<10} {:<40} {}{undone}",
        m.id,
        crate::tui::time::short(m.at, now),
        what,
        m.actor,
        m.reason,
        m.moved,
    ))
}

fn reason_label(r: DuplicateReason) -> &'static str {
    match r {
        DuplicateReason::Claimed => "claimed",
        DuplicateReason::SamePhone => "same phone",
        DuplicateReason::NameAndDomain => "name+company",
        DuplicateReason::EmailLocalPart => "same local part",
    }
}

/// One suggested pair, in columns (names padded by display width: CJK names take two).
pub fn pair_line(p: &DuplicatePair) -> String {
    use crate::tui::ui::pad;
    format!(
        "{:>3}  {} {} {} {} {} {}",
        p.score,
        pad(reason_label(p.reason), 15),
        pad(&format!("#{}", p.a), 7),
        pad(&p.a_name, 22),
        pad(&format!("#{}", p.b), 7),
        pad(&p.b_name, 22),
        esc(&p.evidence)
    )
}

/// The sheet's name for [`SheetSource::name`].
pub const DUPLICATES: &str = "duplicates";
/// How many pairs the view asks for (the strongest first).
const PAIRS: usize = 300;

/// `:duplicates`: likely pairs, strongest first; `m` merges (the older contact survives), `d`
/// dismisses, Enter opens the first contact's conversations.
#[derive(Default)]
pub struct DuplicatesView {
    pairs: Vec<DuplicatePair>,
    /// The `seq` of the last request: the answer does not carry one.
    asked: std::sync::atomic::AtomicU64,
    reload: bool,
}

impl SheetSource for DuplicatesView {
    fn title(&self) -> String {
        "likely duplicates (m merge, d not the same person)".into()
    }

    fn name(&self) -> &'static str {
        DUPLICATES
    }

    fn request(&self, seq: u64, _at: PageAt, _limit: usize) -> Request {
        self.asked.store(seq, std::sync::atomic::Ordering::Relaxed);
        Request::Duplicates { limit: PAIRS }
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Duplicates(pairs) = resp else {
            return None;
        };
        self.pairs = pairs.clone();
        let rows = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| SheetRow {
                key: i as i64,
                text: pair_line(p),
                marked: false,
                target: None,
            })
            .collect();
        Some(SheetPage {
            seq: self.asked.load(std::sync::atomic::Ordering::Relaxed),
            at: PageAt::Top,
            rows,
            more: false,
            footer: Some(format!(
                "{} pair(s) · m merge (the older survives) · d dismiss · :unmerge takes a merge back",
                self.pairs.len()
            )),
        })
    }

    fn commands(&self) -> &'static [&'static str] {
        &["merge_pair", "dismiss_pair"]
    }

    fn action(&mut self, action: &Action, selected: Option<&SheetRow>) -> Option<SheetEnter> {
        let pair = selected
            .and_then(|r| self.pairs.get(r.key as usize))?
            .clone();
        let op = match action {
            Action::MergePair => ContactOp::Merge {
                other: pair.b,
                keep_other: false,
                reason: format!(
                    "duplicates: {} ({})",
                    reason_label(pair.reason),
                    pair.evidence
                ),
            },
            Action::DismissPair => ContactOp::DismissDuplicate { other: pair.b },
            _ => return None,
        };
        self.reload = true;
        Some(SheetEnter {
            requests: vec![Request::Contact {
                contact: pair.a,
                op,
            }],
            info: Some(match action {
                Action::MergePair => format!("merging #{} into #{}...", pair.b, pair.a),
                _ => format!("#{} and #{} dismissed", pair.a, pair.b),
            }),
            ..SheetEnter::default()
        })
    }

    fn take_reload(&mut self) -> bool {
        std::mem::take(&mut self.reload)
    }

    fn empty(&self) -> String {
        "no likely duplicates (same phone, a claimed address, same name at one company, same \
         email local part)"
            .into()
    }
}

/// `:merges`: the merges involving one contact, newest first.
pub struct MergesView {
    pub contact: ContactId,
    pub now: Millis,
    pub asked: std::sync::atomic::AtomicU64,
}

impl SheetSource for MergesView {
    fn title(&self) -> String {
        format!(
            "merges of contact #{} (:unmerge N takes one back)",
            self.contact
        )
    }

    fn name(&self) -> &'static str {
        "merges"
    }

    fn request(&self, seq: u64, _at: PageAt, _limit: usize) -> Request {
        self.asked.store(seq, std::sync::atomic::Ordering::Relaxed);
        Request::Contact {
            contact: self.contact,
            op: ContactOp::Merges,
        }
    }

    fn page(&mut self, resp: &Response) -> Option<SheetPage> {
        let Response::Contact(ContactAnswer::Merges(rows)) = resp else {
            return None;
        };
        Some(SheetPage {
            seq: self.asked.load(std::sync::atomic::Ordering::Relaxed),
            at: PageAt::Top,
            rows: rows
                .iter()
                .map(|m| SheetRow {
                    key: m.id,
                    text: merge_line(m, self.now),
                    marked: m.undone.is_none(),
                    target: None,
                })
                .collect(),
            more: false,
            footer: Some(format!("{} merge(s)", rows.len())),
        })
    }

    fn empty(&self) -> String {
        "no merges involve this contact".into()
    }
}

impl App {
    /// The contact commands (`:merge`, `:unmerge`, `:merges`, `:duplicates`, identities).
    pub(crate) fn contact_action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Duplicates => return self.open_sheet(Box::new(DuplicatesView::default())),
            Action::Merge(None) => return self.prompt_with("merge "),
            Action::MergeInto(None) => return self.prompt_with("merge_into "),
            Action::Unmerge(Some(ref a)) if a.trim().is_empty() => {}
            Action::Join(None) => return self.prompt_with("join "),
            Action::Split(None) => return self.prompt_with("split "),
            Action::IdentityRemove(None) => return self.prompt_with("identity_remove "),
            Action::IdentityMove(None) => return self.prompt_with("identity_move "),
            _ => {}
        }
        let Some((_, contact)) = self.chosen() else {
            return Vec::new();
        };
        let keep_other = matches!(action, Action::MergeInto(_));
        let op = match action {
            Action::Merge(Some(arg)) | Action::MergeInto(Some(arg)) => {
                let (id, reason) = match arg.trim().split_once(char::is_whitespace) {
                    Some((i, r)) => (i, r.trim().to_string()),
                    None => (arg.trim(), String::new()),
                };
                let other = match crate::tui::action::parse_contact_id(id) {
                    Ok(o) => o,
                    Err(e) => {
                        self.error(e);
                        return Vec::new();
                    }
                };
                if other == contact {
                    self.error("that is this contact: give another contact's id");
                    return Vec::new();
                }
                self.pending_merge = Some(PendingMerge { reason });
                ContactOp::MergePlan { other, keep_other }
            }
            Action::Unmerge(arg) => {
                let merge = match arg.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                    None => None,
                    Some(a) => match a.trim_start_matches('#').parse::<i64>() {
                        Ok(n) => Some(n),
                        Err(_) => {
                            self.error(format!("'{a}' is not a merge id (:merges lists them)"));
                            return Vec::new();
                        }
                    },
                };
                self.info("taking the merge back...");
                ContactOp::Unmerge { merge }
            }
            Action::Merges => {
                let now = self.now;
                return self.open_sheet(Box::new(MergesView {
                    contact,
                    now,
                    asked: Default::default(),
                }));
            }
            Action::IdentityRemove(Some((kind, value))) => {
                ContactOp::IdentityRemove { kind, value }
            }
            Action::IdentityMove(Some((kind, value, to))) => {
                ContactOp::IdentityMove { kind, value, to }
            }
            _ => return Vec::new(),
        };
        vec![Effect::Request(Request::Contact { contact, op })]
    }

    /// A [`Response::Contact`] or [`Response::Duplicates`] that no sheet took.
    pub(crate) fn contact_answer(&mut self, answer: ContactAnswer) -> Vec<Effect> {
        let mut fx = Vec::new();
        match answer {
            ContactAnswer::Plan(plan) => {
                let reason = self.pending_merge.take().unwrap_or_default().reason;
                let question = merge_question(&plan);
                self.ask(
                    question,
                    Request::Contact {
                        contact: plan.survivor.id,
                        op: ContactOp::Merge {
                            other: plan.absorbed.id,
                            keep_other: false,
                            reason,
                        },
                    },
                );
                return fx;
            }
            ContactAnswer::Merged {
                merge,
                survivor,
                absorbed,
            } => self.info(format!(
                "contact #{absorbed} merged into #{survivor} (merge #{merge}; :unmerge {merge} takes it back)"
            )),
            ContactAnswer::Unmerged(u) => self.info(unmerged_line(&u)),
            ContactAnswer::Done(line) => self.info(esc(&line)),
            ContactAnswer::Merges(_) => {}
        }
        // The duplicates list changes with every merge or dismissal.
        if let Some(sheet) = self.sheet_mut()
            && sheet.source.name() == DUPLICATES
        {
            fx.push(Effect::Request(sheet.reload()));
        }
        fx.extend(self.refresh_all());
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContactRow, IdentityRow};

    #[test]
    fn the_merge_question_says_what_moves_and_escapes_names() {
        let row = |id: i64, name: &str| ContactRow {
            id: ContactId(id),
            name: name.into(),
            vip: false,
            created_at: 0,
            last_seen: 0,
            last_channel: None,
            stage: None,
            lead_score: 0,
        };
        let plan = MergePlan {
            survivor: row(12, "Ann Lee"),
            absorbed: row(42, "Ann\u{1b}[31m L."),
            identities: vec![IdentityRow {
                kind: crate::model::IdentityKind::Telegram,
                value: "555".into(),
                source: "telegram".into(),
                created_at: 0,
                unreachable: None,
            }],
            conversations: 3,
            messages: 1,
            tags: vec!["billing".into()],
            joins_open: true,
        };
        let q = merge_question(&plan);
        assert!(q.contains("merge #42"), "{q}");
        assert!(
            q.contains("telegram 555; 3 conversations; 1 message; tags billing"),
            "{q}"
        );
        assert!(
            q.contains("into #12 Ann Lee (open conversations become one)?"),
            "{q}"
        );
        assert!(!q.contains('\u{1b}'), "escaped: {q:?}");
    }
}
