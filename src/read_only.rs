//! Reading a log that another process is writing: [`ReadOnlyLog`].
//!
//! The multi-process contract is documented on [`ReadOnlyLog`] and in
//! `docs/multi_process.md`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{
    decode_frame, key_hash, parse_segment_file_name, segment_file_name, FrameError, FLAG_BATCH_CONTINUES, HEADER_BYTES,
    INDEX_INTERVAL_BYTES, TRAILER_BYTES, TRAILER_MAGIC,
};
use crate::log::LOCK_FILE_NAME;
use crate::raw::LiveMap;
use crate::segment::view::frame_error;
use crate::segment::{check_header, ActiveSegment, HeaderOutcome, SealedSegment, Segment};
use crate::snapshot::{Snapshot, State};
use crate::stats::{ReaderCounters, ReaderStats};
use crate::sync::Arc;
use crate::verify::VerifyReport;

/// How often a reader that finds no new records may list the directory.
const RESCAN_INTERVAL: Duration = Duration::from_millis(2);
/// Listings a rescan retries when a listed file vanished before it was opened.
const RELIST_ATTEMPTS: usize = 8;
/// Rescans an opening reader makes before reporting an incomplete segment.
const STUCK_RETRIES: usize = 5;
/// How long a segment may stay incomplete while a later one exists before
/// `refresh` reports it as damage (a rotation completes in microseconds).
const STUCK_LIMIT: Duration = Duration::from_secs(1);

/// A log opened for reading only, possibly while another process writes it.
/// Cheap to clone; clones share the view.
///
/// Take [`ReadOnlyLog::snapshot`]s and read them exactly like the snapshots
/// of a [`crate::Log`], or follow new records with a [`crate::Tail`]
/// ([`ReadOnlyLog::tail_from`]) or a named [`crate::Consumer`].
///
/// # The multi-process contract
///
/// One process opens the log with [`crate::Log::open`] and writes it; any
/// number of other processes open it with [`crate::Log::open_read_only`] and
/// read it while it is written. What makes that safe:
///
/// * **Nothing is modified by a reader.** A read-only open takes no lock,
///   creates, renames, truncates and writes nothing, and maps files with
///   `PROT_READ`. It can run beside the writer, or on a log no one has open.
/// * **The writer's position crosses the process boundary through the file.**
///   Each publication is one `Release` store of the packed word
///   `count << 32 | end` into the active segment's header page
///   ([`crate::format::LIVE_COMMITTED_OFFSET`]), after the frame bytes below
///   `end`. A reader maps the same file shared and read-only, loads the word
///   and reads only frames below `end`; the writer never writes there again.
/// * **No SIGBUS.** Touching a mapped page past the end of its file raises
///   SIGBUS. The engine never cuts a file below anything a reader may read:
///   sealing truncates a segment only past its last frame (readers never read
///   past the published end), and retention *unlinks* whole sealed files
///   (an unlinked file stays readable through existing mappings). A reader
///   decides whether a file is sealed by reading its trailer with `pread`,
///   not through a mapping, so a file being sealed and cut at that moment
///   cannot fault.
/// * **Segments appear and disappear by name.** A new active segment gets
///   its header before it is renamed to its `.seg` name; a reader that finds
///   no new records lists the directory (at most every few milliseconds) to
///   find the next segment or notice retention.
///
/// What is **not** safe or not promised:
///
/// * Any other program writing, truncating or replacing segment files while
///   they are mapped (by the writer or a reader): that is undefined behaviour
///   (typically SIGBUS or garbage), as for every memory-mapped file.
/// * Durability is known only inside the writer process: a reader sees
///   records once they are *visible*, which may be before they are durable.
///   If the machine crashes, the writer's recovery may discard records a
///   reader already saw. A reader that notices the log was cut back (the
///   published position went backwards) reports [`Error::Corrupt`] and
///   should reopen.
/// * A log whose writer crashed is shown as the writer last published it;
///   open it with [`crate::Log::open`] to recover (reseal, cut a torn tail).
///
/// See also `docs/multi_process.md`.
///
/// ```
/// use std::time::Duration;
/// use varvelog::{Log, Options, ReadOnlyLog};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let log = Log::open(dir.path(), Options::new())?; // normally in another process
/// let mut writer = log.writer()?;
/// writer.append(b"first")?;
///
/// let reader = Log::open_read_only(dir.path())?;   // takes no lock, writes nothing
/// assert_eq!(reader.snapshot().len(), 1);
///
/// let mut tail = reader.tail_from(0)?;
/// writer.append(b"second")?;
/// let mut seen = Vec::new();
/// while seen.len() < 2 {
///     for record in tail.wait(Duration::from_secs(5))? {
///         seen.push(record?.payload().to_vec());
///     }
/// }
/// assert_eq!(seen, [b"first".to_vec(), b"second".to_vec()]);
/// # Ok::<(), varvelog::Error>(())
/// ```
#[derive(Clone)]
pub struct ReadOnlyLog {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    tracked: Mutex<Tracked>,
    counters: ReaderCounters,
    /// A log read from an object store (`open_remote`): `dir` is its URL.
    #[cfg(feature = "tiered")]
    remote: Option<crate::tiering::RemoteSource>,
}

/// What the reader knows: the segments in view and, for a live last
/// segment, how far its frames have been walked.
struct Tracked {
    state: Arc<State>,
    cursor: Option<Cursor>,
    last_rescan: Option<Instant>,
    warnings: Vec<String>,
    /// Since when the last live segment cannot be brought to where the next
    /// segment starts, and the error that means if it persists.
    stuck: Option<(Instant, Error)>,
}

/// Walking position in a live segment (only complete batches count).
#[derive(Clone, Copy, Debug)]
struct Cursor {
    count: u64,
    end: u64,
    prev_len: u64,
    next_index_at: u64,
    max_ts: u64,
}

impl Tracked {
    /// Notes a problem once.
    fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }
}

impl Cursor {
    fn fresh() -> Cursor {
        Cursor { count: 0, end: HEADER_BYTES, prev_len: 0, next_index_at: HEADER_BYTES, max_ts: 0 }
    }
}

/// Why a walk over frames stopped.
enum WalkStop {
    /// No more frames in the bytes given (or the wanted count was reached).
    Clean,
    /// The bytes at some offset are not the frame that should be there.
    Bad(Error),
}

impl Inner {
    fn new(dir: PathBuf, tracked: Tracked) -> Inner {
        Inner {
            dir,
            tracked: Mutex::new(tracked),
            counters: ReaderCounters::default(),
            #[cfg(feature = "tiered")]
            remote: None,
        }
    }
}

impl std::fmt::Debug for ReadOnlyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyLog").field("dir", &self.inner.dir).finish()
    }
}

impl crate::Log {
    /// Opens the log in `dir` for reading only, without taking its lock and
    /// without modifying anything, so that another process may be writing
    /// it. Same as [`ReadOnlyLog::open`].
    ///
    /// # Errors
    ///
    /// As [`ReadOnlyLog::open`].
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<ReadOnlyLog> {
        ReadOnlyLog::open(dir)
    }
}

impl ReadOnlyLog {
    /// Opens the log in `dir` for reading only.
    ///
    /// Fails with [`Error::Io`] if `dir` cannot be read (e.g. it does not
    /// exist), [`Error::NotALog`] if it holds no segment and no lock file or
    /// a file that is not a segment, [`Error::UnsupportedVersion`] for
    /// segments of another format version, and a corruption error for a
    /// damaged segment header. Damage further in is reported when read.
    ///
    /// # Errors
    ///
    /// See above.
    pub fn open(dir: impl AsRef<Path>) -> Result<ReadOnlyLog> {
        let dir = dir.as_ref().to_path_buf();
        let meta = std::fs::metadata(&dir).map_err(|e| Error::io("open log directory", &dir, e))?;
        if !meta.is_dir() {
            return Err(Error::NotALog { path: dir, reason: "not a directory" });
        }
        let files = list_segments(&dir)?;
        if files.is_empty() && !dir.join(LOCK_FILE_NAME).exists() {
            return Err(Error::NotALog { path: dir, reason: "no segment files and no LOCK file" });
        }
        let tracked = Tracked { state: Arc::new(State::default()), cursor: None, last_rescan: None, warnings: Vec::new(), stuck: None };
        let log = ReadOnlyLog { inner: std::sync::Arc::new(Inner::new(dir, tracked)) };
        {
            let mut t = log.lock();
            log.rescan(&mut t, true)?;
            // A segment that cannot be completed may be a rotation in flight
            // (microseconds); give it a moment before calling it damage.
            for _ in 0..STUCK_RETRIES {
                if t.stuck.is_none() {
                    break;
                }
                std::thread::sleep(RESCAN_INTERVAL);
                log.rescan(&mut t, true)?;
            }
            if let Some((_, e)) = &t.stuck {
                let msg = format!("{e}; later segments are not shown");
                t.warn(msg);
            }
        }
        Ok(log)
    }

    /// Reads the log tiered to the object store at `url` (`s3://bucket/prefix`,
    /// `gs://…`, `az://…`, `file:///…`), from the bucket alone: every segment
    /// its manifest lists, fetched into a temporary cache directory (bounded,
    /// [`crate::DEFAULT_CACHE_BYTES`]) when read. Credentials and endpoint come
    /// from the environment, as for [`crate::TierOptions::from_url`]. New
    /// uploads are seen by [`ReadOnlyLog::refresh`] and followers (at most
    /// every second); the writer's active segment is not in the store, so
    /// the log shows what has been sealed and uploaded.
    ///
    /// ```no_run
    /// use varvelog::ReadOnlyLog;
    /// let log = ReadOnlyLog::open_remote("s3://my-bucket/logs/orders")?;
    /// for record in log.snapshot().iter() {
    ///     println!("{}", record?.seq());
    /// }
    /// # Ok::<(), varvelog::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOptions`] for a URL no store is known for;
    /// [`Error::NotALog`] if the prefix holds no manifest; [`Error::Store`]
    /// if the store cannot be reached; a corruption error for a manifest
    /// that cannot be read.
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    pub fn open_remote(url: &str) -> Result<ReadOnlyLog> {
        ReadOnlyLog::open_remote_with(crate::TierOptions::from_url(url)?)
    }

    /// [`ReadOnlyLog::open_remote`] with a store, prefix, cache directory and
    /// bound, and polling interval of your choosing (the local policy of
    /// the options is not used).
    ///
    /// # Errors
    ///
    /// As [`ReadOnlyLog::open_remote`].
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    pub fn open_remote_with(opts: crate::TierOptions) -> Result<ReadOnlyLog> {
        let source = crate::tiering::RemoteSource::open(&opts)?;
        let tracked = Tracked { state: Arc::new(State::default()), cursor: None, last_rescan: None, warnings: Vec::new(), stuck: None };
        let mut inner = Inner::new(source.url(), tracked);
        inner.remote = Some(source);
        let log = ReadOnlyLog { inner: std::sync::Arc::new(inner) };
        log.rescan(&mut log.lock(), true)?;
        Ok(log)
    }

    /// What fetching from the object store has done, for a log opened with
    /// [`ReadOnlyLog::open_remote`] (`None` otherwise).
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    #[must_use]
    pub fn tier_stats(&self) -> Option<crate::TierStats> {
        self.inner.remote.as_ref().map(crate::tiering::RemoteSource::stats)
    }

    /// The log's directory, or an error for a log read from an object store
    /// (named consumers keep their positions in the directory).
    pub(crate) fn local_dir(&self) -> Result<&Path> {
        #[cfg(feature = "tiered")]
        if self.inner.remote.is_some() {
            return Err(Error::InvalidOptions(format!(
                "{} is read from an object store: named consumers need the log's directory",
                self.inner.dir.display()
            )));
        }
        Ok(&self.inner.dir)
    }

    /// How often a follower lists the directory (or reads the manifest).
    fn rescan_interval(&self) -> Duration {
        #[cfg(feature = "tiered")]
        if let Some(r) = &self.inner.remote {
            return r.poll();
        }
        RESCAN_INTERVAL
    }

    /// Whether `state` is what this reader shows now.
    pub(crate) fn is_current(&self, state: &Arc<State>) -> bool {
        Arc::ptr_eq(&self.lock().state, state)
    }

    /// Counts a follower's wake-up after it slept.
    pub(crate) fn count_wakeup(&self) {
        ReaderCounters::bump(&self.inner.counters.tail_wakeups);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.inner.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The records published so far, as an immutable view. Loads the
    /// writer's published position (a memory load, no system call); new
    /// segment files are noticed by [`ReadOnlyLog::refresh`] and by
    /// followers. Problems found on the way are kept for `refresh` and
    /// [`ReadOnlyLog::warnings`].
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let mut t = self.lock();
        if let Err(e) = self.refresh_live(&mut t) {
            t.warn(e.to_string());
        }
        Snapshot::new(t.state.clone())
    }

    /// Catches up with the writer: loads its published position, lists the
    /// directory for new segments (rotations) and removed ones (retention),
    /// and loads the position of the newest segment. Returns whether the
    /// view changed. Errors are typed: damage found on the way, or the log
    /// being cut back under the reader by a recovering writer.
    ///
    /// # Errors
    ///
    /// A corruption error naming file and offset for damage met on the way; [`Error::Io`] if the
    /// directory cannot be read.
    pub fn refresh(&self) -> Result<bool> {
        let mut t = self.lock();
        let live = self.refresh_live(&mut t)?;
        let listed = self.rescan(&mut t, false)?;
        let newest = self.refresh_live(&mut t)?;
        Ok(live || listed || newest)
    }

    /// Like `refresh`, but lists the directory at most every few milliseconds.
    pub(crate) fn refresh_throttled(&self) -> Result<bool> {
        let mut t = self.lock();
        if self.refresh_live(&mut t)? {
            return Ok(true);
        }
        if t.last_rescan.is_some_and(|at| at.elapsed() < self.rescan_interval()) {
            return Ok(false);
        }
        self.rescan(&mut t, false)
    }

    /// Problems seen that did not stop the open: a segment whose footer is
    /// damaged (the writer's recovery reseals it), a live segment whose frames
    /// do not match the published position, and the like.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.lock().warnings.clone()
    }

    /// Checks the log as this reader sees it after a refresh: every frame
    /// checksum and seq, each sealed segment's digest and the digest chain
    /// (see [`crate::Log::verify`]). Safe while another process writes.
    /// Problems the reader noted on the way ([`ReadOnlyLog::warnings`]) are
    /// not in the report; check those too.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory or a segment cannot be read; problems in the data are in the
    /// report, not errors.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_progress(|_, _| {})
    }

    /// [`ReadOnlyLog::verify`], calling `progress(done_bytes, total_bytes)`
    /// before starting and after each segment.
    ///
    /// # Errors
    ///
    /// As [`ReadOnlyLog::verify`].
    pub fn verify_with_progress(&self, progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
        self.refresh()?;
        Ok(crate::verify::verify_snapshot(&self.snapshot(), progress))
    }

    /// This reader's counters.
    #[must_use]
    pub fn stats(&self) -> ReaderStats {
        self.inner.counters.read()
    }

    /// Loads the live segment's published position and walks its new frames.
    fn refresh_live(&self, t: &mut Tracked) -> Result<bool> {
        ReaderCounters::bump(&self.inner.counters.refreshes);
        let (Some(Segment::Live(seg)), Some(cur)) = (t.state.segments.last(), t.cursor.as_mut()) else { return Ok(false) };
        let (count, end) = seg.map.live_published();
        if (count, end) == (0, 0) || (count, end) == (cur.count, cur.end) {
            return Ok(false); // nothing published yet, or nothing new
        }
        if end < cur.end || count < cur.count {
            return Err(Error::corrupt(
                &seg.path,
                end,
                format!(
                    "the published position went back from {} records / offset {} to {count} / {end}: \
                     a writer recovered the log under this reader; reopen it",
                    cur.count, cur.end
                ),
            ));
        }
        let before = cur.end;
        let stop = walk(seg.map.foreign_frames(end), seg, cur, None);
        seg.map.adopt(cur.count, cur.end);
        let changed = cur.end != before;
        match stop {
            WalkStop::Bad(e) => Err(e),
            WalkStop::Clean if (cur.count, cur.end) != (count, end) => Err(Error::corrupt(
                &seg.path,
                cur.end,
                format!("published position says {count} records ending at {end}, frames say {} ending at {}", cur.count, cur.end),
            )),
            WalkStop::Clean => Ok(changed),
        }
    }

    /// Lists the directory: drops segments retention removed, finishes a
    /// live segment the writer rotated away from, and maps new segments.
    /// On `opening`, problems with the live segment become warnings.
    fn rescan(&self, t: &mut Tracked, opening: bool) -> Result<bool> {
        // A file listed a moment ago may be unlinked by retention before it
        // is opened: list again rather than report it.
        let mut attempts = 0;
        loop {
            match self.rescan_once(t, opening) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempts < RELIST_ATTEMPTS => {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn rescan_once(&self, t: &mut Tracked, opening: bool) -> Result<bool> {
        ReaderCounters::bump(&self.inner.counters.rescans);
        t.last_rescan = Some(Instant::now());
        #[cfg(feature = "tiered")]
        if let Some(remote) = &self.inner.remote {
            return Ok(match remote.rescan()? {
                Some(segments) => {
                    t.state = Arc::new(State::new(segments));
                    true
                }
                None => false,
            });
        }
        let files = list_segments(&self.inner.dir)?;
        // Work on copies; commit only if everything below succeeds.
        let mut segments = t.state.segments.clone();
        let mut cursor = t.cursor;
        let mut warnings = Vec::new();
        let mut changed = false;

        // Retention removed the oldest files: drop them from the view (older
        // snapshots keep their mappings). The view's last segment too: a
        // reader that fell behind may have last seen, live, a segment that
        // was since sealed and removed; reopening it by name would fail for
        // ever. The view then goes on from the oldest file on disk, and a
        // follower left behind gets `Error::Truncated`.
        if let Some(&(first_listed, _)) = files.first() {
            while segments.first().is_some_and(|s| s.base_seq() < first_listed) {
                if segments.len() == 1 {
                    cursor = None;
                }
                segments.remove(0);
                changed = true;
            }
        }

        // Segments the writer finished are sealed soon after: map them as
        // sealed (footer index, no per-reader live index to keep).
        let finished = segments.len().saturating_sub(1);
        for seg in &mut segments[..finished] {
            if let Segment::Live(a) = seg {
                let file = match File::open(&a.path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // retention, just now
                    Err(e) => return Err(Error::io("open segment", &a.path, e)),
                };
                if let Some(Loaded::Sealed(sealed)) = sealed_if_trailer(&a.path, &file)? {
                    let (count, _) = a.committed();
                    // Compared by seqs covered: compaction may since have
                    // removed records from it.
                    if sealed.end_seq() != a.base_seq + count {
                        let what = format!("sealed with records up to seq {}, {count} were published", sealed.end_seq());
                        return Err(Error::corrupt(&a.path, sealed.frames_end, what));
                    }
                    *seg = Segment::Sealed(sealed);
                    changed = true;
                }
            }
        }

        let last_base = segments.last().map(|s| s.base_seq());
        let new: Vec<&(u64, PathBuf)> = files.iter().filter(|(b, _)| last_base.is_none_or(|lb| *b > lb)).collect();
        let mut stuck = None;
        for (k, (base, path)) in new.iter().enumerate() {
            // Look at the new file first: damage in it is its own, not a
            // reason to blame the segment before it.
            let loaded = load_segment(path, *base)?;
            if matches!(loaded, Loaded::NotReady) {
                if k + 1 == new.len() {
                    break;
                }
                return Err(Error::corrupt(path, 0, "segment header is blank but later segments exist"));
            }
            // The segment before this one is complete: bring it to its end.
            if let Some(e) = finish_last(&mut segments, &mut cursor, *base)? {
                stuck = Some(e);
                break;
            }
            if let Some(prev) = segments.last() {
                let end = match prev {
                    Segment::Sealed(s) => s.end_seq(),
                    Segment::Remote(r) => r.meta.end_seq,
                    Segment::Live(a) => a.base_seq + a.committed().0,
                };
                if *base < end {
                    return Err(Error::corrupt(path, 0, format!("segment starts at seq {base}, the previous one ends at {end}")));
                }
                if *base > end {
                    let missing = Error::Missing { path: self.inner.dir.join(segment_file_name(end)), from: end, to: *base };
                    warnings.push(missing.to_string());
                }
            }
            match loaded {
                Loaded::NotReady => break,
                Loaded::Sealed(s) => {
                    segments.push(Segment::Sealed(s));
                    cursor = None;
                }
                Loaded::Live(a, footer_damaged) => {
                    if footer_damaged {
                        warnings.push(format!("{}: footer damaged; the writer's recovery reseals it", path.display()));
                    }
                    segments.push(Segment::Live(a));
                    cursor = Some(Cursor::fresh());
                }
            }
            ReaderCounters::bump(&self.inner.counters.segments_mapped);
            changed = true;
        }
        if changed {
            t.state = Arc::new(State::new(segments));
            t.cursor = cursor;
            for w in warnings {
                t.warn(w);
            }
        }
        match (stuck, &t.stuck) {
            (None, _) => t.stuck = None,
            (Some(_), Some((since, e))) if !opening && since.elapsed() > STUCK_LIMIT => return Err(same_error(e)),
            (Some(_), Some(_)) => {}
            (Some(e), None) => t.stuck = Some((Instant::now(), e)),
        }
        match self.refresh_live(t) {
            Ok(live) => Ok(changed || live),
            Err(e) if opening => {
                t.warn(e.to_string());
                Ok(changed)
            }
            Err(e) => Err(e),
        }
    }
}

/// Brings the last segment in `segments`, if live, to the record count
/// implied by the next segment starting at `next_base`, walking on from
/// `cursor`. Returns what is wrong if it cannot (yet: the writer's last
/// publication may not be visible yet).
fn finish_last(segments: &mut [Segment], cursor: &mut Option<Cursor>, next_base: u64) -> Result<Option<Error>> {
    let Some(Segment::Live(seg)) = segments.last().cloned() else { return Ok(None) };
    let want = next_base.checked_sub(seg.base_seq).ok_or_else(|| Error::corrupt(&seg.path, 0, "segments out of order"))?;
    let mut cur = cursor.unwrap_or_else(Cursor::fresh);
    if cur.count < want {
        // Normally the writer published everything before it rotated.
        let (_, end) = seg.map.live_published();
        let _ = walk(seg.map.foreign_frames(end.max(cur.end)), &seg, &mut cur, Some(want));
    }
    if cur.count < want {
        // Sealed meanwhile (its trailer is final), or no writer appends to
        // it any more: read it to its end.
        let file = File::open(&seg.path).map_err(|e| Error::io("open segment", &seg.path, e))?;
        if let Some(Loaded::Sealed(s)) = sealed_if_trailer(&seg.path, &file)? {
            if s.end_seq() != next_base {
                return Err(Error::corrupt(
                    &seg.path,
                    s.frames_end,
                    format!("sealed with records up to seq {}, the next segment starts at {next_base}", s.end_seq()),
                ));
            }
            if let Some(last) = segments.last_mut() {
                *last = Segment::Sealed(s);
            }
            *cursor = None;
            return Ok(None);
        }
        let _ = walk(seg.map.foreign_frames(seg.map.len()), &seg, &mut cur, Some(want));
    }
    if cur.count != want {
        if cur.count > want {
            return Err(Error::corrupt(&seg.path, cur.end, format!("holds {} records, the next segment starts at {next_base}", cur.count)));
        }
        return Ok(Some(Error::corrupt(
            &seg.path,
            cur.end,
            format!(
                "records missing: the segment's frames end after seq {} but the next segment starts at seq {next_base} \
                     (damaged or truncated)",
                (seg.base_seq + cur.count).wrapping_sub(1)
            ),
        )));
    }
    seg.map.adopt(cur.count, cur.end);
    *cursor = None;
    Ok(None)
}

/// A copy of a corruption error kept to be reported again.
fn same_error(e: &Error) -> Error {
    match e {
        Error::Corrupt { path, offset, what } => Error::corrupt(path.clone(), *offset, what.clone()),
        other => Error::corrupt("", 0, other.to_string()),
    }
}

/// What a segment file turned out to be.
enum Loaded {
    /// Its header is not written yet (a segment being created).
    NotReady,
    Sealed(Arc<SealedSegment>),
    /// Live (or unsealed); the flag says its footer exists but is damaged.
    Live(Arc<ActiveSegment>, bool),
}

/// Opens one segment file without modifying it.
fn load_segment(path: &Path, base: u64) -> Result<Loaded> {
    let file = File::open(path).map_err(|e| Error::io("open segment", path, e))?;
    let len = file.metadata().map_err(|e| Error::io("stat segment", path, e))?.len();
    let mut page = vec![0u8; HEADER_BYTES as usize];
    if len < HEADER_BYTES {
        // Created and not yet preallocated (all zeros), or not a segment.
        let mut short = vec![0u8; len as usize];
        file.read_exact_at(&mut short, 0).map_err(|e| Error::io("read segment header", path, e))?;
        return match check_header(path, &short) {
            Err(HeaderOutcome::Fatal(e)) => Err(e),
            _ if short.iter().all(|&b| b == 0) => Ok(Loaded::NotReady),
            _ => Err(Error::NotALog { path: path.to_path_buf(), reason: "segment file shorter than a header" }),
        };
    }
    // The header is read with pread, not through a mapping: it may be being
    // written right now (a new log's first segment).
    file.read_exact_at(&mut page, 0).map_err(|e| Error::io("read segment header", path, e))?;
    let header = match check_header(path, &page) {
        Ok(h) => h,
        Err(HeaderOutcome::Blank) => return Ok(Loaded::NotReady),
        Err(HeaderOutcome::Fatal(e)) => return Err(e),
    };
    if header.base_seq.get() != base {
        return Err(Error::corrupt(path, 0, format!("file name says base seq {base}, header says {}", header.base_seq.get())));
    }
    let mut footer_damaged = false;
    match sealed_if_trailer(path, &file)? {
        Some(sealed) => return Ok(sealed),
        None => {
            let mut tail = [0u8; 8];
            if len >= HEADER_BYTES + TRAILER_BYTES && file.read_exact_at(&mut tail, len - TRAILER_BYTES).is_ok() {
                footer_damaged = tail == TRAILER_MAGIC;
            }
        }
    }
    let map = LiveMap::map_read_only(&file, len).map_err(|e| Error::io("mmap", path, e))?;
    Ok(Loaded::Live(Arc::new(ActiveSegment::new(path.to_path_buf(), file, map, base)), footer_damaged))
}

/// `Some(Loaded::Sealed)` if the file ends in a valid trailer and footer.
/// The trailer is read with pread: only a sealed file, whose length is final,
/// is then mapped whole.
fn sealed_if_trailer(path: &Path, file: &File) -> Result<Option<Loaded>> {
    let len = file.metadata().map_err(|e| Error::io("stat segment", path, e))?.len();
    let mut magic = [0u8; 8];
    if len < HEADER_BYTES + TRAILER_BYTES || file.read_exact_at(&mut magic, len - TRAILER_BYTES).is_err() || magic != TRAILER_MAGIC {
        return Ok(None);
    }
    match SealedSegment::load(path.to_path_buf(), file) {
        Ok(Ok(s)) => Ok(Some(Loaded::Sealed(Arc::new(s)))),
        Ok(Err(_damaged)) => Ok(None),
        Err(HeaderOutcome::Blank) => Ok(None),
        Err(HeaderOutcome::Fatal(e)) => Err(e),
    }
}

/// Segment files in `dir`, sorted by base seq.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            files.push((base, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Walks frames of the segment starting at seq `base` from `cur` on, through
/// `frames` (the file from `HEADER_BYTES`), without checking payload
/// checksums (readers check those). Only complete batches move `cur`; index
/// entries are pushed for them. Stops after `stop_count` records if given.
fn walk(frames: &[u8], seg: &ActiveSegment, cur: &mut Cursor, stop_count: Option<u64>) -> WalkStop {
    let (path, base, index) = (&seg.path, seg.base_seq, &seg.index);
    let mut pending = *cur;
    let mut entries: Vec<(u64, u64, u64)> = Vec::new();
    let mut keys: Vec<(u64, u64)> = Vec::new();
    loop {
        if stop_count.is_some_and(|n| cur.count >= n) && pending.count == cur.count {
            return WalkStop::Clean;
        }
        let off = pending.end;
        let frame = match decode_frame(frames, off - HEADER_BYTES, false) {
            Ok(f) => f,
            Err(FrameError::End) => return WalkStop::Clean,
            Err(e) => return WalkStop::Bad(frame_error(path, off, e)),
        };
        let expected = base + pending.count;
        if frame.seq != expected || frame.prev_len != pending.prev_len {
            let what = format!("sequence break: expected seq {expected}, found {}", frame.seq);
            return WalkStop::Bad(Error::corrupt(path, off, what));
        }
        pending.max_ts = pending.max_ts.max(frame.timestamp_us);
        if off >= pending.next_index_at {
            entries.push((frame.seq, off, pending.max_ts));
            pending.next_index_at = off + INDEX_INTERVAL_BYTES;
        }
        if !frame.key.is_empty() {
            keys.push((key_hash(frame.key), off));
        }
        pending.prev_len = frame.padded_len;
        pending.end += frame.padded_len;
        pending.count += 1;
        if frame.flags & FLAG_BATCH_CONTINUES == 0 {
            *cur = pending;
            for (seq, offset, max_ts) in entries.drain(..) {
                // A walk may be repeated after an error: keep the index sorted.
                let n = index.len();
                if n == 0 || index.get(n - 1).0 < seq {
                    index.push(seq, offset, max_ts);
                }
            }
            // Lookups by key in this process go through the same table the
            // writer fills in its own (repeated walks add nothing twice).
            for (hash, offset) in keys.drain(..) {
                seg.keys_for_writer().insert_after_last(hash, offset);
            }
        }
    }
}
