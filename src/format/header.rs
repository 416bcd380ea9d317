//! The segment header: the first page of every segment file.
//!
//! ```text
//! 0        8      10     12       16         24           32         40         60    64
//! | magic  | ver  | flags| hdr_len| base_seq | created_us | capacity | reserved | crc |
//! ... zeros ...
//! 256      264
//! | live committed word (u64, atomic, count << 32 | end offset; not checksummed) |
//! ... zeros to 4096
//! ```

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{FORMAT_VERSION, HEADER_BYTES, SEGMENT_MAGIC};

/// The checksummed part of the header page.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct SegmentHeader {
    /// [`SEGMENT_MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`] of the writer that created the file.
    pub version: U16,
    /// [`super::HEADER_FLAG_COMPACTED`] or zero.
    pub flags: U16,
    /// [`HEADER_BYTES`]: where the frames start.
    pub header_bytes: U32,
    /// Seq of the first record in this segment.
    pub base_seq: U64,
    /// Microseconds since the Unix epoch when the segment became active.
    pub created_us: U64,
    /// Preallocated size of the file while it was active.
    pub capacity: U64,
    /// Zero in this version.
    pub reserved: [u8; 20],
    /// CRC32C of the bytes before this field.
    pub crc: U32,
}

/// Why a header page is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The page is all zeros: a preallocated file that never became active.
    Blank,
    /// Not a varvelog segment (wrong magic) or a damaged header.
    BadMagic,
    /// A segment of another format version.
    Version(u16),
    /// The header checksum does not match.
    Checksum,
}

impl SegmentHeader {
    /// A new header with its checksum filled in.
    #[must_use]
    #[doc(hidden)] // the engine's encoder, not for users
    pub fn new(base_seq: u64, created_us: u64, capacity: u64) -> Self {
        Self::with_flags(base_seq, created_us, capacity, 0)
    }

    /// A new header with `flags` and its checksum filled in.
    #[must_use]
    #[doc(hidden)] // the engine's encoder, not for users
    pub fn with_flags(base_seq: u64, created_us: u64, capacity: u64, flags: u16) -> Self {
        let mut h = SegmentHeader {
            magic: SEGMENT_MAGIC,
            version: U16::new(FORMAT_VERSION),
            flags: U16::new(flags),
            header_bytes: U32::new(HEADER_BYTES as u32),
            base_seq: U64::new(base_seq),
            created_us: U64::new(created_us),
            capacity: U64::new(capacity),
            reserved: [0; 20],
            crc: U32::new(0),
        };
        h.crc = U32::new(h.compute_crc());
        h
    }

    fn compute_crc(&self) -> u32 {
        let b = self.as_bytes();
        crc32c::crc32c(&b[..b.len() - 4])
    }

    /// Whether compaction wrote this segment (its seqs may have gaps).
    #[must_use]
    pub fn is_compacted(&self) -> bool {
        self.flags.get() & super::HEADER_FLAG_COMPACTED != 0
    }

    /// Reads and checks the header at the start of `page`.
    ///
    /// # Errors
    ///
    /// A [`HeaderError`] for a bad magic, an unknown format version or a checksum mismatch.
    pub fn decode(page: &[u8]) -> Result<SegmentHeader, HeaderError> {
        let Ok((h, _)) = SegmentHeader::read_from_prefix(page) else {
            // A file cut short before its header (e.g. a crash between
            // creating a segment and reserving its space) is blank if zeros.
            let blank = page.iter().all(|&b| b == 0);
            return Err(if blank { HeaderError::Blank } else { HeaderError::BadMagic });
        };
        if h.magic != SEGMENT_MAGIC {
            let blank = page.iter().take(HEADER_BYTES as usize).all(|&b| b == 0);
            return Err(if blank { HeaderError::Blank } else { HeaderError::BadMagic });
        }
        if h.version.get() != FORMAT_VERSION {
            return Err(HeaderError::Version(h.version.get()));
        }
        if h.crc.get() != h.compute_crc()
            || u64::from(h.header_bytes.get()) != HEADER_BYTES
            || h.flags.get() & !super::HEADER_FLAGS_KNOWN != 0
        {
            return Err(HeaderError::Checksum);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_other_versions_and_damage() {
        // Goal: an unknown version is reported as such, never reinterpreted.
        let h = SegmentHeader::new(5, 6, 7);
        let mut page = vec![0u8; HEADER_BYTES as usize];
        page[..h.as_bytes().len()].copy_from_slice(h.as_bytes());
        assert_eq!(SegmentHeader::decode(&page).unwrap().base_seq.get(), 5);
        let other = FORMAT_VERSION + 1;
        let mut v2 = page.clone();
        v2[8..10].copy_from_slice(&other.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&v2).unwrap_err(), HeaderError::Version(other));
        let mut bad = page.clone();
        bad[17] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad).unwrap_err(), HeaderError::Checksum);
        assert_eq!(SegmentHeader::decode(&vec![0u8; 4096]).unwrap_err(), HeaderError::Blank);
        assert_eq!(SegmentHeader::decode(&[1, 2]).unwrap_err(), HeaderError::BadMagic);
        assert_eq!(SegmentHeader::decode(&[]).unwrap_err(), HeaderError::Blank);
        assert_eq!(SegmentHeader::decode(&[0; 10]).unwrap_err(), HeaderError::Blank);
    }
}
