//! Issue 2 acceptance: limits are checked before anything is written, and
//! I/O errors (injected through `Options::file_system(FaultFs)`) either
//! poison the writer (readers keep working, reopening recovers) or, for a
//! full disk while preparing a segment, are plain errors the caller can
//! retry.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{append_model, check_model_log, opts, payload_for, SEGMENT_BYTES};
use varvelog::fs::{FaultFs, Op};
use varvelog::{Entry, Error, Log, Options, Writer};

/// Asserts that `r` is `Error::Poisoned` whose cause is an I/O error of `kind`.
#[track_caller]
fn assert_poisoned<T: std::fmt::Debug>(r: varvelog::Result<T>, kind: ErrorKind) {
    match r {
        Err(Error::Poisoned { cause }) => match &*cause {
            Error::Io { source, .. } => assert_eq!(source.kind(), kind, "{cause}"),
            other => panic!("poisoned by {other:?}, expected an I/O error"),
        },
        other => panic!("expected Error::Poisoned, got {other:?}"),
    }
}

/// Every mutation a writer offers, each of which must refuse while poisoned.
#[track_caller]
fn assert_every_mutation_poisoned(w: &mut Writer, kind: ErrorKind) {
    assert_poisoned(w.append(b"x"), kind);
    assert_poisoned(w.append_entry(Entry::new(b"y").key(b"k")), kind);
    assert_poisoned(w.append_batch([&b"a"[..], b"b"]), kind);
    assert_poisoned(w.sync(), kind);
}

#[test]
fn oversized_payload_or_key_is_refused_and_nothing_is_written() {
    // Goal: a payload or key over its limit is a typed error naming both
    // sizes, checked before anything is written: next_seq does not move, no
    // partial batch appears, the writer stays usable, and a reopen shows
    // exactly the accepted records. Limits at exactly the maximum pass.
    // Method: configured limits (1000-byte payload, 100-byte key) and the
    // defaults for 64 KiB segments; try each oversized shape (single append,
    // keyed entry, one bad entry in the middle of a batch, a batch larger
    // than a segment) between good appends; reopen and compare.
    let dir = tempfile::tempdir().unwrap();
    let limited = || opts().max_payload_bytes(1000).max_key_bytes(100);
    {
        let log = Log::open(dir.path(), limited()).unwrap();
        let mut w = log.writer().unwrap();
        assert_eq!(w.append(&[1; 1000]).unwrap(), 0);
        assert_eq!(w.append_entry(Entry::new(b"p").key(&[2; 100])).unwrap(), 1);
        let big = [3u8; 1001];
        let long_key = [4u8; 101];
        assert!(matches!(w.append(&big), Err(Error::PayloadTooLarge { len: 1001, max: 1000 })));
        assert!(matches!(w.append_entry(Entry::new(b"p").key(&long_key)), Err(Error::KeyTooLarge { len: 101, max: 100 })));
        let batch = [Entry::new(b"ok-1"), Entry::new(b"ok-2"), Entry::new(&big), Entry::new(b"ok-3")];
        assert!(matches!(w.append_batch(batch), Err(Error::PayloadTooLarge { len: 1001, .. })));
        let batch = [Entry::new(b"ok-1"), Entry::new(b"ok-2").key(&long_key)];
        assert!(matches!(w.append_batch(batch), Err(Error::KeyTooLarge { len: 101, .. })));
        // 80 records of 1000 bytes cannot be published at once in a 64 KiB segment.
        let payloads = vec![vec![5u8; 1000]; 80];
        assert!(matches!(w.append_batch(&payloads), Err(Error::BatchTooLarge { .. })));
        assert_eq!(w.next_seq(), 2, "a refused append must not take a seq");
        assert_eq!(log.snapshot().len(), 2, "a refused append must not be visible");
        assert!(!log.is_poisoned(), "a refused append is the caller's error, not an I/O failure");
        assert_eq!(w.append(b"after").unwrap(), 2);
        w.sync().unwrap();
    }
    {
        let log = Log::open(dir.path(), limited()).unwrap();
        let snap = log.snapshot();
        assert_eq!(snap.len(), 3);
        assert_eq!(snap.get(0).unwrap().unwrap().payload(), &[1; 1000][..]);
        assert_eq!(snap.get(1).unwrap().unwrap().key(), Some(&[2; 100][..]));
        assert_eq!(snap.get(2).unwrap().unwrap().payload(), b"after");
        assert_eq!(log.recovery_report().bytes_discarded, 0, "nothing half-written reached the file");
    }
    // Default limits for 64 KiB segments: key at most a quarter of the frame
    // space, payload whatever still fits with the largest key.
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    let frame_space = (SEGMENT_BYTES - varvelog::format::HEADER_BYTES) as usize;
    let key_max = frame_space / 4;
    let payload_max = frame_space - varvelog::format::FRAME_HEADER_BYTES as usize - key_max;
    let key = vec![6u8; key_max + 1];
    assert!(matches!(w.append_entry(Entry::new(b"p").key(&key)), Err(Error::KeyTooLarge { max, .. }) if max == key_max));
    let payload = vec![7u8; payload_max + 1];
    assert!(matches!(w.append(&payload), Err(Error::PayloadTooLarge { max, .. }) if max == payload_max));
    // The largest record allowed fits in a segment.
    let seq = w.append_entry(Entry::new(&payload[..payload_max]).key(&key[..key_max])).unwrap();
    assert_eq!(seq, 3);
    let snap = log.snapshot();
    let r = snap.get(3).unwrap().unwrap();
    assert_eq!((r.payload().len(), r.key().map(<[u8]>::len)), (payload_max, Some(key_max)));
}

#[test]
fn impossible_options_are_refused() {
    // Goal: options that cannot work are a typed error at open, before any
    // file is created.
    // Method: open with each bad option and check the error and that the
    // directory stays empty or absent.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let bad = [
        Options::new().segment_bytes(64 * 1024 + 1),
        Options::new().segment_bytes(4096),
        Options::new().segment_bytes(SEGMENT_BYTES).max_key_bytes(70_000),
        Options::new().segment_bytes(SEGMENT_BYTES).max_payload_bytes(SEGMENT_BYTES as usize),
    ];
    for o in bad {
        assert!(matches!(Log::open(&path, o.clone()), Err(Error::InvalidOptions(_))), "{o:?} accepted");
        assert!(!path.exists());
    }
}

/// Opens a log in `dir` over `fs`, writes model records `0..n` and syncs.
fn open_with_records(dir: &std::path::Path, fs: &Arc<FaultFs>, n: u64) -> (Log, Writer) {
    let log = Log::open(dir, opts().file_system(fs.clone())).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..n {
        append_model(&mut w, seq);
    }
    w.sync().unwrap();
    (log, w)
}

#[test]
fn failed_sync_poisons_the_writer_readers_keep_reading_and_reopen_recovers() {
    // Goal: an msync failure is returned once as Error::Io; from then on
    // every mutation returns Error::Poisoned carrying that cause (the sync
    // is never retried, even when the disk would now succeed); durable_seq
    // stays where the last good sync left it; readers keep reading every
    // record; reopening (with a healthy file system) recovers every record
    // that was appended, and appending continues.
    // Method: FaultFs failing the next SyncMap once; 1500 records synced,
    // 300 more unsynced, then sync.
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let (log, mut w) = open_with_records(dir.path(), &fs, 1500);
    assert_eq!(log.durable_seq(), Some(1499));
    for seq in 1500..1800 {
        append_model(&mut w, seq);
    }
    fs.fail(Op::SyncMap, 0, 1, ErrorKind::Other);
    match w.sync() {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), ErrorKind::Other),
        other => panic!("expected the injected I/O error, got {other:?}"),
    }
    assert_eq!(fs.injected(), 1);
    assert!(log.is_poisoned());
    assert_every_mutation_poisoned(&mut w, ErrorKind::Other);
    assert_eq!(fs.injected(), 1, "a poisoned writer must not touch the disk again");
    assert_eq!(log.durable_seq(), Some(1499), "a failed sync must not advance durable_seq");
    assert_eq!(w.next_seq(), 1800);
    check_model_log(&log, 1800);
    // Handing the writer back and taking it again does not clear the poison.
    drop(w);
    let mut w = log.writer().unwrap();
    assert_every_mutation_poisoned(&mut w, ErrorKind::Other);
    drop(w);
    drop(log);

    let log = Log::open(dir.path(), opts()).unwrap();
    check_model_log(&log, 1800);
    let mut w = log.writer().unwrap();
    append_model(&mut w, 1800);
    w.sync().unwrap();
    assert_eq!(log.durable_seq(), Some(1800));
}

#[test]
fn failed_seal_in_the_background_poisons_the_writer_and_reopen_recovers() {
    // Goal: an I/O error while sealing a rotated-away segment (off the
    // writer's path) poisons the writer too; readers still read everything;
    // reopening brings every segment back sealed and loses nothing.
    // Method: FaultFs failing every fdatasync (sealing's last step) after
    // open; append until the background sealer has failed (bounded wait),
    // then check the writer, the readers, and a reopen.
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let (log, mut w) = open_with_records(dir.path(), &fs, 10);
    fs.fail(Op::SyncFile, 0, u64::MAX, ErrorKind::Other);
    let mut seq = 10;
    let deadline = Instant::now() + Duration::from_secs(20);
    // The sealer may poison the writer at any moment, also between our
    // check and an append: then that append must be refused whole.
    while !log.is_poisoned() {
        assert!(Instant::now() < deadline, "sealing never failed: {} faults injected", fs.injected());
        if seq >= 3000 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let (payload, key) = (payload_for(seq), common::key_for(seq));
        match w.append_entry(Entry::new(&payload).key(&key).timestamp(common::ts_for(seq))) {
            Ok(s) => assert_eq!(s, seq),
            Err(Error::Poisoned { .. }) => break,
            Err(e) => panic!("unexpected error {e:?}"),
        }
        seq += 1;
    }
    assert_eq!(w.next_seq(), seq);
    assert!(fs.injected() >= 1);
    assert!(log.snapshot().segment_count() >= 2);
    assert_every_mutation_poisoned(&mut w, ErrorKind::Other);
    check_model_log(&log, seq);
    drop(w);
    drop(log);

    // The failed fdatasync came after the footer was written, so the footer
    // may be trusted or the segment resealed; either way every rotated-away
    // segment must come back sealed, and every record must be there.
    let log = Log::open(dir.path(), opts()).unwrap();
    let r = log.recovery_report();
    assert!(r.segments >= 2 && r.sealed_segments + r.resealed.len() + 1 == r.segments, "{r:?}");
    check_model_log(&log, seq);
}

#[test]
fn failed_rename_during_rotation_poisons_and_reopen_recovers() {
    // Goal: a failure while activating the next segment (its rename) is an
    // Error::Io that takes no seq and poisons the writer; readers keep
    // reading; reopening recovers every record and removes the leftover
    // preallocated file.
    // Method: FaultFs failing the next Rename; append model records until an
    // append fails (it must, within a few segments).
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let (log, mut w) = open_with_records(dir.path(), &fs, 10);
    fs.fail(Op::Rename, 0, 1, ErrorKind::PermissionDenied);
    let mut seq = 10;
    let err = loop {
        assert!(seq < 2000, "no rotation within 2000 records");
        let payload = payload_for(seq);
        let key = common::key_for(seq);
        match w.append_entry(Entry::new(&payload).key(&key).timestamp(common::ts_for(seq))) {
            Ok(s) => assert_eq!(s, seq),
            Err(e) => break e,
        }
        seq += 1;
    };
    match &err {
        Error::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::PermissionDenied),
        other => panic!("expected the injected I/O error, got {other:?}"),
    }
    assert_eq!(w.next_seq(), seq, "the failed append took no seq");
    assert!(log.is_poisoned());
    assert_every_mutation_poisoned(&mut w, ErrorKind::PermissionDenied);
    check_model_log(&log, seq);
    drop(w);
    drop(log);

    let log = Log::open(dir.path(), opts()).unwrap();
    check_model_log(&log, seq);
    let spares = &log.recovery_report().spares;
    assert!(spares.iter().any(|p| p.extension().is_some_and(|e| e == "prealloc")), "{spares:?}");
    let mut w = log.writer().unwrap();
    append_model(&mut w, seq);
}

#[test]
fn disk_full_while_preparing_a_segment_is_an_error_the_caller_can_retry() {
    // Goal: running out of disk while preallocating the next segment is an
    // Error::Io of kind StorageFull returned by the append that needed the
    // new segment. It does not poison: nothing was written (no seq taken,
    // nothing visible), retrying while the disk is still full fails the same
    // way, and the first retry after space is freed succeeds and continues
    // through further rotations. Reopening shows exactly the accepted records.
    // Method: FaultFs failing every fallocate with StorageFull from just
    // after open; append model records until an append fails (the spare
    // segments prepared before the fault run out within a few rotations);
    // retry twice while full, clear the fault, retry once and keep going.
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let (log, mut w) = open_with_records(dir.path(), &fs, 10);
    fs.fail(Op::Allocate, 0, u64::MAX, ErrorKind::StorageFull);
    let try_append = |w: &mut Writer, seq: u64| {
        let payload = payload_for(seq);
        let key = common::key_for(seq);
        w.append_entry(Entry::new(&payload).key(&key).timestamp(common::ts_for(seq)))
    };
    let assert_disk_full = |r: varvelog::Result<u64>| match r {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), ErrorKind::StorageFull, "{source}"),
        other => panic!("expected StorageFull, got {other:?}"),
    };
    let mut seq = 10;
    let first_err = loop {
        assert!(seq < 5000, "no preallocation failure within 5000 records");
        match try_append(&mut w, seq) {
            Ok(s) => assert_eq!(s, seq),
            Err(e) => break e,
        }
        seq += 1;
    };
    assert_disk_full(Err(first_err));
    assert!(!log.is_poisoned(), "disk full while preparing a segment must not poison");
    assert_eq!((w.next_seq(), log.next_seq()), (seq, seq), "the failed append took no seq");
    for _ in 0..2 {
        assert_disk_full(try_append(&mut w, seq));
        assert!(!log.is_poisoned());
    }
    check_model_log(&log, seq);

    fs.clear();
    assert_eq!(try_append(&mut w, seq).unwrap(), seq, "the first retry after space was freed must succeed");
    let segments = log.snapshot().segment_count();
    let end = seq + 1500;
    for s in seq + 1..end {
        append_model(&mut w, s);
    }
    assert!(log.snapshot().segment_count() >= segments + 3, "rotation keeps working after the fault");
    w.sync().unwrap();
    check_model_log(&log, end);
    drop(w);
    drop(log);
    let log = Log::open(dir.path(), opts()).unwrap();
    check_model_log(&log, end);
}

#[test]
fn zero_filled_segments_are_synced_before_use_and_hold_the_same_log() {
    // Goal: Options::zero_fill writes and syncs each new segment before the
    // writer gets it (on by default under a syncing policy, off under
    // Never), and a zero-filled log reads, rotates and reopens like any other.
    // Method: a file system failing every fdatasync makes opening a new log
    // fail exactly when the first segment is zero-filled (explicitly, or by
    // default under SyncPolicy::Always) and succeed when it is not; then a
    // zero-filled log is written through several rotations and reopened.
    let open_failing_syncs = |opts: Options| {
        let dir = tempfile::tempdir().unwrap();
        let fs = Arc::new(FaultFs::new());
        fs.fail(Op::SyncFile, 0, u64::MAX, ErrorKind::PermissionDenied);
        let result = Log::open(dir.path(), opts.file_system(fs.clone()));
        (result.map(|_| ()), fs.injected())
    };
    match open_failing_syncs(opts().zero_fill(true)) {
        (Err(Error::Io { op, source, .. }), 1) => assert_eq!((op, source.kind()), ("fdatasync", ErrorKind::PermissionDenied)),
        other => panic!("zero-filling the first segment must sync it: {other:?}"),
    }
    assert!(matches!(open_failing_syncs(opts().sync_policy(varvelog::SyncPolicy::Always)), (Err(Error::Io { .. }), 1)));
    assert!(matches!(open_failing_syncs(opts()), (Ok(()), 0)), "no zero-fill (and no sync) by default under Never");
    assert!(matches!(open_failing_syncs(opts().sync_policy(varvelog::SyncPolicy::Always).zero_fill(false)), (Ok(()), 0)));

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts().zero_fill(true)).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..3000 {
        append_model(&mut w, seq);
        if seq % 500 == 0 {
            w.sync().unwrap();
        }
    }
    assert!(log.stats().rotations >= 3);
    w.sync().unwrap();
    check_model_log(&log, 3000);
    drop(w);
    drop(log);
    check_model_log(&Log::open(dir.path(), opts().zero_fill(true)).unwrap(), 3000);
}
