//! Verify: re-read every byte of the log and check it against its
//! checksums, digests and the digest chain.
//!
//! For each sealed segment: the header checksum, the footer and trailer
//! checksums, every frame's CRC and the seq chain inside the segment
//! ([`crate::segment::scan_frames`]), the blake3 digest of header and
//! frames against the footer's, the footer's index and bounds against the
//! ones rebuilt from the frames (the footer checksum alone cannot tell a
//! consistent forgery), and the chain: the footer's `prev_digest` must
//! equal the digest of the segment before it. Across segments, seqs
//! must continue without a gap. Live segments are scanned up to what is
//! published. A segment replaced by a valid segment of another log passes
//! its own checks but breaks the chain on both sides.
//!
//! [`Log::verify`] checks an open log through a snapshot (safe while the
//! writer runs); [`verify_dir`] checks a closed log directory, including
//! files that would not open (a truncated sealed segment).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{
    chain_digest, decode_footer, decode_footer_full, parse_segment_file_name, FooterError, Trailer, HEADER_BYTES, LIVE_COMMITTED_OFFSET,
};
use crate::fs::{FileSystem, StdFs};
use crate::log::{Log, LOCK_FILE_NAME};
use crate::raw::ReadMap;
use crate::recovery::{check_footer_against_frames, last_nonzero, scan_sealed, stop_error, FooterClaims};
use crate::segment::{check_header, content_digest, scan_frames, HeaderOutcome, ScanStop, Segment};
use crate::snapshot::Snapshot;

/// What [`Log::verify`] or [`verify_dir`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files looked at.
    pub segments: usize,
    /// Of those, sealed ones (digest and chain checked).
    pub sealed_segments: usize,
    /// Records whose frames were checked.
    pub records: u64,
    /// Bytes read and checked.
    pub bytes: u64,
    /// Every problem found, in log order, at most one per segment (the
    /// first in it), each naming the file and byte offset, plus one per
    /// broken link between segments.
    pub problems: Vec<Error>,
}

impl VerifyReport {
    /// Whether nothing was wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first problem in log order.
    #[must_use]
    pub fn first_problem(&self) -> Option<&Error> {
        self.problems.first()
    }
}

/// What checking one segment established, for the links to its neighbours.
#[derive(Clone, Copy)]
struct Checked {
    base_seq: u64,
    end_seq: u64,
    /// `(prev_digest, digest)` of a sealed segment.
    digests: Option<([u8; 32], [u8; 32])>,
    /// Where the trailer's `prev_digest` lives, to name it in a chain error.
    prev_digest_offset: u64,
    /// blake3 of the Merkle section's frontiers (at the start, at the end),
    /// if it has one: the next segment's must start where this one's ends.
    merkle: Option<([u8; 32], [u8; 32])>,
}

/// A digest of a list of hashes, to compare two frontiers.
fn list_digest(hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for x in hashes {
        h.update(x);
    }
    *h.finalize().as_bytes()
}

/// Checks a Merkle section against the frames it covers: rebuilt from its
/// own starting frontier and the records, it must come out byte for byte.
/// A compacted segment's section is a copy of the original's, whose records
/// are partly gone: only its place in the chain of frontiers is checked.
fn check_merkle(path: &Path, m: &crate::format::MerkleSection<'_>, frames: &[u8], base: u64, compacted: bool, at: u64) -> Result<()> {
    if compacted {
        return Ok(());
    }
    let Some(mut frontier) = crate::proofs::Frontier::from_hashes(base, &m.frontier_start()) else {
        return Err(Error::corrupt(path, at, "Merkle section's frontier is out of shape"));
    };
    let rebuilt = crate::proofs::merkle_section(&mut frontier, frames, base).map_err(|(off, what)| Error::corrupt(path, off, what))?;
    if rebuilt != m.bytes() {
        return Err(Error::corrupt(path, at, "Merkle section does not match the records: nodes changed after sealing"));
    }
    Ok(())
}

/// Offset of `prev_digest` inside the trailer.
const PREV_DIGEST_IN_TRAILER: u64 = core::mem::offset_of!(Trailer, prev_digest) as u64;

/// Checks one sealed segment file given all its bytes.
fn check_sealed(path: &Path, bytes: &[u8], report: &mut VerifyReport) -> Result<Checked> {
    let header = match check_header(path, bytes) {
        Ok(h) => h,
        Err(HeaderOutcome::Fatal(e)) => return Err(e),
        Err(HeaderOutcome::Blank) => return Err(Error::corrupt(path, 0, "blank segment header")),
    };
    let base = header.base_seq.get();
    let decoded = decode_footer_full(bytes).map_err(|e| footer_error(path, bytes.len() as u64, e))?;
    let claims = FooterClaims::of_footer(decoded.footer, decoded.index, decoded.keys);
    let (footer, keys, trailer) = (*decoded.footer, decoded.keys, *decoded.trailer);
    let frames_end = footer.frames_end.get();
    if footer.base_seq.get() != base {
        return Err(Error::corrupt(path, frames_end, format!("footer says base seq {}, header says {base}", footer.base_seq.get())));
    }
    let frames = bytes
        .get(HEADER_BYTES as usize..usize::try_from(frames_end).unwrap_or(usize::MAX))
        .ok_or_else(|| Error::corrupt(path, frames_end, "footer offset outside the file"))?;
    let end_seq = footer.end_seq.get();
    if !header.is_compacted() && end_seq != base + footer.record_count.get() {
        return Err(Error::corrupt(path, frames_end, "footer's end seq leaves a gap, but compaction did not write this segment"));
    }
    if crate::format::KeySection::decode(keys, u64::from(footer.key_count.get())).is_none() {
        return Err(Error::corrupt(path, frames_end, "footer key section is malformed"));
    }
    let scan = scan_sealed(frames, base, header.is_compacted(), end_seq);
    report.records += scan.count;
    check_footer_against_frames(path, &claims, &scan)?;
    let live = LIVE_COMMITTED_OFFSET as usize;
    let content = content_digest(&bytes[..live], &bytes[live + 8..HEADER_BYTES as usize], frames);
    if content != footer.content_digest || chain_digest(&trailer.prev_digest, &content) != trailer.digest {
        return Err(Error::corrupt(path, frames_end, "segment digest mismatch: header or frame bytes changed after sealing"));
    }
    let merkle_at = frames_end + crate::format::FOOTER_HEADER_BYTES + (decoded.index.len() * 24 + keys.len()) as u64;
    if let Some(m) = &decoded.merkle {
        check_merkle(path, m, frames, base, header.is_compacted(), merkle_at)?;
    }
    Ok(Checked {
        base_seq: base,
        end_seq,
        digests: Some((trailer.prev_digest, trailer.digest)),
        prev_digest_offset: bytes.len() as u64 - crate::format::TRAILER_BYTES + PREV_DIGEST_IN_TRAILER,
        merkle: decoded.merkle.map(|m| (list_digest(&m.frontier_start()), list_digest(&m.frontier_end()))),
    })
}

/// Checks the frames of a live segment: all `count` published records
/// must scan cleanly up to `end`.
fn check_live(path: &Path, base: u64, frames: &[u8], count: u64, report: &mut VerifyReport) -> Result<Checked> {
    let scan = scan_frames(frames, base);
    report.records += scan.count;
    if scan.count != count || scan.end != HEADER_BYTES + frames.len() as u64 {
        return Err(stop_error(path, &scan));
    }
    Ok(Checked { base_seq: base, end_seq: base + count, digests: None, prev_digest_offset: 0, merkle: None })
}

fn footer_error(path: &Path, file_len: u64, e: FooterError) -> Error {
    match e {
        FooterError::Missing => {
            Error::corrupt(path, file_len, "sealed segment has no trailer: the file was truncated or sealing was cut short")
        }
        FooterError::Damaged(at) => Error::corrupt(path, at, "footer or trailer checksum mismatch"),
        FooterError::Version(found) => Error::UnsupportedVersion { path: path.into(), found, supported: crate::format::FORMAT_VERSION },
    }
}

/// Checks the links from `prev` to `cur`: seqs continue, and the digest
/// chain holds when both are sealed.
fn check_link(path: &Path, prev: &Checked, cur: &Checked) -> Result<()> {
    if cur.base_seq != prev.end_seq {
        return Err(Error::corrupt(path, 0, format!("segment starts at seq {}, the previous one ends at {}", cur.base_seq, prev.end_seq)));
    }
    if let (Some((_, prev_digest)), Some((chained, _))) = (prev.digests, cur.digests) {
        if chained != prev_digest {
            return Err(Error::corrupt(
                path,
                cur.prev_digest_offset,
                "digest chain broken: this segment does not follow the previous one (replaced or from another log)",
            ));
        }
    }
    if let (Some((_, ended)), Some((started, _))) = (prev.merkle, cur.merkle) {
        if ended != started {
            return Err(Error::corrupt(path, 0, "Merkle tree broken: this segment's frontier does not continue the previous one's"));
        }
    }
    Ok(())
}

/// Runs the checks of one segment and its link to the previous one,
/// recording problems; returns what the next link needs.
fn record(report: &mut VerifyReport, path: &Path, prev: Option<Checked>, checked: Result<Checked>) -> Option<Checked> {
    match checked {
        Ok(c) => {
            if let Some(p) = prev {
                if let Err(e) = check_link(path, &p, &c) {
                    report.problems.push(e);
                }
            }
            Some(c)
        }
        Err(e) => {
            report.problems.push(e);
            None
        }
    }
}

impl Log {
    /// Re-reads and checks every segment of the log as of now: frame
    /// checksums and seqs, each sealed segment's blake3 digest, and the
    /// digest chain between segments (see [`VerifyReport`]). Safe while the
    /// writer appends; records appended after the call starts are not
    /// checked. Reads every byte: about as long as a full scan.
    #[must_use]
    pub fn verify(&self) -> VerifyReport {
        self.verify_with_progress(|_, _| {})
    }

    /// [`Log::verify`], calling `progress(done_bytes, total_bytes)` before
    /// starting and after each segment.
    pub fn verify_with_progress(&self, progress: impl FnMut(u64, u64)) -> VerifyReport {
        verify_snapshot(&self.snapshot(), progress)
    }
}

/// [`Log::verify_with_progress`] over any snapshot, also one of a
/// [`crate::ReadOnlyLog`] (a log another process writes).
pub(crate) fn verify_snapshot(snap: &Snapshot, progress: impl FnMut(u64, u64)) -> VerifyReport {
    verify_snapshot_from(snap, 0, progress)
}

/// [`verify_snapshot`] of the segments holding seqs from `from` on only.
pub(crate) fn verify_snapshot_from(snap: &Snapshot, from: u64, mut progress: impl FnMut(u64, u64)) -> VerifyReport {
    let skip = (0..snap.state.segments.len()).take_while(|&i| snap.view(i).end_seq() <= from).count();
    let segments = &snap.state.segments[skip..];
    let last = segments.len().saturating_sub(1);
    let live_end = |i: usize| match &segments[i] {
        Segment::Live(a) if i == last => snap.active.unwrap_or_else(|| a.committed()),
        Segment::Live(a) => a.committed(),
        Segment::Sealed(_) | Segment::Remote(_) => (0, 0),
    };
    let size = |i: usize| match &segments[i] {
        Segment::Sealed(s) => s.bytes().len() as u64,
        Segment::Remote(r) => r.meta.file_bytes,
        Segment::Live(_) => live_end(i).1,
    };
    let total: u64 = (0..segments.len()).map(size).sum();
    let mut report = VerifyReport { segments: segments.len(), ..VerifyReport::default() };
    let mut prev = None;
    progress(0, total);
    for (i, seg) in segments.iter().enumerate() {
        let checked = match seg {
            Segment::Sealed(s) => {
                report.sealed_segments += 1;
                // A sealed file cut short under the mapping must not be
                // read past its new end (that would be SIGBUS).
                match std::fs::metadata(&s.path) {
                    Err(e) => Err(Error::io("stat segment", &s.path, e)),
                    Ok(m) if m.len() < s.bytes().len() as u64 => Err(Error::corrupt(
                        &s.path,
                        m.len(),
                        format!("sealed segment file is {} bytes, it was sealed at {} (truncated)", m.len(), s.bytes().len() as u64),
                    )),
                    Ok(_) => check_sealed(&s.path, s.bytes(), &mut report),
                }
            }
            // Fetched (or found in the cache) and checked like a local one;
            // not kept mapped after (the snapshot's slots are for reads).
            Segment::Remote(r) => {
                report.sealed_segments += 1;
                r.load().and_then(|s| check_sealed(&r.path, s.bytes(), &mut report))
            }
            Segment::Live(a) => {
                let (count, end) = live_end(i);
                check_live(&a.path, a.base_seq, a.map.frames(end), count, &mut report)
            }
        };
        let path = match seg {
            Segment::Sealed(s) => &s.path,
            Segment::Remote(r) => &r.path,
            Segment::Live(a) => &a.path,
        };
        prev = record(&mut report, path, prev, checked);
        report.bytes += size(i);
        progress(report.bytes, total);
    }
    report
}

/// Checks a closed log directory without opening it: no recovery, nothing
/// written. Finds what [`Log::verify`] finds, and also damage that would
/// stop the log from opening or that opening would repair (a truncated
/// sealed segment, a torn tail). Fails with [`Error::Locked`] while a
/// process has the log open.
///
/// # Errors
///
/// [`Error::Locked`] while a process has the log open; [`Error::Io`] if the directory cannot be
/// read; [`Error::NotALog`] if it holds no log. Problems in the data are in the report.
pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_dir_with_progress(dir, |_, _| {})
}

/// [`verify_dir`], calling `progress(done_bytes, total_bytes)` before
/// starting and after each segment.
///
/// # Errors
///
/// As [`verify_dir`].
pub fn verify_dir_with_progress(dir: impl AsRef<Path>, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let lock_path = dir.join(LOCK_FILE_NAME);
    // Hold the log's lock, so that no writer changes or cuts files under
    // the mappings while they are read. Without a lock file no writer has
    // the log open (opening creates it), and verify creates nothing.
    let _lock = if lock_path.exists() {
        Some(StdFs.lock(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked { path: lock_path.clone() },
            _ => Error::io("lock", &lock_path, e),
        })?)
    } else {
        None
    };
    let mut files: Vec<(u64, PathBuf, u64)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        let name = entry.file_name();
        if let Some(base) = name.to_str().and_then(parse_segment_file_name) {
            let path = entry.path();
            let len = entry.metadata().map_err(|e| Error::io("stat segment", &path, e))?.len();
            files.push((base, path, len));
        }
    }
    files.sort();
    let total = files.iter().map(|f| f.2).sum();
    let mut report = VerifyReport { segments: files.len(), ..VerifyReport::default() };
    let mut prev = None;
    // The active segment is the last one with a valid header: files after
    // it (garbage named like a segment) are problems of their own, and do
    // not make an intact active segment look like a sealed one cut short.
    let last = files.iter().rposition(|(_, path, _)| has_valid_header(path));
    progress(0, total);
    for (k, (base, path, len)) in files.iter().enumerate() {
        let is_last = last.is_none_or(|l| k >= l);
        let checked = check_file(path, *base, is_last, &mut report);
        prev = record(&mut report, path, prev, checked);
        report.bytes += len;
        progress(report.bytes, total);
    }
    Ok(report)
}

/// Checks one segment file of a closed log.
fn check_file(path: &Path, name_base: u64, is_last: bool, report: &mut VerifyReport) -> Result<Checked> {
    let file = File::open(path).map_err(|e| Error::io("open segment", path, e))?;
    // Every segment, even an empty active one, has a whole header page;
    // the header's fields may fit in fewer bytes and still decode.
    let len = file.metadata().map_err(|e| Error::io("stat segment", path, e))?.len();
    if len < HEADER_BYTES {
        return Err(Error::corrupt(path, len, format!("segment file is {len} bytes, shorter than its {HEADER_BYTES}-byte header page")));
    }
    let map = ReadMap::map(&file).map_err(|e| Error::io("mmap", path, e))?;
    let bytes = map.bytes();
    let header = match check_header(path, bytes) {
        Ok(h) => h,
        Err(HeaderOutcome::Fatal(e)) => return Err(e),
        Err(HeaderOutcome::Blank) => return Err(Error::corrupt(path, 0, "blank segment header")),
    };
    let base = header.base_seq.get();
    if base != name_base {
        return Err(Error::corrupt(path, 0, format!("file name says base seq {name_base}, header says {base}")));
    }
    let sealed = decode_footer(bytes).is_ok();
    if sealed || !is_last {
        report.sealed_segments += 1;
        return check_sealed(path, bytes, report);
    }
    // The last segment, never sealed: its frames run to the first zero
    // length; anything else after them is a torn tail.
    let frames = bytes.get(HEADER_BYTES as usize..).unwrap_or(&[]);
    let scan = scan_frames(frames, base);
    report.records += scan.count;
    if scan.stop != ScanStop::End {
        return Err(stop_error(path, &scan));
    }
    // Opening zeroes whatever follows the last complete frame: a torn
    // write, an incomplete batch, or damage that hides later frames.
    if let Some(end) = last_nonzero(frames).filter(|&e| e > scan.end) {
        return Err(Error::corrupt(
            path,
            scan.end,
            format!("non-zero bytes up to offset {end} after the last complete frame; opening the log would discard them"),
        ));
    }
    Ok(Checked { base_seq: base, end_seq: base + scan.count, digests: None, prev_digest_offset: 0, merkle: None })
}

/// Whether the file starts with a valid segment header.
fn has_valid_header(path: &Path) -> bool {
    let mut page = Vec::new();
    let read = File::open(path).and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, HEADER_BYTES), &mut page));
    read.is_ok() && check_header(path, &page).is_ok()
}
