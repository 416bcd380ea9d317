//! Disk full at seal time: sealing never grows a file (room for footer,
//! index and trailer is reserved when a segment is preallocated), and a seal
//! that fails for lack of space is retried instead of poisoning the writer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use varvelog::fs::{FaultFs, Op};
use varvelog::{Error, Log, Options};

const SEGMENT: u64 = 64 * 1024;
/// A 1024-byte frame (32-byte header + 992-byte payload): 60 of them fill a
/// 64 KiB segment's frame area exactly if nothing is reserved after it.
const PAYLOAD: usize = 992;

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message saying why the test is skipped) where mounting
    /// is not permitted.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!("SKIPPED: cannot mount a tmpfs here ({}); disk-full test not run", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); disk-full test not run");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes zeros to `path` until the file system is full; returns the file.
fn fill(path: &Path) -> PathBuf {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    let _ = f.sync_all();
    path.to_path_buf()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sealing_on_a_full_disk_never_grows_a_file_nor_poisons_the_writer() {
    // Goal: a segment filled to its capacity seals without growing its file,
    // so a full disk cannot poison the writer through the sealer; the errors
    // a full disk causes (no room for the next segment) are returned to the
    // caller, who can free space and carry on; reopening on the still-full
    // disk works. Method: on a 1 MiB tmpfs, open a log (active segment and
    // spares preallocated), fill the rest of the disk, append records that
    // fill segments exactly until an append fails; the writer is not
    // poisoned, every rotated segment gets sealed; reopen while full; free
    // the space; appends continue and every record reads back.
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let dir = fs.path().join("log");
    let opts = || Options::new().segment_bytes(SEGMENT).zero_fill(false);
    let log = Log::open(&dir, opts()).unwrap();
    let mut w = log.writer().unwrap();
    w.append(&[1u8; PAYLOAD]).unwrap();
    w.sync().unwrap();
    std::thread::sleep(Duration::from_millis(200)); // spares prepared
    let filler = fill(&fs.path().join("filler"));
    let payload = vec![7u8; PAYLOAD];
    let mut appended = 1u64;
    let err = loop {
        match w.append(&payload) {
            Ok(_) => appended += 1,
            Err(e) => break e,
        }
        assert!(appended < 10_000, "a full disk never stopped the writer");
    };
    assert!(!matches!(err, Error::Poisoned { .. }), "the writer was poisoned: {err}");
    assert!(appended > 120, "only {appended} records before the disk was full");
    wait_until("rotated segments are sealed", || {
        let v = log.verify();
        log.is_poisoned() || (v.is_ok() && v.sealed_segments + 1 == v.segments)
    });
    assert!(!log.is_poisoned(), "sealing on a full disk poisoned the writer");
    w.sync().unwrap();
    drop(w);
    drop(log);
    // Reopen on the still-full disk.
    let log = Log::open(&dir, opts()).unwrap();
    assert_eq!(log.next_seq(), appended);
    let mut w = log.writer().unwrap();
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..200 {
        w.append(&payload).unwrap();
    }
    w.sync().unwrap();
    let snap = log.snapshot();
    assert_eq!(snap.len(), appended + 200);
    assert_eq!(snap.iter().filter(|r| r.is_ok()).count() as u64, appended + 200);
}

#[test]
fn a_seal_that_fails_for_lack_of_space_is_retried_not_poisoning() {
    // Goal: ENOSPC while writing a footer leaves the segment unsealed (still
    // readable), does not poison the writer, and the seal is retried and
    // completes once space is back. Method: a fault file system fails the
    // footer writes of the first seals with ENOSPC; append across several
    // rotations; the writer keeps working and every segment ends up sealed.
    let fs = Arc::new(FaultFs::new());
    fs.fail(Op::WriteAt, 0, 3, std::io::ErrorKind::StorageFull);
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT).file_system(fs.clone())).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..300u64 {
        w.append(&i.to_le_bytes().repeat(PAYLOAD / 8)).unwrap();
    }
    wait_until("every rotated segment is sealed", || {
        let v = log.verify();
        log.is_poisoned() || (v.is_ok() && v.sealed_segments + 1 == v.segments)
    });
    assert!(!log.is_poisoned(), "a seal failing with ENOSPC poisoned the writer");
    assert_eq!(fs.injected(), 3);
    w.append(b"still writing").unwrap();
    w.sync().unwrap();
    assert_eq!(log.snapshot().len(), 301);
}
