//! Virtual keys for the router's gRPC API: a client calling the router directly presents the same
//! keys as over HTTP, and the router looks them up in the ledger's database the way the gateway
//! does (same keyed hash, same cache).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use switchyard_gateway::keys::{Budgets, KeyBackend, VirtualKeys, limits_of};
use switchyard_health::KeyLimiter;
use switchyard_router::{KeyResolver, ResolvedKey};

use crate::usage::Querier;

/// Looks keys up through the ledger (in process or over gRPC).
pub struct LedgerKeys(VirtualKeys);

impl LedgerKeys {
    /// Keys hashed under the secret derived from `master_key`, stored through `ledger`.
    pub fn new(ledger: Arc<Querier>, master_key: &str) -> Self {
        LedgerKeys(VirtualKeys::new(
            ledger as Arc<dyn KeyBackend>,
            master_key,
            // Only lookups happen here: limits and budgets are the gateway's to enforce.
            KeyLimiter::memory(),
            Budgets::new(None),
        ))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl KeyResolver for LedgerKeys {
    fn resolve<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ResolvedKey>, String>> {
        async move {
            let found = self.0.lookup(key).await?;
            Ok(found.map(|k| ResolvedKey {
                key_id: k.key_id.clone(),
                allowed_groups: k.models.clone(),
                expired: k.expires_ms.is_some_and(|e| e <= now_ms()),
                limited: k.max_budget.is_some() || limits_of(&k).any(),
            }))
        }
        .boxed()
    }
}
