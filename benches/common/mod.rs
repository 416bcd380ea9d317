// Shared by the benches (included with `#[path]`): a log in a
// temporary directory that is recreated once it holds too many bytes, so
// long measurements never fill the disk.

#![allow(dead_code)]

use std::path::PathBuf;

use varvelog::{Log, Options, Writer};

/// Bytes a bench log may hold before it is recreated.
pub const RESET_BYTES: u64 = 1 << 30;

pub struct Fresh {
    dir: Option<tempfile::TempDir>,
    pub log: Log,
    pub writer: Writer,
    written: u64,
    opts: Options,
}

impl Fresh {
    pub fn new(opts: Options) -> Fresh {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Log::open(dir.path(), opts.clone()).expect("open log");
        let writer = log.writer().expect("writer");
        // Let the preparer finish the segments it makes at open.
        std::thread::sleep(std::time::Duration::from_millis(200));
        Fresh { dir: Some(dir), log, writer, written: 0, opts }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default()
    }

    /// Whether counting `bytes` more would recreate the log.
    pub fn would_reset(&self, bytes: u64) -> bool {
        self.written + bytes >= RESET_BYTES
    }

    /// Counts `bytes` as written; recreates the log (outside any timing the
    /// caller does) once it passed [`RESET_BYTES`].
    pub fn account(&mut self, bytes: u64) {
        self.written += bytes;
        if self.written >= RESET_BYTES {
            *self = Fresh::new(self.opts.clone());
        }
    }
}

/// Framed size of a record with `payload` bytes and no key.
pub fn framed(payload: usize) -> u64 {
    (32 + payload as u64).next_multiple_of(8)
}

/// Fills a log in `dir` with `records` payloads of `payload` bytes whose
/// timestamps are 10 us apart starting at 1_000_000, and closes it.
pub fn fill(dir: &std::path::Path, opts: Options, records: u64, payload: usize) {
    let log = Log::open(dir, opts).expect("open log");
    let mut w = log.writer().expect("writer");
    let body = vec![0x5Au8; payload];
    for i in 0..records {
        w.append_entry(varvelog::Entry::new(&body).timestamp(1_000_000 + i * 10)).expect("append");
    }
    w.sync().expect("sync");
}

/// The median of `xs` (the mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}
