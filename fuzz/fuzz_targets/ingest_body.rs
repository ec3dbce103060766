//! `POST /api/v1/calls/{id}/segments` bodies through `earshot::api::ingest::parse_body` (one
//! segment or `{"segments": [...]}`) and `validate_batch`, as the handler runs them.
//!
//! Asserts the same as `ws_message`: nothing panics; errors are 4xx with a code and a
//! message; validated segments hold their limits; neither validation errors nor parse errors
//! depend on the strings the client sent (they never echo a value).

#![no_main]

#[path = "common/api.rs"]
mod api;

use earshot::api::ingest::parse_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_body(text.as_bytes()) {
        Ok(segments) => api::check_segments(segments),
        Err(e) => api::check_error(&e),
    }
    api::check_blind_to_strings(text, false, |t| parse_body(t.as_bytes()));
});
