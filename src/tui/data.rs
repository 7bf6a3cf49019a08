//! The TUI's requests to the store and their answers. The UI task never touches the store: it
//! sends a [`Request`]; a data thread (or, in tests, the harness, inline) runs [`handle`] and the
//! [`Response`] comes back as an event. Requests carry a sequence number so stale answers
//! (the user has moved on) can be told apart.

use crate::model::{
    Channel, ContactId, ConversationId, IdentityKind, Millis, Priority, Status, now_millis,
};
use crate::store::{
    ContactProfile, Counts, MessageRow, QueueAnchor, QueueFilter, QueueRow, SearchQuery, Store,
    TimelineCursor,
};

/// What the queue pane shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueView {
    Filter(QueueFilter),
    Search(String),
}

impl QueueView {
    pub fn label(&self) -> String {
        match self {
            QueueView::Filter(f) => f.label(),
            QueueView::Search(q) => format!("search: {q}"),
        }
    }
}

/// How a queue page combines with the rows already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Replace the window; `offset` is the absolute index of the first row.
    Replace { offset: usize },
    /// Add after the last row.
    Append,
    /// Add before the first row.
    Prepend,
}

/// A write the agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Assign(Option<String>),
    Status(Status, Option<Millis>),
    Priority(Priority),
    Tag(String),
    Untag(String),
    Vip(bool),
    Retry,
    IdentityAdd(IdentityKind, String),
    /// Link (or dismiss) an identity the contact claimed; `value` when there are several.
    Claim {
        link: bool,
        value: Option<String>,
    },
    Reply {
        channel: Channel,
        body: String,
    },
    Note {
        body: String,
    },
    SaveDraft {
        kind: String,
        channel: Option<Channel>,
        body: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Queue {
        seq: u64,
        view: QueueView,
        anchor: QueueAnchor,
        limit: usize,
        placement: Placement,
        /// Keep the selection on this conversation if it is in the answer.
        keep: Option<ConversationId>,
    },
    Timeline {
        seq: u64,
        contact: ContactId,
        before: Option<TimelineCursor>,
        limit: usize,
    },
    Profile {
        seq: u64,
        contact: ContactId,
        conversation: ConversationId,
    },
    Counts {
        agent: String,
    },
    /// Open the composer: load the saved draft and where a reply would go.
    Compose {
        conversation: ConversationId,
        contact: ContactId,
        agent: String,
        kind: String,
        channel: Option<Channel>,
    },
    Write {
        conversation: ConversationId,
        contact: ContactId,
        agent: String,
        write: Write,
    },
}

impl Request {
    /// Requests in the same slot supersede each other: only the newest is worth running.
    pub fn slot(&self) -> Option<(&'static str, i64)> {
        match self {
            Request::Queue { .. } => None, // pages build on each other; never drop one
            Request::Timeline { before: None, .. } => Some(("timeline", 0)),
            Request::Timeline { .. } => None,
            Request::Profile { .. } => Some(("profile", 0)),
            Request::Counts { .. } => Some(("counts", 0)),
            Request::Write {
                write: Write::SaveDraft { .. },
                conversation,
                ..
            } => Some(("draft", conversation.0)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Queue {
        seq: u64,
        view: QueueView,
        rows: Vec<QueueRow>,
        total: Option<i64>,
        placement: Placement,
        anchor: QueueAnchor,
        limit: usize,
        keep: Option<ConversationId>,
    },
    Timeline {
        seq: u64,
        contact: ContactId,
        rows: Vec<MessageRow>,
        older: bool,
        before: Option<TimelineCursor>,
    },
    Profile {
        seq: u64,
        profile: Box<ContactProfile>,
        tags: Vec<String>,
        conversation: ConversationId,
    },
    Counts {
        counts: Counts,
        outbox: (i64, i64),
    },
    Compose {
        conversation: ConversationId,
        kind: String,
        channel: Option<Channel>,
        recipient: Option<String>,
        text: String,
        /// Shown when the composer opens: a channel that cannot reach the customer.
        notice: Option<String>,
    },
    /// A write went through; the text is for the status line.
    Done(String),
    Error(String),
}

/// Run one request against the store. Never panics; errors become `Response::Error`.
pub fn handle(store: &mut Store, req: Request) -> Response {
    match run(store, req) {
        Ok(r) => r,
        Err(e) => Response::Error(e.to_string()),
    }
}

fn run(store: &mut Store, req: Request) -> anyhow::Result<Response> {
    Ok(match req {
        Request::Queue {
            seq,
            view,
            anchor,
            limit,
            placement,
            keep,
        } => {
            let (rows, total) = match &view {
                QueueView::Filter(f) => {
                    let total = match placement {
                        Placement::Replace { .. } => Some(store.queue_count(f)?),
                        _ => None,
                    };
                    (store.queue_page(f, anchor, limit)?, total)
                }
                QueueView::Search(q) => {
                    let query = SearchQuery::parse(q).map_err(anyhow::Error::msg)?;
                    let rows = store.search_conversations(&query, 200)?;
                    let n = rows.len() as i64;
                    (rows, Some(n))
                }
            };
            Response::Queue {
                seq,
                view,
                rows,
                total,
                placement,
                anchor,
                limit,
                keep,
            }
        }
        Request::Timeline {
            seq,
            contact,
            before,
            limit,
        } => {
            let mut rows = store.timeline(contact, before, limit + 1)?;
            let older = rows.len() > limit;
            if older {
                rows.remove(0);
            }
            Response::Timeline {
                seq,
                contact,
                rows,
                older,
                before,
            }
        }
        Request::Profile {
            seq,
            contact,
            conversation,
        } => Response::Profile {
            seq,
            profile: Box::new(store.profile(contact)?),
            tags: store.conversation_tags(conversation)?,
            conversation,
        },
        Request::Counts { agent } => Response::Counts {
            counts: store.counts(&agent)?,
            outbox: store.outbox_counts()?,
        },
        Request::Compose {
            conversation,
            contact,
            agent,
            kind,
            channel,
        } => {
            let draft = store.draft(conversation, &agent)?;
            let (kind, channel, text) = match draft {
                // A saved draft wins unless the agent asked for a specific other kind/channel.
                Some((k, c, t)) if k == kind && (channel.is_none() || channel == c) => (k, c, t),
                _ => (kind, channel, String::new()),
            };
            let channel = if kind == "reply" {
                Some(match channel {
                    Some(c) => c,
                    None => store.reply_channel(conversation)?,
                })
            } else {
                channel
            };
            let recipient = match channel {
                Some(c) if kind == "reply" => store.recipient(contact, c)?,
                _ => None,
            };
            let notice = match channel {
                Some(c) if kind == "reply" => match store.unreachable_reason(contact, c)? {
                    Some(r) => Some(format!(
                        "{c} cannot reach this customer: {r} (R for another channel)"
                    )),
                    None => {
                        let mut other = None;
                        for o in Channel::ALL.iter().filter(|o| **o != c) {
                            if let Some(r) = store.unreachable_reason(contact, *o)? {
                                other = Some(format!(
                                    "{o} cannot reach this customer ({r}): replying via {c}"
                                ));
                                break;
                            }
                        }
                        other
                    }
                },
                _ => None,
            };
            Response::Compose {
                conversation,
                kind,
                channel,
                recipient,
                text,
                notice,
            }
        }
        Request::Write {
            conversation,
            contact,
            agent,
            write,
        } => {
            let now = now_millis();
            let a = agent.as_str();
            let msg = match write {
                Write::Assign(who) => {
                    store.assign(conversation, who.as_deref(), a, now)?;
                    match who {
                        Some(w) => format!("#{conversation} assigned to {w}"),
                        None => format!("#{conversation} unassigned"),
                    }
                }
                Write::Status(s, until) => {
                    store.set_status(conversation, s, until, a, now)?;
                    match (s, until) {
                        (Status::Snoozed, Some(t)) => {
                            format!(
                                "#{conversation} snoozed until {}",
                                crate::tui::time::full(t)
                            )
                        }
                        _ => format!("#{conversation} {s}"),
                    }
                }
                Write::Priority(p) => {
                    store.set_priority(conversation, p, a, now)?;
                    format!("#{conversation} priority {p}")
                }
                Write::Tag(t) => {
                    store.tag(conversation, &t, false, a, now)?;
                    format!("#{conversation} tagged {t}")
                }
                Write::Untag(t) => {
                    store.tag(conversation, &t, true, a, now)?;
                    format!("#{conversation} untagged {t}")
                }
                Write::Vip(v) => {
                    store.set_vip(contact, v, a, now)?;
                    if v {
                        "marked VIP".into()
                    } else {
                        "no longer VIP".into()
                    }
                }
                Write::Retry => {
                    let m = store
                        .last_failed(conversation)?
                        .ok_or_else(|| anyhow::anyhow!("no failed message in #{conversation}"))?;
                    store.retry(m, a, now)?;
                    format!("message #{m} queued again")
                }
                Write::IdentityAdd(kind, raw) => {
                    let v = crate::identity::normalize(kind, &raw)?;
                    store.add_identity(contact, kind, &v, a, now)?;
                    format!("{kind} {v} added to the contact")
                }
                Write::Claim { link: true, value } => {
                    let (person, claim) = store.link_claim(contact, value.as_deref(), a, now)?;
                    if person == contact {
                        format!("{} {} linked to the contact", claim.kind, claim.value)
                    } else {
                        format!(
                            "{} {} linked: the visitor joined contact #{person}",
                            claim.kind, claim.value
                        )
                    }
                }
                Write::Claim { link: false, value } => {
                    let claim = store.dismiss_claim(contact, value.as_deref(), a, now)?;
                    format!("claim {} {} dismissed", claim.kind, claim.value)
                }
                Write::Reply { channel, body } => {
                    let id = store.queue_reply(conversation, channel, a, &body, now)?;
                    format!("reply #{id} queued via {channel}")
                }
                Write::Note { body } => {
                    store.add_note(conversation, a, &body, now)?;
                    "note added".into()
                }
                Write::SaveDraft {
                    kind,
                    channel,
                    body,
                } => {
                    store.save_draft(conversation, a, &kind, channel, &body, now)?;
                    return Ok(Response::Done(String::new()));
                }
            };
            Response::Done(msg)
        }
    })
}
