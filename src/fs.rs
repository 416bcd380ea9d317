//! The seam under all file I/O.
//!
//! Every operation the engine performs on files and directories goes through
//! [`FileSystem`]. The default methods do the real thing, so [`StdFs`] is empty
//! and a test double overrides only what it needs (the tests use one that
//! fails chosen operations to prove that the engine poisons, reports and
//! recovers).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use memmap2::MmapRaw;

/// File-system operations the engine uses. Every method has a working default.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    /// Names of the entries of `dir`.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
    /// Creates a new file for reading and writing; fails if it exists.
    ///
    /// # Errors
    ///
    /// The OS error; `AlreadyExists` if the file exists.
    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).create_new(true).open(path)
    }
    /// Opens an existing file.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn open(&self, path: &Path, writable: bool) -> io::Result<File> {
        OpenOptions::new().read(true).write(writable).open(path)
    }
    /// Reserves `len` bytes of disk for `file` (fallocate), growing it.
    ///
    /// # Errors
    ///
    /// The OS error; `StorageFull` (ENOSPC) if the disk has no room.
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len).map_err(io::Error::from)
    }
    /// Sets the file's length (truncating or extending with zeros).
    ///
    /// # Errors
    ///
    /// The OS error.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }
    /// Makes the file's data (and the metadata needed to read it) durable.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn sync_file(&self, file: &File) -> io::Result<()> {
        rustix::fs::fdatasync(file).map_err(io::Error::from)
    }
    /// Starts writing back `len` bytes of the file's dirty pages from
    /// `offset` without waiting for them (advice: a later
    /// [`FileSystem::sync_file`] still waits, and reports any write-back
    /// error). Where the OS has no such call, does nothing.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn start_write_back(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        // `sync_file_range(SYNC_FILE_RANGE_WRITE)` queues the range's dirty
        // pages for write-back and returns; without a wait flag it neither
        // waits nor consumes a write-back error.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
                return Ok(());
            };
            // SAFETY: `file` is an open descriptor for the duration of the
            // call, and sync_file_range reads no memory of ours.
            let r = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, offset, len);
            Ok(())
        }
    }
    /// Makes `len` bytes of a shared writable mapping durable from `offset` (msync).
    ///
    /// # Errors
    ///
    /// The OS error.
    fn sync_map(&self, map: &MmapRaw, offset: usize, len: usize) -> io::Result<()> {
        map.flush_range(offset, len)
    }
    /// Makes the directory's entries (creations, renames, removals) durable.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    /// Renames a file.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    /// Removes a file.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    /// Opens (creating if needed) `path` and takes an exclusive, non-blocking
    /// advisory lock on it; the lock lives as long as the returned file.
    ///
    /// # Errors
    ///
    /// The OS error; `WouldBlock` if another process holds the lock.
    fn lock(&self, path: &Path) -> io::Result<File> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(io::Error::from)?;
        Ok(file)
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl FileSystem for StdFs {}

/// The operations [`FaultFs`] can fail (a test double; see its note).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`FileSystem::create`].
    Create,
    /// [`FileSystem::allocate`].
    Allocate,
    /// [`FileSystem::set_len`].
    SetLen,
    /// [`FileSystem::write_at`].
    WriteAt,
    /// [`FileSystem::sync_file`].
    SyncFile,
    /// [`FileSystem::sync_map`].
    SyncMap,
    /// [`FileSystem::sync_dir`].
    SyncDir,
    /// [`FileSystem::rename`].
    Rename,
    /// [`FileSystem::remove`].
    Remove,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    skip: u64,
    times: u64,
    kind: io::ErrorKind,
}

/// A [`FileSystem`] over the real one that fails chosen operations, for
/// fault-injection tests. Rules are checked in the order they were added.
//
// Hidden rather than behind a `testing` feature: the integration tests that
// use it would each need `required-features`, and a plain `cargo test` would
// then skip them without a word. It is a test double, not part of the API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct FaultFs {
    rules: Mutex<Vec<Rule>>,
    injected: AtomicU64,
}

impl FaultFs {
    /// A file system with no faults armed.
    #[must_use]
    pub fn new() -> FaultFs {
        FaultFs::default()
    }

    /// Fails the calls of `op` after the next `skip` successful ones, `times`
    /// times in a row (`u64::MAX` for ever), with an error of `kind`.
    pub fn fail(&self, op: Op, skip: u64, times: u64, kind: io::ErrorKind) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).push(Rule { op, skip, times, kind });
    }

    /// Disarms every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn check(&self, op: Op) -> io::Result<()> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        for rule in rules.iter_mut().filter(|r| r.op == op && r.times > 0) {
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.times -= 1;
            self.injected.fetch_add(1, Ordering::Relaxed);
            let msg = format!("injected fault in {op:?}");
            return Err(if rule.kind == io::ErrorKind::StorageFull {
                io::Error::from_raw_os_error(28)
            } else {
                io::Error::new(rule.kind, msg)
            });
        }
        Ok(())
    }
}

impl FileSystem for FaultFs {
    fn create(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Create)?;
        StdFs.create(path)
    }
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        self.check(Op::Allocate)?;
        StdFs.allocate(file, len)
    }
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.check(Op::SetLen)?;
        StdFs.set_len(file, len)
    }
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check(Op::WriteAt)?;
        StdFs.write_at(file, buf, offset)
    }
    fn sync_file(&self, file: &File) -> io::Result<()> {
        self.check(Op::SyncFile)?;
        StdFs.sync_file(file)
    }
    fn sync_map(&self, map: &MmapRaw, offset: usize, len: usize) -> io::Result<()> {
        self.check(Op::SyncMap)?;
        StdFs.sync_map(map, offset, len)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::SyncDir)?;
        StdFs.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename)?;
        StdFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(Op::Remove)?;
        StdFs.remove(path)
    }
}
