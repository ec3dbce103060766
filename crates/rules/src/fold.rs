//! Text folding: the one normal form that both rule phrases and transcript text are put in
//! before matching, so that matching is a plain substring search.
//!
//! Folded text is a run of words, each followed by exactly one space. A word is a maximal run
//! of letters, digits and combining marks, after:
//!
//! - compatibility decomposition (NFKD), so full-width and ligature forms match their plain
//!   letters and precomposed letters split into base + marks;
//! - lower-casing (Unicode, not just ASCII);
//! - dropping Latin accents (U+0300..U+036F), Arabic harakat, Quranic marks and the tatweel, and
//!   unifying Arabic letter variants (alef maksura → yeh, teh marbuta → heh, Persian yeh and
//!   keheh → Arabic yeh and kaf): speech-to-text output is inconsistent about all of them;
//! - mapping Arabic-Indic and Devanagari digits to ASCII digits;
//! - dropping apostrophes, so `can't` and `cant` fold alike (speech-to-text emits both), and
//!   zero-width joiners, which split no word in Devanagari or Arabic script.
//!
//! Everything else (punctuation, symbols, whitespace) separates words. Devanagari vowel signs,
//! viramas and nuktas are combining marks and so stay inside their word: Hindi keeps working.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{canonical_combining_class, is_combining_mark};

/// Appends the folded words of `text` to `out`, each word followed by one space, and the byte
/// offset in `out` where each word starts to `starts`.
pub(crate) fn fold_into(text: &str, out: &mut String, starts: &mut Vec<usize>) {
    let from = out.len();
    let mut w = Writer {
        out,
        starts,
        in_word: false,
        marks_met: false,
    };
    if text.is_ascii() {
        // The common case (English speech-to-text) skips normalization entirely.
        for b in text.bytes() {
            match b {
                b'a'..=b'z' | b'0'..=b'9' => w.letter(char::from(b)),
                b'A'..=b'Z' => w.letter(char::from(b.to_ascii_lowercase())),
                b'\'' => {}
                _ => w.separator(),
            }
        }
    } else {
        for c in text.nfkd() {
            for c in c.to_lowercase() {
                match classify(c) {
                    Class::Drop => w.drop_one(),
                    Class::Letter(c) => w.letter(c),
                    Class::Separator => w.separator(),
                }
            }
        }
    }
    w.separator();
    if w.marks_met {
        reorder_marks(out, from);
    }
}

/// Puts each run of combining marks appended from `from` on back in canonical order (stably
/// by combining class), as NFKD leaves them. Only needed when a dropped character sat
/// between two marks: NFKD ordered the marks on each side of it, not the two sides together,
/// and a fold of the folded text (NFKD again) would reorder them, so folding would not be
/// idempotent ("\u{1E023}'\u{DCA}": the apostrophe goes, two marks meet out of order).
fn reorder_marks(out: &mut String, from: usize) {
    let mut chars: Vec<char> = out[from..].chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && canonical_combining_class(chars[i]) != 0 {
            i += 1;
        }
        if i - start > 1 {
            chars[start..i].sort_by_key(|c| canonical_combining_class(*c));
        }
        i = i.max(start + 1);
    }
    out.truncate(from);
    out.extend(chars);
}

/// The folded form of `text`: its words separated by single spaces, with no leading or
/// trailing space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    fold_into(text, &mut out, &mut Vec::new());
    out.pop();
    out
}

struct Writer<'a> {
    out: &'a mut String,
    starts: &'a mut Vec<usize>,
    in_word: bool,
    /// A character was dropped right after a combining mark: marks may now meet out of
    /// canonical order ([`reorder_marks`]).
    marks_met: bool,
}

impl Writer<'_> {
    fn letter(&mut self, c: char) {
        if !self.in_word {
            self.starts.push(self.out.len());
            self.in_word = true;
        }
        self.out.push(c);
    }

    fn drop_one(&mut self) {
        if self.in_word
            && !self.marks_met
            && self
                .out
                .chars()
                .next_back()
                .is_some_and(|c| canonical_combining_class(c) != 0)
        {
            self.marks_met = true;
        }
    }

    fn separator(&mut self) {
        if self.in_word {
            self.out.push(' ');
            self.in_word = false;
        }
    }
}

enum Class {
    Drop,
    Letter(char),
    Separator,
}

fn classify(c: char) -> Class {
    match c {
        // Latin combining accents, after NFKD split them off their letters.
        '\u{0300}'..='\u{036F}'
        // Arabic harakat, hamza above/below (what remains of أ إ ؤ ئ after NFKD), Quranic
        // annotation marks, the superscript alef and the tatweel (a pure stretching glyph).
        | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0670}'
        | '\u{06D6}'..='\u{06ED}'
        | '\u{0640}'
        // Apostrophes of every shape: "can't" and "cant" fold alike.
        | '\''
        | '\u{2018}'
        | '\u{2019}'
        | '\u{02BC}'
        // Invisible joiners and hyphenation hints that never split a word.
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{00AD}'
        | '\u{FEFF}' => Class::Drop,
        '\u{0649}' | '\u{06CC}' => Class::Letter('\u{064A}'),
        '\u{0629}' => Class::Letter('\u{0647}'),
        '\u{06A9}' => Class::Letter('\u{0643}'),
        '\u{0660}'..='\u{0669}' => Class::Letter(digit(c, '\u{0660}')),
        '\u{06F0}'..='\u{06F9}' => Class::Letter(digit(c, '\u{06F0}')),
        '\u{0966}'..='\u{096F}' => Class::Letter(digit(c, '\u{0966}')),
        c if c.is_alphanumeric() || is_combining_mark(c) => Class::Letter(c),
        _ => Class::Separator,
    }
}

/// The ASCII digit for `c` in a script whose zero is `zero`.
fn digit(c: char, zero: char) -> char {
    let d = u32::from(c) - u32::from(zero);
    char::from_digit(d, 10).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_that_meet_where_a_character_was_dropped_are_put_in_order() {
        // Found by the property test `fold_is_idempotent_and_tidy`: the apostrophe between
        // two combining marks goes, and the marks meet out of canonical order.
        for (text, folded) in [
            ("\u{1E023}'\u{DCA}", "\u{DCA}\u{1E023}"),
            // Devanagari: a virama (class 9), an apostrophe, a nukta (class 7).
            ("\u{915}\u{94D}'\u{93C}", "\u{915}\u{93C}\u{94D}"),
            // A joiner between them, and marks in order already: nothing moves.
            ("\u{915}\u{93C}\u{200D}\u{94D} x", "\u{915}\u{93C}\u{94D} x"),
        ] {
            assert_eq!(fold(text), folded, "{text:?}");
            assert_eq!(fold(&fold(text)), fold(text), "{text:?}");
        }
    }

    #[test]
    fn folds_case_punctuation_and_apostrophes() {
        let table = [
            ("I Can't GUARANTEE that!", "i cant guarantee that"),
            ("  100%   safe... ", "100 safe"),
            ("risk-free", "risk free"),
            ("I’m sure", "im sure"),
            ("Café  NAÏVE", "cafe naive"),
            ("ＦＵＬＬ width", "full width"),
            ("", ""),
            ("?!", ""),
        ];
        for (input, want) in table {
            assert_eq!(fold(input), want, "{input:?}");
        }
    }

    #[test]
    fn folds_arabic_variants_and_marks() {
        // "I guarantee you" with harakat and a hamza-on-alef, against the bare spelling.
        assert_eq!(fold("أَضْمَنُ لَكَ"), fold("اضمن لك"));
        assert_eq!(fold("أضمن لك"), "اضمن لك");
        // Alef with hamza below and madda; teh marbuta; alef maksura; tatweel.
        assert_eq!(fold("إلغاء"), "الغاء");
        assert_eq!(fold("آمن"), "امن");
        assert_eq!(fold("الفاتورة"), "الفاتوره");
        assert_eq!(fold("على"), "علي");
        assert_eq!(fold("مـــضمون"), "مضمون");
        // Arabic-Indic digits and the Arabic comma.
        assert_eq!(fold("١٠٠٪، آمن"), "100 امن");
    }

    #[test]
    fn keeps_devanagari_words_whole() {
        // Vowel signs, virama and anusvara are combining marks: they stay in their word;
        // the danda separates.
        assert_eq!(fold("मैं गारंटी देता हूँ।"), "मैं गारंटी देता हूँ");
        assert_eq!(fold("रद्द करना"), "रद्द करना");
        assert_eq!(fold("१००% सुरक्षित"), "100 सुरक्षित");
        // A zero-width joiner inside a conjunct does not split the word.
        assert_eq!(fold("क्\u{200D}ष"), "क्ष");
    }

    #[test]
    fn fold_into_records_word_starts() {
        let mut out = String::from(" ");
        let mut starts = Vec::new();
        fold_into("Hi, there", &mut out, &mut starts);
        assert_eq!(out, " hi there ");
        assert_eq!(starts, vec![1, 4]);
    }
}
