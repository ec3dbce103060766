//! A ruleset that cannot load says which file, which line and which rule.

use rules::{RulesetError, parse_ruleset};

/// A valid first rule (lines 4-8) so the broken one is never the first thing in the file.
const HEAD: &str = "\
id: shop
version: 3
rules:
  - id: greet
    kind: required
    title: Greet
    match:
      phrases: [hello]
";

fn error(body: &str) -> RulesetError {
    let yaml = format!("{HEAD}{body}");
    match parse_ruleset("rulesets/shop.yaml", &yaml) {
        Ok(_) => panic!("parsed:\n{yaml}"),
        Err(e) => e,
    }
}

/// (the rule appended after HEAD, starting at line 9; the expected line; the expected rule
/// id; a piece of the message).
const CASES: &[(&str, &str, usize, Option<&str>, &str)] = &[
    (
        "unknown field in a rule",
        "  - id: no-guarantee\n    kind: prohibited\n    message: m\n    severty: critical\n    match:\n      phrases: [guarantee]\n",
        12,
        Some("no-guarantee"),
        "rules[1]: unknown field `severty`, expected one of",
    ),
    (
        "unknown field in a rule's match",
        "  - id: no-risk\n    kind: prohibited\n    message: m\n    match:\n      phrase: [no risk]\n",
        13,
        Some("no-risk"),
        "rules[1].match: unknown field `phrase`",
    ),
    (
        "missing field",
        "  - id: cancel\n    title: t\n    body: b\n    match:\n      phrases: [cancel]\n",
        9,
        Some("cancel"),
        "missing field `kind`",
    ),
    (
        "wrong type",
        "  - id: cool\n    kind: trigger\n    title: t\n    body: b\n    cooldown_ms: soon\n    match:\n      phrases: [x]\n",
        13,
        Some("cool"),
        "cooldown_ms: invalid type: string \"soon\", expected u64",
    ),
    (
        "unknown kind",
        "  - id: odd\n    kind: suggestion\n    match:\n      phrases: [x]\n",
        10,
        Some("odd"),
        "unknown variant `suggestion`",
    ),
    (
        "bad regex",
        "  - id: card-number\n    kind: prohibited\n    message: m\n    match:\n      regex:\n        - '\\d{4}'\n        - '(\\d{9,}'\n",
        15,
        Some("card-number"),
        "invalid regex \"(\\\\d{9,}\": regex parse error:",
    ),
    (
        "regex that matches no words",
        "  - id: empty\n    kind: prohibited\n    message: m\n    match:\n      regex: ['x*']\n",
        13,
        Some("empty"),
        "regex \"x*\" matches text with no words in it",
    ),
    (
        "duplicate rule id",
        "  - id: greet\n    kind: required\n    title: Greet again\n    match:\n      phrases: [hi]\n",
        9,
        Some("greet"),
        "duplicate rule id (first defined at line 4)",
    ),
    (
        "invalid rule id",
        "  - id: no guarantee!\n    kind: prohibited\n    message: m\n    match:\n      phrases: [x]\n",
        9,
        Some("no guarantee!"),
        "invalid rule id: \"no guarantee!\" may hold only letters, digits",
    ),
    (
        "before names an unknown rule",
        "  - id: confirm-address\n    kind: required\n    title: t\n    match:\n      phrases: [confirm your address]\n    deadline:\n      before: [quote-price]\n",
        15,
        Some("confirm-address"),
        "`before` names `quote-price`, which is not a rule of this ruleset",
    ),
    (
        "a field of another kind",
        "  - id: cancel\n    kind: trigger\n    title: t\n    body: b\n    severity: critical\n    match:\n      phrases: [cancel]\n",
        13,
        Some("cancel"),
        "`severity` is not allowed on a trigger rule",
    ),
    (
        "a field the kind needs",
        "  - id: no-risk\n    kind: prohibited\n    match:\n      phrases: [no risk]\n",
        10,
        Some("no-risk"),
        "a prohibited rule needs `message`",
    ),
    (
        "malformed phrase",
        "  - id: lowest\n    kind: prohibited\n    message: m\n    match:\n      phrases:\n        - lowest price\n        - (that's|that is the lowest\n",
        15,
        Some("lowest"),
        "phrase \"(that's|that is the lowest\": `(` without `)`",
    ),
    (
        "empty match",
        "  - id: nothing\n    kind: prohibited\n    message: m\n    match:\n      except: [x]\n",
        13,
        Some("nothing"),
        "`match` needs at least one of `phrases`, `regex` or `near`",
    ),
    (
        "bad language tag",
        "  - id: hi-only\n    kind: trigger\n    title: t\n    body: b\n    languages: [hi, 'hindi!']\n    match:\n      phrases: [x]\n",
        13,
        Some("hi-only"),
        "invalid language tag",
    ),
    (
        "max_fires of zero",
        "  - id: once\n    kind: trigger\n    title: t\n    body: b\n    max_fires: 0\n    match:\n      phrases: [x]\n",
        13,
        Some("once"),
        "`max_fires` must be 1 or more",
    ),
];

#[test]
fn errors_name_file_line_and_rule() {
    let mut failures = Vec::new();
    for (name, body, line, rule, message) in CASES {
        let e = error(body);
        let prefix = format!("rulesets/shop.yaml:{line}:");
        let rule_part = rule.map(|id| format!(": rule `{id}`: "));
        let text = e.to_string();
        let ok = e.file == "rulesets/shop.yaml"
            && e.line == Some(*line)
            && e.rule_id.as_deref() == *rule
            && text.starts_with(&prefix)
            && rule_part.is_none_or(|p| text.contains(&p))
            && text.contains(message);
        if !ok {
            failures.push(format!(
                "{name}: want line {line}, rule {rule:?}, {message:?}\n  got {text}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exact_messages() {
    let e = error(
        "  - id: greet\n    kind: required\n    title: Greet again\n    match:\n      phrases: [hi]\n",
    );
    assert_eq!(
        e.to_string(),
        "rulesets/shop.yaml:9:9: rule `greet`: duplicate rule id (first defined at line 4)"
    );
    let e = error(
        "  - id: no-guarantee\n    kind: prohibited\n    message: m\n    severty: critical\n    match:\n      phrases: [guarantee]\n",
    );
    assert!(
        e.to_string().starts_with(
            "rulesets/shop.yaml:12:5: rule `no-guarantee`: rules[1]: unknown field `severty`, expected one of `id`, `kind`"
        ),
        "{e}"
    );
}

#[test]
fn errors_outside_rules_have_no_rule_id() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "id: shop\nversion: 1\nrules:\n  - id: a\n    kind: trigger\n    title: t\n    body: b\n    match: { phrases: [x }\n",
            8,
            "did not find expected ',' or ']', while parsing a flow sequence",
        ),
        (
            "id: shop\nversion: 1\nowner: me\nrules: []\n",
            3,
            "unknown field `owner`",
        ),
        (
            "id: Shop Rules\nversion: 1\nrules: []\n",
            1,
            "invalid ruleset id",
        ),
        (
            "id: shop\nversion: 0\nrules: []\n",
            2,
            "version must be 1 or more",
        ),
        (
            "id: shop\nversion: two\nrules: []\n",
            2,
            "version: invalid type: string \"two\"",
        ),
    ];
    for (yaml, line, message) in cases {
        let e = parse_ruleset("r.yaml", yaml).unwrap_err();
        assert_eq!(e.line, Some(*line), "{e}");
        assert_eq!(e.rule_id, None, "{e}");
        assert!(e.to_string().starts_with(&format!("r.yaml:{line}:")), "{e}");
        assert!(e.message.contains(message), "{e}");
    }
    let e = parse_ruleset("empty.yaml", "").unwrap_err();
    assert_eq!(e.to_string(), "empty.yaml:1:1: missing field `id`");
}
