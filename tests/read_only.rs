//! `Log::open_read_only`: reading a log without the lock and without
//! modifying it, following a writer across rotations, and clear errors.

use std::path::Path;
use std::time::{Duration, Instant};

use varvelog::{Error, Log, Options, ReadOnlyLog};

mod common;
use common::fingerprint;

const SEGMENT: u64 = 64 * 1024;

fn opts() -> Options {
    Options::new().segment_bytes(SEGMENT)
}

fn payload(i: u64) -> Vec<u8> {
    format!("record-{i:06}-{}", "x".repeat((i % 50) as usize)).into_bytes()
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "seg")).collect();
    v.sort();
    v
}

#[test]
fn follower_receives_every_record_in_order_across_rotations() {
    // Goal: a read-only follower (no lock) sees each record exactly once, in
    // order, while the writer appends in bursts across many rotations.
    // Method: alternate writing bursts (singles and batches) and draining the
    // follower; compare seqs and payloads with what was written.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    let reader = Log::open_read_only(dir.path()).unwrap();
    let mut follow = reader.tail_from(0).unwrap();
    let mut next = 0u64;
    let mut written = 0u64;
    for round in 0..80u64 {
        for _ in 0..60 {
            w.append(&payload(written)).unwrap();
            written += 1;
        }
        let batch: Vec<Vec<u8>> = (written..written + 5).map(payload).collect();
        w.append_batch(batch.iter()).unwrap();
        written += 5;
        let deadline = Instant::now() + Duration::from_secs(10);
        while next < written {
            assert!(Instant::now() < deadline, "round {round}: follower stuck at {next} of {written}");
            for r in follow.wait(Duration::from_millis(100)).unwrap() {
                let r = r.unwrap();
                assert_eq!(r.seq(), next);
                assert_eq!(r.payload(), payload(next).as_slice());
                next += 1;
            }
        }
    }
    assert_eq!(follow.position(), written);
    assert!(log.snapshot().segment_count() >= 5, "the test must cross several rotations");
    // Nothing more arrives: a short wait returns an empty batch.
    assert_eq!(follow.wait(Duration::from_millis(5)).unwrap().count(), 0);
    assert_eq!(follow.lag(), 0);
}

#[test]
fn read_only_open_changes_no_byte_and_takes_no_lock() {
    // Goal: inspection never mutates a log, even one needing recovery, and
    // does not keep a writer out. Method: leave a log with a torn tail (as a
    // crash would), fingerprint every file, open read-only, read and refresh
    // everything, fingerprint again; then open a writer beside the reader.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        let mut w = log.writer().unwrap();
        for i in 0..3000 {
            w.append(&payload(i)).unwrap();
        }
        w.sync().unwrap();
    }
    let last = segment_files(dir.path()).pop().unwrap();
    let live_end = {
        let r = ReadOnlyLog::open(dir.path()).unwrap();
        let snap = r.snapshot();
        assert_eq!(snap.len(), 3000);
        std::fs::metadata(&last).unwrap().len()
    };
    // Garbage past the published end of the active segment: a torn write.
    let bytes = std::fs::read(&last).unwrap();
    let written_end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, &[0xEE; 40], (written_end as u64).next_multiple_of(8) + 64).unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len(), live_end);

    let before = fingerprint(dir.path());
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let snap = reader.snapshot();
    assert_eq!(snap.iter().count(), 3000);
    assert_eq!(snap.iter_rev().count(), 3000);
    reader.refresh().unwrap();
    let mut follow = reader.tail_from(2990).unwrap();
    assert_eq!(follow.poll().unwrap().count(), 10);
    assert_eq!(fingerprint(dir.path()), before, "a read-only open changed the directory");

    // The writer can open beside the reader (no lock held) and recovers.
    let log = Log::open(dir.path(), opts()).unwrap();
    assert_eq!(log.snapshot().len(), 3000);
    assert!(log.recovery_report().bytes_discarded > 0);
}

#[test]
fn old_snapshot_reads_a_segment_sealed_and_cut_under_it() {
    // Goal: the SIGBUS guard. A reader holding a live segment's mapping keeps
    // reading it after the writer rotated, sealed and truncated the file.
    // Method: snapshot while segment 0 is live, rotate, wait until the file
    // shrank (sealed), then read every record of the old snapshot.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..100 {
        w.append(&payload(i)).unwrap();
    }
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let old = reader.snapshot();
    assert_eq!(old.len(), 100);
    let first = segment_files(dir.path())[0].clone();
    let preallocated = std::fs::metadata(&first).unwrap().len();
    let mut i = 100;
    while log.snapshot().segment_count() < 3 {
        w.append(&payload(i)).unwrap();
        i += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&first).unwrap().len() == preallocated {
        assert!(Instant::now() < deadline, "segment never sealed");
        std::thread::sleep(Duration::from_millis(5));
    }
    for (n, r) in old.iter().enumerate() {
        assert_eq!(r.unwrap().payload(), payload(n as u64).as_slice());
    }
    // A refreshed view holds everything, the first segment now sealed.
    reader.refresh().unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.snapshot().len(), i);
}

#[test]
fn read_only_reader_that_fell_behind_retention_moves_on_to_the_retained_segments() {
    // Goal: a reader whose newest segment, seen live, was since sealed and
    // removed by retention carries on from the segments on disk, instead of
    // failing to reopen that file by name on every refresh. Method: open a
    // reader while the log has one live segment; the writer then rotates
    // through several segments and retention removes all but the last
    // three; refresh must succeed and show exactly the retained records.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..10 {
        w.append(&payload(i)).unwrap();
    }
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    assert_eq!(reader.snapshot().len(), 10);
    for i in 10..6000 {
        w.append(&payload(i)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        log.retain(&varvelog::Retention::new().max_total_bytes(3 * SEGMENT)).unwrap();
        if log.snapshot().first_seq() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "retention removed nothing in 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = log.snapshot().first_seq().unwrap();
    assert!(!dir.path().join(format!("{:020}.seg", 0)).exists(), "the reader's segment is gone");
    // The first refresh may only pick up the records the old mapping
    // still shows; refresh until nothing changes (each one lists the
    // directory once it finds nothing new in the live segment).
    let mut refreshes = 0;
    while reader.refresh().unwrap() {
        refreshes += 1;
        assert!(refreshes < 100, "refresh keeps finding changes");
    }
    let snap = reader.snapshot();
    assert_eq!(snap.first_seq(), Some(first));
    assert_eq!(snap.last_seq(), Some(5999));
    for r in snap.iter() {
        let r = r.unwrap();
        assert_eq!(r.payload(), payload(r.seq()));
    }
    match reader.tail_from(1) {
        Err(Error::Truncated { requested: 1, first_available }) => assert_eq!(first_available, first),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn follower_behind_removed_segments_gets_truncated_error() {
    // Goal: a follower whose position was removed (retention unlinks the
    // oldest sealed files) gets Error::Truncated, never wrong data.
    // Method: write several segments, close, unlink the first file as
    // retention would, follow from 0.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        let mut w = log.writer().unwrap();
        for i in 0..4000 {
            w.append(&payload(i)).unwrap();
        }
    }
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let mut follow = reader.tail_from(0).unwrap();
    assert_eq!(follow.poll().unwrap().next().unwrap().unwrap().seq(), 0);
    let first = segment_files(dir.path())[0].clone();
    std::fs::remove_file(&first).unwrap();
    reader.refresh().unwrap();
    let first_available = reader.snapshot().first_seq().unwrap();
    assert!(first_available > 1);
    match reader.tail_from(1) {
        Err(Error::Truncated { requested: 1, first_available: f }) => assert_eq!(f, first_available),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn read_only_open_rejects_bad_input_with_typed_errors() {
    // Goal: missing directory, a directory that is not a log, a foreign
    // file named like a segment and a segment of another format version
    // each give their own typed error (no panic).
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(ReadOnlyLog::open(&missing), Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(ReadOnlyLog::open(&empty), Err(Error::NotALog { .. })));

    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("00000000000000000000.seg"), vec![b'z'; 8192]).unwrap();
    assert!(matches!(ReadOnlyLog::open(&foreign), Err(Error::NotALog { .. })));

    let versioned = dir.path().join("v2");
    {
        let log = Log::open(&versioned, opts()).unwrap();
        log.writer().unwrap().append(b"x").unwrap();
    }
    let seg = segment_files(&versioned).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8] = 99; // the version field
    std::fs::write(&seg, bytes).unwrap();
    assert!(matches!(ReadOnlyLog::open(&versioned), Err(Error::UnsupportedVersion { found: 99, .. })));
}

#[test]
fn a_tail_reports_a_missing_segment_instead_of_waiting_or_misreading() {
    // Goal: a gap in the middle of the log (a segment file removed by hand)
    // is `Error::Missing` for a tail crossing it, as it is for a snapshot
    // iterator. Method: a closed log of several segments; remove the third;
    // tail a read-only view from the start, and from inside the gap.
    let dir = tempfile::tempdir().unwrap();
    common::write_model_log(dir.path(), 3000);
    let files = common::segment_files(dir.path());
    assert!(files.len() >= 4);
    let (gap_from, gap_to) = (files[2].0, files[3].0);
    std::fs::remove_file(&files[2].1).unwrap();
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let mut tail = reader.tail_from(0).unwrap();
    let err = loop {
        match tail.next_timeout(Duration::from_secs(5)) {
            Ok(Some(r)) => assert!(r.seq() < gap_from),
            Ok(None) => panic!("the tail waited at the gap"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Missing { from, to, .. } if (from, to) == (gap_from, gap_to)), "{err}");
    assert!(matches!(reader.tail_from(gap_from + 1), Err(Error::Missing { .. })));
}
