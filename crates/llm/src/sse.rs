//! Incremental Server-Sent-Events parsing: feed body chunks as they arrive, get back the
//! `data` of each complete event. Lines end in `\n`, `\r\n` or `\r`; a chunk may end
//! anywhere (inside a line, a `\r\n`, or a UTF-8 sequence), so bytes are kept until their
//! line is complete. Comment lines (`: …`) and fields other than `data` are ignored.

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes of the line not yet terminated.
    line: Vec<u8>,
    /// `data` lines of the event being built, joined by `\n`.
    data: Option<String>,
    /// The previous chunk ended in `\r`: a leading `\n` of the next one ends nothing.
    after_cr: bool,
}

impl SseParser {
    /// Feeds one chunk; returns the data of every event it completed, in order.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, std::str::Utf8Error> {
        let mut events = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, &mut events)?;
                }
                _ => self.line.push(b),
            }
        }
        Ok(events)
    }

    /// The body ended: completes a last event not followed by a blank line.
    pub(crate) fn finish(&mut self) -> Result<Option<String>, std::str::Utf8Error> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut events)?;
        }
        Ok(events.pop().or_else(|| self.data.take()))
    }

    fn line_done(
        &mut self,
        line: &[u8],
        events: &mut Vec<String>,
    ) -> Result<(), std::str::Utf8Error> {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(data);
            }
            return Ok(());
        }
        let line = std::str::from_utf8(line)?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SseParser;

    fn all_at_every_split(body: &[u8]) -> Vec<Vec<String>> {
        (0..=body.len())
            .map(|i| {
                let mut p = SseParser::default();
                let mut out = p.push(&body[..i]).unwrap();
                out.extend(p.push(&body[i..]).unwrap());
                out.extend(p.finish().unwrap());
                out
            })
            .collect()
    }

    #[test]
    fn events_survive_any_split() {
        let body = ": keep-alive\r\ndata: {\"a\":\"é€\"}\r\n\r\ndata: x\ndata: y\n\nevent: e\ndata:[DONE]\n\n";
        for got in all_at_every_split(body.as_bytes()) {
            assert_eq!(got, ["{\"a\":\"é€\"}", "x\ny", "[DONE]"]);
        }
    }

    #[test]
    fn unterminated_last_event_is_returned_by_finish() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: a\n\ndata: b").unwrap() == ["a"]);
        assert_eq!(p.finish().unwrap().as_deref(), Some("b"));
        assert_eq!(p.finish().unwrap(), None);
    }

    #[test]
    fn bare_cr_ends_lines() {
        let mut p = SseParser::default();
        assert_eq!(p.push(b"data: a\r\rdata: b\r\r").unwrap(), ["a", "b"]);
    }
}
