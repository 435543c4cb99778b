//! The router's gRPC connections, with a call's response frames written by one system call.
//!
//! h2 sends a DATA frame larger than 256 bytes on a socket that takes vectored writes without
//! copying it, and must then write it out before it can queue anything else: an unstreamed
//! answer's HEADERS and DATA left in one write and its trailers (the gRPC status) in a second,
//! which the gateway often read with a second wake-up. Told that the socket takes no vectored
//! writes, h2 copies frames of up to 1 KiB into its own buffer instead, and this wrapper keeps what
//! h2 writes until h2 flushes, so a small answer leaves whole in one write, and a larger one in
//! no more writes than before. What it keeps is bounded ([`KEEP_AT_MOST`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Most bytes kept before they are written through.
const KEEP_AT_MOST: usize = 64 * 1024;

/// A connection whose writes wait for the next flush.
pub(crate) struct CoalescedWrites {
    inner: TcpStream,
    kept: Vec<u8>,
    /// How much of `kept` is already written.
    sent: usize,
}

impl CoalescedWrites {
    pub(crate) fn new(inner: TcpStream) -> Self {
        CoalescedWrites {
            inner,
            kept: Vec::new(),
            sent: 0,
        }
    }

    /// Writes out what is kept.
    fn poll_write_kept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.kept.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.kept[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.kept.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for CoalescedWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CoalescedWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.kept.len() + buf.len() > KEEP_AT_MOST {
            ready!(this.poll_write_kept(cx))?;
            if buf.len() > KEEP_AT_MOST {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
        }
        this.kept.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_kept(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_kept(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl Connected for CoalescedWrites {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_leave_at_the_flush_in_order_and_large_ones_go_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut w = CoalescedWrites::new(server);
        w.write_all(b"headers,").await.unwrap();
        w.write_all(b"data,").await.unwrap();
        assert_eq!(w.kept.len(), 13, "kept until the flush");
        w.write_all(b"trailers").await.unwrap();
        w.flush().await.unwrap();
        assert!(w.kept.is_empty());
        let big = vec![7u8; KEEP_AT_MOST + 10];
        w.write_all(&big).await.unwrap();
        w.shutdown().await.unwrap();
        let got = client.await.unwrap();
        assert_eq!(&got[..21], b"headers,data,trailers");
        assert_eq!(got.len(), 21 + big.len());
    }
}
