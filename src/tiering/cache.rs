//! The fetch cache: remote segments read back are downloaded whole into a
//! local directory, checked against the manifest's file hash, and mapped
//! read-only like any sealed segment, so reads of them are zero-copy.
//!
//! Bounded in bytes: past the bound the least recently fetched files are
//! unlinked. A snapshot that has read a segment keeps its mapping (and so
//! its disk blocks, unlinked) until the snapshot is dropped; the bound counts
//! the files in the directory, not those mappings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::store::Store;
use super::TierCounters;
use crate::error::{Error, Result};
use crate::segment::{Fetch, RemoteSegment, SealedSegment};

pub(crate) struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    store: Arc<Store>,
    counters: Arc<TierCounters>,
    held: Mutex<Held>,
    /// One download at a time: a second reader of the same segment waits
    /// and then finds it cached, and memory holds one object at most.
    fetching: Mutex<()>,
    /// Remove the directory when dropped (a temporary one).
    remove_dir: bool,
}

#[derive(Default)]
struct Held {
    entries: HashMap<String, Cached>,
    bytes: u64,
    tick: u64,
}

struct Cached {
    segment: Arc<SealedSegment>,
    path: PathBuf,
    bytes: u64,
    used: u64,
}

impl Cache {
    /// A cache in `dir`, emptied first (what an earlier process left there is
    /// not trusted or counted).
    pub(crate) fn new(dir: PathBuf, max_bytes: u64, store: Arc<Store>, counters: Arc<TierCounters>, remove_dir: bool) -> Result<Cache> {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("empty the tier cache", &dir, e)),
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the tier cache", &dir, e))?;
        Ok(Cache { dir, max_bytes, store, counters, held: Mutex::new(Held::default()), fetching: Mutex::new(()), remove_dir })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hit(&self, key: &str) -> Option<Arc<SealedSegment>> {
        let mut held = self.held();
        held.tick += 1;
        let tick = held.tick;
        let c = held.entries.get_mut(key)?;
        c.used = tick;
        Some(c.segment.clone())
    }

    /// Bytes of the files in the cache now.
    pub(crate) fn bytes(&self) -> u64 {
        self.held().bytes
    }

    fn download(&self, seg: &RemoteSegment) -> Result<Arc<SealedSegment>> {
        let bytes = self.store.get(&seg.key, "fetch segment")?;
        let url = &seg.path;
        if bytes.len() as u64 != seg.meta.file_bytes {
            let what = format!("object is {} bytes, the manifest says {}", bytes.len(), seg.meta.file_bytes);
            return Err(Error::corrupt(url, 0, what));
        }
        if *blake3::hash(&bytes).as_bytes() != seg.meta.file_hash {
            return Err(Error::corrupt(url, 0, "object does not match the segment's hash in the manifest"));
        }
        let name = seg.key.rsplit('/').next().unwrap_or(&seg.key);
        let path = self.dir.join(name);
        let part = self.dir.join(format!("{name}.part"));
        std::fs::write(&part, &bytes).map_err(|e| Error::io("write to the tier cache", &part, e))?;
        std::fs::rename(&part, &path).map_err(|e| Error::io("rename in the tier cache", &path, e))?;
        let file = std::fs::File::open(&path).map_err(|e| Error::io("open cached segment", &path, e))?;
        let loaded = match SealedSegment::load(path.clone(), &file) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Error::corrupt(url, 0, format!("fetched segment has no usable footer: {e:?}"))),
            Err(crate::segment::HeaderOutcome::Fatal(e)) => return Err(e),
            Err(crate::segment::HeaderOutcome::Blank) => return Err(Error::corrupt(url, 0, "fetched segment has a blank header")),
        };
        if !seg.meta.matches(&loaded) {
            return Err(Error::corrupt(url, 0, "fetched segment's footer does not match the manifest"));
        }
        Ok(Arc::new(loaded))
    }

    /// Adds a fetched segment and unlinks the least recently used files
    /// past the bound (never the one just added).
    fn insert(&self, key: &str, segment: Arc<SealedSegment>) {
        let bytes = segment.bytes().len() as u64;
        let mut held = self.held();
        held.tick += 1;
        let used = held.tick;
        held.bytes += bytes;
        let path = segment.path.clone();
        held.entries.insert(key.to_string(), Cached { segment, path, bytes, used });
        while held.bytes > self.max_bytes {
            let Some(oldest) = held.entries.iter().filter(|(k, _)| k.as_str() != key).min_by_key(|(_, c)| c.used).map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(c) = held.entries.remove(&oldest) {
                held.bytes -= c.bytes;
                if let Err(e) = std::fs::remove_file(&c.path) {
                    tracing::warn!(path = %c.path.display(), error = %e, "could not remove a file from the tier cache");
                }
                self.counters.add(&self.counters.cache_evicted, 1);
            }
        }
    }
}

impl Fetch for Cache {
    fn fetch(&self, seg: &RemoteSegment) -> Result<crate::sync::Arc<SealedSegment>> {
        if let Some(s) = self.hit(&seg.key) {
            self.counters.add(&self.counters.cache_hits, 1);
            return Ok(s);
        }
        let _one = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.hit(&seg.key) {
            self.counters.add(&self.counters.cache_hits, 1);
            return Ok(s);
        }
        let started = std::time::Instant::now();
        match self.download(seg) {
            Ok(s) => {
                self.counters.add(&self.counters.fetched_segments, 1);
                self.counters.add(&self.counters.fetched_bytes, seg.meta.file_bytes);
                tracing::debug!(object = %seg.path.display(), took_ms = started.elapsed().as_millis() as u64, "fetched segment");
                self.insert(&seg.key, s.clone());
                Ok(s)
            }
            Err(e) => {
                self.counters.add(&self.counters.fetch_errors, 1);
                self.counters.set_error(&e);
                tracing::warn!(object = %seg.path.display(), error = %e, "could not fetch a remote segment");
                Err(e)
            }
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
