//! The edge validation said in the OpenAPI document. Handlers take most fields as strings so
//! that a refusal can name the field in our own words; the types here (never built, only
//! named in `value_type`) tell a client — and a generator such as schemathesis — which values
//! those strings may hold, so that a request the document calls valid is one the handler
//! accepts, and the other way round.
//!
//! Invariant: each schema here says what a parser in `domain` or in a handler checks; a change
//! to one is a change to the other. scripts/schemathesis.sh checks both directions: schema-valid
//! requests must be accepted, schema-invalid ones refused.

use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Control characters (`char::is_control`) and whitespace (what `str::trim` removes), spelled
/// out rather than written `\s`, whose meaning differs between regex dialects.
macro_rules! no_control_or_space {
    () => {
        r"[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}

/// `domain`'s label ids (`AgentId`, `SegmentId`, `ActorId`): 1 to 128 characters, no control
/// characters, no whitespace at either end.
pub const LABEL_PATTERN: &str = concat!(
    "^",
    no_control_or_space!(),
    r"(?:[^\u0000-\u001f\u007f-\u009f]*",
    no_control_or_space!(),
    ")?$"
);

/// Something other than whitespace (`str::trim` leaves something).
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A JSON Schema pattern says "not this one" with a lookahead; generators that cannot run it
/// filter by it.
pub const NOT_NIL_UUID_PATTERN: &str = "^(?!00000000-0000-0000-0000-000000000000$)";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(Type::String))
}

/// A name of a person or a thing, as `domain` checks labels: 1 to 128 characters, no
/// control characters, no whitespace at either end.
pub struct Label;

impl PartialSchema for Label {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some(
                "1 to 128 characters, no control characters, no whitespace at either end",
            ))
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some(LABEL_PATTERN))
            .into()
    }
}

impl ToSchema for Label {}

/// A slug such as a ruleset id (`home-services`).
pub struct Slug;

impl PartialSchema for Slug {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some(
                "1 to 63 lower-case letters, digits and '-', not starting with '-'",
            ))
            .min_length(Some(1))
            .max_length(Some(63))
            .pattern(Some("^[a-z0-9][a-z0-9-]*$"))
            .into()
    }
}

impl ToSchema for Slug {}

/// A BCP 47 language tag as `LanguageTag` checks it (`en`, `en-US`, `zh-Hant-TW`).
pub struct Language;

impl PartialSchema for Language {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some("A BCP 47 language tag such as `en-US`"))
            .max_length(Some(35))
            .pattern(Some("^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$"))
            .examples(["en-US"])
            .into()
    }
}

impl ToSchema for Language {}

/// Text that is not blank.
pub struct Text;

impl PartialSchema for Text {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some("Text with something other than whitespace in it"))
            .pattern(Some(NOT_BLANK_PATTERN))
            .into()
    }
}

impl ToSchema for Text {}

/// An id: a UUID, never the nil one.
pub struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some("A UUID, not the nil one"))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .pattern(Some(NOT_NIL_UUID_PATTERN))
            .into()
    }
}

impl ToSchema for Id {}

/// Where a call comes from.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CallSource {
    Manual,
    Replay,
    Telephony,
}

/// Why a call ended.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EndReason {
    Completed,
    Transferred,
    Dropped,
    Abandoned,
}

/// The outcome of a call.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Disposition {
    Booked,
    Lead,
    Spam,
    Resolved,
    Escalated,
    Other,
}

/// What a person made of a suggested reply.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Dismissed,
}

/// What a token may do.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Agent,
    Service,
}

/// Who spoke.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Speaker {
    Agent,
    Customer,
}

/// A call's status in the call list.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CallStatus {
    Live,
    Ended,
}
