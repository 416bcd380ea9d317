//! Segment files from birth to seal: preallocate, activate, seal.

use std::fs::File;
use std::path::{Path, PathBuf};

use zerocopy::little_endian::{U32, U64};
use zerocopy::IntoBytes;

use crate::error::{Error, Result};
use crate::format::{
    encode_footer, encode_key_section, segment_file_bytes, segment_file_name, FooterHeader, SegmentHeader, FOOTER_MAGIC,
    INDEX_INTERVAL_BYTES, PREALLOC_SUFFIX,
};
use crate::fs::FileSystem;
use crate::options::Options;
use crate::raw::{LiveMap, MapWriter};
use crate::segment::{content_digest, content_hasher, walk_and_digest, ActiveSegment, Scanned, SealedSegment};
use crate::sync::Arc;

/// A preallocated, pre-faulted file waiting to become the active segment.
pub(crate) struct Prepared {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) map: MapWriter,
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> u64 {
    crate::clock::Clock::Realtime.now_us()
}

/// Creates `path`, reserves a segment's bytes on disk (with room for its
/// footer: [`segment_file_bytes`]) and maps it (off the writer's path).
pub(crate) fn preallocate(fs: &dyn FileSystem, path: &Path, opts: &Options) -> Result<Prepared> {
    let bytes = segment_file_bytes(opts.segment_bytes);
    let file = fs.create(path).map_err(|e| Error::io("create segment", path, e))?;
    let made = (|| {
        fs.allocate(&file, bytes).map_err(|e| Error::io("fallocate", path, e))?;
        let mut map = MapWriter::create(&file, bytes).map_err(|e| Error::io("mmap", path, e))?;
        if opts.zero_fill_enabled() {
            map.no_readahead().map_err(|e| Error::io("madvise", path, e))?;
            // Faulting every page in writable dirties it (zeros); syncing
            // writes them, so the extents count as written and later syncs
            // carry no metadata. The sync leaves the pages write-protected:
            // the prefault below makes them writable again. Synced 1 MiB at
            // a time, so a foreground sync never queues behind 64 MiB of
            // zeros (measured: 10-40 ms stalls with one fdatasync).
            map.prefault();
            let raw = map.shared().raw();
            for from in (0..raw.len()).step_by(ZERO_FILL_CHUNK) {
                let len = ZERO_FILL_CHUNK.min(raw.len() - from);
                fs.sync_map(raw, from, len).map_err(|e| Error::io("msync", path, e))?;
            }
            fs.sync_file(&file).map_err(|e| Error::io("fdatasync", path, e))?;
        }
        if opts.prefault {
            map.prefault();
        }
        Ok(map)
    })();
    match made {
        Ok(map) => Ok(Prepared { path: path.to_path_buf(), file, map }),
        Err(e) => {
            let _ = fs.remove(path);
            Err(e)
        }
    }
}

/// Bytes of a zero-filled segment synced at a time by the preparer.
const ZERO_FILL_CHUNK: usize = 1 << 20;

/// Name of the `n`th preallocated file of this process.
pub(crate) fn prealloc_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}{PREALLOC_SUFFIX}"))
}

/// Gives a prepared file its header and final name. The caller publishes it.
pub(crate) fn activate(fs: &dyn FileSystem, dir: &Path, mut p: Prepared, base_seq: u64) -> Result<(Arc<ActiveSegment>, MapWriter)> {
    let header = SegmentHeader::new(base_seq, now_us(), p.map.shared().len());
    p.map.write_header(header.as_bytes());
    let path = dir.join(segment_file_name(base_seq));
    fs.rename(&p.path, &path).map_err(|e| Error::io("rename segment", &path, e))?;
    let seg = Arc::new(ActiveSegment::new(path, p.file, p.map.shared().clone(), base_seq));
    Ok((seg, p.map))
}

/// Writes footer and trailer after `scan.end`, cuts the file there and
/// makes it durable. Shared by sealing and resealing. `frames_durable` runs
/// after the frames' fdatasync succeeded and before anything else is
/// written; an error from it leaves the segment without a footer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_footer(
    fs: &dyn FileSystem,
    file: &File,
    path: &Path,
    base_seq: u64,
    end_seq: u64,
    scan: &Scanned,
    prev_digest: [u8; 32],
    content_digest: [u8; 32],
    merkle: &[u8],
    frames_durable: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let keys = encode_key_section(&mut scan.keys.clone());
    let footer = FooterHeader {
        magic: FOOTER_MAGIC,
        record_count: U64::new(scan.count),
        base_seq: U64::new(base_seq),
        min_ts: U64::new(scan.min_ts),
        max_ts: U64::new(scan.max_ts),
        frames_end: U64::new(scan.end),
        last_frame_offset: U64::new(scan.last_frame_offset),
        index_count: U32::new(scan.index.len() as u32),
        index_interval: U32::new(INDEX_INTERVAL_BYTES as u32),
        content_digest,
        end_seq: U64::new(end_seq),
        key_count: U32::new(scan.keys.len() as u32),
        keys_bytes: U32::new(keys.len() as u32),
        merkle_bytes: U32::new(merkle.len() as u32),
        merkle_level: if merkle.is_empty() { 0 } else { crate::format::MERKLE_LEVEL as u8 },
        reserved: [0; 3],
    };
    let bytes = encode_footer(&footer, &scan.index, &keys, merkle, prev_digest);
    // Frames first: opening trusts a footer without reading the frames, so
    // the footer must never reach the disk ahead of frames it vouches for
    // (tests/power_loss.rs, power_cut_while_sealing_...). This costs one more
    // fdatasync per segment, on the sealer's thread (or in recovery's reseal,
    // whose frames may still be only in the page cache after a process crash).
    fs.sync_file(file).map_err(|e| Error::io("fdatasync", path, e))?;
    frames_durable()?;
    fs.write_at(file, &bytes, scan.end).map_err(|e| Error::io("write footer", path, e))?;
    fs.set_len(file, scan.end + bytes.len() as u64).map_err(|e| Error::io("truncate sealed segment", path, e))?;
    fs.sync_file(file).map_err(|e| Error::io("fdatasync", path, e))
}

/// Content digest of a live map's header and `frames`.
pub(crate) fn live_content_digest(map: &LiveMap, frames: &[u8]) -> [u8; 32] {
    content_digest(map.header_prefix(), map.header_suffix(), frames)
}

/// Starts writing back a segment the writer has rotated away from, so
/// that the disk works while the sealer walks and hashes it, and the
/// frames' fdatasync waits only for what is left. The writer never writes
/// the segment again: its page-table entries are dropped first, so that
/// write-back needs no TLB flush per page. Advice only: if it fails, that
/// fdatasync does it all. `end` is the segment's final published end.
fn start_write_back(fs: &dyn FileSystem, seg: &ActiveSegment, end: u64) {
    seg.map.drop_page_tables(0, seg.map.len());
    if let Err(e) = fs.start_write_back(&seg.file, 0, end) {
        tracing::debug!(segment = %seg.path.display(), error = %e, "could not start write-back before sealing");
    }
}

/// Seals a segment the writer has rotated away from: verifies its frames
/// against what was published, writes the footer, and reopens it read-only.
/// `frames_durable` confirms, after the frames' own fdatasync, that no other
/// sync of the log failed meanwhile (see `Shared::confirm_no_failed_sync`).
/// With `merkle` (the Merkle tree's frontier at the segment's base), the
/// footer gets a Merkle section, and the frontier is moved to its end.
pub(crate) fn seal(
    fs: &dyn FileSystem,
    seg: &ActiveSegment,
    prev_digest: [u8; 32],
    merkle: Option<&mut crate::proofs::Frontier>,
    frames_durable: &dyn Fn() -> Result<()>,
) -> Result<Arc<SealedSegment>> {
    let (count, end) = seg.committed();
    let frames = seg.map.frames(end);
    start_write_back(fs, seg, end);
    let mut hasher = content_hasher(seg.map.header_prefix(), seg.map.header_suffix());
    let scan = walk_and_digest(frames, seg.base_seq, &mut hasher);
    if scan.count != count || scan.end != end {
        return Err(Error::corrupt(&seg.path, scan.end, format!("sealing found {} valid records, {count} were published", scan.count)));
    }
    let digest = *hasher.finalize().as_bytes();
    let section = match merkle {
        Some(frontier) => crate::proofs::merkle_section(frontier, frames, seg.base_seq).map_err(|e| Error::corrupt(&seg.path, e.0, e.1))?,
        None => Vec::new(),
    };
    write_footer(fs, &seg.file, &seg.path, seg.base_seq, seg.base_seq + count, &scan, prev_digest, digest, &section, frames_durable)?;
    open_sealed(&seg.path, &seg.file)
}

/// Links sealed segment `s` after `prev_digest` in the chain: appends a
/// trailer with the new link (the file only grows, so no byte a reader has
/// mapped changes), syncs it, and maps the file again. A crash before the
/// sync leaves the old trailer or a torn new one; an open then re-links
/// (the compaction marker says to) or reseals.
pub(crate) fn relink(fs: &dyn FileSystem, s: &SealedSegment, prev_digest: [u8; 32]) -> Result<Arc<SealedSegment>> {
    let file = fs.open(&s.path, true).map_err(|e| Error::io("open segment", &s.path, e))?;
    let bytes = s.bytes();
    let at = bytes.len() - crate::format::TRAILER_BYTES as usize;
    let old = <crate::format::Trailer as zerocopy::FromBytes>::read_from_bytes(&bytes[at..])
        .map_err(|_| Error::corrupt(&s.path, at as u64, "trailer unreadable"))?;
    let trailer = old.relinked(prev_digest, crate::format::chain_digest(&prev_digest, &s.content_digest));
    fs.write_at(&file, trailer.as_bytes(), bytes.len() as u64).map_err(|e| Error::io("write trailer", &s.path, e))?;
    fs.sync_file(&file).map_err(|e| Error::io("fdatasync", &s.path, e))?;
    open_sealed(&s.path, &file)
}

/// Maps a just-sealed file read-only; anything but success is corruption.
pub(crate) fn open_sealed(path: &Path, file: &File) -> Result<Arc<SealedSegment>> {
    match SealedSegment::load(path.to_path_buf(), file) {
        Ok(Ok(s)) => Ok(Arc::new(s)),
        Ok(Err(e)) => Err(Error::corrupt(path, 0, format!("footer just written does not read back: {e:?}"))),
        Err(crate::segment::HeaderOutcome::Blank) => Err(Error::corrupt(path, 0, "blank header")),
        Err(crate::segment::HeaderOutcome::Fatal(e)) => Err(e),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::fs::StdFs;

    /// Records write-back starts and syncs, with the file's path.
    #[derive(Debug, Default)]
    struct Recording(std::sync::Mutex<Vec<(String, std::path::PathBuf)>>);

    impl Recording {
        fn note(&self, what: String, file: &File) {
            use std::os::fd::AsRawFd;
            let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default();
            self.0.lock().unwrap().push((what, path));
        }
    }

    impl FileSystem for Recording {
        fn start_write_back(&self, file: &File, offset: u64, len: u64) -> std::io::Result<()> {
            self.note(format!("start {offset}+{len}"), file);
            StdFs.start_write_back(file, offset, len)
        }
        fn sync_file(&self, file: &File) -> std::io::Result<()> {
            self.note("sync".into(), file);
            StdFs.sync_file(file)
        }
    }

    #[test]
    fn sealing_starts_write_back_of_every_frame_before_waiting_for_any() {
        // Goal: the disk starts on a rotated segment's frames before the
        // sealer walks and hashes them, so the frames' fdatasync only waits
        // for what is left. Method: append 100 records through a file
        // system that records calls, roll, close; the first
        // call on the sealed file is a write-back start from 0 to the end of
        // its frames, and a sync follows it.
        let dir = tempfile::tempdir().unwrap();
        let fs = Arc::new(Recording::default());
        let log = crate::Log::open(dir.path(), Options::new().segment_bytes(64 << 10).file_system(fs.clone())).unwrap();
        let mut w = log.writer().unwrap();
        for i in 0..100u64 {
            w.append(&i.to_le_bytes()).unwrap();
        }
        assert!(w.roll().unwrap());
        drop(w);
        log.close().unwrap();
        let first = dir.path().join(crate::format::segment_file_name(0));
        let sealed = SealedSegment::load(first.clone(), &std::fs::File::open(&first).unwrap()).unwrap().unwrap();
        assert_eq!(sealed.count, 100);
        let calls: Vec<String> = fs.0.lock().unwrap().iter().filter(|(_, p)| *p == first).map(|(c, _)| c.clone()).collect();
        let frames_end = sealed.frames_end;
        assert_eq!(calls.first(), Some(&format!("start 0+{frames_end}")), "{calls:?}");
        assert_eq!(calls.get(1).map(String::as_str), Some("sync"), "{calls:?}");
    }

    #[test]
    fn a_refused_confirmation_after_the_frames_sync_leaves_no_footer() {
        // Goal: sealing writes nothing after the frames' fdatasync unless
        // the caller confirms no other sync failed meanwhile (a failed msync
        // may have consumed the write-back error the fdatasync would have
        // reported), so a footer never vouches for frames that did not reach
        // the disk. Method: seal an activated segment with a confirmation
        // that fails: the error comes back, the file keeps its preallocated
        // length and has no trailer; sealing it again with a confirmation
        // that passes cuts it and writes a footer that reads back.
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::new().segment_bytes(64 << 10);
        let prepared = preallocate(&StdFs, &prealloc_path(dir.path(), 0), &opts).unwrap();
        let (seg, _map) = activate(&StdFs, dir.path(), prepared, 0).unwrap();
        let refused = seal(&StdFs, &seg, [0; 32], None, &|| Err(Error::corrupt(&seg.path, 0, "a sync failed meanwhile")));
        assert!(matches!(refused, Err(Error::Corrupt { .. })), "{refused:?}");
        assert_eq!(std::fs::metadata(&seg.path).unwrap().len(), segment_file_bytes(64 << 10), "no footer, no cut");
        assert!(matches!(SealedSegment::load(seg.path.clone(), &seg.file), Ok(Err(_))), "no trailer");
        let sealed = seal(&StdFs, &seg, [0; 32], None, &|| Ok(())).unwrap();
        assert_eq!(sealed.count, 0);
        assert!(std::fs::metadata(&seg.path).unwrap().len() < 64 << 10);
    }
}
