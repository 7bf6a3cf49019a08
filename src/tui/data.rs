//! The TUI's requests to the store and their answers. The UI task never touches the store: it
//! sends a [`Request`]; a data thread (or, in tests, the harness, inline) runs [`handle`] and the
//! [`Response`] comes back as an event. Requests carry a sequence number so stale answers
//! (the user has moved on) can be told apart.

use crate::model::{Channel, ContactId, ConversationId, MessageId, Status, now_millis};
use crate::store::{
    ContactProfile, Counts, MessageRow, QueueAnchor, QueueFilter, QueueRow, SearchQuery, Store,
    TimelineCursor,
};
use std::collections::{HashMap, HashSet};

/// What a search view knows besides its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchResults {
    /// Per conversation: its newest matching message (None: the contact's name matched) and
    /// the snippet, the match marked «like this».
    pub first: HashMap<ConversationId, (Option<MessageId>, String)>,
    /// Every matching message read.
    pub matches: HashSet<MessageId>,
    /// More matches exist past the ones read.
    pub more: bool,
    /// How many matching messages were asked for.
    pub limit: usize,
}

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
    /// A workflow verb (assign, status, tag, ...), run by [`crate::actions::apply`] as the CLI
    /// runs it.
    Verb(crate::actions::Verb),
    Reply {
        channel: Channel,
        body: String,
        /// Then make an open conversation pending (`pending_after_reply`).
        then_pending: bool,
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
        /// A search view's snippets, matches and whether more exist.
        search: Option<Box<SearchResults>>,
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
        /// The conversation the composer was opened on.
        opened_for: ConversationId,
        /// Where the draft goes: `opened_for`, or the contact's open conversation when
        /// `opened_for` is a resolved one (the notice says so).
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
    /// A write that needs a yes first (it would merge two contacts): the question, and the
    /// request to send when the answer is yes.
    Confirm {
        question: String,
        request: Box<Request>,
    },
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
            let mut search = None;
            let (rows, total) = match &view {
                QueueView::Filter(f) => {
                    let total = match placement {
                        Placement::Replace { .. } => Some(store.queue_count(f)?),
                        _ => None,
                    };
                    (store.queue_page(f, anchor, limit)?, total)
                }
                QueueView::Search(q) => {
                    // `limit` is how many matching messages to read (the view grows it).
                    let query = SearchQuery::parse(q).map_err(anyhow::Error::msg)?;
                    let found = store.search_conversation_hits(&query, limit)?;
                    let mut results = SearchResults {
                        matches: found.messages.into_iter().collect(),
                        more: found.more,
                        limit,
                        ..Default::default()
                    };
                    let mut rows = Vec::with_capacity(found.rows.len());
                    for (row, hit) in found.rows {
                        results.first.insert(row.id, (hit.message_id, hit.snippet));
                        rows.push(row);
                    }
                    search = Some(Box::new(results));
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
                search,
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
            let opened_for = conversation;
            // A reply on a resolved conversation (a search result, say) while the customer
            // has an open one goes to the open one: never an answer into the old thread while
            // the customer waits in the new.
            let mut moved = None;
            let conversation = match store.active_conversation(contact)? {
                Some(active)
                    if kind == "reply"
                        && active != conversation
                        && store.conversation(conversation)?.status == Status::Resolved =>
                {
                    moved = Some(format!(
                        "replying in #{active}, the conversation the customer is in now (#{conversation} is resolved)"
                    ));
                    active
                }
                _ => conversation,
            };
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
            let notice = match (moved, notice) {
                (Some(m), Some(n)) => Some(format!("{m}; {n}")),
                (m, n) => m.or(n),
            };
            Response::Compose {
                opened_for,
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
                Write::Verb(verb) => {
                    match crate::actions::apply(store, conversation, verb, a, now)? {
                        crate::actions::Outcome::Done(msg) => msg,
                        crate::actions::Outcome::Confirm { question, verb } => {
                            return Ok(Response::Confirm {
                                question,
                                request: Box::new(Request::Write {
                                    conversation,
                                    contact,
                                    agent,
                                    write: Write::Verb(verb),
                                }),
                            });
                        }
                    }
                }
                Write::Reply {
                    channel,
                    body,
                    then_pending,
                } => {
                    let id = store.queue_reply(conversation, channel, a, &body, now)?;
                    if crate::actions::after_reply(store, conversation, then_pending, a, now)? {
                        format!("reply #{id} queued via {channel}; #{conversation} pending")
                    } else {
                        format!("reply #{id} queued via {channel}")
                    }
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
