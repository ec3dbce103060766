//! Dates of birth, parsed only right after a date-of-birth cue.
//!
//! Call-centre speech is full of dates that are not PII ("on the fourteenth", "next tuesday
//! the 3rd", "since 2019"), so a date is redacted only when a cue ("date of birth",
//! "born", "birthday", "dob") came just before it. The grammar covers what people say:
//!
//! - a written date token (`03/14/1985`, `1985-03-14`), found by [`written`](crate::written);
//! - month first: "march fourteenth nineteen eighty five", "march 14th 1985", "march 1985";
//! - day first: "the fourteenth of march nineteen eighty five", "14 march 85";
//! - year only, after "in" or straight after the cue: "born in 1985", "born nineteen eighty five".
//!
//! A date read as bare digits ("oh three one four eight five") is a digit run and is
//! classified as a DOB by the same cue in [`classify`](crate::classify).

use crate::lexicon::Lex;
use crate::token::{Class, Token};

fn lex_at(tokens: &[Token], i: usize) -> Option<Lex> {
    tokens.get(i).and_then(Token::lex)
}

fn digits_at(tokens: &[Token], i: usize) -> Option<usize> {
    tokens
        .get(i)
        .filter(|t| t.class == Class::Digits)
        .map(Token::len)
}

/// Parses a date starting at token `i`; returns the inclusive token range of the value
/// (leading "the" / "in" excluded, since they say nothing about the person).
pub(crate) fn parse(tokens: &[Token], text: &str, i: usize) -> Option<(usize, usize)> {
    let t = tokens.get(i)?;
    if let Class::Date(id) = t.class {
        let mut end = i;
        while tokens
            .get(end + 1)
            .is_some_and(|n| n.class == Class::Date(id))
        {
            end += 1;
        }
        return Some((i, end));
    }
    match t.lex() {
        Some(Lex::The) => day_first(tokens, text, i + 1).map(|e| (i + 1, e)),
        Some(Lex::In) => year(tokens, i + 1, false).map(|e| (i + 1, e)),
        Some(Lex::Month(_)) => month_first(tokens, text, i).map(|e| (i, e)),
        _ => day_first(tokens, text, i)
            .or_else(|| year(tokens, i, false))
            .map(|e| (i, e)),
    }
}

fn month_first(tokens: &[Token], text: &str, m: usize) -> Option<usize> {
    let mut k = m + 1;
    if lex_at(tokens, k) == Some(Lex::The) {
        k += 1;
    }
    if let Some(d) = day(tokens, text, k) {
        if lex_at(tokens, d + 1) == Some(Lex::Of) {
            return year(tokens, d + 2, true).or(Some(d));
        }
        return year(tokens, d + 1, true).or(Some(d));
    }
    year(tokens, m + 1, false)
}

fn day_first(tokens: &[Token], text: &str, i: usize) -> Option<usize> {
    let d = day(tokens, text, i)?;
    let mut k = d + 1;
    if lex_at(tokens, k) == Some(Lex::Of) {
        k += 1;
    }
    match lex_at(tokens, k) {
        Some(Lex::Month(_)) => year(tokens, k + 1, true).or(Some(k)),
        _ => None,
    }
}

/// A day of the month: "fourteenth", "twenty first", "fourteen", "twenty one", "14", "14th".
fn day(tokens: &[Token], text: &str, i: usize) -> Option<usize> {
    if let Some(len) = digits_at(tokens, i) {
        let t = &tokens[i];
        let value: u32 = text[t.start..t.end].parse().ok()?;
        if len > 2 || !(1..=31).contains(&value) {
            return None;
        }
        // "14th" tokenises as "14" + "th"; the suffix belongs to the day.
        let suffix = tokens.get(i + 1).filter(|n| {
            n.start == t.end
                && ["st", "nd", "rd", "th"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&text[n.start..n.end]))
        });
        return Some(if suffix.is_some() { i + 1 } else { i });
    }
    match lex_at(tokens, i)? {
        Lex::Ordinal(_) | Lex::Teen(_) => Some(i),
        Lex::Digit(d) if d > 0 => Some(i),
        Lex::Tens(t @ (2 | 3)) => match lex_at(tokens, i + 1) {
            Some(Lex::Ordinal(1..=9)) if t == 2 => Some(i + 1),
            Some(Lex::Ordinal(1)) => Some(i + 1),
            Some(Lex::Digit(1..=9)) if t == 2 => Some(i + 1),
            Some(Lex::Digit(1)) => Some(i + 1),
            _ => Some(i),
        },
        _ => None,
    }
}

/// "eighty five", "ninety": the tens-and-units tail of a spoken year.
fn two_digit(tokens: &[Token], i: usize) -> Option<usize> {
    match lex_at(tokens, i)? {
        Lex::Tens(_) => match lex_at(tokens, i + 1) {
            Some(Lex::Digit(1..=9)) => Some(i + 1),
            _ => Some(i),
        },
        Lex::Teen(_) => Some(i),
        Lex::Oh => match lex_at(tokens, i + 1) {
            Some(Lex::Digit(_)) => Some(i + 1),
            _ => None,
        },
        _ => None,
    }
}

/// A year: written (1985, or 85 when `short_ok`), or spoken ("nineteen eighty five",
/// "two thousand and one", "twenty oh five", "twenty twenty"; "eighty five" when
/// `short_ok`, i.e. after a month or day has already made it a date).
fn year(tokens: &[Token], i: usize, short_ok: bool) -> Option<usize> {
    if let Some(len) = digits_at(tokens, i) {
        return (len == 4 || (short_ok && len == 2)).then_some(i);
    }
    match lex_at(tokens, i)? {
        Lex::Teen(_) => match lex_at(tokens, i + 1) {
            Some(Lex::Hundred) => Some(i + 1),
            _ => two_digit(tokens, i + 1),
        },
        Lex::Tens(2) => two_digit(tokens, i + 1).or(short_ok.then_some(i)),
        Lex::Digit(2) if lex_at(tokens, i + 1) == Some(Lex::Thousand) => {
            let mut k = i + 2;
            if lex_at(tokens, k) == Some(Lex::And) {
                k += 1;
            }
            match lex_at(tokens, k) {
                Some(Lex::Digit(1..=9)) => Some(k),
                Some(Lex::Teen(_) | Lex::Tens(_)) => two_digit(tokens, k),
                _ => Some(i + 1),
            }
        }
        Lex::Tens(_) if short_ok => two_digit(tokens, i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tokenize;

    fn date(text: &str) -> Option<String> {
        let mut tokens = Vec::new();
        tokenize(text, &[], &mut tokens);
        parse(&tokens, text, 0).map(|(s, e)| text[tokens[s].start..tokens[e].end].to_owned())
    }

    #[test]
    fn spoken_and_written_dates() {
        for (input, want) in [
            (
                "march fourteenth nineteen eighty five and",
                "march fourteenth nineteen eighty five",
            ),
            ("march 14th 1985 ok", "march 14th 1985"),
            (
                "the fourteenth of march nineteen eighty five",
                "fourteenth of march nineteen eighty five",
            ),
            ("in 1985 i think", "1985"),
            ("nineteen eighty five", "nineteen eighty five"),
            (
                "june twenty first two thousand and one",
                "june twenty first two thousand and one",
            ),
            ("may the 3rd 85", "may the 3rd 85"),
            ("14 march", "14 march"),
            ("twenty oh five", "twenty oh five"),
        ] {
            assert_eq!(date(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn not_dates() {
        for input in [
            "is it",
            "the branch",
            "in the morning",
            "eighty five",
            "the 2019 plan",
        ] {
            assert_eq!(date(input), None, "{input}");
        }
    }
}
