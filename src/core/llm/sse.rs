//! An incremental Server-Sent Events parser (the WHATWG event-stream format).
//!
//! Bytes arrive in arbitrary chunks: a chunk may end in the middle of a line, in the middle
//! of a UTF-8 character, or between the `\r` and `\n` of a CRLF. The parser buffers only the
//! current unfinished line, so memory stays bounded by the longest line, and it never
//! panics on bad input: invalid UTF-8 is replaced, unknown fields are ignored.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (empty means the default, `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
    /// The `retry:` field in milliseconds, when valid.
    pub retry_ms: Option<u64>,
}

/// Parser state. Feed chunks with [`SseParser::feed`]; call [`SseParser::finish`] at the
/// end of the stream to learn whether it stopped mid-event.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next one belongs to it.
    after_cr: bool,
    /// Only the very first line may start with a byte-order mark.
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry_ms: Option<u64>,
    bytes_seen: u64,
}

/// What remained when the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// Bytes of a line that had no terminator.
    pub partial_line: usize,
    /// An event had fields but no blank line to dispatch it.
    pub pending_event: bool,
}

impl SseParser {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the line being assembled (a stream that never ends a line grows this).
    #[must_use]
    pub fn pending_line_len(&self) -> usize {
        self.line.len()
    }

    /// Total bytes fed so far.
    #[must_use]
    pub fn bytes_seen(&self) -> u64 {
        self.bytes_seen
    }

    /// Parses `chunk` and pushes every event it completes into `out`.
    pub fn feed_into(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        self.bytes_seen += chunk.len() as u64;
        let mut rest = chunk;
        // An empty chunk between the `\r` and the `\n` of a CRLF must not forget the `\r`
        // (found by fuzzing: the `\n` then read as a blank line and dispatched early).
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            let is_cr = tail[0] == b'\r';
            rest = &tail[1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.process_line(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
                self.line = line;
                self.line.clear();
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// Parses `chunk` and returns the events it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out);
        out
    }

    /// Ends the stream. Per the format, an event without its terminating blank line is
    /// dropped; the answer says whether that happened so callers can report truncation.
    pub fn finish(&mut self) -> Option<Unfinished> {
        let partial_line = self.line.len();
        let pending_event = self.has_data || !self.event.is_empty();
        self.line.clear();
        self.reset_event();
        (partial_line > 0 || pending_event).then_some(Unfinished {
            partial_line,
            pending_event,
        })
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) {
        let mut line = raw;
        if !self.started {
            self.started = true;
            if let Some(stripped) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = stripped;
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" => {
                if let Ok(ms) = std::str::from_utf8(value).unwrap_or("").parse::<u64>() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if !self.has_data {
            // The format dispatches nothing for an event without data.
            self.event.clear();
            return;
        }
        out.push(SseEvent {
            event: std::mem::take(&mut self.event),
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
            retry_ms: self.retry_ms,
        });
        self.has_data = false;
    }

    fn reset_event(&mut self) {
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> (Vec<SseEvent>, Option<Unfinished>) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.feed(c));
        }
        (out, p.finish())
    }

    #[test]
    fn basic_events_and_multiline_data() {
        let (ev, rest) = parse_all(&[b"event: a\ndata: one\ndata: two\n\ndata: three\n\n"]);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event, "a");
        assert_eq!(ev[0].data, "one\ntwo");
        assert_eq!(ev[1].event, "");
        assert_eq!(ev[1].data, "three");
        assert!(rest.is_none());
    }

    #[test]
    fn crlf_split_between_chunks_and_comments() {
        let (ev, rest) = parse_all(&[b": ping\r", b"\ndata:x\r", b"\n\r", b"\ndata: y\r\r"]);
        assert_eq!(
            ev.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert!(rest.is_none());
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo €\n\n".as_bytes();
        let (ev, _) = parse_all(&[&text[..8], &text[8..14], &text[14..]]);
        assert_eq!(ev[0].data, "héllo €");
    }

    #[test]
    fn bom_id_retry_and_unknown_fields() {
        let (ev, _) = parse_all(&[b"\xEF\xBB\xBFid: 7\nretry: 1500\nfoo: bar\ndata\n\n"]);
        assert_eq!(ev[0].id.as_deref(), Some("7"));
        assert_eq!(ev[0].retry_ms, Some(1500));
        assert_eq!(ev[0].data, "");
    }

    #[test]
    fn truncated_stream_is_reported() {
        let (ev, rest) = parse_all(&[b"data: complete\n\ndata: {\"half"]);
        assert_eq!(ev.len(), 1);
        let rest = rest.unwrap();
        assert!(rest.partial_line > 0);
        let (_, rest) = parse_all(&[b"data: no blank line\n"]);
        assert!(rest.unwrap().pending_event);
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let (ev, _) = parse_all(&[b"data: \xff\xfe\n\n"]);
        assert_eq!(ev.len(), 1);
    }

    #[test]
    fn an_empty_chunk_inside_a_crlf_keeps_the_line_together() {
        let (ev, _) = parse_all(&[b"event: a\r", b"", b"\ndata: x\r\n\r\n"]);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].event.as_str(), ev[0].data.as_str()), ("a", "x"));
    }

    proptest! {
        /// However a stream is split into chunks, the events are the same.
        #[test]
        fn chunking_does_not_change_events(split in proptest::collection::vec(1usize..17, 1..40)) {
            let stream = b"event: a\r\ndata: one\r\ndata: tw\xC3\xA9\r\n\r\n: c\ndata: x\n\nid: 3\rdata: y\r\r".to_vec();
            let (whole, _) = parse_all(&[&stream]);
            let mut p = SseParser::new();
            let mut got = Vec::new();
            let mut at = 0;
            for n in split.iter().cycle() {
                if at >= stream.len() { break; }
                let end = (at + n).min(stream.len());
                got.extend(p.feed(&stream[at..end]));
                at = end;
            }
            prop_assert_eq!(whole, got);
        }
    }
}
