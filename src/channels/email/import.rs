//! Importing mail history: a Maildir (`cur/` and `new/`, and nested Maildir++ folders) or an
//! mbox file (mboxo or mboxrd `From ` separators, `>From` unquoted) through the one ingest path.
//!
//! Two threads: a reader walks the source, reads and parses each message (MIME, html2text) and
//! hands batches to the caller's thread, which ingests them into the store in large
//! transactions (one commit per [`TX_MESSAGES`] messages). Idempotent like every ingest:
//! importing the same source again adds nothing. A message that cannot be read (I/O error, not a
//! mail message at all) is reported in [`ImportReport::skipped`] and the import goes on; a store
//! error stops it, keeping every batch committed before (re-running resumes, as duplicates are
//! recognised).

use super::mime::{EmailParser, Options, ParsedEmail};
use super::thread::ingest_email;
use crate::ingest::{IngestError, Ingested, Settings};
use crate::model::{Millis, now_millis};
use crate::store::{Store, StoreError};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Messages per write transaction.
pub const TX_MESSAGES: usize = 10_000;
/// Messages per hand-over from the reader thread.
const CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Maildir,
    Mbox,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0} is not a Maildir (no cur/ or new/ in it or below it)")]
    NotMaildir(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{origin}: {source}")]
    Ingest { origin: String, source: IngestError },
}

/// One message that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file, or `mbox-file:line` of its `From ` separator.
    pub origin: String,
    pub reason: String,
}

/// Where an import stands (for a progress bar).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Messages handled so far (stored, duplicates and skipped).
    pub done: usize,
    /// Messages in the source, when known up front (Maildir).
    pub total: Option<usize>,
    /// Bytes of the source read so far, and in all (mbox).
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub stored: usize,
    pub duplicates: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub progress: Progress,
    pub skipped: Vec<Skipped>,
    pub elapsed: Duration,
}

impl ImportReport {
    /// Messages handled per second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.progress.done as f64 / s
        } else {
            0.0
        }
    }
}

enum Item {
    Parsed(Box<ParsedEmail>, String),
    Skipped(Skipped),
}

enum Msg {
    Total(usize, u64),
    Chunk(Vec<Item>, u64),
    Fatal(ImportError),
}

/// Import every message of `path` into the store. `progress` is called after each chunk.
pub fn import(
    store: &mut Store,
    format: Format,
    path: &Path,
    options: &Options,
    settings: &Settings,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Msg>(8);
    let path_owned = path.to_path_buf();
    let options = options.clone();
    let reader = std::thread::Builder::new()
        .name("braid-import-reader".into())
        .spawn(move || {
            let mut parser = EmailParser::new(&options);
            let result = match format {
                Format::Maildir => read_maildir(&path_owned, &mut parser, &tx),
                Format::Mbox => read_mbox(&path_owned, &mut parser, &tx),
            };
            if let Err(e) = result {
                let _ = tx.send(Msg::Fatal(e));
            }
        })
        .map_err(|error| ImportError::Io {
            path: path.to_path_buf(),
            error,
        })?;

    let mut report = ImportReport::default();
    let result = consume(store, &rx, settings, &mut report, progress);
    drop(rx); // a reader still sending stops at its next send
    let _ = reader.join();
    report.elapsed = started.elapsed();
    result.map(|()| report)
}

fn consume(
    store: &mut Store,
    rx: &mpsc::Receiver<Msg>,
    settings: &Settings,
    report: &mut ImportReport,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(), ImportError> {
    // Wait for work outside any transaction; then keep the transaction while work keeps
    // coming, up to TX_MESSAGES, and never hold the write lock idle for long (other processes
    // share the store).
    while let Ok(first) = rx.recv() {
        let tx = store.write()?;
        let batch = tx.start_import_batch()?;
        let now = now_millis();
        let mut in_tx = 0usize;
        let mut msg = first;
        loop {
            match msg {
                Msg::Total(n, bytes) => {
                    report.progress.total = (n > 0).then_some(n);
                    report.progress.bytes_total = bytes;
                }
                Msg::Fatal(e) => {
                    tx.finish_import_batch(batch)?;
                    tx.commit()?;
                    return Err(e);
                }
                Msg::Chunk(items, bytes) => {
                    for item in items {
                        report.progress.done += 1;
                        in_tx += 1;
                        let (email, origin) = match item {
                            Item::Skipped(s) => {
                                report.progress.skipped += 1;
                                report.skipped.push(s);
                                continue;
                            }
                            Item::Parsed(email, origin) => (email, origin),
                        };
                        match ingest_email(&tx, &email, settings, now) {
                            Ok(Ingested::Stored { .. }) => report.progress.stored += 1,
                            Ok(Ingested::Duplicate { .. }) => report.progress.duplicates += 1,
                            Err(IngestError::Store(e)) => return Err(e.into()),
                            Err(e) => {
                                report.progress.skipped += 1;
                                report.skipped.push(Skipped {
                                    origin,
                                    reason: e.to_string(),
                                });
                            }
                        }
                    }
                    report.progress.bytes_done = bytes;
                    progress(&report.progress);
                }
            }
            if in_tx >= TX_MESSAGES {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(m) => msg = m,
                Err(_) => break,
            }
        }
        tx.finish_import_batch(batch)?;
        tx.commit()?;
    }
    Ok(())
}

/// The time of a file, for messages without a usable Date.
fn mtime_millis(meta: &std::fs::Metadata) -> Millis {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_else(now_millis)
}

/// The message files of a Maildir: `cur/` and `new/` of the folder itself and of every folder
/// below it that has them (Maildir++ `.Sub.Folder` and nested layouts), sorted by path so an
/// import is deterministic. `tmp/` is never read (deliveries in progress).
pub fn maildir_files(root: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ImportError::Io { path, error }
    };
    let mut files = Vec::new();
    let mut found_maildir = false;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let sub = entry.path();
            if name == "cur" || name == "new" {
                found_maildir = true;
                let mut msgs: Vec<PathBuf> = std::fs::read_dir(&sub)
                    .map_err(io(&sub))?
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .collect();
                msgs.sort();
                files.extend(msgs);
            } else if name != "tmp" {
                dirs.push(sub);
            }
        }
    }
    if !found_maildir {
        return Err(ImportError::NotMaildir(root.to_path_buf()));
    }
    Ok(files)
}

fn read_maildir(
    root: &Path,
    parser: &mut EmailParser,
    tx: &mpsc::SyncSender<Msg>,
) -> Result<(), ImportError> {
    let files = maildir_files(root)?;
    if tx.send(Msg::Total(files.len(), 0)).is_err() {
        return Ok(());
    }
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut buf = Vec::new();
    for path in files {
        let item = match read_file(&path, &mut buf) {
            Ok(mtime) => parse_item(parser, &buf, mtime, || path.display().to_string()),
            Err(e) => Item::Skipped(Skipped {
                origin: path.display().to_string(),
                reason: e.to_string(),
            }),
        };
        chunk.push(item);
        if chunk.len() == CHUNK && tx.send(Msg::Chunk(std::mem::take(&mut chunk), 0)).is_err() {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Msg::Chunk(chunk, 0));
    }
    Ok(())
}

fn read_file(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<Millis> {
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    buf.clear();
    f.read_to_end(buf)?;
    Ok(mtime_millis(&meta))
}

fn parse_item(
    parser: &mut EmailParser,
    raw: &[u8],
    fallback: Millis,
    origin: impl Fn() -> String,
) -> Item {
    if !looks_like_mail(raw) {
        return Item::Skipped(Skipped {
            origin: origin(),
            reason: "not a mail message (no header lines at the start)".into(),
        });
    }
    Item::Parsed(Box::new(parser.parse(raw, fallback)), origin())
}

/// A message starts with a header line: `Name: value` with a printable ASCII name (or the
/// `From ` line some tools leave at the top).
pub fn looks_like_mail(raw: &[u8]) -> bool {
    let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = &raw[..line_end];
    if line.starts_with(b"From ") {
        return true;
    }
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':'),
        _ => false,
    }
}

/// Read an mbox file message by message (streaming: the file may be larger than memory).
fn read_mbox(
    path: &Path,
    parser: &mut EmailParser,
    tx: &mpsc::SyncSender<Msg>,
) -> Result<(), ImportError> {
    let io = |error| ImportError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mtime = mtime_millis(&meta);
    if tx.send(Msg::Total(0, meta.len())).is_err() {
        return Ok(());
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut message: Vec<u8> = Vec::new();
    let mut start_line = 0usize; // line number of the current message's separator
    let mut line_no = 0usize;
    let mut prev_blank = true;
    let mut bytes = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK);
    let display = path.display().to_string();
    let flush =
        |message: &mut Vec<u8>, start: usize, chunk: &mut Vec<Item>, parser: &mut EmailParser| {
            // The blank line before the next separator belongs to the format, not the message.
            if message.ends_with(b"\r\n\r\n") {
                message.truncate(message.len() - 2);
            } else if message.ends_with(b"\n\n") {
                message.truncate(message.len() - 1);
            }
            if start > 0 || !message.iter().all(u8::is_ascii_whitespace) {
                chunk.push(parse_item(parser, message, mtime, || {
                    format!("{display}:{start}")
                }));
            }
            message.clear();
        };
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n as u64;
        if prev_blank && is_separator(&line) {
            if start_line > 0 || !message.is_empty() {
                flush(&mut message, start_line, &mut chunk, parser);
                if chunk.len() >= CHUNK
                    && tx
                        .send(Msg::Chunk(std::mem::take(&mut chunk), bytes))
                        .is_err()
                {
                    return Ok(());
                }
            }
            start_line = line_no;
            prev_blank = false;
            continue;
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        // mboxrd: one level of '>' before "From " was added on writing.
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            message.extend_from_slice(&line[1..]);
        } else {
            message.extend_from_slice(&line);
        }
    }
    if start_line > 0 || !message.is_empty() {
        flush(&mut message, start_line, &mut chunk, parser);
    }
    if !chunk.is_empty() {
        let _ = tx.send(Msg::Chunk(chunk, bytes));
    }
    Ok(())
}

/// `From sender date...`: a separator line has an address-like token and a date after `From `.
fn is_separator(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let rest = String::from_utf8_lossy(rest);
    let mut words = rest.split_whitespace();
    words.next().is_some() && words.clone().count() >= 1 && rest.bytes().any(|b| b.is_ascii_digit())
}
