//! A log read from the object store alone ([`crate::ReadOnlyLog::open_remote`]):
//! every segment the manifest lists, fetched into a cache when read. New
//! uploads are noticed by reading the manifest again, at most every
//! `TierOptions::poll_interval`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::Cache;
use super::manifest::Manifest;
use super::store::Store;
use super::upload::remote_segment;
use super::{TierCounters, TierOptions, TierStats};
use crate::error::{Error, Result};
use crate::segment::{Fetch, RemoteSegment, Segment};

/// Where a remote reader's segments come from.
pub(crate) struct RemoteSource {
    store: Arc<Store>,
    cache: Arc<Cache>,
    counters: Arc<TierCounters>,
    poll: Duration,
    /// The manifest last read: its version and its segments.
    seen: Mutex<(Option<String>, Vec<crate::sync::Arc<RemoteSegment>>)>,
    generation: AtomicU64,
}

/// Temporary cache directories made in this process, for unique names.
static CACHES: AtomicU64 = AtomicU64::new(0);

impl RemoteSource {
    /// Connects to the log `opts` names; fails if the store holds no
    /// manifest there.
    pub(crate) fn open(opts: &TierOptions) -> Result<RemoteSource> {
        let counters = Arc::new(TierCounters::default());
        let store = Arc::new(Store::new(opts.store.clone(), &opts.prefix, opts.url.clone())?);
        let (dir, temporary) = match &opts.cache_dir {
            Some(d) => (d.clone(), false),
            None => {
                let n = CACHES.fetch_add(1, Ordering::Relaxed);
                (std::env::temp_dir().join(format!("varvelog-cache-{}-{n}", std::process::id())), true)
            }
        };
        let cache = Arc::new(Cache::new(dir, opts.cache_bytes, store.clone(), counters.clone(), temporary)?);
        let source =
            RemoteSource { store, cache, counters, poll: opts.poll, seen: Mutex::new((None, Vec::new())), generation: AtomicU64::new(0) };
        if source.store.get_manifest()?.is_none() {
            return Err(Error::NotALog { path: source.store.manifest_url(), reason: "no manifest: no log was tiered to this prefix" });
        }
        Ok(source)
    }

    /// The log's URL, which stands for its directory.
    pub(crate) fn url(&self) -> PathBuf {
        PathBuf::from(self.store.url())
    }

    /// How often a follower reads the manifest again.
    pub(crate) fn poll(&self) -> Duration {
        self.poll
    }

    /// Reads the manifest; the segments it lists if they changed since the
    /// last call. Segments listed before keep their (fetched) form.
    pub(crate) fn rescan(&self) -> Result<Option<Vec<Segment>>> {
        let Some((bytes, etag)) = self.store.get_manifest()? else {
            return Err(Error::NotALog { path: self.store.manifest_url(), reason: "the manifest is gone" });
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if etag.is_some() && etag == seen.0 {
            return Ok(None);
        }
        let m = Manifest::decode(&bytes, &self.store.manifest_url())?;
        let fetch: Arc<dyn Fetch> = self.cache.clone();
        let segments: Vec<crate::sync::Arc<RemoteSegment>> = m
            .segments
            .iter()
            .map(|e| match seen.1.iter().find(|r| r.key == e.key) {
                Some(r) => r.clone(),
                None => crate::sync::Arc::new(remote_segment(&self.store, e, &fetch)),
            })
            .collect();
        let changed = segments.len() != seen.1.len() || segments.iter().zip(&seen.1).any(|(a, b)| a.key != b.key);
        self.generation.store(m.generation, Ordering::Relaxed);
        *seen = (etag, segments.clone());
        Ok(changed.then(|| segments.into_iter().map(Segment::Remote).collect()))
    }

    pub(crate) fn stats(&self) -> TierStats {
        let mut s = self.counters.read();
        s.manifest_segments = self.seen.lock().unwrap_or_else(|e| e.into_inner()).1.len() as u64;
        s.manifest_generation = self.generation.load(Ordering::Relaxed);
        s.cache_bytes = self.cache.bytes();
        s
    }
}
