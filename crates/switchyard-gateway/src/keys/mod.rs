//! Virtual keys: what a caller may do, looked up by a keyed hash of the key it presents.
//!
//! Keys live in the ledger's database (through a [`KeyBackend`]: the store in process, or the
//! ledger service). Only `HMAC-SHA256(secret, key)` is stored; the secret is derived from the
//! master key, so the database alone cannot be used to test guesses, and the plain key is shown
//! once, when it is generated. Lookups are cached for [`CACHE_TTL`] so a request costs no database
//! round trip; a change made through this gateway is seen at once here and within the TTL by
//! other replicas.

mod admit;
mod budget;
mod caller;
mod permit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use switchyard_health::KeyLimiter;
use switchyard_ledger::proto::{DeleteKeysRequest, KeyLookup, VirtualKey};

pub(crate) use admit::{admit, check_allowed};
pub use budget::Budgets;
pub use caller::{Caller, limits_of};
pub use permit::KeyPermit;

/// How long a looked-up key (or its absence) is trusted before the database is asked again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Where keys are stored.
pub trait KeyBackend: Send + Sync {
    fn put(&self, key: VirtualKey) -> BoxFuture<'_, Result<(), String>>;
    fn get(&self, lookup: KeyLookup) -> BoxFuture<'_, Result<Option<VirtualKey>, String>>;
    fn list(&self) -> BoxFuture<'_, Result<Vec<VirtualKey>, String>>;
    fn delete(&self, req: DeleteKeysRequest) -> BoxFuture<'_, Result<u32, String>>;
}

type Cached = (Option<Arc<VirtualKey>>, Instant);

/// The gateway's view of virtual keys and their limits.
pub struct VirtualKeys {
    backend: Arc<dyn KeyBackend>,
    secret: [u8; 32],
    cache: Mutex<HashMap<String, Cached>>,
    pub limiter: KeyLimiter,
    pub budgets: Budgets,
}

impl VirtualKeys {
    /// Keys hashed under a secret derived from `master_key`.
    pub fn new(
        backend: Arc<dyn KeyBackend>,
        master_key: &str,
        limiter: KeyLimiter,
        budgets: Budgets,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(b"switchyard virtual keys v1\0");
        h.update(master_key.as_bytes());
        VirtualKeys {
            backend,
            secret: h.finalize().into(),
            cache: Mutex::new(HashMap::new()),
            limiter,
            budgets,
        }
    }

    pub fn backend(&self) -> &dyn KeyBackend {
        self.backend.as_ref()
    }

    /// The stored form of `key`: hex HMAC-SHA256 under the secret.
    pub fn hash(&self, key: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            // HMAC accepts keys of any length; this branch cannot be taken.
            Err(_) => return String::new(),
        };
        mac.update(key.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The key presented as `plain`, if it exists (expiry is the caller's check).
    pub async fn lookup(&self, plain: &str) -> Result<Option<Arc<VirtualKey>>, String> {
        let hash = self.hash(plain);
        if let Some((k, at)) = self.cache_get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(k);
        }
        let found = self
            .backend
            .get(KeyLookup {
                key_hash: hash.clone(),
                key_id: String::new(),
            })
            .await?
            .map(Arc::new);
        self.cache_put(hash, found.clone());
        Ok(found)
    }

    fn cache_get(&self, hash: &str) -> Option<Cached> {
        let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.get(hash).cloned()
    }

    fn cache_put(&self, hash: String, key: Option<Arc<VirtualKey>>) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() > 10_000 {
            c.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        c.insert(hash, (key, Instant::now()));
    }

    /// Forgets what this gateway cached about a key (after an update or delete here).
    pub fn invalidate(&self, hash: &str) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.remove(hash);
    }
}

/// A new key: `sk-` and 48 hex digits of randomness.
pub fn generate_plain() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("sk-{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
