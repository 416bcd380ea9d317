//! Footer and trailer: written once when a segment is sealed.
//!
//! ```text
//! frames_end:
//!   FooterHeader (144 bytes)
//!   IndexEntry × index_count (24 bytes each: seq, offset, running max timestamp)
//! file_len - 32:
//!   Trailer (32 bytes): magic, footer_offset, footer_len, footer_crc, version, crc
//! ```
//! The index is sparse: one entry per [`super::INDEX_INTERVAL_BYTES`] of frames.
//! Each entry's `max_ts` is the largest timestamp of any record up to and
//! including the one it points at, so it serves both seq→offset and
//! time→offset lookups even when timestamps are not monotonic.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{FOOTER_HEADER_BYTES, FOOTER_MAGIC, FORMAT_VERSION, HEADER_BYTES, INDEX_ENTRY_BYTES, TRAILER_BYTES, TRAILER_MAGIC};

/// Summary of a sealed segment.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct FooterHeader {
    /// [`FOOTER_MAGIC`].
    pub magic: [u8; 8],
    /// Number of records in the segment.
    pub record_count: U64,
    /// Seq of the first record (equals the header's base seq).
    pub base_seq: U64,
    /// Smallest record timestamp (`u64::MAX` when empty).
    pub min_ts: U64,
    /// Largest record timestamp (0 when empty).
    pub max_ts: U64,
    /// Offset where the frames end and this footer begins.
    pub frames_end: U64,
    /// Offset of the last frame (0 when empty).
    pub last_frame_offset: U64,
    /// Number of index entries that follow.
    pub index_count: U32,
    /// [`super::INDEX_INTERVAL_BYTES`] used when the index was built.
    pub index_interval: U32,
    /// blake3 digest of the previous sealed segment (zeros for the first).
    pub prev_digest: [u8; 32],
    /// blake3 over `prev_digest ‖ file[0..frames_end]` with the live word zeroed.
    pub digest: [u8; 32],
    /// Zero in this version.
    pub reserved: [u8; 16],
}

/// One sparse index entry.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct IndexEntry {
    /// Seq of the record at `offset`.
    pub seq: U64,
    /// Offset of its frame in the segment file.
    pub offset: U64,
    /// Largest timestamp of any record at or before `offset` in this segment.
    pub max_ts: U64,
}

/// The fixed-size last bytes of a sealed segment.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct Trailer {
    /// [`TRAILER_MAGIC`].
    pub magic: [u8; 8],
    /// Where the footer starts.
    pub footer_offset: U64,
    /// Footer header plus index bytes.
    pub footer_len: U32,
    /// CRC32C of the footer bytes.
    pub footer_crc: U32,
    /// [`FORMAT_VERSION`].
    pub version: U16,
    /// Zero in this version.
    pub reserved: [u8; 2],
    /// CRC32C of the bytes before this field.
    pub crc: U32,
}

/// Why a file has no usable footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FooterError {
    /// No trailer: the segment was never sealed, or sealing was cut short.
    Missing,
    /// A trailer of another format version.
    Version(u16),
    /// Trailer or footer fails its checksum or is inconsistent; the value is
    /// the offset of the damaged structure.
    Damaged(u64),
}

impl Trailer {
    fn compute_crc(&self) -> u32 {
        let b = self.as_bytes();
        crc32c::crc32c(&b[..b.len() - 4])
    }
}

/// Builds footer + index + trailer bytes, to be written at `frames_end`.
#[must_use]
pub fn encode_footer(footer: &FooterHeader, index: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity((FOOTER_HEADER_BYTES + INDEX_ENTRY_BYTES * index.len() as u64 + TRAILER_BYTES) as usize);
    out.extend_from_slice(footer.as_bytes());
    out.extend_from_slice(index.as_bytes());
    let mut trailer = Trailer {
        magic: TRAILER_MAGIC,
        footer_offset: footer.frames_end,
        footer_len: U32::new(out.len() as u32),
        footer_crc: U32::new(crc32c::crc32c(&out)),
        version: U16::new(FORMAT_VERSION),
        reserved: [0; 2],
        crc: U32::new(0),
    };
    trailer.crc = U32::new(trailer.compute_crc());
    out.extend_from_slice(trailer.as_bytes());
    out
}

/// Finds and checks the footer of a whole sealed segment file. Never panics.
///
/// # Errors
///
/// A [`FooterError`] naming what is wrong: no trailer, bad magic, a checksum mismatch, bounds that
/// do not fit the file.
pub fn decode_footer(file: &[u8]) -> Result<(&FooterHeader, &[IndexEntry]), FooterError> {
    let len = file.len() as u64;
    if len < HEADER_BYTES + FOOTER_HEADER_BYTES + TRAILER_BYTES {
        return Err(FooterError::Missing);
    }
    let trailer_at = len - TRAILER_BYTES;
    let Ok((trailer, _)) = Trailer::ref_from_prefix(&file[trailer_at as usize..]) else {
        return Err(FooterError::Missing);
    };
    if trailer.magic != TRAILER_MAGIC {
        return Err(FooterError::Missing);
    }
    if trailer.crc.get() != trailer.compute_crc() {
        return Err(FooterError::Damaged(trailer_at));
    }
    if trailer.version.get() != FORMAT_VERSION {
        return Err(FooterError::Version(trailer.version.get()));
    }
    let footer_at = trailer.footer_offset.get();
    let footer_len = u64::from(trailer.footer_len.get());
    if footer_at < HEADER_BYTES || footer_at.checked_add(footer_len) != Some(trailer_at) || footer_len < FOOTER_HEADER_BYTES {
        return Err(FooterError::Damaged(trailer_at));
    }
    let footer_bytes = &file[footer_at as usize..trailer_at as usize];
    if crc32c::crc32c(footer_bytes) != trailer.footer_crc.get() {
        return Err(FooterError::Damaged(footer_at));
    }
    let damaged = FooterError::Damaged(footer_at);
    let (footer, rest) = FooterHeader::ref_from_prefix(footer_bytes).map_err(|_| damaged)?;
    let count = footer.index_count.get() as usize;
    let index = <[IndexEntry]>::ref_from_bytes(rest).map_err(|_| damaged)?;
    if footer.magic != FOOTER_MAGIC || index.len() != count || footer.frames_end.get() != footer_at {
        return Err(damaged);
    }
    Ok((footer, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file() -> Vec<u8> {
        let mut file = vec![0u8; HEADER_BYTES as usize + 64];
        let footer = FooterHeader {
            magic: FOOTER_MAGIC,
            record_count: U64::new(2),
            base_seq: U64::new(10),
            min_ts: U64::new(1),
            max_ts: U64::new(2),
            frames_end: U64::new(file.len() as u64),
            last_frame_offset: U64::new(HEADER_BYTES + 32),
            index_count: U32::new(1),
            index_interval: U32::new(4096),
            prev_digest: [0; 32],
            digest: [1; 32],
            reserved: [0; 16],
        };
        let entry = IndexEntry { seq: U64::new(10), offset: U64::new(HEADER_BYTES), max_ts: U64::new(1) };
        file.extend_from_slice(&encode_footer(&footer, &[entry]));
        file
    }

    #[test]
    fn footer_round_trips() {
        // Goal: what the sealer writes, open reads back unchanged.
        let file = sample_file();
        let (f, idx) = decode_footer(&file).unwrap();
        assert_eq!(f.record_count.get(), 2);
        assert_eq!(idx[0].offset.get(), HEADER_BYTES);
    }

    #[test]
    fn any_flipped_footer_byte_is_detected_and_never_panics() {
        // Goal: a damaged footer or trailer is never trusted.
        let file = sample_file();
        let footer_at = HEADER_BYTES as usize + 64;
        for i in footer_at..file.len() {
            let mut f = file.clone();
            f[i] ^= 0x10;
            assert!(decode_footer(&f).is_err(), "flip at {i} accepted");
        }
        for cut in 0..file.len() {
            let _ = decode_footer(&file[..cut]);
        }
    }
}
