//! Opening a log directory whose segment files were damaged arbitrarily
//! (bit flips, overwritten or zeroed ranges, truncation, garbage appended,
//! files removed or replaced by others): the open is a typed error or a log
//! whose every readable record is exactly what was written for its seq (a
//! valid prefix, never an invented record), readers stop with a typed error
//! at damage, and a log that opened accepts an append and reopens.
//!
//! And: `verify_dir` reports OK only if the read-write open then keeps every
//! frame byte-identical (it opens, discards nothing, removes or moves
//! nothing, and every byte that held data is still there).
//!
//! Inputs starting with `case:` pick one named damage (the seeds in
//! `corpus/open_damaged/case-*`), so each known bad case stays covered.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use varvelog::format::{decode_footer_full, encode_footer, IndexEntry, HEADER_BYTES, LIVE_COMMITTED_OFFSET};
use varvelog::{verify_dir, Entry, Log, Options, RecoveryMode};

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

/// Named damages found by hand, each a seed `case:N`.
fn named_case(dir: &Path, n: u8) {
    let files = segments(dir);
    let (last, sealed) = (files[files.len() - 1].clone(), files[files.len() - 2].clone());
    let edit = |path: &Path, f: &mut dyn FnMut(&mut Vec<u8>)| {
        let mut bytes = std::fs::read(path).unwrap();
        f(&mut bytes);
        std::fs::write(path, bytes).unwrap();
    };
    let frames_end = |b: &[u8]| b.iter().rposition(|&x| x != 0).map_or(HEADER_BYTES as usize, |p| p + 1);
    match n % 11 {
        // Blank header page of the last sealed segment.
        0 => edit(&sealed, &mut |b| b[..HEADER_BYTES as usize].fill(0)),
        // The last sealed segment emptied.
        1 => std::fs::write(&sealed, b"").unwrap(),
        // A 7-byte file named like a segment, alone.
        2 => {
            files.iter().for_each(|f| std::fs::remove_file(f).unwrap());
            std::fs::write(dir.join("00000000000000000000.seg"), b"VARVSEG").unwrap();
        }
        // A non-zero byte after the first zero-length frame of the last segment.
        3 => edit(&last, &mut |b| {
            let at = frames_end(b) + 100;
            b[at] = 1;
        }),
        // A zeroed length field in the middle of the last segment.
        4 => edit(&last, &mut |b| {
            let at = ((HEADER_BYTES as usize + frames_end(b)) / 2) & !7;
            b[at..at + 4].fill(0);
        }),
        // The last segment cut in the middle of its frames.
        5 => edit(&last, &mut |b| {
            let at = (HEADER_BYTES as usize + frames_end(b)) / 2 + 3;
            b.truncate(at);
        }),
        // Garbage at the very end of the active segment's file.
        6 => edit(&last, &mut |b| {
            let n = b.len();
            b[n - 8..].copy_from_slice(b"garbage!");
        }),
        // A middle segment missing.
        7 => std::fs::remove_file(&files[1]).unwrap(),
        // A valid log plus a later garbage segment file.
        8 => std::fs::write(dir.join("00000000000099999999.seg"), vec![0x33; 9000]).unwrap(),
        // A forged footer index, checksums recomputed.
        9 => edit(&files[0], &mut |b| {
            let Ok(decoded) = decode_footer_full(b) else { return };
            let (footer, index, keys, prev) = (*decoded.footer, decoded.index, decoded.keys.to_vec(), decoded.trailer.prev_digest);
            let mut index: Vec<IndexEntry> = index.to_vec();
            if let Some(e) = index.last_mut() {
                e.max_ts = (e.max_ts.get() + 1).into();
            }
            let at = footer.frames_end.get() as usize;
            b.truncate(at);
            b.extend_from_slice(&encode_footer(&footer, &index, &keys, &[], prev));
        }),
        // A 2,542-byte garbage file as the only segment.
        _ => {
            files.iter().for_each(|f| std::fs::remove_file(f).unwrap());
            std::fs::write(dir.join("00000000000000000000.seg"), vec![0x41; 2542]).unwrap();
        }
    }
}

/// Every segment file and its bytes.
fn image(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    segments(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// After `verify_dir` said OK and the log was opened: every byte of every
/// segment up to its last non-zero byte is unchanged (but for the live
/// committed word, which is not data), and nothing was discarded.
fn assert_kept(before: &[(PathBuf, Vec<u8>)], log: &Log) {
    let r = log.recovery_report();
    assert!(r.bytes_discarded == 0 && r.removed.is_empty() && r.moved_aside.is_empty(), "verify said OK, open discarded: {r:?}");
    let live = LIVE_COMMITTED_OFFSET as usize..LIVE_COMMITTED_OFFSET as usize + 8;
    for (path, bytes) in before {
        let after = std::fs::read(path).unwrap_or_else(|e| panic!("verify said OK, open lost {}: {e}", path.display()));
        let data = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        assert!(after.len() >= data, "verify said OK, open cut {}", path.display());
        let same = (0..data).all(|i| live.contains(&i) || after[i] == bytes[i]);
        assert!(same, "verify said OK, open changed bytes of {}", path.display());
    }
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

fuzz_target!(|data: &[u8]| {
    let (case, input) = match data.strip_prefix(b"case:") {
        Some(rest) => (rest.first().copied(), Input { damage: Vec::new(), strict: rest.get(1).is_some_and(|b| b & 1 == 1) }),
        None => match Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) {
            Ok(input) => (None, input),
            Err(_) => return,
        },
    };
    if input.damage.len() > 8 {
        return;
    }
    let dir = scratch();
    for f in std::fs::read_dir(template()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    if let Some(n) = case {
        named_case(dir.path(), n);
    }
    for d in &input.damage {
        apply(dir.path(), d);
    }
    let verified_ok = verify_dir(dir.path()).is_ok_and(|r| r.is_ok());
    let before = image(dir.path());
    let opened = Log::open(dir.path(), opts(input.strict));
    if verified_ok {
        let log = opened.as_ref().unwrap_or_else(|e| panic!("verify said OK, open failed: {e}"));
        assert_kept(&before, log);
    }
    let Ok(log) = opened else { return };
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
