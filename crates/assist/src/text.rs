//! Text folding and whole-word phrase matching shared by the summary, the disposition and the
//! suggestions.

/// Lower-cases, folds curly apostrophes, drops transcript tags (`[noise]`, `<unk>`), turns
/// every other non-alphanumeric character into a space and pads with one space either side,
/// so that `" phrase "` matches whole words only.
pub(crate) fn fold(text: &str) -> String {
    let text = strip_tags(text);
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for c in text.chars() {
        match c {
            '\'' | '\u{2019}' | '\u{2018}' => out.push('\''),
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// Whether folded `text` holds `phrase` as whole words; a phrase ending in `*` matches any
/// word that starts with it (`frustrat*`: frustrated, frustrating).
pub(crate) fn has(folded: &str, phrase: &str) -> bool {
    match phrase.strip_suffix('*') {
        Some(prefix) => folded.contains(&format!(" {prefix}")),
        None => folded.contains(&format!(" {phrase} ")),
    }
}

/// How many of `phrases` occur in folded `text` (each counted once).
pub(crate) fn count(folded: &str, phrases: &[&str]) -> usize {
    phrases.iter().filter(|p| has(folded, p)).count()
}

pub(crate) fn any(folded: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has(folded, p))
}

/// Splits a segment's text into sentences on `.`, `?` and `!` (a `.` between digits is kept),
/// trimmed, empties dropped. The terminator stays with its sentence.
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        cur.push(c);
        let decimal = c == '.'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if matches!(c, '.' | '?' | '!') && !decimal {
            push_trimmed(&mut out, &cur);
            cur.clear();
        }
    }
    push_trimmed(&mut out, &cur);
    out
}

fn push_trimmed(out: &mut Vec<String>, s: &str) {
    let t = strip_tags(s);
    let t = t.trim();
    if t.chars().any(char::is_alphanumeric) {
        out.push(t.to_owned());
    }
}

/// Removes `[tag]` and `<tag>` markup and collapses the spaces it leaves.
pub(crate) fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skip: Option<char> = None;
    for c in text.chars() {
        if let Some(end) = skip {
            if c == end {
                skip = None;
            }
            continue;
        }
        match c {
            '[' => skip = Some(']'),
            '<' => skip = Some('>'),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words that carry no content for the "is this substantive" test: greetings, fillers,
/// acknowledgements and function words.
const FILLER: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "yeah",
    "yes",
    "yep",
    "no",
    "nope",
    "ok",
    "okay",
    "sure",
    "fine",
    "um",
    "uh",
    "uhm",
    "hmm",
    "oh",
    "ah",
    "er",
    "mm",
    "so",
    "well",
    "right",
    "alright",
    "thanks",
    "thank",
    "you",
    "good",
    "morning",
    "afternoon",
    "evening",
    "that's",
    "that",
    "it",
    "is",
    "a",
    "an",
    "the",
    "and",
    "i",
    "i'm",
    "this",
    "me",
    "my",
    "to",
    "of",
    "for",
    "please",
    "great",
    "perfect",
    "bye",
    "goodbye",
    "there",
    "speaking",
    "just",
    "yes",
    "mhm",
];

/// The words of a folded text that are not fillers.
pub(crate) fn content_words(folded: &str) -> Vec<&str> {
    folded
        .split_whitespace()
        .filter(|w| !FILLER.contains(w))
        .collect()
}

/// `folded` with a self-introduction ("my name is first last") taken out.
pub(crate) fn without_name(folded: &str) -> String {
    match folded.find(" my name is ") {
        Some(i) => {
            let rest = &folded[i + " my name is ".len()..];
            let tail: Vec<&str> = rest.split_whitespace().skip(2).collect();
            format!("{} {} ", &folded[..i], tail.join(" "))
        }
        None => folded.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_and_matches_whole_words() {
        let f = fold("I've BLOCKED that card [noise], it's <unk> gone!");
        assert_eq!(f, " i've blocked that card it's gone ");
        assert!(has(&f, "blocked that"));
        assert!(!has(&f, "lock"));
        assert!(has(&f, "bloc*"));
    }

    #[test]
    fn splits_sentences_but_not_decimals() {
        assert_eq!(
            sentences("It costs 89.50 today. Is that ok? Yes!"),
            vec!["It costs 89.50 today.", "Is that ok?", "Yes!"]
        );
    }

    #[test]
    fn drops_self_introductions() {
        assert_eq!(
            without_name(&fold("hi my name is john garcia i need help")),
            " hi i need help "
        );
    }
}
