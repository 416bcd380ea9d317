//! `Options::spare_segments`: how many preallocated segment files the
//! preparer keeps ready, including none (the writer prepares at rotation).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{append_model, check_model_log, opts, segment_files};
use varvelog::{Error, Log, SyncPolicy, DEFAULT_SPARE_SEGMENTS, SPARE_SEGMENTS_MAX};

/// Spare files (`*.prealloc`) in `dir`.
fn spares_on_disk(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".prealloc")).count()
}

/// Waits until `dir` holds `want` spares (or a deadline passes), then a
/// little longer, and returns the count: more than `want` would show.
fn settled_spares(dir: &Path, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while spares_on_disk(dir) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    spares_on_disk(dir)
}

#[test]
fn the_preparer_keeps_exactly_the_configured_spares_on_disk() {
    // Goal: spare_segments(n) leaves n spare files beside the active segment,
    // before and after rotations. Method: for 0, 1 and 2, open, count; fill
    // a few segments, count again.
    for n in [0, 1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), opts().spare_segments(n)).unwrap();
        assert_eq!(settled_spares(dir.path(), n), n, "{n} spares after open");
        let mut w = log.writer().unwrap();
        for seq in 0..2_000 {
            append_model(&mut w, seq);
        }
        assert!(segment_files(dir.path()).len() >= 3, "the appends rotated");
        assert_eq!(settled_spares(dir.path(), n), n, "{n} spares after rotations");
    }
}

#[test]
fn the_default_is_two_spares_and_one_for_zero_filled_segments() {
    // Goal: the documented defaults hold. Method: count the spares of a
    // throughput log and of a syncing (zero-filling) log.
    let dir = tempfile::tempdir().unwrap();
    let _log = Log::open(dir.path(), opts()).unwrap();
    assert_eq!(settled_spares(dir.path(), DEFAULT_SPARE_SEGMENTS), DEFAULT_SPARE_SEGMENTS);

    let dir = tempfile::tempdir().unwrap();
    let _log = Log::open(dir.path(), opts().sync_policy(SyncPolicy::Always)).unwrap();
    assert_eq!(settled_spares(dir.path(), 1), 1);
}

#[test]
fn a_log_without_spares_still_rotates_and_keeps_every_record() {
    // Goal: with no spares the writer prepares each segment itself and loses
    // nothing. Method: append across many rotations with spare_segments(0),
    // check every record, reopen and check again.
    let dir = tempfile::tempdir().unwrap();
    let n = 5_000;
    {
        let log = Log::open(dir.path(), opts().spare_segments(0)).unwrap();
        let mut w = log.writer().unwrap();
        for seq in 0..n {
            append_model(&mut w, seq);
        }
        w.sync().unwrap();
        assert!(log.stats().rotations >= 5, "rotations: {}", log.stats().rotations);
        check_model_log(&log, n);
        assert_eq!(spares_on_disk(dir.path()), 0);
    }
    let log = Log::open(dir.path(), opts().spare_segments(0)).unwrap();
    check_model_log(&log, n);
}

#[test]
fn too_many_spares_is_an_invalid_option() {
    // Goal: the limit is checked before anything is created. Method: one past
    // the maximum fails with InvalidOptions and leaves no directory; the
    // maximum itself opens.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let err = Log::open(&path, opts().spare_segments(SPARE_SEGMENTS_MAX + 1)).unwrap_err();
    assert!(matches!(err, Error::InvalidOptions(_)), "{err:?}");
    assert!(!path.exists());
    Log::open(&path, opts().spare_segments(SPARE_SEGMENTS_MAX)).unwrap();
}
