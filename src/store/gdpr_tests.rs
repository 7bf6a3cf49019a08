//! GDPR: the export holds every table about a person; forgetting erases them and keeps counts.

use super::search::SearchQuery;
use super::*;
use crate::identity::Claim;
use crate::model::{Channel, ConversationId, Direction, IdentityKind, Millis, now_millis};

const H: Millis = 3600 * 1000;

fn inbound(
    s: &mut Store,
    channel: Channel,
    kind: IdentityKind,
    who: &str,
    id: &str,
    body: &str,
    at: Millis,
) -> ConversationId {
    let msg = crate::ingest::Inbound {
        channel,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer: Claim::new(kind, who),
        linked: if who.starts_with("zelda") {
            vec![Claim::new(IdentityKind::Phone, "+4915112345678")]
        } else {
            vec![]
        },
        customer_name: Some(
            if who.starts_with("zelda") {
                "Zelda Quixote"
            } else {
                "Bob"
            }
            .into(),
        ),
        author: None,
        subject: Some("Invoice zanzibar".into()),
        body: body.into(),
        sent_at: at,
        meta: Some(serde_json::json!({"attachments": [{"name": "passport-zelda.pdf"}]})),
        cursor: None,
    };
    match crate::ingest::ingest(s, &msg, &Default::default()).unwrap() {
        crate::ingest::Ingested::Stored { conversation, .. }
        | crate::ingest::Ingested::Duplicate { conversation, .. } => conversation,
    }
}

fn hits(s: &Store, q: &str) -> usize {
    s.search(&SearchQuery::parse(q).unwrap(), 50).unwrap().len()
}

fn table_dump(s: &Store, sql: &str) -> String {
    let mut stmt = s.conn().prepare(sql).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            Ok((0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows.join("\n")
}

/// Every table with a column that points at a contact, conversation or message is in the
/// export (a new table holding personal data fails this until the export knows it).
#[test]
fn the_export_names_every_table_that_can_hold_personal_data() {
    let s = Store::open_in_memory().unwrap();
    let tables: Vec<String> = s
        .conn()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE '%VIRTUAL%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let exported: Vec<&str> = gdpr::EXPORT.iter().map(|(t, _)| *t).collect();
    for t in tables {
        let cols: Vec<String> = s
            .conn()
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let personal = cols.iter().any(|c| {
            matches!(
                c.as_str(),
                "contact_id" | "conversation_id" | "message_id" | "value"
            )
        }) || matches!(t.as_str(), "contacts" | "merges" | "duplicate_dismissals");
        // Derived per-day totals and the webhook inbox (bodies waiting minutes) are not a
        // person's: the totals are anonymous, the inbox is emptied as it is read.
        let exempt = matches!(
            t.as_str(),
            "report_daily"
                | "report_daily_tags"
                | "report_settings"
                | "report_state"
                | "webhook_inbox"
                | "cursors"
                | "derivations"
        );
        if personal && !exempt {
            assert!(
                exported.contains(&t.as_str()),
                "table {t} is missing from the export"
            );
        }
    }
}

#[test]
fn an_export_holds_everything_and_forgetting_erases_it_but_keeps_the_counts() {
    let mut s = Store::open_in_memory().unwrap();
    let now = now_millis();
    let c = inbound(
        &mut s,
        Channel::Email,
        IdentityKind::Email,
        "zelda@example.com",
        "m1",
        "my zanzibar order",
        now - 3 * H,
    );
    let other = inbound(
        &mut s,
        Channel::Email,
        IdentityKind::Email,
        "bob@example.com",
        "b1",
        "zanzibar too",
        now - 3 * H,
    );
    let contact = s.conversation(c).unwrap().contact_id;
    s.queue_reply(
        c,
        Channel::Email,
        "ann",
        "your zanzibar order shipped",
        now - 2 * H,
    )
    .unwrap();
    s.add_note(c, "ann", "Zelda called about zanzibar", now - 2 * H)
        .ok();
    let tx = s.write().unwrap();
    tx.set_consent(
        Channel::Sms,
        IdentityKind::Phone,
        "+4915112345678",
        true,
        "STOP",
        "sms",
        now - H,
    )
    .unwrap();
    tx.commit().unwrap();
    s.save_draft(c, "ann", "reply", None, "draft about zanzibar", now)
        .unwrap();
    s.derive_reports(&crate::sla::SlaConfig::default(), &mut |_| {})
        .unwrap();

    let export = s.contact_export(contact, now).unwrap();
    let t = &export["tables"];
    for table in [
        "contacts",
        "identities",
        "conversations",
        "messages",
        "drafts",
        "events",
        "consent",
        "consent_history",
        "contact_consent",
        "outbox",
    ] {
        assert!(
            !t[table].as_array().unwrap().is_empty(),
            "{table} empty: {export:#}"
        );
    }
    let text = export.to_string();
    assert!(text.contains("zelda@example.com") && text.contains("Zelda Quixote"));
    assert!(text.contains("your zanzibar order shipped") && text.contains("passport-zelda.pdf"));
    assert!(!text.contains("bob@example.com"), "another person's data");
    assert!(export["consent"]["marketing_out"].as_bool().unwrap());

    let facts = "SELECT * FROM report_facts ORDER BY id";
    let daily = "SELECT * FROM report_daily";
    let (facts_before, daily_before) = (table_dump(&s, facts), table_dump(&s, daily));
    let messages_before: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert!(hits(&s, "zanzibar") >= 3);
    let n = s.forget_contact(contact, "root", now).unwrap();
    assert!(n >= 2);
    // Search finds nothing of hers (Bob's message still), her identities are gone.
    assert_eq!(hits(&s, "zanzibar"), 1);
    assert_eq!(hits(&s, "Zelda"), 0);
    assert_eq!(hits(&s, "passport"), 0);
    assert!(s.identities(contact).unwrap().is_empty());
    let after = s.contact_export(contact, now).unwrap().to_string();
    for gone in [
        "zelda@example.com",
        "Zelda",
        "zanzibar",
        "passport",
        "+4915112345678",
        "STOP",
    ] {
        assert!(!after.contains(gone), "{gone} survived: {after}");
    }
    // Counts stay: the rows, the report facts and daily totals unchanged.
    let messages_after: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(messages_before, messages_after);
    assert_eq!(table_dump(&s, facts), facts_before);
    assert_eq!(table_dump(&s, daily), daily_before);
    // One audit event says who and when, without personal data.
    let ev: (String, Option<String>) = s
        .conn()
        .query_row(
            "SELECT actor, data FROM events WHERE kind = 'contact_forgotten'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(ev.0, "root");
    assert!(!ev.1.unwrap_or_default().contains("zelda"));
    // The other person is untouched.
    assert!(s.conversation(other).is_ok());
    assert!(text.contains("Zelda"));
}
