//! Verify: every sealed byte is covered (frame CRCs, blake3 digests), and the
//! digest chain catches a segment replaced by a valid one from another log.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use varvelog::format::HEADER_BYTES;

mod common;
use varvelog::{verify_dir, verify_dir_with_progress, Entry, Error, Log, Options, VerifyReport};

const SEGMENT_BYTES: u64 = 64 * 1024;
const RECORDS: u64 = 3000;

fn opts() -> Options {
    Options::new().segment_bytes(SEGMENT_BYTES)
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("v{seq}-").into_bytes();
    p.resize(90, b'0' + (seq % 10) as u8);
    p
}

/// Segment files, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    common::segment_files(dir).into_iter().map(|(_, p)| p).collect()
}

/// A log of `RECORDS` records with fixed timestamps (so two logs written
/// alike have the same record bytes), all segments but the active sealed.
fn write_log(dir: &Path) -> Log {
    let log = Log::open(dir, opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..RECORDS {
        w.append_entry(Entry::new(&payload(seq)).timestamp(1_000_000 + seq)).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = log.verify();
        assert!(v.is_ok(), "fresh log has problems: {:?}", v.problems);
        if v.sealed_segments + 1 == v.segments {
            assert!(v.segments >= 5, "{} segments", v.segments);
            return log;
        }
        assert!(Instant::now() < deadline, "segments not sealed after 10 s");
        thread::sleep(Duration::from_millis(10));
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], offset).unwrap();
}

/// The first problem's file and offset.
fn first_problem(report: &VerifyReport) -> (PathBuf, u64) {
    let e = report.first_problem().expect("a problem must be reported");
    let (p, o) = e.corruption_location().unwrap_or_else(|| panic!("not a corruption error: {e}"));
    (p.to_path_buf(), o)
}

#[test]
fn verify_passes_a_healthy_log_and_reports_progress() {
    // Goal: a healthy log verifies clean, counting every segment, record and
    // byte, with progress reported up to the total; the offline check agrees.
    // Method: verify a freshly written log (open and closed), collecting
    // the progress calls.
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let mut calls = Vec::new();
    let report = log.verify_with_progress(|done, total| calls.push((done, total)));
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, RECORDS);
    assert_eq!(report.segments, segment_files(dir.path()).len());
    assert_eq!(report.sealed_segments + 1, report.segments);
    let total = calls[0].1;
    assert_eq!(calls.first(), Some(&(0, total)));
    assert_eq!(calls.last(), Some(&(total, total)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(report.bytes, total);
    assert!(matches!(verify_dir(dir.path()), Err(Error::Locked { .. })), "offline verify must not run beside a writer");
    drop(log);
    let offline = verify_dir_with_progress(dir.path(), |_, _| {}).unwrap();
    assert!(offline.is_ok(), "{:?}", offline.problems);
    assert_eq!((offline.records, offline.segments), (RECORDS, report.segments));
}

#[test]
fn verify_detects_a_flipped_byte_in_a_sealed_segment() {
    // Goal: one changed byte anywhere in a sealed segment's frames or header
    // is found, naming the file and an offset inside it.
    // Method: flip one byte in a record's payload of the second segment while
    // the log is open; verify in process and, after closing, offline. Then
    // flip a byte of the header page of the third segment (outside any
    // frame): the digest or header check must catch it too.
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let files = segment_files(dir.path());
    let target = &files[1];
    let len = std::fs::metadata(target).unwrap().len();
    flip_byte(target, HEADER_BYTES + 32 + 5); // inside the first frame's payload
    let report = log.verify();
    let (path, offset) = first_problem(&report);
    assert_eq!(&path, target);
    assert!((HEADER_BYTES..len).contains(&offset), "offset {offset}");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    drop(log);
    let offline = verify_dir(dir.path()).unwrap();
    assert_eq!(first_problem(&offline).0, *target);

    flip_byte(&files[2], 100); // in the header page, not in a frame
    let offline = verify_dir(dir.path()).unwrap();
    assert_eq!(offline.problems.len(), 2, "{:?}", offline.problems);
    assert_eq!(offline.problems[1].corruption_location().unwrap().0, files[2].as_path());
}

#[test]
fn verify_detects_a_truncated_sealed_file() {
    // Goal: a sealed segment cut short is reported (without reading past its
    // new end, which would be SIGBUS under the mapping).
    // Method: while the log is open, cut the second segment to half its
    // length and verify in process; close and verify offline.
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let files = segment_files(dir.path());
    let target = &files[1];
    let len = std::fs::metadata(target).unwrap().len();
    OpenOptions::new().write(true).open(target).unwrap().set_len(len / 2).unwrap();
    let report = log.verify();
    assert_eq!(first_problem(&report), (target.clone(), len / 2));
    drop(log);
    let offline = verify_dir(dir.path()).unwrap();
    let (path, _) = first_problem(&offline);
    assert_eq!(&path, target);
    assert!(offline.first_problem().unwrap().to_string().contains("trailer"), "{}", offline.first_problem().unwrap());
}

#[test]
fn verify_detects_a_segment_swapped_in_from_another_log() {
    // Goal: a segment replaced by a valid segment of another log (same name,
    // same seqs, same records, sound checksums and digest) is caught by the
    // digest chain.
    // Method: write two logs the same way (they differ only in segment
    // creation times), copy log B's third segment over log A's, then verify
    // A offline, and after reopening it (opening trusts footers) in process.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    drop(write_log(a.path()));
    drop(write_log(b.path()));
    let files_a = segment_files(a.path());
    let files_b = segment_files(b.path());
    assert_eq!(files_a[2].file_name(), files_b[2].file_name());
    std::fs::copy(&files_b[2], &files_a[2]).unwrap();

    let check = |report: &VerifyReport| {
        let e = report.first_problem().expect("swap must be detected");
        assert_eq!(e.corruption_location().unwrap().0, files_a[2].as_path(), "{e}");
        assert!(e.to_string().contains("chain"), "{e}");
        // The segment after it no longer chains to it either.
        assert!(report.problems.iter().any(|p| p.corruption_location().is_some_and(|l| l.0 == files_a[3].as_path())));
    };
    check(&verify_dir(a.path()).unwrap());
    let log = Log::open(a.path(), opts()).unwrap();
    assert_eq!(log.snapshot().len(), RECORDS, "the swapped log opens and reads");
    check(&log.verify());
}

#[test]
fn verify_checks_live_segment_frames() {
    // Goal: damage in the active (live) segment's published frames is found.
    // Method: flip a payload byte of the first frame of the active segment
    // through the file (the mapping is shared, so the log sees it).
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let files = segment_files(dir.path());
    let live = files.last().unwrap();
    flip_byte(live, HEADER_BYTES + 32 + 1);
    let report = log.verify();
    assert_eq!(first_problem(&report), (live.clone(), HEADER_BYTES));
}
