//! Business hours and SLA policies (pure: no store, no clock).
//!
//! [`Hours`] is a team's working time: a time zone, several intervals per weekday (split
//! shifts), holidays. Deadlines are computed in business time: a 1-hour target set on Friday
//! 16:30 for a Mon-Fri 09:00-17:00 team falls due Monday 09:30. All arithmetic is done on
//! the zone's wall clock through jiff, so DST changes (a 23- or 25-hour day) are honest: an
//! interval is as long as the real time between its opening and its closing.
//!
//! [`Policy`] holds the targets (first response, next response, resolution), the hours they
//! count in (by name; none: the team's hours, else 24x7) and when to warn.
//!
//! Both are read from the workspace config as specs ([`HoursSpec`], [`PolicySpec`], serde
//! `Deserialize` with spans) and checked by `validate()`, whose errors name the key.

use crate::model::Millis;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde::Deserialize;
use toml::Spanned;

#[cfg(test)]
mod tests;

/// Minutes since local midnight: an interval `[open, close)`, `close` up to 24:00 (1440).
pub type Interval = (u16, u16);

/// How far ahead a deadline is looked for (a calendar with no open time never ends).
const HORIZON_DAYS: usize = 3 * 366;

/// A config error: the span of the value, the dotted key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub span: std::ops::Range<usize>,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

fn err<T>(
    span: std::ops::Range<usize>,
    key: &str,
    message: impl Into<String>,
) -> Result<T, SpecError> {
    Err(SpecError {
        span,
        key: key.to_string(),
        message: message.into(),
    })
}

/// Business hours: when a team works.
#[derive(Debug, Clone)]
pub struct Hours {
    pub name: String,
    /// The IANA zone name ("Europe/Berlin").
    pub zone: String,
    tz: TimeZone,
    /// Monday first: the open intervals of each weekday, sorted, not overlapping.
    pub week: [Vec<Interval>; 7],
    /// Days off (local dates), sorted.
    pub holidays: Vec<Date>,
    always: bool,
}

impl PartialEq for Hours {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.zone == o.zone
            && self.week == o.week
            && self.holidays == o.holidays
            && self.always == o.always
    }
}
impl Eq for Hours {}

/// `[[hours]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    pub name: Spanned<String>,
    /// IANA time zone (default UTC).
    pub zone: Option<Spanned<String>>,
    /// Monday to Friday, for each of them not given on its own.
    pub weekdays: Option<Spanned<Vec<String>>>,
    pub mon: Option<Spanned<Vec<String>>>,
    pub tue: Option<Spanned<Vec<String>>>,
    pub wed: Option<Spanned<Vec<String>>>,
    pub thu: Option<Spanned<Vec<String>>>,
    pub fri: Option<Spanned<Vec<String>>>,
    pub sat: Option<Spanned<Vec<String>>>,
    pub sun: Option<Spanned<Vec<String>>>,
    /// Days off: "2026-12-25".
    pub holidays: Option<Spanned<Vec<String>>>,
}

/// Parse "09:00" (or "24:00" when `end`) as minutes since midnight.
fn parse_clock(s: &str, end: bool) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
        return None;
    }
    Some(h * 60 + m)
}

/// Parse `["09:00-12:00", "13:00-17:00"]`: sorted, each opening before its closing, no overlap.
pub fn parse_intervals(list: &[String]) -> Result<Vec<Interval>, String> {
    let mut out: Vec<Interval> = Vec::new();
    for s in list {
        let bad = || {
            format!(
                "'{s}' is not an interval (write \"09:00-17:00\"; \"00:00-24:00\" is the whole day)"
            )
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let a = parse_clock(a, false).ok_or_else(bad)?;
        let b = parse_clock(b, true).ok_or_else(bad)?;
        if a >= b {
            return Err(format!(
                "'{s}' closes before it opens (an interval past midnight is two: \"22:00-24:00\" and \"00:00-06:00\" the next day)"
            ));
        }
        out.push((a, b));
    }
    out.sort_unstable();
    for w in out.windows(2) {
        if w[0].1 > w[1].0 {
            return Err(format!(
                "intervals {} and {} overlap; merge them",
                fmt_interval(w[0]),
                fmt_interval(w[1])
            ));
        }
    }
    Ok(out)
}

fn fmt_interval((a, b): Interval) -> String {
    format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)
}

impl HoursSpec {
    /// Check every value; the error names the key (`hours.mon`, `hours.zone`...).
    pub fn validate(&self) -> Result<Hours, SpecError> {
        let name = check_name(&self.name, "hours.name")?;
        let (zone, tz) = match &self.zone {
            Some(z) => {
                let zname = z.get_ref().trim();
                match TimeZone::get(zname) {
                    Ok(tz) => (zname.to_string(), tz),
                    Err(_) => {
                        return err(
                            z.span(),
                            "hours.zone",
                            format!(
                                "unknown time zone '{zname}' (an IANA name such as \"Europe/Berlin\" or \"America/New_York\")"
                            ),
                        );
                    }
                }
            }
            None => ("UTC".to_string(), TimeZone::UTC),
        };
        let mut week: [Vec<Interval>; 7] = Default::default();
        let days = [
            (&self.mon, "hours.mon"),
            (&self.tue, "hours.tue"),
            (&self.wed, "hours.wed"),
            (&self.thu, "hours.thu"),
            (&self.fri, "hours.fri"),
            (&self.sat, "hours.sat"),
            (&self.sun, "hours.sun"),
        ];
        let weekdays = match &self.weekdays {
            Some(w) => {
                Some(parse_intervals(w.get_ref()).or_else(|m| err(w.span(), "hours.weekdays", m))?)
            }
            None => None,
        };
        for (i, (spec, key)) in days.iter().enumerate() {
            week[i] = match spec {
                Some(v) => parse_intervals(v.get_ref()).or_else(|m| err(v.span(), key, m))?,
                None if i < 5 => weekdays.clone().unwrap_or_default(),
                None => Vec::new(),
            };
        }
        if week.iter().all(Vec::is_empty) {
            return err(
                self.name.span(),
                "hours.mon",
                format!(
                    "hours '{name}' are never open: give intervals, e.g. weekdays = [\"09:00-17:00\"]"
                ),
            );
        }
        let mut holidays = Vec::new();
        if let Some(h) = &self.holidays {
            for d in h.get_ref() {
                let date: Date = d.trim().parse().or_else(|_| {
                    err(
                        h.span(),
                        "hours.holidays",
                        format!("'{d}' is not a date (write \"2026-12-25\")"),
                    )
                })?;
                holidays.push(date);
            }
        }
        holidays.sort_unstable();
        holidays.dedup();
        Ok(Hours {
            name,
            zone,
            tz,
            week,
            holidays,
            always: false,
        })
    }
}

fn check_name(n: &Spanned<String>, key: &str) -> Result<String, SpecError> {
    let t = n.get_ref().trim();
    if t.is_empty()
        || t.len() > 64
        || !t
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return err(
            n.span(),
            key,
            format!("'{t}' is not a name (letters, digits, '.', '_', '-', at most 64)"),
        );
    }
    Ok(t.to_string())
}

fn weekday_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

impl Hours {
    /// Round the clock, every day, no holidays (what a policy without hours counts in).
    pub fn always() -> Hours {
        Hours {
            name: "24x7".into(),
            zone: "UTC".into(),
            tz: TimeZone::UTC,
            week: std::array::from_fn(|_| vec![(0, 24 * 60)]),
            holidays: Vec::new(),
            always: true,
        }
    }

    /// Build hours in code (tests, the demo): `week` Monday first.
    pub fn new(
        name: &str,
        zone: &str,
        week: [Vec<Interval>; 7],
        holidays: Vec<Date>,
    ) -> Result<Hours, String> {
        let tz = TimeZone::get(zone).map_err(|_| format!("unknown time zone '{zone}'"))?;
        Ok(Hours {
            name: name.into(),
            zone: zone.into(),
            tz,
            week,
            holidays,
            always: false,
        })
    }

    fn is_holiday(&self, d: Date) -> bool {
        self.holidays.binary_search(&d).is_ok()
    }

    fn local_date(&self, at: Millis) -> Date {
        jiff::Timestamp::from_millisecond(at)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone())
            .date()
    }

    /// The instant of a local wall-clock minute of `d` (a time in a DST gap moves forward).
    fn instant(&self, d: Date, minute: u16) -> Option<Millis> {
        let dt = if minute >= 24 * 60 {
            d.tomorrow().ok()?.at(0, 0, 0, 0)
        } else {
            d.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
        };
        let z = dt.to_zoned(self.tz.clone()).ok()?;
        Some(z.timestamp().as_millisecond())
    }

    /// The open intervals as instants, in order, from the local day of `from` on (some may
    /// end before `from`).
    fn open_from(&self, from: Millis) -> impl Iterator<Item = (Millis, Millis)> + '_ {
        let mut day = Some(self.local_date(from));
        (0..HORIZON_DAYS)
            .flat_map(move |_| {
                let d = day?;
                day = d.tomorrow().ok();
                let ivs: Vec<(Millis, Millis)> = if self.is_holiday(d) {
                    Vec::new()
                } else {
                    self.week[weekday_index(d.weekday())]
                        .iter()
                        .filter_map(|&(a, b)| Some((self.instant(d, a)?, self.instant(d, b)?)))
                        .filter(|(a, b)| a < b)
                        .collect()
                };
                Some(ivs)
            })
            .flatten()
    }

    /// Whether the team works at `at`.
    pub fn is_open(&self, at: Millis) -> bool {
        if self.always {
            return true;
        }
        self.open_from(at)
            .take_while(|&(a, _)| a <= at)
            .any(|(a, b)| a <= at && at < b)
    }

    /// `at` when open, else the next opening ("next business morning"). None: never again
    /// within three years.
    pub fn next_open(&self, at: Millis) -> Option<Millis> {
        if self.always {
            return Some(at);
        }
        self.open_from(at)
            .find(|&(_, b)| b > at)
            .map(|(a, _)| a.max(at))
    }

    /// The instant `duration` of business time after `start` (a start outside hours counts
    /// from the next opening). None: the calendar has no such time within three years.
    pub fn add(&self, start: Millis, duration: Millis) -> Option<Millis> {
        if self.always {
            return start.checked_add(duration.max(0));
        }
        let mut left = duration.max(0);
        for (a, b) in self.open_from(start) {
            if b <= start {
                continue;
            }
            let from = a.max(start);
            if left <= b - from {
                return Some(from + left);
            }
            left -= b - from;
        }
        None
    }

    /// Business time between `a` and `b` (0 when `b` is not after `a`).
    pub fn between(&self, a: Millis, b: Millis) -> Millis {
        if b <= a {
            return 0;
        }
        if self.always {
            return b - a;
        }
        let mut total = 0;
        for (x, y) in self.open_from(a) {
            if x >= b {
                break;
            }
            let lo = x.max(a);
            let hi = y.min(b);
            if hi > lo {
                total += hi - lo;
            }
        }
        total
    }
}

/// Which SLA target a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::NextResponse => "next_response",
            Target::Resolution => "resolution",
        }
    }
}

/// Default for a policy's `warn_before`.
pub const DEFAULT_WARN_BEFORE_MS: Millis = 15 * 60_000;

/// An SLA policy: targets in business time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub first_response: Option<Millis>,
    pub next_response: Option<Millis>,
    pub resolution: Option<Millis>,
    /// The `[[hours]]` the targets count in (None: the conversation's team's, else 24x7).
    pub hours: Option<String>,
    /// Warn this long (real time) before a deadline.
    pub warn_before: Millis,
}

/// `[[sla]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub name: Spanned<String>,
    pub first_response: Option<Spanned<String>>,
    pub next_response: Option<Spanned<String>>,
    pub resolution: Option<Spanned<String>>,
    pub hours: Option<Spanned<String>>,
    pub warn_before: Option<Spanned<String>>,
}

fn target(v: &Option<Spanned<String>>, key: &str) -> Result<Option<Millis>, SpecError> {
    let Some(v) = v else { return Ok(None) };
    let ms = crate::units::parse_duration(v.get_ref()).or_else(|m| err(v.span(), key, m))?;
    if ms <= 0 {
        return err(v.span(), key, "a target must be longer than zero");
    }
    Ok(Some(ms))
}

impl PolicySpec {
    /// Check every value against the hours defined (`known_hours`); errors name the key.
    pub fn validate(&self, known_hours: &[Hours]) -> Result<Policy, SpecError> {
        let name = check_name(&self.name, "sla.name")?;
        let first_response = target(&self.first_response, "sla.first_response")?;
        let next_response = target(&self.next_response, "sla.next_response")?;
        let resolution = target(&self.resolution, "sla.resolution")?;
        if first_response.is_none() && next_response.is_none() && resolution.is_none() {
            return err(
                self.name.span(),
                "sla.first_response",
                format!(
                    "policy '{name}' has no target: give first_response, next_response or resolution (e.g. \"1h\")"
                ),
            );
        }
        let hours = match &self.hours {
            Some(h) => {
                let n = h.get_ref().trim();
                if !known_hours.iter().any(|x| x.name == n) {
                    let known: Vec<&str> = known_hours.iter().map(|x| x.name.as_str()).collect();
                    return err(
                        h.span(),
                        "sla.hours",
                        format!(
                            "no [[hours]] is named '{n}' (known: {})",
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
                Some(n.to_string())
            }
            None => None,
        };
        let warn_before = match &self.warn_before {
            Some(w) => crate::units::parse_duration(w.get_ref())
                .or_else(|m| err(w.span(), "sla.warn_before", m))?,
            None => DEFAULT_WARN_BEFORE_MS,
        };
        Ok(Policy {
            name,
            first_response,
            next_response,
            resolution,
            hours,
            warn_before,
        })
    }
}

/// What a deadline is computed from: a conversation's clock columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub resolved: bool,
    pub created_at: Millis,
    /// The oldest unanswered customer message (None: nothing waits on us).
    pub waiting_since: Option<Millis>,
    /// Our last (non-automated) reply (None: never answered).
    pub last_reply_at: Option<Millis>,
}

impl Policy {
    /// The deadline that applies now: the response target while the customer waits (first
    /// response before any reply, next response after), and resolution from creation; the
    /// earliest of them. None: nothing is due (resolved, or no target applies).
    pub fn deadline(&self, hours: &Hours, clock: Clock) -> Option<(Target, Millis)> {
        if clock.resolved {
            return None;
        }
        let mut best: Option<(Target, Millis)> = None;
        let mut consider = |t: Target, from: Millis, d: Option<Millis>| {
            if let Some(d) = d
                && let Some(due) = hours.add(from, d)
                && best.is_none_or(|(_, b)| due < b)
            {
                best = Some((t, due));
            }
        };
        if let Some(w) = clock.waiting_since {
            if clock.last_reply_at.is_none() {
                consider(Target::FirstResponse, w, self.first_response);
            } else {
                consider(Target::NextResponse, w, self.next_response);
            }
        }
        consider(Target::Resolution, clock.created_at, self.resolution);
        best
    }
}

/// The workspace's `[[hours]]` and `[[sla]]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaConfig {
    pub hours: Vec<Hours>,
    pub policies: Vec<Policy>,
    /// `[[teams]] hours`: (team, hours name).
    pub team_hours: Vec<(String, String)>,
}

impl SlaConfig {
    /// Check the specs: names unique, zones and intervals valid, a policy's hours defined.
    pub fn from_specs(
        hours: &[HoursSpec],
        policies: &[PolicySpec],
    ) -> Result<SlaConfig, SpecError> {
        let mut out = SlaConfig::default();
        for h in hours {
            let v = h.validate()?;
            if out.hours.iter().any(|x| x.name == v.name) {
                return err(
                    h.name.span(),
                    "hours.name",
                    format!("two [[hours]] are named '{}'", v.name),
                );
            }
            out.hours.push(v);
        }
        for p in policies {
            let v = p.validate(&out.hours)?;
            if out.policies.iter().any(|x| x.name == v.name) {
                return err(
                    p.name.span(),
                    "sla.name",
                    format!("two [[sla]] are named '{}'", v.name),
                );
            }
            out.policies.push(v);
        }
        Ok(out)
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The hours name a team works (`[[teams]] hours`).
    pub fn team_hours(&self, team: Option<&str>) -> Option<&str> {
        let team = team?;
        self.team_hours
            .iter()
            .find(|(t, _)| t == team)
            .map(|(_, h)| h.as_str())
    }

    pub fn hours_named(&self, name: &str) -> Option<&Hours> {
        self.hours.iter().find(|h| h.name == name)
    }

    /// The hours a policy counts in: its own, else the team's (`team_hours`: the name a
    /// `[[teams]] hours` gives), else round the clock.
    pub fn hours_for(&self, policy: &Policy, team_hours: Option<&str>) -> Hours {
        policy
            .hours
            .as_deref()
            .or(team_hours)
            .and_then(|n| self.hours_named(n))
            .cloned()
            .unwrap_or_else(Hours::always)
    }

    /// A policy by name, with an error that says which exist.
    pub fn require(&self, name: &str) -> Result<&Policy, String> {
        self.policy(name).ok_or_else(|| {
            let known: Vec<&str> = self.policies.iter().map(|p| p.name.as_str()).collect();
            format!(
                "no SLA policy named '{name}' (known: {}); define it in a [[sla]] table of the workspace config",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })
    }
}

/// "42m", "3h05m", "2d4h", "-5m": a time left for the queue and the timeline header.
pub fn fmt_left(ms: Millis) -> String {
    let neg = ms < 0;
    let mins = ms.unsigned_abs().div_ceil(60_000) as i64;
    let mins = if neg {
        ms.unsigned_abs() as i64 / 60_000
    } else {
        mins
    };
    let s = if mins < 60 {
        format!("{mins}m")
    } else if mins < 24 * 60 {
        let (h, m) = (mins / 60, mins % 60);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m:02}m")
        }
    } else {
        let (d, h) = (mins / 1440, (mins % 1440) / 60);
        if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h}h")
        }
    };
    if neg { format!("-{s}") } else { s }
}
