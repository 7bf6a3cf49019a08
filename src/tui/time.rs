//! Time as the TUI shows it (local time, compact ages) and as agents type it (snooze durations).

use crate::model::Millis;

const NO_FIXED_OFFSET: i64 = i64::MIN;
static FIXED_OFFSET: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(NO_FIXED_OFFSET);

/// Show every time at this UTC offset instead of the local one (tests and screenshots that
/// must not depend on the machine's time zone).
pub fn set_fixed_offset(secs: i64) {
    FIXED_OFFSET.store(secs, std::sync::atomic::Ordering::Relaxed);
}

/// The local UTC offset in seconds at `at`, from the C library (tm_gmtoff). `time`'s own
/// local-offset lookup refuses to work in multi-threaded programs, which we always are.
pub fn local_offset_secs(at: Millis) -> i64 {
    let fixed = FIXED_OFFSET.load(std::sync::atomic::Ordering::Relaxed);
    if fixed != NO_FIXED_OFFSET {
        return fixed;
    }
    let t: libc::time_t = (at / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we pass; a zeroed tm is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

fn local(at: Millis) -> time::OffsetDateTime {
    let off = time::UtcOffset::from_whole_seconds(local_offset_secs(at) as i32)
        .unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(off)
}

/// "2026-11-03 14:22" in local time.
pub fn full(at: Millis) -> String {
    let t = local(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Short form for the timeline: "14:22" today, "Nov 03 14:22" this year, else the full date.
pub fn short(at: Millis, now: Millis) -> String {
    let t = local(at);
    let n = local(now);
    if t.date() == n.date() {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else if t.year() == n.year() {
        format!(
            "{} {:02} {:02}:{:02}",
            &format!("{:?}", t.month())[..3],
            t.day(),
            t.hour(),
            t.minute()
        )
    } else {
        full(at)
    }
}

/// A compact age: "now", "42s"… no: "5m", "3h", "2d", "3w", "5mo", "2y".
pub fn age(at: Millis, now: Millis) -> String {
    let s = ((now - at) / 1000).max(0);
    match s {
        0..=59 => "now".into(),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        86_400..=1_209_599 => format!("{}d", s / 86_400),
        1_209_600..=5_183_999 => format!("{}w", s / 604_800),
        5_184_000..=31_535_999 => format!("{}mo", s / 2_592_000),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// Parse a time phrase as typed ("30m", "2h", "tomorrow", "monday 9:00", "9am",
/// "next business morning"...): see [`crate::when`]. Returns the time.
pub fn parse_until(input: &str, now: Millis) -> Result<Millis, String> {
    crate::when::parse(input, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_until("30m", 0).unwrap(), 30 * 60 * 1000);
        assert_eq!(parse_until("1h30m", 0).unwrap(), 90 * 60 * 1000);
        assert_eq!(parse_until(" 2D ", 0).unwrap(), 2 * 86_400_000);
        assert!(parse_until("soon", 0).is_err());
        assert!(parse_until("5", 0).is_err());
        assert!(parse_until("0m", 0).is_err());
        let now = 1_800_000_000_000;
        let t = parse_until("tomorrow", now).unwrap();
        assert!(t > now && t - now <= 2 * 86_400_000);
        let m = parse_until("monday", now).unwrap();
        assert!(m > now && m - now <= 8 * 86_400_000);
    }

    #[test]
    fn ages() {
        assert_eq!(age(0, 30_000), "now");
        assert_eq!(age(0, 5 * 60_000), "5m");
        assert_eq!(age(0, 3 * 3_600_000), "3h");
        assert_eq!(age(0, 2 * 86_400_000), "2d");
        assert_eq!(age(0, 21 * 86_400_000), "3w");
    }
}
