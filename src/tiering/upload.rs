//! The uploader: one thread per tiered log. Each pass it
//!
//! 1. uploads the oldest sealed segment the manifest does not list (with
//!    this digest), reads the object back and checks it against the
//!    segment's whole-file blake3;
//! 2. writes the next manifest generation with a conditional put (listing
//!    that segment, without the segments retention dropped), then the local
//!    copy (synced, renamed);
//! 3. deletes the objects the new manifest no longer lists;
//! 4. evicts from the disk the segments the local policy lets go whose
//!    upload the manifest confirms: it publishes them as remote, then
//!    unlinks their files.
//!
//! A segment is thus never unlinked before a manifest listing it is durable
//! both in the store and locally; a crash at any point leaves each segment
//! local, or remote and confirmed (docs/tiered.md). The writer never waits:
//! the sealer only wakes this thread. Failures are counted, logged and
//! retried with a backoff from 100 ms doubling to `max_backoff`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::cache::Cache;
use super::manifest::{Entry, Manifest};
use super::store::{ManifestPut, Store};
use super::{TierCounters, TierOptions, TierStats, TIER_DIR};
use crate::error::{Error, Result};
use crate::segment::{Fetch, RemoteSegment, SealedSegment, Segment, SegmentMeta};
use crate::shared::Shared;
use crate::snapshot::State;

/// A tiered log's uploader, from [`attach`] and then [`Tier::start`].
pub(crate) struct Tier {
    parts: Arc<Parts>,
    stop: Arc<AtomicBool>,
    kick: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// What the uploader and the log's handle share.
struct Parts {
    opts: TierOptions,
    store: Arc<Store>,
    cache: Arc<Cache>,
    counters: Arc<TierCounters>,
    /// The manifest as last confirmed (in the store and locally).
    confirmed: Mutex<Manifest>,
}

/// What opening a tiered log prepares before its threads start: the store,
/// the cache, and the remote segments to put before the local ones.
pub(crate) struct Attached {
    parts: Arc<Parts>,
}

/// The local copy of the manifest in a log's directory.
fn local_manifest(dir: &Path) -> PathBuf {
    dir.join(TIER_DIR).join(super::store::MANIFEST_NAME)
}

/// Opens the store for a log in `dir`, before recovery: returns what the
/// uploader needs and, if the segments before the local ones are only in
/// the store, the last of them as `(end seq, digest)`, for the chain.
pub(crate) fn attach(dir: &Path, opts: &TierOptions) -> Result<(Attached, Option<crate::recovery::ChainLink>)> {
    let counters = Arc::new(TierCounters::default());
    let store = Arc::new(Store::new(opts.store.clone(), &opts.prefix, opts.url.clone())?);
    let cache = Arc::new(Cache::new(opts.cache_dir_for(dir), opts.cache_bytes, store.clone(), counters.clone(), false)?);
    let manifest = Manifest::load_local(&local_manifest(dir))?;
    let names = std::fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))?;
    let first_local = names.filter_map(|e| e.ok()?.file_name().to_str().and_then(crate::format::parse_segment_file_name)).min();
    let before = match first_local {
        Some(base) => manifest.segments.iter().find(|e| e.meta.end_seq == base),
        // Every local file is gone: the log goes on after the store's.
        None => manifest.segments.last(),
    };
    let before = before.map(|e| (e.meta.end_seq, e.meta.digest));
    let parts = Parts { opts: opts.clone(), store, cache, counters, confirmed: Mutex::new(manifest) };
    Ok((Attached { parts: Arc::new(parts) }, before))
}

impl Attached {
    /// After recovery: puts the segments only the store holds (the manifest
    /// lists them, their files are gone) before the local ones in `state`.
    pub(crate) fn put_remote_first(&self, state: &mut State) {
        let p = &self.parts;
        let manifest = p.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        let first_local = state.segments.first().map_or(u64::MAX, Segment::base_seq);
        let fetch: Arc<dyn Fetch> = p.cache.clone();
        let remote: Vec<Segment> = manifest
            .segments
            .iter()
            .take_while(|e| e.meta.end_seq <= first_local)
            .map(|e| Segment::Remote(crate::sync::Arc::new(remote_segment(&p.store, e, &fetch))))
            .collect();
        if !remote.is_empty() {
            tracing::info!(segments = remote.len(), url = %p.opts.url, "log opened with segments held only in the object store");
            let segments = remote.into_iter().chain(state.segments.drain(..)).collect();
            *state = State::new(segments);
        }
    }
}

/// The remote segment a manifest entry describes.
pub(crate) fn remote_segment(store: &Store, e: &Entry, fetch: &Arc<dyn Fetch>) -> RemoteSegment {
    RemoteSegment::new(e.meta.clone(), store.url_of(&e.key), e.key.clone(), fetch.clone())
}

impl Attached {
    /// Starts the uploader over `shared` and has the sealer wake it.
    pub(crate) fn start(self, shared: crate::sync::Arc<Shared>) -> Result<Tier> {
        let (kick, kicked) = bounded(1);
        let _ = shared.sealed_kick.set(kick.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let parts = self.parts.clone();
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("varvelog-tier".into())
            .spawn(move || Uploader::new(parts, shared, s).run(&kicked))
            .map_err(|e| Error::io("spawn thread", "varvelog-tier", e))?;
        Ok(Tier { parts: self.parts, stop, kick, thread: Some(thread) })
    }
}

impl Tier {
    /// What tiering has done, for `Log::tier_stats`.
    pub(crate) fn stats(&self, state: &State) -> TierStats {
        let p = &self.parts;
        let mut s = p.counters.read();
        let m = p.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        s.manifest_segments = m.segments.len() as u64;
        s.manifest_generation = m.generation;
        s.pending_segments = pending(state, &m) as u64;
        s.cache_bytes = p.cache.bytes();
        s
    }

    /// Waits until every segment sealed in `state()` is confirmed remote.
    pub(crate) fn wait_uploaded(&self, state: impl Fn() -> crate::sync::Arc<State>, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = pending(&state(), &self.parts.confirmed.lock().unwrap_or_else(|e| e.into_inner()));
            if left == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let last = self.parts.counters.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let why = last.map_or_else(|| "no error seen".to_string(), |e| format!("last error: {e}"));
                let msg = format!("{left} sealed segments not uploaded after {timeout:?} ({why})");
                return Err(Error::Store { op: "wait for uploads", url: self.parts.opts.url.clone(), source: msg.into() });
            }
            let _ = self.kick.try_send(());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the uploader: cancels a request in flight and joins the thread.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.kick.try_send(());
        self.parts.store.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Tier {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sealed segments in `state` that `m` does not confirm.
fn pending(state: &State, m: &Manifest) -> usize {
    state.segments.iter().filter(|s| matches!(s, Segment::Sealed(s) if !m.confirms(s.base_seq, &s.digest))).count()
}

/// A sealed segment's file as the body of an upload, without a copy.
struct SegmentBytes(crate::sync::Arc<SealedSegment>);

impl AsRef<[u8]> for SegmentBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

struct Uploader {
    parts: Arc<Parts>,
    shared: crate::sync::Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// The manifest's version in the store, once read.
    etag: Option<String>,
    reconciled: bool,
}

/// Segments uploaded in one pass at most, before one manifest lists them.
const MAX_BATCH: usize = 8;

/// First wait after a failure; doubles up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

impl Uploader {
    fn new(parts: Arc<Parts>, shared: crate::sync::Arc<Shared>, stop: Arc<AtomicBool>) -> Uploader {
        Uploader { parts, shared, stop, etag: None, reconciled: false }
    }

    fn run(mut self, kicked: &Receiver<()>) {
        let mut backoff: Option<Duration> = None;
        while !self.stop.load(Ordering::Acquire) {
            match self.pass() {
                Ok(true) => {
                    backoff = None;
                    continue;
                }
                Ok(false) => backoff = None,
                Err(e) => {
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    let c = &self.parts.counters;
                    c.add(&c.upload_errors, 1);
                    c.set_error(&e);
                    let next = backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(self.parts.opts.max_backoff));
                    tracing::warn!(url = %self.parts.opts.url, error = %e, retry_in_ms = next.as_millis() as u64, "tiering failed; retrying");
                    backoff = Some(next);
                }
            }
            match kicked.recv_timeout(backoff.unwrap_or(self.parts.opts.poll)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn confirmed(&self) -> Manifest {
        self.parts.confirmed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One step of work; whether there may be more right away.
    fn pass(&mut self) -> Result<bool> {
        if !self.reconciled {
            self.reconcile()?;
            self.reconciled = true;
        }
        let state = self.shared.state.load();
        let current = self.confirmed();
        let mut next = current.clone();
        let mut garbage = Vec::new();
        // Segments retention dropped from the log leave the manifest.
        let first = state.segments.first().map_or(0, Segment::base_seq);
        while next.segments.first().is_some_and(|e| e.meta.base_seq < first) {
            garbage.push(next.segments.remove(0).key);
        }
        // The oldest segments not listed (with these digests), in order.
        let first = state.segments.iter().position(|s| matches!(s, Segment::Sealed(s) if !current.confirms(s.base_seq, &s.digest)));
        let todo: Vec<_> = first
            .map(|i| &state.segments[i..])
            .unwrap_or_default()
            .iter()
            .map_while(|s| match s {
                Segment::Sealed(s) if !current.confirms(s.base_seq, &s.digest) => Some(s.clone()),
                _ => None,
            })
            .take(MAX_BATCH)
            .collect();
        let (entries, failed) = self.upload(&todo)?;
        if let Some(s) = todo.first().filter(|_| !entries.is_empty()) {
            // Listed entries from this seq on are older versions of segments
            // compaction rewrote: they go (and are uploaded again, in order).
            let at = next.segments.partition_point(|e| e.meta.base_seq < s.base_seq);
            garbage.extend(next.segments.drain(at..).map(|e| e.key));
            next.segments.extend(entries);
        }
        if next != current {
            next.generation = current.generation + 1;
            self.publish_manifest(&next)?;
            // Never an object the log still reads from (a remote segment).
            garbage.retain(|k| {
                next.segments.iter().all(|e| &e.key != k) && !state.segments.iter().any(|s| matches!(s, Segment::Remote(r) if &r.key == k))
            });
            for key in garbage {
                // A failure leaves an unlisted object behind; it is not
                // retried (the manifest no longer names it).
                match self.parts.store.delete(&key) {
                    Ok(()) => self.parts.counters.add(&self.parts.counters.deleted_objects, 1),
                    Err(e) => tracing::warn!(error = %e, "could not delete an object no longer in the manifest"),
                }
            }
        }
        self.evict(&state)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(!todo.is_empty()),
        }
    }

    /// At start: adopts the store's manifest if it is newer than the local
    /// copy (a crash came between writing the one and the other).
    fn reconcile(&mut self) -> Result<()> {
        let path = local_manifest(&self.shared.dir);
        let local = self.confirmed();
        match self.parts.store.get_manifest()? {
            Some((bytes, etag)) => {
                let remote = Manifest::decode(&bytes, &self.parts.store.manifest_url())?;
                if remote.generation > local.generation {
                    remote.store_local(&path)?;
                    *self.parts.confirmed.lock().unwrap_or_else(|e| e.into_inner()) = remote;
                }
                self.etag = etag;
            }
            None => {
                self.etag = None;
                if local.generation > 0 {
                    // The store lost what this log wrote (a new bucket, a
                    // store restored from elsewhere): list again what can be
                    // uploaded again, the segments still on the disk. Those
                    // already evicted stay listed; reads of them report the
                    // store's error if their objects are gone too.
                    let state = self.shared.state.load();
                    let evicted = |e: &Entry| state.segments.iter().any(|s| matches!(s, Segment::Remote(r) if r.key == e.key));
                    let mut kept = local.clone();
                    kept.segments.retain(evicted);
                    tracing::warn!(
                        url = %self.parts.opts.url,
                        generation = local.generation,
                        uploading_again = local.segments.len() - kept.segments.len(),
                        "the store has no manifest although this log wrote one: uploading again the segments still on the disk"
                    );
                    *self.parts.confirmed.lock().unwrap_or_else(|e| e.into_inner()) = kept;
                }
            }
        }
        Ok(())
    }

    /// Uploads `segments` (in order), each checked against its file by
    /// reading it back: the entries of those that made it (a prefix), and
    /// the error that stopped the rest, if any.
    fn upload(&self, segments: &[crate::sync::Arc<SealedSegment>]) -> Result<(Vec<Entry>, Option<Error>)> {
        if segments.is_empty() {
            return Ok((Vec::new(), None));
        }
        let store = &self.parts.store;
        let started = Instant::now();
        let items =
            segments.iter().map(|s| (store.segment_key(s.base_seq, &s.digest), Bytes::from_owner(SegmentBytes(s.clone())))).collect();
        // The files' hashes (for the manifest) are computed while they upload.
        let (results, hashes) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| segments.iter().map(|s| *blake3::hash(s.bytes()).as_bytes()).collect::<Vec<_>>());
            let results = store.put_all_checked(items, self.parts.opts.read_back);
            (results, hashing.join())
        });
        let results = results?;
        let hashes = hashes.map_err(|_| Error::corrupt(&self.shared.dir, 0, "hashing a segment for upload panicked"))?;
        let mut entries = Vec::new();
        let mut failed: Option<Error> = None;
        for ((s, r), hash) in segments.iter().zip(results).zip(hashes) {
            if let Err(e) = r {
                // The first failure is the pass's error (counted by the
                // loop); each later one in the batch is counted here.
                match &failed {
                    None => failed = Some(e),
                    Some(_) => {
                        let c = &self.parts.counters;
                        c.add(&c.upload_errors, 1);
                        tracing::warn!(error = %e, "tiering failed; retrying");
                    }
                }
                continue;
            }
            if failed.is_some() {
                continue; // listed only in order: after the one that failed
            }
            let c = &self.parts.counters;
            c.add(&c.uploaded_segments, 1);
            c.add(&c.uploaded_bytes, s.bytes().len() as u64);
            let key = store.segment_key(s.base_seq, &s.digest);
            entries.push(Entry { meta: SegmentMeta::of(s, hash), key });
        }
        tracing::debug!(segments = entries.len(), took_ms = started.elapsed().as_millis() as u64, "uploaded segments");
        Ok((entries, failed))
    }

    /// Writes `next` to the store (conditionally) and then locally.
    fn publish_manifest(&mut self, next: &Manifest) -> Result<()> {
        let store = &self.parts.store;
        match store.put_manifest(next.encode(), self.etag.clone())? {
            ManifestPut::Written(etag) => self.etag = etag,
            ManifestPut::Conflict => {
                // Our own earlier attempt may have landed (its answer lost).
                let now = store.get_manifest()?;
                match now {
                    Some((bytes, etag)) if Manifest::decode(&bytes, &store.manifest_url()).is_ok_and(|m| &m == next) => self.etag = etag,
                    _ => {
                        self.reconciled = false;
                        let msg = "the manifest changed under this log: is another writer tiering to the same prefix?";
                        return Err(Error::Store {
                            op: "write manifest",
                            url: store.manifest_url().display().to_string(),
                            source: msg.into(),
                        });
                    }
                }
            }
        }
        next.store_local(&local_manifest(&self.shared.dir))?;
        *self.parts.confirmed.lock().unwrap_or_else(|e| e.into_inner()) = next.clone();
        Ok(())
    }

    /// Evicts what the local policy lets go and the manifest confirms.
    fn evict(&self, state: &State) -> Result<()> {
        let policy = &self.parts.opts.keep_local;
        let local_from = state.segments.iter().position(|s| !matches!(s, Segment::Remote(_))).unwrap_or(state.segments.len());
        let candidates = crate::retention::limits(&state.segments[local_from..], policy, policy.cutoff_us());
        let confirmed = self.confirmed();
        let go: Vec<(crate::sync::Arc<SealedSegment>, Entry)> = candidates
            .iter()
            .map_while(|s| match s {
                Segment::Sealed(s) => confirmed.entry(s.base_seq).filter(|e| e.meta.digest == s.digest).map(|e| (s.clone(), e.clone())),
                _ => None,
            })
            .collect();
        if go.is_empty() {
            return Ok(());
        }
        // Retention and compaction replace sealed files too: not at once.
        let _maintenance = crate::sync::lock(&self.shared.maintenance);
        let fetch: Arc<dyn Fetch> = self.parts.cache.clone();
        let mut unlinked = false;
        for (s, entry) in go {
            let remote = Segment::Remote(crate::sync::Arc::new(remote_segment(&self.parts.store, &entry, &fetch)));
            let swapped = std::cell::Cell::new(false);
            self.shared.publish(|old| {
                old.replacing(|x| {
                    let hit = matches!(x, Segment::Sealed(y) if crate::sync::Arc::ptr_eq(y, &s));
                    swapped.set(swapped.get() || hit);
                    hit.then(|| remote.clone())
                })
            });
            if !swapped.get() {
                continue; // retention or compaction got there first
            }
            self.shared.fs().remove(&s.path).map_err(|e| Error::io("remove evicted segment", &s.path, e))?;
            unlinked = true;
            let c = &self.parts.counters;
            c.add(&c.evicted_segments, 1);
            c.add(&c.evicted_bytes, s.bytes().len() as u64);
            tracing::debug!(segment = %s.path.display(), "evicted a segment held in the object store");
        }
        if unlinked {
            self.shared.fs().sync_dir(&self.shared.dir).map_err(|e| Error::io("fsync directory", &self.shared.dir, e))?;
        }
        Ok(())
    }
}
