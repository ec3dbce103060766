//! What to redact and what to replace it with.

use domain::event::PiiKind;
use serde::{Deserialize, Serialize};

/// Every kind, in declaration order.
pub const ALL_KINDS: [PiiKind; 9] = [
    PiiKind::Phone,
    PiiKind::Email,
    PiiKind::Card,
    PiiKind::Ssn,
    PiiKind::Iban,
    PiiKind::Dob,
    PiiKind::Address,
    PiiKind::Name,
    PiiKind::Number,
];

/// The text that replaces a value of each kind.
///
/// A placeholder must be recognisable as one when the redacted text is redacted again (so
/// that redaction is idempotent) and must never look like a value: see
/// [`Redactor::new`](crate::Redactor::new) for the rules it has to follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placeholders {
    pub phone: String,
    pub email: String,
    pub card: String,
    pub ssn: String,
    pub iban: String,
    pub dob: String,
    pub address: String,
    pub name: String,
    pub number: String,
}

impl Default for Placeholders {
    fn default() -> Self {
        Self {
            phone: "[PHONE]".into(),
            email: "[EMAIL]".into(),
            card: "[CARD]".into(),
            ssn: "[SSN]".into(),
            iban: "[IBAN]".into(),
            dob: "[DOB]".into(),
            address: "[ADDRESS]".into(),
            name: "[NAME]".into(),
            number: "[NUMBER]".into(),
        }
    }
}

impl Placeholders {
    pub fn get(&self, kind: PiiKind) -> &str {
        match kind {
            PiiKind::Phone => &self.phone,
            PiiKind::Email => &self.email,
            PiiKind::Card => &self.card,
            PiiKind::Ssn => &self.ssn,
            PiiKind::Iban => &self.iban,
            PiiKind::Dob => &self.dob,
            PiiKind::Address => &self.address,
            PiiKind::Name => &self.name,
            PiiKind::Number => &self.number,
        }
    }

    pub fn set(&mut self, kind: PiiKind, placeholder: impl Into<String>) {
        let slot = match kind {
            PiiKind::Phone => &mut self.phone,
            PiiKind::Email => &mut self.email,
            PiiKind::Card => &mut self.card,
            PiiKind::Ssn => &mut self.ssn,
            PiiKind::Iban => &mut self.iban,
            PiiKind::Dob => &mut self.dob,
            PiiKind::Address => &mut self.address,
            PiiKind::Name => &mut self.name,
            PiiKind::Number => &mut self.number,
        };
        *slot = placeholder.into();
    }
}

/// A redaction policy: plain data, so a tenant's policy can live in its configuration.
///
/// The [`Default`] policy redacts every kind this crate detects, and any digit run of seven
/// digits or more (a phone number's length) whatever its shape; shorter runs are redacted
/// only with a cue ("my zip is …") or when they may be the start of a number that continues
/// in the next segment. [`Policy::strict`] also redacts every run of at least `n` digits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub placeholders: Placeholders,
    /// Kinds left in the clear. A disabled kind's values are not redacted — unless the strict
    /// threshold catches them as [`PiiKind::Number`] (the strict option promises that no
    /// digit run of that length survives).
    pub disabled: Vec<PiiKind>,
    /// Redact any run of at least this many digits (spoken or written) as
    /// [`PiiKind::Number`] when no more specific kind applies. `None` (the default) is off.
    /// Must be at least 3: a run is never shorter than three digits (see the crate docs).
    pub strict_min_digits: Option<usize>,
}

impl Policy {
    /// The default policy, plus: every run of at least `min_digits` digits is redacted.
    pub fn strict(min_digits: usize) -> Self {
        Self {
            strict_min_digits: Some(min_digits),
            ..Self::default()
        }
    }

    pub fn with_placeholder(mut self, kind: PiiKind, placeholder: impl Into<String>) -> Self {
        self.placeholders.set(kind, placeholder);
        self
    }

    pub fn without(mut self, kind: PiiKind) -> Self {
        if !self.disabled.contains(&kind) {
            self.disabled.push(kind);
        }
        self
    }

    pub fn is_enabled(&self, kind: PiiKind) -> bool {
        !self.disabled.contains(&kind)
    }
}

/// Why a [`Policy`] cannot be compiled. Messages name the setting, never transcript text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("placeholder for {kind:?} {reason}")]
    Placeholder { kind: PiiKind, reason: &'static str },
    #[error("strict_min_digits is {0}; it must be at least 3")]
    StrictTooSmall(usize),
    #[error("the placeholders could not be compiled into a matcher")]
    Matcher,
}

/// What written numbers, amounts and dates are glued with (`415-555-0132`, `(415)`, `+44`,
/// `$129`, `1,250.00`, `2:30`, `03/14/1985`). The written detectors look at the character
/// next to a match, so a placeholder that began or ended with one would change how the text
/// next to it reads on a second pass (fuzzing found `-` turning the amount in `-50.0` into a
/// digit run).
const NUMBER_PUNCTUATION: &[char] = &['.', ',', '-', '/', ':', '(', '+', '$', '£', '€'];

/// Placeholders are found again by exact match when redacted text is redacted a second
/// time, and they must not be mistaken for (or merge with) words, digits or addresses.
pub(crate) fn validate(policy: &Policy) -> Result<(), PolicyError> {
    for kind in ALL_KINDS {
        let p = policy.placeholders.get(kind);
        let reason = if p.is_empty() || p.chars().count() > 64 {
            Some("must be 1 to 64 characters")
        } else if p
            .chars()
            .any(|c| c.is_whitespace() || c.is_numeric() || c == '@')
        {
            Some("must not contain whitespace, digits or '@'")
        } else if p.starts_with(char::is_alphanumeric) || p.ends_with(char::is_alphanumeric) {
            Some("must start and end with a non-alphanumeric character, e.g. [PHONE]")
        } else if p.starts_with(NUMBER_PUNCTUATION) || p.ends_with(NUMBER_PUNCTUATION) {
            Some("must not start or end with any of . , - / : ( + $ £ €, e.g. [PHONE]")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(PolicyError::Placeholder { kind, reason });
        }
    }
    match policy.strict_min_digits {
        Some(n) if n < 3 => Err(PolicyError::StrictTooSmall(n)),
        _ => Ok(()),
    }
}
