//! IMAP in: initial sync newest first, then IDLE, with a UID reconciliation at every wake-up.
//!
//! Per folder the store keeps a cursor `uidvalidity high low` (channel `email`, the account,
//! key `imap:FOLDER`): every message with a UID in `low..=high` is stored. It is written in the
//! SAME transaction as the messages of each batch, so a crash at any point loses nothing (the
//! batch is fetched again) and duplicates nothing (ingest is idempotent on the Message-ID).
//!
//! - Initial sync: `high` is the folder's newest UID when it was first seen; batches walk down
//!   from there (`low` falls), so the newest mail is in the inbox first while older mail streams
//!   in. New mail (UIDs above `high`) is picked up between batches.
//! - Afterwards: IDLE; on any server news, and at least every `idle_refresh`, the folder is
//!   reconciled by UID (`UID FETCH high+1:*`) rather than trusting unsolicited responses (the
//!   client library drops those past its queue).
//! - A changed UIDVALIDITY: the folder is listed again with each message's Message-ID; those
//!   already stored are matched (not downloaded, not duplicated), the rest are fetched.
//! - Limits: a message over the parser's `max_message_bytes` has only its header downloaded.
//!
//! Store work runs on one blocking thread per account ([`Ingestor`]) while the next batch is
//! being fetched.

use super::account::EmailAccount;
use super::mime::{EmailParser, Options};
use super::net::{ImapSession, NetError, next_within, timed};
use super::thread::ingest_email;
use crate::ingest::{IngestError, Ingested, Settings};
use crate::model::{Millis, now_millis};
use crate::store::Store;
use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Messages per fetch batch (and per store transaction), at most.
const BATCH_MESSAGES: usize = 250;
/// Bytes per fetch batch, about.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Batches fetched ahead of the store.
const AHEAD: usize = 2;
/// During a long initial sync, new mail is looked for this often.
const NEW_MAIL_EVERY: Duration = Duration::from_secs(3);

/// What is stored of a folder's sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderCursor {
    pub uidvalidity: u32,
    /// Every message with a UID in `low..=high` is stored (none when `low > high`).
    pub high: u32,
    pub low: u32,
}

impl FolderCursor {
    pub fn key(folder: &str) -> String {
        format!("imap:{folder}")
    }

    fn encode(&self) -> String {
        format!("{} {} {}", self.uidvalidity, self.high, self.low)
    }

    fn decode(s: &str) -> Option<FolderCursor> {
        let mut it = s.split_whitespace().map(str::parse::<u32>);
        let c = FolderCursor {
            uidvalidity: it.next()?.ok()?,
            high: it.next()?.ok()?,
            low: it.next()?.ok()?,
        };
        Some(c)
    }

    /// Nothing stored yet; the folder's newest UID is `newest`.
    fn fresh(uidvalidity: u32, newest: u32) -> FolderCursor {
        FolderCursor {
            uidvalidity,
            high: newest,
            low: newest.saturating_add(1),
        }
    }

    /// Older mail is still to be fetched.
    pub fn backfill_left(&self) -> bool {
        self.low > 1
    }
}

/// One fetched message.
pub(crate) struct RawMail {
    uid: u32,
    bytes: Vec<u8>,
    /// The full size when only the header was downloaded.
    header_only_of: Option<usize>,
    internal_date: Option<Millis>,
}

enum Job {
    Cursor(
        String,
        oneshot::Sender<Result<Option<FolderCursor>, String>>,
    ),
    Known(
        Vec<String>,
        oneshot::Sender<Result<HashSet<String>, String>>,
    ),
    Batch {
        folder: String,
        mails: Vec<RawMail>,
        cursor: FolderCursor,
        done: oneshot::Sender<Result<BatchReport, String>>,
    },
}

/// What one stored batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    pub stored: usize,
    pub duplicates: usize,
    pub skipped: usize,
}

impl std::ops::AddAssign for BatchReport {
    fn add_assign(&mut self, o: BatchReport) {
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.skipped += o.skipped;
    }
}

/// The store side of one account's sync: a blocking thread with its own connection and parser.
#[derive(Clone)]
pub(crate) struct Ingestor {
    tx: mpsc::Sender<Job>,
}

impl Ingestor {
    pub(crate) fn start(
        store_path: &Path,
        account: &EmailAccount,
        settings: Settings,
    ) -> Result<Ingestor, NetError> {
        let (tx, mut rx) = mpsc::channel::<Job>(AHEAD + 2);
        let path = store_path.to_path_buf();
        let name = account.name.clone();
        let options = Options::new(&account.name, &[account.address.as_str()]);
        std::thread::Builder::new()
            .name(format!("braid-imap-{}", account.name))
            .spawn(move || {
                let mut store = match Store::open(&path) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("email {name}: cannot open the store: {e}");
                        return;
                    }
                };
                let mut parser = EmailParser::new(&options);
                while let Some(job) = rx.blocking_recv() {
                    match job {
                        Job::Cursor(folder, reply) => {
                            let r = store
                                .cursor("email", &name, &FolderCursor::key(&folder))
                                .map(|v| v.as_deref().and_then(FolderCursor::decode))
                                .map_err(|e| e.to_string());
                            let _ = reply.send(r);
                        }
                        Job::Known(ids, reply) => {
                            let r = store
                                .known_email_ids(&name, &ids)
                                .map_err(|e| e.to_string());
                            let _ = reply.send(r);
                        }
                        Job::Batch {
                            folder,
                            mails,
                            cursor,
                            done,
                        } => {
                            let r = store_batch(
                                &mut store,
                                &mut parser,
                                &name,
                                &folder,
                                mails,
                                cursor,
                                &settings,
                            );
                            let _ = done.send(r);
                        }
                    }
                }
            })
            .map_err(|e| NetError::Setup(format!("cannot start the email store thread: {e}")))?;
        Ok(Ingestor { tx })
    }

    async fn ask<T>(
        &self,
        job: Job,
        rx: oneshot::Receiver<Result<T, String>>,
    ) -> Result<T, NetError> {
        let gone = || NetError::Setup("the email store thread stopped".into());
        self.tx.send(job).await.map_err(|_| gone())?;
        rx.await
            .map_err(|_| gone())?
            .map_err(|e| NetError::Setup(format!("store: {e}")))
    }

    async fn cursor(&self, folder: &str) -> Result<Option<FolderCursor>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.ask(Job::Cursor(folder.to_string(), tx), rx).await
    }

    async fn known(&self, ids: Vec<String>) -> Result<HashSet<String>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.ask(Job::Known(ids, tx), rx).await
    }

    async fn batch(
        &self,
        folder: &str,
        mails: Vec<RawMail>,
        cursor: FolderCursor,
    ) -> Result<oneshot::Receiver<Result<BatchReport, String>>, NetError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job::Batch {
                folder: folder.to_string(),
                mails,
                cursor,
                done,
            })
            .await
            .map_err(|_| NetError::Setup("the email store thread stopped".into()))?;
        Ok(rx)
    }
}

fn store_batch(
    store: &mut Store,
    parser: &mut EmailParser,
    account: &str,
    folder: &str,
    mails: Vec<RawMail>,
    cursor: FolderCursor,
    settings: &Settings,
) -> Result<BatchReport, String> {
    let now = now_millis();
    let parsed: Vec<_> = mails
        .iter()
        .map(|m| {
            let fallback = m.internal_date.unwrap_or(now);
            let mut email = match m.header_only_of {
                Some(size) => parser.parse_header_only(&m.bytes, size, fallback),
                None => parser.parse(&m.bytes, fallback),
            };
            // Where the message lives on the server: `:save` fetches its attachments there.
            if let Some(serde_json::Value::Object(meta)) = email.inbound.meta.as_mut() {
                meta.insert(
                    "imap".into(),
                    serde_json::json!({
                        "folder": folder,
                        "uidvalidity": cursor.uidvalidity,
                        "uid": m.uid,
                    }),
                );
            }
            email
        })
        .collect();
    let mut report = BatchReport::default();
    let tx = store.write().map_err(|e| e.to_string())?;
    let batch = tx.start_import_batch().map_err(|e| e.to_string())?;
    for (email, mail) in parsed.iter().zip(&mails) {
        match ingest_email(&tx, email, settings, now) {
            Ok(Ingested::Stored { .. }) => report.stored += 1,
            Ok(Ingested::Duplicate { .. }) => report.duplicates += 1,
            Err(IngestError::Store(e)) => return Err(e.to_string()),
            Err(e) => {
                report.skipped += 1;
                tracing::warn!(account, folder, uid = mail.uid, "message not stored: {e}");
            }
        }
    }
    tx.set_cursor(
        "email",
        account,
        &FolderCursor::key(folder),
        &cursor.encode(),
    )
    .map_err(|e| e.to_string())?;
    tx.finish_import_batch(batch).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(report)
}

/// How a folder's sync is going, for the status line.
pub(crate) trait Progress: Send + Sync {
    fn syncing(&self, folder: &str, done: usize, total: usize);
}

/// A listed message: UID, size, and (when re-matching) its Message-ID.
struct Listed {
    uid: u32,
    size: u64,
    message_id: Option<String>,
}

/// `1:5,7,9:12` for sorted (either order) UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The Message-ID in a `BODY[HEADER.FIELDS (MESSAGE-ID)]` answer, without `<>`.
fn header_message_id(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let mut value = String::new();
    let mut in_field = false;
    for line in text.lines() {
        if in_field && line.starts_with([' ', '\t']) {
            value.push_str(line.trim());
            continue;
        }
        in_field = false;
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("message-id")
        {
            value = v.trim().to_string();
            in_field = true;
        }
    }
    let id = value
        .trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    (!id.is_empty() && id.len() <= 900).then_some(id)
}

/// One folder's sync on a logged-in session.
pub(crate) struct FolderSync<'a> {
    pub account: &'a EmailAccount,
    pub folder: &'a str,
    pub ingest: &'a Ingestor,
    pub progress: &'a dyn Progress,
    pub max_message_bytes: usize,
}

/// What one pass over a folder did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub listed: usize,
    pub fetched: usize,
    pub matched: usize,
    pub stored: BatchReport,
    pub uidvalidity_changed: bool,
}

impl FolderSync<'_> {
    fn limit(&self) -> Duration {
        self.account.timeout
    }

    /// List the messages of a UID range (`5:*`, `1:400`).
    async fn list(
        &self,
        sess: &mut ImapSession,
        range: &str,
        with_ids: bool,
    ) -> Result<Vec<Listed>, NetError> {
        let items = if with_ids {
            "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        } else {
            "(UID RFC822.SIZE)"
        };
        let limit = self.limit();
        let mut stream = timed(limit, "UID FETCH", sess.uid_fetch(range, items)).await?;
        let mut out = Vec::new();
        let what = format!("listing {}", self.folder);
        while let Some(item) = next_within(&mut stream, limit, &what).await? {
            let f = item?;
            let Some(uid) = f.uid else { continue };
            out.push(Listed {
                uid,
                size: u64::from(f.size.unwrap_or(0)),
                message_id: if with_ids {
                    f.header().and_then(header_message_id)
                } else {
                    None
                },
            });
        }
        Ok(out)
    }

    /// Fetch the messages `uids` (whole, or their header when `header_only`).
    async fn fetch(
        &self,
        sess: &mut ImapSession,
        uids: &[(u32, u64)],
        header_only: bool,
    ) -> Result<Vec<RawMail>, NetError> {
        let set = uid_set(&uids.iter().map(|(u, _)| *u).collect::<Vec<_>>());
        let items = if header_only {
            "(UID INTERNALDATE BODY.PEEK[HEADER])"
        } else {
            "(UID INTERNALDATE BODY.PEEK[])"
        };
        let limit = self.limit();
        let mut stream = timed(limit, "UID FETCH", sess.uid_fetch(&set, items)).await?;
        let mut out = Vec::with_capacity(uids.len());
        let what = format!("fetching from {}", self.folder);
        while let Some(item) = next_within(&mut stream, limit, &what).await? {
            let f = item?;
            let Some(uid) = f.uid else { continue };
            let bytes = if header_only { f.header() } else { f.body() };
            let Some(bytes) = bytes else { continue };
            let size = uids
                .iter()
                .find(|(u, _)| *u == uid)
                .map(|(_, s)| *s as usize);
            out.push(RawMail {
                uid,
                bytes: bytes.to_vec(),
                header_only_of: if header_only { size } else { None },
                internal_date: f.internal_date().map(|d| d.timestamp_millis()),
            });
        }
        Ok(out)
    }

    /// Fetch `whole` messages entirely and only the header of `heads` (over the size limit).
    async fn fetch_split(
        &self,
        sess: &mut ImapSession,
        whole: &[(u32, u64)],
        heads: &[(u32, u64)],
    ) -> Result<Vec<RawMail>, NetError> {
        let mut mails = Vec::new();
        if !whole.is_empty() {
            mails.extend(self.fetch(sess, whole, false).await?);
        }
        if !heads.is_empty() {
            mails.extend(self.fetch(sess, heads, true).await?);
        }
        Ok(mails)
    }

    /// One pass: EXAMINE, new mail, then (unless `new_only`) older mail down to UID 1.
    /// `stop` is checked between batches.
    pub async fn pass(
        &self,
        sess: &mut ImapSession,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<PassReport, NetError> {
        let mut report = PassReport::default();
        let mb = timed(self.limit(), "EXAMINE", sess.examine(self.folder)).await?;
        let uv = mb.uid_validity.ok_or_else(|| {
            NetError::Protocol(format!("{}: the server gave no UIDVALIDITY", self.folder))
        })?;
        let stored = self.ingest.cursor(self.folder).await?;
        let newest = match mb.uid_next {
            Some(n) => n.saturating_sub(1),
            None if mb.exists == 0 => 0,
            None => self
                .list(sess, "*", false)
                .await?
                .iter()
                .map(|l| l.uid)
                .max()
                .unwrap_or(0),
        };
        let (mut cur, rematch) = match stored {
            Some(c) if c.uidvalidity == uv => (c, false),
            Some(old) => {
                tracing::warn!(
                    account = %self.account.name,
                    folder = self.folder,
                    old = old.uidvalidity,
                    new = uv,
                    "UIDVALIDITY changed: matching the folder's messages by Message-ID again"
                );
                report.uidvalidity_changed = true;
                (FolderCursor::fresh(uv, newest), true)
            }
            None => (FolderCursor::fresh(uv, newest), false),
        };
        if mb.exists == 0 {
            if stored != Some(cur) {
                let rx = self.ingest.batch(self.folder, Vec::new(), cur).await?;
                rx.await
                    .map_err(|_| NetError::Setup("store thread stopped".into()))?
                    .map_err(|e| NetError::Setup(format!("store: {e}")))?;
            }
            return Ok(report);
        }
        self.new_mail(sess, &mut cur, &mut report).await?;
        if cur.backfill_left() {
            let mut listed = self
                .list(sess, &format!("1:{}", cur.low - 1), rematch)
                .await?;
            listed.retain(|l| l.uid < cur.low);
            listed.sort_unstable_by_key(|l| std::cmp::Reverse(l.uid));
            report.listed += listed.len();
            let total = listed.len();
            let mut done = 0usize;
            let known = if rematch {
                let ids: Vec<String> = listed.iter().filter_map(|l| l.message_id.clone()).collect();
                self.ingest.known(ids).await?
            } else {
                HashSet::new()
            };
            let mut pending: VecDeque<oneshot::Receiver<Result<BatchReport, String>>> =
                VecDeque::new();
            let mut last_new = Instant::now();
            let mut i = 0;
            while i < listed.len() {
                if stop() {
                    break;
                }
                // One batch: up to BATCH_MESSAGES / BATCH_BYTES, newest first.
                let mut j = i;
                let mut bytes = 0u64;
                while j < listed.len() && j - i < BATCH_MESSAGES && (bytes < BATCH_BYTES || j == i)
                {
                    bytes += listed[j].size;
                    j += 1;
                }
                let chunk = &listed[i..j];
                let mut whole = Vec::new();
                let mut heads = Vec::new();
                for l in chunk {
                    if l.message_id.as_ref().is_some_and(|id| known.contains(id)) {
                        report.matched += 1;
                    } else if l.size as usize > self.max_message_bytes {
                        heads.push((l.uid, l.size));
                    } else {
                        whole.push((l.uid, l.size));
                    }
                }
                let mails = self.fetch_split(sess, &whole, &heads).await?;
                report.fetched += mails.len();
                cur.low = if j == listed.len() {
                    1
                } else {
                    chunk[chunk.len() - 1].uid
                };
                while pending.len() >= AHEAD {
                    if let Some(rx) = pending.pop_front() {
                        report.stored += wait(rx).await?;
                    }
                }
                pending.push_back(self.ingest.batch(self.folder, mails, cur).await?);
                done += chunk.len();
                self.progress.syncing(self.folder, done, total);
                i = j;
                if last_new.elapsed() >= NEW_MAIL_EVERY {
                    last_new = Instant::now();
                    while let Some(rx) = pending.pop_front() {
                        report.stored += wait(rx).await?;
                    }
                    self.new_mail(sess, &mut cur, &mut report).await?;
                }
            }
            while let Some(rx) = pending.pop_front() {
                report.stored += wait(rx).await?;
            }
        } else if stored != Some(cur) {
            let rx = self.ingest.batch(self.folder, Vec::new(), cur).await?;
            report.stored += wait(rx).await?;
        }
        Ok(report)
    }

    /// Fetch everything above `cur.high`, oldest first, raising `high` batch by batch.
    async fn new_mail(
        &self,
        sess: &mut ImapSession,
        cur: &mut FolderCursor,
        report: &mut PassReport,
    ) -> Result<(), NetError> {
        // `N:*` always includes the newest message, even when its UID is below N.
        let mut listed = self
            .list(sess, &format!("{}:*", cur.high + 1), false)
            .await?;
        listed.retain(|l| l.uid > cur.high);
        if listed.is_empty() {
            return Ok(());
        }
        listed.sort_unstable_by_key(|l| l.uid);
        report.listed += listed.len();
        for chunk in listed.chunks(BATCH_MESSAGES) {
            let (heads, whole): (Vec<_>, Vec<_>) = chunk
                .iter()
                .map(|l| (l.uid, l.size))
                .partition(|(_, size)| *size as usize > self.max_message_bytes);
            let mails = self.fetch_split(sess, &whole, &heads).await?;
            report.fetched += mails.len();
            if let Some(last) = chunk.last() {
                cur.high = last.uid;
            }
            let rx = self.ingest.batch(self.folder, mails, *cur).await?;
            report.stored += wait(rx).await?;
        }
        Ok(())
    }
}

async fn wait(rx: oneshot::Receiver<Result<BatchReport, String>>) -> Result<BatchReport, NetError> {
    rx.await
        .map_err(|_| NetError::Setup("the email store thread stopped".into()))?
        .map_err(|e| NetError::Setup(format!("store: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 7, 9, 10, 11]), "1:3,5,7,9:11");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn cursors_round_trip() {
        let c = FolderCursor {
            uidvalidity: 7,
            high: 100,
            low: 40,
        };
        assert_eq!(FolderCursor::decode(&c.encode()), Some(c));
        assert_eq!(FolderCursor::decode("garbage"), None);
        let f = FolderCursor::fresh(3, 0);
        assert!(!f.backfill_left());
        assert!(FolderCursor::fresh(3, 10).backfill_left());
    }

    #[test]
    fn message_ids_from_a_header_fields_answer() {
        assert_eq!(
            header_message_id(b"Message-ID: <abc@x.example>\r\n\r\n").as_deref(),
            Some("abc@x.example")
        );
        assert_eq!(
            header_message_id(b"message-id:\r\n <folded@x>\r\n\r\n").as_deref(),
            Some("folded@x")
        );
        assert_eq!(header_message_id(b"\r\n"), None);
    }
}
