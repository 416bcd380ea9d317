//! The `varve` binary on real logs: stat, dump, get, kv, tail, consumers,
//! verify, export, import and compact; exit codes; one-line errors on bad
//! input; and that inspection never modifies a log.
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use varvelog::format::FORMAT_VERSION;
use varvelog::{Entry, Log, Options, ReadOnlyLog};

mod common;
use common::{fingerprint, on_tmpfs};

const SEGMENT: u64 = 64 * 1024;
const T0: u64 = 1_700_000_000_000_000;

fn varve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varve")).args(args).env_remove("RUST_BACKTRACE").output().expect("run varve")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Payload `i`: text for most records, invalid UTF-8 for every 7th.
fn payload(i: u64) -> Vec<u8> {
    if i % 7 == 3 {
        vec![0xff, 0xfe, (i % 256) as u8, 0, b'\n']
    } else {
        format!("event {i} \"quoted\" \\ tab\t{}", "z".repeat((i % 40) as usize)).into_bytes()
    }
}

/// A closed log of `n` records with keys, timestamps `T0 + i` seconds,
/// tombstones and binary payloads, across several 64 KiB segments.
fn make_log(dir: &Path, n: u64) {
    let log = Log::open(dir, Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..n {
        let p = payload(i);
        let key = format!("user-{}", i % 5);
        let mut e = Entry::new(&p).timestamp(T0 + i * 1_000_000);
        if i % 3 == 0 {
            e = e.key(key.as_bytes());
        }
        if i % 11 == 5 {
            e = e.tombstone();
        }
        w.append_entry(e).unwrap();
    }
    w.sync().unwrap();
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "seg")).collect();
    v.sort();
    v
}

/// Asserts a failure message: exactly one line on stderr, naming `needle`,
/// no panic and no backtrace.
fn assert_one_line_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit status; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line on stderr, got: {err:?}");
    assert!(err.starts_with("varve: "), "{err}");
    assert!(err.contains(needle), "stderr {err:?} should mention {needle:?}");
    assert!(!err.contains("panicked") && !err.contains("backtrace") && !err.contains("internal error"), "{err}");
}

#[test]
fn stat_reports_segments_records_seqs_times_and_version() {
    // Goal: stat's numbers are the log's. Method: a 3000-record log over
    // several segments; compare text and JSON output with what was written.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let o = varve(&["stat", p(dir.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&format!("format version  {FORMAT_VERSION}")), "{text}");
    assert!(text.contains("records         3000 (seq 0 ..= 2999)"), "{text}");
    assert!(text.contains("first           seq 0 at 2023-11-14T22:13:20.000000Z"), "{text}");
    assert!(text.contains("last            seq 2999 at 2023-11-14T23:03:19.000000Z"), "{text}");

    let o = varve(&["stat", "--json", p(dir.path())]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stat --json is JSON");
    let segments = segment_files(dir.path()).len() as u64;
    assert!(segments >= 4, "the log must span several segments");
    assert_eq!(v["segments"], segments);
    assert_eq!(v["sealed_segments"], segments - 1);
    assert_eq!(v["records"], 3000);
    assert_eq!((v["first_seq"].as_u64(), v["last_seq"].as_u64()), (Some(0), Some(2999)));
    assert_eq!(v["first_timestamp"], T0);
    assert_eq!(v["format_version"], FORMAT_VERSION);
    // Spare files the writer left are counted on disk, as their sizes say.
    let spares: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".prealloc"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert!(!spares.is_empty(), "a closed log keeps its writer's spares");
    assert_eq!(v["spare_files"], spares.len() as u64);
    assert_eq!(v["spare_bytes"], spares.iter().sum::<u64>());
    // Sealed segments are durable; make_log synced every record, so the
    // kernel has written all of them to disk (where it can tell).
    let sealed: u64 =
        v["segment_files"].as_array().unwrap().iter().filter(|s| s["sealed"] == true).map(|s| s["records"].as_u64().unwrap()).sum();
    assert!(sealed > 0 && sealed < 3000, "make_log leaves sealed segments and a live one: {v}");
    assert_eq!((v["durable_next"].as_u64(), v["durable_seq"].as_u64()), (Some(sealed), Some(sealed - 1)));
    assert!(text.contains(&format!("durable seq     {} (sealed segments;", sealed - 1)), "{text}");
    if v["written_back_known"] == true && !on_tmpfs(dir.path()) {
        assert_eq!(v["written_back_seq"].as_u64(), Some(2999));
        assert!(text.contains("written back    2999 (every record is written to disk)"), "{text}");
    } else {
        eprintln!("SKIPPED the written-back check: this kernel or file system cannot tell: {text}");
    }
    let on_disk: u64 = segment_files(dir.path()).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert_eq!(v["file_bytes"], on_disk);
    // "on disk" counts the spares too, and the text says how many.
    assert_eq!(v["disk_bytes"], on_disk + spares.iter().sum::<u64>());
    assert!(text.contains(&format!("in {} spare file", spares.len())), "{text}");
}

#[test]
fn dump_selects_by_seq_time_and_limit_in_each_format() {
    // Goal: --from, --since and --limit pick exactly the records asked for,
    // and each format shows them faithfully. Method: compare with the
    // payloads written.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 500);
    let o = varve(&["dump", p(dir.path()), "--from", "100", "--limit", "3"]);
    assert!(o.status.success());
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("100 2023-11-14T22:15:00.000000Z len="), "{}", lines[0]);
    assert!(lines[1].starts_with("101 "), "{}", lines[1]);
    assert!(lines[1].contains("0xfffe65000a"), "binary payload shown as hex: {}", lines[1]);

    // 2023-11-14T22:16:40Z is T0 + 200 s: record 200.
    let o = varve(&["dump", p(dir.path()), "--since", "2023-11-14T22:16:40Z", "--limit", "2", "--format", "json"]);
    assert!(o.status.success());
    let recs: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0]["seq"].as_u64(), recs[1]["seq"].as_u64()), (Some(200), Some(201)));
    assert_eq!(recs[0]["payload"].as_str().unwrap().as_bytes(), payload(200).as_slice());
    assert_eq!((recs[0]["key"].clone(), recs[1]["key"].clone()), (serde_json::Value::Null, "user-1".into()));
    assert_eq!(recs[0]["timestamp"], T0 + 200 * 1_000_000);

    let o = varve(&["dump", p(dir.path()), "--from", "3", "-n", "1", "--format", "hex"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.starts_with("seq 3 time "), "{text}");
    assert!(text.contains("ff fe 03 00 0a"), "{text}");

    // Past the end: nothing, success.
    let o = varve(&["dump", p(dir.path()), "--from", "10000"]);
    assert!(o.status.success() && o.stdout.is_empty());
}

#[test]
fn export_import_round_trip_preserves_every_field() {
    // Goal: export --jsonl then import --jsonl rebuilds the same records:
    // payloads (UTF-8 and binary), keys, timestamps, tombstones and seqs.
    // Method: export A, import into B, export B; the two exports are equal
    // and B's records equal A's through the library.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    make_log(&a, 1200);
    let export_a = dir.path().join("a.jsonl");
    let o = varve(&["export", "--jsonl", p(&a), "-o", p(&export_a)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&export_a).unwrap();
    assert_eq!(text.lines().count(), 1200);
    let line3: serde_json::Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
    assert_eq!(line3["payload_encoding"], "base64", "invalid UTF-8 is exported as base64");
    let line1: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(line1["payload_encoding"], "utf8");

    let o = varve(&["import", "--jsonl", p(&b), "-i", p(&export_a), "--segment-bytes", "64KiB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 1200 records as seq 0 ..= 1199"), "{}", stderr(&o));
    let o = varve(&["export", "--jsonl", p(&b)]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), text, "export of the imported log differs");

    let (la, lb) = (Log::open_read_only(&a).unwrap(), Log::open_read_only(&b).unwrap());
    let (sa, sb) = (la.snapshot(), lb.snapshot());
    for (ra, rb) in sa.iter().zip(sb.iter()) {
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            (ra.seq(), ra.timestamp(), ra.key(), ra.payload(), ra.is_tombstone()),
            (rb.seq(), rb.timestamp(), rb.key(), rb.payload(), rb.is_tombstone())
        );
    }
    assert_eq!(sb.len(), 1200);
}

#[test]
fn import_stops_at_a_bad_line_naming_it() {
    // Goal: bad import data is a problem (exit 1) naming the line; the
    // records before it are kept.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"payload\":\"ok\"}\n{\"payload\":\"%%%\",\"payload_encoding\":\"base64\"}\n{\"payload\":\"never\"}\n")
        .unwrap();
    let log = dir.path().join("log");
    let o = varve(&["import", "--jsonl", p(&log), "-i", p(&input)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("input line 2") && stderr(&o).contains("base64"), "{}", stderr(&o));
    assert_eq!(Log::open_read_only(&log).unwrap().snapshot().len(), 1);
    assert!(
        stderr(&o).contains("imported 1 record as seq 0 ..= 0 before the error; they stay in the log"),
        "says what it kept, in the singular: {}",
        stderr(&o)
    );
}

#[test]
fn import_of_input_bad_from_its_first_line_creates_no_log() {
    // Goal: importing nothing leaves nothing behind (no new directory with
    // preallocated segments). Method: import one line that is not JSON into
    // a directory that does not exist; exit 1, and the directory is absent.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "not json\n").unwrap();
    let log = dir.path().join("log");
    let o = varve(&["import", "--jsonl", p(&log), "-i", p(&input)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!log.exists(), "a log was created although nothing was imported");
}

#[test]
fn verify_passes_an_intact_log_and_exits_1_on_a_flipped_byte() {
    // Goal: verify's exit status is usable by scripts. Method: verify an
    // intact log (0), flip one payload byte in a sealed segment (1, with
    // the file and offset named), and show the progress bar when asked.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let o = varve(&["verify", p(dir.path()), "--progress"]);
    assert_eq!(o.status.code(), Some(0), "{} {}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("ok: "), "{}", stdout(&o));
    assert!(stderr(&o).contains("verify [") && stderr(&o).contains("100%"), "progress bar: {}", stderr(&o));

    let seg = segment_files(dir.path())[1].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = 4096 + 32 + 2; // inside the first frame's payload
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let o = varve(&["verify", p(dir.path())]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("problem: checksum mismatch in") && out.contains(seg.file_name().unwrap().to_str().unwrap()), "{out}");
    assert!(out.contains("at offset 4096"), "{out}");
    assert_one_line_error(&o, 1, "verify found 1 problem");

    // dump meets the same damage: exit 1, one line.
    let o = varve(&["dump", p(dir.path())]);
    assert_one_line_error(&o, 1, "checksum mismatch");
}

#[test]
fn bad_input_gets_one_line_and_the_documented_exit_status() {
    // Goal: missing directory, not a log, damaged header and wrong format
    // version each give one clear line (no panic, no backtrace); usage
    // errors exit 2, problems in the log exit 1; --help exits 0.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    for cmd in ["stat", "dump", "verify", "tail", "consumers"] {
        assert_one_line_error(&varve(&[cmd, p(&missing)]), 2, "no such directory");
    }
    assert_one_line_error(&varve(&["export", "--jsonl", p(&missing)]), 2, "no such directory");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_one_line_error(&varve(&["stat", p(&empty)]), 2, "not a varvelog log");
    let file = dir.path().join("file");
    std::fs::write(&file, b"hello").unwrap();
    assert_one_line_error(&varve(&["stat", p(&file)]), 2, "not a directory");

    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("00000000000000000000.seg"), vec![7u8; 8192]).unwrap();
    assert_one_line_error(&varve(&["stat", p(&foreign)]), 2, "bad magic in segment header");

    let damaged = dir.path().join("damaged");
    make_log(&damaged, 10);
    let seg = segment_files(&damaged)[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[20] ^= 1; // inside the checksummed header (base seq)
    std::fs::write(&seg, &bytes).unwrap();
    assert_one_line_error(&varve(&["stat", p(&damaged)]), 1, "header checksum mismatch");
    assert_one_line_error(&varve(&["verify", p(&damaged)]), 1, "header checksum mismatch");

    let versioned = dir.path().join("v7");
    make_log(&versioned, 10);
    let seg = segment_files(&versioned)[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8] = 7; // format version
    std::fs::write(&seg, &bytes).unwrap();
    assert_one_line_error(&varve(&["dump", p(&versioned)]), 1, "format version 7");

    let o = varve(&["dump", p(&damaged), "--from", "abc"]);
    assert_eq!(o.status.code(), Some(2));
    let o = varve(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = varve(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Examples:") && stdout(&o).contains("Exit status"), "{}", stdout(&o));
    let o = varve(&["dump", "--help"]);
    assert!(o.status.success() && stdout(&o).contains("--since"));
}

#[test]
fn inspection_commands_never_modify_a_log() {
    // Goal: stat, dump, get, kv, tail, consumers, verify and export change no byte,
    // even on a log that needs recovery (torn tail). Method: fingerprint
    // every file before and after running them all.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 2000);
    let last = segment_files(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, &[0xAB; 24], (end as u64).next_multiple_of(8) + 128).unwrap();
    drop(f);
    let before = fingerprint(dir.path());
    let d = p(dir.path());
    for args in [
        vec!["stat", d, "-s"],
        vec!["stat", "--json", d],
        vec!["dump", d, "--format", "json"],
        vec!["get", d, "user-1"],
        vec!["get", d, "user-1", "--all"],
        vec!["kv", d],
        vec!["tail", d, "-n", "5"],
        vec!["consumers", d],
        vec!["consumers", "--json", d],
        vec!["export", "--jsonl", d],
        vec!["verify", d],
    ] {
        let _ = varve(&args);
        assert_eq!(fingerprint(dir.path()), before, "`varve {}` modified the log", args.join(" "));
    }
}

#[test]
fn tail_follow_prints_records_another_process_appends() {
    // Goal: `varve tail -f` follows a log this (other) process writes, across
    // rotations, and prints every record once, in order. Method: start the
    // tail, then append 2000 records (singles and batches); read its output.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    w.append(b"before the tail started").unwrap();
    let n = 2000u64;
    let limit = (n + 1).to_string();
    let (mut child, out) = spawn_varve(&["tail", "-f", p(dir.path()), "--from", "0", "--limit", &limit, "--format", "json"], true);
    let reader = collect_lines(out);
    let mut i = 1u64;
    while i <= n {
        if i.is_multiple_of(10) {
            let batch: Vec<Vec<u8>> = (i..i + 5).map(payload).collect();
            w.append_batch(batch.iter()).unwrap();
            i += 5;
        } else {
            w.append(&payload(i)).unwrap();
            i += 1;
        }
        if i.is_multiple_of(200) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let status = wait_for_exit(&mut child, Duration::from_secs(30), "varve tail -f did not finish");
    assert!(status.success());
    let lines = reader.join().unwrap();
    assert_eq!(lines.len() as u64, n + 1);
    assert!(log.snapshot().segment_count() >= 3, "the writer must have rotated");
    for (k, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], k as u64);
        if k > 0 && v["payload_encoding"] == "utf8" {
            assert_eq!(v["payload"].as_str().unwrap().as_bytes(), payload(k as u64).as_slice());
        }
    }
}

#[test]
fn verify_and_stat_work_while_a_writer_holds_the_log() {
    // Goal: inspection does not need the lock. Method: this process holds
    // the log open and keeps it unsynced; stat names this process as the
    // writer, verify checks the published view (exit 0), and a flipped byte
    // in a sealed segment is still found (exit 1).
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..3000 {
        w.append(&payload(i)).unwrap();
    }
    let o = varve(&["stat", p(dir.path())]);
    assert!(stdout(&o).contains(&format!("writer          process {} holds the lock", std::process::id())), "{}", stdout(&o));
    let o = varve(&["verify", p(dir.path())]);
    assert_eq!(o.status.code(), Some(0), "{} {}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3000 records") && stdout(&o).contains("log open by a writer"), "{}", stdout(&o));

    // Wait until the first segment is sealed, then damage it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.stats().segments_sealed == 0 {
        assert!(Instant::now() < deadline, "no segment sealed");
        std::thread::sleep(Duration::from_millis(2));
    }
    let seg = segment_files(dir.path())[0].clone();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"X", 4096 + 40).unwrap();
    let o = varve(&["verify", p(dir.path())]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("problem: ") && stdout(&o).contains("00000000000000000000.seg"), "{}", stdout(&o));
    drop(w);
}

#[test]
fn records_missing_between_segments_are_reported_not_hidden() {
    // Goal: a sealed segment cut short in the middle of a closed log is a
    // problem (exit 1, naming the file) for stat, dump, export and verify,
    // never a silently shorter log. Method: truncate the second segment
    // inside its frames.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let second = segment_files(dir.path())[1].clone();
    let f = std::fs::OpenOptions::new().write(true).open(&second).unwrap();
    f.set_len(30_000).unwrap();
    drop(f);
    let name = second.file_name().unwrap().to_str().unwrap().to_string();
    for args in [vec!["stat", p(dir.path())], vec!["dump", p(dir.path())], vec!["export", "--jsonl", p(dir.path())]] {
        let o = varve(&args);
        assert_one_line_error(&o, 1, &name);
    }
    let o = varve(&["verify", p(dir.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&name), "{}", stdout(&o));
}

#[test]
fn verify_without_a_lock_file_checks_the_files_and_claims_no_writer() {
    // Goal: a log whose LOCK file is missing (copied, or removed by hand)
    // has no writer; verify checks its files and does not say it is "open by
    // a writer", nor creates anything. Method: remove LOCK from a closed
    // log, run verify: exit 0, no writer wording, directory unchanged.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 500);
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    let before = fingerprint(dir.path());
    let o = varve(&["verify", p(dir.path())]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("writer"), "{}", stdout(&o));
    assert_eq!(fingerprint(dir.path()), before, "verify modified the log");
}

#[test]
fn stat_on_a_directory_whose_only_segment_is_garbage_fails_naming_it() {
    // Goal: a short garbage `.seg` is never shown as an empty log. Method:
    // a 2,542-byte garbage file named like the first segment (with and
    // without a LOCK file): stat and verify fail naming it, with the exit
    // status of a file that is not a segment (2, as for a foreign file).
    for with_lock in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000000000000000.seg"), vec![0x41; 2542]).unwrap();
        if with_lock {
            std::fs::write(dir.path().join("LOCK"), b"").unwrap();
        }
        let o = varve(&["stat", p(dir.path())]);
        assert_one_line_error(&o, 2, "00000000000000000000.seg");
        assert!(!stdout(&o).contains("segments        0"), "{}", stdout(&o));
        let o = varve(&["verify", p(dir.path())]);
        assert_one_line_error(&o, 2, "00000000000000000000.seg");
    }
}

#[test]
fn stat_and_dump_report_a_missing_middle_segment_and_exit_1() {
    // Goal: with a middle segment deleted, stat and dump (from a seq or a
    // time before the gap) report the missing records and exit 1 instead of
    // printing a log that looks whole. Method: delete the second segment of
    // a closed log; run stat, dump --from and dump --since.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let files = segment_files(dir.path());
    let missing = files[1].file_name().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(&files[1]).unwrap();
    for args in [vec!["stat", p(dir.path())], vec!["dump", p(dir.path()), "--from", "1"]] {
        let o = varve(&args);
        assert_one_line_error(&o, 1, &missing);
    }
    let o = varve(&["dump", p(dir.path()), "--since", "2023-11-14T22:13:21Z"]);
    assert_eq!(o.status.code(), Some(1), "dump --since: {}", stderr(&o));
    assert!(stderr(&o).contains(&missing), "{}", stderr(&o));
}

#[test]
fn tail_follow_exits_when_its_reader_goes_away_on_an_idle_log() {
    // Goal: `varve tail -f DIR | head -2` ends once `head` has exited, even
    // though no new record arrives to be written into the closed pipe.
    // Method: a log of 3 records; tail -f prints them; read 2 lines, close
    // the pipe; the process must exit (successfully) within 5 s.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3);
    let (mut child, mut out) = spawn_varve(&["tail", "-f", p(dir.path()), "-n", "3"], false);
    read_lines(&mut out, 2);
    drop(out);
    let status = wait_for_exit(&mut child, Duration::from_secs(5), "varve tail -f kept running after its reader went away");
    assert!(status.success(), "{status:?}");
}

/// Starts `varve` with `args`, its standard output piped to the test (and
/// standard error too if `keep_stderr`, else discarded).
fn spawn_varve(args: &[&str], keep_stderr: bool) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_varve"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(if keep_stderr { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// Reads `n` lines of `out`; fails if it ends first.
fn read_lines(out: &mut impl BufRead, n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "the output ended after {k} of {n} lines");
            line
        })
        .collect()
}

/// Collects every line of `out` on a thread, until it ends.
fn collect_lines(out: BufReader<std::process::ChildStdout>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || out.lines().map(|l| l.unwrap()).collect())
}

/// Waits up to `limit` for `child` to exit; kills it and fails with `what`
/// if it does not.
fn wait_for_exit(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_size_flag_takes_the_same_size_forms() {
    // Goal: one size parser for every size flag: `import --segment-bytes
    // 1MiB` makes 1 MiB segments, and a bad size is a usage error (exit 2)
    // for import and bench alike. Method: import 3 records with 1MiB,
    // compare the segment file's size with the 64 KiB one of make_log's
    // kind; then give both commands garbage.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"payload\":\"a\"}\n{\"payload\":\"b\"}\n{\"payload\":\"c\"}\n").unwrap();
    let log = dir.path().join("log");
    let o = varve(&["import", "--jsonl", p(&log), "-i", p(&input), "--segment-bytes", "1MiB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 3 records as seq 0 ..= 2"), "{}", stderr(&o));
    let len = std::fs::metadata(&segment_files(&log)[0]).unwrap().len();
    assert!(((1 << 20)..(1 << 20) + (1 << 16)).contains(&len), "a 1MiB segment file is {len} bytes");
    for args in [
        vec!["import", "--jsonl", p(&log), "-i", p(&input), "--segment-bytes", "12XB"],
        vec!["bench", "--segment-bytes", "lots"],
        vec!["bench", "--payload-bytes", "1 zillion"],
    ] {
        let o = varve(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("not a size"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn dash_f_means_follow_and_nothing_else() {
    // Goal: `-f` is tail's --follow, and no other command takes it (no
    // `-f` meaning "file" or "format" somewhere). Method: tail's help
    // pairs -f with --follow; dump, export, stat and verify refuse -f.
    let o = varve(&["tail", "--help"]);
    assert!(stdout(&o).contains("-f, --follow"), "{}", stdout(&o));
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 10);
    for cmd in [vec!["dump"], vec!["export", "--jsonl"], vec!["stat"], vec!["verify"]] {
        let mut args = cmd.clone();
        args.extend(["-f", p(dir.path())]);
        let o = varve(&args);
        assert_eq!(o.status.code(), Some(2), "{cmd:?} -f: {}", stderr(&o));
    }
}

#[test]
fn import_that_imports_nothing_leaves_no_log_even_after_opening_one() {
    // Goal: when no record gets in, import leaves the target as it found
    // it, also when the first record is refused by the engine (after the
    // log was opened). Method: a payload bigger than a 64 KiB segment holds,
    // into a missing directory and into an existing empty one.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, format!("{{\"payload\":\"{}\"}}\n", "x".repeat(100_000))).unwrap();
    let missing = dir.path().join("new");
    let o = varve(&["import", "--jsonl", p(&missing), "-i", p(&input), "--segment-bytes", "64KiB"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 0 records") && stderr(&o).contains("input line 1"), "{}", stderr(&o));
    assert!(!missing.exists(), "import left a log with no records behind");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = varve(&["import", "--jsonl", p(&empty), "-i", p(&input), "--segment-bytes", "64KiB"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "import left files in the empty directory");
}

#[test]
fn empty_keys_export_as_no_key_and_key_encoding_goes_with_a_key() {
    // Goal: export's fields are as docs/cli.md lists them: `key` null and
    // no `key_encoding` for a record without a key, and an empty key is no
    // key (the engine stores both alike). Method: import one record with
    // `"key":""` and one with a key, export to a file, read the objects.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"payload\":\"a\",\"key\":\"\"}\n{\"payload\":\"b\",\"key\":\"k\"}\n").unwrap();
    let log = dir.path().join("log");
    assert!(varve(&["import", "--jsonl", p(&log), "-i", p(&input)]).status.success());
    let out = dir.path().join("out.jsonl");
    let o = varve(&["export", "--jsonl", p(&log), "-o", p(&out)]);
    assert!(stderr(&o).contains("exported 2 records"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // The field names in the order they appear on each line.
    let keys = |line: &str| {
        let mut names: Vec<(usize, String)> = serde_json::from_str::<serde_json::Value>(line)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        names.sort();
        names.into_iter().map(|(_, k)| k).collect::<Vec<_>>()
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(keys(lines[0]), ["seq", "timestamp", "time", "key", "payload", "payload_encoding", "tombstone"]);
    assert!(rows[0]["key"].is_null());
    assert_eq!(keys(lines[1]), ["seq", "timestamp", "time", "key", "key_encoding", "payload", "payload_encoding", "tombstone"]);
    assert_eq!((rows[1]["key"].as_str(), rows[1]["key_encoding"].as_str()), (Some("k"), Some("utf8")));
    let o = varve(&["export", "--jsonl", p(&log), "-o", p(&out), "-n", "1"]);
    assert!(stderr(&o).contains("exported 1 record\n"), "{}", stderr(&o));
}

#[test]
fn stat_counts_sealed_records_durable_and_tells_what_is_written_back() {
    // Goal: stat never claims a record durable that no sync covered: only
    // sealed segments count as durable (sealing syncs them), and for the
    // live segment it says whether the kernel has written the records to
    // disk, which follows the writer's syncs. Method: import 3 records
    // (import syncs), stat; then this process appends 5 more without
    // syncing (writer held), stat; then syncs, stat. Where the kernel
    // cannot tell (no cachestat, or tmpfs) the written-back line says so.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"payload\":\"a\"}\n{\"payload\":\"b\"}\n{\"payload\":\"c\"}\n").unwrap();
    let log_dir = dir.path().join("log");
    assert!(varve(&["import", "--jsonl", p(&log_dir), "-i", p(&input)]).status.success());
    let text = stdout(&varve(&["stat", p(&log_dir)]));
    assert!(text.contains("durable seq     none (sealed segments; the live segment's syncs are known to its writer)"), "{text}");
    if text.contains("cannot tell") || on_tmpfs(dir.path()) {
        eprintln!("SKIPPED the written-back checks: this kernel or file system cannot tell: {text}");
        return;
    }
    assert!(text.contains("written back    2 (every record is written to disk)"), "{text}");
    let log = Log::open(&log_dir, Options::new()).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..5 {
        w.append(&payload(i)).unwrap();
    }
    let text = stdout(&varve(&["stat", p(&log_dir)]));
    assert!(text.contains("records         8 (seq 0 ..= 7)"), "{text}");
    assert!(text.contains("durable seq     none (sealed segments;"), "{text}");
    assert!(text.contains("written back    none (later records are not written to disk yet)"), "{text}");
    w.sync().unwrap();
    let text = stdout(&varve(&["stat", p(&log_dir)]));
    assert!(text.contains("durable seq     none (sealed segments;"), "{text}");
    assert!(text.contains("written back    7 (every record is written to disk)"), "{text}");
}

#[test]
fn verify_summary_means_the_same_on_a_live_and_a_closed_log() {
    // Goal: verify's "checked" figures (records, their bytes, segments) do
    // not change with who has the log open. Method: verify while this
    // process holds the writer (synced, idle), then after closing it.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..2000 {
        w.append(&payload(i)).unwrap();
    }
    w.sync().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.stats().segments_sealed + 1 < segment_files(dir.path()).len() as u64 {
        assert!(Instant::now() < deadline, "sealing did not catch up");
        std::thread::sleep(Duration::from_millis(5));
    }
    let figures = |out: &str| out.split(" checked").next().unwrap().to_string();
    let live = stdout(&varve(&["verify", p(dir.path())]));
    assert!(live.contains("log open by a writer"), "{live}");
    drop(w);
    drop(log);
    let closed = stdout(&varve(&["verify", p(dir.path())]));
    assert!(!closed.contains("writer"), "{closed}");
    assert!(figures(&live).starts_with("ok: 2000 records ("), "{live}");
    assert_eq!(figures(&live), figures(&closed), "live: {live} closed: {closed}");
}

#[test]
fn bench_output_fits_100_columns_and_redirected_progress_has_no_carriage_returns() {
    // Goal: `varve bench > report.txt 2> log.txt` gives a report no wider
    // than a 100-column terminal, a log without progress-bar redraws (`\r`),
    // and, with --plot, an SVG. Method: a tiny bench with stdout and stderr
    // piped (not terminals).
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("bench.svg");
    let o = varve(&[
        "bench",
        "--records",
        "2000",
        "--latency-records",
        "2000",
        "--rounds",
        "1",
        "--producer-records",
        "1000",
        "--producer-threads",
        "1",
        "--tail-records",
        "200",
        "--tail-rate",
        "100000",
        "--sync-seconds",
        "0.01",
        "--segment-bytes",
        "64KiB",
        "--dir",
        p(dir.path()),
        "--plot",
        p(&svg),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Throughput") && out.contains("Latency"), "{out}");
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line:?}", line.chars().count());
    }
    assert!(!o.stderr.contains(&b'\r'), "progress redraws in redirected stderr: {:?}", stderr(&o));
    assert!(stderr(&o).contains("[ 1/12]"), "phases are still announced: {}", stderr(&o));
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("Latency by percentile"), "not the plot");
}

/// make_log's records with `key`, oldest first: (seq, is a tombstone).
fn records_with_key(n: u64, key: &str) -> Vec<(u64, bool)> {
    (0..n).filter(|i| i % 3 == 0 && format!("user-{}", i % 5) == key).map(|i| (i, i % 11 == 5)).collect()
}

/// Lines of JSON output.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// A payload from a JSON record object, decoded.
fn json_payload(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    let text = v["payload"].as_str().unwrap();
    match v["payload_encoding"].as_str().unwrap() {
        "base64" => base64::engine::general_purpose::STANDARD.decode(text).unwrap(),
        _ => text.as_bytes().to_vec(),
    }
}

#[test]
fn get_prints_the_newest_record_of_a_key_and_exits_1_without_a_live_one() {
    // Goal: `get` prints the newest record with the key (whether it is in a
    // sealed segment or the live one), in each format and for each way of
    // writing the key; a key no record has, or whose newest record is a
    // tombstone, exits 1 with one line. Method: make_log's keys, whose
    // newest records are known from its formula; user-2's newest is a
    // tombstone, user-0's has a binary payload.
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    make_log(dir.path(), n);
    let d = p(dir.path());
    for k in 0..5 {
        let key = format!("user-{k}");
        let &(newest, tombstone) = records_with_key(n, &key).last().unwrap();
        let o = varve(&["get", d, &key, "--format", "json"]);
        if tombstone {
            assert_one_line_error(&o, 1, &format!("no live record with key \"{key}\""));
            assert!(stderr(&o).contains(&format!("its newest record, seq {newest}, is a tombstone")), "{}", stderr(&o));
            assert!(o.stdout.is_empty());
            continue;
        }
        assert!(o.status.success(), "{key}: {}", stderr(&o));
        let recs = json_lines(&o);
        assert_eq!(recs.len(), 1, "{key}: {}", stdout(&o));
        assert_eq!((recs[0]["seq"].as_u64(), recs[0]["key"].as_str()), (Some(newest), Some(key.as_str())));
        assert_eq!(json_payload(&recs[0]), payload(newest), "{key}");
    }
    assert!(records_with_key(n, "user-2").last().unwrap().1, "the test needs a key whose newest record is a tombstone");

    // Text: the documented line, binary payload as hex.
    let o = varve(&["get", d, "user-0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    assert!(line.starts_with("2985 ") && line.contains(" key=\"user-0\" len=5 0xfffea9000a"), "{line}");
    assert_eq!(line.lines().count(), 1);
    // The same key written as hex (with and without 0x) and as base64.
    for args in
        [["--key-encoding", "hex", "757365722d30"], ["--key-encoding", "hex", "0x757365722d30"], ["--key-encoding", "base64", "dXNlci0w"]]
    {
        let o = varve(&["get", d, args[2], args[0], args[1]]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), line, "{args:?}");
    }

    assert_one_line_error(&varve(&["get", d, "nobody"]), 1, "no live record with key \"nobody\"");
    assert_one_line_error(&varve(&["get", d, ""]), 2, "the key is empty");
    assert_one_line_error(&varve(&["get", d, "xyz", "--key-encoding", "hex"]), 2, "not hex");
    assert_one_line_error(&varve(&["get", p(&dir.path().join("missing")), "user-0"]), 2, "no such directory");
}

#[test]
fn get_all_lists_every_version_newest_first_with_tombstones_marked() {
    // Goal: `get --all` prints every record with the key, newest first,
    // tombstones included and marked; `--oldest-first` reverses it; a key
    // whose newest record is a tombstone still has a history (exit 0).
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    make_log(dir.path(), n);
    let d = p(dir.path());
    for key in ["user-1", "user-2"] {
        let mut expected = records_with_key(n, key);
        assert!(expected.iter().any(|r| r.1), "{key} has tombstones");
        expected.reverse();
        let o = varve(&["get", d, key, "--all", "--format", "json"]);
        assert!(o.status.success(), "{key}: {}", stderr(&o));
        let got: Vec<(u64, bool)> =
            json_lines(&o).iter().map(|v| (v["seq"].as_u64().unwrap(), v["tombstone"].as_bool().unwrap())).collect();
        assert_eq!(got, expected, "{key}: newest first");
        let o = varve(&["get", d, key, "--all", "--oldest-first", "--format", "json"]);
        assert!(o.status.success());
        let got: Vec<(u64, bool)> =
            json_lines(&o).iter().map(|v| (v["seq"].as_u64().unwrap(), v["tombstone"].as_bool().unwrap())).collect();
        expected.reverse();
        assert_eq!(got, expected, "{key}: oldest first");
    }
    // Text marks tombstones as dump does.
    let o = varve(&["get", d, "user-1", "--all"]);
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    let tombstones: Vec<u64> =
        lines.iter().filter(|l| l.contains(" tombstone ")).map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
    let expected: Vec<u64> = records_with_key(n, "user-1").iter().rev().filter(|r| r.1).map(|r| r.0).collect();
    assert_eq!(tombstones, expected);

    assert_one_line_error(&varve(&["get", d, "nobody", "--all"]), 1, "no record with key \"nobody\"");
    let o = varve(&["get", d, "user-1", "--oldest-first"]);
    assert_eq!(o.status.code(), Some(2), "--oldest-first needs --all: {}", stderr(&o));
}

#[test]
fn kv_lists_exactly_the_newest_live_record_of_each_key() {
    // Goal: `kv` prints the newest record of every key whose newest record
    // is not a tombstone, in seq order, and nothing else (no replaced
    // records, no records without a key); --limit cuts it short.
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    make_log(dir.path(), n);
    let d = p(dir.path());
    let mut expected: Vec<(u64, String)> = (0..5)
        .map(|k| format!("user-{k}"))
        .filter_map(|key| {
            let &(seq, tombstone) = records_with_key(n, &key).last().unwrap();
            (!tombstone).then_some((seq, key))
        })
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 4, "user-2 is deleted");
    let o = varve(&["kv", d, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = json_lines(&o);
    let got: Vec<(u64, String)> = recs.iter().map(|v| (v["seq"].as_u64().unwrap(), v["key"].as_str().unwrap().to_string())).collect();
    assert_eq!(got, expected);
    for v in &recs {
        assert_eq!(json_payload(v), payload(v["seq"].as_u64().unwrap()));
        assert_eq!(v["tombstone"], false);
    }
    let o = varve(&["kv", d, "-n", "2"]);
    assert!(o.status.success());
    let seqs: Vec<u64> = stdout(&o).lines().map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(seqs, [expected[0].0, expected[1].0]);
    assert_one_line_error(&varve(&["kv", p(&dir.path().join("missing"))]), 2, "no such directory");
}

#[test]
fn get_and_kv_agree_with_the_writer_while_it_appends() {
    // Goal: `get` and `kv` see what a writer in another process has just
    // appended (newer values and tombstones in its live segment, not yet
    // sealed or synced) exactly as that writer's own lookups do. Method:
    // this process writes keys across several segments, replacing and
    // deleting some in the live segment, and compares varve's answers with
    // `get_key` and `kv` on its own snapshot.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..3000u64 {
        let key = format!("k{}", i % 40);
        w.append_entry(Entry::new(format!("v{i}").as_bytes()).key(key.as_bytes())).unwrap();
    }
    // In the live segment: a newer value for k1, tombstones for k2 and k3,
    // a key only the live segment has.
    w.append_entry(Entry::new(b"newest").key(b"k1")).unwrap();
    w.append_entry(Entry::new(b"").key(b"k2").tombstone()).unwrap();
    w.append_entry(Entry::new(b"").key(b"k3").tombstone()).unwrap();
    w.append_entry(Entry::new(b"fresh").key(b"only-live")).unwrap();
    let snap = log.snapshot();
    assert!(snap.segment_count() >= 3);
    let d = p(dir.path());
    for key in (0..40).map(|k| format!("k{k}")).chain(["only-live".to_string(), "absent".to_string()]) {
        let o = varve(&["get", d, &key, "--format", "json"]);
        match snap.get_key(key.as_bytes()).unwrap() {
            Some(r) => {
                assert!(o.status.success(), "{key}: {}", stderr(&o));
                let v = &json_lines(&o)[0];
                assert_eq!((v["seq"].as_u64(), json_payload(v)), (Some(r.seq()), r.payload().to_vec()), "{key}");
            }
            None => assert_eq!(o.status.code(), Some(1), "{key}: {}", stdout(&o)),
        }
        let o = varve(&["get", d, &key, "--all", "--format", "json"]);
        let seqs: Vec<u64> = json_lines(&o).iter().map(|v| v["seq"].as_u64().unwrap()).collect();
        let expected: Vec<u64> = snap.iter_key(key.as_bytes()).map(|r| r.unwrap().seq()).collect();
        assert_eq!(seqs, expected, "{key} --all");
    }
    let o = varve(&["kv", d, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Vec<u64> = json_lines(&o).iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = snap.kv().map(|r| r.unwrap().seq()).collect();
    assert_eq!(expected.len(), 39, "40 keys, 2 deleted, 1 new");
    assert_eq!(got, expected);
    drop(w);
}

/// A closed log for compaction: 50 keys replaced over and over across
/// several segments, and a key `gone` written and deleted long ago (both
/// in the first segment). Returns the newest payload of every live key.
fn make_compactable_log(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let log = Log::open(dir, Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    let mut newest = std::collections::BTreeMap::new();
    w.append_entry(Entry::new(b"old").key(b"gone").timestamp(T0)).unwrap();
    w.append_entry(Entry::new(b"").key(b"gone").tombstone().timestamp(T0)).unwrap();
    for i in 0..3000u64 {
        let key = format!("k{}", i % 50);
        let value = format!("value {i} {}", "x".repeat((i % 30) as usize)).into_bytes();
        w.append_entry(Entry::new(&value).key(key.as_bytes()).timestamp(T0 + i * 1_000_000)).unwrap();
        newest.insert(key, value);
    }
    w.sync().unwrap();
    drop(w);
    log.close().unwrap();
    newest
}

/// What one compaction of a closed log must remove: records of sealed
/// segments a newer record with their key replaced, and tombstones of
/// sealed segments that are their key's newest record and older than a day.
fn expected_removals(dir: &Path) -> (u64, u64) {
    let log = Log::open_read_only(dir).unwrap();
    let snap = log.snapshot();
    let infos = snap.segment_info();
    let sealed_end = infos.iter().take_while(|s| s.sealed).last().map_or(0, |s| s.base_seq + s.records);
    let mut newest = std::collections::HashMap::new();
    for r in snap.iter() {
        let r = r.unwrap();
        if let Some(k) = r.key() {
            newest.insert(k.to_vec(), r.seq());
        }
    }
    let day_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64 - 86_400_000_000;
    let (mut records, mut tombstones) = (0, 0);
    for r in snap.iter() {
        let r = r.unwrap();
        let Some(k) = r.key() else { continue };
        if r.seq() >= sealed_end {
            break;
        }
        if newest[k] > r.seq() {
            records += 1;
        } else if r.is_tombstone() && r.timestamp() < day_ago {
            tombstones += 1;
        }
    }
    (records, tombstones)
}

#[test]
fn compact_removes_replaced_records_and_keeps_the_newest_values() {
    // Goal: `compact` removes exactly the records a newer one replaced and
    // the expired tombstones, says so, and leaves a log that verifies and
    // answers every key as before. Method: two identical logs; compact one
    // with --json and one with text output and a forced progress bar;
    // compare the figures with what the log held; then verify, get, kv.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let newest = make_compactable_log(&a);
    make_compactable_log(&b);
    let (records, tombstones) = expected_removals(&a);
    assert!(records > 1000 && tombstones == 1, "the log must give compaction work: {records} {tombstones}");
    let kept = 3002 - records - tombstones;

    let o = varve(&["compact", p(&a), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("compact --json is JSON");
    assert_eq!((v["records_removed"].as_u64(), v["tombstones_removed"].as_u64()), (Some(records), Some(tombstones)), "{v}");
    assert!(v["segments_rewritten"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["bytes_after"].as_u64().unwrap() < v["bytes_before"].as_u64().unwrap(), "{v}");
    assert_eq!(v["tombstone_retention_seconds"], 86_400.0);
    assert!(!o.stderr.contains(&b'\r'), "no progress redraws in redirected stderr: {:?}", stderr(&o));

    let o = varve(&["compact", p(&b), "--progress"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&format!("records removed     {records} ")), "{text}");
    assert!(text.contains(&format!("tombstones removed  {tombstones} (older than 1day)")), "{text}");
    assert!(text.contains(&format!("segments            {} rewritten", v["segments_rewritten"])), "{text}");
    assert!(text.contains("bytes ") && text.contains(" → "), "{text}");
    assert!(stderr(&o).contains("compact [") && stderr(&o).contains("100%"), "progress bar: {}", stderr(&o));

    for log in [&a, &b] {
        let o = varve(&["verify", p(log)]);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).starts_with(&format!("ok: {kept} records")), "{}", stdout(&o));
        for (key, value) in &newest {
            let o = varve(&["get", p(log), key, "--format", "json"]);
            assert!(o.status.success(), "{key}: {}", stderr(&o));
            assert_eq!(&json_payload(&json_lines(&o)[0]), value, "{key}");
        }
        assert_one_line_error(&varve(&["get", p(log), "gone"]), 1, "no live record with key \"gone\"");
        assert_eq!(varve(&["get", p(log), "gone", "--all"]).status.code(), Some(1), "the expired tombstone is gone too");
        let o = varve(&["kv", p(log), "--format", "json"]);
        let keys: std::collections::BTreeSet<String> = json_lines(&o).iter().map(|v| v["key"].as_str().unwrap().to_string()).collect();
        assert_eq!(keys, newest.keys().cloned().collect());
    }

    // A second pass finds nothing to do.
    let o = varve(&["compact", p(&a)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("none rewritten") && stdout(&o).contains("records removed     0 "), "{}", stdout(&o));
    assert!(varve(&["verify", p(&a)]).status.success());
}

#[test]
fn compact_refuses_a_log_another_process_has_open_and_bad_arguments() {
    // Goal: compaction needs the log's lock: with a writer in another
    // process it exits 1 with one line naming that process and changes
    // nothing; a missing directory is a usage error and is not created; a
    // bad duration is a usage error.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..2000u64 {
        w.append_entry(Entry::new(&payload(i)).key(format!("k{}", i % 10).as_bytes())).unwrap();
    }
    w.sync().unwrap();
    // The sealer changes the files too: let it finish first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.stats().segments_sealed + 1 < segment_files(dir.path()).len() as u64 {
        assert!(Instant::now() < deadline, "sealing did not catch up");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = fingerprint(dir.path());
    let o = varve(&["compact", p(dir.path())]);
    assert_one_line_error(&o, 1, &format!("the log is open by process {}", std::process::id()));
    assert!(o.stdout.is_empty());
    assert_eq!(fingerprint(dir.path()), before, "a refused compaction changed the log");
    drop(w);
    drop(log);

    let missing = dir.path().join("missing");
    assert_one_line_error(&varve(&["compact", p(&missing)]), 2, "no such directory");
    assert!(!missing.exists(), "compact created a directory");
    let o = varve(&["compact", p(dir.path()), "--tombstone-retention", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a duration"), "{}", stderr(&o));
    // 0 is a duration: tombstones go at once.
    let o = varve(&["compact", p(dir.path()), "--tombstone-retention", "0", "-q"]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}{}", stdout(&o), stderr(&o));
}

/// `varve consumers --json` of `dir`, parsed.
fn consumers_json(dir: &Path) -> serde_json::Value {
    let o = varve(&["consumers", "--json", p(dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("consumers --json is one JSON document")
}

/// Where `varve consumers --json` says consumer `name` of `dir` resumes.
fn consumer_position(dir: &Path, name: &str) -> Option<u64> {
    let v = consumers_json(dir);
    let c = v["consumers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {v}"));
    c["position"].as_u64()
}

/// The seqs of `tail --format json` output.
fn printed_seqs(o: &Output) -> Vec<u64> {
    json_lines(o).iter().map(|v| v["seq"].as_u64().unwrap()).collect()
}

#[test]
fn consumers_lists_position_lag_and_last_commit_before_and_after_a_commit() {
    // Goal: `consumers` shows each named consumer as the library stored it:
    // none at first; a file without a position yet (its first open was
    // interrupted) as "never committed"; an opened consumer at the start it
    // stored, with the whole log as lag; then the committed position, lag
    // and time (relative and RFC 3339) once it commits, and the process
    // holding one open; in the table and in JSON, without changing a
    // position file. Method: consumers opened and committed through the
    // library in this process, listed by the CLI.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 100);
    let o = varve(&["consumers", p(dir.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("no named consumers of {}\n", p(dir.path())));
    assert_eq!(consumers_json(dir.path()), serde_json::json!({"dir": p(dir.path()), "consumers": []}));

    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    // A position file as a first open interrupted before storing a position
    // leaves it: all zeros.
    std::fs::create_dir_all(dir.path().join("consumers")).unwrap();
    std::fs::write(dir.path().join("consumers/audit.pos"), [0u8; 1024]).unwrap();
    let mut billing = reader.consumer("billing").unwrap();
    for _ in 0..40 {
        billing.next_timeout(Duration::from_secs(1)).unwrap().expect("published");
    }
    let before = varve(&["consumers", p(dir.path())]);
    let before_json = consumers_json(dir.path());
    billing.commit().unwrap();
    let committed_at = reader.consumers().unwrap()[1].committed_at.expect("billing committed");
    let committed_us = committed_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let rfc3339 = humantime::format_rfc3339_micros(committed_at).to_string();
    let pos_files: Vec<Vec<u8>> =
        ["audit", "billing"].iter().map(|n| std::fs::read(dir.path().join(format!("consumers/{n}.pos"))).unwrap()).collect();

    // Before billing's commit: audit has no position, billing the start it
    // stored when opened; both lag by every record.
    let text = stdout(&before);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[1].split_whitespace().eq(["audit", "never", "committed", "100"]), "{text}");
    assert!(rows[2].split_whitespace().take(3).eq(["billing", "0", "100"]), "{text}");
    let before_cs = before_json["consumers"].as_array().unwrap();
    assert_eq!(
        (before_cs[0]["position"].clone(), before_cs[0]["lag"].clone(), before_cs[0]["committed_time"].clone()),
        (serde_json::Value::Null, 100.into(), serde_json::Value::Null)
    );
    assert_eq!((before_cs[1]["position"].as_u64(), before_cs[1]["lag"].as_u64()), (Some(0), Some(100)));

    // After: billing resumes at 40, 60 behind, committed just now; this
    // process holds it open.
    let o = varve(&["consumers", p(dir.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(header, ["name", "position", "lag", "committed", "committed", "at", "open", "by"], "{text}");
    assert!(rows[1].split_whitespace().eq(["audit", "never", "committed", "100"]), "{text}");
    let billing_row: Vec<&str> = rows[2].split_whitespace().collect();
    assert_eq!(billing_row[..3], ["billing", "40", "60"], "{text}");
    assert!(billing_row[3].ends_with('s') && billing_row[4] == "ago", "an age: {text}");
    assert_eq!(billing_row[5], rfc3339, "{text}");
    assert_eq!(billing_row[6..], ["process", &std::process::id().to_string()], "{text}");

    let v = consumers_json(dir.path());
    let cs = v["consumers"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["name"], "audit");
    assert_eq!(cs[0]["position"], serde_json::Value::Null);
    assert_eq!(cs[0]["open_by_pid"], serde_json::Value::Null);
    assert_eq!(cs[1]["name"], "billing");
    assert_eq!((cs[1]["position"].as_u64(), cs[1]["lag"].as_u64()), (Some(40), Some(60)));
    assert_eq!(cs[1]["committed_timestamp"], committed_us);
    assert_eq!(cs[1]["committed_time"], rfc3339.as_str());
    assert_eq!(cs[1]["open_by_pid"], std::process::id());
    assert!(cs[1]["file"].as_str().unwrap().ends_with("consumers/billing.pos"), "{v}");

    // Closed, it is no longer open by anyone; listing changed no position file.
    drop(billing);
    assert_eq!(consumers_json(dir.path())["consumers"][1]["open_by_pid"], serde_json::Value::Null);
    let after: Vec<Vec<u8>> =
        ["audit", "billing"].iter().map(|n| std::fs::read(dir.path().join(format!("consumers/{n}.pos"))).unwrap()).collect();
    assert_eq!(after, pos_files, "listing consumers changed a position file");
}

#[test]
fn tail_consumer_resumes_where_the_previous_run_stopped() {
    // Goal: `tail --consumer` prints each record exactly once over runs
    // that stop at --limit or at the end, with and without -f, across
    // segments, and leaves the position where a program's consumer goes on.
    // Method: a 3000-record log read in runs of 1200, 1000 (with -f) and
    // the rest; the runs' seqs, joined, are 0..3000 with their payloads;
    // after each run, `consumers` lists the next seq.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    assert!(segment_files(dir.path()).len() >= 3, "the runs must cross segments");
    let d = p(dir.path());
    let mut seen = Vec::new();
    for (args, next) in [
        (vec!["tail", d, "--consumer", "c", "--limit", "1200", "--format", "json"], 1200),
        (vec!["tail", "-f", d, "--consumer", "c", "--limit", "1000", "--format", "json"], 2200),
        (vec!["tail", d, "--consumer", "c", "--format", "json"], 3000),
        (vec!["tail", d, "--consumer", "c", "--format", "json"], 3000),
    ] {
        let o = varve(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        for v in json_lines(&o) {
            assert_eq!(json_payload(&v), payload(v["seq"].as_u64().unwrap()));
            seen.push(v["seq"].as_u64().unwrap());
        }
        assert_eq!(seen.len() as u64, next, "{args:?}");
        assert_eq!(consumer_position(dir.path(), "c"), Some(next), "{args:?}");
    }
    assert_eq!(seen, (0..3000).collect::<Vec<u64>>(), "a record was repeated or skipped");
    let resumed = ReadOnlyLog::open(dir.path()).unwrap().consumer("c").unwrap();
    assert_eq!(resumed.position(), 3000);
    drop(resumed);

    // A consumer is not a tail's start: another name starts at the first
    // record, in the text format too.
    let o = varve(&["tail", d, "--consumer", "other", "--limit", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("0 2023-11-14T22:13:20.000000Z"), "{}", stdout(&o));
    assert_eq!(consumer_position(dir.path(), "other"), Some(2));
}

#[test]
fn tail_consumer_follows_a_writer_and_commits_what_it_printed() {
    // Goal: `tail -f --consumer` follows another process's appends and
    // commits as it prints; a second run goes on after it. Method: this
    // process writes 500 records while the CLI follows with --limit 300,
    // then a second run prints the remaining 200.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    let (mut child, out) = spawn_varve(&["tail", "-f", p(dir.path()), "--consumer", "live", "--limit", "300", "--format", "json"], true);
    let reader = collect_lines(out);
    for i in 0..500 {
        w.append(&payload(i)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let status = wait_for_exit(&mut child, Duration::from_secs(30), "varve tail -f --consumer did not finish");
    assert!(status.success());
    let first: Vec<u64> =
        reader.join().unwrap().iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(first, (0..300).collect::<Vec<u64>>());
    assert_eq!(consumer_position(dir.path(), "live"), Some(300));
    let o = varve(&["tail", p(dir.path()), "--consumer", "live", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(printed_seqs(&o), (300..500).collect::<Vec<u64>>());
}

#[test]
fn tail_consumer_commits_what_went_out_when_its_reader_goes_away() {
    // Goal: when standard output closes (`| head`), the last commit covers
    // what was written out, and no more than that: the next run starts
    // there. Method: read 5 lines of a ~300 KB output and close the pipe
    // while the CLI is still writing; then, on an idle log under -f, read
    // every line and close the pipe.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let (mut child, mut out) = spawn_varve(&["tail", p(dir.path()), "--consumer", "h"], true);
    for (k, line) in read_lines(&mut out, 5).iter().enumerate() {
        assert!(line.starts_with(&format!("{k} ")), "{line}");
    }
    drop(out);
    let status = wait_for_exit(&mut child, Duration::from_secs(10), "varve tail --consumer kept running after its reader went away");
    assert!(status.success(), "{status:?}");
    let at = consumer_position(dir.path(), "h").expect("what went out is committed");
    assert!((5..3000).contains(&at), "committed {at}: the 5 records read were written out, the rest could not be");
    let o = varve(&["tail", p(dir.path()), "--consumer", "h", "--format", "json"]);
    assert_eq!(printed_seqs(&o), (at..3000).collect::<Vec<u64>>());

    // Idle under -f: the reader goes away between records.
    let small = tempfile::tempdir().unwrap();
    make_log(small.path(), 3);
    let (mut child, mut out) = spawn_varve(&["tail", "-f", p(small.path()), "--consumer", "idle"], false);
    read_lines(&mut out, 3);
    drop(out);
    let status = wait_for_exit(&mut child, Duration::from_secs(5), "varve tail -f --consumer kept running after its reader went away");
    assert!(status.success(), "{status:?}");
    assert_eq!(consumer_position(small.path(), "idle"), Some(3));
}

#[test]
fn tail_follow_consumer_commits_each_batch_as_it_prints_it() {
    // Goal: under -f, each batch is committed once printed, not only when
    // the command ends, so a killed follower resumes after what it printed.
    // Method: follow a 3-record log, read the 3 lines, wait for the commit
    // to show in `consumers`, kill the CLI; the next run prints nothing
    // old and the 4th record when it comes.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3);
    let (mut child, mut out) = spawn_varve(&["tail", "-f", p(dir.path()), "--consumer", "k"], false);
    for (k, line) in read_lines(&mut out, 3).iter().enumerate() {
        assert!(line.starts_with(&format!("{k} ")), "{line}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while consumer_position(dir.path(), "k") != Some(3) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the printed batch was not committed while following");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(consumer_position(dir.path(), "k"), Some(3));
    let o = varve(&["tail", p(dir.path()), "--consumer", "k"]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}{}", stdout(&o), stderr(&o));
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    log.writer().unwrap().append(b"fourth").unwrap();
    let o = varve(&["tail", p(dir.path()), "--consumer", "k", "--format", "json"]);
    assert_eq!(printed_seqs(&o), [3]);
}

#[test]
fn tail_consumer_never_commits_a_record_it_could_not_write() {
    // Goal: a record is committed only once it was written out. Method:
    // standard output is /dev/full, so the first write fails; the run
    // exits 1 and the consumer still starts at the first record.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_varve")).args(["tail", p(dir.path()), "--consumer", "full"]).stdout(full).output().unwrap();
    assert_one_line_error(&o, 1, "writing output");
    assert!(matches!(consumer_position(dir.path(), "full"), None | Some(0)), "a record that was never written out was committed");
    let o = varve(&["tail", p(dir.path()), "--consumer", "full", "--limit", "1", "--format", "json"]);
    assert_eq!(printed_seqs(&o), [0]);
}

#[test]
fn tail_consumer_without_follow_stops_at_the_end_it_saw_and_the_next_run_goes_on() {
    // Goal: without -f, `tail --consumer` prints what was published when
    // it started, even while a writer appends, and commits no record past
    // that: the next run starts right after the last record printed.
    // Method: a thread appends bursts of records while the CLI runs three
    // times; the runs' seqs, joined, are 0..n without a gap.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    let mut w = log.writer().unwrap();
    for i in 0..100 {
        w.append(&payload(i)).unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appending = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut i = 100;
        while !appending.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..20 {
                w.append(&payload(i)).unwrap();
                i += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let o = varve(&["tail", p(dir.path()), "--consumer", "runs", "--format", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        seen.extend(printed_seqs(&o));
        assert_eq!(consumer_position(dir.path(), "runs"), Some(seen.len() as u64));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(seen.len() > 100, "the later runs saw the writer's appends");
    assert_eq!(seen, (0..seen.len() as u64).collect::<Vec<u64>>(), "a record was repeated or skipped between runs");
}

#[test]
fn tail_consumer_stops_at_damage_with_the_records_before_it_committed() {
    // Goal: a damaged record ends `tail --consumer` with status 1 after
    // the records before it are printed and committed; the next run starts
    // at the damaged record. Method: flip a payload byte of the second
    // segment's first record.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let seg = segment_files(dir.path())[1].clone();
    let base: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[4096 + 32 + 2] ^= 0x20; // inside the first frame's payload
    std::fs::write(&seg, &bytes).unwrap();
    let o = varve(&["tail", p(dir.path()), "--consumer", "d", "--format", "json"]);
    assert_one_line_error(&o, 1, "checksum mismatch");
    assert_eq!(printed_seqs(&o), (0..base).collect::<Vec<u64>>());
    assert_eq!(consumer_position(dir.path(), "d"), Some(base));
    let o = varve(&["tail", p(dir.path()), "--consumer", "d"]);
    assert_one_line_error(&o, 1, "checksum mismatch");
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
}

#[test]
fn tail_consumer_whose_records_retention_removed_fails_saying_so() {
    // Goal: a consumer whose next record is gone cannot resume silently
    // somewhere else: exit 1, one line with both seqs, position unchanged.
    // Method: commit a consumer at seq 0, then remove the segments below
    // seq 2000 with retention.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let mut old = ReadOnlyLog::open(dir.path()).unwrap().consumer("old").unwrap();
    old.commit().unwrap();
    drop(old);
    let log = Log::open(dir.path(), Options::new().segment_bytes(SEGMENT)).unwrap();
    log.retain(&varvelog::Retention::new().min_seq(2000)).unwrap();
    let first = log.snapshot().first_seq().unwrap();
    drop(log);
    assert!(first > 0, "retention removed nothing");
    let o = varve(&["tail", p(dir.path()), "--consumer", "old"]);
    assert_one_line_error(&o, 1, &format!("consumer \"old\" resumes at seq 0, which retention has removed from {}", p(dir.path())));
    assert!(stderr(&o).contains(&format!("the log now starts at seq {first}")), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(consumer_position(dir.path(), "old"), Some(0));
}

#[test]
fn tail_consumer_in_use_fails_naming_the_process_and_changes_nothing() {
    // Goal: a consumer has one reader at a time: while this process holds
    // it open, `tail --consumer` (with or without -f) exits 1 with one
    // line naming this process, prints nothing and leaves the position
    // alone; once it is closed, the CLI reads from its position.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 10);
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let mut held = reader.consumer("billing").unwrap();
    held.next_timeout(Duration::from_secs(1)).unwrap().expect("published");
    held.commit().unwrap();
    let pos_file = dir.path().join("consumers/billing.pos");
    let before = std::fs::read(&pos_file).unwrap();
    let busy = format!("consumer \"billing\" of {} is in use by process {}", p(dir.path()), std::process::id());
    for follow in [false, true] {
        let mut args = vec!["tail", p(dir.path()), "--consumer", "billing"];
        if follow {
            args.push("-f");
        }
        let o = varve(&args);
        assert_one_line_error(&o, 1, &busy);
        assert!(o.stdout.is_empty(), "{}", stdout(&o));
    }
    assert_eq!(std::fs::read(&pos_file).unwrap(), before, "a refused run changed the position");
    drop(held);
    let o = varve(&["tail", p(dir.path()), "--consumer", "billing", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(printed_seqs(&o), (1..10).collect::<Vec<u64>>());
}

#[test]
fn tail_consumer_rejects_invalid_names_and_other_starts() {
    // Goal: a name that cannot name a consumer is a usage error (status 2,
    // one line) that creates nothing; --consumer cannot be combined with
    // -n, --from or --since.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 10);
    let long = "x".repeat(65);
    for bad in ["a/b", ".hidden", "a b", "é", long.as_str()] {
        let o = varve(&["tail", p(dir.path()), "--consumer", bad]);
        assert_one_line_error(&o, 2, &format!("invalid consumer name {bad:?}"));
        assert!(o.stdout.is_empty());
    }
    assert!(!dir.path().join("consumers").exists(), "an invalid name created the consumers directory");
    for other in [vec!["-n", "3"], vec!["--from", "3"], vec!["--since", "1h"]] {
        let mut args = vec!["tail", p(dir.path()), "--consumer", "c"];
        args.extend(other.iter());
        let o = varve(&args);
        assert_eq!(o.status.code(), Some(2), "{other:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot be used with"), "{other:?}: {}", stderr(&o));
    }
    assert!(!dir.path().join("consumers").exists(), "a refused command created a consumer");
}

#[test]
fn consumers_remove_forgets_a_consumer_that_is_not_open() {
    // Goal: a consumer no one needs (a typo of `tail --consumer`, say) can
    // be removed from the shell, but never one that is open. Method: hold
    // one open in this process and try; drop it, remove it, list.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 10);
    let reader = ReadOnlyLog::open(dir.path()).unwrap();
    let held = reader.consumer("typo").unwrap();
    let o = varve(&["consumers", p(dir.path()), "--remove", "typo"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("in use by process"), "{}", stderr(&o));
    assert!(dir.path().join("consumers/typo.pos").exists());
    drop(held);
    let o = varve(&["consumers", p(dir.path()), "--remove", "typo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("removed consumer \"typo\" of {}\n", p(dir.path())));
    assert_eq!(consumers_json(dir.path())["consumers"], serde_json::json!([]));
    let o = varve(&["consumers", p(dir.path()), "--remove", "typo"]);
    assert!(o.status.success() && stdout(&o).starts_with("no consumer named"), "{}", stdout(&o));
    let o = varve(&["consumers", p(dir.path()), "--remove", "../x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn root_prove_and_verify_proof_check_records_without_the_log() {
    // Goal: a third party holding only a root checks a record (and that a
    // later log extends an earlier one) from what `varve prove` prints;
    // a changed record, another root or a forged old root is refused.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3000);
    let root_of = |extra: &[&str]| {
        let mut args = vec!["root", p(dir.path())];
        args.extend_from_slice(extra);
        let o = varve(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).split_whitespace().next().unwrap().to_string()
    };
    let root = root_of(&[]);
    let old = root_of(&["--at", "1000"]);
    let proof = dir.path().join("p.json");
    let o = varve(&["prove", p(dir.path()), "1234"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&proof, &o.stdout).unwrap();
    let o = varve(&["verify-proof", p(&proof), "--root", &root]);
    assert!(o.status.success() && stdout(&o).starts_with("ok: record 1234"), "{}{}", stdout(&o), stderr(&o));
    let o = varve(&["verify-proof", p(&proof), "--root", &old]);
    assert_eq!(o.status.code(), Some(1), "another root: {}", stdout(&o));
    // The record changed in the file: not proven.
    let text = std::fs::read_to_string(&proof).unwrap().replace("\"seq\":1234,\"timestamp_us\":", "\"seq\":1234,\"timestamp_us\":1");
    std::fs::write(&proof, text).unwrap();
    let o = varve(&["verify-proof", p(&proof), "--root", &root]);
    assert_eq!(o.status.code(), Some(1), "a changed record: {}", stdout(&o));
    // Consistency from 1000 records to all of them.
    let o = varve(&["prove", p(dir.path()), "--consistency", "1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&proof, &o.stdout).unwrap();
    let o = varve(&["verify-proof", p(&proof), "--root", &root, "--old-root", &old]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = varve(&["verify-proof", p(&proof), "--root", &root, "--old-root", &root_of(&["--at", "999"])]);
    assert_eq!(o.status.code(), Some(1));
    let o = varve(&["verify-proof", p(&proof), "--root", "zz"]);
    assert_eq!(o.status.code(), Some(2), "bad hex is a usage error");
}
