//! `braid contacts`: contacts by id, with every identity (keyset paging with `--after`).

use super::client::{Client, unexpected};
use super::fmt::{Table, age, clip, rfc3339};
use super::{Globals, paged, write_json};
use crate::api::{ContactCard, Request, Response};
use crate::model::{Channel, ContactId, IdentityKind, now_millis};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// At most this many contacts
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Start after this contact id (the `next_after` of the previous page)
    #[arg(long, value_name = "ID")]
    pub after: Option<i64>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct ContactsJson {
    pub contacts: Vec<ContactItemJson>,
    /// Pass as `--after` for the next page (null: this was the last page).
    pub next_after: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ContactItemJson {
    pub id: i64,
    pub name: String,
    pub vip: bool,
    pub created_at: String,
    pub last_seen: String,
    pub last_channel: Option<Channel>,
    pub identities: Vec<IdentityItemJson>,
}

#[derive(Debug, Serialize)]
pub struct IdentityItemJson {
    pub kind: IdentityKind,
    pub value: String,
}

const PAGE: usize = 500;

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "contacts")?;
    let start = args.after.map(ContactId);
    let cards = paged(
        args.limit,
        PAGE,
        |after, n| match client.call(Request::ContactCards {
            after: after.or(start),
            limit: n,
        })? {
            Response::ContactCards(c) => Ok(c),
            other => Err(unexpected("contact_cards", &other)),
        },
        |c: &ContactCard| c.contact.id,
    )?;
    drop(client);
    let rows: Vec<_> = cards.iter().map(|c| c.contact.clone()).collect();
    let items: Vec<ContactItemJson> = cards
        .into_iter()
        .map(|card| {
            let c = card.contact;
            ContactItemJson {
                id: c.id.0,
                name: c.name,
                vip: c.vip,
                created_at: rfc3339(c.created_at),
                last_seen: rfc3339(c.last_seen),
                last_channel: c.last_channel,
                identities: card
                    .identities
                    .into_iter()
                    .map(|i| IdentityItemJson {
                        kind: i.kind,
                        value: i.value,
                    })
                    .collect(),
            }
        })
        .collect();
    let next_after = if rows.len() == args.limit && args.limit > 0 {
        rows.last().map(|c| c.id.0)
    } else {
        None
    };
    if args.json {
        return write_json(
            out,
            &ContactsJson {
                contacts: items,
                next_after,
            },
        );
    }
    if items.is_empty() {
        writeln!(out, "no contacts")?;
        return Ok(());
    }
    let now = now_millis();
    let mut table = Table::new(&[">ID", "NAME", ">SEEN", "LAST", "IDENTITIES"]);
    for (c, row) in items.iter().zip(&rows) {
        let ids = c
            .identities
            .iter()
            .map(|i| format!("{}:{}", i.kind, i.value))
            .collect::<Vec<_>>()
            .join("  ");
        table.row(vec![
            format!("#{}", c.id),
            if c.vip {
                format!("{} ★", clip(&c.name, 28))
            } else {
                clip(&c.name, 28)
            },
            age(row.last_seen, now),
            c.last_channel
                .map(|ch| ch.as_str())
                .unwrap_or("-")
                .to_string(),
            ids,
        ]);
    }
    table.write(out)?;
    match next_after {
        Some(n) => writeln!(out, "{} contacts; more with --after {n}", items.len())?,
        None => writeln!(
            out,
            "{} contact{}",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        )?,
    }
    Ok(())
}
