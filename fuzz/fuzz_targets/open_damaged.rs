//! Opening a log directory whose segment files were damaged arbitrarily
//! (bit flips, overwritten or zeroed ranges, truncation, garbage appended,
//! files removed or replaced by others): the open is a typed error or a log
//! whose every readable record is exactly what was written for its seq (a
//! valid prefix, never an invented record), readers stop with a typed error
//! at damage, and a log that opened accepts an append and reopens.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use varvelog::{Entry, Log, Options, RecoveryMode};

const RECORDS: u64 = 1500;
const APPENDED: &[u8] = b"after damage";

fn payload(seq: u64) -> Vec<u8> {
    let len = (seq * 37 % 200) as usize;
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((0..len).map(|i| (seq as usize * 31 + i) as u8));
    p
}

fn key(seq: u64) -> Vec<u8> {
    if seq % 5 == 0 {
        format!("k{seq}").into_bytes()
    } else {
        Vec::new()
    }
}

fn opts(strict: bool) -> Options {
    let mode = if strict { RecoveryMode::Strict } else { RecoveryMode::TolerateTornTail };
    Options::new().segment_bytes(64 * 1024).prefault(false).recovery_mode(mode)
}

/// A log with `RECORDS` known records over several segments (singles and
/// batches), synced and closed; built once per fuzzing process.
fn template() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch();
        let log = Log::open(dir.path(), opts(false)).unwrap();
        let mut w = log.writer().unwrap();
        let mut seq = 0;
        while seq < RECORDS {
            if seq % 7 == 3 && seq + 3 <= RECORDS {
                let bodies: Vec<(Vec<u8>, Vec<u8>)> = (seq..seq + 3).map(|s| (payload(s), key(s))).collect();
                w.append_batch(bodies.iter().map(|(p, k)| Entry::new(p).key(k))).unwrap();
                seq += 3;
            } else {
                w.append_entry(Entry::new(&payload(seq)).key(&key(seq))).unwrap();
                seq += 1;
            }
        }
        w.sync().unwrap();
        drop(w);
        drop(log);
        dir
    })
    .path()
}

#[derive(Arbitrary, Debug)]
enum Damage {
    Flip { file: u8, offset: u32, bit: u8 },
    Write { file: u8, offset: u32, bytes: Vec<u8> },
    Zero { file: u8, offset: u32, len: u16 },
    Truncate { file: u8, len: u32 },
    Extend { file: u8, bytes: Vec<u8> },
    Remove { file: u8 },
    Replace { from: u8, to: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    damage: Vec<Damage>,
    strict: bool,
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

fn apply(dir: &Path, d: &Damage) {
    let files = segments(dir);
    if files.is_empty() {
        return;
    }
    let pick = |i: &u8| files[*i as usize % files.len()].clone();
    let edit = |path: &Path, f: &mut dyn FnMut(&mut Vec<u8>)| {
        let mut bytes = std::fs::read(path).unwrap();
        f(&mut bytes);
        std::fs::write(path, bytes).unwrap();
    };
    match d {
        Damage::Flip { file, offset, bit } => edit(&pick(file), &mut |b| {
            if !b.is_empty() {
                let i = *offset as usize % b.len();
                b[i] ^= 1 << (bit % 8);
            }
        }),
        Damage::Write { file, offset, bytes } => edit(&pick(file), &mut |b| {
            if !b.is_empty() {
                let at = *offset as usize % b.len();
                let n = bytes.len().min(b.len() - at).min(64);
                b[at..at + n].copy_from_slice(&bytes[..n]);
            }
        }),
        Damage::Zero { file, offset, len } => edit(&pick(file), &mut |b| {
            if !b.is_empty() {
                let at = *offset as usize % b.len();
                let end = (at + *len as usize).min(b.len());
                b[at..end].fill(0);
            }
        }),
        Damage::Truncate { file, len } => edit(&pick(file), &mut |b| {
            let n = *len as usize % (b.len() + 1);
            b.truncate(n);
        }),
        Damage::Extend { file, bytes } => edit(&pick(file), &mut |b| b.extend_from_slice(&bytes[..bytes.len().min(256)])),
        Damage::Remove { file } => std::fs::remove_file(pick(file)).unwrap(),
        Damage::Replace { from, to } => {
            let bytes = std::fs::read(pick(from)).unwrap();
            std::fs::write(pick(to), bytes).unwrap();
        }
    }
}

/// Reads every record a snapshot yields: each one must be exactly what was
/// written for its seq, in order; stops at the first (typed) error. Returns
/// the seq after the last good record.
fn check(log: &Log, appended: Option<u64>) -> (u64, u64) {
    let expected = |seq: u64| -> (Vec<u8>, Vec<u8>) {
        if Some(seq) == appended {
            (APPENDED.to_vec(), Vec::new())
        } else {
            (payload(seq), key(seq))
        }
    };
    let snap = log.snapshot();
    let first = snap.first_seq().unwrap_or(snap.next_seq());
    let mut next = first;
    for r in snap.iter() {
        let Ok(r) = r else { break };
        assert_eq!(r.seq(), next, "records out of order");
        assert!(next < RECORDS || Some(next) == appended, "a record past everything written (seq {next})");
        let (p, k) = expected(next);
        assert_eq!(r.payload(), p.as_slice(), "invented payload for seq {next}");
        assert_eq!(r.key().unwrap_or(b""), k.as_slice(), "invented key for seq {next}");
        next += 1;
    }
    for seq in [first, next.saturating_sub(1), first + (next - first) / 2] {
        if let Ok(Some(r)) = snap.get(seq) {
            assert_eq!(r.payload(), expected(seq).0.as_slice(), "get({seq}) invented a record");
        }
    }
    if let Some(Ok(r)) = snap.iter_rev().next() {
        assert!(r.payload() == expected(r.seq()).0.as_slice(), "iter_rev invented a record");
    }
    (first, next)
}

/// A scratch directory, on tmpfs when there is one (fsync is free there,
/// which keeps thousands of opens a second possible).
fn scratch() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fuzz_target!(|input: Input| {
    if input.damage.len() > 8 {
        return;
    }
    let dir = scratch();
    for f in std::fs::read_dir(template()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    for d in &input.damage {
        apply(dir.path(), d);
    }
    let Ok(log) = Log::open(dir.path(), opts(input.strict)) else { return };
    let (first, good) = check(&log, None);
    // A log that opened was left consistent: it takes an append and reopens
    // with everything that was readable still readable.
    let mut w = log.writer().unwrap();
    let appended = w.append(APPENDED).and_then(|seq| w.sync().map(|_| seq)).ok();
    drop(w);
    drop(log);
    let log = Log::open(dir.path(), opts(input.strict)).unwrap_or_else(|e| panic!("reopen after a successful open failed: {e}"));
    let (first_again, good_again) = check(&log, appended);
    assert_eq!(first_again, first, "reopen moved the start of the log");
    assert!(good_again >= good, "reopen lost readable records: {good} before, {good_again} after");
    if appended == Some(good) {
        // Everything before the append was readable: so is the append.
        assert_eq!(good_again, good + 1, "the record appended after recovery is not readable");
    }
});
