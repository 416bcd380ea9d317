//! Keys through the public API: lookup by key, the latest-value view, and
//! compaction, checked against a `BTreeMap` model across sealed and live
//! segments, reopens, crashes (the process's pages kept, no close) and
//! compactions.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Rng;
use varvelog::{verify_dir, CompactOptions, Entry, Log, Options, SyncPolicy};

fn small() -> Options {
    Options::new().segment_bytes(64 << 10).sync_policy(SyncPolicy::Never)
}

/// A record as the model holds it: key, payload, tombstone.
type ModelRecord = (Option<Vec<u8>>, Vec<u8>, bool);

/// What the log should say: every seq's record.
#[derive(Default)]
struct Model {
    records: BTreeMap<u64, ModelRecord>,
}

impl Model {
    fn newest(&self, key: &[u8]) -> Option<(u64, &Vec<u8>, bool)> {
        self.records.iter().rev().find(|(_, r)| r.0.as_deref() == Some(key)).map(|(s, r)| (*s, &r.1, r.2))
    }

    fn get_key(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.newest(key).filter(|n| !n.2).map(|n| n.1)
    }

    fn keys(&self) -> std::collections::BTreeSet<Vec<u8>> {
        self.records.values().filter_map(|r| r.0.clone()).collect()
    }

    /// The latest live value of every key, in seq order.
    fn kv(&self) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> =
            self.keys().iter().filter_map(|k| self.newest(k).filter(|n| !n.2).map(|n| (n.0, n.1.clone()))).collect();
        out.sort();
        out
    }

    /// Applies a compaction of records up to `sealed_end` (exclusive) with
    /// every tombstone expired: what it may remove. Records it keeps stay.
    fn compacted_may_remove(&self, seq: u64, sealed_end: u64, durable: u64) -> bool {
        let (key, _, tomb) = &self.records[&seq];
        let Some(k) = key else { return false };
        if seq >= sealed_end {
            return false;
        }
        let newer = self.records.range(seq + 1..durable).any(|(_, r)| r.0.as_ref() == Some(k));
        newer || *tomb
    }
}

fn check(log: &Log, model: &Model) {
    let snap = log.snapshot();
    for k in model.keys() {
        let got = snap.get_key(&k).unwrap().map(|r| r.payload().to_vec());
        assert_eq!(got.as_ref(), model.get_key(&k), "get_key {:?}", String::from_utf8_lossy(&k));
        // iter_key: newest first, a subset of the model's records for the
        // key (compaction removes some), always including the newest.
        let seqs: Vec<u64> = snap.iter_key(&k).map(|r| r.unwrap().seq()).collect();
        let want: Vec<u64> = model.records.iter().rev().filter(|(_, r)| r.0.as_deref() == Some(&k[..])).map(|(s, _)| *s).collect();
        assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
        assert!(seqs.iter().all(|s| want.contains(s)), "{seqs:?} not in {want:?}");
        if let Some(n) = model.newest(&k) {
            if !n.2 {
                assert_eq!(seqs.first(), Some(&n.0));
            }
        }
        let oldest_first: Vec<u64> = snap.iter_key(&k).rev().map(|r| r.unwrap().seq()).collect();
        assert_eq!(oldest_first, seqs.iter().rev().copied().collect::<Vec<_>>());
    }
    assert!(snap.get_key(b"never-written").unwrap().is_none());
    let kv: Vec<(u64, Vec<u8>)> = snap.kv().map(|r| r.map(|r| (r.seq(), r.payload().to_vec()))).collect::<Result<_, _>>().unwrap();
    assert_eq!(kv, model.kv());
    // Every record the log yields is the model's, in order; every record it
    // lacks was one a compaction may remove.
    let mut yielded = Vec::new();
    for r in snap.iter() {
        let r = r.unwrap();
        let (key, payload, tomb) = &model.records[&r.seq()];
        assert_eq!((r.key().map(<[u8]>::to_vec).as_ref(), r.payload(), r.is_tombstone()), (key.as_ref(), &payload[..], *tomb));
        yielded.push(r.seq());
    }
    let back: Vec<u64> = snap.iter_rev().map(|r| r.unwrap().seq()).collect();
    assert_eq!(back, yielded.iter().rev().copied().collect::<Vec<_>>());
    for (&seq, (key, payload, _)) in &model.records {
        match snap.get(seq).unwrap() {
            Some(r) => assert_eq!(r.payload(), &payload[..]),
            None => assert!(key.is_some() && !yielded.contains(&seq), "seq {seq} lost"),
        }
    }
}

/// Closes `log` and checks that `verify_dir` finds nothing wrong in `dir`.
fn close_and_verify(log: Log, dir: &std::path::Path) {
    log.close().unwrap();
    let report = verify_dir(dir).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Appends 6000 records over 50 keys (`k{i % 50}`, payload `i`) and syncs.
fn append_versions(log: &Log) {
    let mut w = log.writer().unwrap();
    for i in 0..6000u64 {
        w.append_entry(Entry::new(&i.to_le_bytes()).key(format!("k{}", i % 50).as_bytes())).unwrap();
    }
    w.sync().unwrap();
}

/// Every key [`append_versions`] wrote gives its newest record.
fn check_newest_versions(log: &Log) {
    for k in 0..50u64 {
        let newest = (0..6000u64).rev().find(|i| i % 50 == k).unwrap();
        assert_eq!(log.snapshot().get_key(format!("k{k}").as_bytes()).unwrap().unwrap().seq(), newest);
    }
}

#[test]
fn lookups_and_the_latest_value_view_agree_with_a_model_through_compactions_and_reopens() {
    // Goal: get_key, iter_key (both directions), kv, iter, iter_rev and get
    // agree with a BTreeMap model while records with and without keys and
    // tombstones are appended, segments seal, compactions run (tombstones
    // expiring at once), and the log is reopened after a clean close or a
    // drop without sync. Method: seeded random operations; after each
    // step, every read is compared with the model; after compactions
    // verify_dir passes once the log is closed.
    let seed = std::env::var("VARVELOG_KEYS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6b65_7973);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut log = Log::open(dir.path(), small()).unwrap();
    let mut w = log.writer().unwrap();
    let (mut removed, mut tombstones, mut rewritten) = (0, 0, 0);
    for step in 0..40 {
        for _ in 0..rng.below(400) {
            let seq = w.next_seq();
            let keyed = rng.below(4) != 0;
            let key = keyed.then(|| format!("key-{}", rng.below(40)).into_bytes());
            let tomb = keyed && rng.below(8) == 0;
            let payload: Vec<u8> = if tomb { Vec::new() } else { (0..rng.below(300)).map(|i| (i ^ seq) as u8).collect() };
            let mut e = Entry::new(&payload);
            if let Some(k) = &key {
                e = e.key(k);
            }
            if tomb {
                e = e.tombstone();
            }
            assert_eq!(w.append_entry(e).unwrap(), seq);
            model.records.insert(seq, (key, payload, tomb));
        }
        match rng.below(6) {
            0 => {
                w.sync().unwrap();
                let report = log.compact(&CompactOptions::new().tombstone_retention(Duration::ZERO)).unwrap();
                // What compaction removed, the model allows.
                let snap = log.snapshot();
                let sealed_end = snap.next_seq();
                let durable = log.durable_seq().map_or(0, |d| d + 1);
                for &seq in model.records.keys() {
                    if snap.get(seq).unwrap().is_none() {
                        assert!(model.compacted_may_remove(seq, sealed_end, durable), "step {step}: seq {seq} removed");
                    }
                }
                removed += report.records_removed;
                tombstones += report.tombstones_removed;
                rewritten += report.segments_rewritten;
            }
            1 => {
                w.sync().unwrap();
                drop(w);
                log.close().unwrap();
                log = Log::open(dir.path(), small()).unwrap();
                w = log.writer().unwrap();
            }
            _ => {}
        }
        check(&log, &model);
    }
    assert!(removed > 1000 && tombstones > 0 && rewritten > 5, "compaction did little: {removed} {tombstones} {rewritten}");
    w.sync().unwrap();
    drop(w);
    close_and_verify(log, dir.path());
}

#[test]
fn a_read_only_view_finds_keys_in_the_segments_a_writer_is_still_filling() {
    // Goal: lookups by key through a read-only view see records in the live
    // segment and in rotated-away, not yet sealed ones, as the writer's own
    // view does. Method: a writer appends versions of 50 keys and a
    // tombstone across several 64 KiB segments without closing; a read-only
    // view's get_key, iter_key and kv must equal the writer's.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..3000u64 {
        let (k, p) = (format!("k{}", i % 50), i.to_le_bytes());
        w.append_entry(Entry::new(&p).key(k.as_bytes())).unwrap();
    }
    w.append_entry(Entry::new(b"").key(b"k7").tombstone()).unwrap();
    let ro = Log::open_read_only(dir.path()).unwrap();
    let (mine, theirs) = (log.snapshot(), ro.snapshot());
    assert!(mine.segment_count() > 3);
    for k in (0..50).map(|i| format!("k{i}")) {
        let a = mine.get_key(k.as_bytes()).unwrap().map(|r| r.seq());
        let b = theirs.get_key(k.as_bytes()).unwrap().map(|r| r.seq());
        assert_eq!(a, b, "{k}");
        let a: Vec<u64> = mine.iter_key(k.as_bytes()).map(|r| r.unwrap().seq()).collect();
        let b: Vec<u64> = theirs.iter_key(k.as_bytes()).map(|r| r.unwrap().seq()).collect();
        assert_eq!(a, b, "{k}");
    }
    assert!(theirs.get_key(b"k7").unwrap().is_none());
    let a: Vec<u64> = mine.kv().map(|r| r.unwrap().seq()).collect();
    let b: Vec<u64> = theirs.kv().map(|r| r.unwrap().seq()).collect();
    assert_eq!((a.len(), &a), (49, &b));
}

#[test]
fn compaction_in_the_background_beside_a_writer_a_tail_and_an_old_snapshot() {
    // Goal: compaction runs while the writer appends, a tail follows from
    // the start and a reader holds a snapshot taken before it: the old
    // snapshot reads every record it held, byte for byte; the tail yields
    // rising seqs whose records are the ones written; the newest value of
    // every key survives; verify passes after close. Method: a background
    // compaction every 5 ms (Log::compact_every) over 64 KiB segments while
    // 60,000 keyed records are appended and synced in bursts.
    fn payload(seq: u64) -> Vec<u8> {
        (0..(seq % 97 + 3)).map(|i| (seq.wrapping_mul(31) ^ i) as u8).collect()
    }
    let key = |seq: u64| format!("k{}", seq % 300).into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..5000 {
        w.append_entry(Entry::new(&payload(seq)).key(&key(seq))).unwrap();
    }
    w.sync().unwrap();
    let old = log.snapshot();
    let task = log.compact_every(CompactOptions::new(), Duration::from_millis(5)).unwrap();
    let tail_log = log.clone();
    let follower = std::thread::spawn(move || {
        let mut tail = tail_log.tail_from(0).unwrap();
        let mut last = None;
        let mut seen = 0u64;
        while let Some(r) = tail.next_timeout(Duration::from_secs(2)).unwrap() {
            assert!(last.is_none_or(|l| r.seq() > l), "tail went back");
            assert_eq!(r.payload(), &payload(r.seq())[..], "seq {}", r.seq());
            last = Some(r.seq());
            seen += 1;
            if r.seq() == 59_999 {
                break;
            }
        }
        (last, seen)
    });
    for seq in 5000..60_000 {
        w.append_entry(Entry::new(&payload(seq)).key(&key(seq))).unwrap();
        if seq % 1000 == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    let (last, seen) = follower.join().unwrap();
    assert_eq!(last, Some(59_999));
    assert!(seen > 0);
    // Let the task run a pass over the last sealed segments, then stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while task.rewritten_segments() < 10 {
        assert!(std::time::Instant::now() < deadline, "background compaction did little: {:?}", task.take_error());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(task.take_error().is_none());
    drop(task);
    // The old snapshot still reads all it held.
    let mut n = 0;
    for r in old.iter() {
        let r = r.unwrap();
        assert_eq!((r.seq(), r.payload()), (n, &payload(n)[..]));
        n += 1;
    }
    assert_eq!(n, 5000);
    let snap = log.snapshot();
    assert!(snap.len() < 60_000, "nothing was compacted");
    for k in 0..300u64 {
        let newest = (0..60_000u64).rev().find(|s| s % 300 == k).unwrap();
        let r = snap.get_key(format!("k{k}").as_bytes()).unwrap().unwrap();
        assert_eq!((r.seq(), r.payload()), (newest, &payload(newest)[..]));
    }
    drop((w, old, snap));
    close_and_verify(log, dir.path());
}

#[test]
fn segments_compaction_emptied_are_passed_over_both_ways() {
    // Goal: a sealed segment whose every record compaction removed (count
    // 0, but covering its seqs) is passed over by every read path: forward
    // and backward iteration, a range, get of its seqs, a time seek and a
    // tail. Method: the first records have keys of their own, all later ones
    // one key, so compaction empties the segments between; read across them.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..5000u64 {
        // The first records have keys of their own (kept), the rest one key.
        let key = if i < 1000 { format!("u{i}") } else { "k".to_string() };
        w.append_entry(Entry::new(&i.to_le_bytes()).key(key.as_bytes()).timestamp(1_000 + i)).unwrap();
    }
    for i in 5000..5010u64 {
        w.append(&i.to_le_bytes()).unwrap(); // no key: always kept
    }
    w.sync().unwrap();
    log.compact(&CompactOptions::new()).unwrap();
    let snap = log.snapshot();
    assert!(snap.segment_info().iter().filter(|s| s.sealed && s.records == 0).count() >= 2, "no emptied segment");
    let kept: Vec<u64> = snap.iter().map(|r| r.unwrap().seq()).collect();
    let mut back: Vec<u64> = snap.iter_rev().map(|r| r.unwrap().seq()).collect();
    back.reverse();
    assert_eq!(kept, back);
    assert!(kept.contains(&4999) && kept.ends_with(&(5000..5010).collect::<Vec<_>>()));
    let ranged: Vec<u64> = snap.range(10..5005).rev().map(|r| r.unwrap().seq()).collect();
    let want: Vec<u64> = kept.iter().rev().copied().filter(|s| (10..5005).contains(s)).collect();
    assert_eq!(ranged, want);
    assert!(snap.get(2000).unwrap().is_none());
    assert_eq!(snap.get(10).unwrap().unwrap().payload(), &10u64.to_le_bytes());
    assert_eq!(snap.seek_time(1_000 + 2000).next().unwrap().unwrap().seq(), kept.iter().copied().find(|&s| s >= 2000).unwrap());
    let mut tail = log.tail_from(0).unwrap();
    let mut followed = Vec::new();
    while let Some(r) = tail.next_timeout(Duration::from_millis(200)).unwrap() {
        followed.push(r.seq());
    }
    assert_eq!(followed, kept);
}

#[test]
fn a_compaction_that_failed_part_way_leaves_a_whole_chain_after_the_next_pass() {
    // Goal: a pass that fails after rewriting some segments (here a rename
    // that fails) leaves links stale; the next pass must re-link them, so
    // verify passes after it. Method: fail the second rename of a pass,
    // then run a pass without faults, close, verify.
    let dir = tempfile::tempdir().unwrap();
    let fs = std::sync::Arc::new(varvelog::fs::FaultFs::new());
    let opts = small().file_system(fs.clone());
    let log = Log::open(dir.path(), opts).unwrap();
    append_versions(&log);
    fs.fail(varvelog::fs::Op::Rename, 1, 1, std::io::ErrorKind::Other);
    assert!(log.compact(&CompactOptions::new()).is_err(), "the injected rename failure did not fail the pass");
    fs.clear();
    let report = log.compact(&CompactOptions::new()).unwrap();
    assert!(report.segments_rewritten > 0);
    assert!(!dir.path().join("COMPACTING").exists(), "a whole pass leaves no marker");
    check_newest_versions(&log);
    close_and_verify(log, dir.path());
    Log::open(dir.path(), small().recovery_mode(varvelog::RecoveryMode::Strict)).unwrap().close().unwrap();
}

#[test]
fn a_torn_relink_of_a_compacted_segment_is_resealed_at_open() {
    // Goal: compaction re-links a sealed segment by appending a trailer; a
    // crash can leave that append torn (the file longer, its end zeros). An
    // open must reseal such a compacted segment from its frames, not refuse
    // the log. Method: compact, close, append 96 zero bytes to a compacted
    // segment and leave the compaction marker, as a torn re-link would;
    // open, check every key's newest record, close, verify.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    append_versions(&log);
    assert!(log.compact(&CompactOptions::new()).unwrap().segments_rewritten > 1);
    log.close().unwrap();
    let mut segs: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "seg")).collect();
    segs.sort();
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes.extend_from_slice(&[0u8; 96]);
    std::fs::write(victim, bytes).unwrap();
    std::fs::write(dir.path().join("COMPACTING"), b"").unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    assert!(log.recovery_report().resealed.contains(victim), "{:?}", log.recovery_report());
    check_newest_versions(&log);
    close_and_verify(log, dir.path());
}
