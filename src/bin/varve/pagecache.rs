//! Whether a file's bytes are written back to disk, asked of the page cache
//! with `cachestat(2)` (Linux 6.5 and later). `stat` uses it to tell how much
//! of a live segment the kernel has written to disk. That is not durability:
//! the kernel's own write-back also cleans pages, without flushing the disk's
//! cache; only the writer knows which records a sync covered.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Whether bytes `off..off + len` of the file at `path` have no dirty page
/// and none under write-back. `None` when the kernel cannot tell (no
/// `cachestat`, not Linux, or tmpfs).
///
/// A dirty page is not always changed bytes: the engine faults pages in
/// with `MADV_POPULATE_WRITE`, which marks them dirty, so a page can read
/// as dirty until the writer's next sync although its bytes are on disk.
pub fn written_back(path: &Path, off: u64, len: u64) -> Option<bool> {
    if len == 0 {
        return Some(true);
    }
    let file = File::open(path).ok()?;
    // tmpfs never writes pages back: they read dirty for ever. (`f_type`'s
    // integer type differs between architectures.)
    #[allow(clippy::unnecessary_cast)]
    if rustix::fs::fstatfs(&file).ok()?.f_type as i64 == libc::TMPFS_MAGIC as i64 {
        return None;
    }
    let stat = cachestat(&file, off, len)?;
    Some(stat.nr_dirty == 0 && stat.nr_writeback == 0)
}

/// `struct cachestat_range` of the kernel's uapi.
#[repr(C)]
struct Range {
    off: u64,
    len: u64,
}

/// `struct cachestat` of the kernel's uapi: page counts of the range.
#[repr(C)]
#[derive(Default)]
struct Stat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// The number of `cachestat` on the architectures that share the generic
/// system call table (x86_64's numbers past 423 match it too).
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
const SYS_CACHESTAT: libc::c_long = 451;

#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
fn cachestat(file: &File, off: u64, len: u64) -> Option<Stat> {
    let range = Range { off, len };
    let mut stat = Stat::default();
    // SAFETY: cachestat reads one `cachestat_range` and writes one
    // `struct cachestat`, both `#[repr(C)]` copies of the uapi layouts
    // (two and five u64s) that live for the whole call; `file` keeps the
    // descriptor open; flags must be 0. It touches no other memory.
    let rc = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const Range, &mut stat as *mut Stat, 0) };
    (rc == 0).then_some(stat)
}

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))))]
fn cachestat(_: &File, _: u64, _: u64) -> Option<Stat> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn dirty_pages_are_seen_until_the_file_is_synced() {
        // Goal: `written_back` tells a freshly written file from a synced
        // one, so stat's durable seq follows the writer's syncs. Method:
        // write two pages, ask (dirty), fdatasync, ask again (clean).
        // Skipped where the kernel has no cachestat, and on tmpfs (its
        // pages are never written back).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        if rustix::fs::fstatfs(&f).unwrap().f_type as i64 == 0x0102_1994 {
            eprintln!("tmpfs; skipped");
            return;
        }
        f.write_all(&[7u8; 8192]).unwrap();
        let Some(before) = written_back(&path, 0, 8192) else {
            eprintln!("no cachestat on this kernel; skipped");
            return;
        };
        assert!(!before, "a page just written reported as written back");
        f.sync_data().unwrap();
        assert_eq!(written_back(&path, 0, 8192), Some(true), "synced file still reported dirty");
    }
}
