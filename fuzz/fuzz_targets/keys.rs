//! The footer's key section: decoding arbitrary bytes never panics and every
//! probe of a section that decodes stays inside it (the filter's descriptor
//! is checked before any probe); and a section built from arbitrary
//! `(hash, offset)` entries decodes to exactly those entries, finding every
//! hash with all its offsets and no others.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use varvelog::format::{decode_footer_full, encode_key_section, key_hash, key_hash128, KeySection};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        // Arbitrary bytes as a section of `count` entries, and as a file.
        let count = rest.get(..4).map_or(0, |b| u64::from(u32::from_le_bytes(b.try_into().unwrap())) % 4096);
        let bytes = rest.get(4..).unwrap_or(&[]);
        if let Some(s) = KeySection::decode(bytes, count) {
            probe(&s, bytes);
        }
        if let Ok(f) = decode_footer_full(rest) {
            if let Some(s) = KeySection::decode(f.keys, u64::from(f.footer.key_count.get())) {
                probe(&s, f.keys);
            }
        }
        return;
    }
    // Structured: entries from the input, few distinct hashes so that many
    // share one.
    let mut entries: Vec<(u128, u32)> = rest
        .chunks_exact(3)
        .enumerate()
        .map(|(i, c)| (key_hash128(&[c[0] % 64]), 4096 + 8 * (i as u32) + u32::from(c[1]) * 0x10000))
        .collect();
    entries.sort_unstable();
    entries.dedup();
    let mut want: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for &(h, o) in &entries {
        want.entry(h as u64).or_default().push(o);
    }
    let bytes = encode_key_section(&mut entries.clone());
    let s = KeySection::decode(&bytes, entries.len() as u64).expect("a section the engine built decodes");
    assert_eq!(s.len(), entries.len());
    for (h, offs) in &want {
        assert!(s.may_contain(*h), "filter lost a hash");
        let found = s.offsets(*h);
        let got: Vec<u32> = found.iter().map(|e| e.offset.get()).collect();
        assert_eq!(&got, offs, "offsets of a hash");
        for e in found {
            assert_eq!(e.order_key() >> 64, u128::from(*h), "the high half travelled with its entry");
        }
    }
    for b in 64u8..128 {
        let h = key_hash(&[b]);
        assert!(s.offsets(h).is_empty(), "a hash never put in has offsets");
    }
});

/// Probes `s` with many hashes: no panic, every entry returned lies in `bytes`.
fn probe(s: &KeySection<'_>, bytes: &[u8]) {
    let range = bytes.as_ptr_range();
    for i in 0..256u64 {
        let h = key_hash(&i.to_le_bytes());
        let _ = s.may_contain(h);
        let offs = s.offsets(h);
        assert!(offs.is_empty() || (range.start <= offs.as_ptr().cast() && offs.as_ptr_range().end.cast() <= range.end));
    }
    for e in s.entries().iter().take(64) {
        let _ = s.may_contain(e.hash.get());
    }
}
