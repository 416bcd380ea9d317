//! Walking frames from the start of a segment: used to seal, to reseal and to
//! recover. It checks every checksum and the seq chain and rebuilds the index.

use zerocopy::little_endian::U64;

use crate::format::{decode_frame, FrameError, IndexEntry, FLAG_BATCH_CONTINUES, HEADER_BYTES, INDEX_INTERVAL_BYTES};

/// Why a scan stopped before the end of the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanStop {
    /// A zero length: the clean end of written data.
    End,
    /// Bytes at `offset` are not a valid frame.
    Invalid { offset: u64, error: FrameError },
    /// A valid frame at `offset` carries the wrong seq.
    SeqBreak { offset: u64, found: u64, expected: u64 },
}

/// What a scan found. Only complete batches count: frames of a trailing
/// batch whose last frame is missing are excluded from `count` and `end`.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub(crate) count: u64,
    /// Offset just past the last complete frame (where appending continues).
    pub(crate) end: u64,
    pub(crate) last_frame_offset: u64,
    /// Padded length of the last counted frame (0 if none).
    pub(crate) last_frame_len: u64,
    pub(crate) min_ts: u64,
    pub(crate) max_ts: u64,
    pub(crate) index: Vec<IndexEntry>,
    /// Offset at which the writer would add the next index entry.
    pub(crate) next_index_at: u64,
    pub(crate) stop: ScanStop,
}

/// Scans `frames` (the file from `HEADER_BYTES` on) of a segment whose first
/// record is `base_seq`, checking every frame's checksum. Stops at the first
/// end, invalid frame or seq break.
pub(crate) fn scan_frames(frames: &[u8], base_seq: u64) -> Scanned {
    scan(frames, base_seq, true)
}

/// [`scan_frames`] without checksums: walks the headers, checking lengths,
/// flags and the seq and `prev_len` chains. For sealing, whose frames this
/// process wrote and checksummed moments ago; every reader and `verify`
/// still check each checksum.
pub(crate) fn walk_frames(frames: &[u8], base_seq: u64) -> Scanned {
    scan(frames, base_seq, false)
}

fn scan(frames: &[u8], base_seq: u64, verify_crc: bool) -> Scanned {
    let mut done = Scanned {
        count: 0,
        end: HEADER_BYTES,
        last_frame_offset: 0,
        last_frame_len: 0,
        min_ts: u64::MAX,
        max_ts: 0,
        index: Vec::new(),
        next_index_at: HEADER_BYTES,
        stop: ScanStop::End,
    };
    // The batch in progress is kept apart until its last frame is seen.
    let (mut count, mut off, mut min_ts, mut max_ts) = (0u64, HEADER_BYTES, u64::MAX, 0u64);
    let mut index_len = 0usize;
    let mut next_index_at = HEADER_BYTES;
    let mut last = (0u64, 0u64);
    loop {
        let expected = base_seq + count;
        let frame = match decode_frame(frames, off - HEADER_BYTES, verify_crc) {
            Ok(f) => f,
            Err(FrameError::End) => break,
            Err(error) => {
                done.stop = ScanStop::Invalid { offset: off, error };
                break;
            }
        };
        if frame.seq != expected || frame.prev_len != last.1 {
            done.stop = ScanStop::SeqBreak { offset: off, found: frame.seq, expected };
            break;
        }
        max_ts = max_ts.max(frame.timestamp_us);
        min_ts = min_ts.min(frame.timestamp_us);
        if off >= next_index_at {
            done.index.push(IndexEntry { seq: U64::new(frame.seq), offset: U64::new(off), max_ts: U64::new(max_ts) });
            next_index_at = off + INDEX_INTERVAL_BYTES;
        }
        last = (off, frame.padded_len);
        off += frame.padded_len;
        count += 1;
        if frame.flags & FLAG_BATCH_CONTINUES == 0 {
            done.count = count;
            done.end = off;
            done.last_frame_offset = last.0;
            done.last_frame_len = last.1;
            done.min_ts = min_ts;
            done.max_ts = max_ts;
            done.next_index_at = next_index_at;
            index_len = done.index.len();
        }
    }
    done.index.truncate(index_len);
    done
}
