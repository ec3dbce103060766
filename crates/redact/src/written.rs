//! Written forms that need more than digit runs: e-mail addresses, IBANs, and the written
//! amounts, clock times and dates that must *not* be read as digit runs.
//!
//! Written phone, card and SSN numbers need no regex of their own: the tokeniser turns
//! `(415) 555-0132` into the digit tokens 415, 555 and 0132, and the digit-run parser in
//! [`spoken`](crate::spoken) joins them exactly as it joins spoken digits, which is also
//! what makes mixed readings ("four one five 555 oh one three two") work.

use std::sync::LazyLock;

use regex::Regex;

use crate::checksum::iban_valid;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}")
        .expect("the e-mail pattern is a fixed, valid regex")
});

static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?-u:\b)[A-Za-z]{2}[0-9]{2}(?:[ \-]?[A-Za-z0-9]{4}){2,7}(?:[ \-]?[A-Za-z0-9]{1,3})?(?-u:\b)",
    )
    .expect("the IBAN pattern is a fixed, valid regex")
});

/// Amounts and clock times. Boundaries are checked by hand in [`amounts`] because the regex
/// crate has no look-around.
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"[$£€]\s?[0-9][0-9,]*(?:\.[0-9]+)?",
        r"|[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?",
        r"|[0-9]+\.[0-9]{1,2}",
        r"|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?",
    ))
    .expect("the amount pattern is a fixed, valid regex")
});

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"[0-9]{1,2}/[0-9]{1,2}/(?:[0-9]{4}|[0-9]{2})",
        r"|[0-9]{1,2}-[0-9]{1,2}-(?:[0-9]{4}|[0-9]{2})",
        r"|[0-9]{1,2}\.[0-9]{1,2}\.(?:[0-9]{4}|[0-9]{2})",
        r"|[0-9]{4}-[0-9]{2}-[0-9]{2}",
    ))
    .expect("the date pattern is a fixed, valid regex")
});

pub(crate) fn warm_up() {
    for re in [&EMAIL, &IBAN, &AMOUNT, &DATE] {
        LazyLock::force(re);
    }
}

/// Written e-mail addresses (with an `@`).
pub(crate) fn emails(text: &str, out: &mut Vec<(usize, usize)>) {
    if !text.contains('@') {
        return;
    }
    out.extend(EMAIL.find_iter(text).map(|m| (m.start(), m.end())));
}

/// IBANs whose mod-97 check holds. When the greedy match swallowed a following word that
/// happens to have the shape of a group ("… 7654 32 okay"), shorter readings are tried.
pub(crate) fn ibans(text: &str, out: &mut Vec<(usize, usize)>) {
    for m in IBAN.find_iter(text) {
        let s = m.as_str();
        let mut compact = [0u8; 34];
        let mut len = 0;
        // (end of the candidate in bytes of `s`, its compact length), one per group end.
        let mut ends = [(0usize, 0usize); 10];
        let mut n_ends = 0;
        for (i, b) in s.bytes().enumerate() {
            if b.is_ascii_alphanumeric() {
                if len == compact.len() {
                    break;
                }
                compact[len] = b;
                len += 1;
                let at_group_end = s
                    .as_bytes()
                    .get(i + 1)
                    .is_none_or(|n| !n.is_ascii_alphanumeric());
                if at_group_end && n_ends < ends.len() {
                    ends[n_ends] = (i + 1, len);
                    n_ends += 1;
                }
            }
        }
        if let Some(&(end, _)) = ends[..n_ends]
            .iter()
            .rev()
            .find(|&&(_, clen)| iban_valid(&compact[..clen]))
        {
            out.push((m.start(), m.start() + end));
        }
    }
}

fn digit_before(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_ascii_digit())
}

/// A written number continues past `at` if a digit, or a separator followed by a digit,
/// comes next: then the match is a fragment of something longer (`415,555,0132`), not an
/// amount, and must be left to the digit-run parser.
fn continues(text: &str, at: usize) -> bool {
    let rest = &text.as_bytes()[at..];
    match rest {
        [d, ..] if d.is_ascii_digit() => true,
        [b'.' | b',' | b'-' | b'/' | b':', d, ..] if d.is_ascii_digit() => true,
        _ => false,
    }
}

/// Written amounts and clock times.
pub(crate) fn amounts(text: &str, out: &mut Vec<(usize, usize)>) {
    for m in AMOUNT.find_iter(text) {
        let currency = !m.as_str().starts_with(|c: char| c.is_ascii_digit());
        let glued_before = !currency
            && (digit_before(text, m.start())
                || text[..m.start()].ends_with(['.', ',', '-', '/', ':']));
        if !glued_before && !continues(text, m.end()) {
            out.push((m.start(), m.end()));
        }
    }
}

/// Written calendar dates (`03/14/1985`, `14.03.85`, `1985-03-14`).
pub(crate) fn dates(text: &str, out: &mut Vec<(usize, usize)>) {
    for m in DATE.find_iter(text) {
        let glued_before =
            digit_before(text, m.start()) || text[..m.start()].ends_with(['.', '-', '/', '(', '+']);
        if !glued_before && !continues(text, m.end()) {
            out.push((m.start(), m.end()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&str, &mut Vec<(usize, usize)>), text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        f(text, &mut out);
        out.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn iban_needs_its_checksum_and_drops_a_swallowed_word() {
        assert_eq!(
            run(ibans, "it's GB82 WEST 1234 5698 7654 32 okay"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert_eq!(
            run(ibans, "de89 3704 0044 0532 0130 00"),
            ["de89 3704 0044 0532 0130 00"]
        );
        assert!(run(ibans, "GB82 WEST 1234 5698 7654 33").is_empty());
    }

    #[test]
    fn amounts_and_times_but_not_fragments_of_longer_numbers() {
        assert_eq!(
            run(amounts, "$129 and 1,250.00 at 2:30"),
            ["$129", "1,250.00", "2:30"]
        );
        assert!(run(amounts, "415,555,0132").is_empty());
        assert!(run(amounts, "415.555.0132").is_empty());
    }

    #[test]
    fn dates_but_not_ssns_or_phones() {
        assert_eq!(
            run(dates, "on 03/14/1985 or 1985-03-14"),
            ["03/14/1985", "1985-03-14"]
        );
        assert!(run(dates, "078-05-1120").is_empty());
        assert!(run(dates, "415-555-0132").is_empty());
        assert!(run(dates, "1-800-555-0199").is_empty());
    }

    #[test]
    fn emails_need_an_at_sign_and_a_tld() {
        assert_eq!(
            run(emails, "mail john.smith@gmail.com now"),
            ["john.smith@gmail.com"]
        );
        assert!(run(emails, "john at gmail").is_empty());
    }
}
