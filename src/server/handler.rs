//! Answers requests: what each [`Request`] reads or writes in the store, for one identified
//! agent. Authorization runs first ([`super::authz`]); the store connection carries the agent's
//! scope, so what is out of their teams is not found rather than filtered here.

use super::Identity;
use crate::api::{
    ContactCard, Placement, Post, QueueView, Request, Response, SearchResults, Seen, Stale,
    StatusReport, Write, Written,
};
use crate::model::{Channel, ConversationId, Status, now_millis};
use crate::store::{QueueAnchor, QueueFilter, QueueRow, SearchQuery, Store};

/// Run one request for `who` against the store. Never panics; errors become
/// `Response::Error`, refusals `Response::Refused` (and an audit event).
pub fn handle(store: &mut Store, who: &Identity, req: Request) -> Response {
    // The second wall: the connection answers only what this agent may see.
    if let Err(e) = store.set_scope(who.scope()) {
        return Response::Error(format!("the server cannot set up your view: {e}"));
    }
    if let Err(reason) = super::authz::check(who, &req) {
        return refuse(store, who, &req, reason);
    }
    let guarded = guarded_conversation(&req);
    let name = req.name();
    match run(store, who, req) {
        Ok(r) => r,
        Err(e) => match (e.downcast::<crate::store::StoreError>(), guarded) {
            (Ok(crate::store::StoreError::Stale(changes)), Some(conversation)) => {
                stale(store, who, name, conversation, changes)
            }
            (Ok(e), _) => Response::Error(e.to_string()),
            (Err(e), _) => Response::Error(e.to_string()),
        },
    }
}

/// The conversation of a reply or note that carries what its author saw.
fn guarded_conversation(req: &Request) -> Option<crate::model::ConversationId> {
    match req {
        Request::Write {
            conversation,
            write:
                Write::Reply { .. }
                | Write::Note { .. }
                | Write::Template { .. }
                | Write::ScheduleReply { .. },
            ..
        }
        | Request::Post {
            conversation,
            post:
                Post::Reply { .. }
                | Post::Note { .. }
                | Post::Template { .. }
                | Post::ScheduleReply { .. },
        } => Some(*conversation),
        _ => None,
    }
}

/// The stale-send guard stopped a reply or note: the audit log says so (with what changed),
/// the client gets the changes to show.
fn stale(
    store: &mut Store,
    who: &Identity,
    request: &str,
    conversation: crate::model::ConversationId,
    changes: Vec<crate::store::Change>,
) -> Response {
    let latest = changes
        .iter()
        .map(|c| c.event)
        .max()
        .unwrap_or(crate::model::EventId(0));
    let reason = format!(
        "the conversation changed since {} looked ({}); nothing was sent",
        who.agent,
        changes
            .iter()
            .map(|c| c.what.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    tracing::info!(agent = %who.agent, request, %conversation, "stale send stopped");
    if let Err(e) = store.audit_refused(
        &who.agent,
        Some(conversation),
        request,
        &crate::sanitize::for_terminal_line(&reason),
        now_millis(),
    ) {
        tracing::warn!("cannot record a stopped send in the audit log: {e}");
    }
    Response::Stale(Box::new(Stale {
        conversation,
        changes,
        latest,
    }))
}

/// `[server] only_assignee_replies`: the reason a reply is refused (the conversation is
/// assigned to someone else and `who` is not a supervisor), if it is.
pub fn only_assignee(store: &mut Store, who: &Identity, req: &Request) -> Option<String> {
    let conversation = match req {
        Request::Write {
            conversation,
            write: Write::Reply { .. } | Write::Template { .. } | Write::ScheduleReply { .. },
            ..
        }
        | Request::Post {
            conversation,
            post: Post::Reply { .. } | Post::Template { .. } | Post::ScheduleReply { .. },
        } => *conversation,
        _ => return None,
    };
    if who.role >= crate::api::Role::Supervisor {
        return None;
    }
    let row = store.conversation(conversation).ok()?;
    match row.assignee {
        Some(a) if a != who.agent => Some(format!(
            "#{conversation} is assigned to {a}: in this workspace only the assignee replies (add a note, or ask {a} or a supervisor to reassign it)"
        )),
        _ => None,
    }
}

/// The guard's reference point: None checks nothing.
fn seen_event(seen: Seen) -> Option<crate::model::EventId> {
    match seen {
        Seen::Upto(e) => Some(e),
        Seen::Unknown | Seen::Force => None,
    }
}

/// What the composer says about the channel's rules when it opens: how long WhatsApp's
/// 24-hour window stays open, that an Instagram reply past 24 hours goes as a human agent's,
/// or why nothing can go (a closed window, an opt-out, a call log).
fn channel_notice(
    store: &Store,
    contact: crate::model::ContactId,
    channel: Channel,
) -> anyhow::Result<Option<String>> {
    use crate::store::hooks::{Window, span_text};
    let now = now_millis();
    if let Some(why) = store.reply_refusal(contact, channel, false, now)? {
        return Ok(Some(why));
    }
    Ok(match store.reply_window(contact, channel, now)? {
        Window::Open { closes_at } => Some(format!(
            "{}'s 24-hour window closes in {}",
            channel.label(),
            span_text(closes_at - now)
        )),
        Window::HumanAgent { closes_at } => Some(format!(
            "past {}'s 24-hour window: this reply goes as a human agent's (HUMAN_AGENT), \
             possible for {} more",
            channel.label(),
            span_text(closes_at - now)
        )),
        Window::Unlimited | Window::Closed { .. } => None,
    })
}

/// A template reply: what the template is, from the server's config (`[[whatsapp.templates]]`).
/// Left None when no template has the name (the write then says so).
pub fn resolve_template(templates: &[crate::template::Template], req: &mut Request) {
    if let Request::Write {
        write: Write::Template { name, resolved, .. },
        ..
    }
    | Request::Post {
        post: Post::Template { name, resolved, .. },
        ..
    } = req
    {
        *resolved = templates
            .iter()
            .find(|t| t.name == *name)
            .cloned()
            .map(Box::new);
    }
}

/// Record a refusal in the audit log and answer it.
pub fn refuse(store: &mut Store, who: &Identity, req: &Request, reason: String) -> Response {
    let conversation = match req {
        Request::Write { conversation, .. }
        | Request::Compose { conversation, .. }
        | Request::Post { conversation, .. } => Some(*conversation),
        _ => None,
    };
    tracing::info!(agent = %who.agent, user = %who.user, request = req.name(), %reason, "refused");
    if let Err(e) = store.audit_refused(&who.agent, conversation, req.name(), &reason, now_millis())
    {
        tracing::warn!("cannot record a refusal in the audit log: {e}");
    }
    Response::Refused(reason)
}

fn run(store: &mut Store, who: &Identity, req: Request) -> anyhow::Result<Response> {
    let agent = who.agent.clone();
    Ok(match req {
        Request::Queue {
            seq,
            view,
            anchor,
            limit,
            placement,
            keep,
            order,
        } => {
            let mut search = None;
            let (rows, total) = match &view {
                QueueView::Filter(f) => {
                    let total = match placement {
                        Placement::Replace { .. } => Some(store.queue_count(f)?),
                        _ => None,
                    };
                    (store.queue_page_ordered(f, order, anchor, limit)?, total)
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
        Request::Counts => Response::Counts {
            counts: store.counts(&agent)?,
            outbox: store.outbox_counts()?,
        },
        Request::Compose {
            conversation,
            contact,
            kind,
            channel,
        } => {
            // What the author has seen when they start to write: the guard's reference.
            let seen = store.last_event_id()?;
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
            // The channel's own rules: a window closing or closed, an opt-out.
            let rules = match channel {
                Some(c) if kind == "reply" => channel_notice(store, contact, c)?,
                _ => None,
            };
            let notice = [moved, notice, rules]
                .into_iter()
                .flatten()
                .reduce(|a, b| format!("{a}; {b}"));
            Response::Compose {
                opened_for,
                conversation,
                kind,
                channel,
                recipient,
                text,
                notice,
                seen,
            }
        }
        Request::Write {
            conversation,
            contact,
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
                    seen,
                } => {
                    let id = store.queue_reply_guarded(
                        conversation,
                        channel,
                        a,
                        &body,
                        now,
                        seen_event(seen),
                    )?;
                    if crate::actions::after_reply(store, conversation, then_pending, a, now)? {
                        format!("reply #{id} queued via {channel}; #{conversation} pending")
                    } else {
                        format!("reply #{id} queued via {channel}")
                    }
                }
                Write::Note { body, seen } => {
                    store.add_note_guarded(conversation, a, &body, now, seen_event(seen))?;
                    "note added".into()
                }
                Write::Template {
                    name,
                    params,
                    seen,
                    resolved,
                } => {
                    let (id, template) =
                        queue_template(store, conversation, a, &name, resolved, &params, seen)?;
                    format!("template '{template}' #{id} queued via whatsapp")
                }
                Write::SaveDraft {
                    kind,
                    channel,
                    body,
                } => {
                    store.save_draft(conversation, a, &kind, channel, &body, now)?;
                    return Ok(Response::Done(String::new()));
                }
                Write::ScheduleReply {
                    channel,
                    body,
                    send_at,
                    seen,
                } => {
                    let id = store.schedule_reply(
                        conversation,
                        channel,
                        a,
                        &body,
                        now,
                        send_at,
                        seen_event(seen),
                    )?;
                    format!(
                        "reply #{id} scheduled via {channel} for {} (:cancel-send to cancel)",
                        crate::tui::time::full(send_at)
                    )
                }
                Write::CancelSend { message } => {
                    let id = match message {
                        Some(m) => m,
                        None => store.last_scheduled(conversation)?.ok_or_else(|| {
                            anyhow::anyhow!("#{conversation} has no scheduled reply to cancel")
                        })?,
                    };
                    store.cancel_scheduled(id, a, now)?;
                    format!("scheduled reply #{id} cancelled")
                }
                Write::Task { mut task } => {
                    task.conversation = Some(conversation);
                    if task.assignee.is_none() {
                        task.assignee = Some(agent.clone());
                    }
                    let t = store.create_task(&task, a, now)?;
                    format!("task #{} ({}) {}", t.id, t.kind, due_text(t.due_at))
                }
            };
            Response::Done(msg)
        }
        Request::Conversation { id } => {
            let as_of = store.last_event_id()?;
            let row = store.conversation(id)?;
            Response::Conversation {
                as_of,
                tags: store.conversation_tags(id)?,
                profile: Box::new(store.profile(row.contact_id)?),
                row,
            }
        }
        Request::List {
            filter,
            tag,
            assignee,
            limit,
            with_tags,
        } => {
            let limit = limit.min(MAX_LIST);
            let (label, rows, total) = if tag.is_some() || assignee.is_some() {
                let q = narrowed(&filter, tag.as_deref(), assignee.as_deref(), &agent)?;
                let mut label = filter.label();
                if let Some(t) = &q.tags.first() {
                    label.push_str(&format!(", tag {t}"));
                }
                if let (Some(a), Some(_)) = (&q.assignee, &assignee) {
                    label.push_str(&format!(", assignee {}", a.as_deref().unwrap_or("none")));
                }
                let (rows, total) = store.filtered_conversations(&q, limit)?;
                (label, rows, total)
            } else {
                let total = store.queue_count(&filter)?;
                let mut rows: Vec<QueueRow> = Vec::new();
                while rows.len() < limit {
                    let anchor = rows
                        .last()
                        .map(|r| QueueAnchor::After(r.cursor()))
                        .unwrap_or(QueueAnchor::Top);
                    let want = (limit - rows.len()).min(LIST_PAGE);
                    let page = store.queue_page(&filter, anchor, want)?;
                    let n = page.len();
                    rows.extend(page);
                    if n < want {
                        break;
                    }
                }
                (filter.label(), rows, total)
            };
            let tags = if with_tags {
                let mut all = Vec::with_capacity(rows.len());
                for r in &rows {
                    all.push(store.conversation_tags(r.id)?);
                }
                Some(all)
            } else {
                None
            };
            Response::List {
                label,
                rows,
                tags,
                total,
            }
        }
        Request::Search { query, limit } => {
            let q = SearchQuery::parse_as(&query, Some(&agent)).map_err(anyhow::Error::msg)?;
            Response::Hits(store.search(&q, limit.min(MAX_LIST))?)
        }
        Request::Contacts { after, limit } => {
            Response::Contacts(store.contacts_page(after, limit.min(MAX_LIST))?)
        }
        Request::Status => {
            let counts = store.counts(&agent)?;
            let (outbox_waiting, outbox_failed) = store.outbox_counts()?;
            Response::Status(Box::new(StatusReport {
                agent: agent.clone(),
                role: who.role,
                teams: who.teams.clone(),
                counts,
                resolved: store.queue_count(&QueueFilter::Status(Status::Resolved))?,
                total: store.queue_count(&QueueFilter::All)?,
                outbox_waiting,
                outbox_failed,
                schema_version: store.schema_version()?,
                last_event_id: store.last_event_id()?,
                worker: String::new(),
                data_dir: String::new(),
                server_pid: std::process::id(),
                store: store
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                demo: crate::demo::is_demo_workspace(store)?,
                overdue_tasks: store.overdue_tasks(now_millis())?,
                sla: store.sla_counts(crate::model::now_millis())?,
            }))
        }
        Request::Post { conversation, post } => {
            Response::Written(Box::new(post_write(store, &agent, conversation, post)?))
        }
        Request::ContactCards { after, limit } => {
            let mut cards = Vec::new();
            for contact in store.contacts_page(after, limit.min(MAX_LIST))? {
                cards.push(ContactCard {
                    identities: store.identities(contact.id)?,
                    contact,
                });
            }
            Response::ContactCards(cards)
        }
        Request::ContactConversations { contact, limit } => {
            let rows = store.contact_conversations(contact, limit.min(MAX_LIST))?;
            let total = rows.len() as i64;
            Response::List {
                label: format!("contact #{contact}"),
                rows,
                tags: None,
                total,
            }
        }
        Request::Audit {
            seq,
            filter,
            at,
            limit,
        } => Response::Audit {
            seq,
            page: store.audit_page(&filter, at, limit)?,
        },
        Request::Notifications {
            seq,
            page,
            limit,
            unread_only,
        } => super::notify::page(store, &agent, seq, page, limit, unread_only)?,
        Request::MarkNotificationsRead { ids, all } => {
            super::notify::mark_read(store, &agent, &ids, all)?
        }
        // Fetching files is network work: the session runs it ([`fetch_attachments`]).
        Request::Attachments { .. } => {
            anyhow::bail!("attachments are fetched by the server's session, not here")
        }
        // Presence is the session's (it knows the connection); without one there is nobody
        // to tell.
        Request::Presence { .. } => Response::Ack,
        Request::Who => Response::Online(Vec::new()),
        Request::Report(q) => Response::Report(Box::new(store.report(&q, &report_scope(who))?)),
        // Answered by the session, which holds the rules (see server::rules).
        Request::Rules | Request::RulesTest { .. } => {
            Response::Error("the rules are answered by the server's session".into())
        }
        // Needs the workspace's campaigns: answered by the session (server::campaign).
        Request::Campaign(_) => {
            Response::Error("campaigns are answered by the server's session".into())
        }
        Request::RenderCanned {
            conversation,
            name,
            channel,
            resolved,
        } => {
            let Some(t) = resolved else {
                return Ok(Response::Error(format!(
                    "no canned reply '{}' in the workspace's templates/ folder (Tab lists them)",
                    crate::sanitize::for_terminal_line(&name)
                )));
            };
            let channel = match channel {
                Some(c) => Some(c),
                None => store.reply_channel(conversation).ok(),
            };
            let display = if who.display.trim().is_empty() {
                who.agent.as_str()
            } else {
                who.display.as_str()
            };
            let vars = crate::canned::Vars::from_store(store, conversation, display, channel)?;
            let r = crate::canned::render(&t, channel, &vars);
            Response::Canned {
                conversation,
                name,
                channel,
                text: r.text,
                missing: r.missing,
            }
        }
        Request::Suggest {
            conversation,
            command,
            timeout_ms,
        } => {
            let Some(command) = command else {
                return Ok(Response::Error(
                    crate::canned::suggest::SuggestError::NotConfigured.to_string(),
                ));
            };
            let input = crate::canned::suggest::input(store, conversation, &who.agent)?;
            let timeout = std::time::Duration::from_millis(match timeout_ms {
                t if t > 0 => t.unsigned_abs(),
                _ => crate::config::DEFAULT_SUGGEST_TIMEOUT_MS.unsigned_abs(),
            });
            match crate::canned::suggest::run(&command, input.to_string().as_bytes(), timeout) {
                Ok(text) => Response::Suggestion { conversation, text },
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::Bulk {
            conversations,
            verb,
        } => {
            let report =
                crate::actions::apply_bulk(store, &conversations, verb, &agent, now_millis())?;
            tracing::info!(agent = %agent, verb = %report.verb, asked = report.asked,
                done = report.done.len(), refused = report.refused.len(), "bulk");
            Response::Bulk(Box::new(report))
        }
        Request::Matching {
            view,
            pattern,
            invert,
            limit,
        } => {
            let limit = limit.min(MAX_LIST);
            let (ids, total) = matching(store, &agent, &view, &pattern, invert, limit)?;
            Response::Matching {
                pattern,
                invert,
                ids,
                total,
            }
        }
        Request::Undo => Response::Undone(Box::new(store.undo_last(&agent, now_millis())?)),
        Request::Tasks {
            seq,
            view,
            at,
            limit,
        } => {
            use crate::api::TaskView;
            use crate::store::TaskWindow;
            let window = match &view {
                TaskView::Mine => TaskWindow::Mine(agent.clone()),
                TaskView::Overdue => TaskWindow::Overdue(now_millis()),
                TaskView::Team(t) => TaskWindow::Team(t.clone()),
                TaskView::All => TaskWindow::Open,
                TaskView::Contact(c) => TaskWindow::Contact(*c),
                TaskView::Conversation(c) => TaskWindow::Conversation(*c),
            };
            let (rows, more) = store.tasks_page(&window, at, limit)?;
            Response::Tasks {
                seq,
                view,
                at,
                rows,
                more,
            }
        }
        Request::TaskCreate { mut task } => {
            if task.assignee.is_none() {
                task.assignee = Some(agent.clone());
            }
            Response::Task(Box::new(store.create_task(&task, &agent, now_millis())?))
        }
        Request::TaskClose { id, end } => {
            Response::Task(Box::new(store.close_task(id, end, &agent, now_millis())?))
        }
        // Answered with the server's webhook endpoints (session.rs, `webhooks::answer`),
        // after `authorize`.
        Request::WebhooksStatus | Request::WebhookTest { .. } | Request::WebhookRetry { .. } => {
            Response::Error("webhooks are answered by the workspace server".into())
        }
        Request::Contact { contact, op } => {
            Response::Contact(contact_op(store, &agent, contact, op)?)
        }
        Request::Duplicates { limit } => {
            Response::Duplicates(store.duplicates(limit.min(MAX_LIST))?)
        }
        Request::Consent { contact } => {
            Response::Consent(Box::new(store.contact_consent(contact)?))
        }
        Request::ConsentSet {
            contact,
            purpose,
            opted_out,
            channel,
            note,
        } => {
            let changed = store.record_consent(
                &crate::store::consent::Change {
                    contact,
                    purpose,
                    opted_out,
                    channel,
                    identity: None,
                    source: crate::model::ConsentSource::Agent,
                    detail: &note,
                },
                &agent,
                now_millis(),
            )?;
            let what = match purpose {
                crate::model::Purpose::Marketing => "marketing",
                crate::model::Purpose::Transactional => "all messages",
            };
            let state = if opted_out {
                "opted out of"
            } else {
                "opted in to"
            };
            Response::Done(if changed {
                format!("contact #{contact} {state} {what}")
            } else {
                format!("contact #{contact} was already {state} {what}")
            })
        }
        Request::ContactExport { contact } => {
            Response::Export(Box::new(store.contact_export(contact, now_millis())?))
        }
        Request::ContactForget { contact, confirm } => {
            if confirm != contact {
                anyhow::bail!(
                    "forgetting #{contact} needs its id typed again (got #{confirm}): nothing erased"
                );
            }
            let n = store.forget_contact(contact, &agent, now_millis())?;
            Response::Done(format!(
                "contact #{contact} forgotten: identities deleted, {n} messages blanked; report counts kept"
            ))
        }
        Request::Pipeline {
            seq,
            stage,
            after,
            limit,
        } => Response::Pipeline {
            seq,
            pipeline: Box::new(store.pipeline(stage.as_deref(), after, limit.min(500))?),
        },
        Request::ContactEdit { contact, verb } => Response::Done(crate::actions::apply_contact(
            store,
            contact,
            verb,
            &agent,
            now_millis(),
        )?),
    })
}

/// One [`Request::Contact`]: merges, unmerges, identities, duplicates.
fn contact_op(
    store: &mut Store,
    agent: &str,
    contact: crate::model::ContactId,
    op: crate::api::ContactOp,
) -> anyhow::Result<crate::api::ContactAnswer> {
    use crate::api::{ContactAnswer, ContactOp};
    let now = now_millis();
    let pair = |other, keep_other: bool| {
        if keep_other {
            (other, contact)
        } else {
            (contact, other)
        }
    };
    Ok(match op {
        ContactOp::MergePlan { other, keep_other } => {
            let (survivor, absorbed) = pair(other, keep_other);
            ContactAnswer::Plan(Box::new(store.merge_plan(survivor, absorbed)?))
        }
        ContactOp::Merge {
            other,
            keep_other,
            reason,
        } => {
            let (survivor, absorbed) = pair(other, keep_other);
            let reason = match reason.trim() {
                "" => format!("manual: merged by {agent}"),
                r => format!("manual: {r}"),
            };
            let merge = store.merge_contacts_by_hand(survivor, absorbed, &reason, agent, now)?;
            ContactAnswer::Merged {
                merge,
                survivor,
                absorbed,
            }
        }
        ContactOp::Unmerge { merge } => {
            let c = if merge.is_some() { None } else { Some(contact) };
            ContactAnswer::Unmerged(store.unmerge(merge, c, agent, now)?)
        }
        ContactOp::Merges => ContactAnswer::Merges(store.merges(contact, 100)?),
        ContactOp::IdentityRemove { kind, value } => {
            let v = crate::identity::normalize(kind, &value)?;
            store.remove_identity(contact, kind, &v, agent, now)?;
            ContactAnswer::Done(format!("{kind} {v} taken off contact #{contact}"))
        }
        ContactOp::IdentityMove { kind, value, to } => {
            let v = crate::identity::normalize(kind, &value)?;
            let from = store.move_identity(kind, &v, to, agent, now)?;
            ContactAnswer::Done(format!("{kind} {v} moved from contact #{from} to #{to}"))
        }
        ContactOp::DismissDuplicate { other } => {
            store.dismiss_duplicate(contact, other, agent, now)?;
            ContactAnswer::Done(format!(
                "#{contact} and #{other} will not be suggested again"
            ))
        }
    })
}

/// Set `who`'s scope and check their role for `req` (a refusal is audited). None: go ahead.
/// For requests answered outside [`handle`] (they need more than the store).
pub fn authorize(store: &mut Store, who: &Identity, req: &Request) -> Option<Response> {
    if let Err(e) = store.set_scope(who.scope()) {
        return Some(Response::Error(format!(
            "the server cannot set up your view: {e}"
        )));
    }
    match super::authz::check(who, req) {
        Ok(()) => None,
        Err(reason) => Some(refuse(store, who, req, reason)),
    }
}

/// A canned reply or a suggestion: the template (from the workspace's `templates/` folder)
/// and the suggest command (from the config), filled in before the request runs.
pub fn resolve_canned(
    library: &crate::canned::Library,
    suggest_command: Option<&str>,
    suggest_timeout_ms: i64,
    req: &mut Request,
) {
    match req {
        Request::RenderCanned { name, resolved, .. } => {
            *resolved = library.get(name).cloned().map(Box::new);
        }
        Request::Suggest {
            command,
            timeout_ms,
            ..
        } => {
            *command = suggest_command.map(str::to_string);
            *timeout_ms = suggest_timeout_ms;
        }
        _ => {}
    }
}

/// The most messages a `:g//` with words reads to find its conversations.
const MATCHING_HITS: usize = 1_000_000;

/// `:g/PATTERN/` (`invert`: `:v/PATTERN/`): the conversations of `view` the search `pattern`
/// matches (or does not), at most `limit`, and how many in all.
fn matching(
    store: &Store,
    me: &str,
    view: &QueueView,
    pattern: &str,
    invert: bool,
    limit: usize,
) -> anyhow::Result<(Vec<ConversationId>, usize)> {
    // The view as a query: a filter's status / assignee / team, or the search it is.
    let (base, base_text) = match view {
        QueueView::Filter(f) => (narrowed(f, None, None, me)?, String::new()),
        QueueView::Search(s) => (
            SearchQuery::parse_as(s, Some(me)).map_err(anyhow::Error::msg)?,
            s.clone(),
        ),
    };
    let within = |extra: &str| -> anyhow::Result<SearchQuery> {
        let text = format!("{base_text} {extra}");
        let mut q = match text.trim() {
            // `:g//CMD`: every conversation of the view.
            "" => SearchQuery::default(),
            t => SearchQuery::parse_as(t, Some(me)).map_err(anyhow::Error::msg)?,
        };
        let label = match view {
            QueueView::Filter(f) => f.label(),
            QueueView::Search(s) => s.clone(),
        };
        macro_rules! keep_view {
            ($field:ident, $key:literal) => {
                match (&q.$field, &base.$field) {
                    (Some(a), Some(b)) if a != b => anyhow::bail!(
                        "the pattern's {}: is outside the view ({label}): switch to a view that holds them first",
                        $key
                    ),
                    (None, Some(b)) => q.$field = Some(b.clone()),
                    _ => {}
                }
            };
        }
        keep_view!(status, "status");
        keep_view!(assignee, "assignee");
        keep_view!(team, "team");
        Ok(q)
    };
    let ids_of = |q: &SearchQuery| -> anyhow::Result<Vec<ConversationId>> {
        let words = q.fts.is_some()
            || q.from.is_some()
            || q.channel.is_some()
            || q.direction.is_some()
            || q.after.is_some()
            || q.before.is_some();
        if !words {
            let (rows, _) = store.filtered_conversations(q, MAX_LIST)?;
            return Ok(rows.into_iter().map(|r| r.id).collect());
        }
        let mut seen = std::collections::HashSet::new();
        Ok(store
            .search(q, MATCHING_HITS)?
            .into_iter()
            .map(|h| h.conversation_id)
            .filter(|c| seen.insert(*c))
            .collect())
    };
    let hits = ids_of(&within(pattern)?)?;
    let ids: Vec<ConversationId> = if invert {
        let hit: std::collections::HashSet<ConversationId> = hits.into_iter().collect();
        ids_of(&within("")?)?
            .into_iter()
            .filter(|c| !hit.contains(c))
            .collect()
    } else {
        hits
    };
    let total = ids.len();
    Ok((ids.into_iter().take(limit).collect(), total))
}

/// "due 2026-12-08 10:00", "with no due time".
fn due_text(due: Option<crate::model::Millis>) -> String {
    match due {
        Some(d) => format!("due {}", crate::tui::time::full(d)),
        None => "with no due time".into(),
    }
}

/// A script's write (`braid reply`, `note`, the verbs) as `agent`: what was written.
fn post_write(
    store: &mut Store,
    agent: &str,
    conversation: ConversationId,
    post: Post,
) -> anyhow::Result<Written> {
    let now = now_millis();
    let mut written = Written {
        conversation,
        done: String::new(),
        message: None,
        channel: None,
        recipient: None,
        author: agent.to_string(),
    };
    match post {
        Post::Verb(verb) => match crate::actions::apply(store, conversation, verb, agent, now)? {
            crate::actions::Outcome::Done(msg) => written.done = msg,
            // A script cannot answer the question: it is the error, and nothing changed.
            crate::actions::Outcome::Confirm {
                question,
                verb: crate::actions::Verb::Reassign { .. },
            } => anyhow::bail!("{question} Nothing changed; --force takes it."),
            crate::actions::Outcome::Confirm { question, .. } => anyhow::bail!("{question}"),
        },
        Post::Note { body, seen } => {
            let id = store.add_note_guarded(conversation, agent, &body, now, seen_event(seen))?;
            written.message = Some(id);
            written.done = "note added".into();
        }
        Post::Reply {
            channel,
            body,
            then_pending,
            seen,
        } => {
            let conv = store.conversation(conversation)?;
            let channel = match channel {
                Some(c) => c,
                None => store.reply_channel(conversation)?,
            };
            let Some(recipient) = store.recipient(conv.contact_id, channel)? else {
                let mut usable: Vec<&str> = Vec::new();
                for c in Channel::ALL {
                    if store.recipient(conv.contact_id, *c)?.is_some() {
                        usable.push(c.as_str());
                    }
                }
                anyhow::bail!(
                    "{} has no {channel} address to reply to (usable: {})",
                    conv.contact_name,
                    if usable.is_empty() {
                        "none".to_string()
                    } else {
                        usable.join(", ")
                    }
                );
            };
            let id = store.queue_reply_guarded(
                conversation,
                channel,
                agent,
                &body,
                now,
                seen_event(seen),
            )?;
            written.done =
                if crate::actions::after_reply(store, conversation, then_pending, agent, now)? {
                    format!("reply #{id} queued via {channel}; #{conversation} pending")
                } else {
                    format!("reply #{id} queued via {channel}")
                };
            written.message = Some(id);
            written.channel = Some(channel);
            written.recipient = Some(recipient);
        }
        Post::Template {
            name,
            params,
            seen,
            resolved,
        } => {
            let (id, template) =
                queue_template(store, conversation, agent, &name, resolved, &params, seen)?;
            let conv = store.conversation(conversation)?;
            written.done = format!("template '{template}' #{id} queued via whatsapp");
            written.message = Some(id);
            written.channel = Some(Channel::WhatsApp);
            written.recipient = store.recipient(conv.contact_id, Channel::WhatsApp)?;
        }
        Post::ScheduleReply {
            channel,
            body,
            send_at,
            seen,
        } => {
            let conv = store.conversation(conversation)?;
            let channel = match channel {
                Some(c) => c,
                None => store.reply_channel(conversation)?,
            };
            let id = store.schedule_reply(
                conversation,
                channel,
                agent,
                &body,
                now,
                send_at,
                seen_event(seen),
            )?;
            written.done = format!(
                "reply #{id} scheduled via {channel} for {}",
                crate::tui::time::full(send_at)
            );
            written.message = Some(id);
            written.channel = Some(channel);
            written.recipient = store.recipient(conv.contact_id, channel)?;
        }
    }
    Ok(written)
}

/// Queue a WhatsApp template reply (`:template`, `braid reply --template`): the text the
/// customer reads, and the template in the message's data for the sender. Returns the
/// message and the template's name.
#[allow(clippy::too_many_arguments)]
fn queue_template(
    store: &mut Store,
    conversation: ConversationId,
    agent: &str,
    name: &str,
    resolved: Option<Box<crate::template::Template>>,
    params: &[String],
    seen: Seen,
) -> anyhow::Result<(crate::model::MessageId, String)> {
    let Some(template) = resolved else {
        anyhow::bail!(
            "no WhatsApp template named '{}' is configured ([[whatsapp.templates]])",
            crate::sanitize::line(name)
        );
    };
    let text = template.render(params).map_err(anyhow::Error::msg)?;
    let id = store.queue_reply_with(
        conversation,
        Channel::WhatsApp,
        agent,
        &text,
        now_millis(),
        seen_event(seen),
        Some(&template.meta(params)),
    )?;
    Ok((id, template.name))
}

/// `:save`: the files of the conversation's newest message with attachments, fetched from
/// where they live. The lookup runs on the agent's scoped store (a conversation they cannot
/// see has no attachments for them).
pub async fn fetch_attachments(
    config: &crate::config::Config,
    source: Option<crate::store::AttachmentSource>,
    conversation: crate::model::ConversationId,
) -> Response {
    let Some(source) = source else {
        return Response::Error(format!("no message with attachments in #{conversation}"));
    };
    match crate::channels::save::fetch(config, &source).await {
        Ok(files) => Response::Files(
            files
                .into_iter()
                .map(|(name, bytes)| crate::api::FileData { name, bytes })
                .collect(),
        ),
        Err(e) => Response::Error(format!("save: {e}")),
    }
}

/// The most rows one list, search or contacts answer carries.
const MAX_LIST: usize = 100_000;
/// Rows per store query while a list is read.
const LIST_PAGE: usize = 500;

/// A view narrowed by tag and assignee, as a search query (`braid list --tag --assignee`).
fn narrowed(
    view: &QueueFilter,
    tag: Option<&str>,
    assignee: Option<&str>,
    me: &str,
) -> anyhow::Result<SearchQuery> {
    let mut q = SearchQuery::default();
    if let Some(t) = tag {
        q.tags.push(crate::store::normalize_tag(t)?);
    }
    let asked = assignee.map(|a| match a.trim() {
        "none" | "nobody" | "-" => None,
        "me" => Some(me.to_string()),
        a => Some(a.to_string()),
    });
    match view {
        QueueFilter::All => {}
        QueueFilter::Status(s) => q.status = Some(*s),
        QueueFilter::Mine(_) | QueueFilter::Unassigned if asked.is_some() => {
            anyhow::bail!(
                "--assignee and --view {} both say whose conversations to list; keep one",
                view.label()
            )
        }
        QueueFilter::Mine(who) => {
            q.status = Some(Status::Open);
            q.assignee = Some(Some(who.clone()));
        }
        QueueFilter::Unassigned => {
            q.status = Some(Status::Open);
            q.assignee = Some(None);
        }
        QueueFilter::Team(t) => {
            q.status = Some(Status::Open);
            q.team = Some(Some(t.clone()));
        }
    }
    if asked.is_some() {
        q.assignee = asked;
    }
    Ok(q)
}

/// The figures an agent may see: admins everyone's, supervisors their teams', everyone else
/// their own.
pub(crate) fn report_scope(who: &Identity) -> crate::store::ReportScope {
    use crate::store::ReportScope;
    match who.role {
        crate::api::Role::Admin => ReportScope::All,
        crate::api::Role::Supervisor => ReportScope::Teams(who.teams.clone()),
        _ => ReportScope::Agent(who.agent.clone()),
    }
}
