//! Reads by key over a snapshot: the newest record of a key, all its
//! records, and the newest live record of every key.

use crate::error::{Error, Result};
use crate::format::{key_hash, DecodedFrame};
use crate::log::Log;
use crate::record::Record;
use crate::segment::view::KeysOf;
use crate::segment::SegView;
use crate::snapshot::{Iter, Snapshot};

impl Log {
    /// The latest-value view of the log as it is now: the newest live
    /// record of every key, read by key or in seq order (see
    /// [`Snapshot::kv`] and [`Snapshot::get_key`]).
    ///
    /// ```
    /// use varvelog::{Entry, Log, Options};
    /// # fn main() -> varvelog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new())?;
    /// let mut w = log.writer()?;
    /// w.append_entry(Entry::new(b"1").key(b"a"))?;
    /// w.append_entry(Entry::new(b"2").key(b"a"))?;
    /// let kv = log.kv();
    /// assert_eq!(kv.get(b"a")?.unwrap().payload(), b"2");
    /// for record in &kv {
    ///     println!("{:?} = {:?}", record?.key(), kv.get(b"a")?.map(|r| r.payload().to_vec()));
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn kv(&self) -> Kv {
        Kv { snap: self.snapshot() }
    }
}

/// The latest-value view of a log at one moment, from [`Log::kv`]: a
/// snapshot read by key. Iterating it (`for r in &kv`) yields the newest
/// live record of every key, in seq order.
#[derive(Clone, Debug)]
pub struct Kv {
    snap: Snapshot,
}

impl Kv {
    /// The newest live record with `key` ([`Snapshot::get_key`]).
    ///
    /// # Errors
    ///
    /// As [`Snapshot::get_key`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Record<'_>>> {
        self.snap.get_key(key)
    }

    /// The newest live record of every key, in seq order ([`Snapshot::kv`]).
    pub fn iter(&self) -> KvIter<'_> {
        self.snap.kv()
    }

    /// The snapshot the view reads.
    #[must_use]
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }
}

impl<'a> IntoIterator for &'a Kv {
    type Item = Result<Record<'a>>;
    type IntoIter = KvIter<'a>;

    fn into_iter(self) -> KvIter<'a> {
        self.iter()
    }
}

impl<'a> SegView<'a> {
    /// Offsets of the frames in view whose key may hash to `hash` (the
    /// caller compares keys), newest first.
    pub(crate) fn key_offsets(&self, hash: u64, out: &mut Vec<u64>) {
        match self.keys {
            KeysOf::Sealed(s) => {
                let keys = s.keys();
                if keys.may_contain(hash) {
                    out.extend(keys.offsets(hash).iter().rev().map(|e| u64::from(e.offset.get())));
                }
            }
            KeysOf::Live(a) => {
                if let Some(keys) = a.keys.get() {
                    out.extend(keys.lookup(hash, self.frames_end()));
                }
            }
            // Never asked: lookups make views ready first.
            KeysOf::Cold => {}
        }
    }

    /// The frame at `offset`, named by a key table: checked in full
    /// (checksum, and a seq this segment covers).
    pub(crate) fn keyed_frame(&self, offset: u64) -> Result<DecodedFrame<'a>> {
        let f = self.decode_at(offset, true)?;
        if f.seq < self.base_seq || f.seq >= self.end_seq() || offset >= self.frames_end() {
            return Err(Error::corrupt(self.path, offset, format!("key table names a frame holding seq {}, outside the segment", f.seq)));
        }
        Ok(f)
    }
}

/// Where a record is: segment index and frame offset.
type Position = (usize, u64);

impl Snapshot {
    /// The newest record with `key` at or before segment `upto` (all
    /// segments if `None`), with its position.
    fn newest_with_key(&self, key: &[u8], hash: u64) -> Result<Option<(Position, Record<'_>)>> {
        let mut offsets = Vec::new();
        for i in (0..self.segment_count()).rev() {
            if self.none_sealed_from(i, hash) {
                if self.state.has_remote {
                    continue;
                }
                break;
            }
            let view = self.view_ready(i)?;
            offsets.clear();
            view.key_offsets(hash, &mut offsets);
            for &off in &offsets {
                let f = view.keyed_frame(off)?;
                if f.key == key {
                    return Ok(Some(((i, off), view.record(&f))));
                }
            }
        }
        Ok(None)
    }

    /// The newest record with `key`, or `None` if there is none or the
    /// newest is a tombstone ([`crate::Entry::tombstone`]).
    ///
    /// Segments are searched newest first: the live segment through the
    /// writer's in-memory table; then, unless the log's in-memory filter
    /// over every sealed segment's keys says none holds it (~1.5% false
    /// positives), each sealed segment, which its footer's filter passes
    /// over without reading its frames if it lacks the key (a false
    /// positive, ~0.4% of segments, costs a binary search of its key
    /// table).
    ///
    /// ```
    /// use varvelog::{Entry, Log, Options};
    /// # fn main() -> varvelog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new())?;
    /// let mut w = log.writer()?;
    /// w.append_entry(Entry::new(b"blue").key(b"color"))?;
    /// w.append_entry(Entry::new(b"green").key(b"color"))?;
    /// assert_eq!(log.snapshot().get_key(b"color")?.unwrap().payload(), b"green");
    /// w.append_entry(Entry::new(b"").key(b"color").tombstone())?;
    /// assert!(log.snapshot().get_key(b"color")?.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Damage at a record the key tables name: a corruption or checksum
    /// error naming file and offset.
    pub fn get_key(&self, key: &[u8]) -> Result<Option<Record<'_>>> {
        if key.is_empty() {
            return Ok(None);
        }
        Ok(self.newest_with_key(key, key_hash(key))?.map(|(_, r)| r).filter(|r| !r.is_tombstone()))
    }

    /// Every record with `key` (tombstones included), newest first;
    /// `.rev()` gives them oldest first. Finding them reads only key tables
    /// (as [`Snapshot::get_key`] does); the positions found, 16 bytes per
    /// match, are held until the iterator is dropped.
    ///
    /// ```
    /// use varvelog::{Entry, Log, Options};
    /// # fn main() -> varvelog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new())?;
    /// let mut w = log.writer()?;
    /// for v in [&b"1"[..], b"2", b"3"] {
    ///     w.append_entry(Entry::new(v).key(b"k"))?;
    /// }
    /// let snap = log.snapshot();
    /// let newest_first: Vec<Vec<u8>> = snap.iter_key(b"k").map(|r| r.map(|r| r.payload().to_vec())).collect::<Result<_, _>>()?;
    /// assert_eq!(newest_first, [b"3", b"2", b"1"]);
    /// assert_eq!(snap.iter_key(b"k").rev().next().unwrap()?.payload(), b"1");
    /// # Ok(()) }
    /// ```
    pub fn iter_key<'s>(&'s self, key: &'s [u8]) -> KeyIter<'s> {
        let hash = key_hash(key);
        let mut positions = Vec::new();
        let mut offsets = Vec::new();
        if !key.is_empty() {
            for i in (0..self.segment_count()).rev() {
                if self.none_sealed_from(i, hash) {
                    if self.state.has_remote {
                        continue;
                    }
                    break;
                }
                offsets.clear();
                match self.view_ready(i) {
                    Ok(view) => view.key_offsets(hash, &mut offsets),
                    Err(e) => return KeyIter { snap: self, key, positions: Vec::new().into_iter(), done: false, error: Some(e) },
                }
                positions.extend(offsets.iter().map(|&o| (i, o)));
            }
        }
        KeyIter { snap: self, key, positions: positions.into_iter(), done: false, error: None }
    }

    /// The newest live record of every key, in seq order: records without
    /// a key, records a later one with the same key replaced, and keys whose
    /// newest record is a tombstone are left out. Zero-copy, like every
    /// read; no memory grows with the number of keys: each record with a
    /// key is checked against the key tables of the segments after it (one
    /// filter probe per sealed segment), so a scan costs about
    /// `records × segments` filter probes on top of reading the records.
    ///
    /// ```
    /// use varvelog::{Entry, Log, Options};
    /// # fn main() -> varvelog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new())?;
    /// let mut w = log.writer()?;
    /// w.append_entry(Entry::new(b"1").key(b"a"))?;
    /// w.append_entry(Entry::new(b"1").key(b"b"))?;
    /// w.append_entry(Entry::new(b"2").key(b"a"))?;
    /// w.append_entry(Entry::new(b"").key(b"b").tombstone())?;
    /// let snap = log.snapshot();
    /// let live: Vec<(Vec<u8>, Vec<u8>)> =
    ///     snap.kv().map(|r| r.map(|r| (r.key().unwrap().to_vec(), r.payload().to_vec()))).collect::<Result<_, _>>()?;
    /// assert_eq!(live, [(b"a".to_vec(), b"2".to_vec())]);
    /// # Ok(()) }
    /// ```
    pub fn kv(&self) -> KvIter<'_> {
        KvIter { snap: self, records: self.iter(), offsets: Vec::new() }
    }

    /// Whether segment `i` is sealed and the log's key filter says no
    /// sealed segment holds a key with `hash`: sealed segments come first,
    /// so the search can stop there.
    #[inline]
    fn none_sealed_from(&self, i: usize, hash: u64) -> bool {
        match (&self.state.segments[i], &self.state.keys_filter) {
            (crate::segment::Segment::Sealed(_), Some(f)) => !f.may_contain(hash),
            _ => false,
        }
    }

    /// Whether the record `r` (with a key) is the newest with its key.
    fn is_newest(&self, r: &Record<'_>, offsets: &mut Vec<u64>) -> Result<bool> {
        let Some(key) = r.key() else { return Ok(false) };
        let hash = key_hash(key);
        let Some(own) = self.segment_of(r.seq()) else { return Ok(true) };
        for i in (own..self.segment_count()).rev() {
            let view = self.view_ready(i)?;
            offsets.clear();
            view.key_offsets(hash, offsets);
            for &off in offsets.iter() {
                let f = view.keyed_frame(off)?;
                if f.seq <= r.seq() {
                    break;
                }
                if f.key == key {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// Records with one key, from [`Snapshot::iter_key`]: newest first, or
/// oldest first through `.rev()`. Yields `Err` once (then ends) at damage.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct KeyIter<'a> {
    snap: &'a Snapshot,
    key: &'a [u8],
    positions: std::vec::IntoIter<Position>,
    done: bool,
    /// A fetch that failed while the positions were collected: the first item.
    error: Option<Error>,
}

impl<'a> KeyIter<'a> {
    fn take(&mut self, pos: Option<Position>) -> Option<Result<Record<'a>>> {
        let (i, off) = pos?;
        let view = match self.snap.view_ready(i) {
            Ok(view) => view,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        match view.keyed_frame(off) {
            Ok(f) if f.key == self.key => Some(Ok(view.record(&f))),
            Ok(_) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<'a> Iterator for KeyIter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        while !self.done {
            let pos = self.positions.next();
            pos?;
            if let Some(item) = self.take(pos) {
                return Some(item);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.error.is_some()), Some(if self.done { 0 } else { self.positions.len() + usize::from(self.error.is_some()) }))
    }
}

impl DoubleEndedIterator for KeyIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        while !self.done {
            let pos = self.positions.next_back();
            pos?;
            if let Some(item) = self.take(pos) {
                return Some(item);
            }
        }
        None
    }
}

impl std::iter::FusedIterator for KeyIter<'_> {}

/// The newest live record of every key, in seq order, from [`Snapshot::kv`].
/// Yields `Err` once (then ends) at damage.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct KvIter<'a> {
    snap: &'a Snapshot,
    records: Iter<'a>,
    offsets: Vec<u64>,
}

impl<'a> Iterator for KvIter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let r = match self.records.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            if r.key().is_none() || r.is_tombstone() {
                continue;
            }
            match self.snap.is_newest(&r, &mut self.offsets) {
                Ok(true) => return Some(Ok(r)),
                Ok(false) => {}
                Err(e) => {
                    // One error, then the end.
                    self.records = self.snap.iter_from(u64::MAX);
                    return Some(Err(e));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for KvIter<'_> {}
