//! The active segment: a preallocated, pre-faulted file mapped writable.

use std::fs::File;
use std::path::PathBuf;

use crate::format::{IndexEntry, HEADER_BYTES, INDEX_INTERVAL_BYTES};
use crate::raw::LiveMap;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Ordering};

/// Packs a record count and a frame end offset into one word, so that one
/// `Release` store publishes both and one `Acquire` load reads a consistent pair.
#[inline]
pub(crate) fn pack_committed(count: u64, end: u64) -> u64 {
    debug_assert!(end < (1 << 32) && count < (1 << 32));
    (count << 32) | end
}

/// Inverse of [`pack_committed`]: `(count, end)`.
#[inline]
pub(crate) fn unpack_committed(word: u64) -> (u64, u64) {
    (word >> 32, word & 0xFFFF_FFFF)
}

/// The sparse index of a live segment, appended by the writer and read
/// concurrently: entries below `len` (loaded with `Acquire`) never change.
pub(crate) struct LiveIndex {
    slots: Box<[[AtomicU64; 3]]>,
    len: AtomicUsize,
}

impl LiveIndex {
    fn new(capacity_bytes: u64) -> LiveIndex {
        let n = (capacity_bytes.saturating_sub(HEADER_BYTES) / INDEX_INTERVAL_BYTES + 2) as usize;
        let slots = (0..n).map(|_| [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]).collect();
        LiveIndex { slots, len: AtomicUsize::new(0) }
    }

    /// Appends an entry (writer only). The writer adds at most one entry per
    /// `INDEX_INTERVAL_BYTES`, so the slots never run out; if they did, the
    /// entry would be dropped, which only makes lookups scan further.
    pub(crate) fn push(&self, seq: u64, offset: u64, max_ts: u64) {
        let i = self.len.load(Ordering::Relaxed);
        let Some(slot) = self.slots.get(i) else { return };
        slot[0].store(seq, Ordering::Relaxed);
        slot[1].store(offset, Ordering::Relaxed);
        slot[2].store(max_ts, Ordering::Relaxed);
        self.len.store(i + 1, Ordering::Release);
    }

    /// Number of entries a reader may look at.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Entry `i` as `(seq, offset, max_ts)`; `i` must be below a loaded `len()`.
    pub(crate) fn get(&self, i: usize) -> (u64, u64, u64) {
        let s = &self.slots[i];
        (s[0].load(Ordering::Relaxed), s[1].load(Ordering::Relaxed), s[2].load(Ordering::Relaxed))
    }

    /// Rebuilds from a scan (recovery of an active segment).
    pub(crate) fn fill(&self, entries: &[IndexEntry]) {
        for e in entries {
            self.push(e.seq.get(), e.offset.get(), e.max_ts.get());
        }
    }
}

/// A segment the writer appends to, or one rotated away from and not yet sealed.
pub(crate) struct ActiveSegment {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) map: Arc<LiveMap>,
    pub(crate) base_seq: u64,
    /// Frame end offset known durable (msync'd); 0 until the first sync, so
    /// that the first sync covers the header page too.
    pub(crate) synced_end: AtomicU64,
    pub(crate) index: LiveIndex,
    /// Key hash → frame offsets, made at the first record with a key.
    pub(crate) keys: std::sync::OnceLock<crate::keys::LiveKeys>,
    /// `format::frames_limit` of the mapping's length, computed once: the
    /// writer compares against it on every append.
    frames_limit: u64,
    /// The Merkle tree's nodes completed by this segment's records, built
    /// by readers that ask for roots or proofs (never by the writer).
    pub(crate) merkle: std::sync::Mutex<crate::proofs::LiveNodes>,
}

impl std::fmt::Debug for ActiveSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSegment").field("path", &self.path).field("base_seq", &self.base_seq).finish()
    }
}

impl ActiveSegment {
    pub(crate) fn new(path: PathBuf, file: File, map: Arc<LiveMap>, base_seq: u64) -> ActiveSegment {
        let index = LiveIndex::new(map.len());
        let frames_limit = crate::format::frames_limit(map.len());
        ActiveSegment {
            path,
            file,
            map,
            base_seq,
            synced_end: AtomicU64::new(0),
            index,
            keys: std::sync::OnceLock::new(),
            frames_limit,
            merkle: std::sync::Mutex::default(),
        }
    }

    /// Frames may extend up to here: the preallocated length less the room
    /// kept for footer, index and trailer, so sealing never grows the file.
    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.frames_limit
    }

    /// The key table, made now if this is the first record with a key
    /// (for its one filler: the writer, or the walker of a read-only view).
    pub(crate) fn keys_for_writer(&self) -> &crate::keys::LiveKeys {
        self.keys.get_or_init(|| crate::keys::LiveKeys::new(self.map.len()))
    }

    /// Fills the key table from a scan (recovery of an active segment).
    pub(crate) fn fill_keys(&self, keys: &[(u128, u32)]) {
        for &(hash, offset) in keys {
            self.keys_for_writer().insert(hash as u64, u64::from(offset));
        }
    }

    /// `(count, end)` of what is published.
    #[inline]
    pub(crate) fn committed(&self) -> (u64, u64) {
        self.map.published()
    }
}
