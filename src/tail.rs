//! Tailing readers: follow the log as the writer appends, across rotations.
//!
//! A [`Tail`] holds a [`Log`] handle and a [`Snapshot`]. It reads records in
//! place from the snapshot's mappings and, when it reaches the end of what the
//! snapshot shows, takes a newer one. It never skips or repeats a record: it
//! tracks the next seq it owes and the byte offset of that record in its
//! segment, and checks every frame's seq as it decodes it.
//!
//! Records are handed out borrowed ([`Record`] borrows the tail), so reading
//! is zero-copy; the borrow ends before the next call, which is what lets the
//! tail move to a newer snapshot. Call [`Record::to_owned_record`] (or
//! [`OwnedRecord::from`]) to keep one.
//!
//! # Waiting without cost to the writer
//!
//! [`Tail::next_timeout`] spins briefly, then parks on [`Waiters`]. The writer
//! calls [`Waiters::wake`] after every publication; when no tail is parked
//! that is one load of a counter nobody writes behind a compiler fence (the
//! parking tail pays for the ordering with `membarrier`), with no syscall and
//! no shared-cache-line writes. The protocol that makes lost
//! wake-ups impossible is written out on [`Waiters`].

use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::error::Result;
use crate::format::HEADER_BYTES;
use crate::log::Log;
use crate::segment::Segment;
use crate::shared::Shared;
use crate::snapshot::{Record, Snapshot};
use crate::sync::{heavy_barrier, light_barrier, AtomicUsize, Condvar, Mutex, Ordering};

/// How [`Tail::next_timeout`] waits for the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin on the committed position until a record arrives or the timeout
    /// passes. Lowest latency; burns a core while waiting.
    BusySpin,
    /// Spin briefly with exponential backoff, then park until the writer
    /// wakes the tail. Costs a wake-up (a few microseconds) per wait.
    #[default]
    Park,
}

/// A record copied out of the log, to keep past the next read or send to
/// another thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The record's sequence number.
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    /// The key, if the record has one.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
    /// Whether the record is a tombstone for its key.
    pub tombstone: bool,
}

impl From<Record<'_>> for OwnedRecord {
    fn from(r: Record<'_>) -> Self {
        OwnedRecord {
            seq: r.seq(),
            timestamp: r.timestamp(),
            key: r.key().map(<[u8]>::to_vec),
            payload: r.payload().to_vec(),
            tombstone: r.is_tombstone(),
        }
    }
}

impl Record<'_> {
    /// Copies the record out of the log.
    #[must_use]
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord::from(*self)
    }
}

/// A reader that follows the log: yields every record from a starting seq
/// on, in order, as the writer publishes them, across segment rotations.
///
/// Made by [`Log::tail_from`], [`Log::tail_from_end`] and
/// [`Log::tail_from_time`]. Not `Sync`; give each thread its own tail.
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
/// # Ok(()) }
/// ```
pub struct Tail {
    log: Log,
    snap: Snapshot,
    /// The seq the next call yields.
    next: u64,
    /// Segment index in `snap` and file offset of record `next`, while
    /// `next` is below the snapshot's end.
    at: Option<(usize, u64)>,
    /// `(segment base seq, offset)` of record `next` as learnt from the
    /// previous frame's length; survives taking a new snapshot.
    hint: Option<(u64, u64)>,
    wait: WaitStrategy,
    verify: bool,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("next_seq", &self.next).field("wait", &self.wait).finish()
    }
}

impl Tail {
    /// A tail positioned at `seq` (which may be in the future).
    pub(crate) fn new(log: Log, seq: u64) -> Result<Tail> {
        let snap = log.snapshot();
        let mut tail = Tail { log, snap: snap.clone(), next: seq, at: None, hint: None, wait: WaitStrategy::default(), verify: true };
        tail.relocate(snap)?;
        Ok(tail)
    }

    /// Sets how [`Tail::next_timeout`] waits (default [`WaitStrategy::Park`]).
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

    /// The seq the next record will have.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Records published but not yet read by this tail.
    #[must_use]
    pub fn lag(&self) -> u64 {
        self.log.next_seq().saturating_sub(self.next)
    }

    /// Moves the tail to `seq`; [`crate::Error::Truncated`] if retention removed it.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Truncated`] if retention removed `seq`.
    pub fn seek(&mut self, seq: u64) -> Result<()> {
        let snap = self.log.snapshot();
        self.next = seq;
        self.hint = None;
        self.at = None;
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
        let (i, off) = loop {
            let Some((i, off)) = self.ready()? else { return Ok(None) };
            let view = self.snap.view(i);
            // Past the last record of a compacted segment: the seqs up to
            // its end were removed; go on from the next segment.
            if view.sparse && off >= view.frames_end() {
                (self.next, self.at) = (view.end_seq(), Some((i, off)));
                continue;
            }
            break (i, off);
        };
        let view = self.snap.view(i);
        let frame = view.next_frame(off, self.next, self.verify)?.ok_or_else(|| crate::Error::corrupt(view.path, off, "record missing"))?;
        self.next = frame.seq + 1;
        self.at = Some((i, off + frame.padded_len));
        self.hint = Some((view.base_seq, off + frame.padded_len));
        Ok(Some(Record::from_frame(&frame)))
    }

    /// The next record, waiting up to `timeout` for the writer to publish
    /// it (per the [`WaitStrategy`]); `Ok(None)` if the time ran out.
    ///
    /// # Errors
    ///
    /// As [`Tail::try_next`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record<'_>>> {
        if self.ready()?.is_none() {
            let deadline = Instant::now().checked_add(timeout);
            if !self.wait_for_record(deadline)? {
                return Ok(None);
            }
        }
        self.try_next()
    }

    /// Waits until record `next` is in view or `deadline` passes.
    fn wait_for_record(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let expired = |d: Option<Instant>| d.is_some_and(|d| Instant::now() >= d);
        match self.wait {
            WaitStrategy::BusySpin => {
                let mut spins = 0u32;
                loop {
                    if self.ready()?.is_some() {
                        return Ok(true);
                    }
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(64) && expired(deadline) {
                        return Ok(false);
                    }
                    std::hint::spin_loop();
                }
            }
            WaitStrategy::Park => loop {
                let backoff = Backoff::new();
                while !backoff.is_completed() {
                    if self.ready()?.is_some() {
                        return Ok(true);
                    }
                    backoff.snooze();
                }
                if expired(deadline) {
                    return Ok(false);
                }
                let shared = self.log.shared();
                if shared.tail_waiters.wait_until(|| self.has_new(shared), deadline) {
                    shared.counters.tail_woken();
                }
                if self.ready()?.is_some() {
                    return Ok(true);
                }
                if expired(deadline) {
                    return Ok(false);
                }
            },
        }
    }

    /// Segment index and offset of record `next`, taking newer snapshots as
    /// needed; `None` if it is not published yet.
    fn ready(&mut self) -> Result<Option<(usize, u64)>> {
        loop {
            if let Some((i, off)) = self.at {
                if self.next < self.snap.view(i).end_seq() {
                    return Ok(Some((i, off)));
                }
                if i + 1 < self.snap.segment_count() {
                    // Crossing into the next segment: take the latest state,
                    // so a tail that fell behind retention notices and the
                    // old snapshot's mappings are let go.
                    let snap = self.log.snapshot();
                    self.relocate(snap)?;
                    if self.at.is_some() {
                        continue;
                    }
                }
            }
            if !self.refresh()? {
                return Ok(None);
            }
        }
    }

    /// Takes a newer snapshot if anything changed; `false` if nothing did.
    fn refresh(&mut self) -> Result<bool> {
        // More of the snapshot's live segment published: widen the view in
        // place (the common case of a tail keeping up with the writer; one
        // load of the committed word). Checked before the state, so a
        // polling tail pays no snapshot load per spin; a rotation or
        // retention is seen once this segment stops growing.
        let Some(committed) = self.live_grown() else {
            if !self.log.shared().state.is_current(&self.snap.state) {
                let snap = self.log.snapshot();
                self.relocate(snap)?;
                return Ok(true);
            }
            return Ok(false);
        };
        self.snap.active = Some(committed);
        if self.at.is_none() {
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
    /// parked tail re-makes after registering (see [`Waiters`]).
    fn has_new(&self, shared: &Shared) -> bool {
        !shared.state.is_current(&self.snap.state) || self.live_grown().is_some()
    }

    /// Adopts `snap` and finds record `next` in it.
    fn relocate(&mut self, snap: Snapshot) -> Result<()> {
        snap.check_retained(self.next)?;
        self.snap = snap;
        self.at = None;
        if self.next >= self.snap.next_seq() {
            return Ok(());
        }
        let Some(i) = self.snap.segment_of(self.next) else { return Ok(()) };
        let view = self.snap.view(i);
        let off = match self.hint {
            // An offset in the file this tail read; a compacted segment is
            // another file under the same name, so it is searched instead.
            Some((base, off)) if base == view.base_seq && !view.sparse => off,
            _ if view.base_seq == self.next => HEADER_BYTES,
            _ => view.locate(self.next)?,
        };
        self.at = Some((i, off));
        Ok(())
    }
}

/// Tails parked waiting for the writer, and how the writer wakes them.
///
/// # Protocol (no lost wake-ups)
///
/// Tail, to park ([`Waiters::wait_until`]):
/// 1. lock `lock`;
/// 2. `count += 1` (Relaxed), then the heavy barrier (`membarrier`, or a
///    `SeqCst` fence where that is unavailable or under loom);
/// 3. re-check for a published record (`ready()`, Acquire loads of the
///    committed word and of the snapshot pointer); if there is one, stop;
/// 4. `cv.wait` (atomically releases `lock`), then go to 3;
/// 5. on the way out, `count -= 1`.
///
/// Writer, after each publication ([`Waiters::wake`]):
/// 1. `Release` store of the committed word (done by the caller);
/// 2. the light barrier (a compiler fence when `membarrier` is registered,
///    else a `SeqCst` fence), then load `count` (Relaxed);
/// 3. only if it is non-zero: lock `lock`, `notify_all`, unlock.
///
/// Why nothing is lost: the heavy barrier makes every running thread, the
/// writer included, pass a full barrier before it returns, so it orders the
/// writer's store-then-load as a `SeqCst` fence there would, and the two
/// barriers are totally ordered. If the writer's comes first, the tail's
/// loads in step 3 see the writer's store, so it does not park. If the
/// tail's comes first, the writer's load of `count` sees the increment and it
/// takes the lock; the tail incremented while holding the lock and releases
/// it only by waiting, so the writer's `notify_all` happens after the tail
/// waits (or after it stopped), and wakes it. The writer's cost when nobody waits is
/// one load of a line only tails write (plus a fence where `membarrier` is
/// missing). The loom model checks this protocol with fences on both sides.
pub(crate) struct Waiters {
    count: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Waiters {
    pub(crate) fn new() -> Waiters {
        Waiters { count: AtomicUsize::new(0), lock: Mutex::new(()), cv: Condvar::new() }
    }

    /// Writer side: call after every `Release` publication.
    #[inline]
    pub(crate) fn wake(&self) {
        light_barrier();
        if self.count.load(Ordering::Relaxed) != 0 {
            self.wake_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_slow(&self) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_all();
    }

    /// Reader side: parks until `ready()` returns true or `deadline` passes;
    /// returns the last `ready()`. `ready` runs under the lock: keep it to a
    /// few atomic loads.
    pub(crate) fn wait_until(&self, mut ready: impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.count.fetch_add(1, Ordering::Relaxed);
        // Without the barrier a wake-up could be missed: then sleep in short
        // slices so a missed one costs at most a millisecond.
        let slice = if heavy_barrier() { Duration::from_secs(3600) } else { Duration::from_millis(1) };
        let ok = loop {
            if ready() {
                break true;
            }
            let wait = match deadline {
                None => slice,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(slice),
                    _ => break false,
                },
            };
            guard = match self.cv.wait_timeout(guard, wait) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        };
        self.count.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        ok
    }

    /// Tails parked right now (for tests and metrics).
    #[allow(dead_code)]
    pub(crate) fn parked(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Log {
    /// A [`Tail`] that yields records from `seq` on (`seq` may be past the
    /// end: the tail then waits for it). [`crate::Error::Truncated`] if retention
    /// removed `seq`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Truncated`] if retention removed `seq`.
    pub fn tail_from(&self, seq: u64) -> Result<Tail> {
        Tail::new(self.clone(), seq)
    }

    /// A [`Tail`] that yields only records published from now on.
    ///
    /// # Errors
    ///
    /// None today; the signature leaves room for the checks [`crate::Log::tail_from`] makes.
    pub fn tail_from_end(&self) -> Result<Tail> {
        Tail::new(self.clone(), self.next_seq())
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
        let snap = self.snapshot();
        let seq = match snap.seek_time(ts_us).next() {
            Some(Ok(r)) => r.seq(),
            Some(Err(e)) => return Err(e),
            None => snap.next_seq(),
        };
        Tail::new(self.clone(), seq)
    }
}

// A tail moves to the thread that consumes it.
const _: () = {
    const fn send<T: Send>() {}
    send::<Tail>();
    send::<OwnedRecord>();
};
