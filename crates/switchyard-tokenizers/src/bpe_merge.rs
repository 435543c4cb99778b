//! The BPE merges of one piece, as the `tokenizers` BPE model applies them: lowest rank first,
//! leftmost on ties, counted rather than kept. Used by `bpe_count` for pieces it has not seen.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

/// Buffers `count_merged` reuses from piece to piece.
#[derive(Default)]
pub(crate) struct MergeScratch {
    symbols: Vec<u32>,
    next: Vec<usize>,
    prev: Vec<usize>,
    alive: Vec<bool>,
    heap: BinaryHeap<Reverse<(u32, usize, u32)>>,
}

/// Applies `merges` ((left, right) → (rank, merged token)) to the byte-level tokens of
/// `bytes` (`byte_ids`); returns how many symbols are left.
pub(crate) fn count_merged(
    byte_ids: &[Option<u32>; 256],
    merges: &FxHashMap<(u32, u32), (u32, u32)>,
    bytes: &[u8],
    scratch: &mut MergeScratch,
) -> usize {
    let MergeScratch {
        symbols,
        next,
        prev,
        alive,
        heap,
    } = scratch;
    symbols.clear();
    symbols.extend(bytes.iter().filter_map(|&b| byte_ids[b as usize]));
    let len = symbols.len();
    if len < 2 {
        return len;
    }
    // A linked list over `symbols`: prev/next indices, removed symbols marked.
    next.clear();
    next.extend(1..=len);
    prev.clear();
    prev.extend((0..len).map(|i| i.wrapping_sub(1)));
    alive.clear();
    alive.resize(len, true);
    heap.clear();
    for i in 0..len - 1 {
        if let Some(&(rank, id)) = merges.get(&(symbols[i], symbols[i + 1])) {
            heap.push(Reverse((rank, i, id)));
        }
    }
    let mut count = len;
    while let Some(Reverse((_, pos, id))) = heap.pop() {
        let right = next[pos];
        // Stale: the left symbol was merged away, or the pair changed since it was pushed.
        if !alive[pos] || right >= len {
            continue;
        }
        if merges.get(&(symbols[pos], symbols[right])).map(|m| m.1) != Some(id) {
            continue;
        }
        symbols[pos] = id;
        alive[right] = false;
        next[pos] = next[right];
        if next[pos] < len {
            prev[next[pos]] = pos;
        }
        count -= 1;
        let p = prev[pos];
        if p < len
            && let Some(&(rank, nid)) = merges.get(&(symbols[p], symbols[pos]))
        {
            heap.push(Reverse((rank, p, nid)));
        }
        let n = next[pos];
        if n < len
            && let Some(&(rank, nid)) = merges.get(&(symbols[pos], symbols[n]))
        {
            heap.push(Reverse((rank, pos, nid)));
        }
    }
    count
}
