//! What each role may do, checked by the server before a request runs. Teams are enforced one
//! layer down: the agent's store connection carries their scope, so a conversation outside it is
//! "not found" for reads and writes alike.
//!
//! | role       | reads            | conversation verbs, replies, notes | merges, claim links, VIP |
//! |------------|------------------|------------------------------------|--------------------------|
//! | viewer     | their teams      | no                                 | no                       |
//! | agent      | their teams      | yes                                | no                       |
//! | supervisor | their teams      | yes                                | yes                      |
//! | admin      | every team       | yes                                | yes                      |

use super::Identity;
use crate::actions::Verb;
use crate::api::{ContactOp, Request, Role, Write};

/// Ok, or the one line that says why not and what to do instead.
pub fn check(who: &Identity, req: &Request) -> Result<(), String> {
    // A script's write (`braid reply`, `note`, the verbs) is checked as the same write from
    // the TUI.
    if let Request::Post { conversation, post } = req {
        let same = Request::Write {
            conversation: *conversation,
            contact: crate::model::ContactId(0),
            write: post.as_write(),
        };
        return check(who, &same);
    }
    let needed = needed_role(req);
    if who.role >= needed {
        return Ok(());
    }
    let what = describe(req);
    Err(format!(
        "{what} needs the {needed} role; you ({}) are {} {}: ask an admin of the workspace",
        who.agent,
        article(who.role),
        who.role
    ))
}

/// The least role a request needs.
pub fn needed_role(req: &Request) -> Role {
    match req {
        Request::Queue { .. }
        | Request::Timeline { .. }
        | Request::Profile { .. }
        | Request::Counts
        | Request::Conversation { .. }
        | Request::List { .. }
        | Request::Search { .. }
        | Request::Contacts { .. }
        | Request::ContactCards { .. }
        | Request::ContactConversations { .. }
        | Request::Status
        | Request::Presence { .. }
        | Request::Who
        | Request::Rules
        // Scoped by role inside: an agent gets their own figures, a supervisor their
        // teams', an admin everyone's.
        | Request::Report(_)
        | Request::Attachments { .. } => Role::Viewer,
        // A dry run writes nothing, but it reads any conversation it is given and runs what
        // a lead writes: supervisors and admins.
        Request::RulesTest { .. } => Role::Supervisor,
        // A campaign's dry run and progress name contacts across every team: supervisors;
        // starting one writes to many customers, stopping it ends what an admin started:
        // admins.
        Request::Campaign(op) => match op {
            crate::api::CampaignOp::DryRun { .. } | crate::api::CampaignOp::Status { .. } => {
                Role::Supervisor
            }
            crate::api::CampaignOp::Start { .. } | crate::api::CampaignOp::Stop { .. } => {
                Role::Admin
            }
        },
        // Reading the audit log changes nothing, and the scope limits it to what the agent
        // sees anyway (plus their own refusals): a viewer (a QA lead, an auditor) is who
        // reads it most.
        Request::Audit { .. } => Role::Viewer,
        // Their own notifications: every agent, whatever their role.
        Request::Notifications { .. } | Request::MarkNotificationsRead { .. } => Role::Viewer,
        // Tasks: reading is reading; making and closing them is an agent's work.
        Request::Tasks { .. } => Role::Viewer,
        Request::TaskCreate { .. } | Request::TaskClose { .. } => Role::Agent,
        // Consent: reading it is reading; recording what a customer asked is an agent's work.
        Request::Consent { .. } => Role::Viewer,
        Request::ConsentSet { .. } => Role::Agent,
        // GDPR: an export reads every team's conversations of the person (a supervisor's
        // scope would give a partial answer to a subject access request) and forgetting
        // cannot be undone: admins only.
        Request::ContactExport { .. } | Request::ContactForget { .. } => Role::Admin,
        // A contact's fields, stage and score: an agent's work, like tags (scoped to the
        // contacts the agent sees).
        Request::ContactEdit { .. } => Role::Agent,
        // Reading: the store connection's scope limits it to the agent's teams' contacts.
        Request::Pipeline { .. } => Role::Viewer,
        Request::Post { post, .. } => needed_role(&Request::Write {
            conversation: crate::model::ConversationId(0),
            contact: crate::model::ContactId(0),
            write: post.as_write(),
        }),
        // Opening the composer writes nothing, but it is the first step of a write; so are
        // a canned reply and a suggestion (which also runs the workspace's command).
        Request::Compose { .. } | Request::RenderCanned { .. } | Request::Suggest { .. } => {
            Role::Agent
        }
        Request::Matching { .. } => Role::Viewer,
        // The same role as the verb on one conversation (a VIP change needs a supervisor).
        Request::Bulk { verb, .. } => needed_role(&Request::Write {
            conversation: crate::model::ConversationId(0),
            contact: crate::model::ContactId(0),
            write: Write::Verb(verb.clone()),
        }),
        // Webhooks: the workspace's integrations (where its data goes), an admin's.
        Request::WebhooksStatus | Request::WebhookTest { .. } | Request::WebhookRetry { .. } => {
            Role::Admin
        }
        // Undo reverses a conversation verb (status, assignee, priority, tags, team): an agent's.
        Request::Undo => Role::Agent,
        // Contacts: reading the provenance and a preview is reading; merging two people,
        // taking a merge back and moving identities between people reach beyond one
        // conversation (and maybe beyond the agent's teams), like the identity merge below:
        // supervisors. Suggested duplicates are an agent's worklist; dismissing one hides it
        // from everybody: a supervisor's call.
        Request::Contact { op, .. } => match op {
            ContactOp::Merges | ContactOp::MergePlan { .. } => Role::Viewer,
            ContactOp::Merge { .. }
            | ContactOp::Unmerge { .. }
            | ContactOp::IdentityRemove { .. }
            | ContactOp::IdentityMove { .. }
            | ContactOp::DismissDuplicate { .. } => Role::Supervisor,
        },
        Request::Duplicates { .. } => Role::Agent,
        Request::Write { write, .. } => match write {
            Write::Reply { .. }
            | Write::Note { .. }
            | Write::Template { .. }
            | Write::SaveDraft { .. }
            | Write::ScheduleReply { .. }
            | Write::CancelSend { .. }
            | Write::Task { .. } => Role::Agent,
            Write::Verb(v) => match v {
                // Contact-wide changes reach beyond one conversation (and maybe beyond the
                // agent's teams): merging two people, joining a visitor to a claimed contact,
                // marking a VIP.
                Verb::IdentityAdd { merge: true, .. } | Verb::Claim { link: true, .. } => {
                    Role::Supervisor
                }
                Verb::Vip(_) => Role::Supervisor,
                _ => Role::Agent,
            },
        },
    }
}

fn describe(req: &Request) -> String {
    match req {
        Request::Write { write, .. } => match write {
            Write::Reply { .. } | Write::Template { .. } | Write::ScheduleReply { .. } => {
                "replying".into()
            }
            Write::CancelSend { .. } => "cancelling a scheduled reply".into(),
            Write::Task { .. } => "creating a task".into(),
            Write::Note { .. } => "adding a note".into(),
            Write::SaveDraft { .. } => "saving a draft".into(),
            Write::Verb(v) => match v {
                Verb::IdentityAdd { merge: true, .. } => "merging two contacts".into(),
                Verb::Claim { link: true, .. } => "linking a claimed identity".into(),
                Verb::Vip(_) => "changing VIP".into(),
                other => format!("'{}'", other.name()),
            },
        },
        Request::Compose { .. } => "writing a reply or note".into(),
        Request::Bulk { verb, .. } => match verb {
            Verb::Vip(_) => "changing VIP".into(),
            other => format!("'{}' on a selection", other.name()),
        },
        Request::TaskCreate { .. } => "creating a task".into(),
        Request::TaskClose { .. } => "closing a task".into(),
        Request::Contact { op, .. } => match op {
            ContactOp::Merge { .. } => "merging two contacts".into(),
            ContactOp::Unmerge { .. } => "taking a merge back".into(),
            ContactOp::IdentityRemove { .. } => "removing an identity".into(),
            ContactOp::IdentityMove { .. } => "moving an identity to another contact".into(),
            ContactOp::DismissDuplicate { .. } => "dismissing a duplicate".into(),
            other => format!("'{}'", other.name()),
        },
        Request::ContactExport { .. } => "exporting a contact's data".into(),
        Request::ContactForget { .. } => "forgetting a contact".into(),
        other => format!("'{}'", other.name()),
    }
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Agent => "an",
        Role::Viewer | Role::Supervisor => "a",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{ContactId, ConversationId};

    fn who(role: Role) -> Identity {
        Identity {
            uid: 1000,
            user: "ann".into(),
            agent: "ann".into(),
            display: "Ann".into(),
            role,
            teams: vec!["billing".into()],
        }
    }

    fn write(w: Write) -> Request {
        Request::Write {
            conversation: ConversationId(1),
            contact: ContactId(1),
            write: w,
        }
    }

    #[test]
    fn viewers_read_only() {
        let v = who(Role::Viewer);
        assert!(check(&v, &Request::Counts).is_ok());
        assert!(check(&v, &Request::Status).is_ok());
        let err = check(
            &v,
            &write(Write::Note {
                body: "x".into(),
                seen: Default::default(),
            }),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "adding a note needs the agent role; you (ann) are a viewer: ask an admin of the workspace"
        );
        assert!(check(&v, &write(Write::Verb(Verb::Assign(None)))).is_err());
        assert!(
            check(
                &v,
                &Request::Compose {
                    conversation: ConversationId(1),
                    contact: ContactId(1),
                    kind: "reply".into(),
                    channel: None
                }
            )
            .is_err()
        );
    }

    #[test]
    fn agents_work_conversations_but_do_not_merge() {
        let a = who(Role::Agent);
        assert!(check(&a, &write(Write::Verb(Verb::Tag("x".into())))).is_ok());
        assert!(
            check(
                &a,
                &write(Write::Reply {
                    channel: crate::model::Channel::Email,
                    body: "hi".into(),
                    then_pending: false,
                    seen: Default::default(),
                })
            )
            .is_ok()
        );
        let merge = write(Write::Verb(Verb::IdentityAdd {
            kind: crate::model::IdentityKind::Email,
            value: "a@b.c".into(),
            merge: true,
        }));
        assert!(
            check(&a, &merge)
                .unwrap_err()
                .contains("merging two contacts")
        );
        assert!(check(&who(Role::Supervisor), &merge).is_ok());
        let add = write(Write::Verb(Verb::IdentityAdd {
            kind: crate::model::IdentityKind::Email,
            value: "a@b.c".into(),
            merge: false,
        }));
        assert!(check(&a, &add).is_ok());
        let link = write(Write::Verb(Verb::Claim {
            link: true,
            value: None,
        }));
        assert!(check(&a, &link).is_err());
        assert!(check(&who(Role::Admin), &link).is_ok());
        assert!(check(&a, &write(Write::Verb(Verb::Vip(true)))).is_err());
    }

    #[test]
    fn merging_people_and_taking_merges_back_need_a_supervisor() {
        let c = ContactId(1);
        let ask = |op: crate::api::ContactOp| Request::Contact { contact: c, op };
        let merge = ask(crate::api::ContactOp::Merge {
            other: ContactId(2),
            keep_other: false,
            reason: String::new(),
        });
        let err = check(&who(Role::Agent), &merge).unwrap_err();
        assert!(err.contains("merging two contacts"), "{err}");
        assert!(check(&who(Role::Supervisor), &merge).is_ok());
        for op in [
            crate::api::ContactOp::Unmerge { merge: None },
            crate::api::ContactOp::IdentityMove {
                kind: crate::model::IdentityKind::Email,
                value: "a@b.c".into(),
                to: ContactId(2),
            },
            crate::api::ContactOp::DismissDuplicate {
                other: ContactId(2),
            },
        ] {
            assert!(
                check(&who(Role::Agent), &ask(op.clone())).is_err(),
                "{op:?}"
            );
            assert!(check(&who(Role::Supervisor), &ask(op)).is_ok());
        }
        // Reading the provenance and a preview: anyone; the worklist: agents.
        assert!(check(&who(Role::Viewer), &ask(crate::api::ContactOp::Merges)).is_ok());
        assert!(check(&who(Role::Viewer), &Request::Duplicates { limit: 5 }).is_err());
        assert!(check(&who(Role::Agent), &Request::Duplicates { limit: 5 }).is_ok());
        // Joining or splitting one person's conversations: an agent's verb.
        let join = Request::Write {
            conversation: ConversationId(1),
            contact: c,
            write: Write::Verb(Verb::Join(ConversationId(2))),
        };
        assert!(check(&who(Role::Agent), &join).is_ok());
        assert!(check(&who(Role::Viewer), &join).is_err());
    }

    #[test]
    fn a_scripts_post_is_checked_as_the_same_write() {
        use crate::api::Post;
        let post = |p: Post| Request::Post {
            conversation: ConversationId(1),
            post: p,
        };
        let reply = post(Post::Reply {
            channel: None,
            body: "hi".into(),
            then_pending: false,
            seen: Default::default(),
        });
        let err = check(&who(Role::Viewer), &reply).unwrap_err();
        assert_eq!(
            err,
            "replying needs the agent role; you (ann) are a viewer: ask an admin of the workspace"
        );
        assert!(check(&who(Role::Agent), &reply).is_ok());
        assert!(
            check(
                &who(Role::Viewer),
                &post(Post::Note {
                    body: "x".into(),
                    seen: Default::default()
                })
            )
            .is_err()
        );
        let vip = post(Post::Verb(Verb::Vip(true)));
        assert!(check(&who(Role::Agent), &vip).is_err());
        assert!(check(&who(Role::Supervisor), &vip).is_ok());
        assert_eq!(needed_role(&vip), Role::Supervisor);
        // Reading a contact's cards and conversations is a read.
        let cards = Request::ContactCards {
            after: None,
            limit: 10,
        };
        assert!(check(&who(Role::Viewer), &cards).is_ok());
    }

    #[test]
    fn bulk_and_undo_need_the_role_of_the_verb() {
        let bulk = |verb: Verb| Request::Bulk {
            conversations: vec![ConversationId(1), ConversationId(2)],
            verb,
        };
        let viewer = who(Role::Viewer);
        let agent = who(Role::Agent);
        let tag = bulk(Verb::Tag("refund".into()));
        assert!(check(&viewer, &tag).is_err());
        assert!(check(&agent, &tag).is_ok());
        let vip = bulk(Verb::Vip(true));
        let err = check(&agent, &vip).unwrap_err();
        assert!(
            err.contains("changing VIP") && err.contains("supervisor"),
            "{err}"
        );
        assert!(check(&who(Role::Supervisor), &vip).is_ok());
        assert!(check(&viewer, &Request::Undo).is_err());
        assert!(check(&agent, &Request::Undo).is_ok());
        let matching = Request::Matching {
            view: crate::api::QueueView::Filter(crate::store::QueueFilter::All),
            pattern: "refund".into(),
            invert: false,
            limit: 10,
        };
        assert!(check(&viewer, &matching).is_ok());
    }

    #[test]
    fn campaigns_dry_run_and_status_need_a_supervisor_start_and_stop_an_admin() {
        use crate::api::CampaignOp;
        let n = || "trial".to_string();
        let look = [
            Request::Campaign(CampaignOp::DryRun { name: n() }),
            Request::Campaign(CampaignOp::Status { name: None }),
        ];
        let act = [
            Request::Campaign(CampaignOp::Start {
                name: n(),
                confirmed: true,
            }),
            Request::Campaign(CampaignOp::Stop { name: n() }),
        ];
        for r in &look {
            assert!(check(&who(Role::Agent), r).is_err());
            assert!(check(&who(Role::Supervisor), r).is_ok());
        }
        for r in &act {
            assert!(check(&who(Role::Supervisor), r).is_err());
            assert!(check(&who(Role::Admin), r).is_ok());
        }
    }
}
