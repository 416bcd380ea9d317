//! Tiered storage against a real S3-compatible server (moto) on loopback:
//! upload, confirmation, local eviction, transparent reads of evicted
//! history, reopening, a reader of the bucket alone, retention of remote
//! segments, the fetch cache's bound, and faults (the store down, 503s,
//! slow answers, a corrupted object). `.ci/test` installs the server; the
//! tests start it themselves.
#![cfg(feature = "tiered")]

#[path = "support/s3.rs"]
mod s3;

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use s3::{FaultProxy, S3Server};
use varvelog::{Entry, Error, Log, Options, ReadOnlyLog, Retention, TierOptions};

const SEGMENT: u64 = 64 << 10;
const WAIT: Duration = Duration::from_secs(60);

/// A client of `endpoint`'s `bucket` (see `s3::client`).
fn store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    s3::client(endpoint, bucket)
}

/// Tiering to `store` under `logs/t`, waking often, retrying quickly.
fn tier(store: Arc<dyn ObjectStore>) -> TierOptions {
    TierOptions::new(store, "logs/t").poll_interval(Duration::from_millis(50)).max_backoff(Duration::from_millis(200))
}

fn options(tier: TierOptions) -> Options {
    Options::new().segment_bytes(SEGMENT).tier(tier)
}

/// Appends `n` records keyed `k<i % keys>` with payload `p<i>`, starting at `from`.
fn append(log: &Log, from: u64, n: u64) {
    let mut w = log.writer().unwrap();
    for i in from..from + n {
        let key = format!("k{}", i % 50);
        let payload = format!("p{i}-{}", "x".repeat(200));
        w.append_entry(Entry::new(payload.as_bytes()).key(key.as_bytes())).unwrap();
    }
    w.roll().unwrap();
}

/// Waits (at most `WAIT`) until the log's tiering stats satisfy `done`.
fn wait_for(log: &Log, what: &str, done: impl Fn(&varvelog::TierStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = log.tier_stats().unwrap();
        if done(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} not reached in {WAIT:?}: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A new bucket on the shared server, and a client of it.
fn new_bucket() -> (&'static S3Server, String, Arc<dyn ObjectStore>) {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let store = store(&server.endpoint(), &bucket);
    (server, bucket, store)
}

fn payload_seq(p: &[u8]) -> u64 {
    let s = std::str::from_utf8(p).unwrap();
    s[1..s.find('-').unwrap()].parse().unwrap()
}

fn local_segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".seg")).count()
}

/// Every record from 0 to `n`, in order, through the snapshot's iterator.
fn check_all(snap: &varvelog::Snapshot, n: u64) {
    let mut expect = 0;
    for r in snap.iter() {
        let r = r.unwrap();
        assert_eq!((r.seq(), payload_seq(r.payload())), (expect, expect));
        expect += 1;
    }
    assert_eq!(expect, n, "records read back");
}

#[test]
fn evicted_history_reads_back_through_every_path_and_after_reopening() {
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let keep = Retention::new().max_total_bytes(3 * SEGMENT);
    let n = 3000;
    {
        let log = Log::open(dir.path(), options(tier(store.clone()).keep_local(keep))).unwrap();
        append(&log, 0, n);
        log.wait_uploaded(WAIT).unwrap();
        // Eviction follows the upload pass; wait for it too.
        wait_for(&log, "evicted_segments", |s| s.evicted_segments > 0);
        let stats = log.tier_stats().unwrap();
        assert!(stats.uploaded_segments >= 10, "{stats:?}");
        assert_eq!(stats.pending_segments, 0, "{stats:?}");
        assert!(local_segments(dir.path()) <= 5, "local files left: {}", local_segments(dir.path()));

        let snap = log.snapshot();
        let info = snap.segment_info();
        assert!(info[0].remote && info[0].path.to_string_lossy().starts_with(&format!("{store}")), "{:?}", info[0]);
        check_all(&snap, n);
        // Point reads, backwards, by time, by key, and a tail from the start.
        assert_eq!(payload_seq(snap.get(5).unwrap().unwrap().payload()), 5);
        let back: Vec<u64> = snap.iter_rev().take(n as usize).map(|r| r.unwrap().seq()).collect();
        assert_eq!(back.len() as u64, n);
        assert!(back.windows(2).all(|w| w[0] == w[1] + 1));
        let ts = snap.get(7).unwrap().unwrap().timestamp();
        assert!(snap.seek_time(ts).next().unwrap().unwrap().seq() <= 7);
        let k3: Vec<u64> = snap.iter_key(b"k3").map(|r| r.unwrap().seq()).collect();
        assert_eq!(k3, (0..n).rev().filter(|i| i % 50 == 3).collect::<Vec<_>>());
        assert_eq!(snap.get_key(b"k3").unwrap().unwrap().seq(), (0..n).rev().find(|i| i % 50 == 3).unwrap());
        let mut tail = log.tail_from(0).unwrap();
        for i in 0..n {
            let r = tail.next_timeout(Duration::from_secs(10)).unwrap().expect("a record");
            assert_eq!(r.seq(), i);
        }
        let owned = snap.get(1).unwrap().unwrap().to_owned();
        assert_eq!(payload_seq(owned.payload()), 1);
        let stats = log.tier_stats().unwrap();
        assert!(stats.fetched_segments > 0 && stats.cache_hits > 0, "{stats:?}");
        assert!(log.verify().is_ok(), "{:?}", log.verify().problems);
        log.close().unwrap();
    }
    // Reopened: the evicted segments are known from the local manifest.
    let log = Log::open(dir.path(), options(tier(store).keep_local(keep))).unwrap();
    assert_eq!(log.snapshot().first_seq(), Some(0));
    check_all(&log.snapshot(), n);
    append(&log, n, 10);
    assert_eq!(log.snapshot().len(), n + 10);
}

#[test]
fn a_reader_of_the_bucket_alone_sees_what_was_uploaded_and_follows_new_uploads() {
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options(tier(store.clone()))).unwrap();
    append(&log, 0, 1000);
    log.wait_uploaded(WAIT).unwrap();

    let remote = ReadOnlyLog::open_remote_with(tier(store.clone())).unwrap();
    check_all(&remote.snapshot(), 1000);
    assert!(remote.dir().to_string_lossy().ends_with("logs/t"), "{}", remote.dir().display());
    let err = remote.consumer("c").unwrap_err();
    assert!(matches!(err, Error::InvalidOptions(_)), "{err}");

    let mut follow = remote.tail_from(1000).unwrap();
    append(&log, 1000, 500);
    log.wait_uploaded(WAIT).unwrap();
    for i in 1000..1500 {
        let r = follow.next_timeout(Duration::from_secs(20)).unwrap().expect("the new upload is followed");
        assert_eq!((r.seq(), payload_seq(r.payload())), (i, i));
    }
    assert!(remote.verify().unwrap().is_ok());
    let stats = remote.tier_stats().unwrap();
    assert!(stats.fetched_segments > 0 && stats.manifest_generation > 0, "{stats:?}");

    // The manifest alone describes the log: segments in order, objects present.
    let bytes = get(&store, "logs/t/manifest.json");
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let segs = m["segments"].as_array().unwrap();
    assert!(segs.len() >= 2);
    for (a, b) in segs.iter().zip(&segs[1..]) {
        assert_eq!(a["end_seq"], b["base_seq"]);
        assert_eq!(a["digest"], b["prev_digest"]);
    }
    for s in segs {
        let body = get(&store, s["key"].as_str().unwrap());
        assert_eq!(blake3::hash(&body).to_hex().as_str(), s["file_blake3"].as_str().unwrap());
    }
    assert!(ReadOnlyLog::open_remote_with(TierOptions::new(store, "logs/none")).is_err());
}

fn get(store: &Arc<dyn ObjectStore>, key: &str) -> bytes::Bytes {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { store.get(&ObjectPath::from(key)).await.unwrap().bytes().await.unwrap() })
}

fn exists(store: &Arc<dyn ObjectStore>, key: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match rt.block_on(async { store.head(&ObjectPath::from(key)).await }) {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {key}: {e}"),
    }
}

fn manifest_keys(store: &Arc<dyn ObjectStore>) -> Vec<(u64, String)> {
    let m: serde_json::Value = serde_json::from_slice(&get(store, "logs/t/manifest.json")).unwrap();
    m["segments"].as_array().unwrap().iter().map(|s| (s["base_seq"].as_u64().unwrap(), s["key"].as_str().unwrap().to_string())).collect()
}

#[test]
fn retention_drops_remote_segments_and_their_objects() {
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options(tier(store.clone()).keep_local(Retention::new().max_total_bytes(2 * SEGMENT)))).unwrap();
    append(&log, 0, 2000);
    log.wait_uploaded(WAIT).unwrap();
    let before = manifest_keys(&store);
    let cut = before[3].0;
    let report = log.retain(&Retention::new().min_seq(cut)).unwrap();
    assert_eq!(report.first_seq, cut);
    assert!(report.removed.iter().any(|p| p.to_string_lossy().contains("logs/t/segments/")), "{report:?}");
    // The uploader writes a manifest without them, then deletes them.
    let deadline = Instant::now() + WAIT;
    while before[..3].iter().any(|(_, k)| exists(&store, k)) {
        assert!(Instant::now() < deadline, "objects of removed segments still there");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = manifest_keys(&store);
    assert_eq!(after.first().unwrap().0, cut);
    assert!(after.iter().all(|(_, k)| exists(&store, k)));
    assert!(log.tier_stats().unwrap().deleted_objects >= 3);
    assert!(matches!(log.snapshot().get(0), Err(Error::Truncated { .. })));
}

#[test]
fn the_fetch_cache_stays_within_its_bound() {
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let opts = tier(store).keep_local(Retention::new().max_total_bytes(SEGMENT)).cache_dir(cache.path()).cache_bytes(2 * SEGMENT);
    let log = Log::open(dir.path(), options(opts)).unwrap();
    append(&log, 0, 3000);
    log.wait_uploaded(WAIT).unwrap();
    wait_for(&log, "evicted_segments", |s| s.evicted_segments >= 5);
    // Snapshots dropped as the scan goes, as a tail does.
    for seq in (0..3000).step_by(100) {
        let snap = log.snapshot();
        assert_eq!(payload_seq(snap.get(seq).unwrap().unwrap().payload()), seq);
        let files: u64 = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(files <= 2 * SEGMENT, "cache holds {files} bytes");
    }
    let stats = log.tier_stats().unwrap();
    assert!(stats.cache_evicted > 0 && stats.cache_bytes <= 2 * SEGMENT, "{stats:?}");
}

#[test]
fn an_outage_delays_uploads_and_eviction_but_loses_nothing() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let proxy = FaultProxy::start(server.port());
    let store = store(&proxy.endpoint(), &bucket);
    let dir = tempfile::tempdir().unwrap();
    let opts = tier(store).keep_local(Retention::new().max_total_bytes(SEGMENT)).cache_bytes(SEGMENT);
    let log = Log::open(dir.path(), options(opts)).unwrap();
    proxy.set_down(true);
    append(&log, 0, 1500);
    // Uploads fail and are retried; nothing leaves the disk meanwhile.
    wait_for(&log, "upload_errors", |s| s.upload_errors >= 2);
    let stats = log.tier_stats().unwrap();
    assert!(stats.last_error.is_some() && stats.evicted_segments == 0 && stats.uploaded_segments == 0, "{stats:?}");
    assert!(log.wait_uploaded(Duration::from_millis(300)).is_err());
    check_all(&log.snapshot(), 1500);
    // 503s and slow answers are retried too.
    proxy.set_down(false);
    proxy.fail_next(4);
    proxy.set_delay(Duration::from_millis(50));
    log.wait_uploaded(WAIT).unwrap();
    wait_for(&log, "evicted_segments", |s| s.evicted_segments > 0);
    proxy.set_delay(Duration::ZERO);
    check_all(&log.snapshot(), 1500);
    // The store down again: a read of evicted history that misses the cache
    // (it holds one segment: the last one read above) fails with the
    // store's error naming the object; local records still read.
    proxy.set_down(true);
    let cold = log.snapshot();
    let first = cold.segment_info().into_iter().find(|s| s.remote).unwrap();
    match cold.get(first.base_seq) {
        Err(Error::Store { url, .. }) => assert!(url.contains("logs/t/segments/"), "{url}"),
        other => panic!("expected the store's error, got {other:?}"),
    }
    assert_eq!(payload_seq(cold.get(1499).unwrap().unwrap().payload()), 1499);
    proxy.set_down(false);
}

#[test]
fn a_corrupted_object_is_refused_naming_it_and_the_rest_reads() {
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), options(tier(store.clone()).keep_local(Retention::new().max_total_bytes(SEGMENT)))).unwrap();
        append(&log, 0, 1500);
        log.wait_uploaded(WAIT).unwrap();
        wait_for(&log, "evicted_segments", |s| s.evicted_segments >= 2);
        log.close().unwrap();
    }
    // Flip one byte of the second segment's object (same length).
    let keys = manifest_keys(&store);
    let (base, key) = keys[1].clone();
    let mut body = get(&store, &key).to_vec();
    body[5000] ^= 0x40;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { store.put(&ObjectPath::from(key.as_str()), body.into()).await.unwrap() });

    let log = Log::open(dir.path(), options(tier(store.clone()))).unwrap();
    let snap = log.snapshot();
    let e = snap.get(base).unwrap_err();
    assert!(matches!(&e, Error::Corrupt { path, .. } if path.to_string_lossy().ends_with(&key[key.find("segments").unwrap()..])), "{e}");
    // Iteration reports it once and stops; reads elsewhere go on.
    let errs = snap.iter().filter(Result::is_err).count();
    assert_eq!(errs, 1);
    assert_eq!(payload_seq(snap.get(0).unwrap().unwrap().payload()), 0);
    assert_eq!(payload_seq(snap.get(1499).unwrap().unwrap().payload()), 1499);
    let stats = log.tier_stats().unwrap();
    assert!(stats.fetch_errors >= 1 && stats.last_error.is_some(), "{stats:?}");
    assert!(!log.verify().is_ok());
}

/// `varve stat|dump|verify|tail s3://bucket/prefix`, with the endpoint and
/// credentials from the standard environment variables.
#[cfg(feature = "cli")]
#[test]
fn varve_reads_a_log_from_the_bucket_by_url() {
    use std::process::Command;
    let (server, bucket, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options(tier(store).keep_local(Retention::new().max_total_bytes(SEGMENT)))).unwrap();
    append(&log, 0, 800);
    log.wait_uploaded(WAIT).unwrap();
    let url = format!("s3://{bucket}/logs/t");
    let (key, secret, region) = s3::aws_env();
    let varve = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_varve"))
            .args(args)
            .env("AWS_ENDPOINT_URL", server.endpoint())
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_REGION", &region)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, out, err) = varve(&["stat", "--json", &url]);
    assert_eq!(code, Some(0), "{err}");
    let stat: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stat["records"], 800);
    assert_eq!(stat["remote_segments"], stat["segments"]);
    let (code, out, err) = varve(&["dump", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 800);
    let (code, out, err) = varve(&["verify", &url]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = varve(&["tail", "-n", "2", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 2);
    let (code, _, err) = varve(&["stat", &format!("s3://{bucket}/logs/none")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no manifest"), "{err}");
}

/// The real server's client, with the body of the next `n` segment uploads
/// damaged on the way (one byte flipped): what a bad network card or proxy
/// does, which the read-back check must catch.
#[derive(Debug)]
struct DamagingStore {
    inner: Arc<dyn ObjectStore>,
    damage_next: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Display for DamagingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for DamagingStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        use std::sync::atomic::Ordering::SeqCst;
        let segment = location.as_ref().contains("/segments/");
        if segment && self.damage_next.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
            let mut body = bytes::Bytes::from(payload).to_vec();
            let at = body.len() / 2;
            body[at] ^= 0x01;
            return self.inner.put_opts(location, body.into(), opts).await;
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &ObjectPath, options: object_store::GetOptions) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures_util::stream::BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &ObjectPath, to: &ObjectPath, options: object_store::CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[test]
fn an_upload_damaged_in_transit_is_caught_by_the_read_back_and_redone() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let damaging = Arc::new(DamagingStore { inner: store(&server.endpoint(), &bucket), damage_next: 2.into() });
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options(tier(damaging.clone()).keep_local(Retention::new().max_total_bytes(SEGMENT)))).unwrap();
    append(&log, 0, 1000);
    log.wait_uploaded(WAIT).unwrap();
    let stats = log.tier_stats().unwrap();
    assert_eq!(damaging.damage_next.load(std::sync::atomic::Ordering::SeqCst), 0, "both damaged uploads happened");
    assert!(stats.upload_errors >= 2, "{stats:?}");
    // Every listed object is the segment's bytes, and the evicted history reads.
    let plain = store(&server.endpoint(), &bucket);
    let m: serde_json::Value = serde_json::from_slice(&get(&plain, "logs/t/manifest.json")).unwrap();
    for s in m["segments"].as_array().unwrap() {
        let body = get(&plain, s["key"].as_str().unwrap());
        assert_eq!(blake3::hash(&body).to_hex().as_str(), s["file_blake3"].as_str().unwrap());
    }
    wait_for(&log, "evicted_segments", |s| s.evicted_segments > 0);
    check_all(&log.snapshot(), 1000);
}

#[test]
fn the_store_cut_off_during_uploads_loses_nothing_and_uploads_resume() {
    // Uploads of 1 MiB segments run while the store goes down and up at
    // random moments, cutting connections mid-request.
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let proxy = FaultProxy::start(server.port());
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new()
        .segment_bytes(1 << 20)
        .tier(tier(store(&proxy.endpoint(), &bucket)).keep_local(Retention::new().max_total_bytes(2 << 20)));
    let log = Log::open(dir.path(), opts).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut written = 0;
    for _ in 0..6 {
        append(&log, written, 5000);
        written += 5000;
        std::thread::sleep(Duration::from_millis(rng.u64(0..40)));
        proxy.set_down(true);
        std::thread::sleep(Duration::from_millis(rng.u64(20..120)));
        proxy.set_down(false);
    }
    log.wait_uploaded(WAIT).unwrap();
    let stats = log.tier_stats().unwrap();
    assert!(stats.upload_errors > 0 && stats.evicted_segments > 0, "{stats:?}");
    check_all(&log.snapshot(), written);
    let remote = ReadOnlyLog::open_remote_with(tier(store(&server.endpoint(), &bucket))).unwrap();
    check_all(&remote.snapshot(), written);
}

#[test]
fn a_store_that_restarts_empty_gets_every_local_segment_again() {
    // A server of its own: it is killed, and comes back without any object.
    let mut server = S3Server::start();
    let bucket = server.new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options(tier(store(&server.endpoint(), &bucket)))).unwrap();
    append(&log, 0, 1000);
    log.wait_uploaded(WAIT).unwrap();
    let before = log.tier_stats().unwrap();
    server.restart();
    server.create_bucket(&bucket);
    append(&log, 1000, 1000);
    log.wait_uploaded(WAIT).unwrap();
    let after = log.tier_stats().unwrap();
    assert!(after.upload_errors > 0, "the lost manifest was noticed: {after:?}");
    assert!(after.uploaded_segments >= 2 * before.uploaded_segments, "{before:?} {after:?}");
    let remote = ReadOnlyLog::open_remote_with(tier(store(&server.endpoint(), &bucket))).unwrap();
    check_all(&remote.snapshot(), 2000);
}

/// Appends `n` records, rolls, and waits until every sealed segment is
/// uploaded and evicted (the local policy keeps one segment's bytes: the
/// active one).
fn life_all_evicted(dir: &std::path::Path, store: &Arc<dyn ObjectStore>, from: u64, n: u64) {
    let log = Log::open(dir, options(tier(store.clone()).keep_local(Retention::new().max_total_bytes(SEGMENT)))).unwrap();
    append(&log, from, n);
    log.wait_uploaded(WAIT).unwrap();
    let deadline = Instant::now() + WAIT;
    while log.snapshot().segment_info().iter().any(|s| s.sealed && !s.remote) {
        assert!(Instant::now() < deadline, "not everything sealed was evicted");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(log.verify().is_ok(), "{:?}", log.verify().problems);
    log.close().unwrap();
}

#[test]
fn segments_sealed_after_a_reopen_chain_after_the_evicted_ones() {
    // Every sealed segment is remote when the log reopens: the next one
    // sealed must link to the last of them, or the chain (and the manifest,
    // which checks it) breaks.
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    life_all_evicted(dir.path(), &store, 0, 900);
    life_all_evicted(dir.path(), &store, 900, 600);
    let log = Log::open(dir.path(), options(tier(store.clone()))).unwrap();
    assert!(log.verify().is_ok(), "{:?}", log.verify().problems);
    check_all(&log.snapshot(), 1500);
    check_all(&ReadOnlyLog::open_remote_with(tier(store)).unwrap().snapshot(), 1500);
}

#[test]
fn a_segment_resealed_after_a_crash_links_to_the_evicted_one_before_it() {
    // What a crash during a seal leaves (no usable trailer) on the oldest
    // local sealed segment, whose predecessor is remote: recovery reseals it
    // linked to that predecessor.
    let (_, _, store) = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let keep = Retention::new().max_total_bytes(3 * SEGMENT);
    let log = Log::open(dir.path(), options(tier(store.clone()).keep_local(keep))).unwrap();
    append(&log, 0, 1500);
    log.wait_uploaded(WAIT).unwrap();
    wait_for(&log, "evicted_segments", |s| s.evicted_segments >= 2);
    let info = log.snapshot().segment_info();
    let victim = info.iter().find(|s| s.sealed && !s.remote).unwrap().clone();
    log.close().unwrap();
    let mut bytes = std::fs::read(&victim.path).unwrap();
    let n = bytes.len();
    bytes[n - 64..].fill(0);
    std::fs::write(&victim.path, &bytes).unwrap();

    let log = Log::open(dir.path(), options(tier(store.clone()).keep_local(keep))).unwrap();
    assert_eq!(log.recovery_report().resealed, vec![victim.path.clone()]);
    assert!(log.verify().is_ok(), "{:?}", log.verify().problems);
    log.wait_uploaded(WAIT).unwrap();
    log.close().unwrap();
    let log = Log::open(dir.path(), options(tier(store.clone()).keep_local(keep))).unwrap();
    check_all(&log.snapshot(), 1500);
    check_all(&ReadOnlyLog::open_remote_with(tier(store)).unwrap().snapshot(), 1500);
}

#[test]
fn without_the_read_back_a_damaged_upload_is_found_when_it_is_read_not_before() {
    // `read_back_uploads(false)`: uploads are trusted once the store takes
    // them. Bytes damaged before the client hashed them are listed, and the
    // fetch (which checks the manifest's hash) reports them naming the
    // object; nothing reads wrong data.
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let damaging = Arc::new(DamagingStore { inner: store(&server.endpoint(), &bucket), damage_next: 1.into() });
    let dir = tempfile::tempdir().unwrap();
    let opts = tier(damaging).read_back_uploads(false).keep_local(Retention::new().max_total_bytes(SEGMENT));
    let log = Log::open(dir.path(), options(opts)).unwrap();
    append(&log, 0, 1000);
    log.wait_uploaded(WAIT).unwrap();
    assert_eq!(log.tier_stats().unwrap().upload_errors, 0, "nothing was checked");
    let remote = ReadOnlyLog::open_remote_with(tier(store(&server.endpoint(), &bucket))).unwrap();
    let errors: Vec<Error> = remote.snapshot().iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 1);
    assert!(matches!(&errors[0], Error::Corrupt { path, .. } if path.to_string_lossy().contains("logs/t/segments/")), "{}", errors[0]);
}
