//! A reader in another process: one process writes the log, this one
//! follows it with `Log::open_read_only` and must receive every record, in
//! order, with the right bytes, across rotations.
//!
//! The writer is this test binary re-executed with `VARVE_XP_WRITER_DIR`
//! set, running only `child_writer`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use varvelog::{Entry, Error, Log, Options, ReadOnlyLog};

const DIR_ENV: &str = "VARVE_XP_WRITER_DIR";
const RECORDS: u64 = 20_000;

fn payload(i: u64) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    p.extend(std::iter::repeat_n((i % 251) as u8, (i % 97) as usize));
    p
}

/// The writer side, run in the child process only.
fn write_log(dir: &Path) {
    let log = Log::open(dir, Options::new().segment_bytes(64 * 1024)).unwrap();
    let mut w = log.writer().unwrap();
    let mut i = 0u64;
    while i < RECORDS {
        if i % 100 == 50 {
            // A batch: the reader must see all of it or none.
            let batch: Vec<Vec<u8>> = (i..i + 10).map(payload).collect();
            w.append_batch(batch.iter()).unwrap();
            i += 10;
        } else {
            w.append_entry(Entry::new(&payload(i)).timestamp(1_000 + i)).unwrap();
            i += 1;
        }
        if i.is_multiple_of(2_000) {
            // Let the reader catch up now and then, so that it also waits.
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    w.sync().unwrap();
}

#[test]
fn child_writer() {
    // Not a test on its own: the writer half of the cross-process test,
    // active only when the parent re-executes this binary.
    if let Ok(dir) = std::env::var(DIR_ENV) {
        write_log(Path::new(&dir));
    }
}

/// Opens the log read-only once the child has created it.
fn open_when_ready(dir: &Path, deadline: Instant) -> ReadOnlyLog {
    loop {
        match ReadOnlyLog::open(dir) {
            Ok(r) => return r,
            Err(Error::NotALog { .. }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("read-only open failed: {e}"),
        }
    }
}

#[test]
fn reader_in_another_process_receives_every_record_in_order() {
    // Goal: the multi-process contract end to end. Method: a child process
    // appends 20 000 records (singles and batches, ~30 rotations of 64 KiB
    // segments); this process follows with open_read_only from the moment
    // the log exists and checks every seq and payload; then the child's
    // exit status, and that the read-only view equals the final log.
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "child_writer", "--nocapture", "--test-threads", "1"])
        .env(DIR_ENV, dir.path())
        .spawn()
        .expect("start the writer process");
    let deadline = Instant::now() + Duration::from_secs(60);
    let reader = open_when_ready(dir.path(), deadline);
    let mut follow = reader.tail_from(0).unwrap();
    let mut next = 0u64;
    while next < RECORDS {
        assert!(Instant::now() < deadline, "follower stuck at {next}");
        for r in follow.wait(Duration::from_millis(200)).unwrap() {
            let r = r.unwrap();
            assert_eq!(r.seq(), next, "records must arrive in order without gaps");
            assert_eq!(r.payload(), payload(next).as_slice(), "payload of {next}");
            next += 1;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "writer process failed");
        }
    }
    assert!(child.wait().unwrap().success(), "writer process failed");
    assert_eq!(follow.wait(Duration::from_millis(10)).unwrap().count(), 0, "nothing beyond what was written");
    assert!(reader.stats().rescans > 1 && reader.stats().segments_mapped > 10, "{:?}", reader.stats());

    // Segments the writer finished are seen as sealed once it sealed them
    // (the follower then drops its own index for them).
    reader.refresh().unwrap();
    let info = reader.snapshot().segment_info();
    assert!(info.len() > 10 && info[..info.len() - 1].iter().all(|s| s.sealed), "{info:?}");

    // The writer is gone: a fresh read-only view holds exactly the same.
    let again = ReadOnlyLog::open(dir.path()).unwrap();
    let snap = again.snapshot();
    assert_eq!((snap.first_seq(), snap.last_seq()), (Some(0), Some(RECORDS - 1)));
    assert!(again.verify().unwrap().is_ok());
}
