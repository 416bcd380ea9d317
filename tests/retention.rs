//! Retention: whole oldest sealed segments go, by seq, age or total size;
//! readers holding older snapshots finish their scans.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use varvelog::format::parse_segment_file_name;
use varvelog::{Entry, Error, Log, Options, Retention};

const SEGMENT_BYTES: u64 = 64 * 1024;

fn opts() -> Options {
    Options::new().segment_bytes(SEGMENT_BYTES)
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("r{seq}-").into_bytes();
    p.resize(100, b'x');
    p
}

/// Segment files on disk as `(base_seq, path, size)`, oldest first.
fn segment_files(dir: &Path) -> Vec<(u64, PathBuf, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let base = parse_segment_file_name(e.file_name().to_str()?)?;
            Some((base, e.path(), e.metadata().unwrap().len()))
        })
        .collect();
    v.sort();
    v
}

/// Appends records `from..to` (with `ts(seq)` as timestamp) and waits until
/// every segment but the active one is sealed.
fn fill(log: &Log, from: u64, to: u64, ts: impl Fn(u64) -> u64) {
    let mut w = log.writer().unwrap();
    for seq in from..to {
        assert_eq!(w.append_entry(Entry::new(&payload(seq)).timestamp(ts(seq))).unwrap(), seq);
    }
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = log.verify();
        assert!(v.is_ok(), "{:?}", v.problems);
        if v.sealed_segments + 1 == v.segments {
            return;
        }
        assert!(Instant::now() < deadline, "segments not sealed after 10 s");
        thread::sleep(Duration::from_millis(10));
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// Checks that `snap` (taken before retention) still yields every record.
fn scan_all(snap: &varvelog::Snapshot, n: u64) {
    let mut next = 0;
    for r in snap.iter() {
        let r = r.unwrap();
        assert_eq!((r.seq(), r.payload()), (next, &payload(next)[..]));
        next += 1;
    }
    assert_eq!(next, n);
}

#[test]
fn retention_by_seq_removes_segments_below_while_an_old_snapshot_completes_its_scan() {
    // Goal: min_seq removes exactly the sealed segments whose records are all
    // below it, unlinks their files, and a reader in the middle of a scan
    // of an older snapshot finishes it with correct data.
    // Method: 4000 records of 100 bytes over ~9 segments; start scanning an
    // old snapshot, run retention mid-scan, finish the scan; compare the
    // removed files with those whose successor starts at or below S.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    fill(&log, 0, 4000, |_| now_us());
    let before = segment_files(dir.path());
    assert!(before.len() >= 6, "{} segments", before.len());
    const S: u64 = 2000;
    let expected: Vec<PathBuf> = before.windows(2).take_while(|w| w[1].0 <= S).map(|w| w[0].1.clone()).collect();
    assert!(!expected.is_empty());

    let old = log.snapshot();
    let mut scan = old.iter();
    for seq in 0..100 {
        assert_eq!(scan.next().unwrap().unwrap().seq(), seq);
    }
    let report = log.retain(&Retention::new().min_seq(S)).unwrap();
    assert_eq!(report.removed, expected);
    assert_eq!(report.removed_records, before[expected.len()].0);
    assert_eq!(report.first_seq, before[expected.len()].0);
    for p in &expected {
        assert!(!p.exists(), "{} still on disk", p.display());
    }
    // The interrupted scan finishes over the unlinked files.
    let mut next = 100;
    for r in scan {
        let r = r.unwrap();
        assert_eq!((r.seq(), r.payload()), (next, &payload(next)[..]));
        next += 1;
    }
    assert_eq!(next, 4000);

    let snap = log.snapshot();
    assert_eq!(snap.first_seq(), Some(report.first_seq));
    assert!(matches!(snap.get(0), Err(Error::Truncated { requested: 0, .. })));
    assert_eq!(snap.get(S).unwrap().unwrap().payload(), &payload(S)[..]);
    // A second pass has nothing left to do; the log reopens as retained.
    assert_eq!(log.retain(&Retention::new().min_seq(S)).unwrap().removed_segments(), 0);
    drop((old, snap, log));
    let log = Log::open(dir.path(), opts()).unwrap();
    assert_eq!(log.snapshot().first_seq(), Some(report.first_seq));
    assert!(log.verify().is_ok());
}

#[test]
fn retention_by_age_removes_segments_whose_newest_record_is_too_old() {
    // Goal: max_age removes the leading segments whose newest timestamp is
    // older than now - age, and no segment holding a recent record.
    // Method: records 0..2000 stamped 2 h ago, 2000..4000 stamped now; keep
    // 1 h; the removed files are those whose successor starts at or below
    // 2000 (every record in them is old). An old snapshot still scans whole.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let now = now_us();
    let two_hours = 2 * 3600 * 1_000_000;
    fill(&log, 0, 4000, |seq| if seq < 2000 { now - two_hours + seq } else { now });
    let before = segment_files(dir.path());
    let expected: Vec<PathBuf> = before.windows(2).take_while(|w| w[1].0 <= 2000).map(|w| w[0].1.clone()).collect();
    let old = log.snapshot();
    let report = log.retain(&Retention::new().max_age(Duration::from_secs(3600))).unwrap();
    assert_eq!(report.removed, expected);
    assert!(report.first_seq <= 2000);
    scan_all(&old, 4000);
    // Nothing newer goes, however often it runs.
    assert_eq!(log.retain(&Retention::new().max_age(Duration::from_secs(3600))).unwrap().removed_segments(), 0);
}

#[test]
fn retention_by_size_keeps_the_newest_segments_within_the_limit() {
    // Goal: max_total_bytes removes the oldest segments until the files left
    // fit the limit; the active segment stays even when it alone exceeds it.
    // Method: compute from the file sizes on disk which prefix must go for a
    // limit of 3 segments, check it; then a limit of 0 leaves only the
    // active segment, and appending continues.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    fill(&log, 0, 4000, |_| now_us());
    let before = segment_files(dir.path());
    let limit = 3 * SEGMENT_BYTES;
    let mut total: u64 = before.iter().map(|f| f.2).sum();
    let mut expected = Vec::new();
    for f in &before[..before.len() - 1] {
        if total <= limit {
            break;
        }
        total -= f.2;
        expected.push(f.1.clone());
    }
    let old = log.snapshot();
    let report = log.retain(&Retention::new().max_total_bytes(limit)).unwrap();
    assert_eq!(report.removed, expected);
    let left: u64 = segment_files(dir.path()).iter().map(|f| f.2).sum();
    assert!(left <= limit, "{left} bytes left, limit {limit}");
    scan_all(&old, 4000);

    let report = log.retain(&Retention::new().max_total_bytes(0)).unwrap();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1, "only the active segment stays");
    assert_eq!(report.first_seq, files[0].0);
    assert_eq!(log.writer().unwrap().append(b"more").unwrap(), 4000);
    assert_eq!(log.snapshot().get(4000).unwrap().unwrap().payload(), b"more");
}

#[test]
fn retention_never_removes_a_segment_that_is_not_sealed() {
    // Goal: neither the active segment nor a segment rotated away from but
    // not sealed is ever removed, even by a policy that would remove all.
    // Method: (1) one active segment with records; (2) a file system whose
    // fdatasync fails, so the first rotated segment is never sealed (the
    // sealer poisons the writer); in both, the most aggressive policy
    // removes nothing and every record stays readable.
    let everything = Retention::new().min_seq(u64::MAX).max_total_bytes(0).max_age(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..100 {
        w.append(&payload(seq)).unwrap();
    }
    assert_eq!(log.retain(&everything).unwrap().removed_segments(), 0);
    scan_all(&log.snapshot(), 100);

    let dir = tempfile::tempdir().unwrap();
    let fs = std::sync::Arc::new(varvelog::fs::FaultFs::new());
    let log = Log::open(dir.path(), opts().file_system(fs.clone())).unwrap();
    fs.fail(varvelog::fs::Op::SyncFile, 0, u64::MAX, std::io::ErrorKind::Other);
    let mut w = log.writer().unwrap();
    let mut n = 0;
    while log.snapshot().segment_count() < 2 {
        w.append(&payload(n)).unwrap();
        n += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.is_poisoned() {
        assert!(Instant::now() < deadline, "sealing did not fail");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(log.retain(&everything).unwrap().removed_segments(), 0);
    assert_eq!(segment_files(dir.path()).len(), 2);
    scan_all(&log.snapshot(), n);
}

#[test]
fn background_retention_removes_segments_until_dropped() {
    // Goal: retain_every applies the policy on its own and stops when dropped.
    // Method: a 10 ms policy by seq; wait until the files below the cut are
    // gone; drop the task; later segments below a new cut stay.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    fill(&log, 0, 3000, |_| now_us());
    let task = log.retain_every(Retention::new().min_seq(1500), Duration::from_millis(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while task.removed_segments() == 0 {
        assert!(Instant::now() < deadline, "background retention removed nothing");
        thread::sleep(Duration::from_millis(5));
    }
    assert!(task.take_error().is_none());
    let first = segment_files(dir.path())[0].0;
    assert!(first > 0 && first <= 1500);
    drop(task);
    assert_eq!(log.snapshot().first_seq(), Some(first));
}
