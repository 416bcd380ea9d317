//! Compaction: rewriting sealed segments to keep the newest record per key.
//!
//! A pass, under the maintenance lock (retention waits for it):
//!
//! 1. takes a snapshot and decides what goes from the key tables alone,
//!    newest segment first, without reading the frames: each sealed
//!    segment's footer lists its keys' 128-bit xxh3 hashes with frame
//!    offsets, sorted, so one merge of that list against the sorted list of
//!    hashes seen in newer segments finds the records a newer one replaced
//!    (every offset of a hash seen before, and all but the last offset of a
//!    hash within the segment). The newest record of a key goes only if it
//!    is a tombstone older than the retention (its frame header is read
//!    only when the segment holds records that old). Keys are told apart by
//!    their 128-bit hash, as Kafka's cleaner keys its offset map: two keys
//!    share one with odds of about n² / 2¹²⁹ (10⁻²⁶ for a billion keys).
//!    Live records newer than the sealed segments replace older ones only
//!    once durable. Memory: 16 bytes per distinct key, twice over while
//!    merging, and 4 bytes per record kept (at most one per key);
//! 2. walks the sealed segments oldest first. A segment holding a record
//!    that a newer one replaced, or an expired tombstone, is rewritten: its
//!    kept frames go to `<name>.compact`, which is sealed and synced and
//!    then renamed over the segment (one atomic step per segment; the
//!    directory is synced before the next). Seqs are kept, so the new file
//!    has gaps, and says so in its header;
//! 3. re-links the digest chain: each rewritten segment is sealed after the
//!    (new) digest of the one before it, and each later sealed segment whose
//!    link is stale gets a new trailer appended (no mapped byte changes);
//!    the last links, including segments sealed meanwhile, are made under
//!    the chain's lock, which the sealer holds while it seals.
//!
//! A marker file, `COMPACTING`, exists from before the first rename until
//! the chain is whole again. An open that finds it finishes the re-linking
//! (`recovery.rs`); without it, a broken link is damage and is reported.
//! Either way every segment is old or new, never both or neither: the
//! rename is the switch. Readers holding an older snapshot read the old
//! files to the end (their mappings keep the replaced inodes alive).

use std::path::{Path, PathBuf};
use std::time::Duration;
use zerocopy::IntoBytes;

use crate::error::{Error, Result};
use crate::format::{
    align_up, chain_digest, decode_frame, frame_crc_in_place, key_hash128, order_key, segment_file_name, DecodedFrame, SegmentHeader,
    FLAG_BATCH_CONTINUES, FLAG_TOMBSTONE, FRAME_HEADER_BYTES, HEADER_BYTES, HEADER_FLAG_COMPACTED, LIVE_COMMITTED_OFFSET,
};
use crate::lifecycle::{open_sealed, relink, write_footer};
use crate::log::{Log, LogInner};
use crate::raw::ReadMap;
use crate::segment::view::frame_error;
use crate::segment::{content_hasher, walk_and_digest_compacted, ScanStop, SealedSegment, Segment};
use crate::shared::Shared;
use crate::snapshot::Snapshot;
use crate::sync::{lock, Arc};
use crate::task::Periodic;

/// Name of the marker file that says a compaction's chain re-linking is
/// not finished; the next open finishes it.
pub(crate) const COMPACT_MARKER: &str = "COMPACTING";
/// Suffix of a compaction's output before it is renamed over its segment.
pub(crate) const COMPACT_SUFFIX: &str = ".compact";

/// Called with `(bytes of sealed segments done, bytes in all)` as a pass goes.
type Progress = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How [`Log::compact`] runs.
///
/// ```
/// use std::time::Duration;
/// use varvelog::CompactOptions;
/// let opts = CompactOptions::new().tombstone_retention(Duration::from_secs(3600));
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct CompactOptions {
    tombstone_retention: Duration,
    progress: Option<Progress>,
}

impl std::fmt::Debug for CompactOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactOptions").field("tombstone_retention", &self.tombstone_retention).finish_non_exhaustive()
    }
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions { tombstone_retention: DEFAULT_TOMBSTONE_RETENTION, progress: None }
    }
}

/// How long a tombstone outlives the records it deleted, by default: a day
/// (Kafka's `delete.retention.ms`), so that a reader following the log
/// sees the deletion before compaction drops it.
pub const DEFAULT_TOMBSTONE_RETENTION: Duration = Duration::from_secs(24 * 3600);

impl CompactOptions {
    /// The defaults: tombstones kept for [`DEFAULT_TOMBSTONE_RETENTION`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep a tombstone that is the newest record of its key until its
    /// timestamp is this old; then compaction drops it (the records it
    /// replaced are gone by then). `Duration::ZERO` drops them at once.
    #[must_use]
    pub fn tombstone_retention(mut self, retention: Duration) -> Self {
        self.tombstone_retention = retention;
        self
    }

    /// Calls `f(done, total)` with the bytes of sealed segments looked at
    /// so far and in all, after each segment.
    #[must_use]
    pub fn progress(mut self, f: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(std::sync::Arc::new(f));
        self
    }
}

/// What one compaction pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// Sealed segments rewritten.
    pub segments_rewritten: usize,
    /// Later sealed segments re-linked into the digest chain.
    pub segments_relinked: usize,
    /// Records dropped because a newer record has their key.
    pub records_removed: u64,
    /// Expired tombstones dropped.
    pub tombstones_removed: u64,
    /// Size of the rewritten segments before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
}

/// What goes from one sealed segment: every record with a key but those
/// in `kept`. Kept records are each the newest of a distinct key, so all
/// the lists together hold at most one offset per distinct key.
#[derive(Default)]
struct Drops {
    /// Offsets of the frames with a key that stay, ascending.
    kept: Vec<u32>,
    replaced: u64,
    tombstones: u64,
}

impl Drops {
    fn any(&self) -> bool {
        self.replaced + self.tombstones > 0
    }
}

/// Decides what goes from each of the `sealed` segments (the first ones of
/// `snap`) from their key tables (see the module's notes).
fn plan(snap: &Snapshot, sealed: &[Arc<SealedSegment>], durable: u64, cutoff_us: u64) -> Result<Vec<Drops>> {
    // Keys of durable records newer than the sealed segments: they replace.
    let sealed_end = sealed.last().map_or(0, |s| s.end_seq());
    let mut seen: Vec<u128> = Vec::new();
    for r in snap.iter_rev() {
        let r = r?;
        if r.seq() < sealed_end {
            break;
        }
        if let (Some(k), true) = (r.key(), r.seq() < durable) {
            seen.push(order_key(key_hash128(k)));
        }
    }
    seen.sort_unstable();
    seen.dedup();
    let mut drops = Vec::with_capacity(sealed.len());
    let mut fresh: Vec<u128> = Vec::new();
    for s in sealed.iter().rev() {
        let mut d = Drops::default();
        let keys = s.keys();
        let entries = keys.entries();
        // Tombstones can only have expired in a segment holding records
        // older than the retention.
        let old_enough = s.count > 0 && s.min_ts < cutoff_us;
        fresh.clear();
        let (mut i, mut at) = (0, 0);
        while i < entries.len() {
            let k = entries[i].order_key();
            let mut j = i + 1;
            while j < entries.len() && entries[j].order_key() == k {
                j += 1;
            }
            at += seen[at..].partition_point(|&x| x < k);
            let group = &entries[i..j];
            let newer_elsewhere = seen.get(at) == Some(&k);
            let (last, older) = group.split_last().unwrap_or((&group[0], &[]));
            d.replaced += older.len() as u64;
            let newest = u64::from(last.offset.get());
            if newer_elsewhere {
                d.replaced += 1;
            } else {
                fresh.push(k);
                if old_enough && expired_tombstone(s, newest, cutoff_us)? {
                    d.tombstones += 1;
                } else {
                    d.kept.push(last.offset.get());
                }
            }
            i = j;
        }
        d.kept.sort_unstable();
        seen = merge(&seen, &fresh);
        drops.push(d);
    }
    drops.reverse();
    Ok(drops)
}

/// Whether the frame at `offset` of `s` is a tombstone older than `cutoff_us`.
fn expired_tombstone(s: &SealedSegment, offset: u64, cutoff_us: u64) -> Result<bool> {
    let f = decode_frame(s.frames(), offset.saturating_sub(HEADER_BYTES), false).map_err(|e| frame_error(&s.path, offset, e))?;
    Ok(f.flags & FLAG_TOMBSTONE != 0 && f.timestamp_us < cutoff_us)
}

/// The sorted union of two sorted, distinct lists.
fn merge(a: &[u128], b: &[u128]) -> Vec<u128> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// One compaction pass: every segment the writer has finished is sealed
/// first, so that all of them can be compacted.
fn compact(log: &LogInner, opts: &CompactOptions) -> Result<CompactReport> {
    log.flush_seals()?;
    apply(&log.shared, opts)
}

/// One compaction pass over the sealed segments of the log behind `shared`.
fn apply(shared: &Shared, opts: &CompactOptions) -> Result<CompactReport> {
    let _maintenance = lock(&shared.maintenance);
    let snap = Snapshot::new(shared.state.load());
    // Only durable records may replace older ones: a newer record a crash
    // could still take away must not cost the older value.
    let durable = shared.durable_next.load(crate::sync::Ordering::Acquire);
    let sealed: Vec<Arc<SealedSegment>> = snap
        .segments()
        .iter()
        // Segments tiered away (the oldest) are not compacted: their files
        // are in the object store.
        .skip_while(|s| matches!(s, Segment::Remote(_)))
        .map_while(|s| match s {
            Segment::Sealed(s) => Some(s.clone()),
            Segment::Live(_) | Segment::Remote(_) => None,
        })
        .collect();
    let retention = u64::try_from(opts.tombstone_retention.as_micros()).unwrap_or(u64::MAX);
    let drops = plan(&snap, &sealed, durable, shared.opts.clock.now_us().saturating_sub(retention))?;
    let total: u64 = sealed.iter().map(|s| s.bytes().len() as u64).sum();
    let mut done = 0u64;
    let mut report = CompactReport::default();
    // A pass that failed part way may have left links stale (its marker is
    // still there): this pass re-links whatever does not follow, and then
    // removes the marker.
    let mut marked = shared.fs().open(&shared.dir.join(COMPACT_MARKER), false).is_ok();
    // The digest of the segment before the one handled (its new one if it
    // was rewritten or re-linked): each segment must link after it.
    let mut prev_digest: Option<[u8; 32]> = None;
    for (s, drops) in sealed.iter().zip(&drops) {
        // The first segment's predecessor may be gone (retention): its link
        // stands as it is.
        let prev = prev_digest.unwrap_or(s.prev_digest);
        let handled = if drops.any() {
            if !marked {
                mark(shared)?;
                marked = true;
            }
            let before = s.bytes().len() as u64;
            let new = rewrite(shared, s, drops, prev)?;
            report.segments_rewritten += 1;
            report.records_removed += drops.replaced;
            report.tombstones_removed += drops.tombstones;
            report.bytes_before += before;
            report.bytes_after += new.bytes().len() as u64;
            replace(shared, s, new.clone());
            new
        } else if s.prev_digest != prev {
            let new = relink(shared.fs(), s, prev)?;
            report.segments_relinked += 1;
            replace(shared, s, new.clone());
            new
        } else {
            s.clone()
        };
        prev_digest = Some(handled.digest);
        done += s.bytes().len() as u64;
        if let Some(p) = &opts.progress {
            p(done, total);
        }
    }
    if let Some(mut prev) = prev_digest {
        // Segments sealed since the snapshot were chained after the digest
        // the last one had then: re-link them if it changed, holding the
        // chain so no seal comes between.
        let mut head = lock(&shared.chain_head);
        let after = sealed.last().map_or(0, |s| s.end_seq());
        let state = shared.state.load();
        for seg in &state.segments {
            let Segment::Sealed(s) = seg else { continue };
            if s.base_seq < after {
                continue;
            }
            if s.prev_digest != prev {
                let new = relink(shared.fs(), s, prev)?;
                report.segments_relinked += 1;
                prev = new.digest;
                replace(shared, s, new);
            } else {
                prev = s.digest;
            }
        }
        *head = prev;
    }
    if marked {
        unmark(shared)?;
    }
    if report.segments_rewritten > 0 {
        tracing::info!(
            rewritten = report.segments_rewritten,
            relinked = report.segments_relinked,
            removed = report.records_removed,
            tombstones = report.tombstones_removed,
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            "compacted sealed segments"
        );
    }
    Ok(report)
}

/// The frames of a sealed segment with their offsets, checksums checked if
/// `verify`.
fn frames(s: &SealedSegment, verify: bool) -> impl Iterator<Item = (u64, Result<DecodedFrame<'_>>)> {
    let data = s.frames();
    let mut off = HEADER_BYTES;
    let end = s.frames_end;
    std::iter::from_fn(move || {
        if off >= end {
            return None;
        }
        let at = off;
        match decode_frame(data, at - HEADER_BYTES, verify) {
            Ok(f) => {
                off += f.padded_len;
                Some((at, Ok(f)))
            }
            Err(e) => {
                off = end;
                Some((at, Err(frame_error(&s.path, at, e))))
            }
        }
    })
}

/// Writes the frames of `s` that `drops` keeps to a new file sealed after
/// `prev`, and renames it over `s`. Returns it.
fn rewrite(shared: &Shared, s: &SealedSegment, drops: &Drops, prev: [u8; 32]) -> Result<Arc<SealedSegment>> {
    let fs = shared.fs();
    let final_path = shared.dir.join(segment_file_name(s.base_seq));
    let tmp = temp_path(&final_path);
    let _ = fs.remove(&tmp);
    let file = fs.create(&tmp).map_err(|e| Error::io("create compacted segment", &tmp, e))?;
    let written = (|| {
        let old = SegmentHeader::decode(s.bytes()).map_err(|_| Error::corrupt(&s.path, 0, "segment header changed under compaction"))?;
        let header = SegmentHeader::with_flags(s.base_seq, old.created_us.get(), 0, HEADER_FLAG_COMPACTED);
        let mut buf = Vec::with_capacity(WRITE_CHUNK + HEADER_BYTES as usize);
        buf.extend_from_slice(header.as_bytes());
        buf.resize(HEADER_BYTES as usize, 0);
        let (mut pos, mut prev_len, mut kept) = (0u64, 0u64, 0u64);
        let mut copy = |f: &DecodedFrame<'_>, buf: &mut Vec<u8>| -> Result<()> {
            let len = FRAME_HEADER_BYTES as usize + f.payload.len() + f.key.len();
            let start = buf.len();
            // The original bytes, re-linked: `prev_len` is the new
            // predecessor's, and a batch's frames stand alone now (the file
            // appears whole, by rename).
            buf.extend_from_slice(frame_bytes(s, f, len));
            buf[start + 24..start + 28].copy_from_slice(&(prev_len as u32).to_le_bytes());
            buf[start + 30] &= !FLAG_BATCH_CONTINUES;
            let crc = frame_crc_in_place(&buf[start..start + len]);
            buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            prev_len = align_up(len as u64);
            buf.resize(start + prev_len as usize, 0);
            kept += 1;
            if buf.len() >= WRITE_CHUNK {
                fs.write_at(&file, buf, pos).map_err(|e| Error::io("write compacted segment", &tmp, e))?;
                pos += buf.len() as u64;
                buf.clear();
            }
            Ok(())
        };
        let checked = |off: u64| decode_frame(s.frames(), off - HEADER_BYTES, true).map_err(|e| frame_error(&s.path, off, e));
        if s.keys().len() as u64 == s.count {
            // Every record has a key: the kept ones are known, and only
            // their frames are read (each checksum checked before the copy).
            for &off in &drops.kept {
                copy(&checked(u64::from(off))?, &mut buf)?;
            }
        } else {
            // Records without a key are kept too: walk every frame.
            let mut kept_keyed = drops.kept.iter().map(|&o| u64::from(o)).peekable();
            for (off, f) in frames(s, false) {
                let keep = f?.key.is_empty() || kept_keyed.next_if_eq(&off).is_some();
                if keep {
                    copy(&checked(off)?, &mut buf)?;
                }
            }
        }
        fs.write_at(&file, &buf, pos).map_err(|e| Error::io("write compacted segment", &tmp, e))?;
        // Seal it as the sealer would, from what reached the file.
        let map = ReadMap::map(&file).map_err(|e| Error::io("mmap", &tmp, e))?;
        let bytes = map.bytes();
        let live = LIVE_COMMITTED_OFFSET as usize;
        let mut hasher = content_hasher(&bytes[..live], &bytes[live + 8..HEADER_BYTES as usize]);
        let scan = walk_and_digest_compacted(&bytes[HEADER_BYTES as usize..], s.base_seq, s.end_seq, &mut hasher);
        if scan.count != kept || scan.stop != ScanStop::End || scan.end != bytes.len() as u64 {
            return Err(Error::corrupt(
                &tmp,
                scan.end,
                format!("compacted segment reads back {} records, {kept} were written", scan.count),
            ));
        }
        let content = *hasher.finalize().as_bytes();
        drop(map);
        write_footer(fs, &file, &tmp, s.base_seq, s.end_seq, &scan, prev, content, s.merkle_bytes(), &|| Ok(()))
    })();
    match written {
        Ok(()) => {}
        Err(e) => {
            let _ = fs.remove(&tmp);
            return Err(e);
        }
    };
    // The switch: the segment is the old file or the new one, never both.
    fs.rename(&tmp, &final_path).map_err(|e| Error::io("rename compacted segment", &final_path, e))?;
    fs.sync_dir(&shared.dir).map_err(|e| Error::io("fsync directory", &shared.dir, e))?;
    let new = open_sealed(&final_path, &file)?;
    debug_assert_eq!(new.digest, chain_digest(&prev, &new.content_digest));
    Ok(new)
}

/// The bytes of decoded frame `f` (header, payload, key) in `s`.
fn frame_bytes<'a>(s: &'a SealedSegment, f: &DecodedFrame<'a>, len: usize) -> &'a [u8] {
    // The payload slice starts right after the 32-byte header in the map.
    let base = s.bytes().as_ptr() as usize;
    let at = f.payload.as_ptr() as usize - base - FRAME_HEADER_BYTES as usize;
    &s.bytes()[at..at + len]
}

/// Bytes written to a compacted segment at a time.
const WRITE_CHUNK: usize = 1 << 20;

fn temp_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(COMPACT_SUFFIX);
    final_path.with_file_name(name)
}

/// Publishes the state with `old` replaced by `new`.
fn replace(shared: &Shared, old: &Arc<SealedSegment>, new: Arc<SealedSegment>) {
    shared.publish(|st| st.replacing(|s| matches!(s, Segment::Sealed(s) if Arc::ptr_eq(s, old)).then(|| Segment::Sealed(new.clone()))));
}

fn mark(shared: &Shared) -> Result<()> {
    let path = shared.dir.join(COMPACT_MARKER);
    let file = shared.fs().create(&path).map_err(|e| Error::io("create compaction marker", &path, e))?;
    shared.fs().sync_file(&file).map_err(|e| Error::io("fdatasync", &path, e))?;
    shared.fs().sync_dir(&shared.dir).map_err(|e| Error::io("fsync directory", &shared.dir, e))
}

fn unmark(shared: &Shared) -> Result<()> {
    let path = shared.dir.join(COMPACT_MARKER);
    shared.fs().remove(&path).map_err(|e| Error::io("remove compaction marker", &path, e))?;
    shared.fs().sync_dir(&shared.dir).map_err(|e| Error::io("fsync directory", &shared.dir, e))
}

impl Log {
    /// Compacts the sealed segments now: keeps the newest record of every
    /// key (and every record without a key), drops the records newer ones
    /// replaced, and drops tombstones older than
    /// [`CompactOptions::tombstone_retention`].
    ///
    /// Every segment the writer has finished is compacted: the call first
    /// waits for those still being sealed. Seqs do not change: a compacted
    /// segment has gaps, [`Snapshot::get`]
    /// of a removed record returns `Ok(None)` and iterators skip it. Only a
    /// durable newer record replaces an older one. The live segment is
    /// never rewritten; it is compacted once sealed. Readers holding an
    /// older snapshot read the old files to the end; each segment is
    /// replaced in one atomic step, so a crash leaves it old or new. The
    /// digest chain is rebuilt over the new segments: [`crate::verify_dir`]
    /// passes, and digests taken before the compaction no longer match
    /// (compaction rewrites history; see `docs/format.md`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use varvelog::{CompactOptions, Entry, Log, Options};
    /// # fn main() -> varvelog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new().segment_bytes(64 << 10))?;
    /// let mut w = log.writer()?;
    /// for i in 0..3000u32 {
    ///     w.append_entry(Entry::new(&i.to_le_bytes()).key(&(i % 10).to_le_bytes()))?;
    /// }
    /// w.sync()?;
    /// let report = log.compact(&CompactOptions::new())?;
    /// assert!(report.records_removed > 0);
    /// assert_eq!(log.snapshot().get_key(&3u32.to_le_bytes())?.unwrap().payload(), &2993u32.to_le_bytes());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the operation and file (the segment being
    /// rewritten stays as it was); a corruption error if a record to copy is
    /// damaged (nothing of that segment is replaced).
    pub fn compact(&self, opts: &CompactOptions) -> Result<CompactReport> {
        compact(self.inner(), opts)
    }

    /// Runs [`Log::compact`] every `interval` on a background thread until
    /// the returned task is dropped or the log is closed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the background thread cannot be started.
    pub fn compact_every(&self, opts: CompactOptions, interval: Duration) -> Result<CompactionTask> {
        let pass = move |log: &LogInner| compact(log, &opts).map(|r| r.segments_rewritten as u64);
        Ok(CompactionTask(Periodic::spawn(self.inner(), "varvelog-compact", interval, pass)?))
    }
}

/// A background compaction policy from [`Log::compact_every`]. Dropping it
/// stops the thread (after a pass in progress ends). It holds the log only
/// weakly: closing the log stops it too.
#[derive(Debug)]
pub struct CompactionTask(Periodic);

impl CompactionTask {
    /// Passes run so far.
    #[must_use]
    pub fn passes(&self) -> u64 {
        self.0.passes()
    }

    /// Segments rewritten by all passes so far.
    #[must_use]
    pub fn rewritten_segments(&self) -> u64 {
        self.0.done()
    }

    /// The error of the latest failed pass, if any since the last call.
    #[must_use]
    pub fn take_error(&self) -> Option<Error> {
        self.0.take_error()
    }
}
