//! Tiered storage: sealed segments uploaded to an object store (S3, GCS,
//! Azure, a local directory) through `object_store`, evicted from the local
//! disk once their upload is confirmed, and fetched back into a bounded
//! cache when read. The protocol, its crash cases and its costs are in
//! `docs/tiered.md`.
//!
//! - `store.rs`: the object store as blocking calls on the store's thread
//!   (`io.rs`);
//! - `manifest.rs`: the manifest object, and its local copy;
//! - `upload.rs`: the uploader thread (upload, verify, manifest, evict);
//! - `cache.rs`: the fetch cache remote segments are read through;
//! - `remote.rs`: a log read from the bucket alone.

mod cache;
mod io;
mod manifest;
mod remote;
mod store;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::ObjectStore;

use crate::error::{Error, Result};
use crate::retention::Retention;

pub(crate) use remote::RemoteSource;
pub(crate) use upload::{attach, Tier};

/// Where the local copy of the manifest and the fetch cache live in a log's
/// directory.
pub(crate) const TIER_DIR: &str = "tier";

/// Default bound of the fetch cache: 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// Tiering a log to an object store: where, what stays local, and the fetch
/// cache. Given to [`crate::Options::tier`].
///
/// Every segment the log seals is uploaded in the background (the writer
/// never waits for it), read back and checked against the segment's hash,
/// and listed in a manifest object next to it, so the bucket alone
/// describes the log ([`crate::ReadOnlyLog::open_remote`] reads it). Once a
/// segment is listed, the local policy ([`TierOptions::keep_local`]) may
/// remove its file from the disk; reads of it then fetch it into the cache.
/// [`crate::Log::retain`] still removes records from the log as a whole:
/// it drops the oldest segments, local or remote, and the uploader deletes
/// their objects after writing a manifest without them.
///
/// ```no_run
/// use std::time::Duration;
/// use varvelog::{Log, Options, Retention, TierOptions};
///
/// // Credentials and endpoint from the standard AWS_* variables.
/// let tier = TierOptions::from_url("s3://my-bucket/logs/orders")?
///     // Keep the newest 4 GiB on the local disk; older segments live in the bucket.
///     .keep_local(Retention::new().max_total_bytes(4 << 30))
///     .cache_bytes(2 << 30);
/// let log = Log::open("/var/lib/orders", Options::new().tier(tier))?;
/// log.writer()?.append(b"order 1")?;
/// # Ok::<(), varvelog::Error>(())
/// ```
#[derive(Clone)]
pub struct TierOptions {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: String,
    pub(crate) url: String,
    pub(crate) keep_local: Retention,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) cache_bytes: u64,
    pub(crate) poll: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) read_back: bool,
}

impl std::fmt::Debug for TierOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierOptions")
            .field("url", &self.url)
            .field("keep_local", &self.keep_local)
            .field("cache_dir", &self.cache_dir)
            .field("cache_bytes", &self.cache_bytes)
            .finish()
    }
}

impl TierOptions {
    /// Tiering to `store`, under `prefix` (the log's folder in it; its
    /// manifest is `<prefix>/manifest.json`, its segments
    /// `<prefix>/segments/`). Use this to configure the client yourself
    /// (retries, timeouts, credentials).
    #[must_use]
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> TierOptions {
        let prefix = prefix.trim_matches('/').to_string();
        let url = format!("{store}/{prefix}");
        TierOptions {
            store,
            prefix,
            url,
            keep_local: Retention::new(),
            cache_dir: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            read_back: true,
        }
    }

    /// Tiering to the store and prefix `url` names: `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix` or
    /// `file:///path/prefix`. Credentials, region and endpoint come from the
    /// provider's standard environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …;
    /// `GOOGLE_*`; `AZURE_*`). An `http://` endpoint is allowed. Requests
    /// time out after 30 s and are retried 3 times within 30 s; the
    /// uploader then retries the whole segment itself, backing off up to
    /// 30 s.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOptions`] for a URL that names no supported store or
    /// lacks what the store needs (a bucket).
    pub fn from_url(url: &str) -> Result<TierOptions> {
        let (store, prefix) = store_from_url(url)?;
        let mut t = TierOptions::new(store, &prefix);
        t.url = url.trim_end_matches('/').to_string();
        Ok(t)
    }

    /// What stays on the local disk: segments this policy would remove are
    /// removed from the disk once their upload is confirmed, and stay in
    /// the log (fetched when read). The default keeps everything local.
    #[must_use]
    pub fn keep_local(mut self, policy: Retention) -> Self {
        self.keep_local = policy;
        self
    }

    /// Where fetched segments are kept: `<log dir>/tier/cache` by default
    /// (a temporary directory for [`crate::ReadOnlyLog::open_remote`]). It is
    /// emptied when the log opens.
    #[must_use]
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The most bytes of fetched segments kept in the cache directory
    /// (default [`DEFAULT_CACHE_BYTES`]); past it the least recently
    /// fetched are removed. A snapshot that read a segment keeps it mapped
    /// until the snapshot is dropped, past the bound.
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// How often the uploader looks for work when not woken by a seal, and
    /// how often a remote reader looks for a new manifest (default 1 s).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// The longest the uploader waits before retrying after a failure
    /// (default 30 s; it starts at 100 ms and doubles).
    #[must_use]
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Whether each uploaded object is read back and compared with the
    /// segment file before the manifest lists it (default: yes). Off, the
    /// upload is trusted once the store accepts it: the S3, GCS and Azure
    /// clients send a checksum of the body the store verifies (S3: the
    /// signed SHA-256 of the payload), which catches damage on the way but
    /// not a store that keeps other bytes than it accepted, nor damage in
    /// this process before the client hashed the body. The read-back moves
    /// every segment's bytes twice; off, uploads run at about the speed of
    /// plain puts (docs/benchmarks.md).
    #[must_use]
    pub fn read_back_uploads(mut self, read_back: bool) -> Self {
        self.read_back = read_back;
        self
    }

    /// The URL of the log in the store, as given or derived.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cache directory for a log in `dir`.
    pub(crate) fn cache_dir_for(&self, dir: &Path) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| dir.join(TIER_DIR).join("cache"))
    }
}

/// The store and the prefix in it that `url` names, configured from the
/// environment.
fn store_from_url(url: &str) -> Result<(Arc<dyn ObjectStore>, String)> {
    use object_store::{BackoffConfig, ClientOptions, ObjectStoreScheme, RetryConfig};
    let bad = |what: String| Error::InvalidOptions(format!("object store URL {url:?}: {what}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| bad(e.to_string()))?;
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5), base: 2.0 },
    };
    let client = ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(30));
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let b = object_store::aws::AmazonS3Builder::from_env().with_url(url).with_retry(retry);
            // Client options replace all of them, `allow_http` included: set them first.
            let b = b.with_client_options(client);
            let http = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"]
                .iter()
                .any(|k| std::env::var(k).is_ok_and(|v| v.starts_with("http://")));
            Arc::new(b.with_allow_http(http).build().map_err(|e| bad(e.to_string()))?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        ObjectStoreScheme::Local => {
            // The prefix is the whole path: the store's root is `/`.
            Arc::new(object_store::local::LocalFileSystem::new())
        }
        other => return Err(bad(format!("{other:?} stores are not supported"))),
    };
    Ok((store, path.to_string()))
}

/// What tiering has done since the log (or remote reader) opened, from
/// [`crate::Log::tier_stats`] and [`crate::ReadOnlyLog::tier_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierStats {
    /// Segments uploaded and confirmed (read back and matched).
    pub uploaded_segments: u64,
    /// Their bytes.
    pub uploaded_bytes: u64,
    /// Failed attempts (upload, check, manifest write, delete); each is
    /// retried.
    pub upload_errors: u64,
    /// Sealed segments not yet confirmed remote.
    pub pending_segments: u64,
    /// Segments the manifest lists, and its generation.
    pub manifest_segments: u64,
    /// The manifest's generation (grows by one per write).
    pub manifest_generation: u64,
    /// Segments removed from the local disk after their upload.
    pub evicted_segments: u64,
    /// Their bytes.
    pub evicted_bytes: u64,
    /// Objects deleted because retention or compaction dropped them.
    pub deleted_objects: u64,
    /// Remote segments fetched into the cache, and their bytes.
    pub fetched_segments: u64,
    /// Bytes fetched.
    pub fetched_bytes: u64,
    /// Reads of remote segments served from the cache.
    pub cache_hits: u64,
    /// Files removed from the cache to keep it within its bound.
    pub cache_evicted: u64,
    /// Bytes in the cache now.
    pub cache_bytes: u64,
    /// Fetches that failed (the store unreachable, or an object not
    /// matching its segment).
    pub fetch_errors: u64,
    /// The latest error met, if any.
    pub last_error: Option<String>,
}

/// Counters shared by the uploader, the cache and the remote reader.
#[derive(Default)]
pub(crate) struct TierCounters {
    uploaded_segments: AtomicU64,
    uploaded_bytes: AtomicU64,
    upload_errors: AtomicU64,
    evicted_segments: AtomicU64,
    evicted_bytes: AtomicU64,
    deleted_objects: AtomicU64,
    fetched_segments: AtomicU64,
    fetched_bytes: AtomicU64,
    cache_hits: AtomicU64,
    cache_evicted: AtomicU64,
    fetch_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl TierCounters {
    fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn set_error(&self, e: &Error) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    fn read(&self) -> TierStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TierStats {
            uploaded_segments: r(&self.uploaded_segments),
            uploaded_bytes: r(&self.uploaded_bytes),
            upload_errors: r(&self.upload_errors),
            evicted_segments: r(&self.evicted_segments),
            evicted_bytes: r(&self.evicted_bytes),
            deleted_objects: r(&self.deleted_objects),
            fetched_segments: r(&self.fetched_segments),
            fetched_bytes: r(&self.fetched_bytes),
            cache_hits: r(&self.cache_hits),
            cache_evicted: r(&self.cache_evicted),
            fetch_errors: r(&self.fetch_errors),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            ..TierStats::default()
        }
    }
}
