//! WebSocket client messages through `earshot::api::ws::parse_client_message` (the function
//! the connection handler calls) and, for `segments` messages, `validate_batch`.
//!
//! Asserts: nothing panics; every error is a client error (4xx) with a code and a message;
//! a validated segment has non-blank text within the length limit, an end no earlier than
//! its start and a confidence in 0..=1; errors never echo what the client sent, which is what
//! `parse_json` and `SegmentBody::validate` promise ("a client may have put PII there"):
//! - validation errors are the same whatever the segments' text, given its length and
//!   whether it is blank;
//! - parse errors are the same whatever the strings in the message (other than the tag that
//!   picks the message type): keys, numbers and structure decide them.

#![no_main]

#[path = "common/api.rs"]
mod api;

use earshot::api::ws::{ClientMessage, parse_client_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_message(text) {
        Ok(ClientMessage::Segments { segments, .. }) => api::check_segments(segments),
        Ok(_) => {}
        Err(e) => api::check_error(&e),
    }
    api::check_blind_to_strings(text, true, parse_client_message);
});
