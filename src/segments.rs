//! How many SMS a text costs: the composer shows it as the agent types.
//!
//! A text that only uses the GSM-7 alphabet (GSM 03.38: the basic set, and the extension table
//! whose characters `^ { } \ [ ] ~ | €` and form feed take two units, an escape and the
//! character) fits 160 units in one SMS; a longer one is split into parts of 153 units (the
//! user data header takes the rest). Any other character sends the whole text as UCS-2,
//! counted in UTF-16 code units (an emoji outside the basic plane takes two): 70 in one SMS, 67
//! per part. A character is never split between two parts (neither an escape pair nor a
//! surrogate pair), so a part may hold one unit less than its maximum.

/// The alphabet a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// What a text costs as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    /// Units used: GSM-7 septets (extension characters count two) or UTF-16 code units.
    pub units: usize,
    /// How many SMS the text is sent as (0 for an empty text).
    pub segments: usize,
}

impl Segments {
    /// Units that fit in one SMS in this encoding (160 or 70).
    pub fn single_max(&self) -> usize {
        match self.encoding {
            Encoding::Gsm7 => 160,
            Encoding::Ucs2 => 70,
        }
    }

    /// For the composer: "2 SMS · GSM-7 · 161/306" (units used / units the parts hold).
    pub fn label(&self) -> String {
        let capacity = match self.segments {
            0 | 1 => self.single_max(),
            n => n * self.part_max(),
        };
        let name = match self.encoding {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        };
        format!("{} SMS · {name} · {}/{capacity}", self.segments, self.units)
    }

    /// Units per part of a longer text (153 or 67).
    pub fn part_max(&self) -> usize {
        match self.encoding {
            Encoding::Gsm7 => 153,
            Encoding::Ucs2 => 67,
        }
    }
}

/// The GSM 03.38 basic character set (escape excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: each costs two units (escape + character).
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// A character's cost in GSM-7 units, None when GSM-7 cannot carry it.
fn gsm7_units(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// How many parts of `part_max` units the characters of these costs fill, never splitting one.
fn pack(costs: impl Iterator<Item = usize>, part_max: usize) -> usize {
    let mut parts = 1;
    let mut used = 0;
    for cost in costs {
        if used + cost > part_max {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    parts
}

/// What `text` costs as SMS.
pub fn segments(text: &str) -> Segments {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_units).collect();
    let (encoding, costs) = match gsm {
        Some(costs) => (Encoding::Gsm7, costs),
        None => (
            Encoding::Ucs2,
            text.chars().map(char::len_utf16).collect::<Vec<_>>(),
        ),
    };
    let units: usize = costs.iter().sum();
    let mut out = Segments {
        encoding,
        units,
        segments: 0,
    };
    out.segments = if units == 0 {
        0
    } else if units <= out.single_max() {
        1
    } else {
        pack(costs.into_iter(), out.part_max())
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> (Encoding, usize, usize) {
        let s = segments(text);
        (s.encoding, s.units, s.segments)
    }

    #[test]
    fn gsm7_limits() {
        assert_eq!(seg(""), (Encoding::Gsm7, 0, 0));
        assert_eq!(seg("Hello"), (Encoding::Gsm7, 5, 1));
        assert_eq!(seg(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (Encoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (Encoding::Gsm7, 307, 3));
        assert_eq!(seg(&"a".repeat(459)), (Encoding::Gsm7, 459, 3));
        assert_eq!(seg(&"a".repeat(460)), (Encoding::Gsm7, 460, 4));
    }

    #[test]
    fn gsm7_accents_and_greek_are_one_unit_extension_characters_two() {
        // Basic-set characters beyond ASCII keep GSM-7.
        assert_eq!(seg("Grüße, Ñaño! Ça va? ΔΩ £5 @ 10¥ §1 ¿¡"), {
            let n = "Grüße, Ñaño! Ça va? ΔΩ £5 @ 10¥ §1 ¿¡".chars().count();
            (Encoding::Gsm7, n, 1)
        });
        assert_eq!(seg("€"), (Encoding::Gsm7, 2, 1));
        assert_eq!(seg("{[~|^\\]}"), (Encoding::Gsm7, 16, 1));
        assert_eq!(seg("\u{c}"), (Encoding::Gsm7, 2, 1));
        // 80 euro signs: 160 units, one SMS; 81: two.
        assert_eq!(seg(&"€".repeat(80)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"€".repeat(81)), (Encoding::Gsm7, 162, 2));
        // An escape pair is not split: 152 a's and a € fill the first part to 152 + 2 > 153,
        // so the € opens the second part.
        let text = "a".repeat(152) + "€" + &"a".repeat(10);
        assert_eq!(seg(&text), (Encoding::Gsm7, 164, 2));
        let text = "a".repeat(152) + "€" + &"a".repeat(152);
        // Part 1: 152 a's; part 2: € + 151 a's = 153; part 3: 1 a.
        assert_eq!(seg(&text), (Encoding::Gsm7, 306, 3));
    }

    #[test]
    fn one_character_outside_gsm7_makes_the_whole_text_ucs2() {
        // Lowercase ç, á, the curly apostrophe and ê are not in GSM-7.
        assert_eq!(seg("ça"), (Encoding::Ucs2, 2, 1));
        assert_eq!(seg("It’s"), (Encoding::Ucs2, 4, 1));
        assert_eq!(seg(&"a".repeat(70)), (Encoding::Gsm7, 70, 1));
        assert_eq!(
            seg(&("ê".to_string() + &"a".repeat(69))),
            (Encoding::Ucs2, 70, 1)
        );
        assert_eq!(
            seg(&("ê".to_string() + &"a".repeat(70))),
            (Encoding::Ucs2, 71, 2)
        );
        assert_eq!(seg(&"ж".repeat(134)), (Encoding::Ucs2, 134, 2));
        assert_eq!(seg(&"ж".repeat(135)), (Encoding::Ucs2, 135, 3));
        assert_eq!(seg("中文"), (Encoding::Ucs2, 2, 1));
    }

    #[test]
    fn emoji_take_two_utf16_units_and_are_not_split() {
        assert_eq!(seg("👍"), (Encoding::Ucs2, 2, 1));
        assert_eq!(seg(&"👍".repeat(35)), (Encoding::Ucs2, 70, 1));
        assert_eq!(seg(&"👍".repeat(36)), (Encoding::Ucs2, 72, 2));
        // 66 units then an emoji: 66 + 2 > 67, the emoji opens part two.
        let text = "ж".repeat(66) + "👍" + &"ж".repeat(5);
        assert_eq!(seg(&text), (Encoding::Ucs2, 73, 2));
        let text = "ж".repeat(66) + "👍" + &"ж".repeat(66);
        // Part 1: 66; part 2: 👍 + 65 = 67; part 3: 1.
        assert_eq!(seg(&text), (Encoding::Ucs2, 134, 3));
    }

    #[test]
    fn limits_per_encoding() {
        let g = segments("a");
        assert_eq!((g.single_max(), g.part_max()), (160, 153));
        let u = segments("ж");
        assert_eq!((u.single_max(), u.part_max()), (70, 67));
        assert_eq!(segments("hi").label(), "1 SMS · GSM-7 · 2/160");
        assert_eq!(
            segments(&"a".repeat(161)).label(),
            "2 SMS · GSM-7 · 161/306"
        );
        assert_eq!(segments("👍").label(), "1 SMS · UCS-2 · 2/70");
        assert_eq!(segments("").label(), "0 SMS · GSM-7 · 0/160");
    }
}
