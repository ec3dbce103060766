//! Digit runs, spoken and written: the normalisation at the heart of the crate.
//!
//! A run is a chain of *atoms* separated only by spaces, light punctuation (`-().,+`),
//! hesitations ("uh") and a read-out "dash". An atom is:
//!
//! - written digits (`415`, `0132`) — *literal* digits;
//! - a digit word ("zero" … "nine") — literal;
//! - "oh"/"o" — literal zero, but only in a chain that has some other atom or at least
//!   three of them, so "oh okay", "oh no" and "oh oh" stay interjections;
//! - "double X" / "triple X" — literal, two or three digits;
//! - a teen ("fifteen"), a tens word with an optional unit ("fifty", "fifty five") or
//!   "hundred" after another atom ("one eight hundred") — *soft* digits, read phone-style.
//!
//! The rule that separates numbers being read out from quantities, times and prices: a
//! chain is a digit run only if it has at least three literal digits. Then, and only then,
//! its soft atoms count too ("four one five five five five fifty one thirty two" is ten
//! digits). "five thirty", "ninety nine", "nineteen eighty five", "a hundred and fifty",
//! "one or two" and "two units" all have fewer than three literal digits. A chain directly
//! preceded by a currency sign or followed by "dollars", "bucks", "percent" … is an amount
//! and not a run, unless it has seven digits or more (a phone number followed by "dollars"
//! is still a phone number).

use crate::checksum::{Luhn, ssn_plausible};
use crate::lexicon::Lex;
use crate::token::{Class, Token};

/// One chain of atoms, with everything classification needs and nothing of the value but a
/// checksum verdict.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    /// Index of the first and last token (inclusive).
    pub first: usize,
    pub last: usize,
    pub atoms: u32,
    pub literal: u32,
    /// Literal plus soft digits.
    pub digits: u32,
    pub luhn: Luhn,
    /// Written exactly as three groups of 3, 2 and 4 digits that could be an issued SSN.
    pub ssn_shape: bool,
    /// Written with a leading `+`: an international phone number.
    pub plus: bool,
    /// Next to a currency sign or word: an amount, not a number being read out.
    pub amount: bool,
}

#[derive(Clone, Copy)]
enum Atom {
    Written(usize),
    One(u8),
    Oh,
    Repeat(u8, u8),
    /// Two soft digits.
    Pair(u8, u8),
}

fn lex_at(tokens: &[Token], i: usize) -> Option<Lex> {
    tokens.get(i).and_then(Token::lex)
}

/// Characters that may separate two atoms of one number: "(415) 555-0132", "4111 1111",
/// "four, one, five", and the brackets of a `[noise]` tag. A slash or colon may not: those
/// make dates and times.
fn joinable(gap: &str) -> bool {
    gap.len() <= 4
        && gap.chars().all(|c| {
            matches!(
                c,
                ' ' | '\t' | '-' | '(' | ')' | '.' | ',' | '+' | '[' | ']' | '<' | '>'
            )
        })
}

fn gap_before<'a>(text: &'a str, tokens: &[Token], k: usize) -> &'a str {
    &text[tokens[k - 1].end..tokens[k].start]
}

/// A single digit for "double"/"triple" to repeat.
fn single_digit(text: &str, tokens: &[Token], i: usize) -> Option<u8> {
    let t = tokens.get(i)?;
    match t.class {
        Class::Word(Lex::Digit(d)) => Some(d),
        Class::Word(Lex::Oh) => Some(0),
        Class::Digits if t.len() == 1 => text.as_bytes().get(t.start).map(|b| b - b'0'),
        _ => None,
    }
}

fn atom_at(text: &str, tokens: &[Token], i: usize, in_chain: bool) -> Option<(Atom, usize)> {
    let t = tokens.get(i)?;
    if t.class == Class::Digits {
        return Some((Atom::Written(i), i));
    }
    let next_joined = |k: usize| k + 1 < tokens.len() && joinable(gap_before(text, tokens, k + 1));
    match t.lex()? {
        Lex::Digit(d) => Some((Atom::One(d), i)),
        Lex::Oh => Some((Atom::Oh, i)),
        Lex::Double | Lex::Triple if next_joined(i) => {
            let n = if t.lex() == Some(Lex::Double) { 2 } else { 3 };
            single_digit(text, tokens, i + 1).map(|d| (Atom::Repeat(d, n), i + 1))
        }
        Lex::Teen(n) => Some((Atom::Pair(1, n - 10), i)),
        Lex::Tens(t) => match lex_at(tokens, i + 1) {
            Some(Lex::Digit(u @ 1..=9)) if next_joined(i) => Some((Atom::Pair(t, u), i + 1)),
            _ => Some((Atom::Pair(t, 0), i)),
        },
        Lex::Hundred if in_chain => Some((Atom::Pair(0, 0), i)),
        _ => None,
    }
}

fn is_glue_word(t: &Token) -> bool {
    matches!(t.lex(), Some(Lex::Filler | Lex::Tag | Lex::Dash))
}

/// The chain starting at token `i`, if an atom starts there and the chain has an atom other
/// than "oh", or at least three of them.
pub(crate) fn chain_at(text: &str, tokens: &[Token], i: usize) -> Option<Chain> {
    let (first_atom, mut last) = atom_at(text, tokens, i, false)?;
    let mut c = Chain {
        first: i,
        last,
        atoms: 0,
        literal: 0,
        digits: 0,
        luhn: Luhn::default(),
        ssn_shape: false,
        plus: text[..tokens[i].start].ends_with('+'),
        amount: text[..tokens[i].start]
            .trim_end()
            .ends_with(['$', '£', '€']),
    };
    let mut strong = false;
    // Group lengths while every atom is written, for the SSN shape; 0 once it is not.
    let mut groups = [0usize; 3];
    let mut n_groups = 0usize;
    let mut all_written = true;
    let mut atom = first_atom;
    loop {
        match atom {
            Atom::Written(k) => {
                let t = &tokens[k];
                for b in text[t.start..t.end].bytes() {
                    c.luhn.push(b - b'0');
                }
                let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
                c.literal = c.literal.saturating_add(len);
                c.digits = c.digits.saturating_add(len);
                if n_groups < groups.len() {
                    groups[n_groups] = t.len();
                }
                n_groups += 1;
                strong = true;
            }
            Atom::One(d) => {
                c.luhn.push(d);
                c.literal = c.literal.saturating_add(1);
                c.digits = c.digits.saturating_add(1);
                strong = true;
                all_written = false;
            }
            Atom::Oh => {
                c.luhn.push(0);
                c.literal = c.literal.saturating_add(1);
                c.digits = c.digits.saturating_add(1);
                all_written = false;
            }
            Atom::Repeat(d, n) => {
                (0..n).for_each(|_| c.luhn.push(d));
                c.literal = c.literal.saturating_add(u32::from(n));
                c.digits = c.digits.saturating_add(u32::from(n));
                strong = true;
                all_written = false;
            }
            Atom::Pair(a, b) => {
                c.luhn.push(a);
                c.luhn.push(b);
                c.digits = c.digits.saturating_add(2);
                strong = true;
                all_written = false;
            }
        }
        c.atoms = c.atoms.saturating_add(1);
        c.last = last;
        // Look for the next atom past glue words, as long as every gap on the way joins.
        let mut k = last + 1;
        let mut next = None;
        while k < tokens.len() && joinable(gap_before(text, tokens, k)) {
            if let Some(found) = atom_at(text, tokens, k, true) {
                next = Some(found);
                break;
            }
            if !is_glue_word(&tokens[k]) {
                break;
            }
            k += 1;
        }
        match next {
            Some((a, l)) => {
                atom = a;
                last = l;
            }
            None => break,
        }
    }
    // "oh" alone, or "oh oh", is an interjection; three or more in a row are zeros.
    if !strong && c.atoms < 3 {
        return None;
    }
    let mut k = c.last + 1;
    while tokens.get(k).is_some_and(is_glue_word) {
        k += 1;
    }
    c.amount |= lex_at(tokens, k) == Some(Lex::Currency);
    if all_written && n_groups == 3 && groups == [3, 2, 4] {
        let mut d = [0u8; 9];
        let mut n = 0;
        for t in tokens[c.first..=c.last]
            .iter()
            .filter(|t| t.class == Class::Digits)
        {
            for b in text[t.start..t.end].bytes() {
                d[n] = b - b'0';
                n += 1;
            }
        }
        c.ssn_shape = ssn_plausible(&d);
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tokenize;

    /// (literal, digits, luhn valid) of the first chain in `text`.
    fn first(text: &str) -> Option<(u32, u32, bool, &str)> {
        let mut tokens = Vec::new();
        tokenize(text, &[], &mut tokens);
        (0..tokens.len()).find_map(|i| {
            chain_at(text, &tokens, i).map(|c| {
                (
                    c.literal,
                    c.digits,
                    c.luhn.is_valid(),
                    &text[tokens[c.first].start..tokens[c.last].end],
                )
            })
        })
    }

    #[test]
    fn readings_of_one_phone_number_agree() {
        for text in [
            "four one five five five five zero one three two",
            "four one five 555 oh one three two",
            "four one five double five five oh one three two",
            "four one five uh five five five [noise] zero one three two",
            "(415) 555-0132",
            "four one five five five five oh one thirty two",
        ] {
            let (literal, digits, _, _) = first(text).expect(text);
            assert_eq!(digits, 10, "{text}");
            assert!(literal >= 8, "{text}");
        }
    }

    #[test]
    fn card_blocks_keep_the_checksum() {
        let (_, digits, luhn, _) =
            first("four one one one one one one one one one one one one one one one").unwrap();
        assert_eq!((digits, luhn), (16, true));
        let (_, digits, luhn, _) = first("4111-1111-1111-1111").unwrap();
        assert_eq!((digits, luhn), (16, true));
    }

    #[test]
    fn quantities_have_few_literal_digits() {
        for text in [
            "at five thirty",
            "ninety nine",
            "nineteen eighty five",
            "two units",
        ] {
            let (literal, ..) = first(text).unwrap();
            assert!(literal < 3, "{text}");
        }
        assert_eq!(first("oh okay"), None);
        assert_eq!(first("triple word score"), None);
    }

    #[test]
    fn triple_and_double_repeat_the_next_digit() {
        assert_eq!(first("triple seven two").map(|c| c.1), Some(4));
        assert_eq!(
            first("double oh seven").map(|c| c.3),
            Some("double oh seven")
        );
    }
}
