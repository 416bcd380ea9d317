//! Opening a log directory: trust sealed segments through their footers,
//! reseal segments whose sealing was cut short, and cut the active segment
//! back to its longest valid prefix.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{chain_digest, parse_segment_file_name, SegmentHeader, FOOTER_MAGIC, HEADER_BYTES, KEY_RESERVE_BYTES, PREALLOC_SUFFIX};
use crate::fs::FileSystem;
use crate::keys::compact::{COMPACT_MARKER, COMPACT_SUFFIX};
use crate::lifecycle::{live_content_digest, now_us, open_sealed, preallocate, relink, write_footer};
use crate::options::{Options, RecoveryMode};
use crate::raw::{MapWriter, ReadMap};
use crate::segment::view::frame_error;
use crate::segment::{check_header, scan_compacted, scan_frames, ActiveSegment, HeaderOutcome, ScanStop, Scanned, SealedSegment, Segment};
use crate::snapshot::State;
use crate::sync::{Arc, Ordering};
use crate::writer::WriterState;

/// What opening found and did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segment files in the log after opening.
    pub segments: usize,
    /// Of those, sealed ones trusted through their footers.
    pub sealed_segments: usize,
    /// Records in the log after opening.
    pub records: u64,
    /// Segments whose sealing was cut short and were rescanned and resealed.
    pub resealed: Vec<PathBuf>,
    /// Bytes past the valid prefix that were zeroed (torn writes, incomplete batches).
    pub bytes_discarded: u64,
    /// Where the log was cut back, if it was: segment file and offset.
    pub truncated_at: Option<(PathBuf, u64)>,
    /// Files removed: blank segments and segments after a cut that hold no
    /// valid frame (none of which could hold an acknowledged-durable
    /// record). A file holding frames is moved aside instead, never removed.
    pub removed: Vec<PathBuf>,
    /// Spare preallocated files the last process left (they never hold
    /// records). Open does not wait for them: the background preparer
    /// removes them right after open (unlinking a populated 64 MiB file
    /// costs ~5 ms each here).
    pub spares: Vec<PathBuf>,
    /// Segment files moved into `<dir>/damaged/` (their new paths): damaged
    /// files a [`RecoveryMode::Salvage`] open set aside, and files after a
    /// cut that still held frames no completed sync covered.
    pub moved_aside: Vec<PathBuf>,
    /// Seq ranges no longer readable because their segment was moved aside.
    pub gaps: Vec<std::ops::Range<u64>>,
    /// Sealed segments linked again into the digest chain, finishing a
    /// compaction that a crash interrupted ([`crate::Log::compact`]).
    pub relinked: Vec<PathBuf>,
    /// How long opening took.
    pub duration: Duration,
}

/// The result of recovery: the segments, and the writer's position.
pub(crate) struct Recovered {
    pub(crate) state: State,
    pub(crate) active: Arc<ActiveSegment>,
    pub(crate) map: MapWriter,
    pub(crate) writer: WriterState,
    pub(crate) last_digest: [u8; 32],
    pub(crate) report: RecoveryReport,
}

struct Recovery<'a> {
    dir: &'a Path,
    opts: &'a Options,
    report: RecoveryReport,
    segments: Vec<Segment>,
    prev_digest: [u8; 32],
    expected: Option<u64>,
    /// A salvaging open skipped a gap: the digest chain cannot link across it.
    after_gap: bool,
    /// A compaction was re-linking the chain when the last process stopped:
    /// stale links are finished, not damage.
    relinking: bool,
}

/// A segment as the next one links to it: `(its end seq, its digest)`.
pub(crate) type ChainLink = (u64, [u8; 32]);

/// Recovers the log in `dir` (which must be locked by the caller). `before`
/// is the last segment before the local ones, if one is held elsewhere (a
/// tiered log's evicted segments): `(its end seq, its digest)`, so that the
/// first local segment links to it and a segment sealed now chains after it.
pub(crate) fn recover(dir: &Path, opts: &Options, before: Option<ChainLink>) -> Result<Recovered> {
    let started = Instant::now();
    let fs = &*opts.fs;
    let mut files = Vec::new();
    let names = fs.list(dir).map_err(|e| Error::io("list directory", dir, e))?;
    let mut rec = Recovery {
        dir,
        opts,
        report: RecoveryReport::default(),
        segments: Vec::new(),
        prev_digest: before.map_or([0; 32], |(_, digest)| digest),
        expected: before.map(|(end, _)| end),
        after_gap: false,
        relinking: false,
    };
    for name in names {
        let path = dir.join(&name);
        if name.ends_with(PREALLOC_SUFFIX) {
            rec.report.spares.push(path);
        } else if name == COMPACT_MARKER {
            rec.relinking = true;
        } else if name.ends_with(COMPACT_SUFFIX) && name.strip_suffix(COMPACT_SUFFIX).and_then(parse_segment_file_name).is_some() {
            // A compaction's output not yet renamed over its segment: a
            // copy of some of that segment's frames, which is still whole.
            fs.remove(&path).map_err(|e| Error::io("remove unfinished compaction", &path, e))?;
            rec.report.removed.push(path);
        } else if let Some(base) = parse_segment_file_name(&name) {
            files.push((base, path));
        }
    }
    files.sort();
    let mut active = None;
    let mut i = 0;
    while i < files.len() {
        let later = &files[i + 1..];
        match rec.segment(&files[i].1, files[i].0, later) {
            Ok(Step::Sealed) => i += 1,
            Ok(Step::Active(a)) => {
                active = Some(a);
                rec.discard(later)?;
                break;
            }
            Ok(Step::CutHere) => {
                rec.discard(&files[i..])?;
                break;
            }
            Err(e) if rec.salvageable(&e) && rec.any_records(later) => {
                tracing::warn!(segment = %files[i].1.display(), error = %e, "moving a damaged segment aside");
                rec.move_aside(&files[i].1)?;
                rec.expected.get_or_insert(files[i].0);
                i += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let (seg, map, writer) = match active {
        Some(a) => a,
        None => rec.fresh_segment()?,
    };
    rec.segments.push(Segment::Live(seg.clone()));
    if rec.relinking {
        let marker = dir.join(COMPACT_MARKER);
        fs.remove(&marker).map_err(|e| Error::io("remove compaction marker", &marker, e))?;
        rec.report.removed.push(marker);
    }
    if !rec.report.removed.is_empty() || !rec.report.moved_aside.is_empty() {
        fs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    let first = rec.segments.first().map_or(0, |s| s.base_seq());
    rec.report.segments = rec.segments.len();
    rec.report.records = seg.base_seq + writer.count - first;
    rec.report.duration = started.elapsed();
    let r = &rec.report;
    if r.bytes_discarded > 0 || !r.resealed.is_empty() || r.truncated_at.is_some() || !r.moved_aside.is_empty() {
        tracing::warn!(
            dir = %dir.display(),
            resealed = r.resealed.len(),
            bytes_discarded = r.bytes_discarded,
            removed = r.removed.len(),
            moved_aside = r.moved_aside.len(),
            gaps = ?r.gaps,
            truncated_at = ?r.truncated_at,
            "recovered log after an unclean shutdown"
        );
    }
    tracing::info!(dir = %dir.display(), segments = r.segments, records = r.records, took_us = r.duration.as_micros() as u64, "opened log");
    Ok(Recovered { state: State::new(rec.segments), active: seg, map, writer, last_digest: rec.prev_digest, report: rec.report })
}

type Active = (Arc<ActiveSegment>, MapWriter, WriterState);

enum Step {
    Sealed,
    Active(Active),
    /// Nothing usable from this segment on (tolerant mode only).
    CutHere,
}

impl Recovery<'_> {
    fn fs(&self) -> &dyn FileSystem {
        &*self.opts.fs
    }

    fn strict(&self) -> bool {
        self.opts.recovery_mode == RecoveryMode::Strict
    }

    fn segment(&mut self, path: &Path, name_base: u64, later: &[(u64, PathBuf)]) -> Result<Step> {
        let next_base = later.first().map(|f| f.0);
        let file = self.fs().open(path, true).map_err(|e| Error::io("open segment", path, e))?;
        match SealedSegment::load(path.to_path_buf(), &file) {
            Err(HeaderOutcome::Fatal(e)) => Err(e),
            Err(HeaderOutcome::Blank) => {
                // A header that never reached the disk means no sync ever
                // covered this segment (every sync includes the header page),
                // nor any later one (syncs go oldest first). Unless a later
                // segment holds records: then this is damage, not a crash,
                // and cutting here would drop them.
                if self.any_records(later) {
                    return Err(Error::corrupt(path, 0, "blank segment header, but a later segment holds records"));
                }
                if self.strict() && next_base.is_some() {
                    return Err(Error::corrupt(path, 0, "blank segment header in the middle of the log"));
                }
                self.report.truncated_at.get_or_insert((path.to_path_buf(), 0));
                Ok(Step::CutHere)
            }
            Ok(Ok(sealed)) => {
                self.check_base(path, name_base, sealed.base_seq)?;
                let linked = self.expected.is_some() && !self.after_gap;
                let sealed = if self.relinking && linked && sealed.prev_digest != self.prev_digest {
                    self.report.relinked.push(path.to_path_buf());
                    relink(self.fs(), &sealed, self.prev_digest)?
                } else {
                    Arc::new(sealed)
                };
                if self.strict() {
                    self.strict_check(&sealed)?;
                }
                self.prev_digest = sealed.digest;
                self.expected = Some(sealed.end_seq());
                self.report.sealed_segments += 1;
                self.segments.push(Segment::Sealed(sealed));
                Ok(Step::Sealed)
            }
            Ok(Err(_missing_or_damaged)) => self.unsealed(path, file, name_base, later),
        }
    }

    fn check_base(&mut self, path: &Path, name_base: u64, base: u64) -> Result<()> {
        if base != name_base {
            return Err(Error::corrupt(path, 0, format!("file name says base seq {name_base}, header says {base}")));
        }
        match self.expected {
            // Salvage keeps the segments on both sides of a gap and says so.
            Some(e) if e < base && self.opts.recovery_mode == RecoveryMode::Salvage => {
                self.report.gaps.push(e..base);
                self.after_gap = true;
                Ok(())
            }
            Some(e) if e != base => Err(Error::corrupt(path, 0, format!("segment starts at seq {base}, previous segment ends at {e}"))),
            _ => Ok(()),
        }
    }

    /// Full check of a sealed segment: every frame, the digest and the chain.
    fn strict_check(&self, s: &SealedSegment) -> Result<()> {
        let scan = scan_sealed(s.frames(), s.base_seq, s.compacted, s.end_seq);
        check_footer_against_frames(&s.path, &FooterClaims::of_sealed(s), &scan)?;
        if self.expected.is_some() && !self.after_gap && s.prev_digest != self.prev_digest {
            return Err(Error::corrupt(&s.path, s.frames_end, "digest chain broken: previous segment digest differs"));
        }
        if s.compute_content_digest() != s.content_digest || chain_digest(&s.prev_digest, &s.content_digest) != s.digest {
            return Err(Error::corrupt(&s.path, s.frames_end, "segment digest mismatch"));
        }
        Ok(())
    }

    /// A segment without a usable footer: reseal it if the next segment
    /// continues where its frames end, otherwise it is the active segment.
    fn unsealed(&mut self, path: &Path, file: File, name_base: u64, later: &[(u64, PathBuf)]) -> Result<Step> {
        let next_base = later.first().map(|f| f.0);
        let len = file.metadata().map_err(|e| Error::io("stat segment", path, e))?.len();
        let mut map = MapWriter::create(&file, len).map_err(|e| Error::io("mmap", path, e))?;
        if self.opts.zero_fill_enabled() {
            map.no_readahead().map_err(|e| Error::io("madvise", path, e))?;
        }
        let header = match check_header(path, map.shared().header_prefix()) {
            Ok(h) => h,
            Err(HeaderOutcome::Fatal(e)) => return Err(e),
            Err(HeaderOutcome::Blank) => return Ok(Step::CutHere),
        };
        let base = header.base_seq.get();
        self.check_base(path, name_base, base)?;
        if header.is_compacted() {
            return self.reseal_compacted(path, &file, map, base, next_base);
        }
        // The frame scan (CRC per frame) and the search for stray bytes past
        // the frames (the whole unwritten rest of the file) are independent
        // reads of the same bytes: run them on two threads, which halves
        // the usual reopen of a partly filled 64 MiB segment.
        let all = map.all_frames(len);
        // If no thread can be started, the search runs here after the scan.
        let (scan, last_nonzero) = std::thread::scope(|s| {
            let stray = std::thread::Builder::new().name("varvelog-open".into()).spawn_scoped(s, || last_nonzero(all)).ok();
            let scan = scan_frames(all, base);
            let found = match stray {
                Some(t) => t.join().ok(),
                None => Some(last_nonzero(all)),
            };
            (scan, found)
        });
        let last_nonzero = last_nonzero.ok_or_else(|| Error::io("scan segment", path, std::io::Error::other("scan thread panicked")))?;
        if let Some(next) = next_base {
            if base + scan.count == next {
                let frames = map.all_frames(scan.end);
                let digest = live_content_digest(map.shared(), frames);
                drop(map);
                // No writer runs during recovery: nothing else syncs.
                write_footer(self.fs(), &file, path, base, next, &scan, self.prev_digest, digest, &[], &|| Ok(()))?;
                let sealed = open_sealed(path, &file)?;
                self.prev_digest = sealed.digest;
                self.expected = Some(next);
                self.report.resealed.push(path.to_path_buf());
                self.segments.push(Segment::Sealed(sealed));
                return Ok(Step::Sealed);
            }
            // Frames end before the next segment starts. After a crash that
            // only happens to a segment the writer rotated away from before
            // any sync covered its tail, and then no later record was synced
            // either, so cutting the log here loses nothing acknowledged.
            // It cannot explain a file that sealing already cut to length,
            // nor a later segment that is sealed (sealing goes in order):
            // those are damage, and damage is reported, never cut away.
            if self.strict() || len != header.capacity.get() || self.any_sealed(later) || self.after_gap {
                return Err(stop_error(path, &scan));
            }
        }
        let garbage_end = last_nonzero.filter(|&e| e > scan.end);
        if let Some(g) = garbage_end {
            let torn_seal = map.all_frames(len).get((scan.end - HEADER_BYTES) as usize..).is_some_and(|b| b.starts_with(&FOOTER_MAGIC));
            if self.strict() && !torn_seal {
                return Err(stop_error(path, &scan));
            }
            map.zero(scan.end, g - scan.end);
            self.report.bytes_discarded += g - scan.end;
            self.report.truncated_at = Some((path.to_path_buf(), scan.end));
        } else if next_base.is_some() {
            self.report.truncated_at = Some((path.to_path_buf(), scan.end));
        }
        map.publish(scan.count, scan.end);
        // Zeroed bytes and whatever the last process left unsynced become
        // durable now, so the recovered prefix is what the next crash sees.
        // Only that range: fdatasync of the whole file would also write back
        // the pre-faulted zero pages past it (measured: 37 ms of a 64 ms open).
        let sync_end = garbage_end.unwrap_or(scan.end).max(scan.end);
        self.fs().sync_map(map.shared().raw(), 0, sync_end as usize).map_err(|e| Error::io("msync", path, e))?;
        let seg = Arc::new(ActiveSegment::new(path.to_path_buf(), file, map.shared().clone(), base));
        seg.index.fill(&scan.index);
        seg.fill_keys(&scan.keys);
        seg.synced_end.store(scan.end, Ordering::Release);
        let writer = WriterState {
            key_reserve: KEY_RESERVE_BYTES * scan.keys.len() as u64,
            count: scan.count,
            tail: scan.end,
            prev_len: scan.last_frame_len,
            next_index_at: scan.next_index_at,
            max_ts: scan.max_ts,
        };
        self.expected = Some(base + scan.count);
        Ok(Step::Active((seg, map, writer)))
    }

    /// A segment compaction wrote whose trailer is not valid: a re-link's
    /// appended trailer torn by a crash, or damage (it was sealed before it
    /// was renamed into place). Its frames, up to the first invalid one or
    /// the old footer, are rescanned and its footer written again, covering
    /// seqs up to the next segment. Compaction never writes the last
    /// segment, so without a next one this is reported, not guessed.
    fn reseal_compacted(&mut self, path: &Path, file: &File, map: MapWriter, base: u64, next: Option<u64>) -> Result<Step> {
        let Some(next) = next else {
            return Err(Error::corrupt(path, 0, "a compacted segment without a footer at the end of the log"));
        };
        let len = map.shared().len();
        let all = map.all_frames(len);
        let scan = scan_compacted(all, base, next);
        // A re-link appends a trailer; a crash can leave that append torn
        // after a whole footer: the frames then end where the footer starts.
        let at_footer = all.get((scan.end - HEADER_BYTES) as usize..).is_some_and(|b| b.starts_with(&FOOTER_MAGIC));
        if !(scan.stop == ScanStop::End || at_footer) {
            return Err(stop_error(path, &scan));
        }
        let digest = live_content_digest(map.shared(), map.all_frames(scan.end));
        drop(map);
        write_footer(self.fs(), file, path, base, next, &scan, self.prev_digest, digest, &[], &|| Ok(()))?;
        let sealed = open_sealed(path, file)?;
        self.prev_digest = sealed.digest;
        self.expected = Some(next);
        self.report.resealed.push(path.to_path_buf());
        self.segments.push(Segment::Sealed(sealed));
        Ok(Step::Sealed)
    }

    /// Whether any of `files` is a sealed segment (valid trailer and footer).
    fn any_sealed(&self, files: &[(u64, PathBuf)]) -> bool {
        files.iter().any(|(_, path)| {
            let Ok(file) = self.fs().open(path, false) else { return false };
            matches!(SealedSegment::load(path.clone(), &file), Ok(Ok(_)))
        })
    }

    /// Whether any of `files` may hold records: a valid frame where the
    /// first frame of a segment with its base seq belongs (with or without
    /// a valid header), or a header that is neither blank nor valid
    /// (damage is never assumed empty).
    fn any_records(&self, files: &[(u64, PathBuf)]) -> bool {
        files.iter().any(|(base, path)| {
            let Ok(file) = self.fs().open(path, false) else { return true };
            let Ok(map) = ReadMap::map(&file) else { return true };
            let bytes = map.bytes();
            if let Err(HeaderOutcome::Fatal(_)) = check_header(path, bytes) {
                return true;
            }
            bytes.get(HEADER_BYTES as usize..).is_some_and(|frames| scan_frames(frames, *base).count > 0)
        })
    }

    /// Errors a salvaging open answers by moving the segment aside: damage
    /// to its bytes, not I/O failures or a newer format.
    fn salvageable(&self, e: &Error) -> bool {
        self.opts.recovery_mode == RecoveryMode::Salvage && (e.is_corruption() || matches!(e, Error::NotALog { .. }))
    }

    /// Moves a segment file into `<dir>/damaged/` (never unlinks it).
    fn move_aside(&mut self, path: &Path) -> Result<()> {
        let aside = self.dir.join(DAMAGED_DIR);
        self.fs().create_dir_all(&aside).map_err(|e| Error::io("create directory", &aside, e))?;
        let name = path.file_name().map_or_else(|| "segment".into(), |n| n.to_string_lossy().into_owned());
        let mut to = aside.join(&name);
        let mut n = 1;
        while to.exists() {
            to = aside.join(format!("{name}.{n}"));
            n += 1;
        }
        self.fs().rename(path, &to).map_err(|e| Error::io("move damaged segment aside", path, e))?;
        self.fs().sync_dir(&aside).map_err(|e| Error::io("fsync directory", &aside, e))?;
        self.report.moved_aside.push(to);
        Ok(())
    }

    /// Gets rid of the segments after a cut, none of which a completed sync
    /// can have covered. Each must first show a valid (or blank) segment
    /// header: a foreign, damaged or future-version file that merely has a
    /// segment name is refused with its typed error, never touched. Files
    /// that hold no record are removed; a file that holds valid frames is
    /// moved aside into `<dir>/damaged/`, never unlinked.
    fn discard(&mut self, files: &[(u64, PathBuf)]) -> Result<()> {
        for (_, path) in files {
            let file = self.fs().open(path, false).map_err(|e| Error::io("open segment", path, e))?;
            let mut page = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(&file, HEADER_BYTES), &mut page)
                .map_err(|e| Error::io("read segment header", path, e))?;
            if let Err(HeaderOutcome::Fatal(e)) = check_header(path, &page) {
                return Err(e);
            }
        }
        for f in files {
            if self.any_records(std::slice::from_ref(f)) {
                self.move_aside(&f.1)?;
            } else {
                self.fs().remove(&f.1).map_err(|e| Error::io("remove segment", &f.1, e))?;
                self.report.removed.push(f.1.clone());
            }
        }
        Ok(())
    }

    /// Creates the first segment of an empty log, or a new active segment
    /// after a sealed last one.
    fn fresh_segment(&mut self) -> Result<Active> {
        let base = self.expected.unwrap_or(0);
        let path = self.dir.join(crate::format::segment_file_name(base));
        let mut p = preallocate(self.fs(), &path, self.opts)?;
        let header = SegmentHeader::new(base, now_us(), p.map.shared().len());
        p.map.write_header(zerocopy::IntoBytes::as_bytes(&header));
        self.fs().sync_dir(self.dir).map_err(|e| Error::io("fsync directory", self.dir, e))?;
        let seg = Arc::new(ActiveSegment::new(path, p.file, p.map.shared().clone(), base));
        Ok((seg, p.map, WriterState::fresh()))
    }
}

/// Name of the directory, inside a log directory, that damaged segments are
/// moved into by a salvaging open (or a tolerant one, for files after a cut
/// that still hold frames).
pub(crate) const DAMAGED_DIR: &str = "damaged";

/// Checks what a sealed segment's footer says (record count, bounds and the
/// sparse index) against a scan of its frames: the footer checksum alone
/// cannot tell a consistent forgery from the truth.
pub(crate) fn check_footer_against_frames(path: &Path, footer: &FooterClaims<'_>, scan: &Scanned) -> Result<()> {
    let at = footer.frames_end;
    if scan.count != footer.count || scan.end != footer.frames_end {
        return Err(stop_error(path, scan));
    }
    let bounds = (scan.min_ts, scan.max_ts, scan.last_frame_offset);
    if footer.count > 0 && bounds != (footer.min_ts, footer.max_ts, footer.last_frame_offset) {
        return Err(Error::corrupt(path, at, "footer bounds (timestamps, last frame) differ from the frames"));
    }
    if scan.index.as_slice() != footer.index {
        return Err(Error::corrupt(path, at, "footer index differs from the frames"));
    }
    if scan.next_seq > footer.end_seq {
        return Err(Error::corrupt(
            path,
            at,
            format!("footer says the segment ends at seq {}, its frames go on to {}", footer.end_seq, scan.next_seq),
        ));
    }
    if crate::format::encode_key_section(&mut scan.keys.clone()) != footer.keys {
        return Err(Error::corrupt(path, at, "footer key table or filter differs from the frames"));
    }
    Ok(())
}

/// Scans a sealed segment's frames the way its header says they were
/// written: appended (dense seqs) or compacted (rising seqs below `end_seq`).
pub(crate) fn scan_sealed(frames: &[u8], base: u64, compacted: bool, end_seq: u64) -> Scanned {
    if compacted {
        scan_compacted(frames, base, end_seq)
    } else {
        scan_frames(frames, base)
    }
}

/// What a sealed segment's footer claims about its frames.
pub(crate) struct FooterClaims<'a> {
    pub(crate) count: u64,
    pub(crate) frames_end: u64,
    pub(crate) min_ts: u64,
    pub(crate) max_ts: u64,
    pub(crate) last_frame_offset: u64,
    pub(crate) index: &'a [crate::format::IndexEntry],
    pub(crate) end_seq: u64,
    /// The key section's bytes.
    pub(crate) keys: &'a [u8],
}

impl<'a> FooterClaims<'a> {
    pub(crate) fn of_footer(f: &crate::format::FooterHeader, index: &'a [crate::format::IndexEntry], keys: &'a [u8]) -> FooterClaims<'a> {
        FooterClaims {
            count: f.record_count.get(),
            frames_end: f.frames_end.get(),
            min_ts: f.min_ts.get(),
            max_ts: f.max_ts.get(),
            last_frame_offset: f.last_frame_offset.get(),
            index,
            end_seq: f.end_seq.get(),
            keys,
        }
    }

    fn of_sealed(s: &'a SealedSegment) -> FooterClaims<'a> {
        FooterClaims {
            count: s.count,
            frames_end: s.frames_end,
            min_ts: s.min_ts,
            max_ts: s.max_ts,
            last_frame_offset: s.last_frame_offset,
            index: s.index(),
            end_seq: s.end_seq,
            keys: s.key_bytes(),
        }
    }
}

/// The typed error for where a scan stopped early.
pub(crate) fn stop_error(path: &Path, scan: &Scanned) -> Error {
    match scan.stop {
        ScanStop::Invalid { offset, error } => frame_error(path, offset, error),
        ScanStop::SeqBreak { offset, found, expected } => {
            Error::corrupt(path, offset, format!("sequence break: expected seq {expected}, found {found}"))
        }
        ScanStop::End => Error::corrupt(path, scan.end, "records missing: frames end early or a batch is incomplete"),
    }
}

/// Absolute file offset one past the last non-zero byte of `frames`
/// (which starts at `HEADER_BYTES`), if any.
pub(crate) fn last_nonzero(frames: &[u8]) -> Option<u64> {
    let mut end = frames.len();
    for chunk in frames.rchunks(4096) {
        let start = end - chunk.len();
        if chunk.iter().fold(0u8, |a, &b| a | b) != 0 {
            let p = chunk.iter().rposition(|&b| b != 0)?;
            return Some(HEADER_BYTES + (start + p + 1) as u64);
        }
        end = start;
    }
    None
}
