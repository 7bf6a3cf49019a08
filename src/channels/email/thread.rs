//! Email threading on top of omnichannel threading.
//!
//! [`ingest_email`] runs the one ingest path ([`crate::ingest::ingest_in`]), which puts the
//! message in its contact's one open conversation (DESIGN.md). Then the mail headers get their
//! say, in the same transaction:
//!
//! - The message answers (In-Reply-To, else References, newest first) a message we have, and
//!   that message's conversation belongs to ANOTHER contact: someone the customer copied (a
//!   colleague, an assistant, a shared mailbox) answered in the customer's thread. The reply
//!   joins that conversation and its contact's timeline, so the agent reads the thread whole in
//!   one place; the author line still names who wrote it, and the writer keeps a contact (with
//!   their address) of their own. This applies while the referenced conversation is active or
//!   was resolved within the reopen window (then an inbound reply reopens it, as the customer's
//!   own message would); an answer to a long-closed thread follows the omnichannel rule.
//! - The referenced conversation is the SAME contact's: the omnichannel rule wins. The customer
//!   has at most one open conversation, and an old mail thread they answer is already in their
//!   one timeline.
//!
//! Nothing is moved for a duplicate: re-delivery and re-import are no-ops.

use super::mime::ParsedEmail;
use crate::ingest::{IngestError, Ingested, Settings, ingest_in};
use crate::model::{Direction, Millis, Status};
use crate::store::Tx;

/// Ingest one parsed email inside the caller's transaction, threaded as described above.
pub fn ingest_email(
    tx: &Tx<'_>,
    email: &ParsedEmail,
    settings: &Settings,
    now: Millis,
) -> Result<Ingested, IngestError> {
    let out = ingest_in(tx, &email.inbound, settings, now)?;
    let Ingested::Stored {
        message,
        conversation,
        contact,
        new_conversation,
    } = out
    else {
        return Ok(out);
    };
    let refs = email.thread_refs();
    if refs.is_empty() {
        return Ok(out);
    }
    let account = crate::sanitize::line(&email.inbound.account);
    let Some(thread) = tx.find_referenced(&account, &refs)? else {
        return Ok(out);
    };
    if thread.conversation == conversation || thread.contact == contact {
        return Ok(out);
    }
    let joinable = match thread.status {
        Status::Resolved => thread
            .resolved_at
            .is_some_and(|at| email.inbound.sent_at - at <= settings.reopen_window_ms),
        _ => true,
    };
    if !joinable {
        return Ok(out);
    }
    tx.move_message(
        message,
        conversation,
        thread.conversation,
        new_conversation,
        now,
    )?;
    if email.inbound.direction == Direction::In {
        tx.reopen(thread.conversation, now, "ingest")?;
        tx.touch_contact(thread.contact, email.inbound.sent_at, email.inbound.channel)?;
    }
    Ok(Ingested::Stored {
        message,
        conversation: thread.conversation,
        contact: thread.contact,
        new_conversation: false,
    })
}
