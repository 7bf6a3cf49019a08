//! The reports view (`g R`, `:reports`) through the real keymap: against hand-built reports
//! (the drawing, escaping, stale answers, the plain 16-colour fallback) and against the real
//! handler and store on the demo workspace (the figures the lead's derivation computes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::Harness;
use super::tests::{NOW, harness};
use crate::api::report::{
    CsatFigures, Durations, Figures, Report, ReportQuery, ReportRow, SlaFigures, Slice,
};
use crate::api::{Request, Response};
use crate::model::Millis;
use crate::tui::app::{Effect, Event, Mode};
use crate::tui::colors::ColorDepth;
use crate::tui::keymap::parse_key_script;

const M: Millis = 60_000;
const H: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

fn durations(count: i64, median: Millis, business: Millis) -> Durations {
    Durations {
        count,
        median: Some(median),
        p90: Some(median * 3),
        mean: Some(median * 2),
        median_business: Some(business),
        p90_business: Some(business * 3),
        mean_business: Some(business * 2),
    }
}

fn figures(opened: i64, first: Millis, resolution: Millis, csat: [i64; 5]) -> Figures {
    let answered: i64 = csat.iter().sum();
    Figures {
        first_response: durations(opened, first, first / 2),
        next_response: durations(opened / 2, first * 2, first),
        resolution: durations(opened - 1, resolution, resolution / 3),
        customer_wait: durations(opened / 3, 2 * H, H),
        opened,
        reopened: opened / 10,
        resolved: opened - 2,
        messages_in: opened * 3,
        messages_out: opened * 2,
        sla: SlaFigures {
            met: opened - 3,
            missed: 3,
        },
        sla_policies: Vec::new(),
        csat: CsatFigures {
            sent: answered * 2,
            answered,
            scores: csat,
        },
        backlog: None,
    }
}

/// `q` as the server echoes it: its dates as instants of its zone (UTC here).
fn resolved(q: &ReportQuery) -> ReportQuery {
    let Some((a, b)) = &q.days else {
        return q.clone();
    };
    let midnight = |s: &str| {
        let d: jiff::civil::Date = s.parse().unwrap();
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_millisecond()
    };
    let mut out = q.clone();
    out.from = midnight(a);
    out.to = midnight(b) + DAY;
    out.tz = Some("UTC".into());
    out.days = None;
    out
}

/// A report answering `q` with rows made up for its slicing.
fn made_up(q: &ReportQuery) -> Report {
    let q = &resolved(q);
    let rows: Vec<ReportRow> = match q.by {
        Slice::Channel => vec![
            ("email", 40, 12 * H + 5 * M, 30 * H),
            ("telegram", 25, 4 * M, 3 * H),
            ("webchat", 30, 45_000, 2 * H + 5 * M),
            ("whatsapp", 12, 18 * M, 5 * H),
        ]
        .into_iter()
        .map(|(k, n, fr, res)| ReportRow {
            key: k.into(),
            figures: figures(n, fr, res, [1, 0, 2, 5, 9]),
        })
        .collect(),
        Slice::Agent => vec![
            ("alice", 30, 6 * M, 4 * H),
            ("bob", 22, 14 * M, 9 * H),
            ("mallory\u{1b}[2J\u{7}", 9, 2 * H + 5 * M, 26 * H),
        ]
        .into_iter()
        .map(|(k, n, fr, res)| ReportRow {
            key: k.into(),
            figures: figures(n, fr, res, [0, 1, 1, 3, 4]),
        })
        .collect(),
        Slice::Day | Slice::Week => {
            let step = if q.by == Slice::Day { DAY } else { 7 * DAY };
            let n = ((q.to - q.from) / step) as usize;
            (0..n)
                .map(|i| {
                    let opened = 3 + (i as i64 * 7) % 11;
                    let mut f = figures(opened, 10 * M, 3 * H, [0, 0, 1, 1, 1]);
                    f.resolved = 2 + (i as i64 * 5) % 9;
                    f.backlog = Some(10 + (i as i64 * 3) % 8);
                    ReportRow {
                        key: crate::tui::reports::day_date((q.from + i as Millis * step) / DAY),
                        figures: f,
                    }
                })
                .collect()
        }
        _ => vec![ReportRow {
            key: "billing".into(),
            figures: figures(20, 8 * M, 5 * H, [0, 0, 0, 2, 3]),
        }],
    };
    Report {
        query: q.clone(),
        scope: "everyone".into(),
        tz: "UTC".into(),
        rows,
        total: figures(107, 9 * M, 4 * H, [2, 1, 4, 12, 22]),
        took_ms: 3,
    }
}

/// The queries the open reports view waits for.
fn wanted(h: &Harness) -> Vec<ReportQuery> {
    match &h.app.mode {
        Mode::Reports(v) => v.wanted(),
        _ => panic!("the reports view is not open"),
    }
}

/// Answer every report the view waits for with a made-up one.
fn answer_made_up(h: &mut Harness) {
    for q in wanted(h) {
        h.event(Event::Data(Response::Report(Box::new(made_up(&q)))));
    }
}

/// Type keys, returning the reports the app asks for (unanswered).
fn asked(h: &mut Harness, script: &str) -> Vec<ReportQuery> {
    let mut out = Vec::new();
    for key in parse_key_script(script).unwrap() {
        for fx in h.app.handle(Event::Key(key)) {
            if let Effect::Request(Request::Report(q)) = fx {
                out.push(q);
            }
        }
    }
    out
}

#[test]
fn g_r_opens_the_view_and_draws_hand_built_figures_at_160x45_and_80x24() {
    let mut h = harness(160, 45);
    h.keys("gR").unwrap();
    assert!(matches!(h.app.mode, Mode::Reports(_)));
    // Nothing arrived yet (the store's answers are replaced below): loading marks.
    answer_made_up(&mut h);
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("median first response per channel"),
        "{screen}"
    );
    assert!(screen.contains("12h 5m"), "{screen}");
    assert!(screen.contains("2h 5m"), "{screen}");
    assert!(screen.contains("everyone"), "{screen}");
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{7}'),
        "escaped"
    );
    insta::assert_snapshot!("reports_made_up_160x45", screen);

    // b: business hours, no request.
    assert!(asked(&mut h, "b").is_empty());
    let screen = h.screen().unwrap();
    assert!(screen.contains("durations: business hours"), "{screen}");
    // email's business-hours median is half of 12h 5m.
    assert!(screen.contains("6h 2m"), "{screen}");

    let mut h = harness(80, 24);
    h.keys(":reports<CR>").unwrap();
    answer_made_up(&mut h);
    let screen = h.screen().unwrap();
    assert!(screen.contains("email"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "escaped");
    insta::assert_snapshot!("reports_made_up_80x24", screen);
    // Esc: back to the queue.
    h.keys("<Esc>").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
}

#[test]
fn a_16_colour_terminal_gets_ascii_bars_and_named_sparklines() {
    let mut h = harness(160, 45);
    h.app.colors = ColorDepth::Plain;
    h.keys("gR").unwrap();
    answer_made_up(&mut h);
    let screen = h.screen().unwrap();
    assert!(screen.contains("####"), "{screen}");
    assert!(!screen.contains('█') && !screen.contains('⣿'), "{screen}");
    assert!(screen.contains("opened (max"), "{screen}");
    assert!(screen.contains("backlog (max"), "{screen}");
    // No colour at all in the view.
    let buf = h.term.backend().buffer();
    let coloured = buf
        .content
        .iter()
        .filter(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
        .count();
    // The status and message lines below the view keep theirs.
    assert!(coloured <= 2 * 160, "{coloured} coloured cells");
    insta::assert_snapshot!("reports_plain_160x45", screen);
}

#[test]
fn h_l_brackets_and_tab_ask_the_right_reports_and_a_stale_answer_is_dropped() {
    let mut h = harness(160, 45);
    let first = asked(&mut h, "gR");
    // Whole days, today the last (NOW: 2026-10-01 in the rig's UTC).
    let days = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
    let range = |qs: &[ReportQuery]| {
        let r = qs[0].days.clone();
        assert!(qs.iter().all(|q| q.days == r), "{qs:?}");
        r
    };
    assert_eq!(crate::tui::reports::day_date(NOW / DAY), "2026-10-01");
    let by = |qs: &[ReportQuery]| qs.iter().map(|q| q.by).collect::<Vec<_>>();
    assert_eq!(by(&first), vec![Slice::Channel, Slice::Day, Slice::Agent]);
    assert_eq!(range(&first), days("2026-09-02", "2026-10-01"));

    let back = asked(&mut h, "h");
    assert_eq!(range(&back), days("2026-08-03", "2026-09-01"));
    // The first screen's answers come late: dropped, the view still waits.
    for q in &first {
        h.event(Event::Data(Response::Report(Box::new(made_up(q)))));
    }
    let Mode::Reports(v) = &h.app.mode else {
        panic!()
    };
    assert!(v.loading() && v.report(Slice::Channel).is_none());

    let fwd = asked(&mut h, "l");
    assert_eq!(range(&fwd), days("2026-09-02", "2026-10-01"));
    assert!(asked(&mut h, "l").is_empty(), "not past today");

    let longer = asked(&mut h, "]");
    assert_eq!(range(&longer), days("2026-07-04", "2026-10-01"));
    let year = asked(&mut h, "+");
    assert_eq!(by(&year), vec![Slice::Channel, Slice::Week, Slice::Agent]);
    assert_eq!(range(&year), days("2025-10-02", "2026-10-01"));
    let shorter = asked(&mut h, "[-");
    assert_eq!(range(&shorter[3..]), days("2026-09-02", "2026-10-01"));

    let tab = asked(&mut h, "<Tab>");
    assert_eq!(by(&tab), vec![Slice::Channel, Slice::Day, Slice::Agent]);
    let tab = asked(&mut h, "<Tab>");
    assert_eq!(
        by(&tab),
        vec![Slice::Channel, Slice::Day, Slice::Agent, Slice::Team]
    );
    let reload = asked(&mut h, "r");
    assert_eq!(reload, tab);
    // A report verb outside the view says where it works.
    h.keys("q").unwrap();
    assert!(matches!(h.app.mode, Mode::Normal));
    h.keys(":report_slice<CR>").unwrap();
    let msg = &h.app.status.as_ref().unwrap().0;
    assert!(msg.contains("reports view (g R)"), "{msg}");
}

#[test]
fn an_error_from_the_server_stops_the_loading_marks() {
    let mut h = harness(160, 45);
    asked(&mut h, "gR");
    h.event(Event::Data(Response::Error(
        "reports: no access\u{1b}[2J".into(),
    )));
    let screen = h.screen().unwrap();
    assert!(
        screen.contains("not available: reports: no access"),
        "{screen}"
    );
    assert!(!screen.contains('\u{1b}'));
}

/// The demo workspace (a small one), its reporting facts derived as the server does.
fn demo_harness(w: u16, h: u16) -> Harness {
    let mut store = crate::store::Store::open_in_memory().unwrap();
    crate::demo::generate(
        &mut store,
        &crate::demo::DemoOptions {
            messages: 1500,
            contacts: 150,
            days: 60,
            ..Default::default()
        },
        NOW,
        &mut |_, _| {},
    )
    .unwrap();
    crate::demo::apply_sla(&mut store, NOW).unwrap();
    crate::server::reports::catch_up(&mut store, &crate::demo::workspace().sla, &mut |_| {})
        .unwrap();
    Harness::new(store, "me", w, h, NOW).unwrap()
}

#[test]
fn the_demo_workspace_reports_real_figures_at_160x45_and_80x24() {
    let mut h = demo_harness(160, 45);
    h.keys("gR").unwrap();
    let Mode::Reports(v) = &h.app.mode else {
        panic!()
    };
    assert!(!v.loading(), "every report answered: {:?}", v.error);
    let channels = v.report(Slice::Channel).unwrap();
    assert!(channels.rows.len() >= 3, "{:?}", channels.rows);
    assert!(channels.total.first_response.count > 0);
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("reports_demo_160x45", screen);
    // Tab to the agent slicing: the main table is the agents'.
    h.keys("<Tab>").unwrap();
    let screen = h.screen().unwrap();
    assert!(screen.contains("by agent"), "{screen}");

    let mut h = demo_harness(80, 24);
    h.keys("gR").unwrap();
    let screen = h.screen().unwrap();
    insta::assert_snapshot!("reports_demo_80x24", screen);
}

#[test]
fn a_reconnect_asks_the_open_reports_again() {
    let mut h = harness(160, 45);
    let first = asked(&mut h, "gR");
    let fx = h.app.handle(Event::Connection {
        up: true,
        line: "connected".into(),
    });
    let again: Vec<ReportQuery> = fx
        .into_iter()
        .filter_map(|e| match e {
            Effect::Request(Request::Report(q)) => Some(q),
            _ => None,
        })
        .collect();
    assert_eq!(again, first);
}

#[test]
fn an_agent_sees_their_own_figures_and_the_header_says_so() {
    let mut h = demo_harness(160, 45);
    h.who = crate::server::Identity {
        role: crate::api::Role::Agent,
        teams: vec!["support".into()],
        ..crate::server::Identity::local_admin("alice")
    };
    h.keys("gR").unwrap();
    let Mode::Reports(v) = &h.app.mode else {
        panic!()
    };
    let agents = v.report(Slice::Agent).unwrap();
    let keys: Vec<&str> = agents.rows.iter().map(|r| r.key.as_str()).collect();
    assert!(keys.iter().all(|k| *k == "alice"), "{keys:?}");
    let scope = agents.scope.clone();
    let screen = h.screen().unwrap();
    let header = screen.lines().nth(1).unwrap();
    assert!(header.contains(&scope), "{scope} in {header}");
    assert!(!screen.contains("carol"), "{screen}");
}

#[test]
fn help_from_the_view_lists_its_keys_and_esc_comes_back_to_it() {
    let mut h = harness(160, 45);
    h.keys("gR").unwrap();
    asked(&mut h, "h");
    let queries = wanted(&h);
    h.keys("?").unwrap();
    assert!(matches!(h.app.mode, Mode::Help { .. }));
    let text: Vec<String> = crate::tui::ui::help::lines(&h.app)
        .iter()
        .map(|l| l.to_string())
        .collect();
    let at = text
        .iter()
        .position(|l| l.starts_with("Reports keys"))
        .unwrap();
    assert!(text[at + 1..].iter().any(|l| l.contains("report_back")));
    // The answers to `h` arrive while the help is up: the view gets them.
    for q in queries {
        h.event(Event::Data(Response::Report(Box::new(made_up(&q)))));
    }
    h.keys("<Esc>").unwrap();
    let Mode::Reports(v) = &h.app.mode else {
        panic!("back in the reports view")
    };
    assert!(!v.loading());
    assert!(v.report(Slice::Channel).is_some());
    assert_eq!(v.last, v.today - 30, "the range it had");
}

#[test]
fn j_k_gg_g_scroll_a_long_table_and_a_new_slicing_starts_at_its_top() {
    let mut h = harness(160, 45);
    h.keys("gR<Tab><Tab><Tab><Tab>").unwrap();
    let Mode::Reports(v) = &h.app.mode else {
        panic!()
    };
    assert_eq!(v.by, Slice::Day);
    answer_made_up(&mut h);
    let (first, last) = {
        let Mode::Reports(v) = &h.app.mode else {
            panic!()
        };
        let r = v.report(Slice::Day).unwrap();
        assert_eq!(r.rows.len(), 30);
        (r.rows[0].key.clone(), r.rows[29].key.clone())
    };
    let table = |h: &mut Harness| {
        let s = h.screen().unwrap();
        let at = s.find("by day (Tab: next)").unwrap();
        s[at..].to_string()
    };
    let top = table(&mut h);
    assert!(top.contains(&first) && !top.contains(&last), "{top}");
    assert!(top.contains("more (j scrolls"), "{top}");
    h.keys("G").unwrap();
    let bottom = table(&mut h);
    assert!(
        bottom.contains(&last) && !bottom.contains(&first),
        "{bottom}"
    );
    assert!(bottom.contains("above (k scrolls up)"), "{bottom}");
    assert!(!bottom.contains("more (j"), "{bottom}");
    // j at the bottom stays; one k shows one row more above.
    h.keys("jjj").unwrap();
    assert_eq!(table(&mut h), bottom);
    h.keys("gg3j").unwrap();
    let Mode::Reports(v) = &h.app.mode else {
        panic!()
    };
    assert_eq!(v.scroll, 3);
    // Another slicing starts at its top.
    h.keys("<Tab>").unwrap();
    let Mode::Reports(v) = &h.app.mode else {
        panic!()
    };
    assert_eq!((v.by, v.scroll), (Slice::Week, 0));
}
