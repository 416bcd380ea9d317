//! `varve export --jsonl DIR`: every record as one JSON object per line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::util::{handle_write, open_log, parse_time, warnings_failure, write_json, CmdResult, Failure, Start};

/// Arguments of `varve export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write JSON Lines: one object per record with `seq`, `timestamp` (µs
    /// since the epoch), `time`, `key`, `key_encoding`, `payload`,
    /// `payload_encoding` ("utf8" when the bytes are valid UTF-8, otherwise
    /// "base64") and `tombstone`. The only format so far, and required.
    #[arg(long, required = true)]
    pub jsonl: bool,
    /// The log directory.
    pub dir: PathBuf,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Start at this seq.
    #[arg(long, value_name = "SEQ", conflicts_with = "since")]
    pub from: Option<u64>,
    /// Start at the first record at or after this time (see `varve dump --help`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<u64>,
    /// Export at most this many records.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
}

pub fn run(args: &ExportArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(File::create(path).map_err(|e| Failure::problem(format!("cannot create {}: {e}", path.display())))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let limit = usize::try_from(args.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    let mut n = 0u64;
    for record in Start::new(args.from, args.since).iter(&snap).take(limit) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                handle_write(out.flush())?;
                return Err(Failure::from(e));
            }
        };
        handle_write(write_json(&mut out, &record))?;
        n += 1;
    }
    handle_write(out.flush())?;
    if args.output.is_some() {
        eprintln!("exported {}", crate::util::count(n, "record"));
    }
    warnings_failure(&log)
}
