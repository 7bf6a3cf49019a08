//! A deterministic Maildir of realistic support mail, for benchmarks and for seeding real
//! servers (the IMAP sync benchmark delivers it into Dovecot): plain, multipart/alternative,
//! HTML-only, PDF attachments, RFC 2047 names and subjects, ISO-8859-1 quoted-printable, threads
//! with In-Reply-To/References, several customers per domain, and our replies in `.Sent/`
//! (From `support@braid.test`).

use std::fmt::Write as _;
use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const FIRST: &[&str] = &[
    "Ann",
    "Bob",
    "Chloé",
    "Dmitri",
    "Émilie",
    "Farid",
    "Greta",
    "Hiroshi",
    "Inés",
    "Jürgen",
    "Kateřina",
    "Lars",
    "Mei",
    "Nils",
    "Olga",
    "Pedro",
    "Zoë",
    "Søren",
    "Ayşe",
    "Łukasz",
];
const LAST: &[&str] = &[
    "Lee", "Martin", "Dupont", "Ivanov", "García", "Müller", "Tanaka", "Kowalski", "Øberg",
    "Nguyen", "Silva", "O'Brien", "Novák", "Rossi", "Yılmaz",
];
const TOPICS: &[&str] = &[
    "Invoice 2023-114 is wrong",
    "Delivery to Zürich delayed",
    "Cannot log in since the update",
    "Question about the Pro plan",
    "Refund for order #48213",
    "Änderung der Rechnungsadresse",
    "Problème de connexion",
    "Bulk discount for 40 seats?",
    "API rate limits",
    "Cancel my subscription",
];
const SENTENCES: &[&str] = &[
    "I ordered the blue model last week and it still has not shipped.",
    "Could you please check what happened with my payment?",
    "The invoice lists 12 seats but we only have 10 users.",
    "Our team in München cannot open the dashboard since Tuesday.",
    "Merci de me rappeler dès que possible.",
    "I attached the screenshot of the error message.",
    "We are happy with the product, just this one thing.",
    "Is there a way to export all conversations as CSV?",
    "The tracking number does not work on the carrier's site.",
    "Thanks a lot for the quick answer yesterday!",
];

fn encoded_word(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    // RFC 2047 Q encoding of UTF-8.
    let mut out = String::from("=?UTF-8?Q?");
    for b in s.bytes() {
        match b {
            b' ' => out.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            _ => {
                let _ = write!(out, "={b:02X}");
            }
        }
    }
    out.push_str("?=");
    out
}

/// Syllables of the product and place names: 16 x 16 x 20 = 5,120 names, used with a Zipf-like
/// frequency (rank k about 1/k as often as the first), so a search meets common, medium and
/// rare words as in real mail.
const SYL_A: &[&str] = &[
    "kal", "mis", "tor", "ven", "bra", "sol", "qui", "dar", "fen", "lum", "nor", "pel", "ras",
    "zan", "hol", "gri",
];
const SYL_B: &[&str] = &[
    "ve", "tra", "li", "mo", "ne", "sa", "ko", "ri", "du", "pa", "te", "lo", "mi", "ga", "bu", "fe",
];
const SYL_C: &[&str] = &[
    "ro", "nd", "x", "lia", "ton", "mar", "vik", "sen", "berg", "ia", "ux", "ter", "mo", "dal",
    "ine", "os", "ek", "ham", "ra", "lin",
];
const NAMES: usize = 16 * 16 * 20;

/// The product name of rank `k` (0-based; rank 0 is the most frequent).
pub fn product_name(k: usize) -> String {
    let k = k % NAMES;
    format!(
        "{}{}{}",
        SYL_A[k % 16],
        SYL_B[(k / 16) % 16],
        SYL_C[(k / 256) % 20]
    )
}

/// A rank with P(k) roughly proportional to 1/(k+1) over `NAMES` names.
fn zipf(rng: &mut Rng) -> usize {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    ((NAMES as f64 + 1.0).powf(u) - 1.0) as usize
}

fn details(rng: &mut Rng, order: u32) -> String {
    let product = product_name(zipf(rng));
    let place = product_name(zipf(rng) + 7);
    match rng.below(4) {
        0 => {
            format!("It is about the {product} I bought for our office in {place}, order {order}.")
        }
        1 => format!("Order {order}: the {product} arrived damaged, the box was crushed."),
        2 => format!("Could you send the {product} to {place} instead? The order is {order}."),
        _ => format!("We use the {product} every day and would like two more for {place}."),
    }
}

fn paragraph(rng: &mut Rng) -> String {
    let n = 2 + rng.below(4);
    (0..n)
        .map(|_| rng.pick(SENTENCES))
        .collect::<Vec<_>>()
        .join(" ")
}

fn customer_name(c: usize) -> (&'static str, &'static str) {
    (FIRST[c % FIRST.len()], LAST[(c / FIRST.len()) % LAST.len()])
}

fn customer_local(c: usize) -> String {
    let (first, last) = customer_name(c);
    let ascii = |s: &str| {
        s.to_lowercase()
            .replace(|ch: char| !ch.is_ascii_alphanumeric(), "x")
    };
    format!("{}.{}{c}", ascii(first), ascii(last))
}

/// Customer `c`'s usual address (there are `n / 8` customers, at least 10).
pub fn customer_address(c: usize) -> String {
    format!("{}@example{}.com", customer_local(c), c % 50)
}

/// Write `n` messages into the Maildir `root` (`cur/`, `new/`, and `.Sent/` for our replies);
/// returns the bytes written. The same `n` always writes the same bytes.
pub fn generate(root: &Path, n: usize) -> std::io::Result<usize> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for d in ["cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let customers = (n / 8).max(10);
    let mut last_id: Vec<Option<String>> = vec![None; customers];
    // Each customer's order number (five or six digits), quoted in their mail.
    let orders: Vec<u32> = (0..customers)
        .map(|_| 10_000 + (rng.next() % 990_000) as u32)
        .collect();
    let mut bytes = 0;
    let base = 1_600_000_000u64;
    for i in 0..n {
        let c = rng.below(customers);
        let (first, last) = customer_name(c);
        // A quarter of the customers also write from their work address, now and then.
        let addr = if c % 4 == 1 && rng.below(3) == 0 {
            format!("{}@work{}.example.org", customer_local(c), c % 30)
        } else {
            customer_address(c)
        };
        let order = orders[c];
        let name = encoded_word(&format!("{first} {last}"));
        let ours = rng.below(10) < 2 && last_id[c].is_some();
        let id = format!(
            "{i}.{}@{}",
            rng.next() % 1_000_000,
            if ours {
                "braid.test"
            } else {
                "mail.example.com"
            }
        );
        let topic = TOPICS[c % TOPICS.len()];
        let (subject, thread) = match &last_id[c] {
            Some(prev) if rng.below(3) > 0 => (
                format!("Re: {topic}"),
                format!("In-Reply-To: <{prev}>\r\nReferences: <{prev}>\r\n"),
            ),
            _ => (topic.to_string(), String::new()),
        };
        let (from, to) = if ours {
            (
                "Support <support@braid.test>".to_string(),
                format!("{name} <{addr}>"),
            )
        } else {
            (format!("{name} <{addr}>"), "support@braid.test".to_string())
        };
        let t = base + i as u64 * 37;
        let date = httpdate(t);
        let mut m = format!(
            "Return-Path: <{addr}>\r\nReceived: from mx.example.com (mx.example.com [192.0.2.1])\r\n\
             \tby mail.braid.test with ESMTPS id {i:x}; {date}\r\n\
             From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{id}>\r\n\
             {thread}MIME-Version: 1.0\r\n",
            encoded_word(&subject)
        );
        let text = format!(
            "Hello,\r\n\r\n{} {}\r\n\r\n{}\r\n\r\nBest regards,\r\n{first} {last}\r\n\r\n> {}\r\n> {}\r\n",
            details(&mut rng, order),
            paragraph(&mut rng),
            paragraph(&mut rng),
            rng.pick(SENTENCES),
            rng.pick(SENTENCES)
        );
        match rng.below(20) {
            0..=10 => {
                m.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
                m.push_str(&text);
            }
            11 => {
                m.push_str("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
                m.push_str("Bonjour,\r\n\r\nJe n'ai pas re=E7u ma commande, pouvez-vous v=E9rifier ?\r\n\r\nCordialement,\r\nZo=EB\r\n");
            }
            12..=16 => {
                let html = format!(
                    "<html><body><p>Hello,</p><p>{} {}</p><p>{}</p><p>Best regards,<br>{first} {last}</p></body></html>",
                    details(&mut rng, order),
                    paragraph(&mut rng),
                    paragraph(&mut rng)
                );
                let _ = write!(
                    m,
                    "Content-Type: multipart/alternative; boundary=\"alt{i}\"\r\n\r\n\
                     --alt{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
                     --alt{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt{i}--\r\n"
                );
            }
            17..=18 => {
                let _ = write!(
                    m,
                    "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><div>Hi team,</div>\
                     <div>{}</div><table><tr><td>Order</td><td>#{i}</td></tr><tr><td>Total</td>\
                     <td>€{}.00</td></tr></table><p>Thanks!<br>{first}</p></body></html>\r\n",
                    paragraph(&mut rng),
                    10 + rng.below(500)
                );
            }
            _ => {
                let pdf = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n"
                    .repeat(20 + rng.below(40));
                let _ = write!(
                    m,
                    "Content-Type: multipart/mixed; boundary=\"mix{i}\"\r\n\r\n\
                     --mix{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
                     --mix{i}\r\nContent-Type: application/pdf; name=\"invoice-{i}.pdf\"\r\n\
                     Content-Disposition: attachment; filename=\"invoice-{i}.pdf\"\r\n\
                     Content-Transfer-Encoding: base64\r\n\r\n{pdf}--mix{i}--\r\n"
                );
            }
        }
        last_id[c] = Some(id);
        let folder = if ours {
            ".Sent/cur"
        } else if i % 10 == 0 {
            "new"
        } else {
            "cur"
        };
        let file = root.join(folder).join(format!("{t}.M{i}P1.bench:2,S"));
        bytes += m.len();
        std::fs::write(file, m)?;
    }
    Ok(bytes)
}

fn httpdate(t: u64) -> String {
    let days = t / 86_400;
    let secs = t % 86_400;
    // civil_from_days (Howard Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DOW: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {d} {} {y} {:02}:{:02}:{:02} +0000",
        DOW[(days % 7) as usize],
        MON[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
