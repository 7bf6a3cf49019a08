//! Time phrases as agents type them (`:snooze`, `:send-at`, `:task`, `braid reply --at`):
//! "30m", "2h", "1h30m", "3d", "tomorrow", "tomorrow 10:00", "monday 9:00", "mon 9am",
//! "9:00" (today if still ahead, else tomorrow), "2026-12-08 14:00", "2026-12-08",
//! "next business morning". Pure: the zone (the UTC offset at an instant) and the next
//! business opening are given by the caller, so every rule is table-tested, DST included.
//!
//! Wall times are the agent's (the client's) local time. A wall time that a DST change skips
//! (02:30 on the spring-forward night) moves forward by the gap (03:30); one that happens twice
//! (the autumn night) is the first of the two.

use crate::model::Millis;

/// What works, for error messages.
pub const EXAMPLES: &str = "30m, 2h, 1h30m, 3d, tomorrow, tomorrow 10:00, monday 9:00, mon 9am, \
     9:00, 2026-12-08 14:00, 2026-12-08, next business morning";

/// The hour a day without a time means ("tomorrow", "monday", "2026-12-08").
const DEFAULT_HOUR: u8 = 9;

/// The UTC offset (seconds) of a zone at an instant.
pub type OffsetAt<'a> = &'a dyn Fn(Millis) -> i64;
/// The next business opening after an instant (the SLA's business hours).
pub type NextOpen<'a> = &'a dyn Fn(Millis) -> Millis;

/// Parse `input` at `now` in the local zone of this process (the client's), with the default
/// business hours (weekdays from 09:00).
pub fn parse(input: &str, now: Millis) -> Result<Millis, String> {
    parse_in(input, now, &crate::tui::time::local_offset_secs, None)
}

/// Parse `input` at `now` in the zone `offset_at`; "next business morning" asks `next_open`
/// (None: the next weekday 09:00 of that zone). The result is always after `now`.
pub fn parse_in(
    input: &str,
    now: Millis,
    offset_at: OffsetAt<'_>,
    next_open: Option<NextOpen<'_>>,
) -> Result<Millis, String> {
    let bad = |why: &str| format!("bad time '{}': {why} (try {EXAMPLES})", input.trim());
    let lower = input.trim().to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let words: &[&str] = match words.as_slice() {
        ["in", rest @ ..] => rest,
        w => w,
    };
    if words.is_empty() {
        return Err(bad("nothing given"));
    }
    let z = Zone { offset_at };
    let at = match words {
        ["next", "business", "morning" | "day"] | ["next", "business", "hours"] => {
            match next_open {
                Some(f) => f(now),
                None => default_next_open(&z, now),
            }
        }
        [d] if duration_secs(d).is_some() => {
            let secs = duration_secs(d).unwrap_or(0);
            now.saturating_add(secs.saturating_mul(1000))
        }
        _ => {
            let (day, rest) = match day_word(words[0]) {
                Some(d) => (Some(d), &words[1..]),
                None => match words {
                    ["next", w, rest @ ..] if weekday(w).is_some() => {
                        (weekday(w).map(Day::Weekday), rest)
                    }
                    _ => (None, words),
                },
            };
            let time = match rest {
                [] => None,
                _ => Some(clock(&rest.join(" ")).ok_or_else(|| bad("not a time phrase"))?),
            };
            if day.is_none() && time.is_none() {
                return Err(bad("not a time phrase"));
            }
            let (h, m) = time.unwrap_or((DEFAULT_HOUR, 0));
            let today = z.local_date(now);
            match day {
                None => {
                    // A time alone: today if still ahead, else tomorrow.
                    let t = z.at(today, h, m).ok_or_else(|| bad("no such date"))?;
                    if t > now {
                        t
                    } else {
                        z.at(today.next_day().ok_or_else(|| bad("no such date"))?, h, m)
                            .ok_or_else(|| bad("no such date"))?
                    }
                }
                Some(Day::Today) => z.at(today, h, m).ok_or_else(|| bad("no such date"))?,
                Some(Day::Tomorrow) => z
                    .at(today.next_day().ok_or_else(|| bad("no such date"))?, h, m)
                    .ok_or_else(|| bad("no such date"))?,
                Some(Day::Date(d)) => z.at(d, h, m).ok_or_else(|| bad("no such date"))?,
                Some(Day::Weekday(w)) => {
                    // The nearest such day whose time is still ahead (today counts).
                    let mut d = today;
                    let mut found = None;
                    for _ in 0..8 {
                        if d.weekday() == w
                            && let Some(t) = z.at(d, h, m).filter(|t| *t > now)
                        {
                            found = Some(t);
                            break;
                        }
                        d = d.next_day().ok_or_else(|| bad("no such date"))?;
                    }
                    found.ok_or_else(|| bad("no such date"))?
                }
            }
        }
    };
    if at <= now {
        return Err(bad("that time has passed"));
    }
    Ok(at)
}

/// "Mon 09:00" within a week of `now`, else "Dec 08 09:00", else "2027-01-04 09:00"
/// (local time of this process).
pub fn label(at: Millis, now: Millis) -> String {
    label_in(at, now, &crate::tui::time::local_offset_secs)
}

/// [`label`] in the zone `offset_at`.
pub fn label_in(at: Millis, now: Millis, offset_at: OffsetAt<'_>) -> String {
    let z = Zone { offset_at };
    let t = z.local(at);
    let n = z.local(now);
    let wd = &format!("{:?}", t.weekday())[..3];
    let month = &format!("{:?}", t.month())[..3];
    if (0..6 * 86_400_000).contains(&(at - now)) {
        format!("{wd} {:02}:{:02}", t.hour(), t.minute())
    } else if t.year() == n.year() {
        format!(
            "{wd} {month} {:02} {:02}:{:02}",
            t.day(),
            t.hour(),
            t.minute()
        )
    } else {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute()
        )
    }
}

enum Day {
    Today,
    Tomorrow,
    Weekday(time::Weekday),
    Date(time::Date),
}

fn day_word(w: &str) -> Option<Day> {
    match w {
        "today" => Some(Day::Today),
        "tomorrow" | "tmrw" => Some(Day::Tomorrow),
        _ => weekday(w)
            .map(Day::Weekday)
            .or_else(|| iso_date(w).map(Day::Date)),
    }
}

fn weekday(w: &str) -> Option<time::Weekday> {
    use time::Weekday::*;
    Some(match w {
        "monday" | "mon" => Monday,
        "tuesday" | "tue" | "tues" => Tuesday,
        "wednesday" | "wed" => Wednesday,
        "thursday" | "thu" | "thur" | "thurs" => Thursday,
        "friday" | "fri" => Friday,
        "saturday" | "sat" => Saturday,
        "sunday" | "sun" => Sunday,
        _ => return None,
    })
}

/// "2026-12-08".
fn iso_date(w: &str) -> Option<time::Date> {
    let mut it = w.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.is_empty() || d.is_empty() {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// "9", "9:00", "14:30", "9am", "9:30pm", "9 am", "12am" -> (hour, minute).
fn clock(s: &str) -> Option<(u8, u8)> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let (digits, half) = if let Some(d) = s.strip_suffix("am") {
        (d, Some(false))
    } else if let Some(d) = s.strip_suffix("pm") {
        (d, Some(true))
    } else {
        (s.as_str(), None)
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return None,
        None => (digits, "0"),
    };
    if h.is_empty() || h.len() > 2 || !h.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !m.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (mut h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 {
        return None;
    }
    match half {
        Some(pm) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            h %= 12;
            if pm {
                h += 12;
            }
        }
        None if h > 23 => return None,
        // A bare number is an hour only with a colon or am/pm ("9" alone reads as nothing).
        None if !digits.contains(':') => return None,
        None => {}
    }
    Some((h, m))
}

/// "90s", "30m", "2h", "3d", "1w", "1h30m" -> seconds (None: not a duration).
fn duration_secs(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let secs = match unit.as_str() {
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "wk" | "week" | "weeks" => 604_800,
            _ => return None,
        };
        total = total.saturating_add(n.saturating_mul(secs));
        any = true;
    }
    (num.is_empty() && any && total > 0).then_some(total)
}

/// The next weekday 09:00 after `now` (today's when still ahead).
fn default_next_open(z: &Zone<'_>, now: Millis) -> Millis {
    let mut d = z.local_date(now);
    for _ in 0..8 {
        let weekend = matches!(d.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
        if !weekend && let Some(t) = z.at(d, DEFAULT_HOUR, 0).filter(|t| *t > now) {
            return t;
        }
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    now
}

struct Zone<'a> {
    offset_at: OffsetAt<'a>,
}

impl Zone<'_> {
    fn local(&self, at: Millis) -> time::OffsetDateTime {
        let off = time::UtcOffset::from_whole_seconds((self.offset_at)(at) as i32)
            .unwrap_or(time::UtcOffset::UTC);
        time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(off)
    }

    fn local_date(&self, at: Millis) -> time::Date {
        self.local(at).date()
    }

    /// The instant of a wall time: the first when it happens twice, moved forward by the gap
    /// when a DST change skips it.
    fn at(&self, date: time::Date, h: u8, m: u8) -> Option<Millis> {
        let wall = date.with_hms(h, m, 0).ok()?.assume_utc().unix_timestamp() * 1000;
        let off = |t: Millis| (self.offset_at)(t) * 1000;
        // The offsets in force around that wall time (a day either side covers any change).
        let (a, b) = (off(wall - 86_400_000), off(wall + 86_400_000));
        let valid = |o: Millis| off(wall - o) == o;
        let mut fits: Vec<Millis> = [a, b]
            .into_iter()
            .filter(|o| valid(*o))
            .map(|o| wall - o)
            .collect();
        fits.sort();
        match fits.first() {
            Some(t) => Some(*t),
            // Skipped: the earlier offset lands after the gap.
            None => Some(wall - a.min(b)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Millis {
        let f = time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(s, &f).unwrap().unix_timestamp() * 1000
    }

    fn fixed(secs: i64) -> impl Fn(Millis) -> i64 {
        move |_| secs
    }

    /// Europe/Berlin around 2026: CET +1, CEST +2 from 2026-03-29 01:00 UTC to
    /// 2026-10-25 01:00 UTC.
    fn berlin(at: Millis) -> i64 {
        if at >= utc("2026-03-29T01:00:00Z") && at < utc("2026-10-25T01:00:00Z") {
            7200
        } else {
            3600
        }
    }

    #[test]
    fn phrases_table() {
        // Monday 2026-12-07 15:18 UTC, in UTC+1 (16:18 local).
        let now = utc("2026-12-07T15:18:00Z");
        let z = fixed(3600);
        let cases: &[(&str, &str)] = &[
            ("30m", "2026-12-07T15:48:00Z"),
            ("2h", "2026-12-07T17:18:00Z"),
            ("1h30m", "2026-12-07T16:48:00Z"),
            ("in 3d", "2026-12-10T15:18:00Z"),
            ("tomorrow", "2026-12-08T08:00:00Z"),
            ("Tomorrow 10:00", "2026-12-08T09:00:00Z"),
            ("monday 9:00", "2026-12-14T08:00:00Z"),
            ("monday 17:00", "2026-12-07T16:00:00Z"),
            ("mon 9am", "2026-12-14T08:00:00Z"),
            ("fri 2:30pm", "2026-12-11T13:30:00Z"),
            ("next friday", "2026-12-11T08:00:00Z"),
            ("9:00", "2026-12-08T08:00:00Z"),
            ("17:30", "2026-12-07T16:30:00Z"),
            ("12am", "2026-12-07T23:00:00Z"),
            ("today 18:00", "2026-12-07T17:00:00Z"),
            ("2026-12-08 14:00", "2026-12-08T13:00:00Z"),
            ("2026-12-08", "2026-12-08T08:00:00Z"),
            ("next business morning", "2026-12-08T08:00:00Z"),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_in(input, now, &z, None),
                Ok(utc(want)),
                "phrase {input:?}"
            );
        }
    }

    #[test]
    fn bad_phrases_say_what_works() {
        let now = utc("2026-12-07T15:18:00Z");
        let z = fixed(0);
        for input in [
            "",
            "soon",
            "5",
            "0m",
            "25:00",
            "9:7",
            "13pm",
            "2026-13-01",
            "today 9:00",
            "2025-01-01",
            "tomorrow at",
            "mon 9 o'clock",
        ] {
            let e = parse_in(input, now, &z, None).unwrap_err();
            assert!(e.contains("tomorrow 10:00"), "{input:?}: {e}");
        }
        assert!(
            parse_in("today 9:00", now, &z, None)
                .unwrap_err()
                .contains("passed")
        );
    }

    #[test]
    fn next_business_morning_asks_the_caller() {
        let now = utc("2026-12-11T18:00:00Z"); // Friday evening
        let z = fixed(0);
        // Default: the next weekday 09:00, over the weekend.
        assert_eq!(
            parse_in("next business morning", now, &z, None),
            Ok(utc("2026-12-14T09:00:00Z"))
        );
        // Before 09:00 on a weekday: today.
        let early = utc("2026-12-08T07:00:00Z");
        assert_eq!(
            parse_in("next business morning", early, &z, None),
            Ok(utc("2026-12-08T09:00:00Z"))
        );
        let open = |_: Millis| utc("2026-12-15T08:00:00Z");
        assert_eq!(
            parse_in("next business morning", now, &z, Some(&open)),
            Ok(utc("2026-12-15T08:00:00Z"))
        );
    }

    #[test]
    fn dst_changes() {
        // Saturday before spring forward (2026-03-29 02:00 -> 03:00 local).
        let now = utc("2026-03-28T12:00:00Z");
        // 10:00 on the day after the change is 08:00 UTC (CEST), not 09:00.
        assert_eq!(
            parse_in("tomorrow 10:00", now, &berlin, None),
            Ok(utc("2026-03-29T08:00:00Z"))
        );
        // 02:30 does not exist that night: moved forward to 03:30 CEST = 01:30 UTC.
        assert_eq!(
            parse_in("tomorrow 2:30", now, &berlin, None),
            Ok(utc("2026-03-29T01:30:00Z"))
        );
        // "1d" is 24 hours, whatever the wall clock does.
        assert_eq!(
            parse_in("1d", now, &berlin, None),
            Ok(utc("2026-03-29T12:00:00Z"))
        );
        // Autumn: 02:30 happens twice on 2026-10-25; the first (CEST) is taken.
        let now = utc("2026-10-24T12:00:00Z");
        assert_eq!(
            parse_in("tomorrow 2:30", now, &berlin, None),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            parse_in("tomorrow 10:00", now, &berlin, None),
            Ok(utc("2026-10-25T09:00:00Z"))
        );
        // A week across the change: monday 9:00 is 08:00 UTC in winter.
        assert_eq!(
            parse_in("monday 9:00", now, &berlin, None),
            Ok(utc("2026-10-26T08:00:00Z"))
        );
    }

    #[test]
    fn labels() {
        let now = utc("2026-12-07T15:18:00Z");
        let z = fixed(0);
        assert_eq!(
            label_in(utc("2026-12-14T09:00:00Z"), now, &z),
            "Mon Dec 14 09:00"
        );
        assert_eq!(label_in(utc("2026-12-08T09:00:00Z"), now, &z), "Tue 09:00");
        assert_eq!(
            label_in(utc("2027-01-04T09:00:00Z"), now, &z),
            "2027-01-04 09:00"
        );
    }
}
