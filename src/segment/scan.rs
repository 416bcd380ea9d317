//! Walking frames from the start of a segment: used to seal, to reseal and to
//! recover. It checks every checksum and the seq chain and rebuilds the index.

use zerocopy::little_endian::U64;

use crate::format::{decode_frame, key_hash128, FrameError, IndexEntry, FLAG_BATCH_CONTINUES, HEADER_BYTES, INDEX_INTERVAL_BYTES};

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
    /// One past the last counted seq (`base_seq` if none): `base_seq +
    /// count` unless the segment is compacted (its seqs may have gaps).
    pub(crate) next_seq: u64,
    /// Offset just past the last complete frame (where appending continues).
    pub(crate) end: u64,
    pub(crate) last_frame_offset: u64,
    /// Padded length of the last counted frame (0 if none).
    pub(crate) last_frame_len: u64,
    pub(crate) min_ts: u64,
    pub(crate) max_ts: u64,
    pub(crate) index: Vec<IndexEntry>,
    /// `(128-bit key hash, frame offset)` of every counted record with a key.
    pub(crate) keys: Vec<(u128, u32)>,
    /// Offset at which the writer would add the next index entry.
    pub(crate) next_index_at: u64,
    pub(crate) stop: ScanStop,
}

/// Scans `frames` (the file from `HEADER_BYTES` on) of a segment whose first
/// record is `base_seq`, checking every frame's checksum. Stops at the first
/// end, invalid frame or seq break.
pub(crate) fn scan_frames(frames: &[u8], base_seq: u64) -> Scanned {
    scan(frames, base_seq, Seqs::Dense, true, None)
}

/// [`scan_frames`] of a segment compaction wrote: seqs must rise from
/// `base_seq` on and stay below `end_seq`, gaps allowed.
pub(crate) fn scan_compacted(frames: &[u8], base_seq: u64, end_seq: u64) -> Scanned {
    scan(frames, base_seq, Seqs::Rising { end: end_seq }, true, None)
}

/// How seqs follow each other in a segment.
#[derive(Clone, Copy)]
pub(crate) enum Seqs {
    /// One after the other from the base seq: appended segments.
    Dense,
    /// Rising, gaps allowed, below `end`: compacted segments.
    Rising { end: u64 },
}

/// [`scan_frames`] without checksums, feeding every byte of `frames` to
/// `digest` on the way: walks the headers, checking lengths, flags and the
/// seq and `prev_len` chains. For sealing, whose frames this process wrote
/// and checksummed moments ago (every reader and `verify` still check each
/// checksum). Hashing each block just before walking it reads the segment
/// from memory once instead of twice (~10 ms per 64 MiB here).
pub(crate) fn walk_and_digest(frames: &[u8], base_seq: u64, digest: &mut blake3::Hasher) -> Scanned {
    scan(frames, base_seq, Seqs::Dense, false, Some(digest))
}

/// [`walk_and_digest`] for a segment compaction is writing.
pub(crate) fn walk_and_digest_compacted(frames: &[u8], base_seq: u64, end_seq: u64, digest: &mut blake3::Hasher) -> Scanned {
    scan(frames, base_seq, Seqs::Rising { end: end_seq }, false, Some(digest))
}

/// Bytes hashed ahead of the walk at a time: fits in L2.
const DIGEST_BLOCK: usize = 256 << 10;

fn scan(frames: &[u8], base_seq: u64, seqs: Seqs, verify_crc: bool, mut digest: Option<&mut blake3::Hasher>) -> Scanned {
    let mut hashed = 0usize;
    let mut hash_to = |to: usize, digest: &mut Option<&mut blake3::Hasher>| {
        if let Some(h) = digest.as_deref_mut() {
            while hashed < to.min(frames.len()) {
                let next = (hashed + DIGEST_BLOCK).min(frames.len());
                h.update(&frames[hashed..next]);
                hashed = next;
            }
        }
    };
    let mut done = Scanned {
        count: 0,
        next_seq: base_seq,
        end: HEADER_BYTES,
        last_frame_offset: 0,
        last_frame_len: 0,
        min_ts: u64::MAX,
        max_ts: 0,
        index: Vec::new(),
        keys: Vec::new(),
        next_index_at: HEADER_BYTES,
        stop: ScanStop::End,
    };
    // The batch in progress is kept apart until its last frame is seen.
    let (mut count, mut off, mut min_ts, mut max_ts) = (0u64, HEADER_BYTES, u64::MAX, 0u64);
    let (mut index_len, mut keys_len) = (0usize, 0usize);
    let mut next_index_at = HEADER_BYTES;
    let mut last = (0u64, 0u64);
    let mut next_seq = base_seq;
    loop {
        let expected = next_seq;
        hash_to((off - HEADER_BYTES) as usize + 1, &mut digest);
        let frame = match decode_frame(frames, off - HEADER_BYTES, verify_crc) {
            Ok(f) => f,
            Err(FrameError::End) => break,
            Err(error) => {
                done.stop = ScanStop::Invalid { offset: off, error };
                break;
            }
        };
        let seq_ok = match seqs {
            Seqs::Dense => frame.seq == expected,
            Seqs::Rising { end } => frame.seq >= expected && frame.seq < end,
        };
        if !seq_ok || frame.prev_len != last.1 {
            done.stop = ScanStop::SeqBreak { offset: off, found: frame.seq, expected };
            break;
        }
        max_ts = max_ts.max(frame.timestamp_us);
        min_ts = min_ts.min(frame.timestamp_us);
        if off >= next_index_at {
            done.index.push(IndexEntry { seq: U64::new(frame.seq), offset: U64::new(off), max_ts: U64::new(max_ts) });
            next_index_at = off + INDEX_INTERVAL_BYTES;
        }
        if !frame.key.is_empty() {
            done.keys.push((key_hash128(frame.key), off as u32));
        }
        last = (off, frame.padded_len);
        off += frame.padded_len;
        count += 1;
        next_seq = frame.seq + 1;
        if frame.flags & FLAG_BATCH_CONTINUES == 0 {
            done.count = count;
            done.next_seq = next_seq;
            keys_len = done.keys.len();
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
    done.keys.truncate(keys_len);
    hash_to(frames.len(), &mut digest);
    done
}

#[cfg(test)]
mod tests {
    use zerocopy::little_endian::{U16, U32, U64};
    use zerocopy::IntoBytes;

    use super::*;
    use crate::format::{align_up, frame_crc_in_place, FrameHeader, FRAME_HEADER_BYTES};

    /// `n` frames of varying sizes (some larger than a digest block) from
    /// seq `base`, laid down as a segment's frame area.
    fn frames(base: u64, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0u64;
        for i in 0..n {
            let payload = vec![(i % 251) as u8; [1usize, 100, 3000, 300_000][(i % 4) as usize]];
            let len = FRAME_HEADER_BYTES + payload.len() as u64;
            let h = FrameHeader {
                len: U32::new(len as u32),
                crc: U32::new(0),
                seq: U64::new(base + i),
                timestamp_us: U64::new(i),
                prev_len: U32::new(prev as u32),
                key_len: U16::new(0),
                flags: 0,
                reserved: 0,
            };
            let start = out.len();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(&payload);
            let crc = frame_crc_in_place(&out[start..]);
            out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            out.resize(start + align_up(len) as usize, 0);
            prev = align_up(len);
        }
        out
    }

    #[test]
    fn walking_with_a_digest_hashes_exactly_the_frames_and_agrees_with_the_scan() {
        // Goal: the fused walk feeds the digest every byte of the frame area
        // once, in order, across digest blocks and frames straddling them,
        // and finds what the checksummed scan finds.
        let bytes = frames(7, 41);
        assert!(bytes.len() > 4 * DIGEST_BLOCK);
        let mut h = blake3::Hasher::new();
        let walked = walk_and_digest(&bytes, 7, &mut h);
        assert_eq!(h.finalize(), blake3::hash(&bytes));
        let scanned = scan_frames(&bytes, 7);
        assert_eq!((walked.count, walked.end, walked.stop), (41, HEADER_BYTES + bytes.len() as u64, ScanStop::End));
        assert_eq!((scanned.count, scanned.end, scanned.min_ts, scanned.max_ts), (walked.count, walked.end, walked.min_ts, walked.max_ts));
        assert_eq!(scanned.index.len(), walked.index.len());
        // A prefix ending inside a frame: the walk stops there, the digest
        // still covers every byte it was given.
        let cut = &bytes[..bytes.len() - 5];
        let mut h = blake3::Hasher::new();
        let walked = walk_and_digest(cut, 7, &mut h);
        assert_eq!(h.finalize(), blake3::hash(cut));
        assert_eq!(walked.count, 40);
    }
}
