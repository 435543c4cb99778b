//! The router's capacity queue: where a request waits when every fitting deployment of its
//! preferred group is at capacity, instead of piling onto a backend's own queue.
//!
//! One queue per group (keyed by the group's name, so a reloaded configuration keeps it),
//! bounded by `routing.max_queue_depth` and `routing.queue_timeout`. The next free slot goes to
//! the waiting request with the highest priority; within a priority, to the one whose key has
//! the fewest requests of this group in service (so one key's burst takes turns with the others
//! instead of going first as a block); then first come, first served. A waiting request leaves
//! at once when its caller goes away (its event channel closes), and may spill to a later group
//! of its chain after the group's `spill_after` (see `spill`).
//!
//! Waiting requests are woken when this replica frees a slot or the queue changes, and look
//! again every `routing.queue_recheck` for slots other replicas freed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Every group's queue on this replica.
#[derive(Default)]
pub struct Queues {
    inner: Mutex<State>,
    /// Woken when a waiter leaves or a request in service ends.
    pub(crate) changed: Notify,
}

#[derive(Default)]
struct State {
    next_id: u64,
    groups: HashMap<String, GroupQueue>,
}

#[derive(Default)]
struct GroupQueue {
    waiters: Vec<Waiter>,
    /// Requests of this group in service (admitted, not yet ended), per key.
    in_service: HashMap<String, u32>,
}

struct Waiter {
    id: u64,
    priority: i32,
    key: String,
}

impl GroupQueue {
    /// The waiter the next slot goes to.
    fn head(&self) -> Option<u64> {
        self.waiters
            .iter()
            .min_by_key(|w| {
                (
                    std::cmp::Reverse(w.priority),
                    self.in_service.get(&w.key).copied().unwrap_or(0),
                    w.id,
                )
            })
            .map(|w| w.id)
    }
}

/// The queue was at `routing.max_queue_depth`.
#[derive(Debug)]
pub(crate) struct QueueFull {
    pub depth: usize,
}

/// A place in a group's queue; dropping it leaves the queue.
pub(crate) struct Ticket {
    queues: Arc<Queues>,
    group: String,
    id: u64,
    pub(crate) since: Instant,
}

/// A request of `key` in service in `group`, counted for the group's fair share until dropped.
pub(crate) struct Share {
    queues: Arc<Queues>,
    group: String,
    key: String,
}

impl Queues {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests waiting in `group`'s queue.
    pub(crate) fn depth(&self, group: &str) -> usize {
        self.lock().groups.get(group).map_or(0, |g| g.waiters.len())
    }

    /// Joins `group`'s queue, unless `max_depth` requests already wait there.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        group: &str,
        priority: i32,
        key: &str,
        max_depth: u32,
    ) -> Result<Ticket, QueueFull> {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        let q = s.groups.entry(group.to_owned()).or_default();
        if q.waiters.len() >= max_depth as usize {
            return Err(QueueFull {
                depth: q.waiters.len(),
            });
        }
        q.waiters.push(Waiter {
            id,
            priority,
            key: key.to_owned(),
        });
        drop(s);
        // A newcomer may be the new head (a higher priority), and slots may have been freed
        // by another replica since the last look: let the waiters look again.
        self.changed.notify_waiters();
        Ok(Ticket {
            queues: self.clone(),
            group: group.to_owned(),
            id,
            since: Instant::now(),
        })
    }

    /// Counts a request of `key` in service in `group` (for the fair share) until the returned
    /// share is dropped.
    pub(crate) fn serve(self: &Arc<Self>, group: &str, key: &str) -> Share {
        let mut s = self.lock();
        let q = s.groups.entry(group.to_owned()).or_default();
        *q.in_service.entry(key.to_owned()).or_default() += 1;
        Share {
            queues: self.clone(),
            group: group.to_owned(),
            key: key.to_owned(),
        }
    }
}

impl Ticket {
    /// Whether this request is the one the next free slot of its group goes to.
    pub(crate) fn is_head(&self) -> bool {
        self.queues
            .lock()
            .groups
            .get(&self.group)
            .and_then(GroupQueue::head)
            == Some(self.id)
    }

    /// How long it has waited.
    pub(crate) fn waited(&self) -> Duration {
        self.since.elapsed()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.queues.lock();
        if let Some(q) = s.groups.get_mut(&self.group) {
            q.waiters.retain(|w| w.id != self.id);
        }
        drop(s);
        self.queues.changed.notify_waiters();
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut s = self.queues.lock();
        if let Some(q) = s.groups.get_mut(&self.group)
            && let Some(n) = q.in_service.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                q.in_service.remove(&self.key);
            }
        }
        drop(s);
        self.queues.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn heads_in_turn(
        q: &Arc<Queues>,
        mut tickets: Vec<(&'static str, Ticket)>,
    ) -> Vec<&'static str> {
        let mut order = Vec::new();
        let mut shares = Vec::new();
        while !tickets.is_empty() {
            let i = tickets.iter().position(|(_, t)| t.is_head()).unwrap();
            let (name, t) = tickets.remove(i);
            shares.push(q.serve("g", &name[..1]));
            drop(t);
            order.push(name);
        }
        order
    }

    #[test]
    fn fifo_within_a_priority_and_higher_priority_first() {
        let q = Arc::new(Queues::default());
        let a1 = q.enqueue("g", 0, "a1", 10).unwrap();
        let b1 = q.enqueue("g", 0, "b1", 10).unwrap();
        let c1 = q.enqueue("g", 5, "c1", 10).unwrap();
        assert!(c1.is_head(), "the higher priority goes first");
        drop(c1);
        assert!(a1.is_head(), "then first come, first served");
        drop(a1);
        assert!(b1.is_head());
    }

    #[test]
    fn one_keys_burst_takes_turns_with_another_key() {
        let q = Arc::new(Queues::default());
        // Key "a" holds the slot and queues four more; key "b" comes after its burst.
        let _serving = q.serve("g", "a");
        let tickets = vec![
            ("a2", q.enqueue("g", 0, "a", 10).unwrap()),
            ("a3", q.enqueue("g", 0, "a", 10).unwrap()),
            ("a4", q.enqueue("g", 0, "a", 10).unwrap()),
            ("b1", q.enqueue("g", 0, "b", 10).unwrap()),
            ("b2", q.enqueue("g", 0, "b", 10).unwrap()),
        ];
        // Each admitted request stays in service, so the keys take turns: "b" (none in
        // service) first, then whichever key has fewer in service, ties first come first served.
        assert_eq!(heads_in_turn(&q, tickets), ["b1", "a2", "b2", "a3", "a4"]);
    }

    #[test]
    fn depth_is_bounded_and_leaving_frees_a_place() {
        let q = Arc::new(Queues::default());
        let t1 = q.enqueue("g", 0, "k", 2).unwrap();
        let _t2 = q.enqueue("g", 0, "k", 2).unwrap();
        assert_eq!(q.enqueue("g", 0, "k", 2).err().unwrap().depth, 2);
        assert!(
            q.enqueue("other", 0, "k", 2).is_ok(),
            "queues are per group"
        );
        drop(t1);
        assert_eq!(q.depth("g"), 1);
        assert!(q.enqueue("g", 0, "k", 2).is_ok());
    }
}
