//! Random operation sequences — appends (small and large, so segments
//! rotate), batches, syncs, reads, retention, clean reopens and crashes
//! (the process dies and the unsynced tail is torn or garbled) — checked
//! after every step against a simple in-memory model of the log: the seqs it
//! holds, each record's bytes, the first retained seq and the durable point.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use varvelog::format::{decode_frame, HEADER_BYTES};
use varvelog::{Entry, Error, Log, Options, Retention, Writer};

#[derive(Arbitrary, Debug)]
enum Op {
    Append { len: u8, keyed: bool },
    Big { len: u16 },
    Batch { lens: Vec<u8> },
    Sync,
    Read { seq: u16 },
    Retain { below: u16 },
    Reopen,
    Crash { at: u16, garbage: Vec<u8> },
}

/// What the log must hold: for every seq from 0, its payload length and
/// whether it has a key (the bytes derive from these and the seq).
#[derive(Default)]
struct Model {
    records: Vec<(u32, bool)>,
    first: u64,
    durable: u64,
}

fn payload(seq: u64, len: u32) -> Vec<u8> {
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((0..len).map(|i| (seq as u32).wrapping_mul(13).wrapping_add(i) as u8));
    p
}

fn key(seq: u64, keyed: bool) -> Vec<u8> {
    if keyed {
        format!("key{seq}").into_bytes()
    } else {
        Vec::new()
    }
}

fn opts() -> Options {
    Options::new().segment_bytes(64 * 1024).prefault(false)
}

impl Model {
    fn next(&self) -> u64 {
        self.records.len() as u64
    }

    fn expect(&self, seq: u64) -> (Vec<u8>, Vec<u8>) {
        let (len, keyed) = self.records[seq as usize];
        (payload(seq, len), key(seq, keyed))
    }

    /// The log shows exactly the model: same range, same bytes, both ways.
    fn check(&self, log: &Log, probe: u64) {
        let snap = log.snapshot();
        assert_eq!(snap.next_seq(), self.next(), "next seq differs from the model");
        assert_eq!(snap.first_seq(), (self.first < self.next()).then_some(self.first), "first seq differs from the model");
        let mut seq = self.first;
        for r in snap.iter() {
            let r = r.unwrap_or_else(|e| panic!("reading seq {seq}: {e}"));
            let (p, k) = self.expect(seq);
            assert_eq!((r.seq(), r.payload(), r.key().unwrap_or(b"")), (seq, p.as_slice(), k.as_slice()), "record {seq} differs");
            seq += 1;
        }
        assert_eq!(seq, self.next(), "iteration ended early");
        if let Some(r) = snap.iter_rev().next() {
            let r = r.unwrap();
            assert_eq!((r.seq(), r.payload()), (self.next() - 1, self.expect(self.next() - 1).0.as_slice()));
        }
        if self.next() > 0 {
            let s = probe % self.next();
            match snap.get(s) {
                Ok(Some(r)) => assert_eq!(r.payload(), self.expect(s).0.as_slice(), "get({s}) differs"),
                Err(Error::Truncated { first_available, .. }) => assert!(s < self.first && first_available == self.first),
                other => panic!("get({s}) of a record in the log gave {other:?}"),
            }
        }
        assert!(log.durable_seq().map_or(0, |d| d + 1) >= self.durable, "durable seq went backwards");
    }
}

fn open(dir: &Path) -> (Log, Writer) {
    let log = Log::open(dir, opts()).unwrap_or_else(|e| panic!("open: {e}"));
    let w = log.writer().unwrap();
    (log, w)
}

/// A crash: everything from the first record not known durable on may be
/// torn. Zeroes the last segment's frames from a point at or after that
/// record's frame and writes garbage there.
fn tear_unsynced_tail(dir: &Path, durable: u64, at: u16, garbage: &[u8]) {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let Some(last) = segs.last() else { return };
    let mut bytes = std::fs::read(last).unwrap();
    let frames = &bytes[HEADER_BYTES as usize..];
    let (mut off, mut cut) = (0u64, None);
    while let Ok(f) = decode_frame(frames, off, true) {
        if f.seq >= durable && cut.is_none() {
            cut = Some(off);
        }
        off += f.padded_len;
    }
    let end = off;
    let Some(cut) = cut else { return }; // every frame of the last segment is durable
    let from = (HEADER_BYTES + cut + u64::from(at) % (end - cut + 1)) as usize;
    let stop = (HEADER_BYTES + end) as usize;
    bytes[from..stop].fill(0);
    let n = garbage.len().min(bytes.len() - from).min(64);
    bytes[from..from + n].copy_from_slice(&garbage[..n]);
    std::fs::write(last, bytes).unwrap();
}

/// A scratch directory, on tmpfs when there is one (fsync is free there,
/// which keeps thousands of opens a second possible).
fn scratch() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    if ops.len() > 48 {
        return;
    }
    let tmp = scratch();
    let dir = tmp.path();
    let mut model = Model::default();
    let (mut log, mut w) = open(dir);
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append { len, keyed } => {
                let seq = model.next();
                let (p, k) = (payload(seq, len.into()), key(seq, keyed));
                assert_eq!(w.append_entry(Entry::new(&p).key(&k)).unwrap(), seq);
                model.records.push((len.into(), keyed));
            }
            Op::Big { len } => {
                let len = u32::from(len) % 20_000;
                let seq = model.next();
                assert_eq!(w.append(&payload(seq, len)).unwrap(), seq);
                model.records.push((len, false));
            }
            Op::Batch { lens } => {
                let start = model.next();
                let shape: Vec<(u32, bool)> = lens.iter().take(6).map(|&l| (u32::from(l), l % 3 == 0)).collect();
                let bodies: Vec<(Vec<u8>, Vec<u8>)> =
                    shape.iter().enumerate().map(|(j, &(l, k))| (payload(start + j as u64, l), key(start + j as u64, k))).collect();
                let range = w.append_batch(bodies.iter().map(|(p, k)| Entry::new(p).key(k))).unwrap();
                assert_eq!(range, start..start + shape.len() as u64);
                model.records.extend(shape);
            }
            Op::Sync => {
                w.sync().unwrap();
                model.durable = model.next();
                assert_eq!(log.durable_seq(), model.next().checked_sub(1));
            }
            Op::Read { seq } => model.check(&log, seq.into()),
            Op::Retain { below } => {
                let below = u64::from(below) % (model.next() + 1);
                log.retain(&Retention::new().min_seq(below)).unwrap();
                let snap = log.snapshot();
                let first = snap.first_seq().unwrap_or(snap.next_seq());
                // Only whole segments go, and never a record at or after `below`.
                assert!(first >= model.first && first <= below.max(model.first), "retention kept from {first}, asked below {below}");
                model.first = first;
            }
            Op::Reopen => {
                drop(w);
                drop(log);
                (log, w) = open(dir);
                // A clean close loses nothing, synced or not.
                model.durable = model.next();
            }
            Op::Crash { at, garbage } => {
                let durable = model.durable;
                drop(w);
                drop(log);
                tear_unsynced_tail(dir, durable, at, &garbage);
                (log, w) = open(dir);
                let n = log.snapshot().next_seq();
                assert!(n >= durable && n <= model.next(), "after a crash: {n} records, durable {durable}, written {}", model.next());
                model.records.truncate(n as usize);
                model.durable = n;
            }
        }
        model.check(&log, i as u64 * 7919);
    }
});
