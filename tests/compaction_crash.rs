//! Crash test of compaction: a child appends keyed records (some of them
//! tombstones), syncs, acknowledges, and compacts over and over, and is
//! killed with SIGKILL at random moments, most of them inside a compaction.
//! After every kill the log must open, hold the newest acknowledged value of
//! every key (or its tombstone's effect), read back consistently, leave no
//! compaction debris, and pass `verify_dir` once closed.
//!
//! `VARVELOG_COMPACT_KILLS` (default 25) and `VARVELOG_COMPACT_SECS`
//! (default 40) bound the run; `VARVELOG_COMPACT_SEED` replays one.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Rng;
use varvelog::{verify_dir, CompactOptions, Entry, Log, Options, SyncPolicy};

const CHILD_ENV: &str = "VARVELOG_COMPACT_CHILD";
const TEST_NAME: &str = "sigkill_during_compaction_loses_no_acknowledged_newest_value";
/// Distinct keys: few enough that most records are replaced.
const KEYS: u64 = 97;

/// The key of `seq`.
fn key(seq: u64) -> Vec<u8> {
    format!("key-{}", seq % KEYS).into_bytes()
}

/// Every 11th record is a tombstone for its key.
fn is_tombstone(seq: u64) -> bool {
    seq % 11 == 5
}

/// The payload of `seq`: derived from it, 40 to 300 bytes.
fn payload(seq: u64) -> Vec<u8> {
    if is_tombstone(seq) {
        return Vec::new();
    }
    let len = 40 + (common::mix(seq) % 260) as usize;
    (0..len).map(|i| (common::mix(seq ^ i as u64) & 0xff) as u8).collect()
}

fn options() -> Options {
    Options::new().segment_bytes(64 * 1024).sync_policy(SyncPolicy::Never)
}

/// The child: appends, syncs, acknowledges, compacts (tombstones expire at
/// once), for at most 30 s.
fn child(dir: &Path, seed: u64) {
    let mut rng = Rng::new(seed | 1);
    let log = Log::open(dir, options()).expect("child open");
    let mut w = log.writer().expect("child writer");
    let out = std::io::stdout();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        for _ in 0..200 + rng.below(800) {
            let seq = w.next_seq();
            let (p, k) = (payload(seq), key(seq));
            let mut e = Entry::new(&p).key(&k);
            if is_tombstone(seq) {
                e = e.tombstone();
            }
            assert_eq!(w.append_entry(e).expect("append"), seq);
        }
        w.sync().expect("sync");
        let mut o = out.lock();
        writeln!(o, "ACK {}", w.next_seq()).unwrap();
        o.flush().unwrap();
        drop(o);
        log.compact(&CompactOptions::new().tombstone_retention(Duration::ZERO)).expect("compact");
    }
}

/// Checks the reopened log against everything below `acked` being durable.
fn check(dir: &Path, log: &Log, acked: u64, context: &str) {
    for name in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()) {
        assert!(!name.ends_with(".compact") && name != "COMPACTING", "{context}: {name} left after open");
    }
    let snap = log.snapshot();
    // Every record read back is the one written at its seq.
    let mut last = None;
    for r in snap.iter() {
        let r = r.unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(last.is_none_or(|l| r.seq() > l), "{context}: seqs out of order");
        assert_eq!((r.key().unwrap(), r.payload(), r.is_tombstone()), (&key(r.seq())[..], &payload(r.seq())[..], is_tombstone(r.seq())));
        last = Some(r.seq());
    }
    let next = snap.next_seq();
    assert!(next >= acked, "{context}: {acked} acknowledged, the log ends at {next}");
    for k in 0..KEYS {
        let key = format!("key-{k}").into_bytes();
        // The newest acknowledged record of the key.
        let newest_acked = (0..acked).rev().find(|s| s % KEYS == k);
        let got = snap.get_key(&key).unwrap_or_else(|e| panic!("{context}: {e}"));
        let newest = snap.iter_key(&key).next().map(|r| r.unwrap_or_else(|e| panic!("{context}: {e}")));
        match (newest_acked, newest) {
            (None, _) => {}
            (Some(s), Some(n)) => {
                assert!(n.seq() >= s, "{context}: key {k}: newest record {} is older than the acknowledged {s}", n.seq());
                assert_eq!(got.map(|r| r.seq()), (!n.is_tombstone()).then_some(n.seq()), "{context}: key {k}");
            }
            // Nothing left: only an expired tombstone may have gone.
            (Some(s), None) => assert!(is_tombstone(s), "{context}: key {k}: its newest acknowledged record {s} is gone"),
        }
    }
}

#[test]
fn sigkill_during_compaction_loses_no_acknowledged_newest_value() {
    // Goal: a crash at any point of a compaction leaves every segment old or
    // new, loses no acknowledged newest value, and the chain is whole again
    // after open. Method: a child compacts in a loop between synced bursts of
    // keyed records; the parent kills it after a random delay (most of the
    // child's time is compaction), reopens, checks every key against what
    // was acknowledged, appends one record, closes, and runs verify_dir.
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let seed = std::env::var("VARVELOG_COMPACT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        child(Path::new(&dir), seed);
        return;
    }
    let kills: u32 = std::env::var("VARVELOG_COMPACT_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    let budget = Duration::from_secs(std::env::var("VARVELOG_COMPACT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(40));
    let seed = std::env::var("VARVELOG_COMPACT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7));
    eprintln!("compaction crash test seed {seed} (replay with VARVELOG_COMPACT_SEED={seed})");
    let mut rng = Rng::new(seed | 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let started = Instant::now();
    let (mut acked, mut done, mut relinked, mut removed_debris) = (0u64, 0u32, 0usize, 0usize);
    while done < kills && started.elapsed() < budget {
        let envs = [(CHILD_ENV, dir.display().to_string()), ("VARVELOG_COMPACT_SEED", rng.next().to_string())];
        let killed = common::run_and_kill(TEST_NAME, &envs, false, Duration::from_micros(rng.below(300_000)));
        assert!(!killed.exited_by_itself, "child exited by itself before the kill");
        for n in killed.acks {
            assert!(n >= acked, "kill {done} (seed {seed}): acknowledged {n} after {acked}");
            acked = n;
        }
        done += 1;
        if !dir.exists() {
            continue;
        }
        let context = format!("kill {done} (seed {seed})");
        let log = Log::open(&dir, options()).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
        relinked += log.recovery_report().relinked.len();
        removed_debris += log.recovery_report().removed.iter().filter(|p| p.to_string_lossy().contains("compact")).count();
        check(&dir, &log, acked, &context);
        let mut w = log.writer().unwrap();
        let seq = w.next_seq();
        // The record the child would have written at this seq: a
        // tombstone where `is_tombstone` says so (the check expects one).
        let (p, k) = (payload(seq), key(seq));
        let mut e = Entry::new(&p).key(&k);
        if is_tombstone(seq) {
            e = e.tombstone();
        }
        w.append_entry(e).unwrap();
        w.sync().unwrap();
        acked = seq + 1;
        drop(w);
        log.close().unwrap();
        let report = verify_dir(&dir).unwrap();
        assert!(report.problems.is_empty(), "{context}: {:?}", report.problems);
    }
    eprintln!(
        "{done} kills in {:?}, {acked} records acknowledged; opens re-linked {relinked} segments and removed {removed_debris} unfinished compactions",
        started.elapsed()
    );
    assert!(done >= kills.min(10), "only {done} kills fit in the time budget");
}
