//! Consent and GDPR requests over the handler, with each role's session.

use crate::api::{Request, Response, Role};
use crate::identity::Claim;
use crate::model::{Channel, ContactId, Direction, IdentityKind, Purpose, now_millis};
use crate::server::handler::handle;
use crate::server::identity::Identity;
use crate::store::Store;

fn who(role: Role) -> Identity {
    Identity {
        uid: 1000,
        user: "ann".into(),
        agent: "ann".into(),
        display: "Ann".into(),
        role,
        teams: vec![],
    }
}

fn store() -> (Store, ContactId) {
    let mut s = Store::open_in_memory().unwrap();
    let msg = crate::ingest::Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: "m1".into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, "zed@example.com"),
        linked: vec![],
        customer_name: Some("Zed".into()),
        author: None,
        subject: Some("hello".into()),
        body: "my secret order".into(),
        sent_at: now_millis(),
        meta: None,
        cursor: None,
    };
    let contact = match crate::ingest::ingest(&mut s, &msg, &Default::default()).unwrap() {
        crate::ingest::Ingested::Stored { contact, .. } => contact,
        other => panic!("{other:?}"),
    };
    (s, contact)
}

#[test]
fn forgetting_and_exporting_are_refused_to_an_agent_and_a_supervisor() {
    let (mut s, contact) = store();
    for role in [Role::Agent, Role::Supervisor] {
        let forget = Request::ContactForget {
            contact,
            confirm: contact,
        };
        match handle(&mut s, &who(role), forget) {
            Response::Refused(why) => assert!(why.contains("needs the admin role"), "{why}"),
            other => panic!("{other:?}"),
        }
        match handle(&mut s, &who(role), Request::ContactExport { contact }) {
            Response::Refused(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // Nothing erased.
    assert_eq!(s.identities(contact).unwrap().len(), 1);
    // An admin must type the id again.
    let wrong = Request::ContactForget {
        contact,
        confirm: ContactId(contact.0 + 1),
    };
    match handle(&mut s, &who(Role::Admin), wrong) {
        Response::Error(e) => assert!(e.contains("nothing erased"), "{e}"),
        other => panic!("{other:?}"),
    }
    match handle(
        &mut s,
        &who(Role::Admin),
        Request::ContactExport { contact },
    ) {
        Response::Export(v) => assert!(v.to_string().contains("my secret order")),
        other => panic!("{other:?}"),
    }
    let forget = Request::ContactForget {
        contact,
        confirm: contact,
    };
    match handle(&mut s, &who(Role::Admin), forget) {
        Response::Done(line) => assert!(line.contains("forgotten"), "{line}"),
        other => panic!("{other:?}"),
    }
    assert!(s.identities(contact).unwrap().is_empty());
}

#[test]
fn an_agent_records_consent_and_a_viewer_cannot() {
    let (mut s, contact) = store();
    let set = Request::ConsentSet {
        contact,
        purpose: Purpose::Marketing,
        opted_out: true,
        channel: Some(Channel::WebChat),
        note: "asked in the chat".into(),
    };
    assert!(matches!(
        handle(&mut s, &who(Role::Viewer), set.clone()),
        Response::Refused(_)
    ));
    match handle(&mut s, &who(Role::Agent), set) {
        Response::Done(line) => {
            assert_eq!(line, format!("contact #{contact} opted out of marketing"))
        }
        other => panic!("{other:?}"),
    }
    match handle(&mut s, &who(Role::Viewer), Request::Consent { contact }) {
        Response::Consent(c) => {
            assert!(c.marketing_out);
            assert_eq!(c.history[0].actor, "ann");
            assert_eq!(c.history[0].detail, "asked in the chat");
        }
        other => panic!("{other:?}"),
    }
}
