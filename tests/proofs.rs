//! Merkle roots and proofs against a straightforward implementation of
//! RFC 6962's definitions over the records read back: every size, every
//! kind of segment (sealed with and without kept nodes, live, evicted by
//! retention, compacted), and tampering of proofs and records.

use std::time::Duration;

use varvelog::{
    empty_root, node_hash, verify_consistency, verify_inclusion, CompactOptions, Entry, Error, Hash, Log, Options, Retention, Root,
    Snapshot,
};

/// RFC 6962 `MTH` over leaf hashes, by its recursive definition.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// The leaf hash of every record in view, by seq.
fn leaves(snap: &Snapshot) -> Vec<Hash> {
    snap.iter().map(|r| r.unwrap().leaf_hash()).collect()
}

fn open(dir: &std::path::Path, proofs: bool) -> Log {
    Log::open(dir, Options::new().segment_bytes(64 << 10).proofs(proofs)).unwrap()
}

/// Records of varied sizes, some keyed (keys repeat), some tombstones.
fn append(log: &Log, from: u64, n: u64, rng: &mut fastrand::Rng) {
    let mut w = log.writer().unwrap();
    for i in from..from + n {
        let payload = vec![(i % 251) as u8; rng.usize(0..300)];
        let key = format!("k{}", rng.u64(0..40));
        let e = match rng.u8(0..10) {
            0..=5 => Entry::new(&payload),
            6..=8 => Entry::new(&payload).key(key.as_bytes()),
            _ => Entry::new(b"").key(key.as_bytes()).tombstone(),
        };
        w.append_entry(e).unwrap();
    }
}

/// Roots at random sizes, inclusion of random records, consistency of
/// random pairs: all equal the reference and verify; tampering fails.
fn check(snap: &Snapshot, all: &[Hash], rng: &mut fastrand::Rng) {
    let n = all.len() as u64;
    assert_eq!(snap.root().unwrap(), Root { size: n, hash: mth(all) });
    let mut sizes: Vec<u64> = (0..12).map(|_| rng.u64(0..=n)).collect();
    sizes.extend([0, 1, n, n.saturating_sub(1), 1024, 1025, 2048].into_iter().filter(|&s| s <= n));
    for &size in &sizes {
        assert_eq!(snap.root_at(size).unwrap().hash, mth(&all[..size as usize]), "root at {size}");
    }
    let root = snap.root().unwrap();
    for _ in 0..20 {
        let seq = rng.u64(0..n);
        let proof = snap.prove_inclusion(seq).unwrap();
        assert!(verify_inclusion(&root, &all[seq as usize], &proof), "inclusion of {seq}");
        // Another record, another root, a damaged path: refused.
        assert!(!verify_inclusion(&root, &all[((seq + 1) % n) as usize], &proof) || n == 1);
        let mut bad = proof.clone();
        if !bad.path.is_empty() {
            let i = rng.usize(..bad.path.len());
            bad.path[i][rng.usize(..32)] ^= 1;
            assert!(!verify_inclusion(&root, &all[seq as usize], &bad));
        }
        let older = snap.root_at(seq + 1).unwrap();
        assert!(!verify_inclusion(&older, &all[seq as usize], &proof) || seq + 1 == n);
    }
    for _ in 0..20 {
        let (a, b) = (rng.u64(0..=n), rng.u64(0..=n));
        let (old, new) = (a.min(b), a.max(b));
        let proof = snap.prove_consistency(old, new).unwrap();
        let (ro, rn) = (snap.root_at(old).unwrap(), snap.root_at(new).unwrap());
        assert!(verify_consistency(&ro, &rn, &proof), "consistency {old} -> {new}");
        if old > 0 && old < new {
            let mut forged = ro;
            forged.hash[0] ^= 1;
            assert!(!verify_consistency(&forged, &rn, &proof));
            let mut bad = proof.clone();
            let i = rng.usize(..bad.path.len());
            bad.path[i][rng.usize(..32)] ^= 1;
            assert!(!verify_consistency(&ro, &rn, &bad));
        }
    }
}

#[test]
fn roots_and_proofs_match_the_reference_with_and_without_kept_nodes() {
    for proofs in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = fastrand::Rng::with_seed(16 + u64::from(proofs));
        let log = open(dir.path(), proofs);
        // Sizes across segment bounds and the kept levels (1024 leaves).
        for step in [1, 7, 500, 1500, 3000] {
            append(&log, log.next_seq(), step, &mut rng);
            let snap = log.snapshot();
            check(&snap, &leaves(&snap), &mut rng);
        }
        let before = log.snapshot().root().unwrap();
        log.close().unwrap();
        let log = open(dir.path(), proofs);
        assert_eq!(log.snapshot().root().unwrap(), before, "the same root after reopening");
        assert!(log.snapshot().segment_count() > 5);
    }
}

#[test]
fn a_log_keeping_proofs_still_proves_after_retention_removed_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    let log = open(dir.path(), true);
    append(&log, 0, 6000, &mut rng);
    let snap = log.snapshot();
    let all = leaves(&snap);
    let root = snap.root().unwrap();
    let report = log.retain(&Retention::new().min_seq(2500)).unwrap();
    assert!(report.first_seq > 1000);
    let snap = log.snapshot();
    assert_eq!(snap.root().unwrap(), root, "the root covers records retention removed");
    for seq in [report.first_seq, report.first_seq + 1, 4000, 5999] {
        let proof = snap.prove_inclusion(seq).unwrap();
        assert!(verify_inclusion(&root, &all[seq as usize], &proof), "inclusion of {seq}");
    }
    let old = Root { size: 3000, hash: mth(&all[..3000]) };
    assert!(verify_consistency(&old, &root, &snap.prove_consistency(3000, 6000).unwrap()));
    // Without kept nodes the removed records cannot be stood in for.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    append(&log, 0, 6000, &mut rng);
    log.retain(&Retention::new().min_seq(2500)).unwrap();
    assert!(matches!(log.snapshot().root(), Err(Error::ProofUnavailable { .. })));
}

#[test]
fn compaction_keeps_the_root_and_the_proofs_of_what_it_keeps() {
    // Compaction removes replaced records but copies each segment's Merkle
    // section, so the root is unchanged and a later root stays consistent
    // with every earlier one.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let log = open(dir.path(), true);
    append(&log, 0, 5000, &mut rng);
    let root = log.snapshot().root().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let report = log.compact(&CompactOptions::new().tombstone_retention(Duration::ZERO)).unwrap();
    assert!(report.records_removed > 0, "{report:?}");
    let snap = log.snapshot();
    assert_eq!(snap.root().unwrap(), root);
    append(&log, 5000, 100, &mut rng);
    let later = log.snapshot();
    let new = later.root().unwrap();
    assert!(verify_consistency(&root, &new, &later.prove_consistency(5000, 5100).unwrap()));
    // Records compaction kept whose neighbours (within 1024) are all there
    // prove as before; a record compaction removed is not in the log.
    let last = later.iter_rev().next().unwrap().unwrap();
    let proof = later.prove_inclusion(last.seq()).unwrap();
    assert!(verify_inclusion(&new, &last.leaf_hash(), &proof));
    let removed = (0..5000).find(|&s| later.get(s).unwrap().is_none()).unwrap();
    assert!(matches!(later.prove_inclusion(removed), Err(Error::ProofUnavailable { .. })));
}

#[test]
fn verify_finds_a_changed_merkle_node_naming_the_file() {
    // A node in a sealed segment's Merkle section rewritten (and the
    // footer's checksum redone, as a careful forger would): verify rebuilds
    // the section from the records and reports the file.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(9);
    let log = open(dir.path(), true);
    append(&log, 0, 3000, &mut rng);
    let info = log.snapshot().segment_info();
    assert!(log.verify().is_ok());
    log.close().unwrap();
    let victim = &info[1].path;
    let mut bytes = std::fs::read(victim).unwrap();
    let n = bytes.len();
    let trailer = n - 96;
    let footer_at = u64::from_le_bytes(bytes[trailer + 8..trailer + 16].try_into().unwrap()) as usize;
    let footer_len = u32::from_le_bytes(bytes[trailer + 16..trailer + 20].try_into().unwrap()) as usize;
    // The first hash of the Merkle section is the last 32 bytes' ... pick the
    // section's last hash: the footer ends with it.
    bytes[footer_at + footer_len - 1] ^= 1;
    let crc = crc32c::crc32c(&bytes[footer_at..footer_at + footer_len]);
    bytes[trailer + 20..trailer + 24].copy_from_slice(&crc.to_le_bytes());
    let tcrc = crc32c::crc32c(&bytes[trailer..n - 4]);
    bytes[n - 4..].copy_from_slice(&tcrc.to_le_bytes());
    std::fs::write(victim, &bytes).unwrap();
    let report = varvelog::verify_dir(dir.path()).unwrap();
    let problem = report.first_problem().expect("the changed node is found").to_string();
    assert!(problem.contains(&victim.display().to_string()) && problem.contains("Merkle"), "{problem}");
}

#[test]
fn checkpoints_are_durable_and_verify_from_them_catches_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let log = open(dir.path(), true);
    append(&log, 0, 2500, &mut rng);
    let first = log.checkpoint().unwrap();
    assert_eq!(first.root, log.snapshot().root_at(2500).unwrap());
    append(&log, 2500, 2500, &mut rng);
    let second = log.checkpoint().unwrap();
    assert_eq!(log.checkpoints().unwrap(), vec![first, second]);
    assert!(log.verify_from(&first).is_ok());
    // Anchored elsewhere: the bytes come back as the same checkpoint, and
    // the later root is consistent with the earlier one.
    assert_eq!(varvelog::Checkpoint::from_bytes(&first.to_bytes()).unwrap(), first);
    let proof = log.snapshot().prove_consistency(first.root.size, second.root.size).unwrap();
    assert!(verify_consistency(&first.root, &second.root, &proof));
    log.close().unwrap();
    // Reopened, the file still lists both; a torn last entry is ignored.
    let path = dir.path().join("checkpoints");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[7; 30]);
    std::fs::write(&path, &bytes).unwrap();
    let log = open(dir.path(), true);
    assert_eq!(log.checkpoints().unwrap(), vec![first, second]);
    let third = log.checkpoint().unwrap();
    assert_eq!(log.checkpoints().unwrap(), vec![first, second, third]);
    // A checkpoint of another history is refused.
    let mut forged = first;
    forged.root.hash[3] ^= 1;
    let report = log.verify_from(&forged);
    assert!(report.first_problem().unwrap().to_string().contains("history before the checkpoint was rewritten"), "{report:?}");
}
