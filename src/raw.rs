//! The only module with `unsafe` code: shared file mappings.
//!
//! A live segment's memory is a [`LiveMap`], shared by the writer and any
//! number of readers. Writing to it needs the one [`MapWriter`] made with it,
//! which is never cloned; so the protocol below is enforced by ownership:
//!
//! * only the `MapWriter` writes, and only at or past the published end
//!   (checked on every write);
//! * the published end only grows, and is stored with `Release` after the
//!   bytes below it are written; readers load it with `Acquire` and form
//!   slices only below it, so they never see a byte being written;
//! * the header page is written before the `LiveMap` is shared, except for the
//!   live committed word, which is only ever accessed atomically and which no
//!   reader slice covers (frame slices start at [`HEADER_BYTES`]);
//! * the mapped files are owned by the engine: nobody else truncates or writes
//!   them while mapped (the multi-process contract in the README). The engine
//!   itself only truncates a segment past its final published end.
//!
//! A read-only opener in another process ([`crate::ReadOnlyLog`]) maps a live
//! segment with [`LiveMap::map_read_only`]: it never writes, reads the
//! committed word the writer mirrors into the header page, and forms slices
//! only below the end it read there (`docs/multi_process.md`).

use std::fs::File;
use std::io;

use memmap2::{Advice, Mmap, MmapOptions, MmapRaw};

use crate::format::{HEADER_BYTES, LIVE_COMMITTED_OFFSET};
use crate::segment::{pack_committed, unpack_committed};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Ordering};

/// The memory of a live segment: a shared writable mapping plus its
/// published position, `pack_committed(count, end)`.
pub(crate) struct LiveMap {
    raw: MmapRaw,
    committed: AtomicU64,
    /// What loom sees of the frame bytes (nothing outside loom).
    cells: Cells,
    /// Mapped read-only from a segment that a writer in another process owns
    /// (see [`LiveMap::map_read_only`]); no `MapWriter` exists for it.
    read_only: bool,
}

/// A hold on a [`LiveMap`] that can only populate its pages (it never reads
/// or writes a byte), so it may run beside the writer from before the
/// header is written: [`MapWriter::write_header`] discounts populators.
pub(crate) struct Populator {
    map: Option<Arc<LiveMap>>,
    /// The writer's count of populators, decremented after `map` is dropped.
    count: Arc<AtomicUsize>,
    /// Everything below this is populated (or was written by the writer).
    frontier: u64,
}

/// What one [`Populator::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PopulateStep {
    /// Populated one more chunk.
    Worked,
    /// Far enough ahead of the writer for now.
    Ahead,
    /// Nothing left to populate (or the kernel cannot).
    Done,
}

impl Populator {
    /// Whether the writer has appended to this map.
    pub(crate) fn started(&self) -> bool {
        self.map.as_ref().is_some_and(|m| m.published().0 > 0)
    }

    /// Populates the next `chunk` bytes, staying at most `lead` bytes past
    /// what the writer has published (pages it already wrote are skipped).
    pub(crate) fn step(&mut self, lead: u64, chunk: u64) -> PopulateStep {
        let Some(map) = &self.map else { return PopulateStep::Done };
        let end = map.published().1;
        self.frontier = self.frontier.max(end & !4095);
        if self.frontier >= map.len() {
            return PopulateStep::Done;
        }
        let target = map.len().min(end + lead);
        if self.frontier >= target {
            return PopulateStep::Ahead;
        }
        let to = target.min(self.frontier + chunk);
        if !map.populate(self.frontier, to) {
            return PopulateStep::Done;
        }
        self.frontier = to;
        PopulateStep::Worked
    }
}

impl Drop for Populator {
    fn drop(&mut self) {
        // The hold goes first, then the count, so that `strong - 1 <=
        // populators` at every moment.
        drop(self.map.take());
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for LiveMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMap").field("len", &self.raw.len()).field("committed", &self.published()).finish()
    }
}

/// The unique right to write a [`LiveMap`].
pub(crate) struct MapWriter {
    map: Arc<LiveMap>,
    /// Live [`Populator`]s of `map`.
    populators: Arc<AtomicUsize>,
}

impl LiveMap {
    /// Drops this process's page-table entries for `from..to` of a segment
    /// the writer has rotated away from (never written again). The bytes
    /// stay in the page cache, dirty ones still to be written back, and any
    /// later access faults the same page back in. Why: writing back a page
    /// that is mapped writable and dirty cleans its entry, one TLB flush per
    /// page, which on this VM is an inter-processor interrupt to the
    /// writer's core for each 4 KiB the sealer syncs (a third of the
    /// sealer's time in a profile); zapping the range flushes once per batch.
    /// A no-op under loom (its maps are anonymous) and for read-only maps.
    pub(crate) fn drop_page_tables(&self, from: u64, to: u64) {
        #[cfg(not(loom))]
        if !self.read_only {
            let from = from.min(self.len()) as usize;
            let to = to.min(self.len()) as usize;
            if to > from {
                // SAFETY: the mapping is a shared mapping of a file (never
                // anonymous outside loom, never private), for which
                // MADV_DONTNEED only removes page-table entries: the data
                // stays in the file's page cache and later reads see the same
                // bytes, so slices readers hold stay valid and unchanged.
                let _ = unsafe { self.raw.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
            }
        }
        #[cfg(loom)]
        let _ = (from, to);
    }

    /// Faults `from..to` in writable (`MADV_POPULATE_WRITE`) without
    /// changing a byte, so it is safe beside the writer and readers of the
    /// same mapping. `false` if the kernel cannot (then the writer's own
    /// first touch of each page faults it in).
    pub(crate) fn populate(&self, from: u64, to: u64) -> bool {
        let from = (from.min(self.len()) as usize) & !4095;
        let to = to.min(self.len()) as usize;
        to <= from || self.raw.advise_range(Advice::PopulateWrite, from, to - from).is_ok()
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.raw.len() as u64
    }

    /// The mapping, for msync.
    pub(crate) fn raw(&self) -> &MmapRaw {
        &self.raw
    }

    /// `(count, end)` published so far.
    #[inline]
    pub(crate) fn published(&self) -> (u64, u64) {
        unpack_committed(self.committed.load(Ordering::Acquire))
    }

    /// The frame area `HEADER_BYTES..end`, with `end` clamped to the published end.
    #[inline]
    pub(crate) fn frames(&self, end: u64) -> &[u8] {
        let end = end.min(self.published().1);
        self.cells.read(end);
        // SAFETY: `end` is at most the published end, loaded with Acquire just
        // now; bytes below it were written before that Release store and are
        // never written again (MapWriter only writes at or past it), and the
        // mapping lives as long as `self`.
        unsafe { self.slice(HEADER_BYTES, end) }
    }

    /// The header page up to (not including) the live committed word.
    pub(crate) fn header_prefix(&self) -> &[u8] {
        // SAFETY: these header bytes are written only before the LiveMap is
        // shared (`MapWriter::create`) and never again.
        unsafe { self.slice(0, LIVE_COMMITTED_OFFSET) }
    }

    /// The header page after the live committed word.
    pub(crate) fn header_suffix(&self) -> &[u8] {
        // SAFETY: as for `header_prefix`.
        unsafe { self.slice(LIVE_COMMITTED_OFFSET + 8, HEADER_BYTES) }
    }

    /// # Safety
    /// Nobody may write `from..to` while the returned slice lives.
    unsafe fn slice(&self, from: u64, to: u64) -> &[u8] {
        let to = (to as usize).min(self.raw.len());
        let from = (from as usize).min(to);
        // SAFETY: `from..to` is inside the mapping; the caller guarantees no writes.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(from), to - from) }
    }

    /// The live committed word in the header page, for readers in other processes.
    fn live_word(&self) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: the word is inside the mapping at a page-aligned base plus a
        // 64-aligned offset (asserted in `format`), so it is aligned for
        // AtomicU64; it is only ever accessed through this atomic (no slice
        // covers it) and lives as long as `self`.
        unsafe { &*(self.raw.as_ptr().add(LIVE_COMMITTED_OFFSET as usize) as *const std::sync::atomic::AtomicU64) }
    }
}

/// Reading a live segment that a writer in another process appends to.
///
/// The other process's `MapWriter::publish` stores the packed committed word
/// into the header page with `Release` after writing the bytes below it, and
/// never writes below a published end again. Through a read-only shared
/// mapping of the same file this process sees those stores; it loads the word
/// (`Relaxed`, then an `Acquire` fence) and forms slices only below the end it
/// read. Sealing truncates the file only past its last published end, so no
/// byte below a published end ever leaves the file (no SIGBUS).
impl LiveMap {
    /// Maps the first `len` bytes of `file` shared and read-only. Nothing is
    /// adopted yet: the published end is `HEADER_BYTES`.
    pub(crate) fn map_read_only(file: &File, len: u64) -> io::Result<Arc<LiveMap>> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("segment larger than the address space"))?;
        if (len as u64) < HEADER_BYTES {
            return Err(io::Error::other("segment shorter than its header"));
        }
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        let cells = Cells::new(raw.len());
        Ok(Arc::new(LiveMap { raw, committed: AtomicU64::new(pack_committed(0, HEADER_BYTES)), cells, read_only: true }))
    }

    /// `(count, end)` as last published by the writer of this segment, in
    /// whatever process it runs, read from the header page. Only meaningful
    /// for read-only maps (a writer's own map answers with `published`).
    pub(crate) fn live_published(&self) -> (u64, u64) {
        // Atomic loads on read-only memory are allowed only with `Relaxed`;
        // the fence turns it into an acquire of the writer's Release store.
        let word = self.live_word().load(std::sync::atomic::Ordering::Relaxed);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        unpack_committed(word)
    }

    /// The frame area `HEADER_BYTES..end` of a read-only map, with `end`
    /// clamped to the mapping, without looking at the adopted position.
    ///
    /// The caller passes an `end` that the segment's writer has published
    /// (from [`LiveMap::live_published`]), or the segment is one no writer
    /// appends to any more (the writer moved on to a later segment, or none
    /// is running). Panics on a writer's own map.
    pub(crate) fn foreign_frames(&self, end: u64) -> &[u8] {
        assert!(self.read_only, "foreign_frames on a writable map");
        self.cells.read(end);
        // SAFETY: read-only map (checked): nothing in this process writes it.
        // The writer of another process never writes below an end it has
        // published (the caller's contract) and the file is never cut below
        // it; a segment no writer appends to is not written at all, except by
        // a sealer/recovery writing its footer past the last frame, where a
        // reader at most decodes a frame header that fails its checks.
        unsafe { self.slice(HEADER_BYTES, end) }
    }

    /// Makes `(count, end)`, published by the writer of another process and
    /// checked by the caller, the position readers of this map see. The
    /// position only grows. Panics on a writer's own map.
    pub(crate) fn adopt(&self, count: u64, end: u64) {
        assert!(self.read_only, "adopt on a writable map");
        let end = end.clamp(HEADER_BYTES, self.len());
        let (_, old_end) = self.published();
        if end >= old_end {
            self.committed.store(pack_committed(count, end), Ordering::Release);
        }
    }
}

impl MapWriter {
    /// Maps the first `len` bytes of `file` shared and writable. Nothing is
    /// published yet: the published end is `HEADER_BYTES`.
    pub(crate) fn create(file: &File, len: u64) -> io::Result<MapWriter> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("segment larger than the address space"))?;
        if (len as u64) < HEADER_BYTES {
            return Err(io::Error::other("segment shorter than its header"));
        }
        let raw = MmapOptions::new().len(len).map_raw(file)?;
        Ok(MapWriter::over(raw))
    }

    /// A writer over an anonymous mapping of `len` bytes, for the loom
    /// models (the publication protocol does not depend on a file).
    #[cfg(loom)]
    pub(crate) fn anonymous(len: u64) -> io::Result<MapWriter> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("too large"))?;
        if (len as u64) < HEADER_BYTES {
            return Err(io::Error::other("segment shorter than its header"));
        }
        Ok(MapWriter::over(MmapRaw::from(MmapOptions::new().len(len).map_anon()?)))
    }

    fn over(raw: MmapRaw) -> MapWriter {
        let cells = Cells::new(raw.len());
        let map = Arc::new(LiveMap { raw, committed: AtomicU64::new(pack_committed(0, HEADER_BYTES)), cells, read_only: false });
        MapWriter { map, populators: Arc::new(AtomicUsize::new(0)) }
    }

    /// Writes the segment header at the start of the page. Only possible
    /// while the map is not yet shared with anyone (panics otherwise).
    pub(crate) fn write_header(&mut self, header: &[u8]) {
        // The populator count first, then the holds: a populator's count
        // rises before its hold and falls after it, and none can be made
        // now (that needs this `MapWriter`), so a count read first bounds
        // the holds read after it. Read the other way round, a populator
        // dropped between the two reads looks like a foreign holder.
        let (populators, others) = self.header_holders();
        assert!(others <= populators && header.len() as u64 <= LIVE_COMMITTED_OFFSET);
        // SAFETY: the map is not shared with anyone who reads it (every other
        // holder is a `Populator`, which only faults pages in, and we hold
        // `&mut`), so nobody can read these bytes; the header ends before the
        // live word.
        unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), self.map.raw.as_mut_ptr(), header.len()) }
    }

    /// Live populators, then holders of the map besides this writer: in
    /// that order (see `write_header`).
    #[cfg(not(all(loom, feature = "loom-mutant-populator")))]
    fn header_holders(&self) -> (usize, usize) {
        let populators = self.populators.load(Ordering::SeqCst);
        (populators, Arc::strong_count(&self.map) - 1)
    }

    /// The `loom-mutant-populator` feature reads them the other way round,
    /// under loom only, to prove the populator model catches that order.
    #[cfg(all(loom, feature = "loom-mutant-populator"))]
    fn header_holders(&self) -> (usize, usize) {
        let others = Arc::strong_count(&self.map) - 1;
        (self.populators.load(Ordering::SeqCst), others)
    }

    /// A [`Populator`] of this map, for the preparer thread.
    pub(crate) fn populator(&self) -> Populator {
        // The count goes up before the hold (see `Populator::drop`).
        self.populators.fetch_add(1, Ordering::SeqCst);
        Populator { map: Some(self.map.clone()), count: self.populators.clone(), frontier: 0 }
    }

    /// Turns readahead off for faults through this mapping, for writers that
    /// sync small ranges. Readahead fills the page cache with large folios
    /// (up to 2 MiB with this disk's 8 MiB window) and dirtiness is tracked
    /// per folio, so a sync of a few KiB wrote back up to 2 MiB (measured
    /// ~0.9 MB per 100-record sync). Without it pages stay 4 KiB, at the
    /// cost of populating a segment about twice as slowly (17 -> 35 ms).
    pub(crate) fn no_readahead(&self) -> io::Result<()> {
        self.map.raw.advise(Advice::Random)
    }

    /// The shared side, for readers.
    pub(crate) fn shared(&self) -> &Arc<LiveMap> {
        &self.map
    }

    /// Faults every page in writable, so the writer does not pay page faults.
    /// Falls back to touching each unpublished page where `MADV_POPULATE_WRITE`
    /// is missing.
    pub(crate) fn prefault(&mut self) {
        if self.map.raw.advise(Advice::PopulateWrite).is_ok() {
            return;
        }
        let (_, end) = self.map.published();
        let start = end.next_multiple_of(4096) as usize;
        for off in (start..self.map.raw.len()).step_by(4096) {
            // SAFETY: `off` is in bounds and past the published end, so no
            // reader looks at it; a volatile read and write back of the same
            // byte changes nothing but faults the page in writable.
            unsafe {
                let p = self.map.raw.as_mut_ptr().add(off);
                p.write_volatile(p.read_volatile());
            }
        }
    }

    /// The unpublished bytes `offset..offset+len`, to be filled in place
    /// (a frame is laid down and checksummed here before it is published).
    /// `offset` must be at or past the published end (panics otherwise).
    #[inline]
    pub(crate) fn unpublished(&mut self, offset: u64, len: u64) -> &mut [u8] {
        let (_, end) = unpack_committed(self.map.committed.load(Ordering::Relaxed));
        let stop = offset.checked_add(len);
        assert!(offset >= end && stop.is_some_and(|s| s <= self.map.len()), "write outside the unpublished area");
        self.map.cells.write(offset, offset + len);
        // SAFETY: in bounds (checked above) and at or past the published end,
        // so no reader slice covers it (readers clamp to the published end,
        // and publishing needs `&mut self`, which the returned borrow holds);
        // the only writer is `self`. `end >= HEADER_BYTES`, so the range never
        // touches the header or its live word.
        unsafe { std::slice::from_raw_parts_mut(self.map.raw.as_mut_ptr().add(offset as usize), len as usize) }
    }

    /// Zeroes `offset..offset+len`, under the same rule as [`MapWriter::unpublished`].
    pub(crate) fn zero(&mut self, offset: u64, len: u64) {
        self.unpublished(offset, len).fill(0);
    }

    /// Bytes `HEADER_BYTES..to` including unpublished ones, for recovery to
    /// scan before anything is published. Borrowing `self` keeps `write` out.
    pub(crate) fn all_frames(&self, to: u64) -> &[u8] {
        self.map.cells.read(to);
        // SAFETY: writes need `&mut self`, which this borrow excludes; readers
        // only read.
        unsafe { self.map.slice(HEADER_BYTES, to) }
    }

    /// Publishes `count` records ending at `end`: one `Release` store, plus
    /// the same value into the header page for readers in other processes.
    #[inline]
    pub(crate) fn publish(&mut self, count: u64, end: u64) {
        debug_assert!(end >= self.map.published().1 && end <= self.map.len());
        let word = pack_committed(count, end);
        self.map.committed.store(word, PUBLISH_ORDERING);
        self.map.live_word().store(word, std::sync::atomic::Ordering::Release);
    }
}

/// The ordering of the publishing store. The `loom-mutant` feature weakens
/// it to `Relaxed` under loom only, to prove the models catch a wrong ordering.
#[cfg(not(all(loom, feature = "loom-mutant")))]
const PUBLISH_ORDERING: Ordering = Ordering::Release;
#[cfg(all(loom, feature = "loom-mutant"))]
const PUBLISH_ORDERING: Ordering = Ordering::Relaxed;

/// What loom sees of a live map's frame bytes: one cell per 8-byte word of
/// the frame area, read by every reader slice and written by every write.
/// Loom cannot see plain stores into a mapping; through these cells it
/// reports any read of frame bytes not ordered after their writing (a
/// publication that comes too early or is too weak). Empty outside loom.
#[cfg(loom)]
struct Cells(Box<[Tracked]>);

/// One loom-checked cell without data.
#[cfg(loom)]
pub(crate) struct Tracked(crate::sync::UnsafeCell<()>);

// SAFETY: the cell holds no data (`()`); it only records accesses, and every
// access goes through loom's `with`/`with_mut`, which check them for races.
#[cfg(loom)]
unsafe impl Sync for Tracked {}
// SAFETY: as above.
#[cfg(loom)]
unsafe impl Send for Tracked {}

#[cfg(loom)]
impl Tracked {
    pub(crate) fn new() -> Tracked {
        Tracked(crate::sync::UnsafeCell::new(()))
    }
    pub(crate) fn read(&self) {
        self.0.with(|_| ())
    }
    pub(crate) fn write(&self) {
        self.0.with_mut(|_| ())
    }
}

#[cfg(loom)]
impl Cells {
    fn new(map_len: usize) -> Cells {
        let words = map_len.saturating_sub(HEADER_BYTES as usize).div_ceil(8);
        Cells((0..words).map(|_| Tracked::new()).collect())
    }

    /// Cells of the words overlapping file offsets `from..to`.
    fn words(&self, from: u64, to: u64) -> &[Tracked] {
        let first = (from.saturating_sub(HEADER_BYTES) / 8) as usize;
        let last = (to.saturating_sub(HEADER_BYTES).div_ceil(8) as usize).min(self.0.len());
        self.0.get(first.min(last)..last).unwrap_or(&[])
    }

    /// Records a read of the frame bytes below `to`.
    fn read(&self, to: u64) {
        self.words(HEADER_BYTES, to).iter().for_each(Tracked::read);
    }

    /// Records a write of `from..to`.
    fn write(&self, from: u64, to: u64) {
        self.words(from, to).iter().for_each(Tracked::write);
    }
}

#[cfg(not(loom))]
struct Cells;

#[cfg(not(loom))]
impl Cells {
    #[inline(always)]
    fn new(_: usize) -> Cells {
        Cells
    }
    #[inline(always)]
    fn read(&self, _: u64) {}
    #[inline(always)]
    fn write(&self, _: u64, _: u64) {}
}

/// A read-only mapping of a whole sealed segment file.
pub(crate) struct ReadMap {
    map: Option<Mmap>,
    /// Under loom: read by every access, written by the unmapping, so that a
    /// read racing with the drop of the last reference is reported.
    #[cfg(loom)]
    alive: Tracked,
}

impl ReadMap {
    /// Maps all of `file` read-only.
    pub(crate) fn map(file: &File) -> io::Result<ReadMap> {
        if file.metadata()?.len() == 0 {
            return Ok(ReadMap::of(None));
        }
        // SAFETY: segment files are owned by the engine: no byte of a sealed
        // file is written again or truncated away while the log is open
        // (README contract). Compaction only appends to one (a re-link's
        // trailer, past the length mapped here) or replaces it by a rename
        // (this mapping keeps the old inode), so the mapped bytes do not
        // change under the returned slices.
        let map = unsafe { Mmap::map(file)? };
        Ok(ReadMap::of(Some(map)))
    }

    fn of(map: Option<Mmap>) -> ReadMap {
        ReadMap {
            map,
            #[cfg(loom)]
            alive: Tracked::new(),
        }
    }

    /// The whole file.
    pub(crate) fn bytes(&self) -> &[u8] {
        #[cfg(loom)]
        self.alive.read();
        self.map.as_deref().unwrap_or(&[])
    }
}

#[cfg(loom)]
impl Drop for ReadMap {
    fn drop(&mut self) {
        self.alive.write();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_populator_stays_its_lead_ahead_of_the_writer_and_never_blocks_the_header() {
        // Goal: the preparer's populator works only up to `lead` bytes past
        // what the writer published, resumes as the writer advances, stops
        // at the end of the map, and its hold does not trip the writer's
        // "nobody reads the map yet" check when the header is written.
        // Method: a 1 MiB file mapping; step with a 256 KiB lead and 64 KiB
        // chunks; write the header while the populator lives; publish past
        // the lead and step again; step to the end.
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(dir.path().join("seg")).unwrap();
        file.set_len(1 << 20).unwrap();
        let mut w = MapWriter::create(&file, 1 << 20).unwrap();
        let mut p = w.populator();
        let (lead, chunk) = (256 << 10, 64 << 10);
        let mut worked = 0;
        while p.step(lead, chunk) == PopulateStep::Worked {
            worked += 1;
            assert!(worked < 100, "populator never stops");
        }
        assert_eq!(p.step(lead, chunk), PopulateStep::Ahead);
        assert_eq!(p.frontier, HEADER_BYTES + lead, "populated exactly its lead past the published end");
        assert!(!p.started());
        w.write_header(&[1u8; 64]);
        w.publish(1, 512 << 10);
        assert!(p.started());
        assert_eq!(p.step(lead, chunk), PopulateStep::Worked);
        assert_eq!(p.frontier, (512 << 10) + chunk, "skips what the writer wrote, then goes on");
        while p.step(lead, chunk) == PopulateStep::Worked {}
        w.publish(2, (1 << 20) - 8);
        while p.step(lead, chunk) == PopulateStep::Worked {}
        assert_eq!(p.step(lead, chunk), PopulateStep::Done);
        drop(p);
        assert_eq!(w.populators.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
