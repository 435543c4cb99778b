//! A small per-thread table of piece counts in front of the counter's big lookups.
//!
//! Counting a long prompt looks up every piece (word) in the vocabulary's whole-word set (128k
//! entries for Llama 3, megabytes: most lookups miss the CPU caches) and then in the shared piece
//! cache (a shard lock and atomics per lookup). Prose repeats its words, so a few thousand slots
//! that stay in the L2 cache answer most pieces in a few nanoseconds.
//!
//! Each slot is one `u128`: the piece's packed key (`short_key`: up to 15 bytes, the length in
//! the low nibble of the top byte) with its count in the top nibble (a piece of at most 15 bytes
//! has at most 15 tokens). Direct-mapped (a collision overwrites), per thread (no locks), reused
//! across calls. A table belongs to one counter; a thread keeps tables for its [`TABLES`] most
//! recently used counters, so counts of different vocabularies never mix. The whole-word set and
//! the shared cache stay the source of truth: this only remembers what they answered.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per table: 16384 × 16 bytes = 256 KiB, inside a core's L2 cache.
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_BITS: u32 = 14;
/// Tables a thread keeps (a router may count one prompt for a few models in turn).
const TABLES: usize = 4;
/// Where a slot keeps its count.
const COUNT_SHIFT: u32 = 124;

/// One counter's table (see the module doc).
pub(crate) struct PieceMemo {
    owner: u64,
    slots: Box<[u128]>,
}

thread_local! {
    /// The thread's tables, most recently used first.
    static MEMOS: RefCell<Vec<PieceMemo>> = const { RefCell::new(Vec::new()) };
}

/// A fresh id for a counter, never reused.
pub(crate) fn new_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[inline]
fn slot_of(key: u128) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let (lo, hi) = (key as u64, (key >> 64) as u64);
    let h = (lo.wrapping_mul(K) ^ hi).wrapping_mul(K);
    (h >> (64 - SLOT_BITS)) as usize
}

impl PieceMemo {
    fn new(owner: u64) -> Self {
        PieceMemo {
            owner,
            slots: vec![0u128; SLOTS].into_boxed_slice(),
        }
    }

    /// Runs `f` with the calling thread's table for counter `owner`: kept from earlier calls, or
    /// the least recently used one emptied, or a fresh one (also when the thread's tables are
    /// somehow in use already).
    pub fn with<R>(owner: u64, f: impl FnOnce(&mut PieceMemo) -> R) -> R {
        MEMOS.with(|cell| {
            let Ok(mut memos) = cell.try_borrow_mut() else {
                return f(&mut PieceMemo::new(owner));
            };
            match memos.iter().position(|m| m.owner == owner) {
                Some(i) => memos[..=i].rotate_right(1),
                None if memos.len() < TABLES => memos.insert(0, PieceMemo::new(owner)),
                None => {
                    memos.rotate_right(1);
                    memos[0].owner = owner;
                    memos[0].slots.fill(0);
                }
            }
            f(&mut memos[0])
        })
    }

    /// The count remembered for `key` (a `short_key` of 2 to 15 bytes), if its slot holds it.
    #[inline]
    pub fn get(&self, key: u128) -> Option<usize> {
        let slot = *self.slots.get(slot_of(key))?;
        // An empty slot (0) never matches: a key's length is at least 1.
        (slot & !(0xF << COUNT_SHIFT) == key).then_some((slot >> COUNT_SHIFT) as usize)
    }

    /// Remembers `count` for `key` (replacing whatever held its slot); a count that does not fit
    /// (never: at most one token per byte) is not remembered.
    #[inline]
    pub fn put(&mut self, key: u128, count: usize) {
        if count > 15 || key >> COUNT_SHIFT != 0 {
            return;
        }
        if let Some(slot) = self.slots.get_mut(slot_of(key)) {
            *slot = key | ((count as u128) << COUNT_SHIFT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_counter() {
        let (a, b) = (new_owner(), new_owner());
        let key = u128::from_le_bytes(*b"hello\0\0\0\0\0\0\0\0\0\0\x05");
        PieceMemo::with(a, |m| m.put(key, 1));
        assert_eq!(PieceMemo::with(a, |m| m.get(key)), Some(1));
        assert_eq!(PieceMemo::with(b, |m| m.get(key)), None);
        PieceMemo::with(b, |m| m.put(key, 3));
        assert_eq!(PieceMemo::with(a, |m| m.get(key)), Some(1));
        assert_eq!(PieceMemo::with(b, |m| m.get(key)), Some(3));
        // More counters than tables: the least recently used table is emptied.
        for _ in 0..TABLES {
            PieceMemo::with(new_owner(), |_| ());
        }
        assert_eq!(PieceMemo::with(a, |m| m.get(key)), None);
    }
}
