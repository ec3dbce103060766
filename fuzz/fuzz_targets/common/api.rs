//! What the `ws_message` and `ingest_body` targets check alike: client errors, validated
//! segments, and errors that never echo what the client sent.

use earshot::api::error::ApiError;
use earshot::api::ingest::{SegmentBody, validate_batch};
use serde_json::Value;

/// Small enough that the fuzzer reaches it, as the server's 4,000 is.
pub const MAX_CHARS: usize = 64;

pub fn check_error(e: &ApiError) {
    assert!(e.status.is_client_error(), "status {} for {e:?}", e.status);
    assert!(!e.code.is_empty() && !e.message.is_empty(), "{e:?}");
}

/// Every character but whitespace replaced: same length, same blankness, other content.
pub fn masked(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { c } else { 'x' })
        .collect()
}

fn same_error(a: &ApiError, b: &ApiError, what: &str) {
    check_error(a);
    assert_eq!(
        (a.status, a.code, &a.message, &a.field),
        (b.status, b.code, &b.message, &b.field),
        "{what}"
    );
}

/// Validates a batch, and the same batch with every text masked: validity and errors must
/// not depend on the text (`SegmentBody::validate`: errors "never echo the text").
pub fn check_segments(segments: Vec<SegmentBody>) {
    let masked_batch: Vec<SegmentBody> = segments
        .iter()
        .map(|s| SegmentBody {
            text: masked(&s.text),
            ..s.clone()
        })
        .collect();
    let chars: Vec<usize> = segments.iter().map(|s| s.text.chars().count()).collect();
    match (
        validate_batch(segments, MAX_CHARS),
        validate_batch(masked_batch, MAX_CHARS),
    ) {
        (Ok(ok), Ok(_)) => {
            for (s, chars) in ok.iter().zip(chars) {
                assert!(!s.text.trim().is_empty(), "a blank segment passed");
                assert!(chars <= MAX_CHARS, "{chars} characters passed");
                assert!(s.end_ms >= s.start_ms, "an end before the start passed");
                if let Some(c) = s.confidence {
                    assert!((0.0..=1.0).contains(&c), "confidence {c} passed");
                }
            }
        }
        (Err(a), Err(b)) => same_error(&a, &b, "the error depends on the text"),
        (a, b) => panic!("the text's content decided validity: {a:?} vs {b:?}"),
    }
}

/// Replaces every string value (not keys); `keep_tag` keeps the one that picks a WebSocket
/// message's type: the top-level `type`, or the first item of a top-level list (serde reads
/// an internally tagged enum from a list too).
pub fn mask_strings(v: &mut Value, top: bool, keep_tag: bool) {
    let keep = top && keep_tag;
    match v {
        Value::String(s) => *s = masked(s),
        Value::Array(items) => items
            .iter_mut()
            .skip(usize::from(keep))
            .for_each(|i| mask_strings(i, false, keep_tag)),
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if !(keep && k == "type") {
                    mask_strings(item, false, keep_tag);
                }
            }
        }
        _ => {}
    }
}

/// Parses the document as given (re-serialized) and with its string values masked: the same
/// outcome and, on error, the same error (`parse_json`: values are not echoed, "a client may
/// have put PII there").
pub fn check_blind_to_strings<T>(
    text: &str,
    keep_tag: bool,
    parse: impl Fn(&str) -> Result<T, ApiError>,
) {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let plain = value.to_string();
    mask_strings(&mut value, true, keep_tag);
    let masked = value.to_string();
    match (parse(&plain), parse(&masked)) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => {
            same_error(&a, &b, &format!("the error depends on a string in {plain}"))
        }
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            panic!("a string value decided the parse of {plain}: {e:?}")
        }
    }
}
