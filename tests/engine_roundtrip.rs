//! Issue 2 acceptance: what goes in comes back out, field for field, through
//! every read path, across many segment rotations and a reopen.

mod common;

use common::{append_model, check_model, key_for, opts, payload_for, segment_files, ts_for, SEGMENT_BYTES};
use varvelog::{Entry, Log, Options, SyncPolicy};

/// Checks every read path of `log` against model records `0..n`.
fn check_all_read_paths(log: &Log, n: u64) {
    let snap = log.snapshot();
    assert_eq!((snap.first_seq(), snap.last_seq(), snap.next_seq(), snap.len()), (Some(0), Some(n - 1), n, n));

    // get: every record, and nothing past the end.
    for seq in 0..n {
        check_model(&snap.get(seq).unwrap().unwrap(), seq);
    }
    assert!(snap.get(n).unwrap().is_none());
    assert!(snap.get(u64::MAX).unwrap().is_none());

    // Full scans both ways.
    let mut seq = 0;
    for r in snap.iter() {
        check_model(&r.unwrap(), seq);
        seq += 1;
    }
    assert_eq!(seq, n);
    let mut seq = n;
    for r in snap.iter_rev() {
        seq -= 1;
        check_model(&r.unwrap(), seq);
    }
    assert_eq!(seq, 0);

    // Starting points: every segment boundary (and its neighbours) and a
    // sample in between. Forward to the end; backwards a few records.
    let mut starts: Vec<u64> = segment_files(log.dir()).iter().flat_map(|&(b, _)| [b.saturating_sub(1), b, b + 1]).collect();
    starts.extend((0..n).step_by(97));
    starts.extend([0, n - 1]);
    starts.retain(|&s| s < n);
    for &start in &starts {
        // Contents of the first records from each start (the full scan above
        // covered every record), seqs all the way to the end.
        let mut seq = start;
        for r in snap.iter_from(start) {
            let r = r.unwrap();
            if seq < start + 64 {
                check_model(&r, seq);
            }
            assert_eq!(r.seq(), seq);
            seq += 1;
        }
        assert_eq!(seq, n, "iter_from({start}) stopped early");
        let back: Vec<u64> = snap.iter_rev_from(start).take(40).map(|r| r.unwrap().seq()).collect();
        let want: Vec<u64> = (start.saturating_sub(39)..=start).rev().collect();
        assert_eq!(back, want, "iter_rev_from({start})");
        for (r, s) in snap.iter_rev_from(start).take(3).zip((0..=start).rev()) {
            check_model(&r.unwrap(), s);
        }
    }
    assert!(snap.iter_from(n).next().is_none());
    // Past the end, a reverse scan starts at the last record.
    assert_eq!(snap.iter_rev_from(n + 1000).next().unwrap().unwrap().seq(), n - 1);

    // seek_time: the first record in seq order whose timestamp is >= t,
    // checked against a linear scan of the model. Timestamps jump backwards
    // and forwards, so a seek that assumed monotonic time would fail.
    let ts: Vec<u64> = (0..n).map(ts_for).collect();
    let (lo, hi) = (*ts.iter().min().unwrap(), *ts.iter().max().unwrap());
    let mut queries = vec![0, lo, lo + 1, hi, hi + 1, u64::MAX];
    queries.extend((0..300u64).map(|i| lo + common::mix(i) % (hi - lo + 1)));
    queries.extend((0..n).step_by(211).map(|s| ts[s as usize]));
    for t in queries {
        let want = ts.iter().position(|&x| x >= t).map(|p| p as u64);
        let got: Vec<u64> = snap.seek_time(t).take(3).map(|r| r.unwrap().seq()).collect();
        match want {
            Some(w) => assert_eq!(got, (w..n.min(w + 3)).collect::<Vec<_>>(), "seek_time({t})"),
            None => assert!(got.is_empty(), "seek_time({t}) past every timestamp found {got:?}"),
        }
    }
}

#[test]
fn round_trip_across_rotations_and_reopen_preserves_every_field() {
    // Goal: payloads, keys and timestamps survive many rotations (read while
    // segments are live, being sealed and sealed) and a reopen, through get,
    // iter, iter_rev, iter_from, iter_rev_from and seek_time.
    // Method: 64 KiB segments, 6000 model records (payload, key and a
    // non-monotonic timestamp derived from the seq); check every read path
    // against the model before closing, after reopening, and after appending
    // more records to the reopened log.
    let dir = tempfile::tempdir().unwrap();
    let n = 6000;
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        let mut w = log.writer().unwrap();
        for seq in 0..n {
            append_model(&mut w, seq);
        }
        assert_eq!(w.next_seq(), n);
        check_all_read_paths(&log, n);
        w.sync().unwrap();
    }
    let segments = segment_files(dir.path()).len();
    assert!(segments >= 10, "expected many rotations with {SEGMENT_BYTES}-byte segments, got {segments} segment files");

    let log = Log::open(dir.path(), opts()).unwrap();
    let report = log.recovery_report();
    assert_eq!(report.records, n);
    assert_eq!(report.segments, segments);
    assert_eq!(report.sealed_segments, segments - 1, "every rotated-away segment is sealed on close: {report:?}");
    assert!(report.resealed.is_empty() && report.bytes_discarded == 0 && report.truncated_at.is_none(), "{report:?}");
    assert_eq!(log.snapshot().segment_count(), segments);
    check_all_read_paths(&log, n);

    let mut w = log.writer().unwrap();
    for seq in n..n + 700 {
        append_model(&mut w, seq);
    }
    check_all_read_paths(&log, n + 700);
}

#[test]
fn batches_singles_and_tombstones_round_trip() {
    // Goal: batches get consecutive seqs and read back like single appends;
    // an empty batch writes nothing; the tombstone flag and an empty key
    // (= no key) survive a reopen.
    // Method: interleave single appends and batches of 1..=9 model records
    // over several rotations, mark every 10th record a tombstone, reopen, and
    // compare every record with the model.
    let dir = tempfile::tempdir().unwrap();
    let n;
    let mut tombs = std::collections::HashSet::new();
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        let mut w = log.writer().unwrap();
        let mut seq = 0u64;
        let mut round = 0u64;
        while seq < 3000 {
            round += 1;
            if round.is_multiple_of(2) {
                append_model(&mut w, seq);
                seq += 1;
                continue;
            }
            let size = 1 + round % 9;
            let payloads: Vec<Vec<u8>> = (seq..seq + size).map(payload_for).collect();
            let keys: Vec<Vec<u8>> = (seq..seq + size).map(key_for).collect();
            let entries: Vec<Entry<'_>> = (0..size as usize)
                .map(|i| {
                    let s = seq + i as u64;
                    let e = Entry::new(&payloads[i]).key(&keys[i]).timestamp(ts_for(s));
                    if s.is_multiple_of(10) {
                        tombs.insert(s);
                        e.tombstone()
                    } else {
                        e
                    }
                })
                .collect();
            assert_eq!(w.append_batch(&entries).unwrap(), seq..seq + size);
            seq += size;
        }
        let empty: [&[u8]; 0] = [];
        assert_eq!(w.append_batch(empty).unwrap(), seq..seq);
        assert_eq!(w.next_seq(), seq);
        n = seq;
        w.sync().unwrap();
    }
    let log = Log::open(dir.path(), opts()).unwrap();
    let snap = log.snapshot();
    assert!(snap.segment_count() >= 5);
    assert_eq!(snap.len(), n);
    assert!(tombs.len() > 50);
    let mut seen = 0;
    for (seq, r) in (0..).zip(snap.iter()) {
        let r = r.unwrap();
        check_model(&r, seq);
        assert_eq!(r.is_tombstone(), tombs.contains(&seq), "tombstone flag of seq {seq}");
        seen += 1;
    }
    assert_eq!(seen, n);
}

#[test]
fn durable_seq_advances_only_after_sync_and_next_seq_survives_reopen() {
    // Goal: durable_seq never runs ahead of a sync (appends are visible
    // before they are durable), and a reopened log continues with the right
    // next seq, treating what it recovered as durable.
    // Method: append, observe durable_seq, sync, observe; repeat across
    // rotations; reopen and check next_seq/durable_seq; then check that
    // SyncPolicy::Always makes each append durable before it returns.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        assert_eq!((log.next_seq(), log.durable_seq()), (0, None));
        let mut w = log.writer().unwrap();
        for i in 0..10u64 {
            assert_eq!(w.append(format!("r{i}").as_bytes()).unwrap(), i);
        }
        assert_eq!(log.snapshot().len(), 10, "appends are visible before any sync");
        assert_eq!(log.durable_seq(), None, "no sync yet");
        w.sync().unwrap();
        assert_eq!(log.durable_seq(), Some(9));
        // Enough to rotate several times: still only durable up to the last sync.
        for i in 10..2000u64 {
            assert_eq!(w.append(&[i as u8; 100]).unwrap(), i);
        }
        assert!(log.snapshot().segment_count() > 2);
        assert_eq!(log.durable_seq(), Some(9), "rotation must not advance durable_seq");
        w.sync().unwrap();
        assert_eq!(log.durable_seq(), Some(1999));
        assert_eq!((log.next_seq(), w.next_seq()), (2000, 2000));
        w.append(b"unsynced").unwrap();
        assert_eq!(log.durable_seq(), Some(1999));
    }
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        assert_eq!(log.next_seq(), 2001);
        assert_eq!(log.durable_seq(), Some(2000), "recovered records are durable after open");
        let mut w = log.writer().unwrap();
        assert_eq!(w.next_seq(), 2001);
        assert_eq!(w.append(b"next").unwrap(), 2001);
    }
    let log = Log::open(dir.path(), opts().sync_policy(SyncPolicy::Always)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 2002..2100u64 {
        assert_eq!(w.append(b"always").unwrap(), i);
        assert_eq!(log.durable_seq(), Some(i), "SyncPolicy::Always returns only after the sync");
    }
    let r = w.append_batch([&b"a"[..], b"b", b"c"]).unwrap();
    assert_eq!(log.durable_seq(), Some(r.end - 1));
}

#[test]
fn empty_log_reads_nothing_and_reopens_empty() {
    // Goal: a log with no records answers every read with "nothing" (never
    // an error) and reopens at seq 0.
    // Method: open, read through every path, close, reopen, read again.
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT_BYTES)).unwrap();
        let snap = log.snapshot();
        assert_eq!((snap.first_seq(), snap.last_seq(), snap.next_seq(), snap.len()), (None, None, 0, 0));
        assert!(snap.is_empty());
        assert!(snap.get(0).unwrap().is_none());
        assert!(snap.iter().next().is_none());
        assert!(snap.iter_from(5).next().is_none());
        assert!(snap.iter_rev().next().is_none());
        assert!(snap.seek_time(0).next().is_none());
        assert_eq!(log.recovery_report().records, 0);
    }
}
