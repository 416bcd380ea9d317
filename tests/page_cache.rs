//! `Options::cached_sealed_segments`: sealed segments older than the newest
//! `n` leave the page cache once sealed, and stay readable from the disk.
//!
//! Residency is probed with `preadv2(RWF_NOWAIT)`, which reads a byte only
//! if its page is cached and fails with `EAGAIN` otherwise. Pages are probed
//! from the end of a range backwards, so any readahead a probe starts only
//! reaches pages already probed.

use std::path::Path;
use std::time::{Duration, Instant};

use varvelog::{Log, Options, SegmentInfo};

mod common;
use common::on_tmpfs;

const SEGMENT: u64 = 8 << 20;
const PAGE: u64 = 4096;

/// Resident pages among the pages of `path` in `from..to`, and how many were probed.
fn resident_pages(path: &Path, from: u64, to: u64) -> (u64, u64) {
    let file = std::fs::File::open(path).unwrap();
    let mut byte = [0u8; 1];
    let (mut resident, mut probed) = (0, 0);
    let mut off = to - PAGE;
    while off >= from {
        let mut bufs = [std::io::IoSliceMut::new(&mut byte)];
        match rustix::io::preadv2(&file, &mut bufs, off, rustix::io::ReadWriteFlags::NOWAIT) {
            Ok(1) => resident += 1,
            Ok(n) => panic!("read {n} bytes at {off} of {}", path.display()),
            Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => panic!("preadv2 at {off} of {}: {e}", path.display()),
        }
        probed += 1;
        off -= PAGE;
    }
    (resident, probed)
}

/// Writes `segments` full segments and waits until all but the active one are sealed.
fn fill(log: &Log, segments: u64) -> Vec<SegmentInfo> {
    let payload = vec![0xA5u8; 1000];
    let mut w = log.writer().unwrap();
    while log.snapshot().segment_info().len() as u64 <= segments {
        for _ in 0..1000 {
            w.append(&payload).unwrap();
        }
    }
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = log.snapshot().segment_info();
        let sealed = info.iter().filter(|s| s.sealed).count() as u64;
        if sealed >= segments {
            return info;
        }
        assert!(Instant::now() < deadline, "only {sealed} of {segments} segments sealed after 20 s: {info:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The probed range of a sealed segment: its frames, less 2 MiB at each end,
/// so no page shares a (large) folio with the header or footer pages that
/// opening the sealed file maps, which the kernel never drops.
fn middle(s: &SegmentInfo) -> (u64, u64) {
    (2 << 20, s.frame_bytes - (2 << 20))
}

#[test]
fn sealed_segments_past_the_cached_window_leave_the_page_cache_and_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    if on_tmpfs(dir.path()) {
        eprintln!("SKIPPED: {} is on tmpfs, which keeps every page", dir.path().display());
        return;
    }
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT).cached_sealed_segments(1)).unwrap();
    let info = fill(&log, 4);
    let sealed: Vec<_> = info.iter().filter(|s| s.sealed).collect();
    // All but the newest sealed segment are out of the window.
    for s in &sealed[..sealed.len() - 1] {
        let (from, to) = middle(s);
        let (resident, probed) = resident_pages(&s.path, from, to);
        assert_eq!(resident, 0, "{} of {probed} pages of {} still cached", resident, s.path.display());
    }
    let newest = sealed.last().unwrap();
    let (from, to) = middle(newest);
    let (resident, probed) = resident_pages(&newest.path, from, to);
    assert_eq!(resident, probed, "the newest sealed segment {} stays cached", newest.path.display());
    // Every record reads back, from the disk where it was dropped.
    let total: u64 = info.iter().map(|s| s.records).sum();
    let mut n = 0u64;
    for r in log.snapshot().iter() {
        assert_eq!(r.unwrap().payload(), &[0xA5u8; 1000][..]);
        n += 1;
    }
    assert_eq!(n, total);
}

#[test]
fn with_an_unbounded_window_sealed_segments_stay_in_the_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT).cached_sealed_segments(usize::MAX)).unwrap();
    let info = fill(&log, 3);
    for s in info.iter().filter(|s| s.sealed) {
        let (from, to) = middle(s);
        let (resident, probed) = resident_pages(&s.path, from, to);
        assert_eq!(resident, probed, "pages of {} dropped from the page cache", s.path.display());
    }
}
