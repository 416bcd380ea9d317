//! The key table of a live segment: key hash → frame offsets, newest first.
//!
//! The writer inserts one entry per record with a key, before it publishes
//! the record; readers look keys up concurrently without locks. Entries are
//! chained per bucket, newest first:
//!
//! * an entry is written (its hash, its frame offset and the bucket's
//!   previous head) and only then made the bucket's head with a `Release`
//!   store; a reader loads the head with `Acquire`, so every entry it can
//!   reach is fully written, and never changes afterwards;
//! * entries name frames that may not be published yet (the writer inserts
//!   before it publishes): readers skip offsets at or past the end of frames
//!   in their view;
//! * entries live in chunks allocated by the writer as needed (each chunk
//!   published once through a `OnceLock`), and are freed with the segment.
//!
//! Memory: 16 bytes per record with a key, plus 4 bytes of buckets per 128
//! bytes of segment (2 MiB for a 64 MiB segment), allocated at the first
//! record with a key. The loom model is `loom-tests/tests/keys.rs`.

use std::sync::OnceLock;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Entries per chunk (a few under loom, which tracks every atomic).
const CHUNK: usize = if cfg!(loom) { 4 } else { 4096 };
/// Fewest buckets (one under loom, so a model's keys share a chain).
const MIN_BUCKETS: u64 = if cfg!(loom) { 1 } else { 64 };
/// Segment bytes per bucket: a chain averages under one entry in a segment
/// full of ~150-byte keyed frames, so a lookup costs about one cache miss
/// for the bucket and one per entry it follows.
const BYTES_PER_BUCKET: u64 = 128;
/// The smallest frame with a key (a 32-byte header and a 1-byte key,
/// padded) plus its reserve: no segment holds more keyed records per byte.
const MIN_KEYED_FRAME: u64 = 40 + crate::format::KEY_RESERVE_BYTES;

struct Slot {
    hash: AtomicU64,
    /// `offset << 32 | previous entry in the bucket + 1` (0: none).
    link: AtomicU64,
    /// Under loom: written with the fields, read with them, so that a read
    /// not ordered after the write is reported as a race.
    #[cfg(loom)]
    written: crate::raw::Tracked,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            hash: AtomicU64::new(0),
            link: AtomicU64::new(0),
            #[cfg(loom)]
            written: crate::raw::Tracked::new(),
        }
    }
}

/// The key table of one live segment. One writer inserts; any number of
/// readers look up.
pub(crate) struct LiveKeys {
    buckets: Box<[AtomicU32]>,
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
    /// Entries inserted (writer only).
    len: AtomicU32,
    /// Offset of the newest entry (writer only).
    last_offset: AtomicU64,
}

impl LiveKeys {
    /// A table for a segment of `capacity_bytes`.
    pub(crate) fn new(capacity_bytes: u64) -> LiveKeys {
        let buckets = if cfg!(loom) { MIN_BUCKETS } else { (capacity_bytes / BYTES_PER_BUCKET).next_power_of_two().max(MIN_BUCKETS) };
        let buckets = buckets as usize;
        let max_entries = (capacity_bytes / MIN_KEYED_FRAME + 1) as usize;
        let chunks = max_entries.div_ceil(CHUNK);
        let keys = LiveKeys {
            buckets: (0..buckets).map(|_| AtomicU32::new(0)).collect(),
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
            len: AtomicU32::new(0),
            last_offset: AtomicU64::new(0),
        };
        // Under loom the first chunk is made before any thread shares the
        // table: loom does not see inside a std `OnceLock`, so a chunk made
        // by the writer would look unsynchronised to it.
        #[cfg(loom)]
        keys.chunks[0].get_or_init(|| (0..CHUNK).map(|_| Slot::new()).collect());
        keys
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        self.chunks.get(i / CHUNK)?.get()?.get(i % CHUNK)
    }

    #[inline]
    fn bucket(&self, hash: u64) -> &AtomicU32 {
        // The low bits pick the filter's probes too; the high bits are as good.
        &self.buckets[(hash >> 40) as usize & (self.buckets.len() - 1)]
    }

    /// Records that the frame at `offset` has a key hashing to `hash`
    /// (writer only, before the frame is published). The table is sized
    /// for a segment full of the smallest keyed frames, so it never runs
    /// out of room for frames the writer accepts.
    pub(crate) fn insert(&self, hash: u64, offset: u64) {
        let i = self.len.load(Ordering::Relaxed) as usize;
        let Some(chunk) = self.chunks.get(i / CHUNK) else {
            debug_assert!(false, "live key table full");
            return;
        };
        let chunk = chunk.get_or_init(|| (0..CHUNK).map(|_| Slot::new()).collect());
        let slot = &chunk[i % CHUNK];
        let bucket = self.bucket(hash);
        let prev = bucket.load(Ordering::Relaxed);
        #[cfg(loom)]
        slot.written.write();
        slot.hash.store(hash, Ordering::Relaxed);
        slot.link.store((offset << 32) | u64::from(prev), Ordering::Relaxed);
        #[cfg(not(all(loom, feature = "loom-mutant-keys")))]
        bucket.store(i as u32 + 1, Ordering::Release);
        // The deliberate bug the loom model must catch: a head published
        // without ordering the entry's fields before it.
        #[cfg(all(loom, feature = "loom-mutant-keys"))]
        bucket.store(i as u32 + 1, Ordering::Relaxed);
        self.len.store(i as u32 + 1, Ordering::Relaxed);
        self.last_offset.store(offset, Ordering::Relaxed);
    }

    /// [`LiveKeys::insert`], unless an entry at or past `offset` is in
    /// already: a reader of another process's live segment may walk the same
    /// frames again after an error.
    pub(crate) fn insert_after_last(&self, hash: u64, offset: u64) {
        if self.len.load(Ordering::Relaxed) == 0 || offset > self.last_offset.load(Ordering::Relaxed) {
            self.insert(hash, offset);
        }
    }

    /// Offsets of frames below `end` whose key hashes to `hash`, newest first.
    pub(crate) fn lookup(&self, hash: u64, end: u64) -> LiveKeyIter<'_> {
        LiveKeyIter { keys: self, hash, end, next: self.bucket(hash).load(Ordering::Acquire) }
    }
}

/// See [`LiveKeys::lookup`].
pub(crate) struct LiveKeyIter<'a> {
    keys: &'a LiveKeys,
    hash: u64,
    end: u64,
    next: u32,
}

impl Iterator for LiveKeyIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        while self.next != 0 {
            let slot = self.keys.slot(self.next as usize - 1)?;
            #[cfg(loom)]
            slot.written.read();
            let hash = slot.hash.load(Ordering::Relaxed);
            let link = slot.link.load(Ordering::Relaxed);
            let offset = link >> 32;
            // Frames start after the header page: an offset of 0 is an
            // entry read before it was written, which the publication
            // order rules out (the loom model checks it; elsewhere the
            // chain would just end there).
            if offset == 0 {
                #[cfg(loom)]
                panic!("key table entry reached before it was written");
                #[cfg(not(loom))]
                return None;
            }
            // Chains only point to older entries: a bound on a damaged chain.
            let prev = (link & 0xFFFF_FFFF) as u32;
            self.next = if prev < self.next { prev } else { 0 };
            if hash == self.hash && offset < self.end {
                return Some(offset);
            }
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_every_offset_of_a_hash_newest_first_and_only_below_the_end() {
        // Goal: chains hold every insert of a hash, newest first; entries at
        // or past the view's end are skipped; other hashes in the same
        // bucket are not returned.
        let t = LiveKeys::new(1 << 20);
        let n = 3 * CHUNK as u64;
        for i in 0..n {
            t.insert(i % 7, 4096 + 8 * i);
        }
        for h in 0..7 {
            let got: Vec<u64> = t.lookup(h, u64::MAX).collect();
            let want: Vec<u64> = (0..n).rev().filter(|i| i % 7 == h).map(|i| 4096 + 8 * i).collect();
            assert_eq!(got, want);
        }
        let end = 4096 + 8 * 100;
        assert!(t.lookup(3, end).all(|o| o < end));
        assert_eq!(t.lookup(3, end).count(), (0..100).filter(|i| i % 7 == 3).count());
        assert_eq!(t.lookup(99, u64::MAX).count(), 0);
    }
}
