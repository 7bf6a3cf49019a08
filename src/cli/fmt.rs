//! Text output helpers: times, ages, aligned tables, truncation.

use crate::model::Millis;
use std::io::{self, Write};
use std::sync::OnceLock;
use time::{OffsetDateTime, UtcOffset};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Find the local UTC offset. Call once at the start of `main`, while the process has one
/// thread: the `time` crate refuses to read it later (it is not thread-safe on Unix).
pub fn init_local_offset() {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let _ = LOCAL_OFFSET.set(offset);
}

fn local_offset() -> UtcOffset {
    LOCAL_OFFSET.get().copied().unwrap_or(UtcOffset::UTC)
}

fn datetime(ms: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Local time, minutes: `2026-03-01 09:15`.
pub fn local_time(ms: Millis) -> String {
    let t = datetime(ms).to_offset(local_offset());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Local date: `2026-03-01`.
pub fn local_date(ms: Millis) -> String {
    let t = datetime(ms).to_offset(local_offset());
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// UTC, RFC 3339, seconds: `2026-03-01T09:15:00Z`. The one time format of `--json`.
pub fn rfc3339(ms: Millis) -> String {
    let t = datetime(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How long ago, compactly: `now`, `5m`, `3h`, `2d`, `7w`, `2y`.
pub fn age(ms: Millis, now: Millis) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..60 => "now".into(),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        86_400..1_209_600 => format!("{}d", s / 86_400),
        1_209_600..31_536_000 => format!("{}w", s / 604_800),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// One safe line, at most `width` columns: newlines become spaces, a cut ends with `…`.
pub fn clip(s: &str, width: usize) -> String {
    // The output wall (sanitize.rs): anything that was not cleaned at ingest shows escaped,
    // never raw; newlines and runs of spaces become one space.
    let flat = crate::sanitize::for_terminal_line(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.width() <= width {
        return flat;
    }
    let mut out = String::new();
    let mut w = 0;
    for c in flat.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// A plain aligned table: columns separated by two spaces, the last one not padded.
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Column headers; a header starting with `>` is right-aligned (the `>` is not shown).
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers
                .iter()
                .map(|h| h.trim_start_matches('>').to_string())
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// A row; every cell passes the output wall (its text may come from outside).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| crate::sanitize::for_terminal_line(&c).into_owned())
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.width());
            }
        }
        self.write_row(out, &self.headers, &widths)?;
        for row in &self.rows {
            self.write_row(out, row, &widths)?;
        }
        Ok(())
    }

    fn write_row(&self, out: &mut dyn Write, cells: &[String], widths: &[usize]) -> io::Result<()> {
        let mut line = String::new();
        let last = widths.len().saturating_sub(1);
        for (i, width) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = width.saturating_sub(cell.width());
            if i > 0 {
                line.push_str("  ");
            }
            if self.right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i < last {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        writeln!(out, "{}", line.trim_end())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_by_display_width() {
        let mut t = Table::new(&[">ID", "NAME", "NOTE"]);
        t.row(vec!["#1".into(), "Zoë ✉".into(), "x".into()]);
        t.row(vec!["#100".into(), "Bo".into(), "".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "  ID  NAME   NOTE\n  #1  Zoë ✉  x\n#100  Bo\n");
    }

    #[test]
    fn times_and_ages() {
        assert_eq!(rfc3339(1_767_312_000_000), "2026-01-02T00:00:00Z");
        assert_eq!(age(0, 59_000), "now");
        assert_eq!(age(0, 5 * 60_000), "5m");
        assert_eq!(age(0, 3 * 3_600_000), "3h");
        assert_eq!(age(0, 2 * 86_400_000), "2d");
        assert_eq!(age(0, 21 * 86_400_000), "3w");
        assert_eq!(clip("hello\nworld", 20), "hello world");
        assert_eq!(clip("hello world", 6), "hello…");
        assert_eq!(clip("a\x1b[2J  b", 20), "a\\u{1b}[2J b");
    }

    #[test]
    fn table_cells_are_escaped() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x\x1b]0;t\x07".into(), "y\nz".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "A                 B\nx\\u{1b}]0;t\\u{7}  y z\n");
    }
}
