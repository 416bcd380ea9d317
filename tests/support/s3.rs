//! Test support for the `tiered` feature: a real S3-compatible server (moto)
//! on loopback, and a fault-injecting TCP proxy to put in front of it.
//!
//! Include it from an integration test with
//! `#[path = "support/s3.rs"] mod s3;`. It is synchronous and uses std only
//! (threads and `std::net`); every wait in it is bounded.
//!
//! # The server
//!
//! [`S3Server::start`] runs `moto_server` (found through `MOTO_SERVER`, else
//! on `PATH`) on a free loopback port and returns once it answers HTTP.
//! [`S3Server::shared`] gives one server per test binary. moto keeps its
//! state in memory only: [`S3Server::restart`] comes back empty, and a bucket
//! must be created again ([`S3Server::new_bucket`] makes a unique one).
//!
//! The server cannot outlive the test process: it runs under a small `sh`
//! guard whose stdin is a pipe the harness holds. When the harness lets go
//! of the pipe (drop, or the test process dying in any way, SIGKILL
//! included), the guard kills the server. `timeout` bounds its life at
//! [`SERVER_LIFE`] seconds in any case, and dropping an [`S3Server`] kills
//! the guard's process group with SIGKILL and reaps it.
//!
//! # Credentials
//!
//! Clients read the standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_REGION`; moto accepts any values. [`aws_env`] sets the ones that are
//! unset to `test`, `test` and `us-east-1` ([`S3Server::start`] calls it).
//! It does so once, with `std::env::set_var`, which is not thread-safe
//! against code that reads the environment outside std's lock (C code
//! calling `getenv`), and which is `unsafe` in edition 2024 (this crate is
//! edition 2021). Call it, or start a server, before building a client or
//! starting threads that read the environment.
//!
//! # Faults
//!
//! [`FaultProxy`] forwards a loopback port to the server and can make it
//! look down (state kept, unlike a restart), answer `503`, or be slow.
//! Faults apply to new connections: an HTTP client reuses pooled
//! connections, so build a fresh client (or disable pooling) when a test
//! needs a fault to be seen by the next request. Going down cuts the
//! connections already open too.

#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The command that installs moto, named in the panic when it is missing.
pub const INSTALL_HINT: &str = "python3 -m pip install 'moto[s3]' flask flask-cors";

/// The longest a server may live, in seconds (`timeout` kills it then).
pub const SERVER_LIFE: u64 = 600;

/// How long a server may take to answer after it is spawned.
const START_LIMIT: Duration = Duration::from_secs(30);

/// How long a killed server may take to stop accepting connections.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// The limit on one request from [`http_request`] as the harness uses it.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// The credentials and region set by [`aws_env`] when unset.
pub const AWS_TEST_ENV: [(&str, &str); 3] = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")];

/// Sets each of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION`
/// that is unset to its test value (once per process), and returns the
/// values in effect: `(key, secret, region)`. See the module docs on when to
/// call it.
pub fn aws_env() -> (String, String, String) {
    static SET: Once = Once::new();
    SET.call_once(|| {
        for (name, value) in AWS_TEST_ENV {
            if std::env::var_os(name).is_none() {
                // Edition 2021: safe to call; done once, before the clients
                // that read these variables are built.
                std::env::set_var(name, value);
            }
        }
    });
    let get = |name: &str| std::env::var(name).unwrap_or_else(|e| panic!("{name} is not usable: {e}"));
    (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"), get("AWS_REGION"))
}

/// A free loopback port (bound and released: another process could take it
/// before it is used, which is unlikely enough for tests).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address of a bound listener").port()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One unsigned HTTP/1.1 request with an empty body and `Connection: close`
/// to `127.0.0.1:port`, all of it (connect, send, read) within `limit`.
/// Returns the status code and the body (lossy UTF-8, at most 1 MiB read).
pub fn http_request(port: u16, method: &str, path: &str, limit: Duration) -> io::Result<(u16, String)> {
    let deadline = Instant::now() + limit;
    let mut stream = TcpStream::connect_timeout(&loopback(port), limit)?;
    stream.set_write_timeout(Some(limit))?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{method} {path}: no complete response within {limit:?}")));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if response.len() + n > 1 << 20 => {
                return Err(io::Error::other(format!("{method} {path}: response over 1 MiB")));
            }
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("{method} {path}: not an HTTP response: {:?}", &text[..text.len().min(80)])))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_string();
    Ok((status, body))
}

/// Whether something accepts connections on `127.0.0.1:port`.
pub fn accepts_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&loopback(port), Duration::from_secs(1)).is_ok()
}

/// The `moto_server` to run: `MOTO_SERVER`, else the first on `PATH`.
fn moto_binary() -> PathBuf {
    fn executable(path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    if let Some(path) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            executable(&path),
            "MOTO_SERVER={} is not an executable file; install moto with `{INSTALL_HINT}` or run the tests through `.ci/test`",
            path.display()
        );
        return path;
    }
    let on_path =
        std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("moto_server")).find(|p| executable(p)));
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server not found: the tiered-storage tests need a real S3-compatible server on loopback. \
             Install it with `{INSTALL_HINT}` (or point MOTO_SERVER at a moto_server binary), \
             or run the tests through `.ci/test`, which installs it into a venv under target/"
        )
    })
}

/// Where server logs go: cargo's per-target temporary directory for
/// integration tests, else the system's.
fn log_dir() -> PathBuf {
    let dir = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from).join("moto-logs");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create the server log directory {}: {e}", dir.display()));
    dir
}

/// The last `max` bytes of a log, for a panic message.
fn log_tail(path: &Path, max: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(max)..]).into_owned(),
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

/// The guard: runs the server (`$0`, port `$1`, life `$2` seconds) under
/// `timeout` in the background and waits for it; a second background job
/// reads the guard's stdin (kept as fd 3, since a background job's stdin is
/// /dev/null) and kills the server when that pipe closes. `--foreground`
/// keeps `timeout` and the server in the guard's process group, so killing
/// the group kills them all. The guard exits when the server does, which is
/// how the harness notices a server that died on its own.
const GUARD: &str = r#"exec 3<&0
timeout --foreground -k 2 "$2" "$0" -H 127.0.0.1 -p "$1" </dev/null &
m=$!
(read _ <&3; kill $m 2>/dev/null) </dev/null &
r=$!
wait $m
s=$?
kill $r 2>/dev/null
exit $s"#;

/// A running guard: the `sh` process (leader of its own process group) and
/// the write end of its stdin pipe.
struct Guarded {
    sh: Child,
    stdin: Option<ChildStdin>,
}

impl Guarded {
    /// Closes the pipe, SIGKILLs the whole group and reaps the guard.
    fn kill(mut self) {
        drop(self.stdin.take());
        let group = format!("-{}", self.sh.id());
        // Ignore the result: the group may already be gone.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = self.sh.kill();
        let _ = self.sh.wait();
    }
}

/// A moto S3 server on `127.0.0.1`, killed on drop. See the module docs.
pub struct S3Server {
    port: u16,
    binary: PathBuf,
    log: PathBuf,
    running: Option<Guarded>,
}

impl S3Server {
    /// Starts a server of its own on a free port; panics (naming the log) if
    /// it does not answer within 30 s.
    pub fn start() -> S3Server {
        aws_env();
        let port = free_port();
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = log_dir().join(format!("moto-{}-{n}-{port}.log", std::process::id()));
        let mut server = S3Server { port, binary: moto_binary(), log, running: None };
        server.spawn();
        server
    }

    /// One server for the whole test binary, started on first use and never
    /// dropped: it dies with the process through the stdin-pipe guard. Do not
    /// kill, restart or reset it; start a server of your own for that.
    pub fn shared() -> &'static S3Server {
        static SHARED: OnceLock<S3Server> = OnceLock::new();
        SHARED.get_or_init(S3Server::start)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for a client's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log (stdout and stderr, across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Creates a bucket with a unique name and returns the name.
    pub fn new_bucket(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("varvelog-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_bucket(&name);
        name
    }

    /// Creates bucket `name` (3 to 63 characters: lowercase letters, digits,
    /// hyphens) with an unsigned `PUT /name`, which moto allows.
    pub fn create_bucket(&self, name: &str) {
        match http_request(self.port, "PUT", &format!("/{name}"), REQUEST_LIMIT) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("create bucket {name:?} on {}: HTTP {status}: {body}", self.endpoint()),
            Err(e) => panic!("create bucket {name:?} on {}: {e} (server log: {})", self.endpoint(), self.log.display()),
        }
    }

    /// Drops every bucket and object (`POST /moto-api/reset`). Not on the
    /// shared server: other tests use it at the same time.
    pub fn reset(&self) {
        match http_request(self.port, "POST", "/moto-api/reset", REQUEST_LIMIT) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("reset {}: HTTP {status}: {body}", self.endpoint()),
            Err(e) => panic!("reset {}: {e} (server log: {})", self.endpoint(), self.log.display()),
        }
    }

    /// Kills the server (SIGKILL to its process group) and returns once its
    /// port refuses connections. Requests then fail with "connection refused".
    pub fn kill(&mut self) {
        let stopped = self.stop();
        assert!(stopped, "killed server still accepts connections on port {} after {STOP_LIMIT:?}", self.port);
    }

    /// Kills the server if it runs; false if its port still accepts
    /// connections after [`STOP_LIMIT`].
    fn stop(&mut self) -> bool {
        let Some(guarded) = self.running.take() else { return true };
        guarded.kill();
        // The guard is reaped, but the server, its grandchild, may take a
        // moment longer to die and close its socket.
        let t0 = Instant::now();
        while accepts_connections(self.port) {
            if t0.elapsed() > STOP_LIMIT {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Kills the server and starts a new one on the same port. moto keeps
    /// nothing: every bucket and object is gone.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Spawns the guard and waits until the server answers `GET /` with 200.
    fn spawn(&mut self) {
        assert!(self.running.is_none(), "spawn with a server already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open the server log {}: {e}", self.log.display()));
        let log_err = log.try_clone().unwrap_or_else(|e| panic!("clone the server log's handle: {e}"));
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg(&self.binary)
            .arg(self.port.to_string())
            .arg(SERVER_LIFE.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sh to run {}: {e}", self.binary.display()));
        let stdin = sh.stdin.take();
        // From here on, a panic drops `self`, which kills the server.
        self.running = Some(Guarded { sh, stdin });
        let t0 = Instant::now();
        loop {
            let exited = self.running.as_mut().and_then(|g| g.sh.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.running = None;
                panic!(
                    "{} exited ({status}) before answering on port {}; log {}:\n{}",
                    self.binary.display(),
                    self.port,
                    self.log.display(),
                    log_tail(&self.log, 2000)
                );
            }
            if let Ok((200, _)) = http_request(self.port, "GET", "/", Duration::from_secs(2)) {
                return;
            }
            if t0.elapsed() > START_LIMIT {
                panic!(
                    "{} did not answer on port {} within {START_LIMIT:?}; log {}:\n{}",
                    self.binary.display(),
                    self.port,
                    self.log.display(),
                    log_tail(&self.log, 2000)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // No panic in a destructor: a server still up here is killed by
        // `timeout` in the end.
        if !self.stop() {
            eprintln!("moto_server on port {} still accepts connections after {STOP_LIMIT:?}", self.port);
        }
        // Keep the log when a test fails, for a look at what the server saw.
        if !thread::panicking() {
            let _ = fs::remove_file(&self.log);
        }
    }
}

/// How often proxy threads look at their switches.
const TICK: Duration = Duration::from_millis(20);

/// The proxy's limit on connecting to the server.
const UPSTREAM_CONNECT_LIMIT: Duration = Duration::from_secs(2);

/// How long a failed connection waits for the request head, and then for the
/// client to stop sending, before it is closed.
const FAIL_READ_LIMIT: Duration = Duration::from_secs(2);

/// The body of an injected 503, shaped like S3's own errors.
const BODY_503: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>ServiceUnavailable</Code><Message>injected by FaultProxy</Message></Error>";

fn response_503() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY_503}",
        BODY_503.len()
    )
}

/// The switches and counters the proxy's threads share.
struct ProxyState {
    upstream: u16,
    stop: AtomicBool,
    down: AtomicBool,
    fail_next: AtomicUsize,
    delay_ms: AtomicU64,
    connections: AtomicUsize,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl ProxyState {
    /// Whether open connections must be cut: the proxy is stopping or down.
    fn cut(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.down.load(Ordering::SeqCst)
    }

    /// Takes one of the pending failures, if any.
    fn take_failure(&self) -> bool {
        self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    /// Sleeps `d` in ticks; false if the proxy went down or is stopping.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.cut() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(TICK));
        }
    }

    fn track(&self, worker: JoinHandle<()>) {
        let mut workers = self.workers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        workers.retain(|w| !w.is_finished());
        workers.push(worker);
    }
}

/// A loopback TCP proxy in front of a server, with switches to make it look
/// down, failing or slow. Its threads all end when it is dropped.
pub struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards each connection to
    /// `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy on 127.0.0.1:0");
        let port = listener.local_addr().expect("the fault proxy's local address").port();
        listener.set_nonblocking(true).expect("make the fault proxy's listener nonblocking");
        let state = Arc::new(ProxyState {
            upstream,
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            workers: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let acceptor = thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || accept_loop(listener, shared))
            .expect("spawn the fault proxy's accept thread");
        FaultProxy { port, state, acceptor: Some(acceptor) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the proxy, for a client's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn upstream_port(&self) -> u16 {
        self.state.upstream
    }

    /// Down: every new connection is accepted and closed at once, and the
    /// open ones are cut, so clients see resets or early EOFs while the
    /// server keeps its state. Up again with `set_down(false)`.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` new connections read the request head, get
    /// `503 Service Unavailable` with `Connection: close`, and are closed.
    /// Replaces any failures still pending.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Failures set by [`FaultProxy::fail_next`] not yet served.
    pub fn failures_pending(&self) -> usize {
        self.state.fail_next.load(Ordering::SeqCst)
    }

    /// Waits `delay` before forwarding each new connection (a slow server).
    /// `Duration::ZERO` turns it off.
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Connections accepted so far, whatever became of them.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // The acceptor has ended, so no worker is added from here on; each
        // one sees `stop` within a tick.
        let workers = std::mem::take(&mut *self.state.workers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<ProxyState>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                state.connections.fetch_add(1, Ordering::SeqCst);
                if state.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let shared = Arc::clone(&state);
                // If no thread can be spawned the connection is dropped,
                // which a client sees as the server failing.
                if let Ok(worker) = thread::Builder::new().name("fault-proxy-conn".into()).spawn(move || serve(client, &shared)) {
                    state.track(worker);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // WouldBlock: nothing to accept; anything else (out of file
            // descriptors, say): wait rather than spin.
            Err(_) => thread::sleep(TICK),
        }
    }
}

/// One client connection: fail it, or delay it and forward it both ways.
fn serve(client: TcpStream, state: &Arc<ProxyState>) {
    // Whether an accepted socket inherits nonblocking differs by platform.
    if client.set_nonblocking(false).is_err()
        || client.set_read_timeout(Some(TICK)).is_err()
        || client.set_write_timeout(Some(TICK)).is_err()
    {
        return;
    }
    if state.take_failure() {
        fail(client, state);
        return;
    }
    let delay = Duration::from_millis(state.delay_ms.load(Ordering::SeqCst));
    if !state.sleep(delay) {
        return;
    }
    let Ok(upstream) = TcpStream::connect_timeout(&loopback(state.upstream), UPSTREAM_CONNECT_LIMIT) else { return };
    if upstream.set_read_timeout(Some(TICK)).is_err() || upstream.set_write_timeout(Some(TICK)).is_err() {
        return;
    }
    let (Ok(client_back), Ok(upstream_back)) = (client.try_clone(), upstream.try_clone()) else { return };
    let shared = Arc::clone(state);
    let Ok(back) = thread::Builder::new().name("fault-proxy-back".into()).spawn(move || pump(upstream_back, client_back, &shared)) else {
        return;
    };
    pump(client, upstream, state);
    let _ = back.join();
}

/// Reads the request head (bounded), answers 503 and closes; reads what the
/// client still sends for a moment so that closing does not reset the
/// connection before the client has read the answer.
fn fail(mut client: TcpStream, state: &ProxyState) {
    let deadline = Instant::now() + FAIL_READ_LIMIT;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n")
        && head.len() < 64 * 1024
        && Instant::now() < deadline
        && !state.stop.load(Ordering::SeqCst)
    {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if is_tick(&e) => {}
            Err(_) => return,
        }
    }
    if write_all(&mut client, response_503().as_bytes(), state).is_err() {
        return;
    }
    let _ = client.shutdown(Shutdown::Write);
    let deadline = Instant::now() + FAIL_READ_LIMIT;
    while Instant::now() < deadline && !state.stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_tick(&e) => {}
            Err(_) => return,
        }
    }
}

/// A read or write that timed out (a tick passed) or was interrupted.
fn is_tick(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Copies `from` to `to` until EOF, an error, or the proxy going down or
/// stopping (then both sockets are shut down, which ends the other
/// direction too).
fn pump(mut from: TcpStream, mut to: TcpStream, state: &ProxyState) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if state.cut() {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if write_all(&mut to, &buf[..n], state).is_err() {
                    break;
                }
            }
            Err(e) if is_tick(&e) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// `write_all` that gives up when the proxy goes down or stops.
fn write_all(to: &mut TcpStream, mut bytes: &[u8], state: &ProxyState) -> io::Result<()> {
    while !bytes.is_empty() {
        if state.cut() {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "fault proxy down or stopping"));
        }
        match to.write(bytes) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "peer closed")),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if is_tick(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A client of `endpoint`'s `bucket` with bounded retries and timeouts (2
/// retries within 3 s, 1 s to connect, 5 s a request), so that a fault
/// costs seconds, not minutes, and credentials from [`aws_env`].
pub fn client(endpoint: &str, bucket: &str) -> std::sync::Arc<dyn object_store::ObjectStore> {
    use object_store::aws::AmazonS3Builder;
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};
    let (key, secret, region) = aws_env();
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(3),
        backoff: BackoffConfig { init_backoff: Duration::from_millis(20), max_backoff: Duration::from_millis(200), base: 2.0 },
    };
    let options = ClientOptions::new().with_connect_timeout(Duration::from_secs(1)).with_timeout(Duration::from_secs(5));
    std::sync::Arc::new(
        AmazonS3Builder::new()
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_region(region)
            // Before `with_allow_http`: client options replace all of them.
            .with_client_options(options)
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_retry(retry)
            .build()
            .expect("S3 client"),
    )
}
