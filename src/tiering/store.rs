//! The object store as the tiering code uses it: blocking calls (through
//! the store's thread) on keys under the log's prefix, with errors that
//! name the object's URL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::io::Io;
use crate::error::{Error, Result};
use crate::format::segment_file_name;

/// Name of the manifest object under the prefix.
pub(crate) const MANIFEST_NAME: &str = "manifest.json";
/// Folder of the segment objects under the prefix.
pub(crate) const SEGMENTS_DIR: &str = "segments";

pub(crate) struct Store {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The prefix as a URL, for messages (`s3://bucket/prefix`).
    url: String,
    io: Io,
    /// Whether the store does conditional updates (until it says it does not).
    conditional: AtomicBool,
}

/// How reading back an uploaded object went.
enum Checked {
    Same,
    Differs,
    Put(object_store::Error),
    Get(object_store::Error),
    /// The check's task ended without an answer (the log is closing).
    Lost,
}

/// How a conditional manifest write went.
pub(crate) enum ManifestPut {
    /// Written; the new version.
    Written(Option<String>),
    /// The manifest is no longer the version given (another writer, or a
    /// retried put whose first attempt landed).
    Conflict,
}

impl Store {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: &str, url: String) -> Result<Store> {
        let prefix = ObjectPath::parse(prefix.trim_matches('/'))
            .map_err(|e| Error::InvalidOptions(format!("object store prefix {prefix:?}: {e}")))?;
        let io = Io::start(&url)?;
        Ok(Store { store, prefix, url, io, conditional: AtomicBool::new(true) })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The key of the segment object for `base_seq` with `digest`: the
    /// digest is in the name, so a segment rewritten by compaction is a new
    /// object, never one a reader may be fetching.
    pub(crate) fn segment_key(&self, base_seq: u64, digest: &[u8; 32]) -> String {
        let name = segment_file_name(base_seq);
        let stem = name.strip_suffix(".seg").unwrap_or(&name);
        let leaf = format!("{stem}-{}.seg", hex::encode(&digest[..8]));
        self.prefix.clone().join(SEGMENTS_DIR).join(leaf.as_str()).to_string()
    }

    fn manifest_path(&self) -> ObjectPath {
        self.prefix.clone().join(MANIFEST_NAME)
    }

    /// The URL of `key` (a key from the store's root), for messages.
    pub(crate) fn url_of(&self, key: &str) -> PathBuf {
        let rel = key.strip_prefix(self.prefix.as_ref()).unwrap_or(key).trim_start_matches('/');
        PathBuf::from(format!("{}/{rel}", self.url.trim_end_matches('/')))
    }

    pub(crate) fn manifest_url(&self) -> PathBuf {
        self.url_of(self.manifest_path().as_ref())
    }

    fn error(&self, op: &'static str, key: &str, e: object_store::Error) -> Error {
        Error::Store { op, url: self.url_of(key).display().to_string(), source: Box::new(e) }
    }

    /// Uploads `items` (key, body) in order, each read back and compared
    /// with its body if `read_back`; the read-back of one overlaps the
    /// upload of the next.
    /// One result per item tried, in order: the first failed upload ends the
    /// batch (the items after it are not tried).
    pub(crate) fn put_all_checked(&self, items: Vec<(String, Bytes)>, read_back: bool) -> Result<Vec<Result<()>>> {
        let store = self.store.clone();
        let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
        let outcomes = self.io.call(async move {
            let mut out = Vec::with_capacity(items.len());
            let mut checking: Option<tokio::task::JoinHandle<Checked>> = None;
            for (key, body) in items {
                let path = ObjectPath::from(key.as_str());
                let put = store.put(&path, PutPayload::from(body.clone()));
                let put = match checking.take() {
                    Some(check) => {
                        let (put, check) = tokio::join!(put, check);
                        out.push(check.unwrap_or(Checked::Lost));
                        put
                    }
                    None => put.await,
                };
                if let Err(e) = put {
                    out.push(Checked::Put(e));
                    break;
                }
                if !read_back {
                    out.push(Checked::Same);
                    continue;
                }
                let store = store.clone();
                checking = Some(tokio::spawn(async move {
                    match store.get(&path).await {
                        Ok(r) => match r.bytes().await {
                            Ok(back) if back == body => Checked::Same,
                            Ok(_) => Checked::Differs,
                            Err(e) => Checked::Get(e),
                        },
                        Err(e) => Checked::Get(e),
                    }
                }));
            }
            if let Some(check) = checking {
                out.push(check.await.unwrap_or(Checked::Lost));
            }
            out
        })?;
        Ok(outcomes
            .into_iter()
            .zip(&keys)
            .map(|(c, key)| match c {
                Checked::Same => Ok(()),
                Checked::Differs => {
                    Err(Error::corrupt(self.url_of(key), 0, "uploaded object does not match the segment file; uploading again"))
                }
                Checked::Put(e) => Err(self.error("upload segment", key, e)),
                Checked::Get(e) => Err(self.error("check uploaded segment", key, e)),
                Checked::Lost => Err(Error::Store {
                    op: "check uploaded segment",
                    url: self.url_of(key).display().to_string(),
                    source: "the check was cancelled".into(),
                }),
            })
            .collect())
    }

    pub(crate) fn get(&self, key: &str, op: &'static str) -> Result<Bytes> {
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        self.io.call(async move { store.get(&path).await?.bytes().await })?.map_err(|e| self.error(op, key, e))
    }

    pub(crate) fn delete(&self, key: &str) -> Result<()> {
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        match self.io.call(async move { store.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete segment", key, e)),
        }
    }

    /// The manifest's bytes and version, or `None` if there is none.
    pub(crate) fn get_manifest(&self) -> Result<Option<(Bytes, Option<String>)>> {
        let (store, path) = (self.store.clone(), self.manifest_path());
        let got = self.io.call(async move {
            let r = store.get(&path).await?;
            let etag = r.meta.e_tag.clone();
            Ok::<_, object_store::Error>((r.bytes().await?, etag))
        })?;
        match got {
            Ok(x) => Ok(Some(x)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("read manifest", self.manifest_path().as_ref(), e)),
        }
    }

    /// Writes the manifest if it is still at version `etag` (`None`: if
    /// there is none yet). A store without conditional updates (a local
    /// directory) is overwritten instead, which does not guard against a
    /// second writer.
    pub(crate) fn put_manifest(&self, body: Vec<u8>, etag: Option<String>) -> Result<ManifestPut> {
        let body = Bytes::from(body);
        let mode = match etag {
            Some(e_tag) if self.conditional.load(Ordering::Relaxed) => PutMode::Update(UpdateVersion { e_tag: Some(e_tag), version: None }),
            Some(_) => PutMode::Overwrite,
            None => PutMode::Create,
        };
        let mut put = self.put_opts(body.clone(), mode);
        if let Err(object_store::Error::NotImplemented { .. }) = put {
            tracing::warn!(url = %self.url, "the store has no conditional updates: the manifest is overwritten, unguarded against a second writer");
            self.conditional.store(false, Ordering::Relaxed);
            put = self.put_opts(body, PutMode::Overwrite);
        }
        put.unwrap_or_else(|e| Err(self.error("write manifest", self.manifest_path().as_ref(), e)))
    }

    fn put_opts(&self, body: Bytes, mode: PutMode) -> std::result::Result<Result<ManifestPut>, object_store::Error> {
        let (store, path) = (self.store.clone(), self.manifest_path());
        let opts = PutOptions { mode, ..PutOptions::default() };
        let put = match self.io.call(async move { store.put_opts(&path, PutPayload::from(body), opts).await }) {
            Ok(put) => put,
            Err(closed) => return Ok(Err(closed)),
        };
        match put {
            Ok(r) => Ok(Ok(ManifestPut::Written(r.e_tag))),
            Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => Ok(Ok(ManifestPut::Conflict)),
            Err(e @ object_store::Error::NotImplemented { .. }) => Err(e),
            Err(e) => Ok(Err(self.error("write manifest", self.manifest_path().as_ref(), e))),
        }
    }

    /// Cancels what is in flight and stops the store's thread.
    pub(crate) fn shutdown(&self) {
        self.io.shutdown();
    }
}
