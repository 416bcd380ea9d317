//! Footer and trailer: written when a segment is sealed.
//!
//! ```text
//! frames_end:
//!   FooterHeader (112 bytes)
//!   IndexEntry × index_count (24 bytes each: seq, offset, running max timestamp)
//!   key section (keys_bytes; see `keys.rs`)
//!   Merkle section (merkle_bytes; see `merkle.rs`), when the log keeps proofs
//!   superseded trailers, if any (96 bytes each)
//! file_len - 96:
//!   Trailer (96 bytes): magic, footer_offset, footer_len, footer_crc, version,
//!   prev_digest, digest, crc
//! ```
//! The index is sparse: one entry per [`super::INDEX_INTERVAL_BYTES`] of frames.
//! Each entry's `max_ts` is the largest timestamp of any record up to and
//! including the one it points at, so it serves both seq→offset and
//! time→offset lookups even when timestamps are not monotonic.
//!
//! The chain's links (`prev_digest`, `digest`) live in the trailer, the
//! last bytes of the file, so that compaction can re-link a sealed segment
//! to a rewritten predecessor by appending a new trailer: no byte a reader
//! may have mapped ever changes.

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
    /// blake3 over `file[0..frames_end]` with the live word as zeros.
    pub content_digest: [u8; 32],
    /// One past the last seq this segment covers: the next segment's base
    /// seq. `base_seq + record_count` unless compaction removed records.
    pub end_seq: U64,
    /// Records with a key: entries in the key section.
    pub key_count: U32,
    /// Bytes of the key section after the index (0 when no record has a key).
    pub keys_bytes: U32,
    /// Bytes of the Merkle section after the key section (0 when the log
    /// does not keep proofs).
    pub merkle_bytes: U32,
    /// The lowest tree level the Merkle section keeps nodes of
    /// ([`super::MERKLE_LEVEL`]; 0 without a section).
    pub merkle_level: u8,
    /// Zero in this version.
    pub reserved: [u8; 3],
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

/// The fixed-size last bytes of a sealed segment: where its footer is, and
/// its link in the digest chain.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct Trailer {
    /// [`TRAILER_MAGIC`].
    pub magic: [u8; 8],
    /// Where the footer starts.
    pub footer_offset: U64,
    /// Footer header plus index, key and Merkle section bytes.
    pub footer_len: U32,
    /// CRC32C of the footer bytes.
    pub footer_crc: U32,
    /// [`FORMAT_VERSION`].
    pub version: U16,
    /// Zero in this version.
    pub reserved: [u8; 2],
    /// The previous sealed segment's `digest` (zeros for the first).
    pub prev_digest: [u8; 32],
    /// blake3 over `prev_digest ‖ content_digest`.
    pub digest: [u8; 32],
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

    /// This trailer with another link in the chain, its checksum redone:
    /// what compaction appends to re-link a segment.
    #[must_use]
    #[doc(hidden)] // the engine's encoder, not for users
    pub fn relinked(&self, prev_digest: [u8; 32], digest: [u8; 32]) -> Trailer {
        let mut t = Trailer { prev_digest, digest, crc: U32::new(0), ..*self };
        t.crc = U32::new(t.compute_crc());
        t
    }
}

/// The digest that links a segment into the chain: blake3 over
/// `prev_digest ‖ content_digest`.
#[must_use]
pub fn chain_digest(prev_digest: &[u8; 32], content_digest: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev_digest);
    h.update(content_digest);
    *h.finalize().as_bytes()
}

/// Builds footer + index + key section + Merkle section + trailer bytes, to
/// be written at `frames_end`. `footer.keys_bytes` must be `keys.len()` and
/// `footer.merkle_bytes` `merkle.len()`; the trailer links the segment
/// after `prev_digest`.
#[must_use]
pub fn encode_footer(footer: &FooterHeader, index: &[IndexEntry], keys: &[u8], merkle: &[u8], prev_digest: [u8; 32]) -> Vec<u8> {
    let len = FOOTER_HEADER_BYTES + INDEX_ENTRY_BYTES * index.len() as u64 + (keys.len() + merkle.len()) as u64 + TRAILER_BYTES;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(footer.as_bytes());
    out.extend_from_slice(index.as_bytes());
    out.extend_from_slice(keys);
    out.extend_from_slice(merkle);
    let trailer = Trailer {
        magic: TRAILER_MAGIC,
        footer_offset: footer.frames_end,
        footer_len: U32::new(out.len() as u32),
        footer_crc: U32::new(crc32c::crc32c(&out)),
        version: U16::new(FORMAT_VERSION),
        reserved: [0; 2],
        prev_digest: [0; 32],
        digest: [0; 32],
        crc: U32::new(0),
    }
    .relinked(prev_digest, chain_digest(&prev_digest, &footer.content_digest));
    out.extend_from_slice(trailer.as_bytes());
    out
}

/// A sealed segment's footer, read in place.
#[derive(Clone, Copy, Debug)]
pub struct DecodedFooter<'a> {
    /// The summary.
    pub footer: &'a FooterHeader,
    /// The sparse index.
    pub index: &'a [IndexEntry],
    /// The key section's bytes (decode with [`super::KeySection::decode`]).
    pub keys: &'a [u8],
    /// The Merkle section (`None` when the log did not keep proofs).
    pub merkle: Option<super::MerkleSection<'a>>,
    /// The trailer, with the segment's link in the chain.
    pub trailer: &'a Trailer,
}

/// Finds and checks the footer of a whole sealed segment file. Never panics.
///
/// # Errors
///
/// A [`FooterError`] naming what is wrong: no trailer, bad magic, a checksum mismatch, bounds that
/// do not fit the file.
pub fn decode_footer(file: &[u8]) -> Result<(&FooterHeader, &[IndexEntry]), FooterError> {
    decode_footer_full(file).map(|f| (f.footer, f.index))
}

/// [`decode_footer`], with the key section and the trailer.
///
/// # Errors
///
/// As [`decode_footer`].
pub fn decode_footer_full(file: &[u8]) -> Result<DecodedFooter<'_>, FooterError> {
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
    // Trailers a re-link superseded may sit between the footer and this one.
    let footer_to = footer_at.checked_add(footer_len).filter(|&e| e <= trailer_at && (trailer_at - e).is_multiple_of(TRAILER_BYTES));
    if footer_at < HEADER_BYTES || footer_to.is_none() || footer_len < FOOTER_HEADER_BYTES {
        return Err(FooterError::Damaged(trailer_at));
    }
    let footer_bytes = &file[footer_at as usize..(footer_at + footer_len) as usize];
    if crc32c::crc32c(footer_bytes) != trailer.footer_crc.get() {
        return Err(FooterError::Damaged(footer_at));
    }
    let damaged = FooterError::Damaged(footer_at);
    let (footer, rest) = FooterHeader::ref_from_prefix(footer_bytes).map_err(|_| damaged)?;
    let count = footer.index_count.get() as usize;
    let keys_bytes = footer.keys_bytes.get() as usize;
    let merkle_bytes = footer.merkle_bytes.get() as usize;
    let index_bytes = rest.len().checked_sub(keys_bytes).and_then(|n| n.checked_sub(merkle_bytes)).ok_or(damaged)?;
    let (index, rest) = rest.split_at(index_bytes);
    let (keys, merkle) = rest.split_at(keys_bytes);
    let index = <[IndexEntry]>::ref_from_bytes(index).map_err(|_| damaged)?;
    if footer.magic != FOOTER_MAGIC || index.len() != count || footer.frames_end.get() != footer_at {
        return Err(damaged);
    }
    let end = footer.base_seq.get().checked_add(footer.record_count.get());
    if end.is_none_or(|e| footer.end_seq.get() < e) || footer.reserved != [0; 3] {
        return Err(damaged);
    }
    let merkle = match (merkle_bytes, footer.merkle_level) {
        (0, 0) => None,
        (_, level) if u32::from(level) == super::MERKLE_LEVEL => {
            Some(super::MerkleSection::decode(merkle, footer.base_seq.get(), footer.end_seq.get()).ok_or(damaged)?)
        }
        _ => return Err(damaged),
    };
    Ok(DecodedFooter { footer, index, keys, merkle, trailer })
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
            content_digest: [1; 32],
            end_seq: U64::new(12),
            key_count: U32::new(0),
            keys_bytes: U32::new(0),
            merkle_bytes: U32::new(0),
            merkle_level: 0,
            reserved: [0; 3],
        };
        let entry = IndexEntry { seq: U64::new(10), offset: U64::new(HEADER_BYTES), max_ts: U64::new(1) };
        file.extend_from_slice(&encode_footer(&footer, &[entry], &[], &[], [0; 32]));
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
