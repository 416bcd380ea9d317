//! Tailing readers: follow the log as the writer appends, across rotations,
//! in this process or in another one.
//!
//! A [`Tail`] holds its log (a [`Log`] or a [`ReadOnlyLog`]) and a
//! [`Snapshot`]. It reads records in place from the snapshot's mappings and,
//! when it reaches the end of what the snapshot shows, takes a newer one. It
//! never skips or repeats a record: it tracks the next seq it owes and the
//! byte offset of that record in its segment, and checks every frame's seq as
//! it decodes it.
//!
//! Records come three ways: borrowed one at a time ([`Tail::try_next`],
//! [`Tail::next_timeout`]), borrowed in batches of whatever is published
//! ([`Tail::poll`], [`Tail::wait`]), or owned through [`Iterator`]
//! ([`OwnedRecord`]s share the mapping, no copy). With the `async` feature a
//! tail is also a `Stream` ([`Tail::into_stream`]).
//!
//! # Waiting without cost to the writer
//!
//! A tail of a [`Log`] spins briefly, then parks on [`Waiters`]. The writer
//! calls [`Waiters::wake`] after every publication; when no tail is parked
//! that is one load of a counter nobody writes behind a compiler fence (the
//! parking tail pays for the ordering with `membarrier`), with no syscall and
//! no shared-cache-line writes. The protocol that makes lost wake-ups
//! impossible is written out on [`Waiters`]. A tail of a [`ReadOnlyLog`]
//! cannot be woken by a writer in another process: it spins briefly, then
//! sleeps in growing steps from 20 µs up to 1 ms, so it sees a new record
//! within about a millisecond.

#[cfg(feature = "async")]
mod stream;
mod waiters;

use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::error::Result;
use crate::format::HEADER_BYTES;
use crate::log::Log;
use crate::read_only::ReadOnlyLog;
use crate::record::{OwnedRecord, Record};
use crate::segment::Segment;
use crate::shared::Shared;
use crate::snapshot::{Snapshot, State};
use crate::sync::Arc;

#[cfg(feature = "async")]
pub use stream::{ConsumerStream, TailStream};
pub(crate) use waiters::Waiters;

/// First sleep of a waiting tail of a [`ReadOnlyLog`], after spinning.
const FOLLOW_SLEEP_MIN: Duration = Duration::from_micros(20);
/// Longest sleep of a waiting tail of a [`ReadOnlyLog`] between two looks.
const FOLLOW_SLEEP_MAX: Duration = Duration::from_millis(1);

/// How [`Tail::next_timeout`] waits for the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin on the committed position until a record arrives or the timeout
    /// passes. Lowest latency; burns a core while waiting.
    BusySpin,
    /// Spin briefly with exponential backoff, then park until the writer
    /// wakes the tail (a tail of a [`ReadOnlyLog`]: sleep, up to 1 ms at a
    /// time). Costs a wake-up (a few microseconds) per wait.
    #[default]
    Park,
}

/// The log a tail follows.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// Written by this process.
    Local(Log),
    /// Opened read-only, perhaps written by another process.
    ReadOnly(ReadOnlyLog),
}

impl Source {
    fn snapshot(&self) -> Snapshot {
        match self {
            Source::Local(log) => log.snapshot(),
            Source::ReadOnly(log) => log.snapshot(),
        }
    }

    fn is_current(&self, state: &Arc<State>) -> bool {
        match self {
            Source::Local(log) => log.shared().state.is_current(state),
            Source::ReadOnly(log) => log.is_current(state),
        }
    }

    /// The log's directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        match self {
            Source::Local(log) => log.dir(),
            Source::ReadOnly(log) => log.dir(),
        }
    }

    /// One past the last seq published, as this process sees it now (a
    /// read-only view catches up with the directory first).
    pub(crate) fn next_seq(&self) -> Result<u64> {
        match self {
            Source::Local(log) => Ok(log.next_seq()),
            Source::ReadOnly(log) => {
                log.refresh()?;
                Ok(log.snapshot().next_seq())
            }
        }
    }

    /// A tail from the first record whose timestamp is at least `ts_us`,
    /// or from the end if there is none yet.
    fn tail_from_time(self, ts_us: u64) -> Result<Tail> {
        if let Source::ReadOnly(log) = &self {
            log.refresh()?;
        }
        let snap = self.snapshot();
        let seq = match snap.seek_time(ts_us).next() {
            Some(Ok(r)) => r.seq(),
            Some(Err(e)) => return Err(e),
            None => snap.next_seq(),
        };
        Tail::new(self, seq)
    }
}

/// Where a tail is: the seq it yields next and where that record is.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// The seq the next record yielded has (or, in a compacted segment,
    /// the least it can have).
    next: u64,
    /// Segment index in the tail's snapshot and file offset of record
    /// `next`, while `next` is below the snapshot's end.
    at: Option<(usize, u64)>,
    /// `(segment base seq, offset)` of record `next` as learnt from the
    /// previous frame's length; survives taking a new snapshot.
    hint: Option<(u64, u64)>,
    /// While `next` is below it, record `next` is at `at` in the snapshot
    /// (an appended segment's end as `step` last saw it; 0 when unknown):
    /// `try_next` then skips looking for it.
    end: u64,
}

/// A reader that follows the log: yields every record from a starting seq
/// on, in order, as the writer publishes them, across segment rotations,
/// without skipping or repeating one.
///
/// Made by [`Log::tail_from`], [`Log::tail_from_end`],
/// [`Log::tail_from_time`] and the same methods of [`ReadOnlyLog`] (a log
/// another process writes); a named [`crate::Consumer`] wraps one and stores
/// its position. Not `Sync`; give each thread its own tail.
///
/// ```
/// # fn main() -> varvelog::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use varvelog::{Log, Options};
///
/// let log = Log::open(dir.path(), Options::new())?;
/// let mut tail = log.tail_from(0)?;
/// let mut writer = log.writer()?;
/// writer.append(b"hello")?;
/// let rec = tail.next_timeout(Duration::from_secs(1))?.expect("published");
/// assert_eq!((rec.seq(), rec.payload()), (0, &b"hello"[..]));
/// assert!(tail.try_next()?.is_none()); // nothing more yet
///
/// writer.append_batch([&b"a"[..], b"b"])?;
/// let batch: Vec<u64> = tail.poll()?.map(|r| r.map(|r| r.seq())).collect::<Result<_, _>>()?;
/// assert_eq!(batch, [1, 2]);
///
/// // As an iterator of owned records (blocks for the next one).
/// writer.append(b"owned")?;
/// let owned = tail.next().expect("ends only after an error")?;
/// assert_eq!(owned.payload(), b"owned");
/// # Ok(()) }
/// ```
pub struct Tail {
    src: Source,
    snap: Snapshot,
    cur: Cursor,
    wait: WaitStrategy,
    verify: bool,
    /// The iterator or stream yielded an error; it yields nothing more
    /// until a seek.
    pub(crate) ended: bool,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("next_seq", &self.cur.next).field("wait", &self.wait).finish()
    }
}

impl Tail {
    /// A tail positioned at `seq` (which may be in the future).
    pub(crate) fn new(src: Source, seq: u64) -> Result<Tail> {
        let snap = src.snapshot();
        let cur = Cursor { next: seq, at: None, hint: None, end: 0 };
        let mut tail = Tail { src, snap: snap.clone(), cur, wait: WaitStrategy::default(), verify: true, ended: false };
        tail.relocate(snap)?;
        Ok(tail)
    }

    /// Sets how [`Tail::next_timeout`] and [`Tail::wait`] wait (default
    /// [`WaitStrategy::Park`]).
    #[must_use]
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// Whether each frame's checksum is verified as it is read (default on).
    /// Off saves about a nanosecond per 100 bytes; frames are still checked
    /// for bounds and seq.
    #[must_use]
    pub fn verify_checksums(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }

    /// The seq the next record will have (or, past records a compaction
    /// removed, the least it can have).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.cur.next
    }

    /// Records published but not yet read by this tail (for a tail of a
    /// [`ReadOnlyLog`], as of its last look at the log).
    #[must_use]
    pub fn lag(&self) -> u64 {
        let end = match &self.src {
            Source::Local(log) => log.next_seq(),
            Source::ReadOnly(log) => log.snapshot().next_seq(),
        };
        end.saturating_sub(self.cur.next)
    }

    /// Moves the tail to `seq`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Truncated`] if retention removed `seq`.
    pub fn seek(&mut self, seq: u64) -> Result<()> {
        let snap = self.src.snapshot();
        self.cur = Cursor { next: seq, at: None, hint: None, end: 0 };
        self.ended = false;
        self.relocate(snap)
    }

    /// The next record if it is published, `Ok(None)` if not yet. Never
    /// blocks. [`crate::Error::Truncated`] if retention removed the record this
    /// tail is at (the tail stays there; [`Tail::seek`] moves it on).
    ///
    /// # Errors
    ///
    /// See above; damage at the record is a corruption error naming file and offset.
    pub fn try_next(&mut self) -> Result<Option<Record<'_>>> {
        if self.cur.next >= self.cur.end && !self.ready()? {
            return Ok(None);
        }
        step(&self.snap, &mut self.cur, self.verify)
    }

    /// The next record, waiting up to `timeout` for the writer to publish
    /// it (per the [`WaitStrategy`]); `Ok(None)` if the time ran out.
    ///
    /// # Errors
    ///
    /// As [`Tail::try_next`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record<'_>>> {
        if !self.wait_ready(timeout)? {
            return Ok(None);
        }
        step(&self.snap, &mut self.cur, self.verify)
    }

    /// Whether the next record is published, waiting up to `timeout` for it.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<bool> {
        Ok(self.cur.next < self.cur.end || self.ready()? || self.wait_for_record(Instant::now().checked_add(timeout))?)
    }

    /// Every record published now from the tail's position, without
    /// waiting: a [`Batch`], borrowed like [`Record`]s are. Each record the
    /// batch yields moves the position on; records left in it are yielded
    /// again by the next call.
    ///
    /// # Errors
    ///
    /// As [`Tail::try_next`].
    pub fn poll(&mut self) -> Result<Batch<'_>> {
        self.ready()?;
        Ok(self.batch())
    }

    /// Waits up to `timeout` until a record is published at the tail's
    /// position, then returns every record published by then, as
    /// [`Tail::poll`] does. The batch is empty if the time ran out.
    ///
    /// # Errors
    ///
    /// As [`Tail::try_next`].
    pub fn wait(&mut self, timeout: Duration) -> Result<Batch<'_>> {
        if !self.ready()? {
            self.wait_for_record(Instant::now().checked_add(timeout))?;
        }
        Ok(self.batch())
    }

    fn batch(&mut self) -> Batch<'_> {
        Batch { snap: &self.snap, cur: &mut self.cur, verify: self.verify, failed: false }
    }

    /// Waits until record `next` is in view or `deadline` passes.
    fn wait_for_record(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let expired = |d: Option<Instant>| d.is_some_and(|d| Instant::now() >= d);
        match (self.wait, &self.src) {
            (WaitStrategy::BusySpin, _) => {
                let mut spins = 0u32;
                loop {
                    if self.ready()? {
                        return Ok(true);
                    }
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(64) && expired(deadline) {
                        return Ok(false);
                    }
                    std::hint::spin_loop();
                }
            }
            (WaitStrategy::Park, Source::Local(log)) => {
                let log = log.clone();
                let shared = log.shared();
                loop {
                    let backoff = Backoff::new();
                    while !backoff.is_completed() {
                        if self.ready()? {
                            return Ok(true);
                        }
                        backoff.snooze();
                    }
                    if expired(deadline) {
                        return Ok(false);
                    }
                    if shared.tail_waiters.wait_until(|| self.has_new(shared), deadline) {
                        shared.counters.tail_woken();
                    }
                    if self.ready()? {
                        return Ok(true);
                    }
                    if expired(deadline) {
                        return Ok(false);
                    }
                }
            }
            (WaitStrategy::Park, Source::ReadOnly(log)) => {
                let log = log.clone();
                let backoff = Backoff::new();
                let mut sleep = FOLLOW_SLEEP_MIN;
                let mut slept = false;
                loop {
                    if self.ready()? {
                        if slept {
                            log.count_wakeup();
                        }
                        return Ok(true);
                    }
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Ok(false);
                    }
                    if !backoff.is_completed() {
                        backoff.snooze();
                        continue;
                    }
                    let left = deadline.map_or(sleep, |d| d - now);
                    std::thread::sleep(sleep.min(left));
                    slept = true;
                    sleep = (sleep * 2).min(FOLLOW_SLEEP_MAX);
                }
            }
        }
    }

    /// Whether record `next` is in view, taking newer snapshots as needed.
    fn ready(&mut self) -> Result<bool> {
        loop {
            if let Some((i, off)) = self.cur.at {
                let view = self.snap.view_ready(i)?;
                if self.cur.next < view.end_seq() {
                    if !(view.sparse && off >= view.frames_end()) {
                        return Ok(true);
                    }
                    // Past the last record of a compacted segment: the seqs
                    // up to its end were removed; go on from the next one.
                    self.cur.next = view.end_seq();
                    continue;
                }
                if i + 1 < self.snap.segment_count() {
                    // Crossing into the next segment: take the latest state,
                    // so a tail that fell behind retention notices and the
                    // old snapshot's mappings are let go.
                    let snap = self.src.snapshot();
                    self.relocate(snap)?;
                    if self.cur.at.is_some() {
                        continue;
                    }
                }
            }
            if !self.refresh()? {
                return Ok(false);
            }
        }
    }

    /// Takes a newer snapshot if anything changed; `false` if nothing did.
    fn refresh(&mut self) -> Result<bool> {
        if let Source::ReadOnly(log) = &self.src {
            // Load the other process's published position (and, every few
            // milliseconds, list the directory).
            log.refresh_throttled()?;
        }
        // More of the snapshot's live segment published: widen the view in
        // place (the common case of a tail keeping up with the writer; one
        // load of the committed word). Checked before the state, so a
        // polling tail pays no snapshot load per spin; a rotation or
        // retention is seen once this segment stops growing.
        let Some(committed) = self.live_grown() else {
            if !self.src.is_current(&self.snap.state) {
                let snap = self.src.snapshot();
                self.relocate(snap)?;
                return Ok(true);
            }
            return Ok(false);
        };
        self.snap.active = Some(committed);
        if self.cur.at.is_none() {
            let snap = self.snap.clone();
            self.relocate(snap)?;
        }
        Ok(true)
    }

    /// The committed position of the snapshot's last segment if records
    /// were published there beyond what the snapshot shows.
    fn live_grown(&self) -> Option<(u64, u64)> {
        match (self.snap.state.segments.last(), self.snap.active) {
            (Some(Segment::Live(a)), Some((count, _))) => Some(a.committed()).filter(|c| c.0 > count),
            _ => None,
        }
    }

    /// Whether a newer snapshot would show more than this one: the check a
    /// waiting tail re-makes after registering (see [`Waiters`]).
    pub(crate) fn has_new(&self, shared: &Shared) -> bool {
        !shared.state.is_current(&self.snap.state) || self.live_grown().is_some()
    }

    /// Adopts `snap` and finds record `next` in it.
    fn relocate(&mut self, snap: Snapshot) -> Result<()> {
        snap.check_retained(self.cur.next)?;
        self.snap = snap;
        self.cur.at = None;
        self.cur.end = 0;
        if self.cur.next >= self.snap.next_seq() {
            return Ok(());
        }
        let Some(i) = self.snap.segment_of(self.cur.next) else {
            // Between two segments that do not meet: a file is absent.
            return self.snap.missing(self.cur.next).map_or(Ok(()), Err);
        };
        let view = self.snap.view_ready(i)?;
        let off = match self.cur.hint {
            // An offset in the file this tail read; a compacted segment is
            // another file under the same name, so it is searched instead.
            Some((base, off)) if base == view.base_seq && !view.sparse => off,
            _ if view.base_seq == self.cur.next => HEADER_BYTES,
            _ => view.locate(self.cur.next)?,
        };
        self.cur.at = Some((i, off));
        Ok(())
    }
}

/// Decodes the record at `cur` in `snap` and moves `cur` past it, going on
/// into the snapshot's next segment at a segment's end; `Ok(None)` at the
/// snapshot's end.
fn step<'s>(snap: &'s Snapshot, cur: &mut Cursor, verify: bool) -> Result<Option<Record<'s>>> {
    loop {
        let Some((i, off)) = cur.at else { return Ok(None) };
        let view = snap.view_ready(i)?;
        if cur.next < view.end_seq() {
            // `None` only past the last record of a compacted segment.
            if let Some(frame) = view.next_frame(off, cur.next, verify)? {
                let after = off + frame.padded_len;
                cur.next = frame.seq + 1;
                cur.at = Some((i, after));
                cur.hint = Some((view.base_seq, after));
                cur.end = if view.sparse { 0 } else { view.end_seq() };
                return Ok(Some(view.record(&frame)));
            }
            cur.next = view.end_seq();
        }
        if i + 1 >= snap.segment_count() {
            return Ok(None);
        }
        if let Some(gap) = snap.missing(cur.next) {
            return Err(gap);
        }
        cur.at = Some((i + 1, HEADER_BYTES));
        cur.end = 0;
    }
}

/// The records a tail can yield now, from [`Tail::poll`] and [`Tail::wait`].
/// Borrowed from the mappings, like every [`Record`]. Each record yielded
/// moves the tail on; damage ends the batch with one `Err` item.
/// [`Iterator::size_hint`] is exact unless a compacted segment is in view.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Batch<'a> {
    snap: &'a Snapshot,
    cur: &'a mut Cursor,
    verify: bool,
    failed: bool,
}

impl<'a> Iterator for Batch<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match step(self.snap, self.cur, self.verify) {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed || self.cur.at.is_none() {
            return (0, Some(0));
        }
        self.snap.hint(self.snap.next_seq().saturating_sub(self.cur.next))
    }
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("next", &self.cur.next).finish()
    }
}

/// A tail is an iterator of owned records that waits for the writer: `next`
/// blocks until one is published (use [`Tail::next_timeout`] or
/// [`Tail::poll`] to bound the wait). It ends only after an `Err` item
/// (damage, [`crate::Error::Truncated`], [`crate::Error::Missing`]): the tail
/// stays where it was, and [`Tail::seek`] lets it go on.
impl Iterator for Tail {
    type Item = Result<OwnedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            match self.next_timeout(Duration::MAX) {
                Ok(Some(r)) => return Some(Ok(r.to_owned_record())),
                Ok(None) => {}
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Log {
    /// A [`Tail`] that yields records from `seq` on (`seq` may be past the
    /// end: the tail then waits for it).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Truncated`] if retention removed `seq`.
    pub fn tail_from(&self, seq: u64) -> Result<Tail> {
        Tail::new(Source::Local(self.clone()), seq)
    }

    /// A [`Tail`] that yields only records published from now on.
    ///
    /// # Errors
    ///
    /// None today; the signature leaves room for the checks [`Log::tail_from`] makes.
    pub fn tail_from_end(&self) -> Result<Tail> {
        Tail::new(Source::Local(self.clone()), self.next_seq())
    }

    /// A [`Tail`] from the first record (in seq order) whose timestamp is at
    /// least `ts_us`, or from the end if there is none yet. Timestamps need
    /// not grow with seq; see [`Snapshot::seek_time`].
    ///
    /// # Errors
    ///
    /// A corruption error naming file and offset if the search meets damage, or
    /// [`crate::Error::Missing`] if records that might match are missing.
    pub fn tail_from_time(&self, ts_us: u64) -> Result<Tail> {
        Source::Local(self.clone()).tail_from_time(ts_us)
    }
}

impl ReadOnlyLog {
    /// A [`Tail`] of this log, which another process may be writing: every
    /// record from `seq` on, in order, across rotations. It sees a new
    /// record within about a millisecond (see [`WaitStrategy::Park`]).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Truncated`] if retention removed `seq`.
    pub fn tail_from(&self, seq: u64) -> Result<Tail> {
        Tail::new(Source::ReadOnly(self.clone()), seq)
    }

    /// A [`Tail`] that yields only records published from now on.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] or a corruption error met while catching up with the
    /// writer (see [`ReadOnlyLog::refresh`]).
    pub fn tail_from_end(&self) -> Result<Tail> {
        let src = Source::ReadOnly(self.clone());
        let seq = src.next_seq()?;
        Tail::new(src, seq)
    }

    /// A [`Tail`] from the first record whose timestamp is at least `ts_us`;
    /// as [`Log::tail_from_time`].
    ///
    /// # Errors
    ///
    /// As [`Log::tail_from_time`].
    pub fn tail_from_time(&self, ts_us: u64) -> Result<Tail> {
        Source::ReadOnly(self.clone()).tail_from_time(ts_us)
    }
}

// A tail moves to the thread that consumes it.
const _: () = {
    const fn send<T: Send>() {}
    send::<Tail>();
};
