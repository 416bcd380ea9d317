//! The log handle: open, hand out the writer and snapshots, run the
//! background worker (preallocate, seal) and flusher.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering as StdOrdering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::error::{Error, Result};
use crate::lifecycle::{prealloc_path, preallocate, seal, Prepared};
use crate::options::{Options, SyncPolicy};
use crate::raw::{PopulateStep, Populator};
use crate::recovery::{recover, RecoveryReport};
use crate::segment::{ActiveSegment, SealedSegment, Segment};
use crate::shared::Shared;
use crate::snapshot::Snapshot;
use crate::sync::{lock, Arc};
use crate::writer::{Writer, WriterCore};

/// Name of the lock file in a log directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Work for the background threads. Preparing and sealing run on separate
/// threads so that a slow seal (blake3 + fdatasync of a whole segment) never
/// delays the next segment the writer is waiting for.
pub(crate) enum Job {
    /// Preallocate and pre-fault the next segment.
    Prepare,
    /// Seal a segment the writer rotated away from.
    Seal(Arc<ActiveSegment>),
}

/// What the sealer thread is asked to do.
enum SealMsg {
    /// Seal this segment after those queued before it.
    Seal(Arc<ActiveSegment>),
    /// Report, once every segment queued before has been sealed or has
    /// failed, the first error met (for [`Log::close`]).
    Flush(Sender<Result<()>>),
    /// Stop (the log is dropped).
    Stop,
}

/// An open log. Cheap to clone; every clone is the same log. Readers call
/// [`Log::snapshot`] from any thread; one [`Writer`] at a time appends.
///
/// # Closing
///
/// The log stays open while any handle to it lives: a `Log` clone, its
/// [`Writer`], an [`crate::Ingest`], a [`crate::Tail`] or a
/// [`crate::RetentionTask`]. When the last one is dropped, the log syncs
/// (unless the policy is [`SyncPolicy::Never`]), lets the background sealer
/// finish the segments already queued, stops its threads and releases the
/// directory lock; errors met on the way are logged through `tracing` and
/// otherwise lost. Call [`Log::close`] to make everything durable and get
/// those errors instead.
#[derive(Clone)]
pub struct Log {
    inner: std::sync::Arc<LogInner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("dir", &self.inner.shared.dir).field("next_seq", &self.next_seq()).finish()
    }
}

pub(crate) struct LogInner {
    pub(crate) shared: Arc<Shared>,
    prepare_jobs: Sender<bool>,
    seal_jobs: Sender<SealMsg>,
    pub(crate) payload_limit: usize,
    pub(crate) key_limit: usize,
    flush_kick: Option<Sender<bool>>,
    writer_slot: std::sync::Mutex<Option<WriterCore>>,
    report: RecoveryReport,
    threads: Vec<JoinHandle<()>>,
    /// The uploader of a tiered log.
    #[cfg(feature = "tiered")]
    tier: Option<crate::tiering::Tier>,
    _lock: File,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it after a
    /// crash. Fails with [`Error::Locked`] if another process has it open.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOptions`] for options out of range; [`Error::Locked`] if another process has
    /// the log open; [`Error::Io`] naming the operation and path; [`Error::UnsupportedVersion`] for
    /// segments of another format; a corruption error ([`Error::Corrupt`],
    /// [`Error::ChecksumMismatch`]) naming file and offset for damage the [`crate::RecoveryMode`]
    /// does not repair.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Log> {
        let dir = dir.as_ref().to_path_buf();
        opts.validate()?;
        crate::sync::init_barriers();
        opts.clock.warm_up();
        let fs = opts.fs.clone();
        fs.create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked { path: lock_path.clone() },
            _ => Error::io("lock", &lock_path, e),
        })?;
        // A tiered log's evicted segments come before the local ones: the
        // first local segment links to the last of them.
        #[cfg(feature = "tiered")]
        let (tier, before) = match &opts.tier {
            Some(t) => {
                let (attached, before) = crate::tiering::attach(&dir, t)?;
                (Some(attached), before)
            }
            None => (None, None),
        };
        #[cfg(not(feature = "tiered"))]
        let before = None;
        #[cfg_attr(not(feature = "tiered"), allow(unused_mut))]
        let mut rec = recover(&dir, &opts, before)?;
        #[cfg(feature = "tiered")]
        if let Some(t) = &tier {
            t.put_remote_first(&mut rec.state);
        }
        let durable_next = rec.active.base_seq + rec.writer.count;
        let payload_limit = opts.payload_limit();
        let key_limit = opts.key_limit();
        let policy = opts.sync_policy;
        let shared = Arc::new(Shared::new(dir, opts, rec.state, durable_next, rec.last_digest));

        let (prepare_jobs, prepare_rx) = unbounded();
        // Bounded: a rotation waits while `SEALS_QUEUED` segments already
        // wait for the sealer, so a sealer slower than the writer (a slow
        // disk, `Options::proofs`) holds the writer back instead of letting
        // unsealed segments pile up on disk and in the page cache.
        let (seal_jobs, seal_rx) = bounded(SEALS_QUEUED);
        // Spares are kept preallocated ahead of the writer (`Options::spare_segments`),
        // so a rotation never waits for a file to be created and allocated.
        // For throughput logs their pages are populated after the hand-over,
        // a bounded lead ahead of the writer (see `preparer`): page population
        // is the dominant cost of a new segment (25-100 ms per 64 MiB).
        let ahead = shared.opts.spares();
        let (ready_tx, ready_rx) = bounded(ahead);
        let mut threads = Vec::new();
        let s = shared.clone();
        let spares = rec.report.spares.clone();
        threads.push(spawn("varvelog-prepare", move || preparer(s, spares, prepare_rx, ready_tx))?);
        let s = shared.clone();
        threads.push(spawn("varvelog-seal", move || sealer(s, seal_rx))?);
        for _ in 0..ahead {
            let _ = prepare_jobs.send(false);
        }

        let mut flush_kick = None;
        if let SyncPolicy::Background { interval, .. } = policy {
            let (tx, rx) = bounded(1);
            let s = shared.clone();
            threads.push(spawn("varvelog-flusher", move || flusher(s, rx, interval))?);
            flush_kick = Some(tx);
        }
        #[cfg(feature = "tiered")]
        let tier = tier.map(|t| t.start(shared.clone())).transpose()?;
        let core = WriterCore { seg: rec.active, map: rec.map, st: rec.writer, ready: ready_rx, unsynced_bytes: 0 };
        let inner = LogInner {
            shared,
            prepare_jobs,
            seal_jobs,
            payload_limit,
            key_limit,
            flush_kick,
            writer_slot: std::sync::Mutex::new(Some(core)),
            report: rec.report,
            threads,
            #[cfg(feature = "tiered")]
            tier,
            _lock: lock,
        };
        Ok(Log { inner: std::sync::Arc::new(inner) })
    }

    /// Makes every record appended so far durable, whatever the sync
    /// policy, waits until the background sealer has sealed every segment
    /// the writer rotated away from, and drops this handle (closing the log
    /// if it was the last one; see "Closing" above).
    ///
    /// # Errors
    ///
    /// The first error of the final sync or of a queued seal:
    /// [`Error::Poisoned`] if an earlier failure poisoned the writer (the
    /// records it did not cover may not be durable; reopening recovers),
    /// [`Error::Io`] if a seal found no space for its footer (the segment
    /// stays readable and is sealed on the next open).
    pub fn close(self) -> Result<()> {
        let synced = self.inner.shared.sync_all();
        let sealed = self.inner.flush_seals();
        drop(self);
        synced.and(sealed)
    }

    /// The log's one writer.
    ///
    /// # Errors
    ///
    /// [`Error::WriterBusy`] while another `Writer` (or an [`crate::Ingest`])
    /// of this log is alive.
    pub fn writer(&self) -> Result<Writer> {
        let core = self.inner.writer_slot.lock().unwrap_or_else(|p| p.into_inner()).take().ok_or(Error::WriterBusy)?;
        Ok(Writer::new(self.inner.clone(), core))
    }

    /// The records published so far, as an immutable view. Lock-free.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.inner.shared.state.load())
    }

    /// The last seq known durable, or `None` if no record is.
    #[must_use]
    pub fn durable_seq(&self) -> Option<u64> {
        self.inner.shared.durable_next.load(StdOrdering::Acquire).checked_sub(1)
    }

    /// The seq the next append will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.snapshot().next_seq()
    }

    /// What opening found and did.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// The log's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Whether an I/O error has poisoned the writer (reopen to recover).
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.inner.shared.is_poisoned()
    }

    /// The log's counters since it was opened: appends, bytes, batches,
    /// syncs and their latency, rotations, seals, retention, tail wake-ups.
    #[must_use]
    pub fn stats(&self) -> crate::Stats {
        let shared = &self.inner.shared;
        let mut s = shared.counters.read();
        s.next_seq = self.next_seq();
        s.durable_next = shared.durable_next.load(StdOrdering::Acquire);
        s
    }

    /// What tiering to an object store has done since the log opened
    /// (`None` if it is not tiered: see [`Options::tier`]).
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    #[must_use]
    pub fn tier_stats(&self) -> Option<crate::TierStats> {
        let tier = self.inner.tier.as_ref()?;
        Some(tier.stats(&self.inner.shared.state.load()))
    }

    /// Waits until the segments the writer has rotated away from are
    /// sealed and every sealed segment is uploaded and listed in the
    /// manifest, for at most `timeout`. Appends go on meanwhile; those
    /// still in the active segment are not waited for.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOptions`] if the log is not tiered; [`Error::Store`]
    /// naming the last error met if the uploads are not done in time; a
    /// seal's error (see [`Log::close`]).
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    pub fn wait_uploaded(&self, timeout: Duration) -> Result<()> {
        let tier = self.inner.tier.as_ref().ok_or_else(|| Error::InvalidOptions("the log is not tiered (Options::tier)".into()))?;
        self.inner.flush_seals()?;
        tier.wait_uploaded(|| self.inner.shared.state.load(), timeout)
    }

    /// For the tail, ingest, retention and verify modules.
    pub(crate) fn inner(&self) -> &std::sync::Arc<LogInner> {
        &self.inner
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }
}

impl LogInner {
    pub(crate) fn submit(&self, job: Job) {
        // Send errors mean the thread is gone, which only happens at drop.
        let _ = match job {
            Job::Prepare => self.prepare_jobs.send(false).is_ok(),
            Job::Seal(seg) => self.seal_jobs.send(SealMsg::Seal(seg)).is_ok(),
        };
    }

    /// Waits for the segments queued for sealing; the first error met.
    pub(crate) fn flush_seals(&self) -> Result<()> {
        let (tx, rx) = bounded(1);
        let stopped = || Error::io("seal", &self.shared.dir, std::io::Error::other("sealer thread stopped"));
        self.seal_jobs.send(SealMsg::Flush(tx)).map_err(|_| stopped())?;
        rx.recv().unwrap_or_else(|_| Err(stopped()))
    }

    pub(crate) fn park_writer(&self, core: WriterCore) {
        *self.writer_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(core);
    }

    pub(crate) fn kick_flusher(&self) {
        if let Some(k) = &self.flush_kick {
            let _ = k.try_send(false);
        }
    }
}

impl Drop for LogInner {
    fn drop(&mut self) {
        // First: the uploader evicts segment files, and must not once the
        // directory may be handed to another process.
        #[cfg(feature = "tiered")]
        if let Some(t) = &mut self.tier {
            t.stop();
        }
        if self.shared.opts.sync_policy != SyncPolicy::Never && !self.shared.is_poisoned() {
            let _ = self.shared.sync_all();
        }
        let _ = self.prepare_jobs.send(true);
        let _ = self.seal_jobs.send(SealMsg::Stop);
        if let Some(k) = &self.flush_kick {
            let _ = k.send(true);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| Error::io("spawn thread", name, e))
}

/// Removes the spares a previous process left (off the open path), then
/// preallocates and pre-faults the next segment whenever the writer took one.
fn preparer(shared: Arc<Shared>, stale: Vec<std::path::PathBuf>, jobs: Receiver<bool>, ready: Sender<Result<Prepared>>) {
    // New spares are numbered past the stale ones, so a stale file that
    // cannot be removed never collides with a new name.
    let mut n = stale.iter().filter_map(|p| spare_number(p)).max().map_or(0, |m| m + 1);
    for path in &stale {
        if let Err(e) = shared.fs().remove(path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a stale spare segment");
        }
    }
    // Throughput logs (no zero-fill) get their spare as soon as it is
    // mapped, and its pages are populated after the hand-over, a little
    // ahead of the writer: a writer that catches up faults its pages in
    // itself instead of waiting, and pages populated just before the writer
    // reaches them are still in the cache (docs/design.md, "populate ahead").
    let populate_ahead = shared.opts.prefault && !shared.opts.zero_fill_enabled();
    let mut opts = shared.opts.clone();
    opts.prefault &= !populate_ahead;
    let mut pending: VecDeque<Populator> = VecDeque::new();
    loop {
        // A spare the writer has moved past needs nothing more.
        while pending.len() >= 2 && pending[1].started() {
            pending.pop_front();
        }
        let mut worked = false;
        let mut i = 0;
        while i < pending.len() && !worked {
            match pending[i].step(POPULATE_LEAD_BYTES, POPULATE_CHUNK_BYTES) {
                PopulateStep::Worked => worked = true,
                PopulateStep::Ahead => i += 1,
                PopulateStep::Done => drop(pending.remove(i)),
            }
        }
        let job = if worked {
            jobs.try_recv().map_err(|e| e.is_disconnected())
        } else if pending.is_empty() {
            jobs.recv().map_err(|_| true)
        } else {
            jobs.recv_timeout(POPULATE_POLL).map_err(|e| e.is_disconnected())
        };
        match job {
            Ok(false) => {}
            Ok(true) | Err(true) => return,
            Err(false) => continue,
        }
        let path = prealloc_path(&shared.dir, n);
        n += 1;
        let prepared = preallocate(shared.fs(), &path, &opts);
        let populator = prepared.as_ref().ok().filter(|_| populate_ahead).map(|p| p.map.populator());
        match ready.try_send(prepared) {
            Err(TrySendError::Full(Ok(p)) | TrySendError::Disconnected(Ok(p))) => {
                let _ = shared.fs().remove(&p.path);
            }
            _ => pending.extend(populator),
        }
    }
}

/// Bytes the preparer populates at a time ahead of the writer.
const POPULATE_CHUNK_BYTES: u64 = 1 << 20;
/// How far ahead of the writer's published end the preparer populates:
/// within the last-level cache (48 MiB on the machine measured), so the pages
/// the writer reaches were zeroed recently; far enough that the writer
/// rarely catches up (2 MiB measured clearly worse, 8-64 MiB alike within
/// noise, 32 MiB best; docs/design.md).
const POPULATE_LEAD_BYTES: u64 = 32 << 20;
/// How often a preparer that is far enough ahead looks at the writer again.
const POPULATE_POLL: Duration = Duration::from_millis(1);

/// The number in a spare's name (`NNNNNN.prealloc`), if it has one.
fn spare_number(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_suffix(crate::format::PREALLOC_SUFFIX)?.parse().ok()
}

/// Seals rotated-away segments in order, chaining their digests, and
/// publishes each as sealed. A seal that fails for lack of space (writing
/// the footer) is retried later, the segment staying live meanwhile; any
/// other failure poisons the writer.
fn sealer(shared: Arc<Shared>, jobs: Receiver<SealMsg>) {
    crate::keys::log_filter::build_at_start(&shared);
    let mut waiting = std::collections::VecDeque::new();
    let mut cached = CachedSealed::new(shared.opts.cached_sealed_segments);
    // The Merkle tree's frontier at the end of the last segment sealed,
    // when the log keeps proofs.
    let mut merkle: Option<crate::proofs::Frontier> = None;
    let mut flushes = Vec::new();
    loop {
        // Wait for a job, or (with a seal to retry) at most `SEAL_RETRY`.
        let received =
            if waiting.is_empty() { jobs.recv().map_err(|_| RecvTimeoutError::Disconnected) } else { jobs.recv_timeout(SEAL_RETRY) };
        match received {
            Ok(SealMsg::Seal(seg)) => waiting.push_back(seg),
            Ok(SealMsg::Flush(reply)) => flushes.push(reply),
            Err(RecvTimeoutError::Timeout) => {}
            Ok(SealMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut outcome = Ok(());
        while let Some(seg) = waiting.front().cloned() {
            if shared.is_poisoned() {
                outcome = shared.check_poison();
                waiting.clear(); // the chain cannot continue; reopening reseals
                break;
            }
            let started = std::time::Instant::now();
            // The chain's head is held until the seal is published, so that
            // compaction, which may rewrite the last links, sees it.
            let mut head = lock(&shared.chain_head);
            let mut frontier = if shared.opts.proofs { merkle_frontier(&shared, merkle.take(), seg.base_seq) } else { None };
            match seal(shared.fs(), &seg, *head, frontier.as_mut(), &|| shared.confirm_no_failed_sync()) {
                Ok(sealed) => {
                    merkle = frontier;
                    waiting.pop_front();
                    *head = sealed.digest;
                    shared.counters.sealed();
                    tracing::debug!(
                        segment = %sealed.path.display(),
                        records = sealed.count,
                        took_us = started.elapsed().as_micros() as u64,
                        "sealed segment"
                    );
                    crate::keys::log_filter::publish_sealed_with_keys(&shared, &sealed.clone(), |filter| {
                        publish_sealed(&shared, &seg, sealed, filter)
                    });
                    drop(head);
                    if let Some(kick) = shared.sealed_kick.get() {
                        let _ = kick.try_send(());
                    }
                    cached.sealed(seg.path.clone());
                }
                Err(e) if e.is_out_of_space_before_footer() => {
                    tracing::warn!(segment = %seg.path.display(), error = %e, "no space to seal a segment; retrying later");
                    outcome = Err(e);
                    break;
                }
                Err(e) => {
                    outcome = Err(shared.poison_with(e));
                    waiting.clear();
                    break;
                }
            }
        }
        // A seal that failed in an earlier pass poisoned the log; a flush
        // arriving after it must report that, not this pass's empty `Ok`.
        for reply in flushes.drain(..) {
            let answer = outcome.as_ref().map(|_| ()).map_err(Error::duplicate).and_then(|()| shared.check_poison());
            let _ = reply.send(answer);
        }
    }
}

/// The Merkle frontier at `base`, for sealing the segment that starts
/// there: `last` (the end of the segment sealed before) if it is there,
/// else from the log (the segments before keep it, or their records give
/// it). `None`, with a warning, if the records are gone: the segment is then
/// sealed without a Merkle section.
fn merkle_frontier(shared: &Shared, last: Option<crate::proofs::Frontier>, base: u64) -> Option<crate::proofs::Frontier> {
    if let Some(f) = last.filter(|f| f.size() == base) {
        return Some(f);
    }
    let snap = Snapshot::new(shared.state.load());
    match (crate::proofs::LogNodes { snap: &snap }).frontier(base) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(base_seq = base, error = %e, "sealing a segment without its Merkle section");
            None
        }
    }
}

/// The newest sealed segments left in the page cache
/// ([`crate::Options::cached_sealed_segments`]); older ones are dropped from it.
struct CachedSealed {
    keep: usize,
    paths: std::collections::VecDeque<std::path::PathBuf>,
}

impl CachedSealed {
    fn new(keep: usize) -> CachedSealed {
        CachedSealed { keep, paths: std::collections::VecDeque::new() }
    }

    /// Notes a segment just sealed (synced: its pages are clean) and drops
    /// those that fell out of the window from the page cache. Advice only:
    /// no byte changes, a file already removed by retention is skipped, and
    /// a failure costs nothing but the memory.
    fn sealed(&mut self, path: std::path::PathBuf) {
        if self.keep == usize::MAX {
            return;
        }
        self.paths.push_back(path);
        while self.paths.len() > self.keep {
            let Some(old) = self.paths.pop_front() else { break };
            let dropped = std::fs::File::open(&old)
                .and_then(|f| rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).map_err(std::io::Error::from));
            if let Err(e) = dropped {
                tracing::debug!(segment = %old.display(), error = %e, "could not drop a sealed segment from the page cache");
            }
        }
    }
}

/// How long the sealer waits before retrying a seal that found no space.
const SEAL_RETRY: Duration = Duration::from_millis(50);

/// Rotated segments that may wait for the sealer (besides the one it is
/// sealing) before a rotation waits for it.
const SEALS_QUEUED: usize = 4;

/// Publishes the state with `seg` replaced by its sealed form. Readers
/// holding the older state keep reading the live mapping, whose published
/// end is final; both views hold the same records.
pub(crate) fn publish_sealed(
    shared: &Shared,
    seg: &Arc<ActiveSegment>,
    sealed: Arc<SealedSegment>,
    keys_filter: Option<std::sync::Arc<crate::keys::LogFilter>>,
) {
    shared.publish(|old| {
        let mut state = old.replacing(|s| matches!(s, Segment::Live(a) if Arc::ptr_eq(a, seg)).then(|| Segment::Sealed(sealed.clone())));
        state.keys_filter = keys_filter;
        state
    });
}

/// Syncs in the background for [`SyncPolicy::Background`].
fn flusher(shared: Arc<Shared>, kicks: Receiver<bool>, interval: Duration) {
    loop {
        match kicks.recv_timeout(interval) {
            Ok(true) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(false) | Err(RecvTimeoutError::Timeout) => {
                if shared.is_poisoned() {
                    return;
                }
                if shared.has_unsynced() {
                    // A failure poisons the writer, which reports it.
                    let _ = shared.sync_all();
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::fs::{FaultFs, Op};
    use crate::lifecycle::activate;

    #[test]
    fn a_flush_after_a_seal_that_failed_earlier_reports_the_failure() {
        // Goal: `Log::close` learns of a seal that failed before its flush
        // reached the sealer (in an earlier pass of the sealer's loop), not
        // only of one failing in the same pass. Method: give the sealer a
        // segment whose seal fails (EIO from fdatasync), wait until that
        // poisoned the log, then send a flush: its answer must be an error.
        let dir = tempfile::tempdir().unwrap();
        let fs = Arc::new(FaultFs::new());
        let opts = Options::new().segment_bytes(64 << 10).file_system(fs.clone());
        let prepared = preallocate(&*fs, &prealloc_path(dir.path(), 0), &opts).unwrap();
        let (seg, _map) = activate(&*fs, dir.path(), prepared, 0).unwrap();
        let state = crate::snapshot::State::new(vec![Segment::Live(seg.clone())]);
        let shared = Arc::new(Shared::new(dir.path().to_path_buf(), opts, state, 0, [0; 32]));
        fs.fail(Op::SyncFile, 0, u64::MAX, std::io::ErrorKind::Other);
        let (jobs, rx) = unbounded();
        let worker = {
            let shared = shared.clone();
            std::thread::spawn(move || sealer(shared, rx))
        };
        jobs.send(SealMsg::Seal(seg)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !shared.is_poisoned() {
            assert!(Instant::now() < deadline, "the seal did not fail within 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (reply, answer) = bounded(1);
        jobs.send(SealMsg::Flush(reply)).unwrap();
        let answer = answer.recv_timeout(Duration::from_secs(10)).expect("the sealer answers a flush");
        assert!(answer.is_err(), "a flush after a failed seal answered Ok");
        jobs.send(SealMsg::Stop).unwrap();
        worker.join().unwrap();
    }
}
