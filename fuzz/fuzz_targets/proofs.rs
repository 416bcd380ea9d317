//! Proofs, roots and checkpoints decoded from arbitrary bytes, and verified
//! against a real log's root: decoding never panics, whatever decodes
//! encodes back to the same bytes, and a proof that verifies for a record
//! is the log's own proof of it (a forged path never verifies).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use varvelog::{verify_consistency, verify_inclusion, Checkpoint, ConsistencyProof, Hash, InclusionProof, Log, Options, Root};

const RECORDS: u64 = 300;

/// A log of `RECORDS` records, its root, and every record's leaf hash.
fn log() -> &'static (tempfile::TempDir, Log, Root, Vec<Hash>) {
    static LOG: OnceLock<(tempfile::TempDir, Log, Root, Vec<Hash>)> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new().segment_bytes(64 * 1024).prefault(false).spare_segments(0).proofs(true)).unwrap();
        let mut w = log.writer().unwrap();
        for i in 0..RECORDS {
            w.append(&i.to_le_bytes()).unwrap();
        }
        drop(w);
        let snap = log.snapshot();
        let root = snap.root().unwrap();
        let leaves = snap.iter().map(|r| r.unwrap().leaf_hash()).collect();
        (dir, log, root, leaves)
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, log, root, leaves) = log();
    if let Ok(p) = InclusionProof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data, "an inclusion proof re-encodes to its bytes");
        if p.seq < RECORDS && verify_inclusion(root, &leaves[p.seq as usize], &p) {
            assert_eq!(p, log.snapshot().prove_inclusion(p.seq).unwrap(), "only the log's own proof verifies");
        }
    }
    if let Ok(p) = ConsistencyProof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data, "a consistency proof re-encodes to its bytes");
        let snap = log.snapshot();
        if p.old_size <= RECORDS && p.new_size == RECORDS {
            let old = snap.root_at(p.old_size).unwrap();
            if verify_consistency(&old, root, &p) && p.old_size > 0 && p.old_size < RECORDS {
                assert_eq!(p, snap.prove_consistency(p.old_size, RECORDS).unwrap(), "only the log's own proof verifies");
            }
        }
    }
    if let Ok(r) = Root::from_bytes(data) {
        assert_eq!(r.to_bytes(), data);
    }
    if let Ok(c) = Checkpoint::from_bytes(data) {
        assert_eq!(c.to_bytes(), data);
    }
});
