//! The frame: one record on disk.
//!
//! ```text
//! 0       4       8               16              24      28  30 31 32
//! | len   | crc   | seq           | timestamp_us  |prev_len|klen|fl|r| payload … | key … | pad to 8
//! ```
//! `len` counts header + payload + key (not the padding). `crc` is CRC32C of
//! bytes `8..len`, seeded with [`FRAME_CRC_SEED`] XOR `len`: one pass over
//! contiguous bytes, and `len` still changes the result (a CRC's output is an
//! invertible function of its seed for a given input). `prev_len`
//! is the padded length of the previous frame in the same segment (0 for the
//! first), so frames can be walked backwards. A `len` of zero marks the end of
//! written data in a preallocated segment.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{align_up, FLAGS_KNOWN, FRAME_CRC_SEED, FRAME_HEADER_BYTES};

/// Fixed header in front of every record.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct FrameHeader {
    /// Header + payload + key bytes, without padding.
    pub len: U32,
    /// CRC32C of the frame, see the module docs.
    pub crc: U32,
    /// The record's sequence number.
    pub seq: U64,
    /// Microseconds since the Unix epoch.
    pub timestamp_us: U64,
    /// Padded length of the previous frame in this segment, 0 for the first.
    pub prev_len: U32,
    /// Length of the key, which follows the payload.
    pub key_len: U16,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Zero in this version.
    pub reserved: u8,
}

/// A frame decoded and checked in place.
#[derive(Clone, Copy, Debug)]
pub struct DecodedFrame<'a> {
    /// The record's sequence number.
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Padded length of the previous frame (0 for the first in a segment).
    pub prev_len: u64,
    /// Padded length of this frame: the next frame starts this far on.
    pub padded_len: u64,
    /// The payload, 8-byte aligned relative to the segment start.
    pub payload: &'a [u8],
    /// The key (empty when the record has none).
    pub key: &'a [u8],
}

/// Why bytes at an offset are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A zero length field or no room for a header: the end of written data.
    End,
    /// The length field is impossible (too small, or past the end of the data).
    BadLength(u64),
    /// The key length does not fit in the frame, or unknown flag bits are set.
    BadHeader,
    /// The checksum does not match.
    Checksum {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum computed over the bytes.
        computed: u32,
    },
}

/// Computes the checksum of a frame given its header (crc field ignored),
/// payload and key. Equal to [`frame_crc_in_place`] over the laid-down frame.
#[inline]
#[must_use]
pub fn frame_crc(header: &FrameHeader, payload: &[u8], key: &[u8]) -> u32 {
    let mut crc = crc32c::crc32c_append(FRAME_CRC_SEED ^ header.len.get(), &header.as_bytes()[8..]);
    crc = crc32c::crc32c_append(crc, payload);
    crc32c::crc32c_append(crc, key)
}

/// Computes the checksum of a frame laid down contiguously: `frame` holds
/// bytes `0..len` (header, payload, key, no padding); the crc field is not
/// read. One CRC32C pass, which the writer runs over the bytes it just copied.
#[inline]
#[must_use]
pub fn frame_crc_in_place(frame: &[u8]) -> u32 {
    let len = frame.len() as u32;
    crc32c::crc32c_append(FRAME_CRC_SEED ^ len, frame.get(8..).unwrap_or(&[]))
}

/// Decodes and verifies the frame at `offset` of `data`, where `data` holds
/// only bytes that may contain frames (it ends at the committed length, or at
/// the end of frames for sealed segments). Never panics, whatever the bytes.
///
/// # Errors
///
/// A [`FrameError`] if the bytes at `offset` are not a whole, valid frame (cut short, bad length or
/// flags, checksum mismatch when `verify_crc`).
#[inline]
pub fn decode_frame(data: &[u8], offset: u64, verify_crc: bool) -> Result<DecodedFrame<'_>, FrameError> {
    let start = usize::try_from(offset).map_err(|_| FrameError::End)?;
    let rest = data.get(start..).ok_or(FrameError::End)?;
    let Ok((header, _)) = FrameHeader::ref_from_prefix(rest) else {
        return Err(FrameError::End);
    };
    let len = u64::from(header.len.get());
    if len == 0 {
        return Err(FrameError::End);
    }
    if len < FRAME_HEADER_BYTES || align_up(len) > rest.len() as u64 {
        return Err(FrameError::BadLength(len));
    }
    let key_len = u64::from(header.key_len.get());
    if key_len > len - FRAME_HEADER_BYTES || header.flags & !FLAGS_KNOWN != 0 || header.reserved != 0 {
        return Err(FrameError::BadHeader);
    }
    let frame = &rest[..len as usize];
    let body = &frame[FRAME_HEADER_BYTES as usize..];
    let (payload, key) = body.split_at(body.len() - key_len as usize);
    if verify_crc {
        let computed = frame_crc_in_place(frame);
        let stored = header.crc.get();
        if computed != stored {
            return Err(FrameError::Checksum { stored, computed });
        }
    }
    Ok(DecodedFrame {
        seq: header.seq.get(),
        timestamp_us: header.timestamp_us.get(),
        flags: header.flags,
        prev_len: u64::from(header.prev_len.get()),
        padded_len: align_up(len),
        payload,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(seq: u64, payload: &[u8], key: &[u8]) -> Vec<u8> {
        let len = FRAME_HEADER_BYTES as usize + payload.len() + key.len();
        let mut h = FrameHeader {
            len: U32::new(len as u32),
            crc: U32::new(0),
            seq: U64::new(seq),
            timestamp_us: U64::new(7),
            prev_len: U32::new(0),
            key_len: U16::new(key.len() as u16),
            flags: 0,
            reserved: 0,
        };
        h.crc = U32::new(frame_crc(&h, payload, key));
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(payload);
        out.extend_from_slice(key);
        out.resize(align_up(len as u64) as usize, 0);
        out
    }

    #[test]
    fn encoded_frame_decodes_to_the_same_fields() {
        // Goal: the encoder and decoder agree on every field and on padding.
        let bytes = encode(9, b"hello", b"k1");
        let f = decode_frame(&bytes, 0, true).unwrap();
        assert_eq!((f.seq, f.timestamp_us, f.payload, f.key), (9, 7, &b"hello"[..], &b"k1"[..]));
        assert_eq!(f.padded_len, 40);
    }

    #[test]
    fn split_and_in_place_checksums_agree() {
        // Goal: the writer (in place, one pass) and `frame_crc` (header,
        // payload, key apart) compute the same checksum for every shape.
        for (p, k) in [(&b""[..], &b""[..]), (b"x", b"k"), (&[7u8; 100][..], b""), (&[1u8; 3][..], &[2u8; 300][..])] {
            let bytes = encode(5, p, k);
            let len = FRAME_HEADER_BYTES as usize + p.len() + k.len();
            let stored = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            assert_eq!(frame_crc_in_place(&bytes[..len]), stored);
        }
    }

    #[test]
    fn the_length_field_changes_the_checksum() {
        // Goal: `len` is covered through the seed: the same bytes 8.. under
        // two different lengths give different checksums.
        let bytes = encode(5, &[9u8; 40], b"");
        assert_ne!(frame_crc_in_place(&bytes[..72]), frame_crc_in_place(&bytes[..71]));
        assert_ne!(frame_crc_in_place(&bytes[..72]), crc32c::crc32c_append(FRAME_CRC_SEED, &bytes[8..72]));
    }

    #[test]
    fn all_zero_bytes_are_the_end_never_a_frame() {
        // Goal: preallocated (zeroed) space never validates as a frame, even
        // with a non-zero length planted in front of zeros.
        assert_eq!(decode_frame(&[0u8; 64], 0, true).unwrap_err(), FrameError::End);
        let mut z = [0u8; 64];
        z[0] = 32;
        assert!(matches!(decode_frame(&z, 0, true), Err(FrameError::Checksum { .. })));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        // Goal: the checksum covers every byte of header, payload and key.
        let bytes = encode(3, b"payload bytes", b"key");
        let len = FRAME_HEADER_BYTES as usize + 13 + 3;
        for i in 0..len {
            if (4..8).contains(&i) {
                continue; // flipping the stored crc is a mismatch too, checked below
            }
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(decode_frame(&b, 0, true).is_err(), "flip at byte {i} bit {bit} passed");
            }
        }
        let mut b = bytes.clone();
        b[5] ^= 1;
        assert!(matches!(decode_frame(&b, 0, true), Err(FrameError::Checksum { .. })));
    }

    #[test]
    fn truncated_input_never_panics() {
        // Goal: every prefix of a frame is rejected without panicking.
        let bytes = encode(1, &[0xAB; 50], b"");
        for cut in 0..bytes.len() {
            assert!(decode_frame(&bytes[..cut], 0, true).is_err());
        }
        assert!(decode_frame(&bytes, u64::MAX, true).is_err());
    }
}
