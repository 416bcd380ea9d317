//! The key section of a sealed segment's footer: a filter over the hashes of
//! the segment's keys and a sorted table of `(hash, offset)` entries.
//!
//! ```text
//! KeySectionHeader (24 bytes): the filter's descriptor and length
//! fingerprints (fingerprints_len bytes), zeros to a multiple of 8
//! KeyEntry × key_count (20 bytes each: hash, hash_hi, frame offset), sorted
//! ```
//!
//! The filter is a binary fuse filter with 8-bit fingerprints (`xorf`),
//! read in place from the mapping. It is only a shortcut: the entries are
//! exact (a binary search over them answers whether a hash is present), so
//! a segment whose filter could not be built stores none
//! (`fingerprints_len` 0) and lookups search the entries.

use xorf::{BinaryFuse8, BinaryFuse8Ref, DmaSerializable, Filter, FilterRef};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The 128-bit hash of a key: xxh3-128 (seed 0), whose output is specified
/// and the same everywhere. Compaction tells keys apart by it.
#[inline]
#[must_use]
pub fn key_hash128(key: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key)
}

/// The 64-bit hash lookups use: the low half of [`key_hash128`]. The filter
/// and the live key table are keyed by it; a lookup compares keys.
#[inline]
#[must_use]
pub fn key_hash(key: &[u8]) -> u64 {
    key_hash128(key) as u64
}

/// The fixed start of a key section: the filter's descriptor.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct KeySectionHeader {
    /// The filter's seed.
    pub seed: U64,
    /// Length of each filter segment (a power of two).
    pub segment_length: U32,
    /// `segment_length - 1`.
    pub segment_length_mask: U32,
    /// Length of all filter segments but the last two.
    pub segment_count_length: U32,
    /// Bytes of fingerprints that follow (0: no filter).
    pub fingerprints_len: U32,
}

/// One entry of the key table.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct KeyEntry {
    /// [`key_hash`] of the record's key: the low half of its 128-bit hash.
    pub hash: U64,
    /// The high half of the key's 128-bit hash ([`key_hash128`]).
    pub hash_hi: U64,
    /// Offset of the record's frame in the segment file.
    pub offset: U32,
}

impl KeyEntry {
    /// The key's 128-bit hash, ordered as entries are: low half first.
    #[must_use]
    pub fn order_key(&self) -> u128 {
        (u128::from(self.hash.get()) << 64) | u128::from(self.hash_hi.get())
    }
}

/// [`KeyEntry::order_key`] of a 128-bit key hash.
#[must_use]
pub fn order_key(hash128: u128) -> u128 {
    hash128.rotate_left(64)
}

/// Size of [`KeySectionHeader`].
pub const KEY_SECTION_HEADER_BYTES: u64 = 24;
/// Size of [`KeyEntry`].
pub const KEY_ENTRY_BYTES: u64 = 20;
/// Segment capacity the writer sets aside for each record with a key, so
/// that the key section always fits in the preallocated file: its entry
/// (20 bytes) and its share of the filter (at most 4 bytes; see
/// [`filter_bytes_bound`]).
pub const KEY_RESERVE_BYTES: u64 = 24;
/// Room for the parts of a key section that do not grow with its keys (the
/// header, padding and a small filter's fixed overhead); included in
/// [`super::footer_bound`].
pub const KEY_SECTION_FIXED_BYTES: u64 = 1024;

const _: () = assert!(core::mem::size_of::<KeySectionHeader>() as u64 == KEY_SECTION_HEADER_BYTES);
const _: () = assert!(core::mem::size_of::<KeyEntry>() as u64 == KEY_ENTRY_BYTES);
const _: () = assert!(<BinaryFuse8 as DmaSerializable>::DESCRIPTOR_LEN == 20);

/// An upper bound on the filter bytes for `n` distinct keys. `encode_key_section`
/// drops the filter (lookups then search the entries) rather than exceed it.
#[must_use]
pub const fn filter_bytes_bound(n: u64) -> u64 {
    (KEY_RESERVE_BYTES - KEY_ENTRY_BYTES) * n + KEY_SECTION_FIXED_BYTES - KEY_SECTION_HEADER_BYTES - 8
}

/// The bytes a key section over `entries` takes (see [`encode_key_section`]).
#[must_use]
pub fn key_section_len(fingerprints_len: u64, entries: u64) -> u64 {
    if entries == 0 {
        return 0;
    }
    KEY_SECTION_HEADER_BYTES + super::align_up(fingerprints_len) + KEY_ENTRY_BYTES * entries
}

/// Builds the key section over `entries` (`(128-bit key hash, frame
/// offset)` pairs in any order; sorted here by the low half of the hash,
/// then the high half, then the offset). Empty when there are none.
#[must_use]
#[doc(hidden)] // the engine's encoder, not for users
pub fn encode_key_section(entries: &mut [(u128, u32)]) -> Vec<u8> {
    if entries.is_empty() {
        return Vec::new();
    }
    entries.sort_unstable_by_key(|&(h, o)| (order_key(h), o));
    let mut distinct: Vec<u64> = entries.iter().map(|e| e.0 as u64).collect();
    distinct.dedup();
    let filter = BinaryFuse8::try_from(&distinct[..]).ok().filter(|f| {
        f.dma_fingerprints().len() as u64 <= filter_bytes_bound(distinct.len() as u64) && f.dma_fingerprints().len() < u32::MAX as usize
    });
    let (header, fingerprints) = match &filter {
        Some(f) => {
            let d = &f.descriptor;
            let header = KeySectionHeader {
                seed: U64::new(d.seed),
                segment_length: U32::new(d.segment_length),
                segment_length_mask: U32::new(d.segment_length_mask),
                segment_count_length: U32::new(d.segment_count_length),
                fingerprints_len: U32::new(f.dma_fingerprints().len() as u32),
            };
            (header, f.dma_fingerprints())
        }
        None => {
            let none = KeySectionHeader {
                seed: U64::new(0),
                segment_length: U32::new(0),
                segment_length_mask: U32::new(0),
                segment_count_length: U32::new(0),
                fingerprints_len: U32::new(0),
            };
            (none, &[][..])
        }
    };
    let mut out = Vec::with_capacity(key_section_len(fingerprints.len() as u64, entries.len() as u64) as usize);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(fingerprints);
    out.resize(out.len().next_multiple_of(super::FRAME_ALIGN as usize), 0);
    for &(hash, offset) in entries.iter() {
        let e = KeyEntry { hash: U64::new(hash as u64), hash_hi: U64::new((hash >> 64) as u64), offset: U32::new(offset) };
        out.extend_from_slice(e.as_bytes());
    }
    out
}

/// A decoded key section, read in place.
#[derive(Clone, Debug)]
pub struct KeySection<'a> {
    filter: Option<BinaryFuse8Ref<'a>>,
    entries: &'a [KeyEntry],
}

/// Where a checked key section's parts lie in its bytes: enough to read it
/// again ([`KeySection::at`]) without decoding or checking its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySectionLayout {
    descriptor: [u8; 20],
    fingerprints: (usize, usize),
    entries: (usize, usize),
}

impl<'a> KeySection<'a> {
    /// A section with no keys.
    #[must_use]
    pub fn empty() -> KeySection<'a> {
        KeySection { filter: None, entries: &[] }
    }

    /// Decodes the `key_count` entries' section in `bytes`, in constant
    /// time. `None` if the bytes are not a well-formed section (lengths
    /// disagree, or a filter whose probes could fall outside its
    /// fingerprints). Never panics.
    #[must_use]
    pub fn decode(bytes: &'a [u8], key_count: u64) -> Option<KeySection<'a>> {
        Self::layout(bytes, key_count).map(|l| Self::at(bytes, &l))
    }

    /// The section in `bytes` laid out as `layout` (from
    /// [`KeySection::layout`] of the same bytes). Never panics: other bytes
    /// give an empty or meaningless section.
    #[must_use]
    pub fn at(bytes: &'a [u8], layout: &KeySectionLayout) -> KeySection<'a> {
        let part = |(from, to): (usize, usize)| bytes.get(from..to).unwrap_or(&[]);
        let entries = <[KeyEntry]>::ref_from_bytes(part(layout.entries)).unwrap_or(&[]);
        let fingerprints = part(layout.fingerprints);
        let filter = (!fingerprints.is_empty()).then(|| BinaryFuse8Ref::from_dma(&layout.descriptor, fingerprints));
        KeySection { filter, entries }
    }

    /// Checks the section of `key_count` entries in `bytes` and says where
    /// its parts are; `None` as for [`KeySection::decode`]. Constant time.
    #[must_use]
    pub fn layout(bytes: &[u8], key_count: u64) -> Option<KeySectionLayout> {
        if key_count == 0 {
            return bytes.is_empty().then_some(KeySectionLayout { descriptor: [0; 20], fingerprints: (0, 0), entries: (0, 0) });
        }
        let (h, rest) = KeySectionHeader::ref_from_prefix(bytes).ok()?;
        let fp_len = u64::from(h.fingerprints_len.get());
        if key_section_len(fp_len, key_count) != bytes.len() as u64 {
            return None;
        }
        let header = KEY_SECTION_HEADER_BYTES as usize;
        let entries_at = header + super::align_up(fp_len) as usize;
        // Entries out of order are not refused here (that would cost a pass
        // over them): searching them gives wrong answers but never reads
        // outside them, and `verify` and a strict open rebuild the section
        // from the frames and compare.
        <[KeyEntry]>::ref_from_bytes(&rest[entries_at - header..]).ok()?;
        if fp_len > 0 {
            // Every probe index is below `segment_count_length + 2 *
            // segment_length` when the length is a power of two and the mask
            // is one less (xorf's `hash_of_hash`): check it fits.
            let len = u64::from(h.segment_length.get());
            let count_len = u64::from(h.segment_count_length.get());
            let sound = len.is_power_of_two()
                && u64::from(h.segment_length_mask.get()) == len - 1
                && count_len.is_multiple_of(len)
                && count_len + 2 * len <= fp_len
                && count_len + 2 * len < u64::from(u32::MAX);
            if !sound {
                return None;
            }
        }
        let mut descriptor = [0u8; BinaryFuse8::DESCRIPTOR_LEN];
        descriptor.copy_from_slice(&bytes[..BinaryFuse8::DESCRIPTOR_LEN]);
        Some(KeySectionLayout { descriptor, fingerprints: (header, header + fp_len as usize), entries: (entries_at, bytes.len()) })
    }

    /// Number of entries (records with a key).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the segment holds no record with a key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a key with this hash may be in the segment (no false
    /// negatives; false positives ~0.4% with a filter).
    #[inline]
    #[must_use]
    pub fn may_contain(&self, hash: u64) -> bool {
        match &self.filter {
            _ if self.entries.is_empty() => false,
            Some(f) => f.contains(&hash),
            None => true,
        }
    }

    /// Offsets of the frames whose key has this hash, ascending.
    #[must_use]
    pub fn offsets(&self, hash: u64) -> &'a [KeyEntry] {
        let from = self.entries.partition_point(|e| e.hash.get() < hash);
        let to = from + self.entries[from..].partition_point(|e| e.hash.get() == hash);
        &self.entries[from..to]
    }

    /// Every entry, sorted by `(hash, offset)`.
    #[must_use]
    pub fn entries(&self) -> &'a [KeyEntry] {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_round_trips_and_finds_exactly_its_hashes() {
        // Goal: every hash put in is found, with its offsets in order; the
        // filter rejects nearly all others; the bytes fit the reserve.
        for n in [1u64, 2, 3, 10, 1000, 20_000] {
            let mut entries: Vec<(u128, u32)> = (0..n).map(|i| (key_hash128(&(i % 997).to_le_bytes()), 4096 + 8 * i as u32)).collect();
            let bytes = encode_key_section(&mut entries);
            assert!(bytes.len() as u64 <= KEY_RESERVE_BYTES * n + KEY_SECTION_FIXED_BYTES, "{n}: {} bytes", bytes.len());
            let s = KeySection::decode(&bytes, n).expect("decodes");
            assert_eq!(s.len() as u64, n);
            for i in 0..n.min(997) {
                let h = key_hash(&i.to_le_bytes());
                assert!(s.may_contain(h));
                let offs: Vec<u32> = s.offsets(h).iter().map(|e| e.offset.get()).collect();
                let want: Vec<u32> = (0..n).filter(|j| j % 997 == i).map(|j| 4096 + 8 * j as u32).collect();
                assert_eq!(offs, want);
            }
            let false_positives = (0..10_000u64).filter(|i| s.may_contain(key_hash(&(i + 1_000_000).to_le_bytes()))).count();
            assert!(s.offsets(key_hash(b"absent")).is_empty());
            if n >= 1000 {
                assert!(false_positives < 100, "{n}: {false_positives} of 10000");
            }
        }
    }

    #[test]
    fn damaged_sections_are_refused_without_panicking() {
        // Goal: any byte changed in the descriptor or lengths either decodes
        // to a section whose probes stay in bounds or is refused; truncation
        // is refused.
        let mut entries: Vec<(u128, u32)> = (0..500u64).map(|i| (key_hash128(&i.to_le_bytes()), 4096 + 8 * i as u32)).collect();
        let bytes = encode_key_section(&mut entries);
        for cut in 0..bytes.len() {
            assert!(KeySection::decode(&bytes[..cut], 500).is_none());
        }
        for i in 0..KEY_SECTION_HEADER_BYTES as usize {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                if let Some(s) = KeySection::decode(&b, 500) {
                    for k in 0..2000u64 {
                        let _ = s.may_contain(key_hash(&k.to_le_bytes()));
                    }
                }
            }
        }
        assert!(KeySection::decode(&bytes, 499).is_none());
        assert!(KeySection::decode(&[], 0).is_some());
        assert!(KeySection::decode(&[0], 0).is_none());
    }
}
