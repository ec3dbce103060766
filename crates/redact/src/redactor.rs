//! The compiled redactor and the one pass it runs over a segment.

use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use domain::event::{PiiKind, Redaction};
use serde::{Deserialize, Serialize};

use crate::classify::{self, Run};
use crate::context::{OpenCue, SpeakerContext, Tail};
use crate::cue::{self, Cue};
use crate::lexicon::Lex;
use crate::policy::{ALL_KINDS, Policy, PolicyError, validate};
use crate::spoken::Chain;
use crate::token::{Class, Token, mark, tokenize};
use crate::{date, email, spoken, written};

/// A segment after redaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redacted {
    /// The text with every value replaced by its kind's placeholder.
    pub text: String,
    /// One entry per placeholder this call inserted, in order; spans are in `char`s of
    /// `text`, end exclusive. Placeholders already present in the input are not reported.
    pub redactions: Vec<Redaction>,
}

/// A [`Policy`], compiled. Build it once and share it (`Send + Sync`, and cheap to clone).
#[derive(Clone)]
pub struct Redactor {
    policy: Policy,
    /// Finds the placeholders of earlier passes, so a second pass leaves them alone.
    placeholders: AhoCorasick,
    /// Length in `char`s of each kind's placeholder, indexed like [`ALL_KINDS`].
    placeholder_chars: [usize; ALL_KINDS.len()],
    enabled: [bool; ALL_KINDS.len()],
    strict: Option<u32>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn index(kind: PiiKind) -> usize {
    match kind {
        PiiKind::Phone => 0,
        PiiKind::Email => 1,
        PiiKind::Card => 2,
        PiiKind::Ssn => 3,
        PiiKind::Iban => 4,
        PiiKind::Dob => 5,
        PiiKind::Address => 6,
        PiiKind::Name => 7,
        PiiKind::Number => 8,
    }
}

/// The most passes [`Redactor::redact`] runs to reach its fixed point. Each pass after the
/// first replaces values that an earlier replacement revealed, and every pass that finds
/// something turns text into a placeholder, so the passes end; the bound is a safeguard.
const MAX_PASSES: usize = 8;

/// A value to replace: a byte range of the input and its kind.
#[derive(Clone, Copy, Debug)]
struct Hit {
    start: usize,
    end: usize,
    kind: PiiKind,
}

fn is_filler(t: &Token) -> bool {
    matches!(t.lex(), Some(Lex::Filler | Lex::Tag))
}

/// Whether `s..e` overlaps any of `sorted`: spans sorted by start and non-overlapping, so
/// their ends are sorted too and a binary search finds the only candidate.
fn overlaps<T>(sorted: &[T], span: impl Fn(&T) -> (usize, usize), s: usize, e: usize) -> bool {
    let i = sorted.partition_point(|x| span(x).1 <= s);
    sorted.get(i).is_some_and(|x| span(x).0 < e)
}

/// Whether `s..e` starts where a span of `sorted` ends or ends where one starts (spans sorted
/// and non-overlapping, so their ends are sorted too).
fn touches(sorted: &[(usize, usize)], s: usize, e: usize) -> bool {
    sorted.binary_search_by_key(&s, |&(_, end)| end).is_ok()
        || sorted.binary_search_by_key(&e, |&(start, _)| start).is_ok()
}

/// Counts one word against an open cue's window and closes the cue once it is exceeded.
fn tick(open: &mut Option<OpenCue>) {
    if let Some(o) = open {
        o.used = o.used.saturating_add(1);
        let window = if o.cue == Cue::Dob {
            cue::DOB_WINDOW
        } else {
            cue::WINDOW
        };
        if o.used > window {
            *open = None;
        }
    }
}

fn to_u32(n: usize) -> u32 {
    // A segment of four billion characters cannot reach the domain (its limit is a few
    // thousand); saturating keeps this total without a panic path.
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Redactor {
    /// Compiles `policy`.
    ///
    /// Fails if a placeholder is empty or longer than 64 characters, contains whitespace,
    /// a digit or `@`, or starts or ends with a letter, a digit or one of `. , - / : ( + $ £ €`
    /// (it must be recognisable as a placeholder when redacted text is redacted again, and
    /// must not read as part of a number next to it), or if `strict_min_digits` is below 3.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        validate(&policy)?;
        let mut patterns: Vec<&str> = ALL_KINDS
            .iter()
            .map(|&k| policy.placeholders.get(k))
            .collect();
        patterns.sort_unstable();
        patterns.dedup();
        let placeholders = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|_| PolicyError::Matcher)?;
        let placeholder_chars = ALL_KINDS.map(|k| policy.placeholders.get(k).chars().count());
        let enabled = ALL_KINDS.map(|k| policy.is_enabled(k));
        let strict = policy
            .strict_min_digits
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        // Compile the shared tables now rather than inside the first segment's budget.
        cue::warm_up();
        written::warm_up();
        Ok(Self {
            policy,
            placeholders,
            placeholder_chars,
            enabled,
            strict,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Redacts one self-contained segment.
    ///
    /// Redacting the result again changes nothing and reports nothing. Each pass reads a
    /// value in its context, and replacing a value changes the context of its neighbours:
    /// `14/13/12/1985` after "born" is no written date (the digits go on), but once `1985`
    /// is `[DOB]` the `14/13/12` before it is one. Hand-written rules made the two passes
    /// agree case by case (`tests/fuzz_regressions.rs`), and the fuzzer kept finding more,
    /// so the result is now the fixed point itself: passes run over their own output until
    /// one finds nothing new. Text with nothing to redact takes one pass, as before; a
    /// segment with values takes two in nearly every case (`MAX_PASSES` bounds the rest).
    pub fn redact(&self, text: &str) -> Redacted {
        let mut out = self.assemble(text, self.pass(text, None), &[]);
        if out.redactions.is_empty() {
            return out;
        }
        for _ in 1..MAX_PASSES {
            let hits = self.pass(&out.text, None);
            if hits.is_empty() {
                break;
            }
            out = self.assemble(&out.text, hits, &out.redactions);
        }
        out
    }

    /// Redacts the next segment of the speaker whose state is `ctx`, and updates `ctx`.
    ///
    /// Unlike [`redact`](Self::redact), a digit run at the end of the segment that may be
    /// the start of a number is redacted pre-emptively, and a run at the start continues
    /// the one the previous segment ended with (see the crate docs for the exact rule).
    pub fn redact_next(&self, ctx: &mut SpeakerContext, text: &str) -> Redacted {
        let hits = self.pass(text, Some(ctx));
        self.assemble(text, hits, &[])
    }

    fn enabled(&self, kind: PiiKind) -> bool {
        self.enabled[index(kind)]
    }

    /// The policy's verdict on a run: its kind if enabled, else `Number` if the strict
    /// threshold catches it.
    fn resolve(&self, kind: Option<PiiKind>, run: &Run) -> Option<PiiKind> {
        if let Some(k) = kind
            && self.enabled(k)
        {
            return Some(k);
        }
        let strict = self.strict.is_some_and(|n| run.is_run() && run.digits >= n);
        (strict && self.enabled(PiiKind::Number)).then_some(PiiKind::Number)
    }

    /// One pass over `text`: the values to replace, sorted by start.
    fn pass(&self, text: &str, ctx: Option<&mut SpeakerContext>) -> Vec<Hit> {
        let existing: Vec<(usize, usize)> = self
            .placeholders
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        let mut tokens = Vec::with_capacity(text.len() / 4 + 2);
        tokenize(text, &existing, &mut tokens);
        let mut hits = Vec::new();
        self.written(text, &existing, &mut tokens, &mut hits);
        if self.enabled(PiiKind::Email) {
            spoken_emails(text, &mut tokens, &mut hits);
        }
        let cues = cues(text, &tokens, &existing);

        let mut scan = Scan {
            r: self,
            text,
            tokens: &tokens,
            hits,
            open: ctx.as_deref().and_then(|c| c.cue),
            prev_tail: ctx.as_deref().and_then(|c| c.tail),
            across_segments: ctx.is_some(),
            content: false,
            tail: None,
        };
        scan.run(&cues);
        if let Some(c) = ctx
            && scan.content
        {
            c.tail = scan.tail;
            c.cue = scan.open;
        }
        let mut hits = scan.hits;
        hits.sort_unstable_by_key(|h| h.start);
        hits
    }

    /// The regex detectors, in priority order: written e-mails and IBANs (redacted), then
    /// written dates and amounts (protected from the digit-run parser). A match that
    /// overlaps an earlier one, or a placeholder, is dropped. Tokens inside the kept spans
    /// are re-labelled.
    fn written(
        &self,
        text: &str,
        existing: &[(usize, usize)],
        tokens: &mut [Token],
        hits: &mut Vec<Hit>,
    ) {
        let mut spans: Vec<(usize, usize, Class)> = Vec::new();
        let mut found = Vec::new();
        // Each detector's matches are sorted and disjoint, so they are checked against the
        // spans from before it only, and the list is re-sorted after.
        let mut keep = |found: &mut Vec<(usize, usize)>,
                        class: Class,
                        kind: Option<PiiKind>,
                        spans: &mut Vec<(usize, usize, Class)>| {
            let before = spans.len();
            for (n, (s, e)) in found.drain(..).enumerate() {
                if overlaps(existing, |&x| x, s, e)
                    || overlaps(&spans[..before], |&(a, b, _)| (a, b), s, e)
                {
                    continue;
                }
                let class = match class {
                    Class::Date(_) => Class::Date(u16::try_from(n).unwrap_or(u16::MAX)),
                    c => c,
                };
                spans.push((s, e, class));
                if let Some(kind) = kind {
                    hits.push(Hit {
                        start: s,
                        end: e,
                        kind,
                    });
                }
            }
            spans.sort_unstable_by_key(|&(s, _, _)| s);
        };
        // A match that starts or ends inside a word takes the whole word: the part left over
        // would be a word of its own on a second pass (fuzzing found "e@l.foꂬ at gmail",
        // whose leftover "ꂬ at gmail" then read as a spelled e-mail address).
        let widen = |found: &mut Vec<(usize, usize)>| {
            for (s, e) in found.iter_mut() {
                let i = tokens.partition_point(|t| t.end <= *s);
                if let Some(t) = tokens.get(i)
                    && t.start < *s
                {
                    *s = t.start;
                }
                let j = tokens.partition_point(|t| t.end < *e);
                if let Some(t) = tokens.get(j)
                    && t.start < *e
                    && *e < t.end
                {
                    *e = t.end;
                }
            }
            found.dedup_by(|b, a| {
                let overlap = b.0 < a.1;
                if overlap {
                    a.1 = a.1.max(b.1);
                }
                overlap
            });
        };
        if self.enabled(PiiKind::Email) {
            written::emails(text, &mut found);
            widen(&mut found);
            keep(&mut found, Class::Claimed, Some(PiiKind::Email), &mut spans);
        }
        if text.bytes().any(|b| b.is_ascii_digit()) {
            if self.enabled(PiiKind::Iban) {
                written::ibans(text, &mut found);
                // The IBAN pattern wants a word boundary at both ends. One glued to a
                // placeholder was glued to a value before that was redacted, and was no IBAN
                // then: it must not become one on a second pass.
                found.retain(|&(s, e)| !touches(existing, s, e));
                widen(&mut found);
                keep(&mut found, Class::Claimed, Some(PiiKind::Iban), &mut spans);
            }
            written::dates(text, &mut found);
            keep(&mut found, Class::Date(0), None, &mut spans);
            written::amounts(text, &mut found);
            keep(&mut found, Class::Amount, None, &mut spans);
        }
        if !spans.is_empty() {
            mark(tokens, &spans);
        }
    }

    /// Replaces `hits` (sorted by start) in `text`. `earlier` are the spans of an earlier
    /// pass's placeholders in `text` (`char`s): they are kept, moved to where they land in
    /// the result, and reported with the new ones.
    fn assemble(&self, text: &str, hits: Vec<Hit>, earlier: &[Redaction]) -> Redacted {
        if hits.is_empty() {
            return Redacted {
                text: text.to_owned(),
                redactions: earlier.to_vec(),
            };
        }
        let mut out = String::with_capacity(text.len() + 8 * hits.len());
        let mut redactions = Vec::with_capacity(hits.len() + earlier.len());
        let mut earlier = earlier.iter().copied().peekable();
        // `chars` counts the output, `read` the input up to `pos`, both in `char`s.
        let (mut pos, mut chars, mut read) = (0usize, 0usize, 0usize);
        let moved = |r: Redaction, chars: usize, read: usize| Redaction {
            start: to_u32(r.start as usize + chars - read),
            end: to_u32(r.end as usize + chars - read),
            ..r
        };
        for h in hits {
            // Detectors work on disjoint tokens, so hits do not overlap; should one ever
            // reach into the previous, its remainder still gets a placeholder of its own
            // rather than leaking.
            let start = h.start.max(pos);
            if h.end <= start {
                continue;
            }
            let kept = &text[pos..start];
            let hit_from = read + kept.chars().count();
            let hit_to = hit_from + text[start..h.end].chars().count();
            // Earlier placeholders in the kept text move with it; one the hit covers (a
            // pass leaves placeholders alone, so this is a safeguard) is replaced with it.
            while let Some(r) = earlier.next_if(|r| (r.start as usize) < hit_to) {
                if (r.end as usize) <= hit_from {
                    redactions.push(moved(r, chars, read));
                }
            }
            out.push_str(kept);
            chars += hit_from - read;
            out.push_str(self.policy.placeholders.get(h.kind));
            let len = self.placeholder_chars[index(h.kind)];
            redactions.push(Redaction {
                kind: h.kind,
                start: to_u32(chars),
                end: to_u32(chars + len),
            });
            chars += len;
            read = hit_to;
            pos = h.end;
        }
        redactions.extend(earlier.map(|r| moved(r, chars, read)));
        out.push_str(&text[pos..]);
        Redacted {
            text: out,
            redactions,
        }
    }
}

fn spoken_emails(text: &str, tokens: &mut [Token], hits: &mut Vec<Hit>) {
    let mut ranges = Vec::new();
    email::find(text, tokens, &mut ranges);
    for (a, b) in ranges {
        tokens[a..=b]
            .iter_mut()
            .for_each(|t| t.class = Class::Claimed);
        hits.push(Hit {
            start: tokens[a].start,
            end: tokens[b].end,
            kind: PiiKind::Email,
        });
    }
}

/// Each cue by the index of its last token, so the scan can open it right after.
///
/// A cue glued to a neighbouring token ("phone4155550132") is not one: the same text with
/// the number replaced ("phone[PHONE]") must read the same on a second pass. Nor is one over
/// a token that is not a word ("phone number" whose "phone" ends an e-mail address); a
/// shorter cue inside a refused one ("number") still counts, as it does on the second pass.
fn cues(text: &str, tokens: &[Token], placeholders: &[(usize, usize)]) -> Vec<(usize, Cue)> {
    let glued = |a: usize, b: usize| tokens[a].end == tokens[b].start;
    let free = |start: usize, end: usize, cue: Cue| {
        let first = tokens.partition_point(|t| t.end <= start);
        let last = tokens.partition_point(|t| t.start < end).checked_sub(1)?;
        let free = first <= last
            && tokens[first..=last]
                .iter()
                .all(|t| matches!(t.class, Class::Word(_)))
            && (first == 0 || !glued(first - 1, first))
            && (last + 1 == tokens.len() || !glued(last, last + 1));
        free.then_some((last, cue))
    };
    let mut found = Vec::new();
    cue::find(text, placeholders, free, &mut found);
    found
}

/// One left-to-right walk over a segment's tokens: cues open and expire, dates of birth
/// and digit runs are classified, and the state for the speaker's next segment builds up.
struct Scan<'a> {
    r: &'a Redactor,
    text: &'a str,
    tokens: &'a [Token],
    hits: Vec<Hit>,
    /// The cue waiting for a value, if any.
    open: Option<OpenCue>,
    /// The run the speaker's previous segment ended with.
    prev_tail: Option<Tail>,
    /// Whether a next segment can follow (`redact_next`): only then is pre-emption useful.
    across_segments: bool,
    /// Whether a token other than a hesitation has been seen yet: a run before any is at
    /// the start of the segment and may continue `prev_tail`.
    content: bool,
    /// The run this segment ends with, for the next one.
    tail: Option<Tail>,
}

impl Scan<'_> {
    fn run(&mut self, cues: &[(usize, Cue)]) {
        let tokens = self.tokens;
        let mut next_cue = 0;
        let mut i = 0;
        while i < tokens.len() {
            while let Some(&(last, cue)) = cues.get(next_cue)
                && last < i
            {
                self.open = Some(OpenCue { cue, used: 0 });
                next_cue += 1;
            }
            let t = tokens[i];
            if is_filler(&t) {
                i += 1;
                continue;
            }
            let dob_open =
                self.open.is_some_and(|o| o.cue == Cue::Dob) && self.r.enabled(PiiKind::Dob);
            let next = match t.class {
                // A placeholder stands for a value that consumed the cue before it.
                Class::Placeholder | Class::Claimed => {
                    self.open = None;
                    i + 1
                }
                Class::Date(id) => {
                    let mut end = i;
                    while tokens
                        .get(end + 1)
                        .is_some_and(|n| n.class == Class::Date(id))
                    {
                        end += 1;
                    }
                    if dob_open {
                        self.value(i, end, PiiKind::Dob);
                    } else {
                        tick(&mut self.open);
                    }
                    end + 1
                }
                Class::Amount => {
                    tick(&mut self.open);
                    i + 1
                }
                Class::Word(_) | Class::Digits => {
                    if dob_open && let Some((s, e)) = date::parse(tokens, self.text, i) {
                        self.value(s, e, PiiKind::Dob);
                        e + 1
                    } else if let Some(chain) = spoken::chain_at(self.text, tokens, i) {
                        self.chain(&chain);
                        chain.last + 1
                    } else {
                        tick(&mut self.open);
                        i + 1
                    }
                }
            };
            self.content = true;
            i = next;
        }
    }

    /// Records a value over tokens `first..=last` and closes the cue it answered.
    fn value(&mut self, first: usize, last: usize, kind: PiiKind) {
        self.hits.push(Hit {
            start: self.tokens[first].start,
            end: self.tokens[last].end,
            kind,
        });
        self.open = None;
    }

    fn chain(&mut self, chain: &Chain) {
        let tokens = self.tokens;
        let trailing = tokens[chain.last + 1..].iter().all(is_filler);
        let cont = if self.content { None } else { self.prev_tail };
        let cue = self.open.map(|o| o.cue).or(cont.and_then(|t| t.cue));
        let run = match cont {
            Some(t) => Run {
                digits: t.digits.saturating_add(chain.digits),
                literal: t.literal.saturating_add(chain.literal),
                atoms: t.atoms.saturating_add(chain.atoms),
                plus: false,
                luhn: None,
                ssn_shape: false,
            },
            None => Run {
                digits: chain.digits,
                literal: chain.literal,
                atoms: chain.atoms,
                plus: chain.plus,
                luhn: Some(chain.luhn.is_valid()),
                ssn_shape: chain.ssn_shape,
            },
        };
        // "… dollars" makes a short run a price; a phone or card number followed by
        // "dollars" is still a phone or card number.
        let amount = chain.amount && cont.is_none() && chain.digits < classify::ALWAYS_DIGITS;
        let mut kind = None;
        if !amount {
            kind = self.r.resolve(classify::kind(&run, cue), &run);
            if kind.is_none()
                && let Some(prev) = cont.and_then(|t| t.redacted)
            {
                // Part of this number is already redacted: the rest must not leak.
                kind = self.r.resolve(Some(prev), &run);
            }
            if kind.is_none() && trailing && self.across_segments {
                kind = self.r.resolve(classify::pre_emptive(&run, cue), &run);
            }
        }
        if let Some(kind) = kind {
            let first = chain.first;
            let mut start = tokens[first].start;
            // Keep the "(" of "(415)" and the "+" of "+44" with the number.
            if self.text[..start].ends_with(['(', '+'])
                && (first == 0 || tokens[first - 1].end < start)
            {
                start -= 1;
            }
            self.hits.push(Hit {
                start,
                end: tokens[chain.last].end,
                kind,
            });
        }
        if kind.is_some() || (run.is_run() && !amount) {
            self.open = None;
        } else {
            tick(&mut self.open);
        }
        if trailing && !amount {
            self.tail = Some(Tail {
                digits: run.digits,
                literal: run.literal,
                atoms: run.atoms,
                cue,
                redacted: kind,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_all_kinds() {
        for (i, kind) in ALL_KINDS.into_iter().enumerate() {
            assert_eq!(index(kind), i);
        }
    }

    #[test]
    fn overlapping_hits_still_cover_every_byte() {
        let r = Redactor::new(Policy::default()).expect("valid");
        let hits = vec![
            Hit {
                start: 0,
                end: 6,
                kind: PiiKind::Phone,
            },
            Hit {
                start: 4,
                end: 9,
                kind: PiiKind::Card,
            },
        ];
        let out = r.assemble("abcdefghij", hits, &[]);
        assert_eq!(out.text, "[PHONE][CARD]j");
        assert_eq!(out.redactions[1].start, 7);
    }

    #[test]
    fn an_earlier_pass_placeholders_move_with_the_text_around_them() {
        let r = Redactor::new(Policy::default()).expect("valid");
        let hit = |start, end, kind| Hit { start, end, kind };
        // "é 12 [PHONE] é 345 x [SSN]": the earlier placeholders at chars 5..12 and 21..26.
        let text = "é 12 [PHONE] é 345 x [SSN]";
        let earlier = [
            Redaction {
                kind: PiiKind::Phone,
                start: 5,
                end: 12,
            },
            Redaction {
                kind: PiiKind::Ssn,
                start: 21,
                end: 26,
            },
        ];
        let out = r.assemble(
            text,
            vec![hit(3, 5, PiiKind::Card), hit(17, 20, PiiKind::Number)],
            &earlier,
        );
        assert_eq!(out.text, "é [CARD] [PHONE] é [NUMBER] x [SSN]");
        let spans: Vec<_> = out
            .redactions
            .iter()
            .map(|r| (r.kind, r.start, r.end))
            .collect();
        assert_eq!(
            spans,
            [
                (PiiKind::Card, 2, 8),
                (PiiKind::Phone, 9, 16),
                (PiiKind::Number, 19, 27),
                (PiiKind::Ssn, 30, 35),
            ]
        );
        let chars: Vec<char> = out.text.chars().collect();
        for red in &out.redactions {
            let got: String = chars[red.start as usize..red.end as usize].iter().collect();
            assert_eq!(got, r.policy().placeholders.get(red.kind));
        }
    }
}
