//! Email: raw RFC 5322 messages in, through the one ingest path.
//!
//! - [`mime`]: one raw message -> [`ParsedEmail`] (an [`crate::ingest::Inbound`] plus its
//!   threading headers), bounded against hostile input;
//! - [`thread`]: Message-ID / In-Reply-To / References on top of omnichannel threading;
//! - [`import`]: `braid import maildir|mbox PATH`.
//!
//! IMAP in and SMTP out build on these.

pub mod import;
pub mod mime;
pub mod thread;

pub use mime::{EmailParser, Limits, Options, ParsedEmail};
pub use thread::ingest_email;
