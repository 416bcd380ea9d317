//! A sealed segment: read-only mapping, trusted through its trailer and footer.

use std::fs::File;
use std::path::PathBuf;

use zerocopy::FromBytes;

use crate::error::{Error, Result};
use crate::format::{
    decode_footer_full, FooterError, FooterHeader, HeaderError, IndexEntry, KeySection, KeySectionLayout, SegmentHeader, FORMAT_VERSION,
    HEADER_BYTES, LIVE_COMMITTED_OFFSET,
};
use crate::raw::ReadMap;

/// A sealed segment file.
pub(crate) struct SealedSegment {
    pub(crate) path: PathBuf,
    map: ReadMap,
    pub(crate) base_seq: u64,
    pub(crate) count: u64,
    pub(crate) min_ts: u64,
    pub(crate) max_ts: u64,
    pub(crate) frames_end: u64,
    pub(crate) last_frame_offset: u64,
    /// The chain link from the trailer: the previous segment's digest, and
    /// this one's (`chain_digest(prev_digest, content_digest)`).
    pub(crate) prev_digest: [u8; 32],
    pub(crate) digest: [u8; 32],
    pub(crate) content_digest: [u8; 32],
    /// One past the last seq this segment covers (see [`FooterHeader::end_seq`]).
    pub(crate) end_seq: u64,
    /// Written by compaction: seqs rise with gaps.
    pub(crate) compacted: bool,
    index_at: usize,
    index_count: usize,
    keys_at: usize,
    keys_len: usize,
    /// Bytes of the Merkle section (after the key section; 0 if none).
    merkle_len: usize,
    /// Checked when loaded, so a lookup reads no header of it again.
    keys_layout: KeySectionLayout,
}

impl std::fmt::Debug for SealedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSegment").field("path", &self.path).field("base_seq", &self.base_seq).field("count", &self.count).finish()
    }
}

/// Checks a header page and maps failures to typed errors.
pub(crate) fn check_header(path: &std::path::Path, page: &[u8]) -> Result<SegmentHeader, HeaderOutcome> {
    match SegmentHeader::decode(page) {
        Ok(h) => Ok(h),
        Err(HeaderError::Blank) => Err(HeaderOutcome::Blank),
        Err(HeaderError::Version(found)) => {
            Err(HeaderOutcome::Fatal(Error::UnsupportedVersion { path: path.into(), found, supported: FORMAT_VERSION }))
        }
        Err(HeaderError::BadMagic) => {
            Err(HeaderOutcome::Fatal(Error::NotALog { path: path.into(), reason: "bad magic in segment header" }))
        }
        Err(HeaderError::Checksum) => Err(HeaderOutcome::Fatal(Error::corrupt(path, 0, "segment header checksum mismatch"))),
    }
}

/// A header that is not usable.
#[derive(Debug)]
pub(crate) enum HeaderOutcome {
    /// All zeros: a preallocated file that never received its header.
    Blank,
    /// Anything else, as a typed error.
    Fatal(Error),
}

/// blake3 over `header page (live word as zeros) ‖ frames`: the footer's
/// `content_digest`.
pub(crate) fn content_digest(header_prefix: &[u8], header_suffix: &[u8], frames: &[u8]) -> [u8; 32] {
    let mut h = content_hasher(header_prefix, header_suffix);
    h.update(frames);
    *h.finalize().as_bytes()
}

/// A content digest fed everything before the frames; the caller feeds the
/// frames (see [`content_digest`]).
pub(crate) fn content_hasher(header_prefix: &[u8], header_suffix: &[u8]) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(header_prefix);
    h.update(&[0u8; 8]);
    h.update(header_suffix);
    h
}

impl SealedSegment {
    /// Opens a sealed segment. `Ok(Err(_))` means the file has no usable
    /// footer (never sealed, or sealing was cut short) and must be rescanned.
    pub(crate) fn load(path: PathBuf, file: &File) -> Result<std::result::Result<SealedSegment, FooterError>, HeaderOutcome> {
        let map = ReadMap::map(file).map_err(|e| HeaderOutcome::Fatal(Error::io("mmap", &path, e)))?;
        let bytes = map.bytes();
        let header = check_header(&path, bytes)?;
        let (footer, index, keys, merkle, trailer) = match decode_footer_full(bytes) {
            Ok(d) => (d.footer, d.index, d.keys, d.merkle.map_or(0, |m| m.bytes().len()), d.trailer),
            Err(FooterError::Version(found)) => {
                return Err(HeaderOutcome::Fatal(Error::UnsupportedVersion { path, found, supported: FORMAT_VERSION }))
            }
            Err(e) => return Ok(Err(e)),
        };
        let f: FooterHeader = *footer;
        let base_seq = header.base_seq.get();
        let frames_end = f.frames_end.get();
        let compacted = header.is_compacted();
        let dense = f.end_seq.get() == base_seq + f.record_count.get();
        let key_count = u64::from(f.key_count.get());
        let keys_layout = KeySection::layout(keys, key_count);
        let Some(keys_layout) = keys_layout.filter(|_| f.base_seq.get() == base_seq && frames_end >= HEADER_BYTES && (compacted || dense))
        else {
            return Ok(Err(FooterError::Damaged(frames_end)));
        };
        let index_at = (frames_end + crate::format::FOOTER_HEADER_BYTES) as usize;
        let index_count = index.len();
        let keys_at = index_at + index_count * crate::format::INDEX_ENTRY_BYTES as usize;
        Ok(Ok(SealedSegment {
            path,
            base_seq,
            count: f.record_count.get(),
            min_ts: f.min_ts.get(),
            max_ts: f.max_ts.get(),
            frames_end,
            last_frame_offset: f.last_frame_offset.get(),
            prev_digest: trailer.prev_digest,
            digest: trailer.digest,
            content_digest: f.content_digest,
            end_seq: f.end_seq.get(),
            compacted,
            index_at,
            index_count,
            keys_at,
            keys_len: keys.len(),
            merkle_len: merkle,
            keys_layout,
            map,
        }))
    }

    /// The whole file.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// Frames: `HEADER_BYTES..frames_end`.
    pub(crate) fn frames(&self) -> &[u8] {
        &self.bytes()[HEADER_BYTES as usize..self.frames_end as usize]
    }

    /// The sparse index from the footer.
    pub(crate) fn index(&self) -> &[IndexEntry] {
        let bytes = &self.bytes()[self.index_at..self.index_at + self.index_count * crate::format::INDEX_ENTRY_BYTES as usize];
        // Length and alignment (1) were checked by `decode_footer`.
        <[IndexEntry]>::ref_from_bytes(bytes).unwrap_or(&[])
    }

    /// The key section from the footer (checked when the segment was loaded).
    pub(crate) fn keys(&self) -> KeySection<'_> {
        KeySection::at(self.key_bytes(), &self.keys_layout)
    }

    /// The key section's bytes.
    pub(crate) fn key_bytes(&self) -> &[u8] {
        &self.bytes()[self.keys_at..self.keys_at + self.keys_len]
    }

    /// The Merkle section's bytes (empty if the segment has none).
    pub(crate) fn merkle_bytes(&self) -> &[u8] {
        let at = self.keys_at + self.keys_len;
        &self.bytes()[at..at + self.merkle_len]
    }

    /// The Merkle section, if the segment has one (checked when loaded).
    pub(crate) fn merkle(&self) -> Option<crate::format::MerkleSection<'_>> {
        if self.merkle_len == 0 {
            return None;
        }
        crate::format::MerkleSection::decode(self.merkle_bytes(), self.base_seq, self.end_seq)
    }

    /// Recomputes this segment's content digest from its bytes.
    pub(crate) fn compute_content_digest(&self) -> [u8; 32] {
        let b = self.bytes();
        let live = LIVE_COMMITTED_OFFSET as usize;
        content_digest(&b[..live], &b[live + 8..HEADER_BYTES as usize], self.frames())
    }

    /// End seq (exclusive): the next segment's base seq.
    pub(crate) fn end_seq(&self) -> u64 {
        self.end_seq
    }
}
