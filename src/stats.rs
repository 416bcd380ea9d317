//! Counters: what a log has done since it was opened, read with
//! [`crate::Log::stats`] (and [`crate::ReadOnlyLog::stats`] for a reader in
//! another process).
//!
//! Reader lag is per reader: [`crate::Tail::lag`] and
//! [`crate::Consumer::lag`] while reading, [`crate::Log::consumers`] for
//! every named consumer's committed position.
//!
//! The writer's hot path pays one `Relaxed` load and store per counter on
//! cache lines only it writes (no read-modify-write, no contention); syncs,
//! rotations, seals and retention update theirs on their own slow paths.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of a log's counters, from [`crate::Log::stats`].
///
/// ```
/// use varvelog::{Log, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let log = Log::open(dir.path(), Options::new())?;
/// let mut w = log.writer()?;
/// w.append(b"one")?;
/// w.append_batch([&b"two"[..], b"three"])?;
/// w.sync()?;
/// let s = log.stats();
/// assert_eq!((s.appends, s.batches, s.syncs), (3, 1, 1));
/// assert_eq!(s.unsynced_records(), 0);
/// # Ok::<(), varvelog::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records appended (each record of a batch counts).
    pub appends: u64,
    /// Calls to `append_batch` that appended at least one record.
    pub batches: u64,
    /// Bytes appended as frames: headers, payloads, keys and padding.
    pub bytes_appended: u64,
    /// Syncs that made data durable (by the writer or the background flusher).
    pub syncs: u64,
    /// Time spent in those syncs, in total.
    pub sync_time_total: Duration,
    /// The longest of those syncs.
    pub sync_time_max: Duration,
    /// Segment rotations by the writer.
    pub rotations: u64,
    /// Segments sealed in the background.
    pub segments_sealed: u64,
    /// Sealed segments removed by retention.
    pub retention_segments_removed: u64,
    /// File bytes removed by retention.
    pub retention_bytes_removed: u64,
    /// Times a waiting tailing reader was woken because records arrived.
    pub tail_wakeups: u64,
    /// The seq the next append will get.
    pub next_seq: u64,
    /// One past the last durable seq (0 if nothing is durable).
    pub durable_next: u64,
}

impl Stats {
    /// Records appended but not yet covered by a sync.
    #[must_use]
    pub fn unsynced_records(&self) -> u64 {
        self.next_seq.saturating_sub(self.durable_next)
    }

    /// Mean time of one sync, if any happened.
    #[must_use]
    pub fn sync_time_mean(&self) -> Option<Duration> {
        u32::try_from(self.syncs).ok().filter(|&n| n > 0).map(|n| self.sync_time_total / n)
    }
}

/// Counters of a reader in another process, from [`crate::ReadOnlyLog::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderStats {
    /// Times the reader loaded the writer's published position.
    pub refreshes: u64,
    /// Times it listed the directory to find new or removed segments.
    pub rescans: u64,
    /// Times a waiting follower woke up and found new records.
    pub tail_wakeups: u64,
    /// Segment files the reader has mapped since it was opened.
    pub segments_mapped: u64,
}

/// The live counters, shared by the writer, the background threads and
/// readers of [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Written only by the (single) writer, on its own cache line so that
    /// other threads' writes nearby never slow an append.
    owned: crossbeam_utils::CachePadded<WriterCounters>,
    // Slow paths, possibly from several threads.
    syncs: AtomicU64,
    sync_ns_total: AtomicU64,
    sync_ns_max: AtomicU64,
    segments_sealed: AtomicU64,
    retention_segments: AtomicU64,
    retention_bytes: AtomicU64,
    tail_wakeups: AtomicU64,
}

/// Counters only the writer writes: load + store, no read-modify-write.
#[derive(Debug, Default)]
struct WriterCounters {
    appends: AtomicU64,
    batches: AtomicU64,
    bytes_appended: AtomicU64,
    rotations: AtomicU64,
}

/// Adds `n` to a counter that only one thread at a time writes: a plain
/// load and store, which costs the same as a non-atomic increment.
#[inline]
fn bump_owned(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Counters {
    /// One record (or a batch of `records`) of `bytes` framed bytes was
    /// appended. Writer only.
    #[inline]
    pub(crate) fn appended(&self, records: u64, bytes: u64, batch: bool) {
        let w = &*self.owned;
        bump_owned(&w.appends, records);
        bump_owned(&w.bytes_appended, bytes);
        if batch {
            bump_owned(&w.batches, 1);
        }
    }

    /// The writer rotated to a new segment. Writer only.
    pub(crate) fn rotated(&self) {
        bump_owned(&self.owned.rotations, 1);
    }

    /// A sync that took `elapsed` completed.
    pub(crate) fn synced(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.sync_ns_total.fetch_add(ns, Ordering::Relaxed);
        self.sync_ns_max.fetch_max(ns, Ordering::Relaxed);
    }

    /// A segment was sealed.
    pub(crate) fn sealed(&self) {
        self.segments_sealed.fetch_add(1, Ordering::Relaxed);
    }

    /// Retention removed `segments` files holding `bytes` bytes.
    pub(crate) fn retention_removed(&self, segments: u64, bytes: u64) {
        self.retention_segments.fetch_add(segments, Ordering::Relaxed);
        self.retention_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A waiting tail woke up and found records.
    pub(crate) fn tail_woken(&self) {
        self.tail_wakeups.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now. `next_seq` and `durable_next` are filled in by the
    /// caller.
    pub(crate) fn read(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            appends: get(&self.owned.appends),
            batches: get(&self.owned.batches),
            bytes_appended: get(&self.owned.bytes_appended),
            syncs: get(&self.syncs),
            sync_time_total: Duration::from_nanos(get(&self.sync_ns_total)),
            sync_time_max: Duration::from_nanos(get(&self.sync_ns_max)),
            rotations: get(&self.owned.rotations),
            segments_sealed: get(&self.segments_sealed),
            retention_segments_removed: get(&self.retention_segments),
            retention_bytes_removed: get(&self.retention_bytes),
            tail_wakeups: get(&self.tail_wakeups),
            next_seq: 0,
            durable_next: 0,
        }
    }
}

/// The counters of a [`crate::ReadOnlyLog`].
#[derive(Debug, Default)]
pub(crate) struct ReaderCounters {
    pub(crate) refreshes: AtomicU64,
    pub(crate) rescans: AtomicU64,
    pub(crate) tail_wakeups: AtomicU64,
    pub(crate) segments_mapped: AtomicU64,
}

impl ReaderCounters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> ReaderStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReaderStats {
            refreshes: get(&self.refreshes),
            rescans: get(&self.rescans),
            tail_wakeups: get(&self.tail_wakeups),
            segments_mapped: get(&self.segments_mapped),
        }
    }
}

/// One segment file as a snapshot sees it, from [`crate::Snapshot::segment_info`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The segment file.
    pub path: std::path::PathBuf,
    /// Seq of its first record.
    pub base_seq: u64,
    /// One past the last seq it covers in view: the next segment's base seq
    /// (`base_seq + records` unless compaction removed records from it).
    pub end_seq: u64,
    /// Records in view.
    pub records: u64,
    /// Bytes of frames in view (headers, payloads, keys, padding).
    pub frame_bytes: u64,
    /// Length of the file: the preallocated size while live, header +
    /// frames + footer once sealed.
    pub file_bytes: u64,
    /// Whether the segment is sealed (footer written, never changes again).
    pub sealed: bool,
    /// Smallest and largest record timestamp, from the footer (sealed
    /// segments with records only).
    pub time_bounds_us: Option<(u64, u64)>,
    /// Whether the file is only in the object store the log is tiered to
    /// (`path` is then the object's URL); it is fetched when read.
    pub remote: bool,
}

impl crate::Snapshot {
    /// The segment files in view, oldest first.
    ///
    /// ```
    /// use varvelog::{Log, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new())?;
    /// log.writer()?.append(b"x")?;
    /// let info = log.snapshot().segment_info();
    /// assert_eq!((info.len(), info[0].records, info[0].sealed), (1, 1, false));
    /// # Ok::<(), varvelog::Error>(())
    /// ```
    #[must_use]
    pub fn segment_info(&self) -> Vec<SegmentInfo> {
        use crate::segment::Segment;
        let header = crate::format::HEADER_BYTES;
        (0..self.segments().len())
            .map(|i| {
                let view = self.view(i);
                match &self.segments()[i] {
                    Segment::Sealed(s) => SegmentInfo {
                        path: s.path.clone(),
                        base_seq: s.base_seq,
                        end_seq: s.end_seq,
                        records: s.count,
                        frame_bytes: s.frames_end - header,
                        file_bytes: s.bytes().len() as u64,
                        sealed: true,
                        time_bounds_us: (s.count > 0).then_some((s.min_ts, s.max_ts)),
                        remote: false,
                    },
                    Segment::Remote(r) => SegmentInfo {
                        path: r.path.clone(),
                        base_seq: r.meta.base_seq,
                        end_seq: r.meta.end_seq,
                        records: r.meta.count,
                        frame_bytes: r.meta.frames_end - header,
                        file_bytes: r.meta.file_bytes,
                        sealed: true,
                        time_bounds_us: (r.meta.count > 0).then_some((r.meta.min_ts, r.meta.max_ts)),
                        remote: true,
                    },
                    Segment::Live(a) => SegmentInfo {
                        path: a.path.clone(),
                        base_seq: a.base_seq,
                        end_seq: view.end_seq(),
                        records: view.count,
                        frame_bytes: self.live_position(i).1 - header,
                        file_bytes: a.map.len(),
                        sealed: false,
                        time_bounds_us: None,
                        remote: false,
                    },
                }
            })
            .collect()
    }

    /// `(count, end)` of live segment `i` as this snapshot sees it.
    fn live_position(&self, i: usize) -> (u64, u64) {
        use crate::segment::Segment;
        let last = i + 1 == self.segments().len();
        match (&self.segments()[i], self.active) {
            (Segment::Live(_), Some(position)) if last => position,
            (Segment::Live(a), _) => a.committed(),
            (Segment::Sealed(s), _) => (s.count, s.frames_end),
            (Segment::Remote(r), _) => (r.meta.count, r.meta.frames_end),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::format::{align_up, FRAME_HEADER_BYTES};
    use crate::{Log, Options};

    #[test]
    fn counters_track_appends_batches_bytes_syncs_rotations_and_seals() {
        // Goal: every counter counts what it says. Method: a known workload on
        // 64 KiB segments; compare each counter with what was done.
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new().segment_bytes(64 * 1024)).unwrap();
        let mut w = log.writer().unwrap();
        let mut bytes = 0u64;
        for i in 0..1000u64 {
            let p = vec![7u8; (i % 90) as usize];
            bytes += align_up(FRAME_HEADER_BYTES + p.len() as u64);
            w.append(&p).unwrap();
        }
        w.sync().unwrap();
        for _ in 0..10 {
            let batch = [&b"abc"[..], b"de", b"f", b"", b"ghij"];
            w.append_batch(batch).unwrap();
            bytes += batch.iter().map(|p| align_up(FRAME_HEADER_BYTES + p.len() as u64)).sum::<u64>();
        }
        w.append_batch(Vec::<&[u8]>::new()).unwrap(); // empty: not a batch
        w.sync().unwrap();
        let s = log.stats();
        assert_eq!((s.appends, s.batches, s.bytes_appended), (1050, 10, bytes));
        assert_eq!(s.syncs, 2);
        assert!(s.sync_time_max > Duration::ZERO && s.sync_time_total >= s.sync_time_max);
        assert_eq!(s.sync_time_mean().unwrap(), s.sync_time_total / 2);
        let segments = log.snapshot().segment_count() as u64;
        assert!(segments >= 2, "the workload must rotate");
        assert_eq!(s.rotations, segments - 1);
        assert_eq!((s.next_seq, s.durable_next, s.unsynced_records()), (1050, 1050, 0));
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.stats().segments_sealed < s.rotations {
            assert!(Instant::now() < deadline, "seals not counted");
            std::thread::sleep(Duration::from_millis(2));
        }
        w.append(b"unsynced").unwrap();
        assert_eq!(log.stats().unsynced_records(), 1);

        // Retention: removed segments and their bytes.
        let first = log.snapshot().segment_info()[0].clone();
        let report = log.retain(&crate::Retention::new().min_seq(first.base_seq + first.records)).unwrap();
        assert_eq!(report.removed_segments(), 1);
        let s = log.stats();
        assert_eq!((s.retention_segments_removed, s.retention_bytes_removed), (1, first.file_bytes));
    }

    #[test]
    fn a_parked_tail_counts_its_wakeups() {
        // Goal: tail_wakeups counts a parked tail woken by an append.
        // Method: a tail waits on another thread; append after it parked.
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new()).unwrap();
        let mut w = log.writer().unwrap();
        let mut tail = log.tail_from(0).unwrap();
        let waiter = std::thread::spawn(move || tail.next_timeout(Duration::from_secs(10)).unwrap().map(|r| r.seq()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.shared().tail_waiters.parked() == 0 {
            assert!(Instant::now() < deadline, "tail never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        w.append(b"wake up").unwrap();
        assert_eq!(waiter.join().unwrap(), Some(0));
        assert_eq!(log.stats().tail_wakeups, 1);
    }
}
