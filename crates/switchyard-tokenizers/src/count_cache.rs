//! Counts already made, so the same text is never tokenized twice.
//!
//! Chat clients and agents resend the whole conversation on every turn; the router counts each
//! message's text on its own, so with this cache a conversation's tenth turn tokenizes only the new
//! message (hashing the old ones costs about 0.05 µs per byte instead of ~1–4 µs per token).
//!
//! Keys are the 128-bit XXH3 hash of the text (a false hit between two different texts is a 2^-128
//! event per pair), values the count. The cache is bounded by entry count ([`CountCache::new`]);
//! eviction (quick_cache's S3-FIFO) keeps texts that recur over ones seen once. Texts shorter than
//! [`MIN_CACHED_BYTES`] are counted directly: hashing and the lookup would cost more than the count.

use quick_cache::sync::Cache;

/// Texts shorter than this are not cached.
pub const MIN_CACHED_BYTES: usize = 64;

/// Default number of counts kept per tokenizer: about 2.5 MiB (16-byte key, 4-byte value and the
/// cache's own bookkeeping per entry).
pub const DEFAULT_ENTRIES: usize = 65_536;

/// A bounded map from text to its token count.
pub struct CountCache {
    counts: Cache<u128, u32>,
    capacity: usize,
}

impl std::fmt::Debug for CountCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountCache")
            .field("entries", &self.counts.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for CountCache {
    fn default() -> Self {
        CountCache::new(DEFAULT_ENTRIES)
    }
}

impl CountCache {
    /// A cache holding at most `entries` counts.
    pub fn new(entries: usize) -> Self {
        let entries = entries.max(1);
        CountCache {
            counts: Cache::new(entries),
            capacity: entries,
        }
    }

    /// The count of `text`: remembered, or computed by `count` and remembered.
    pub fn get_or_count(&self, text: &str, count: impl FnOnce() -> u32) -> u32 {
        if text.len() < MIN_CACHED_BYTES {
            return count();
        }
        let key = xxhash_rust::xxh3::xxh3_128(text.as_bytes());
        if let Some(n) = self.counts.get(&key) {
            return n;
        }
        let n = count();
        self.counts.insert(key, n);
        n
    }

    /// Counts held now.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no count is held.
    pub fn is_empty(&self) -> bool {
        self.counts.len() == 0
    }

    /// Most counts ever held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn text(i: usize) -> String {
        format!("{i:08} a message long enough to be worth remembering, padded out past the floor")
    }

    #[test]
    fn counts_each_text_once() {
        let cache = CountCache::new(16);
        let calls = Cell::new(0);
        let count = || {
            calls.set(calls.get() + 1);
            42
        };
        assert_eq!(cache.get_or_count(&text(1), count), 42);
        assert_eq!(cache.get_or_count(&text(1), count), 42);
        assert_eq!(calls.get(), 1);
        assert_eq!(cache.get_or_count(&text(2), count), 42);
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn short_texts_are_not_kept() {
        let cache = CountCache::new(16);
        cache.get_or_count("hi", || 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_the_entry_count() {
        let cache = CountCache::new(1000);
        for i in 0..20_000 {
            cache.get_or_count(&text(i), || 7);
        }
        assert!(cache.len() <= cache.capacity(), "{cache:?}");
        assert!(cache.len() >= 500, "{cache:?}");
    }
}
