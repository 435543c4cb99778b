//! The log writer thread's output: buffered, and lingering briefly after each write-out so lines
//! logged meanwhile go out together.
//!
//! `tracing-appender`'s worker thread blocks on its channel when it has nothing to write, and
//! every line logged then has to wake it: a futex wake-up, two context switches and a `write(2)`
//! per request at full load, about 8 % of `serve`'s CPU in the benchmark's profile. The worker
//! drains whatever is queued and then flushes its writer; this writer turns that flush into one
//! `write(2)` of everything drained, then sleeps [`LINGER`] before the worker looks at the
//! channel again. A lone line is still written at once; under load the thread wakes at most
//! once per [`LINGER`] instead of once per line.

use std::io::{self, BufWriter, Write};
use std::time::Duration;

/// Pause after each write-out. Lines that arrive during it wait at most this long.
pub(crate) const LINGER: Duration = Duration::from_millis(2);

/// Buffer of the writer (a larger burst is written as it fills).
const BUFFER: usize = 64 * 1024;

/// Wraps the log thread's destination (stderr).
pub(crate) struct Linger<W: Write> {
    out: BufWriter<W>,
    pause: Duration,
}

impl<W: Write> Linger<W> {
    pub(crate) fn new(out: W) -> Self {
        Self::with_pause(out, LINGER)
    }

    fn with_pause(out: W, pause: Duration) -> Self {
        Linger {
            out: BufWriter::with_capacity(BUFFER, out),
            pause,
        }
    }
}

impl<W: Write> Write for Linger<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Only the log thread calls this (after draining its queue), never a request's thread.
        let wrote = !self.out.buffer().is_empty();
        self.out.flush()?;
        if wrote {
            std::thread::sleep(self.pause);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A destination that counts its `write` calls.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            *self.writes.lock().unwrap() += 1;
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_destination_only_on_flush_and_together() {
        let sink = Sink::default();
        let mut w = Linger::with_pause(sink.clone(), Duration::ZERO);
        for i in 0..100 {
            writeln!(w, "line {i}").unwrap();
        }
        assert_eq!(*sink.writes.lock().unwrap(), 0);
        w.flush().unwrap();
        assert_eq!(*sink.writes.lock().unwrap(), 1);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert_eq!(text.lines().last(), Some("line 99"));
    }

    #[test]
    fn a_burst_through_the_log_thread_arrives_whole_and_in_order() {
        use tracing_appender::non_blocking::NonBlockingBuilder;
        let sink = Sink::default();
        let (mut writer, guard) = NonBlockingBuilder::default()
            .lossy(false)
            .finish(Linger::new(sink.clone()));
        // Were the pause paid per line rather than per drained batch, these would take 20 s and
        // the guard (which waits 1 s for the thread) would lose most of them.
        for i in 0..10_000 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines.first(), Some(&"line 0"));
        assert_eq!(lines.last(), Some(&"line 9999"));
        assert!(*sink.writes.lock().unwrap() < 10_000);
    }
}
