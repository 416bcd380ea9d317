// Shared by the model files (included with `mod common;`).
#![allow(dead_code)]

use varvelog::Snapshot;

/// Runs `f` under loom with a bounded number of preemptions: the
/// `LOOM_MAX_PREEMPTIONS` environment variable if set, else 3.
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// The payload of `seq` in every model: its length and bytes depend on the
/// seq, so a record read with another seq's bytes, or half written, differs.
pub fn payload(seq: u64) -> Vec<u8> {
    vec![seq as u8 ^ 0xA5; 3 + seq as usize]
}

/// Reads every record of `snap` from `from` on: each must decode, carry the
/// next seq and exactly its payload, forwards, by seq and backwards.
/// Returns the seq after the last one.
pub fn read_from(snap: &Snapshot, from: u64) -> u64 {
    let mut next = from;
    for r in snap.iter_from(from) {
        let r = r.unwrap_or_else(|e| panic!("reader met a bad frame at seq {next}: {e}"));
        assert_eq!(r.seq(), next, "reader skipped or repeated a record");
        assert_eq!(r.payload(), payload(next).as_slice(), "reader saw other bytes for seq {next}");
        next += 1;
    }
    // Lookups by seq go through the live sparse index (published with its
    // own Release store); backwards iteration walks `prev_len`. Both must
    // agree with the forward pass.
    for seq in from..next {
        let r = snap.get(seq).unwrap_or_else(|e| panic!("get({seq}): {e}")).expect("a record in view");
        assert_eq!(r.payload(), payload(seq).as_slice(), "get({seq}) saw other bytes");
    }
    if next > from {
        let back: Vec<u64> = snap.iter_rev_from(next - 1).map(|r| r.expect("backwards read").seq()).take_while(|&s| s >= from).collect();
        assert_eq!(back, (from..next).rev().collect::<Vec<_>>(), "backwards iteration differs");
    }
    next
}

/// A fresh directory for one model iteration's segment files.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}
