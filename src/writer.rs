//! The single writer: appends, batches, rotation, sync.

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use crate::error::{Error, Result};
use crate::format::{
    align_up, frame_crc_in_place, key_hash, FrameHeader, FLAG_BATCH_CONTINUES, FLAG_TOMBSTONE, FRAME_HEADER_BYTES, HEADER_BYTES,
    INDEX_INTERVAL_BYTES, KEY_RESERVE_BYTES, PREALLOC_SUFFIX,
};
use crate::lifecycle::{activate, preallocate, Prepared};
use crate::log::{Job, LogInner};
use crate::options::SyncPolicy;
use crate::raw::MapWriter;
use crate::segment::{ActiveSegment, Segment};
use crate::shared::Shared;
use crate::sync::Arc;

/// One record to append: payload, optional key, optional timestamp.
///
/// ```
/// use varvelog::Entry;
/// let e = Entry::new(b"payload").key(b"user-42").timestamp(1_700_000_000_000_000);
/// assert_eq!(e.payload_len(), 7);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "an entry does nothing until it is appended"]
pub struct Entry<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) key: &'a [u8],
    pub(crate) timestamp_us: Option<u64>,
    pub(crate) tombstone: bool,
}

impl<'a> Entry<'a> {
    /// A record with this payload, no key, and the current time.
    pub fn new(payload: &'a [u8]) -> Self {
        Entry { payload, ..Entry::default() }
    }

    /// Sets the key (an empty key means no key).
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = key;
        self
    }

    /// Sets the timestamp in microseconds since the Unix epoch, instead of now.
    pub fn timestamp(mut self, timestamp_us: u64) -> Self {
        self.timestamp_us = Some(timestamp_us);
        self
    }

    /// Sets the timestamp from a [`SystemTime`], to the microsecond, instead
    /// of now. A time before the Unix epoch is stored as the epoch (records
    /// hold unsigned microseconds); [`crate::Record::time`] reads it back.
    pub fn time(self, time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.timestamp(u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX))
    }

    /// Marks the record as a tombstone for its key.
    pub fn tombstone(mut self) -> Self {
        self.tombstone = true;
        self
    }

    /// Payload length in bytes.
    #[must_use]
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }
}

impl<'a> From<&'a [u8]> for Entry<'a> {
    fn from(p: &'a [u8]) -> Self {
        Entry::new(p)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Entry<'a> {
    fn from(p: &'a [u8; N]) -> Self {
        Entry::new(p)
    }
}
impl<'a> From<&'a Vec<u8>> for Entry<'a> {
    fn from(p: &'a Vec<u8>) -> Self {
        Entry::new(p)
    }
}
impl<'a> From<&'a str> for Entry<'a> {
    fn from(p: &'a str) -> Self {
        Entry::new(p.as_bytes())
    }
}
impl<'a> From<&Entry<'a>> for Entry<'a> {
    fn from(e: &Entry<'a>) -> Self {
        *e
    }
}

/// Where the writer is within its active segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterState {
    /// Segment bytes set aside for the key section
    /// ([`crate::format::KEY_RESERVE_BYTES`] per record with a key).
    pub(crate) key_reserve: u64,
    pub(crate) count: u64,
    pub(crate) tail: u64,
    pub(crate) prev_len: u64,
    pub(crate) next_index_at: u64,
    pub(crate) max_ts: u64,
}

impl WriterState {
    pub(crate) fn fresh() -> WriterState {
        WriterState { key_reserve: 0, count: 0, tail: HEADER_BYTES, prev_len: 0, next_index_at: HEADER_BYTES, max_ts: 0 }
    }
}

/// Everything a writer owns; parked in the log while no `Writer` exists.
pub(crate) struct WriterCore {
    pub(crate) seg: Arc<ActiveSegment>,
    pub(crate) map: MapWriter,
    pub(crate) st: WriterState,
    pub(crate) ready: Receiver<Result<Prepared>>,
    pub(crate) unsynced_bytes: u64,
}

impl WriterCore {
    /// Writes one record and publishes it: readers see it from the
    /// `Release` store on. Returns its seq.
    #[inline]
    pub(crate) fn append_one(&mut self, e: &Entry<'_>, ts: u64, flags: u8) -> u64 {
        let seq = self.write_frame(e, ts, flags);
        self.map.publish(self.st.count, self.st.tail);
        seq
    }

    /// Writes `n` records (the whole of `entries`, already checked to fit)
    /// as one batch, published with one store: readers see all or none, and
    /// every frame but the last says more follow, so recovery keeps all or none.
    pub(crate) fn append_frames<'e>(&mut self, entries: impl Iterator<Item = Entry<'e>>, n: usize, now: u64) {
        for (i, e) in entries.enumerate() {
            let mut flags = if e.tombstone { FLAG_TOMBSTONE } else { 0 };
            if i + 1 < n {
                flags |= FLAG_BATCH_CONTINUES;
            }
            self.write_frame(&e, e.timestamp_us.unwrap_or(now), flags);
        }
        self.map.publish(self.st.count, self.st.tail);
    }

    /// Makes `seg` (written through `map`) the active segment: publishes the
    /// state with it appended, then writes there from now on. Returns the
    /// segment rotated away from, whose published end is final.
    pub(crate) fn install(&mut self, shared: &Shared, seg: Arc<ActiveSegment>, map: MapWriter) -> Arc<ActiveSegment> {
        shared.publish(|old| {
            let mut segments = old.segments.clone();
            segments.push(Segment::Live(seg.clone()));
            old.with_segments(segments)
        });
        self.map = map;
        self.st = WriterState::fresh();
        std::mem::replace(&mut self.seg, seg)
    }

    /// Copies one frame past the published end. Not visible until `publish`.
    #[inline]
    fn write_frame(&mut self, e: &Entry<'_>, ts: u64, flags: u8) -> u64 {
        let st = &mut self.st;
        let seq = self.seg.base_seq + st.count;
        let len = FRAME_HEADER_BYTES + (e.payload.len() + e.key.len()) as u64;
        let h = FrameHeader {
            len: U32::new(len as u32),
            crc: U32::new(0),
            seq: U64::new(seq),
            timestamp_us: U64::new(ts),
            prev_len: U32::new(st.prev_len as u32),
            key_len: U16::new(e.key.len() as u16),
            flags,
            reserved: 0,
        };
        let off = st.tail;
        // Lay the frame down, then checksum the bytes just copied (hot in
        // cache) in one pass. Padding needs no write: space past the
        // published end is zeros.
        let frame = self.map.unpublished(off, len);
        let (head, body) = frame.split_at_mut(FRAME_HEADER_BYTES as usize);
        head.copy_from_slice(h.as_bytes());
        let (payload, key) = body.split_at_mut(e.payload.len());
        payload.copy_from_slice(e.payload);
        key.copy_from_slice(e.key);
        let crc = frame_crc_in_place(frame);
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        st.max_ts = st.max_ts.max(ts);
        if off >= st.next_index_at {
            self.seg.index.push(seq, off, st.max_ts);
            st.next_index_at = off + INDEX_INTERVAL_BYTES;
        }
        if !e.key.is_empty() {
            self.seg.keys_for_writer().insert(key_hash(e.key), off);
            st.key_reserve += KEY_RESERVE_BYTES;
        }
        let padded = align_up(len);
        st.prev_len = padded;
        st.tail += padded;
        st.count += 1;
        self.unsynced_bytes += padded;
        seq
    }
}

/// The log's one writer, from [`crate::Log::writer`]. Appends become visible
/// to readers when the call returns, and durable after a sync covers them
/// (see [`SyncPolicy`]). Dropping the writer does not sync.
///
/// Full segments are sealed in the background. An append that fills a
/// segment waits while four earlier full segments still wait to be sealed,
/// so a writer faster than the disk (or than the sealer's hashing) runs at
/// their pace instead of leaving unsealed segments to pile up.
pub struct Writer {
    inner: std::sync::Arc<LogInner>,
    core: Option<WriterCore>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("next_seq", &self.next_seq()).finish()
    }
}

impl Writer {
    pub(crate) fn new(inner: std::sync::Arc<LogInner>, core: WriterCore) -> Writer {
        Writer { inner, core: Some(core) }
    }

    #[inline]
    fn core(&mut self) -> &mut WriterCore {
        self.core.as_mut().expect("writer core is present until drop")
    }

    /// The seq the next append will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.core.as_ref().map_or(0, |c| c.seg.base_seq + c.st.count)
    }

    /// Appends one payload with no key and the current time; returns its seq.
    ///
    /// # Errors
    ///
    /// [`Error::PayloadTooLarge`] or [`Error::KeyTooLarge`] past the limits in [`crate::Options`];
    /// [`Error::Poisoned`] once an I/O error has poisoned the writer; [`Error::Io`] if the next
    /// segment cannot be prepared (e.g. the disk is full: nothing was appended, and appends succeed
    /// again once there is room).
    #[inline]
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        self.append_entry(Entry::new(payload))
    }

    /// Appends one record; returns its seq.
    ///
    /// # Errors
    ///
    /// [`Error::PayloadTooLarge`] or [`Error::KeyTooLarge`] past the limits in [`crate::Options`];
    /// [`Error::Poisoned`] once an I/O error has poisoned the writer; [`Error::Io`] if the next
    /// segment cannot be prepared (e.g. the disk is full: nothing was appended, and appends succeed
    /// again once there is room).
    pub fn append_entry(&mut self, entry: Entry<'_>) -> Result<u64> {
        self.inner.shared.check_poison()?;
        let padded = self.framed_len(&entry)?;
        let ts = entry.timestamp_us.unwrap_or_else(|| self.inner.shared.opts.clock.now_us());
        self.ensure_room(Self::room(&entry, padded))?;
        let flags = if entry.tombstone { FLAG_TOMBSTONE } else { 0 };
        let seq = self.core().append_one(&entry, ts, flags);
        self.inner.shared.counters.appended(1, padded, false);
        self.after_publish()?;
        Ok(seq)
    }

    /// Appends records as one batch: readers see all of them or none, and
    /// recovery keeps all of them or none. The batch must fit in one segment.
    /// Returns the seqs assigned. Records without a timestamp share one.
    ///
    /// # Errors
    ///
    /// [`Error::BatchTooLarge`] if the batch does not fit in one segment; otherwise as
    /// [`Writer::append`]. On error no record of the batch was appended.
    pub fn append_batch<'e, I>(&mut self, entries: I) -> Result<Range<u64>>
    where
        I: IntoIterator,
        I::Item: Into<Entry<'e>>,
        I::IntoIter: Clone,
    {
        self.inner.shared.check_poison()?;
        let iter = entries.into_iter();
        let (mut total, mut room) = (0u64, 0u64);
        let mut n = 0usize;
        for e in iter.clone() {
            let e = e.into();
            let padded = self.framed_len(&e)?;
            total += padded;
            room += Self::room(&e, padded);
            n += 1;
        }
        let start = self.next_seq();
        if n == 0 {
            return Ok(start..start);
        }
        let max = self.inner.shared.opts.frame_capacity();
        if room > max {
            return Err(Error::BatchTooLarge { len: room, max });
        }
        self.ensure_room(room)?;
        let now = self.inner.shared.opts.clock.now_us();
        self.core().append_frames(iter.map(Into::into), n, now);
        self.inner.shared.counters.appended(n as u64, total, true);
        self.after_publish()?;
        Ok(start..start + n as u64)
    }

    /// Makes everything appended so far durable (msync of the dirty range,
    /// then the directory if a segment was created). A failure poisons the
    /// writer: the sync is never retried, reopen the log to recover.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`], holding the I/O error, if this sync or an earlier one failed.
    pub fn sync(&mut self) -> Result<()> {
        self.inner.shared.sync_all()?;
        self.core().unsynced_bytes = 0;
        Ok(())
    }

    /// Ends the active segment now, if it holds any record, and goes on in
    /// a new one; the background sealer seals the old one as it does a full
    /// one. Returns whether it did. A tiered log uploads a segment once it is
    /// sealed, so this bounds how long a record waits to reach the object
    /// store (call it on a timer for a time bound).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let log = varvelog::Log::open(dir.path(), varvelog::Options::new())?;
    /// let mut writer = log.writer()?;
    /// writer.append(b"one")?;
    /// assert!(writer.roll()?);
    /// assert!(!writer.roll()?, "the new segment is empty");
    /// assert_eq!(log.snapshot().segment_count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As an append that fills a segment: [`Error::Poisoned`] if preparing
    /// the next segment failed.
    pub fn roll(&mut self) -> Result<bool> {
        self.inner.shared.check_poison()?;
        if self.core().st.count == 0 {
            return Ok(false);
        }
        self.rotate()?;
        Ok(true)
    }

    /// The segment room an entry takes: its padded frame, and the key
    /// section's reserve if it has a key.
    #[inline]
    fn room(e: &Entry<'_>, padded: u64) -> u64 {
        if e.key.is_empty() {
            padded
        } else {
            padded + KEY_RESERVE_BYTES
        }
    }

    /// Validates an entry against the limits; returns its padded frame length.
    #[inline]
    fn framed_len(&self, e: &Entry<'_>) -> Result<u64> {
        let max = self.inner.payload_limit;
        if e.payload.len() > max {
            return Err(Error::PayloadTooLarge { len: e.payload.len(), max });
        }
        if e.key.len() > self.inner.key_limit {
            return Err(Error::KeyTooLarge { len: e.key.len(), max: self.inner.key_limit });
        }
        Ok(align_up(FRAME_HEADER_BYTES + (e.payload.len() + e.key.len()) as u64))
    }

    #[inline]
    fn ensure_room(&mut self, bytes: u64) -> Result<()> {
        let core = self.core();
        if core.st.tail + core.st.key_reserve + bytes <= core.seg.capacity() {
            return Ok(());
        }
        self.rotate()
    }

    /// Switches to the preallocated next segment and hands the full one to
    /// the background worker for sealing. Waits only if the next segment is
    /// not ready yet.
    #[cold]
    fn rotate(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let inner = self.inner.clone();
        let shared = &inner.shared;
        let core = self.core();
        let next_seq = core.seg.base_seq + core.st.count;
        let spares = shared.opts.spares() > 0;
        let prepared = if !spares {
            // `Options::spare_segments(0)`: the writer prepares each segment itself.
            prepare_here(&inner, next_seq, false)?
        } else {
            match core.ready.recv() {
                Ok(Ok(p)) => p,
                // That spare failed when it was prepared, perhaps long ago,
                // and the disk may have room again: prepare one here, now.
                Ok(Err(_stale)) => prepare_here(&inner, next_seq, true)?,
                Err(_) => {
                    let stopped = std::io::Error::other("segment worker stopped");
                    return Err(shared.poison_with(Error::io("preallocate", &shared.dir, stopped)));
                }
            }
        };
        let base = next_seq;
        let (seg, map) = activate(shared.fs(), &shared.dir, prepared, base).map_err(|e| shared.poison_with(e))?;
        shared.dir_dirty.store(true, std::sync::atomic::Ordering::Release);
        let old = core.install(shared, seg, map);
        if spares {
            inner.submit(Job::Prepare);
        }
        inner.submit(Job::Seal(old));
        shared.counters.rotated();
        tracing::debug!(base_seq = base, took_us = started.elapsed().as_micros() as u64, "rotated to a new segment");
        Ok(())
    }

    #[inline]
    fn after_publish(&mut self) -> Result<()> {
        // Parked tails, if any: one load behind a compiler fence when none wait.
        self.inner.shared.tail_waiters.wake();
        match self.inner.shared.opts.sync_policy {
            SyncPolicy::Never => Ok(()),
            SyncPolicy::Always => self.sync(),
            SyncPolicy::Background { bytes: Some(b), .. } => {
                let core = self.core();
                if core.unsynced_bytes >= b {
                    core.unsynced_bytes = 0;
                    self.inner.kick_flusher();
                }
                Ok(())
            }
            SyncPolicy::Background { bytes: None, .. } => Ok(()),
        }
    }
}

/// Prepares the next segment on the writer's thread, at a rotation that
/// found no spare. If this fails, nothing changed and the caller may retry
/// (e.g. after freeing space); with spares, the preparer is asked for a new
/// one in place of the one that failed.
#[cold]
fn prepare_here(inner: &LogInner, next_seq: u64, spares: bool) -> Result<Prepared> {
    let shared = &inner.shared;
    let path = shared.dir.join(format!("writer-{next_seq}{PREALLOC_SUFFIX}"));
    preallocate(shared.fs(), &path, &shared.opts).inspect_err(|_| {
        if spares {
            inner.submit(Job::Prepare);
        }
    })
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            self.inner.park_writer(core);
        }
    }
}
