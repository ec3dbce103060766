//! Compiling a [`Ruleset`] into an [`Engine`]: every phrase of every rule into one
//! Aho-Corasick automaton, every regex into one `RegexSet` (in an ASCII and a Unicode build,
//! see the fields of [`Engine`]), and the tables that map a match back to its rules.

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use domain::event::{RuleRef, RulesetRef};
use domain::ids::LanguageTag;
use regex::{Regex, RegexSet, bytes};

use crate::error::RulesetError;
use crate::ruleset::{Phrase, RuleKind, Ruleset, SpeakerFilter};

/// A phrase may run across at most this many words of the previous segment, whatever the
/// rules ask for: it bounds the work and the state kept per speaker.
const MAX_TAIL_WORDS: usize = 32;

/// Regexes are opaque, so when a ruleset has any, the previous segment's last words are kept
/// for them at least this far back.
const REGEX_TAIL_WORDS: usize = 8;

/// A ruleset compiled for matching. Build it once per ruleset version and share it (it is
/// `Send + Sync`); each call keeps its own [`crate::CallRules`].
#[derive(Debug)]
pub struct Engine {
    pub(crate) reference: RulesetRef,
    pub(crate) rules: Vec<CompiledRule>,
    /// `None` when no rule has a phrase.
    pub(crate) automaton: Option<AhoCorasick>,
    /// Indexed by automaton pattern id.
    pub(crate) patterns: Vec<PatternInfo>,
    /// The uses of all patterns; pattern `p`'s are `uses[p.uses_start..p.uses_end]`.
    pub(crate) uses: Vec<Use>,
    /// The regexes, Unicode-aware, for text with any non-ASCII character; one set for each
    /// combination of the languages regex rules are limited to.
    pub(crate) unicode: UnicodeRegexes,
    /// For all-ASCII text (most English speech-to-text), the same regexes compiled without
    /// Unicode classes: on ASCII text they match exactly alike, and a set of them runs a
    /// hundred times faster, because Unicode `\b` and `\w` push the set's search from the
    /// lazy DFA to the PikeVM. A regex that is not ASCII itself, or needs Unicode mode (`\p{..}`),
    /// is left out of the ASCII set and runs with the Unicode one even on ASCII text.
    pub(crate) ascii: AsciiRegexes,
    /// Every regex with the rule it belongs to. Only the ones a set reports are run, to find
    /// where they matched.
    pub(crate) regexes: Vec<CompiledRegex>,
    /// How many words of a speaker's previous segment are kept for phrases split across two.
    pub(crate) tail_words: usize,
    pub(crate) split_window_ms: u64,
    /// By rule: the required items that must be covered before it fires.
    pub(crate) must_precede: Vec<Vec<u32>>,
    /// Required items, in file order.
    pub(crate) required: Vec<u32>,
    /// Required items with a time deadline, in file order.
    pub(crate) timed: Vec<(u32, u64)>,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) rule_ref: RuleRef,
    pub(crate) kind: RuleKind,
    pub(crate) speaker: SpeakerFilter,
    pub(crate) languages: Vec<LanguageTag>,
    pub(crate) cooldown_ms: u64,
    pub(crate) max_fires: Option<u32>,
    /// `within` of each proximity clause, indexed like `Role::NearA`/`NearB`.
    pub(crate) near: Vec<u32>,
}

impl CompiledRule {
    /// Whether the rule applies to a call in `language`.
    pub(crate) fn speaks(&self, language: &LanguageTag) -> bool {
        self.languages.is_empty() || self.languages.iter().any(|tag| covers(tag, language))
    }
}

/// What a matched pattern means to one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Phrase,
    Except,
    NearA(u16),
    NearB(u16),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Use {
    pub(crate) rule: u32,
    pub(crate) role: Role,
}

#[derive(Debug)]
pub(crate) struct CompiledRegex {
    pub(crate) unicode: Regex,
    /// Present when the regex is in the ASCII set.
    pub(crate) ascii: Option<bytes::Regex>,
    pub(crate) rule: u32,
}

#[derive(Debug)]
pub(crate) struct AsciiRegexes {
    /// The ASCII-safe regexes; `members[i]` is the index in `Engine::regexes` of the set's
    /// pattern `i`.
    pub(crate) set: bytes::RegexSet,
    pub(crate) members: Vec<usize>,
    /// The others, in the Unicode mode, with their indexes in `Engine::regexes`.
    pub(crate) rest: RegexSet,
    pub(crate) rest_members: Vec<usize>,
}

/// Unicode regexes by call language. On non-ASCII text a set with Unicode word boundaries
/// runs in the PikeVM, at a cost that grows with the number of regexes, so a call runs only
/// the regexes of rules that apply to its language: one set per combination of the language
/// tags that regex rules carry (`sets[mask]`, bit `i` of `mask` set when the call's language is
/// covered by `tags[i]`). Past `MAX_LANGUAGE_TAGS` distinct tags, one set holds them all.
#[derive(Debug)]
pub(crate) struct UnicodeRegexes {
    pub(crate) tags: Vec<LanguageTag>,
    /// By mask: the set, and the index in `Engine::regexes` of each of its patterns.
    pub(crate) sets: Vec<(RegexSet, Vec<usize>)>,
}

const MAX_LANGUAGE_TAGS: usize = 4;

impl UnicodeRegexes {
    /// The set for a call in `language`.
    pub(crate) fn for_language(&self, language: &LanguageTag) -> &(RegexSet, Vec<usize>) {
        let mask = self
            .tags
            .iter()
            .enumerate()
            .filter(|(_, tag)| covers(tag, language))
            .fold(0usize, |m, (i, _)| m | 1 << i);
        &self.sets[mask.min(self.sets.len() - 1)]
    }
}

/// Whether a rule limited to `tag` applies to a call in `call`: the same tag, or a more
/// specific one (`en` covers `en-US`), ignoring case.
pub(crate) fn covers(tag: &LanguageTag, call: &LanguageTag) -> bool {
    let (tag, call) = (tag.as_str(), call.as_str());
    call.len() >= tag.len()
        && call.is_char_boundary(tag.len())
        && call[..tag.len()].eq_ignore_ascii_case(tag)
        && (call.len() == tag.len() || call.as_bytes()[tag.len()] == b'-')
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct PatternInfo {
    pub(crate) uses_start: u32,
    pub(crate) uses_end: u32,
    /// Whether the pattern ends with the space after its last word (it does unless the
    /// phrase is a prefix).
    pub(crate) trailing_space: bool,
}

impl Engine {
    /// Compiles a validated ruleset. Fails only if the automaton or the regex set would be
    /// too large.
    pub fn compile(ruleset: &Ruleset) -> Result<Engine, RulesetError> {
        let too_large = |what: &str, e: &dyn std::fmt::Display| RulesetError {
            file: ruleset.file().to_owned(),
            line: None,
            column: None,
            rule_id: None,
            message: format!("cannot compile the {what}: {e}"),
        };
        let index_of: BTreeMap<_, _> = ruleset
            .rules()
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), rule_index(i)))
            .collect();

        // Pattern text (padded with spaces for word boundaries) → its uses. A BTreeMap keeps
        // pattern ids the same from one compile to the next.
        let mut by_pattern: BTreeMap<String, Vec<Use>> = BTreeMap::new();
        let mut tail_words = 0usize;
        let mut add = |phrase: &Phrase, rule: u32, role: Role| {
            let mut pattern = String::with_capacity(phrase.words.len() + 2);
            pattern.push(' ');
            pattern.push_str(&phrase.words);
            if !phrase.prefix {
                pattern.push(' ');
            }
            by_pattern
                .entry(pattern)
                .or_default()
                .push(Use { rule, role });
        };
        let mut rules = Vec::with_capacity(ruleset.rules().len());
        let mut regex_sources = Vec::new();
        let mut regex_rules = Vec::new();
        let mut must_precede = vec![Vec::new(); ruleset.rules().len()];
        let mut required = Vec::new();
        let mut timed = Vec::new();
        for (i, rule) in ruleset.rules().iter().enumerate() {
            let r = rule_index(i);
            let m = &rule.matcher;
            for p in &m.phrases {
                add(p, r, Role::Phrase);
                tail_words = tail_words.max(word_count(p) - 1);
            }
            for p in &m.except {
                add(p, r, Role::Except);
                tail_words = tail_words.max(word_count(p) - 1);
            }
            let mut near = Vec::with_capacity(m.near.len());
            for (k, n) in m.near.iter().enumerate() {
                let k = u16::try_from(k).unwrap_or(u16::MAX);
                for p in &n.a {
                    add(p, r, Role::NearA(k));
                }
                for p in &n.b {
                    add(p, r, Role::NearB(k));
                }
                let longest = |ps: &[Phrase]| ps.iter().map(word_count).max().unwrap_or(1);
                let span = usize::try_from(n.within).unwrap_or(usize::MAX);
                tail_words = tail_words.max(
                    span.saturating_add(longest(&n.a))
                        .saturating_add(longest(&n.b))
                        .saturating_sub(1),
                );
                near.push(n.within);
            }
            for source in &m.regexes {
                regex_sources.push(source.as_str());
                regex_rules.push(r);
                tail_words = tail_words.max(REGEX_TAIL_WORDS);
            }
            if let RuleKind::Required { deadline, .. } = &rule.kind {
                required.push(r);
                if let Some(ms) = deadline.within_ms {
                    timed.push((r, ms));
                }
                for other in &deadline.before {
                    if let Some(&o) = index_of.get(other) {
                        must_precede[o as usize].push(r);
                    }
                }
            }
            rules.push(CompiledRule {
                rule_ref: RuleRef {
                    rule_id: rule.id.clone(),
                    ruleset: ruleset.reference().clone(),
                },
                kind: rule.kind.clone(),
                speaker: rule.speaker,
                languages: rule.languages.clone(),
                cooldown_ms: rule.cooldown_ms,
                max_fires: rule.max_fires,
                near,
            });
        }

        let mut patterns = Vec::with_capacity(by_pattern.len());
        let mut uses = Vec::new();
        let mut texts = Vec::with_capacity(by_pattern.len());
        for (text, list) in by_pattern {
            let uses_start = u32::try_from(uses.len()).unwrap_or(u32::MAX);
            uses.extend(list);
            patterns.push(PatternInfo {
                uses_start,
                uses_end: u32::try_from(uses.len()).unwrap_or(u32::MAX),
                trailing_space: text.ends_with(' '),
            });
            texts.push(text);
        }
        let automaton = if texts.is_empty() {
            None
        } else {
            // Overlapping search needs the standard match kind. A DFA costs memory once per
            // ruleset and is the fastest to search, which is what runs per segment.
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&texts)
                    .or_else(|_| {
                        AhoCorasick::builder()
                            .match_kind(MatchKind::Standard)
                            .build(&texts)
                    })
                    .map_err(|e| too_large("phrase automaton", &e))?,
            )
        };
        let mut regexes = Vec::with_capacity(regex_sources.len());
        let (mut members, mut rest_members) = (Vec::new(), Vec::new());
        for (i, (source, rule)) in regex_sources.iter().zip(regex_rules).enumerate() {
            let unicode = Regex::new(source).map_err(|e| too_large("regex", &e))?;
            let ascii = source
                .is_ascii()
                .then(|| bytes::RegexBuilder::new(source).unicode(false).build().ok())
                .flatten();
            if ascii.is_some() {
                members.push(i);
            } else {
                rest_members.push(i);
            }
            regexes.push(CompiledRegex {
                unicode,
                ascii,
                rule,
            });
        }
        let ascii = AsciiRegexes {
            set: bytes::RegexSetBuilder::new(members.iter().map(|&i| regex_sources[i]))
                .unicode(false)
                .build()
                .map_err(|e| too_large("regex set", &e))?,
            members,
            rest: RegexSet::new(rest_members.iter().map(|&i| regex_sources[i]))
                .map_err(|e| too_large("regex set", &e))?,
            rest_members,
        };

        let mut tags: Vec<LanguageTag> = Vec::new();
        for &r in &regex_rules_of(&regexes) {
            for tag in &rules[r as usize].languages {
                if !tags
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case(tag.as_str()))
                {
                    tags.push(tag.clone());
                }
            }
        }
        if tags.len() > MAX_LANGUAGE_TAGS {
            tags.clear();
        }
        let mut sets = Vec::with_capacity(1 << tags.len());
        for mask in 0..1usize << tags.len() {
            let members: Vec<usize> = (0..regexes.len())
                .filter(|&i| {
                    let langs = &rules[regexes[i].rule as usize].languages;
                    tags.is_empty()
                        || langs.is_empty()
                        || tags.iter().enumerate().any(|(b, t)| {
                            mask & 1 << b != 0
                                && langs
                                    .iter()
                                    .any(|l| l.as_str().eq_ignore_ascii_case(t.as_str()))
                        })
                })
                .collect();
            let set = RegexSet::new(members.iter().map(|&i| regex_sources[i]))
                .map_err(|e| too_large("regex set", &e))?;
            sets.push((set, members));
        }
        let unicode = UnicodeRegexes { tags, sets };

        Ok(Engine {
            reference: ruleset.reference().clone(),
            rules,
            automaton,
            patterns,
            uses,
            unicode,
            ascii,
            regexes,
            tail_words: tail_words.min(MAX_TAIL_WORDS),
            split_window_ms: ruleset.split_window_ms(),
            must_precede,
            required,
            timed,
        })
    }

    /// The ruleset id and version every event of this engine records.
    pub fn ruleset_ref(&self) -> &RulesetRef {
        &self.reference
    }

    /// How many distinct phrase patterns the automaton holds (after expansion and dedup).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// How many regexes the regex set holds.
    pub fn regex_count(&self) -> usize {
        self.regexes.len()
    }
}

fn regex_rules_of(regexes: &[CompiledRegex]) -> Vec<u32> {
    let mut rules: Vec<u32> = regexes.iter().map(|r| r.rule).collect();
    rules.dedup();
    rules
}

fn word_count(p: &Phrase) -> usize {
    p.words.split(' ').count()
}

/// Rule positions are stored as `u32`: a ruleset with four billion rules is not a thing.
fn rule_index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Engine>();
    }

    #[test]
    fn language_tags_cover_more_specific_ones() {
        let t = |s: &str| LanguageTag::parse(s).unwrap();
        let table = [
            ("en", "en", true),
            ("en", "en-US", true),
            ("EN", "en-us", true),
            ("en-US", "en-US", true),
            ("en-US", "en", false),
            ("en-US", "en-GB", false),
            ("en", "eng", false),
            ("ar", "ar-AE", true),
            ("hi", "hi-Latn-IN", true),
        ];
        for (rule, call, want) in table {
            assert_eq!(covers(&t(rule), &t(call)), want, "{rule} covers {call}");
        }
    }
}
