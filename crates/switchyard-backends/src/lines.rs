//! Line framing for streamed bodies: NDJSON (Ollama) and SSE (`data: …` lines).
//!
//! Network chunks do not respect line boundaries; this buffers the tail of each chunk and yields
//! complete lines only, without copying the parts already split.

use bytes::{Buf, Bytes, BytesMut};

/// Upper bound for one line; a longer one means the backend is not speaking the protocol.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct LineBuffer {
    buf: BytesMut,
}

impl LineBuffer {
    pub(crate) fn push(&mut self, chunk: &Bytes) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line without its `\n` (and `\r`), if any.
    pub(crate) fn next_line(&mut self) -> Option<Bytes> {
        let pos = self.buf.iter().position(|&b| b == b'\n')?;
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
        let rest = self.buf.split().freeze();
        Some(rest)
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.remaining()
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
}
