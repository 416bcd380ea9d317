//! Seq-range and time-range queries over a snapshot.
//!
//! Both skip whole segments without reading them: a seq range by the
//! segments' base seqs, a time range by the min/max timestamps in each
//! sealed segment's footer. The log does not require timestamps to grow
//! with seq (callers may give their own), so a time range never stops at
//! the first record past its end: within each segment that may hold
//! matching records it starts where the sparse index (running maximum of
//! timestamps) says nothing earlier can match, then reads to the segment's
//! end and filters.

use std::ops::{Bound, RangeBounds};

use crate::error::Result;
use crate::record::Record;
use crate::segment::{SegView, Segment};
use crate::snapshot::{Iter, RevIter, Snapshot};

/// Records of a seq range, from [`Snapshot::range`], from either end
/// (`.rev()` walks it newest first).
///
/// [`Iterator::size_hint`] counts the seqs of the range not yet yielded,
/// and is exact while all of them can be read. It is not an
/// [`ExactSizeIterator`]: damage, a gap, or a start that retention removed
/// ends the iteration early (one `Err` item, then `None`).
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct RangeIter<'a> {
    snap: &'a Snapshot,
    front: Iter<'a>,
    /// Created by the first `next_back`.
    back: Option<RevIter<'a>>,
    /// The seqs not yet yielded from either end: `lo..hi`.
    lo: u64,
    hi: u64,
    done: bool,
}

impl<'a> RangeIter<'a> {
    /// Ends the iteration after `item` if it is an error or out of range.
    fn keep(&mut self, item: Option<Result<Record<'a>>>) -> Option<Result<Record<'a>>> {
        match item {
            Some(Ok(r)) if (self.lo..self.hi).contains(&r.seq()) => Some(Ok(r)),
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.lo >= self.hi {
            return None;
        }
        let item = self.front.next();
        let item = self.keep(item);
        if let Some(Ok(r)) = &item {
            self.lo = r.seq() + 1;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.snap.hint(if self.done { 0 } else { self.hi.saturating_sub(self.lo) })
    }
}

impl<'a> DoubleEndedIterator for RangeIter<'a> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done || self.lo >= self.hi {
            return None;
        }
        let (snap, last) = (self.snap, self.hi - 1);
        let item = match self.back.get_or_insert_with(|| snap.iter_rev_from(last)).next() {
            // The walk back ended before `lo`: an error from the front says
            // why (e.g. `Error::Truncated` if retention removed the range's
            // start); a record from the front would be out of order.
            None => self.front.next().filter(Result::is_err),
            item => item,
        };
        let item = self.keep(item);
        if let Some(Ok(r)) = &item {
            self.hi = r.seq();
        }
        item
    }
}

impl std::iter::FusedIterator for RangeIter<'_> {}

/// Records whose timestamp is in a range, in seq order, from
/// [`Snapshot::time_range`].
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct TimeRangeIter<'a> {
    snap: &'a Snapshot,
    /// Next segment to consider when `cur` is done.
    seg: usize,
    /// The segment being read: view, offset and seq of the next frame.
    cur: Option<(SegView<'a>, u64, u64)>,
    lo: u64,
    hi: u64,
    done: bool,
}

impl<'a> TimeRangeIter<'a> {
    /// Whether segment `i` may hold a record in `lo..=hi` (live segments
    /// carry no bounds yet, so they may).
    fn candidate(&self, i: usize) -> bool {
        match &self.snap.state.segments[i] {
            Segment::Sealed(s) => s.count > 0 && s.max_ts >= self.lo && s.min_ts <= self.hi,
            Segment::Remote(r) => r.meta.count > 0 && r.meta.max_ts >= self.lo && r.meta.min_ts <= self.hi,
            Segment::Live(_) => true,
        }
    }

    /// Moves to the next segment that may match; `Ok(false)` when none is left.
    fn open_next_segment(&mut self) -> Result<bool> {
        while self.seg < self.snap.segment_count() {
            let i = self.seg;
            self.seg += 1;
            if !self.candidate(i) {
                continue;
            }
            let view = self.snap.view_ready(i)?;
            if let Some((off, seq)) = view.seek_time(self.lo, true)? {
                self.cur = Some((view, off, seq));
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn step(&mut self) -> Result<Option<Record<'a>>> {
        loop {
            let Some((view, off, seq)) = self.cur else {
                if !self.open_next_segment()? {
                    return Ok(None);
                }
                continue;
            };
            let Some(frame) = view.next_frame(off, seq, true)? else {
                self.cur = None;
                continue;
            };
            self.cur = Some((view, off + frame.padded_len, frame.seq + 1));
            if (self.lo..=self.hi).contains(&frame.timestamp_us) {
                return Ok(Some(view.record(&frame)));
            }
        }
    }
}

impl<'a> Iterator for TimeRangeIter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Snapshot {
    /// Records whose seq is in `range`, in order, e.g. `snap.range(100..200)`.
    /// Segments before the start are skipped by their base seqs. If the
    /// start was removed by retention the first item is
    /// [`crate::Error::Truncated`]; an unbounded start means the first record
    /// still in the log.
    pub fn range(&self, range: impl RangeBounds<u64>) -> RangeIter<'_> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => self.first_seq().unwrap_or(0),
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        // Seqs past the snapshot's end cannot be yielded.
        let end = end.min(self.next_seq());
        let front = self.iter_from(start);
        RangeIter { snap: self, front, back: None, lo: start, hi: end, done: start >= end }
    }

    /// Records whose timestamp (µs since the Unix epoch) is in `range`, in
    /// seq order, e.g. `snap.time_range(t0..t1)`.
    ///
    /// Timestamps are not assumed to grow with seq (the log accepts caller
    /// timestamps in any order): sealed segments whose footer bounds miss
    /// the range are skipped whole, and in every other segment the records
    /// from the first one that may match to the segment's end are read and
    /// filtered. With timestamps that do grow, that reads at most one index
    /// interval (4 KiB) of non-matching frames per segment at the start and
    /// the rest of the last matching segment at the end.
    pub fn time_range(&self, range: impl RangeBounds<u64>) -> TimeRangeIter<'_> {
        let lo = match range.start_bound() {
            Bound::Included(&t) => Some(t),
            Bound::Excluded(&t) => t.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let hi = match range.end_bound() {
            Bound::Included(&t) => Some(t),
            Bound::Excluded(&t) => t.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        let (lo, hi, done) = match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => (lo, hi, false),
            _ => (1, 0, true),
        };
        TimeRangeIter { snap: self, seg: 0, cur: None, lo, hi, done }
    }
}
