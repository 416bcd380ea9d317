//! The S3 test harness (`tests/support/s3.rs`) checked against the real
//! server it runs (moto on loopback), through the `object_store` client the
//! `tiered` feature uses: a round trip, each fault of the proxy, killing and
//! restarting the server, and that nothing it starts outlives it.
#![cfg(feature = "tiered")]

#[path = "support/s3.rs"]
mod s3;

use std::future::Future;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

use s3::{FaultProxy, S3Server};

/// Set in a child run of this binary: `child_holds_a_server` then starts a
/// server, prints its port and waits to be killed.
const CHILD_ENV: &str = "VARVELOG_S3_HARNESS_CHILD";

/// The client configuration the tiered tests use: bounded timeouts and
/// retries, so a dead server surfaces in about half a second and a hung one
/// in 10 s.
fn client(endpoint: &str, bucket: &str) -> AmazonS3 {
    s3::aws_env();
    let retry = RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(1), base: 2.0 },
        max_retries: 3,
        retry_timeout: Duration::from_secs(5),
    };
    AmazonS3Builder::from_env()
        // Before `with_allow_http`: it replaces every client option,
        // allow_http included.
        .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_secs(1)).with_timeout(Duration::from_secs(10)))
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_retry(retry)
        .build()
        .unwrap_or_else(|e| panic!("build an S3 client for {endpoint}/{bucket}: {e}"))
}

/// Runs `f` to completion on a current-thread runtime of its own.
fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build a current-thread tokio runtime").block_on(f)
}

fn put(store: &AmazonS3, key: &str, data: &[u8]) {
    run(store.put(&Path::from(key), PutPayload::from(data.to_vec()))).unwrap_or_else(|e| panic!("put {key}: {e}"));
}

fn get(store: &AmazonS3, key: &str) -> object_store::Result<Vec<u8>> {
    run(async { Ok(store.get(&Path::from(key)).await?.bytes().await?.to_vec()) })
}

/// A timed `get`.
fn timed_get(store: &AmazonS3, key: &str) -> (object_store::Result<Vec<u8>>, Duration) {
    let t0 = Instant::now();
    let result = get(store, key);
    (result, t0.elapsed())
}

#[test]
fn put_then_get_returns_the_same_bytes() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let store = client(&server.endpoint(), &bucket);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    put(&store, "segments/00000001.seg", &data);
    assert_eq!(get(&store, "segments/00000001.seg").expect("get what was put"), data);
    let meta = run(store.head(&Path::from("segments/00000001.seg"))).expect("head what was put");
    assert_eq!(meta.size, data.len() as u64);
    let absent = get(&store, "segments/absent.seg");
    assert!(matches!(absent, Err(object_store::Error::NotFound { .. })), "an absent key: {absent:?}");
}

#[test]
fn buckets_are_separate() {
    let server = S3Server::shared();
    let (a, b) = (server.new_bucket(), server.new_bucket());
    assert_ne!(a, b);
    put(&client(&server.endpoint(), &a), "k", b"in a");
    let in_b = get(&client(&server.endpoint(), &b), "k");
    assert!(matches!(in_b, Err(object_store::Error::NotFound { .. })), "a key of bucket a read from bucket b: {in_b:?}");
}

#[test]
fn injected_503s_are_retried() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    put(&client(&server.endpoint(), &bucket), "k", b"retried");
    let proxy = FaultProxy::start(server.port());
    proxy.fail_next(2);
    let (got, took) = timed_get(&client(&proxy.endpoint(), &bucket), "k");
    assert_eq!(got.expect("a get that two 503s precede"), b"retried");
    assert!(proxy.connections() >= 3, "two failed connections and a good one, got {}", proxy.connections());
    assert_eq!(proxy.failures_pending(), 0);
    assert!(took < Duration::from_secs(5), "two retries took {took:?}");
}

#[test]
fn a_down_proxy_fails_requests_quickly_and_keeps_the_data() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let proxy = FaultProxy::start(server.port());
    // One client throughout: its pooled connection must be cut too.
    let store = client(&proxy.endpoint(), &bucket);
    put(&store, "k", b"kept");
    proxy.set_down(true);
    let (got, took) = timed_get(&store, "k");
    assert!(got.is_err(), "a get through a down proxy: {got:?}");
    assert!(took < Duration::from_secs(8), "the failure took {took:?}");
    let refused = proxy.connections();
    assert!(refused >= 2, "the get should have retried, {refused} connections");
    proxy.set_down(false);
    assert_eq!(get(&store, "k").expect("a get once the proxy is up again"), b"kept");
}

#[test]
fn a_delay_slows_each_new_connection() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    put(&client(&server.endpoint(), &bucket), "k", b"slow");
    let proxy = FaultProxy::start(server.port());
    let (got, fast) = timed_get(&client(&proxy.endpoint(), &bucket), "k");
    assert_eq!(got.expect("a get without delay"), b"slow");
    let delay = Duration::from_millis(400);
    proxy.set_delay(delay);
    // A new client, so a new connection.
    let (got, slow) = timed_get(&client(&proxy.endpoint(), &bucket), "k");
    assert_eq!(got.expect("a delayed get"), b"slow");
    assert!(slow >= delay, "a get delayed by {delay:?} took {slow:?} (without delay: {fast:?})");
    assert!(slow < delay + Duration::from_secs(5), "a get delayed by {delay:?} took {slow:?}");
}

#[test]
fn a_killed_server_fails_fast_and_restarts_empty_and_reset_empties_it() {
    let mut server = S3Server::start();
    let bucket = server.new_bucket();
    let store = client(&server.endpoint(), &bucket);
    put(&store, "k", b"lost");
    server.kill();
    assert!(!server.is_running());
    assert!(!s3::accepts_connections(server.port()));
    let (got, took) = timed_get(&store, "k");
    assert!(got.is_err(), "a get from a killed server: {got:?}");
    assert!(took < Duration::from_secs(5), "the failure took {took:?}");

    server.restart();
    assert!(server.is_running());
    let (got, _) = timed_get(&store, "k");
    assert!(matches!(got, Err(object_store::Error::NotFound { .. })), "the bucket should be gone after a restart: {got:?}");
    let bucket = server.new_bucket();
    let store = client(&server.endpoint(), &bucket);
    put(&store, "k", b"new");
    assert_eq!(get(&store, "k").expect("a get after the restart"), b"new");

    server.reset();
    let (got, _) = timed_get(&store, "k");
    assert!(matches!(got, Err(object_store::Error::NotFound { .. })), "the bucket should be gone after a reset: {got:?}");
}

#[test]
fn a_dropped_server_refuses_connections() {
    let server = S3Server::start();
    let port = server.port();
    let log = server.log_path().to_path_buf();
    assert!(s3::accepts_connections(port));
    let t0 = Instant::now();
    drop(server);
    assert!(t0.elapsed() < Duration::from_secs(5), "drop took {:?}", t0.elapsed());
    match TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "connecting to a dropped server: {e}"),
        Ok(_) => panic!("port {port} still accepts connections after the server was dropped"),
    }
    assert!(!log.exists(), "the log of a server dropped without a failure is removed");
}

#[test]
fn a_dropped_proxy_ends_its_threads() {
    let server = S3Server::shared();
    let proxy = FaultProxy::start(server.port());
    let endpoint = ([127, 0, 0, 1], proxy.port()).into();
    // A forwarded keep-alive connection, left idle after one exchange.
    let mut idle = TcpStream::connect_timeout(&endpoint, Duration::from_secs(1)).expect("connect to the proxy");
    idle.set_read_timeout(Some(Duration::from_secs(5))).expect("set a read timeout");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send a request");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).expect("read a response through the proxy");
    assert_eq!(&head, b"HTTP/1.1 200");
    // A connection held in an hour's delay.
    proxy.set_delay(Duration::from_secs(3600));
    let mut held = TcpStream::connect_timeout(&endpoint, Duration::from_secs(1)).expect("connect to the proxy");
    held.set_read_timeout(Some(Duration::from_secs(5))).expect("set a read timeout");
    held.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send a request");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(proxy.connections(), 2);

    let t0 = Instant::now();
    drop(proxy);
    assert!(t0.elapsed() < Duration::from_secs(2), "dropping the proxy took {:?}", t0.elapsed());
    assert!(!s3::accepts_connections(endpoint.port()), "the proxy's port still accepts connections");
    for (name, mut conn) in [("idle", idle), ("held", held)] {
        let mut rest = Vec::new();
        // The server's answer to the idle connection may still be buffered;
        // then the connection must end, not time out.
        let end = conn.read_to_end(&mut rest);
        assert!(end.is_ok() || e_is_reset(end.as_ref().err()), "the {name} connection did not end: {end:?}");
    }
}

fn e_is_reset(e: Option<&std::io::Error>) -> bool {
    e.is_some_and(|e| matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted))
}

/// Runs test `child_holds_a_server` of this binary as a child process.
fn spawn_child(configure: impl FnOnce(&mut Command)) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(["--exact", "child_holds_a_server", "--nocapture", "--test-threads=1"]).env(CHILD_ENV, "1").stdin(Stdio::null());
    configure(&mut cmd);
    cmd.spawn().expect("spawn this test binary as a child")
}

/// Waits up to `limit` for `child`; kills it (and fails) past that.
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Started by `the_server_dies_with_the_test_process` and
/// `a_missing_server_names_the_install_command`; does nothing otherwise.
#[test]
fn child_holds_a_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = S3Server::start();
    println!("PORT {} LOG {}", server.port(), server.log_path().display());
    // The parent kills this process long before.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn the_server_dies_with_the_test_process() {
    let mut child = spawn_child(|cmd| {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    });
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print `test NAME ... ` before it on the same line.
            let Some(at) = line.find("PORT ") else { continue };
            let mut words = line[at + 5..].split(' ');
            let port = words.next().and_then(|p| p.parse::<u16>().ok());
            let log = words.next().filter(|w| *w == "LOG").and_then(|_| words.next()).map(PathBuf::from);
            if let (Some(port), Some(log)) = (port, log) {
                let _ = tx.send((port, log));
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(40));
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    reader.join().expect("the child's stdout reader");
    let (port, log) = port.expect("the child printed no port within 40 s");
    // SIGKILL runs no destructor: only the guard's stdin pipe stops the server.
    let t0 = Instant::now();
    while s3::accepts_connections(port) {
        assert!(t0.elapsed() < Duration::from_secs(10), "the server of a SIGKILLed process still runs after 10 s (port {port})");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The child could not remove its server's log.
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_missing_server_names_the_install_command() {
    let mut child = spawn_child(|cmd| {
        cmd.env_remove("MOTO_SERVER").env("PATH", "/nonexistent").stdout(Stdio::null()).stderr(Stdio::piped());
    });
    let mut stderr = child.stderr.take().expect("the child's stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let stderr = reader.join().expect("the child's stderr reader");
    assert!(!status.success(), "the child should fail without moto_server");
    assert!(
        stderr.contains(s3::INSTALL_HINT) && stderr.contains(".ci/test"),
        "the panic should name the install command and .ci/test: {stderr}"
    );
}
