//! Damaged directories: recovery, verify and the read-only view never lose
//! or hide data. Recovery may discard only bytes no completed sync can have
//! covered; `verify` reports a problem whenever the read-write open would
//! refuse or drop data; the read-only view names damage instead of showing
//! a shorter or gappy log as whole.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use varvelog::format::{decode_footer_full, encode_footer, IndexEntry, HEADER_BYTES};
use varvelog::{verify_dir, Error, Log, RecoveryMode, Retention};

mod common;
use common::{check_model, opts, segment_files};

/// A closed, synced model log of `n` records whose sealed segments are all
/// sealed (waits for the background sealer before closing).
fn closed_log(dir: &Path, n: u64) -> Vec<(u64, PathBuf)> {
    {
        let log = Log::open(dir, opts()).unwrap();
        let mut w = log.writer().unwrap();
        for seq in 0..n {
            common::append_model(&mut w, seq);
        }
        w.sync().unwrap();
        drop(w);
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.verify().sealed_segments + 1 < log.verify().segments {
            assert!(Instant::now() < deadline, "segments not sealed after 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let files = segment_files(dir);
    assert!(files.len() >= 3, "need sealed segments and an active one, got {}", files.len());
    files
}

/// Every file in `dir` and its bytes, to prove nothing was changed.
fn image(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    out.sort();
    out
}

fn zero_range(path: &Path, from: u64, len: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![0u8; len as usize], from).unwrap();
}

fn names_file(e: &Error, path: &Path) -> bool {
    e.to_string().contains(path.file_name().unwrap().to_str().unwrap())
}

#[test]
fn blanked_header_of_the_last_sealed_segment_is_refused_not_deleted_with_the_active_segment() {
    // Goal: tolerant open never unlinks a file holding valid frames: a blank
    // header in the middle of the log is damage (some later segment was
    // synced, and every sync covers earlier headers), reported as a typed
    // error naming the file and offset. Method: blank the header page of
    // the last sealed segment of a closed, synced log, open it in the
    // default mode: it must fail naming that file, and leave every byte of
    // the directory as it was.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 1500);
    let victim = &files[files.len() - 2].1;
    zero_range(victim, 0, HEADER_BYTES);
    let before = image(dir.path());
    let err = Log::open(dir.path(), opts()).expect_err("a blank header mid-log must be refused");
    assert!(err.is_corruption(), "{err}");
    let (path, offset) = err.corruption_location().unwrap();
    assert_eq!((path, offset), (victim.as_path(), 0), "{err}");
    let after: Vec<_> = image(dir.path()).into_iter().filter(|(p, _)| !p.ends_with("LOCK")).collect();
    let before: Vec<_> = before.into_iter().filter(|(p, _)| !p.ends_with("LOCK")).collect();
    assert!(before == after, "a refused open changed the directory");
}

#[test]
fn emptied_last_sealed_segment_is_refused_not_deleted_with_the_active_segment() {
    // Goal: same rule for a sealed segment cut to 0 bytes: the later active
    // segment's synced records are never unlinked. Method: truncate the last
    // sealed segment to 0, open in the default mode: a typed error naming
    // it; the active segment file is still there, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 1500);
    let victim = &files[files.len() - 2].1;
    let active = &files[files.len() - 1].1;
    OpenOptions::new().write(true).open(victim).unwrap().set_len(0).unwrap();
    let active_before = std::fs::read(active).unwrap();
    let err = Log::open(dir.path(), opts()).expect_err("an empty segment mid-log must be refused");
    assert!(err.is_corruption() && names_file(&err, victim), "{err}");
    assert_eq!(std::fs::read(active).unwrap(), active_before, "the active segment was changed");
    assert!(victim.exists());
}

#[test]
fn salvage_mode_moves_a_damaged_segment_aside_keeps_later_segments_and_reports_the_gap() {
    // Goal: the explicit salvage mode moves the damaged file aside (never
    // unlinks it), keeps the intact later segments readable and reports the
    // gap. Method: blank the last sealed segment's header, open with
    // `RecoveryMode::Salvage`: the file is under `damaged/`, the report
    // names it and the seq range lost, records after the gap read back,
    // a read in the gap is an error, and appending continues.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 1500);
    let (victim_base, victim) = files[files.len() - 2].clone();
    let (active_base, _) = files[files.len() - 1].clone();
    zero_range(&victim, 0, HEADER_BYTES);
    let victim_bytes = std::fs::read(&victim).unwrap();
    let log = Log::open(dir.path(), opts().recovery_mode(RecoveryMode::Salvage)).unwrap();
    let r = log.recovery_report();
    assert!(r.removed.is_empty(), "salvage removed files: {:?}", r.removed);
    assert_eq!(r.moved_aside.len(), 1, "{r:?}");
    let moved = &r.moved_aside[0];
    assert!(moved.starts_with(dir.path().join("damaged")), "{moved:?}");
    assert_eq!(std::fs::read(moved).unwrap(), victim_bytes, "moved file is not byte-identical");
    assert_eq!(r.gaps, vec![victim_base..active_base], "{r:?}");
    let snap = log.snapshot();
    for seq in [0, victim_base - 1, active_base, 1499] {
        check_model(&snap.get(seq).unwrap().unwrap(), seq);
    }
    let gap = snap.get(victim_base).expect_err("a read in the gap must be an error");
    assert!(matches!(gap, Error::Missing { .. }), "{gap}");
    // A range walked back from inside the gap meets the same error, never
    // the range's first record out of order.
    let back = snap.range(0..active_base).next_back().map(|r| r.map(|r| r.seq()));
    assert!(matches!(back, Some(Err(Error::Missing { .. }))), "{back:?}");
    let mut w = log.writer().unwrap();
    assert_eq!(w.append(b"after salvage").unwrap(), 1500);
}

/// A problem `verify_dir` reports naming `path`.
fn verify_blames(dir: &Path, path: &Path) {
    let report = verify_dir(dir).unwrap();
    assert!(!report.is_ok(), "verify says OK");
    assert!(report.problems.iter().any(|e| names_file(e, path)), "no problem names {}: {:?}", path.display(), report.problems);
}

#[test]
fn verify_reports_a_short_or_bad_magic_segment_file() {
    // Goal: a `.seg` shorter than a header, or with bad magic, is a problem,
    // never "ok: 0 segments". Method: a 7-byte file named like the first
    // segment in an empty directory; then a 2,542-byte garbage file.
    for len in [7usize, 2542] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.seg");
        std::fs::write(&path, vec![0x5a; len]).unwrap();
        verify_blames(dir.path(), &path);
        assert!(Log::open(dir.path(), opts()).is_err(), "read-write open accepted it");
    }
}

#[test]
fn verify_reports_an_active_segment_cut_inside_its_header_page() {
    // Goal: a last segment truncated to fewer bytes than its header page,
    // with the header's own fields intact, is a problem for verify, since
    // the read-write open refuses it (the fuzzer found verify saying OK).
    // Method: a closed log; cut its active segment to 375 bytes; verify must
    // name the file, and open must fail.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 1500);
    let active = &files[files.len() - 1].1;
    OpenOptions::new().write(true).open(active).unwrap().set_len(375).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert!(report.problems.iter().any(|e| names_file(e, active)), "verify says {:?}", report.problems);
    assert!(Log::open(dir.path(), opts()).is_err(), "read-write open accepted it");
}

#[test]
fn verify_reports_bytes_that_the_read_write_open_would_zero_in_the_last_segment() {
    // Goal: whatever tolerant recovery would cut from the last segment is a
    // problem for verify: non-zero bytes after the first zero-length frame,
    // a zeroed length field, a cut mid-frame, garbage past the end.
    // Method: damage the active segment of a closed log each way; verify
    // must name it.
    type Damage = fn(&Path, &[common::FrameAt]);
    let damages: [(&str, Damage); 4] = [
        ("byte after the end", |p, f| common::write_bytes_at(p, f[f.len() - 1].end() + 100, &[7])),
        ("zeroed length field", |p, f| zero_range(p, f[f.len() / 2].offset, 4)),
        ("cut mid-frame", |p, f| OpenOptions::new().write(true).open(p).unwrap().set_len(f[f.len() / 2].offset + 20).unwrap()),
        ("garbage at the end of the file", |p, _| {
            let len = std::fs::metadata(p).unwrap().len();
            common::write_bytes_at(p, len - 8, b"garbage!")
        }),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let files = closed_log(dir.path(), 1500);
        let active = &files[files.len() - 1].1;
        let frames = common::walk_frames(active);
        assert!(frames.len() > 4, "{what}: active segment too empty");
        damage(active, &frames);
        let report = verify_dir(dir.path()).unwrap();
        assert!(report.problems.iter().any(|e| names_file(e, active)), "{what}: verify says {:?}", report.problems);
    }
}

#[test]
fn verify_reports_a_missing_middle_segment() {
    // Goal: a seq gap between files (a removed middle segment) is a problem
    // naming where records are missing. Method: delete a middle segment of
    // a closed log.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 3000);
    std::fs::remove_file(&files[1].1).unwrap();
    verify_blames(dir.path(), &files[2].1);
}

#[test]
fn verify_blames_a_later_garbage_segment_not_the_healthy_active_one() {
    // Goal: no false problem: with a valid log plus a later garbage `.seg`,
    // verify names the garbage file and not the intact active segment.
    // Method: add a garbage file named past the active segment.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 1500);
    let active = &files[files.len() - 1].1;
    let garbage = dir.path().join("00000000000099999999.seg");
    std::fs::write(&garbage, vec![0x33; 9000]).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert!(report.problems.iter().any(|e| names_file(e, &garbage)), "{:?}", report.problems);
    assert!(!report.problems.iter().any(|e| names_file(e, active)), "blames the active segment: {:?}", report.problems);
}

/// Rewrites the footer index of a sealed segment: entry `i` points one
/// frame later (seq + 1, offset of the next frame), checksums recomputed.
fn forge_index(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let decoded = decode_footer_full(&bytes).unwrap();
    let (footer, index, keys, prev) = (*decoded.footer, decoded.index, decoded.keys, decoded.trailer.prev_digest);
    let mut index: Vec<IndexEntry> = index.to_vec();
    assert!(index.len() >= 3, "need an index to forge");
    let frames = common::walk_frames(path);
    let i = index.len() / 2;
    let k = frames.iter().position(|f| f.offset == index[i].offset.get()).unwrap();
    index[i].offset = frames[k + 1].offset.into();
    index[i].seq = frames[k].seq.into(); // claims frame k+1 holds frame k's seq
    let mut out = bytes[..footer.frames_end.get() as usize].to_vec();
    out.extend_from_slice(&encode_footer(&footer, &index, keys, &[], prev));
    assert_eq!(out.len(), bytes.len());
    std::fs::write(path, out).unwrap();
}

/// Rewrites the key section of a sealed segment: two entries swap their
/// frame offsets (hash order kept, so it still decodes), checksums
/// recomputed.
fn forge_keys(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let decoded = decode_footer_full(&bytes).unwrap();
    let (footer, index, prev) = (*decoded.footer, decoded.index, decoded.trailer.prev_digest);
    let mut keys = decoded.keys.to_vec();
    let n = footer.key_count.get() as usize;
    assert!(n >= 2, "need keys to forge");
    let at = keys.len() - n * 12;
    let (a, b) = (at + 8, at + 12 + 8); // offset fields of entries 0 and 1
    let tmp: Vec<u8> = keys[a..a + 4].to_vec();
    keys.copy_within(b..b + 4, a);
    keys[b..b + 4].copy_from_slice(&tmp);
    let mut out = bytes[..footer.frames_end.get() as usize].to_vec();
    out.extend_from_slice(&encode_footer(&footer, index, &keys, &[], prev));
    assert_eq!(out.len(), bytes.len());
    std::fs::write(path, out).unwrap();
}

#[test]
fn forged_key_section_with_recomputed_checksum_fails_verify_and_strict_open() {
    // Goal: the footer's key section is checked against the frames by
    // verify and by Strict open, like the index: a forgery that still
    // decodes (checksums recomputed) is caught. Method: two entries of a
    // sealed segment's key table swap offsets; verify names the segment,
    // Strict open fails naming it.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 3000);
    let victim = &files[1].1;
    forge_keys(victim);
    verify_blames(dir.path(), victim);
    let err = Log::open(dir.path(), opts().recovery_mode(RecoveryMode::Strict)).expect_err("strict open trusted a forged key table");
    assert!(names_file(&err, victim), "{err}");
}

#[test]
fn forged_footer_index_with_recomputed_checksum_fails_verify_and_strict_open() {
    // Goal: the footer's index and bounds are checked against the frames by
    // verify and by Strict open, so a forged index (footer checksum
    // recomputed) is caught before `get` returns a wrong record. Method:
    // forge one index entry of a sealed segment; verify names the segment,
    // Strict open fails naming it.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 3000);
    let victim = &files[1].1;
    forge_index(victim);
    verify_blames(dir.path(), victim);
    let err = Log::open(dir.path(), opts().recovery_mode(RecoveryMode::Strict)).expect_err("strict open trusted a forged index");
    assert!(names_file(&err, victim), "{err}");
}

#[test]
fn read_only_open_reports_a_short_or_garbage_segment_naming_it() {
    // Goal: the read-only view never silently ignores a short or garbage
    // `.seg`, and blames that file, not a healthy one. Method: a valid log
    // plus a later 2,542-byte garbage file; and a directory whose only
    // segment is such a file.
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 1500);
    let garbage = dir.path().join("00000000000099999999.seg");
    std::fs::write(&garbage, vec![0x33; 2542]).unwrap();
    match Log::open_read_only(dir.path()) {
        Err(e) => assert!(names_file(&e, &garbage), "{e}"),
        Ok(ro) => {
            let w = ro.warnings();
            assert!(!w.is_empty() && w.iter().all(|w| w.contains("99999999")), "{w:?}");
        }
    }
    let only = tempfile::tempdir().unwrap();
    let path = only.path().join("00000000000000000000.seg");
    std::fs::write(&path, vec![0x33; 2542]).unwrap();
    let e = Log::open_read_only(only.path()).expect_err("a garbage-only log opened");
    assert!(names_file(&e, &path), "{e}");
}

#[test]
fn read_only_view_of_a_log_missing_a_middle_segment_errors_in_the_gap() {
    // Goal: with a middle segment missing, reads in the gap are an error
    // naming what is missing (never `Ok(None)`), iteration and `seek_time`
    // do not skip past it, and records on both sides still read. Method:
    // delete a middle segment of a closed log and read through the view.
    let dir = tempfile::tempdir().unwrap();
    let files = closed_log(dir.path(), 3000);
    let (gap_from, _) = files[1];
    let (gap_to, _) = files[2];
    std::fs::remove_file(&files[1].1).unwrap();
    let ro = Log::open_read_only(dir.path()).unwrap();
    let snap = ro.snapshot();
    check_model(&snap.get(0).unwrap().unwrap(), 0);
    check_model(&snap.get(gap_to).unwrap().unwrap(), gap_to);
    let e = snap.get(gap_from).expect_err("a read in the gap must fail");
    assert!(matches!(&e, Error::Missing { from, to, .. } if *from == gap_from && *to == gap_to), "{e}");
    assert!(e.to_string().contains(&format!("{gap_from:020}.seg")), "{e}");
    let seen: Vec<_> = snap.iter_from(gap_from - 1).take(2).collect();
    assert!(seen[0].is_ok() && matches!(seen[1], Err(Error::Missing { .. })), "{seen:?}");
    // A time no record before the gap reaches: the first record at or
    // after it may be in the gap, so the seek must say records are missing.
    let t = (0..gap_from).map(common::ts_for).max().unwrap() + 1;
    let first = snap.seek_time(t).next();
    assert!(matches!(first, Some(Err(Error::Missing { .. }))), "{first:?}");
}

#[test]
fn read_only_follower_relists_when_retention_removes_a_file_it_just_listed() {
    // Goal: a file unlinked by retention between listing and opening is not
    // an error: the reader lists again. Method: a follower follows a log
    // whose writer applies retention after every few rotations; it must see
    // every record still retained in order and never an I/O NotFound error.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let ro = Log::open_read_only(dir.path()).unwrap();
    let mut w = log.writer().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = ro.refresh() {
                    if matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) {
                        errors.push(e.to_string());
                    }
                }
            }
            errors
        })
    };
    for seq in 0..30_000u64 {
        common::append_model(&mut w, seq);
        if seq % 500 == 0 {
            let _ = log.retain(&Retention::new().max_total_bytes(3 * common::SEGMENT_BYTES));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let errors = reader.join().unwrap();
    assert!(errors.is_empty(), "NotFound surfaced: {errors:?}");
}
