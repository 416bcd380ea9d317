//! Bytes on disk: every constant, struct and check of the segment format.
//!
//! **Not a stable API.** This module is public so that tools and tests can
//! read segment files byte by byte; its items may change in any release,
//! whatever the crate's version says. What is stable is the format itself:
//! each segment names its version, and a build meets an unknown one with
//! [`crate::Error::UnsupportedVersion`]. The encoders the engine writes
//! with are hidden from these docs.
//!
//! All integers are little-endian. All structs here are `zerocopy` views with
//! alignment 1, so they can be read in place from any byte offset of a mapping.
//! This module is the single source of truth for the numbers, and `const`
//! assertions keep them in step with the specification below (`docs/format.md`
//! in the repository).
//!
//! [multi_process.md]: crate::docs::multi_process
#![doc = include_str!("../../docs/format.md")]

mod footer;
mod frame;
mod header;
mod keys;
mod merkle;

pub use footer::{chain_digest, decode_footer, decode_footer_full, DecodedFooter, FooterError, FooterHeader, IndexEntry, Trailer};
pub use frame::{decode_frame, DecodedFrame, FrameError, FrameHeader};
pub use header::{HeaderError, SegmentHeader};
pub use keys::{
    filter_bytes_bound, key_hash, key_hash128, key_section_len, order_key, KeyEntry, KeySection, KeySectionHeader, KeySectionLayout,
    KEY_ENTRY_BYTES, KEY_RESERVE_BYTES, KEY_SECTION_FIXED_BYTES, KEY_SECTION_HEADER_BYTES,
};
pub use merkle::{encode_merkle_section, merkle_bound, merkle_hashes, MerkleSection, MERKLE_HASH_BYTES, MERKLE_LEVEL};

// The engine's encoders: public for the tests that craft segment files, not
// for users (a user writes through `Writer`).
#[doc(hidden)]
pub use footer::encode_footer;
#[doc(hidden)]
pub use frame::{frame_crc, frame_crc_in_place};
#[doc(hidden)]
pub use keys::encode_key_section;

/// The format version this build writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 4;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"VARVSEG\0";
/// Header flag: the segment was written by compaction. Its seqs rise but
/// may have gaps (records compaction removed); its footer's `end_seq` says
/// where the next segment starts.
pub const HEADER_FLAG_COMPACTED: u16 = 0x0001;
/// Header flags this version understands; any other bit is corrupt.
pub const HEADER_FLAGS_KNOWN: u16 = HEADER_FLAG_COMPACTED;

/// First bytes of a sealed segment's footer.
pub const FOOTER_MAGIC: [u8; 8] = *b"VARVFOOT";
/// First bytes of a sealed segment's trailer (the last 32 bytes of the file).
pub const TRAILER_MAGIC: [u8; 8] = *b"VARVTRLR";

/// The header occupies the whole first page; frames start right after it.
pub const HEADER_BYTES: u64 = 4096;
/// Offset of the live committed word inside the header page (own cache line).
/// The writer mirrors its committed position here so that a reader in another
/// process can follow a live log. It is never covered by any checksum.
pub const LIVE_COMMITTED_OFFSET: u64 = 256;

/// Frames start and end on this alignment, so payloads are 8-byte aligned.
pub const FRAME_ALIGN: u64 = 8;
/// Size of [`FrameHeader`].
pub const FRAME_HEADER_BYTES: u64 = 32;
/// Seed of every frame checksum. A non-zero seed keeps an all-zero frame from
/// ever validating (preallocated space is zeros).
pub const FRAME_CRC_SEED: u32 = 0x7661_7276; // "varv"

/// Frame flag: more frames of the same batch follow this one. The last frame
/// of a batch (and every single append) has it clear, so recovery can drop an
/// incomplete batch whole.
pub const FLAG_BATCH_CONTINUES: u8 = 0x01;
/// Frame flag: the record is a tombstone for its key (reserved for compaction).
pub const FLAG_TOMBSTONE: u8 = 0x02;
/// Flags this version understands; a frame with any other bit set is corrupt.
pub const FLAGS_KNOWN: u8 = FLAG_BATCH_CONTINUES | FLAG_TOMBSTONE;

/// The sparse index gets an entry at the first frame that starts at least this
/// many bytes after the previous entry's frame. Lookups scan at most this many
/// bytes (plus one frame) after a binary search.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Size of one [`IndexEntry`].
pub const INDEX_ENTRY_BYTES: u64 = 24;
/// Size of [`FooterHeader`].
pub const FOOTER_HEADER_BYTES: u64 = 120;
/// Size of [`Trailer`].
pub const TRAILER_BYTES: u64 = 96;

/// Segment files are at most this large while active (frame offsets fit in
/// the low 32 bits of the packed committed word).
pub const SEGMENT_BYTES_MAX: u64 = 1 << 31;
/// Smallest allowed segment size.
pub const SEGMENT_BYTES_MIN: u64 = 64 * 1024;

const _: () = assert!(core::mem::size_of::<FrameHeader>() as u64 == FRAME_HEADER_BYTES);
const _: () = assert!(FRAME_HEADER_BYTES.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(HEADER_BYTES.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(core::mem::size_of::<SegmentHeader>() as u64 <= LIVE_COMMITTED_OFFSET);
const _: () = assert!(LIVE_COMMITTED_OFFSET.is_multiple_of(64) && LIVE_COMMITTED_OFFSET + 8 <= HEADER_BYTES);
const _: () = assert!(core::mem::size_of::<IndexEntry>() as u64 == INDEX_ENTRY_BYTES);
const _: () = assert!(core::mem::size_of::<FooterHeader>() as u64 == FOOTER_HEADER_BYTES);
const _: () = assert!(FOOTER_HEADER_BYTES.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(core::mem::size_of::<Trailer>() as u64 == TRAILER_BYTES);
const _: () = assert!(SEGMENT_BYTES_MAX < (1u64 << 32));
const _: () = assert!(SEGMENT_BYTES_MIN > HEADER_BYTES + FRAME_HEADER_BYTES);

/// The largest footer + index + trailer a segment whose frames end at or
/// before offset `frames_end` can need: one index entry per
/// [`INDEX_INTERVAL_BYTES`] of frames, plus the first, and the fixed part of
/// a key section. The part of the key section that grows with its keys is
/// set aside by the writer as it appends them ([`KEY_RESERVE_BYTES`] per
/// record with a key, counted against the frames' room).
#[must_use]
pub const fn footer_bound(frames_end: u64) -> u64 {
    let entries = frames_end.saturating_sub(HEADER_BYTES) / INDEX_INTERVAL_BYTES + 1;
    let records = frames_end.saturating_sub(HEADER_BYTES) / FRAME_HEADER_BYTES;
    FOOTER_HEADER_BYTES + INDEX_ENTRY_BYTES * entries + KEY_SECTION_FIXED_BYTES + merkle_bound(records) + TRAILER_BYTES
}

/// Length a segment is preallocated to for `segment_bytes` of header and
/// frames: room for the largest footer is reserved past them (rounded to a
/// page), so that sealing never grows a file and a full disk cannot stop it.
#[must_use]
pub const fn segment_file_bytes(segment_bytes: u64) -> u64 {
    segment_bytes + footer_bound(segment_bytes).next_multiple_of(HEADER_BYTES)
}

/// Where frames of a preallocated segment file of `file_bytes` may extend
/// to: the largest page multiple `s` with `segment_file_bytes(s) <= file_bytes`
/// (the inverse of [`segment_file_bytes`]).
#[must_use]
pub const fn frames_limit(file_bytes: u64) -> u64 {
    let mut s = file_bytes.saturating_sub(footer_bound(file_bytes).next_multiple_of(HEADER_BYTES)) / HEADER_BYTES * HEADER_BYTES;
    while segment_file_bytes(s + HEADER_BYTES) <= file_bytes {
        s += HEADER_BYTES;
    }
    s
}

const _: () = assert!(frames_limit(segment_file_bytes(SEGMENT_BYTES_MIN)) == SEGMENT_BYTES_MIN);
const _: () = assert!(frames_limit(segment_file_bytes(64 << 20)) == 64 << 20);
const _: () = assert!(frames_limit(segment_file_bytes(SEGMENT_BYTES_MAX)) == SEGMENT_BYTES_MAX);
const _: () = assert!(segment_file_bytes(SEGMENT_BYTES_MAX) < (1u64 << 32));

/// Rounds `n` up to the frame alignment.
#[inline]
#[must_use]
pub const fn align_up(n: u64) -> u64 {
    (n + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// File name of the segment whose first record has `base_seq`.
#[must_use]
pub fn segment_file_name(base_seq: u64) -> String {
    format!("{base_seq:020}.seg")
}

/// Parses a segment file name back into its base seq.
#[must_use]
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Suffix of preallocated segments not yet given a base seq.
pub const PREALLOC_SUFFIX: &str = ".prealloc";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_reject_foreign_names() {
        // Goal: names sort in seq order and only exact 20-digit names parse.
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("42.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042.tmp"), None);
    }
}
