//! A small per-thread table of piece counts in front of the counter's big lookups.
//!
//! Counting a long prompt looks up every piece (word) in the vocabulary's whole-word set (128k
//! entries for Llama 3, megabytes: most lookups miss the CPU caches) and then in the shared piece
//! cache (a shard lock and atomics per lookup). Prose repeats its words, so a few thousand slots
//! that stay in the L2 cache answer most pieces in a few nanoseconds. The table is direct-mapped
//! (a collision overwrites), per thread (no locks), reused across calls, and each slot names the
//! counter that filled it, so counts of different vocabularies never mix. The whole-word set and
//! the shared cache stay the source of truth: this only remembers what they answered.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per thread: 8192 × 32 bytes = 256 KiB, well inside a core's L2 cache.
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_BITS: u32 = 13;

/// One remembered piece: its packed bytes (`short_key`), the counter that counted it (0: empty)
/// and its token count.
#[derive(Clone, Copy, Default)]
struct Slot {
    key: u128,
    owner: u64,
    count: u32,
}

/// The calling thread's table (see the module doc).
pub(crate) struct PieceMemo {
    slots: Box<[Slot]>,
}

thread_local! {
    static MEMO: RefCell<Option<PieceMemo>> = const { RefCell::new(None) };
}

/// A fresh id for a counter: never 0 (the empty slot's owner), never reused.
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
    fn new() -> Self {
        PieceMemo {
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        }
    }

    /// Runs `f` with the calling thread's table (a fresh one if it is somehow in use already).
    pub fn with<R>(f: impl FnOnce(&mut PieceMemo) -> R) -> R {
        MEMO.with(|cell| match cell.try_borrow_mut() {
            Ok(mut memo) => f(memo.get_or_insert_with(PieceMemo::new)),
            Err(_) => f(&mut PieceMemo::new()),
        })
    }

    /// The count `owner` remembered for `key`, if its slot still holds it.
    #[inline]
    pub fn get(&self, owner: u64, key: u128) -> Option<u32> {
        let slot = self.slots.get(slot_of(key))?;
        (slot.owner == owner && slot.key == key).then_some(slot.count)
    }

    /// Remembers `count` for `owner`'s `key` (replacing whatever held its slot).
    #[inline]
    pub fn put(&mut self, owner: u64, key: u128, count: u32) {
        if let Some(slot) = self.slots.get_mut(slot_of(key)) {
            *slot = Slot { key, owner, count };
        }
    }
}
