//! Admission by capacity, and the spill policy: which deployment a request's first attempt takes
//! a slot on, after how long a wait, and why.
//!
//! The plan's candidates come in chain order, fit already checked: the first group among them is
//! the request's *preferred* group, the rest are the later groups of its chain. A request takes
//! the first free slot of its preferred group; when the group is full it waits in the group's
//! queue (`queue`). Once it has waited the group's `spill_after` (`groups.<name>.spill_after`,
//! else `routing.spill_after`), the first later candidate with a free slot, in a group with nobody
//! waiting in its own queue, may serve it instead:
//! `never` always waits for the preferred group (what a user who saves the large model's GPU
//! wants), `0` takes whichever fitting model has a slot at once (least-busy, but only among
//! models that fit). Past `routing.queue_timeout` or `routing.max_queue_depth` the request is
//! refused with 429 and `Retry-After`. Groups whose deployments have no limit never queue.

use std::time::Duration;

use switchyard_core::config::{DeploymentIx, SpillAfter};
use switchyard_core::plan::Candidate;
use switchyard_proto as pb;

use crate::attempt::EventTx;
use crate::capacity::{self, Full, SlotGuard};
use crate::queue::Share;
use crate::state::RouterState;

/// How long a refused caller is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What admission decided for a request's first attempt.
#[derive(Default)]
pub(crate) struct Admitted {
    /// The deployment the first attempt goes to, with its slot (`None`: no limit applies; go
    /// in plan order).
    pub slot: Option<(DeploymentIx, SlotGuard)>,
    /// Time spent waiting in the queue.
    pub queued: Duration,
    /// Why a later group serves instead of the preferred one.
    pub spilled: Option<Spill>,
    /// The request's place in its preferred group's fair share, until it ends.
    pub share: Option<Share>,
}

/// A request served by a later group of its chain because its preferred group was full.
#[derive(Clone, Debug)]
pub(crate) struct Spill {
    /// `immediate` (`spill_after: 0`) or `waited` (it waited `spill_after`): the metric's label.
    pub reason: &'static str,
    /// The sentence for headers, the usage record and logs.
    pub detail: String,
}

/// Why a request was not admitted.
pub(crate) enum Refused {
    /// The caller went away while it waited.
    ClientGone,
    /// Queue full or waited too long: the 429 to answer.
    Rejected(pb::RouteError),
}

/// The key a request's fair share is counted under: its virtual key, else its `user`.
fn fair_key(req: &pb::ChatRequest) -> &str {
    if req.api_key_id.is_empty() {
        req.user.as_deref().unwrap_or("")
    } else {
        &req.api_key_id
    }
}

/// Takes the first free slot among `candidates`, or says why the last one was full.
async fn take_first<'a>(
    state: &RouterState,
    candidates: impl IntoIterator<Item = &'a Candidate>,
) -> Result<(DeploymentIx, SlotGuard), Option<Full>> {
    let mut last = None;
    for c in candidates {
        match capacity::try_take(state, c.deployment).await {
            Ok(g) => return Ok((c.deployment, g)),
            Err(full) => last = Some(full),
        }
    }
    Err(last)
}

/// Takes a slot for a spilling request: the first free one among `later` whose own group has
/// nobody waiting. A later group's queued requests (prompts that fit only there, say) are its
/// own traffic; a spilled request must not take the slot one of them is about to get.
async fn take_for_spill(
    state: &RouterState,
    later: &[Candidate],
) -> Result<(DeploymentIx, SlotGuard), Option<Full>> {
    let cfg = &state.config;
    let nobody_waiting = |c: &&Candidate| {
        let group = cfg
            .deployments
            .get(c.deployment)
            .and_then(|d| cfg.groups.get(d.group))
            .map_or("", |g| g.name.as_str());
        state.queues.depth(group) == 0
    };
    take_first(state, later.iter().filter(nobody_waiting)).await
}

/// Decides the first attempt's deployment for `candidates` (in try order), waiting for a slot
/// when the preferred group is full.
pub(crate) async fn admit(
    state: &RouterState,
    req: &pb::ChatRequest,
    candidates: &[Candidate],
    tx: &EventTx,
) -> Result<Admitted, Refused> {
    let cfg = &state.config;
    let group_of = |c: &Candidate| cfg.deployments.get(c.deployment).map(|d| d.group);
    let Some(pref_group) = candidates.first().and_then(group_of) else {
        return Ok(Admitted::default());
    };
    let split = candidates
        .iter()
        .position(|c| group_of(c) != Some(pref_group))
        .unwrap_or(candidates.len());
    let (preferred, later) = candidates.split_at(split);
    if !preferred
        .iter()
        .any(|c| capacity::is_limited(state, c.deployment))
    {
        return Ok(Admitted::default());
    }
    let group = cfg.groups.get(pref_group).map_or("", |g| g.name.as_str());
    let queues = &state.queues;
    let key = fair_key(req);
    let spill_after = cfg.spill_after(pref_group);
    let spill_at = match spill_after {
        SpillAfter::Never => None,
        SpillAfter::After(d) => Some(d),
    };
    let full_reason = |full: Option<Full>| full.map_or_else(String::new, |f| format!(" ({f})"));
    let spill = |reason: &'static str, waited: Duration, full: Option<Full>| Spill {
        reason,
        detail: format!(
            "spill_after {spill_after}: {group} was full{}{}",
            full_reason(full),
            if waited.is_zero() {
                String::new()
            } else {
                format!(" after {} ms", waited.as_millis())
            }
        ),
    };

    // Nobody waiting: a free slot is taken at once (or spilled to at once with spill_after 0).
    if queues.depth(group) == 0 {
        match take_first(state, preferred).await {
            Ok(slot) => {
                state.metrics.capacity.waited(group, Duration::ZERO);
                return Ok(Admitted {
                    slot: Some(slot),
                    share: Some(queues.serve(group, key)),
                    ..Admitted::default()
                });
            }
            Err(full) if spill_at == Some(Duration::ZERO) => {
                if let Ok(slot) = take_for_spill(state, later).await {
                    state.metrics.capacity.waited(group, Duration::ZERO);
                    state.metrics.capacity.spill(group, "immediate");
                    return Ok(Admitted {
                        slot: Some(slot),
                        spilled: Some(spill("immediate", Duration::ZERO, full)),
                        share: Some(queues.serve(group, key)),
                        ..Admitted::default()
                    });
                }
            }
            Err(_) => {}
        }
    }

    let q = &cfg.routing.queue;
    let ticket = match queues.enqueue(group, req.priority.unwrap_or(0), key, q.max_depth) {
        Ok(t) => t,
        Err(full) => {
            state.metrics.capacity.rejected(group, "queue_full");
            return Err(Refused::Rejected(rejected(
                "queue_full",
                format!(
                    "the router's queue for `{group}` is full: {} requests are waiting for a free slot (routing.max_queue_depth {}); retry later",
                    full.depth, q.max_depth
                ),
            )));
        }
    };
    state.metrics.capacity.depth(group, queues.depth(group));
    let deadline = tokio::time::Instant::from_std(ticket.since + q.timeout);
    let mut last_full = None;
    let outcome = loop {
        let freed = state.capacity.freed.notified();
        let changed = queues.changed.notified();
        tokio::pin!(freed, changed);
        freed.as_mut().enable();
        changed.as_mut().enable();
        if ticket.is_head() {
            match take_first(state, preferred).await {
                Ok(slot) => break Ok((slot, None)),
                Err(full) => last_full = full.or(last_full),
            }
        }
        let waited = ticket.waited();
        let spill_due = spill_at.filter(|d| waited >= *d);
        if spill_due.is_some()
            && let Ok(slot) = take_for_spill(state, later).await
        {
            break Ok((slot, Some(spill("waited", waited, last_full))));
        }
        let until_spill = spill_at
            .filter(|d| waited < *d && !later.is_empty())
            .map(|d| d - waited);
        tokio::select! {
            _ = &mut freed => {}
            _ = &mut changed => {}
            _ = tokio::time::sleep(q.recheck) => {}
            _ = tokio::time::sleep(until_spill.unwrap_or(q.recheck)), if until_spill.is_some() => {}
            _ = tx.closed() => break Err(Refused::ClientGone),
            _ = tokio::time::sleep_until(deadline) => {
                state.metrics.capacity.rejected(group, "queue_timeout");
                break Err(Refused::Rejected(rejected(
                    "queue_timeout",
                    format!(
                        "no slot of `{group}` became free within routing.queue_timeout ({:?}){}; retry later",
                        q.timeout,
                        full_reason(last_full)
                    ),
                )));
            }
        }
    };
    let queued = ticket.waited();
    drop(ticket);
    state.metrics.capacity.depth(group, queues.depth(group));
    state.metrics.capacity.waited(group, queued);
    let (slot, spilled) = outcome?;
    if let Some(s) = &spilled {
        state.metrics.capacity.spill(group, s.reason);
    }
    Ok(Admitted {
        slot: Some(slot),
        queued,
        spilled,
        share: Some(queues.serve(group, key)),
    })
}

/// The 429 for a request the queue could not take or hold.
fn rejected(code: &str, message: String) -> pb::RouteError {
    pb::RouteError {
        http_status: 429,
        r#type: "rate_limit_error".into(),
        code: code.into(),
        message,
        retry_after_ms: Some(u32::try_from(RETRY_AFTER.as_millis()).unwrap_or(1000)),
        ..Default::default()
    }
}

/// The note on the serving attempt's usage record: how long it waited and why it spilled.
pub(crate) fn record_note(queued: Duration, spilled: Option<&Spill>) -> Option<String> {
    let mut parts = Vec::new();
    if !queued.is_zero() {
        parts.push(format!("queued {} ms", queued.as_millis()));
    }
    if let Some(s) = spilled {
        parts.push(format!("spilled: {}", s.detail));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
