//! The pure core of the agent-assist platform: what a call *is*, as a stream of events.
//!
//! Everything the product shows is a projection of the append-only `call_events` log; this
//! crate defines what goes into that log and how it folds into state. It does no IO, has no
//! async code and no database types: its functions cannot fail on IO, so they can be tested
//! with tables and property tests, and reused by the server, the CLI and the workers alike.
//!
//! # Layout
//!
//! - [`ids`]: validated newtypes (`CallId`, `TenantId`, `EventId`, `Seq`, `GlobalPosition`, …).
//! - [`event`]: the event catalogue ([`CallEvent`]), its payload types, and the versioned
//!   encoding the store writes (`event_type`, `schema_version`, JSON payload) with upcasting
//!   on read.
//! - [`envelope`]: [`NewEvent`] (what an append takes) and [`RecordedEvent`] (what a read
//!   gives: the event plus [`EventMetadata`]).
//! - [`state`]: [`CallState`] and `apply`, the one fold used both live and on replay.
//! - [`listing`]: [`CallListing`], the small per-call row of the call list.
//! - [`command`]: [`Command`] and [`decide`], which validates a command against the state and
//!   yields the events to append, or a [`DomainError`].
//! - `testkit` (feature `testkit`): proptest strategies for valid event sequences.

pub mod command;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod listing;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use command::{Command, DomainError, decide};
pub use envelope::{EventMetadata, NewEvent, RecordedEvent};
pub use event::{CallEvent, DecodeError, EncodedEvent, decode, decode_str};
pub use ids::{
    ActorId, AgentId, AlertId, CallId, CardId, CorrelationId, EventId, GlobalPosition, IdError,
    LanguageTag, Role, RuleId, RulesetId, SegmentId, Seq, SuggestionId, TenantId, TokenId, TraceId,
};
pub use listing::CallListing;
pub use state::{CallState, CallStatus};
