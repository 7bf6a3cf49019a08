//! The shape of a demo workspace, decided before anything is written: who the people are, which
//! channels they use, their support threads, and when every message, reply, note and resolution
//! happens. Only numbers and short strings live here; the texts are written while inserting.
//!
//! Everything derives from the seed: each person and each thread has its own sub-generator, so a
//! plan is the same on every run and every platform.

use super::DemoOptions;
use super::rng::Rng;
use super::text::{self, Lang};
use crate::model::{Channel, Millis, Priority};
use std::collections::HashSet;

pub(crate) const MINUTE: Millis = 60_000;
pub(crate) const HOUR: Millis = 60 * MINUTE;
pub(crate) const DAY: Millis = 24 * HOUR;

/// Sub-generator streams (one per kind of entity).
pub(crate) const STREAM_PERSON: u64 = 1;
pub(crate) const STREAM_THREAD: u64 = 2;
pub(crate) const STREAM_MESSAGE: u64 = 3;
const STREAM_ALLOC: u64 = 4;

/// One customer of the demo.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub name: String,
    /// How agents greet them.
    pub first: String,
    pub lang: Lang,
    pub company: Option<&'static str>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub telegram: Option<String>,
    pub visitor: Option<String>,
    /// Instagram and Messenger user ids (digits), for those who write there.
    pub instagram: Option<String>,
    pub messenger: Option<String>,
    pub vip: bool,
    /// Their first Telegram message shares their contact card (their phone number).
    pub shares_card: bool,
}

/// How a person's last thread stands when the demo starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Resolved,
    Open,
    Pending,
    Snoozed,
}

/// One support or sales topic a person writes about.
#[derive(Debug, Clone)]
pub(crate) struct Thread {
    pub person: u32,
    pub topic: u8,
    pub agent: u8,
    pub priority: Priority,
    pub end: End,
    /// A triage rule assigns it as soon as it arrives (before any reply).
    pub triage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The customer writes.
    In,
    /// An agent replies.
    Out,
    /// An agent writes an internal note.
    Note,
    Resolve,
    Snooze,
    /// The agent marks the conversation as waiting on the customer.
    Pend,
}

/// One thing that happens, at one time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub at: Millis,
    pub thread: u32,
    /// Position in the thread (workflow steps come after the messages).
    pub idx: u16,
    pub kind: Kind,
    pub channel: Channel,
    /// The customer's last message of its thread.
    pub last_in: bool,
}

pub(crate) struct Plan {
    pub persons: Vec<Person>,
    pub threads: Vec<Thread>,
    /// Every step, in time order.
    pub steps: Vec<Step>,
    /// How many message rows the steps insert.
    pub messages: usize,
}

/// Channel sets and how common they are: most people use two or three channels. WhatsApp and
/// SMS need a phone number (the sets fall back to their other channels for those without).
const CHANNEL_SETS: &[(&[Channel], u32)] = &[
    (&[Channel::Email], 9),
    (&[Channel::Telegram], 3),
    (&[Channel::WebChat], 4),
    (&[Channel::Email, Channel::WebChat], 20),
    (&[Channel::Email, Channel::Telegram], 15),
    (&[Channel::Telegram, Channel::WebChat], 6),
    (&[Channel::Email, Channel::Telegram, Channel::WebChat], 18),
    (&[Channel::WhatsApp, Channel::Email], 9),
    (&[Channel::WhatsApp, Channel::Sms, Channel::Email], 6),
    (EVERYWHERE, 3),
    (&[Channel::WhatsApp, Channel::WebChat, Channel::Email], 4),
    (&[Channel::Sms, Channel::Email], 3),
    (&[Channel::Instagram, Channel::Email], 3),
    (&[Channel::Messenger, Channel::WebChat, Channel::Email], 2),
    (&[Channel::Instagram, Channel::WhatsApp], 2),
];

/// Every channel a customer writes on.
pub(crate) const EVERYWHERE: &[Channel] = &[
    Channel::WhatsApp,
    Channel::Sms,
    Channel::Email,
    Channel::Telegram,
    Channel::WebChat,
];

/// How often a customer's later message in a thread is a phone call instead (for those with
/// a phone number), and an agent's note an event from another system (a purchase, a booking).
const CALL_CHANCE: f64 = 0.15;
const EVENT_CHANCE: f64 = 0.3;

pub(crate) fn build(opts: &DemoOptions, now: Millis) -> Plan {
    let counts = allocate(opts);
    let mut persons = Vec::with_capacity(opts.contacts);
    let mut threads = Vec::new();
    let mut steps = Vec::with_capacity(opts.messages + opts.messages / 4);
    let mut emails = HashSet::with_capacity(opts.contacts);
    let span = (opts.days.max(1) as Millis) * DAY;
    let mut messages = 0;
    let mut showcased = false;
    for (idx, &n) in counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let mut rng = Rng::derive(opts.seed, STREAM_PERSON, idx as u64);
        let pid = persons.len() as u32;
        let (mut person, channels) = person(&mut rng, opts.seed, idx as u64, n, &mut emails);
        // The first who uses everything is writing right now: their conversation tops the
        // queue when the demo opens.
        let showcase =
            !showcased && EVERYWHERE.iter().all(|c| channels.contains(c)) && person.phone.is_some();
        showcased |= showcase;
        let used = plan_threads(
            &mut rng,
            pid,
            &person,
            &channels,
            (n, showcase),
            span,
            now,
            &mut threads,
            &mut steps,
        );
        if !used.contains(&Channel::Telegram) {
            person.telegram = None;
        }
        if !used.contains(&Channel::WebChat) {
            person.visitor = None;
        }
        if !used.contains(&Channel::Instagram) {
            person.instagram = None;
        }
        if !used.contains(&Channel::Messenger) {
            person.messenger = None;
        }
        persons.push(person);
        messages += n;
    }
    for s in &mut steps {
        // Only a workspace squeezed into very few days can overshoot; nothing is in the future.
        s.at = s.at.min(now - 1);
    }
    steps.sort_unstable_by_key(|s| (s.at, s.thread, s.idx));
    Plan {
        persons,
        threads,
        steps,
        messages,
    }
}

/// How many messages each contact gets: a long tail (a few regulars write a lot), exactly
/// `opts.messages` in total.
fn allocate(opts: &DemoOptions) -> Vec<usize> {
    let n = opts.contacts;
    if n == 0 {
        return Vec::new();
    }
    let mut rng = Rng::derive(opts.seed, STREAM_ALLOC, 0);
    let weights: Vec<f64> = (0..n)
        .map(|_| (1.0 / (1.0 - rng.unit()).max(1e-9).sqrt()).min(12.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let m = opts.messages as f64;
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|w| (m * w / total).floor() as usize)
        .collect();
    let assigned: usize = counts.iter().sum();
    // Largest remainders get the rest.
    let mut rest: Vec<(f64, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (m * w / total - counts[i] as f64, i))
        .collect();
    rest.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rest.iter().take(opts.messages.saturating_sub(assigned)) {
        counts[i] += 1;
    }
    counts
}

fn person(
    rng: &mut Rng,
    seed: u64,
    idx: u64,
    n: usize,
    emails: &mut HashSet<String>,
) -> (Person, Vec<Channel>) {
    let weights: Vec<u32> = text::LANG_WEIGHTS.iter().map(|(_, w)| *w).collect();
    let lang = text::LANG_WEIGHTS[rng.weighted(&weights)].0;
    let name = text::name(rng, lang);
    let company = if rng.chance(0.12) {
        Some(text::company(rng))
    } else {
        None
    };
    let set_weights: Vec<u32> = CHANNEL_SETS.iter().map(|(_, w)| *w).collect();
    let mut channels = CHANNEL_SETS[rng.weighted(&set_weights)].0.to_vec();
    // Some regulars use everything: their timeline mixes WhatsApp, SMS, email, Telegram and
    // the web chat (they write enough for every channel of theirs to show).
    if lang == Lang::En && n >= 20 && rng.chance(0.3) {
        channels = EVERYWHERE.to_vec();
    }
    // WhatsApp and SMS numbers are phones: US and UK ones only (see `phone` below).
    if lang != Lang::En {
        channels.retain(|c| !matches!(c, Channel::WhatsApp | Channel::Sms));
        if channels.is_empty() || channels == [Channel::Instagram] {
            channels.push(Channel::Email);
        }
    }
    // Their favourite channel first.
    let fav = rng.below(channels.len() as u64) as usize;
    channels.swap(0, fav);
    let has = |c| channels.contains(&c);
    // Customers abroad are reached by email (or give it in the chat forms): see `shares_card`.
    let email = if has(Channel::Email) || lang != Lang::En || rng.chance(0.7) {
        let domain = match company {
            Some((_, d)) => d,
            None => text::mail_domain(rng, lang),
        };
        let mut addr = if rng.chance(0.3) {
            format!("{}{}@{domain}", name.email_base, rng.range(1, 99))
        } else {
            format!("{}@{domain}", name.email_base)
        };
        if emails.contains(&addr) {
            addr = format!("{}.{idx}@{domain}", name.email_base);
        }
        emails.insert(addr.clone());
        Some(addr)
    } else {
        None
    };
    // Phone numbers (US and UK): parsing international numbers of many countries is slow in
    // the phonenumber crate (its regex cache thrashes), which a million-message workspace feels.
    let phone = if lang == Lang::En
        && (has(Channel::Telegram)
            || has(Channel::WhatsApp)
            || has(Channel::Sms)
            || rng.chance(0.15))
    {
        Some(text::phone(idx, seed, lang))
    } else {
        None
    };
    let telegram = has(Channel::Telegram).then(|| {
        // Distinct for distinct people: a bijection of the index.
        let id = 100_000_000 + (idx.wrapping_mul(2_654_435_761) + seed % 1000) % 900_000_000;
        id.to_string()
    });
    let visitor =
        has(Channel::WebChat).then(|| format!("v_{:08x}{:x}", rng.next_u64() as u32, idx));
    // Meta's page-scoped ids: long digit strings, distinct per person (multiplying by a number
    // prime to 10, then shifting, is one-to-one modulo a power of 10).
    let instagram = has(Channel::Instagram).then(|| {
        format!(
            "17841{:010}",
            (idx.wrapping_mul(2_654_435_761) % 10_000_000_000 + seed % 1000) % 10_000_000_000
        )
    });
    let messenger = has(Channel::Messenger).then(|| {
        format!(
            "24{:014}",
            (idx.wrapping_mul(40_503) % 100_000_000_000_000 + seed % 1000) % 100_000_000_000_000
        )
    });
    // The bot asks for the email of their orders; some share their contact card instead (and
    // those with no email must, or their Telegram and web chats would never meet).
    let shares_card =
        has(Channel::Telegram) && phone.is_some() && (email.is_none() || rng.chance(0.15));
    let vip = rng.chance(if company.is_some() { 0.2 } else { 0.05 });
    (
        Person {
            name: name.full,
            first: name.first,
            lang,
            company: company.map(|(c, _)| c),
            email,
            phone,
            telegram,
            visitor,
            instagram,
            messenger,
            vip,
            shares_card,
        },
        channels,
    )
}

/// Split `n` messages into threads, choose who says what on which channel, and place it all
/// in time. Returns the channels the person actually wrote on.
#[allow(clippy::too_many_arguments)]
fn plan_threads(
    rng: &mut Rng,
    pid: u32,
    person: &Person,
    channels: &[Channel],
    (n, showcase): (usize, bool),
    span: Millis,
    now: Millis,
    threads: &mut Vec<Thread>,
    steps: &mut Vec<Step>,
) -> Vec<Channel> {
    let end = match rng.weighted(&[76, 14, 7, 3]) {
        0 => End::Resolved,
        1 => End::Open,
        2 => End::Pending,
        _ => End::Snoozed,
    };
    let end = if showcase { End::Open } else { end };
    // Thread lengths.
    let mut lens: Vec<usize> = Vec::new();
    let mut left = n;
    while left > 0 {
        let t = (rng.range(2, 9) as usize).min(left);
        lens.push(t);
        left -= t;
    }
    let mut end = end;
    if lens.last() == Some(&1) && end != End::Open {
        if lens.len() > 1 {
            lens.pop();
            if let Some(l) = lens.last_mut() {
                *l += 1;
            }
        } else {
            end = End::Open;
        }
    }
    // Roles.
    let mut roles: Vec<Vec<Kind>> = Vec::with_capacity(lens.len());
    for (ti, &t) in lens.iter().enumerate() {
        let last_thread = ti + 1 == lens.len();
        let mut r = Vec::with_capacity(t);
        r.push(Kind::In);
        for i in 1..t {
            let next = match r[i - 1] {
                Kind::In => [Kind::Out, Kind::Note, Kind::In][rng.weighted(&[78, 12, 10])],
                Kind::Note => Kind::Out,
                _ => [Kind::In, Kind::Out, Kind::Note][rng.weighted(&[88, 4, 8])],
            };
            r.push(next);
        }
        if last_thread && t > 1 {
            match end {
                End::Open => r[t - 1] = Kind::In,
                End::Pending | End::Snoozed => r[t - 1] = Kind::Out,
                End::Resolved => {}
            }
        }
        roles.push(r);
    }
    // Channels of the customer's messages: mostly where they wrote last, sometimes another of
    // theirs; every channel of theirs at least once when there are enough messages.
    let mut chans: Vec<Vec<Channel>> = Vec::with_capacity(lens.len());
    let mut in_positions: Vec<(usize, usize)> = Vec::new();
    for (ti, r) in roles.iter().enumerate() {
        let mut c = Vec::with_capacity(r.len());
        let mut cur = if rng.chance(0.6) {
            channels[0]
        } else {
            rng.pick(channels)
        };
        for (i, k) in r.iter().enumerate() {
            if *k == Kind::In {
                if i > 0 && channels.len() > 1 && rng.chance(0.3) {
                    cur = rng.pick(channels);
                }
                in_positions.push((ti, i));
            }
            c.push(cur);
        }
        chans.push(c);
    }
    for &ch in channels {
        let used = in_positions.iter().any(|&(t, i)| chans[t][i] == ch);
        if !used && in_positions.len() > channels.len() {
            // Any customer message but the very first.
            let k = 1 + rng.below(in_positions.len() as u64 - 1) as usize;
            let (t, i) = in_positions[k];
            chans[t][i] = ch;
        }
    }
    // Now and then the customer calls instead of writing (a call log, from the phone system),
    // and an agent's note is an event another system reported (a purchase, a booking).
    // Replies and notes go out where the customer last wrote (not to a phone call: to where
    // they wrote before it).
    for (t, r) in roles.iter().enumerate() {
        let mut last_in = chans[t][0];
        let last = r.iter().rposition(|k| *k == Kind::In);
        for (i, k) in r.iter().enumerate() {
            if *k == Kind::In {
                if i > 0 && Some(i) != last && person.phone.is_some() && rng.chance(CALL_CHANCE) {
                    chans[t][i] = Channel::Phone;
                } else {
                    last_in = chans[t][i];
                }
            } else if *k == Kind::Note
                && (person.email.is_some() || person.phone.is_some())
                && rng.chance(EVENT_CHANCE)
            {
                chans[t][i] = Channel::Event;
            } else {
                chans[t][i] = last_in;
            }
        }
    }
    let mut used: Vec<Channel> = Vec::new();
    for &(t, i) in &in_positions {
        if !used.contains(&chans[t][i]) {
            used.push(chans[t][i]);
        }
    }
    // Gaps between consecutive steps of each thread (index 0: none), then the resolution.
    let mut gaps: Vec<Vec<Millis>> = Vec::with_capacity(lens.len());
    let mut tails: Vec<Millis> = Vec::with_capacity(lens.len());
    for (t, r) in roles.iter().enumerate() {
        let mut g = Vec::with_capacity(r.len());
        g.push(0);
        for i in 1..r.len() {
            g.push(gap(rng, r[i - 1], r[i], chans[t][i], person.vip));
        }
        gaps.push(g);
        tails.push(rng.range(5 * MINUTE, 12 * HOUR));
    }
    if showcase && let Some(t) = tails.last_mut() {
        *t = MINUTE;
    }
    let mut durations: Vec<Millis> = gaps
        .iter()
        .zip(&tails)
        .map(|(g, tail)| g.iter().sum::<Millis>() + tail)
        .collect();
    let total: Millis = durations.iter().sum();
    let budget = span * 17 / 20;
    if total > budget {
        // A very busy person: compress their threads to fit the time span.
        let f = budget as f64 / total as f64;
        for (g, tail) in gaps.iter_mut().zip(tails.iter_mut()) {
            for x in g.iter_mut() {
                *x = ((*x as f64 * f) as Millis).max(MINUTE / 2);
            }
            *tail = ((*tail as f64 * f) as Millis).max(MINUTE);
        }
        durations = gaps
            .iter()
            .zip(&tails)
            .map(|(g, tail)| g.iter().sum::<Millis>() + tail)
            .collect();
    }
    let total: Millis = durations.iter().sum();
    // The last thread of an active conversation is recent; otherwise idle time is spread
    // randomly before, between and after the threads.
    let after_last = if end == End::Resolved {
        None
    } else if showcase {
        Some(MINUTE)
    } else {
        Some(rng.range(2 * MINUTE, 36 * HOUR).min(span / 20))
    };
    let min_between = HOUR.min(span / (10 * lens.len() as Millis));
    let reserved = total + after_last.unwrap_or(MINUTE) + min_between * lens.len() as Millis;
    let free = (span - reserved).max(0);
    let slots = lens.len() + usize::from(after_last.is_none());
    let weights: Vec<f64> = (0..slots)
        .map(|_| -(1.0 - rng.unit()).max(1e-12).ln())
        .collect();
    let wsum: f64 = weights.iter().sum::<f64>().max(1e-12);
    let mut at = now - span;
    for (t, r) in roles.iter().enumerate() {
        at += (free as f64 * weights[t] / wsum) as Millis + min_between;
        let tid = threads.len() as u32;
        let last_thread = t + 1 == lens.len();
        let topic = pick_topic(rng, person.company.is_some(), person.lang);
        threads.push(Thread {
            person: pid,
            topic,
            agent: rng.below(text::AGENTS.len() as u64) as u8,
            priority: if person.vip && rng.chance(0.6) {
                Priority::High
            } else {
                [
                    Priority::Normal,
                    Priority::High,
                    Priority::Urgent,
                    Priority::Low,
                ][rng.weighted(&[80, 12, 3, 5])]
            },
            end: if last_thread { end } else { End::Resolved },
            triage: rng.chance(0.25),
        });
        let last_in = r.iter().rposition(|k| *k == Kind::In);
        for (i, k) in r.iter().enumerate() {
            at += gaps[t][i];
            steps.push(Step {
                at,
                thread: tid,
                idx: i as u16,
                kind: *k,
                channel: chans[t][i],
                last_in: last_in == Some(i),
            });
        }
        let workflow = match (last_thread, end) {
            (false, _) | (true, End::Resolved) => Some(Kind::Resolve),
            (true, End::Snoozed) => Some(Kind::Snooze),
            (true, End::Pending) => Some(Kind::Pend),
            (true, End::Open) => None,
        };
        let step_at = at + tails[t];
        at = step_at;
        if let Some(kind) = workflow {
            steps.push(Step {
                at: step_at,
                thread: tid,
                idx: r.len() as u16,
                kind,
                channel: chans[t][r.len() - 1],
                last_in: false,
            });
        }
    }
    used
}

fn pick_topic(rng: &mut Rng, b2b: bool, lang: Lang) -> u8 {
    // Customers abroad write about what their language's lines cover.
    let covered = text::lang_topics(lang);
    let weights: Vec<u32> = text::TOPICS
        .iter()
        .map(|t| match (b2b, t.tag) {
            _ if covered.is_some_and(|c| !c.iter().any(|(tag, _)| *tag == t.tag)) => 0,
            (true, "sales" | "onboarding" | "billing") => t.weight * 4,
            (false, "onboarding") => 1,
            _ => t.weight,
        })
        .collect();
    rng.weighted(&weights) as u8
}

/// How long after `prev` the next step `next` (on `channel`) happens.
fn gap(rng: &mut Rng, prev: Kind, next: Kind, channel: Channel, vip: bool) -> Millis {
    let chat = channel != Channel::Email;
    match (prev, next) {
        (_, Kind::Note) => rng.range(2 * MINUTE, 30 * MINUTE),
        (Kind::Note, _) => rng.range(MINUTE, 20 * MINUTE),
        (Kind::In, Kind::Out) => {
            let g = if chat {
                rng.range(MINUTE, 25 * MINUTE)
            } else {
                rng.range(15 * MINUTE, 6 * HOUR)
            };
            if vip { g / 2 } else { g }
        }
        (Kind::Out, Kind::In) => {
            if chat && rng.chance(0.7) {
                rng.range(MINUTE, 30 * MINUTE)
            } else {
                rng.range(HOUR, 30 * HOUR)
            }
        }
        (Kind::In, Kind::In) => {
            if chat {
                rng.range(MINUTE, 5 * MINUTE)
            } else {
                rng.range(2 * HOUR, 24 * HOUR)
            }
        }
        _ => rng.range(20 * HOUR, 48 * HOUR),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_exact_and_long_tailed() {
        let opts = DemoOptions::default();
        let c = allocate(&opts);
        assert_eq!(c.iter().sum::<usize>(), opts.messages);
        assert!(c.iter().all(|&n| n >= 1));
        assert!(*c.iter().max().unwrap_or(&0) > 3 * opts.messages / opts.contacts);
        let small = DemoOptions {
            contacts: 50,
            messages: 20,
            ..DemoOptions::default()
        };
        assert_eq!(allocate(&small).iter().sum::<usize>(), 20);
    }

    #[test]
    fn meta_ids_are_distinct_per_person() {
        let opts = DemoOptions {
            contacts: 20_000,
            messages: 60_000,
            ..DemoOptions::default()
        };
        let plan = build(&opts, 1_800_000_000_000);
        for ids in [
            plan.persons
                .iter()
                .filter_map(|p| p.instagram.as_ref())
                .collect::<Vec<_>>(),
            plan.persons
                .iter()
                .filter_map(|p| p.messenger.as_ref())
                .collect(),
        ] {
            assert!(ids.len() > 100, "{}", ids.len());
            let distinct: HashSet<_> = ids.iter().collect();
            assert_eq!(distinct.len(), ids.len());
            for id in ids {
                let normalized =
                    crate::identity::normalize(crate::model::IdentityKind::Instagram, id).unwrap();
                assert_eq!(&normalized, id);
            }
        }
        // WhatsApp and SMS only for those with a phone.
        for s in &plan.steps {
            let p = &plan.persons[plan.threads[s.thread as usize].person as usize];
            if matches!(s.channel, Channel::WhatsApp | Channel::Sms | Channel::Phone) {
                assert!(p.phone.is_some(), "{} on {}", p.name, s.channel);
            }
        }
    }

    #[test]
    fn steps_are_ordered_and_in_the_past() {
        let now = 1_800_000_000_000;
        let opts = DemoOptions::default();
        let plan = build(&opts, now);
        assert_eq!(plan.messages, opts.messages);
        let msgs = plan
            .steps
            .iter()
            .filter(|s| matches!(s.kind, Kind::In | Kind::Out | Kind::Note))
            .count();
        assert_eq!(msgs, opts.messages);
        assert!(plan.steps.windows(2).all(|w| w[0].at <= w[1].at));
        let first = plan.steps.first().map(|s| s.at).unwrap_or(0);
        let last = plan.steps.last().map(|s| s.at).unwrap_or(0);
        assert!(first >= now - 90 * DAY, "{}", (now - first) / DAY);
        assert!(last < now, "{}", last - now);
        // Every thread starts with the customer.
        let mut seen = HashSet::new();
        for s in &plan.steps {
            if seen.insert(s.thread) {
                assert_eq!((s.kind, s.idx), (Kind::In, 0));
            }
        }
    }
}
