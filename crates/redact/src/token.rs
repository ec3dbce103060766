//! Splits a segment into word and digit tokens with their byte spans.
//!
//! A token is a maximal run of letters (Unicode alphanumerics, with an apostrophe allowed
//! between two letters, as in "it's" or "o'clock") or a maximal run of ASCII digits: "3rd"
//! is the two tokens "3" and "rd", and "call4155550132" still yields the digit token. Every
//! character between tokens is "gap" and is kept as is; the parsers look at gaps only to
//! decide whether two tokens may belong to one number or one address.

use crate::lexicon::{Lex, is_tag_word, lex};

/// What a token is, as far as the parsers are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A word, already looked up in the lexicon.
    Word(Lex),
    /// A run of ASCII digits; its length is the token's length.
    Digits,
    /// A placeholder left by an earlier pass. Opaque: never re-redacted, never part of a run.
    Placeholder,
    /// Inside a span another detector already claimed (a written e-mail, an IBAN).
    Claimed,
    /// Inside a written amount or clock time (`$129`, `1,250.00`, `2:30`): never a digit run.
    Amount,
    /// Inside a written calendar date (`03/14/1985`); the value identifies the date, so the
    /// DOB parser can take the whole date in one step.
    Date(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub start: usize,
    pub end: usize,
    pub class: Class,
}

impl Token {
    pub(crate) fn lex(&self) -> Option<Lex> {
        match self.class {
            Class::Word(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !c.is_ascii_digit()
}

/// Tokenises `text`, treating every span in `placeholders` (sorted, non-overlapping byte
/// ranges) as one opaque token.
pub(crate) fn tokenize(text: &str, placeholders: &[(usize, usize)], out: &mut Vec<Token>) {
    let bytes = text.as_bytes();
    let mut next_ph = placeholders.iter().peekable();
    let mut iter = text.char_indices().peekable();
    while let Some(&(i, c)) = iter.peek() {
        if let Some(&&(ps, pe)) = next_ph.peek()
            && ps <= i
        {
            next_ph.next();
            if pe > i {
                out.push(Token {
                    start: ps.max(i),
                    end: pe,
                    class: Class::Placeholder,
                });
                while iter.peek().is_some_and(|&(j, _)| j < pe) {
                    iter.next();
                }
            }
            continue;
        }
        let stop = next_ph.peek().map_or(text.len(), |&&(ps, _)| ps);
        if c.is_ascii_digit() {
            let mut end = i;
            while end < stop && bytes[end].is_ascii_digit() {
                end += 1;
            }
            while iter.peek().is_some_and(|&(j, _)| j < end) {
                iter.next();
            }
            out.push(Token {
                start: i,
                end,
                class: Class::Digits,
            });
        } else if is_word_char(c) {
            iter.next();
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = iter.peek() {
                if j >= stop {
                    break;
                }
                let after = j + d.len_utf8();
                // An apostrophe stays inside a word only between letters: "it's", "o'clock".
                let apostrophe = (d == '\'' || d == '\u{2019}')
                    && after < stop
                    && text[after..]
                        .chars()
                        .next()
                        .is_some_and(char::is_alphabetic);
                if is_word_char(d) || apostrophe {
                    iter.next();
                    end = after;
                } else {
                    break;
                }
            }
            let word = &text[i..end];
            let mut l = lex(word);
            // `[noise]` and `<unk>` are annotations, not speech: inside a number they must
            // not break the run, exactly like "uh".
            if l == Lex::Other
                && is_tag_word(word)
                && text[..i].ends_with(['[', '<'])
                && text[end..].starts_with([']', '>'])
            {
                l = Lex::Tag;
            }
            out.push(Token {
                start: i,
                end,
                class: Class::Word(l),
            });
        } else {
            iter.next();
        }
    }
}

/// Re-labels the tokens that overlap any span of `spans` (sorted, non-overlapping byte
/// ranges, each with its class). Tokens are sorted, so this is one merge pass.
pub(crate) fn mark(tokens: &mut [Token], spans: &[(usize, usize, Class)]) {
    let mut s = 0;
    for t in tokens.iter_mut() {
        while s < spans.len() && spans[s].1 <= t.start {
            s += 1;
        }
        if t.class == Class::Placeholder {
            continue;
        }
        if let Some(&(ss, se, class)) = spans.get(s)
            && ss < t.end
            && t.start < se
        {
            t.class = class;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str, ph: &[(usize, usize)]) -> Vec<(String, Class)> {
        let mut out = Vec::new();
        tokenize(text, ph, &mut out);
        out.iter()
            .map(|t| (text[t.start..t.end].to_owned(), t.class))
            .collect()
    }

    #[test]
    fn splits_digits_from_letters_and_keeps_apostrophes_inside_words() {
        let t = toks("it's 3rd o'clock call4155550132", &[]);
        let words: Vec<&str> = t.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["it's", "3", "rd", "o'clock", "call", "4155550132"]);
        assert_eq!(t[1].1, Class::Digits);
        assert_eq!(t[0].1, Class::Word(Lex::Other));
    }

    #[test]
    fn placeholders_are_single_opaque_tokens() {
        let text = "call [PHONE] now";
        let t = toks(text, &[(5, 12)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1], ("[PHONE]".to_owned(), Class::Placeholder));
    }

    #[test]
    fn bracketed_annotations_are_tags_but_the_bare_word_is_not() {
        let t = toks("four [noise] one noise", &[]);
        assert_eq!(t[1].1, Class::Word(Lex::Tag));
        assert_eq!(t[3].1, Class::Word(Lex::Other));
    }

    #[test]
    fn handles_non_latin_scripts() {
        let t = toks("رقم ٤١٥ नमस्ते 😀 5", &[]);
        assert!(t.iter().any(|(w, _)| w == "5"));
    }
}
