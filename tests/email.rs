//! The hermetic half of the email channel: MIME parsing (the 107-message corpus, malformed
//! input, encoded words, charsets, HTML, attachments, limits), threading by Message-ID /
//! In-Reply-To / References, and `braid import maildir|mbox` (idempotency, a bad file in the
//! middle, the CLI's output and exit code).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::channels::email::import::{self, Format};
use braid::channels::email::mime::{UNKNOWN_SENDER, human_size, strip_tags};
use braid::channels::email::{EmailParser, Limits, Options, ParsedEmail, ingest_email};
use braid::ingest::{Ingested, Settings};
use braid::model::{Direction, Status};
use braid::store::{MessageRow, Store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;

fn parser() -> EmailParser {
    EmailParser::new(&Options::new("", &["support@braid.test"]))
}

fn parse(raw: &str) -> ParsedEmail {
    parser().parse(raw.as_bytes(), T0)
}

fn ingest(store: &mut Store, email: &ParsedEmail) -> Ingested {
    let tx = store.write().unwrap();
    let out = ingest_email(&tx, email, &Settings::default(), T0).unwrap();
    tx.commit().unwrap();
    out
}

fn stored(store: &Store, r: Ingested) -> MessageRow {
    match r {
        Ingested::Stored { message, .. } | Ingested::Duplicate { message, .. } => {
            store.message(message).unwrap()
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn corpus_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mime");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_message_ingests_with_readable_text() {
    let files = corpus_files();
    assert_eq!(files.len(), 107, "the corpus has 107 messages");
    let mut store = Store::open_in_memory().unwrap();
    let mut p = parser();
    let mail = mail_parser::MessageParser::new();
    for path in &files {
        let raw = std::fs::read(path).unwrap();
        let email = p.parse(&raw, T0);
        let r = ingest(&mut store, &email);
        let row = stored(&store, r);
        let name = path.display();
        assert!(
            !has_control(&row.body),
            "{name}: control characters in the body"
        );
        assert!(
            !has_control(&row.author),
            "{name}: control characters in the author"
        );
        if let Some(s) = &row.subject {
            assert!(!has_control(s), "{name}: control characters in the subject");
        }
        // Where mail-parser finds text (plain or HTML), braid stores some.
        let has_text = mail.parse(&raw).is_some_and(|m| {
            (0..m.text_body_count()).any(|i| m.body_text(i).is_some_and(|t| !t.trim().is_empty()))
        });
        if has_text {
            assert!(!row.body.trim().is_empty(), "{name}: text lost");
        }
    }
    // Ingesting the corpus again adds nothing.
    for path in &files {
        let raw = std::fs::read(path).unwrap();
        let r = ingest(&mut store, &p.parse(&raw, T0));
        assert!(
            matches!(r, Ingested::Duplicate { .. }),
            "{}: not idempotent",
            path.display()
        );
    }
}

#[test]
fn plain_message_fields() {
    let e = parse(
        "From: \"Ann Lee\" <Ann@Example.COM>\r\nTo: support@braid.test\r\n\
         Subject: Invoice question\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
         Message-ID: <abc-1@example.com>\r\n\r\nHello,\r\nwhere is my invoice?\r\n",
    );
    assert_eq!(e.inbound.external_id, "abc-1@example.com");
    assert_eq!(e.message_id.as_deref(), Some("abc-1@example.com"));
    assert_eq!(e.inbound.customer.value, "ann@example.com");
    assert_eq!(e.inbound.customer_name.as_deref(), Some("Ann Lee"));
    assert_eq!(e.inbound.direction, Direction::In);
    assert_eq!(e.inbound.subject.as_deref(), Some("Invoice question"));
    assert_eq!(e.inbound.sent_at, 1_700_000_000_000);
    assert!(e.inbound.body.contains("where is my invoice?"));
    let meta = e.inbound.meta.as_ref().unwrap();
    assert_eq!(meta["message_id"], "abc-1@example.com");
    assert_eq!(meta["to"][0], "support@braid.test");
}

#[test]
fn missing_message_id_and_date_are_synthesized_stably() {
    let raw = "From: a@example.com\r\nSubject: no id\r\n\r\nbody\r\n";
    let a = parse(raw);
    let b = parse(raw);
    assert_eq!(a.inbound.external_id, b.inbound.external_id);
    assert!(a.inbound.external_id.starts_with("braid-"));
    assert!(a.message_id.is_none());
    assert_eq!(a.inbound.sent_at, T0);
    let c = parse("From: a@example.com\r\nSubject: no id\r\n\r\nother body\r\n");
    assert_ne!(a.inbound.external_id, c.inbound.external_id);
}

#[test]
fn our_address_makes_an_outgoing_message_to_the_first_to() {
    let e = parse(
        "From: Support Team <SUPPORT@braid.test>\r\nTo: Bob <bob@example.org>, c@example.org\r\n\
         Subject: Re: help\r\nMessage-ID: <out-1@braid.test>\r\n\r\nHere you go.\r\n",
    );
    assert_eq!(e.inbound.direction, Direction::Out);
    assert_eq!(e.inbound.customer.value, "bob@example.org");
    assert_eq!(e.inbound.customer_name.as_deref(), Some("Bob"));
    assert_eq!(e.inbound.author.as_deref(), Some("Support Team"));
}

#[test]
fn no_usable_sender_lands_on_the_unknown_contact() {
    let e = parse("Subject: who?\r\nFrom: not an address\r\n\r\nhello\r\n");
    assert_eq!(e.inbound.customer.value, UNKNOWN_SENDER);
    let mut store = Store::open_in_memory().unwrap();
    let r = ingest(&mut store, &e);
    let row = stored(&store, r);
    assert_eq!(row.body, "hello");
}

#[test]
fn encoded_words_in_subject_and_name() {
    let e = parse(
        "From: =?UTF-8?B?w4ltaWxpZSBEdXBvbnQ=?= <emilie@example.fr>\r\n\
         Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= =?UTF-8?B?4oKs?=\r\n\r\nx\r\n",
    );
    assert_eq!(e.inbound.customer_name.as_deref(), Some("Émilie Dupont"));
    assert_eq!(e.inbound.subject.as_deref(), Some("Café crème€"));
}

fn with_charset(charset: &str, cte: &str, body: &[u8]) -> ParsedEmail {
    let mut raw = format!(
        "From: x@example.com\r\nSubject: cs\r\nContent-Type: text/plain; charset={charset}\r\n\
         Content-Transfer-Encoding: {cte}\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw.extend_from_slice(b"\r\n");
    parser().parse(&raw, T0)
}

#[test]
fn charsets() {
    assert_eq!(
        with_charset("ISO-8859-1", "quoted-printable", b"Caf=E9 cr=E8me")
            .inbound
            .body
            .trim(),
        "Café crème"
    );
    assert_eq!(
        with_charset("windows-1252", "8bit", b"Caf\xe9 \x80 \x93quotes\x94")
            .inbound
            .body
            .trim(),
        "Café € \u{201c}quotes\u{201d}"
    );
    assert_eq!(
        with_charset(
            "Shift_JIS",
            "8bit",
            b"\x93\xfa\x96{\x8c\xea\x82\xcc\x83\x81\x81[\x83\x8b"
        )
        .inbound
        .body
        .trim(),
        "日本語のメール"
    );
    assert_eq!(
        with_charset("KOI8-R", "8bit", b"\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2")
            .inbound
            .body
            .trim(),
        "Привет, мир"
    );
}

#[test]
fn html_only_mail_is_converted() {
    let e = parse(
        "From: h@example.com\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><head><style>p{color:red}</style></head><body><p>Hello <b>world</b></p>\
         <script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>\r\n",
    );
    let body = &e.inbound.body;
    assert!(body.contains("Hello") && body.contains("world"), "{body}");
    assert!(body.contains("one") && body.contains("two"), "{body}");
    assert!(!body.contains("<p>") && !body.contains("alert") && !body.contains("color"));
}

#[test]
fn plain_part_wins_over_html() {
    let e = parse(
        "From: h@example.com\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n\
         --b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n--b--\r\n",
    );
    assert_eq!(e.inbound.body.trim(), "plain version");
}

#[test]
fn html_over_the_time_limit_or_size_limit_falls_back_to_the_stripper() {
    let html = "From: h@example.com\r\nContent-Type: text/html\r\n\r\n\
                <p>Dear &amp; valued</p><div>customer</div>\r\n";
    for limits in [
        Limits {
            html_time_limit: Duration::ZERO,
            ..Limits::default()
        },
        Limits {
            max_html_bytes: 10,
            ..Limits::default()
        },
    ] {
        let mut p = EmailParser::new(&Options {
            limits,
            ..Options::default()
        });
        let body = p.parse(html.as_bytes(), T0).inbound.body;
        assert!(body.contains("Dear & valued"), "{body}");
        assert!(body.contains("customer"), "{body}");
    }
    assert_eq!(
        strip_tags("<head><title>t</title></head><p>a</p><script>x<y</script>b"),
        "a\nb"
    );
}

#[test]
fn attachments_are_listed_in_body_and_meta() {
    let pdf = "JVBERi0xLjQK".repeat(10_000); // base64, 120,000 chars -> 90,000 bytes
    let raw = format!(
        "From: a@example.com\r\nSubject: files\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
         --XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --XX\r\nContent-Type: application/pdf; name=\"inv.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"../../evil\x1b[31m/invoice.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n\
         --XX\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
         --XX--\r\n"
    );
    let e = parse(&raw);
    let body = &e.inbound.body;
    assert!(body.starts_with("See attached."), "{body}");
    assert!(
        body.contains("[attachment: .._evil_invoice.pdf, application/pdf, 88 KB]")
            || body.contains("_evil_invoice.pdf, application/pdf, 88 KB]"),
        "{body}"
    );
    assert!(
        body.contains("[attachment: attachment, image/png, 8 B]"),
        "{body}"
    );
    let meta = e.inbound.meta.as_ref().unwrap();
    assert_eq!(meta["attachments"][0]["size"], 90_000);
    assert_eq!(meta["attachments"][0]["type"], "application/pdf");
    assert!(
        !meta["attachments"][0]["name"]
            .as_str()
            .unwrap()
            .contains('/')
    );
    assert_eq!(human_size(532), "532 B");
    assert_eq!(human_size(120 * 1024), "120 KB");
    assert_eq!(human_size(3 * 1024 * 1024 + 400 * 1024), "3.4 MB");
}

#[test]
fn malformed_mime_never_panics() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"nope\r\n\r\n--nope\r\n"
            .to_vec(),
        b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n"
            .to_vec(),
        b"From: a@example.com\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n"
            .to_vec(),
        b"From: a@example.com\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n="
            .to_vec(),
        b"From: a@example.com\r\nSubject: =?UTF-8?B?broken\r\n\r\n\xff\xfe\x00\x1b]0;pwn\x07text"
            .to_vec(),
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n\r\nabc"
            .to_vec(),
        b"From: a@example.com\r\nSubject: trunc".to_vec(),
        vec![0xffu8; 4096],
    ];
    let mut store = Store::open_in_memory().unwrap();
    let mut p = parser();
    for raw in &cases {
        let e = p.parse(raw, T0);
        let r = ingest(&mut store, &e);
        let row = stored(&store, r);
        assert!(!has_control(&row.body));
    }
}

#[test]
fn deep_nesting_and_too_many_parts_are_bounded() {
    // 200 nested multiparts: text below max_depth is ignored, nothing overflows.
    let mut raw = String::from("From: deep@example.com\r\nSubject: deep\r\n");
    for i in 0..200 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ndeep text\r\n");
    for i in (0..200).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    let e = parse(&raw);
    assert!(!e.inbound.body.contains("deep text"));
    assert!(
        e.inbound
            .body
            .contains("nested deeper than 16 levels not shown"),
        "{}",
        e.inbound.body
    );
    assert_eq!(e.inbound.subject.as_deref(), Some("deep"));

    let mut p = EmailParser::new(&Options {
        limits: Limits {
            max_multiparts: 1000,
            max_depth: 5,
            ..Limits::default()
        },
        ..Options::default()
    });
    let e = p.parse(raw.as_bytes(), T0);
    assert!(!e.inbound.body.contains("deep text"));

    let mut p = EmailParser::new(&Options {
        limits: Limits {
            max_message_bytes: 100,
            ..Limits::default()
        },
        ..Options::default()
    });
    let e = p.parse(raw.as_bytes(), T0);
    assert!(
        e.inbound.body.contains("over the 100 B limit"),
        "{}",
        e.inbound.body
    );
    assert_eq!(e.inbound.customer.value, "deep@example.com");
}

// ---------------------------------------------------------------------------------------------
// Threading

fn mail(from: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@braid.test\r\nSubject: Order 42\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
    )
}

#[test]
fn reply_from_a_colleague_joins_the_referenced_conversation() {
    let mut store = Store::open_in_memory().unwrap();
    let first = ingest(
        &mut store,
        &parse(&mail(
            "Ann <ann@acme.test>",
            "a1@acme.test",
            "",
            "My order is late.",
        )),
    );
    let Ingested::Stored {
        conversation: conv,
        contact: ann,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    // Ann's colleague answers in the thread (In-Reply-To only).
    let reply = ingest(
        &mut store,
        &parse(&mail(
            "Carl <carl@acme.test>",
            "c1@acme.test",
            "In-Reply-To: <a1@acme.test>\r\n",
            "I'm Ann's colleague, adding the order number: 42.",
        )),
    );
    let Ingested::Stored {
        conversation,
        contact,
        message,
        new_conversation,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(conversation, conv);
    assert_eq!(contact, ann);
    assert!(!new_conversation);
    let row = store.message(message).unwrap();
    assert_eq!(row.author, "Carl");
    assert_eq!(row.conversation_id, conv);
    // Ann's timeline has both; the conversation summary counts both; no empty conversation.
    assert_eq!(store.timeline(ann, None, 10).unwrap().len(), 2);
    assert_eq!(store.conversation(conv).unwrap().message_count, 2);
    // Carl is a contact of his own (he can be written to), without a conversation.
    let carl = store
        .contact_by_identity(braid::model::IdentityKind::Email, "carl@acme.test")
        .unwrap()
        .unwrap();
    assert_ne!(carl, ann);
    assert!(store.contact_conversations(carl, 10).unwrap().is_empty());
    // An event on Ann tells the TUIs showing her timeline to refresh it.
    let last = store
        .events_since(braid::model::EventId(0), 1000)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.kind.as_str(), last.contact_id, last.message_id),
        ("contact_updated", Some(ann), Some(message))
    );

    // A reply found through References (In-Reply-To names a message we never saw).
    let r = ingest(
        &mut store,
        &parse(&mail(
            "Dora <dora@acme.test>",
            "d1@acme.test",
            "In-Reply-To: <unknown@x.test>\r\nReferences: <a1@acme.test> <c1@acme.test>\r\n",
            "me too",
        )),
    );
    assert!(matches!(r, Ingested::Stored { conversation, .. } if conversation == conv));

    // Re-delivery changes nothing.
    let again = ingest(
        &mut store,
        &parse(&mail(
            "Carl <carl@acme.test>",
            "c1@acme.test",
            "In-Reply-To: <a1@acme.test>\r\n",
            "I'm Ann's colleague, adding the order number: 42.",
        )),
    );
    assert!(matches!(again, Ingested::Duplicate { conversation, .. } if conversation == conv));
    assert_eq!(store.conversation(conv).unwrap().message_count, 3);

    // The headers an SMTP reply needs.
    let refs = store.email_thread_refs(conv).unwrap().unwrap();
    assert_eq!(refs.last_message_id, "d1@acme.test");
    assert_eq!(
        refs.references,
        vec!["a1@acme.test", "c1@acme.test", "d1@acme.test"]
    );
}

#[test]
fn reply_to_a_long_resolved_thread_follows_the_omnichannel_rule() {
    let mut store = Store::open_in_memory().unwrap();
    let Ingested::Stored {
        conversation: conv, ..
    } = ingest(
        &mut store,
        &parse(&mail("ann@acme.test", "a1@acme.test", "", "hello")),
    )
    else {
        panic!()
    };
    store
        .set_status(conv, Status::Resolved, None, "agent", T0)
        .unwrap();
    let later = "From: carl@acme.test\r\nSubject: Re\r\nDate: Sat, 14 Dec 2024 22:13:20 +0000\r\n\
         Message-ID: <c9@acme.test>\r\nIn-Reply-To: <a1@acme.test>\r\n\r\nmuch later\r\n";
    let r = ingest(&mut store, &parse(later));
    assert!(
        matches!(r, Ingested::Stored { conversation, new_conversation: true, .. } if conversation != conv)
    );
}

#[test]
fn same_contact_reply_stays_in_their_open_conversation() {
    let mut store = Store::open_in_memory().unwrap();
    let a = ingest(
        &mut store,
        &parse(&mail("ann@acme.test", "a1@acme.test", "", "one")),
    );
    let b = ingest(
        &mut store,
        &parse(&mail(
            "ann@acme.test",
            "a2@acme.test",
            "In-Reply-To: <a1@acme.test>\r\n",
            "two",
        )),
    );
    let conv = |r: Ingested| match r {
        Ingested::Stored { conversation, .. } | Ingested::Duplicate { conversation, .. } => {
            conversation
        }
    };
    assert_eq!(conv(a), conv(b));
    assert!(store.email_thread_refs(conv(a)).unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Import

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A Maildir with 3 messages in INBOX (cur + new), 2 in a Maildir++ subfolder, one file that is
/// not mail in the middle, and a tmp/ file that must not be read.
fn sample_maildir(root: &Path) {
    write(
        &root.join("cur/1700000001.1.host:2,S"),
        mail("ann@acme.test", "m1@acme.test", "", "first").as_bytes(),
    );
    write(
        &root.join("cur/1700000002.1.host:2,S"),
        &[0u8, 159, 146, 150, 0, 1, 2, 3],
    );
    write(
        &root.join("cur/1700000003.1.host:2,S"),
        mail("bob@acme.test", "m2@acme.test", "", "second").as_bytes(),
    );
    write(
        &root.join("new/1700000004.1.host"),
        mail("ann@acme.test", "m3@acme.test", "", "third").as_bytes(),
    );
    write(
        &root.join(".Sent/cur/1700000005.1.host:2,S"),
        b"From: support@braid.test\r\nTo: ann@acme.test\r\nSubject: Re: Order 42\r\n\
          Message-ID: <s1@braid.test>\r\nIn-Reply-To: <m1@acme.test>\r\n\r\nOn its way.\r\n",
    );
    write(
        &root.join(".Archive.2023/new/1700000006.1.host"),
        mail("cy@acme.test", "m4@acme.test", "", "archived").as_bytes(),
    );
    write(
        &root.join("tmp/1700000007.1.host"),
        mail("tmp@acme.test", "tmp@acme.test", "", "in delivery").as_bytes(),
    );
}

fn options() -> Options {
    Options::new("", &["support@braid.test"])
}

#[test]
fn maildir_import_is_idempotent_and_skips_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Mail");
    sample_maildir(&md);
    let mut store = Store::open_in_memory().unwrap();
    let mut calls = 0;
    let report = import::import(
        &mut store,
        Format::Maildir,
        &md,
        &options(),
        &Settings::default(),
        &mut |_| calls += 1,
    )
    .unwrap();
    assert!(calls >= 1);
    let p = report.progress;
    assert_eq!((p.done, p.stored, p.duplicates, p.skipped), (6, 5, 0, 1));
    assert_eq!(p.total, Some(6));
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].origin.ends_with("1700000002.1.host:2,S"));
    assert!(report.skipped[0].reason.contains("not a mail message"));
    // The Sent copy is our reply in Ann's conversation.
    let ann = store
        .contact_by_identity(braid::model::IdentityKind::Email, "ann@acme.test")
        .unwrap()
        .unwrap();
    let timeline = store.timeline(ann, None, 10).unwrap();
    assert_eq!(timeline.len(), 3);
    assert!(
        timeline
            .iter()
            .any(|m| m.direction == Direction::Out && m.body == "On its way.")
    );

    // Imported messages are in the full-text index, and the index trigger is back for the
    // messages that arrive after the import.
    let search = |store: &Store, word: &str| {
        let q = braid::store::SearchQuery {
            fts: Some(word.into()),
            from: None,
            channel: None,
            direction: None,
            after: None,
            before: None,
            ..Default::default()
        };
        store.search(&q, 10).unwrap().len()
    };
    assert_eq!(search(&store, "archived"), 1);
    assert_eq!(search(&store, "way"), 1);
    // ... with their senders: `from:` finds Ann's imported mail by her address.
    let from = |store: &Store, q: &str| {
        store
            .search(&braid::store::SearchQuery::parse(q).unwrap(), 10)
            .unwrap()
            .len()
    };
    assert_eq!(from(&store, "from:ann@acme.test"), 2);
    assert_eq!(from(&store, "from:acme.test archived"), 1);
    ingest(
        &mut store,
        &parse(&mail(
            "ann@acme.test",
            "later@acme.test",
            "",
            "zebra crossing",
        )),
    );
    assert_eq!(search(&store, "zebra"), 1);

    let again = import::import(
        &mut store,
        Format::Maildir,
        &md,
        &options(),
        &Settings::default(),
        &mut |_| {},
    )
    .unwrap();
    let p = again.progress;
    assert_eq!((p.done, p.stored, p.duplicates, p.skipped), (6, 0, 5, 1));
}

#[test]
fn not_a_maildir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_in_memory().unwrap();
    let err = import::import(
        &mut store,
        Format::Maildir,
        dir.path(),
        &options(),
        &Settings::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a Maildir"), "{err}");
}

const MBOX: &str = "From ann@acme.test Tue Nov 14 22:13:20 2023\n\
From: ann@acme.test\n\
Subject: one\n\
Message-ID: <mb1@acme.test>\n\
\n\
Line one.\n\
>From the start, quoted by mboxrd.\n\
>>From twice quoted.\n\
\n\
From MAILER-DAEMON Tue Nov 14 22:13:21 2023\n\
\x00\x01\x02 not a message\n\
\n\
From bob@acme.test Tue Nov 14 22:13:22 2023\n\
From: bob@acme.test\n\
Subject: two\n\
Message-ID: <mb2@acme.test>\n\
\n\
From here on, an unquoted From line after a blank line's absence.\n\
\n\
From bob@acme.test Tue Nov 14 22:13:23 2023\n\
From: bob@acme.test\n\
Subject: three\n\
Message-ID: <mb3@acme.test>\n\
\n\
third\n";

#[test]
fn mbox_import_unquotes_from_skips_a_bad_message_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("archive.mbox");
    std::fs::write(&mbox, MBOX).unwrap();
    let mut store = Store::open_in_memory().unwrap();
    let report = import::import(
        &mut store,
        Format::Mbox,
        &mbox,
        &options(),
        &Settings::default(),
        &mut |_| {},
    )
    .unwrap();
    let p = report.progress;
    assert_eq!((p.done, p.stored, p.skipped), (4, 3, 1), "{report:?}");
    assert!(
        report.skipped[0].origin.ends_with("archive.mbox:10"),
        "{report:?}"
    );
    let ann = store
        .contact_by_identity(braid::model::IdentityKind::Email, "ann@acme.test")
        .unwrap()
        .unwrap();
    let body = &store.timeline(ann, None, 10).unwrap()[0].body;
    assert_eq!(
        body,
        "Line one.\nFrom the start, quoted by mboxrd.\n>From twice quoted."
    );
    let bob = store
        .contact_by_identity(braid::model::IdentityKind::Email, "bob@acme.test")
        .unwrap()
        .unwrap();
    let bobs = store.timeline(bob, None, 10).unwrap();
    assert_eq!(bobs.len(), 2);
    assert!(bobs[0].body.starts_with("From here on"));

    let again = import::import(
        &mut store,
        Format::Mbox,
        &mbox,
        &options(),
        &Settings::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((again.progress.stored, again.progress.duplicates), (0, 3));
}

fn braid(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("--data-dir")
        .arg(root.join("data"))
        .args(args)
        .env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_LOG")
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("USER", "tester")
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

#[test]
fn cli_import_reports_counts_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let good = root.join("Good");
    write(
        &good.join("cur/1"),
        mail("ann@acme.test", "g1@acme.test", "", "hello").as_bytes(),
    );
    write(
        &good.join("new/2"),
        mail("bob@acme.test", "g2@acme.test", "", "hi").as_bytes(),
    );
    let out = braid(root, &["import", "maildir", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("2 messages: 2 new, 0 already there, 0 skipped"),
        "{stdout}"
    );
    // Again: nothing new.
    let out = braid(
        root,
        &["import", "maildir", good.to_str().unwrap(), "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"], 2);
    assert_eq!(v["stored"], 0);
    assert_eq!(v["duplicates"], 2);

    // A bad file: the rest is imported, the bad one named on stderr, exit status 1.
    let bad = root.join("Bad");
    sample_maildir(&bad);
    let out = braid(
        root,
        &[
            "import",
            "maildir",
            bad.to_str().unwrap(),
            "--me",
            "support@braid.test",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("6 messages: 5 new, 0 already there, 1 skipped"),
        "{stdout}"
    );
    assert!(
        stderr.contains("skipped ") && stderr.contains("not a mail message"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 6 messages could not be imported"),
        "{stderr}"
    );

    // mbox through the CLI, and a missing path.
    let mbox = root.join("a.mbox");
    std::fs::write(&mbox, MBOX).unwrap();
    let out = braid(root, &["import", "mbox", mbox.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("4 messages: 3 new"));
    let out = braid(
        root,
        &["import", "mbox", root.join("nope").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("braid: import of"));
    let out = braid(root, &["import", "tarball", "x"]);
    assert_eq!(out.status.code(), Some(2));
}
