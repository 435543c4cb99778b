//! Slots per deployment: how many requests each one serves at once, and taking one before an
//! attempt is sent.
//!
//! A model server runs a fixed number of requests at once (Ollama's `OLLAMA_NUM_PARALLEL`,
//! llama.cpp's slots) and queues or refuses the rest. The router takes a slot before it sends, so
//! a request that has to wait waits in the router's own queue (`queue`), where the wait can be
//! fair, bounded and spilled to a larger model (`spill`), instead of on a backend's queue.
//!
//! The count is the shared in-flight counter (`switchyard_health::InflightCounter`: in Redis, a
//! hash per deployment with one field per replica and a heartbeat per replica), and a slot is
//! taken with one atomic script, so router replicas share each deployment's slots and a dead
//! replica's slots are freed when its heartbeat expires. Least-busy routing reads the same count.
//! When Redis fails, this replica admits on its own count of the slots it holds.
//!
//! The state is keyed by deployment id, not index, so a reloaded configuration keeps it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_core::config::{DeploymentIx, Strategy};
use switchyard_health::InflightCounter;
use tokio::sync::Notify;

use crate::state::RouterState;

/// Per-deployment slot state of this router replica.
pub struct Slots {
    inflight: InflightCounter,
    /// Per deployment id: slots this replica holds, and the last count seen across replicas.
    counts: Mutex<HashMap<String, Count>>,
    /// Woken whenever this replica frees a slot.
    pub(crate) freed: Notify,
}

#[derive(Clone, Copy, Debug, Default)]
struct Count {
    local: u32,
    seen: i64,
}

/// How many requests a deployment serves at once, and where that number comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotLimit {
    pub slots: u32,
    /// `max_parallel_requests` (configured) or `total_slots` (read from a llama.cpp server).
    pub source: &'static str,
}

/// The slot limit of deployment `d`, if it has one: configured, else discovered.
pub(crate) fn limit(state: &RouterState, d: DeploymentIx) -> Option<SlotLimit> {
    let dep = state.config.deployments.get(d)?;
    if let Some(n) = dep.capacity.max_parallel {
        return Some(SlotLimit {
            slots: n,
            source: "max_parallel_requests",
        });
    }
    state.shared.view.slots(&dep.id).map(|slots| SlotLimit {
        slots,
        source: "total_slots",
    })
}

/// Whether requests may have to wait for deployment `d` (a slot limit, rpm or tpm).
pub(crate) fn is_limited(state: &RouterState, d: DeploymentIx) -> bool {
    counts_usage(state, d) || limit(state, d).is_some()
}

/// Whether deployment `d`'s answers must be counted in the per-minute usage window (it has an
/// rpm or tpm limit).
pub(crate) fn counts_usage(state: &RouterState, d: DeploymentIx) -> bool {
    state
        .config
        .deployments
        .get(d)
        .is_some_and(|dep| dep.capacity.limits_rate())
}

/// What `/v1/explain` says about deployment `d`'s capacity: its slots and limits, the slots
/// in use, its group's queue and spill policy (`None` for a deployment with no limit).
pub(crate) fn describe(state: &RouterState, d: DeploymentIx) -> Option<String> {
    if !is_limited(state, d) {
        return None;
    }
    let dep = state.config.deployments.get(d)?;
    let mut parts = Vec::new();
    if let Some(l) = limit(state, d) {
        parts.push(format!(
            "{} of {} slots in use ({})",
            state.capacity.seen(&dep.id),
            l.slots,
            l.source
        ));
    }
    if let Some(r) = dep.capacity.rpm {
        parts.push(format!("rpm {r}"));
    }
    if let Some(t) = dep.capacity.tpm {
        parts.push(format!("tpm {t}"));
    }
    let group = state.config.groups.get(dep.group)?;
    parts.push(format!(
        "{} waiting in {}'s queue, spill_after {}",
        state.queues.depth(&group.name),
        group.name,
        state.config.spill_after(dep.group)
    ));
    Some(format!("capacity: {}", parts.join(", ")))
}

/// Why a deployment had no room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Every slot is taken: `in_use` of `slots`.
    Slots { in_use: i64, slots: u32 },
    /// Its requests per minute are used up.
    Rpm(u32),
    /// Its tokens per minute are used up.
    Tpm(u64),
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Slots { in_use, slots } => write!(f, "{in_use} of {slots} slots busy"),
            Full::Rpm(n) => write!(f, "rpm {n} reached"),
            Full::Tpm(n) => write!(f, "tpm {n} reached"),
        }
    }
}

impl Slots {
    pub(crate) fn new(inflight: InflightCounter) -> Self {
        Slots {
            inflight,
            counts: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        }
    }

    fn with_count<T>(&self, id: &str, f: impl FnOnce(&mut Count) -> T) -> T {
        let mut m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        // The id is copied only the first time a deployment is counted, not per request.
        if let Some(c) = m.get_mut(id) {
            return f(c);
        }
        f(m.entry(id.to_owned()).or_default())
    }

    /// The last count seen across replicas for `id` (explain, metrics), at least this replica's.
    pub(crate) fn seen(&self, id: &str) -> i64 {
        self.with_count(id, |c| c.seen.max(i64::from(c.local)))
    }

    /// Slots this replica holds on `id`.
    pub(crate) fn local(&self, id: &str) -> u32 {
        self.with_count(id, |c| c.local)
    }
}

/// A slot held on one deployment for one attempt; give it back with [`SlotGuard::release`]
/// (dropping it releases too, from a task of its own).
pub(crate) struct SlotGuard {
    slots: Arc<Slots>,
    id: String,
    /// Counted in the shared in-flight counter (else only in this replica's count).
    shared: bool,
    /// Counted at all (a deployment with no limit under a strategy that does not count).
    counted: bool,
    released: bool,
}

impl SlotGuard {
    /// Frees the slot and wakes the requests waiting for one.
    pub(crate) async fn release(mut self) {
        self.released = true;
        if !self.counted {
            return;
        }
        if self.shared {
            let _ = self.slots.inflight.decr(&self.id).await;
        }
        self.forget_local();
    }

    fn forget_local(&self) {
        self.slots.with_count(&self.id, |c| {
            c.local = c.local.saturating_sub(1);
            c.seen = (c.seen - 1).max(0);
        });
        self.slots.freed.notify_waiters();
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.released || !self.counted {
            return;
        }
        self.forget_local();
        if self.shared
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let slots = self.slots.clone();
            let id = std::mem::take(&mut self.id);
            rt.spawn(async move {
                let _ = slots.inflight.decr(&id).await;
            });
        }
    }
}

/// Tries to take a slot on deployment `d`: `Err` says why it is full. A deployment with no limit
/// always has room.
pub(crate) async fn try_take(state: &RouterState, d: DeploymentIx) -> Result<SlotGuard, Full> {
    let slots = &state.capacity;
    let Some(dep) = state.config.deployments.get(d) else {
        return Ok(uncounted(slots));
    };
    let id = dep.id.as_str();
    if dep.capacity.limits_rate() {
        // Usage is counted when an answer ends, so a burst can pass the limit by the requests in
        // flight; the slot limit is what bounds concurrency.
        if let Ok(usage) = state.shared.usage.current(&[id]).await
            && let Some(&(requests, tokens)) = usage.first()
        {
            if let Some(rpm) = dep.capacity.rpm
                && requests >= u64::from(rpm)
            {
                return Err(Full::Rpm(rpm));
            }
            if let Some(tpm) = dep.capacity.tpm
                && tokens >= tpm
            {
                return Err(Full::Tpm(tpm));
            }
        }
    }
    let Some(lim) = limit(state, d) else {
        return Ok(force_take(state, d).await);
    };
    match slots.inflight.try_acquire(id, lim.slots).await {
        Ok(t) => {
            slots.with_count(id, |c| {
                c.seen = t.in_use;
                if t.taken {
                    c.local += 1;
                }
            });
            if !t.taken {
                return Err(Full::Slots {
                    in_use: t.in_use,
                    slots: lim.slots,
                });
            }
            Ok(guard(slots, id, true))
        }
        Err(_) => {
            // Shared counts unreachable: this replica's own slots decide.
            let local = slots.local(id);
            if local >= lim.slots {
                return Err(Full::Slots {
                    in_use: i64::from(local),
                    slots: lim.slots,
                });
            }
            slots.with_count(id, |c| c.local += 1);
            Ok(guard(slots, id, false))
        }
    }
}

/// Counts an attempt on deployment `d` without waiting for room: the retries and fallbacks
/// after a failed first attempt, and deployments with no limit (counted only where something
/// reads the count: a slot limit, or least-busy).
pub(crate) async fn force_take(state: &RouterState, d: DeploymentIx) -> SlotGuard {
    let slots = &state.capacity;
    let Some(dep) = state.config.deployments.get(d) else {
        return uncounted(slots);
    };
    let counts = limit(state, d).is_some() || state.config.routing.strategy == Strategy::LeastBusy;
    if !counts {
        return uncounted(slots);
    }
    let shared = slots.inflight.incr(&dep.id).await.is_ok();
    slots.with_count(&dep.id, |c| {
        c.local += 1;
        c.seen += 1;
    });
    guard(slots, &dep.id, shared)
}

fn guard(slots: &Arc<Slots>, id: &str, shared: bool) -> SlotGuard {
    SlotGuard {
        slots: slots.clone(),
        id: id.to_owned(),
        shared,
        counted: true,
        released: false,
    }
}

/// A guard that counts nothing (no id: nothing to give back).
fn uncounted(slots: &Arc<Slots>) -> SlotGuard {
    SlotGuard {
        slots: slots.clone(),
        id: String::new(),
        shared: false,
        counted: false,
        released: false,
    }
}
