//! Reading response bodies as they arrive, without parsing them: did a frame carry answer text
//! (the time-to-first-content mark) and did the stream end properly (`[DONE]` for SSE,
//! `"done":true` for Ollama's NDJSON)? The answer text is a `"content"` string by default; the
//! other endpoints name their own key (`"text"`, `"delta"`, `"response"`, `"embedding"`) and, for
//! the Responses API's events, their own end marker (`response.completed`), through [`Markers`].
//!
//! A byte scan rather than a JSON parse keeps the load generator's own cost per chunk small and
//! the same for every target, so it does not blur the differences being measured.

/// The body format a target answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// One JSON document (`chat.completion`).
    Json,
    /// OpenAI server-sent events ending with `data: [DONE]`.
    Sse,
    /// Ollama NDJSON ending with a `"done":true` line.
    Ndjson,
}

impl Expect {
    fn end_marker(self) -> Option<&'static [u8]> {
        match self {
            Expect::Json => None,
            Expect::Sse => Some(b"[DONE]"),
            Expect::Ndjson => Some(b"\"done\":true"),
        }
    }
}

/// What marks answer content and the end of a body, when not the defaults of an [`Expect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Markers {
    /// `"KEY":` — its value is answer content when it is a non-empty string or array.
    content: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Markers {
    /// `content_key` names the JSON key holding the answer (default `content`); `end` replaces
    /// the format's end marker (JSON bodies have none).
    pub fn new(expect: Expect, content_key: Option<&str>, end: Option<&str>) -> Self {
        let key = content_key.unwrap_or("content");
        Markers {
            content: format!("\"{key}\":").into_bytes(),
            end: end
                .map(|e| e.as_bytes().to_vec())
                .or_else(|| expect.end_marker().map(<[u8]>::to_vec)),
        }
    }
}

/// Bytes kept from the previous frame so a marker split across two frames is still seen.
const CARRY: usize = 32;

/// Scans one response body frame by frame.
#[derive(Debug)]
pub struct BodyScan<'a> {
    content: &'a [u8],
    end: Option<&'a [u8]>,
    carry: Vec<u8>,
    /// A frame with non-empty `"content"` has been seen.
    pub saw_content: bool,
    /// The end marker has been seen (always true for [`Expect::Json`] once content is seen).
    pub saw_end: bool,
    /// Total body bytes.
    pub bytes: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `hay` holds `"content":` followed by a non-empty JSON string.
pub fn has_content(hay: &[u8]) -> bool {
    has_value(hay, b"\"content\":")
}

/// Whether `hay` holds `pat` (`"KEY":`) followed by a non-empty JSON string or array.
fn has_value(hay: &[u8], pat: &[u8]) -> bool {
    let mut from = 0;
    while let Some(pos) = find(&hay[from..], pat) {
        let mut j = from + pos + pat.len();
        while j < hay.len() && (hay[j] == b' ' || hay[j] == b'\t') {
            j += 1;
        }
        if j + 1 < hay.len()
            && ((hay[j] == b'"' && hay[j + 1] != b'"') || (hay[j] == b'[' && hay[j + 1] != b']'))
        {
            return true;
        }
        from += pos + 1;
    }
    false
}

impl BodyScan<'static> {
    /// A scan with the format's defaults: `"content"` strings, its own end marker.
    pub fn new(expect: Expect) -> Self {
        BodyScan {
            content: b"\"content\":",
            end: expect.end_marker(),
            carry: Vec::with_capacity(2 * CARRY),
            saw_content: false,
            saw_end: expect.end_marker().is_none(),
            bytes: 0,
        }
    }
}

impl<'a> BodyScan<'a> {
    /// A scan with other markers (see [`Markers`]).
    pub fn with(markers: &'a Markers) -> Self {
        BodyScan {
            content: &markers.content,
            end: markers.end.as_deref(),
            carry: Vec::with_capacity(2 * CARRY),
            saw_content: false,
            saw_end: markers.end.is_none(),
            bytes: 0,
        }
    }

    /// Feeds one frame. Returns true when this frame is the first to carry content.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        self.bytes += data.len();
        let mut first = false;
        let seam = self.seam(data);
        if !self.saw_content && (has_value(data, self.content) || has_value(&seam, self.content)) {
            self.saw_content = true;
            first = true;
        }
        if !self.saw_end
            && let Some(m) = self.end
            && (find(data, m).is_some() || find(&seam, m).is_some())
        {
            self.saw_end = true;
        }
        self.carry.clear();
        let keep = data.len().min(CARRY);
        self.carry.extend_from_slice(&data[data.len() - keep..]);
        first
    }

    /// The end of the previous frame joined to the start of this one.
    fn seam(&self, data: &[u8]) -> Vec<u8> {
        let mut seam = Vec::with_capacity(self.carry.len() + CARRY);
        seam.extend_from_slice(&self.carry);
        seam.extend_from_slice(&data[..data.len().min(CARRY)]);
        seam
    }

    /// The body was a complete, successful answer.
    pub fn complete(&self) -> bool {
        self.saw_content && self.saw_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_detection() {
        assert!(has_content(br#"{"delta":{"content":"Hi"}}"#));
        assert!(has_content(
            br#"{"message":{"role":"assistant","content": "x"}}"#
        ));
        assert!(!has_content(
            br#"{"delta":{"role":"assistant","content":""}}"#
        ));
        assert!(!has_content(br#"{"delta":{"content":null}}"#));
        assert!(has_content(br#"{"content":"","x":1,"content":"y"}"#));
    }

    #[test]
    fn sse_stream_with_split_markers() {
        let mut s = BodyScan::new(Expect::Sse);
        assert!(!s.feed(
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
        ));
        assert!(!s.feed(b"data: {\"choices\":[{\"delta\":{\"cont"));
        assert!(s.feed(b"ent\":\"Hel\"}}]}\n\n"));
        assert!(!s.complete());
        s.feed(b"data: [DO");
        s.feed(b"NE]\n\n");
        assert!(s.complete());
    }

    #[test]
    fn ndjson_and_json() {
        let mut s = BodyScan::new(Expect::Ndjson);
        s.feed(b"{\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n");
        assert!(!s.complete());
        s.feed(b"{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true}\n");
        assert!(s.complete());
        let mut j = BodyScan::new(Expect::Json);
        j.feed(br#"{"choices":[{"message":{"content":"ok"}}]}"#);
        assert!(j.complete());
        let mut e = BodyScan::new(Expect::Json);
        e.feed(br#"{"error":{"message":"nope"}}"#);
        assert!(!e.complete());
    }

    #[test]
    fn other_endpoints_markers() {
        // Embeddings: a non-empty array is the answer; `"embedding"` does not match `"embeddings"`.
        let m = Markers::new(Expect::Json, Some("embedding"), None);
        let mut s = BodyScan::with(&m);
        s.feed(br#"{"data":[{"embedding":[0.1,0.2]}]}"#);
        assert!(s.complete());
        let mut s = BodyScan::with(&m);
        s.feed(br#"{"embeddings":[[0.1]],"embedding":[]}"#);
        assert!(!s.complete());
        // Responses events: text deltas, ended by response.completed (no [DONE]).
        let m = Markers::new(Expect::Sse, Some("delta"), Some("response.completed"));
        let mut s = BodyScan::with(&m);
        assert!(!s.feed(b"event: response.created\ndata: {\"type\":\"response.created\"}\n\n"));
        assert!(s.feed(b"event: response.output_text.delta\ndata: {\"delta\":\"Hi\"}\n\n"));
        assert!(!s.complete());
        s.feed(b"event: response.comp");
        s.feed(b"leted\ndata: {}\n\n");
        assert!(s.complete());
        // Ollama's /api/generate: `"response"` text, `"done":true` from the format.
        let m = Markers::new(Expect::Ndjson, Some("response"), None);
        let mut s = BodyScan::with(&m);
        s.feed(b"{\"response\":\"a\",\"done\":true}\n");
        assert!(s.complete());
    }
}
