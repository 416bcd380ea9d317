//! The public API's habits: `Log::close` reports what dropping hides, seq
//! ranges walk from both ends, iterators say how many records are left,
//! and timestamps convert to and from `SystemTime`.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{append_model, check_model_log, opts, payload_for};
use varvelog::fs::{FaultFs, Op};
use varvelog::{Entry, Error, Log, Retention};

/// A log of `n` model records in 64 KiB segments (many rotations).
fn model_log(dir: &std::path::Path, n: u64) -> Log {
    let log = Log::open(dir, opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..n {
        append_model(&mut w, seq);
    }
    log
}

/// [`model_log`] with every rotated-away segment sealed (retention removes
/// only sealed segments): closing a clone waits for the seals.
fn sealed_model_log(dir: &std::path::Path, n: u64) -> Log {
    let log = model_log(dir, n);
    log.clone().close().unwrap();
    log
}

#[test]
fn close_makes_everything_durable_and_sealed_even_without_a_sync_policy() {
    // Goal: close() syncs whatever the policy and returns only after every
    // rotated-away segment is sealed. Method: SyncPolicy::Never (the
    // default), many rotations, no sync; keep a clone so the log stays
    // open, close the other handle, then look through the clone at once.
    let dir = tempfile::tempdir().unwrap();
    let n = 3_000;
    let log = model_log(dir.path(), n);
    let keep = log.clone();
    assert_eq!(keep.durable_seq(), None);
    log.close().unwrap();
    assert_eq!(keep.durable_seq(), Some(n - 1));
    let report = keep.verify();
    assert!(report.is_ok(), "{:?}", report.first_problem());
    assert!(report.segments > 3, "segments: {}", report.segments);
    assert_eq!(report.sealed_segments + 1, report.segments, "every segment but the active one is sealed");
    check_model_log(&keep, n);
}

#[test]
fn close_returns_the_error_of_the_final_sync() {
    // Goal: the error a drop would swallow reaches the caller of close().
    // Method: every msync fails after open; append, drop the writer, close.
    let fs = Arc::new(FaultFs::new());
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts().file_system(fs.clone())).unwrap();
    let mut w = log.writer().unwrap();
    w.append(b"never durable").unwrap();
    drop(w);
    fs.fail(Op::SyncMap, 0, u64::MAX, std::io::ErrorKind::Other);
    let err = log.close().unwrap_err();
    assert!(matches!(err, Error::Io { .. } | Error::Poisoned { .. }), "{err:?}");
    assert!(fs.injected() > 0);
}

#[test]
fn close_returns_the_error_of_a_queued_seal() {
    // Goal: a seal that cannot finish is reported by close(), and the data
    // stays readable and whole after a reopen. Method: every footer write
    // fails with ENOSPC; append across rotations; close; reopen without
    // faults and check every record.
    let fs = Arc::new(FaultFs::new());
    fs.fail(Op::WriteAt, 0, u64::MAX, std::io::ErrorKind::StorageFull);
    let dir = tempfile::tempdir().unwrap();
    let n = 2_000;
    {
        let log = Log::open(dir.path(), opts().file_system(fs.clone())).unwrap();
        let mut w = log.writer().unwrap();
        for seq in 0..n {
            append_model(&mut w, seq);
        }
        drop(w);
        let err = log.close().unwrap_err();
        assert!(matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull), "{err:?}");
    }
    fs.clear();
    let log = Log::open(dir.path(), opts()).unwrap();
    check_model_log(&log, n);
    log.close().unwrap();
}

#[test]
fn iterators_report_exactly_how_many_records_are_left() {
    // Goal: size_hint is exact for forward, reverse and range iterators at
    // every step. Method: compare the hint with the count actually yielded
    // from each position, across segment borders and after retention.
    let dir = tempfile::tempdir().unwrap();
    let n = 2_000u64;
    let log = sealed_model_log(dir.path(), n);
    let snap = log.snapshot();
    let exact = |left: u64| (left as usize, Some(left as usize));

    let mut it = snap.iter();
    for done in 0..n {
        assert_eq!(it.size_hint(), exact(n - done));
        it.next().unwrap().unwrap();
    }
    assert_eq!(it.size_hint(), exact(0));
    assert!(it.next().is_none());

    assert_eq!(snap.iter_from(1_500).size_hint(), exact(500));
    assert_eq!(snap.iter_from(n + 10).size_hint(), exact(0));
    assert_eq!(snap.iter_rev().size_hint(), exact(n));
    assert_eq!(snap.iter_rev_from(99).size_hint(), exact(100));
    let mut rev = snap.iter_rev_from(99);
    rev.nth(9).unwrap().unwrap();
    assert_eq!(rev.size_hint(), exact(90));
    assert_eq!(rev.count(), 90);

    for (lo, hi) in [(0, n), (10, 20), (1_990, 5_000), (7, 7), (3_000, 4_000)] {
        let expected = hi.min(n).saturating_sub(lo);
        assert_eq!(snap.range(lo..hi).size_hint(), exact(expected), "{lo}..{hi}");
        assert_eq!(snap.range(lo..hi).count() as u64, expected, "{lo}..{hi}");
    }
    assert_eq!(snap.range(..).size_hint(), exact(n));

    // After retention the first retained record is the start.
    log.retain(&Retention::new().min_seq(1_000)).unwrap();
    let snap = log.snapshot();
    let first = snap.first_seq().unwrap();
    assert!(first > 0);
    assert_eq!(snap.iter().size_hint(), exact(n - first));
    assert_eq!(snap.iter_rev().size_hint(), exact(n - first));
    assert_eq!(snap.iter_rev().count() as u64, n - first);
}

#[test]
fn seq_ranges_walk_from_both_ends_without_repeats() {
    // Goal: RangeIter is double-ended: `.rev()` gives the range newest
    // first, and mixing next and next_back meets in the middle, each seq
    // once. Method: ranges inside one segment and across many, checked
    // against the expected seqs.
    let dir = tempfile::tempdir().unwrap();
    let n = 2_000u64;
    let log = model_log(dir.path(), n);
    let snap = log.snapshot();
    let seqs =
        |it: &mut dyn Iterator<Item = varvelog::Result<varvelog::Record<'_>>>| -> Vec<u64> { it.map(|r| r.unwrap().seq()).collect() };

    for (lo, hi) in [(0, n), (10, 20), (150, 1_850), (1_990, 9_999)] {
        let want: Vec<u64> = (lo..hi.min(n)).rev().collect();
        assert_eq!(seqs(&mut snap.range(lo..hi).rev()), want, "{lo}..{hi} reversed");
    }
    assert_eq!(seqs(&mut snap.range(5..=9).rev()), vec![9, 8, 7, 6, 5]);

    let mut it = snap.range(100..1_100);
    let (mut front, mut back) = (Vec::new(), Vec::new());
    while let Some(r) = it.next() {
        front.push(r.unwrap().seq());
        match it.next_back() {
            Some(r) => back.push(r.unwrap().seq()),
            None => break,
        }
        assert_eq!(it.size_hint().0 as u64, 1_000 - front.len() as u64 - back.len() as u64);
    }
    assert!(it.next().is_none() && it.next_back().is_none());
    back.reverse();
    front.extend(back);
    assert_eq!(front, (100..1_100).collect::<Vec<_>>());
    for r in snap.range(300..310).rev() {
        let r = r.unwrap();
        assert_eq!(r.payload(), payload_for(r.seq()).as_slice());
    }
}

#[test]
fn walking_back_into_a_retained_range_start_is_an_error_not_a_silent_end() {
    // Goal: a range whose start retention removed reports Truncated from
    // either end. Method: retain from a seq in a later segment, then walk
    // the range 0..end backwards to its end.
    let dir = tempfile::tempdir().unwrap();
    let log = sealed_model_log(dir.path(), 2_000);
    log.retain(&Retention::new().min_seq(1_000)).unwrap();
    let snap = log.snapshot();
    let first = snap.first_seq().unwrap();
    let items: Vec<_> = snap.range(0..first + 5).rev().collect();
    assert_eq!(items.len(), 6);
    assert!(items[..5].iter().all(|r| r.is_ok()));
    assert!(matches!(items[5], Err(Error::Truncated { .. })), "{:?}", items[5]);
}

#[test]
fn timestamps_convert_to_and_from_system_time() {
    // Goal: Entry::time stores a SystemTime to the microsecond and
    // Record::time reads it back; times before the epoch are the epoch.
    // Method: append with fixed times and compare both representations.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456) + Duration::from_nanos(789);
    let a = w.append_entry(Entry::new(b"a").time(t)).unwrap();
    let b = w.append_entry(Entry::new(b"b").time(UNIX_EPOCH - Duration::from_secs(1))).unwrap();
    let c = w.append(b"now").unwrap();
    let snap = log.snapshot();
    let rec = snap.get(a).unwrap().unwrap();
    assert_eq!(rec.timestamp(), 1_700_000_000_123_456);
    assert_eq!(rec.time(), UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
    assert_eq!(snap.get(b).unwrap().unwrap().time(), UNIX_EPOCH);
    let now = snap.get(c).unwrap().unwrap().time();
    let skew = SystemTime::now().duration_since(now).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60), "a record appended now is {skew:?} away from now");
}

#[test]
fn a_followers_batch_reports_exactly_how_many_records_it_holds() {
    // Goal: Batch::size_hint is exact, as Iter's is. Method: a read-only
    // follower polls a log of known length, from the start and part way.
    let dir = tempfile::tempdir().unwrap();
    let log = model_log(dir.path(), 500);
    let reader = varvelog::ReadOnlyLog::open(dir.path()).unwrap();
    let mut follow = reader.tail_from(0).unwrap();
    let mut batch = follow.poll().unwrap();
    assert_eq!(batch.size_hint(), (500, Some(500)));
    batch.by_ref().take(120).for_each(|r| assert!(r.is_ok()));
    assert_eq!(batch.size_hint(), (380, Some(380)));
    assert_eq!(batch.count(), 380);
    drop(log);
}
