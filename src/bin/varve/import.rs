//! `varve import --jsonl DIR`: append records from JSON Lines (the format
//! `varve export --jsonl` writes) to a log, creating it if needed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use serde_json::Value;
use varvelog::{Entry, Log, Options};

use crate::util::{decode_bytes, CmdResult, Failure};

/// Arguments of `varve import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Read JSON Lines, one record per line: `payload` (required),
    /// `payload_encoding` ("utf8", the default, or "base64"), `key` and
    /// `key_encoding` (optional), `timestamp` (µs since the epoch; default
    /// now) and `tombstone` (default false). Other fields (`seq`, `time`)
    /// are ignored: records get the log's next seqs. Required.
    #[arg(long, required = true)]
    pub jsonl: bool,
    /// The log directory (created if missing). It must not be open by
    /// another process.
    pub dir: PathBuf,
    /// Read from this file instead of standard input.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Segment size for a new log, e.g. 64MiB (suffixes K, M, G, KiB, MiB, GiB; all binary).
    #[arg(long, value_name = "SIZE", value_parser = crate::util::parse_bytes)]
    pub segment_bytes: Option<u64>,
}

/// One parsed line.
struct Parsed {
    payload: Vec<u8>,
    key: Vec<u8>,
    timestamp_us: Option<u64>,
    tombstone: bool,
}

fn bytes_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, String> {
    let value = match obj.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("field {name:?} must be a string, found {other}")),
    };
    let enc_name = format!("{name}_encoding");
    let encoding = match obj.get(&enc_name) {
        None | Some(Value::Null) => "utf8",
        Some(Value::String(e)) => e.as_str(),
        Some(other) => return Err(format!("field {enc_name:?} must be a string, found {other}")),
    };
    decode_bytes(value, encoding).map(Some).map_err(|e| format!("field {name:?}: {e}"))
}

fn parse_line(line: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(obj) = value else { return Err("not a JSON object".into()) };
    let payload = bytes_field(&obj, "payload")?.ok_or("missing field \"payload\"")?;
    let key = bytes_field(&obj, "key")?.unwrap_or_default();
    let timestamp_us = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| format!("field \"timestamp\" must be a non-negative integer, found {v}"))?),
    };
    let tombstone = match obj.get("tombstone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("field \"tombstone\" must be true or false, found {v}")),
    };
    Ok(Parsed { payload, key, timestamp_us, tombstone })
}

pub fn run(args: &ImportArgs) -> CmdResult {
    let input: Box<dyn Read> = match &args.input {
        Some(path) => Box::new(File::open(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut opts = Options::new();
    if let Some(b) = args.segment_bytes {
        opts = opts.segment_bytes(b);
    }
    // The log is opened (and, if new, created) at the first valid record,
    // so input that is bad from its first line leaves no log behind.
    let mut log: Option<(Log, varvelog::Writer)> = None;
    let mut first = 0;
    let mut n = 0u64;
    // Records before a bad line stay appended (and are synced below).
    let mut failure = None;
    for (i, line) in BufReader::with_capacity(1 << 16, input).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                failure = Some(Failure::problem(format!("reading input line {}: {e}", i + 1)));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let p = match parse_line(&line) {
            Ok(p) => p,
            Err(e) => {
                failure = Some(Failure::problem(format!("input line {}: {e}", i + 1)));
                break;
            }
        };
        let mut entry = Entry::new(&p.payload).key(&p.key);
        if let Some(ts) = p.timestamp_us {
            entry = entry.timestamp(ts);
        }
        if p.tombstone {
            entry = entry.tombstone();
        }
        let writer = match &mut log {
            Some((_, w)) => w,
            None => {
                let opened = Log::open(&args.dir, opts.clone()).map_err(|e| match e {
                    varvelog::Error::InvalidOptions(m) => Failure::usage(m),
                    other => Failure::from(other),
                })?;
                let w = opened.writer()?;
                first = w.next_seq();
                &mut log.insert((opened, w)).1
            }
        };
        if let Err(e) = writer.append_entry(entry) {
            failure = Some(Failure::problem(format!("input line {}: {}", i + 1, crate::util::one_line(&e.to_string()))));
            break;
        }
        n += 1;
    }
    if let Some((_, writer)) = &mut log {
        writer.sync()?;
    }
    let kept = if failure.is_some() { "; they stay in the log, the rest of the input was not imported" } else { "" };
    if n > 0 {
        eprintln!("imported {} as seq {first} ..= {}{kept}", crate::util::count(n, "record"), first + n - 1);
    } else {
        eprintln!("imported 0 records");
    }
    failure.map_or(Ok(()), Err)
}
