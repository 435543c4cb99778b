//! The set of whole vocabulary words up to 15 bytes (packed as `u128` keys, see `bpe_count`), laid
//! out so that a lookup touches one cache line.
//!
//! With `ignore_merges` (Llama 3) nearly every new word of a prompt is looked up here, and the set
//! is megabytes (128k entries): a lookup that misses the CPU caches costs far more than the rest
//! of a piece's work. A general hash set reads a control byte group and then the entry, two misses;
//! this table is open addressing with linear probing over the keys themselves (0 marks an empty
//! slot: a real key always has its length, at least 1, in its top byte), at most half full.

/// Whole words as packed keys.
pub(crate) struct WordSet {
    slots: Box<[u128]>,
    /// `slots.len() - 1` (a power of two minus one).
    mask: usize,
}

#[inline]
fn slot_hash(key: u128) -> u64 {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let (lo, hi) = (key as u64, (key >> 64) as u64);
    let h = lo.wrapping_mul(K1) ^ hi.wrapping_mul(K2);
    (h ^ (h >> 32)).wrapping_mul(K1)
}

impl WordSet {
    /// The set of `keys` (zero keys are ignored: no piece has one).
    pub fn new(keys: impl IntoIterator<Item = u128>) -> Self {
        let keys: Vec<u128> = keys.into_iter().filter(|&k| k != 0).collect();
        let len = (keys.len() * 2).next_power_of_two().max(16);
        let mut set = WordSet {
            slots: vec![0u128; len].into_boxed_slice(),
            mask: len - 1,
        };
        for key in keys {
            set.insert(key);
        }
        set
    }

    #[inline]
    fn start(&self, key: u128) -> usize {
        (slot_hash(key) >> 32) as usize & self.mask
    }

    fn insert(&mut self, key: u128) {
        let mut i = self.start(key);
        // At most half full: an empty slot is always found.
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(i) {
                Some(slot) if *slot == key => return,
                Some(slot) if *slot == 0 => {
                    *slot = key;
                    return;
                }
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// Whether `key` is a whole word.
    #[inline]
    pub fn contains(&self, key: u128) -> bool {
        if key == 0 {
            return false;
        }
        let mut i = self.start(key);
        loop {
            match self.slots.get(i) {
                Some(&slot) if slot == key => return true,
                Some(&0) | None => return false,
                Some(_) => i = (i + 1) & self.mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_its_keys() {
        let keys: Vec<u128> = (1..5000u128)
            .map(|k| k * 0x1_0000_0001 + (k << 120))
            .collect();
        let set = WordSet::new(keys.iter().copied().filter(|k| k % 3 != 0));
        for k in keys {
            assert_eq!(set.contains(k), k % 3 != 0, "{k:x}");
        }
        assert!(!set.contains(0));
    }
}
