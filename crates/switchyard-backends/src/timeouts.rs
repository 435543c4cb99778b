//! Deadlines on an attempt's event stream: first token, silence between tokens, whole attempt.
//!
//! A backend that stops talking is as dead as one that closed the connection; turning silence
//! into a [`FailureClass::Timeout`] lets the router treat both the same way.

use futures::StreamExt;
use std::time::Duration;
use switchyard_core::FailureClass;
use switchyard_core::config::Timeouts;
use tokio::time::Instant;

use crate::{BackendError, BackendEvent, EventStream};

/// Wraps `inner` so that it ends with a timeout error when the first event does not arrive by
/// `started + first_byte`, when two events are more than `idle` apart, or at `started + total`.
pub(crate) fn with_deadlines(
    mut inner: EventStream,
    started: Instant,
    t: &Timeouts,
) -> EventStream {
    let first_byte = t.first_byte;
    let idle = t.idle;
    let total_deadline = started + t.total;
    Box::pin(async_stream::stream! {
        let mut deadline = (started + first_byte).min(total_deadline);
        // One timer for the whole stream, moved forward after each event (not one per token).
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(timer);
        let mut first = true;
        loop {
            let next = tokio::select! {
                biased;
                item = inner.next() => Some(item),
                _ = &mut timer => None,
            };
            match next {
                Some(Some(item)) => {
                    let is_err = item.is_err();
                    let is_done = matches!(item, Ok(BackendEvent::Done(_)));
                    yield item;
                    if is_err || is_done {
                        break;
                    }
                    first = false;
                    deadline = (Instant::now() + idle).min(total_deadline);
                    timer.as_mut().reset(deadline);
                }
                Some(None) => break,
                None => {
                    let what = if Instant::now() >= total_deadline {
                        format!("attempt exceeded its total timeout of {:?}", total_deadline - started)
                    } else if first {
                        format!("no first token within {}", fmt(first_byte))
                    } else {
                        format!("no token for {}", fmt(idle))
                    };
                    yield Err(BackendError::new(FailureClass::Timeout, what));
                    break;
                }
            }
        }
    })
}

fn fmt(d: Duration) -> String {
    format!("{:?}", d)
}
