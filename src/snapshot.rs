//! What readers see: an immutable list of segments, read without locks.

use crate::error::{Error, Result};
use std::path::Path;

use crate::format::{segment_file_name, DecodedFrame, HEADER_BYTES};
use crate::record::Record;
use crate::segment::view::Slot;
use crate::segment::{SegView, Segment};
use crate::sync::Arc;

/// The segments of the log at one moment, oldest first; the last is active.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) segments: Vec<Segment>,
    /// A filter holding the keys of every sealed segment in `segments`
    /// (see `keys/log_filter.rs`), once the sealer has built it.
    pub(crate) keys_filter: Option<std::sync::Arc<crate::keys::LogFilter>>,
    /// Whether any segment is remote (snapshots then keep slots for the
    /// ones they fetch).
    pub(crate) has_remote: bool,
}

impl State {
    /// A state of `segments` with no key filter yet.
    pub(crate) fn new(segments: Vec<Segment>) -> State {
        let has_remote = segments.iter().any(|s| matches!(s, Segment::Remote(_)));
        State { segments, keys_filter: None, has_remote }
    }

    /// A state of `segments`, keeping this one's key filter: for segments
    /// that hold no keys this one's sealed segments do not (a live segment
    /// added, sealed segments removed or compacted).
    pub(crate) fn with_segments(&self, segments: Vec<Segment>) -> State {
        State { keys_filter: self.keys_filter.clone(), ..State::new(segments) }
    }

    /// This state with every segment `swap` gives a replacement for replaced.
    pub(crate) fn replacing(&self, swap: impl Fn(&Segment) -> Option<Segment>) -> State {
        self.with_segments(self.segments.iter().map(|s| swap(s).unwrap_or_else(|| s.clone())).collect())
    }
}

/// A consistent, immutable view of the log: the records published when it
/// was taken. Cheap to take ([`crate::Log::snapshot`] is one atomic load) and
/// to clone; it keeps its segments mapped for as long as it lives, even if
/// retention removes them from the log meanwhile.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) state: Arc<State>,
    /// `(count, end)` of the last (active) segment when taken.
    pub(crate) active: Option<(u64, u64)>,
    /// For a log with remote segments: each one this snapshot fetched, kept
    /// mapped while the snapshot (or a clone) lives.
    fetched: Option<std::sync::Arc<[Slot]>>,
}

impl Snapshot {
    pub(crate) fn new(state: Arc<State>) -> Snapshot {
        let active = match state.segments.last() {
            Some(Segment::Live(a)) => Some(a.committed()),
            _ => None,
        };
        let fetched = state.has_remote.then(|| (0..state.segments.len()).map(|_| Slot::new()).collect());
        Snapshot { state, active, fetched }
    }

    /// A size hint for `n` seqs: exact, unless a compacted segment is in
    /// view (then up to `n` records remain).
    pub(crate) fn hint(&self, n: u64) -> (usize, Option<usize>) {
        let (lo, hi) = exact_hint(n);
        if self.state.segments.iter().any(Segment::is_compacted) {
            (0, hi)
        } else {
            (lo, hi)
        }
    }

    /// The segments in view, oldest first.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.state.segments
    }

    /// The view of segment `i`, fixed at this snapshot's position. For
    /// its bounds only: reading its frames, index or keys takes
    /// [`Snapshot::view_ready`].
    pub(crate) fn view(&self, i: usize) -> SegView<'_> {
        let seg = &self.state.segments[i];
        if let (Segment::Remote(r), Some(slots)) = (seg, &self.fetched) {
            return match slots[i].get() {
                Some(fetched) => SegView::of(fetched, None),
                None => SegView::cold(seg, r, Some(&slots[i])),
            };
        }
        let last = i + 1 == self.state.segments.len();
        SegView::of(seg, if last { self.active } else { None })
    }

    /// Sealed segment `i` (a remote one fetched first); `None` for a live one.
    pub(crate) fn sealed_ready(&self, i: usize) -> Result<Option<&crate::segment::SealedSegment>> {
        self.view_ready(i)?;
        let seg = match (&self.state.segments[i], &self.fetched) {
            (Segment::Remote(_), Some(slots)) => slots[i].get(),
            (seg, _) => Some(seg),
        };
        Ok(match seg {
            Some(Segment::Sealed(s)) => Some(s),
            _ => None,
        })
    }

    /// The view of segment `i` with its frames: a remote segment is fetched
    /// into the cache first (see `tiering/`).
    #[inline]
    pub(crate) fn view_ready(&self, i: usize) -> Result<SegView<'_>> {
        self.view(i).ready()
    }

    /// Number of segment files in view.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.state.segments.len()
    }

    /// The first seq still in the log (retention removed those before it),
    /// or `None` if it holds no record. Compaction may have removed the
    /// record itself: [`Snapshot::iter`] starts at the first one left.
    #[must_use]
    pub fn first_seq(&self) -> Option<u64> {
        let first = self.state.segments.first()?.base_seq();
        (first < self.next_seq()).then_some(first)
    }

    /// The last seq published when the snapshot was taken, or `None` if empty.
    #[must_use]
    pub fn last_seq(&self) -> Option<u64> {
        self.next_seq().checked_sub(1).filter(|_| self.first_seq().is_some())
    }

    /// The seq the next append will get (as of this snapshot).
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        match self.state.segments.len() {
            0 => 0,
            n => self.view(n - 1).end_seq(),
        }
    }

    /// Number of records in view: the seqs from [`Snapshot::first_seq`] to
    /// the end, less any that compaction removed.
    #[must_use]
    pub fn len(&self) -> u64 {
        (0..self.state.segments.len()).map(|i| self.view(i).count).sum()
    }

    /// Whether the snapshot holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of the segment that holds `seq`, if any.
    pub(crate) fn segment_of(&self, seq: u64) -> Option<usize> {
        let segs = &self.state.segments;
        let i = segs.partition_point(|s| s.base_seq() <= seq).checked_sub(1)?;
        (seq < self.view(i).end_seq()).then_some(i)
    }

    /// [`Error::Missing`] if `seq` falls between two segments that do not
    /// meet (a segment file is absent), naming the file that would hold it.
    pub(crate) fn missing(&self, seq: u64) -> Option<Error> {
        let segs = &self.state.segments;
        let i = segs.partition_point(|s| s.base_seq() <= seq).checked_sub(1)?;
        let next = segs.get(i + 1)?.base_seq();
        let end = self.view(i).end_seq();
        (seq >= end && end < next).then(|| self.gap_error(i, end, next))
    }

    /// [`Error::Missing`] for the gap after segment `i`, if there is one.
    fn gap_after(&self, i: usize) -> Option<Error> {
        let next = self.state.segments.get(i + 1)?.base_seq();
        let end = self.view(i).end_seq();
        (end < next).then(|| self.gap_error(i, end, next))
    }

    fn gap_error(&self, i: usize, from: u64, to: u64) -> Error {
        let dir = self.view(i).path.parent().map(Path::to_path_buf).unwrap_or_default();
        Error::Missing { path: dir.join(segment_file_name(from)), from, to }
    }

    pub(crate) fn check_retained(&self, seq: u64) -> Result<()> {
        match self.state.segments.first() {
            Some(s) if seq < s.base_seq() => Err(Error::Truncated { requested: seq, first_available: s.base_seq() }),
            _ => Ok(()),
        }
    }

    /// The record with `seq`, `Ok(None)` if it is not yet written (or
    /// compaction removed it: see [`crate::Log::compact`]),
    /// [`Error::Truncated`] if retention removed it, or [`Error::Missing`]
    /// if the segment file that held it is absent.
    ///
    /// # Errors
    ///
    /// See above; damage at the record is a corruption error naming file and offset.
    pub fn get(&self, seq: u64) -> Result<Option<Record<'_>>> {
        self.check_retained(seq)?;
        let Some(i) = self.segment_of(seq) else {
            return match self.missing(seq) {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        let view = self.view_ready(i)?;
        let off = view.locate(seq)?;
        // In a compacted segment the seq may have been removed: the frame
        // found is then a later one, or there is none.
        match view.next_frame(off, seq, true)? {
            Some(f) if f.seq == seq => Ok(Some(view.record(&f))),
            _ => Ok(None),
        }
    }

    /// All records, oldest first.
    pub fn iter(&self) -> Iter<'_> {
        match self.first_seq() {
            Some(s) => self.iter_from(s),
            None => Iter::empty(self),
        }
    }

    /// Records from `seq` on. The first item is [`Error::Truncated`] if
    /// retention removed `seq`; the iterator is empty if `seq` is past the end.
    pub fn iter_from(&self, seq: u64) -> Iter<'_> {
        if let Err(e) = self.check_retained(seq) {
            return Iter::failed(self, e);
        }
        let Some(i) = self.segment_of(seq) else {
            return match self.missing(seq) {
                Some(e) => Iter::failed(self, e),
                None => Iter::empty(self),
            };
        };
        match self.view_ready(i).and_then(|view| Ok((view, view.locate(seq)?))) {
            Ok((view, off)) => Iter { snap: self, seg: i, view: Some(view), off, seq, verify: true, error: None, done: false },
            Err(e) => Iter::failed(self, e),
        }
    }

    /// Records from `seq` (or the last one, if `seq` is past it) backwards to
    /// the first.
    pub fn iter_rev_from(&self, seq: u64) -> RevIter<'_> {
        if let Err(e) = self.check_retained(seq) {
            return RevIter::failed(self, e);
        }
        let Some(last) = self.last_seq() else { return RevIter::failed_none(self) };
        let seq = seq.min(last);
        let Some(i) = self.segment_of(seq) else {
            return match self.missing(seq) {
                Some(e) => RevIter::failed(self, e),
                None => RevIter::failed_none(self),
            };
        };
        // The last record at or before `seq` (compaction may have removed
        // `seq`, and every record after it in its segment).
        for i in (0..=i).rev() {
            match self.view_ready(i).and_then(|view| Ok((view, view.locate_at_or_before(seq)?))) {
                Ok((view, Some(off))) => return RevIter { snap: self, seg: i, view: Some(view), off, seq, error: None },
                Ok((_, None)) => {}
                Err(e) => return RevIter::failed(self, e),
            }
            if i > 0 {
                if let Some(e) = self.gap_after(i - 1) {
                    return RevIter::failed(self, e);
                }
            }
        }
        RevIter::failed_none(self)
    }

    /// All records, newest first.
    pub fn iter_rev(&self) -> RevIter<'_> {
        self.iter_rev_from(u64::MAX)
    }

    /// Records from the first whose timestamp is at least `ts_us`.
    ///
    /// Timestamps are not required to grow with seq; this finds the first
    /// record in seq order with `timestamp >= ts_us`, skipping whole segments
    /// (and index blocks) whose largest timestamp is smaller. Records
    /// missing from the log ([`Error::Missing`]) might have been the answer,
    /// so meeting such a gap before finding one is that error.
    pub fn seek_time(&self, ts_us: u64) -> Iter<'_> {
        for i in 0..self.state.segments.len() {
            let skip = self.state.segments[i].sealed_max_ts().is_some_and(|m| m < ts_us);
            if !skip {
                match self.view_ready(i).and_then(|view| Ok((view, view.seek_time(ts_us, true)?))) {
                    Ok((view, Some((off, seq)))) => {
                        return Iter { snap: self, seg: i, view: Some(view), off, seq, verify: true, error: None, done: false }
                    }
                    Ok((_, None)) => {}
                    Err(e) => return Iter::failed(self, e),
                }
            }
            if let Some(e) = self.gap_after(i) {
                return Iter::failed(self, e);
            }
        }
        Iter::empty(self)
    }
}

/// Forward iterator over a snapshot. Yields `Err` once (then ends) if it
/// meets damaged data, naming the file and offset.
///
/// [`Iterator::size_hint`] is exact: the records from the position to the
/// snapshot's end. It is not an [`ExactSizeIterator`] because damage ends
/// iteration early (one `Err` item, then `None`).
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<'a> {
    snap: &'a Snapshot,
    seg: usize,
    view: Option<SegView<'a>>,
    off: u64,
    seq: u64,
    verify: bool,
    error: Option<Error>,
    done: bool,
}

impl<'a> Iter<'a> {
    fn empty(snap: &'a Snapshot) -> Self {
        Iter { snap, seg: 0, view: None, off: 0, seq: 0, verify: true, error: None, done: true }
    }

    fn failed(snap: &'a Snapshot, e: Error) -> Self {
        Iter { error: Some(e), ..Iter::empty(snap) }
    }

    /// Skips per-frame checksum verification (frames are still bounds- and
    /// seq-checked). For data this process just wrote and trusts.
    #[must_use = "this returns the changed iterator; the original is consumed"]
    pub fn without_checksums(mut self) -> Self {
        self.verify = false;
        self
    }

    /// The seq the next call to `next` would yield.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.seq
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        loop {
            let view = match self.view {
                Some(v) => v,
                None => {
                    if self.seg >= self.snap.state.segments.len() {
                        self.done = true;
                        return None;
                    }
                    let v = self.snap.view(self.seg);
                    if v.base_seq > self.seq && self.seg > 0 {
                        self.done = true;
                        return Some(Err(self.snap.gap_error(self.seg - 1, self.seq, v.base_seq)));
                    }
                    if v.base_seq != self.seq {
                        self.done = true;
                        let what = format!("segment starts at seq {}, expected {}", v.base_seq, self.seq);
                        return Some(Err(Error::corrupt(v.path, 0, what)));
                    }
                    let v = match v.ready() {
                        Ok(v) => v,
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    };
                    self.off = HEADER_BYTES;
                    self.view = Some(v);
                    v
                }
            };
            return match view.next_frame(self.off, self.seq, self.verify) {
                Ok(Some(f)) => {
                    self.off += f.padded_len;
                    self.seq = f.seq + 1;
                    Some(Ok(view.record(&f)))
                }
                Ok(None) => {
                    // Past the segment's last record (in a compacted one,
                    // seqs up to its end may have been removed).
                    self.seq = self.seq.max(view.end_seq());
                    self.seg += 1;
                    self.view = None;
                    continue;
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            };
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match (&self.error, self.done) {
            (Some(_), _) => 1,
            (None, true) => 0,
            (None, false) => self.snap.next_seq().saturating_sub(self.seq),
        };
        self.snap.hint(left)
    }
}

impl std::iter::FusedIterator for Iter<'_> {}

/// `(n, Some(n))`, with `n` as a `usize` if it fits.
pub(crate) fn exact_hint(n: u64) -> (usize, Option<usize>) {
    match usize::try_from(n) {
        Ok(n) => (n, Some(n)),
        Err(_) => (usize::MAX, None),
    }
}

/// Backward iterator over a snapshot, walking frames by their `prev_len`.
///
/// [`Iterator::size_hint`] is exact: the records from the position back to
/// the snapshot's first. It is not an [`ExactSizeIterator`] because damage
/// ends iteration early (one `Err` item, then `None`).
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct RevIter<'a> {
    snap: &'a Snapshot,
    seg: usize,
    view: Option<SegView<'a>>,
    off: u64,
    seq: u64,
    error: Option<Error>,
}

impl<'a> RevIter<'a> {
    fn failed_none(snap: &'a Snapshot) -> Self {
        RevIter { snap, seg: 0, view: None, off: 0, seq: 0, error: None }
    }

    fn failed(snap: &'a Snapshot, e: Error) -> Self {
        RevIter { error: Some(e), ..RevIter::failed_none(snap) }
    }

    /// Moves to the record before the one at `self.off`, given its frame.
    fn step_back(&mut self, f: &DecodedFrame<'a>, view: SegView<'a>) -> Result<()> {
        self.seq = f.seq;
        if self.off > HEADER_BYTES {
            if f.prev_len == 0 || f.prev_len > self.off - HEADER_BYTES || self.seq == view.base_seq {
                return Err(Error::corrupt(view.path, self.off, "bad previous-frame length"));
            }
            self.off -= f.prev_len;
            self.seq -= 1;
            return Ok(());
        }
        if self.seq != view.base_seq && !view.sparse {
            return Err(Error::corrupt(
                view.path,
                self.off,
                format!("first frame holds seq {}, the segment starts at {}", self.seq, view.base_seq),
            ));
        }
        self.seq = view.base_seq;
        // First record of this segment: continue at the end of the previous one.
        while self.seg > 0 {
            self.seg -= 1;
            let prev = self.snap.view(self.seg);
            if prev.count == 0 {
                // An empty segment (compaction may have removed all its
                // records) covers its seqs: go on from where it starts.
                if prev.end_seq() == self.seq {
                    self.seq = prev.base_seq;
                }
                continue;
            }
            if prev.end_seq() < self.seq {
                return Err(self.snap.gap_error(self.seg, prev.end_seq(), self.seq));
            }
            if prev.end_seq() != self.seq {
                return Err(Error::corrupt(prev.path, 0, format!("segment ends at seq {}, expected {}", prev.end_seq(), self.seq)));
            }
            self.seq -= 1;
            let prev = prev.ready()?;
            let Some(off) = prev.locate_at_or_before(self.seq)? else {
                self.seq = prev.base_seq;
                continue;
            };
            self.off = off;
            self.view = Some(prev);
            return Ok(());
        }
        self.view = None;
        Ok(())
    }
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.view = None;
            return Some(Err(e));
        }
        let view = self.view?;
        let frame = match view.frame_at_or_before(self.off, self.seq, true) {
            Ok(f) => f,
            Err(e) => {
                self.view = None;
                return Some(Err(e));
            }
        };
        if let Err(e) = self.step_back(&frame, view) {
            self.error = Some(e);
        }
        Some(Ok(view.record(&frame)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match (&self.error, self.view) {
            (Some(_), _) => 1,
            (None, None) => 0,
            (None, Some(_)) => (self.seq + 1).saturating_sub(self.snap.first_seq().unwrap_or(0)),
        };
        self.snap.hint(left)
    }
}

impl std::iter::FusedIterator for RevIter<'_> {}
