//! Issue 2 acceptance: opening a log after a crash or after damage. Torn
//! tails and torn batches are cut back to the valid prefix and reported;
//! damaged or missing footers are resealed; damage inside sealed frames,
//! unknown versions and foreign files are typed errors naming the file.
//!
//! Every test builds a log, closes it (dropping the `Log` joins the
//! background sealer, so every rotated-away segment is sealed on disk), then
//! damages files with plain file I/O and reopens.

mod common;

use std::path::{Path, PathBuf};

use common::{
    append_model, check_model_log, file_len, flip_byte, footer_offset, opts, segment_files, truncate_file, walk_frames, write_bytes_at,
    write_model_log, FrameAt,
};
use varvelog::format::{FORMAT_VERSION, FRAME_HEADER_BYTES, TRAILER_BYTES};
use varvelog::{Entry, Error, Log, RecoveryMode};

/// The last (active) segment file of the log in `dir`.
fn active_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().unwrap().1
}

/// File offset one past the last non-zero byte of `path`.
fn last_nonzero_end(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p as u64 + 1)
}

/// Whether `path` holds only zeros in `from..to`.
fn zeros_between(path: &Path, from: u64, to: u64) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes[from as usize..to as usize].iter().all(|&b| b == 0)
}

/// After a cut: the log holds model records `0..n`, appending continues at
/// `n`, and a second reopen finds nothing left to repair.
fn check_cut_then_continue(dir: &Path, log: Log, n: u64) {
    check_model_log(&log, n);
    let mut w = log.writer().unwrap();
    for seq in n..n + 400 {
        append_model(&mut w, seq);
    }
    drop(w);
    drop(log);
    let log = Log::open(dir, opts()).unwrap();
    let r = log.recovery_report();
    assert!(r.bytes_discarded == 0 && r.truncated_at.is_none() && r.resealed.is_empty(), "second reopen repaired again: {r:?}");
    check_model_log(&log, n + 400);
}

/// Writes model records `0..singles` one by one, then records
/// `singles..singles+batch` as one batch; returns the batch's frames.
fn write_log_ending_in_batch(dir: &Path, singles: u64, batch: u64) -> Vec<FrameAt> {
    {
        let log = Log::open(dir, opts()).unwrap();
        let mut w = log.writer().unwrap();
        for seq in 0..singles {
            append_model(&mut w, seq);
        }
        let payloads: Vec<Vec<u8>> = (singles..singles + batch).map(common::payload_for).collect();
        let keys: Vec<Vec<u8>> = (singles..singles + batch).map(common::key_for).collect();
        let entries: Vec<Entry<'_>> = (singles..singles + batch)
            .zip(payloads.iter().zip(&keys))
            .map(|(s, (p, k))| Entry::new(p).key(k).timestamp(common::ts_for(s)))
            .collect();
        assert_eq!(w.append_batch(&entries).unwrap(), singles..singles + batch);
        w.sync().unwrap();
    }
    let frames = walk_frames(&active_segment(dir));
    let batch_frames: Vec<FrameAt> = frames.into_iter().filter(|f| f.seq >= singles).collect();
    assert_eq!(batch_frames.len() as u64, batch, "the batch is at the end of the active segment");
    batch_frames
}

#[test]
fn batch_torn_on_disk_is_dropped_whole_on_reopen() {
    // Goal: recovery keeps a batch entirely or not at all. A batch whose
    // last frame is missing or damaged (a crash in the middle of writing it
    // out) is dropped whole, the cut is reported where the batch began, and
    // appending continues with the batch's first seq.
    // Method: write 600 single records (several rotations) then a batch of
    // 5, close; damage the batch in the active segment file in three ways
    // (last frame zeroed, last frame's checksummed bytes garbled, a middle
    // frame garbled); reopen and check the records, report and file bytes.
    type Damage = fn(&Path, &[FrameAt]);
    let damages: [(&str, Damage); 3] = [
        ("last frame zeroed", |p, b| write_bytes_at(p, b[4].offset, &vec![0u8; (b[4].end() - b[4].offset) as usize])),
        ("last frame garbled", |p, b| flip_byte(p, b[4].offset + 16, 0x40)), // its timestamp
        ("middle frame garbled", |p, b| flip_byte(p, b[2].offset + 16, 0x01)),
    ];
    let singles = 600;
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let batch = write_log_ending_in_batch(dir.path(), singles, 5);
        assert!(batch[..4].iter().all(|f| f.flags & 1 == 1) && batch[4].flags & 1 == 0, "batch-continues flags as documented");
        let path = active_segment(dir.path());
        damage(&path, &batch);
        let dirty_end = last_nonzero_end(&path);

        let log = Log::open(dir.path(), opts()).unwrap();
        let r = log.recovery_report().clone();
        assert_eq!(r.records, singles, "{what}: {r:?}");
        assert_eq!(r.truncated_at, Some((path.clone(), batch[0].offset)), "{what}");
        assert_eq!(r.bytes_discarded, dirty_end - batch[0].offset, "{what}: every byte of the batch that was on disk is discarded");
        assert!(zeros_between(&path, batch[0].offset, dirty_end), "{what}: the torn batch must be zeroed on disk");
        let w = log.writer().unwrap();
        assert_eq!(w.next_seq(), singles);
        drop(w);
        check_cut_then_continue(dir.path(), log, singles);
    }
}

#[test]
fn torn_tail_recovers_to_the_valid_prefix_and_appending_continues() {
    // Goal: whatever a crash leaves after the last complete frame of the
    // active segment (a frame cut short, or garbage) is cut off: open keeps
    // the longest valid prefix, zeroes and reports the rest (bytes discarded,
    // file and offset of the cut), and appending continues with the next seq.
    // Method: write 700 model records (several rotations), close, then damage
    // the active segment: truncate the file inside the last frame's header,
    // inside its body, or write 777 bytes of garbage after the last frame
    // (inside the preallocated space, or past the end of the file); reopen,
    // check the report, the file and the records, append more and reopen.
    let n = 700u64;
    for variant in ["cut in header", "cut in body", "garbage after frames", "garbage past end of file"] {
        let dir = tempfile::tempdir().unwrap();
        write_model_log(dir.path(), n);
        let path = active_segment(dir.path());
        let frames = walk_frames(&path);
        let last = *frames.last().unwrap();
        assert_eq!(last.seq, n - 1);
        let (keep, cut_at, garbage_len) = match variant {
            "cut in header" => {
                truncate_file(&path, last.offset + 20);
                (n - 1, last.offset, None)
            }
            "cut in body" => {
                truncate_file(&path, last.offset + FRAME_HEADER_BYTES + (last.len - FRAME_HEADER_BYTES) / 2);
                (n - 1, last.offset, None)
            }
            "garbage after frames" => {
                write_bytes_at(&path, last.end(), &common::garbage(777, 1));
                (n, last.end(), Some(777))
            }
            _ => {
                let len = file_len(&path);
                write_bytes_at(&path, len, &common::garbage(777, 2));
                (n, last.end(), None)
            }
        };
        let dirty_end = last_nonzero_end(&path);
        let log = Log::open(dir.path(), opts()).unwrap();
        let r = log.recovery_report().clone();
        assert_eq!(r.records, keep, "{variant}: {r:?}");
        assert_eq!(r.truncated_at, Some((path.clone(), cut_at)), "{variant}");
        assert_eq!(r.bytes_discarded, dirty_end - cut_at, "{variant}");
        if let Some(g) = garbage_len {
            assert_eq!(r.bytes_discarded, g);
        }
        assert!(zeros_between(&path, cut_at, dirty_end), "{variant}: the torn tail must be zeroed on disk");
        assert_eq!(log.next_seq(), keep);
        check_cut_then_continue(dir.path(), log, keep);
    }
}

#[test]
fn strict_mode_refuses_a_torn_tail_and_changes_nothing() {
    // Goal: RecoveryMode::Strict never cuts: a torn tail is a typed
    // corruption error naming the file and the offset where valid data
    // ends, and the refused open leaves the files as they were.
    // Method: write 300 records, close, write garbage after the last frame,
    // open Strict (expect the error), then open tolerant and check the
    // garbage was still there to be discarded.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 300);
    let path = active_segment(dir.path());
    let end = walk_frames(&path).last().unwrap().end();
    write_bytes_at(&path, end, &common::garbage(100, 3));
    let before = std::fs::read(&path).unwrap();
    let err = Log::open(dir.path(), opts().recovery_mode(RecoveryMode::Strict)).unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
    assert_eq!(err.corruption_location(), Some((path.as_path(), end)), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "a refused open must not modify the segment");
    let log = Log::open(dir.path(), opts()).unwrap();
    assert_eq!(log.recovery_report().bytes_discarded, 100);
    check_model_log(&log, 300);
}

/// Writes `n` model records and returns the log's segment files; asserts
/// that there are at least four (so some sealed segment is in the middle).
fn sealed_log(dir: &Path, n: u64) -> Vec<(u64, PathBuf)> {
    write_model_log(dir, n);
    let files = segment_files(dir);
    assert!(files.len() >= 4, "need several sealed segments, got {}", files.len());
    for (_, p) in &files[..files.len() - 1] {
        footer_offset(p); // panics unless sealed
    }
    files
}

#[test]
fn flipped_byte_in_sealed_frames_is_a_checksum_error_naming_file_and_offset() {
    // Goal: damage inside a sealed segment's frames is never silently
    // dropped or skipped: reading the record is a typed corruption error
    // naming the segment file and the frame's offset, scans stop there with
    // that error, other records stay readable, and a Strict open refuses the
    // log with the same location.
    // Method: 2000 model records, close; flip one byte in the payload (or
    // timestamp) of a record in the middle of the second segment; reopen
    // tolerant (sealed segments are trusted through footers, so it opens)
    // and read; then open Strict.
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    let files = sealed_log(dir.path(), n);
    let path = files[1].1.clone();
    let frames = walk_frames(&path);
    let victim = frames[frames.len() / 2];
    let at = if victim.len > FRAME_HEADER_BYTES { victim.offset + FRAME_HEADER_BYTES } else { victim.offset + 16 };
    flip_byte(&path, at, 0x04);
    let expect_location = |e: &Error| {
        assert!(matches!(e, Error::ChecksumMismatch { .. } | Error::Corrupt { .. }), "{e:?}");
        assert_eq!(e.corruption_location(), Some((path.as_path(), victim.offset)), "{e}");
    };

    let log = Log::open(dir.path(), opts()).unwrap();
    assert!(log.recovery_report().resealed.is_empty());
    let snap = log.snapshot();
    assert_eq!(snap.next_seq(), n);
    let err = snap.get(victim.seq).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    expect_location(&err);
    common::check_model(&snap.get(victim.seq - 1).unwrap().unwrap(), victim.seq - 1);
    common::check_model(&snap.get(victim.seq + 1).unwrap().unwrap(), victim.seq + 1);

    // Forward: good records up to the damage, then the error, then the end.
    let mut it = snap.iter();
    for seq in 0..victim.seq {
        common::check_model(&it.next().unwrap().unwrap(), seq);
    }
    expect_location(&it.next().unwrap().unwrap_err());
    assert!(it.next().is_none(), "a scan must stop at damage, not skip it");
    // Backward from the end: down to the record after the damage, then the error.
    let mut rev = snap.iter_rev();
    for seq in (victim.seq + 1..n).rev() {
        assert_eq!(rev.next().unwrap().unwrap().seq(), seq);
    }
    expect_location(&rev.next().unwrap().unwrap_err());
    assert!(rev.next().is_none());
    // Starting right at it.
    expect_location(&snap.iter_from(victim.seq).next().unwrap().unwrap_err());
    drop(snap);
    drop(log);

    let err = Log::open(dir.path(), opts().recovery_mode(RecoveryMode::Strict)).unwrap_err();
    expect_location(&err);
}

#[test]
fn damaged_or_missing_footer_is_resealed_on_open() {
    // Goal: a sealed segment whose footer or trailer is damaged or missing
    // (sealing cut short by a crash) is rescanned and resealed on open:
    // report.resealed names it, every record stays readable, the new footer
    // is valid (the next open trusts it) and the digest chain is intact (a
    // Strict open, which checks every digest, succeeds).
    // Method: 1500 model records, close; damage one sealed segment (in the
    // middle, or the last sealed one) in one of six ways; reopen and check.
    type Damage = fn(&Path, u64);
    let damages: [(&str, Damage); 6] = [
        ("footer byte flipped", |p, f| flip_byte(p, f + 20, 0x01)),
        ("footer magic flipped", |p, f| flip_byte(p, f, 0x20)),
        ("index byte flipped", |p, f| flip_byte(p, f + varvelog::format::FOOTER_HEADER_BYTES + 3, 0x80)),
        ("trailer byte flipped", |p, _| flip_byte(p, file_len(p) - 10, 0x01)),
        ("trailer cut off", |p, _| truncate_file(p, file_len(p) - TRAILER_BYTES)),
        ("footer and trailer cut off", |p, f| truncate_file(p, f)),
    ];
    for (i, (what, damage)) in damages.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let n = 1500;
        let files = sealed_log(dir.path(), n);
        // Alternate between a segment in the middle and the last sealed one.
        let victim = if i % 2 == 0 { files[1].1.clone() } else { files[files.len() - 2].1.clone() };
        let frames_end = footer_offset(&victim);
        let intact = std::fs::read(&victim).unwrap();
        damage(&victim, frames_end);

        let log = Log::open(dir.path(), opts()).unwrap();
        let r = log.recovery_report().clone();
        assert_eq!(r.resealed, vec![victim.clone()], "{what}: {r:?}");
        assert_eq!(r.records, n, "{what}");
        assert!(r.truncated_at.is_none() && r.bytes_discarded == 0, "{what}: resealing must not cut: {r:?}");
        check_model_log(&log, n);
        drop(log);
        assert_eq!(footer_offset(&victim), frames_end, "{what}: footer rewritten where the frames end");
        assert_eq!(std::fs::read(&victim).unwrap(), intact, "{what}: resealing restores the exact sealed bytes");

        let log = Log::open(dir.path(), opts().recovery_mode(RecoveryMode::Strict)).unwrap();
        assert!(log.recovery_report().resealed.is_empty(), "{what}: the new footer is trusted");
        check_model_log(&log, n);
    }
}

/// Sets the format version of the segment header of `path` to `version`,
/// with a correct header checksum (so only the version is "wrong").
fn set_header_version(path: &Path, version: u16) {
    let mut header = std::fs::read(path).unwrap()[..64].to_vec();
    header[8..10].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c(&header[..60]);
    header[60..64].copy_from_slice(&crc.to_le_bytes());
    write_bytes_at(path, 0, &header);
}

/// Sets the format version in the trailer of the sealed segment `path`,
/// with a correct trailer checksum.
fn set_trailer_version(path: &Path, version: u16) {
    let at = file_len(path) - TRAILER_BYTES;
    let mut t = std::fs::read(path).unwrap()[at as usize..].to_vec();
    t[24..26].copy_from_slice(&version.to_le_bytes());
    let crc_at = t.len() - 4;
    let crc = crc32c::crc32c(&t[..crc_at]);
    t[crc_at..].copy_from_slice(&crc.to_le_bytes());
    write_bytes_at(path, at, &t);
}

#[test]
fn unknown_format_version_is_refused_with_unsupported_version() {
    // Goal: a segment of an unknown format version is never reinterpreted:
    // open fails with Error::UnsupportedVersion naming the file, the version
    // found and the version supported, and leaves the file untouched.
    // Method: 1000 model records, close; give one file a future version
    // (in a sealed segment's header, in the active segment's header, in a
    // sealed segment's trailer), each with valid checksums; open; restore
    // the file and check the log opens again.
    let future = FORMAT_VERSION + 6;
    for place in ["sealed header", "active header", "sealed trailer"] {
        let dir = tempfile::tempdir().unwrap();
        let files = sealed_log(dir.path(), 1000);
        let path = match place {
            "active header" => files.last().unwrap().1.clone(),
            _ => files[1].1.clone(),
        };
        let original = std::fs::read(&path).unwrap();
        match place {
            "sealed trailer" => set_trailer_version(&path, future),
            _ => set_header_version(&path, future),
        }
        let damaged = std::fs::read(&path).unwrap();
        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::Strict] {
            match Log::open(dir.path(), opts().recovery_mode(mode)) {
                Err(Error::UnsupportedVersion { path: p, found, supported }) => {
                    assert_eq!((p, found, supported), (path.clone(), future, FORMAT_VERSION), "{place}");
                }
                other => panic!("{place} {mode:?}: expected UnsupportedVersion, got {other:?}"),
            }
            assert_eq!(std::fs::read(&path).unwrap(), damaged, "{place}: the refused file must be left as it was");
        }
        write_bytes_at(&path, 0, &original);
        let log = Log::open(dir.path(), opts()).unwrap();
        check_model_log(&log, 1000);
    }
}

#[test]
fn foreign_file_named_like_a_segment_is_refused_with_not_a_log() {
    // Goal: a file that is named like a segment but is not one is refused
    // with Error::NotALog naming it, and is neither modified nor removed.
    // Method: put a text file, a binary file, and a file after a real log's
    // segments under segment names; open; check the error and the file;
    // for the real log, remove the stranger and check nothing was lost.
    // (what, bytes, name: None = first segment of an empty log, Some(gap) =
    // after a real log, `gap` seqs past its end)
    let cases: [(&str, Vec<u8>, Option<u64>); 4] = [
        ("text in an empty directory", b"hello, I am not a log segment\n".to_vec(), None),
        ("binary in an empty directory", vec![0xAB; 8192], None),
        ("right after a real log's segments", common::garbage(5000, 4), Some(0)),
        ("after a real log's segments, past a gap", common::garbage(5000, 5), Some(1_000_000)),
    ];
    for (what, bytes, after_log) in cases {
        let dir = tempfile::tempdir().unwrap();
        let name_base = match after_log {
            Some(gap) => {
                write_model_log(dir.path(), 800);
                800 + gap
            }
            None => 0,
        };
        let path = dir.path().join(varvelog::format::segment_file_name(name_base));
        std::fs::write(&path, &bytes).unwrap();
        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::Strict] {
            match Log::open(dir.path(), opts().recovery_mode(mode)) {
                Err(Error::NotALog { path: p, .. }) => assert_eq!(p, path, "{what}"),
                // Strict mode may first refuse the gap before the stranger.
                Err(e) if mode == RecoveryMode::Strict && after_log.is_some_and(|g| g > 0) && e.is_corruption() => {}
                other => panic!("{what} {mode:?}: expected NotALog, got {other:?}"),
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}: the foreign file must be left alone");
        }
        if after_log.is_some() {
            std::fs::remove_file(&path).unwrap();
            let log = Log::open(dir.path(), opts()).unwrap();
            check_model_log(&log, 800);
        }
    }
}

#[test]
fn stale_spares_are_listed_then_removed_in_the_background() {
    // Goal: spare preallocated files a previous process left do not slow
    // open down (open lists them, the background preparer removes them),
    // and the log keeps appending through rotations meanwhile. (Name
    // clashes with spares that cannot be removed: the next test.)
    // Method: write a log, close it (its spares stay), plant a stale spare
    // numbered 41 with bytes in it, reopen, check the report lists both
    // kinds, wait (bounded) until every listed file is gone, append through
    // several rotations and check every record.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 300);
    let planted = dir.path().join("000041.prealloc");
    std::fs::write(&planted, b"left by a crashed process").unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let spares = log.recovery_report().spares.clone();
    assert!(spares.contains(&planted), "{spares:?}");
    assert!(spares.len() >= 2, "the closed log's own spares are listed too: {spares:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while spares.iter().any(|p| p.exists()) {
        assert!(std::time::Instant::now() < deadline, "stale spares still present: {spares:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut w = log.writer().unwrap();
    for seq in 300..3000 {
        append_model(&mut w, seq);
    }
    assert!(segment_files(dir.path()).len() >= 4, "the appends rotated through several new spares");
    check_model_log(&log, 3000);
    drop(w);
    drop(log);
    check_model_log(&Log::open(dir.path(), opts()).unwrap(), 3000);
}

#[test]
fn new_spares_never_take_the_name_of_a_stale_spare_that_could_not_be_removed() {
    // Goal: when stale spares cannot be removed (a failing unlink), new
    // spares are numbered past them, so preparing never collides with a
    // leftover name and the writer keeps rotating.
    // Method: close a log (its spares stay), plant a stale spare numbered
    // 41, reopen through a file system whose first three unlinks fail, then
    // append through several rotations; every stale file is still there,
    // every new spare is numbered past 41 (the writer would cover for a
    // failed spare, so the names are what shows a clash was avoided), and
    // every record reads back.
    let dir = tempfile::tempdir().unwrap();
    write_model_log(dir.path(), 300);
    std::fs::write(dir.path().join("000041.prealloc"), b"left by a crashed process").unwrap();
    let fs = std::sync::Arc::new(varvelog::fs::FaultFs::new());
    fs.fail(varvelog::fs::Op::Remove, 0, 3, std::io::ErrorKind::PermissionDenied);
    let log = Log::open(dir.path(), opts().file_system(fs.clone())).unwrap();
    let stale = log.recovery_report().spares.clone();
    assert_eq!(stale.len(), 3, "{stale:?}");
    let mut w = log.writer().unwrap();
    for seq in 300..3000 {
        append_model(&mut w, seq);
    }
    assert!(log.stats().rotations >= 3, "the appends rotated through new spares");
    assert_eq!(fs.injected(), 3, "the three stale spares' unlinks failed");
    assert!(stale.iter().all(|p| p.exists()), "stale spares stay when they cannot be removed");
    // The preparer refills its spares after the writer takes them; wait
    // (bounded) until one exists.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let new_numbers = loop {
        let numbers: Vec<u64> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !stale.contains(p))
            .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".prealloc")?.parse().ok())
            .collect();
        if !numbers.is_empty() {
            break numbers;
        }
        assert!(std::time::Instant::now() < deadline, "no new spare appeared");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    assert!(new_numbers.iter().all(|&n| n > 41), "new spares numbered past 41: {new_numbers:?}");
    check_model_log(&log, 3000);
}
