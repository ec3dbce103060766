//! `--dump-views DIR`: each call's view, as its subscriber received it, written to
//! `DIR/<call_id>.jsonl` for a harness to hold against the log (`earshot-chaos` does).
//!
//! **Invariant:** a view file holds exactly the `event` messages the subscriber applied, as
//! received, one per line, in the order it applied them: every event whose seq was above
//! all it had seen before on that call (across reconnects). A message at or below that seq
//! (an overlap of a resume) is not written; the report counts it as duplicated. Lines are
//! written as events arrive, so a replay that fails still leaves the view it had.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use domain::CallId;

use super::link::EventMsg;

/// The view file of one call.
pub struct ViewFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// The first write error: reported by [`ViewFile::finish`], not by every event.
    failed: Option<std::io::Error>,
}

impl ViewFile {
    /// `DIR/<call>.jsonl`, created (or truncated).
    pub fn create(dir: &Path, call: CallId) -> std::io::Result<Self> {
        let path = dir.join(format!("{call}.jsonl"));
        let out = BufWriter::new(File::create(&path)?);
        Ok(Self {
            path,
            out,
            failed: None,
        })
    }

    pub fn record(&mut self, e: &EventMsg) {
        if self.failed.is_some() {
            return;
        }
        let line = e.raw.trim_end();
        if let Err(err) = writeln!(self.out, "{line}") {
            self.failed = Some(err);
        }
    }

    /// Flushes the file; an error names it.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let flushed = self.out.flush();
        match self.failed.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "--dump-views: cannot write {}: {e}",
                self.path.display()
            )),
        }
    }
}

/// Creates `dir` if need be; an error names the option.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("--dump-views: cannot create {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> EventMsg {
        EventMsg {
            seq,
            kind: "segment_added".into(),
            event: None,
            raw: format!("{{\"type\": \"event\", \"seq\": {seq}}}\n"),
        }
    }

    #[test]
    fn one_line_per_event_as_received() {
        let dir = tempfile::tempdir().unwrap();
        let call = CallId::new();
        let mut v = ViewFile::create(dir.path(), call).unwrap();
        v.record(&msg(1));
        v.record(&msg(2));
        v.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join(format!("{call}.jsonl"))).unwrap();
        assert_eq!(
            text,
            "{\"type\": \"event\", \"seq\": 1}\n{\"type\": \"event\", \"seq\": 2}\n"
        );
    }
}
