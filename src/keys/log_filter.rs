//! One Bloom filter, in memory, over the keys of every sealed segment: a
//! lookup of a key the log does not hold passes over all sealed segments
//! after one probe, instead of one filter probe per segment (each a few
//! cache misses: ~190 ns a segment measured over 27 segments of 64 MiB).
//!
//! The sealer is its only writer. It builds it at start from the sealed
//! segments recovery found, adds each segment's keys before it publishes
//! the segment as sealed, and builds a bigger one when it holds more keys
//! than it was sized for. A published state carries the filter only if
//! every sealed segment in it has its keys in the filter; compaction and
//! retention only remove keys, which leaves that true. The filter's bits
//! are atomics set before the state that names them is published, so a
//! reader that loaded the state sees them. Without a filter (before the
//! sealer has built it, in a read-only view, in a log without keys)
//! lookups probe each sealed segment's own filter.
//!
//! Memory: 10 bits per key of every sealed segment (a key counted once per
//! segment that holds it), at most [`MAX_KEYS`] keys' worth (160 MiB); past
//! that the filter says "maybe" more often and lookups probe more segments.

use std::sync::atomic::AtomicU64 as StdAtomicU64;

use crate::sync::{AtomicU64, Ordering};

use crate::segment::{SealedSegment, Segment};
use crate::shared::Shared;
use crate::snapshot::State;
use crate::sync::Arc;

/// Keys a new filter has room for at least (one block under loom, which
/// tracks every atomic).
const MIN_KEYS: u64 = if cfg!(loom) { 1 } else { 1 << 16 };
/// Keys a filter is sized for at most.
pub(crate) const MAX_KEYS: u64 = 1 << 27;
/// Bits per key: ~1.5% false positives with 6 bits per key in 512-bit
/// blocks.
const BITS_PER_KEY: u64 = 10;
/// Bits set per key, all in one 512-bit (one cache line) block.
const BITS_SET: u32 = 6;

/// A blocked Bloom filter with atomic bits: a key's bits all lie in one
/// 64-byte block, so a probe costs one cache miss whatever it finds.
/// (`fastbloom`'s atomic filter spreads a key's bits over the whole
/// vector: a key that is present costs a miss per bit, measured at +0.7 µs
/// per lookup of a present key; that is why this one is written here.)
struct Blocked {
    blocks: Box<[[AtomicU64; 8]]>,
}

impl Blocked {
    fn new(bits: u64) -> Blocked {
        let n = bits.div_ceil(512).max(1);
        Blocked { blocks: (0..n).map(|_| std::array::from_fn(|_| AtomicU64::new(0))).collect() }
    }

    /// The block and the bit positions in it for `hash`.
    #[inline]
    fn place(&self, hash: u64) -> (&[AtomicU64; 8], u64) {
        let block = ((u128::from(hash) * self.blocks.len() as u128) >> 64) as usize;
        // Other bits of the hash pick the positions: a remix, so that keys
        // sharing a block do not share positions.
        let bits = hash.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (&self.blocks[block], bits)
    }

    fn insert(&self, hash: u64) {
        let (block, bits) = self.place(hash);
        for i in 0..BITS_SET {
            let pos = (bits >> (9 * i)) & 511;
            block[(pos / 64) as usize].fetch_or(1 << (pos % 64), Ordering::Relaxed);
        }
    }

    #[inline]
    fn contains(&self, hash: u64) -> bool {
        let (block, bits) = self.place(hash);
        (0..BITS_SET).all(|i| {
            let pos = (bits >> (9 * i)) & 511;
            block[(pos / 64) as usize].load(Ordering::Relaxed) & (1 << (pos % 64)) != 0
        })
    }
}

/// The keys of the sealed segments (see the module's notes).
pub(crate) struct LogFilter {
    bloom: Blocked,
    capacity: u64,
    inserted: StdAtomicU64,
}

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFilter")
            .field("capacity", &self.capacity)
            .field("inserted", &self.inserted.load(std::sync::atomic::Ordering::Relaxed))
            .finish()
    }
}

impl LogFilter {
    pub(crate) fn with_capacity(keys: u64) -> LogFilter {
        let capacity = keys.clamp(MIN_KEYS, MAX_KEYS);
        let bloom = Blocked::new(capacity * BITS_PER_KEY);
        LogFilter { bloom, capacity, inserted: StdAtomicU64::new(0) }
    }

    /// Adds these key hashes.
    pub(crate) fn insert_hashes(&self, hashes: impl Iterator<Item = u64>) {
        let mut n = 0;
        for h in hashes {
            self.bloom.insert(h);
            n += 1;
        }
        self.inserted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds the keys of `s` (each distinct hash once).
    fn insert(&self, s: &SealedSegment) {
        self.insert_hashes(distinct_hashes(s));
    }

    /// Whether a key with this hash may be in a sealed segment.
    #[inline]
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        self.bloom.contains(hash)
    }

    fn full(&self) -> bool {
        self.inserted.load(std::sync::atomic::Ordering::Relaxed) > self.capacity && self.capacity < MAX_KEYS
    }
}

/// The distinct key hashes of `s`'s key table (sorted, so duplicates are
/// neighbours).
fn distinct_hashes(s: &SealedSegment) -> impl Iterator<Item = u64> + '_ {
    let mut last = None;
    s.keys().entries().iter().map(|e| e.hash.get()).filter(move |&h| last.replace(h) != Some(h))
}

/// Adds `hashes` to `filter`, then runs `publish`, which publishes a state
/// naming the filter: a reader that finds the filter in a state finds
/// these keys in it (the loom model `keys.rs` checks the order).
pub(crate) fn insert_then_publish<R>(filter: &LogFilter, hashes: impl Iterator<Item = u64>, publish: impl FnOnce() -> R) -> R {
    #[cfg(not(all(loom, feature = "loom-mutant-key-filter")))]
    {
        filter.insert_hashes(hashes);
        publish()
    }
    // The deliberate bug the loom model must catch: publishing first.
    #[cfg(all(loom, feature = "loom-mutant-key-filter"))]
    {
        let r = publish();
        filter.insert_hashes(hashes);
        r
    }
}

fn sealed(state: &State) -> impl Iterator<Item = &Arc<SealedSegment>> {
    state.segments.iter().filter_map(|s| match s {
        Segment::Sealed(s) => Some(s),
        // Not in the filter: lookups search remote segments without it.
        Segment::Live(_) | Segment::Remote(_) => None,
    })
}

/// A filter over the sealed segments of `state` and `also`, sized with room
/// to grow; `None` if none of them holds a key.
fn build(state: &State, also: Option<&SealedSegment>) -> Option<LogFilter> {
    let keys: u64 = sealed(state).map(|s| s.keys().len() as u64).chain(also.map(|s| s.keys().len() as u64)).sum();
    if keys == 0 {
        return None;
    }
    let f = LogFilter::with_capacity(keys.saturating_mul(2));
    for s in sealed(state) {
        f.insert(s);
    }
    if let Some(s) = also {
        f.insert(s);
    }
    Some(f)
}

/// The sealer at start: builds the filter over the sealed segments recovery
/// found and publishes it.
pub(crate) fn build_at_start(shared: &Shared) {
    let Some(f) = build(&shared.state.load(), None) else { return };
    let f = std::sync::Arc::new(f);
    // Retention or compaction may have published since: they only removed
    // keys, so the filter covers what is there now too.
    shared.publish(|old| State { keys_filter: Some(f.clone()), ..State::new(old.segments.clone()) });
}

/// The sealer, publishing `sealed`: its keys go into the filter (a new,
/// bigger one if the current one is full, or the first one), then
/// `publish` publishes it with the filter it is given.
pub(crate) fn publish_sealed_with_keys(shared: &Shared, sealed: &SealedSegment, publish: impl FnOnce(Option<std::sync::Arc<LogFilter>>)) {
    let state = shared.state.load();
    match &state.keys_filter {
        Some(f) if !f.full() => {
            let f = f.clone();
            insert_then_publish(&f, distinct_hashes(sealed), || publish(Some(f.clone())));
        }
        None if sealed.keys().is_empty() => publish(None),
        // A first filter, or a bigger one: built whole before publishing.
        _ => publish(build(&state, Some(sealed)).map(std::sync::Arc::new)),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_filter_finds_every_key_it_was_given_and_rejects_most_others() {
        // Goal: no false negatives, under 2% false positives at capacity.
        let f = LogFilter::with_capacity(100_000);
        for i in 0..100_000u64 {
            f.bloom.insert(crate::format::key_hash(&i.to_le_bytes()));
        }
        assert!((0..100_000u64).all(|i| f.may_contain(crate::format::key_hash(&i.to_le_bytes()))));
        let fp = (100_000..200_000u64).filter(|i| f.may_contain(crate::format::key_hash(&i.to_le_bytes()))).count();
        assert!(fp < 2_000, "{fp} false positives in 100000");
    }
}
