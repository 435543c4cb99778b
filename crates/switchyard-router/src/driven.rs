//! The event stream of one chat request, with the request's work driven by whoever reads it.
//!
//! A spawned task per request costs more than its work on a lightly loaded box: the spawn and
//! every event handed across tasks wake the runtime's other worker, which finds nothing to do
//! and parks again (several futex and eventfd wake-ups per request). Here the reader's own task
//! polls the work before each read, so one request's gateway side and router side run as one
//! task.
//!
//! The work keeps the semantics a task gave it: if the reader goes away before the work is
//! done, the unfinished work is spawned with the channel closed, so it sees the caller leave,
//! cancels the backend request and still writes the usage record.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

/// Events from `rx`, with `work` (the sender's side) polled by the reader.
pub(crate) struct DrivenStream<T> {
    work: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    rx: mpsc::Receiver<T>,
}

impl<T> DrivenStream<T> {
    pub(crate) fn new(
        work: impl Future<Output = ()> + Send + 'static,
        rx: mpsc::Receiver<T>,
    ) -> Self {
        DrivenStream {
            work: Some(Box::pin(work)),
            rx,
        }
    }
}

impl<T> Stream for DrivenStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        let mut worked = false;
        loop {
            // While the work runs, the channel is read without registering a waker: the work is
            // its only writer and is polled right here, so a write needs no wake-up (a wake-up
            // of this running task would be a yield, which also rouses the idle worker).
            match this.rx.try_recv() {
                Ok(item) => return Poll::Ready(Some(item)),
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) if worked => {
                    // Polled and still at work with nothing written: its own wake-ups
                    // (backend I/O, timers, channel room) bring this task back.
                    return Poll::Pending;
                }
                Err(TryRecvError::Empty) => {}
            }
            let Some(work) = this.work.as_mut() else {
                return this.rx.poll_recv(cx);
            };
            if work.as_mut().poll(cx).is_ready() {
                this.work = None;
            } else {
                worked = true;
            }
        }
    }
}

impl<T> Drop for DrivenStream<T> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        // The caller left mid-request: let the work see it and finish its accounting.
        self.rx.close();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(work);
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn the_reader_drives_the_work_and_gets_every_event() {
        let (tx, rx) = mpsc::channel(2);
        let work = async move {
            for i in 0..10u32 {
                if tx.send(i).await.is_err() {
                    return;
                }
            }
        };
        let got: Vec<u32> = DrivenStream::new(work, rx).collect().await;
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn work_left_behind_by_a_reader_sees_the_channel_closed_and_finishes() {
        let (tx, rx) = mpsc::channel(1);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let saw_close = Arc::new(AtomicBool::new(false));
        let flag = saw_close.clone();
        let work = async move {
            let _ = tx.send(1u32).await;
            tx.closed().await;
            flag.store(true, Ordering::SeqCst);
            let _ = done_tx.send(());
        };
        let mut events = DrivenStream::new(work, rx);
        assert_eq!(events.next().await, Some(1));
        drop(events);
        done_rx
            .await
            .expect("the work ran to its end after the reader left");
        assert!(saw_close.load(Ordering::SeqCst));
    }
}
