//! E-mail addresses read out loud: "john dot smith at gmail dot com".
//!
//! The anchor is the word "at" followed by a domain that ends in a known top-level domain
//! ("… dot com") or is a well-known mail provider on its own ("at gmail"). Without that
//! anchor "at" is just a preposition ("at five thirty", "at the branch"), which is why the
//! domain test is strict while the local part is generous.
//!
//! The local part is the word before "at", extended backwards over read-out separators
//! ("dot", "underscore", "dash", or a written `.`/`_`/`-`) and, when it is being spelled
//! ("j o h n", "four two"), over further single letters and digits. Where the local part
//! began is genuinely ambiguous in speech ("my email is john smith at gmail dot com" may be
//! `johnsmith@…` or `smith@…`); the rule takes the shortest reading, so a first name just
//! before the address can stay in the clear.

use crate::lexicon::Lex;
use crate::token::{Class, Token};

const TLDS: &[&str] = &[
    "com", "net", "org", "edu", "gov", "mil", "io", "co", "uk", "us", "ca", "de", "fr", "au", "in",
    "biz", "info", "me", "ai", "app", "dev",
];

const PROVIDERS: &[&str] = &[
    "gmail",
    "googlemail",
    "yahoo",
    "hotmail",
    "outlook",
    "icloud",
    "aol",
    "protonmail",
    "proton",
];

/// Words that end a sentence's subject or object, not an address: "look at", "call me at".
const STOP: &[&str] = &[
    "me", "you", "him", "her", "us", "them", "it", "is", "was", "are", "be", "been", "i", "we",
    "they", "there", "here", "home", "work", "least", "all", "once", "first", "last", "that",
    "this", "the", "a", "an", "look", "looking", "call", "meet", "stay", "staying", "arrive",
    "right", "email", "mail", "address", "my", "your", "its", "it's", "and", "or", "but", "so",
    "okay", "yes", "no", "yeah", "sign", "symbol",
];

fn word<'a>(text: &'a str, t: &Token) -> &'a str {
    &text[t.start..t.end]
}

fn one_of(list: &[&str], w: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(w))
}

/// A token that can be part of a local part or a domain label.
fn is_unit(text: &str, t: &Token) -> bool {
    match t.class {
        Class::Digits => true,
        Class::Word(Lex::Other | Lex::Digit(_) | Lex::Oh | Lex::Teen(_) | Lex::Tens(_)) => {
            !one_of(STOP, word(text, t))
        }
        _ => false,
    }
}

/// A token a speaker uses to spell: one letter, a number word, or written digits.
fn is_spelled(text: &str, t: &Token) -> bool {
    match t.class {
        Class::Digits
        | Class::Word(
            Lex::Digit(_) | Lex::Oh | Lex::Double | Lex::Triple | Lex::Teen(_) | Lex::Tens(_),
        ) => true,
        Class::Word(_) => word(text, t).chars().count() == 1,
        _ => false,
    }
}

fn gap<'a>(text: &'a str, tokens: &[Token], k: usize) -> &'a str {
    &text[tokens[k - 1].end..tokens[k].start]
}

fn is_connector_word(t: &Token) -> bool {
    matches!(t.class, Class::Word(Lex::Dot | Lex::Underscore | Lex::Dash))
}

/// Spoken e-mail addresses as inclusive token ranges.
pub(crate) fn find(text: &str, tokens: &[Token], out: &mut Vec<(usize, usize)>) {
    let mut a = 1;
    while a + 1 < tokens.len() {
        // A local part never reaches back into the address before it.
        let floor = out.last().map_or(0, |&(_, e)| e + 1);
        if tokens[a].class == Class::Word(Lex::At)
            && a > floor
            && let Some(end) = domain(text, tokens, a)
            && let Some(start) = local_part(text, tokens, a, floor)
        {
            out.push((start, end));
            a = end + 1;
        } else {
            a += 1;
        }
    }
}

fn local_part(text: &str, tokens: &[Token], at: usize, floor: usize) -> Option<usize> {
    let mut start = at - 1;
    if !is_unit(text, &tokens[start]) {
        return None;
    }
    let mut spelled = is_spelled(text, &tokens[start]);
    while start > floor {
        let g = gap(text, tokens, start);
        let prev = &tokens[start - 1];
        if matches!(g, "." | "_" | "-") && is_unit(text, prev) {
            start -= 1;
        } else if is_connector_word(prev) && start >= floor + 2 && is_unit(text, &tokens[start - 2])
        {
            start -= 2;
        } else if spelled && is_spelled(text, prev) && g.trim().is_empty() {
            start -= 1;
        } else {
            break;
        }
        spelled = is_spelled(text, &tokens[start]);
    }
    Some(start)
}

fn domain(text: &str, tokens: &[Token], at: usize) -> Option<usize> {
    let mut k = at + 1;
    if tokens.get(k)?.class == Class::Word(Lex::Sign) {
        k += 1;
    }
    let first = tokens.get(k)?;
    if !is_unit(text, first) {
        return None;
    }
    let mut last = k;
    let mut best = None;
    if one_of(PROVIDERS, word(text, first)) {
        best = Some(k);
    }
    loop {
        let next = if tokens.get(last + 2).is_some_and(|t| is_unit(text, t))
            && tokens[last + 1].class == Class::Word(Lex::Dot)
        {
            last + 2
        } else if tokens.get(last + 1).is_some_and(|t| is_unit(text, t))
            && gap(text, tokens, last + 1) == "."
        {
            last + 1
        } else {
            break;
        };
        last = next;
        if one_of(TLDS, word(text, &tokens[last])) {
            best = Some(last);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tokenize;

    fn emails(text: &str) -> Vec<&str> {
        let mut tokens = Vec::new();
        tokenize(text, &[], &mut tokens);
        let mut out = Vec::new();
        find(text, &tokens, &mut out);
        out.iter()
            .map(|&(s, e)| &text[tokens[s].start..tokens[e].end])
            .collect()
    }

    #[test]
    fn spoken_addresses() {
        assert_eq!(
            emails("it's john dot smith at gmail dot com thanks"),
            ["john dot smith at gmail dot com"]
        );
        assert_eq!(
            emails("john underscore smith at yahoo dot co dot uk"),
            ["john underscore smith at yahoo dot co dot uk"]
        );
        assert_eq!(
            emails("j o h n four two at gmail"),
            ["j o h n four two at gmail"]
        );
        assert_eq!(
            emails("mail john.smith at outlook.com"),
            ["john.smith at outlook.com"]
        );
        assert_eq!(
            emails("x at gmail dot com.b at yahoo dot com"),
            ["x at gmail dot com", "b at yahoo dot com"]
        );
    }

    #[test]
    fn at_as_a_preposition_is_not_an_address() {
        assert!(emails("call me at five thirty").is_empty());
        assert!(emails("i'll be at the branch dot com").is_empty());
        assert!(emails("look at gmail dot com").is_empty());
        assert!(emails("we met at google").is_empty());
    }
}
