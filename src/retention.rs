//! Retention: removing the oldest whole sealed segments.
//!
//! A pass decides, under the publication lock, how long a prefix of sealed
//! segments goes; publishes the state without them; then unlinks their
//! files, oldest first, and syncs the directory. Readers holding an older
//! snapshot keep their mappings (unlinking a mapped file is safe on Linux:
//! the inode lives until the last mapping goes) and finish their scans. The
//! active segment, and a segment rotated away from but not yet sealed, are
//! never removed, and nothing after one of them is either: only a prefix of
//! the log can go, so seqs stay dense from the first one kept.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lifecycle::now_us;
use crate::log::{Log, LogInner};
use crate::segment::Segment;
use crate::shared::Shared;
use crate::task::Periodic;

/// What to keep. A sealed segment at the start of the log goes if **any**
/// set limit says so; the pass stops at the first segment that no limit
/// removes (only a prefix of the log can go).
///
/// ```
/// use std::time::Duration;
/// use varvelog::Retention;
/// let keep_a_day_or_1_gib = Retention::new().max_age(Duration::from_secs(86_400)).max_total_bytes(1 << 30);
/// # let _ = keep_a_day_or_1_gib;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    max_age: Option<Duration>,
    max_total_bytes: Option<u64>,
    min_seq: Option<u64>,
    consumer_hold: Option<u64>,
}

impl Retention {
    /// No limits: a pass removes nothing until one is set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Remove segments whose newest record (by timestamp) is older than
    /// `age` before now (the system clock).
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Remove the oldest segments while all segment files together take more
    /// than `bytes` (sealed files at their size, live ones at their
    /// preallocated size). The active segment always stays, so the log can
    /// stay above the limit.
    #[must_use]
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.max_total_bytes = Some(bytes);
        self
    }

    /// Remove segments all of whose records have a seq below `seq`. A
    /// segment that holds `seq` or later stays, so records below `seq` may
    /// remain.
    #[must_use]
    pub fn min_seq(mut self, seq: u64) -> Self {
        self.min_seq = Some(seq);
        self
    }

    /// Keep segments holding records a named [`crate::Consumer`] has not
    /// committed past (one that never committed holds everything), even if
    /// the limits above would remove them, while such segments take at most
    /// `max_held_bytes` in total: beyond that the oldest go anyway, so a
    /// consumer that stopped cannot fill the disk (it then gets
    /// [`Error::Truncated`] and may [`crate::Consumer::seek`] on). Remove a
    /// consumer no longer wanted with [`Log::remove_consumer`].
    ///
    /// ```
    /// use varvelog::Retention;
    /// // At most 1 GiB, but up to 4 GiB more for consumers that lag.
    /// let policy = Retention::new().max_total_bytes(1 << 30).keep_for_consumers(4 << 30);
    /// # let _ = policy;
    /// ```
    #[must_use]
    pub fn keep_for_consumers(mut self, max_held_bytes: u64) -> Self {
        self.consumer_hold = Some(max_held_bytes);
        self
    }
}

impl Retention {
    /// The timestamp before which `max_age` removes records, as of now.
    pub(crate) fn cutoff_us(&self) -> Option<u64> {
        self.max_age.map(|a| now_us().saturating_sub(u64::try_from(a.as_micros()).unwrap_or(u64::MAX)))
    }
}

/// What one retention pass removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Segment files removed, oldest first.
    pub removed: Vec<PathBuf>,
    /// Records in them.
    pub removed_records: u64,
    /// Their size on disk.
    pub removed_bytes: u64,
    /// The first seq in the log after the pass.
    pub first_seq: u64,
    /// Segments the limits would have removed but that were kept for named
    /// consumers ([`Retention::keep_for_consumers`]).
    pub held_for_consumers: usize,
}

impl RetentionReport {
    /// Number of segment files removed.
    #[must_use]
    pub fn removed_segments(&self) -> usize {
        self.removed.len()
    }
}

/// Size of a segment file, on disk or in the object store.
fn segment_bytes(s: &Segment) -> u64 {
    match s {
        Segment::Sealed(s) => s.bytes().len() as u64,
        Segment::Remote(r) => r.meta.file_bytes,
        Segment::Live(a) => a.map.len(),
    }
}

/// What retention looks at in a sealed segment, local or remote:
/// `(end_seq, records, newest timestamp)`.
fn sealed_bounds(s: &Segment) -> Option<(u64, u64, u64)> {
    match s {
        Segment::Sealed(s) => Some((s.end_seq(), s.count, s.max_ts)),
        Segment::Remote(r) => Some((r.meta.end_seq, r.meta.count, r.meta.max_ts)),
        Segment::Live(_) => None,
    }
}

/// Where a removed segment was: its file, or its object's URL.
fn segment_path(s: &Segment) -> &std::path::Path {
    match s {
        Segment::Sealed(s) => &s.path,
        Segment::Remote(r) => &r.path,
        Segment::Live(a) => &a.path,
    }
}

/// What consumers ask retention to keep: the least position any of them
/// resumes from, and the most bytes kept for them.
#[derive(Clone, Copy)]
struct Hold {
    least: u64,
    max_bytes: u64,
}

/// The leading sealed segments `policy` removes from `segments`, and how
/// many more it would remove but keeps for consumers.
fn plan(segments: &[Segment], policy: &Retention, cutoff_us: Option<u64>, hold: Option<Hold>) -> (Vec<Segment>, usize) {
    let mut out = limits(segments, policy, cutoff_us);
    let Some(hold) = hold else { return (out, 0) };
    // Segments with records at or past the least position are held, the
    // newest first, while they fit in the allowance.
    let held_from = out.iter().position(|s| sealed_bounds(s).is_some_and(|(end, _, _)| end > hold.least)).unwrap_or(out.len());
    let mut held: u64 = out[held_from..].iter().map(segment_bytes).sum();
    let mut keep_from = held_from;
    while held > hold.max_bytes && keep_from < out.len() {
        held -= segment_bytes(&out[keep_from]);
        keep_from += 1;
    }
    let kept = out.len() - keep_from;
    out.truncate(keep_from);
    (out, kept)
}

/// The leading sealed segments (local or remote) the limits of `policy`
/// remove (also what tiering's local policy evicts from the disk).
pub(crate) fn limits(segments: &[Segment], policy: &Retention, cutoff_us: Option<u64>) -> Vec<Segment> {
    let mut total: u64 = segments.iter().map(segment_bytes).sum();
    let mut out = Vec::new();
    // The last segment is the active one; it never goes.
    for s in segments.iter().take(segments.len().saturating_sub(1)) {
        let Some((end_seq, count, max_ts)) = sealed_bounds(s) else { break };
        let by_seq = policy.min_seq.is_some_and(|m| end_seq <= m);
        let by_age = cutoff_us.is_some_and(|c| count == 0 || max_ts < c);
        let by_size = policy.max_total_bytes.is_some_and(|m| total > m);
        if !(by_seq || by_age || by_size) {
            break;
        }
        total -= segment_bytes(s);
        out.push(s.clone());
    }
    out
}

/// One retention pass over the log behind `shared`.
pub(crate) fn apply(shared: &Shared, policy: &Retention) -> Result<RetentionReport> {
    let cutoff = policy.cutoff_us();
    let current = shared.state.load();
    if limits(&current.segments, policy, cutoff).is_empty() {
        let first_seq = current.segments.first().map_or(0, Segment::base_seq);
        return Ok(RetentionReport { first_seq, ..RetentionReport::default() });
    }
    let hold = match policy.consumer_hold {
        Some(max_bytes) => crate::consumers::least_position(&shared.dir)?.map(|least| Hold { least, max_bytes }),
        None => None,
    };
    let (now, held) = plan(&current.segments, policy, cutoff, hold);
    if now.is_empty() {
        let first_seq = current.segments.first().map_or(0, Segment::base_seq);
        return Ok(RetentionReport { first_seq, held_for_consumers: held, ..RetentionReport::default() });
    }
    drop((now, current));
    // Compaction replaces sealed files: never remove one it is replacing.
    let _maintenance = crate::sync::lock(&shared.maintenance);
    // Decide again under the publication lock, against the state we replace.
    let mut removed = Vec::new();
    let mut first_seq = 0;
    let mut held_for_consumers = 0;
    shared.publish(|old| {
        (removed, held_for_consumers) = plan(&old.segments, policy, cutoff, hold);
        let segments = old.segments[removed.len()..].to_vec();
        first_seq = segments.first().map_or(0, Segment::base_seq);
        old.with_segments(segments)
    });
    let mut report = RetentionReport { first_seq, held_for_consumers, ..RetentionReport::default() };
    // Oldest first: if a crash keeps only some of the unlinks, what remains
    // on disk is still a contiguous run of segments. A remote segment's
    // object is deleted by the uploader, after it has written a manifest
    // without it (see `tiering/`).
    for s in &removed {
        if let Segment::Sealed(s) = s {
            shared.fs().remove(&s.path).map_err(|e| Error::io("remove segment", &s.path, e))?;
        }
        let bytes = segment_bytes(s);
        report.removed.push(segment_path(s).to_path_buf());
        report.removed_records += sealed_bounds(s).map_or(0, |(_, count, _)| count);
        report.removed_bytes += bytes;
        shared.counters.retention_removed(1, bytes);
    }
    if removed.iter().any(|s| matches!(s, Segment::Sealed(_))) {
        shared.fs().sync_dir(&shared.dir).map_err(|e| Error::io("fsync directory", &shared.dir, e))?;
    }
    if !removed.is_empty() {
        tracing::info!(
            segments = report.removed.len(),
            records = report.removed_records,
            bytes = report.removed_bytes,
            first_seq,
            "retention removed segments"
        );
    }
    Ok(report)
}

impl Log {
    /// Runs one retention pass now: removes the oldest sealed segments that
    /// `policy` says to drop. The new state is published before any file is
    /// unlinked, so snapshots and tails already reading them finish
    /// undisturbed; a [`crate::Tail`] that later needs a removed record gets
    /// [`Error::Truncated`]. I/O errors are returned (they do not poison the
    /// writer): a file that could not be unlinked is out of the log but stays
    /// on disk, and is found again on the next open.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a file could not be unlinked (see above).
    pub fn retain(&self, policy: &Retention) -> Result<RetentionReport> {
        apply(self.shared(), policy)
    }

    /// Runs [`Log::retain`] every `interval` on a background thread until the
    /// returned task is dropped or the log is closed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the background thread cannot be started.
    pub fn retain_every(&self, policy: Retention, interval: Duration) -> Result<RetentionTask> {
        let pass = move |log: &LogInner| apply(&log.shared, &policy).map(|r| r.removed.len() as u64);
        Ok(RetentionTask(Periodic::spawn(self.inner(), "varvelog-retention", interval, pass)?))
    }
}

/// A background retention policy from [`Log::retain_every`]. Dropping it
/// stops the thread (after a pass in progress ends). It holds the log only
/// weakly: closing the log stops it too.
#[derive(Debug)]
pub struct RetentionTask(Periodic);

impl RetentionTask {
    /// Passes run so far.
    #[must_use]
    pub fn passes(&self) -> u64 {
        self.0.passes()
    }

    /// Segments removed by all passes so far.
    #[must_use]
    pub fn removed_segments(&self) -> u64 {
        self.0.done()
    }

    /// The error of the latest failed pass, if any since the last call.
    #[must_use]
    pub fn take_error(&self) -> Option<Error> {
        self.0.take_error()
    }
}
