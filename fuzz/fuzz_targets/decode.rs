//! Frame, footer and segment-header decoding of arbitrary bytes: never a
//! panic, never a slice outside the input, and a sequential walk over frames
//! (what recovery's scan does) always ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use varvelog::format::{decode_footer, decode_frame, SegmentHeader, FRAME_ALIGN, FRAME_HEADER_BYTES, INDEX_ENTRY_BYTES};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose a start offset (also far out of range).
    let start = data.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    for verify in [true, false] {
        if let Ok(f) = decode_frame(data, start, verify) {
            check_frame(data, start, &f);
        }
        // Walk frames from offset 0 the way a scan does; each step moves on
        // by at least one header, so the walk ends.
        let mut off = 0u64;
        while let Ok(f) = decode_frame(data, off, verify) {
            check_frame(data, off, &f);
            off += f.padded_len;
        }
    }
    if let Ok((footer, index)) = decode_footer(data) {
        let _ = footer.record_count.get();
        assert!(index.len() as u64 * INDEX_ENTRY_BYTES <= data.len() as u64, "index larger than the file");
    }
    let _ = SegmentHeader::decode(data);
});

fn check_frame(data: &[u8], off: u64, f: &varvelog::format::DecodedFrame<'_>) {
    assert!(f.padded_len >= FRAME_HEADER_BYTES && f.padded_len % FRAME_ALIGN == 0, "bad padded length {}", f.padded_len);
    assert!(off + f.padded_len <= data.len() as u64, "frame runs past the input");
    let range = data.as_ptr_range();
    for s in [f.payload, f.key] {
        assert!(range.start <= s.as_ptr() && s.as_ptr_range().end <= range.end, "slice outside the input");
    }
}
