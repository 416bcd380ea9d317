//! Physical bounds measured in the same run as the engine: what the machine
//! can do with the same bytes when nothing but the bytes matter.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use memmap2::{Advice, MmapMut};

use super::clock::{histogram, ticks, Clock};
use super::{join, Durable, Lat, Rate, Res};

/// Results of the memory baselines over one mapping.
pub struct MemBounds {
    /// Copying every frame once into a preallocated, pre-faulted file mapping.
    pub memcpy: Rate,
    /// Latency of one frame copy (second pass over the same mapping).
    pub memcpy_lat: Lat,
    /// CRC32C of every frame in place (the least a checksummed scan does).
    pub crc: Rate,
}

/// Copies `records` copies of `frame` (a real varvelog frame) into a file
/// mapping preallocated with fallocate and pre-faulted with
/// MADV_POPULATE_WRITE, then times one copy at a time on a second pass, then
/// checksums the frames in place.
pub fn memory(path: &Path, frame: &[u8], frame_len: usize, records: u64, payload: usize, clock: &Clock) -> Res<MemBounds> {
    let bytes = (records * frame.len() as u64).next_multiple_of(4096).max(4096);
    let file = File::options().read(true).write(true).create_new(true).open(path)?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, bytes)?;
    // SAFETY: the file was just created by this process in its own benchmark
    // directory (create_new) and nobody else writes or truncates it while the
    // mapping lives; it is removed after the mapping is dropped.
    let mut map = unsafe { MmapMut::map_mut(&file)? };
    if map.advise(Advice::PopulateWrite).is_err() {
        for i in (0..map.len()).step_by(4096) {
            map[i] = 0;
        }
    }
    let n = records as usize;
    let fl = frame.len();

    let start = Instant::now();
    let mut off = 0;
    for _ in 0..n {
        map[off..off + fl].copy_from_slice(std::hint::black_box(frame));
        off += fl;
    }
    let memcpy = Rate::new(records, payload, start.elapsed());

    let mut h = histogram()?;
    let mut off = 0;
    for _ in 0..n {
        let src = std::hint::black_box(frame);
        let t0 = ticks();
        map[off..off + fl].copy_from_slice(src);
        let t1 = ticks();
        clock.record(&mut h, t0, t1);
        off += fl;
    }
    let memcpy_lat = Lat::of(&h);

    let start = Instant::now();
    let mut acc = 0u32;
    for i in 0..n {
        let f = &map[i * fl..i * fl + frame_len];
        acc ^= crc32c::crc32c(f);
    }
    std::hint::black_box(acc);
    let crc = Rate::new(records, payload, start.elapsed());
    drop(map);
    drop(file);
    std::fs::remove_file(path)?;
    Ok(MemBounds { memcpy, memcpy_lat, crc })
}

/// The plain-file floor: `records` copies of `frame` through a `BufWriter`
/// (its default buffer) into a new, growing file, no fsync: what a program
/// that only wants the bytes in a file would do. The kernel fills each new
/// page once, with the data. Timed to the final flush (the first rate);
/// then `fdatasync`, and the second rate is timed to its end: the same
/// bytes on the disk.
pub fn bufwriter(path: &Path, frame: &[u8], records: u64, payload: usize) -> Res<(Rate, Rate)> {
    use std::io::Write;
    let file = File::options().write(true).create_new(true).open(path)?;
    let mut w = std::io::BufWriter::new(file);
    let start = Instant::now();
    for _ in 0..records {
        w.write_all(std::hint::black_box(frame))?;
    }
    w.flush()?;
    let rate = Rate::new(records, payload, start.elapsed());
    w.get_ref().sync_data()?;
    let on_disk = Rate::new(records, payload, start.elapsed());
    drop(w);
    std::fs::remove_file(path)?;
    Ok((rate, on_disk))
}

/// Cross-core ping-pong on one atomic: one thread stores odd values, the
/// other answers with the next even value. Reports one-way latency
/// (round trip / 2) over `rounds` round trips or `budget`, whichever ends first.
pub fn ping_pong(clock: &Clock, rounds: u64, budget: Duration) -> Res<Lat> {
    let word = CachePadded::new(AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let mut h = histogram()?;
    std::thread::scope(|s| -> Res<()> {
        let echo = s.spawn(|| loop {
            let v = word.load(Ordering::Acquire);
            if v % 2 == 1 {
                word.store(v + 1, Ordering::Release);
            } else if stop.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
        });
        let start = Instant::now();
        for i in 0..rounds {
            let want = 2 * i + 2;
            let t0 = ticks();
            word.store(2 * i + 1, Ordering::Release);
            while word.load(Ordering::Acquire) != want {
                std::hint::spin_loop();
            }
            let t1 = ticks();
            let rtt = t1.saturating_sub(t0).saturating_sub(clock.overhead_ticks);
            h.saturating_record(clock.ns(rtt) / 2);
            if i % 4096 == 0 && start.elapsed() > budget {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        join(echo, "ping-pong echo")
    })?;
    Ok(Lat::of(&h))
}

/// Where the `pwrite` baseline writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// At the end of a growing file: each fdatasync also commits the new size
    /// (the naive log, and the baseline the durable goal is stated against).
    Growing,
    /// Over a file whose blocks were written (zeros) and synced beforehand,
    /// cycling through its 16 MiB: fdatasync flushes data only, no metadata.
    PreZeroed,
}

const PREZEROED_BYTES: u64 = 16 << 20;

/// `pwrite` of `per_sync` frames, then `fdatasync`, repeated for `budget`
/// (at least 3 syncs).
pub fn pwrite_sync(path: &Path, frame: &[u8], per_sync: usize, budget: Duration, payload: usize, kind: FileKind) -> Res<Durable> {
    let file = File::options().read(true).write(true).create_new(true).open(path)?;
    let buf: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * per_sync).collect();
    if kind == FileKind::PreZeroed {
        let zeros = vec![0u8; 1 << 20];
        for i in 0..PREZEROED_BYTES >> 20 {
            file.write_all_at(&zeros, i << 20)?;
        }
        file.sync_all()?;
    }
    let mut h = histogram()?;
    let mut off = 0u64;
    let mut syncs = 0u64;
    let start = Instant::now();
    while syncs < 3 || start.elapsed() < budget {
        if kind == FileKind::PreZeroed && off + buf.len() as u64 > PREZEROED_BYTES {
            off = 0;
        }
        let t0 = Instant::now();
        file.write_all_at(&buf, off)?;
        file.sync_data()?;
        h.saturating_record(t0.elapsed().as_nanos() as u64);
        off += buf.len() as u64;
        syncs += 1;
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(path)?;
    Ok(Durable { per_sync: per_sync as u64, rate: Rate::new(syncs * per_sync as u64, payload, elapsed), sync_lat: Lat::of(&h) })
}

/// Opening every file of a finished log the least a reader could: open,
/// mmap read-only, touch the first and last page.
pub fn open_files(dir: &Path) -> Res<Duration> {
    let mut paths = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "seg") && p.is_file() {
            paths.push(p);
        }
    }
    let start = Instant::now();
    let mut acc = 0u8;
    for p in &paths {
        let f = File::open(p)?;
        if f.metadata()?.len() == 0 {
            continue;
        }
        // SAFETY: the log is closed and the files belong to this benchmark's
        // directory; nobody writes or truncates them while mapped.
        let m = unsafe { memmap2::Mmap::map(&f)? };
        acc ^= m[0] ^ m[m.len() - 1];
    }
    std::hint::black_box(acc);
    Ok(start.elapsed())
}
