//! Validated identifiers and positions. Every id that crosses a crate boundary is one of these
//! types, so a value that reached the domain has already been checked once, at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Why a string could not become an identifier. Names the kind of id and the reason; it
/// never echoes more than a short prefix of the input (ids can arrive from untrusted edges).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct IdError {
    pub what: &'static str,
    pub reason: String,
}

impl IdError {
    fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps a UUID, refusing the nil UUID.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.is_nil() {
                    return Err(IdError::new($what, "must not be the nil UUID"));
                }
                Ok(Self(uuid))
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let uuid = Uuid::parse_str(s.trim()).map_err(|_| {
                    IdError::new($what, format!("{:?} is not a UUID", short(s)))
                })?;
                Self::from_uuid(uuid)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let uuid = Uuid::deserialize(d)?;
                Self::from_uuid(uuid).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), String> = $check;
                check(&s).map_err(|reason| IdError::new($what, reason))?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

/// At most this many characters of a bad input are echoed back in an error.
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Lower-case letters, digits and `-`, starting with a letter or digit: safe in URLs,
/// file names and log lines.
fn slug(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "{:?} may hold only lower-case letters, digits and '-'",
            short(s)
        ));
    }
    if s.starts_with('-') {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

/// Printable text with no control characters and no surrounding whitespace.
fn label(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if s.trim() != s {
        return Err("must not start or end with whitespace".into());
    }
    Ok(())
}

uuid_id!(
    /// One call: the stream key of the event log.
    CallId,
    "call id"
);
uuid_id!(
    /// One event, unique across the whole log; the idempotency key of an append.
    EventId,
    "event id"
);
uuid_id!(
    /// Groups the events caused by one user action or one inbound message.
    CorrelationId,
    "correlation id"
);
uuid_id!(
    /// One compliance alert raised on a call.
    AlertId,
    "alert id"
);
uuid_id!(
    /// One suggested reply.
    SuggestionId,
    "suggestion id"
);
uuid_id!(
    /// One guidance card shown on a call.
    CardId,
    "card id"
);

string_id!(
    /// The owner of calls, rulesets and events, e.g. `acme-hvac`.
    TenantId,
    "tenant id",
    |s| slug(s, 63)
);
string_id!(
    /// A ruleset, e.g. `home-services`.
    RulesetId,
    "ruleset id",
    |s| slug(s, 63)
);
string_id!(
    /// A rule within a ruleset, e.g. `no-guarantee`.
    RuleId,
    "rule id",
    |s| {
        label(s, 128)?;
        if s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            Ok(())
        } else {
            Err(format!(
                "{:?} may hold only letters, digits, '-', '_' and '.'",
                short(s)
            ))
        }
    }
);
string_id!(
    /// A transcript segment as named by its source (speech-to-text, telephony, replay).
    SegmentId,
    "segment id",
    |s| label(s, 128)
);
string_id!(
    /// The CSR handling a call, as named by the call-center's directory.
    AgentId,
    "agent id",
    |s| label(s, 128)
);
string_id!(
    /// Who did something by hand: a user id or a service name.
    ActorId,
    "actor id",
    |s| label(s, 128)
);
string_id!(
    /// A request trace id (W3C trace-context style hex, or any token up to 64 characters).
    TraceId,
    "trace id",
    |s| {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Ok(())
        } else {
            Err("may hold only letters, digits and '-'".into())
        }
    }
);
string_id!(
    /// A BCP 47 language tag such as `en`, `en-US`, `ar-AE` or `hi-IN`.
    LanguageTag,
    "language tag",
    |s| {
        if s.len() < 2 || s.len() > 35 {
            return Err("must be 2 to 35 characters".into());
        }
        let mut parts = s.split('-');
        let primary = parts.next().unwrap_or_default();
        if !(2..=8).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(format!("{:?} does not start with a language subtag", short(s)));
        }
        if parts.all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            Ok(())
        } else {
            Err(format!("{:?} is not a BCP 47 language tag", short(s)))
        }
    }
);

impl TenantId {
    /// The tenant created on first start of an empty store.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }
}

/// A position in one call's stream. Events are numbered from 1; `Seq::ZERO` is the position
/// before the first event, so "the version of a stream" is the `Seq` of its last event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    pub const ZERO: Seq = Seq(0);

    pub const fn new(n: u64) -> Self {
        Seq(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl FromStr for Seq {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse::<u64>().map(Seq).map_err(|_| {
            IdError::new(
                "seq",
                format!("{:?} is not a non-negative integer", short(s)),
            )
        })
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

/// A position in the whole log, across calls. Strictly increasing in commit order (the
/// store guarantees a reader never sees position `n + k` before a committed `n`); it may
/// have gaps. `GlobalPosition::ZERO` is before the first event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GlobalPosition(u64);

impl GlobalPosition {
    pub const ZERO: GlobalPosition = GlobalPosition(0);

    pub const fn new(n: u64) -> Self {
        GlobalPosition(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GlobalPosition({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_or_say_why() {
        let table: &[(&str, Result<(), &str>)] = &[
            ("acme-hvac", Ok(())),
            ("default", Ok(())),
            ("", Err("invalid tenant id: must not be empty")),
            ("Acme", Err("may hold only lower-case letters")),
            ("-acme", Err("must start with a letter or a digit")),
        ];
        for (input, want) in table {
            let got = TenantId::parse(*input);
            match (want, got) {
                (Ok(()), Ok(t)) => assert_eq!(t.as_str(), *input),
                (Err(msg), Err(e)) => assert!(e.to_string().contains(msg), "{input:?}: {e}"),
                (want, got) => panic!("{input:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn call_id_rejects_garbage_and_nil() {
        let e = "not-a-uuid".parse::<CallId>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid call id: \"not-a-uuid\" is not a UUID"
        );
        let e = "00000000-0000-0000-0000-000000000000"
            .parse::<CallId>()
            .unwrap_err();
        assert!(e.to_string().contains("nil"));
        let id = CallId::new();
        assert_eq!(id.to_string().parse::<CallId>().unwrap(), id);
    }

    #[test]
    fn language_tags() {
        for ok in ["en", "en-US", "ar-AE", "hi-IN", "zh-Hant-TW"] {
            LanguageTag::parse(ok).unwrap();
        }
        for bad in ["e", "english!", "en--US", "12"] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deserializing_validates() {
        let e = serde_json::from_str::<TenantId>("\"Bad Tenant\"").unwrap_err();
        assert!(e.to_string().contains("tenant id"));
        let e = serde_json::from_str::<SegmentId>("\"\"").unwrap_err();
        assert!(e.to_string().contains("segment id"));
    }
}

uuid_id!(
    /// One API token (the secret itself is never stored, only its SHA-256).
    TokenId,
    "token id"
);

/// What a bearer token may do within its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An ingest source or a background worker: starts and ends calls, posts segments and
    /// suggestions; cannot edit rulesets or tokens.
    Service,
    /// A CSR: reads and follows their calls, acknowledges alerts, gives feedback.
    Agent,
    /// Watches all the tenant's calls live, overrides dispositions.
    Supervisor,
    /// Everything in the tenant, including rulesets and tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "service" => Ok(Role::Service),
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(IdError::new(
                "role",
                format!(
                    "{:?} is not one of admin, supervisor, agent, service",
                    short(other)
                ),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
