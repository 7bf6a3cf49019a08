use super::*;

fn spec(toml_text: &str) -> HoursSpec {
    #[derive(Deserialize)]
    struct W {
        hours: HoursSpec,
    }
    toml::from_str::<W>(toml_text).unwrap().hours
}

fn hours(toml_text: &str) -> Hours {
    spec(toml_text).validate().unwrap()
}

/// 09:00-17:00 Monday to Friday.
fn office(zone: &str) -> Hours {
    hours(&format!(
        "[hours]\nname = \"office\"\nzone = \"{zone}\"\nweekdays = [\"09:00-17:00\"]\nholidays = [\"2026-12-25\"]"
    ))
}

/// A local wall-clock time of `h`'s zone, as ms.
fn at(h: &Hours, local: &str) -> Millis {
    let dt: jiff::civil::DateTime = local.parse().unwrap();
    dt.to_zoned(h.tz.clone())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// The local wall-clock time of `ms` in `h`'s zone.
fn local(h: &Hours, ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(h.tz.clone())
        .strftime("%a %Y-%m-%dT%H:%M %Z")
        .to_string()
}

const H: Millis = 3_600_000;
const M: Millis = 60_000;

#[test]
fn the_issue_example_friday_afternoon_falls_due_monday_morning() {
    let h = office("Europe/Berlin");
    let due = h.add(at(&h, "2026-12-04T16:30"), H).unwrap();
    assert_eq!(local(&h, due), "Mon 2026-12-07T09:30 CET");
}

#[test]
fn add_table() {
    let berlin = office("Europe/Berlin");
    let ny = office("America/New_York");
    let tokyo = office("Asia/Tokyo");
    let split = hours(
        "[hours]\nname = \"split\"\nzone = \"Europe/Berlin\"\nweekdays = [\"13:00-17:00\", \"09:00-12:00\"]\nsat = [\"10:00-12:00\"]",
    );
    let night = hours(
        "[hours]\nname = \"night\"\nzone = \"Europe/Berlin\"\nsun = [\"01:00-04:00\"]\nsat = [\"01:00-04:00\"]",
    );
    #[rustfmt::skip]
    let table: &[(&Hours, &str, Millis, &str)] = &[
        // inside hours, same day
        (&berlin, "2026-12-02T10:00", H, "Wed 2026-12-02T11:00 CET"),
        // exactly to the closing
        (&berlin, "2026-12-02T16:00", H, "Wed 2026-12-02T17:00 CET"),
        // a start before opening counts from the opening
        (&berlin, "2026-12-02T06:00", 30 * M, "Wed 2026-12-02T09:30 CET"),
        // a start after closing: the next business morning
        (&berlin, "2026-12-02T20:00", H, "Thu 2026-12-03T10:00 CET"),
        // a start on the weekend
        (&berlin, "2026-12-05T11:00", 2 * H, "Mon 2026-12-07T11:00 CET"),
        // multi-day: 3 working days of 8h from Wednesday noon
        (&berlin, "2026-12-02T12:00", 24 * H, "Mon 2026-12-07T12:00 CET"),
        // a holiday (Friday 25 December) is skipped
        (&berlin, "2026-12-24T16:00", 2 * H, "Mon 2026-12-28T10:00 CET"),
        // split shift: the lunch break does not count
        (&split, "2026-12-02T11:30", H, "Wed 2026-12-02T13:30 CET"),
        (&split, "2026-12-02T12:15", 30 * M, "Wed 2026-12-02T13:30 CET"),
        // split shift, Friday to the Saturday morning shift
        (&split, "2026-12-04T16:00", 2 * H, "Sat 2026-12-05T11:00 CET"),
        // New York: spring forward (Sunday 8 March 2026) over the weekend
        (&ny, "2026-03-06T16:30", H, "Mon 2026-03-09T09:30 EDT"),
        // New York: fall back (Sunday 1 November 2026)
        (&ny, "2026-10-30T16:30", H, "Mon 2026-11-02T09:30 EST"),
        // Berlin: spring forward on 29 March 2026, 02:00 -> 03:00 inside an interval
        (&night, "2026-03-29T01:30", H, "Sun 2026-03-29T03:30 CEST"),
        // Berlin: fall back on 25 October 2026, 03:00 -> 02:00: the interval is 4h long
        (&night, "2026-10-25T01:00", 3 * H + 30 * M, "Sun 2026-10-25T03:30 CET"),
        // another zone entirely
        (&tokyo, "2026-12-04T16:30", H, "Mon 2026-12-07T09:30 JST"),
    ];
    for (h, start, dur, want) in table {
        let due = h.add(at(h, start), *dur).unwrap();
        assert_eq!(
            &local(h, due),
            want,
            "{} + {}m from {start}",
            h.name,
            dur / M
        );
    }
}

#[test]
fn the_same_instant_differs_by_zone() {
    let berlin = office("Europe/Berlin");
    let ny = office("America/New_York");
    // 15:00 UTC on a Wednesday: 16:00 in Berlin (open, 1h left), 10:00 in New York.
    let t = at(&berlin, "2026-12-02T16:00");
    assert_eq!(
        local(&berlin, berlin.add(t, 2 * H).unwrap()),
        "Thu 2026-12-03T10:00 CET"
    );
    assert_eq!(
        local(&ny, ny.add(t, 2 * H).unwrap()),
        "Wed 2026-12-02T12:00 EST"
    );
}

#[test]
fn between_counts_only_business_time() {
    let berlin = office("Europe/Berlin");
    let a = at(&berlin, "2026-12-04T16:30");
    let b = at(&berlin, "2026-12-07T09:30");
    assert_eq!(berlin.between(a, b), H);
    assert_eq!(berlin.between(b, a), 0);
    // over a holiday and a weekend: Thursday 24th 09:00 to Monday 28th 09:00 = 8h
    let a = at(&berlin, "2026-12-24T09:00");
    let b = at(&berlin, "2026-12-28T09:00");
    assert_eq!(berlin.between(a, b), 8 * H);
    // a whole Sunday across the DST changes: 23h and 25h
    let sundays = hours("[hours]\nname = \"x\"\nzone = \"Europe/Berlin\"\nsun = [\"00:00-24:00\"]");
    let a = at(&sundays, "2026-03-29T00:00");
    assert_eq!(sundays.between(a, a + 48 * H), 23 * H);
    let a = at(&sundays, "2026-10-25T00:00");
    assert_eq!(sundays.between(a, a + 48 * H), 25 * H);
    // add and between agree
    let s = at(&berlin, "2026-12-03T11:11");
    let due = berlin.add(s, 13 * H + 7 * M).unwrap();
    assert_eq!(berlin.between(s, due), 13 * H + 7 * M);
}

#[test]
fn is_open_and_next_open() {
    let h = office("America/New_York");
    assert!(h.is_open(at(&h, "2026-12-02T09:00")));
    assert!(h.is_open(at(&h, "2026-12-02T16:59")));
    assert!(!h.is_open(at(&h, "2026-12-02T17:00")));
    assert!(!h.is_open(at(&h, "2026-12-05T12:00")));
    assert!(!h.is_open(at(&h, "2026-12-25T12:00")));
    let t = at(&h, "2026-12-02T10:00");
    assert_eq!(h.next_open(t), Some(t));
    let n = h.next_open(at(&h, "2026-12-04T18:00")).unwrap();
    assert_eq!(local(&h, n), "Mon 2026-12-07T09:00 EST");
    let n = h.next_open(at(&h, "2026-12-24T18:00")).unwrap();
    assert_eq!(local(&h, n), "Mon 2026-12-28T09:00 EST");
}

#[test]
fn always_is_plain_arithmetic() {
    let h = Hours::always();
    assert_eq!(h.add(1000, 5 * H), Some(1000 + 5 * H));
    assert_eq!(h.between(0, 3 * H), 3 * H);
    assert!(h.is_open(12345));
}

#[test]
fn bad_hours_name_the_key() {
    let e = spec("[hours]\nname = \"x\"\nzone = \"Mars/Olympus\"\nweekdays = [\"09:00-17:00\"]")
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "hours.zone");
    assert!(e.message.contains("Mars/Olympus"), "{e}");
    for (bad, key) in [
        ("mon = [\"9-17\"]", "hours.mon"),
        ("tue = [\"17:00-09:00\"]", "hours.tue"),
        (
            "weekdays = [\"09:00-12:00\", \"11:00-13:00\"]",
            "hours.weekdays",
        ),
        ("sat = [\"25:00-26:00\"]", "hours.sat"),
        ("mon = []", "hours.mon"),
        (
            "weekdays = [\"09:00-17:00\"]\nholidays = [\"christmas\"]",
            "hours.holidays",
        ),
    ] {
        let e = spec(&format!("[hours]\nname = \"x\"\n{bad}"))
            .validate()
            .unwrap_err();
        assert_eq!(e.key, key, "{bad}: {e}");
    }
}

#[test]
fn intervals_parse_sorted_and_to_midnight() {
    assert_eq!(
        parse_intervals(&["13:00-17:00".into(), "09:00-12:00".into()]).unwrap(),
        vec![(540, 720), (780, 1020)]
    );
    assert_eq!(
        parse_intervals(&["00:00-24:00".into()]).unwrap(),
        vec![(0, 1440)]
    );
    assert!(parse_intervals(&["24:00-24:00".into()]).is_err());
}

fn policy(text: &str, known: &[Hours]) -> Result<Policy, SpecError> {
    #[derive(Deserialize)]
    struct W {
        sla: PolicySpec,
    }
    toml::from_str::<W>(text).unwrap().sla.validate(known)
}

#[test]
fn policies_validate_and_name_the_key() {
    let known = [office("Europe/Berlin")];
    let p = policy(
        "[sla]\nname = \"gold\"\nfirst_response = \"1h\"\nnext_response = \"4h\"\nresolution = \"3d\"\nhours = \"office\"\nwarn_before = \"10m\"",
        &known,
    )
    .unwrap();
    assert_eq!(p.first_response, Some(H));
    assert_eq!(p.resolution, Some(72 * H));
    assert_eq!(p.warn_before, 10 * M);
    let p = policy("[sla]\nname = \"basic\"\nresolution = \"8h\"", &known).unwrap();
    assert_eq!(p.warn_before, DEFAULT_WARN_BEFORE_MS);
    assert_eq!(p.hours, None);
    for (bad, key) in [
        ("first_response = \"soon\"", "sla.first_response"),
        ("resolution = \"0m\"", "sla.resolution"),
        ("first_response = \"1h\"\nhours = \"apac\"", "sla.hours"),
        (
            "first_response = \"1h\"\nwarn_before = \"x\"",
            "sla.warn_before",
        ),
        ("", "sla.first_response"),
    ] {
        let e = policy(&format!("[sla]\nname = \"p\"\n{bad}"), &known).unwrap_err();
        assert_eq!(e.key, key, "{bad}: {e}");
    }
}

#[test]
fn the_deadline_follows_the_clock() {
    let h = office("Europe/Berlin");
    let p = Policy {
        name: "gold".into(),
        first_response: Some(H),
        next_response: Some(4 * H),
        resolution: Some(40 * H),
        hours: None,
        warn_before: 15 * M,
    };
    let created = at(&h, "2026-12-02T10:00");
    let clock = Clock {
        resolved: false,
        created_at: created,
        waiting_since: Some(created),
        last_reply_at: None,
    };
    assert_eq!(
        p.deadline(&h, clock),
        Some((Target::FirstResponse, created + H))
    );
    // answered, then the customer wrote again at 16:00: next response, over the night
    let again = at(&h, "2026-12-02T16:00");
    let clock = Clock {
        waiting_since: Some(again),
        last_reply_at: Some(created + 10 * M),
        ..clock
    };
    let (t, due) = p.deadline(&h, clock).unwrap();
    assert_eq!(t, Target::NextResponse);
    assert_eq!(local(&h, due), "Thu 2026-12-03T12:00 CET");
    // nothing waits: the resolution target from creation
    let clock = Clock {
        waiting_since: None,
        ..clock
    };
    let (t, due) = p.deadline(&h, clock).unwrap();
    assert_eq!(t, Target::Resolution);
    assert_eq!(local(&h, due), "Wed 2026-12-09T10:00 CET");
    // resolved: nothing is due
    assert_eq!(
        p.deadline(
            &h,
            Clock {
                resolved: true,
                ..clock
            }
        ),
        None
    );
    // a policy without a resolution target and nothing waiting: nothing is due
    let p2 = Policy {
        resolution: None,
        ..p.clone()
    };
    assert_eq!(p2.deadline(&h, clock), None);
}

#[test]
fn sla_config_names_unique_and_team_hours() {
    let hs = [spec(
        "[hours]\nname = \"emea\"\nzone = \"Europe/Berlin\"\nweekdays = [\"09:00-17:00\"]",
    )];
    let cfg = SlaConfig::from_specs(&hs, &[]).unwrap();
    let p = Policy {
        name: "p".into(),
        first_response: Some(H),
        next_response: None,
        resolution: None,
        hours: None,
        warn_before: 0,
    };
    assert_eq!(cfg.hours_for(&p, Some("emea")).name, "emea");
    assert_eq!(cfg.hours_for(&p, None).name, "24x7");
    let two = [hs[0].clone(), hs[0].clone()];
    assert_eq!(
        SlaConfig::from_specs(&two, &[]).unwrap_err().key,
        "hours.name"
    );
    assert!(
        cfg.require("gold")
            .unwrap_err()
            .contains("no SLA policy named 'gold'")
    );
}

#[test]
fn time_left_reads_short() {
    assert_eq!(fmt_left(42 * M), "42m");
    assert_eq!(fmt_left(41 * M + 1), "42m");
    assert_eq!(fmt_left(-5 * M - 1), "-5m");
    assert_eq!(fmt_left(3 * H + 5 * M), "3h05m");
    assert_eq!(fmt_left(2 * H), "2h");
    assert_eq!(fmt_left(52 * H), "2d4h");
}
