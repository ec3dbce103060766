//! The closed vocabulary the spoken-form parsers care about.
//!
//! Every word token is looked up once, when the segment is tokenised, so the parsers that
//! run afterwards compare small enum values instead of strings. Anything not listed here is
//! [`Lex::Other`]: the vocabulary is deliberately small, because a word that is wrongly
//! listed (say, "o" as zero outside a digit run) is what turns into a false positive.

/// The role a word can play in a number, a date or a spelled e-mail address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lex {
    /// "zero" … "nine" (also "nought", "niner").
    Digit(u8),
    /// "oh" or "o": zero, but only inside a digit run (otherwise an interjection or a letter).
    Oh,
    /// "double": the next digit twice.
    Double,
    /// "triple": the next digit three times.
    Triple,
    /// "ten" … "nineteen", as the value 10 … 19.
    Teen(u8),
    /// "twenty" … "ninety", as the tens digit 2 … 9.
    Tens(u8),
    Hundred,
    Thousand,
    /// "first" … "nineteenth" as 1 … 19, "twentieth" as 20, "thirtieth" as 30.
    Ordinal(u8),
    /// A month name or its common abbreviation, 1 … 12.
    Month(u8),
    /// A hesitation the speaker drops into the middle of a number ("four one five uh …").
    Filler,
    /// "dash" / "hyphen": a separator read out loud, inside numbers and e-mail addresses.
    Dash,
    /// A unit that makes a preceding number an amount ("dollars", "bucks", "percent" …).
    Currency,
    At,
    /// "sign" / "symbol", as in "at sign".
    Sign,
    /// "dot" / "period" / "point", between parts of an e-mail address.
    Dot,
    Underscore,
    The,
    Of,
    In,
    And,
    /// A bracketed transcription tag such as `[noise]` or `<unk>`; see the tokeniser.
    Tag,
    Other,
}

/// Looks a word up, ignoring ASCII case. Words longer than any listed entry, and words with
/// non-ASCII letters, are [`Lex::Other`] without further work.
pub(crate) fn lex(word: &str) -> Lex {
    const MAX: usize = 12;
    let bytes = word.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX || !word.is_ascii() {
        return Lex::Other;
    }
    // Lower-casing into a stack buffer keeps the per-token lookup allocation-free.
    let mut buf = [0u8; MAX];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = src.to_ascii_lowercase();
    }
    match &buf[..bytes.len()] {
        b"zero" | b"nought" => Lex::Digit(0),
        b"one" => Lex::Digit(1),
        b"two" => Lex::Digit(2),
        b"three" => Lex::Digit(3),
        b"four" => Lex::Digit(4),
        b"five" => Lex::Digit(5),
        b"six" => Lex::Digit(6),
        b"seven" => Lex::Digit(7),
        b"eight" => Lex::Digit(8),
        b"nine" | b"niner" => Lex::Digit(9),
        b"oh" | b"o" => Lex::Oh,
        b"double" => Lex::Double,
        b"triple" => Lex::Triple,
        b"ten" => Lex::Teen(10),
        b"eleven" => Lex::Teen(11),
        b"twelve" => Lex::Teen(12),
        b"thirteen" => Lex::Teen(13),
        b"fourteen" => Lex::Teen(14),
        b"fifteen" => Lex::Teen(15),
        b"sixteen" => Lex::Teen(16),
        b"seventeen" => Lex::Teen(17),
        b"eighteen" => Lex::Teen(18),
        b"nineteen" => Lex::Teen(19),
        b"twenty" => Lex::Tens(2),
        b"thirty" => Lex::Tens(3),
        b"forty" | b"fourty" => Lex::Tens(4),
        b"fifty" => Lex::Tens(5),
        b"sixty" => Lex::Tens(6),
        b"seventy" => Lex::Tens(7),
        b"eighty" => Lex::Tens(8),
        b"ninety" => Lex::Tens(9),
        b"hundred" => Lex::Hundred,
        b"thousand" => Lex::Thousand,
        b"first" => Lex::Ordinal(1),
        b"second" => Lex::Ordinal(2),
        b"third" => Lex::Ordinal(3),
        b"fourth" => Lex::Ordinal(4),
        b"fifth" => Lex::Ordinal(5),
        b"sixth" => Lex::Ordinal(6),
        b"seventh" => Lex::Ordinal(7),
        b"eighth" => Lex::Ordinal(8),
        b"ninth" => Lex::Ordinal(9),
        b"tenth" => Lex::Ordinal(10),
        b"eleventh" => Lex::Ordinal(11),
        b"twelfth" => Lex::Ordinal(12),
        b"thirteenth" => Lex::Ordinal(13),
        b"fourteenth" => Lex::Ordinal(14),
        b"fifteenth" => Lex::Ordinal(15),
        b"sixteenth" => Lex::Ordinal(16),
        b"seventeenth" => Lex::Ordinal(17),
        b"eighteenth" => Lex::Ordinal(18),
        b"nineteenth" => Lex::Ordinal(19),
        b"twentieth" => Lex::Ordinal(20),
        b"thirtieth" => Lex::Ordinal(30),
        b"january" | b"jan" => Lex::Month(1),
        b"february" | b"feb" => Lex::Month(2),
        b"march" | b"mar" => Lex::Month(3),
        b"april" | b"apr" => Lex::Month(4),
        b"may" => Lex::Month(5),
        b"june" | b"jun" => Lex::Month(6),
        b"july" | b"jul" => Lex::Month(7),
        b"august" | b"aug" => Lex::Month(8),
        b"september" | b"sep" | b"sept" => Lex::Month(9),
        b"october" | b"oct" => Lex::Month(10),
        b"november" | b"nov" => Lex::Month(11),
        b"december" | b"dec" => Lex::Month(12),
        b"uh" | b"um" | b"uhm" | b"umm" | b"er" | b"erm" | b"ah" | b"hmm" | b"mm" => Lex::Filler,
        b"dash" | b"hyphen" => Lex::Dash,
        b"dollar" | b"dollars" | b"buck" | b"bucks" | b"cent" | b"cents" | b"pound" | b"pounds"
        | b"euro" | b"euros" | b"quid" | b"percent" | b"grand" => Lex::Currency,
        b"at" => Lex::At,
        b"sign" | b"symbol" => Lex::Sign,
        b"dot" | b"period" | b"point" => Lex::Dot,
        b"underscore" => Lex::Underscore,
        b"the" => Lex::The,
        b"of" => Lex::Of,
        b"in" => Lex::In,
        b"and" => Lex::And,
        _ => Lex::Other,
    }
}

/// Transcription tags (`[noise]`, `<unk>` …) that may sit inside a number being read out.
pub(crate) fn is_tag_word(word: &str) -> bool {
    [
        "noise", "unk", "laughter", "baby", "kids", "cough", "breath",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_ascii_case_and_rejects_long_or_non_ascii_words() {
        assert_eq!(lex("Four"), Lex::Digit(4));
        assert_eq!(lex("OH"), Lex::Oh);
        assert_eq!(lex("Fourteenth"), Lex::Ordinal(14));
        assert_eq!(lex("fourteenthly"), Lex::Other);
        assert_eq!(lex("ﬁve"), Lex::Other);
        assert_eq!(lex(""), Lex::Other);
    }
}
