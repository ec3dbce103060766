//! Parsing and validating a ruleset from YAML.
//!
//! Two stages. `serde_yaml_ng` first reads the text into the `Raw*` structs, which deny unknown
//! fields and carry the position of any error they raise. [`validate`] then checks what serde
//! cannot (ids, regexes, references between rules, which fields each kind allows) and turns
//! the raw structs into a [`Ruleset`], finding the line of whatever it rejects with
//! [`locate`]. The JSON Schema in `rulesets/schema/ruleset.schema.json` describes the same
//! format for editors; the tests keep the two in step.

use std::collections::BTreeMap;

use domain::event::{RulesetRef, Severity};
use domain::ids::{LanguageTag, RuleId, RulesetId};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{RulesetError, Step, locate};
use crate::fold::fold;

/// How long a pause between two segments of one speaker still lets a phrase run across them,
/// unless the ruleset says otherwise.
pub const DEFAULT_SPLIT_WINDOW_MS: u64 = 5_000;

/// At most this many phrases come out of one phrase's `(a|b)` groups.
const MAX_VARIANTS: usize = 256;

/// A parsed and validated ruleset: the only way to get one is [`parse_ruleset`].
#[derive(Clone, Debug, PartialEq)]
pub struct Ruleset {
    file: String,
    reference: RulesetRef,
    name: Option<String>,
    description: Option<String>,
    split_window_ms: u64,
    rules: Vec<Rule>,
}

impl Ruleset {
    /// The file name it was parsed under (for error messages).
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn id(&self) -> &RulesetId {
        &self.reference.id
    }

    pub fn version(&self) -> u32 {
        self.reference.version
    }

    /// Id and version, as every event the ruleset causes records them.
    pub fn reference(&self) -> &RulesetRef {
        &self.reference
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// A phrase can run from one segment into the next of the same speaker when the second
    /// starts at most this long after the first ended.
    pub fn split_window_ms(&self) -> u64 {
        self.split_window_ms
    }

    /// In file order, which is also the order ties are broken in.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// One rule, validated; phrases are already expanded and folded.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: RuleId,
    pub kind: RuleKind,
    pub description: Option<String>,
    pub speaker: SpeakerFilter,
    /// Empty: every language. Otherwise the call's language tag must equal one of these or
    /// start with one followed by `-` (`en` covers `en-US`), ignoring case.
    pub languages: Vec<LanguageTag>,
    pub matcher: Matcher,
    /// After firing, the rule stays quiet for this long (by segment start times).
    pub cooldown_ms: u64,
    /// At most this many fires per call; `None` is no limit.
    pub max_fires: Option<u32>,
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    /// The speaker said something they must not: raise an alert.
    Prohibited {
        severity: Severity,
        message: String,
        correction: Option<String>,
    },
    /// A checklist item: completed the first time it matches, missed at its deadline.
    Required { title: String, deadline: Deadline },
    /// Show a guidance card.
    Trigger { title: String, body: String },
}

/// When a required item counts as missed, besides the end of the call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deadline {
    /// Missed once the call clock passes this many milliseconds.
    pub within_ms: Option<u64>,
    /// Missed as soon as any of these rules fires first.
    pub before: Vec<RuleId>,
}

/// Who a rule listens to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerFilter {
    Agent,
    Customer,
    Any,
}

impl SpeakerFilter {
    pub fn accepts(self, speaker: domain::event::Speaker) -> bool {
        use domain::event::Speaker;
        matches!(
            (self, speaker),
            (SpeakerFilter::Any, _)
                | (SpeakerFilter::Agent, Speaker::Agent)
                | (SpeakerFilter::Customer, Speaker::Customer)
        )
    }
}

/// What a rule matches. It matches a segment when any phrase, regex or proximity pair does,
/// at a place no `except` phrase overlaps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    pub phrases: Vec<Phrase>,
    /// Sources, run over folded text (lower case, single spaces, no punctuation or
    /// apostrophes, a space before the first and after the last word).
    pub regexes: Vec<String>,
    pub near: Vec<Near>,
    pub except: Vec<Phrase>,
}

/// One folded phrase, matched on word boundaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phrase {
    /// Folded words separated by single spaces.
    pub words: String,
    /// Written with a trailing `*`: the last word may go on (`cancel*` matches `cancelled`).
    pub prefix: bool,
}

/// Proximity: a phrase of `a` and a phrase of `b`, in either order, with at most `within`
/// words between them.
#[derive(Clone, Debug, PartialEq)]
pub struct Near {
    pub a: Vec<Phrase>,
    pub b: Vec<Phrase>,
    pub within: u32,
}

/// Parses and validates a ruleset. `file` is only used to name the file in errors.
pub fn parse_ruleset(file: &str, yaml: &str) -> Result<Ruleset, RulesetError> {
    let raw: RawRuleset = serde_yaml_ng::from_str(yaml).map_err(|e| yaml_error(file, yaml, &e))?;
    validate(file, yaml, raw)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleset {
    id: String,
    version: u32,
    name: Option<String>,
    description: Option<String>,
    split_window_ms: Option<u64>,
    rules: Vec<RawRule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Prohibited,
    Required,
    Trigger,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    kind: RawKind,
    description: Option<String>,
    speaker: Option<SpeakerFilter>,
    languages: Option<Vec<String>>,
    #[serde(rename = "match")]
    matcher: RawMatch,
    severity: Option<Severity>,
    message: Option<String>,
    correction: Option<String>,
    title: Option<String>,
    body: Option<String>,
    deadline: Option<RawDeadline>,
    cooldown_ms: Option<u64>,
    max_fires: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    regex: Vec<String>,
    #[serde(default)]
    near: Vec<RawNear>,
    #[serde(default)]
    except: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNear {
    a: Vec<String>,
    b: Vec<String>,
    within: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadline {
    within_ms: Option<u64>,
    #[serde(default)]
    before: Vec<String>,
}

/// Turns a `serde_yaml_ng` error into ours, naming the rule when the error is inside one.
fn yaml_error(file: &str, yaml: &str, e: &serde_yaml_ng::Error) -> RulesetError {
    let location = e.location();
    let mut message = e.to_string();
    if let Some(l) = &location {
        // We print the position in front; drop the copy serde_yaml_ng puts in the text.
        message = message.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        );
    }
    let rule_id = rule_index_in(&message).and_then(|i| rule_id_at(yaml, i));
    RulesetError {
        file: file.to_owned(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        rule_id,
        message,
    }
}

/// `serde_yaml_ng` starts the message of an error inside a rule with its path, `rules[3]…`.
fn rule_index_in(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("rules[")?;
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

/// The `id` written in rule `index`, read leniently (the rule itself may not deserialize).
fn rule_id_at(yaml: &str, index: usize) -> Option<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).ok()?;
    match doc.get("rules")?.get(index)?.get("id")? {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Builds errors that point into one document.
struct Errors<'a> {
    file: &'a str,
    yaml: &'a str,
}

impl Errors<'_> {
    fn at(&self, path: &[Step<'_>], rule_id: Option<&str>, message: String) -> RulesetError {
        // A path that names an absent optional field falls back to its parent, so an error
        // always has the closest line there is.
        let mut position = None;
        for end in (0..=path.len()).rev() {
            position = locate(self.yaml, &path[..end]);
            if position.is_some() {
                break;
            }
        }
        RulesetError {
            file: self.file.to_owned(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            rule_id: rule_id.map(str::to_owned),
            message,
        }
    }
}

fn validate(file: &str, yaml: &str, raw: RawRuleset) -> Result<Ruleset, RulesetError> {
    use Step::{Index, Key};
    let errors = Errors { file, yaml };
    let id = RulesetId::parse(raw.id.as_str())
        .map_err(|e| errors.at(&[Key("id")], None, e.to_string()))?;
    if raw.version == 0 {
        return Err(errors.at(&[Key("version")], None, "version must be 1 or more".into()));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, rule) in raw.rules.iter().enumerate() {
        if let Some(first) = seen.insert(rule.id.clone(), i) {
            let first_line = locate(yaml, &[Key("rules"), Index(first), Key("id")])
                .map_or_else(String::new, |(line, _)| {
                    format!(" (first defined at line {line})")
                });
            return Err(errors.at(
                &[Key("rules"), Index(i), Key("id")],
                Some(&rule.id),
                format!("duplicate rule id{first_line}"),
            ));
        }
    }
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rule) in raw.rules.into_iter().enumerate() {
        rules.push(validate_rule(&errors, i, rule, &seen)?);
    }
    Ok(Ruleset {
        file: file.to_owned(),
        reference: RulesetRef {
            id,
            version: raw.version,
        },
        name: raw.name,
        description: raw.description,
        split_window_ms: raw.split_window_ms.unwrap_or(DEFAULT_SPLIT_WINDOW_MS),
        rules,
    })
}

fn validate_rule(
    errors: &Errors<'_>,
    index: usize,
    raw: RawRule,
    ids: &BTreeMap<String, usize>,
) -> Result<Rule, RulesetError> {
    use Step::{Index, Key};
    let rule_id = raw.id.as_str();
    let err = |path: &[Step<'_>], message: String| {
        let mut full = vec![Key("rules"), Index(index)];
        full.extend_from_slice(path);
        errors.at(&full, Some(rule_id), message)
    };
    let id = RuleId::parse(rule_id).map_err(|e| err(&[Key("id")], e.to_string()))?;

    // Which of the kind-specific fields each kind takes; the rest must be absent.
    let present = [
        ("severity", raw.severity.is_some()),
        ("message", raw.message.is_some()),
        ("correction", raw.correction.is_some()),
        ("title", raw.title.is_some()),
        ("body", raw.body.is_some()),
        ("deadline", raw.deadline.is_some()),
        ("cooldown_ms", raw.cooldown_ms.is_some()),
        ("max_fires", raw.max_fires.is_some()),
    ];
    let (kind_name, allowed, needed): (&str, &[&str], &[&str]) = match raw.kind {
        RawKind::Prohibited => (
            "prohibited",
            &[
                "severity",
                "message",
                "correction",
                "cooldown_ms",
                "max_fires",
            ],
            &["message"],
        ),
        RawKind::Required => ("required", &["title", "deadline"], &["title"]),
        RawKind::Trigger => (
            "trigger",
            &["title", "body", "cooldown_ms", "max_fires"],
            &["title", "body"],
        ),
    };
    for (field, is_present) in present {
        if is_present && !allowed.contains(&field) {
            return Err(err(
                &[Key(field)],
                format!("`{field}` is not allowed on a {kind_name} rule"),
            ));
        }
    }
    for field in needed {
        if !present.iter().any(|(f, p)| f == field && *p) {
            return Err(err(
                &[Key("kind")],
                format!("a {kind_name} rule needs `{field}`"),
            ));
        }
    }
    for (field, text) in [
        ("message", &raw.message),
        ("correction", &raw.correction),
        ("title", &raw.title),
        ("body", &raw.body),
    ] {
        if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(err(&[Key(field)], format!("`{field}` must not be empty")));
        }
    }
    if raw.max_fires == Some(0) {
        return Err(err(
            &[Key("max_fires")],
            "`max_fires` must be 1 or more (remove the rule to disable it)".into(),
        ));
    }

    let mut languages = Vec::new();
    for (j, tag) in raw.languages.unwrap_or_default().into_iter().enumerate() {
        languages.push(
            LanguageTag::parse(tag)
                .map_err(|e| err(&[Key("languages"), Index(j)], e.to_string()))?,
        );
    }

    let matcher = validate_match(raw.matcher, &|path, message| {
        let mut full = vec![Key("match")];
        full.extend_from_slice(path);
        err(&full, message)
    })?;

    let kind = match raw.kind {
        RawKind::Prohibited => RuleKind::Prohibited {
            severity: raw.severity.unwrap_or(Severity::Warning),
            message: raw.message.unwrap_or_default(),
            correction: raw.correction,
        },
        RawKind::Required => {
            let mut deadline = Deadline::default();
            if let Some(d) = raw.deadline {
                if d.within_ms.is_none() && d.before.is_empty() {
                    return Err(err(
                        &[Key("deadline")],
                        "a deadline needs `within_ms` or `before`".into(),
                    ));
                }
                deadline.within_ms = d.within_ms;
                for (j, other) in d.before.iter().enumerate() {
                    let path = [Key("deadline"), Key("before"), Index(j)];
                    if other == rule_id {
                        return Err(err(&path, "a rule cannot have to precede itself".into()));
                    }
                    if !ids.contains_key(other.as_str()) {
                        return Err(err(
                            &path,
                            format!(
                                "`before` names `{other}`, which is not a rule of this ruleset"
                            ),
                        ));
                    }
                    let other =
                        RuleId::parse(other.as_str()).map_err(|e| err(&path, e.to_string()))?;
                    deadline.before.push(other);
                }
            }
            RuleKind::Required {
                title: raw.title.unwrap_or_default(),
                deadline,
            }
        }
        RawKind::Trigger => RuleKind::Trigger {
            title: raw.title.unwrap_or_default(),
            body: raw.body.unwrap_or_default(),
        },
    };
    let speaker = raw.speaker.unwrap_or(match raw.kind {
        RawKind::Prohibited | RawKind::Required => SpeakerFilter::Agent,
        RawKind::Trigger => SpeakerFilter::Customer,
    });
    Ok(Rule {
        id,
        kind,
        description: raw.description,
        speaker,
        languages,
        matcher,
        cooldown_ms: raw.cooldown_ms.unwrap_or(0),
        max_fires: raw.max_fires,
    })
}

type MatchErr<'f> = &'f dyn Fn(&[Step<'_>], String) -> RulesetError;

fn validate_match(raw: RawMatch, err: MatchErr<'_>) -> Result<Matcher, RulesetError> {
    use Step::{Index, Key};
    if raw.phrases.is_empty() && raw.regex.is_empty() && raw.near.is_empty() {
        return Err(err(
            &[],
            "`match` needs at least one of `phrases`, `regex` or `near`".into(),
        ));
    }
    let phrase_list = |list: &[String], path: &[Step<'_>]| -> Result<Vec<Phrase>, RulesetError> {
        let mut out = Vec::new();
        for (j, source) in list.iter().enumerate() {
            let mut at = path.to_vec();
            at.push(Index(j));
            let variants =
                expand_phrase(source).map_err(|m| err(&at, format!("phrase {source:?}: {m}")))?;
            out.extend(variants);
        }
        Ok(out)
    };
    let phrases = phrase_list(&raw.phrases, &[Key("phrases")])?;
    let except = phrase_list(&raw.except, &[Key("except")])?;
    let mut near = Vec::new();
    for (j, n) in raw.near.iter().enumerate() {
        if n.a.is_empty() || n.b.is_empty() {
            return Err(err(
                &[Key("near"), Index(j)],
                "`near` needs phrases in both `a` and `b`".into(),
            ));
        }
        near.push(Near {
            a: phrase_list(&n.a, &[Key("near"), Index(j), Key("a")])?,
            b: phrase_list(&n.b, &[Key("near"), Index(j), Key("b")])?,
            within: n.within,
        });
    }
    for (j, source) in raw.regex.iter().enumerate() {
        let at = [Key("regex"), Index(j)];
        let re = Regex::new(source).map_err(|e| {
            err(
                &at,
                format!("invalid regex {source:?}: {}", one_line(&e.to_string())),
            )
        })?;
        // Folded text is never empty of spaces: a pattern that matches a lone space (or
        // nothing at all) would fire on every segment.
        if re.is_match(" ") {
            return Err(err(
                &at,
                format!("regex {source:?} matches text with no words in it"),
            ));
        }
    }
    Ok(Matcher {
        phrases,
        regexes: raw.regex,
        near,
        except,
    })
}

/// The regex crate's errors span several lines (pattern, caret, message): keep them on one.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Expands `(a|b)` groups and folds each variant. A trailing `*` makes the last word a prefix.
pub(crate) fn expand_phrase(source: &str) -> Result<Vec<Phrase>, String> {
    // Literal text and groups, in order.
    let mut parts: Vec<Vec<String>> = Vec::new();
    let mut literal = String::new();
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                parts.push(vec![std::mem::take(&mut literal)]);
                let mut group = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    match c {
                        ')' => {
                            closed = true;
                            break;
                        }
                        '(' => return Err("groups cannot be nested".into()),
                        c => group.push(c),
                    }
                }
                if !closed {
                    return Err("`(` without `)`".into());
                }
                parts.push(group.split('|').map(str::to_owned).collect());
            }
            ')' => return Err("`)` without `(`".into()),
            '|' => {
                return Err(
                    "`|` outside a `( )` group: give each alternative its own list item".into(),
                );
            }
            c => literal.push(c),
        }
    }
    parts.push(vec![literal]);

    let mut variants = vec![String::new()];
    for part in &parts {
        if variants.len() * part.len() > MAX_VARIANTS {
            return Err(format!("expands to more than {MAX_VARIANTS} phrases"));
        }
        variants = variants
            .iter()
            .flat_map(|v| part.iter().map(move |p| format!("{v}{p}")))
            .collect();
    }

    let mut out: Vec<Phrase> = Vec::with_capacity(variants.len());
    for v in variants {
        let trimmed = v.trim_end();
        let (text, prefix) = match trimmed.strip_suffix('*') {
            Some(rest) => (rest, true),
            None => (trimmed, false),
        };
        if text.contains('*') {
            return Err("`*` may only end a phrase".into());
        }
        if prefix && text.ends_with(|c: char| !c.is_alphanumeric()) {
            return Err("`*` must follow a letter or digit".into());
        }
        let words = fold(text);
        if words.is_empty() {
            return Err("has no words once folded".into());
        }
        let phrase = Phrase { words, prefix };
        if !out.contains(&phrase) {
            out.push(phrase);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(source: &str) -> Vec<(String, bool)> {
        expand_phrase(source)
            .unwrap()
            .into_iter()
            .map(|p| (p.words, p.prefix))
            .collect()
    }

    #[test]
    fn expands_groups_and_prefixes() {
        assert_eq!(words("Guarantee"), vec![("guarantee".into(), false)]);
        assert_eq!(
            words("it (won't|will not) cost more than"),
            vec![
                ("it wont cost more than".into(), false),
                ("it will not cost more than".into(), false)
            ]
        );
        assert_eq!(
            words("(really |)safe"),
            vec![("really safe".into(), false), ("safe".into(), false)]
        );
        assert_eq!(words("cancel*"), vec![("cancel".into(), true)]);
        assert_eq!(
            words("(cancel*|refund)"),
            vec![("cancel".into(), true), ("refund".into(), false)]
        );
        // Variants that fold alike are kept once.
        assert_eq!(words("(can't|cant) go"), vec![("cant go".into(), false)]);
    }

    #[test]
    fn rejects_malformed_phrases() {
        let table = [
            ("a (b", "`(` without `)`"),
            ("a) b", "`)` without `(`"),
            ("a ((b))", "groups cannot be nested"),
            ("a|b", "`|` outside a `( )` group"),
            ("ca*ncel", "`*` may only end a phrase"),
            ("cancel !*", "`*` must follow a letter or digit"),
            ("?!", "has no words once folded"),
            (
                "(a|b|c|d)(a|b|c|d)(a|b|c|d)(a|b|c|d)(a|b)",
                "expands to more than 256",
            ),
        ];
        for (source, want) in table {
            let got = expand_phrase(source).unwrap_err();
            assert!(got.contains(want), "{source:?}: {got}");
        }
    }
}
