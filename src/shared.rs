//! State shared by the log handle, the writer and the background threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering as StdOrdering};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::options::Options;
use crate::segment::Segment;
use crate::snapshot::State;
use crate::sync::{lock, Arc, AtomicU64, Condvar, Mutex, Ordering, SnapshotCell};

/// Shared between [`crate::Log`], [`crate::Writer`] and the background threads.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) state: SnapshotCell<State>,
    /// Serialises read-modify-write of `state` (rotation, sealing, retention).
    /// Readers never take it.
    publish_lock: Mutex<()>,
    /// Serialises syncs (the writer's and the flusher's).
    sync_lock: Mutex<()>,
    /// The digest of the newest sealed segment: the next seal's
    /// `prev_digest`. Held by the sealer while it seals, and by compaction
    /// while it rewrites the chain's last links.
    pub(crate) chain_head: Mutex<[u8; 32]>,
    /// Serialises retention and compaction: both replace sealed segment
    /// files, and neither may act on a file the other is replacing.
    pub(crate) maintenance: Mutex<()>,
    /// Group commit: whether a producer is syncing for the group, and the
    /// condvar its followers wait on (see `sync_through`).
    group_syncing: Mutex<bool>,
    group_done: Condvar,
    poisoned: StdAtomicBool,
    /// A std `Arc` even under loom: `Error::Poisoned` carries it to users.
    poison: OnceLock<std::sync::Arc<Error>>,
    /// Every seq below this is durable. Raised only at the end of a
    /// completed sync, to the count that sync had loaded before flushing.
    pub(crate) durable_next: AtomicU64,
    /// A segment file was created or renamed since the last directory sync.
    pub(crate) dir_dirty: StdAtomicBool,
    /// What the log has done, for [`crate::Log::stats`].
    pub(crate) counters: crate::stats::Counters,
    /// Tails parked waiting for the next publication.
    pub(crate) tail_waiters: crate::tail::Waiters,
    /// Woken after each seal: the uploader of a tiered log.
    pub(crate) sealed_kick: OnceLock<crossbeam_channel::Sender<()>>,
}

impl Shared {
    pub(crate) fn new(dir: PathBuf, opts: Options, state: State, durable_next: u64, chain_head: [u8; 32]) -> Shared {
        Shared {
            dir,
            opts,
            state: SnapshotCell::new(Arc::new(state)),
            publish_lock: Mutex::new(()),
            sync_lock: Mutex::new(()),
            chain_head: Mutex::new(chain_head),
            maintenance: Mutex::new(()),
            group_syncing: Mutex::new(false),
            group_done: Condvar::new(),
            poisoned: StdAtomicBool::new(false),
            poison: OnceLock::new(),
            durable_next: AtomicU64::new(durable_next),
            dir_dirty: StdAtomicBool::new(false),
            counters: crate::stats::Counters::default(),
            tail_waiters: crate::tail::Waiters::new(),
            sealed_kick: OnceLock::new(),
        }
    }

    pub(crate) fn fs(&self) -> &dyn FileSystem {
        &*self.opts.fs
    }

    /// Replaces the published state with `f(current)`.
    pub(crate) fn publish(&self, f: impl FnOnce(&State) -> State) {
        let _g = lock(&self.publish_lock);
        let next = f(&self.state.load());
        self.state.store(Arc::new(next));
    }

    /// Records `e` as the poisoning cause (the first one wins) and returns it.
    pub(crate) fn poison_with(&self, e: Error) -> Error {
        if self.poison.set(std::sync::Arc::new(e.duplicate())).is_ok() {
            tracing::error!(dir = %self.dir.display(), error = %e, "writer poisoned; reopen the log to recover");
        }
        self.poisoned.store(true, StdOrdering::Release);
        e
    }

    /// `Err(Poisoned)` once an I/O error has poisoned the writer.
    #[inline]
    pub(crate) fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(StdOrdering::Relaxed) {
            return Err(self.poison_error());
        }
        Ok(())
    }

    #[cold]
    fn poison_error(&self) -> Error {
        let cause = self.poison.get().cloned().unwrap_or_else(|| std::sync::Arc::new(Error::corrupt("", 0, "unknown")));
        Error::Poisoned { cause }
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(StdOrdering::Acquire)
    }

    /// For the sealer, after its fdatasync of a segment's frames succeeded
    /// and before it writes a footer vouching for them: fails if any sync of
    /// the log has failed. A failed msync may have consumed the file's
    /// write-back error (the kernel reports it once per open file), so the
    /// sealer's own fdatasync can succeed although pages of the segment never
    /// reached the disk. Taking the sync lock orders this check after any
    /// sync in progress, which poisons before it releases the lock.
    pub(crate) fn confirm_no_failed_sync(&self) -> Result<()> {
        let _g = lock(&self.sync_lock);
        self.check_poison()
    }

    /// Whether a completed sync has covered `seq`.
    #[inline]
    pub(crate) fn is_durable(&self, seq: u64) -> bool {
        self.durable_next.load(Ordering::Acquire) > seq
    }

    /// Group commit: returns once `seq` (already published by the caller)
    /// is durable. The first caller to find no sync running leads: it syncs
    /// everything published so far and then wakes every follower at once.
    /// Followers wait for the leader, not for each other: each wakes, finds
    /// its record covered (it was published before the leader's sync began)
    /// and returns, or leads the next sync for the records published while
    /// that one ran. One sync thus covers every producer that was waiting.
    pub(crate) fn sync_through(&self, seq: u64) -> Result<()> {
        self.check_poison()?;
        if self.is_durable(seq) {
            return Ok(());
        }
        let mut syncing = lock(&self.group_syncing);
        loop {
            if self.is_durable(seq) {
                return Ok(());
            }
            // A failed sync poisons before it wakes us: stop waiting.
            self.check_poison()?;
            if !*syncing {
                break;
            }
            syncing = match self.group_done.wait(syncing) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        *syncing = true;
        drop(syncing);
        let _lead = Leading(self);
        self.sync_all()
    }

    /// Makes everything published so far durable: msync of each live
    /// segment's unsynced range (oldest first), then the directory if a
    /// segment file appeared. Never retries a failed sync: it poisons.
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.check_poison()?;
        let _g = lock(&self.sync_lock);
        // Again under the lock: a sync that failed while this one waited
        // poisoned the writer, and must not be followed by one that finds
        // nothing left to flush (the failed call already cleared `dir_dirty`
        // and moved `synced_end`) and declares everything durable.
        self.check_poison()?;
        let started = std::time::Instant::now();
        let state = self.state.load();
        let mut durable_to = None;
        let last = state.segments.len().saturating_sub(1);
        for (i, seg) in state.segments.iter().enumerate() {
            let Segment::Live(a) = seg else { continue };
            let (count, end) = a.committed();
            let synced = a.synced_end.load(Ordering::Acquire);
            if end > synced {
                if i < last {
                    // Rotated away (only the last segment is written): drop
                    // its page tables so write-back needs no TLB flush per
                    // page, as the sealer does (docs/design.md).
                    a.map.drop_page_tables(synced, end);
                }
                self.fs()
                    .sync_map(a.map.raw(), synced as usize, (end - synced) as usize)
                    .map_err(|e| self.poison_with(Error::io("msync", &a.path, e)))?;
                a.synced_end.store(end, Ordering::Release);
            }
            // The deliberate bug the loom group-commit model must catch:
            // claiming records published while the msync ran.
            #[cfg(all(loom, feature = "loom-mutant-sync"))]
            let (count, _) = a.committed();
            durable_to = Some(a.base_seq + count);
        }
        if self.dir_dirty.swap(false, StdOrdering::AcqRel) {
            self.fs().sync_dir(&self.dir).map_err(|e| self.poison_with(Error::io("fsync directory", &self.dir, e)))?;
        }
        // A seal that failed meanwhile (it syncs off this lock) poisoned the
        // writer: what it failed to sync may be lost, so claim nothing.
        self.check_poison()?;
        if let Some(n) = durable_to {
            self.durable_next.fetch_max(n, Ordering::AcqRel);
        }
        self.counters.synced(started.elapsed());
        Ok(())
    }

    /// Whether some published record is not yet known durable.
    pub(crate) fn has_unsynced(&self) -> bool {
        let state = self.state.load();
        match state.segments.last() {
            Some(Segment::Live(a)) => a.base_seq + a.committed().0 > self.durable_next.load(Ordering::Acquire),
            _ => false,
        }
    }
}

/// The group-commit leader's turn: ends (wakes the followers) however the
/// leader's sync returns, so that no follower waits for a leader that left.
struct Leading<'a>(&'a Shared);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        *lock(&self.0.group_syncing) = false;
        self.0.group_done.notify_all();
    }
}
