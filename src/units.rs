//! Numbers and durations as people read and write them: for status lines and reports, and the
//! parsers the config types of every module share (so a channel's config needs nothing from
//! `config.rs`).

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration as one reads it: `45s`, `30m`, `2h`, `1h30m`, `3d`, `2d4h`.
pub fn duration_label(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// A duration like "7d", "36h", "90m", "45s", "1d12h" or "2w", in milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("bad duration '{s}' (use e.g. 30m, 36h, 7d, 2w or 1d12h)");
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let ms: i64 = match unit {
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// A point in time as typed for `--since`, `--until` and the audit view's jumps: a date
/// (`2026-11-03`, midnight UTC, like search's `after:`), a UTC time (`2026-11-03T14:00:00Z`,
/// the form `--json` prints) or a duration ago (`2h`, `3d`: that long before `now`).
pub fn parse_instant(s: &str, now: i64) -> Result<i64, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "bad time '{s}' (use a date 2026-11-03, a UTC time 2026-11-03T14:00:00Z, or an age like 2h, 3d)"
        )
    };
    if let Ok(d) = time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp() * 1000);
    }
    if let Ok(d) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Ok((d.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    match parse_duration(t) {
        Ok(ago) => Ok(now - ago),
        Err(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let day = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(parse_instant("2026-01-01", 0), Ok(day));
        assert_eq!(
            parse_instant("2026-01-01T01:00:00Z", 0),
            Ok(day + 3_600_000)
        );
        assert_eq!(parse_instant("2h", day), Ok(day - 7_200_000));
        assert!(
            parse_instant("yesterday-ish", day)
                .unwrap_err()
                .contains("bad time")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration("36h"), Ok(36 * 3_600_000));
        assert_eq!(parse_duration("90m"), Ok(90 * 60_000));
        assert_eq!(parse_duration("45s"), Ok(45_000));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400_000));
        assert_eq!(parse_duration("1d12h"), Ok(36 * 3_600_000));
        assert_eq!(parse_duration(" 1D "), Ok(86_400_000));
        assert_eq!(parse_duration("0d"), Ok(0));
        assert_eq!(parse_duration("250ms"), Ok(250));
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "-1d",
            "1.5d",
            "99999999999999999999d",
            "7d x",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
