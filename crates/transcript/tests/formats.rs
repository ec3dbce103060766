//! Every format, on the real files: the project's transcripts and the shared data sets.

use std::path::{Path, PathBuf};

use domain::event::Speaker;
use transcript::{Format, TranscriptError, parse};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared() -> PathBuf {
    let dir = repo().join("../shared/data");
    assert!(
        dir.is_dir(),
        "the shared data sets must sit beside the checkout: {}",
        dir.display()
    );
    dir
}

#[test]
fn the_projects_transcripts_parse() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("transcripts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let t = parse(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(t.segments.len() >= 6, "{}", path.display());
            assert!(
                t.segments
                    .windows(2)
                    .all(|w| w[0].start_ms <= w[1].start_ms)
            );
            assert!(t.segments.iter().any(|s| s.speaker == Speaker::Agent));
            assert!(t.segments.iter().any(|s| s.speaker == Speaker::Customer));
            n += 1;
        }
    }
    assert_eq!(n, 5);
    let t = parse(&std::fs::read(repo().join("transcripts/hvac-booking-guarantee.json")).unwrap())
        .unwrap();
    let guarantee = t
        .segments
        .iter()
        .find(|s| s.text.contains("I guarantee"))
        .unwrap();
    assert_eq!(guarantee.speaker, Speaker::Agent);
    assert!(
        (12_000..=18_000).contains(&guarantee.start_ms),
        "about 15 s in: {}",
        guarantee.start_ms
    );
}

#[test]
fn harper_valley_calls_parse() {
    let dir = shared().join("harper-valley/transcript");
    let mut files = 0;
    let mut segments = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(transcript::detect(&value).unwrap(), Format::HarperValley);
        let t = parse(&bytes).unwrap();
        assert!(
            t.segments
                .iter()
                .all(|s| !s.text.contains('[') && !s.text.contains('~'))
        );
        assert!(
            t.segments
                .windows(2)
                .all(|w| w[0].start_ms <= w[1].start_ms)
        );
        segments += t.segments.len();
        files += 1;
    }
    assert_eq!(files, 15);
    // 302 utterances; 78 of them hold only noise tags, cut-off words or nothing.
    assert_eq!(segments, 224);
}

#[test]
fn abcd_dialogues_parse() {
    let bytes = std::fs::read(shared().join("abcd/abcd_sample.json")).unwrap();
    let t = parse(&bytes).unwrap();
    assert_eq!(t.title, "ABCD conversation 3592");
    assert_eq!(t.segments[0].text, "Hi!");
    assert_eq!(t.segments[0].speaker, Speaker::Agent);
    assert!(t.segments.iter().all(|s| s.end_ms > s.start_ms));
    assert!(t.segments.windows(2).all(|w| w[0].end_ms < w[1].start_ms));
}

#[test]
fn bad_transcripts_say_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        ("not json", "not JSON"),
        ("42", "not a transcript this tool knows"),
        (
            r#"{"title":"x","segments":[]}"#,
            "segments: must not be empty",
        ),
        (
            r#"{"title":"x","segments":[{"speaker":"robot","text":"hi","start_ms":0,"end_ms":1}]}"#,
            "unknown variant `robot`",
        ),
        (
            r#"{"title":"x","segments":[{"speaker":"agent","text":"hi","start_ms":5,"end_ms":1}]}"#,
            "segments[0].end_ms",
        ),
        (
            r#"{"title":"x","segments":[{"speaker":"agent","text":"hi","start_ms":0,"end_ms":1,"mood":"happy"}]}"#,
            "unknown field `mood`",
        ),
        (
            r#"{"title":"x","segments":[{"id":"a","speaker":"agent","text":"hi","start_ms":0,"end_ms":1},{"id":"a","speaker":"agent","text":"yo","start_ms":2,"end_ms":3}]}"#,
            "appears twice",
        ),
        (
            r#"[{"speaker_role":"pilot","human_transcript":"hi","index":1,"start_ms":0,"duration_ms":5}]"#,
            "unknown speaker_role",
        ),
        (r#"[{"original":[["agent"]]}]"#, "original[0]"),
    ];
    for (input, want) in cases {
        let err: TranscriptError = parse(input.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(want), "{input}: {err}");
    }
}
