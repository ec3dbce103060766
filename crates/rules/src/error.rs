//! Ruleset errors, and finding the line of a node in the YAML text they point at.
//!
//! `serde_yaml_ng` reports a position only for the errors it raises itself. The checks that run
//! after deserializing (bad regex, duplicate id, unknown rule in `before`, …) find theirs by
//! deserializing the document once more with a probe that walks a path (`rules`, 3, `id`) and
//! fails on purpose at the node it reaches: the deserializer stamps that failure with the
//! node's line and column. It costs one more parse, and only when there is an error.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Why a ruleset could not be loaded or compiled. Its `Display` reads
/// `FILE:LINE:COLUMN: rule `ID`: MESSAGE`, leaving out the parts that do not apply (a YAML
/// syntax error has no rule; an automaton too large for memory has no line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RulesetError {
    /// The file name the caller passed to [`crate::parse_ruleset`].
    pub file: String,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based.
    pub column: Option<usize>,
    /// The id of the rule at fault, as written (it may be the invalid id itself).
    pub rule_id: Option<String>,
    pub message: String,
}

impl fmt::Display for RulesetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(id) = &self.rule_id {
            write!(f, "rule `{id}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// One step of a path into the YAML document.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The 1-based line and column of the node at `path` in `yaml`, if the document reaches it.
pub(crate) fn locate(yaml: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    let de = serde_yaml_ng::Deserializer::from_str(yaml);
    match (Probe { path }).deserialize(de) {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

/// A message no real YAML error contains: the probe's "I got there".
const FOUND: &str = "\u{1}earshot-rules-probe-found\u{1}";
const MISSING: &str = "path not in document";

struct Probe<'p> {
    path: &'p [Step<'p>],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Probe<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        Err(E::custom(if self.path.is_empty() {
            FOUND
        } else {
            MISSING
        }))
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(want), rest)) = self.path.split_first() else {
            return self.leaf();
        };
        while let Some(key) = map.next_key::<KeyName>()? {
            if key.0.as_deref() == Some(*want) {
                return map.next_value_seed(Probe { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(MISSING))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(want), rest)) = self.path.split_first() else {
            return self.leaf();
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(MISSING));
            }
        }
        // Reaching the element fails with FOUND before this line; a missing one does not.
        seq.next_element_seed(Probe { path: rest })?;
        Err(de::Error::custom(MISSING))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A mapping key: its text when it is a string, `None` for any other key.
struct KeyName(Option<String>);

impl<'de> de::Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyName, E> {
                Ok(KeyName(Some(s.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<KeyName, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyName(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<KeyName, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KeyName(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
id: demo
version: 2
rules:
  - id: first
    kind: trigger
  - kind: prohibited
    id: second
    match:
      regex: ['a(', \"b\"]
";

    #[test]
    fn locates_nodes_by_path() {
        use Step::{Index, Key};
        assert_eq!(locate(DOC, &[Key("version")]), Some((2, 10)));
        assert_eq!(locate(DOC, &[Key("rules"), Index(0)]), Some((4, 5)));
        assert_eq!(locate(DOC, &[Key("rules"), Index(1)]), Some((6, 5)));
        assert_eq!(
            locate(DOC, &[Key("rules"), Index(1), Key("id")]),
            Some((7, 9))
        );
        assert_eq!(
            locate(
                DOC,
                &[Key("rules"), Index(1), Key("match"), Key("regex"), Index(1)]
            ),
            Some((9, 21))
        );
        assert_eq!(locate(DOC, &[Key("rules"), Index(2)]), None);
        assert_eq!(locate(DOC, &[Key("nope")]), None);
        assert_eq!(locate("id: [unclosed", &[Key("version")]), None);
    }

    #[test]
    fn display_names_file_line_and_rule() {
        let mut e = RulesetError {
            file: "r.yaml".into(),
            line: Some(3),
            column: Some(7),
            rule_id: Some("no-guarantee".into()),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "r.yaml:3:7: rule `no-guarantee`: bad");
        e.rule_id = None;
        e.column = None;
        assert_eq!(e.to_string(), "r.yaml:3: bad");
        e.line = None;
        assert_eq!(e.to_string(), "r.yaml: bad");
    }
}
