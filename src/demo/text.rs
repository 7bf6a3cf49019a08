//! What the demo's people are called and what they write: names, addresses, phone numbers, and
//! support/sales threads (orders, refunds, sizing, invoices, onboarding, B2B quotes), in English
//! and a few other languages, with email greetings, signatures and quoted replies.
//!
//! The business is "Northwind Outfitters", an outdoor gear shop with a wholesale arm.

use super::rng::Rng;
use crate::model::Channel;

/// The agents of the demo team: (login used as author and assignee, display name).
pub(crate) const AGENTS: &[(&str, &str)] = &[
    ("alice", "Alice Martin"),
    ("bob", "Bob Okafor"),
    ("carol", "Carol Jensen"),
    ("dana", "Dana Whitfield"),
];

/// A customer's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    De,
    Fr,
    Es,
    Pt,
    Ja,
    Zh,
}

/// Relative weights of the languages (most customers write English).
pub(crate) const LANG_WEIGHTS: &[(Lang, u32)] = &[
    (Lang::En, 880),
    (Lang::De, 40),
    (Lang::Fr, 28),
    (Lang::Es, 20),
    (Lang::Pt, 8),
    (Lang::Ja, 12),
    (Lang::Zh, 12),
];

/// A name as shown, the name used in a greeting, and the ASCII base of an email address.
pub(crate) struct Name {
    pub full: String,
    pub first: String,
    pub email_base: String,
}

const EN_FIRST: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Ethan",
    "Sophia",
    "Mason",
    "Isabella",
    "Lucas",
    "Mia",
    "Oliver",
    "Amelia",
    "James",
    "Harper",
    "Benjamin",
    "Evelyn",
    "Henry",
    "Aisha",
    "Mohammed",
    "Priya",
    "Arjun",
    "Zoë",
    "Siobhán",
    "Niamh",
    "Chloë",
    "Dmitri",
    "Katarzyna",
    "Wojciech",
    "Søren",
    "Ingrid",
    "Kwame",
    "Ngozi",
    "Tomás",
    "Grace",
    "Daniel",
    "Hannah",
    "Samuel",
    "Leah",
    "Owen",
    "Ruby",
    "Finn",
    "Maya",
    "Elijah",
    "Nora",
    "Theo",
    "Freya",
    "Caleb",
    "Layla",
    "Isaac",
    "Aaliyah",
    "Mateo",
    "Sienna",
    "Rohan",
    "Fatima",
    "Kenji",
    "Amara",
    "Connor",
    "Bianca",
    "Marcus",
];
const EN_LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "O'Brien",
    "Nakamura",
    "Patel",
    "Okafor",
    "Kowalski",
    "Nguyen",
    "Andersson",
    "Byrne",
    "Murphy",
    "Kelly",
    "Hughes",
    "Fischer",
    "Rossi",
    "Silva",
    "Novak",
    "Ivanova",
    "Haddad",
    "Mensah",
    "Lindqvist",
    "Fraser",
    "Campbell",
    "Reid",
    "Chen",
    "Park",
];
const DE_FIRST: &[&str] = &[
    "Jürgen", "Lena", "Matthias", "Sophie", "Björn", "Anja", "Lukas", "Jana", "Tobias", "Käthe",
    "Felix", "Marie",
];
const DE_LAST: &[&str] = &[
    "Müller",
    "Schröder",
    "Weiß",
    "Krämer",
    "Hoffmann",
    "Köhler",
    "Becker",
    "Schäfer",
    "Wagner",
    "Groß",
    "Neumann",
    "Böhm",
];
const FR_FIRST: &[&str] = &[
    "François",
    "Élodie",
    "Chloé",
    "Théo",
    "Hélène",
    "Gaëlle",
    "Mathéo",
    "Léa",
    "Jérôme",
    "Anaïs",
];
const FR_LAST: &[&str] = &[
    "Lefèvre",
    "Dubois",
    "Girard",
    "Moreau",
    "Bézier",
    "Rousseau",
    "Fontaine",
    "Mercier",
    "Chevalier",
    "Garnier",
];
const ES_FIRST: &[&str] = &[
    "José", "María", "Ángela", "Sergio", "Lucía", "Íñigo", "Martín", "Sofía", "Raúl", "Begoña",
];
const ES_LAST: &[&str] = &[
    "García",
    "Núñez",
    "Fernández",
    "Muñoz",
    "López",
    "Ibáñez",
    "Martínez",
    "Sánchez",
    "Peña",
    "Gómez",
];
const PT_FIRST: &[&str] = &["João", "Inês", "Gonçalo", "Beatriz", "Tiago", "Margarida"];
const PT_LAST: &[&str] = &[
    "Simões",
    "Conceição",
    "Araújo",
    "Gonçalves",
    "Esteves",
    "Magalhães",
];
/// (family name, given name, romanized family, romanized given)
const JA_NAMES: &[(&str, &str, &str, &str)] = &[
    ("山田", "太郎", "yamada", "taro"),
    ("佐藤", "花子", "sato", "hanako"),
    ("鈴木", "一郎", "suzuki", "ichiro"),
    ("高橋", "美咲", "takahashi", "misaki"),
    ("田中", "健太", "tanaka", "kenta"),
    ("伊藤", "さくら", "ito", "sakura"),
    ("渡辺", "翔", "watanabe", "sho"),
    ("中村", "結衣", "nakamura", "yui"),
];
const ZH_NAMES: &[(&str, &str, &str, &str)] = &[
    ("王", "芳", "wang", "fang"),
    ("李", "伟", "li", "wei"),
    ("张", "敏", "zhang", "min"),
    ("刘", "洋", "liu", "yang"),
    ("陈", "静", "chen", "jing"),
    ("杨", "磊", "yang", "lei"),
    ("赵", "丽", "zhao", "li"),
    ("黄", "强", "huang", "qiang"),
];

const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "hotmail.com",
    "fastmail.com",
];
const COMPANIES: &[(&str, &str)] = &[
    ("Summit Events GmbH", "summit-events.example"),
    ("Blue Ridge Scouts", "blueridge-scouts.example"),
    ("Alpenverein Sektion Nord", "av-nord.example"),
    ("Trailhead Outfitters Ltd", "trailhead.example"),
    ("Fjord Adventures AS", "fjord-adventures.example"),
    ("Greenway Consulting", "greenway.example"),
    ("Peak Performance Coaching", "peakperf.example"),
    ("Harbor & Pine Co.", "harborpine.example"),
    ("Nordlicht Reisen", "nordlicht.example"),
    ("Cascade Climbing Gym", "cascadegym.example"),
];

/// ASCII form of a name part for an email address ("Siobhán" -> "siobhan", "O'Brien" -> "obrien").
pub(crate) fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let rep: &str = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => {
                "a"
            }
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => "e",
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Î' | 'Ï' => "i",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'Ó' | 'Ô' | 'Ö' | 'Ø' => "o",
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Û' | 'Ü' => "u",
            'ñ' | 'Ñ' => "n",
            'ç' | 'Ç' => "c",
            'ß' => "ss",
            'æ' | 'Æ' => "ae",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "",
        };
        out.push_str(rep);
    }
    out
}

/// A person's name in their language.
pub(crate) fn name(rng: &mut Rng, lang: Lang) -> Name {
    let western = |rng: &mut Rng, first: &[&str], last: &[&str]| {
        let f = rng.pick(first);
        let l = rng.pick(last);
        Name {
            full: format!("{f} {l}"),
            first: f.to_string(),
            email_base: format!("{}.{}", ascii_fold(f), ascii_fold(l)),
        }
    };
    let eastern = |rng: &mut Rng, table: &[(&str, &str, &str, &str)]| {
        let (family, given, rf, rg) = rng.pick(table);
        let full = if rng.chance(0.3) {
            // Some write their name romanized, given name first.
            format!("{} {}", capitalize(rg), capitalize(rf))
        } else {
            format!("{family} {given}")
        };
        Name {
            first: full.clone(),
            full,
            email_base: format!("{rg}.{rf}"),
        }
    };
    match lang {
        Lang::En => western(rng, EN_FIRST, EN_LAST),
        Lang::De => western(rng, DE_FIRST, DE_LAST),
        Lang::Fr => western(rng, FR_FIRST, FR_LAST),
        Lang::Es => western(rng, ES_FIRST, ES_LAST),
        Lang::Pt => western(rng, PT_FIRST, PT_LAST),
        Lang::Ja => eastern(rng, JA_NAMES),
        Lang::Zh => eastern(rng, ZH_NAMES),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A company for a B2B customer: (name, email domain).
pub(crate) fn company(rng: &mut Rng) -> (&'static str, &'static str) {
    rng.pick(COMPANIES)
}

/// An email domain for a private customer of this language.
pub(crate) fn mail_domain(rng: &mut Rng, lang: Lang) -> &'static str {
    let local: &[&str] = match lang {
        Lang::De => &["gmx.de", "web.de", "t-online.de"],
        Lang::Fr => &["orange.fr", "free.fr", "laposte.net"],
        Lang::Es => &["telefonica.es", "gmail.com"],
        Lang::Pt => &["sapo.pt", "gmail.com"],
        Lang::Ja => &["docomo.ne.jp", "yahoo.co.jp"],
        Lang::Zh => &["qq.com", "163.com"],
        Lang::En => FREE_MAIL,
    };
    if lang != Lang::En && rng.chance(0.5) {
        rng.pick(FREE_MAIL)
    } else {
        rng.pick(local)
    }
}

/// A bijection of `0..m` (for `m` a power of ten): distinct people get distinct numbers.
fn scramble(idx: u64, salt: u64, m: u64) -> u64 {
    // 7_654_321 is coprime with every power of ten (odd, not a multiple of 5).
    (idx.wrapping_mul(7_654_321) % m + salt % m) % m
}

/// A phone number as a person would type it (with spaces), valid for the country of their
/// language and unique for `idx` (up to 10^7 people per country).
pub(crate) fn phone(idx: u64, salt: u64, lang: Lang) -> String {
    let n = scramble(idx, salt, 10_000_000);
    match lang {
        Lang::De => format!("+49 151 {:08}", 10_000_000 + n),
        Lang::Fr => format!(
            "+33 6 {:02} {:02} {:02} {:02}",
            10 + n / 1_000_000 % 90,
            n / 10_000 % 100,
            n / 100 % 100,
            n % 100
        ),
        Lang::Es => format!(
            "+34 6{:02} {:03} {:03}",
            10 + n / 1_000_000 % 90,
            n / 1000 % 1000,
            n % 1000
        ),
        Lang::Pt => format!(
            "+351 91{} {:03} {:03}",
            n / 1_000_000 % 10,
            n / 1000 % 1000,
            n % 1000
        ),
        Lang::Ja => format!("+81 90 {:04} {:04}", 1000 + n / 10_000 % 9000, n % 10_000),
        Lang::Zh => format!("+86 139 {:04} {:04}", n / 10_000 % 10_000, n % 10_000),
        Lang::En => {
            if idx.is_multiple_of(3) {
                // UK mobile
                const PREFIXES: &[u32] =
                    &[7400, 7500, 7712, 7800, 7900, 7950, 7470, 7580, 7720, 7810];
                let prefix = PREFIXES[(n / 1_000_000 % PREFIXES.len() as u64) as usize];
                format!("+44 {prefix} {:06}", n % 1_000_000)
            } else {
                const AREAS: &[u32] = &[212, 312, 415, 503, 617, 646, 206, 303, 512, 773];
                let area = AREAS[(n / 1_000_000 % AREAS.len() as u64) as usize];
                format!(
                    "+1 ({area}) {:03}-{:04}",
                    200 + n / 10_000 % 100,
                    n % 10_000
                )
            }
        }
    }
}

/// A context for one thread: the order, product, amounts the messages talk about.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub first: String,
    pub order: String,
    pub product: &'static str,
    pub size: &'static str,
    pub size2: &'static str,
    pub amount: String,
    pub date: &'static str,
    pub date2: &'static str,
    pub tracking: String,
    pub invoice: String,
    pub vat: String,
    pub qty: u32,
    pub city: &'static str,
    pub street: String,
    pub company: &'static str,
    pub code: &'static str,
    pub reference: String,
    pub number: u32,
}

const PRODUCTS: &[&str] = &[
    "Alpine 2 tent",
    "Ridge rain jacket",
    "Trailrunner GTX shoes",
    "merino base layer",
    "Summit 30L daypack",
    "Glacier down sleeping bag",
    "insulated bottle",
    "Basecamp fleece hoodie",
    "hiking socks (3-pack)",
    "Lumen 400 headlamp",
    "Ember camping stove",
    "Scree softshell pants",
];
const SIZES: &[&str] = &[
    "XS", "S", "M", "L", "XL", "XXL", "EU 39", "EU 41", "EU 42", "EU 44",
];
const DATES: &[&str] = &[
    "last Monday",
    "last week",
    "on the 12th",
    "two weeks ago",
    "on Friday",
    "three days ago",
    "yesterday",
    "at the start of the month",
];
const DATES_AHEAD: &[&str] = &[
    "the 28th",
    "next Friday",
    "end of the month",
    "March 3",
    "mid-April",
    "the 15th",
];
const CITIES: &[&str] = &[
    "Denver",
    "Leeds",
    "Munich",
    "Lyon",
    "Bergen",
    "Portland",
    "Innsbruck",
    "Melbourne",
    "Toronto",
    "Bilbao",
    "Porto",
    "Sapporo",
];
const STREETS: &[&str] = &[
    "Maple Avenue",
    "Hauptstraße",
    "Rue des Lilas",
    "King Street",
    "Calle Mayor",
    "Elm Road",
    "Birkenweg",
];
const CODES: &[&str] = &["SPRING20", "WELCOME10", "TRAIL15", "FREESHIP", "BF2025"];

impl Ctx {
    pub(crate) fn new(rng: &mut Rng, first: &str, company: Option<&'static str>) -> Ctx {
        let cents = rng.range(1_900, 64_900);
        // A size and the next one up (for "too small, can I have a bigger one").
        let size = rng.below(5) as usize;
        Ctx {
            first: first.to_string(),
            order: format!("#NW-{}", rng.range(100_000, 999_999)),
            product: rng.pick(PRODUCTS),
            size: SIZES[size],
            size2: SIZES[size + 1],
            amount: format!("€{}.{:02}", cents / 100, cents % 100),
            date: rng.pick(DATES),
            date2: rng.pick(DATES_AHEAD),
            tracking: format!("JJD00{:010}", rng.below(10_000_000_000)),
            invoice: format!("INV-2025-{:05}", rng.range(1, 99_999)),
            vat: format!("DE{:09}", rng.range(100_000_000, 999_999_999)),
            qty: (5 * rng.range(4, 40)) as u32,
            city: rng.pick(CITIES),
            street: format!("{} {}", rng.range(1, 180), rng.pick(STREETS)),
            company: company.unwrap_or("our club"),
            code: rng.pick(CODES),
            reference: format!("{:X}", rng.range(0x10_0000, 0xFF_FFFF)),
            number: rng.range(1000, 9999) as u32,
        }
    }

    fn value(&self, key: &str, out: &mut String) {
        use std::fmt::Write;
        match key {
            "first" => out.push_str(&self.first),
            "order" => out.push_str(&self.order),
            "product" => out.push_str(self.product),
            "size" => out.push_str(self.size),
            "size2" => out.push_str(self.size2),
            "amount" => out.push_str(&self.amount),
            "date" => out.push_str(self.date),
            "date2" => out.push_str(self.date2),
            "tracking" => out.push_str(&self.tracking),
            "invoice" => out.push_str(&self.invoice),
            "vat" => out.push_str(&self.vat),
            "qty" => {
                let _ = write!(out, "{}", self.qty);
            }
            "city" => out.push_str(self.city),
            "street" => out.push_str(&self.street),
            "company" => out.push_str(self.company),
            "code" => out.push_str(self.code),
            "ref" => out.push_str(&self.reference),
            "n" => {
                let _ = write!(out, "{}", self.number);
            }
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
    }

    /// Append `template` with every `{key}` replaced.
    pub(crate) fn fill_into(&self, template: &str, out: &mut String) {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    self.value(&after[..close], out);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
    }

    pub(crate) fn fill(&self, template: &str) -> String {
        let mut s = String::with_capacity(template.len() + 32);
        self.fill_into(template, &mut s);
        s
    }
}

/// One kind of support or sales thread, with what each side tends to say at each stage.
pub(crate) struct Topic {
    pub tag: &'static str,
    pub weight: u32,
    pub subjects: &'static [&'static str],
    pub openers: &'static [&'static str],
    pub agent_first: &'static [&'static str],
    pub follow: &'static [&'static str],
    pub agent_follow: &'static [&'static str],
    pub thanks: &'static [&'static str],
    pub agent_close: &'static [&'static str],
    pub notes: &'static [&'static str],
}

pub(crate) const TOPICS: &[Topic] = &[
    Topic {
        tag: "shipping",
        weight: 22,
        subjects: &[
            "Where is my order {order}?",
            "Order {order} hasn't shipped?",
            "Order {order} marked delivered but not here",
            "Urgent: need order {order} by Friday",
        ],
        openers: &[
            "My order {order} was supposed to arrive {date}, but it still hasn't. The tracking page just says \"label created\". Can you check what's going on?",
            "I ordered the {product} {date} (order {order}) and haven't had any shipping update since. Is it actually on its way?",
            "Order {order}: the courier says delivered, but there's nothing at my door or with the neighbours.",
            "Any news on {order}? I need the {product} for a trip on Friday.",
        ],
        agent_first: &[
            "Sorry about the wait! I checked with our warehouse: {order} left us {date} with DHL, tracking number {tracking}. The carrier has a backlog at their regional hub; it should reach you within 2 business days.",
            "Thanks for reaching out. Order {order} is with the carrier (tracking {tracking}). I've opened an investigation with them and will update you as soon as I hear back.",
            "I'm so sorry! I've opened a claim with the carrier for {order}; they'll check with the driver where it was left. If it doesn't turn up within 48 hours we'll send a replacement.",
        ],
        follow: &[
            "Tracking still hasn't moved since yesterday.",
            "Still nothing today :(",
            "The tracking link says the parcel is in {city} now. Is that right?",
            "OK, thanks. Is there any way to get it faster? The trip is on Friday.",
            "Here is my full address again: {street}, {city}.",
        ],
        agent_follow: &[
            "I've asked the carrier to prioritise it and upgraded the shipment to express at no cost. New tracking number: {tracking}.",
            "If it hasn't arrived by Thursday I'll send a replacement right away - no need to wait for the lost parcel.",
            "Yes - the carrier confirmed it's out for delivery today.",
            "I've upgraded it to express at no cost; it will be there on Thursday. New tracking number: {tracking}.",
            "Thanks! I've passed the address on to the driver.",
        ],
        thanks: &[
            "It just arrived, thank you!",
            "Got it this morning. Thanks for chasing it!",
            "Received, all good 👍",
        ],
        agent_close: &[
            "Great to hear it arrived! I'll close this ticket - just reply here if anything else comes up.",
            "Glad it's sorted. Enjoy the {product}!",
        ],
        notes: &[
            "Carrier case opened: DHL {ref}.",
            "Address on the order is missing the house number, asked the customer.",
            "Second delay for this customer this quarter - offered free express shipping next time.",
        ],
    },
    Topic {
        tag: "refund",
        weight: 16,
        subjects: &[
            "Still waiting for my refund ({order})",
            "Return for order {order}",
            "Cancelled order {order} - please refund",
        ],
        openers: &[
            "I sent back the {product} two weeks ago (order {order}) and I still haven't seen the refund of {amount}. Your warehouse received the parcel {date}.",
            "Hello, I'd like to return the {product} from order {order}, it's not what I expected. How do I get a refund?",
            "You charged me {amount} for order {order}, but I cancelled it an hour after ordering. Please refund.",
        ],
        agent_first: &[
            "Thanks for your patience. Your return for {order} arrived at our warehouse; the refund of {amount} was issued today and should show on your statement within 3-5 business days.",
            "Of course! I've created a prepaid return label for {order}; you'll get it by email in a few minutes. Once the carrier scans the parcel we refund {amount} to your original payment method.",
            "I'm sorry about that - the cancellation didn't reach the warehouse in time. I've refunded {amount} now; you can refuse the parcel or send it back with the free label.",
        ],
        follow: &[
            "It's been 5 days and still no refund on my card.",
            "Got the label, thanks. Do I need the original box?",
            "Can the refund go to my PayPal instead of the card?",
            "Still waiting for the refund...",
        ],
        agent_follow: &[
            "I checked with our payments team: the refund left us {date} (reference {ref}). Banks can take up to 10 days; if it's not there by {date2} I'll escalate.",
            "No need for the original box, any sturdy packaging is fine.",
            "Refunds can only go back to the original payment method, sorry! It's on its way to your card.",
        ],
        thanks: &[
            "The refund came through today, thanks!",
            "Perfect, I see it on my statement now.",
            "OK, thanks for the quick help.",
        ],
        agent_close: &[
            "Glad it came through! Closing this ticket.",
            "You're welcome! Let us know if there's anything else.",
        ],
        notes: &[
            "Refund {ref} issued in Stripe, {amount}.",
            "Return received at the warehouse, item in good condition - OK to refund.",
            "Customer asked for a refund to PayPal; policy is original payment method only.",
        ],
    },
    Topic {
        tag: "exchange",
        weight: 14,
        subjects: &[
            "Exchange size for {product}",
            "Sizing question: {product}",
            "Wrong size - order {order}",
        ],
        openers: &[
            "The {product} I got in size {size} is too small. Can I exchange it for a {size2}?",
            "Quick question before I order: does the {product} run small? I'm usually a size {size}, but I'm between sizes.",
            "I received the {product} in the wrong size - I ordered {size2} but the label says {size} (order {order}).",
        ],
        agent_first: &[
            "Absolutely! I've set up an exchange for size {size2}; a free return label is on its way to your inbox. We'll ship the new one as soon as the return is scanned.",
            "Good question! The {product} runs about half a size small, so if you're between sizes we recommend going up to {size2}.",
            "So sorry for the mix-up! I've shipped the correct size {size2} today, no need to wait for the return. Tracking: {tracking}.",
        ],
        follow: &[
            "Is {size2} in stock in dark green?",
            "Thanks! Can you also check the sleeve length for {size2}?",
            "I sent the {size} back yesterday.",
        ],
        agent_follow: &[
            "Yes, {size2} in dark green is in stock - I've reserved one for you.",
            "Sleeve length for {size2} is 86 cm, measured from the collar seam.",
            "Return received, the replacement is on its way.",
        ],
        thanks: &[
            "The new size fits perfectly, thanks!",
            "Ordered the {size2}, thanks for the advice.",
            "All good now 🙌",
        ],
        agent_close: &[
            "Perfect! Enjoy it, and happy hiking!",
            "Great, closing this one. Have a good trip!",
        ],
        notes: &[
            "Exchange created as {order}-X, stock reserved.",
            "Size chart for the {product} is off on the website - reported to the web team.",
        ],
    },
    Topic {
        tag: "billing",
        weight: 12,
        subjects: &[
            "Invoice for order {order} with our VAT ID",
            "Double charge on my card",
            "Invoice {invoice}: wrong billing address",
        ],
        openers: &[
            "Could you send an invoice for order {order} with our company details? {company}, VAT ID {vat}.",
            "I was charged twice for order {order} - {amount} appears two times on my card statement.",
            "Invoice {invoice} shows the wrong billing address. We moved to {street}, {city} in January.",
        ],
        agent_first: &[
            "Of course - here is the corrected invoice {invoice} with your VAT ID {vat}. You'll also find it in your account under Orders.",
            "Sorry about that! The second charge is a pre-authorisation that drops off within 3 business days; only one payment of {amount} was captured.",
            "I've updated the billing address and reissued invoice {invoice}. The old one is cancelled.",
        ],
        follow: &[
            "Thanks. Could you also put our PO number PO-{n} on it?",
            "The second charge is still there after 4 days.",
            "Our accounting needs it as a PDF, not a link.",
        ],
        agent_follow: &[
            "I've added PO-{n} and reissued the invoice.",
            "I checked with the bank: the hold was released today; it can take a day to disappear from your banking app.",
            "Here's the PDF. Let me know if accounting needs anything else.",
        ],
        thanks: &[
            "Received, thanks!",
            "Accounting is happy now 🙂",
            "Great, thanks for sorting that out.",
        ],
        agent_close: &[
            "You're welcome! Closing this ticket.",
            "Anytime. Have a great week!",
        ],
        notes: &[
            "Reissued {invoice} with VAT ID; old invoice voided in Xero.",
            "Double charge is a pre-auth - only one capture in Stripe.",
        ],
    },
    Topic {
        tag: "sales",
        weight: 9,
        subjects: &[
            "Quote request: {qty} x {product}",
            "Wholesale terms for our shop in {city}",
            "Volume discount for {company}",
        ],
        openers: &[
            "Hi, we're organising a team offsite and need {qty} {product} with our logo, delivered to {city} by {date2}. Could you send a quote?",
            "We'd like to stock your {product} in our shop in {city}. What are your wholesale terms?",
            "Do you offer volume discounts? We're looking at about {qty} units for {company}.",
        ],
        agent_first: &[
            "Thanks for thinking of us! For {qty} units we can offer 15% off list price, logo embroidery included. Delivery to {city} by {date2} works if we confirm by Friday. I'll send a formal quote today.",
            "Great to hear! Our wholesale terms: minimum order 20 units, 40% off RRP, net 30 payment. I've attached the catalogue and the price list.",
            "Yes - tiered pricing starts at 25 units. Which sizes and colours do you need? Then I'll prepare a quote.",
        ],
        follow: &[
            "Thanks! Could you do net 45 instead of net 30?",
            "Sizes: 10 x M, 12 x L, 8 x XL. Colour navy.",
            "Could you include shipping in the quote?",
            "Our procurement needs the quote as a PDF with your company registration number.",
        ],
        agent_follow: &[
            "Net 45 works for a first order of this size. Updated quote Q-{n} attached.",
            "Thanks! Quote Q-{n} with those sizes is attached.",
            "Quote Q-{n} attached, shipping included, valid for 30 days.",
            "Here's the PDF with our registration details.",
        ],
        thanks: &[
            "Approved! The PO will follow tomorrow.",
            "Thanks, I'll run it by my manager and get back to you.",
            "Perfect, let's go ahead.",
        ],
        agent_close: &[
            "Wonderful, thank you for the order! I'll confirm the production date once the PO is in.",
            "Thanks! I'll keep the quote open until the end of the month.",
        ],
        notes: &[
            "Potential repeat B2B customer - flag for the account manager.",
            "Quote Q-{n} sent, {amount} per unit. Follow up in 3 days.",
            "Asked finance to approve net 45.",
        ],
    },
    Topic {
        tag: "onboarding",
        weight: 7,
        subjects: &[
            "How do I add colleagues to the partner portal?",
            "Partner account not activated",
            "Price list missing in the partner portal",
        ],
        openers: &[
            "We just got access to the wholesale portal. How do I invite my colleagues so they can place orders too?",
            "I created a partner account but never got the confirmation email. Can you activate it?",
            "Where do I find our price list in the partner portal? The dashboard is empty.",
        ],
        agent_first: &[
            "Welcome aboard! Go to Settings -> Team -> Invite and enter their email addresses; each person gets their own login. Admins approve orders above your limit.",
            "I've activated your account manually, you can log in now. The confirmation email was probably caught by a spam filter.",
            "The price list appears once your account is linked to your company profile. I've just done that - please refresh.",
        ],
        follow: &[
            "Done, thanks. Can I set a spending limit per person?",
            "Logged in! But I only see retail prices, not the B2B ones.",
            "Is there an API or a feed to sync your stock levels?",
        ],
        agent_follow: &[
            "Yes: Settings -> Team, each member has an \"order limit\" field.",
            "Fixed - your account was in the retail price group. It's on Wholesale Tier 2 now.",
            "We have a CSV feed updated hourly; I've sent you the link and a token.",
        ],
        thanks: &[
            "Everything works now, thanks for the quick onboarding!",
            "Great, the whole team is set up.",
            "Perfect, thanks!",
        ],
        agent_close: &[
            "Happy to help! Welcome to Northwind.",
            "Great! I'll check back in a week to see how it's going.",
        ],
        notes: &[
            "Moved the account to price group Wholesale Tier 2.",
            "Onboarding call booked for Tuesday 10:00.",
        ],
    },
    Topic {
        tag: "bug",
        weight: 8,
        subjects: &[
            "Checkout error with Apple Pay",
            "Discount code {code} not working",
            "App crashes when I open my orders",
            "Password reset email never arrives",
        ],
        openers: &[
            "Checkout keeps failing with \"payment_intent_failed\" when I pay with Apple Pay. I tried three times.",
            "The discount code {code} says it's invalid, but your newsletter said it's valid until the end of the month.",
            "Your app crashes every time I open my order history (iPhone, latest iOS).",
            "I can't log in - the password reset email never arrives.",
        ],
        agent_first: &[
            "Thanks for the report, and sorry for the trouble! We had an issue with Apple Pay this morning that is fixed now - could you try again?",
            "You're right, the code was misconfigured. I've applied the discount to your order manually: {amount} off.",
            "Thanks for letting us know - our developers are on it. In the meantime the website works: northwind.example/orders.",
            "The reset emails are going out again, please try once more. If it still doesn't arrive, check your spam folder.",
        ],
        follow: &[
            "Still getting the same error.",
            "Thanks! Will the discount also apply to my next order?",
            "Which iOS version do you need? I'm on 18.2.",
            "Still nothing in my inbox, not even in spam.",
        ],
        agent_follow: &[
            "We found the cause: a timeout with our payment provider. The fix is deployed - please try again.",
            "It's a one-time discount for this order, but I've added a 10% voucher to your account for the next one.",
            "Thank you, that helps! We reproduced it on 18.2; the fix ships with the next app update (ticket BUG-{n}).",
            "I've reset the password by hand and sent you a one-time login link from another mail server - please check again.",
        ],
        thanks: &[
            "Works now, thanks!",
            "It went through this time. Thanks!",
            "Fixed on my side too, thank you.",
        ],
        agent_close: &[
            "Great! Thanks again for reporting it.",
            "Perfect. Closing this - just reply if it happens again.",
        ],
        notes: &[
            "Reproduced on staging: Apple Pay fails when the cart has a gift card. BUG-{n}.",
            "Known issue, the fix ships with release 4.12.",
            "Manual discount applied, {amount}.",
        ],
    },
    Topic {
        tag: "returns",
        weight: 7,
        subjects: &[
            "{product} arrived damaged",
            "Damaged item in order {order}",
            "Broken pole on my {product}",
        ],
        openers: &[
            "The {product} arrived with a cracked buckle. Photos attached.",
            "The box was crushed and the {product} inside is damaged (order {order}).",
            "One of the poles of my {product} snapped the first time I used it.",
        ],
        agent_first: &[
            "I'm really sorry! I've sent a replacement today at no charge - no need to return the damaged one. Tracking: {tracking}.",
            "So sorry about that. Could you send a photo of the damage and of the label on the box? Then I'll get a replacement going.",
            "That shouldn't happen. The {product} has a 2-year warranty: I've shipped a replacement pole set today.",
        ],
        follow: &[
            "Here are the photos.",
            "Do I need to send the broken one back?",
            "The replacement hasn't shipped yet according to the tracking.",
        ],
        agent_follow: &[
            "Thanks for the photos - the replacement is on its way.",
            "No need to send it back, please recycle it.",
            "It ships this afternoon; the label was created before the pickup.",
        ],
        thanks: &[
            "Replacement arrived and it's perfect. Thanks!",
            "Great service, thank you!",
        ],
        agent_close: &[
            "Glad it worked out! Closing this ticket.",
            "Enjoy it, and sorry again for the trouble.",
        ],
        notes: &[
            "Damage claim filed with the carrier, case {ref}.",
            "Third broken buckle this month from this batch - told QA.",
        ],
    },
    Topic {
        tag: "account",
        weight: 5,
        subjects: &[
            "Change my email address",
            "Loyalty points missing for {order}",
            "Please delete my account",
        ],
        openers: &[
            "I'd like to change the email address on my account. Can you help?",
            "My loyalty points from order {order} never showed up in my account.",
            "Please delete my account and all my data.",
        ],
        agent_first: &[
            "Sure! For security I've sent a confirmation link to your current address - once you click it, the change is done.",
            "You're right, the points were missing - I've added 250 points to your account.",
            "I can do that. Just to confirm: this also cancels your open order {order}. Shall I go ahead?",
        ],
        follow: &[
            "Clicked it, but it still shows the old address.",
            "Thanks! Do points expire?",
            "Yes, please go ahead.",
        ],
        agent_follow: &[
            "It can take a few minutes to update - please log out and back in.",
            "Points are valid for 24 months from the date you earned them.",
            "Done. Your account and personal data have been deleted.",
        ],
        thanks: &["Perfect, thanks!", "All good, thank you."],
        agent_close: &[
            "You're welcome! Closing this ticket.",
            "Thanks for being a customer!",
        ],
        notes: &[
            "Identity verified via order number and postcode.",
            "GDPR deletion request - logged in the privacy register.",
        ],
    },
];

/// What a non-English customer writes (topic-independent; they mention their order).
struct LangPool {
    greeting: &'static str,
    signoff: &'static str,
    openers: &'static [&'static str],
    /// What each opener is about: (topic tag, the topic's matching first reply).
    opener_topics: &'static [(&'static str, usize)],
    follow: &'static [&'static str],
    /// What each follow-up is about (a topic tag, or "*" for any).
    follow_topics: &'static [&'static str],
    thanks: &'static [&'static str],
    /// The first line of an agent's first reply to this customer.
    agent_hello: &'static str,
}

fn lang_pool(lang: Lang) -> Option<&'static LangPool> {
    const DE: LangPool = LangPool {
        greeting: "Hallo,",
        signoff: "Viele Grüße",
        openers: &[
            "Meine Bestellung {order} ist immer noch nicht angekommen. Können Sie bitte nachsehen?",
            "Ich möchte die {product} zurückgeben - sie ist leider zu groß. Wie funktioniert das?",
            "Ich habe für die Bestellung {order} zweimal bezahlt ({amount}). Bitte um Rückerstattung.",
            "Fällt die {product} eher klein aus? Ich schwanke zwischen {size} und {size2}.",
        ],
        opener_topics: &[
            ("shipping", 0),
            ("refund", 1),
            ("billing", 1),
            ("exchange", 1),
        ],
        follow: &[
            "Danke! Wann kommt das Paket ungefähr an?",
            "Die Rückerstattung ist leider noch nicht da...",
            "Könnten Sie mir eine Rechnung mit unserer USt-IdNr. {vat} schicken?",
            "Leider immer noch nichts.",
            "Ist die Größe {size2} bald wieder lieferbar?",
        ],
        follow_topics: &["shipping", "refund", "billing", "*", "exchange"],
        thanks: &[
            "Vielen Dank, hat alles geklappt!",
            "Paket ist da. Danke für die schnelle Hilfe!",
            "Super, danke schön!",
        ],
        agent_hello: "Hallo {first}, vielen Dank für Ihre Nachricht! (I'll continue in English, I hope that's OK.)",
    };
    const FR: LangPool = LangPool {
        greeting: "Bonjour,",
        signoff: "Cordialement",
        openers: &[
            "Ma commande {order} n'est toujours pas arrivée. Pouvez-vous vérifier ?",
            "Je voudrais échanger la {product} contre une taille {size2}.",
            "J'ai été débité deux fois pour la commande {order} ({amount}).",
            "Est-ce que la {product} taille grand ? J'hésite entre {size} et {size2}.",
        ],
        opener_topics: &[
            ("shipping", 0),
            ("exchange", 0),
            ("billing", 1),
            ("exchange", 1),
        ],
        follow: &[
            "Merci ! Quand est-ce que je vais recevoir le colis ?",
            "Toujours pas de remboursement…",
            "Le suivi n'a pas bougé depuis hier.",
            "Pouvez-vous m'envoyer une facture avec notre numéro de TVA ?",
            "La taille {size2} est-elle disponible ?",
        ],
        follow_topics: &["shipping", "refund", "shipping", "billing", "exchange"],
        thanks: &[
            "Merci beaucoup, c'est réglé !",
            "Bien reçu, merci pour votre aide.",
            "Parfait, merci !",
        ],
        agent_hello: "Bonjour {first}, merci pour votre message ! (I'll reply in English if that's alright.)",
    };
    const ES: LangPool = LangPool {
        greeting: "Hola:",
        signoff: "Un saludo",
        openers: &[
            "Mi pedido {order} todavía no ha llegado. ¿Pueden revisarlo?",
            "Quiero devolver la {product}, me queda pequeña. ¿Cómo lo hago?",
            "Me cobraron dos veces el pedido {order}.",
            "¿La {product} talla pequeño? Dudo entre la {size} y la {size2}.",
        ],
        opener_topics: &[
            ("shipping", 0),
            ("refund", 1),
            ("billing", 1),
            ("exchange", 1),
        ],
        follow: &[
            "¡Gracias! ¿Cuándo llegará más o menos?",
            "Sigo esperando el reembolso…",
            "El seguimiento no se ha actualizado desde ayer.",
            "¿Me pueden enviar la factura en PDF?",
            "¿Tienen la talla {size2}?",
        ],
        follow_topics: &["shipping", "refund", "shipping", "billing", "exchange"],
        thanks: &[
            "¡Muchas gracias, ya está todo bien!",
            "Recibido, ¡gracias por la ayuda!",
            "¡Perfecto, gracias!",
        ],
        agent_hello: "¡Hola {first}! Gracias por escribirnos. (I'll continue in English, I hope that's fine.)",
    };
    const PT: LangPool = LangPool {
        greeting: "Olá,",
        signoff: "Cumprimentos",
        openers: &[
            "A minha encomenda {order} ainda não chegou. Podem verificar?",
            "Gostaria de trocar o {product} por um tamanho {size2}.",
            "Fui cobrado duas vezes pela encomenda {order}.",
        ],
        opener_topics: &[("shipping", 0), ("exchange", 0), ("billing", 1)],
        follow: &[
            "Obrigado! Quando chega?",
            "Ainda estou à espera do reembolso…",
            "Têm o tamanho {size2}?",
            "Podem enviar-me a fatura em PDF?",
        ],
        follow_topics: &["shipping", "refund", "exchange", "billing"],
        thanks: &["Muito obrigado, já está resolvido!", "Recebi, obrigada!"],
        agent_hello: "Olá {first}, obrigado pela mensagem! (Replying in English, I hope that's OK.)",
    };
    const JA: LangPool = LangPool {
        greeting: "お世話になっております。",
        signoff: "よろしくお願いいたします。",
        openers: &[
            "注文番号{order}の商品がまだ届いていません。確認していただけますか？",
            "{product}のサイズを{size2}に交換したいです。",
            "注文{order}で二重に請求されています。",
            "領収書を発行していただけますか？注文番号は{order}です。",
        ],
        opener_topics: &[
            ("shipping", 0),
            ("exchange", 0),
            ("billing", 1),
            ("billing", 0),
        ],
        follow: &[
            "ありがとうございます。いつ頃届きますか？",
            "返金がまだ確認できません…",
            "追跡番号が更新されていません。",
            "{size2}の在庫はありますか？",
            "領収書はPDFでいただけますか？",
        ],
        follow_topics: &["shipping", "refund", "shipping", "exchange", "billing"],
        thanks: &[
            "届きました！ありがとうございました。",
            "解決しました。ありがとうございます！",
            "ご対応ありがとうございました。",
        ],
        agent_hello: "{first}様、お問い合わせありがとうございます。(I'll continue in English - please let me know if anything is unclear.)",
    };
    const ZH: LangPool = LangPool {
        greeting: "您好，",
        signoff: "谢谢",
        openers: &[
            "我的订单{order}还没有收到，能帮我查一下吗？",
            "我想把{product}换成{size2}码。",
            "订单{order}被扣了两次款。",
            "可以开发票吗？订单号是{order}。",
        ],
        opener_topics: &[
            ("shipping", 0),
            ("exchange", 0),
            ("billing", 1),
            ("billing", 0),
        ],
        follow: &[
            "谢谢！大概什么时候能到？",
            "退款还没有到账…",
            "物流信息一直没有更新。",
            "{size2}码有货吗？",
            "发票可以发PDF吗？",
        ],
        follow_topics: &["shipping", "refund", "shipping", "exchange", "billing"],
        thanks: &[
            "收到了，谢谢！",
            "问题解决了，非常感谢！",
            "好的，谢谢你们的帮助。",
        ],
        agent_hello: "{first}，您好！感谢您的来信。(I'll continue in English, I hope that's OK.)",
    };
    match lang {
        Lang::En => None,
        Lang::De => Some(&DE),
        Lang::Fr => Some(&FR),
        Lang::Es => Some(&ES),
        Lang::Pt => Some(&PT),
        Lang::Ja => Some(&JA),
        Lang::Zh => Some(&ZH),
    }
}

/// Which line of a thread a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The customer's first message of a thread.
    Opener,
    /// The customer writes again mid-thread.
    Follow,
    /// The customer's last message of a thread that ends resolved.
    Thanks,
    /// The customer writes again before anyone answered.
    Nudge,
    /// The agent's first reply of a thread.
    AgentFirst,
    AgentFollow,
    AgentClose,
    Note,
}

/// What a customer adds while waiting for a first answer.
const NUDGES: &[&str] = &[
    "Sorry, forgot to say: the order number is {order}.",
    "Any update on this?",
    "Hello? Is anyone there?",
    "Just adding: I already checked my spam folder.",
    "Also, I'm travelling next week, so sooner would be great.",
];

/// The core sentence(s) of a message: the customer's own words or the agent's.
///
/// `variant` picks a line by position (lines at the same position of a topic's customer and
/// agent pools belong together: a question and its answer); None picks at random.
#[allow(clippy::too_many_arguments)]
pub(crate) fn line(
    topic: &Topic,
    lang: Lang,
    stage: Stage,
    ctx: &Ctx,
    variant: Option<usize>,
    rng: &mut Rng,
    out: &mut String,
) {
    let pool = lang_pool(lang);
    let lines: &[&str] = match (stage, pool) {
        (Stage::Opener, Some(p)) => p.openers,
        (Stage::Follow, Some(p)) => p.follow,
        (Stage::Thanks, Some(p)) => p.thanks,
        (Stage::Opener, None) => topic.openers,
        (Stage::Follow, None) => topic.follow,
        (Stage::Thanks, None) => topic.thanks,
        (Stage::Nudge, Some(p)) => p.follow,
        (Stage::Nudge, None) => NUDGES,
        (Stage::AgentFirst, _) => topic.agent_first,
        (Stage::AgentFollow, _) => topic.agent_follow,
        (Stage::AgentClose, _) => topic.agent_close,
        (Stage::Note, _) => topic.notes,
    };
    let template = match variant {
        Some(i) if !lines.is_empty() => lines[i % lines.len()],
        _ => rng.pick(lines),
    };
    if stage == Stage::AgentFirst
        && let Some(p) = pool
    {
        ctx.fill_into(p.agent_hello, out);
        out.push_str("\n\n");
    }
    ctx.fill_into(template, out);
}

/// The topic tags a customer writing in `lang` opens threads about (None: any).
pub(crate) fn lang_topics(lang: Lang) -> Option<&'static [(&'static str, usize)]> {
    lang_pool(lang).map(|p| p.opener_topics)
}

/// For a customer writing in `lang` about `tag`: which of their openers to use, and which
/// first reply of the topic answers it.
pub(crate) fn lang_opener(lang: Lang, tag: &str, rng: &mut Rng) -> Option<(usize, usize)> {
    let topics = lang_topics(lang)?;
    let matching: Vec<usize> = (0..topics.len()).filter(|&i| topics[i].0 == tag).collect();
    let i = *matching.get(rng.below(matching.len() as u64) as usize)?;
    Some((i, topics[i].1))
}

/// For a customer writing in `lang` about `tag`: their `n`-th follow-up (a position in their
/// language's pool), cycling through the lines that fit the topic.
pub(crate) fn lang_follow(lang: Lang, tag: &str, n: usize) -> Option<usize> {
    let p = lang_pool(lang)?;
    let fitting: Vec<usize> = (0..p.follow.len())
        .filter(|&i| {
            p.follow_topics
                .get(i)
                .is_some_and(|t| *t == tag || *t == "*")
        })
        .collect();
    if fitting.is_empty() {
        return None;
    }
    Some(fitting[n % fitting.len()])
}

/// The email subject of a thread that opened with the topic's opener `variant`.
pub(crate) fn subject(topic: &Topic, ctx: &Ctx, variant: usize) -> String {
    let subjects = topic.subjects;
    ctx.fill(
        subjects
            .get(variant % subjects.len().max(1))
            .copied()
            .unwrap_or(""),
    )
}

const EN_GREETINGS: &[&str] = &[
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hello Northwind team,",
    "Dear support,",
];
const EN_SIGNOFFS: &[&str] = &[
    "Thanks,",
    "Best,",
    "Cheers,",
    "Kind regards,",
    "Thanks in advance,",
];

/// The start of `body` as an email quote ("> ..."), up to `max` lines, without the quote it
/// carries itself.
fn quote(body: &str, max: usize, out: &mut String) {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .take_while(|l| !(l.starts_with('>') || (l.starts_with("On ") && l.ends_with("wrote:"))))
        .collect();
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    for l in lines[..end].iter().take(max) {
        if l.is_empty() {
            out.push_str(">\n");
        } else {
            out.push_str("> ");
            out.push_str(l);
            out.push('\n');
        }
    }
}

/// Wrap a customer's words as an email: greeting, text, sign-off, signature, and the agent's
/// previous message quoted below.
#[allow(clippy::too_many_arguments)]
pub(crate) fn customer_email(
    words: &str,
    lang: Lang,
    full_name: &str,
    company: Option<&str>,
    quoted: Option<(&str, &str, crate::model::Millis)>,
    rng: &mut Rng,
    out: &mut String,
) {
    let pool = lang_pool(lang);
    out.push_str(match pool {
        Some(p) => p.greeting,
        None => rng.pick(EN_GREETINGS),
    });
    out.push_str("\n\n");
    out.push_str(words);
    out.push_str("\n\n");
    out.push_str(match pool {
        Some(p) => p.signoff,
        None => rng.pick(EN_SIGNOFFS),
    });
    out.push('\n');
    out.push_str(full_name);
    if let Some(c) = company {
        out.push('\n');
        out.push_str(c);
    }
    if rng.chance(0.2) {
        out.push_str("\n\nSent from my iPhone");
    }
    if let Some((agent_name, previous, at)) = quoted {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        out.push_str("\n\n");
        out.push_str("On ");
        out.push_str(DAYS[(at.div_euclid(86_400_000)).rem_euclid(7) as usize]);
        out.push_str(", ");
        out.push_str(agent_name);
        out.push_str(" <support@northwind.example> wrote:\n");
        quote(previous, 6, out);
    }
}

/// Wrap an agent's words as an email: greeting by first name, signature, the customer's last
/// message quoted.
pub(crate) fn agent_email(
    words: &str,
    first: &str,
    agent_name: &str,
    quoted: Option<&str>,
    out: &mut String,
) {
    // A first reply to a customer abroad opens with a greeting in their language already.
    if !words.contains(first) {
        out.push_str("Hi ");
        out.push_str(first);
        out.push_str(",\n\n");
    }
    out.push_str(words);
    out.push_str("\n\nBest regards,\n");
    out.push_str(agent_name);
    out.push_str("\nNorthwind Outfitters - Customer Care");
    if let Some(q) = quoted {
        out.push_str("\n\n");
        quote(q, 6, out);
    }
}

/// A chat message from an agent: a short greeting on the first reply, then the words.
pub(crate) fn agent_chat(words: &str, first: &str, greet: bool, out: &mut String) {
    if greet {
        out.push_str("Hi ");
        out.push_str(first);
        out.push_str("! ");
    }
    out.push_str(words);
}

/// A customer's chat message: sometimes more casual than the email version.
pub(crate) fn customer_chat(words: &str, channel: Channel, rng: &mut Rng, out: &mut String) {
    if channel == Channel::Telegram && rng.chance(0.15) {
        // Telegram users often drop the final period.
        out.push_str(words.strip_suffix('.').unwrap_or(words));
    } else {
        out.push_str(words);
    }
}

/// The customer's answer to an agent's reply in the live demo, picked to fit what the agent said.
pub(crate) fn answer_to(reply: &str, rng: &mut Rng) -> &'static str {
    let r = reply.to_lowercase();
    let pools: &[(&[&str], &[&str])] = &[
        (
            &["refund"],
            &[
                "Still waiting for the refund...",
                "Thanks! I'll keep an eye on my statement.",
                "The refund just showed up, thank you!",
            ],
        ),
        (
            &["tracking", "shipped", "carrier", "parcel"],
            &[
                "Tracking shows it's out for delivery, thanks!",
                "The tracking link says \"not found\" - is the number right?",
                "Got it, thanks for checking!",
            ],
        ),
        (
            &["invoice", "pdf", "vat"],
            &[
                "Got the invoice, thanks.",
                "Our accountant says the VAT ID is still missing.",
            ],
        ),
        (
            &["size", "exchange"],
            &[
                "The new size fits perfectly!",
                "OK, I'll send the other one back tomorrow.",
            ],
        ),
        (
            &["quote", "price", "discount"],
            &[
                "Thanks, I'll discuss it with the team and get back to you.",
                "Looks good - can we start next week?",
            ],
        ),
    ];
    for (keys, answers) in pools {
        if keys.iter().any(|k| r.contains(k)) && rng.chance(0.75) {
            return rng.pick(answers);
        }
    }
    rng.pick(&[
        "Thanks! That worked.",
        "Perfect, thank you!",
        "OK 👍",
        "Hmm, that doesn't quite answer my question. Could someone call me?",
        "Got it, I'll try that tonight.",
        "Thank you so much for the quick reply!",
        "Still not working on my side, unfortunately.",
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::normalize;
    use crate::model::IdentityKind;

    #[test]
    fn fill_replaces_every_key() {
        let mut rng = Rng::new(3);
        let ctx = Ctx::new(&mut rng, "Ann", Some("Acme"));
        for t in TOPICS {
            for s in t
                .subjects
                .iter()
                .chain(t.openers)
                .chain(t.agent_first)
                .chain(t.follow)
                .chain(t.agent_follow)
                .chain(t.thanks)
                .chain(t.agent_close)
                .chain(t.notes)
            {
                let f = ctx.fill(s);
                assert!(!f.contains('{') && !f.contains('}'), "{s} -> {f}");
            }
        }
        for lang in LANG_WEIGHTS.iter().map(|(l, _)| *l) {
            if let Some(p) = lang_pool(lang) {
                for s in p
                    .openers
                    .iter()
                    .chain(p.follow)
                    .chain(p.thanks)
                    .chain([&p.agent_hello])
                {
                    let f = ctx.fill(s);
                    assert!(!f.contains('{'), "{s} -> {f}");
                }
            }
        }
    }

    #[test]
    fn phones_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for lang in LANG_WEIGHTS.iter().map(|(l, _)| *l) {
            for idx in (0..3000u64).map(|i| i * 37) {
                let raw = phone(idx, 12345, lang);
                let n = normalize(IdentityKind::Phone, &raw)
                    .unwrap_or_else(|e| panic!("{lang:?} {raw}: {e}"));
                assert!(seen.insert(n), "{raw} repeated");
            }
        }
    }

    #[test]
    fn ascii_fold_makes_email_safe_names() {
        assert_eq!(ascii_fold("Siobhán"), "siobhan");
        assert_eq!(ascii_fold("O'Brien"), "obrien");
        assert_eq!(ascii_fold("Weiß"), "weiss");
        assert_eq!(ascii_fold("Søren"), "soren");
    }
}
