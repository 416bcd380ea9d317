//! `varve import --jsonl DIR`: append records from JSON Lines (the format
//! `varve export --jsonl` writes) to a log, creating it if needed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use varvelog::{Entry, Log, Options};

use crate::util::{decode_bytes, CmdResult, Failure};

/// Arguments of `varve import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Read JSON Lines, one record per line: `payload` (required),
    /// `payload_encoding` ("utf8", the default, or "base64"), `key` and
    /// `key_encoding` (optional; an empty key is no key), `timestamp` (µs
    /// since the epoch; default now) and `tombstone` (default false). Other
    /// fields (`seq`, `time`) are ignored: records get the log's next seqs.
    /// Required.
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

/// One input line as JSON. Unknown fields (`seq`, `time`) are ignored.
#[derive(Debug, serde_derive::Deserialize)]
struct InputRecord {
    payload: String,
    payload_encoding: Option<String>,
    key: Option<String>,
    key_encoding: Option<String>,
    timestamp: Option<u64>,
    tombstone: Option<bool>,
}

/// One parsed line.
struct Parsed {
    payload: Vec<u8>,
    key: Vec<u8>,
    timestamp_us: Option<u64>,
    tombstone: bool,
}

fn parse_line(line: &str) -> Result<Parsed, String> {
    let r: InputRecord = serde_json::from_str(line).map_err(|e| format!("not a record: {e}"))?;
    let decode = |name: &str, value: &str, encoding: Option<&str>| {
        decode_bytes(value, encoding.unwrap_or("utf8")).map_err(|e| format!("field {name:?}: {e}"))
    };
    let payload = decode("payload", &r.payload, r.payload_encoding.as_deref())?;
    let key = match &r.key {
        Some(k) => decode("key", k, r.key_encoding.as_deref())?,
        None => Vec::new(),
    };
    Ok(Parsed { payload, key, timestamp_us: r.timestamp, tombstone: r.tombstone.unwrap_or(false) })
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
    // so input that is bad from its first line leaves no log behind; one
    // made for a record the engine then refused is removed again below.
    let made_here = match std::fs::read_dir(&args.dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(true),
        Ok(mut entries) => entries.next().is_none().then_some(false),
        Err(_) => None,
    };
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
    if let Some((opened, writer)) = log.take() {
        // Close, not drop: it syncs and finishes sealing, and reports a
        // failure of either, which a drop would only log.
        drop(writer);
        opened.close()?;
        if let (0, Some(new_dir)) = (n, made_here) {
            remove_new_log(&args.dir, new_dir)?;
        }
    }
    if n == 0 {
        eprintln!("imported 0 records");
    } else if failure.is_some() {
        eprintln!(
            "imported {} as seq {first} ..= {} before the error; they stay in the log, the rest of the input was not imported",
            crate::util::count(n, "record"),
            first + n - 1
        );
    } else {
        eprintln!("imported {} as seq {first} ..= {}", crate::util::count(n, "record"), first + n - 1);
    }
    failure.map_or(Ok(()), Err)
}

/// Removes a log that import created and put no record in: the directory
/// itself if import made it, otherwise what import put in the empty one.
fn remove_new_log(dir: &std::path::Path, new_dir: bool) -> CmdResult {
    // Under the log's lock, and only if it is still empty: another process
    // may have opened the log between our close and now.
    let lock = std::fs::File::open(dir.join(varvelog::LOCK_FILE_NAME));
    let held = lock.as_ref().is_ok_and(|f| rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok());
    let empty = held && varvelog::ReadOnlyLog::open(dir).is_ok_and(|l| l.snapshot().is_empty());
    if !empty {
        eprintln!("left the log import created in {}: another process has opened it", dir.display());
        return Ok(());
    }
    let removed = if new_dir {
        std::fs::remove_dir_all(dir)
    } else {
        std::fs::read_dir(dir).and_then(|mut entries| entries.try_for_each(|e| std::fs::remove_file(e?.path())))
    };
    removed.map_err(|e| Failure::problem(format!("removing the empty log import created in {}: {e}", dir.display())))
}
