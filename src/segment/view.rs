//! The read side of one segment, the same for sealed and live segments.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{decode_frame, DecodedFrame, FrameError, IndexEntry, HEADER_BYTES};
use crate::record::Record;

use super::{ActiveSegment, LiveIndex, RemoteSegment, SealedSegment, Segment};

/// Where a remote segment's fetched form is kept for a snapshot.
pub(crate) type Slot = std::sync::OnceLock<Segment>;

#[derive(Clone, Copy)]
enum IndexView<'a> {
    Sealed(&'a [IndexEntry]),
    Live(&'a LiveIndex, usize),
}

/// Where a segment's keys are looked up.
#[derive(Clone, Copy)]
pub(crate) enum KeysOf<'a> {
    /// The footer's key section.
    Sealed(&'a SealedSegment),
    /// The writer's key table.
    Live(&'a ActiveSegment),
    /// A remote segment not fetched yet: no keys in view.
    Cold,
}

/// A consistent view of one segment: its frames up to a fixed end.
#[derive(Clone, Copy)]
pub(crate) struct SegView<'a> {
    segment: &'a Segment,
    pub(crate) path: &'a Path,
    frames: &'a [u8],
    pub(crate) base_seq: u64,
    pub(crate) count: u64,
    /// One past the last seq this segment covers.
    end_seq: u64,
    /// Written by compaction: seqs rise with gaps, `count` may be less than
    /// `end_seq - base_seq`.
    pub(crate) sparse: bool,
    /// Offset of the last frame (sealed segments; 0 otherwise).
    last_frame_offset: u64,
    index: IndexView<'a>,
    pub(crate) keys: KeysOf<'a>,
    /// A remote segment not fetched yet, and the slot its fetched form goes
    /// in: the view has its bounds but no frames until [`SegView::ready`].
    cold: Option<(&'a RemoteSegment, Option<&'a Slot>)>,
}

impl<'a> SegView<'a> {
    /// The view of `segment`; for a live one, `committed` (if given) fixes the
    /// end, otherwise its committed position is loaded now.
    pub(crate) fn of(segment: &'a Segment, committed: Option<(u64, u64)>) -> SegView<'a> {
        match segment {
            Segment::Sealed(s) => SegView {
                segment,
                path: &s.path,
                frames: s.frames(),
                base_seq: s.base_seq,
                count: s.count,
                end_seq: s.end_seq,
                sparse: s.compacted,
                last_frame_offset: s.last_frame_offset,
                index: IndexView::Sealed(s.index()),
                keys: KeysOf::Sealed(s),
                cold: None,
            },
            Segment::Remote(r) => SegView::cold(segment, r, None),
            Segment::Live(a) => {
                let (count, end) = committed.unwrap_or_else(|| a.committed());
                // The index length is loaded after the committed word, so it
                // may name frames past `end`; lookups filter those by seq.
                let index_len = a.index.len();
                SegView {
                    segment,
                    path: &a.path,
                    frames: a.map.frames(end),
                    base_seq: a.base_seq,
                    count,
                    end_seq: a.base_seq + count,
                    sparse: false,
                    last_frame_offset: 0,
                    index: IndexView::Live(&a.index, index_len),
                    keys: KeysOf::Live(a),
                    cold: None,
                }
            }
        }
    }

    /// The view of remote segment `r` before it is fetched: bounds from its
    /// metadata, no frames. `slot` is where [`SegView::ready`] keeps it.
    pub(crate) fn cold(segment: &'a Segment, r: &'a RemoteSegment, slot: Option<&'a Slot>) -> SegView<'a> {
        let m = &r.meta;
        SegView {
            segment,
            path: &r.path,
            frames: &[],
            base_seq: m.base_seq,
            count: m.count,
            end_seq: m.end_seq,
            sparse: m.compacted,
            last_frame_offset: m.last_frame_offset,
            index: IndexView::Sealed(&[]),
            keys: KeysOf::Cold,
            cold: Some((r, slot)),
        }
    }

    /// This view with its frames: a remote segment is fetched (or found in
    /// the cache) and mapped first. Every read of frames, index or keys
    /// goes through a view made ready; bounds need none.
    ///
    /// # Errors
    ///
    /// Whatever fetching the segment met: the store unreachable, or the
    /// object not matching the segment (a corruption error naming it).
    #[inline]
    pub(crate) fn ready(self) -> Result<SegView<'a>> {
        match self.cold {
            None => Ok(self),
            Some((r, slot)) => Self::fetched(r, slot),
        }
    }

    #[cold]
    fn fetched(r: &'a RemoteSegment, slot: Option<&'a Slot>) -> Result<SegView<'a>> {
        let slot = slot.ok_or_else(|| Error::corrupt(&r.path, 0, "a remote segment read outside a snapshot"))?;
        if let Some(seg) = slot.get() {
            return Ok(SegView::of(seg, None));
        }
        let sealed = r.load()?;
        Ok(SegView::of(slot.get_or_init(|| Segment::Sealed(sealed)), None))
    }

    /// The record `frame` of this segment holds.
    #[inline]
    pub(crate) fn record(&self, frame: &DecodedFrame<'a>) -> Record<'a> {
        Record::new(frame, self.segment)
    }

    /// One past the last seq in view.
    pub(crate) fn end_seq(&self) -> u64 {
        self.end_seq
    }

    /// Offset where the frames in view end.
    pub(crate) fn frames_end(&self) -> u64 {
        HEADER_BYTES + self.frames.len() as u64
    }

    /// The frame at `offset`, the next one at or after `seq`: in an
    /// appended segment it must carry `seq`; in a compacted one, any seq
    /// from `seq` up to the segment's end. `Ok(None)` at the end of the
    /// segment in view.
    #[inline]
    pub(crate) fn next_frame(&self, offset: u64, seq: u64, verify: bool) -> Result<Option<DecodedFrame<'a>>> {
        if !self.sparse {
            return if seq >= self.end_seq { Ok(None) } else { self.frame_at(offset, seq, verify).map(Some) };
        }
        if offset >= self.frames_end() || seq >= self.end_seq {
            return Ok(None);
        }
        let frame = self.decode_at(offset, verify)?;
        if frame.seq < seq || frame.seq >= self.end_seq {
            return Err(seq_error(self.path, offset, seq, frame.seq));
        }
        Ok(Some(frame))
    }

    /// The frame at `offset`, which must hold a seq at most `seq` (exactly
    /// `seq` in an appended segment): the walk backwards.
    pub(crate) fn frame_at_or_before(&self, offset: u64, seq: u64, verify: bool) -> Result<DecodedFrame<'a>> {
        if !self.sparse {
            return self.frame_at(offset, seq, verify);
        }
        let frame = self.decode_at(offset, verify)?;
        if frame.seq > seq || frame.seq < self.base_seq {
            return Err(seq_error(self.path, offset, seq, frame.seq));
        }
        Ok(frame)
    }

    /// Offset of the last frame with a seq at most `seq`, if the segment in
    /// view has one.
    pub(crate) fn locate_at_or_before(&self, seq: u64) -> Result<Option<u64>> {
        if !self.sparse {
            return if self.count == 0 || seq < self.base_seq { Ok(None) } else { self.locate(seq.min(self.end_seq - 1)).map(Some) };
        }
        let after = self.locate(seq.saturating_add(1))?;
        if after <= HEADER_BYTES {
            return Ok(None);
        }
        if after >= self.frames_end() {
            return Ok(Some(self.last_frame_offset));
        }
        let f = self.decode_at(after, false)?;
        after
            .checked_sub(f.prev_len)
            .filter(|&o| o >= HEADER_BYTES && f.prev_len > 0)
            .map(Some)
            .ok_or_else(|| Error::corrupt(self.path, after, "bad previous-frame length"))
    }

    pub(crate) fn decode_at(&self, offset: u64, verify: bool) -> Result<DecodedFrame<'a>> {
        let rel = offset.checked_sub(HEADER_BYTES).ok_or_else(|| Error::corrupt(self.path, offset, "frame offset inside the header"))?;
        decode_frame(self.frames, rel, verify).map_err(|e| self.frame_error(offset, e))
    }

    #[cold]
    #[inline(never)]
    fn frame_error(&self, offset: u64, e: FrameError) -> Error {
        match self.cold {
            // A path that forgot `ready`: say so rather than call it damage.
            Some((r, _)) => Error::corrupt(&r.path, offset, "remote segment read before it was fetched"),
            None => frame_error(self.path, offset, e),
        }
    }

    fn index_len(&self) -> usize {
        match self.index {
            IndexView::Sealed(e) => e.len(),
            IndexView::Live(_, n) => n,
        }
    }

    /// Entry `i` as `(seq, offset, max_ts)`.
    fn index_entry(&self, i: usize) -> (u64, u64, u64) {
        match self.index {
            IndexView::Sealed(e) => (e[i].seq.get(), e[i].offset.get(), e[i].max_ts.get()),
            IndexView::Live(idx, _) => idx.get(i),
        }
    }

    /// Decodes the frame at file offset `offset`, which must carry `seq`.
    #[inline]
    pub(crate) fn frame_at(&self, offset: u64, seq: u64, verify: bool) -> Result<DecodedFrame<'a>> {
        let frame = self.decode_at(offset, verify)?;
        if frame.seq != seq {
            return Err(seq_error(self.path, offset, seq, frame.seq));
        }
        Ok(frame)
    }

    /// File offset of the frame holding `seq` (which must be in view); in
    /// a compacted segment, of the first frame with a seq at least `seq`
    /// (the end of the frames if there is none).
    pub(crate) fn locate(&self, seq: u64) -> Result<u64> {
        let end_seq = self.end_seq();
        let n = self.index_len();
        // Last entry with entry.seq <= seq (entries are in seq order).
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (s, _, _) = self.index_entry(mid);
            if s <= seq && s < end_seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (mut cur_seq, mut off) = if lo == 0 {
            (self.base_seq, HEADER_BYTES)
        } else {
            let (s, o, _) = self.index_entry(lo - 1);
            (s, o)
        };
        while cur_seq < seq {
            let Some(frame) = self.next_frame(off, cur_seq, false)? else { break };
            if frame.seq >= seq {
                break;
            }
            off += frame.padded_len;
            cur_seq = frame.seq + 1;
        }
        Ok(off)
    }

    /// `(offset, seq)` of the first record with timestamp >= `ts`, if any.
    pub(crate) fn seek_time(&self, ts: u64, verify: bool) -> Result<Option<(u64, u64)>> {
        let end_seq = self.end_seq();
        let n = self.index_len();
        // Last entry whose running max is < ts: everything up to it is older.
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (s, _, m) = self.index_entry(mid);
            if m < ts && s < end_seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (mut seq, mut off) = if lo == 0 {
            (self.base_seq, HEADER_BYTES)
        } else {
            let (s, o, _) = self.index_entry(lo - 1);
            (s, o)
        };
        while let Some(frame) = self.next_frame(off, seq, verify)? {
            if frame.timestamp_us >= ts {
                return Ok(Some((off, frame.seq)));
            }
            off += frame.padded_len;
            seq = frame.seq + 1;
        }
        Ok(None)
    }
}

/// A frame at `offset` carries `found` where `expected` belongs.
#[cold]
#[inline(never)]
fn seq_error(path: &Path, offset: u64, expected: u64, found: u64) -> Error {
    Error::corrupt(path, offset, format!("expected seq {expected}, found {found}"))
}

/// Maps a frame decoding failure at `offset` to a typed error.
#[cold]
#[inline(never)]
pub(crate) fn frame_error(path: &Path, offset: u64, e: FrameError) -> Error {
    match e {
        FrameError::Checksum { stored, computed } => {
            Error::ChecksumMismatch { path: path.into(), offset, expected: stored, found: computed }
        }
        FrameError::End => Error::corrupt(path, offset, "record missing: frames end early"),
        FrameError::BadLength(len) => Error::corrupt(path, offset, format!("impossible frame length {len}")),
        FrameError::BadHeader => Error::corrupt(path, offset, "frame header has an impossible key length or unknown flags"),
    }
}
