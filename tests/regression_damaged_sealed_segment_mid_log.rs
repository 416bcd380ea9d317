//! Regression: tolerant recovery treated a damaged *sealed* segment in the
//! middle of the log (cut short, or its header zeroed) as a torn active
//! segment, made it the active segment and deleted every later segment —
//! thousands of synced records gone. Damage must be reported with the file
//! and offset, and no file may be removed.

use std::path::{Path, PathBuf};

use varvelog::{Error, Log, Options};

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "seg")).collect();
    v.sort();
    v
}

/// A closed log of several sealed segments, every record synced.
fn sealed_log(dir: &Path) -> Vec<PathBuf> {
    let log = Log::open(dir, Options::new().segment_bytes(64 * 1024)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..3000u32 {
        w.append(&i.to_le_bytes().repeat(20)).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    drop(log); // joins the sealer: every rotated-away segment is sealed on disk
    let files = segment_files(dir);
    assert!(files.len() >= 5, "need several segments, got {}", files.len());
    files
}

fn assert_refused_naming(dir: &Path, damaged: &Path, before: &[PathBuf]) {
    match Log::open(dir, Options::new().segment_bytes(64 * 1024)) {
        Err(e @ (Error::Corrupt { .. } | Error::ChecksumMismatch { .. })) => {
            let (path, _offset) = e.corruption_location().unwrap();
            assert_eq!(path, damaged, "error names the wrong file: {e}");
        }
        Err(other) => panic!("expected a corruption error naming {damaged:?}, got {other}"),
        Ok(log) => panic!("damaged log opened with {} records: {:?}", log.snapshot().len(), log.recovery_report()),
    }
    assert_eq!(segment_files(dir), before, "recovery removed files from a damaged log");
}

#[test]
fn truncated_sealed_segment_mid_log_is_reported_and_nothing_is_deleted() {
    // Goal: cutting a sealed segment in half is damage, not a torn tail.
    // Method: seal several segments, truncate the second, reopen tolerant.
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_log(dir.path());
    let victim = &files[1];
    let len = std::fs::metadata(victim).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(victim).unwrap().set_len(len / 2).unwrap();
    assert_refused_naming(dir.path(), victim, &files);
}

#[test]
fn zeroed_header_of_sealed_segment_mid_log_is_reported_and_nothing_is_deleted() {
    // Goal: a blank header mid-log is only a crash artefact when nothing after
    // it is sealed. Method: zero the second segment's header page, reopen.
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_log(dir.path());
    let victim = &files[1];
    std::os::unix::fs::FileExt::write_all_at(&std::fs::OpenOptions::new().write(true).open(victim).unwrap(), &[0u8; 4096], 0).unwrap();
    assert_refused_naming(dir.path(), victim, &files);
}
