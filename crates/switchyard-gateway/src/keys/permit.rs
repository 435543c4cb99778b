//! An admitted request of a rate-limited key: holds its parallel slot and its token reservation
//! until the answer is done, then settles the reservation to the tokens really used. Dropped
//! without `charge` (the client went away, an error), it still frees the slot and the
//! reservation.

use std::sync::Arc;

use switchyard_health::{Admission, KeyLimits};

use super::VirtualKeys;

/// Released when the request ends.
pub struct KeyPermit {
    keys: Arc<VirtualKeys>,
    key_id: String,
    limits: KeyLimits,
    admission: Admission,
    tokens: u64,
}

impl KeyPermit {
    pub(crate) fn new(
        keys: Arc<VirtualKeys>,
        key_id: String,
        limits: KeyLimits,
        admission: Admission,
    ) -> Self {
        KeyPermit {
            keys,
            key_id,
            limits,
            admission,
            tokens: 0,
        }
    }

    /// Records the tokens the request used (settled when the permit is dropped).
    pub fn charge(&mut self, tokens: u64) {
        self.tokens = tokens;
    }
}

impl Drop for KeyPermit {
    fn drop(&mut self) {
        let keys = self.keys.clone();
        let key_id = std::mem::take(&mut self.key_id);
        let (limits, admission, tokens) = (self.limits, self.admission, self.tokens);
        keys.budgets.forget(&key_id);
        if !limits.any() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                keys.limiter
                    .release(&key_id, &limits, admission, tokens)
                    .await
            });
        }
    }
}
