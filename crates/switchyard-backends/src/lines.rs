//! Line framing for streamed bodies: NDJSON (Ollama) and SSE (`data: …` lines).
//!
//! Network chunks do not respect line boundaries; this buffers the tail of each chunk and yields
//! complete lines only, without copying the parts already split. Each byte is scanned for the
//! newline once: a line that never ends costs linear time up to the 16 MiB cut, not a rescan of
//! the whole buffer per chunk.

use bytes::{Buf, Bytes, BytesMut};

/// Upper bound for one line; a longer one means the backend is not speaking the protocol.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct LineBuffer {
    buf: BytesMut,
    /// Leading bytes of `buf` already known to hold no `\n`.
    scanned: usize,
}

impl LineBuffer {
    pub(crate) fn push(&mut self, chunk: &Bytes) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line without its `\n` (and `\r`), if any.
    pub(crate) fn next_line(&mut self) -> Option<Bytes> {
        let Some(found) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = self.buf.len();
            return None;
        };
        let pos = self.scanned + found;
        self.scanned = 0;
        let mut line = self.buf.split_to(pos + 1).freeze();
        line.truncate(pos);
        if line.last() == Some(&b'\r') {
            line.truncate(pos - 1);
        }
        Some(line)
    }

    /// Whatever is left after the stream ended (a last line without `\n`).
    pub(crate) fn take_rest(&mut self) -> Option<Bytes> {
        if self.buf.is_empty() {
            return None;
        }
        self.scanned = 0;
        let rest = self.buf.split().freeze();
        Some(rest)
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.remaining()
    }

    /// Bytes examined for a newline so far (for the linearity test).
    #[cfg(test)]
    fn scanned(&self) -> usize {
        self.scanned
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn splits_across_chunks() {
        let mut b = LineBuffer::default();
        b.push(&Bytes::from_static(b"{\"a\":1}\n{\"b\""));
        assert_eq!(b.next_line().unwrap(), Bytes::from_static(b"{\"a\":1}"));
        assert!(b.next_line().is_none());
        b.push(&Bytes::from_static(b":2}\r\n\n"));
        assert_eq!(b.next_line().unwrap(), Bytes::from_static(b"{\"b\":2}"));
        assert_eq!(b.next_line().unwrap(), Bytes::new());
        assert!(b.take_rest().is_none());
    }

    #[test]
    fn a_line_that_never_ends_is_scanned_once() {
        // Counts the bytes compared: with a rescan per chunk, 1,000 chunks of 1 KiB cost
        // ~500 MB of comparisons; scanned once, 1 MiB.
        let mut b = LineBuffer::default();
        let chunk = Bytes::from(vec![b'x'; 1024]);
        let mut compared = 0usize;
        for _ in 0..1000 {
            let before = b.scanned();
            b.push(&chunk);
            assert!(b.next_line().is_none());
            compared += b.scanned() - before;
        }
        assert_eq!(compared, 1000 * 1024);
        b.push(&Bytes::from_static(b"y\nz"));
        let line = b.next_line().unwrap();
        assert_eq!(line.len(), 1000 * 1024 + 1);
        assert!(line.ends_with(b"xy"));
        assert_eq!(b.take_rest().unwrap(), Bytes::from_static(b"z"));
    }
}
