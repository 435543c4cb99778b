//! Token budgets, charged from the ledger's own records: a key's spend is the sum of prompt and
//! completion tokens the ledger holds for it in the current budget window. The sum is cached for
//! [`SPEND_TTL`] (and dropped when this gateway finishes one of the key's requests), so a key can
//! overshoot its budget by the requests in flight and those its records have not reached the
//! ledger yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_ledger::proto::VirtualKey;
use switchyard_ledger::{GroupBy, UsageQuery};

use crate::UsageQuerier;

/// How long a key's spend is trusted before the ledger is asked again.
pub const SPEND_TTL: Duration = Duration::from_secs(1);

/// Spend lookups against the ledger.
#[derive(Clone)]
pub struct Budgets {
    ledger: Option<Arc<dyn UsageQuerier>>,
    cache: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
}

/// Where a key stands against its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spend {
    pub spent: u64,
    /// Start of the current window (Unix ms; 0 when the budget never resets).
    pub window_start_ms: i64,
    /// When the window resets (Unix ms), if it does.
    pub resets_at_ms: Option<i64>,
}

impl Budgets {
    /// Budgets read from `ledger` (`None`: no ledger, budgets cannot be enforced).
    pub fn new(ledger: Option<Arc<dyn UsageQuerier>>) -> Self {
        Budgets {
            ledger,
            cache: Arc::default(),
        }
    }

    pub fn enforceable(&self) -> bool {
        self.ledger.is_some()
    }

    /// The window `now_ms` falls in.
    pub fn window(k: &VirtualKey, now_ms: i64) -> (i64, Option<i64>) {
        match k.budget_duration_s.filter(|d| *d > 0) {
            Some(d) => {
                let d = i64::try_from(d.saturating_mul(1000)).unwrap_or(i64::MAX);
                let n = (now_ms - k.created_ms).max(0) / d;
                let start = k.created_ms + n * d;
                (start, Some(start.saturating_add(d)))
            }
            None => (0, None),
        }
    }

    /// Tokens `k` has used in its current window.
    pub async fn spend(&self, k: &VirtualKey, now_ms: i64) -> Result<Spend, String> {
        let (start, resets) = Self::window(k, now_ms);
        let cache_key = format!("{}@{start}", k.key_id);
        if let Some((spent, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
            .copied()
            && at.elapsed() < SPEND_TTL
        {
            return Ok(Spend {
                spent,
                window_start_ms: start,
                resets_at_ms: resets,
            });
        }
        let Some(ledger) = &self.ledger else {
            return Err("no usage ledger is configured, so budgets cannot be checked".into());
        };
        let resp = ledger
            .query(UsageQuery {
                from_ms: Some(start),
                api_key_id: Some(k.key_id.clone()),
                group_by: GroupBy::Key as i32,
                ..Default::default()
            })
            .await?;
        let spent = resp
            .aggregates
            .iter()
            .map(|a| a.prompt_tokens.saturating_add(a.completion_tokens))
            .sum();
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key, (spent, Instant::now()));
        Ok(Spend {
            spent,
            window_start_ms: start,
            resets_at_ms: resets,
        })
    }

    /// Drops the cached spend of a key (one of its requests just finished).
    pub fn forget(&self, key_id: &str) {
        let prefix = format!("{key_id}@");
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(&prefix));
    }
}
