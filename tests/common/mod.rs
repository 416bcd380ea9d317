//! Helpers shared by the engine acceptance tests: a deterministic record
//! model (payload, key and timestamp derived from the seq, so any reader can
//! check contents without shared state) and tools to inspect and damage
//! segment files on disk.

#![allow(dead_code)]

pub mod child;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use varvelog::format::{FOOTER_HEADER_BYTES, FRAME_HEADER_BYTES, HEADER_BYTES, TRAILER_BYTES};
use varvelog::{Entry, Log, Options, Record, Writer};

/// The smallest segment size: many rotations with few records.
pub const SEGMENT_BYTES: u64 = 64 * 1024;

/// Options used by most tests: 64 KiB segments, everything else default.
pub fn opts() -> Options {
    Options::new().segment_bytes(SEGMENT_BYTES)
}

/// Seeded randomness for the tests (fastrand), so a failing seed replays.
#[derive(Clone, Debug)]
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }
    pub fn next(&mut self) -> u64 {
        self.0.u64(..)
    }
    /// Below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n.max(1))
    }
}

/// A cheap 64-bit mix (splitmix64 finaliser), so derived fields look random.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The payload of record `seq`: 0..=300 bytes, the seq in the first 8 bytes
/// when there is room, the rest derived from the seq.
pub fn payload_for(seq: u64) -> Vec<u8> {
    let len = (mix(seq) % 301) as usize;
    let mut p: Vec<u8> = (0..len).map(|i| mix(seq ^ ((i as u64) << 40)) as u8).collect();
    if len >= 8 {
        p[..8].copy_from_slice(&seq.to_le_bytes());
    }
    p
}

/// The key of record `seq`: none for every third record, otherwise a short
/// string naming the seq.
pub fn key_for(seq: u64) -> Vec<u8> {
    if seq.is_multiple_of(3) {
        Vec::new()
    } else {
        format!("key-{seq}-{}", mix(seq) % 97).into_bytes()
    }
}

/// The timestamp of record `seq`: a slowly rising clock with large
/// backwards and forwards jumps, so timestamps are not monotonic.
pub fn ts_for(seq: u64) -> u64 {
    1_000_000 + seq * 10 + mix(seq.wrapping_mul(31)) % 50_000
}

/// Appends record `seq` of the model with one `append_entry` and checks
/// the seq the writer assigned.
pub fn append_model(w: &mut Writer, seq: u64) {
    let payload = payload_for(seq);
    let key = key_for(seq);
    let got = w.append_entry(Entry::new(&payload).key(&key).timestamp(ts_for(seq))).unwrap();
    assert_eq!(got, seq, "writer assigned an unexpected seq");
}

/// Asserts that `r` is record `seq` of the model (payload, key, timestamp).
pub fn check_model(r: &Record<'_>, seq: u64) {
    assert_eq!(r.seq(), seq);
    assert_eq!(r.payload(), &payload_for(seq)[..], "payload of seq {seq}");
    let key = key_for(seq);
    assert_eq!(r.key(), (!key.is_empty()).then_some(&key[..]), "key of seq {seq}");
    assert_eq!(r.timestamp(), ts_for(seq), "timestamp of seq {seq}");
}

/// Opens a log in `dir` with `opts()` and appends model records `0..n`.
pub fn write_model_log(dir: &Path, n: u64) {
    let log = Log::open(dir, opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..n {
        append_model(&mut w, seq);
    }
    w.sync().unwrap();
}

/// Asserts that the log holds exactly model records `0..n`, checking every
/// record with a forward scan.
pub fn check_model_log(log: &Log, n: u64) {
    let snap = log.snapshot();
    assert_eq!(snap.next_seq(), n, "next_seq");
    assert_eq!(snap.len(), n, "len");
    let mut expected = 0;
    for r in snap.iter() {
        let r = r.unwrap();
        check_model(&r, expected);
        expected += 1;
    }
    assert_eq!(expected, n, "records seen by a full scan");
}

/// Segment files in `dir`, oldest first, with their base seqs.
pub fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let digits = p.file_name()?.to_str()?.strip_suffix(".seg")?;
            let base: u64 = if digits.len() == 20 { digits.parse().ok()? } else { return None };
            Some((base, p))
        })
        .collect();
    out.sort();
    out
}

/// One frame found on disk by [`walk_frames`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAt {
    /// File offset of the frame header.
    pub offset: u64,
    /// The `len` field (header + payload + key, unpadded).
    pub len: u64,
    /// The `seq` field.
    pub seq: u64,
    /// The `flags` field.
    pub flags: u8,
}

impl FrameAt {
    /// Offset just past the frame's padding.
    pub fn end(&self) -> u64 {
        self.offset + self.len.next_multiple_of(8)
    }
}

/// Walks the frame headers of a segment file from `HEADER_BYTES` until a zero
/// length, an impossible length or the end of the file. Independent of the
/// engine's decoder (it reads the documented layout: `len` u32 LE at +0,
/// `seq` u64 LE at +8, `flags` u8 at +30) and checks no checksum.
pub fn walk_frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = HEADER_BYTES as usize;
    while off + FRAME_HEADER_BYTES as usize <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as u64;
        if len < FRAME_HEADER_BYTES || off as u64 + len > bytes.len() as u64 {
            break;
        }
        let seq = u64::from_le_bytes(bytes[off + 8..off + 16].try_into().unwrap());
        out.push(FrameAt { offset: off as u64, len, seq, flags: bytes[off + 30] });
        off += len.next_multiple_of(8) as usize;
    }
    out
}

/// The `footer_offset` stored in a sealed segment's trailer (the offset where
/// the frames end and the footer begins).
pub fn footer_offset(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let t = bytes.len() - TRAILER_BYTES as usize;
    assert_eq!(&bytes[t..t + 8], b"VARVTRLR", "{} has no trailer", path.display());
    let at = u64::from_le_bytes(bytes[t + 8..t + 16].try_into().unwrap());
    assert!(at + FOOTER_HEADER_BYTES + TRAILER_BYTES <= bytes.len() as u64);
    assert_eq!(&bytes[at as usize..at as usize + 8], b"VARVFOOT");
    at
}

/// XORs the byte at `offset` of `path` with `mask`.
pub fn flip_byte(path: &Path, offset: u64, mask: u8) {
    let mut f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= mask;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}

/// Writes `bytes` at `offset` of `path` (extending the file if needed).
pub fn write_bytes_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// Cuts `path` to `len` bytes.
pub fn truncate_file(path: &Path, len: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
}

/// The length of `path` in bytes.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Deterministic non-zero garbage, never forming a valid frame because the
/// engine's frame checksum is seeded.
pub fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..) | 1).collect()
}

/// Every file in `dir` with its length and a digest of its bytes: compare two
/// fingerprints to prove a command changed nothing.
pub fn fingerprint(dir: &Path) -> std::collections::BTreeMap<String, (u64, [u8; 32])> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), (bytes.len() as u64, *blake3::hash(&bytes).as_bytes()))
        })
        .collect()
}

/// Whether `dir` is on tmpfs: its pages are the files themselves, never
/// written back nor dropped from the page cache.
pub fn on_tmpfs(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // `f_type`'s integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let is_tmpfs = |s: rustix::fs::StatFs| s.f_type as i64 == TMPFS_MAGIC;
    rustix::fs::statfs(dir).is_ok_and(is_tmpfs)
}

/// A child run of this test binary, killed with SIGKILL: what it
/// acknowledged on stdout (`ACK <n>` lines, in order) and whether it had
/// exited by itself before the kill.
pub struct Killed {
    pub acks: Vec<u64>,
    pub exited_by_itself: bool,
}

/// Runs test `test` of this binary as a child with `envs` set, waits for its
/// first `ACK` line (up to 10 s) unless `early`, sleeps `delay`, kills it
/// (SIGKILL) and returns what it acknowledged.
pub fn run_and_kill(test: &str, envs: &[(&str, String)], early: bool, delay: std::time::Duration) -> Killed {
    let mut c = child::Child::spawn(test, envs, &[]);
    if !early {
        c.wait_until(std::time::Duration::from_secs(10), |l| child::ack(l).is_some());
    }
    std::thread::sleep(delay);
    let ended = c.kill();
    // Acks arrive in order; one read after the kill was still sent before it.
    Killed { acks: ended.acks(), exited_by_itself: ended.status.success() }
}
